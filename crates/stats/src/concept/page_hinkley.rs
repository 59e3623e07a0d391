//! The Page-Hinkley test (Page, 1954), as River's `drift.PageHinkley`.

use super::{RunningMean, Signal};
use serde::{Deserialize, Serialize};

/// Cumulative deviations of the values from their running mean, faded by `alpha` and less a
/// tolerated `delta`; a change when the cumulative sum has risen (or fallen) by more than
/// `threshold` from its extreme, once `min_instances` values were seen. Both directions by
/// default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    pub min_instances: u64,
    pub delta: f64,
    pub threshold: f64,
    pub alpha: f64,
    pub direction: Direction,
    mean: RunningMean,
    sum_increase: f64,
    sum_decrease: f64,
    /// Lowest cumulative increase so far (`None` before the first value).
    min_increase: Option<f64>,
    max_decrease: f64,
    drift: bool,
}

/// Which change Page-Hinkley looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Both,
}

impl Default for PageHinkley {
    fn default() -> Self {
        PageHinkley::new(30, 0.005, 50.0, 1.0 - 0.0001, Direction::Both)
    }
}

impl PageHinkley {
    pub fn new(
        min_instances: u64,
        delta: f64,
        threshold: f64,
        alpha: f64,
        direction: Direction,
    ) -> PageHinkley {
        PageHinkley {
            min_instances,
            delta,
            threshold,
            alpha,
            direction,
            mean: RunningMean::default(),
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: None,
            max_decrease: -1.0,
            drift: false,
        }
    }

    pub fn update(&mut self, x: f64) -> Signal {
        if self.drift {
            *self = PageHinkley::new(
                self.min_instances,
                self.delta,
                self.threshold,
                self.alpha,
                self.direction,
            );
        }
        self.mean.update(x);
        let dev = x - self.mean.mean;
        self.sum_increase = self.alpha * self.sum_increase + dev - self.delta;
        self.sum_decrease = self.alpha * self.sum_decrease + dev + self.delta;
        let min_increase = self
            .min_increase
            .map_or(self.sum_increase, |m| m.min(self.sum_increase));
        self.min_increase = Some(min_increase);
        self.max_decrease = self.max_decrease.max(self.sum_decrease);
        if self.mean.n >= self.min_instances as f64 {
            let up = self.sum_increase - min_increase > self.threshold;
            let down = self.max_decrease - self.sum_decrease > self.threshold;
            self.drift = match self.direction {
                Direction::Up => up,
                Direction::Down => down,
                Direction::Both => up || down,
            };
        }
        Signal {
            drift: self.drift,
            warning: false,
        }
    }
}
