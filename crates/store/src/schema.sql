-- modelwatch embedded store, schema version 1 (version 2 adds schema_v2.sql). Timestamps are microseconds since the Unix epoch.
CREATE TABLE models (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    schema          TEXT NOT NULL,           -- JSON of modelwatch_core::Schema
    created_at      INTEGER NOT NULL,
    retention_days  INTEGER,
    labels          INTEGER NOT NULL DEFAULT 0
);
-- Raw predictions, the source of truth: each ingest job's accepted events are one segment, a
-- zstd-compressed NDJSON blob of events in the contract's format. Every event is in exactly one
-- segment (duplicates are never written). Segment id order is arrival order.
CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    model_id    INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    min_ts      INTEGER NOT NULL,
    max_ts      INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    data        BLOB NOT NULL
);
CREATE INDEX segments_model ON segments(model_id, id);
-- One small row per prediction: de-duplication on request id, the label join and window counts
-- without decoding segments. Clustered by request id, like labels, so the join walks both in order.
CREATE TABLE request_index (
    model_id    INTEGER NOT NULL,
    request_id  TEXT NOT NULL,
    ts          INTEGER NOT NULL,            -- event time
    version     TEXT NOT NULL,               -- '' when the client sent none
    error       INTEGER NOT NULL,            -- 1 when the prediction is a failed request
    segment_id  INTEGER NOT NULL,
    PRIMARY KEY (model_id, request_id)
) WITHOUT ROWID;
-- One label per request id (a later one replaces it); kept even before its prediction arrives.
CREATE TABLE labels (
    model_id    INTEGER NOT NULL,
    request_id  TEXT NOT NULL,
    label       TEXT NOT NULL,               -- JSON scalar as sent
    ts          INTEGER NOT NULL,            -- when the label became known
    received_at INTEGER NOT NULL,
    PRIMARY KEY (model_id, request_id)
);
-- Counters kept by the writer so that model summaries never scan predictions.
CREATE TABLE versions (
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    predictions INTEGER NOT NULL,
    first_ts    INTEGER NOT NULL,
    last_ts     INTEGER NOT NULL,
    PRIMARY KEY (model_id, version)
);
CREATE TABLE reference_sets (
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,               -- '' = applies to every version
    rows        INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (model_id, version)
);
CREATE TABLE reference_rows (
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    features    TEXT NOT NULL,
    prediction  TEXT,
    score       REAL,
    scores      TEXT,
    label       TEXT,
    PRIMARY KEY (model_id, version, idx)
);
-- Quarantine of rejected rows, by model name (a rejected first batch has no model row yet).
CREATE TABLE rejected (
    id          INTEGER PRIMARY KEY,
    model       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    row_index   INTEGER NOT NULL,
    request_id  TEXT,
    field       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    row         TEXT NOT NULL
);
CREATE INDEX rejected_model ON rejected(model, id);
