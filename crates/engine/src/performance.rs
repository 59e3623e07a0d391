//! Per-window model performance: folds stored predictions and their labels into the mergeable
//! states of `modelwatch_stats::perf`, one [`WindowAccumulator`] per event-time window (and per
//! segment value), and turns them into a [`PerformanceReport`].
//!
//! # How a query runs
//! 1. The task is fixed first ([`TaskSpec`]): given (`task=`), declared for the model
//!    (`PUT /v1/models/{model}/task` or `[models.<name>] task` in the config file, see
//!    [`crate::aggregates::declare_task`]), or detected from every row seen ([`TaskDetector`]):
//!    classification when predictions carry `score`/`scores` or any outcome is a string or a
//!    boolean, or when the outcomes are whole numbers with at most
//!    [`MAX_INTEGER_CLASSES`] distinct values; regression when there is no score and the
//!    outcomes are numbers with a fraction, or whole numbers with more distinct values (prices,
//!    counts). Classification with at most two classes seen (and no `scores` map naming more)
//!    is binary, otherwise multiclass. The reply says why (`task_reason`).
//!    Binary positive class: `1` if seen, else `true`, else the larger of the two class names
//!    in byte order. The binary score is `score`, or `scores[positive]`.
//!
//!    The predicted class is what the model logged (`prediction`): the model's own threshold,
//!    whatever it was, decides the label-dependent metrics (accuracy, precision, recall, F1,
//!    confusion matrix...); the score feeds the threshold-free ones (ROC-AUC, average
//!    precision, log loss, Brier, ECE, reliability). A binary row with a score and no
//!    prediction is decided by `score >= 0.5`. `threshold=` is a what-if: the score decides at
//!    that threshold (the prediction only for rows without a score); such a query is answered
//!    from the raw events. The report says which rule applied (`decision`: `prediction` or
//!    `threshold`).
//! 2. A second scan observes each (prediction, label) into the accumulator of its window —
//!    event time of the prediction, never label time. A label sent before or after its
//!    prediction gives the same result; so does any batching (states merge exactly).
//! 3. Baseline: the reference of the version (or the all-versions reference when that one is
//!    empty), if its rows carry labels, folded into one state; each window gets `changes`
//!    from `compare_binary` / `compare_multiclass` / `compare_regression`.
//!
//! The accumulator is the unit a later incremental store can persist: it is serde, `observe`
//! takes one row, `merge` adds another accumulator of the same [`TaskSpec`].
//!
//! # JSON shape ([`PerformanceReport`])
//! ```json
//! {"model": "fraud", "window": "1d", "task": "binary", "positive_class": "1", "threshold": 0.5,
//!  "decision": "prediction", "task_reason": "predictions carry scores: classification; ...",
//!  "min_sample": 30,
//!  "baseline": {"n": 5000, "accuracy": {...}, ...} | null,
//!  "windows": [{"start": "...", "end": "...",
//!               "predictions": 812, "labelled": 640, "label_coverage": 0.79, "errors": 3,
//!               "error_rate": 0.004, "label_delay_seconds": {...} | null,
//!               "insufficient_sample": false,
//!               // the task's report, flattened (scikit-learn names):
//!               "n": 640, "accuracy": {"status": "defined", "value": 0.9, "n": 640,
//!               "ci_low": 0.87, "ci_high": 0.92}, "f1": {...}, "roc_auc": {...}, ...,
//!               "confusion_matrix": {...},
//!               "changes": {"accuracy": {...Change...}, ...} | null,
//!               // operational, over all predictions of the window:
//!               "latency_ms": {"n", "p50", "p95", "p99", "min", "max"},
//!               "average_confidence": {...Metric...},
//!               "prediction_distribution": {"n", "classes", "entropy_bits", "top_class",
//!                                           "top_class_share", "counts"} | null,
//!               "score_quantiles": {"n", "p50", "p95", "p99", "min", "max"}}],
//!  // only with segment= (the parameter as given); `segments` only for a breakdown:
//!  "segment": "country",
//!  "segments": [{"value": "DE", "predictions": 120, "labelled": 100,
//!                <report over the whole range, flattened>,
//!                "windows": [{"start", "end", "predictions", "labelled", <report>}]}]}
//! ```
//! A multiclass report names at most 50 classes (most labelled rows first) in `per_class` and
//! in its confusion matrix, whose last row and column `(other classes)` sum the others
//! (`classes`, `classes_omitted`): the reply's size never grows with the number of classes.
//!
//! `segment` has one grammar ([`Segment`]). A breakdown (`segment=country`, `segment=tag:region`)
//! reports the 10 values with most predictions plus `other`, worst first by the main metric (f1
//! for binary, accuracy for multiclass, mae for regression; undefined last); a missing value is
//! `(missing)`, a null one `(null)`. A slice (`segment=country:DE`, `segment=tag:region:eu`)
//! reports only its events, as a report of its own (no `segments`).

use std::collections::{BTreeMap, HashMap};

use modelwatch_core::{LabelEvent, ModelName, PredictionEvent, ReferenceRow, Timestamp, Window};
use modelwatch_stats::perf::{Histogram, MetricConfig, PerfError, QuantileSketch};
use modelwatch_store::{DelayQuantiles, ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::planner::Source;

/// Most segment values reported by name; the rest are merged into `other`.
pub const MAX_SEGMENTS: usize = 10;
/// Distinct segment values tracked during a scan; rows of later new values go to `other`.
const MAX_TRACKED_SEGMENTS: usize = 1_000;
/// The engine's error under the name performance callers know it by.
pub use crate::error::EngineError as PerformanceError;
pub use crate::query::{PerformanceQuery, Segment, SegmentKey};
use crate::state::choose_task;
pub use crate::state::{
    baseline_state, Operational, Task, TaskChanges, TaskDetector, TaskReport, TaskSource, TaskSpec,
    TaskState, WindowAccumulator, DEFAULT_THRESHOLD, MAX_INTEGER_CLASSES,
};

/// One window of the response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowReport {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    pub predictions: u64,
    pub labelled: u64,
    pub label_coverage: f64,
    pub errors: u64,
    pub error_rate: f64,
    pub label_delay_seconds: Option<DelayQuantiles>,
    /// Fewer labelled rows than `min_sample`: metrics are `insufficient_sample`.
    pub insufficient_sample: bool,
    #[serde(flatten)]
    pub metrics: TaskReport,
    pub changes: Option<TaskChanges>,
    #[serde(flatten)]
    pub operational: Operational,
    /// Label-free estimates of the window's metrics, labelled or not, added by
    /// [`crate::estimate::attach`] (the API's metrics and `modelwatch metrics`); absent when the
    /// model's reference cannot be used for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated: Option<crate::estimate::WindowEstimates>,
}

/// One window of one segment value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    pub predictions: u64,
    pub labelled: u64,
    #[serde(flatten)]
    pub metrics: TaskReport,
}

/// One segment value over the whole range, and per window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentReport {
    pub value: String,
    pub predictions: u64,
    pub labelled: u64,
    #[serde(flatten)]
    pub metrics: TaskReport,
    pub windows: Vec<SegmentWindow>,
}

/// One model version over the whole range, beside the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionReport {
    /// Empty for predictions sent without a version.
    pub version: String,
    pub predictions: u64,
    pub labelled: u64,
    pub insufficient_sample: bool,
    #[serde(flatten)]
    pub metrics: TaskReport,
    pub changes: Option<TaskChanges>,
    /// Latency over the whole range at [`LATENCY_BUCKETS_MS`]: cumulative counts, as
    /// `GET /metrics` exports them for Prometheus's `histogram_quantile`.
    pub latency_histogram_ms: Histogram,
}

/// The `le` bounds, in milliseconds, of the latency histogram of each version (Prometheus's
/// default buckets scaled to milliseconds).
pub const LATENCY_BUCKETS_MS: [f64; 11] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// The answer to `GET /v1/models/{model}/metrics`; see the module doc for the JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerformanceReport {
    pub model: String,
    pub window: String,
    #[serde(flatten)]
    pub spec: TaskSpec,
    /// Why the task is `task`: given, declared, or what detection saw.
    pub task_reason: String,
    pub min_sample: u64,
    /// The reference dataset the baseline comes from (`version` null: the all-versions one);
    /// null without a reference. See [`crate::reference`].
    pub reference: Option<crate::reference::ReferenceInfo>,
    pub baseline: Option<TaskReport>,
    pub windows: Vec<WindowReport>,
    /// Each version over the whole range (one entry per version seen), by version name.
    pub versions: Vec<VersionReport>,
    /// Business KPIs logged beside the model, per window, by name (see [`crate::kpis`]).
    pub kpis: BTreeMap<String, Vec<crate::kpis::KpiWindow>>,
    /// First window → last window and baseline → last window per metric (see [`crate::summary`]).
    pub summary: crate::summary::ChangeSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<SegmentReport>>,
    /// How the windows' `estimated` metrics are made; absent when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimation: Option<crate::estimate::EstimationInfo>,
}

/// Per-window accumulators of a scan, optionally split by segment value.
#[derive(Debug, Clone)]
pub struct WindowFold {
    pub spec: TaskSpec,
    pub window: Window,
    /// What the breakdown is by (a `segment` without a value).
    pub segment: Option<SegmentKey>,
    pub windows: BTreeMap<Timestamp, WindowAccumulator>,
    /// segment value -> window start -> accumulator.
    pub segments: HashMap<String, BTreeMap<Timestamp, WindowAccumulator>>,
}

const OTHER: &str = "other";

impl WindowFold {
    pub fn new(spec: TaskSpec, window: Window, segment: Option<SegmentKey>) -> WindowFold {
        WindowFold {
            spec,
            window,
            segment,
            windows: BTreeMap::new(),
            segments: HashMap::new(),
        }
    }

    /// Adds one prediction (with its label) to its event-time window.
    pub fn observe(&mut self, p: &PredictionEvent, l: Option<&LabelEvent>) {
        let start = self.window.start_of(p.timestamp);
        let spec = &self.spec;
        self.windows
            .entry(start)
            .or_insert_with(|| WindowAccumulator::new(spec))
            .observe(spec, p, l);
        if let Some(seg) = &self.segment {
            let mut v = seg.value_of(p);
            if !self.segments.contains_key(&v) && self.segments.len() >= MAX_TRACKED_SEGMENTS {
                v = OTHER.to_owned();
            }
            self.segments
                .entry(v)
                .or_default()
                .entry(start)
                .or_insert_with(|| WindowAccumulator::new(spec))
                .observe(spec, p, l);
        }
    }

    /// Adds another fold of the same spec, window and segment.
    pub fn merge(&mut self, other: &WindowFold) -> Result<(), PerfError> {
        merge_windows(&mut self.windows, &other.windows, &self.spec)?;
        for (v, ws) in &other.segments {
            merge_windows(self.segments.entry(v.clone()).or_default(), ws, &self.spec)?;
        }
        Ok(())
    }
}

fn merge_windows<K: Ord + Clone>(
    into: &mut BTreeMap<K, WindowAccumulator>,
    from: &BTreeMap<K, WindowAccumulator>,
    spec: &TaskSpec,
) -> Result<(), PerfError> {
    for (key, acc) in from {
        into.entry(key.clone())
            .or_insert_with(|| WindowAccumulator::new(spec))
            .merge(acc)?;
    }
    Ok(())
}

fn ratio(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

/// Decides the task of `model` from the predictions in `range` and the reference rows (one
/// scan, skipped when `task` makes it unnecessary), with the reason for the reply.
pub fn detect_task(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    reference: &[ReferenceRow],
    task: Option<Task>,
    threshold: Option<f64>,
) -> Result<(TaskSpec, String), EngineError> {
    let declared = crate::aggregates::declared_task(store, model)?;
    let mut d = TaskDetector::default();
    for r in reference {
        d.observe_reference(r);
    }
    if matches!(task.or(declared), None | Some(Task::Binary)) {
        store.scan_predictions(model, range, &mut |p, l| d.observe(p, l))?;
    }
    Ok(choose_task(d, task, declared, threshold))
}

/// The reference rows that serve as the baseline: the version's, else the all-versions ones;
/// for all versions without an all-versions reference, the one uploaded last
/// ([`crate::reference`]).
/// The task a scan of `range` folds for, with its reason: the persisted decision (all rows and
/// the reference), which saves a second scan of the range, else detected from the range and the
/// reference of its version.
pub(crate) fn scan_spec(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    task: Option<Task>,
    threshold: Option<f64>,
) -> Result<(TaskSpec, String), EngineError> {
    match crate::aggregates::decided_spec(store, model, task, threshold)? {
        Some(decided) => Ok(decided),
        None => {
            let refs = reference(store, model, range.version.as_deref())?;
            detect_task(store, model, range, &refs, task, threshold)
        }
    }
}

pub(crate) fn reference(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
) -> Result<Vec<ReferenceRow>, StoreError> {
    Ok(crate::reference::rows(store, model, version)?.0)
}

/// The query's what-if decision threshold, if any, refused outside [0, 1].
fn checked_threshold(q: &PerformanceQuery) -> Result<Option<f64>, EngineError> {
    match q.threshold {
        Some(t) if !(0.0..=1.0).contains(&t) => Err(EngineError::InvalidThreshold(t)),
        t => Ok(t),
    }
}

/// Computes per-window performance and operational metrics of `model`.
///
/// From the persisted per-hour aggregates (see [`crate::aggregates`]) when the query can be
/// answered from them: no segment, the model's own task, no what-if threshold, and
/// `from`/`to` on whole hours. Otherwise, or when the aggregates were built for another task, from the raw events.
/// Both give the same numbers (the states merge exactly); only the cost differs.
pub fn window_performance(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
) -> Result<PerformanceReport, EngineError> {
    checked_threshold(q)?;
    let fast = match crate::planner::performance(q) {
        Source::Hours => from_hours(store, model, q)?,
        Source::Events => None,
    };
    let mut report = match fast {
        Some(mut r) => {
            mark_partial(store, model, &mut r)?;
            r
        }
        None => scan_performance(store, model, q)?,
    };
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: None,
    };
    report.kpis =
        crate::kpis::kpi_series(store, model, q.window.unwrap_or(Window::DAY), &range, None)?;
    Ok(report)
}

/// [`window_performance`] from the per-hour state of the cache; `None` when the hours decline
/// the query (see [`crate::aggregates::hour_states`]).
fn from_hours(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
) -> Result<Option<PerformanceReport>, EngineError> {
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let window = q.window.unwrap_or(Window::DAY);
    let Some(hours) = crate::aggregates::hour_states(store, model, &range, window)? else {
        return Ok(None);
    };
    let (baseline, reference) =
        crate::aggregates::baseline(store, model, q.version.as_deref(), &hours.spec)?;
    let mut report = assemble(
        model,
        q,
        (hours.spec, hours.task_reason),
        baseline,
        hours.windows,
        hours.versions,
        None,
    );
    report.reference = reference;
    Ok(Some(report))
}

/// Flags the report's windows that are still filling (see [`crate::partial`]).
fn mark_partial(
    store: &dyn Store,
    model: &ModelName,
    report: &mut PerformanceReport,
) -> Result<(), EngineError> {
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    for w in &mut report.windows {
        w.partial = crate::partial::is_partial(w.end, cutoff);
    }
    Ok(())
}

/// [`window_performance`] from the raw events: two scans of the range (task, then states).
pub fn scan_performance(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
) -> Result<PerformanceReport, EngineError> {
    let threshold = checked_threshold(q)?;
    let window = q.window.unwrap_or(Window::DAY);
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let Some(summary) = store.model(model)? else {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    };
    let segment = q
        .segment
        .as_deref()
        .map(Segment::parse)
        .transpose()?
        .map(|s| s.for_features(summary.schema.features.iter().map(|f| f.name.as_str())));
    // A slice keeps only its events; a breakdown keeps every event and folds each value apart.
    let slice = segment.as_ref().filter(|s| s.value.is_some());
    let split = segment
        .as_ref()
        .filter(|s| s.value.is_none())
        .map(|s| s.key.clone());
    let (spec, task_reason) = scan_spec(store, model, &range, q.task, threshold)?;
    // One scan per core over consecutive slices of the range, merged: states merge exactly.
    let parts = split_range(&range);
    let folded = modelwatch_stats::parallel::parallel_map(&parts, |part| {
        let mut fold = WindowFold::new(spec.clone(), window, split.clone());
        let mut versions: BTreeMap<String, WindowAccumulator> = BTreeMap::new();
        store.scan_predictions(model, part, &mut |p, l| {
            if slice.is_some_and(|s| !s.matches(p)) {
                return;
            }
            fold.observe(p, l);
            versions
                .entry(p.model_version.clone().unwrap_or_default())
                .or_insert_with(|| WindowAccumulator::new(&fold.spec))
                .observe(&fold.spec, p, l);
        })?;
        Ok::<_, EngineError>((fold, versions))
    });
    let mut fold = WindowFold::new(spec.clone(), window, split.clone());
    let mut versions: BTreeMap<String, WindowAccumulator> = BTreeMap::new();
    for part in folded {
        let (f, v) = part?;
        fold.merge(&f)
            .and_then(|()| merge_windows(&mut versions, &v, &spec))
            .map_err(|e| {
                crate::aggregates::corrupt("window state", format!("{e} (task {:?})", spec.task))
            })?;
    }
    // Kept with the aggregates per reference upload and task, folded once.
    let (baseline, reference) =
        crate::aggregates::baseline(store, model, q.version.as_deref(), &spec)?;
    let segments = split.map(|_| segment_reports(&fold, window, &q.config));
    let mut report = assemble(
        model,
        q,
        (spec, task_reason),
        baseline,
        fold.windows,
        versions,
        segments,
    );
    report.reference = reference;
    mark_partial(store, model, &mut report)?;
    Ok(report)
}

/// A bounded range cut into one slice per core (whole hours, so no window is split in a way
/// that matters: states merge exactly anyway); an open range stays whole.
pub(crate) fn split_range(range: &ScanRange) -> Vec<ScanRange> {
    let (Some(from), Some(to)) = (range.from, range.to) else {
        return vec![range.clone()];
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let hour = 3_600_000_000i64;
    let span = to.micros() - from.micros();
    if threads < 2 || span < 2 * hour {
        return vec![range.clone()];
    }
    let step = (span / threads).div_euclid(hour).max(1) * hour;
    let mut out = Vec::new();
    let mut start = from.micros();
    while start < to.micros() {
        let end = if out.len() as i64 == threads - 1 {
            to.micros()
        } else {
            (start + step).min(to.micros())
        };
        out.push(ScanRange {
            from: Some(Timestamp(start)),
            to: Some(Timestamp(end)),
            version: range.version.clone(),
        });
        start = end;
    }
    out
}

/// The report of merged per-window and per-version accumulators.
pub(crate) fn assemble(
    model: &ModelName,
    q: &PerformanceQuery,
    (spec, task_reason): (TaskSpec, String),
    baseline: Option<TaskState>,
    windows: BTreeMap<Timestamp, WindowAccumulator>,
    versions: BTreeMap<String, WindowAccumulator>,
    segments: Option<Vec<SegmentReport>>,
) -> PerformanceReport {
    let window = q.window.unwrap_or(Window::DAY);
    let config = &q.config;
    let summary = crate::summary::summarize(
        &spec,
        window,
        &windows,
        baseline.as_ref(),
        config,
        Timestamp::now(),
    );
    let windows = windows
        .into_iter()
        .map(|(start, acc)| WindowReport {
            start,
            end: Timestamp(start.0 + window.micros()),
            partial: false,
            predictions: acc.predictions,
            labelled: acc.labelled,
            label_coverage: ratio(acc.labelled, acc.predictions),
            errors: acc.errors,
            error_rate: ratio(acc.errors, acc.predictions),
            label_delay_seconds: delay_quantiles(&acc.label_delay_seconds),
            insufficient_sample: acc.state.count() < config.min_sample,
            metrics: acc.state.report(config),
            changes: baseline.as_ref().and_then(|b| acc.state.compare(b, config)),
            operational: acc.operational(&spec, config),
            estimated: None,
        })
        .collect();
    let versions = versions
        .into_iter()
        .map(|(version, acc)| VersionReport {
            version,
            predictions: acc.predictions,
            labelled: acc.labelled,
            insufficient_sample: acc.state.count() < config.min_sample,
            metrics: acc.state.report(config),
            changes: baseline.as_ref().and_then(|b| acc.state.compare(b, config)),
            latency_histogram_ms: acc.latency_ms.histogram(&LATENCY_BUCKETS_MS),
        })
        .collect();
    PerformanceReport {
        model: model.to_string(),
        window: window.label(),
        min_sample: config.min_sample,
        reference: None,
        baseline: baseline.map(|b| b.report(config)),
        windows,
        versions,
        kpis: BTreeMap::new(),
        summary,
        segment: q.segment.clone(),
        segments,
        estimation: None,
        spec,
        task_reason,
    }
}

fn delay_quantiles(sketch: &QuantileSketch) -> Option<DelayQuantiles> {
    Some(DelayQuantiles {
        p50: sketch.quantile(0.5)?,
        p90: sketch.quantile(0.9)?,
        max: sketch.max()?,
    })
}

fn segment_reports(fold: &WindowFold, window: Window, config: &MetricConfig) -> Vec<SegmentReport> {
    let spec = &fold.spec;
    let volume = |ws: &BTreeMap<Timestamp, WindowAccumulator>| -> u64 {
        ws.values().map(|a| a.predictions).sum()
    };
    let mut values: Vec<(&String, u64)> = fold
        .segments
        .iter()
        .filter(|(v, _)| v.as_str() != OTHER)
        .map(|(v, ws)| (v, volume(ws)))
        .collect();
    // Most predictions first; ties by name so the choice is stable.
    values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut named: BTreeMap<String, BTreeMap<Timestamp, WindowAccumulator>> = BTreeMap::new();
    let mut other: BTreeMap<Timestamp, WindowAccumulator> = BTreeMap::new();
    for (i, (v, _)) in values.iter().enumerate() {
        let ws = &fold.segments[*v];
        if i < MAX_SEGMENTS {
            named.insert((*v).clone(), ws.clone());
        } else {
            // Same spec on both sides: merge cannot fail.
            let _ = merge_windows(&mut other, ws, spec);
        }
    }
    if let Some(ws) = fold.segments.get(OTHER) {
        let _ = merge_windows(&mut other, ws, spec);
    }
    if !other.is_empty() {
        named.insert(OTHER.to_owned(), other);
    }
    let mut out: Vec<SegmentReport> = named
        .into_iter()
        .map(|(value, ws)| {
            let mut total = WindowAccumulator::new(spec);
            for a in ws.values() {
                let _ = total.merge(a);
            }
            SegmentReport {
                value,
                predictions: total.predictions,
                labelled: total.labelled,
                metrics: total.state.report(config),
                windows: ws
                    .iter()
                    .map(|(start, a)| SegmentWindow {
                        start: *start,
                        end: Timestamp(start.0 + window.micros()),
                        predictions: a.predictions,
                        labelled: a.labelled,
                        metrics: a.state.report(config),
                    })
                    .collect(),
            }
        })
        .collect();
    // Worst first; a segment without a value of the main metric goes last.
    out.sort_by(
        |a, b| match (a.metrics.main_metric(), b.metrics.main_metric()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.value.cmp(&b.value),
        },
    );
    out
}
