-- modelwatch embedded store: what schema version 5 adds to version 4 (ADR 005, request
-- buckets).
-- The request index is keyed by (model, bucket, request id): a model's new predictions go into
-- its open bucket, which is closed once full and never written again, so that a commit
-- rewrites only the open bucket's pages however large the index grows. Rows stored before
-- version 5 are the first bucket.
CREATE TABLE request_index_v5 (
    model_id    INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    request_id  TEXT NOT NULL,
    ts          INTEGER NOT NULL,            -- event time
    version     TEXT NOT NULL,               -- '' when the client sent none
    error       INTEGER NOT NULL,            -- 1 when the prediction is a failed request
    segment_id  INTEGER NOT NULL,
    outcome     BLOB,                        -- compact.rs form; NULL for rows stored before v3
    PRIMARY KEY (model_id, bucket, request_id)
) WITHOUT ROWID;
INSERT INTO request_index_v5(model_id, bucket, request_id, ts, version, error, segment_id, outcome)
    SELECT model_id, 0, request_id, ts, version, error, segment_id, outcome FROM request_index;
DROP TABLE request_index;
ALTER TABLE request_index_v5 RENAME TO request_index;
CREATE INDEX request_index_segment ON request_index(model_id, segment_id);
-- A model's buckets. The open one (the highest) has no filter; a closed one has the xor filter
-- of its request ids' hashes (buckets.rs), so that lookups by id probe only the buckets that
-- may hold it.
CREATE TABLE request_buckets (
    model_id    INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    rows        INTEGER NOT NULL,            -- rows stored in it
    -- 1 once closed. A column of its own, before the filter: listing a model's buckets then
    -- reads no filter (tens of KB each, in overflow pages).
    closed      INTEGER NOT NULL,
    filter      BLOB,                        -- NULL while open
    PRIMARY KEY (model_id, bucket)
) WITHOUT ROWID;
INSERT INTO request_buckets(model_id, bucket, rows, closed, filter)
    SELECT model_id, 0, count(*), 0, NULL FROM request_index GROUP BY model_id;
-- Groups of consecutive closed buckets with one filter over all their ids: a lookup checks a
-- group's filter first and its buckets' filters only when it may hold the id, so the filters
-- checked per id grow with the number of groups (one per 16 buckets), not of buckets.
CREATE TABLE request_bucket_groups (
    model_id     INTEGER NOT NULL,
    first_bucket INTEGER NOT NULL,
    last_bucket  INTEGER NOT NULL,
    filter       BLOB NOT NULL,
    PRIMARY KEY (model_id, first_bucket)
) WITHOUT ROWID;
