//! `ClickHouseStore`: the four parts of the `Store` trait over the cluster (ADR 018's
//! ClickHouse column, ADR 019's tables).

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

impl EventLog for ClickHouseStore {
    fn ingest_predictions(
        &self,
        model: &ModelName,
        batch: PredictionBatch,
    ) -> Result<IngestOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        let mut out = IngestOutcome::default();
        let mut quarantined = batch.rejected;
        if batch.rows.is_empty() {
            out.rejected = self.quarantine(name, "predictions", &quarantined)?;
            return Ok(out);
        }
        let cut = cutoff(&self.ensure_model(name)?);
        let mut schema = self.schema(name)?;
        let mut known = FeatureIndex::of(&schema);
        let mut added = Vec::new();
        // The first row of the batch for each served request id and each (id, version).
        let mut first_served: HashMap<&str, usize> = HashMap::new();
        let mut first_pair: HashMap<(&str, &str), usize> = HashMap::new();
        let mut admitted: Vec<&(usize, PredictionEvent)> = Vec::with_capacity(batch.rows.len());
        for row in &batch.rows {
            let (index, e) = row;
            let id = e.request_id.as_str();
            let version = e.model_version.as_deref().unwrap_or("");
            let first = first_pair.get(&(id, version)).copied().or_else(|| {
                e.role
                    .is_served()
                    .then(|| first_served.get(id).copied())
                    .flatten()
            });
            if let Some(first) = first {
                quarantined.push(Quarantined {
                    rejection: repeated_rejection(*index, id, first),
                    row: to_json(e),
                });
                continue;
            }
            match schema.check(&e.features, &known, self.max_features) {
                Ok(new) => {
                    for f in &new {
                        known.insert(f);
                    }
                    added.extend(new);
                }
                Err((field, reason)) => {
                    quarantined.push(Quarantined {
                        rejection: Rejection::new(*index, field, reason).with_request_id(Some(id)),
                        row: to_json(e),
                    });
                    continue;
                }
            }
            first_pair.insert((id, version), *index);
            if e.role.is_served() {
                first_served.insert(id, *index);
            }
            admitted.push(row);
        }
        // The schema first: rows never reference features their schema lacks (a failure
        // after this leaves features of no rows, which the client's retry stores).
        if !added.is_empty() {
            out.schema_changes = added
                .iter()
                .map(|f| SchemaChange {
                    feature: f.name.clone(),
                    kind: f.kind,
                })
                .collect();
            schema.features.extend(added);
            self.save_schema(name, &schema)?;
        }
        // Arrival stamps in batch order, whichever shard each row goes to (pages read in
        // arrival order); a duplicate leaves its stamp unused.
        let base = self.stamps(admitted.len());
        let mut by_shard: BTreeMap<usize, Vec<(u64, &PredictionEvent)>> = BTreeMap::new();
        for (i, row) in admitted.into_iter().enumerate() {
            by_shard
                .entry(self.shard_of(&row.1.request_id))
                .or_default()
                .push((base + i as u64, &row.1));
        }
        // The shards are written at once (each its own read and insert): a batch waits for
        // its slowest shard, not for their sum. A failure leaves the other shards' rows stored,
        // which the client's retry reports as duplicates.
        let results: Vec<Result<(usize, usize), StoreError>> = if by_shard.len() == 1 {
            (by_shard.iter())
                .map(|(&shard, rows)| self.store_on_shard(name, cut, shard, rows))
                .collect()
        } else {
            std::thread::scope(|s| {
                let writers: Vec<_> = (by_shard.iter())
                    .map(|(&shard, rows)| {
                        s.spawn(move || self.store_on_shard(name, cut, shard, rows))
                    })
                    .collect();
                (writers.into_iter())
                    .map(|w| {
                        w.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        for result in results {
            let (accepted, duplicates) = result?;
            out.accepted += accepted;
            out.duplicates += duplicates;
        }
        out.rejected = self.quarantine(name, "predictions", &quarantined)?;
        Ok(out)
    }

    fn ingest_labels(
        &self,
        model: &ModelName,
        batch: LabelBatch,
    ) -> Result<IngestOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        self.existing(model)?;
        let mut out = IngestOutcome::default();
        // Arrival stamps in batch order (pages of labels read in arrival order).
        let base = self.stamps(batch.rows.len());
        let mut by_shard: BTreeMap<usize, Vec<(u64, &LabelEvent)>> = BTreeMap::new();
        for (i, (_, l)) in batch.rows.iter().enumerate() {
            by_shard
                .entry(self.shard_of(&l.request_id))
                .or_default()
                .push((base + i as u64, l));
        }
        for (shard, rows) in by_shard {
            // One server for the read, the insert and the change counts: the counts read the
            // predictions the labels join on this shard.
            let url = self.on(shard);
            let ids: Vec<&str> = rows.iter().map(|(_, l)| l.request_id.as_str()).collect();
            #[derive(Deserialize)]
            struct Id {
                request_id: String,
            }
            let stored: Vec<Id> = self.http.rows_with_ids(
                url,
                &format!(
                    "SELECT DISTINCT request_id FROM labels_local PREWHERE request_id IN _ids WHERE model = {}",
                    q(name),
                ),
                &ids,
                "read which of the batch's labels are stored",
            )?;
            let mut seen: HashSet<&str> = stored.iter().map(|s| s.request_id.as_str()).collect();
            for id in &ids {
                if !seen.insert(id) {
                    out.replaced += 1;
                }
            }
            let inserts: Vec<LabelRow> = rows
                .iter()
                .map(|&(received_at, l)| LabelRow {
                    model: name,
                    request_id: &l.request_id,
                    label: to_json(&l.label),
                    ts: l.timestamp.micros(),
                    received_at,
                })
                .collect();
            self.http
                .insert(url, "labels_local", &inserts, "store labels")?;
            out.accepted += rows.len();
            // After the labels (ADR 019, "Change counts"): the hours of their predictions
            // moved. A label before its prediction moves nothing; its prediction will.
            self.http.with_ids(
                url,
                &format!(
                    "INSERT INTO hour_changes_local SELECT model, version, intDiv(ts, {HOUR_MICROS}) * {HOUR_MICROS} AS hour, \
                     count() AS changes FROM predictions_local PREWHERE request_id IN _ids WHERE model = {} GROUP BY model, version, hour",
                    q(name),
                ),
                &ids,
                "count the hours the labels changed",
            )?;
        }
        out.rejected = self.quarantine(name, "labels", &batch.rejected)?;
        Ok(out)
    }

    fn ingest_kpis(
        &self,
        model: &ModelName,
        rows: Vec<(usize, KpiEvent)>,
        rejected: Vec<Quarantined>,
    ) -> Result<IngestOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        self.existing(model)?;
        let mut out = IngestOutcome::default();
        let url = self.on(self.model_shard(name));
        if !rows.is_empty() {
            #[derive(Deserialize)]
            struct Key {
                name: String,
                ts: i64,
            }
            let stored: Vec<Key> = self.http.rows(
                url,
                &format!(
                    "SELECT DISTINCT name, ts FROM kpis_local WHERE model = {} AND name IN {} AND ts IN ({})",
                    q(name),
                    in_list(rows.iter().map(|(_, k)| k.name.as_str())),
                    rows.iter()
                        .map(|(_, k)| int(k.timestamp.micros()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "read which KPI points are stored",
            )?;
            let mut seen: HashSet<(String, i64)> =
                stored.into_iter().map(|k| (k.name, k.ts)).collect();
            for (_, k) in &rows {
                if !seen.insert((k.name.clone(), k.timestamp.micros())) {
                    out.replaced += 1;
                }
            }
            #[derive(Serialize)]
            struct Row<'a> {
                model: &'a str,
                name: &'a str,
                ts: i64,
                value: f64,
                received_at: u64,
            }
            let first = self.stamps(rows.len());
            let inserts: Vec<Row> = rows
                .iter()
                .enumerate()
                .map(|(i, (_, k))| Row {
                    model: name,
                    name: &k.name,
                    ts: k.timestamp.micros(),
                    value: k.value,
                    received_at: first + i as u64,
                })
                .collect();
            self.http
                .insert(url, "kpis_local", &inserts, "store KPI points")?;
            out.accepted = rows.len();
        }
        out.rejected = self.quarantine(name, "kpis", &rejected)?;
        Ok(out)
    }

    fn kpis(
        &self,
        model: &ModelName,
        name: Option<&str>,
        range: &ScanRange,
    ) -> Result<Vec<KpiEvent>, StoreError> {
        let row = self.existing(model)?;
        let mut sql = format!(
            "SELECT name, ts, value FROM kpis FINAL WHERE model = {}",
            q(model.as_str())
        );
        if let Some(n) = name {
            sql.push_str(&format!(" AND name = {}", q(n)));
        }
        sql.push_str(&range_sql("ts", range.from, range.to));
        sql.push_str(&visible("ts", cutoff(&row)));
        sql.push_str(" ORDER BY name, ts");
        #[derive(Deserialize)]
        struct Row {
            name: String,
            ts: i64,
            value: f64,
        }
        let rows: Vec<Row> = self
            .http
            .rows(self.any(), &sql, "read the model's KPI points")?;
        Ok(rows
            .into_iter()
            .map(|r| KpiEvent {
                name: r.name,
                value: r.value,
                timestamp: Timestamp(r.ts),
            })
            .collect())
    }

    fn window_counts(
        &self,
        model: &ModelName,
        query: &WindowQuery,
    ) -> Result<Vec<WindowCounts>, StoreError> {
        let row = self.existing(model)?;
        let m = q(model.as_str());
        let mut sql = format!(
            "SELECT p.ts AS ts, p.error AS error, l.label_ts AS label_ts, l.has AS has \
             FROM predictions AS p FINAL \
             ANY LEFT JOIN (SELECT request_id, ts AS label_ts, toUInt8(1) AS has FROM {db}.labels_local FINAL WHERE model = {m}{of_range}) AS l \
             USING (request_id) WHERE p.model = {m} AND p.role = 'served'",
            db = self.db(),
            of_range = labels_of_range(self.db(), &m, query.from, query.to),
        );
        if let Some(v) = &query.version {
            sql.push_str(&format!(" AND p.version = {}", q(v)));
        }
        sql.push_str(&range_sql("p.ts", query.from, query.to));
        sql.push_str(&visible("p.ts", cutoff(&row)));
        #[derive(Deserialize)]
        struct Row {
            ts: i64,
            error: u8,
            label_ts: i64,
            has: u8,
        }
        let mut tally = WindowTally::new(query.window);
        self.http.each_line(
            self.any(),
            &sql,
            "count the model's predictions by window",
            &mut |line| {
                let r: Row = serde_json::from_str(line).map_err(|e| StoreError::Corrupt {
                    what: "window count row",
                    detail: e.to_string(),
                })?;
                tally.add(r.ts, r.error != 0, (r.has == 1).then_some(r.label_ts));
                Ok(())
            },
        )?;
        Ok(tally.finish())
    }

    fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<PredictionEvent>, StoreError> {
        let after = after.map(read_prediction_cursor).transpose()?;
        let row = self.existing(model)?;
        let mut sql = format!(
            "SELECT received_at, request_id, version, event FROM predictions FINAL WHERE model = {}{}",
            q(model.as_str()),
            visible("ts", cutoff(&row))
        );
        if let Some((r, id, v)) = &after {
            sql.push_str(&format!(
                " AND (received_at, request_id, version) > ({r}, {}, {})",
                q(id),
                q(v)
            ));
        }
        sql.push_str(&format!(
            " ORDER BY received_at, request_id, version LIMIT {limit}"
        ));
        #[derive(Deserialize)]
        struct Row {
            received_at: u64,
            request_id: String,
            version: String,
            event: String,
        }
        let rows: Vec<Row> = self
            .http
            .rows(self.any(), &sql, "read a page of predictions")?;
        let next = (rows.len() == limit && limit > 0)
            .then(|| rows.last())
            .flatten()
            .map(|r| prediction_cursor(r.received_at, &r.request_id, &r.version));
        let items = rows
            .iter()
            .map(|r| {
                decode_stored(&r.event).map_err(|detail| StoreError::Corrupt {
                    what: "stored prediction",
                    detail,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LabelEvent>, StoreError> {
        let after = after.map(read_label_cursor).transpose()?;
        let row = self.existing(model)?;
        let mut sql = format!(
            "SELECT received_at, request_id, label, ts FROM labels FINAL WHERE model = {}{}",
            q(model.as_str()),
            visible_labels(self.db(), &q(model.as_str()), cutoff(&row))
        );
        if let Some((r, id)) = &after {
            sql.push_str(&format!(
                " AND (received_at, request_id) > ({r}, {})",
                q(id)
            ));
        }
        sql.push_str(&format!(" ORDER BY received_at, request_id LIMIT {limit}"));
        #[derive(Deserialize)]
        struct Row {
            received_at: u64,
            request_id: String,
            label: String,
            ts: i64,
        }
        let rows: Vec<Row> = self.http.rows(self.any(), &sql, "read a page of labels")?;
        let next = (rows.len() == limit && limit > 0)
            .then(|| rows.last())
            .flatten()
            .map(|r| label_cursor(r.received_at, &r.request_id));
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(LabelEvent {
                    label: parse_outcome(&r.label)?,
                    request_id: r.request_id,
                    timestamp: Timestamp(r.ts),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Page { items, next })
    }

    fn rejected(&self, model: &ModelName, limit: usize) -> Result<Vec<RejectedRow>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            received_at: u64,
            kind: String,
            row_index: u32,
            request_id: Option<String>,
            field: String,
            reason: String,
            row: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.any(),
            &format!(
                "SELECT received_at, kind, row_index, request_id, field, reason, row FROM rejected \
                 WHERE model = {} ORDER BY received_at DESC, row_index DESC LIMIT {limit}",
                q(model.as_str())
            ),
            "read the model's quarantine",
        )?;
        Ok(rows
            .into_iter()
            .map(|r| RejectedRow {
                received_at: Timestamp(r.received_at as i64),
                kind: r.kind,
                index: r.row_index as usize,
                request_id: r.request_id,
                field: r.field,
                reason: r.reason,
                row: r.row,
            })
            .collect())
    }

    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<ScanSnapshot, StoreError> {
        // No hour deltas on this backend (ADR 018): nothing for a rescan to name.
        self.scan(model, range, false, f)
            .map(|()| ScanSnapshot::default())
    }

    fn scan_with_shadows(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<(), StoreError> {
        self.scan(model, range, true, f)
    }

    /// Deletes what is past each model's retention. Reads hide it from the moment the setting
    /// allows (as the embedded store), so the deletes only free space: `ALTER … DELETE`
    /// mutations (18.16 has no table TTL), waited for on an unreplicated cluster. With replicas
    /// on 18.16 the predictions, KPI points and quarantine stay on disk, hidden: a mutation of
    /// a table whose quorum inserts span several partitions never finishes (ClickHouse issue
    /// 7133, fixed in 20.3), and `DROP PARTITION` leaves the quorum naming the dropped part, so
    /// every sequentially consistent read fails after it (code 289; ADR 019). The count of
    /// predictions deleted is then of those newly hidden since the last run.
    fn apply_retention(&self, now: Timestamp) -> Result<RetentionReport, StoreError> {
        // Each model's writer is taken in turn below.
        let replicated = self.http.quorum.is_some();
        let mut report = RetentionReport::default();
        let models: Vec<ModelRow> = self.http.rows(
            self.on(0),
            "SELECT * FROM models_local FINAL",
            "list the models",
        )?;
        let cutoff_of = |row: &ModelRow| now.micros() - i64::from(row.retention_days) * DAY_MICROS;
        for row in models.iter().filter(|r| r.retention_days > 0) {
            let writer = self.writer(&row.model);
            let _writer = writer.lock().expect("writer poisoned");
            let m = q(&row.model);
            let cutoff = cutoff_of(row);
            let old = format!("model = {m} AND ts < {cutoff}");
            // With replicas nothing is deleted: count what this run newly hides.
            let mut settings: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&row.settings).unwrap_or_default();
            let hidden_before = settings
                .get(HIDDEN_BEFORE)
                .and_then(|v| v.as_i64())
                .filter(|_| replicated)
                .unwrap_or(i64::MIN);
            let predictions = self.count(
                self.any(),
                &format!(
                    "SELECT count() AS n FROM predictions FINAL WHERE {old} AND ts >= {}",
                    int(hidden_before)
                ),
                "count the predictions past retention",
            )?;
            report.predictions_deleted += predictions;
            if replicated && cutoff > hidden_before {
                settings.insert(HIDDEN_BEFORE.into(), cutoff.into());
                let mut row = row.clone();
                row.settings = serde_json::Value::Object(settings).to_string();
                self.put_model_row(row)?;
            }
            // Labels past the cutoff whose request keeps no prediction (each shard its own).
            for servers in &self.shards {
                #[derive(Deserialize)]
                struct Id {
                    request_id: String,
                }
                let ids: Vec<Id> = self.http.rows(
                    &servers[0],
                    &format!(
                        "SELECT DISTINCT request_id FROM labels_local WHERE {old} AND request_id NOT IN \
                         (SELECT request_id FROM predictions_local WHERE model = {m} AND ts >= {cutoff})"
                    ),
                    "find the labels past retention",
                )?;
                if ids.is_empty() {
                    continue;
                }
                self.http.run(
                    &servers[0],
                    &format!(
                        "ALTER TABLE labels_local DELETE WHERE model = {m} AND request_id IN {}",
                        in_list(ids.iter().map(|i| i.request_id.as_str()))
                    ),
                    None,
                    "delete labels past retention",
                    true,
                )?;
                report.labels_deleted += ids.len() as u64;
            }
            if !replicated {
                if predictions > 0 {
                    self.delete_where(
                        "predictions_local",
                        &old,
                        "delete predictions past retention",
                    )?;
                }
                if self.count(
                    self.any(),
                    &format!("SELECT count() AS n FROM kpis WHERE {old}"),
                    "count the KPI points past retention",
                )? > 0
                {
                    self.delete_where("kpis_local", &old, "delete KPI points past retention")?;
                }
            }
            // Derived state of the hours wholly past the cutoff (one partition each: safe
            // with replicas too).
            let hours_old = format!("model = {m} AND hour + {HOUR_MICROS} <= {cutoff}");
            for table in ["aggregates", "hours_built", "hour_changes", "hour_counts"] {
                let cond = if table == "aggregates" {
                    format!("{hours_old} AND hour != {}", int(MODEL_WIDE.micros()))
                } else {
                    hours_old.clone()
                };
                if self.count(
                    self.any(),
                    &format!("SELECT count() AS n FROM {table} WHERE {cond}"),
                    "count the derived state past retention",
                )? > 0
                {
                    self.delete_where(
                        &format!("{table}_local"),
                        &cond,
                        "delete derived state past retention",
                    )?;
                }
            }
            // The hour holding the cutoff lost some of its predictions: its count moves.
            let cut_hour = cutoff - cutoff.rem_euclid(HOUR_MICROS);
            self.http.run(
                self.on(self.model_shard(&row.model)),
                &format!(
                    "INSERT INTO hour_changes_local SELECT model, version, hour, toUInt64(1) AS changes \
                     FROM hour_changes WHERE model = {m} AND hour = {cut_hour} GROUP BY model, version, hour"
                ),
                None,
                "mark the hour of the retention cutoff changed",
                true,
            )?;
        }
        if !replicated {
            let quarantine_cutoff = now.micros() - QUARANTINE_RETENTION_DAYS * DAY_MICROS;
            let old_rejected = format!("received_at < {}", quarantine_cutoff.max(0));
            let rejected = self.count(
                self.any(),
                &format!("SELECT count() AS n FROM rejected WHERE {old_rejected}"),
                "count the quarantined rows past 30 days",
            )?;
            if rejected > 0 {
                self.delete_where(
                    "rejected_local",
                    &old_rejected,
                    "delete quarantined rows past 30 days",
                )?;
                report.rejected_deleted = rejected;
            }
            self.wait_for_mutations()?;
        }
        Ok(report)
    }
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

/// A reference row as stored: its JSON, read back in the order written.
#[derive(Deserialize)]
struct StoredReference {
    features: Pairs<serde_json::Value>,
    prediction: Option<serde_json::Value>,
    score: Option<f64>,
    scores: Option<Pairs<f64>>,
    label: Option<serde_json::Value>,
    explanations: Option<Pairs<f64>>,
}

fn reference_row(text: &str) -> Result<ReferenceRow, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "stored reference row",
        detail,
    };
    let r: StoredReference = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    Ok(ReferenceRow {
        features: r
            .features
            .0
            .into_iter()
            .map(|(k, v)| (k.into(), json_feature_value(v)))
            .collect(),
        prediction: r
            .prediction
            .map(|v| json_outcome("stored outcome", v))
            .transpose()?,
        score: r.score,
        scores: r.scores.map(|p| p.0),
        label: r
            .label
            .map(|v| json_outcome("stored outcome", v))
            .transpose()?,
        explanations: r.explanations.map(|p| p.0).unwrap_or_default(),
    })
}

impl Catalog for ClickHouseStore {
    fn list_models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        let rows: Vec<ModelRow> = self.http.rows(
            self.on(0),
            "SELECT * FROM models_local FINAL ORDER BY model",
            "list the models",
        )?;
        rows.into_iter().map(|r| self.summary(r)).collect()
    }

    fn model(&self, model: &ModelName) -> Result<Option<ModelSummary>, StoreError> {
        self.model_row(model.as_str())?
            .map(|r| self.summary(r))
            .transpose()
    }

    fn declare_schema(&self, model: &ModelName, mut schema: Schema) -> Result<(), StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        self.ensure_model(model.as_str())?;
        schema.declared = true;
        self.save_schema(model.as_str(), &schema)
    }

    fn put_reference(
        &self,
        model: &ModelName,
        version: Option<&str>,
        rows: Vec<(usize, ReferenceRow)>,
        rejected: Vec<Quarantined>,
    ) -> Result<ReferenceOutcome, StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let name = model.as_str();
        let version = version.unwrap_or("");
        self.ensure_model(name)?;
        let mut schema = self.schema(name)?;
        let mut known = FeatureIndex::of(&schema);
        let mut added = Vec::new();
        let mut refused = Vec::new();
        let mut admitted = Vec::with_capacity(rows.len());
        for (index, row) in &rows {
            match schema.check(&row.features, &known, self.max_features) {
                Ok(new) => {
                    for f in &new {
                        known.insert(f);
                    }
                    added.extend(new);
                    admitted.push((*index, row));
                }
                Err((field, reason)) => refused.push(Quarantined {
                    rejection: Rejection::new(*index, field, reason),
                    row: to_json(row),
                }),
            }
        }
        if admitted.is_empty() {
            // Storing none would replace the model's reference with nothing: nothing changes.
            let mut all: Vec<Rejection> = rejected
                .iter()
                .chain(&refused)
                .map(|q| q.rejection.clone())
                .collect();
            all.sort_by_key(|r| r.index);
            return Ok(ReferenceOutcome {
                version: version.to_string(),
                rows: 0,
                rejected: all,
                schema_changes: Vec::new(),
            });
        }
        let schema_changes: Vec<SchemaChange> = added
            .iter()
            .map(|f| SchemaChange {
                feature: f.name.clone(),
                kind: f.kind,
            })
            .collect();
        if !added.is_empty() {
            schema.features.extend(added);
            self.save_schema(name, &schema)?;
        }
        let upload = self.stamps(1);
        let upload_id = format!("{upload:x}");
        #[derive(Serialize)]
        struct Row<'a> {
            model: &'a str,
            version: &'a str,
            upload_id: &'a str,
            row_no: u32,
            row: String,
        }
        let inserts: Vec<Row> = admitted
            .iter()
            .map(|(index, row)| Row {
                model: name,
                version,
                upload_id: &upload_id,
                row_no: *index as u32,
                row: to_json(row),
            })
            .collect();
        self.http.insert(
            self.on(0),
            "reference_rows_local",
            &inserts,
            "store reference rows",
        )?;
        // What was derived from the reference is out of date (tombstones: no point deletes).
        let stale = self.live_aggregates(name, "reference%")?;
        if !stale.is_empty() {
            let at = self.stamps(1);
            let tombstones: Vec<AggregateRow> = stale
                .iter()
                .map(|(kind, v, hour)| AggregateRow {
                    model: name,
                    kind,
                    version: v,
                    hour: *hour,
                    blob: String::new(),
                    built_from: 0,
                    epoch: 0,
                    written_at: at,
                    deleted: 1,
                })
                .collect();
            self.http.insert(
                self.on(self.model_shard(name)),
                "aggregates_local",
                &tombstones,
                "delete the state derived from the old reference",
            )?;
        }
        // The upload switches last: a half-written one is never read.
        #[derive(Serialize)]
        struct Set<'a> {
            model: &'a str,
            version: &'a str,
            upload_id: &'a str,
            rows: u64,
            uploaded_at: u64,
        }
        self.http.insert(
            self.on(0),
            "reference_sets_local",
            &[Set {
                model: name,
                version,
                upload_id: &upload_id,
                rows: admitted.len() as u64,
                uploaded_at: upload,
            }],
            "switch to the new reference upload",
        )?;
        let mut quarantined = rejected;
        quarantined.extend(refused);
        let rejected = self.quarantine(name, "reference", &quarantined)?;
        Ok(ReferenceOutcome {
            version: version.to_string(),
            rows: admitted.len(),
            rejected,
            schema_changes,
        })
    }

    fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, StoreError> {
        self.existing(model)?;
        let m = q(model.as_str());
        let v = q(version.unwrap_or(""));
        #[derive(Deserialize)]
        struct Upload {
            upload_id: String,
        }
        let upload: Vec<Upload> = self.http.rows(
            self.on(0),
            &format!(
                "SELECT upload_id FROM reference_sets_local FINAL WHERE model = {m} AND version = {v}"
            ),
            "read the current reference upload",
        )?;
        let Some(upload) = upload.into_iter().next() else {
            return Ok(Vec::new());
        };
        #[derive(Deserialize)]
        struct Row {
            row: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.on(0),
            &format!(
                "SELECT row FROM reference_rows_local WHERE model = {m} AND version = {v} AND upload_id = {} ORDER BY row_no",
                q(&upload.upload_id)
            ),
            "read the reference rows",
        )?;
        rows.iter().map(|r| reference_row(&r.row)).collect()
    }

    fn set_retention(&self, model: &ModelName, days: Option<u32>) -> Result<(), StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let mut row = self.existing(model)?;
        row.retention_days = days.unwrap_or(0);
        self.put_model_row(row)
    }
}

impl DerivedState for ClickHouseStore {
    fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<StoredAggregate>, StoreError> {
        let mut sql = format!(
            "SELECT version, hour, unhex(blob), deleted FROM aggregates_local FINAL WHERE model = {} AND kind = {}",
            q(model.as_str()),
            q(kind)
        );
        if let Some(v) = &range.version {
            sql.push_str(&format!(" AND version = {}", q(v)));
        }
        sql.push_str(&range_sql("hour", range.from, range.to));
        sql.push_str(" ORDER BY hour, version");
        // Stored as hex (JSONEachRow carries text), sent as the bytes themselves: half the
        // bytes of hex and no JSON string to unescape (docs/benchmarks.md, 30M events).
        // From the model's shard, where every blob of the model is written (put_aggregate_group):
        // one server per read instead of the Distributed table's every shard, the read most
        // repeated per request.
        let home = self.on(self.model_shard(model.as_str()));
        let answer = self.http.row_binary(home, &sql, "read derived state")?;
        let mut r = RowBinary::new(&answer);
        let mut out = Vec::new();
        while !r.is_empty() {
            let row = (|| Some((r.string()?, r.i64()?, r.bytes()?, r.u8()?)))();
            let Some((version, hour, data, deleted)) = row else {
                return Err(StoreError::Corrupt {
                    what: "derived state blob",
                    detail: "a cut or unreadable RowBinary answer".into(),
                });
            };
            // Filtered here, not in WHERE: a condition may be applied before FINAL collapses.
            if deleted == 0 {
                out.push(StoredAggregate {
                    version,
                    hour: Timestamp(hour),
                    data: data.to_vec(),
                });
            }
        }
        Ok(out)
    }

    fn put_aggregate_group(
        &self,
        model: &ModelName,
        writes: Vec<AggregateWrite>,
    ) -> Result<(), StoreError> {
        let name = model.as_str();
        let epoch = self.model_row(name)?.map_or(0, |r| r.rebuild_epoch);
        let at = self.stamps(1);
        let mut built: HashMap<(&str, i64), u64> = HashMap::new();
        for w in &writes {
            for r in &w.refreshed {
                built.insert(
                    (r.version(), r.hour().micros()),
                    r.seen().get().max(0) as u64,
                );
            }
        }
        let mut rows = Vec::new();
        for w in &writes {
            for p in &w.put {
                rows.push(AggregateRow {
                    model: name,
                    kind: &w.kind,
                    version: &p.version,
                    hour: p.hour.micros(),
                    blob: hex(&p.data),
                    built_from: built
                        .get(&(p.version.as_str(), p.hour.micros()))
                        .copied()
                        .unwrap_or(0),
                    epoch,
                    written_at: at,
                    deleted: 0,
                });
            }
            for (version, hour) in &w.delete {
                rows.push(AggregateRow {
                    model: name,
                    kind: &w.kind,
                    version,
                    hour: hour.micros(),
                    blob: String::new(),
                    built_from: 0,
                    epoch,
                    written_at: at,
                    deleted: 1,
                });
            }
        }
        let url = self.on(self.model_shard(name));
        self.http
            .insert(url, "aggregates_local", &rows, "write derived state")?;
        // After the blobs: a crash between the two leaves the hours stale, rebuilt again.
        let marks: Vec<BuiltRow> = built
            .iter()
            .map(|(&(version, hour), &built_from)| BuiltRow {
                model: name,
                version,
                hour,
                built_from,
                epoch,
                written_at: at,
            })
            .collect();
        self.http.insert(
            url,
            "hours_built_local",
            &marks,
            "record what the derived state was built from",
        )
    }

    fn invalidate_aggregates(&self, model: &ModelName) -> Result<(), StoreError> {
        let writer = self.writer(model.as_str());
        let _writer = writer.lock().expect("writer poisoned");
        let Some(mut row) = self.model_row(model.as_str())? else {
            return Ok(());
        };
        row.rebuild_epoch += 1;
        self.put_model_row(row)
    }

    fn models_with_stale_hours(&self) -> Result<Vec<ModelName>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            model: String,
        }
        let rows: Vec<Row> = self.http.rows(
            self.on(0),
            "SELECT model FROM models_local FINAL ORDER BY model",
            "list the models",
        )?;
        let mut out = Vec::new();
        for r in rows {
            let Ok(name) = ModelName::new(&r.model) else {
                continue;
            };
            if !self.stale_hours(&name, false)?.is_empty() {
                out.push(name);
            }
        }
        Ok(out)
    }

    /// Every (version, hour) whose change count moved past the count its state was built from,
    /// that has changes and no state, or whose state is of an older rebuild epoch (ADR 018).
    /// Every one to rescan: this backend keeps no additions, so `with_additions` changes
    /// nothing.
    fn stale_hours(
        &self,
        model: &ModelName,
        _with_additions: bool,
    ) -> Result<Vec<StaleHour>, StoreError> {
        let m = q(model.as_str());
        let epoch = self
            .model_row(model.as_str())?
            .map_or(0, |r| r.rebuild_epoch);
        #[derive(Deserialize)]
        struct Changes {
            version: String,
            hour: i64,
            changes: u64,
        }
        let changes: Vec<Changes> = self.http.rows(
            self.any(),
            &format!(
                "SELECT version, hour, sum(changes) AS changes FROM hour_changes WHERE model = {m} \
                 GROUP BY version, hour ORDER BY hour, version"
            ),
            "read the hours' change counts",
        )?;
        #[derive(Deserialize)]
        struct Built {
            version: String,
            hour: i64,
            built_from: u64,
            epoch: u64,
        }
        // From the model's shard, where put_aggregate_group records them.
        let built: Vec<Built> = self.http.rows(
            self.on(self.model_shard(model.as_str())),
            &format!(
                "SELECT version, hour, argMax(built_from, written_at) AS built_from, argMax(epoch, written_at) AS epoch \
                 FROM hours_built_local WHERE model = {m} GROUP BY version, hour"
            ),
            "read what the hours' state was built from",
        )?;
        let built: HashMap<(String, i64), (u64, u64)> = built
            .into_iter()
            .map(|b| ((b.version, b.hour), (b.built_from, b.epoch)))
            .collect();
        Ok(changes
            .into_iter()
            .filter(|c| match built.get(&(c.version.clone(), c.hour)) {
                Some(&(from, e)) => c.changes > from || e < epoch,
                None => c.changes > 0,
            })
            .map(|c| StaleHour::rescan(c.version, Timestamp(c.hour), Seen::new(c.changes as i64)))
            .collect())
    }

    /// Never asked: no stale hour here has additions (ADR 018).
    fn scan_added_predictions(
        &self,
        _model: &ModelName,
        _stored: &[PredictionsRef],
        _f: &mut dyn FnMut(PredictionsRef, &PredictionEvent),
    ) -> Result<(), StoreError> {
        Ok(())
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
