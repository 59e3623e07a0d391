//! The label-free estimates over a real `SqliteStore`: attached to every window, labelled or
//! not; refitted after a new reference; from the per-hour states equal to a scan of the raw
//! events however the hours were built.

mod common;

use modelwatch_core::{
    FeatureValue, ModelName, Outcome, PredictionEvent, ReferenceRow, Timestamp, Window,
};
use modelwatch_engine::estimate::{attach, estimator, scan};
use modelwatch_engine::performance::{window_performance, PerformanceQuery};
use modelwatch_store::{Catalog, EventLog, PredictionBatch, SqliteStore};

fn model() -> ModelName {
    ModelName::new("m").unwrap()
}

/// A score in (0, 1) from `i`, spread evenly.
fn score(i: usize) -> f64 {
    ((i * 7919) % 1000) as f64 / 1000.0 + 0.0005
}

/// Reference rows whose label is 1 with probability `score ^ power` (the higher, the more the
/// model's scores over-state the positive class).
fn reference(power: i32) -> Vec<(usize, ReferenceRow)> {
    (0..2000)
        .map(|i| {
            let s = score(i);
            // A deterministic "coin": the row is positive when its own rank in its score's
            // decile is under the decile's probability.
            let label = ((i / 10) % 100) as f64 / 100.0 < s.powi(power);
            (
                i,
                ReferenceRow {
                    features: vec![("x".into(), FeatureValue::Number((i % 7) as f64))],
                    prediction: Some(Outcome::Number(f64::from(u8::from(s >= 0.5)))),
                    score: Some(s),
                    scores: None,
                    label: Some(Outcome::Number(f64::from(u8::from(label)))),
                    explanations: Vec::new(),
                },
            )
        })
        .collect()
}

/// Two days of 300 predictions, no labels.
fn store(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open(dir).unwrap();
    store
        .put_reference(&model(), None, reference(1), vec![])
        .unwrap();
    let day = 86_400_000_000i64;
    let events = (0..600usize)
        .map(|i| {
            let s = score(i * 3);
            PredictionEvent {
                request_id: format!("r{i}"),
                timestamp: Timestamp(20_000 * day + (i / 300) as i64 * day + i as i64 * 1_000_000),
                model_version: None,
                features: vec![("x".into(), FeatureValue::Number((i % 7) as f64))],
                prediction: Some(Outcome::Number(f64::from(u8::from(s >= 0.5)))),
                score: Some(s),
                scores: None,
                latency_ms: None,
                cost: None,
                error: None,
                tags: vec![],
                explanations: Vec::new(),
                role: modelwatch_core::Role::Served,
            }
        })
        .enumerate()
        .collect();
    store
        .ingest_predictions(&model(), PredictionBatch::new(events))
        .unwrap();
    store
}

fn query() -> PerformanceQuery {
    PerformanceQuery {
        window: Some(Window::DAY),
        ..PerformanceQuery::default()
    }
}

#[test]
fn every_window_is_estimated_and_a_new_reference_refits() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut report = window_performance(&store, &model(), &query()).unwrap();
    attach(&store, &model(), &query(), &mut report).unwrap();
    let info = report.estimation.clone().expect("estimated");
    assert_eq!(info.method, "cbpe");
    assert_eq!(info.reference_rows, 2000);
    assert_eq!(info.source, "hours");
    assert_eq!(report.windows.len(), 2);
    let accuracy = |r: &modelwatch_engine::performance::PerformanceReport| -> Vec<f64> {
        r.windows
            .iter()
            .map(|w| w.estimated.as_ref().unwrap()["accuracy"].value)
            .collect()
    };
    let before = accuracy(&report);
    for w in &report.windows {
        assert_eq!(w.labelled, 0);
        let e = w.estimated.as_ref().unwrap();
        assert_eq!(e.len(), 6, "{e:?}");
        for v in e.values() {
            assert!(v.ci_low <= v.value && v.value <= v.ci_high, "{v:?}");
        }
    }

    // A reference whose positives are rarer at every score: the fit is redone (the stored one
    // went with the old reference) and the estimated accuracy of the same windows changes.
    store
        .put_reference(&model(), None, reference(3), vec![])
        .unwrap();
    let mut again = window_performance(&store, &model(), &query()).unwrap();
    attach(&store, &model(), &query(), &mut again).unwrap();
    let after = accuracy(&again);
    for (a, b) in before.iter().zip(&after) {
        assert!((a - b).abs() > 0.01, "{before:?} vs {after:?}");
    }
}

/// Rows of a binary model (`score`) or of a three-class one (`scores`), JSON as the API takes
/// them: `n` predictions from `first` (ids `{tag}{i}`), spread over `hours` hours from `start`.
fn prediction_rows(
    multiclass: bool,
    tag: &str,
    n: usize,
    start: i64,
    hours: i64,
    version: Option<&str>,
) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let s = score(i * 13 + tag.len());
            let t = start + (i as i64 * hours * 3_600_000_000) / n as i64;
            let mut row = serde_json::json!({
                "request_id": format!("{tag}{i}"),
                "timestamp": Timestamp(t).to_string(),
                "features": {"x": (i % 7) as f64},
            });
            if multiclass {
                let (a, b) = (s * 0.8, (1.0 - s) * 0.6);
                let c = 1.0 - a - b;
                let top = [("a", a), ("b", b), ("c", c)]
                    .into_iter()
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                    .unwrap()
                    .0;
                row["scores"] = serde_json::json!({"a": a, "b": b, "c": c});
                row["prediction"] = serde_json::json!(top);
            } else {
                row["score"] = serde_json::json!(s);
                row["prediction"] = serde_json::json!(u8::from(s >= 0.5));
            }
            if let Some(v) = version {
                row["model_version"] = serde_json::json!(v);
            }
            row
        })
        .collect()
}

fn multiclass_reference(power: i32) -> Vec<(usize, ReferenceRow)> {
    (0..3000)
        .map(|i| {
            let s = score(i);
            let (a, b) = (s * 0.8, (1.0 - s) * 0.6);
            let scores = vec![
                ("a".to_owned(), a),
                ("b".to_owned(), b),
                ("c".to_owned(), 1.0 - a - b),
            ];
            let coin = ((i / 10) % 100) as f64 / 100.0;
            let label = if coin < a.powi(power) {
                "a"
            } else if coin < (a + b).powi(power) {
                "b"
            } else {
                "c"
            };
            let top = scores
                .iter()
                .max_by(|x, y| x.1.total_cmp(&y.1))
                .unwrap()
                .0
                .clone();
            (
                i,
                ReferenceRow {
                    features: vec![("x".into(), FeatureValue::Number((i % 7) as f64))],
                    prediction: Some(Outcome::Text(top)),
                    score: None,
                    scores: Some(scores),
                    label: Some(Outcome::Text(label.into())),
                    explanations: Vec::new(),
                },
            )
        })
        .collect()
}

/// Ingests `rows`, folded on arrival as the server does when `fold` is set.
fn ingest(store: &SqliteStore, rows: &[serde_json::Value], fold: bool) {
    common::ingest_predictions(store, &model(), rows, fold);
}

fn label(store: &SqliteStore, ids: &[String], label: serde_json::Value) {
    common::label_all(store, &model(), ids, label);
}

/// Every window's estimates of `q` from the per-hour states (the report says so) equal those of
/// a scan of the raw events to the bit, at hourly and daily windows; returns the daily report.
fn hours_equal_a_scan(
    store: &SqliteStore,
    version: Option<&str>,
    what: &str,
) -> modelwatch_engine::performance::PerformanceReport {
    let mut daily = None;
    for window in [Window::HOUR, Window::DAY] {
        let q = PerformanceQuery {
            window: Some(window),
            version: version.map(str::to_owned),
            ..PerformanceQuery::default()
        };
        let mut report = window_performance(store, &model(), &q).unwrap();
        attach(store, &model(), &q, &mut report).unwrap();
        let info = report.estimation.clone().expect("estimated");
        assert_eq!(info.source, "hours", "{what}");
        let cbpe = estimator(store, &model(), version, &report.spec)
            .unwrap()
            .unwrap();
        let range = modelwatch_store::ScanRange {
            version: version.map(str::to_owned),
            ..Default::default()
        };
        let mut scanned = scan(store, &model(), &range, window, &cbpe, &report.spec).unwrap();
        assert_eq!(scanned.len(), report.windows.len(), "{what}");
        for w in &report.windows {
            let want = scanned.remove(&w.start).unwrap().finish(&cbpe);
            let got = w.estimated.clone().unwrap();
            // (The three-class model never predicts one class, so it has no precision.)
            assert!(got.len() >= 5, "{what}: {got:?}");
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            );
            for (m, g) in &got {
                let e = &want[m];
                for (a, b) in [
                    (g.value, e.value),
                    (g.ci_low, e.ci_low),
                    (g.ci_high, e.ci_high),
                    (g.sampling_error, e.sampling_error),
                ] {
                    // Equal to the bit: the sums are exact, so the order the hours were
                    // built and merged in does not show.
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{what}: window {} {m}: hours {g:?}, scan {e:?}",
                        w.start
                    );
                }
            }
        }
        if window == Window::DAY {
            daily = Some(report);
        }
    }
    daily.unwrap()
}

/// The estimates from the hours equal a scan's however the hours were built: a first rescan,
/// new predictions added as deltas (folded on arrival, or read from their chunk), late
/// predictions into old hours, labels, a new reference, a rebuild; windows of up to 2,048 rows
/// (kept row by row) and past it (rank bins). A version with its own reference is estimated
/// from a scan (the hours were built with the other reference's estimator).
#[test]
fn estimates_from_the_hours_equal_a_scan_however_the_hours_were_built() {
    for multiclass in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let reference = |power| match multiclass {
            false => reference(power),
            true => multiclass_reference(power),
        };
        store
            .put_reference(&model(), None, reference(1), vec![])
            .unwrap();
        let day = 86_400_000_000i64;
        let d0 = 20_000 * day;
        let what = |s: &str| format!("{s} (multiclass: {multiclass})");
        // A first day of 3,000 predictions (a window past the rows kept one by one), rescanned.
        ingest(
            &store,
            &prediction_rows(multiclass, "a", 3000, d0, 24, None),
            false,
        );
        let first = hours_equal_a_scan(&store, None, &what("rescan"));
        assert_eq!(first.windows[0].predictions, 3000);
        // New predictions folded on arrival: a second day, and late ones into the first.
        ingest(
            &store,
            &prediction_rows(multiclass, "b", 1000, d0 + day, 24, None),
            true,
        );
        ingest(
            &store,
            &prediction_rows(multiclass, "late", 500, d0 + 3_600_000_000, 5, None),
            true,
        );
        // Added to the stored hours, estimation states included, without a rescan.
        let refreshed = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (refreshed.predictions, refreshed.predictions_added),
            (0, 1500),
            "{refreshed:?}"
        );
        assert_eq!(refreshed.predictions_decoded, 0, "{refreshed:?}");
        hours_equal_a_scan(&store, None, &what("folded on arrival"));
        // Read from their chunk (no fold).
        ingest(
            &store,
            &prediction_rows(multiclass, "c", 700, d0 + 2 * day, 10, None),
            false,
        );
        let refreshed = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
        assert_eq!(
            (refreshed.predictions, refreshed.predictions_decoded),
            (0, 700),
            "{refreshed:?}"
        );
        let before = hours_equal_a_scan(&store, None, &what("from the chunk"));
        // Labels do not change an estimate.
        let ids: Vec<String> = (0..400).map(|i| format!("a{i}")).collect();
        label(
            &store,
            &ids,
            match multiclass {
                false => serde_json::json!(1),
                true => serde_json::json!("a"),
            },
        );
        let labelled = hours_equal_a_scan(&store, None, &what("labels"));
        assert!(labelled.windows[0].labelled > 0);
        let accuracy = |r: &modelwatch_engine::performance::PerformanceReport| -> Vec<f64> {
            r.windows
                .iter()
                .map(|w| w.estimated.as_ref().unwrap()["accuracy"].value)
                .collect()
        };
        assert_eq!(accuracy(&before), accuracy(&labelled));
        // A new reference: every hour rebuilt with its estimator.
        store
            .put_reference(&model(), None, reference(3), vec![])
            .unwrap();
        let after = hours_equal_a_scan(&store, None, &what("new reference"));
        for (a, b) in accuracy(&before).iter().zip(&accuracy(&after)) {
            assert!((a - b).abs() > 0.01, "{before:?} vs {after:?}");
        }
        modelwatch_engine::aggregates::rebuild(&store, &model()).unwrap();
        hours_equal_a_scan(&store, None, &what("rebuild"));
        // A version with its own reference: its estimator is not the hours' one.
        ingest(
            &store,
            &prediction_rows(multiclass, "v", 300, d0 + 3 * day, 3, Some("v2")),
            true,
        );
        store
            .put_reference(&model(), Some("v2"), reference(1), vec![])
            .unwrap();
        let q = PerformanceQuery {
            window: Some(Window::DAY),
            version: Some("v2".into()),
            ..PerformanceQuery::default()
        };
        let mut report = window_performance(&store, &model(), &q).unwrap();
        attach(&store, &model(), &q, &mut report).unwrap();
        assert_eq!(report.estimation.unwrap().source, "events");
        assert!(report.windows.iter().all(|w| w.estimated.is_some()));
        hours_equal_a_scan(
            &store,
            None,
            &what("version-less beside a version's reference"),
        );
    }
}
