#!/usr/bin/env bash
# `modelwatch drift` side by side with the peers (SciPy, Evidently) in one run, on the same
# files: the peer benchmark's 100k reference against its 1M (and 100k) current set, 25
# features, from Parquet. Prints a Markdown table; figures go into docs/benchmarks.md.
#
#   scripts/bench_drift.sh            # ~2.5 min on the 2-vCPU VM (Evidently's 1M run is ~1 min)
#
# Environment:
#   PEERS          peer benchmark folder (default /work/shared/bench/peers; only read)
#   BENCH_CACHE    data and venv (default ~/.cache/modelwatch-bench)
#   REPEAT         runs of modelwatch per size, median kept (default 3)
#   PEER_REPEAT    runs of each peer task (default 1)
#   CARGO_TARGET_DIR  as for cargo (default ~/.cache/modelwatch-target)
set -euo pipefail

REPEAT=${REPEAT:-3}
PEER_REPEAT=${PEER_REPEAT:-1}
# shellcheck source=scripts/bench_common.sh
source "$(dirname "$0")/bench_common.sh"

# modelwatch: whole process (read Parquet + profile + tests + JSON out), wall and peak RSS
# from /usr/bin/time.
for size in 1m 100k; do
    for i in $(seq "$REPEAT"); do
        /usr/bin/time -f "%e %M" -o "$WORK/time_${size}_$i" \
            "$BIN" drift --reference "$DATA/reference_100k.parquet" \
            --current "$DATA/current_$size.parquet" --format json >"$WORK/report_${size}_$i.json"
        say "modelwatch drift $size run $i: $(cat "$WORK/time_${size}_$i") (s, KB)"
    done
done

say "peers: scipy_drift, evidently_drift at 1m (repeat $PEER_REPEAT)"
"$VENV/bin/python" "$WORK/bench_peers.py" --sizes 1m --tasks scipy_drift evidently_drift \
    --repeat "$PEER_REPEAT" --out "$WORK/results/peers.json" >&2

echo "uptime after: $(uptime)" | tee -a "$WORK/uptime" >&2

WORK=$WORK REPEAT=$REPEAT "$VENV/bin/python" - <<'EOF'
import json, os, statistics
work, repeat = os.environ["WORK"], int(os.environ["REPEAT"])

def ours(size):
    runs = []
    for i in range(1, repeat + 1):
        wall, kb = open(f"{work}/time_{size}_{i}").read().split()[-2:]
        rep = json.load(open(f"{work}/report_{size}_{i}.json"))
        runs.append((float(wall), int(kb) / 1024, rep))
    runs.sort(key=lambda r: r[0])
    wall, rss, rep = runs[len(runs) // 2]
    drifted = [f["feature"] for f in rep["features"] if f["drifted"]]
    return wall, rss, [r[0] for r in runs], max(r[1] for r in runs), drifted

peers = {r["task"]: r for r in json.load(open(f"{work}/results/peers.json"))["results"]
         if r["size"] == "1m"}
m1, m100 = ours("1m"), ours("100k")
ev, sp = peers.get("evidently_drift", {}), peers.get("scipy_drift", {})

def x(a, b):
    return f"{b / a:.0f}x" if a and b else "-"

print("| current rows | tool | wall s | process wall s | peak RSS MB | runs (wall s) | modelwatch faster by |")
print("|---|---|---:|---:|---:|---|---:|")
print(f"| 1M | modelwatch drift | {m1[0]:.2f} | {m1[0]:.2f} | {m1[3]:.0f} | "
      f"{', '.join(f'{w:.2f}' for w in m1[2])} | |")
for name, r in (("SciPy (scipy_drift)", sp), ("Evidently DataDriftPreset (evidently_drift)", ev)):
    if r.get("status") != "ok":
        print(f"| 1M | {name} | {r.get('status', 'missing')} | | | | |")
        continue
    runs = ", ".join(f"{w:.2f}" for w in r.get("wall_s_all", [r["wall_s"]]))
    print(f"| 1M | {name} | {r['wall_s']:.2f} | {r['process_wall_s']:.2f} | {r['peak_rss_mb']:.0f} | "
          f"{runs} | {x(m1[0], r['wall_s'])} (task) / {x(m1[0], r['process_wall_s'])} (process) |")
print(f"| 100k | modelwatch drift | {m100[0]:.2f} | {m100[0]:.2f} | {m100[3]:.0f} | "
      f"{', '.join(f'{w:.2f}' for w in m100[2])} | |")
print()
print(f"modelwatch wall: median of {repeat}, whole process (Parquet read included); peak RSS: max of the runs.")
print("Peers: wall s = the task alone (excludes interpreter start, imports and Parquet load); "
      "process wall s = the whole worker process; peak RSS includes the loaded DataFrames.")
print()
for size, m in (("1M", m1), ("100k", m100)):
    print(f"modelwatch verdicts ({size}): drifted = {', '.join(m[4])} ({len(m[4])} of 25)")
for name, r in (("scipy_drift", sp), ("evidently_drift", ev)):
    if r.get("summary"):
        print(f"{name} summary: {json.dumps(r['summary'])[:400]}")
print()
print(open(f"{work}/uptime").read().strip())
EOF
