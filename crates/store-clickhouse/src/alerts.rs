//! `ClickHouseAlertStore`: the alert service's state (`modelwatch_alerts::db::AlertStore`) in
//! the cluster, shared by every `modelwatch serve` process of one store (issue 21 §2, ADR 021).
//!
//! Invariants:
//! - every table is on the FIRST shard only (`alert_*_local`, no Distributed table): reads and
//!   writes go to its servers in turn, and when one fails the next replica of the shard is
//!   tried; with replicas inserts are quorum inserts and reads sequentially consistent (`Http`);
//! - nothing is updated in place: a change is a new row with a higher `version`, read with
//!   `FINAL` (conditions that are not on the sorting key are applied after it, in Rust or in
//!   an outer query), a deletion a row with `deleted = 1`;
//! - `version` is a Lamport clock per process: above the wall clock and above every version
//!   this process has read, so a read-modify-write wins over what it read whatever the clocks of
//!   the processes say;
//! - ids (history, silences, heartbeats, outbox) are `milliseconds << 11 | 11 random bits`,
//!   strictly increasing in a process: unique across processes but for two made in the same
//!   millisecond with the same random bits, ordered by time, and below 2^53 (exact in the
//!   JSON numbers of JavaScript and jq); each table's key holds its id, so a retried insert
//!   collapses onto the row it repeats;
//! - an evaluation's write is three inserts, outbox then history then state: a crash between
//!   them leaves the state as before, so the next pass repeats the transition (a second history
//!   row and a second notification: at least once, never lost);
//! - an acknowledgement is a row of its own per (alert, episode), put on the alert when read:
//!   the evaluating replica's rewrite of the state never drops one made on another replica.

use crate::cluster::{int, q, statements, topology, ClickHouseConfig, Http};
use modelwatch_alerts::db::{
    AlertStore, DbError, Heartbeat, HistoryEntry, JobRuns, OutboxEntry, Silence,
};
use modelwatch_alerts::lifecycle::{Ack, Alert, Transition};
use modelwatch_alerts::notify::Notification;
use modelwatch_alerts::RuleSpec;
use modelwatch_core::Timestamp;
use modelwatch_store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The alert state on a ClickHouse cluster (or one server). See the module's invariants.
pub struct ClickHouseAlertStore {
    http: Http,
    /// The first shard's servers listed in the URL.
    servers: Vec<String>,
    next: AtomicUsize,
    /// The Lamport clock of `version` (microseconds).
    clock: Mutex<u64>,
    /// The last id handed out.
    last_id: Mutex<i64>,
    /// The latest arrival this process wrote per (model, kind): one a second at most (see
    /// `record_arrival`).
    arrivals: Mutex<HashMap<(String, String), i64>>,
}

impl std::fmt::Debug for ClickHouseAlertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseAlertStore")
            .field("servers", &self.servers)
            .field("database", &self.http.database)
            .finish()
    }
}

// ─── Rows ───────────────────────────────────────────────────────────────────────────────────

#[derive(Serialize, Deserialize)]
struct RuleRow {
    model: String,
    name: String,
    spec: String,
    created_at: i64,
    deleted: u8,
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct StateRow {
    fingerprint: String,
    model: String,
    rule: String,
    body: String,
    deleted: u8,
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct AckRow {
    fingerprint: String,
    active_at: i64,
    ack: String,
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct HistoryRow {
    model: String,
    id: i64,
    fingerprint: String,
    rule: String,
    transition: String,
    at: i64,
    body: String,
}

#[derive(Serialize, Deserialize, Clone)]
struct SilenceRow {
    id: i64,
    model: String,
    rule: Option<String>,
    ends_at: i64,
    created_at: i64,
    comment: String,
    version: u64,
}

impl From<SilenceRow> for Silence {
    fn from(r: SilenceRow) -> Silence {
        Silence {
            id: r.id,
            model: r.model,
            rule: r.rule,
            ends_at: Timestamp(r.ends_at),
            created_at: Timestamp(r.created_at),
            comment: r.comment,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct HeartbeatRow {
    model: String,
    job: String,
    ts: i64,
    id: i64,
    status: String,
    received_at: i64,
    message: Option<String>,
}

#[derive(Serialize)]
struct ArrivalRow<'a> {
    model: &'a str,
    kind: &'a str,
    at: i64,
    version: u64,
}

#[derive(Serialize, Deserialize, Clone)]
struct OutboxRow {
    id: i64,
    fingerprint: String,
    notifier: String,
    status: String,
    payload: String,
    created_at: i64,
    attempts: u32,
    next_attempt_at: i64,
    last_error: Option<String>,
    delivered_at: Option<i64>,
    version: u64,
}

impl OutboxRow {
    fn entry(self) -> Result<OutboxEntry, DbError> {
        let notification: Notification = serde_json::from_str(&self.payload)?;
        Ok(OutboxEntry {
            id: self.id,
            fingerprint: self.fingerprint,
            notifier: self.notifier,
            status: self.status,
            created_at: Timestamp(self.created_at),
            attempts: self.attempts,
            next_attempt_at: self
                .delivered_at
                .is_none()
                .then_some(Timestamp(self.next_attempt_at)),
            last_error: self.last_error,
            delivered_at: self.delivered_at.map(Timestamp),
            notification: Some(notification),
        })
    }
}

const OUTBOX: &str = "SELECT id, fingerprint, notifier, status, payload, created_at, attempts, \
     next_attempt_at, last_error, delivered_at, version FROM alert_outbox_local FINAL";

/// Runs `f` off the async executor: on a thread of its own when called from inside a Tokio
/// runtime (the alert service calls its store from async tasks too: the delivery loop,
/// ingest's arrival), where a blocking HTTP round trip would stall an executor thread;
/// directly otherwise.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn random_bits() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

impl ClickHouseAlertStore {
    /// Connects to the store's database (`clickhouse://…`, as `ClickHouseStore::connect`),
    /// learns which servers hold the first shard, and creates the alert tables there if
    /// missing (idempotent). Callable from anywhere, an async context too.
    pub fn connect(config: &ClickHouseConfig) -> Result<ClickHouseAlertStore, StoreError> {
        off_runtime(|| Self::connect_here(config))
    }

    fn connect_here(config: &ClickHouseConfig) -> Result<ClickHouseAlertStore, StoreError> {
        let mut http = Http::new(config)?;
        let topo = topology(&http, config)?;
        let replicated = topo.replicas > 1;
        if replicated {
            http.quorum = Some(topo.replicas);
        }
        let servers: Vec<String> = (topo.servers.iter())
            .filter(|s| s.shard == 0)
            .map(|s| s.url.clone())
            .collect();
        let cluster = (!topo.single).then_some(config.cluster.as_str());
        let tables: Vec<String> = statements(&config.database, cluster, replicated)
            .into_iter()
            .filter(|st| st.starts_with("CREATE TABLE IF NOT EXISTS alert_"))
            .collect();
        for url in &servers {
            http.run(
                url,
                &format!("CREATE DATABASE IF NOT EXISTS {}", config.database),
                None,
                "create the database",
                false,
            )?;
            for st in &tables {
                let head: String = st.lines().next().unwrap_or("").chars().take(80).collect();
                http.run(url, st, None, &format!("apply the schema ({head})"), true)?;
            }
        }
        Ok(ClickHouseAlertStore {
            http,
            servers,
            next: AtomicUsize::new(0),
            clock: Mutex::new(0),
            last_id: Mutex::new(0),
            arrivals: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `f` on a server of the first shard; when it fails, on the next one, until one
    /// answers (every statement here may be repeated: reads, and inserts of rows whose key
    /// collapses a repeat). The first error when every server failed.
    fn on_first<T>(&self, f: impl Fn(&str) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let n = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut first_error = None;
        for i in 0..n {
            match f(&self.servers[(start + i) % n]) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.expect("the first shard has a server"))
    }

    fn rows<T: serde::de::DeserializeOwned + Send>(
        &self,
        sql: &str,
        what: &str,
    ) -> Result<Vec<T>, DbError> {
        off_runtime(|| self.on_first(|url| self.http.rows(url, sql, what))).map_err(DbError::from)
    }

    fn insert<T: Serialize + Sync>(
        &self,
        table: &str,
        rows: &[T],
        what: &str,
    ) -> Result<(), DbError> {
        off_runtime(|| self.on_first(|url| self.http.insert(url, table, rows, what)))
            .map_err(DbError::from)
    }

    /// A version above the wall clock and above every version seen.
    fn version(&self) -> u64 {
        let mut last = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        let now = Timestamp::now().micros().max(0) as u64;
        *last = now.max(*last + 1);
        *last
    }

    /// A version read: the next one this process writes is above it.
    fn seen(&self, version: u64) {
        let mut last = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last).max(version);
    }

    /// A new id: milliseconds << 11 | 11 random bits, above the last one handed out.
    fn id(&self) -> i64 {
        let mut last = self.last_id.lock().unwrap_or_else(|e| e.into_inner());
        let ms = Timestamp::now().micros().max(0) / 1000;
        let fresh = (ms << 11) | (random_bits() & 0x7ff) as i64;
        *last = fresh.max(*last + 1);
        *last
    }

    fn rule_row(&self, model: &str, name: &str) -> Result<Option<RuleRow>, DbError> {
        let rows: Vec<RuleRow> = self.rows(
            &format!(
                "SELECT * FROM alert_rules_local FINAL WHERE model = {} AND name = {}",
                q(model),
                q(name)
            ),
            "read an alert rule",
        )?;
        let row = rows.into_iter().next();
        if let Some(r) = &row {
            self.seen(r.version);
        }
        Ok(row)
    }

    /// Alert states (`filter`: a condition on the fingerprint, the sorting key), each with
    /// the acknowledgement of its episode put on it.
    fn states(&self, filter: &str) -> Result<Vec<Alert>, DbError> {
        let rows: Vec<StateRow> = self.rows(
            &format!("SELECT * FROM alert_states_local FINAL WHERE {filter} ORDER BY model, rule"),
            "read the alerts",
        )?;
        let acks: Vec<AckRow> = self.rows(
            &format!("SELECT * FROM alert_acks_local FINAL WHERE {filter}"),
            "read the alerts' acknowledgements",
        )?;
        let acks: BTreeMap<(String, i64), String> = acks
            .into_iter()
            .map(|a| ((a.fingerprint, a.active_at), a.ack))
            .collect();
        let mut out = Vec::new();
        for row in rows {
            self.seen(row.version);
            if row.deleted != 0 {
                continue;
            }
            let mut alert: Alert = serde_json::from_str(&row.body)?;
            if let Some(ack) = acks.get(&(alert.fingerprint.clone(), alert.active_at.0)) {
                alert.acknowledged = Some(serde_json::from_str::<Ack>(ack)?);
            }
            out.push(alert);
        }
        Ok(out)
    }

    fn history_row(&self, t: &str, a: &Alert, now: Timestamp) -> Result<HistoryRow, DbError> {
        Ok(HistoryRow {
            model: a.model.clone(),
            id: self.id(),
            fingerprint: a.fingerprint.clone(),
            rule: a.rule.clone(),
            transition: t.to_owned(),
            at: now.0,
            body: serde_json::to_string(a)?,
        })
    }

    fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>, DbError> {
        let rows: Vec<OutboxRow> = self.rows(
            &format!("{OUTBOX} WHERE id = {}", int(id)),
            "read a notification",
        )?;
        let row = rows.into_iter().next();
        if let Some(r) = &row {
            self.seen(r.version);
        }
        Ok(row)
    }

    fn rewrite_outbox(&self, mut row: OutboxRow) -> Result<(), DbError> {
        row.version = self.version();
        self.insert("alert_outbox_local", &[row], "update a notification")
    }
}

impl AlertStore for ClickHouseAlertStore {
    fn insert_rule(&self, model: &str, spec: &RuleSpec, now: Timestamp) -> Result<bool, DbError> {
        if self
            .rule_row(model, &spec.name)?
            .is_some_and(|r| r.deleted == 0)
        {
            return Ok(false);
        }
        let row = RuleRow {
            model: model.to_owned(),
            name: spec.name.clone(),
            spec: serde_json::to_string(spec)?,
            created_at: now.0,
            deleted: 0,
            version: self.version(),
        };
        let (version, text) = (row.version, row.spec.clone());
        self.insert("alert_rules_local", &[row], "store an alert rule")?;
        // Two replicas creating one name at once both found it free: the row that won (the
        // later version) is the one created; the other is told the name is taken.
        Ok(self
            .rule_row(model, &spec.name)?
            .is_some_and(|r| r.version == version && r.spec == text))
    }

    fn delete_rule(&self, model: &str, name: &str) -> Result<bool, DbError> {
        let Some(row) = self.rule_row(model, name)?.filter(|r| r.deleted == 0) else {
            return Ok(false);
        };
        let tombstone = RuleRow {
            deleted: 1,
            version: self.version(),
            ..row
        };
        self.insert("alert_rules_local", &[tombstone], "delete an alert rule")?;
        Ok(true)
    }

    fn rules(&self) -> Result<Vec<(String, RuleSpec)>, DbError> {
        let rows: Vec<RuleRow> = self.rows(
            "SELECT * FROM alert_rules_local FINAL ORDER BY model, name",
            "read the alert rules",
        )?;
        let mut out = Vec::new();
        for r in rows.into_iter().filter(|r| r.deleted == 0) {
            out.push((r.model, serde_json::from_str(&r.spec)?));
        }
        Ok(out)
    }

    fn alerts(&self) -> Result<Vec<Alert>, DbError> {
        self.states("1 = 1")
    }

    fn apply(
        &self,
        fingerprint: &str,
        alert: Option<&Alert>,
        transition: Option<(Transition, &Alert)>,
        notify: &[(String, Notification)],
        now: Timestamp,
    ) -> Result<(), DbError> {
        // Outbox, history, then the state: a crash between leaves the state as it was, and the
        // next pass repeats the transition (see the module's invariants).
        let mut queued = Vec::with_capacity(notify.len());
        for (notifier, n) in notify {
            queued.push(OutboxRow {
                id: self.id(),
                fingerprint: n.alert.fingerprint.clone(),
                notifier: notifier.clone(),
                status: n.alert.state.as_str().to_owned(),
                payload: serde_json::to_string(n)?,
                created_at: now.0,
                attempts: 0,
                next_attempt_at: now.0,
                last_error: None,
                delivered_at: None,
                version: self.version(),
            });
        }
        self.insert("alert_outbox_local", &queued, "queue notifications")?;
        if let Some((t, a)) = transition {
            let name = serde_json::to_value(t)?;
            let row = self.history_row(name.as_str().unwrap_or("?"), a, now)?;
            self.insert("alert_history_local", &[row], "write the alert's history")?;
        }
        let row = match alert {
            Some(a) => StateRow {
                fingerprint: a.fingerprint.clone(),
                model: a.model.clone(),
                rule: a.rule.clone(),
                body: serde_json::to_string(a)?,
                deleted: 0,
                version: self.version(),
            },
            None => StateRow {
                fingerprint: fingerprint.to_owned(),
                model: String::new(),
                rule: String::new(),
                body: String::new(),
                deleted: 1,
                version: self.version(),
            },
        };
        self.insert("alert_states_local", &[row], "write the alert's state")
    }

    fn alert(&self, fingerprint: &str) -> Result<Option<Alert>, DbError> {
        Ok(self
            .states(&format!("fingerprint = {}", q(fingerprint)))?
            .into_iter()
            .next())
    }

    fn acknowledge(&self, a: &Alert, now: Timestamp) -> Result<(), DbError> {
        let Some(ack) = &a.acknowledged else {
            return Ok(());
        };
        let row = AckRow {
            fingerprint: a.fingerprint.clone(),
            active_at: a.active_at.0,
            ack: serde_json::to_string(ack)?,
            version: self.version(),
        };
        self.insert("alert_acks_local", &[row], "acknowledge the alert")?;
        let row = self.history_row("acknowledged", a, now)?;
        self.insert("alert_history_local", &[row], "write the alert's history")
    }

    fn history(&self, model: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>, DbError> {
        let filter = match model {
            Some(m) => format!("WHERE model = {}", q(m)),
            None => String::new(),
        };
        let rows: Vec<HistoryRow> = self.rows(
            &format!(
                "SELECT * FROM alert_history_local FINAL {filter} ORDER BY id DESC LIMIT {limit}"
            ),
            "read the alerts' history",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(HistoryEntry {
                id: r.id,
                transition: r.transition,
                at: Timestamp(r.at),
                alert: serde_json::from_str(&r.body)?,
            });
        }
        Ok(out)
    }

    fn insert_silence(
        &self,
        model: &str,
        rule: Option<&str>,
        ends_at: Timestamp,
        comment: &str,
        now: Timestamp,
    ) -> Result<Silence, DbError> {
        let row = SilenceRow {
            id: self.id(),
            model: model.to_owned(),
            rule: rule.map(str::to_owned),
            ends_at: ends_at.0,
            created_at: now.0,
            comment: comment.to_owned(),
            version: self.version(),
        };
        self.insert(
            "alert_silences_local",
            std::slice::from_ref(&row),
            "store a silence",
        )?;
        Ok(row.into())
    }

    fn expire_silence(&self, id: i64, now: Timestamp) -> Result<bool, DbError> {
        let rows: Vec<SilenceRow> = self.rows(
            &format!(
                "SELECT * FROM alert_silences_local FINAL WHERE id = {}",
                int(id)
            ),
            "read a silence",
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(false);
        };
        self.seen(row.version);
        let row = SilenceRow {
            ends_at: row.ends_at.min(now.0),
            version: self.version(),
            ..row
        };
        self.insert("alert_silences_local", &[row], "expire a silence")?;
        Ok(true)
    }

    fn silences(&self) -> Result<Vec<Silence>, DbError> {
        let rows: Vec<SilenceRow> = self.rows(
            "SELECT * FROM alert_silences_local FINAL ORDER BY id",
            "read the silences",
        )?;
        Ok(rows.into_iter().map(Silence::from).collect())
    }

    fn insert_heartbeat(&self, model: &str, h: &Heartbeat) -> Result<(), DbError> {
        let row = HeartbeatRow {
            model: model.to_owned(),
            job: h.job.clone(),
            ts: h.timestamp.0,
            id: self.id(),
            status: h.status.clone(),
            received_at: h.received_at.0,
            message: h.message.clone(),
        };
        self.insert("alert_heartbeats_local", &[row], "store a heartbeat")
    }

    fn last_heartbeat(&self, model: &str, job: &str) -> Result<Option<Heartbeat>, DbError> {
        let rows: Vec<HeartbeatRow> = self.rows(
            &format!(
                "SELECT * FROM alert_heartbeats_local FINAL WHERE model = {} AND job = {} \
                 ORDER BY ts DESC, id DESC LIMIT 1",
                q(model),
                q(job)
            ),
            "read the job's latest heartbeat",
        )?;
        Ok(rows.into_iter().next().map(|r| Heartbeat {
            job: r.job,
            status: r.status,
            timestamp: Timestamp(r.ts),
            received_at: Timestamp(r.received_at),
            message: r.message,
        }))
    }

    fn jobs(&self, model: &str) -> Result<Vec<JobRuns>, DbError> {
        #[derive(Deserialize)]
        struct Row {
            job: String,
            runs: u64,
            failures: u64,
            successes: u64,
            last_success: i64,
        }
        let rows: Vec<Row> = self.rows(
            &format!(
                "SELECT job, count() AS runs, countIf(status = 'failed') AS failures, \
                 countIf(status = 'success') AS successes, \
                 maxIf(ts, status = 'success') AS last_success \
                 FROM alert_heartbeats_local FINAL WHERE model = {} GROUP BY job ORDER BY job",
                q(model)
            ),
            "read the model's jobs",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let last = (r.successes > 0).then_some(Timestamp(r.last_success));
                (r.job, r.runs, r.failures, last)
            })
            .collect())
    }

    fn record_arrival(&self, model: &str, kind: &str, at: Timestamp) -> Result<(), DbError> {
        // Every acknowledged ingest batch records its arrival: at most one insert a second per
        // (model, kind) and process, since ClickHouse wants few, large inserts (each is a part
        // on disk). The latest arrival read may then be up to a second early.
        let key = (model.to_owned(), kind.to_owned());
        let written = self
            .arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        if written.is_some_and(|w| at.0 < w + 1_000_000) {
            return Ok(());
        }
        let row = ArrivalRow {
            model,
            kind,
            at: at.0,
            version: at.0.max(0) as u64,
        };
        self.insert("alert_arrivals_local", &[row], "record an arrival")?;
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        let w = arrivals.entry(key).or_insert(at.0);
        *w = (*w).max(at.0);
        Ok(())
    }

    fn last_arrival(&self, model: &str, kind: &str) -> Result<Option<Timestamp>, DbError> {
        #[derive(Deserialize)]
        struct Row {
            n: u64,
            at: i64,
        }
        // max() over the rows, merged or not: no FINAL needed.
        let rows: Vec<Row> = self.rows(
            &format!(
                "SELECT count() AS n, max(at) AS at FROM alert_arrivals_local \
                 WHERE model = {} AND kind = {}",
                q(model),
                q(kind)
            ),
            "read the latest arrival",
        )?;
        Ok(rows
            .into_iter()
            .next()
            .filter(|r| r.n > 0)
            .map(|r| Timestamp(r.at)))
    }

    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxEntry>, DbError> {
        let rows: Vec<OutboxRow> = self.rows(
            &format!("SELECT * FROM ({OUTBOX}) WHERE delivered_at IS NULL ORDER BY id"),
            "read the undelivered notifications",
        )?;
        // Oldest first; one waiting (undelivered, due or not) holds back the later ones of
        // its alert to its notifier.
        let mut waiting = HashSet::new();
        let mut out = Vec::new();
        for r in rows {
            self.seen(r.version);
            let first = waiting.insert((r.notifier.clone(), r.fingerprint.clone()));
            if first && r.next_attempt_at <= now.0 && out.len() < limit {
                out.push(r.entry()?);
            }
        }
        Ok(out)
    }

    fn outbox(&self, status: Option<&str>, limit: usize) -> Result<Vec<OutboxEntry>, DbError> {
        let filter = match status {
            Some("pending") => "delivered_at IS NULL",
            Some("failed") => "delivered_at IS NULL AND attempts > 0",
            Some("delivered") => "delivered_at IS NOT NULL",
            _ => "1 = 1",
        };
        let rows: Vec<OutboxRow> = self.rows(
            &format!("SELECT * FROM ({OUTBOX}) WHERE {filter} ORDER BY id DESC LIMIT {limit}"),
            "read the notifications",
        )?;
        rows.into_iter().map(OutboxRow::entry).collect()
    }

    fn mark_delivered(&self, id: i64, now: Timestamp) -> Result<(), DbError> {
        let Some(row) = self.outbox_row(id)? else {
            return Ok(());
        };
        self.rewrite_outbox(OutboxRow {
            delivered_at: Some(now.0),
            attempts: row.attempts + 1,
            last_error: None,
            ..row
        })
    }

    fn mark_failed(&self, id: i64, error: &str, next: Timestamp) -> Result<(), DbError> {
        let Some(row) = self.outbox_row(id)? else {
            return Ok(());
        };
        self.rewrite_outbox(OutboxRow {
            attempts: row.attempts + 1,
            last_error: Some(error.to_owned()),
            next_attempt_at: next.0,
            ..row
        })
    }

    fn outbox_counts(&self) -> Result<Vec<(String, u64, u64)>, DbError> {
        #[derive(Deserialize)]
        struct Row {
            notifier: String,
            undelivered: u64,
            failing: u64,
        }
        let rows: Vec<Row> = self.rows(
            &format!(
                "SELECT notifier, count() AS undelivered, countIf(attempts > 0) AS failing \
                 FROM ({OUTBOX}) WHERE delivered_at IS NULL GROUP BY notifier ORDER BY notifier"
            ),
            "count the undelivered notifications",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| (r.notifier, r.undelivered, r.failing))
            .collect())
    }
}
