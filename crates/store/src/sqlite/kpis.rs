//! Business KPI points: stored on an existing model, keyed (model, name, timestamp), read by
//! name then time.
//!
//! Invariant: a point with the name and timestamp of a stored one replaces it (counted as
//! replaced); KPIs never mark an hour (no aggregate is built from them).

use super::*;

pub(super) fn ingest_kpis(
    tx: &Transaction<'_>,
    model: &ModelName,
    rows: &[(usize, KpiEvent)],
    rejected: &[Quarantined],
) -> Result<IngestOutcome, StoreError> {
    let now = Timestamp::now();
    let id = model_id(tx, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
    let mut out = IngestOutcome::default();
    {
        let mut exists =
            tx.prepare_cached("SELECT 1 FROM kpis WHERE model_id = ?1 AND name = ?2 AND ts = ?3")?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO kpis(model_id, name, ts, value, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(model_id, name, ts) DO UPDATE SET
                value = excluded.value, received_at = excluded.received_at",
        )?;
        for (_, k) in rows {
            let existed = exists.exists(params![id, k.name, k.timestamp.micros()])?;
            upsert.execute(params![
                id,
                k.name,
                k.timestamp.micros(),
                k.value,
                now.micros()
            ])?;
            out.accepted += 1;
            out.replaced += usize::from(existed);
        }
    }
    out.rejected = quarantine_all(tx, model, "kpis", rejected, vec![], now)?;
    Ok(out)
}

impl SqliteStore {
    pub(super) fn kpis(
        &self,
        model: &ModelName,
        name: Option<&str>,
        range: &ScanRange,
    ) -> Result<Vec<KpiEvent>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT name, ts, value FROM kpis
                 WHERE model_id = ?1 AND (?2 IS NULL OR name = ?2) AND ts >= ?3 AND ts < ?4
                 ORDER BY name, ts",
            )?;
            let from = range.from.map_or(i64::MIN, |t| t.micros());
            let to = range.to.map_or(i64::MAX, |t| t.micros());
            let rows = stmt.query_map(params![id, name, from, to], |r| {
                Ok(KpiEvent {
                    name: r.get(0)?,
                    timestamp: Timestamp(r.get(1)?),
                    value: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
