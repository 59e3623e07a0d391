//! Labels: a batch sorted by request id and its predictions looked up on a read connection
//! before it reaches the writer (`Found`), then stored many per statement (`store_labels`) and
//! joined to their predictions' event-time hours (`ingest_labels`): first labels as a delta
//! with what their prediction said, anything else as a mark for a rescan. The labels of a
//! predictions file's own rows join through the rows that job stored (`StoredBatch`).
//!
//! Invariants:
//! - a label replaces the request id's earlier label; a label that arrives before its
//!   prediction is an orphan until the prediction comes (`predictions.rs` adopts it);
//! - a label changes only its prediction's hour: event time, never label time;
//! - the caller's lookups are used only while no index row was deleted since they were made
//!   (`WriterShared::deletions`), and ids they did not find are looked up again by the writer;
//! - the arrival times of one job never repeat (`arrival_time`), so a replaced label is told
//!   from a new one.

use super::*;

impl SqliteStore {
    /// [`Store::ingest_labels`] without waiting; see [`SqliteStore::submit_predictions`].
    pub fn submit_labels(
        &self,
        model: &ModelName,
        mut batch: LabelBatch,
    ) -> Result<PendingLabels, StoreError> {
        let model = model.clone();
        sort_labels(&mut batch);
        let found = self.find_label_predictions(&model, &batch)?;
        self.enqueue(|r| Job::Labels(model, batch, found, None, r))
            .map(PendingLabels)
    }

    /// [`SqliteStore::submit_gathered`], then the labels read from the same rows (a
    /// predictions file with a label column), queued right after them with no lookup on this
    /// thread: the writer joins each label to the prediction of its row as the predictions job
    /// stored it, when that job stored every row of its batch as new (the index then holds
    /// exactly those rows); otherwise (a re-import, duplicates, refused rows) it looks them up
    /// as for any label batch.
    pub fn submit_gathered_with_labels(
        &self,
        model: &ModelName,
        gathered: GatheredPredictions,
        mut labels: LabelBatch,
    ) -> Result<(PendingPredictions, PendingLabels), StoreError> {
        let predictions = self.submit_gathered_as(model, gathered, true)?;
        sort_labels(&mut labels);
        let (model, job) = (model.clone(), predictions.job);
        let labels = self
            .enqueue(|r| Job::Labels(model, labels, None, Some(job), r))
            .map(PendingLabels)?;
        Ok((predictions, labels))
    }

    /// Finds the predictions of a sorted label batch on a read connection, in one read
    /// transaction. `None` when the model does not exist (the writer answers that).
    pub(super) fn find_label_predictions(
        &self,
        model: &ModelName,
        batch: &LabelBatch,
    ) -> Result<Option<Found>, StoreError> {
        let deletions = self.deletions.load(Ordering::SeqCst);
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let Some(id) = model_id(&tx, model)? else {
                return Ok(None);
            };
            let mut found = Found {
                deletions,
                rows: vec![None; batch.rows.len()],
                versions: Vec::new(),
                outcomes: Vec::new(),
            };
            // Distinct ids only; a repeated id (rejected by the writer) needs no row.
            let mut ids: Vec<&str> = Vec::with_capacity(batch.rows.len());
            let mut rows: Vec<usize> = Vec::with_capacity(batch.rows.len());
            for (r, (_, l)) in batch.rows.iter().enumerate() {
                if ids.last() != Some(&l.request_id.as_str()) {
                    ids.push(&l.request_id);
                    rows.push(r);
                }
            }
            find_predictions(&tx, &self.filters, id, &ids, |i, ts, version, outcome| {
                let v = match found.versions.iter().position(|v| v == version) {
                    Some(v) => v,
                    None => {
                        found.versions.push(version.to_owned());
                        found.versions.len() - 1
                    }
                };
                let outcome = outcome.map(|o| {
                    let start = found.outcomes.len();
                    found.outcomes.extend_from_slice(o);
                    start..found.outcomes.len()
                });
                found.rows[rows[i]] = Some(FoundRow {
                    ts,
                    version: v,
                    outcome,
                });
            })?;
            Ok(Some(found))
        })
    }
}

/// The request-index columns a predictions job stored, rows all new: what a lookup of their
/// request ids would find.
pub(super) struct StoredBatch {
    pub(super) job: u64,
    pub(super) model: String,
    /// `Encoded::keys`' ids, event times, versions and outcome ranges, sorted by request id.
    pub(super) keys: Vec<(std::ops::Range<usize>, i64, usize, std::ops::Range<usize>)>,
    pub(super) ids: String,
    pub(super) versions: Vec<String>,
    pub(super) outcomes: Vec<u8>,
}

impl StoredBatch {
    /// [`Found`] for a sorted label batch: each label's prediction among the stored rows, by
    /// one walk of both in request-id order. A label whose id is not among them is left to
    /// the writer's lookups.
    pub(super) fn found(self, batch: &LabelBatch, deletions: u64) -> Found {
        let mut rows = vec![None; batch.rows.len()];
        let mut k = 0usize;
        for (r, (_, l)) in batch.rows.iter().enumerate() {
            let id = l.request_id.as_str();
            while k < self.keys.len() && &self.ids[self.keys[k].0.clone()] < id {
                k += 1;
            }
            if let Some((range, ts, version, outcome)) = self.keys.get(k) {
                if &self.ids[range.clone()] == id {
                    rows[r] = Some(FoundRow {
                        ts: *ts,
                        version: *version,
                        outcome: Some(outcome.clone()),
                    });
                }
            }
        }
        Found {
            deletions,
            rows,
            versions: self.versions,
            outcomes: self.outcomes,
        }
    }
}

pub(super) fn ingest_labels(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    model: &ModelName,
    batch: &LabelBatch,
    found: Option<&Found>,
) -> Result<IngestOutcome, StoreError> {
    let now = arrival_time();
    let Some(entry) = model_entry(tx, models, model, false)? else {
        return Err(StoreError::ModelNotFound(model.to_string()));
    };
    let model_id = entry.id;
    let mut out = IngestOutcome::default();
    // Rows rejected here; those rejected before are in the batch.
    let mut quarantined = Vec::new();
    // In key order, like the request index and the labels: B-tree writes in order touch each
    // page once. Sorted by (request id, row), a repeated id follows its first row. The caller
    // sorts on its own thread (`sort_labels`), so here it is usually one checking pass.
    let rows = &batch.rows;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if !rows.is_sorted_by_key(label_order) {
        order.sort_unstable_by_key(|&i| label_order(&rows[i]));
    }
    let mut fresh: Vec<&LabelEvent> = Vec::with_capacity(rows.len());
    // Each fresh label's row in the batch (where the caller's lookups are).
    let mut fresh_rows: Vec<usize> = Vec::with_capacity(rows.len());
    let mut first: Option<&(usize, LabelEvent)> = None;
    for &i in &order {
        let row = &rows[i];
        match first {
            Some(f) if f.1.request_id == row.1.request_id => quarantined.push(Quarantined {
                rejection: repeated_rejection(row.0, &row.1.request_id, f.0),
                row: to_json(&row.1),
            }),
            _ => {
                first = Some(row);
                fresh.push(&row.1);
                fresh_rows.push(i);
            }
        }
    }
    // The caller's lookups hold when no index row was deleted since they were made.
    let found = found.filter(|f| f.deletions == shared.deletions.load(Ordering::SeqCst));
    // What the batch changes in each (version, hour) of the predictions it joins: a delta of
    // first labels, or `None` once a replaced label (or an index row stored before outcomes
    // were kept) needs the hour rescanned.
    let mut hours: HashMap<String, HashMap<i64, Option<Vec<u8>>>> = HashMap::new();
    {
        let stored = store_labels(tx, model_id, &fresh, now.micros())?;
        out.replaced = stored.iter().filter(|s| **s == Stored::Replaced).count();
        out.accepted = fresh.len();
        let mut joined = 0i64;
        let mut on_found = |i: usize, ts: i64, version: &str, outcome: Option<&[u8]>| {
            let l = fresh[i];
            joined += i64::from(stored[i] != Stored::Replaced);
            if !hours.contains_key(version) {
                hours.insert(version.to_owned(), HashMap::new());
            }
            let change = hours
                .get_mut(version)
                .expect("inserted")
                .entry(hour_of(ts))
                .or_insert_with(|| Some(Vec::new()));
            match (change.as_mut(), outcome) {
                (Some(delta), Some(outcome)) if stored[i] == Stored::New => {
                    compact::put_delta_entry(delta, ts, outcome, &l.label, l.timestamp.micros());
                }
                _ => *change = None,
            }
        };
        // Ids to look up here: all of them, or those the caller did not find (their
        // predictions may have arrived since).
        let mut missing: Vec<usize> = Vec::new();
        match &found {
            Some(f) => {
                for (i, &row) in fresh_rows.iter().enumerate() {
                    match &f.rows[row] {
                        Some(p) => on_found(
                            i,
                            p.ts,
                            &f.versions[p.version],
                            p.outcome.clone().map(|o| &f.outcomes[o]),
                        ),
                        None => missing.push(i),
                    }
                }
            }
            None => missing = (0..fresh.len()).collect(),
        }
        let ids: Vec<&str> = missing
            .iter()
            .map(|&i| fresh[i].request_id.as_str())
            .collect();
        find_predictions(
            tx,
            &shared.filters,
            model_id,
            &ids,
            |k, ts, version, outcome| on_found(missing[k], ts, version, outcome),
        )?;
        let orphans = (fresh.len() - out.replaced) as i64 - joined;
        if joined + orphans > 0 {
            tx.execute(
                "UPDATE models SET labelled = labelled + ?1, orphan_labels = orphan_labels + ?2
                 WHERE id = ?3",
                params![joined, orphans, model_id],
            )?;
        }
    }
    let mut rescan = Vec::new();
    for (version, by_hour) in &hours {
        for (&hour, change) in by_hour {
            match change {
                Some(delta) => record_delta(tx, model_id, version, hour, Delta::Labels(delta))?,
                None => rescan.push((version.as_str(), hour)),
            }
        }
    }
    mark_dirty(tx, model_id, rescan)?;
    let new_labels = (out.accepted - out.replaced) as i64;
    if new_labels > 0 {
        tx.execute(
            "UPDATE models SET labels = labels + ?1 WHERE id = ?2",
            params![new_labels, model_id],
        )?;
    }
    out.rejected = quarantine_all(tx, model, "labels", &batch.rejected, quarantined, now)?;
    Ok(out)
}

/// The writer's clock for arrival times: the wall clock, but never the same microsecond twice
/// in a process, so that the rows one job stores can be told from earlier ones by it.
pub(super) fn arrival_time() -> Timestamp {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);
    let now = Timestamp::now().micros();
    let last = LAST.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    if now > last {
        return Timestamp(now);
    }
    Timestamp(LAST.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
}

/// Labels stored per INSERT statement: a multi-row statement costs about half as much per row
/// as one statement per row (binding, stepping and resetting are paid per statement).
const LABELS_PER_INSERT: usize = 64;

/// What storing one label did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// The request id had no label.
    New,
    /// It replaced an earlier label.
    Replaced,
    /// New as far as the counters go, but it could not be told apart from an identical earlier
    /// row (same `received_at`, only after a clock step back): its hour is rescanned, so the
    /// metrics are right whichever it was.
    Unsure,
}

/// Stores the labels of `fresh` (sorted, distinct ids), `LABELS_PER_INSERT` per statement,
/// with `received_at` as their arrival time, which must be unique to this call
/// ([`arrival_time`]).
fn store_labels(
    tx: &Transaction<'_>,
    model_id: i64,
    fresh: &[&LabelEvent],
    received_at: i64,
) -> Result<Vec<Stored>, StoreError> {
    let mut texts = Vec::with_capacity(fresh.len() * 4);
    let mut ends = Vec::with_capacity(fresh.len());
    for l in fresh {
        serde_json::to_writer(&mut texts, &l.label).expect("an outcome serializes");
        ends.push(texts.len());
    }
    let texts = String::from_utf8(texts).expect("JSON is UTF-8");
    let text = |i: usize| &texts[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
    let times: Vec<i64> = fresh.iter().map(|l| l.timestamp.micros()).collect();
    let mut stored = vec![Stored::New; fresh.len()];
    let mut arrived = tx
        .prepare_cached("SELECT received_at FROM labels WHERE model_id = ?1 AND request_id = ?2")?;
    let mut replace = tx.prepare_cached(
        "UPDATE labels SET label = ?3, ts = ?4, received_at = ?5
         WHERE model_id = ?1 AND request_id = ?2",
    )?;
    for (g, group) in fresh.chunks(LABELS_PER_INSERT).enumerate() {
        let first = g * LABELS_PER_INSERT;
        // ?1 and ?2 (model and arrival time) are shared; each row binds id, label, time.
        let rows: Vec<String> = (0..group.len())
            .map(|k| format!("(?1, ?{}, ?{}, ?{}, ?2)", 3 * k + 3, 3 * k + 4, 3 * k + 5))
            .collect();
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO labels(model_id, request_id, label, ts, received_at) VALUES {}
             ON CONFLICT(model_id, request_id) DO NOTHING",
            rows.join(", ")
        ))?;
        let labels: Vec<&str> = (first..first + group.len()).map(text).collect();
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(2 + 3 * group.len());
        values.push(&model_id);
        values.push(&received_at);
        for (k, l) in group.iter().enumerate() {
            values.push(&l.request_id);
            values.push(&labels[k]);
            values.push(&times[first + k]);
        }
        let added = insert.execute(&values[..])?;
        if added == group.len() {
            continue;
        }
        // Some ids had a label: theirs carries an earlier arrival time.
        let mut replaced = 0;
        for (k, l) in group.iter().enumerate() {
            let at: i64 = arrived.query_row(params![model_id, l.request_id], |r| r.get(0))?;
            if at != received_at {
                stored[first + k] = Stored::Replaced;
                replaced += 1;
                replace.execute(params![
                    model_id,
                    l.request_id,
                    text(first + k),
                    times[first + k],
                    received_at
                ])?;
            }
        }
        if replaced != group.len() - added {
            for s in &mut stored[first..first + group.len()] {
                if *s == Stored::New {
                    *s = Stored::Unsure;
                }
            }
        }
    }
    Ok(stored)
}

/// The predictions of a label batch's request ids, found by the caller on a read connection
/// before the batch reaches the writer, so that the lookups run beside the writer's work on
/// other batches instead of inside it.
///
/// Valid for the writer as long as no request-index row was deleted since the caller's read
/// began (`deletions` unchanged): rows are never changed once written, only added (which can
/// only turn a missing prediction into a found one, so the writer looks up the missing ones
/// again) or deleted by retention (then the writer looks up everything itself).
#[derive(Debug)]
pub(super) struct Found {
    /// The writer's deletion count when the read began.
    deletions: u64,
    /// Per row of the (sorted) batch: its prediction, when found.
    pub(super) rows: Vec<Option<FoundRow>>,
    versions: Vec<String>,
    outcomes: Vec<u8>,
}

/// One prediction [`Found`] by the caller.
#[derive(Debug, Clone)]
pub(super) struct FoundRow {
    /// Event time.
    ts: i64,
    /// Index into `Found::versions`.
    version: usize,
    /// Range of `Found::outcomes`; `None` for a row stored without its outcome.
    outcome: Option<std::ops::Range<usize>>,
}

/// The order the writer stores a label batch in: by request id, then row.
fn label_order(row: &(usize, LabelEvent)) -> (&str, usize) {
    (row.1.request_id.as_str(), row.0)
}

/// Sorts a label batch into the writer's order, on the caller's thread.
fn sort_labels(batch: &mut LabelBatch) {
    batch
        .rows
        .sort_unstable_by(|a, b| label_order(a).cmp(&label_order(b)));
}

/// Finds the index rows of the predictions of `ids` (sorted, distinct) and calls `found` with
/// each id's position, event time, version and stored outcome; an id without a call has no
/// prediction yet.
///
/// The open bucket is searched for every id, then each closed bucket for the ids not found yet
/// that its filters let through.
fn find_predictions(
    conn: &Connection,
    filters: &Filters,
    model_id: i64,
    ids: &[&str],
    mut found: impl FnMut(usize, i64, &str, Option<&[u8]>),
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let buckets = Buckets::load(conn, model_id)?;
    let Some(open) = buckets.open else {
        // No prediction was ever stored.
        return Ok(());
    };
    let mut hit = vec![false; ids.len()];
    let all: Vec<usize> = (0..ids.len()).collect();
    walk_bucket(conn, model_id, open, ids, &all, |i, ts, v, o| {
        hit[i] = true;
        found(i, ts, v, o);
    })?;
    // The others, in the closed buckets whose filters may hold them.
    if hit.iter().all(|h| *h) || buckets.closed.is_empty() {
        return Ok(());
    }
    let hashes: Vec<u64> = ids.iter().map(|id| id_hash(id)).collect();
    buckets.search_closed(
        conn,
        filters,
        model_id,
        &hashes,
        &mut hit,
        |bucket, which, hit| {
            walk_bucket(conn, model_id, bucket, ids, which, |i, ts, v, o| {
                hit[i] = true;
                found(i, ts, v, o);
            })
        },
    )
}

/// Finds the rows of `ids[i]` for each `i` of `which` (ascending) in one bucket.
///
/// It walks the bucket in key order from an id not yet found rather than seeking every id:
/// request ids that sit close together in the index (time-ordered ids such as UUIDv7 or
/// sequence numbers, whose late labels come for neighbouring predictions) then cost one step
/// each instead of one B-tree descent each. A walk that meets more than a few rows of other
/// requests in a row stops, and the next id is sought afresh, so scattered (random) ids cost
/// at most that many extra steps each.
fn walk_bucket(
    conn: &Connection,
    model_id: i64,
    bucket: i64,
    ids: &[&str],
    which: &[usize],
    mut found: impl FnMut(usize, i64, &str, Option<&[u8]>),
) -> Result<(), StoreError> {
    const MAX_STRAY_ROWS: usize = 8;
    let mut walk = conn.prepare_cached(
        "SELECT request_id, ts, version, outcome FROM request_index
         WHERE model_id = ?1 AND bucket = ?2 AND request_id >= ?3 ORDER BY request_id",
    )?;
    let mut w = 0;
    while w < which.len() {
        let mut rows = walk.query(params![model_id, bucket, ids[which[w]]])?;
        let mut stray = 0;
        while w < which.len() {
            // Past the bucket's last row: no other id is in it.
            let Some(r) = rows.next()? else {
                return Ok(());
            };
            let id = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            // Ids before this row are not in the bucket: the walk has passed their place.
            while w < which.len() && ids[which[w]] < id {
                w += 1;
            }
            if w < which.len() && ids[which[w]] == id {
                let version = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
                let outcome = r
                    .get_ref(3)?
                    .as_blob_or_null()
                    .map_err(rusqlite::Error::from)?;
                found(which[w], r.get(1)?, version, outcome);
                w += 1;
                stray = 0;
            } else {
                stray += 1;
                if stray > MAX_STRAY_ROWS {
                    break;
                }
            }
        }
    }
    Ok(())
}
