//! Group fairness of a binary classifier from per-group counts: selection rate, true and false
//! positive rates and precision per group, and the gaps between groups that `fairlearn.metrics`
//! defines (demographic parity difference and ratio, equal opportunity difference, equalized
//! odds difference), each with a 95 % interval.
//!
//! # Definitions (fairlearn 0.15, `method="between_groups"`, `agg="worst_case"`)
//! - selection rate of a group: predicted favourable / predictions (labels not needed);
//! - demographic parity difference: highest selection rate − lowest; ratio: lowest / highest
//!   (disparate impact; under 0.8 the four-fifths rule is violated);
//! - equal opportunity difference: highest true positive rate − lowest;
//! - equalized odds difference: the larger of the true positive rate gap and the false positive
//!   rate gap.
//!
//! # Intervals
//! - a group's rate: Wilson score interval;
//! - a difference: Newcombe's hybrid score interval (Newcombe 1998, method 10: the two groups'
//!   Wilson limits combined), of the highest group minus the lowest, as
//!   `statsmodels.stats.proportion.confint_proportions_2indep(method="newcomb")`;
//! - the ratio: the log interval with 0.5 added to each count and each size (statsmodels'
//!   default `method="log-adjusted"`), so a group with no selection still gets one;
//! - equalized odds: the interval of whichever gap (TPR or FPR) is the larger.
//!
//!   The groups compared are the extremes observed, and the interval treats them as if they had
//!   been chosen beforehand: with many groups it is somewhat too narrow.
//!
//! # Small groups
//! A group whose own denominator (predictions for the selection rate, labelled favourable rows
//! for the TPR, ...) is under the minimum group size has that rate `insufficient_sample`, and is
//! left out of that rate's gap (named in `left_out`): a group of three rows would otherwise make
//! every gap 1. With fewer than two groups at the minimum a gap is `insufficient_sample` too.

use serde::{Deserialize, Serialize};

use crate::perf::{Metric, MetricConfig, Z95};

/// The four-fifths (80 %) rule of the US EEOC's Uniform Guidelines: a group selected at under
/// four fifths of the rate of the most selected group is evidence of adverse impact.
pub const FOUR_FIFTHS: f64 = 0.8;

/// Counts of one group in one window: every prediction, and the labelled ones by outcome
/// (favourable is the positive side).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// Predictions of the group.
    pub predictions: u64,
    /// Of them, predicted favourable.
    pub selected: u64,
    /// Labelled rows by (predicted, actual) favourable.
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl GroupCounts {
    /// Adds one prediction: whether it was predicted favourable, and whether its label is
    /// favourable when it has one.
    pub fn observe(&mut self, selected: bool, label: Option<bool>) {
        self.predictions += 1;
        self.selected += u64::from(selected);
        match (selected, label) {
            (true, Some(true)) => self.tp += 1,
            (true, Some(false)) => self.fp += 1,
            (false, Some(false)) => self.tn += 1,
            (false, Some(true)) => self.fn_ += 1,
            (_, None) => {}
        }
    }

    pub fn merge(&mut self, o: &GroupCounts) {
        self.predictions += o.predictions;
        self.selected += o.selected;
        self.tp += o.tp;
        self.fp += o.fp;
        self.tn += o.tn;
        self.fn_ += o.fn_;
    }

    pub fn labelled(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }
}

/// One group's rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    pub group: String,
    #[serde(flatten)]
    pub counts: GroupCounts,
    pub labelled: u64,
    /// fairlearn `selection_rate`: over every prediction of the group.
    pub selection_rate: Metric,
    /// fairlearn `true_positive_rate` (recall of the favourable outcome), labelled rows.
    pub true_positive_rate: Metric,
    /// fairlearn `false_positive_rate`, labelled rows.
    pub false_positive_rate: Metric,
    /// Precision of the favourable prediction (scikit-learn `precision_score`), labelled rows.
    pub precision: Metric,
}

/// A gap between groups: the metric, and the two groups it is between (highest, lowest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(flatten)]
    pub metric: Metric,
    /// The group with the highest rate, then the one with the lowest; absent when the gap has
    /// no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between: Option<[String; 2]>,
    /// Groups under the minimum group size for this rate, not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

impl Gap {
    pub fn value(&self) -> Option<f64> {
        self.metric.value()
    }
}

/// Whether the lowest selection rate is at least four fifths of the highest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FourFifths {
    /// Ratio at or above 0.8.
    Met,
    /// Ratio under 0.8.
    Violated,
    /// No ratio (too few rows, or no group selected).
    NotEvaluated,
}

/// The gaps of one attribute over one window or version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessMeasures {
    /// fairlearn `demographic_parity_difference`.
    pub demographic_parity_difference: Gap,
    /// fairlearn `demographic_parity_ratio` (disparate impact).
    pub demographic_parity_ratio: Gap,
    pub four_fifths_rule: FourFifths,
    /// fairlearn `equal_opportunity_difference`: the gap in true positive rates.
    pub equal_opportunity_difference: Gap,
    /// fairlearn `equalized_odds_difference`: the larger of the TPR and FPR gaps.
    pub equalized_odds_difference: Gap,
}

/// The measures a rule or a chart can name, in the report's order.
pub const MEASURES: [&str; 4] = [
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equalized_odds_difference",
];

impl FairnessMeasures {
    /// The gap named `name` (one of [`MEASURES`]).
    pub fn get(&self, name: &str) -> Option<&Gap> {
        match name {
            "demographic_parity_difference" => Some(&self.demographic_parity_difference),
            "demographic_parity_ratio" => Some(&self.demographic_parity_ratio),
            "equal_opportunity_difference" => Some(&self.equal_opportunity_difference),
            "equalized_odds_difference" => Some(&self.equalized_odds_difference),
            _ => None,
        }
    }
}

/// Wilson score interval (95 %) of `k` in `n`, `n > 0`.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    crate::perf::wilson_interval(k, n)
}

/// Newcombe's hybrid score interval (95 %) of `k1/n1 − k2/n2` (both `n > 0`).
pub fn newcombe_difference(k1: u64, n1: u64, k2: u64, n2: u64) -> (f64, f64) {
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let (l1, u1) = wilson(k1, n1);
    let (l2, u2) = wilson(k2, n2);
    let d = p1 - p2;
    (
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    )
}

/// The 95 % log interval of the ratio `k1/n1 ÷ k2/n2` with 0.5 added to each count and size
/// (statsmodels' `log-adjusted`), defined with zero counts.
pub fn log_adjusted_ratio(k1: u64, n1: u64, k2: u64, n2: u64) -> (f64, f64) {
    let (k1, n1, k2, n2) = (
        k1 as f64 + 0.5,
        n1 as f64 + 0.5,
        k2 as f64 + 0.5,
        n2 as f64 + 0.5,
    );
    let ratio = (k1 / n1) / (k2 / n2);
    let half = Z95 * (1.0 / k1 - 1.0 / n1 + 1.0 / k2 - 1.0 / n2).max(0.0).sqrt();
    ((ratio.ln() - half).exp(), (ratio.ln() + half).exp())
}

/// Which rate of a group a gap compares: (successes, denominator).
type Rate = fn(&GroupCounts) -> (u64, u64);

fn selection(c: &GroupCounts) -> (u64, u64) {
    (c.selected, c.predictions)
}
fn tpr(c: &GroupCounts) -> (u64, u64) {
    (c.tp, c.tp + c.fn_)
}
fn fpr(c: &GroupCounts) -> (u64, u64) {
    (c.fp, c.fp + c.tn)
}

/// The extremes of a rate over the groups at the minimum size: `(highest, lowest)` as
/// (group index, successes, denominator), or the gap's reason for having no value.
struct Extremes {
    high: (usize, u64, u64),
    low: (usize, u64, u64),
    left_out: Vec<String>,
}

fn extremes(
    groups: &[(String, GroupCounts)],
    rate: Rate,
    min: u64,
    what: &str,
) -> Result<Extremes, Gap> {
    let mut eligible = Vec::new();
    let mut left_out = Vec::new();
    let mut sizes = Vec::new();
    for (i, (name, c)) in groups.iter().enumerate() {
        let (k, n) = rate(c);
        if n == 0 {
            continue;
        }
        sizes.push(n);
        if n >= min {
            eligible.push((i, k, n));
        } else {
            left_out.push(name.clone());
        }
    }
    let no_value = |metric: Metric, left_out: Vec<String>| Gap {
        metric,
        between: None,
        left_out,
    };
    if sizes.len() < 2 {
        return Err(no_value(
            Metric::Undefined {
                reason: format!("fewer than two groups have {what}"),
            },
            left_out,
        ));
    }
    if eligible.len() < 2 {
        // The second largest group is what stands between this and a value.
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        return Err(no_value(
            Metric::InsufficientSample { n: sizes[1], min },
            left_out,
        ));
    }
    // Rates compared exactly as fractions (k1/n1 > k2/n2 iff k1·n2 > k2·n1); ties keep the
    // first group in name order, so the pair named is stable.
    let above = |a: &(usize, u64, u64), b: &(usize, u64, u64)| {
        u128::from(a.1) * u128::from(b.2) > u128::from(b.1) * u128::from(a.2)
    };
    let mut high = eligible[0];
    let mut low = eligible[0];
    for e in &eligible[1..] {
        if above(e, &high) {
            high = *e;
        }
        if above(&low, e) {
            low = *e;
        }
    }
    Ok(Extremes {
        high,
        low,
        left_out,
    })
}

fn difference(groups: &[(String, GroupCounts)], rate: Rate, min: u64, what: &str) -> Gap {
    let x = match extremes(groups, rate, min, what) {
        Ok(x) => x,
        Err(gap) => return gap,
    };
    let ((hi, k1, n1), (lo, k2, n2)) = (x.high, x.low);
    let d = k1 as f64 / n1 as f64 - k2 as f64 / n2 as f64;
    let (l, u) = newcombe_difference(k1, n1, k2, n2);
    Gap {
        metric: Metric::Defined {
            value: d,
            n: n1 + n2,
            ci_low: l.clamp(-1.0, d),
            ci_high: u.clamp(d, 1.0),
        },
        between: Some([groups[hi].0.clone(), groups[lo].0.clone()]),
        left_out: x.left_out,
    }
}

fn ratio(groups: &[(String, GroupCounts)], min: u64) -> Gap {
    let x = match extremes(groups, selection, min, "predictions") {
        Ok(x) => x,
        Err(gap) => return gap,
    };
    let ((hi, k1, n1), (lo, k2, n2)) = (x.high, x.low);
    if k1 == 0 {
        return Gap {
            metric: Metric::Undefined {
                reason: "no group was selected".into(),
            },
            between: None,
            left_out: x.left_out,
        };
    }
    let r = (k2 as f64 / n2 as f64) / (k1 as f64 / n1 as f64);
    let (l, u) = log_adjusted_ratio(k2, n2, k1, n1);
    Gap {
        metric: Metric::Defined {
            value: r,
            n: n1 + n2,
            // The adjusted interval is centred on the adjusted ratio: widened to hold the
            // value itself.
            ci_low: l.min(r).max(0.0),
            ci_high: u.max(r),
        },
        between: Some([groups[hi].0.clone(), groups[lo].0.clone()]),
        left_out: x.left_out,
    }
}

/// Each group's rates and the gaps between them. `groups` in the order to report (by name).
pub fn measures(
    groups: &[(String, GroupCounts)],
    min_group_size: u64,
) -> (Vec<GroupReport>, FairnessMeasures) {
    let config = MetricConfig {
        min_sample: min_group_size,
        ..MetricConfig::default()
    };
    let reports = groups
        .iter()
        .map(|(group, c)| GroupReport {
            group: group.clone(),
            counts: *c,
            labelled: c.labelled(),
            selection_rate: config.proportion(c.selected, c.predictions, "no predictions"),
            true_positive_rate: config.proportion(
                c.tp,
                c.tp + c.fn_,
                "no labelled rows with the favourable outcome",
            ),
            false_positive_rate: config.proportion(
                c.fp,
                c.fp + c.tn,
                "no labelled rows with the other outcome",
            ),
            precision: config.proportion(
                c.tp,
                c.tp + c.fp,
                "no labelled rows predicted favourable",
            ),
        })
        .collect();
    let m = min_group_size;
    let dp = difference(groups, selection, m, "predictions");
    let ratio = ratio(groups, m);
    let eo = difference(groups, tpr, m, "labelled rows with the favourable outcome");
    let fpr_gap = difference(groups, fpr, m, "labelled rows with the other outcome");
    // fairlearn: max(TPR gap, FPR gap); without both there is no value.
    let eodds = match (eo.value(), fpr_gap.value()) {
        (Some(a), Some(b)) if b > a => fpr_gap,
        (Some(_), Some(_)) => eo.clone(),
        (None, _) => eo.clone(),
        (_, None) => fpr_gap,
    };
    let four_fifths = match ratio.value() {
        Some(r) if r < FOUR_FIFTHS => FourFifths::Violated,
        Some(_) => FourFifths::Met,
        None => FourFifths::NotEvaluated,
    };
    (
        reports,
        FairnessMeasures {
            demographic_parity_difference: dp,
            demographic_parity_ratio: ratio,
            four_fifths_rule: four_fifths,
            equal_opportunity_difference: eo,
            equalized_odds_difference: eodds,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(name: &str, rows: &[(bool, Option<bool>)]) -> (String, GroupCounts) {
        let mut c = GroupCounts::default();
        for (s, l) in rows {
            c.observe(*s, *l);
        }
        (name.into(), c)
    }

    fn repeat(n: usize, row: (bool, Option<bool>)) -> Vec<(bool, Option<bool>)> {
        vec![row; n]
    }

    #[test]
    fn a_group_under_the_minimum_is_left_out_of_the_gap_and_named() {
        let mut a = repeat(40, (true, None));
        a.extend(repeat(60, (false, None)));
        let mut b = repeat(20, (true, None));
        b.extend(repeat(80, (false, None)));
        let tiny = repeat(3, (false, None));
        let groups = vec![g("a", &a), g("b", &b), g("tiny", &tiny)];
        let (reports, m) = measures(&groups, 30);
        assert!(matches!(
            reports[2].selection_rate,
            Metric::InsufficientSample { n: 3, min: 30 }
        ));
        let dp = &m.demographic_parity_difference;
        assert!((dp.value().unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(dp.between, Some(["a".to_owned(), "b".to_owned()]));
        assert_eq!(dp.left_out, vec!["tiny".to_owned()]);
        assert!((m.demographic_parity_ratio.value().unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(m.four_fifths_rule, FourFifths::Violated);
        // No labels: no TPR gap, for want of groups, not of rows.
        assert!(matches!(
            m.equal_opportunity_difference.metric,
            Metric::Undefined { .. }
        ));
    }

    #[test]
    fn fewer_than_two_groups_at_the_minimum_is_an_insufficient_sample() {
        let groups = vec![
            g("a", &repeat(100, (true, None))),
            g("b", &repeat(12, (false, None))),
        ];
        let (_, m) = measures(&groups, 30);
        assert_eq!(
            m.demographic_parity_difference.metric,
            Metric::InsufficientSample { n: 12, min: 30 }
        );
        assert_eq!(m.four_fifths_rule, FourFifths::NotEvaluated);
    }

    #[test]
    fn no_group_selected_has_no_ratio_but_a_zero_difference() {
        let groups = vec![
            g("a", &repeat(50, (false, Some(false)))),
            g("b", &repeat(50, (false, Some(false)))),
        ];
        let (_, m) = measures(&groups, 30);
        assert_eq!(m.demographic_parity_difference.value(), Some(0.0));
        assert!(matches!(
            m.demographic_parity_ratio.metric,
            Metric::Undefined { .. }
        ));
        // No favourable labels, so no TPR gap: no odds gap either (fairlearn gives NaN).
        assert!(m.equalized_odds_difference.value().is_none());
    }
}
