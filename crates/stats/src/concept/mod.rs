//! Concept-drift detectors over a model's error stream, in event-time order.
//!
//! Per-feature drift tests say the inputs moved; these say the relation between inputs and
//! outcome moved: they watch the stream of the model's errors as labels arrive (0/1 for a
//! classifier's mistakes, the absolute error for a regressor) and flag the point where its
//! level changes. Each detector keeps O(1) or O(log n) state, takes one value at a time and
//! serialises, so a caller can persist it and go on where it stopped.
//!
//! Definitions and default parameters are River 0.26's (`river.drift`), checked against it on
//! the same streams by `tests/concept_river.rs` (fixtures from
//! `scripts/fixtures/gen_concept_fixtures.py`): the positions of detected changes are equal.
//! Where River's own behaviour is surprising we keep it and say so, so that a user comparing
//! with River sees the same points:
//! - after a detection, every detector starts afresh at the next value (River resets them; ADWIN
//!   too, although its method would let it keep the newer part of its window);
//! - KSWIN compares a random sample of the older part of its window with the newest values; its
//!   sample comes from a seeded generator here (River: Python's `random.Random(seed)`), so
//!   the two agree when given the same samples, which the test does.

mod adwin;
mod ddm;
mod eddm;
mod hddm;
mod kswin;
mod page_hinkley;

pub use adwin::Adwin;
pub use ddm::Ddm;
pub use eddm::Eddm;
pub use hddm::HddmA;
pub use kswin::Kswin;
pub use page_hinkley::PageHinkley;

use serde::{Deserialize, Serialize};

/// What a detector says after one value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// The stream's level changed at this value.
    pub drift: bool,
    /// Close to a change (DDM, EDDM, HDDM_A only): a warning zone, no decision yet.
    pub warning: bool,
}

/// The detectors, by the names rules and reports use (`concept:<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    Adwin,
    Ddm,
    Eddm,
    HddmA,
    PageHinkley,
    Kswin,
}

impl DetectorKind {
    pub const ALL: [DetectorKind; 6] = [
        DetectorKind::Adwin,
        DetectorKind::Ddm,
        DetectorKind::Eddm,
        DetectorKind::HddmA,
        DetectorKind::PageHinkley,
        DetectorKind::Kswin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DetectorKind::Adwin => "adwin",
            DetectorKind::Ddm => "ddm",
            DetectorKind::Eddm => "eddm",
            DetectorKind::HddmA => "hddm_a",
            DetectorKind::PageHinkley => "page_hinkley",
            DetectorKind::Kswin => "kswin",
        }
    }

    pub fn parse(name: &str) -> Option<DetectorKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// DDM, EDDM and HDDM_A are defined on a stream of 0/1 mistakes; the others take any real
    /// value (a regressor's absolute error too).
    pub fn needs_binary_stream(self) -> bool {
        matches!(
            self,
            DetectorKind::Ddm | DetectorKind::Eddm | DetectorKind::HddmA
        )
    }

    /// A detector of this kind with its standard (River's default) parameters.
    pub fn detector(self) -> Detector {
        match self {
            DetectorKind::Adwin => Detector::Adwin(Adwin::default()),
            DetectorKind::Ddm => Detector::Ddm(Ddm::default()),
            DetectorKind::Eddm => Detector::Eddm(Eddm::default()),
            DetectorKind::HddmA => Detector::HddmA(HddmA::default()),
            DetectorKind::PageHinkley => Detector::PageHinkley(PageHinkley::default()),
            DetectorKind::Kswin => Detector::Kswin(Kswin::default()),
        }
    }
}

/// One detector's state, of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detector {
    Adwin(Adwin),
    Ddm(Ddm),
    Eddm(Eddm),
    HddmA(HddmA),
    PageHinkley(PageHinkley),
    Kswin(Kswin),
}

impl Detector {
    pub fn kind(&self) -> DetectorKind {
        match self {
            Detector::Adwin(_) => DetectorKind::Adwin,
            Detector::Ddm(_) => DetectorKind::Ddm,
            Detector::Eddm(_) => DetectorKind::Eddm,
            Detector::HddmA(_) => DetectorKind::HddmA,
            Detector::PageHinkley(_) => DetectorKind::PageHinkley,
            Detector::Kswin(_) => DetectorKind::Kswin,
        }
    }

    /// Takes the next value of the stream.
    pub fn update(&mut self, x: f64) -> Signal {
        match self {
            Detector::Adwin(d) => d.update(x),
            Detector::Ddm(d) => d.update(x),
            Detector::Eddm(d) => d.update(x),
            Detector::HddmA(d) => d.update(x),
            Detector::PageHinkley(d) => d.update(x),
            Detector::Kswin(d) => d.update(x),
        }
    }
}

/// Positions (0-based) in `stream` where a fresh detector of `kind` flags a change.
pub fn change_points(kind: DetectorKind, stream: &[f64]) -> Vec<usize> {
    let mut d = kind.detector();
    stream
        .iter()
        .enumerate()
        .filter_map(|(i, &x)| d.update(x).drift.then_some(i))
        .collect()
}

/// River's `stats.Mean` arithmetic (`mean += (1/n)(x - mean)`), kept to the letter: a
/// detector's threshold comparisons then fall on the same side as River's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunningMean {
    pub n: f64,
    pub mean: f64,
}

impl RunningMean {
    pub fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
    }
}

/// River's `stats.Var` (Welford, ddof 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunningVariance {
    pub mean: RunningMean,
    sum_squares: f64,
}

impl RunningVariance {
    pub fn update(&mut self, x: f64) {
        let old = self.mean.mean;
        self.mean.update(x);
        self.sum_squares += (x - old) * (x - self.mean.mean);
    }

    pub fn variance(&self) -> f64 {
        if self.mean.n > 1.0 {
            self.sum_squares / (self.mean.n - 1.0)
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name_and_its_state_round_trips() {
        for kind in DetectorKind::ALL {
            assert_eq!(DetectorKind::parse(kind.name()), Some(kind));
            let mut d = kind.detector();
            for i in 0..500 {
                // A fresh state and every state on the way serialise and read back.
                let text = serde_json::to_string(&d).unwrap();
                let back: Detector = serde_json::from_str(&text).unwrap();
                assert_eq!(back, d, "{} at {i}", kind.name());
                d.update(f64::from(i % 7 == 0));
            }
            let text = serde_json::to_string(&d).unwrap();
            let mut back: Detector = serde_json::from_str(&text).unwrap();
            assert_eq!(back.kind(), kind);
            // The restored state goes on exactly as the original.
            for i in 0..500 {
                let x = f64::from(i % 3 == 0);
                assert_eq!(back.update(x), d.update(x), "{} at {i}", kind.name());
            }
        }
        assert_eq!(DetectorKind::parse("hddm"), None);
    }

    #[test]
    fn a_constant_stream_has_no_change() {
        for kind in DetectorKind::ALL {
            assert!(
                change_points(kind, &[0.0; 5000]).is_empty(),
                "{}",
                kind.name()
            );
        }
    }

    #[test]
    fn a_jump_in_the_error_rate_is_found_by_every_detector() {
        // 1,000 values with a mistake every 20th, then 1,000 with a mistake every 2nd.
        let stream: Vec<f64> = (0..2000)
            .map(|i| f64::from(if i < 1000 { i % 20 == 0 } else { i % 2 == 0 }))
            .collect();
        for kind in DetectorKind::ALL {
            let points = change_points(kind, &stream);
            let first = points.iter().find(|&&p| p >= 1000);
            assert!(
                matches!(first, Some(&p) if p < 1300),
                "{}: {points:?}",
                kind.name()
            );
        }
    }
}
