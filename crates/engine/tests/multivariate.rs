//! Multivariate drift over a real `SqliteStore`: the per-hour error sums give the windows the
//! scan of the events gives, are summed again for an hour that received predictions, and go
//! with the fit when a new reference is uploaded; a correlation-breaking window alerts.

use modelwatch_core::ServiceError;
use modelwatch_core::{
    FeatureValue, ModelName, Outcome, PredictionEvent, ReferenceRow, Timestamp, Window,
};
use modelwatch_engine::aggregates;
use modelwatch_engine::multivariate::{multivariate, MultivariateResponse, HOURS};
use modelwatch_engine::query::DriftQuery;
use modelwatch_store::{Catalog, DerivedState, EventLog, PredictionBatch, ScanRange, SqliteStore};

const DAY: i64 = 86_400_000_000;
const START: i64 = 20_000 * DAY;

fn model() -> ModelName {
    ModelName::new("m").unwrap()
}

/// A deterministic standard normal stream (xorshift and Box-Muller).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// x1, x2 standard normal, correlated 0.9 unless `broken` (then independent: each feature's
/// distribution as before), and a category that follows x1.
fn features(rng: &mut Normal, broken: bool) -> Vec<(modelwatch_core::FeatureName, FeatureValue)> {
    let x1 = rng.next();
    let z = rng.next();
    let x2 = if broken {
        z
    } else {
        0.9 * x1 + (1.0f64 - 0.81).sqrt() * z
    };
    let c = if x1 + 0.5 * rng.next() > 0.0 {
        "hi"
    } else {
        "lo"
    };
    vec![
        ("x1".into(), FeatureValue::Number(x1)),
        ("x2".into(), FeatureValue::Number(x2)),
        ("c".into(), FeatureValue::Text(c.into())),
    ]
}

fn reference(seed: u64) -> Vec<(usize, ReferenceRow)> {
    let mut rng = Normal(seed);
    (0..4000)
        .map(|i| {
            (
                i,
                ReferenceRow {
                    features: features(&mut rng, false),
                    prediction: Some(Outcome::Number(f64::from(u8::from(i % 3 == 0)))),
                    score: Some(0.3),
                    scores: None,
                    label: None,
                    explanations: Vec::new(),
                },
            )
        })
        .collect()
}

/// 400 predictions a day from `day`, one every 3.6 minutes; correlations broken when `broken`.
fn predictions(store: &SqliteStore, day: i64, broken: bool, id: &str, seed: u64) {
    let mut rng = Normal(seed);
    let events = (0..400usize)
        .map(|i| PredictionEvent {
            request_id: format!("{id}{i}"),
            timestamp: Timestamp(START + day * DAY + i as i64 * 216_000_000),
            model_version: None,
            features: features(&mut rng, broken),
            prediction: Some(Outcome::Number(f64::from(u8::from(i % 3 == 0)))),
            score: Some(0.3),
            scores: None,
            latency_ms: None,
            cost: None,
            error: None,
            tags: vec![],
            explanations: Vec::new(),
            role: modelwatch_core::Role::Served,
        })
        .enumerate()
        .collect();
    store
        .ingest_predictions(&model(), PredictionBatch::new(events))
        .unwrap();
}

fn by_hours(store: &SqliteStore) -> MultivariateResponse {
    let q = DriftQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
        segment: None,
    };
    multivariate(store, &model(), &q).unwrap()
}

/// The same windows from a scan: a `from` inside an hour is not answered by the hours.
fn by_events(store: &SqliteStore) -> MultivariateResponse {
    let q = DriftQuery {
        window: Window::DAY,
        from: Some(Timestamp(START - 1)),
        to: None,
        version: None,
        segment: None,
    };
    multivariate(store, &model(), &q).unwrap()
}

fn values(r: &MultivariateResponse) -> Vec<(u64, f64)> {
    r.windows
        .iter()
        .map(|w| (w.error.rows, w.error.value.unwrap()))
        .collect()
}

#[track_caller]
fn same_windows(hours: &MultivariateResponse, events: &MultivariateResponse) {
    assert_eq!(hours.source, "hours");
    assert_eq!(events.source, "events");
    let (h, e) = (values(hours), values(events));
    assert_eq!(h.len(), e.len());
    for ((hn, hv), (en, ev)) in h.iter().zip(&e) {
        assert_eq!(hn, en);
        // Sums of the same errors in another grouping.
        assert!((hv - ev).abs() < 1e-12, "{h:?} vs {e:?}");
    }
}

#[test]
fn hour_sums_match_the_scan_follow_new_predictions_and_go_with_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .put_reference(&model(), None, reference(7), vec![])
        .unwrap();
    predictions(&store, 0, false, "a", 11);
    predictions(&store, 1, false, "b", 12);
    predictions(&store, 2, true, "c", 13);
    // The model's first refresh decides its task; the hourly sketches follow from then on.
    aggregates::refresh(&store, &model()).unwrap();

    let first = by_hours(&store);
    assert_eq!(first.fit.features, ["x1", "x2", "c"]);
    assert_eq!(first.fit.categorical, ["c"]);
    assert_eq!(first.fit.reference_chunks.len(), 10);
    let alerts: Vec<bool> = first.windows.iter().map(|w| w.error.alert).collect();
    assert_eq!(alerts, [false, false, true], "{first:#?}");
    same_windows(&first, &by_events(&store));
    let stored = store
        .aggregates(&model(), HOURS, &ScanRange::default())
        .unwrap();
    assert_eq!(stored.len(), 72, "one row per hour with predictions");

    // More predictions into the second day: its hours are summed again, the others read.
    predictions(&store, 1, false, "d", 14);
    let second = by_hours(&store);
    assert_eq!(second.windows[1].error.rows, 800);
    same_windows(&second, &by_events(&store));
    assert_eq!(second.windows[0], first.windows[0]);

    // A new reference: the fit and the sums go with the old one, and are made again.
    store
        .put_reference(&model(), None, reference(8), vec![])
        .unwrap();
    assert!(store
        .aggregates(&model(), HOURS, &ScanRange::default())
        .unwrap()
        .is_empty());
    let third = by_hours(&store);
    assert_ne!(third.fit.reference_chunks, first.fit.reference_chunks);
    same_windows(&third, &by_events(&store));
}

#[test]
fn a_reference_too_small_to_fit_is_a_conflict_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let few: Vec<(usize, ReferenceRow)> = reference(7).into_iter().take(5).collect();
    store.put_reference(&model(), None, few, vec![]).unwrap();
    predictions(&store, 0, false, "a", 11);
    let e = multivariate(
        &store,
        &model(),
        &DriftQuery {
            window: Window::DAY,
            from: None,
            to: None,
            version: None,
            segment: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), modelwatch_core::ErrorCode::Conflict);
    assert!(e.to_string().contains("5 rows"), "{e}");
}
