#!/usr/bin/env bash
# Issue 24, "speed from files": modelwatch side by side with the peers (Evidently, NannyML,
# whylogs, scouter, SciPy, scikit-learn) in one run, on the peer benchmark's 1M-row current
# file and its 100k-row reference:
#   - drift of 25 features: `modelwatch drift` against every peer's drift task;
#   - per-day metrics of the file: `modelwatch metrics --predictions FILE` (no data directory)
#     against scikit-learn per day (its load of the file stated apart), NannyML and Evidently,
#     every day checked equal to scikit-learn's numbers;
#   - `modelwatch import` of the file (predictions and labels) and the first and second metrics
#     queries on the store it made.
# Prints the machine's load before and after and a Markdown table for docs/benchmarks.md.
#
#   scripts/bench_files.sh        # ~8 min on the 2-vCPU VM (Evidently's 1M tasks take minutes)
#
# Environment: PEERS, BENCH_CACHE, CARGO_TARGET_DIR as for scripts/bench_drift.sh; REPEAT
# (default 3) runs of each modelwatch command, median kept; PEER_TASKS to run fewer peers.
set -euo pipefail

REPEAT=${REPEAT:-3}
PEER_TASKS=${PEER_TASKS:-"load_parquet_pandas sklearn_perf_daily scipy_drift scouter_psi_drift nannyml_performance nannyml_univariate_drift whylogs_profile_drift evidently_classification evidently_drift"}
# shellcheck source=scripts/bench_common.sh
source "$(dirname "$0")/bench_common.sh"
EXTRA_VENV=$CACHE/venv-extra
if [ ! -x "$EXTRA_VENV/bin/python" ]; then
    say "extra venv: $EXTRA_VENV from $PEERS/requirements-extra.txt"
    python3 -m venv "$EXTRA_VENV"
    "$EXTRA_VENV/bin/pip" install -q -r "$PEERS/requirements-extra.txt"
fi

# One line per run: wall, user, sys (s), peak RSS (KB).
timed() {
    local name=$1
    shift
    /usr/bin/time -f "%e %U %S %M" -a -o "$WORK/time_$name" "$@"
}

for i in $(seq "$REPEAT"); do
    timed drift "$BIN" drift --reference "$DATA/reference_100k.parquet" \
        --current "$DATA/current_1m.parquet" --format json >"$WORK/drift.json"
    timed metrics_file "$BIN" metrics --predictions "$DATA/current_1m.parquet" --window 1d \
        --format json >"$WORK/metrics_file.json"
done
say "drift: $(tail -n1 "$WORK/time_drift"); metrics --predictions: $(tail -n1 "$WORK/time_metrics_file")"
for i in $(seq 2); do
    rm -rf "$WORK/store"
    timed import "$BIN" import predictions "$DATA/current_1m.parquet" --model peers \
        --data "$WORK/store" >"$WORK/import.txt"
    timed first "$BIN" metrics --model peers --data "$WORK/store" --window 1d --format json \
        >"$WORK/metrics_first.json"
    timed second "$BIN" metrics --model peers --data "$WORK/store" --window 1d --format json \
        >"$WORK/metrics_second.json"
done
say "import: $(tail -n1 "$WORK/time_import"); first query $(tail -n1 "$WORK/time_first")"
echo "uptime after modelwatch: $(uptime)" | tee -a "$WORK/uptime" >&2

say "peers at 1m: $PEER_TASKS"
# shellcheck disable=SC2086
"$VENV/bin/python" "$WORK/bench_peers.py" --sizes 1m --tasks $PEER_TASKS \
    --extra-python "$EXTRA_VENV/bin/python" --out "$WORK/results/peers.json" >&2
echo "uptime after the peers: $(uptime)" | tee -a "$WORK/uptime" >&2

WORK=$WORK PEERS=$PEERS "$VENV/bin/python" - <<'PY'
import json, os, statistics
work, peers_dir = os.environ["WORK"], os.environ["PEERS"]

def runs(name):
    out = []
    for line in open(f"{work}/time_{name}"):
        wall, user, sys_, kb = line.split()[-4:]
        out.append((float(wall), float(user) + float(sys_), int(kb) / 1024))
    return out

def med(name):
    r = sorted(runs(name))
    wall, cpu, _ = r[len(r) // 2]
    return wall, cpu, max(x[2] for x in r), ", ".join(f"{x[0]:.2f}" for x in runs(name))

# Every day of the file path and of the store's first query against scikit-learn's numbers.
want = {d["day"]: d for d in json.load(open(f"{peers_dir}/results/values_sklearn_perf_daily_1m.json"))}
def worst(path):
    rep = json.load(open(path))
    assert len(rep["windows"]) == len(want), (len(rep["windows"]), len(want))
    w = {}
    for win in rep["windows"]:
        day = want[win["start"][:10]]
        assert win["predictions"] == day["rows"], (win["start"], win["predictions"], day["rows"])
        for m in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            w[m] = max(w.get(m, 0.0), abs(win[m]["value"] - day[m]))
    return ", ".join(f"{m} {v:.1e}" for m, v in w.items())

peers = {r["task"]: r for r in json.load(open(f"{work}/results/peers.json"))["results"] if r["size"] == "1m"}
def peer(task):
    r = peers.get(task, {})
    if r.get("status") != "ok":
        return None
    return r

def row(task, tool, wall, process, cpu, rss, note=""):
    f = lambda x: "" if x is None else f"{x:.2f}"
    print(f"| {task} | {tool} | {f(wall)} | {f(process)} | {f(cpu)} | {'' if rss is None else f'{rss:.0f}'} | {note} |")

print("| task (1M current rows) | tool | wall s | process wall s | CPU s | peak RSS MB | notes |")
print("|---|---|---:|---:|---:|---:|---|")
w, c, m, all_ = med("drift")
row("drift, 25 features vs 100k reference", "modelwatch drift", w, w, c, m, f"runs {all_}")
for t, name in (("scipy_drift", "SciPy (ks_2samp, chi2, PSI)"), ("scouter_psi_drift", "scouter PSI"),
                ("nannyml_univariate_drift", "NannyML univariate drift"),
                ("whylogs_profile_drift", "whylogs profiles + drift"), ("evidently_drift", "Evidently DataDriftPreset")):
    r = peer(t)
    if r: row("", name, r["wall_s"], r["process_wall_s"], None, r["peak_rss_mb"])
    else: row("", name, None, None, None, None, peers.get(t, {}).get("status", "missing"))
w, c, m, all_ = med("metrics_file")
row("per-day metrics of the file (5 metrics, 30 days)", "modelwatch metrics --predictions (no store)", w, w, c, m,
    f"runs {all_}; vs scikit-learn: {worst(work + '/metrics_file.json')}")
sk, load = peer("sklearn_perf_daily"), peer("load_parquet_pandas")
if sk and load:
    row("", "pandas read_parquet + scikit-learn per day", sk["wall_s"] + load["wall_s"], sk["process_wall_s"], None,
        max(sk["peak_rss_mb"], load["peak_rss_mb"]), f"sklearn {sk['wall_s']:.2f} s + load {load['wall_s']:.2f} s")
for t, name in (("nannyml_performance", "NannyML PerformanceCalculator"),
                ("evidently_classification", "Evidently ClassificationPreset")):
    r = peer(t)
    if r: row("", name, r["wall_s"], r["process_wall_s"], None, r["peak_rss_mb"])
    else: row("", name, None, None, None, None, peers.get(t, {}).get("status", "missing"))
imp, first, second = med("import"), med("first"), med("second")
row("import (predictions + labels) into a store", "modelwatch import", imp[0], imp[0], imp[1], imp[2], f"runs {imp[3]}")
row("", "then the first metrics query", first[0], first[0], first[1], first[2],
    f"runs {first[3]}; vs scikit-learn: {worst(work + '/metrics_first.json')}")
row("", "then the next query", second[0], second[0], second[1], second[2], f"runs {second[3]}")
print()
print("modelwatch: whole process (median of its runs; CPU = user + system). Peers: wall s = the task alone"
      " as bench_peers.py defines it (Parquet already loaded into pandas); process wall s = the whole worker"
      " (interpreter, imports, load, task).")
print()
print(open(f"{work}/uptime").read().strip())
PY
