//! The intervals and tests mean what they say: simulated windows from a known population
//! (seeded, deterministic) — 95 % intervals cover the true value about 95 % of the time, and
//! the baseline tests flag about 5 % of windows when nothing changed.

use modelwatch_stats::perf::{
    compare_binary, BinaryState, Change, Metric, MetricConfig, RegressionState,
};

/// splitmix64: a tiny, fixed generator so the simulation is identical on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

const REPS: usize = 1000;

/// A window of `n` rows: 40 % positives, scores sigmoid(N(1, 1)) for positives and
/// sigmoid(N(0, 1)) for negatives, so the true ROC-AUC is Φ(1/√2).
fn window(rng: &mut Rng, n: usize) -> BinaryState {
    let mut st = BinaryState::new();
    for _ in 0..n {
        let y = rng.uniform() < 0.4;
        let z = rng.normal() + if y { 1.0 } else { 0.0 };
        st.observe(y, Some(1.0 / (1.0 + (-z).exp())), None).unwrap();
    }
    st
}

fn covers(m: &Metric, truth: f64) -> bool {
    let (lo, hi) = m.ci().expect("defined");
    lo <= truth && truth <= hi
}

#[track_caller]
fn assert_rate(what: &str, hits: usize, lo: f64, hi: f64) {
    let rate = hits as f64 / REPS as f64;
    println!("{what}: {rate}");
    assert!(
        (lo..=hi).contains(&rate),
        "{what}: rate {rate} outside [{lo}, {hi}]"
    );
}

/// Φ(x) via the complementary error function.
fn phi(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

#[test]
fn binary_intervals_cover_the_true_value_about_95_percent() {
    let mut rng = Rng(7);
    let true_auc = phi(1.0 / 2f64.sqrt());
    // Threshold 0.5 ⇔ z ≥ 0: TPR = Φ(1), FPR = 1 − Φ(0) = 0.5.
    let tpr = phi(1.0);
    let (tp, fp, fn_) = (0.4 * tpr, 0.6 * 0.5, 0.4 * (1.0 - tpr));
    let true_f1 = 2.0 * tp / (2.0 * tp + fp + fn_);
    let true_acc = tp + 0.6 * 0.5;
    let true_recall = tpr;
    let cfg = MetricConfig::default();
    let (mut auc_exact, mut auc_binned, mut f1, mut acc, mut recall) = (0, 0, 0, 0, 0);
    for _ in 0..REPS {
        // 400 rows: exact ranking path; 1,500 rows: binned.
        let small = window(&mut rng, 400).metrics(&cfg);
        let large = window(&mut rng, 1500).metrics(&cfg);
        auc_exact += covers(&small.roc_auc, true_auc) as usize;
        auc_binned += covers(&large.roc_auc, true_auc) as usize;
        f1 += covers(&small.f1, true_f1) as usize;
        acc += covers(&small.accuracy, true_acc) as usize;
        recall += covers(&small.recall, true_recall) as usize;
    }
    assert_rate("AUC DeLong (exact)", auc_exact, 0.93, 0.97);
    assert_rate("AUC DeLong (binned)", auc_binned, 0.93, 0.97);
    assert_rate("F1 via Wilson", f1, 0.93, 0.97);
    assert_rate("accuracy Wilson", acc, 0.93, 0.97);
    assert_rate("recall Wilson", recall, 0.93, 0.97);
}

#[test]
fn baseline_tests_flag_about_5_percent_when_nothing_changed() {
    let mut rng = Rng(11);
    let cfg = MetricConfig::default();
    let (mut acc, mut f1, mut auc, mut ll) = (0, 0, 0, 0);
    for _ in 0..REPS {
        let base = window(&mut rng, 600);
        let win = window(&mut rng, 400);
        let c = compare_binary(&base, &win, &cfg);
        let sig = |ch: &Change| match ch {
            Change::Compared { significant, .. } => *significant as usize,
            other => panic!("{other:?}"),
        };
        acc += sig(&c.accuracy);
        f1 += sig(&c.f1);
        auc += sig(&c.roc_auc);
        ll += sig(&c.log_loss);
    }
    assert_rate("accuracy two-proportion z", acc, 0.03, 0.07);
    assert_rate("F1 test", f1, 0.03, 0.07);
    assert_rate("AUC DeLong unpaired", auc, 0.03, 0.07);
    assert_rate("log loss Welch z", ll, 0.03, 0.07);
}

#[test]
fn regression_intervals_cover_the_true_value_about_95_percent() {
    let mut rng = Rng(13);
    let cfg = MetricConfig::default();
    // Errors N(0.2, 1): MAE = E|e|, MSE = 1.04, bias 0.2, median error 0.2.
    let (mu, sd) = (0.2f64, 1.0f64);
    let true_mae = sd * (2.0 / std::f64::consts::PI).sqrt() * (-(mu * mu) / 2.0).exp()
        + mu * (1.0 - 2.0 * phi(-mu / sd));
    let (mut mae, mut mse, mut bias, mut p50) = (0, 0, 0, 0);
    for _ in 0..REPS {
        let mut st = RegressionState::new();
        for _ in 0..300 {
            let y = 10.0 + 3.0 * rng.normal();
            st.observe(y, y + mu + sd * rng.normal()).unwrap();
        }
        let r = st.metrics(&cfg);
        mae += covers(&r.mae, true_mae) as usize;
        mse += covers(&r.mse, mu * mu + sd * sd) as usize;
        bias += covers(&r.mean_error, mu) as usize;
        p50 += covers(&r.error_p50, mu) as usize;
    }
    assert_rate("MAE", mae, 0.93, 0.97);
    assert_rate("MSE", mse, 0.92, 0.97);
    assert_rate("mean error", bias, 0.93, 0.97);
    assert_rate("median error (order statistics)", p50, 0.93, 0.97);
}
