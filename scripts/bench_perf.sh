#!/usr/bin/env bash
# Per-day performance metrics side by side with the peers (NannyML's PerformanceCalculator and
# plain scikit-learn per day) in one run, on the peer benchmark's 1M-row current set (binary
# classifier: y_pred_proba, y_pred, y_true; 30 days). Checks that modelwatch's daily numbers
# equal scikit-learn's on the same rows, then prints a Markdown table for docs/benchmarks.md.
#
#   scripts/bench_perf.sh           # ~3 min on the 2-vCPU VM
#
# Environment: PEERS, BENCH_CACHE, CARGO_TARGET_DIR as for scripts/bench_drift.sh;
# REPEAT (default 3) runs of the warm metrics query, median kept.
set -euo pipefail

REPEAT=${REPEAT:-3}
# shellcheck source=scripts/bench_common.sh
source "$(dirname "$0")/bench_common.sh"

# modelwatch: import the file (predictions and their labels), then the metrics query: the first
# builds the per-hour aggregates from the raw events, the next ones read them.
/usr/bin/time -f "%e %M" -o "$WORK/time_import" \
    "$BIN" import predictions "$DATA/current_1m.parquet" --model peers --data "$WORK/store" >&2
say "import: $(cat "$WORK/time_import") (s, KB)"
run_metrics() {
    /usr/bin/time -f "%e %M" -o "$WORK/time_$1" \
        "$BIN" metrics --model peers --data "$WORK/store" --window 1d --format json >"$WORK/metrics_$1.json"
    say "metrics $1: $(cat "$WORK/time_$1") (s, KB)"
}
run_metrics cold
for i in $(seq "$REPEAT"); do run_metrics "warm_$i"; done

say "peers: nannyml_performance, sklearn_perf_daily at 1m"
"$VENV/bin/python" "$WORK/bench_peers.py" --sizes 1m --tasks nannyml_performance sklearn_perf_daily \
    --out "$WORK/results/peers.json" >&2
echo "uptime after: $(uptime)" | tee -a "$WORK/uptime" >&2

WORK=$WORK REPEAT=$REPEAT PEERS=$PEERS "$VENV/bin/python" - <<'EOF'
import json, os, statistics
work, repeat, peers_dir = os.environ["WORK"], int(os.environ["REPEAT"]), os.environ["PEERS"]

def timed(name):
    wall, kb = open(f"{work}/time_{name}").read().split()[-2:]
    return float(wall), int(kb) / 1024

imp = timed("import")
cold = timed("cold")
warm = sorted(timed(f"warm_{i}") for i in range(1, repeat + 1))
warm_med = warm[len(warm) // 2]

# modelwatch's per-day numbers against scikit-learn's on the same rows.
ours = json.load(open(f"{work}/metrics_cold.json"))
want = {d["day"]: d for d in json.load(open(f"{peers_dir}/results/values_sklearn_perf_daily_1m.json"))}
worst = {}
for w in ours["windows"]:
    day = w["start"][:10]
    if day not in want:
        continue
    assert w["predictions"] == want[day]["rows"], (day, w["predictions"], want[day]["rows"])
    for m in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        worst[m] = max(worst.get(m, 0.0), abs(w[m]["value"] - want[day][m]))
assert len(ours["windows"]) == len(want), (len(ours["windows"]), len(want))

peers = {r["task"]: r for r in json.load(open(f"{work}/results/peers.json"))["results"] if r["size"] == "1m"}
print("| tool (1M rows, 30 daily windows, 5 metrics) | wall s | process wall s | peak RSS MB |")
print("|---|---:|---:|---:|")
print(f"| modelwatch import (Parquet → store, predictions + labels) | {imp[0]:.2f} | {imp[0]:.2f} | {imp[1]:.0f} |")
print(f"| modelwatch metrics, first query (builds the per-hour aggregates) | {cold[0]:.2f} | {cold[0]:.2f} | {cold[1]:.0f} |")
print(f"| modelwatch metrics, next queries (median of {repeat}) | {warm_med[0]:.2f} | {warm_med[0]:.2f} | {warm_med[1]:.0f} |")
for name, task in (("NannyML PerformanceCalculator (fit + calculate)", "nannyml_performance"),
                   ("scikit-learn per day", "sklearn_perf_daily")):
    r = peers.get(task, {})
    if r.get("status") != "ok":
        print(f"| {name} | {r.get('status', 'missing')} | | |")
        continue
    print(f"| {name} | {r['wall_s']:.2f} | {r['process_wall_s']:.2f} | {r['peak_rss_mb']:.0f} |")
print()
print("modelwatch: whole process of each command (store opened, JSON written). Peers: wall s = the task"
      " alone (DataFrame already loaded); process wall s = the whole worker process.")
print("Largest |modelwatch - scikit-learn| over the 30 days: " +
      ", ".join(f"{m} {v:.1e}" for m, v in worst.items()) +
      " (roc_auc from 1,000-bin score histograms beyond 1,000 rows a window).")
print()
print(open(f"{work}/uptime").read().strip())
EOF
