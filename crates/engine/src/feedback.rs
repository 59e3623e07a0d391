//! Feedback-loop signals: when a model's outputs feed back into its own data, its predictions
//! lose diversity (one class takes over) and only traffic that was not chosen by the model
//! (exploration) still says how good it is.
//!
//! Per event-time window:
//! - the predicted-class distribution (entropy in bits, top class and its share) against the
//!   reference's, with a `collapsed` verdict when the entropy fell by at least
//!   [`FeedbackThresholds::entropy_drop`] (relative) and the top class's share rose by at least
//!   [`FeedbackThresholds::top_class_rise`] (absolute), on at least `min_predictions`;
//! - for events tagged as exploration traffic (a tag `name=value`, `exploration=true` by
//!   default), their share of the window and their own metrics, beside the others'.
//!
//! The exploration split of the default tag is kept per (version, hour) beside the hour's
//! accumulator ([`crate::exploration`], [`crate::aggregates::exploration_hours`]), so that a
//! query of whole hours merges per-hour states as `/metrics` does; a query naming another tag,
//! or not on whole hours, folds the range's raw events into the same states
//! ([`crate::planner::feedback`]). Both give the same numbers.

use modelwatch_core::{ModelName, Outcome, Timestamp};
use modelwatch_stats::perf::{DistributionReport, MetricConfig, PredictionDistribution};
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::EngineError;
use crate::exploration::{self, Split};
use crate::performance::TaskReport;
pub use crate::query::FeedbackQuery;
use crate::state::{Task, TaskSpec, WindowAccumulator};

/// When a window's prediction diversity counts as collapsed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeedbackThresholds {
    /// Relative fall of the entropy against the reference's (0.25: a quarter lower).
    pub entropy_drop: f64,
    /// Absolute rise of the top class's share against the reference's (0.1).
    pub top_class_rise: f64,
    /// Fewer predictions than this in a window: no verdict (30).
    pub min_predictions: u64,
}

impl Default for FeedbackThresholds {
    fn default() -> Self {
        FeedbackThresholds {
            entropy_drop: 0.25,
            top_class_rise: 0.1,
            min_predictions: 30,
        }
    }
}

/// Predicted-class diversity of the reference or of a window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diversity {
    pub predictions: u64,
    pub classes: u64,
    pub entropy_bits: Option<f64>,
    pub top_class: Option<String>,
    pub top_class_share: Option<f64>,
}

impl Diversity {
    fn of(d: &DistributionReport) -> Diversity {
        Diversity {
            predictions: d.n,
            classes: d.classes,
            entropy_bits: d.entropy_bits.value(),
            top_class: d.top_class.clone(),
            top_class_share: d.top_class_share.value(),
        }
    }
}

/// The reference's predicted-class diversity, and which reference it is (`version` null for
/// the all-versions one; see [`crate::reference`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceDiversity {
    pub version: Option<String>,
    pub rows: u64,
    #[serde(flatten)]
    pub diversity: Diversity,
}

/// Exploration traffic of one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exploration {
    pub predictions: u64,
    /// Share of the window's predictions.
    pub share: f64,
    pub labelled: u64,
    /// The exploration events' own metrics (the task's, as in `/metrics`).
    pub metrics: TaskReport,
    /// The other events' metrics over the same window (every event without the tag's value;
    /// none when every event of the window is exploration traffic).
    pub others: Option<TaskReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedbackWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    #[serde(flatten)]
    pub diversity: Diversity,
    /// (window − reference) / reference entropy.
    pub entropy_change: Option<f64>,
    /// Window − reference top-class share (of the window's top class).
    pub top_class_share_change: Option<f64>,
    /// Diversity collapsed against the reference (see the module doc).
    pub collapsed: bool,
    pub exploration: Option<Exploration>,
}

/// `GET /v1/models/{model}/feedback`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedbackResponse {
    pub model: String,
    pub window: String,
    /// The reference's predictions (none when it has no prediction column).
    pub reference: Option<ReferenceDiversity>,
    pub thresholds: FeedbackThresholds,
    /// `name=value` of the exploration tag.
    pub exploration_tag: String,
    pub windows: Vec<FeedbackWindow>,
}

/// Share of each predicted class.
type ClassShares = BTreeMap<String, f64>;

/// The reference's predicted-class distribution (its `prediction` column, else its binary
/// scores at 0.5), and each class's share.
fn reference_diversity(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
) -> Result<Option<(ReferenceDiversity, ClassShares)>, EngineError> {
    let (rows, info) = crate::reference::rows(store, model, version)?;
    let Some(info) = info else {
        return Ok(None);
    };
    let mut d = PredictionDistribution::new();
    for r in &rows {
        match (&r.prediction, r.score) {
            (Some(p), _) => d.observe(&p.class_key()),
            (None, Some(s)) => {
                d.observe(&Outcome::Number(if s >= 0.5 { 1.0 } else { 0.0 }).class_key())
            }
            (None, None) => {}
        }
    }
    if d.count() == 0 {
        return Ok(None);
    }
    let report = d.report(&MetricConfig::default());
    let shares = report
        .counts
        .iter()
        .map(|(c, n)| (c.clone(), *n as f64 / report.n as f64))
        .collect();
    let d = ReferenceDiversity {
        version: info.version,
        rows: info.rows,
        diversity: Diversity::of(&report),
    };
    Ok(Some((d, shares)))
}

/// Per window start: every event, and its exploration split (known).
type SplitWindows = BTreeMap<Timestamp, (WindowAccumulator, Split)>;

/// Feedback-loop signals per window: from the per-hour state when
/// [`crate::planner::feedback`] says it answers the query, else from the raw events.
pub fn feedback(
    store: &dyn Store,
    model: &ModelName,
    q: &FeedbackQuery,
    t: &FeedbackThresholds,
) -> Result<FeedbackResponse, EngineError> {
    let hours = match crate::planner::feedback(q) {
        crate::planner::Source::Hours => crate::aggregates::feedback_windows(store, model, q)?,
        crate::planner::Source::Events => None,
    };
    let (spec, windows) = match hours {
        Some(h) => (h.spec, h.windows),
        None => scan(store, model, q)?,
    };
    report(store, model, q, t, &spec, &windows)
}

/// [`feedback`] from the raw events of the range, whatever the planner says (tests compare
/// both sources with it).
pub fn scan_feedback(
    store: &dyn Store,
    model: &ModelName,
    q: &FeedbackQuery,
    t: &FeedbackThresholds,
) -> Result<FeedbackResponse, EngineError> {
    let (spec, windows) = scan(store, model, q)?;
    report(store, model, q, t, &spec, &windows)
}

/// The response of the windows of `q`, each with every event and its (known) split.
fn report(
    store: &dyn Store,
    model: &ModelName,
    q: &FeedbackQuery,
    t: &FeedbackThresholds,
    spec: &TaskSpec,
    split_windows: &SplitWindows,
) -> Result<FeedbackResponse, EngineError> {
    let (reference, reference_shares) =
        match reference_diversity(store, model, q.version.as_deref())? {
            Some((d, shares)) => (Some(d), shares),
            None => (None, BTreeMap::new()),
        };
    let config = MetricConfig::default();
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let mut windows = Vec::with_capacity(split_windows.len());
    for (start, (all, split)) in split_windows {
        let end = Timestamp(start.micros() + q.window.micros());
        let diversity = (spec.task != Task::Regression)
            .then(|| all.predicted.report(&config))
            .as_ref()
            .map(Diversity::of)
            .unwrap_or(Diversity {
                predictions: 0,
                classes: 0,
                entropy_bits: None,
                top_class: None,
                top_class_share: None,
            });
        let entropy_change = match (&reference, diversity.entropy_bits) {
            (Some(r), Some(e)) => r
                .diversity
                .entropy_bits
                .filter(|&re| re > 0.0)
                .map(|re| (e - re) / re),
            _ => None,
        };
        // Against the reference's share of the class the window predicts most (0 when the
        // reference never predicted it).
        let top_class_share_change =
            match (&reference, &diversity.top_class, diversity.top_class_share) {
                (Some(_), Some(c), Some(s)) => {
                    Some(s - reference_shares.get(c).copied().unwrap_or(0.0))
                }
                _ => None,
            };
        let collapsed = diversity.predictions >= t.min_predictions
            && entropy_change.is_some_and(|c| c <= -t.entropy_drop)
            && top_class_share_change.is_some_and(|c| c >= t.top_class_rise);
        // Unknown splits were folded from their events by the hours' answer.
        let sides = split.sides(all).ok_or_else(|| {
            crate::aggregates::corrupt("exploration split", format!("unknown in window {start}"))
        })?;
        let exploration = sides.explore.map(|e| Exploration {
            predictions: e.predictions,
            share: if all.predictions == 0 {
                0.0
            } else {
                e.predictions as f64 / all.predictions as f64
            },
            labelled: e.labelled,
            metrics: e.state.report(&config),
            others: (sides.others.predictions > 0).then(|| sides.others.state.report(&config)),
        });
        windows.push(FeedbackWindow {
            start: *start,
            end,
            partial: crate::partial::is_partial(end, cutoff),
            diversity,
            entropy_change,
            top_class_share_change,
            collapsed,
            exploration,
        });
    }
    let (tag, value) = &q.exploration;
    Ok(FeedbackResponse {
        model: model.as_str().to_owned(),
        window: q.window.label(),
        reference,
        thresholds: *t,
        exploration_tag: format!("{tag}={value}"),
        windows,
    })
}

/// The windows of `q` folded from the raw events of `range` (one scan per core over
/// consecutive slices, merged), at the model's task as the hours are built for it.
fn scan(
    store: &dyn Store,
    model: &ModelName,
    q: &FeedbackQuery,
) -> Result<(TaskSpec, SplitWindows), EngineError> {
    let range = &ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let (spec, _) = crate::performance::scan_spec(store, model, range, None, None)?;
    let tag = (q.exploration.0.as_str(), q.exploration.1.as_str());
    let parts = crate::performance::split_range(range);
    let folded = modelwatch_stats::parallel::parallel_map(&parts, |part| {
        let mut windows = SplitWindows::new();
        store.scan_predictions(model, part, &mut |p, l| {
            let (all, split) = windows
                .entry(q.window.start_of(p.timestamp))
                .or_insert_with(|| (WindowAccumulator::new(&spec), Split::default()));
            exploration::observe(&spec, tag, all, split, p, l);
        })?;
        Ok::<_, EngineError>(windows)
    });
    let mut windows = SplitWindows::new();
    for part in folded {
        for (start, (a, s)) in part? {
            let (all, split) = windows
                .entry(start)
                .or_insert_with(|| (WindowAccumulator::new(&spec), Split::default()));
            exploration::merge(all, split, &a, &s).map_err(|e| {
                crate::aggregates::corrupt("window state", format!("{e} (task {:?})", spec.task))
            })?;
        }
    }
    Ok((spec, windows))
}
