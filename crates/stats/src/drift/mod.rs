//! Drift tests between a reference and a current sample.
//!
//! Pure functions, checked against SciPy 1.17 by fixtures (`scripts/fixtures/gen_drift_fixtures.py`):
//!
//! - raw samples: [`ks_2samp`], [`wasserstein_distance`], [`cramer_von_mises`], and the fast
//!   path [`SortedReference`] (KS and Wasserstein without sorting the current sample);
//! - binned counts (additive, so window aggregates merge exactly): [`chi2_contingency`],
//!   [`psi`], [`jensen_shannon`], [`hellinger`], [`kl_divergence`], [`ks_binned`];
//! - bins: [`BinEdges`] (reference quantiles), [`CategoryIndex`] / [`CategoryCounts`]
//!   (unseen categories counted, never dropped);
//! - verdicts: [`ReferenceProfile`] once per reference, then [`drift_report`] per current
//!   dataset, with [`DriftConfig`] (alpha, correction, effect thresholds, overrides).
//!
//! Nulls (and NaN) never enter a distribution test; they are counted in [`MissingCounts`].

mod binning;
mod cvm;
mod distance;
mod grid;
mod ks;
mod profile;
mod report;
mod special;
/// For the challenger tests' χ² (McNemar).
pub(crate) use special::chi2_sf;

pub use binning::{quantile_sorted, BinEdges, CategoryCounts, CategoryIndex, DEFAULT_BINS};
pub use cvm::{cramer_von_mises, CvmResult, CVM_MAX_EXACT_N};
pub use distance::{
    chi2_contingency, hellinger, jensen_shannon, kl_divergence, ks_binned, psi, Chi2Result,
    PROPORTION_FLOOR,
};
pub use grid::{Grid, GridCounts, GRID_EXACT_KS_CELLS, GRID_POINTS};
pub use ks::{
    ks_2samp, ks_p_value, ks_p_value_fast, ks_p_value_within, wasserstein_distance, GapCell,
    GapCounts, KsPValueMethod, KsResult, SortedReference, KS_LIMIT_EN, KS_MAX_EXACT_N,
};
pub use profile::{
    CategoricalProfile, Column, FeatureKind, FeatureProfile, MissingCounts, NumericProfile,
    ProfileDetail, ProfileOptions, ReferenceProfile,
};
pub use report::{
    adjust_p_values, auto_method, drift_report, evaluate_feature, evaluate_feature_counts,
    Correction, DriftConfig, DriftReport, DriftSummary, EffectMeasure, EffectThresholds,
    FeatureDrift, FeatureStatus, Method, SecondaryStats, WindowCounts,
};
