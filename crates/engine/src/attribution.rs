//! Attributions per window and per version: which features drive the model's predictions, and
//! whether that changed against the reference.
//!
//! A prediction may carry per-feature attributions (`"explanations": {"amount": 0.31, ...}`,
//! SHAP values or the like); a reference upload may carry them as `explanation.<feature>`
//! columns. Per window, per version and for the reference, each feature gets:
//! - `mean_abs`: the mean of |attribution| over the predictions that carry one for it (a
//!   prediction without an attribution of a feature is not counted as zero for it);
//! - `share`: its `mean_abs` over the sum of every feature's `mean_abs` in the same window, so
//!   that windows (and the reference) compare even when the attributions' scale moves;
//! - `rank`: 1 for the largest `mean_abs`, ties broken by feature name;
//! - against the reference (when it carries the feature's attributions): `share_change`
//!   (window share minus reference share: the value of the rule signal `attribution:<feature>`),
//!   and `drift`, the two-sample Kolmogorov-Smirnov test of the window's signed attributions
//!   against the reference's, on the reference's grid as `/drift` tests a numeric feature
//!   (`modelwatch_stats::drift::Grid`: exact when the reference has at most 256 distinct values
//!   of the attribution, a lower bound of the statistic otherwise), its p-values adjusted
//!   together over the whole reply (Benjamini-Hochberg) and `drifted` at 0.05.
//!
//! # How a query runs, and what it costs
//! One scan of the range's raw events (as `/fairness` or a `segment=` split of `/metrics`),
//! split over the cores; the reference's attributions are read from its stored rows. Each
//! prediction adds, per attribution it carries, to a sum, a count and one grid cell of its
//! window and of its version. The per-hour cache holds no attribution state, so the cost grows
//! with the range's predictions (docs/benchmarks.md has a figure per 1M rows); memory grows
//! with windows × features × the grid (about 4 KB per pair), not with rows.

use std::collections::{BTreeMap, HashMap};

use modelwatch_core::{ModelName, PredictionEvent, Timestamp, Window};
use modelwatch_stats::drift::{
    adjust_p_values, Column, Correction, FeatureProfile, Grid, GridCounts, KsPValueMethod,
    ProfileDetail, ProfileOptions,
};
use modelwatch_stats::exact::ExactSum;
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::reference::ReferenceInfo;

/// Significance level of `drifted`, after the correction.
pub const ALPHA: f64 = 0.05;
/// Features tracked per reply; attributions of later new feature names are not counted (the
/// ingest limit on features per row is of the same order).
pub const MAX_FEATURES: usize = 2_000;

/// What an attribution query covers.
#[derive(Debug, Clone)]
pub struct AttributionQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
}

/// The KS test of a feature's attributions in a window against the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttributionDrift {
    /// sup |F_ref − F_window| of the signed attributions.
    pub statistic: f64,
    pub p_value: f64,
    pub p_value_method: KsPValueMethod,
    /// `p_value` adjusted with every other test of the reply (Benjamini-Hochberg).
    pub p_value_adjusted: f64,
    /// `p_value_adjusted < 0.05`.
    pub drifted: bool,
}

/// One feature's attributions in a window, a version or the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureAttribution {
    pub feature: String,
    /// Predictions (or reference rows) carrying an attribution of this feature.
    pub count: u64,
    /// Mean of |attribution| over them.
    pub mean_abs: f64,
    /// Mean attribution, signed.
    pub mean: f64,
    /// `mean_abs` over the sum of every feature's `mean_abs` here.
    pub share: f64,
    /// 1 for the largest `mean_abs`.
    pub rank: u32,
    /// The reference's `share` of this feature, when the reference carries it (not on the
    /// reference's own rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_rank: Option<u32>,
    /// `share − reference_share`: the signal `attribution:<feature>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_change: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<AttributionDrift>,
}

/// The features of one window, largest `mean_abs` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    /// Predictions of the window carrying attributions.
    pub explained: u64,
    pub features: Vec<FeatureAttribution>,
}

/// The features of one version over the whole range, largest `mean_abs` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionVersion {
    /// Empty for predictions sent without a version.
    pub version: String,
    pub explained: u64,
    pub features: Vec<FeatureAttribution>,
}

/// The reference's attributions, largest `mean_abs` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceAttributions {
    /// Which reference (`version` null: the all-versions one) and its rows.
    #[serde(flatten)]
    pub info: ReferenceInfo,
    /// Reference rows carrying attributions.
    pub explained: u64,
    pub features: Vec<FeatureAttribution>,
}

/// The answer to `GET /v1/models/{model}/attributions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionReport {
    pub model: String,
    pub window: String,
    /// `ks`: the test behind each `drift`.
    pub test: String,
    pub correction: Correction,
    pub alpha: f64,
    /// `None` when the model has no reference, or its reference carries no attributions.
    pub reference: Option<ReferenceAttributions>,
    pub windows: Vec<AttributionWindow>,
    pub versions: Vec<AttributionVersion>,
}

/// Sums of one feature's attributions, and their counts on the reference's grid.
#[derive(Debug, Clone, Default)]
struct Acc {
    n: u64,
    /// Exact, so that a window's means do not depend on the order its rows were scanned in.
    sum: ExactSum,
    sum_abs: ExactSum,
    grid: Option<GridCounts>,
}

impl Acc {
    fn observe(&mut self, x: f64, grid: Option<&Grid>) {
        self.n += 1;
        self.sum.add(x);
        self.sum_abs.add(x.abs());
        if let Some(g) = grid {
            g.observe(self.grid.get_or_insert_with(|| g.counts()), x);
        }
    }

    fn merge(&mut self, o: &Acc) {
        self.n += o.n;
        self.sum.merge(&o.sum);
        self.sum_abs.merge(&o.sum_abs);
        match (&mut self.grid, &o.grid) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.grid = Some(b.clone()),
            _ => {}
        }
    }
}

/// Per feature (by name): its sums. Feature names are few and repeat on every row.
#[derive(Debug, Clone, Default)]
struct Group {
    explained: u64,
    features: BTreeMap<String, Acc>,
}

impl Group {
    fn observe(&mut self, p: &PredictionEvent, grids: &HashMap<String, Grid>) {
        self.explained += 1;
        for (name, x) in &p.explanations {
            let full = self.features.len() >= MAX_FEATURES;
            let acc = match self.features.get_mut(name.as_str()) {
                Some(a) => a,
                None if full => continue,
                None => self.features.entry(name.clone()).or_default(),
            };
            acc.observe(*x, grids.get(name.as_str()));
        }
    }

    fn merge(&mut self, o: &Group) {
        self.explained += o.explained;
        for (name, acc) in &o.features {
            let full = self.features.len() >= MAX_FEATURES;
            match self.features.get_mut(name) {
                Some(a) => a.merge(acc),
                None if full => {}
                None => {
                    self.features.insert(name.clone(), acc.clone());
                }
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Fold {
    windows: BTreeMap<Timestamp, Group>,
    versions: BTreeMap<String, Group>,
}

/// The reference's attributions: per feature its values' summary and the grid windows are
/// counted on.
struct Reference {
    info: ReferenceInfo,
    explained: u64,
    features: Vec<FeatureAttribution>,
    grids: HashMap<String, Grid>,
}

fn reference(
    store: &dyn Store,
    model: &ModelName,
    version: Option<&str>,
) -> Result<Option<Reference>, StoreError> {
    let (rows, info) = crate::reference::rows(store, model, version)?;
    let Some(info) = info else {
        return Ok(None);
    };
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut explained = 0;
    for r in &rows {
        if !r.explanations.is_empty() {
            explained += 1;
        }
        for (name, x) in &r.explanations {
            if values.len() < MAX_FEATURES || values.contains_key(name) {
                values.entry(name.clone()).or_default().push(*x);
            }
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    let mut group = Group {
        explained,
        ..Group::default()
    };
    let mut grids = HashMap::new();
    for (name, xs) in &values {
        let acc = group.features.entry(name.clone()).or_default();
        for &x in xs {
            acc.observe(x, None);
        }
        let profile = FeatureProfile::build(name, Column::Numeric(xs), &ProfileOptions::default());
        if let ProfileDetail::Numeric(np) = &profile.detail {
            grids.insert(name.clone(), Grid::of_profile(np));
        }
    }
    Ok(Some(Reference {
        info,
        explained,
        features: summarise(&group, None, &HashMap::new()),
        grids,
    }))
}

/// A group's features, largest `mean_abs` first, ranked, with their share; compared with the
/// reference's when given (`tests` collects each KS p-value, adjusted later).
fn summarise(
    group: &Group,
    reference: Option<&[FeatureAttribution]>,
    grids: &HashMap<String, Grid>,
) -> Vec<FeatureAttribution> {
    let total: f64 = group
        .features
        .values()
        .map(|a| a.sum_abs.value() / a.n as f64)
        .sum();
    let mut out: Vec<FeatureAttribution> = group
        .features
        .iter()
        .map(|(name, a)| {
            let mean_abs = a.sum_abs.value() / a.n as f64;
            let share = if total > 0.0 { mean_abs / total } else { 0.0 };
            let r = reference.and_then(|r| r.iter().find(|f| &f.feature == name));
            let drift = grids
                .get(name)
                .zip(a.grid.as_ref())
                .and_then(|(g, c)| g.ks(c))
                .map(|ks| AttributionDrift {
                    statistic: ks.statistic,
                    p_value: ks.p_value,
                    p_value_method: ks.method,
                    p_value_adjusted: ks.p_value,
                    drifted: false,
                });
            FeatureAttribution {
                feature: name.clone(),
                count: a.n,
                mean_abs,
                mean: a.sum.value() / a.n as f64,
                share,
                rank: 0,
                reference_share: r.map(|r| r.share),
                reference_rank: r.map(|r| r.rank),
                share_change: r.map(|r| share - r.share),
                drift,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.mean_abs
            .total_cmp(&a.mean_abs)
            .then_with(|| a.feature.cmp(&b.feature))
    });
    for (i, f) in out.iter_mut().enumerate() {
        f.rank = i as u32 + 1;
    }
    out
}

/// The attributions of `model`'s predictions in the query's range, per window and per version,
/// against the reference the query's version resolves to ([`crate::reference::rows`]).
pub fn attributions(
    store: &dyn Store,
    model: &ModelName,
    q: &AttributionQuery,
) -> Result<AttributionReport, EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let reference = reference(store, model, q.version.as_deref())?;
    let no_grids = HashMap::new();
    let grids = reference.as_ref().map_or(&no_grids, |r| &r.grids);
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let window = q.window;
    let parts = crate::performance::split_range(&range);
    let folded = modelwatch_stats::parallel::parallel_map(&parts, |part| {
        let mut fold = Fold::default();
        store.scan_predictions(model, part, &mut |p, _| {
            if p.explanations.is_empty() {
                return;
            }
            fold.windows
                .entry(window.start_of(p.timestamp))
                .or_default()
                .observe(p, grids);
            let version = p.model_version.as_deref().unwrap_or_default();
            match fold.versions.get_mut(version) {
                Some(g) => g.observe(p, grids),
                None => fold
                    .versions
                    .entry(version.to_owned())
                    .or_default()
                    .observe(p, grids),
            }
        })?;
        Ok::<_, EngineError>(fold)
    });
    let mut fold = Fold::default();
    for part in folded {
        let f = part?;
        for (start, g) in &f.windows {
            fold.windows.entry(*start).or_default().merge(g);
        }
        for (v, g) in &f.versions {
            fold.versions.entry(v.clone()).or_default().merge(g);
        }
    }
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let ref_features = reference.as_ref().map(|r| r.features.as_slice());
    let mut windows: Vec<AttributionWindow> = fold
        .windows
        .iter()
        .map(|(start, g)| {
            let end = Timestamp(start.0 + window.micros());
            AttributionWindow {
                start: *start,
                end,
                partial: crate::partial::is_partial(end, cutoff),
                explained: g.explained,
                features: summarise(g, ref_features, grids),
            }
        })
        .collect();
    let mut versions: Vec<AttributionVersion> = fold
        .versions
        .iter()
        .map(|(v, g)| AttributionVersion {
            version: v.clone(),
            explained: g.explained,
            features: summarise(g, ref_features, grids),
        })
        .collect();
    // Every test of the reply corrected together, windows and versions alike.
    let tests = windows
        .iter_mut()
        .flat_map(|w| w.features.iter_mut())
        .chain(versions.iter_mut().flat_map(|v| v.features.iter_mut()))
        .filter_map(|f| f.drift.as_mut());
    let mut tests: Vec<&mut AttributionDrift> = tests.collect();
    let p: Vec<f64> = tests.iter().map(|d| d.p_value).collect();
    for (d, adj) in tests
        .iter_mut()
        .zip(adjust_p_values(&p, Correction::BenjaminiHochberg))
    {
        d.p_value_adjusted = adj;
        d.drifted = adj < ALPHA;
    }
    Ok(AttributionReport {
        model: model.to_string(),
        window: window.label(),
        test: "ks".into(),
        correction: Correction::BenjaminiHochberg,
        alpha: ALPHA,
        reference: reference.map(|r| ReferenceAttributions {
            info: r.info,
            explained: r.explained,
            features: r.features,
        }),
        windows,
        versions,
    })
}

/// The `?format=csv` table: one row per (window, feature), then one per (version, feature)
/// with empty window cells, then the reference's with `scope` `reference`.
pub const CSV_COLUMNS: &str = "scope,window_start,window_end,partial,version,feature,count,\
mean_abs,mean,share,rank,reference_share,reference_rank,share_change,ks_statistic,p_value,\
p_value_adjusted,drifted";

/// An attribution report as one flat CSV table ([`CSV_COLUMNS`]); numbers in shortest
/// round-trip form, the JSON's bit for bit; a missing value is an empty cell.
pub fn attributions_csv(report: &AttributionReport) -> String {
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map(|x| x.to_string()).unwrap_or_default()
    }
    fn cell(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    }
    let mut out = String::from(CSV_COLUMNS);
    out.push('\n');
    let mut row = |head: [String; 5], f: &FeatureAttribution| {
        let d = f.drift.as_ref();
        let cells: Vec<String> = head
            .into_iter()
            .chain([
                cell(&f.feature),
                f.count.to_string(),
                f.mean_abs.to_string(),
                f.mean.to_string(),
                f.share.to_string(),
                f.rank.to_string(),
                opt(f.reference_share),
                opt(f.reference_rank),
                opt(f.share_change),
                opt(d.map(|d| d.statistic)),
                opt(d.map(|d| d.p_value)),
                opt(d.map(|d| d.p_value_adjusted)),
                opt(d.map(|d| d.drifted)),
            ])
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    };
    for w in &report.windows {
        for f in &w.features {
            let head = [
                "window".into(),
                w.start.to_rfc3339(),
                w.end.to_rfc3339(),
                w.partial.to_string(),
                String::new(),
            ];
            row(head, f);
        }
    }
    for v in &report.versions {
        for f in &v.features {
            let head = [
                "version".into(),
                String::new(),
                String::new(),
                String::new(),
                cell(&v.version),
            ];
            row(head, f);
        }
    }
    if let Some(r) = &report.reference {
        for f in &r.features {
            let head = [
                "reference".into(),
                String::new(),
                String::new(),
                String::new(),
                cell(r.info.version.as_deref().unwrap_or_default()),
            ];
            row(head, f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rows: &[&[(&str, f64)]]) -> Group {
        let mut g = Group::default();
        for r in rows {
            let p = PredictionEvent {
                request_id: "r".into(),
                timestamp: Timestamp(0),
                model_version: None,
                features: Vec::new(),
                prediction: None,
                score: None,
                scores: None,
                latency_ms: None,
                cost: None,
                error: None,
                tags: Vec::new(),
                explanations: r.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                role: modelwatch_core::Role::Served,
            };
            g.observe(&p, &HashMap::new());
        }
        g
    }

    #[test]
    fn features_are_ranked_by_mean_absolute_attribution_and_shares_sum_to_one() {
        let g = group(&[
            &[("amount", 0.5), ("country", -0.1), ("age", 0.2)],
            &[("amount", -0.3), ("country", -0.3)],
        ]);
        let f = summarise(&g, None, &HashMap::new());
        let names: Vec<&str> = f.iter().map(|f| f.feature.as_str()).collect();
        // amount 0.4, country 0.2, age 0.2 (one row: a missing attribution is not a zero);
        // the tie goes by name.
        assert_eq!(names, ["amount", "age", "country"]);
        assert_eq!(f[0].mean_abs, 0.4);
        assert_eq!(f[0].mean, (0.5 - 0.3) / 2.0);
        assert_eq!(f[1].count, 1);
        assert_eq!(f.iter().map(|f| f.rank).collect::<Vec<_>>(), [1, 2, 3]);
        let shares: f64 = f.iter().map(|f| f.share).sum();
        assert!((shares - 1.0).abs() < 1e-12);
        // Against a reference where country led.
        let r = summarise(
            &group(&[&[("amount", 0.1), ("country", 0.9)]]),
            None,
            &HashMap::new(),
        );
        let f = summarise(&g, Some(&r), &HashMap::new());
        assert_eq!(f[0].reference_rank, Some(2));
        assert!((f[0].share_change.unwrap() - (0.5 - 0.1)).abs() < 1e-12);
        assert_eq!(f[1].share_change, None, "age is not in the reference");
    }

    #[test]
    fn every_csv_row_has_a_cell_per_column() {
        let g = group(&[&[("a,b", 0.5)]]);
        let report = AttributionReport {
            model: "m".into(),
            window: "1h".into(),
            test: "ks".into(),
            correction: Correction::BenjaminiHochberg,
            alpha: ALPHA,
            reference: None,
            windows: vec![AttributionWindow {
                start: Timestamp(0),
                end: Timestamp(3_600_000_000),
                partial: false,
                explained: 1,
                features: summarise(&g, None, &HashMap::new()),
            }],
            versions: vec![],
        };
        let text = attributions_csv(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("\"a,b\""));
        assert_eq!(
            lines[1].replace("\"a,b\"", "x").split(',').count(),
            CSV_COLUMNS.split(',').count()
        );
    }
}
