//! The embedded store's cache protocol (ADR 003, ADR 018): the dirty-hour marks, their
//! generations and the hour deltas that keep the per-hour aggregates fresh, as the engine's
//! refresh reads them (`DerivedState::stale_hours`) and answers them (`AggregateWrite::refreshed`).
//! These were conformance checks; they are the SQLite backend's own, since another backend
//! keeps its derived state fresh its own way. Each runs on a fresh store, with the service's
//! request buckets and with buckets of 2 rows.

use super::{DirtyHour, How};
use crate::conformance::{labels, model, p, preds};
use crate::{
    AggregateWrite, DerivedState, EventLog, HourFold, Refreshed, ScanRange, ScanSnapshot, Seen,
    SqliteStore, Store, StoredAggregate,
};
use modelwatch_core::{ModelName, Outcome};

type Check = fn(&SqliteStore);

/// The answers of a write that added `applied` (deltas of the hours `marks`) and clears
/// `marks` as read.
fn added(marks: &[DirtyHour], applied: &[i64]) -> Vec<Refreshed> {
    marks
        .iter()
        .enumerate()
        .map(|(i, d)| Refreshed {
            version: d.version.clone(),
            hour: d.hour,
            seen: Seen::new(d.generation),
            how: How::Added(if i == 0 { applied.to_vec() } else { Vec::new() }),
        })
        .collect()
}

/// The answers of a rescan of `marks` whose scan returned `through`.
fn rescanned(marks: &[DirtyHour], through: ScanSnapshot) -> Vec<Refreshed> {
    marks
        .iter()
        .map(|d| Refreshed {
            version: d.version.clone(),
            hour: d.hour,
            seen: Seen::new(d.generation),
            how: How::Rescanned(through),
        })
        .collect()
}

const CHECKS: &[(&str, Check)] = &[
    (
        "changes_mark_their_hours_dirty_until_a_refresh_answers_them",
        changes_mark_their_hours_dirty_until_a_refresh_answers_them,
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
        "shadow_predictions_mark_no_hour_and_record_no_delta",
        shadow_predictions_mark_no_hour_and_record_no_delta,
    ),
    (
        "stale_hours_say_what_to_add_to_each_or_to_rescan_it",
        stale_hours_say_what_to_add_to_each_or_to_rescan_it,
    ),
];

#[test]
fn the_cache_protocol_holds() {
    for (name, check) in CHECKS {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        eprintln!("cache protocol: {name}");
        check(&store);
    }
}

#[test]
fn the_cache_protocol_holds_with_tiny_request_buckets() {
    for (name, check) in CHECKS {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with_bucket_rows(dir.path(), 2).unwrap();
        eprintln!("cache protocol, buckets of 2: {name}");
        check(&store);
    }
}

/// Predictions and labels mark the hours (of the predictions' event time) they change; writing
/// aggregates clears exactly the marks that were read, so a change racing with a refresh stays
/// marked; aggregates read back by hour range and version.
fn changes_mark_their_hours_dirty_until_a_refresh_answers_them(store: &SqliteStore) {
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
                refreshed: added(&dirty, &deltas.iter().map(|d| d.id).collect::<Vec<_>>()),
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
                refreshed: added(&[stale], &[]),
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
        refreshed: added(&dirty, &[deltas[0].id]),
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
fn changes_racing_with_a_rescan_are_left_as_deltas(store: &SqliteStore) {
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
    let rescan = |store: &SqliteStore, race: &mut dyn FnMut()| {
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
                    refreshed: rescanned(&marks, through),
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
fn a_change_racing_with_a_rescan_survives_deltas_applied_meanwhile(store: &SqliteStore) {
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
                refreshed: added(
                    &store.dirty_hours(&other).unwrap(),
                    &store
                        .hour_deltas(&other)
                        .unwrap()
                        .iter()
                        .map(|d| d.id)
                        .collect::<Vec<_>>(),
                ),
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
                refreshed: rescanned(&marks, through),
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

/// Shadow predictions (ADR 011) mark no hour and record no delta: the hours hold the served
/// traffic only, and the chunks the deltas name hold served predictions only.
fn shadow_predictions_mark_no_hour_and_record_no_delta(store: &SqliteStore) {
    let t = "2026-01-01T00:00:00Z";
    let shadow = |id: &str| {
        format!(
            r#"{{"request_id":"{id}","timestamp":"{t}","model_version":"v2","role":"shadow","features":{{"age":1.0,"country":"DE"}},"prediction":0,"score":0.1}}"#
        )
    };
    let rows = [p("a", t, 1.0), shadow("a"), p("b", t, 1.0), shadow("b")];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    assert_eq!(
        store
            .ingest_predictions(&model(), preds(&rows))
            .unwrap()
            .accepted,
        4
    );
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
}

/// The calls the engine's refresh makes, through `&dyn Store` (ADR 018's amendment): a
/// deltas-only hour is a stale hour with its deltas as additions (new predictions with the
/// caller's fold and where they are stored, first labels), a full mark one to rescan; a write
/// answering hours with `added` or `rescanned` leaves nothing stale, and one that answers an
/// addition already answered is dropped whole.
fn stale_hours_say_what_to_add_to_each_or_to_rescan_it(sqlite: &SqliteStore) {
    let store: &dyn Store = sqlite;
    let ts = |s: &str| modelwatch_core::parse_timestamp(s).unwrap();
    let three = ts("2026-01-01T03:00:00Z");
    let mut batch = preds(&[
        &p("a", "2026-01-01T03:10:00Z", 1.0),
        &p("b", "2026-01-01T03:50:00Z", 1.0),
    ]);
    batch.folds = vec![HourFold {
        version: "v1".into(),
        hour: three.micros(),
        rows: 2,
        data: b"the caller's fold".to_vec(),
    }];
    store.ingest_predictions(&model(), batch).unwrap();
    assert_eq!(store.models_with_stale_hours().unwrap(), vec![model()]);
    // Without additions asked for, every hour reads as one to rescan.
    let hours = store.stale_hours(&model(), false).unwrap();
    assert_eq!(hours.len(), 1);
    assert!(hours[0].additions().is_none());
    let hours = store.stale_hours(&model(), true).unwrap();
    assert_eq!((hours[0].version.as_str(), hours[0].hour), ("v1", three));
    let additions = hours[0].additions().expect("new predictions can be added");
    assert_eq!(additions.len(), 1);
    assert_eq!(additions[0].fold(), Some(&b"the caller's fold"[..]));
    assert!(additions[0].labels().unwrap().is_empty());
    let stored = additions[0]
        .predictions()
        .expect("an addition of predictions");
    let mut read = Vec::new();
    store
        .scan_added_predictions(&model(), &[stored], &mut |at, e| {
            read.push((at, e.request_id.clone()))
        })
        .unwrap();
    assert_eq!(read, ["a", "b"].map(|id| (stored, id.to_owned())).to_vec());

    // A first label is an addition of its own, after the predictions'.
    store
        .ingest_labels(&model(), labels(&[r#"{"request_id":"a","label":1}"#]))
        .unwrap();
    let hours = store.stale_hours(&model(), true).unwrap();
    let additions = hours[0].additions().unwrap();
    assert_eq!(additions.len(), 2);
    assert!(additions[1].predictions().is_none() && additions[1].fold().is_none());
    assert_eq!(additions[1].labels().unwrap()[0].score, Some(0.8));
    let added = |data: &[u8]| AggregateWrite {
        kind: "perf".into(),
        put: vec![StoredAggregate {
            version: "v1".into(),
            hour: three,
            data: data.to_vec(),
        }],
        refreshed: vec![hours[0].added()],
        ..AggregateWrite::default()
    };
    store.put_aggregates(&model(), added(b"added")).unwrap();
    assert!(store.stale_hours(&model(), true).unwrap().is_empty());
    assert!(store.models_with_stale_hours().unwrap().is_empty());
    let pending = sqlite.pending_changes(&model()).unwrap();
    assert!(pending.marks.is_empty() && pending.deltas.is_empty());
    // Answering the same additions again (a refresh that lost a race) writes nothing.
    store.put_aggregates(&model(), added(b"twice")).unwrap();
    let hour = ScanRange {
        from: Some(three),
        to: Some(ts("2026-01-01T04:00:00Z")),
        version: None,
    };
    assert_eq!(
        store.aggregates(&model(), "perf", &hour).unwrap()[0].data,
        b"added"
    );

    // A replaced label cannot be added: the hour is to be rescanned, and a rescan's write
    // answers it.
    store
        .ingest_labels(&model(), labels(&[r#"{"request_id":"a","label":0}"#]))
        .unwrap();
    let hours = store.stale_hours(&model(), true).unwrap();
    assert!(hours.len() == 1 && hours[0].additions().is_none());
    let mut seen = 0;
    let snapshot = store
        .scan_predictions(&model(), &hour, &mut |_, _| seen += 1)
        .unwrap();
    assert_eq!(seen, 2);
    store
        .put_aggregates(
            &model(),
            AggregateWrite {
                kind: "perf".into(),
                refreshed: vec![hours[0].rescanned(snapshot)],
                ..AggregateWrite::default()
            },
        )
        .unwrap();
    assert!(store.stale_hours(&model(), true).unwrap().is_empty());
}
