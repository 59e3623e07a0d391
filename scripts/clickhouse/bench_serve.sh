#!/usr/bin/env bash
# Ingest through `modelwatch serve` on ClickHouse (issue 21 §3), beside the embedded store on the
# same machine: starts a 2-shard cluster with cluster.sh, then per round
#   embedded: one `serve --data DIR`
#   one:      one `serve --store clickhouse://A,B/DB`
#   two:      two `serve --store` replicas on the same cluster (the second with
#             `[alerts] evaluate = false`), modelwatch-loadgen posting round-robin to both
# and runs modelwatch-loadgen against each, each ClickHouse run into a database of its own. It
# prints one table: events/s, latency, and the CPU seconds of the modelwatch processes, of the
# ClickHouse servers (from /proc/PID/stat of the pids cluster.sh started) and of the load
# generator, so the table says where the time goes: all of them share the machine's cores.
# Every process is stopped by its pid; the cluster's directory is removed at the end.
#
#   scripts/clickhouse/bench_serve.sh                     # builds (PROFILE, default release)
#   EVENTS=300000 ROUNDS=2 scripts/clickhouse/bench_serve.sh
#
# Environment: EVENTS (default 300000), BATCH (10000), CONCURRENCY (4: requests in flight in
# every mode, shared by the servers), ROUNDS (1: the modes alternate within each round), MODES
# (default "embedded one two"), PROFILE (release; bench-files rebuilds faster, see
# scripts/bench_common.sh), NO_BUILD=1 to use the binaries already built, WORK (a scratch
# directory, default a new one under ${TMPDIR:-/tmp}), QUERY_LOG=1 (the servers log every
# query: a second table per run says which statements took the servers' time).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
EVENTS=${EVENTS:-300000}
BATCH=${BATCH:-10000}
CONCURRENCY=${CONCURRENCY:-4}
ROUNDS=${ROUNDS:-1}
MODES=${MODES:-embedded one two}
PROFILE=${PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/$PROFILE
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/mw-bench-serve.XXXXXX")}
mkdir -p "$WORK"
say() { echo "== $*" >&2; }

if [ -z "${NO_BUILD:-}" ]; then
    say "build ($PROFILE)"
    (cd "$ROOT" && cargo build --profile "$PROFILE" -p modelwatch-cli -p modelwatch-bench --quiet)
fi

SERVE_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    "$ROOT/scripts/clickhouse/cluster.sh" stop "$WORK/cluster" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# CPU seconds (user + system) of the given pids, summed; the kernel counts in USER_HZ (100).
cpu() {
    local pid t=0
    for pid in "$@"; do
        t=$((t + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
load1() { cut -d' ' -f1 /proc/loadavg; }
# The servers' counters (18.16 has no SelectedRows: a mark is 8,192 rows), summed over the
# servers, in the order of EVENTS_NAMES.
EVENTS_NAMES="SelectQuery InsertQuery SelectedMarks MergedRows DelayedInserts"
ch_events() {
    local u
    for u in $(cat "$WORK/cluster/urls"); do
        curl -fsS "$u" --data-binary "SELECT $(for e in $EVENTS_NAMES; do printf "sumIf(value, event = '%s'), " "$e"; done | sed 's/, $//') FROM system.events"
    done | awk '{for (i = 1; i <= NF; i++) s[i] += $i} END {for (i = 1; i <= NF; i++) printf "%d ", s[i]}'
}

say "cluster (2 shards)"
SHARDS=2 QUERY_LOG=${QUERY_LOG:-} "$ROOT/scripts/clickhouse/cluster.sh" start "$WORK/cluster" >/dev/null
mapfile -t CH_PIDS <"$WORK/cluster/pids"
HOSTS=$(sed 's|http://||' "$WORK/cluster/urls" | paste -sd, -)
CH_VERSION=$(curl -fsS "$(head -1 "$WORK/cluster/urls")" --data-binary 'SELECT version()')

# serve NAME ARGS...: starts `modelwatch serve` on a free loopback port; sets URL and PID.
serve() {
    local name=$1
    shift
    mkdir -p "$WORK/$name"
    : >"$WORK/$name/out.log" # before the process opens it: the loop below reads it at once
    "$BIN/modelwatch" serve --addr 127.0.0.1:0 "$@" >"$WORK/$name/out.log" 2>"$WORK/$name/err.log" &
    PID=$!
    SERVE_PIDS+=("$PID")
    URL=""
    for _ in $(seq 600); do
        URL=$(sed -n 's/^modelwatch listening on \(http[^ ]*\).*/\1/p' "$WORK/$name/out.log")
        [ -n "$URL" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$URL" ] || { say "$name did not start: $(cat "$WORK/$name/err.log")"; exit 1; }
}

stop_serves() {
    local pid
    for pid in "${SERVE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SERVE_PIDS=()
}

ROWS=()
EVROWS=()
QLROWS=()
# With QUERY_LOG=1: the statements both servers finished since `$1` (a server time), by kind:
# count, summed duration (wall time of each, overlapping), rows read and written.
query_kinds() {
    local u
    for u in $(cat "$WORK/cluster/urls"); do
        curl -fsS "$u" --data-binary "SYSTEM FLUSH LOGS" >/dev/null 2>&1 || sleep 1.5
        curl -fsS "$u" --data-binary "SELECT multiIf(
                query LIKE 'INSERT INTO predictions_local%', 'insert predictions',
                query LIKE '%max(ts) >= %predictions_local%', 'duplicate check (predictions)',
                query LIKE 'INSERT INTO hour_changes_local%', 'label change counts',
                query LIKE 'INSERT INTO labels_local%', 'insert labels',
                query LIKE '%ANY LEFT JOIN%', 'scans with labels (refresh, reads)',
                query LIKE 'INSERT%', 'other inserts',
                query LIKE 'SELECT DISTINCT request_id FROM labels_local%', 'duplicate check (labels)',
                query LIKE '%hour_changes%' OR query LIKE '%hours_built%', 'stale hours',
                query LIKE '%aggregates%', 'per-hour state (aggregates)',
                'other reads') AS kind, count(), sum(query_duration_ms), sum(read_rows), sum(written_rows)
            FROM system.query_log WHERE type = 2 AND event_time >= toDateTime($1) AND query NOT LIKE '%system.%'
            GROUP BY kind FORMAT TSV"
    done | awk -F'\t' '{n[$1] += $2; ms[$1] += $3; r[$1] += $4; w[$1] += $5}
        END {for (k in n) printf "%s\t%d\t%d\t%d\t%d\n", k, n[k], ms[k], r[k], w[k]}' | sort -t$'\t' -k3,3nr
}
run() { # MODE ROUND
    local mode=$1 round=$2 urls pids db="" ch_before ch_after before after out
    case $mode in
        embedded)
            serve "emb$round" --data "$WORK/emb$round/data"
            urls=$URL pids=$PID ;;
        one)
            db=mwb_one_$round
            MODELWATCH_DATA=$WORK/one$round/alerts serve "one$round" --store "clickhouse://$HOSTS/$db"
            urls=$URL pids=$PID ;;
        two)
            db=mwb_two_$round
            MODELWATCH_DATA=$WORK/two${round}a/alerts serve "two${round}a" --store "clickhouse://$HOSTS/$db"
            urls=$URL pids=$PID
            # Every replica but one neither evaluates rules nor notifies (README).
            mkdir -p "$WORK/two${round}b"
            printf '[alerts]\nevaluate = false\n' >"$WORK/two${round}b/modelwatch.toml"
            MODELWATCH_DATA=$WORK/two${round}b/alerts serve "two${round}b" \
                --store "clickhouse://$HOSTS/$db" --config "$WORK/two${round}b/modelwatch.toml"
            urls="$urls,$URL" pids="$pids,$PID" ;;
        *) say "unknown mode $mode"; exit 2 ;;
    esac
    before=$(load1)
    ch_before=$(cpu "${CH_PIDS[@]}")
    local ev_before ev_after
    ev_before=$(ch_events)
    local t0
    t0=$(curl -fsS "$(head -1 "$WORK/cluster/urls")" --data-binary 'SELECT toUInt32(now())')
    say "round $round, $mode: $urls"
    out=$("$BIN/modelwatch-loadgen" --server "$urls" --pid "$pids" --events "$EVENTS" \
        --batch "$BATCH" --concurrency "$CONCURRENCY" 2>/dev/null)
    ch_after=$(cpu "${CH_PIDS[@]}")
    ev_after=$(ch_events)
    after=$(load1)
    echo "$out" >"$WORK/$mode$round.out"
    stop_serves
    # The loadgen's result row: | events | batch | concurrency | gzip | seconds | events/s | MB/s | p50 | p99 | accepted |
    local row secs evs p50 p99 acc mw lg
    row=$(echo "$out" | grep -E '^\| [0-9]' | head -1)
    IFS='|' read -r _ _ _ _ _ secs evs _ p50 p99 acc _ <<<"$row"
    mw=$(echo "$out" | sed -n 's/.*server \([0-9.]*\) s,.*/\1/p')
    lg=$(echo "$out" | sed -n 's/.*load generator \([0-9.]*\) s.*/\1/p')
    local ch="—"
    [ "$mode" != embedded ] && ch=$(awk -v a="$ch_after" -v b="$ch_before" 'BEGIN{printf "%.2f", (a-b)/100}')
    [ "$(echo "$acc" | tr -d ' ')" = "$EVENTS" ] || { say "$mode: accepted $acc of $EVENTS"; exit 1; }
    ROWS+=("| $round | $mode | $(echo "$evs" | tr -d ' ') | $(echo "$secs" | tr -d ' ') | $(echo "$p50" | tr -d ' ') | $(echo "$p99" | tr -d ' ') | $mw | $ch | $lg | $before / $after |")
    if [ "$mode" != embedded ] && [ -n "${QUERY_LOG:-}" ]; then
        local kind n ms rd wr # local: the caller's loop counter is `r`
        while IFS=$'\t' read -r kind n ms rd wr; do
            QLROWS+=("| $round | $mode | $kind | $n | $ms | $rd | $wr |")
        done < <(query_kinds "$t0")
    fi
    if [ "$mode" != embedded ]; then
        EVROWS+=("| $round | $mode | $(paste -d' ' <(echo "$ev_after" | tr ' ' '\n') <(echo "$ev_before" | tr ' ' '\n') | awk 'NF == 2 {printf "%d | ", $1 - $2}')")
    fi
    if [ -n "$db" ]; then
        curl -fsS "$(head -1 "$WORK/cluster/urls")" --data-binary "SELECT count() FROM $db.predictions" \
            | grep -qx "$EVENTS" || say "$mode: $db.predictions does not hold $EVENTS rows"
        for u in $(cat "$WORK/cluster/urls"); do curl -fsS "$u" --data-binary "DROP DATABASE $db" >/dev/null; done
    else
        rm -rf "$WORK/emb$round"
    fi
}

START_UPTIME=$(uptime)
for ((r = 1; r <= ROUNDS; r++)); do
    for m in $MODES; do run "$m" "$r"; done
done

echo "machine: $(nproc) cores; start: $START_UPTIME; end: $(uptime)"
echo "ClickHouse $CH_VERSION, 2 shards on 127.0.0.1; modelwatch $("$BIN/modelwatch" --version 2>/dev/null || true) ($PROFILE)"
echo "$EVENTS events per run, batches of $BATCH, $CONCURRENCY requests in flight"
echo
echo "| round | through | events/s | seconds | p50 ms | p99 ms | modelwatch CPU s | ClickHouse CPU s | loadgen CPU s | load avg before / after |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "ClickHouse's counters over each run, both servers (system.events; a mark is 8,192 rows):"
echo
echo "| round | through | $(echo $EVENTS_NAMES | sed 's/ / | /g') |"
echo "|---:|---|$(for _ in $EVENTS_NAMES; do printf -- '---:|'; done)"
printf '%s\n' "${EVROWS[@]}"
if [ -n "${QUERY_LOG:-}" ]; then
    echo
    echo "The statements of each run, both servers (system.query_log; ms: each statement's wall time, summed):"
    echo
    echo "| round | through | statement | count | ms | rows read | rows written |"
    echo "|---:|---|---|---:|---:|---:|---:|"
    printf '%s\n' "${QLROWS[@]}"
fi
