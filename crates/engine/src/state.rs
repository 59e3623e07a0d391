//! The per-window performance state: the model's task (declared or detected, [`TaskDetector`])
//! and the mergeable [`WindowAccumulator`] of a window's predictions and labels. What the
//! per-hour cache ([`crate::aggregates`]) keeps and the queries ([`crate::performance`]) merge;
//! it knows neither.

use std::collections::BTreeSet;

use modelwatch_core::{LabelEvent, Outcome, PredictionEvent, ReferenceRow};
use modelwatch_stats::perf::{
    compare_binary, compare_multiclass, compare_regression, BinaryComparison, BinaryReport,
    BinaryState, Change, ConfidenceState, Decision, DistributionReport, Metric, MetricConfig,
    MetricName, MulticlassComparison, MulticlassReport, MulticlassState, PerfError,
    PredictionDistribution, QuantileReport, QuantileSketch, RegressionComparison, RegressionReport,
    RegressionState, TaskMetrics, BINARY_METRICS, MULTICLASS_METRICS, REGRESSION_METRICS,
};
use modelwatch_store::NewLabel;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// What a prediction said: its prediction, score and class scores.
type PredictionOutput<'a> = (
    Option<&'a Outcome>,
    Option<f64>,
    Option<&'a [(String, f64)]>,
);

/// The binary decision threshold of rows logged with a score and no prediction, when the
/// query names no what-if threshold.
pub const DEFAULT_THRESHOLD: f64 = 0.5;
/// Distinct classes the detector keeps (a regression target seen as classes stops here).
const MAX_DETECTED_CLASSES: usize = 1_000;
/// Most distinct whole-number outcomes (without scores) that are still taken for classes:
/// beyond it they are values of a regression target (prices, counts).
pub const MAX_INTEGER_CLASSES: usize = 50;

/// What kind of model this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Binary,
    Multiclass,
    Regression,
}

impl Task {
    /// Parses `binary`, `multiclass` or `regression`.
    pub fn parse(s: &str) -> Result<Task, EngineError> {
        match s {
            "binary" => Ok(Task::Binary),
            "multiclass" => Ok(Task::Multiclass),
            "regression" => Ok(Task::Regression),
            _ => Err(EngineError::InvalidTask(s.to_owned())),
        }
    }

    /// `binary`, `multiclass` or `regression`.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        }
    }

    /// The task's metrics in the vocabulary: its headline four (charted, the first its
    /// headline number), then the rest.
    pub fn metrics(self) -> TaskMetrics {
        match self {
            Task::Binary => BINARY_METRICS,
            Task::Multiclass => MULTICLASS_METRICS,
            Task::Regression => REGRESSION_METRICS,
        }
    }
}

/// The task of a model with what its states need: positive class and threshold (binary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task: Task,
    /// Binary only: the class counted as positive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive_class: Option<String>,
    /// Binary only: the other class, when seen (names predictions made from a score).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_class: Option<String>,
    /// Binary: rows without a logged prediction (or every scored row when `decision` is
    /// `threshold`) are predicted positive when `score >= threshold`.
    pub threshold: f64,
    /// What decides the predicted class: the logged prediction (default) or the score at
    /// `threshold` (a query's `threshold=`). No serde default on purpose: a decision persisted
    /// before this field existed (when the score decided) does not parse, and the aggregates
    /// built with it are rebuilt.
    pub decision: Decision,
}

impl TaskSpec {
    /// The class a binary task counts as positive (`"1"` unless one was named).
    pub fn positive(&self) -> &str {
        self.positive_class.as_deref().unwrap_or("1")
    }

    /// A binary row's score: `score`, else the positive class's entry of `scores`.
    pub fn binary_score(
        &self,
        score: Option<f64>,
        scores: Option<&[(String, f64)]>,
    ) -> Option<f64> {
        let pos = self.positive();
        score.or_else(|| scores.and_then(|v| v.iter().find(|(c, _)| c == pos).map(|(_, s)| *s)))
    }

    /// Whether a binary row is predicted positive, as the metrics decide it: the logged
    /// prediction (with `Decision::Threshold`, only when there is no score), else the score at
    /// `threshold`; `None` with neither.
    pub fn predicted_positive(
        &self,
        prediction: Option<&Outcome>,
        score: Option<f64>,
    ) -> Option<bool> {
        match (prediction, score, self.decision) {
            (Some(o), _, Decision::Prediction) | (Some(o), None, Decision::Threshold) => {
                Some(o.with_class_key(|c| c == self.positive()))
            }
            (_, Some(s), _) => Some(s >= self.threshold),
            (None, None, _) => None,
        }
    }
}

/// Where a model's task came from, for the reply's `task_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSource {
    /// `task=` in the query.
    Query,
    /// Declared for the model (API or config file).
    Declared,
    /// Detected from the rows.
    Detected,
}

/// Looks at predictions (and labels) to decide the task; see the module doc for the rules.
/// Persisted with a model's aggregates, so the task is decided from every row seen so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskDetector {
    has_score: bool,
    has_scores: bool,
    non_numeric: bool,
    non_integral: bool,
    classes: BTreeSet<String>,
}

impl TaskDetector {
    fn outcome(&mut self, o: &Outcome) {
        match o {
            Outcome::Number(n) if n.fract() != 0.0 => self.non_integral = true,
            Outcome::Number(_) => {}
            _ => self.non_numeric = true,
        }
        if self.classes.len() < MAX_DETECTED_CLASSES {
            let classes = &mut self.classes;
            o.with_class_key(|k| {
                if !classes.contains(k) {
                    classes.insert(k.to_owned());
                }
            });
        }
    }

    fn row(
        &mut self,
        prediction: Option<&Outcome>,
        score: Option<f64>,
        scores: Option<&[(String, f64)]>,
        label: Option<&Outcome>,
    ) {
        self.has_score |= score.is_some();
        if let Some(s) = scores {
            self.has_scores = true;
            for (c, _) in s {
                if self.classes.len() < MAX_DETECTED_CLASSES {
                    self.classes.insert(c.clone());
                }
            }
        }
        if let Some(p) = prediction {
            self.outcome(p);
        }
        if let Some(l) = label {
            self.outcome(l);
        }
    }

    /// Adds a label that arrived after its prediction was observed (a label delta).
    pub fn observe_late_label(&mut self, label: &Outcome) {
        self.outcome(label);
    }

    /// Adds what another detector saw.
    pub fn merge(&mut self, other: &TaskDetector) {
        self.has_score |= other.has_score;
        self.has_scores |= other.has_scores;
        self.non_numeric |= other.non_numeric;
        self.non_integral |= other.non_integral;
        for c in &other.classes {
            if self.classes.len() >= MAX_DETECTED_CLASSES {
                break;
            }
            self.classes.insert(c.clone());
        }
    }

    /// Adds one stored prediction and its label.
    pub fn observe(&mut self, p: &PredictionEvent, l: Option<&LabelEvent>) {
        self.row(
            p.prediction.as_ref(),
            p.score,
            p.scores.as_deref(),
            l.map(|l| &l.label),
        );
    }

    /// Adds one reference row.
    pub fn observe_reference(&mut self, r: &ReferenceRow) {
        self.row(
            r.prediction.as_ref(),
            r.score,
            r.scores.as_deref(),
            r.label.as_ref(),
        );
    }

    /// The detected task: see the module doc.
    fn detected(&self) -> Task {
        let classification = self.has_score || self.has_scores || self.non_numeric;
        if !classification && (self.non_integral || self.classes.len() > MAX_INTEGER_CLASSES) {
            Task::Regression
        } else if self.classes.len() <= 2 {
            Task::Binary
        } else {
            Task::Multiclass
        }
    }

    /// Why the task is `task`, in the user's words (the reply's `task_reason`).
    pub fn reason(&self, task: Task, source: TaskSource) -> String {
        match source {
            TaskSource::Query => return format!("{}: given in the query (task=)", task.as_str()),
            TaskSource::Declared => {
                return format!(
                    "{}: declared for the model (over the API or in the config file)",
                    task.as_str()
                )
            }
            TaskSource::Detected => {}
        }
        let n = self.classes.len();
        let distinct = if n >= MAX_DETECTED_CLASSES {
            format!("at least {n}")
        } else {
            n.to_string()
        };
        let why = if self.has_score || self.has_scores {
            "predictions carry scores".to_owned()
        } else if self.non_numeric {
            "predictions or labels are text or booleans".to_owned()
        } else if self.non_integral {
            "predictions and labels are numbers with fractions, without scores".to_owned()
        } else if n > MAX_INTEGER_CLASSES {
            format!(
                "predictions and labels are whole numbers with {distinct} distinct values \
                 (more than {MAX_INTEGER_CLASSES}), without scores"
            )
        } else {
            format!(
                "predictions and labels are whole numbers with {distinct} distinct values \
                 (at most {MAX_INTEGER_CLASSES}), without scores"
            )
        };
        match task {
            Task::Regression => format!("regression: {why}; declare the task to override"),
            Task::Binary => {
                format!("binary: {why}, and at most two classes; declare the task to override")
            }
            Task::Multiclass => {
                format!("multiclass: {why}, and {distinct} classes; declare the task to override")
            }
        }
    }

    /// The task (the given one, else the detected one) with its positive class. `threshold`:
    /// a what-if threshold at which the score decides; `None` lets the logged prediction
    /// decide (and 0.5 decide rows without one).
    pub fn finish(self, task: Option<Task>, threshold: Option<f64>) -> TaskSpec {
        let task = task.unwrap_or_else(|| self.detected());
        let (positive_class, negative_class) = if task == Task::Binary {
            let pos = if self.classes.contains("1") {
                "1".to_owned()
            } else if self.classes.contains("true") {
                "true".to_owned()
            } else {
                self.classes
                    .iter()
                    .next_back()
                    .cloned()
                    .unwrap_or_else(|| "1".to_owned())
            };
            let neg = self.classes.iter().find(|c| **c != pos).cloned();
            (Some(pos), neg)
        } else {
            (None, None)
        };
        TaskSpec {
            task,
            positive_class,
            negative_class,
            threshold: threshold.unwrap_or(DEFAULT_THRESHOLD),
            decision: match threshold {
                Some(_) => Decision::Threshold,
                None => Decision::Prediction,
            },
        }
    }
}

/// The labelled-row state of one task.
/// Externally tagged, so that binary formats without self-description (the persisted per-hour
/// aggregates) can read it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Binary(BinaryState),
    Multiclass(MulticlassState),
    Regression(RegressionState),
}

impl TaskState {
    fn new(spec: &TaskSpec) -> TaskState {
        match spec.task {
            Task::Binary => TaskState::Binary(
                BinaryState::with_decision(spec.decision, spec.threshold)
                    .unwrap_or_else(|_| BinaryState::new()),
            ),
            Task::Multiclass => TaskState::Multiclass(MulticlassState::new()),
            Task::Regression => TaskState::Regression(RegressionState::new()),
        }
    }

    pub(crate) fn count(&self) -> u64 {
        match self {
            TaskState::Binary(s) => s.count(),
            TaskState::Multiclass(s) => s.count(),
            TaskState::Regression(s) => s.count(),
        }
    }

    /// Adds one labelled row. `Ok(false)`: the row cannot be used for this task (no
    /// prediction, a text target for regression).
    fn observe(
        &mut self,
        spec: &TaskSpec,
        prediction: Option<&Outcome>,
        score: Option<f64>,
        scores: Option<&[(String, f64)]>,
        label: &Outcome,
    ) -> Result<bool, PerfError> {
        match self {
            TaskState::Binary(s) => {
                let pos = spec.positive();
                let score = spec.binary_score(score, scores);
                let predicted = prediction.map(|p| p.class_key() == pos);
                if score.is_none() && predicted.is_none() {
                    return Ok(false);
                }
                s.observe(label.class_key() == pos, score, predicted)?;
            }
            TaskState::Multiclass(s) => {
                let predicted = match prediction {
                    Some(p) => p.class_key(),
                    None => match scores.and_then(argmax) {
                        Some(c) => c.to_owned(),
                        None => return Ok(false),
                    },
                };
                s.observe(&label.class_key(), &predicted, scores)?;
            }
            TaskState::Regression(s) => {
                let (Some(t), Some(p)) = (label.as_f64(), prediction.and_then(Outcome::as_f64))
                else {
                    return Ok(false);
                };
                s.observe(t, p)?;
            }
        }
        Ok(true)
    }

    fn merge(&mut self, other: &TaskState) -> Result<(), PerfError> {
        match (self, other) {
            (TaskState::Binary(a), TaskState::Binary(b)) => a.merge(b),
            (TaskState::Multiclass(a), TaskState::Multiclass(b)) => a.merge(b),
            (TaskState::Regression(a), TaskState::Regression(b)) => a.merge(b),
            _ => Err(PerfError::Incompatible("task".into())),
        }
    }

    /// The task's metrics.
    /// Binary: keeps every scored row, so that ROC-AUC and average precision are exact past
    /// the stored states' cap (a computation over a file held once in memory). Other tasks:
    /// nothing changes.
    pub fn keep_every_score(&mut self) {
        if let TaskState::Binary(s) = self {
            s.keep_every_score();
        }
    }

    pub fn report(&self, config: &MetricConfig) -> TaskReport {
        match self {
            TaskState::Binary(s) => TaskReport::Binary(Box::new(s.metrics(config))),
            TaskState::Multiclass(s) => TaskReport::Multiclass(Box::new(s.metrics(config))),
            TaskState::Regression(s) => TaskReport::Regression(Box::new(s.metrics(config))),
        }
    }

    /// Changes of every metric of `self` against `baseline` (same task).
    pub fn compare(&self, baseline: &TaskState, config: &MetricConfig) -> Option<TaskChanges> {
        Some(match (baseline, self) {
            (TaskState::Binary(b), TaskState::Binary(w)) => {
                TaskChanges::Binary(Box::new(compare_binary(b, w, config)))
            }
            (TaskState::Multiclass(b), TaskState::Multiclass(w)) => {
                TaskChanges::Multiclass(Box::new(compare_multiclass(b, w, config)))
            }
            (TaskState::Regression(b), TaskState::Regression(w)) => {
                TaskChanges::Regression(Box::new(compare_regression(b, w, config)))
            }
            _ => return None,
        })
    }
}

pub(crate) fn argmax(scores: &[(String, f64)]) -> Option<&str> {
    scores
        .iter()
        .fold(None::<&(String, f64)>, |best, x| match best {
            Some(b) if b.1 >= x.1 => Some(b),
            _ => Some(x),
        })
        .map(|(c, _)| c.as_str())
}

/// A task's report; serializes as the report itself (no tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskReport {
    Binary(Box<BinaryReport>),
    Multiclass(Box<MulticlassReport>),
    Regression(Box<RegressionReport>),
}

impl TaskReport {
    /// The metric segments are ranked by: f1 (binary), accuracy (multiclass), mae
    /// (regression), oriented so that a larger value is better.
    pub fn main_metric(&self) -> Option<f64> {
        match self {
            TaskReport::Binary(r) => r.f1.value(),
            TaskReport::Multiclass(r) => r.accuracy.value(),
            TaskReport::Regression(r) => r.mae.value().map(|v| -v),
        }
    }

    /// A metric by its name, when this task's report has it (the vocabulary decides).
    pub fn metric(&self, name: MetricName) -> Option<&Metric> {
        match self {
            TaskReport::Binary(r) => name.of_binary(r),
            TaskReport::Multiclass(r) => name.of_multiclass(r),
            TaskReport::Regression(r) => name.of_regression(r),
        }
    }

    /// The labelled rows the metrics are computed from.
    pub fn n(&self) -> u64 {
        match self {
            TaskReport::Binary(r) => r.n,
            TaskReport::Multiclass(r) => r.n,
            TaskReport::Regression(r) => r.n,
        }
    }

    /// The binary report, for a binary model.
    pub fn binary(&self) -> Option<&BinaryReport> {
        match self {
            TaskReport::Binary(r) => Some(r),
            _ => None,
        }
    }

    /// The multiclass report, for a multiclass model.
    pub fn multiclass(&self) -> Option<&MulticlassReport> {
        match self {
            TaskReport::Multiclass(r) => Some(r),
            _ => None,
        }
    }
}

/// A task's comparison with the baseline; serializes untagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskChanges {
    Binary(Box<BinaryComparison>),
    Multiclass(Box<MulticlassComparison>),
    Regression(Box<RegressionComparison>),
}

impl TaskChanges {
    /// A metric's change against the baseline by its name, when the task compares it.
    pub fn change(&self, name: MetricName) -> Option<&Change> {
        match self {
            TaskChanges::Binary(c) => name.change_of_binary(c),
            TaskChanges::Multiclass(c) => name.change_of_multiclass(c),
            TaskChanges::Regression(c) => name.change_of_regression(c),
        }
    }
}

/// Everything one window (or one segment of a window) accumulates: labelled-row metric state
/// and label-free operational states. Mergeable; serde so that it can be persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowAccumulator {
    /// Predictions seen (with or without error).
    pub predictions: u64,
    /// Predictions that carry an error.
    pub errors: u64,
    /// Predictions with a label.
    pub labelled: u64,
    /// Labelled rows the metric state refused or could not use (no prediction, invalid
    /// score, text target for regression).
    pub unusable: u64,
    pub state: TaskState,
    pub latency_ms: QuantileSketch,
    pub confidence: ConfidenceState,
    pub predicted: PredictionDistribution,
    /// Binary: positive-class scores; regression: predicted values; multiclass: top score.
    pub scores: QuantileSketch,
    /// Label time minus prediction time, seconds, of the labelled predictions.
    pub label_delay_seconds: QuantileSketch,
    /// Predictions that carried a `cost`, and the sum of their costs in whole billionths
    /// (`crate::service_levels`): integers, so that any merge order gives the same sum.
    pub costed: u64,
    pub cost_nanos: u128,
}

impl WindowAccumulator {
    /// An empty accumulator for `spec`.
    pub fn new(spec: &TaskSpec) -> WindowAccumulator {
        WindowAccumulator {
            predictions: 0,
            errors: 0,
            labelled: 0,
            unusable: 0,
            state: TaskState::new(spec),
            latency_ms: QuantileSketch::new(),
            confidence: ConfidenceState::new(),
            predicted: PredictionDistribution::new(),
            scores: QuantileSketch::new(),
            label_delay_seconds: QuantileSketch::new(),
            costed: 0,
            cost_nanos: 0,
        }
    }

    /// Adds one prediction and its label, if any.
    pub fn observe(&mut self, spec: &TaskSpec, p: &PredictionEvent, l: Option<&LabelEvent>) {
        self.predictions += 1;
        if p.error.is_some() {
            self.errors += 1;
        }
        if let Some(ms) = p.latency_ms {
            // Ingest validates latency; a value the sketch refuses is simply not counted.
            let _ = self.latency_ms.observe(ms);
        }
        if let Some(c) = p.cost {
            self.costed += 1;
            self.cost_nanos += crate::service_levels::nanos(c);
        }
        let scores = p.scores.as_deref();
        match spec.task {
            Task::Binary => {
                let pos = spec.positive();
                let score = spec.binary_score(p.score, scores);
                if let Some(s) = score {
                    let _ = self.confidence.observe_binary(s);
                    let _ = self.scores.observe(s);
                }
                // The class decided as the metrics decide it: the logged prediction by
                // default, the score at the what-if threshold.
                let predicted = &mut self.predicted;
                let by_score = score.map(|s| s >= spec.threshold);
                match (&p.prediction, by_score, spec.decision) {
                    (Some(o), _, Decision::Prediction) | (Some(o), None, Decision::Threshold) => {
                        o.with_class_key(|c| predicted.observe(c))
                    }
                    (_, Some(true), _) => predicted.observe(pos),
                    (_, Some(false), _) => match &spec.negative_class {
                        Some(negative) => predicted.observe(negative),
                        None => predicted.observe(&format!("not {pos}")),
                    },
                    (None, None, _) => {}
                }
            }
            Task::Multiclass => {
                if let Some(s) = scores {
                    let _ = self.confidence.observe_scores(s);
                    if let Some(max) = s.iter().map(|x| x.1).reduce(f64::max) {
                        let _ = self.scores.observe(max);
                    }
                }
                let predicted = &mut self.predicted;
                match &p.prediction {
                    Some(o) => o.with_class_key(|c| predicted.observe(c)),
                    None => {
                        if let Some(c) = scores.and_then(argmax) {
                            predicted.observe(c);
                        }
                    }
                }
            }
            Task::Regression => {
                if let Some(v) = p.prediction.as_ref().and_then(Outcome::as_f64) {
                    let _ = self.scores.observe(v);
                }
            }
        }
        if let Some(l) = l {
            self.observe_label(
                spec,
                (p.prediction.as_ref(), p.score, scores),
                l.timestamp.micros() - p.timestamp.micros(),
                &l.label,
            );
        }
    }

    /// Adds the first label of a prediction already counted without one (a label delta):
    /// afterwards the accumulator equals one that saw the prediction with its label.
    pub fn add_late_label(&mut self, spec: &TaskSpec, l: &NewLabel) {
        self.observe_label(
            spec,
            (l.prediction.as_ref(), l.score, l.scores.as_deref()),
            l.labelled_at.micros() - l.prediction_time.micros(),
            &l.label,
        );
    }

    /// The labelled-row part of [`Self::observe`]: `delay_micros` is label time minus
    /// prediction time.
    fn observe_label(
        &mut self,
        spec: &TaskSpec,
        (prediction, score, scores): PredictionOutput<'_>,
        delay_micros: i64,
        label: &Outcome,
    ) {
        self.labelled += 1;
        let _ = self.label_delay_seconds.observe(delay_micros as f64 / 1e6);
        match self.state.observe(spec, prediction, score, scores, label) {
            Ok(true) => {}
            Ok(false) | Err(_) => self.unusable += 1,
        }
    }

    /// Adds all rows of `other` (built for the same [`TaskSpec`]).
    pub fn merge(&mut self, other: &WindowAccumulator) -> Result<(), PerfError> {
        self.state.merge(&other.state)?;
        self.latency_ms.merge(&other.latency_ms)?;
        self.scores.merge(&other.scores)?;
        self.label_delay_seconds.merge(&other.label_delay_seconds)?;
        self.confidence.merge(&other.confidence);
        self.predicted.merge(&other.predicted);
        self.predictions += other.predictions;
        self.errors += other.errors;
        self.labelled += other.labelled;
        self.unusable += other.unusable;
        self.costed += other.costed;
        self.cost_nanos += other.cost_nanos;
        Ok(())
    }

    pub(crate) fn operational(&self, spec: &TaskSpec, config: &MetricConfig) -> Operational {
        Operational {
            latency_ms: self.latency_ms.report(config),
            average_confidence: self.confidence.mean_confidence(config),
            prediction_distribution: (spec.task != Task::Regression)
                .then(|| self.predicted.report(config)),
            score_quantiles: self.scores.report(config),
        }
    }
}

/// Label-free metrics of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operational {
    pub latency_ms: QuantileReport,
    pub average_confidence: Metric,
    pub prediction_distribution: Option<DistributionReport>,
    pub score_quantiles: QuantileReport,
}

/// The task of a query: `task=`, else the model's declared task, else the detected one, with
/// the reason for the reply.
pub(crate) fn choose_task(
    detector: TaskDetector,
    query: Option<Task>,
    declared: Option<Task>,
    threshold: Option<f64>,
) -> (TaskSpec, String) {
    let (task, source) = match (query, declared) {
        (Some(t), _) => (Some(t), TaskSource::Query),
        (None, Some(t)) => (Some(t), TaskSource::Declared),
        (None, None) => (None, TaskSource::Detected),
    };
    let spec = detector.clone().finish(task, threshold);
    let reason = detector.reason(spec.task, source);
    (spec, reason)
}

/// Folds labelled reference rows into one baseline state; `None` when no row has a label.
pub fn baseline_state(spec: &TaskSpec, rows: &[ReferenceRow]) -> Option<TaskState> {
    let mut state = TaskState::new(spec);
    let mut any = false;
    for r in rows {
        if let Some(label) = &r.label {
            any |= matches!(
                state.observe(
                    spec,
                    r.prediction.as_ref(),
                    r.score,
                    r.scores.as_deref(),
                    label
                ),
                Ok(true)
            );
        }
    }
    any.then_some(state)
}
