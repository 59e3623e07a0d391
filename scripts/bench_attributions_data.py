#!/usr/bin/env python3
"""Data for the attributions benchmark (docs/benchmarks.md, "Attributions: cost per 1M rows"):
preds.csv, 1M predictions of one day with 10 features, a category and 10 explanation.<f>
columns, and reference.csv, its first 100k rows without ids and times. Writes to the current
directory; needs numpy and pandas."""
import numpy as np, pandas as pd
rng = np.random.default_rng(1)
n = 1_000_000
df = pd.DataFrame({"request_id": ["r%d" % i for i in range(n)]})
t0 = np.datetime64("2026-11-20T00:00:00")
df["timestamp"] = (t0 + (np.arange(n) * 86400 // n).astype("timedelta64[s]")).astype(str) + "Z"
for j in range(10):
    df["f%d" % j] = np.round(rng.normal(size=n), 4)
df["c0"] = rng.choice(["a", "b", "c"], size=n)
score = np.round(1 / (1 + np.exp(-df["f0"].to_numpy())), 4)
df["prediction"] = (score >= 0.5).astype(int)
df["score"] = score
for j in range(10):
    df["explanation.f%d" % j] = np.round(rng.normal(size=n) * (0.5 if j == 0 else 0.1), 4)
df.to_csv("preds.csv", index=False)
ref = df.iloc[:100_000].drop(columns=["request_id", "timestamp"])
ref.to_csv("reference.csv", index=False)
