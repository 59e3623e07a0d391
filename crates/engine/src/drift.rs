//! Per-window drift and data quality against the reference.
//!
//! At query time: the reference rows of the model (the version's reference, else the one for
//! all versions) become a [`ReferenceProfile`]; the predictions of `[from, to)` are folded into
//! one [`WindowColumns`] per event-time window; each window is compared with the profile.
//! Whether the windows come from the per-hour sketches or a scan is [`crate::planner::drift`]'s
//! call.
//!
//! [`ReferenceProfile`]: modelwatch_stats::drift::ReferenceProfile
//!
//! - Drift ([`drift`]): one `modelwatch_stats::drift` verdict per feature and window, plus the
//!   prediction, score and label columns ([`PREDICTION_COLUMN`], [`SCORE_COLUMN`],
//!   [`LABEL_COLUMN`]) when the reference has them. The p-values of every (column, window) pair of one response are corrected
//!   together with Benjamini-Hochberg: a response of 20 features x 30 windows is one family of
//!   600 tests, so a longer time range does not make false alarms more likely.
//! - Quality ([`quality`]): counts per feature and window, each flagged against the reference
//!   by the thresholds of [`QualityThresholds`].
//!
//! Features of kind `text` are neither tested nor checked: free text has no distribution to
//! compare. Only the predictions (the events) are filtered by a [`Segment`]; the reference is
//! used whole.

use modelwatch_core::{ModelName, PredictionEvent, Timestamp, Window};
use modelwatch_stats::drift::{
    evaluate_feature_counts, Correction, DriftConfig, DriftReport, FeatureDrift, FeatureKind,
    FeatureProfile, Grid, ProfileDetail, WindowCounts,
};
use modelwatch_store::{ScanRange, Store};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::planner::Source;
use std::collections::BTreeMap;

/// The engine's error under the name drift callers know it by.
pub use crate::error::EngineError as DriftError;
pub use crate::query::{DriftQuery, Segment};
pub use crate::reference::ReferenceInfo;
pub use crate::sketch::{
    ColumnCounts, FeatureColumn, Layout, Reference, Values, WindowColumns, WindowSketch, Windowed,
    LABEL_COLUMN, MAX_UNSEEN, PREDICTION_COLUMN, PROFILE, SCORE_COLUMN,
};

/// Evaluates one column of a window against its profile.
fn evaluate_column(
    fp: &FeatureProfile,
    grid: Option<&Grid>,
    col: &ColumnCounts,
    config: &DriftConfig,
) -> FeatureDrift {
    let missing = col.missing_counts();
    match (grid, &col.numeric) {
        (Some(grid), Some(counts)) => evaluate_feature_counts(
            fp,
            Some(WindowCounts::Numeric {
                grid,
                counts,
                missing,
            }),
            config,
        ),
        _ => {
            let table = col.category_counts();
            evaluate_feature_counts(
                fp,
                Some(WindowCounts::Categorical {
                    table: &table,
                    missing,
                }),
                config,
            )
        }
    }
}

/// Folds the predictions of the query into window sketches against `reference`, in time order,
/// from the raw events. Only windows with at least one prediction are returned.
pub fn fold_windows(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    reference: &Reference,
) -> Result<Vec<Windowed>, EngineError> {
    let range = ScanRange {
        from: query.from,
        to: query.to,
        version: query.version.clone(),
    };
    let mut windows: BTreeMap<i64, WindowSketch> = BTreeMap::new();
    store.scan_predictions(model, &range, &mut |ev: &PredictionEvent, label| {
        if let Some(s) = &query.segment {
            if !s.matches(ev) {
                return;
            }
        }
        let start = query.window.start_of(ev.timestamp).0;
        windows
            .entry(start)
            .or_insert_with(|| WindowSketch::new(reference))
            .push(
                reference,
                &ev.features,
                ev.prediction.as_ref(),
                ev.score,
                label.map(|l| &l.label),
            );
    })?;
    Ok(windows
        .into_iter()
        .map(|(start, sketch)| Windowed {
            start: Timestamp(start),
            end: Timestamp(start + query.window.micros()),
            sketch,
        })
        .collect())
}

/// The windows of the query: merged from the per-hour sketches when they answer it (see
/// [`crate::planner::drift`] and [`crate::aggregates::drift_hours`]), else folded from the raw
/// events.
pub fn windows(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    reference: &Reference,
) -> Result<Vec<Windowed>, EngineError> {
    if crate::planner::drift(store, model, query, reference)? == Source::Hours {
        let range = ScanRange {
            from: query.from,
            to: query.to,
            version: query.version.clone(),
        };
        if let Some(w) =
            crate::aggregates::drift_hours(store, model, &range, query.window, reference)?
        {
            return Ok(w);
        }
    }
    fold_windows(store, model, query, reference)
}

// ---------------------------------------------------------------------------------------------
// Drift

/// The drift of one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowDrift {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    pub rows: u64,
    pub evaluated_features: usize,
    pub drifted_features: usize,
    pub share_drifted: f64,
    /// At least `drift_share` of the evaluated features drifted.
    pub dataset_drift: bool,
    pub features: Vec<FeatureDrift>,
}

/// The drift of the prediction, score and label columns in one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputWindowDrift {
    pub start: Timestamp,
    pub end: Timestamp,
    pub rows: u64,
    pub features: Vec<FeatureDrift>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictionDrift {
    /// Which of `prediction`, `score` and `label` the reference has (only those are compared).
    pub columns: Vec<String>,
    pub windows: Vec<OutputWindowDrift>,
}

/// `GET /v1/models/{model}/drift`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftResponse {
    pub model: String,
    pub window: String,
    pub reference: ReferenceInfo,
    /// Applied over every (column, window) p-value of this response at once.
    pub correction: Correction,
    pub alpha: f64,
    pub drift_share: f64,
    pub windows: Vec<WindowDrift>,
    pub prediction: PredictionDrift,
}

/// The query with its segment read against the model's features ([`Segment::for_features`]);
/// an error when the segment is a breakdown by value, which a comparison of one slice with the
/// reference (`report`) cannot answer.
pub(crate) fn one_slice(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    report: &'static str,
) -> Result<DriftQuery, EngineError> {
    let mut query = query.clone();
    if let Some(segment) = query.segment.take() {
        let segment = match store.model(model)? {
            Some(m) => segment.for_features(m.schema.features.iter().map(|f| f.name.as_str())),
            None => segment,
        };
        segment.slice(report)?;
        query.segment = Some(segment);
    }
    Ok(query)
}

/// Drift per window against the stored reference.
pub fn drift(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    config: &DriftConfig,
) -> Result<DriftResponse, EngineError> {
    let query = &one_slice(store, model, query, "drift")?;
    let reference = Reference::load(store, model, query.version.as_deref())?;
    let windows = windows(store, model, query, &reference)?;
    let mut response = drift_of_windows(model, query.window, &reference, &windows, config);
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    for w in &mut response.windows {
        w.partial = crate::partial::is_partial(w.end, cutoff);
    }
    Ok(response)
}

/// Drift of folded windows: every window's features and outputs evaluated, then corrected
/// together (see the module doc).
pub fn drift_of_windows(
    model: &ModelName,
    window: Window,
    reference: &Reference,
    windows: &[Windowed],
    config: &DriftConfig,
) -> DriftResponse {
    // Every (window, column) pair in one parallel pass: features of every window, then
    // outputs of every window, the order the correction and the response use.
    let mut pairs: Vec<(usize, bool, usize)> = Vec::new();
    for (wi, w) in windows.iter().enumerate() {
        pairs.extend((0..w.sketch.features.len()).map(|c| (wi, false, c)));
    }
    for (wi, w) in windows.iter().enumerate() {
        pairs.extend((0..w.sketch.outputs.len()).map(|c| (wi, true, c)));
    }
    let all = modelwatch_stats::parallel::parallel_map(&pairs, |&(wi, output, c)| {
        let sketch = &windows[wi].sketch;
        if output {
            evaluate_column(
                &reference.outputs.features[c],
                reference.output_grids[c].as_ref(),
                &sketch.outputs[c],
                config,
            )
        } else {
            evaluate_column(
                &reference.features.features[c],
                reference.feature_grids[c].as_ref(),
                &sketch.features[c],
                config,
            )
        }
    });
    let feature_counts: Vec<usize> = windows.iter().map(|w| w.sketch.features.len()).collect();
    let output_counts: Vec<usize> = windows.iter().map(|w| w.sketch.outputs.len()).collect();
    // One family: adjusted p-values and verdicts over the whole response.
    let corrected = DriftReport::from_features(all, config);
    let mut it = corrected.features.into_iter();
    let mut out = Vec::new();
    for (w, n) in windows.iter().zip(feature_counts) {
        let features: Vec<FeatureDrift> = it.by_ref().take(n).collect();
        // Shares from the verdicts corrected over the whole response; `from_features` on
        // this window alone would correct again, over this window only.
        let summary = modelwatch_stats::drift::DriftSummary::of(&features, config);
        out.push(WindowDrift {
            start: w.start,
            end: w.end,
            partial: false,
            rows: w.sketch.rows,
            evaluated_features: summary.evaluated,
            drifted_features: summary.drifted,
            share_drifted: summary.share,
            dataset_drift: summary.dataset_drift,
            features,
        });
    }
    let mut outputs = Vec::new();
    for (w, n) in windows.iter().zip(output_counts) {
        outputs.push(OutputWindowDrift {
            start: w.start,
            end: w.end,
            rows: w.sketch.rows,
            features: it.by_ref().take(n).collect(),
        });
    }
    DriftResponse {
        model: model.as_str().to_string(),
        window: window.label(),
        reference: reference.info(),
        correction: config.correction,
        alpha: config.alpha,
        drift_share: config.drift_share,
        windows: out,
        prediction: PredictionDrift {
            columns: reference
                .outputs
                .features
                .iter()
                .map(|f| f.name.clone())
                .collect(),
            windows: outputs,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Quality

/// When a quality check flags a feature in a window. Shares are of the window's events.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityThresholds {
    /// `null_rate`: null rate above the reference's plus this (0.1).
    pub null_rate_margin: f64,
    /// `non_finite`: NaN and infinite share above the reference's plus this (0.01).
    pub non_finite_margin: f64,
    /// `type_mismatch`: values of another kind than the reference's above this share (0).
    pub type_mismatch_share: f64,
    /// `missing`: events without the feature above this share (0.01).
    pub missing_share: f64,
    /// `out_of_range`: numeric values outside the reference [min, max] above this share (0.01).
    pub out_of_range_share: f64,
    /// `unseen_categories`: values never seen in the reference above this share (0.01).
    pub unseen_share: f64,
    /// `cardinality_growth`: distinct values above this multiple of the reference's (2), for
    /// categorical, boolean and discrete numeric features.
    pub cardinality_ratio: f64,
    /// `constant`: a single distinct value while the reference has several, with at least this
    /// many valid values in the window (30).
    pub constant_min_rows: u64,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            null_rate_margin: 0.1,
            non_finite_margin: 0.01,
            type_mismatch_share: 0.0,
            missing_share: 0.01,
            out_of_range_share: 0.01,
            unseen_share: 0.01,
            cardinality_ratio: 2.0,
            constant_min_rows: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutOfRange {
    pub count: u64,
    pub share: f64,
    pub reference_min: Option<f64>,
    pub reference_max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnseenCategories {
    /// Distinct unseen values.
    pub count: u64,
    /// Events with an unseen value.
    pub rows: u64,
    pub share: f64,
    /// The five most frequent unseen values with their counts.
    pub top: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureQuality {
    pub feature: String,
    pub kind: FeatureKind,
    /// Events in the window.
    pub rows: u64,
    pub nulls: u64,
    pub null_rate: f64,
    pub reference_null_rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nan: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inf: Option<u64>,
    pub type_mismatches: u64,
    /// Events without this feature.
    pub missing: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_range: Option<OutOfRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_categories: Option<UnseenCategories>,
    pub distinct: u64,
    pub reference_distinct: u64,
    /// `distinct / reference_distinct` (None when the reference has no value).
    pub cardinality_ratio: Option<f64>,
    /// One distinct valid value in the window.
    pub constant: bool,
    pub flags: Vec<std::borrow::Cow<'static, str>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnexpectedFeature {
    pub feature: String,
    /// Events of the window that carry it.
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowQuality {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    pub rows: u64,
    /// Features in the events that the reference does not have (schema drift).
    pub unexpected_features: Vec<UnexpectedFeature>,
    /// `unexpected_features` when there are any, and every feature's flags as `feature:flag`.
    pub flags: Vec<String>,
    pub features: Vec<FeatureQuality>,
}

/// `GET /v1/models/{model}/quality`. Rejected rows are not counted per window: the quarantine
/// keeps no event time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QualityResponse {
    pub model: String,
    pub window: String,
    pub reference: ReferenceInfo,
    pub thresholds: QualityThresholds,
    pub windows: Vec<WindowQuality>,
}

/// Data quality per window against the stored reference.
pub fn quality(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    thresholds: &QualityThresholds,
) -> Result<QualityResponse, EngineError> {
    let query = &one_slice(store, model, query, "quality")?;
    let reference = Reference::load(store, model, query.version.as_deref())?;
    let windows = windows(store, model, query, &reference)?;
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    Ok(QualityResponse {
        model: model.as_str().to_string(),
        window: query.window.label(),
        reference: reference.info(),
        thresholds: *thresholds,
        windows: windows
            .iter()
            .map(|w| {
                let mut q = window_quality(&reference, w, thresholds);
                q.partial = crate::partial::is_partial(q.end, cutoff);
                q
            })
            .collect(),
    })
}

/// Quality of one folded window.
pub fn window_quality(reference: &Reference, w: &Windowed, t: &QualityThresholds) -> WindowQuality {
    let features: Vec<FeatureQuality> = w
        .sketch
        .features
        .iter()
        .enumerate()
        .map(|(i, col)| {
            feature_quality(
                col,
                &reference.features.features[i],
                reference.feature_grid(i),
                w.sketch.rows,
                t,
            )
        })
        .collect();
    let unexpected_features: Vec<UnexpectedFeature> = w
        .sketch
        .unexpected
        .iter()
        .map(|(f, n)| UnexpectedFeature {
            feature: f.clone(),
            rows: *n,
        })
        .collect();
    let mut flags = Vec::new();
    if !unexpected_features.is_empty() {
        flags.push("unexpected_features".to_string());
    }
    for f in &features {
        flags.extend(f.flags.iter().map(|fl| format!("{}:{fl}", f.feature)));
    }
    WindowQuality {
        start: w.start,
        end: w.end,
        partial: false,
        rows: w.sketch.rows,
        unexpected_features,
        flags,
        features,
    }
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64
    }
}

fn feature_quality(
    col: &ColumnCounts,
    fp: &FeatureProfile,
    grid: Option<&Grid>,
    rows: u64,
    t: &QualityThresholds,
) -> FeatureQuality {
    let mut flags = Vec::new();
    let reference_null_rate = fp.missing.null_rate();
    let nulls = col.nulls;
    let (mut nan, mut inf) = (None, None);
    let mut out_of_range = None;
    let mut unseen_categories = None;
    let distinct: u64;
    let reference_distinct: u64;
    let mut discrete = true;
    match (&fp.detail, &col.numeric, grid) {
        (ProfileDetail::Numeric(np), Some(counts), Some(grid)) => {
            // Distinct values: each grid point hit, plus, for a discrete feature, every
            // off-grid value (up to MAX_UNSEEN, a lower bound beyond); for a continuous one,
            // one per gap with values between its points (a lower bound, reported only).
            let on_grid: u64 = counts.at_left.iter().filter(|&&at| at > 0).count() as u64;
            distinct = match (counts.min, counts.max, &col.off_grid) {
                (Some(a), Some(b), _) if a == b => 1,
                (_, _, Some(off)) => on_grid + off.len() as u64 + u64::from(col.off_grid_overflow),
                _ => counts
                    .count
                    .iter()
                    .zip(&counts.at_left)
                    .map(|(&c, &at)| u64::from(at > 0) + u64::from(c > at))
                    .sum(),
            };
            reference_distinct = np.distinct;
            discrete = np.discrete;
            if col.nan > 0 {
                nan = Some(col.nan);
            }
            if col.inf > 0 {
                inf = Some(col.inf);
            }
            let reference_non_finite = share(fp.missing.non_finite, fp.missing.rows);
            if share(col.nan + col.inf, rows) > reference_non_finite + t.non_finite_margin {
                flags.push("non_finite");
            }
            let out = grid.out_of_range(counts);
            let s = share(out, rows);
            if s > t.out_of_range_share {
                flags.push("out_of_range");
            }
            out_of_range = Some(OutOfRange {
                count: out,
                share: s,
                reference_min: np.min,
                reference_max: np.max,
            });
        }
        (ProfileDetail::Categorical(cp), _, _) => {
            let unseen_rows: u64 = col.unseen.values().sum::<u64>() + col.unseen_overflow;
            let count = col.unseen.len() as u64 + u64::from(col.unseen_overflow > 0);
            distinct = col.categories.iter().filter(|&&c| c > 0).count() as u64 + count;
            reference_distinct = cp.categories.len() as u64;
            let mut top: Vec<(String, u64)> =
                col.unseen.iter().map(|(k, v)| (k.clone(), *v)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            top.truncate(5);
            let s = share(unseen_rows, rows);
            if s > t.unseen_share {
                flags.push("unseen_categories");
            }
            unseen_categories = Some(UnseenCategories {
                count,
                rows: unseen_rows,
                share: s,
                top,
            });
        }
        (ProfileDetail::Numeric(np), _, _) => {
            // Not reachable: numeric columns always have a grid.
            distinct = 0;
            reference_distinct = np.distinct;
        }
    }
    let null_rate = share(nulls, rows);
    if null_rate > reference_null_rate + t.null_rate_margin {
        flags.push("null_rate");
    }
    if share(col.type_mismatches, rows) > t.type_mismatch_share {
        flags.push("type_mismatch");
    }
    if share(col.missing, rows) > t.missing_share {
        flags.push("missing");
    }
    let cardinality_ratio =
        (reference_distinct > 0).then(|| distinct as f64 / reference_distinct as f64);
    if discrete && cardinality_ratio.is_some_and(|r| r > t.cardinality_ratio) {
        flags.push("cardinality_growth");
    }
    let valid = col.valid();
    let constant = valid > 0 && distinct == 1;
    if constant && reference_distinct > 1 && valid >= t.constant_min_rows {
        flags.push("constant");
    }
    FeatureQuality {
        feature: fp.name.clone(),
        kind: fp.kind,
        rows,
        nulls,
        null_rate,
        reference_null_rate,
        nan,
        inf,
        type_mismatches: col.type_mismatches,
        missing: col.missing,
        out_of_range,
        unseen_categories,
        distinct,
        reference_distinct,
        cardinality_ratio,
        constant,
        flags: flags.into_iter().map(std::borrow::Cow::Borrowed).collect(),
    }
}
