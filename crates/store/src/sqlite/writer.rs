//! The writer and group commit: every write is a `Job` queued to the one writer thread, which
//! takes the jobs queued at that moment into one transaction (one fsync for many requests) and
//! answers each (`Reply`, `Pending`) only after that transaction committed with
//! `synchronous=FULL`.
//!
//! Invariants:
//! - only this thread writes; it owns each model's schema cache (`CachedModel`), so schema
//!   inference cannot race;
//! - a job that fails after writing rolls back its whole group, whose jobs then run again one
//!   per transaction: the failing job leaves nothing behind and the others are stored (no
//!   savepoints: they cost 7 % of the server's CPU under ingest);
//! - a job's inputs are only read, so that it can run again after its group was rolled back;
//!   the schema cache is dropped with any rolled-back job;
//! - a group holds at most `MAX_ROWS_PER_COMMIT` rows, bounding the latency an import adds.

use super::*;

/// Upper bound on rows in one group commit: bounds the latency a large import adds to a small
/// concurrent request, and the WAL growth between checkpoints.
const MAX_ROWS_PER_COMMIT: usize = 200_000;

/// Where a job's answer goes, and the answer itself while the fate of the job's transaction is
/// not known. `Sent` is what the caller gets on success: the job's result (`T`), or for
/// predictions the result and the batch, to be freed on the caller's thread.
pub(super) struct Reply<T, Sent = T> {
    pub(super) to: Sender<Result<Sent, StoreError>>,
    pub(super) result: Option<Result<T, StoreError>>,
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
pub(super) struct Pending<T>(Receiver<Result<T, StoreError>>);

impl<T> Pending<T> {
    pub(super) fn wait(self) -> Result<T, StoreError> {
        self.0.recv().map_err(|_| StoreError::WriterGone)?
    }
}

/// A prediction batch handed to the writer by [`SqliteStore::submit_predictions`].
pub struct PendingPredictions {
    pub(super) served: Pending<(IngestOutcome, PredictionBatch)>,
    /// Names the job for the labels of its rows.
    pub(super) job: u64,
    /// The batch's shadow predictions, stored by a job of their own (ADR 011).
    pub(super) shadow: Option<Pending<IngestOutcome>>,
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
pub struct PendingLabels(pub(super) Pending<IngestOutcome>);

impl PendingLabels {
    /// Blocks until the batch is committed (durable) or has failed.
    pub fn wait(self) -> Result<IngestOutcome, StoreError> {
        self.0.wait()
    }
}

pub(super) enum Job {
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
            | Job::InvalidateAggregates(_, reply) => reply.send(committed, |()| ()),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Job::Predictions(_, b, e, _) => e.keys.len() + b.rejected.len(),
            Job::Labels(_, b, ..) => b.rows.len() + b.rejected.len(),
            Job::Shadow(_, rows, _) => rows.len(),
            Job::Kpis(_, rows, rejected, _) => rows.len() + rejected.len(),
            Job::Reference { rows, .. } => rows.len(),
            Job::PutAggregates(_, w, _) => w.iter().map(|w| w.put.len() + w.refreshed.len()).sum(),
            _ => 1,
        }
    }
}

impl SqliteStore {
    pub(super) fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, StoreError> {
        self.enqueue(make)?.wait()
    }

    pub(super) fn enqueue<T, Sent>(
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
}

/// The writer thread's state. Only this thread writes; the schema cache is therefore exact
/// except after a rolled-back job, when the model's entry is dropped and reloaded.
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) models: HashMap<String, CachedModel>,
    /// Tells the checkpointer that a commit added pages to the WAL.
    pub(super) committed: Sender<()>,
    pub(super) shared: WriterShared,
    /// The index rows of the last job if it was a predictions job that stored every row of
    /// its batch as new, for the labels of the same rows
    /// ([`SqliteStore::submit_gathered_with_labels`]).
    pub(super) stored: Option<StoredBatch>,
}

/// What the writer's jobs share with the store's readers, and its settings.
pub(super) struct WriterShared {
    /// Bumped after every commit that deleted request-index rows: see [`Found`].
    pub(super) deletions: Arc<AtomicU64>,
    pub(super) filters: Arc<Filters>,
    pub(super) bucket_rows: i64,
    pub(super) group_buckets: i64,
    /// Most features a model's rows may give it (`SqliteStore::set_max_features_per_model`).
    pub(super) max_features: Arc<AtomicUsize>,
}

impl WriterShared {
    pub(super) fn max_features(&self) -> usize {
        self.max_features.load(Ordering::Relaxed)
    }
}

impl Writer {
    pub(super) fn run(mut self, jobs: Receiver<Job>) {
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
    pub(super) fn commit_group(&mut self, mut jobs: Vec<Job>) {
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
            let all_new = matches!(&result, Ok(out) if out.accepted == encoded.keys.len());
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
