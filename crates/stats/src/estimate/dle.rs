//! Direct loss estimation (DLE) for regression models, as NannyML 0.13 defines it
//! (`nannyml/performance_estimation/direct_loss_estimation/{dle,metrics}.py`,
//! `nannyml/sampling_error/regression.py`), with a learner of our own (ADR 013).
//!
//! Fitted once on a labelled reference of (features, prediction, label):
//! - **Loss models.** Two regressions from the features and the model's prediction: one of the
//!   absolute error `|y − ŷ|` (for MAE), one of the squared error `(y − ŷ)²` (for RMSE).
//!   NannyML fits LightGBM; we fit [`Gbdt`], a small histogram-based gradient-boosted tree
//!   ensemble (squared-error boosting, [`GBDT_TREES`] trees of depth [`GBDT_DEPTH`]).
//!   Predictions below 0 are clipped to 0, as NannyML does.
//! - **Sampling-error components** (NannyML's `mae_sampling_error_components`,
//!   `rmse_sampling_error_components`): the population standard deviation of the reference's
//!   absolute errors; the standard deviation and the mean of its squared errors.
//!
//! A window of `n` rows (those with a numeric prediction) is then estimated from the sums of
//! its rows' predicted losses ([`DleWindow`], mergeable):
//! - MAE = `Σ â / n`, sampling error `std(|e|) / √n`;
//! - RMSE = `√(Σ ŝ / n)`, sampling error `√(std(e²)² / (4 n mean(e²)))` (the delta method);
//! - the interval is the estimate ± 3 sampling errors, its lower end clipped at 0 (NannyML's
//!   `lower_value_limit`; there is no upper limit).

use serde::{Deserialize, Serialize};

use super::cbpe::{BinaryEstimates, Estimate, EstimatedMetric, SAMPLING_ERROR_RANGE};
use crate::exact::ExactSum;

/// Trees per loss model.
pub const GBDT_TREES: usize = 100;
/// Depth of each tree (at most 16 leaves).
pub const GBDT_DEPTH: usize = 4;
/// Shrinkage of each tree's leaf values.
pub const GBDT_LEARNING_RATE: f64 = 0.1;
/// Fewest reference rows in a leaf (LightGBM's `min_child_samples` default).
pub const GBDT_MIN_LEAF: usize = 20;
/// L2 penalty on leaf values (the `n + λ` denominator of a leaf's mean).
pub const GBDT_LAMBDA: f64 = 1.0;
/// Value bins of a numeric column (LightGBM's default is 255; on the fixtures 127 estimate as
/// well and halve the histograms' work, 63 estimate worse in the tails: ADR 013).
pub const NUMERIC_BINS: usize = 127;

/// Why a reference cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DleError {
    #[error(
        "the reference has {rows} rows with a numeric prediction and label: direct loss \
         estimation needs at least {needed}"
    )]
    TooFew { rows: usize, needed: usize },
}

/// What kind of values a column holds; read from the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

/// One value of a row, as the learner reads it. A number in a categorical column or a text in
/// a numeric one counts as missing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Missing,
    Number(f64),
    Text(&'a str),
}

/// A labelled reference row: its feature cells (in the order of the fit's columns), the model's
/// prediction and the label.
#[derive(Debug, Clone, PartialEq)]
pub struct DleRow<'a> {
    pub features: Vec<Cell<'a>>,
    pub prediction: f64,
    pub label: f64,
}

/// How a column's values become bins. Bin 0 is "missing" (and an unseen category); a split
/// sends bins `<= threshold` left, so missing values go with the smallest ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Binner {
    /// A value's bin is 1 + the number of edges below it.
    Numeric { edges: Vec<f64> },
    /// Categories sorted by name, each with its bin: 1 + its rank by mean absolute error on the
    /// reference, so that one threshold can split the noisy categories from the others.
    Categorical { categories: Vec<(String, u16)> },
}

impl Binner {
    pub(crate) fn numeric(values: &mut [f64]) -> Binner {
        values.sort_by(f64::total_cmp);
        let mut distinct: Vec<f64> = values.to_vec();
        distinct.dedup();
        let edges = if distinct.len() <= NUMERIC_BINS {
            distinct.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect()
        } else {
            // Equal-count bins: at each quantile, the edge is halfway to the next distinct value.
            let n = values.len();
            let mut edges: Vec<f64> = Vec::with_capacity(NUMERIC_BINS);
            for k in 1..NUMERIC_BINS {
                let q = values[k * n / NUMERIC_BINS];
                let next = distinct.partition_point(|&d| d <= q);
                if let Some(&above) = distinct.get(next) {
                    let e = 0.5 * (q + above);
                    if edges.last().is_none_or(|&l| l < e) {
                        edges.push(e);
                    }
                }
            }
            edges
        };
        Binner::Numeric { edges }
    }

    pub(crate) fn categorical(seen: &[(&str, f64)]) -> Binner {
        let mut by_name: Vec<(&str, f64, u64)> = Vec::new();
        let mut sorted: Vec<(&str, f64)> = seen.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (c, loss) in sorted {
            match by_name.last_mut() {
                Some(last) if last.0 == c => {
                    last.1 += loss;
                    last.2 += 1;
                }
                _ => by_name.push((c, loss, 1)),
            }
        }
        let mut ranked: Vec<(usize, f64)> = by_name
            .iter()
            .enumerate()
            .map(|(i, (_, s, n))| (i, s / *n as f64))
            .collect();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut categories: Vec<(String, u16)> = by_name
            .iter()
            .map(|(c, _, _)| ((*c).to_owned(), 0))
            .collect();
        for (rank, (i, _)) in ranked.into_iter().enumerate() {
            categories[i].1 = u16::try_from(rank + 1).unwrap_or(u16::MAX);
        }
        Binner::Categorical { categories }
    }

    pub(crate) fn bin(&self, cell: Cell<'_>) -> u16 {
        match (self, cell) {
            (Binner::Numeric { edges }, Cell::Number(v)) if !v.is_nan() => {
                1 + edges.partition_point(|&e| e < v) as u16
            }
            (Binner::Categorical { categories }, Cell::Text(t)) => categories
                .binary_search_by(|(c, _)| c.as_str().cmp(t))
                .map(|i| categories[i].1)
                .unwrap_or(0),
            _ => 0,
        }
    }

    pub(crate) fn bins(&self) -> usize {
        match self {
            Binner::Numeric { edges } => edges.len() + 2,
            Binner::Categorical { categories } => categories.len() + 1,
        }
    }
}

/// A node of a regression tree: a split (bins `<= threshold` of `column` go to `left`) or a
/// leaf's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Node {
    Split {
        column: u16,
        threshold: u16,
        left: u32,
        right: u32,
    },
    Leaf(f64),
}

/// Gradient-boosted regression trees on binned columns, fitted by least squares: the mean of
/// the targets, then each tree fitted to the residuals of those before it, greedily (the split
/// of largest variance reduction at each node, ties to the first column and bin), its leaves
/// shrunk by the learning rate. No sampling: the fit is a function of the rows alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    pub base: f64,
    /// Each tree's nodes, its root first.
    pub trees: Vec<Vec<Node>>,
}

impl Gbdt {
    /// Fits on `bins` (column-major: `bins[c][row]`, each column with `widths[c]` bins).
    pub fn fit(bins: &[Vec<u16>], widths: &[usize], y: &[f64]) -> Gbdt {
        let n = y.len();
        let base = y.iter().sum::<f64>() / n.max(1) as f64;
        let mut fitted = vec![base; n];
        let mut residual = vec![0.0; n];
        let mut trees = Vec::with_capacity(GBDT_TREES);
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        for _ in 0..GBDT_TREES {
            rows.clear();
            rows.extend(0..n as u32);
            for ((r, y), f) in residual.iter_mut().zip(y).zip(&fitted) {
                *r = y - f;
            }
            let mut nodes = Vec::new();
            grow(bins, widths, &residual, None, &mut rows, 0, &mut nodes);
            for (i, f) in fitted.iter_mut().enumerate() {
                *f += leaf(&nodes, |c| bins[c][i]);
            }
            trees.push(nodes);
        }
        Gbdt { base, trees }
    }

    /// Fits a binary classifier by logistic loss (`y` is 0 or 1; the prediction is the log-odds
    /// of 1): the base is the log-odds of the rows' mean (LightGBM's `boost_from_average`), then
    /// each tree is one Newton step: grown on the gradients `y − p` with the split gain
    /// `G² / (H + λ)` over the hessians `p (1 − p)`, its leaves `rate · G / (H + λ)`. Same trees,
    /// depth and leaf sizes as [`Gbdt::fit`]; deterministic likewise.
    pub fn fit_logistic(bins: &[Vec<u16>], widths: &[usize], y: &[f64]) -> Gbdt {
        let n = y.len();
        let mean = (y.iter().sum::<f64>() / n.max(1) as f64).clamp(1e-15, 1.0 - 1e-15);
        let base = (mean / (1.0 - mean)).ln();
        let mut fitted = vec![base; n];
        let mut gradient = vec![0.0; n];
        let mut hessian = vec![0.0; n];
        let mut trees = Vec::with_capacity(GBDT_TREES);
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        for _ in 0..GBDT_TREES {
            rows.clear();
            rows.extend(0..n as u32);
            for i in 0..n {
                let p = 1.0 / (1.0 + (-fitted[i]).exp());
                gradient[i] = y[i] - p;
                hessian[i] = p * (1.0 - p);
            }
            let mut nodes = Vec::new();
            grow(
                bins,
                widths,
                &gradient,
                Some(&hessian),
                &mut rows,
                0,
                &mut nodes,
            );
            for (i, f) in fitted.iter_mut().enumerate() {
                *f += leaf(&nodes, |c| bins[c][i]);
            }
            trees.push(nodes);
        }
        Gbdt { base, trees }
    }

    /// The prediction for a row whose bin in column `c` is `bin(c)`.
    pub fn predict(&self, bin: impl Fn(usize) -> u16) -> f64 {
        self.base + self.trees.iter().map(|t| leaf(t, &bin)).sum::<f64>()
    }
}

fn leaf(nodes: &[Node], bin: impl Fn(usize) -> u16) -> f64 {
    let mut i = 0;
    loop {
        match nodes[i] {
            Node::Leaf(v) => return v,
            Node::Split {
                column,
                threshold,
                left,
                right,
            } => {
                i = if bin(column as usize) <= threshold {
                    left
                } else {
                    right
                } as usize
            }
        }
    }
}

/// Grows the subtree of `rows` (reordered in place: left rows first) at `depth`, appending its
/// nodes; returns the index of its root. `r` are the targets of the tree (residuals, or
/// gradients); `h` their hessians, `None` for 1 each (least squares), so that a node's weight is
/// its row count and the squared-error fit is unchanged.
fn grow(
    bins: &[Vec<u16>],
    widths: &[usize],
    r: &[f64],
    h: Option<&[f64]>,
    rows: &mut [u32],
    depth: usize,
    nodes: &mut Vec<Node>,
) -> u32 {
    let at = nodes.len() as u32;
    let n = rows.len();
    let sum: f64 = rows.iter().map(|&i| r[i as usize]).sum();
    let weight: f64 = match h {
        Some(h) => rows.iter().map(|&i| h[i as usize]).sum(),
        None => n as f64,
    };
    let value = GBDT_LEARNING_RATE * sum / (weight + GBDT_LAMBDA);
    nodes.push(Node::Leaf(value));
    if depth >= GBDT_DEPTH || n < 2 * GBDT_MIN_LEAF {
        return at;
    }
    let score = |s: f64, w: f64| s * s / (w + GBDT_LAMBDA);
    let parent = score(sum, weight);
    // (gain, column, threshold)
    let mut best: Option<(f64, usize, u16)> = None;
    let mut count = Vec::new();
    let mut total = Vec::new();
    let mut hess = Vec::new();
    for (c, column) in bins.iter().enumerate() {
        count.clear();
        count.resize(widths[c], 0usize);
        total.clear();
        total.resize(widths[c], 0.0f64);
        if let Some(h) = h {
            hess.clear();
            hess.resize(widths[c], 0.0f64);
            for &i in rows.iter() {
                let b = column[i as usize] as usize;
                count[b] += 1;
                total[b] += r[i as usize];
                hess[b] += h[i as usize];
            }
        } else {
            for &i in rows.iter() {
                let b = column[i as usize] as usize;
                count[b] += 1;
                total[b] += r[i as usize];
            }
        }
        let (mut nl, mut sl, mut wl) = (0usize, 0.0f64, 0.0f64);
        // Thresholds up to the last bin but one: the last would send every row left.
        let thresholds = widths[c].saturating_sub(1);
        for (b, (k, t)) in count.iter().zip(&total).take(thresholds).enumerate() {
            nl += k;
            sl += t;
            wl = match h {
                Some(_) => wl + hess[b],
                None => nl as f64,
            };
            let nr = n - nl;
            if nl < GBDT_MIN_LEAF {
                continue;
            }
            if nr < GBDT_MIN_LEAF {
                break;
            }
            let wr = match h {
                Some(_) => weight - wl,
                None => nr as f64,
            };
            let gain = score(sl, wl) + score(sum - sl, wr) - parent;
            if gain > 1e-12 && best.is_none_or(|(g, _, _)| gain > g) {
                best = Some((gain, c, b as u16));
            }
        }
    }
    let Some((_, c, threshold)) = best else {
        return at;
    };
    // Left rows first, each side in its original order (a stable partition).
    let (left, right): (Vec<u32>, Vec<u32>) = rows
        .iter()
        .partition(|&&i| bins[c][i as usize] <= threshold);
    let split = left.len();
    rows[..split].copy_from_slice(&left);
    rows[split..].copy_from_slice(&right);
    let (lrows, rrows) = rows.split_at_mut(split);
    let l = grow(bins, widths, r, h, lrows, depth + 1, nodes);
    let rr = grow(bins, widths, r, h, rrows, depth + 1, nodes);
    nodes[at as usize] = Node::Split {
        column: c as u16,
        threshold,
        left: l,
        right: rr,
    };
    at
}

/// A fitted direct loss estimator. A few tens of KiB (two ensembles and the bin edges): it is
/// stored beside the reference profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dle {
    /// How each feature column, then the prediction (last), is binned.
    pub binners: Vec<Binner>,
    /// The model of the absolute error.
    pub absolute: Gbdt,
    /// The model of the squared error.
    pub squared: Gbdt,
    /// `np.std(|y − ŷ|)` on the reference (population standard deviation).
    pub abs_std: f64,
    /// `np.std((y − ŷ)²)` and `np.mean((y − ŷ)²)` on the reference.
    pub sq_std: f64,
    pub sq_mean: f64,
    /// Reference rows fitted.
    pub rows: u64,
}

impl Dle {
    /// Fits on the reference rows with a finite prediction and label (the others are skipped);
    /// `kinds` names each feature column's kind, in the rows' order.
    pub fn fit(kinds: &[ColumnKind], rows: &[DleRow<'_>]) -> Result<Dle, DleError> {
        let rows: Vec<&DleRow<'_>> = rows
            .iter()
            .filter(|r| r.prediction.is_finite() && r.label.is_finite())
            .collect();
        let needed = 2 * GBDT_MIN_LEAF;
        if rows.len() < needed {
            return Err(DleError::TooFew {
                rows: rows.len(),
                needed,
            });
        }
        let abs: Vec<f64> = rows
            .iter()
            .map(|r| (r.label - r.prediction).abs())
            .collect();
        let sq: Vec<f64> = rows
            .iter()
            .map(|r| (r.label - r.prediction).powi(2))
            .collect();
        let mut binners: Vec<Binner> = kinds
            .iter()
            .enumerate()
            .map(|(c, kind)| match kind {
                ColumnKind::Numeric => {
                    let mut v: Vec<f64> = rows
                        .iter()
                        .filter_map(|r| match r.features.get(c) {
                            Some(Cell::Number(x)) if !x.is_nan() => Some(*x),
                            _ => None,
                        })
                        .collect();
                    Binner::numeric(&mut v)
                }
                ColumnKind::Categorical => {
                    let seen: Vec<(&str, f64)> = rows
                        .iter()
                        .zip(&abs)
                        .filter_map(|(r, a)| match r.features.get(c) {
                            Some(Cell::Text(t)) => Some((*t, *a)),
                            _ => None,
                        })
                        .collect();
                    Binner::categorical(&seen)
                }
            })
            .collect();
        let mut predictions: Vec<f64> = rows.iter().map(|r| r.prediction).collect();
        binners.push(Binner::numeric(&mut predictions));
        let columns = binners.len();
        let bins: Vec<Vec<u16>> = (0..columns)
            .map(|c| {
                rows.iter()
                    .map(|r| binners[c].bin(cell(r, c, columns)))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = binners.iter().map(Binner::bins).collect();
        let (_, abs_std) = mean_std(&abs);
        let (sq_mean, sq_std) = mean_std(&sq);
        Ok(Dle {
            absolute: Gbdt::fit(&bins, &widths, &abs),
            squared: Gbdt::fit(&bins, &widths, &sq),
            binners,
            abs_std,
            sq_std,
            sq_mean,
            rows: rows.len() as u64,
        })
    }

    /// The predicted (absolute, squared) error of a row, each clipped at 0. `features` are in
    /// the fit's column order (a missing trailing one counts as missing).
    pub fn predict(&self, features: &[Cell<'_>], prediction: f64) -> (f64, f64) {
        let last = self.binners.len() - 1;
        let bins: Vec<u16> = self
            .binners
            .iter()
            .enumerate()
            .map(|(c, b)| {
                let v = if c == last {
                    Cell::Number(prediction)
                } else {
                    features.get(c).copied().unwrap_or(Cell::Missing)
                };
                b.bin(v)
            })
            .collect();
        let at = |c: usize| bins[c];
        (
            self.absolute.predict(at).max(0.0),
            self.squared.predict(at).max(0.0),
        )
    }

    /// The estimates of a window: MAE and RMSE with NannyML's sampling errors and intervals.
    /// Empty when the window has no rows.
    pub fn estimates(&self, w: &DleWindow) -> BinaryEstimates {
        let mut out = BinaryEstimates {
            n: w.n,
            ..BinaryEstimates::default()
        };
        if w.n == 0 {
            return out;
        }
        let n = w.n as f64;
        let mae = w.sum_abs.value() / n;
        let rmse = (w.sum_sq.value() / n).sqrt();
        let mae_se = self.abs_std / n.sqrt();
        let rmse_se = (self.sq_std * self.sq_std / (4.0 * n * self.sq_mean)).sqrt();
        for (m, value, se) in [
            (EstimatedMetric::Mae, mae, mae_se),
            (EstimatedMetric::Rmse, rmse, rmse_se),
        ] {
            if !value.is_finite() || !se.is_finite() {
                continue;
            }
            out.metrics.push((
                m,
                Estimate {
                    value,
                    sampling_error: se,
                    ci_low: (value - SAMPLING_ERROR_RANGE * se).max(0.0),
                    ci_high: value + SAMPLING_ERROR_RANGE * se,
                },
            ));
        }
        out
    }
}

fn cell<'a>(r: &DleRow<'a>, c: usize, columns: usize) -> Cell<'a> {
    if c == columns - 1 {
        Cell::Number(r.prediction)
    } else {
        r.features.get(c).copied().unwrap_or(Cell::Missing)
    }
}

/// Mean and population standard deviation (NumPy's `np.std`, ddof 0), two passes.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A window's (or an hour's) mergeable DLE state: rows with a numeric prediction and the sums of
/// their predicted absolute and squared errors (exact: the same whatever the order of rows and
/// merges).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DleWindow {
    pub n: u64,
    pub sum_abs: ExactSum,
    pub sum_sq: ExactSum,
}

impl DleWindow {
    pub fn observe(&mut self, (abs, sq): (f64, f64)) {
        self.n += 1;
        self.sum_abs.add(abs);
        self.sum_sq.add(sq);
    }

    pub fn merge(&mut self, o: &DleWindow) {
        self.n += o.n;
        self.sum_abs.merge(&o.sum_abs);
        self.sum_sq.merge(&o.sum_sq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loss that depends on a numeric feature and a category: the trees find both, and the
    /// fit is the same every time.
    #[test]
    fn learns_where_the_model_errs_and_is_deterministic() {
        let cats = ["calm", "noisy"];
        let mut rows = Vec::new();
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for i in 0..2000 {
            let x = next();
            let cat = cats[i % 2];
            // |error| is 0.1 where x < 0.5, 1.0 above, doubled for the noisy category.
            let scale = if x < 0.5 { 0.1 } else { 1.0 } * if cat == "noisy" { 2.0 } else { 1.0 };
            let sign = if next() < 0.5 { -1.0 } else { 1.0 };
            rows.push(DleRow {
                features: vec![Cell::Number(x), Cell::Text(cat)],
                prediction: 0.0,
                label: sign * scale,
            });
        }
        let kinds = [ColumnKind::Numeric, ColumnKind::Categorical];
        let dle = Dle::fit(&kinds, &rows).unwrap();
        assert_eq!(dle, Dle::fit(&kinds, &rows).unwrap());
        let (low, _) = dle.predict(&[Cell::Number(0.2), Cell::Text("calm")], 0.0);
        let (high, high_sq) = dle.predict(&[Cell::Number(0.8), Cell::Text("noisy")], 0.0);
        assert!((low - 0.1).abs() < 0.05, "{low}");
        assert!((high - 2.0).abs() < 0.2, "{high}");
        assert!((high_sq - 4.0).abs() < 0.5, "{high_sq}");
        // Unseen category, missing and mistyped values still predict (as missing).
        let (u, _) = dle.predict(&[Cell::Text("x"), Cell::Missing], 0.0);
        assert!(u.is_finite() && u >= 0.0);
        // The window's estimate is the mean predicted loss; RMSE the root of the mean square.
        let mut w = DleWindow::default();
        w.observe((1.0, 1.0));
        w.observe((3.0, 9.0));
        let e = dle.estimates(&w);
        let mae = e.get(EstimatedMetric::Mae).unwrap();
        assert_eq!(mae.value, 2.0);
        assert_eq!(mae.sampling_error, dle.abs_std / 2f64.sqrt());
        assert_eq!(mae.ci_high, 2.0 + 3.0 * mae.sampling_error);
        let rmse = e.get(EstimatedMetric::Rmse).unwrap();
        assert_eq!(rmse.value, 5f64.sqrt());
        assert!(rmse.ci_low >= 0.0);
        assert!(dle.estimates(&DleWindow::default()).metrics.is_empty());
    }

    #[test]
    fn a_reference_too_small_is_refused() {
        let rows: Vec<DleRow<'_>> = (0..10)
            .map(|i| DleRow {
                features: vec![],
                prediction: i as f64,
                label: 0.0,
            })
            .collect();
        assert_eq!(
            Dle::fit(&[], &rows),
            Err(DleError::TooFew {
                rows: 10,
                needed: 40
            })
        );
    }

    #[test]
    fn numeric_bins_are_equal_count_past_the_cap() {
        let mut few = vec![1.0, 2.0, 2.0, 3.0];
        assert_eq!(
            Binner::numeric(&mut few),
            Binner::Numeric {
                edges: vec![1.5, 2.5]
            }
        );
        let mut many: Vec<f64> = (0..10_000).map(|i| (i % 1000) as f64).collect();
        let b = Binner::numeric(&mut many);
        let Binner::Numeric { edges } = &b else {
            unreachable!()
        };
        assert!(edges.len() < NUMERIC_BINS && edges.len() > 50);
        assert!(edges.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(b.bin(Cell::Number(f64::NAN)), 0);
        assert_eq!(b.bin(Cell::Text("a")), 0);
        assert_eq!(b.bin(Cell::Number(-1.0)), 1);
    }
}
