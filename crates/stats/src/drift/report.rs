//! Per-feature drift verdicts and the dataset-level report.
//!
//! The verdict rule (reasoned in `docs/adr/002-drift-test-choice.md`): a test method flags a
//! feature only when its p-value, adjusted for multiple testing, is below `alpha` AND an
//! effect size reaches a per-measure threshold. The p-value guards small samples against
//! noise; the effect size guards large samples against flagging differences too small to
//! matter (at a million rows every p-value is ~0). Distance-only methods (PSI, JS, ...) flag
//! on the distance alone.

use super::binning::{CategoryCounts, CategoryIndex};
use super::distance::{chi2_contingency, hellinger, jensen_shannon, kl_divergence, psi};
use super::grid::{Grid, GridCounts};
use super::ks::KsPValueMethod;
use super::profile::{
    categorical_values, numeric_values, Column, FeatureKind, FeatureProfile, MissingCounts,
    ProfileDetail, ReferenceProfile,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A drift test or distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Two-sample Kolmogorov-Smirnov on raw values (numeric). Effect: KS statistic.
    Ks,
    /// Chi-squared test on the 2 x k table of bin / category counts. Effect: JS distance.
    ChiSquared,
    /// Two-sample Cramér-von Mises on raw values (numeric; sorts the current sample).
    /// Effect: KS statistic.
    CramerVonMises,
    /// Population stability index on the bins (distance only).
    Psi,
    /// Jensen-Shannon distance, base 2, on the bins (distance only).
    JensenShannon,
    /// Hellinger distance on the bins (distance only).
    Hellinger,
    /// KL divergence KL(reference || current) on the bins (distance only).
    KlDivergence,
    /// Wasserstein distance divided by the reference standard deviation (numeric, distance
    /// only; Evidently's default for large numeric columns).
    WassersteinNormed,
}

impl Method {
    /// The method's name as serialised (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::ChiSquared => "chi_squared",
            Method::CramerVonMises => "cramer_von_mises",
            Method::Psi => "psi",
            Method::JensenShannon => "jensen_shannon",
            Method::Hellinger => "hellinger",
            Method::KlDivergence => "kl_divergence",
            Method::WassersteinNormed => "wasserstein_normed",
        }
    }

    /// True for methods with a p-value.
    pub fn is_test(self) -> bool {
        matches!(
            self,
            Method::Ks | Method::ChiSquared | Method::CramerVonMises
        )
    }

    /// The effect measure this method's verdict compares with its threshold.
    pub fn effect_measure(self) -> EffectMeasure {
        match self {
            Method::Ks | Method::CramerVonMises => EffectMeasure::KsStatistic,
            Method::ChiSquared | Method::JensenShannon => EffectMeasure::JensenShannon,
            Method::Psi => EffectMeasure::Psi,
            Method::Hellinger => EffectMeasure::Hellinger,
            Method::KlDivergence => EffectMeasure::KlDivergence,
            Method::WassersteinNormed => EffectMeasure::WassersteinNormed,
        }
    }
}

/// An effect-size measure (sample-size free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectMeasure {
    /// sup |F_ref - F_cur|.
    KsStatistic,
    /// Jensen-Shannon distance (base 2) on the bins.
    JensenShannon,
    /// PSI on the bins.
    Psi,
    /// Hellinger distance on the bins.
    Hellinger,
    /// KL(reference || current) on the bins.
    KlDivergence,
    /// Wasserstein distance / reference std.
    WassersteinNormed,
}

impl EffectMeasure {
    /// The measure's name as serialised (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            EffectMeasure::KsStatistic => "ks_statistic",
            EffectMeasure::JensenShannon => "jensen_shannon",
            EffectMeasure::Psi => "psi",
            EffectMeasure::Hellinger => "hellinger",
            EffectMeasure::KlDivergence => "kl_divergence",
            EffectMeasure::WassersteinNormed => "wasserstein_normed",
        }
    }
}

/// Effect-size thresholds: a feature drifts only if its effect reaches its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EffectThresholds {
    /// KS statistic (default 0.05: a 5-point gap between the CDFs, about a 0.12 sd shift).
    pub ks_statistic: f64,
    /// JS distance base 2 (default 0.05).
    pub jensen_shannon: f64,
    /// PSI (default 0.1, the usual "moderate shift" line).
    pub psi: f64,
    /// Hellinger distance (default 0.1, Evidently's).
    pub hellinger: f64,
    /// KL divergence (default 0.1, Evidently's).
    pub kl_divergence: f64,
    /// Normed Wasserstein (default 0.1, Evidently's).
    pub wasserstein_normed: f64,
}

impl Default for EffectThresholds {
    fn default() -> Self {
        Self {
            ks_statistic: 0.05,
            jensen_shannon: 0.05,
            psi: 0.1,
            hellinger: 0.1,
            kl_divergence: 0.1,
            wasserstein_normed: 0.1,
        }
    }
}

impl EffectThresholds {
    /// Threshold of one measure.
    pub fn get(&self, m: EffectMeasure) -> f64 {
        match m {
            EffectMeasure::KsStatistic => self.ks_statistic,
            EffectMeasure::JensenShannon => self.jensen_shannon,
            EffectMeasure::Psi => self.psi,
            EffectMeasure::Hellinger => self.hellinger,
            EffectMeasure::KlDivergence => self.kl_divergence,
            EffectMeasure::WassersteinNormed => self.wasserstein_normed,
        }
    }
}

/// Multiple-testing correction of p-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// No correction.
    None,
    /// Bonferroni: p * m, controls the family-wise error rate.
    Bonferroni,
    /// Benjamini-Hochberg step-up: controls the false discovery rate (default).
    BenjaminiHochberg,
}

/// Adjusts p-values for testing them together (features x windows x segments: pass all
/// of them at once). Output is in input order, each in [0, 1]; NaN inputs are treated as 1.
pub fn adjust_p_values(p: &[f64], correction: Correction) -> Vec<f64> {
    let m = p.len() as f64;
    let clean: Vec<f64> = p
        .iter()
        .map(|&x| if x.is_nan() { 1.0 } else { x.clamp(0.0, 1.0) })
        .collect();
    match correction {
        Correction::None => clean,
        Correction::Bonferroni => clean.iter().map(|x| (x * m).min(1.0)).collect(),
        Correction::BenjaminiHochberg => {
            let mut order: Vec<usize> = (0..clean.len()).collect();
            order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));
            let mut out = vec![1.0; clean.len()];
            let mut running = 1.0f64;
            for (rank, &i) in order.iter().enumerate().rev() {
                running = running.min(clean[i] * m / (rank + 1) as f64);
                out[i] = running.min(1.0);
            }
            out
        }
    }
}

/// Settings of a drift report. Unknown keys are errors when read from config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Significance level for test methods, after correction (default 0.05).
    pub alpha: f64,
    /// Correction across the features of one report (default Benjamini-Hochberg).
    pub correction: Correction,
    /// Effect-size thresholds.
    pub thresholds: EffectThresholds,
    /// Dataset drift when at least this share of evaluated features drifted (default 0.5,
    /// Evidently's).
    pub drift_share: f64,
    /// Fewer valid rows than this on either side gives `InsufficientData` (default 30).
    pub min_rows: u64,
    /// Method per feature name, replacing the automatic choice.
    pub overrides: BTreeMap<String, Method>,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            correction: Correction::BenjaminiHochberg,
            thresholds: EffectThresholds::default(),
            drift_share: 0.5,
            min_rows: 30,
            overrides: BTreeMap::new(),
        }
    }
}

/// The automatic method for a feature:
/// categorical and boolean -> chi-squared (2 x 2 with Yates' correction for booleans);
/// numeric with few distinct reference values (discrete) -> chi-squared on per-value bins;
/// other numeric -> Kolmogorov-Smirnov (exact p-value up to 10 000 rows per side,
/// asymptotic above). Sample size enters through the verdict rule (p-value AND effect size),
/// not through the method, so the verdict does not flip at an arbitrary row count.
pub fn auto_method(profile: &FeatureProfile) -> Method {
    match &profile.detail {
        ProfileDetail::Categorical(_) => Method::ChiSquared,
        ProfileDetail::Numeric(n) if n.discrete => Method::ChiSquared,
        ProfileDetail::Numeric(_) => Method::Ks,
    }
}

/// Why a feature has no verdict, or that it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum FeatureStatus {
    /// Tested; `drifted` holds the verdict.
    Evaluated,
    /// The current data has no valid value (empty, all null or non-finite).
    NoCurrentData,
    /// The reference has no valid value.
    NoReferenceData,
    /// Fewer valid rows than `min_rows` on one side.
    InsufficientData {
        /// Configured minimum.
        min_rows: u64,
    },
    /// The feature is in the reference but not in the current columns.
    MissingColumn,
    /// The current column's kind differs from the reference's.
    KindMismatch {
        /// Kind of the current column.
        current: FeatureKind,
    },
    /// The method is undefined here (e.g. normed Wasserstein on a constant reference).
    Undefined {
        /// Why.
        reason: String,
    },
}

impl FeatureStatus {
    /// The status's name as serialised (its `status` tag).
    pub fn name(&self) -> &'static str {
        match self {
            FeatureStatus::Evaluated => "evaluated",
            FeatureStatus::NoCurrentData => "no_current_data",
            FeatureStatus::NoReferenceData => "no_reference_data",
            FeatureStatus::InsufficientData { .. } => "insufficient_data",
            FeatureStatus::MissingColumn => "missing_column",
            FeatureStatus::KindMismatch { .. } => "kind_mismatch",
            FeatureStatus::Undefined { .. } => "undefined",
        }
    }
}

/// Secondary statistics, computed for every evaluated feature (None where undefined or
/// not applicable to the kind). Binned ones use the profile's bins (categories for
/// categorical features, unseen categories as their own columns).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondaryStats {
    /// KS statistic (numeric).
    pub ks_statistic: Option<f64>,
    /// KS p-value (numeric).
    pub ks_p_value: Option<f64>,
    /// Exact or asymptotic KS p-value.
    pub ks_p_value_method: Option<KsPValueMethod>,
    /// Chi-squared statistic on the bins.
    pub chi2_statistic: Option<f64>,
    /// Chi-squared p-value on the bins.
    pub chi2_p_value: Option<f64>,
    /// Chi-squared degrees of freedom.
    pub chi2_dof: Option<u64>,
    /// PSI on the bins.
    pub psi: Option<f64>,
    /// Jensen-Shannon distance base 2 on the bins.
    pub jensen_shannon: Option<f64>,
    /// Hellinger distance on the bins.
    pub hellinger: Option<f64>,
    /// KL(reference || current) on the bins.
    pub kl_divergence: Option<f64>,
    /// Wasserstein distance (numeric).
    pub wasserstein: Option<f64>,
    /// Wasserstein / reference std (numeric, None for a constant reference).
    pub wasserstein_normed: Option<f64>,
    /// Cramér-von Mises statistic (only when it is the method: it sorts the current data).
    pub cvm_statistic: Option<f64>,
    /// Cramér-von Mises p-value (idem).
    pub cvm_p_value: Option<f64>,
}

/// Drift result of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// Feature kind (from the reference).
    pub kind: FeatureKind,
    /// Method used (automatic or override).
    pub method: Method,
    /// Evaluated, or why not.
    pub status: FeatureStatus,
    /// The method's statistic (test statistic or distance).
    pub statistic: Option<f64>,
    /// p-value, for test methods.
    pub p_value: Option<f64>,
    /// p-value after the report's multiple-testing correction.
    pub p_value_adjusted: Option<f64>,
    /// Significance level applied to `p_value_adjusted` (test methods).
    pub alpha: Option<f64>,
    /// Effect measure of the verdict.
    pub effect_measure: EffectMeasure,
    /// Effect size.
    pub effect_size: Option<f64>,
    /// Effect threshold.
    pub threshold: f64,
    /// The verdict; false unless `status` is `Evaluated`.
    pub drifted: bool,
    /// Reference rows, nulls and non-finite values.
    pub reference_missing: MissingCounts,
    /// Current rows, nulls and non-finite values.
    pub current_missing: MissingCounts,
    /// Current rows in categories unseen in the reference (categorical / boolean).
    pub unseen_rows: Option<u64>,
    /// Unseen categories with their counts, largest first, at most 20.
    pub unseen_categories: Vec<(String, u64)>,
    /// Other statistics.
    pub secondary: SecondaryStats,
}

/// Drift report of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Per feature, in profile order.
    pub features: Vec<FeatureDrift>,
    /// Features with status `Evaluated`.
    pub evaluated_features: usize,
    /// Evaluated features that drifted.
    pub drifted_features: usize,
    /// drifted / evaluated (0 when nothing was evaluated).
    pub share_drifted: f64,
    /// Configured dataset threshold.
    pub drift_share_threshold: f64,
    /// share_drifted >= drift_share_threshold, with at least one evaluated feature.
    pub dataset_drift: bool,
    /// Correction applied.
    pub correction: Correction,
}

/// Compares current columns with a reference profile and returns the drift report of every
/// profiled feature. Current columns are matched by name; extra columns are ignored.
/// Features run in parallel. Never panics on degenerate data: see [`FeatureStatus`].
pub fn drift_report(
    profile: &ReferenceProfile,
    current: &[(&str, Column<'_>)],
    config: &DriftConfig,
) -> DriftReport {
    let features = crate::parallel::parallel_map(&profile.features, |fp| {
        let col = current.iter().find(|(n, _)| *n == fp.name).map(|(_, c)| *c);
        evaluate_feature(fp, col, config)
    });
    DriftReport::from_features(features, config)
}

impl DriftReport {
    /// The report of features evaluated one by one with [`evaluate_feature`] (e.g. each as
    /// soon as its column is read): corrects their p-values together and applies the verdict
    /// rule, exactly as [`drift_report`] does. Keeps the order of `features`.
    pub fn from_features(mut features: Vec<FeatureDrift>, config: &DriftConfig) -> DriftReport {
        let tested: Vec<usize> = features
            .iter()
            .enumerate()
            .filter(|(_, f)| f.status == FeatureStatus::Evaluated && f.p_value.is_some())
            .map(|(i, _)| i)
            .collect();
        let ps: Vec<f64> = tested
            .iter()
            .map(|&i| features[i].p_value.unwrap_or(1.0))
            .collect();
        let adj = adjust_p_values(&ps, config.correction);
        for (&i, a) in tested.iter().zip(adj) {
            features[i].p_value_adjusted = Some(a);
        }
        for f in &mut features {
            if f.status != FeatureStatus::Evaluated {
                f.drifted = false;
                continue;
            }
            let effect_ok = f.effect_size.is_some_and(|e| e >= f.threshold);
            f.drifted = if f.method.is_test() {
                effect_ok && f.p_value_adjusted.is_some_and(|p| p < config.alpha)
            } else {
                effect_ok
            };
        }
        let summary = DriftSummary::of(&features, config);
        DriftReport {
            features,
            evaluated_features: summary.evaluated,
            drifted_features: summary.drifted,
            share_drifted: summary.share,
            drift_share_threshold: config.drift_share,
            dataset_drift: summary.dataset_drift,
            correction: config.correction,
        }
    }
}

fn to_f64(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&c| c as f64).collect()
}

fn fill_binned(s: &mut SecondaryStats, r: &[f64], c: &[f64]) {
    if let Some(chi) = chi2_contingency(r, c) {
        s.chi2_statistic = Some(chi.statistic);
        s.chi2_p_value = Some(chi.p_value);
        s.chi2_dof = Some(chi.dof);
    }
    s.psi = psi(r, c);
    s.jensen_shannon = jensen_shannon(r, c);
    s.hellinger = hellinger(r, c);
    s.kl_divergence = kl_divergence(r, c);
}

/// Evaluates one feature without correction (`p_value_adjusted` = None, `drifted` = false);
/// [`drift_report`] fills both. Useful to compute per-window results that the caller
/// corrects together with [`adjust_p_values`].
pub fn evaluate_feature(
    fp: &FeatureProfile,
    column: Option<Column<'_>>,
    config: &DriftConfig,
) -> FeatureDrift {
    let (mut out, method) = start_feature(fp, config);
    let Some(col) = column else {
        out.status = FeatureStatus::MissingColumn;
        return out;
    };
    let s = &mut out.secondary;
    match &fp.detail {
        ProfileDetail::Numeric(np) => {
            let (values, opt): (&[f64], Option<&[Option<f64>]>) = match col {
                Column::Numeric(v) => (v, None),
                Column::NumericOpt(o) => (&[], Some(o)),
                other => {
                    out.status = FeatureStatus::KindMismatch {
                        current: other.kind(),
                    };
                    return out;
                }
            };
            let mut owned = Vec::new();
            let (values, missing) = numeric_values(values, opt, &mut owned);
            out.current_missing = missing;
            if let Some(st) = gate(&fp.missing, &missing, config.min_rows) {
                out.status = st;
                return out;
            }
            let gaps = np.sorted.gaps(values);
            if let Some(ks) = np.sorted.ks(&gaps) {
                s.ks_statistic = Some(ks.statistic);
                s.ks_p_value = Some(ks.p_value);
                s.ks_p_value_method = Some(ks.method);
            }
            s.wasserstein = np.sorted.wasserstein(&gaps, values);
            s.wasserstein_normed = match (s.wasserstein, np.std) {
                (Some(w), Some(sd)) if sd > 0.0 => Some(w / sd),
                _ => None,
            };
            let cur_bins = np.edges.counts(values);
            fill_binned(s, &to_f64(&np.bin_counts), &to_f64(&cur_bins));
            if method == Method::CramerVonMises {
                // The profile keeps sorted distinct values; expand them back with their counts.
                let mut reference = Vec::with_capacity(np.sorted.n() as usize);
                let mut prev = 0u64;
                for (&u, &c) in np
                    .sorted
                    .distinct()
                    .iter()
                    .zip(np.sorted.cumulative_counts())
                {
                    reference.extend(std::iter::repeat_n(u, (c - prev) as usize));
                    prev = c;
                }
                if let Some(cvm) = super::cvm::cramer_von_mises(&reference, values) {
                    s.cvm_statistic = Some(cvm.statistic);
                    s.cvm_p_value = Some(cvm.p_value);
                }
            }
        }
        ProfileDetail::Categorical(cp) => {
            if !matches!(col, Column::Categorical(_) | Column::Boolean(_)) {
                out.status = FeatureStatus::KindMismatch {
                    current: col.kind(),
                };
                return out;
            }
            // The index is not serialised: a profile read back without `prepare()` still
            // gives correct results, at the cost of rebuilding the index here.
            let rebuilt;
            let index = if cp.index.len() != cp.categories.len() {
                rebuilt = CategoryIndex::new(&cp.categories);
                &rebuilt
            } else {
                &cp.index
            };
            let (table, nulls): (CategoryCounts, u64) = index.count(categorical_values(col));
            out.current_missing = MissingCounts {
                rows: col.len() as u64,
                nulls,
                non_finite: 0,
            };
            out.unseen_rows = Some(table.unseen_total());
            let mut top = table.unseen.clone();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(20);
            out.unseen_categories = top;
            if let Some(st) = gate(&fp.missing, &out.current_missing, config.min_rows) {
                out.status = st;
                return out;
            }
            let (r, c) = table.aligned(&cp.counts);
            fill_binned(s, &r, &c);
        }
    }
    finish_feature(out, method, &fp.name)
}

/// A feature's result before any statistic: the method (override or automatic), its effect
/// measure and threshold.
fn start_feature(fp: &FeatureProfile, config: &DriftConfig) -> (FeatureDrift, Method) {
    let method = config
        .overrides
        .get(&fp.name)
        .copied()
        .unwrap_or_else(|| auto_method(fp));
    let measure = method.effect_measure();
    let out = FeatureDrift {
        feature: fp.name.clone(),
        kind: fp.kind,
        method,
        status: FeatureStatus::Evaluated,
        statistic: None,
        p_value: None,
        p_value_adjusted: None,
        alpha: method.is_test().then_some(config.alpha),
        effect_measure: measure,
        effect_size: None,
        threshold: config.thresholds.get(measure),
        drifted: false,
        reference_missing: fp.missing,
        current_missing: MissingCounts::default(),
        unseen_rows: None,
        unseen_categories: Vec::new(),
        secondary: SecondaryStats::default(),
    };
    (out, method)
}

/// One window's counts of a feature, as kept per hour by the server (see [`Grid`]).
#[derive(Debug, Clone, Copy)]
pub enum WindowCounts<'a> {
    /// A numeric feature's values on its grid.
    Numeric {
        grid: &'a Grid,
        counts: &'a GridCounts,
        missing: MissingCounts,
    },
    /// A categorical or boolean feature's counts against the reference categories.
    Categorical {
        table: &'a CategoryCounts,
        missing: MissingCounts,
    },
}

/// [`evaluate_feature`] on a window's counts instead of its values. Bin-based statistics
/// and chi-squared equal the value-based ones; KS, Wasserstein and Cramér-von Mises are as
/// exact as the grid allows (see [`Grid`]).
pub fn evaluate_feature_counts(
    fp: &FeatureProfile,
    current: Option<WindowCounts<'_>>,
    config: &DriftConfig,
) -> FeatureDrift {
    let (mut out, method) = start_feature(fp, config);
    let Some(current) = current else {
        out.status = FeatureStatus::MissingColumn;
        return out;
    };
    match (&fp.detail, current) {
        (
            ProfileDetail::Numeric(np),
            WindowCounts::Numeric {
                grid,
                counts,
                missing,
            },
        ) => {
            out.current_missing = missing;
            if let Some(st) = gate(&fp.missing, &missing, config.min_rows) {
                out.status = st;
                return out;
            }
            let s = &mut out.secondary;
            if let Some(ks) = grid.ks(counts) {
                s.ks_statistic = Some(ks.statistic);
                s.ks_p_value = Some(ks.p_value);
                s.ks_p_value_method = Some(ks.method);
            }
            s.wasserstein = grid.wasserstein(counts);
            s.wasserstein_normed = match (s.wasserstein, np.std) {
                (Some(w), Some(sd)) if sd > 0.0 => Some(w / sd),
                _ => None,
            };
            let cur_bins = grid.bin_counts(counts, np.edges.len());
            fill_binned(s, &to_f64(&np.bin_counts), &to_f64(&cur_bins));
            if method == Method::CramerVonMises {
                if let Some(cvm) = grid.cvm(counts) {
                    s.cvm_statistic = Some(cvm.statistic);
                    s.cvm_p_value = Some(cvm.p_value);
                }
            }
        }
        (ProfileDetail::Categorical(cp), WindowCounts::Categorical { table, missing }) => {
            out.current_missing = missing;
            out.unseen_rows = Some(table.unseen_total());
            let mut top = table.unseen.clone();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(20);
            out.unseen_categories = top;
            if let Some(st) = gate(&fp.missing, &missing, config.min_rows) {
                out.status = st;
                return out;
            }
            let (r, c) = table.aligned(&cp.counts);
            fill_binned(&mut out.secondary, &r, &c);
        }
        (_, WindowCounts::Numeric { .. }) => {
            out.status = FeatureStatus::KindMismatch {
                current: FeatureKind::Numeric,
            };
            return out;
        }
        (_, WindowCounts::Categorical { .. }) => {
            out.status = FeatureStatus::KindMismatch {
                current: FeatureKind::Categorical,
            };
            return out;
        }
    }
    finish_feature(out, method, &fp.name)
}

/// Picks the method's statistic, p-value and effect size out of the secondary statistics.
fn finish_feature(mut out: FeatureDrift, method: Method, name: &str) -> FeatureDrift {
    let measure = method.effect_measure();
    let s = &out.secondary;
    let (statistic, p_value) = match method {
        Method::Ks => (s.ks_statistic, s.ks_p_value),
        Method::ChiSquared => (s.chi2_statistic, s.chi2_p_value),
        Method::CramerVonMises => (s.cvm_statistic, s.cvm_p_value),
        Method::Psi => (s.psi, None),
        Method::JensenShannon => (s.jensen_shannon, None),
        Method::Hellinger => (s.hellinger, None),
        Method::KlDivergence => (s.kl_divergence, None),
        Method::WassersteinNormed => (s.wasserstein_normed, None),
    };
    let effect = match measure {
        EffectMeasure::KsStatistic => s.ks_statistic,
        EffectMeasure::JensenShannon => s.jensen_shannon,
        EffectMeasure::Psi => s.psi,
        EffectMeasure::Hellinger => s.hellinger,
        EffectMeasure::KlDivergence => s.kl_divergence,
        EffectMeasure::WassersteinNormed => s.wasserstein_normed,
    };
    out.statistic = statistic;
    out.p_value = p_value;
    out.effect_size = effect;
    if statistic.is_none() || effect.is_none() || (method.is_test() && p_value.is_none()) {
        out.status = FeatureStatus::Undefined {
            reason: format!(
                "method `{}` is undefined for feature `{}` (constant reference or wrong kind)",
                method.name(),
                name
            ),
        };
    }
    out
}

fn gate(
    reference: &MissingCounts,
    current: &MissingCounts,
    min_rows: u64,
) -> Option<FeatureStatus> {
    if reference.valid() == 0 {
        return Some(FeatureStatus::NoReferenceData);
    }
    if current.valid() == 0 {
        return Some(FeatureStatus::NoCurrentData);
    }
    if reference.valid() < min_rows || current.valid() < min_rows {
        return Some(FeatureStatus::InsufficientData { min_rows });
    }
    None
}

/// How many features were evaluated and how many drifted, out of verdicts already made, and
/// whether that makes the dataset drift (share of drifted features >= `config.drift_share`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftSummary {
    pub evaluated: usize,
    pub drifted: usize,
    /// Drifted / evaluated; 0 when nothing was evaluated.
    pub share: f64,
    pub dataset_drift: bool,
}

impl DriftSummary {
    pub fn of(features: &[FeatureDrift], config: &DriftConfig) -> DriftSummary {
        let evaluated = features
            .iter()
            .filter(|f| f.status == FeatureStatus::Evaluated)
            .count();
        let drifted = features.iter().filter(|f| f.drifted).count();
        let share = if evaluated == 0 {
            0.0
        } else {
            drifted as f64 / evaluated as f64
        };
        DriftSummary {
            evaluated,
            drifted,
            share,
            dataset_drift: evaluated > 0 && share >= config.drift_share,
        }
    }
}

#[cfg(test)]
mod names {
    use super::*;

    /// The names the views print are the ones the JSON carries.
    #[test]
    fn names_are_the_serialised_ones() {
        let named = |v: serde_json::Value, name: &str| assert_eq!(v.as_str(), Some(name), "{v}");
        for m in [
            EffectMeasure::KsStatistic,
            EffectMeasure::JensenShannon,
            EffectMeasure::Psi,
            EffectMeasure::Hellinger,
            EffectMeasure::KlDivergence,
            EffectMeasure::WassersteinNormed,
        ] {
            named(serde_json::to_value(m).unwrap(), m.name());
        }
        for k in [
            FeatureKind::Numeric,
            FeatureKind::Categorical,
            FeatureKind::Boolean,
        ] {
            named(serde_json::to_value(k).unwrap(), k.name());
        }
        for s in [
            FeatureStatus::Evaluated,
            FeatureStatus::NoCurrentData,
            FeatureStatus::NoReferenceData,
            FeatureStatus::InsufficientData { min_rows: 30 },
            FeatureStatus::MissingColumn,
            FeatureStatus::KindMismatch {
                current: FeatureKind::Numeric,
            },
            FeatureStatus::Undefined {
                reason: "why".into(),
            },
        ] {
            let v = serde_json::to_value(&s).unwrap();
            assert_eq!(v["status"].as_str(), Some(s.name()));
        }
    }
}
