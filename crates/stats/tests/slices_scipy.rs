//! An alert's likely causes against SciPy 1.17, statsmodels 0.15 and scikit-learn 1.9 on the
//! same samples: the feature weights (`scipy.stats.spearmanr`, `numpy.corrcoef`,
//! `scipy.stats.contingency.association(method="cramer", correction=False)`), the segments'
//! Wilson intervals (`statsmodels.stats.proportion.proportion_confint(method="wilson")`) and
//! the F1 bootstrap (`scipy.stats.bootstrap(method="percentile")` of `sklearn.metrics.f1_score`).
//! Fixture: `tests/fixtures/causes/causes.json`, made by
//! `scripts/fixtures/gen_causes_fixtures.py`.
//!
//! Tolerances: correlations and intervals 1e-9 absolute; the bootstrap's bounds 0.03 (two
//! Monte Carlo estimates of the same percentiles, ours from 1000 resamples).

use modelwatch_stats::slices::*;
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/causes/causes.json")).expect("valid JSON")
}

fn vecf(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[track_caller]
fn close(what: &str, ours: f64, theirs: f64, tol: f64) {
    assert!(
        (ours - theirs).abs() <= tol,
        "{what}: ours {ours}, reference {theirs}"
    );
}

/// scipy.stats.spearmanr(x, error).statistic and numpy.corrcoef(x, error)[0, 1]
#[test]
fn spearman_and_pearson_match_scipy_and_numpy() {
    for (i, c) in fixture()["correlations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let (x, e) = (vecf(&c["x"]), vecf(&c["error"]));
        let want = c["spearman"].as_f64().unwrap();
        close(
            &format!("spearman {i}"),
            spearman(&x, &e).unwrap(),
            want,
            1e-9,
        );
        let want = c["pearson"].as_f64().unwrap();
        close(
            &format!("pearson {i}"),
            pearson(&x, &e).unwrap(),
            want,
            1e-9,
        );
    }
}

/// scipy.stats.contingency.association(table, method="cramer", correction=False)
#[test]
fn the_correlation_ratio_of_a_0_1_error_is_cramers_v() {
    for (i, c) in fixture()["associations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let group: Vec<u32> = c["group"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_u64().unwrap() as u32)
            .collect();
        let ours = correlation_ratio(&group, &vecf(&c["error"])).unwrap();
        close(
            &format!("association {i}"),
            ours,
            c["cramers_v"].as_f64().unwrap(),
            1e-9,
        );
    }
}

/// statsmodels.stats.proportion.proportion_confint(k, n, method="wilson"), through the
/// segments' accuracy interval (k right of n).
#[test]
fn segment_intervals_of_proportions_are_statsmodels_wilson() {
    for c in fixture()["wilson"].as_array().unwrap() {
        let (k, n) = (c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap());
        let cells = Cells {
            tp: k,
            fp: n - k,
            fn_: 0,
            tn: 0,
        };
        let i = SliceMetric::Accuracy.interval(&cells, 0).unwrap();
        assert_eq!(i.method, IntervalMethod::Wilson);
        close(
            &format!("low {k}/{n}"),
            i.low,
            c["low"].as_f64().unwrap(),
            1e-9,
        );
        close(
            &format!("high {k}/{n}"),
            i.high,
            c["high"].as_f64().unwrap(),
            1e-9,
        );
    }
}

/// scipy.stats.bootstrap((y, p), f1_score, paired=True, method="percentile")
#[test]
fn the_f1_bootstrap_agrees_with_scipy() {
    for c in fixture()["f1_bootstrap"].as_array().unwrap() {
        let u = |k: &str| c[k].as_u64().unwrap();
        let cells = Cells {
            tp: u("tp"),
            fp: u("fp"),
            fn_: u("fn"),
            tn: u("tn"),
        };
        let what = format!("{cells:?}");
        close(
            &what,
            SliceMetric::F1.value(&cells).unwrap(),
            c["f1"].as_f64().unwrap(),
            1e-12,
        );
        let i = SliceMetric::F1.interval(&cells, 11).unwrap();
        assert_eq!(i.method, IntervalMethod::Bootstrap);
        close(&what, i.low, c["low"].as_f64().unwrap(), 0.03);
        close(&what, i.high, c["high"].as_f64().unwrap(), 0.03);
    }
}
