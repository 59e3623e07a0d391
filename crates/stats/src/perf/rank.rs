//! Ranking metrics (ROC-AUC, average precision) on groups of tied scores.
//!
//! Both the exact path (raw `(score, label)` pairs, ties = equal scores) and the binned path
//! (a fixed-edge histogram, ties = same bin) reduce to the same input: a list of score groups in
//! ascending score order, each with its count of positives and negatives. One implementation
//! therefore serves both, and the binned value *is* scikit-learn's value on the binned scores.

use super::outcome::{Metric, MetricConfig, Z95};

/// ROC-AUC, its DeLong variance and the largest error that the grouping of scores can cause.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AucStats {
    pub auc: f64,
    /// DeLong et al. (1988) variance; Hanley-McNeil (1982) when a class has one row.
    pub var: f64,
    /// `Σ pos_g·neg_g / (2·P·N)`: pairs that share a group count as half a concordance, so the
    /// AUC of the ungrouped scores lies within this distance of the grouped AUC.
    pub tie_bound: f64,
}

/// `groups`: `(positives, negatives)` per score group, ascending by score.
pub(crate) fn auc_stats(groups: &[(u64, u64)]) -> Option<AucStats> {
    let n_pos: u64 = groups.iter().map(|g| g.0).sum();
    let n_neg: u64 = groups.iter().map(|g| g.1).sum();
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let (p, n) = (n_pos as f64, n_neg as f64);
    // Mann-Whitney with midranks: each positive beats the negatives below its group and ties
    // half of those in it. V10 is that per-positive share (DeLong's structural component).
    let mut neg_below = 0.0;
    let mut concordant = 0.0;
    let mut tied_pairs = 0.0;
    for &(gp, gn) in groups {
        let (gp, gn) = (gp as f64, gn as f64);
        concordant += gp * (neg_below + 0.5 * gn);
        tied_pairs += gp * gn;
        neg_below += gn;
    }
    let auc = concordant / (p * n);
    let var = if n_pos >= 2 && n_neg >= 2 {
        let mut s10 = 0.0;
        let mut s01 = 0.0;
        let mut neg_below = 0.0;
        let mut pos_above = p;
        for &(gp, gn) in groups {
            let (gpf, gnf) = (gp as f64, gn as f64);
            pos_above -= gpf;
            let v10 = (neg_below + 0.5 * gnf) / n;
            let v01 = (pos_above + 0.5 * gpf) / p;
            s10 += gpf * (v10 - auc) * (v10 - auc);
            s01 += gnf * (v01 - auc) * (v01 - auc);
            neg_below += gnf;
        }
        s10 / (p - 1.0) / p + s01 / (n - 1.0) / n
    } else {
        hanley_mcneil_var(auc, p, n)
    };
    Some(AucStats {
        auc,
        var: var.max(0.0),
        tie_bound: tied_pairs / (2.0 * p * n),
    })
}

fn hanley_mcneil_var(a: f64, p: f64, n: f64) -> f64 {
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    (a * (1.0 - a) + (p - 1.0) * (q1 - a * a) + (n - 1.0) * (q2 - a * a)) / (p * n)
}

/// Average precision as scikit-learn defines it, `Σ (R_k − R_{k−1})·P_k` over thresholds at
/// each distinct score (group), from the highest down. `None` without positives.
pub(crate) fn average_precision(groups: &[(u64, u64)]) -> Option<f64> {
    let n_pos: u64 = groups.iter().map(|g| g.0).sum();
    if n_pos == 0 {
        return None;
    }
    let mut tp = 0u64;
    let mut fp = 0u64;
    let mut ap = 0.0;
    for &(gp, gn) in groups.iter().rev() {
        tp += gp;
        fp += gn;
        if gp > 0 {
            ap += (gp as f64 / n_pos as f64) * (tp as f64 / (tp + fp) as f64);
        }
    }
    Some(ap)
}

/// Sorts pairs by score and groups equal scores. Scores must be non-NaN.
pub(crate) fn groups_from_pairs(pairs: &[(f64, bool)]) -> Vec<(u64, u64)> {
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    // Unstable: rows of one score form one group whatever their order (a file's window may
    // keep a million scores, where the stable sort's merging cost a tenth of the run).
    sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut groups: Vec<(u64, u64)> = Vec::new();
    let mut last: Option<f64> = None;
    for (s, y) in sorted {
        // `==` (not total order) so that -0.0 and 0.0 form one group, as in numpy.
        if last != Some(s) {
            groups.push((0, 0));
            last = Some(s);
        }
        let g = groups.last_mut().expect("a group was just pushed");
        if y {
            g.0 += 1;
        } else {
            g.1 += 1;
        }
    }
    groups
}

/// The AUC metric (DeLong interval) from grouped scores.
pub(crate) fn auc_metric(groups: &[(u64, u64)], config: &MetricConfig) -> Metric {
    let n: u64 = groups.iter().map(|g| g.0 + g.1).sum();
    match auc_stats(groups) {
        None if n == 0 => Metric::undefined("no scored labelled rows"),
        None => Metric::undefined("only one class among the labels"),
        Some(s) => match config.gate(n) {
            Some(m) => m,
            None => Metric::normal(s.auc, s.var, n, (0.0, 1.0)),
        },
    }
}

/// Variance of average precision on the logit scale, after Boyd, Eng and Page (2013), "Area
/// under the precision-recall curve: point estimates and confidence intervals": the logit of AP
/// is taken as normal with standard error `1 / sqrt(P·AP·(1−AP))`, P = positives. Returns
/// `(ap, logit interval)`.
pub(crate) fn ap_interval(ap: f64, n_pos: u64) -> (f64, f64) {
    if ap <= 0.0 || ap >= 1.0 {
        return (ap, ap);
    }
    let se = 1.0 / (n_pos as f64 * ap * (1.0 - ap)).sqrt();
    let logit = (ap / (1.0 - ap)).ln();
    let inv = |x: f64| 1.0 / (1.0 + (-x).exp());
    (inv(logit - Z95 * se), inv(logit + Z95 * se))
}

/// The variance of AP implied by the logit interval's standard error (delta method):
/// `AP·(1−AP) / P`. Used for baseline comparison.
pub(crate) fn ap_var(ap: f64, n_pos: u64) -> f64 {
    ap * (1.0 - ap) / n_pos as f64
}

/// The AP metric (logit interval) from grouped scores.
pub(crate) fn ap_metric(groups: &[(u64, u64)], config: &MetricConfig) -> Metric {
    let n_pos: u64 = groups.iter().map(|g| g.0).sum();
    let n: u64 = groups.iter().map(|g| g.0 + g.1).sum();
    if n == 0 {
        return Metric::undefined("no scored labelled rows");
    }
    match average_precision(groups) {
        None => Metric::undefined("no positive labels"),
        Some(ap) => match config.gate(n) {
            Some(m) => m,
            None => {
                let (lo, hi) = ap_interval(ap, n_pos);
                Metric::defined(ap, n, lo, hi, (0.0, 1.0))
            }
        },
    }
}

fn validate_pairs(pairs: &[(f64, bool)]) -> Option<Metric> {
    pairs
        .iter()
        .any(|p| !p.0.is_finite())
        .then(|| Metric::undefined("non-finite score"))
}

/// Exact ROC-AUC on raw `(score, is_positive)` pairs: equals
/// `sklearn.metrics.roc_auc_score(labels, scores)` to floating-point rounding (checked to
/// 1e-9), ties between scores counting one half. The interval is DeLong's (Hanley-McNeil when
/// a class has a single row). Order of `pairs` does not matter. Scores may be any finite
/// reals; a non-finite score makes the result `Undefined`. O(n log n).
pub fn roc_auc_exact(pairs: &[(f64, bool)], config: &MetricConfig) -> Metric {
    if let Some(m) = validate_pairs(pairs) {
        return m;
    }
    auc_metric(&groups_from_pairs(pairs), config)
}

/// Exact average precision on raw `(score, is_positive)` pairs: equals
/// `sklearn.metrics.average_precision_score(labels, scores)` to floating-point rounding
/// (checked to 1e-9). The interval is the logit interval of Boyd et al. (2013). O(n log n).
pub fn average_precision_exact(pairs: &[(f64, bool)], config: &MetricConfig) -> Metric {
    if let Some(m) = validate_pairs(pairs) {
        return m;
    }
    ap_metric(&groups_from_pairs(pairs), config)
}

/// DeLong variance of the exact ROC-AUC of `pairs` (for tests and comparisons on raw data).
/// `None` when a class is missing or a score is not finite.
pub fn roc_auc_exact_variance(pairs: &[(f64, bool)]) -> Option<f64> {
    if pairs.iter().any(|p| !p.0.is_finite()) {
        return None;
    }
    auc_stats(&groups_from_pairs(pairs)).map(|s| s.var)
}
