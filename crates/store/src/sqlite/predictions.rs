//! Predictions: a batch queued (`submit_predictions`; a file import's `submit_gathered`),
//! then stored by the writer (`ingest_predictions`): each request id looked for in the model's
//! request buckets (`buckets.rs`), the new rows' index rows and chunks written, the versions
//! counted, and each (version, hour) given a delta of its new predictions (`changes.rs`).
//! Shadow predictions (ADR 011) take a job of their own (`ingest_shadow_predictions`).
//!
//! Invariants:
//! - a request id is stored once per model; a shadow prediction once per (request id,
//!   version), in `shadow_index`, and it marks no hour, records no delta, counts in no version;
//! - index rows go in in key order, many per statement, with `INSERT OR IGNORE` (no statement
//!   journal);
//! - an hour whose new prediction adopted a label sent before it is marked for a rescan
//!   instead of getting a delta (a delta of predictions carries no labels);
//! - a caller's fold of an hour is kept only when it folded exactly the rows stored.

use super::*;

impl SqliteStore {
    /// [`Store::ingest_predictions`] without waiting: the batch is encoded on this thread and
    /// queued for the writer, and the returned handle answers once its commit is done. A bulk
    /// loader keeps one batch queued while the writer stores the previous one, so that encoding
    /// and writing overlap; jobs are committed in the order they were queued.
    pub fn submit_predictions(
        &self,
        model: &ModelName,
        mut batch: PredictionBatch,
    ) -> Result<PendingPredictions, StoreError> {
        let shadow = take_shadows(&mut batch);
        let mut chunks = ChunkEncoder::with_capacity(batch.rows.len());
        for (position, (_, e)) in batch.rows.iter().enumerate() {
            let sent = batch.verbatim.as_ref().and_then(|v| v.row(position));
            chunks.push(e, sent)?;
        }
        let gathered = GatheredPredictions {
            batch,
            chunks,
            slim: SlimRows::default(),
        };
        let mut pending = self.submit_gathered(model, gathered)?;
        if !shadow.is_empty() {
            let model = model.clone();
            pending.shadow = Some(self.enqueue(|r| Job::Shadow(model, shadow, r))?);
        }
        Ok(pending)
    }

    /// [`SqliteStore::submit_predictions`] of a batch gathered piece by piece, whose chunks
    /// were encoded as the pieces arrived.
    pub fn submit_gathered(
        &self,
        model: &ModelName,
        gathered: GatheredPredictions,
    ) -> Result<PendingPredictions, StoreError> {
        self.submit_gathered_as(model, gathered, false)
    }

    pub(super) fn submit_gathered_as(
        &self,
        model: &ModelName,
        gathered: GatheredPredictions,
        labels_follow: bool,
    ) -> Result<PendingPredictions, StoreError> {
        let model = model.clone();
        let GatheredPredictions {
            batch,
            chunks,
            slim,
        } = gathered;
        let mut encoded = match slim.len() {
            0 => Encoded::new(&batch.rows, chunks.finish()?),
            _ => Encoded::from_slim(slim, chunks.finish()?),
        };
        encoded.labels_follow = labels_follow;
        let job = encoded.job;
        self.enqueue(|r| Job::Predictions(model, batch, encoded, r))
            .map(|served| PendingPredictions {
                served,
                job,
                shadow: None,
            })
    }
}

/// Per version of a batch: the predictions stored and their first and last event times, added
/// by `save` to the model's `versions` (served) or `shadow_versions` table.
#[derive(Default)]
struct VersionSpans<'a>(BTreeMap<&'a str, (i64, i64, i64)>);

impl<'a> VersionSpans<'a> {
    fn add(&mut self, version: &'a str, ts: i64) {
        let v = self.0.entry(version).or_insert((0, ts, ts));
        v.0 += 1;
        v.1 = v.1.min(ts);
        v.2 = v.2.max(ts);
    }

    /// `table` is `versions` or `shadow_versions`.
    fn save(self, tx: &Transaction<'_>, table: &str, model_id: i64) -> Result<(), StoreError> {
        let mut upsert = tx.prepare_cached(&format!(
            "INSERT INTO {table}(model_id, version, predictions, first_ts, last_ts)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(model_id, version) DO UPDATE SET
                predictions = predictions + excluded.predictions,
                first_ts = min(first_ts, excluded.first_ts),
                last_ts = max(last_ts, excluded.last_ts)"
        ))?;
        for (version, (n, first, last)) in self.0 {
            upsert.execute(params![model_id, version, n, first, last])?;
        }
        Ok(())
    }
}

pub(super) fn ingest_predictions(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    model: &ModelName,
    batch: &PredictionBatch,
    encoded: &Encoded,
) -> Result<IngestOutcome, StoreError> {
    let now = Timestamp::now();
    let mut out = IngestOutcome::default();
    let job_rows = Rows::of(batch, encoded);
    if job_rows.len() == 0 {
        // A batch of only bad rows still creates nothing, but its rows are kept for the user.
        out.rejected = quarantine_all(tx, model, "predictions", &batch.rejected, vec![], now)?;
        return Ok(out);
    }
    let entry = model_entry(tx, models, model, true)?.expect("created");
    // The model's request buckets: new rows go into the open one, and each id is first looked
    // for in the closed ones that may hold it.
    let mut buckets = match entry.buckets.take() {
        Some(b) => b,
        None => Buckets::load(tx, entry.id)?,
    };
    let open = buckets.open_for_writes(
        tx,
        &shared.filters,
        entry.id,
        shared.bucket_rows,
        shared.group_buckets,
    )?;
    // Rows rejected here; those rejected before are in the batch.
    let mut admission = Admission::new(shared.max_features());
    // Positions in the batch of the rows that pass the checks, in order.
    let mut lines = Lines::default();
    let admitted = job_rows.admit(&mut admission, entry, encoded, &mut lines)?;

    let mut versions = VersionSpans::default();
    // New rows stored per (version, hour, chunk): each key is a delta of its hour, which a
    // refresh adds to the stored aggregates (no rescan of the hour); the count tells whether
    // the caller's fold of the hour folded exactly those rows.
    let mut new_rows: BTreeMap<(&str, i64, i64), u64> = BTreeMap::new();
    // Hours of predictions that adopted a label sent before them: rescanned, since a delta of
    // new predictions carries no labels.
    let mut adopting: BTreeSet<(&str, i64)> = BTreeSet::new();
    // Labels that arrived before their prediction: only while some exist is each new
    // prediction looked up in `labels` (the common order, label after prediction, costs nothing).
    let orphan_labels: i64 = tx.query_row(
        "SELECT orphan_labels FROM models WHERE id = ?1",
        [entry.id],
        |r| r.get(0),
    )?;
    let mut adopted = 0i64;
    // The hashes of the ids stored, for the open bucket's filter.
    let mut new_hashes = Vec::with_capacity(job_rows.len());
    // When every row passed the checks, chunks of `admitted` are the chunks `encoded` compressed.
    let all_admitted = admitted.len() == job_rows.len();
    // Each admitted row's place among the admitted rows, by position in the batch.
    let mut slot_of = vec![usize::MAX; job_rows.len()];
    for (slot, &position) in admitted.iter().enumerate() {
        slot_of[position] = slot;
    }
    for (chunk_no, admitted) in admitted.chunks(CHUNK_MAX_ROWS).enumerate() {
        // The chunk row is created first so that index rows can name it; its data is written
        // once all events of the job are known (a duplicate is never written).
        tx.execute(
            "INSERT INTO segments(model_id, rows, min_ts, max_ts, received_at, data)
             VALUES (?1, 0, 0, 0, ?2, x'')",
            params![entry.id, now.micros()],
        )?;
        let chunk_id = tx.last_insert_rowid();
        let mut ndjson = Vec::new();
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        let mut rows = 0i64;
        // Index rows go in in key order: B-tree inserts in order touch each page once and are
        // several times cheaper than in arrival order. Events go into the chunk in arrival order.
        let chunk_slots = chunk_no * CHUNK_MAX_ROWS..chunk_no * CHUNK_MAX_ROWS + admitted.len();
        let mut is_new = vec![false; admitted.len()];
        {
            // This chunk's rows, in key order.
            let keys: Vec<&IndexKey> = encoded
                .keys
                .iter()
                .filter(|k| chunk_slots.contains(&slot_of[k.position]))
                .collect();
            let into = IndexTarget {
                model_id: entry.id,
                open,
                buckets: &buckets,
                filters: &shared.filters,
                chunk_id,
            };
            insert_index_rows(tx, &into, encoded, &keys, |key, new| {
                is_new[slot_of[key.position] - chunk_slots.start] = new;
                if new {
                    new_hashes.push(key.hash);
                }
            })?;
        }
        if orphan_labels > adopted {
            let mut label =
                tx.prepare_cached("SELECT 1 FROM labels WHERE model_id = ?1 AND request_id = ?2")?;
            for (&p, new) in admitted.iter().zip(&is_new) {
                if *new && label.exists(params![entry.id, job_rows.request_id(p)])? {
                    adopted += 1;
                    adopting.insert((job_rows.version(p), hour_of(job_rows.ts(p))));
                }
            }
        }
        let all_new = is_new.iter().all(|n| *n);
        for (&position, new) in admitted.iter().zip(is_new) {
            if !new {
                out.duplicates += 1;
                continue;
            }
            let (version, ts) = (job_rows.version(position), job_rows.ts(position));
            out.accepted += 1;
            rows += 1;
            *new_rows
                .entry((version, hour_of(ts), chunk_id))
                .or_default() += 1;
            if !(all_admitted && all_new) {
                job_rows.encode_line(position, &mut ndjson, &mut lines)?;
            }
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
            versions.add(version, ts);
        }
        if rows == 0 {
            tx.execute("DELETE FROM segments WHERE id = ?1", [chunk_id])?;
        } else {
            let recompressed;
            let data = if all_admitted && all_new {
                &encoded.chunks[chunk_no]
            } else {
                let mut data = Vec::new();
                let mut z = ChunkCompressor::new()?;
                for frame in frames(&ndjson) {
                    z.append(&mut data, frame)?;
                }
                recompressed = data;
                &recompressed
            };
            tx.execute(
                "UPDATE segments SET rows = ?1, min_ts = ?2, max_ts = ?3, data = ?4 WHERE id = ?5",
                params![rows, min_ts, max_ts, data, chunk_id],
            )?;
        }
    }
    buckets.add_rows(tx, entry.id, &new_hashes)?;
    entry.buckets = Some(buckets);
    versions.save(tx, "versions", entry.id)?;
    // A fold of the caller's is kept when it folded exactly the rows stored: all of its
    // hour's rows were new and valid, and they went into one chunk.
    let one_chunk = admitted.len() <= CHUNK_MAX_ROWS;
    let folds: HashMap<(&str, i64), &HourFold> = batch
        .folds
        .iter()
        .map(|f| ((f.version.as_str(), f.hour), f))
        .collect();
    for ((version, hour, chunk), stored) in new_rows {
        if !adopting.contains(&(version, hour)) {
            let fold = folds
                .get(&(version, hour))
                .filter(|f| one_chunk && f.rows == stored)
                .map_or(&[][..], |f| &f.data[..]);
            record_delta(
                tx,
                entry.id,
                version,
                hour,
                Delta::Predictions { chunk, fold },
            )?;
        }
    }
    mark_dirty(tx, entry.id, adopting)?;
    if adopted > 0 {
        tx.execute(
            "UPDATE models SET labelled = labelled + ?1, orphan_labels = orphan_labels - ?1
             WHERE id = ?2",
            params![adopted, entry.id],
        )?;
    }
    let quarantined;
    (out.schema_changes, quarantined) = admission.finish(tx, entry)?;
    out.rejected = quarantine_all(tx, model, "predictions", &batch.rejected, quarantined, now)?;
    Ok(out)
}

/// Takes the shadow predictions out of `batch` (with the text spans of the rows that stay),
/// for a job of their own: served rows keep the path they always had, and a batch without a
/// shadow row costs one pass over its roles.
fn take_shadows(batch: &mut PredictionBatch) -> Vec<(usize, PredictionEvent)> {
    if batch.rows.iter().all(|(_, e)| e.role.is_served()) {
        return Vec::new();
    }
    let rows = std::mem::take(&mut batch.rows);
    let mut spans = batch
        .verbatim
        .as_mut()
        .map(|v| std::mem::take(&mut v.spans));
    let mut shadow = Vec::new();
    for (position, row) in rows.into_iter().enumerate() {
        if row.1.role.is_served() {
            if let (Some(kept), Some(v)) = (&mut spans, &mut batch.verbatim) {
                v.spans.push(kept.get_mut(position).and_then(Option::take));
            }
            batch.rows.push(row);
        } else {
            shadow.push(row);
        }
    }
    shadow
}

/// Stores shadow predictions (ADR 011): each is idempotent on (request id, version) through
/// `shadow_index`, and its event goes into a chunk like any other, read back by
/// [`Store::scan_with_shadows`] and never by the served traffic's scans. They mark no hour,
/// record no delta and count in no version: no report but the comparison reads them.
pub(super) fn ingest_shadow_predictions(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    model: &ModelName,
    rows: &[(usize, PredictionEvent)],
) -> Result<IngestOutcome, StoreError> {
    let now = Timestamp::now();
    let mut out = IngestOutcome::default();
    let entry = model_entry(tx, models, model, true)?.expect("created");
    let mut admission = Admission::new(shared.max_features());
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut admitted: Vec<&PredictionEvent> = Vec::with_capacity(rows.len());
    for (index, event) in rows {
        let version = event.model_version.as_deref().unwrap_or("");
        let first = *first_of
            .entry((event.request_id.as_str(), version))
            .or_insert(*index);
        if first != *index {
            admission.refuse(repeated_rejection(*index, &event.request_id, first), event);
            continue;
        }
        if admission.admit(
            entry,
            *index,
            Some(&event.request_id),
            &event.features,
            event,
        ) {
            admitted.push(event);
        }
    }
    let mut index_row = tx.prepare_cached(
        "INSERT OR IGNORE INTO shadow_index(model_id, request_id, version, ts, segment_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut versions = VersionSpans::default();
    for events in admitted.chunks(CHUNK_MAX_ROWS) {
        tx.execute(
            "INSERT INTO segments(model_id, rows, min_ts, max_ts, received_at, data)
             VALUES (?1, 0, 0, 0, ?2, x'')",
            params![entry.id, now.micros()],
        )?;
        let chunk_id = tx.last_insert_rowid();
        let mut ndjson = Vec::new();
        let (mut min_ts, mut max_ts, mut stored) = (i64::MAX, i64::MIN, 0i64);
        for e in events {
            let version = e.model_version.as_deref().unwrap_or("");
            let ts = e.timestamp.micros();
            if index_row.execute(params![entry.id, e.request_id, version, ts, chunk_id])? == 0 {
                out.duplicates += 1;
                continue;
            }
            out.accepted += 1;
            stored += 1;
            encode_line(&mut ndjson, e);
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
            versions.add(version, ts);
        }
        if stored == 0 {
            tx.execute("DELETE FROM segments WHERE id = ?1", [chunk_id])?;
            continue;
        }
        let mut data = Vec::new();
        let mut z = ChunkCompressor::new()?;
        for frame in frames(&ndjson) {
            z.append(&mut data, frame)?;
        }
        tx.execute(
            "UPDATE segments SET rows = ?1, min_ts = ?2, max_ts = ?3, data = ?4 WHERE id = ?5",
            params![stored, min_ts, max_ts, data, chunk_id],
        )?;
    }
    versions.save(tx, "shadow_versions", entry.id)?;
    let quarantined;
    (out.schema_changes, quarantined) = admission.finish(tx, entry)?;
    out.rejected = quarantine_all(tx, model, "predictions", &[], quarantined, now)?;
    Ok(out)
}

/// Request-index rows stored per INSERT statement: binding, stepping and resetting a statement
/// are paid per statement, and one statement per row was about a third of the writer's user
/// time on the 1M-row import (docs/benchmarks.md).
const INDEX_ROWS_PER_INSERT: usize = 64;

/// Where a batch's request-index rows go: the model's open bucket, after the closed buckets that
/// may hold their ids were looked in.
struct IndexTarget<'a> {
    model_id: i64,
    open: i64,
    /// The model's buckets, whose closed ones are searched through `filters`.
    buckets: &'a Buckets,
    filters: &'a Filters,
    /// The chunk every row points at.
    chunk_id: i64,
}

/// Stores the request-index rows of `keys` (in key order) into the open bucket, and tells
/// `stored` for each whether it is new; a request id already stored, in any bucket, keeps its
/// row (the event is a duplicate).
///
/// `INSERT OR IGNORE` rather than `ON CONFLICT DO NOTHING`: when a multi-row statement could
/// still fail on another constraint after some of its rows went in, SQLite keeps a statement
/// journal (a copy of every page the statement changes, made first), which cost as much as the
/// per-statement work saved. With OR IGNORE no row can fail the statement, and no journal is
/// kept. No column is ever NULL, so the only rows it ignores are stored request ids.
fn insert_index_rows<'k>(
    tx: &Transaction<'_>,
    into: &IndexTarget<'_>,
    encoded: &Encoded,
    keys: &[&'k IndexKey],
    mut stored: impl FnMut(&'k IndexKey, bool),
) -> Result<(), StoreError> {
    let id = |key: &IndexKey| &encoded.ids[key.id.clone()];
    // Ids stored in a closed bucket are duplicates; a filter rules out all but about 1 in 256
    // of the others without reading the bucket.
    let mut fresh: Vec<&'k IndexKey> = Vec::with_capacity(keys.len());
    if into.buckets.closed.is_empty() {
        fresh.extend_from_slice(keys);
    } else {
        let mut in_bucket = tx.prepare_cached(
            "SELECT 1 FROM request_index WHERE model_id = ?1 AND bucket = ?2 AND request_id = ?3",
        )?;
        let hashes: Vec<u64> = keys.iter().map(|k| k.hash).collect();
        let mut duplicate = vec![false; keys.len()];
        into.buckets.search_closed(
            tx,
            into.filters,
            into.model_id,
            &hashes,
            &mut duplicate,
            |bucket, which, duplicate| {
                for &k in which {
                    duplicate[k] = in_bucket.exists(params![into.model_id, bucket, id(keys[k])])?;
                }
                Ok(())
            },
        )?;
        for (&key, dup) in keys.iter().zip(duplicate) {
            if dup {
                stored(key, false);
            } else {
                fresh.push(key);
            }
        }
    }
    let mut full = tx.prepare_cached(&index_insert_sql(INDEX_ROWS_PER_INSERT))?;
    let mut chunk_of = tx.prepare_cached(
        "SELECT segment_id FROM request_index WHERE model_id = ?1 AND bucket = ?2
                                                AND request_id = ?3",
    )?;
    for group in fresh.chunks(INDEX_ROWS_PER_INSERT) {
        let mut last;
        let insert = if group.len() == INDEX_ROWS_PER_INSERT {
            &mut full
        } else {
            last = tx.prepare_cached(&index_insert_sql(group.len()))?;
            &mut last
        };
        insert.raw_bind_parameter(1, into.model_id)?;
        insert.raw_bind_parameter(2, into.chunk_id)?;
        insert.raw_bind_parameter(3, into.open)?;
        for (k, key) in group.iter().enumerate() {
            let p = 4 + 5 * k;
            insert.raw_bind_parameter(p, id(key))?;
            insert.raw_bind_parameter(p + 1, key.ts)?;
            insert.raw_bind_parameter(p + 2, &encoded.versions[key.version])?;
            insert.raw_bind_parameter(p + 3, key.error)?;
            insert.raw_bind_parameter(p + 4, &encoded.outcomes[key.outcome.clone()])?;
        }
        if insert.raw_execute()? == group.len() {
            group.iter().for_each(|key| stored(key, true));
            continue;
        }
        // Some ids were stored before: the new rows are those pointing at this chunk (its id
        // is new, and an id repeated within the batch never gets this far).
        for key in group {
            let chunk: i64 =
                chunk_of.query_row(params![into.model_id, into.open, id(key)], |r| r.get(0))?;
            stored(key, chunk == into.chunk_id);
        }
    }
    Ok(())
}

/// `INSERT OR IGNORE` of `rows` request-index rows: ?1 is the model, ?2 the chunk, ?3 the
/// bucket, and each row binds its request id, event time, version, error flag and outcome, in
/// that order.
fn index_insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|k| {
            let p = 4 + 5 * k;
            format!(
                "(?1, ?3, ?{p}, ?{}, ?{}, ?{}, ?2, ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect();
    format!(
        "INSERT OR IGNORE INTO request_index(model_id, bucket, request_id, ts, version, error,
                                            segment_id, outcome)
         VALUES {}",
        values.join(", ")
    )
}
