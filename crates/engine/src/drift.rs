//! Per-window drift and data quality against the reference.
//!
//! At query time: the reference rows of the model (the version's reference, else the one for
//! all versions) become a [`ReferenceProfile`]; the predictions of `[from, to)` are folded into
//! one [`WindowColumns`] per event-time window; each window is compared with the profile.
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

use modelwatch_core::{
    FeatureKind as CoreKind, FeatureValue, ModelName, Outcome, PredictionEvent, ReferenceRow,
    Timestamp, Window,
};
use modelwatch_stats::drift::{
    evaluate_feature, parallel_map, Column, Correction, DriftConfig, DriftReport, FeatureDrift,
    FeatureKind, ProfileDetail, ProfileOptions, ReferenceProfile,
};
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Name under which the prediction column is reported.
pub const PREDICTION_COLUMN: &str = "prediction";
/// Name under which the score column is reported.
pub const SCORE_COLUMN: &str = "score";
/// Name under which the label column is reported: the labels that have arrived for the
/// window's predictions (unlabelled predictions are `missing`, not null).
pub const LABEL_COLUMN: &str = "label";

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("model `{model}` has no reference dataset: upload one with PUT /v1/models/{model}/reference")]
    NoReference { model: String },
    #[error("segment {0:?} is not valid: use feature:value, e.g. country:DE")]
    InvalidSegment(String),
}

/// `feature:value`: only events whose feature has this value.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub feature: String,
    pub value: String,
}

impl Segment {
    pub fn parse(s: &str) -> Result<Segment, DriftError> {
        match s.split_once(':') {
            Some((f, v)) if !f.trim().is_empty() => Ok(Segment {
                feature: f.trim().to_string(),
                value: v.to_string(),
            }),
            _ => Err(DriftError::InvalidSegment(s.to_string())),
        }
    }

    /// True when the event's feature equals the value: text exactly, numbers numerically
    /// (`age:30` matches 30.0), booleans as `true` / `false`.
    pub fn matches(&self, features: &[(String, FeatureValue)]) -> bool {
        let Some((_, v)) = features.iter().find(|(n, _)| *n == self.feature) else {
            return false;
        };
        match v {
            FeatureValue::Text(t) => *t == self.value,
            FeatureValue::Number(x) => self.value.trim().parse::<f64>().is_ok_and(|y| y == *x),
            FeatureValue::Bool(b) => self.value.trim() == if *b { "true" } else { "false" },
            FeatureValue::Null => self.value == "null",
        }
    }
}

/// What a drift or quality query covers.
#[derive(Debug, Clone)]
pub struct DriftQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// One version's predictions (and its reference when it has one).
    pub version: Option<String>,
    pub segment: Option<Segment>,
}

/// The values of one column, as the kind of its reference.
#[derive(Debug, Clone)]
pub enum Values {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
    Boolean(Vec<Option<bool>>),
}

impl Values {
    fn new(kind: FeatureKind) -> Values {
        match kind {
            FeatureKind::Numeric => Values::Numeric(Vec::new()),
            FeatureKind::Categorical => Values::Categorical(Vec::new()),
            FeatureKind::Boolean => Values::Boolean(Vec::new()),
        }
    }

    /// Appends `v` when it has the column's kind (or is null); false on a type mismatch.
    fn push(&mut self, v: &FeatureValue) -> bool {
        match (self, v) {
            (Values::Numeric(c), FeatureValue::Null) => c.push(None),
            (Values::Categorical(c), FeatureValue::Null) => c.push(None),
            (Values::Boolean(c), FeatureValue::Null) => c.push(None),
            (Values::Numeric(c), FeatureValue::Number(x)) => c.push(Some(*x)),
            (Values::Categorical(c), FeatureValue::Text(s)) => c.push(Some(s.clone())),
            (Values::Boolean(c), FeatureValue::Bool(b)) => c.push(Some(*b)),
            _ => return false,
        }
        true
    }

    fn len(&self) -> usize {
        match self {
            Values::Numeric(v) => v.len(),
            Values::Categorical(v) => v.len(),
            Values::Boolean(v) => v.len(),
        }
    }
}

/// One feature (or the prediction, or the score) of a window: its values and what did not fit.
#[derive(Debug, Clone)]
pub struct FeatureColumn {
    pub name: String,
    pub kind: FeatureKind,
    pub values: Values,
    /// Events without this feature.
    pub missing: u64,
    /// Values of another kind than the reference's (not in `values`).
    pub type_mismatches: u64,
}

impl FeatureColumn {
    fn new(name: &str, kind: FeatureKind) -> Self {
        FeatureColumn {
            name: name.to_string(),
            kind,
            values: Values::new(kind),
            missing: 0,
            type_mismatches: 0,
        }
    }

    fn push(&mut self, v: Option<&FeatureValue>) {
        match v {
            None => self.missing += 1,
            Some(v) => {
                if !self.values.push(v) {
                    self.type_mismatches += 1;
                }
            }
        }
    }

    /// Calls `f` with the values borrowed as a drift [`Column`].
    pub fn with_column<R>(&self, f: impl FnOnce(Column<'_>) -> R) -> R {
        match &self.values {
            Values::Numeric(v) => f(Column::NumericOpt(v)),
            Values::Boolean(v) => f(Column::Boolean(v)),
            Values::Categorical(v) => {
                let rows: Vec<Option<&str>> = v.iter().map(|s| s.as_deref()).collect();
                f(Column::Categorical(&rows))
            }
        }
    }
}

/// The columns a reference has, by kind: the layout every window is folded into.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub features: Vec<(String, FeatureKind)>,
    pub prediction: Option<FeatureKind>,
    pub score: bool,
    pub label: Option<FeatureKind>,
}

/// The rows of one window (or of the reference), column by column. Additive: a later store of
/// per-window aggregates can keep this shape and merge it.
#[derive(Debug, Clone)]
pub struct WindowColumns {
    pub rows: u64,
    pub features: Vec<FeatureColumn>,
    /// Prediction, score and label, when the reference has them.
    pub outputs: Vec<FeatureColumn>,
    /// Features of the events that the reference does not have, with their event counts.
    pub unexpected: BTreeMap<String, u64>,
    index: HashMap<String, usize>,
}

impl WindowColumns {
    pub fn new(layout: &Layout) -> Self {
        let mut outputs = Vec::new();
        if let Some(k) = layout.prediction {
            outputs.push(FeatureColumn::new(PREDICTION_COLUMN, k));
        }
        if layout.score {
            outputs.push(FeatureColumn::new(SCORE_COLUMN, FeatureKind::Numeric));
        }
        if let Some(k) = layout.label {
            outputs.push(FeatureColumn::new(LABEL_COLUMN, k));
        }
        WindowColumns {
            rows: 0,
            features: layout
                .features
                .iter()
                .map(|(n, k)| FeatureColumn::new(n, *k))
                .collect(),
            outputs,
            unexpected: BTreeMap::new(),
            index: layout
                .features
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), i))
                .collect(),
        }
    }

    /// Adds one row: its features, prediction, score and label (`None`: not labelled yet).
    pub fn push(
        &mut self,
        features: &[(String, FeatureValue)],
        prediction: Option<&Outcome>,
        score: Option<f64>,
        label: Option<&Outcome>,
    ) {
        self.rows += 1;
        let mut seen = vec![false; self.features.len()];
        for (name, v) in features {
            match self.index.get(name) {
                Some(&i) if !seen[i] => {
                    seen[i] = true;
                    self.features[i].push(Some(v));
                }
                Some(_) => {}
                None => *self.unexpected.entry(name.clone()).or_default() += 1,
            }
        }
        for (col, seen) in self.features.iter_mut().zip(seen) {
            if !seen {
                col.push(None);
            }
        }
        for col in &mut self.outputs {
            let v = match col.name.as_str() {
                PREDICTION_COLUMN => {
                    Some(prediction.map(outcome_value).unwrap_or(FeatureValue::Null))
                }
                SCORE_COLUMN => Some(
                    score
                        .map(FeatureValue::Number)
                        .unwrap_or(FeatureValue::Null),
                ),
                _ => label.map(outcome_value),
            };
            col.push(v.as_ref());
        }
    }

    /// Calls `f` with every feature column (or every output column) borrowed as a drift
    /// [`Column`], named.
    fn with_columns<R>(cols: &[FeatureColumn], f: impl FnOnce(&[(&str, Column<'_>)]) -> R) -> R {
        // Categorical columns need borrowed `&str`s: build them once for the call.
        let cats: Vec<Option<Vec<Option<&str>>>> = cols
            .iter()
            .map(|c| match &c.values {
                Values::Categorical(v) => Some(v.iter().map(|s| s.as_deref()).collect()),
                _ => None,
            })
            .collect();
        let columns: Vec<(&str, Column<'_>)> = cols
            .iter()
            .zip(&cats)
            .map(|(c, cat)| {
                let col = match (&c.values, cat) {
                    (Values::Numeric(v), _) => Column::NumericOpt(v),
                    (Values::Boolean(v), _) => Column::Boolean(v),
                    (Values::Categorical(_), Some(rows)) => Column::Categorical(rows),
                    (Values::Categorical(_), None) => unreachable!("built above"),
                };
                (c.name.as_str(), col)
            })
            .collect();
        f(&columns)
    }
}

fn outcome_value(o: &Outcome) -> FeatureValue {
    match o {
        Outcome::Bool(b) => FeatureValue::Bool(*b),
        Outcome::Number(x) => FeatureValue::Number(*x),
        Outcome::Text(s) => FeatureValue::Text(s.clone()),
    }
}

fn outcome_kind(o: &Outcome) -> FeatureKind {
    match o {
        Outcome::Bool(_) => FeatureKind::Boolean,
        Outcome::Number(_) => FeatureKind::Numeric,
        Outcome::Text(_) => FeatureKind::Categorical,
    }
}

fn stats_kind(k: CoreKind) -> Option<FeatureKind> {
    match k {
        CoreKind::Numeric => Some(FeatureKind::Numeric),
        CoreKind::Categorical => Some(FeatureKind::Categorical),
        CoreKind::Boolean => Some(FeatureKind::Boolean),
        CoreKind::Text => None,
    }
}

/// The reference of a query, profiled.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The version whose reference this is; `None` for the all-versions reference.
    pub version: Option<String>,
    pub layout: Layout,
    pub columns: WindowColumns,
    pub features: ReferenceProfile,
    /// Profile of the prediction, score and label columns.
    pub outputs: ReferenceProfile,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceInfo {
    pub version: Option<String>,
    pub rows: u64,
}

impl Reference {
    /// The layout and profile of reference rows; kinds come from `kind_of` (the model's schema)
    /// when it knows the feature, else from the first non-null value.
    pub fn from_rows(
        rows: &[ReferenceRow],
        version: Option<String>,
        kind_of: impl Fn(&str) -> Option<CoreKind>,
    ) -> Reference {
        let mut layout = Layout::default();
        let mut decided: HashSet<String> = HashSet::new();
        for r in rows {
            for (name, v) in &r.features {
                if decided.contains(name) {
                    continue;
                }
                let kind = kind_of(name).or_else(|| CoreKind::infer(v));
                if let Some(k) = kind {
                    decided.insert(name.clone());
                    if let Some(k) = stats_kind(k) {
                        layout.features.push((name.clone(), k));
                    }
                }
            }
            if layout.prediction.is_none() {
                layout.prediction = r.prediction.as_ref().map(outcome_kind);
            }
            if layout.label.is_none() {
                layout.label = r.label.as_ref().map(outcome_kind);
            }
            layout.score |= r.score.is_some();
        }
        let mut columns = WindowColumns::new(&layout);
        for r in rows {
            columns.push(
                &r.features,
                r.prediction.as_ref(),
                r.score,
                r.label.as_ref(),
            );
        }
        let options = ProfileOptions::default();
        let features =
            WindowColumns::with_columns(&columns.features, |c| ReferenceProfile::build(c, options));
        let outputs =
            WindowColumns::with_columns(&columns.outputs, |c| ReferenceProfile::build(c, options));
        Reference {
            version,
            layout,
            columns,
            features,
            outputs,
        }
    }

    /// The stored reference: the version's when `version` has one, else the all-versions one.
    pub fn load(
        store: &dyn Store,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Reference, DriftError> {
        let summary = store
            .model(model)?
            .ok_or_else(|| StoreError::ModelNotFound(model.as_str().to_string()))?;
        let mut rows = Vec::new();
        let mut found = None;
        if let Some(v) = version.filter(|v| !v.is_empty()) {
            rows = store.reference_rows(model, Some(v))?;
            if !rows.is_empty() {
                found = Some(v.to_string());
            }
        }
        if rows.is_empty() {
            rows = store.reference_rows(model, None)?;
        }
        if rows.is_empty() {
            return Err(DriftError::NoReference {
                model: model.as_str().to_string(),
            });
        }
        Ok(Reference::from_rows(&rows, found, |n| {
            summary.schema.kind_of(n)
        }))
    }

    pub fn info(&self) -> ReferenceInfo {
        ReferenceInfo {
            version: self.version.clone(),
            rows: self.columns.rows,
        }
    }
}

/// One window of folded predictions.
#[derive(Debug, Clone)]
pub struct Windowed {
    pub start: Timestamp,
    pub end: Timestamp,
    pub columns: WindowColumns,
}

/// Folds the predictions of the query into windows shaped like the reference, in time order.
/// Only windows with at least one prediction are returned.
pub fn fold_windows(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    layout: &Layout,
) -> Result<Vec<Windowed>, DriftError> {
    let range = ScanRange {
        from: query.from,
        to: query.to,
        version: query.version.clone(),
    };
    let mut windows: BTreeMap<i64, WindowColumns> = BTreeMap::new();
    store.scan_predictions(model, &range, &mut |ev: &PredictionEvent, label| {
        if let Some(s) = &query.segment {
            if !s.matches(&ev.features) {
                return;
            }
        }
        let start = query.window.start_of(ev.timestamp).0;
        windows
            .entry(start)
            .or_insert_with(|| WindowColumns::new(layout))
            .push(
                &ev.features,
                ev.prediction.as_ref(),
                ev.score,
                label.map(|l| &l.label),
            );
    })?;
    Ok(windows
        .into_iter()
        .map(|(start, columns)| Windowed {
            start: Timestamp(start),
            end: Timestamp(start + query.window.micros()),
            columns,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Drift

/// The drift of one window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowDrift {
    pub start: Timestamp,
    pub end: Timestamp,
    pub rows: u64,
    pub evaluated_features: usize,
    pub drifted_features: usize,
    pub share_drifted: f64,
    /// At least `drift_share` of the evaluated features drifted.
    pub dataset_drift: bool,
    pub features: Vec<FeatureDrift>,
}

/// The drift of the prediction, score and label columns in one window.
#[derive(Debug, Clone, Serialize)]
pub struct OutputWindowDrift {
    pub start: Timestamp,
    pub end: Timestamp,
    pub rows: u64,
    pub features: Vec<FeatureDrift>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PredictionDrift {
    /// Which of `prediction`, `score` and `label` the reference has (only those are compared).
    pub columns: Vec<String>,
    pub windows: Vec<OutputWindowDrift>,
}

/// `GET /v1/models/{model}/drift`.
#[derive(Debug, Clone, Serialize)]
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

/// Drift per window against the stored reference.
pub fn drift(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    config: &DriftConfig,
) -> Result<DriftResponse, DriftError> {
    let reference = Reference::load(store, model, query.version.as_deref())?;
    let windows = fold_windows(store, model, query, &reference.layout)?;
    Ok(drift_of_windows(
        model,
        query.window,
        &reference,
        &windows,
        config,
    ))
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
    let evaluate = |profile: &ReferenceProfile, cols: &[FeatureColumn]| -> Vec<FeatureDrift> {
        WindowColumns::with_columns(cols, |current| {
            parallel_map(&profile.features, |fp| {
                let col = current.iter().find(|(n, _)| *n == fp.name).map(|(_, c)| *c);
                evaluate_feature(fp, col, config)
            })
        })
    };
    let mut all = Vec::new();
    let mut feature_counts = Vec::new();
    let mut output_counts = Vec::new();
    for w in windows {
        let f = evaluate(&reference.features, &w.columns.features);
        feature_counts.push(f.len());
        all.extend(f);
    }
    for w in windows {
        let f = evaluate(&reference.outputs, &w.columns.outputs);
        output_counts.push(f.len());
        all.extend(f);
    }
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
            rows: w.columns.rows,
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
            rows: w.columns.rows,
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct OutOfRange {
    pub count: u64,
    pub share: f64,
    pub reference_min: Option<f64>,
    pub reference_max: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnseenCategories {
    /// Distinct unseen values.
    pub count: u64,
    /// Events with an unseen value.
    pub rows: u64,
    pub share: f64,
    /// The five most frequent unseen values with their counts.
    pub top: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize)]
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
    pub flags: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnexpectedFeature {
    pub feature: String,
    /// Events of the window that carry it.
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowQuality {
    pub start: Timestamp,
    pub end: Timestamp,
    pub rows: u64,
    /// Features in the events that the reference does not have (schema drift).
    pub unexpected_features: Vec<UnexpectedFeature>,
    /// `unexpected_features` when there are any, and every feature's flags as `feature:flag`.
    pub flags: Vec<String>,
    pub features: Vec<FeatureQuality>,
}

/// `GET /v1/models/{model}/quality`. Rejected rows are not counted per window: the quarantine
/// keeps no event time.
#[derive(Debug, Clone, Serialize)]
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
) -> Result<QualityResponse, DriftError> {
    let reference = Reference::load(store, model, query.version.as_deref())?;
    let windows = fold_windows(store, model, query, &reference.layout)?;
    Ok(QualityResponse {
        model: model.as_str().to_string(),
        window: query.window.label(),
        reference: reference.info(),
        thresholds: *thresholds,
        windows: windows
            .iter()
            .map(|w| window_quality(&reference, w, thresholds))
            .collect(),
    })
}

/// Quality of one folded window.
pub fn window_quality(reference: &Reference, w: &Windowed, t: &QualityThresholds) -> WindowQuality {
    let features: Vec<FeatureQuality> = w
        .columns
        .features
        .iter()
        .zip(&reference.features.features)
        .map(|(col, fp)| feature_quality(col, fp, w.columns.rows, t))
        .collect();
    let unexpected_features: Vec<UnexpectedFeature> = w
        .columns
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
        rows: w.columns.rows,
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
    col: &FeatureColumn,
    fp: &modelwatch_stats::drift::FeatureProfile,
    rows: u64,
    t: &QualityThresholds,
) -> FeatureQuality {
    let mut flags = Vec::new();
    let reference_null_rate = fp.missing.null_rate();
    let mut nulls = 0u64;
    let (mut nan, mut inf) = (None, None);
    let mut out_of_range = None;
    let mut unseen_categories = None;
    let distinct: u64;
    let reference_distinct: u64;
    let mut discrete = true;
    match (&col.values, &fp.detail) {
        (Values::Numeric(v), ProfileDetail::Numeric(np)) => {
            let (mut n_nan, mut n_inf, mut out) = (0u64, 0u64, 0u64);
            let mut seen = HashSet::new();
            for x in v {
                match x {
                    None => nulls += 1,
                    Some(x) if x.is_nan() => n_nan += 1,
                    Some(x) if x.is_infinite() => n_inf += 1,
                    Some(x) => {
                        seen.insert(x.to_bits());
                        let below = np.min.is_some_and(|m| *x < m);
                        let above = np.max.is_some_and(|m| *x > m);
                        if below || above {
                            out += 1;
                        }
                    }
                }
            }
            distinct = seen.len() as u64;
            reference_distinct = np.distinct;
            discrete = np.discrete;
            if n_nan > 0 {
                nan = Some(n_nan);
            }
            if n_inf > 0 {
                inf = Some(n_inf);
            }
            let reference_non_finite = share(fp.missing.non_finite, fp.missing.rows);
            if share(n_nan + n_inf, rows) > reference_non_finite + t.non_finite_margin {
                flags.push("non_finite");
            }
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
        (values, ProfileDetail::Categorical(cp)) => {
            let known: HashSet<&str> = cp.categories.iter().map(String::as_str).collect();
            let mut counts: HashMap<String, u64> = HashMap::new();
            let mut seen: HashSet<String> = HashSet::new();
            let mut note = |s: Option<String>| match s {
                None => nulls += 1,
                Some(s) => {
                    if !known.contains(s.as_str()) {
                        *counts.entry(s.clone()).or_default() += 1;
                    }
                    seen.insert(s);
                }
            };
            match values {
                Values::Categorical(v) => v.iter().for_each(|s| note(s.clone())),
                Values::Boolean(v) => v.iter().for_each(|b| note(b.map(|b| b.to_string()))),
                Values::Numeric(_) => {}
            }
            distinct = seen.len() as u64;
            reference_distinct = cp.categories.len() as u64;
            let unseen_rows: u64 = counts.values().sum();
            let mut top: Vec<(String, u64)> = counts.into_iter().collect();
            let count = top.len() as u64;
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
        (_, ProfileDetail::Numeric(np)) => {
            // Not reachable: columns take the reference's kind.
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
    let valid = col.values.len() as u64 - nulls - nan.unwrap_or(0) - inf.unwrap_or(0);
    let constant = valid > 0 && distinct == 1;
    if constant && reference_distinct > 1 && valid >= t.constant_min_rows {
        flags.push("constant");
    }
    FeatureQuality {
        feature: col.name.clone(),
        kind: col.kind,
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
        flags,
    }
}
