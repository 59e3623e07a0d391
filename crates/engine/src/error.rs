//! The engine's one error: what a query over the stored events can fail with. A store failure
//! stays a [`StoreError`] (its own code, its source kept), never re-worded as "corrupt" data.

use modelwatch_core::{ErrorCode, ServiceError};
use modelwatch_store::StoreError;

/// Why a performance, drift, quality or feedback query (or a refresh of the per-hour state)
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("decision threshold must be in [0, 1], got {0}")]
    InvalidThreshold(f64),
    #[error("task {0:?} is not valid: use binary, multiclass or regression")]
    InvalidTask(String),
    /// The server's reply adds where to upload one.
    #[error("model `{model}` has no reference dataset: upload the data it was trained on as its reference")]
    NoReference { model: String },
    /// The reference cannot be fitted for multivariate drift (too few rows, no usable feature).
    #[error("model `{model}`: multivariate drift cannot be fitted on its reference: {why}")]
    ReferenceNotFitted { model: String, why: String },
    #[error("segment {given:?} is not valid: {why}")]
    InvalidSegment { given: String, why: &'static str },
    /// A breakdown by value asked of a report of one slice (drift, quality).
    #[error(
        "segment {given:?} names no value: {report} compares one slice of the traffic with the \
         reference, so name the value, e.g. {given}:<value> (a breakdown by every value is in \
         the metrics)"
    )]
    SegmentNeedsValue { given: String, report: &'static str },
    /// A fairness query the model cannot answer (no protected attributes set, not a binary
    /// classifier, a favourable outcome that is not one of its classes).
    #[error("{0}")]
    FairnessUnavailable(String),
    /// A window a report cannot answer in (cost and service levels: not whole hours).
    #[error("{0}")]
    InvalidWindow(String),
}

impl ServiceError for EngineError {
    fn code(&self) -> ErrorCode {
        match self {
            EngineError::Store(e) => e.code(),
            EngineError::NoReference { .. }
            | EngineError::FairnessUnavailable(_)
            | EngineError::ReferenceNotFitted { .. } => ErrorCode::Conflict,
            EngineError::InvalidThreshold(_)
            | EngineError::InvalidTask(_)
            | EngineError::InvalidSegment { .. }
            | EngineError::InvalidWindow(_)
            | EngineError::SegmentNeedsValue { .. } => ErrorCode::InvalidInput,
        }
    }
}
