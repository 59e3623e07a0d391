//! KSWIN, Kolmogorov-Smirnov windowing (Raab et al., 2020), as River's `drift.KSWIN`.

use super::Signal;
use crate::drift::ks_2samp;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Keeps the last `window_size` values; once full, compares the newest `stat_size` with
/// `stat_size` values drawn at random from the older part by the two-sample KS test (SciPy's
/// `ks_2samp`, exact at these sizes); a change when p <= `alpha` and the statistic exceeds 0.1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kswin {
    pub alpha: f64,
    pub window_size: usize,
    pub stat_size: usize,
    pub seed: u64,
    window: VecDeque<f64>,
    /// Samples drawn since the last start: the generator is seeded from (seed, draws), so the
    /// state stays a few numbers and a restored detector draws what the original would have.
    draws: u64,
    drift: bool,
}

impl Default for Kswin {
    fn default() -> Self {
        Kswin::new(0.005, 100, 30, 42)
    }
}

impl Kswin {
    /// `stat_size` must be smaller than `window_size` (River refuses the other way round).
    pub fn new(alpha: f64, window_size: usize, stat_size: usize, seed: u64) -> Kswin {
        assert!(
            stat_size < window_size,
            "KSWIN: stat_size must be smaller than window_size"
        );
        Kswin {
            alpha,
            window_size,
            stat_size,
            seed,
            window: VecDeque::with_capacity(window_size),
            draws: 0,
            drift: false,
        }
    }

    pub fn update(&mut self, x: f64) -> Signal {
        let (seed, draws) = (self.seed, self.draws);
        self.update_sampling(x, |older, k| {
            let mut rng = StdRng::seed_from_u64(seed ^ draws.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            rand::seq::index::sample(&mut rng, older, k).into_vec()
        })
    }

    /// [`Kswin::update`] with the indices of the older values to compare given by `sample`
    /// (`sample(older, k)`: `k` distinct indices below `older`), called once per full window.
    /// The test replays River's own draws through it.
    pub fn update_sampling(
        &mut self,
        x: f64,
        sample: impl FnOnce(usize, usize) -> Vec<usize>,
    ) -> Signal {
        if self.drift {
            // River starts afresh after a detection, its window included.
            *self = Kswin::new(self.alpha, self.window_size, self.stat_size, self.seed);
        }
        if self.window.len() == self.window_size {
            self.window.pop_front();
        }
        self.window.push_back(x);
        self.drift = false;
        if self.window.len() >= self.window_size {
            let older = self.window_size - self.stat_size;
            let drawn: Vec<f64> = sample(older, self.stat_size)
                .into_iter()
                .map(|i| self.window[i])
                .collect();
            self.draws += 1;
            let newest: Vec<f64> = self.window.iter().skip(older).copied().collect();
            if let Some(ks) = ks_2samp(&drawn, &newest) {
                self.drift = ks.p_value <= self.alpha && ks.statistic > 0.1;
            }
        }
        Signal {
            drift: self.drift,
            warning: false,
        }
    }
}
