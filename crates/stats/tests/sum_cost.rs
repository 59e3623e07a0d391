//! The cost of the exact sums ([`modelwatch_stats::exact::ExactSum`]) in the states a metrics
//! query merges (docs/benchmarks.md, "Exact sums"). Ignored by default (a timing, not a check):
//! `cargo test --release -p modelwatch-stats --test sum_cost -- --ignored --nocapture`
//!
//! 720 hours (30 days) of a binary classifier, 1,389 predictions an hour (1M a day at 1/720 of
//! the scale of the perfbench), 70 % labelled: each hour's labelled-row state and confidence
//! state, folded row by row (what a rescan or a fold on arrival pays per row), encoded with
//! postcard as the per-hour blobs are; then what the query pays for them: decoding the 720
//! hours, merging them into 30 day windows and computing every window's metrics.

use std::time::Instant;

use modelwatch_stats::perf::{BinaryState, ConfidenceState, MetricConfig};
use modelwatch_testkit::cpu_seconds;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const HOURS: usize = 720;
const PER_HOUR: usize = 1389;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore]
fn cost_of_the_sums_in_a_metrics_query_over_30_days() {
    let mut hours: Vec<(BinaryState, ConfidenceState)> = Vec::new();
    let mut rows = 0usize;
    let started = Instant::now();
    let cpu = cpu_seconds();
    // Five times over (the same rows), so that the CPU clock's 10 ms ticks do not show.
    for i in 0..HOURS * 5 {
        if i % HOURS == 0 {
            hours.clear();
        }
        let mut rng = Rng(7 + (i % HOURS) as u64);
        let (mut b, mut c) = (BinaryState::new(), ConfidenceState::new());
        for _ in 0..PER_HOUR {
            let score = (rng.next() * 1e6).round() / 1e6;
            c.observe_binary(score).unwrap();
            if rng.next() < 0.7 {
                let label = rng.next() < score;
                b.observe(label, Some(score), Some(score >= 0.5)).unwrap();
            }
            rows += 1;
        }
        hours.push((b, c));
    }
    let fold_ns = started.elapsed().as_secs_f64() * 1e9 / rows as f64;
    let fold_cpu_ns = (cpu_seconds() - cpu) * 1e9 / rows as f64;
    let blobs: Vec<Vec<u8>> = hours
        .iter()
        .map(|h| postcard::to_stdvec(h).unwrap())
        .collect();
    let bytes: usize = blobs.iter().map(Vec::len).sum();

    let config = MetricConfig::default();
    let mut times = Vec::new();
    let mut check = 0.0;
    let runs = 100;
    let cpu = cpu_seconds();
    for _ in 0..runs {
        let started = Instant::now();
        let mut days: Vec<(BinaryState, ConfidenceState)> = Vec::new();
        for (i, blob) in blobs.iter().enumerate() {
            let (b, c): (BinaryState, ConfidenceState) = postcard::from_bytes(blob).unwrap();
            if i % 24 == 0 {
                days.push((b, c));
            } else {
                let day = days.last_mut().unwrap();
                day.0.merge(&b).unwrap();
                day.1.merge(&c);
            }
        }
        for (b, c) in &days {
            let m = b.metrics(&config);
            check += m.brier_score.value().unwrap() + c.mean_confidence(&config).value().unwrap();
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let query_cpu_ms = (cpu_seconds() - cpu) * 1e3 / runs as f64;
    println!(
        "fold: {fold_ns:.1} ns per prediction wall, {fold_cpu_ns:.1} ns CPU (70 % labelled); \
         720 hour states: {:.0} bytes each",
        bytes as f64 / HOURS as f64
    );
    println!(
        "decode 720 hours, merge into 30 days, every metric: median {:.2} ms wall, \
         {query_cpu_ms:.2} ms CPU on average ({runs} runs; check {check:.6})",
        median(times)
    );
}
