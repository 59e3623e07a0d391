//! Retention: each model's setting, the cutoff behind which reads hide events until the
//! retention loop deletes them, and the deletion itself with the counters rebuilt from what
//! is left.
//!
//! Invariants:
//! - a chunk is deleted only once all its events are past the cutoff (reads filter the events
//!   of one that straddles it);
//! - a label is kept while its prediction is; an orphan label until it is itself past the cutoff;
//! - model-wide aggregates are kept; an hour's aggregate goes once the hour is wholly past the
//!   cutoff, and the hour straddling it is marked for a rescan;
//! - quarantined rows go after `QUARANTINE_RETENTION_DAYS`, whatever the model's setting.

use super::*;

/// The event time before which a model's predictions are past its retention (and are hidden
/// from reads until the retention loop deletes them).
pub(super) fn retention_cutoff(conn: &Connection, id: i64) -> Result<i64, StoreError> {
    let retention: Option<i64> = conn.query_row(
        "SELECT retention_days FROM models WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(retention.map_or(i64::MIN, |d| Timestamp::now().micros() - d * DAY_MICROS))
}

/// SQL that recomputes the joined and orphan label counters of the models matching `filter`
/// (a condition on `models`) with one join: after deletions, and when migrating.
pub(super) fn recount_labelled_sql(filter: &str) -> String {
    format!(
        "UPDATE models SET
            labelled = (SELECT count(*) FROM labels l WHERE l.model_id = models.id AND EXISTS (
                            SELECT 1 FROM request_index p WHERE p.model_id = l.model_id
                            AND p.bucket IN (SELECT bucket FROM request_buckets b
                                             WHERE b.model_id = l.model_id)
                            AND p.request_id = l.request_id))
         WHERE {filter};
         UPDATE models SET orphan_labels = labels - labelled WHERE {filter};"
    )
}

pub(super) fn set_retention(
    tx: &Transaction<'_>,
    model: &ModelName,
    days: Option<u32>,
) -> Result<(), StoreError> {
    let n = tx.execute(
        "UPDATE models SET retention_days = ?1 WHERE name = ?2",
        params![days, model.as_str()],
    )?;
    if n == 0 {
        return Err(StoreError::ModelNotFound(model.to_string()));
    }
    Ok(())
}

pub(super) fn apply_retention(
    tx: &Transaction<'_>,
    now: Timestamp,
) -> Result<RetentionReport, StoreError> {
    let mut report = RetentionReport::default();
    let day = DAY_MICROS;
    let models: Vec<(i64, i64)> = tx
        .prepare("SELECT id, retention_days FROM models WHERE retention_days IS NOT NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, days) in models {
        let cutoff = now.micros() - days * day;
        report.predictions_deleted += tx.execute(
            "DELETE FROM request_index WHERE model_id = ?1 AND ts < ?2",
            params![id, cutoff],
        )? as u64;
        report.predictions_deleted += tx.execute(
            "DELETE FROM shadow_index WHERE model_id = ?1 AND ts < ?2",
            params![id, cutoff],
        )? as u64;
        // Closed buckets left empty go, and with them a filter check per lookup.
        tx.execute(
            "DELETE FROM request_buckets WHERE model_id = ?1 AND closed = 1
             AND NOT EXISTS (SELECT 1 FROM request_index r
                             WHERE r.model_id = ?1 AND r.bucket = request_buckets.bucket)",
            [id],
        )?;
        tx.execute(
            "DELETE FROM request_bucket_groups WHERE model_id = ?1 AND NOT EXISTS (
                 SELECT 1 FROM request_buckets b WHERE b.model_id = ?1
                 AND b.bucket BETWEEN first_bucket AND last_bucket)",
            [id],
        )?;
        // A chunk goes once all its events are past the cutoff; the events of a chunk that
        // straddles it are filtered out when read (see `predictions`).
        tx.execute(
            "DELETE FROM segments WHERE model_id = ?1 AND max_ts < ?2",
            params![id, cutoff],
        )?;
        // A label is kept while its prediction is, and an orphan label (prediction not yet
        // arrived) is kept until it is itself older than the retention.
        let labels = tx.execute(
            "DELETE FROM labels WHERE model_id = ?1 AND ts < ?2 AND NOT EXISTS (
                 SELECT 1 FROM request_index p WHERE p.model_id = labels.model_id
                 AND p.bucket IN (SELECT bucket FROM request_buckets b WHERE b.model_id = ?1)
                 AND p.request_id = labels.request_id)",
            params![id, cutoff],
        )? as u64;
        report.labels_deleted += labels;
        tx.execute(
            "DELETE FROM kpis WHERE model_id = ?1 AND ts < ?2",
            params![id, cutoff],
        )?;
        // Aggregates of hours wholly past the cutoff go; the hour that straddles it is rebuilt.
        tx.execute(
            "DELETE FROM aggregates WHERE model_id = ?1 AND hour + ?3 <= ?2 AND hour <> ?4",
            params![id, cutoff, HOUR_MICROS, MODEL_WIDE.micros()],
        )?;
        for table in ["dirty_hours", "hour_deltas"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE model_id = ?1 AND hour + ?3 <= ?2"),
                params![id, cutoff, HOUR_MICROS],
            )?;
        }
        mark_dirty(
            tx,
            id,
            tx.prepare(
                "SELECT DISTINCT version FROM aggregates WHERE model_id = ?1 AND hour = ?2",
            )?
            .query_map(params![id, hour_of(cutoff)], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .map(|v| (v.as_str(), hour_of(cutoff))),
        )?;
        // The counters are rebuilt from what is left: deletions are rare, scans are fine here.
        tx.execute("DELETE FROM versions WHERE model_id = ?1", [id])?;
        tx.execute(
            "INSERT INTO versions(model_id, version, predictions, first_ts, last_ts)
             SELECT model_id, version, count(*), min(ts), max(ts) FROM request_index
             WHERE model_id = ?1 GROUP BY version",
            [id],
        )?;
        tx.execute("DELETE FROM shadow_versions WHERE model_id = ?1", [id])?;
        tx.execute(
            "INSERT INTO shadow_versions(model_id, version, predictions, first_ts, last_ts)
             SELECT model_id, version, count(*), min(ts), max(ts) FROM shadow_index
             WHERE model_id = ?1 GROUP BY version",
            [id],
        )?;
        tx.execute(
            "UPDATE models SET labels = (SELECT count(*) FROM labels WHERE model_id = ?1) WHERE id = ?1",
            [id],
        )?;
        tx.execute_batch(&recount_labelled_sql(&format!("id = {id}")))?;
    }
    report.rejected_deleted = tx.execute(
        "DELETE FROM rejected WHERE received_at < ?1",
        [now.micros() - QUARANTINE_RETENTION_DAYS * day],
    )? as u64;
    Ok(report)
}

const DAY_MICROS: i64 = 86_400_000_000;
