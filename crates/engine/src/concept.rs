//! Concept drift: change points in a model version's stream of errors, in event-time order.
//!
//! The stream of a version is its labelled predictions ordered by prediction event time (ties
//! by request id, so the order is the same whatever order rows arrived in), each mapped to its
//! error: 1 for a classifier's mistake and 0 for a right answer (the class decided as the
//! metrics decide it: the logged prediction, else the score at the threshold or the highest
//! score), the absolute error for a regressor. The detectors of `modelwatch_stats::concept`
//! run over it from the start of the query's range; a change point is reported with its place
//! in the stream, its prediction's time and request id, and the window it falls in.
//!
//! Incremental (docs/adr/009-concept-drift-stream.md, amendment of 2026-12-07): each (version,
//! hour) keeps its stream as the aggregate [`STREAMS`] (one bit a prediction for a classifier,
//! the exact `f64` for a regressor, and the task spec it was computed for). A query reads the
//! stored streams of its whole hours, builds those missing from their hour's raw events (runs
//! of consecutive hours in one scan, under the model's refresh lock) and stores them, reads
//! the hours cut by `from` / `to` from their events, and runs the detectors over the
//! concatenation; a change point's prediction is named by the stored keys ([`KEYS`]) of the
//! hour holding it, read for those hours only.
//! Freshness is the refresh's: every write of an hour's performance state (a rescan, label or
//! prediction deltas added, an import) deletes the hour's stream in the same transaction, so a
//! late or corrected label, a new prediction, retention or a rebuild leaves no stale stream.
//! Windows that are not whole hours are answered by [`concept_from_events`], the scan of every
//! raw event of the range, which is also the reference the stored streams are tested against.
//! The detectors run from the start of the range at each query (no checkpoints: the ADR gives
//! their cost).

use modelwatch_core::{LabelEvent, ModelName, Outcome, PredictionEvent, Timestamp, Window};
use modelwatch_stats::concept::DetectorKind;
use modelwatch_store::{
    hour_of, AggregateWrite, ScanRange, Store, StoreError, StoredAggregate, HOUR_MICROS,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::error::EngineError;
use crate::state::{Task, TaskSpec};

/// What a concept-drift query covers.
#[derive(Debug, Clone)]
pub struct ConceptQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
    /// The detectors to run; every one when empty.
    pub detectors: Vec<DetectorKind>,
}

/// What the stream's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStream {
    /// 1 for a wrong class, 0 for a right one.
    Mistake,
    /// |label - prediction|.
    AbsoluteError,
}

/// One detected change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangePoint {
    pub detector: DetectorKind,
    /// 0-based place in the version's stream of labelled predictions of the range.
    pub position: u64,
    /// Event time of the prediction at which the change was flagged.
    pub timestamp: Timestamp,
    pub request_id: String,
    /// Start of the window it falls in.
    pub window_start: Timestamp,
}

/// A detector that does not apply to this stream, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub detector: DetectorKind,
    pub reason: String,
}

/// One event-time window of a version's stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConceptWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Labelled predictions in the window.
    pub labelled: u64,
    /// Mean of the stream over the window (the error rate for a classifier).
    pub mean_error: f64,
    /// Changes flagged in the window, per detector that ran (0 included).
    pub changes: BTreeMap<DetectorKind, u64>,
}

/// A version's change points and windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionConcept {
    pub version: String,
    pub labelled: u64,
    pub changes: Vec<ChangePoint>,
    pub windows: Vec<ConceptWindow>,
}

/// `GET /v1/models/{model}/concept`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConceptReport {
    pub model: String,
    pub task: Task,
    pub stream: ErrorStream,
    pub window: String,
    pub detectors: Vec<DetectorKind>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    pub versions: Vec<VersionConcept>,
}

/// Kind of the per-hour error streams: per (version, hour) the hour's stream in stream order
/// ([`HourStream`]). Not a reference-derived kind (the stream does not depend on a reference).
pub const STREAMS: &str = "concept-stream";

/// Kind of the per-hour keys of the streams' predictions ([`HourKeys`]): written with each
/// stream, read only for the hours holding a change point, to name its prediction.
pub const KEYS: &str = "concept-keys";

/// One labelled prediction of the stream.
struct Point {
    time: Timestamp,
    request_id: String,
    error: f64,
}

/// One (version, hour)'s error stream in stream order, as stored: one bit a prediction for a
/// classifier, the exact `f64` for a regressor, and the task spec it was computed for. (An
/// `f32` changes the answer: on the engine's regression test the windows' `mean_error` moved in
/// the ninth digit, and the detectors sum and compare the same rounded values.)
#[derive(Serialize, Deserialize)]
struct HourStream {
    spec: String,
    /// Tells this build of the hour's stream from any other ([`build_id`]): its keys are the
    /// ones with the same id.
    built: u64,
    errors: Errors,
}

/// The (prediction time, request id) of each value of an hour's stream, in stream order, the
/// time as microseconds from the start of the hour.
#[derive(Serialize, Deserialize)]
struct HourKeys {
    built: u64,
    keys: Vec<(u32, String)>,
}

/// An id for a new build of an hour's stream: unique in this process, and across processes
/// unless two start within the same nanosecond.
fn build_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static BASE: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    BASE.wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 32)
}

#[derive(Serialize, Deserialize)]
enum Errors {
    /// Bit `i % 8` of byte `i / 8` is 1 when the `i`-th prediction was a mistake.
    Mistakes {
        len: u64,
        bits: Vec<u8>,
    },
    Absolute(Vec<f64>),
}

impl Errors {
    fn of(stream: ErrorStream, values: &[f64]) -> Errors {
        match stream {
            ErrorStream::Mistake => {
                let mut bits = vec![0u8; values.len().div_ceil(8)];
                for (i, &v) in values.iter().enumerate() {
                    if v != 0.0 {
                        bits[i / 8] |= 1 << (i % 8);
                    }
                }
                Errors::Mistakes {
                    len: values.len() as u64,
                    bits,
                }
            }
            ErrorStream::AbsoluteError => Errors::Absolute(values.to_vec()),
        }
    }

    fn append_to(&self, out: &mut Vec<f64>) {
        match self {
            Errors::Mistakes { len, bits } => {
                out.extend((0..*len as usize).map(|i| f64::from((bits[i / 8] >> (i % 8)) & 1)))
            }
            Errors::Absolute(v) => out.extend_from_slice(v),
        }
    }
}

/// What one [`concept_counted`] read and computed: how the per-hour streams were used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamUse {
    /// The whole query was answered from a scan of the raw events (a window shorter than an
    /// hour or not a whole number of hours, a model with no task decided yet, or a range
    /// within one hour).
    pub from_events: bool,
    /// (version, hour) streams read as stored.
    pub hours_read: usize,
    /// (version, hour) streams built from the hours' raw events (missing or stale) and stored.
    pub hours_built: usize,
    /// Hours cut by `from` or `to`, read from their raw events and not stored.
    pub partial_hours: usize,
    /// Hours holding a change point, whose keys were read to name its prediction.
    pub change_hours: usize,
    /// Of those, the hours whose keys were missing, read from their raw events instead.
    pub change_hours_scanned: usize,
}

/// Runs the detectors over each version's error stream in `q`'s range.
///
/// From the stored per-hour streams ([`STREAMS`]) when the window is a whole number of hours:
/// stale or missing hours are built from their raw events first; the others are read. Windows
/// shorter than an hour scan the raw events ([`concept_from_events`]). Both give the same
/// answer.
pub fn concept(
    store: &dyn Store,
    model: &ModelName,
    q: &ConceptQuery,
) -> Result<ConceptReport, EngineError> {
    Ok(concept_counted(store, model, q)?.0)
}

/// The task of the model and which detectors run on its stream (and which do not, and why).
fn plan(q: &ConceptQuery, spec: &TaskSpec) -> (ErrorStream, Vec<DetectorKind>, Vec<Skipped>) {
    let stream = match spec.task {
        Task::Regression => ErrorStream::AbsoluteError,
        Task::Binary | Task::Multiclass => ErrorStream::Mistake,
    };
    let wanted = if q.detectors.is_empty() {
        DetectorKind::ALL.to_vec()
    } else {
        q.detectors.clone()
    };
    let (detectors, skipped): (Vec<DetectorKind>, Vec<DetectorKind>) = wanted
        .into_iter()
        .partition(|d| stream == ErrorStream::Mistake || !d.needs_binary_stream());
    let skipped = skipped
        .into_iter()
        .map(|detector| Skipped {
            detector,
            reason: format!(
                "{} watches a stream of 0/1 mistakes; a regressor's errors are real-valued",
                detector.name()
            ),
        })
        .collect();
    (stream, detectors, skipped)
}

/// [`concept`], with how the per-hour streams were used (what the tests check: a second query
/// builds nothing).
pub fn concept_counted(
    store: &dyn Store,
    model: &ModelName,
    q: &ConceptQuery,
) -> Result<(ConceptReport, StreamUse), EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let events = || {
        let report = concept_from_events(store, model, q)?;
        Ok((
            report,
            StreamUse {
                from_events: true,
                ..StreamUse::default()
            },
        ))
    };
    if q.window.micros() % HOUR_MICROS != 0 {
        return events();
    }
    // The spec the hours are built for; none before the first refresh with events.
    let Some((spec, _)) = crate::aggregates::decided_spec(store, model, None, None)? else {
        return events();
    };
    let (stream, detectors, skipped) = plan(q, &spec);
    let Some((versions, used)) = from_hours(store, model, q, &spec, stream, &detectors)? else {
        return events();
    };
    Ok((
        ConceptReport {
            model: model.to_string(),
            task: spec.task,
            stream,
            window: q.window.label(),
            detectors,
            skipped,
            versions,
        },
        used,
    ))
}

/// The answer from a scan of every raw event of the range: what [`concept`] gives for windows
/// that are not whole hours, and the reference the per-hour streams are tested against.
pub fn concept_from_events(
    store: &dyn Store,
    model: &ModelName,
    q: &ConceptQuery,
) -> Result<ConceptReport, EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let (spec, _) = crate::performance::scan_spec(store, model, &range, None, None)?;
    let (stream, detectors, skipped) = plan(q, &spec);
    // By (version, hour), each hour in stream order: a version's hours one after the other
    // are its stream.
    let mut streams: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for ((version, _), points) in scan_points(store, model, &range, &spec, |_| true)? {
        streams.entry(version).or_default().extend(points);
    }
    let versions = streams
        .into_iter()
        .map(|(version, points)| {
            let values: Vec<f64> = points.iter().map(|p| p.error).collect();
            let spans = spans_of(points.iter().map(|p| q.window.start_of(p.time)));
            let (mut concept, found) =
                run_stream(version.clone(), &values, &spans, &detectors, q.window);
            concept.changes = found
                .into_iter()
                .map(|(detector, i, window_start)| ChangePoint {
                    detector,
                    position: i as u64,
                    timestamp: points[i].time,
                    request_id: points[i].request_id.clone(),
                    window_start,
                })
                .collect();
            concept
        })
        .collect();
    Ok(ConceptReport {
        model: model.to_string(),
        task: spec.task,
        stream,
        window: q.window.label(),
        detectors,
        skipped,
        versions,
    })
}

/// The labelled predictions of `range` whose (version, hour) `keep` accepts, by (version,
/// start of the hour), each hour sorted in stream order.
fn scan_points(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    spec: &TaskSpec,
    mut keep: impl FnMut(&(&str, i64)) -> bool,
) -> Result<BTreeMap<(String, i64), Vec<Point>>, EngineError> {
    let mut streams: BTreeMap<(String, i64), Vec<Point>> = BTreeMap::new();
    store.scan_predictions(model, range, &mut |p, l| {
        let version = p.model_version.as_deref().unwrap_or("");
        let hour = hour_of(p.timestamp.micros());
        if !keep(&(version, hour)) {
            return;
        }
        if let Some(error) = l.and_then(|l| error_of(spec, p, l)) {
            streams
                .entry((version.to_owned(), hour))
                .or_default()
                .push(Point {
                    time: p.timestamp,
                    request_id: p.request_id.clone(),
                    error,
                });
        }
    })?;
    for points in streams.values_mut() {
        points.sort_by(|a, b| (a.time, &a.request_id).cmp(&(b.time, &b.request_id)));
    }
    Ok(streams)
}

/// An hour of a version's stream as this query has it.
enum HourSource {
    /// Its stored stream, and the id of that build.
    Stored(Errors, u64),
    /// Its labelled predictions, read from its events (an hour cut by `from` or `to`).
    Read(Vec<Point>),
}

/// One hour of a version's stream, placed in it (with its points when it was read).
struct Piece {
    hour: i64,
    /// The build id of a stored hour's stream.
    built: u64,
    /// Place of its first value in the version's stream.
    start: usize,
    len: usize,
    /// The points of an hour read from its raw events for this query.
    points: Option<Vec<Point>>,
}

/// Each version's stream from the stored per-hour streams of `q`'s whole hours (built first
/// where missing or stale) and the raw events of the hours `from` or `to` cut; then the
/// detectors over it, and the predictions of the change points from their hours' keys.
/// `None` when the stored streams cannot answer: the range lies within one hour, or an hour
/// changed between the stream read and the change point's look-up.
fn from_hours(
    store: &dyn Store,
    model: &ModelName,
    q: &ConceptQuery,
    spec: &TaskSpec,
    stream: ErrorStream,
    detectors: &[DetectorKind],
) -> Result<Option<(Vec<VersionConcept>, StreamUse)>, EngineError> {
    let ceil_hour = |t: Timestamp| Timestamp(hour_of(t.micros() + HOUR_MICROS - 1));
    // The whole hours: [first, last).
    let first = q.from.map(ceil_hour);
    let last = q.to.map(|t| Timestamp(hour_of(t.micros())));
    if let (Some(f), Some(l)) = (first, last) {
        if f >= l {
            return Ok(None);
        }
    }
    let mut used = StreamUse::default();
    let whole = ScanRange {
        from: first,
        to: last,
        version: q.version.clone(),
    };
    let spec_json = serde_json::to_string(spec).expect("a spec serializes");
    // Read and built with the model's refresh lock held: a refresh deletes the stream of every
    // hour it rewrites (a new prediction, a late or corrected label), and must not do so between
    // this build's scan of an hour and its write, or the stored stream would miss the change.
    let stored = crate::aggregates::with_refresh_lock(store, model, || {
        stored_streams(store, model, &whole, spec, &spec_json, stream, &mut used)
    })?;
    // The hours cut by the range: read from their events, each time.
    let mut cut = Vec::new();
    if let (Some(from), Some(f)) = (q.from, first) {
        if from < f {
            cut.push((from, f));
        }
    }
    if let (Some(to), Some(l)) = (q.to, last) {
        if l < to {
            cut.push((l, to));
        }
    }
    let mut pieces: BTreeMap<String, Vec<(i64, HourSource)>> = BTreeMap::new();
    for ((version, hour), (errors, built)) in stored {
        pieces
            .entry(version)
            .or_default()
            .push((hour.micros(), HourSource::Stored(errors, built)));
    }
    for (from, to) in cut {
        let range = ScanRange {
            from: Some(from),
            to: Some(to),
            version: q.version.clone(),
        };
        used.partial_hours += 1;
        for ((version, hour), points) in scan_points(store, model, &range, spec, |_| true)? {
            pieces
                .entry(version)
                .or_default()
                .push((hour, HourSource::Read(points)));
        }
    }
    let mut versions = Vec::new();
    // The stored hours holding a change point: their build id and length.
    let mut wanted: BTreeMap<(String, i64), (u64, usize)> = BTreeMap::new();
    for (version, mut hours) in pieces {
        hours.sort_by_key(|(hour, _)| *hour);
        let mut values = Vec::new();
        let mut table = Vec::new();
        for (hour, piece) in hours {
            let start = values.len();
            let (points, built) = match piece {
                HourSource::Stored(errors, built) => {
                    errors.append_to(&mut values);
                    (None, built)
                }
                HourSource::Read(points) => {
                    values.extend(points.iter().map(|p| p.error));
                    (Some(points), 0)
                }
            };
            if values.len() > start {
                table.push(Piece {
                    hour,
                    built,
                    start,
                    len: values.len() - start,
                    points,
                });
            }
        }
        if values.is_empty() {
            continue;
        }
        let spans: Vec<(usize, Timestamp)> = table
            .iter()
            .map(|p| (p.start, q.window.start_of(Timestamp(p.hour))))
            .collect();
        let (concept, found) = run_stream(version.clone(), &values, &spans, detectors, q.window);
        for &(_, i, _) in &found {
            let piece = &table[table.partition_point(|p| p.start <= i) - 1];
            if piece.points.is_none() {
                wanted.insert((version.clone(), piece.hour), (piece.built, piece.len));
            }
        }
        versions.push((concept, found, table));
    }
    // The change points' predictions: the stored keys of the hours holding them, those of the
    // very build of the stream read (runs of consecutive hours in one read).
    let mut hours: Vec<i64> = wanted.keys().map(|(_, h)| *h).collect();
    hours.sort_unstable();
    hours.dedup();
    used.change_hours = hours.len();
    let mut looked_up: BTreeMap<(String, i64), Vec<(Timestamp, String)>> = BTreeMap::new();
    for run in consecutive(&hours) {
        let range = ScanRange {
            from: Some(Timestamp(run[0])),
            to: Some(Timestamp(run[run.len() - 1] + HOUR_MICROS)),
            version: q.version.clone(),
        };
        for row in store.aggregates(model, KEYS, &range)? {
            let key = (row.version, row.hour.micros());
            let Some(&(built, len)) = wanted.get(&key) else {
                continue;
            };
            if let Ok(k) = postcard::from_bytes::<HourKeys>(&row.data) {
                if k.built == built && k.keys.len() == len {
                    let hour = key.1;
                    let keys = k.keys.into_iter();
                    let keys = keys.map(|(at, id)| (Timestamp(hour + i64::from(at)), id));
                    looked_up.insert(key, keys.collect());
                }
            }
        }
    }
    // Hours without their keys (an older modelwatch's, or rebuilt since the stream was read):
    // from their events.
    let mut missing: Vec<i64> = wanted
        .keys()
        .filter(|k| !looked_up.contains_key(*k))
        .map(|(_, h)| *h)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    used.change_hours_scanned = missing.len();
    for run in consecutive(&missing) {
        let range = ScanRange {
            from: Some(Timestamp(run[0])),
            to: Some(Timestamp(run[run.len() - 1] + HOUR_MICROS)),
            version: q.version.clone(),
        };
        let read = scan_points(store, model, &range, spec, |(v, h)| {
            let key = ((*v).to_owned(), *h);
            wanted.contains_key(&key) && !looked_up.contains_key(&key)
        })?;
        for (key, points) in read {
            let keys = points.into_iter().map(|p| (p.time, p.request_id));
            looked_up.insert(key, keys.collect());
        }
    }
    let mut out = Vec::with_capacity(versions.len());
    for (mut concept, found, table) in versions {
        let mut changes = Vec::with_capacity(found.len());
        for (detector, i, window_start) in found {
            let piece = &table[table.partition_point(|p| p.start <= i) - 1];
            let at = i - piece.start;
            let (timestamp, request_id) = match &piece.points {
                Some(points) => (points[at].time, points[at].request_id.clone()),
                None => match looked_up.get(&(concept.version.clone(), piece.hour)) {
                    // The hour as stored: the same labelled predictions.
                    Some(keys) if keys.len() == piece.len => keys[at].clone(),
                    // It changed since (a label arrived meanwhile): the raw events answer.
                    _ => return Ok(None),
                },
            };
            changes.push(ChangePoint {
                detector,
                position: i as u64,
                timestamp,
                request_id,
                window_start,
            });
        }
        concept.changes = changes;
        out.push(concept);
    }
    Ok(Some((out, used)))
}

/// A stored hour's stream and the id of its build.
type Built = (Errors, u64);

/// The stored streams of the (version, hour)s of `range` that have predictions, those missing
/// or built for another spec built again from their hours' raw events and stored (runs of
/// consecutive hours in one scan), each with its keys ([`KEYS`]) in the same write. Each
/// stream comes with its build id. The caller holds the model's refresh lock.
fn stored_streams(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    spec: &TaskSpec,
    spec_json: &str,
    stream: ErrorStream,
    used: &mut StreamUse,
) -> Result<BTreeMap<(String, Timestamp), Built>, EngineError> {
    // Every (version, hour) with predictions has its performance state after a refresh.
    let hours: Vec<(String, Timestamp)> = store
        .aggregates(model, crate::aggregates::PERFORMANCE, range)?
        .into_iter()
        .map(|a| (a.version, a.hour))
        .collect();
    let mut stored: HashMap<(String, Timestamp), Built> = HashMap::new();
    for row in store.aggregates(model, STREAMS, range)? {
        // One of another spec or an older modelwatch is built again.
        if let Ok(s) = postcard::from_bytes::<HourStream>(&row.data) {
            if s.spec == spec_json {
                stored.insert((row.version, row.hour), (s.errors, s.built));
            }
        }
    }
    let mut out = BTreeMap::new();
    let mut stale: HashSet<(String, i64)> = HashSet::new();
    for key in hours {
        match stored.remove(&key) {
            Some(errors) => {
                out.insert(key, errors);
            }
            None => {
                stale.insert((key.0, key.1.micros()));
            }
        }
    }
    used.hours_read = out.len();
    let mut stale_hours: Vec<i64> = stale.iter().map(|(_, h)| *h).collect();
    stale_hours.sort_unstable();
    stale_hours.dedup();
    let mut put = Vec::new();
    let mut keys = Vec::new();
    for run in consecutive(&stale_hours) {
        let part = ScanRange {
            from: Some(Timestamp(run[0])),
            to: Some(Timestamp(run[run.len() - 1] + HOUR_MICROS)),
            version: range.version.clone(),
        };
        let mut built = scan_points(store, model, &part, spec, |(v, h)| {
            stale.contains(&((*v).to_owned(), *h))
        })?;
        // A stale hour without a labelled prediction keeps an empty stream, so that it is not
        // scanned again.
        for key in &stale {
            if run.contains(&key.1) {
                built.entry(key.clone()).or_default();
            }
        }
        for ((version, hour), points) in built {
            let values: Vec<f64> = points.iter().map(|p| p.error).collect();
            let id = build_id();
            let built = HourStream {
                spec: spec_json.to_owned(),
                built: id,
                errors: Errors::of(stream, &values),
            };
            let hour_keys = HourKeys {
                built: id,
                keys: points
                    .into_iter()
                    .map(|p| ((p.time.micros() - hour) as u32, p.request_id))
                    .collect(),
            };
            let encode = |e: postcard::Error| crate::aggregates::corrupt("concept stream", e);
            put.push(StoredAggregate {
                version: version.clone(),
                hour: Timestamp(hour),
                data: postcard::to_stdvec(&built).map_err(encode)?,
            });
            keys.push(StoredAggregate {
                version: version.clone(),
                hour: Timestamp(hour),
                data: postcard::to_stdvec(&hour_keys).map_err(encode)?,
            });
            out.insert((version, Timestamp(hour)), (built.errors, id));
        }
    }
    used.hours_built = put.len();
    if !put.is_empty() {
        // A stream and its keys in one transaction: the keys of a build are always there.
        store.put_aggregate_group(
            model,
            vec![
                AggregateWrite {
                    kind: STREAMS.into(),
                    put,
                    ..AggregateWrite::default()
                },
                AggregateWrite {
                    kind: KEYS.into(),
                    put: keys,
                    ..AggregateWrite::default()
                },
            ],
        )?;
    }
    Ok(out)
}

/// Runs of consecutive hours of sorted `hours`.
fn consecutive(hours: &[i64]) -> Vec<&[i64]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=hours.len() {
        if i == hours.len() || hours[i] - hours[i - 1] != HOUR_MICROS {
            out.push(&hours[start..i]);
            start = i;
        }
    }
    out
}

/// Spans of consecutive positions in the same window: (first position, window start).
fn spans_of(windows: impl Iterator<Item = Timestamp>) -> Vec<(usize, Timestamp)> {
    let mut spans: Vec<(usize, Timestamp)> = Vec::new();
    for (i, w) in windows.enumerate() {
        if spans.last().is_none_or(|&(_, last)| last != w) {
            spans.push((i, w));
        }
    }
    spans
}

/// The detectors over one version's stream `values`, whose positions from `spans[k].0` on
/// fall in the window starting at `spans[k].1`. The windows are summed in stream order (the
/// same sums whatever the stream was read from). Returns the version's windows (its changes
/// left empty) and each change found: (detector, position, window start), ordered by position
/// then detector.
fn run_stream(
    version: String,
    values: &[f64],
    spans: &[(usize, Timestamp)],
    detectors: &[DetectorKind],
    window: Window,
) -> (VersionConcept, Vec<(DetectorKind, usize, Timestamp)>) {
    let mut windows: BTreeMap<Timestamp, ConceptWindow> = BTreeMap::new();
    let ends = spans.iter().skip(1).map(|s| s.0).chain([values.len()]);
    for (&(from, start), to) in spans.iter().zip(ends) {
        let w = windows.entry(start).or_insert_with(|| ConceptWindow {
            start,
            end: Timestamp(start.micros() + window.micros()),
            labelled: 0,
            mean_error: 0.0,
            changes: detectors.iter().map(|&d| (d, 0)).collect(),
        });
        for &v in &values[from..to] {
            w.labelled += 1;
            w.mean_error += v;
        }
    }
    for w in windows.values_mut() {
        w.mean_error /= w.labelled as f64;
    }
    let window_of = |i: usize| spans[spans.partition_point(|s| s.0 <= i) - 1].1;
    let mut found = Vec::new();
    for &kind in detectors {
        let mut detector = kind.detector();
        for (i, &v) in values.iter().enumerate() {
            if detector.update(v).drift {
                let window_start = window_of(i);
                if let Some(w) = windows.get_mut(&window_start) {
                    *w.changes.entry(kind).or_default() += 1;
                }
                found.push((kind, i, window_start));
            }
        }
    }
    found.sort_by_key(|&(kind, i, _)| (i, kind));
    (
        VersionConcept {
            version,
            labelled: values.len() as u64,
            changes: Vec::new(),
            windows: windows.into_values().collect(),
        },
        found,
    )
}

/// The stream's value for one labelled prediction; `None` when it cannot be told (no
/// decision logged or derivable, a non-numeric regression value).
fn error_of(spec: &TaskSpec, p: &PredictionEvent, l: &LabelEvent) -> Option<f64> {
    match spec.task {
        Task::Regression => {
            let (t, y) = (l.label.as_f64()?, p.prediction.as_ref()?.as_f64()?);
            Some((t - y).abs())
        }
        Task::Binary => {
            let score = spec.binary_score(p.score, p.scores.as_deref());
            let predicted_positive = spec.predicted_positive(p.prediction.as_ref(), score)?;
            let actual_positive = l.label.with_class_key(|c| c == spec.positive());
            Some(f64::from(predicted_positive != actual_positive))
        }
        Task::Multiclass => {
            let predicted = match &p.prediction {
                Some(o) => o.class_key(),
                None => crate::state::argmax(p.scores.as_deref()?)?.to_owned(),
            };
            Some(f64::from(predicted != Outcome::class_key(&l.label)))
        }
    }
}
