//! What changed since each hour's aggregates were written, and the aggregates themselves:
//! dirty-hour marks with their generations (`mark_dirty`, `mark_every_hour_sql`), hour deltas
//! (new predictions as their chunk, first labels with what their prediction said;
//! `record_delta`), the opaque aggregate rows (`put_aggregates`), and the answer to
//! `DerivedState::stale_hours` made from them (a deltas-only mark is a stale hour with its
//! deltas as additions, a full mark one to rescan). This is the embedded backend's own cache
//! protocol, nowhere else: ADR 018 says what the storage boundary asks of any backend instead.
//!
//! Invariants:
//! - an hour is marked in the same transaction as the predictions or labels that change it, so
//!   no crash leaves an aggregate stale without its mark;
//! - a write clears only the mark generations it read; a write naming a delta already gone is
//!   dropped whole, so a delta is never added twice;
//! - delta ids only grow and are never handed out again (a rescan deletes the deltas up to the
//!   id its snapshot saw);
//! - a change that cannot be added (a replaced label, an early label, retention, a rebuild)
//!   makes the mark a full one and drops the hour's deltas.

use super::*;

/// One event-time hour of one version whose predictions or labels changed since its aggregates
/// were last written. `generation` grows with every change, so that a refresh clears only the
/// marks it has seen (a change racing with the refresh leaves the hour dirty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirtyHour {
    /// Empty when the predictions carry no version.
    pub(crate) version: String,
    /// Start of the hour (UTC-aligned).
    pub(crate) hour: Timestamp,
    pub(crate) generation: i64,
    /// Every change since the hour's aggregates were written (or since it had none) is new
    /// predictions or first labels for its predictions, each recorded in an [`HourDelta`]: the
    /// aggregates can be brought up to date by adding those, without a rescan. False once
    /// anything else changed the hour (a replaced label, a label that arrived before its
    /// prediction, retention); its deltas are then dropped.
    pub(crate) deltas_only: bool,
}

/// What one ingest added to one hour, written in the same transaction as the rows and the
/// hour's mark: either the hour's new predictions in one chunk (`chunk`) or first labels of its
/// predictions (`data`, in `compact.rs` form). Handed to the engine as an [`Addition`] of a
/// deltas-only hour; deleted by the write that adds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HourDelta {
    pub(crate) id: i64,
    pub(crate) version: String,
    pub(crate) hour: Timestamp,
    /// The chunk holding the hour's new predictions, for a delta of predictions.
    pub(crate) chunk: Option<i64>,
    /// The labels in their stored form; for a delta of predictions, the caller's fold of them,
    /// or empty.
    pub(crate) data: Vec<u8>,
}

impl HourDelta {
    /// The first labels of a label delta, as the engine reads them from its [`Addition`].
    #[cfg(test)]
    pub(crate) fn labels(&self) -> Result<Vec<crate::NewLabel>, StoreError> {
        self.clone().addition().labels()
    }

    pub(crate) fn addition(self) -> Addition {
        Addition {
            id: self.id,
            predictions: self.chunk.map(PredictionsRef),
            data: self.data,
        }
    }
}

/// The embedded store's marks and deltas of one model, read by
/// [`SqliteStore::pending_changes`]: an inspection for tests and diagnostics (the engine reads
/// them as [`crate::StaleHour`]s through `DerivedState::stale_hours`).
#[derive(Debug, Clone, Default)]
pub struct PendingChanges {
    /// Dirty hours, oldest first.
    pub marks: Vec<PendingMark>,
    /// Hour deltas not yet applied, oldest first (deltas of a full mark included: they raced
    /// with its rescan).
    pub deltas: Vec<PendingDelta>,
}

/// A dirty-hour mark (see [`PendingChanges`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMark {
    pub version: String,
    pub hour: Timestamp,
    /// The hour's changes can all be added from its deltas; false: it is rescanned.
    pub deltas_only: bool,
}

/// An hour delta (see [`PendingChanges`]); its id is left out: a job records its hours in no
/// particular order.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelta {
    pub version: String,
    pub hour: Timestamp,
    /// The chunk holding the hour's new predictions, for a delta of predictions.
    pub chunk: Option<i64>,
    /// First labels in stored form, or the caller's fold of the new predictions.
    pub data: Vec<u8>,
}

/// SQL that marks dirty every hour holding predictions of the rows of `request_index` matching
/// `filter` (`1` or a condition on `model_id`): what a rebuild, and a migration, start from.
/// The marks are full ones, so the label deltas of those models are dropped.
pub(super) fn mark_every_hour_sql(filter: &str) -> String {
    format!(
        "INSERT INTO dirty_hours(model_id, version, hour, generation, deltas_only, full_at)
         SELECT model_id, version, ts - (((ts % {HOUR_MICROS}) + {HOUR_MICROS}) % {HOUR_MICROS}), 1, 0, 1
         FROM request_index WHERE {filter} GROUP BY 1, 2, 3
         ON CONFLICT(model_id, version, hour) DO UPDATE SET
            generation = generation + 1, deltas_only = 0, full_at = generation + 1;
         DELETE FROM hour_deltas WHERE {filter};"
    )
}

/// Marks hours dirty, each with a new generation, for a rescan: what changed is more than new
/// labels, so the hours' label deltas are dropped (the rescan reads those labels too).
pub(super) fn mark_dirty<'a>(
    tx: &Transaction<'_>,
    model_id: i64,
    hours: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<(), StoreError> {
    let mut mark = tx.prepare_cached(
        "INSERT INTO dirty_hours(model_id, version, hour, generation, deltas_only, full_at)
         VALUES (?1, ?2, ?3, 1, 0, 1)
         ON CONFLICT(model_id, version, hour) DO UPDATE SET
            generation = generation + 1, deltas_only = 0, full_at = generation + 1
         RETURNING generation",
    )?;
    let mut drop_deltas = tx.prepare_cached(
        "DELETE FROM hour_deltas WHERE model_id = ?1 AND version = ?2 AND hour = ?3",
    )?;
    for (version, hour) in hours {
        let generation: i64 = mark.query_row(params![model_id, version, hour], |r| r.get(0))?;
        // A new mark has no deltas to drop.
        if generation > 1 {
            drop_deltas.execute(params![model_id, version, hour])?;
        }
    }
    Ok(())
}

/// What one delta adds to its hour.
#[derive(Clone, Copy)]
pub(super) enum Delta<'a> {
    /// First labels of the hour's stored predictions, in `compact.rs` form.
    Labels(&'a [u8]),
    /// The hour's new predictions stored in this chunk, with the caller's fold of them when
    /// it folded exactly those.
    Predictions { chunk: i64, fold: &'a [u8] },
}

/// Records a delta of one hour and marks the hour.
pub(super) fn record_delta(
    tx: &Transaction<'_>,
    model_id: i64,
    version: &str,
    hour: i64,
    delta: Delta<'_>,
) -> Result<(), StoreError> {
    // Recorded even while the hour waits for a rescan: if the change races with that rescan,
    // the rescan leaves it to be added afterwards (see `put_aggregates`).
    let (data, chunk) = match delta {
        Delta::Labels(data) => (data, None),
        Delta::Predictions { chunk, fold } => (fold, Some(chunk)),
    };
    tx.prepare_cached(
        "INSERT INTO hour_deltas(model_id, version, hour, data, segment_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![model_id, version, hour, data, chunk])?;
    tx.prepare_cached(
        "INSERT INTO dirty_hours(model_id, version, hour, generation, deltas_only)
         VALUES (?1, ?2, ?3, 1, 1)
         ON CONFLICT(model_id, version, hour) DO UPDATE SET generation = generation + 1",
    )?
    .execute(params![model_id, version, hour])?;
    Ok(())
}

pub(super) fn put_aggregates(
    tx: &Transaction<'_>,
    model: &ModelName,
    writes: &[AggregateWrite],
) -> Result<(), StoreError> {
    let id = model_id(tx, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
    // A delta that is gone was applied by another refresh, whose result is newer than this
    // one's: writing would add it twice (or lose a later one), so nothing is written.
    {
        let mut applied = tx.prepare_cached("DELETE FROM hour_deltas WHERE id = ?1")?;
        for write in writes {
            for r in &write.refreshed {
                let How::Added(deltas) = &r.how else {
                    continue;
                };
                for delta in deltas {
                    if applied.execute([delta])? == 0 {
                        tracing::debug!(model = %model, delta, "hour delta already applied: write skipped");
                        return Ok(());
                    }
                }
            }
        }
    }
    let mut put = tx.prepare_cached(
        "INSERT INTO aggregates(model_id, kind, hour, version, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(model_id, kind, hour, version) DO UPDATE SET data = excluded.data",
    )?;
    let mut delete = tx.prepare_cached(
        "DELETE FROM aggregates WHERE model_id = ?1 AND kind = ?2 AND hour = ?3 AND version = ?4",
    )?;
    let mut clear = tx.prepare_cached(
        "DELETE FROM dirty_hours
         WHERE model_id = ?1 AND version = ?2 AND hour = ?3 AND generation = ?4",
    )?;
    let mut seen = tx.prepare_cached(
        "DELETE FROM hour_deltas WHERE model_id = ?1 AND version = ?2 AND hour = ?3 AND id <= ?4",
    )?;
    let mut raced = tx.prepare_cached(
        "UPDATE dirty_hours SET deltas_only = 1
         WHERE model_id = ?1 AND version = ?2 AND hour = ?3 AND full_at <= ?4",
    )?;
    for write in writes {
        for a in &write.put {
            put.execute(params![id, write.kind, a.hour.micros(), a.version, a.data])?;
        }
        for (version, hour) in &write.delete {
            delete.execute(params![id, write.kind, hour.micros(), version])?;
        }
        for r in &write.refreshed {
            let (hour, generation) = (r.hour.micros(), r.seen.get());
            // A rescan deletes the hour's deltas its snapshot held (it counted them).
            let rescanned = match r.how {
                How::Rescanned(through) => {
                    seen.execute(params![id, r.version, hour, through.get()])?;
                    true
                }
                How::Added(_) => false,
            };
            let cleared = clear.execute(params![id, r.version, hour, generation])?;
            // Changes raced with the rescan. Each left a delta the rescan did not read, unless
            // it needed a rescan itself (full_at moved past the generation the rescan read).
            if cleared == 0 && rescanned {
                raced.execute(params![id, r.version, hour, generation])?;
            }
        }
    }
    Ok(())
}

pub(super) fn invalidate_aggregates(
    tx: &Transaction<'_>,
    model: &ModelName,
) -> Result<(), StoreError> {
    let id = model_id(tx, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
    tx.execute_batch(&mark_every_hour_sql(&format!("model_id = {id}")))?;
    Ok(())
}

/// The model's dirty marks, oldest first.
fn dirty_hours(conn: &Connection, model_id: i64) -> Result<Vec<DirtyHour>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, hour, generation, deltas_only FROM dirty_hours
         WHERE model_id = ?1 ORDER BY hour, version",
    )?;
    let rows = stmt.query_map([model_id], |r| {
        Ok(DirtyHour {
            version: r.get(0)?,
            hour: Timestamp(r.get(1)?),
            generation: r.get(2)?,
            deltas_only: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The model's hour deltas not yet applied, oldest first.
fn hour_deltas(conn: &Connection, model_id: i64) -> Result<Vec<HourDelta>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, version, hour, data, segment_id FROM hour_deltas
         WHERE model_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([model_id])?;
    let mut deltas = Vec::new();
    while let Some(r) = rows.next()? {
        deltas.push(HourDelta {
            id: r.get(0)?,
            version: r.get(1)?,
            hour: Timestamp(r.get(2)?),
            data: r.get(3)?,
            chunk: r.get(4)?,
        });
    }
    Ok(deltas)
}

impl SqliteStore {
    pub(super) fn scan_chunks(
        &self,
        model: &ModelName,
        chunks: &[i64],
        f: &mut dyn FnMut(i64, &PredictionEvent),
    ) -> Result<(), StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let cutoff = retention_cutoff(conn, id)?;
            let mut read =
                conn.prepare_cached("SELECT data FROM segments WHERE model_id = ?1 AND id = ?2")?;
            for &chunk in chunks {
                crate::cancel::check()?;
                let mut rows = read.query(params![id, chunk])?;
                let Some(r) = rows.next()? else {
                    continue;
                };
                let text = chunk_text(chunk, r.get_ref(0)?)?;
                for line in text.lines() {
                    let event = decode_stored(line).map_err(|e| corrupt_chunk(chunk, e))?;
                    // A chunk straddling the retention cutoff keeps its expired events. Deltas
                    // name chunks of served predictions only.
                    if event.timestamp.micros() >= cutoff && event.role.is_served() {
                        f(chunk, &event);
                    }
                }
            }
            Ok(())
        })
    }

    pub(super) fn models_with_dirty_hours(&self) -> Result<Vec<ModelName>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name FROM models m
                 WHERE EXISTS (SELECT 1 FROM dirty_hours d WHERE d.model_id = m.id)
                 ORDER BY name",
            )?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            names
                .map(|n| {
                    let n = n?;
                    ModelName::new(&n).map_err(|e| StoreError::Corrupt {
                        what: "model name",
                        detail: format!("{n}: {e}"),
                    })
                })
                .collect()
        })
    }

    /// `DerivedState::stale_hours`: the dirty marks, each deltas-only one with its deltas
    /// (read in the same snapshot) when `with_additions`; a full mark is an hour to rescan.
    pub(super) fn stale_hours(
        &self,
        model: &ModelName,
        with_additions: bool,
    ) -> Result<Vec<StaleHour>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let snapshot = conn.unchecked_transaction()?;
            let marks = dirty_hours(conn, id)?;
            let mut deltas: HashMap<(String, Timestamp), Vec<Addition>> = HashMap::new();
            if with_additions && marks.iter().any(|d| d.deltas_only) {
                for d in hour_deltas(conn, id)? {
                    deltas
                        .entry((d.version.clone(), d.hour))
                        .or_default()
                        .push(d.addition());
                }
            }
            snapshot.commit()?;
            Ok(marks
                .into_iter()
                .map(|d| {
                    let seen = Seen::new(d.generation);
                    if with_additions && d.deltas_only {
                        let additions = deltas.remove(&(d.version.clone(), d.hour));
                        StaleHour::with_additions(
                            d.version,
                            d.hour,
                            seen,
                            additions.unwrap_or_default(),
                        )
                    } else {
                        StaleHour::rescan(d.version, d.hour, seen)
                    }
                })
                .collect())
        })
    }

    /// The marks and deltas of `model`, for tests and diagnostics (see [`PendingChanges`]).
    pub fn pending_changes(&self, model: &ModelName) -> Result<PendingChanges, StoreError> {
        let (marks, deltas) = self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok((Vec::new(), Vec::new()));
            };
            Ok((dirty_hours(conn, id)?, hour_deltas(conn, id)?))
        })?;
        Ok(PendingChanges {
            marks: marks
                .into_iter()
                .map(|d| PendingMark {
                    version: d.version,
                    hour: d.hour,
                    deltas_only: d.deltas_only,
                })
                .collect(),
            deltas: deltas
                .into_iter()
                .map(|d| PendingDelta {
                    version: d.version,
                    hour: d.hour,
                    chunk: d.chunk,
                    data: d.data,
                })
                .collect(),
        })
    }

    #[cfg(test)]
    pub(super) fn dirty_hours(&self, model: &ModelName) -> Result<Vec<DirtyHour>, StoreError> {
        self.read(|conn| match model_id(conn, model)? {
            Some(id) => dirty_hours(conn, id),
            None => Ok(Vec::new()),
        })
    }

    #[cfg(test)]
    pub(super) fn hour_deltas(&self, model: &ModelName) -> Result<Vec<HourDelta>, StoreError> {
        self.read(|conn| match model_id(conn, model)? {
            Some(id) => hour_deltas(conn, id),
            None => Ok(Vec::new()),
        })
    }

    pub(super) fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<StoredAggregate>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT version, hour, data FROM aggregates
                 WHERE model_id = ?1 AND kind = ?2 AND hour >= ?3 AND hour < ?4
                   AND (?5 IS NULL OR version = ?5)
                 ORDER BY hour, version",
            )?;
            let from = range.from.map_or(i64::MIN, |t| t.micros());
            let to = range.to.map_or(i64::MAX, |t| t.micros());
            let rows = stmt.query_map(params![id, kind, from, to, range.version], |r| {
                Ok(StoredAggregate {
                    version: r.get(0)?,
                    hour: Timestamp(r.get(1)?),
                    data: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests;
