//! The challenger tests against statsmodels 0.15, SciPy 1.17 and a numpy port of Sun & Xu's fast
//! DeLong (yandexdataschool/roc_comparison), on the same samples.
//! Fixture: `tests/fixtures/paired/paired.json`, made by
//! `scripts/fixtures/gen_paired_fixtures.py`.
//!
//! Tolerances: statistics 1e-9 relative; p-values 1e-7 relative or 1e-12 absolute.

use modelwatch_stats::paired::*;
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("fixtures/paired/paired.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("count")
}

fn vecf(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

#[track_caller]
fn close_stat(what: &str, ours: f64, theirs: f64) {
    let ok = (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1e-3);
    assert!(ok, "{what}: ours {ours:e}, reference {theirs:e}");
}

#[track_caller]
fn close_p(what: &str, ours: f64, theirs: f64) {
    let ok = (ours - theirs).abs() <= 1e-12 || (ours - theirs).abs() <= 1e-7 * theirs.abs();
    assert!(ok, "{what}: ours {ours:e}, reference {theirs:e}");
}

#[track_caller]
fn same_test(what: &str, ours: TestResult, theirs: &Value) {
    close_stat(what, ours.statistic, f(&theirs["statistic"]));
    close_p(what, ours.p_value, f(&theirs["p_value"]));
}

/// statsmodels.stats.contingency_tables.mcnemar(table, exact=True)
#[test]
fn mcnemar_exact_matches_statsmodels() {
    for c in fixture()["mcnemar"].as_array().unwrap() {
        let (b, cc) = (u(&c["b"]), u(&c["c"]));
        let ours = mcnemar_exact(b, cc).expect("a discordant pair");
        same_test(&format!("exact b={b} c={cc}"), ours, &c["exact"]);
    }
    assert_eq!(mcnemar_exact(0, 0), None);
}

/// statsmodels.stats.contingency_tables.mcnemar(table, exact=False, correction=True)
#[test]
fn mcnemar_asymptotic_matches_statsmodels() {
    for c in fixture()["mcnemar"].as_array().unwrap() {
        let (b, cc) = (u(&c["b"]), u(&c["c"]));
        let ours = mcnemar_asymptotic(b, cc).expect("a discordant pair");
        same_test(&format!("asymptotic b={b} c={cc}"), ours, &c["asymptotic"]);
    }
    assert_eq!(mcnemar_asymptotic(0, 0), None);
}

/// Sun & Xu's fast DeLong (numpy, after yandexdataschool/roc_comparison
/// `compare_auc_delong_xu.py`), and sklearn.metrics.roc_auc_score for each AUC.
#[test]
fn delong_paired_matches_the_reference_fast_delong() {
    for c in fixture()["delong"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let positive: Vec<bool> = c["label"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| u(v) == 1)
            .collect();
        let (a, b) = (vecf(&c["score_a"]), vecf(&c["score_b"]));
        let ours = delong_paired(&positive, &a, &b).expect("both classes");
        close_stat(&format!("{name} auc a"), ours.auc_a, f(&c["auc_a"]));
        close_stat(&format!("{name} auc b"), ours.auc_b, f(&c["auc_b"]));
        close_stat(
            &format!("{name} sklearn a"),
            ours.auc_a,
            f(&c["sklearn_auc_a"]),
        );
        close_stat(
            &format!("{name} sklearn b"),
            ours.auc_b,
            f(&c["sklearn_auc_b"]),
        );
        close_stat(&format!("{name} var a"), ours.var_a, f(&c["var_a"]));
        close_stat(&format!("{name} var b"), ours.var_b, f(&c["var_b"]));
        close_stat(&format!("{name} cov"), ours.covariance, f(&c["covariance"]));
        close_stat(&format!("{name} z"), ours.test.statistic, f(&c["z"]));
        close_p(&format!("{name} p"), ours.test.p_value, f(&c["p_value"]));
    }
}

#[test]
fn delong_paired_declines_what_has_no_variance() {
    // One positive: no variance of the positives' components.
    assert_eq!(
        delong_paired(&[true, false, false], &[0.9, 0.1, 0.2], &[0.8, 0.3, 0.1]),
        None
    );
    // The same scores twice: the difference has no variance.
    let y = [true, true, false, false, true];
    let s = [0.9, 0.4, 0.5, 0.1, 0.7];
    assert_eq!(delong_paired(&y, &s, &s), None);
}

fn errors(case: &Value, kind: &str) -> (Vec<f64>, Vec<f64>) {
    let y = vecf(&case["y"]);
    let (pa, pb) = (vecf(&case["pred_a"]), vecf(&case["pred_b"]));
    let err = |p: &[f64]| -> Vec<f64> {
        y.iter()
            .zip(p)
            .map(|(y, p)| match kind {
                "absolute" => (y - p).abs(),
                _ => (y - p).powi(2),
            })
            .collect()
    };
    (err(&pa), err(&pb))
}

/// scipy.stats.ttest_rel on absolute and squared errors.
#[test]
fn paired_t_on_error_differences_matches_scipy_ttest_rel() {
    for c in fixture()["regression"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        for kind in ["absolute", "squared"] {
            let (a, b) = errors(c, kind);
            let ours = paired_t(&a, &b).expect("varied differences");
            same_test(&format!("{name} {kind}"), ours, &c[kind]["ttest_rel"]);
        }
    }
    assert_eq!(paired_t(&[1.0, 2.0], &[0.0, 1.0]), None);
}

/// scipy.stats.wilcoxon(zero_method="wilcox", correction=False, method="asymptotic") on
/// absolute and squared errors.
#[test]
fn wilcoxon_on_error_differences_matches_scipy() {
    for c in fixture()["regression"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        for kind in ["absolute", "squared"] {
            let (a, b) = errors(c, kind);
            let ours = wilcoxon_signed_rank(&a, &b).expect("non-zero differences");
            same_test(&format!("{name} {kind}"), ours, &c[kind]["wilcoxon"]);
        }
    }
    assert_eq!(wilcoxon_signed_rank(&[1.0, 2.0], &[1.0, 2.0]), None);
}

/// statsmodels.stats.proportion.proportions_ztest([x1, x2], [n1, n2])
#[test]
fn two_proportion_z_matches_statsmodels_proportions_ztest() {
    for c in fixture()["two_proportion_z"].as_array().unwrap() {
        let ours =
            two_proportion_z(u(&c["x1"]), u(&c["n1"]), u(&c["x2"]), u(&c["n2"])).expect("variance");
        same_test(&format!("{c}"), ours, c);
    }
    assert_eq!(two_proportion_z(0, 10, 0, 12), None);
    assert_eq!(two_proportion_z(1, 0, 0, 12), None);
}

/// scipy.stats.ttest_ind(a, b, equal_var=False)
#[test]
fn welch_t_matches_scipy_ttest_ind_unequal_variances() {
    for c in fixture()["welch"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (a, b) = (Summary::of(&vecf(&c["a"])), Summary::of(&vecf(&c["b"])));
        let ours = welch_t(&a, &b).expect("two values a side");
        same_test(name, ours, c);
    }
    assert_eq!(
        welch_t(&Summary::of(&[1.0]), &Summary::of(&[1.0, 2.0])),
        None
    );
}

/// statsmodels.stats.proportion.proportion_confint(x, n, method="wilson")
#[test]
fn agreement_interval_matches_statsmodels_wilson() {
    for c in fixture()["wilson"].as_array().unwrap() {
        let a = agreement(u(&c["x"]), u(&c["n"])).unwrap();
        close_stat(&format!("{c} low"), a.ci_low, f(&c["low"]));
        close_stat(&format!("{c} high"), a.ci_high, f(&c["high"]));
    }
    assert_eq!(agreement(0, 0), None);
}

#[test]
fn requests_needed_scale_with_the_square_of_the_z_still_missing() {
    // At z = POWER_Z the test already has its power: exactly the requests it has.
    assert_eq!(labelled_requests_needed(1000, POWER_Z), Some(1000));
    // Half the z needs four times the requests.
    assert_eq!(labelled_requests_needed(1000, -POWER_Z / 2.0), Some(4000));
    assert_eq!(labelled_requests_needed(1000, 0.0), None);
    // McNemar: b = 60, c = 40 of 1000 pairs: z = 20 / 10 = 2, so 1000 · (2.8016 / 2)² = 1963
    // pairs; Connor's ψ/δ² form: 2.8016² · 0.1 / 0.02² = 1962.2.
    assert_eq!(labelled_requests_needed(1000, 2.0), Some(1963));
}
