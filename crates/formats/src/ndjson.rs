//! NDJSON (one JSON object per line) and JSON-array tables, read in chunks of lines.

use crate::json::{short, Ordered};
use crate::mapping::{ColumnMapping, Resolved};
use crate::source::{CountingRead, Progress, Source};
use crate::{Converted, FormatError, ReadOptions};
use modelwatch_core::checks as check;
use modelwatch_core::{
    parse_label_row, parse_prediction_row, validate_version, FeatureValue, IngestLimits, Outcome,
    ReferenceRow, Rejection, Timestamp,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Reads NDJSON in chunks of at most `batch_size` rows, so a file of any size streams.
///
/// Rows are numbered by line (0-based); blank lines are skipped but keep their number. A body
/// whose first non-blank byte is `[` is read as one JSON array instead (not streamed), its rows
/// numbered by position in the array.
pub struct NdjsonReader {
    name: String,
    lines: Lines,
    batch_size: usize,
    bytes_total: Option<u64>,
    bytes_read: Arc<AtomicU64>,
    rows_read: u64,
    /// Key list and resolution of the last flat reference row; rows of one file share keys.
    resolved: Option<(Vec<String>, Resolved)>,
    seen_data: bool,
}

enum Lines {
    Stream {
        reader: BufReader<CountingRead>,
        next_line: usize,
        buf: Vec<u8>,
    },
    Array(std::vec::IntoIter<(usize, String)>),
}

/// One non-blank row: its index and its text (or why it is not text).
type Row = (usize, Result<String, String>);

impl NdjsonReader {
    pub fn open(source: &Source, options: &ReadOptions) -> Result<NdjsonReader, FormatError> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let mut reader = BufReader::with_capacity(1 << 20, source.open_read(bytes_read.clone())?);
        let head = reader.fill_buf().map_err(|e| source.io_err(e))?;
        let is_array = head
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'[');
        let lines = if is_array {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).map_err(|e| source.io_err(e))?;
            let rows: Vec<Box<serde_json::value::RawValue>> = serde_json::from_slice(&all)
                .map_err(|e| FormatError::Io {
                    name: source.name(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("not a JSON array of objects: {e}"),
                    ),
                })?;
            Lines::Array(
                rows.into_iter()
                    .enumerate()
                    .map(|(i, r)| (i, r.get().to_string()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )
        } else {
            Lines::Stream {
                reader,
                next_line: 0,
                buf: Vec::new(),
            }
        };
        Ok(NdjsonReader {
            name: source.name(),
            lines,
            batch_size: options.batch_size.max(1),
            bytes_total: source.size(),
            bytes_read,
            rows_read: 0,
            resolved: None,
            seen_data: false,
        })
    }

    pub fn progress(&self) -> Progress {
        Progress {
            rows_total: match &self.lines {
                Lines::Array(it) => Some(self.rows_read + it.len() as u64),
                Lines::Stream { .. } => None,
            },
            rows_read: self.rows_read,
            bytes_total: self.bytes_total,
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
        }
    }

    /// The next up to `batch_size` rows; `None` at the end.
    fn next_rows(&mut self) -> Option<Result<Vec<Row>, FormatError>> {
        let mut rows = Vec::new();
        match &mut self.lines {
            Lines::Array(it) => {
                rows.extend(it.by_ref().take(self.batch_size).map(|(i, s)| (i, Ok(s))))
            }
            Lines::Stream {
                reader,
                next_line,
                buf,
            } => {
                while rows.len() < self.batch_size {
                    buf.clear();
                    match reader.read_until(b'\n', buf) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(source) => {
                            return Some(Err(FormatError::Io {
                                name: self.name.clone(),
                                source,
                            }))
                        }
                    }
                    let index = *next_line;
                    *next_line += 1;
                    if buf.iter().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    let text = std::str::from_utf8(buf)
                        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                        .map_err(|e| format!("line is not valid UTF-8: {e}"));
                    rows.push((index, text));
                }
            }
        }
        if rows.is_empty() {
            return None;
        }
        self.rows_read += rows.len() as u64;
        Some(Ok(rows))
    }

    /// The next chunk of prediction events, each line parsed and checked by
    /// `modelwatch_core::parse_prediction_row`. `default_version` applies to rows without one.
    pub fn next_predictions(
        &mut self,
        now: Timestamp,
        default_version: Option<&str>,
    ) -> Option<Result<Converted, FormatError>> {
        self.next_parsed(
            |t, index, limits| parse_prediction_row(t, index, now, limits),
            |out, index, mut e| {
                if e.model_version.is_none() {
                    if let Some(v) = default_version {
                        validate_version(v).map_err(|r| {
                            Rejection::new(index, "model_version", r)
                                .with_request_id(Some(&e.request_id))
                        })?;
                        e.model_version = Some(v.to_string());
                    }
                }
                out.predictions.push(e);
                out.prediction_index.push(index);
                Ok(())
            },
        )
    }

    /// The next chunk of label events, each line parsed by `modelwatch_core::parse_label_row`.
    pub fn next_labels(&mut self, now: Timestamp) -> Option<Result<Converted, FormatError>> {
        self.next_parsed(
            |t, index, limits| parse_label_row(t, index, now, limits),
            |out, index, l| {
                out.labels.push(l);
                out.label_index.push(index);
                Ok(())
            },
        )
    }

    /// The next chunk of event lines: each parsed by `parse`, then handed to `keep`; a line
    /// that either refuses is rejected alone.
    fn next_parsed<T>(
        &mut self,
        parse: impl Fn(&str, usize, &IngestLimits) -> Result<T, Rejection>,
        mut keep: impl FnMut(&mut Converted, usize, T) -> Result<(), Rejection>,
    ) -> Option<Result<Converted, FormatError>> {
        let limits = IngestLimits::default();
        let rows = match self.next_rows()? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let mut out = Converted::default();
        for (index, text) in rows {
            let kept = text
                .map_err(|r| Rejection::new(index, "", r))
                .and_then(|t| parse(&t, index, &limits))
                .and_then(|e| keep(&mut out, index, e));
            if let Err(r) = kept {
                out.rejected.push(r);
            }
        }
        Some(Ok(out))
    }

    /// The next chunk of reference rows. A line with a `features` object is event-shaped (its
    /// `prediction`, `score`, `scores` and `label` are read too; other keys are ignored); any
    /// other line is flat and read through `mapping` like a table row. An explicitly mapped
    /// column missing from the first row is an error for the file; from a later row, a rejection.
    pub fn next_reference(
        &mut self,
        mapping: &ColumnMapping,
    ) -> Option<Result<Converted, FormatError>> {
        let rows = match self.next_rows()? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let mut out = Converted::default();
        for (index, text) in rows {
            let first = !self.seen_data;
            self.seen_data = true;
            let result = match text {
                Ok(t) => self.reference_row(&t, mapping),
                Err(r) => Err(RowError::Row(String::new(), r)),
            };
            match result {
                Ok(row) => {
                    out.reference.push(row);
                    out.reference_index.push(index);
                }
                Err(RowError::File(e)) if first => return Some(Err(e)),
                Err(RowError::File(e)) => {
                    out.rejected.push(Rejection::new(index, "", e.to_string()))
                }
                Err(RowError::Row(field, reason)) => {
                    out.rejected.push(Rejection::new(index, field, reason))
                }
            }
        }
        Some(Ok(out))
    }

    fn reference_row(
        &mut self,
        text: &str,
        mapping: &ColumnMapping,
    ) -> Result<ReferenceRow, RowError> {
        let obj = match serde_json::from_str::<Ordered<Value>>(text) {
            Ok(o) => o.0,
            Err(e) => {
                let reason = match serde_json::from_str::<Value>(text) {
                    Ok(v) => format!("a row must be a JSON object, got {}", json_type(&v)),
                    Err(_) => format!("malformed JSON: {e}"),
                };
                return Err(RowError::Row(String::new(), reason));
            }
        };
        let get = |k: &str| obj.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        if let Some(features) = get("features") {
            // Event-shaped: the contract's field names, features nested.
            let Value::Object(_) = features else {
                return Err(RowError::Row(
                    "features".into(),
                    format!("expected an object, got {}", json_type(features)),
                ));
            };
            let features: Ordered<Value> = serde_json::from_value(features.clone())
                .map_err(|e| RowError::Row("features".into(), e.to_string()))?;
            let mut row = ReferenceRow::default();
            for (name, v) in features.0 {
                let value = feature_value(&name, &v)?;
                row.features.push((name.into(), value));
            }
            row.prediction = outcome(get("prediction"), "prediction")?;
            row.label = outcome(get("label"), "label")?;
            row.score = score(get("score"))?;
            if let Some(v) = get("scores").filter(|v| !v.is_null()) {
                let scores = scores_object(v)?;
                check::scores(&scores).map_err(|(f, r)| RowError::Row(f, r))?;
                row.scores = Some(scores);
            }
            if let Some(v) = get("explanations").filter(|v| !v.is_null()) {
                row.explanations = explanations_object(v)?;
            }
            return Ok(row);
        }

        // Flat: keys are column names.
        let keys: Vec<&str> = obj.iter().map(|(k, _)| k.as_str()).collect();
        let cached = matches!(&self.resolved, Some((k, _)) if k.iter().map(String::as_str).eq(keys.iter().copied()));
        if !cached {
            let r = mapping.resolve(&keys).map_err(RowError::File)?;
            self.resolved = Some((keys.iter().map(|k| k.to_string()).collect(), r));
        }
        let r = &self.resolved.as_ref().expect("resolved above").1;
        let at = |i: Option<usize>| i.map(|i| &obj[i].1);
        let mut row = ReferenceRow {
            prediction: outcome(
                at(r.prediction_value)
                    .filter(|v| !v.is_null())
                    .or(at(r.prediction)),
                "prediction",
            )?,
            label: outcome(
                at(r.label_value).filter(|v| !v.is_null()).or(at(r.label)),
                "label",
            )?,
            score: score(at(r.score))?,
            ..ReferenceRow::default()
        };
        if let Some(v) = at(r.scores_json).filter(|v| !v.is_null()) {
            row.scores = Some(scores_object(v)?);
        } else if !r.scores_cols.is_empty() {
            let mut scores = Vec::new();
            for (class, i) in &r.scores_cols {
                match &obj[*i].1 {
                    Value::Null => {}
                    Value::Number(p) => {
                        scores.push((class.clone(), p.as_f64().unwrap_or(f64::NAN)))
                    }
                    other => {
                        return Err(RowError::Row(
                            format!("scores.{class}"),
                            format!("expected a probability, got {}", json_type(other)),
                        ))
                    }
                }
            }
            if !scores.is_empty() {
                row.scores = Some(scores);
            }
        }
        if let Some(s) = &row.scores {
            check::scores(s).map_err(|(f, r)| RowError::Row(f, r))?;
        }
        check::feature_count(r.features.len(), &IngestLimits::default())
            .map_err(|reason| RowError::Row("features".into(), reason))?;
        row.features.reserve(r.features.len());
        for &i in &r.features {
            let (name, v) = &obj[i];
            row.features.push((name.into(), feature_value(name, v)?));
        }
        for (feature, i) in &r.explanations {
            if let Some(x) = attribution(feature, &obj[*i].1)? {
                row.explanations.push((feature.clone(), x));
            }
        }
        Ok(row)
    }
}

enum RowError {
    Row(String, String),
    File(FormatError),
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One attribution: a finite number, or `None` for null.
fn attribution(feature: &str, v: &Value) -> Result<Option<f64>, RowError> {
    let bad = |reason: String| RowError::Row(format!("explanations.{feature}"), reason);
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_f64().filter(|x| x.is_finite()) {
            Some(x) => Ok(Some(x)),
            None => Err(bad(
                "must be a finite number (the feature's attribution)".into()
            )),
        },
        other => Err(bad(format!(
            "expected a number (the feature's attribution), got {}",
            json_type(other)
        ))),
    }
}

/// An event-shaped row's `explanations` object: attributions by feature.
fn explanations_object(v: &Value) -> Result<Vec<(String, f64)>, RowError> {
    let Value::Object(_) = v else {
        return Err(RowError::Row(
            "explanations".into(),
            format!("expected an object, got {}", json_type(v)),
        ));
    };
    let pairs: Ordered<Value> = serde_json::from_value(v.clone())
        .map_err(|e| RowError::Row("explanations".into(), e.to_string()))?;
    let mut out = Vec::with_capacity(pairs.0.len());
    for (feature, x) in pairs.0 {
        if let Some(x) = attribution(&feature, &x)? {
            out.push((feature, x));
        }
    }
    check::explanations(&out, &IngestLimits::default()).map_err(|(f, r)| RowError::Row(f, r))?;
    Ok(out)
}

fn feature_value(name: &str, v: &Value) -> Result<FeatureValue, RowError> {
    Ok(match v {
        Value::Null => FeatureValue::Null,
        Value::Bool(b) => FeatureValue::Bool(*b),
        Value::Number(n) => FeatureValue::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => FeatureValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(RowError::Row(
                format!("features.{name}"),
                "nested objects and arrays are not supported: flatten the feature".into(),
            ))
        }
    })
}

fn outcome(v: Option<&Value>, field: &str) -> Result<Option<Outcome>, RowError> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(Outcome::Bool(*b)),
        Some(Value::Number(n)) => Some(Outcome::Number(n.as_f64().unwrap_or(f64::NAN))),
        Some(Value::String(s)) => Some(Outcome::Text(s.clone())),
        Some(other) => {
            return Err(RowError::Row(
                field.into(),
                format!(
                    "expected a class (string, integer or boolean) or a number, got {} {}",
                    json_type(other),
                    short(&other.to_string())
                ),
            ))
        }
    })
}

fn score(v: Option<&Value>) -> Result<Option<f64>, RowError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let s = n.as_f64().unwrap_or(f64::NAN);
            check::score(s).map_err(|r| RowError::Row("score".into(), r))?;
            Ok(Some(s))
        }
        Some(other) => Err(RowError::Row(
            "score".into(),
            format!(
                "expected a number, got {} {}",
                json_type(other),
                short(&other.to_string())
            ),
        )),
    }
}

fn scores_object(v: &Value) -> Result<Vec<(String, f64)>, RowError> {
    let Value::Object(m) = v else {
        // The export layout holds the object as JSON text.
        if let Value::String(s) = v {
            return crate::json::object_in_cell::<f64>(s)
                .map_err(|r| RowError::Row("scores".into(), r));
        }
        return Err(RowError::Row(
            "scores".into(),
            format!("expected an object, got {}", json_type(v)),
        ));
    };
    let mut scores = Vec::with_capacity(m.len());
    for (class, p) in m {
        let Some(p) = p.as_f64() else {
            return Err(RowError::Row(
                format!("scores.{class}"),
                format!("expected a probability, got {}", json_type(p)),
            ));
        };
        scores.push((class.clone(), p));
    }
    Ok(scores)
}
