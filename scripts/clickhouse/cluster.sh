#!/usr/bin/env bash
# A ClickHouse cluster on 127.0.0.1 for modelwatch's ClickHouse backend (issue 21): SHARDS
# shards of REPLICAS servers each, every server with its own config, data directory and ports,
# and, when REPLICAS > 1, one ZooKeeper for ReplicatedMergeTree. Nothing is installed as a
# service and nothing listens beyond loopback; every process is stopped by its pid.
#
#   scripts/clickhouse/cluster.sh start DIR      # prints the servers' HTTP URLs, one a line
#   scripts/clickhouse/cluster.sh stop DIR
#   scripts/clickhouse/cluster.sh restart-one DIR N   # start server N (a line of DIR/urls,
#                                                     # from 0) again after it died (kill -9)
#   scripts/clickhouse/cluster.sh install        # apt-get the Debian packages (root)
#
# Environment: SHARDS (default 2), REPLICAS (default 1), BASE_PORT (default: a free range
# found from 20000 up). The cluster is named `modelwatch` in every server's remote_servers, so a
# `Distributed(modelwatch, db, table, cityHash64(request_id))` table spans it. CLUSTER=none
# starts one plain server with no remote_servers at all (SHARDS=1 REPLICAS=1 only): modelwatch's
# single-server mode, as most users start (and as ClickHouse Cloud's one service).
# QUERY_LOG=1 logs every query to system.query_log (and parts to system.part_log), flushed
# every second: what a benchmark reads to tell where the servers' time goes.
#
# Debian's package is ClickHouse 18.16 (2018): a test target for the SQL both it and a current
# release accept, never what a user should run (docs: ../shared/reference/clickhouse.md).
set -euo pipefail

SHARDS=${SHARDS:-2}
REPLICAS=${REPLICAS:-1}
CLUSTER=${CLUSTER:-modelwatch}

say() { echo "cluster.sh: $*" >&2; }

install_packages() {
    local pkgs=(clickhouse-server clickhouse-client)
    [ "$REPLICAS" -gt 1 ] && pkgs+=(zookeeperd)
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The first port p >= $1 with p .. p+count-1 all free.
free_range() {
    local p=$1 count=$2 i ok
    while :; do
        ok=1
        for ((i = 0; i < count; i++)); do
            if ! port_free $((p + i)); then ok=0; p=$((p + i + 1)); break; fi
        done
        [ $ok = 1 ] && { echo "$p"; return; }
    done
}

remote_servers() {
    local base=$1 s r
    [ "$CLUSTER" = none ] && return 0
    echo "<remote_servers><modelwatch>"
    for ((s = 0; s < SHARDS; s++)); do
        echo "<shard><internal_replication>$([ "$REPLICAS" -gt 1 ] && echo true || echo false)</internal_replication>"
        for ((r = 0; r < REPLICAS; r++)); do
            echo "<replica><host>127.0.0.1</host><port>$((base + (s * REPLICAS + r) * 3 + 1))</port></replica>"
        done
        echo "</shard>"
    done
    echo "</modelwatch></remote_servers>"
}

start() {
    local dir=$1
    command -v clickhouse-server >/dev/null || { say "clickhouse-server is not installed: run '$0 install' as root"; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ -e "$dir/pids" ] && { say "$dir already holds a cluster (stop it first)"; exit 1; }
    if [ "$CLUSTER" = none ] && [ $((SHARDS * REPLICAS)) != 1 ]; then
        say "CLUSTER=none is one server: set SHARDS=1 REPLICAS=1"; exit 1
    fi
    local n=$((SHARDS * REPLICAS))
    local base=${BASE_PORT:-$(free_range 20000 $((n * 3 + 1)))}
    local zk_port=$((base + n * 3))
    if [ "$REPLICAS" -gt 1 ]; then
        mkdir -p "$dir/zookeeper/data"
        cat >"$dir/zookeeper/zoo.cfg" <<ZK
tickTime=2000
dataDir=$dir/zookeeper/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
ZK
        ZOOCFGDIR=$dir/zookeeper ZOO_LOG_DIR=$dir/zookeeper \
            setsid /usr/share/zookeeper/bin/zkServer.sh start-foreground "$dir/zookeeper/zoo.cfg" \
            >"$dir/zookeeper/out.log" 2>&1 &
        echo "$!" >>"$dir/pids"
    fi
    local s r i=0 http
    for ((s = 0; s < SHARDS; s++)); do
        for ((r = 0; r < REPLICAS; r++)); do
            local sd="$dir/s${s}r${r}" p=$((base + i * 3))
            mkdir -p "$sd/data/" "$sd/tmp/" "$sd/log"
            local users=/etc/clickhouse-server/users.xml
            if [ -n "${QUERY_LOG:-}" ]; then
                # The default profile with log_queries on (the first <default> is the profile's).
                users=$sd/users.xml
                sed '0,/<default>/s//<default><log_queries>1<\/log_queries>/' /etc/clickhouse-server/users.xml >"$users"
            fi
            cat >"$sd/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$sd/log/server.log</log><errorlog>$sd/log/error.log</errorlog></logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$p</http_port>
    <tcp_port>$((p + 1))</tcp_port>
    <interserver_http_port>$((p + 2))</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>$sd/data/</path>
    <tmp_path>$sd/tmp/</tmp_path>
    <users_config>$users</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    $([ -n "${QUERY_LOG:-}" ] && echo "<query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log><part_log><database>system</database><table>part_log</table><flush_interval_milliseconds>1000</flush_interval_milliseconds></part_log>")
    $(remote_servers "$base")
    <macros><shard>$s</shard><replica>r$r</replica></macros>
    $([ "$REPLICAS" -gt 1 ] && echo "<zookeeper><node><host>127.0.0.1</host><port>$zk_port</port></node></zookeeper>")
</yandex>
XML
            setsid clickhouse-server --config-file="$sd/config.xml" >"$sd/log/out.log" 2>&1 &
            echo "$!" >>"$dir/pids"
            # Each server's own pid and directory, a line per server in the order of urls:
            # what a test kills and restart-one starts again.
            echo "$!" >"$sd/pid"
            echo "$sd" >>"$dir/servers"
            echo "http://127.0.0.1:$p" >>"$dir/urls"
            i=$((i + 1))
        done
    done
    # Ready when every server answers /ping (about 5 s each on two cores).
    for http in $(cat "$dir/urls"); do
        for _ in $(seq 120); do
            curl -fsS "$http/ping" >/dev/null 2>&1 && break
            sleep 0.5
        done
        curl -fsS "$http/ping" >/dev/null || { say "$http did not start: see $dir/*/log"; stop "$dir"; exit 1; }
    done
    # ZooKeeper takes longer than the servers on two cores: a replicated CREATE TABLE sent
    # before it listens fails ("All connection tries failed while connecting to ZooKeeper").
    if [ "$REPLICAS" -gt 1 ]; then
        local ok=""
        for _ in $(seq 120); do
            ok=$( (exec 3<>"/dev/tcp/127.0.0.1/$zk_port" && echo ruok >&3 && timeout 2 cat <&3) 2>/dev/null || true)
            [ "$ok" = imok ] && break
            sleep 0.5
        done
        [ "$ok" = imok ] || { say "ZooKeeper on port $zk_port did not start: see $dir/zookeeper/out.log"; stop "$dir"; exit 1; }
        # "imok" comes before ZooKeeper takes sessions: a CREATE right after it failed with
        # "Cannot read all data ... while receiving handshake from ZooKeeper". Ready when every
        # server reads ZooKeeper's root.
        for http in $(cat "$dir/urls"); do
            for _ in $(seq 120); do
                curl -fsS --data-binary "SELECT count() FROM system.zookeeper WHERE path = '/'" "$http/" >/dev/null 2>&1 && break
                sleep 0.5
            done
            curl -fsS --data-binary "SELECT count() FROM system.zookeeper WHERE path = '/'" "$http/" >/dev/null \
                || { say "$http cannot reach ZooKeeper on port $zk_port: see $dir/*/log"; stop "$dir"; exit 1; }
        done
    fi
    cat "$dir/urls"
}

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# Starts server N again with its config and data (after a kill -9: the data directory is as the
# crash left it), replaces its pid in DIR/pids, and waits for it to answer /ping.
restart_one() {
    local dir=$1 n=$2 sd old http
    sd=$(sed -n "$((n + 1))p" "$dir/servers")
    http=$(sed -n "$((n + 1))p" "$dir/urls")
    [ -n "$sd" ] && [ -n "$http" ] || { say "$dir has no server $n"; exit 1; }
    old=$(cat "$sd/pid")
    # A killed server is gone within moments (a zombie not yet reaped counts as gone).
    for _ in $(seq 100); do
        alive "$old" || break
        sleep 0.1
    done
    alive "$old" && { say "server $n (pid $old) is still running"; exit 1; }
    setsid clickhouse-server --config-file="$sd/config.xml" >>"$sd/log/out.log" 2>&1 &
    echo "$!" >"$sd/pid"
    sed -i "s/^$old\$/$!/" "$dir/pids"
    for _ in $(seq 120); do
        curl -fsS "$http/ping" >/dev/null 2>&1 && break
        sleep 0.5
    done
    curl -fsS "$http/ping" >/dev/null || { say "$http did not start again: see $sd/log"; exit 1; }
    echo "$http"
}

stop() {
    local dir=$1 pid
    [ -e "$dir/pids" ] || return 0
    for pid in $(cat "$dir/pids"); do kill "$pid" 2>/dev/null || true; done
    for pid in $(cat "$dir/pids"); do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -f "$dir/pids" "$dir/urls" "$dir/servers"
}

case "${1:-}" in
    install) install_packages ;;
    start) start "${2:?usage: $0 start DIR}" ;;
    stop) stop "${2:?usage: $0 stop DIR}" ;;
    restart-one) restart_one "${2:?usage: $0 restart-one DIR N}" "${3:?usage: $0 restart-one DIR N}" ;;
    *) say "usage: $0 install | start DIR | stop DIR | restart-one DIR N"; exit 2 ;;
esac
