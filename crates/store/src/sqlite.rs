//! The embedded backend: one SQLite database in WAL mode inside the data directory.
//!
//! Writes go through one writer thread that owns the only write connection. It takes every job
//! queued at that moment into one transaction (group commit), so one fsync serves many
//! concurrent ingest requests; a job that fails after writing rolls its group back, and the
//! group's jobs run again one per transaction, so that it is rolled back alone
//! (`Writer::commit_group`). A job's caller gets its answer only after the commit has returned with
//! `synchronous=FULL`, i.e. after the WAL is fsynced: what is acknowledged survives a kill -9 or
//! a power cut. Reads use a small pool of read-only connections and never block the writer.
//! See docs/adr/001-embedded-storage.md for the measurements behind this design.
//!
//! The code is in rooms, one concern each (`sqlite/*.rs`, each opening with what it holds and
//! its invariants):
//!
//! | room | what it holds |
//! |---|---|
//! | `open` | the directory's locks, the writer's connection and settings, `migrate`, the checkpointer, a clean close |
//! | `guard` | telling a new data directory from a damaged one before SQLite opens anything; `modelwatch check` |
//! | `writer` | jobs, the writer thread and group commit, answers after the commit |
//! | `chunks` | a batch's events encoded and compressed into chunks (the SQL table `segments`), and read back |
//! | `catalog` | models, their schema and its check of incoming rows, reference datasets, model summaries |
//! | `quarantine` | rejected rows and their text |
//! | `json` | values kept as JSON text in SQL columns |
//! | `predictions` | storing a prediction batch: de-duplication, index rows, chunks, shadow predictions |
//! | `buckets` | the request index's buckets and their xor filters (ADR 005) |
//! | `labels` | storing labels and joining them to their predictions' hours |
//! | `kpis` | business KPI points |
//! | `changes` | dirty-hour marks, hour deltas and the aggregate rows: this backend's cache protocol |
//! | `retention` | the retention setting, the read cutoff, the deletions |
//! | `reads` | the reader pool, the event-time scan with labels, window counts, pages |
//!
//! This file keeps the store's struct, the schema's steps and the impls of the `Store` trait's
//! parts ([`EventLog`], [`Catalog`], [`DerivedState`]). A write
//! queues a job (`writer`); a read's body is an inherent method of the same name in its room,
//! which the impls call as `SqliteStore::name(self, ..)` (an inherent method is found before
//! the trait's, so this is not a recursion: if the room's method went, rustc's
//! `unconditional_recursion` lint would say so).

use crate::compact;
use crate::rows::{repeated_rejection, QUARANTINE_RETENTION_DAYS};
use crate::{
    hour_of, Addition, AggregateWrite, Catalog, Cursor, DerivedState, EventLog, HourFold, How,
    IngestOutcome, LabelBatch, ModelSummary, Page, PredictionBatch, PredictionsRef, Quarantined,
    ReferenceOutcome, ReferenceSummary, RejectedRow, RetentionReport, ScanRange, ScanSnapshot,
    Seen, StaleHour, StoreError, StoredAggregate, VersionSummary, WindowCounts, WindowQuery,
    WindowTally, HOUR_MICROS, MODEL_WIDE,
};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use modelwatch_core::{
    parse_prediction_row, FeatureIndex, FeatureName, FeatureSpec, FeatureValue, IngestLimits,
    KpiEvent, LabelEvent, ModelName, Outcome, Pairs, PredictionEvent, ReferenceRow, Rejection,
    Schema, SchemaChange, Timestamp, DEFAULT_MAX_FEATURES_PER_MODEL,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

mod buckets;
use buckets::{id_hash, Buckets, Filters, BUCKET_ROWS, GROUP_BUCKETS};
mod guard;
pub use guard::{check as check_data_dir, CheckReport};
mod gathered;
use gathered::{Lines, Rows, SlimRows};

// The rooms, in the order a prediction meets them. Each starts with what it holds and its
// invariants, and sees this module's imports and every other room's items (`use super::*`).
mod open;
use open::*;
mod writer;
use writer::*;
pub use writer::{PendingLabels, PendingPredictions};
mod chunks;
use chunks::*;
pub use chunks::{decode_stored, encode_line, GatheredPredictions};
mod catalog;
use catalog::*;
mod quarantine;
use quarantine::*;
mod json;
use json::*;
mod predictions;
use predictions::*;
mod labels;
use labels::*;
mod kpis;
use kpis::*;
mod changes;
use changes::*;
pub use changes::{PendingChanges, PendingDelta, PendingMark};
mod retention;
use retention::*;
mod reads;
// Nothing but the reads room uses its batch size; the tests size their scans by it.
#[cfg(test)]
use reads::SCAN_LABEL_BATCH;

const SCHEMA_VERSION: i64 = 9;

/// The embedded store. Cheap to share behind an `Arc`; dropping it stops the writer after it
/// has committed every queued job.
pub struct SqliteStore {
    dir: PathBuf,
    jobs: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    /// Counts commits that deleted request-index rows (retention), shared with the writer.
    deletions: Arc<AtomicU64>,
    /// Most features a model's rows may give it, shared with the writer.
    max_features: Arc<AtomicUsize>,
    /// The closed request buckets' filters, shared with the writer.
    filters: Arc<Filters>,
    readers: Mutex<Vec<Connection>>,
    // Held for the store's lifetime: the OS releases the locks if the process dies. The data
    // directory itself is locked (a file in it can be deleted, letting a second process in);
    // `LOCK` too, for the versions that locked only it.
    _lock: File,
    _dir_lock: File,
}

/// The schema's steps in order: step `i` brings a store of version `i` to version `i + 1`.
/// A new schema version appends its file here and bumps `SCHEMA_VERSION`.
const SCHEMA_STEPS: [&str; SCHEMA_VERSION as usize] = [
    include_str!("schema.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
];

impl EventLog for SqliteStore {
    fn ingest_predictions(
        &self,
        model: &ModelName,
        batch: PredictionBatch,
    ) -> Result<IngestOutcome, StoreError> {
        self.submit_predictions(model, batch)?.wait()
    }

    fn ingest_labels(
        &self,
        model: &ModelName,
        batch: LabelBatch,
    ) -> Result<IngestOutcome, StoreError> {
        self.submit_labels(model, batch)?.wait()
    }

    fn ingest_kpis(
        &self,
        model: &ModelName,
        rows: Vec<(usize, KpiEvent)>,
        rejected: Vec<Quarantined>,
    ) -> Result<IngestOutcome, StoreError> {
        self.submit(|reply| Job::Kpis(model.clone(), rows, rejected, reply))
    }

    fn kpis(
        &self,
        model: &ModelName,
        name: Option<&str>,
        range: &ScanRange,
    ) -> Result<Vec<KpiEvent>, StoreError> {
        SqliteStore::kpis(self, model, name, range)
    }

    fn window_counts(
        &self,
        model: &ModelName,
        query: &WindowQuery,
    ) -> Result<Vec<WindowCounts>, StoreError> {
        SqliteStore::window_counts(self, model, query)
    }

    fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<PredictionEvent>, StoreError> {
        SqliteStore::predictions(self, model, after, limit)
    }

    fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<LabelEvent>, StoreError> {
        SqliteStore::labels(self, model, after, limit)
    }

    fn rejected(&self, model: &ModelName, limit: usize) -> Result<Vec<RejectedRow>, StoreError> {
        SqliteStore::rejected(self, model, limit)
    }

    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<ScanSnapshot, StoreError> {
        self.scan(model, range, false, f).map(ScanSnapshot::new)
    }

    fn scan_with_shadows(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<(), StoreError> {
        self.scan(model, range, true, f).map(|_| ())
    }

    fn apply_retention(&self, now: Timestamp) -> Result<RetentionReport, StoreError> {
        self.submit(|r| Job::ApplyRetention(now, r))
    }
}

impl Catalog for SqliteStore {
    fn list_models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        SqliteStore::list_models(self)
    }

    fn model(&self, model: &ModelName) -> Result<Option<ModelSummary>, StoreError> {
        SqliteStore::model(self, model)
    }

    fn declare_schema(&self, model: &ModelName, schema: Schema) -> Result<(), StoreError> {
        let model = model.clone();
        self.submit(|r| Job::DeclareSchema(model, schema, r))
    }

    fn put_reference(
        &self,
        model: &ModelName,
        version: Option<&str>,
        rows: Vec<(usize, ReferenceRow)>,
        rejected: Vec<Quarantined>,
    ) -> Result<ReferenceOutcome, StoreError> {
        let model = model.clone();
        let version = version.unwrap_or("").to_string();
        self.submit(|reply| Job::Reference {
            model,
            version,
            rows,
            rejected,
            reply,
        })
    }

    fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, StoreError> {
        SqliteStore::reference_rows(self, model, version)
    }

    fn set_retention(&self, model: &ModelName, days: Option<u32>) -> Result<(), StoreError> {
        let model = model.clone();
        self.submit(|r| Job::SetRetention(model, days, r))
    }
}

impl DerivedState for SqliteStore {
    fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<StoredAggregate>, StoreError> {
        SqliteStore::aggregates(self, model, kind, range)
    }

    fn put_aggregate_group(
        &self,
        model: &ModelName,
        writes: Vec<AggregateWrite>,
    ) -> Result<(), StoreError> {
        self.submit(|reply| Job::PutAggregates(model.clone(), writes, reply))
    }

    fn invalidate_aggregates(&self, model: &ModelName) -> Result<(), StoreError> {
        self.submit(|reply| Job::InvalidateAggregates(model.clone(), reply))
    }

    fn models_with_stale_hours(&self) -> Result<Vec<ModelName>, StoreError> {
        SqliteStore::models_with_dirty_hours(self)
    }

    fn stale_hours(
        &self,
        model: &ModelName,
        with_additions: bool,
    ) -> Result<Vec<StaleHour>, StoreError> {
        SqliteStore::stale_hours(self, model, with_additions)
    }

    fn scan_added_predictions(
        &self,
        model: &ModelName,
        stored: &[PredictionsRef],
        f: &mut dyn FnMut(PredictionsRef, &PredictionEvent),
    ) -> Result<(), StoreError> {
        let chunks: Vec<i64> = stored.iter().map(|s| s.0).collect();
        self.scan_chunks(model, &chunks, &mut |chunk, p| f(PredictionsRef(chunk), p))
    }
}

#[cfg(test)]
mod tests;
