//! Tests and distances on binned counts: chi-squared contingency, PSI, Jensen-Shannon,
//! Hellinger, KL. Inputs are counts over the same bins (reference bins for numeric features,
//! categories for categorical ones), so they are additive: counts of two windows add up to the
//! counts of their union and every function here gives the union's value on the sums.
//!
//! Every function returns `None` when either side has no counts (nothing to compare).

use super::special::chi2_sf;
use serde::{Deserialize, Serialize};

/// Floor applied to bin proportions by [`psi`] and [`kl_divergence`], the convention of the
/// peers' benchmark harness (and Evidently's): an empty bin counts as 1e-4, so one empty bin
/// gives a large but finite value.
pub const PROPORTION_FLOOR: f64 = 1e-4;

/// Result of a chi-squared test of independence on the 2 x k table (reference, current).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chi2Result {
    /// Pearson's statistic (with Yates' continuity correction when `dof == 1`).
    pub statistic: f64,
    /// p-value from the chi-squared distribution with `dof` degrees of freedom.
    pub p_value: f64,
    /// Degrees of freedom: (number of non-empty columns) - 1.
    pub dof: u64,
}

fn totals(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let (sa, sb) = (a.iter().sum::<f64>(), b.iter().sum::<f64>());
    (sa > 0.0 && sb > 0.0 && a.len() == b.len()).then_some((sa, sb))
}

/// `scipy.stats.chi2_contingency(np.vstack([reference, current]))` with its defaults
/// (`correction=True`: Yates' correction when dof == 1). Columns empty on both sides are
/// dropped first (SciPy would raise on them); a table with a single non-empty column gives
/// statistic 0, p-value 1, dof 0, as SciPy does.
pub fn chi2_contingency(reference: &[f64], current: &[f64]) -> Option<Chi2Result> {
    let (sr, sc) = totals(reference, current)?;
    let total = sr + sc;
    let cols: Vec<(f64, f64)> = reference
        .iter()
        .zip(current)
        .filter(|(r, c)| **r + **c > 0.0)
        .map(|(r, c)| (*r, *c))
        .collect();
    let dof = cols.len() as u64 - 1;
    if dof == 0 {
        return Some(Chi2Result {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        });
    }
    let mut stat = 0.0;
    for (r, c) in cols {
        let col = r + c;
        for (obs, row) in [(r, sr), (c, sc)] {
            let exp = row * col / total;
            let mut o = obs;
            if dof == 1 {
                let diff = exp - o;
                o += diff.signum() * diff.abs().min(0.5);
            }
            stat += (o - exp) * (o - exp) / exp;
        }
    }
    Some(Chi2Result {
        statistic: stat,
        p_value: chi2_sf(stat, dof as f64),
        dof,
    })
}

fn proportions(counts: &[f64], total: f64) -> impl Iterator<Item = f64> + '_ {
    counts.iter().map(move |c| c / total)
}

/// Population stability index, the peers' harness convention: p = reference proportions,
/// q = current proportions, both floored at [`PROPORTION_FLOOR`] (not renormalised),
/// PSI = sum (q - p) ln(q / p). Always >= 0; 0 for identical proportions.
pub fn psi(reference: &[f64], current: &[f64]) -> Option<f64> {
    let (sr, sc) = totals(reference, current)?;
    Some(
        proportions(reference, sr)
            .zip(proportions(current, sc))
            .map(|(p, q)| {
                let (p, q) = (p.max(PROPORTION_FLOOR), q.max(PROPORTION_FLOOR));
                (q - p) * (q / p).ln()
            })
            .sum::<f64>()
            .max(0.0),
    )
}

/// KL divergence KL(reference || current) in nats, as
/// `scipy.stats.entropy(clip(p, 1e-4), clip(q, 1e-4))` (Evidently's orientation): proportions
/// floored at [`PROPORTION_FLOOR`], then renormalised by `entropy`.
pub fn kl_divergence(reference: &[f64], current: &[f64]) -> Option<f64> {
    let (sr, sc) = totals(reference, current)?;
    let p: Vec<f64> = proportions(reference, sr)
        .map(|p| p.max(PROPORTION_FLOOR))
        .collect();
    let q: Vec<f64> = proportions(current, sc)
        .map(|q| q.max(PROPORTION_FLOOR))
        .collect();
    let (zp, zq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
    Some(
        p.iter()
            .zip(&q)
            .map(|(p, q)| rel_entr(p / zp, q / zq))
            .sum::<f64>()
            .max(0.0),
    )
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Jensen-Shannon distance in base 2, `scipy.spatial.distance.jensenshannon(p, q, base=2)`:
/// no flooring (empty bins are fine), symmetric, in [0, 1].
pub fn jensen_shannon(reference: &[f64], current: &[f64]) -> Option<f64> {
    let (sr, sc) = totals(reference, current)?;
    let mut js = 0.0;
    for (p, q) in proportions(reference, sr).zip(proportions(current, sc)) {
        let m = (p + q) / 2.0;
        js += rel_entr(p, m) + rel_entr(q, m);
    }
    js /= std::f64::consts::LN_2;
    Some((js / 2.0).max(0.0).sqrt().min(1.0))
}

/// Hellinger distance, sqrt(sum (sqrt p - sqrt q)^2 / 2): symmetric, in [0, 1].
pub fn hellinger(reference: &[f64], current: &[f64]) -> Option<f64> {
    let (sr, sc) = totals(reference, current)?;
    let s: f64 = proportions(reference, sr)
        .zip(proportions(current, sc))
        .map(|(p, q)| (p.sqrt() - q.sqrt()).powi(2))
        .sum();
    Some((s / 2.0).sqrt().min(1.0))
}

/// KS statistic on binned counts: the largest |F_ref - F_cur| at the bin edges. A lower bound
/// of the raw-sample statistic (exact when no two values share a bin); use it on merged
/// window aggregates, not as a replacement for the raw test.
pub fn ks_binned(reference: &[f64], current: &[f64]) -> Option<f64> {
    let (sr, sc) = totals(reference, current)?;
    let (mut fr, mut fc, mut d) = (0.0, 0.0, 0.0f64);
    for (r, c) in reference.iter().zip(current) {
        fr += r;
        fc += c;
        d = d.max((fr / sr - fc / sc).abs());
    }
    Some(d.min(1.0))
}
