//! Cost of multivariate drift on the peer benchmark data (`/work/shared/bench/peers`: a
//! 100k-row reference and a 1M-row current set, 20 numeric and 5 categorical features), next to
//! the per-feature drift report of `drift_bench_data.rs` on the same files. Ignored (it needs
//! the generated files and a release build):
//! `cargo test -p modelwatch-stats --release --test multivariate_bench_data -- --ignored --nocapture`.

mod bench_csv;

use modelwatch_stats::multivariate::{
    Cell, ColumnKind, ErrorSums, ReconstructionFit, Scratch, DEFAULT_VARIANCE,
};
use std::time::Instant;

#[test]
#[ignore]
fn fit_on_100k_rows_and_reconstruct_1m() {
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
    let t = Instant::now();
    let fit = ReconstructionFit::fit(&columns, &reference, DEFAULT_VARIANCE).unwrap();
    let t_fit = t.elapsed();
    // The rows' text parsed into cells outside the clock (as the drift report's figure leaves
    // the CSV out), 100k rows at a time to bound memory.
    let mut scratch = Scratch::new(&fit);
    let mut sums = ErrorSums::default();
    let mut t_errors = std::time::Duration::ZERO;
    for part in current.chunks(100_000) {
        let parsed: Vec<Vec<Cell>> = part
            .iter()
            .map(|r| bench_csv::cells(&table_columns, r))
            .collect();
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
