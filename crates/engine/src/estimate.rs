//! Label-free performance estimates per window (`estimated` in each window of a performance
//! report): confidence-based performance estimation (CBPE, `modelwatch_stats::estimate`) of a
//! binary or multiclass classifier, fitted on its labelled reference and applied to each
//! window's scores and logged predictions, whether the window has labels or not; direct loss
//! estimation (DLE, ADR 013) of a regression model's MAE and RMSE, fitted on its labelled
//! reference's features, predictions and labels and applied to each window's features and
//! predictions.
//!
//! # When
//! The report's task is binary and its reference (the one the baseline uses, see
//! [`crate::reference`]) has rows with a score (`score`, or `scores[positive class]`), a
//! predicted class (logged, else `score >= threshold`) and a label, of both classes; or the
//! task is multiclass and the reference's rows have a `scores` map naming every class (the
//! classes are its names; predicted class logged, else the top score) and labels of every
//! class; or the task is regression and the reference has at least 40 rows with a numeric
//! prediction and label (the features are those its rows name: a feature with a text value is
//! categorical, the others numeric). Otherwise the report has no `estimation` and its windows
//! no `estimated`.
//!
//! # Where it comes from
//! The fitted estimator (the isotonic calibration, if chosen, and the sampling-error
//! components) is kept as a model-wide aggregate of kind `reference-cbpe` per (version,
//! positive class, decision rule): a reference upload deletes it with the other `reference*`
//! kinds, so it is refitted once per upload, never per query.
//! The windows come from the per-hour state when [`crate::planner::estimate`] sends the query
//! there: the refresh of the per-hour aggregates ([`crate::aggregates`]) keeps, beside each
//! (version, hour)'s accumulator, its [`WindowEstimation`] built with the estimator of
//! version-less queries, named by that estimator's [`Estimator::key`]; a query merges the hours
//! of its windows (as the realized metrics do). Otherwise (a segment, a `task=` or
//! `threshold=`, hours not whole, a version with its own reference) they are a scan of the
//! range's predictions. Both give the same state: sums of calibrated probabilities by
//! predicted class, and ranked probabilities for ROC AUC (every row up to
//! [`modelwatch_stats::estimate::EXACT_ROWS`] a window, then sums per rank bin of the
//! reference's scores; ADR 008 gives the difference that makes).
//!
//! Only the API's `GET /v1/models/{m}/metrics`, `modelwatch metrics`, the dashboard (which
//! shows the API's numbers) and the evaluation of an alert rule on `estimated:<metric>` call
//! [`attach`].

use std::collections::BTreeMap;

use modelwatch_core::{
    FeatureName, FeatureValue, ModelName, Outcome, PredictionEvent, ReferenceRow, Timestamp, Window,
};
use modelwatch_stats::estimate::{
    BinaryCbpe, BinaryEstimates, CbpeError, Cell, ColumnKind, Dle, DleRow, DleWindow,
    ExpectedConfusion, MulticlassCbpe, MulticlassRow, MulticlassWindow, RankedProbabilities,
};
use modelwatch_store::{AggregateWrite, ScanRange, Store, StoredAggregate, MODEL_WIDE};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::performance::PerformanceReport;
use crate::planner::Source;
use crate::query::PerformanceQuery;
use crate::state::{Task, TaskSpec};

/// Kind of the stored fitted estimator. It starts with `reference`, so a reference upload
/// deletes it.
pub const CBPE: &str = "reference-cbpe";

/// Kind of the per-hour estimation states ([`HourEstimate`], one per (version, hour)). It
/// starts with `reference`, so a reference upload deletes them.
pub const ESTIMATE: &str = "reference-estimate";

/// The layout of the stored estimation states ([`WindowEstimation`]), part of
/// [`Estimator::key`]: changed with the layout, so that states of an older modelwatch are not
/// read and every hour is rebuilt. 2: exact float sums ([`modelwatch_stats::exact::ExactSum`]).
const STATE_LAYOUT: u64 = 2;

/// A (version, hour)'s estimation state and the [`Estimator::key`] it was built with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HourEstimate {
    pub key: u64,
    pub state: WindowEstimation,
}

/// One estimated metric of a window, as the API answers it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimatedValue {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// The standard error NannyML calls the sampling error: the interval is ± 3 of it.
    pub sampling_error: f64,
}

/// A window's estimates by metric name (`roc_auc`, `f1`, `precision`, `recall`,
/// `specificity`, `accuracy` for a classifier; `mae`, `rmse` for a regression model); a metric
/// undefined in the window (no predicted positive for precision, say) is absent.
pub type WindowEstimates = BTreeMap<String, EstimatedValue>;

/// What the report's estimates are: the method and how it was fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimationInfo {
    /// `cbpe` (classifiers) or `dle` (regression).
    pub method: String,
    /// Whether the scores are calibrated (isotonic regression on the reference) before
    /// estimating: only when that lowers the reference's expected calibration error. Always
    /// `false` for `dle`, which has no scores.
    pub calibrated: bool,
    /// Reference rows the estimator was fitted on.
    pub reference_rows: u64,
    /// `± 3 sampling errors`, NannyML's interval.
    pub interval: String,
    /// Where the windows' estimates came from: `hours` (the per-hour states) or `events` (a
    /// scan of the range's predictions).
    pub source: String,
}

/// The stored estimator with what it was fitted for.
#[derive(Serialize, Deserialize)]
struct Blob {
    key: String,
    /// `None`: the reference cannot be fitted (the reason).
    fitted: Result<Estimator, String>,
}

/// A fitted estimator of the model's task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Estimator {
    Binary(BinaryCbpe),
    /// Classes sorted; a row's `scores` map is read in that order.
    Multiclass(MulticlassCbpe),
    Regression(RegressionDle),
}

/// A regression model's direct loss estimator with the features it reads, in its columns'
/// order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegressionDle {
    /// Feature names, sorted, each with its kind.
    pub features: Vec<(String, ColumnKind)>,
    pub dle: Dle,
}

/// A row's cells in the order of `features`: a feature absent or null, a text in a numeric
/// column or a number in a categorical one is missing; a boolean is 0 / 1 in a numeric column
/// and `true` / `false` in a categorical one.
fn cells<'a>(
    features: &[(String, ColumnKind)],
    row: &'a [(FeatureName, FeatureValue)],
) -> Vec<Cell<'a>> {
    features
        .iter()
        .map(|(name, kind)| {
            let v = row.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v);
            cell(*kind, v)
        })
        .collect()
}

fn cell(kind: ColumnKind, v: Option<&FeatureValue>) -> Cell<'_> {
    match (kind, v) {
        (ColumnKind::Numeric, Some(FeatureValue::Number(x))) => Cell::Number(*x),
        (ColumnKind::Numeric, Some(FeatureValue::Bool(b))) => Cell::Number(*b as u8 as f64),
        (ColumnKind::Categorical, Some(FeatureValue::Text(t))) => Cell::Text(t),
        (ColumnKind::Categorical, Some(FeatureValue::Bool(b))) => {
            Cell::Text(if *b { "true" } else { "false" })
        }
        _ => Cell::Missing,
    }
}

/// Whether a task has a label-free estimator: CBPE for classifiers, DLE for regression.
pub fn estimable(task: Task) -> bool {
    matches!(task, Task::Binary | Task::Multiclass | Task::Regression)
}

impl Estimator {
    fn method(&self) -> &'static str {
        match self {
            Estimator::Binary(_) | Estimator::Multiclass(_) => "cbpe",
            Estimator::Regression(_) => "dle",
        }
    }

    pub(crate) fn calibrated(&self) -> bool {
        match self {
            Estimator::Binary(b) => b.calibration.is_some(),
            Estimator::Multiclass(m) => m.calibrations.iter().any(Option::is_some),
            Estimator::Regression(_) => false,
        }
    }

    fn rows(&self) -> u64 {
        match self {
            Estimator::Binary(b) => b.rows,
            Estimator::Multiclass(m) => m.rows,
            Estimator::Regression(r) => r.dle.rows,
        }
    }

    /// A fingerprint of the fitted estimator (FNV-1a of its encoding, then of
    /// [`STATE_LAYOUT`]): per-hour states built with another estimator (another reference,
    /// task or decision rule), or stored in another layout, have another key, and a stored key
    /// that differs has every hour rebuilt.
    pub fn key(&self) -> u64 {
        let bytes = postcard::to_stdvec(self).expect("an estimator encodes");
        bytes
            .iter()
            .chain(&STATE_LAYOUT.to_le_bytes())
            .fold(0xcbf29ce484222325u64, |h, &b| {
                (h ^ b as u64).wrapping_mul(0x100000001b3)
            })
    }
}

/// What the fit depends on: the task, a binary spec's positive class and decision rule, and
/// the number of rank bins (an estimator stored with other bins is fitted again, and its new
/// key rebuilds the hours).
fn spec_key(spec: &TaskSpec) -> String {
    format!(
        "{:?}|{}|{:?}|{}|{}",
        spec.task,
        spec.positive(),
        spec.decision,
        spec.threshold,
        modelwatch_stats::estimate::RANK_BINS
    )
}

/// A binary row's (score, predicted positive) as the performance metrics read it: the score is
/// `score` or `scores[positive]`; the predicted class the logged one, else the score at the
/// threshold (with `Decision::Threshold`, the score first).
fn binary_row(
    spec: &TaskSpec,
    prediction: Option<&Outcome>,
    score: Option<f64>,
    scores: Option<&[(String, f64)]>,
) -> Option<(f64, bool)> {
    let score = spec.binary_score(score, scores)?;
    if !(0.0..=1.0).contains(&score) {
        return None;
    }
    Some((score, spec.predicted_positive(prediction, Some(score))?))
}

/// Fits the task's estimator on the reference rows: CBPE for a classifier (rows labelled,
/// scored, with a predicted class), DLE for a regression model (rows with a numeric prediction
/// and label). The error says why the reference cannot be fitted.
pub fn fit(spec: &TaskSpec, rows: &[ReferenceRow]) -> Result<Estimator, String> {
    match spec.task {
        Task::Multiclass => fit_multiclass(rows)
            .map(Estimator::Multiclass)
            .map_err(|e| e.to_string()),
        Task::Regression => fit_regression(rows)
            .map(Estimator::Regression)
            .map_err(|e| e.to_string()),
        _ => fit_binary(spec, rows)
            .map(Estimator::Binary)
            .map_err(|e| e.to_string()),
    }
}

/// The features are those the reference's rows name (sorted); one with a text value anywhere
/// is categorical, the others numeric (booleans as 0 / 1).
fn fit_regression(
    rows: &[ReferenceRow],
) -> Result<RegressionDle, modelwatch_stats::estimate::DleError> {
    let mut features: BTreeMap<&str, ColumnKind> = BTreeMap::new();
    for r in rows {
        for (name, v) in &r.features {
            let kind = features.entry(name.as_str()).or_insert(ColumnKind::Numeric);
            if matches!(v, FeatureValue::Text(_)) {
                *kind = ColumnKind::Categorical;
            }
        }
    }
    let features: Vec<(String, ColumnKind)> = features
        .into_iter()
        .map(|(n, k)| (n.to_owned(), k))
        .collect();
    let dle_rows: Vec<DleRow<'_>> = rows
        .iter()
        .filter_map(|r| {
            Some(DleRow {
                features: cells(&features, &r.features),
                prediction: r.prediction.as_ref()?.as_f64()?,
                label: r.label.as_ref()?.as_f64()?,
            })
        })
        .collect();
    let kinds: Vec<ColumnKind> = features.iter().map(|(_, k)| *k).collect();
    Ok(RegressionDle {
        dle: Dle::fit(&kinds, &dle_rows)?,
        features,
    })
}

fn fit_binary(spec: &TaskSpec, rows: &[ReferenceRow]) -> Result<BinaryCbpe, CbpeError> {
    let pos = spec.positive();
    let rows: Vec<modelwatch_stats::estimate::ReferenceRow> = rows
        .iter()
        .filter_map(|r| {
            let label = r.label.as_ref()?;
            let (score, predicted) =
                binary_row(spec, r.prediction.as_ref(), r.score, r.scores.as_deref())?;
            Some(modelwatch_stats::estimate::ReferenceRow {
                score,
                predicted,
                label: label.class_key() == pos,
            })
        })
        .collect();
    BinaryCbpe::fit(&rows)
}

/// A multiclass row's (class scores in `classes` order, predicted class index): every class
/// must have a score in [0, 1]; the predicted class is the logged one, else the top score.
fn multiclass_row(
    classes: &[String],
    prediction: Option<&Outcome>,
    scores: Option<&[(String, f64)]>,
) -> Option<(Vec<f64>, usize)> {
    let scores = scores?;
    let v: Vec<f64> = classes
        .iter()
        .map(|c| scores.iter().find(|(k, _)| k == c).map(|(_, s)| *s))
        .collect::<Option<_>>()?;
    if v.iter().any(|s| !(0.0..=1.0).contains(s)) {
        return None;
    }
    let predicted = match prediction {
        Some(o) => classes.iter().position(|c| *c == o.class_key())?,
        None => (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b]))?,
    };
    Some((v, predicted))
}

/// The classes are the names of the reference's `scores` maps, sorted (NannyML's order).
fn fit_multiclass(rows: &[ReferenceRow]) -> Result<MulticlassCbpe, CbpeError> {
    let mut classes: Vec<String> = rows
        .iter()
        .filter_map(|r| r.scores.as_ref())
        .flat_map(|s| s.iter().map(|(c, _)| c.clone()))
        .collect();
    classes.sort();
    classes.dedup();
    let rows: Vec<MulticlassRow> = rows
        .iter()
        .filter_map(|r| {
            let label = r.label.as_ref()?.class_key();
            let label = classes.iter().position(|c| *c == label)?;
            let (scores, predicted) =
                multiclass_row(&classes, r.prediction.as_ref(), r.scores.as_deref())?;
            Some(MulticlassRow {
                scores,
                predicted,
                label,
            })
        })
        .collect();
    MulticlassCbpe::fit(classes, &rows)
}

/// The stored fit for (`version`, `spec`): `Some(fitted or not)`, or `None` when none is
/// stored (or it was stored for another spec, or by another version of modelwatch).
pub(crate) fn stored_estimator(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
    spec: &TaskSpec,
) -> Result<Option<Option<Estimator>>, EngineError> {
    let range = ScanRange {
        version: Some(version.unwrap_or("").to_owned()),
        ..ScanRange::default()
    };
    let key = spec_key(spec);
    if let Some(row) = store.aggregates(model, CBPE, &range)?.first() {
        if let Ok(blob) = postcard::from_bytes::<Blob>(&row.data) {
            if blob.key == key {
                return Ok(Some(blob.fitted.ok()));
            }
        }
    }
    Ok(None)
}

/// The fitted estimator of the query's reference, from the store or fitted now and stored;
/// `None` when the task has no estimator or the reference cannot be fitted.
pub fn estimator(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
    spec: &TaskSpec,
) -> Result<Option<Estimator>, EngineError> {
    if !estimable(spec.task) {
        return Ok(None);
    }
    let version_key = version.unwrap_or("").to_owned();
    let key = spec_key(spec);
    // Unreadable or for another spec: fitted again below.
    if let Some(fitted) = stored_estimator(store, model, version, spec)? {
        return Ok(fitted);
    }
    let (rows, _) = crate::reference::rows(store, model, version)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let blob = Blob {
        key,
        fitted: fit(spec, &rows),
    };
    store.put_aggregates(
        model,
        AggregateWrite {
            kind: CBPE.into(),
            put: vec![StoredAggregate {
                version: version_key,
                hour: MODEL_WIDE,
                data: postcard::to_stdvec(&blob)
                    .map_err(|e| crate::aggregates::corrupt("cbpe estimator", e))?,
            }],
            ..AggregateWrite::default()
        },
    )?;
    Ok(blob.fitted.ok())
}

/// One window's (or hour's) mergeable estimation state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WindowEstimation {
    Binary {
        confusion: ExpectedConfusion,
        ranked: RankedProbabilities,
    },
    Multiclass(MulticlassWindow),
    Regression(DleWindow),
}

impl WindowEstimation {
    pub fn new(estimator: &Estimator) -> WindowEstimation {
        match estimator {
            Estimator::Binary(_) => WindowEstimation::Binary {
                confusion: ExpectedConfusion::default(),
                ranked: RankedProbabilities::default(),
            },
            Estimator::Multiclass(m) => {
                WindowEstimation::Multiclass(MulticlassWindow::new(m.classes.len()))
            }
            Estimator::Regression(_) => WindowEstimation::Regression(DleWindow::default()),
        }
    }

    pub fn observe(&mut self, estimator: &Estimator, spec: &TaskSpec, p: &PredictionEvent) {
        match (self, estimator) {
            (WindowEstimation::Binary { confusion, ranked }, Estimator::Binary(cbpe)) => {
                let Some((score, predicted)) =
                    binary_row(spec, p.prediction.as_ref(), p.score, p.scores.as_deref())
                else {
                    return;
                };
                let prob = cbpe.calibrate(score);
                confusion.observe(predicted, prob);
                ranked.observe(&cbpe.rank_edges, score, prob);
            }
            (WindowEstimation::Multiclass(w), Estimator::Multiclass(cbpe)) => {
                if let Some((scores, predicted)) =
                    multiclass_row(&cbpe.classes, p.prediction.as_ref(), p.scores.as_deref())
                {
                    w.observe(cbpe, &scores, predicted);
                }
            }
            (WindowEstimation::Regression(w), Estimator::Regression(r)) => {
                // Rows the realized metrics could score: a numeric prediction.
                if let Some(prediction) = p.prediction.as_ref().and_then(Outcome::as_f64) {
                    if prediction.is_finite() {
                        w.observe(r.dle.predict(&cells(&r.features, &p.features), prediction));
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds `o`, built with the same estimator.
    pub fn merge(&mut self, estimator: &Estimator, o: &WindowEstimation) {
        match (self, o, estimator) {
            (
                WindowEstimation::Binary { confusion, ranked },
                WindowEstimation::Binary {
                    confusion: c,
                    ranked: r,
                },
                Estimator::Binary(cbpe),
            ) => {
                confusion.merge(c);
                ranked.merge(&cbpe.rank_edges, r);
            }
            (
                WindowEstimation::Multiclass(a),
                WindowEstimation::Multiclass(b),
                Estimator::Multiclass(cbpe),
            ) => a.merge(cbpe, b),
            (WindowEstimation::Regression(a), WindowEstimation::Regression(b), _) => a.merge(b),
            _ => {}
        }
    }

    /// The window's estimates.
    pub fn finish(self, estimator: &Estimator) -> WindowEstimates {
        let estimates: BinaryEstimates = match (self, estimator) {
            (
                WindowEstimation::Binary {
                    confusion,
                    mut ranked,
                },
                Estimator::Binary(cbpe),
            ) => {
                let auc = ranked.roc_auc();
                cbpe.from_parts(&confusion, auc)
            }
            (WindowEstimation::Multiclass(w), Estimator::Multiclass(cbpe)) => w.finish(cbpe),
            (WindowEstimation::Regression(w), Estimator::Regression(r)) => r.dle.estimates(&w),
            _ => BinaryEstimates::default(),
        };
        estimates
            .metrics
            .into_iter()
            .map(|(m, e)| {
                (
                    m.as_str().to_owned(),
                    EstimatedValue {
                        value: e.value,
                        ci_low: e.ci_low,
                        ci_high: e.ci_high,
                        sampling_error: e.sampling_error,
                    },
                )
            })
            .collect()
    }
}

/// Adds the label-free estimates to every window of `report` (the answer to `q`) and says how
/// they were made in `report.estimation`; leaves the report as it is when the model's task or
/// reference does not allow them.
pub fn attach(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
    report: &mut PerformanceReport,
) -> Result<(), EngineError> {
    let Some(cbpe) = estimator(store, model, q.version.as_deref(), &report.spec)? else {
        return Ok(());
    };
    let (mut estimates, source) = window_estimates(store, model, q, &report.spec, &cbpe)?;
    for w in &mut report.windows {
        w.estimated = Some(estimates.remove(&w.start).unwrap_or_default());
    }
    report.estimation = Some(EstimationInfo {
        method: cbpe.method().into(),
        calibrated: cbpe.calibrated(),
        reference_rows: cbpe.rows(),
        interval: "± 3 sampling errors".into(),
        source: match source {
            Source::Hours => "hours",
            Source::Events => "events",
        }
        .into(),
    });
    Ok(())
}

/// The estimates of each window (by start) of the query's range, and where they came from:
/// the per-hour states when the planner sends the query there and they were built with this
/// very estimator, else a scan of the range.
pub fn window_estimates(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
    spec: &TaskSpec,
    cbpe: &Estimator,
) -> Result<(BTreeMap<Timestamp, WindowEstimates>, Source), EngineError> {
    let window = q.window.unwrap_or(Window::DAY);
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let from_hours = match crate::planner::estimate(q) {
        Source::Hours => crate::aggregates::estimate_hours(store, model, &range, window, cbpe)?,
        Source::Events => None,
    };
    let (windows, source) = match from_hours {
        Some(w) => (w, Source::Hours),
        None => (
            scan(store, model, &range, window, cbpe, spec)?,
            Source::Events,
        ),
    };
    Ok((
        windows
            .into_iter()
            .map(|(start, w)| (start, w.finish(cbpe)))
            .collect(),
        source,
    ))
}

/// The windows' estimation states from a scan of the range (one scan per core over slices of
/// it, merged: the states merge exactly but for the order of sums).
pub fn scan(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    window: Window,
    cbpe: &Estimator,
    spec: &TaskSpec,
) -> Result<BTreeMap<Timestamp, WindowEstimation>, EngineError> {
    let parts = crate::performance::split_range(range);
    let folded = modelwatch_stats::parallel::parallel_map(&parts, |part| {
        let mut windows: BTreeMap<Timestamp, WindowEstimation> = BTreeMap::new();
        store.scan_predictions(model, part, &mut |p, _| {
            windows
                .entry(window.start_of(p.timestamp))
                .or_insert_with(|| WindowEstimation::new(cbpe))
                .observe(cbpe, spec, p);
        })?;
        Ok::<_, EngineError>(windows)
    });
    let mut out: BTreeMap<Timestamp, WindowEstimation> = BTreeMap::new();
    for part in folded {
        for (start, w) in part? {
            out.entry(start)
                .or_insert_with(|| WindowEstimation::new(cbpe))
                .merge(cbpe, &w);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch_stats::perf::Decision;

    fn spec(decision: Decision) -> TaskSpec {
        TaskSpec {
            task: Task::Binary,
            positive_class: Some("1".into()),
            negative_class: Some("0".into()),
            threshold: 0.5,
            decision,
        }
    }

    /// The predicted class is the logged one, else the score at the threshold; the score is
    /// `score` or the positive class's entry of `scores`.
    #[test]
    fn rows_are_read_as_the_realized_metrics_read_them() {
        let s = spec(Decision::Prediction);
        let one = Outcome::Number(1.0);
        let zero = Outcome::Number(0.0);
        assert_eq!(
            binary_row(&s, Some(&zero), Some(0.9), None),
            Some((0.9, false))
        );
        assert_eq!(binary_row(&s, None, Some(0.9), None), Some((0.9, true)));
        let scores = vec![("0".to_owned(), 0.3), ("1".to_owned(), 0.7)];
        assert_eq!(
            binary_row(&s, Some(&one), None, Some(&scores)),
            Some((0.7, true))
        );
        assert_eq!(binary_row(&s, Some(&one), None, None), None);
        assert_eq!(binary_row(&s, Some(&one), Some(1.5), None), None);
        let classes = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let map = |v: [f64; 3]| -> Vec<(String, f64)> { classes.iter().cloned().zip(v).collect() };
        let b = Outcome::Text("b".into());
        assert_eq!(
            multiclass_row(&classes, Some(&b), Some(&map([0.5, 0.2, 0.3]))),
            Some((vec![0.5, 0.2, 0.3], 1))
        );
        assert_eq!(
            multiclass_row(&classes, None, Some(&map([0.2, 0.1, 0.7]))),
            Some((vec![0.2, 0.1, 0.7], 2))
        );
        // A class without a score, or a prediction of an unknown class: not estimable.
        assert_eq!(
            multiclass_row(&classes, Some(&b), Some(&map([0.5, 0.2, 0.3])[..2])),
            None
        );
        let d = Outcome::Text("d".into());
        assert_eq!(
            multiclass_row(&classes, Some(&d), Some(&map([0.5, 0.2, 0.3]))),
            None
        );
        // A stored fit is reused only for the same task and rule: a model that turns
        // multiclass (a third class appears) is refitted.
        let multi = TaskSpec {
            task: Task::Multiclass,
            ..spec(Decision::Prediction)
        };
        assert_ne!(spec_key(&s), spec_key(&multi));
        assert_ne!(spec_key(&s), spec_key(&spec(Decision::Threshold)));
        // Nor one fitted with other rank bins (2,048 before): its hours are rebuilt with the
        // new estimator's key.
        assert!(spec_key(&s).ends_with(&format!("|{}", modelwatch_stats::estimate::RANK_BINS)));
        let what_if = spec(Decision::Threshold);
        assert_eq!(
            binary_row(&what_if, Some(&zero), Some(0.9), None),
            Some((0.9, true))
        );
    }
}
