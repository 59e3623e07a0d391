-- modelwatch embedded store: what schema version 9 adds to version 8.
-- A reference row's per-feature attributions (`explanation.<feature>` columns of the upload), as
-- a JSON object of numbers by feature; NULL when the row has none, as every row stored before
-- version 9 reads.
ALTER TABLE reference_rows ADD COLUMN explanations TEXT;
