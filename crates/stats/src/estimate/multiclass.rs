//! CBPE for multiclass classifiers, as NannyML 0.13 defines it: one-vs-rest, macro-averaged.
//!
//! - **Calibration.** Per class, the binary decision of [`super::cbpe::needs_calibration`] on
//!   (class score, label is the class); the calibrated scores of a row are then divided by their
//!   sum (uniform when the sum is 0).
//! - **Estimates.** Per class, the binary expected confusion matrix of (predicted class is the
//!   class, its calibrated probability) and the binary estimated ROC AUC of its raw and
//!   calibrated scores; precision, recall, specificity, F1 and ROC AUC are the unweighted means
//!   over classes (a class without predictions counts 0 for precision, as in NannyML).
//!   Accuracy is the mean calibrated probability of the predicted class.
//! - **Sampling error.** Per class, the variance of the metric's observation-level terms on the
//!   reference and the share of rows they concern; a window of n rows has
//!   `sqrt(Σ_c var_c / (n × share_c)) / classes` (ROC AUC: times 1.2, NannyML's empirical
//!   correction), accuracy `std / sqrt(n)`.

use serde::{Deserialize, Serialize};

use super::cbpe::{
    auroc_component, bernoulli_std, check_score, needs_calibration, rank_edges, BinaryEstimates,
    CbpeError, Estimate, EstimatedMetric, ExpectedConfusion, RankedProbabilities, ReferenceRow,
    SAMPLING_ERROR_RANGE,
};
use super::isotonic::Isotonic;
use crate::exact::ExactSum;

/// NannyML's correction of the multiclass ROC AUC sampling error ("experiments showed that std
/// of class variances underestimated sampling error by 20 %").
const AUROC_CORRECTION: f64 = 1.2;

/// One labelled reference row: the scores of every class (in the estimator's class order), the
/// index of the predicted class and of the label.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticlassRow {
    pub scores: Vec<f64>,
    pub predicted: usize,
    pub label: usize,
}

/// Per class: (variance, share of rows) of one metric.
type ClassComponents = Vec<(f64, f64)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassComponents {
    pub roc_auc: ClassComponents,
    pub f1: ClassComponents,
    pub precision: ClassComponents,
    pub recall: ClassComponents,
    pub specificity: ClassComponents,
    /// Standard deviation of "predicted class is the label".
    pub accuracy_std: f64,
}

/// A fitted multiclass CBPE estimator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassCbpe {
    /// The classes, sorted (NannyML's order); scores and indexes refer to it.
    pub classes: Vec<String>,
    /// Per class, its isotonic calibration when it lowered that class's calibration error.
    pub calibrations: Vec<Option<Isotonic>>,
    pub components: MulticlassComponents,
    pub rows: u64,
    /// Per class, the rank bins of its ROC AUC past [`super::cbpe::EXACT_ROWS`] rows (the
    /// class's reference scores, [`rank_edges`]).
    pub rank_edges: Vec<Vec<f64>>,
}

impl MulticlassCbpe {
    /// Fits on labelled reference rows of `classes` (sorted, at least two). Every class must
    /// appear among the labels (NannyML refuses a reference that misses one).
    pub fn fit(classes: Vec<String>, rows: &[MulticlassRow]) -> Result<MulticlassCbpe, CbpeError> {
        let k = classes.len();
        if rows.is_empty() || k < 2 {
            return Err(CbpeError::Empty);
        }
        for (i, r) in rows.iter().enumerate() {
            if r.scores.len() != k || r.predicted >= k || r.label >= k {
                return Err(CbpeError::Empty);
            }
            for &s in &r.scores {
                check_score(i, s)?;
            }
        }
        if (0..k).any(|c| !rows.iter().any(|r| r.label == c)) {
            return Err(CbpeError::OneClass);
        }
        let mut calibrations = Vec::with_capacity(k);
        let mut edges = Vec::with_capacity(k);
        let mut components = MulticlassComponents {
            roc_auc: Vec::new(),
            f1: Vec::new(),
            precision: Vec::new(),
            recall: Vec::new(),
            specificity: Vec::new(),
            accuracy_std: 0.0,
        };
        let n = rows.len() as f64;
        for c in 0..k {
            let scores: Vec<f64> = rows.iter().map(|r| r.scores[c]).collect();
            let labels: Vec<bool> = rows.iter().map(|r| r.label == c).collect();
            edges.push(rank_edges(&scores));
            calibrations.push(if needs_calibration(&scores, &labels) {
                let y: Vec<f64> = labels.iter().map(|&l| l as u8 as f64).collect();
                Isotonic::fit(&scores, &y)
            } else {
                None
            });
            let binary: Vec<ReferenceRow> = rows
                .iter()
                .map(|r| ReferenceRow {
                    score: r.scores[c],
                    predicted: r.predicted == c,
                    label: r.label == c,
                })
                .collect();
            let auc = auroc_component(&binary);
            components.roc_auc.push((auc.std * auc.std, auc.fraction));
            let count =
                |f: &dyn Fn(&ReferenceRow) -> bool| binary.iter().filter(|r| f(r)).count() as f64;
            let tp = count(&|r| r.predicted && r.label);
            let fp = count(&|r| r.predicted && !r.label);
            let fn_ = count(&|r| !r.predicted && r.label);
            let tn = count(&|r| !r.predicted && !r.label);
            let var = |ones: f64, m: f64| bernoulli_std(ones, m, 1.0).powi(2);
            components
                .f1
                .push((var(tp, tp + fp + fn_), (tp + fp + fn_) / n));
            components.precision.push((var(tp, tp + fp), (tp + fp) / n));
            components.recall.push((var(tp, tp + fn_), (tp + fn_) / n));
            components
                .specificity
                .push((var(tn, tn + fp), (tn + fp) / n));
        }
        let correct = rows.iter().filter(|r| r.predicted == r.label).count() as f64;
        components.accuracy_std = bernoulli_std(correct, n, 1.0);
        Ok(MulticlassCbpe {
            classes,
            calibrations,
            components,
            rows: rows.len() as u64,
            rank_edges: edges,
        })
    }

    /// The calibrated probabilities of a row's raw class scores (each calibrated, then divided
    /// by their sum; uniform when the sum is 0).
    pub fn calibrate(&self, scores: &[f64]) -> Vec<f64> {
        let mut p: Vec<f64> = scores
            .iter()
            .zip(&self.calibrations)
            .map(|(&s, c)| c.as_ref().map_or(s, |iso| iso.predict(s)))
            .collect();
        let sum: f64 = p.iter().sum();
        let k = p.len() as f64;
        for v in &mut p {
            *v = if sum != 0.0 { *v / sum } else { 1.0 / k };
        }
        p
    }

    /// Estimates a window from its rows (raw class scores, predicted class index); rows with a
    /// score outside [0, 1] or of another number of classes are left out.
    pub fn estimate(&self, rows: &[(Vec<f64>, usize)]) -> BinaryEstimates {
        let mut state = MulticlassWindow::new(self.classes.len());
        for (scores, predicted) in rows {
            state.observe(self, scores, *predicted);
        }
        state.finish(self)
    }
}

/// A window's mergeable multiclass estimation state: per class, its one-vs-rest expected
/// confusion matrix and ranked probabilities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MulticlassWindow {
    pub n: u64,
    pub confusion: Vec<ExpectedConfusion>,
    pub ranked: Vec<RankedProbabilities>,
    /// Σ calibrated probability of the predicted class (exact: the same whatever the order of
    /// rows and merges).
    pub predicted_probability: ExactSum,
}

impl MulticlassWindow {
    pub fn new(classes: usize) -> MulticlassWindow {
        MulticlassWindow {
            n: 0,
            confusion: vec![ExpectedConfusion::default(); classes],
            ranked: vec![RankedProbabilities::default(); classes],
            predicted_probability: ExactSum::new(),
        }
    }

    pub fn observe(&mut self, cbpe: &MulticlassCbpe, scores: &[f64], predicted: usize) {
        let k = self.confusion.len();
        if scores.len() != k || predicted >= k || scores.iter().any(|s| !(0.0..=1.0).contains(s)) {
            return;
        }
        let p = cbpe.calibrate(scores);
        self.n += 1;
        self.predicted_probability.add(p[predicted]);
        for c in 0..k {
            self.confusion[c].observe(predicted == c, p[c]);
            self.ranked[c].observe(&cbpe.rank_edges[c], scores[c], p[c]);
        }
    }

    /// Adds `o` (a window of the same estimator).
    pub fn merge(&mut self, cbpe: &MulticlassCbpe, o: &MulticlassWindow) {
        self.n += o.n;
        self.predicted_probability.merge(&o.predicted_probability);
        for (a, b) in self.confusion.iter_mut().zip(&o.confusion) {
            a.merge(b);
        }
        for ((a, b), edges) in self.ranked.iter_mut().zip(&o.ranked).zip(&cbpe.rank_edges) {
            a.merge(edges, b);
        }
    }

    pub fn finish(mut self, cbpe: &MulticlassCbpe) -> BinaryEstimates {
        let k = self.confusion.len() as f64;
        let n = self.n as f64;
        let mut out = BinaryEstimates {
            n: self.n,
            calibrated: cbpe.calibrations.iter().any(Option::is_some),
            metrics: Vec::new(),
        };
        if self.n == 0 {
            return out;
        }
        let se = |c: &ClassComponents| -> f64 {
            c.iter()
                .map(|&(var, share)| var / (n * share))
                .sum::<f64>()
                .sqrt()
                / k
        };
        // NannyML counts 0 for a class whose ratio has a zero denominator.
        let mean = |m: EstimatedMetric, cs: &[ExpectedConfusion]| -> f64 {
            cs.iter().map(|c| c.metric(m).unwrap_or(0.0)).sum::<f64>() / k
        };
        let aucs: Vec<f64> = self
            .ranked
            .iter_mut()
            .map(|r| r.roc_auc().unwrap_or(f64::NAN))
            .collect();
        let comp = &cbpe.components;
        for m in EstimatedMetric::ALL {
            let (value, sampling_error) = match m {
                EstimatedMetric::RocAuc => (
                    aucs.iter().sum::<f64>() / k,
                    se(&comp.roc_auc) * AUROC_CORRECTION,
                ),
                EstimatedMetric::Accuracy => (
                    self.predicted_probability.value() / n,
                    comp.accuracy_std / n.sqrt(),
                ),
                EstimatedMetric::F1 => (mean(m, &self.confusion), se(&comp.f1)),
                EstimatedMetric::Precision => (mean(m, &self.confusion), se(&comp.precision)),
                EstimatedMetric::Recall => (mean(m, &self.confusion), se(&comp.recall)),
                EstimatedMetric::Specificity => (mean(m, &self.confusion), se(&comp.specificity)),
                EstimatedMetric::Mae | EstimatedMetric::Rmse => continue,
            };
            if !value.is_finite() || !sampling_error.is_finite() {
                continue;
            }
            out.metrics.push((
                m,
                Estimate {
                    value,
                    sampling_error,
                    ci_low: (value - SAMPLING_ERROR_RANGE * sampling_error).max(0.0),
                    ci_high: (value + SAMPLING_ERROR_RANGE * sampling_error).min(1.0),
                },
            ));
        }
        out
    }
}
