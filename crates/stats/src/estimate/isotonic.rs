//! Isotonic regression (pool adjacent violators), as scikit-learn's
//! `IsotonicRegression(increasing=True, out_of_bounds="clip")` fits and predicts it.
//!
//! The steps follow scikit-learn so that the fitted function is the same one, not merely another
//! isotonic fit: rows ordered by (x, y); equal x (closer than `f64` resolution, 1e-15) pooled
//! into their weighted mean; PAV over the pooled points; prediction by linear interpolation
//! between the pooled points (SciPy's `interp1d` arithmetic), clipped to the fitted x range.
//! Checked against scikit-learn on fixtures (`scripts/fixtures/gen_cbpe_fixtures.py`).

use serde::{Deserialize, Serialize};

/// `np.finfo(np.float64).resolution`: scikit-learn pools x values closer than this.
const RESOLUTION: f64 = 1e-15;

/// A fitted non-decreasing step-and-ramp function: the pooled x values and their fitted y.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Isotonic {
    /// Fits `y` (non-decreasing in `x`, unit weights). `None` when there is no row or a value is
    /// not finite.
    pub fn fit(x: &[f64], y: &[f64]) -> Option<Isotonic> {
        if x.is_empty() || x.len() != y.len() || x.iter().chain(y).any(|v| !v.is_finite()) {
            return None;
        }
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
        // Pool equal x into their mean (scikit-learn's `_make_unique`).
        let (mut ux, mut uy, mut uw) = (Vec::new(), Vec::new(), Vec::new());
        let (mut cx, mut sy, mut sw) = (x[order[0]], 0.0, 0.0);
        for &i in &order {
            if x[i] - cx >= RESOLUTION {
                ux.push(cx);
                uy.push(sy / sw);
                uw.push(sw);
                (cx, sy, sw) = (x[i], y[i], 1.0);
            } else {
                sy += y[i];
                sw += 1.0;
            }
        }
        ux.push(cx);
        uy.push(sy / sw);
        uw.push(sw);
        let fitted = pav(&uy, &uw);
        // Keep the first and last point and every point whose y differs from a neighbour's:
        // the interpolation is the same, the table smaller (scikit-learn's `trim_duplicates`).
        let n = fitted.len();
        let keep = |i: usize| {
            i == 0 || i + 1 == n || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1]
        };
        let (x, y) = (0..n)
            .filter(|&i| keep(i))
            .map(|i| (ux[i], fitted[i]))
            .unzip();
        Some(Isotonic { x, y })
    }

    /// The fitted value at `t`: outside the fitted range, the value at its nearest end.
    pub fn predict(&self, t: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        if x.len() == 1 {
            return y[0];
        }
        let t = t.clamp(x[0], x[x.len() - 1]);
        // SciPy's interp1d: the first index with x >= t, kept in 1..len-1, then
        // slope * (t - x_lo) + y_lo, in that order of operations.
        let hi = x.partition_point(|&v| v < t).clamp(1, x.len() - 1);
        let lo = hi - 1;
        let slope = (y[hi] - y[lo]) / (x[hi] - x[lo]);
        slope * (t - x[lo]) + y[lo]
    }

    /// The pooled x values kept (scikit-learn's `X_thresholds_`).
    pub fn x_thresholds(&self) -> &[f64] {
        &self.x
    }

    /// Their fitted values (scikit-learn's `y_thresholds_`).
    pub fn y_thresholds(&self) -> &[f64] {
        &self.y
    }
}

/// Weighted pool-adjacent-violators: the non-decreasing sequence closest to `y` in weighted
/// least squares.
fn pav(y: &[f64], w: &[f64]) -> Vec<f64> {
    // Blocks as (weighted sum, weight, length); a new point merges backwards while it violates.
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(y.len());
    for (&v, &wt) in y.iter().zip(w) {
        let (mut s, mut ww, mut len) = (v * wt, wt, 1);
        while let Some(&(ps, pw, pl)) = blocks.last() {
            if ps / pw < s / ww {
                break;
            }
            blocks.pop();
            s += ps;
            ww += pw;
            len += pl;
        }
        blocks.push((s, ww, len));
    }
    let mut out = Vec::with_capacity(y.len());
    for (s, ww, len) in blocks {
        out.extend(std::iter::repeat_n(s / ww, len));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn's own docstring example of `isotonic_regression`.
    #[test]
    fn pav_pools_the_violators_like_scikit_learn() {
        let y = [5.0, 3.0, 1.0, 2.0, 8.0, 10.0, 7.0, 9.0, 6.0, 4.0];
        let fitted = pav(&y, &[1.0; 10]);
        for v in &fitted[..4] {
            assert!((v - 2.75).abs() < 1e-12);
        }
        for v in &fitted[4..] {
            assert!((v - 44.0 / 6.0).abs() < 1e-12);
        }
    }

    #[test]
    fn predictions_are_clipped_interpolated_and_pool_equal_x() {
        let f = Isotonic::fit(&[0.1, 0.1, 0.5, 0.9], &[0.0, 1.0, 0.0, 1.0]).unwrap();
        // x = 0.1 pools to 0.5 (weight 2), then 0.0 at 0.5 violates and pools: both 1/3.
        assert!((f.predict(0.0) - 1.0 / 3.0).abs() < 1e-12);
        assert!((f.predict(0.3) - 1.0 / 3.0).abs() < 1e-12);
        assert!((f.predict(0.7) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(f.predict(2.0), 1.0);
        assert!(Isotonic::fit(&[], &[]).is_none());
        assert!(Isotonic::fit(&[f64::NAN], &[1.0]).is_none());
        assert_eq!(Isotonic::fit(&[0.3], &[1.0]).unwrap().predict(0.9), 1.0);
    }
}
