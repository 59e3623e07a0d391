//! Invariants of the drift statistics, with proptest.

use modelwatch_stats::drift::*;
use proptest::prelude::*;

fn counts(len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0u32..1000, len).prop_map(|v| v.into_iter().map(f64::from).collect())
}

fn nonzero_pair() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (2usize..12)
        .prop_flat_map(|k| (counts(k), counts(k)))
        .prop_filter("both sides non-empty", |(a, b)| {
            a.iter().sum::<f64>() > 0.0 && b.iter().sum::<f64>() > 0.0
        })
}

fn sample(max: usize) -> impl Strategy<Value = Vec<f64>> {
    // Rounded values so ties occur.
    prop::collection::vec((-500i32..500).prop_map(|v| f64::from(v) / 10.0), 1..max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn psi_kl_are_non_negative((r, c) in nonzero_pair()) {
        prop_assert!(psi(&r, &c).unwrap() >= 0.0);
        prop_assert!(kl_divergence(&r, &c).unwrap() >= 0.0);
    }

    #[test]
    fn js_and_hellinger_are_symmetric_and_bounded((r, c) in nonzero_pair()) {
        let (a, b) = (jensen_shannon(&r, &c).unwrap(), jensen_shannon(&c, &r).unwrap());
        prop_assert!((a - b).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&a));
        let (h1, h2) = (hellinger(&r, &c).unwrap(), hellinger(&c, &r).unwrap());
        prop_assert!((h1 - h2).abs() < 1e-12);
        prop_assert!((0.0..=1.0).contains(&h1));
    }

    #[test]
    fn identical_counts_give_zero(r in counts(8)) {
        prop_assume!(r.iter().sum::<f64>() > 0.0);
        prop_assert!(psi(&r, &r).unwrap().abs() < 1e-15);
        prop_assert!(jensen_shannon(&r, &r).unwrap() < 1e-7);
        prop_assert!(hellinger(&r, &r).unwrap() < 1e-7);
        let chi = chi2_contingency(&r, &r).unwrap();
        prop_assert!(chi.statistic < 1e-9);
        prop_assert!(chi.p_value > 0.99);
    }

    #[test]
    fn ks_in_unit_interval_and_zero_on_identical_samples(a in sample(200), b in sample(200)) {
        let ks = ks_2samp(&a, &b).unwrap();
        prop_assert!((0.0..=1.0).contains(&ks.statistic));
        prop_assert!((0.0..=1.0).contains(&ks.p_value));
        let same = ks_2samp(&a, &a).unwrap();
        prop_assert_eq!(same.statistic, 0.0);
        prop_assert_eq!(same.p_value, 1.0);
        prop_assert_eq!(wasserstein_distance(&a, &a).unwrap(), 0.0);
    }

    #[test]
    fn gap_method_equals_sorting_method(a in sample(300), b in sample(300)) {
        let r = SortedReference::new(&a);
        let g = r.gaps(&b);
        let fast = r.ks(&g).unwrap();
        let slow = ks_2samp(&a, &b).unwrap();
        prop_assert!((fast.statistic - slow.statistic).abs() < 1e-12);
        prop_assert_eq!(fast.p_value, slow.p_value);
        let (w1, w2) = (r.wasserstein(&g, &b).unwrap(), wasserstein_distance(&a, &b).unwrap());
        prop_assert!((w1 - w2).abs() <= 1e-9 * w2.max(1.0));
    }

    #[test]
    fn row_order_does_not_matter(a in sample(200), b in sample(200), seed in any::<u64>()) {
        let mut shuffled = b.clone();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let r = SortedReference::new(&a);
        prop_assert_eq!(r.ks(&r.gaps(&b)), r.ks(&r.gaps(&shuffled)));
        let (w1, w2) = (
            r.wasserstein(&r.gaps(&b), &b).unwrap(),
            r.wasserstein(&r.gaps(&shuffled), &shuffled).unwrap(),
        );
        prop_assert!((w1 - w2).abs() <= 1e-9 * w1.max(1.0));
        let mut sorted = a.clone();
        sorted.sort_by(f64::total_cmp);
        let e = BinEdges::from_sorted_reference(&sorted, 10);
        prop_assert_eq!(e.counts(&b), e.counts(&shuffled));
    }

    #[test]
    fn binned_counts_merge(a in sample(300), w1 in sample(200), w2 in sample(200)) {
        // Two windows' bin counts added = the union's bin counts, so every binned
        // statistic of the merged aggregate equals the statistic of the union.
        let mut sorted = a.clone();
        sorted.sort_by(f64::total_cmp);
        let e = BinEdges::from_sorted_reference(&sorted, 10);
        let union: Vec<f64> = w1.iter().chain(&w2).copied().collect();
        let merged: Vec<f64> = e.counts(&w1).iter().zip(e.counts(&w2)).map(|(x, y)| (x + y) as f64).collect();
        let direct: Vec<f64> = e.counts(&union).iter().map(|&x| x as f64).collect();
        prop_assert_eq!(&merged, &direct);
        let r: Vec<f64> = e.counts(&a).iter().map(|&x| x as f64).collect();
        prop_assert_eq!(psi(&r, &merged), psi(&r, &direct));
        prop_assert_eq!(chi2_contingency(&r, &merged), chi2_contingency(&r, &direct));
        // Gap counts merge too (KS on merged windows without the raw rows).
        let sr = SortedReference::new(&a);
        let (mut gm, g2, gu) = (sr.gaps(&w1), sr.gaps(&w2), sr.gaps(&union));
        gm.merge(&g2);
        prop_assert_eq!(sr.ks(&gm), sr.ks(&gu));
    }

    #[test]
    fn categorical_merge_and_unseen_kept(
        w1 in prop::collection::vec(0usize..8, 0..100),
        w2 in prop::collection::vec(0usize..8, 0..100),
    ) {
        let names = ["a", "b", "c", "d", "e", "x", "y", "z"];
        let idx = CategoryIndex::new(&["a", "b", "c", "d", "e"].map(String::from));
        let col = |w: &[usize]| w.iter().map(|&i| Some(names[i])).collect::<Vec<_>>();
        let (mut t1, _) = idx.count(col(&w1));
        let (t2, _) = idx.count(col(&w2));
        let union: Vec<usize> = w1.iter().chain(&w2).copied().collect();
        let (tu, _) = idx.count(col(&union));
        t1.merge(&t2);
        prop_assert_eq!(&t1, &tu);
        prop_assert_eq!(tu.total(), union.len() as u64);
        prop_assert_eq!(tu.unseen_total(), union.iter().filter(|&&i| i >= 5).count() as u64);
    }
}

fn report_for(reference: &[f64], current: &[f64]) -> DriftReport {
    let profile = ReferenceProfile::build(
        &[("x", Column::Numeric(reference))],
        ProfileOptions::default(),
    );
    drift_report(
        &profile,
        &[("x", Column::Numeric(current))],
        &DriftConfig::default(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(50))]

    #[test]
    fn identical_samples_never_drift(a in prop::collection::vec(-1000i32..1000, 30..400)) {
        let a: Vec<f64> = a.into_iter().map(f64::from).collect();
        let r = report_for(&a, &a);
        let f = &r.features[0];
        prop_assert_eq!(&f.status, &FeatureStatus::Evaluated);
        prop_assert_eq!(f.statistic, Some(0.0));
        prop_assert!(!f.drifted);
        prop_assert!(!r.dataset_drift);
    }
}

#[test]
fn degenerate_inputs_are_typed_outcomes_not_nan() {
    let reference: Vec<f64> = (0..100).map(f64::from).collect();
    // Empty current.
    let r = report_for(&reference, &[]);
    assert_eq!(r.features[0].status, FeatureStatus::NoCurrentData);
    assert!(!r.features[0].drifted);
    assert_eq!(r.evaluated_features, 0);
    assert!(!r.dataset_drift);
    // All-null current (NaN = null), counted.
    let r = report_for(&reference, &[f64::NAN; 50]);
    assert_eq!(r.features[0].status, FeatureStatus::NoCurrentData);
    assert_eq!(r.features[0].current_missing.nulls, 50);
    // All-null reference.
    let r = report_for(&[f64::NAN; 10], &reference);
    assert_eq!(r.features[0].status, FeatureStatus::NoReferenceData);
    // Too few rows.
    let r = report_for(&reference, &[1.0, 2.0]);
    assert_eq!(
        r.features[0].status,
        FeatureStatus::InsufficientData { min_rows: 30 }
    );
    // Constant reference: discrete -> chi-squared on per-value bins; a shifted current drifts.
    let constant = vec![5.0; 200];
    let shifted: Vec<f64> = (0..200).map(|i| 5.0 + f64::from(i % 2)).collect();
    let r = report_for(&constant, &shifted);
    let f = &r.features[0];
    assert_eq!(f.status, FeatureStatus::Evaluated);
    assert_eq!(f.method, Method::ChiSquared);
    assert!(f.drifted);
    assert_eq!(
        f.secondary.wasserstein_normed, None,
        "std 0: undefined, not NaN/inf"
    );
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"));
    // Normed Wasserstein forced on a constant reference: Undefined, not NaN.
    let profile = ReferenceProfile::build(
        &[("x", Column::Numeric(&constant))],
        ProfileOptions::default(),
    );
    let mut cfg = DriftConfig::default();
    cfg.overrides.insert("x".into(), Method::WassersteinNormed);
    let r = drift_report(&profile, &[("x", Column::Numeric(&shifted))], &cfg);
    assert!(matches!(
        r.features[0].status,
        FeatureStatus::Undefined { .. }
    ));
    // Missing column and kind mismatch.
    let r = drift_report(&profile, &[], &DriftConfig::default());
    assert_eq!(r.features[0].status, FeatureStatus::MissingColumn);
    let cats = [Some("a"); 40];
    let r = drift_report(
        &profile,
        &[("x", Column::Categorical(&cats))],
        &DriftConfig::default(),
    );
    assert_eq!(
        r.features[0].status,
        FeatureStatus::KindMismatch {
            current: FeatureKind::Categorical
        }
    );
}

#[test]
fn unseen_categories_are_counted_and_drive_drift() {
    let reference: Vec<Option<&str>> = (0..1000).map(|i| Some(["a", "b", "c"][i % 3])).collect();
    let mut current = reference.clone();
    for v in current.iter_mut().take(300) {
        *v = Some("new");
    }
    current.push(None);
    let profile = ReferenceProfile::build(
        &[("c", Column::Categorical(&reference))],
        ProfileOptions::default(),
    );
    let r = drift_report(
        &profile,
        &[("c", Column::Categorical(&current))],
        &DriftConfig::default(),
    );
    let f = &r.features[0];
    assert_eq!(f.unseen_rows, Some(300));
    assert_eq!(f.unseen_categories, vec![("new".to_string(), 300)]);
    assert_eq!(f.current_missing.nulls, 1);
    assert!(f.drifted);
}

#[test]
fn boolean_uses_yates_2x2() {
    let reference: Vec<Option<bool>> = (0..1000).map(|i| Some(i % 10 < 3)).collect();
    let current: Vec<Option<bool>> = (0..48).map(|i| Some(i % 3 == 0)).collect();
    let profile = ReferenceProfile::build(
        &[("b", Column::Boolean(&reference))],
        ProfileOptions::default(),
    );
    let r = drift_report(
        &profile,
        &[("b", Column::Boolean(&current))],
        &DriftConfig::default(),
    );
    let f = &r.features[0];
    assert_eq!(f.method, Method::ChiSquared);
    assert_eq!(f.secondary.chi2_dof, Some(1));
    let direct = chi2_contingency(&[700.0, 300.0], &[32.0, 16.0]).unwrap();
    assert_eq!(f.statistic, Some(direct.statistic));
}

#[test]
fn large_sample_tiny_shift_is_significant_but_not_drift() {
    // 200k vs 200k with a 0.02 sd shift: KS p-value ~6e-6, effect (D ~0.008) far below 0.05.
    let n = 200_000;
    let reference: Vec<f64> = (0..n)
        .map(|i| probit((i as f64 + 0.5) / n as f64))
        .collect();
    let current: Vec<f64> = reference.iter().map(|x| x + 0.02).collect();
    let r = report_for(&reference, &current);
    let f = &r.features[0];
    assert!(f.p_value.unwrap() < 1e-4, "p {:?}", f.p_value);
    assert!(
        !f.drifted,
        "effect {:?} below {}",
        f.effect_size, f.threshold
    );
}

/// Inverse normal CDF (Acklam's rational approximation; enough for test data).
fn probit(p: f64) -> f64 {
    let a = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    let b = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    let c = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    let d = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    } else {
        -probit(1.0 - p)
    }
}

#[test]
fn profile_and_report_round_trip_through_json() {
    let num: Vec<f64> = (0..500).map(|i| f64::from(i % 97) * 0.37).collect();
    let cur: Vec<f64> = (0..400).map(|i| f64::from(i % 89) * 0.41).collect();
    let cats: Vec<Option<&str>> = (0..500).map(|i| Some(["a", "b", "c"][i % 3])).collect();
    let cur_cats: Vec<Option<&str>> = (0..400).map(|i| Some(["a", "b", "z"][i % 3])).collect();
    let profile = ReferenceProfile::build(
        &[
            ("n", Column::Numeric(&num)),
            ("c", Column::Categorical(&cats)),
        ],
        ProfileOptions::default(),
    );
    let current = [
        ("n", Column::Numeric(&cur)),
        ("c", Column::Categorical(&cur_cats)),
    ];
    let cfg = DriftConfig::default();
    let before = drift_report(&profile, &current, &cfg);
    let json = serde_json::to_string(&profile).unwrap();
    // Read back without prepare(): lookups fall back to slower paths, results are the same.
    let raw: ReferenceProfile = serde_json::from_str(&json).unwrap();
    let mut prepared = raw.clone();
    prepared.prepare();
    for p in [&raw, &prepared] {
        let after = drift_report(p, &current, &cfg);
        for (a, b) in before.features.iter().zip(&after.features) {
            assert_eq!(a.drifted, b.drifted, "{}", a.feature);
            assert_eq!(a.unseen_rows, b.unseen_rows);
            let (x, y) = (a.statistic.unwrap(), b.statistic.unwrap());
            assert!(
                (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                "{}: {x} vs {y}",
                a.feature
            );
        }
    }
    let report_json = serde_json::to_string(&before).unwrap();
    let back: DriftReport = serde_json::from_str(&report_json).unwrap();
    assert_eq!(back.features.len(), 2);
    let config: DriftConfig =
        serde_json::from_str(r#"{"alpha": 0.01, "overrides": {"n": "psi"}}"#).unwrap();
    assert_eq!(config.overrides["n"], Method::Psi);
    assert!(
        serde_json::from_str::<DriftConfig>(r#"{"alpah": 0.01}"#).is_err(),
        "unknown keys are errors"
    );
}
