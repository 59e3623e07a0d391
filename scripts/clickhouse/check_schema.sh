#!/usr/bin/env bash
# Checks scripts/clickhouse/schema.sql on real ClickHouse servers (ADR 019): starts a 2-shard
# cluster with cluster.sh, applies the schema to every server, runs the checks (a)-(h) of
# check_schema.py (fails loudly on any mismatch), then the same on a 2x2 replicated cluster
# with ZooKeeper (REPLICATED=0 skips it), and, if ~/.cache/venv-chdb has chdb, the single-server
# part on the current dialect. Every server is stopped by its pid, also on failure.
#
#   scripts/clickhouse/check_schema.sh [WORKDIR]     # default: a fresh mktemp dir
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d /tmp/mw-chschema.XXXXXX)}
mkdir -p "$work"
clusters=()
cleanup() { for c in "${clusters[@]}"; do "$here/cluster.sh" stop "$c" || true; done; }
trap cleanup EXIT

run() { # NAME SHARDS REPLICAS [--replicated]
    local name=$1 shards=$2 replicas=$3; shift 3
    local dir="$work/$name"
    clusters+=("$dir")
    echo "== $name: $shards shards x $replicas replicas"
    mapfile -t urls < <(SHARDS=$shards REPLICAS=$replicas "$here/cluster.sh" start "$dir")
    [ "${#urls[@]}" = $((shards * replicas)) ] || { echo "check_schema.sh: $name did not start" >&2; exit 1; }
    if [ "$replicas" -gt 1 ]; then
        # cluster.sh waits for the ClickHouse servers only; ZooKeeper (a JVM) can take longer.
        local zk
        zk=$(sed -n 's/^clientPort=//p' "$dir/zookeeper/zoo.cfg")
        for _ in $(seq 120); do
            [ "$( (exec 3<>"/dev/tcp/127.0.0.1/$zk" && echo ruok >&3 && head -c 4 <&3) 2>/dev/null)" = imok ] && break
            sleep 0.5
        done
        echo "ZooKeeper on port $zk: $( (exec 3<>"/dev/tcp/127.0.0.1/$zk" && echo ruok >&3 && head -c 4 <&3) 2>/dev/null || echo 'not answering')"
    fi
    echo "server version: $(curl -fsS "${urls[0]}/?query=SELECT%20version()")"
    python3 "$here/check_schema.py" apply --db modelwatch "$@" "${urls[@]}"
    python3 "$here/check_schema.py" check --db modelwatch --shards "$shards" "${urls[@]}"
    "$here/cluster.sh" stop "$dir"
}

run sharded 2 1
[ "${REPLICATED:-1}" = 1 ] && run replicated 2 2 --replicated
if [ -x "$HOME/.cache/venv-chdb/bin/python" ]; then
    echo "== chdb (the current dialect, one server in-process)"
    rm -rf "$work/chdb"
    "$HOME/.cache/venv-chdb/bin/python" "$here/check_schema.py" chdb --path "$work/chdb"
else
    echo "== chdb: not installed (python3 -m venv ~/.cache/venv-chdb && ~/.cache/venv-chdb/bin/pip install chdb)" >&2
    exit 1
fi
echo "check_schema.sh: every check passed"
