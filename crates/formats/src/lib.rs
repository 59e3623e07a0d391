//! File formats for import and export: CSV, Parquet and NDJSON tables read into validated
//! prediction events, label events and reference rows; Parquet export of events.
//!
//! The path of a file through this crate:
//!
//! 1. [`TableFormat`] says what the file is (extension, first bytes, or HTTP content type).
//! 2. [`TableReader`] streams CSV or Parquet as Arrow record batches ([`Chunk`]s);
//!    [`NdjsonReader`] streams NDJSON lines through core's JSON row parsers.
//! 3. [`ColumnMapping`] says which column is the request id, the prediction, the label...;
//!    [`to_predictions`], [`to_labels`] and [`to_reference_rows`] turn a batch into a
//!    [`Converted`]: the good rows as events, the bad ones as `Rejection`s naming the row (its
//!    position in the file), the field and the reason. A bad row never fails the file.
//! 4. [`ImportReader`] does all of the above for one source, chunk by chunk, with
//!    [`Progress`] for a progress bar.
//!
//! Export: [`PredictionWriter`] and [`LabelWriter`] write Parquet in a layout the reader reads
//! back into the same events (see the [`write`] module docs).
//!
//! Invariants: no async and no HTTP here; per-row validation uses the same rules and wording as
//! `modelwatch_core::parse_prediction_row`, so a row is accepted or rejected alike whether it
//! came as JSON or as a table row.

mod convert;
mod error;
mod format;
mod import;
mod json;
mod mapping;
mod ndjson;
mod source;
mod table;
pub mod write;

pub use convert::{to_labels, to_predictions, to_reference_rows, Converted};
pub use error::FormatError;
pub use format::TableFormat;
pub use import::{ImportReader, RowKind};
pub use mapping::ColumnMapping;
pub use ndjson::NdjsonReader;
pub use source::{Progress, Source};
pub use table::{BadCell, BadRow, Chunk, ReadOptions, TableReader, DEFAULT_BATCH_SIZE};
pub use write::{LabelWriter, PredictionWriter, ROW_GROUP_ROWS};
