//! Domain types of modelwatch, shared by every other crate.
//!
//! This crate knows what a prediction, a label, a model, a schema and a window are, and how to
//! validate them. It does no IO, no async, and knows nothing of HTTP or storage: a row that does
//! not validate is returned as a [`Rejection`] value, never as a panic.

pub mod checks;
mod error;
mod event;
mod model;
mod schema;
mod time;
mod value;

pub use error::{ErrorCode, ServiceError};
pub use event::{
    parse_kpi_row, parse_label_row, parse_prediction_row, parse_prediction_row_verbatim,
    IngestLimits, KpiEvent, LabelEvent, Pairs, PredictionEvent, ReferenceRow, Rejection, Role,
    EXPLORATION_TAG, MAX_KPI_NAME,
};
pub use model::{validate_version, ModelName, ModelNameError};
pub use schema::{
    FeatureIndex, FeatureKind, FeatureSpec, Schema, SchemaChange, DEFAULT_MAX_FEATURES_PER_MODEL,
};
pub use time::{parse_timestamp, split_span, Timestamp, Window, WindowError};
pub use value::{FeatureName, FeatureValue, Outcome};
