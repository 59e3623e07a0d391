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

use crate::compact;
use crate::{
    hour_of, AggregateWrite, DelayQuantiles, DirtyHour, HourDelta, HourFold, IngestOutcome,
    LabelBatch, ModelSummary, Page, PredictionBatch, Quarantined, ReferenceOutcome,
    ReferenceSummary, RejectedRow, RetentionReport, ScanRange, Store, StoreError, StoredAggregate,
    VersionSummary, WindowCounts, WindowQuery, HOUR_MICROS, MODEL_WIDE,
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

const DB_FILE: &str = "modelwatch.db";
const LOCK_FILE: &str = "LOCK";
const SCHEMA_VERSION: i64 = 9;
// Chunks (each job's compressed events) live in the table `segments`, and the columns that point
// at one are `segment_id` (`request_index`, `hour_deltas`): the SQL names predate the word chunk
// ("segment" now means a slice of traffic by feature or tag value) and are kept so that every
// existing data directory opens as it is, with no migration to run and none to undo.
/// Upper bound on rows in one group commit: bounds the latency a large import adds to a small
/// concurrent request, and the WAL growth between checkpoints.
const MAX_ROWS_PER_COMMIT: usize = 200_000;
/// Longest row text kept in quarantine; longer rows are cut (the reason is kept whole).
const MAX_QUARANTINE_ROW_BYTES: usize = 16 * 1024;
/// Quarantined rows older than this are deleted by retention, whatever the model's setting.
const QUARANTINE_RETENTION_DAYS: i64 = 30;
const READ_POOL_SIZE: usize = 4;
/// Page size of a new database. Every commit of many events rewrites most pages of the
/// random-keyed request index however small they are (ADR 001), and the WAL writes a page as a
/// frame of two system calls: 16 KiB pages write the same bytes in a quarter of the frames. On
/// the 1M-row import the writer and the checkpointer used 1.1 s less CPU than with 4 KiB, and
/// ingest over HTTP went from 107-111k to 132-135k events/s; 32 and 64 KiB did little better.
const PAGE_SIZE: i64 = 16_384;
/// How the writer's connection uses memory and when it checkpoints by itself.
struct WriterSettings {
    /// Page cache, in KiB.
    cache_kib: i64,
    /// WAL size in MiB at which the writer checkpoints by itself; 0 for never.
    checkpoint_mib: i64,
    /// Rows of a request bucket before it is closed ([`BUCKET_ROWS`]; tests use tiny buckets).
    bucket_rows: i64,
    /// Closed buckets per group filter ([`GROUP_BUCKETS`]).
    group_buckets: i64,
}

impl WriterSettings {
    /// A service's: a 64 MiB page cache, so that its memory stays flat however much it stores
    /// (the request index is hit at random positions and would fill any cache); the writer
    /// checkpoints itself past 64 MiB of WAL, a safety net for when the checkpointer cannot
    /// keep up.
    const SERVICE: WriterSettings = WriterSettings {
        cache_kib: 65_536,
        checkpoint_mib: 64,
        bucket_rows: BUCKET_ROWS,
        group_buckets: GROUP_BUCKETS,
    };
    /// A bulk import's (`SqliteStore::open_for_import`), a process that ends with the import:
    /// the request index of a 1M-row import (73 MB, most of it rewritten by every 131k-row
    /// commit) stays in the cache (with 64 MiB the writer spent 0.3 s more in the kernel
    /// reading pages back, with 256 MiB no less than with 128 MiB), and checkpoints are left to
    /// the checkpointer thread: each late commit of such an import writes about 100 MB of WAL,
    /// so the service's threshold made the writer checkpoint after every commit, on the
    /// import's critical path.
    const IMPORT: WriterSettings = WriterSettings {
        cache_kib: 131_072,
        checkpoint_mib: 0,
        bucket_rows: BUCKET_ROWS,
        group_buckets: GROUP_BUCKETS,
    };
}

/// zstd level for chunks: level 1 compresses event JSON about 4x at several hundred MB/s, so
/// the disk writes (WAL, then checkpoint) stay well under the disk's bandwidth.
const CHUNK_ZSTD_LEVEL: i32 = 1;
/// Level 1's hash table for 1 MiB frames has 2^14 entries; 2^11 compresses event NDJSON both
/// faster and smaller (`zstd -b1 --zstd=hlog=11` on 1 MiB of chunk: 362 -> 427 MB/s and
/// 3.58 -> 3.95 times on the peers' rows, 370 -> 434 MB/s and 3.59 -> 4.07 times on the load
/// generator's). A smaller table keeps the most recent occurrence of each short sequence, and
/// in NDJSON the best match for a field name is the previous row's. Readers are unaffected.
const CHUNK_ZSTD_HASH_LOG: u32 = 11;
/// Most events in one chunk: bounds the memory a reader needs to decode one, and keeps row
/// offsets within the pagination cursor's 20 bits.
const CHUNK_MAX_ROWS: usize = 65_536;

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

/// Where a job's answer goes, and the answer itself while the fate of the job's transaction is
/// not known. `Sent` is what the caller gets on success: the job's result (`T`), or for
/// predictions the result and the batch, to be freed on the caller's thread.
struct Reply<T, Sent = T> {
    to: Sender<Result<Sent, StoreError>>,
    result: Option<Result<T, StoreError>>,
}

impl<T, Sent> Reply<T, Sent> {
    /// Keeps the result of running the job (replacing that of a run rolled back with its
    /// group). Returns whether the job succeeded.
    fn keep(&mut self, result: Result<T, StoreError>) -> bool {
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    /// Answers the caller once the transaction has committed or failed: the kept result, or the
    /// commit's failure. `with` makes what is sent from a successful result.
    fn send(self, committed: &Result<(), CommitFailure>, with: impl FnOnce(T) -> Sent) {
        let out = match committed {
            // Every job of a transaction that committed has run.
            Ok(()) => self.result.unwrap_or(Err(StoreError::WriterGone)).map(with),
            Err(e) => Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(e.code),
                Some(format!("commit failed: {}", e.message)),
            ))),
        };
        let _ = self.to.send(out);
    }
}

/// Why a group's transaction did not commit, told to each of its jobs: SQLite's (extended)
/// result code, so that a full disk stays a full disk for the caller, and its message.
struct CommitFailure {
    code: std::ffi::c_int,
    message: String,
}

impl From<rusqlite::Error> for CommitFailure {
    fn from(e: rusqlite::Error) -> Self {
        CommitFailure {
            code: e
                .sqlite_error()
                .map_or(rusqlite::ffi::SQLITE_IOERR, |f| f.extended_code),
            message: e.to_string(),
        }
    }
}

/// A queued job's answer, sent once the transaction holding it has committed (or failed).
struct Pending<T>(Receiver<Result<T, StoreError>>);

impl<T> Pending<T> {
    fn wait(self) -> Result<T, StoreError> {
        self.0.recv().map_err(|_| StoreError::WriterGone)?
    }
}

/// A prediction batch handed to the writer by [`SqliteStore::submit_predictions`].
pub struct PendingPredictions {
    served: Pending<(IngestOutcome, PredictionBatch)>,
    /// Names the job for the labels of its rows.
    job: u64,
    /// The batch's shadow predictions, stored by a job of their own (ADR 011).
    shadow: Option<Pending<IngestOutcome>>,
}

impl PendingPredictions {
    /// Blocks until the batch is committed (durable) or has failed. The batch's events are freed
    /// on the calling thread. A batch with shadow predictions is answered once both of its
    /// jobs have committed: a failure of either fails the batch, whose retry is idempotent.
    pub fn wait(self) -> Result<IngestOutcome, StoreError> {
        let served = self
            .served
            .wait()
            .map(|(outcome, _batch_freed_here)| outcome);
        let Some(shadow) = self.shadow else {
            return served;
        };
        let shadow = shadow.wait();
        let (mut out, shadow) = (served?, shadow?);
        out.accepted += shadow.accepted;
        out.duplicates += shadow.duplicates;
        out.rejected.extend(shadow.rejected);
        out.rejected.sort_by_key(|r| r.index);
        for change in shadow.schema_changes {
            if !out
                .schema_changes
                .iter()
                .any(|c| c.feature == change.feature)
            {
                out.schema_changes.push(change);
            }
        }
        Ok(out)
    }
}

/// A label batch handed to the writer by [`SqliteStore::submit_labels`].
pub struct PendingLabels(Pending<IngestOutcome>);

impl PendingLabels {
    /// Blocks until the batch is committed (durable) or has failed.
    pub fn wait(self) -> Result<IngestOutcome, StoreError> {
        self.0.wait()
    }
}

enum Job {
    /// The batch comes back with the answer, so that freeing its events (tens of thousands of
    /// small strings) happens on the caller's thread, not on the single writer's.
    Predictions(
        ModelName,
        PredictionBatch,
        Encoded,
        Reply<IngestOutcome, (IngestOutcome, PredictionBatch)>,
    ),
    /// A batch's shadow predictions (rows with their index in the client's batch).
    Shadow(
        ModelName,
        Vec<(usize, PredictionEvent)>,
        Reply<IngestOutcome>,
    ),
    /// A label batch, the caller's lookups of its predictions, and (for the labels of a file's
    /// prediction rows) the predictions job whose rows they are
    /// ([`SqliteStore::submit_gathered_with_labels`]).
    Labels(
        ModelName,
        LabelBatch,
        Option<Found>,
        Option<u64>,
        Reply<IngestOutcome>,
    ),
    Kpis(
        ModelName,
        Vec<(usize, KpiEvent)>,
        Vec<Quarantined>,
        Reply<IngestOutcome>,
    ),
    Reference {
        model: ModelName,
        version: String,
        rows: Vec<(usize, ReferenceRow)>,
        rejected: Vec<Quarantined>,
        reply: Reply<ReferenceOutcome>,
    },
    DeclareSchema(ModelName, Schema, Reply<()>),
    SetRetention(ModelName, Option<u32>, Reply<()>),
    ApplyRetention(Timestamp, Reply<RetentionReport>),
    PutAggregates(ModelName, Vec<AggregateWrite>, Reply<()>),
    MarkForRescan(ModelName, Vec<(String, i64)>, Reply<()>),
    InvalidateAggregates(ModelName, Reply<()>),
}

impl Job {
    /// Answers the caller once the job's transaction has committed or failed.
    fn answer(self, committed: &Result<(), CommitFailure>) {
        match self {
            Job::Predictions(_, batch, _, reply) => reply.send(committed, |out| (out, batch)),
            Job::Labels(.., reply) | Job::Kpis(.., reply) | Job::Shadow(.., reply) => {
                reply.send(committed, |out| out)
            }
            Job::Reference { reply, .. } => reply.send(committed, |out| out),
            Job::ApplyRetention(_, reply) => reply.send(committed, |out| out),
            Job::DeclareSchema(.., reply)
            | Job::SetRetention(.., reply)
            | Job::PutAggregates(.., reply)
            | Job::MarkForRescan(.., reply)
            | Job::InvalidateAggregates(_, reply) => reply.send(committed, |()| ()),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Job::Predictions(_, b, _, _) => b.rows.len() + b.rejected.len(),
            Job::Labels(_, b, ..) => b.rows.len() + b.rejected.len(),
            Job::Shadow(_, rows, _) => rows.len(),
            Job::Kpis(_, rows, rejected, _) => rows.len() + rejected.len(),
            Job::Reference { rows, .. } => rows.len(),
            Job::PutAggregates(_, w, _) => w.iter().map(|w| w.put.len() + w.clear.len()).sum(),
            Job::MarkForRescan(_, hours, _) => hours.len(),
            _ => 1,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`. Fails with [`StoreError::Locked`] when
    /// another process has it open.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, WriterSettings::SERVICE)
    }

    /// [`SqliteStore::open`] for a process that bulk-loads the store and ends: the writer takes
    /// more memory (a 128 MiB page cache instead of 64 MiB) and leaves every checkpoint to the
    /// checkpointer thread. What is stored and when it is durable do not change.
    pub fn open_for_import(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, WriterSettings::IMPORT)
    }

    /// [`SqliteStore::open`] with request buckets of `rows` rows instead of [`BUCKET_ROWS`],
    /// grouped by 4 instead of [`GROUP_BUCKETS`]: for tests, which need many buckets and
    /// groups from few events.
    #[doc(hidden)]
    pub fn open_with_bucket_rows(dir: impl AsRef<Path>, rows: i64) -> Result<Self, StoreError> {
        Self::open_with(
            dir,
            WriterSettings {
                bucket_rows: rows,
                group_buckets: 4,
                ..WriterSettings::SERVICE
            },
        )
    }

    fn open_with(dir: impl AsRef<Path>, settings: WriterSettings) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let dir_lock = File::open(&dir).map_err(io)?;
        let lock = File::create(dir.join(LOCK_FILE)).map_err(io)?;
        for l in [&dir_lock, &lock] {
            match l.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked {
                        dir: dir.display().to_string(),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        // Before SQLite is asked to open anything: it would create an empty database over a
        // deleted or emptied one.
        let inspection = guard::inspect(&dir)?;
        let db = dir.join(DB_FILE);
        let conn = guard::corrupt_is_damage(&dir, configure(&db, &settings, inspection.existing))?;
        let created_at = inspection.marker.map(|m| m.created_at);
        guard::write_marker(&dir, &guard::new_marker(guard::State::Open, created_at))?;
        let checkpoints = Connection::open(&db)?;
        checkpoints.pragma_update(None, "synchronous", "FULL")?;

        let (tx, rx) = bounded::<Job>(256);
        let (committed, commits) = bounded::<()>(1);
        let deletions = Arc::new(AtomicU64::new(0));
        let max_features = Arc::new(AtomicUsize::new(DEFAULT_MAX_FEATURES_PER_MODEL));
        let filters = Arc::new(Filters::default());
        let writer = {
            let writer = Writer {
                conn,
                models: HashMap::new(),
                committed,
                stored: None,
                shared: WriterShared {
                    deletions: Arc::clone(&deletions),
                    filters: Arc::clone(&filters),
                    bucket_rows: settings.bucket_rows,
                    group_buckets: settings.group_buckets,
                    max_features: Arc::clone(&max_features),
                },
            };
            std::thread::Builder::new()
                .name("modelwatch-writer".into())
                .spawn(move || writer.run(rx))
                .map_err(io)?
        };
        let checkpointer = std::thread::Builder::new()
            .name("modelwatch-checkpoint".into())
            .spawn(move || checkpoint_after_commits(checkpoints, commits))
            .map_err(io)?;
        Ok(SqliteStore {
            dir,
            jobs: Some(tx),
            writer: Some(writer),
            checkpointer: Some(checkpointer),
            deletions,
            max_features,
            filters,
            readers: Mutex::new(Vec::new()),
            _lock: lock,
            _dir_lock: dir_lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Most features a model's rows may give it (default
    /// [`DEFAULT_MAX_FEATURES_PER_MODEL`]): a row that would add one more is refused, naming
    /// the feature and the limit, and the model's known features keep being accepted. Applies
    /// to the jobs the writer starts after the call; a schema that is already wider keeps its
    /// features.
    pub fn set_max_features_per_model(&self, max: usize) {
        self.max_features.store(max, Ordering::Relaxed);
    }

    fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        self.enqueue(make)?.wait()
    }

    fn enqueue<T, Sent>(
        &self,
        make: impl FnOnce(Reply<T, Sent>) -> Job,
    ) -> Result<Pending<Sent>, StoreError> {
        let (tx, rx) = bounded(1);
        let jobs = self.jobs.as_ref().ok_or(StoreError::WriterGone)?;
        let reply = Reply {
            to: tx,
            result: None,
        };
        jobs.send(make(reply)).map_err(|_| StoreError::WriterGone)?;
        Ok(Pending(rx))
    }

    /// [`Store::ingest_predictions`] without waiting: the batch is encoded on this thread and
    /// queued for the writer, and the returned handle answers once its commit is done. A bulk
    /// loader keeps one batch queued while the writer stores the previous one, so that encoding
    /// and writing overlap; jobs are committed in the order they were queued.
    pub fn submit_predictions(
        &self,
        model: &ModelName,
        mut batch: PredictionBatch,
    ) -> Result<PendingPredictions, StoreError> {
        let shadow = take_shadows(&mut batch);
        let mut chunks = ChunkEncoder::with_capacity(batch.rows.len());
        for (position, (_, e)) in batch.rows.iter().enumerate() {
            let sent = batch.verbatim.as_ref().and_then(|v| v.row(position));
            chunks.push(e, sent)?;
        }
        let mut pending = self.submit_gathered(model, GatheredPredictions { batch, chunks })?;
        if !shadow.is_empty() {
            let model = model.clone();
            pending.shadow = Some(self.enqueue(|r| Job::Shadow(model, shadow, r))?);
        }
        Ok(pending)
    }

    /// [`SqliteStore::submit_predictions`] of a batch gathered piece by piece, whose chunks
    /// were encoded as the pieces arrived.
    pub fn submit_gathered(
        &self,
        model: &ModelName,
        gathered: GatheredPredictions,
    ) -> Result<PendingPredictions, StoreError> {
        self.submit_gathered_as(model, gathered, false)
    }

    fn submit_gathered_as(
        &self,
        model: &ModelName,
        gathered: GatheredPredictions,
        labels_follow: bool,
    ) -> Result<PendingPredictions, StoreError> {
        let model = model.clone();
        let GatheredPredictions { batch, chunks } = gathered;
        let mut encoded = Encoded::new(&batch.rows, chunks.finish()?);
        encoded.labels_follow = labels_follow;
        let job = encoded.job;
        self.enqueue(|r| Job::Predictions(model, batch, encoded, r))
            .map(|served| PendingPredictions {
                served,
                job,
                shadow: None,
            })
    }

    /// [`Store::ingest_labels`] without waiting; see [`SqliteStore::submit_predictions`].
    pub fn submit_labels(
        &self,
        model: &ModelName,
        mut batch: LabelBatch,
    ) -> Result<PendingLabels, StoreError> {
        let model = model.clone();
        sort_labels(&mut batch);
        let found = self.find_label_predictions(&model, &batch)?;
        self.enqueue(|r| Job::Labels(model, batch, found, None, r))
            .map(PendingLabels)
    }

    /// [`SqliteStore::submit_gathered`], then the labels read from the same rows (a
    /// predictions file with a label column), queued right after them with no lookup on this
    /// thread: the writer joins each label to the prediction of its row as the predictions job
    /// stored it, when that job stored every row of its batch as new (the index then holds
    /// exactly those rows); otherwise (a re-import, duplicates, refused rows) it looks them up
    /// as for any label batch.
    pub fn submit_gathered_with_labels(
        &self,
        model: &ModelName,
        gathered: GatheredPredictions,
        mut labels: LabelBatch,
    ) -> Result<(PendingPredictions, PendingLabels), StoreError> {
        let predictions = self.submit_gathered_as(model, gathered, true)?;
        sort_labels(&mut labels);
        let (model, job) = (model.clone(), predictions.job);
        let labels = self
            .enqueue(|r| Job::Labels(model, labels, None, Some(job), r))
            .map(PendingLabels)?;
        Ok((predictions, labels))
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    self.dir.join(DB_FILE),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c
            }
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().expect("reader pool poisoned");
        if pool.len() < READ_POOL_SIZE {
            pool.push(conn);
        }
        out
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued, then exit.
        self.jobs.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        // The writer held the checkpointer's channel: it is closed now.
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
        // The last connection to close checkpoints the WAL into the database; only then may the
        // marker say `closed` (a missing WAL is damage while it says `open`).
        self.readers.lock().map(|mut r| r.clear()).ok();
        if let Err(e) = guard::mark_closed(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not mark the store closed");
        }
    }
}

/// Opens the writer's connection to `db` with the store's settings, checks an existing
/// database (`PRAGMA quick_check`: garbage pages refuse the open instead of failing reads
/// later) and brings its schema up to date.
fn configure(
    db: &Path,
    settings: &WriterSettings,
    existing: bool,
) -> Result<Connection, StoreError> {
    let conn = Connection::open(db)?;
    // Only a new database takes it: an existing one keeps the page size it was created with
    // (4 KiB before this setting), which the WAL does not let change.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // Temporary b-trees and statement journals in memory, not in temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A negative size is in KiB.
    conn.pragma_update(None, "cache_size", -settings.cache_kib)?;
    // Checkpoints (copying committed WAL pages into the database file, then an fsync) run
    // on a thread of their own, off the writer's path: the writer checkpoints itself only
    // when the WAL passes `checkpoint_mib`, i.e. when the checkpointer falls behind.
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let checkpoint_pages = settings.checkpoint_mib * 1024 * 1024 / page_size;
    conn.pragma_update(None, "wal_autocheckpoint", checkpoint_pages)?;
    if existing {
        guard::quick_check(&conn)?;
    }
    migrate(&conn)?;
    Ok(conn)
}

/// The checkpointer's loop: after each commit (or group of commits arriving while it works),
/// copies what the WAL holds into the database file. PASSIVE: it never blocks the writer or a
/// reader; pages it cannot copy yet stay for the next round. Durability does not depend on it:
/// a commit is durable once its WAL frames are fsynced.
fn checkpoint_after_commits(conn: Connection, commits: Receiver<()>) {
    let mut next = std::time::Instant::now();
    while commits.recv().is_ok() {
        // At most one checkpoint per interval: the pages a stream of commits rewrites (the
        // open request bucket's) are copied once per interval rather than once per commit.
        // Commits told meanwhile are covered by the coming checkpoint; the store closing ends
        // the wait at once (a sleep here held up every close by up to an interval).
        while let Some(left) = next.checked_duration_since(std::time::Instant::now()) {
            match commits.recv_timeout(left) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        next = std::time::Instant::now() + CHECKPOINT_INTERVAL;
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "background checkpoint failed; the writer checkpoints when the WAL grows");
        }
    }
}

/// Events a scan gathers before looking up their labels, in id order. The lookups' locality
/// is what counts: on the first scan of 1M labelled predictions (chunks of 65,536 events),
/// batches of 1,024 took 4.0 s and of 4,096 3.6-3.9 s, against 2.7-2.8 s for 16,384 and for
/// whole chunks, and 2.4-2.6 s for the join through the index by chunk that this replaces
/// (ADR 007). 16,384 decoded events are about 26 MB.
const SCAN_LABEL_BATCH: usize = 16384;

/// The least time between two background checkpoints.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

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

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let Some(pending) = usize::try_from(version)
        .ok()
        .and_then(|v| SCHEMA_STEPS.get(v..))
    else {
        return Err(StoreError::Corrupt {
            what: "database",
            detail: format!(
                "schema version {version} is newer than this modelwatch understands ({SCHEMA_VERSION})"
            ),
        });
    };
    // Each step brings a store of the version before it to its own; all run in one transaction.
    let mut steps = pending.join(" ");
    if version == 1 {
        // Every hour that holds predictions starts dirty (its aggregates are built on the
        // first refresh), and the label counters are counted once.
        steps.push(' ');
        steps.push_str(&mark_every_hour_sql("1"));
        steps.push(' ');
        steps.push_str(&recount_labelled_sql("1"));
    }
    conn.execute_batch(&format!(
        "BEGIN; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))?;
    Ok(())
}

struct CachedModel {
    id: i64,
    schema: Schema,
    /// The schema's features by name, and those added by the job being run (they are stored
    /// with it, or the entry is dropped with the job's failure).
    known: FeatureIndex,
    /// The model's request buckets, loaded by its first prediction batch.
    buckets: Option<Buckets>,
}

/// The writer thread's state. Only this thread writes; the schema cache is therefore exact
/// except after a rolled-back job, when the model's entry is dropped and reloaded.
struct Writer {
    conn: Connection,
    models: HashMap<String, CachedModel>,
    /// Tells the checkpointer that a commit added pages to the WAL.
    committed: Sender<()>,
    shared: WriterShared,
    /// The index rows of the last job if it was a predictions job that stored every row of
    /// its batch as new, for the labels of the same rows
    /// ([`SqliteStore::submit_gathered_with_labels`]).
    stored: Option<StoredBatch>,
}

/// The request-index columns a predictions job stored, rows all new: what a lookup of their
/// request ids would find.
struct StoredBatch {
    job: u64,
    model: String,
    /// `Encoded::keys`' ids, event times, versions and outcome ranges, sorted by request id.
    keys: Vec<(std::ops::Range<usize>, i64, usize, std::ops::Range<usize>)>,
    ids: String,
    versions: Vec<String>,
    outcomes: Vec<u8>,
}

impl StoredBatch {
    /// [`Found`] for a sorted label batch: each label's prediction among the stored rows, by
    /// one walk of both in request-id order. A label whose id is not among them is left to
    /// the writer's lookups.
    fn found(self, batch: &LabelBatch, deletions: u64) -> Found {
        let mut rows = vec![None; batch.rows.len()];
        let mut k = 0usize;
        for (r, (_, l)) in batch.rows.iter().enumerate() {
            let id = l.request_id.as_str();
            while k < self.keys.len() && &self.ids[self.keys[k].0.clone()] < id {
                k += 1;
            }
            if let Some((range, ts, version, outcome)) = self.keys.get(k) {
                if &self.ids[range.clone()] == id {
                    rows[r] = Some(FoundRow {
                        ts: *ts,
                        version: *version,
                        outcome: Some(outcome.clone()),
                    });
                }
            }
        }
        Found {
            deletions,
            rows,
            versions: self.versions,
            outcomes: self.outcomes,
        }
    }
}

/// What the writer's jobs share with the store's readers, and its settings.
struct WriterShared {
    /// Bumped after every commit that deleted request-index rows: see [`Found`].
    deletions: Arc<AtomicU64>,
    filters: Arc<Filters>,
    bucket_rows: i64,
    group_buckets: i64,
    /// Most features a model's rows may give it (`SqliteStore::set_max_features_per_model`).
    max_features: Arc<AtomicUsize>,
}

impl WriterShared {
    fn max_features(&self) -> usize {
        self.max_features.load(Ordering::Relaxed)
    }
}

impl Writer {
    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            let mut rows = batch[0].rows();
            while rows < MAX_ROWS_PER_COMMIT {
                match jobs.try_recv() {
                    Ok(j) => {
                        rows += j.rows();
                        batch.push(j);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(batch);
        }
    }

    /// Runs `jobs` in one transaction and answers each once it has committed (or failed).
    ///
    /// Jobs share the transaction without savepoints: a savepoint copies every page it changes
    /// to a sub-journal first, and for the request index, which a large commit rewrites most
    /// of, that was 7 % of the server's CPU under HTTP ingest. A job that fails after writing
    /// something instead rolls back its whole group, whose jobs then run again one at a time,
    /// each alone in its transaction: the failing one leaves nothing behind and the others are
    /// stored and answered as usual. Failures are rare and mostly happen before any write (an
    /// unknown model, a schema that does not fit), and those need no rollback at all.
    fn commit_group(&mut self, mut jobs: Vec<Job>) {
        let alone = jobs.len() == 1;
        let tx = match self.conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let failed = Err(CommitFailure::from(e));
                jobs.into_iter().for_each(|job| job.answer(&failed));
                return;
            }
        };
        let deletes = jobs.iter().any(|j| matches!(j, Job::ApplyRetention(..)));
        let mut failed = false;
        for job in &mut jobs {
            let changes = tx.total_changes();
            if run_job(&tx, &mut self.models, &self.shared, &mut self.stored, job) {
                continue;
            }
            failed = true;
            // SQLite ends the transaction itself after some errors (a full disk, an I/O error).
            let wrote = tx.total_changes() != changes || tx.is_autocommit();
            if !alone && wrote {
                let _ = tx.rollback();
                // Whatever schema changes the jobs made were rolled back with them.
                self.models.clear();
                self.stored = None;
                for job in jobs {
                    self.commit_group(vec![job]);
                }
                return;
            }
        }
        let committed = if alone && failed {
            // The job's own error is its answer; nothing it wrote may stay.
            tx.rollback().map_err(CommitFailure::from)
        } else {
            tx.commit().map_err(CommitFailure::from)
        };
        if committed.is_err() {
            // Whatever schema changes the jobs made were rolled back with them.
            self.models.clear();
            // And the rows of a stored batch are not in the index.
            self.stored = None;
        }
        if deletes {
            // After the commit: a reader that sees the old count began before the deletion
            // was visible, or sees it and is told so.
            self.shared.deletions.fetch_add(1, Ordering::SeqCst);
        }
        // Full means a checkpoint is already due; it will include these pages.
        let _ = self.committed.try_send(());
        jobs.into_iter().for_each(|job| job.answer(&committed));
    }
}

/// Runs one job in the writer's transaction and keeps its result in its reply, for when the
/// transaction's fate is known (a job is acknowledged only if its whole group commits). Returns
/// whether the job succeeded. A job's inputs are only read, so that it can run again after its
/// group was rolled back.
fn run_job(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    stored: &mut Option<StoredBatch>,
    job: &mut Job,
) -> bool {
    // Kept for the very next job only (the labels of the same rows, queued right after them):
    // nothing can change those index rows between the two.
    let last_stored = stored.take();
    let (model, ok) = match job {
        Job::Predictions(model, batch, encoded, reply) => {
            let result = ingest_predictions(tx, models, shared, model, batch, encoded);
            let all_new = matches!(&result, Ok(out) if out.accepted == batch.rows.len());
            if encoded.labels_follow && all_new && batch.rejected.is_empty() {
                *stored = Some(StoredBatch {
                    job: encoded.job,
                    model: model.to_string(),
                    keys: encoded
                        .keys
                        .iter()
                        .map(|k| (k.id.clone(), k.ts, k.version, k.outcome.clone()))
                        .collect(),
                    ids: encoded.ids.clone(),
                    versions: encoded.versions.clone(),
                    outcomes: encoded.outcomes.clone(),
                });
            }
            (Some(&*model), reply.keep(result))
        }
        Job::Shadow(model, rows, reply) => {
            let result = ingest_shadow_predictions(tx, models, shared, model, rows);
            (Some(&*model), reply.keep(result))
        }
        Job::Labels(model, batch, found, after, reply) => {
            let joined = match (last_stored, *after) {
                (Some(s), Some(job)) if s.job == job && s.model == model.as_str() => {
                    Some(s.found(batch, shared.deletions.load(Ordering::SeqCst)))
                }
                _ => None,
            };
            let found = joined.as_ref().or(found.as_ref());
            let result = ingest_labels(tx, models, shared, model, batch, found);
            (Some(&*model), reply.keep(result))
        }
        Job::Kpis(model, rows, rejected, reply) => {
            (None, reply.keep(ingest_kpis(tx, model, rows, rejected)))
        }
        Job::Reference {
            model,
            version,
            rows,
            rejected,
            reply,
        } => {
            let limit = shared.max_features();
            let result = put_reference(tx, models, limit, model, version, rows, rejected);
            (Some(&*model), reply.keep(result))
        }
        Job::DeclareSchema(model, schema, reply) => {
            let result = declare_schema(tx, models, model, schema.clone());
            (Some(&*model), reply.keep(result))
        }
        Job::SetRetention(model, days, reply) => {
            (None, reply.keep(set_retention(tx, model, *days)))
        }
        Job::ApplyRetention(now, reply) => {
            models.clear();
            (None, reply.keep(apply_retention(tx, *now)))
        }
        Job::PutAggregates(model, writes, reply) => {
            (None, reply.keep(put_aggregates(tx, model, writes)))
        }
        Job::MarkForRescan(model, hours, reply) => {
            let marked = model_id(tx, model).and_then(|id| match id {
                Some(id) => mark_dirty(tx, id, hours.iter().map(|(v, h)| (v.as_str(), *h))),
                None => Ok(()),
            });
            (None, reply.keep(marked))
        }
        Job::InvalidateAggregates(model, reply) => {
            (None, reply.keep(invalidate_aggregates(tx, model)))
        }
    };
    if let (false, Some(model)) = (ok, model) {
        // Its cached schema may hold changes that were not stored.
        models.remove(model.as_str());
    }
    ok
}

/// Loads a model into the cache, creating it when `create` is set.
fn model_entry<'a>(
    tx: &Transaction<'_>,
    models: &'a mut HashMap<String, CachedModel>,
    model: &ModelName,
    create: bool,
) -> Result<Option<&'a mut CachedModel>, StoreError> {
    let name = model.as_str();
    if !models.contains_key(name) {
        let row: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, schema FROM models WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let entry = match row {
            Some((id, schema)) => {
                let schema: Schema =
                    serde_json::from_str(&schema).map_err(|e| StoreError::Corrupt {
                        what: "model schema",
                        detail: e.to_string(),
                    })?;
                CachedModel {
                    id,
                    known: FeatureIndex::of(&schema),
                    schema,
                    buckets: None,
                }
            }
            None if create => {
                tx.execute(
                    "INSERT INTO models(name, schema, created_at) VALUES (?1, ?2, ?3)",
                    params![name, "{\"features\":[]}", Timestamp::now().micros()],
                )?;
                CachedModel {
                    id: tx.last_insert_rowid(),
                    schema: Schema::default(),
                    known: FeatureIndex::default(),
                    buckets: None,
                }
            }
            None => return Ok(None),
        };
        models.insert(name.to_string(), entry);
    }
    Ok(models.get_mut(name))
}

fn save_schema(tx: &Transaction<'_>, entry: &CachedModel) -> Result<(), StoreError> {
    let json = serde_json::to_string(&entry.schema).expect("schema serializes");
    tx.execute(
        "UPDATE models SET schema = ?1 WHERE id = ?2",
        params![json, entry.id],
    )?;
    Ok(())
}

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
        let row = truncate(&q.row, MAX_QUARANTINE_ROW_BYTES);
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
fn quarantine_all(
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

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("values of validated events serialize")
}

/// The rejection of the row at `index` whose request id the row at `first` already had.
fn repeated_rejection(index: usize, request_id: &str, first: usize) -> Rejection {
    Rejection::new(
        index,
        "request_id",
        format!("appears twice in this batch (first at row {first})"),
    )
    .with_request_id(Some(request_id))
}

/// Per version of a batch: the predictions stored and their first and last event times, added
/// by `save` to the model's `versions` (served) or `shadow_versions` table.
#[derive(Default)]
struct VersionSpans<'a>(BTreeMap<&'a str, (i64, i64, i64)>);

impl<'a> VersionSpans<'a> {
    fn add(&mut self, version: &'a str, ts: i64) {
        let v = self.0.entry(version).or_insert((0, ts, ts));
        v.0 += 1;
        v.1 = v.1.min(ts);
        v.2 = v.2.max(ts);
    }

    /// `table` is `versions` or `shadow_versions`.
    fn save(self, tx: &Transaction<'_>, table: &str, model_id: i64) -> Result<(), StoreError> {
        let mut upsert = tx.prepare_cached(&format!(
            "INSERT INTO {table}(model_id, version, predictions, first_ts, last_ts)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(model_id, version) DO UPDATE SET
                predictions = predictions + excluded.predictions,
                first_ts = min(first_ts, excluded.first_ts),
                last_ts = max(last_ts, excluded.last_ts)"
        ))?;
        for (version, (n, first, last)) in self.0 {
            upsert.execute(params![model_id, version, n, first, last])?;
        }
        Ok(())
    }
}

/// The schema check of one batch's rows against a model: the features the admitted rows add to
/// the schema gather in `pending` (saved with the batch by `finish`), and each refused row is
/// set aside with why, for `quarantine_all`.
struct Admission {
    max_features: usize,
    pending: Vec<FeatureSpec>,
    quarantined: Vec<Quarantined>,
}

impl Admission {
    fn new(max_features: usize) -> Self {
        Admission {
            max_features,
            pending: Vec::new(),
            quarantined: Vec::new(),
        }
    }

    /// Sets `row` aside, refused for `rejection`.
    fn refuse(&mut self, rejection: Rejection, row: &impl serde::Serialize) {
        self.quarantined.push(Quarantined {
            rejection,
            row: to_json(row),
        });
    }

    /// Admits the row at `index` if its features fit the model's schema (recording the features
    /// it adds in the model's index), else sets it aside; true when admitted.
    fn admit(
        &mut self,
        entry: &mut CachedModel,
        index: usize,
        request_id: Option<&str>,
        features: &[(FeatureName, FeatureValue)],
        row: &impl serde::Serialize,
    ) -> bool {
        match entry
            .schema
            .check(features, &entry.known, self.max_features)
        {
            Ok(added) => {
                for f in &added {
                    entry.known.insert(f);
                }
                self.pending.extend(added);
                true
            }
            Err((field, reason)) => {
                let rejection = Rejection::new(index, field, reason).with_request_id(request_id);
                self.refuse(rejection, row);
                false
            }
        }
    }

    /// Saves the features the admitted rows added to the model's schema; returns them, and the
    /// rows set aside.
    fn finish(
        self,
        tx: &Transaction<'_>,
        entry: &mut CachedModel,
    ) -> Result<(Vec<SchemaChange>, Vec<Quarantined>), StoreError> {
        let changes = self
            .pending
            .iter()
            .map(|f| SchemaChange {
                feature: f.name.clone(),
                kind: f.kind,
            })
            .collect();
        if !self.pending.is_empty() {
            entry.schema.features.extend(self.pending);
            save_schema(tx, entry)?;
        }
        Ok((changes, self.quarantined))
    }
}

/// A batch's events encoded for chunks before they reach the writer: each CHUNK_MAX_ROWS-row
/// chunk as NDJSON, compressed. Encoding and compressing run on the caller's thread, in parallel
/// across requests; the single writer only stores the result.
///
/// Lines are compressed as they are written, about 1 MiB at a time, rather than gathered for the
/// whole batch first: a 131k-row import commit made 70 MB of fresh memory per commit whose page
/// faults were a fifth of the encoding thread's time. The writer needs single lines only when
/// some rows of a chunk are not stored (repeated ids, rejections), and encodes those rows again
/// then.
///
/// What does not depend on the stored state is worked out here too, off the writer's thread: the
/// rows' request-index columns in request-id order (index rows go in in key order) and the rows
/// whose request id repeats an earlier row of the batch.
#[derive(Debug, Default)]
struct Encoded {
    /// Names the job, for the labels of its rows
    /// ([`SqliteStore::submit_gathered_with_labels`]).
    job: u64,
    /// Those labels are queued right after the job: keep its index rows for them.
    labels_follow: bool,
    /// Compressed chunks of all rows, valid for a chunk when every row of the chunk is stored.
    chunks: Vec<Vec<u8>>,
    /// Every row's request-index columns, sorted by request id (rows with the same id in batch
    /// order), copied side by side: the writer reads them in this order, and reading them from
    /// the events, scattered across the heap in that order, missed the cache on every row (the
    /// costliest line of the writer's own code).
    keys: Vec<IndexKey>,
    /// The request ids of `keys`, one after the other.
    ids: String,
    /// The outcomes of `keys` in `compact.rs` form, one after the other.
    outcomes: Vec<u8>,
    /// The distinct versions of the batch ('' for none), which `IndexKey::version` points into.
    versions: Vec<String>,
    /// For a row whose request id appeared earlier in the batch, the position of that first row.
    repeat_of: Vec<Option<usize>>,
}

/// One row's columns of `request_index`, as [`Encoded::keys`] holds them.
#[derive(Debug)]
struct IndexKey {
    /// Position of the row in the batch.
    position: usize,
    /// Where its request id is in `Encoded::ids`.
    id: std::ops::Range<usize>,
    /// Where its outcome is in `Encoded::outcomes`.
    outcome: std::ops::Range<usize>,
    ts: i64,
    version: usize,
    error: bool,
    /// [`id_hash`] of its request id, for the closed buckets' filters.
    hash: u64,
}

impl Encoded {
    /// The index columns of `rows`, whose chunks are already compressed.
    fn new(rows: &[(usize, PredictionEvent)], chunks: Vec<Vec<u8>>) -> Encoded {
        let id = |p: usize| rows[p].1.request_id.as_str();
        // Sorted on the ids' first 16 bytes first, held in the array itself: comparing strings
        // behind pointers missed the cache on nearly every comparison. Ties (equal prefixes)
        // compare the whole ids, then positions, so the first of equal ids is the earliest row.
        let mut by_id: Vec<(u128, usize)> =
            (0..rows.len()).map(|p| (id_prefix(id(p)), p)).collect();
        by_id.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0))
                .then_with(|| id(a.1).cmp(id(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let by_id: Vec<usize> = by_id.into_iter().map(|(_, p)| p).collect();
        let mut repeat_of = vec![None; rows.len()];
        for run in by_id.chunk_by(|a, b| id(*a) == id(*b)) {
            for &later in &run[1..] {
                repeat_of[later] = Some(run[0]);
            }
        }
        let mut ids = String::with_capacity(by_id.iter().map(|&p| id(p).len()).sum());
        let mut outcomes = Vec::with_capacity(rows.len() * 20);
        let mut versions: Vec<String> = Vec::new();
        let keys = by_id
            .iter()
            .map(|&position| {
                let e = &rows[position].1;
                let start = ids.len();
                ids.push_str(&e.request_id);
                let outcome_start = outcomes.len();
                compact::put_prediction(
                    &mut outcomes,
                    e.prediction.as_ref(),
                    e.score,
                    e.scores.as_deref(),
                    e.has_tag(modelwatch_core::EXPLORATION_TAG),
                );
                let v = e.model_version.as_deref().unwrap_or("");
                // A batch has one version or a few: a search beats hashing every row's.
                let version = match versions.iter().position(|known| known == v) {
                    Some(n) => n,
                    None => {
                        versions.push(v.to_string());
                        versions.len() - 1
                    }
                };
                IndexKey {
                    position,
                    id: start..ids.len(),
                    outcome: outcome_start..outcomes.len(),
                    ts: e.timestamp.micros(),
                    version,
                    error: e.error.is_some(),
                    hash: id_hash(&e.request_id),
                }
            })
            .collect();
        static JOBS: AtomicU64 = AtomicU64::new(0);
        Encoded {
            job: JOBS.fetch_add(1, Ordering::Relaxed),
            labels_follow: false,
            chunks,
            keys,
            ids,
            outcomes,
            versions,
            repeat_of,
        }
    }
}

/// A prediction batch gathered piece by piece for [`SqliteStore::submit_gathered`] (a bulk
/// import gathers a commit from the pieces it reads the file in), its chunks encoded and
/// compressed as the rows arrive. Encoding each piece while the next one is read keeps the reader
/// busy: when a whole commit was encoded at once, the import's reader, two pieces ahead at most, waited for
/// it, and the import then waited for the reader (0.5 s of a 5 s import).
#[derive(Debug, Default)]
pub struct GatheredPredictions {
    batch: PredictionBatch,
    chunks: ChunkEncoder,
}

impl GatheredPredictions {
    /// An empty batch for about `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        GatheredPredictions {
            batch: PredictionBatch::new(Vec::with_capacity(rows)),
            chunks: ChunkEncoder::with_capacity(rows),
        }
    }

    /// Adds rows (each with its index in the client's batch), encoding them for their chunks.
    pub fn push_rows(
        &mut self,
        rows: impl IntoIterator<Item = (usize, PredictionEvent)>,
    ) -> Result<(), StoreError> {
        for row in rows {
            self.chunks.push(&row.1, None)?;
            self.batch.rows.push(row);
        }
        Ok(())
    }

    /// Adds rows rejected before they reached the store.
    pub fn push_rejected(&mut self, rows: impl IntoIterator<Item = Quarantined>) {
        self.batch.rejected.extend(rows);
    }

    /// Rows gathered, accepted or rejected.
    pub fn len(&self) -> usize {
        self.batch.rows.len() + self.batch.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Chunks being encoded: each event's NDJSON line is staged and compressed about 1 MiB at a
/// time (`CHUNK_FRAME_BYTES`), and a new chunk starts every `CHUNK_MAX_ROWS` rows.
#[derive(Debug, Default)]
struct ChunkEncoder {
    /// Made with the first row.
    z: Option<ChunkCompressor>,
    stage: Vec<u8>,
    /// Compressed chunks, the last one still growing.
    chunks: Vec<Vec<u8>>,
    rows_in_last: usize,
    /// Rows expected, to size the chunks' buffers.
    capacity: usize,
}

impl ChunkEncoder {
    fn with_capacity(rows: usize) -> Self {
        ChunkEncoder {
            capacity: rows,
            ..ChunkEncoder::default()
        }
    }

    /// Adds one event's line: `sent`, the row as the client sent it, when it reads back as
    /// the event (encoding the event again was a third of the encoding time), else the event
    /// encoded.
    fn push(&mut self, e: &PredictionEvent, sent: Option<&[u8]>) -> Result<(), StoreError> {
        if self.z.is_none() {
            self.z = Some(ChunkCompressor::new()?);
            self.stage = Vec::with_capacity(CHUNK_FRAME_BYTES + 64 * 1024);
        }
        if self.chunks.is_empty() || self.rows_in_last == CHUNK_MAX_ROWS {
            self.compress_stage()?;
            let rows = (self
                .capacity
                .saturating_sub(self.chunks.len() * CHUNK_MAX_ROWS))
            .clamp(1, CHUNK_MAX_ROWS);
            // Compressed events take 150-250 bytes each (25 features): start near that.
            self.chunks.push(Vec::with_capacity(rows * 192));
            self.rows_in_last = 0;
        }
        match sent {
            Some(row) => {
                self.stage.extend_from_slice(row);
                self.stage.push(b'\n');
            }
            None => encode_line(&mut self.stage, e),
        }
        self.rows_in_last += 1;
        if self.stage.len() >= CHUNK_FRAME_BYTES {
            self.compress_stage()?;
        }
        Ok(())
    }

    /// Compresses the staged lines onto the last chunk as one frame.
    fn compress_stage(&mut self) -> Result<(), StoreError> {
        if let (Some(z), Some(data)) = (&mut self.z, self.chunks.last_mut()) {
            z.append(data, &self.stage)?;
        }
        self.stage.clear();
        Ok(())
    }

    /// The compressed chunks, one per `CHUNK_MAX_ROWS` rows.
    fn finish(mut self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.compress_stage()?;
        Ok(self.chunks)
    }
}

/// The first 16 bytes of a request id as a number that sorts like the bytes (zero-padded: a
/// shorter id sorts first, or ties and is compared whole).
fn id_prefix(id: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = id.len().min(16);
    b[..n].copy_from_slice(&id.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

/// One event as a chunk line: its JSON in the contract's format and a newline. Public, with
/// [`decode_stored`], for the fuzz targets' check that every accepted event reads back.
pub fn encode_line(out: &mut Vec<u8>, e: &PredictionEvent) {
    serde_json::to_writer(&mut *out, e).expect("validated events serialize");
    out.push(b'\n');
}

/// NDJSON bytes per zstd frame. A chunk is a sequence of whole frames, which readers decode as
/// one stream (chunks written before were a single frame; they read the same). Compressing
/// 1 MiB pieces in one call each takes zstd's fast path, while feeding a streaming compressor
/// the same pieces was 2.5 times slower (its window wraps around an internal buffer); and
/// chunks come out within 0.1 % of one frame's size (measured on the peers' data).
const CHUNK_FRAME_BYTES: usize = 1 << 20;

/// A zstd context kept for all the frames of one batch.
struct ChunkCompressor(zstd::bulk::Compressor<'static>);

impl std::fmt::Debug for ChunkCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkCompressor")
    }
}

impl ChunkCompressor {
    fn new() -> Result<Self, StoreError> {
        let mut z = zstd::bulk::Compressor::new(CHUNK_ZSTD_LEVEL).map_err(compression_error)?;
        z.set_parameter(zstd::stream::raw::CParameter::HashLog(CHUNK_ZSTD_HASH_LOG))
            .map_err(compression_error)?;
        Ok(ChunkCompressor(z))
    }

    /// Appends `ndjson` (whole lines) to a chunk's data as one frame.
    fn append(&mut self, data: &mut Vec<u8>, ndjson: &[u8]) -> Result<(), StoreError> {
        if ndjson.is_empty() {
            return Ok(());
        }
        data.reserve(zstd::zstd_safe::compress_bound(ndjson.len()));
        let mut out = std::io::Cursor::new(data);
        out.set_position(out.get_ref().len() as u64);
        self.0
            .compress_to_buffer(ndjson, &mut out)
            .map(drop)
            .map_err(compression_error)
    }
}

/// NDJSON cut into pieces of about CHUNK_FRAME_BYTES, at line ends.
fn frames(ndjson: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = ndjson;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.get(CHUNK_FRAME_BYTES..) {
            None => rest.len(),
            Some(after) => after
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |i| CHUNK_FRAME_BYTES + i + 1),
        };
        let (frame, tail) = rest.split_at(end);
        rest = tail;
        Some(frame)
    })
}

fn compression_error(source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: "chunk compression".into(),
        source,
    }
}

fn ingest_predictions(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    model: &ModelName,
    batch: &PredictionBatch,
    encoded: &Encoded,
) -> Result<IngestOutcome, StoreError> {
    let now = Timestamp::now();
    let mut out = IngestOutcome::default();
    if batch.rows.is_empty() {
        // A batch of only bad rows still creates nothing, but its rows are kept for the user.
        out.rejected = quarantine_all(tx, model, "predictions", &batch.rejected, vec![], now)?;
        return Ok(out);
    }
    let entry = model_entry(tx, models, model, true)?.expect("created");
    // The model's request buckets: new rows go into the open one, and each id is first looked
    // for in the closed ones that may hold it.
    let mut buckets = match entry.buckets.take() {
        Some(b) => b,
        None => Buckets::load(tx, entry.id)?,
    };
    let open = buckets.open_for_writes(
        tx,
        &shared.filters,
        entry.id,
        shared.bucket_rows,
        shared.group_buckets,
    )?;
    // Rows rejected here; those rejected before are in the batch.
    let mut admission = Admission::new(shared.max_features());
    // Positions in `batch.rows` of the rows that pass the checks, in order.
    let mut admitted: Vec<usize> = Vec::with_capacity(batch.rows.len());
    for (position, (index, event)) in batch.rows.iter().enumerate() {
        if !event.role.is_served() {
            // Only `submit_predictions` parts a batch's shadow rows from its served ones; a
            // batch gathered piece by piece (a file import) has no role column.
            admission.refuse(
                Rejection::new(
                    *index,
                    "role",
                    "shadow predictions are accepted by the ingest API, not by a file import",
                )
                .with_request_id(Some(&event.request_id)),
                event,
            );
            continue;
        }
        if let Some(first) = encoded.repeat_of[position] {
            admission.refuse(
                repeated_rejection(*index, &event.request_id, batch.rows[first].0),
                event,
            );
            continue;
        }
        if admission.admit(
            entry,
            *index,
            Some(&event.request_id),
            &event.features,
            event,
        ) {
            admitted.push(position);
        }
    }

    let mut versions = VersionSpans::default();
    // New rows stored per (version, hour, chunk): each key is a delta of its hour, which a
    // refresh adds to the stored aggregates (no rescan of the hour); the count tells whether
    // the caller's fold of the hour folded exactly those rows.
    let mut new_rows: BTreeMap<(&str, i64, i64), u64> = BTreeMap::new();
    // Hours of predictions that adopted a label sent before them: rescanned, since a delta of
    // new predictions carries no labels.
    let mut adopting: BTreeSet<(&str, i64)> = BTreeSet::new();
    // Labels that arrived before their prediction: only while some exist is each new
    // prediction looked up in `labels` (the common order, label after prediction, costs nothing).
    let orphan_labels: i64 = tx.query_row(
        "SELECT orphan_labels FROM models WHERE id = ?1",
        [entry.id],
        |r| r.get(0),
    )?;
    let mut adopted = 0i64;
    // The hashes of the ids stored, for the open bucket's filter.
    let mut new_hashes = Vec::with_capacity(batch.rows.len());
    // When every row passed the checks, chunks of `admitted` are the chunks `encoded` compressed.
    let all_admitted = admitted.len() == batch.rows.len();
    // Each admitted row's place among the admitted rows, by position in the batch.
    let mut slot_of = vec![usize::MAX; batch.rows.len()];
    for (slot, &position) in admitted.iter().enumerate() {
        slot_of[position] = slot;
    }
    for (chunk_no, admitted) in admitted.chunks(CHUNK_MAX_ROWS).enumerate() {
        // The chunk row is created first so that index rows can name it; its data is written
        // once all events of the job are known (a duplicate is never written).
        tx.execute(
            "INSERT INTO segments(model_id, rows, min_ts, max_ts, received_at, data)
             VALUES (?1, 0, 0, 0, ?2, x'')",
            params![entry.id, now.micros()],
        )?;
        let chunk_id = tx.last_insert_rowid();
        let mut ndjson = Vec::new();
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        let mut rows = 0i64;
        // Index rows go in in key order: B-tree inserts in order touch each page once and are
        // several times cheaper than in arrival order. Events go into the chunk in arrival order.
        let event = |i: usize| &batch.rows[admitted[i]].1;
        let chunk_slots = chunk_no * CHUNK_MAX_ROWS..chunk_no * CHUNK_MAX_ROWS + admitted.len();
        let mut is_new = vec![false; admitted.len()];
        {
            // This chunk's rows, in key order.
            let keys: Vec<&IndexKey> = encoded
                .keys
                .iter()
                .filter(|k| chunk_slots.contains(&slot_of[k.position]))
                .collect();
            let into = IndexTarget {
                model_id: entry.id,
                open,
                buckets: &buckets,
                filters: &shared.filters,
                chunk_id,
            };
            insert_index_rows(tx, &into, encoded, &keys, |key, new| {
                is_new[slot_of[key.position] - chunk_slots.start] = new;
                if new {
                    new_hashes.push(key.hash);
                }
            })?;
        }
        if orphan_labels > adopted {
            let mut label =
                tx.prepare_cached("SELECT 1 FROM labels WHERE model_id = ?1 AND request_id = ?2")?;
            for (i, new) in is_new.iter().enumerate() {
                let e = event(i);
                if *new && label.exists(params![entry.id, e.request_id])? {
                    adopted += 1;
                    let version = e.model_version.as_deref().unwrap_or("");
                    adopting.insert((version, hour_of(e.timestamp.micros())));
                }
            }
        }
        let all_new = is_new.iter().all(|n| *n);
        for (&position, new) in admitted.iter().zip(is_new) {
            let e = &batch.rows[position].1;
            if !new {
                out.duplicates += 1;
                continue;
            }
            let version = e.model_version.as_deref().unwrap_or("");
            let ts = e.timestamp.micros();
            out.accepted += 1;
            rows += 1;
            *new_rows
                .entry((version, hour_of(ts), chunk_id))
                .or_default() += 1;
            if !(all_admitted && all_new) {
                encode_line(&mut ndjson, e);
            }
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
            versions.add(version, ts);
        }
        if rows == 0 {
            tx.execute("DELETE FROM segments WHERE id = ?1", [chunk_id])?;
        } else {
            let recompressed;
            let data = if all_admitted && all_new {
                &encoded.chunks[chunk_no]
            } else {
                let mut data = Vec::new();
                let mut z = ChunkCompressor::new()?;
                for frame in frames(&ndjson) {
                    z.append(&mut data, frame)?;
                }
                recompressed = data;
                &recompressed
            };
            tx.execute(
                "UPDATE segments SET rows = ?1, min_ts = ?2, max_ts = ?3, data = ?4 WHERE id = ?5",
                params![rows, min_ts, max_ts, data, chunk_id],
            )?;
        }
    }
    buckets.add_rows(tx, entry.id, &new_hashes)?;
    entry.buckets = Some(buckets);
    versions.save(tx, "versions", entry.id)?;
    // A fold of the caller's is kept when it folded exactly the rows stored: all of its
    // hour's rows were new and valid, and they went into one chunk.
    let one_chunk = admitted.len() <= CHUNK_MAX_ROWS;
    let folds: HashMap<(&str, i64), &HourFold> = batch
        .folds
        .iter()
        .map(|f| ((f.version.as_str(), f.hour), f))
        .collect();
    for ((version, hour, chunk), stored) in new_rows {
        if !adopting.contains(&(version, hour)) {
            let fold = folds
                .get(&(version, hour))
                .filter(|f| one_chunk && f.rows == stored)
                .map_or(&[][..], |f| &f.data[..]);
            record_delta(
                tx,
                entry.id,
                version,
                hour,
                Delta::Predictions { chunk, fold },
            )?;
        }
    }
    mark_dirty(tx, entry.id, adopting)?;
    if adopted > 0 {
        tx.execute(
            "UPDATE models SET labelled = labelled + ?1, orphan_labels = orphan_labels - ?1
             WHERE id = ?2",
            params![adopted, entry.id],
        )?;
    }
    let quarantined;
    (out.schema_changes, quarantined) = admission.finish(tx, entry)?;
    out.rejected = quarantine_all(tx, model, "predictions", &batch.rejected, quarantined, now)?;
    Ok(out)
}

/// Takes the shadow predictions out of `batch` (with the text spans of the rows that stay),
/// for a job of their own: served rows keep the path they always had, and a batch without a
/// shadow row costs one pass over its roles.
fn take_shadows(batch: &mut PredictionBatch) -> Vec<(usize, PredictionEvent)> {
    if batch.rows.iter().all(|(_, e)| e.role.is_served()) {
        return Vec::new();
    }
    let rows = std::mem::take(&mut batch.rows);
    let mut spans = batch
        .verbatim
        .as_mut()
        .map(|v| std::mem::take(&mut v.spans));
    let mut shadow = Vec::new();
    for (position, row) in rows.into_iter().enumerate() {
        if row.1.role.is_served() {
            if let (Some(kept), Some(v)) = (&mut spans, &mut batch.verbatim) {
                v.spans.push(kept.get_mut(position).and_then(Option::take));
            }
            batch.rows.push(row);
        } else {
            shadow.push(row);
        }
    }
    shadow
}

/// Stores shadow predictions (ADR 011): each is idempotent on (request id, version) through
/// `shadow_index`, and its event goes into a chunk like any other, read back by
/// [`Store::scan_with_shadows`] and never by the served traffic's scans. They mark no hour,
/// record no delta and count in no version: no report but the comparison reads them.
fn ingest_shadow_predictions(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    model: &ModelName,
    rows: &[(usize, PredictionEvent)],
) -> Result<IngestOutcome, StoreError> {
    let now = Timestamp::now();
    let mut out = IngestOutcome::default();
    let entry = model_entry(tx, models, model, true)?.expect("created");
    let mut admission = Admission::new(shared.max_features());
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    let mut admitted: Vec<&PredictionEvent> = Vec::with_capacity(rows.len());
    for (index, event) in rows {
        let version = event.model_version.as_deref().unwrap_or("");
        let first = *first_of
            .entry((event.request_id.as_str(), version))
            .or_insert(*index);
        if first != *index {
            admission.refuse(repeated_rejection(*index, &event.request_id, first), event);
            continue;
        }
        if admission.admit(
            entry,
            *index,
            Some(&event.request_id),
            &event.features,
            event,
        ) {
            admitted.push(event);
        }
    }
    let mut index_row = tx.prepare_cached(
        "INSERT OR IGNORE INTO shadow_index(model_id, request_id, version, ts, segment_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut versions = VersionSpans::default();
    for events in admitted.chunks(CHUNK_MAX_ROWS) {
        tx.execute(
            "INSERT INTO segments(model_id, rows, min_ts, max_ts, received_at, data)
             VALUES (?1, 0, 0, 0, ?2, x'')",
            params![entry.id, now.micros()],
        )?;
        let chunk_id = tx.last_insert_rowid();
        let mut ndjson = Vec::new();
        let (mut min_ts, mut max_ts, mut stored) = (i64::MAX, i64::MIN, 0i64);
        for e in events {
            let version = e.model_version.as_deref().unwrap_or("");
            let ts = e.timestamp.micros();
            if index_row.execute(params![entry.id, e.request_id, version, ts, chunk_id])? == 0 {
                out.duplicates += 1;
                continue;
            }
            out.accepted += 1;
            stored += 1;
            encode_line(&mut ndjson, e);
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
            versions.add(version, ts);
        }
        if stored == 0 {
            tx.execute("DELETE FROM segments WHERE id = ?1", [chunk_id])?;
            continue;
        }
        let mut data = Vec::new();
        let mut z = ChunkCompressor::new()?;
        for frame in frames(&ndjson) {
            z.append(&mut data, frame)?;
        }
        tx.execute(
            "UPDATE segments SET rows = ?1, min_ts = ?2, max_ts = ?3, data = ?4 WHERE id = ?5",
            params![stored, min_ts, max_ts, data, chunk_id],
        )?;
    }
    versions.save(tx, "shadow_versions", entry.id)?;
    let quarantined;
    (out.schema_changes, quarantined) = admission.finish(tx, entry)?;
    out.rejected = quarantine_all(tx, model, "predictions", &[], quarantined, now)?;
    Ok(out)
}

/// Request-index rows stored per INSERT statement: binding, stepping and resetting a statement
/// are paid per statement, and one statement per row was about a third of the writer's user
/// time on the 1M-row import (docs/benchmarks.md).
const INDEX_ROWS_PER_INSERT: usize = 64;

/// Where a batch's request-index rows go: the model's open bucket, after the closed buckets that
/// may hold their ids were looked in.
struct IndexTarget<'a> {
    model_id: i64,
    open: i64,
    /// The model's buckets, whose closed ones are searched through `filters`.
    buckets: &'a Buckets,
    filters: &'a Filters,
    /// The chunk every row points at.
    chunk_id: i64,
}

/// Stores the request-index rows of `keys` (in key order) into the open bucket, and tells
/// `stored` for each whether it is new; a request id already stored, in any bucket, keeps its
/// row (the event is a duplicate).
///
/// `INSERT OR IGNORE` rather than `ON CONFLICT DO NOTHING`: when a multi-row statement could
/// still fail on another constraint after some of its rows went in, SQLite keeps a statement
/// journal (a copy of every page the statement changes, made first), which cost as much as the
/// per-statement work saved. With OR IGNORE no row can fail the statement, and no journal is
/// kept. No column is ever NULL, so the only rows it ignores are stored request ids.
fn insert_index_rows<'k>(
    tx: &Transaction<'_>,
    into: &IndexTarget<'_>,
    encoded: &Encoded,
    keys: &[&'k IndexKey],
    mut stored: impl FnMut(&'k IndexKey, bool),
) -> Result<(), StoreError> {
    let id = |key: &IndexKey| &encoded.ids[key.id.clone()];
    // Ids stored in a closed bucket are duplicates; a filter rules out all but about 1 in 256
    // of the others without reading the bucket.
    let mut fresh: Vec<&'k IndexKey> = Vec::with_capacity(keys.len());
    if into.buckets.closed.is_empty() {
        fresh.extend_from_slice(keys);
    } else {
        let mut in_bucket = tx.prepare_cached(
            "SELECT 1 FROM request_index WHERE model_id = ?1 AND bucket = ?2 AND request_id = ?3",
        )?;
        let hashes: Vec<u64> = keys.iter().map(|k| k.hash).collect();
        let mut duplicate = vec![false; keys.len()];
        into.buckets.search_closed(
            tx,
            into.filters,
            into.model_id,
            &hashes,
            &mut duplicate,
            |bucket, which, duplicate| {
                for &k in which {
                    duplicate[k] = in_bucket.exists(params![into.model_id, bucket, id(keys[k])])?;
                }
                Ok(())
            },
        )?;
        for (&key, dup) in keys.iter().zip(duplicate) {
            if dup {
                stored(key, false);
            } else {
                fresh.push(key);
            }
        }
    }
    let mut full = tx.prepare_cached(&index_insert_sql(INDEX_ROWS_PER_INSERT))?;
    let mut chunk_of = tx.prepare_cached(
        "SELECT segment_id FROM request_index WHERE model_id = ?1 AND bucket = ?2
                                                AND request_id = ?3",
    )?;
    for group in fresh.chunks(INDEX_ROWS_PER_INSERT) {
        let mut last;
        let insert = if group.len() == INDEX_ROWS_PER_INSERT {
            &mut full
        } else {
            last = tx.prepare_cached(&index_insert_sql(group.len()))?;
            &mut last
        };
        insert.raw_bind_parameter(1, into.model_id)?;
        insert.raw_bind_parameter(2, into.chunk_id)?;
        insert.raw_bind_parameter(3, into.open)?;
        for (k, key) in group.iter().enumerate() {
            let p = 4 + 5 * k;
            insert.raw_bind_parameter(p, id(key))?;
            insert.raw_bind_parameter(p + 1, key.ts)?;
            insert.raw_bind_parameter(p + 2, &encoded.versions[key.version])?;
            insert.raw_bind_parameter(p + 3, key.error)?;
            insert.raw_bind_parameter(p + 4, &encoded.outcomes[key.outcome.clone()])?;
        }
        if insert.raw_execute()? == group.len() {
            group.iter().for_each(|key| stored(key, true));
            continue;
        }
        // Some ids were stored before: the new rows are those pointing at this chunk (its id
        // is new, and an id repeated within the batch never gets this far).
        for key in group {
            let chunk: i64 =
                chunk_of.query_row(params![into.model_id, into.open, id(key)], |r| r.get(0))?;
            stored(key, chunk == into.chunk_id);
        }
    }
    Ok(())
}

/// `INSERT OR IGNORE` of `rows` request-index rows: ?1 is the model, ?2 the chunk, ?3 the
/// bucket, and each row binds its request id, event time, version, error flag and outcome, in
/// that order.
fn index_insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|k| {
            let p = 4 + 5 * k;
            format!(
                "(?1, ?3, ?{p}, ?{}, ?{}, ?{}, ?2, ?{})",
                p + 1,
                p + 2,
                p + 3,
                p + 4
            )
        })
        .collect();
    format!(
        "INSERT OR IGNORE INTO request_index(model_id, bucket, request_id, ts, version, error,
                                            segment_id, outcome)
         VALUES {}",
        values.join(", ")
    )
}

fn features_json(features: &[(FeatureName, FeatureValue)]) -> String {
    // Serializing the borrowed slice directly avoids cloning every feature name.
    struct AsMap<'a>(&'a [(FeatureName, FeatureValue)]);
    impl serde::Serialize for AsMap<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }
    to_json(&AsMap(features))
}

fn ingest_labels(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    shared: &WriterShared,
    model: &ModelName,
    batch: &LabelBatch,
    found: Option<&Found>,
) -> Result<IngestOutcome, StoreError> {
    let now = arrival_time();
    let Some(entry) = model_entry(tx, models, model, false)? else {
        return Err(StoreError::ModelNotFound(model.to_string()));
    };
    let model_id = entry.id;
    let mut out = IngestOutcome::default();
    // Rows rejected here; those rejected before are in the batch.
    let mut quarantined = Vec::new();
    // In key order, like the request index and the labels: B-tree writes in order touch each
    // page once. Sorted by (request id, row), a repeated id follows its first row. The caller
    // sorts on its own thread (`sort_labels`), so here it is usually one checking pass.
    let rows = &batch.rows;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    if !rows.is_sorted_by_key(label_order) {
        order.sort_unstable_by_key(|&i| label_order(&rows[i]));
    }
    let mut fresh: Vec<&LabelEvent> = Vec::with_capacity(rows.len());
    // Each fresh label's row in the batch (where the caller's lookups are).
    let mut fresh_rows: Vec<usize> = Vec::with_capacity(rows.len());
    let mut first: Option<&(usize, LabelEvent)> = None;
    for &i in &order {
        let row = &rows[i];
        match first {
            Some(f) if f.1.request_id == row.1.request_id => quarantined.push(Quarantined {
                rejection: repeated_rejection(row.0, &row.1.request_id, f.0),
                row: to_json(&row.1),
            }),
            _ => {
                first = Some(row);
                fresh.push(&row.1);
                fresh_rows.push(i);
            }
        }
    }
    // The caller's lookups hold when no index row was deleted since they were made.
    let found = found.filter(|f| f.deletions == shared.deletions.load(Ordering::SeqCst));
    // What the batch changes in each (version, hour) of the predictions it joins: a delta of
    // first labels, or `None` once a replaced label (or an index row stored before outcomes
    // were kept) needs the hour rescanned.
    let mut hours: HashMap<String, HashMap<i64, Option<Vec<u8>>>> = HashMap::new();
    {
        let stored = store_labels(tx, model_id, &fresh, now.micros())?;
        out.replaced = stored.iter().filter(|s| **s == Stored::Replaced).count();
        out.accepted = fresh.len();
        let mut joined = 0i64;
        let mut on_found = |i: usize, ts: i64, version: &str, outcome: Option<&[u8]>| {
            let l = fresh[i];
            joined += i64::from(stored[i] != Stored::Replaced);
            if !hours.contains_key(version) {
                hours.insert(version.to_owned(), HashMap::new());
            }
            let change = hours
                .get_mut(version)
                .expect("inserted")
                .entry(hour_of(ts))
                .or_insert_with(|| Some(Vec::new()));
            match (change.as_mut(), outcome) {
                (Some(delta), Some(outcome)) if stored[i] == Stored::New => {
                    compact::put_delta_entry(delta, ts, outcome, &l.label, l.timestamp.micros());
                }
                _ => *change = None,
            }
        };
        // Ids to look up here: all of them, or those the caller did not find (their
        // predictions may have arrived since).
        let mut missing: Vec<usize> = Vec::new();
        match &found {
            Some(f) => {
                for (i, &row) in fresh_rows.iter().enumerate() {
                    match &f.rows[row] {
                        Some(p) => on_found(
                            i,
                            p.ts,
                            &f.versions[p.version],
                            p.outcome.clone().map(|o| &f.outcomes[o]),
                        ),
                        None => missing.push(i),
                    }
                }
            }
            None => missing = (0..fresh.len()).collect(),
        }
        let ids: Vec<&str> = missing
            .iter()
            .map(|&i| fresh[i].request_id.as_str())
            .collect();
        find_predictions(
            tx,
            &shared.filters,
            model_id,
            &ids,
            |k, ts, version, outcome| on_found(missing[k], ts, version, outcome),
        )?;
        let orphans = (fresh.len() - out.replaced) as i64 - joined;
        if joined + orphans > 0 {
            tx.execute(
                "UPDATE models SET labelled = labelled + ?1, orphan_labels = orphan_labels + ?2
                 WHERE id = ?3",
                params![joined, orphans, model_id],
            )?;
        }
    }
    let mut rescan = Vec::new();
    for (version, by_hour) in &hours {
        for (&hour, change) in by_hour {
            match change {
                Some(delta) => record_delta(tx, model_id, version, hour, Delta::Labels(delta))?,
                None => rescan.push((version.as_str(), hour)),
            }
        }
    }
    mark_dirty(tx, model_id, rescan)?;
    let new_labels = (out.accepted - out.replaced) as i64;
    if new_labels > 0 {
        tx.execute(
            "UPDATE models SET labels = labels + ?1 WHERE id = ?2",
            params![new_labels, model_id],
        )?;
    }
    out.rejected = quarantine_all(tx, model, "labels", &batch.rejected, quarantined, now)?;
    Ok(out)
}

/// The writer's clock for arrival times: the wall clock, but never the same microsecond twice
/// in a process, so that the rows one job stores can be told from earlier ones by it.
fn arrival_time() -> Timestamp {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);
    let now = Timestamp::now().micros();
    let last = LAST.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
    if now > last {
        return Timestamp(now);
    }
    Timestamp(LAST.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
}

/// Labels stored per INSERT statement: a multi-row statement costs about half as much per row
/// as one statement per row (binding, stepping and resetting are paid per statement).
const LABELS_PER_INSERT: usize = 64;

/// What storing one label did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// The request id had no label.
    New,
    /// It replaced an earlier label.
    Replaced,
    /// New as far as the counters go, but it could not be told apart from an identical earlier
    /// row (same `received_at`, only after a clock step back): its hour is rescanned, so the
    /// metrics are right whichever it was.
    Unsure,
}

/// Stores the labels of `fresh` (sorted, distinct ids), `LABELS_PER_INSERT` per statement,
/// with `received_at` as their arrival time, which must be unique to this call
/// ([`arrival_time`]).
fn store_labels(
    tx: &Transaction<'_>,
    model_id: i64,
    fresh: &[&LabelEvent],
    received_at: i64,
) -> Result<Vec<Stored>, StoreError> {
    let mut texts = Vec::with_capacity(fresh.len() * 4);
    let mut ends = Vec::with_capacity(fresh.len());
    for l in fresh {
        serde_json::to_writer(&mut texts, &l.label).expect("an outcome serializes");
        ends.push(texts.len());
    }
    let texts = String::from_utf8(texts).expect("JSON is UTF-8");
    let text = |i: usize| &texts[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
    let times: Vec<i64> = fresh.iter().map(|l| l.timestamp.micros()).collect();
    let mut stored = vec![Stored::New; fresh.len()];
    let mut arrived = tx
        .prepare_cached("SELECT received_at FROM labels WHERE model_id = ?1 AND request_id = ?2")?;
    let mut replace = tx.prepare_cached(
        "UPDATE labels SET label = ?3, ts = ?4, received_at = ?5
         WHERE model_id = ?1 AND request_id = ?2",
    )?;
    for (g, group) in fresh.chunks(LABELS_PER_INSERT).enumerate() {
        let first = g * LABELS_PER_INSERT;
        // ?1 and ?2 (model and arrival time) are shared; each row binds id, label, time.
        let rows: Vec<String> = (0..group.len())
            .map(|k| format!("(?1, ?{}, ?{}, ?{}, ?2)", 3 * k + 3, 3 * k + 4, 3 * k + 5))
            .collect();
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO labels(model_id, request_id, label, ts, received_at) VALUES {}
             ON CONFLICT(model_id, request_id) DO NOTHING",
            rows.join(", ")
        ))?;
        let labels: Vec<&str> = (first..first + group.len()).map(text).collect();
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(2 + 3 * group.len());
        values.push(&model_id);
        values.push(&received_at);
        for (k, l) in group.iter().enumerate() {
            values.push(&l.request_id);
            values.push(&labels[k]);
            values.push(&times[first + k]);
        }
        let added = insert.execute(&values[..])?;
        if added == group.len() {
            continue;
        }
        // Some ids had a label: theirs carries an earlier arrival time.
        let mut replaced = 0;
        for (k, l) in group.iter().enumerate() {
            let at: i64 = arrived.query_row(params![model_id, l.request_id], |r| r.get(0))?;
            if at != received_at {
                stored[first + k] = Stored::Replaced;
                replaced += 1;
                replace.execute(params![
                    model_id,
                    l.request_id,
                    text(first + k),
                    times[first + k],
                    received_at
                ])?;
            }
        }
        if replaced != group.len() - added {
            for s in &mut stored[first..first + group.len()] {
                if *s == Stored::New {
                    *s = Stored::Unsure;
                }
            }
        }
    }
    Ok(stored)
}

/// The predictions of a label batch's request ids, found by the caller on a read connection
/// before the batch reaches the writer, so that the lookups run beside the writer's work on
/// other batches instead of inside it.
///
/// Valid for the writer as long as no request-index row was deleted since the caller's read
/// began (`deletions` unchanged): rows are never changed once written, only added (which can
/// only turn a missing prediction into a found one, so the writer looks up the missing ones
/// again) or deleted by retention (then the writer looks up everything itself).
#[derive(Debug)]
struct Found {
    /// The writer's deletion count when the read began.
    deletions: u64,
    /// Per row of the (sorted) batch: its prediction, when found.
    rows: Vec<Option<FoundRow>>,
    versions: Vec<String>,
    outcomes: Vec<u8>,
}

/// One prediction [`Found`] by the caller.
#[derive(Debug, Clone)]
struct FoundRow {
    /// Event time.
    ts: i64,
    /// Index into `Found::versions`.
    version: usize,
    /// Range of `Found::outcomes`; `None` for a row stored without its outcome.
    outcome: Option<std::ops::Range<usize>>,
}

impl SqliteStore {
    /// Finds the predictions of a sorted label batch on a read connection, in one read
    /// transaction. `None` when the model does not exist (the writer answers that).
    fn find_label_predictions(
        &self,
        model: &ModelName,
        batch: &LabelBatch,
    ) -> Result<Option<Found>, StoreError> {
        let deletions = self.deletions.load(Ordering::SeqCst);
        self.read(|conn| {
            let tx = conn.unchecked_transaction()?;
            let Some(id) = model_id(&tx, model)? else {
                return Ok(None);
            };
            let mut found = Found {
                deletions,
                rows: vec![None; batch.rows.len()],
                versions: Vec::new(),
                outcomes: Vec::new(),
            };
            // Distinct ids only; a repeated id (rejected by the writer) needs no row.
            let mut ids: Vec<&str> = Vec::with_capacity(batch.rows.len());
            let mut rows: Vec<usize> = Vec::with_capacity(batch.rows.len());
            for (r, (_, l)) in batch.rows.iter().enumerate() {
                if ids.last() != Some(&l.request_id.as_str()) {
                    ids.push(&l.request_id);
                    rows.push(r);
                }
            }
            find_predictions(&tx, &self.filters, id, &ids, |i, ts, version, outcome| {
                let v = match found.versions.iter().position(|v| v == version) {
                    Some(v) => v,
                    None => {
                        found.versions.push(version.to_owned());
                        found.versions.len() - 1
                    }
                };
                let outcome = outcome.map(|o| {
                    let start = found.outcomes.len();
                    found.outcomes.extend_from_slice(o);
                    start..found.outcomes.len()
                });
                found.rows[rows[i]] = Some(FoundRow {
                    ts,
                    version: v,
                    outcome,
                });
            })?;
            Ok(Some(found))
        })
    }
}

/// The order the writer stores a label batch in: by request id, then row.
fn label_order(row: &(usize, LabelEvent)) -> (&str, usize) {
    (row.1.request_id.as_str(), row.0)
}

/// Sorts a label batch into the writer's order, on the caller's thread.
fn sort_labels(batch: &mut LabelBatch) {
    batch
        .rows
        .sort_unstable_by(|a, b| label_order(a).cmp(&label_order(b)));
}

/// Finds the index rows of the predictions of `ids` (sorted, distinct) and calls `found` with
/// each id's position, event time, version and stored outcome; an id without a call has no
/// prediction yet.
///
/// The open bucket is searched for every id, then each closed bucket for the ids not found yet
/// that its filters let through.
fn find_predictions(
    conn: &Connection,
    filters: &Filters,
    model_id: i64,
    ids: &[&str],
    mut found: impl FnMut(usize, i64, &str, Option<&[u8]>),
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let buckets = Buckets::load(conn, model_id)?;
    let Some(open) = buckets.open else {
        // No prediction was ever stored.
        return Ok(());
    };
    let mut hit = vec![false; ids.len()];
    let all: Vec<usize> = (0..ids.len()).collect();
    walk_bucket(conn, model_id, open, ids, &all, |i, ts, v, o| {
        hit[i] = true;
        found(i, ts, v, o);
    })?;
    // The others, in the closed buckets whose filters may hold them.
    if hit.iter().all(|h| *h) || buckets.closed.is_empty() {
        return Ok(());
    }
    let hashes: Vec<u64> = ids.iter().map(|id| id_hash(id)).collect();
    buckets.search_closed(
        conn,
        filters,
        model_id,
        &hashes,
        &mut hit,
        |bucket, which, hit| {
            walk_bucket(conn, model_id, bucket, ids, which, |i, ts, v, o| {
                hit[i] = true;
                found(i, ts, v, o);
            })
        },
    )
}

/// Finds the rows of `ids[i]` for each `i` of `which` (ascending) in one bucket.
///
/// It walks the bucket in key order from an id not yet found rather than seeking every id:
/// request ids that sit close together in the index (time-ordered ids such as UUIDv7 or
/// sequence numbers, whose late labels come for neighbouring predictions) then cost one step
/// each instead of one B-tree descent each. A walk that meets more than a few rows of other
/// requests in a row stops, and the next id is sought afresh, so scattered (random) ids cost
/// at most that many extra steps each.
fn walk_bucket(
    conn: &Connection,
    model_id: i64,
    bucket: i64,
    ids: &[&str],
    which: &[usize],
    mut found: impl FnMut(usize, i64, &str, Option<&[u8]>),
) -> Result<(), StoreError> {
    const MAX_STRAY_ROWS: usize = 8;
    let mut walk = conn.prepare_cached(
        "SELECT request_id, ts, version, outcome FROM request_index
         WHERE model_id = ?1 AND bucket = ?2 AND request_id >= ?3 ORDER BY request_id",
    )?;
    let mut w = 0;
    while w < which.len() {
        let mut rows = walk.query(params![model_id, bucket, ids[which[w]]])?;
        let mut stray = 0;
        while w < which.len() {
            // Past the bucket's last row: no other id is in it.
            let Some(r) = rows.next()? else {
                return Ok(());
            };
            let id = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
            // Ids before this row are not in the bucket: the walk has passed their place.
            while w < which.len() && ids[which[w]] < id {
                w += 1;
            }
            if w < which.len() && ids[which[w]] == id {
                let version = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
                let outcome = r
                    .get_ref(3)?
                    .as_blob_or_null()
                    .map_err(rusqlite::Error::from)?;
                found(which[w], r.get(1)?, version, outcome);
                w += 1;
                stray = 0;
            } else {
                stray += 1;
                if stray > MAX_STRAY_ROWS {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn ingest_kpis(
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

/// The event time before which a model's predictions are past its retention (and are hidden
/// from reads until the retention loop deletes them).
fn retention_cutoff(conn: &Connection, id: i64) -> Result<i64, StoreError> {
    let retention: Option<i64> = conn.query_row(
        "SELECT retention_days FROM models WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(retention.map_or(i64::MIN, |d| Timestamp::now().micros() - d * DAY_MICROS))
}

/// SQL that recomputes the joined and orphan label counters of the models matching `filter`
/// (a condition on `models`) with one join: after deletions, and when migrating.
fn recount_labelled_sql(filter: &str) -> String {
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

/// SQL that marks dirty every hour holding predictions of the rows of `request_index` matching
/// `filter` (`1` or a condition on `model_id`): what a rebuild, and a migration, start from.
/// The marks are full ones, so the label deltas of those models are dropped.
fn mark_every_hour_sql(filter: &str) -> String {
    format!(
        "INSERT INTO dirty_hours(model_id, version, hour, generation, deltas_only, full_at)
         SELECT model_id, version, ts - (((ts % {HOUR_MICROS}) + {HOUR_MICROS}) % {HOUR_MICROS}), 1, 0, 1
         FROM request_index WHERE {filter} GROUP BY 1, 2, 3
         ON CONFLICT(model_id, version, hour) DO UPDATE SET
            generation = generation + 1, deltas_only = 0, full_at = generation + 1;
         DELETE FROM hour_deltas WHERE {filter};"
    )
}

/// Marks hours dirty, each with a new generation, for a rescan: what changed is more than new
/// labels, so the hours' label deltas are dropped (the rescan reads those labels too).
fn mark_dirty<'a>(
    tx: &Transaction<'_>,
    model_id: i64,
    hours: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<(), StoreError> {
    let mut mark = tx.prepare_cached(
        "INSERT INTO dirty_hours(model_id, version, hour, generation, deltas_only, full_at)
         VALUES (?1, ?2, ?3, 1, 0, 1)
         ON CONFLICT(model_id, version, hour) DO UPDATE SET
            generation = generation + 1, deltas_only = 0, full_at = generation + 1
         RETURNING generation",
    )?;
    let mut drop_deltas = tx.prepare_cached(
        "DELETE FROM hour_deltas WHERE model_id = ?1 AND version = ?2 AND hour = ?3",
    )?;
    for (version, hour) in hours {
        let generation: i64 = mark.query_row(params![model_id, version, hour], |r| r.get(0))?;
        // A new mark has no deltas to drop.
        if generation > 1 {
            drop_deltas.execute(params![model_id, version, hour])?;
        }
    }
    Ok(())
}

/// What one delta adds to its hour.
#[derive(Clone, Copy)]
enum Delta<'a> {
    /// First labels of the hour's stored predictions, in `compact.rs` form.
    Labels(&'a [u8]),
    /// The hour's new predictions stored in this chunk, with the caller's fold of them when
    /// it folded exactly those.
    Predictions { chunk: i64, fold: &'a [u8] },
}

/// Records a delta of one hour and marks the hour.
fn record_delta(
    tx: &Transaction<'_>,
    model_id: i64,
    version: &str,
    hour: i64,
    delta: Delta<'_>,
) -> Result<(), StoreError> {
    // Recorded even while the hour waits for a rescan: if the change races with that rescan,
    // the rescan leaves it to be added afterwards (see `put_aggregates`).
    let (data, chunk) = match delta {
        Delta::Labels(data) => (data, None),
        Delta::Predictions { chunk, fold } => (fold, Some(chunk)),
    };
    tx.prepare_cached(
        "INSERT INTO hour_deltas(model_id, version, hour, data, segment_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![model_id, version, hour, data, chunk])?;
    tx.prepare_cached(
        "INSERT INTO dirty_hours(model_id, version, hour, generation, deltas_only)
         VALUES (?1, ?2, ?3, 1, 1)
         ON CONFLICT(model_id, version, hour) DO UPDATE SET generation = generation + 1",
    )?
    .execute(params![model_id, version, hour])?;
    Ok(())
}

fn put_aggregates(
    tx: &Transaction<'_>,
    model: &ModelName,
    writes: &[AggregateWrite],
) -> Result<(), StoreError> {
    let id = model_id(tx, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
    // A delta that is gone was applied by another refresh, whose result is newer than this
    // one's: writing would add it twice (or lose a later one), so nothing is written.
    {
        let mut applied = tx.prepare_cached("DELETE FROM hour_deltas WHERE id = ?1")?;
        for write in writes {
            for delta in &write.applied {
                if applied.execute([delta])? == 0 {
                    tracing::debug!(model = %model, delta, "label delta already applied: write skipped");
                    return Ok(());
                }
            }
        }
    }
    let mut put = tx.prepare_cached(
        "INSERT INTO aggregates(model_id, kind, hour, version, data) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(model_id, kind, hour, version) DO UPDATE SET data = excluded.data",
    )?;
    let mut delete = tx.prepare_cached(
        "DELETE FROM aggregates WHERE model_id = ?1 AND kind = ?2 AND hour = ?3 AND version = ?4",
    )?;
    let mut clear = tx.prepare_cached(
        "DELETE FROM dirty_hours
         WHERE model_id = ?1 AND version = ?2 AND hour = ?3 AND generation = ?4",
    )?;
    let mut seen = tx.prepare_cached(
        "DELETE FROM hour_deltas WHERE model_id = ?1 AND version = ?2 AND hour = ?3 AND id <= ?4",
    )?;
    let mut raced = tx.prepare_cached(
        "UPDATE dirty_hours SET deltas_only = 1
         WHERE model_id = ?1 AND version = ?2 AND hour = ?3 AND full_at <= ?4",
    )?;
    for write in writes {
        for a in &write.put {
            put.execute(params![id, write.kind, a.hour.micros(), a.version, a.data])?;
        }
        for (version, hour) in &write.delete {
            delete.execute(params![id, write.kind, hour.micros(), version])?;
        }
        for d in &write.clear {
            let hour = d.hour.micros();
            if let Some(through) = write.rescanned_through {
                seen.execute(params![id, d.version, hour, through])?;
            }
            let cleared = clear.execute(params![id, d.version, hour, d.generation])?;
            // Changes raced with the rescan. Each left a delta the rescan did not read, unless
            // it needed a rescan itself (full_at moved past the generation the rescan read).
            if cleared == 0 && write.rescanned_through.is_some() {
                raced.execute(params![id, d.version, hour, d.generation])?;
            }
        }
    }
    Ok(())
}

fn invalidate_aggregates(tx: &Transaction<'_>, model: &ModelName) -> Result<(), StoreError> {
    let id = model_id(tx, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
    tx.execute_batch(&mark_every_hour_sql(&format!("model_id = {id}")))?;
    Ok(())
}

fn put_reference(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    max_features: usize,
    model: &ModelName,
    version: &str,
    rows: &[(usize, ReferenceRow)],
    rejected: &[Quarantined],
) -> Result<ReferenceOutcome, StoreError> {
    let now = Timestamp::now();
    let entry = model_entry(tx, models, model, true)?.expect("created");
    // Rows rejected here; those rejected before are in `rejected`.
    let mut admission = Admission::new(max_features);
    let mut admitted = Vec::with_capacity(rows.len());
    for (index, row) in rows {
        if admission.admit(entry, *index, None, &row.features, row) {
            admitted.push((*index, row));
        }
    }
    if admitted.is_empty() {
        // Every row refused (by the schema, by the feature limit): storing none would replace
        // the model's reference with nothing. Nothing is changed; the caller says why.
        let mut rejected: Vec<Rejection> = (rejected.iter().map(|q| q.rejection.clone()))
            .chain(admission.quarantined.into_iter().map(|q| q.rejection))
            .collect();
        rejected.sort_by_key(|r| r.index);
        return Ok(ReferenceOutcome {
            version: version.to_string(),
            rows: 0,
            rejected,
            schema_changes: Vec::new(),
        });
    }
    // What was derived from the reference (baselines, profiles) is out of date.
    tx.execute(
        "DELETE FROM aggregates WHERE model_id = ?1 AND kind LIKE 'reference%'",
        [entry.id],
    )?;
    tx.execute(
        "DELETE FROM reference_rows WHERE model_id = ?1 AND version = ?2",
        params![entry.id, version],
    )?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO reference_rows(model_id, version, idx, features, prediction, score, scores, label, explanations)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for (index, row) in &admitted {
            insert.execute(params![
                entry.id,
                version,
                *index as i64,
                features_json(&row.features),
                row.prediction.as_ref().map(to_json),
                row.score,
                row.scores.as_ref().map(|s| to_json(&Pairs(s.clone()))),
                row.label.as_ref().map(to_json),
                (!row.explanations.is_empty()).then(|| to_json(&Pairs(row.explanations.clone()))),
            ])?;
        }
    }
    let stored = admitted.len();
    tx.execute(
        "INSERT INTO reference_sets(model_id, version, rows, uploaded_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(model_id, version) DO UPDATE SET rows = excluded.rows, uploaded_at = excluded.uploaded_at",
        params![entry.id, version, stored as i64, now.micros()],
    )?;
    let (schema_changes, quarantined) = admission.finish(tx, entry)?;
    let rejected = quarantine_all(tx, model, "reference", rejected, quarantined, now)?;
    Ok(ReferenceOutcome {
        version: version.to_string(),
        rows: stored,
        rejected,
        schema_changes,
    })
}

fn declare_schema(
    tx: &Transaction<'_>,
    models: &mut HashMap<String, CachedModel>,
    model: &ModelName,
    mut schema: Schema,
) -> Result<(), StoreError> {
    let entry = model_entry(tx, models, model, true)?.expect("created");
    schema.declared = true;
    entry.known = FeatureIndex::of(&schema);
    entry.schema = schema;
    save_schema(tx, entry)
}

fn set_retention(
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

fn apply_retention(tx: &Transaction<'_>, now: Timestamp) -> Result<RetentionReport, StoreError> {
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

fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn outcome_from(what: &'static str, s: Option<String>) -> Result<Option<Outcome>, StoreError> {
    s.map(|s| parse_json::<serde_json::Value>(what, &s).and_then(|v| json_outcome(what, v)))
        .transpose()
}

fn json_outcome(what: &'static str, v: serde_json::Value) -> Result<Outcome, StoreError> {
    match v {
        serde_json::Value::Bool(b) => Ok(Outcome::Bool(b)),
        serde_json::Value::Number(n) => Ok(Outcome::Number(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Ok(Outcome::Text(s)),
        other => Err(StoreError::Corrupt {
            what,
            detail: format!("not a scalar: {other}"),
        }),
    }
}

fn features_from(s: &str) -> Result<Vec<(FeatureName, FeatureValue)>, StoreError> {
    Ok(parse_json::<Pairs<serde_json::Value>>("features", s)?
        .0
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::Bool(b) => FeatureValue::Bool(b),
                serde_json::Value::Number(n) => FeatureValue::Number(n.as_f64().unwrap_or(0.0)),
                serde_json::Value::String(s) => FeatureValue::Text(s),
                _ => FeatureValue::Null,
            };
            (k.into(), v)
        })
        .collect())
}

fn pairs_from<V: serde::de::DeserializeOwned>(
    what: &'static str,
    s: Option<String>,
) -> Result<Option<Vec<(String, V)>>, StoreError> {
    s.map(|s| parse_json::<Pairs<V>>(what, &s).map(|p| p.0))
        .transpose()
}

fn model_id(conn: &Connection, model: &ModelName) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id FROM models WHERE name = ?1",
            [model.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

fn summary(conn: &Connection, id: i64) -> Result<ModelSummary, StoreError> {
    let (name, schema, created_at, retention, labels, labelled): (
        String,
        String,
        i64,
        Option<u32>,
        i64,
        i64,
    ) = conn.query_row(
        "SELECT name, schema, created_at, retention_days, labels, labelled FROM models WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )?;
    let versions_of = |table: &str| -> Result<Vec<VersionSummary>, StoreError> {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT version, predictions, first_ts, last_ts FROM {table} WHERE model_id = ?1 ORDER BY first_ts"
            ))?
            .query_map([id], |r| {
                Ok(VersionSummary {
                    version: r.get(0)?,
                    predictions: r.get::<_, i64>(1)? as u64,
                    first_event: Some(Timestamp(r.get(2)?)),
                    last_event: Some(Timestamp(r.get(3)?)),
                })
            })?
            .collect::<Result<_, _>>()?)
    };
    let versions = versions_of("versions")?;
    let shadow_versions = versions_of("shadow_versions")?;
    let rejected: i64 = conn.query_row(
        "SELECT count(*) FROM rejected WHERE model = ?1",
        [&name],
        |r| r.get(0),
    )?;
    let reference: Vec<ReferenceSummary> = conn
        .prepare_cached(
            "SELECT version, rows, uploaded_at FROM reference_sets WHERE model_id = ?1 ORDER BY version",
        )?
        .query_map([id], |r| {
            Ok(ReferenceSummary {
                version: r.get(0)?,
                rows: r.get::<_, i64>(1)? as u64,
                uploaded_at: Timestamp(r.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(ModelSummary {
        name,
        created_at: Timestamp(created_at),
        predictions: versions.iter().map(|v| v.predictions).sum(),
        labels: labels as u64,
        labelled: labelled as u64,
        first_event: versions.iter().filter_map(|v| v.first_event).min(),
        last_event: versions.iter().filter_map(|v| v.last_event).max(),
        rejected: rejected as u64,
        retention_days: retention,
        versions,
        shadow_versions,
        schema: parse_json("model schema", &schema)?,
        reference,
    })
}

/// A pagination cursor is `chunk id << 20 | row offset`: a chunk holds at most
/// CHUNK_MAX_ROWS (< 2^20) events.
const CURSOR_OFFSET_BITS: i64 = 20;
const DAY_MICROS: i64 = 86_400_000_000;

/// Decodes one stored event. Stored events were validated at ingest; they are read back with the
/// same parser, with an arrival time far enough ahead that no stored timestamp looks "future".
fn corrupt_chunk(chunk: i64, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: "chunk",
        detail: format!("chunk {chunk}: {detail}"),
    }
}

/// The NDJSON of a stored chunk.
fn chunk_text(chunk: i64, data: rusqlite::types::ValueRef<'_>) -> Result<String, StoreError> {
    let data = data.as_blob().map_err(|e| corrupt_chunk(chunk, e))?;
    let text = zstd::stream::decode_all(data).map_err(|e| corrupt_chunk(chunk, e))?;
    String::from_utf8(text).map_err(|e| corrupt_chunk(chunk, e))
}

/// A chunk line read back as its event (the reverse of [`encode_line`], and of a row stored
/// as sent).
pub fn decode_stored(line: &str) -> Result<PredictionEvent, String> {
    let limits = IngestLimits {
        max_features: usize::MAX,
        max_tags: usize::MAX,
        max_request_id_len: usize::MAX,
    };
    parse_prediction_row(line, 0, Timestamp(i64::MAX / 2), &limits)
        .map_err(|r| format!("{}: {}", r.field, r.reason))
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    // Nearest-rank on the sorted delays; exact, these are observed values.
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

impl SqliteStore {
    /// [`Store::scan_predictions`], and with `shadows` [`Store::scan_with_shadows`].
    fn scan(
        &self,
        model: &ModelName,
        range: &ScanRange,
        shadows: bool,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<i64, StoreError> {
        self.read(|conn| {
            // One snapshot for the deltas' watermark and every chunk and label read. Delta
            // ids are AUTOINCREMENT (schema 7): every delta up to the watermark is in it.
            let snapshot = conn.unchecked_transaction()?;
            let last_delta: i64 =
                conn.query_row("SELECT coalesce(max(id), 0) FROM hour_deltas", [], |r| {
                    r.get(0)
                })?;
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let cutoff = retention_cutoff(conn, id)?;
            let from = range.from.map_or(i64::MIN, |t| t.micros()).max(cutoff);
            let to = range.to.map_or(i64::MAX, |t| t.micros());
            // Chunks whose event-time span overlaps the range; events are filtered one by one.
            let mut chunks = conn.prepare_cached(
                "SELECT id, data FROM segments
                 WHERE model_id = ?1 AND max_ts >= ?2 AND min_ts < ?3 ORDER BY id",
            )?;
            // Labels are looked up by the events' request ids (each id's event is in one
            // chunk only), and not at all while the model has no label joined yet.
            // `labelled` counts labels joined to served predictions; a shadow prediction may
            // have one while no served prediction has, so such a scan asks for any label.
            let counter = if shadows { "labels" } else { "labelled" };
            let labelled: i64 = conn.query_row(
                &format!("SELECT {counter} FROM models WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )?;
            let mut label_of = conn.prepare_cached(
                "SELECT label, ts FROM labels WHERE model_id = ?1 AND request_id = ?2",
            )?;
            let mut events: Vec<PredictionEvent> = Vec::with_capacity(SCAN_LABEL_BATCH);
            let mut labels: Vec<Option<LabelEvent>> = Vec::with_capacity(SCAN_LABEL_BATCH);
            // Hands `f` the events gathered, each with its label.
            let mut flush = |events: &mut Vec<PredictionEvent>| -> Result<(), StoreError> {
                labels.clear();
                labels.resize(events.len(), None);
                if labelled > 0 {
                    // In id order, so that consecutive lookups walk the labels' B-tree forward.
                    let mut by_id: Vec<usize> = (0..events.len()).collect();
                    by_id
                        .sort_unstable_by(|&a, &b| events[a].request_id.cmp(&events[b].request_id));
                    for i in by_id {
                        let request_id = &events[i].request_id;
                        let mut found = label_of.query(params![id, request_id])?;
                        if let Some(l) = found.next()? {
                            let label = outcome_from("label", Some(l.get(0)?))?.expect("some");
                            labels[i] = Some(LabelEvent {
                                request_id: request_id.clone(),
                                label,
                                timestamp: Timestamp(l.get(1)?),
                            });
                        }
                    }
                }
                for (event, label) in events.iter().zip(&labels) {
                    f(event, label.as_ref());
                }
                events.clear();
                Ok(())
            };
            let mut rows = chunks.query(params![id, from, to])?;
            while let Some(r) = rows.next()? {
                crate::cancel::check()?;
                let chunk: i64 = r.get(0)?;
                let text = chunk_text(chunk, r.get_ref(1)?)?;
                for line in text.lines() {
                    let event = decode_stored(line).map_err(|e| corrupt_chunk(chunk, e))?;
                    let ts = event.timestamp.micros();
                    if ts < from || ts >= to || !(shadows || event.role.is_served()) {
                        continue;
                    }
                    if let Some(v) = &range.version {
                        if event.model_version.as_deref().unwrap_or("") != v {
                            continue;
                        }
                    }
                    events.push(event);
                    if events.len() == SCAN_LABEL_BATCH {
                        flush(&mut events)?;
                    }
                }
            }
            flush(&mut events)?;
            // The statements finish before the snapshot ends (a pooled connection must not
            // stay inside a read transaction).
            drop(rows);
            drop((chunks, label_of));
            snapshot.commit()?;
            Ok(last_delta)
        })
    }
}

impl Store for SqliteStore {
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

    fn declare_schema(&self, model: &ModelName, schema: Schema) -> Result<(), StoreError> {
        let model = model.clone();
        self.submit(|r| Job::DeclareSchema(model, schema, r))
    }

    fn set_retention(&self, model: &ModelName, days: Option<u32>) -> Result<(), StoreError> {
        let model = model.clone();
        self.submit(|r| Job::SetRetention(model, days, r))
    }

    fn apply_retention(&self, now: Timestamp) -> Result<RetentionReport, StoreError> {
        self.submit(|r| Job::ApplyRetention(now, r))
    }

    fn list_models(&self) -> Result<Vec<ModelSummary>, StoreError> {
        self.read(|conn| {
            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM models ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.into_iter().map(|id| summary(conn, id)).collect()
        })
    }

    fn model(&self, model: &ModelName) -> Result<Option<ModelSummary>, StoreError> {
        self.read(|conn| match model_id(conn, model)? {
            Some(id) => summary(conn, id).map(Some),
            None => Ok(None),
        })
    }

    fn window_counts(
        &self,
        model: &ModelName,
        query: &WindowQuery,
    ) -> Result<Vec<WindowCounts>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?.ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT p.ts, l.ts, p.error FROM request_index p
                 LEFT JOIN labels l ON l.model_id = p.model_id AND l.request_id = p.request_id
                 WHERE p.model_id = ?1 AND p.ts >= ?2 AND p.ts < ?3 AND (?4 IS NULL OR p.version = ?4)",
            )?;
            let from = query.from.map_or(i64::MIN, |t| t.micros());
            let to = query.to.map_or(i64::MAX, |t| t.micros());
            struct Acc {
                predictions: u64,
                errors: u64,
                delays: Vec<f64>,
            }
            let mut windows: BTreeMap<i64, Acc> = BTreeMap::new();
            let mut rows = stmt.query(params![id, from, to, query.version])?;
            while let Some(r) = rows.next()? {
                let ts: i64 = r.get(0)?;
                let label_ts: Option<i64> = r.get(1)?;
                let is_error: bool = r.get(2)?;
                let start = query.window.start_of(Timestamp(ts)).micros();
                let acc = windows.entry(start).or_insert(Acc {
                    predictions: 0,
                    errors: 0,
                    delays: Vec::new(),
                });
                acc.predictions += 1;
                acc.errors += u64::from(is_error);
                if let Some(lt) = label_ts {
                    acc.delays.push((lt - ts) as f64 / 1e6);
                }
            }
            Ok(windows
                .into_iter()
                .map(|(start, mut acc)| {
                    acc.delays.sort_by(f64::total_cmp);
                    WindowCounts {
                        start: Timestamp(start),
                        end: Timestamp(start + query.window.micros()),
                        predictions: acc.predictions,
                        labelled: acc.delays.len() as u64,
                        errors: acc.errors,
                        label_delay_seconds: (!acc.delays.is_empty()).then(|| DelayQuantiles {
                            p50: quantile(&acc.delays, 0.5),
                            p90: quantile(&acc.delays, 0.9),
                            max: *acc.delays.last().expect("non-empty"),
                        }),
                    }
                })
                .collect())
        })
    }

    fn predictions(
        &self,
        model: &ModelName,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Page<PredictionEvent>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let cutoff = retention_cutoff(conn, id)?;
            let (after_chunk, after_offset) = after.map_or((0, -1), |c| {
                (c >> CURSOR_OFFSET_BITS, c & ((1 << CURSOR_OFFSET_BITS) - 1))
            });
            let mut stmt = conn.prepare_cached(
                "SELECT id, data FROM segments WHERE model_id = ?1 AND id >= ?2 ORDER BY id",
            )?;
            let mut rows = stmt.query(params![id, after_chunk])?;
            let mut items = Vec::new();
            while let Some(r) = rows.next()? {
                let chunk: i64 = r.get(0)?;
                let text = chunk_text(chunk, r.get_ref(1)?)?;
                for (offset, line) in text.lines().enumerate() {
                    let offset = offset as i64;
                    if chunk == after_chunk && offset <= after_offset {
                        continue;
                    }
                    let event = decode_stored(line)
                        .map_err(|e| corrupt_chunk(chunk, format!("row {offset}: {e}")))?;
                    if event.timestamp.micros() < cutoff {
                        continue;
                    }
                    items.push(event);
                    if items.len() == limit {
                        let next = Some((chunk << CURSOR_OFFSET_BITS) | offset);
                        return Ok(Page { items, next });
                    }
                }
            }
            Ok(Page { items, next: None })
        })
    }

    fn labels(
        &self,
        model: &ModelName,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Page<LabelEvent>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT rowid, request_id, label, ts FROM labels
                 WHERE model_id = ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![id, after.unwrap_or(0), limit as i64])?;
            let mut items = Vec::new();
            let mut last = None;
            while let Some(r) = rows.next()? {
                last = Some(r.get::<_, i64>(0)?);
                items.push(LabelEvent {
                    request_id: r.get(1)?,
                    label: outcome_from("label", Some(r.get(2)?))?.expect("some"),
                    timestamp: Timestamp(r.get(3)?),
                });
            }
            let next = if items.len() == limit { last } else { None };
            Ok(Page { items, next })
        })
    }

    fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let mut stmt = conn.prepare_cached(
                "SELECT features, prediction, score, scores, label, explanations FROM reference_rows
                 WHERE model_id = ?1 AND version = ?2 ORDER BY idx",
            )?;
            let mut rows = stmt.query(params![id, version.unwrap_or("")])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(ReferenceRow {
                    features: features_from(&r.get::<_, String>(0)?)?,
                    prediction: outcome_from("prediction", r.get(1)?)?,
                    score: r.get(2)?,
                    scores: pairs_from("scores", r.get(3)?)?,
                    label: outcome_from("label", r.get(4)?)?,
                    // NULL in rows stored before schema 9, or without attributions.
                    explanations: pairs_from("explanations", r.get(5)?)?.unwrap_or_default(),
                });
            }
            Ok(out)
        })
    }

    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<i64, StoreError> {
        self.scan(model, range, false, f)
    }

    fn scan_with_shadows(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&PredictionEvent, Option<&LabelEvent>),
    ) -> Result<(), StoreError> {
        self.scan(model, range, true, f).map(|_| ())
    }

    fn scan_chunks(
        &self,
        model: &ModelName,
        chunks: &[i64],
        f: &mut dyn FnMut(i64, &PredictionEvent),
    ) -> Result<(), StoreError> {
        self.read(|conn| {
            let id = model_id(conn, model)?
                .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
            let cutoff = retention_cutoff(conn, id)?;
            let mut read =
                conn.prepare_cached("SELECT data FROM segments WHERE model_id = ?1 AND id = ?2")?;
            for &chunk in chunks {
                crate::cancel::check()?;
                let mut rows = read.query(params![id, chunk])?;
                let Some(r) = rows.next()? else {
                    continue;
                };
                let text = chunk_text(chunk, r.get_ref(0)?)?;
                for line in text.lines() {
                    let event = decode_stored(line).map_err(|e| corrupt_chunk(chunk, e))?;
                    // A chunk straddling the retention cutoff keeps its expired events. Deltas
                    // name chunks of served predictions only.
                    if event.timestamp.micros() >= cutoff && event.role.is_served() {
                        f(chunk, &event);
                    }
                }
            }
            Ok(())
        })
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

    fn models_with_dirty_hours(&self) -> Result<Vec<ModelName>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name FROM models m
                 WHERE EXISTS (SELECT 1 FROM dirty_hours d WHERE d.model_id = m.id)
                 ORDER BY name",
            )?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            names
                .map(|n| {
                    let n = n?;
                    ModelName::new(&n).map_err(|e| StoreError::Corrupt {
                        what: "model name",
                        detail: format!("{n}: {e}"),
                    })
                })
                .collect()
        })
    }

    fn dirty_hours(&self, model: &ModelName) -> Result<Vec<DirtyHour>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT version, hour, generation, deltas_only FROM dirty_hours
                 WHERE model_id = ?1 ORDER BY hour, version",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok(DirtyHour {
                    version: r.get(0)?,
                    hour: Timestamp(r.get(1)?),
                    generation: r.get(2)?,
                    deltas_only: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn mark_for_rescan(&self, model: &ModelName, hours: &[DirtyHour]) -> Result<(), StoreError> {
        let hours = hours
            .iter()
            .map(|d| (d.version.clone(), d.hour.micros()))
            .collect();
        self.submit(|reply| Job::MarkForRescan(model.clone(), hours, reply))
    }

    fn hour_deltas(&self, model: &ModelName) -> Result<Vec<HourDelta>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT id, version, hour, data, segment_id FROM hour_deltas
                 WHERE model_id = ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([id])?;
            let mut deltas = Vec::new();
            while let Some(r) = rows.next()? {
                deltas.push(HourDelta {
                    id: r.get(0)?,
                    version: r.get(1)?,
                    hour: Timestamp(r.get(2)?),
                    data: r.get(3)?,
                    chunk: r.get(4)?,
                });
            }
            Ok(deltas)
        })
    }

    fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<StoredAggregate>, StoreError> {
        self.read(|conn| {
            let Some(id) = model_id(conn, model)? else {
                return Ok(Vec::new());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT version, hour, data FROM aggregates
                 WHERE model_id = ?1 AND kind = ?2 AND hour >= ?3 AND hour < ?4
                   AND (?5 IS NULL OR version = ?5)
                 ORDER BY hour, version",
            )?;
            let from = range.from.map_or(i64::MIN, |t| t.micros());
            let to = range.to.map_or(i64::MAX, |t| t.micros());
            let rows = stmt.query_map(params![id, kind, from, to, range.version], |r| {
                Ok(StoredAggregate {
                    version: r.get(0)?,
                    hour: Timestamp(r.get(1)?),
                    data: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
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

    fn rejected(&self, model: &ModelName, limit: usize) -> Result<Vec<RejectedRow>, StoreError> {
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

#[cfg(test)]
mod tests;
