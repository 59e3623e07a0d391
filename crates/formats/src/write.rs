//! Parquet export of prediction and label events.
//!
//! Layout of a predictions file, one row per event, in this column order:
//!
//! | column | type | holds |
//! |---|---|---|
//! | `request_id` | Utf8 | |
//! | `timestamp` | Timestamp(µs, "UTC") | event time |
//! | `model_version` | Utf8, nullable | |
//! | `prediction` | Utf8, nullable | the class key (`Outcome::class_key`): `1`, `fraud`, `true` |
//! | `prediction_value` | Float64, nullable | the number, when the prediction was a number |
//! | `score` | Float64, nullable | |
//! | `scores` | Utf8, nullable | multiclass probabilities as a JSON object, classes in order |
//! | `latency_ms` | Float64, nullable | |
//! | `error` | Utf8, nullable | |
//! | `tags` | Utf8, nullable | tags as a JSON object; null when there are none |
//! | one per feature of the schema | Float64 / Utf8 / Boolean by `FeatureKind` | |
//!
//! A labels file has `request_id`, `label` (class key), `label_value` (Float64 when the label
//! was a number) and `timestamp`. Both are zstd-compressed with row groups of 131,072 rows.
//! Reading either back with [`crate::TableReader`] and the default [`crate::ColumnMapping`]
//! gives the same events, except that a boolean outcome comes back as the text `true`/`false`,
//! which names the same class.

use crate::FormatError;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use modelwatch_core::{FeatureKind, FeatureValue, LabelEvent, Outcome, PredictionEvent, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per Parquet row group in exported files.
pub const ROW_GROUP_ROWS: usize = 131_072;

const PREDICTION_COLUMNS: &[&str] = &[
    "request_id",
    "timestamp",
    "model_version",
    "prediction",
    "prediction_value",
    "score",
    "scores",
    "latency_ms",
    "error",
    "tags",
];

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

struct Sink {
    path: PathBuf,
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    rows: u64,
}

impl Sink {
    fn create(path: &Path, schema: SchemaRef) -> Result<Sink, FormatError> {
        let file = File::create(path).map_err(|source| FormatError::Write {
            name: path.display().to_string(),
            source,
        })?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props()))
            .map_err(|e| parquet_err(path, e))?;
        Ok(Sink {
            path: path.to_path_buf(),
            writer,
            schema,
            rows: 0,
        })
    }

    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<(), FormatError> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .expect("columns built for the writer's schema");
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(&batch)
            .map_err(|e| parquet_err(&self.path, e))
    }

    fn finish(self) -> Result<u64, FormatError> {
        self.writer
            .close()
            .map_err(|e| parquet_err(&self.path, e))?;
        Ok(self.rows)
    }
}

fn parquet_err(path: &Path, e: parquet::errors::ParquetError) -> FormatError {
    FormatError::ParquetWrite {
        name: path.display().to_string(),
        message: e.to_string(),
    }
}

fn pairs_json<V: serde::Serialize>(pairs: &[(String, V)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(k).expect("a string serializes"));
        s.push(':');
        s.push_str(&serde_json::to_string(v).expect("a scalar serializes"));
    }
    s.push('}');
    s
}

fn outcome_columns(o: Option<&Outcome>, key: &mut StringBuilder, value: &mut Float64Builder) {
    key.append_option(o.map(Outcome::class_key));
    value.append_option(match o {
        Some(Outcome::Number(n)) => Some(*n),
        _ => None,
    });
}

enum FeatureBuilder {
    Number(Float64Builder),
    Text(StringBuilder),
    Bool(BooleanBuilder),
}

/// Writes prediction events to a Parquet file, in the layout of the module docs.
///
/// The feature columns are the schema's; an event's features outside the schema are not
/// written. Nothing is readable until [`PredictionWriter::finish`] succeeds.
pub struct PredictionWriter {
    sink: Sink,
    features: Vec<(String, FeatureKind)>,
    feature_index: HashMap<String, usize>,
}

impl PredictionWriter {
    /// Creates (or truncates) `path`. Fails if a feature has the name of a fixed column.
    pub fn create(path: &Path, schema: &Schema) -> Result<PredictionWriter, FormatError> {
        let mut fields = vec![
            Field::new("request_id", DataType::Utf8, false),
            Field::new("timestamp", timestamp_type(), false),
            Field::new("model_version", DataType::Utf8, true),
            Field::new("prediction", DataType::Utf8, true),
            Field::new("prediction_value", DataType::Float64, true),
            Field::new("score", DataType::Float64, true),
            Field::new("scores", DataType::Utf8, true),
            Field::new("latency_ms", DataType::Float64, true),
            Field::new("error", DataType::Utf8, true),
            Field::new("tags", DataType::Utf8, true),
        ];
        let mut features = Vec::new();
        let mut feature_index = HashMap::new();
        for f in &schema.features {
            // `label` is reserved too: a label column next to predictions is read as labels.
            if PREDICTION_COLUMNS.contains(&f.name.as_str())
                || matches!(f.name.as_str(), "label" | "label_value")
            {
                return Err(FormatError::ReservedName(f.name.clone()));
            }
            let t = match f.kind {
                FeatureKind::Numeric => DataType::Float64,
                FeatureKind::Boolean => DataType::Boolean,
                FeatureKind::Categorical | FeatureKind::Text => DataType::Utf8,
            };
            fields.push(Field::new(&f.name, t, true));
            feature_index.insert(f.name.clone(), features.len());
            features.push((f.name.clone(), f.kind));
        }
        let schema = Arc::new(ArrowSchema::new(fields));
        Ok(PredictionWriter {
            sink: Sink::create(path, schema)?,
            features,
            feature_index,
        })
    }

    /// Appends events. Fails if a feature value does not fit its column's kind.
    pub fn write(&mut self, events: &[PredictionEvent]) -> Result<(), FormatError> {
        let n = events.len();
        let mut request_id = StringBuilder::with_capacity(n, n * 16);
        let mut timestamp = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut version = StringBuilder::new();
        let mut prediction = StringBuilder::new();
        let mut prediction_value = Float64Builder::with_capacity(n);
        let mut score = Float64Builder::with_capacity(n);
        let mut scores = StringBuilder::new();
        let mut latency = Float64Builder::with_capacity(n);
        let mut error = StringBuilder::new();
        let mut tags = StringBuilder::new();
        let mut feats: Vec<FeatureBuilder> = self
            .features
            .iter()
            .map(|(_, k)| match k {
                FeatureKind::Numeric => FeatureBuilder::Number(Float64Builder::with_capacity(n)),
                FeatureKind::Boolean => FeatureBuilder::Bool(BooleanBuilder::with_capacity(n)),
                FeatureKind::Categorical | FeatureKind::Text => {
                    FeatureBuilder::Text(StringBuilder::new())
                }
            })
            .collect();
        let mut row: Vec<Option<&FeatureValue>> = vec![None; self.features.len()];
        for e in events {
            request_id.append_value(&e.request_id);
            timestamp.append_value(e.timestamp.micros());
            version.append_option(e.model_version.as_deref());
            outcome_columns(
                e.prediction.as_ref(),
                &mut prediction,
                &mut prediction_value,
            );
            score.append_option(e.score);
            scores.append_option(e.scores.as_deref().map(pairs_json));
            latency.append_option(e.latency_ms);
            error.append_option(e.error.as_deref());
            tags.append_option((!e.tags.is_empty()).then(|| pairs_json(&e.tags)));

            row.iter_mut().for_each(|s| *s = None);
            for (name, v) in &e.features {
                if let Some(&i) = self.feature_index.get(name.as_str()) {
                    row[i] = Some(v);
                }
            }
            for (i, (b, v)) in feats.iter_mut().zip(&row).enumerate() {
                let v = v.unwrap_or(&FeatureValue::Null);
                let ok = match (b, v) {
                    (FeatureBuilder::Number(b), FeatureValue::Null) => {
                        b.append_null();
                        true
                    }
                    (FeatureBuilder::Text(b), FeatureValue::Null) => {
                        b.append_null();
                        true
                    }
                    (FeatureBuilder::Bool(b), FeatureValue::Null) => {
                        b.append_null();
                        true
                    }
                    (FeatureBuilder::Number(b), FeatureValue::Number(x)) => {
                        b.append_value(*x);
                        true
                    }
                    (FeatureBuilder::Text(b), FeatureValue::Text(s)) => {
                        b.append_value(s);
                        true
                    }
                    (FeatureBuilder::Bool(b), FeatureValue::Bool(x)) => {
                        b.append_value(*x);
                        true
                    }
                    _ => false,
                };
                if !ok {
                    let (name, kind) = &self.features[i];
                    return Err(FormatError::ExportKind {
                        feature: name.clone(),
                        request_id: e.request_id.clone(),
                        expected: kind.as_str(),
                        got: v.type_name(),
                    });
                }
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(request_id.finish()),
            Arc::new(timestamp.finish()),
            Arc::new(version.finish()),
            Arc::new(prediction.finish()),
            Arc::new(prediction_value.finish()),
            Arc::new(score.finish()),
            Arc::new(scores.finish()),
            Arc::new(latency.finish()),
            Arc::new(error.finish()),
            Arc::new(tags.finish()),
        ];
        for b in feats {
            columns.push(match b {
                FeatureBuilder::Number(mut b) => Arc::new(b.finish()),
                FeatureBuilder::Text(mut b) => Arc::new(b.finish()),
                FeatureBuilder::Bool(mut b) => Arc::new(b.finish()),
            });
        }
        self.sink.write(columns)
    }

    /// Flushes and closes the file; returns the number of rows written.
    pub fn finish(self) -> Result<u64, FormatError> {
        self.sink.finish()
    }
}

/// Writes label events to a Parquet file: `request_id`, `label`, `label_value`, `timestamp`.
pub struct LabelWriter {
    sink: Sink,
}

impl LabelWriter {
    pub fn create(path: &Path) -> Result<LabelWriter, FormatError> {
        let schema = Arc::new(ArrowSchema::new(vec![
            Field::new("request_id", DataType::Utf8, false),
            Field::new("label", DataType::Utf8, false),
            Field::new("label_value", DataType::Float64, true),
            Field::new("timestamp", timestamp_type(), false),
        ]));
        Ok(LabelWriter {
            sink: Sink::create(path, schema)?,
        })
    }

    pub fn write(&mut self, labels: &[LabelEvent]) -> Result<(), FormatError> {
        let n = labels.len();
        let mut request_id = StringBuilder::with_capacity(n, n * 16);
        let mut label = StringBuilder::new();
        let mut label_value = Float64Builder::with_capacity(n);
        let mut timestamp = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        for l in labels {
            request_id.append_value(&l.request_id);
            outcome_columns(Some(&l.label), &mut label, &mut label_value);
            timestamp.append_value(l.timestamp.micros());
        }
        self.sink.write(vec![
            Arc::new(request_id.finish()),
            Arc::new(label.finish()),
            Arc::new(label_value.finish()),
            Arc::new(timestamp.finish()),
        ])
    }

    /// Flushes and closes the file; returns the number of rows written.
    pub fn finish(self) -> Result<u64, FormatError> {
        self.sink.finish()
    }
}
