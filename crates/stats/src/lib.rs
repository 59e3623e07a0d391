//! Statistics of modelwatch: performance metrics, drift tests, sketches.
//!
//! Invariant: every function here is pure and deterministic (same input, same output, whatever
//! the order rows arrived in), does no IO and is not async. Degenerate inputs (an empty window,
//! a constant feature) give typed outcomes, never NaN and never a panic. Values are checked
//! against SciPy and scikit-learn by fixtures that `scripts/fixtures/` generates.

pub mod drift;
pub mod perf;
