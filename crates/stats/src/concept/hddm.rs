//! HDDM_A, drift detection with Hoeffding's bound on moving averages (Frías-Blanco et al.,
//! 2015), as River's `drift.binary.HDDM_A` (one-sided: it watches for a rise of the error
//! rate).

use super::{RunningMean, Signal};
use serde::{Deserialize, Serialize};

/// Keeps the mean of the whole stream and a cut point (the prefix whose mean plus its
/// Hoeffding bound was lowest); a change when the overall mean exceeds the cut point's by more
/// than Hoeffding's bound for the two sample sizes at `drift_confidence` (a warning at
/// `warning_confidence`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HddmA {
    pub drift_confidence: f64,
    pub warning_confidence: f64,
    pub two_sided: bool,
    all: RunningMean,
    at_min: RunningMean,
    at_max: RunningMean,
    last: Signal,
}

impl Default for HddmA {
    fn default() -> Self {
        HddmA::new(0.001, 0.005, false)
    }
}

impl HddmA {
    pub fn new(drift_confidence: f64, warning_confidence: f64, two_sided: bool) -> HddmA {
        HddmA {
            drift_confidence,
            warning_confidence,
            two_sided,
            all: RunningMean::default(),
            at_min: RunningMean::default(),
            at_max: RunningMean::default(),
            last: Signal::default(),
        }
    }

    fn bound(&self, n: f64) -> f64 {
        (1.0 / (2.0 * n) * (1.0 / self.drift_confidence).ln()).sqrt()
    }

    /// Whether `difference` (between the whole stream's mean and a cut point's) exceeds
    /// Hoeffding's bound at `confidence` for the cut point's and the stream's sizes.
    fn beyond_bound(
        cut: &RunningMean,
        all: &RunningMean,
        difference: f64,
        confidence: f64,
    ) -> bool {
        if cut.n == all.n {
            return false;
        }
        let m = (all.n - cut.n) / cut.n * (1.0 / all.n);
        let eps = (m / 2.0 * (2.0 / confidence).ln()).sqrt();
        difference >= eps
    }

    /// `x` is 1 for a mistake, 0 for a right answer.
    pub fn update(&mut self, x: f64) -> Signal {
        if self.last.drift {
            *self = HddmA::new(
                self.drift_confidence,
                self.warning_confidence,
                self.two_sided,
            );
        }
        self.all.update(x);
        if self.at_min.n == 0.0 {
            self.at_min = self.all;
        }
        if self.at_max.n == 0.0 {
            self.at_max = self.all;
        }
        let eps_all = self.bound(self.all.n);
        if self.at_min.mean + self.bound(self.at_min.n) >= self.all.mean + eps_all {
            self.at_min = self.all;
        }
        if self.at_max.mean - self.bound(self.at_max.n) <= self.all.mean - eps_all {
            self.at_max = self.all;
        }
        let rise = self.all.mean - self.at_min.mean;
        let rose = |confidence| Self::beyond_bound(&self.at_min, &self.all, rise, confidence);
        self.last = if rose(self.drift_confidence) {
            Signal {
                drift: true,
                warning: false,
            }
        } else {
            Signal {
                drift: false,
                warning: rose(self.warning_confidence),
            }
        };
        if self.two_sided {
            let fall = self.at_max.mean - self.all.mean;
            let fell = |confidence| Self::beyond_bound(&self.at_max, &self.all, fall, confidence);
            if fell(self.drift_confidence) {
                self.last.drift = true;
            } else if fell(self.warning_confidence) {
                self.last.warning = true;
            }
        }
        self.last
    }
}
