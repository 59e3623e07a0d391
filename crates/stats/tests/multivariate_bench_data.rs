//! Cost of multivariate drift on the peer benchmark data (`/work/shared/bench/peers`: a
//! 100k-row reference and a 1M-row current set, 20 numeric and 5 categorical features), next to
//! the per-feature drift report of `drift_bench_data.rs` on the same files. Ignored (it needs
//! the generated files and a release build):
//! `cargo test -p modelwatch-stats --release --test multivariate_bench_data -- --ignored --nocapture`.

use modelwatch_stats::multivariate::{
    Cell, ColumnKind, ErrorSums, ReconstructionFit, Scratch, DEFAULT_VARIANCE,
};
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
fn fit_on_100k_rows_and_reconstruct_1m() {
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
    let t = Instant::now();
    let fit = ReconstructionFit::fit(&columns, &reference, DEFAULT_VARIANCE).unwrap();
    let t_fit = t.elapsed();
    // The rows' text parsed into cells outside the clock (as the drift report's figure leaves
    // the CSV out), 100k rows at a time to bound memory.
    let mut scratch = Scratch::new(&fit);
    let mut sums = ErrorSums::default();
    let mut t_errors = std::time::Duration::ZERO;
    for part in current.chunks(100_000) {
        let parsed: Vec<Vec<Cell>> = part.iter().map(|r| cells(&columns, r)).collect();
        let t = Instant::now();
        for row in &parsed {
            sums.push(fit.error_with(row, &mut scratch));
        }
        t_errors += t.elapsed();
    }
    let w = fit.window(&sums);
    println!(
        "{} columns, {} components ({:.3} of the variance); fit on {} rows {:.3}s; errors of {} rows {:.3}s; mean error {:.4} (band {:?} .. {:.4}), alert {}",
        fit.columns.len(),
        fit.n_components(),
        fit.explained_variance(),
        reference.len(),
        t_fit.as_secs_f64(),
        current.len(),
        t_errors.as_secs_f64(),
        w.value.unwrap(),
        fit.band.lower,
        fit.band.upper,
        w.alert
    );
}
