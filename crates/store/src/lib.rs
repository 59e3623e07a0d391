//! Storage of prediction events, labels, reference datasets and rejected rows.
//!
//! [`Store`] is the interface every caller takes, made of the parts a backend implements
//! ([`EventLog`], [`Catalog`], [`DerivedState`], [`HourChanges`]; ADR 018); [`SqliteStore`] is
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
mod sqlite;

pub use cancel::run_cancellable;
pub use sqlite::{
    check_data_dir, decode_stored, encode_line, CheckReport, GatheredPredictions, PendingLabels,
    PendingPredictions, SqliteStore,
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
    /// were parsed (opaque to the store). Kept in the hour's delta when every row of that hour
    /// was stored as new, so that a refresh need not decode the chunk.
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

/// One event-time hour of one version whose predictions or labels changed since its aggregates
/// were last written. `generation` grows with every change, so that a refresh clears only the
/// marks it has seen (a change racing with the refresh leaves the hour dirty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyHour {
    /// Empty when the predictions carry no version.
    pub version: String,
    /// Start of the hour (UTC-aligned).
    pub hour: Timestamp,
    pub generation: i64,
    /// Every change since the hour's aggregates were written (or since it had none) is new
    /// predictions or first labels for its predictions, each recorded in an [`HourDelta`]: the
    /// aggregates can be brought up to date by adding those, without a rescan. False once
    /// anything else changed the hour (a replaced label, a label that arrived before its
    /// prediction, retention); its deltas are then dropped.
    pub deltas_only: bool,
}

/// What one ingest added to one hour, written in the same transaction as the rows and the
/// hour's mark: either the hour's new predictions in one chunk ([`HourDelta::chunk`]; read
/// with [`HourChanges::scan_chunks`], their labels come as label deltas) or first labels of its
/// predictions ([`HourDelta::labels`]). Applied to the stored aggregates by a refresh, which
/// deletes the delta (`AggregateWrite::applied`) in the transaction that writes the result.
#[derive(Debug, Clone, PartialEq)]
pub struct HourDelta {
    pub id: i64,
    pub version: String,
    pub hour: Timestamp,
    /// The chunk holding the hour's new predictions, for a delta of predictions.
    pub chunk: Option<i64>,
    /// The labels in their stored form, decoded by [`HourDelta::labels`] (a refresh decodes
    /// each hour's on the core that updates it); for a delta of predictions, the caller's fold
    /// of them, or empty.
    pub(crate) data: Vec<u8>,
}

impl HourDelta {
    /// The first labels of a label delta (none for a delta of predictions).
    pub fn labels(&self) -> Result<Vec<NewLabel>, StoreError> {
        if self.chunk.is_some() {
            return Ok(Vec::new());
        }
        compact::delta_entries(&self.data)
    }

    /// For a delta of predictions, the caller's fold of them ([`PredictionBatch::folds`]),
    /// when the ingest kept one.
    pub fn fold(&self) -> Option<&[u8]> {
        (self.chunk.is_some() && !self.data.is_empty()).then_some(&self.data[..])
    }
}

/// A first label joined to what its prediction said, read from the prediction's index row.
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
/// dirty marks this answers.
#[derive(Debug, Clone, Default)]
pub struct AggregateWrite {
    pub kind: String,
    pub put: Vec<StoredAggregate>,
    /// (version, hour) whose aggregate is deleted (the hour has no predictions left).
    pub delete: Vec<(String, Timestamp)>,
    pub clear: Vec<DirtyHour>,
    /// For a rescan: the last delta id of the scan's snapshot (see
    /// [`EventLog::scan_predictions`]). The cleared hours' deltas up to it are deleted, and a mark
    /// changed since it was read becomes deltas-only, unless a change needing a rescan came.
    pub rescanned_through: Option<i64>,
    /// Ids of the [`HourDelta`]s folded into `put`: deleted with the write. A write that
    /// names a delta no longer stored (another refresh applied it first) is skipped whole, so
    /// a delta is never added twice.
    pub applied: Vec<i64>,
}

/// The storage interface every caller takes (`&dyn Store`): the four parts below, which a
/// backend implements one by one (ADR 018). Calls block; async callers run them on a blocking
/// thread. A method of any part is called on a `&dyn Store` as on the part itself.
pub trait Store: EventLog + Catalog + DerivedState + HourChanges {}

impl<T: EventLog + Catalog + DerivedState + HourChanges> Store for T {}

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
    /// Reads one snapshot of the store, and returns the id of the last [`HourDelta`] in it: a
    /// rescan's write names it (`AggregateWrite::rescanned_through`) so that exactly the
    /// deltas the scan already saw are deleted. Delta ids therefore only grow and are never
    /// handed out again, even once the newest deltas are deleted: a delta recorded after the
    /// snapshot always has a larger id.
    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<i64, StoreError>;
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
/// version, hour), or model-wide ([`MODEL_WIDE`]). The store only keys them; they are a cache of
/// the event log, always rebuildable.
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
    /// Writes a refresh's aggregates and clears the marks it answers, atomically. A mark whose
    /// generation changed since it was read is kept.
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
    /// Marks every hour that holds predictions dirty, so that all aggregates are rebuilt.
    fn invalidate_aggregates(&self, model: &ModelName) -> Result<(), StoreError>;
}

/// What changed since each hour's derived state was written: the embedded store's protocol of
/// dirty-hour marks (with generations) and hour deltas, which the engine's refresh drives
/// (ADR 003). The store marks an hour dirty in the same transaction that changes its
/// predictions or labels, so a crash can never leave an aggregate stale without its mark. It
/// is SQLite's own way of keeping the hours fresh, not a part every backend shares: ADR 018
/// says how another backend answers it (no marks and no deltas: every query then reads the
/// raw events) and how it is meant to move behind [`DerivedState`].
pub trait HourChanges: Send + Sync + 'static {
    /// Models that have dirty hours.
    fn models_with_dirty_hours(&self) -> Result<Vec<ModelName>, StoreError>;
    /// Hours whose aggregates are out of date, oldest first.
    fn dirty_hours(&self, model: &ModelName) -> Result<Vec<DirtyHour>, StoreError>;
    /// The hour deltas of `model` not yet applied, oldest first.
    fn hour_deltas(&self, model: &ModelName) -> Result<Vec<HourDelta>, StoreError>;
    /// Visits the predictions stored in `chunks` (ids of [`HourDelta::chunk`]), without
    /// their labels, each with its chunk's id. A chunk deleted since (retention) is skipped.
    fn scan_chunks(
        &self,
        model: &ModelName,
        chunks: &[i64],
        f: &mut dyn FnMut(i64, &PredictionEvent),
    ) -> Result<(), StoreError>;
    /// Turns deltas-only marks into full ones (a new generation, their deltas dropped), for
    /// hours a refresh must rescan rather than update: a label arriving during the rescan then
    /// only marks the hour again, it never leaves a delta the rescan has already counted.
    fn mark_for_rescan(&self, model: &ModelName, hours: &[DirtyHour]) -> Result<(), StoreError>;
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
