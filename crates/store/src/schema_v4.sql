-- modelwatch embedded store: what schema version 4 adds to version 3 (ADR 003, "new
-- predictions without a rescan").
-- An hour's deltas are now of two kinds: first labels (data, as in version 3) and new
-- predictions, which name the segment that holds them (segment_id, data empty). The table and
-- the mark's flag are renamed for what they hold.
ALTER TABLE label_deltas RENAME TO hour_deltas;
ALTER TABLE hour_deltas ADD COLUMN segment_id INTEGER;
DROP INDEX label_deltas_hour;
CREATE INDEX hour_deltas_hour ON hour_deltas(model_id, version, hour);
ALTER TABLE dirty_hours RENAME COLUMN labels_only TO deltas_only;
