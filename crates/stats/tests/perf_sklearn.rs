//! Performance metrics against scikit-learn / SciPy values computed on the same rows
//! (fixtures from `scripts/fixtures/gen_perf_fixtures.py`), and against the peer benchmark's
//! daily scikit-learn metrics when its data set is on this machine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use modelwatch_stats::perf::{
    average_precision_exact, compare_binary, compare_counts, compare_proportion, roc_auc_exact,
    roc_auc_exact_variance, BinaryState, Change, Metric, MetricConfig, MulticlassState,
    QuantileSketch, RankingMethod, RegressionState,
};
use serde_json::Value;

/// Exact metrics: sums of a few thousand terms, so rounding stays far below this.
const EXACT: f64 = 1e-9;
/// Stated tolerance of binned ROC-AUC against exact ROC-AUC on realistic score distributions.
const BINNED_AUC_TOL: f64 = 0.002;
/// Stated tolerance of binned average precision against exact average precision.
const BINNED_AP_TOL: f64 = 0.005;

fn fixture(name: &str) -> Value {
    // Read when the test runs, not when it was built: a test binary reused from another
    // checkout (a shared target directory) would otherwise look in that checkout.
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fixtures/perf")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

fn value(m: &Metric) -> f64 {
    m.value()
        .unwrap_or_else(|| panic!("metric not defined: {m:?}"))
}

#[track_caller]
fn close(name: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{name}: got {got}, scikit-learn {want}, |diff| {} > {tol}",
        (got - want).abs()
    );
}

/// All metrics at `min_sample` 0 so that small classes still get values to compare.
fn loose() -> MetricConfig {
    MetricConfig {
        min_sample: 0,
        ..MetricConfig::default()
    }
}

fn binary_rows(fx: &Value) -> Vec<(f64, bool)> {
    let scores = fx["score_micro"].as_array().unwrap();
    let labels = fx["label"].as_array().unwrap();
    scores
        .iter()
        .zip(labels)
        .map(|(s, y)| (s.as_i64().unwrap() as f64 / 1e6, y.as_i64().unwrap() == 1))
        .collect()
}

fn binary_state(fx: &Value) -> (BinaryState, Vec<(f64, bool)>) {
    let rows = binary_rows(fx);
    let mut st = BinaryState::with_threshold(f(&fx["threshold"])).unwrap();
    for &(s, y) in &rows {
        st.observe(y, Some(s), None).unwrap();
    }
    (st, rows)
}

fn check_binary(name: &str) {
    let fx = fixture(name);
    let e = &fx["expected"];
    let (st, rows) = binary_state(&fx);
    let cfg = loose();
    let r = st.metrics(&cfg);

    let cm = &e["confusion_matrix"];
    assert_eq!(
        r.confusion_matrix.tp,
        cm["tp"].as_u64().unwrap(),
        "{name} tp"
    );
    assert_eq!(
        r.confusion_matrix.fp,
        cm["fp"].as_u64().unwrap(),
        "{name} fp"
    );
    assert_eq!(
        r.confusion_matrix.tn,
        cm["tn"].as_u64().unwrap(),
        "{name} tn"
    );
    assert_eq!(
        r.confusion_matrix.fn_,
        cm["fn"].as_u64().unwrap(),
        "{name} fn"
    );
    for (key, m) in [
        ("accuracy", &r.accuracy),
        ("precision", &r.precision),
        ("recall", &r.recall),
        ("specificity", &r.specificity),
        ("fpr", &r.fpr),
        ("fnr", &r.fnr),
        ("f1", &r.f1),
        ("balanced_accuracy", &r.balanced_accuracy),
        ("mcc", &r.mcc),
        ("log_loss", &r.log_loss),
        ("brier_score", &r.brier_score),
        ("ece", &r.ece),
    ] {
        close(&format!("{name} {key}"), value(m), f(&e[key]), EXACT);
    }
    // Wilson intervals against scipy.stats.binomtest(...).proportion_ci(method="wilson").
    for (key, m) in [
        ("accuracy_wilson", &r.accuracy),
        ("precision_wilson", &r.precision),
    ] {
        let (lo, hi) = m.ci().unwrap();
        close(&format!("{name} {key} low"), lo, f(&e[key][0]), EXACT);
        close(&format!("{name} {key} high"), hi, f(&e[key][1]), EXACT);
    }

    // Reliability table: the same non-empty bins as calibration_curve(strategy="uniform").
    let want = e["reliability"].as_array().unwrap();
    assert_eq!(r.reliability.len(), want.len(), "{name} reliability bins");
    for (got, w) in r.reliability.iter().zip(want) {
        close(
            &format!("{name} bin_low"),
            got.bin_low,
            f(&w["bin"]) / 10.0,
            1e-12,
        );
        assert_eq!(got.count, w["count"].as_u64().unwrap(), "{name} bin count");
        close(
            &format!("{name} mean_predicted"),
            got.mean_predicted,
            f(&w["mean_predicted"]),
            EXACT,
        );
        close(
            &format!("{name} fraction_positive"),
            got.fraction_positive,
            f(&w["fraction_positive"]),
            EXACT,
        );
    }

    // Exact mode on raw pairs equals scikit-learn.
    let auc = roc_auc_exact(&rows, &cfg);
    close(
        &format!("{name} roc_auc exact"),
        value(&auc),
        f(&e["roc_auc"]),
        EXACT,
    );
    close(
        &format!("{name} average_precision exact"),
        value(&average_precision_exact(&rows, &cfg)),
        f(&e["average_precision"]),
        EXACT,
    );
    if let Some(v) = e["roc_auc_delong_variance"].as_f64() {
        close(
            &format!("{name} DeLong variance"),
            roc_auc_exact_variance(&rows).unwrap(),
            v,
            1e-12,
        );
    }

    // Binned: exactly scikit-learn on the binned scores, and within the stated tolerance
    // (and the reported bound) of the exact values.
    let auc_b = value(&st.roc_auc_binned(&cfg));
    let ap_b = value(&st.average_precision_binned(&cfg));
    close(
        &format!("{name} roc_auc binned vs sklearn on bins"),
        auc_b,
        f(&e["roc_auc_binned"]),
        EXACT,
    );
    close(
        &format!("{name} average_precision binned vs sklearn on bins"),
        ap_b,
        f(&e["average_precision_binned"]),
        EXACT,
    );
    close(
        &format!("{name} roc_auc binned vs exact"),
        auc_b,
        f(&e["roc_auc"]),
        BINNED_AUC_TOL,
    );
    close(
        &format!("{name} average_precision binned vs exact"),
        ap_b,
        f(&e["average_precision"]),
        BINNED_AP_TOL,
    );

    // The report uses the exact path while the state keeps the rows, the histogram after.
    let expect_method = if rows.len() <= modelwatch_stats::perf::EXACT_SAMPLE_CAP {
        RankingMethod::Exact
    } else {
        RankingMethod::Binned
    };
    assert_eq!(r.ranking_method, expect_method, "{name} ranking method");
    match r.ranking_method {
        RankingMethod::Exact => {
            close(
                &format!("{name} report roc_auc"),
                value(&r.roc_auc),
                f(&e["roc_auc"]),
                EXACT,
            );
            assert_eq!(r.ranking_error_bound, 0.0);
        }
        RankingMethod::Binned => {
            let d = (value(&r.roc_auc) - f(&e["roc_auc"])).abs();
            assert!(
                d <= r.ranking_error_bound + 1e-12,
                "{name}: |binned − exact| {d} > reported bound {}",
                r.ranking_error_bound
            );
        }
    }
}

#[test]
fn binary_calibrated_matches_sklearn() {
    check_binary("binary_calibrated");
}

#[test]
fn binary_miscalibrated_matches_sklearn() {
    check_binary("binary_miscalibrated");
    // Over-confident scores: a calibration error the report must show.
    let (st, _) = binary_state(&fixture("binary_miscalibrated"));
    assert!(value(&st.metrics(&loose()).ece) > 0.05);
}

#[test]
fn binary_imbalanced_matches_sklearn() {
    check_binary("binary_imbalanced");
}

#[test]
fn binary_small_window_uses_exact_ranking_metrics() {
    check_binary("binary_small");
}

#[test]
fn binary_tied_scores_on_bin_edges_and_other_threshold_match_sklearn() {
    check_binary("binary_ties_threshold");
}

#[test]
fn baseline_comparison_p_values_match_scipy_chi_squared() {
    let e = fixture("comparison_calibrated_vs_miscalibrated");
    let (base, _) = binary_state(&fixture("binary_calibrated"));
    let (win, _) = binary_state(&fixture("binary_miscalibrated"));
    let c = compare_binary(&base, &win, &MetricConfig::default());
    for (key, ch) in [
        ("accuracy_p_value", &c.accuracy),
        ("recall_p_value", &c.recall),
    ] {
        match ch {
            Change::Compared { p_value, .. } => close(key, *p_value, f(&e["expected"][key]), 1e-9),
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn operational_change_p_values_match_scipy_chi_squared() {
    let e = fixture("comparison_operational");
    let config = MetricConfig::default();
    let p_of = |c: Change| match c {
        Change::Compared { p_value, .. } => p_value,
        other => panic!("{other:?}"),
    };
    let pair = |v: &Value| (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
    for case in e["proportions"].as_array().unwrap() {
        let c = compare_proportion(pair(&case["base"]), pair(&case["window"]), &config);
        close("proportion p", p_of(c), f(&case["p_value"]), 1e-9);
    }
    for case in e["counts"].as_array().unwrap() {
        let (b, w) = (
            case["base"].as_u64().unwrap(),
            case["window"].as_u64().unwrap(),
        );
        close(
            "count p",
            p_of(compare_counts(b, w, &config)),
            f(&case["p_value"]),
            1e-9,
        );
    }
}

fn check_multiclass(name: &str) {
    let fx = fixture(name);
    let e = &fx["expected"];
    let classes: Vec<String> = fx["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let mut st = MulticlassState::new();
    let labels = fx["label"].as_array().unwrap();
    let preds = fx["prediction"].as_array().unwrap();
    let scores = fx["score_micro"].as_array().unwrap();
    for ((y, p), s) in labels.iter().zip(preds).zip(scores) {
        let row: Vec<(String, f64)> = classes
            .iter()
            .zip(s.as_array().unwrap())
            .map(|(c, k)| (c.clone(), k.as_i64().unwrap() as f64 / 1e6))
            .collect();
        st.observe(y.as_str().unwrap(), p.as_str().unwrap(), Some(&row))
            .unwrap();
    }
    let cfg = loose();
    let r = st.metrics(&cfg);
    let want_labels: Vec<&str> = e["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(r.confusion_matrix.labels, want_labels, "{name} labels");
    let want_cm: Vec<Vec<u64>> = serde_json::from_value(e["confusion_matrix"].clone()).unwrap();
    assert_eq!(
        r.confusion_matrix.counts, want_cm,
        "{name} confusion matrix"
    );
    for (key, m) in [
        ("accuracy", &r.accuracy),
        ("log_loss", &r.log_loss),
        ("precision_micro", &r.precision_micro),
        ("recall_micro", &r.recall_micro),
        ("f1_micro", &r.f1_micro),
        ("precision_macro", &r.precision_macro),
        ("recall_macro", &r.recall_macro),
        ("f1_macro", &r.f1_macro),
        ("precision_weighted", &r.precision_weighted),
        ("recall_weighted", &r.recall_weighted),
        ("f1_weighted", &r.f1_weighted),
    ] {
        close(&format!("{name} {key}"), value(m), f(&e[key]), EXACT);
    }
    close(
        &format!("{name} roc_auc binned vs sklearn on bins"),
        value(&r.roc_auc),
        f(&e["roc_auc_binned"]),
        EXACT,
    );
    close(
        &format!("{name} roc_auc binned vs exact ovr"),
        value(&r.roc_auc),
        f(&e["roc_auc"]),
        BINNED_AUC_TOL,
    );
    for (class, want) in e["per_class"].as_object().unwrap() {
        let got = &r.per_class[class];
        assert_eq!(got.support, want["support"].as_u64().unwrap());
        for (key, m) in [
            ("precision", &got.precision),
            ("recall", &got.recall),
            ("f1", &got.f1),
            ("roc_auc_binned", &got.roc_auc),
        ] {
            close(
                &format!("{name} {class} {key}"),
                value(m),
                f(&want[key]),
                EXACT,
            );
        }
    }
    // One-vs-rest exact AUC per class through the exact function, averaged: sklearn's ovr.
    let mut per_class_pairs: BTreeMap<&str, Vec<(f64, bool)>> = BTreeMap::new();
    for (y, s) in labels.iter().zip(scores) {
        for (c, k) in classes.iter().zip(s.as_array().unwrap()) {
            per_class_pairs
                .entry(c)
                .or_default()
                .push((k.as_i64().unwrap() as f64 / 1e6, y.as_str().unwrap() == c));
        }
    }
    let macro_exact = per_class_pairs
        .values()
        .map(|p| value(&roc_auc_exact(p, &cfg)))
        .sum::<f64>()
        / classes.len() as f64;
    close(
        &format!("{name} ovr exact"),
        macro_exact,
        f(&e["roc_auc"]),
        EXACT,
    );
}

#[test]
fn multiclass_3_matches_sklearn() {
    check_multiclass("multiclass_3");
}

#[test]
fn multiclass_5_matches_sklearn() {
    check_multiclass("multiclass_5");
}

#[test]
fn multiclass_averages_skip_undefined_classes_like_sklearn_zero_division_nan() {
    let fx = fixture("multiclass_zero_division");
    let e = &fx["expected"];
    let mut st = MulticlassState::new();
    let labels = fx["label"].as_array().unwrap();
    let preds = fx["prediction"].as_array().unwrap();
    for (y, p) in labels.iter().zip(preds) {
        st.observe::<&str>(y.as_str().unwrap(), p.as_str().unwrap(), None)
            .unwrap();
    }
    let r = st.metrics(&loose());
    let want_cm: Vec<Vec<u64>> = serde_json::from_value(e["confusion_matrix"].clone()).unwrap();
    assert_eq!(r.confusion_matrix.counts, want_cm);
    assert!(matches!(
        r.per_class["c"].precision,
        Metric::Undefined { .. }
    ));
    assert!(matches!(r.per_class["x"].recall, Metric::Undefined { .. }));
    for (key, m) in [
        ("precision_macro", &r.precision_macro),
        ("recall_macro", &r.recall_macro),
        ("f1_macro", &r.f1_macro),
        ("precision_weighted", &r.precision_weighted),
        ("recall_weighted", &r.recall_weighted),
        ("f1_weighted", &r.f1_weighted),
    ] {
        close(key, value(m), f(&e[key]), EXACT);
    }
    assert!(matches!(r.roc_auc, Metric::Undefined { .. }));
    assert!(matches!(r.log_loss, Metric::Undefined { .. }));
}

#[test]
fn regression_with_zero_targets_matches_sklearn() {
    let fx = fixture("regression_zero_targets");
    let e = &fx["expected"];
    let mut st = RegressionState::new();
    let ys = fx["target_milli"].as_array().unwrap();
    let ps = fx["prediction_milli"].as_array().unwrap();
    for (y, p) in ys.iter().zip(ps) {
        st.observe(
            y.as_i64().unwrap() as f64 / 1e3,
            p.as_i64().unwrap() as f64 / 1e3,
        )
        .unwrap();
    }
    let r = st.metrics(&loose());
    for (key, m) in [
        ("mae", &r.mae),
        ("mse", &r.mse),
        ("rmse", &r.rmse),
        ("mape", &r.mape),
        ("r2", &r.r2),
        ("mean_error", &r.mean_error),
    ] {
        close(&format!("regression {key}"), value(m), f(&e[key]), EXACT);
    }
    assert_eq!(r.mape_zero_targets, e["zero_targets"].as_u64().unwrap());
    for (key, m) in [
        ("p05", &r.error_p05),
        ("p50", &r.error_p50),
        ("p95", &r.error_p95),
    ] {
        let q = &e["error_quantiles"][key];
        close(
            &format!("regression error {key} (sketch bound)"),
            value(m),
            f(&q["value"]),
            f(&q["bound"]),
        );
    }
}

/// The peer benchmark's `sklearn_perf_daily` task on `current_100k.csv`: per UTC day,
/// accuracy, precision, recall and F1 on `y_pred`, ROC-AUC on `y_pred_proba`.
#[test]
fn daily_metrics_match_peer_benchmark_sklearn_values() {
    let home = std::env::var("HOME").unwrap_or_default();
    let csv = PathBuf::from(home).join(".cache/modelwatch-bench/data/current_100k.csv");
    let values =
        PathBuf::from("/work/shared/bench/peers/results/values_sklearn_perf_daily_100k.json");
    let (Ok(text), Ok(want)) = (
        std::fs::read_to_string(&csv),
        std::fs::read_to_string(&values),
    ) else {
        println!(
            "skipped: needs {} and {} (generate with bench/peers/gen_data.py)",
            csv.display(),
            values.display()
        );
        return;
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (ts, proba, pred, truth) = (
        col("timestamp"),
        col("y_pred_proba"),
        col("y_pred"),
        col("y_true"),
    );
    let mut days: BTreeMap<String, (BinaryState, Vec<(f64, bool)>)> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let day = f[ts][..10].to_owned();
        let s: f64 = f[proba].parse().unwrap();
        let p = f[pred] == "1";
        let y = f[truth] == "1";
        let entry = days
            .entry(day)
            .or_insert_with(|| (BinaryState::new(), Vec::new()));
        // The benchmark's confusion metrics use `y_pred`; the state derives the predicted
        // class from the score at 0.5. They agree only because y_pred is score >= 0.5 in
        // that data set: assert it rather than assume it.
        assert_eq!(p, s >= 0.5, "y_pred is score >= 0.5");
        entry.0.observe(y, Some(s), Some(p)).unwrap();
        entry.1.push((s, y));
    }
    let want: Vec<Value> = serde_json::from_str(&want).unwrap();
    assert_eq!(days.len(), want.len());
    let cfg = MetricConfig::default();
    let mut worst_binned = 0.0f64;
    for w in &want {
        let day = w["day"].as_str().unwrap();
        let (st, rows) = &days[day];
        assert_eq!(st.count(), w["rows"].as_u64().unwrap(), "{day} rows");
        let r = st.metrics(&cfg);
        for (key, m) in [
            ("accuracy", &r.accuracy),
            ("precision", &r.precision),
            ("recall", &r.recall),
            ("f1", &r.f1),
        ] {
            close(&format!("{day} {key}"), value(m), f(&w[key]), EXACT);
        }
        close(
            &format!("{day} roc_auc exact"),
            value(&roc_auc_exact(rows, &cfg)),
            f(&w["roc_auc"]),
            EXACT,
        );
        let d = (value(&r.roc_auc) - f(&w["roc_auc"])).abs();
        assert!(
            d <= r.ranking_error_bound + 1e-12,
            "{day}: {d} over the bound"
        );
        worst_binned = worst_binned.max(d);
        close(
            &format!("{day} roc_auc binned"),
            value(&r.roc_auc),
            f(&w["roc_auc"]),
            BINNED_AUC_TOL,
        );
    }
    println!(
        "{} days checked; largest |binned − exact| ROC-AUC {worst_binned:.2e}",
        want.len()
    );
}

#[test]
fn error_quantile_sketch_is_within_its_bound_on_wide_ranges() {
    // Latency-like values over five decades plus negatives and zeros.
    let mut sk = QuantileSketch::new();
    let mut xs = Vec::new();
    let mut x = 0.013f64;
    for i in 0..5000 {
        x = (x * 1.618_033_988_75 + 0.000_7 * i as f64) % 1000.0;
        let v = if i % 7 == 0 {
            -x
        } else if i % 101 == 0 {
            0.0
        } else {
            x
        };
        xs.push(v);
        sk.observe(v).unwrap();
    }
    xs.sort_by(f64::total_cmp);
    for q in [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0] {
        let r = q * (xs.len() - 1) as f64;
        let (lo, hi) = (xs[r.floor() as usize], xs[r.ceil() as usize]);
        let exact = lo + (r - r.floor()) * (hi - lo);
        let bound = 0.01 * lo.abs().max(hi.abs()) * (1.0 + 1e-9) + 1e-9;
        let got = sk.quantile(q).unwrap();
        assert!((got - exact).abs() <= bound, "q {q}: {got} vs {exact}");
    }
}
