//! Times the store alone (no HTTP, no JSON parsing): how many predictions per second the
//! writer commits. `cargo run --release -p modelwatch-store --example store_ingest -- ROWS BATCH`
use modelwatch_core::{FeatureValue, ModelName, Outcome, PredictionEvent, Timestamp};
use modelwatch_store::{EventLog, PredictionBatch, SqliteStore};
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let rows = args.first().copied().unwrap_or(200_000);
    let batch = args.get(1).copied().unwrap_or(5_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open");
    let model = ModelName::new("bench").expect("name");
    let t0 = Timestamp::now().micros() - 86_400_000_000;
    let make = |i: usize| PredictionEvent {
        request_id: format!(
            "{:032x}",
            (i as u128).wrapping_mul(0x9E3779B97F4A7C15F39CC0605CEDC835)
        ),
        timestamp: Timestamp(t0 + i as i64 * 1000),
        model_version: Some("v1".into()),
        features: (0..20)
            .map(|f| {
                (
                    format!("f{f:02}").into(),
                    FeatureValue::Number(i as f64 * 0.37 + f as f64),
                )
            })
            .chain((0..5).map(|c| {
                (
                    format!("c{c}").into(),
                    FeatureValue::Text(format!("c{c}_{}", i % 7)),
                )
            }))
            .collect(),
        prediction: Some(Outcome::Number((i % 2) as f64)),
        score: Some(0.42),
        scores: None,
        latency_ms: Some(3.5),
        cost: None,
        error: None,
        tags: vec![],
        explanations: Vec::new(),
        role: modelwatch_core::Role::Served,
    };
    let batches: Vec<PredictionBatch> = (0..rows.div_ceil(batch))
        .map(|b| {
            PredictionBatch::new(
                (b * batch..((b + 1) * batch).min(rows))
                    .map(|i| (i - b * batch, make(i)))
                    .collect(),
            )
        })
        .collect();
    let start = Instant::now();
    for b in batches {
        store.ingest_predictions(&model, b).expect("ingest");
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{rows} rows in batches of {batch}: {s:.2} s, {:.0} rows/s",
        rows as f64 / s
    );
}
