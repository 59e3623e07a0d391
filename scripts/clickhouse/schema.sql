-- modelwatch's ClickHouse schema (issue 21 §2, ADR 018's ClickHouse column, decided in ADR 019).
--
-- SQL that both Debian's ClickHouse 18.16 and a current release (checked with chdb 26.x) accept.
-- Apply it to EVERY server of the cluster, statement by statement, with the HTTP parameter
-- `database=DB` (the database itself is created first by the applier: `CREATE DATABASE IF NOT
-- EXISTS DB`). No `ON CLUSTER`: that needs ZooKeeper, which a cluster without replicas lacks.
-- scripts/clickhouse/check_schema.py is the applier; check_schema.sh checks on real servers what
-- these tables promise (ADR 019).
--
-- Conventions:
--   * Times are Int64/UInt64 microseconds since the Unix epoch, as modelwatch's `Timestamp`
--     (18.16 has no DateTime64). `ts` is event time; `received_at` is arrival time at modelwatch.
--   * Every `*_local` table lives on each shard; the table without the suffix is the
--     `Distributed` table over the cluster `modelwatch` (scripts/clickhouse/cluster.sh names it).
--   * Event tables are sharded by cityHash64(request_id): a request's predictions of every
--     version, and its label, live on one shard, so the label join is co-located (no GLOBAL).
--     modelwatch routes each row to its shard itself and inserts into that shard's *_local
--     table (read-your-writes; 18.16 inserts into Distributed tables asynchronously).
--   * With replicas, the applier rewrites `ENGINE = XMergeTree(args)` on a `*_local` table into
--     `ENGINE = ReplicatedXMergeTree('/clickhouse/DB/tables/{shard}/TABLE', '{replica}', args)`
--     (the macros are in each server's config). Lines are kept one clause per line for that.
--   * One statement per `;` at the end of a line; comments are `--` lines only.

-- ─── The event log ───────────────────────────────────────────────────────────────────────────

-- One row per (model, request id, version). A served prediction and any number of shadow
-- predictions (one per version) of a request are all kept. A duplicate (same key) collapses
-- on merge and under FINAL; `keep` makes the FIRST arrival the survivor, as in the embedded
-- store (a retry is a duplicate, the first stored wins). The WRITER sets keep =
-- 18446744073709551615 - received_at (u64::MAX - received_at): on 18.16 neither works in the
-- schema: a MATERIALIZED column is forwarded by the Distributed table and refused by the shard
-- ("Cannot insert column keep, because it is MATERIALIZED column"), and a DEFAULT is not
-- applied to a field omitted from JSONEachRow (it reads 0; input_format_defaults_for_omitted_fields
-- came later). Partitioned by event-time day for
-- retention by DROP PARTITION; a retried event keeps its timestamp, so its duplicate lands in
-- the same partition (FINAL collapses across partitions at read time anyway).
CREATE TABLE IF NOT EXISTS predictions_local (
    model String,
    request_id String,
    version String,
    role Enum8('served' = 0, 'shadow' = 1),
    ts Int64,
    received_at UInt64,
    keep UInt64,
    error UInt8,
    prediction String,
    score Nullable(Float64),
    latency_ms Nullable(Float64),
    cost Nullable(Float64),
    feature_names Array(String),
    feature_numbers Array(Float64),
    feature_texts Array(String),
    event String
)
ENGINE = ReplacingMergeTree(keep)
PARTITION BY toYYYYMMDD(toDateTime(intDiv(ts, 1000000)))
ORDER BY (model, request_id, version);

CREATE TABLE IF NOT EXISTS predictions AS predictions_local
ENGINE = Distributed(modelwatch, currentDatabase(), predictions_local, cityHash64(request_id));

-- One label per (model, request id); a later arrival replaces an earlier one (the version
-- column is received_at). Not partitioned: replacement only happens inside a partition, and a
-- label's replacement must always meet it. Retention deletes labels with a mutation.
CREATE TABLE IF NOT EXISTS labels_local (
    model String,
    request_id String,
    label String,
    ts Int64,
    received_at UInt64
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY tuple()
ORDER BY (model, request_id);

CREATE TABLE IF NOT EXISTS labels AS labels_local
ENGINE = Distributed(modelwatch, currentDatabase(), labels_local, cityHash64(request_id));

-- KPI points, upserted on (model, name, ts); sharded by the model so a point and its
-- replacement meet on one shard.
CREATE TABLE IF NOT EXISTS kpis_local (
    model String,
    name String,
    ts Int64,
    value Float64,
    received_at UInt64
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(toDateTime(intDiv(ts, 1000000)))
ORDER BY (model, name, ts);

CREATE TABLE IF NOT EXISTS kpis AS kpis_local
ENGINE = Distributed(modelwatch, currentDatabase(), kpis_local, cityHash64(model));

-- The quarantine: rejected rows, newest first by received_at.
CREATE TABLE IF NOT EXISTS rejected_local (
    model String,
    kind String,
    received_at UInt64,
    row_index UInt32,
    request_id Nullable(String),
    field String,
    reason String,
    row String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(received_at, 1000000)))
ORDER BY (model, received_at);

CREATE TABLE IF NOT EXISTS rejected AS rejected_local
ENGINE = Distributed(modelwatch, currentDatabase(), rejected_local, cityHash64(model));

-- ─── Per-(model, version, hour) change counts (ADR 018: they replace dirty marks) ──────────
-- Monotone: an aggregate blob records the count it was built from; an hour whose count moved
-- on is stale. Summed on merge; always read with sum() ... GROUP BY, never row by row.
CREATE TABLE IF NOT EXISTS hour_changes_local (
    model String,
    version String,
    hour Int64,
    changes UInt64
)
ENGINE = SummingMergeTree(changes)
PARTITION BY tuple()
ORDER BY (model, version, hour);

CREATE TABLE IF NOT EXISTS hour_changes AS hour_changes_local
ENGINE = Distributed(modelwatch, currentDatabase(), hour_changes_local, cityHash64(model));

-- Every prediction insert counts its hours, in the same insert (the view runs on the shard
-- the rows were inserted into). hour = the event hour's first microsecond.
CREATE MATERIALIZED VIEW IF NOT EXISTS hour_changes_from_predictions
TO hour_changes_local
AS SELECT model, version, intDiv(ts, 3600000000) * 3600000000 AS hour, count() AS changes
FROM predictions_local
GROUP BY model, version, hour;

-- A label changes the hours of its request's predictions, which the label row does not carry
-- (a label may come first). The writer, after its read of the batch's ids on the shard (it
-- does that read anyway to report `replaced`), runs on the SAME shard, before acknowledging:
--   INSERT INTO hour_changes_local
--   SELECT model, version, intDiv(ts, 3600000000) * 3600000000 AS hour, count() AS changes
--   FROM predictions_local WHERE model = {model} AND request_id IN ({ids}) GROUP BY model, version, hour
-- A retry after a crash counts again, which is harmless: only "the count moved" matters. The
-- labels are inserted BEFORE this count (the other order could leave a blob built without the
-- label recorded at the new count, never rebuilt).

-- ─── The catalog ─────────────────────────────────────────────────────────────────────────────
-- Small tables, one row per key, last write wins (updated_at). Sharding key 0: every row goes
-- to the first shard; reads through the Distributed table (the other shards hold nothing), or
-- from the first shard's *_local table directly for read-your-writes.
CREATE TABLE IF NOT EXISTS models_local (
    model String,
    created_at UInt64,
    retention_days UInt32,
    rebuild_epoch UInt64,
    reference_upload String,
    settings String,
    updated_at UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY tuple()
ORDER BY model;

CREATE TABLE IF NOT EXISTS models AS models_local
ENGINE = Distributed(modelwatch, currentDatabase(), models_local, 0);

CREATE TABLE IF NOT EXISTS versions_local (
    model String,
    version String,
    role Enum8('served' = 0, 'shadow' = 1),
    first_seen UInt64,
    updated_at UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY tuple()
ORDER BY (model, version);

CREATE TABLE IF NOT EXISTS versions AS versions_local
ENGINE = Distributed(modelwatch, currentDatabase(), versions_local, 0);

-- The schema (declared or inferred) as modelwatch's JSON; changed by one writer at a time.
CREATE TABLE IF NOT EXISTS schemas_local (
    model String,
    schema String,
    declared UInt8,
    updated_at UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY tuple()
ORDER BY model;

CREATE TABLE IF NOT EXISTS schemas AS schemas_local
ENGINE = Distributed(modelwatch, currentDatabase(), schemas_local, 0);

-- Reference rows tagged by upload id; models.reference_upload switches last, so a
-- half-written upload is never read. Old uploads are dropped with a mutation.
CREATE TABLE IF NOT EXISTS reference_rows_local (
    model String,
    version String,
    upload_id String,
    row_no UInt32,
    row String
)
ENGINE = MergeTree
PARTITION BY tuple()
ORDER BY (model, version, upload_id, row_no);

CREATE TABLE IF NOT EXISTS reference_rows AS reference_rows_local
ENGINE = Distributed(modelwatch, currentDatabase(), reference_rows_local, 0);

-- The current upload of each (model, version)'s reference: written after its rows, so a
-- half-written upload is never read (per version: a model has one reference per version).
CREATE TABLE IF NOT EXISTS reference_sets_local (
    model String,
    version String,
    upload_id String,
    rows UInt64,
    uploaded_at UInt64
)
ENGINE = ReplacingMergeTree(uploaded_at)
PARTITION BY tuple()
ORDER BY (model, version);

CREATE TABLE IF NOT EXISTS reference_sets AS reference_sets_local
ENGINE = Distributed(modelwatch, currentDatabase(), reference_sets_local, 0);

-- ─── Derived per-window state (DerivedState) ─────────────────────────────────────────────────
-- Opaque blobs the engine writes; two replicas computing one hour write the same key and the
-- replacing key collapses them. built_from = the hour's change count the blob was built from;
-- epoch = the model's rebuild epoch (blobs of an older epoch are not read).
CREATE TABLE IF NOT EXISTS aggregates_local (
    model String,
    kind String,
    version String,
    hour Int64,
    blob String,
    built_from UInt64,
    epoch UInt64,
    written_at UInt64,
    deleted UInt8
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY tuple()
ORDER BY (model, kind, version, hour);

CREATE TABLE IF NOT EXISTS aggregates AS aggregates_local
ENGINE = Distributed(modelwatch, currentDatabase(), aggregates_local, cityHash64(model));

-- Which change count each (model, version, hour)'s derived state was last built from, and in
-- which rebuild epoch (a refresh's `clear`). The last write wins (a refresh that read an older
-- count and wrote last leaves the hour stale, so it is rebuilt). An hour is stale when its
-- sum(changes) moved past built_from, when its epoch is older than the model's, or when it has
-- changes and no row here. Deleted derived blobs are rows with deleted = 1 in aggregates_local.
CREATE TABLE IF NOT EXISTS hours_built_local (
    model String,
    version String,
    hour Int64,
    built_from UInt64,
    epoch UInt64,
    written_at UInt64
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY tuple()
ORDER BY (model, version, hour);

CREATE TABLE IF NOT EXISTS hours_built AS hours_built_local
ENGINE = Distributed(modelwatch, currentDatabase(), hours_built_local, cityHash64(model));

-- ─── The cluster lease (ADR 020) ─────────────────────────────────────────────────────────────
-- Which modelwatch process does the once-per-cluster work (alert evaluation, notifications,
-- the background refresh): one claim per (process, epoch), on the first shard (its replicas)
-- only, read and written by `crates/store-clickhouse/src/lease.rs` on that shard's local table.
-- slot = epoch % 64: a holder's claim replaces its claim of 64 epochs before (FINAL), so the
-- table stays at 64 rows per process started, without deletes (no TTL on 18.16).
CREATE TABLE IF NOT EXISTS lease_local (
    name String,
    slot UInt16,
    holder String,
    epoch UInt64,
    was_holder UInt8,
    claimed_at UInt64
)
ENGINE = ReplacingMergeTree(epoch)
PARTITION BY tuple()
ORDER BY (name, slot, holder);

-- ─── The alert state (ADR 021) ───────────────────────────────────────────────────────────────
-- What every `modelwatch serve` process of one store shares of its alerts: rules made over the
-- API, each alert's state, acknowledgements, the transitions' history, silences, heartbeats,
-- arrival times and the notification outbox. Small tables on the FIRST shard only: the backend
-- reads and writes the first shard's servers' *_local tables (with replicas, quorum inserts and
-- sequentially consistent reads, falling back to another replica of the shard); the other
-- shards' copies stay empty, and there is no Distributed table. Rows are never updated in place:
-- a change is a new row with a higher `version` (ReplacingMergeTree, read with FINAL), a
-- deletion a row with deleted = 1; ids are time-based and unique across processes, so a retried
-- insert collapses onto the row it repeats.
CREATE TABLE IF NOT EXISTS alert_rules_local (
    model String,
    name String,
    spec String,
    created_at Int64,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY (model, name);

-- One row per (model, rule): the alert's JSON as the API shows it.
CREATE TABLE IF NOT EXISTS alert_states_local (
    fingerprint String,
    model String,
    rule String,
    body String,
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY fingerprint;

-- Who took an alert, per episode (the episode's active_at): kept apart from the state, which the
-- evaluating replica rewrites on every pass, so an acknowledgement made on another replica during
-- a pass is never overwritten; reads put it on the alert of that episode.
CREATE TABLE IF NOT EXISTS alert_acks_local (
    fingerprint String,
    active_at Int64,
    ack String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY (fingerprint, active_at);

CREATE TABLE IF NOT EXISTS alert_history_local (
    model String,
    id Int64,
    fingerprint String,
    rule String,
    transition String,
    at Int64,
    body String
)
ENGINE = ReplacingMergeTree
PARTITION BY tuple()
ORDER BY (model, id);

CREATE TABLE IF NOT EXISTS alert_silences_local (
    id Int64,
    model String,
    rule Nullable(String),
    ends_at Int64,
    created_at Int64,
    comment String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY id;

CREATE TABLE IF NOT EXISTS alert_heartbeats_local (
    model String,
    job String,
    ts Int64,
    id Int64,
    status String,
    received_at Int64,
    message Nullable(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY tuple()
ORDER BY (model, job, ts, id);

-- The latest ingest per (model, kind): read with max(at), collapsed on merge (version = at).
CREATE TABLE IF NOT EXISTS alert_arrivals_local (
    model String,
    kind String,
    at Int64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY (model, kind);

CREATE TABLE IF NOT EXISTS alert_outbox_local (
    id Int64,
    fingerprint String,
    notifier String,
    status String,
    payload String,
    created_at Int64,
    attempts UInt32,
    next_attempt_at Int64,
    last_error Nullable(String),
    delivered_at Nullable(Int64),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY tuple()
ORDER BY id;

-- Per (model, version, hour): the predictions by role with their first and last event time,
-- and the served predictions with a label, counted from the events when the hour's change
-- count (hour_changes) was built_from. The model's summary (versions, labelled) reads these
-- instead of every event; an hour whose change count moved past built_from is counted again
-- by the reader, which writes the new row (the last write wins). Written and read on the
-- model's shard (cityHash64(model)), like the derived state. ADR 019, "Reads at 30M events".
CREATE TABLE IF NOT EXISTS hour_counts_local (
    model String,
    version String,
    hour Int64,
    built_from UInt64,
    served UInt64,
    shadow UInt64,
    first_served Int64,
    last_served Int64,
    first_shadow Int64,
    last_shadow Int64,
    labelled UInt64,
    written_at UInt64
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY tuple()
ORDER BY (model, version, hour);

CREATE TABLE IF NOT EXISTS hour_counts AS hour_counts_local
ENGINE = Distributed(modelwatch, currentDatabase(), hour_counts_local, cityHash64(model));
