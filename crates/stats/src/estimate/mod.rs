//! Label-free performance estimation: what a model's metrics probably are before its labels
//! arrive, from a labelled reference and the window's own predictions.
//!
//! - [`cbpe`]: confidence-based performance estimation for binary classifiers (NannyML's CBPE),
//!   and [`multiclass`] for multiclass ones (one-vs-rest, macro),
//!   checked against NannyML 0.13.1 on fixtures from `scripts/fixtures/gen_cbpe_fixtures.py`.
//! - [`dle`]: direct loss estimation for regression models (NannyML's DLE, with a small
//!   gradient-boosted tree learner of our own, ADR 013), checked against NannyML 0.13.1 on
//!   fixtures from `scripts/fixtures/gen_dle_fixtures.py`.
//! - [`isotonic`]: the isotonic regression its calibration uses, equal to scikit-learn's.

pub mod cbpe;
pub mod dle;
pub mod isotonic;
pub mod multiclass;

pub use cbpe::{
    BinaryCbpe, BinaryEstimates, CbpeError, Estimate, EstimatedMetric, ExpectedConfusion,
    RankedProbabilities, ReferenceRow, EXACT_ROWS, RANK_BINS,
};
pub use dle::{Cell, ColumnKind, Dle, DleError, DleRow, DleWindow};
pub use isotonic::Isotonic;
pub use multiclass::{MulticlassCbpe, MulticlassRow, MulticlassWindow};
