//! Where a drop in a metric is concentrated, and which features go with the errors: the pure
//! part of an alert's likely causes (the engine's `causes` gathers the rows).
//!
//! - [`search`]: a slice search over one- and two-feature combinations of coded rows (each
//!   feature's value, or its bin, is a small integer code), counting each slice's confusion
//!   cells in the alert's window and, when given, in the reference. A slice is kept when it
//!   has at least `min_rows` rows, its metric is defined on at least [`MIN_METRIC_ROWS`] rows
//!   and it is worse than what it is compared with (the same slice of the reference, else the
//!   whole reference, else the whole window); a two-feature slice only when it is worse than
//!   both of its one-feature parents (else a parent says it already). Ranked by the drop's
//!   lower bound (the drop less 1.96 standard errors of the slice's value), which must be
//!   above 0: a small slice needs a larger drop to come first.
//! - Intervals: Wilson (95 %) for the metrics that are proportions (accuracy, precision, recall,
//!   specificity, FPR, FNR); F1 is not one, so a percentile bootstrap (95 %,
//!   [`BOOTSTRAP_REPLICATES`] resamples of the slice's rows, drawn as multinomial counts of its
//!   four confusion cells, which is the same as resampling its rows since F1 reads only those
//!   counts; seeded, so the same rows give the same interval).
//! - [`spearman`] and [`correlation_ratio`]: how much a feature goes with the error (a numeric
//!   feature's Spearman rank correlation; a categorical feature's correlation ratio η, which for
//!   a 0/1 error equals Cramér's V of the feature × error table).

use crate::perf::Z95;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// A slice needs this many rows in the window (the default of `min_rows`).
pub const MIN_SEGMENT_ROWS: u64 = 50;
/// A slice's metric needs this many rows in its denominator (precision: predicted positives).
pub const MIN_METRIC_ROWS: u64 = 10;
/// Resamples of a bootstrap interval.
pub const BOOTSTRAP_REPLICATES: usize = 1000;
/// A row that is in no slice of a feature (a category outside the tracked ones).
pub const NO_VALUE: u32 = u32::MAX;

/// Confusion counts of a binary classifier's rows (a multiclass or other task counts a correct
/// row as `tp` and a wrong one as `fp`: only accuracy reads them then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cells {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub tn: u64,
}

/// The confusion cell of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Tp,
    Fp,
    Fn,
    Tn,
}

impl Cell {
    /// The cell of a binary row: predicted positive or not, labelled positive or not.
    pub fn of(predicted: bool, actual: bool) -> Cell {
        match (predicted, actual) {
            (true, true) => Cell::Tp,
            (true, false) => Cell::Fp,
            (false, true) => Cell::Fn,
            (false, false) => Cell::Tn,
        }
    }

    /// 1 for a wrong prediction, else 0.
    pub fn error(self) -> f64 {
        match self {
            Cell::Fp | Cell::Fn => 1.0,
            _ => 0.0,
        }
    }
}

impl Cells {
    pub fn n(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    pub fn add(&mut self, c: Cell) {
        match c {
            Cell::Tp => self.tp += 1,
            Cell::Fp => self.fp += 1,
            Cell::Fn => self.fn_ += 1,
            Cell::Tn => self.tn += 1,
        }
    }

    pub fn of(cells: &[Cell]) -> Cells {
        let mut c = Cells::default();
        for &x in cells {
            c.add(x);
        }
        c
    }
}

/// The metric a slice is measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SliceMetric {
    Accuracy,
    Precision,
    Recall,
    F1,
    Specificity,
    Fpr,
    Fnr,
}

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    /// Wilson score interval, 95 %.
    Wilson,
    /// Percentile bootstrap, 95 %, [`BOOTSTRAP_REPLICATES`] resamples.
    Bootstrap,
}

/// A 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    pub method: IntervalMethod,
}

impl SliceMetric {
    /// The metric of this name (the vocabulary's), if a slice can be measured with it.
    pub fn parse(name: &str) -> Option<SliceMetric> {
        Some(match name {
            "accuracy" => SliceMetric::Accuracy,
            "precision" => SliceMetric::Precision,
            "recall" => SliceMetric::Recall,
            "f1" => SliceMetric::F1,
            "specificity" => SliceMetric::Specificity,
            "fpr" => SliceMetric::Fpr,
            "fnr" => SliceMetric::Fnr,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SliceMetric::Accuracy => "accuracy",
            SliceMetric::Precision => "precision",
            SliceMetric::Recall => "recall",
            SliceMetric::F1 => "f1",
            SliceMetric::Specificity => "specificity",
            SliceMetric::Fpr => "fpr",
            SliceMetric::Fnr => "fnr",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, SliceMetric::Fpr | SliceMetric::Fnr)
    }

    /// `(successes, trials)` of a metric that is a proportion; `None` for F1.
    fn proportion(self, c: &Cells) -> Option<(u64, u64)> {
        Some(match self {
            SliceMetric::Accuracy => (c.tp + c.tn, c.n()),
            SliceMetric::Precision => (c.tp, c.tp + c.fp),
            SliceMetric::Recall => (c.tp, c.tp + c.fn_),
            SliceMetric::Specificity => (c.tn, c.tn + c.fp),
            SliceMetric::Fpr => (c.fp, c.tn + c.fp),
            SliceMetric::Fnr => (c.fn_, c.tp + c.fn_),
            SliceMetric::F1 => return None,
        })
    }

    /// The rows the metric is computed over (F1: `2tp + fp + fn`'s rows, `tp + fp + fn`).
    pub fn denominator(self, c: &Cells) -> u64 {
        match self.proportion(c) {
            Some((_, n)) => n,
            None => c.tp + c.fp + c.fn_,
        }
    }

    /// The metric's value (scikit-learn's definition), `None` when its denominator is 0.
    pub fn value(self, c: &Cells) -> Option<f64> {
        match self.proportion(c) {
            Some((_, 0)) => None,
            Some((k, n)) => Some(k as f64 / n as f64),
            None => f1(c),
        }
    }

    /// The 95 % interval of the metric on `c`: Wilson for a proportion, a percentile bootstrap
    /// for F1 (seeded by `seed`). `None` when the metric is undefined.
    pub fn interval(self, c: &Cells, seed: u64) -> Option<Interval> {
        match self.proportion(c) {
            Some((_, 0)) => None,
            Some((k, n)) => {
                let (low, high) = crate::perf::wilson_interval(k, n);
                Some(Interval {
                    low,
                    high,
                    method: IntervalMethod::Wilson,
                })
            }
            None => {
                f1(c)?;
                let (low, high) = bootstrap_f1(c, BOOTSTRAP_REPLICATES, seed);
                Some(Interval {
                    low,
                    high,
                    method: IntervalMethod::Bootstrap,
                })
            }
        }
    }

    /// How much worse `a` is than `b` (positive: worse).
    pub fn worse_by(self, a: f64, b: f64) -> f64 {
        if self.higher_is_better() {
            b - a
        } else {
            a - b
        }
    }
}

fn f1(c: &Cells) -> Option<f64> {
    let d = 2 * c.tp + c.fp + c.fn_;
    (d > 0).then(|| 2.0 * c.tp as f64 / d as f64)
}

/// Quantile of sorted values, linear interpolation (NumPy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    crate::drift::quantile_sorted(sorted, q).unwrap_or(f64::NAN)
}

/// Percentile bootstrap (95 %) of F1 on the rows behind `c`: each resample draws `n` rows with
/// replacement, counted per cell (a multinomial draw of the four cells). A resample whose F1
/// is undefined (no positive row at all) counts as 0, as scikit-learn's `zero_division=0`.
pub fn bootstrap_f1(c: &Cells, replicates: usize, seed: u64) -> (f64, f64) {
    let n = c.n();
    if n == 0 || replicates == 0 {
        return (f64::NAN, f64::NAN);
    }
    let total = n as f64;
    let t1 = c.tp as f64 / total;
    let t2 = t1 + c.fp as f64 / total;
    let t3 = t2 + c.fn_ as f64 / total;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values: Vec<f64> = (0..replicates)
        .map(|_| {
            let mut r = Cells::default();
            for _ in 0..n {
                let u: f64 = rng.random();
                r.add(if u < t1 {
                    Cell::Tp
                } else if u < t2 {
                    Cell::Fp
                } else if u < t3 {
                    Cell::Fn
                } else {
                    Cell::Tn
                });
            }
            f1(&r).unwrap_or(0.0)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    (quantile(&values, 0.025), quantile(&values, 0.975))
}

/// Ranks from 1, ties given their average rank (SciPy's `rankdata`, `method="average"`).
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Pearson's correlation (`numpy.corrcoef`); `None` with fewer than 3 pairs or a constant side.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's rank correlation (`scipy.stats.spearmanr`: Pearson's on average ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    pearson(&ranks(&x[..n]), &ranks(&y[..n]))
}

/// The correlation ratio η of `y` over the groups `group` (codes; [`NO_VALUE`] rows left out):
/// `sqrt(between-group sum of squares / total sum of squares)`, in [0, 1]. For a 0/1 `y` it
/// equals Cramér's V of the group × y table (`scipy.stats.contingency.association`,
/// `method="cramer"`, `correction=False`). `None` with fewer than 2 groups or a constant `y`.
pub fn correlation_ratio(group: &[u32], y: &[f64]) -> Option<f64> {
    let mut sums: std::collections::HashMap<u32, (f64, f64)> = Default::default();
    let (mut total, mut n) = (0.0, 0.0);
    for (&g, &v) in group.iter().zip(y) {
        if g == NO_VALUE {
            continue;
        }
        let e = sums.entry(g).or_insert((0.0, 0.0));
        e.0 += v;
        e.1 += 1.0;
        total += v;
        n += 1.0;
    }
    if sums.len() < 2 {
        return None;
    }
    let mean = total / n;
    let ss_total: f64 = group
        .iter()
        .zip(y)
        .filter(|(g, _)| **g != NO_VALUE)
        .map(|(_, v)| (v - mean).powi(2))
        .sum();
    if ss_total <= 0.0 {
        return None;
    }
    let ss_between: f64 = sums.values().map(|(s, c)| c * (s / c - mean).powi(2)).sum();
    Some((ss_between / ss_total).clamp(0.0, 1.0).sqrt())
}

/// Coded rows: per feature, each row's code (`0..cardinality`, or [`NO_VALUE`]), and each
/// row's confusion cell.
#[derive(Debug, Clone, Copy)]
pub struct CodedRows<'a> {
    pub columns: &'a [Vec<u32>],
    pub cells: &'a [Cell],
}

/// What [`search`] looks over.
#[derive(Debug, Clone, Copy)]
pub struct SliceSearch<'a> {
    /// The alert's window (its labelled rows).
    pub window: CodedRows<'a>,
    /// The reference's labelled rows, coded the same way; `None` without them.
    pub reference: Option<CodedRows<'a>>,
    /// Codes per feature (`columns[i]` holds codes below `cardinality[i]`).
    pub cardinality: &'a [u32],
    pub metric: SliceMetric,
    /// Rows a slice needs in the window.
    pub min_rows: u64,
    /// Slices returned at most.
    pub max_results: usize,
}

/// One slice found: its conditions `(feature, code)`, its counts and metric in the window, what
/// it was compared with, and its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceFound {
    pub conditions: Vec<(usize, u32)>,
    pub cells: Cells,
    pub value: f64,
    /// The slice's value in the reference when it has enough rows there (else `None`, and the
    /// slice was compared with the whole reference).
    pub reference_value: Option<f64>,
    pub reference_rows: u64,
    /// How much worse than what it was compared with (in the metric's units, > 0).
    pub drop: f64,
    /// `drop` less 1.96 standard errors of the slice's value (normal approximation,
    /// `sqrt(v (1 - v) / m)` over the metric's `m` rows): what the slices are ranked by, so
    /// that a small slice needs a larger drop to come first. Above 0 for every slice kept.
    pub drop_lower_bound: f64,
    pub interval: Option<Interval>,
}

/// Counts of every one- and two-feature slice: `singles[f][code]`, `pairs[(f, g)][a * card_g
/// + b]` for `f < g`.
struct Counts {
    singles: Vec<Vec<Cells>>,
    pairs: Vec<Vec<Cells>>,
}

fn pair_index(f: usize, g: usize, k: usize) -> usize {
    // Pairs (f, g), f < g, in row-major order of the upper triangle.
    f * (2 * k - f - 1) / 2 + (g - f - 1)
}

fn count(rows: &CodedRows<'_>, card: &[u32]) -> Counts {
    let k = card.len();
    let mut singles: Vec<Vec<Cells>> = card
        .iter()
        .map(|&c| vec![Cells::default(); c as usize])
        .collect();
    let mut pairs = Vec::with_capacity(k * k.saturating_sub(1) / 2);
    for f in 0..k {
        for g in f + 1..k {
            pairs.push(vec![Cells::default(); card[f] as usize * card[g] as usize]);
        }
    }
    let mut codes = vec![NO_VALUE; k];
    for (r, &cell) in rows.cells.iter().enumerate() {
        for f in 0..k {
            let c = rows.columns[f].get(r).copied().unwrap_or(NO_VALUE);
            codes[f] = if c < card[f] { c } else { NO_VALUE };
            if codes[f] != NO_VALUE {
                singles[f][codes[f] as usize].add(cell);
            }
        }
        for f in 0..k {
            if codes[f] == NO_VALUE {
                continue;
            }
            for g in f + 1..k {
                if codes[g] == NO_VALUE {
                    continue;
                }
                let i = codes[f] as usize * card[g] as usize + codes[g] as usize;
                pairs[pair_index(f, g, k)][i].add(cell);
            }
        }
    }
    Counts { singles, pairs }
}

/// Rows a slice of the reference needs for its own value to be compared with.
pub const MIN_REFERENCE_ROWS: u64 = 30;

/// The slices where the metric is worse than elsewhere, worst drop first (see the module doc).
pub fn search(s: &SliceSearch<'_>) -> Vec<SliceFound> {
    let k = s.cardinality.len();
    let m = s.metric;
    let window = count(&s.window, s.cardinality);
    let reference = s.reference.map(|r| count(&r, s.cardinality));
    let overall_window = m.value(&Cells::of(s.window.cells));
    let overall_reference = s
        .reference
        .and_then(|r| m.value(&Cells::of(r.cells)))
        .filter(|_| s.reference.is_some_and(|r| !r.cells.is_empty()));
    // What a slice is compared with: its reference slice, the whole reference, the window.
    let judge =
        |cells: &Cells, reference: Option<&Cells>| -> Option<(f64, Option<f64>, u64, f64, f64)> {
            if cells.n() < s.min_rows || m.denominator(cells) < MIN_METRIC_ROWS {
                return None;
            }
            let value = m.value(cells)?;
            let ref_rows = reference.map_or(0, Cells::n);
            let ref_value = reference
                .filter(|r| r.n() >= MIN_REFERENCE_ROWS && m.denominator(r) >= MIN_METRIC_ROWS)
                .and_then(|r| m.value(r));
            let base = ref_value.or(overall_reference).or(overall_window)?;
            let drop = m.worse_by(value, base);
            let se = (value * (1.0 - value) / m.denominator(cells) as f64).sqrt();
            let low = drop - Z95 * se;
            (low > 0.0).then_some((value, ref_value, ref_rows, drop, low))
        };
    let mut found = Vec::new();
    let mut single_drop: Vec<Vec<Option<f64>>> = Vec::with_capacity(k);
    for f in 0..k {
        let mut drops = Vec::with_capacity(s.cardinality[f] as usize);
        for (code, cells) in window.singles[f].iter().enumerate() {
            let r = reference.as_ref().map(|r| &r.singles[f][code]);
            let j = judge(cells, r);
            drops.push(j.map(|x| x.3));
            if let Some((value, reference_value, reference_rows, drop, low)) = j {
                found.push(SliceFound {
                    conditions: vec![(f, code as u32)],
                    cells: *cells,
                    value,
                    reference_value,
                    reference_rows,
                    drop,
                    drop_lower_bound: low,
                    interval: None,
                });
            }
        }
        single_drop.push(drops);
    }
    for f in 0..k {
        for g in f + 1..k {
            let p = pair_index(f, g, k);
            let cg = s.cardinality[g] as usize;
            for (i, cells) in window.pairs[p].iter().enumerate() {
                let (a, b) = (i / cg, i % cg);
                let r = reference.as_ref().map(|r| &r.pairs[p][i]);
                let Some((value, reference_value, reference_rows, drop, low)) = judge(cells, r)
                else {
                    continue;
                };
                // Worse than each parent alone, or a parent already says it.
                let beats = |d: Option<f64>| d.is_none_or(|d| drop > d);
                if beats(single_drop[f][a]) && beats(single_drop[g][b]) {
                    found.push(SliceFound {
                        conditions: vec![(f, a as u32), (g, b as u32)],
                        cells: *cells,
                        value,
                        reference_value,
                        reference_rows,
                        drop,
                        drop_lower_bound: low,
                        interval: None,
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| {
        b.drop_lower_bound
            .total_cmp(&a.drop_lower_bound)
            .then(b.cells.n().cmp(&a.cells.n()))
            .then(a.conditions.cmp(&b.conditions))
    });
    found.truncate(s.max_results);
    for x in &mut found {
        // A seed from the slice, so that the interval does not depend on the search's order.
        let seed = x
            .conditions
            .iter()
            .fold(0x9e37_79b9_7f4a_7c15u64, |h, (f, c)| {
                (h ^ ((*f as u64) << 32 | u64::from(*c))).wrapping_mul(0x0100_0000_01b3)
            });
        x.interval = m.interval(&x.cells, seed);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(tp: u64, fp: u64, fn_: u64, tn: u64) -> Cells {
        Cells { tp, fp, fn_, tn }
    }

    #[test]
    fn metrics_of_counts() {
        let c = cells(30, 10, 20, 40);
        assert_eq!(SliceMetric::Accuracy.value(&c), Some(0.7));
        assert_eq!(SliceMetric::Precision.value(&c), Some(0.75));
        assert_eq!(SliceMetric::Recall.value(&c), Some(0.6));
        assert_eq!(SliceMetric::F1.value(&c), Some(60.0 / 90.0));
        assert_eq!(SliceMetric::Fpr.value(&c), Some(0.2));
        assert_eq!(SliceMetric::Precision.value(&cells(0, 0, 3, 5)), None);
        assert_eq!(
            SliceMetric::F1.interval(&c, 1).unwrap().method,
            IntervalMethod::Bootstrap
        );
        assert_eq!(
            SliceMetric::Recall.interval(&c, 1).unwrap().method,
            IntervalMethod::Wilson
        );
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_value() {
        let c = cells(60, 25, 30, 85);
        let a = bootstrap_f1(&c, 500, 7);
        assert_eq!(a, bootstrap_f1(&c, 500, 7));
        let f = SliceMetric::F1.value(&c).unwrap();
        assert!(a.0 < f && f < a.1 && a.1 - a.0 < 0.25, "{a:?} around {f}");
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn correlation_ratio_of_a_perfect_split_is_one() {
        assert_eq!(
            correlation_ratio(&[0, 0, 1, 1, NO_VALUE], &[0.0, 0.0, 1.0, 1.0, 0.0]),
            Some(1.0)
        );
        assert_eq!(correlation_ratio(&[0, 0, 0], &[0.0, 1.0, 1.0]), None);
    }

    /// 2 features of 3 codes; rows cycle through every combination. Rows with feature 0 = 2
    /// are all wrong; everything else is right.
    fn rows(n: usize, bad: impl Fn(u32, u32) -> bool) -> (Vec<Vec<u32>>, Vec<Cell>) {
        let mut cols = vec![Vec::new(), Vec::new()];
        let mut cells = Vec::new();
        for i in 0..n {
            let (a, b) = ((i % 3) as u32, ((i / 3) % 3) as u32);
            cols[0].push(a);
            cols[1].push(b);
            let positive = i % 2 == 0;
            cells.push(if bad(a, b) {
                Cell::of(!positive, positive)
            } else {
                Cell::of(positive, positive)
            });
        }
        (cols, cells)
    }

    #[test]
    fn the_worst_slice_comes_first_and_its_children_are_left_out() {
        let (cols, cells) = rows(900, |a, _| a == 2);
        let found = search(&SliceSearch {
            window: CodedRows {
                columns: &cols,
                cells: &cells,
            },
            reference: None,
            cardinality: &[3, 3],
            metric: SliceMetric::Accuracy,
            min_rows: 50,
            max_results: 5,
        });
        assert_eq!(found[0].conditions, [(0, 2)]);
        assert_eq!(found[0].value, 0.0);
        assert_eq!(found[0].cells.n(), 300);
        // Its two-feature children are no worse than it: none is reported.
        assert!(found.iter().all(|s| s.conditions.len() == 1), "{found:?}");
        let i = found[0].interval.unwrap();
        assert_eq!(i.method, IntervalMethod::Wilson);
        assert!(i.low < 1e-12 && i.high > 0.0 && i.high < 0.02, "{i:?}");
    }

    #[test]
    fn a_pair_worse_than_both_parents_is_found_and_small_slices_are_not() {
        // Only the combination (1, 1) is wrong.
        let (cols, cells) = rows(900, |a, b| a == 1 && b == 1);
        let s = SliceSearch {
            window: CodedRows {
                columns: &cols,
                cells: &cells,
            },
            reference: None,
            cardinality: &[3, 3],
            metric: SliceMetric::F1,
            min_rows: 50,
            max_results: 5,
        };
        let found = search(&s);
        assert_eq!(found[0].conditions, [(0, 1), (1, 1)]);
        assert_eq!(found[0].cells.n(), 100);
        assert_eq!(found[0].interval.unwrap().method, IntervalMethod::Bootstrap);
        // With a minimum above the pair's rows, only its parents are left.
        let found = search(&SliceSearch { min_rows: 101, ..s });
        assert!(found.iter().all(|x| x.conditions.len() == 1), "{found:?}");
    }

    #[test]
    fn against_the_reference_a_slice_that_was_always_bad_is_not_a_drop() {
        // Feature 0 = 0 was as bad in the reference; feature 0 = 2 turned bad.
        let (cols, cells) = rows(900, |a, _| a == 0 || a == 2);
        let (rcols, rcells) = rows(900, |a, _| a == 0);
        let found = search(&SliceSearch {
            window: CodedRows {
                columns: &cols,
                cells: &cells,
            },
            reference: Some(CodedRows {
                columns: &rcols,
                cells: &rcells,
            }),
            cardinality: &[3, 3],
            metric: SliceMetric::Accuracy,
            min_rows: 50,
            max_results: 5,
        });
        assert_eq!(found[0].conditions, [(0, 2)]);
        assert_eq!(found[0].reference_value, Some(1.0));
        assert!(found.iter().all(|s| s.conditions != [(0, 0)]), "{found:?}");
    }
}
