//! EDDM, the Early Drift Detection Method (Baena-García et al., 2006), as River's
//! `drift.binary.EDDM`.

use super::{RunningVariance, Signal};
use serde::{Deserialize, Serialize};

/// Watches the distance between consecutive mistakes: its mean plus two standard deviations,
/// p' + 2s', against the largest value seen. A change when the ratio falls below `beta`
/// (a warning below `alpha`), once more than `warm_start` mistakes were seen. Slow-growing
/// drift shortens the distances before it raises the error rate, hence "early".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eddm {
    pub warm_start: u64,
    pub alpha: f64,
    pub beta: f64,
    distances: RunningVariance,
    n: u64,
    last_error: u64,
    errors: u64,
    p2s_max: f64,
    last: Signal,
}

impl Default for Eddm {
    fn default() -> Self {
        Eddm::new(30, 0.95, 0.9)
    }
}

impl Eddm {
    /// `alpha` must be at least `beta` (River refuses the other way round too).
    pub fn new(warm_start: u64, alpha: f64, beta: f64) -> Eddm {
        Eddm {
            warm_start,
            alpha,
            beta,
            distances: RunningVariance::default(),
            n: 0,
            last_error: 0,
            errors: 0,
            p2s_max: -1.0,
            last: Signal::default(),
        }
    }

    /// `x` is 1 for a mistake, 0 for a right answer (any other value counts as right, as in
    /// River).
    pub fn update(&mut self, x: f64) -> Signal {
        if self.last.drift {
            *self = Eddm::new(self.warm_start, self.alpha, self.beta);
        }
        self.n += 1;
        if x == 1.0 {
            self.errors += 1;
            self.distances.update((self.n - self.last_error) as f64);
            if self.n > self.warm_start {
                let p2s = self.distances.mean.mean + 2.0 * self.distances.variance().sqrt();
                if p2s > self.p2s_max {
                    self.p2s_max = p2s;
                } else if self.errors > self.warm_start {
                    let level = p2s / self.p2s_max;
                    if level < self.beta {
                        self.last.drift = true;
                    } else {
                        self.last.warning = level < self.alpha;
                    }
                }
            }
            self.last_error = self.n;
        }
        self.last
    }
}
