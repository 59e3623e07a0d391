//! Two-sample Kolmogorov-Smirnov test and the 1-Wasserstein distance, on raw samples.
//!
//! `ks_2samp` follows `scipy.stats.ks_2samp(method="auto", alternative="two-sided")`: the
//! statistic is sup |F_ref - F_cur|; the p-value is exact when both samples have at most
//! 10 000 values and Smirnov's asymptotic `kstwo.sf(D, round(n*m/(n+m)))` otherwise (also when
//! the exact computation fails, as SciPy does).
//!
//! [`SortedReference`] makes the large case fast: the reference is sorted once (kept in the
//! profile) and the current sample is never sorted. See [`SortedReference::gaps`].

use super::special::{kolmogn_sf, ks_outer_prob_inside, ks_prob_outside_square};
use serde::{Deserialize, Serialize};

/// SciPy's `MAX_AUTO_N`: above this sample size, `method="auto"` uses the asymptotic p-value.
pub const KS_MAX_EXACT_N: u64 = 10_000;

/// How a KS p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsPValueMethod {
    /// Exact distribution of D under H0 (Hodges' lattice path counting).
    Exact,
    /// Smirnov's limiting distribution with n = round(n1*n2/(n1+n2)).
    Asymptotic,
}

/// Result of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsResult {
    /// sup_x |F_ref(x) - F_cur(x)|, in [0, 1].
    pub statistic: f64,
    /// Two-sided p-value in [0, 1].
    pub p_value: f64,
    /// Which p-value computation SciPy's `method="auto"` picks for these sizes.
    pub method: KsPValueMethod,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Two-sided p-value of a KS statistic `d` for sample sizes `n1`, `n2` (both > 0), with
/// SciPy's `method="auto"` rule. `d` is rounded to the lattice h / lcm(n1, n2) in the exact
/// case, as SciPy does.
pub fn ks_p_value(d: f64, n1: u64, n2: u64) -> (f64, KsPValueMethod) {
    ks_p_value_within(d, n1, n2, u64::MAX)
}

/// [`ks_p_value`], exact only when `n1 · n2 <= max_exact_cells` as well: the exact
/// distribution costs O(n1 · n2), which a response of hundreds of windows cannot pay each time.
pub fn ks_p_value_within(d: f64, n1: u64, n2: u64, max_exact_cells: u64) -> (f64, KsPValueMethod) {
    if n1 == 0 || n2 == 0 {
        return (1.0, KsPValueMethod::Asymptotic);
    }
    if n1.max(n2) <= KS_MAX_EXACT_N && n1.saturating_mul(n2) <= max_exact_cells {
        let g = gcd(n1, n2);
        let lcm = (n1 / g) as f64 * n2 as f64;
        let h = (d * lcm).round_ties_even();
        if h == 0.0 {
            return (1.0, KsPValueMethod::Exact);
        }
        let h = h as u64;
        let p = if n1 == n2 {
            ks_prob_outside_square(n1, h)
        } else {
            ks_outer_prob_inside(n1, n2, g, h)
        };
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            return (p, KsPValueMethod::Exact);
        }
    }
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    (
        kolmogn_sf(en.round_ties_even() as u64, d).clamp(0.0, 1.0),
        KsPValueMethod::Asymptotic,
    )
}

/// Above this effective size `n1·n2/(n1+n2)` [`ks_p_value_fast`] takes the limiting
/// Kolmogorov distribution instead of the exact one-sample distribution of that size.
pub const KS_LIMIT_EN: f64 = 10_000.0;

/// [`ks_p_value_within`] for callers that evaluate thousands of windows: above
/// [`KS_LIMIT_EN`] the p-value is the limiting Kolmogorov distribution at
/// `t + 1/(6√en) + (t − 1)/(4en)`, `t = √en·d` (Vrbik's finite-size shift), within 1e-4 of the
/// exact-size one (tested), at a cost that does not grow with the sample (the exact one sums en
/// terms).
pub fn ks_p_value_fast(d: f64, n1: u64, n2: u64, max_exact_cells: u64) -> (f64, KsPValueMethod) {
    let en = (n1 as f64 * n2 as f64) / (n1 as f64 + n2 as f64);
    if n1 == 0 || n2 == 0 || en <= KS_LIMIT_EN {
        return ks_p_value_within(d, n1, n2, max_exact_cells);
    }
    (kolmogorov_limit_sf(d, en), KsPValueMethod::Asymptotic)
}

/// Q_KS(λ) at Vrbik's shifted argument, with Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}.
fn kolmogorov_limit_sf(d: f64, en: f64) -> f64 {
    let s = en.sqrt();
    let t = s * d;
    // Vrbik's (2018) shift of the limiting distribution's argument for a finite size.
    let lambda = t + 1.0 / (6.0 * s) + (t - 1.0) / (4.0 * en);
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = sign * (-2.0 * kf * kf * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-16 * sum.abs().max(1e-300) {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// KS statistic of two ascending, finite samples (merge walk; both non-empty).
fn ks_statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut d = 0.0f64;
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    // After one sample is exhausted the other CDF only moves toward 1, so the gap shrinks.
    d
}

/// `scipy.stats.ks_2samp(reference, current)` on raw samples; non-finite values are skipped.
/// `None` if either sample has no finite value.
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Option<KsResult> {
    let a = sorted_finite(reference);
    let b = sorted_finite(current);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let d = ks_statistic_sorted(&a, &b);
    let (p, method) = ks_p_value(d, a.len() as u64, b.len() as u64);
    Some(KsResult {
        statistic: d,
        p_value: p,
        method,
    })
}

/// `scipy.stats.wasserstein_distance(reference, current)`: the integral of |F_ref - F_cur|.
/// Non-finite values are skipped; `None` if either sample has no finite value.
pub fn wasserstein_distance(reference: &[f64], current: &[f64]) -> Option<f64> {
    let a = sorted_finite(reference);
    let b = sorted_finite(current);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut prev = a[0].min(b[0]);
    let mut total = 0.0;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        total += (i as f64 / n - j as f64 / m).abs() * (x - prev);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        prev = x;
    }
    Some(total)
}

/// The reference sample of one numeric feature, sorted once, as the distinct values and their
/// cumulative counts, with a lookup table that finds a value's gap in O(1) expected time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SortedReference {
    /// Distinct finite values, ascending.
    distinct: Vec<f64>,
    /// `cum[k]` = number of reference values <= `distinct[k]`.
    cum: Vec<u64>,
    /// `slots[s]` = first index k with `distinct[k] >= lo + s * width`.
    #[serde(skip)]
    slots: Vec<u32>,
    /// Slots per unit of value (1 / slot width).
    #[serde(skip)]
    inv_width: f64,
}

/// Per-gap counts of a current sample against a [`SortedReference`]; mergeable by adding
/// cell by cell.
///
/// Gap `b` holds current values x with exactly `b` distinct reference values <= x: gap 0 is
/// below the smallest reference value, gap K (K distinct values) is at or above the largest.
#[derive(Debug, Clone, PartialEq)]
pub struct GapCounts {
    /// One cell per gap (K + 1 cells). One array of cells rather than three arrays, so a
    /// value's update touches one cache line.
    pub cells: Vec<GapCell>,
    /// Finite current values counted.
    pub n: u64,
}

impl GapCounts {
    /// Adds another chunk's counts (same reference). KS on the merged counts equals KS on the
    /// concatenated chunks, so a file can be read one row group at a time.
    pub fn merge(&mut self, other: &GapCounts) {
        if self.cells.is_empty() {
            self.cells = other.cells.clone();
        } else {
            for (a, b) in self.cells.iter_mut().zip(&other.cells) {
                a.count += b.count;
                a.at_left += b.at_left;
                a.offset_sum += b.offset_sum;
            }
        }
        self.n += other.n;
    }
}

/// Counts of one gap of [`GapCounts`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GapCell {
    /// Current values in the gap.
    pub count: u64,
    /// Current values exactly equal to the gap's left end (reference value `b - 1`).
    pub at_left: u64,
    /// Sum over the gap's values of (x - left end), or (right end - x) in gap 0: the area
    /// terms the Wasserstein distance needs.
    pub offset_sum: f64,
}

impl SortedReference {
    /// From raw reference values; non-finite values are skipped.
    pub fn new(values: &[f64]) -> Self {
        Self::from_sorted(&sorted_finite(values))
    }

    /// From an ascending, finite slice.
    pub fn from_sorted(sorted: &[f64]) -> Self {
        let mut distinct = Vec::new();
        let mut cum = Vec::new();
        for (i, &x) in sorted.iter().enumerate() {
            if distinct.last() == Some(&x) {
                *cum.last_mut().expect("pushed with distinct") = (i + 1) as u64;
            } else {
                distinct.push(x);
                cum.push((i + 1) as u64);
            }
        }
        let mut r = Self {
            distinct,
            cum,
            slots: Vec::new(),
            inv_width: 0.0,
        };
        r.build_slots();
        r
    }

    /// Rebuilds the lookup table (after deserialising).
    pub fn build_slots(&mut self) {
        let k = self.distinct.len();
        if k < 2 {
            self.slots = Vec::new();
            return;
        }
        let (lo, hi) = (self.distinct[0], self.distinct[k - 1]);
        // About one distinct value per slot: small enough to stay in cache, fine enough
        // that the final search is over a handful of values.
        let nslots = k;
        let width = (hi - lo) / nslots as f64;
        if !(width > 0.0 && width.is_finite()) {
            self.slots = Vec::new();
            return;
        }
        let mut slots = Vec::with_capacity(nslots + 2);
        let mut idx = 0usize;
        for s in 0..=nslots + 1 {
            let start = lo + s as f64 * width;
            while idx < k && self.distinct[idx] < start {
                idx += 1;
            }
            slots.push(idx as u32);
        }
        self.slots = slots;
        self.inv_width = nslots as f64 / (hi - lo);
    }

    /// Number of reference values (finite).
    pub fn n(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// Distinct reference values, ascending.
    pub fn distinct(&self) -> &[f64] {
        &self.distinct
    }

    /// Number of reference values <= each distinct value.
    pub fn cumulative_counts(&self) -> &[u64] {
        &self.cum
    }

    /// Gap of a finite value: the number of distinct reference values <= x.
    #[inline]
    pub fn gap_of(&self, x: f64) -> usize {
        let k = self.distinct.len();
        if self.slots.is_empty() {
            return self.distinct.partition_point(|&u| u <= x);
        }
        let lo = self.distinct[0];
        if x < lo {
            return 0;
        }
        if x >= self.distinct[k - 1] {
            return k;
        }
        let nslots = self.slots.len() - 2;
        let s = (((x - lo) * self.inv_width) as usize).min(nslots);
        // Every distinct value below slots[s - 1] is below x and every one from slots[s + 2]
        // on is above it, even if rounding put x one slot off; search between them. A binary
        // search, not a scan: skewed data (lognormal tails) packs many values into a slot.
        let a = self.slots[s.saturating_sub(1)] as usize;
        let b = (self.slots[(s + 2).min(nslots + 1)] as usize).clamp(a, k);
        a + self.distinct[a..b].partition_point(|&u| u <= x)
    }

    /// Counts a current sample per gap; non-finite values are skipped.
    ///
    /// Why this is enough for an exact KS statistic without sorting the current sample:
    /// inside gap b (between distinct reference values u_{b-1} and u_b) F_ref is constant,
    /// and F_cur is non-decreasing, so sup |F_ref - F_cur| over the gap is reached at one of
    /// its ends: at u_{b-1} (F_cur counts the gaps below plus the values equal to u_{b-1})
    /// or at the gap's largest current value (F_cur counts everything up to the gap's end).
    /// Both need only per-gap counts, found by one lookup per current value: O(m) after the
    /// reference was sorted once, instead of O((n + m) log(n + m)).
    pub fn gaps(&self, current: &[f64]) -> GapCounts {
        let k = self.distinct.len();
        let mut g = GapCounts {
            cells: vec![GapCell::default(); k + 1],
            n: 0,
        };
        if k == 0 {
            return g;
        }
        let first = self.distinct[0];
        // Two phases per chunk: the lookups of a chunk are independent of each other, so the
        // CPU overlaps their cache misses; the cell updates follow.
        let mut idx = [0u32; 512];
        for chunk in current.chunks(512) {
            for (slot, &x) in idx.iter_mut().zip(chunk) {
                *slot = if x.is_finite() {
                    self.gap_of(x) as u32
                } else {
                    u32::MAX
                };
            }
            for (&b, &x) in idx.iter().zip(chunk) {
                if b == u32::MAX {
                    continue;
                }
                g.n += 1;
                self.add_to_cell(&mut g.cells, b as usize, x, first);
            }
        }
        g
    }

    #[inline]
    fn add_to_cell(&self, cells: &mut [GapCell], b: usize, x: f64, first: f64) {
        {
            let cell = &mut cells[b];
            cell.count += 1;
            if b == 0 {
                cell.offset_sum += first - x;
            } else {
                let left = self.distinct[b - 1];
                if x == left {
                    cell.at_left += 1;
                } else {
                    cell.offset_sum += x - left;
                }
            }
        }
    }

    /// Exact two-sample KS test of a current sample against this reference; equals
    /// [`ks_2samp`] on the raw samples. `None` if either side has no finite value.
    pub fn ks(&self, gaps: &GapCounts) -> Option<KsResult> {
        let (n, m) = (self.n(), gaps.n);
        if n == 0 || m == 0 {
            return None;
        }
        let (nf, mf) = (n as f64, m as f64);
        let mut d = 0.0f64;
        let mut below = 0u64; // current values in gaps before b
        for (b, cell) in gaps.cells.iter().enumerate() {
            let r = if b == 0 { 0 } else { self.cum[b - 1] };
            let a = r as f64 / nf;
            if b > 0 {
                d = d.max((a - (below + cell.at_left) as f64 / mf).abs());
            }
            below += cell.count;
            d = d.max((a - below as f64 / mf).abs());
        }
        let (p, method) = ks_p_value(d, n, m);
        Some(KsResult {
            statistic: d,
            p_value: p,
            method,
        })
    }

    /// 1-Wasserstein distance of a current sample against this reference; equals
    /// [`wasserstein_distance`] up to rounding. Needs the current values again for the few
    /// gaps where F_cur crosses F_ref (only those values are sorted).
    // Indexes four parallel arrays (cells, distinct, cum, crossing) by gap: a range loop
    // reads clearer than a zip of four iterators with offsets.
    #[allow(clippy::needless_range_loop)]
    pub fn wasserstein(&self, gaps: &GapCounts, current: &[f64]) -> Option<f64> {
        let (n, m) = (self.n(), gaps.n);
        let k = self.distinct.len();
        if n == 0 || m == 0 {
            return None;
        }
        let (nf, mf) = (n as f64, m as f64);
        // Gap 0: F_ref = 0; gap K: F_ref = 1. Both reduce to the offset sums.
        let mut total = gaps.cells[0].offset_sum / mf + gaps.cells[k].offset_sum / mf;
        let mut crossing = vec![false; k + 1];
        let mut any_crossing = false;
        let mut below = gaps.cells[0].count;
        for b in 1..k {
            let r = self.cum[b - 1];
            let len = self.distinct[b] - self.distinct[b - 1];
            let c = gaps.cells[b].count;
            // Compare F_cur with F_ref = r/n exactly, in integers: cur/m vs r/n.
            let lo_cmp = (below as u128 * n as u128).cmp(&(r as u128 * m as u128));
            let hi_cmp = ((below + c) as u128 * n as u128).cmp(&(r as u128 * m as u128));
            // Integral of F_cur over the gap times m: below*len + sum (hi - x).
            let int_fcur_m = (below + c) as f64 * len - gaps.cells[b].offset_sum;
            let a_len_m = r as f64 * mf / nf * len;
            if hi_cmp != std::cmp::Ordering::Greater {
                total += (a_len_m - int_fcur_m) / mf;
            } else if lo_cmp != std::cmp::Ordering::Less {
                total += (int_fcur_m - a_len_m) / mf;
            } else {
                crossing[b] = true;
                any_crossing = true;
            }
            below += c;
        }
        if any_crossing {
            // Only values in crossing gaps are needed: mark the lookup slots those gaps
            // overlap and look up only values whose slot is marked (few, in practice).
            let nslots = self.slots.len().saturating_sub(2);
            let lo = self.distinct[0];
            let slot = |x: f64| (((x - lo) * self.inv_width).max(0.0) as usize).min(nslots);
            let mut marked = vec![nslots == 0; nslots + 1];
            if nslots > 0 {
                for b in (1..k).filter(|&b| crossing[b]) {
                    let (s0, s1) = (slot(self.distinct[b - 1]), slot(self.distinct[b]));
                    for m in marked
                        .iter_mut()
                        .take((s1 + 1).min(nslots) + 1)
                        .skip(s0.saturating_sub(1))
                    {
                        *m = true;
                    }
                }
            }
            let mut vals: Vec<(u32, f64)> = Vec::new();
            for &x in current {
                if !x.is_finite() || x < lo || !marked[slot(x)] {
                    continue;
                }
                let b = self.gap_of(x);
                if crossing[b] {
                    vals.push((b as u32, x));
                }
            }
            vals.sort_unstable_by(|p, q| p.0.cmp(&q.0).then(p.1.total_cmp(&q.1)));
            let mut below = gaps.cells[0].count;
            let mut idx = 0usize;
            for b in 1..k {
                if crossing[b] {
                    let a = self.cum[b - 1] as f64 / nf;
                    let mut prev = self.distinct[b - 1];
                    let mut cnt = below;
                    while idx < vals.len() && vals[idx].0 as usize == b {
                        let x = vals[idx].1;
                        total += (a - cnt as f64 / mf).abs() * (x - prev);
                        cnt += 1;
                        prev = x;
                        idx += 1;
                    }
                    total += (a - cnt as f64 / mf).abs() * (self.distinct[b] - prev);
                }
                below += gaps.cells[b].count;
            }
        }
        Some(total)
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn the_limiting_distribution_is_within_1e4_of_the_exact_size_one() {
        for en in [10_001u64, 50_000, 90_909, 400_000] {
            for i in 1..60 {
                // d from far below to far above the critical value 1.36 / sqrt(en).
                let d = i as f64 * 0.05 / (en as f64).sqrt();
                let exact = super::super::special::kolmogn_sf(en, d);
                let fast = kolmogorov_limit_sf(d, en as f64);
                assert!(
                    (exact - fast).abs() < 1e-4,
                    "en {en} d {d}: {exact} vs {fast}"
                );
            }
        }
    }
}
