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
//! Both come from one query split by the tag, which reads the range's raw events (a split by
//! tag has no per-hour state).

use modelwatch_core::{ModelName, Outcome, Timestamp, Window};
use modelwatch_stats::perf::{DistributionReport, MetricConfig, PredictionDistribution};
use modelwatch_store::Store;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::EngineError;
use crate::performance::{window_performance, PerformanceQuery, TaskReport};

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

/// What a feedback query covers.
#[derive(Debug, Clone)]
pub struct FeedbackQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
    /// The tag (name, value) that marks exploration traffic.
    pub exploration: (String, String),
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
    /// The other events' metrics over the same window.
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

/// Feedback-loop signals per window.
pub fn feedback(
    store: &dyn Store,
    model: &ModelName,
    q: &FeedbackQuery,
    t: &FeedbackThresholds,
) -> Result<FeedbackResponse, EngineError> {
    let base = PerformanceQuery {
        window: Some(q.window),
        from: q.from,
        to: q.to,
        version: q.version.clone(),
        ..PerformanceQuery::default()
    };
    let (reference, reference_shares) =
        match reference_diversity(store, model, q.version.as_deref())? {
            Some((d, shares)) => (Some(d), shares),
            None => (None, BTreeMap::new()),
        };
    // One query split by the tag: its `windows` hold every event, its segments the tag's
    // values (the plain windows would be the same numbers from the aggregates).
    let (tag, value) = &q.exploration;
    let mut report = window_performance(
        store,
        model,
        &PerformanceQuery {
            segment: Some(format!("tag:{tag}")),
            ..base
        },
    )?;
    let segments = report.segments.take().unwrap_or_default();
    let explore = segments.iter().find(|s| s.value == *value);
    // "Others": every other value of the tag; with one other value its windows are exact,
    // with several they are not merged here (only the exploration side is reported).
    let others: Vec<_> = segments.iter().filter(|s| s.value != *value).collect();
    let windows = report
        .windows
        .iter()
        .map(|w| {
            let diversity = w
                .operational
                .prediction_distribution
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
            let exploration = explore.and_then(|e| {
                let ew = e.windows.iter().find(|x| x.start == w.start)?;
                let other = match others.as_slice() {
                    [o] => o
                        .windows
                        .iter()
                        .find(|x| x.start == w.start)
                        .map(|x| x.metrics.clone()),
                    _ => None,
                };
                Some(Exploration {
                    predictions: ew.predictions,
                    share: if w.predictions == 0 {
                        0.0
                    } else {
                        ew.predictions as f64 / w.predictions as f64
                    },
                    labelled: ew.labelled,
                    metrics: ew.metrics.clone(),
                    others: other,
                })
            });
            FeedbackWindow {
                start: w.start,
                end: w.end,
                partial: w.partial,
                diversity,
                entropy_change,
                top_class_share_change,
                collapsed,
                exploration,
            }
        })
        .collect();
    Ok(FeedbackResponse {
        model: model.as_str().to_owned(),
        window: q.window.label(),
        reference,
        thresholds: *t,
        exploration_tag: format!("{tag}={value}"),
        windows,
    })
}
