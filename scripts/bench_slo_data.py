"""Data for the cost / latency SLO benchmark (docs/benchmarks.md, "Cost and latency SLO"):
preds.csv, 1M predictions of one day (2026-11-20), 4 numeric features, a 0/1 prediction, a
log-normal latency and, for three rows in four, a cost.

    python3 scripts/bench_slo_data.py [rows] [out.csv]
"""

import sys

import numpy as np

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
out = sys.argv[2] if len(sys.argv) > 2 else "preds.csv"
rng = np.random.default_rng(5)
secs = np.sort(rng.integers(0, 86_400, rows))
start = np.datetime64("2026-11-20T00:00:00")
ts = np.datetime_as_string(start + secs.astype("timedelta64[s]")) + "Z"
x = rng.standard_normal((rows, 4)).round(4)
pred = (x[:, 0] > 0).astype(int)
lat = np.round(120 * np.exp(0.3 * rng.standard_normal(rows)), 1)
cost = np.where(rng.random(rows) < 0.75, rng.integers(1, 5000, rows) / 1e6, np.nan)
with open(out, "w") as f:
    f.write("request_id,timestamp,x0,x1,x2,x3,prediction,latency_ms,cost\n")
    for i in range(rows):
        c = "" if np.isnan(cost[i]) else f"{cost[i]:.6f}"
        f.write(f"r{i},{ts[i]},{x[i,0]},{x[i,1]},{x[i,2]},{x[i,3]},{pred[i]},{lat[i]},{c}\n")
print(f"wrote {rows} rows to {out}")
