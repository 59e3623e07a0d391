//! Server time of the dashboard's views on 30 days of hourly windows: the engine's query
//! (`gather`) and the HTML + SVG rendering, apart and together. A table, not a timed test:
//! `cargo bench -p modelwatch-dashboard --bench render` (figures in docs/benchmarks.md).

use modelwatch_core::{
    FeatureName, FeatureValue, LabelEvent, ModelName, Outcome, PredictionEvent, ReferenceRow,
    Timestamp,
};
use modelwatch_dashboard::{data, pages, Tab, ViewParams};
use modelwatch_store::{Catalog, EventLog, LabelBatch, PredictionBatch, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

const DAYS: i64 = 30;
const PER_HOUR: usize = 100;

fn features(r: &mut StdRng, shift: f64) -> Vec<(FeatureName, FeatureValue)> {
    vec![
        (
            "age".into(),
            FeatureValue::Number(20.0 + 50.0 * r.random::<f64>() + shift),
        ),
        (
            "amount".into(),
            FeatureValue::Number((3.0 + 2.0 * r.random::<f64>() + shift / 10.0).exp()),
        ),
        (
            "income".into(),
            FeatureValue::Number(1000.0 + 4000.0 * r.random::<f64>()),
        ),
        (
            "country".into(),
            FeatureValue::Text(["DE", "FR", "US", "GB"][(r.random::<f64>() * 4.0) as usize].into()),
        ),
        (
            "device".into(),
            FeatureValue::Text(
                ["ios", "android", "web"][(r.random::<f64>() * 3.0) as usize].into(),
            ),
        ),
    ]
}

fn seed(store: &SqliteStore, model: &ModelName) -> usize {
    let mut r = StdRng::seed_from_u64(9);
    let reference = (0..5_000)
        .map(|i| {
            let score = r.random::<f64>();
            let row = ReferenceRow {
                features: features(&mut r, 0.0),
                prediction: Some(Outcome::Number(f64::from(score >= 0.5))),
                score: Some(score),
                label: Some(Outcome::Number(f64::from(r.random::<f64>() < score))),
                ..Default::default()
            };
            (i, row)
        })
        .collect();
    store.put_reference(model, None, reference, vec![]).unwrap();
    let hour = 3_600_000_000;
    let end = Timestamp::now().0 / hour * hour;
    let start = end - DAYS * 24 * hour;
    let mut n = 0;
    for day in 0..DAYS {
        let mut preds = Vec::new();
        let mut labels = Vec::new();
        for h in 0..24 {
            for i in 0..PER_HOUR {
                let t = start + (day * 24 + h) * hour + i as i64 * (hour / PER_HOUR as i64);
                let score = r.random::<f64>();
                let id = format!("r{day}-{h}-{i}");
                preds.push((
                    n,
                    PredictionEvent {
                        request_id: id.clone(),
                        timestamp: Timestamp(t),
                        model_version: Some(if day < 20 { "v1" } else { "v2" }.into()),
                        features: features(&mut r, day as f64 / 3.0),
                        prediction: Some(Outcome::Number(f64::from(score >= 0.5))),
                        score: Some(score),
                        scores: None,
                        latency_ms: Some(5.0 + 20.0 * r.random::<f64>()),
                        cost: None,
                        error: None,
                        tags: vec![],
                        explanations: Vec::new(),
                        role: modelwatch_core::Role::Served,
                    },
                ));
                labels.push((
                    n,
                    LabelEvent {
                        request_id: id,
                        label: Outcome::Number(f64::from(r.random::<f64>() < score)),
                        timestamp: Timestamp(t + 3600 * 1_000_000),
                    },
                ));
                n += 1;
            }
        }
        store
            .ingest_predictions(model, PredictionBatch::new(preds))
            .unwrap();
        store
            .ingest_labels(
                model,
                LabelBatch {
                    rows: labels,
                    rejected: vec![],
                },
            )
            .unwrap();
    }
    n
}

fn median(mut f: impl FnMut()) -> Duration {
    f(); // warm-up
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let model = ModelName::new("bench").unwrap();
    let events = seed(&store, &model);
    let pairs: Vec<(String, String)> = vec![
        ("range".into(), "30d".into()),
        ("window".into(), "1h".into()),
    ];
    let params = ViewParams::parse(&pairs).unwrap();
    println!(
        "{events} labelled predictions, 30 days of hourly windows ({} windows), 5 features",
        DAYS * 24
    );
    println!("{:<44} {:>12}", "view (median of 5)", "server time");
    for tab in [
        Tab::Performance,
        Tab::Drift,
        Tab::Quality,
        Tab::Segments,
        Tab::Versions,
    ] {
        let gathered = data::gather(&store, &model, &params, tab.parts()).unwrap();
        let render = median(|| {
            std::hint::black_box(pages::render_model(&gathered, tab, &params));
        });
        let total = median(|| {
            std::hint::black_box(pages::model_page(&store, "bench", tab, &params, None).unwrap());
        });
        println!(
            "{:<44} {:>9.1} ms",
            format!("{}: render (HTML + SVG)", tab.title()),
            render.as_secs_f64() * 1e3
        );
        println!(
            "{:<44} {:>9.1} ms",
            format!("{}: query + render", tab.title()),
            total.as_secs_f64() * 1e3
        );
    }
    let overview = median(|| {
        std::hint::black_box(pages::overview(&store, &params, None).unwrap());
    });
    println!(
        "{:<44} {:>9.1} ms",
        "Overview: query + render",
        overview.as_secs_f64() * 1e3
    );
}
