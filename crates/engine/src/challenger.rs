//! Challenger against champion: `GET /v1/models/{model}/compare` (docs/api.md, "Challengers";
//! ADR 011).
//!
//! Two versions' predictions of the range are read with their labels, served and shadow alike
//! (`Store::scan_with_shadows`), and matched by request id. When some requests were scored by
//! both (a shadow challenger), the comparison is *paired*, over the labelled requests both
//! scored: McNemar for accuracy, DeLong for ROC AUC, a paired t-test (and Wilcoxon) on the
//! differences of absolute and squared errors for regression, and the two versions' agreement.
//! When no request was scored by both (A/B on disjoint traffic), each version's labelled
//! requests are an independent sample: a two-proportion z-test for accuracy, Welch's t-test on
//! absolute and squared errors. A pair belongs to the window of the champion's prediction.
//!
//! The decision reads one metric, the task's first (ROC AUC for a scored binary classifier,
//! else accuracy; MAE for a regressor), over the whole range at α = 0.05: promote when the
//! challenger is significantly better, keep when it is significantly worse or no different
//! at all, else need more data with the labelled requests a test at 80 % power would need if
//! the observed difference held ([`modelwatch_stats::paired::labelled_requests_needed`]).
//!
//! The range is read in one scan and each request's two outcomes kept in memory (about 100
//! bytes a request): like `/concept`, it answers from the raw events, not from hourly state.

use modelwatch_core::{ModelName, Outcome, PredictionEvent, Timestamp, Window};
use modelwatch_stats::paired::{self, Summary, TestResult};
use modelwatch_stats::perf::Z95;
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use crate::error::EngineError;
use crate::estimate::{EstimatedValue, Estimator, WindowEstimates, WindowEstimation};
use crate::state::{argmax, Task, TaskSpec};

/// Significance level of the decision.
pub const ALPHA: f64 = 0.05;

/// What a comparison covers.
#[derive(Debug, Clone)]
pub struct CompareQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub champion: String,
    pub challenger: String,
}

/// How the two versions' requests relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Some requests were scored by both (shadow): paired tests over those.
    Paired,
    /// No request was scored by both (A/B on disjoint traffic): two-sample tests.
    Independent,
}

/// One version's value of a metric over the compared requests, with its 95 % interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Labelled requests it is computed on.
    pub n: u64,
}

/// A named test's statistic and two-sided p-value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedTest {
    /// `mcnemar_exact`, `mcnemar_asymptotic`, `delong`, `paired_t`, `wilcoxon`,
    /// `two_proportion_z`, `welch_t`.
    pub test: String,
    pub statistic: f64,
    pub p_value: f64,
}

impl NamedTest {
    fn new(test: &'static str, r: TestResult) -> NamedTest {
        NamedTest {
            test: test.to_owned(),
            statistic: r.statistic,
            p_value: r.p_value,
        }
    }
}

/// One metric of the two versions side by side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricComparison {
    /// `accuracy`, `roc_auc`, `mae` or `mse`.
    pub metric: String,
    /// Whether a higher value is better (accuracy, ROC AUC) or a lower one (MAE, MSE).
    pub higher_is_better: bool,
    pub champion: Option<Estimate>,
    pub challenger: Option<Estimate>,
    /// challenger − champion.
    pub difference: Option<f64>,
    /// The test the decision reads, then any other; empty when no test applies (too few
    /// labelled requests, no variance).
    pub tests: Vec<NamedTest>,
    /// Labelled requests (pairs; in A/B both arms together) the first test needs for 80 %
    /// power at α = 0.05 if the observed difference held; `null` without a test or a
    /// difference.
    pub labelled_requests_needed: Option<u64>,
    /// Why there is no test, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The comparison over one span of requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// Requests each version scored in the span, labelled or not.
    pub champion_requests: u64,
    pub challenger_requests: u64,
    /// Requests both versions scored (paired mode), labelled or not.
    pub paired_requests: u64,
    /// Of those, the labelled ones: what the paired tests use.
    pub paired_labelled: u64,
    /// Labelled requests of each version in the span (A/B: each arm's sample size).
    pub champion_labelled: u64,
    pub challenger_labelled: u64,
    /// Share of paired requests on which both predicted the same class (classifiers only).
    pub agreement: Option<paired::Agreement>,
    pub metrics: Vec<MetricComparison>,
    /// The label-free estimates (CBPE for a classifier, DLE for a regressor) of each version
    /// over the same requests, labelled or not (paired: the requests both scored; A/B: each
    /// version's own); absent when neither version can be estimated (see the report's
    /// `estimation` and `skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated: Option<EstimatedComparison>,
}

/// The two versions' label-free estimates over the compared requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EstimatedComparison {
    /// Requests each version's estimates are computed on.
    pub champion_requests: u64,
    pub challenger_requests: u64,
    /// The decision's metric first (ROC AUC for a binary classifier, else accuracy; MAE for a
    /// regressor), then the others CBPE (or DLE: RMSE) estimates.
    pub metrics: Vec<EstimatedMetric>,
}

/// One metric's estimates side by side. The intervals are each version's own ± 3 sampling
/// errors; the difference has no test (both estimates rest on their calibrations holding, which
/// only labels check).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EstimatedMetric {
    pub metric: String,
    pub champion: Option<EstimatedValue>,
    pub challenger: Option<EstimatedValue>,
    /// challenger − champion.
    pub difference: Option<f64>,
}

/// How one version's estimates were made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionEstimation {
    pub version: String,
    /// `version`: the reference uploaded for this version; `all_versions`: the model's.
    pub reference: String,
    pub reference_rows: u64,
    /// Whether the scores are calibrated on that reference (isotonic) before estimating (CBPE;
    /// always false for DLE, which fits an error model instead).
    pub calibrated: bool,
}

/// How the report's estimates were made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareEstimation {
    /// `cbpe` (classifiers) or `dle` (regressors).
    pub method: String,
    /// `± 3 sampling errors`.
    pub interval: String,
    pub champion: Option<VersionEstimation>,
    pub challenger: Option<VersionEstimation>,
}

/// A version that has no label-free estimates, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkippedEstimate {
    pub version: String,
    pub reason: String,
}

/// One event-time window's comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowComparison {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(flatten)]
    pub comparison: Comparison,
}

/// What the comparison supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Promote,
    Keep,
    NeedMoreData,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The metric it reads.
    pub metric: String,
    pub p_value: Option<f64>,
    pub alpha: f64,
    /// Labelled requests the decision's test used.
    pub labelled_requests: u64,
    /// For `need_more_data`: labelled requests still to come before the test would have 80 %
    /// power at the observed difference (its total minus those it has); `null` when no count
    /// would do (no test yet).
    pub labelled_requests_still_needed: Option<u64>,
    /// What the label-free estimates of the decision's metric say, when both versions have
    /// them: `estimated_promote` (the challenger's ± 3σ interval entirely on the better side
    /// of the champion's: above for ROC AUC or accuracy, below for MAE), `estimated_keep`
    /// (entirely on the worse side) or `estimated_unclear`. A hint, never the verdict: the
    /// verdict waits for labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_hint: Option<EstimatedHint>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimatedHint {
    EstimatedPromote,
    EstimatedKeep,
    EstimatedUnclear,
}

/// `GET /v1/models/{model}/compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareReport {
    pub model: String,
    pub task: Task,
    pub champion: String,
    pub challenger: String,
    pub mode: Mode,
    pub window: String,
    /// Over the whole range.
    pub overall: Comparison,
    pub decision: Decision,
    /// How the label-free estimates were made; absent when neither version has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimation: Option<CompareEstimation>,
    /// Versions without label-free estimates, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedEstimate>,
    pub windows: Vec<WindowComparison>,
}

/// One version's prediction of a request, reduced to what the tests read.
#[derive(Debug, Clone)]
struct Scored {
    time: Timestamp,
    /// The class it decided (classifiers), as the metrics decide it.
    class: Option<String>,
    /// Binary: the positive class's score.
    score: Option<f64>,
    /// Regression: the predicted value.
    value: Option<f64>,
    /// What the version's estimator reads, when the version has one: prediction, score and
    /// scores for CBPE; for DLE (a regressor) also the features, which its error model reads.
    estimable: Option<PredictionEvent>,
}

#[derive(Debug, Default)]
struct Request {
    champion: Option<Scored>,
    challenger: Option<Scored>,
    label: Option<Outcome>,
}

fn scored(spec: &TaskSpec, p: &PredictionEvent, estimable: bool) -> Scored {
    let (class, score, value) = match spec.task {
        Task::Binary => {
            let score = spec.binary_score(p.score, p.scores.as_deref());
            let class = spec
                .predicted_positive(p.prediction.as_ref(), score)
                .map(|positive| if positive { "1" } else { "0" }.to_owned());
            (class, score, None)
        }
        Task::Multiclass => {
            let class = match &p.prediction {
                Some(o) => Some(o.class_key()),
                None => p.scores.as_deref().and_then(argmax).map(str::to_owned),
            };
            (class, None, None)
        }
        Task::Regression => (None, None, p.prediction.as_ref().and_then(Outcome::as_f64)),
    };
    Scored {
        time: p.timestamp,
        class,
        score,
        value,
        estimable: estimable.then(|| PredictionEvent {
            request_id: String::new(),
            timestamp: p.timestamp,
            model_version: None,
            features: if spec.task == Task::Regression {
                p.features.clone()
            } else {
                Vec::new()
            },
            prediction: p.prediction.clone(),
            score: p.score,
            scores: p.scores.clone(),
            latency_ms: None,
            cost: None,
            error: None,
            tags: Vec::new(),
            role: p.role,
            explanations: Default::default(),
        }),
    }
}

/// The two versions' fitted estimators, and what the report says of them.
struct Estimators {
    champion: Option<Estimator>,
    challenger: Option<Estimator>,
    info: Option<CompareEstimation>,
    skipped: Vec<SkippedEstimate>,
}

/// Each version's estimator (CBPE for a classifier, DLE for a regressor): the champion's is
/// fitted on the reference uploaded for its version, else on the model's (all versions')
/// reference, the one its served metrics are compared with. The challenger's only on a
/// reference uploaded for its own version: another model's scores mean other probabilities,
/// and another model's errors another error model, so fitting them on the champion's reference
/// would estimate nothing true; without one it is skipped, with the reason.
fn estimators(
    store: &dyn Store,
    model: &ModelName,
    spec: &TaskSpec,
    q: &CompareQuery,
) -> Result<Estimators, EngineError> {
    let mut out = Estimators {
        champion: None,
        challenger: None,
        info: None,
        skipped: Vec::new(),
    };
    let summary = store
        .model(model)?
        .ok_or_else(|| StoreError::ModelNotFound(model.to_string()))?;
    let own = |v: &str| {
        summary
            .reference
            .iter()
            .find(|r| r.version == v && r.rows > 0)
            .map(|r| r.rows)
    };
    let all_versions = own("");
    let mut info = CompareEstimation {
        method: method(spec.task).into(),
        interval: "± 3 sampling errors".into(),
        champion: None,
        challenger: None,
    };
    for (version, champion) in [(&q.champion, true), (&q.challenger, false)] {
        let (reference, rows) = match (own(version), all_versions) {
            (Some(rows), _) => ("version", rows),
            (None, Some(rows)) if champion => ("all_versions", rows),
            _ => {
                out.skipped.push(SkippedEstimate {
                    version: version.clone(),
                    reason: if champion {
                        "no labelled reference for this version or for all versions to fit its estimator on".into()
                    } else {
                        format!(
                            "no reference uploaded for version `{version}`: a challenger's estimator is fitted on its own labelled reference (PUT /v1/models/{model}/reference?version={version}), never on the champion's"
                        )
                    },
                });
                continue;
            }
        };
        let fitted = crate::estimate::estimator(store, model, Some(version), spec)?;
        let Some(fitted) = fitted else {
            out.skipped.push(SkippedEstimate {
                version: version.clone(),
                reason: if spec.task == Task::Regression {
                    "its reference cannot be fitted (it needs labelled rows with numeric predictions and labels)".into()
                } else {
                    "its reference cannot be fitted (it needs labelled rows of every class with scores and predictions)".into()
                },
            });
            continue;
        };
        let v = VersionEstimation {
            version: version.clone(),
            reference: reference.into(),
            reference_rows: rows,
            calibrated: fitted.calibrated(),
        };
        if champion {
            info.champion = Some(v);
            out.champion = Some(fitted);
        } else {
            info.challenger = Some(v);
            out.challenger = Some(fitted);
        }
    }
    if out.champion.is_some() || out.challenger.is_some() {
        out.info = Some(info);
    }
    Ok(out)
}

/// The label in the form `Scored` compares with: "1"/"0" for a binary task, the class key
/// for a multiclass one, the value for a regressor.
fn truth(spec: &TaskSpec, label: &Outcome) -> (Option<String>, Option<f64>) {
    match spec.task {
        Task::Binary => {
            let positive = label.with_class_key(|c| c == spec.positive());
            (Some(if positive { "1" } else { "0" }.to_owned()), None)
        }
        Task::Multiclass => (Some(label.class_key()), None),
        Task::Regression => (None, label.as_f64()),
    }
}

/// Compares `q.challenger` with `q.champion` over `q`'s range.
pub fn compare(
    store: &dyn Store,
    model: &ModelName,
    q: &CompareQuery,
) -> Result<CompareReport, EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: Some(q.champion.clone()),
    };
    let (spec, _) = crate::performance::scan_spec(store, model, &range, None, None)?;
    let est = estimators(store, model, &spec, q)?;
    let mut requests: HashMap<String, Request> = HashMap::new();
    let all = ScanRange {
        version: None,
        ..range
    };
    store.scan_with_shadows(model, &all, &mut |p, l| {
        let version = p.model_version.as_deref().unwrap_or("");
        let champion = version == q.champion;
        if !champion && version != q.challenger {
            return;
        }
        let r = requests.entry(p.request_id.clone()).or_default();
        let estimable = if champion {
            est.champion.is_some()
        } else {
            est.challenger.is_some()
        };
        let s = Some(scored(&spec, p, estimable));
        if champion {
            r.champion = s;
        } else {
            r.challenger = s;
        }
        if let Some(l) = l {
            r.label = Some(l.label.clone());
        }
    })?;
    let mode = if requests
        .values()
        .any(|r| r.champion.is_some() && r.challenger.is_some())
    {
        Mode::Paired
    } else {
        Mode::Independent
    };
    // Each request once, in its window: the champion's event time, else the challenger's.
    let mut spans: BTreeMap<Timestamp, Vec<&Request>> = BTreeMap::new();
    for r in requests.values() {
        let time = match (&r.champion, &r.challenger) {
            (Some(c), _) | (None, Some(c)) => c.time,
            (None, None) => continue,
        };
        spans.entry(q.window.start_of(time)).or_default().push(r);
    }
    let every: Vec<&Request> = spans.values().flatten().copied().collect();
    let overall = comparison(&spec, mode, &est, &every);
    let windows = spans
        .iter()
        .map(|(start, rs)| WindowComparison {
            start: *start,
            end: Timestamp(start.micros() + q.window.micros()),
            comparison: comparison(&spec, mode, &est, rs),
        })
        .collect();
    let decision = decide(&overall, spec.task, &q.champion, &q.challenger);
    Ok(CompareReport {
        model: model.to_string(),
        task: spec.task,
        champion: q.champion.clone(),
        challenger: q.challenger.clone(),
        mode,
        window: q.window.label(),
        overall,
        decision,
        estimation: est.info,
        skipped: est.skipped,
        windows,
    })
}

/// What one version got on one labelled request.
#[derive(Debug, Clone, Copy)]
struct Outcomes {
    correct: Option<bool>,
    positive: Option<bool>,
    score: Option<f64>,
    abs_error: Option<f64>,
}

fn outcomes(spec: &TaskSpec, s: &Scored, label: &Outcome) -> Outcomes {
    let (class, value) = truth(spec, label);
    Outcomes {
        correct: match (&s.class, &class) {
            (Some(p), Some(t)) => Some(p == t),
            _ => None,
        },
        positive: (spec.task == Task::Binary).then(|| class.as_deref() == Some("1")),
        score: s.score,
        abs_error: match (s.value, value) {
            (Some(p), Some(t)) => Some((t - p).abs()),
            _ => None,
        },
    }
}

fn comparison(spec: &TaskSpec, mode: Mode, est: &Estimators, requests: &[&Request]) -> Comparison {
    let mut paired_requests = 0;
    let (mut agree, mut compared) = (0u64, 0u64);
    let mut champion_side = Vec::new();
    let mut challenger_side = Vec::new();
    let mut pairs = Vec::new();
    let champion_requests = requests.iter().filter(|r| r.champion.is_some()).count() as u64;
    let challenger_requests = requests.iter().filter(|r| r.challenger.is_some()).count() as u64;
    for r in requests {
        if let (Some(a), Some(b)) = (&r.champion, &r.challenger) {
            paired_requests += 1;
            if let (Some(x), Some(y)) = (&a.class, &b.class) {
                compared += 1;
                agree += u64::from(x == y);
            }
        }
        let Some(label) = &r.label else { continue };
        let a = r.champion.as_ref().map(|s| outcomes(spec, s, label));
        let b = r.challenger.as_ref().map(|s| outcomes(spec, s, label));
        champion_side.extend(a);
        challenger_side.extend(b);
        if let (Some(a), Some(b)) = (a, b) {
            pairs.push((a, b));
        }
    }
    let metrics = match mode {
        Mode::Paired => {
            // ROC AUC is the decision's metric whenever both versions log scores, labelled
            // or not yet: the metric does not change when the labels arrive.
            let scored = requests.iter().any(|r| {
                matches!((&r.champion, &r.challenger), (Some(a), Some(b)) if a.score.is_some() && b.score.is_some())
            });
            paired_metrics(spec.task, &pairs, scored)
        }
        Mode::Independent => independent_metrics(spec.task, &champion_side, &challenger_side),
    };
    Comparison {
        champion_requests,
        challenger_requests,
        paired_requests,
        paired_labelled: pairs.len() as u64,
        champion_labelled: champion_side.len() as u64,
        challenger_labelled: challenger_side.len() as u64,
        agreement: paired::agreement(agree, compared),
        estimated: estimated(spec, mode, est, requests, &metrics),
        metrics,
    }
}

/// The metrics CBPE estimates, in the report's order after the decision's metric.
const ESTIMATED_METRICS: [&str; 6] = [
    "roc_auc",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "specificity",
];

/// The metrics DLE estimates, the decision's (MAE) first.
const ESTIMATED_ERRORS: [&str; 2] = ["mae", "rmse"];

/// The label-free method of a task, as the report names it.
fn method(task: Task) -> &'static str {
    match task {
        Task::Regression => "dle",
        Task::Binary | Task::Multiclass => "cbpe",
    }
}

/// Each version's label-free estimates over the span's requests: in paired mode the requests
/// both versions scored, labelled or not (the same requests for both); in A/B each version's
/// own.
fn estimated(
    spec: &TaskSpec,
    mode: Mode,
    est: &Estimators,
    requests: &[&Request],
    labelled: &[MetricComparison],
) -> Option<EstimatedComparison> {
    if est.champion.is_none() && est.challenger.is_none() {
        return None;
    }
    let fold = |estimator: &Option<Estimator>, champion: bool| {
        let e = estimator.as_ref()?;
        let mut w = WindowEstimation::new(e);
        let mut n = 0u64;
        for r in requests {
            if mode == Mode::Paired && (r.champion.is_none() || r.challenger.is_none()) {
                continue;
            }
            let side = if champion { &r.champion } else { &r.challenger };
            if let Some(p) = side.as_ref().and_then(|s| s.estimable.as_ref()) {
                w.observe(e, spec, p);
                n += 1;
            }
        }
        Some((w.finish(e), n))
    };
    let a = fold(&est.champion, true);
    let b = fold(&est.challenger, false);
    let first = labelled.first().map(|m| m.metric.as_str());
    let mut names: Vec<&str> = if spec.task == Task::Regression {
        ESTIMATED_ERRORS.to_vec()
    } else {
        ESTIMATED_METRICS.to_vec()
    };
    if let Some(i) = names.iter().position(|m| Some(*m) == first) {
        let m = names.remove(i);
        names.insert(0, m);
    }
    let value = |side: &Option<(WindowEstimates, u64)>, m: &str| {
        side.as_ref().and_then(|(e, _)| e.get(m).copied())
    };
    let metrics = names
        .into_iter()
        .filter_map(|m| {
            let (champion, challenger) = (value(&a, m), value(&b, m));
            (champion.is_some() || challenger.is_some()).then(|| EstimatedMetric {
                metric: m.to_owned(),
                difference: match (&champion, &challenger) {
                    (Some(x), Some(y)) => Some(y.value - x.value),
                    _ => None,
                },
                champion,
                challenger,
            })
        })
        .collect();
    Some(EstimatedComparison {
        champion_requests: a.as_ref().map_or(0, |x| x.1),
        challenger_requests: b.as_ref().map_or(0, |x| x.1),
        metrics,
    })
}

fn proportion(x: u64, n: u64) -> Option<Estimate> {
    (n > 0).then(|| {
        let (ci_low, ci_high) = paired::wilson(x, n);
        Estimate {
            value: x as f64 / n as f64,
            ci_low,
            ci_high,
            n,
        }
    })
}

/// A mean with its normal 95 % interval.
fn mean(x: &[f64]) -> Option<Estimate> {
    let s = Summary::of(x);
    (s.n > 0).then(|| {
        let half = if s.n > 1 {
            Z95 * (s.variance / s.n as f64).sqrt()
        } else {
            f64::NAN
        };
        Estimate {
            value: s.mean,
            ci_low: s.mean - half,
            ci_high: s.mean + half,
            n: s.n,
        }
        .finite()
    })
}

impl Estimate {
    /// An interval that cannot be computed (one value) is the value itself: JSON has no NaN.
    fn finite(mut self) -> Estimate {
        if !self.ci_low.is_finite() || !self.ci_high.is_finite() {
            self.ci_low = self.value;
            self.ci_high = self.value;
        }
        self
    }
}

/// Labelled requests needed at `n` requests and an observed statistic `z` (see the module).
fn needed(n: u64, z: Option<f64>) -> Option<u64> {
    z.and_then(|z| paired::labelled_requests_needed(n, z))
}

fn metric(
    name: &'static str,
    higher_is_better: bool,
    (champion, challenger): (Option<Estimate>, Option<Estimate>),
    tests: Vec<NamedTest>,
    labelled_requests_needed: Option<u64>,
    reason: &str,
) -> MetricComparison {
    let difference = match (&champion, &challenger) {
        (Some(a), Some(b)) => Some(b.value - a.value),
        _ => None,
    };
    MetricComparison {
        metric: name.to_owned(),
        higher_is_better,
        champion,
        challenger,
        difference,
        labelled_requests_needed,
        reason: tests.is_empty().then(|| reason.to_owned()),
        tests,
    }
}

fn paired_metrics(
    task: Task,
    pairs: &[(Outcomes, Outcomes)],
    scored: bool,
) -> Vec<MetricComparison> {
    let mut out = Vec::new();
    match task {
        Task::Binary | Task::Multiclass => {
            let both: Vec<(bool, bool)> = pairs
                .iter()
                .filter_map(|(a, b)| Some((a.correct?, b.correct?)))
                .collect();
            let m = both.len() as u64;
            let right_a = both.iter().filter(|(a, _)| *a).count() as u64;
            let right_b = both.iter().filter(|(_, b)| *b).count() as u64;
            // Discordant pairs: only the champion right (b), only the challenger right (c).
            let b = both.iter().filter(|(a, c)| *a && !*c).count() as u64;
            let c = both.iter().filter(|(a, c)| !*a && *c).count() as u64;
            let mut tests = Vec::new();
            tests.extend(paired::mcnemar_exact(b, c).map(|t| NamedTest::new("mcnemar_exact", t)));
            tests.extend(
                paired::mcnemar_asymptotic(b, c).map(|t| NamedTest::new("mcnemar_asymptotic", t)),
            );
            let z = (b + c > 0).then(|| (c as f64 - b as f64) / ((b + c) as f64).sqrt());
            let accuracy = metric(
                "accuracy",
                true,
                (proportion(right_a, m), proportion(right_b, m)),
                tests,
                needed(m, z),
                "no labelled request on which the two versions differ",
            );
            // ROC AUC comes first, the metric the decision reads, when both versions log
            // scores.
            if task == Task::Binary && scored {
                let scored: Vec<(bool, f64, f64)> = pairs
                    .iter()
                    .filter_map(|(a, b)| Some((a.positive?, a.score?, b.score?)))
                    .collect();
                let y: Vec<bool> = scored.iter().map(|s| s.0).collect();
                let sa: Vec<f64> = scored.iter().map(|s| s.1).collect();
                let sb: Vec<f64> = scored.iter().map(|s| s.2).collect();
                let d = paired::delong_paired(&y, &sa, &sb);
                let auc = |v: f64, var: f64| {
                    Estimate {
                        value: v,
                        ci_low: (v - Z95 * var.sqrt()).max(0.0),
                        ci_high: (v + Z95 * var.sqrt()).min(1.0),
                        n: scored.len() as u64,
                    }
                    .finite()
                };
                // DeLong's statistic is champion − challenger; the report's is challenger's
                // gain, like the difference.
                out.push(metric(
                    "roc_auc",
                    true,
                    (
                        d.map(|d| auc(d.auc_a, d.var_a)),
                        d.map(|d| auc(d.auc_b, d.var_b)),
                    ),
                    d.iter()
                        .map(|d| {
                            NamedTest::new(
                                "delong",
                                TestResult {
                                    statistic: -d.test.statistic,
                                    p_value: d.test.p_value,
                                },
                            )
                        })
                        .collect(),
                    needed(scored.len() as u64, d.map(|d| d.test.statistic)),
                    "ROC AUC needs two scored labelled requests of each class whose two \
                     versions' rankings differ",
                ));
            }
            out.push(accuracy);
        }
        Task::Regression => {
            let errors: Vec<(f64, f64)> = pairs
                .iter()
                .filter_map(|(a, b)| Some((a.abs_error?, b.abs_error?)))
                .collect();
            let m = errors.len() as u64;
            for (name, power) in [("mae", 1), ("mse", 2)] {
                let ea: Vec<f64> = errors.iter().map(|e| e.0.powi(power)).collect();
                let eb: Vec<f64> = errors.iter().map(|e| e.1.powi(power)).collect();
                // Challenger − champion, so that the statistic's sign is the difference's.
                let t = paired::paired_t(&eb, &ea);
                let mut tests: Vec<NamedTest> =
                    t.iter().map(|t| NamedTest::new("paired_t", *t)).collect();
                tests.extend(
                    paired::wilcoxon_signed_rank(&eb, &ea).map(|w| NamedTest::new("wilcoxon", w)),
                );
                out.push(metric(
                    name,
                    false,
                    (mean(&ea), mean(&eb)),
                    tests,
                    needed(m, t.map(|t| t.statistic)),
                    "the paired errors need two labelled requests whose differences vary",
                ));
            }
        }
    }
    out
}

fn independent_metrics(task: Task, a: &[Outcomes], b: &[Outcomes]) -> Vec<MetricComparison> {
    let mut out = Vec::new();
    match task {
        Task::Binary | Task::Multiclass => {
            let right = |s: &[Outcomes]| -> (u64, u64) {
                let known: Vec<bool> = s.iter().filter_map(|o| o.correct).collect();
                (
                    known.iter().filter(|c| **c).count() as u64,
                    known.len() as u64,
                )
            };
            let ((xa, na), (xb, nb)) = (right(a), right(b));
            // Challenger first: the statistic's sign is the difference's.
            let t = paired::two_proportion_z(xb, nb, xa, na);
            out.push(metric(
                "accuracy",
                true,
                (proportion(xa, na), proportion(xb, nb)),
                t.iter()
                    .map(|t| NamedTest::new("two_proportion_z", *t))
                    .collect(),
                needed(na + nb, t.map(|t| t.statistic)),
                "each version needs labelled requests, and not all right or all wrong",
            ));
        }
        Task::Regression => {
            for (name, power) in [("mae", 1), ("mse", 2)] {
                let ea: Vec<f64> = a
                    .iter()
                    .filter_map(|o| Some(o.abs_error?.powi(power)))
                    .collect();
                let eb: Vec<f64> = b
                    .iter()
                    .filter_map(|o| Some(o.abs_error?.powi(power)))
                    .collect();
                let t = paired::welch_t(&Summary::of(&eb), &Summary::of(&ea));
                out.push(metric(
                    name,
                    false,
                    (mean(&ea), mean(&eb)),
                    t.iter().map(|t| NamedTest::new("welch_t", *t)).collect(),
                    needed((ea.len() + eb.len()) as u64, t.map(|t| t.statistic)),
                    "each version needs two labelled requests whose errors vary",
                ));
            }
        }
    }
    out
}

/// The label-free estimates' hint on `metric` (see [`Decision::estimated_hint`]), with a
/// sentence saying it; `None` unless both versions have an estimate of it. For an error
/// (`higher_is_better` false) the challenger's interval wholly below the champion's favours it.
fn hint(
    overall: &Comparison,
    task: Task,
    metric: &str,
    higher_is_better: bool,
) -> Option<(EstimatedHint, String)> {
    let e = overall.estimated.as_ref()?;
    let m = e.metrics.iter().find(|m| m.metric == metric)?;
    let (a, b) = (m.champion.as_ref()?, m.challenger.as_ref()?);
    let (above, below) = (b.ci_low > a.ci_high, b.ci_high < a.ci_low);
    let (better, worse) = if higher_is_better {
        (above, below)
    } else {
        (below, above)
    };
    let hint = if better {
        EstimatedHint::EstimatedPromote
    } else if worse {
        EstimatedHint::EstimatedKeep
    } else {
        EstimatedHint::EstimatedUnclear
    };
    let what = match hint {
        EstimatedHint::EstimatedPromote => "favour the challenger",
        EstimatedHint::EstimatedKeep => "favour the champion",
        EstimatedHint::EstimatedUnclear => "do not separate the two versions",
    };
    Some((
        hint,
        format!(
            "the label-free estimates ({}, over {} requests) {what}: {metric} {} [{}, {}] against {} [{}, {}]",
            method(task).to_uppercase(),
            e.champion_requests.min(e.challenger_requests),
            short4(b.value),
            short4(b.ci_low),
            short4(b.ci_high),
            short4(a.value),
            short4(a.ci_low),
            short4(a.ci_high),
        ),
    ))
}

fn short4(x: f64) -> String {
    format!("{x:.4}")
}

fn decide(overall: &Comparison, task: Task, champion: &str, challenger: &str) -> Decision {
    let mut d = decide_on_labels(overall, champion, challenger);
    // Before labels arrive the estimates are all there is: said beside the verdict, which
    // stays the labels' (an estimate rests on the calibration, or the error model, holding,
    // which labels check).
    let higher_is_better = overall.metrics[0].higher_is_better;
    if let Some((h, sentence)) = hint(overall, task, &d.metric, higher_is_better) {
        d.estimated_hint = Some(h);
        if d.verdict == Verdict::NeedMoreData {
            d.reason = format!(
                "{}; {sentence}, but the decision waits for labels",
                d.reason
            );
        }
    }
    d
}

fn decide_on_labels(overall: &Comparison, champion: &str, challenger: &str) -> Decision {
    let m = &overall.metrics[0];
    let labelled = m.champion.as_ref().map_or(0, |e| e.n) + {
        // A/B: both arms count; paired: the pairs once.
        if overall.paired_requests == 0 {
            m.challenger.as_ref().map_or(0, |e| e.n)
        } else {
            0
        }
    };
    let mut d = Decision {
        verdict: Verdict::NeedMoreData,
        metric: m.metric.clone(),
        p_value: m.tests.first().map(|t| t.p_value),
        alpha: ALPHA,
        labelled_requests: labelled,
        labelled_requests_still_needed: None,
        estimated_hint: None,
        reason: String::new(),
    };
    let missing = [
        (champion, overall.champion_requests),
        (challenger, overall.challenger_requests),
    ]
    .into_iter()
    .find(|(_, n)| *n == 0);
    if let Some((version, _)) = missing {
        d.reason = format!("no prediction of version `{version}` in this range");
        return d;
    }
    let (Some(diff), Some(p)) = (m.difference, d.p_value) else {
        d.reason = format!(
            "no test of {} yet: {}",
            m.metric,
            m.reason.as_deref().unwrap_or("too few labelled requests")
        );
        return d;
    };
    let better = if m.higher_is_better {
        diff > 0.0
    } else {
        diff < 0.0
    };
    if p < ALPHA && diff != 0.0 {
        d.verdict = if better {
            Verdict::Promote
        } else {
            Verdict::Keep
        };
        d.reason = format!(
            "the challenger's {} is significantly {} (p = {} < {ALPHA}) on {labelled} labelled requests",
            m.metric,
            if better { "better" } else { "worse" },
            show_p(p),
        );
        return d;
    }
    match m.labelled_requests_needed {
        Some(total) => {
            d.labelled_requests_still_needed = Some(total.saturating_sub(labelled));
            d.reason = format!(
                "the difference in {} ({diff:+.4}) is not significant yet (p = {}); at this difference a test with 80 % power at α = {ALPHA} needs about {total} labelled requests",
                m.metric,
                show_p(p),
            );
        }
        None => {
            d.verdict = Verdict::Keep;
            d.reason = format!(
                "the two versions' {} are the same on {labelled} labelled requests: no number of requests shows a difference that is not there",
                m.metric
            );
        }
    }
    d
}

/// A p-value for a sentence: three decimals, or scientific notation below 0.001.
fn show_p(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}
