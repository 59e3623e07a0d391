//! Streaming readers that turn CSV and Parquet into Arrow record batches.

use crate::source::{CountingRead, Progress, Source};
use crate::{FormatError, TableFormat};
use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Rows per record batch unless [`ReadOptions::batch_size`] says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 65_536;
/// Most cells in one CSV batch: a wide file is read in fewer rows at a time (a 5,000-column
/// file in batches of 838 rows), so that a batch's memory does not grow with the width. Files
/// of up to 64 columns keep the full batch size.
const CSV_BATCH_CELLS: usize = 1 << 22;

/// How to read a table.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Rows per record batch (and per converted chunk). At least 1.
    pub batch_size: usize,
    /// CSV columns kept as text whatever they look like, so that an id such as `00123` keeps
    /// its leading zeros. [`crate::ColumnMapping::text_columns`] lists the ones a mapping needs.
    pub text_columns: Vec<String>,
    /// Only these columns, by name (`None`: all). Parquet decodes only these (a projection);
    /// CSV parses every column and hands out only these. Chunks keep the file's column order.
    /// A name the file lacks is [`FormatError::MissingColumn`].
    pub columns: Option<Vec<String>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            text_columns: Vec::new(),
            columns: None,
        }
    }
}

/// One record batch and where its rows are in the file.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub batch: RecordBatch,
    /// Position in the file (0-based, header excluded) of the batch's first row.
    pub first_row: usize,
    /// CSV cells that did not parse as their column's inferred type; they are null in `batch`.
    /// Always empty for Parquet. The `to_*` methods of [`Chunk`] reject the rows they are in.
    pub bad_cells: Vec<BadCell>,
    /// CSV rows that could not be read as the header's columns (another number of fields,
    /// text that is not UTF-8): all null in `batch`, rejected whole by the `to_*` methods.
    pub bad_rows: Vec<BadRow>,
}

/// A CSV row that is not a row of the table: its place and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// Row within the batch (0-based).
    pub row: usize,
    pub reason: String,
}

/// A CSV cell whose text does not fit the type inferred for its column from the first batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCell {
    /// Row within the batch (0-based).
    pub row: usize,
    pub column: String,
    pub value: String,
    /// What the column holds, e.g. `a number`.
    pub expected: &'static str,
}

/// A CSV or Parquet table read as a stream of [`Chunk`]s of at most `batch_size` rows.
///
/// CSV: the first row is the header; empty cells are null; each column's type is inferred from
/// the first batch: `Boolean` when every value is true/false, `Float64` when every value but at
/// most 1% (or one cell) is a number (integers included), `Utf8` otherwise (also when all null).
/// Cells that do not fit, in the first batch or later, become [`BadCell`]s (rejected rows) rather
/// than failing the read.
///
/// Parquet: column types are the file's own; the row count is known before reading.
pub struct TableReader {
    name: String,
    schema: SchemaRef,
    inner: Inner,
    rows_read: u64,
    rows_total: Option<u64>,
    bytes_total: Option<u64>,
    bytes_read: Arc<AtomicU64>,
}

enum Inner {
    Csv(Box<CsvState>),
    Parquet(ParquetRecordBatchReader),
}

struct CsvState {
    reader: CsvRecords,
    types: Vec<DataType>,
    /// The first batch, read at open to infer the types, handed out first.
    pending: Option<(RecordBatch, Vec<BadRow>)>,
    /// Every column of the file, typed; [`TableReader::schema`] is its projection on `keep`.
    full_schema: SchemaRef,
    /// Indices of [`ReadOptions::columns`] in the file, when given.
    keep: Option<Vec<usize>>,
}

impl TableReader {
    /// Opens a CSV or Parquet source. For [`TableFormat::Ndjson`] use [`crate::NdjsonReader`].
    pub fn open(
        source: &Source,
        format: TableFormat,
        options: &ReadOptions,
    ) -> Result<TableReader, FormatError> {
        let batch_size = options.batch_size.max(1);
        let bytes_read = Arc::new(AtomicU64::new(0));
        let name = source.name();
        let bytes_total = source.size();
        let (schema, inner, rows_total) = match format {
            TableFormat::Parquet => {
                let perr = |e: parquet::errors::ParquetError| FormatError::Parquet {
                    name: name.clone(),
                    message: e.to_string(),
                };
                let (builder, rows) = match source {
                    Source::Path(p) => {
                        let f = std::fs::File::open(p).map_err(|e| source.io_err(e))?;
                        let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(perr)?;
                        let rows = b.metadata().file_metadata().num_rows();
                        let b = project_parquet(b, options.columns.as_deref())?;
                        (b.with_batch_size(batch_size).build().map_err(perr)?, rows)
                    }
                    Source::Bytes { data, .. } => {
                        let b =
                            ParquetRecordBatchReaderBuilder::try_new(data.clone()).map_err(perr)?;
                        let rows = b.metadata().file_metadata().num_rows();
                        let b = project_parquet(b, options.columns.as_deref())?;
                        (b.with_batch_size(batch_size).build().map_err(perr)?, rows)
                    }
                };
                let schema = arrow::record_batch::RecordBatchReader::schema(&builder);
                check_unique(&schema)?;
                (schema, Inner::Parquet(builder), Some(rows.max(0) as u64))
            }
            TableFormat::Ndjson => return Err(FormatError::NotATable(name)),
            TableFormat::Csv => {
                let (schema, state) =
                    open_csv(source, &name, batch_size, options, bytes_read.clone())?;
                (schema, Inner::Csv(Box::new(state)), None)
            }
        };
        Ok(TableReader {
            name,
            schema,
            inner,
            rows_read: 0,
            rows_total,
            bytes_total,
            bytes_read,
        })
    }

    /// The schema every chunk has. For CSV, the types inferred from the first batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn progress(&self) -> Progress {
        Progress {
            rows_total: self.rows_total,
            rows_read: self.rows_read,
            bytes_total: self.bytes_total,
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
        }
    }

    fn next_chunk(&mut self) -> Option<Result<Chunk, FormatError>> {
        let first_row = self.rows_read as usize;
        let result = match &mut self.inner {
            Inner::Parquet(r) => r.next().map(|b| {
                b.map(|batch| Chunk {
                    batch,
                    first_row,
                    bad_cells: Vec::new(),
                    bad_rows: Vec::new(),
                })
                .map_err(|e| FormatError::Parquet {
                    name: self.name.clone(),
                    message: e.to_string(),
                })
            }),
            Inner::Csv(state) => {
                let raw = match state.pending.take() {
                    Some(b) => Some(Ok(b)),
                    None => state.reader.next_batch().transpose(),
                };
                raw.map(|r| {
                    let (raw, bad_rows) = r.map_err(|e| FormatError::Csv {
                        name: self.name.clone(),
                        message: csv_message(&e, first_row),
                    })?;
                    let (batch, mut bad_cells) =
                        type_csv_batch(&raw, &state.full_schema, &state.types);
                    let batch = match &state.keep {
                        Some(keep) => {
                            bad_cells.retain(|c| self.schema.field_with_name(&c.column).is_ok());
                            batch
                                .project(keep)
                                .expect("kept indices are columns of the file")
                        }
                        None => batch,
                    };
                    Ok(Chunk {
                        batch,
                        first_row,
                        bad_cells,
                        bad_rows,
                    })
                })
            }
        };
        if let Some(Ok(c)) = &result {
            self.rows_read += c.batch.num_rows() as u64;
        }
        result
    }
}

impl Iterator for TableReader {
    type Item = Result<Chunk, FormatError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk()
    }
}

/// Indices of `columns` in `schema`, in file order; a name the file lacks is an error.
fn column_indices(schema: &ArrowSchema, columns: &[String]) -> Result<Vec<usize>, FormatError> {
    for c in columns {
        if schema.index_of(c).is_err() {
            return Err(FormatError::MissingColumn {
                column: c.clone(),
                role: "reading",
                available: schema.fields().iter().map(|f| f.name().clone()).collect(),
            });
        }
    }
    Ok((0..schema.fields().len())
        .filter(|&i| columns.iter().any(|c| c == schema.field(i).name()))
        .collect())
}

/// Restricts a Parquet reader to the root columns named in `columns` (all when `None`).
fn project_parquet<T: parquet::file::reader::ChunkReader + 'static>(
    builder: ParquetRecordBatchReaderBuilder<T>,
    columns: Option<&[String]>,
) -> Result<ParquetRecordBatchReaderBuilder<T>, FormatError> {
    let Some(columns) = columns else {
        return Ok(builder);
    };
    let indices = column_indices(builder.schema(), columns)?;
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indices);
    Ok(builder.with_projection(mask))
}

fn check_unique(schema: &ArrowSchema) -> Result<(), FormatError> {
    let mut seen = HashSet::new();
    for f in schema.fields() {
        if !seen.insert(f.name().as_str()) {
            return Err(FormatError::DuplicateColumn(f.name().clone()));
        }
    }
    Ok(())
}

fn csv_message(e: &csv::Error, first_row: usize) -> String {
    format!("{e} (in the batch starting at data row {first_row})")
}

/// The records of a CSV file, read as text columns a batch at a time.
///
/// Records are split with the `csv` crate rather than Arrow's reader, which fails the whole
/// read at the first row with another number of fields: here such a row is a [`BadRow`] of its
/// batch, and the rows around it are read as usual. Empty cells are null.
struct CsvRecords {
    records: csv::Reader<CountingRead>,
    schema: SchemaRef,
    batch_size: usize,
    record: csv::ByteRecord,
}

impl CsvRecords {
    fn next_batch(&mut self) -> Result<Option<(RecordBatch, Vec<BadRow>)>, csv::Error> {
        let columns = self.schema.fields().len();
        let mut builders: Vec<StringBuilder> = (0..columns).map(|_| StringBuilder::new()).collect();
        let mut bad = Vec::new();
        let mut rows = 0;
        while rows < self.batch_size && self.records.read_byte_record(&mut self.record)? {
            let record = std::mem::take(&mut self.record);
            let fields = record.len();
            let reason = if fields != columns {
                self.record = record;
                let plural = if fields == 1 { "" } else { "s" };
                Some(format!(
                    "has {fields} field{plural} where the header has {columns}: the row is not read"
                ))
            } else {
                match csv::StringRecord::from_byte_record(record) {
                    Ok(text) => {
                        for (b, cell) in builders.iter_mut().zip(text.iter()) {
                            if cell.is_empty() {
                                b.append_null();
                            } else {
                                b.append_value(cell);
                            }
                        }
                        self.record = text.into_byte_record();
                        None
                    }
                    Err(e) => {
                        let reason = format!("is not valid UTF-8: {}", e.utf8_error());
                        self.record = e.into_byte_record();
                        Some(reason)
                    }
                }
            };
            if let Some(reason) = reason {
                builders.iter_mut().for_each(|b| b.append_null());
                bad.push(BadRow { row: rows, reason });
            }
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        let columns: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .expect("text columns match the text schema");
        Ok(Some((batch, bad)))
    }
}

fn open_csv(
    source: &Source,
    name: &str,
    batch_size: usize,
    options: &ReadOptions,
    counter: Arc<AtomicU64>,
) -> Result<(SchemaRef, CsvState), FormatError> {
    let csv_err = |e: csv::Error| FormatError::Csv {
        name: name.to_string(),
        message: e.to_string(),
    };
    let mut records = csv::ReaderBuilder::new()
        .has_headers(true)
        // Rows with another number of fields are rejected one by one (CsvRecords), not
        // refused with the file.
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(source.open_read(counter)?);
    let names: Vec<String> = records
        .headers()
        .map_err(csv_err)?
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // Spreadsheet exports often start with a UTF-8 byte-order mark.
            let n = if i == 0 {
                n.trim_start_matches('\u{feff}')
            } else {
                n
            };
            n.trim().to_string()
        })
        .collect();
    let text_schema = Arc::new(ArrowSchema::new(
        names
            .iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    check_unique(&text_schema)?;
    let mut reader = CsvRecords {
        records,
        schema: text_schema,
        batch_size: batch_size.min((CSV_BATCH_CELLS / names.len().max(1)).max(1)),
        record: csv::ByteRecord::new(),
    };
    let first = reader.next_batch().map_err(|e| FormatError::Csv {
        name: name.to_string(),
        message: csv_message(&e, 0),
    })?;
    let types: Vec<DataType> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if options.text_columns.iter().any(|t| t == n) {
                return DataType::Utf8;
            }
            match &first {
                Some((b, _)) => infer_type(as_strings(b.column(i))),
                None => DataType::Utf8,
            }
        })
        .collect();
    let full_schema = Arc::new(ArrowSchema::new(
        names
            .iter()
            .zip(&types)
            .map(|(n, t)| Field::new(n, t.clone(), true))
            .collect::<Vec<_>>(),
    ));
    let keep = options
        .columns
        .as_deref()
        .map(|c| column_indices(&full_schema, c))
        .transpose()?;
    let schema = match &keep {
        Some(k) => Arc::new(
            full_schema
                .project(k)
                .expect("kept indices are columns of the file"),
        ),
        None => full_schema.clone(),
    };
    Ok((
        schema,
        CsvState {
            reader,
            types,
            pending: first,
            full_schema,
            keep,
        },
    ))
}

fn as_strings(a: &ArrayRef) -> &StringArray {
    // The CSV reader is built with an all-Utf8 schema.
    a.as_any()
        .downcast_ref::<StringArray>()
        .expect("csv columns are read as utf8")
}

fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A numeric column may hold a few stray cells (a typo, `n/a`): at most this share of its
/// non-null cells, or one cell, whichever is more, and never more than a quarter of them (so a
/// tiny sample like `1, x` stays text). Those cells become [`BadCell`]s, i.e. per-row rejections
/// naming the field, instead of silently turning the feature categorical.
const STRAY_CELL_SHARE: f64 = 0.01;

fn infer_type(col: &StringArray) -> DataType {
    let mut cells = 0usize;
    let mut all_bool = true;
    let mut not_numbers = 0usize;
    for s in col.iter().flatten() {
        cells += 1;
        all_bool &= parse_bool(s).is_some();
        not_numbers += usize::from(s.trim().parse::<f64>().is_err());
    }
    let stray_allowed = ((cells as f64 * STRAY_CELL_SHARE) as usize).max(1);
    if cells == 0 {
        DataType::Utf8
    } else if all_bool {
        DataType::Boolean
    } else if not_numbers <= stray_allowed && not_numbers * 4 <= cells {
        DataType::Float64
    } else {
        DataType::Utf8
    }
}

fn type_csv_batch(
    raw: &RecordBatch,
    schema: &SchemaRef,
    types: &[DataType],
) -> (RecordBatch, Vec<BadCell>) {
    let mut bad = Vec::new();
    let columns: Vec<ArrayRef> = types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let strings = as_strings(raw.column(i));
            let name = schema.field(i).name();
            match t {
                DataType::Float64 => {
                    let a: Float64Array = strings
                        .iter()
                        .enumerate()
                        .map(|(row, s)| {
                            let s = s?;
                            let v = s.trim().parse::<f64>().ok();
                            if v.is_none() {
                                bad.push(BadCell {
                                    row,
                                    column: name.clone(),
                                    value: s.to_string(),
                                    expected: "a number",
                                });
                            }
                            v
                        })
                        .collect();
                    Arc::new(a) as ArrayRef
                }
                DataType::Boolean => {
                    let a: BooleanArray = strings
                        .iter()
                        .enumerate()
                        .map(|(row, s)| {
                            let s = s?;
                            let v = parse_bool(s);
                            if v.is_none() {
                                bad.push(BadCell {
                                    row,
                                    column: name.clone(),
                                    value: s.to_string(),
                                    expected: "true or false",
                                });
                            }
                            v
                        })
                        .collect();
                    Arc::new(a) as ArrayRef
                }
                _ => raw.column(i).clone(),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .expect("typed columns match the inferred schema");
    bad.sort_by_key(|c| c.row);
    (batch, bad)
}
