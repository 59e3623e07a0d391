//! DLE against NannyML 0.13.1 on fixtures from `scripts/fixtures/gen_dle_fixtures.py`: a
//! regression model whose analysis chunks drift into the regions where it errs more.
//!
//! The learners differ (NannyML fits LightGBM, we fit our own small boosted trees, ADR 013), so
//! the estimates cannot be equal. What is checked per chunk: our estimate lies within NannyML's
//! own ± 3σ interval; the sampling errors (which do not depend on the learner) equal NannyML's;
//! our estimate tracks the realized value as closely as NannyML's does; and the realized MAE and
//! RMSE of our regression state equal scikit-learn's.
//! `cargo test -p modelwatch-stats --test dle_nannyml -- --nocapture` prints the table in
//! docs/benchmarks.md.

use std::path::PathBuf;

use modelwatch_stats::estimate::{Cell, ColumnKind, Dle, DleRow, DleWindow, EstimatedMetric};
use modelwatch_stats::perf::RegressionState;
use serde_json::Value;

fn fixture() -> Value {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fixtures/dle/regression.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

struct Table {
    x: [Vec<f64>; 3],
    cat: Vec<String>,
    y_true: Vec<f64>,
    y_pred: Vec<f64>,
}

impl Table {
    fn read(v: &Value, unit: f64) -> Table {
        let col = |name: &str| -> Vec<f64> {
            v[name]
                .as_array()
                .expect("an array")
                .iter()
                .map(|k| k.as_i64().expect("an integer") as f64 / unit)
                .collect()
        };
        Table {
            x: [col("x1"), col("x2"), col("x3")],
            cat: v["cat"]
                .as_str()
                .expect("a string of categories")
                .chars()
                .map(String::from)
                .collect(),
            y_true: col("y_true"),
            y_pred: col("y_pred"),
        }
    }

    fn cells(&self, i: usize) -> Vec<Cell<'_>> {
        vec![
            Cell::Number(self.x[0][i]),
            Cell::Number(self.x[1][i]),
            Cell::Number(self.x[2][i]),
            Cell::Text(&self.cat[i]),
        ]
    }
}

const KINDS: [ColumnKind; 4] = [
    ColumnKind::Numeric,
    ColumnKind::Numeric,
    ColumnKind::Numeric,
    ColumnKind::Categorical,
];

/// Sampling errors depend on the reference's errors and the chunk's size only: the same
/// formula on the same numbers, to rounding.
const SAMPLING_ERROR_TOL: f64 = 1e-12;

#[test]
fn dle_estimates_lie_within_nannymls_interval_and_track_the_realized_value() {
    let f = fixture();
    let unit = f["unit"].as_f64().unwrap();
    let chunk = f["chunk_size"].as_u64().unwrap() as usize;
    let reference = Table::read(&f["reference"], unit);
    let analysis = Table::read(&f["analysis"], unit);
    let rows: Vec<DleRow<'_>> = (0..reference.y_true.len())
        .map(|i| DleRow {
            features: reference.cells(i),
            prediction: reference.y_pred[i],
            label: reference.y_true[i],
        })
        .collect();
    let started = std::time::Instant::now();
    let dle = Dle::fit(&KINDS, &rows).expect("fits");
    let fit_time = started.elapsed();
    println!(
        "fit on {} reference rows: {:.1} ms",
        rows.len(),
        fit_time.as_secs_f64() * 1e3
    );
    println!(
        "| chunk | drift | realized MAE | ours | NannyML | NannyML ± 3σ | realized RMSE | ours | NannyML | NannyML ± 3σ |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let chunks = f["chunks"].as_array().unwrap();
    let mut sum_err = [[0.0f64; 2]; 2]; // [metric][ours, nannyml]
    for (c, expected) in chunks.iter().enumerate() {
        let range = c * chunk..(c + 1) * chunk;
        let mut w = DleWindow::default();
        let mut realized = RegressionState::new();
        for i in range {
            w.observe(dle.predict(&analysis.cells(i), analysis.y_pred[i]));
            realized
                .observe(analysis.y_true[i], analysis.y_pred[i])
                .unwrap();
        }
        let estimates = dle.estimates(&w);
        let realized_report = realized.metrics(&Default::default());
        let mut line = format!("| {c} | {} |", expected["drift"]);
        for (k, m) in EstimatedMetric::REGRESSION.into_iter().enumerate() {
            let ours = estimates.get(m).expect("estimated");
            let theirs = &expected[m.as_str()];
            let value = theirs["value"].as_f64().unwrap();
            let se = theirs["sampling_error"].as_f64().unwrap();
            let truth = theirs["realized"].as_f64().unwrap();
            // The realized value: scikit-learn's, NannyML's and ours agree.
            let sklearn = expected["sklearn"][m.as_str()].as_f64().unwrap();
            assert!((truth - sklearn).abs() < 1e-12, "chunk {c} {m:?}");
            let ours_realized = match m {
                EstimatedMetric::Mae => realized_report.mae.value(),
                _ => realized_report.rmse.value(),
            }
            .unwrap();
            assert!(
                (ours_realized - sklearn).abs() < 1e-9,
                "chunk {c} realized {m:?}: {ours_realized} vs scikit-learn {sklearn}"
            );
            assert!(
                (ours.sampling_error - se).abs() < SAMPLING_ERROR_TOL,
                "chunk {c} {m:?} sampling error {} vs NannyML {se}",
                ours.sampling_error
            );
            let (lo, hi) = (
                theirs["ci_low"].as_f64().unwrap(),
                theirs["ci_high"].as_f64().unwrap(),
            );
            assert!(
                (lo..=hi).contains(&ours.value),
                "chunk {c} {m:?}: ours {} outside NannyML's [{lo}, {hi}] around {value}",
                ours.value
            );
            sum_err[k][0] += (ours.value - truth).abs();
            sum_err[k][1] += (value - truth).abs();
            line += &format!(
                " {truth:.4} | {:.4} ({:+.4}) | {value:.4} ({:+.4}) | [{lo:.4}, {hi:.4}] |",
                ours.value,
                ours.value - truth,
                value - truth
            );
        }
        println!("{line}");
    }
    let n = chunks.len() as f64;
    for (k, m) in EstimatedMetric::REGRESSION.into_iter().enumerate() {
        let (ours, theirs) = (sum_err[k][0] / n, sum_err[k][1] / n);
        println!("{m:?}: mean |estimate - realized| ours {ours:.4}, NannyML {theirs:.4}");
        // Tracking the realized value: no worse than NannyML's by more than a quarter of its
        // interval's half-width on average.
        let half_width = 3.0 * chunks[0][m.as_str()]["sampling_error"].as_f64().unwrap();
        assert!(
            ours <= theirs + 0.25 * half_width,
            "{m:?}: ours {ours} vs NannyML {theirs}"
        );
    }
    // Degradation is seen: the last chunk's estimate is well above the first's, as realized.
    let first = {
        let mut w = DleWindow::default();
        for i in 0..chunk {
            w.observe(dle.predict(&analysis.cells(i), analysis.y_pred[i]));
        }
        dle.estimates(&w).get(EstimatedMetric::Mae).unwrap().value
    };
    let last = {
        let mut w = DleWindow::default();
        for i in (chunks.len() - 1) * chunk..chunks.len() * chunk {
            w.observe(dle.predict(&analysis.cells(i), analysis.y_pred[i]));
        }
        dle.estimates(&w).get(EstimatedMetric::Mae).unwrap().value
    };
    assert!(last > first * 1.3, "first {first}, last {last}");
}
