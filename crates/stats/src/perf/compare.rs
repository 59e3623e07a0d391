//! Change of each metric of a window against a baseline (reference) state, with a test.
//!
//! The baseline and the window are taken as independent samples (different rows). Every test
//! is two-sided at `MetricConfig::alpha`.

use serde::{Deserialize, Serialize};

use super::binary::{balanced_accuracy_est, mcc_value, BinaryConfusion, BinaryState};
use super::multiclass::MulticlassState;
use super::outcome::{two_sided_p, Metric, MetricConfig, Z95};
use super::rank;
use super::regression::RegressionState;

/// The significance test behind a [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// Pooled two-proportion z-test on the metric's counts.
    TwoProportionZ,
    /// F1 = 2p/(1+p) is monotone in p = TP/(TP+FP+FN), so equal F1 ⇔ equal p: a pooled
    /// two-proportion z-test on p.
    F1ViaTwoProportionZ,
    /// Unpaired DeLong: (A₁ − A₂) / sqrt(Var₁ + Var₂) with each side's DeLong variance.
    DelongUnpaired,
    /// Difference of Fisher z-transformed correlations, se sqrt(1/(n₁−3) + 1/(n₂−3)).
    FisherZ,
    /// Difference of two estimates over sqrt of the sum of their variances (means: Welch's
    /// z; other metrics: the variance their interval uses).
    NormalApprox,
}

impl Test {
    /// The test's name as serialised (snake_case).
    pub fn name(self) -> &'static str {
        match self {
            Test::TwoProportionZ => "two_proportion_z",
            Test::F1ViaTwoProportionZ => "f1_via_two_proportion_z",
            Test::DelongUnpaired => "delong_unpaired",
            Test::FisherZ => "fisher_z",
            Test::NormalApprox => "normal_approx",
        }
    }
}

/// How one metric moved against the baseline. JSON internally tagged by `status`:
/// `{"status":"compared","baseline":0.81,"window":0.76,"delta":-0.05,
///   "relative_delta":-0.0617,"p_value":0.003,"significant":true,"test":"two_proportion_z"}`
/// or `{"status":"not_comparable","reason":"window: insufficient sample (n = 12 < 30)"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Change {
    /// Both sides defined.
    Compared {
        /// Baseline value.
        baseline: f64,
        /// Window value.
        window: f64,
        /// `window − baseline`.
        delta: f64,
        /// `delta / |baseline|`; `null` when the baseline is 0.
        relative_delta: Option<f64>,
        /// Two-sided p-value of "no change".
        p_value: f64,
        /// `p_value < alpha`.
        significant: bool,
        /// The test used.
        test: Test,
    },
    /// A side's metric is not defined (or has too few rows).
    NotComparable {
        /// Which side, and why.
        reason: String,
    },
}

impl Change {
    /// `delta / |baseline|` when compared.
    pub fn relative_delta(&self) -> Option<f64> {
        match self {
            Change::Compared { relative_delta, .. } => *relative_delta,
            Change::NotComparable { .. } => None,
        }
    }

    /// Whether the change is statistically significant.
    pub fn is_significant(&self) -> bool {
        matches!(
            self,
            Change::Compared {
                significant: true,
                ..
            }
        )
    }
}

fn why(side: &str, m: &Metric) -> Option<String> {
    match m {
        Metric::Defined { .. } => None,
        Metric::InsufficientSample { n, min } => {
            Some(format!("{side}: insufficient sample (n = {n} < {min})"))
        }
        Metric::Undefined { reason } => Some(format!("{side}: {reason}")),
    }
}

/// Builds the change once both sides are known to be defined; `p` computes the p-value.
fn change(
    base: &Metric,
    win: &Metric,
    test: Test,
    config: &MetricConfig,
    p: impl FnOnce() -> f64,
) -> Change {
    if let Some(reason) = why("baseline", base).or_else(|| why("window", win)) {
        return Change::NotComparable { reason };
    }
    let (b, w) = (
        base.value().expect("defined"),
        win.value().expect("defined"),
    );
    let p_value = p();
    let p_value = if p_value.is_finite() { p_value } else { 1.0 };
    compared(b, w, p_value, test, config)
}

/// Two defined values and the p-value of their difference under `test`.
fn compared(b: f64, w: f64, p_value: f64, test: Test, config: &MetricConfig) -> Change {
    Change::Compared {
        baseline: b,
        window: w,
        delta: w - b,
        relative_delta: (b != 0.0).then(|| (w - b) / b.abs()),
        p_value,
        significant: p_value < config.alpha,
        test,
    }
}

/// Pooled two-proportion z-test of k₁/n₁ = k₂/n₂.
fn two_proportion_p(k1: u64, n1: u64, k2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let pooled = (k1 + k2) as f64 / (n1 + n2) as f64;
    let var = pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64);
    // Pooled p of 0 or 1 means both sides are all-0 or all-1: no difference.
    if var <= 0.0 {
        return 1.0;
    }
    two_sided_p((p1 - p2) / var.sqrt())
}

/// z-test of a difference of two estimates with known variances.
fn normal_p(a: (f64, f64), b: (f64, f64)) -> f64 {
    let var = a.1 + b.1;
    let d = a.0 - b.0;
    if var <= 0.0 {
        return if d == 0.0 { 1.0 } else { 0.0 };
    }
    two_sided_p(d / var.sqrt())
}

/// [`normal_p`] of two estimates (value, variance); 1 (no evidence of a change) when either
/// side has none.
fn normal_p_of(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) => normal_p(a, b),
        _ => 1.0,
    }
}

/// Binary metrics of a window against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct BinaryComparison {
    pub accuracy: Change,
    pub precision: Change,
    pub recall: Change,
    pub specificity: Change,
    pub fpr: Change,
    pub fnr: Change,
    pub f1: Change,
    pub balanced_accuracy: Change,
    pub mcc: Change,
    pub roc_auc: Change,
    pub average_precision: Change,
    pub log_loss: Change,
    pub brier_score: Change,
    pub ece: Change,
}

/// Compares every binary metric of `window` with `baseline`. Proportions: pooled
/// two-proportion z-test; F1: the same test on TP/(TP+FP+FN) (see [`Test`]); ROC-AUC: unpaired
/// DeLong; MCC: Fisher z; average precision, log loss, Brier, ECE, balanced accuracy: normal
/// approximation with the variances behind their intervals.
pub fn compare_binary(
    baseline: &BinaryState,
    window: &BinaryState,
    config: &MetricConfig,
) -> BinaryComparison {
    let (rb, rw) = (baseline.metrics(config), window.metrics(config));
    let (cb, cw) = (baseline.confusion_matrix(), window.confusion_matrix());
    // A proportion's successes and trials in a confusion matrix, the same for both sides.
    let prop = |bm: &Metric, wm: &Metric, part: fn(&BinaryConfusion) -> (u64, u64)| {
        let ((kb, nb), (kw, nw)) = (part(&cb), part(&cw));
        change(bm, wm, Test::TwoProportionZ, config, || {
            two_proportion_p(kb, nb, kw, nw)
        })
    };
    let est = |bm: &Metric, wm: &Metric, b: Option<(f64, f64)>, w: Option<(f64, f64)>| {
        change(bm, wm, Test::NormalApprox, config, || normal_p_of(b, w))
    };
    BinaryComparison {
        accuracy: prop(&rb.accuracy, &rw.accuracy, |c| (c.tp + c.tn, c.total())),
        precision: prop(&rb.precision, &rw.precision, |c| (c.tp, c.tp + c.fp)),
        recall: prop(&rb.recall, &rw.recall, |c| (c.tp, c.tp + c.fn_)),
        specificity: prop(&rb.specificity, &rw.specificity, |c| (c.tn, c.tn + c.fp)),
        fpr: prop(&rb.fpr, &rw.fpr, |c| (c.fp, c.tn + c.fp)),
        fnr: prop(&rb.fnr, &rw.fnr, |c| (c.fn_, c.tp + c.fn_)),
        f1: change(&rb.f1, &rw.f1, Test::F1ViaTwoProportionZ, config, || {
            two_proportion_p(cb.tp, cb.tp + cb.fp + cb.fn_, cw.tp, cw.tp + cw.fp + cw.fn_)
        }),
        balanced_accuracy: est(
            &rb.balanced_accuracy,
            &rw.balanced_accuracy,
            balanced_accuracy_est(&cb),
            balanced_accuracy_est(&cw),
        ),
        mcc: change(&rb.mcc, &rw.mcc, Test::FisherZ, config, || {
            match (mcc_value(&cb), mcc_value(&cw)) {
                (Some(a), Some(b)) if cb.total() > 3 && cw.total() > 3 => {
                    let z = |r: f64| r.clamp(-1.0 + 1e-15, 1.0 - 1e-15).atanh();
                    let var = 1.0 / (cb.total() - 3) as f64 + 1.0 / (cw.total() - 3) as f64;
                    two_sided_p((z(b) - z(a)) / var.sqrt())
                }
                _ => 1.0,
            }
        }),
        roc_auc: change(
            &rb.roc_auc,
            &rw.roc_auc,
            Test::DelongUnpaired,
            config,
            || {
                let estimate = |s: &BinaryState| s.auc_stats().map(|a| (a.auc, a.var));
                normal_p_of(estimate(baseline), estimate(window))
            },
        ),
        average_precision: est(
            &rb.average_precision,
            &rw.average_precision,
            rb.average_precision
                .value()
                .map(|v| (v, rank::ap_var(v, baseline.n_pos_scored()))),
            rw.average_precision
                .value()
                .map(|v| (v, rank::ap_var(v, window.n_pos_scored()))),
        ),
        log_loss: est(
            &rb.log_loss,
            &rw.log_loss,
            baseline.log_loss_est(),
            window.log_loss_est(),
        ),
        brier_score: est(
            &rb.brier_score,
            &rw.brier_score,
            baseline.brier_est(),
            window.brier_est(),
        ),
        ece: est(&rb.ece, &rw.ece, baseline.ece_est(), window.ece_est()),
    }
}

/// Multiclass metrics of a window against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MulticlassComparison {
    pub accuracy: Change,
    pub f1_macro: Change,
    pub roc_auc: Change,
    pub log_loss: Change,
}

/// Compares the headline multiclass metrics: accuracy (two-proportion z), macro F1, macro
/// one-vs-rest ROC-AUC and log loss (normal approximation with the interval's variance).
pub fn compare_multiclass(
    baseline: &MulticlassState,
    window: &MulticlassState,
    config: &MetricConfig,
) -> MulticlassComparison {
    let (rb, rw) = (baseline.metrics(config), window.metrics(config));
    MulticlassComparison {
        accuracy: change(
            &rb.accuracy,
            &rw.accuracy,
            Test::TwoProportionZ,
            config,
            || two_proportion_p(baseline.correct(), rb.n, window.correct(), rw.n),
        ),
        f1_macro: change(
            &rb.f1_macro,
            &rw.f1_macro,
            Test::NormalApprox,
            config,
            || normal_p_of(baseline.f1_macro_est(), window.f1_macro_est()),
        ),
        roc_auc: change(&rb.roc_auc, &rw.roc_auc, Test::NormalApprox, config, || {
            normal_p_of(baseline.roc_auc_est(), window.roc_auc_est())
        }),
        log_loss: change(
            &rb.log_loss,
            &rw.log_loss,
            Test::NormalApprox,
            config,
            || normal_p_of(baseline.log_loss_est(), window.log_loss_est()),
        ),
    }
}

/// Regression metrics of a window against a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RegressionComparison {
    pub mae: Change,
    pub mse: Change,
    pub mape: Change,
    pub mean_error: Change,
}

/// Compares the mean-type regression metrics with Welch's z (difference of means over the sum
/// of their squared standard errors; at n ≥ `min_sample` the normal is close to Student's t).
pub fn compare_regression(
    baseline: &RegressionState,
    window: &RegressionState,
    config: &MetricConfig,
) -> RegressionComparison {
    let (rb, rw) = (baseline.metrics(config), window.metrics(config));
    let est = |bm: &Metric, wm: &Metric, b: Option<(f64, f64)>, w: Option<(f64, f64)>| {
        change(bm, wm, Test::NormalApprox, config, || normal_p_of(b, w))
    };
    RegressionComparison {
        mae: est(&rb.mae, &rw.mae, baseline.mae_est(), window.mae_est()),
        mse: est(&rb.mse, &rw.mse, baseline.mse_est(), window.mse_est()),
        mape: est(&rb.mape, &rw.mape, baseline.mape_est(), window.mape_est()),
        mean_error: est(
            &rb.mean_error,
            &rw.mean_error,
            baseline.mean_error_est(),
            window.mean_error_est(),
        ),
    }
}

/// A proportion `k / n` of one window against another (error rate, label coverage): the
/// pooled two-proportion z-test, as for accuracy. Not comparable when a side has no rows.
pub fn compare_proportion(base: (u64, u64), window: (u64, u64), config: &MetricConfig) -> Change {
    let ((kb, nb), (kw, nw)) = (base, window);
    if nb == 0 || nw == 0 {
        let side = if nb == 0 { "baseline" } else { "window" };
        return Change::NotComparable {
            reason: format!("{side}: no rows"),
        };
    }
    let (b, w) = (kb as f64 / nb as f64, kw as f64 / nw as f64);
    let p_value = two_proportion_p(kb, nb, kw, nw);
    compared(b, w, p_value, Test::TwoProportionZ, config)
}

/// Event counts of two windows of the same length (prediction volume). With no change of rate
/// each count is Poisson with the same mean, so `(k₂ − k₁) / √(k₁ + k₂)` is standard normal
/// (a normal approximation whose square is the chi-squared goodness-of-fit statistic of
/// `[k₁, k₂]` against equal expected counts).
pub fn compare_counts(base: u64, window: u64, config: &MetricConfig) -> Change {
    let (b, w) = (base as f64, window as f64);
    let p_value = normal_p((w, w), (b, b));
    // Counts are never negative: |b| is b.
    compared(b, w, p_value, Test::NormalApprox, config)
}

/// Two values known only by their 95 % intervals (average confidence, latency quantiles):
/// the standard error of each is taken as its interval's width over `2 · Z95`, and the
/// difference over the square root of the summed variances is standard normal.
pub fn compare_by_interval(base: &Metric, window: &Metric, config: &MetricConfig) -> Change {
    let var = |m: &Metric| match m {
        Metric::Defined {
            value,
            ci_low,
            ci_high,
            ..
        } => Some((*value, ((ci_high - ci_low) / (2.0 * Z95)).powi(2))),
        _ => None,
    };
    change(base, window, Test::NormalApprox, config, || {
        normal_p_of(var(window), var(base))
    })
}
