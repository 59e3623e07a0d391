//! Domain-classifier drift over a real `SqliteStore`: a day whose x1-x2 correlation is gone is
//! told apart, a clean one is not; each window's score is kept and refitted only when its
//! prediction count has grown by more than a tenth, or when a window scored while filling is
//! complete; a new reference drops the kept scores. The score does not depend on the order the
//! store hands a window's events over in (the embedded and the ClickHouse stores differ there).

use modelwatch_core::{
    FeatureName, FeatureValue, ModelName, Outcome, PredictionEvent, ReferenceRow, Timestamp, Window,
};
use modelwatch_engine::domain::{domain_classifier, DomainResponse};
use modelwatch_engine::query::DriftQuery;
use modelwatch_store::{Catalog, EventLog, PredictionBatch, SqliteStore};

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

/// x1, x2 standard normal, correlated 0.9 unless `broken` (then independent).
fn features(rng: &mut Normal, broken: bool) -> Vec<(FeatureName, FeatureValue)> {
    let x1 = rng.next();
    let z = rng.next();
    let x2 = if broken {
        z
    } else {
        0.9 * x1 + (1.0f64 - 0.81).sqrt() * z
    };
    vec![
        ("x1".into(), FeatureValue::Number(x1)),
        ("x2".into(), FeatureValue::Number(x2)),
    ]
}

fn reference(seed: u64) -> Vec<(usize, ReferenceRow)> {
    let mut rng = Normal(seed);
    (0..600)
        .map(|i| {
            (
                i,
                ReferenceRow {
                    features: features(&mut rng, false),
                    prediction: Some(Outcome::Number(f64::from(u8::from(i % 3 == 0)))),
                    score: None,
                    scores: None,
                    label: None,
                    explanations: Vec::new(),
                },
            )
        })
        .collect()
}

/// `n` predictions on `day`, one a minute from minute `from`.
fn predictions(store: &SqliteStore, day: i64, from: i64, n: usize, broken: bool, id: &str) {
    let events = events(day, from, 60, n, broken, id).into_iter().enumerate();
    store
        .ingest_predictions(&model(), PredictionBatch::new(events.collect()))
        .unwrap();
}

/// `n` predictions on `day`, one every `step` seconds from minute `from`.
fn events(
    day: i64,
    from: i64,
    step: i64,
    n: usize,
    broken: bool,
    id: &str,
) -> Vec<PredictionEvent> {
    let mut rng = Normal(day as u64 * 1000 + from as u64 + 3);
    (0..n)
        .map(|i| PredictionEvent {
            request_id: format!("{id}{i}"),
            timestamp: Timestamp(
                START + day * DAY + from * 60_000_000 + i as i64 * step * 1_000_000,
            ),
            model_version: None,
            features: features(&mut rng, broken),
            prediction: Some(Outcome::Number(0.0)),
            score: None,
            scores: None,
            latency_ms: None,
            cost: None,
            error: None,
            tags: vec![],
            explanations: Vec::new(),
            role: modelwatch_core::Role::Served,
        })
        .collect()
}

fn query(store: &SqliteStore) -> DomainResponse {
    let q = DriftQuery {
        window: Window::DAY,
        from: Some(Timestamp(START)),
        to: None,
        version: None,
        segment: None,
    };
    domain_classifier(store, &model(), &q).unwrap()
}

#[test]
fn scores_are_kept_until_the_window_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .put_reference(&model(), None, reference(7), vec![])
        .unwrap();
    predictions(&store, 0, 0, 300, false, "a");
    // Day 1 ends after the last event: still filling.
    predictions(&store, 1, 600, 300, true, "b");

    let r = query(&store);
    assert_eq!((r.kept, r.fitted), (0, 2));
    let (clean, broken) = (&r.windows[0], &r.windows[1]);
    assert!(!clean.partial && broken.partial);
    assert!(clean.auc.unwrap() < 0.6 && !clean.alert, "{clean:?}");
    assert!(broken.ci_low.unwrap() > 0.65 && broken.alert, "{broken:?}");
    assert_eq!(
        (broken.rows, broken.window_rows, broken.reference_rows),
        (300, 300, 600)
    );

    // The same rows: nothing is fitted again, the answer is the same.
    let again = query(&store);
    assert_eq!((again.kept, again.fitted), (2, 0));
    assert_eq!(again.windows, r.windows);

    // The filling day grows by a twentieth (earlier in the day, so it is still filling): kept.
    predictions(&store, 1, 0, 15, true, "c");
    let grown = query(&store);
    assert_eq!((grown.kept, grown.fitted), (2, 0));
    assert_eq!(
        (grown.windows[1].rows, grown.windows[1].scored_rows),
        (315, 300)
    );
    // Past a tenth: refitted on its rows.
    predictions(&store, 1, 100, 20, true, "d");
    let refit = query(&store);
    assert_eq!((refit.kept, refit.fitted), (1, 1));
    assert_eq!(refit.windows[1].scored_rows, 335);
    assert_eq!(refit.windows[1].window_rows, 335);

    // A complete window that gains a late prediction keeps its score; past a tenth more, it
    // is refitted.
    predictions(&store, 0, 400, 1, false, "e");
    let late = query(&store);
    assert_eq!((late.kept, late.fitted), (2, 0));
    assert_eq!(
        (late.windows[0].rows, late.windows[0].scored_rows),
        (301, 300)
    );
    predictions(&store, 0, 500, 30, false, "f");
    let backfill = query(&store);
    assert_eq!((backfill.kept, backfill.fitted), (1, 1));
    assert_eq!(backfill.windows[0].scored_rows, 331);

    // The filling day gains a few rows, then completes (a prediction of the next day): refitted
    // on its final rows, since it was scored while filling.
    predictions(&store, 1, 1300, 5, true, "g");
    assert_eq!(query(&store).fitted, 0);
    predictions(&store, 2, 0, 1, false, "h");
    let complete = query(&store);
    assert!(!complete.windows[1].partial);
    assert_eq!(complete.windows[1].scored_rows, 340);
    // Day 0 kept; day 1 refitted; day 2 is new (one row: no score, and why).
    assert_eq!((complete.kept, complete.fitted), (1, 2));
    assert!(complete.windows[2].auc.is_none() && complete.windows[2].note.is_some());

    // A new reference drops every kept score.
    store
        .put_reference(&model(), None, reference(8), vec![])
        .unwrap();
    let fresh = query(&store);
    assert_eq!((fresh.kept, fresh.fitted), (0, 3));
}

#[test]
fn the_score_does_not_depend_on_the_order_events_arrived_in() {
    // Two days of 3,000 predictions (more than the 2,000 a window samples), one every 20 s.
    let days = [
        events(0, 0, 20, 3000, false, "a"),
        events(1, 0, 20, 3000, true, "b"),
    ];
    let score = |reversed: bool| {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .put_reference(&model(), None, reference(7), vec![])
            .unwrap();
        let mut all: Vec<PredictionEvent> = days.concat();
        if reversed {
            all.reverse();
        }
        // Batches of 500, so the store keeps them in this order.
        for part in all.chunks(500) {
            let batch = part.iter().cloned().enumerate().collect();
            store
                .ingest_predictions(&model(), PredictionBatch::new(batch))
                .unwrap();
        }
        query(&store)
    };
    let (forward, backward) = (score(false), score(true));
    assert_eq!(forward.windows, backward.windows);
    let (clean, broken) = (&forward.windows[0], &forward.windows[1]);
    assert_eq!((clean.rows, clean.window_rows), (3000, 2000));
    assert_eq!((broken.rows, broken.window_rows), (3000, 2000));
    assert!(clean.auc.unwrap() < 0.6 && !clean.alert, "{clean:?}");
    assert!(broken.ci_low.unwrap() > 0.65 && broken.alert, "{broken:?}");
}
