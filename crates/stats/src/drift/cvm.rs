//! Two-sample Cramér-von Mises test, `scipy.stats.cramervonmises_2samp(method="auto")`:
//! exact p-value when both samples have at most 20 values, otherwise Anderson's normalised
//! statistic against the limiting distribution (`_cdf_cvm_inf`).

use super::special::cdf_cvm_inf;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Result of the two-sample Cramér-von Mises test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CvmResult {
    /// SciPy's statistic T (Anderson 1962, eq. 9).
    pub statistic: f64,
    /// p-value in [0, 1].
    pub p_value: f64,
}

/// Largest sample size for which SciPy's `method="auto"` computes the exact p-value.
pub const CVM_MAX_EXACT_N: usize = 20;

/// Cramér-von Mises two-sample test on raw samples; non-finite values are skipped.
/// `None` unless both samples have at least 2 finite values (SciPy's minimum).
pub fn cramer_von_mises(reference: &[f64], current: &[f64]) -> Option<CvmResult> {
    let mut a: Vec<f64> = reference
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let mut b: Vec<f64> = current.iter().copied().filter(|x| x.is_finite()).collect();
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let (nx, ny) = (a.len(), b.len());
    // Midranks in the pooled sample, walking tie groups of both samples together.
    let (mut i, mut j) = (0usize, 0usize);
    let (mut sx, mut sy) = (0.0f64, 0.0f64);
    while i < nx || j < ny {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        let (i0, j0) = (i, j);
        while i < nx && a[i] == x {
            i += 1;
        }
        while j < ny && b[j] == x {
            j += 1;
        }
        let start = (i0 + j0) as f64; // pooled positions start+1 ..= end
        let end = (i + j) as f64;
        let rank = (start + 1.0 + end) / 2.0;
        for k in i0..i {
            let d = rank - (k + 1) as f64;
            sx += d * d;
        }
        for k in j0..j {
            let d = rank - (k + 1) as f64;
            sy += d * d;
        }
    }
    let (nxf, nyf) = (nx as f64, ny as f64);
    let u = nxf * sx + nyf * sy;
    let k = nxf * nyf;
    let n = nxf + nyf;
    let t = u / (k * n) - (4.0 * k - 1.0) / (6.0 * n);
    let p = if nx.max(ny) <= CVM_MAX_EXACT_N {
        pval_exact(u, nx as u64, ny as u64)
    } else {
        cvm_p_asymptotic(t, nx as u64, ny as u64)
    };
    Some(CvmResult {
        statistic: t,
        p_value: p.clamp(0.0, 1.0),
    })
}

/// p-value of SciPy's statistic T for samples of `nx` and `ny` values: Anderson's normalised
/// statistic against the limiting distribution (SciPy's `method="asymptotic"`).
pub(crate) fn cvm_p_asymptotic(t: f64, nx: u64, ny: u64) -> f64 {
    let (nxf, nyf) = (nx as f64, ny as f64);
    let k = nxf * nyf;
    let n = nxf + nyf;
    let et = (1.0 + 1.0 / n) / 6.0;
    let vt = (n + 1.0) * (4.0 * k * n - 3.0 * (nxf * nxf + nyf * nyf) - 2.0 * k)
        / (45.0 * n * n * 4.0 * k);
    let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
    if tn >= 0.003 {
        (1.0 - cdf_cvm_inf(tn)).max(0.0)
    } else {
        1.0
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `_pval_cvm_2samp_exact(u, m, n)`: Xiao, Gordon & Yakovlev's frequency-table recursion.
fn pval_exact(s: f64, m: u64, n: u64) -> f64 {
    let lcm = m / gcd(m, n) * n;
    let a = (lcm / m) as i64;
    let b = (lcm / n) as i64;
    let mn = (m * n) as f64;
    let zeta = ((lcm * lcm) as f64 * (m + n) as f64 * (6.0 * s - mn * (4.0 * mn - 1.0))
        / (6.0 * mn * mn))
        .floor();
    let mut combinations = 1u128;
    for i in 0..m as u128 {
        combinations = combinations * (m as u128 + n as u128 - i) / (i + 1);
    }
    // gs[v]: value -> number of lattice paths, for the current row u.
    let mut gs: Vec<BTreeMap<i64, u128>> = vec![BTreeMap::new(); m as usize + 1];
    gs[0].insert(0, 1);
    for u in 0..=n as i64 {
        let mut next: Vec<BTreeMap<i64, u128>> = Vec::with_capacity(m as usize + 1);
        let mut tmp: BTreeMap<i64, u128> = BTreeMap::new();
        for (v, g) in gs.iter().enumerate() {
            for (k, c) in g {
                *tmp.entry(*k).or_default() += c;
            }
            let res = (a * v as i64 - b * u).pow(2);
            tmp = tmp.into_iter().map(|(k, c)| (k + res, c)).collect();
            next.push(tmp.clone());
        }
        gs = next;
    }
    let hits: u128 = gs[m as usize]
        .iter()
        .filter(|(k, _)| **k as f64 >= zeta)
        .map(|(_, c)| *c)
        .sum();
    hits as f64 / combinations as f64
}
