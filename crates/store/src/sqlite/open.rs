//! Open and migrate: the data directory's locks, the guard's look at its files before SQLite
//! opens anything (`guard.rs`), the writer's connection and its settings (`WriterSettings`: a
//! service's or a bulk import's), the schema steps (`migrate`, over `SCHEMA_STEPS` in
//! `sqlite.rs`), the checkpointer thread, and a clean close (`Drop`).
//!
//! Invariants:
//! - one process per data directory: an OS lock on the directory itself and on `LOCK`;
//! - never a fresh store over a damaged one: `guard::inspect` runs before SQLite opens the
//!   database, and an existing database gets `PRAGMA quick_check` before anything is written;
//! - every pending schema step runs in one transaction, so a store is at one version or the next;
//! - the marker says `closed` only once the writer, the checkpointer and every reader have
//!   closed (the last connection checkpoints the WAL into the database).

use super::*;

pub(super) const DB_FILE: &str = "modelwatch.db";

const LOCK_FILE: &str = "LOCK";

/// Page size of a new database. Every commit of many events rewrites most pages of the
/// random-keyed request index however small they are (ADR 001), and the WAL writes a page as a
/// frame of two system calls: 16 KiB pages write the same bytes in a quarter of the frames. On
/// the 1M-row import the writer and the checkpointer used 1.1 s less CPU than with 4 KiB, and
/// ingest over HTTP went from 107-111k to 132-135k events/s; 32 and 64 KiB did little better.
pub(super) const PAGE_SIZE: i64 = 16_384;

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
    /// a 32 MiB page cache, half the service's, because the cache is most of what a smaller one
    /// saves and the import's speed did not measurably depend on it: the 1M-row import's peak
    /// RSS was 386-396 MB at 128 MiB, 303-328 MB at 64 MiB,
    /// 280-287 at 48 MiB and 266-277 MB at 32 MiB, its CPU within the noise at each step
    /// (pairs alternated run by run, docs/benchmarks.md, issue 24). Checkpoints are left to
    /// the checkpointer thread: each late commit of such an import writes about 100 MB of WAL,
    /// so the service's threshold made the writer checkpoint after every commit, on the
    /// import's critical path.
    const IMPORT: WriterSettings = WriterSettings {
        cache_kib: 32_768,
        checkpoint_mib: 0,
        bucket_rows: BUCKET_ROWS,
        group_buckets: GROUP_BUCKETS,
    };
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`. Fails with [`StoreError::Locked`] when
    /// another process has it open.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(dir, WriterSettings::SERVICE)
    }

    /// [`SqliteStore::open`] for a process that bulk-loads the store and ends: the writer keeps
    /// a smaller page cache (32 MiB instead of 64 MiB, to bound the import's memory) and leaves
    /// every checkpoint to the checkpointer thread. What is stored and when it is durable do not change.
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
        let conn = guard::corrupt_is_damage(&dir, configure(&db, &settings, inspection.check))?;
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

/// Opens the writer's connection to `db` with the store's settings, checks the database when
/// `check` (`PRAGMA quick_check`: garbage pages refuse the open instead of failing reads later;
/// `guard::inspect` says when) and brings its schema up to date.
fn configure(db: &Path, settings: &WriterSettings, check: bool) -> Result<Connection, StoreError> {
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
    if check {
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

/// The least time between two background checkpoints.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
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
