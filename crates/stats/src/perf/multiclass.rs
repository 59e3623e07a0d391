//! Multiclass classification: mergeable state and its metrics.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::exact::ExactSum;

use super::binary::{f1_metric, f1_var, mean_est};
use super::outcome::{Metric, MetricConfig};
use super::rank;
use super::PerfError;

const SCORE_BINS: usize = super::binary::SCORE_BINS;

/// Most classes a report names in `per_class` and in its confusion matrix: a model with
/// thousands of classes (or a regression target taken for classes) still gets a small reply.
pub const MAX_REPORTED_CLASSES: usize = 50;

/// The last row and column of a report's confusion matrix when classes were left out: the
/// rows of every class not named.
pub const OTHER_CLASSES: &str = "(other classes)";

#[derive(Debug, Default, Clone, Copy)]
struct ClassCounts {
    tp: u64,
    support: u64,
    predicted: u64,
}

/// Everything needed for multiclass metrics of one window. Classes are strings; the set of
/// classes is every class seen as a label, a prediction or a score key.
///
/// Invariants: merging the states of any partition of the rows gives the metrics of one state
/// fed all rows, in any order, to the bit (exact sums, [`ExactSum`]); serde round-trips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MulticlassState {
    /// true class → predicted class → rows.
    confusion: BTreeMap<String, BTreeMap<String, u64>>,
    /// Classes seen only as predictions or score keys are kept here too, so they count.
    classes: BTreeSet<String>,
    n_scored: u64,
    /// Exact sums ([`ExactSum`]): the same whatever the order of the rows and merges.
    log_loss_sum: ExactSum,
    log_loss_sum2: ExactSum,
    /// Per class: histograms (1,000 equal bins on [0, 1]) of that class's score over rows of
    /// the class (`pos`) and of other classes (`neg`): one-vs-rest ROC-AUC.
    ovr: BTreeMap<String, OvrHistogram>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OvrHistogram {
    #[serde(deserialize_with = "super::exact_len::<_, _, SCORE_BINS>")]
    pos: Vec<u64>,
    #[serde(deserialize_with = "super::exact_len::<_, _, SCORE_BINS>")]
    neg: Vec<u64>,
}

impl OvrHistogram {
    fn new() -> Self {
        OvrHistogram {
            pos: vec![0; SCORE_BINS],
            neg: vec![0; SCORE_BINS],
        }
    }

    fn groups(&self) -> Vec<(u64, u64)> {
        self.pos
            .iter()
            .zip(&self.neg)
            .filter(|(p, n)| **p + **n > 0)
            .map(|(p, n)| (*p, *n))
            .collect()
    }
}

impl MulticlassState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Labelled rows observed.
    pub fn count(&self) -> u64 {
        self.confusion.values().flat_map(|r| r.values()).sum()
    }

    /// Adds one labelled prediction. `scores`, when present, are the model's probabilities
    /// per class (each a finite number in [0, 1]); they feed log loss and one-vs-rest ROC-AUC.
    /// A row without a score for its true class has log loss −ln(eps), as if it scored 0; a
    /// class absent from a row's scores adds nothing to that class's ROC-AUC. Rejects (changing
    /// nothing) an invalid score.
    pub fn observe<S: AsRef<str>>(
        &mut self,
        label: &str,
        prediction: &str,
        scores: Option<&[(S, f64)]>,
    ) -> Result<(), PerfError> {
        if let Some(scores) = scores {
            if let Some((_, s)) = scores.iter().find(|(_, s)| !(0.0..=1.0).contains(s)) {
                return Err(PerfError::InvalidScore(*s));
            }
        }
        // Look up before inserting: `entry` would allocate the key strings on every row.
        if !self.confusion.contains_key(label) {
            self.confusion.insert(label.to_owned(), BTreeMap::new());
        }
        let row = self.confusion.get_mut(label).expect("inserted above");
        match row.get_mut(prediction) {
            Some(c) => *c += 1,
            None => {
                row.insert(prediction.to_owned(), 1);
            }
        }
        for c in [label, prediction] {
            if !self.classes.contains(c) {
                self.classes.insert(c.to_owned());
            }
        }
        let Some(scores) = scores else { return Ok(()) };
        self.n_scored += 1;
        let p_true = scores
            .iter()
            .find(|(c, _)| c.as_ref() == label)
            .map_or(0.0, |(_, s)| *s);
        let ll = -p_true.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
        self.log_loss_sum.add(ll);
        self.log_loss_sum2.add(ll * ll);
        for (c, s) in scores {
            let c = c.as_ref();
            if !self.classes.contains(c) {
                self.classes.insert(c.to_owned());
            }
            if !self.ovr.contains_key(c) {
                self.ovr.insert(c.to_owned(), OvrHistogram::new());
            }
            let h = self.ovr.get_mut(c).expect("inserted above");
            let b = ((s * SCORE_BINS as f64).floor() as usize).min(SCORE_BINS - 1);
            if c == label {
                h.pos[b] += 1;
            } else {
                h.neg[b] += 1;
            }
        }
        Ok(())
    }

    /// Adds all rows of `other`.
    pub fn merge(&mut self, other: &MulticlassState) -> Result<(), PerfError> {
        if other
            .ovr
            .values()
            .chain(self.ovr.values())
            .any(|h| h.pos.len() != SCORE_BINS || h.neg.len() != SCORE_BINS)
        {
            return Err(PerfError::Incompatible("score bin layout".into()));
        }
        for (t, row) in &other.confusion {
            let mine = self.confusion.entry(t.clone()).or_default();
            for (p, c) in row {
                *mine.entry(p.clone()).or_insert(0) += c;
            }
        }
        self.classes.extend(other.classes.iter().cloned());
        self.n_scored += other.n_scored;
        self.log_loss_sum.merge(&other.log_loss_sum);
        self.log_loss_sum2.merge(&other.log_loss_sum2);
        for (c, h) in &other.ovr {
            let mine = self.ovr.entry(c.clone()).or_insert_with(OvrHistogram::new);
            for (a, b) in mine.pos.iter_mut().zip(&h.pos) {
                *a += b;
            }
            for (a, b) in mine.neg.iter_mut().zip(&h.neg) {
                *a += b;
            }
        }
        Ok(())
    }

    /// The confusion matrix over all classes, sorted by name.
    pub fn confusion_matrix(&self) -> ConfusionMatrix {
        let labels: Vec<String> = self.classes.iter().cloned().collect();
        let counts = labels
            .iter()
            .map(|t| {
                labels
                    .iter()
                    .map(|p| {
                        self.confusion
                            .get(t)
                            .and_then(|r| r.get(p))
                            .copied()
                            .unwrap_or(0)
                    })
                    .collect()
            })
            .collect();
        ConfusionMatrix { labels, counts }
    }

    pub(crate) fn log_loss_est(&self) -> Option<(f64, f64)> {
        mean_est(
            self.n_scored,
            self.log_loss_sum.value(),
            self.log_loss_sum2.value(),
        )
    }

    /// Per class (every class seen): true positives, support (rows labelled with it) and rows
    /// predicted as it. One pass over the non-zero cells: time and memory grow with the cells
    /// that hold rows, never with classes squared.
    fn class_counts(&self) -> BTreeMap<&str, ClassCounts> {
        let mut out: BTreeMap<&str, ClassCounts> = self
            .classes
            .iter()
            .map(|c| (c.as_str(), ClassCounts::default()))
            .collect();
        for (t, row) in &self.confusion {
            for (p, &c) in row {
                out.entry(t.as_str()).or_default().support += c;
                out.entry(p.as_str()).or_default().predicted += c;
                if t == p {
                    out.entry(t.as_str()).or_default().tp += c;
                }
            }
        }
        out
    }

    /// Rows whose prediction equals their label.
    pub fn correct(&self) -> u64 {
        self.confusion
            .iter()
            .filter_map(|(t, row)| row.get(t))
            .sum()
    }

    /// Macro F1 over classes where it is defined, and its variance Σ Var_c / K² (per-class
    /// delta-method variances, classes treated as independent).
    pub(crate) fn f1_macro_est(&self) -> Option<(f64, f64)> {
        let per: Vec<(f64, f64)> = self
            .class_counts()
            .values()
            .filter_map(|c| {
                let (tp, fp, fn_) = (c.tp, c.predicted - c.tp, c.support - c.tp);
                (tp + fp + fn_ > 0).then(|| {
                    (
                        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64,
                        f1_var(tp, fp, fn_),
                    )
                })
            })
            .collect();
        if per.is_empty() {
            return None;
        }
        let k = per.len() as f64;
        Some((
            per.iter().map(|x| x.0).sum::<f64>() / k,
            per.iter().map(|x| x.1).sum::<f64>() / (k * k),
        ))
    }

    /// The confusion matrix a report shows: every class when there are at most
    /// [`MAX_REPORTED_CLASSES`], else the `reported` classes (sorted by name) and one last row
    /// and column, [`OTHER_CLASSES`], summing the rest.
    fn reported_confusion(&self, reported: &BTreeSet<&str>) -> ConfusionMatrix {
        if reported.len() == self.classes.len() {
            return self.confusion_matrix();
        }
        let mut labels: Vec<String> = reported.iter().map(|c| (*c).to_owned()).collect();
        let index = |c: &str| {
            reported
                .iter()
                .position(|r| *r == c)
                .unwrap_or(reported.len())
        };
        labels.push(OTHER_CLASSES.to_owned());
        let k = labels.len();
        let mut counts = vec![vec![0u64; k]; k];
        for (t, row) in &self.confusion {
            let i = index(t);
            for (p, c) in row {
                counts[i][index(p)] += c;
            }
        }
        ConfusionMatrix { labels, counts }
    }

    /// Macro one-vs-rest ROC-AUC over classes whose AUC is defined, and its variance
    /// Σ Var_c / K² (per-class DeLong variances; the covariance between classes, which share
    /// rows, is ignored: an approximation).
    pub(crate) fn roc_auc_est(&self) -> Option<(f64, f64)> {
        let stats: Vec<_> = self
            .ovr
            .values()
            .filter_map(|h| rank::auc_stats(&h.groups()))
            .collect();
        if stats.is_empty() {
            return None;
        }
        let k = stats.len() as f64;
        let auc = stats.iter().map(|s| s.auc).sum::<f64>() / k;
        let var = stats.iter().map(|s| s.var).sum::<f64>() / (k * k);
        Some((auc, var))
    }

    /// All metrics of this window. Averages are over every class; per-class metrics and the
    /// confusion matrix name at most [`MAX_REPORTED_CLASSES`] classes (most labelled rows
    /// first, then by name) and those of `config.named_classes`, so that a report stays small
    /// whatever the number of classes.
    pub fn metrics(&self, config: &MetricConfig) -> MulticlassReport {
        let counts = self.class_counts();
        let n = self.count();
        let correct = self.correct();
        let mut by_support: Vec<(&str, u64)> =
            counts.iter().map(|(c, k)| (*c, k.support)).collect();
        by_support.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut reported: BTreeSet<&str> = by_support
            .iter()
            .take(MAX_REPORTED_CLASSES)
            .map(|(c, _)| *c)
            .collect();
        for c in &config.named_classes {
            if let Some((known, _)) = counts.get_key_value(c.as_str()) {
                reported.insert(known);
            }
        }
        let mut per_class = BTreeMap::new();
        // (value, variance, support) per class and metric, for the averages.
        let mut prec = Vec::new();
        let mut rec = Vec::new();
        let mut f1s = Vec::new();
        for (class, c) in &counts {
            let (tp, support, predicted) = (c.tp, c.support, c.predicted);
            let (fp, fn_) = (predicted - tp, support - tp);
            if predicted > 0 {
                let p = tp as f64 / predicted as f64;
                prec.push((p, p * (1.0 - p) / predicted as f64, support));
            }
            if support > 0 {
                let r = tp as f64 / support as f64;
                rec.push((r, r * (1.0 - r) / support as f64, support));
            }
            if tp + fp + fn_ > 0 {
                let f = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
                f1s.push((f, f1_var(tp, fp, fn_), support));
            }
            if !reported.contains(class) {
                continue;
            }
            let roc_auc = match self.ovr.get(*class) {
                Some(h) => rank::auc_metric(&h.groups(), config),
                None => Metric::undefined("no scores for this class"),
            };
            per_class.insert(
                (*class).to_owned(),
                ClassMetrics {
                    support,
                    precision: config.proportion(tp, predicted, "class never predicted"),
                    recall: config.proportion(tp, support, "class never labelled"),
                    f1: f1_metric(tp, fp, fn_, config),
                    roc_auc,
                },
            );
        }
        let micro = config.proportion(correct, n, "no labelled rows");
        let avg = |v: &[(f64, f64, u64)], weighted: bool| -> Metric {
            if n == 0 || v.is_empty() {
                return Metric::undefined("no class has this metric defined");
            }
            if let Some(g) = config.gate(n) {
                return g;
            }
            let total_w: f64 = if weighted {
                v.iter().map(|x| x.2 as f64).sum()
            } else {
                v.len() as f64
            };
            if total_w == 0.0 {
                return Metric::undefined("no labelled class has this metric defined");
            }
            let w = |x: &(f64, f64, u64)| {
                if weighted {
                    x.2 as f64 / total_w
                } else {
                    1.0 / total_w
                }
            };
            let value = v.iter().map(|x| w(x) * x.0).sum();
            let var = v.iter().map(|x| w(x) * w(x) * x.1).sum();
            Metric::normal(value, var, n, (0.0, 1.0))
        };
        let roc_auc = match self.roc_auc_est() {
            None if self.n_scored == 0 => Metric::undefined("no scored labelled rows"),
            None => Metric::undefined("no class has both positive and negative rows"),
            Some((v, var)) => config
                .gate(self.n_scored)
                .unwrap_or_else(|| Metric::normal(v, var, self.n_scored, (0.0, 1.0))),
        };
        let log_loss = match self.log_loss_est() {
            None => Metric::undefined("no scored labelled rows"),
            Some((v, var)) => config
                .gate(self.n_scored)
                .unwrap_or_else(|| Metric::normal(v, var, self.n_scored, (0.0, f64::MAX))),
        };
        MulticlassReport {
            n,
            n_scored: self.n_scored,
            accuracy: micro.clone(),
            precision_micro: micro.clone(),
            recall_micro: micro.clone(),
            f1_micro: micro,
            precision_macro: avg(&prec, false),
            recall_macro: avg(&rec, false),
            f1_macro: avg(&f1s, false),
            precision_weighted: avg(&prec, true),
            recall_weighted: avg(&rec, true),
            f1_weighted: avg(&f1s, true),
            roc_auc,
            log_loss,
            classes: counts.len() as u64,
            classes_omitted: (counts.len() - reported.len()) as u64,
            confusion_matrix: self.reported_confusion(&reported),
            per_class,
        }
    }
}

/// A confusion matrix: `counts[i][j]` rows of true class `labels[i]` predicted as
/// `labels[j]`. Labels sorted by name (as scikit-learn sorts them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Class names, sorted.
    pub labels: Vec<String>,
    /// Rows: true class; columns: predicted class.
    pub counts: Vec<Vec<u64>>,
}

/// Metrics of one class (one-vs-rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Rows whose true class is this one.
    pub support: u64,
    /// TP / predicted as this class.
    pub precision: Metric,
    /// TP / support.
    pub recall: Metric,
    /// 2TP / (2TP + FP + FN).
    pub f1: Metric,
    /// One-vs-rest ROC-AUC of this class's score (binned, 1,000 bins).
    pub roc_auc: Metric,
}

/// Multiclass metrics of one window; names follow scikit-learn (`average=` as a suffix).
///
/// Averages: `macro` is the unweighted mean over classes whose per-class value is defined
/// (scikit-learn with `zero_division=np.nan`), `weighted` weights them by support, `micro`
/// equals accuracy for single-label data. Their intervals are normal approximations with
/// per-class binomial (F1: delta-method) variances, treating classes as independent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassReport {
    /// Labelled rows.
    pub n: u64,
    /// Labelled rows with scores.
    pub n_scored: u64,
    /// Share of rows whose prediction equals the label.
    pub accuracy: Metric,
    /// Micro-averaged precision (= accuracy).
    pub precision_micro: Metric,
    /// Micro-averaged recall (= accuracy).
    pub recall_micro: Metric,
    /// Micro-averaged F1 (= accuracy).
    pub f1_micro: Metric,
    /// Macro-averaged precision.
    pub precision_macro: Metric,
    /// Macro-averaged recall.
    pub recall_macro: Metric,
    /// Macro-averaged F1.
    pub f1_macro: Metric,
    /// Support-weighted precision.
    pub precision_weighted: Metric,
    /// Support-weighted recall.
    pub recall_weighted: Metric,
    /// Support-weighted F1.
    pub f1_weighted: Metric,
    /// Macro one-vs-rest ROC-AUC from 1,000-bin histograms (exact on the binned scores).
    pub roc_auc: Metric,
    /// Mean −ln(probability of the true class), clipped to [eps, 1 − eps].
    pub log_loss: Metric,
    /// Classes seen (as a label, a prediction or a score key).
    #[serde(default)]
    pub classes: u64,
    /// Classes left out of `per_class` and folded into the confusion matrix's
    /// [`OTHER_CLASSES`] row and column: all but the [`MAX_REPORTED_CLASSES`] with most
    /// labelled rows. 0 when every class is named.
    #[serde(default)]
    pub classes_omitted: u64,
    /// Per-class metrics by class name (at most [`MAX_REPORTED_CLASSES`] classes).
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// Counts by true and predicted class (at most [`MAX_REPORTED_CLASSES`] classes and
    /// [`OTHER_CLASSES`]).
    pub confusion_matrix: ConfusionMatrix,
}
