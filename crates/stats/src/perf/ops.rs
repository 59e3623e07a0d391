//! Operational helpers that need no labels: latency / score quantiles, the distribution of
//! predicted classes, and average confidence. All mergeable like the metric states.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::exact::ExactSum;

use super::outcome::{mean_metric, Metric, MetricConfig, Z95};
use super::sketch::QuantileSketch;
use super::PerfError;

/// p50 / p95 / p99 of a [`QuantileSketch`] (latency in ms, scores, ...), each with its
/// order-statistic interval. Values carry the sketch's relative error (1 % by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileReport {
    /// Values in the sketch.
    pub n: u64,
    /// Median.
    pub p50: Metric,
    /// 95th percentile.
    pub p95: Metric,
    /// 99th percentile.
    pub p99: Metric,
    /// Smallest value, exact.
    pub min: Option<f64>,
    /// Largest value, exact.
    pub max: Option<f64>,
}

impl QuantileSketch {
    /// p50, p95 and p99 of the sketch.
    pub fn report(&self, config: &MetricConfig) -> QuantileReport {
        QuantileReport {
            n: self.count(),
            p50: self.quantile_metric(0.50, config),
            p95: self.quantile_metric(0.95, config),
            p99: self.quantile_metric(0.99, config),
            min: self.min(),
            max: self.max(),
        }
    }
}

/// Counts of predicted classes, for prediction diversity (a collapsing entropy or a growing
/// top-class share hints at a feedback loop).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictionDistribution {
    counts: BTreeMap<String, u64>,
}

impl PredictionDistribution {
    /// An empty distribution.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one prediction of class `class`.
    pub fn observe(&mut self, class: &str) {
        match self.counts.get_mut(class) {
            Some(c) => *c += 1,
            None => {
                self.counts.insert(class.to_owned(), 1);
            }
        }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &PredictionDistribution) {
        for (k, c) in &other.counts {
            *self.counts.entry(k.clone()).or_insert(0) += c;
        }
    }

    /// Predictions counted.
    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Entropy, top-class share and the counts.
    ///
    /// `entropy_bits` is the plug-in Shannon entropy −Σ p log₂ p, with the delta-method
    /// interval Var(Ĥ) ≈ (Σ p (ln p)² − H²) / n (in nats², converted to bits); it is biased low
    /// when many classes are rare. `top_class_share` is a proportion with a Wilson interval.
    pub fn report(&self, config: &MetricConfig) -> DistributionReport {
        let n = self.count();
        // Ties for the top class go to the first name in sort order, so the report is stable.
        let top = self
            .counts
            .iter()
            .fold(None::<(&String, u64)>, |best, (k, c)| match best {
                Some((_, bc)) if bc >= *c => best,
                _ => Some((k, *c)),
            });
        let entropy_bits = if n == 0 {
            Metric::undefined("no predictions")
        } else if let Some(g) = config.gate(n) {
            g
        } else {
            let nf = n as f64;
            let (mut h, mut s2) = (0.0, 0.0);
            for &c in self.counts.values() {
                let p = c as f64 / nf;
                h -= p * p.ln();
                s2 += p * p.ln() * p.ln();
            }
            let se = ((s2 - h * h).max(0.0) / nf).sqrt();
            let ln2 = std::f64::consts::LN_2;
            let max = (self.counts.len() as f64).log2();
            Metric::defined(
                h / ln2,
                n,
                (h - Z95 * se) / ln2,
                (h + Z95 * se) / ln2,
                (0.0, max.max(0.0)),
            )
        };
        DistributionReport {
            n,
            classes: self.counts.len() as u64,
            entropy_bits,
            top_class: top.map(|t| t.0.clone()),
            top_class_share: config.proportion(top.map_or(0, |t| t.1), n, "no predictions"),
            counts: self.counts.clone(),
        }
    }
}

/// Diversity of predictions in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionReport {
    /// Predictions counted.
    pub n: u64,
    /// Distinct predicted classes.
    pub classes: u64,
    /// Shannon entropy of the predicted classes, in bits (0 = one class only; at most
    /// log₂(classes)).
    pub entropy_bits: Metric,
    /// The most predicted class (first by name on a tie).
    pub top_class: Option<String>,
    /// Share of predictions that are the top class.
    pub top_class_share: Metric,
    /// Predictions per class.
    pub counts: BTreeMap<String, u64>,
}

/// Average confidence: the mean over predictions of the largest class probability (binary:
/// max(score, 1 − score)). A drop hints at inputs unlike the training data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceState {
    n: u64,
    /// Exact sums ([`ExactSum`]): the same whatever the order of the rows and merges.
    sum: ExactSum,
    sum2: ExactSum,
}

impl ConfidenceState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&mut self, c: f64) {
        self.n += 1;
        self.sum.add(c);
        self.sum2.add(c * c);
    }

    /// Adds a binary prediction's positive-class probability. Rejects a value outside [0, 1].
    pub fn observe_binary(&mut self, score: f64) -> Result<(), PerfError> {
        if !(0.0..=1.0).contains(&score) {
            return Err(PerfError::InvalidScore(score));
        }
        self.add(score.max(1.0 - score));
        Ok(())
    }

    /// Adds a multiclass prediction's probabilities. Rejects an empty list or a value
    /// outside [0, 1].
    pub fn observe_scores<S>(&mut self, scores: &[(S, f64)]) -> Result<(), PerfError> {
        if let Some((_, s)) = scores.iter().find(|(_, s)| !(0.0..=1.0).contains(s)) {
            return Err(PerfError::InvalidScore(*s));
        }
        let max = scores
            .iter()
            .map(|(_, s)| *s)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))))
            .ok_or(PerfError::MissingPrediction)?;
        self.add(max);
        Ok(())
    }

    /// Adds the rows of `other`.
    pub fn merge(&mut self, other: &ConfidenceState) {
        self.n += other.n;
        self.sum.merge(&other.sum);
        self.sum2.merge(&other.sum2);
    }

    /// Mean confidence with a CLT interval.
    pub fn mean_confidence(&self, config: &MetricConfig) -> Metric {
        mean_metric(
            config,
            self.n,
            self.sum.value(),
            self.sum2.value(),
            (0.0, 1.0),
            "no scored predictions",
        )
    }
}
