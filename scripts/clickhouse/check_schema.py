#!/usr/bin/env python3
"""Applies scripts/clickhouse/schema.sql and checks, with real queries, what ADR 019 claims.

    check_schema.py apply  --db DB [--replicated] URL...     # schema on every server
    check_schema.py check  --db DB --shards N URL...         # checks (a)-(h) on a cluster
    check_schema.py chdb   --path DIR                        # the single-server part on chdb

URLs are the servers' HTTP URLs in cluster order (shard 0's replicas first), as
scripts/clickhouse/cluster.sh prints them. Every mismatch raises: the script exits non-zero
with the check's name, what was expected and what was read. Standard library only (chdb mode
needs the chdb package: python3 -m venv ~/.cache/venv-chdb && pip install chdb).
"""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
US = 1_000_000
HOUR = 3600 * US
T0 = 1_779_998_400 * US  # 2026-05-28T20:00:00Z, an hour boundary
KEEP_MAX = 2**64 - 1  # predictions.keep = u64::MAX - received_at: the first arrival survives


class Mismatch(Exception):
    pass


def expect(name, got, want):
    if got != want:
        raise Mismatch(f"check {name}: expected {want!r}, read {got!r}")
    print(f"  ok  {name}: {got!r}")


# ─── Talking to a server ────────────────────────────────────────────────────────────────────


class Http:
    """One ClickHouse server over its HTTP interface."""

    def __init__(self, url, db, settings=None):
        self.url, self.db = url.rstrip("/"), db
        self.settings = settings or {}

    def query(self, sql, body=None, settings=None):
        params = {"database": self.db, "query": sql} if body is not None else {"database": self.db}
        params.update(self.settings)
        params.update(settings or {})
        data = body if body is not None else sql.encode()
        if isinstance(data, str):
            data = data.encode()
        req = urllib.request.Request(self.url + "/?" + urllib.parse.urlencode(params), data=data)
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise Mismatch(f"{self.url}: {e.code} {e.read().decode()[:600]}\n  for: {sql[:300]}")


class Chdb:
    """The current dialect in-process: a chdb session (ClickHouse 2x inside Python)."""

    def __init__(self, path, db):
        from chdb import session

        self.s, self.db = session.Session(path), db
        self.s.query(f"CREATE DATABASE IF NOT EXISTS {db}")
        self.s.query(f"USE {db}")

    def query(self, sql, body=None, settings=None):
        if body is not None:
            sql = sql + "\n" + (body.decode() if isinstance(body, bytes) else body)
        res = self.s.query(sql, "TabSeparated")
        return res.bytes().decode() if hasattr(res, "bytes") else str(res)


def rows(server, sql, settings=None):
    out = server.query(sql + " FORMAT TabSeparated", settings=settings)
    return [line.split("\t") for line in out.splitlines() if line != ""]


def scalar(server, sql, settings=None):
    r = rows(server, sql, settings)
    return r[0][0] if r else None


def statements(replicated, distributed):
    """schema.sql split into statements, rendered for replication and/or one server."""
    text = open(os.path.join(HERE, "schema.sql")).read()
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
    out = []
    for st in re.split(r";\s*\n", text):
        st = st.strip().rstrip(";")
        if not st:
            continue
        if "ENGINE = Distributed" in st and not distributed:
            continue
        if replicated:
            m = re.match(r"CREATE TABLE IF NOT EXISTS (\w+_local)", st)
            if m:
                table = m.group(1)

                def repl(mm):
                    args = mm.group(2)
                    path = f"'/clickhouse/{{database}}/tables/{{shard}}/{table}', '{{replica}}'"
                    return f"ENGINE = Replicated{mm.group(1)}MergeTree({path}{', ' + args if args else ''})"

                st = re.sub(r"ENGINE = (\w*)MergeTree(?:\((.*)\))?$", repl, st, flags=re.M)
        out.append(st)
    return out


def apply(servers, replicated, distributed=True):
    for s in servers:
        for st in statements(replicated, distributed):
            if isinstance(s, Http) and replicated:
                # 18.16 has no {database} macro: substitute it here.
                st = st.replace("{database}", s.db)
            s.query(st)


def create_db(url, db):
    Http(url, "default").query(f"CREATE DATABASE IF NOT EXISTS {db}")


# ─── Rows ──────────────────────────────────────────────────────────────────────────────────


def pred(model, rid, version="v1", role="served", ts=T0, received_at=T0, x=0.0, score=0.5):
    ev = {"request_id": rid, "timestamp": ts, "model_version": version, "features": {"x": x}}
    return {
        "model": model, "request_id": rid, "version": version, "role": role, "ts": ts,
        "received_at": received_at, "keep": KEEP_MAX - received_at, "error": 0, "prediction": "1", "score": score,
        "latency_ms": None, "cost": None, "feature_names": ["x"], "feature_numbers": [x],
        "feature_texts": [""], "event": json.dumps(ev),
    }


def label(model, rid, value, ts=T0, received_at=T0):
    return {"model": model, "request_id": rid, "label": value, "ts": ts, "received_at": received_at}


def insert(server, table, items):
    body = "\n".join(json.dumps(r) for r in items)
    server.query(f"INSERT INTO {table} FORMAT JSONEachRow", body=body)


class Cluster:
    """The servers, one chosen replica per shard, and modelwatch's own routing."""

    def __init__(self, servers, shards, distributed=True):
        self.servers, self.shards, self.distributed = servers, shards, distributed
        per = len(servers) // shards
        self.shard_servers = [servers[i * per:(i + 1) * per] for i in range(shards)]
        self.any = servers[0]
        self.replicas = per
        # Reads that must see every quorum-acknowledged insert, on whichever replica answers.
        self.consistent = {"select_sequential_consistency": 1} if per > 1 else None

    def shard_of(self, rid):
        return int(scalar(self.any, f"SELECT cityHash64({q(rid)}) % {self.shards}"))

    def shards_of(self, ids):
        """The shard of each id, as the Distributed table computes it (cityHash64 % shards)."""
        if self.shards == 1:
            return [0] * len(ids)
        got = rows(self.any, "SELECT cityHash64(id) % {} FROM (SELECT arrayJoin([{}]) AS id)".format(self.shards, ", ".join(q(i) for i in ids)))
        return [int(r[0]) for r in got]

    def insert_routed(self, table, items, replica=0):
        """What the backend does: each row into its shard's local table (id hash)."""
        by = {}
        for r, shard in zip(items, self.shards_of([r["request_id"] for r in items])):
            by.setdefault(shard, []).append(r)
        for shard, part in by.items():
            insert(self.shard_servers[shard][replica % len(self.shard_servers[shard])], table + "_local", part)

    def t(self, name):
        """The table a read goes through: the Distributed one, or the local one on one server."""
        return name if self.distributed else name + "_local"


def q(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def poll(what, fn, want, seconds=30):
    """For reads through the async Distributed insert path only; returns how long it took."""
    start = time.time()
    while True:
        got = fn()
        if got == want or time.time() - start > seconds:
            return got, time.time() - start
        time.sleep(0.05)


# ─── The checks ────────────────────────────────────────────────────────────────────────────


def check_a_idempotent(c):
    print("(a) a request id inserted twice reads back once")
    m = "a"
    first = pred(m, "dup-1", received_at=T0 + 1)
    second = dict(first, received_at=T0 + 2, keep=KEEP_MAX - T0 - 2, score=0.9)
    c.insert_routed("predictions", [first])
    # A second batch on the same shard: with replicas, on the OTHER replica (two modelwatch
    # processes racing, each talking to another ClickHouse replica of the shard).
    c.insert_routed("predictions", [second], replica=1)
    if len(c.servers) > 1 and c.distributed:
        # ... and a third time through ANOTHER server's Distributed table (a second modelwatch
        # replica talking to another ClickHouse server): routed to the same shard by the hash.
        other = c.servers[-1] if c.shard_of("dup-1") == 0 else c.servers[0]
        # A merge may already have collapsed the first two, so the raw count proves nothing;
        # a probe row in the same batch (same id, so the same shard and the same file the
        # Distributed table sends) shows when the batch has been delivered.
        insert(other, "predictions", [dict(first, received_at=T0 + 3, keep=KEEP_MAX - T0 - 3, score=0.7), dict(first, model="a-probe")])
        got, _ = poll("a", lambda: scalar(c.any, f"SELECT count() FROM {c.t('predictions')} WHERE model='a-probe'"), "1")
        expect("a: the insert through the other server's Distributed table has arrived", got, "1")
    expect("a: count() FINAL", scalar(c.any, f"SELECT count() FROM {c.t('predictions')} FINAL WHERE model='a'"), "1")
    expect("a: FINAL keeps the first arrival", scalar(c.any, f"SELECT score FROM {c.t('predictions')} FINAL WHERE model='a'"), "0.5")
    # The dedup read without FINAL (cheaper on big ranges): argMin by arrival per key.
    expect("a: argMin dedup read", rows(c.any, f"SELECT request_id, argMin(score, received_at) FROM {c.t('predictions')} WHERE model='a' GROUP BY model, request_id, version"), [["dup-1", "0.5"]])
    # A duplicate with another event day lands in another partition: background merges never
    # meet it, FINAL still collapses it at read time, keeping the first arrival.
    c.insert_routed("predictions", [pred("a-days", "dup-2", ts=T0, received_at=T0 + 1)])
    c.insert_routed("predictions", [pred("a-days", "dup-2", ts=T0 + 13 * 86400 * US, received_at=T0 + 2, score=0.9)], replica=1)
    expect("a: FINAL across two day partitions", rows(c.any, f"SELECT count(), any(score) FROM {c.t('predictions')} FINAL WHERE model='a-days'"), [["1", "0.5"]])
    if c.replicas > 1:
        # 18.16's OPTIMIZE ... FINAL on a Replicated table fails ("Unknown log entry type: 0",
        # StorageReplicatedMergeTree::optimize). The backend never needs OPTIMIZE: FINAL or the
        # argMin read above is the correctness path; merges only make it cheaper.
        print("  --  OPTIMIZE FINAL on a replicated table: not checked (an 18.16 bug, see ADR 019)")
        return
    for s in c.servers:
        s.query("OPTIMIZE TABLE predictions_local FINAL")
    expect("a: after OPTIMIZE FINAL (background merge), plain count()", scalar(c.any, f"SELECT count() FROM {c.t('predictions')} WHERE model='a'"), "1")


def check_b_versions(c):
    print("(b) two versions' predictions of one request id are both kept")
    c.insert_routed("predictions", [pred("b", "r1", "v1"), pred("b", "r1", "v2", role="shadow")])
    c.insert_routed("predictions", [pred("b", "r1", "v2", role="shadow", received_at=T0 + 5)])
    expect("b: versions FINAL", rows(c.any, f"SELECT version, role FROM {c.t('predictions')} FINAL WHERE model='b' ORDER BY version"), [["v1", "served"], ["v2", "shadow"]])
    if c.distributed:
        per = [scalar(s, "SELECT count() FROM predictions_local FINAL WHERE model='b'") for s in c.servers]
        expect("b: per-server local counts hold both versions on one server", sorted(per, reverse=True)[0], "2")


def join_sql(c, model):
    # Co-located: the subquery names the LOCAL labels table, so each shard joins its own
    # labels; no GLOBAL, nothing shipped between servers. Qualified with the database: 18.16
    # runs the subquery on the other shards in their `default` database otherwise.
    return (f"SELECT p.request_id, p.version, l.label FROM {c.t('predictions')} AS p FINAL "
            f"ANY LEFT JOIN (SELECT request_id, label FROM {c.any.db}.labels_local FINAL WHERE model = {q(model)}) AS l "
            f"USING (request_id) WHERE p.model = {q(model)} ORDER BY p.request_id, p.version")


def check_c_late_labels(c):
    print("(c) a label before and a label after its prediction both join, co-located")
    m = "c"
    c.insert_routed("labels", [label(m, "early", "1", received_at=T0)])      # label first
    c.insert_routed("predictions", [pred(m, "early"), pred(m, "late"), pred(m, "late", "v2", "shadow"), pred(m, "none")])
    c.insert_routed("labels", [label(m, "late", "0", received_at=T0 + 10)])  # label after
    got = rows(c.any, join_sql(c, m))
    expect("c: join", got, [["early", "v1", "1"], ["late", "v1", "0"], ["late", "v2", "0"], ["none", "v1", ""]])
    if c.distributed:
        ids = ["early", "late", "none"]
        expect("c: the ids span both shards", len({c.shard_of(i) for i in ids}) > 1 or c.shards == 1, True)


def check_d_replace(c):
    print("(d) a later label replaces an earlier one")
    m = "d"
    c.insert_routed("predictions", [pred(m, "r")])
    c.insert_routed("labels", [label(m, "r", "0", received_at=T0 + 1)])
    c.insert_routed("labels", [label(m, "r", "1", received_at=T0 + 2)])
    expect("d: join reads the later label", rows(c.any, join_sql(c, m)), [["r", "v1", "1"]])
    expect("d: labels FINAL holds one row", scalar(c.any, f"SELECT count() FROM {c.t('labels')} FINAL WHERE model='d'"), "1")


def hour_changes(c, m):
    return rows(c.any, f"SELECT version, intDiv(hour - {T0}, {HOUR}), sum(changes) FROM {c.t('hour_changes')} WHERE model={q(m)} GROUP BY version, hour ORDER BY version, hour")


def label_changes_sql(m, ids):
    """What the writer runs on the label batch's shard before acknowledging it."""
    return ("INSERT INTO hour_changes_local SELECT model, version, intDiv(ts, 3600000000) * 3600000000 AS hour, count() AS changes "
            f"FROM predictions_local WHERE model = {q(m)} AND request_id IN ({', '.join(q(i) for i in ids)}) GROUP BY model, version, hour")


def check_e_changes(c):
    print("(e) per-hour change counts move on a late label for an old hour")
    m = "e"
    old = [pred(m, f"old{i}", ts=T0 + 60 * US * i) for i in range(5)]
    new = [pred(m, f"new{i}", ts=T0 + 3 * HOUR + i) for i in range(3)]
    c.insert_routed("predictions", old + new)
    c.insert_routed("predictions", [pred(m, "old0", "v2", "shadow", ts=T0)])
    before = hour_changes(c, m)
    expect("e: counts after predictions", before, [["v1", "0", "5"], ["v1", "3", "3"], ["v2", "0", "1"]])
    # A late label for old0 (an old hour): routed to its shard; the writer counts its hours there.
    lab = label(m, "old0", "1", received_at=T0 + 10 * HOUR)
    shard = c.shard_of("old0")
    srv = c.shard_servers[shard][0]
    insert(srv, "labels_local", [lab])
    srv.query(label_changes_sql(m, ["old0"]))
    expect("e: the old hour moved for both versions, the new hour did not", hour_changes(c, m), [["v1", "0", "6"], ["v1", "3", "3"], ["v2", "0", "2"]])
    # A label for a request with no prediction yet changes no hour; its prediction will.
    srv2 = c.shard_servers[c.shard_of("future")][0]
    insert(srv2, "labels_local", [label(m, "future", "1")])
    srv2.query(label_changes_sql(m, ["future"]))
    expect("e: a label before its prediction moves nothing", hour_changes(c, m), [["v1", "0", "6"], ["v1", "3", "3"], ["v2", "0", "2"]])
    c.insert_routed("predictions", [pred(m, "future", ts=T0 + 3 * HOUR)])
    expect("e: ... its prediction moves its hour", hour_changes(c, m), [["v1", "0", "6"], ["v1", "3", "4"], ["v2", "0", "2"]])


def check_f_bins(c, n=200_000):
    print(f"(f) fixed-bin counts for drift are exact ({n} rows)")
    m = "f"
    # Values generated server-side, each row on its own shard (routing by the id hash).
    for shard, srvs in enumerate(c.shard_servers):
        cond = f"cityHash64(concat('f', toString(number))) % {c.shards} = {shard}" if c.distributed else "1"
        srvs[0].query(
            "INSERT INTO predictions_local (model, request_id, version, role, ts, received_at, keep, error, prediction, feature_names, feature_numbers, feature_texts, event) "
            f"SELECT 'f', concat('f', toString(number)), 'v1', 'served', {T0} + number, {T0} + number, bitNot(toUInt64({T0} + number)), 0, '1', ['x'], [((number * 7919) % 100000) / 1000.0 - 20], [''], '' "
            f"FROM numbers({n}) WHERE {cond}")
    edges = [-1e308, -10.0, 0.0, 12.5, 25.0, 50.0, 75.5, 1e308]
    # Fixed edges: bin i holds edges[i] <= x < edges[i+1]; arrayFirstIndex is exact (no
    # rounding of floor(x / w)), and works for uneven edges (the reference's quantile edges).
    edge_list = "[" + ", ".join(repr(e) for e in edges[1:-1]) + "]"
    got = rows(c.any, f"SELECT arrayFirstIndex(e -> x < e, arrayPushBack({edge_list}, inf)) AS bin, count() FROM (SELECT feature_numbers[indexOf(feature_names, 'x')] AS x FROM {c.t('predictions')} WHERE model='f') GROUP BY bin ORDER BY bin")
    xs = [((i * 7919) % 100000) / 1000.0 - 20 for i in range(n)]
    want = [0] * (len(edges) - 1)
    for x in xs:
        for i in range(len(edges) - 1):
            if edges[i] <= x < edges[i + 1]:
                want[i] += 1
                break
    want_rows = [[str(i + 1), str(k)] for i, k in enumerate(want) if k]
    expect("f: bin counts (arrayFirstIndex) equal Python's over the same values", got, want_rows)
    # The same bins as a multiIf unrolled from the edges: no lambda per value, about 2.7x
    # faster over 25 features x 1M rows (ADR 019); the backend generates it from the edges.
    unrolled = "multiIf(" + ", ".join(f"x < {e!r}, {i + 1}" for i, e in enumerate(edges[1:-1])) + f", {len(edges) - 1})"
    got = rows(c.any, f"SELECT {unrolled} AS bin, count() FROM (SELECT feature_numbers[indexOf(feature_names, 'x')] AS x FROM {c.t('predictions')} WHERE model='f') GROUP BY bin ORDER BY bin")
    expect("f: bin counts (multiIf) equal Python's", got, want_rows)
    if c.distributed:
        per = [int(scalar(s, "SELECT count() FROM predictions_local WHERE model='f'")) for s in c.servers]
        print(f"      rows per server: {per}")


def check_g_pages(c, n=10_000, page=777):
    print(f"(g) pages by an opaque (received_at, request_id, version) cursor visit every row once ({n} rows)")
    m = "g"
    items = []
    for i in range(n):
        # Ties on received_at (batches share an arrival time), two versions for some ids.
        items.append(pred(m, f"g{i % 7000}", "v1" if i < 7000 else "v2", received_at=T0 + (i // 50)))
    c.insert_routed("predictions", items[:5000])
    c.insert_routed("predictions", items[5000:])
    seen, cursor, pages = [], None, 0
    while True:
        where = f"model = {q(m)}"
        if cursor:
            where += f" AND (received_at, request_id, version) > ({cursor[0]}, {q(cursor[1])}, {q(cursor[2])})"
        got = rows(c.any, f"SELECT received_at, request_id, version FROM {c.t('predictions')} FINAL WHERE {where} ORDER BY received_at, request_id, version LIMIT {page}")
        if not got:
            break
        pages += 1
        seen.extend(tuple(r) for r in got)
        cursor = got[-1]
        # The opaque token modelwatch would hand out: the tuple, encoded; decoded here.
        token = json.dumps(cursor).encode().hex()
        cursor = json.loads(bytes.fromhex(token))
    expect("g: rows visited", len(seen), n)
    expect("g: each once", len(set(seen)), n)
    expect("g: pages", pages, -(-n // page))


def check_h_read_your_writes(c, batches=20, size=2000):
    print("(h) read-your-writes after an acknowledged insert")
    if not c.distributed:
        print("  --  one server: an insert is visible when the POST returns")
        return
    m = "h"
    local_ok, dist_seen_at_ack, waits = 0, [], []
    for b in range(batches):
        items = [pred(f"h{b}", f"h{b}-{i}") for i in range(size)]
        c.insert_routed("predictions", items, replica=b)  # alternate replicas when there are two
        if scalar(c.any, f"SELECT count() FROM predictions WHERE model='h{b}'", c.consistent) == str(size):
            local_ok += 1
        items = [pred(f"hd{b}", f"hd{b}-{i}") for i in range(size)]
        insert(c.any, "predictions", items)  # through the Distributed table
        n = int(scalar(c.any, f"SELECT count() FROM predictions WHERE model='hd{b}'"))
        dist_seen_at_ack.append(n)
        got, took = poll("h", lambda: scalar(c.any, f"SELECT count() FROM predictions WHERE model='hd{b}'"), str(size))
        expect(f"h: Distributed insert {b} eventually complete", got, str(size)) if b == 0 else None
        if got != str(size):
            raise Mismatch(f"check h: Distributed insert {b} never completed: {got}")
        waits.append(took)
    expect("h: inserts into the shards' local tables, read right after the ack" + (" (insert_quorum, then select_sequential_consistency)" if c.replicas > 1 else ""), local_ok, batches)
    if c.replicas > 1:
        # 18.16's Distributed sender does not pass insert_quorum on: its rows are not quorum
        # parts, and a sequentially consistent read hides them (parts after the last quorum one).
        hidden = scalar(c.any, "SELECT count() FROM predictions WHERE model LIKE 'hd%'", c.consistent)
        print(f"  --  rows inserted through the Distributed table, all delivered: {batches * size}; "
              f"visible to a select_sequential_consistency=1 read: {hidden}")
    full = sum(1 for n in dist_seen_at_ack if n == size)
    print(f"  --  through the Distributed table: {full}/{batches} batches complete when read right after the ack; "
          f"rows visible at the ack: min {min(dist_seen_at_ack)} / {size}; wait until complete: "
          f"max {max(waits) * 1000:.0f} ms, median {sorted(waits)[len(waits) // 2] * 1000:.0f} ms")
    return {"distributed_complete_at_ack": full, "batches": batches, "min_visible": min(dist_seen_at_ack), "max_wait_ms": max(waits) * 1000}


def check_kpis_catalog(c):
    print("(+) KPIs upsert, catalog last write wins, derived state replaces")
    c_servers = c.shard_servers[0][0]
    insert(c_servers, "kpis_local", [{"model": "k", "name": "ctr", "ts": T0, "value": 1.0, "received_at": T0}])
    insert(c_servers, "kpis_local", [{"model": "k", "name": "ctr", "ts": T0, "value": 2.0, "received_at": T0 + 1}])
    expect("kpi upsert", rows(c.any, f"SELECT value FROM {c.t('kpis')} FINAL WHERE model='k'"), [["2"]])
    insert(c_servers, "models_local", [{"model": "k", "created_at": T0, "retention_days": 30, "rebuild_epoch": 0, "reference_upload": "", "settings": "{}", "updated_at": T0}])
    insert(c_servers, "models_local", [{"model": "k", "created_at": T0, "retention_days": 7, "rebuild_epoch": 1, "reference_upload": "u1", "settings": "{}", "updated_at": T0 + 1}])
    expect("catalog row, last write wins", rows(c.any, f"SELECT retention_days, rebuild_epoch FROM {c.t('models')} FINAL WHERE model='k'"), [["7", "1"]])
    for built in (5, 6):
        insert(c_servers, "aggregates_local", [{"model": "k", "kind": "metrics", "version": "v1", "hour": T0, "blob": f"b{built}", "built_from": built, "epoch": 1, "written_at": T0 + built}])
    expect("derived state replaces", rows(c.any, f"SELECT blob, built_from FROM {c.t('aggregates')} FINAL WHERE model='k'"), [["b6", "6"]])


def check_retention(c):
    print("(+) retention: DROP PARTITION by event-time day")
    m = "ret"
    day = 86400 * US
    c.insert_routed("predictions", [pred(m, f"r{i}", ts=T0 + (i % 3) * day) for i in range(30)])
    part = scalar(c.any, f"SELECT toYYYYMMDD(toDateTime(intDiv({T0}, 1000000)))")
    for s in c.servers:
        s.query(f"ALTER TABLE predictions_local DROP PARTITION {part}")
    expect("retention: the first day's rows are gone, the rest stay", scalar(c.any, f"SELECT count() FROM {c.t('predictions')} WHERE model='ret'"), "20")


CHECKS = [check_a_idempotent, check_b_versions, check_c_late_labels, check_d_replace, check_e_changes,
          check_f_bins, check_g_pages, check_kpis_catalog, check_retention, check_h_read_your_writes]


def run_checks(c):
    for check in CHECKS:
        check(c)
    print("all checks passed")


def main():
    import argparse

    sys.stdout.reconfigure(line_buffering=True)

    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["apply", "check", "chdb"])
    ap.add_argument("--db", default="modelwatch")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--replicated", action="store_true")
    ap.add_argument("--path", default="/tmp/chdb-modelwatch")
    ap.add_argument("urls", nargs="*")
    a = ap.parse_intermixed_args()
    try:
        if a.mode == "apply":
            for u in a.urls:
                create_db(u, a.db)
            apply([Http(u, a.db) for u in a.urls], a.replicated)
            print(f"schema applied to {len(a.urls)} servers ({'replicated' if a.replicated else 'not replicated'})")
        elif a.mode == "check":
            # With replicas: acknowledged = written on every replica of the shard (insert_quorum),
            # and a read on any replica sees every quorum-acknowledged insert.
            replicas = len(a.urls) // a.shards
            settings = {"insert_quorum": replicas} if replicas > 1 else {}
            run_checks(Cluster([Http(u, a.db, settings) for u in a.urls], a.shards))
        else:
            import chdb

            s = Chdb(a.path, a.db)
            print("chdb", getattr(chdb, "__version__", "?"), "engine", scalar(s, "SELECT version()"))
            # chdb has no cluster and no Keeper, so the Distributed and Replicated statements
            # cannot be created there; the current parser must at least accept them.
            rendered = statements(replicated=True, distributed=True)
            for st in rendered:
                scalar(s, "SELECT formatQuery(%s)" % q(st.replace("{database}", a.db)))
            print(f"  ok  every statement, rendered with Replicated engines and Distributed tables, parses ({len(rendered)})")
            apply([s], replicated=False, distributed=False)
            run_checks(Cluster([s], 1, distributed=False))
    except Mismatch as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
