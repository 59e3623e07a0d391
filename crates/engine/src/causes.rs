//! The likely causes of a drop in a performance metric, as an alert carries them when a
//! performance or estimated-performance rule fires (issue 25, section 3): which features
//! changed most in the alert's window, weighted by how much each matters to the model, and the
//! slices of the traffic where the drop is concentrated.
//!
//! # Features
//! A feature's *change* in the window is the largest of: its drift (the Jensen-Shannon distance,
//! base 2, in [0, 1], of the drift report's bins against the reference), the change of its null
//! rate (the quality report's, against the reference's), and, with attributions, the relative
//! change of its mean |attribution|. Its *score* is change × importance, the importance being
//! an [`Importance`]: with attributions (section 2) their mean |attribution|; without them, how
//! much the feature goes with the model's errors on the window's labelled rows: the correlation
//! ratio η of the error over the feature's groups (a categorical or boolean feature's values, a
//! numeric feature's reference quintile bins; for a 0/1 error, Cramér's V of the feature × error
//! table). A numeric feature's Spearman correlation with the error is reported beside it, not
//! ranked by: a model errs around its decision boundary, seldom monotonically in a feature.
//! Ranked by score; each entry says why.
//!
//! # Segments
//! [`modelwatch_stats::slices::search`] over one- and two-feature slices: categoricals by
//! value (the [`MAX_VALUES`] most frequent in the window, nulls as `(null)`), numerics by the
//! reference's quintile bins (every other edge of its stored decile bins; and `(null)`); a slice needs [`slices::MIN_SEGMENT_ROWS`] rows.
//! Each slice is compared with the same slice of the reference (its labelled rows), else the
//! whole reference; ranked by the drop less 1.96 standard errors of the slice's value (so a
//! small slice needs a larger drop to come first), with the metric's interval (Wilson for a proportion,
//! a bootstrap for F1). The metric is the rule's when a slice can be measured with it
//! (accuracy, precision, recall, F1, specificity, FPR, FNR; an estimate reads the same
//! metric; a class metric reads it for its class against the others, on a multiclass model too); any other classification metric is looked at through accuracy
//! (noted). Regression models get the features only.
//!
//! # Cost
//! Computed once, when the alert fires. One scan of the window's predictions, keeping at most
//! [`SAMPLE_CAP`] labelled rows (those whose request id and version hash lowest,
//! [`LowestHash`], so the sample and its order do not depend on the order of the scan), the window's drift and quality reports, and the stored
//! reference rows (the first [`SAMPLE_CAP`] labelled ones when there are more). Slices are
//! searched over the [`MAX_SLICE_FEATURES`] features of highest score.

use std::collections::{BTreeMap, HashMap};

use modelwatch_core::{FeatureValue, ModelName, Outcome, Timestamp, Window};
use modelwatch_stats::drift::{DriftConfig, ProfileDetail};
use modelwatch_stats::sample::LowestHash;
use modelwatch_stats::slices::{
    self, Cell, CodedRows, Interval, SliceMetric, SliceSearch, NO_VALUE,
};
use modelwatch_store::{ScanRange, Store};
use serde::{Deserialize, Serialize};

use crate::drift::{DriftQuery, QualityThresholds};
use crate::error::EngineError;
use crate::sketch::Reference;
use crate::state::{Task, TaskSpec};

/// Labelled rows of the window (and of the reference) looked at, at most.
pub const SAMPLE_CAP: usize = 20_000;
/// Features the slice search combines, at most (the ones of highest score).
pub const MAX_SLICE_FEATURES: usize = 12;
/// Values of a categorical feature that get a slice of their own.
pub const MAX_VALUES: usize = 8;
/// Quantile bins of a numeric feature (from the reference).
pub const NUMERIC_BINS: usize = 5;
/// Features listed, at most.
pub const MAX_FEATURES: usize = 10;
/// Segments listed, at most.
pub const MAX_SEGMENTS: usize = 5;
/// Labelled rows a window needs for importance and slices.
pub const MIN_LABELLED_ROWS: usize = 30;

/// How much each feature matters to the model: what a feature's change is weighted by.
///
/// The seam for section 2's attributions: when a window's mean |attribution| per feature is
/// known, build [`Importance::Attributions`] and pass it to [`causes`]; without one, `causes`
/// measures [`Importance::ErrorCorrelation`] on the window's labelled rows itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Importance {
    /// Per feature: mean |attribution| in the alert's window, and in the reference when it
    /// carried attributions. Weight: the window's mean |attribution| over the largest one's;
    /// the relative change of the mean counts as a change of the feature.
    Attributions(BTreeMap<String, AttributionShift>),
    /// Per feature: its association with the error on the window's labelled rows, in [0, 1],
    /// and the measure (`correlation_ratio`: over a numeric feature's reference quintile bins,
    /// over a categorical one's values).
    ErrorCorrelation(BTreeMap<String, (f64, &'static str)>),
    /// Nothing to weigh with (too few labelled rows): every feature weighs 1.
    Unweighted,
}

/// A feature's mean |attribution| in the alert's window and in the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttributionShift {
    pub window: f64,
    pub reference: Option<f64>,
}

impl Importance {
    /// What the weights are: `attributions`, `error_correlation` or `none`.
    pub fn method(&self) -> &'static str {
        match self {
            Importance::Attributions(_) => "attributions",
            Importance::ErrorCorrelation(_) => "error_correlation",
            Importance::Unweighted => "none",
        }
    }

    /// A feature's weight in [0, 1] and the measure behind it; `None`: not measured (weight 0
    /// in the ranking, except for [`Importance::Unweighted`], where every weight is 1).
    pub fn weight(&self, feature: &str) -> Option<(f64, &'static str)> {
        match self {
            Importance::Attributions(m) => {
                let top = m.values().map(|a| a.window.abs()).fold(0.0, f64::max);
                m.get(feature).map(|a| {
                    (
                        if top > 0.0 { a.window.abs() / top } else { 0.0 },
                        "attribution",
                    )
                })
            }
            Importance::ErrorCorrelation(m) => m.get(feature).copied(),
            Importance::Unweighted => Some((1.0, "none")),
        }
    }

    /// The relative change of a feature's mean |attribution| against the reference's.
    pub fn attribution_change(&self, feature: &str) -> Option<f64> {
        let Importance::Attributions(m) = self else {
            return None;
        };
        let a = m.get(feature)?;
        let r = a.reference?;
        let scale = a.window.abs().max(r.abs());
        (scale > 0.0).then(|| ((a.window.abs() - r.abs()) / scale).abs())
    }
}

/// What [`causes`] looks at: the alert's window and the rule's metric.
#[derive(Debug, Clone)]
pub struct CausesQuery {
    pub window: Window,
    pub start: Timestamp,
    pub end: Timestamp,
    pub version: Option<String>,
    /// The rule's metric, as the vocabulary names it (`f1`, `accuracy`, ...).
    pub metric: String,
    /// The class a class-metric rule watches (`precision:<class>`): its slices are measured
    /// one-vs-rest for that class, not for the binary model's positive class.
    pub class: Option<String>,
}

/// An alert's likely causes (`causes` of the alert's JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Causes {
    pub computed_at: Timestamp,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    /// The metric the segments are measured with.
    pub metric: String,
    /// Labelled rows in the window, and how many of them were looked at.
    pub labelled_rows: u64,
    pub sampled_rows: u64,
    pub sample_cap: u64,
    /// What the features are weighted by: `error_correlation`, `attributions` or `none`.
    pub importance: String,
    /// Most likely first.
    pub features: Vec<FeatureCause>,
    /// Worst first.
    pub segments: Vec<SegmentCause>,
    pub min_segment_rows: u64,
    /// What could not be done, and substitutions made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Causes {
    /// Causes that could not be computed: empty lists and the reason as a note.
    pub fn unavailable(q: &CausesQuery, now: Timestamp, why: String) -> Causes {
        Causes {
            computed_at: now,
            window_start: q.start,
            window_end: q.end,
            metric: q.metric.clone(),
            labelled_rows: 0,
            sampled_rows: 0,
            sample_cap: SAMPLE_CAP as u64,
            importance: Importance::Unweighted.method().to_owned(),
            features: Vec::new(),
            segments: Vec::new(),
            min_segment_rows: slices::MIN_SEGMENT_ROWS,
            notes: vec![why],
        }
    }
}

/// One feature, why it is a likely cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureCause {
    pub feature: String,
    /// change × importance.
    pub score: f64,
    /// The largest of the drift distance, the null-rate change and the attribution change.
    pub change: f64,
    pub importance: Option<f64>,
    /// `correlation_ratio`, `attribution` or `none`.
    pub importance_measure: String,
    /// A numeric feature's Spearman rank correlation with the error (signed; for reading, not
    /// ranking: the error is seldom monotone in a feature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_spearman: Option<f64>,
    pub drifted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jensen_shannon: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_null_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution_change: Option<f64>,
    /// `amount: drift p=1e-12, PSI 0.8; importance 0.41 (Spearman with the error)`.
    pub reason: String,
}

/// One condition of a segment: a value, or a range `[low, high)` of a numeric feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentCondition {
    pub feature: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// One slice of the window's traffic where the metric is worse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentCause {
    /// `country = BR & amount ≥ 96.3`.
    pub segment: String,
    pub conditions: Vec<SegmentCondition>,
    pub value: f64,
    pub rows: u64,
    pub interval: Option<Interval>,
    /// The same slice in the reference, when it has enough rows there.
    pub reference_value: Option<f64>,
    pub reference_rows: u64,
    /// How much worse than the reference's slice (else the whole reference, else the window).
    pub drop: f64,
    /// The drop less 1.96 standard errors of the value: what the segments are ranked by.
    pub drop_lower_bound: f64,
}

/// A feature's value in a row, as the slices read it.
#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    Cat(String),
    Null,
}

fn val(v: Option<&FeatureValue>) -> Val {
    match v {
        None | Some(FeatureValue::Null) => Val::Null,
        Some(FeatureValue::Number(x)) if x.is_finite() => Val::Num(*x),
        Some(FeatureValue::Number(_)) => Val::Null,
        Some(FeatureValue::Bool(b)) => Val::Cat(b.to_string()),
        Some(FeatureValue::Text(s)) => Val::Cat(s.clone()),
    }
}

/// One labelled row: the features' values (in the order of the features looked at), its
/// confusion cell (classification) and its error (0/1, or |residual| for regression).
struct Row {
    values: Vec<Val>,
    cell: Option<Cell>,
    error: f64,
}

/// A feature looked at: name, numeric or not, its reference quintile edges.
struct Feature {
    name: String,
    numeric: bool,
    edges: Vec<f64>,
}

/// The confusion cell and error of one labelled row under `spec`; `None` when the row has no
/// usable prediction.
/// `class`: the class a class-metric rule watches, whose one-vs-rest cell is kept (a binary
/// model's negative class swaps the roles; a multiclass model's class is positive against
/// the others); the error is the row's either way.
fn judge(
    spec: &TaskSpec,
    class: Option<&str>,
    prediction: Option<&Outcome>,
    score: Option<f64>,
    scores: Option<&[(String, f64)]>,
    label: &Outcome,
) -> Option<(Option<Cell>, f64)> {
    match spec.task {
        Task::Binary => {
            let predicted =
                spec.predicted_positive(prediction, spec.binary_score(score, scores))?;
            let actual = label.with_class_key(|c| c == spec.positive());
            let error = Cell::of(predicted, actual).error();
            let cell = match class {
                Some(c) if c != spec.positive() => Cell::of(!predicted, !actual),
                _ => Cell::of(predicted, actual),
            };
            Some((Some(cell), error))
        }
        Task::Multiclass => {
            let predicted = match prediction {
                Some(p) => p.class_key(),
                None => crate::state::argmax(scores?)?.to_owned(),
            };
            let actual = label.class_key();
            let error = if predicted == actual { 0.0 } else { 1.0 };
            let cell = match class {
                Some(c) => Cell::of(predicted == c, actual == c),
                None if error == 0.0 => Cell::Tp,
                None => Cell::Fp,
            };
            Some((Some(cell), error))
        }
        Task::Regression => {
            let (t, p) = (label.as_f64()?, prediction.and_then(Outcome::as_f64)?);
            Some((None, (t - p).abs()))
        }
    }
}

fn row_of(
    features: &[Feature],
    index: &HashMap<&str, usize>,
    pairs: &[(modelwatch_core::FeatureName, FeatureValue)],
) -> Vec<Val> {
    let mut values = vec![Val::Null; features.len()];
    for (name, v) in pairs {
        if let Some(&i) = index.get(name.as_str()) {
            values[i] = val(Some(v));
        }
    }
    values
}

/// The reference's quantile edges for about `bins` bins: every other edge of the stored
/// profile's bins (deciles by default, so the quintiles `0.2 .. 0.8`; a discrete feature's
/// values). The stored profile keeps its edges, not the reference's values.
fn quantile_edges(detail: &ProfileDetail, bins: usize) -> Vec<f64> {
    let ProfileDetail::Numeric(np) = detail else {
        return Vec::new();
    };
    let edges = np.edges.edges();
    let step = (edges.len() + 1).div_ceil(bins.max(1)).max(1);
    edges
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % step == 0)
        .map(|(_, e)| *e)
        .collect()
}

/// Likely causes of a drop of `q.metric` in the window `[q.start, q.end)` of `model`.
/// `importance`: the weights to use (attributions); `None` measures the error correlation.
pub fn causes(
    store: &dyn Store,
    model: &ModelName,
    q: &CausesQuery,
    importance: Option<Importance>,
    now: Timestamp,
) -> Result<Causes, EngineError> {
    let mut notes = Vec::new();
    let reference = Reference::load(store, model, q.version.as_deref())?;
    let dq = DriftQuery {
        window: q.window,
        from: Some(q.start),
        to: Some(q.end),
        version: q.version.clone(),
        segment: None,
    };
    let drift = crate::drift::drift(store, model, &dq, &DriftConfig::default())?;
    let quality = crate::drift::quality(store, model, &dq, &QualityThresholds::default())?;
    let drift_of: HashMap<&str, &modelwatch_stats::drift::FeatureDrift> = drift
        .windows
        .iter()
        .flat_map(|w| w.features.iter())
        .map(|f| (f.feature.as_str(), f))
        .collect();
    let quality_of: HashMap<&str, &crate::drift::FeatureQuality> = quality
        .windows
        .iter()
        .flat_map(|w| w.features.iter())
        .map(|f| (f.feature.as_str(), f))
        .collect();
    let features: Vec<Feature> = reference
        .features
        .features
        .iter()
        .map(|f| Feature {
            name: f.name.clone(),
            numeric: matches!(f.detail, ProfileDetail::Numeric(_)),
            edges: quantile_edges(&f.detail, NUMERIC_BINS),
        })
        .collect();
    let index: HashMap<&str, usize> = features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();

    // The window's labelled rows: the SAMPLE_CAP whose request ids hash lowest.
    let range = ScanRange {
        from: Some(q.start),
        to: Some(q.end),
        version: q.version.clone(),
    };
    let (spec, _) = crate::performance::scan_spec(store, model, &range, None, None)?;
    let mut kept: LowestHash<Row> = LowestHash::new(SAMPLE_CAP, 0);
    let mut labelled = 0u64;
    store.scan_predictions(model, &range, &mut |p, l| {
        let Some(l) = l else { return };
        let Some((cell, error)) = judge(
            &spec,
            q.class.as_deref(),
            p.prediction.as_ref(),
            p.score,
            p.scores.as_deref(),
            &l.label,
        ) else {
            return;
        };
        labelled += 1;
        let version = p.model_version.as_deref().unwrap_or_default();
        kept.offer_with(&[&p.request_id, version], || Row {
            values: row_of(&features, &index, &p.features),
            cell,
            error,
        });
    })?;
    let rows = kept.into_items();

    // Importance: given, else measured on the window's labelled rows.
    let mut spearman_of: HashMap<String, f64> = HashMap::new();
    let importance = match importance {
        Some(i) => i,
        None if rows.len() >= MIN_LABELLED_ROWS => {
            let errors: Vec<f64> = rows.iter().map(|r| r.error).collect();
            let mut m = BTreeMap::new();
            for (i, f) in features.iter().enumerate() {
                // A numeric feature's error is rarely monotone in it (a model errs around its
                // decision boundary, not at the extremes): its correlation ratio over the
                // reference's quintile bins, like a category's over its values. Spearman's
                // rank correlation is reported beside it.
                let groups: Vec<u32> = if f.numeric {
                    let (x, y): (Vec<f64>, Vec<f64>) = rows
                        .iter()
                        .filter_map(|r| match r.values[i] {
                            Val::Num(v) => Some((v, r.error)),
                            _ => None,
                        })
                        .unzip();
                    if let Some(r) = slices::spearman(&x, &y) {
                        spearman_of.insert(f.name.clone(), r);
                    }
                    rows.iter()
                        .map(|r| match r.values[i] {
                            Val::Num(v) => f.edges.iter().filter(|e| **e <= v).count() as u32,
                            _ => f.edges.len() as u32 + 1,
                        })
                        .collect()
                } else {
                    let mut codes: HashMap<&str, u32> = HashMap::new();
                    rows.iter()
                        .map(|r| {
                            let key = match &r.values[i] {
                                Val::Cat(s) => s.as_str(),
                                _ => "(null)",
                            };
                            let next = codes.len() as u32;
                            *codes.entry(key).or_insert(next)
                        })
                        .collect()
                };
                let a =
                    slices::correlation_ratio(&groups, &errors).map(|e| (e, "correlation_ratio"));
                m.insert(f.name.clone(), a.unwrap_or((0.0, "correlation_ratio")));
            }
            Importance::ErrorCorrelation(m)
        }
        None => {
            notes.push(format!(
                "{} labelled rows in the window (fewer than {MIN_LABELLED_ROWS}): features are \
                 ranked by their change alone, and no segment is searched",
                rows.len()
            ));
            Importance::Unweighted
        }
    };

    // Features: change × importance.
    let mut ranked: Vec<FeatureCause> = features
        .iter()
        .map(|f| {
            let d = drift_of.get(f.name.as_str());
            let qf = quality_of.get(f.name.as_str());
            let js = d
                .and_then(|d| d.secondary.jensen_shannon)
                .filter(|x| x.is_finite());
            let psi = d.and_then(|d| d.secondary.psi).filter(|x| x.is_finite());
            let p = d.and_then(|d| d.p_value_adjusted.or(d.p_value));
            let drifted = d.is_some_and(|d| d.drifted);
            let null_change = qf.map(|q| (q.null_rate - q.reference_null_rate).abs());
            let attribution_change = importance.attribution_change(&f.name);
            let change = [js, null_change, attribution_change]
                .into_iter()
                .flatten()
                .fold(0.0, f64::max);
            let (weight, measure) = importance
                .weight(&f.name)
                .map_or((None, "none"), |(w, m)| (Some(w), m));
            let score = change * weight.unwrap_or(0.0);
            let mut why = Vec::new();
            if drifted || js.is_some_and(|x| x > 0.0) {
                let mut s = if drifted {
                    "drift".to_owned()
                } else {
                    "no drift".to_owned()
                };
                if let Some(p) = p {
                    s.push_str(&format!(" p={}", pval(p)));
                }
                if let Some(x) = psi {
                    s.push_str(&format!(", PSI {}", sig(x)));
                }
                why.push(s);
            }
            if let (Some(c), Some(q)) = (null_change, qf) {
                if c > 0.0 {
                    why.push(format!(
                        "null rate {} (reference {})",
                        sig(q.null_rate),
                        sig(q.reference_null_rate)
                    ));
                }
            }
            if let Some(a) = attribution_change {
                why.push(format!("attribution changed {} %", sig(a * 100.0)));
            }
            let mut reason = format!(
                "{}: {}",
                f.name,
                if why.is_empty() {
                    "no change".to_owned()
                } else {
                    why.join(", ")
                }
            );
            if let Some(w) = weight.filter(|_| measure != "none") {
                reason.push_str(&format!(
                    "; importance {} ({})",
                    sig(w),
                    match measure {
                        "correlation_ratio" => "correlation ratio with the error",
                        _ => "mean |attribution|",
                    }
                ));
            }
            FeatureCause {
                feature: f.name.clone(),
                score,
                change,
                importance: weight.filter(|_| measure != "none"),
                importance_measure: measure.to_owned(),
                error_spearman: spearman_of.get(&f.name).copied(),
                drifted,
                drift_p_value: p,
                psi,
                jensen_shannon: js,
                null_rate: qf.map(|q| q.null_rate),
                reference_null_rate: qf.map(|q| q.reference_null_rate),
                attribution_change,
                reason,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.change.total_cmp(&a.change))
            .then(a.feature.cmp(&b.feature))
    });

    // Segments.
    let metric = match (spec.task, SliceMetric::parse(&q.metric)) {
        (Task::Binary, Some(m)) => Some(m),
        // One class against the others: its precision, recall, F1 per slice.
        (Task::Multiclass, Some(m)) if q.class.is_some() => Some(m),
        (Task::Regression, _) => {
            notes.push("a regression model: segments are not searched".to_owned());
            None
        }
        (_, m) => {
            if m != Some(SliceMetric::Accuracy) {
                notes.push(format!(
                    "segments are compared on accuracy: {} cannot be measured per slice of a {} \
                     model's rows",
                    q.metric,
                    spec.task.as_str()
                ));
            }
            Some(SliceMetric::Accuracy)
        }
    };
    let mut segments = Vec::new();
    if let (Some(metric), true) = (metric, rows.len() >= MIN_LABELLED_ROWS) {
        // The features of highest score (then the rest in profile order).
        let chosen: Vec<usize> = ranked
            .iter()
            .take(MAX_SLICE_FEATURES)
            .filter_map(|c| index.get(c.feature.as_str()).copied())
            .collect();
        // Codes: numeric bins (and null last); categorical values by count in the window.
        let mut values_of: Vec<Vec<String>> = Vec::new();
        for &i in &chosen {
            let f = &features[i];
            if f.numeric {
                values_of.push(Vec::new());
                continue;
            }
            let mut counts: HashMap<String, u64> = HashMap::new();
            for r in &rows {
                *counts.entry(cat_key(&r.values[i])).or_default() += 1;
            }
            let mut v: Vec<(String, u64)> = counts.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(MAX_VALUES);
            values_of.push(v.into_iter().map(|(k, _)| k).collect());
        }
        let cardinality: Vec<u32> = chosen
            .iter()
            .zip(&values_of)
            .map(|(&i, v)| {
                if features[i].numeric {
                    features[i].edges.len() as u32 + 2
                } else {
                    v.len() as u32
                }
            })
            .collect();
        let code = |j: usize, v: &Val| -> u32 {
            let f = &features[chosen[j]];
            if f.numeric {
                match v {
                    Val::Num(x) => f.edges.iter().filter(|e| **e <= *x).count() as u32,
                    _ => f.edges.len() as u32 + 1,
                }
            } else {
                let k = cat_key(v);
                values_of[j]
                    .iter()
                    .position(|x| *x == k)
                    .map_or(NO_VALUE, |p| p as u32)
            }
        };
        let coded = |rows: &[Row]| -> (Vec<Vec<u32>>, Vec<Cell>) {
            let cols = (0..chosen.len())
                .map(|j| rows.iter().map(|r| code(j, &r.values[chosen[j]])).collect())
                .collect();
            (cols, rows.iter().filter_map(|r| r.cell).collect())
        };
        let (cols, cells) = coded(&rows);
        // The reference's labelled rows, coded the same way.
        let reference_rows: Vec<Row> = store
            .reference_rows(model, reference.version.as_deref())?
            .iter()
            .filter_map(|r| {
                let label = r.label.as_ref()?;
                let (cell, error) = judge(
                    &spec,
                    q.class.as_deref(),
                    r.prediction.as_ref(),
                    r.score,
                    r.scores.as_deref(),
                    label,
                )?;
                Some(Row {
                    values: row_of(&features, &index, &r.features),
                    cell,
                    error,
                })
            })
            .take(SAMPLE_CAP)
            .collect();
        if reference_rows.is_empty() {
            notes.push(
                "the reference has no labelled rows: segments are compared with the whole window"
                    .to_owned(),
            );
        }
        let (rcols, rcells) = coded(&reference_rows);
        let found = slices::search(&SliceSearch {
            window: CodedRows {
                columns: &cols,
                cells: &cells,
            },
            reference: (!reference_rows.is_empty()).then_some(CodedRows {
                columns: &rcols,
                cells: &rcells,
            }),
            cardinality: &cardinality,
            metric,
            min_rows: slices::MIN_SEGMENT_ROWS,
            max_results: MAX_SEGMENTS,
        });
        segments = found
            .into_iter()
            .map(|s| {
                let conditions: Vec<SegmentCondition> = s
                    .conditions
                    .iter()
                    .map(|&(j, c)| {
                        let f = &features[chosen[j]];
                        if f.numeric {
                            let c = c as usize;
                            if c > f.edges.len() {
                                SegmentCondition {
                                    feature: f.name.clone(),
                                    value: Some("(null)".into()),
                                    low: None,
                                    high: None,
                                }
                            } else {
                                SegmentCondition {
                                    feature: f.name.clone(),
                                    value: None,
                                    low: c.checked_sub(1).map(|k| f.edges[k]),
                                    high: f.edges.get(c).copied(),
                                }
                            }
                        } else {
                            SegmentCondition {
                                feature: f.name.clone(),
                                value: Some(values_of[j][c as usize].clone()),
                                low: None,
                                high: None,
                            }
                        }
                    })
                    .collect();
                SegmentCause {
                    segment: conditions
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(" & "),
                    conditions,
                    value: s.value,
                    rows: s.cells.n(),
                    interval: s.interval,
                    reference_value: s.reference_value,
                    reference_rows: s.reference_rows,
                    drop: s.drop,
                    drop_lower_bound: s.drop_lower_bound,
                }
            })
            .collect();
    }
    ranked.truncate(MAX_FEATURES);
    Ok(Causes {
        computed_at: now,
        window_start: q.start,
        window_end: q.end,
        metric: match (metric, &q.class) {
            (Some(m), Some(c)) if m != SliceMetric::Accuracy => format!("{}:{c}", m.as_str()),
            (m, _) => m.map_or(q.metric.clone(), |m| m.as_str().to_owned()),
        },
        labelled_rows: labelled,
        sampled_rows: rows.len() as u64,
        sample_cap: SAMPLE_CAP as u64,
        importance: importance.method().to_owned(),
        features: ranked,
        segments,
        min_segment_rows: slices::MIN_SEGMENT_ROWS,
        notes,
    })
}

fn cat_key(v: &Val) -> String {
    match v {
        Val::Cat(s) => s.clone(),
        Val::Num(x) => sig(*x),
        Val::Null => "(null)".to_owned(),
    }
}

/// `country = BR`, `amount ≥ 96.3`, `12 ≤ age < 40`.
pub fn describe(c: &SegmentCondition) -> String {
    match (&c.value, c.low, c.high) {
        (Some(v), _, _) => format!("{} = {v}", c.feature),
        (None, Some(l), Some(h)) => format!("{} ≤ {} < {}", sig(l), c.feature, sig(h)),
        (None, Some(l), None) => format!("{} ≥ {}", c.feature, sig(l)),
        (None, None, Some(h)) => format!("{} < {}", c.feature, sig(h)),
        (None, None, None) => c.feature.clone(),
    }
}

/// Three significant digits, no exponent for everyday numbers.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A p-value as `1e-12`, `0.003`, `0.41`.
fn pval(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.0e}")
    } else {
        sig(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A class-metric rule's slices are measured for its class: a binary model's negative
    /// class swaps the roles (it got the positive class's cells), a multiclass model's class is
    /// one against the others (it got accuracy); the error is the row's either way.
    #[test]
    fn a_class_metric_is_judged_one_vs_rest_for_its_class() {
        let spec = |task| TaskSpec {
            task,
            positive_class: Some("1".into()),
            negative_class: Some("0".into()),
            threshold: 0.5,
            decision: modelwatch_stats::perf::Decision::Prediction,
        };
        let n = |x: f64| Outcome::Number(x);
        let binary = spec(Task::Binary);
        // Predicted 0, labelled 1: a false negative for class 1, a false positive for class 0.
        let cell = |class| judge(&binary, class, Some(&n(0.0)), None, None, &n(1.0)).unwrap();
        assert_eq!(cell(None), (Some(Cell::Fn), 1.0));
        assert_eq!(cell(Some("1")), (Some(Cell::Fn), 1.0));
        assert_eq!(cell(Some("0")), (Some(Cell::Fp), 1.0));
        // Predicted 0, labelled 0: a true positive for class 0.
        let right = judge(&binary, Some("0"), Some(&n(0.0)), None, None, &n(0.0)).unwrap();
        assert_eq!(right, (Some(Cell::Tp), 0.0));

        let multi = spec(Task::Multiclass);
        let text = |s: &str| Outcome::Text(s.into());
        let cell = |class, p: &str, l: &str| {
            judge(&multi, class, Some(&text(p)), None, None, &text(l)).unwrap()
        };
        assert_eq!(cell(Some("cat"), "dog", "cat"), (Some(Cell::Fn), 1.0));
        assert_eq!(cell(Some("cat"), "cat", "dog"), (Some(Cell::Fp), 1.0));
        assert_eq!(cell(Some("cat"), "dog", "bird"), (Some(Cell::Tn), 1.0));
        assert_eq!(cell(Some("cat"), "cat", "cat"), (Some(Cell::Tp), 0.0));
        assert_eq!(cell(None, "dog", "bird"), (Some(Cell::Fp), 1.0));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(sig(96.345), "96.3");
        assert_eq!(sig(0.41234), "0.412");
        assert_eq!(sig(1234.25), "1234");
        assert_eq!(pval(1.2e-12), "1e-12");
        assert_eq!(pval(0.0412), "0.0412");
    }

    #[test]
    fn conditions_read_as_segments() {
        let c = |value: Option<&str>, low, high| SegmentCondition {
            feature: "amount".into(),
            value: value.map(str::to_owned),
            low,
            high,
        };
        assert_eq!(describe(&c(Some("BR"), None, None)), "amount = BR");
        assert_eq!(describe(&c(None, Some(96.3), None)), "amount ≥ 96.3");
        assert_eq!(describe(&c(None, Some(1.0), Some(2.5))), "1 ≤ amount < 2.5");
    }

    #[test]
    fn attributions_weigh_by_the_largest_and_count_their_change() {
        let m: BTreeMap<String, AttributionShift> = [
            (
                "amount".to_owned(),
                AttributionShift {
                    window: 0.4,
                    reference: Some(0.1),
                },
            ),
            (
                "age".to_owned(),
                AttributionShift {
                    window: 0.2,
                    reference: None,
                },
            ),
        ]
        .into();
        let i = Importance::Attributions(m);
        assert_eq!(i.weight("amount"), Some((1.0, "attribution")));
        assert_eq!(i.weight("age"), Some((0.5, "attribution")));
        assert_eq!(i.weight("country"), None);
        assert!((i.attribution_change("amount").unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(i.attribution_change("age"), None);
        assert_eq!(Importance::Unweighted.weight("x"), Some((1.0, "none")));
    }

    #[test]
    fn quintile_edges_follow_numpy() {
        // np.quantile(np.arange(1, 101), [0.2, 0.4, 0.6, 0.8]) = [20.8, 40.6, 60.4, 80.2]
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let f = modelwatch_stats::drift::FeatureProfile::build(
            "x",
            modelwatch_stats::drift::Column::Numeric(&values),
            &Default::default(),
        );
        let e = quantile_edges(&f.detail, 5);
        let want = [20.8, 40.6, 60.4, 80.2];
        assert!(
            e.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{e:?}"
        );
    }
}
