//! `ClickHouseStore`: the four parts of the `Store` trait over the cluster (ADR 018's
//! ClickHouse column, ADR 019's tables). This file holds the struct, connecting, routing to
//! shards, the model rows, the writer's insert of a batch on its shard, the scan and the
//! per-hour counts; each trait's implementation is a room of its own: `event_log`, `catalog`,
//! `derived`.

use crate::city_hash64;
use crate::cluster::{int, q, statements, topology, tsv_field, ClickHouseConfig, Http, RowBinary};
use modelwatch_core::{
    FeatureIndex, FeatureValue, KpiEvent, LabelEvent, ModelName, Outcome, Pairs, PredictionEvent,
    ReferenceRow, Rejection, Role, Schema, SchemaChange, Timestamp, DEFAULT_MAX_FEATURES_PER_MODEL,
};
use modelwatch_store::rows::{
    json_feature_value, json_outcome, quarantine_text, repeated_rejection,
    QUARANTINE_RETENTION_DAYS,
};
use modelwatch_store::{
    decode_stored, AggregateWrite, Catalog, Cursor, DerivedState, EventLog, IngestOutcome,
    LabelBatch, ModelSummary, Page, PredictionBatch, PredictionsRef, Quarantined, ReferenceOutcome,
    ReferenceSummary, RejectedRow, RetentionReport, ScanRange, ScanSnapshot, Seen, StaleHour,
    StoreError, StoredAggregate, VersionSummary, WindowCounts, WindowQuery, WindowTally,
    HOUR_MICROS, MODEL_WIDE,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod catalog;
mod derived;
mod event_log;

#[cfg(test)]
use catalog::reference_row;

const DAY_MICROS: i64 = 86_400_000_000;
/// How long `apply_retention` waits for its deletes (mutations) to finish on every server.
const MUTATION_WAIT: Duration = Duration::from_secs(300);
/// The key of a model's settings holding the retention cutoff already reported (with
/// replicas, where past rows stay on disk, hidden).
const HIDDEN_BEFORE: &str = "retention_hidden_before";

/// A [`modelwatch_store::Store`] on a ClickHouse cluster. See the crate's invariants.
pub struct ClickHouseStore {
    http: Http,
    /// Each shard's servers (those listed in the URL), in shard order.
    shards: Vec<Vec<String>>,
    /// Every server listed.
    all: Vec<String>,
    /// Round robin over a shard's replicas and over the servers for reads.
    next: AtomicUsize,
    /// This process's writer of each model: a batch's duplicate read and insert are not
    /// interleaved with another batch's of the same model, so duplicates are reported exactly
    /// (within one process); models are written in parallel.
    writers: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The last arrival stamp handed out (microseconds): strictly increasing in this process,
    /// so arrival order within and across batches is the order of the stamps.
    clock: Mutex<u64>,
    max_features: usize,
    /// Each model's label count with the signature of its label rows it was counted at
    /// (`label_count`).
    label_counts: Mutex<HashMap<String, (LabelSignature, u64)>>,
    /// One count of each kind per model at a time in this process: concurrent summaries (a
    /// request, the refresher, the alert evaluator) wait for the first and read what it kept,
    /// instead of each counting every event (measured at 30M: three at once, each 3x slower).
    counting: Mutex<HashMap<(String, &'static str), CountingLock>>,
}

/// A model's label rows as read without `FINAL`: count, sum and max of `received_at`.
type LabelSignature = (u64, u64, u64);
/// Held while one count of a kind runs for a model (`ClickHouseStore::counting`).
type CountingLock = Arc<Mutex<()>>;

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("servers", &self.all)
            .field("database", &self.http.database)
            .finish()
    }
}

// ─── Rows as the tables hold them ───────────────────────────────────────────────────────────

#[derive(Serialize, Deserialize, Clone)]
struct ModelRow {
    model: String,
    created_at: u64,
    /// 0: kept forever.
    retention_days: u32,
    rebuild_epoch: u64,
    reference_upload: String,
    settings: String,
    updated_at: u64,
}

#[derive(Serialize)]
struct PredictionRow<'a> {
    model: &'a str,
    request_id: &'a str,
    version: &'a str,
    role: &'static str,
    ts: i64,
    received_at: u64,
    keep: u64,
    error: u8,
    prediction: String,
    score: Option<f64>,
    latency_ms: Option<f64>,
    cost: Option<f64>,
    feature_names: Vec<&'a str>,
    feature_numbers: Vec<f64>,
    feature_texts: Vec<String>,
    event: String,
}

#[derive(Serialize)]
struct LabelRow<'a> {
    model: &'a str,
    request_id: &'a str,
    label: String,
    ts: i64,
    received_at: u64,
}

#[derive(Serialize)]
struct RejectedInsert<'a> {
    model: &'a str,
    kind: &'a str,
    received_at: u64,
    row_index: u32,
    request_id: Option<&'a str>,
    field: &'a str,
    reason: &'a str,
    row: &'a str,
}

#[derive(Serialize)]
struct AggregateRow<'a> {
    model: &'a str,
    kind: &'a str,
    version: &'a str,
    hour: i64,
    blob: String,
    built_from: u64,
    epoch: u64,
    written_at: u64,
    deleted: u8,
}

#[derive(Serialize)]
struct BuiltRow<'a> {
    model: &'a str,
    version: &'a str,
    hour: i64,
    built_from: u64,
    epoch: u64,
    written_at: u64,
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

/// One (version, hour)'s counts for the model's summary, as `hour_counts` keeps them: the
/// predictions by role with their first and last event time, the served ones with a label,
/// and the hour's change count they were counted at.
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
struct HourCount {
    version: String,
    hour: i64,
    #[serde(default)]
    built_from: u64,
    served: u64,
    shadow: u64,
    first_served: i64,
    last_served: i64,
    first_shadow: i64,
    last_shadow: i64,
    labelled: u64,
}

#[derive(Serialize)]
struct HourCountRow<'a> {
    model: &'a str,
    #[serde(flatten)]
    counts: &'a HourCount,
    written_at: u64,
}

/// Hours counted again by one statement (`count_hours`): a span's join holds the labels of
/// its served requests only.
const COUNT_SPAN_HOURS: i64 = 72;
/// Statements of `count_hours` in flight at once.
const COUNT_THREADS: usize = 2;

/// A scoped thread's answer; its panic goes on up.
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Served => "served",
        Role::Shadow => "shadow",
    }
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("values of validated events serialize")
}

fn parse_outcome(s: &str) -> Result<Outcome, StoreError> {
    let v: serde_json::Value = serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what: "stored outcome",
        detail: e.to_string(),
    })?;
    json_outcome("stored outcome", v)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An `IN (…)` list of string literals.
fn in_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut s = String::from("(");
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&q(it));
    }
    s.push(')');
    s
}

/// For a join's labels of a time range: only those of the range's requests, each shard its own
/// (co-located), so a scan of a few hours does not hash every label of the model. Empty for an
/// unbounded range (then the condition would read as much as it saves).
fn labels_of_range(db: &str, m: &str, from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    if from.is_none() && to.is_none() {
        return String::new();
    }
    format!(
        " AND request_id IN (SELECT request_id FROM {db}.predictions_local WHERE model = {m}{})",
        range_sql("ts", from, to)
    )
}

/// `AND`-conditions on `column` for `[from, to)`.
fn range_sql(column: &str, from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    let mut s = String::new();
    if let Some(f) = from {
        s.push_str(&format!(" AND {column} >= {}", int(f.micros())));
    }
    if let Some(t) = to {
        s.push_str(&format!(" AND {column} < {}", int(t.micros())));
    }
    s
}

// ─── Cursors: the (received_at, request_id[, version]) of a page's last row ─────────────────

fn prediction_cursor(received_at: u64, id: &str, version: &str) -> Cursor {
    Cursor::new(format!(
        "chp.{received_at}.{}.{}",
        hex(id.as_bytes()),
        hex(version.as_bytes())
    ))
}

fn label_cursor(received_at: u64, id: &str) -> Cursor {
    Cursor::new(format!("chl.{received_at}.{}", hex(id.as_bytes())))
}

fn invalid(cursor: &Cursor) -> StoreError {
    StoreError::InvalidCursor {
        cursor: cursor.as_str().chars().take(64).collect(),
    }
}

/// (received_at, request id, version) of a predictions cursor.
fn read_prediction_cursor(c: &Cursor) -> Result<(u64, String, String), StoreError> {
    let parts: Vec<&str> = c.as_str().split('.').collect();
    match parts[..] {
        ["chp", r, id, v] => {
            let text = |h: &str| unhex(h).and_then(|b| String::from_utf8(b).ok());
            match (r.parse::<u64>().ok(), text(id), text(v)) {
                (Some(r), Some(id), Some(v)) if r.to_string() == parts[1] => Ok((r, id, v)),
                _ => Err(invalid(c)),
            }
        }
        _ => Err(invalid(c)),
    }
}

fn read_label_cursor(c: &Cursor) -> Result<(u64, String), StoreError> {
    let parts: Vec<&str> = c.as_str().split('.').collect();
    match parts[..] {
        ["chl", r, id] => {
            match (
                r.parse::<u64>().ok(),
                unhex(id).and_then(|b| String::from_utf8(b).ok()),
            ) {
                (Some(r), Some(id)) if r.to_string() == parts[1] => Ok((r, id)),
                _ => Err(invalid(c)),
            }
        }
        _ => Err(invalid(c)),
    }
}

impl ClickHouseStore {
    /// Connects, learns the topology, creates the database and tables if missing (idempotent).
    ///
    /// Every server of the cluster must be listed (with replicas, each replica: the schema is
    /// applied to every server listed, and a quorum insert needs the table on every replica).
    ///
    /// Callable from anywhere, an async context too: it runs on a thread of its own, so that
    /// its round trips never stall an executor thread. The store's methods block, so call
    /// them from a blocking thread (the server's `spawn_blocking` pool), as every store's.
    pub fn connect(config: &ClickHouseConfig) -> Result<ClickHouseStore, StoreError> {
        std::thread::scope(|s| {
            s.spawn(|| Self::connect_here(config))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn connect_here(config: &ClickHouseConfig) -> Result<ClickHouseStore, StoreError> {
        let mut http = Http::new(config)?;
        let topo = topology(&http, config)?;
        let replicated = topo.replicas > 1;
        if replicated {
            http.quorum = Some(topo.replicas);
        }
        for s in &topo.servers {
            http.run(
                &s.url,
                &format!("CREATE DATABASE IF NOT EXISTS {}", config.database),
                None,
                "create the database",
                false,
            )?;
        }
        let cluster = (!topo.single).then_some(config.cluster.as_str());
        let sts = statements(&config.database, cluster, replicated);
        for s in &topo.servers {
            for st in &sts {
                let head: String = st.lines().next().unwrap_or("").chars().take(80).collect();
                http.run(
                    &s.url,
                    st,
                    None,
                    &format!("apply the schema ({head})"),
                    true,
                )?;
            }
        }
        let mut shards = vec![Vec::new(); topo.shards];
        for s in &topo.servers {
            shards[s.shard].push(s.url.clone());
        }
        Ok(ClickHouseStore {
            http,
            shards,
            all: topo.servers.iter().map(|s| s.url.clone()).collect(),
            next: AtomicUsize::new(0),
            writers: Mutex::new(HashMap::new()),
            clock: Mutex::new(0),
            label_counts: Mutex::new(HashMap::new()),
            counting: Mutex::new(HashMap::new()),
            max_features: DEFAULT_MAX_FEATURES_PER_MODEL,
        })
    }

    /// The most features a model may have (`limits.max_features_per_model`).
    pub fn with_max_features(mut self, max: usize) -> Self {
        self.max_features = max;
        self
    }

    /// How many shards the cluster has.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard (0-based) of a request id: `cityHash64(request_id) % shards`.
    pub fn shard_of(&self, request_id: &str) -> usize {
        (city_hash64(request_id) % self.shards.len() as u64) as usize
    }

    fn model_shard(&self, model: &str) -> usize {
        self.shard_of(model)
    }

    /// A server of `shard`, the shard's replicas taken in turn.
    fn on(&self, shard: usize) -> &str {
        let servers = &self.shards[shard];
        &servers[self.next.fetch_add(1, Ordering::Relaxed) % servers.len()]
    }

    /// Any server, for reads through the Distributed tables.
    fn any(&self) -> &str {
        &self.all[self.next.fetch_add(1, Ordering::Relaxed) % self.all.len()]
    }

    /// `n` consecutive arrival stamps, the first returned: later than every stamp handed out
    /// before by this store, and not before the wall clock.
    fn stamps(&self, n: usize) -> u64 {
        let mut last = self.clock.lock().expect("clock poisoned");
        let now = Timestamp::now().micros().max(0) as u64;
        let first = now.max(*last + 1);
        *last = first + n.max(1) as u64 - 1;
        first
    }

    /// The writer lock of `model` (see `writers`).
    fn writer(&self, model: &str) -> Arc<Mutex<()>> {
        let mut writers = self.writers.lock().expect("writers poisoned");
        writers.entry(model.to_string()).or_default().clone()
    }

    fn db(&self) -> &str {
        &self.http.database
    }

    // ─── The catalog's rows (all on the first shard) ────────────────────────────────────────

    fn model_row(&self, model: &str) -> Result<Option<ModelRow>, StoreError> {
        let rows: Vec<ModelRow> = self.http.rows(
            self.on(0),
            &format!(
                "SELECT * FROM models_local FINAL WHERE model = {}",
                q(model)
            ),
            "read the model's catalog row",
        )?;
        Ok(rows.into_iter().next())
    }

    fn put_model_row(&self, mut row: ModelRow) -> Result<(), StoreError> {
        row.updated_at = self.stamps(1);
        self.http.insert(
            self.on(0),
            "models_local",
            &[row],
            "write the model's catalog row",
        )
    }

    /// The model's row, created when missing.
    fn ensure_model(&self, model: &str) -> Result<ModelRow, StoreError> {
        if let Some(row) = self.model_row(model)? {
            return Ok(row);
        }
        let row = ModelRow {
            model: model.to_string(),
            created_at: Timestamp::now().micros() as u64,
            retention_days: 0,
            rebuild_epoch: 0,
            reference_upload: String::new(),
            settings: "{}".into(),
            updated_at: 0,
        };
        self.put_model_row(row.clone())?;
        Ok(row)
    }

    fn existing(&self, model: &ModelName) -> Result<ModelRow, StoreError> {
        self.model_row(model.as_str())?
            .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))
    }

    fn schema(&self, model: &str) -> Result<Schema, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            schema: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.on(0),
            &format!(
                "SELECT schema FROM schemas_local FINAL WHERE model = {}",
                q(model)
            ),
            "read the model's schema",
        )?;
        match rows.into_iter().next() {
            Some(r) => serde_json::from_str(&r.schema).map_err(|e| StoreError::Corrupt {
                what: "model schema",
                detail: e.to_string(),
            }),
            None => Ok(Schema::default()),
        }
    }

    fn save_schema(&self, model: &str, schema: &Schema) -> Result<(), StoreError> {
        #[derive(Serialize)]
        struct Row<'a> {
            model: &'a str,
            schema: String,
            declared: u8,
            updated_at: u64,
        }
        let row = Row {
            model,
            schema: to_json(schema),
            declared: u8::from(schema.declared),
            updated_at: self.stamps(1),
        };
        self.http.insert(
            self.on(0),
            "schemas_local",
            &[row],
            "save the model's schema",
        )
    }

    /// Quarantines `rows` of `kind`, and returns every rejection in row order.
    fn quarantine(
        &self,
        model: &str,
        kind: &str,
        rows: &[Quarantined],
    ) -> Result<Vec<Rejection>, StoreError> {
        let at = self.stamps(1);
        let inserts: Vec<RejectedInsert> = rows
            .iter()
            .map(|r| RejectedInsert {
                model,
                kind,
                received_at: at,
                row_index: r.rejection.index as u32,
                request_id: r.rejection.request_id.as_deref(),
                field: &r.rejection.field,
                reason: &r.rejection.reason,
                row: quarantine_text(&r.row),
            })
            .collect();
        self.http.insert(
            self.on(self.model_shard(model)),
            "rejected_local",
            &inserts,
            "quarantine rejected rows",
        )?;
        let mut out: Vec<Rejection> = rows.iter().map(|r| r.rejection.clone()).collect();
        out.sort_by_key(|r| r.index);
        Ok(out)
    }

    /// The served (or every) prediction of a range with its label, in no order.
    fn scan(
        &self,
        model: &ModelName,
        range: &ScanRange,
        shadows: bool,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<(), StoreError> {
        let row = self.existing(model)?;
        let m = q(model.as_str());
        let mut sql = format!(
            "SELECT p.event AS event, l.label AS label, l.label_ts AS label_ts \
             FROM predictions AS p FINAL \
             ANY LEFT JOIN (SELECT request_id, label, ts AS label_ts FROM {db}.labels_local FINAL WHERE model = {m}{of_range}) AS l \
             USING (request_id) WHERE p.model = {m}",
            db = self.db(),
            of_range = labels_of_range(self.db(), &m, range.from, range.to),
        );
        if !shadows {
            sql.push_str(" AND p.role = 'served'");
        }
        if let Some(v) = &range.version {
            sql.push_str(&format!(" AND p.version = {}", q(v)));
        }
        sql.push_str(&range_sql("p.ts", range.from, range.to));
        sql.push_str(&visible("p.ts", cutoff(&row)));
        // TabSeparated, not JSONEachRow: the event is JSON text already, and inside JSON it
        // came escaped and was unescaped into a copy before being parsed again.
        self.http.each_line_as(
            self.any(),
            &sql,
            "TabSeparated",
            "scan the model's predictions",
            &mut |line| {
                let corrupt = |detail: String| StoreError::Corrupt {
                    what: "scanned prediction row",
                    detail,
                };
                let mut fields = line.split('\t');
                let (Some(event), Some(label), Some(label_ts), None) =
                    (fields.next(), fields.next(), fields.next(), fields.next())
                else {
                    return Err(corrupt(format!(
                        "not 3 tab-separated fields: {}",
                        &line[..line.len().min(200)]
                    )));
                };
                let event =
                    decode_stored(&tsv_field(event)).map_err(|detail| StoreError::Corrupt {
                        what: "stored prediction",
                        detail,
                    })?;
                let label = if label.is_empty() {
                    None
                } else {
                    Some(LabelEvent {
                        request_id: event.request_id.clone(),
                        label: parse_outcome(&tsv_field(label))?,
                        timestamp: Timestamp(
                            label_ts
                                .parse()
                                .map_err(|e| corrupt(format!("label time {label_ts:?}: {e}")))?,
                        ),
                    })
                };
                f(&event, label.as_ref());
                Ok(())
            },
        )
    }

    /// Stores one shard's rows of a batch (arrival stamp, event): reads which are stored, then
    /// inserts the others into the shard's `predictions_local`; returns (accepted, duplicates).
    fn store_on_shard(
        &self,
        name: &str,
        cut: i64,
        shard: usize,
        rows: &[(u64, &PredictionEvent)],
    ) -> Result<(usize, usize), StoreError> {
        let url = self.on(shard);
        #[derive(Deserialize)]
        struct Stored {
            request_id: String,
            version: String,
            role: String,
            live: u8,
        }
        // Every partition (event day) is read: a request id is stored once whatever day its
        // events carry (ADR 019, "The duplicate check": restricted to the batch's days, an id
        // sent again with another day's timestamp was reported accepted). The ids travel as an
        // external table, and PREWHERE reads the other columns only for the ids found.
        let ids: Vec<&str> = rows.iter().map(|r| r.1.request_id.as_str()).collect();
        let all: Vec<Stored> = self.http.rows_with_ids(
            url,
            &format!(
                "SELECT request_id, version, toString(role) AS role, max(ts) >= {} AS live FROM predictions_local \
                 PREWHERE request_id IN _ids WHERE model = {} GROUP BY request_id, version, role",
                int(cut),
                q(name),
            ),
            &ids,
            "read which of the batch's request ids are stored",
        )?;
        // A row past retention is gone to every reader, so its request id is new again:
        // the new row must win FINAL over the old one until the delete removes it.
        let past: HashSet<(&str, &str)> = all
            .iter()
            .filter(|s| s.live == 0)
            .map(|s| (s.request_id.as_str(), s.version.as_str()))
            .collect();
        let stored: Vec<&Stored> = all.iter().filter(|s| s.live == 1).collect();
        let served: HashSet<&str> = stored
            .iter()
            .filter(|s| s.role == "served")
            .map(|s| s.request_id.as_str())
            .collect();
        let pairs: HashSet<(&str, &str)> = stored
            .iter()
            .map(|s| (s.request_id.as_str(), s.version.as_str()))
            .collect();
        let fresh: Vec<(u64, &PredictionEvent)> = rows
            .iter()
            .copied()
            .filter(|(_, e)| {
                let id = e.request_id.as_str();
                let v = e.model_version.as_deref().unwrap_or("");
                !(pairs.contains(&(id, v)) || (e.role.is_served() && served.contains(id)))
            })
            .collect();
        let counts = (fresh.len(), rows.len() - fresh.len());
        let inserts: Vec<PredictionRow> = fresh
            .iter()
            .map(|&(received_at, e)| {
                let (feature_names, feature_numbers, feature_texts) = feature_columns(e);
                PredictionRow {
                    model: name,
                    request_id: &e.request_id,
                    version: e.model_version.as_deref().unwrap_or(""),
                    role: role_name(e.role),
                    ts: e.timestamp.micros(),
                    received_at,
                    keep: if past.contains(&(
                        e.request_id.as_str(),
                        e.model_version.as_deref().unwrap_or(""),
                    )) {
                        u64::MAX
                    } else {
                        u64::MAX - received_at
                    },
                    error: u8::from(e.error.is_some()),
                    prediction: e.prediction.as_ref().map(to_json).unwrap_or_default(),
                    score: e.score,
                    latency_ms: e.latency_ms,
                    cost: e.cost,
                    feature_names,
                    feature_numbers,
                    feature_texts,
                    event: to_json(e),
                }
            })
            .collect();
        self.http
            .insert(url, "predictions_local", &inserts, "store predictions")?;
        Ok(counts)
    }

    /// Waits until no mutation of the database is pending on any server.
    fn wait_for_mutations(&self) -> Result<(), StoreError> {
        let start = Instant::now();
        for url in &self.all {
            loop {
                let rows: Vec<Count> = self.http.rows(
                    url,
                    &format!(
                        "SELECT count() AS n FROM system.mutations WHERE database = {} AND is_done = 0",
                        q(self.db())
                    ),
                    "wait for retention's deletes",
                )?;
                if rows.first().is_none_or(|c| c.n == 0) {
                    break;
                }
                if start.elapsed() > MUTATION_WAIT {
                    return Err(StoreError::Remote {
                        server: url.clone(),
                        what: "wait for retention's deletes (ALTER … DELETE mutations)".into(),
                        message: format!(
                            "{} mutations still running after {} s: see system.mutations",
                            rows[0].n,
                            MUTATION_WAIT.as_secs()
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    fn count(&self, url: &str, sql: &str, what: &str) -> Result<u64, StoreError> {
        let rows: Vec<Count> = self.http.rows(url, sql, what)?;
        Ok(rows.first().map_or(0, |c| c.n))
    }

    /// Runs `ALTER TABLE {table} DELETE WHERE {cond}` on one server of every shard (with
    /// replicas the mutation replicates).
    fn delete_where(&self, table: &str, cond: &str, what: &str) -> Result<(), StoreError> {
        for servers in &self.shards {
            self.http.run(
                &servers[0],
                &format!("ALTER TABLE {table} DELETE WHERE {cond}"),
                None,
                what,
                true,
            )?;
        }
        Ok(())
    }

    /// The model's summary. Its statements are independent and go at once (each a round trip
    /// through the Distributed tables); the versions and the labelled count come from the
    /// per-hour counts (`hour_counts`), not from every event.
    fn summary(&self, row: ModelRow) -> Result<ModelSummary, StoreError> {
        let m = q(&row.model);
        let cut = cutoff(&row);
        let live_labels = visible_labels(self.db(), &m, cut);
        #[derive(Deserialize)]
        struct R {
            version: String,
            rows: u64,
            uploaded_at: u64,
        }
        let (hours, labels, rejected, reference, schema) = std::thread::scope(|s| {
            let hours = s.spawn(|| self.hour_counts(&row));
            let labels = s.spawn(|| self.label_count(&row.model, &live_labels));
            let rejected = s.spawn(|| {
                // The model's quarantine is written to its shard (quarantine).
                self.count(
                    self.on(self.model_shard(&row.model)),
                    &format!("SELECT count() AS n FROM rejected_local WHERE model = {m}"),
                    "count the model's quarantined rows",
                )
            });
            let reference = s.spawn(|| {
                self.http.rows::<R>(
                    self.on(0),
                    &format!(
                        "SELECT version, rows, uploaded_at FROM reference_sets_local FINAL WHERE model = {m} ORDER BY version"
                    ),
                    "read the model's reference datasets",
                )
            });
            let schema = self.schema(&row.model);
            (
                joined(hours),
                joined(labels),
                joined(rejected),
                joined(reference),
                schema,
            )
        });
        let (hours, labels, rejected, reference, schema) =
            (hours?, labels?, rejected?, reference?, schema?);
        // Per (version, role): predictions, first and last event, over the hours.
        let mut by: BTreeMap<(String, bool), (u64, i64, i64)> = BTreeMap::new();
        let mut labelled = 0;
        for h in &hours {
            for (shadow, n, first, last) in [
                (false, h.served, h.first_served, h.last_served),
                (true, h.shadow, h.first_shadow, h.last_shadow),
            ] {
                if n == 0 {
                    continue;
                }
                let e = by
                    .entry((h.version.clone(), shadow))
                    .or_insert((0, i64::MAX, i64::MIN));
                *e = (e.0 + n, e.1.min(first), e.2.max(last));
            }
            labelled += h.labelled;
        }
        let mut vs: Vec<_> = by.into_iter().collect();
        vs.sort_by(|a, b| (a.1 .1, &a.0 .0).cmp(&(b.1 .1, &b.0 .0)));
        let (mut versions, mut shadow_versions) = (Vec::new(), Vec::new());
        for ((version, shadow), (n, first, last)) in vs {
            let s = VersionSummary {
                version,
                predictions: n,
                first_event: Some(Timestamp(first)),
                last_event: Some(Timestamp(last)),
            };
            if shadow {
                shadow_versions.push(s);
            } else {
                versions.push(s);
            }
        }
        Ok(ModelSummary {
            name: row.model.clone(),
            created_at: Timestamp(row.created_at as i64),
            predictions: versions.iter().map(|v| v.predictions).sum(),
            labels,
            labelled,
            first_event: versions.iter().filter_map(|v| v.first_event).min(),
            last_event: versions.iter().filter_map(|v| v.last_event).max(),
            rejected,
            retention_days: (row.retention_days > 0).then_some(row.retention_days),
            versions,
            shadow_versions,
            schema,
            reference: reference
                .into_iter()
                .map(|r| ReferenceSummary {
                    version: r.version,
                    rows: r.rows,
                    uploaded_at: Timestamp(r.uploaded_at as i64),
                })
                .collect(),
        })
    }

    fn counting_lock(&self, model: &str, kind: &'static str) -> CountingLock {
        let mut locks = self.counting.lock().expect("counting locks poisoned");
        locks
            .entry((model.to_string(), kind))
            .or_insert_with(|| Arc::new(Mutex::new(())))
            .clone()
    }

    /// The model's labels (`FINAL`: a relabel is one label). That count reads and merges every
    /// label's request id; it is kept in this process beside a signature of the model's label
    /// rows that reads one number column and no merge: rows' count, sum and maximum of
    /// `received_at` over every part. An insert, a merge collapsing a relabel, or a delete each
    /// move it, and then the labels are counted again. With retention the visible labels move
    /// with the clock: counted every time.
    fn label_count(&self, model: &str, live_labels: &str) -> Result<u64, StoreError> {
        let lock = self.counting_lock(model, "labels");
        let _counting = lock.lock().expect("counting lock poisoned");
        let m = q(model);
        let count = || {
            self.count(
                self.any(),
                &format!("SELECT count() AS n FROM labels FINAL WHERE model = {m}{live_labels}"),
                "count the model's labels",
            )
        };
        if !live_labels.is_empty() {
            return count();
        }
        #[derive(Deserialize)]
        struct Signature {
            n: u64,
            total: u64,
            last: u64,
        }
        let sig: Vec<Signature> = self.http.rows(
            self.any(),
            &format!(
                "SELECT count() AS n, sum(received_at) AS total, max(received_at) AS last \
                 FROM labels WHERE model = {m}"
            ),
            "read the signature of the model's labels",
        )?;
        let sig = sig.first().map_or((0, 0, 0), |s| (s.n, s.total, s.last));
        if let Some(&(kept, n)) = self.label_counts.lock().expect("counts").get(model) {
            if kept == sig {
                return Ok(n);
            }
        }
        let n = count()?;
        self.label_counts
            .lock()
            .expect("counts")
            .insert(model.to_string(), (sig, n));
        Ok(n)
    }

    /// Every visible (version, hour)'s counts (`HourCount`): read from `hour_counts` where the
    /// hour's change count is still the one they were counted at, counted again from the events
    /// (and written back) where it moved. The change counts are read first: a write landing
    /// during the count moves the count past the one recorded, so the hour is counted again
    /// next time, never left short (the rule of the per-hour state, ADR 019). Hours wholly past
    /// the retention cutoff are left out and the hour holding it is counted from its visible
    /// events, not cached.
    fn hour_counts(&self, row: &ModelRow) -> Result<Vec<HourCount>, StoreError> {
        let name = row.model.as_str();
        let lock = self.counting_lock(name, "hours");
        let _counting = lock.lock().expect("counting lock poisoned");
        let m = q(name);
        let cut = cutoff(row);
        let home = self.on(self.model_shard(name));
        #[derive(Deserialize)]
        struct Changes {
            version: String,
            hour: i64,
            changes: u64,
        }
        let (changes, cached) = std::thread::scope(|s| {
            let cached = s.spawn(|| {
                self.http.rows::<HourCount>(
                    home,
                    &format!(
                        "SELECT version, hour, built_from, served, shadow, first_served, last_served, \
                         first_shadow, last_shadow, labelled FROM hour_counts_local FINAL WHERE model = {m}"
                    ),
                    "read the model's per-hour counts",
                )
            });
            let changes = self.http.rows::<Changes>(
                self.any(),
                &format!(
                    "SELECT version, hour, sum(changes) AS changes FROM hour_changes WHERE model = {m} \
                     GROUP BY version, hour"
                ),
                "read the hours' change counts",
            );
            (changes, joined(cached))
        });
        let mut cached: HashMap<(String, i64), HourCount> = cached?
            .into_iter()
            .map(|c| ((c.version.clone(), c.hour), c))
            .collect();
        let (mut out, mut stale, mut boundary) = (Vec::new(), Vec::new(), Vec::new());
        for c in changes? {
            if cut != i64::MIN && c.hour + HOUR_MICROS <= cut {
                continue;
            }
            if cut != i64::MIN && c.hour < cut {
                boundary.push((c.version, c.hour, 0));
                continue;
            }
            match cached.remove(&(c.version.clone(), c.hour)) {
                Some(k) if k.built_from == c.changes => out.push(k),
                _ => stale.push((c.version, c.hour, c.changes)),
            }
        }
        if !stale.is_empty() {
            let fresh = self.count_hours(name, &stale, i64::MIN)?;
            let at = self.stamps(1);
            let rows: Vec<HourCountRow> = fresh
                .iter()
                .map(|counts| HourCountRow {
                    model: name,
                    counts,
                    written_at: at,
                })
                .collect();
            self.http.insert(
                home,
                "hour_counts_local",
                &rows,
                "record the model's per-hour counts",
            )?;
            out.extend(fresh);
        }
        if !boundary.is_empty() {
            out.extend(self.count_hours(name, &boundary, cut)?);
        }
        Ok(out)
    }

    /// Counts (version, hour, change count) from the events (those at or after `from`): one
    /// statement per span of `COUNT_SPAN_HOURS`, two at a time; an hour without events gets a
    /// row of zeros.
    fn count_hours(
        &self,
        name: &str,
        hours: &[(String, i64, u64)],
        from: i64,
    ) -> Result<Vec<HourCount>, StoreError> {
        let m = q(name);
        let mut sorted: Vec<&(String, i64, u64)> = hours.iter().collect();
        sorted.sort_by_key(|h| h.1);
        let mut spans: Vec<Vec<&(String, i64, u64)>> = Vec::new();
        for h in sorted {
            match spans.last_mut() {
                Some(span) if h.1 < span[0].1 + COUNT_SPAN_HOURS * HOUR_MICROS => span.push(h),
                _ => spans.push(vec![h]),
            }
        }
        let count_span = |span: &[&(String, i64, u64)]| -> Result<Vec<HourCount>, StoreError> {
            let lo = span[0].1.max(from);
            let hi = span[span.len() - 1].1 + HOUR_MICROS;
            let mut pairs = String::new();
            for (i, (version, hour, _)) in span.iter().enumerate() {
                if i > 0 {
                    pairs.push_str(", ");
                }
                pairs.push_str(&format!("({}, {})", q(version), int(*hour)));
            }
            let sql = format!(
                "SELECT p.version AS version, intDiv(p.ts, 3600000000) * 3600000000 AS hour, \
                 countIf(p.role = 'served') AS served, countIf(p.role = 'shadow') AS shadow, \
                 minIf(p.ts, p.role = 'served') AS first_served, maxIf(p.ts, p.role = 'served') AS last_served, \
                 minIf(p.ts, p.role = 'shadow') AS first_shadow, maxIf(p.ts, p.role = 'shadow') AS last_shadow, \
                 countIf(p.role = 'served' AND l.has = 1) AS labelled \
                 FROM predictions AS p FINAL \
                 ANY LEFT JOIN (SELECT request_id, toUInt8(1) AS has FROM {db}.labels_local FINAL \
                 WHERE model = {m} AND request_id IN (SELECT request_id FROM {db}.predictions_local \
                 WHERE model = {m} AND role = 'served' AND ts >= {lo} AND ts < {hi})) AS l USING (request_id) \
                 WHERE p.model = {m} AND p.ts >= {lo} AND p.ts < {hi} \
                 AND (p.version, intDiv(p.ts, 3600000000) * 3600000000) IN ({pairs}) \
                 GROUP BY version, hour",
                db = self.db(),
                lo = int(lo),
                hi = int(hi),
            );
            let counted: Vec<HourCount> =
                self.http
                    .rows(self.any(), &sql, "count the model's predictions by hour")?;
            let mut counted: HashMap<(String, i64), HourCount> = counted
                .into_iter()
                .map(|c| ((c.version.clone(), c.hour), c))
                .collect();
            Ok(span
                .iter()
                .map(|(version, hour, changes)| {
                    let mut c = counted
                        .remove(&(version.clone(), *hour))
                        .unwrap_or_else(|| HourCount {
                            version: version.clone(),
                            hour: *hour,
                            ..HourCount::default()
                        });
                    c.built_from = *changes;
                    c
                })
                .collect())
        };
        let next = AtomicUsize::new(0);
        let results: Vec<Result<Vec<HourCount>, StoreError>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..COUNT_THREADS.min(spans.len()))
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(span) = spans.get(i) else {
                                return Ok(out);
                            };
                            out.extend(count_span(span)?);
                        }
                    })
                })
                .collect();
            workers.into_iter().map(joined).collect()
        });
        let mut out = Vec::new();
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    /// Derived blobs of `kinds` (by a `LIKE` pattern) still stored: (kind, version, hour).
    fn live_aggregates(
        &self,
        model: &str,
        kind_like: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        #[derive(Deserialize)]
        struct A {
            kind: String,
            version: String,
            hour: i64,
            deleted: u8,
        }
        let rows: Vec<A> = self.http.rows(
            self.any(),
            &format!(
                "SELECT kind, version, hour, deleted FROM aggregates FINAL WHERE model = {} AND kind LIKE {}",
                q(model),
                q(kind_like)
            ),
            "list the model's derived state",
        )?;
        Ok(rows
            .into_iter()
            .filter(|a| a.deleted == 0)
            .map(|a| (a.kind, a.version, a.hour))
            .collect())
    }
}

/// The features of an event as the typed columns (numbers, texts) queries use.
fn feature_columns(e: &PredictionEvent) -> (Vec<&str>, Vec<f64>, Vec<String>) {
    let mut names = Vec::with_capacity(e.features.len());
    let mut numbers = Vec::with_capacity(e.features.len());
    let mut texts = Vec::with_capacity(e.features.len());
    for (name, value) in &e.features {
        names.push(&name[..]);
        let (n, t) = match value {
            FeatureValue::Number(n) if n.is_finite() => (*n, String::new()),
            FeatureValue::Number(_) | FeatureValue::Null => (0.0, String::new()),
            FeatureValue::Bool(b) => (f64::from(u8::from(*b)), b.to_string()),
            FeatureValue::Text(t) => (0.0, t.clone()),
        };
        numbers.push(n);
        texts.push(t);
    }
    (names, numbers, texts)
}

/// Where a model's retention hides events: before it nothing is read, whether or not
/// `apply_retention` has deleted them yet (as the embedded store; on a replicated 18.16 cluster
/// the deletes of predictions wait for whole days, ADR 019).
fn cutoff(row: &ModelRow) -> i64 {
    if row.retention_days == 0 {
        i64::MIN
    } else {
        Timestamp::now().micros() - i64::from(row.retention_days) * DAY_MICROS
    }
}

/// The condition hiding events of `column` before `cutoff`.
fn visible(column: &str, cutoff: i64) -> String {
    if cutoff == i64::MIN {
        String::new()
    } else {
        format!(" AND {column} >= {cutoff}")
    }
}

/// The condition hiding labels retention deletes: older than the cutoff, and their request has
/// no prediction left (co-located: each shard reads its own predictions).
fn visible_labels(db: &str, m: &str, cutoff: i64) -> String {
    if cutoff == i64::MIN {
        String::new()
    } else {
        format!(
            " AND (ts >= {cutoff} OR request_id IN (SELECT request_id FROM {db}.predictions_local WHERE model = {m} AND ts >= {cutoff}))"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_and_refuse_what_they_did_not_hand_out() {
        let c = prediction_cursor(17, "a.b'c", "v1");
        assert_eq!(
            read_prediction_cursor(&c).unwrap(),
            (17, "a.b'c".into(), "v1".into())
        );
        let l = label_cursor(5, "x");
        assert_eq!(read_label_cursor(&l).unwrap(), (5, "x".into()));
        assert!(read_prediction_cursor(&l).is_err());
        assert!(read_label_cursor(&c).is_err());
        for bad in ["", "chp.1.zz.00", "chp.01.61.", "chl.-1.61", "12"] {
            let bad = Cursor::new(bad);
            assert!(read_prediction_cursor(&bad).is_err(), "{bad}");
            assert!(read_label_cursor(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reference_rows_read_back_in_the_order_written() {
        let row = ReferenceRow {
            features: vec![
                ("z".into(), FeatureValue::Number(3.0)),
                ("a".into(), FeatureValue::Text("x".into())),
                ("m".into(), FeatureValue::Bool(true)),
            ],
            prediction: Some(Outcome::Text("yes".into())),
            score: Some(0.25),
            scores: Some(vec![("yes".into(), 0.25), ("no".into(), 0.75)]),
            label: Some(Outcome::Number(1.0)),
            explanations: vec![("z".into(), -0.5)],
        };
        assert_eq!(reference_row(&to_json(&row)).unwrap(), row);
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])).unwrap(), [0, 1, 254, 255]);
    }
}
