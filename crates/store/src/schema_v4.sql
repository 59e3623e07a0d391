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
-- The generation of the latest change that needs a rescan (a replaced label, retention...).
-- Every other change is recorded as a delta even while a rescan is pending: a rescan deletes
-- the deltas it read (ids up to the last one in its snapshot) and, when changes raced with it,
-- leaves the hour deltas-only unless one of them needs a rescan too (full_at after the
-- generation it read). Under steady traffic the current hour is thus rescanned once, not on
-- every refresh.
ALTER TABLE dirty_hours ADD COLUMN full_at INTEGER NOT NULL DEFAULT 0;
UPDATE dirty_hours SET full_at = generation WHERE deltas_only = 0;
