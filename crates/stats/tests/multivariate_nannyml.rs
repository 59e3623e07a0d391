//! The PCA reconstruction error against NannyML 0.13.1's `DataReconstructionDriftCalculator`
//! and scikit-learn's PCA, on fixtures from `scripts/fixtures/gen_multivariate_fixtures.py`:
//! a mixed numeric and categorical set with missing values and a 25-feature one, each with
//! clean analysis chunks and chunks whose correlations are broken (every feature's values kept).

use std::path::PathBuf;

use modelwatch_stats::multivariate::{
    components_for, Cell, ColumnKind, ErrorSums, ReconstructionFit, Scratch, DEFAULT_VARIANCE,
};
use serde_json::Value;

/// Explained variance ratios: scikit-learn takes the SVD of the standardised data, we the
/// eigendecomposition of its covariance (nalgebra); they agree to rounding of the sums.
const VARIANCE_TOL: f64 = 1e-10;
/// Reconstruction errors, sampling errors, band: the same definition, sums in another order
/// and the components from another decomposition. Measured: values and band within 1e-13, the
/// interval within 1.2e-13 (our sampling error comes from the window's sum of squares, which
/// keeps windows mergeable, NumPy's from a second pass); asserted at 1e-9.
const NANNYML_TOL: f64 = 1e-9;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fixtures/multivariate")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn cells(rows: &Value) -> Vec<Vec<Cell<'_>>> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("a row")
                .iter()
                .map(|v| match v {
                    Value::Number(n) => Cell::Number(n.as_f64().expect("a float")),
                    Value::String(s) => Cell::Category(s),
                    _ => Cell::Missing,
                })
                .collect()
        })
        .collect()
}

#[track_caller]
fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, NannyML/scikit-learn {want}"
    );
}

fn check(name: &str) {
    let f = fixture(name);
    let columns: Vec<(String, ColumnKind)> = f["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| {
            let kind = match c["kind"].as_str() {
                Some("numeric") => ColumnKind::Numeric,
                _ => ColumnKind::Categorical,
            };
            (c["name"].as_str().expect("a name").to_owned(), kind)
        })
        .collect();
    let reference = cells(&f["reference"]);
    let fit = ReconstructionFit::fit(&columns, &reference, DEFAULT_VARIANCE).expect("fits");

    // scikit-learn: standardisation, every component's share of variance, components kept.
    let sk = &f["sklearn"];
    for (j, (got, want)) in fit
        .scaler_mean
        .iter()
        .zip(floats(&sk["scaler_mean"]))
        .enumerate()
    {
        close(&format!("{name} scaler mean {j}"), *got, want, NANNYML_TOL);
    }
    for (j, (got, want)) in fit
        .scaler_scale
        .iter()
        .zip(floats(&sk["scaler_scale"]))
        .enumerate()
    {
        close(&format!("{name} scaler scale {j}"), *got, want, NANNYML_TOL);
    }
    let ratios = floats(&sk["explained_variance_ratio"]);
    assert_eq!(fit.explained_variance_ratio.len(), ratios.len());
    for (j, (got, want)) in fit.explained_variance_ratio.iter().zip(&ratios).enumerate() {
        close(
            &format!("{name} variance ratio {j}"),
            *got,
            *want,
            VARIANCE_TOL,
        );
    }
    let k = sk["n_components"].as_u64().expect("n_components") as usize;
    assert_eq!(fit.n_components(), k, "{name}: components kept");
    assert_eq!(sk["nannyml_n_components"].as_u64(), Some(k as u64));
    assert_eq!(components_for(&ratios, DEFAULT_VARIANCE), k);

    // NannyML: the reference chunks and the band.
    let nm = &f["nannyml"];
    let ref_chunks = floats(&nm["reference_chunks"]);
    assert_eq!(
        fit.reference_chunks.len(),
        ref_chunks.len(),
        "{name}: chunks"
    );
    for (i, (got, want)) in fit.reference_chunks.iter().zip(&ref_chunks).enumerate() {
        close(
            &format!("{name} reference chunk {i}"),
            got.value,
            *want,
            NANNYML_TOL,
        );
        assert_eq!(
            Some(got.rows),
            nm["reference_chunk_rows"][i].as_u64(),
            "{name}: rows of reference chunk {i}"
        );
    }
    close(
        &format!("{name} upper threshold"),
        fit.band.upper,
        nm["upper_threshold"].as_f64().expect("upper"),
        NANNYML_TOL,
    );
    match (fit.band.lower, nm["lower_threshold"].as_f64()) {
        (Some(got), Some(want)) => {
            close(&format!("{name} lower threshold"), got, want, NANNYML_TOL)
        }
        (None, None) => {}
        (got, want) => panic!("{name}: lower threshold {got:?}, NannyML {want:?}"),
    }

    // Each analysis chunk: value, sampling error, interval, alert.
    let values = floats(&nm["value"]);
    let ses = floats(&nm["sampling_error"]);
    let uppers = floats(&nm["upper_confidence_boundary"]);
    let lowers = floats(&nm["lower_confidence_boundary"]);
    let alerts: Vec<bool> = nm["alert"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a.as_bool().expect("a bool"))
        .collect();
    let chunks = f["chunks"].as_array().expect("chunks");
    assert_eq!(chunks.len(), values.len());
    let mut scratch = Scratch::new(&fit);
    for (i, chunk) in chunks.iter().enumerate() {
        let mut sums = ErrorSums::default();
        for row in cells(chunk) {
            sums.push(fit.error_with(&row, &mut scratch));
        }
        let w = fit.window(&sums);
        close(
            &format!("{name} chunk {i}"),
            w.value.unwrap(),
            values[i],
            NANNYML_TOL,
        );
        close(
            &format!("{name} chunk {i} sampling error"),
            w.sampling_error.unwrap(),
            ses[i],
            NANNYML_TOL,
        );
        close(
            &format!("{name} chunk {i} upper"),
            w.ci_high.unwrap(),
            uppers[i],
            NANNYML_TOL,
        );
        close(
            &format!("{name} chunk {i} lower"),
            w.ci_low.unwrap(),
            lowers[i],
            NANNYML_TOL,
        );
        assert_eq!(w.alert, alerts[i], "{name} chunk {i}: alert");
    }
    // The fixtures are built so: the five clean chunks stay in the band, the five whose
    // correlations are broken leave it.
    assert_eq!(
        alerts,
        [[false; 5], [true; 5]].concat(),
        "{name}: fixture's design"
    );
}

#[test]
fn mixed_features_with_missing_values_match_nannyml_and_scikit_learn() {
    check("mixed");
}

#[test]
fn twenty_five_correlated_features_match_nannyml_and_scikit_learn() {
    check("factors25");
}
