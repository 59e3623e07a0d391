//! Regression: mergeable state and its metrics.

use serde::{Deserialize, Serialize};

use super::binary::mean_est;
use super::outcome::{mean_metric, Metric, MetricConfig};
use super::sketch::QuantileSketch;
use super::PerfError;

/// Everything needed for regression metrics of one window. Error = prediction − target, so a
/// positive `mean_error` means the model over-predicts.
///
/// Invariants: merging the states of any partition of the rows gives the metrics of one state
/// fed all rows, in any order (up to floating-point rounding, ~1e-12 relative; quantiles
/// exactly, since the sketch holds counts); serde round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionState {
    n: u64,
    sum_err: f64,
    sum_abs_err: f64,
    /// Σ e², also Σ |e|².
    sum_sq_err: f64,
    /// Σ e⁴, for the interval of the MSE.
    sum_sq_err2: f64,
    /// Mean and Σ (y − ȳ)² of the target, updated as Welford/Chan do: a sum of y² minus n·ȳ²
    /// would cancel catastrophically for targets far from zero, and R² needs that spread.
    y_mean: f64,
    y_m2: f64,
    /// Rows with a non-zero target, and the sums of |e|/|y| and its square over them.
    n_nonzero: u64,
    sum_ape: f64,
    sum_ape2: f64,
    zero_targets: u64,
    errors: QuantileSketch,
}

impl Default for RegressionState {
    fn default() -> Self {
        Self::new()
    }
}

impl RegressionState {
    /// An empty state; error quantiles with the default 1 % relative accuracy.
    pub fn new() -> Self {
        RegressionState {
            n: 0,
            sum_err: 0.0,
            sum_abs_err: 0.0,
            sum_sq_err: 0.0,
            sum_sq_err2: 0.0,
            y_mean: 0.0,
            y_m2: 0.0,
            n_nonzero: 0,
            sum_ape: 0.0,
            sum_ape2: 0.0,
            zero_targets: 0,
            errors: QuantileSketch::new(),
        }
    }

    /// Labelled rows observed.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Adds one labelled prediction. Rejects (changing nothing) a non-finite target or
    /// prediction.
    pub fn observe(&mut self, target: f64, prediction: f64) -> Result<(), PerfError> {
        for (field, value) in [("target", target), ("prediction", prediction)] {
            if !value.is_finite() {
                return Err(PerfError::NonFinite { field, value });
            }
        }
        let e = prediction - target;
        if !e.is_finite() {
            return Err(PerfError::NonFinite {
                field: "error",
                value: e,
            });
        }
        self.errors.observe(e)?;
        self.n += 1;
        self.sum_err += e;
        self.sum_abs_err += e.abs();
        self.sum_sq_err += e * e;
        self.sum_sq_err2 += e * e * e * e;
        let delta = target - self.y_mean;
        self.y_mean += delta / self.n as f64;
        self.y_m2 += delta * (target - self.y_mean);
        if target == 0.0 {
            self.zero_targets += 1;
        } else {
            let ape = e.abs() / target.abs();
            self.n_nonzero += 1;
            self.sum_ape += ape;
            self.sum_ape2 += ape * ape;
        }
        Ok(())
    }

    /// Adds all rows of `other`.
    pub fn merge(&mut self, other: &RegressionState) -> Result<(), PerfError> {
        self.errors.merge(&other.errors)?;
        if other.n > 0 {
            // Chan et al. (1979) pairwise update of mean and M2.
            let (na, nb) = (self.n as f64, other.n as f64);
            let delta = other.y_mean - self.y_mean;
            let n = na + nb;
            self.y_mean += delta * nb / n;
            self.y_m2 += other.y_m2 + delta * delta * na * nb / n;
        }
        self.n += other.n;
        self.sum_err += other.sum_err;
        self.sum_abs_err += other.sum_abs_err;
        self.sum_sq_err += other.sum_sq_err;
        self.sum_sq_err2 += other.sum_sq_err2;
        self.n_nonzero += other.n_nonzero;
        self.sum_ape += other.sum_ape;
        self.sum_ape2 += other.sum_ape2;
        self.zero_targets += other.zero_targets;
        Ok(())
    }

    pub(crate) fn mae_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n, self.sum_abs_err, self.sum_sq_err)
    }
    pub(crate) fn mse_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n, self.sum_sq_err, self.sum_sq_err2)
    }
    pub(crate) fn mean_error_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n, self.sum_err, self.sum_sq_err)
    }
    pub(crate) fn mape_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n_nonzero, self.sum_ape, self.sum_ape2)
    }

    /// All metrics of this window.
    pub fn metrics(&self, config: &MetricConfig) -> RegressionReport {
        let empty = "no labelled rows";
        let mse = mean_metric(
            config,
            self.n,
            self.sum_sq_err,
            self.sum_sq_err2,
            (0.0, f64::MAX),
            empty,
        );
        let rmse = match &mse {
            Metric::Defined {
                value,
                n,
                ci_low,
                ci_high,
            } => Metric::defined(
                value.sqrt(),
                *n,
                ci_low.sqrt(),
                ci_high.sqrt(),
                (0.0, f64::MAX),
            ),
            other => other.clone(),
        };
        // R² = 1 − MSE / Var(y). Interval: the MSE interval mapped through that formula,
        // holding the window's target variance fixed (conditional on the targets, which is
        // how R² is read for one window); it leaves out the sampling noise of Var(y).
        let r2 = if self.n < 2 {
            Metric::undefined("needs at least two labelled rows")
        } else if self.y_m2 <= 0.0 {
            Metric::undefined("target is constant")
        } else {
            match &mse {
                Metric::Defined {
                    value,
                    n,
                    ci_low,
                    ci_high,
                } => {
                    let var_y = self.y_m2 / self.n as f64;
                    Metric::defined(
                        1.0 - value / var_y,
                        *n,
                        1.0 - ci_high / var_y,
                        1.0 - ci_low / var_y,
                        (f64::MIN, 1.0),
                    )
                }
                other => other.clone(),
            }
        };
        let q = |p| self.errors.quantile_metric(p, config);
        RegressionReport {
            n: self.n,
            mae: mean_metric(
                config,
                self.n,
                self.sum_abs_err,
                self.sum_sq_err,
                (0.0, f64::MAX),
                empty,
            ),
            mse,
            rmse,
            mape: mean_metric(
                config,
                self.n_nonzero,
                self.sum_ape,
                self.sum_ape2,
                (0.0, f64::MAX),
                "no labelled rows with a non-zero target",
            ),
            mape_zero_targets: self.zero_targets,
            r2,
            mean_error: mean_metric(
                config,
                self.n,
                self.sum_err,
                self.sum_sq_err,
                (f64::MIN, f64::MAX),
                empty,
            ),
            error_p05: q(0.05),
            error_p50: q(0.50),
            error_p95: q(0.95),
            error_quantile_relative_accuracy: self.errors.relative_accuracy(),
        }
    }
}

/// Regression metrics of one window; names follow scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionReport {
    /// Labelled rows.
    pub n: u64,
    /// Mean absolute error.
    pub mae: Metric,
    /// Mean squared error.
    pub mse: Metric,
    /// Square root of `mse` (interval: square roots of the MSE interval).
    pub rmse: Metric,
    /// Mean of |error| / |target| over rows with a non-zero target (a fraction, not percent).
    /// Unlike scikit-learn, which divides by `max(|y|, eps)`, zero targets are left out and
    /// counted in `mape_zero_targets`.
    pub mape: Metric,
    /// Rows left out of `mape` because their target is zero.
    pub mape_zero_targets: u64,
    /// Coefficient of determination.
    pub r2: Metric,
    /// Mean of prediction − target (bias).
    pub mean_error: Metric,
    /// 5th percentile of prediction − target (from the sketch).
    pub error_p05: Metric,
    /// Median of prediction − target (from the sketch).
    pub error_p50: Metric,
    /// 95th percentile of prediction − target (from the sketch).
    pub error_p95: Metric,
    /// Relative accuracy α of the error quantiles (see [`QuantileSketch`]).
    pub error_quantile_relative_accuracy: f64,
}
