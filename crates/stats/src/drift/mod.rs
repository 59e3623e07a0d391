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

/// Maps `f` over `items` on up to `available_parallelism` scoped threads, keeping order.
/// Features are independent; workers take the next item from a shared counter, which balances
/// features of different cost (numeric vs categorical) without a thread pool dependency.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every index is processed"))
        .collect()
}
