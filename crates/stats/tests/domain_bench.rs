//! The cost of the domain classifier and what the sample bound buys (ADR 015, docs/benchmarks.md).
//! Ignored by default (a timing, not a check):
//! `cargo test --release -p modelwatch-stats --test domain_bench -- --ignored --nocapture`
//!
//! Per sample bound N (N reference rows + N window rows, 5 features: 4 numeric, 1 categorical):
//! the wall and CPU time of one window's score (5 folds × 100 trees), and the AUC with its
//! DeLong interval on a clean window and on one with a small shift (0.2 sd on one feature);
//! then the cost of drawing the sample from 1M rows (the reservoir, per row).

use std::time::Instant;

use modelwatch_stats::domain::{domain_score, Reservoir, Row};
use modelwatch_stats::estimate::{Cell, ColumnKind};
use modelwatch_stats::sample::LowestHash;
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
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

const CATS: [&str; 4] = ["DE", "FR", "NL", "IT"];

fn rows(rng: &mut Rng, n: usize, shift: f64) -> Vec<Row<'static>> {
    (0..n)
        .map(|_| {
            let a = rng.normal();
            vec![
                Cell::Number(a + shift),
                Cell::Number(0.7 * a + 0.7 * rng.normal()),
                Cell::Number(rng.normal() * 10.0 + 40.0),
                Cell::Number(rng.next()),
                Cell::Text(CATS[(rng.next() * 4.0) as usize]),
            ]
        })
        .collect()
}

#[test]
#[ignore]
fn cost_and_power_per_sample_bound() {
    let kinds = [
        ColumnKind::Numeric,
        ColumnKind::Numeric,
        ColumnKind::Numeric,
        ColumnKind::Numeric,
        ColumnKind::Categorical,
    ];
    println!("| N (per side) | wall ms per window | CPU ms | clean AUC [95 %] | shifted 0.2 sd AUC [95 %] |");
    println!("|---|---|---|---|---|");
    for n in [250, 500, 1000, 2000, 4000] {
        let mut rng = Rng(42);
        let reference = rows(&mut rng, n, 0.0);
        let clean = rows(&mut rng, n, 0.0);
        let shifted = rows(&mut rng, n, 0.2);
        let (t, c) = (Instant::now(), cpu_seconds());
        let a = domain_score(&kinds, &reference, &clean).unwrap();
        let b = domain_score(&kinds, &reference, &shifted).unwrap();
        let wall = t.elapsed().as_secs_f64() * 1000.0 / 2.0;
        let cpu = (cpu_seconds() - c) * 1000.0 / 2.0;
        println!(
            "| {n} | {wall:.0} | {cpu:.0} | {:.3} [{:.3}, {:.3}] | {:.3} [{:.3}, {:.3}] |",
            a.auc.auc, a.auc.ci_low, a.auc.ci_high, b.auc.auc, b.auc.ci_low, b.auc.ci_high
        );
    }
    // Drawing a 2000-row sample from 1M rows (the per-row cost of a window's scan beyond the
    // store's own; rows are built only when kept): the reference's reservoir, and the window's
    // lowest hashes of request id and version.
    let mut rng = Rng(7);
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut r = Reservoir::new(2000, 1);
    for _ in 0..1_000_000 {
        let x = rng.next();
        r.offer_with(|| vec![x; 5]);
    }
    let kept = r.into_items().len();
    println!(
        "reservoir: 1M rows offered, {kept} kept: {:.0} ms wall, {:.0} ms CPU",
        t.elapsed().as_secs_f64() * 1000.0,
        (cpu_seconds() - c) * 1000.0
    );
    let ids: Vec<String> = (0..1_000_000)
        .map(|i| format!("req-{i:08}-{:016x}", rng.next().to_bits()))
        .collect();
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut h = LowestHash::new(2000, 1);
    for id in &ids {
        let x = rng.next();
        h.offer_with(&[id, "v1"], || vec![x; 5]);
    }
    let kept = h.into_items().len();
    println!(
        "lowest hash: 1M rows offered (request ids of 29 bytes), {kept} kept: {:.0} ms wall, {:.0} ms CPU",
        t.elapsed().as_secs_f64() * 1000.0,
        (cpu_seconds() - c) * 1000.0
    );
}
