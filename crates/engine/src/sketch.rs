//! The per-window drift state: a query's [`Reference`] (profiled once and stored, with the grids
//! and category indexes a window is counted on) and the mergeable [`WindowSketch`] of a
//! window's features, prediction, score and label. What the per-hour cache
//! ([`crate::aggregates`]) keeps and the queries ([`crate::drift`], [`crate::feedback`]) merge;
//! it knows neither.

use modelwatch_core::{
    FeatureKind as CoreKind, FeatureName, FeatureValue, ModelName, Outcome, ReferenceRow, Timestamp,
};
use modelwatch_stats::drift::{
    CategoryCounts, CategoryIndex, Column, FeatureKind, FeatureProfile, Grid, GridCounts,
    MissingCounts, ProfileDetail, ProfileOptions, ReferenceProfile, SortedReference,
};
use modelwatch_store::{AggregateWrite, ScanRange, Store, StoreError, StoredAggregate, MODEL_WIDE};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Name under which the prediction column is reported.
pub const PREDICTION_COLUMN: &str = "prediction";
/// Name under which the score column is reported.
pub const SCORE_COLUMN: &str = "score";
/// Name under which the label column is reported: the labels that have arrived for the
/// window's predictions (unlabelled predictions are `missing`, not null).
pub const LABEL_COLUMN: &str = "label";

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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    pub(crate) index: HashMap<String, usize>,
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
        features: &[(FeatureName, FeatureValue)],
        prediction: Option<&Outcome>,
        score: Option<f64>,
        label: Option<&Outcome>,
    ) {
        self.rows += 1;
        let columns = &mut self.features;
        let unexpected = &mut self.unexpected;
        match_features(
            features,
            &self.index,
            columns.len(),
            |i, v| columns[i].push(v),
            |name| *unexpected.entry(name.to_string()).or_default() += 1,
        );
        for col in &mut self.outputs {
            col.push(output_value(&col.name, prediction, score, label).as_ref());
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

/// The value an event gives an output column: its prediction or score (null when absent), or
/// its label (`None` while unlabelled: not counted as null).
/// Hands each of `columns` its value in an event's features: `value(i, Some(v))` for the
/// first feature named like column `i` (a repeated name is ignored), `value(i, None)` for a
/// column the event lacks, and `unexpected(name)` for a feature no column has. Reference
/// columns and window sketches both count events this way.
fn match_features<'a>(
    features: &'a [(FeatureName, FeatureValue)],
    index: &HashMap<String, usize>,
    columns: usize,
    mut value: impl FnMut(usize, Option<&'a FeatureValue>),
    mut unexpected: impl FnMut(&'a str),
) {
    let mut seen = vec![false; columns];
    for (name, v) in features {
        match index.get(name.as_str()) {
            Some(&i) if !seen[i] => {
                seen[i] = true;
                value(i, Some(v));
            }
            Some(_) => {}
            None => unexpected(name.as_str()),
        }
    }
    for (i, seen) in seen.into_iter().enumerate() {
        if !seen {
            value(i, None);
        }
    }
}

fn output_value(
    column: &str,
    prediction: Option<&Outcome>,
    score: Option<f64>,
    label: Option<&Outcome>,
) -> Option<FeatureValue> {
    match column {
        PREDICTION_COLUMN => Some(prediction.map(outcome_value).unwrap_or(FeatureValue::Null)),
        SCORE_COLUMN => Some(
            score
                .map(FeatureValue::Number)
                .unwrap_or(FeatureValue::Null),
        ),
        _ => label.map(outcome_value),
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

/// Kind of the persisted reference profiles (one model-wide row per version with a reference;
/// version `""` for the all-versions one). The store deletes every kind starting with
/// `reference` when a reference is uploaded, so a profile never outlives its rows.
pub const PROFILE: &str = "reference-profile";

/// The reference of a query, profiled once and stored: drift never rescans the raw reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reference {
    /// The version whose reference this is; `None` for the all-versions reference.
    pub version: Option<String>,
    pub rows: u64,
    pub layout: Layout,
    pub features: ReferenceProfile,
    /// Profile of the prediction, score and label columns.
    pub outputs: ReferenceProfile,
    /// Per feature (then per output) column: its grid when numeric.
    pub(crate) feature_grids: Vec<Option<Grid>>,
    pub(crate) output_grids: Vec<Option<Grid>>,
    /// Identifies this profile: hour sketches built against another one are not used.
    pub stamp: u64,
    #[serde(skip)]
    pub(crate) index: HashMap<String, usize>,
    #[serde(skip)]
    feature_categories: Vec<Option<CategoryIndex>>,
    #[serde(skip)]
    output_categories: Vec<Option<CategoryIndex>>,
}

use crate::reference::ReferenceInfo;

fn grids(profile: &ReferenceProfile) -> Vec<Option<Grid>> {
    profile
        .features
        .iter()
        .map(|f| match &f.detail {
            ProfileDetail::Numeric(np) => Some(Grid::of_profile(np)),
            ProfileDetail::Categorical(_) => None,
        })
        .collect()
}

fn category_indexes(profile: &ReferenceProfile) -> Vec<Option<CategoryIndex>> {
    profile
        .features
        .iter()
        .map(|f| match &f.detail {
            ProfileDetail::Categorical(c) => Some(CategoryIndex::new(&c.categories)),
            ProfileDetail::Numeric(_) => None,
        })
        .collect()
}

/// The profile without its sorted reference values: the grids hold what drift on counts
/// needs, and the stored profile stays small (a few KiB per feature, not 16 bytes per value).
fn without_values(mut profile: ReferenceProfile) -> ReferenceProfile {
    for f in &mut profile.features {
        if let ProfileDetail::Numeric(np) = &mut f.detail {
            np.sorted = SortedReference::from_sorted(&[]);
        }
    }
    profile
}

/// FNV-1a: a stable fingerprint of the encoded profile.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
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
                if decided.contains(name.as_str()) {
                    continue;
                }
                let kind = kind_of(name).or_else(|| CoreKind::infer(v));
                if let Some(k) = kind {
                    decided.insert(name.to_string());
                    if let Some(k) = stats_kind(k) {
                        layout.features.push((name.to_string(), k));
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
        let (feature_grids, output_grids) = (grids(&features), grids(&outputs));
        let mut r = Reference {
            version,
            rows: columns.rows,
            layout,
            feature_grids,
            output_grids,
            features: without_values(features),
            outputs: without_values(outputs),
            stamp: 0,
            index: HashMap::new(),
            feature_categories: Vec::new(),
            output_categories: Vec::new(),
        };
        r.stamp = fingerprint(&serde_json::to_vec(&r).expect("a reference encodes"));
        r.prepare();
        r
    }

    /// Rebuilds the lookup structures serialisation skips.
    fn prepare(&mut self) {
        self.features.prepare();
        self.outputs.prepare();
        self.index = self
            .layout
            .features
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        self.feature_categories = category_indexes(&self.features);
        self.output_categories = category_indexes(&self.outputs);
    }

    /// The stored profile of `version`'s own reference (`None`: the all-versions one).
    fn stored(
        store: &dyn Store,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Option<Reference>, EngineError> {
        let key = version.unwrap_or("");
        let range = ScanRange {
            version: Some(key.to_owned()),
            ..ScanRange::default()
        };
        let Some(row) = store.aggregates(model, PROFILE, &range)?.into_iter().next() else {
            return Ok(None);
        };
        // JSON, not postcard: the profile's enums are internally tagged, which postcard cannot
        // read back.
        match serde_json::from_slice::<Reference>(&row.data) {
            Ok(mut r) => {
                r.prepare();
                Ok(Some(r))
            }
            Err(e) => {
                tracing::warn!(model = %model, error = %e, "stored reference profile unreadable: rebuilding it");
                Ok(None)
            }
        }
    }

    /// Profiles `version`'s own reference rows (`None`: the all-versions ones) and stores the
    /// profile; `None` when there are no such rows.
    fn build(
        store: &dyn Store,
        model: &ModelName,
        version: Option<&str>,
        kind_of: &dyn Fn(&str) -> Option<CoreKind>,
    ) -> Result<Option<Reference>, EngineError> {
        let rows = store.reference_rows(model, version)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let r = Reference::from_rows(&rows, version.map(str::to_owned), kind_of);
        store.put_aggregates(
            model,
            AggregateWrite {
                kind: PROFILE.into(),
                put: vec![StoredAggregate {
                    version: version.unwrap_or("").to_owned(),
                    hour: MODEL_WIDE,
                    data: serde_json::to_vec(&r).expect("a reference encodes"),
                }],
                ..AggregateWrite::default()
            },
        )?;
        Ok(Some(r))
    }

    /// The stored reference: the version's when `version` has one, else the all-versions one;
    /// for all versions without an all-versions reference, the one uploaded last (see
    /// [`crate::reference`]). Profiles the rows (once per upload) when no profile is stored yet.
    pub fn load(
        store: &dyn Store,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Reference, EngineError> {
        let version = version.filter(|v| !v.is_empty());
        // The common case reads one small row: no model summary, no reference rows.
        if let Some(v) = version {
            if let Some(r) = Reference::stored(store, model, Some(v))? {
                return Ok(r);
            }
        } else if let Some(r) = Reference::stored(store, model, None)? {
            return Ok(r);
        }
        if version.is_none() {
            // No all-versions profile stored: the reference version-less queries use, which
            // may be one version's (two small reads once it was chosen).
            match crate::reference::for_all_versions(store, model)? {
                Some(ReferenceInfo {
                    version: Some(v), ..
                }) => {
                    if let Some(r) = Reference::stored(store, model, Some(&v))? {
                        return Ok(r);
                    }
                    let summary = store
                        .model(model)?
                        .ok_or_else(|| StoreError::ModelNotFound(model.as_str().to_string()))?;
                    let kind_of = |n: &str| summary.schema.kind_of(n);
                    if let Some(r) = Reference::build(store, model, Some(&v), &kind_of)? {
                        return Ok(r);
                    }
                }
                Some(ReferenceInfo { version: None, .. }) => {}
                None => {
                    return Err(EngineError::NoReference {
                        model: model.as_str().to_string(),
                    })
                }
            }
        }
        let summary = store
            .model(model)?
            .ok_or_else(|| StoreError::ModelNotFound(model.as_str().to_string()))?;
        let kind_of = |n: &str| summary.schema.kind_of(n);
        if let Some(v) = version {
            if let Some(r) = Reference::build(store, model, Some(v), &kind_of)? {
                return Ok(r);
            }
            if let Some(r) = Reference::stored(store, model, None)? {
                return Ok(r);
            }
        }
        Reference::build(store, model, None, &kind_of)?.ok_or_else(|| EngineError::NoReference {
            model: model.as_str().to_string(),
        })
    }

    /// The reference of version-less queries, if the model has one (what hour sketches are
    /// built against): the all-versions one, else the one uploaded last for a version.
    pub fn load_default(
        store: &dyn Store,
        model: &ModelName,
    ) -> Result<Option<Reference>, EngineError> {
        match Reference::load(store, model, None) {
            Ok(r) => Ok(Some(r)),
            Err(EngineError::NoReference { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn info(&self) -> ReferenceInfo {
        ReferenceInfo {
            version: self.version.clone(),
            rows: self.rows,
        }
    }

    /// The numeric grid of feature `i`.
    pub fn feature_grid(&self, i: usize) -> Option<&Grid> {
        self.feature_grids.get(i).and_then(Option::as_ref)
    }
}

// ---------------------------------------------------------------------------------------------
// Window sketches

/// Most distinct unseen categories a column's sketch names; further ones are counted together
/// (a category explosion must not grow the state without bound).
pub const MAX_UNSEEN: usize = 1000;

/// Adds `n` to `key`'s count; a new key only while the map has fewer than [`MAX_UNSEEN`].
/// False when the key was left out.
fn add_capped(map: &mut BTreeMap<String, u64>, key: &str, n: u64) -> bool {
    if let Some(c) = map.get_mut(key) {
        *c += n;
    } else if map.len() < MAX_UNSEEN {
        map.insert(key.to_owned(), n);
    } else {
        return false;
    }
    true
}

/// One column of a [`WindowSketch`]: counts, never values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ColumnCounts {
    /// Events without this column.
    pub missing: u64,
    /// Values of another kind than the reference's.
    pub type_mismatches: u64,
    pub nulls: u64,
    pub nan: u64,
    pub inf: u64,
    /// Numeric columns: the finite values on the reference's grid.
    pub numeric: Option<GridCounts>,
    /// Discrete numeric columns: the distinct values that are not grid points (bit patterns,
    /// at most [`MAX_UNSEEN`]), so that new values are counted one by one, as categories are.
    pub off_grid: Option<std::collections::BTreeSet<u64>>,
    /// Distinct off-grid values beyond [`MAX_UNSEEN`] were seen.
    pub off_grid_overflow: bool,
    /// Categorical and boolean columns: count per reference category, in its order.
    pub categories: Vec<u64>,
    /// Categories the reference never had, by name (at most [`MAX_UNSEEN`]).
    pub unseen: BTreeMap<String, u64>,
    /// Rows of unseen categories beyond [`MAX_UNSEEN`].
    pub unseen_overflow: u64,
}

impl ColumnCounts {
    fn new(fp: &FeatureProfile, grid: Option<&Grid>) -> ColumnCounts {
        let discrete = matches!(&fp.detail, ProfileDetail::Numeric(np) if np.discrete);
        ColumnCounts {
            numeric: grid.map(Grid::counts),
            off_grid: discrete.then(std::collections::BTreeSet::new),
            categories: match &fp.detail {
                ProfileDetail::Categorical(c) => vec![0; c.categories.len()],
                ProfileDetail::Numeric(_) => Vec::new(),
            },
            ..ColumnCounts::default()
        }
    }

    fn observe(
        &mut self,
        v: Option<&FeatureValue>,
        grid: Option<&Grid>,
        cats: Option<&CategoryIndex>,
    ) {
        let Some(v) = v else {
            self.missing += 1;
            return;
        };
        match (v, grid, cats) {
            (FeatureValue::Null, _, _) => self.nulls += 1,
            (FeatureValue::Number(x), Some(g), _) => {
                if x.is_nan() {
                    self.nan += 1;
                } else if x.is_infinite() {
                    self.inf += 1;
                } else if let Some(c) = self.numeric.as_mut() {
                    g.observe(c, *x);
                    if self.off_grid.is_some()
                        && g.points().binary_search_by(|p| p.total_cmp(x)).is_err()
                    {
                        self.add_off_grid(x.to_bits());
                    }
                }
            }
            (FeatureValue::Text(t), None, Some(ix)) => self.category(t, ix),
            (FeatureValue::Bool(b), None, Some(ix)) => {
                self.category(if *b { "true" } else { "false" }, ix)
            }
            _ => self.type_mismatches += 1,
        }
    }

    fn category(&mut self, value: &str, ix: &CategoryIndex) {
        match ix.get(value) {
            Some(i) => self.categories[i] += 1,
            None => self.add_unseen(value, 1),
        }
    }

    /// `n` rows of the unseen category `value`; beyond [`MAX_UNSEEN`] names, counted together.
    fn add_unseen(&mut self, value: &str, n: u64) {
        if !add_capped(&mut self.unseen, value, n) {
            self.unseen_overflow += n;
        }
    }

    /// One distinct off-grid value (its bit pattern), up to [`MAX_UNSEEN`] of them.
    fn add_off_grid(&mut self, bits: u64) {
        let Some(set) = self.off_grid.as_mut() else {
            return;
        };
        if set.len() < MAX_UNSEEN {
            set.insert(bits);
        } else if !set.contains(&bits) {
            self.off_grid_overflow = true;
        }
    }

    fn merge(&mut self, o: &ColumnCounts) {
        self.missing += o.missing;
        self.type_mismatches += o.type_mismatches;
        self.nulls += o.nulls;
        self.nan += o.nan;
        self.inf += o.inf;
        if let (Some(a), Some(b)) = (self.numeric.as_mut(), o.numeric.as_ref()) {
            a.merge(b);
        }
        for (a, b) in self.categories.iter_mut().zip(&o.categories) {
            *a += b;
        }
        for (k, v) in &o.unseen {
            self.add_unseen(k, *v);
        }
        self.unseen_overflow += o.unseen_overflow;
        for v in o.off_grid.iter().flatten() {
            self.add_off_grid(*v);
        }
        self.off_grid_overflow |= o.off_grid_overflow;
    }

    /// Rows, nulls and non-finite values as the drift tests count them.
    pub fn missing_counts(&self) -> MissingCounts {
        let finite = self.numeric.as_ref().map_or(0, |c| c.n);
        let categorised: u64 = self.categories.iter().sum::<u64>()
            + self.unseen.values().sum::<u64>()
            + self.unseen_overflow;
        MissingCounts {
            rows: self.nulls + self.nan + self.inf + finite + categorised,
            nulls: self.nulls + self.nan,
            non_finite: self.inf,
        }
    }

    /// The categorical counts as the drift tests take them (overflowing unseen categories as
    /// one more category).
    pub fn category_counts(&self) -> CategoryCounts {
        let mut unseen: Vec<(String, u64)> =
            self.unseen.iter().map(|(k, v)| (k.clone(), *v)).collect();
        if self.unseen_overflow > 0 {
            unseen.push(("(other unseen)".to_owned(), self.unseen_overflow));
        }
        CategoryCounts {
            counts: self.categories.clone(),
            unseen,
        }
    }

    /// Valid (non-null, finite) values.
    pub fn valid(&self) -> u64 {
        let m = self.missing_counts();
        m.rows - m.nulls - m.non_finite
    }
}

/// A window's counts of the reference's columns: what drift and quality need, kept per
/// (version, hour) and merged into any whole-hour window. Its size depends on the reference,
/// not on the number of events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowSketch {
    /// [`WindowSketch::stamp_for`] the reference it was built against.
    pub stamp: u64,
    pub rows: u64,
    pub features: Vec<ColumnCounts>,
    /// Prediction, score and label, when the reference has them.
    pub outputs: Vec<ColumnCounts>,
    /// Features of the events that the reference does not have, with their event counts.
    pub unexpected: BTreeMap<String, u64>,
}

/// The layout of a stored [`WindowSketch`], mixed into its stamp ([`WindowSketch::stamp_for`]) so
/// that sketches stored in another layout count as built against another reference and are
/// rebuilt: 1, exact area sums in [`GridCounts`] (before, plain `f64` sums, whose last digits
/// followed the order of the scan).
const SKETCH_LAYOUT: u64 = 1;

impl WindowSketch {
    /// The stamp of the sketches built against `reference` in this layout.
    pub fn stamp_for(reference: &Reference) -> u64 {
        crate::aggregates::layout_stamp(reference.stamp, SKETCH_LAYOUT)
    }

    pub fn new(reference: &Reference) -> WindowSketch {
        let cols = |p: &ReferenceProfile, g: &[Option<Grid>]| -> Vec<ColumnCounts> {
            p.features
                .iter()
                .zip(g)
                .map(|(fp, g)| ColumnCounts::new(fp, g.as_ref()))
                .collect()
        };
        WindowSketch {
            stamp: WindowSketch::stamp_for(reference),
            rows: 0,
            features: cols(&reference.features, &reference.feature_grids),
            outputs: cols(&reference.outputs, &reference.output_grids),
            unexpected: BTreeMap::new(),
        }
    }

    /// Adds one event: its features, prediction, score and label (`None`: not labelled yet).
    pub fn push(
        &mut self,
        reference: &Reference,
        features: &[(FeatureName, FeatureValue)],
        prediction: Option<&Outcome>,
        score: Option<f64>,
        label: Option<&Outcome>,
    ) {
        self.rows += 1;
        let columns = &mut self.features;
        let unexpected = &mut self.unexpected;
        match_features(
            features,
            &reference.index,
            columns.len(),
            |i, v| {
                columns[i].observe(
                    v,
                    reference.feature_grids[i].as_ref(),
                    reference.feature_categories[i].as_ref(),
                )
            },
            |name| {
                add_capped(unexpected, name, 1);
            },
        );
        for (i, fp) in reference.outputs.features.iter().enumerate() {
            let v = output_value(&fp.name, prediction, score, label);
            self.outputs[i].observe(
                v.as_ref(),
                reference.output_grids[i].as_ref(),
                reference.output_categories[i].as_ref(),
            );
        }
    }

    /// Adds the first label of an event already pushed without one (a label delta): the label
    /// columns move it from "missing" to its value, the other columns are unchanged.
    pub fn add_late_label(&mut self, reference: &Reference, label: &Outcome) {
        for (i, fp) in reference.outputs.features.iter().enumerate() {
            // Prediction and score columns have a value (or null) whatever the label.
            if output_value(&fp.name, None, None, None).is_some() {
                continue;
            }
            let col = &mut self.outputs[i];
            debug_assert!(
                col.missing > 0,
                "a late label for an event counted labelled"
            );
            col.missing = col.missing.saturating_sub(1);
            col.observe(
                output_value(&fp.name, None, None, Some(label)).as_ref(),
                reference.output_grids[i].as_ref(),
                reference.output_categories[i].as_ref(),
            );
        }
    }

    /// Adds another window's counts (same reference).
    pub fn merge(&mut self, o: &WindowSketch) {
        self.rows += o.rows;
        for (a, b) in self.features.iter_mut().zip(&o.features) {
            a.merge(b);
        }
        for (a, b) in self.outputs.iter_mut().zip(&o.outputs) {
            a.merge(b);
        }
        for (k, v) in &o.unexpected {
            add_capped(&mut self.unexpected, k, *v);
        }
    }
}

/// One window of folded predictions.
#[derive(Debug, Clone)]
pub struct Windowed {
    pub start: Timestamp,
    pub end: Timestamp,
    pub sketch: WindowSketch,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored profile is read back as it was written (an unreadable one would be rebuilt
    /// from the reference rows on every request).
    #[test]
    fn a_stored_reference_reads_back() {
        let rows: Vec<ReferenceRow> = (0..500)
            .map(|i| ReferenceRow {
                features: vec![
                    ("amount".into(), FeatureValue::Number(i as f64 * 1.5)),
                    (
                        "country".into(),
                        FeatureValue::Text(["DE", "FR"][i % 2].into()),
                    ),
                    ("returning".into(), FeatureValue::Bool(i % 3 == 0)),
                ],
                prediction: Some(Outcome::Number((i % 2) as f64)),
                score: Some(i as f64 / 500.0),
                label: Some(Outcome::Number((i % 2) as f64)),
                ..Default::default()
            })
            .collect();
        let r = Reference::from_rows(&rows, None, |_| None);
        let bytes = serde_json::to_vec(&r).unwrap();
        let mut back: Reference = serde_json::from_slice(&bytes).unwrap();
        back.prepare();
        assert_eq!(back.stamp, r.stamp);
        assert_eq!(back.rows, 500);
        assert_eq!(back.index.len(), 3);
    }
}
