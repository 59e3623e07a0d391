//! Regression: mergeable state and its metrics.

use serde::{Deserialize, Serialize};

use crate::exact::ExactSum;

use super::binary::mean_est;
use super::outcome::{mean_metric, Metric, MetricConfig};
use super::sketch::QuantileSketch;
use super::PerfError;

/// Everything needed for regression metrics of one window. Error = prediction − target, so a
/// positive `mean_error` means the model over-predicts.
///
/// Invariants: merging the states of any partition of the rows gives the metrics of one state
/// fed all rows, in any order, to the bit (the sums are exact, [`ExactSum`]; quantiles come
/// from counts); serde round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionState {
    n: u64,
    sum_err: ExactSum,
    sum_abs_err: ExactSum,
    /// Σ e², also Σ |e|².
    sum_sq_err: ExactSum,
    /// Σ e⁴, for the interval of the MSE.
    sum_sq_err2: ExactSum,
    /// Σ y and Σ y² of the target, exact (y² with its rounding error): Σ (y − ȳ)², which R²
    /// needs, is taken from them without cancelling for targets far from zero
    /// ([`RegressionState::target_m2`]). Welford/Chan updates, used before, gave another last
    /// digit for every order of rows and merges.
    y_sum: ExactSum,
    y_sq_sum: ExactSum,
    /// The smallest and largest target: a constant target has no spread, exactly.
    y_min: Option<f64>,
    y_max: Option<f64>,
    /// Rows with a non-zero target, and the sums of |e|/|y| and its square over them.
    n_nonzero: u64,
    sum_ape: ExactSum,
    sum_ape2: ExactSum,
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
            sum_err: ExactSum::new(),
            sum_abs_err: ExactSum::new(),
            sum_sq_err: ExactSum::new(),
            sum_sq_err2: ExactSum::new(),
            y_sum: ExactSum::new(),
            y_sq_sum: ExactSum::new(),
            y_min: None,
            y_max: None,
            n_nonzero: 0,
            sum_ape: ExactSum::new(),
            sum_ape2: ExactSum::new(),
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
        self.sum_err.add(e);
        self.sum_abs_err.add(e.abs());
        self.sum_sq_err.add(e * e);
        self.sum_sq_err2.add(e * e * e * e);
        self.y_sum.add(target);
        self.y_sq_sum.add_product(target, target);
        crate::merge_extremes(
            (&mut self.y_min, &mut self.y_max),
            (Some(target), Some(target)),
        );
        if target == 0.0 {
            self.zero_targets += 1;
        } else {
            let ape = e.abs() / target.abs();
            self.n_nonzero += 1;
            self.sum_ape.add(ape);
            self.sum_ape2.add(ape * ape);
        }
        Ok(())
    }

    /// Adds all rows of `other`.
    pub fn merge(&mut self, other: &RegressionState) -> Result<(), PerfError> {
        self.errors.merge(&other.errors)?;
        self.n += other.n;
        self.sum_err.merge(&other.sum_err);
        self.sum_abs_err.merge(&other.sum_abs_err);
        self.sum_sq_err.merge(&other.sum_sq_err);
        self.sum_sq_err2.merge(&other.sum_sq_err2);
        self.y_sum.merge(&other.y_sum);
        self.y_sq_sum.merge(&other.y_sq_sum);
        crate::merge_extremes(
            (&mut self.y_min, &mut self.y_max),
            (other.y_min, other.y_max),
        );
        self.n_nonzero += other.n_nonzero;
        self.sum_ape.merge(&other.sum_ape);
        self.sum_ape2.merge(&other.sum_ape2);
        self.zero_targets += other.zero_targets;
        Ok(())
    }

    pub(crate) fn mae_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n, self.sum_abs_err.value(), self.sum_sq_err.value())
    }
    pub(crate) fn mse_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n, self.sum_sq_err.value(), self.sum_sq_err2.value())
    }
    pub(crate) fn mean_error_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n, self.sum_err.value(), self.sum_sq_err.value())
    }
    pub(crate) fn mape_est(&self) -> Option<(f64, f64)> {
        mean_est(self.n_nonzero, self.sum_ape.value(), self.sum_ape2.value())
    }

    /// Σ (y − ȳ)² of the targets: Σ (y − c)² = Σy² − 2c·Σy + n·c² about c, the mean rounded
    /// to an `f64`, taken exactly from the exact sums and rounded once, minus the n·(ȳ − c)²
    /// that choosing c adds (below the last digit of the spread but for a constant target).
    /// Depends only on the sums, so on the rows, never on their order.
    fn target_m2(&self) -> f64 {
        if self.n == 0 || self.y_min == self.y_max {
            return 0.0;
        }
        let n = self.n as f64;
        let c = self.y_sum.value() / n;
        let mut ss = self.y_sq_sum.clone();
        ss.add_scaled(&self.y_sum, -2.0 * c);
        let mut c2 = ExactSum::new();
        c2.add_product(c, c);
        ss.add_scaled(&c2, n);
        // ȳ − c = (Σy − n·c) / n, exactly but for the last division.
        let mut off = self.y_sum.clone();
        off.add_product(-n, c);
        let d = off.value() / n;
        (ss.value() - n * d * d).max(0.0)
    }

    /// All metrics of this window.
    pub fn metrics(&self, config: &MetricConfig) -> RegressionReport {
        let empty = "no labelled rows";
        let mse = mean_metric(
            config,
            self.n,
            self.sum_sq_err.value(),
            self.sum_sq_err2.value(),
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
        let target_m2 = self.target_m2();
        let r2 = if self.n < 2 {
            Metric::undefined("needs at least two labelled rows")
        } else if target_m2 <= 0.0 {
            Metric::undefined("target is constant")
        } else {
            match &mse {
                Metric::Defined {
                    value,
                    n,
                    ci_low,
                    ci_high,
                } => {
                    let var_y = target_m2 / self.n as f64;
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
                self.sum_abs_err.value(),
                self.sum_sq_err.value(),
                (0.0, f64::MAX),
                empty,
            ),
            mse,
            rmse,
            mape: mean_metric(
                config,
                self.n_nonzero,
                self.sum_ape.value(),
                self.sum_ape2.value(),
                (0.0, f64::MAX),
                "no labelled rows with a non-zero target",
            ),
            mape_zero_targets: self.zero_targets,
            r2,
            mean_error: mean_metric(
                config,
                self.n,
                self.sum_err.value(),
                self.sum_sq_err.value(),
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
