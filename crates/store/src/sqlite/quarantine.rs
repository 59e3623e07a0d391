//! The quarantine: every row not stored, with the rejection (index, field, reason) and its
//! text (cut at `MAX_QUARANTINE_ROW_BYTES`), written in the job's transaction; read back newest
//! first.
//!
//! Invariants: a row refused before the writer and a row the writer refuses are both in the
//! job's answer, in row order, and both are kept; retention deletes quarantined rows after
//! `QUARANTINE_RETENTION_DAYS` whatever the model's setting (`retention.rs`).

use super::*;
use crate::rows::quarantine_text;

fn quarantine(
    tx: &Transaction<'_>,
    model: &str,
    kind: &str,
    rows: &[Quarantined],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO rejected(model, kind, received_at, row_index, request_id, field, reason, row)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for q in rows {
        let r = &q.rejection;
        let row = quarantine_text(&q.row);
        stmt.execute(params![
            model,
            kind,
            now.micros(),
            r.index as i64,
            r.request_id,
            r.field,
            r.reason,
            row
        ])?;
    }
    Ok(())
}

/// Quarantines a job's rejected rows, those rejected before the job reached the writer
/// (`earlier`, left to the job so that it can run again) and the writer's own, and returns the
/// rejections of both, in row order, for the job's answer.
pub(super) fn quarantine_all(
    tx: &Transaction<'_>,
    model: &ModelName,
    kind: &str,
    earlier: &[Quarantined],
    own: Vec<Quarantined>,
    now: Timestamp,
) -> Result<Vec<Rejection>, StoreError> {
    quarantine(tx, model.as_str(), kind, earlier, now)?;
    quarantine(tx, model.as_str(), kind, &own, now)?;
    let mut rejected: Vec<Rejection> = (earlier.iter().map(|q| q.rejection.clone()))
        .chain(own.into_iter().map(|q| q.rejection))
        .collect();
    rejected.sort_by_key(|r| r.index);
    Ok(rejected)
}

impl SqliteStore {
    pub(super) fn rejected(
        &self,
        model: &ModelName,
        limit: usize,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT received_at, kind, row_index, request_id, field, reason, row FROM rejected
                 WHERE model = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![model.as_str(), limit as i64], |r| {
                    Ok(RejectedRow {
                        received_at: Timestamp(r.get(0)?),
                        kind: r.get(1)?,
                        index: r.get::<_, i64>(2)? as usize,
                        request_id: r.get(3)?,
                        field: r.get(4)?,
                        reason: r.get(5)?,
                        row: r.get(6)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }
}
