//! Comparing a challenger with the champion (docs/api.md, "Challengers"; ADR 011).
//!
//! On the same requests (shadow traffic) the two versions' outcomes are paired, and the tests
//! are the paired ones: McNemar on the discordant pairs for accuracy, DeLong's test of two
//! correlated ROC AUCs, a paired t-test and Wilcoxon's signed-rank test on the differences of
//! absolute or squared errors. On disjoint traffic (A/B) the samples are independent: a pooled
//! two-proportion z-test and Welch's t-test. Every function names the SciPy or statsmodels
//! function it is checked against (`tests/paired_scipy.rs`, fixtures made by
//! `scripts/fixtures/gen_paired_fixtures.py`).
//!
//! [`labelled_requests_needed`] is the sample size the decision quotes: how many labelled
//! requests a test needs to reach 80 % power at α = 0.05 if the observed difference and its
//! spread are the truth.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};

use crate::drift::chi2_sf;
use crate::perf::Z95;

/// A test's statistic and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

fn normal_two_sided(z: f64) -> f64 {
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// McNemar's exact test on the discordant pairs: `b` requests only the first version got right,
/// `c` only the second. As `statsmodels.stats.contingency_tables.mcnemar(table, exact=True)`:
/// the statistic is `min(b, c)`, the p-value twice the binomial(b + c, ½) CDF there, at most 1.
/// `None` without a discordant pair (the versions agree on every request: nothing to test).
pub fn mcnemar_exact(b: u64, c: u64) -> Option<TestResult> {
    let n = b + c;
    if n == 0 {
        return None;
    }
    let k = b.min(c);
    let binomial = Binomial::new(0.5, n).expect("p = 0.5 is a probability");
    Some(TestResult {
        statistic: k as f64,
        p_value: (2.0 * binomial.cdf(k)).min(1.0),
    })
}

/// McNemar's asymptotic test with the continuity correction, as
/// `statsmodels.stats.contingency_tables.mcnemar(table, exact=False, correction=True)`:
/// `(|b − c| − 1)² / (b + c)` against χ²(1). statsmodels subtracts the 1 even when `b = c`;
/// so does this, so that the two agree on every table.
pub fn mcnemar_asymptotic(b: u64, c: u64) -> Option<TestResult> {
    let n = b + c;
    if n == 0 {
        return None;
    }
    let d = (b as f64 - c as f64).abs() - 1.0;
    let statistic = d * d / n as f64;
    Some(TestResult {
        statistic,
        p_value: chi2_sf(statistic, 1.0),
    })
}

/// Two correlated ROC AUCs on the same requests (DeLong, DeLong & Clarke-Pearson 1988), by
/// the fast algorithm of Sun & Xu (2014, IEEE Signal Processing Letters 21(11)) over midranks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DelongPaired {
    pub auc_a: f64,
    pub auc_b: f64,
    /// DeLong's variances of each AUC and their covariance.
    pub var_a: f64,
    pub var_b: f64,
    pub covariance: f64,
    /// `(auc_a − auc_b) / sqrt(var_a + var_b − 2·covariance)` and its two-sided normal p-value.
    pub test: TestResult,
}

/// Midranks (1-based, ties sharing their mean rank) of `x`, as `scipy.stats.rankdata`.
fn midranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Per-request structural components of one classifier's AUC (Sun & Xu's V10 and V01).
fn components(positives: &[f64], negatives: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let (m, n) = (positives.len() as f64, negatives.len() as f64);
    let all: Vec<f64> = positives.iter().chain(negatives).copied().collect();
    let tz = midranks(&all);
    let tx = midranks(positives);
    let ty = midranks(negatives);
    let auc = tz[..positives.len()].iter().sum::<f64>() / m / n - (m + 1.0) / (2.0 * n);
    let v10 = (0..positives.len()).map(|i| (tz[i] - tx[i]) / n).collect();
    let v01 = (0..negatives.len())
        .map(|j| 1.0 - (tz[positives.len() + j] - ty[j]) / m)
        .collect();
    (auc, v10, v01)
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

/// DeLong's test of two correlated AUCs: `positive[i]` is request i's label, `score_a[i]` and
/// `score_b[i]` the two versions' scores for it. Checked against the numpy implementation of
/// Sun & Xu's algorithm in `scripts/fixtures/gen_paired_fixtures.py` (the one widely used from
/// yandexdataschool/roc_comparison, `compare_auc_delong_xu.py`), and each AUC against
/// `sklearn.metrics.roc_auc_score`. `None` with fewer than two requests of either class (no
/// variance), or when the two AUCs' difference has no variance (identical rankings).
pub fn delong_paired(positive: &[bool], score_a: &[f64], score_b: &[f64]) -> Option<DelongPaired> {
    assert_eq!(positive.len(), score_a.len());
    assert_eq!(positive.len(), score_b.len());
    let split = |s: &[f64]| -> (Vec<f64>, Vec<f64>) {
        let pos = (0..s.len())
            .filter(|&i| positive[i])
            .map(|i| s[i])
            .collect();
        let neg = (0..s.len())
            .filter(|&i| !positive[i])
            .map(|i| s[i])
            .collect();
        (pos, neg)
    };
    let (pa, na) = split(score_a);
    let (pb, nb) = split(score_b);
    if pa.len() < 2 || na.len() < 2 {
        return None;
    }
    let (m, n) = (pa.len() as f64, na.len() as f64);
    let (auc_a, v10a, v01a) = components(&pa, &na);
    let (auc_b, v10b, v01b) = components(&pb, &nb);
    let var_a = covariance(&v10a, &v10a) / m + covariance(&v01a, &v01a) / n;
    let var_b = covariance(&v10b, &v10b) / m + covariance(&v01b, &v01b) / n;
    let cov = covariance(&v10a, &v10b) / m + covariance(&v01a, &v01b) / n;
    let var_diff = var_a + var_b - 2.0 * cov;
    if var_diff.is_nan() || var_diff <= 1e-300 {
        return None;
    }
    let z = (auc_a - auc_b) / var_diff.sqrt();
    Some(DelongPaired {
        auc_a,
        auc_b,
        var_a,
        var_b,
        covariance: cov,
        test: TestResult {
            statistic: z,
            p_value: normal_two_sided(z),
        },
    })
}

/// Mean and sample variance (ddof 1) of `x`.
fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Paired t-test of `a − b`, as `scipy.stats.ttest_rel(a, b)`. `None` with fewer than two pairs
/// or when every difference is the same (no variance: SciPy answers NaN or ±inf).
pub fn paired_t(a: &[f64], b: &[f64]) -> Option<TestResult> {
    assert_eq!(a.len(), b.len());
    if a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (mean, var) = mean_var(&d);
    if var.is_nan() || var <= 0.0 {
        return None;
    }
    let n = d.len() as f64;
    let t = mean / (var / n).sqrt();
    let dist = StudentsT::new(0.0, 1.0, n - 1.0).expect("n − 1 ≥ 1 degrees of freedom");
    Some(TestResult {
        statistic: t,
        p_value: (2.0 * dist.sf(t.abs())).min(1.0),
    })
}

/// Wilcoxon's signed-rank test of `a − b` by the normal approximation, as
/// `scipy.stats.wilcoxon(a, b, zero_method="wilcox", correction=False, method="asymptotic")`:
/// zero differences dropped, ties given midranks and the variance corrected for them; the
/// statistic is the smaller of the positive and negative rank sums. `None` with no non-zero
/// difference.
pub fn wilcoxon_signed_rank(a: &[f64], b: &[f64]) -> Option<TestResult> {
    assert_eq!(a.len(), b.len());
    let d: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x - y)
        .filter(|d| *d != 0.0)
        .collect();
    if d.is_empty() {
        return None;
    }
    let magnitudes: Vec<f64> = d.iter().map(|x| x.abs()).collect();
    let ranks = midranks(&magnitudes);
    let r_plus: f64 = (0..d.len()).filter(|&i| d[i] > 0.0).map(|i| ranks[i]).sum();
    let r_minus: f64 = (0..d.len()).filter(|&i| d[i] < 0.0).map(|i| ranks[i]).sum();
    let n = d.len() as f64;
    let mean = n * (n + 1.0) / 4.0;
    // Tie correction: for each group of t equal magnitudes, (t³ − t) / 48.
    let mut sorted = magnitudes.clone();
    sorted.sort_by(f64::total_cmp);
    let ties: f64 = sorted
        .chunk_by(|x, y| x == y)
        .map(|g| {
            let t = g.len() as f64;
            t * t * t - t
        })
        .sum();
    let var = n * (n + 1.0) * (2.0 * n + 1.0) / 24.0 - ties / 48.0;
    if var.is_nan() || var <= 0.0 {
        return None;
    }
    let statistic = r_plus.min(r_minus);
    let z = (statistic - mean) / var.sqrt();
    Some(TestResult {
        statistic,
        p_value: normal_two_sided(z),
    })
}

/// Pooled two-proportion z-test of `x1 / n1` against `x2 / n2` (A/B on disjoint traffic), as
/// `statsmodels.stats.proportion.proportions_ztest([x1, x2], [n1, n2])`. `None` when a side is
/// empty or the pooled proportion is 0 or 1 (no variance).
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<TestResult> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let var = pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f);
    if var.is_nan() || var <= 0.0 {
        return None;
    }
    let z = (x1 as f64 / n1f - x2 as f64 / n2f) / var.sqrt();
    Some(TestResult {
        statistic: z,
        p_value: normal_two_sided(z),
    })
}

/// A sample's size, mean and sample variance (ddof 1): what Welch's test needs of each side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: u64,
    pub mean: f64,
    pub variance: f64,
}

impl Summary {
    pub fn of(x: &[f64]) -> Summary {
        let (mean, variance) = if x.len() < 2 {
            (x.first().copied().unwrap_or(f64::NAN), f64::NAN)
        } else {
            mean_var(x)
        };
        Summary {
            n: x.len() as u64,
            mean,
            variance,
        }
    }
}

/// Welch's t-test of two independent means, as `scipy.stats.ttest_ind_from_stats(...,
/// equal_var=False)` (equivalently `ttest_ind(a, b, equal_var=False)`). `None` with fewer than
/// two values on a side or no variance at all.
pub fn welch_t(a: &Summary, b: &Summary) -> Option<TestResult> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let (va, vb) = (a.variance / a.n as f64, b.variance / b.n as f64);
    let se2 = va + vb;
    if se2.is_nan() || se2 <= 0.0 {
        return None;
    }
    let t = (a.mean - b.mean) / se2.sqrt();
    // Welch–Satterthwaite degrees of freedom.
    let df = se2 * se2 / (va * va / (a.n as f64 - 1.0) + vb * vb / (b.n as f64 - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    Some(TestResult {
        statistic: t,
        p_value: (2.0 * dist.sf(t.abs())).min(1.0),
    })
}

/// The share of paired requests on which the two versions predicted the same outcome, with
/// its Wilson score interval (95 %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub rate: f64,
    pub n: u64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Agreement rate of `agree` out of `n` pairs; `None` with no pair. The interval is
/// `statsmodels.stats.proportion.proportion_confint(agree, n, method="wilson")`.
pub fn agreement(agree: u64, n: u64) -> Option<Agreement> {
    if n == 0 {
        return None;
    }
    let (low, high) = wilson(agree, n);
    Some(Agreement {
        rate: agree as f64 / n as f64,
        n,
        ci_low: low,
        ci_high: high,
    })
}

/// Wilson score interval (95 %) of `x / n`, `n > 0`.
pub fn wilson(x: u64, n: u64) -> (f64, f64) {
    let (nf, p) = (n as f64, x as f64 / n as f64);
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * nf)) / (1.0 + z2 / nf);
    let half = Z95 / (1.0 + z2 / nf) * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// z of a two-sided test at α = 0.05 plus z of 80 % power: 1.959964 + 0.841621.
pub const POWER_Z: f64 = 1.959_963_984_540_054 + 0.841_621_233_572_914_3;

/// Labelled requests (pairs, or per arm for A/B) a test needs for 80 % power at α = 0.05 if the
/// observed effect and its spread hold: a test's z grows as √n at a fixed effect, so it needs
/// `n · (POWER_Z / |z|)²` (the normal approximation of the test's power). For McNemar, with
/// `z = (b − c) / √(b + c)`, this is `POWER_Z² · ψ / δ²` (ψ the discordant share, δ the
/// difference of accuracies): Connor's 1987 formula with the null variance ψ in both of its
/// terms, which asks for slightly more requests than Connor's `ψ − δ²` under the alternative.
/// `None` when the observed z is 0: no sample size shows a difference that was not observed.
pub fn labelled_requests_needed(n: u64, z: f64) -> Option<u64> {
    if z == 0.0 || !z.is_finite() {
        return None;
    }
    Some((n as f64 * (POWER_Z / z.abs()).powi(2)).ceil() as u64)
}
