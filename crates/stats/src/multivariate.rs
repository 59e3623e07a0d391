//! Multivariate drift: the PCA reconstruction error as NannyML 0.13.1 defines it
//! (`DataReconstructionDriftCalculator` with its defaults), checked against NannyML and
//! scikit-learn on fixtures made by `scripts/fixtures/gen_multivariate_fixtures.py`.
//!
//! Fitted on the reference:
//! 1. Imputation: a numeric column's missing values become its reference mean
//!    (`SimpleImputer(strategy="mean")`), a categorical column's its most frequent reference
//!    value, the smallest of equally frequent ones (`strategy="most_frequent"`). A column with no
//!    value in the reference is left out, as scikit-learn's imputer drops it.
//! 2. Encoding: a category becomes its share of the (imputed) reference rows (category_encoders'
//!    `CountEncoder(normalize=True)`); a category the reference never had becomes 0.
//! 3. Standardisation: each encoded column minus its reference mean, over its population
//!    standard deviation (`StandardScaler`; a constant column is divided by 1).
//! 4. PCA: the eigenvectors of the standardised reference's covariance, largest first, as many
//!    as it takes for their share of the variance to exceed `variance` (65 %: scikit-learn's
//!    `n_components=0.65`, `searchsorted(cumsum, 0.65, side="right") + 1`).
//!
//! A row's reconstruction error is the Euclidean distance between its standardised vector and
//! its projection back from the kept components. A window's value is the mean error of its rows;
//! its sampling error the errors' standard deviation (ddof 1) over √n. The band is fitted on the
//! reference cut in NannyML's default chunks (a tenth of its rows each, in upload order; the
//! remainder a chunk of its own): the chunks' mean error ± 3 standard deviations (ddof 0) of it,
//! no lower bound when that is at or below 0. A window alerts when its value is not strictly
//! inside the band.
//!
//! A window's state is [`ErrorSums`] (count, sum, sum of squares): additive, so per-hour sums
//! merge into any window while the fit stays the same.

use std::collections::BTreeMap;

use nalgebra::{DMatrix, SymmetricEigen};

use crate::exact::ExactSum;
use serde::{Deserialize, Serialize};

/// The share of variance the kept components must explain (NannyML's `n_components=0.65`).
pub const DEFAULT_VARIANCE: f64 = 0.65;
/// Reference chunks of the band (NannyML's `DefaultChunker`).
pub const REFERENCE_CHUNKS: usize = 10;
/// Standard deviations either side of the band's centre (`StandardDeviationThreshold`).
pub const BAND_STD: f64 = 3.0;
/// Sampling errors either side of a window's value (NannyML's `SAMPLING_ERROR_RANGE`).
pub const SAMPLING_ERROR_RANGE: f64 = 3.0;

/// How a column is encoded: numbers as they are, anything else (categories, booleans) by the
/// share of reference rows with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

/// One value of a row: a number, a category, or missing (null, absent, non-finite, or a value
/// of another kind than its column's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Number(f64),
    Category(&'a str),
    Missing,
}

/// How a fitted column turns a cell into a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Encoding {
    /// Numbers; missing ones become the reference mean.
    Numeric { mean: f64 },
    /// Categories by their share of reference rows; missing ones become `mode` (whose share is
    /// in `shares`); unknown ones 0.
    Categorical {
        mode: String,
        shares: BTreeMap<String, f64>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedColumn {
    pub name: String,
    pub encoding: Encoding,
}

impl FittedColumn {
    /// The cell as a number: the imputed value when missing, a category's reference share.
    pub fn encode(&self, cell: Cell<'_>) -> f64 {
        match (&self.encoding, cell) {
            (Encoding::Numeric { .. }, Cell::Number(x)) if x.is_finite() => x,
            (Encoding::Numeric { mean }, _) => *mean,
            (Encoding::Categorical { shares, .. }, Cell::Category(c)) => {
                shares.get(c).copied().unwrap_or(0.0)
            }
            (Encoding::Categorical { mode, shares }, _) => shares[mode],
        }
    }
}

/// The band the reference chunks' mean errors give; `lower` is `None` when it would be at or
/// below 0 (NannyML then draws no lower threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub mean: f64,
    pub std: f64,
    pub lower: Option<f64>,
    pub upper: f64,
}

impl Band {
    /// NannyML's rule: alert unless `lower < value < upper`.
    pub fn alerts(&self, value: f64) -> bool {
        let lower = self.lower.unwrap_or(f64::NEG_INFINITY);
        !(lower < value && value < self.upper)
    }
}

/// The fitted reconstruction: encoding, standardisation, kept components, band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionFit {
    pub columns: Vec<FittedColumn>,
    /// `StandardScaler`'s `mean_` and `scale_` of the encoded reference.
    pub scaler_mean: Vec<f64>,
    pub scaler_scale: Vec<f64>,
    /// PCA's `mean_` (of the standardised reference: 0 up to rounding).
    pub pca_mean: Vec<f64>,
    /// The kept components, one row of length `columns.len()` each (PCA's `components_`).
    pub components: Vec<Vec<f64>>,
    /// Every component's share of the variance, largest first (`explained_variance_ratio_`
    /// of a PCA keeping them all).
    pub explained_variance_ratio: Vec<f64>,
    /// The share of variance the kept components had to exceed.
    pub variance: f64,
    pub reference_rows: u64,
    /// The reference chunks' mean errors, in upload order.
    pub reference_chunks: Vec<ChunkError>,
    pub band: Band,
}

/// One reference chunk: rows and mean error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChunkError {
    pub rows: u64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("the reference has {0} rows: the reconstruction error needs at least {REFERENCE_CHUNKS}, one per chunk of its band")]
    TooFewRows(usize),
    #[error("no feature of the reference has a numeric or categorical value")]
    NoColumns,
    #[error("the share of variance must be in (0, 1): got {0}")]
    Variance(f64),
    #[error("the eigendecomposition of the reference covariance did not converge")]
    Eigen,
}

/// Count, sum and sum of squares of row errors: a window's state, additive. The sums are exact
/// ([`ExactSum`]), so a window's value does not depend on the order its rows were scanned or
/// its hours merged in (the embedded and the ClickHouse stores scan in different orders).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorSums {
    pub n: u64,
    sum: ExactSum,
    sum_sq: ExactSum,
}

impl ErrorSums {
    pub fn push(&mut self, error: f64) {
        self.n += 1;
        self.sum.add(error);
        self.sum_sq.add(error * error);
    }

    pub fn merge(&mut self, o: &ErrorSums) {
        self.n += o.n;
        self.sum.merge(&o.sum);
        self.sum_sq.merge(&o.sum_sq);
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum.value() / self.n as f64)
    }

    /// Standard deviation with ddof 1 (NannyML's `np.std(ddof=1)`); `None` under 2 rows.
    pub fn std(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let mean = self.sum.value() / n;
        Some(((self.sum_sq.value() - n * mean * mean).max(0.0) / (n - 1.0)).sqrt())
    }
}

/// A window's reconstruction error against a fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowError {
    pub rows: u64,
    /// Mean reconstruction error; `None` without rows.
    pub value: Option<f64>,
    /// Standard deviation of the rows' errors over √rows; `None` under 2 rows.
    pub sampling_error: Option<f64>,
    /// `value ± 3 sampling errors`, the lower end at least 0.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The value is not strictly inside the reference band.
    pub alert: bool,
}

impl ReconstructionFit {
    /// Fits on the reference `rows` (cells in `columns` order) keeping the components that
    /// explain more than `variance` of it.
    pub fn fit(
        columns: &[(String, ColumnKind)],
        rows: &[Vec<Cell<'_>>],
        variance: f64,
    ) -> Result<ReconstructionFit, FitError> {
        if !(variance > 0.0 && variance < 1.0) {
            return Err(FitError::Variance(variance));
        }
        let n = rows.len();
        if n < REFERENCE_CHUNKS {
            return Err(FitError::TooFewRows(n));
        }
        let fitted: Vec<(usize, FittedColumn)> = columns
            .iter()
            .enumerate()
            .filter_map(|(j, (name, kind))| {
                fit_column(name, *kind, rows.iter().map(|r| r[j])).map(|c| (j, c))
            })
            .collect();
        if fitted.is_empty() {
            return Err(FitError::NoColumns);
        }
        let p = fitted.len();
        let encode = |row: &[Cell<'_>], out: &mut [f64]| {
            for (k, (j, c)) in fitted.iter().enumerate() {
                out[k] = c.encode(row[*j]);
            }
        };
        // Two passes (mean, then squared deviations), as StandardScaler's result is.
        let mut x = vec![0.0; p];
        let mut mean = vec![0.0; p];
        for r in rows {
            encode(r, &mut x);
            for k in 0..p {
                mean[k] += x[k];
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0.0; p];
        for r in rows {
            encode(r, &mut x);
            for k in 0..p {
                var[k] += (x[k] - mean[k]).powi(2);
            }
        }
        let scale: Vec<f64> = var
            .iter()
            .zip(&mean)
            .map(|(v, m)| {
                let v = v / n as f64;
                // scikit-learn's `_is_constant_feature`: a column whose variance is within
                // rounding of 0 keeps scale 1 rather than blowing rounding noise up.
                let (eps, nf) = (f64::EPSILON, n as f64);
                if v <= nf * eps * v + (nf * m * eps).powi(2) {
                    1.0
                } else {
                    v.sqrt()
                }
            })
            .collect();
        // Standardised rows' mean (PCA centres again) and covariance (ddof 1).
        let standardise = |row: &[Cell<'_>], out: &mut [f64]| {
            encode(row, out);
            for k in 0..p {
                out[k] = (out[k] - mean[k]) / scale[k];
            }
        };
        let mut pca_mean = vec![0.0; p];
        for r in rows {
            standardise(r, &mut x);
            for k in 0..p {
                pca_mean[k] += x[k];
            }
        }
        pca_mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = DMatrix::<f64>::zeros(p, p);
        for r in rows {
            standardise(r, &mut x);
            for k in 0..p {
                x[k] -= pca_mean[k];
            }
            for a in 0..p {
                let xa = x[a];
                for b in a..p {
                    cov[(a, b)] += xa * x[b];
                }
            }
        }
        for a in 0..p {
            for b in a..p {
                let v = cov[(a, b)] / (n as f64 - 1.0);
                cov[(a, b)] = v;
                cov[(b, a)] = v;
            }
        }
        let eigen = SymmetricEigen::try_new(cov, f64::EPSILON, 0).ok_or(FitError::Eigen)?;
        let mut order: Vec<usize> = (0..p).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        // Rounding can leave tiny negative eigenvalues: 0, as scikit-learn clips them.
        let values: Vec<f64> = order
            .iter()
            .map(|&i| eigen.eigenvalues[i].max(0.0))
            .collect();
        let total: f64 = values.iter().sum();
        let explained_variance_ratio: Vec<f64> = values
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        let k = components_for(&explained_variance_ratio, variance);
        let components: Vec<Vec<f64>> = order[..k]
            .iter()
            .map(|&i| eigen.eigenvectors.column(i).iter().copied().collect())
            .collect();
        let mut fit = ReconstructionFit {
            columns: fitted.into_iter().map(|(_, c)| c).collect(),
            scaler_mean: mean,
            scaler_scale: scale,
            pca_mean,
            components,
            explained_variance_ratio,
            variance,
            reference_rows: n as u64,
            reference_chunks: Vec::new(),
            band: Band {
                mean: 0.0,
                std: 0.0,
                lower: None,
                upper: 0.0,
            },
        };
        // The band: the reference's own chunks, each row reconstructed like a window's.
        let kept: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| fit.columns.iter().any(|c| c.name == *name))
            .map(|(j, _)| j)
            .collect();
        let chunk_size = n / REFERENCE_CHUNKS;
        let mut scratch = Scratch::new(&fit);
        let mut cells = Vec::with_capacity(kept.len());
        for chunk in rows.chunks(chunk_size) {
            let mut sums = ErrorSums::default();
            for r in chunk {
                cells.clear();
                cells.extend(kept.iter().map(|&j| r[j]));
                sums.push(fit.error_with(&cells, &mut scratch));
            }
            fit.reference_chunks.push(ChunkError {
                rows: sums.n,
                value: sums.mean().unwrap_or(0.0),
            });
        }
        fit.band = band(&fit.reference_chunks);
        Ok(fit)
    }

    /// Number of kept components.
    pub fn n_components(&self) -> usize {
        self.components.len()
    }

    /// Share of variance the kept components explain.
    pub fn explained_variance(&self) -> f64 {
        self.explained_variance_ratio[..self.n_components()]
            .iter()
            .sum()
    }

    /// The reconstruction error of one row, its cells in [`ReconstructionFit::columns`] order.
    pub fn error(&self, row: &[Cell<'_>]) -> f64 {
        self.error_with(row, &mut Scratch::new(self))
    }

    /// [`ReconstructionFit::error`] with buffers kept across rows.
    pub fn error_with(&self, row: &[Cell<'_>], s: &mut Scratch) -> f64 {
        for (k, c) in self.columns.iter().enumerate() {
            s.encoded[k] = c.encode(row[k]);
        }
        let encoded = std::mem::take(&mut s.encoded);
        let e = self.error_of_encoded(&encoded, s);
        s.encoded = encoded;
        e
    }

    /// The reconstruction error of a row already encoded ([`FittedColumn::encode`] of each
    /// column, in order).
    pub fn error_of_encoded(&self, encoded: &[f64], s: &mut Scratch) -> f64 {
        // Centred standardised row.
        for (k, x) in s.x.iter_mut().enumerate() {
            *x = (encoded[k] - self.scaler_mean[k]) / self.scaler_scale[k] - self.pca_mean[k];
        }
        // Its projection on the components, then back: the residual is what they miss.
        s.residual.copy_from_slice(&s.x);
        for w in &self.components {
            let t: f64 = w.iter().zip(&s.x).map(|(a, b)| a * b).sum();
            for (r, wk) in s.residual.iter_mut().zip(w) {
                *r -= t * wk;
            }
        }
        s.residual.iter().map(|r| r * r).sum::<f64>().sqrt()
    }

    /// A window's value from its sums, against the band.
    pub fn window(&self, sums: &ErrorSums) -> WindowError {
        let value = sums.mean();
        let sampling_error = sums.std().map(|s| s / (sums.n as f64).sqrt());
        let (ci_low, ci_high) = match (value, sampling_error) {
            (Some(v), Some(se)) => (
                Some((v - SAMPLING_ERROR_RANGE * se).max(0.0)),
                Some(v + SAMPLING_ERROR_RANGE * se),
            ),
            _ => (None, None),
        };
        WindowError {
            rows: sums.n,
            value,
            sampling_error,
            ci_low,
            ci_high,
            alert: value.is_some_and(|v| self.band.alerts(v)),
        }
    }
}

/// Buffers of [`ReconstructionFit::error_with`].
pub struct Scratch {
    encoded: Vec<f64>,
    x: Vec<f64>,
    residual: Vec<f64>,
}

impl Scratch {
    pub fn new(fit: &ReconstructionFit) -> Scratch {
        Scratch {
            encoded: vec![0.0; fit.columns.len()],
            x: vec![0.0; fit.columns.len()],
            residual: vec![0.0; fit.columns.len()],
        }
    }
}

/// scikit-learn's number of components for a share of variance:
/// `searchsorted(cumsum(ratios), variance, side="right") + 1`, at most all of them.
pub fn components_for(ratios: &[f64], variance: f64) -> usize {
    let mut cum = 0.0;
    let mut below = 0;
    for r in ratios {
        cum += r;
        if cum <= variance {
            below += 1;
        } else {
            break;
        }
    }
    (below + 1).min(ratios.len())
}

/// Mean ± 3 standard deviations (ddof 0) of the chunks' values; no lower bound at or below 0.
fn band(chunks: &[ChunkError]) -> Band {
    let n = chunks.len() as f64;
    let mean = chunks.iter().map(|c| c.value).sum::<f64>() / n;
    let std = (chunks.iter().map(|c| (c.value - mean).powi(2)).sum::<f64>() / n).sqrt();
    let lower = mean - BAND_STD * std;
    Band {
        mean,
        std,
        lower: (lower > 0.0).then_some(lower),
        upper: mean + BAND_STD * std,
    }
}

/// One column's imputation and encoding from its reference values; `None` when it has none.
fn fit_column<'a>(
    name: &str,
    kind: ColumnKind,
    cells: impl Iterator<Item = Cell<'a>> + Clone,
) -> Option<FittedColumn> {
    let encoding = match kind {
        ColumnKind::Numeric => {
            let (mut n, mut sum) = (0u64, 0.0);
            for c in cells {
                if let Cell::Number(x) = c {
                    if x.is_finite() {
                        n += 1;
                        sum += x;
                    }
                }
            }
            if n == 0 {
                return None;
            }
            Encoding::Numeric {
                mean: sum / n as f64,
            }
        }
        ColumnKind::Categorical => {
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            let mut missing = 0u64;
            for c in cells {
                match c {
                    Cell::Category(v) => *counts.entry(v).or_default() += 1,
                    _ => missing += 1,
                }
            }
            // Most frequent, the smallest of a tie (the map is sorted; `max_by` keeps the last
            // of equals, so compare counts then prefer the earlier key).
            let mode = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?
                .0
                .to_string();
            let total = counts.values().sum::<u64>() + missing;
            let shares = counts
                .iter()
                .map(|(k, c)| {
                    let c = if **k == *mode { c + missing } else { *c };
                    (k.to_string(), c as f64 / total as f64)
                })
                .collect();
            Encoding::Categorical { mode, shares }
        }
    };
    Some(FittedColumn {
        name: name.to_owned(),
        encoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_sums_do_not_depend_on_the_order_of_rows_or_merges() {
        let errors: Vec<f64> = (0..1000)
            .map(|i| 1e-3 * f64::from(i) + 0.1 / f64::from(i + 1))
            .collect();
        let mut forward = ErrorSums::default();
        errors.iter().for_each(|e| forward.push(*e));
        // Backwards, in two halves merged the other way round.
        let (mut a, mut b) = (ErrorSums::default(), ErrorSums::default());
        errors[..500].iter().rev().for_each(|e| b.push(*e));
        errors[500..].iter().rev().for_each(|e| a.push(*e));
        a.merge(&b);
        assert_eq!(a, forward);
        assert_eq!(
            a.mean().unwrap().to_bits(),
            forward.mean().unwrap().to_bits()
        );
        assert_eq!(a.std().unwrap().to_bits(), forward.std().unwrap().to_bits());
        // A plain f64 sum of the same rows differs in its last digits between the two orders.
        let plain = |v: &mut dyn Iterator<Item = f64>| v.fold(0.0, |s, e| s + e);
        assert_ne!(
            plain(&mut errors.iter().copied()).to_bits(),
            plain(&mut errors.iter().rev().copied()).to_bits()
        );
    }

    #[test]
    fn components_follow_scikit_learns_searchsorted_rule() {
        // cumsum 0.5, 0.65, 0.8, 1.0: 0.65 is not above 0.65, so a third component is kept.
        assert_eq!(components_for(&[0.5, 0.15, 0.15, 0.2], 0.65), 3);
        assert_eq!(components_for(&[0.7, 0.2, 0.1], 0.65), 1);
        assert_eq!(components_for(&[0.3, 0.3, 0.4], 0.65), 3);
    }

    #[test]
    fn a_category_is_its_reference_share_and_missing_ones_the_mode() {
        let cells = [
            Cell::Category("b"),
            Cell::Category("a"),
            Cell::Missing,
            Cell::Category("b"),
            Cell::Category("a"),
        ];
        let c = fit_column("c", ColumnKind::Categorical, cells.iter().copied()).unwrap();
        // a and b tie at two: the smaller, a, is the mode and takes the missing row.
        assert_eq!(c.encode(Cell::Missing), 0.6);
        assert_eq!(c.encode(Cell::Category("b")), 0.4);
        assert_eq!(c.encode(Cell::Category("zzz")), 0.0);
        let num = [
            Cell::Number(1.0),
            Cell::Missing,
            Cell::Number(f64::NAN),
            Cell::Number(3.0),
        ];
        let c = fit_column("x", ColumnKind::Numeric, num.iter().copied()).unwrap();
        assert_eq!(c.encode(Cell::Missing), 2.0);
        assert_eq!(c.encode(Cell::Category("a")), 2.0);
        assert!(fit_column("e", ColumnKind::Numeric, [Cell::Missing].into_iter()).is_none());
    }

    #[test]
    fn sums_merge_to_the_sums_of_the_union_and_give_ddof_1() {
        let mut a = ErrorSums::default();
        let mut b = ErrorSums::default();
        let mut all = ErrorSums::default();
        for (i, e) in [1.0, 2.0, 4.0, 7.0].into_iter().enumerate() {
            if i % 2 == 0 {
                a.push(e)
            } else {
                b.push(e)
            }
            all.push(e);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.mean(), Some(3.5));
        // Sample variance of 1, 2, 4, 7: (6.25 + 2.25 + 0.25 + 12.25) / 3 = 7.
        assert!((a.std().unwrap() - 7f64.sqrt()).abs() < 1e-12);
        assert_eq!(ErrorSums::default().mean(), None);
    }

    #[test]
    fn too_few_rows_or_no_usable_column_is_a_typed_error() {
        let cols = vec![("x".to_owned(), ColumnKind::Numeric)];
        let rows: Vec<Vec<Cell>> = (0..5).map(|i| vec![Cell::Number(i as f64)]).collect();
        assert_eq!(
            ReconstructionFit::fit(&cols, &rows, 0.65),
            Err(FitError::TooFewRows(5))
        );
        let rows: Vec<Vec<Cell>> = (0..20).map(|_| vec![Cell::Missing]).collect();
        assert_eq!(
            ReconstructionFit::fit(&cols, &rows, 0.65),
            Err(FitError::NoColumns)
        );
    }
}
