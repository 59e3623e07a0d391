//! HBOS against PyOD 3.6.7's `HBOS` (10 bins, alpha 0.1, tol 0.5) on fixtures from
//! `scripts/fixtures/gen_outlier_fixtures.py`: PyOD is fitted on the reference min-max scaled by
//! itself, which is how `modelwatch_stats::outlier` defines its densities. Compared: every
//! reference row's score, the threshold, every test row's score and outlier label. Where a test
//! value is more than half a bin outside the reference range, PyOD takes the feature's smallest
//! bin density and we take 0: the test adds that documented difference to PyOD's score.

use std::path::PathBuf;

use modelwatch_stats::outlier::{Cell, ColumnKind, HbosFit, Histogram, ALPHA, TOL};
use serde_json::Value;

/// Sums of a few logarithms, in another order than NumPy's.
const TOL_SCORE: f64 = 1e-12;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fixtures/outlier")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn check(name: &str) {
    let f = fixture(name);
    let reference = rows(&f["reference"]);
    let test = rows(&f["test"]);
    let hist = rows(&f["hist"]);
    let k = reference[0].len();
    let columns: Vec<(String, ColumnKind)> = (0..k)
        .map(|j| (format!("f{j}"), ColumnKind::Numeric))
        .collect();
    let cells = |r: &Vec<f64>| r.iter().map(|&x| Cell::Number(x)).collect::<Vec<_>>();
    let ref_cells: Vec<Vec<Cell<'_>>> = reference.iter().map(cells).collect();
    let contamination = f["contamination"].as_f64().unwrap();
    let fit = HbosFit::fit(&columns, &ref_cells, contamination).unwrap();
    // The densities.
    for (j, c) in fit.columns.iter().enumerate() {
        let Histogram::Numeric { density, .. } = &c.histogram else {
            panic!("f{j} is numeric")
        };
        for (b, (got, want)) in density.iter().zip(&hist[j]).enumerate() {
            assert!(
                (got - want).abs() <= 1e-12,
                "{name} f{j} bin {b}: {got} vs PyOD {want}"
            );
        }
    }
    let close = |what: String, got: f64, want: f64| {
        assert!(
            (got - want).abs() <= TOL_SCORE * want.abs().max(1.0),
            "{name} {what}: got {got}, PyOD {want}"
        );
    };
    for (i, (r, want)) in ref_cells
        .iter()
        .zip(f["reference_scores"].as_array().unwrap())
        .enumerate()
    {
        close(
            format!("reference row {i}"),
            fit.score(r),
            want.as_f64().unwrap(),
        );
    }
    close(
        "threshold".into(),
        fit.threshold,
        f["threshold"].as_f64().unwrap(),
    );
    let mut far_rows = 0;
    for (i, r) in test.iter().enumerate() {
        let mut want = f["test_scores"][i].as_f64().unwrap();
        let mut far = false;
        for (j, c) in fit.columns.iter().enumerate() {
            let Histogram::Numeric { edges, .. } = &c.histogram else {
                unreachable!()
            };
            let (lo, hi) = (edges[0], edges[edges.len() - 1]);
            let below = lo - r[j] > (edges[1] - edges[0]) * TOL;
            let above = r[j] - hi > (hi - edges[edges.len() - 2]) * TOL;
            if below || above {
                // Ours: density 0. PyOD's: its smallest.
                let pyod_min = hist[j].iter().copied().fold(f64::INFINITY, f64::min);
                want += -(ALPHA.log2()) + (pyod_min + ALPHA).log2();
                far = true;
            }
        }
        far_rows += usize::from(far);
        let got = fit.score(&cells(r));
        close(format!("test row {i}"), got, want);
        if !far {
            assert_eq!(
                fit.is_outlier(got),
                f["test_labels"][i].as_i64() == Some(1),
                "{name} test row {i}: label"
            );
        }
    }
    assert!(
        far_rows > 0,
        "{name}: the fixture has rows far outside the range"
    );
}

#[test]
fn hbos_equals_pyod_on_five_continuous_features() {
    check("gauss5");
}

#[test]
fn hbos_equals_pyod_on_small_integer_features_with_values_on_the_bin_edges() {
    check("discrete");
}
