//! Statistics of modelwatch: performance metrics, drift tests, sketches.
//!
//! Invariant: every function here is pure and deterministic (same input, same output, whatever
//! the order rows arrived in), does no IO and is not async. Degenerate inputs (an empty window,
//! a constant feature) give typed outcomes, never NaN and never a panic. Values are checked
//! against SciPy and scikit-learn by fixtures that `scripts/fixtures/` generates.

pub mod concept;
pub mod domain;
pub mod drift;
pub mod estimate;
pub mod exact;
pub mod fairness;
pub mod multivariate;
pub mod outlier;
pub mod paired;
pub mod parallel;
pub mod perf;
pub mod sample;
pub mod slices;

/// Widens an observed `[min, max]` range by another one; `None` is an empty range. Mergeable
/// states (quantile sketches, drift grid counts) keep their exact extremes this way.
pub(crate) fn merge_extremes(
    (min, max): (&mut Option<f64>, &mut Option<f64>),
    (other_min, other_max): (Option<f64>, Option<f64>),
) {
    *min = match (*min, other_min) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    *max = match (*max, other_max) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}
