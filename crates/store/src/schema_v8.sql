-- modelwatch embedded store: what schema version 8 adds to version 7 (ADR 010, challengers).
-- Shadow predictions: a challenger's prediction for a request whose served prediction is in
-- `request_index` (or comes later). One row per (request id, version), so that a shadow
-- prediction is stored once per version, however often it is sent; its event is in the chunk
-- `segment_id` like any other, and joins the request's label by request id when read. Kept
-- apart from `request_index`, whose buckets hold each request id once (ADR 005): served traffic
-- pays nothing for it.
CREATE TABLE shadow_index (
    model_id    INTEGER NOT NULL,
    request_id  TEXT NOT NULL,
    version     TEXT NOT NULL,
    ts          INTEGER NOT NULL,            -- event time
    segment_id  INTEGER NOT NULL,
    PRIMARY KEY (model_id, request_id, version)
) WITHOUT ROWID;
-- Counters of each shadow version's predictions, kept by the writer like `versions`, so that a
-- model summary lists its challengers without reading `shadow_index`.
CREATE TABLE shadow_versions (
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    predictions INTEGER NOT NULL,
    first_ts    INTEGER NOT NULL,
    last_ts     INTEGER NOT NULL,
    PRIMARY KEY (model_id, version)
);
