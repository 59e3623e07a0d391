//! Fixed-edge bins taken from the reference, and categorical frequency tables.
//!
//! The server keeps per-window counts in these bins; counts of two windows add up to the
//! counts of their union, so every binned statistic here is exact on merged aggregates.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Default number of quantile bins (the peers' default: deciles).
pub const DEFAULT_BINS: usize = 10;

/// Quantile of an ascending, NaN-free slice with NumPy's default (`method="linear"`, R-7)
/// interpolation, computed the way NumPy rounds so edges match `np.quantile` bit for bit.
/// Returns `None` on an empty slice.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = virtual_index.floor();
    let lo_i = (lo as usize).min(n - 1);
    let hi_i = (lo_i + 1).min(n - 1);
    let t = virtual_index - lo;
    let (a, b) = (sorted[lo_i], sorted[hi_i]);
    let diff = b - a;
    // NumPy's _lerp: from the nearer end, so t = 1 gives b exactly.
    Some(if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    })
}

/// Interior bin edges; the outer bins are open to -inf and +inf.
///
/// Bin `i` holds values `x` with `edges[i-1] <= x < edges[i]` (NumPy's
/// `searchsorted(edges, x, side="right")`), so there are `edges.len() + 1` bins.
/// Equal edges (discrete data) are merged, so no bin is empty by construction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinEdges {
    edges: Vec<f64>,
}

impl BinEdges {
    /// Edges at the reference quantiles 1/k .. (k-1)/k of an ascending, finite slice.
    /// An empty reference or `bins <= 1` gives a single bin.
    pub fn from_sorted_reference(sorted: &[f64], bins: usize) -> Self {
        let mut edges = Vec::with_capacity(bins.saturating_sub(1));
        if !sorted.is_empty() && bins > 1 {
            // Same quantile grid as np.linspace(0, 1, bins + 1): i * (1 / bins).
            let step = 1.0 / bins as f64;
            for i in 1..bins {
                let e = quantile_sorted(sorted, i as f64 * step).unwrap_or(0.0);
                if edges.last() != Some(&e) {
                    edges.push(e);
                }
            }
        }
        Self { edges }
    }

    /// Explicit edges (sorted and deduplicated here; non-finite edges are dropped).
    pub fn from_edges(mut edges: Vec<f64>) -> Self {
        edges.retain(|e| e.is_finite());
        edges.sort_by(f64::total_cmp);
        edges.dedup();
        Self { edges }
    }

    /// The interior edges, ascending.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// Number of bins (`edges().len() + 1`).
    pub fn len(&self) -> usize {
        self.edges.len() + 1
    }

    /// Always false: there is at least one bin.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bin index of a value. NaN goes to the last bin; callers exclude NaN first.
    #[inline]
    pub fn bin_of(&self, x: f64) -> usize {
        // Few edges: a branch-free linear count beats a binary search.
        if self.edges.len() <= 32 {
            self.edges.iter().map(|&e| usize::from(e <= x)).sum()
        } else {
            self.edges.partition_point(|&e| e <= x)
        }
    }

    /// Counts per bin of the finite values; NaN and infinities are skipped (count them
    /// as missing yourself).
    pub fn counts(&self, values: &[f64]) -> Vec<u64> {
        let mut out = vec![0u64; self.len()];
        for &x in values {
            if x.is_finite() {
                out[self.bin_of(x)] += 1;
            }
        }
        out
    }
}

/// Category frequencies of one sample against the reference's categories.
///
/// `counts[i]` counts `categories[i]` of the reference; categories the reference never saw are
/// kept, each with its own count, in `unseen` (sorted by name) — they are never dropped.
/// Two tables over the same reference categories merge by adding counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryCounts {
    /// Count per reference category, in the reference's category order.
    pub counts: Vec<u64>,
    /// Categories unseen in the reference and their counts, sorted by name.
    pub unseen: Vec<(String, u64)>,
}

impl CategoryCounts {
    /// Rows counted (nulls excluded).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.unseen.iter().map(|(_, c)| c).sum::<u64>()
    }

    /// Rows in categories unseen in the reference.
    pub fn unseen_total(&self) -> u64 {
        self.unseen.iter().map(|(_, c)| c).sum()
    }

    /// Adds another window's counts (same reference categories).
    pub fn merge(&mut self, other: &CategoryCounts) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        let mut map: HashMap<String, u64> = self.unseen.drain(..).collect();
        for (k, v) in &other.unseen {
            *map.entry(k.clone()).or_default() += v;
        }
        self.unseen = map.into_iter().collect();
        self.unseen.sort();
    }

    /// Aligned (reference, current) count vectors over the union of categories: the reference
    /// categories, then one column per unseen category (reference count 0).
    pub fn aligned(&self, reference: &[u64]) -> (Vec<f64>, Vec<f64>) {
        let mut r: Vec<f64> = reference.iter().map(|&c| c as f64).collect();
        let mut c: Vec<f64> = self.counts.iter().map(|&c| c as f64).collect();
        for (_, v) in &self.unseen {
            r.push(0.0);
            c.push(*v as f64);
        }
        (r, c)
    }
}

/// Index from category name to its position in the reference's category list.
#[derive(Debug, Clone, Default)]
pub struct CategoryIndex {
    index: HashMap<String, usize>,
}

impl CategoryIndex {
    /// Index of `categories` (positions as given).
    pub fn new(categories: &[String]) -> Self {
        Self {
            index: categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i))
                .collect(),
        }
    }

    /// Number of categories indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no category is indexed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Position of a category, if the reference has it.
    #[inline]
    pub fn get(&self, category: &str) -> Option<usize> {
        self.index.get(category).copied()
    }

    /// Counts the non-null values of a sample; returns the table and the null count.
    pub fn count<'a, I>(&self, values: I) -> (CategoryCounts, u64)
    where
        I: IntoIterator<Item = Option<&'a str>>,
    {
        let mut counts = vec![0u64; self.index.len()];
        let mut unseen: HashMap<&'a str, u64> = HashMap::new();
        let mut nulls = 0u64;
        for v in values {
            match v {
                None => nulls += 1,
                Some(s) => match self.index.get(s) {
                    Some(&i) => counts[i] += 1,
                    None => *unseen.entry(s).or_default() += 1,
                },
            }
        }
        let mut unseen: Vec<(String, u64)> = unseen
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        unseen.sort();
        (CategoryCounts { counts, unseen }, nulls)
    }
}
