//! A mergeable quantile sketch with a relative error bound (log-spaced buckets, as DDSketch).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::outcome::{Metric, MetricConfig, Z95};
use super::PerfError;

/// Values with a magnitude at or below this are counted as zero (absolute error ≤ 1e-9).
pub const SKETCH_ZERO: f64 = 1e-9;

/// Default relative accuracy of [`QuantileSketch`]: 1 %.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.01;

/// Cumulative counts at fixed bounds, from [`QuantileSketch::histogram`]; the shape of a
/// Prometheus histogram (`_bucket{le}`, `_count`, `_sum`; `+Inf` is `count`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Vec<HistogramBucket>,
    pub count: u64,
    /// Approximate: see [`QuantileSketch::histogram`].
    pub sum: f64,
}

/// Values at or below `le`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistogramBucket {
    pub le: f64,
    pub count: u64,
}

/// Quantiles of a stream of finite reals (errors, latencies, scores) in bounded memory.
///
/// Every value `x` with `|x| > 1e-9` falls into the bucket `k = ceil(ln|x| / ln γ)` of its
/// sign, `γ = (1+α)/(1−α)`; a bucket is reported as `2γ^k/(γ+1)`, within relative error `α` of
/// every value in it. Counts only add, so merging is exact, commutative and associative: a
/// sketch of merged windows equals the sketch of all their rows.
///
/// Error bound (what a caller may rely on): for `q` in [0, 1] and `r = q·(n−1)`,
/// `quantile(q)` differs from numpy's default (`linear`) quantile of the same values by at most
/// `α·max(|x₍⌊r⌋₎|, |x₍⌈r⌉₎|) + 1e-9`, where `x₍k₎` is the k-th smallest value. The minimum and
/// maximum are kept exactly. Size: one entry per non-empty bucket; with α = 1 % the values
/// between 1 ms and 1 hour need at most 760 buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileSketch {
    #[serde(deserialize_with = "valid_accuracy")]
    relative_accuracy: f64,
    count: u64,
    zero: u64,
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    min: Option<f64>,
    max: Option<f64>,
}

/// A stored sketch whose accuracy is outside the range `with_relative_accuracy` allows is
/// refused on reading, so bucket keys are always well defined.
fn valid_accuracy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::de::Error;
    let a = f64::deserialize(d)?;
    if !(1e-4..=0.5).contains(&a) {
        return Err(D::Error::custom(format!(
            "relative accuracy must be in [1e-4, 0.5], got {a}"
        )));
    }
    Ok(a)
}

impl Default for QuantileSketch {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantileSketch {
    /// An empty sketch with relative accuracy 1 %.
    pub fn new() -> Self {
        Self::with_relative_accuracy(DEFAULT_RELATIVE_ACCURACY)
    }

    /// An empty sketch with relative accuracy `alpha`, clamped to [1e-4, 0.5].
    pub fn with_relative_accuracy(alpha: f64) -> Self {
        let alpha = if alpha.is_finite() {
            alpha.clamp(1e-4, 0.5)
        } else {
            DEFAULT_RELATIVE_ACCURACY
        };
        QuantileSketch {
            relative_accuracy: alpha,
            count: 0,
            zero: 0,
            positive: BTreeMap::new(),
            negative: BTreeMap::new(),
            min: None,
            max: None,
        }
    }

    /// The relative accuracy α of this sketch.
    pub fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// Values observed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value observed (exact).
    pub fn min(&self) -> Option<f64> {
        self.min
    }

    /// Largest value observed (exact).
    pub fn max(&self) -> Option<f64> {
        self.max
    }

    fn ln_gamma(&self) -> f64 {
        let a = self.relative_accuracy;
        ((1.0 + a) / (1.0 - a)).ln()
    }

    fn key(&self, magnitude: f64) -> i32 {
        // ln(1e-9)/ln γ and ln(f64::MAX)/ln γ fit in i32 for α ≥ 1e-4.
        (magnitude.ln() / self.ln_gamma()).ceil() as i32
    }

    fn representative(&self, key: i32) -> f64 {
        let lg = self.ln_gamma();
        let gamma = lg.exp();
        2.0 * (key as f64 * lg).exp() / (gamma + 1.0)
    }

    /// Adds one value. A non-finite value is rejected and changes nothing.
    pub fn observe(&mut self, x: f64) -> Result<(), PerfError> {
        if !x.is_finite() {
            return Err(PerfError::NonFinite {
                field: "value",
                value: x,
            });
        }
        self.count += 1;
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
        if x.abs() <= SKETCH_ZERO {
            self.zero += 1;
        } else {
            let k = self.key(x.abs());
            let side = if x > 0.0 {
                &mut self.positive
            } else {
                &mut self.negative
            };
            *side.entry(k).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Adds every value of `other`. Both must have the same relative accuracy.
    pub fn merge(&mut self, other: &QuantileSketch) -> Result<(), PerfError> {
        if self.relative_accuracy != other.relative_accuracy {
            return Err(PerfError::Incompatible(format!(
                "sketch relative accuracy {} vs {}",
                self.relative_accuracy, other.relative_accuracy
            )));
        }
        self.count += other.count;
        self.zero += other.zero;
        for (k, c) in &other.positive {
            *self.positive.entry(*k).or_insert(0) += c;
        }
        for (k, c) in &other.negative {
            *self.negative.entry(*k).or_insert(0) += c;
        }
        crate::merge_extremes((&mut self.min, &mut self.max), (other.min, other.max));
        Ok(())
    }

    /// The approximate k-th smallest value (0-based), clamped to the exact [min, max].
    fn value_at_rank(&self, rank: u64) -> f64 {
        let (lo, hi) = (self.min.unwrap_or(0.0), self.max.unwrap_or(0.0));
        let mut seen = 0u64;
        // Most negative first: the largest key of the negative side.
        for (k, c) in self.negative.iter().rev() {
            seen += c;
            if rank < seen {
                return (-self.representative(*k)).clamp(lo, hi);
            }
        }
        seen += self.zero;
        if rank < seen {
            return 0.0f64.clamp(lo, hi);
        }
        for (k, c) in &self.positive {
            seen += c;
            if rank < seen {
                return self.representative(*k).clamp(lo, hi);
            }
        }
        hi
    }

    /// Cumulative counts of the values at or below each bound (sorted ascending), as a
    /// Prometheus histogram's `le` buckets, and the approximate sum of all values.
    ///
    /// A bucket of the sketch counts as at or below `b` when its representative is: a value
    /// further than 2α (relative) from every bound is counted exactly; one closer may land on
    /// either side of that bound. The sum adds each bucket's representative times its count,
    /// so it is within α (relative) of the exact sum of values of one sign.
    pub fn histogram(&self, bounds: &[f64]) -> Histogram {
        let mut below_zero_and_zero = self.zero;
        let mut sum = 0.0;
        let negative: Vec<(f64, u64)> = self
            .negative
            .iter()
            .rev()
            .map(|(k, c)| (-self.representative(*k), *c))
            .collect();
        let positive: Vec<(f64, u64)> = self
            .positive
            .iter()
            .map(|(k, c)| (self.representative(*k), *c))
            .collect();
        for (v, c) in negative.iter().chain(&positive) {
            sum += v * *c as f64;
        }
        below_zero_and_zero += negative.iter().map(|(_, c)| c).sum::<u64>();
        let buckets = bounds
            .iter()
            .map(|&le| {
                let count = if le < 0.0 {
                    negative
                        .iter()
                        .filter(|(v, _)| *v <= le)
                        .map(|(_, c)| c)
                        .sum()
                } else {
                    below_zero_and_zero
                        + positive
                            .iter()
                            .take_while(|(v, _)| *v <= le)
                            .map(|(_, c)| c)
                            .sum::<u64>()
                };
                HistogramBucket { le, count }
            })
            .collect();
        Histogram {
            buckets,
            count: self.count,
            sum,
        }
    }

    /// The `q`-quantile (numpy's `linear` definition on the sketched values); `None` when
    /// empty or `q` is outside [0, 1].
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let r = q * (self.count - 1) as f64;
        let (lo, hi) = (r.floor(), r.ceil());
        let a = self.value_at_rank(lo as u64);
        let b = self.value_at_rank(hi as u64);
        Some(a + (r - lo) * (b - a))
    }

    /// The `q`-quantile as a metric, with the distribution-free order-statistic interval: the
    /// values at ranks `n·q ± 1.96·sqrt(n·q·(1−q))` (normal approximation to the binomial count
    /// of values below the true quantile), read from the sketch. Distribution-free: it needs
    /// only independent rows.
    pub fn quantile_metric(&self, q: f64, config: &MetricConfig) -> Metric {
        if self.count == 0 {
            return Metric::undefined("no values");
        }
        if let Some(m) = config.gate(self.count) {
            return m;
        }
        let Some(value) = self.quantile(q) else {
            return Metric::undefined("quantile outside [0, 1]");
        };
        let n = self.count as f64;
        let half = Z95 * (n * q * (1.0 - q)).sqrt();
        let last = (self.count - 1) as f64;
        // 1-based ranks j = ⌊nq − half⌋, k = ⌈nq + half⌉ (Conover's interval X₍ⱼ₎..X₍ₖ₎);
        // 0-based here.
        let lo_rank = ((n * q - half).floor() - 1.0).clamp(0.0, last) as u64;
        let hi_rank = ((n * q + half).ceil() - 1.0).clamp(0.0, last) as u64;
        let lo = self.value_at_rank(lo_rank);
        let hi = self.value_at_rank(hi_rank);
        Metric::defined(value, self.count, lo, hi, (f64::MIN, f64::MAX))
    }
}
