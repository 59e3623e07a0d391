-- modelwatch embedded store: what schema version 2 adds to version 1.
-- The label join of a scan walks one segment's index rows; segment ids only grow, so this index
-- is appended to, never written at random.
CREATE INDEX request_index_segment ON request_index(model_id, segment_id);
-- Hours of event time whose aggregates must be recomputed: marked by the writer in the same
-- transaction as the predictions or labels that changed them.
CREATE TABLE dirty_hours (
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    PRIMARY KEY (model_id, version, hour)
) WITHOUT ROWID;
-- Per-hour aggregates (opaque to the store; written by the engine), a cache of the raw log.
CREATE TABLE aggregates (
    id          INTEGER PRIMARY KEY,
    model_id    INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    version     TEXT NOT NULL,
    data        BLOB NOT NULL,
    UNIQUE (model_id, kind, hour, version)
);
-- Business KPI series logged beside a model; a second value for the same name and time
-- replaces the first (a retried request does not double count).
CREATE TABLE kpis (
    model_id    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    value       REAL NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (model_id, name, ts)
) WITHOUT ROWID;
-- Counters kept by the writer so that a model summary never joins labels to predictions:
-- labels joined to a stored prediction, and labels still waiting for theirs.
ALTER TABLE models ADD COLUMN labelled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE models ADD COLUMN orphan_labels INTEGER NOT NULL DEFAULT 0;
