//! Storage of prediction events, labels, reference datasets and rejected rows.
//!
//! [`Store`] is the interface every caller takes, made of the parts a backend implements
//! ([`EventLog`], [`Catalog`], [`DerivedState`]; ADR 018); [`SqliteStore`] is
//! the embedded backend (a single data directory, nothing to install). Invariants a caller may rely on:
//! - a call that returns `Ok` has made its rows durable (fsynced): a crash after it loses nothing;
//! - predictions are idempotent on `(model, request_id)`: a stored request id is never stored
//!   twice, a retry is reported as duplicates; shadow predictions (ADR 011) are idempotent on
//!   `(model, request_id, version)`, stored beside the served one and read only by
//!   [`EventLog::scan_with_shadows`];
//! - a label replaces an earlier label for the same request id; labels may arrive before their
//!   prediction and are joined whenever it comes, always to the prediction's event time;
//! - schemas change only through the store's single writer, so two batches racing to introduce
//!   a feature cannot disagree about its kind.

mod cancel;
mod compact;
pub mod conformance;
mod lease;
pub mod rows;
mod sqlite;

pub use cancel::run_cancellable;
pub use lease::{Lease, NeverHeld, SoleProcess};
pub use sqlite::{
    check_data_dir, decode_stored, encode_line, CheckReport, GatheredPredictions, PendingChanges,
    PendingDelta, PendingLabels, PendingMark, PendingPredictions, SqliteStore,
};

use modelwatch_core::{
    ErrorCode, KpiEvent, LabelEvent, ModelName, Outcome, PredictionEvent, ReferenceRow, Rejection,
    Schema, SchemaChange, Timestamp, Window,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model `{0}` does not exist")]
    ModelNotFound(String),
    #[error("the data directory {dir} is in use by another modelwatch process: stop it, or send the data to it with --server URL")]
    Locked { dir: String },
    #[error("storage failure: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("storage io failure on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt stored value in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("the storage writer has stopped")]
    WriterGone,
    /// The request this read answered was abandoned by its client; the read stopped early.
    #[error("the request was abandoned by its client; its read stopped")]
    Cancelled,
    /// A page's `after` is not a cursor this store handed out (see [`Cursor`]).
    #[error("`{cursor}` is not a page cursor this store handed out: pass back the `next` of the page before, unchanged")]
    InvalidCursor { cursor: String },
    /// A remote backend (ClickHouse) failed or refused a query: which server, what the query
    /// was for, and the server's own message.
    #[error("ClickHouse server {server} failed to {what}: {message}")]
    Remote {
        server: String,
        what: String,
        message: String,
    },
    /// The data directory's files are not a sound store; nothing was opened or created.
    #[error("the data directory {dir} is damaged: {found}. modelwatch will not start over it, so that nothing more is lost: run `modelwatch check --data {dir}` for details, and restore the directory from a backup (docs/operations.md)")]
    Damaged { dir: String, found: String },
}

impl modelwatch_core::ServiceError for StoreError {
    /// Every store error is a failure of the service but three: a model that does not exist,
    /// a read its client abandoned, and a page cursor the store never handed out, the one
    /// store error that is the caller's mistake.
    fn code(&self) -> ErrorCode {
        match self {
            StoreError::ModelNotFound(_) => ErrorCode::NotFound,
            StoreError::InvalidCursor { .. } => ErrorCode::InvalidInput,
            // Nobody reads the answer: not a failure to log as one.
            StoreError::Cancelled => ErrorCode::Timeout,
            e if e.is_disk_full() => ErrorCode::StorageFull,
            _ => ErrorCode::Internal,
        }
    }
}

impl StoreError {
    /// The disk holding the store is full: nothing of the failed write was stored, and the
    /// same write can succeed once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull),
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

/// A rejected row, kept in quarantine with its text so that the user can read back what was
/// refused: as sent when the caller has it, else the parsed row written out again (a row the
/// writer refuses) or where the row is (a file import).
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub rejection: Rejection,
    pub row: String,
}

/// A batch of parsed predictions, each with its index in the client's batch, and the rows of the
/// same batch that were already rejected.
#[derive(Debug, Default)]
pub struct PredictionBatch {
    pub rows: Vec<(usize, PredictionEvent)>,
    pub rejected: Vec<Quarantined>,
    /// The rows' own text, when the caller has it (an HTTP body): a row that reads back as its
    /// event is stored as sent, not encoded again.
    pub verbatim: Option<VerbatimRows>,
    /// What the rows add to each of their hours' aggregates, folded by the caller where they
    /// were parsed (opaque to the store). A hint: the embedded store keeps a fold with its
    /// hour's addition when every row of that hour was stored as new, and hands it back as
    /// [`Addition::fold`], so that a refresh need not read the rows again; a backend without
    /// additions ignores it.
    pub folds: Vec<HourFold>,
}

impl PredictionBatch {
    /// A batch of parsed rows only: none rejected beforehand, no text or folds of them.
    pub fn new(rows: Vec<(usize, PredictionEvent)>) -> Self {
        PredictionBatch {
            rows,
            ..PredictionBatch::default()
        }
    }
}

/// One hour's fold of a batch's rows (see [`PredictionBatch::folds`]).
#[derive(Debug, Clone)]
pub struct HourFold {
    pub version: String,
    /// Start of the hour, microseconds.
    pub hour: i64,
    /// How many of the batch's rows it folds: all of the hour's, or it is not used.
    pub rows: u64,
    pub data: Vec<u8>,
}

/// The text of a batch's rows as the client sent them.
#[derive(Debug, Clone)]
pub struct VerbatimRows {
    pub text: bytes::Bytes,
    /// For each row of [`PredictionBatch::rows`], in order, where its JSON is in `text`, if it
    /// parses back to the same event (see `modelwatch_core::parse_prediction_row_verbatim`).
    pub spans: Vec<Option<std::ops::Range<usize>>>,
}

impl VerbatimRows {
    /// The text of row `position`, if it can be stored as sent: one line of JSON.
    pub fn row(&self, position: usize) -> Option<&[u8]> {
        let span = self.spans.get(position)?.clone()?;
        let row = self.text.get(span)?;
        (!row.contains(&b'\n')).then_some(row)
    }
}

#[derive(Debug, Default)]
pub struct LabelBatch {
    pub rows: Vec<(usize, LabelEvent)>,
    pub rejected: Vec<Quarantined>,
}

/// What happened to a batch. `rejected` holds every row not stored (parse-time and schema
/// rejections), sorted by index.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IngestOutcome {
    pub accepted: usize,
    /// Predictions whose request id was already stored (a retry): not stored again.
    pub duplicates: usize,
    /// Labels that replaced an earlier label for the same request id.
    #[serde(skip_serializing_if = "is_zero")]
    pub replaced: usize,
    pub rejected: Vec<Rejection>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_changes: Vec<SchemaChange>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionSummary {
    pub version: String,
    pub predictions: u64,
    pub first_event: Option<Timestamp>,
    pub last_event: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceSummary {
    /// Empty when the reference applies to every version.
    pub version: String,
    pub rows: u64,
    pub uploaded_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSummary {
    pub name: String,
    pub created_at: Timestamp,
    pub predictions: u64,
    pub labels: u64,
    /// Predictions that have a label.
    pub labelled: u64,
    pub first_event: Option<Timestamp>,
    pub last_event: Option<Timestamp>,
    pub rejected: u64,
    pub retention_days: Option<u32>,
    /// The versions of the served predictions (`predictions` is their sum).
    pub versions: Vec<VersionSummary>,
    /// Versions with shadow predictions (challengers, ADR 011), counted apart.
    #[serde(default)]
    pub shadow_versions: Vec<VersionSummary>,
    pub schema: Schema,
    pub reference: Vec<ReferenceSummary>,
}

/// Which predictions a window query covers: event time in `[from, to)`, one version or all.
#[derive(Debug, Clone)]
pub struct WindowQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
}

/// Counts of one event-time window, labels joined by request id.
#[derive(Debug, Clone, Serialize)]
pub struct WindowCounts {
    pub start: Timestamp,
    pub end: Timestamp,
    pub predictions: u64,
    pub labelled: u64,
    pub errors: u64,
    /// Label time minus prediction time, in seconds, over the labelled predictions.
    pub label_delay_seconds: Option<DelayQuantiles>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DelayQuantiles {
    pub p50: f64,
    pub p90: f64,
    pub max: f64,
}

/// [`WindowCounts`] added up one prediction at a time, as a backend reads its rows: every
/// backend counts the same way, so the same events give the same counts and delay quantiles.
#[derive(Debug)]
pub struct WindowTally {
    window: Window,
    /// Per window start: predictions, errors, label delays in seconds.
    windows: std::collections::BTreeMap<i64, (u64, u64, Vec<f64>)>,
}

impl WindowTally {
    pub fn new(window: Window) -> Self {
        WindowTally {
            window,
            windows: Default::default(),
        }
    }

    /// One prediction at `ts` (microseconds), an error or not, labelled at `label_ts` when it is.
    pub fn add(&mut self, ts: i64, is_error: bool, label_ts: Option<i64>) {
        let start = self.window.start_of(Timestamp(ts)).micros();
        let (predictions, errors, delays) = self.windows.entry(start).or_default();
        *predictions += 1;
        *errors += u64::from(is_error);
        if let Some(lt) = label_ts {
            delays.push((lt - ts) as f64 / 1e6);
        }
    }

    /// The windows with at least one prediction, oldest first.
    pub fn finish(self) -> Vec<WindowCounts> {
        let window = self.window;
        self.windows
            .into_iter()
            .map(|(start, (predictions, errors, mut delays))| {
                delays.sort_by(f64::total_cmp);
                WindowCounts {
                    start: Timestamp(start),
                    end: Timestamp(start + window.micros()),
                    predictions,
                    labelled: delays.len() as u64,
                    errors,
                    label_delay_seconds: (!delays.is_empty()).then(|| DelayQuantiles {
                        p50: nearest_rank(&delays, 0.5),
                        p90: nearest_rank(&delays, 0.9),
                        max: *delays.last().expect("non-empty"),
                    }),
                }
            })
            .collect()
    }
}

/// Nearest-rank quantile of sorted values: exact, one of the observed values.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A row of the quarantine.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedRow {
    pub received_at: Timestamp,
    /// `predictions`, `labels` or `reference`.
    pub kind: String,
    pub index: usize,
    pub request_id: Option<String>,
    pub field: String,
    pub reason: String,
    pub row: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceOutcome {
    pub version: String,
    pub rows: usize,
    pub rejected: Vec<Rejection>,
    pub schema_changes: Vec<SchemaChange>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RetentionReport {
    pub predictions_deleted: u64,
    pub labels_deleted: u64,
    pub rejected_deleted: u64,
}

/// A page of stored rows in insertion order; pass `next` back as `after` for the next page.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Where a page ends: a token a backend hands out as [`Page::next`] and reads back as `after`.
/// Its text is the backend's own and means nothing to anyone else (the embedded store's names
/// a chunk and a row in it; a distributed one would name the last row's sort key), so callers
/// pass it through unchanged, as a string. A backend refuses one it did not hand out with
/// [`StoreError::InvalidCursor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    pub fn new(token: impl Into<String>) -> Self {
        Cursor(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far a backend had seen an hour's changes when it reported the hour stale (the embedded
/// store: the generation of its mark; a backend counting changes: the hour's change count). The
/// engine passes it back unread in the write that brings the hour up to date
/// ([`StaleHour::added`], [`StaleHour::rescanned`]), so that the backend keeps the hour stale
/// when it changed again meanwhile. Made and read by backends only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seen(i64);

impl Seen {
    pub fn new(token: i64) -> Self {
        Seen(token)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// What a scan read ([`EventLog::scan_predictions`]), for a rescan's write to name
/// ([`StaleHour::rescanned`]): the embedded store's is the last hour delta of the scan's read
/// snapshot, so that exactly the additions the scan already counted are dropped. Opaque to the
/// engine; a backend without additions returns `ScanSnapshot::default()` and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanSnapshot(i64);

impl ScanSnapshot {
    pub fn new(token: i64) -> Self {
        ScanSnapshot(token)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// One event-time hour of one version whose derived state is out of date (its predictions or
/// labels changed since it was written, or it was invalidated), as
/// [`DerivedState::stale_hours`] reports it: with what to add to the hour's stored state to
/// bring it up to date, or nothing, and the hour is rescanned from the event log.
#[derive(Debug, Clone)]
pub struct StaleHour {
    /// Empty when the predictions carry no version.
    pub version: String,
    /// Start of the hour (UTC-aligned).
    pub hour: Timestamp,
    seen: Seen,
    additions: Option<Vec<Addition>>,
}

impl StaleHour {
    /// An hour to rescan: what a backend without additions reports for every stale hour.
    pub fn rescan(version: String, hour: Timestamp, seen: Seen) -> Self {
        StaleHour {
            version,
            hour,
            seen,
            additions: None,
        }
    }

    /// An hour whose every change since its state was written can be added (in this order).
    pub(crate) fn with_additions(
        version: String,
        hour: Timestamp,
        seen: Seen,
        additions: Vec<Addition>,
    ) -> Self {
        StaleHour {
            version,
            hour,
            seen,
            additions: Some(additions),
        }
    }

    /// What to add to the hour's stored state, oldest first, when every change since it was
    /// written can be added (new predictions, first labels of its predictions); `None` when
    /// the hour must be rescanned (a replaced label, a label before its prediction, retention,
    /// an invalidation; always, from a backend without additions). An hour with additions may
    /// be rescanned all the same.
    pub fn additions(&self) -> Option<&[Addition]> {
        self.additions.as_deref()
    }

    /// How far the backend had seen the hour's changes.
    pub fn seen(&self) -> Seen {
        self.seen
    }

    /// The write's answer for this hour when its [`StaleHour::additions`] were added to its
    /// stored state: a write naming an addition the backend no longer holds (another refresh
    /// added it first) is dropped whole, so an addition is never counted twice.
    pub fn added(&self) -> Refreshed {
        Refreshed {
            version: self.version.clone(),
            hour: self.hour,
            seen: self.seen,
            how: How::Added(self.additions.iter().flatten().map(|a| a.id).collect()),
        }
    }

    /// The write's answer for this hour when it was rescanned by a scan that returned
    /// `snapshot`: what the scan counted is answered, a change it did not see stays to be added
    /// (or rescanned) afterwards.
    pub fn rescanned(&self, snapshot: ScanSnapshot) -> Refreshed {
        Refreshed {
            version: self.version.clone(),
            hour: self.hour,
            seen: self.seen,
            how: How::Rescanned(snapshot),
        }
    }
}

/// One change of a stale hour that can be added to its stored state: the hour's new
/// predictions (with the caller's fold of them when ingest kept one), or first labels of its
/// predictions. Read from the backend's own record; the engine never makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Addition {
    /// The backend's id of the addition (the embedded store's hour delta).
    pub(crate) id: i64,
    /// Where the new predictions are stored, for an addition of predictions.
    pub(crate) predictions: Option<PredictionsRef>,
    /// First labels in `compact.rs` form, or the caller's fold of the new predictions.
    pub(crate) data: Vec<u8>,
}

impl Addition {
    /// The first labels this adds, each with what its prediction said (none for an addition
    /// of predictions). Decoded on demand: a refresh decodes each hour's on the core that
    /// updates it.
    pub fn labels(&self) -> Result<Vec<NewLabel>, StoreError> {
        if self.predictions.is_some() {
            return Ok(Vec::new());
        }
        compact::delta_entries(&self.data)
    }

    /// For an addition of new predictions, where they are stored: read them with
    /// [`DerivedState::scan_added_predictions`] when [`Addition::fold`] cannot be used.
    pub fn predictions(&self) -> Option<PredictionsRef> {
        self.predictions
    }

    /// For an addition of new predictions, the caller's fold of them
    /// ([`PredictionBatch::folds`]), when the ingest kept one.
    pub fn fold(&self) -> Option<&[u8]> {
        (self.predictions.is_some() && !self.data.is_empty()).then_some(&self.data[..])
    }
}

/// Where an [`Addition`]'s new predictions are stored (the embedded store: a chunk). Opaque;
/// ordered as they were stored, so that folds of an hour merge in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PredictionsRef(pub(crate) i64);

/// A stale hour a write brings up to date, and how ([`StaleHour::added`],
/// [`StaleHour::rescanned`]). A backend reads it in [`DerivedState::put_aggregate_group`].
#[derive(Debug, Clone, PartialEq)]
pub struct Refreshed {
    version: String,
    hour: Timestamp,
    seen: Seen,
    how: How,
}

#[derive(Debug, Clone, PartialEq)]
enum How {
    /// The ids of the additions added.
    Added(Vec<i64>),
    Rescanned(ScanSnapshot),
}

impl Refreshed {
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn hour(&self) -> Timestamp {
        self.hour
    }

    /// What [`StaleHour::seen`] said: a backend keeps the hour stale when it changed since.
    pub fn seen(&self) -> Seen {
        self.seen
    }

    /// The snapshot of the scan that rescanned the hour; `None` when additions were added.
    pub fn rescanned(&self) -> Option<ScanSnapshot> {
        match self.how {
            How::Rescanned(s) => Some(s),
            How::Added(_) => None,
        }
    }
}

/// A first label joined to what its prediction said, read from the prediction's index row:
/// what an [`Addition`] of labels adds to its hour.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLabel {
    /// The prediction's event time.
    pub prediction_time: Timestamp,
    pub prediction: Option<Outcome>,
    pub score: Option<f64>,
    pub scores: Option<Vec<(String, f64)>>,
    pub label: Outcome,
    /// The label's timestamp (when it became known).
    pub labelled_at: Timestamp,
    /// Whether the prediction carries the exploration tag
    /// ([`modelwatch_core::EXPLORATION_TAG`]); `None` for an index row written before the
    /// store noted it.
    pub exploration: Option<bool>,
}

/// An opaque per-hour aggregate, written and read back by the engine. The store only keys it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAggregate {
    pub version: String,
    pub hour: Timestamp,
    pub data: Vec<u8>,
}

/// One refresh's result: aggregates to write, hours now empty whose aggregates go, and the
/// stale hours this answers.
#[derive(Debug, Clone, Default)]
pub struct AggregateWrite {
    pub kind: String,
    pub put: Vec<StoredAggregate>,
    /// (version, hour) whose aggregate is deleted (the hour has no predictions left).
    pub delete: Vec<(String, Timestamp)>,
    /// The stale hours this write brings up to date ([`StaleHour::added`],
    /// [`StaleHour::rescanned`]), answered atomically with the put.
    pub refreshed: Vec<Refreshed>,
}

/// The storage interface every caller takes (`&dyn Store`): the three parts below, which a
/// backend implements one by one (ADR 018). Calls block; async callers run them on a blocking
/// thread. A method of any part is called on a `&dyn Store` as on the part itself.
pub trait Store: EventLog + Catalog + DerivedState {}

impl<T: EventLog + Catalog + DerivedState> Store for T {}

/// The event log: predictions, labels and KPI points, stored idempotently and durably, read
/// back by event-time range with their labels, in pages, as window counts; the quarantine;
/// retention. A prediction is identified by (model, request id, version): a request has at
/// most one served prediction and one shadow prediction per version (ADR 011, ADR 018); a
/// label, keyed (model, request id), joins every one of them.
pub trait EventLog: Send + Sync + 'static {
    fn ingest_predictions(
        &self,
        model: &ModelName,
        batch: PredictionBatch,
    ) -> Result<IngestOutcome, StoreError>;
    /// Fails with [`StoreError::ModelNotFound`] when the model has never been seen.
    fn ingest_labels(
        &self,
        model: &ModelName,
        batch: LabelBatch,
    ) -> Result<IngestOutcome, StoreError>;
    /// Stores KPI points of an existing model ([`StoreError::ModelNotFound`] otherwise); a
    /// point with the name and timestamp of a stored one replaces it (counted in `replaced`).
    fn ingest_kpis(
        &self,
        model: &ModelName,
        rows: Vec<(usize, KpiEvent)>,
        rejected: Vec<Quarantined>,
    ) -> Result<IngestOutcome, StoreError>;
    /// KPI points with a timestamp in `[from, to)` (of one name, or all), by name then time.
    fn kpis(
        &self,
        model: &ModelName,
        name: Option<&str>,
        range: &ScanRange,
    ) -> Result<Vec<KpiEvent>, StoreError>;
    fn window_counts(
        &self,
        model: &ModelName,
        query: &WindowQuery,
    ) -> Result<Vec<WindowCounts>, StoreError>;
    fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<PredictionEvent>, StoreError>;
    fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LabelEvent>, StoreError>;
    fn rejected(&self, model: &ModelName, limit: usize) -> Result<Vec<RejectedRow>, StoreError>;
    /// Calls `f` for every stored prediction whose event time is in `[from, to)` (and of
    /// `version`, when given), with its label when one has arrived. Order is unspecified. Work
    /// grows with the number of predictions in the range.
    ///
    /// Returns what the scan read, for a rescan's write to name ([`StaleHour::rescanned`]):
    /// a change the scan did not see stays to be added afterwards. (The embedded store reads
    /// one snapshot and names its last hour delta; a backend without additions returns
    /// `ScanSnapshot::default()`.)
    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<ScanSnapshot, StoreError>;
    /// [`EventLog::scan_predictions`] with the shadow predictions too (ADR 011): every stored
    /// prediction of the range, served or shadow (its `role` says which), each with its
    /// request's label. The challenger comparison reads it; no other report does.
    fn scan_with_shadows(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<(), StoreError>;
    /// Deletes predictions (and labels) older than each model's retention.
    fn apply_retention(&self, now: Timestamp) -> Result<RetentionReport, StoreError>;
}

/// The catalog: models and their summaries, schemas, reference datasets, retention settings.
pub trait Catalog: Send + Sync + 'static {
    fn list_models(&self) -> Result<Vec<ModelSummary>, StoreError>;
    fn model(&self, model: &ModelName) -> Result<Option<ModelSummary>, StoreError>;
    /// Declares a model's schema: later events with other features or kinds are rejected.
    fn declare_schema(&self, model: &ModelName, schema: Schema) -> Result<(), StoreError>;
    /// Replaces the reference dataset of `version` (all versions when `None`).
    fn put_reference(
        &self,
        model: &ModelName,
        version: Option<&str>,
        rows: Vec<(usize, ReferenceRow)>,
        rejected: Vec<Quarantined>,
    ) -> Result<ReferenceOutcome, StoreError>;
    fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, StoreError>;
    fn set_retention(&self, model: &ModelName, days: Option<u32>) -> Result<(), StoreError>;
}

/// Derived per-window state: opaque blobs the engine computes and keeps per (model, kind,
/// version, hour), or model-wide ([`MODEL_WIDE`]), and which hours are stale. The store only keys
/// the blobs; they are a cache of the event log, always rebuildable. How the backend knows which
/// hours are stale, and what can be added to them, is its own business (ADR 018): the embedded
/// store keeps dirty-hour marks and hour deltas written in the transaction that changes the
/// hour; a backend without deltas reports every stale hour to be rescanned.
pub trait DerivedState: Send + Sync + 'static {
    /// The aggregates of `kind` for hours in `[from, to)`, of `version` (all when `None`),
    /// ordered by hour.
    fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<StoredAggregate>, StoreError>;
    /// Aggregates whose kind starts with `reference` are derived from the reference dataset:
    /// [`Catalog::put_reference`] deletes them.
    ///
    /// Writes a refresh's aggregates and answers the stale hours it names
    /// ([`AggregateWrite::refreshed`]), atomically. An hour changed since it was reported
    /// stale stays stale; a write naming an addition already answered is dropped whole.
    fn put_aggregates(&self, model: &ModelName, write: AggregateWrite) -> Result<(), StoreError> {
        self.put_aggregate_group(model, vec![write])
    }
    /// [`DerivedState::put_aggregates`] of several kinds in one transaction (an hour's performance
    /// aggregate and drift sketch, which a label delta changes together).
    fn put_aggregate_group(
        &self,
        model: &ModelName,
        writes: Vec<AggregateWrite>,
    ) -> Result<(), StoreError>;
    /// Makes every hour that holds predictions stale, to be rescanned, so that all aggregates
    /// are rebuilt.
    fn invalidate_aggregates(&self, model: &ModelName) -> Result<(), StoreError>;
    /// Models that have stale hours (what the background refresh visits).
    fn models_with_stale_hours(&self) -> Result<Vec<ModelName>, StoreError>;
    /// The hours of `model` whose derived state is out of date, oldest first. With
    /// `with_additions`, each says what to add to its stored state ([`StaleHour::additions`]),
    /// or to rescan it; without, every hour reads as one to rescan (a caller that will rescan
    /// them all does not read the additions). An hour the engine never wrote but which holds
    /// predictions is stale: an hour without a blob reads as an hour without predictions.
    fn stale_hours(
        &self,
        model: &ModelName,
        with_additions: bool,
    ) -> Result<Vec<StaleHour>, StoreError>;
    /// Visits the new predictions stored where `stored` say ([`Addition::predictions`]),
    /// without their labels (which come as additions of their own), each with where it was
    /// stored. Predictions deleted since (retention) are skipped. Only a backend that reports
    /// additions of predictions is asked.
    fn scan_added_predictions(
        &self,
        model: &ModelName,
        stored: &[PredictionsRef],
        f: &mut dyn FnMut(PredictionsRef, &PredictionEvent),
    ) -> Result<(), StoreError>;
}

/// The "hour" of an aggregate that is model-wide rather than per hour (a task decision, a
/// reference's baseline): retention never deletes it.
pub const MODEL_WIDE: Timestamp = Timestamp(i64::MIN);

/// Length of the hours that aggregates are kept for, in microseconds.
pub const HOUR_MICROS: i64 = 3_600_000_000;

/// Start of the UTC hour holding `ts` (microseconds).
pub fn hour_of(ts: i64) -> i64 {
    ts - ts.rem_euclid(HOUR_MICROS)
}

/// Which predictions [`EventLog::scan_predictions`] visits.
#[derive(Debug, Clone, Default)]
pub struct ScanRange {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
}
