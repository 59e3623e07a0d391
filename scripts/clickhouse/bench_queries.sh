#!/usr/bin/env bash
# The 30-day metrics and drift queries on ClickHouse beside the embedded store, on the same
# events (issue 21 §3): modelwatch-perfbench writes DAYS x PER_DAY predictions of a binary
# classifier (70 % labelled) and a reference into an embedded store, `modelwatch migrate` moves
# it into a 2-shard cluster (timed: rows/s of the load), then the same HTTP queries are timed
# through `serve --data` and through `serve --store`: the first (on ClickHouse it builds every
# hour's state: `migrate` copies events and catalog, not derived state) and the next RUNS.
#
#   DAYS=30 PER_DAY=100000 scripts/clickhouse/bench_queries.sh      # 3M events
#
# Environment: DAYS (30), PER_DAY (100000), REFERENCE (10000 reference rows), RUNS (5),
# PROFILE (release), NO_BUILD=1, WORK (scratch directory; removed at the end), BATCH (migrate's
# --batch-rows, 20000), TRACE=1 (the ClickHouse serve logs every query with its time,
# MODELWATCH_CLICKHOUSE_TRACE, and the cluster keeps system.query_log: both are copied to
# TRACE_OUT, default ./bench-queries-trace, before the cluster stops).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DAYS=${DAYS:-30}
PER_DAY=${PER_DAY:-100000}
REFERENCE=${REFERENCE:-10000}
RUNS=${RUNS:-5}
PROFILE=${PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/$PROFILE
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/mw-bench-queries.XXXXXX")}
mkdir -p "$WORK"
say() { echo "== $*" >&2; }

if [ -z "${NO_BUILD:-}" ]; then
    say "build ($PROFILE)"
    (cd "$ROOT" && cargo build --profile "$PROFILE" -p modelwatch-cli -p modelwatch-bench --quiet)
fi

SERVE_PID=""
cleanup() {
    [ -n "$SERVE_PID" ] && { kill "$SERVE_PID" 2>/dev/null || true; wait "$SERVE_PID" 2>/dev/null || true; }
    "$ROOT/scripts/clickhouse/cluster.sh" stop "$WORK/cluster" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$2" -v b="$1" 'BEGIN{printf "%.1f", a-b}'; }

echo "start: $(uptime)"
EVENTS=$((DAYS * PER_DAY))
say "perfbench: $DAYS days x $PER_DAY predictions into an embedded store"
t0=$(now)
"$BIN/modelwatch-perfbench" --dir "$WORK/store" --days "$DAYS" --per-day "$PER_DAY" \
    --late-labels "$((PER_DAY / 10))" --runs 3 --drift-reference "$REFERENCE" >"$WORK/perfbench.out"
echo "perfbench (load, aggregates, in-process queries): $(secs "$t0" "$(now)") s"
grep -E 'loaded|aggregates built|first drift' "$WORK/perfbench.out" || true

say "cluster (2 shards)"
QUERY_LOG=${TRACE:-} SHARDS=2 "$ROOT/scripts/clickhouse/cluster.sh" start "$WORK/cluster" >/dev/null
HOSTS=$(sed 's|http://||' "$WORK/cluster/urls" | paste -sd, -)
A=$(head -1 "$WORK/cluster/urls")
STORE="clickhouse://$HOSTS/mwq"
echo "ClickHouse $(curl -fsS "$A" --data-binary 'SELECT version()'), 2 shards on 127.0.0.1"

say "migrate to $STORE"
t0=$(now)
"$BIN/modelwatch" migrate --data "$WORK/store" --to "$STORE" --batch-rows "${BATCH:-20000}" >"$WORK/migrate.out" 2>&1
t1=$(now)
rows=$(curl -fsS "$A" --data-binary "SELECT (SELECT count() FROM mwq.predictions) + (SELECT count() FROM mwq.labels)")
echo "migrate: $rows rows (predictions + labels) in $(secs "$t0" "$t1") s, $(awk -v n="$rows" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", n/(b-a)}') rows/s"
echo "on disk: embedded $(du -sm "$WORK/store" | cut -f1) MB; ClickHouse $(curl -fsS "$A" --data-binary "SELECT round(sum(bytes_on_disk) / 1e6) FROM system.parts WHERE database = 'mwq' AND active") MB on shard 0 (of 2)"

FROM=2026-01-01T00:00:00Z
TO=$(date -u -d "2026-01-01 + $DAYS days" +%Y-%m-%dT%H:%M:%SZ)
declare -A FIRST NEXT
time_queries() { # LABEL ARGS-OF-SERVE...
    local label=$1 url q t i all
    shift
    : >"$WORK/serve.out" # before the process opens it: the loop below reads it at once
    "$BIN/modelwatch" serve --addr 127.0.0.1:0 "$@" >"$WORK/serve.out" 2>"$WORK/serve.err" &
    SERVE_PID=$!
    url=""
    for _ in $(seq 600); do
        url=$(sed -n 's/^modelwatch listening on \(http[^ ]*\).*/\1/p' "$WORK/serve.out")
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { say "serve did not start: $(cat "$WORK/serve.err")"; exit 1; }
    for q in metrics drift; do
        all=""
        for ((i = 0; i <= RUNS; i++)); do
            t=$(curl -fsS -o "$WORK/$label.$q.json" -w '%{time_total}' \
                "$url/v1/models/perfbench/$q?window=1d&from=$FROM&to=$TO")
            all="$all $t"
        done
        FIRST[$label.$q]=$(echo "$all" | awk '{printf "%.3f", $1}')
        NEXT[$label.$q]=$(echo "$all" | tr ' ' '\n' | sed '/^$/d' | tail -n +2 | sort -g \
            | awk '{v[NR] = $1} END {printf "%.3f", v[int((NR + 1) / 2)]}')
    done
    kill "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=""
}
say "queries through serve --data"
time_queries embedded --data "$WORK/store"
say "queries through serve --store"
MODELWATCH_CLICKHOUSE_TRACE=${TRACE:-} MODELWATCH_DATA=$WORK/alerts time_queries clickhouse --store "$STORE"
if [ -n "${TRACE:-}" ]; then
    OUT=${TRACE_OUT:-$PWD/bench-queries-trace}
    mkdir -p "$OUT"
    cp "$WORK/serve.err" "$OUT/serve-trace.log"
    for u in $(cat "$WORK/cluster/urls"); do
        curl -fsS "$u" --data-binary "SYSTEM FLUSH LOGS" || true
        curl -fsS "$u" --data-binary "SELECT initial_query_id, is_initial_query, query_duration_ms, read_rows, read_bytes, result_rows, result_bytes, memory_usage, substring(replaceAll(query, '\n', ' '), 1, 200) FROM system.query_log WHERE type = 2 AND initial_query_id LIKE 'mw-%' ORDER BY event_time FORMAT TabSeparated" \
            >"$OUT/query_log.$(echo "$u" | sed 's/.*://').tsv" || true
    done
    say "trace in $OUT"
fi

# The same answer from both: the windows' counts (the numbers are compared by the tests).
for q in metrics drift; do
    if cmp -s <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([(w['start'], w.get('predictions', w.get('rows'))) for w in d['windows']])" "$WORK/embedded.$q.json") \
        <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print([(w['start'], w.get('predictions', w.get('rows'))) for w in d['windows']])" "$WORK/clickhouse.$q.json"); then
        echo "$q: the same windows and counts from both stores"
    else
        echo "$q: the windows or counts DIFFER between the stores"
    fi
done

echo
echo "$EVENTS predictions over $DAYS days, window=1d, from=$FROM to=$TO; median of $RUNS after the first"
echo
echo "| query | embedded first s | embedded next s | ClickHouse first s | ClickHouse next s |"
echo "|---|---:|---:|---:|---:|"
for q in metrics drift; do
    echo "| /$q | ${FIRST[embedded.$q]} | ${NEXT[embedded.$q]} | ${FIRST[clickhouse.$q]} | ${NEXT[clickhouse.$q]} |"
done
echo "end: $(uptime)"
