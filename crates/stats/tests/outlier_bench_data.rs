//! Cost of HBOS outlier scores on the peer benchmark data (`/work/shared/bench/peers`: a
//! 100k-row reference and a 1M-row current set, 20 numeric and 5 categorical features), next to
//! the per-feature drift report of `drift_bench_data.rs` on the same files. Ignored (it needs
//! the generated files and a release build):
//! `cargo test -p modelwatch-stats --release --test outlier_bench_data -- --ignored --nocapture`.

mod bench_csv;

use modelwatch_stats::outlier::{Cell, ColumnKind, HbosFit, DEFAULT_CONTAMINATION};
use std::time::Instant;

#[test]
#[ignore]
fn fit_hbos_on_100k_rows_and_score_1m() {
    let dir = bench_csv::dir();
    let (Some((table_columns, reference)), Some((_, current))) = (
        bench_csv::read(&dir.join("reference_100k.csv")),
        bench_csv::read(&dir.join("current_1m.csv")),
    ) else {
        println!("skipped: the bench CSVs are not in {}", dir.display());
        return;
    };
    let columns = bench_csv::columns(&table_columns, ColumnKind::Numeric, ColumnKind::Categorical);
    let reference: Vec<Vec<Cell>> = reference
        .iter()
        .map(|r| bench_csv::cells(&table_columns, r))
        .collect();
    let (t, c) = (Instant::now(), cpu());
    let fit = HbosFit::fit(&columns, &reference, DEFAULT_CONTAMINATION).unwrap();
    let (t_fit, c_fit) = (t.elapsed(), cpu() - c);
    // Parsed outside the clock, 100k rows at a time; scored with every feature's contribution
    // (what the engine does for each row).
    let mut contributions = Vec::new();
    let (mut outliers, mut t_score, mut c_score) = (0u64, std::time::Duration::ZERO, 0.0);
    for part in current.chunks(100_000) {
        let parsed: Vec<Vec<Cell>> = part
            .iter()
            .map(|r| bench_csv::cells(&table_columns, r))
            .collect();
        let (t, c) = (Instant::now(), cpu());
        for row in &parsed {
            let s = fit.score_with_contributions(row, &mut contributions);
            outliers += u64::from(fit.is_outlier(s));
        }
        t_score += t.elapsed();
        c_score += cpu() - c;
    }
    println!(
        "{} columns; fit on {} rows {:.3}s ({:.3} cpu s); scores of {} rows {:.3}s ({:.3} cpu s); outlier rate {:.4}, threshold {:.3}; load {}",
        fit.columns.len(),
        reference.len(),
        t_fit.as_secs_f64(),
        c_fit,
        current.len(),
        t_score.as_secs_f64(),
        c_score,
        outliers as f64 / current.len() as f64,
        fit.threshold,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    );
}

/// This thread's CPU seconds so far.
fn cpu() -> f64 {
    // /proc/thread-self/stat: utime and stime (fields 14 and 15) in clock ticks (100 a second).
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // After the `)`, the numbers from ppid (field 4) on: utime (14) is the 11th.
    f.get(10)
        .zip(f.get(11))
        .map_or(0.0, |(u, s)| (u + s) / 100.0)
}
