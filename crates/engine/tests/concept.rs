//! Concept drift from the stored per-hour error streams, over a real `SqliteStore`: the same
//! report as a scan of every raw event (the reference computation, kept for that) on a
//! classifier, a multiclass model and a regressor; a late label and a corrected label in an
//! old hour change the answer as a fresh scan would, rebuilding only that hour; and a second
//! query builds nothing.

mod common;

use common::{ingest_labels, ingest_predictions};
use modelwatch_core::{ModelName, Timestamp, Window};
use modelwatch_engine::concept::{
    concept_counted, concept_from_events, ConceptQuery, ConceptReport, StreamUse, KEYS,
};
use modelwatch_stats::concept::{change_points, DetectorKind};
use modelwatch_store::{AggregateWrite, DerivedState, ScanRange, SqliteStore};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000_000;
/// 2026-11-20T00:00:00Z.
const START: i64 = 1_795_132_800_000_000;
/// Rows per version: 40 an hour over 30 hours.
const ROWS: usize = 1200;

fn model() -> ModelName {
    ModelName::new("m").unwrap()
}

/// The event time of row `i`: 40 an hour, out of order within the hour, and every tenth row
/// at the time of the row before it (ties are ordered by request id).
fn time(i: usize) -> i64 {
    let hour = (i / 40) as i64;
    let slot = ((i % 40) * 17 % 40) as i64;
    let slot = if i % 10 == 9 { slot - 1 } else { slot };
    START + hour * HOUR + slot.max(0) * 90_000_000
}

fn rfc3339(micros: i64) -> String {
    Timestamp(micros).to_string()
}

/// Whether row `i` of a version is a mistake: 10 % before the middle, 45 % after.
fn mistake(i: usize) -> bool {
    let rate = if i < ROWS / 2 { 10 } else { 45 };
    (i * 7919 + 3) % 100 < rate
}

#[derive(Clone, Copy)]
enum Kind {
    Binary,
    Multiclass,
    Regression,
}

/// The (prediction, label) of row `i` for `kind`.
fn outcome(kind: Kind, i: usize) -> (Value, Value) {
    match kind {
        Kind::Binary => {
            let predicted = u8::from(!i.is_multiple_of(3));
            let label = if mistake(i) { 1 - predicted } else { predicted };
            (json!(predicted), json!(label))
        }
        Kind::Multiclass => {
            let classes = ["cat", "dog", "fox"];
            let predicted = i % 3;
            let label = if mistake(i) {
                (predicted + 1 + i % 2) % 3
            } else {
                predicted
            };
            (json!(classes[predicted]), json!(classes[label]))
        }
        Kind::Regression => {
            let predicted = 10.0 + (i % 7) as f64 / 10.0;
            let off = if i < ROWS / 2 { 0.3 } else { 2.5 };
            let label = predicted + off * (((i * 31) % 11) as f64 / 10.0 - 0.45);
            (json!(predicted), json!(label))
        }
    }
}

fn id(version: &str, i: usize) -> String {
    format!("{version}-{i:05}")
}

/// Two versions' predictions, interleaved.
fn load(store: &SqliteStore, kind: Kind) {
    for version in ["v1", "v2"] {
        let rows: Vec<Value> = (0..ROWS)
            .map(|i| {
                let (prediction, _) = outcome(kind, i);
                json!({"request_id": id(version, i), "timestamp": rfc3339(time(i)),
                       "model_version": version, "features": {"x": i as f64},
                       "prediction": prediction})
            })
            .collect();
        ingest_predictions(store, &model(), &rows, false);
    }
}

/// Labels of rows `ids` of `version`.
fn label(store: &SqliteStore, kind: Kind, version: &str, ids: impl Iterator<Item = usize>) {
    let rows: Vec<Value> = ids
        .map(|i| json!({"request_id": id(version, i), "label": outcome(kind, i).1}))
        .collect();
    ingest_labels(store, &model(), &rows);
}

fn query(window: Window, from: Option<i64>, to: Option<i64>) -> ConceptQuery {
    ConceptQuery {
        window,
        from: from.map(Timestamp),
        to: to.map(Timestamp),
        version: None,
        detectors: vec![],
    }
}

/// The report from the stored streams, checked equal to the raw-event scan's, with how the
/// streams were used.
fn same_as_scan(store: &SqliteStore, q: &ConceptQuery) -> (Value, StreamUse) {
    let (hours, used) = concept_counted(store, &model(), q).unwrap();
    let events = concept_from_events(store, &model(), q).unwrap();
    let (hours, events) = (as_json(&hours), as_json(&events));
    assert_eq!(hours, events, "{q:?}");
    (hours, used)
}

fn as_json(r: &ConceptReport) -> Value {
    serde_json::to_value(r).unwrap()
}

fn positions(version: &Value, detector: DetectorKind) -> Vec<usize> {
    version["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["detector"] == detector.name())
        .map(|c| c["position"].as_u64().unwrap() as usize)
        .collect()
}

/// The stream of version rows `ids` in stream order (time, then request id).
fn expected_stream(kind: Kind, ids: impl Iterator<Item = usize>) -> Vec<f64> {
    let mut rows: Vec<(i64, String, f64)> = ids
        .map(|i| {
            let (p, l) = outcome(kind, i);
            let error = match kind {
                Kind::Regression => (l.as_f64().unwrap() - p.as_f64().unwrap()).abs(),
                _ => f64::from(p != l),
            };
            (time(i), id("v1", i), error)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows.into_iter().map(|r| r.2).collect()
}

/// Every query shape: the whole stream, whole hours, a range cut inside hours, hourly
/// windows, one version, ADWIN alone as a rule runs it.
fn queries() -> Vec<ConceptQuery> {
    let mut out = vec![
        query(Window::DAY, None, None),
        query(
            Window::HOUR,
            Some(START + 3 * HOUR),
            Some(START + 20 * HOUR),
        ),
        query(
            Window::DAY,
            Some(START + 2 * HOUR + 1_000_000),
            Some(START + 25 * HOUR + 1_800_000_000),
        ),
        query(Window::parse("6h").unwrap(), Some(START + 5 * HOUR), None),
    ];
    out.push(ConceptQuery {
        version: Some("v2".into()),
        ..query(Window::DAY, Some(START + HOUR), None)
    });
    out.push(ConceptQuery {
        detectors: vec![DetectorKind::Adwin],
        ..query(Window::DAY, Some(START + 4 * HOUR), None)
    });
    out
}

fn check_every_query(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    load(&store, kind);
    // Labels late and out of order: the second half first (reversed), then the first half.
    for version in ["v1", "v2"] {
        label(&store, kind, version, (ROWS / 2..ROWS).rev());
        label(&store, kind, version, 0..ROWS / 2);
    }
    let (all, used) = same_as_scan(&store, &queries()[0]);
    // Two versions × 30 hours built from their events, once.
    assert_eq!(used.hours_built, 60, "{used:?}");
    assert!(!used.from_events);
    // The detectors' answers on the stream, as the stats crate (checked against River) has them.
    let stream = expected_stream(kind, 0..ROWS);
    let v1 = &all["versions"][0];
    assert_eq!(v1["labelled"], ROWS);
    let mut found = 0;
    for detector in DetectorKind::ALL {
        if matches!(kind, Kind::Regression) && detector.needs_binary_stream() {
            continue;
        }
        let want = change_points(detector, &stream);
        assert_eq!(positions(v1, detector), want, "{}", detector.name());
        found += want.len();
    }
    assert!(found > 0, "the jump in the error rate is seen");
    for q in queries() {
        let (_, used) = same_as_scan(&store, &q);
        assert_eq!(used.hours_built, 0, "every hour is stored: {q:?} {used:?}");
    }
}

#[test]
fn the_stored_streams_give_the_raw_scans_change_points_for_a_binary_classifier() {
    check_every_query(Kind::Binary);
}

#[test]
fn the_stored_streams_give_the_raw_scans_change_points_for_a_multiclass_model() {
    check_every_query(Kind::Multiclass);
}

#[test]
fn the_stored_streams_give_the_raw_scans_change_points_for_a_regressor() {
    check_every_query(Kind::Regression);
}

#[test]
fn a_second_query_reads_every_hour_and_builds_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    load(&store, Kind::Binary);
    label(&store, Kind::Binary, "v1", 0..ROWS);
    let q = query(Window::DAY, None, None);
    let (first, used) = concept_counted(&store, &model(), &q).unwrap();
    // v2 has predictions but no label: its hours keep empty streams.
    assert_eq!((used.hours_built, used.hours_read), (60, 0), "{used:?}");
    let (second, used) = concept_counted(&store, &model(), &q).unwrap();
    assert_eq!(as_json(&first), as_json(&second));
    assert_eq!(used.hours_built, 0, "{used:?}");
    assert_eq!(used.hours_read, 60, "{used:?}");
    assert_eq!(used.partial_hours, 0);
    // Only the stored keys of the hours holding a change point are read, to name its
    // prediction; no raw event.
    assert!(used.change_hours > 0 && used.change_hours < 30, "{used:?}");
    assert_eq!(used.change_hours_scanned, 0, "{used:?}");
    assert_eq!(
        second.versions.len(),
        1,
        "a version without labels has no stream"
    );

    // Keys gone (as an older modelwatch left them): those hours' events name the predictions.
    let keys = store
        .aggregates(&model(), KEYS, &ScanRange::default())
        .unwrap();
    assert_eq!(keys.len(), 60, "written with every stream");
    store
        .put_aggregates(
            &model(),
            AggregateWrite {
                kind: KEYS.into(),
                delete: keys.into_iter().map(|k| (k.version, k.hour)).collect(),
                ..AggregateWrite::default()
            },
        )
        .unwrap();
    let (third, used) = same_as_scan(&store, &q);
    assert_eq!(third, as_json(&first));
    assert_eq!(used.change_hours_scanned, used.change_hours, "{used:?}");
}

#[test]
fn a_late_label_and_a_corrected_label_in_an_old_hour_change_the_answer_as_a_scan_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let kind = Kind::Multiclass;
    load(&store, kind);
    // Hour 3 of v1 (rows 120..160) waits for half its labels.
    let held: Vec<usize> = (120..160).filter(|i| i % 2 == 0).collect();
    label(&store, kind, "v1", (0..ROWS).filter(|i| !held.contains(i)));
    label(&store, kind, "v2", 0..ROWS);
    let q = query(Window::HOUR, None, None);
    let (before, _) = same_as_scan(&store, &q);

    // The late labels: only v1's hour 3 is built again.
    label(&store, kind, "v1", held.iter().copied());
    let (late, used) = same_as_scan(&store, &q);
    assert_eq!(used.hours_built, 1, "{used:?}");
    assert_eq!(
        used.change_hours_scanned, 0,
        "keys rebuilt with the stream: {used:?}"
    );
    assert_eq!(
        late["versions"][0]["labelled"].as_u64().unwrap(),
        before["versions"][0]["labelled"].as_u64().unwrap() + held.len() as u64
    );
    assert_ne!(late, before);

    // A label corrected in hour 5 (rows 200..240), from right to wrong: the hour's error rate
    // moves, and only that hour is built again.
    let right = (200..240).find(|&i| !mistake(i)).unwrap();
    let (predicted, _) = outcome(kind, right);
    let wrong = if predicted == "cat" { "dog" } else { "cat" };
    ingest_labels(
        &store,
        &model(),
        &[json!({"request_id": id("v1", right), "label": wrong})],
    );
    let (corrected, used) = same_as_scan(&store, &q);
    assert_eq!(used.hours_built, 1, "{used:?}");
    let hour5 = |r: &Value| {
        r["versions"][0]["windows"][5]["mean_error"]
            .as_f64()
            .unwrap()
    };
    assert!(hour5(&corrected) > hour5(&late));

    // Corrected again, to another wrong class: still a mistake, the same answer.
    let other = ["cat", "dog", "fox"]
        .into_iter()
        .find(|c| *c != predicted && *c != wrong)
        .unwrap();
    ingest_labels(
        &store,
        &model(),
        &[json!({"request_id": id("v1", right), "label": other})],
    );
    let (again, used) = same_as_scan(&store, &q);
    assert_eq!(used.hours_built, 1, "{used:?}");
    assert_eq!(again, corrected);

    // And back to right: the answer before the correction.
    ingest_labels(
        &store,
        &model(),
        &[json!({"request_id": id("v1", right), "label": predicted})],
    );
    let (back, _) = same_as_scan(&store, &q);
    assert_eq!(back, late);
}

#[test]
fn windows_shorter_than_an_hour_are_answered_from_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    load(&store, Kind::Binary);
    label(&store, Kind::Binary, "v1", 0..ROWS);
    let q = query(Window::parse("15m").unwrap(), None, None);
    let (_, used) = same_as_scan(&store, &q);
    assert!(used.from_events);
    // A range inside one hour too.
    let q = query(Window::DAY, Some(START + 1_000), Some(START + HOUR / 2));
    let (_, used) = same_as_scan(&store, &q);
    assert!(used.from_events);
}
