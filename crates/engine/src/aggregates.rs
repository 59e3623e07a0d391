//! The per-hour cache: the persisted [`WindowAccumulator`] and [`WindowSketch`] of every
//! (version, event-time hour), so that a query merges at most a few hundred small states
//! whatever the traffic, and the refresh of the dirty hours. It knows the state types
//! ([`crate::state`], [`crate::sketch`]) and the store, not the reports: whether the hours
//! answer a query is [`crate::planner`]'s call, and the reports are built by
//! [`crate::performance`] and [`crate::drift`] from what [`hour_states`] and [`drift_hours`]
//! return.
//!
//! # How they stay right
//! - The store knows which (version, hour)s are stale (the embedded store marks an hour dirty in
//!   the same transaction as the predictions or labels that change it; a label marks the hour of
//!   its prediction's event time), and says so with what can be added to each
//!   (`DerivedState::stale_hours`). A [`refresh`] adds that, or rescans the hour from the raw
//!   log, and writes the accumulators while answering the stale hours as it read them; a change
//!   made meanwhile keeps its hour stale. So an aggregate is never stale without the store
//!   knowing, even across a crash, and [`rebuild`] can always start over.
//! - The accumulators are built for one [`TaskSpec`] per model, decided by a [`TaskDetector`]
//!   persisted beside them and fed every row a refresh scans (and the reference). When new rows
//!   change the decision (a third class appears), every hour is marked and rebuilt. Each hour
//!   blob carries the spec it was built for; a query finding another one answers from the raw
//!   events instead.
//! - The decision rule is part of the spec (`decision`): aggregates written before it was
//!   (when the score decided the class) carry another spec, and their task decision no longer
//!   parses; such a decision is dropped and every hour rebuilt.
//! - A task declared for the model (API or config file, [`declare_task`]) overrides detection;
//!   a change of it rebuilds every hour.
//! - Hours are UTC-aligned, as are 1h, 1d and 7d windows, so windows are unions of hours.
//!
//! Encoding: postcard (compact, exact floats); an hour of a binary model is a few KiB.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Instant;

use modelwatch_core::{ModelName, PredictionEvent, Timestamp, Window};
use modelwatch_store::{
    hour_of, Addition, AggregateWrite, HourFold, PredictionsRef, ScanRange, StaleHour, Store,
    StoreError, StoredAggregate, HOUR_MICROS, MODEL_WIDE,
};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::estimate::{Estimator, HourEstimate, WindowEstimation, ESTIMATE};
use crate::exploration::{self, Split};
use crate::query::{DriftQuery, FeedbackQuery, PerformanceQuery};
use crate::reference::ReferenceInfo;
use crate::sketch::{Reference, WindowSketch, Windowed};
use crate::state::{
    baseline_state, choose_task, Task, TaskDetector, TaskSpec, TaskState, WindowAccumulator,
};

mod import_fold;
pub use import_fold::{ImportFold, ImportState};

/// Kind of the per-hour performance aggregates.
pub const PERFORMANCE: &str = "performance";
/// Kind of the model's persisted task decision (one model-wide row).
const TASK: &str = "task";
/// Kind of the task declared for the model over the API (one model-wide row, JSON of a
/// [`Task`]). A setting, not a cache: nothing but [`declare_task`] writes or deletes it.
const DECLARED_TASK: &str = "declared-task";
/// The model-wide aggregates that are settings a user made, not caches of the events: the
/// declared task, the fairness settings, the service-level settings. A copy of a store
/// (`modelwatch migrate`) carries them as they are; everything else it lets the target rebuild.
pub const MODEL_SETTINGS: [&str; 3] = [
    DECLARED_TASK,
    crate::fairness::SETTINGS,
    crate::service_levels::SETTINGS,
];

/// Kind of the baseline state of a reference dataset; the store deletes every kind starting
/// with `reference` when a reference is uploaded.
const BASELINE: &str = "reference-baseline";

/// Kind of the per-hour drift sketches ([`WindowSketch`] against the reference of
/// version-less queries, see [`crate::reference`]).
/// It starts with `reference`, so a reference upload deletes them with the profile.
pub const DRIFT: &str = "reference-drift";
/// Kind of the model-wide stamp of the reference the drift sketches are built against: when it
/// is missing or differs from the stored profile's, every hour is marked and rebuilt.
const DRIFT_STAMP: &str = "reference-drift-stamp";

/// Kind of the model-wide key ([`Estimator::key`]) of the estimator the per-hour estimation
/// states ([`ESTIMATE`]) are built with: when it is missing or differs from the current one,
/// every hour is marked and rebuilt. It starts with `reference`, so a reference upload deletes
/// it with the states.
const ESTIMATE_KEY: &str = "reference-estimate-key";

/// Hours scanned in one pass of a refresh at most: bounds the memory of the accumulators held.
const MAX_HOURS_PER_PASS: usize = 24 * 31;

/// The layout of the stored performance states ([`HourBlob`], [`BaselineBlob`], the folds made
/// on arrival): written first in each, and a blob that does not start with it (written by an
/// older modelwatch) does not decode, so its hour is rebuilt ([`readable`]), its baseline
/// folded again, its fold on arrival not used (the chunk is read instead). Changed with the
/// layout. 2: exact float sums ([`modelwatch_stats::exact::ExactSum`]); before, the blobs
/// started with the spec's length, far below this number.
const STATE_FORMAT: u64 = 0x6d77_5374_6174_0002;

/// [`STATE_FORMAT`] in a stored blob: any other number refuses the blob.
#[derive(Debug, Clone, Copy, Default)]
struct Format;

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(STATE_FORMAT)
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u64::deserialize(d)? {
            STATE_FORMAT => Ok(Format),
            other => Err(serde::de::Error::custom(format!(
                "state layout {other:#x}, not {STATE_FORMAT:#x}: written by another modelwatch"
            ))),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct HourBlob {
    format: Format,
    /// JSON of the [`TaskSpec`] the accumulator was built for.
    spec: String,
    acc: WindowAccumulator,
    /// The hour's exploration split for [`exploration::DEFAULT_TAG`], beside `acc`. A blob
    /// written before the split was kept ends after `acc`, no longer decodes, and has every
    /// hour rebuilt (see [`readable`]).
    split: Split,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaskDecision {
    detector: TaskDetector,
    spec: TaskSpec,
}

#[derive(Debug, Serialize, Deserialize)]
struct BaselineBlob {
    format: Format,
    spec: String,
    state: Option<TaskState>,
    /// Which reference the state was folded from (replies name it).
    reference: Option<ReferenceInfo>,
}

pub(crate) fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

fn spec_key(spec: &TaskSpec) -> String {
    serde_json::to_string(spec).expect("a spec serializes")
}

/// What one [`refresh`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefreshReport {
    /// (version, hour) aggregates written or deleted.
    pub hours: usize,
    /// Predictions rescanned.
    pub predictions: u64,
    /// Labels added to stored aggregates from label deltas, without a rescan.
    pub labels_added: u64,
    /// New predictions added to stored aggregates from their deltas, without a rescan of
    /// their hours.
    pub predictions_added: u64,
    /// Of those, the ones whose chunk was decoded (the others came folded on arrival).
    pub predictions_decoded: u64,
    /// The task decision changed, so every hour was rebuilt.
    pub rebuilt: bool,
    /// A drift query's refresh found no task decision yet and left the hours as they were (the
    /// drift query then reads the raw events).
    pub undecided: bool,
    pub seconds: f64,
}

/// The data of `model`'s model-wide aggregate of `kind` (a task decision, a drift stamp).
fn model_wide(
    store: &dyn Store,
    model: &ModelName,
    kind: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let rows = store.aggregates(model, kind, &ScanRange::default())?;
    Ok(rows.into_iter().next().map(|a| a.data))
}

/// The model's task decision. One that does not parse was written by an older modelwatch
/// (before the decision rule was part of the spec, when the score decided the class): every
/// hour is marked for a rebuild and the model has no decision until the next refresh makes one.
fn load_decision(store: &dyn Store, model: &ModelName) -> Result<Option<TaskDecision>, StoreError> {
    let Some(data) = model_wide(store, model, TASK)? else {
        return Ok(None);
    };
    match parse_decision(&data) {
        Ok(d) => Ok(Some(d)),
        Err(e) => {
            tracing::warn!(model = %model, error = %e, "task decision of an older modelwatch: rebuilding every hour");
            store.invalidate_aggregates(model)?;
            Ok(None)
        }
    }
}

/// Tasks declared in the config file (`[models.<name>] task`), by model name: they win over
/// one declared over the API. Set once when the server starts.
static CONFIGURED_TASKS: LazyLock<Mutex<HashMap<String, Task>>> = LazyLock::new(Mutex::default);

/// Sets the tasks the config file declares (replacing any set before).
pub fn configure_tasks(tasks: impl IntoIterator<Item = (String, Task)>) {
    *CONFIGURED_TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = tasks.into_iter().collect();
}

/// The task the config file declares for `model`, if any.
pub fn configured_task(model: &ModelName) -> Option<Task> {
    CONFIGURED_TASKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(model.as_str())
        .copied()
}

/// The task declared over the API for `model`, if any (the config file's is
/// [`configured_task`]).
pub fn api_declared_task(store: &dyn Store, model: &ModelName) -> Result<Option<Task>, StoreError> {
    model_wide(store, model, DECLARED_TASK)?
        .map(|data| serde_json::from_slice(&data).map_err(|e| corrupt("declared task", e)))
        .transpose()
}

/// The task declared for `model`: the config file's, else the one declared over the API.
pub fn declared_task(store: &dyn Store, model: &ModelName) -> Result<Option<Task>, StoreError> {
    match configured_task(model) {
        Some(t) => Ok(Some(t)),
        None => api_declared_task(store, model),
    }
}

/// Declares the task of `model` (`None`: back to detection), persisted with the model. Every
/// hour is marked, so that the next refresh rebuilds the aggregates for the new task. The
/// model must exist ([`StoreError::ModelNotFound`] otherwise).
pub fn declare_task(
    store: &dyn Store,
    model: &ModelName,
    task: Option<Task>,
) -> Result<(), StoreError> {
    store.put_aggregates(model, declared_task_write(task))?;
    store.invalidate_aggregates(model)
}

fn declared_task_write(task: Option<Task>) -> AggregateWrite {
    let mut write = AggregateWrite {
        kind: DECLARED_TASK.into(),
        ..AggregateWrite::default()
    };
    match task {
        Some(t) => write.put.push(StoredAggregate {
            version: String::new(),
            hour: MODEL_WIDE,
            data: serde_json::to_vec(&t).expect("a task serializes"),
        }),
        None => write.delete.push((String::new(), MODEL_WIDE)),
    }
    write
}

fn parse_decision(data: &[u8]) -> Result<TaskDecision, StoreError> {
    serde_json::from_slice(data).map_err(|e| corrupt("task decision", e))
}

fn save_decision(store: &dyn Store, model: &ModelName, d: &TaskDecision) -> Result<(), StoreError> {
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: TASK.into(),
            put: vec![StoredAggregate {
                version: String::new(),
                hour: MODEL_WIDE,
                data: serde_json::to_vec(d).expect("a decision serializes"),
            }],
            ..AggregateWrite::default()
        },
    )
}

/// Brings the aggregates of `model` up to date with its raw events: adds the label deltas of
/// hours whose only change is first labels, rescans the other dirty hours.
/// Cheap when nothing changed (one indexed read).
pub fn refresh(store: &dyn Store, model: &ModelName) -> Result<RefreshReport, EngineError> {
    refresh_against(store, model, None, Decide::Yes)
}

/// Whether a refresh may make or change the model's task decision. A drift query's refresh
/// may not: drift does not depend on the task, so it neither runs the first detection (the
/// reference read again, an hour scanned) nor rebuilds every hour when the decision changes.
/// Its rows still go to the persisted detector (a refreshed hour is never read again for the
/// task), and the next deciding refresh (the background one, a performance query) acts on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decide {
    Yes,
    /// Refresh with the decision as stored (even one out of date), or not at all when there
    /// is none yet ([`RefreshReport::undecided`]).
    No,
}

/// One refresh at a time per model in this process. Two racing refreshes could each write an
/// hour from a different moment of the log, and a label delta must be added exactly once.
fn refresh_lock(model: &ModelName) -> Arc<Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = LazyLock::new(Mutex::default);
    LOCKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(model.to_string())
        .or_default()
        .clone()
}

/// [`refresh`] with the all-versions reference already loaded by the caller (a drift query),
/// so it is not read and parsed a second time.
fn refresh_against(
    store: &dyn Store,
    model: &ModelName,
    known: Option<&Reference>,
    decide: Decide,
) -> Result<RefreshReport, EngineError> {
    let lock = refresh_lock(model);
    let _one_at_a_time = lock.lock().unwrap_or_else(PoisonError::into_inner);
    refresh_locked(store, model, known, decide)
}

fn refresh_locked(
    store: &dyn Store,
    model: &ModelName,
    known: Option<&Reference>,
    decide: Decide,
) -> Result<RefreshReport, EngineError> {
    let started = Instant::now();
    let mut report = RefreshReport::default();
    let declared = declared_task(store, model)?;
    let mut stored = load_decision(store, model)?;
    if stored.is_none() && decide == Decide::No {
        report.undecided = true;
        return Ok(report);
    }
    // A task declared (or undeclared) since the decision was made, or rules of detection that
    // changed with an upgrade: every hour is rebuilt. Marked before the new decision is saved,
    // so that a crash in between leaves the marks, never hours of the old task unmarked.
    // (Not for a drift query: it goes on with the stored decision, which its sketches do not
    // depend on, and leaves the rebuild to the next deciding refresh.)
    if let Some(d) = stored.as_mut().filter(|_| decide == Decide::Yes) {
        let wanted = d.detector.clone().finish(declared, None);
        if wanted != d.spec {
            tracing::info!(model = %model, task = ?wanted.task, "task decision out of date: rebuilding aggregates");
            store.invalidate_aggregates(model)?;
            d.spec = wanted;
            save_decision(store, model, d)?;
            report.rebuilt = true;
        }
    }
    // Before the first decision nothing is stored to add to: every stale hour is rescanned,
    // and what could be added is not read.
    let with_additions = stored.is_some();
    let dirty = store.stale_hours(model, with_additions)?;
    if dirty.is_empty() {
        return Ok(report);
    }
    // The config file's task is kept with the model too, so that commands reading the data
    // directory without the server's config (`modelwatch metrics --data`) decide alike.
    if let Some(t) = configured_task(model) {
        if api_declared_task(store, model)? != Some(t) {
            store.put_aggregates(model, declared_task_write(Some(t)))?;
        }
    }
    let loaded;
    let reference = match known {
        Some(r) => Some(r),
        None => {
            loaded = drift_reference(store, model)?;
            loaded.as_ref()
        }
    };
    let dirty = if let Some(r) = reference {
        if ensure_drift_stamp(store, model, r)? {
            store.stale_hours(model, with_additions)?
        } else {
            dirty
        }
    } else {
        dirty
    };
    let first = stored.is_none();
    let mut decision = match stored {
        Some(d) => d,
        None => first_decision(store, model, &dirty, declared)?,
    };
    let (estimator, marked_all) = ensure_estimate_key(store, model, &decision.spec)?;
    let dirty = if marked_all {
        store.stale_hours(model, with_additions)?
    } else {
        dirty
    };
    let mut detector = decision.detector.clone();
    let spec_json = spec_key(&decision.spec);
    let basis = Basis {
        store,
        model,
        spec: &decision.spec,
        spec_json: &spec_json,
        reference,
        estimator: estimator.as_ref(),
    };
    // Hours whose only changes are new predictions and first labels get them added to their
    // stored aggregates. (Before the first decision nothing is stored to add them to.)
    let (deltas_only, mut dirty): (Vec<StaleHour>, Vec<StaleHour>) =
        dirty.into_iter().partition(|d| d.additions().is_some());
    let unapplied = if first {
        deltas_only
    } else {
        add_deltas(&basis, deltas_only, &mut detector, &mut report)?
    };
    // The hours that could not be updated are rescanned. No addition is counted twice: the
    // rescan's write answers what its scan saw (`StaleHour::rescanned`), and an addition the
    // scan did not see stays for the next refresh.
    dirty.extend(unapplied);
    // Consecutive dirty hours are scanned together, in passes of bounded length.
    let mut hours: Vec<i64> = dirty.iter().map(|d| d.hour.micros()).collect();
    hours.sort_unstable();
    hours.dedup();
    let marked: HashSet<(&str, i64)> = dirty
        .iter()
        .map(|d| (d.version.as_str(), d.hour.micros()))
        .collect();
    // Passes run on every core: each reads its own chunks through its own read connection;
    // the writes then go through the store's single writer, one pass at a time.
    let passes = runs(&hours);
    let results = modelwatch_stats::parallel::parallel_map(&passes, |run| {
        rescan(&basis, run, &dirty, &marked)
    });
    for result in results {
        let (writes, seen, predictions) = result?;
        detector.merge(&seen);
        report.predictions += predictions;
        report.hours += writes[0].put.len() + writes[0].delete.len();
        store.put_aggregate_group(model, writes)?;
    }
    let decided = detector.clone().finish(declared, None);
    if decide == Decide::No {
        // The rows seen are kept for the task; the decision itself waits for a deciding
        // refresh, which finds the detector's answer differing from the spec and rebuilds.
        if detector != decision.detector {
            decision.detector = detector;
            save_decision(store, model, &decision)?;
        }
    } else if first || decided != decision.spec || detector != decision.detector {
        let changed = decided != decision.spec;
        decision = TaskDecision {
            detector,
            spec: decided,
        };
        save_decision(store, model, &decision)?;
        if changed {
            tracing::info!(model = %model, task = ?decision.spec.task, "task decision changed: rebuilding aggregates");
            store.invalidate_aggregates(model)?;
            let again = refresh_locked(store, model, known, decide)?;
            report.predictions += again.predictions;
            report.hours += again.hours;
            report.rebuilt = true;
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What a refresh adds to and rescans against: the model in its store, the task decided for it
/// (with its JSON, which stored states name), and the all-versions reference the drift
/// sketches are built against, if the model has one.
#[derive(Clone, Copy)]
struct Basis<'a> {
    store: &'a dyn Store,
    model: &'a ModelName,
    spec: &'a TaskSpec,
    spec_json: &'a str,
    reference: Option<&'a Reference>,
    /// The label-free estimator of version-less queries and its key, when the model's task and
    /// reference allow one ([`crate::estimate`]): each hour keeps its estimation state.
    estimator: Option<&'a (Estimator, u64)>,
}

/// Adds the additions of `hours` (stale hours the store says can be brought up to date so) to
/// their stored performance aggregates and drift sketches: new predictions, folded on arrival
/// or read where they are stored, and first labels. Writes them with the hours answered, in one
/// transaction. Returns the hours it could not update (a stored aggregate of another task or
/// reference, or none where one should be), which need a rescan.
fn add_deltas(
    basis: &Basis<'_>,
    hours: Vec<StaleHour>,
    detector: &mut TaskDetector,
    report: &mut RefreshReport,
) -> Result<Vec<StaleHour>, EngineError> {
    let Basis {
        store,
        model,
        reference,
        ..
    } = *basis;
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
        return Ok(Vec::new());
    };
    let mut fresh = new_predictions(basis, &hours, &mut report.predictions_decoded)?;
    // Stale hours come oldest first.
    let range = ScanRange {
        from: Some(first.hour),
        to: Some(Timestamp(last.hour.micros() + HOUR_MICROS)),
        version: None,
    };
    let stored = |kind: &str| -> Result<HashMap<(String, Timestamp), Vec<u8>>, StoreError> {
        Ok(store
            .aggregates(model, kind, &range)?
            .into_iter()
            .map(|a| ((a.version, a.hour), a.data))
            .collect())
    };
    let mut perf = stored(PERFORMANCE)?;
    let mut sketches = match reference {
        Some(_) => stored(DRIFT)?,
        None => HashMap::new(),
    };
    let mut estimates = match basis.estimator {
        Some(_) => stored(ESTIMATE)?,
        None => HashMap::new(),
    };
    let mut estimate_write = AggregateWrite {
        kind: ESTIMATE.into(),
        ..AggregateWrite::default()
    };
    let mut perf_write = AggregateWrite {
        kind: PERFORMANCE.into(),
        ..AggregateWrite::default()
    };
    let mut drift_write = AggregateWrite {
        kind: DRIFT.into(),
        ..AggregateWrite::default()
    };
    // Hours are independent: each is decoded, updated and encoded on its own core.
    let work: Vec<HourWork> = hours
        .iter()
        .map(|d| {
            let key = (d.version.clone(), d.hour);
            HourWork {
                mark: d,
                perf: perf.remove(&key),
                sketch: sketches.remove(&key),
                estimate: estimates.remove(&key),
                fresh: fresh.remove(&(d.version.clone(), d.hour.micros())),
                deltas: d.additions().unwrap_or_default(),
            }
        })
        .collect();
    let results = modelwatch_stats::parallel::parallel_map(&work, |w| add_to_hour(w, basis));
    let mut unapplied = HashSet::new();
    let mut added_hours = Vec::new();
    for (i, (w, result)) in work.iter().zip(results).enumerate() {
        let Some(added) = result? else {
            unapplied.insert(i);
            continue;
        };
        detector.merge(&added.detector);
        report.labels_added += added.labels;
        report.predictions_added += added.predictions;
        perf_write.put.push(added.perf);
        perf_write.refreshed.push(w.mark.added());
        added_hours.push(w.mark);
        drift_write.put.extend(added.sketch);
        estimate_write.put.extend(added.estimate);
    }
    report.hours += perf_write.put.len();
    if !perf_write.put.is_empty() {
        let mut writes = vec![drift_write, estimate_write];
        writes.extend(stale_streams(added_hours.into_iter()));
        writes.push(perf_write);
        store.put_aggregate_group(model, writes)?;
    }
    Ok(hours
        .into_iter()
        .enumerate()
        .filter_map(|(i, h)| unapplied.contains(&i).then_some(h))
        .collect())
}

/// New predictions of one hour of one batch, folded on the request's thread where the events
/// are already parsed ([`fold_on_arrival`]), with the task and reference they were folded for.
/// The store keeps it in the hour's delta; a refresh uses it instead of decoding and parsing
/// the chunk again while the task and reference are still those, and reads the chunk
/// otherwise.
#[derive(Serialize, Deserialize)]
struct ArrivalFold {
    format: Format,
    spec: String,
    /// [`WindowSketch::stamp_for`] the reference its sketch was built against.
    stamp: Option<u64>,
    /// The key of the estimator its estimation state was built with, if any.
    estimator: Option<u64>,
    fold: NewPredictions,
}

impl ArrivalFold {
    fn usable(data: Option<&[u8]>, basis: &Basis<'_>) -> Option<NewPredictions> {
        let f: ArrivalFold = postcard::from_bytes(data?).ok()?;
        (f.spec == basis.spec_json
            && f.stamp == basis.reference.map(WindowSketch::stamp_for)
            && f.estimator == basis.estimator.map(|e| e.1))
        .then_some(f.fold)
    }
}

/// The task and reference a model's new predictions are folded for on arrival. Kept per model
/// and used while the stored task decision and drift stamp are the ones it was built from (two
/// small indexed reads per batch); the reference profile is loaded again only when they
/// change. A fold made for another task or reference is not used anyway (the refresh reads the
/// chunk instead), so a context that is a moment late costs time, never correctness.
struct ArrivalContext {
    decision: Vec<u8>,
    stamp: Option<Vec<u8>>,
    /// The stored [`ESTIMATE_KEY`] row (the estimator is the stored fit it names).
    estimate_key: Option<Vec<u8>>,
    spec: TaskSpec,
    spec_json: String,
    reference: Option<Reference>,
    estimator: Option<(Estimator, u64)>,
}

fn arrival_context(
    store: &dyn Store,
    model: &ModelName,
) -> Result<Option<Arc<ArrivalContext>>, EngineError> {
    static CONTEXTS: LazyLock<Mutex<HashMap<String, Arc<ArrivalContext>>>> =
        LazyLock::new(Mutex::default);
    // Before the first refresh has decided the task there is nothing to fold for.
    let Some(decision) = model_wide(store, model, TASK)? else {
        return Ok(None);
    };
    let stamp = model_wide(store, model, DRIFT_STAMP)?;
    let estimate_key = model_wide(store, model, ESTIMATE_KEY)?;
    let cached = CONTEXTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(model.as_str())
        .filter(|c| c.decision == decision && c.stamp == stamp && c.estimate_key == estimate_key)
        .cloned();
    if cached.is_some() {
        return Ok(cached);
    }
    // A decision of an older modelwatch: the next refresh makes a new one.
    let Ok(decided) = parse_decision(&decision) else {
        return Ok(None);
    };
    // Only a stored fit: fitting is the refresh's business, not the ingest's.
    let estimator = match crate::estimate::stored_estimator(store, model, None, &decided.spec)? {
        Some(Some(e)) => {
            let key = e.key();
            Some((e, key))
        }
        _ => None,
    };
    let context = Arc::new(ArrivalContext {
        decision,
        stamp,
        estimate_key,
        spec_json: spec_key(&decided.spec),
        spec: decided.spec,
        reference: drift_reference(store, model)?,
        estimator,
    });
    CONTEXTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(model.to_string(), context.clone());
    Ok(Some(context))
}

/// Folds a batch of new predictions per (version, hour) where they were parsed, for the store
/// to keep in the hours' deltas (`PredictionBatch::folds`). `None` before the model's task is
/// decided: nothing can be folded until a refresh decides it, and every batch stored until
/// then is read back from its chunks, so the caller should have the refresh run soon.
pub fn fold_on_arrival(
    store: &dyn Store,
    model: &ModelName,
    rows: &[(usize, PredictionEvent)],
) -> Result<Option<Vec<HourFold>>, EngineError> {
    let Some(c) = arrival_context(store, model)? else {
        return Ok(None);
    };
    let reference = c.reference.as_ref();
    let estimator = c.estimator.as_ref().map(|e| &e.0);
    // Keyed by the version's place in `versions` (a batch has one or a few): comparing the
    // version strings on every step of the map's search was a quarter of the fold.
    let mut versions: Vec<&str> = Vec::new();
    let mut folds: BTreeMap<(usize, i64), NewPredictions> = BTreeMap::new();
    for (_, p) in rows {
        // A shadow prediction is stored apart and never in an hour's aggregates (ADR 011).
        if !p.role.is_served() {
            continue;
        }
        let version = p.model_version.as_deref().unwrap_or("");
        let v = match versions.iter().position(|known| *known == version) {
            Some(v) => v,
            None => {
                versions.push(version);
                versions.len() - 1
            }
        };
        folds
            .entry((v, hour_of(p.timestamp.micros())))
            .or_insert_with(|| NewPredictions::new(&c.spec, reference, estimator))
            .observe(&c.spec, reference, estimator, p);
    }
    let folds = folds
        .into_iter()
        .map(|((v, hour), fold)| {
            let rows = fold.count;
            let blob = ArrivalFold {
                format: Format,
                spec: c.spec_json.clone(),
                stamp: reference.map(WindowSketch::stamp_for),
                estimator: c.estimator.as_ref().map(|e| e.1),
                fold,
            };
            Ok(HourFold {
                version: versions[v].to_owned(),
                hour,
                rows,
                data: postcard::to_stdvec(&blob).map_err(|e| corrupt("arrival fold", e))?,
            })
        })
        .collect::<Result<Vec<_>, EngineError>>()?;
    Ok(Some(folds))
}

/// (version, start of the hour in microseconds).
type HourKey = (String, i64);

/// New predictions of some hours, folded without their labels (which come as label deltas).
#[derive(Serialize, Deserialize)]
struct NewPredictions {
    acc: WindowAccumulator,
    split: Split,
    sketch: Option<WindowSketch>,
    /// The estimation state, when the model has an estimator.
    estimate: Option<WindowEstimation>,
    detector: TaskDetector,
    count: u64,
}

impl NewPredictions {
    fn new(spec: &TaskSpec, reference: Option<&Reference>, estimator: Option<&Estimator>) -> Self {
        NewPredictions {
            acc: WindowAccumulator::new(spec),
            split: Split::default(),
            sketch: reference.map(WindowSketch::new),
            estimate: estimator.map(WindowEstimation::new),
            detector: TaskDetector::default(),
            count: 0,
        }
    }

    fn observe(
        &mut self,
        spec: &TaskSpec,
        reference: Option<&Reference>,
        estimator: Option<&Estimator>,
        p: &PredictionEvent,
    ) {
        if let (Some(e), Some(state)) = (estimator, self.estimate.as_mut()) {
            state.observe(e, spec, p);
        }
        self.detector.observe(p, None);
        exploration::observe(
            spec,
            exploration::DEFAULT_TAG,
            &mut self.acc,
            &mut self.split,
            p,
            None,
        );
        if let (Some(r), Some(sk)) = (reference, self.sketch.as_mut()) {
            sk.push(r, &p.features, p.prediction.as_ref(), p.score, None);
        }
        self.count += 1;
    }

    /// Adds `other`; `None` when the accumulators cannot be merged (the hour is rescanned).
    fn merge(mut self, other: &NewPredictions, estimator: Option<&Estimator>) -> Option<Self> {
        exploration::merge(&mut self.acc, &mut self.split, &other.acc, &other.split).ok()?;
        if let (Some(a), Some(b)) = (self.sketch.as_mut(), other.sketch.as_ref()) {
            a.merge(b);
        }
        match (estimator, self.estimate.as_mut(), other.estimate.as_ref()) {
            (Some(e), Some(a), Some(b)) => a.merge(e, b),
            (Some(_), _, _) => return None,
            (None, _, _) => {}
        }
        self.detector.merge(&other.detector);
        self.count += other.count;
        Some(self)
    }
}

/// The new predictions of `hours`: folded on arrival when the addition carries a fold of the
/// current task and reference, else read from where the addition says they are stored (each
/// place read once, on one core, its events going to the hours whose addition names it: the
/// others are already counted, or wait for a rescan). The folds of each hour are merged in the
/// order they were stored. `None` for an hour whose folds could not be merged.
fn new_predictions(
    basis: &Basis<'_>,
    hours: &[StaleHour],
    decoded_count: &mut u64,
) -> Result<HashMap<(String, i64), Option<NewPredictions>>, EngineError> {
    let Basis {
        store,
        model,
        spec,
        reference,
        ..
    } = *basis;
    let estimator = basis.estimator.map(|e| &e.0);
    let mut wanted: BTreeMap<PredictionsRef, HashSet<(&str, i64)>> = BTreeMap::new();
    // Folds made on arrival, by where they are stored, for the hours whose addition carries a
    // usable one.
    let mut by_place: BTreeMap<PredictionsRef, Vec<(HourKey, NewPredictions)>> = BTreeMap::new();
    for d in hours {
        for addition in d.additions().into_iter().flatten() {
            let Some(place) = addition.predictions() else {
                continue;
            };
            let key = (d.version.clone(), d.hour.micros());
            match ArrivalFold::usable(addition.fold(), basis) {
                Some(fold) => by_place.entry(place).or_default().push((key, fold)),
                None => {
                    wanted
                        .entry(place)
                        .or_default()
                        .insert((d.version.as_str(), d.hour.micros()));
                }
            }
        }
    }
    let places: Vec<(PredictionsRef, HashSet<(&str, i64)>)> = wanted.into_iter().collect();
    let decoded = modelwatch_stats::parallel::parallel_map(&places, |(place, hours)| {
        let mut folds: HashMap<(String, i64), NewPredictions> = HashMap::new();
        store.scan_added_predictions(model, &[*place], &mut |_, p| {
            let version = p.model_version.as_deref().unwrap_or("");
            let hour = hour_of(p.timestamp.micros());
            if hours.contains(&(version, hour)) {
                folds
                    .entry((version.to_owned(), hour))
                    .or_insert_with(|| NewPredictions::new(spec, reference, estimator))
                    .observe(spec, reference, estimator, p);
            }
        })?;
        Ok::<_, StoreError>(folds)
    });
    for ((place, _), folds) in places.iter().zip(decoded) {
        let folds = folds?;
        *decoded_count += folds.values().map(|f| f.count).sum::<u64>();
        by_place.entry(*place).or_default().extend(folds);
    }
    // Merged in the order they were stored, whichever way each fold was made.
    let mut merged: HashMap<(String, i64), Option<NewPredictions>> = HashMap::new();
    for (key, fold) in by_place.into_values().flatten() {
        match merged.remove(&key) {
            None => merged.insert(key, Some(fold)),
            Some(before) => merged.insert(key, before.and_then(|b| b.merge(&fold, estimator))),
        };
    }
    Ok(merged)
}

/// One stale hour to update by adding: the hour, its stored aggregate and sketch, additions,
/// and the fold of its new predictions (`Some(None)` when that fold failed).
struct HourWork<'a> {
    mark: &'a StaleHour,
    perf: Option<Vec<u8>>,
    sketch: Option<Vec<u8>>,
    estimate: Option<Vec<u8>>,
    deltas: &'a [Addition],
    fresh: Option<Option<NewPredictions>>,
}

/// An hour with its deltas added.
struct AddedHour {
    perf: StoredAggregate,
    sketch: Option<StoredAggregate>,
    estimate: Option<StoredAggregate>,
    detector: TaskDetector,
    labels: u64,
    predictions: u64,
}

/// Adds an hour's deltas to its stored aggregate and sketch. `None` when it cannot (the hour is
/// rescanned instead): they were built for another task or reference, or they are missing
/// while the hour has no new predictions (only an hour whose every prediction came as a delta
/// starts from nothing), or its new predictions could not be folded.
fn add_to_hour(w: &HourWork<'_>, basis: &Basis<'_>) -> Result<Option<AddedHour>, EngineError> {
    let Basis {
        spec,
        spec_json,
        reference,
        ..
    } = *basis;
    let has_predictions = w.deltas.iter().any(|d| d.predictions().is_some());
    let never_written = w.perf.is_none() && w.sketch.is_none() && has_predictions;
    let blob = match w.perf.as_deref() {
        None if never_written => Some(HourBlob {
            format: Format,
            spec: spec_json.to_owned(),
            acc: WindowAccumulator::new(spec),
            split: Split::default(),
        }),
        data => data
            .and_then(|data| postcard::from_bytes::<HourBlob>(data).ok())
            .filter(|b| b.spec == spec_json),
    };
    let sketch = match reference {
        None => Some(None),
        Some(r) if never_written => Some(Some(WindowSketch::new(r))),
        Some(r) => w
            .sketch
            .as_deref()
            .and_then(|data| postcard::from_bytes::<WindowSketch>(data).ok())
            .filter(|s| s.stamp == WindowSketch::stamp_for(r))
            .map(Some),
    };
    // Labels do not change an estimation state; new predictions do. Never written: every
    // prediction of the hour came as a delta.
    let estimator = basis.estimator.map(|e| &e.0);
    let estimate = match basis.estimator {
        None => Some(None),
        Some((e, _)) if w.estimate.is_none() && never_written => {
            Some(Some(WindowEstimation::new(e)))
        }
        Some((_, key)) => w
            .estimate
            .as_deref()
            .and_then(|data| postcard::from_bytes::<HourEstimate>(data).ok())
            .filter(|h| h.key == *key)
            .map(|h| Some(h.state)),
    };
    let (Some(blob), Some(sketch), Some(estimate)) = (blob, sketch, estimate) else {
        return Ok(None);
    };
    // The stored states, with what this refresh adds to them (the detector and count only
    // what is added).
    let mut hour = NewPredictions {
        acc: blob.acc,
        split: blob.split,
        sketch,
        estimate,
        detector: TaskDetector::default(),
        count: 0,
    };
    match &w.fresh {
        Some(None) => return Ok(None),
        Some(Some(fresh)) => match hour.merge(fresh, estimator) {
            Some(merged) => hour = merged,
            None => return Ok(None),
        },
        None => {}
    }
    let mut labels = 0;
    for delta in w.deltas {
        for l in &delta.labels()? {
            hour.detector.observe_late_label(&l.label);
            exploration::add_late_label(spec, &mut hour.acc, &mut hour.split, l);
            if let (Some(r), Some(sk)) = (reference, hour.sketch.as_mut()) {
                sk.add_late_label(r, &l.label);
            }
            labels += 1;
        }
    }
    let blob = HourBlob {
        format: Format,
        spec: blob.spec,
        acc: hour.acc,
        split: hour.split,
    };
    Ok(Some(AddedHour {
        perf: hour_row(w.mark, "aggregate", &blob)?,
        sketch: hour
            .sketch
            .map(|sk| hour_row(w.mark, "drift sketch", &sk))
            .transpose()?,
        estimate: match (basis.estimator, hour.estimate) {
            (Some((_, key)), Some(state)) => Some(hour_row(
                w.mark,
                "estimation state",
                &HourEstimate { key: *key, state },
            )?),
            _ => None,
        },
        detector: hour.detector,
        labels,
        predictions: hour.count,
    }))
}

/// The stored row of one hour's aggregate (`what` names it in an encoding error).
fn hour_row<T: Serialize>(
    d: &StaleHour,
    what: &'static str,
    value: &T,
) -> Result<StoredAggregate, StoreError> {
    Ok(StoredAggregate {
        version: d.version.clone(),
        hour: d.hour,
        data: postcard::to_stdvec(value).map_err(|e| corrupt(what, e))?,
    })
}

/// What one pass of a refresh produced: the writes (the performance aggregates with the marks
/// they clear first, then the drift sketches when the model has a reference), what the rows
/// told about the task, and how many rows were read.
type Rescanned = (Vec<AggregateWrite>, TaskDetector, u64);

/// Rescans one run of consecutive dirty hours.
fn rescan(
    basis: &Basis<'_>,
    run: &[i64],
    dirty: &[StaleHour],
    marked: &HashSet<(&str, i64)>,
) -> Result<Rescanned, EngineError> {
    let Basis {
        store,
        model,
        spec,
        spec_json,
        reference,
        ..
    } = *basis;
    let estimator = basis.estimator;
    let range = ScanRange {
        from: Some(Timestamp(run[0])),
        to: Some(Timestamp(run[run.len() - 1] + HOUR_MICROS)),
        version: None,
    };
    let mut accs: HashMap<(String, i64), (WindowAccumulator, Split)> = HashMap::new();
    let mut sketches: HashMap<(String, i64), WindowSketch> = HashMap::new();
    let mut estimates: HashMap<(String, i64), WindowEstimation> = HashMap::new();
    let mut detector = TaskDetector::default();
    let mut predictions = 0u64;
    let through = store.scan_predictions(model, &range, &mut |p, l| {
        let version = p.model_version.as_deref().unwrap_or("");
        let hour = hour_of(p.timestamp.micros());
        if !marked.contains(&(version, hour)) {
            return;
        }
        detector.observe(p, l);
        predictions += 1;
        let (acc, split) = accs
            .entry((version.to_owned(), hour))
            .or_insert_with(|| (WindowAccumulator::new(spec), Split::default()));
        exploration::observe(spec, exploration::DEFAULT_TAG, acc, split, p, l);
        if let Some(r) = reference {
            sketches
                .entry((version.to_owned(), hour))
                .or_insert_with(|| WindowSketch::new(r))
                .push(
                    r,
                    &p.features,
                    p.prediction.as_ref(),
                    p.score,
                    l.map(|l| &l.label),
                );
        }
        if let Some((e, _)) = estimator {
            estimates
                .entry((version.to_owned(), hour))
                .or_insert_with(|| WindowEstimation::new(e))
                .observe(e, spec, p);
        }
    })?;
    let in_run: BTreeSet<i64> = run.iter().copied().collect();
    let mut write = AggregateWrite {
        kind: PERFORMANCE.into(),
        ..AggregateWrite::default()
    };
    for d in dirty.iter().filter(|d| in_run.contains(&d.hour.micros())) {
        match accs.remove(&(d.version.clone(), d.hour.micros())) {
            Some((acc, split)) => write.put.push(hour_row(
                d,
                "aggregate",
                &HourBlob {
                    format: Format,
                    spec: spec_json.to_owned(),
                    acc,
                    split,
                },
            )?),
            // Retention deleted its predictions.
            None => write.delete.push((d.version.clone(), d.hour)),
        }
        write.refreshed.push(d.rescanned(through));
    }
    let mut writes = vec![write];
    if reference.is_some() {
        let mut w = AggregateWrite {
            kind: DRIFT.into(),
            ..AggregateWrite::default()
        };
        for d in dirty.iter().filter(|d| in_run.contains(&d.hour.micros())) {
            match sketches.remove(&(d.version.clone(), d.hour.micros())) {
                Some(sk) => w.put.push(hour_row(d, "drift sketch", &sk)?),
                None => w.delete.push((d.version.clone(), d.hour)),
            }
        }
        writes.push(w);
    }
    if let Some((_, key)) = estimator {
        let mut w = AggregateWrite {
            kind: ESTIMATE.into(),
            ..AggregateWrite::default()
        };
        for d in dirty.iter().filter(|d| in_run.contains(&d.hour.micros())) {
            match estimates.remove(&(d.version.clone(), d.hour.micros())) {
                Some(state) => w.put.push(hour_row(
                    d,
                    "estimation state",
                    &HourEstimate { key: *key, state },
                )?),
                None => w.delete.push((d.version.clone(), d.hour)),
            }
        }
        writes.push(w);
    }
    writes.extend(stale_streams(
        dirty.iter().filter(|d| in_run.contains(&d.hour.micros())),
    ));
    Ok((writes, detector, predictions))
}

/// The reference the drift sketches are built against, if the model has one: the one
/// version-less queries use ([`crate::reference`]).
fn drift_reference(store: &dyn Store, model: &ModelName) -> Result<Option<Reference>, EngineError> {
    Reference::load_default(store, model)
}

/// Makes sure the drift sketches are (being) built against `reference`: when the stored stamp
/// is missing or another one, marks every hour for a rebuild and stores the new stamp. True
/// when it did.
fn ensure_drift_stamp(
    store: &dyn Store,
    model: &ModelName,
    reference: &Reference,
) -> Result<bool, StoreError> {
    let current = model_wide(store, model, DRIFT_STAMP)?
        .and_then(|data| <[u8; 8]>::try_from(data.as_slice()).ok())
        .map(u64::from_le_bytes);
    let stamp = WindowSketch::stamp_for(reference);
    if current == Some(stamp) {
        return Ok(false);
    }
    tracing::info!(model = %model, "new reference: rebuilding the hourly drift sketches");
    store.invalidate_aggregates(model)?;
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: DRIFT_STAMP.into(),
            put: vec![StoredAggregate {
                version: String::new(),
                hour: MODEL_WIDE,
                data: stamp.to_le_bytes().to_vec(),
            }],
            ..AggregateWrite::default()
        },
    )?;
    Ok(true)
}

/// The label-free estimator of version-less queries for `spec` (fitted and stored if need be)
/// with its key, and whether every hour was just marked because the per-hour estimation states
/// were built with another one (or none, or before they were kept): the stored
/// [`ESTIMATE_KEY`] is then set to this one's. Nothing is marked for a model without an
/// estimator.
fn ensure_estimate_key(
    store: &dyn Store,
    model: &ModelName,
    spec: &TaskSpec,
) -> Result<(Option<(Estimator, u64)>, bool), EngineError> {
    let Some(e) = crate::estimate::estimator(store, model, None, spec)? else {
        return Ok((None, false));
    };
    let key = e.key();
    let current = model_wide(store, model, ESTIMATE_KEY)?
        .and_then(|data| <[u8; 8]>::try_from(data.as_slice()).ok())
        .map(u64::from_le_bytes);
    if current == Some(key) {
        return Ok((Some((e, key)), false));
    }
    tracing::info!(model = %model, "new label-free estimator: rebuilding the hourly estimation states");
    store.invalidate_aggregates(model)?;
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: ESTIMATE_KEY.into(),
            put: vec![StoredAggregate {
                version: String::new(),
                hour: MODEL_WIDE,
                data: key.to_le_bytes().to_vec(),
            }],
            ..AggregateWrite::default()
        },
    )?;
    Ok((Some((e, key)), true))
}

/// The label-free estimation states of the hours of `range` merged into windows of `window`,
/// after a refresh that builds them with `estimator`. Asked only when
/// [`crate::planner::estimate`] sends the query to the hours. `None` when they cannot answer
/// (no task decided yet; hours built with another estimator: a version with its own
/// reference, or a `task=` the hours are not built for; an hour unreadable): the raw events
/// answer.
pub fn estimate_hours(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    window: Window,
    estimator: &Estimator,
) -> Result<Option<BTreeMap<Timestamp, WindowEstimation>>, EngineError> {
    let Some((spec, _)) = refreshed_spec(store, model)? else {
        return Ok(None);
    };
    let key = estimator.key();
    let (hours_estimator, marked) = ensure_estimate_key(store, model, &spec)?;
    if hours_estimator.map(|e| e.1) != Some(key) {
        return Ok(None);
    }
    if marked {
        // A new reference (or the first estimate since an upgrade): every hour is rebuilt now.
        refresh(store, model)?;
    }
    let mut windows: BTreeMap<Timestamp, WindowEstimation> = BTreeMap::new();
    for row in store.aggregates(model, ESTIMATE, range)? {
        let Some(h) = readable::<HourEstimate>(store, model, &row, "estimation state")? else {
            return Ok(None);
        };
        if h.key != key {
            tracing::warn!(model = %model, hour = %row.hour, "estimation state of another estimator: answering from the raw events");
            return Ok(None);
        }
        match windows.entry(window.start_of(row.hour)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(h.state);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                o.get_mut().merge(estimator, &h.state)
            }
        }
    }
    Ok(Some(windows))
}

/// Decodes a stored hour. One that does not decode (written by another version of modelwatch,
/// whose state had another shape) is not an error for the query: every hour is marked for a
/// rebuild and `None` sends the query to the raw events meanwhile.
fn readable<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    model: &ModelName,
    row: &StoredAggregate,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    match postcard::from_bytes(&row.data) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::warn!(model = %model, hour = %row.hour, error = %e, "unreadable {what}: rebuilding every hour; answering from the raw events");
            store.invalidate_aggregates(model)?;
            Ok(None)
        }
    }
}

/// Drift windows of `window` over `range` merged from the hourly sketches, after a refresh
/// that leaves the task decision alone ([`Decide::No`]). Asked only when
/// [`crate::planner::drift`] says the hours answer the query. `None` when they cannot after all
/// (no task decided yet, so the hours were not refreshed; an hour
/// unreadable or built against another reference): the raw events answer meanwhile.
pub fn drift_hours(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    window: Window,
    reference: &Reference,
) -> Result<Option<Vec<Windowed>>, EngineError> {
    ensure_drift_stamp(store, model, reference)?;
    if refresh_against(store, model, Some(reference), Decide::No)?.undecided {
        return Ok(None);
    }
    let mut windows: BTreeMap<Timestamp, WindowSketch> = BTreeMap::new();
    for row in store.aggregates(model, DRIFT, range)? {
        let Some(sk) = readable::<WindowSketch>(store, model, &row, "drift sketch")? else {
            return Ok(None);
        };
        if sk.stamp != WindowSketch::stamp_for(reference) {
            tracing::warn!(model = %model, hour = %row.hour, "drift sketch of another reference: answering from the raw events");
            return Ok(None);
        }
        match windows.entry(window.start_of(row.hour)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(sk);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(&sk),
        }
    }
    Ok(Some(
        windows
            .into_iter()
            .map(|(start, sketch)| Windowed {
                start,
                end: Timestamp(start.micros() + window.micros()),
                sketch,
            })
            .collect(),
    ))
}

/// Predictions per (version, hour): [`hour_rows`]' answer.
pub type HourRows = Vec<(String, Timestamp, u64)>;

/// The predictions of each (version, hour) of `range` from the hourly drift sketches against
/// `reference`, after the refresh [`drift_hours`] runs: what a cache of other per-hour sums
/// (the multivariate drift's, `crate::multivariate`) checks its hours against. `None` when the
/// sketches cannot answer, as for [`drift_hours`].
pub fn hour_rows(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    reference: &Reference,
) -> Result<Option<HourRows>, EngineError> {
    ensure_drift_stamp(store, model, reference)?;
    if refresh_against(store, model, Some(reference), Decide::No)?.undecided {
        return Ok(None);
    }
    let mut out = Vec::new();
    for row in store.aggregates(model, DRIFT, range)? {
        let Some(sk) = readable::<WindowSketch>(store, model, &row, "drift sketch")? else {
            return Ok(None);
        };
        if sk.stamp != WindowSketch::stamp_for(reference) {
            return Ok(None);
        }
        out.push((row.version, row.hour, sk.rows));
    }
    Ok(Some(out))
}

/// One (version, hour)'s state derived from its predictions against a reference fit (the
/// multivariate drift's error sums, the outlier rows'), with the fit's stamp and the hour's
/// prediction count when it was computed.
#[derive(Serialize, Deserialize)]
pub(crate) struct StampedHour<S> {
    pub stamp: u64,
    pub rows: u64,
    pub state: S,
}

/// A model-wide setting kept as aggregate `kind` (JSON), if the model has one; `what` names it
/// in a corruption error. The fairness and service-level settings.
pub(crate) fn model_setting<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    model: &ModelName,
    kind: &str,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    let rows = store.aggregates(model, kind, &ScanRange::default())?;
    rows.into_iter()
        .next()
        .map(|a| serde_json::from_slice(&a.data).map_err(|e| corrupt(what, e)))
        .transpose()
}

/// Sets (`None`: removes) the model-wide setting kept as aggregate `kind` of `model`, which must
/// exist.
pub(crate) fn set_model_setting<T: Serialize>(
    store: &dyn Store,
    model: &ModelName,
    kind: &str,
    setting: Option<&T>,
) -> Result<(), StoreError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()));
    }
    let mut write = AggregateWrite {
        kind: kind.into(),
        ..AggregateWrite::default()
    };
    match setting {
        Some(s) => write.put.push(StoredAggregate {
            version: String::new(),
            hour: MODEL_WIDE,
            data: serde_json::to_vec(s).expect("settings serialize"),
        }),
        None => write.delete.push((String::new(), MODEL_WIDE)),
    }
    store.put_aggregates(model, write)
}

/// A stored state's stamp (its reference's) with the layout of the state mixed in: a state
/// whose layout changes gets a new layout number, and those stored in the old one no longer
/// match their reference's stamp, so they are built again.
pub(crate) fn layout_stamp(stamp: u64, layout: u64) -> u64 {
    stamp ^ (layout << 56)
}

/// A fit of `reference` kept as the model-wide aggregate `kind` of the reference's version
/// (the multivariate drift's PCA, the outlier rows' HBOS): the stored one while its stamp is
/// the reference's, otherwise `fit` of the reference rows, stored before it is returned. `what`
/// names it in an encoding error. A stored fit that does not read back (another version of
/// modelwatch wrote it) is fitted again.
pub(crate) fn stamped_fit<F: Serialize + serde::de::DeserializeOwned>(
    store: &dyn Store,
    model: &ModelName,
    reference: &Reference,
    kind: &str,
    what: &'static str,
    fit: impl FnOnce(&[modelwatch_core::ReferenceRow]) -> Result<F, EngineError>,
) -> Result<F, EngineError> {
    let version_key = reference.version.clone().unwrap_or_default();
    let range = ScanRange {
        version: Some(version_key.clone()),
        ..ScanRange::default()
    };
    if let Some(row) = store.aggregates(model, kind, &range)?.first() {
        if let Ok(blob) = postcard::from_bytes::<StampedFit<F>>(&row.data) {
            if blob.stamp == reference.stamp {
                return Ok(blob.fit);
            }
        }
    }
    let rows = store.reference_rows(model, reference.version.as_deref())?;
    let blob = StampedFit {
        stamp: reference.stamp,
        fit: fit(&rows)?,
    };
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: kind.into(),
            put: vec![StoredAggregate {
                version: version_key,
                hour: MODEL_WIDE,
                data: postcard::to_stdvec(&blob).map_err(|e| corrupt(what, e))?,
            }],
            ..AggregateWrite::default()
        },
    )?;
    Ok(blob.fit)
}

/// A stored [`stamped_fit`]: the fit and the stamp of the reference profile it was made from.
#[derive(Serialize, Deserialize)]
struct StampedFit<F> {
    stamp: u64,
    fit: F,
}

/// States by (version, hour).
pub(crate) type ByHour<S> = BTreeMap<(String, Timestamp), S>;

/// Where [`stamped_hours`] keeps its states: the aggregate kind, what a state is called in an
/// error, and the stamp of the fit the states are valid for.
pub(crate) struct HourCache {
    pub kind: &'static str,
    pub what: &'static str,
    pub stamp: u64,
}

/// The states of every (version, hour) of `range` kept as aggregate `cache.kind`: a stored one
/// while its stamp is `cache.stamp` and its hour still holds as many predictions as when it was computed
/// ([`hour_rows`]); the other hours are built again by `rescan`, one call per run of
/// consecutive stale hours (every version of them), then `finish` readies each new state and
/// gives its row count, and they are stored. `None` when the hourly sketches cannot say the
/// counts. An unreadable stored state (another version of modelwatch) is built again.
pub(crate) fn stamped_hours<S: Serialize + serde::de::DeserializeOwned>(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    reference: &Reference,
    cache: &HourCache,
    mut rescan: impl FnMut(&ScanRange, &mut ByHour<S>) -> Result<(), EngineError>,
    mut finish: impl FnMut(&mut S) -> u64,
) -> Result<Option<ByHour<S>>, EngineError> {
    let Some(counts) = hour_rows(store, model, range, reference)? else {
        return Ok(None);
    };
    let mut stored: HashMap<(String, Timestamp), StampedHour<S>> = HashMap::new();
    for row in store.aggregates(model, cache.kind, range)? {
        if let Ok(b) = postcard::from_bytes::<StampedHour<S>>(&row.data) {
            if b.stamp == cache.stamp {
                stored.insert((row.version, row.hour), b);
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut stale: Vec<Timestamp> = Vec::new();
    for (version, hour, rows) in counts {
        match stored.remove(&(version.clone(), hour)) {
            Some(b) if b.rows == rows => {
                out.insert((version, hour), b.state);
            }
            _ => stale.push(hour),
        }
    }
    stale.sort();
    stale.dedup();
    if stale.is_empty() {
        return Ok(Some(out));
    }
    // Runs of consecutive stale hours, one scan each.
    let mut fresh: ByHour<S> = BTreeMap::new();
    let mut i = 0;
    while i < stale.len() {
        let mut j = i + 1;
        while j < stale.len() && stale[j].0 - stale[j - 1].0 == HOUR_MICROS {
            j += 1;
        }
        let part = ScanRange {
            from: Some(stale[i]),
            to: Some(Timestamp(stale[j - 1].0 + HOUR_MICROS)),
            version: range.version.clone(),
        };
        rescan(&part, &mut fresh)?;
        i = j;
    }
    let mut put = Vec::with_capacity(fresh.len());
    for ((version, hour), mut state) in fresh {
        let rows = finish(&mut state);
        put.push(StoredAggregate {
            version: version.clone(),
            hour,
            data: postcard::to_stdvec(&StampedHour {
                stamp: cache.stamp,
                rows,
                state: &state,
            })
            .map_err(|e| corrupt(cache.what, e))?,
        });
        out.insert((version, hour), state);
    }
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: cache.kind.into(),
            put,
            ..AggregateWrite::default()
        },
    )?;
    Ok(Some(out))
}

/// The model's task at `task` / `threshold` from the persisted decision, after a [`refresh`],
/// with the reason for the reply: what the raw-event path uses instead of scanning its range
/// once more to detect the task, so both paths decide alike. `None` before the first refresh
/// with events.
pub(crate) fn decided_spec(
    store: &dyn Store,
    model: &ModelName,
    task: Option<Task>,
    threshold: Option<f64>,
) -> Result<Option<(TaskSpec, String)>, EngineError> {
    refresh(store, model)?;
    let declared = declared_task(store, model)?;
    Ok(load_decision(store, model)?.map(|d| choose_task(d.detector, task, declared, threshold)))
}

/// Marks every hour dirty and refreshes: the aggregates rebuilt from the raw log alone.
pub fn rebuild(store: &dyn Store, model: &ModelName) -> Result<RefreshReport, EngineError> {
    store.invalidate_aggregates(model)?;
    refresh(store, model)
}

/// The first task decision of a model: from its reference and the rows of its first dirty hour
/// (later rows refine it; a change rebuilds).
fn first_decision(
    store: &dyn Store,
    model: &ModelName,
    dirty: &[StaleHour],
    declared: Option<Task>,
) -> Result<TaskDecision, StoreError> {
    let mut detector = TaskDetector::default();
    for r in crate::reference::rows(store, model, None)?.0 {
        detector.observe_reference(&r);
    }
    if let Some(first) = dirty.first() {
        let range = ScanRange {
            from: Some(first.hour),
            to: Some(Timestamp(first.hour.micros() + HOUR_MICROS)),
            version: None,
        };
        store.scan_predictions(model, &range, &mut |p, l| detector.observe(p, l))?;
    }
    let spec = detector.clone().finish(declared, None);
    Ok(TaskDecision { detector, spec })
}

/// Splits sorted hours into passes: runs of consecutive hours (a gap ends a run, so sparse
/// hours never scan what lies between them), long runs cut so that every core gets a share and
/// no pass holds more than [`MAX_HOURS_PER_PASS`] hours of accumulators. Passes are few on
/// purpose: events are stored in arrival order, so a bulk import of unordered rows has chunks
/// spanning the whole range, and every pass decodes each chunk it overlaps.
fn runs(hours: &[i64]) -> Vec<&[i64]> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = hours.len().div_ceil(threads).clamp(1, MAX_HOURS_PER_PASS);
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=hours.len() {
        if i == hours.len() || hours[i] - hours[i - 1] > HOUR_MICROS {
            out.extend(hours[start..i].chunks(per));
            start = i;
        }
    }
    out
}

/// The model's task with its reason, and the per-hour accumulators merged per window and per
/// version: the answer of the hours to a performance query.
pub struct HourStates {
    pub spec: TaskSpec,
    pub task_reason: String,
    pub windows: BTreeMap<Timestamp, WindowAccumulator>,
    pub versions: BTreeMap<String, WindowAccumulator>,
}

/// The accumulators of the hours of `range` merged into windows of `window` and per version,
/// after a [`refresh`]. Asked only when [`crate::planner::performance`] says the hours answer
/// the query. `None` when they cannot after all (no task decided yet, an unknown model, or an
/// hour built for another task): the raw events answer.
pub fn hour_states(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    window: Window,
) -> Result<Option<HourStates>, EngineError> {
    let Some((spec, task_reason)) = refreshed_spec(store, model)? else {
        return Ok(None);
    };
    let mut windows: BTreeMap<Timestamp, WindowAccumulator> = BTreeMap::new();
    let mut versions: BTreeMap<String, WindowAccumulator> = BTreeMap::new();
    let answered = each_hour_blob(store, model, range, &spec, |row, blob| {
        let start = window.start_of(row.hour);
        merge_into(windows.entry(start), &blob.acc, &spec)?;
        merge_into(versions.entry(row.version), &blob.acc, &spec)
    })?;
    if !answered {
        return Ok(None);
    }
    Ok(Some(HourStates {
        spec,
        task_reason,
        windows,
        versions,
    }))
}

/// Hands each (version, hour) accumulator of `range` to `f`, after a [`refresh`]: for reports
/// that read a few counters of every hour ([`crate::service_levels`]). `false` when the hours
/// cannot answer (as [`hour_states`]'s `None`): the raw events answer then.
pub fn each_hour_accumulator(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    mut f: impl FnMut(&str, Timestamp, &WindowAccumulator),
) -> Result<bool, EngineError> {
    let Some((spec, _)) = refreshed_spec(store, model)? else {
        return Ok(false);
    };
    each_hour_blob(store, model, range, &spec, |row, blob| {
        f(&row.version, row.hour, &blob.acc);
        Ok(())
    })
}

/// Hands each hour of `range` with its blob to `f`, one decoded at a time; `false` when one
/// does not decode or was built for another task than `spec` (the raw events answer then).
fn each_hour_blob(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    spec: &TaskSpec,
    mut f: impl FnMut(StoredAggregate, HourBlob) -> Result<(), EngineError>,
) -> Result<bool, EngineError> {
    let spec_json = spec_key(spec);
    for row in store.aggregates(model, PERFORMANCE, range)? {
        let Some(blob) = readable::<HourBlob>(store, model, &row, "aggregate")? else {
            return Ok(false);
        };
        if blob.spec != spec_json {
            tracing::warn!(model = %model, hour = %row.hour, "aggregate built for another task: answering from the raw events");
            return Ok(false);
        }
        f(row, blob)?;
    }
    Ok(true)
}

/// The model's task, with its reason, after a [`refresh`]: the one the hours are built for, or
/// `None` when they cannot answer (no task decided yet, an unknown model, or a task declared
/// since the last refresh).
fn refreshed_spec(
    store: &dyn Store,
    model: &ModelName,
) -> Result<Option<(TaskSpec, String)>, EngineError> {
    // An unknown model has no task decision: the raw-event path answers, and names the error.
    refresh(store, model)?;
    let Some(decision) = load_decision(store, model)? else {
        return Ok(None);
    };
    let declared = declared_task(store, model)?;
    let (spec, task_reason) = choose_task(decision.detector, None, declared, None);
    if spec != decision.spec {
        // Declared since the last refresh: the raw events answer while the hours are rebuilt.
        return Ok(None);
    }
    Ok(Some((spec, task_reason)))
}

/// Accumulators with their exploration split, by (version, hour) or by window start.
pub type Splits<K> = BTreeMap<K, (WindowAccumulator, Split)>;

/// The hours' answer to a feedback query: per window, every event and the exploration split
/// of [`exploration::DEFAULT_TAG`].
pub struct ExplorationHours {
    pub spec: TaskSpec,
    pub windows: Splits<Timestamp>,
    /// (version, hour)s whose split was unknown (first labels that could have been on either
    /// side, see [`crate::exploration`]), folded from their raw events for this answer.
    pub scanned_hours: usize,
}

/// The per-hour accumulators and exploration splits of `range` merged into windows of
/// `window`, after a [`refresh`]; hours whose split is unknown are folded from their raw
/// events instead (only those hours). Asked only when [`crate::planner::feedback`] sends the
/// query to the hours. `None` when they cannot answer after all (as [`hour_states`]).
pub fn exploration_hours(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    window: Window,
) -> Result<Option<ExplorationHours>, EngineError> {
    let Some((spec, _)) = refreshed_spec(store, model)? else {
        return Ok(None);
    };
    let mut windows: Splits<Timestamp> = BTreeMap::new();
    let mut add = |hour: Timestamp, acc: &WindowAccumulator, split: &Split| {
        let (all, into) = windows
            .entry(window.start_of(hour))
            .or_insert_with(|| (WindowAccumulator::new(&spec), Split::default()));
        exploration::merge(all, into, acc, split)
            .map_err(|e| corrupt("aggregate", format!("{e} (task {:?})", spec.task)))
    };
    let mut unknown: Vec<(String, i64)> = Vec::new();
    let answered = each_hour_blob(store, model, range, &spec, |row, blob| {
        if blob.split.is_known() {
            add(row.hour, &blob.acc, &blob.split)?;
        } else {
            unknown.push((row.version, row.hour.micros()));
        }
        Ok(())
    })?;
    if !answered {
        return Ok(None);
    }
    let scanned_hours = unknown.len();
    for ((_, hour), (acc, split)) in fold_hours(store, model, &spec, &unknown)? {
        add(Timestamp(hour), &acc, &split)?;
    }
    Ok(Some(ExplorationHours {
        spec,
        windows,
        scanned_hours,
    }))
}

/// The accumulators and exploration splits of `hours` (version, hour) folded from their raw
/// events, consecutive hours in one scan, passes on every core. Writes nothing: the hours'
/// marks and deltas are the refresh's business.
fn fold_hours(
    store: &dyn Store,
    model: &ModelName,
    spec: &TaskSpec,
    hours: &[(String, i64)],
) -> Result<Splits<(String, i64)>, EngineError> {
    let wanted: HashSet<(&str, i64)> = hours.iter().map(|(v, h)| (v.as_str(), *h)).collect();
    let mut starts: Vec<i64> = hours.iter().map(|(_, h)| *h).collect();
    starts.sort_unstable();
    starts.dedup();
    let passes = runs(&starts);
    let folded = modelwatch_stats::parallel::parallel_map(&passes, |run| {
        let range = ScanRange {
            from: Some(Timestamp(run[0])),
            to: Some(Timestamp(run[run.len() - 1] + HOUR_MICROS)),
            version: None,
        };
        let mut out: Splits<(String, i64)> = BTreeMap::new();
        store.scan_predictions(model, &range, &mut |p, l| {
            let version = p.model_version.as_deref().unwrap_or("");
            let hour = hour_of(p.timestamp.micros());
            if !wanted.contains(&(version, hour)) {
                return;
            }
            let (acc, split) = out
                .entry((version.to_owned(), hour))
                .or_insert_with(|| (WindowAccumulator::new(spec), Split::default()));
            exploration::observe(spec, exploration::DEFAULT_TAG, acc, split, p, l);
        })?;
        Ok::<_, StoreError>(out)
    });
    let mut out = BTreeMap::new();
    for part in folded {
        out.extend(part?);
    }
    Ok(out)
}

/// Whether the hours answer `q`: [`crate::planner::performance`], under the name the engine's
/// tests and tools ask it by.
pub fn answers(q: &PerformanceQuery) -> bool {
    crate::planner::performance(q) == crate::planner::Source::Hours
}

/// [`hour_states`] over the range and windows of `q` (tests and tools ask whether the hours
/// answer a query this way; the performance report asks [`hour_states`] itself).
pub fn window_performance(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
) -> Result<Option<HourStates>, EngineError> {
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    hour_states(store, model, &range, q.window.unwrap_or(Window::DAY))
}

/// [`drift_hours`] for `q` when [`crate::planner::drift`] sends it to the hours, else `None`
/// (tests and tools compare the hours with a scan this way; the drift report asks the planner
/// and [`drift_hours`] itself).
pub fn drift_windows(
    store: &dyn Store,
    model: &ModelName,
    q: &DriftQuery,
    reference: &Reference,
) -> Result<Option<Vec<Windowed>>, EngineError> {
    if crate::planner::drift(store, model, q, reference)? == crate::planner::Source::Events {
        return Ok(None);
    }
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    drift_hours(store, model, &range, q.window, reference)
}

/// [`exploration_hours`] for `q` when [`crate::planner::feedback`] sends it to the hours, else
/// `None` (tests and tools compare the hours with a scan this way; the feedback report asks
/// the planner and [`exploration_hours`] itself).
pub fn feedback_windows(
    store: &dyn Store,
    model: &ModelName,
    q: &FeedbackQuery,
) -> Result<Option<ExplorationHours>, EngineError> {
    if crate::planner::feedback(q) == crate::planner::Source::Events {
        return Ok(None);
    }
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    exploration_hours(store, model, &range, q.window)
}

fn merge_into<K: Ord>(
    entry: std::collections::btree_map::Entry<'_, K, WindowAccumulator>,
    acc: &WindowAccumulator,
    spec: &TaskSpec,
) -> Result<(), EngineError> {
    match entry {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(acc.clone());
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            o.get_mut()
                .merge(acc)
                .map_err(|e| corrupt("aggregate", format!("{e} (task {:?})", spec.task)))?;
        }
    }
    Ok(())
}

/// The baseline state of the reference that applies to `version`, folded once per reference
/// upload and task and kept with the aggregates (the store drops it when a reference changes),
/// and which reference that is.
pub(crate) fn baseline(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
    spec: &TaskSpec,
) -> Result<(Option<TaskState>, Option<ReferenceInfo>), EngineError> {
    let key = version.unwrap_or("").to_owned();
    let spec_json = spec_key(spec);
    let range = ScanRange {
        version: Some(key.clone()),
        ..ScanRange::default()
    };
    if let Some(row) = store.aggregates(model, BASELINE, &range)?.first() {
        // Unreadable (written by another version of modelwatch): folded again below.
        if let Ok(blob) = postcard::from_bytes::<BaselineBlob>(&row.data) {
            if blob.spec == spec_json {
                return Ok((blob.state, blob.reference));
            }
        }
    }
    let (refs, reference) = crate::reference::rows(store, model, version)?;
    let state = baseline_state(spec, &refs);
    let blob = BaselineBlob {
        format: Format,
        spec: spec_json,
        state,
        reference,
    };
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: BASELINE.into(),
            put: vec![StoredAggregate {
                version: key,
                hour: MODEL_WIDE,
                data: postcard::to_stdvec(&blob).map_err(|e| corrupt("baseline", e))?,
            }],
            ..AggregateWrite::default()
        },
    )?;
    Ok((blob.state, blob.reference))
}

/// The writes that delete the concept-drift streams of `hours` and their keys
/// ([`crate::concept::STREAMS`], [`crate::concept::KEYS`]): part of every write of those
/// hours' performance state, in its transaction, so that a stream never outlives a change to
/// its hour's predictions or labels (a new prediction, a first, late or corrected label,
/// retention, a rebuild). The next concept query builds it again from the hour's events.
fn stale_streams<'a>(hours: impl Iterator<Item = &'a StaleHour>) -> [AggregateWrite; 2] {
    let delete: Vec<(String, Timestamp)> = hours.map(|d| (d.version.clone(), d.hour)).collect();
    [crate::concept::STREAMS, crate::concept::KEYS].map(|kind| AggregateWrite {
        kind: kind.into(),
        delete: delete.clone(),
        ..AggregateWrite::default()
    })
}

/// Brings `model`'s aggregates up to date, then runs `f` with its refresh lock held: no
/// refresh writes (or deletes a concept stream, [`stale_streams`]) while `f` runs. A state
/// derived from an hour's events and stored by `f` can then not miss a change whose refresh
/// would have run between `f`'s scan and its write.
pub(crate) fn with_refresh_lock<T>(
    store: &dyn Store,
    model: &ModelName,
    f: impl FnOnce() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let lock = refresh_lock(model);
    let _one_at_a_time = lock.lock().unwrap_or_else(PoisonError::into_inner);
    refresh_locked(store, model, None, Decide::Yes)?;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_split_at_gaps_and_share_long_runs_between_cores() {
        let h = |i: i64| i * HOUR_MICROS;
        let hours: Vec<i64> = (0..10).map(h).chain([h(100), h(101), h(500)]).collect();
        let passes = runs(&hours);
        // Never a pass across a gap.
        for p in &passes {
            assert!(p.windows(2).all(|w| w[1] - w[0] == HOUR_MICROS), "{p:?}");
        }
        let flat: Vec<i64> = passes.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(flat, hours);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = hours.len().div_ceil(cores);
        assert!(passes.iter().all(|p| p.len() <= per));
        // A year of hours is cut into passes of at most a month.
        let year: Vec<i64> = (0..24 * 365).map(h).collect();
        assert!(runs(&year).iter().all(|p| p.len() <= MAX_HOURS_PER_PASS));
    }
}
