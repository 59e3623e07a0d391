use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Float32Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampNanosecondArray,
};
use arrow::datatypes::Int8Type;
use modelwatch_core::{
    parse_timestamp, FeatureKind, FeatureSpec, FeatureValue, LabelEvent, Outcome, PredictionEvent,
    Schema, Timestamp,
};
use modelwatch_formats::{
    to_labels, to_predictions, to_reference_rows, ColumnMapping, Converted, FormatError,
    ImportReader, LabelWriter, PredictionWriter, ReadOptions, RowKind, Source, TableFormat,
    TableReader,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn now() -> Timestamp {
    parse_timestamp("2026-06-01T00:00:00Z").unwrap()
}

fn ts(s: &str) -> Timestamp {
    parse_timestamp(s).unwrap()
}

fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn opts(batch_size: usize) -> ReadOptions {
    ReadOptions {
        batch_size,
        ..ReadOptions::default()
    }
}

/// Reads a whole source through `ImportReader` and merges the chunks.
fn import(
    source: &Source,
    format: TableFormat,
    kind: RowKind,
    mapping: ColumnMapping,
) -> Converted {
    import_with(source, format, kind, mapping, opts(2), Some("v1")).unwrap()
}

fn import_with(
    source: &Source,
    format: TableFormat,
    kind: RowKind,
    mapping: ColumnMapping,
    options: ReadOptions,
    default_version: Option<&str>,
) -> Result<Converted, FormatError> {
    let mut r = ImportReader::open(source, format, kind, mapping, &options)?;
    let mut all = Converted::default();
    while let Some(c) = r.next_chunk(now(), default_version) {
        let c = c?;
        all.predictions.extend(c.predictions);
        all.labels.extend(c.labels);
        all.reference.extend(c.reference);
        all.rejected.extend(c.rejected);
    }
    Ok(all)
}

fn feature<'a>(e: &'a PredictionEvent, name: &str) -> &'a FeatureValue {
    &e.features.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn detects_format_from_extension_bytes_and_content_type() {
    assert_eq!(
        TableFormat::from_extension(Path::new("a.CSV")),
        Some(TableFormat::Csv)
    );
    assert_eq!(
        TableFormat::from_extension(Path::new("a.parquet")),
        Some(TableFormat::Parquet)
    );
    assert_eq!(
        TableFormat::from_extension(Path::new("a.jsonl")),
        Some(TableFormat::Ndjson)
    );
    assert_eq!(TableFormat::from_extension(Path::new("a.bin")), None);
    assert_eq!(TableFormat::sniff(b"PAR1\x15\x04"), TableFormat::Parquet);
    assert_eq!(TableFormat::sniff(b"\n  {\"a\":1}"), TableFormat::Ndjson);
    assert_eq!(TableFormat::sniff(b"a,b\n1,2"), TableFormat::Csv);
    let ct = |t: &str, body: &[u8]| TableFormat::from_content_type(Some(t), body).unwrap();
    assert_eq!(ct("text/csv; charset=utf-8", b""), TableFormat::Csv);
    assert_eq!(
        ct("application/vnd.apache.parquet", b""),
        TableFormat::Parquet
    );
    assert_eq!(ct("application/x-parquet", b""), TableFormat::Parquet);
    assert_eq!(ct("application/x-ndjson", b""), TableFormat::Ndjson);
    assert_eq!(ct("application/json", b""), TableFormat::Ndjson);
    assert_eq!(
        ct("application/octet-stream", b"PAR1"),
        TableFormat::Parquet
    );
    let err = TableFormat::from_content_type(Some("image/png"), b"").unwrap_err();
    assert!(err.to_string().contains("image/png"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), "upload", "{\"request_id\":\"r\"}\n");
    assert_eq!(TableFormat::detect(&p).unwrap(), TableFormat::Ndjson);
}

const CSV_WITH_ALIASES: &str = "\
request_id,timestamp,age,country,vip,empty,mixed,y_pred,y_pred_proba,y_true
r-0,2026-01-02 03:04:05,41,DE,true,,1,1,0.9,1
r-1,2026-01-02T03:04:06Z,35.5,FR,false,,x,0,0.2,
r-2,2026-01-02 03:04:07,,US,true,,2,1,0.8,0
r-3,2026-01-02 03:04:08,abc,US,true,,3,1,0.7,1
,2026-01-02 03:04:09,20,US,true,,4,1,0.7,1
r-5,2026-01-02 03:04:10,nan,US,true,,5,1,0.7,1
r-6,2026-01-02 03:04:11,20,US,true,,6,1,1.5,1
r-7,yesterday,20,US,true,,7,1,0.5,1
r-8,1990-01-01 00:00:00,20,US,true,,8,1,0.5,1
r-9,2026-01-02 03:04:12,30,IT,maybe,,9,0,0.1,0
";

#[test]
fn csv_predictions_with_aliases_typed_features_and_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "p.csv", CSV_WITH_ALIASES);
    // Batches of 2 rows: types are inferred from the first 2, so `abc` in row 3 is a bad cell.
    let out = import(
        &Source::path(&path),
        TableFormat::Csv,
        RowKind::Predictions,
        ColumnMapping::default(),
    );

    let ids: Vec<&str> = out
        .predictions
        .iter()
        .map(|p| p.request_id.as_str())
        .collect();
    assert_eq!(ids, ["r-0", "r-1", "r-2"]);
    let r0 = &out.predictions[0];
    assert_eq!(r0.timestamp, ts("2026-01-02T03:04:05Z"));
    assert_eq!(r0.model_version.as_deref(), Some("v1"));
    assert_eq!(r0.prediction, Some(Outcome::Number(1.0)));
    assert_eq!(r0.score, Some(0.9));
    assert_eq!(feature(r0, "age"), &FeatureValue::Number(41.0));
    assert_eq!(feature(r0, "country"), &FeatureValue::Text("DE".into()));
    assert_eq!(feature(r0, "vip"), &FeatureValue::Bool(true));
    // All-null and mixed columns are text, not a failed read.
    assert_eq!(feature(r0, "empty"), &FeatureValue::Null);
    assert_eq!(feature(r0, "mixed"), &FeatureValue::Text("1".into()));
    assert_eq!(
        feature(&out.predictions[1], "mixed"),
        &FeatureValue::Text("x".into())
    );
    assert_eq!(feature(&out.predictions[2], "age"), &FeatureValue::Null);
    // Aliases are roles, not features.
    assert!(r0.features.iter().all(|(n, _)| !n.starts_with("y_")));
    assert_eq!(r0.features.len(), 5);

    // y_true gives labels for rows with a label, at the prediction's time.
    assert_eq!(
        out.labels,
        vec![
            LabelEvent {
                request_id: "r-0".into(),
                label: Outcome::Number(1.0),
                timestamp: ts("2026-01-02T03:04:05Z")
            },
            LabelEvent {
                request_id: "r-2".into(),
                label: Outcome::Number(0.0),
                timestamp: ts("2026-01-02T03:04:07Z")
            },
        ]
    );

    let rejected: Vec<(usize, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        rejected,
        [
            (3, "features.age"),
            (4, "request_id"),
            (5, "features.age"),
            (6, "score"),
            (7, "timestamp"),
            (8, "timestamp"),
            (9, "features.vip"),
        ]
    );
    let reason = |i: usize| {
        out.rejected
            .iter()
            .find(|r| r.index == i)
            .unwrap()
            .reason
            .as_str()
    };
    assert!(
        reason(3).contains("expected a number") && reason(3).contains("\"abc\""),
        "{}",
        reason(3)
    );
    assert_eq!(
        reason(5),
        "must be a finite number; send null for a missing value"
    );
    assert!(
        reason(6).starts_with("1.5 is outside [0, 1]"),
        "{}",
        reason(6)
    );
    assert!(reason(7).contains("not a timestamp"), "{}", reason(7));
    assert!(reason(8).contains("before 2000-01-01"), "{}", reason(8));
    assert_eq!(out.rejected[0].request_id.as_deref(), Some("r-3"));
}

#[test]
fn explicit_column_missing_is_an_error_naming_it_and_the_file_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "p.csv", CSV_WITH_ALIASES);
    let mapping = ColumnMapping {
        label: Some("is_fraud".into()),
        ..ColumnMapping::default()
    };
    let err = import_with(
        &Source::path(&path),
        TableFormat::Csv,
        RowKind::Predictions,
        mapping,
        opts(4),
        None,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`is_fraud`"), "{msg}");
    assert!(msg.contains("`request_id`, `timestamp`, `age`"), "{msg}");

    // No request id at all: a file-level error too.
    let path = write_file(dir.path(), "q.csv", "id,prediction\n1,1\n");
    let err = import_with(
        &Source::path(&path),
        TableFormat::Csv,
        RowKind::Predictions,
        ColumnMapping::default(),
        opts(4),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no request_id column"), "{err}");
}

#[test]
fn explicit_mapping_tags_exclusions_and_multiclass_score_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "m.csv",
        "id,when,cls,score_a,score_b,region,debug,x\n\
         007,1767323045,a,0.7,0.3,eu,zz,1\n\
         008,1767323046,b,0.2,0.9,us,zz,2\n",
    );
    let mapping = ColumnMapping {
        request_id: Some("id".into()),
        timestamp: Some("when".into()),
        prediction: Some("cls".into()),
        scores_prefix: Some("score_".into()),
        tags: vec!["region".into()],
        exclude: vec!["debug".into()],
        ..ColumnMapping::default()
    };
    let out = import(
        &Source::path(&path),
        TableFormat::Csv,
        RowKind::Predictions,
        mapping,
    );
    let p = &out.predictions[0];
    // Text columns keep leading zeros; integer timestamps are epoch seconds.
    assert_eq!(p.request_id, "007");
    assert_eq!(p.timestamp, ts("2026-01-02T03:04:05Z"));
    assert_eq!(p.prediction, Some(Outcome::Text("a".into())));
    assert_eq!(p.scores, Some(vec![("a".into(), 0.7), ("b".into(), 0.3)]));
    assert_eq!(p.tags, vec![("region".into(), "eu".into())]);
    assert_eq!(p.features, vec![("x".into(), FeatureValue::Number(1.0))]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].field, "scores");
    assert!(
        out.rejected[0].reason.contains("sum to 1.1000"),
        "{}",
        out.rejected[0].reason
    );
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    buf
}

fn typed_batch() -> RecordBatch {
    let t0 = ts("2026-01-02T03:04:05Z").micros() * 1000;
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("request_id", Arc::new(Int64Array::from(vec![10, 11, 12]))),
        (
            "timestamp",
            Arc::new(
                TimestampNanosecondArray::from(vec![Some(t0), None, Some(t0 + 1_000_000_000)])
                    .with_timezone("Europe/Berlin"),
            ),
        ),
        (
            "n_int",
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])),
        ),
        (
            "n_float",
            Arc::new(Float32Array::from(vec![0.5, f32::INFINITY, 1.5])),
        ),
        (
            "cat",
            Arc::new(DictionaryArray::<Int8Type>::from_iter(vec![
                Some("a"),
                Some("b"),
                None,
            ])),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            "prediction",
            Arc::new(StringArray::from(vec!["fraud", "ok", "ok"])),
        ),
        (
            "target",
            Arc::new(StringArray::from(vec![Some("fraud"), None, Some("ok")])),
        ),
    ];
    RecordBatch::try_from_iter(cols).unwrap()
}

#[test]
fn parquet_types_convert_column_by_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    std::fs::write(&path, parquet_bytes(&typed_batch())).unwrap();
    let mut reader =
        TableReader::open(&Source::path(&path), TableFormat::Parquet, &opts(10)).unwrap();
    assert_eq!(reader.progress().rows_total, Some(3));
    let chunk = reader.next().unwrap().unwrap();
    let out = chunk
        .to_predictions(&ColumnMapping::default(), now(), None)
        .unwrap();
    assert_eq!(out.predictions.len(), 2);
    let p = &out.predictions[0];
    assert_eq!(p.request_id, "10");
    assert_eq!(
        p.timestamp,
        ts("2026-01-02T03:04:05Z"),
        "a zoned timestamp is its UTC instant"
    );
    assert_eq!(p.model_version, None);
    assert_eq!(
        p.features,
        vec![
            ("n_int".into(), FeatureValue::Number(1.0)),
            ("n_float".into(), FeatureValue::Number(0.5)),
            ("cat".into(), FeatureValue::Text("a".into())),
            ("flag".into(), FeatureValue::Bool(true)),
        ]
    );
    let p2 = &out.predictions[1];
    assert_eq!(p2.request_id, "12");
    assert_eq!(p2.features[0].1, FeatureValue::Number(3.0));
    assert_eq!(p2.features[2].1, FeatureValue::Null);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(
        (out.rejected[0].index, out.rejected[0].field.as_str()),
        (1, "features.n_float")
    );
    assert_eq!(out.labels.len(), 2, "`target` is the label alias");
    assert_eq!(out.labels[1].label, Outcome::Text("ok".into()));

    // Reference rows: the same batch, ids and timestamps are not features.
    let r = to_reference_rows(&chunk.batch, &ColumnMapping::default(), 0).unwrap();
    assert_eq!(r.reference.len(), 2);
    assert_eq!(r.reference[0].features.len(), 4);
    assert_eq!(r.reference[0].label, Some(Outcome::Text("fraud".into())));
    assert_eq!(r.reference[1].label, Some(Outcome::Text("ok".into())));
}

#[test]
fn bytes_input_reads_like_a_file() {
    let body = parquet_bytes(&typed_batch());
    let format = TableFormat::from_content_type(Some("application/octet-stream"), &body).unwrap();
    assert_eq!(format, TableFormat::Parquet);
    let out = import(
        &Source::bytes(body),
        format,
        RowKind::Reference,
        ColumnMapping::default(),
    );
    assert_eq!((out.reference.len(), out.rejected.len()), (2, 1));

    let csv = bytes::Bytes::from_static(b"age,country,label\n41,DE,1\n35,FR,0\n");
    let len = csv.len() as u64;
    let mut reader = ImportReader::open(
        &Source::bytes(csv),
        TableFormat::Csv,
        RowKind::Reference,
        ColumnMapping::default(),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(reader.progress().bytes_total, Some(len));
    let out = reader.next_chunk(now(), None).unwrap().unwrap();
    assert!(reader.next_chunk(now(), None).is_none());
    assert_eq!(reader.progress().bytes_read, len);
    assert_eq!(reader.progress().rows_read, 2);
    assert_eq!(
        out.reference[1].features,
        vec![
            ("age".into(), FeatureValue::Number(35.0)),
            ("country".into(), FeatureValue::Text("FR".into()))
        ]
    );
    assert_eq!(out.reference[1].label, Some(Outcome::Number(0.0)));
}

fn schema() -> Schema {
    let f = |name: &str, kind| FeatureSpec {
        name: name.into(),
        kind,
    };
    Schema {
        features: vec![
            f("age", FeatureKind::Numeric),
            f("country", FeatureKind::Categorical),
            f("vip", FeatureKind::Boolean),
        ],
        declared: false,
    }
}

fn events() -> Vec<PredictionEvent> {
    (0..5)
        .map(|i| PredictionEvent {
            request_id: format!("r-{i}"),
            timestamp: Timestamp(ts("2026-01-02T03:04:05Z").micros() + i * 1_234_567),
            model_version: (i % 2 == 0).then(|| "v3".to_string()),
            features: vec![
                (
                    "age".into(),
                    if i == 3 {
                        FeatureValue::Null
                    } else {
                        FeatureValue::Number(40.5 + i as f64)
                    },
                ),
                (
                    "country".into(),
                    FeatureValue::Text(["DE", "FR"][i as usize % 2].into()),
                ),
                ("vip".into(), FeatureValue::Bool(i % 3 == 0)),
            ],
            prediction: Some(if i == 4 {
                Outcome::Text("fraud".into())
            } else {
                Outcome::Number(i as f64 % 2.0)
            }),
            score: (i != 4).then_some(0.25 * i as f64),
            scores: (i == 4).then(|| vec![("ok".into(), 0.09), ("fraud".into(), 0.91)]),
            latency_ms: Some(12.5),
            cost: None,
            error: (i == 2).then(|| "timeout \"upstream\"".into()),
            tags: if i == 1 {
                vec![("region".into(), "eu".into())]
            } else {
                vec![]
            },
            explanations: Vec::new(),
            role: modelwatch_core::Role::Served,
        })
        .collect()
}

#[test]
fn parquet_export_round_trips_predictions_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.parquet");
    let evs = events();
    let mut w = PredictionWriter::create(&path, &schema()).unwrap();
    w.write(&evs[..2]).unwrap();
    w.write(&evs[2..]).unwrap();
    assert_eq!(w.finish().unwrap(), 5);

    let out = import_with(
        &Source::path(&path),
        TableFormat::detect(&path).unwrap(),
        RowKind::Predictions,
        ColumnMapping::default(),
        opts(3),
        None,
    )
    .unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.predictions, evs);

    let labels: Vec<LabelEvent> = evs
        .iter()
        .map(|e| LabelEvent {
            request_id: e.request_id.clone(),
            label: e.prediction.clone().unwrap(),
            timestamp: e.timestamp,
        })
        .collect();
    let lpath = dir.path().join("labels.parquet");
    let mut w = LabelWriter::create(&lpath).unwrap();
    w.write(&labels).unwrap();
    w.finish().unwrap();
    let mut r = TableReader::open(
        &Source::path(&lpath),
        TableFormat::Parquet,
        &ReadOptions::default(),
    )
    .unwrap();
    let back = to_labels(
        &r.next().unwrap().unwrap().batch,
        &ColumnMapping::default(),
        0,
        now(),
    )
    .unwrap();
    assert_eq!(back.labels, labels);
}

#[test]
fn export_refuses_a_value_of_the_wrong_kind() {
    let dir = tempfile::tempdir().unwrap();
    let mut evs = events();
    evs[1].features[0].1 = FeatureValue::Text("old".into());
    let mut w = PredictionWriter::create(&dir.path().join("x.parquet"), &schema()).unwrap();
    let err = w.write(&evs).unwrap_err().to_string();
    assert!(
        err.contains("feature `age`") && err.contains("\"r-1\""),
        "{err}"
    );
}

#[test]
fn ndjson_predictions_and_labels_stream_through_core_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "p.ndjson",
        "{\"request_id\":\"r-0\",\"timestamp\":\"2026-01-02T03:04:05Z\",\"features\":{\"age\":41},\"prediction\":1}\n\
         \n\
         {\"request_id\":\"r-2\",\"prediction\":1,\"score\":2}\n\
         not json\n\
         {\"request_id\":\"r-4\",\"model_version\":\"v9\",\"prediction\":\"a\"}\n",
    );
    let out = import(
        &Source::path(&path),
        TableFormat::Ndjson,
        RowKind::Predictions,
        ColumnMapping::default(),
    );
    let got: Vec<(&str, Option<&str>)> = out
        .predictions
        .iter()
        .map(|p| (p.request_id.as_str(), p.model_version.as_deref()))
        .collect();
    assert_eq!(got, [("r-0", Some("v1")), ("r-4", Some("v9"))]);
    assert_eq!(
        out.predictions[0].features,
        vec![("age".into(), FeatureValue::Number(41.0))]
    );
    let rej: Vec<(usize, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(rej, [(2, "score"), (3, "")]);

    let lpath = write_file(dir.path(), "l.jsonl", "{\"request_id\":\"r-0\",\"label\":1,\"timestamp\":\"2026-01-09T00:00:00Z\"}\n{\"request_id\":\"r-1\"}\n");
    let out = import(
        &Source::path(&lpath),
        TableFormat::Ndjson,
        RowKind::Labels,
        ColumnMapping::default(),
    );
    assert_eq!(
        out.labels,
        vec![LabelEvent {
            request_id: "r-0".into(),
            label: Outcome::Number(1.0),
            timestamp: ts("2026-01-09T00:00:00Z")
        }]
    );
    assert_eq!(
        (out.rejected[0].index, out.rejected[0].field.as_str()),
        (1, "label")
    );
}

#[test]
fn ndjson_reference_rows_flat_or_event_shaped_and_json_arrays() {
    let body = "{\"age\": 41, \"country\": \"DE\", \"label\": 1}\n\
                {\"features\": {\"age\": 35, \"country\": null}, \"prediction\": 0, \"label\": 0}\n\
                {\"age\": [1], \"country\": \"FR\", \"label\": 1}\n\
                {\"age\": 50, \"country\": \"FR\", \"y_true\": 1, \"y_pred_proba\": 0.4}\n";
    let out = import(
        &Source::bytes(body.as_bytes().to_vec()),
        TableFormat::Ndjson,
        RowKind::Reference,
        ColumnMapping::default(),
    );
    assert_eq!(out.reference.len(), 3);
    assert_eq!(
        out.reference[0].features,
        vec![
            ("age".into(), FeatureValue::Number(41.0)),
            ("country".into(), FeatureValue::Text("DE".into()))
        ]
    );
    assert_eq!(out.reference[0].label, Some(Outcome::Number(1.0)));
    assert_eq!(
        out.reference[1].features,
        vec![
            ("age".into(), FeatureValue::Number(35.0)),
            ("country".into(), FeatureValue::Null)
        ]
    );
    assert_eq!(out.reference[1].prediction, Some(Outcome::Number(0.0)));
    assert_eq!(out.reference[2].label, Some(Outcome::Number(1.0)));
    assert_eq!(out.reference[2].score, Some(0.4));
    assert_eq!(out.reference[2].features.len(), 2);
    assert_eq!(
        (out.rejected[0].index, out.rejected[0].field.as_str()),
        (2, "features.age")
    );

    let array = b"[{\"age\": 1}, {\"age\": 2}]".to_vec();
    let format = TableFormat::from_content_type(Some("application/json"), &array).unwrap();
    let out = import(
        &Source::bytes(array),
        format,
        RowKind::Reference,
        ColumnMapping::default(),
    );
    assert_eq!(out.reference.len(), 2);
    assert_eq!(
        out.reference[1].features,
        vec![("age".into(), FeatureValue::Number(2.0))]
    );
}

#[test]
fn direct_batch_conversion_offsets_row_indices() {
    let batch = RecordBatch::try_from_iter(vec![
        (
            "request_id",
            Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
        ),
        (
            "prediction",
            Arc::new(Int32Array::from(vec![1, 0])) as ArrayRef,
        ),
    ])
    .unwrap();
    let out = to_predictions(&batch, &ColumnMapping::default(), 1000, now(), None).unwrap();
    assert_eq!(
        out.predictions[0].timestamp,
        now(),
        "no timestamp column: arrival time"
    );
    assert_eq!(
        (out.rejected[0].index, out.rejected[0].field.as_str()),
        (1001, "request_id")
    );
}

#[test]
fn large_batches_split_across_threads_keep_row_order_and_indices() {
    let mut csv = String::from("request_id,prediction,score,x\n");
    for i in 0..40_000 {
        let x = if i == 30_001 {
            "oops".to_string()
        } else {
            i.to_string()
        };
        let score = if i == 25_000 { "2" } else { "0.5" };
        csv.push_str(&format!("r{i},1,{score},{x}\n"));
    }
    let out = import_with(
        &Source::bytes(csv.into_bytes()),
        TableFormat::Csv,
        RowKind::Predictions,
        ColumnMapping::default(),
        // Types come from the first 20,000 rows, so `oops` in the second batch is a bad cell.
        opts(20_000),
        None,
    )
    .unwrap();
    let rej: Vec<(usize, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(rej, [(25_000, "score"), (30_001, "features.x")]);
    assert_eq!(out.predictions.len(), 39_998);
    assert!(out.predictions.windows(2).all(|w| {
        w[0].request_id[1..].parse::<u32>().unwrap() < w[1].request_id[1..].parse::<u32>().unwrap()
    }));
    assert_eq!(
        out.predictions[30_000].features[0].1,
        FeatureValue::Number(30_002.0)
    );
}

#[test]
fn ndjson_is_not_a_table() {
    let err = TableReader::open(
        &Source::bytes(b"{}".to_vec()),
        TableFormat::Ndjson,
        &ReadOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("ndjson"), "{err}");
}

#[test]
fn explanation_columns_are_attributions_not_features_and_a_bad_cell_names_its_field() {
    // CSV: `explanation.<feature>` columns; an empty cell is no attribution.
    let csv = "age,country,prediction,explanation.age,explanation.country\n\
               41,DE,1,0.25,-0.5\n\
               35,FR,0,,0.125\n";
    let out = import(
        &Source::bytes(csv.as_bytes().to_vec()),
        TableFormat::Csv,
        RowKind::Reference,
        ColumnMapping::default(),
    );
    assert_eq!(out.reference.len(), 2);
    assert_eq!(out.reference[0].features.len(), 2);
    assert_eq!(
        out.reference[0].explanations,
        vec![("age".to_string(), 0.25), ("country".to_string(), -0.5)]
    );
    assert_eq!(
        out.reference[1].explanations,
        vec![("country".to_string(), 0.125)]
    );
    // The same columns in a predictions file.
    let csv = "request_id,prediction,age,explanation.age\na,1,41,0.75\n";
    let out = import(
        &Source::bytes(csv.as_bytes().to_vec()),
        TableFormat::Csv,
        RowKind::Predictions,
        ColumnMapping::default(),
    );
    assert_eq!(
        out.predictions[0].explanations,
        vec![("age".to_string(), 0.75)]
    );
    assert_eq!(out.predictions[0].features.len(), 1);
    // A text cell in an attribution column rejects its row only.
    let csv = "age,explanation.age\n41,0.25\n40,0.5\n39,0.125\n35,high\n";
    let out = import(
        &Source::bytes(csv.as_bytes().to_vec()),
        TableFormat::Csv,
        RowKind::Reference,
        ColumnMapping::default(),
    );
    assert_eq!(out.reference.len(), 3);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].index, 3);
    assert_eq!(out.rejected[0].field, "explanations.age");
    // NDJSON, flat or event-shaped.
    let body = "{\"age\": 41, \"explanation.age\": 0.5}\n\
                {\"features\": {\"age\": 35}, \"explanations\": {\"age\": -0.5}}\n\
                {\"features\": {\"age\": 35}, \"explanations\": {\"age\": \"x\"}}\n";
    let out = import(
        &Source::bytes(body.as_bytes().to_vec()),
        TableFormat::Ndjson,
        RowKind::Reference,
        ColumnMapping::default(),
    );
    assert_eq!(out.reference.len(), 2);
    assert_eq!(
        out.reference[0].explanations,
        vec![("age".to_string(), 0.5)]
    );
    assert_eq!(
        out.reference[1].explanations,
        vec![("age".to_string(), -0.5)]
    );
    assert_eq!(out.rejected[0].field, "explanations.age");
}
