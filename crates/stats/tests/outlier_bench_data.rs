//! Cost of HBOS outlier scores on the peer benchmark data (`/work/shared/bench/peers`: a
//! 100k-row reference and a 1M-row current set, 20 numeric and 5 categorical features), next to
//! the per-feature drift report of `drift_bench_data.rs` on the same files. Ignored (it needs
//! the generated files and a release build):
//! `cargo test -p modelwatch-stats --release --test outlier_bench_data -- --ignored --nocapture`.

use modelwatch_stats::outlier::{Cell, ColumnKind, HbosFit, DEFAULT_CONTAMINATION};
use std::path::PathBuf;
use std::time::Instant;

/// A bench table: its feature columns, and its rows' values as text.
type Table = (Vec<(String, ColumnKind)>, Vec<Vec<String>>);

/// The feature columns of a bench CSV (no quoted fields in these files): `fNN` numeric, `cN`
/// categorical, as strings.
fn read_csv(path: &PathBuf) -> Option<Table> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let picked: Vec<(usize, String, ColumnKind)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let kind = match h.as_bytes() {
                [b'f', a, b] if a.is_ascii_digit() && b.is_ascii_digit() => ColumnKind::Numeric,
                [b'c', a] if a.is_ascii_digit() => ColumnKind::Categorical,
                _ => return None,
            };
            Some((i, h.to_string(), kind))
        })
        .collect();
    let rows = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            picked.iter().map(|(i, _, _)| f[*i].to_owned()).collect()
        })
        .collect();
    Some((picked.into_iter().map(|(_, n, k)| (n, k)).collect(), rows))
}

fn cells<'a>(columns: &[(String, ColumnKind)], row: &'a [String]) -> Vec<Cell<'a>> {
    columns
        .iter()
        .zip(row)
        .map(|((_, k), v)| match k {
            _ if v.is_empty() => Cell::Missing,
            ColumnKind::Numeric => v.parse().map_or(Cell::Missing, Cell::Number),
            ColumnKind::Categorical => Cell::Category(v),
        })
        .collect()
}

#[test]
#[ignore]
fn fit_hbos_on_100k_rows_and_score_1m() {
    let dir = std::env::var_os("MODELWATCH_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/modelwatch-bench/data")
        });
    let (Some((columns, reference)), Some((_, current))) = (
        read_csv(&dir.join("reference_100k.csv")),
        read_csv(&dir.join("current_1m.csv")),
    ) else {
        println!("skipped: the bench CSVs are not in {}", dir.display());
        return;
    };
    let reference: Vec<Vec<Cell>> = reference.iter().map(|r| cells(&columns, r)).collect();
    let (t, c) = (Instant::now(), cpu());
    let fit = HbosFit::fit(&columns, &reference, DEFAULT_CONTAMINATION).unwrap();
    let (t_fit, c_fit) = (t.elapsed(), cpu() - c);
    // Parsed outside the clock, 100k rows at a time; scored with every feature's contribution
    // (what the engine does for each row).
    let mut contributions = Vec::new();
    let (mut outliers, mut t_score, mut c_score) = (0u64, std::time::Duration::ZERO, 0.0);
    for part in current.chunks(100_000) {
        let parsed: Vec<Vec<Cell>> = part.iter().map(|r| cells(&columns, r)).collect();
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
