-- modelwatch embedded store: what schema version 7 changes from version 6.
-- Delta ids are never handed out again (AUTOINCREMENT). A rescan deletes its hours' deltas up
-- to the last id its snapshot held; with plain rowids, once the newest deltas were applied and
-- deleted (another model's refresh, another pass of the same refresh), a delta recorded during
-- the rescan could get an id under that watermark and be deleted unread: the prediction or
-- first label it carried was never counted, and a later label of such a prediction took a
-- "missing" from a drift sketch that had never counted it.
CREATE TABLE hour_deltas_v7 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    hour        INTEGER NOT NULL,
    data        BLOB NOT NULL,
    segment_id  INTEGER
);
INSERT INTO hour_deltas_v7(id, model_id, version, hour, data, segment_id)
    SELECT id, model_id, version, hour, data, segment_id FROM hour_deltas;
DROP TABLE hour_deltas;
ALTER TABLE hour_deltas_v7 RENAME TO hour_deltas;
CREATE INDEX hour_deltas_hour ON hour_deltas(model_id, version, hour);
