-- modelwatch embedded store: what schema version 3 adds to version 2 (ADR 003, "new labels
-- without a rescan").
-- The prediction's outcome (prediction, score, class scores) in the compact form of
-- compact.rs, so that a late label can be applied to its hour's aggregates without decoding
-- the segment. NULL for rows stored before version 3: their labels mark the hour for a rescan.
ALTER TABLE request_index ADD COLUMN outcome BLOB;
-- 1 while every change of the hour since its aggregates were written is a first label,
-- recorded in label_deltas.
ALTER TABLE dirty_hours ADD COLUMN labels_only INTEGER NOT NULL DEFAULT 0;
CREATE TABLE label_deltas (
    id          INTEGER PRIMARY KEY,
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    data        BLOB NOT NULL                -- entries of compact.rs
);
CREATE INDEX label_deltas_hour ON label_deltas(model_id, version, hour);
