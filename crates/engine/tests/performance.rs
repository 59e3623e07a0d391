//! Per-window performance over a real `SqliteStore`, checked against scikit-learn values
//! computed on the same rows (`scripts/fixtures/gen_window_fixtures.py`), and invariance to
//! label order and batching.

mod common;

use modelwatch_core::{
    parse_prediction_row, FeatureValue, IngestLimits, ModelName, Outcome, ReferenceRow, Timestamp,
    Window,
};
use modelwatch_engine::aggregates;
use modelwatch_engine::feedback::{feedback, scan_feedback, FeedbackQuery, FeedbackThresholds};
use modelwatch_engine::performance::{
    scan_performance, window_performance, PerformanceQuery, PerformanceReport, TaskSpec,
    WindowAccumulator, WindowFold,
};
use modelwatch_store::{
    Catalog, Cursor, DerivedState, EventLog, IngestOutcome, LabelBatch, PredictionBatch, ScanRange,
    SqliteStore, Store,
};
use modelwatch_testkit::assert_json_close;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

fn fixture(name: &str) -> Value {
    // Read when the test runs, not when it was built: a test binary reused from another
    // checkout (a shared target directory) would otherwise look in that checkout.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let path = format!("{dir}/tests/fixtures/{name}.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn model() -> ModelName {
    ModelName::new("m").unwrap()
}

fn ingest_predictions(store: &dyn Store, rows: &[Value]) {
    ingest_predictions_folded(store, rows, false);
}

/// Ingests `rows`, with the folds the server makes on arrival when `fold` is set.
fn ingest_predictions_folded(store: &dyn Store, rows: &[Value], fold: bool) -> IngestOutcome {
    common::ingest_predictions(store, &model(), rows, fold)
}

fn ingest_labels(store: &dyn Store, rows: &[Value]) {
    common::ingest_labels(store, &model(), rows);
}

fn outcome(v: &Value) -> Outcome {
    match v {
        Value::Bool(b) => Outcome::Bool(*b),
        Value::Number(n) => Outcome::Number(n.as_f64().unwrap()),
        Value::String(s) => Outcome::Text(s.clone()),
        other => panic!("not an outcome: {other}"),
    }
}

fn put_reference(store: &dyn Store, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let rows = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let features = r["features"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.into(), FeatureValue::Text(v.as_str().unwrap().into())))
                .collect();
            let row = ReferenceRow {
                features,
                prediction: r.get("prediction").map(outcome),
                score: r.get("score").and_then(Value::as_f64),
                scores: None,
                label: r.get("label").map(outcome),
                explanations: Vec::new(),
            };
            (i, row)
        })
        .collect();
    store.put_reference(&model(), None, rows, vec![]).unwrap();
}

/// A store in a tempdir holding the fixture's events, labels and reference.
fn load(name: &str) -> (tempfile::TempDir, SqliteStore, Value) {
    let data = fixture(name);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let preds = data["predictions"].as_array().unwrap();
    for chunk in preds.chunks(500) {
        ingest_predictions(&store, chunk);
    }
    ingest_labels(&store, data["labels"].as_array().unwrap());
    put_reference(&store, data["reference"].as_array().unwrap());
    (dir, store, data)
}

fn query() -> PerformanceQuery {
    PerformanceQuery {
        window: Some(Window::DAY),
        ..PerformanceQuery::default()
    }
}

/// Checks every expected key of `want` (sklearn) against the report object `got`.
fn check(ctx: &str, got: &Value, want: &Value) {
    for (key, w) in want.as_object().unwrap() {
        let g = &got[key.as_str()];
        match key.as_str() {
            "n" | "predictions" | "labelled" | "errors" | "confusion_matrix" => {
                assert_eq!(g, w, "{ctx}: {key}")
            }
            _ if g["status"] == "insufficient_sample" => {
                // A small segment: the metric's own denominator is under the minimum.
                assert!(g["n"].as_u64().unwrap() < 30, "{ctx}: {key}: {g}");
            }
            _ => {
                assert_eq!(g["status"], "defined", "{ctx}: {key}: {g}");
                let (g, w) = (g["value"].as_f64().unwrap(), w.as_f64().unwrap());
                let binned = got["ranking_method"] == "binned";
                let tol = match key.as_str() {
                    "roc_auc" if binned => 0.002,
                    "average_precision" if binned => 0.005,
                    _ => 1e-9,
                };
                assert!((g - w).abs() <= tol, "{ctx}: {key}: got {g}, sklearn {w}");
            }
        }
    }
}

fn window<'a>(report: &'a Value, start: &str) -> &'a Value {
    report["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["start"] == start)
        .unwrap_or_else(|| panic!("no window {start}"))
}

/// The report as the API's JSON, checked to read back into the typed report unchanged (as
/// `modelwatch report --server` reads the server's answer).
fn as_json(report: PerformanceReport) -> Value {
    let json = serde_json::to_value(&report).unwrap();
    let back: PerformanceReport = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), json, "read back");
    json
}

fn check_fixture(name: &str, task: &str) {
    let (_dir, store, data) = load(name);
    let exp = &data["expected"];

    let report = as_json(window_performance(&store, &model(), &query()).unwrap());
    assert_eq!(report["task"], task);
    let want = exp["windows"].as_object().unwrap();
    assert_eq!(report["windows"].as_array().unwrap().len(), want.len());
    for (start, w) in want {
        check(&format!("{name} {start}"), window(&report, start), w);
    }
    match exp.get("baseline") {
        Some(b) => {
            check(&format!("{name} baseline"), &report["baseline"], b);
            assert!(window(&report, want.keys().next().unwrap())["changes"].is_object());
        }
        None => assert!(report["baseline"].is_null()),
    }

    let week = PerformanceQuery {
        window: Some(Window::WEEK),
        ..query()
    };
    let report = as_json(window_performance(&store, &model(), &week).unwrap());
    for (start, w) in exp["week"].as_object().unwrap() {
        let got = window(&report, start);
        if task == "binary" {
            assert_eq!(got["ranking_method"], "binned");
        }
        check(&format!("{name} week {start}"), got, w);
    }

    let v1 = PerformanceQuery {
        version: Some("v1".into()),
        ..query()
    };
    let report = as_json(window_performance(&store, &model(), &v1).unwrap());
    for (start, w) in exp["windows_v1"].as_object().unwrap() {
        check(&format!("{name} v1 {start}"), window(&report, start), w);
    }

    let seg = PerformanceQuery {
        segment: Some("country".into()),
        ..query()
    };
    let report = as_json(window_performance(&store, &model(), &seg).unwrap());
    assert_eq!(report["segment"], "country");
    let segments = report["segments"].as_array().unwrap();
    let want = exp["segments"].as_object().unwrap();
    assert_eq!(segments.len(), want.len());
    for (value, w) in want {
        let got = segments.iter().find(|s| s["value"] == *value).unwrap();
        check(&format!("{name} segment {value}"), got, w);
    }
    // Worst first by the main metric.
    let main = match task {
        "binary" => "f1",
        "multiclass" => "accuracy",
        _ => "mae",
    };
    let values: Vec<f64> = segments
        .iter()
        .map(|s| s[main]["value"].as_f64().unwrap())
        .collect();
    let sorted = values.windows(2).all(|p| {
        if task == "regression" {
            p[0] >= p[1]
        } else {
            p[0] <= p[1]
        }
    });
    assert!(sorted, "{main}: {values:?}");
}

#[test]
fn binary_windows_versions_segments_and_baseline_match_sklearn() {
    check_fixture("binary", "binary");
}

#[test]
fn regression_windows_versions_segments_match_sklearn() {
    check_fixture("regression", "regression");
}

#[test]
fn multiclass_windows_versions_segments_match_sklearn() {
    check_fixture("multiclass", "multiclass");
}

#[test]
fn operational_metrics_are_reported_per_window() {
    let (_dir, store, _) = load("binary");
    let report =
        serde_json::to_value(window_performance(&store, &model(), &query()).unwrap()).unwrap();
    let w = &report["windows"][0];
    for key in [
        "label_coverage",
        "error_rate",
        "latency_ms",
        "average_confidence",
        "prediction_distribution",
        "score_quantiles",
        "insufficient_sample",
    ] {
        assert!(!w[key].is_null(), "{key} missing in {w}");
    }
    assert_eq!(w["latency_ms"]["p95"]["status"], "defined");
    assert_eq!(w["insufficient_sample"], false);
    assert_eq!(report["positive_class"], "1");
}

/// Equal, numbers to a relative 1e-12 (sums may be added in another order).
fn assert_close(ctx: &str, a: &Value, b: &Value) {
    assert_json_close(a, b, 1e-12, ctx);
}

#[test]
fn labels_before_or_after_predictions_and_any_batching_give_the_same_metrics() {
    for name in ["binary", "regression", "multiclass"] {
        let (_dir, store, data) = load(name);
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();

        // Labels first (one prediction creates the model), in small batches; then the
        // predictions in reverse order, in other batches.
        let dir = tempfile::tempdir().unwrap();
        let other = SqliteStore::open(dir.path()).unwrap();
        ingest_predictions(&other, &preds[..1]);
        for chunk in labels.chunks(37) {
            ingest_labels(&other, chunk);
        }
        let mut rest: Vec<Value> = preds[1..].to_vec();
        rest.reverse();
        for chunk in rest.chunks(113) {
            ingest_predictions(&other, chunk);
        }
        put_reference(&other, data["reference"].as_array().unwrap());

        // With a segment the answer comes from the raw events, without one from the
        // aggregates: both must not depend on order or batching.
        for segment in [Some("country".to_owned()), None] {
            let q = PerformanceQuery { segment, ..query() };
            let a =
                serde_json::to_value(window_performance(&store, &model(), &q).unwrap()).unwrap();
            let b =
                serde_json::to_value(window_performance(&other, &model(), &q).unwrap()).unwrap();
            assert_close(name, &a, &b);
        }
    }
}

#[test]
fn merged_partial_folds_equal_one_fold() {
    let (_dir, store, _) = load("binary");
    let spec = {
        let r = window_performance(&store, &model(), &query()).unwrap();
        TaskSpec { ..r.spec }
    };
    let mut whole = WindowFold::new(spec.clone(), Window::DAY, Some("country".into()));
    let mut parts = [
        WindowFold::new(spec.clone(), Window::DAY, Some("country".into())),
        WindowFold::new(spec.clone(), Window::DAY, Some("country".into())),
        WindowFold::new(spec.clone(), Window::DAY, Some("country".into())),
    ];
    let mut i = 0;
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |p, l| {
            whole.observe(p, l);
            parts[i % 3].observe(p, l);
            i += 1;
        })
        .unwrap();
    let [mut a, b, c] = parts;
    a.merge(&c).unwrap();
    a.merge(&b).unwrap();
    assert_eq!(a.windows.len(), whole.windows.len());
    for (start, w) in &whole.windows {
        let config = Default::default();
        let x = serde_json::to_value(w.state.report(&config)).unwrap();
        let y = serde_json::to_value(a.windows[start].state.report(&config)).unwrap();
        assert_close(&start.to_string(), &x, &y);
        assert_eq!(w.predictions, a.windows[start].predictions);
    }
    // An accumulator survives a serde round trip (what a persisted state will need).
    let acc: &WindowAccumulator = whole.windows.values().next().unwrap();
    let back: WindowAccumulator =
        serde_json::from_str(&serde_json::to_string(acc).unwrap()).unwrap();
    assert_close(
        "round trip",
        &serde_json::to_value(&back).unwrap(),
        &serde_json::to_value(acc).unwrap(),
    );
}

/// Day, week and hour windows over all versions, and day windows of v1: the queries the
/// aggregates must answer as the raw events do.
fn window_queries() -> Vec<PerformanceQuery> {
    [
        (Window::DAY, None),
        (Window::WEEK, None),
        (Window::HOUR, None),
        (Window::DAY, Some("v1".to_owned())),
    ]
    .into_iter()
    .map(|(window, version)| PerformanceQuery {
        window: Some(window),
        version,
        ..query()
    })
    .collect()
}

fn both_paths(store: &dyn Store, q: &PerformanceQuery) -> (Value, Value) {
    let fast = serde_json::to_value(window_performance(store, &model(), q).unwrap()).unwrap();
    let slow = serde_json::to_value(scan_performance(store, &model(), q).unwrap()).unwrap();
    (fast, slow)
}

#[test]
fn aggregates_refreshed_between_batches_answer_as_the_raw_events_do() {
    for name in ["binary", "regression", "multiclass"] {
        let data = fixture(name);
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();
        put_reference(&store, data["reference"].as_array().unwrap());
        // Queries between batches refresh the aggregates part-way: later predictions and
        // labels must land in hours that were already aggregated.
        let (half_p, half_l) = (preds.len() / 2, labels.len() / 2);
        ingest_predictions(&store, &preds[..half_p]);
        ingest_labels(&store, &labels[..half_l]);
        let first = aggregates::refresh(&store, &model()).unwrap();
        assert!(
            first.hours > 0 && first.predictions == half_p as u64,
            "{first:?}"
        );
        assert_eq!(aggregates::refresh(&store, &model()).unwrap().hours, 0);
        ingest_predictions(&store, &preds[half_p..]);
        ingest_labels(&store, &labels[half_l..]);
        for q in window_queries() {
            let window = q.window.unwrap();
            assert!(aggregates::answers(&q));
            let (fast, slow) = both_paths(&store, &q);
            assert!(!fast["windows"].as_array().unwrap().is_empty());
            assert_close(&format!("{name} {}", window.label()), &fast, &slow);
        }
        assert!(store.pending_changes(&model()).unwrap().marks.is_empty());
        // A rebuild from the raw log alone gives the same answer.
        aggregates::rebuild(&store, &model()).unwrap();
        let (fast, slow) = both_paths(&store, &query());
        assert_close(&format!("{name} rebuilt"), &fast, &slow);
    }
}

#[test]
fn late_labels_are_added_from_deltas_and_equal_the_raw_events_and_a_rebuild() {
    for name in ["binary", "regression", "multiclass"] {
        let (_dir, store, data) = with_reference(name);
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();
        ingest_predictions(&store, preds);
        let built = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(built.predictions, preds.len() as u64);
        // Every label arrives after its hour was aggregated, in three requests.
        let third = labels.len() / 3;
        for part in [
            &labels[..third],
            &labels[third..2 * third],
            &labels[2 * third..],
        ] {
            ingest_labels(&store, part);
        }
        assert!(store
            .pending_changes(&model())
            .unwrap()
            .marks
            .iter()
            .all(|d| d.deltas_only));
        let late = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (late.predictions, late.labels_added),
            (0, labels.len() as u64),
            "{name}: every label added from its delta, no hour rescanned"
        );
        assert!(store.pending_changes(&model()).unwrap().deltas.is_empty());
        let answers = windows_match_the_raw_events(&store, &format!("{name} from deltas"));
        // A replaced label cannot be added: its hour is rescanned, and the answer is the same.
        let mut replaced = labels[0].clone();
        replaced["label"] = labels[1]["label"].clone();
        ingest_labels(&store, &[replaced]);
        let again = aggregates::refresh(&store, &model()).unwrap();
        assert!(
            again.predictions > 0 && again.labels_added == 0,
            "{again:?}"
        );
        let (fast, slow) = both_paths(&store, &query());
        assert_close(&format!("{name} after a replacement"), &fast, &slow);
        // The rebuilt aggregates equal the ones the deltas were added to.
        aggregates::rebuild(&store, &model()).unwrap();
        ingest_labels(&store, &[labels[0].clone()]);
        let (fast, _) = both_paths(&store, &query());
        assert_close(&format!("{name} rebuilt"), &answers[0], &fast);
    }
}

/// A fresh store holding only the fixture's reference; the fixture.
fn with_reference(name: &str) -> (tempfile::TempDir, SqliteStore, serde_json::Value) {
    let data = fixture(name);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    put_reference(&store, data["reference"].as_array().unwrap());
    (dir, store, data)
}

/// Every window query answered from the aggregates equals the raw-event fold; the answers.
fn windows_match_the_raw_events(store: &SqliteStore, what: &str) -> Vec<serde_json::Value> {
    let mut answers = Vec::new();
    for q in window_queries() {
        let window = q.window.unwrap();
        let (fast, slow) = both_paths(store, &q);
        assert_close(&format!("{what} {}", window.label()), &fast, &slow);
        answers.push(fast);
    }
    answers
}

#[test]
fn new_predictions_are_added_from_their_chunks_and_equal_the_raw_events_and_a_rebuild() {
    for name in ["binary", "regression", "multiclass"] {
        let (_dir, store, data) = with_reference(name);
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();
        // The first half decides the task and is aggregated by a rescan.
        let half = preds.len() / 2;
        ingest_predictions(&store, &preds[..half]);
        let built = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(built.predictions, half as u64, "{name}");
        // The rest lands in hours already aggregated and in new ones, in three requests with
        // a refresh after the first, so deltas are added both to stored aggregates and to ones
        // written from deltas alone.
        let third = (preds.len() - half) / 3;
        let parts = [
            &preds[half..half + third],
            &preds[half + third..half + 2 * third],
            &preds[half + 2 * third..],
        ];
        let mut added = 0;
        for (i, part) in parts.iter().enumerate() {
            ingest_predictions(&store, part);
            if i == 0 {
                let r = aggregates::refresh(&store, &model()).unwrap();
                assert_eq!(r.predictions, 0, "{name}: {r:?}");
                added += r.predictions_added;
            }
        }
        assert!(store
            .pending_changes(&model())
            .unwrap()
            .marks
            .iter()
            .all(|d| d.deltas_only));
        let r = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (r.predictions, added + r.predictions_added),
            (0, (preds.len() - half) as u64),
            "{name}: every new prediction added from its chunk, no hour rescanned"
        );
        assert!(store.pending_changes(&model()).unwrap().deltas.is_empty());
        // Then every label, as deltas of predictions that all came one way or the other.
        ingest_labels(&store, labels);
        let r = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (r.predictions, r.labels_added),
            (0, labels.len() as u64),
            "{name}"
        );
        let answers =
            windows_match_the_raw_events(&store, &format!("{name} from prediction deltas"));
        // The rebuilt aggregates equal the ones the deltas were added to.
        let rebuilt = aggregates::rebuild(&store, &model()).unwrap();
        assert_eq!(rebuilt.predictions, preds.len() as u64, "{name}");
        let (fast, _) = both_paths(&store, &query());
        assert_close(&format!("{name} rebuilt"), &answers[0], &fast);
    }
}

#[test]
fn predictions_folded_on_arrival_are_added_without_decoding_and_equal_the_raw_events() {
    for name in ["binary", "regression", "multiclass"] {
        let (_dir, store, data) = with_reference(name);
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();
        // Before the task is decided there is nothing to fold for.
        let half = preds.len() / 2;
        assert!(aggregates::fold_on_arrival(&store, &model(), &[]).is_ok_and(|f| f.is_none()));
        ingest_predictions_folded(&store, &preds[..half], true);
        aggregates::refresh(&store, &model()).unwrap();
        // The rest arrives folded, in two requests (alternate rows, so both cover the same
        // hours); the second repeats a row of the first, so its fold of that row's hour does
        // not match what was stored and that hour's chunk is read instead.
        let first: Vec<Value> = preds[half..].iter().step_by(2).cloned().collect();
        let mut second: Vec<Value> = preds[half + 1..].iter().step_by(2).cloned().collect();
        ingest_predictions_folded(&store, &first, true);
        let hour = |r: &Value| {
            format!(
                "{} {}",
                r["model_version"],
                &r["timestamp"].to_string()[..14]
            )
        };
        let hours: std::collections::HashSet<String> = second.iter().map(hour).collect();
        let again = first
            .iter()
            .find(|r| hours.contains(&hour(r)))
            .unwrap()
            .clone();
        second.push(again);
        let out = ingest_predictions_folded(&store, &second, true);
        assert_eq!(out.duplicates, 1, "{name}");
        let r = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (r.predictions, r.predictions_added),
            (0, (preds.len() - half) as u64),
            "{name}: {r:?}"
        );
        assert!(
            r.predictions_decoded > 0 && r.predictions_decoded < r.predictions_added,
            "{name}: only the hour with the repeated row decoded: {r:?}"
        );
        ingest_labels(&store, labels);
        let answers = windows_match_the_raw_events(&store, &format!("{name} folded on arrival"));
        aggregates::rebuild(&store, &model()).unwrap();
        let (fast, _) = both_paths(&store, &query());
        assert_close(&format!("{name} rebuilt"), &answers[0], &fast);
    }
}

#[test]
fn a_label_sent_before_its_prediction_rescans_the_hour_it_lands_in() {
    let data = fixture("binary");
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let preds = data["predictions"].as_array().unwrap();
    let labels = data["labels"].as_array().unwrap();
    ingest_predictions(&store, &preds[..preds.len() - 1]);
    aggregates::refresh(&store, &model()).unwrap();
    let last = preds.last().unwrap();
    let label: Vec<_> = labels
        .iter()
        .filter(|l| l["request_id"] == last["request_id"])
        .cloned()
        .collect();
    assert_eq!(label.len(), 1, "the fixture labels its last prediction");
    ingest_labels(&store, &label);
    ingest_predictions(&store, std::slice::from_ref(last));
    let dirty = store.pending_changes(&model()).unwrap().marks;
    assert!(dirty.len() == 1 && !dirty[0].deltas_only, "{dirty:?}");
    let r = aggregates::refresh(&store, &model()).unwrap();
    assert!(r.predictions > 0 && r.predictions_added == 0, "{r:?}");
    let (fast, slow) = both_paths(&store, &query());
    assert_close("adopted label", &fast, &slow);
}

#[test]
fn a_third_class_turns_the_aggregates_multiclass() {
    let (_dir, store, _) = load("binary");
    let (fast, _) = both_paths(&store, &query());
    assert_eq!(fast["task"], "binary");
    ingest_predictions(
        &store,
        &[
            serde_json::json!({"request_id": "third", "timestamp": "2026-03-01T00:00:00Z",
            "features": {"country": "DE"}, "prediction": 2}),
        ],
    );
    ingest_labels(
        &store,
        &[serde_json::json!({"request_id": "third", "label": 2})],
    );
    let report = aggregates::refresh(&store, &model()).unwrap();
    assert!(report.rebuilt, "{report:?}");
    let (fast, slow) = both_paths(&store, &query());
    assert_eq!(fast["task"], "multiclass");
    assert_close("multiclass", &fast, &slow);
}

#[test]
fn a_new_reference_replaces_the_kept_baseline() {
    let (_dir, store, data) = load("binary");
    let (fast, _) = both_paths(&store, &query());
    let before = fast["baseline"]["accuracy"]["value"].as_f64().unwrap();
    // The same reference with every label flipped.
    let flipped: Vec<Value> = data["reference"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let l = r["label"].as_i64().unwrap();
            r["label"] = Value::from(1 - l);
            r
        })
        .collect();
    put_reference(&store, &flipped);
    let (fast, slow) = both_paths(&store, &query());
    let after = fast["baseline"]["accuracy"]["value"].as_f64().unwrap();
    assert!((before + after - 1.0).abs() < 1e-9, "{before} {after}");
    assert_close("flipped", &fast, &slow);
}

/// A stored hour that no longer decodes (written by another version of modelwatch) is not an
/// error: the query answers from the raw events, every hour is marked, and the next refresh
/// rebuilds them so the aggregates answer again.
#[test]
fn an_unreadable_hour_is_rebuilt_not_an_error() {
    let (_dir, store, _) = load("binary");
    let q = query();
    let (fast, slow) = both_paths(&store, &q);
    assert_close("before", &fast, &slow);
    let rows = store
        .aggregates(&model(), aggregates::PERFORMANCE, &ScanRange::default())
        .unwrap();
    let first = rows.first().expect("hours were aggregated");
    store
        .put_aggregates(
            &model(),
            modelwatch_store::AggregateWrite {
                kind: aggregates::PERFORMANCE.into(),
                put: vec![modelwatch_store::StoredAggregate {
                    version: first.version.clone(),
                    hour: first.hour,
                    data: vec![0xff; 7],
                }],
                ..Default::default()
            },
        )
        .unwrap();
    assert!(aggregates::window_performance(&store, &model(), &q)
        .unwrap()
        .is_none());
    assert!(
        !store.pending_changes(&model()).unwrap().marks.is_empty(),
        "every hour marked"
    );
    let (fast, slow) = both_paths(&store, &q);
    assert_close("after", &fast, &slow);
    assert!(aggregates::window_performance(&store, &model(), &q)
        .unwrap()
        .is_some());
}

/// Reads one postcard varint at `*at`, moving past it.
fn varint(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = data[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A binary hour blob as a modelwatch from before the decision rule would have written it
/// (when the score decided the class): the spec JSON without `decision`, and the binary state
/// without its `decision` field. (The layout number the blob starts with is kept, so that it
/// is the spec that tells the blob apart.)
fn before_the_decision_rule(blob: &[u8]) -> Vec<u8> {
    let mut at = 0;
    varint(blob, &mut at);
    let format = &blob[..at];
    let len = varint(blob, &mut at) as usize;
    let spec = std::str::from_utf8(&blob[at..at + len]).unwrap();
    let old_spec = spec.replace(",\"decision\":\"prediction\"", "");
    assert_ne!(old_spec, spec, "{spec}");
    at += len;
    let acc_start = at;
    // predictions, errors, labelled, unusable; the task state's variant (0: binary); the
    // threshold; then the decision (0: prediction), which the old state did not have.
    for _ in 0..4 {
        varint(blob, &mut at);
    }
    assert_eq!(varint(blob, &mut at), 0, "a binary state");
    at += 8;
    assert_eq!(blob[at], 0, "decided by the prediction");
    let mut old = format.to_vec();
    put_varint(&mut old, old_spec.len() as u64);
    old.extend_from_slice(old_spec.as_bytes());
    old.extend_from_slice(&blob[acc_start..at]);
    old.extend_from_slice(&blob[at + 1..]);
    old
}

/// Aggregates written when the score decided the class are never read with today's meaning:
/// hours of the old shape are not used (the raw events answer), a task decision of the old
/// shape has every hour rebuilt, and the rebuilt aggregates answer as the raw events do.
#[test]
fn aggregates_from_before_the_decision_rule_are_rebuilt_not_read() {
    let (_dir, store, _) = load("binary");
    let q = query();
    let (fast, slow) = both_paths(&store, &q);
    assert_close("before", &fast, &slow);
    assert_eq!(fast["decision"], "prediction");
    let rewrite = |kind: &str, f: &dyn Fn(&[u8]) -> Vec<u8>| {
        let rows = store
            .aggregates(&model(), kind, &ScanRange::default())
            .unwrap();
        assert!(!rows.is_empty(), "{kind}");
        let put = rows
            .iter()
            .map(|r| modelwatch_store::StoredAggregate {
                version: r.version.clone(),
                hour: r.hour,
                data: f(&r.data),
            })
            .collect();
        store
            .put_aggregates(
                &model(),
                modelwatch_store::AggregateWrite {
                    kind: kind.into(),
                    put,
                    ..Default::default()
                },
            )
            .unwrap();
    };
    // Old hours under a current decision: not used.
    rewrite(aggregates::PERFORMANCE, &before_the_decision_rule);
    assert!(aggregates::window_performance(&store, &model(), &q)
        .unwrap()
        .is_none());
    let (fast, slow) = both_paths(&store, &q);
    assert_close("old hours", &fast, &slow);

    // An old task decision too: every hour is rebuilt.
    aggregates::rebuild(&store, &model()).unwrap();
    rewrite(aggregates::PERFORMANCE, &before_the_decision_rule);
    rewrite("task", &|data| {
        let mut d: Value = serde_json::from_slice(data).unwrap();
        d["spec"]
            .as_object_mut()
            .unwrap()
            .remove("decision")
            .unwrap();
        serde_json::to_vec(&d).unwrap()
    });
    let hours = store
        .aggregates(&model(), aggregates::PERFORMANCE, &ScanRange::default())
        .unwrap()
        .len();
    let r = aggregates::refresh(&store, &model()).unwrap();
    assert_eq!(r.hours, hours, "every hour rebuilt");
    assert!(
        aggregates::window_performance(&store, &model(), &q)
            .unwrap()
            .is_some(),
        "rebuilt aggregates answer"
    );
    // Through the public path, which flags partial windows as the raw path does.
    let (fast, slow) = both_paths(&store, &q);
    assert_close("old decision", &fast, &slow);
}

/// The real store, with something done by another request at one chosen moment of a refresh:
/// right after the snapshot of a rescan whose range holds `at`, before the rescan writes.
/// (Only that moment is chosen; every call goes to the store as it is.)
struct RaceAfterScan {
    inner: std::sync::Arc<SqliteStore>,
    at: Timestamp,
    meanwhile: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl EventLog for RaceAfterScan {
    fn ingest_predictions(
        &self,
        model: &ModelName,
        batch: PredictionBatch,
    ) -> Result<IngestOutcome, modelwatch_store::StoreError> {
        self.inner.ingest_predictions(model, batch)
    }
    fn ingest_labels(
        &self,
        model: &ModelName,
        batch: LabelBatch,
    ) -> Result<IngestOutcome, modelwatch_store::StoreError> {
        self.inner.ingest_labels(model, batch)
    }
    fn ingest_kpis(
        &self,
        model: &ModelName,
        rows: Vec<(usize, modelwatch_core::KpiEvent)>,
        rejected: Vec<modelwatch_store::Quarantined>,
    ) -> Result<IngestOutcome, modelwatch_store::StoreError> {
        self.inner.ingest_kpis(model, rows, rejected)
    }
    fn kpis(
        &self,
        model: &ModelName,
        name: Option<&str>,
        range: &ScanRange,
    ) -> Result<Vec<modelwatch_core::KpiEvent>, modelwatch_store::StoreError> {
        self.inner.kpis(model, name, range)
    }
    fn window_counts(
        &self,
        model: &ModelName,
        query: &modelwatch_store::WindowQuery,
    ) -> Result<Vec<modelwatch_store::WindowCounts>, modelwatch_store::StoreError> {
        self.inner.window_counts(model, query)
    }
    fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<
        modelwatch_store::Page<modelwatch_core::PredictionEvent>,
        modelwatch_store::StoreError,
    > {
        self.inner.predictions(model, after, limit)
    }
    fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<modelwatch_store::Page<modelwatch_core::LabelEvent>, modelwatch_store::StoreError>
    {
        self.inner.labels(model, after, limit)
    }
    fn rejected(
        &self,
        model: &ModelName,
        limit: usize,
    ) -> Result<Vec<modelwatch_store::RejectedRow>, modelwatch_store::StoreError> {
        self.inner.rejected(model, limit)
    }
    fn scan_predictions(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&modelwatch_core::PredictionEvent, Option<&modelwatch_core::LabelEvent>),
    ) -> Result<modelwatch_store::ScanSnapshot, modelwatch_store::StoreError> {
        let through = self.inner.scan_predictions(model, range, f)?;
        let holds = range.from.is_none_or(|t| t <= self.at) && range.to.is_none_or(|t| self.at < t);
        if holds {
            let meanwhile = self.meanwhile.lock().unwrap().take();
            if let Some(meanwhile) = meanwhile {
                meanwhile();
            }
        }
        Ok(through)
    }
    fn scan_with_shadows(
        &self,
        model: &ModelName,
        range: &ScanRange,
        f: &mut dyn FnMut(&modelwatch_core::PredictionEvent, Option<&modelwatch_core::LabelEvent>),
    ) -> Result<(), modelwatch_store::StoreError> {
        self.inner.scan_with_shadows(model, range, f)
    }
    fn apply_retention(
        &self,
        now: Timestamp,
    ) -> Result<modelwatch_store::RetentionReport, modelwatch_store::StoreError> {
        self.inner.apply_retention(now)
    }
}

impl Catalog for RaceAfterScan {
    fn list_models(
        &self,
    ) -> Result<Vec<modelwatch_store::ModelSummary>, modelwatch_store::StoreError> {
        self.inner.list_models()
    }
    fn model(
        &self,
        model: &ModelName,
    ) -> Result<Option<modelwatch_store::ModelSummary>, modelwatch_store::StoreError> {
        self.inner.model(model)
    }
    fn declare_schema(
        &self,
        model: &ModelName,
        schema: modelwatch_core::Schema,
    ) -> Result<(), modelwatch_store::StoreError> {
        self.inner.declare_schema(model, schema)
    }
    fn put_reference(
        &self,
        model: &ModelName,
        version: Option<&str>,
        rows: Vec<(usize, ReferenceRow)>,
        rejected: Vec<modelwatch_store::Quarantined>,
    ) -> Result<modelwatch_store::ReferenceOutcome, modelwatch_store::StoreError> {
        self.inner.put_reference(model, version, rows, rejected)
    }
    fn reference_rows(
        &self,
        model: &ModelName,
        version: Option<&str>,
    ) -> Result<Vec<ReferenceRow>, modelwatch_store::StoreError> {
        self.inner.reference_rows(model, version)
    }
    fn set_retention(
        &self,
        model: &ModelName,
        days: Option<u32>,
    ) -> Result<(), modelwatch_store::StoreError> {
        self.inner.set_retention(model, days)
    }
}

impl DerivedState for RaceAfterScan {
    fn aggregates(
        &self,
        model: &ModelName,
        kind: &str,
        range: &ScanRange,
    ) -> Result<Vec<modelwatch_store::StoredAggregate>, modelwatch_store::StoreError> {
        self.inner.aggregates(model, kind, range)
    }
    fn put_aggregate_group(
        &self,
        model: &ModelName,
        writes: Vec<modelwatch_store::AggregateWrite>,
    ) -> Result<(), modelwatch_store::StoreError> {
        self.inner.put_aggregate_group(model, writes)
    }
    fn invalidate_aggregates(&self, model: &ModelName) -> Result<(), modelwatch_store::StoreError> {
        self.inner.invalidate_aggregates(model)
    }
    fn models_with_stale_hours(&self) -> Result<Vec<ModelName>, modelwatch_store::StoreError> {
        self.inner.models_with_stale_hours()
    }
    fn stale_hours(
        &self,
        model: &ModelName,
        with_additions: bool,
    ) -> Result<Vec<modelwatch_store::StaleHour>, modelwatch_store::StoreError> {
        self.inner.stale_hours(model, with_additions)
    }
    fn scan_added_predictions(
        &self,
        model: &ModelName,
        stored: &[modelwatch_store::PredictionsRef],
        f: &mut dyn FnMut(modelwatch_store::PredictionsRef, &modelwatch_core::PredictionEvent),
    ) -> Result<(), modelwatch_store::StoreError> {
        self.inner.scan_added_predictions(model, stored, f)
    }
}

/// What the demo hit under load (its refresh kept panicking on "a late label for an event
/// counted labelled"): while a rescan of an hour is between its snapshot and its write, another
/// model's refresh applies (and deletes) the newest deltas and a prediction arrives in that
/// hour. The rescan must leave the prediction a delta; when delta ids were handed out again it
/// got one under the rescan's watermark, was deleted unread and never counted, and its label,
/// added later, took a "missing" from a drift sketch (and a labelled row from an accumulator)
/// that had never counted it.
#[test]
fn a_prediction_racing_with_a_rescan_is_counted_once_its_label_comes() {
    let (_dir, store, data) = with_reference("binary");
    let store = std::sync::Arc::new(store);
    // Only labelled predictions: every hour's label column has nothing missing, so a label
    // taken from one that never counted its prediction shows (it panics in a debug build).
    let labels = data["labels"].as_array().unwrap();
    let labelled: std::collections::HashSet<&str> = labels
        .iter()
        .map(|l| l["request_id"].as_str().unwrap())
        .collect();
    let preds: Vec<Value> = data["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| labelled.contains(p["request_id"].as_str().unwrap()))
        .cloned()
        .collect();
    ingest_predictions(&*store, &preds);
    ingest_labels(&*store, labels);
    aggregates::refresh(&*store, &model()).unwrap();
    // Another model's live traffic holds the newest deltas.
    let other = ModelName::new("other").unwrap();
    let now = Timestamp::now();
    let other_rows = preds[..20]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let row =
                parse_prediction_row(&r.to_string(), i, now, &IngestLimits::default()).unwrap();
            (i, row)
        })
        .collect();
    store
        .ingest_predictions(&other, PredictionBatch::new(other_rows))
        .unwrap();
    // Every hour is rebuilt (as after a new reference or task decision), and while the rescan
    // of the first prediction's hour is between its snapshot and its write...
    let mut raced = preds[0].clone();
    raced["request_id"] = "raced".into();
    let at = modelwatch_core::parse_timestamp(raced["timestamp"].as_str().unwrap()).unwrap();
    store.invalidate_aggregates(&model()).unwrap();
    let racing = RaceAfterScan {
        inner: store.clone(),
        at,
        meanwhile: std::sync::Mutex::new(Some(Box::new({
            let store = store.clone();
            let raced = raced.clone();
            move || {
                // ...the other model's refresh applies its deltas and the prediction arrives.
                aggregates::refresh(&*store, &other).unwrap();
                assert!(store.pending_changes(&other).unwrap().deltas.is_empty());
                ingest_predictions(&*store, &[raced]);
            }
        }))),
    };
    aggregates::refresh(&racing, &model()).unwrap();
    assert!(racing.meanwhile.lock().unwrap().is_none(), "the race ran");
    // Its label comes; the refresh adds it to an hour that counted the prediction.
    ingest_labels(
        &*store,
        &[serde_json::json!({"request_id": "raced", "label": 1})],
    );
    aggregates::refresh(&*store, &model()).unwrap();
    let (fast, slow) = both_paths(&*store, &query());
    assert_close("after the race", &fast, &slow);
}

/// An hour the refresh cannot update from its additions (its stored state no longer decodes) is
/// rescanned like any stale hour, without being made a full mark first (ADR 018's amendment);
/// a first label arriving while that rescan is between its scan and its write stays an
/// addition, and the next refresh adds it exactly once.
#[test]
fn an_hour_that_cannot_be_updated_is_rescanned_and_a_label_racing_with_it_is_added_once() {
    let data = fixture("binary");
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
    let preds = data["predictions"].as_array().unwrap();
    let at =
        |p: &Value| modelwatch_core::parse_timestamp(p["timestamp"].as_str().unwrap()).unwrap();
    let hour = modelwatch_store::hour_of(at(&preds[0]).micros());
    let in_hour: HashSet<&str> = preds
        .iter()
        .filter(|p| modelwatch_store::hour_of(at(p).micros()) == hour)
        .map(|p| p["request_id"].as_str().unwrap())
        .collect();
    // Two labels of predictions of that hour are held back.
    let mut n = 0;
    let (held, sent): (Vec<Value>, Vec<Value>) = data["labels"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|l| {
            let hold = n < 2 && in_hour.contains(l["request_id"].as_str().unwrap());
            n += usize::from(hold);
            hold
        });
    assert_eq!(
        held.len(),
        2,
        "the fixture's first hour has two labelled predictions"
    );
    for chunk in preds.chunks(500) {
        ingest_predictions(&*store, chunk);
    }
    ingest_labels(&*store, &sent);
    aggregates::refresh(&*store, &model()).unwrap();
    // The hour's stored state no longer decodes (as if another modelwatch wrote it), and a
    // first label of it arrives: the refresh cannot add the label, so it rescans the hour...
    let hour_range = ScanRange {
        from: Some(Timestamp(hour)),
        to: Some(Timestamp(hour + modelwatch_store::HOUR_MICROS)),
        version: None,
    };
    let unreadable = store
        .aggregates(&model(), aggregates::PERFORMANCE, &hour_range)
        .unwrap()
        .into_iter()
        .map(|a| modelwatch_store::StoredAggregate {
            data: vec![0xff; 7],
            ..a
        })
        .collect();
    store
        .put_aggregates(
            &model(),
            modelwatch_store::AggregateWrite {
                kind: aggregates::PERFORMANCE.into(),
                put: unreadable,
                ..Default::default()
            },
        )
        .unwrap();
    ingest_labels(&*store, &held[..1]);
    let racing = RaceAfterScan {
        inner: store.clone(),
        at: at(&preds[0]),
        meanwhile: std::sync::Mutex::new(Some(Box::new({
            let store = store.clone();
            let second = held[1].clone();
            // ...and the second label arrives between the rescan's scan and its write.
            move || ingest_labels(&*store, &[second])
        }))),
    };
    let rescanned = aggregates::refresh(&racing, &model()).unwrap();
    assert!(racing.meanwhile.lock().unwrap().is_none(), "the race ran");
    assert!(rescanned.predictions > 0, "{rescanned:?}");
    assert_eq!(rescanned.labels_added, 0, "{rescanned:?}");
    // The raced label is the hour's only addition, added by the next refresh, not rescanned.
    let pending = store.pending_changes(&model()).unwrap();
    assert!(
        pending.marks.len() == 1 && pending.marks[0].deltas_only && pending.deltas.len() == 1,
        "{:?} with {} deltas",
        pending.marks,
        pending.deltas.len()
    );
    let added = aggregates::refresh(&*store, &model()).unwrap();
    assert_eq!((added.labels_added, added.predictions), (1, 0), "{added:?}");
    let (fast, slow) = both_paths(&*store, &query());
    assert_close("after the race", &fast, &slow);
}

/// The fixture's predictions with every fifth tagged as exploration traffic
/// (`exploration=true`), the next one `exploration=false`, the rest untagged: hours hold both
/// sides, and the others are of two kinds.
fn tagged(preds: &[Value]) -> Vec<Value> {
    preds
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            match i % 5 {
                0 => p["tags"] = serde_json::json!({"exploration": "true"}),
                1 => p["tags"] = serde_json::json!({"exploration": "false", "region": "eu"}),
                _ => {}
            }
            p
        })
        .collect()
}

fn feedback_query(window: Window, version: Option<&str>) -> FeedbackQuery {
    FeedbackQuery {
        window,
        from: None,
        to: None,
        version: version.map(str::to_owned),
        exploration: ("exploration".into(), "true".into()),
    }
}

/// Day, week and hour windows over all versions and day windows of v1, each answered from
/// the hours (checked) and equal to the raw-event fold; the day answer, and the most hours any
/// answer had to fold from their events (unknown splits).
fn feedback_matches_the_raw_events(store: &SqliteStore, what: &str) -> (Value, usize) {
    let t = FeedbackThresholds::default();
    let mut scanned = 0;
    let mut day = Value::Null;
    for (window, version) in [
        (Window::DAY, None),
        (Window::WEEK, None),
        (Window::HOUR, None),
        (Window::DAY, Some("v1")),
    ] {
        let q = feedback_query(window, version);
        let ctx = format!("{what} {} {version:?}", window.label());
        let hours = aggregates::feedback_windows(store, &model(), &q)
            .unwrap()
            .unwrap_or_else(|| panic!("{ctx}: the hours answer"));
        scanned = scanned.max(hours.scanned_hours);
        let fast = serde_json::to_value(feedback(store, &model(), &q, &t).unwrap()).unwrap();
        let slow = serde_json::to_value(scan_feedback(store, &model(), &q, &t).unwrap()).unwrap();
        assert!(!fast["windows"].as_array().unwrap().is_empty(), "{ctx}");
        assert_close(&ctx, &fast, &slow);
        if (window, version) == (Window::DAY, None) {
            day = fast;
        }
    }
    (day, scanned)
}

/// Per day of the fixture: its exploration predictions, and how many of them have a label.
fn exploration_per_day(preds: &[Value], labels: &[Value]) -> BTreeMap<String, (u64, u64)> {
    let labelled: HashSet<&Value> = labels.iter().map(|l| &l["request_id"]).collect();
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for p in preds.iter().filter(|p| p["tags"]["exploration"] == "true") {
        let day = format!("{}T00:00:00Z", &p["timestamp"].as_str().unwrap()[..10]);
        let e = out.entry(day).or_default();
        e.0 += 1;
        e.1 += u64::from(labelled.contains(&p["request_id"]));
    }
    out
}

/// The feedback report's exploration split comes from the per-hour state, equal to a fold of
/// the raw events however the hours were built: rescans, new predictions added from their
/// segments and from folds made on arrival, first labels added as deltas (each joins its
/// prediction's side, which the store noted in the prediction's index row), and a rebuild.
#[test]
fn feedback_from_the_hours_equals_the_raw_events_however_the_hours_were_built() {
    for name in ["binary", "regression", "multiclass"] {
        let (_dir, store, data) = with_reference(name);
        let preds = tagged(data["predictions"].as_array().unwrap());
        let labels = data["labels"].as_array().unwrap();
        let half = preds.len() / 2;
        let quarter = preds.len() / 4;
        ingest_predictions(&store, &preds[..half]);
        aggregates::refresh(&store, &model()).unwrap();
        // Alternate rows, so that both kinds of delta land in the same hours as the rescan's.
        let rest: Vec<Value> = preds[half..].to_vec();
        let (odd, even): (Vec<_>, Vec<_>) = rest
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 1);
        let odd: Vec<Value> = odd.into_iter().map(|x| x.1).collect();
        let even: Vec<Value> = even.into_iter().map(|x| x.1).collect();
        ingest_predictions_folded(&store, &odd, true);
        ingest_predictions(&store, &even);
        let r = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (r.predictions, r.predictions_added),
            (0, (preds.len() - half) as u64),
            "{name}: {r:?}"
        );
        let (_, scanned) = feedback_matches_the_raw_events(&store, &format!("{name} unlabelled"));
        assert_eq!(
            scanned, 0,
            "{name}: no hour scanned while only predictions came"
        );
        // Every label arrives as a delta of hours already aggregated, in two requests.
        ingest_labels(&store, &labels[..quarter]);
        ingest_labels(&store, &labels[quarter..]);
        let r = aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (r.predictions, r.labels_added),
            (0, labels.len() as u64),
            "{name}"
        );
        let (day, scanned) = feedback_matches_the_raw_events(&store, &format!("{name} labelled"));
        assert_eq!(scanned, 0, "{name}: every label joined its side");
        // The split is the fixture's own: per day, the exploration rows and their labels.
        let want = exploration_per_day(&preds, labels);
        let windows = day["windows"].as_array().unwrap();
        assert_eq!(windows.len(), want.len(), "{name}");
        for w in windows {
            let (n, labelled) = want[w["start"].as_str().unwrap()];
            let e = &w["exploration"];
            assert_eq!(
                (e["predictions"].as_u64(), e["labelled"].as_u64()),
                (Some(n), Some(labelled)),
                "{name} {w}"
            );
            assert!(e["others"].is_object(), "{name}: others of both kinds: {w}");
        }
        // A rebuild knows every split again, with the same answer.
        aggregates::rebuild(&store, &model()).unwrap();
        let (rebuilt, scanned) =
            feedback_matches_the_raw_events(&store, &format!("{name} rebuilt"));
        assert_eq!(scanned, 0, "{name}");
        assert_close(&format!("{name} rebuilt"), &rebuilt, &day);
        // Another tag has no per-hour split: the raw events answer it.
        let q = FeedbackQuery {
            exploration: ("region".into(), "eu".into()),
            ..feedback_query(Window::DAY, None)
        };
        assert!(aggregates::feedback_windows(&store, &model(), &q)
            .unwrap()
            .is_none());
        let t = FeedbackThresholds::default();
        let other = serde_json::to_value(feedback(&store, &model(), &q, &t).unwrap()).unwrap();
        assert_eq!(other["exploration_tag"], "region=eu");
        let eu: u64 = other["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["exploration"]["predictions"].as_u64().unwrap())
            .sum();
        assert_eq!(
            eu,
            preds.iter().filter(|p| p["tags"]["region"] == "eu").count() as u64
        );
    }
}

/// Hours written before the exploration split was kept (the blob ends after the accumulator)
/// are never read as if they had one: the query answers from the raw events, every hour is
/// rebuilt, and the rebuilt hours answer again.
#[test]
fn hours_from_before_the_exploration_split_are_rebuilt_not_read() {
    let (_dir, store, _) = load("binary");
    let (before, _) = feedback_matches_the_raw_events(&store, "before");
    let rows = store
        .aggregates(&model(), aggregates::PERFORMANCE, &ScanRange::default())
        .unwrap();
    // Untagged: every hour's split is "no exploration", one byte at the end of its blob.
    let put = rows
        .iter()
        .map(|r| {
            assert_eq!(r.data.last(), Some(&0), "a split without exploration");
            modelwatch_store::StoredAggregate {
                version: r.version.clone(),
                hour: r.hour,
                data: r.data[..r.data.len() - 1].to_vec(),
            }
        })
        .collect();
    store
        .put_aggregates(
            &model(),
            modelwatch_store::AggregateWrite {
                kind: aggregates::PERFORMANCE.into(),
                put,
                ..Default::default()
            },
        )
        .unwrap();
    let q = feedback_query(Window::DAY, None);
    assert!(aggregates::feedback_windows(&store, &model(), &q)
        .unwrap()
        .is_none());
    assert!(
        !store.pending_changes(&model()).unwrap().marks.is_empty(),
        "every hour marked"
    );
    let t = FeedbackThresholds::default();
    let old = serde_json::to_value(feedback(&store, &model(), &q, &t).unwrap()).unwrap();
    assert_close("old hours", &old, &before);
    let (after, scanned) = feedback_matches_the_raw_events(&store, "rebuilt");
    assert_eq!(scanned, 0);
    assert_close("rebuilt", &after, &before);
    // Neither path invents exploration traffic.
    assert!(after["windows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["exploration"].is_null()));
}

/// An hour whose split is unknown (first labels from index rows written before the store noted
/// the exploration tag, which could have been on either side) is folded from its raw events
/// for the answer, that hour only, and the answer is the same.
#[test]
fn an_hour_whose_exploration_split_is_unknown_is_folded_from_its_events() {
    let (_dir, store, _) = load("binary");
    let (before, _) = feedback_matches_the_raw_events(&store, "before");
    let rows = store
        .aggregates(&model(), aggregates::PERFORMANCE, &ScanRange::default())
        .unwrap();
    // Untagged: every hour's split is "no exploration", the last byte of its blob (variant
    // 0); every other hour's becomes "unknown" (variant 2).
    let put: Vec<_> = rows
        .iter()
        .step_by(2)
        .map(|r| {
            let mut data = r.data.clone();
            assert_eq!(data.pop(), Some(0), "a split without exploration");
            data.push(2);
            modelwatch_store::StoredAggregate {
                version: r.version.clone(),
                hour: r.hour,
                data,
            }
        })
        .collect();
    let unknown = put.len();
    store
        .put_aggregates(
            &model(),
            modelwatch_store::AggregateWrite {
                kind: aggregates::PERFORMANCE.into(),
                put,
                ..Default::default()
            },
        )
        .unwrap();
    let q = feedback_query(Window::DAY, None);
    let hours = aggregates::feedback_windows(&store, &model(), &q)
        .unwrap()
        .unwrap();
    assert_eq!(hours.scanned_hours, unknown);
    let (after, _) = feedback_matches_the_raw_events(&store, "unknown splits");
    assert_close("unknown splits", &after, &before);
}

/// Every hour built two ways: by a rescan of its events with their labels, and by additions
/// (half of its predictions rescanned, the rest folded on arrival in two requests, then every
/// label added from deltas, in reverse order, in three requests). The sums of floats in the
/// states (Brier's squared errors, log losses, scores...) must not depend on the order they
/// were added in: both stores, and the raw events, give the same numbers to the bit. Before
/// the sums were exact, a dashboard read a moment after the background refresh rescanned an
/// hour showed another last digit than the API had a moment before.
#[test]
fn an_hour_built_by_additions_or_by_a_rescan_gives_the_same_numbers_to_the_bit() {
    for name in ["binary", "regression", "multiclass"] {
        let data = fixture(name);
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();

        let (_a, rescanned, _) = with_reference(name);
        ingest_predictions(&rescanned, preds);
        ingest_labels(&rescanned, labels);
        let r = aggregates::refresh(&rescanned, &model()).unwrap();
        assert_eq!(r.predictions, preds.len() as u64, "{name}: {r:?}");

        let (_b, added, _) = with_reference(name);
        let half = preds.len() / 2;
        ingest_predictions(&added, &preds[..half]);
        aggregates::refresh(&added, &model()).unwrap();
        let rest: Vec<Value> = preds[half..].iter().step_by(2).cloned().collect();
        let others: Vec<Value> = preds[half + 1..].iter().step_by(2).cloned().collect();
        ingest_predictions_folded(&added, &rest, true);
        ingest_predictions_folded(&added, &others, true);
        let reversed: Vec<Value> = labels.iter().rev().cloned().collect();
        for part in reversed.chunks(reversed.len() / 3 + 1) {
            ingest_labels(&added, part);
        }
        let r = aggregates::refresh(&added, &model()).unwrap();
        assert_eq!(
            (r.predictions, r.predictions_added, r.labels_added),
            (0, (preds.len() - half) as u64, labels.len() as u64),
            "{name}: nothing rescanned, everything added: {r:?}"
        );

        for q in window_queries() {
            let what = format!("{name} {}", q.window.unwrap().label());
            let (by_rescan, raw) = both_paths(&rescanned, &q);
            let (by_additions, _) = both_paths(&added, &q);
            assert!(aggregates::answers(&q), "{what}");
            let diff = differences(&by_additions, &by_rescan, "");
            assert!(
                diff.is_empty(),
                "{what}: additions against a rescan: {diff:#?}"
            );
            let diff = differences(&by_rescan, &raw, "");
            assert!(
                diff.is_empty(),
                "{what}: hours against the raw events: {diff:#?}"
            );
        }
    }
}

/// The leaves where two JSON values differ, with their paths (the first 20).
fn differences(a: &Value, b: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (u, v) = (&x.get(k.as_str()), &y.get(k.as_str()));
                match (u, v) {
                    (Some(u), Some(v)) => out.extend(differences(u, v, &format!("{path}.{k}"))),
                    _ => out.push(format!("{path}.{k}: {u:?} against {v:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                out.extend(differences(u, v, &format!("{path}[{i}]")));
            }
        }
        _ if a != b => out.push(format!("{path}: {a} against {b}")),
        _ => {}
    }
    out.truncate(20);
    out
}

/// Hours stored before the sums were exact start with their spec, not with the layout
/// number: they are not read (the raw events answer), and every hour is rebuilt.
#[test]
fn hours_stored_before_the_sums_were_exact_are_rebuilt_not_read() {
    let (_dir, store, _) = load("binary");
    let q = query();
    let (before, _) = both_paths(&store, &q);
    let rows = store
        .aggregates(&model(), aggregates::PERFORMANCE, &ScanRange::default())
        .unwrap();
    let put = rows
        .iter()
        .map(|r| {
            // An older blob: the same bytes without the layout number in front.
            let mut at = 0;
            varint(&r.data, &mut at);
            modelwatch_store::StoredAggregate {
                version: r.version.clone(),
                hour: r.hour,
                data: r.data[at..].to_vec(),
            }
        })
        .collect();
    store
        .put_aggregates(
            &model(),
            modelwatch_store::AggregateWrite {
                kind: aggregates::PERFORMANCE.into(),
                put,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(aggregates::window_performance(&store, &model(), &q)
        .unwrap()
        .is_none());
    let r = aggregates::refresh(&store, &model()).unwrap();
    assert_eq!(r.hours, rows.len(), "every hour rebuilt: {r:?}");
    let (after, raw) = both_paths(&store, &q);
    assert_eq!(after, before);
    assert_eq!(after, raw);
}
