//! What changed since each hour's aggregates were written, and the aggregates themselves:
//! dirty-hour marks with their generations (`mark_dirty`, `mark_every_hour_sql`), hour deltas
//! (new predictions as their chunk, first labels with what their prediction said;
//! `record_delta`), the opaque aggregate rows (`put_aggregates`), and the reads a refresh
//! makes of them. This is the embedded backend's own cache protocol; ADR 018 says what the
//! storage boundary asks of any backend instead.
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
            for delta in &write.applied {
                if applied.execute([delta])? == 0 {
                    tracing::debug!(model = %model, delta, "label delta already applied: write skipped");
                    return Ok(());
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
        for d in &write.clear {
            let hour = d.hour.micros();
            if let Some(through) = write.rescanned_through {
                seen.execute(params![id, d.version, hour, through])?;
            }
            let cleared = clear.execute(params![id, d.version, hour, d.generation])?;
            // Changes raced with the rescan. Each left a delta the rescan did not read, unless
            // it needed a rescan itself (full_at moved past the generation the rescan read).
            if cleared == 0 && write.rescanned_through.is_some() {
                raced.execute(params![id, d.version, hour, d.generation])?;
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

    pub(super) fn dirty_hours(&self, model: &ModelName) -> Result<Vec<DirtyHour>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT version, hour, generation, deltas_only FROM dirty_hours
                 WHERE model_id = ?1 ORDER BY hour, version",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(DirtyHour {
                    version: r.get(0)?,
                    hour: Timestamp(r.get(1)?),
                    generation: r.get(2)?,
                    deltas_only: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    pub(super) fn hour_deltas(&self, model: &ModelName) -> Result<Vec<HourDelta>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT id, version, hour, data, segment_id FROM hour_deltas
                 WHERE model_id = ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([id])?;
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
