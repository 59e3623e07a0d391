//! Record batches into validated events, labels and reference rows.
//!
//! Work is column by column: each column is downcast (or cast) once per batch to one of a few
//! shapes ([`Col`]), then a tight loop over its rows fills the events. A row that fails a check
//! keeps its first rejection, checked in the same order as core's `parse_prediction_row`.

use crate::json::{object_in_cell, short};
use crate::mapping::{ColumnMapping, Resolved};
use crate::table::{BadCell, BadRow, Chunk};
use crate::FormatError;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use modelwatch_core::checks as check;
use modelwatch_core::{
    parse_timestamp, validate_version, FeatureName, FeatureValue, IngestLimits, LabelEvent,
    Outcome, PredictionEvent, ReferenceRow, Rejection, Timestamp,
};

/// What one batch (or one NDJSON chunk) converted into. Rows appear in file order within each
/// list; every input row is either in exactly one of `predictions` / `labels` (label files) /
/// `reference`, or in `rejected`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    pub predictions: Vec<PredictionEvent>,
    /// From a label file; or from a predictions file with a label column: one per prediction
    /// whose label is not null, with the prediction's timestamp.
    pub labels: Vec<LabelEvent>,
    pub reference: Vec<ReferenceRow>,
    /// Where each of `predictions`, `labels` and `reference` is in the file, numbered as
    /// `rejected` numbers rows: a row's place among the converted ones is not its place in the
    /// file once a row before it was rejected.
    pub prediction_index: Vec<usize>,
    pub label_index: Vec<usize>,
    pub reference_index: Vec<usize>,
    /// Rows not converted. `index` is the row's position in the file (0-based, header excluded;
    /// the line number for NDJSON).
    pub rejected: Vec<Rejection>,
}

/// Converts a batch of a predictions table into events.
///
/// `first_row` is the file position of the batch's first row (it offsets rejection indices);
/// `now` is the arrival time, used for rows without a timestamp and to reject implausible ones;
/// `default_version` applies to rows without a model version.
///
/// Timestamps may be Arrow timestamps (any unit; with or without a time zone, the instant is read
/// as UTC), dates (midnight UTC), text (as `modelwatch_core::parse_timestamp` reads it) or
/// numbers (seconds since the Unix epoch). Features: numbers (ints, floats, decimals) become
/// numbers, text and dictionaries text, booleans booleans, nulls nulls.
///
/// Errors only for the file as a whole: an explicitly mapped column missing, no `request_id` or
/// no prediction column, or a column of a type that cannot be read (lists, structs, binary).
pub fn to_predictions(
    batch: &RecordBatch,
    mapping: &ColumnMapping,
    first_row: usize,
    now: Timestamp,
    default_version: Option<&str>,
) -> Result<Converted, FormatError> {
    split_convert(batch, first_row, &[], &[], |b, f, c| {
        convert_predictions(b, mapping, f, now, default_version, c)
    })
}

/// Converts a batch of a labels table (`request_id`, `label`, optional `timestamp`, which
/// defaults to `now`). Other columns are ignored.
pub fn to_labels(
    batch: &RecordBatch,
    mapping: &ColumnMapping,
    first_row: usize,
    now: Timestamp,
) -> Result<Converted, FormatError> {
    split_convert(batch, first_row, &[], &[], |b, f, c| {
        convert_labels(b, mapping, f, now, c)
    })
}

/// Converts a batch of a reference table: features, and prediction, score(s) and label where
/// mapped. Ids, timestamps, versions, latency, error and tag columns are not features.
pub fn to_reference_rows(
    batch: &RecordBatch,
    mapping: &ColumnMapping,
    first_row: usize,
) -> Result<Converted, FormatError> {
    split_convert(batch, first_row, &[], &[], |b, f, c| {
        convert_reference(b, mapping, f, c)
    })
}

impl Chunk {
    /// [`to_predictions`] on this chunk, also rejecting its [`BadRow`]s and the rows of its
    /// [`BadCell`]s.
    pub fn to_predictions(
        &self,
        mapping: &ColumnMapping,
        now: Timestamp,
        default_version: Option<&str>,
    ) -> Result<Converted, FormatError> {
        split_convert(
            &self.batch,
            self.first_row,
            &self.bad_cells,
            &self.bad_rows,
            |b, f, c| convert_predictions(b, mapping, f, now, default_version, c),
        )
    }

    /// [`to_labels`] on this chunk, also rejecting the rows of its [`BadCell`]s.
    pub fn to_labels(
        &self,
        mapping: &ColumnMapping,
        now: Timestamp,
    ) -> Result<Converted, FormatError> {
        split_convert(
            &self.batch,
            self.first_row,
            &self.bad_cells,
            &self.bad_rows,
            |b, f, c| convert_labels(b, mapping, f, now, c),
        )
    }

    /// [`to_reference_rows`] on this chunk, also rejecting the rows of its [`BadCell`]s.
    pub fn to_reference_rows(&self, mapping: &ColumnMapping) -> Result<Converted, FormatError> {
        split_convert(
            &self.batch,
            self.first_row,
            &self.bad_cells,
            &self.bad_rows,
            |b, f, c| convert_reference(b, mapping, f, c),
        )
    }
}

/// Rows below which a batch is converted on the calling thread alone.
const PARALLEL_MIN_ROWS: usize = 16_384;
/// Most threads one batch is split across.
const MAX_THREADS: usize = 4;

/// Converts a large batch as slices on scoped threads (one per core, at most [`MAX_THREADS`])
/// and joins the results in row order. Building events is bound by allocation and memory
/// writes (every feature name is an owned `String`), so this is where a second core pays.
///
/// `bad_rows` are rejected here, after the conversion, whatever it made of their (null) cells.
fn split_convert<F>(
    batch: &RecordBatch,
    first_row: usize,
    bad_cells: &[BadCell],
    bad_rows: &[BadRow],
    convert: F,
) -> Result<Converted, FormatError>
where
    F: Fn(&RecordBatch, usize, &[BadCell]) -> Result<Converted, FormatError> + Sync,
{
    let out = split_convert_cells(batch, first_row, bad_cells, convert)?;
    Ok(reject_bad_rows(out, first_row, bad_rows))
}

/// Moves the rows of `bad` (numbered within the batch at `first_row`) from wherever the
/// conversion put them into `rejected`, with their reason. Their cells are null: a prediction
/// or a label needs a request id, so the conversion rejected them already (for another
/// reason, replaced here); a reference row of nulls is converted, and is taken out.
fn reject_bad_rows(mut out: Converted, first_row: usize, bad: &[BadRow]) -> Converted {
    if bad.is_empty() {
        return out;
    }
    let bad: std::collections::HashMap<usize, &str> = bad
        .iter()
        .map(|b| (first_row + b.row, b.reason.as_str()))
        .collect();
    out.rejected.retain(|r| !bad.contains_key(&r.index));
    if !out.reference.is_empty() {
        let (mut rows, mut index) = (Vec::new(), Vec::new());
        for (r, i) in out.reference.into_iter().zip(out.reference_index) {
            if !bad.contains_key(&i) {
                rows.push(r);
                index.push(i);
            }
        }
        (out.reference, out.reference_index) = (rows, index);
    }
    let mut rows: Vec<(&usize, &&str)> = bad.iter().collect();
    rows.sort();
    out.rejected.extend(
        rows.into_iter()
            .map(|(i, why)| Rejection::new(*i, "", *why)),
    );
    out.rejected.sort_by_key(|r| r.index);
    out
}

fn split_convert_cells<F>(
    batch: &RecordBatch,
    first_row: usize,
    bad_cells: &[BadCell],
    convert: F,
) -> Result<Converted, FormatError>
where
    F: Fn(&RecordBatch, usize, &[BadCell]) -> Result<Converted, FormatError> + Sync,
{
    let n = batch.num_rows();
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(MAX_THREADS)
        .min(n / (PARALLEL_MIN_ROWS / 2).max(1));
    if threads < 2 || n < PARALLEL_MIN_ROWS {
        return convert(batch, first_row, bad_cells);
    }
    let per = n.div_ceil(threads);
    let parts: Vec<(RecordBatch, usize, Vec<BadCell>)> = (0..n)
        .step_by(per)
        .map(|off| {
            let len = per.min(n - off);
            let cells = bad_cells
                .iter()
                .filter(|c| (off..off + len).contains(&c.row))
                .map(|c| BadCell {
                    row: c.row - off,
                    ..c.clone()
                })
                .collect();
            (batch.slice(off, len), first_row + off, cells)
        })
        .collect();
    let results: Vec<Result<Converted, FormatError>> = std::thread::scope(|s| {
        let convert = &convert;
        let handles: Vec<_> = parts[1..]
            .iter()
            .map(|(b, f, c)| s.spawn(move || convert(b, *f, c)))
            .collect();
        let mut results = vec![convert(&parts[0].0, parts[0].1, &parts[0].2)];
        for h in handles {
            results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        results
    });
    let mut out = Converted::default();
    for r in results {
        let r = r?;
        out.predictions.extend(r.predictions);
        out.labels.extend(r.labels);
        out.reference.extend(r.reference);
        out.prediction_index.extend(r.prediction_index);
        out.label_index.extend(r.label_index);
        out.reference_index.extend(r.reference_index);
        out.rejected.extend(r.rejected);
    }
    Ok(out)
}

/// One column in the shape conversion reads it.
enum Col {
    Null,
    Num(Float64Array),
    Text(StringArray),
    Bool(BooleanArray),
}

/// A timestamp column in the shape conversion reads it.
enum TimeCol {
    Null,
    Micros(Int64Array),
    /// Seconds since the epoch, possibly fractional.
    Secs(Float64Array),
    Text(StringArray),
}

fn unsupported(batch: &RecordBatch, i: usize, role: &'static str) -> FormatError {
    let f = batch.schema_ref().field(i).clone();
    FormatError::UnsupportedColumn {
        column: f.name().clone(),
        data_type: f.data_type().to_string(),
        role,
    }
}

fn is_text_type(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_numeric_type(t: &DataType) -> bool {
    t.is_numeric()
}

fn to_f64(a: &ArrayRef) -> Float64Array {
    cast(a, &DataType::Float64)
        .expect("numeric types cast to float64")
        .as_primitive::<arrow::datatypes::Float64Type>()
        .clone()
}

fn to_utf8(a: &ArrayRef) -> Option<StringArray> {
    cast(a, &DataType::Utf8)
        .ok()
        .map(|c| c.as_string::<i32>().clone())
}

/// A feature, outcome, score or latency column.
fn value_col(batch: &RecordBatch, i: usize, role: &'static str) -> Result<Col, FormatError> {
    let a = batch.column(i);
    let t = a.data_type();
    Ok(match t {
        DataType::Null => Col::Null,
        DataType::Boolean => Col::Bool(a.as_boolean().clone()),
        t if is_numeric_type(t) => Col::Num(to_f64(a)),
        t if is_text_type(t) => Col::Text(to_utf8(a).ok_or_else(|| unsupported(batch, i, role))?),
        DataType::Dictionary(_, v) if is_text_type(v) => {
            Col::Text(to_utf8(a).ok_or_else(|| unsupported(batch, i, role))?)
        }
        DataType::Dictionary(_, v) if is_numeric_type(v) => Col::Num(to_f64(a)),
        _ => return Err(unsupported(batch, i, role)),
    })
}

/// A column read as text whatever its type (ids, versions, errors, tags): numbers are written
/// out in full, so an integer id stays exact.
fn text_col(batch: &RecordBatch, i: usize, role: &'static str) -> Result<Col, FormatError> {
    let a = batch.column(i);
    if a.data_type() == &DataType::Null {
        return Ok(Col::Null);
    }
    if matches!(
        a.data_type(),
        DataType::List(_) | DataType::Struct(_) | DataType::Map(_, _)
    ) {
        return Err(unsupported(batch, i, role));
    }
    to_utf8(a)
        .map(Col::Text)
        .ok_or_else(|| unsupported(batch, i, role))
}

fn time_col(batch: &RecordBatch, i: usize) -> Result<TimeCol, FormatError> {
    let a = batch.column(i);
    // Arrow stores a timestamp as the UTC instant whatever its zone; only the unit differs.
    Ok(match a.data_type() {
        DataType::Null => TimeCol::Null,
        DataType::Timestamp(unit, _) => TimeCol::Micros(match unit {
            TimeUnit::Second => a
                .as_primitive::<TimestampSecondType>()
                .unary::<_, Int64Type>(|v| v.saturating_mul(1_000_000)),
            TimeUnit::Millisecond => a
                .as_primitive::<TimestampMillisecondType>()
                .unary::<_, Int64Type>(|v| v.saturating_mul(1_000)),
            TimeUnit::Microsecond => a
                .as_primitive::<TimestampMicrosecondType>()
                .unary::<_, Int64Type>(|v| v),
            TimeUnit::Nanosecond => a
                .as_primitive::<TimestampNanosecondType>()
                .unary::<_, Int64Type>(|v| v.div_euclid(1_000)),
        }),
        DataType::Date32 => TimeCol::Micros(
            a.as_primitive::<Date32Type>()
                .unary::<_, Int64Type>(|d| i64::from(d) * 86_400_000_000),
        ),
        DataType::Date64 => TimeCol::Micros(
            a.as_primitive::<Date64Type>()
                .unary::<_, Int64Type>(|ms| ms.saturating_mul(1_000)),
        ),
        t if t.is_integer() => TimeCol::Micros(
            cast(a, &DataType::Int64)
                .map_err(|_| unsupported(batch, i, "a timestamp"))?
                .as_primitive::<Int64Type>()
                .unary::<_, Int64Type>(|s| s.saturating_mul(1_000_000)),
        ),
        t if is_numeric_type(t) => TimeCol::Secs(to_f64(a)),
        t if is_text_type(t) || matches!(t, DataType::Dictionary(..)) => {
            TimeCol::Text(to_utf8(a).ok_or_else(|| unsupported(batch, i, "a timestamp"))?)
        }
        _ => return Err(unsupported(batch, i, "a timestamp")),
    })
}

fn opt_text(c: &Col, i: usize) -> Option<&str> {
    match c {
        Col::Text(a) if a.is_valid(i) => Some(a.value(i)),
        _ => None,
    }
}

fn opt_num(c: &Col, i: usize) -> Option<f64> {
    match c {
        Col::Num(a) if a.is_valid(i) => Some(a.value(i)),
        _ => None,
    }
}

fn outcome_at(c: &Col, value: Option<&Col>, i: usize) -> Option<Outcome> {
    if let Some(v) = value.and_then(|v| opt_num(v, i)) {
        return Some(Outcome::Number(v));
    }
    match c {
        Col::Null => None,
        Col::Num(a) => a.is_valid(i).then(|| Outcome::Number(a.value(i))),
        Col::Text(a) => a.is_valid(i).then(|| Outcome::Text(a.value(i).to_string())),
        Col::Bool(a) => a.is_valid(i).then(|| Outcome::Bool(a.value(i))),
    }
}

fn feature_at(c: &Col, i: usize) -> FeatureValue {
    match c {
        Col::Null => FeatureValue::Null,
        Col::Num(a) if a.is_valid(i) => FeatureValue::Number(a.value(i)),
        Col::Text(a) if a.is_valid(i) => FeatureValue::Text(a.value(i).to_string()),
        Col::Bool(a) if a.is_valid(i) => FeatureValue::Bool(a.value(i)),
        _ => FeatureValue::Null,
    }
}

/// First rejection per row of a batch.
struct Rejections {
    first_row: usize,
    rows: Vec<Option<Rejection>>,
}

impl Rejections {
    fn new(first_row: usize, n: usize) -> Self {
        Rejections {
            first_row,
            rows: vec![None; n],
        }
    }

    fn reject(&mut self, i: usize, field: &str, reason: impl Into<String>) {
        if self.rows[i].is_none() {
            self.rows[i] = Some(Rejection::new(self.first_row + i, field, reason));
        }
    }

    fn bad_cells(&mut self, cells: &[BadCell], field_of: impl Fn(&str) -> String) {
        for c in cells {
            self.reject(
                c.row,
                &field_of(&c.column),
                format!(
                    "expected {} (as in the column's first rows), got {:?}",
                    c.expected,
                    short(&c.value)
                ),
            );
        }
    }
}

/// The event field a column feeds, for rejection messages.
fn field_of(r: &Resolved, names: &[&str], column: &str) -> String {
    let Some(i) = names.iter().position(|n| *n == column) else {
        return column.to_string();
    };
    let is = |o: Option<usize>| o == Some(i);
    if is(r.request_id) {
        "request_id".into()
    } else if is(r.timestamp) {
        "timestamp".into()
    } else if is(r.model_version) {
        "model_version".into()
    } else if is(r.prediction) || is(r.prediction_value) {
        "prediction".into()
    } else if is(r.score) {
        "score".into()
    } else if is(r.scores_json) {
        "scores".into()
    } else if let Some((c, _)) = r.scores_cols.iter().find(|(_, j)| *j == i) {
        format!("scores.{c}")
    } else if is(r.label) || is(r.label_value) {
        "label".into()
    } else if is(r.latency_ms) {
        "latency_ms".into()
    } else if is(r.cost) {
        "cost".into()
    } else if is(r.error) {
        "error".into()
    } else if is(r.tags_json) {
        "tags".into()
    } else if r.tags.iter().any(|(_, j)| *j == i) {
        format!("tags.{column}")
    } else if let Some((f, _)) = r.explanations.iter().find(|(_, j)| *j == i) {
        format!("explanations.{f}")
    } else {
        format!("features.{column}")
    }
}

fn names_of(batch: &RecordBatch) -> Vec<&str> {
    batch
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect()
}

/// Reads the timestamp of every row (`now` where null or absent) and hands the good ones to `set`.
fn fill_timestamps(
    col: &TimeCol,
    now: Timestamp,
    rej: &mut Rejections,
    mut set: impl FnMut(usize, Timestamp),
) {
    for i in 0..rej.rows.len() {
        let t: Result<Timestamp, String> = match col {
            TimeCol::Null => Ok(now),
            TimeCol::Micros(a) if a.is_valid(i) => Ok(Timestamp(a.value(i))),
            TimeCol::Secs(a) if a.is_valid(i) => {
                let s = a.value(i);
                if s.is_finite() {
                    Ok(Timestamp((s * 1e6).round() as i64))
                } else {
                    Err(format!("{s} is not a number of seconds since 1970-01-01"))
                }
            }
            TimeCol::Text(a) if a.is_valid(i) => parse_timestamp(a.value(i)),
            _ => Ok(now),
        };
        match t.and_then(|t| t.check_plausible(now).map(|()| t)) {
            Ok(t) => set(i, t),
            Err(r) => rej.reject(i, "timestamp", r),
        }
    }
}

fn fill_request_ids(
    col: &Col,
    limits: &IngestLimits,
    rej: &mut Rejections,
    mut set: impl FnMut(usize, &str),
) {
    for i in 0..rej.rows.len() {
        match opt_text(col, i) {
            None => rej.reject(i, "request_id", check::MISSING_REQUEST_ID),
            Some(s) => {
                set(i, s);
                if let Err(r) = check::request_id(s, limits) {
                    rej.reject(i, "request_id", r);
                }
            }
        }
    }
}

/// Class probabilities in the order given.
type Scores = Vec<(String, f64)>;

/// Multiclass scores of row `i`, from the JSON column or the per-class columns.
fn scores_at(
    json: Option<&Col>,
    cols: &[(String, Col)],
    i: usize,
) -> Result<Option<Scores>, (String, String)> {
    if let Some(s) = json.and_then(|c| opt_text(c, i)) {
        return object_in_cell::<f64>(s)
            .map(Some)
            .map_err(|r| ("scores".to_string(), r));
    }
    if cols.is_empty() {
        return Ok(None);
    }
    let v: Vec<(String, f64)> = cols
        .iter()
        .filter_map(|(class, c)| opt_num(c, i).map(|p| (class.clone(), p)))
        .collect();
    Ok((!v.is_empty()).then_some(v))
}

/// The features of every row, column by column.
/// The score and per-class scores of each row of a batch.
struct RowScores {
    score: Vec<Option<f64>>,
    /// `(class, probability)` pairs.
    class_scores: Vec<Option<Vec<(String, f64)>>>,
}

/// Reads and checks the score column and the per-class score columns (JSON `scores` or a
/// prefix), for predictions and reference rows alike; a bad value is a rejection of its row.
fn read_scores(
    batch: &RecordBatch,
    r: &Resolved,
    n: usize,
    rej: &mut Rejections,
) -> Result<RowScores, FormatError> {
    let mut scores = vec![None; n];
    if let Some(ci) = r.score {
        let col = value_col(batch, ci, "a score")?;
        if !matches!(col, Col::Num(_) | Col::Null) {
            return Err(unsupported(batch, ci, "a score"));
        }
        for (i, slot) in scores.iter_mut().enumerate() {
            if let Some(s) = opt_num(&col, i) {
                *slot = Some(s);
                if let Err(reason) = check::score(s) {
                    rej.reject(i, "score", reason);
                }
            }
        }
    }
    let mut class_scores = vec![None; n];
    let scores_json = match r.scores_json {
        Some(ci) => Some(text_col(batch, ci, "scores")?),
        None => None,
    };
    let scores_cols = r
        .scores_cols
        .iter()
        .map(|(c, ci)| Ok((c.clone(), value_col(batch, *ci, "a class probability")?)))
        .collect::<Result<Vec<_>, FormatError>>()?;
    if scores_json.is_some() || !scores_cols.is_empty() {
        for (i, slot) in class_scores.iter_mut().enumerate() {
            match scores_at(scores_json.as_ref(), &scores_cols, i) {
                Ok(s) => {
                    if let Some(s) = &s {
                        if let Err((field, reason)) = check::scores(s) {
                            rej.reject(i, &field, reason);
                        }
                    }
                    *slot = s;
                }
                Err((field, reason)) => rej.reject(i, &field, reason),
            }
        }
    }
    Ok(RowScores {
        score: scores,
        class_scores,
    })
}

fn fill_features(
    batch: &RecordBatch,
    r: &Resolved,
    rej: &mut Rejections,
    limits: &IngestLimits,
    mut push: impl FnMut(usize, FeatureName, FeatureValue),
) -> Result<(), FormatError> {
    let n = rej.rows.len();
    if let Err(reason) = check::feature_count(r.features.len(), limits) {
        for i in 0..n {
            rej.reject(i, "features", reason.clone());
        }
        return Ok(());
    }
    let schema = batch.schema();
    let cols = r
        .features
        .iter()
        .map(|&ci| {
            // One name per column, shared by the events of every row.
            let name = FeatureName::from(schema.field(ci).name().as_str());
            Ok((name, value_col(batch, ci, "a feature")?))
        })
        .collect::<Result<Vec<_>, FormatError>>()?;
    // Column by column within blocks of rows: the inner loop stays on one array of one type,
    // while the block's events (and their feature vectors) stay in cache. Whole columns at a
    // time would walk every event of the batch once per feature, missing cache on each push.
    for start in (0..n).step_by(FEATURE_BLOCK_ROWS) {
        let end = (start + FEATURE_BLOCK_ROWS).min(n);
        for (name, col) in &cols {
            match col {
                Col::Num(a) => {
                    for i in start..end {
                        let v = if a.is_valid(i) {
                            let x = a.value(i);
                            if !x.is_finite() {
                                rej.reject(
                                    i,
                                    &format!("features.{name}"),
                                    check::NOT_FINITE_FEATURE,
                                );
                            }
                            FeatureValue::Number(x)
                        } else {
                            FeatureValue::Null
                        };
                        push(i, name.clone(), v);
                    }
                }
                _ => {
                    for i in start..end {
                        push(i, name.clone(), feature_at(col, i));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Reads the `explanation.<feature>` columns: each row's finite numbers, by feature (an empty
/// cell is no attribution); a cell that is not a finite number rejects its row, naming
/// `explanations.<feature>`.
fn fill_explanations(
    batch: &RecordBatch,
    r: &Resolved,
    rej: &mut Rejections,
    mut push: impl FnMut(usize, &str, f64),
) -> Result<(), FormatError> {
    let n = rej.rows.len();
    for (feature, ci) in &r.explanations {
        let field = format!("explanations.{feature}");
        match value_col(batch, *ci, "an attribution")? {
            Col::Null => {}
            Col::Num(a) => {
                for i in 0..n {
                    if a.is_valid(i) {
                        let x = a.value(i);
                        if x.is_finite() {
                            push(i, feature, x);
                        } else {
                            rej.reject(
                                i,
                                &field,
                                "must be a finite number (the feature's attribution)",
                            );
                        }
                    }
                }
            }
            col => {
                for i in 0..n {
                    let v = feature_at(&col, i);
                    if !v.is_null() {
                        rej.reject(
                            i,
                            &field,
                            format!(
                                "expected a number (the feature's attribution), got {}",
                                v.type_name()
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// Rows per block in [`fill_features`]: 256 events of 25 features is about 400 KB.
const FEATURE_BLOCK_ROWS: usize = 256;

fn convert_predictions(
    batch: &RecordBatch,
    mapping: &ColumnMapping,
    first_row: usize,
    now: Timestamp,
    default_version: Option<&str>,
    bad_cells: &[BadCell],
) -> Result<Converted, FormatError> {
    let limits = IngestLimits::default();
    let names = names_of(batch);
    let r = mapping.resolve(&names)?;
    r.require_predictions(&names)?;
    let n = batch.num_rows();
    let mut rej = Rejections::new(first_row, n);
    rej.bad_cells(bad_cells, |c| field_of(&r, &names, c));

    let nf = r.features.len();
    let mut events: Vec<PredictionEvent> = (0..n)
        .map(|_| PredictionEvent {
            request_id: String::new(),
            timestamp: now,
            model_version: None,
            features: Vec::with_capacity(nf),
            prediction: None,
            score: None,
            scores: None,
            latency_ms: None,
            cost: None,
            error: None,
            tags: Vec::new(),
            explanations: Vec::new(),
            role: modelwatch_core::Role::Served,
        })
        .collect();

    let ids = text_col(batch, r.request_id.expect("required"), "request_id")?;
    fill_request_ids(&ids, &limits, &mut rej, |i, s| {
        events[i].request_id = s.to_string()
    });

    if let Some(ci) = r.timestamp {
        let col = time_col(batch, ci)?;
        fill_timestamps(&col, now, &mut rej, |i, t| events[i].timestamp = t);
    }

    let versions = match r.model_version {
        Some(ci) => text_col(batch, ci, "model_version")?,
        None => Col::Null,
    };
    for (i, e) in events.iter_mut().enumerate() {
        let v = opt_text(&versions, i).or(default_version);
        if let Some(v) = v {
            match validate_version(v) {
                Ok(()) => e.model_version = Some(v.to_string()),
                Err(reason) => rej.reject(i, "model_version", reason),
            }
        }
    }

    let errors = match r.error {
        Some(ci) => text_col(batch, ci, "error")?,
        None => Col::Null,
    };
    let pred = match r.prediction {
        Some(ci) => value_col(batch, ci, "a prediction")?,
        None => Col::Null,
    };
    let pred_value = match r.prediction_value {
        Some(ci) => Some(value_col(batch, ci, "a prediction")?),
        None => None,
    };
    for (i, e) in events.iter_mut().enumerate() {
        e.error = opt_text(&errors, i).map(str::to_string);
        e.prediction = outcome_at(&pred, pred_value.as_ref(), i);
        match &e.prediction {
            None if e.error.is_none() => rej.reject(i, "prediction", check::MISSING_PREDICTION),
            Some(Outcome::Number(x)) if !x.is_finite() => {
                rej.reject(i, "prediction", check::NOT_FINITE_OUTCOME)
            }
            _ => {}
        }
    }

    let scores = read_scores(batch, &r, events.len(), &mut rej)?;
    for ((e, s), cs) in events.iter_mut().zip(scores.score).zip(scores.class_scores) {
        e.score = s;
        e.scores = cs;
    }

    if let Some(ci) = r.latency_ms {
        let col = value_col(batch, ci, "latency_ms")?;
        for (i, e) in events.iter_mut().enumerate() {
            if let Some(l) = opt_num(&col, i) {
                e.latency_ms = Some(l);
                if let Err(reason) = check::latency(l) {
                    rej.reject(i, "latency_ms", reason);
                }
            }
        }
    }
    if let Some(ci) = r.cost {
        let col = value_col(batch, ci, "cost")?;
        for (i, e) in events.iter_mut().enumerate() {
            if let Some(c) = opt_num(&col, i) {
                e.cost = Some(c);
                if let Err(reason) = check::cost(c) {
                    rej.reject(i, "cost", reason);
                }
            }
        }
    }

    fill_features(batch, &r, &mut rej, &limits, |i, name, v| {
        events[i].features.push((name, v))
    })?;
    fill_explanations(batch, &r, &mut rej, |i, name, x| {
        events[i].explanations.push((name.to_owned(), x))
    })?;

    fill_tags(batch, &r, &mut rej, &limits, |i, tags| {
        events[i].tags = tags
    })?;

    let labels = match r.label {
        Some(ci) => Some(value_col(batch, ci, "a label")?),
        None => None,
    };
    let label_value = match r.label_value {
        Some(ci) => Some(value_col(batch, ci, "a label")?),
        None => None,
    };
    let label_col = labels.as_ref().unwrap_or(&Col::Null);
    let label_of = |i: usize, rej: &mut Rejections| -> Option<Outcome> {
        if labels.is_none() && label_value.is_none() {
            return None;
        }
        let l = outcome_at(label_col, label_value.as_ref(), i);
        if let Some(Outcome::Number(x)) = &l {
            if !x.is_finite() {
                rej.reject(i, "label", check::NOT_FINITE_OUTCOME);
            }
        }
        l
    };
    let row_labels: Vec<Option<Outcome>> = (0..n).map(|i| label_of(i, &mut rej)).collect();

    let mut out = Converted::default();
    out.predictions.reserve(n);
    for (i, ((e, bad), label)) in events.into_iter().zip(rej.rows).zip(row_labels).enumerate() {
        match bad {
            Some(mut r) => {
                if !e.request_id.is_empty() && r.request_id.is_none() {
                    r.request_id = Some(e.request_id);
                }
                out.rejected.push(r);
            }
            None => {
                if let Some(label) = label {
                    out.labels.push(LabelEvent {
                        request_id: e.request_id.clone(),
                        label,
                        timestamp: e.timestamp,
                    });
                    out.label_index.push(first_row + i);
                }
                out.predictions.push(e);
                out.prediction_index.push(first_row + i);
            }
        }
    }
    Ok(out)
}

fn fill_tags(
    batch: &RecordBatch,
    r: &Resolved,
    rej: &mut Rejections,
    limits: &IngestLimits,
    mut set: impl FnMut(usize, Vec<(String, String)>),
) -> Result<(), FormatError> {
    if r.tags_json.is_none() && r.tags.is_empty() {
        return Ok(());
    }
    let json = match r.tags_json {
        Some(ci) => text_col(batch, ci, "tags")?,
        None => Col::Null,
    };
    let cols = r
        .tags
        .iter()
        .map(|(name, ci)| Ok((name, text_col(batch, *ci, "a tag")?)))
        .collect::<Result<Vec<_>, FormatError>>()?;
    for i in 0..rej.rows.len() {
        let mut tags = match opt_text(&json, i) {
            Some(s) => match object_in_cell::<String>(s) {
                Ok(t) => t,
                Err(reason) => {
                    rej.reject(i, "tags", reason);
                    continue;
                }
            },
            None => Vec::new(),
        };
        for (name, c) in &cols {
            if let Some(v) = opt_text(c, i) {
                tags.push(((*name).clone(), v.to_string()));
            }
        }
        if let Err(reason) = check::tag_count(tags.len(), limits) {
            rej.reject(i, "tags", reason);
        }
        set(i, tags);
    }
    Ok(())
}

fn convert_labels(
    batch: &RecordBatch,
    mapping: &ColumnMapping,
    first_row: usize,
    now: Timestamp,
    bad_cells: &[BadCell],
) -> Result<Converted, FormatError> {
    let limits = IngestLimits::default();
    let names = names_of(batch);
    let r = mapping.resolve(&names)?;
    r.require_labels(&names)?;
    let n = batch.num_rows();
    let mut rej = Rejections::new(first_row, n);
    rej.bad_cells(bad_cells, |c| field_of(&r, &names, c));
    let mut ids = vec![String::new(); n];
    let mut times = vec![now; n];
    let id_col = text_col(batch, r.request_id.expect("required"), "request_id")?;
    fill_request_ids(&id_col, &limits, &mut rej, |i, s| ids[i] = s.to_string());
    let label = match r.label {
        Some(ci) => value_col(batch, ci, "a label")?,
        None => Col::Null,
    };
    let label_value = match r.label_value {
        Some(ci) => Some(value_col(batch, ci, "a label")?),
        None => None,
    };
    let mut labels: Vec<Option<Outcome>> = Vec::with_capacity(n);
    for i in 0..n {
        let l = outcome_at(&label, label_value.as_ref(), i);
        match &l {
            None => rej.reject(i, "label", check::MISSING_LABEL),
            Some(Outcome::Number(x)) if !x.is_finite() => {
                rej.reject(i, "label", check::NOT_FINITE_OUTCOME)
            }
            _ => {}
        }
        labels.push(l);
    }
    if let Some(ci) = r.timestamp {
        let col = time_col(batch, ci)?;
        fill_timestamps(&col, now, &mut rej, |i, t| times[i] = t);
    }
    let mut out = Converted::default();
    let rows = ids.into_iter().zip(labels).zip(times).zip(rej.rows);
    for (i, (((id, label), timestamp), bad)) in rows.enumerate() {
        match (bad, label) {
            (None, Some(label)) => {
                out.labels.push(LabelEvent {
                    request_id: id,
                    label,
                    timestamp,
                });
                out.label_index.push(first_row + i);
            }
            (bad, _) => {
                let mut r = bad.expect("a row without a label is rejected");
                if !id.is_empty() && r.request_id.is_none() {
                    r.request_id = Some(id);
                }
                out.rejected.push(r);
            }
        }
    }
    Ok(out)
}

fn convert_reference(
    batch: &RecordBatch,
    mapping: &ColumnMapping,
    first_row: usize,
    bad_cells: &[BadCell],
) -> Result<Converted, FormatError> {
    let limits = IngestLimits::default();
    let names = names_of(batch);
    let r = mapping.resolve(&names)?;
    let n = batch.num_rows();
    let mut rej = Rejections::new(first_row, n);
    rej.bad_cells(bad_cells, |c| field_of(&r, &names, c));
    let nf = r.features.len();
    let mut rows: Vec<ReferenceRow> = (0..n)
        .map(|_| ReferenceRow {
            features: Vec::with_capacity(nf),
            ..ReferenceRow::default()
        })
        .collect();

    let outcome_cols = |main: Option<usize>,
                        value: Option<usize>,
                        role: &'static str|
     -> Result<Option<(Col, Option<Col>)>, FormatError> {
        if main.is_none() && value.is_none() {
            return Ok(None);
        }
        let m = match main {
            Some(ci) => value_col(batch, ci, role)?,
            None => Col::Null,
        };
        let v = match value {
            Some(ci) => Some(value_col(batch, ci, role)?),
            None => None,
        };
        Ok(Some((m, v)))
    };
    if let Some((c, v)) = outcome_cols(r.prediction, r.prediction_value, "a prediction")? {
        for (i, row) in rows.iter_mut().enumerate() {
            row.prediction = outcome_at(&c, v.as_ref(), i);
            if matches!(row.prediction, Some(Outcome::Number(x)) if !x.is_finite()) {
                rej.reject(i, "prediction", check::NOT_FINITE_OUTCOME);
            }
        }
    }
    let scores = read_scores(batch, &r, rows.len(), &mut rej)?;
    for ((row, s), cs) in rows.iter_mut().zip(scores.score).zip(scores.class_scores) {
        row.score = s;
        row.scores = cs;
    }
    if let Some((c, v)) = outcome_cols(r.label, r.label_value, "a label")? {
        for (i, row) in rows.iter_mut().enumerate() {
            row.label = outcome_at(&c, v.as_ref(), i);
            if matches!(row.label, Some(Outcome::Number(x)) if !x.is_finite()) {
                rej.reject(i, "label", check::NOT_FINITE_OUTCOME);
            }
        }
    }
    fill_features(batch, &r, &mut rej, &limits, |i, name, v| {
        rows[i].features.push((name, v))
    })?;
    fill_explanations(batch, &r, &mut rej, |i, name, x| {
        rows[i].explanations.push((name.to_owned(), x))
    })?;

    let mut out = Converted::default();
    out.reference.reserve(n);
    for (i, (row, bad)) in rows.into_iter().zip(rej.rows).enumerate() {
        match bad {
            Some(r) => out.rejected.push(r),
            None => {
                out.reference.push(row);
                out.reference_index.push(first_row + i);
            }
        }
    }
    Ok(out)
}
