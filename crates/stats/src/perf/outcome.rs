//! The typed outcome of one metric, the shared configuration, and the interval helpers.

use serde::{Deserialize, Serialize};

/// Two-sided 95 % standard normal quantile, `Φ⁻¹(0.975)`.
pub const Z95: f64 = 1.959_963_984_540_054;

/// What every performance metric evaluates to.
///
/// JSON (internally tagged by `status`):
/// - `{"status": "defined", "value": 0.91, "n": 1200, "ci_low": 0.89, "ci_high": 0.93}`
/// - `{"status": "insufficient_sample", "n": 12, "min": 30}`
/// - `{"status": "undefined", "reason": "no predicted positives"}`
///
/// A caller may rely on: `value`, `ci_low` and `ci_high` are finite and
/// `ci_low <= value <= ci_high`; `n` is the number of rows the metric's denominator counts
/// (e.g. predicted positives for precision); the interval is a 95 % interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Metric {
    /// The metric has a value, computed from `n` rows, with a 95 % confidence interval.
    Defined {
        /// Point estimate.
        value: f64,
        /// Rows behind the estimate (the metric's own denominator).
        n: u64,
        /// Lower end of the 95 % confidence interval.
        ci_low: f64,
        /// Upper end of the 95 % confidence interval.
        ci_high: f64,
    },
    /// Fewer rows than [`MetricConfig::min_sample`]: a value would be noise.
    InsufficientSample {
        /// Rows available.
        n: u64,
        /// Rows required.
        min: u64,
    },
    /// The metric does not exist for this data (no predicted positives, one class only, ...).
    Undefined {
        /// Why, in words a user understands.
        reason: String,
    },
}

impl Metric {
    /// The point estimate, if defined.
    pub fn value(&self) -> Option<f64> {
        match self {
            Metric::Defined { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// `(ci_low, ci_high)`, if defined.
    pub fn ci(&self) -> Option<(f64, f64)> {
        match self {
            Metric::Defined {
                ci_low, ci_high, ..
            } => Some((*ci_low, *ci_high)),
            _ => None,
        }
    }

    /// The sample size behind the metric (also for an insufficient sample).
    pub fn n(&self) -> Option<u64> {
        match self {
            Metric::Defined { n, .. } | Metric::InsufficientSample { n, .. } => Some(*n),
            Metric::Undefined { .. } => None,
        }
    }

    pub(crate) fn undefined(reason: impl Into<String>) -> Metric {
        Metric::Undefined {
            reason: reason.into(),
        }
    }

    /// Builds a defined metric, keeping the documented invariants: a non-finite value becomes
    /// `Undefined`, the interval is widened to contain the value and clipped to `bounds`.
    pub(crate) fn defined(value: f64, n: u64, lo: f64, hi: f64, bounds: (f64, f64)) -> Metric {
        if !value.is_finite() {
            return Metric::undefined("non-finite result");
        }
        // A non-finite interval end (e.g. variance overflow) falls back to the bound.
        let lo = if lo.is_finite() { lo } else { bounds.0 };
        let hi = if hi.is_finite() { hi } else { bounds.1 };
        let value = value.clamp(bounds.0, bounds.1);
        let ci_low = lo.clamp(bounds.0, bounds.1).min(value);
        let ci_high = hi.clamp(bounds.0, bounds.1).max(value);
        if !ci_low.is_finite() || !ci_high.is_finite() {
            return Metric::Defined {
                value,
                n,
                ci_low: value,
                ci_high: value,
            };
        }
        Metric::Defined {
            value,
            n,
            ci_low,
            ci_high,
        }
    }

    /// A mean-like estimate with a normal (CLT) interval `value ± z·sqrt(var)`.
    pub(crate) fn normal(value: f64, var: f64, n: u64, bounds: (f64, f64)) -> Metric {
        let se = var.max(0.0).sqrt();
        Metric::defined(value, n, value - Z95 * se, value + Z95 * se, bounds)
    }
}

/// Settings for turning a state into metric values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricConfig {
    /// A metric whose own denominator counts fewer rows than this is
    /// [`Metric::InsufficientSample`]. Default 30.
    pub min_sample: u64,
    /// Significance level of baseline comparisons. Default 0.05.
    pub alpha: f64,
    /// Classes a multiclass report names whatever their number of rows, beside the
    /// [`super::MAX_REPORTED_CLASSES`] with most rows (an alert rule on one class's recall).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named_classes: Vec<String>,
}

impl Default for MetricConfig {
    fn default() -> Self {
        MetricConfig {
            min_sample: 30,
            alpha: 0.05,
            named_classes: Vec::new(),
        }
    }
}

impl MetricConfig {
    /// `Some(InsufficientSample)` when `n` is under the minimum.
    pub(crate) fn gate(&self, n: u64) -> Option<Metric> {
        (n < self.min_sample).then_some(Metric::InsufficientSample {
            n,
            min: self.min_sample,
        })
    }

    /// A proportion `k / n` with a Wilson interval, gated and typed.
    pub(crate) fn proportion(&self, k: u64, n: u64, undefined_reason: &str) -> Metric {
        if n == 0 {
            return Metric::undefined(undefined_reason);
        }
        if let Some(m) = self.gate(n) {
            return m;
        }
        let (lo, hi) = wilson(k, n);
        Metric::defined(k as f64 / n as f64, n, lo, hi, (0.0, 1.0))
    }
}

/// Wilson score interval (95 %) for `k` successes in `n` trials. `n > 0`.
pub(crate) fn wilson(k: u64, n: u64) -> (f64, f64) {
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Two-sided p-value of a standard normal statistic.
pub(crate) fn two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// Unbiased sample variance from a count, a sum and a sum of squares; 0 for n < 2.
pub(crate) fn sample_var(n: u64, sum: f64, sum2: f64) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let n = n as f64;
    ((sum2 - sum * sum / n) / (n - 1.0)).max(0.0)
}

/// Mean of `n` values with a CLT interval from their sum and sum of squares.
pub(crate) fn mean_metric(
    config: &MetricConfig,
    n: u64,
    sum: f64,
    sum2: f64,
    bounds: (f64, f64),
    empty_reason: &str,
) -> Metric {
    if n == 0 {
        return Metric::undefined(empty_reason);
    }
    if let Some(m) = config.gate(n) {
        return m;
    }
    let mean = sum / n as f64;
    Metric::normal(mean, sample_var(n, sum, sum2) / n as f64, n, bounds)
}
