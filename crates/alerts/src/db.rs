//! The alert state: rules made over the API, alert states and their history, silences,
//! heartbeats, arrival times and the notification outbox. [`AlertStore`] is what the service
//! needs of it; [`SqliteAlertStore`] is the embedded one, the alerts' own SQLite file
//! (`<data_dir>/alerts.sqlite`), separate from the event store so that its schema and writer
//! stay the store's alone. The ClickHouse backend has its own
//! (`modelwatch_store_clickhouse::ClickHouseAlertStore`), shared by every `serve` process on
//! one cluster (ADR 021). `crate::conformance` checks what every implementation must do.

use crate::lifecycle::{Alert, Transition};
use crate::notify::Notification;
use crate::rule::RuleSpec;
use modelwatch_core::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("alerts database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("alerts database: stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A shared alert store (ClickHouse) failed: the error names the server and the query.
    #[error("alert state: {0}")]
    Store(#[from] modelwatch_store::StoreError),
}

impl modelwatch_core::ServiceError for DbError {
    /// A full disk is told apart (the same request can succeed once space is freed); every
    /// other failure of the alerts database is the service's.
    fn code(&self) -> modelwatch_core::ErrorCode {
        match self {
            DbError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                modelwatch_core::ErrorCode::StorageFull
            }
            DbError::Store(e) => e.code(),
            _ => modelwatch_core::ErrorCode::Internal,
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rules (
    model TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (model, name));
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY, model TEXT NOT NULL, rule TEXT NOT NULL, state TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, model TEXT NOT NULL, rule TEXT NOT NULL,
    transition TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alert_history_model ON alert_history (model, id);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY, model TEXT NOT NULL, rule TEXT, ends_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL, comment TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeats (
    id INTEGER PRIMARY KEY, model TEXT NOT NULL, job TEXT NOT NULL, status TEXT NOT NULL,
    ts INTEGER NOT NULL, received_at INTEGER NOT NULL, message TEXT);
CREATE INDEX IF NOT EXISTS heartbeats_job ON heartbeats (model, job, ts);
CREATE TABLE IF NOT EXISTS arrivals (
    model TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (model, kind));
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, notifier TEXT NOT NULL,
    status TEXT NOT NULL, payload TEXT NOT NULL, created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,
    last_error TEXT, delivered_at INTEGER);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at, next_attempt_at);
";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub model: String,
    /// None: every rule of the model.
    pub rule: Option<String>,
    pub ends_at: Timestamp,
    pub created_at: Timestamp,
    pub comment: String,
}

impl Silence {
    pub fn matches(&self, model: &str, rule: &str, now: Timestamp) -> bool {
        now < self.ends_at && self.model == model && self.rule.as_deref().is_none_or(|r| r == rule)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    pub job: String,
    /// `success` or `failed`.
    pub status: String,
    pub timestamp: Timestamp,
    pub received_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A job's heartbeats: (job, runs, failed runs, timestamp of the latest success).
pub type JobRuns = (String, u64, u64, Option<Timestamp>);

/// One history row of `GET /v1/alerts/history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub transition: String,
    pub at: Timestamp,
    pub alert: Alert,
}

/// One outbox row, as `GET /v1/notifications` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub fingerprint: String,
    pub notifier: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub created_at: Timestamp,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    #[serde(skip)]
    pub notification: Option<Notification>,
}

/// What the alert service reads and writes of its state. Object safe: the service holds an
/// `Arc<dyn AlertStore>`. Every method blocks. What each must do is checked by
/// `crate::conformance::ALL`, on every implementation.
pub trait AlertStore: Send + Sync {
    /// Inserts a rule; false when the model already has a rule of that name.
    fn insert_rule(&self, model: &str, spec: &RuleSpec, now: Timestamp) -> Result<bool, DbError>;
    /// Deletes a rule; false when there is none of that name.
    fn delete_rule(&self, model: &str, name: &str) -> Result<bool, DbError>;
    /// Every stored rule as (model, spec), by model and name.
    fn rules(&self) -> Result<Vec<(String, RuleSpec)>, DbError>;

    /// Every alert, by model and rule.
    fn alerts(&self) -> Result<Vec<Alert>, DbError>;
    /// Writes one evaluation's effect: the alert (or its removal), the history row of the
    /// transition, and the notifications it queued (`(notifier, notification)`).
    fn apply(
        &self,
        fingerprint: &str,
        alert: Option<&Alert>,
        transition: Option<(Transition, &Alert)>,
        notify: &[(String, Notification)],
        now: Timestamp,
    ) -> Result<(), DbError>;
    fn alert(&self, fingerprint: &str) -> Result<Option<Alert>, DbError>;
    /// Writes an acknowledged alert (`a.acknowledged` set) and its `acknowledged` history row.
    fn acknowledge(&self, a: &Alert, now: Timestamp) -> Result<(), DbError>;
    /// History rows, newest first.
    fn history(&self, model: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>, DbError>;

    fn insert_silence(
        &self,
        model: &str,
        rule: Option<&str>,
        ends_at: Timestamp,
        comment: &str,
        now: Timestamp,
    ) -> Result<Silence, DbError>;
    /// Ends a silence now (it stays listed as expired). False when there is no such silence.
    fn expire_silence(&self, id: i64, now: Timestamp) -> Result<bool, DbError>;
    /// Every silence, by id.
    fn silences(&self) -> Result<Vec<Silence>, DbError>;

    fn insert_heartbeat(&self, model: &str, h: &Heartbeat) -> Result<(), DbError>;
    /// The latest heartbeat of a job, by its own timestamp.
    fn last_heartbeat(&self, model: &str, job: &str) -> Result<Option<Heartbeat>, DbError>;
    /// The jobs that reported heartbeats for a model, by name.
    fn jobs(&self, model: &str) -> Result<Vec<JobRuns>, DbError>;
    /// Ingest of `kind` arrived at `at`; the latest arrival is kept.
    fn record_arrival(&self, model: &str, kind: &str, at: Timestamp) -> Result<(), DbError>;
    fn last_arrival(&self, model: &str, kind: &str) -> Result<Option<Timestamp>, DbError>;

    /// Undelivered notifications due at `now`, oldest first; a notification waits while an
    /// older one of the same alert to the same notifier is undelivered, so a resolve never
    /// overtakes its trigger.
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>, DbError>;
    /// The outbox, newest first: `pending` (not delivered yet), `failed` (not delivered and
    /// at least one attempt failed), `delivered`, or all.
    fn outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxEntry>, DbError>;
    fn mark_delivered(&self, id: i64, now: Timestamp) -> Result<(), DbError>;
    fn mark_failed(&self, id: i64, error: &str, next: Timestamp) -> Result<(), DbError>;
    /// (undelivered, undelivered with a failed attempt) counts, per notifier.
    fn outbox_counts(&self) -> Result<Vec<(String, u64, u64)>, DbError>;
}

/// The embedded alert state: one SQLite file (`<data_dir>/alerts.sqlite`), one connection.
pub struct SqliteAlertStore {
    conn: Mutex<Connection>,
}

impl SqliteAlertStore {
    pub fn open(path: &Path) -> Result<SqliteAlertStore, DbError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Alert state and the outbox must survive a crash like acknowledged events do.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteAlertStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn outbox_where(
        &self,
        filter: &str,
        p: impl rusqlite::Params,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare(&format!(
            "SELECT id, fingerprint, notifier, status, created_at, attempts, next_attempt_at,
                    last_error, delivered_at, payload FROM outbox WHERE {filter}
             ORDER BY id DESC LIMIT {limit}"
        ))?;
        let rows = st.query_map(p, |r| {
            let delivered: Option<i64> = r.get(8)?;
            Ok((
                OutboxEntry {
                    id: r.get(0)?,
                    fingerprint: r.get(1)?,
                    notifier: r.get(2)?,
                    status: r.get(3)?,
                    created_at: Timestamp(r.get(4)?),
                    attempts: r.get(5)?,
                    next_attempt_at: delivered
                        .is_none()
                        .then(|| r.get(6).map(Timestamp))
                        .transpose()?,
                    last_error: r.get(7)?,
                    delivered_at: delivered.map(Timestamp),
                    notification: None,
                },
                r.get::<_, String>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut e, payload) = row?;
            e.notification = Some(serde_json::from_str(&payload)?);
            out.push(e);
        }
        Ok(out)
    }
}

impl AlertStore for SqliteAlertStore {
    // ---- rules made over the API

    /// Inserts a rule; false when the model already has a rule of that name.
    fn insert_rule(&self, model: &str, spec: &RuleSpec, now: Timestamp) -> Result<bool, DbError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO rules (model, name, spec, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![model, spec.name, serde_json::to_string(spec)?, now.0],
        )?;
        Ok(n == 1)
    }

    fn delete_rule(&self, model: &str, name: &str) -> Result<bool, DbError> {
        let n = self.conn().execute(
            "DELETE FROM rules WHERE model = ?1 AND name = ?2",
            params![model, name],
        )?;
        Ok(n == 1)
    }

    /// Every stored rule as (model, spec).
    fn rules(&self) -> Result<Vec<(String, RuleSpec)>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT model, spec FROM rules ORDER BY model, name")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (m, s) = row?;
            out.push((m, serde_json::from_str(&s)?));
        }
        Ok(out)
    }

    // ---- alerts

    fn alerts(&self) -> Result<Vec<Alert>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT body FROM alerts ORDER BY model, rule")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok(out)
    }

    /// Writes one evaluation's effect in one transaction: the alert (or its removal), the
    /// history row of the transition, and the notifications it queued.
    fn apply(
        &self,
        fingerprint: &str,
        alert: Option<&Alert>,
        transition: Option<(Transition, &Alert)>,
        notify: &[(String, Notification)],
        now: Timestamp,
    ) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match alert {
            Some(a) => {
                tx.execute(
                    "INSERT INTO alerts (fingerprint, model, rule, state, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (fingerprint) DO UPDATE SET state = ?4, body = ?5",
                    params![a.fingerprint, a.model, a.rule, a.state.as_str(), serde_json::to_string(a)?],
                )?;
            }
            None => {
                tx.execute("DELETE FROM alerts WHERE fingerprint = ?1", [fingerprint])?;
            }
        }
        if let Some((t, a)) = transition {
            let name = serde_json::to_value(t)?;
            tx.execute(
                "INSERT INTO alert_history (fingerprint, model, rule, transition, at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.fingerprint,
                    a.model,
                    a.rule,
                    name.as_str().unwrap_or("?"),
                    now.0,
                    serde_json::to_string(a)?
                ],
            )?;
        }
        for (notifier, n) in notify {
            tx.execute(
                "INSERT INTO outbox (fingerprint, notifier, status, payload, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![
                    n.alert.fingerprint,
                    notifier,
                    n.alert.state.as_str(),
                    serde_json::to_string(n)?,
                    now.0
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn alert(&self, fingerprint: &str) -> Result<Option<Alert>, DbError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM alerts WHERE fingerprint = ?1",
                [fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Writes an acknowledged alert and its `acknowledged` history row in one transaction.
    fn acknowledge(&self, a: &Alert, now: Timestamp) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let body = serde_json::to_string(a)?;
        tx.execute(
            "UPDATE alerts SET body = ?2 WHERE fingerprint = ?1",
            params![a.fingerprint, body],
        )?;
        tx.execute(
            "INSERT INTO alert_history (fingerprint, model, rule, transition, at, body)
             VALUES (?1, ?2, ?3, 'acknowledged', ?4, ?5)",
            params![a.fingerprint, a.model, a.rule, now.0, body],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn history(&self, model: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, transition, at, body FROM alert_history
             WHERE ?1 IS NULL OR model = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![model, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, transition, at, body) = row?;
            out.push(HistoryEntry {
                id,
                transition,
                at: Timestamp(at),
                alert: serde_json::from_str(&body)?,
            });
        }
        Ok(out)
    }

    // ---- silences

    fn insert_silence(
        &self,
        model: &str,
        rule: Option<&str>,
        ends_at: Timestamp,
        comment: &str,
        now: Timestamp,
    ) -> Result<Silence, DbError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO silences (model, rule, ends_at, created_at, comment) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![model, rule, ends_at.0, now.0, comment],
        )?;
        Ok(Silence {
            id: conn.last_insert_rowid(),
            model: model.to_owned(),
            rule: rule.map(str::to_owned),
            ends_at,
            created_at: now,
            comment: comment.to_owned(),
        })
    }

    /// Ends a silence now (it stays listed as expired). False when there is no such silence.
    fn expire_silence(&self, id: i64, now: Timestamp) -> Result<bool, DbError> {
        let n = self.conn().execute(
            "UPDATE silences SET ends_at = MIN(ends_at, ?2) WHERE id = ?1",
            params![id, now.0],
        )?;
        Ok(n == 1)
    }

    fn silences(&self) -> Result<Vec<Silence>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, model, rule, ends_at, created_at, comment FROM silences ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(Silence {
                id: r.get(0)?,
                model: r.get(1)?,
                rule: r.get(2)?,
                ends_at: Timestamp(r.get(3)?),
                created_at: Timestamp(r.get(4)?),
                comment: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- heartbeats and arrivals

    fn insert_heartbeat(&self, model: &str, h: &Heartbeat) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT INTO heartbeats (model, job, status, ts, received_at, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![model, h.job, h.status, h.timestamp.0, h.received_at.0, h.message],
        )?;
        Ok(())
    }

    /// The latest heartbeat of a job, by its own timestamp.
    fn last_heartbeat(&self, model: &str, job: &str) -> Result<Option<Heartbeat>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT job, status, ts, received_at, message FROM heartbeats
                 WHERE model = ?1 AND job = ?2 ORDER BY ts DESC, id DESC LIMIT 1",
                params![model, job],
                |r| {
                    Ok(Heartbeat {
                        job: r.get(0)?,
                        status: r.get(1)?,
                        timestamp: Timestamp(r.get(2)?),
                        received_at: Timestamp(r.get(3)?),
                        message: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// The jobs that reported heartbeats for a model, by name.
    fn jobs(&self, model: &str) -> Result<Vec<JobRuns>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT job, COUNT(*), SUM(status = 'failed'), MAX(CASE WHEN status = 'success' THEN ts END)
             FROM heartbeats WHERE model = ?1 GROUP BY job ORDER BY job",
        )?;
        let rows = stmt.query_map(params![model], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, Option<i64>>(3)?.map(Timestamp),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record_arrival(&self, model: &str, kind: &str, at: Timestamp) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT INTO arrivals (model, kind, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (model, kind) DO UPDATE SET at = MAX(at, ?3)",
            params![model, kind, at.0],
        )?;
        Ok(())
    }

    fn last_arrival(&self, model: &str, kind: &str) -> Result<Option<Timestamp>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT at FROM arrivals WHERE model = ?1 AND kind = ?2",
                params![model, kind],
                |r| r.get(0).map(Timestamp),
            )
            .optional()?)
    }

    // ---- outbox

    /// Undelivered notifications due at `now`, oldest first; a notification waits while an
    /// older one of the same alert to the same notifier is undelivered, so a resolve never
    /// overtakes its trigger.
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT o.id FROM outbox o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ?1
             AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.delivered_at IS NULL
                             AND p.notifier = o.notifier AND p.fingerprint = o.fingerprint
                             AND p.id < o.id)
             ORDER BY o.id LIMIT ?2",
        )?;
        let ids: Vec<i64> = st
            .query_map(params![now.0, limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(st);
        drop(conn);
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.outbox_where("id = ?1", params![id], 1)?);
        }
        Ok(out)
    }

    /// The outbox, newest first: `pending` (not delivered yet), `failed` (not delivered and
    /// at least one attempt failed), `delivered`, or all.
    fn outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxEntry>, DbError> {
        let filter = match status {
            Some("pending") => "delivered_at IS NULL",
            Some("failed") => "delivered_at IS NULL AND attempts > 0",
            Some("delivered") => "delivered_at IS NOT NULL",
            _ => "1 = 1",
        };
        self.outbox_where(filter, [], limit)
    }

    fn mark_delivered(&self, id: i64, now: Timestamp) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now.0],
        )?;
        Ok(())
    }

    fn mark_failed(&self, id: i64, error: &str, next: Timestamp) -> Result<(), DbError> {
        self.conn().execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, next.0],
        )?;
        Ok(())
    }

    /// (undelivered, undelivered with a failed attempt) counts, per notifier.
    fn outbox_counts(&self) -> Result<Vec<(String, u64, u64)>, DbError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT notifier, COUNT(*), SUM(attempts > 0) FROM outbox WHERE delivered_at IS NULL
             GROUP BY notifier ORDER BY notifier",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
