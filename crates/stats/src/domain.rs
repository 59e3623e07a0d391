//! Domain-classifier drift, as NannyML 0.13 defines it
//! (`nannyml/drift/multivariate/domain_classifier/calculator.py`): how well a classifier tells a
//! window's rows (label 1) from the reference's (label 0), as the ROC AUC of its out-of-fold
//! scores. 0.5: the window looks like the reference; 1: every row can be told apart.
//!
//! - **Rows.** A bounded sample ([`SAMPLE_ROWS`] reference rows, [`SAMPLE_ROWS`] window rows at
//!   most; the engine draws the reference's with [`Reservoir`], the window's with
//!   [`crate::sample::LowestHash`]), so a window costs the same whatever its size (ADR 015).
//!   NannyML fits on every reference row and every chunk row.
//! - **Folds.** [`FOLDS`]-fold stratified cross-validation, the folds exactly those of
//!   scikit-learn's `StratifiedKFold(n_splits=5)` without shuffling ([`stratified_folds`]):
//!   each row is scored by the classifier fitted on the other folds.
//! - **Classifier.** NannyML fits LightGBM (100 trees, 31 leaves); we fit the boosted trees of
//!   [`crate::estimate::dle`] with a logistic loss ([`Gbdt::fit_logistic`]: 100 trees of depth
//!   4), numeric columns in at most 127 equal-count bins, categories ranked by their share of
//!   window rows. Bins are fitted on each fold's training rows only.
//! - **AUC and interval.** The AUC of the out-of-fold scores (ties count one half: scikit-learn's
//!   `roc_auc_score`) and DeLong's standard error (DeLong, DeLong & Clarke-Pearson 1988, computed
//!   with midranks as Sun & Xu 2014), the interval AUC ± 1.96 standard errors clipped to
//!   [0, 1] ([`auc_delong`]). DeLong rather than a bootstrap: closed form, deterministic, O(n log
//!   n), and checkable to the last digits against a Python implementation (ADR 015).

use crate::estimate::dle::{Binner, Cell, ColumnKind, Gbdt};

/// Folds of the cross-validation (NannyML's `cv_folds_num`).
pub const FOLDS: usize = 5;
/// Rows drawn from the reference, and from each window, at most (ADR 015).
pub const SAMPLE_ROWS: usize = 2000;
/// The standard normal's 97.5 % quantile: the interval is 95 %.
pub const Z_95: f64 = 1.959_963_984_540_054;
/// NannyML's default upper threshold (`ConstantThreshold(lower=0.45, upper=0.65)`).
pub const DEFAULT_THRESHOLD: f64 = 0.65;

/// The AUC of scores against labels, with DeLong's standard error and the 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AucInterval {
    pub auc: f64,
    pub standard_error: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Midranks (1-based; tied values share the mean of their ranks), as `scipy.stats.rankdata`.
fn midranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && v[order[j]] == v[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let r = 0.5 * ((i + 1) + j) as f64;
        for &k in &order[i..j] {
            out[k] = r;
        }
        i = j;
    }
    out
}

fn variance(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
}

/// The AUC of `scores` for telling the rows with `positive` from the others, DeLong's standard
/// error and the interval AUC ± [`Z_95`] standard errors within [0, 1]. `None` with fewer than two
/// rows of either class (the variance needs two).
pub fn auc_delong(positive: &[bool], scores: &[f64]) -> Option<AucInterval> {
    let x: Vec<f64> = scores
        .iter()
        .zip(positive)
        .filter_map(|(s, p)| p.then_some(*s))
        .collect();
    let y: Vec<f64> = scores
        .iter()
        .zip(positive)
        .filter_map(|(s, p)| (!p).then_some(*s))
        .collect();
    let (m, n) = (x.len(), y.len());
    if m < 2 || n < 2 {
        return None;
    }
    let mut z = x.clone();
    z.extend_from_slice(&y);
    let rz = midranks(&z);
    let rx = midranks(&x);
    let ry = midranks(&y);
    let (mf, nf) = (m as f64, n as f64);
    let auc = (rz[..m].iter().sum::<f64>() - mf * (mf + 1.0) / 2.0) / (mf * nf);
    // Structural components: V10_i, the share of negatives below positive i; V01_j, the share
    // of positives above negative j.
    let v10: Vec<f64> = (0..m).map(|i| (rz[i] - rx[i]) / nf).collect();
    let v01: Vec<f64> = (0..n).map(|j| 1.0 - (rz[m + j] - ry[j]) / mf).collect();
    let se = (variance(&v10) / mf + variance(&v01) / nf).sqrt();
    Some(AucInterval {
        auc,
        standard_error: se,
        ci_low: (auc - Z_95 * se).clamp(0.0, 1.0),
        ci_high: (auc + Z_95 * se).clamp(0.0, 1.0),
    })
}

/// The test fold of each row in scikit-learn's `StratifiedKFold(n_splits=k, shuffle=False)`
/// (scikit-learn ≥ 0.22): rows sorted by class are dealt to the folds in turn to decide how many
/// of each class a fold gets, then each class's rows, in their order, fill fold 0, 1, ... with
/// that many.
pub fn stratified_folds(positive: &[bool], k: usize) -> Vec<usize> {
    let negatives = positive.iter().filter(|p| !**p).count();
    let total = positive.len();
    // allocation[f] = (negatives, positives) of fold f: positions f, f+k, ... of the sorted
    // labels (negatives first).
    let mut allocation = vec![(0usize, 0usize); k];
    for (f, a) in allocation.iter_mut().enumerate() {
        let mut p = f;
        while p < total {
            if p < negatives {
                a.0 += 1;
            } else {
                a.1 += 1;
            }
            p += k;
        }
    }
    let mut next = [(0usize, 0usize); 2];
    let mut out = Vec::with_capacity(total);
    for &p in positive {
        let c = usize::from(p);
        let (fold, used) = &mut next[c];
        let size = |f: usize| {
            if p {
                allocation[f].1
            } else {
                allocation[f].0
            }
        };
        while *fold < k && *used >= size(*fold) {
            *fold += 1;
            *used = 0;
        }
        out.push((*fold).min(k - 1));
        *used += 1;
    }
    out
}

/// One row of the classifier's input: a cell per column, in the order of the kinds.
pub type Row<'a> = Vec<Cell<'a>>;

/// The out-of-fold score (log-odds of "window") of every row: each fold's rows scored by the
/// classifier fitted on the other folds ([`stratified_folds`]).
pub fn out_of_fold_scores(kinds: &[ColumnKind], rows: &[Row<'_>], positive: &[bool]) -> Vec<f64> {
    let folds = stratified_folds(positive, FOLDS);
    let mut scores = vec![0.0; rows.len()];
    for fold in 0..FOLDS {
        let train: Vec<usize> = (0..rows.len()).filter(|&i| folds[i] != fold).collect();
        let test: Vec<usize> = (0..rows.len()).filter(|&i| folds[i] == fold).collect();
        if test.is_empty() || train.is_empty() {
            continue;
        }
        let y: Vec<f64> = train
            .iter()
            .map(|&i| f64::from(u8::from(positive[i])))
            .collect();
        let binners: Vec<Binner> = kinds
            .iter()
            .enumerate()
            .map(|(c, kind)| match kind {
                ColumnKind::Numeric => {
                    let mut v: Vec<f64> = train
                        .iter()
                        .filter_map(|&i| match rows[i].get(c) {
                            Some(Cell::Number(x)) if !x.is_nan() => Some(*x),
                            _ => None,
                        })
                        .collect();
                    Binner::numeric(&mut v)
                }
                ColumnKind::Categorical => {
                    let seen: Vec<(&str, f64)> = train
                        .iter()
                        .zip(&y)
                        .filter_map(|(&i, y)| match rows[i].get(c) {
                            Some(Cell::Text(t)) => Some((*t, *y)),
                            _ => None,
                        })
                        .collect();
                    Binner::categorical(&seen)
                }
            })
            .collect();
        let bin =
            |i: usize, c: usize| binners[c].bin(rows[i].get(c).copied().unwrap_or(Cell::Missing));
        let bins: Vec<Vec<u16>> = (0..kinds.len())
            .map(|c| train.iter().map(|&i| bin(i, c)).collect())
            .collect();
        let widths: Vec<usize> = binners.iter().map(Binner::bins).collect();
        let model = Gbdt::fit_logistic(&bins, &widths, &y);
        for &i in &test {
            scores[i] = model.predict(|c| bin(i, c));
        }
    }
    scores
}

/// A window's domain-classifier drift.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DomainScore {
    pub auc: AucInterval,
    /// Rows of the reference and of the window the classifier was fitted on.
    pub reference_rows: u64,
    pub window_rows: u64,
}

/// Why a window has no score.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error(
        "{reference} reference rows and {window} window rows: the domain classifier needs at \
         least {FOLDS} of each"
    )]
    TooFew { reference: usize, window: usize },
}

/// The domain-classifier score of `window` against `reference` (already sampled): the reference
/// rows first, then the window's, as NannyML concatenates them.
pub fn domain_score(
    kinds: &[ColumnKind],
    reference: &[Row<'_>],
    window: &[Row<'_>],
) -> Result<DomainScore, DomainError> {
    if reference.len() < FOLDS || window.len() < FOLDS {
        return Err(DomainError::TooFew {
            reference: reference.len(),
            window: window.len(),
        });
    }
    let rows: Vec<Row<'_>> = reference.iter().chain(window).cloned().collect();
    let positive: Vec<bool> = (0..rows.len()).map(|i| i >= reference.len()).collect();
    let scores = out_of_fold_scores(kinds, &rows, &positive);
    let auc = auc_delong(&positive, &scores).ok_or(DomainError::TooFew {
        reference: reference.len(),
        window: window.len(),
    })?;
    Ok(DomainScore {
        auc,
        reference_rows: reference.len() as u64,
        window_rows: window.len() as u64,
    })
}

/// A seeded uniform sample of at most `capacity` items from a stream (Vitter's algorithm R on
/// SplitMix64): the same stream and seed give the same sample. Items keep their arrival order.
#[derive(Debug, Clone)]
pub struct Reservoir<T> {
    capacity: usize,
    state: u64,
    seen: u64,
    items: Vec<(u64, T)>,
}

impl<T> Reservoir<T> {
    pub fn new(capacity: usize, seed: u64) -> Reservoir<T> {
        Reservoir {
            capacity,
            state: seed,
            seen: 0,
            items: Vec::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Offers the next item, made by `make` only when it is kept.
    pub fn offer_with(&mut self, make: impl FnOnce() -> T) {
        let i = self.seen;
        self.seen += 1;
        if self.items.len() < self.capacity {
            self.items.push((i, make()));
            return;
        }
        // Uniform in 0..=i by the high half of a 128-bit product (bias below 2^-64 · i).
        let j = ((u128::from(self.next()) * u128::from(i + 1)) >> 64) as usize;
        if j < self.capacity {
            self.items[j] = (i, make());
        }
    }

    /// Items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The kept items in the order they arrived.
    pub fn into_items(mut self) -> Vec<T> {
        self.items.sort_by_key(|(i, _)| *i);
        self.items.into_iter().map(|(_, t)| t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_scikit_learns() {
        // y = [0]*7 + [1]*4 + [0]*2, sorted: 9 zeros then 4 ones, dealt to the folds in turn
        // (positions f, f+5, f+10): zeros (2, 2, 2, 2, 1), ones (1, 1, 1, 0, 1). As
        // `StratifiedKFold(n_splits=5).split` gives.
        let y: Vec<bool> = [vec![false; 7], vec![true; 4], vec![false; 2]].concat();
        let f = stratified_folds(&y, 5);
        assert_eq!(f, vec![0, 0, 1, 1, 2, 2, 3, 0, 1, 2, 4, 3, 4]);
    }

    #[test]
    fn auc_counts_ties_as_half() {
        let y = [false, false, true, true];
        let a = auc_delong(&y, &[0.1, 0.5, 0.5, 0.9]).unwrap();
        assert_eq!(a.auc, 0.875);
        assert!(a.ci_low <= a.auc && a.auc <= a.ci_high && a.ci_high <= 1.0);
        assert!(auc_delong(&[true, false], &[1.0, 0.0]).is_none());
    }

    #[test]
    fn reservoir_is_seeded_and_bounded() {
        let sample = |seed| {
            let mut r = Reservoir::new(10, seed);
            for i in 0..1000 {
                r.offer_with(|| i);
            }
            r.into_items()
        };
        let a = sample(1);
        assert_eq!(a.len(), 10);
        assert_eq!(a, sample(1));
        assert_ne!(a, sample(2));
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        let mut few = Reservoir::new(10, 1);
        few.offer_with(|| 7);
        assert_eq!(few.into_items(), vec![7]);
    }

    /// A window shifted in one feature is told apart; one from the same distribution is not.
    #[test]
    fn tells_a_shifted_window_from_the_reference() {
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let cats = ["a", "b", "c"];
        let mut make = |shift: f64, n: usize| -> Vec<Row<'static>> {
            (0..n)
                .map(|i| {
                    vec![
                        Cell::Number(next() + shift),
                        Cell::Number(next()),
                        Cell::Text(cats[i % 3]),
                    ]
                })
                .collect()
        };
        let kinds = [
            ColumnKind::Numeric,
            ColumnKind::Numeric,
            ColumnKind::Categorical,
        ];
        let reference = make(0.0, 600);
        let same = make(0.0, 300);
        let shifted = make(0.5, 300);
        let quiet = domain_score(&kinds, &reference, &same).unwrap();
        let loud = domain_score(&kinds, &reference, &shifted).unwrap();
        assert!(quiet.auc.auc < 0.6, "{quiet:?}");
        assert!(loud.auc.auc > 0.85, "{loud:?}");
        assert_eq!(loud, domain_score(&kinds, &reference, &shifted).unwrap());
        assert!(matches!(
            domain_score(&kinds, &reference, &shifted[..3]),
            Err(DomainError::TooFew { .. })
        ));
    }
}
