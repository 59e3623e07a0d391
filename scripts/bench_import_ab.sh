#!/usr/bin/env bash
# Issue 24: two builds of modelwatch alternated run by run on the 1M-row import (predictions
# with their labels) and the first and second metrics queries on the store it made. Under the
# load of other engineers' builds the wall times vary several-fold; CPU seconds (user + sys)
# and peak RSS are the steady measures, so every line has them and the load average.
#
#   scripts/bench_import_ab.sh A_BIN B_BIN [PAIRS]     # PAIRS (default 3): A, B, A, B, ...
#
# BENCH_CACHE as for scripts/bench_files.sh (the data is made by that script).
set -euo pipefail
A=$1
B=$2
PAIRS=${3:-3}
DATA=${BENCH_CACHE:-$HOME/.cache/modelwatch-bench}/data
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

timed() {
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/t" "$@" >"$WORK/out" 2>"$WORK/err" || {
        cat "$WORK/err" >&2
        exit 1
    }
    read -r wall user sys kb <"$WORK/t"
    printf "%.2f s wall, %.2f s CPU, %d MB" "$wall" "$(echo "$user + $sys" | bc)" $((kb / 1024))
}

echo "| run | build | import | first query | next query | load (1 min) |"
echo "|---|---|---|---|---|---|"
for i in $(seq "$PAIRS"); do
    for name in A B; do
        bin=${!name}
        store=$WORK/store
        rm -rf "$store"
        import=$(timed "$bin" import predictions "$DATA/current_1m.parquet" --model peers --data "$store")
        first=$(timed "$bin" metrics --model peers --data "$store" --window 1d --format json)
        cp "$WORK/out" "$WORK/answer_$name"
        next=$(timed "$bin" metrics --model peers --data "$store" --window 1d --format json)
        load=$(cut -d' ' -f1 /proc/loadavg)
        echo "| $i | $name | $import | $first | $next | $load |"
    done
    # Both builds answer the first query with the same numbers.
    cmp -s "$WORK/answer_A" "$WORK/answer_B" || {
        echo "the two builds' first answers differ" >&2
        exit 1
    }
done
