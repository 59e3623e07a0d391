//! Confidence-based performance estimation (CBPE) for binary classifiers, as NannyML 0.13
//! defines it (`nannyml/performance_estimation/confidence_based`, `nannyml/calibration.py`,
//! `nannyml/sampling_error/binary_classification.py`).
//!
//! Fitted once on a labelled reference of (score, predicted class, label):
//! - **Calibration.** Isotonic regression of the label on the score, used only when it lowers
//!   the expected calibration error (ECE) of held-out reference rows: ten stratified 90/10
//!   splits, isotonic fitted on each 90 %, ECE over ten equal-count bins of the pooled 10 %
//!   sets before and after calibration. A reference with one class, or whose scores already
//!   rank it with ROC AUC above 0.999, is not calibrated. NannyML's splits come from NumPy's
//!   random generator (seed 42); ours from a seeded SplitMix64, so the decision can differ from
//!   NannyML's when the two ECEs are nearly equal (the fixtures record NannyML's decision and the
//!   test checks ours against it).
//! - **Sampling-error components** per metric: the standard deviation of the metric's
//!   observation-level terms on the reference and the fraction of rows they concern; a window
//!   of `n` rows has sampling error `std / sqrt(n * fraction)` and the interval is the estimate
//!   ± 3 sampling errors, clipped to [0, 1] (NannyML's `SAMPLING_ERROR_RANGE`).
//!
//! A window is then estimated from its calibrated scores `p` and logged predictions alone:
//! expected TP = Σ p over predicted positives, FP = Σ (1 − p) over them, FN = Σ p over predicted
//! negatives, TN = Σ (1 − p) over them; accuracy, precision, recall, specificity and F1 from
//! that expected confusion matrix ([`ExpectedConfusion`], mergeable), and ROC AUC from the ROC
//! curve whose steps are (p, 1 − p) in decreasing order of the raw score.
//!
//! Where NannyML returns 0 for a ratio with a zero denominator (no predicted positive, say),
//! the estimate here is absent: a 0 would read as a measured collapse.

use serde::{Deserialize, Serialize};

use super::isotonic::Isotonic;
use crate::exact::ExactSum;

/// NannyML's `SAMPLING_ERROR_RANGE`: the interval is ± this many sampling errors.
pub const SAMPLING_ERROR_RANGE: f64 = 3.0;

/// Why a reference cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CbpeError {
    #[error("the reference has no rows with a score, a prediction and a label")]
    Empty,
    #[error("reference row {row}: score must be a probability in [0, 1], got {value}")]
    InvalidScore { row: usize, value: f64 },
    #[error("the reference's labels are all one class: its scores cannot be calibrated")]
    OneClass,
}

/// The metrics estimated before the labels, with their API names: CBPE's six for classifiers
/// ([`EstimatedMetric::ALL`]), DLE's two for regression models ([`EstimatedMetric::REGRESSION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimatedMetric {
    RocAuc,
    F1,
    Precision,
    Recall,
    Specificity,
    Accuracy,
    /// Direct loss estimation (`estimate::dle`).
    Mae,
    Rmse,
}

impl EstimatedMetric {
    pub const ALL: [EstimatedMetric; 6] = [
        EstimatedMetric::RocAuc,
        EstimatedMetric::F1,
        EstimatedMetric::Precision,
        EstimatedMetric::Recall,
        EstimatedMetric::Specificity,
        EstimatedMetric::Accuracy,
    ];

    /// The API names, in [`EstimatedMetric::ALL`] order.
    pub const NAMES: [&'static str; 6] = [
        "roc_auc",
        "f1",
        "precision",
        "recall",
        "specificity",
        "accuracy",
    ];

    /// What DLE estimates for a regression model.
    pub const REGRESSION: [EstimatedMetric; 2] = [EstimatedMetric::Mae, EstimatedMetric::Rmse];

    /// The API names, in [`EstimatedMetric::REGRESSION`] order.
    pub const REGRESSION_NAMES: [&'static str; 2] = ["mae", "rmse"];

    pub fn as_str(self) -> &'static str {
        match self {
            EstimatedMetric::RocAuc => "roc_auc",
            EstimatedMetric::F1 => "f1",
            EstimatedMetric::Precision => "precision",
            EstimatedMetric::Recall => "recall",
            EstimatedMetric::Specificity => "specificity",
            EstimatedMetric::Accuracy => "accuracy",
            EstimatedMetric::Mae => "mae",
            EstimatedMetric::Rmse => "rmse",
        }
    }

    pub fn parse(name: &str) -> Option<EstimatedMetric> {
        EstimatedMetric::ALL
            .into_iter()
            .chain(EstimatedMetric::REGRESSION)
            .find(|m| m.as_str() == name)
    }
}

/// One estimated metric of a window: the estimate, its sampling error and the ± 3 σ interval
/// clipped to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub sampling_error: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// A reference's per-metric sampling-error components: (std, fraction of rows concerned).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub std: f64,
    pub fraction: f64,
}

impl Component {
    /// `std / sqrt(n * fraction)`; `None` when undefined (no such reference rows, no window rows).
    fn sampling_error(&self, n: u64) -> Option<f64> {
        let d = (n as f64 * self.fraction).sqrt();
        let se = self.std / d;
        (d > 0.0 && se.is_finite()).then_some(se)
    }
}

/// The sampling-error components of the six metrics, computed on the labelled reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SamplingComponents {
    pub roc_auc: Component,
    pub f1: Component,
    pub precision: Component,
    pub recall: Component,
    pub specificity: Component,
    pub accuracy: Component,
}

impl SamplingComponents {
    fn get(&self, m: EstimatedMetric) -> Option<&Component> {
        Some(match m {
            EstimatedMetric::RocAuc => &self.roc_auc,
            EstimatedMetric::F1 => &self.f1,
            EstimatedMetric::Precision => &self.precision,
            EstimatedMetric::Recall => &self.recall,
            EstimatedMetric::Specificity => &self.specificity,
            EstimatedMetric::Accuracy => &self.accuracy,
            EstimatedMetric::Mae | EstimatedMetric::Rmse => return None,
        })
    }
}

/// A fitted binary CBPE estimator. Small (the isotonic table and a few numbers): it is stored
/// beside the reference profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryCbpe {
    /// The isotonic calibration, when it lowered the reference's calibration error.
    pub calibration: Option<Isotonic>,
    pub components: SamplingComponents,
    /// Reference rows used.
    pub rows: u64,
    /// The rank bins of a window's ROC AUC past [`EXACT_ROWS`] rows ([`rank_edges`] of the
    /// reference's scores).
    pub rank_edges: Vec<f64>,
}

/// One row of a labelled reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReferenceRow {
    pub score: f64,
    pub predicted: bool,
    pub label: bool,
}

pub(super) fn check_score(row: usize, value: f64) -> Result<(), CbpeError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(CbpeError::InvalidScore { row, value })
    }
}

impl BinaryCbpe {
    /// Fits on a labelled reference: the calibration decision and fit, and the sampling-error
    /// components.
    pub fn fit(rows: &[ReferenceRow]) -> Result<BinaryCbpe, CbpeError> {
        if rows.is_empty() {
            return Err(CbpeError::Empty);
        }
        for (i, r) in rows.iter().enumerate() {
            check_score(i, r.score)?;
        }
        let positives = rows.iter().filter(|r| r.label).count();
        if positives == 0 || positives == rows.len() {
            return Err(CbpeError::OneClass);
        }
        let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
        let labels: Vec<bool> = rows.iter().map(|r| r.label).collect();
        let calibration = if needs_calibration(&scores, &labels) {
            let y: Vec<f64> = labels.iter().map(|&l| l as u8 as f64).collect();
            Isotonic::fit(&scores, &y)
        } else {
            None
        };
        Ok(BinaryCbpe {
            calibration,
            components: sampling_components(rows),
            rows: rows.len() as u64,
            rank_edges: rank_edges(&scores),
        })
    }

    /// The calibrated probability of the positive class for a raw score.
    pub fn calibrate(&self, score: f64) -> f64 {
        match &self.calibration {
            Some(iso) => iso.predict(score),
            None => score,
        }
    }

    /// Estimates a window from its (raw score, predicted class) rows; rows whose score is not a
    /// probability are left out.
    pub fn estimate(&self, rows: &[(f64, bool)]) -> BinaryEstimates {
        let mut confusion = ExpectedConfusion::default();
        let mut ranked = RankedProbabilities::default();
        for &(s, predicted) in rows {
            if !(0.0..=1.0).contains(&s) {
                continue;
            }
            let p = self.calibrate(s);
            confusion.observe(predicted, p);
            ranked.observe(&self.rank_edges, s, p);
        }
        let auc = ranked.roc_auc();
        self.from_parts(&confusion, auc)
    }

    /// The estimates of a window from its expected confusion matrix and, when known, its
    /// estimated ROC AUC (computed over the same rows).
    pub fn from_parts(&self, c: &ExpectedConfusion, roc_auc: Option<f64>) -> BinaryEstimates {
        let mut out = BinaryEstimates {
            n: c.n,
            calibrated: self.calibration.is_some(),
            ..BinaryEstimates::default()
        };
        for m in EstimatedMetric::ALL {
            let value = match m {
                EstimatedMetric::RocAuc => roc_auc,
                _ => c.metric(m),
            };
            let Some(value) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            let Some(se) = self.components.get(m).and_then(|s| s.sampling_error(c.n)) else {
                continue;
            };
            let e = Estimate {
                value,
                sampling_error: se,
                ci_low: (value - SAMPLING_ERROR_RANGE * se).max(0.0),
                ci_high: (value + SAMPLING_ERROR_RANGE * se).min(1.0),
            };
            out.metrics.push((m, e));
        }
        out
    }
}

/// A window's estimates, in [`EstimatedMetric::ALL`] order; a metric undefined for the window
/// (no predicted positive for precision, say) is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BinaryEstimates {
    /// Rows estimated (with a score and a prediction).
    pub n: u64,
    /// Whether the scores were calibrated (isotonic) before estimating.
    pub calibrated: bool,
    pub metrics: Vec<(EstimatedMetric, Estimate)>,
}

impl BinaryEstimates {
    pub fn get(&self, m: EstimatedMetric) -> Option<&Estimate> {
        self.metrics.iter().find(|(k, _)| *k == m).map(|(_, e)| e)
    }
}

/// A window's expected confusion matrix: sums of calibrated probabilities by predicted class.
/// Mergeable (exact sums, [`ExactSum`]: the same whatever the order of rows and merges), so it
/// can be kept per hour and added into any window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpectedConfusion {
    pub n: u64,
    pub tp: ExactSum,
    pub fp: ExactSum,
    pub fn_: ExactSum,
    pub tn: ExactSum,
}

impl ExpectedConfusion {
    /// Adds one row: its predicted class and calibrated probability of the positive class.
    pub fn observe(&mut self, predicted: bool, p: f64) {
        self.n += 1;
        if predicted {
            self.tp.add(p);
            self.fp.add(1.0 - p);
        } else {
            self.fn_.add(p);
            self.tn.add(1.0 - p);
        }
    }

    pub fn merge(&mut self, o: &ExpectedConfusion) {
        self.n += o.n;
        self.tp.merge(&o.tp);
        self.fp.merge(&o.fp);
        self.fn_.merge(&o.fn_);
        self.tn.merge(&o.tn);
    }

    /// The metric's estimate (not ROC AUC, which needs the ranking); `None` for a zero
    /// denominator.
    pub fn metric(&self, m: EstimatedMetric) -> Option<f64> {
        let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        let (tp, fp, fn_, tn) = (
            self.tp.value(),
            self.fp.value(),
            self.fn_.value(),
            self.tn.value(),
        );
        match m {
            EstimatedMetric::RocAuc | EstimatedMetric::Mae | EstimatedMetric::Rmse => None,
            EstimatedMetric::Accuracy => ratio(tp + tn, self.n as f64),
            EstimatedMetric::Precision => ratio(tp, tp + fp),
            EstimatedMetric::Recall => ratio(tp, tp + fn_),
            EstimatedMetric::Specificity => ratio(tn, tn + fp),
            EstimatedMetric::F1 => ratio(tp, tp + 0.5 * (fp + fn_)),
        }
    }
}

/// NumPy's `round(x, 5)` (half to even), which NannyML applies to the cumulative counts.
pub(super) fn round5(x: f64) -> f64 {
    (x * 1e5).round_ties_even() / 1e5
}

/// NannyML's `estimate_roc_auc`: rows (raw score, calibrated p) in decreasing raw score; the
/// curve steps by p on the true-positive axis and 1 − p on the false-positive axis; the area
/// by the trapezoid rule. Rows with equal raw scores are ordered by decreasing p (a binary
/// estimator gives them equal p; a multiclass one need not, and a fixed order makes the
/// estimate independent of the order the rows came in). `None` when the expected positives or
/// negatives are zero.
pub fn estimated_roc_auc(rows: &mut [(f64, f64)]) -> Option<f64> {
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let (total_p, total_n) = {
        let (mut tp, mut fp) = (0.0, 0.0);
        for (i, &(_, p)) in rows.iter().enumerate() {
            tp += p;
            fp = (1 + i) as f64 - tp;
        }
        (round5(tp), round5(fp))
    };
    if total_p <= 0.0 || total_n <= 0.0 {
        return None;
    }
    let (mut tp, mut area) = (0.0, 0.0);
    let (mut prev_tpr, mut prev_fpr) = (0.0, 0.0);
    for (i, &(_, p)) in rows.iter().enumerate() {
        tp += p;
        let fp = (1 + i) as f64 - tp;
        let (tpr, fpr) = (round5(tp) / total_p, round5(fp) / total_n);
        area += (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
        (prev_tpr, prev_fpr) = (tpr, fpr);
    }
    Some(area)
}

/// Rows a [`RankedProbabilities`] keeps one by one; past that it sums them per rank bin. A
/// window of up to this many rows is estimated exactly as NannyML does; the bound also caps an
/// hour's stored state at 32 KiB, so that a month of hours is read in a few milliseconds.
pub const EXACT_ROWS: usize = 2048;
/// Rank bins of a [`RankedProbabilities`] past [`EXACT_ROWS`]: equal-count bins of the
/// reference's scores ([`rank_edges`]). 512 (2,048 before): a month of hours is read and
/// merged 4 times faster, and a window drawn like the reference stays within 4.5e-6 of the
/// per-row ROC AUC at a positive rate of 0.3 (see [`RankedProbabilities`]), 20 times under the
/// sampling error of a window of 30M predictions.
pub const RANK_BINS: usize = 512;

/// The inner edges of [`RANK_BINS`] equal-count bins of the reference's raw scores (sorted,
/// without repeats): bin `i` holds scores in `[edges[i - 1], edges[i])`. Equal-count on the
/// reference keeps a window drawn like it at about `n / RANK_BINS` rows a bin, which is what
/// bounds the binned ROC AUC's difference from the per-row curve (see
/// [`RankedProbabilities`]).
pub fn rank_edges(scores: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mut edges: Vec<f64> = (1..RANK_BINS)
        .filter_map(|k| sorted.get(k * n / RANK_BINS).copied())
        .collect();
    edges.dedup();
    if edges.first() == sorted.first() {
        // Nothing lies below the smallest score: no empty first bin.
        edges.remove(0);
    }
    edges
}

fn bin_of(edges: &[f64], score: f64) -> usize {
    edges.partition_point(|&e| e <= score)
}

/// A window's (raw score, calibrated p) rows for its estimated ROC AUC, mergeable and the same
/// whichever way it was built (one scan, hours merged): every row while the window has at most
/// [`EXACT_ROWS`] (the estimate is then NannyML's, rows ordered by score then p), past that
/// (rows, Σ p) per rank bin of the estimator's [`rank_edges`]. Rows of one bin then count as
/// one step of the ROC curve: the area differs from the per-row curve by
/// `Σ_bins Σ_{i before j} (p_i − p_j) / 2` over `P · N` (expected positives times negatives):
/// a bin's k rows in curve order step by `((1 − p_i) / N, p_i / P)`, and the per-row staircase's
/// trapezoids exceed the bin's one straight segment by `Σ_{i before j} (p_i − p_j) / 2 / (P N)`.
/// Each of the `k (k − 1) / 2` pairs is at most the bin's range of p, so the difference is at
/// most `Σ_bins k (k − 1) · (p range in the bin) / (4 P N)` (the tests check it against this
/// bound computed from each window's bins); for a binary estimator p is monotone in the
/// score, so the ranges add up to at most 1 and a window drawn like the reference (about
/// `n / RANK_BINS` rows a bin) differs by at most about `1 / (4 · RANK_BINS² · π(1 − π))` (π
/// its positive rate): 4.5e-6 at π = 0.3 with 512 bins, whatever its size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RankedProbabilities {
    rows: Vec<(f64, f64)>,
    /// Empty while exact; else one (rows, Σ p) per bin of the edges (exact sums: the same
    /// whatever the order of rows and merges).
    bins: Vec<(u64, ExactSum)>,
}

impl RankedProbabilities {
    /// Adds one row: its raw score (in [0, 1]) and calibrated probability; `edges` are the
    /// estimator's [`rank_edges`] for this score.
    pub fn observe(&mut self, edges: &[f64], score: f64, p: f64) {
        if self.bins.is_empty() {
            self.rows.push((score, p));
            if self.rows.len() > EXACT_ROWS {
                self.bin_rows(edges);
            }
        } else {
            self.add_to_bin(edges, score, p);
        }
    }

    /// Whether every row is kept (the window has at most [`EXACT_ROWS`]).
    pub fn is_exact(&self) -> bool {
        self.bins.is_empty()
    }

    fn bin_rows(&mut self, edges: &[f64]) {
        if self.bins.is_empty() {
            self.bins = vec![(0, ExactSum::new()); edges.len() + 1];
        }
        for (s, p) in std::mem::take(&mut self.rows) {
            self.add_to_bin(edges, s, p);
        }
    }

    fn add_to_bin(&mut self, edges: &[f64], score: f64, p: f64) {
        let b = &mut self.bins[bin_of(edges, score)];
        b.0 += 1;
        b.1.add(p);
    }

    /// Adds `o` (built with the same edges).
    pub fn merge(&mut self, edges: &[f64], o: &RankedProbabilities) {
        if self.bins.is_empty() && o.bins.is_empty() && self.rows.len() + o.rows.len() <= EXACT_ROWS
        {
            self.rows.extend_from_slice(&o.rows);
            return;
        }
        self.bin_rows(edges);
        for &(s, p) in &o.rows {
            self.add_to_bin(edges, s, p);
        }
        for (a, b) in self.bins.iter_mut().zip(&o.bins) {
            a.0 += b.0;
            a.1.merge(&b.1);
        }
    }

    /// The estimated ROC AUC ([`estimated_roc_auc`] on the rows, or the same curve over bins).
    pub fn roc_auc(&mut self) -> Option<f64> {
        if self.bins.is_empty() {
            return estimated_roc_auc(&mut self.rows);
        }
        let bins: Vec<(u64, f64)> = self.bins.iter().map(|(n, p)| (*n, p.value())).collect();
        let (count, total_p) = bins
            .iter()
            .fold((0u64, 0.0), |(c, t), &(n, p)| (c + n, t + p));
        let (total_p, total_n) = (round5(total_p), round5(count as f64 - total_p));
        if total_p <= 0.0 || total_n <= 0.0 {
            return None;
        }
        let (mut rows, mut tp, mut area) = (0u64, 0.0, 0.0);
        let (mut prev_tpr, mut prev_fpr) = (0.0, 0.0);
        for &(n, p) in bins.iter().rev().filter(|b| b.0 > 0) {
            rows += n;
            tp += p;
            let fp = rows as f64 - tp;
            let (tpr, fpr) = (round5(tp) / total_p, round5(fp) / total_n);
            area += (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
            (prev_tpr, prev_fpr) = (tpr, fpr);
        }
        Some(area)
    }
}

/// Population standard deviation of a 0/1 variable with `ones` ones among `n`, times `scale`.
pub(super) fn bernoulli_std(ones: f64, n: f64, scale: f64) -> f64 {
    if n == 0.0 {
        return f64::NAN;
    }
    let p = ones / n;
    scale * (p * (1.0 - p)).sqrt()
}

/// NannyML's per-metric components (`sampling_error/binary_classification.py`).
fn sampling_components(rows: &[ReferenceRow]) -> SamplingComponents {
    let n = rows.len() as f64;
    let count = |f: &dyn Fn(&ReferenceRow) -> bool| rows.iter().filter(|r| f(r)).count() as f64;
    let tp = count(&|r| r.predicted && r.label);
    let fp = count(&|r| r.predicted && !r.label);
    let fn_ = count(&|r| !r.predicted && r.label);
    let tn = count(&|r| !r.predicted && !r.label);
    let relevant = tp + fp + fn_;
    // F1's observation-level terms are 1 for TP, 0 for FP and FN, scaled by a correcting factor
    // that makes their mean the F1.
    let f1_scale = relevant / ((fn_ + fp) * 0.5 + tp);
    SamplingComponents {
        roc_auc: auroc_component(rows),
        f1: Component {
            std: bernoulli_std(tp, relevant, f1_scale),
            fraction: relevant / n,
        },
        precision: Component {
            std: bernoulli_std(tp, tp + fp, 1.0),
            fraction: (tp + fp) / n,
        },
        recall: Component {
            std: bernoulli_std(tp, tp + fn_, 1.0),
            fraction: (tp + fn_) / n,
        },
        specificity: Component {
            std: bernoulli_std(tn, tn + fp, 1.0),
            fraction: (tn + fp) / n,
        },
        accuracy: Component {
            std: bernoulli_std(tp + tn, n, 1.0),
            fraction: 1.0,
        },
    }
}

/// NannyML's `auroc_sampling_error_components`: with the minority class as positive (labels
/// and scores flipped when positives are the majority), the share of negatives ranked below
/// each positive; its standard deviation and the positives' fraction. Like NannyML, a positive
/// ranked lowest of all is left out (its rank, 0, is dropped with the negatives' zeros).
pub(super) fn auroc_component(rows: &[ReferenceRow]) -> Component {
    let n = rows.len();
    let positives = rows.iter().filter(|r| r.label).count();
    let flip = positives as f64 / n as f64 > 0.5;
    let mut ranked: Vec<(f64, bool)> = rows
        .iter()
        .map(|r| {
            if flip {
                (1.0 - r.score, !r.label)
            } else {
                (r.score, r.label)
            }
        })
        .collect();
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n_pos = ranked.iter().filter(|r| r.1).count();
    let n_neg = (n - n_pos) as f64;
    let shares: Vec<f64> = ranked
        .iter()
        .enumerate()
        .filter(|(rank, r)| r.1 && *rank > 0)
        .enumerate()
        .map(|(i, (rank, _))| (rank - i) as f64 / n_neg)
        .collect();
    let m = shares.len() as f64;
    let mean = shares.iter().sum::<f64>() / m;
    let var = shares.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / m;
    Component {
        std: var.sqrt(),
        fraction: n_pos as f64 / n as f64,
    }
}

/// Exact ROC AUC (ties count half), for the "already near perfect" check.
fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut neg_below, mut sum, mut i) = (0.0, 0.0, 0);
    while i < idx.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0.0, 0.0);
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if labels[idx[j]] {
                pos += 1.0;
            } else {
                neg += 1.0;
            }
            j += 1;
        }
        sum += pos * (neg_below + neg / 2.0);
        neg_below += neg;
        i = j;
    }
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    sum / (n_pos * neg_below)
}

/// SplitMix64: the splits' shuffles (deterministic, seeded like NannyML's `random_state=42`).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// NannyML's `needs_calibration` with its defaults: 10 stratified shuffle splits, 10 % held out,
/// ECE over 10 equal-count bins.
pub fn needs_calibration(scores: &[f64], labels: &[bool]) -> bool {
    let n = scores.len();
    let positives: Vec<usize> = (0..n).filter(|&i| labels[i]).collect();
    let negatives: Vec<usize> = (0..n).filter(|&i| !labels[i]).collect();
    if positives.is_empty() || negatives.is_empty() {
        return false;
    }
    if roc_auc(scores, labels) > 0.999 {
        return false;
    }
    // scikit-learn's StratifiedShuffleSplit sizes: ceil(10 %) held out, the training rows
    // shared between classes by largest remainder.
    let n_test = (n as f64 * 0.1).ceil() as usize;
    let n_train = n - n_test;
    let exact_pos = positives.len() as f64 * n_train as f64 / n as f64;
    let exact_neg = negatives.len() as f64 * n_train as f64 / n as f64;
    let (mut train_pos, mut train_neg) = (exact_pos.floor() as usize, exact_neg.floor() as usize);
    if train_pos + train_neg < n_train {
        if exact_pos - exact_pos.floor() >= exact_neg - exact_neg.floor() {
            train_pos += 1;
        } else {
            train_neg += 1;
        }
    }
    let mut rng = SplitMix(42);
    let (mut test_scores, mut test_labels, mut test_calibrated) =
        (Vec::new(), Vec::new(), Vec::new());
    let (mut pos, mut neg) = (positives, negatives);
    for _ in 0..10 {
        rng.shuffle(&mut pos);
        rng.shuffle(&mut neg);
        let train: Vec<usize> = pos[..train_pos]
            .iter()
            .chain(&neg[..train_neg])
            .copied()
            .collect();
        let test: Vec<usize> = pos[train_pos..]
            .iter()
            .chain(&neg[train_neg..])
            .copied()
            .collect();
        let x: Vec<f64> = train.iter().map(|&i| scores[i]).collect();
        let y: Vec<f64> = train.iter().map(|&i| labels[i] as u8 as f64).collect();
        let Some(iso) = Isotonic::fit(&x, &y) else {
            return false;
        };
        for &i in &test {
            test_scores.push(scores[i]);
            test_labels.push(labels[i]);
            test_calibrated.push(iso.predict(scores[i]));
        }
    }
    let Some(edges) = bin_edges(test_scores.len(), 10) else {
        return false;
    };
    let before = expected_calibration_error(&test_labels, &test_scores, &edges);
    let after = expected_calibration_error(&test_labels, &test_calibrated, &edges);
    before > after
}

/// NannyML's `_get_bin_index_edges`: `bins` equal-count bins of `len` sorted rows (fewer when
/// `len <= 2 * bins`; `None` below 2 bins).
fn bin_edges(len: usize, bins: usize) -> Option<Vec<(usize, usize)>> {
    let mut bins = bins;
    if len <= 2 * bins {
        bins = len / 2;
        if bins < 2 {
            return None;
        }
    }
    let width = len / bins;
    let mut edges: Vec<usize> = (0..=len).step_by(width).collect();
    *edges.last_mut().expect("at least one edge") = len;
    Some(edges.windows(2).map(|w| (w[0], w[1])).collect())
}

/// NannyML's `_calculate_expected_calibration_error`: rows sorted by probability, per bin the
/// weighted gap between the mean probability and the share of positives.
fn expected_calibration_error(labels: &[bool], probs: &[f64], edges: &[(usize, usize)]) -> f64 {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let n = probs.len() as f64;
    edges
        .iter()
        .map(|&(l, r)| {
            let k = (r - l) as f64;
            let mean_p = idx[l..r].iter().map(|&i| probs[i]).sum::<f64>() / k;
            let mean_y = idx[l..r].iter().filter(|&&i| labels[i]).count() as f64 / k;
            k / n * (mean_p - mean_y).abs()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of a window: a score and a calibrated p = f(score), f increasing (a binary
    /// estimator's), drawn from a fixed generator.
    fn window(n: usize, seed: u64) -> Vec<(f64, f64)> {
        let mut rng = SplitMix(seed);
        (0..n)
            .map(|_| {
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                // Skewed towards low scores, as a classifier of a rare class scores.
                let s = u * u;
                (s, 0.05 + 0.9 * s.powf(0.7))
            })
            .collect()
    }

    /// Past the exact cap the binned curve stays within the bound of the type's doc (the
    /// reference and the window drawn alike), and the state is the same however it was built:
    /// one row at a time or parts merged in any grouping.
    #[test]
    fn binned_roc_auc_is_close_to_the_exact_one_however_built() {
        let reference: Vec<f64> = window(5000, 7).iter().map(|r| r.0).collect();
        let edges = rank_edges(&reference);
        assert!(edges.len() > RANK_BINS / 2 && edges.windows(2).all(|w| w[0] < w[1]));
        let rows = window(200_000, 11);
        let mut exact = rows.clone();
        let want = estimated_roc_auc(&mut exact).unwrap();
        let mut one = RankedProbabilities::default();
        for &(s, p) in &rows {
            one.observe(&edges, s, p);
        }
        assert!(!one.is_exact());
        let got = one.clone().roc_auc().unwrap();
        let pi = rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
        let bound = 1.0 / (4.0 * (RANK_BINS * RANK_BINS) as f64 * pi * (1.0 - pi));
        assert!((got - want).abs() < bound, "{got} vs {want}, bound {bound}");
        for cut in [1, 2048, 2049, 100_000] {
            let (mut a, mut b) = (
                RankedProbabilities::default(),
                RankedProbabilities::default(),
            );
            for &(s, p) in &rows[..cut] {
                a.observe(&edges, s, p);
            }
            for &(s, p) in &rows[cut..] {
                b.observe(&edges, s, p);
            }
            let mut ab = a.clone();
            ab.merge(&edges, &b);
            b.merge(&edges, &a);
            for merged in [ab, b] {
                assert_eq!(merged.bins.iter().map(|b| b.0).sum::<u64>(), 200_000);
                let auc = merged.clone().roc_auc().unwrap();
                assert!((auc - got).abs() < 1e-12, "cut {cut}: {auc} vs {got}");
            }
        }
        // Up to the cap, rows are kept and merged as rows, in any order.
        let small = &rows[..EXACT_ROWS];
        let (mut a, mut b) = (
            RankedProbabilities::default(),
            RankedProbabilities::default(),
        );
        for &(s, p) in &small[..700] {
            a.observe(&edges, s, p);
        }
        for &(s, p) in &small[700..] {
            b.observe(&edges, s, p);
        }
        b.merge(&edges, &a);
        assert!(b.is_exact());
        let mut exact = small.to_vec();
        assert_eq!(b.roc_auc(), estimated_roc_auc(&mut exact));
    }

    #[test]
    fn names_follow_the_metrics() {
        for (m, name) in EstimatedMetric::ALL.into_iter().zip(EstimatedMetric::NAMES) {
            assert_eq!(m.as_str(), name);
            assert_eq!(EstimatedMetric::parse(name), Some(m));
        }
    }

    #[test]
    fn bin_edges_follow_nannyml() {
        // NannyML's docstring: get_bin_edge_indexes(20, 4).
        assert_eq!(
            bin_edges(20, 4).unwrap(),
            vec![(0, 5), (5, 10), (10, 15), (15, 20)]
        );
        assert_eq!(bin_edges(105, 10).unwrap().len(), 10);
        assert_eq!(bin_edges(105, 10).unwrap().last(), Some(&(90, 105)));
        assert_eq!(bin_edges(3, 10), None);
    }

    /// Perfectly calibrated expectations give the realized confusion matrix's metrics when
    /// every probability is 0 or 1.
    #[test]
    fn certain_probabilities_estimate_the_realized_metrics() {
        let mut c = ExpectedConfusion::default();
        for (pred, p) in [
            (true, 1.0),
            (true, 0.0),
            (false, 1.0),
            (false, 0.0),
            (false, 0.0),
        ] {
            c.observe(pred, p);
        }
        assert_eq!(c.metric(EstimatedMetric::Accuracy), Some(0.6));
        assert_eq!(c.metric(EstimatedMetric::Precision), Some(0.5));
        assert_eq!(c.metric(EstimatedMetric::Recall), Some(0.5));
        assert_eq!(c.metric(EstimatedMetric::Specificity), Some(2.0 / 3.0));
        assert_eq!(c.metric(EstimatedMetric::F1), Some(0.5));
        let empty = ExpectedConfusion::default();
        assert_eq!(empty.metric(EstimatedMetric::Precision), None);
    }

    #[test]
    fn a_reference_of_one_class_or_bad_scores_is_refused() {
        let row = |score, label| ReferenceRow {
            score,
            predicted: true,
            label,
        };
        assert_eq!(BinaryCbpe::fit(&[]), Err(CbpeError::Empty));
        assert_eq!(
            BinaryCbpe::fit(&[row(0.3, true), row(0.9, true)]),
            Err(CbpeError::OneClass)
        );
        assert_eq!(
            BinaryCbpe::fit(&[row(0.3, true), row(1.5, false)]),
            Err(CbpeError::InvalidScore { row: 1, value: 1.5 })
        );
    }
}
