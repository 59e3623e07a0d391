//! One reader for every format and every kind of rows, for `modelwatch import` and the
//! reference upload.

use crate::source::{Progress, Source};
use crate::{
    ColumnMapping, Converted, FormatError, NdjsonReader, ReadOptions, TableFormat, TableReader,
};
use modelwatch_core::Timestamp;

/// What the rows of a file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Predictions,
    Labels,
    Reference,
}

/// Reads a CSV, Parquet or NDJSON source as chunks of converted rows.
///
/// Each chunk covers at most `batch_size` rows of the file, in order; together the chunks cover
/// every row exactly once, each row either converted or rejected. A `FormatError` ends the read.
///
/// The mapping applies to CSV and Parquet, and to flat NDJSON reference rows; NDJSON predictions
/// and labels are in the contract's event format and need none.
pub struct ImportReader {
    kind: RowKind,
    mapping: ColumnMapping,
    inner: Inner,
}

enum Inner {
    Table(Box<TableReader>),
    Ndjson(Box<NdjsonReader>),
}

impl ImportReader {
    /// Opens `source`. For CSV, the mapping's [`ColumnMapping::text_columns`] are added to
    /// `options.text_columns`.
    pub fn open(
        source: &Source,
        format: TableFormat,
        kind: RowKind,
        mapping: ColumnMapping,
        options: &ReadOptions,
    ) -> Result<ImportReader, FormatError> {
        let inner = match format {
            TableFormat::Ndjson => Inner::Ndjson(Box::new(NdjsonReader::open(source, options)?)),
            TableFormat::Csv | TableFormat::Parquet => {
                let mut options = options.clone();
                options.text_columns.extend(mapping.text_columns());
                Inner::Table(Box::new(TableReader::open(source, format, &options)?))
            }
        };
        Ok(ImportReader {
            kind,
            mapping,
            inner,
        })
    }

    pub fn progress(&self) -> Progress {
        match &self.inner {
            Inner::Table(t) => t.progress(),
            Inner::Ndjson(n) => n.progress(),
        }
    }

    /// The next chunk; `None` at the end. `now` is the arrival time (default and plausibility
    /// bound for timestamps); `default_version` applies to predictions without a version.
    pub fn next_chunk(
        &mut self,
        now: Timestamp,
        default_version: Option<&str>,
    ) -> Option<Result<Converted, FormatError>> {
        match &mut self.inner {
            Inner::Table(t) => {
                let chunk = match t.next()? {
                    Ok(c) => c,
                    Err(e) => return Some(Err(e)),
                };
                Some(match self.kind {
                    RowKind::Predictions => {
                        chunk.to_predictions(&self.mapping, now, default_version)
                    }
                    RowKind::Labels => chunk.to_labels(&self.mapping, now),
                    RowKind::Reference => chunk.to_reference_rows(&self.mapping),
                })
            }
            Inner::Ndjson(n) => match self.kind {
                RowKind::Predictions => n.next_predictions(now, default_version),
                RowKind::Labels => n.next_labels(now),
                RowKind::Reference => n.next_reference(&self.mapping),
            },
        }
    }
}
