//! The label-free estimates over a real `SqliteStore`: attached to every window, labelled or
//! not; refitted after a new reference; skipped (and said so) past the scan limit.

use modelwatch_core::{
    FeatureValue, ModelName, Outcome, PredictionEvent, ReferenceRow, Timestamp, Window,
};
use modelwatch_engine::estimate::{attach, attach_within};
use modelwatch_engine::performance::{window_performance, PerformanceQuery};
use modelwatch_store::{PredictionBatch, SqliteStore, Store};

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
                error: None,
                tags: vec![],
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
    assert!(info.skipped.is_none());
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

/// Past the limit nothing is scanned: the report says why and the windows carry no estimate.
#[test]
fn a_range_past_the_scan_limit_is_not_estimated_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let mut report = window_performance(&store, &model(), &query()).unwrap();
    attach_within(&store, &model(), &query(), &mut report, 599).unwrap();
    let skipped = report.estimation.as_ref().unwrap().skipped.clone().unwrap();
    assert!(
        skipped.contains("600 predictions") && skipped.contains("599"),
        "{skipped}"
    );
    assert!(report.windows.iter().all(|w| w.estimated.is_none()));
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["windows"][0].get("estimated").is_none(), "{json}");
    // At the limit, estimated.
    attach_within(&store, &model(), &query(), &mut report, 600).unwrap();
    assert!(report.windows.iter().all(|w| w.estimated.is_some()));
}
