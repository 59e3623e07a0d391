//! Mergeable per-window counts of a numeric feature on a fixed grid of reference points, for
//! drift kept per hour and merged into any window (the server's path; `modelwatch drift` on
//! files keeps every value and is exact).
//!
//! The grid holds at most [`GRID_POINTS`] quantiles of the reference plus its minimum,
//! maximum and the profile's bin edges; a reference with fewer distinct values keeps them
//! all. A window keeps, per gap between grid points, how many of its values fall in the gap
//! and how many sit exactly on the gap's left point: about 2 bytes per gap once encoded,
//! whatever the window's size.
//!
//! What that gives, against the [`FeatureProfile`](super::FeatureProfile) it was built from:
//! - the profile's bin counts (PSI, Jensen-Shannon, Hellinger, KL, chi-squared on bins) and
//!   the out-of-range counts: exact, since every bin edge and the reference min and max are
//!   grid points;
//! - the KS statistic: exact when the grid holds every distinct reference value (the sup of
//!   |F_ref - F_cur| is then reached at a grid point or just below one, see
//!   [`SortedReference::gaps`](super::SortedReference::gaps)); otherwise a lower bound that
//!   misses at most the larger of the two samples' mass in one gap (1/256 of the reference).
//!   The p-value uses the true sample sizes, so it is conservative; it is exact up to
//!   [`GRID_EXACT_KS_CELLS`] and asymptotic above (the limiting distribution once the
//!   effective size passes [`KS_LIMIT_EN`](super::KS_LIMIT_EN));
//! - the Wasserstein distance: the tails beyond the reference range are exact (their offset
//!   sums are kept); inside a gap the window's values are taken as spread evenly, so the
//!   error is at most the gap's width times its mass;
//! - Cramér-von Mises: values on grid points exact, values inside a gap at its middle.

use serde::{Deserialize, Serialize};

use super::cvm::{cvm_p_asymptotic, CvmResult};
use super::ks::{ks_p_value_fast, KsResult};
use super::profile::NumericProfile;
use crate::exact::ExactSum;

/// Exact KS p-values on a grid only up to this many cells (`n_reference · n_window`, about
/// 0.1 ms each); larger windows take the asymptotic distribution (`ks_p_value_method` says
/// which), as SciPy does above 10 000 rows.
pub const GRID_EXACT_KS_CELLS: u64 = 200_000;

/// Largest number of reference quantiles in a grid (more grid points when bin edges add some).
pub const GRID_POINTS: usize = 256;

/// The grid of one numeric feature, with the reference's counts at each point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Distinct grid points, ascending.
    points: Vec<f64>,
    /// Reference values < `points[i]`.
    ref_lt: Vec<u64>,
    /// Reference values <= `points[i]`.
    ref_le: Vec<u64>,
    /// Per gap b in 1..K (index b), n · ∫ F_ref over [points[b-1], points[b]).
    ref_area: Vec<f64>,
    /// Per gap: the profile bin its values fall in.
    bin_of_gap: Vec<u32>,
    /// Index of the reference maximum in `points` (the minimum is `points[0]`).
    max_index: usize,
    /// Finite reference values.
    n: u64,
    /// True when every distinct reference value is a grid point (KS is exact).
    complete: bool,
}

/// Counts of one window's finite values on a [`Grid`]; merge by adding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GridCounts {
    /// Per gap b (K + 1 gaps for K points): values x with b points <= x.
    pub count: Vec<u64>,
    /// Per gap b >= 1: values equal to `points[b-1]`.
    pub at_left: Vec<u64>,
    /// Sum of `(points[0] - x)` over the values below the grid. Exact, as `above_area`: a
    /// window's Wasserstein distance must not depend on the order its values were counted or
    /// its hours merged in (the embedded and the ClickHouse stores scan in different orders).
    pub below_area: ExactSum,
    /// Sum of (x - points[K-1]) over the values above the grid.
    pub above_area: ExactSum,
    /// Finite values counted.
    pub n: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Grid {
    /// The grid of a numeric profile.
    pub fn of_profile(np: &NumericProfile) -> Grid {
        let distinct = np.sorted.distinct();
        let cum = np.sorted.cumulative_counts();
        let n = np.sorted.n();
        let complete = distinct.len() <= GRID_POINTS;
        let mut points: Vec<f64> = if complete {
            distinct.to_vec()
        } else {
            // Quantiles by rank over the distinct values' cumulative counts.
            let mut p = Vec::with_capacity(GRID_POINTS + 1);
            let mut k = 0usize;
            for i in 0..=GRID_POINTS {
                let rank = ((i as f64 / GRID_POINTS as f64) * (n - 1) as f64) as u64;
                while k + 1 < distinct.len() && cum[k] <= rank {
                    k += 1;
                }
                p.push(distinct[k]);
            }
            p
        };
        points.extend(np.edges.edges().iter().copied());
        points.extend(np.min);
        points.extend(np.max);
        points.retain(|x| x.is_finite());
        points.sort_by(f64::total_cmp);
        points.dedup();

        // Reference counts at each point and the area under F_ref per gap, in one walk over
        // the distinct values. For gap [points[i-1], points[i]):
        //   n · ∫ F_ref = ref_le[i-1] · len + Σ_{u in (points[i-1], points[i])} count(u) · (points[i] - u)
        // and the walk adds the value equal to points[i-1] (if any) with (points[i] - u) = len,
        // so starting from ref_lt[i-1] · len gives the same sum.
        let count_of = |k: usize| cum[k] - if k == 0 { 0 } else { cum[k - 1] };
        let mut ref_lt = Vec::with_capacity(points.len());
        let mut ref_le = Vec::with_capacity(points.len());
        let mut ref_area = vec![0.0; points.len().max(1)];
        let mut k = 0usize; // next distinct value not yet passed
        let mut below = 0u64; // reference values < the current point
        for (i, &p) in points.iter().enumerate() {
            let mut area = if i > 0 {
                ref_lt[i - 1] as f64 * (p - points[i - 1])
            } else {
                0.0
            };
            while k < distinct.len() && distinct[k] < p {
                area += count_of(k) as f64 * (p - distinct[k]);
                below += count_of(k);
                k += 1;
            }
            if i > 0 {
                ref_area[i] = area;
            }
            ref_lt.push(below);
            let eq = if k < distinct.len() && distinct[k] == p {
                count_of(k)
            } else {
                0
            };
            ref_le.push(below + eq);
        }
        let max_index = np
            .max
            .and_then(|m| points.iter().position(|&p| p == m))
            .unwrap_or(points.len().saturating_sub(1));
        let edges = np.edges.edges();
        let bin_of_gap = (0..=points.len())
            .map(|b| {
                // Values in gap b are >= points[b-1]: the edges at or below it.
                if b == 0 {
                    0
                } else {
                    edges.partition_point(|&e| e <= points[b - 1]) as u32
                }
            })
            .collect();
        Grid {
            points,
            ref_lt,
            ref_le,
            ref_area,
            bin_of_gap,
            max_index,
            n,
            complete,
        }
    }

    /// Grid points, ascending.
    pub fn points(&self) -> &[f64] {
        &self.points
    }

    /// True when KS on this grid is exact.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Empty counts for a window.
    pub fn counts(&self) -> GridCounts {
        GridCounts {
            count: vec![0; self.points.len() + 1],
            at_left: vec![0; self.points.len() + 1],
            ..GridCounts::default()
        }
    }

    /// Adds one finite value (callers count nulls and non-finite values themselves).
    #[inline]
    pub fn observe(&self, c: &mut GridCounts, x: f64) {
        let b = self.points.partition_point(|&p| p <= x);
        c.count[b] += 1;
        if b > 0 && self.points[b - 1] == x {
            c.at_left[b] += 1;
        }
        if self.points.is_empty() {
            // A reference without one finite value: counted, nothing to compare against.
        } else if b == 0 {
            c.below_area.add(self.points[0] - x);
        } else if b > self.max_index + 1 || (b == self.max_index + 1 && x > self.points[b - 1]) {
            c.above_area.add(x - self.points[self.max_index]);
        }
        c.n += 1;
        c.min = Some(c.min.map_or(x, |m| m.min(x)));
        c.max = Some(c.max.map_or(x, |m| m.max(x)));
    }

    /// Counts per profile bin (the bins of [`NumericProfile::edges`]).
    pub fn bin_counts(&self, c: &GridCounts, bins: usize) -> Vec<u64> {
        let mut out = vec![0u64; bins];
        for (b, &n) in c.count.iter().enumerate() {
            if n > 0 {
                out[self.bin_of_gap[b] as usize] += n;
            }
        }
        out
    }

    /// Values below the reference minimum and above its maximum (the minimum is the first
    /// grid point, so gap 0 is below it; gap `max_index + 1` starts at the maximum).
    pub fn out_of_range(&self, c: &GridCounts) -> u64 {
        if self.points.is_empty() {
            return 0;
        }
        let j = self.max_index + 1;
        let above: u64 = c.count[j] - c.at_left[j] + c.count[j + 1..].iter().sum::<u64>();
        c.count[0] + above
    }

    /// Two-sample KS of the window against the reference (see the module doc for exactness).
    pub fn ks(&self, c: &GridCounts) -> Option<KsResult> {
        let (n, m) = (self.n, c.n);
        if n == 0 || m == 0 || self.points.is_empty() {
            return None;
        }
        let (nf, mf) = (n as f64, m as f64);
        let mut d = 0.0f64;
        let mut below = 0u64; // window values < points[i]
        for i in 0..self.points.len() {
            below += c.count[i];
            d = d.max((self.ref_lt[i] as f64 / nf - below as f64 / mf).abs());
            let le = below + c.at_left[i + 1];
            d = d.max((self.ref_le[i] as f64 / nf - le as f64 / mf).abs());
        }
        let (p, method) = ks_p_value_fast(d, n, m, GRID_EXACT_KS_CELLS);
        Some(KsResult {
            statistic: d,
            p_value: p,
            method,
        })
    }

    /// Two-sample Cramér-von Mises of the window against the reference, on the grid: Anderson's
    /// T = nm/(n+m)² · Σ over the pooled values of (F_ref − F_cur)², with every value on a grid
    /// point counted exactly and the values inside a gap taken at its middle (both CDFs
    /// half-way through the gap), and the asymptotic p-value. Exact statistic when every value of
    /// both samples is a grid point (discrete data); an approximation otherwise.
    pub fn cvm(&self, c: &GridCounts) -> Option<CvmResult> {
        let (n, m) = (self.n, c.n);
        let k = self.points.len();
        if n < 2 || m < 2 || k == 0 {
            return None;
        }
        let (nf, mf) = (n as f64, m as f64);
        let mut sum = 0.0;
        // Gap 0: window values below the reference minimum (F_ref = 0).
        let c0 = c.count[0] as f64;
        sum += c0 * (c0 / 2.0 / mf).powi(2);
        let mut below = c.count[0]; // window values < points[b - 1]
        for b in 1..=k {
            // On points[b - 1].
            let ref_at = (self.ref_le[b - 1] - self.ref_lt[b - 1]) as f64;
            let cur_at = c.at_left[b];
            let fr = self.ref_le[b - 1] as f64 / nf;
            let fc = (below + cur_at) as f64 / mf;
            sum += (ref_at + cur_at as f64) * (fr - fc).powi(2);
            // Inside the gap (after points[b - 1], before points[b] or beyond the last).
            let ref_in = if b < k {
                (self.ref_lt[b] - self.ref_le[b - 1]) as f64
            } else {
                (n - self.ref_le[k - 1]) as f64
            };
            let cur_in = (c.count[b] - cur_at) as f64;
            if ref_in + cur_in > 0.0 {
                let fr = (self.ref_le[b - 1] as f64 + ref_in / 2.0) / nf;
                let fc = ((below + cur_at) as f64 + cur_in / 2.0) / mf;
                sum += (ref_in + cur_in) * (fr - fc).powi(2);
            }
            below += c.count[b];
        }
        let t = nf * mf / (nf + mf).powi(2) * sum;
        Some(CvmResult {
            statistic: t,
            p_value: cvm_p_asymptotic(t, n, m).clamp(0.0, 1.0),
        })
    }

    /// 1-Wasserstein distance of the window against the reference (see the module doc).
    pub fn wasserstein(&self, c: &GridCounts) -> Option<f64> {
        let (n, m) = (self.n, c.n);
        let k = self.points.len();
        if n == 0 || m == 0 || k == 0 {
            return None;
        }
        let (nf, mf) = (n as f64, m as f64);
        // Below the reference minimum F_ref = 0 and above its maximum F_ref = 1: the tails
        // are the window's offset sums, exact.
        let mut total = c.below_area.value() / mf + c.above_area.value() / mf;
        let mut below = c.count[0];
        for b in 1..=self.max_index {
            let len = self.points[b] - self.points[b - 1];
            let in_gap = c.count[b];
            let at = c.at_left[b];
            // Window values on the left point count over the whole gap; the others are taken
            // as spread evenly, so each counts over half of it on average.
            let cur_area = (below + at) as f64 * len + (in_gap - at) as f64 * len / 2.0;
            total += (self.ref_area[b] / nf - cur_area / mf).abs();
            below += in_gap;
        }
        Some(total)
    }
}

impl GridCounts {
    /// Adds the counts of another window on the same grid.
    pub fn merge(&mut self, other: &GridCounts) {
        if self.count.is_empty() {
            *self = other.clone();
            return;
        }
        for (a, b) in self.count.iter_mut().zip(&other.count) {
            *a += b;
        }
        for (a, b) in self.at_left.iter_mut().zip(&other.at_left) {
            *a += b;
        }
        self.below_area.merge(&other.below_area);
        self.above_area.merge(&other.above_area);
        self.n += other.n;
        crate::merge_extremes((&mut self.min, &mut self.max), (other.min, other.max));
    }
}
