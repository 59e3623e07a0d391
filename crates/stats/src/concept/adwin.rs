//! ADWIN, adaptive windowing (Bifet and Gavaldà, 2007), as River's `drift.ADWIN`.

use super::Signal;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Keeps a window of recent values in an exponential histogram (rows of buckets of 1, 2, 4...
/// values, at most `max_buckets` per row before the two oldest merge), so memory is
/// O(log width). Every `clock` values, once past `grace_period`, it tries each split of the
/// window into an older and a newer part of at least `min_window_length` values; when their
/// means differ by more than the bound for `delta`, the oldest bucket is dropped and the test
/// runs again. A value at which the window shrank is a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adwin {
    pub delta: f64,
    pub clock: u64,
    pub max_buckets: usize,
    pub min_window_length: f64,
    pub grace_period: f64,
    /// `rows[i]` holds buckets of 2^i values, oldest first; older rows hold older values.
    rows: Vec<Row>,
    total: f64,
    /// Sum of squared deviations from the mean over the window.
    variance: f64,
    width: f64,
    tick: u64,
    detections: u64,
    /// The last value was a change: River starts afresh at the next one.
    drift: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Row {
    /// (sum, sum of squared deviations) per bucket, oldest first.
    buckets: VecDeque<(f64, f64)>,
}

impl Default for Adwin {
    fn default() -> Self {
        Adwin::new(0.002, 32, 5, 5, 10)
    }
}

impl Adwin {
    pub fn new(
        delta: f64,
        clock: u64,
        max_buckets: usize,
        min_window_length: u32,
        grace_period: u32,
    ) -> Adwin {
        Adwin {
            delta,
            clock: clock.max(1),
            max_buckets,
            min_window_length: f64::from(min_window_length),
            grace_period: f64::from(grace_period),
            rows: vec![Row::default()],
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
            detections: 0,
            drift: false,
        }
    }

    /// Values in the window now.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// The window's mean.
    pub fn mean(&self) -> f64 {
        if self.width > 0.0 {
            self.total / self.width
        } else {
            0.0
        }
    }

    /// Changes flagged so far.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    pub fn update(&mut self, x: f64) -> Signal {
        if self.drift {
            self.rows = vec![Row::default()];
            (self.total, self.variance, self.width, self.tick) = (0.0, 0.0, 0.0, 0);
        }
        self.insert(x);
        self.drift = self.shrink_on_change();
        if self.drift {
            self.detections += 1;
        }
        Signal {
            drift: self.drift,
            warning: false,
        }
    }

    fn insert(&mut self, x: f64) {
        self.rows[0].buckets.push_back((x, 0.0));
        // The window's sum of squared deviations grows as in Welford's update.
        self.width += 1.0;
        if self.width > 1.0 {
            let d = x - self.total / (self.width - 1.0);
            self.variance += (self.width - 1.0) * d * d / self.width;
        }
        self.total += x;
        self.merge_full_rows();
    }

    /// A row with `max_buckets + 1` buckets merges its two oldest into one of the next row.
    fn merge_full_rows(&mut self) {
        let mut i = 0;
        while self.rows[i].buckets.len() == self.max_buckets + 1 {
            let size = (1u64 << i) as f64;
            let (t0, v0) = self.rows[i].buckets.pop_front().unwrap_or_default();
            let (t1, v1) = self.rows[i].buckets.pop_front().unwrap_or_default();
            let (m0, m1) = (t0 / size, t1 / size);
            let merged = (t0 + t1, v0 + v1 + size * 0.5 * (m0 - m1) * (m0 - m1));
            if i + 1 == self.rows.len() {
                self.rows.push(Row::default());
            }
            self.rows[i + 1].buckets.push_back(merged);
            i += 1;
        }
    }

    /// Drops the oldest bucket.
    fn drop_oldest(&mut self) {
        let last = self.rows.len() - 1;
        let size = (1u64 << last) as f64;
        let Some((t, v)) = self.rows[last].buckets.pop_front() else {
            return;
        };
        self.width -= size;
        self.total -= t;
        let mean = t / size;
        let rest = self.total / self.width;
        self.variance -=
            v + size * self.width * (mean - rest) * (mean - rest) / (size + self.width);
        if self.rows[last].buckets.is_empty() && last > 0 {
            self.rows.pop();
        }
    }

    /// Runs the split test every `clock` values; true when the window shrank.
    fn shrink_on_change(&mut self) -> bool {
        self.tick += 1;
        if !self.tick.is_multiple_of(self.clock) || self.width <= self.grace_period {
            return false;
        }
        let mut changed = false;
        while self.split_differs() {
            changed = true;
            if self.width <= 0.0 {
                break;
            }
            self.drop_oldest();
        }
        changed
    }

    /// Whether some split of the window into older and newer values, walked from the oldest
    /// bucket, has means further apart than the bound.
    fn split_differs(&self) -> bool {
        let (mut n0, mut n1) = (0.0, self.width);
        let (mut u0, mut u1) = (0.0, self.total);
        for (i, row) in self.rows.iter().enumerate().rev() {
            let size = (1u64 << i) as f64;
            for (k, &(t, _)) in row.buckets.iter().enumerate() {
                n0 += size;
                n1 -= size;
                u0 += t;
                u1 -= t;
                if i == 0 && k + 1 == row.buckets.len() {
                    // The newest bucket: no newer part left to compare with.
                    return false;
                }
                if n1 >= self.min_window_length
                    && n0 >= self.min_window_length
                    && self.cut(n0, n1, u0 / n0 - u1 / n1)
                {
                    return true;
                }
            }
        }
        false
    }

    /// The bound of Bifet and Gavaldà's ADWIN2 with the window's variance (River's form).
    fn cut(&self, n0: f64, n1: f64, mean_difference: f64) -> bool {
        let delta_prime = (2.0 * self.width.ln() / self.delta).ln();
        let m =
            1.0 / (n0 - self.min_window_length + 1.0) + 1.0 / (n1 - self.min_window_length + 1.0);
        let epsilon = (2.0 * m * (self.variance / self.width) * delta_prime).sqrt()
            + 2.0 / 3.0 * delta_prime * m;
        mean_difference.abs() > epsilon
    }
}
