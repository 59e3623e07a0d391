//! The change summary of a metrics report: per metric, the first compared window → the last
//! one, and the baseline (the reference's metrics) → the last window, each with its
//! significance test.
//!
//! Which windows: the earliest and the latest *complete* window (ended by the time of the
//! query) with at least `min_sample` usable labelled rows; when no window has that many, the
//! earliest and latest complete windows with at least `min_sample` predictions (the task's
//! metrics are then `not_comparable`). A window still in progress is never compared: its
//! volume and its few labels would read as a drop.
//!
//! Tests: the task's metrics as the baseline comparison does them
//! (`modelwatch_stats::perf::compare_*`: two-proportion z, DeLong, Fisher z, normal
//! approximation), error rate and label coverage by the two-proportion z-test, volume by the
//! Poisson rate comparison of two equal-length windows, average confidence and latency
//! quantiles by a normal approximation from their 95 % intervals. Operational values have no
//! baseline (the reference holds no latency or volume).
//!
//! ```json
//! "summary": {"basis": "labelled",
//!   "first_window": {"start", "end", "predictions", "labelled"} | null,
//!   "last_window": {...} | null,
//!   "metrics": {"accuracy": {"first": 0.91, "last": 0.84, "baseline": 0.92,
//!                            "first_to_last": {Change}, "baseline_to_last": {Change} | null},
//!               ..., "prediction_volume": {...}, "latency_p95": {...}}}
//! ```
//! `first_window` is null when a single window qualifies (then only `baseline_to_last` is
//! there); `last_window` is null when none does, and `metrics` is empty.

use std::collections::BTreeMap;

use modelwatch_core::{Timestamp, Window};
use modelwatch_stats::perf::{
    compare_by_interval, compare_counts, compare_proportion, Change, Metric, MetricConfig,
    MetricName,
};
use serde::{Deserialize, Serialize};

use crate::state::{Task, TaskChanges, TaskReport, TaskSpec, TaskState, WindowAccumulator};

/// One of the two windows compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRef {
    pub start: Timestamp,
    pub end: Timestamp,
    pub predictions: u64,
    pub labelled: u64,
}

/// How one metric moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    /// Value in the first window (null: undefined there, or no first window).
    pub first: Option<f64>,
    /// Value in the last window.
    pub last: Option<f64>,
    /// The reference's value (task metrics with a labelled reference only).
    pub baseline: Option<f64>,
    /// First window → last window, with its test; null without a first window.
    pub first_to_last: Option<Change>,
    /// Baseline → last window; null without a baseline (always for operational values).
    pub baseline_to_last: Option<Change>,
}

/// The change summary of a report (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeSummary {
    /// `labelled`: the windows were chosen by labelled rows; `predictions`: no window had
    /// `min_sample` labelled rows, so they were chosen by predictions.
    pub basis: std::borrow::Cow<'static, str>,
    pub first_window: Option<WindowRef>,
    pub last_window: Option<WindowRef>,
    /// By metric name: the task's metrics (scikit-learn names, as in the windows), then
    /// `average_confidence`, `prediction_volume`, `error_rate`, `label_coverage`,
    /// `latency_p50`, `latency_p95`.
    pub metrics: BTreeMap<String, MetricChange>,
}

/// Rows the task's state could use (labelled minus those it refused).
fn usable(acc: &WindowAccumulator) -> u64 {
    acc.labelled.saturating_sub(acc.unusable)
}

/// The change summary of a report's windows (see the module doc). `now`: windows ending after
/// it are in progress and left out.
pub fn summarize(
    spec: &TaskSpec,
    window: Window,
    windows: &BTreeMap<Timestamp, WindowAccumulator>,
    baseline: Option<&TaskState>,
    config: &MetricConfig,
    now: Timestamp,
) -> ChangeSummary {
    let end_of = |start: &Timestamp| Timestamp(start.0 + window.micros());
    let complete: Vec<(&Timestamp, &WindowAccumulator)> = windows
        .iter()
        .filter(|(start, _)| end_of(start) <= now)
        .collect();
    let by_labels: Vec<_> = complete
        .iter()
        .filter(|(_, a)| usable(a) >= config.min_sample.max(1))
        .copied()
        .collect();
    let (basis, chosen) = if by_labels.is_empty() {
        let by_volume: Vec<_> = complete
            .iter()
            .filter(|(_, a)| a.predictions >= config.min_sample.max(1))
            .copied()
            .collect();
        ("predictions", by_volume)
    } else {
        ("labelled", by_labels)
    };
    let reference = |(start, acc): (&Timestamp, &WindowAccumulator)| WindowRef {
        start: *start,
        end: end_of(start),
        predictions: acc.predictions,
        labelled: acc.labelled,
    };
    let last = chosen.last().copied();
    let first = (chosen.len() >= 2).then(|| chosen[0]);
    let mut metrics = BTreeMap::new();
    if let Some((_, l)) = last {
        task_metrics(&mut metrics, first.map(|(_, f)| f), l, baseline, config);
        operational(&mut metrics, spec, first.map(|(_, f)| f), l, config);
    }
    ChangeSummary {
        basis: basis.into(),
        first_window: first.map(reference),
        last_window: last.map(reference),
        metrics,
    }
}

/// The value of a metric serialized as `{"status": "defined", "value", ...}`.
/// Each scalar metric of the task: the names its comparison covers.
fn task_metrics(
    out: &mut BTreeMap<String, MetricChange>,
    first: Option<&WindowAccumulator>,
    last: &WindowAccumulator,
    baseline: Option<&TaskState>,
    config: &MetricConfig,
) {
    let last_report = last.state.report(config);
    let first_report = first.map(|f| f.state.report(config));
    let base_report = baseline.map(|b| b.report(config));
    // The comparison of the last window with itself names every comparable metric even when
    // there is no first window and no baseline.
    let Some(names) = last.state.compare(&last.state, config) else {
        return;
    };
    let from_first = first.and_then(|f| last.state.compare(&f.state, config));
    let from_base = baseline.and_then(|b| last.state.compare(b, config));
    let value = |r: Option<&TaskReport>, name: MetricName| r?.metric(name)?.value();
    let change = |c: Option<&TaskChanges>, name: MetricName| c?.change(name).cloned();
    for name in MetricName::ALL {
        if names.change(name).is_none() {
            continue;
        }
        out.insert(
            name.as_str().to_owned(),
            MetricChange {
                first: value(first_report.as_ref(), name),
                last: value(Some(&last_report), name),
                baseline: value(base_report.as_ref(), name),
                first_to_last: change(from_first.as_ref(), name),
                baseline_to_last: change(from_base.as_ref(), name),
            },
        );
    }
}

/// Label-free values: no baseline, first → last only.
fn operational(
    out: &mut BTreeMap<String, MetricChange>,
    spec: &TaskSpec,
    first: Option<&WindowAccumulator>,
    last: &WindowAccumulator,
    config: &MetricConfig,
) {
    let mut put = |name: &str, f: Option<f64>, l: Option<f64>, c: Option<Change>| {
        out.insert(
            name.to_owned(),
            MetricChange {
                first: f,
                last: l,
                baseline: None,
                first_to_last: c,
                baseline_to_last: None,
            },
        );
    };
    let ratio = |k: u64, n: u64| (n > 0).then(|| k as f64 / n as f64);
    put(
        "prediction_volume",
        first.map(|f| f.predictions as f64),
        Some(last.predictions as f64),
        first.map(|f| compare_counts(f.predictions, last.predictions, config)),
    );
    // Shares of the window's predictions: those with an error, those with a label.
    type Part = fn(&WindowAccumulator) -> u64;
    let shares: [(&str, Part); 2] = [
        ("error_rate", |a| a.errors),
        ("label_coverage", |a| a.labelled),
    ];
    for (name, part) in shares {
        put(
            name,
            first.and_then(|f| ratio(part(f), f.predictions)),
            ratio(part(last), last.predictions),
            first.map(|f| {
                compare_proportion(
                    (part(f), f.predictions),
                    (part(last), last.predictions),
                    config,
                )
            }),
        );
    }
    let by_interval = |name: &str, pick: &dyn Fn(&WindowAccumulator) -> Metric| {
        let l = pick(last);
        let f = first.map(pick);
        let value = |m: &Metric| m.value();
        (
            name.to_owned(),
            MetricChange {
                first: f.as_ref().and_then(value),
                last: value(&l),
                baseline: None,
                first_to_last: f.map(|f| compare_by_interval(&f, &l, config)),
                baseline_to_last: None,
            },
        )
    };
    let interval_metrics = [
        by_interval("latency_p50", &|a| a.latency_ms.report(config).p50),
        by_interval("latency_p95", &|a| a.latency_ms.report(config).p95),
    ];
    out.extend(interval_metrics);
    // Regression has no confidence.
    if spec.task != Task::Regression {
        let (name, c) = by_interval("average_confidence", &|a| {
            a.confidence.mean_confidence(config)
        });
        out.insert(name, c);
    }
}
