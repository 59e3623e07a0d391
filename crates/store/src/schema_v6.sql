-- modelwatch embedded store: what schema version 6 changes from version 5 (ADR 007).
-- The request index loses its second B-tree, by segment: it was written for every prediction
-- (48 bytes a row, 40 % of the index's pages, each page through the WAL and again by the
-- checkpoint) and read only by scans, to find the labels of a segment's events. Scans now look
-- the labels up by the events' request ids, which the segment holds.
DROP INDEX request_index_segment;
