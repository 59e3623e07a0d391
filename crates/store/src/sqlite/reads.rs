//! Reads: the pool of read-only connections, the event-time scan that hands each prediction
//! its label (`scan`), window counts, and the pages of stored predictions and labels.
//!
//! Invariants:
//! - reads never block the writer, and a scan reads one snapshot, returning the last hour
//!   delta id in it (see `Store::scan_predictions`);
//! - events past the model's retention are never returned, even before they are deleted;
//! - a scan looks each event's label up by request id: every stored event is in exactly one
//!   chunk (`chunks.rs`), so no label is handed out twice.

use super::*;

const READ_POOL_SIZE: usize = 4;

impl SqliteStore {
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    self.dir.join(DB_FILE),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < READ_POOL_SIZE {
            pool.push(conn);
        }
        out
    }

    /// [`Store::scan_predictions`], and with `shadows` [`Store::scan_with_shadows`].
    pub(super) fn scan(
        &self,
        model: &ModelName,
        range: &ScanRange,
        shadows: bool,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<i64, StoreError> {
        self.read(|conn| {
            // One snapshot for the deltas' watermark and every chunk and label read. Delta
            // ids are AUTOINCREMENT (schema 7): every delta up to the watermark is in it.
            let snapshot = conn.unchecked_transaction()?;
            let last_delta: i64 =
                conn.query_row("SELECT coalesce(max(id), 0) FROM hour_deltas", [], |r| {
                    r.get(0)
                })?;
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let cutoff = retention_cutoff(conn, id)?;
            let from = range.from.map_or(i64::MIN, |t| t.micros()).max(cutoff);
            let to = range.to.map_or(i64::MAX, |t| t.micros());
            // Chunks whose event-time span overlaps the range; events are filtered one by one.
            let mut chunks = conn.prepare_cached(
                "SELECT id, data FROM segments
                 WHERE model_id = ?1 AND max_ts >= ?2 AND min_ts < ?3 ORDER BY id",
            )?;
            // Labels are looked up by the events' request ids (each id's event is in one
            // chunk only), and not at all while the model has no label joined yet.
            // `labelled` counts labels joined to served predictions; a shadow prediction may
            // have one while no served prediction has, so such a scan asks for any label.
            let counter = if shadows { "labels" } else { "labelled" };
            let labelled: i64 = conn.query_row(
                &format!("SELECT {counter} FROM models WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )?;
            let mut label_of = conn.prepare_cached(
                "SELECT label, ts FROM labels WHERE model_id = ?1 AND request_id = ?2",
            )?;
            let mut events: Vec<PredictionEvent> = Vec::with_capacity(SCAN_LABEL_BATCH);
            let mut labels: Vec<Option<LabelEvent>> = Vec::with_capacity(SCAN_LABEL_BATCH);
            // Hands `f` the events gathered, each with its label.
            let mut flush = |events: &mut Vec<PredictionEvent>| -> Result<(), StoreError> {
                labels.clear();
                labels.resize(events.len(), None);
                if labelled > 0 {
                    // In id order, so that consecutive lookups walk the labels' B-tree forward.
                    let mut by_id: Vec<usize> = (0..events.len()).collect();
                    by_id
                        .sort_unstable_by(|&a, &b| events[a].request_id.cmp(&events[b].request_id));
                    for i in by_id {
                        let request_id = &events[i].request_id;
                        let mut found = label_of.query(params![id, request_id])?;
                        if let Some(l) = found.next()? {
                            let label = outcome_from("label", Some(l.get(0)?))?.expect("some");
                            labels[i] = Some(LabelEvent {
                                request_id: request_id.clone(),
                                label,
                                timestamp: Timestamp(l.get(1)?),
                            });
                        }
                    }
                }
                for (event, label) in events.iter().zip(&labels) {
                    f(event, label.as_ref());
                }
                events.clear();
                Ok(())
            };
            let mut rows = chunks.query(params![id, from, to])?;
            while let Some(r) = rows.next()? {
                crate::cancel::check()?;
                let chunk: i64 = r.get(0)?;
                let text = chunk_text(chunk, r.get_ref(1)?)?;
                for line in text.lines() {
                    let event = decode_stored(line).map_err(|e| corrupt_chunk(chunk, e))?;
                    let ts = event.timestamp.micros();
                    if ts < from || ts >= to || !(shadows || event.role.is_served()) {
                        continue;
                    }
                    if let Some(v) = &range.version {
                        if event.model_version.as_deref().unwrap_or("") != v {
                            continue;
                        }
                    }
                    events.push(event);
                    if events.len() == SCAN_LABEL_BATCH {
                        flush(&mut events)?;
                    }
                }
            }
            flush(&mut events)?;
            // The statements finish before the snapshot ends (a pooled connection must not
            // stay inside a read transaction).
            drop(rows);
            drop((chunks, label_of));
            snapshot.commit()?;
            Ok(last_delta)
        })
    }

    pub(super) fn window_counts(
        &self,
        model: &ModelName,
        query: &WindowQuery,
    ) -> Result<Vec<WindowCounts>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT p.ts, l.ts, p.error FROM request_index p
                 LEFT JOIN labels l ON l.model_id = p.model_id AND l.request_id = p.request_id
                 WHERE p.model_id = ?1 AND p.ts >= ?2 AND p.ts < ?3 AND (?4 IS NULL OR p.version = ?4)",
            )?;
            let from = query.from.map_or(i64::MIN, |t| t.micros());
            let to = query.to.map_or(i64::MAX, |t| t.micros());
            let mut tally = WindowTally::new(query.window);
            let mut rows = stmt.query(params![id, from, to, query.version])?;
            while let Some(r) = rows.next()? {
                tally.add(r.get(0)?, r.get(2)?, r.get(1)?);
            }
            Ok(tally.finish())
        })
    }

    pub(super) fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<PredictionEvent>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let cutoff = retention_cutoff(conn, id)?;
            let (after_chunk, after_offset) = prediction_cursor(after)?;
            let mut stmt = conn.prepare_cached(
                "SELECT id, data FROM segments WHERE model_id = ?1 AND id >= ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![id, after_chunk])?;
            let mut items = Vec::new();
            while let Some(r) = rows.next()? {
                let chunk: i64 = r.get(0)?;
                let text = chunk_text(chunk, r.get_ref(1)?)?;
                for (offset, line) in text.lines().enumerate() {
                    let offset = offset as i64;
                    if chunk == after_chunk && offset <= after_offset {
                        continue;
                    }
                    let event = decode_stored(line)
                        .map_err(|e| corrupt_chunk(chunk, format!("row {offset}: {e}")))?;
                    if event.timestamp.micros() < cutoff {
                        continue;
                    }
                    items.push(event);
                    if items.len() == limit {
                        let next = Some(Cursor::new(format!("p{chunk}.{offset}")));
                        return Ok(Page { items, next });
                    }
                }
            }
            Ok(Page { items, next: None })
        })
    }

    pub(super) fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LabelEvent>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT rowid, request_id, label, ts FROM labels
                 WHERE model_id = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
            )?;
            let after = label_cursor(after)?;
            let mut rows = stmt.query(params![id, after, limit as i64])?;
            let mut items = Vec::new();
            let mut last = None;
            while let Some(r) = rows.next()? {
                last = Some(r.get::<_, i64>(0)?);
                items.push(LabelEvent {
                    request_id: r.get(1)?,
                    label: outcome_from("label", Some(r.get(2)?))?.expect("some"),
                    timestamp: Timestamp(r.get(3)?),
                });
            }
            let next = if items.len() == limit { last } else { None };
            let next = next.map(|rowid| Cursor::new(format!("l{rowid}")));
            Ok(Page { items, next })
        })
    }
}

/// Events a scan gathers before looking up their labels, in id order. The lookups' locality
/// is what counts: on the first scan of 1M labelled predictions (chunks of 65,536 events),
/// batches of 1,024 took 4.0 s and of 4,096 3.6-3.9 s, against 2.7-2.8 s for 16,384 and for
/// whole chunks, and 2.4-2.6 s for the join through the index by chunk that this replaces
/// (ADR 007). 16,384 decoded events are about 26 MB.
pub(super) const SCAN_LABEL_BATCH: usize = 16384;

/// The cursors of earlier releases were numbers: after a prediction `chunk id << 20 | row
/// offset` (a chunk holds at most CHUNK_MAX_ROWS < 2^20 events), after a label its rowid.
const CURSOR_OFFSET_BITS: i64 = 20;

// This store's page cursors (opaque to everyone else, ADR 018) name where the page ended:
// `p<chunk id>.<row offset>` after a prediction, `l<rowid>` after a label. A bare number is a
// cursor an earlier release handed out, read as it was then, so that a client paging across
// an upgrade reads on.

/// The chunk and the row offset in it that a predictions page starts after (`(0, -1)`: the
/// first page).
fn prediction_cursor(after: Option<&Cursor>) -> Result<(i64, i64), StoreError> {
    let Some(cursor) = after else {
        return Ok((0, -1));
    };
    let token = cursor.as_str();
    if let Some(n) = decimal(token) {
        return Ok((n >> CURSOR_OFFSET_BITS, n & ((1 << CURSOR_OFFSET_BITS) - 1)));
    }
    (token.strip_prefix('p'))
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(chunk, offset)| Some((decimal(chunk)?, decimal(offset)?)))
        .ok_or_else(|| invalid_cursor(cursor))
}

/// The rowid a labels page starts after (0: the first page).
fn label_cursor(after: Option<&Cursor>) -> Result<i64, StoreError> {
    let Some(cursor) = after else {
        return Ok(0);
    };
    let token = cursor.as_str();
    (decimal(token))
        .or_else(|| token.strip_prefix('l').and_then(decimal))
        .ok_or_else(|| invalid_cursor(cursor))
}

/// A non-negative decimal number that fits an i64, digits only.
fn decimal(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn invalid_cursor(cursor: &Cursor) -> StoreError {
    StoreError::InvalidCursor {
        cursor: cursor.as_str().chars().take(64).collect(),
    }
}
