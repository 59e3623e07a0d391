//! DDM, the Drift Detection Method (Gama et al., 2004), as River's `drift.binary.DDM`.

use super::{RunningMean, Signal};
use serde::{Deserialize, Serialize};

/// Watches the error rate p and its binomial standard deviation s = sqrt(p(1-p)/n): once past
/// `warm_start` values, a change when p + s exceeds the lowest p + s seen by
/// `drift_threshold` times that point's s (a warning at `warning_threshold`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ddm {
    pub warm_start: u64,
    pub warning_threshold: f64,
    pub drift_threshold: f64,
    errors: RunningMean,
    /// (p, s) where p + s was lowest since the warm start; `None` before it.
    lowest: Option<(f64, f64)>,
    last: Signal,
}

impl Default for Ddm {
    fn default() -> Self {
        Ddm::new(30, 2.0, 3.0)
    }
}

impl Ddm {
    pub fn new(warm_start: u64, warning_threshold: f64, drift_threshold: f64) -> Ddm {
        Ddm {
            warm_start,
            warning_threshold,
            drift_threshold,
            errors: RunningMean::default(),
            lowest: None,
            last: Signal::default(),
        }
    }

    fn restart(&mut self) {
        *self = Ddm::new(
            self.warm_start,
            self.warning_threshold,
            self.drift_threshold,
        );
    }

    /// `x` is 1 for a mistake, 0 for a right answer.
    pub fn update(&mut self, x: f64) -> Signal {
        if self.last.drift {
            self.restart();
        }
        self.errors.update(x);
        let p = self.errors.mean;
        let n = self.errors.n;
        let s = (p * (1.0 - p) / n).sqrt();
        if n > self.warm_start as f64 {
            let (p_min, s_min) = match self.lowest {
                Some((p_min, s_min)) if p + s > p_min + s_min => (p_min, s_min),
                _ => (p, s),
            };
            self.lowest = Some((p_min, s_min));
            self.last.warning = p + s > p_min + self.warning_threshold * s_min;
            if p + s > p_min + self.drift_threshold * s_min {
                self.last = Signal {
                    drift: true,
                    warning: false,
                };
            }
        }
        self.last
    }
}
