#!/usr/bin/env bash
# What "acknowledged means durable on the cluster" costs: ROWS prediction rows (25 features)
# inserted over HTTP into each shard's local table of a 2 x 2 replicated cluster, with
# insert_quorum=2 (the insert returns when both replicas of the shard have the part) and without
# (returns when the receiving replica has it). Starts and stops its own cluster by pid.
#   scripts/clickhouse/bench_quorum.sh [ROWS] [FORMAT]      (default 200000 JSONEachRow)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
N=${1:-200000} FMT=${2:-JSONEachRow} DB=mwquorum
dir=$(mktemp -d "${TMPDIR:-/tmp}/mwquorum.XXXXXX")
trap '"$here/cluster.sh" stop "$dir/cluster"; rm -rf "$dir"' EXIT
mapfile -t urls < <(SHARDS=2 REPLICAS=2 "$here/cluster.sh" start "$dir/cluster")
zk=$(sed -n 's/^clientPort=//p' "$dir/cluster/zookeeper/zoo.cfg")
for _ in $(seq 120); do
    [ "$( (exec 3<>"/dev/tcp/127.0.0.1/$zk" && echo ruok >&3 && head -c 4 <&3) 2>/dev/null)" = imok ] && break
    sleep 0.5
done
python3 "$here/check_schema.py" apply --db $DB --replicated "${urls[@]}" >/dev/null
A=${urls[0]} B=${urls[2]} # replica 0 of shard 0 and of shard 1
q() { curl -fsS "$1/?database=$DB" --data-binary "$2"; }
T0=1779998400000000
cols="model, request_id, version, role, ts, received_at, keep, error, prediction, score, latency_ms, cost, feature_names, feature_numbers, feature_texts, event"
gen="SELECT 'm' AS model, concat('b', toString(number)) AS request_id, 'v1' AS version,
  CAST('served' AS Enum8('served' = 0, 'shadow' = 1)) AS role,
  toInt64($T0 + (number % 720) * 3600000000 + number) AS ts, toUInt64($T0 + 720 * 3600000000 + number) AS received_at,
  bitNot(received_at) AS keep, toUInt8(0) AS error, toString(number % 2) AS prediction,
  CAST((number % 1000) / 1000 AS Nullable(Float64)) AS score, CAST(NULL AS Nullable(Float64)) AS latency_ms, CAST(NULL AS Nullable(Float64)) AS cost,
  arrayMap(i -> concat('f', toString(i)), range(25)) AS feature_names,
  arrayMap(i -> ((number * (i + 7919)) % 100003) / 1000, range(25)) AS feature_numbers,
  arrayMap(i -> '', range(25)) AS feature_texts,
  concat('{\"request_id\":\"', request_id, '\",\"features\":{', arrayStringConcat(arrayMap((n, v) -> concat('\"', n, '\":', toString(v)), feature_names, feature_numbers), ','), '}}') AS event
FROM system.numbers LIMIT $N"
for s in 0 1; do q "$A" "SELECT * FROM ($gen) WHERE cityHash64(request_id) % 2 = $s FORMAT $FMT" >"$dir/s$s"; done
echo "machine: $(nproc) cores; $(uptime)"
query="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "INSERT INTO predictions_local ($cols) FORMAT $FMT")"
for quorum in 0 2 0 2; do
    for u in "${urls[@]}"; do q "$u" "TRUNCATE TABLE predictions_local" >/dev/null || true; done
    sleep 1
    start=$(date +%s.%N)
    # Distinct settings per run keep the replicated block deduplication from skipping a re-insert.
    curl -fsS -o /dev/null "$A/?database=$DB&insert_quorum=$quorum&insert_deduplicate=0&query=$query" -X POST -T "$dir/s0" &
    p0=$!
    curl -fsS -o /dev/null "$B/?database=$DB&insert_quorum=$quorum&insert_deduplicate=0&query=$query" -X POST -T "$dir/s1" &
    p1=$!
    wait $p0 $p1
    t=$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")
    echo "insert_quorum=$quorum: $N rows ($FMT) over both shards' local tables in ${t}s = $(python3 -c "print(f'{$N / $t / 1e3:.0f}k rows/s')"); rows on the other replicas right after the ack: $(q "${urls[1]}" 'SELECT count() FROM predictions_local') + $(q "${urls[3]}" 'SELECT count() FROM predictions_local')"
done
echo "machine after: $(uptime)"
