#!/usr/bin/env bash
# What the writer's duplicate check costs on one ClickHouse server (issue 21, ADR 019 "Writes:
# the duplicate check, measured"): a table of ROWS predictions of one model with random request
# ids (the load generator's shape), spread over DAYS event days, and a batch of BATCH new ids
# (one shard's half of a 10,000-row batch) looked up the ways the writer could:
#   literal    request_id IN ('id', ...)            (the ids as SQL literals; before)
#   external   request_id IN _ids                   (the ids as an external table, TSV)
#   prewhere   PREWHERE request_id IN _ids          (external, read the other columns after)
#   day        external, AND ts within the batch's day (option (a): one partition of DAYS)
#   lookup256  external, on a narrow table ORDER BY (model, request_id, version),
#   lookup64   index_granularity 256 / 64 (option (b))
# Each query runs RUNS times; prints the servers' own figures from system.query_log (duration,
# rows and bytes read). Starts its own server with scripts/clickhouse/cluster.sh (QUERY_LOG=1)
# and stops it by pid.
#
#   ROWS=3000000 scripts/clickhouse/bench_dup_check.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROWS=${ROWS:-3000000}
DAYS=${DAYS:-28}
BATCH=${BATCH:-5000}
RUNS=${RUNS:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mw-dup.XXXXXX")
trap '"$ROOT/scripts/clickhouse/cluster.sh" stop "$WORK/c" || true; rm -rf "$WORK"' EXIT
U=$(QUERY_LOG=1 SHARDS=1 "$ROOT/scripts/clickhouse/cluster.sh" start "$WORK/c")
ch() { curl -fsS "$U/?max_query_size=104857600" --data-binary "$1"; }
chf() { curl -fsS "$U/?max_query_size=104857600" --data-binary @"$1"; }
ext() { # SQL: the ids as the external table _ids
    local query
    query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")
    curl -fsS -F "_ids=@$WORK/ids.tsv" "$U/?_ids_structure=request_id+String&query=$query" >/dev/null
}

ch "CREATE DATABASE d"
sed -n '/CREATE TABLE IF NOT EXISTS predictions_local/,/ORDER BY (model, request_id, version);/p' \
    "$ROOT/scripts/clickhouse/schema.sql" | sed 's/predictions_local/d.p/' >"$WORK/p.sql"
chf "$WORK/p.sql"
# 2026-01-01 + day; ids as the load generator's (random 64 bits, then batch and row).
ch "INSERT INTO d.p (model, request_id, version, role, ts, received_at, keep, error, prediction, event)
    SELECT 'm', lower(concat(hex(rand64(number)), hex(toUInt32(intDiv(number, 10000))), hex(toUInt32(number % 10000)))),
    'v1', 'served', toInt64(1767225600 + (intDiv(number, 10000) % $DAYS) * 86400 + number % 86400) * 1000000,
    number, 18446744073709551615 - number, 0, '1', '{}' FROM numbers($ROWS)"
for g in 256 64; do
    ch "CREATE TABLE d.ids$g (model String, request_id String, version String, role Enum8('served' = 0, 'shadow' = 1), ts Int64)
        ENGINE = ReplacingMergeTree ORDER BY (model, request_id, version) SETTINGS index_granularity = $g"
    ch "INSERT INTO d.ids$g SELECT model, request_id, version, role, ts FROM d.p"
done
python3 -c "
import random
for i in range($BATCH): print('%016x%08x%08x' % (random.getrandbits(64), 99999, i))" >"$WORK/ids.tsv"
LIST="($(sed "s/.*/'&'/" "$WORK/ids.tsv" | paste -sd,))"
D=$((1767225600 + 86400 * 3))
SEL="SELECT request_id, version, toString(role) AS role, max(ts) >= 0 AS live"
GRP="GROUP BY request_id, version, role FORMAT Null"
for ((r = 0; r < RUNS; r++)); do
    echo "/* literal */ $SEL FROM d.p WHERE model = 'm' AND request_id IN $LIST $GRP" >"$WORK/q.sql"
    chf "$WORK/q.sql"
    ext "/* external */ $SEL FROM d.p WHERE model = 'm' AND request_id IN _ids $GRP"
    ext "/* prewhere */ $SEL FROM d.p PREWHERE request_id IN _ids WHERE model = 'm' $GRP"
    ext "/* day */ $SEL FROM d.p WHERE model = 'm' AND ts >= ${D}000000 AND ts < $((D + 86400))000000 AND request_id IN _ids $GRP"
    ext "/* lookup256 */ $SEL FROM d.ids256 WHERE model = 'm' AND request_id IN _ids $GRP"
    ext "/* lookup64 */ $SEL FROM d.ids64 WHERE model = 'm' AND request_id IN _ids $GRP"
done
sleep 2
ch "SYSTEM FLUSH LOGS" 2>/dev/null || sleep 2
echo "ClickHouse $(ch 'SELECT version()'), $ROWS rows over $DAYS days, $BATCH ids, $RUNS runs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| lookup | ms (each run) | rows read | MB read |"
echo "|---|---|---:|---:|"
ch "SELECT extract(query, '/\\\\* ([a-z0-9]+) \\\\*/') AS k, arrayStringConcat(groupArray(toString(query_duration_ms)), ', '),
    any(read_rows), round(any(read_bytes) / 1e6, 1)
    FROM system.query_log WHERE type = 2 AND query LIKE '/* %' GROUP BY k ORDER BY min(event_time), k FORMAT TSV" \
    | awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}'
