//! The behaviour every [`Store`] backend must have, as functions over `&dyn Store`, grouped by
//! what a user sees: idempotency, late labels both ways round, event-time windows, retention,
//! pages, concurrent writers, the catalog and the quarantine. Each backend's tests call every
//! function in [`ALL`] on a fresh, empty store; a new backend (ClickHouse) passes the same
//! suite. Panics on a failed check, like a test.
//!
//! How a backend keeps its derived per-hour state fresh is its own business (ADR 018): the
//! embedded store's marks, generations and deltas are checked by its own tests
//! (`sqlite/changes/tests.rs`), not here.

use crate::{
    Cursor, IngestOutcome, LabelBatch, PredictionBatch, ScanRange, Store, StoreError, WindowQuery,
};
use modelwatch_core::{
    parse_label_row, parse_prediction_row, FeatureKind, FeatureValue, IngestLimits, ModelName,
    Outcome, ReferenceRow, Role, Timestamp, Window,
};

/// One check of the suite: takes a fresh, empty store.
pub type Check = fn(&dyn Store);

/// Every check, by group and name, each to be run on a fresh empty store.
pub const ALL: &[(&str, Check)] = &[
    // Idempotency.
    (
        "idempotency: retried_batch_is_not_double_counted",
        retried_batch_is_not_double_counted,
    ),
    (
        "idempotency: same_request_id_twice_in_a_batch_rejects_the_second",
        same_request_id_twice_in_a_batch_rejects_the_second,
    ),
    (
        "idempotency: a_mixed_batch_stores_exactly_its_new_valid_events",
        a_mixed_batch_stores_exactly_its_new_valid_events,
    ),
    (
        "idempotency: shadow_predictions_are_stored_once_per_version",
        shadow_predictions_are_stored_once_per_version,
    ),
    (
        "idempotency: a_request_id_sent_again_on_another_day_is_a_duplicate",
        a_request_id_sent_again_on_another_day_is_a_duplicate,
    ),
    // Late labels, both ways round.
    (
        "late labels, both ways round: labels_join_to_the_prediction_window_whenever_they_arrive",
        labels_join_to_the_prediction_window_whenever_they_arrive,
    ),
    (
        "late labels, both ways round: a_label_joins_every_version_whichever_arrives_first",
        a_label_joins_every_version_whichever_arrives_first,
    ),
    (
        "late labels, both ways round: labels_for_an_unknown_model_are_refused",
        labels_for_an_unknown_model_are_refused,
    ),
    // Event-time windows.
    (
        "event-time windows: windows_group_predictions_by_their_own_time",
        windows_group_predictions_by_their_own_time,
    ),
    (
        "event-time windows: scan_visits_the_range_with_labels",
        scan_visits_the_range_with_labels,
    ),
    (
        "event-time windows: shadow_predictions_stay_out_of_the_served_traffic",
        shadow_predictions_stay_out_of_the_served_traffic,
    ),
    // Retention.
    (
        "retention: retention_deletes_old_predictions_and_keeps_recent_ones",
        retention_deletes_old_predictions_and_keeps_recent_ones,
    ),
    (
        "retention: retention_forgets_old_events_wherever_they_are_read",
        retention_forgets_old_events_wherever_they_are_read,
    ),
    // Pages.
    (
        "pages: pages_visit_every_row_once_in_arrival_order",
        pages_visit_every_row_once_in_arrival_order,
    ),
    (
        "pages: a_cursor_the_store_did_not_hand_out_is_refused",
        a_cursor_the_store_did_not_hand_out_is_refused,
    ),
    // Concurrent writers.
    (
        "concurrent writers: concurrent_writers_store_each_request_id_once",
        concurrent_writers_store_each_request_id_once,
    ),
    // The catalog and the quarantine.
    (
        "the catalog and the quarantine: reference_rows_round_trip_and_set_the_schema",
        reference_rows_round_trip_and_set_the_schema,
    ),
    (
        "the catalog and the quarantine: wrong_kind_is_rejected_and_quarantined_while_good_rows_are_kept",
        wrong_kind_is_rejected_and_quarantined_while_good_rows_are_kept,
    ),
    (
        "the catalog and the quarantine: kpis_are_kept_per_name_and_a_retry_replaces",
        kpis_are_kept_per_name_and_a_retry_replaces,
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

pub(crate) fn labels(rows: &[&str]) -> LabelBatch {
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

/// Every page of `kind` (`predictions` or `labels`) of `limit` rows, following each page's
/// cursor, as request ids.
fn every_page(store: &dyn Store, labels_too: bool, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<Cursor> = None;
    // Bounded, so that a cursor that never moves on fails the check instead of hanging it.
    for _ in 0..100 {
        let (page, next) = if labels_too {
            let page = store.labels(&model(), after.as_ref(), limit).unwrap();
            let ids: Vec<String> = page.items.iter().map(|l| l.request_id.clone()).collect();
            (ids, page.next)
        } else {
            let page = store.predictions(&model(), after.as_ref(), limit).unwrap();
            let ids: Vec<String> = page.items.iter().map(|e| e.request_id.clone()).collect();
            (ids, page.next)
        };
        assert!(
            page.len() <= limit,
            "a page of {} rows for a limit of {limit}",
            page.len()
        );
        ids.extend(page);
        match next {
            Some(cursor) => after = Some(cursor),
            None => return ids,
        }
    }
    panic!("100 pages of {limit} and still a cursor: {ids:?}");
}

// Idempotency.

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

/// A request id is stored once whatever timestamp its retry carries: sent again with another
/// day's timestamp (on ClickHouse another day partition), alone or in a batch spanning two
/// days, it is a duplicate, and reads return the first arrival. An id holding characters that
/// need escaping on the way to the store (backslash, quote; control characters are refused at
/// parsing) is found like any other.
pub fn a_request_id_sent_again_on_another_day_is_a_duplicate(store: &dyn Store) {
    let odd_id = r"back\\slash 'quote' \u00e9";
    let first = [
        p("a", "2026-01-01T10:00:00Z", 1.0),
        p(odd_id, "2026-01-01T11:00:00Z", 2.0),
        p("b", "2026-01-02T10:00:00Z", 3.0),
    ];
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = store.ingest_predictions(&model(), preds(&first)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (3, 0));
    // A retry whose events moved to other days, one batch spanning two of them.
    let moved = [
        p("a", "2026-01-05T10:00:00Z", 9.0),
        p("b", "2026-01-03T10:00:00Z", 9.0),
    ];
    let moved: Vec<&str> = moved.iter().map(String::as_str).collect();
    let out = store.ingest_predictions(&model(), preds(&moved)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 2));
    let odd = p(odd_id, "2026-01-01T11:00:00Z", 2.0);
    let out = store.ingest_predictions(&model(), preds(&[&odd])).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 1));
    assert_eq!(store.model(&model()).unwrap().unwrap().predictions, 3);
    // The odd id's label, sent twice: the second replaces the first.
    let label =
        format!(r#"{{"request_id":"{odd_id}","label":1,"timestamp":"2026-01-06T00:00:00Z"}}"#);
    let out = store.ingest_labels(&model(), labels(&[&label])).unwrap();
    assert_eq!((out.accepted, out.replaced), (1, 0));
    let out = store.ingest_labels(&model(), labels(&[&label])).unwrap();
    assert_eq!((out.accepted, out.replaced), (1, 1));
    let page = store.predictions(&model(), None, 100).unwrap();
    let seen: Vec<(&str, Timestamp)> = (page.items.iter())
        .map(|e| (e.request_id.as_str(), e.timestamp))
        .collect();
    let at = |s: &str| modelwatch_core::parse_timestamp(s).unwrap();
    assert_eq!(
        seen,
        [
            ("a", at("2026-01-01T10:00:00Z")),
            ("back\\slash 'quote' \u{e9}", at("2026-01-01T11:00:00Z")),
            ("b", at("2026-01-02T10:00:00Z")),
        ]
    );
}

// Late labels, both ways round.

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

/// labels for an unknown model are refused.
pub fn labels_for_an_unknown_model_are_refused(store: &dyn Store) {
    let err = store
        .ingest_labels(&model(), labels(&[r#"{"request_id":"x","label":1}"#]))
        .unwrap_err();
    assert!(matches!(err, StoreError::ModelNotFound(_)));
}

// Event-time windows.

/// Windows are of the predictions' event time: a window's counts and a scan's range never
/// depend on when the predictions were sent or when their labels came.
pub fn windows_group_predictions_by_their_own_time(store: &dyn Store) {
    // Sent out of order, in two batches; labelled weeks later, in one batch.
    store
        .ingest_predictions(
            &model(),
            preds(&[
                &p("c", "2026-01-03T12:00:00Z", 1.0),
                &p("a", "2026-01-01T23:59:59Z", 1.0),
            ]),
        )
        .unwrap();
    store
        .ingest_predictions(&model(), preds(&[&p("b", "2026-01-02T00:00:00Z", 1.0)]))
        .unwrap();
    let rows: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            format!(r#"{{"request_id":"{id}","label":1,"timestamp":"2026-02-01T00:00:00Z"}}"#)
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    store.ingest_labels(&model(), labels(&rows)).unwrap();
    let q = WindowQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
    };
    let days: Vec<(String, u64, u64)> = (store.window_counts(&model(), &q).unwrap().iter())
        .map(|w| (w.start.to_rfc3339(), w.predictions, w.labelled))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-01-01T00:00:00Z".to_owned(), 1, 1),
            ("2026-01-02T00:00:00Z".to_owned(), 1, 1),
            ("2026-01-03T00:00:00Z".to_owned(), 1, 1),
        ]
    );
    // `[from, to)`: the second day exactly.
    let day2 = ScanRange {
        from: Some(modelwatch_core::parse_timestamp("2026-01-02T00:00:00Z").unwrap()),
        to: Some(modelwatch_core::parse_timestamp("2026-01-03T00:00:00Z").unwrap()),
        version: None,
    };
    let mut seen = Vec::new();
    store
        .scan_predictions(&model(), &day2, &mut |e, l| {
            seen.push((e.request_id.clone(), l.map(|l| l.timestamp.to_rfc3339())))
        })
        .unwrap();
    assert_eq!(
        seen,
        [("b".to_owned(), Some("2026-02-01T00:00:00Z".to_owned()))]
    );
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

/// Shadow predictions are not the served traffic: the served scans, the window counts and the
/// version counters never see them, so every other report reads what it read before shadows
/// existed. Retention deletes them with the rest.
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

// Retention.

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

/// After retention nothing a user reads shows the deleted events or the labels that went with
/// them (scans, pages, window counts, the model's counters), and everything recent is there.
pub fn retention_forgets_old_events_wherever_they_are_read(store: &dyn Store) {
    let now = Timestamp::now();
    let day = 86_400_000_000;
    let at = |days_ago: i64| Timestamp(now.micros() - days_ago * day).to_rfc3339();
    store
        .ingest_predictions(
            &model(),
            preds(&[&p("old", &at(40), 1.0), &p("new", &at(1), 1.0)]),
        )
        .unwrap();
    let label =
        |id: &str, ts: &str| format!(r#"{{"request_id":"{id}","label":1,"timestamp":"{ts}"}}"#);
    store
        .ingest_labels(
            &model(),
            labels(&[&label("old", &at(39)), &label("new", &at(0))]),
        )
        .unwrap();
    store.set_retention(&model(), Some(30)).unwrap();
    store.apply_retention(now).unwrap();
    let mut scanned = Vec::new();
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |e, l| {
            scanned.push((e.request_id.clone(), l.is_some()))
        })
        .unwrap();
    assert_eq!(scanned, [("new".to_owned(), true)]);
    assert_eq!(every_page(store, false, 10), ["new"]);
    assert_eq!(every_page(store, true, 10), ["new"]);
    let q = WindowQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
    };
    let counts = store.window_counts(&model(), &q).unwrap();
    let totals = (counts.iter()).fold((0, 0), |(n, l), w| (n + w.predictions, l + w.labelled));
    assert_eq!(totals, (1, 1));
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.predictions, m.labels, m.labelled), (1, 1, 1));
}

// Pages.

/// Pages of predictions and of labels, each read with the cursor the page before handed out,
/// visit every stored row once, in arrival order, whatever the page size.
pub fn pages_visit_every_row_once_in_arrival_order(store: &dyn Store) {
    let ids: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
    // Three batches, so that pages cross from one batch's rows to the next.
    for part in ids.chunks(3) {
        let rows: Vec<String> = (part.iter())
            .map(|id| p(id, "2026-01-01T00:00:00Z", 1.0))
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        store.ingest_predictions(&model(), preds(&rows)).unwrap();
    }
    // Labels arrive in another order than their predictions, one batch each.
    for id in ["r5", "r1", "r3"] {
        let row = format!(r#"{{"request_id":"{id}","label":1}}"#);
        store.ingest_labels(&model(), labels(&[&row])).unwrap();
    }
    for limit in [1, 2, 3, 7, 100] {
        assert_eq!(every_page(store, false, limit), ids, "pages of {limit}");
        assert_eq!(
            every_page(store, true, limit),
            ["r5", "r1", "r3"],
            "pages of {limit}"
        );
    }
}

/// A cursor the store did not hand out (made up, or one of the other kind's pages) is refused
/// as such, never read as some other position.
pub fn a_cursor_the_store_did_not_hand_out_is_refused(store: &dyn Store) {
    let rows = [
        p("a", "2026-01-01T00:00:00Z", 1.0),
        p("b", "2026-01-01T00:00:00Z", 1.0),
    ];
    store
        .ingest_predictions(&model(), preds(&[&rows[0], &rows[1]]))
        .unwrap();
    store
        .ingest_labels(
            &model(),
            labels(&[
                r#"{"request_id":"a","label":1}"#,
                r#"{"request_id":"b","label":1}"#,
            ]),
        )
        .unwrap();
    let of_predictions = store.predictions(&model(), None, 1).unwrap().next.unwrap();
    let of_labels = store.labels(&model(), None, 1).unwrap().next.unwrap();
    let refused = |e: StoreError| matches!(e, StoreError::InvalidCursor { .. });
    for made_up in ["", "not a cursor", "-1", "12abc"].map(Cursor::new) {
        let e = store.predictions(&model(), Some(&made_up), 10).unwrap_err();
        assert!(refused(e), "{made_up}");
        let e = store.labels(&model(), Some(&made_up), 10).unwrap_err();
        assert!(refused(e), "{made_up}");
    }
    let e = store
        .predictions(&model(), Some(&of_labels), 10)
        .unwrap_err();
    assert!(refused(e));
    let e = store
        .labels(&model(), Some(&of_predictions), 10)
        .unwrap_err();
    assert!(refused(e));
}

// Concurrent writers.

/// Writers racing with the same request ids (a retry arriving while the first attempt is still
/// being stored, several clients replaying one file) store each id once: the answers add up
/// to one acceptance per id, and labels sent meanwhile, before or after their predictions,
/// all join.
pub fn concurrent_writers_store_each_request_id_once(store: &dyn Store) {
    const IDS: usize = 60;
    const WRITERS: usize = 4;
    // The model exists before the labels come.
    store
        .ingest_predictions(&model(), preds(&[&p("seed", "2026-01-01T00:00:00Z", 0.0)]))
        .unwrap();
    let id = |i: usize| format!("r{i:03}");
    let answers: Vec<IngestOutcome> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                s.spawn(move || {
                    // Every writer sends every id, each starting at another one, 7 per batch.
                    let mut order: Vec<usize> = (0..IDS).collect();
                    order.rotate_left(w * IDS / WRITERS);
                    (order.chunks(7))
                        .map(|part| {
                            let rows: Vec<String> = (part.iter())
                                .map(|&i| p(&id(i), "2026-01-01T00:00:00Z", i as f64))
                                .collect();
                            let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
                            store.ingest_predictions(&model(), preds(&rows)).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let labeller = s.spawn(move || {
            for part in (0..IDS).collect::<Vec<_>>().chunks(10) {
                let rows: Vec<String> = (part.iter())
                    .map(|&i| format!(r#"{{"request_id":"{}","label":1}}"#, id(i)))
                    .collect();
                let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
                store.ingest_labels(&model(), labels(&rows)).unwrap();
            }
        });
        labeller.join().unwrap();
        (writers.into_iter())
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let accepted: usize = answers.iter().map(|a| a.accepted).sum();
    let duplicates: usize = answers.iter().map(|a| a.duplicates).sum();
    assert_eq!((accepted, duplicates), (IDS, (WRITERS - 1) * IDS));
    assert!(answers.iter().all(|a| a.rejected.is_empty()));
    let mut scanned = Vec::new();
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |e, l| {
            scanned.push((e.request_id.clone(), l.is_some()))
        })
        .unwrap();
    scanned.sort();
    let mut expected: Vec<(String, bool)> = (0..IDS).map(|i| (id(i), true)).collect();
    expected.push(("seed".into(), false));
    assert_eq!(scanned, expected);
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!(
        (m.predictions, m.labels, m.labelled),
        (IDS as u64 + 1, IDS as u64, IDS as u64)
    );
}

// The catalog and the quarantine.

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
