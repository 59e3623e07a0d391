//! Row-by-row outlier scores against a reference: HBOS (Goldstein and Dengel's histogram-based
//! outlier score, as PyOD's `HBOS` computes it), and a test for boundary probing by one tag
//! value. ADR 016 says why HBOS and not Mahalanobis on the PCA space or an isolation forest.
//!
//! # HBOS
//! Fitted on the reference rows, one histogram per feature:
//! - a numeric feature: 10 bins of equal width over the reference's `[min, max]` (NumPy's
//!   `histogram`, a constant feature over `[x - 0.5, x + 0.5]`), each bin's density taken on
//!   that range scaled to `[0, 1]`, so `share of rows × bins`. This is PyOD's `HBOS` on the
//!   feature min-max scaled by the reference; the scaling makes the score the same whatever a
//!   feature's unit (PyOD's raw densities add `alpha` to a density that depends on the unit).
//! - a categorical (or boolean) feature: the category's share of reference rows × the number
//!   of reference categories (1 for all categories alike, as a flat histogram is 1); a category
//!   the reference never had has density 0.
//!
//! A row's term for a feature is `-log2(density + alpha)` (`alpha` = 0.1, PyOD's default). A
//! number outside the reference range takes its end bin's density when within half a bin of
//! it (PyOD's `tol` = 0.5), else density 0 (PyOD takes the smallest density of the feature's
//! bins instead, which on a flat histogram makes a value a thousand bins away as usual as any:
//! the one place we differ from PyOD, checked as such by `tests/outlier_pyod.rs`). A
//! missing value takes the feature's best term (no evidence either way: missing values are the
//! quality report's business). The score is the sum of the terms; a row is an outlier above the
//! reference rows' own score at the `1 - contamination` quantile (NumPy's linear percentile,
//! PyOD's `threshold_`), contamination 0.01 by default, so about 1 % of rows like the
//! reference's are outliers.
//!
//! A feature's *contribution* to a row's score is its term minus its best term (the term of
//! its densest bin or most common category): bits of surprise that feature adds, 0 for a value
//! as common as any. The contributions name what made a row unusual.
//!
//! # Probing
//! [`probing_test`]: rows from one tag value (a client) whose scores sit near the decision
//! threshold, against the share of the other rows of the window near it: the one-sided
//! binomial test `P(X >= near)` with `X ~ Binomial(rows, p0)`, `p0` the others' share with one
//! pseudo-row on each side (never 0), flagged below `alpha / values` (Bonferroni over the tag
//! values tested) when the value has at least `min_rows` scored rows and at least twice the
//! others' share near the threshold.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

pub use crate::multivariate::Cell;

/// Bins of a numeric feature's histogram (PyOD's default).
pub const DEFAULT_BINS: usize = 10;
/// Added to every density before the logarithm (PyOD's default): the term is at most
/// `-log2(alpha)` ≈ 3.32 bits.
pub const ALPHA: f64 = 0.1;
/// A number outside the reference range within this share of a bin width of its end takes the
/// end bin's density (PyOD's default).
pub const TOL: f64 = 0.5;
/// Share of reference rows above the outlier threshold.
pub const DEFAULT_CONTAMINATION: f64 = 0.01;

/// Kind of a reference feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

/// One feature's fitted histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Histogram {
    /// `edges` (bins + 1, increasing) and each bin's density on the scaled range.
    Numeric { edges: Vec<f64>, density: Vec<f64> },
    /// Each reference category (sorted) with its density.
    Categorical { categories: Vec<(String, f64)> },
    /// No reference value: every row's term is 0.
    Empty,
}

/// One feature of the fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HbosColumn {
    pub name: String,
    pub histogram: Histogram,
    /// The term of the densest bin or most common category: the term of a missing value, and
    /// what contributions are measured from.
    pub best: f64,
    /// The term of a number far outside the reference range or of an unseen category: density
    /// 0, `-log2(alpha)`.
    pub worst: f64,
}

/// HBOS fitted on a reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HbosFit {
    pub columns: Vec<HbosColumn>,
    pub bins: usize,
    pub alpha: f64,
    pub contamination: f64,
    /// A row scoring above this is an outlier.
    pub threshold: f64,
    pub reference_rows: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("the reference has no rows")]
    NoRows,
    #[error("the reference has no features")]
    NoFeatures,
}

fn term(density: f64) -> f64 {
    -(density + ALPHA).log2()
}

/// NumPy's `histogram(values, bins)`: edges and per-bin counts.
fn numpy_histogram(values: &[f64], bins: usize) -> (Vec<f64>, Vec<u64>) {
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    // np.linspace(lo, hi, bins + 1): step multiplied, the last edge exactly `hi`.
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| lo + i as f64 * step).collect();
    edges[bins] = hi;
    let mut counts = vec![0u64; bins];
    let denom = hi - lo;
    for &x in values {
        // NumPy's fast path, then its correction against the edges themselves.
        let mut i = (((x - lo) / denom * bins as f64) as usize).min(bins - 1);
        if x < edges[i] {
            i = i.saturating_sub(1);
        } else if i + 1 < bins && x >= edges[i + 1] {
            i += 1;
        }
        counts[i] += 1;
    }
    (edges, counts)
}

/// NumPy's `percentile(values, q)` with its default linear interpolation.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    if i + 1 >= sorted.len() {
        return sorted[sorted.len() - 1];
    }
    // NumPy's _lerp: a + (b - a) * t, from the other end when t >= 0.5.
    let (a, b) = (sorted[i], sorted[i + 1]);
    let diff = b - a;
    if frac >= 0.5 {
        b - diff * (1.0 - frac)
    } else {
        a + diff * frac
    }
}

impl HbosColumn {
    fn fit(name: &str, kind: ColumnKind, cells: &[Cell<'_>], bins: usize) -> HbosColumn {
        let histogram = match kind {
            ColumnKind::Numeric => {
                let values: Vec<f64> = cells
                    .iter()
                    .filter_map(|c| match c {
                        Cell::Number(x) if x.is_finite() => Some(*x),
                        _ => None,
                    })
                    .collect();
                if values.is_empty() {
                    Histogram::Empty
                } else {
                    let (edges, counts) = numpy_histogram(&values, bins);
                    let n = values.len() as f64;
                    // On the range scaled to [0, 1] each bin is 1 / bins wide.
                    let density = counts.iter().map(|&c| c as f64 / n * bins as f64).collect();
                    Histogram::Numeric { edges, density }
                }
            }
            ColumnKind::Categorical => {
                let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
                let mut n = 0u64;
                for c in cells {
                    if let Cell::Category(s) = c {
                        *counts.entry(s).or_default() += 1;
                        n += 1;
                    }
                }
                if n == 0 {
                    Histogram::Empty
                } else {
                    let k = counts.len() as f64;
                    Histogram::Categorical {
                        categories: counts
                            .into_iter()
                            .map(|(s, c)| (s.to_owned(), c as f64 / n as f64 * k))
                            .collect(),
                    }
                }
            }
        };
        let (best, worst) = match &histogram {
            Histogram::Numeric { density, .. } => {
                (term(density.iter().copied().fold(0.0, f64::max)), term(0.0))
            }
            Histogram::Categorical { categories } => (
                term(categories.iter().map(|c| c.1).fold(0.0, f64::max)),
                term(0.0),
            ),
            Histogram::Empty => (0.0, 0.0),
        };
        HbosColumn {
            name: name.to_owned(),
            histogram,
            best,
            worst,
        }
    }

    /// The feature's term for one value.
    pub fn term(&self, cell: Cell<'_>) -> f64 {
        match (&self.histogram, cell) {
            (Histogram::Numeric { edges, density }, Cell::Number(x)) if x.is_finite() => {
                let bins = density.len();
                // np.digitize(right=True), as PyOD 3.6 bins a row: the number of edges below
                // x, so a value on an inner edge belongs to the bin below it.
                let i = edges.partition_point(|&e| e < x);
                if i == 0 {
                    if edges[0] - x <= (edges[1] - edges[0]) * TOL {
                        term(density[0])
                    } else {
                        self.worst
                    }
                } else if i == bins + 1 {
                    if x - edges[bins] <= (edges[bins] - edges[bins - 1]) * TOL {
                        term(density[bins - 1])
                    } else {
                        self.worst
                    }
                } else {
                    term(density[i - 1])
                }
            }
            (Histogram::Categorical { categories }, Cell::Category(s)) => {
                match categories.binary_search_by(|c| c.0.as_str().cmp(s)) {
                    Ok(i) => term(categories[i].1),
                    Err(_) => self.worst,
                }
            }
            (Histogram::Empty, _) => 0.0,
            // Missing, or a value of another kind than the feature's.
            _ => self.best,
        }
    }
}

impl HbosFit {
    /// Fits on reference rows: `columns` names each feature and its kind, `rows` holds one cell
    /// per column.
    pub fn fit(
        columns: &[(String, ColumnKind)],
        rows: &[Vec<Cell<'_>>],
        contamination: f64,
    ) -> Result<HbosFit, FitError> {
        if rows.is_empty() {
            return Err(FitError::NoRows);
        }
        if columns.is_empty() {
            return Err(FitError::NoFeatures);
        }
        let fitted: Vec<HbosColumn> = columns
            .iter()
            .enumerate()
            .map(|(j, (name, kind))| {
                let cells: Vec<Cell<'_>> = rows.iter().map(|r| r[j]).collect();
                HbosColumn::fit(name, *kind, &cells, DEFAULT_BINS)
            })
            .collect();
        let mut fit = HbosFit {
            columns: fitted,
            bins: DEFAULT_BINS,
            alpha: ALPHA,
            contamination,
            threshold: 0.0,
            reference_rows: rows.len() as u64,
        };
        let mut scores: Vec<f64> = rows.iter().map(|r| fit.score(r)).collect();
        scores.sort_by(f64::total_cmp);
        fit.threshold = percentile(&scores, 100.0 * (1.0 - contamination));
        Ok(fit)
    }

    /// A row's score (one cell per column).
    pub fn score(&self, row: &[Cell<'_>]) -> f64 {
        self.columns
            .iter()
            .zip(row)
            .map(|(c, &cell)| c.term(cell))
            .sum()
    }

    /// A row's score and each column's contribution (its term minus its best), in column order.
    pub fn score_with_contributions(&self, row: &[Cell<'_>], out: &mut Vec<f64>) -> f64 {
        out.clear();
        let mut score = 0.0;
        for (c, &cell) in self.columns.iter().zip(row) {
            let t = c.term(cell);
            score += t;
            out.push((t - c.best).max(0.0));
        }
        score
    }

    pub fn is_outlier(&self, score: f64) -> bool {
        score > self.threshold
    }
}

/// The settings of the probing test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbingConfig {
    /// The decision threshold on the score.
    pub threshold: f64,
    /// A score within this of the threshold is near it.
    pub margin: f64,
    /// A tag value with fewer scored rows in the window is not tested.
    pub min_rows: u64,
    /// Family-wise significance level over the tag values of a window.
    pub alpha: f64,
    /// The value's share near the threshold must be at least this many times the others'.
    pub min_ratio: f64,
}

impl Default for ProbingConfig {
    fn default() -> Self {
        ProbingConfig {
            threshold: 0.5,
            margin: 0.05,
            min_rows: 30,
            alpha: 0.001,
            min_ratio: 2.0,
        }
    }
}

impl ProbingConfig {
    pub fn is_near(&self, score: f64) -> bool {
        (score - self.threshold).abs() <= self.margin
    }
}

/// One tag value's test in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbingTest {
    /// Scored rows of the value.
    pub rows: u64,
    /// Of them, near the threshold.
    pub near: u64,
    /// `near / rows`.
    pub share: f64,
    /// The other rows' share near the threshold (one pseudo-row on each side).
    pub expected_share: f64,
    /// `P(X >= near)`, `X ~ Binomial(rows, expected_share)`.
    pub p_value: f64,
    /// Below `alpha / values_tested`, with at least `min_ratio` times the others' share.
    pub flagged: bool,
}

/// The test of one tag value (`rows`, `near`) against the window's totals (`all_rows`,
/// `all_near`, the value's own included), with `values_tested` values tested in the window.
/// `None` under `min_rows`.
pub fn probing_test(
    rows: u64,
    near: u64,
    all_rows: u64,
    all_near: u64,
    values_tested: usize,
    config: &ProbingConfig,
) -> Option<ProbingTest> {
    if rows < config.min_rows || rows == 0 {
        return None;
    }
    let other_rows = all_rows.saturating_sub(rows);
    let other_near = all_near.saturating_sub(near).min(other_rows);
    let p0 = (other_near as f64 + 1.0) / (other_rows as f64 + 2.0);
    let p_value = if near == 0 {
        1.0
    } else {
        // P(X >= near) = sf(near - 1).
        Binomial::new(p0, rows).map_or(1.0, |b| b.sf(near - 1).clamp(0.0, 1.0))
    };
    let share = near as f64 / rows as f64;
    let flagged =
        p_value < config.alpha / values_tested.max(1) as f64 && share >= config.min_ratio * p0;
    Some(ProbingTest {
        rows,
        near,
        share,
        expected_share: p0,
        p_value,
        flagged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_histogram_puts_the_maximum_in_the_last_bin() {
        let (edges, counts) = numpy_histogram(&[0.0, 1.0, 2.0, 10.0], 10);
        assert_eq!(edges.len(), 11);
        assert_eq!(counts.iter().sum::<u64>(), 4);
        assert_eq!(counts[9], 1);
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[2], 1);
    }

    #[test]
    fn a_value_far_outside_the_range_is_named_by_its_contribution() {
        let cols = vec![
            ("a".to_owned(), ColumnKind::Numeric),
            ("b".to_owned(), ColumnKind::Numeric),
            ("c".to_owned(), ColumnKind::Categorical),
        ];
        let cats = ["x", "y"];
        let rows: Vec<Vec<Cell<'_>>> = (0..1000)
            .map(|i| {
                vec![
                    Cell::Number((i % 100) as f64),
                    Cell::Number(((i * 7) % 50) as f64 * 1000.0),
                    Cell::Category(cats[i % 2]),
                ]
            })
            .collect();
        let fit = HbosFit::fit(&cols, &rows, DEFAULT_CONTAMINATION).unwrap();
        let mut contrib = Vec::new();
        let s = fit.score_with_contributions(
            &[Cell::Number(50.0), Cell::Number(1e9), Cell::Category("x")],
            &mut contrib,
        );
        assert!(fit.is_outlier(s), "{s} vs {}", fit.threshold);
        assert!(contrib[1] > 2.0 && contrib[0] < 1e-9 && contrib[2] < 1e-9);
        // An unseen category and a missing value.
        let s = fit.score_with_contributions(
            &[Cell::Missing, Cell::Number(5000.0), Cell::Category("z")],
            &mut contrib,
        );
        assert!(contrib[2] > 2.0 && contrib[0] == 0.0, "{s} {contrib:?}");
    }

    #[test]
    fn probing_is_quiet_at_the_others_share_and_flags_a_burst() {
        let c = ProbingConfig::default();
        // 10 % near for everyone: quiet.
        let t = probing_test(200, 20, 10_000, 1_000, 20, &c).unwrap();
        assert!(!t.flagged, "{t:?}");
        // 80 % near from one client.
        let t = probing_test(100, 80, 10_000, 1_080, 20, &c).unwrap();
        assert!(t.flagged && t.p_value < 1e-30, "{t:?}");
        assert!(probing_test(10, 10, 10_000, 1_000, 20, &c).is_none());
    }
}
