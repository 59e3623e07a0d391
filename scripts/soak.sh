#!/usr/bin/env bash
# Soak test (issue 19): measure the most live traffic the server takes on this machine, then hold
# half of it for ten minutes while readers query metrics, drift, quality, feedback, alerts, the
# Prometheus exporter and the dashboard. Prints the rate reached, the server's memory and CPU
# every 30 s, and fails on any error, on a lost event, or if the server logged a panic.
#
#   scripts/soak.sh                      # 10 minutes
#   SOAK_SECONDS=60 scripts/soak.sh      # a shorter run
#   SOAK_MAX_RATE=60000 scripts/soak.sh  # at most this rate (the data directory's room)
#   scripts/soak.sh --query /v1/models/soak/metrics?window=1h ...   # other readers' paths
#
# Arguments are passed to modelwatch-soak (see its --help).
# Release build; a fresh data directory under $TMPDIR, removed at the end (it grows by about
# 270 bytes per event: 10 minutes at 50k events/s is about 8 GB; SOAK_MAX_RATE caps the rate
# when $TMPDIR has less room than half the maximum needs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/modelwatch-target}
SECONDS_TO_RUN=${SOAK_SECONDS:-600}
BIN=$CARGO_TARGET_DIR/release

echo "== build (release)" >&2
(cd "$ROOT" && cargo build --release --quiet -p modelwatch-cli -p modelwatch-bench)

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start_server() {
    rm -rf "$WORK/data" && mkdir -p "$WORK/data"
    # Created here: under load the background server may not have opened it yet when the
    # loop below first reads it, and a failed read would end the script (set -e).
    : >"$WORK/server.out"
    "$BIN/modelwatch" serve --data "$WORK/data" --addr 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        URL=$(sed -n 's/^modelwatch listening on //p' "$WORK/server.out")
        [ -n "$URL" ] && return
        sleep 0.1
    done
    echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}

stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
    if grep -n "panicked" "$WORK/server.log"; then echo "the server panicked" >&2; exit 1; fi
}

# The test set the drift, quality and baseline queries compare with: 2,000 rows shaped like the
# load generator's events (20 numeric features, 5 categorical, a score, a prediction, a label).
reference() {
    awk 'BEGIN { srand(7);
        printf "f00"; for (f = 1; f < 20; f++) printf ",f%02d", f; for (c = 0; c < 5; c++) printf ",c%d", c;
        print ",score,prediction,label";
        split("a b c d e f g", cats, " ");
        for (r = 0; r < 2000; r++) {
            printf "%.4f", rand() * 100; for (f = 1; f < 20; f++) printf ",%.4f", rand() * 100;
            for (c = 0; c < 5; c++) printf ",c%d_%s", c, cats[int(rand() * 7) + 1];
            s = rand(); printf ",%.6f,%d,%d\n", s, (s >= 0.5), (rand() < s);
        }
    }' >"$WORK/reference.csv"
}
reference

echo "== the most this machine takes: 1,000,000 live events as fast as they go" >&2
uptime >&2
start_server
"$BIN/modelwatch-loadgen" --server "$URL" --model soak --events 1000000 --batch 10000 \
    --concurrency 4 --now --pid "$SERVER_PID" | tee "$WORK/max.txt"
stop_server
MAX=$(awk -F'|' '/^\| 1000000 /{ gsub(/ /, "", $7); print $7 }' "$WORK/max.txt")
RATE=$((MAX / 2))
if [ -n "${SOAK_MAX_RATE:-}" ] && [ "$RATE" -gt "$SOAK_MAX_RATE" ]; then
    echo "== half of $MAX events/s capped at SOAK_MAX_RATE=$SOAK_MAX_RATE" >&2
    RATE=$SOAK_MAX_RATE
fi
echo "== soak: $RATE events/s (half of $MAX, or the cap) for $SECONDS_TO_RUN s, with readers" >&2
start_server
curl -sf -X PUT -H 'content-type: text/csv' --data-binary @"$WORK/reference.csv" \
    "$URL/v1/models/soak/reference" >/dev/null
"$BIN/modelwatch-soak" --server "$URL" --pid "$SERVER_PID" --model soak --rate "$RATE" \
    --duration "$SECONDS_TO_RUN" --batch 10000 --concurrency 4 --readers 2 "$@"
echo "data directory after the soak: $(du -sh "$WORK/data" | cut -f1)"
uptime
stop_server
echo "no error, no lost event, no panic"
