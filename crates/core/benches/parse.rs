//! Time to parse and validate one prediction row shaped like the load generator's and the
//! peers' data (25 features: 20 numbers, 5 categories), the first step of every ingest and of
//! every read of a stored event. A table, not a timed test:
//! `cargo bench -p modelwatch-core --bench parse` (figures in docs/benchmarks.md).

use modelwatch_core::{parse_prediction_row, IngestLimits, Timestamp};
use std::time::Instant;

const ROWS: usize = 20_000;
const RUNS: usize = 9;

/// Rows from a fixed linear congruential sequence, so every run parses the same text.
fn rows() -> Vec<String> {
    let mut state: u64 = 42;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..ROWS)
        .map(|i| {
            let mut features: Vec<String> = (0..20)
                .map(|f| format!("\"f{f:02}\":{}", (next() * 1e6).round() / 1e4))
                .collect();
            features.extend((0..5).map(|c| format!("\"c{c}\":\"c{c}_{}\"", (next() * 7.0) as u32)));
            format!(
                r#"{{"request_id":"{:016x}{:016x}","timestamp":"2026-01-{:02}T{:02}:00:00Z","model_version":"v1","features":{{{}}},"prediction":{},"score":{},"latency_ms":{}}}"#,
                (next() * 1e18) as u64,
                i,
                1 + i % 28,
                i % 24,
                features.join(","),
                u8::from(next() > 0.5),
                (next() * 1e6).round() / 1e6,
                (next() * 2000.0).round() / 100.0,
            )
        })
        .collect()
}

fn main() {
    let rows = rows();
    let bytes: usize = rows.iter().map(String::len).sum();
    let now = Timestamp::now();
    let limits = IngestLimits::default();
    let mut per_row = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        for (i, row) in rows.iter().enumerate() {
            let event = parse_prediction_row(row, i, now, &limits).expect("a valid row");
            std::hint::black_box(event);
        }
        per_row.push(start.elapsed().as_secs_f64() * 1e9 / ROWS as f64);
    }
    per_row.sort_by(f64::total_cmp);
    let median = per_row[RUNS / 2];
    println!("| rows | bytes per row | ns per row (median of {RUNS}) | fastest | MB/s |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {ROWS} | {} | {median:.0} | {:.0} | {:.0} |",
        bytes / ROWS,
        per_row[0],
        bytes as f64 / ROWS as f64 / median * 1e3
    );
}
