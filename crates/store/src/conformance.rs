//! The behaviour every [`Store`] backend must have, as functions over `&dyn Store`. Each backend's
//! tests call every function in [`ALL`] on a fresh, empty store; a new backend (ClickHouse) passes
//! the same suite. Panics on a failed check, like a test.

use crate::{
    AggregateWrite, DirtyHour, LabelBatch, PredictionBatch, ScanRange, Store, StoreError,
    StoredAggregate, WindowQuery,
};
use modelwatch_core::{
    parse_label_row, parse_prediction_row, FeatureKind, FeatureValue, IngestLimits, ModelName,
    Outcome, ReferenceRow, Role, Timestamp, Window,
};

/// One check of the suite: takes a fresh, empty store.
pub type Check = fn(&dyn Store);

/// Every check, by name, each to be run on a fresh empty store.
pub const ALL: &[(&str, Check)] = &[
    (
        "a_mixed_batch_stores_exactly_its_new_valid_events",
        a_mixed_batch_stores_exactly_its_new_valid_events,
    ),
    (
        "scan_visits_the_range_with_labels",
        scan_visits_the_range_with_labels,
    ),
    (
        "retried_batch_is_not_double_counted",
        retried_batch_is_not_double_counted,
    ),
    (
        "same_request_id_twice_in_a_batch_rejects_the_second",
        same_request_id_twice_in_a_batch_rejects_the_second,
    ),
    (
        "wrong_kind_is_rejected_and_quarantined_while_good_rows_are_kept",
        wrong_kind_is_rejected_and_quarantined_while_good_rows_are_kept,
    ),
    (
        "labels_join_to_the_prediction_window_whenever_they_arrive",
        labels_join_to_the_prediction_window_whenever_they_arrive,
    ),
    (
        "labels_for_an_unknown_model_are_refused",
        labels_for_an_unknown_model_are_refused,
    ),
    (
        "retention_deletes_old_predictions_and_keeps_recent_ones",
        retention_deletes_old_predictions_and_keeps_recent_ones,
    ),
    (
        "reference_rows_round_trip_and_set_the_schema",
        reference_rows_round_trip_and_set_the_schema,
    ),
    (
        "changes_mark_their_hours_dirty_until_a_refresh_answers_them",
        changes_mark_their_hours_dirty_until_a_refresh_answers_them,
    ),
    (
        "kpis_are_kept_per_name_and_a_retry_replaces",
        kpis_are_kept_per_name_and_a_retry_replaces,
    ),
    (
        "changes_racing_with_a_rescan_are_left_as_deltas",
        changes_racing_with_a_rescan_are_left_as_deltas,
    ),
    (
        "a_change_racing_with_a_rescan_survives_deltas_applied_meanwhile",
        a_change_racing_with_a_rescan_survives_deltas_applied_meanwhile,
    ),
    (
        "shadow_predictions_are_stored_once_per_version",
        shadow_predictions_are_stored_once_per_version,
    ),
    (
        "a_label_joins_every_version_whichever_arrives_first",
        a_label_joins_every_version_whichever_arrives_first,
    ),
    (
        "shadow_predictions_stay_out_of_the_served_traffic",
        shadow_predictions_stay_out_of_the_served_traffic,
    ),
];

pub(crate) fn model() -> ModelName {
    ModelName::new("fraud").unwrap()
}

pub(crate) fn preds(rows: &[&str]) -> PredictionBatch {
    let now = Timestamp::now();
    PredictionBatch::new(
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    i,
                    parse_prediction_row(r, i, now, &IngestLimits::default()).unwrap(),
                )
            })
            .collect(),
    )
}

fn labels(rows: &[&str]) -> LabelBatch {
    let now = Timestamp::now();
    LabelBatch {
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    i,
                    parse_label_row(r, i, now, &IngestLimits::default()).unwrap(),
                )
            })
            .collect(),
        rejected: vec![],
    }
}

pub(crate) fn p(id: &str, ts: &str, age: f64) -> String {
    format!(
        r#"{{"request_id":"{id}","timestamp":"{ts}","model_version":"v1","features":{{"age":{age},"country":"DE"}},"prediction":1,"score":0.8}}"#
    )
}

/// retried batch is not double counted.
pub fn retried_batch_is_not_double_counted(store: &dyn Store) {
    let rows = [
        p("a", "2026-01-01T00:00:00Z", 1.0),
        p("b", "2026-01-01T01:00:00Z", 2.0),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let first = store.ingest_predictions(&model(), preds(&rows)).unwrap();
    assert_eq!((first.accepted, first.duplicates), (2, 0));
    let again = store.ingest_predictions(&model(), preds(&rows)).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 2));
    assert_eq!(store.model(&model()).unwrap().unwrap().predictions, 2);
}

/// same request id twice in a batch rejects the second.
pub fn same_request_id_twice_in_a_batch_rejects_the_second(store: &dyn Store) {
    let a = p("a", "2026-01-01T00:00:00Z", 1.0);
    let out = store
        .ingest_predictions(&model(), preds(&[&a, &a]))
        .unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].index, 1);
    assert!(out.rejected[0].reason.contains("first at row 0"));
}

/// wrong kind is rejected and quarantined while good rows are kept.
pub fn wrong_kind_is_rejected_and_quarantined_while_good_rows_are_kept(store: &dyn Store) {
    let good = p("a", "2026-01-01T00:00:00Z", 1.0);
    let bad = r#"{"request_id":"b","prediction":1,"features":{"age":"old"}}"#;
    let out = store
        .ingest_predictions(&model(), preds(&[&good, bad]))
        .unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected[0].field, "features.age");
    assert_eq!(out.schema_changes.len(), 2);
    let q = store.rejected(&model(), 10).unwrap();
    assert_eq!(q.len(), 1);
    assert!(q[0].row.contains("\"old\""));
    let schema = store.model(&model()).unwrap().unwrap().schema;
    assert_eq!(schema.kind_of("age"), Some(FeatureKind::Numeric));
    assert_eq!(schema.kind_of("country"), Some(FeatureKind::Categorical));
}

/// labels join to the prediction window whenever they arrive.
pub fn labels_join_to_the_prediction_window_whenever_they_arrive(store: &dyn Store) {
    // Label for "early" arrives before its prediction.
    store
        .ingest_predictions(&model(), preds(&[&p("x", "2026-01-01T00:00:00Z", 1.0)]))
        .unwrap();
    store
        .ingest_labels(
            &model(),
            labels(&[r#"{"request_id":"early","label":0,"timestamp":"2026-01-05T00:00:00Z"}"#]),
        )
        .unwrap();
    store
        .ingest_predictions(&model(), preds(&[&p("early", "2026-01-02T10:00:00Z", 1.0)]))
        .unwrap();
    // Label for "x" arrives late (three days after its prediction), then is replaced.
    store
        .ingest_labels(
            &model(),
            labels(&[r#"{"request_id":"x","label":1,"timestamp":"2026-01-04T00:00:00Z"}"#]),
        )
        .unwrap();
    let replaced = store
        .ingest_labels(
            &model(),
            labels(&[r#"{"request_id":"x","label":0,"timestamp":"2026-01-04T00:00:00Z"}"#]),
        )
        .unwrap();
    assert_eq!(replaced.replaced, 1);
    let q = WindowQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
    };
    let w = store.window_counts(&model(), &q).unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].start.to_rfc3339(), "2026-01-01T00:00:00Z");
    assert_eq!((w[0].predictions, w[0].labelled), (1, 1));
    assert_eq!(
        w[0].label_delay_seconds.as_ref().unwrap().p50,
        3.0 * 86_400.0
    );
    assert_eq!((w[1].predictions, w[1].labelled), (1, 1));
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (2, 2));
}

/// labels for an unknown model are refused.
pub fn labels_for_an_unknown_model_are_refused(store: &dyn Store) {
    let err = store
        .ingest_labels(&model(), labels(&[r#"{"request_id":"x","label":1}"#]))
        .unwrap_err();
    assert!(matches!(err, StoreError::ModelNotFound(_)));
}

/// retention deletes old predictions and keeps recent ones.
pub fn retention_deletes_old_predictions_and_keeps_recent_ones(store: &dyn Store) {
    let now = Timestamp::now();
    let old = Timestamp(now.micros() - 40 * 86_400_000_000).to_rfc3339();
    let recent = Timestamp(now.micros() - 86_400_000_000).to_rfc3339();
    store
        .ingest_predictions(
            &model(),
            preds(&[&p("old", &old, 1.0), &p("new", &recent, 1.0)]),
        )
        .unwrap();
    store.set_retention(&model(), Some(30)).unwrap();
    let report = store.apply_retention(now).unwrap();
    assert_eq!(report.predictions_deleted, 1);
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!(m.predictions, 1);
    assert_eq!(m.retention_days, Some(30));
}

/// reference rows round trip and set the schema.
pub fn reference_rows_round_trip_and_set_the_schema(store: &dyn Store) {
    let row = ReferenceRow {
        features: vec![
            ("age".into(), FeatureValue::Number(3.0)),
            ("c".into(), FeatureValue::Text("x".into())),
        ],
        label: Some(Outcome::Number(1.0)),
        ..Default::default()
    };
    let out = store
        .put_reference(&model(), Some("v1"), vec![(0, row.clone())], vec![])
        .unwrap();
    assert_eq!(out.rows, 1);
    assert_eq!(
        store.reference_rows(&model(), Some("v1")).unwrap(),
        vec![row]
    );
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!(m.schema.features.len(), 2);
    assert_eq!(m.reference[0].rows, 1);
}

/// scan visits the range with labels.
pub fn scan_visits_the_range_with_labels(store: &dyn Store) {
    let rows = [
        p("a", "2026-01-01T00:00:00Z", 1.0),
        p("b", "2026-01-02T00:00:00Z", 2.0),
        p("c", "2026-01-03T00:00:00Z", 3.0),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    store.ingest_predictions(&model(), preds(&rows)).unwrap();
    store
        .ingest_labels(&model(), labels(&[r#"{"request_id":"b","label":0}"#]))
        .unwrap();
    let range = ScanRange {
        from: Some(modelwatch_core::parse_timestamp("2026-01-02T00:00:00Z").unwrap()),
        to: None,
        version: Some("v1".into()),
    };
    let mut seen = Vec::new();
    store
        .scan_predictions(&model(), &range, &mut |e, l| {
            seen.push((e.request_id.clone(), l.map(|l| l.label.clone())));
        })
        .unwrap();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("b".to_string(), Some(Outcome::Number(0.0))),
            ("c".to_string(), None)
        ]
    );
    let other = ScanRange {
        version: Some("v2".into()),
        ..ScanRange::default()
    };
    let mut n = 0;
    store
        .scan_predictions(&model(), &other, &mut |_, _| n += 1)
        .unwrap();
    assert_eq!(n, 0);
}

/// a mixed batch (a duplicate of a stored event, a rejected row, new rows) stores exactly its
/// new valid events, readable back whole and in order.
pub fn a_mixed_batch_stores_exactly_its_new_valid_events(store: &dyn Store) {
    let first = p("a", "2026-01-01T00:00:00Z", 1.0);
    store
        .ingest_predictions(&model(), preds(&[&first]))
        .unwrap();
    let b = p("b", "2026-01-02T00:00:00Z", 2.5);
    let bad = r#"{"request_id":"x","prediction":1,"features":{"age":"old"}}"#;
    let c = p("c", "2026-01-03T00:00:00Z", 3.5);
    let out = store
        .ingest_predictions(&model(), preds(&[&first, &b, bad, &c]))
        .unwrap();
    assert_eq!(
        (out.accepted, out.duplicates, out.rejected.len()),
        (2, 1, 1)
    );
    let page = store.predictions(&model(), None, 100).unwrap();
    let ids: Vec<&str> = page.items.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(
        page.items[2].features[0],
        ("age".into(), FeatureValue::Number(3.5))
    );
    assert_eq!(
        page.items[1].timestamp,
        modelwatch_core::parse_timestamp("2026-01-02T00:00:00Z").unwrap()
    );
}

/// Predictions and labels mark the hours (of the predictions' event time) they change; writing
/// aggregates clears exactly the marks that were read, so a change racing with a refresh stays
/// marked; aggregates read back by hour range and version.
pub fn changes_mark_their_hours_dirty_until_a_refresh_answers_them(store: &dyn Store) {
    let ts = |s: &str| modelwatch_core::parse_timestamp(s).unwrap();
    let no_version = r#"{"request_id":"n","timestamp":"2026-01-01T05:59:59Z","features":{"age":1,"country":"DE"},"prediction":0}"#;
    store
        .ingest_predictions(
            &model(),
            preds(&[
                &p("a", "2026-01-01T03:10:00Z", 1.0),
                &p("b", "2026-01-01T03:50:00Z", 1.0),
                no_version,
            ]),
        )
        .unwrap();
    assert_eq!(store.models_with_dirty_hours().unwrap(), vec![model()]);
    let dirty = store.dirty_hours(&model()).unwrap();
    let marks: Vec<(String, String)> = dirty
        .iter()
        .map(|d| (d.version.clone(), d.hour.to_rfc3339()))
        .collect();
    assert_eq!(
        marks,
        vec![
            ("v1".to_owned(), "2026-01-01T03:00:00Z".to_owned()),
            (String::new(), "2026-01-01T05:00:00Z".to_owned()),
        ]
    );
    // New predictions are deltas of their hours, naming the chunk that holds them, which
    // reads back without labels.
    assert!(dirty.iter().all(|d| d.deltas_only));
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 2);
    let chunk = deltas[0].chunk.expect("a delta of predictions");
    assert!(deltas.iter().all(|d| d.chunk == Some(chunk)));
    assert!(deltas[0].labels().unwrap().is_empty());
    let mut read = Vec::new();
    store
        .scan_chunks(&model(), &[chunk, chunk + 1000], &mut |s, e| {
            read.push((s, e.request_id.clone()))
        })
        .unwrap();
    assert_eq!(
        read,
        ["a", "b", "n"].map(|id| (chunk, id.to_owned())).to_vec()
    );
    let blob = |v: &str, h: &str, d: &[u8]| StoredAggregate {
        version: v.to_owned(),
        hour: ts(h),
        data: d.to_vec(),
    };
    store
        .put_aggregates(
            &model(),
            AggregateWrite {
                kind: "perf".into(),
                put: vec![
                    blob("v1", "2026-01-01T03:00:00Z", b"three"),
                    blob("", "2026-01-01T05:00:00Z", b"five"),
                ],
                clear: dirty.clone(),
                applied: deltas.iter().map(|d| d.id).collect(),
                ..AggregateWrite::default()
            },
        )
        .unwrap();
    assert!(store.dirty_hours(&model()).unwrap().is_empty());
    assert!(store.models_with_dirty_hours().unwrap().is_empty());
    let all = store
        .aggregates(&model(), "perf", &ScanRange::default())
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].data, b"three");
    let v1 = ScanRange {
        version: Some("v1".into()),
        ..ScanRange::default()
    };
    assert_eq!(store.aggregates(&model(), "perf", &v1).unwrap().len(), 1);
    let late = ScanRange {
        from: Some(ts("2026-01-01T04:00:00Z")),
        ..ScanRange::default()
    };
    assert_eq!(
        store.aggregates(&model(), "perf", &late).unwrap()[0].data,
        b"five"
    );
    assert!(store
        .aggregates(&model(), "drift", &late)
        .unwrap()
        .is_empty());

    // A label marks its prediction's hour; one for an unknown request id marks nothing.
    store
        .ingest_labels(
            &model(),
            labels(&[
                r#"{"request_id":"a","label":1,"timestamp":"2026-02-01T00:00:00Z"}"#,
                r#"{"request_id":"zz","label":1}"#,
            ]),
        )
        .unwrap();
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(dirty.len(), 1);
    assert_eq!(dirty[0].hour.to_rfc3339(), "2026-01-01T03:00:00Z");
    // A first label is recorded as a delta carrying what its prediction said.
    assert!(dirty[0].deltas_only);
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!(
        (deltas[0].version.as_str(), deltas[0].hour),
        ("v1", dirty[0].hour)
    );
    assert_eq!(
        deltas[0].labels().unwrap(),
        vec![crate::NewLabel {
            prediction_time: ts("2026-01-01T03:10:00Z"),
            prediction: Some(Outcome::Number(1.0)),
            score: Some(0.8),
            scores: None,
            label: Outcome::Number(1.0),
            labelled_at: ts("2026-02-01T00:00:00Z"),
            exploration: Some(false),
        }]
    );
    // A refresh that read an older generation does not clear the newer mark.
    let stale = DirtyHour {
        generation: dirty[0].generation - 1,
        ..dirty[0].clone()
    };
    store
        .put_aggregates(
            &model(),
            AggregateWrite {
                kind: "perf".into(),
                clear: vec![stale],
                delete: vec![("".into(), ts("2026-01-01T05:00:00Z"))],
                ..AggregateWrite::default()
            },
        )
        .unwrap();
    assert_eq!(store.dirty_hours(&model()).unwrap(), dirty);
    assert_eq!(
        store
            .aggregates(&model(), "perf", &ScanRange::default())
            .unwrap()
            .len(),
        1
    );
    // Applying the delta deletes it with the write; a second write naming it (a refresh that
    // lost the race) changes nothing.
    let applied = |data: &[u8]| AggregateWrite {
        kind: "perf".into(),
        put: vec![blob("v1", "2026-01-01T03:00:00Z", data)],
        clear: dirty.clone(),
        applied: vec![deltas[0].id],
        ..AggregateWrite::default()
    };
    store
        .put_aggregates(&model(), applied(b"labelled"))
        .unwrap();
    store.put_aggregates(&model(), applied(b"twice")).unwrap();
    assert!(store.hour_deltas(&model()).unwrap().is_empty());
    assert!(store.dirty_hours(&model()).unwrap().is_empty());
    assert_eq!(
        store.aggregates(&model(), "perf", &v1).unwrap()[0].data,
        b"labelled"
    );
    // A replaced label needs a rescan: the mark is a full one, with no delta.
    store
        .ingest_labels(
            &model(),
            labels(&[r#"{"request_id":"a","label":0,"timestamp":"2026-02-02T00:00:00Z"}"#]),
        )
        .unwrap();
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(dirty.len(), 1);
    assert!(!dirty[0].deltas_only);
    assert!(store.hour_deltas(&model()).unwrap().is_empty());
    // The prediction of the orphan label arrives: its hour is marked for a rescan (a delta of
    // predictions carries no labels).
    store
        .ingest_predictions(&model(), preds(&[&p("zz", "2026-01-03T00:00:00Z", 1.0)]))
        .unwrap();
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(dirty.len(), 2);
    assert!(dirty.iter().all(|d| !d.deltas_only));
    assert!(store.hour_deltas(&model()).unwrap().is_empty());
    store.invalidate_aggregates(&model()).unwrap();
    assert_eq!(store.dirty_hours(&model()).unwrap().len(), 3);
}

/// A rescan deletes the deltas its snapshot held; a new prediction or first label that
/// raced with it stays a delta and the hour becomes deltas-only (under steady traffic the
/// current hour is not rescanned on every refresh), unless a raced change needs a rescan.
pub fn changes_racing_with_a_rescan_are_left_as_deltas(store: &dyn Store) {
    let hour = ScanRange {
        from: Some(modelwatch_core::parse_timestamp("2026-01-01T03:00:00Z").unwrap()),
        to: Some(modelwatch_core::parse_timestamp("2026-01-01T04:00:00Z").unwrap()),
        version: None,
    };
    store
        .ingest_predictions(&model(), preds(&[&p("a", "2026-01-01T03:10:00Z", 1.0)]))
        .unwrap();
    store.invalidate_aggregates(&model()).unwrap();
    // A rescan: the marks, then one snapshot of the events.
    let rescan = |store: &dyn Store, race: &mut dyn FnMut()| {
        let marks = store.dirty_hours(&model()).unwrap();
        let mut seen = 0;
        let through = store
            .scan_predictions(&model(), &hour, &mut |_, _| seen += 1)
            .unwrap();
        race();
        store
            .put_aggregates(
                &model(),
                AggregateWrite {
                    kind: "perf".into(),
                    put: vec![StoredAggregate {
                        version: "v1".into(),
                        hour: hour.from.unwrap(),
                        data: format!("{seen}").into_bytes(),
                    }],
                    clear: marks,
                    rescanned_through: Some(through),
                    ..AggregateWrite::default()
                },
            )
            .unwrap();
    };
    // A prediction arrives during the rescan: it is the hour's only delta afterwards.
    rescan(store, &mut || {
        store
            .ingest_predictions(&model(), preds(&[&p("b", "2026-01-01T03:20:00Z", 1.0)]))
            .unwrap();
    });
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(dirty.len(), 1);
    assert!(dirty[0].deltas_only, "{dirty:?}");
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    let mut read = Vec::new();
    store
        .scan_chunks(&model(), &[deltas[0].chunk.unwrap()], &mut |_, e| {
            read.push(e.request_id.clone())
        })
        .unwrap();
    assert_eq!(read, ["b"]);
    // A rescan reads both; a label replaced meanwhile needs another rescan.
    store
        .ingest_labels(&model(), labels(&[r#"{"request_id":"a","label":1}"#]))
        .unwrap();
    store.invalidate_aggregates(&model()).unwrap();
    rescan(store, &mut || {
        store
            .ingest_labels(&model(), labels(&[r#"{"request_id":"a","label":0}"#]))
            .unwrap();
    });
    let dirty = store.dirty_hours(&model()).unwrap();
    assert!(dirty.len() == 1 && !dirty[0].deltas_only, "{dirty:?}");
    // Nothing raced: the mark goes, with every delta the snapshot held.
    rescan(store, &mut || {});
    assert!(store.dirty_hours(&model()).unwrap().is_empty());
    assert!(store.hour_deltas(&model()).unwrap().is_empty());
    let stored = store.aggregates(&model(), "perf", &hour).unwrap();
    assert_eq!(stored[0].data, b"2");
}

/// A rescan deletes the deltas up to the last id its snapshot held, so a delta recorded after
/// the snapshot must never get an id at or under it, whatever was deleted meanwhile. Ids used
/// to be handed out again once the newest deltas were applied (here another model's refresh;
/// a refresh's other pass does the same): the rescan then deleted unread the prediction that
/// raced with it, and the prediction's label, added later as a delta, took a "missing" from a
/// drift sketch that had never counted it (the demo's refresh panicked on it in debug builds).
pub fn a_change_racing_with_a_rescan_survives_deltas_applied_meanwhile(store: &dyn Store) {
    let other = ModelName::new("churn").unwrap();
    let hour = ScanRange {
        from: Some(modelwatch_core::parse_timestamp("2026-01-01T03:00:00Z").unwrap()),
        to: Some(modelwatch_core::parse_timestamp("2026-01-01T04:00:00Z").unwrap()),
        version: None,
    };
    store
        .ingest_predictions(&model(), preds(&[&p("a", "2026-01-01T03:10:00Z", 1.0)]))
        .unwrap();
    store.invalidate_aggregates(&model()).unwrap();
    // The other model's live traffic holds the newest deltas.
    for id in ["x", "y"] {
        store
            .ingest_predictions(&other, preds(&[&p(id, "2026-01-01T05:10:00Z", 1.0)]))
            .unwrap();
    }
    // A rescan of the hour: the marks, then one snapshot of the events...
    let marks = store.dirty_hours(&model()).unwrap();
    let mut seen = Vec::new();
    let through = store
        .scan_predictions(&model(), &hour, &mut |e, _| seen.push(e.request_id.clone()))
        .unwrap();
    assert_eq!(seen, ["a"]);
    // ...meanwhile the other model's refresh adds (and deletes) its deltas, and a prediction
    // arrives in the hour being rescanned...
    store
        .put_aggregates(
            &other,
            AggregateWrite {
                kind: "perf".into(),
                clear: store.dirty_hours(&other).unwrap(),
                applied: store
                    .hour_deltas(&other)
                    .unwrap()
                    .iter()
                    .map(|d| d.id)
                    .collect(),
                ..AggregateWrite::default()
            },
        )
        .unwrap();
    assert!(store.hour_deltas(&other).unwrap().is_empty());
    store
        .ingest_predictions(&model(), preds(&[&p("b", "2026-01-01T03:20:00Z", 1.0)]))
        .unwrap();
    // ...then the rescan writes what it read.
    store
        .put_aggregates(
            &model(),
            AggregateWrite {
                kind: "perf".into(),
                put: vec![StoredAggregate {
                    version: "v1".into(),
                    hour: hour.from.unwrap(),
                    data: b"a".to_vec(),
                }],
                clear: marks,
                rescanned_through: Some(through),
                ..AggregateWrite::default()
            },
        )
        .unwrap();
    // "b", which the rescan did not read, is still the hour's delta, to be added next.
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(
        deltas.len(),
        1,
        "the prediction that raced was lost: {deltas:?}"
    );
    let mut read = Vec::new();
    store
        .scan_chunks(&model(), &[deltas[0].chunk.unwrap()], &mut |_, e| {
            read.push(e.request_id.clone())
        })
        .unwrap();
    assert_eq!(read, ["b"]);
    let dirty = store.dirty_hours(&model()).unwrap();
    assert!(dirty.len() == 1 && dirty[0].deltas_only, "{dirty:?}");
}

/// KPI points are stored per name, read back by name and time range, and a point sent again
/// (same name and time) replaces the first; a model that does not exist is refused.
pub fn kpis_are_kept_per_name_and_a_retry_replaces(store: &dyn Store) {
    let kpi = |name: &str, ts: &str, value: f64| modelwatch_core::KpiEvent {
        name: name.into(),
        value,
        timestamp: modelwatch_core::parse_timestamp(ts).unwrap(),
    };
    let err = store
        .ingest_kpis(
            &model(),
            vec![(0, kpi("loss", "2026-01-01T00:00:00Z", 1.0))],
            vec![],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::ModelNotFound(_)));
    store
        .ingest_predictions(&model(), preds(&[&p("a", "2026-01-01T00:00:00Z", 1.0)]))
        .unwrap();
    let rows = vec![
        (0, kpi("loss", "2026-01-01T00:00:00Z", 10.0)),
        (1, kpi("loss", "2026-01-02T00:00:00Z", 20.0)),
        (2, kpi("conversion", "2026-01-01T12:00:00Z", 0.3)),
    ];
    let out = store.ingest_kpis(&model(), rows, vec![]).unwrap();
    assert_eq!((out.accepted, out.replaced), (3, 0));
    let again = store
        .ingest_kpis(
            &model(),
            vec![(0, kpi("loss", "2026-01-02T00:00:00Z", 25.0))],
            vec![],
        )
        .unwrap();
    assert_eq!((again.accepted, again.replaced), (1, 1));
    let all = store.kpis(&model(), None, &ScanRange::default()).unwrap();
    let got: Vec<(&str, f64)> = all.iter().map(|k| (k.name.as_str(), k.value)).collect();
    assert_eq!(got, [("conversion", 0.3), ("loss", 10.0), ("loss", 25.0)]);
    let day2 = ScanRange {
        from: Some(modelwatch_core::parse_timestamp("2026-01-01T06:00:00Z").unwrap()),
        ..ScanRange::default()
    };
    let loss = store.kpis(&model(), Some("loss"), &day2).unwrap();
    assert_eq!(loss.len(), 1);
    assert_eq!(loss[0].value, 25.0);
}

/// A shadow prediction of `version` for request `id` (ADR 011).
fn shadow(id: &str, ts: &str, version: &str, score: f64) -> String {
    format!(
        r#"{{"request_id":"{id}","timestamp":"{ts}","model_version":"{version}","role":"shadow","features":{{"age":1.0,"country":"DE"}},"prediction":0,"score":{score}}}"#
    )
}

/// Every stored prediction with its role, version and label, served and shadow, sorted.
type Seen = Vec<(String, String, Role, Option<Outcome>)>;

fn everything(store: &dyn Store) -> Seen {
    let mut seen = Vec::new();
    store
        .scan_with_shadows(&model(), &ScanRange::default(), &mut |e, l| {
            seen.push((
                e.request_id.clone(),
                e.model_version.clone().unwrap_or_default(),
                e.role,
                l.map(|l| l.label.clone()),
            ));
        })
        .unwrap();
    seen.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    seen
}

/// The same request id under two versions is stored twice, once per version, and a replay of
/// either is a duplicate; the same (request id, version) twice in one batch rejects the second.
pub fn shadow_predictions_are_stored_once_per_version(store: &dyn Store) {
    let t = "2026-01-01T00:00:00Z";
    let served = [p("a", t, 1.0), p("b", t, 2.0)];
    let served: Vec<&str> = served.iter().map(String::as_str).collect();
    let out = store.ingest_predictions(&model(), preds(&served)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (2, 0));
    let shadows = [shadow("a", t, "v2", 0.3), shadow("b", t, "v2", 0.4)];
    let shadows: Vec<&str> = shadows.iter().map(String::as_str).collect();
    let out = store.ingest_predictions(&model(), preds(&shadows)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (2, 0));
    // Replays: each version's prediction is already stored.
    let out = store.ingest_predictions(&model(), preds(&shadows)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 2));
    let out = store.ingest_predictions(&model(), preds(&served)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 2));
    // One batch holding a request's served prediction and two shadows, stored three times;
    // its replay stores nothing.
    let mixed = [
        p("c", t, 3.0),
        shadow("c", t, "v2", 0.5),
        shadow("c", t, "v3", 0.6),
    ];
    let mixed: Vec<&str> = mixed.iter().map(String::as_str).collect();
    let out = store.ingest_predictions(&model(), preds(&mixed)).unwrap();
    assert_eq!(
        (out.accepted, out.duplicates, out.rejected.len()),
        (3, 0, 0)
    );
    let out = store.ingest_predictions(&model(), preds(&mixed)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 3));
    // The same shadow twice in a batch: the second is a rejected row naming the first.
    let twice = [shadow("d", t, "v2", 0.1), shadow("d", t, "v2", 0.2)];
    let out = store
        .ingest_predictions(&model(), preds(&[&twice[0], &twice[1]]))
        .unwrap();
    assert_eq!(out.accepted, 1);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].index, 1);
    assert!(out.rejected[0].reason.contains("first at row 0"));

    let seen = everything(store);
    let keys: Vec<(&str, &str, Role)> = seen
        .iter()
        .map(|(id, v, role, _)| (id.as_str(), v.as_str(), *role))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("a", "v1", Role::Served),
            ("a", "v2", Role::Shadow),
            ("b", "v1", Role::Served),
            ("b", "v2", Role::Shadow),
            ("c", "v1", Role::Served),
            ("c", "v2", Role::Shadow),
            ("c", "v3", Role::Shadow),
            ("d", "v2", Role::Shadow),
        ]
    );
    // A shadow row must say which version it is.
    let unnamed = r#"{"request_id":"e","role":"shadow","prediction":1}"#;
    let err =
        parse_prediction_row(unnamed, 0, Timestamp::now(), &IngestLimits::default()).unwrap_err();
    assert_eq!(err.field, "model_version");
}

/// A label joins the served prediction and every shadow of its request, whether it arrives
/// after them or before them.
pub fn a_label_joins_every_version_whichever_arrives_first(store: &dyn Store) {
    let t = "2026-01-01T00:00:00Z";
    // "early": the label first (the model exists through another prediction).
    store
        .ingest_predictions(&model(), preds(&[&p("x", t, 1.0)]))
        .unwrap();
    store
        .ingest_labels(
            &model(),
            labels(&[r#"{"request_id":"early","label":1,"timestamp":"2026-01-03T00:00:00Z"}"#]),
        )
        .unwrap();
    let early = [p("early", t, 1.0), shadow("early", t, "v2", 0.2)];
    store
        .ingest_predictions(&model(), preds(&[&early[0], &early[1]]))
        .unwrap();
    // "late": predictions first, the shadow before the served one, then the label.
    store
        .ingest_predictions(&model(), preds(&[&shadow("late", t, "v2", 0.9)]))
        .unwrap();
    store
        .ingest_predictions(&model(), preds(&[&p("late", t, 1.0)]))
        .unwrap();
    store
        .ingest_labels(
            &model(),
            labels(&[r#"{"request_id":"late","label":0,"timestamp":"2026-01-03T00:00:00Z"}"#]),
        )
        .unwrap();
    let seen = everything(store);
    let one = Some(Outcome::Number(1.0));
    let zero = Some(Outcome::Number(0.0));
    assert_eq!(
        seen,
        vec![
            ("early".into(), "v1".into(), Role::Served, one.clone()),
            ("early".into(), "v2".into(), Role::Shadow, one),
            ("late".into(), "v1".into(), Role::Served, zero.clone()),
            ("late".into(), "v2".into(), Role::Shadow, zero),
            ("x".into(), "v1".into(), Role::Served, None),
        ]
    );
    // The served traffic's counters: two labels, each joined to its served prediction.
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.predictions, m.labels, m.labelled), (3, 2, 2));
}

/// Shadow predictions are not the served traffic: the served scans, the window counts, the
/// version counters and the hours' marks and deltas never see them, so every other report reads
/// what it read before shadows existed. Retention deletes them with the rest.
pub fn shadow_predictions_stay_out_of_the_served_traffic(store: &dyn Store) {
    let now = Timestamp::now();
    let old = Timestamp(now.micros() - 40 * 86_400_000_000).to_rfc3339();
    let recent = Timestamp(now.micros() - 86_400_000_000).to_rfc3339();
    let rows = [
        p("old", &old, 1.0),
        shadow("old", &old, "v2", 0.1),
        p("new", &recent, 1.0),
        shadow("new", &recent, "v2", 0.1),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    assert_eq!(
        store
            .ingest_predictions(&model(), preds(&rows))
            .unwrap()
            .accepted,
        4
    );
    let mut served = Vec::new();
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |e, _| {
            served.push((e.request_id.clone(), e.role))
        })
        .unwrap();
    served.sort();
    assert_eq!(
        served,
        vec![("new".into(), Role::Served), ("old".into(), Role::Served)]
    );
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!(m.predictions, 2);
    assert_eq!(
        m.versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        vec!["v1"]
    );
    // The challengers are listed apart, with their own counts.
    let shadows: Vec<(&str, u64)> = m
        .shadow_versions
        .iter()
        .map(|v| (v.version.as_str(), v.predictions))
        .collect();
    assert_eq!(shadows, vec![("v2", 2)]);
    let q = WindowQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
    };
    let counted: u64 = store
        .window_counts(&model(), &q)
        .unwrap()
        .iter()
        .map(|w| w.predictions)
        .sum();
    assert_eq!(counted, 2);
    assert!(store
        .dirty_hours(&model())
        .unwrap()
        .iter()
        .all(|h| h.version == "v1"));
    let deltas = store.hour_deltas(&model()).unwrap();
    assert!(deltas.iter().all(|d| d.version == "v1"));
    // The deltas' chunks, read back, hold served predictions only.
    let mut chunks: Vec<i64> = deltas.iter().filter_map(|d| d.chunk).collect();
    chunks.sort_unstable();
    chunks.dedup();
    let mut n = 0;
    store
        .scan_chunks(&model(), &chunks, &mut |_, e| {
            assert!(e.role.is_served());
            n += 1;
        })
        .unwrap();
    assert_eq!(n, 2);

    store.set_retention(&model(), Some(30)).unwrap();
    let report = store.apply_retention(now).unwrap();
    assert_eq!(report.predictions_deleted, 2);
    let left: Vec<(String, String)> = everything(store)
        .into_iter()
        .map(|(id, v, _, _)| (id, v))
        .collect();
    assert_eq!(
        left,
        vec![("new".into(), "v1".into()), ("new".into(), "v2".into())]
    );
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!(m.shadow_versions[0].predictions, 1);
    // Retention deleted the old shadow's index row too: the same prediction is new again.
    let again = store
        .ingest_predictions(&model(), preds(&[&shadow("old", &recent, "v2", 0.1)]))
        .unwrap();
    assert_eq!(again.accepted, 1);
}
