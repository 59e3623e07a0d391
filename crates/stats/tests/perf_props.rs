//! Properties of the performance states: the report does not depend on row order or on how
//! rows are split into states that are merged; intervals contain their value; degenerate
//! windows give typed outcomes; states survive a serde round trip.

use modelwatch_stats::perf::{
    average_precision_exact, compare_binary, roc_auc_exact, BinaryState, Change, Metric,
    MetricConfig, MulticlassState, PredictionDistribution, QuantileSketch, RegressionState,
};
use modelwatch_testkit::assert_json_close;
use proptest::prelude::*;
use serde::Serialize;
use serde_json::Value;

fn json<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

/// Every `defined` metric in a report: finite, interval around the value.
fn assert_metrics_sane(v: &Value, path: &str) {
    match v {
        Value::Object(m) if m.get("status").and_then(Value::as_str) == Some("defined") => {
            let g = |k: &str| {
                m[k].as_f64()
                    .unwrap_or_else(|| panic!("{path}.{k} not a number"))
            };
            let (val, lo, hi) = (g("value"), g("ci_low"), g("ci_high"));
            assert!(lo <= val && val <= hi, "{path}: {lo} <= {val} <= {hi}");
        }
        Value::Object(m) => {
            for (k, v) in m {
                assert_metrics_sane(v, &format!("{path}.{k}"));
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                assert_metrics_sane(v, &format!("{path}[{i}]"));
            }
        }
        // serde_json writes NaN and infinities as null: none may appear in a report.
        Value::Null => panic!("{path}: null (a non-finite number?)"),
        _ => {}
    }
}

/// Splits `rows` at the given cut points (taken modulo the length).
fn chunks<T: Clone>(rows: &[T], cuts: &[usize]) -> Vec<Vec<T>> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|c| if rows.is_empty() { 0 } else { c % rows.len() })
        .collect();
    cuts.push(0);
    cuts.push(rows.len());
    cuts.sort_unstable();
    cuts.windows(2).map(|w| rows[w[0]..w[1]].to_vec()).collect()
}

type BinRow = (bool, Option<f64>, bool);

fn binary_rows(max: usize) -> impl Strategy<Value = Vec<BinRow>> {
    // Scores on a coarse grid half of the time, so that ties and bin edges occur.
    let score = prop_oneof![(0u32..=20).prop_map(|k| k as f64 / 20.0), 0.0f64..=1.0,];
    prop::collection::vec(
        (
            any::<bool>(),
            prop::option::weighted(0.9, score),
            any::<bool>(),
        ),
        0..max,
    )
}

fn binary_state(rows: &[BinRow]) -> BinaryState {
    let mut st = BinaryState::with_threshold(0.4).unwrap();
    for &(y, s, p) in rows {
        st.observe(y, s, Some(p)).unwrap();
    }
    st
}

fn cfg() -> MetricConfig {
    MetricConfig {
        min_sample: 5,
        ..MetricConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn binary_report_ignores_order_and_batching(
        (rows, shuffled) in binary_rows(1400).prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let whole = binary_state(&rows).metrics(&cfg());
        let mut merged = BinaryState::with_threshold(0.4).unwrap();
        // Merge the parts in reverse order too: merge order must not matter either.
        for part in chunks(&shuffled, &cuts).iter().rev() {
            merged.merge(&binary_state(part)).unwrap();
        }
        let m = merged.metrics(&cfg());
        assert_json_close(&json(&whole), &json(&m), 1e-9, "binary");
        assert_metrics_sane(&json(&m), "binary");
    }

    #[test]
    fn binary_state_round_trips_through_json(rows in binary_rows(300)) {
        let st = binary_state(&rows);
        let back: BinaryState = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        // Close, not equal: serde_json without its `float_roundtrip` feature may parse a
        // 17-digit float 1 ulp off.
        assert_json_close(&json(&back.metrics(&cfg())), &json(&st.metrics(&cfg())), 1e-9, "round trip");
    }

    #[test]
    fn exact_ranking_metrics_ignore_order(
        (pairs, shuffled) in prop::collection::vec((0u32..50, any::<bool>()), 0..300)
            .prop_map(|v| v.into_iter().map(|(k, y)| (k as f64 / 49.0, y)).collect::<Vec<_>>())
            .prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
    ) {
        let c = cfg();
        prop_assert_eq!(roc_auc_exact(&pairs, &c), roc_auc_exact(&shuffled, &c));
        prop_assert_eq!(average_precision_exact(&pairs, &c), average_precision_exact(&shuffled, &c));
        // Flipping the labels mirrors the AUC.
        let flipped: Vec<(f64, bool)> = pairs.iter().map(|&(s, y)| (s, !y)).collect();
        if let (Some(a), Some(b)) = (roc_auc_exact(&pairs, &c).value(), roc_auc_exact(&flipped, &c).value()) {
            prop_assert!((a + b - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn multiclass_report_ignores_order_and_batching(
        (rows, shuffled) in prop::collection::vec((0usize..4, 0usize..4, prop::collection::vec(0u32..100, 4), any::<bool>()), 0..400)
            .prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        const CLASSES: [&str; 4] = ["ant", "bee", "cat", "dog"];
        let state = |rows: &[(usize, usize, Vec<u32>, bool)]| {
            let mut st = MulticlassState::new();
            for (y, p, w, scored) in rows {
                let total: u32 = w.iter().sum::<u32>().max(1);
                let scores: Vec<(&str, f64)> = CLASSES.iter().zip(w).map(|(c, k)| (*c, *k as f64 / total as f64)).collect();
                st.observe(CLASSES[*y], CLASSES[*p], scored.then_some(&scores[..])).unwrap();
            }
            st
        };
        let whole = state(&rows).metrics(&cfg());
        let mut merged = MulticlassState::new();
        for part in chunks(&shuffled, &cuts) {
            merged.merge(&state(&part)).unwrap();
        }
        let m = merged.metrics(&cfg());
        assert_json_close(&json(&whole), &json(&m), 1e-9, "multiclass");
        assert_metrics_sane(&json(&m), "multiclass");
    }

    #[test]
    fn regression_report_ignores_order_and_batching(
        (rows, shuffled) in prop::collection::vec((prop_oneof![Just(0.0), -1e3f64..1e3], -1e3f64..1e3), 0..400)
            .prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let state = |rows: &[(f64, f64)]| {
            let mut st = RegressionState::new();
            for &(y, p) in rows {
                st.observe(y, p).unwrap();
            }
            st
        };
        let whole = state(&rows).metrics(&cfg());
        let mut merged = RegressionState::new();
        for part in chunks(&shuffled, &cuts) {
            merged.merge(&state(&part)).unwrap();
        }
        let m = merged.metrics(&cfg());
        assert_json_close(&json(&whole), &json(&m), 1e-9, "regression");
        assert_metrics_sane(&json(&m), "regression");
        // Quantiles come from counts only: bit-identical whatever the split.
        prop_assert_eq!(json(&whole.error_p50), json(&m.error_p50));
    }

    #[test]
    fn sketch_merge_is_exact_and_order_free(
        xs in prop::collection::vec(-1e6f64..1e6, 0..500),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let mut whole = QuantileSketch::new();
        for &x in &xs { whole.observe(x).unwrap(); }
        let mut merged = QuantileSketch::new();
        for part in chunks(&xs, &cuts).iter().rev() {
            let mut s = QuantileSketch::new();
            for &x in part { s.observe(x).unwrap(); }
            merged.merge(&s).unwrap();
        }
        prop_assert_eq!(&whole, &merged);
        let mut sorted = xs.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.05, 0.5, 0.95, 0.99, 1.0] {
            if sorted.is_empty() { prop_assert!(whole.quantile(q).is_none()); continue; }
            let r = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (sorted[r.floor() as usize], sorted[r.ceil() as usize]);
            let exact = lo + (r - r.floor()) * (hi - lo);
            let bound = 0.01 * lo.abs().max(hi.abs()) * (1.0 + 1e-9) + 1e-9;
            prop_assert!((whole.quantile(q).unwrap() - exact).abs() <= bound);
        }
    }

    #[test]
    fn sketch_histogram_counts_values_away_from_bounds_exactly(
        xs in prop::collection::vec(prop_oneof![0.0f64..0.001, 0.001f64..20_000.0], 0..500),
        cuts in prop::collection::vec(any::<usize>(), 0..5),
    ) {
        let bounds = [-1.0, 0.0, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0, 1000.0, 10_000.0];
        let mut whole = QuantileSketch::new();
        for &x in &xs { whole.observe(x).unwrap(); }
        let h = whole.histogram(&bounds);
        prop_assert_eq!(h.count, xs.len() as u64);
        // Cumulative: never decreasing, never above the count; merged parts give the same.
        prop_assert!(h.buckets.windows(2).all(|w| w[0].count <= w[1].count));
        prop_assert!(h.buckets.iter().all(|b| b.count <= h.count));
        let mut merged = QuantileSketch::new();
        for part in chunks(&xs, &cuts) {
            let mut s = QuantileSketch::new();
            for &x in &part { s.observe(x).unwrap(); }
            merged.merge(&s).unwrap();
        }
        prop_assert_eq!(&merged.histogram(&bounds), &h);
        // Exact for every value further than 2 % from the bound; the rest may go either way.
        for b in &h.buckets {
            let sure = xs.iter().filter(|&&x| x <= b.le && (x - b.le).abs() > 0.02 * b.le.abs() + 1e-9).count() as u64;
            let maybe = xs.iter().filter(|&&x| (x - b.le).abs() <= 0.02 * b.le.abs() + 1e-9).count() as u64;
            prop_assert!(b.count >= sure && b.count <= sure + maybe, "le {}: {} not in [{}, {}]", b.le, b.count, sure, sure + maybe);
        }
        let exact: f64 = xs.iter().sum();
        prop_assert!((h.sum - exact).abs() <= 0.01 * exact + 1e-6, "sum {} vs {}", h.sum, exact);
    }

    #[test]
    fn comparing_a_window_with_itself_finds_no_change(rows in binary_rows(600)) {
        let st = binary_state(&rows);
        let c = compare_binary(&st, &st, &cfg());
        let v = json(&c);
        for (name, ch) in v.as_object().unwrap() {
            let ch: Change = serde_json::from_value(ch.clone()).unwrap();
            if let Change::Compared { delta, significant, .. } = ch {
                prop_assert_eq!(delta, 0.0, "{}", name);
                prop_assert!(!significant, "{}", name);
            }
        }
    }
}

#[test]
fn empty_and_one_class_windows_are_typed_outcomes() {
    let c = MetricConfig::default();
    let empty = BinaryState::new().metrics(&c);
    assert!(matches!(empty.accuracy, Metric::Undefined { .. }));
    assert!(matches!(empty.roc_auc, Metric::Undefined { .. }));
    assert_metrics_sane(&json(&empty), "empty");

    let mut st = BinaryState::new();
    for i in 0..100 {
        st.observe(true, Some(i as f64 / 100.0), None).unwrap();
    }
    let r = st.metrics(&c);
    assert_eq!(
        r.roc_auc,
        Metric::Undefined {
            reason: "only one class among the labels".into()
        }
    );
    assert!(matches!(r.specificity, Metric::Undefined { .. }));
    assert!(matches!(r.recall, Metric::Defined { .. }));

    let mut small = BinaryState::new();
    for i in 0..10 {
        small.observe(i % 2 == 0, Some(0.7), None).unwrap();
    }
    assert_eq!(
        small.metrics(&c).accuracy,
        Metric::InsufficientSample { n: 10, min: 30 }
    );
    // Nobody predicted negative: precision defined, specificity 0, not NaN.
    assert!(matches!(
        small
            .metrics(&MetricConfig {
                min_sample: 0,
                ..c.clone()
            })
            .precision,
        Metric::Defined { .. }
    ));

    assert!(matches!(
        RegressionState::new().metrics(&c).r2,
        Metric::Undefined { .. }
    ));
    assert_metrics_sane(
        &json(&RegressionState::new().metrics(&c)),
        "empty regression",
    );
    assert_metrics_sane(
        &json(&MulticlassState::new().metrics(&c)),
        "empty multiclass",
    );
}

#[test]
fn bad_rows_are_rejected_and_change_nothing() {
    let mut st = BinaryState::new();
    assert!(st.observe(true, Some(f64::NAN), None).is_err());
    assert!(st.observe(true, Some(1.5), None).is_err());
    assert!(st.observe(true, None, None).is_err());
    assert_eq!(st, BinaryState::new());
    let mut r = RegressionState::new();
    assert!(r.observe(f64::INFINITY, 1.0).is_err());
    assert!(r.observe(f64::MAX, -f64::MAX).is_err());
    assert_eq!(r, RegressionState::new());
    let mut m = MulticlassState::new();
    assert!(m.observe("a", "b", Some(&[("a", -0.1)][..])).is_err());
    assert_eq!(m, MulticlassState::new());
    assert!(BinaryState::new()
        .merge(&BinaryState::with_threshold(0.3).unwrap())
        .is_err());
}

#[test]
fn invalid_settings_and_corrupt_stored_states_are_errors() {
    assert!(BinaryState::with_threshold(1.5).is_err());
    assert!(BinaryState::with_threshold(f64::NAN).is_err());
    let mut v = json(&BinaryState::new());
    v["hist_pos"] = serde_json::json!([1, 2, 3]);
    assert!(serde_json::from_value::<BinaryState>(v).is_err());
    let mut v = json(&QuantileSketch::new());
    v["relative_accuracy"] = serde_json::json!(0.0);
    assert!(serde_json::from_value::<QuantileSketch>(v).is_err());
}

#[test]
fn significant_drop_in_recall_is_detected() {
    // Baseline: recall 0.80 on 2,000 positives; window: recall 0.70 on 1,000.
    let mut base = BinaryState::new();
    let mut win = BinaryState::new();
    for i in 0..4000 {
        base.observe(i < 2000, None, Some(!(1600..3800).contains(&i)))
            .unwrap();
    }
    for i in 0..2000 {
        win.observe(i < 1000, None, Some(!(700..1900).contains(&i)))
            .unwrap();
    }
    let c = compare_binary(&base, &win, &MetricConfig::default());
    match &c.recall {
        Change::Compared {
            delta,
            relative_delta,
            p_value,
            significant,
            ..
        } => {
            assert!((delta + 0.1).abs() < 1e-12);
            assert!((relative_delta.unwrap() + 0.125).abs() < 1e-12);
            assert!(*p_value < 1e-6 && *significant);
        }
        other => panic!("{other:?}"),
    }
    // "F1 more than 5 % below baseline, and significantly":
    assert!(c.f1.relative_delta().unwrap() < -0.05 && c.f1.is_significant());
    // Scores are absent, so ROC-AUC cannot be compared: a typed reason, not a number.
    assert!(matches!(c.roc_auc, Change::NotComparable { .. }));
}

#[test]
fn prediction_distribution_entropy_and_top_share() {
    let mut d = PredictionDistribution::new();
    for i in 0..400 {
        d.observe(["a", "b", "c", "d"][i % 4]);
    }
    let r = d.report(&MetricConfig::default());
    assert!((r.entropy_bits.value().unwrap() - 2.0).abs() < 1e-12);
    assert!((r.top_class_share.value().unwrap() - 0.25).abs() < 1e-12);
    assert_eq!(r.top_class.as_deref(), Some("a"));
    let mut collapsed = PredictionDistribution::new();
    for _ in 0..400 {
        collapsed.observe("a");
    }
    let r = collapsed.report(&MetricConfig::default());
    assert_eq!(r.entropy_bits.value(), Some(0.0));
    assert_eq!(r.top_class_share.value(), Some(1.0));
}

#[test]
fn json_shape_of_metrics_and_changes_is_the_documented_one() {
    let m = Metric::Defined {
        value: 0.5,
        n: 40,
        ci_low: 0.4,
        ci_high: 0.6,
    };
    assert_eq!(
        json(&m),
        serde_json::json!({"status": "defined", "value": 0.5, "n": 40, "ci_low": 0.4, "ci_high": 0.6})
    );
    assert_eq!(
        json(&Metric::InsufficientSample { n: 3, min: 30 }),
        serde_json::json!({"status": "insufficient_sample", "n": 3, "min": 30})
    );
    assert_eq!(
        json(
            &BinaryState::new()
                .metrics(&MetricConfig::default())
                .precision
        ),
        serde_json::json!({"status": "undefined", "reason": "no predicted positives"})
    );
    let c = Change::Compared {
        baseline: 0.8,
        window: 0.6,
        delta: -0.2,
        relative_delta: Some(-0.25),
        p_value: 0.01,
        significant: true,
        test: modelwatch_stats::perf::Test::TwoProportionZ,
    };
    assert_eq!(
        json(&c),
        serde_json::json!({"status": "compared", "baseline": 0.8, "window": 0.6, "delta": -0.2,
            "relative_delta": -0.25, "p_value": 0.01, "significant": true,
            "test": "two_proportion_z"})
    );
    let report = json(&BinaryState::new().metrics(&MetricConfig::default()));
    assert_eq!(
        report["confusion_matrix"],
        serde_json::json!({"tp": 0, "fp": 0, "tn": 0, "fn": 0})
    );
}

/// A report over hundreds of classes names the 50 with most labelled rows and sums the rest in
/// one `(other classes)` row and column; accuracy and the macro averages still cover every
/// class (checked against a direct count).
#[test]
fn many_classes_give_a_bounded_report_with_metrics_over_every_class() {
    use modelwatch_stats::perf::{MAX_REPORTED_CLASSES, OTHER_CLASSES};
    use std::collections::BTreeMap;
    let mut st = MulticlassState::new();
    let mut rows = Vec::new();
    for i in 0..6000u64 {
        // Every class labelled; the first 60 with more rows.
        let label = if i < 3000 { i % 300 } else { (i * 7) % 60 };
        let predicted = if i % 3 == 0 { (label + i) % 300 } else { label };
        let (l, p) = (format!("c{label}"), format!("c{predicted}"));
        st.observe::<&str>(&l, &p, None).unwrap();
        rows.push((l, p));
    }
    let c = MetricConfig::default();
    let r = st.metrics(&c);
    assert_eq!(r.per_class.len(), MAX_REPORTED_CLASSES);
    assert_eq!(r.classes, 300);
    assert_eq!(r.classes_omitted, 250);
    let cm = &r.confusion_matrix;
    assert_eq!(cm.labels.len(), MAX_REPORTED_CLASSES + 1);
    assert_eq!(cm.labels.last().unwrap(), OTHER_CLASSES);
    assert_eq!(cm.counts.iter().flatten().sum::<u64>(), 6000);
    // The named classes are those with most labelled rows.
    let mut support: BTreeMap<&str, u64> = BTreeMap::new();
    for (l, _) in &rows {
        *support.entry(l).or_default() += 1;
    }
    let least_named = r.per_class.values().map(|m| m.support).min().unwrap();
    let named: Vec<&String> = r.per_class.keys().collect();
    assert!(support
        .iter()
        .filter(|(k, _)| !named.iter().any(|n| n.as_str() == **k))
        .all(|(_, s)| *s <= least_named));
    // Accuracy and macro F1 over all 300 classes, counted directly.
    let correct = rows.iter().filter(|(l, p)| l == p).count() as f64;
    assert!((r.accuracy.value().unwrap() - correct / 6000.0).abs() < 1e-12);
    let mut f1s = Vec::new();
    for k in 0..300 {
        let c = format!("c{k}");
        let tp = rows.iter().filter(|(l, p)| *l == c && *p == c).count() as f64;
        let fp = rows.iter().filter(|(l, p)| *l != c && *p == c).count() as f64;
        let fn_ = rows.iter().filter(|(l, p)| *l == c && *p != c).count() as f64;
        if tp + fp + fn_ > 0.0 {
            f1s.push(2.0 * tp / (2.0 * tp + fp + fn_));
        }
    }
    let macro_f1 = f1s.iter().sum::<f64>() / f1s.len() as f64;
    assert!((r.f1_macro.value().unwrap() - macro_f1).abs() < 1e-12);
    // A class asked for by name (an alert rule's) is named too, however few its rows.
    let small = "c299";
    assert!(!r.per_class.contains_key(small));
    let named = MetricConfig {
        named_classes: vec![small.to_owned(), "no-such-class".to_owned()],
        ..MetricConfig::default()
    };
    let r = st.metrics(&named);
    assert!(r.per_class.contains_key(small));
    assert_eq!(r.per_class.len(), MAX_REPORTED_CLASSES + 1);
    assert_eq!(r.classes_omitted, 249);
    assert!(r.confusion_matrix.labels.iter().any(|l| l == small));
}
