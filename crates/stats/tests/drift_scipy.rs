//! Drift statistics against SciPy 1.17 on the same samples.
//! Fixture: `tests/fixtures/drift/scipy_drift.json`, made by
//! `scripts/fixtures/gen_drift_fixtures.py`.
//!
//! Tolerances: statistics 1e-9 relative (1e-12 absolute near 0); p-values 1e-6 relative or
//! 1e-12 absolute.

use modelwatch_stats::drift::*;
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("fixtures/drift/scipy_drift.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn vecf(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

#[track_caller]
fn close_stat(what: &str, ours: f64, scipy: f64) {
    let ok = (ours - scipy).abs() <= 1e-9 * scipy.abs().max(1e-3);
    assert!(ok, "{what}: ours {ours:e}, scipy {scipy:e}");
}

#[track_caller]
fn close_p(what: &str, ours: f64, scipy: f64) {
    let ok = (ours - scipy).abs() <= 1e-12 || (ours - scipy).abs() <= 1e-6 * scipy.abs();
    assert!(ok, "{what}: ours {ours:e}, scipy {scipy:e}");
}

#[test]
fn ks_raw_samples_match_scipy() {
    for c in fixture()["numeric"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (r, x) = (vecf(&c["reference"]), vecf(&c["current"]));
        let ks = ks_2samp(&r, &x).unwrap();
        close_stat(
            &format!("{name} ks statistic"),
            ks.statistic,
            f(&c["ks"]["statistic"]),
        );
        close_p(&format!("{name} ks p"), ks.p_value, f(&c["ks"]["p_value"]));
    }
}

#[test]
fn ks_with_sorted_reference_equals_raw_ks() {
    for c in fixture()["numeric"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (r, x) = (vecf(&c["reference"]), vecf(&c["current"]));
        let sref = SortedReference::new(&r);
        let gaps = sref.gaps(&x);
        let ks = sref.ks(&gaps).unwrap();
        close_stat(
            &format!("{name} gap ks"),
            ks.statistic,
            f(&c["ks"]["statistic"]),
        );
        close_p(
            &format!("{name} gap ks p"),
            ks.p_value,
            f(&c["ks"]["p_value"]),
        );
        let w = sref.wasserstein(&gaps, &x).unwrap();
        close_stat(&format!("{name} gap wasserstein"), w, f(&c["wasserstein"]));
    }
}

#[test]
fn wasserstein_matches_scipy() {
    for c in fixture()["numeric"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (r, x) = (vecf(&c["reference"]), vecf(&c["current"]));
        let w = wasserstein_distance(&r, &x).unwrap();
        close_stat(&format!("{name} wasserstein"), w, f(&c["wasserstein"]));
    }
}

#[test]
fn cramer_von_mises_matches_scipy() {
    for c in fixture()["numeric"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (r, x) = (vecf(&c["reference"]), vecf(&c["current"]));
        let cvm = cramer_von_mises(&r, &x).unwrap();
        close_stat(
            &format!("{name} cvm"),
            cvm.statistic,
            f(&c["cvm"]["statistic"]),
        );
        close_p(
            &format!("{name} cvm p"),
            cvm.p_value,
            f(&c["cvm"]["p_value"]),
        );
    }
}

#[test]
fn decile_edges_and_binned_statistics_match_numpy() {
    for c in fixture()["numeric"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let r = vecf(&c["reference"]);
        let x = vecf(&c["current"]);
        let mut sorted = r.clone();
        sorted.sort_by(f64::total_cmp);
        let want = vecf(&c["decile_edges"]);
        let mut dedup = want.clone();
        dedup.dedup();
        let edges = BinEdges::from_sorted_reference(&sorted, 10);
        // serde_json's default float parser may be 1 ulp off, so compare within 4 ulps.
        assert_eq!(edges.edges().len(), dedup.len(), "{name} edges");
        for (a, b) in edges.edges().iter().zip(&dedup) {
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs(),
                "{name} edge {a} vs {b}"
            );
        }
        // Counts are compared on NumPy's 10 (not deduplicated) bins.
        let numpy_edges = BinEdges::from_edges(want.clone());
        if numpy_edges.len() == 10 {
            let rc: Vec<f64> = numpy_edges.counts(&r).iter().map(|&v| v as f64).collect();
            let cc: Vec<f64> = numpy_edges.counts(&x).iter().map(|&v| v as f64).collect();
            assert_eq!(
                rc,
                vecf(&c["binned"]["reference_counts"]),
                "{name} ref counts"
            );
            assert_eq!(
                cc,
                vecf(&c["binned"]["current_counts"]),
                "{name} cur counts"
            );
        }
    }
}

fn check_binned(name: &str, b: &Value) {
    let (r, c) = (vecf(&b["reference_counts"]), vecf(&b["current_counts"]));
    close_stat(&format!("{name} psi"), psi(&r, &c).unwrap(), f(&b["psi"]));
    close_stat(
        &format!("{name} js"),
        jensen_shannon(&r, &c).unwrap(),
        f(&b["jensen_shannon"]),
    );
    close_stat(
        &format!("{name} hellinger"),
        hellinger(&r, &c).unwrap(),
        f(&b["hellinger"]),
    );
    close_stat(
        &format!("{name} kl"),
        kl_divergence(&r, &c).unwrap(),
        f(&b["kl_divergence"]),
    );
    let chi = chi2_contingency(&r, &c).unwrap();
    close_stat(
        &format!("{name} chi2"),
        chi.statistic,
        f(&b["chi2"]["statistic"]),
    );
    close_p(
        &format!("{name} chi2 p"),
        chi.p_value,
        f(&b["chi2"]["p_value"]),
    );
    assert_eq!(chi.dof, b["chi2"]["dof"].as_u64().unwrap(), "{name} dof");
}

#[test]
fn binned_numeric_statistics_match_scipy() {
    for c in fixture()["numeric"].as_array().unwrap() {
        check_binned(c["name"].as_str().unwrap(), &c["binned"]);
    }
}

#[test]
fn categorical_statistics_match_scipy() {
    for c in fixture()["categorical"].as_array().unwrap() {
        check_binned(c["name"].as_str().unwrap(), c);
    }
}

#[test]
fn ks_p_values_match_scipy_over_a_grid() {
    for g in fixture()["ks_grid"].as_array().unwrap() {
        let (n1, n2, d) = (
            g["n1"].as_u64().unwrap(),
            g["n2"].as_u64().unwrap(),
            f(&g["d"]),
        );
        let (p, method) = ks_p_value(d, n1, n2);
        let want_method = match g["method"].as_str().unwrap() {
            "exact" => KsPValueMethod::Exact,
            _ => KsPValueMethod::Asymptotic,
        };
        assert_eq!(method, want_method, "n1={n1} n2={n2} d={d}");
        close_p(&format!("ks p n1={n1} n2={n2} d={d}"), p, f(&g["p_value"]));
    }
}

#[test]
fn benjamini_hochberg_matches_scipy() {
    let fx = fixture();
    let p = vecf(&fx["benjamini_hochberg"]["p"]);
    let want = vecf(&fx["benjamini_hochberg"]["adjusted"]);
    let got = adjust_p_values(&p, Correction::BenjaminiHochberg);
    for (g, w) in got.iter().zip(&want) {
        close_p("bh", *g, *w);
    }
}
