//! Concept-drift detectors against River 0.26 on the same streams.
//! Fixture: `tests/fixtures/concept/river_concept.json`, made by
//! `scripts/fixtures/gen_concept_fixtures.py`.
//!
//! Positions must be equal, not close: a detector's decision is a comparison, and the
//! arithmetic follows River's to the letter. KSWIN is given River's own random draws (the
//! fixture records Python's `random.Random(42)` sequence, which KSWIN restarts after each
//! change), so what is compared is the method, not two random generators.

use modelwatch_stats::concept::{Detector, DetectorKind, Kswin};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/concept/river_concept.json"))
        .expect("fixture is valid JSON")
}

fn positions(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| p.as_u64().expect("index") as usize)
        .collect()
}

/// Drift and warning positions of `detector` over `values`.
fn run(mut detector: Detector, values: &[f64]) -> (Vec<usize>, Vec<usize>) {
    let (mut drifts, mut warnings) = (Vec::new(), Vec::new());
    for (i, &x) in values.iter().enumerate() {
        let s = detector.update(x);
        if s.drift {
            drifts.push(i);
        }
        if s.warning {
            warnings.push(i);
        }
    }
    (drifts, warnings)
}

/// KSWIN with River's draws replayed: the n-th full window since the last start takes the
/// n-th sample of the recorded sequence.
fn run_kswin(values: &[f64], samples: &[Vec<usize>]) -> Vec<usize> {
    let mut k = Kswin::default();
    let (mut drifts, mut since_start) = (Vec::new(), 0);
    for (i, &x) in values.iter().enumerate() {
        let s = k.update_sampling(x, |older, size| {
            assert_eq!((older, size), (70, 30));
            since_start += 1;
            samples[since_start - 1].clone()
        });
        if s.drift {
            drifts.push(i);
            since_start = 0;
        }
    }
    drifts
}

#[test]
fn every_detector_flags_the_changes_river_flags_on_the_same_stream() {
    let fx = fixture();
    assert_eq!(fx["river"], "0.26.1");
    let samples: Vec<Vec<usize>> = fx["kswin_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(positions)
        .collect();
    let mut compared = 0;
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let values: Vec<f64> = case["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (det, expected) in case["detectors"].as_object().unwrap() {
            let kind = DetectorKind::parse(det).unwrap_or_else(|| panic!("unknown {det}"));
            let want = positions(&expected["drifts"]);
            if kind == DetectorKind::Kswin {
                assert_eq!(run_kswin(&values, &samples), want, "{name} kswin");
            } else {
                let (drifts, warnings) = run(kind.detector(), &values);
                assert_eq!(drifts, want, "{name} {det} changes");
                assert_eq!(
                    warnings,
                    positions(&expected["warnings"]),
                    "{name} {det} warnings"
                );
            }
            compared += 1;
        }
    }
    // 3 binary streams x 6 detectors + 3 real-valued streams x 3 detectors.
    assert_eq!(compared, 27);
}

#[test]
fn the_fixture_has_changes_to_find_and_streams_without_any() {
    // The comparison above means something only if River found changes where the streams
    // change and none in the steady ones for the detectors meant for them.
    let fx = fixture();
    let case = |name: &str| {
        fx["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    for det in ["adwin", "ddm", "hddm_a", "page_hinkley"] {
        let jump = positions(&case("binary_jump")["detectors"][det]["drifts"]);
        assert!(
            jump.iter().any(|&p| (1000..1300).contains(&p)),
            "{det}: {jump:?}"
        );
        assert!(positions(&case("binary_stable")["detectors"][det]["drifts"]).is_empty());
    }
    let docs = positions(&case("river_adwin_docs_example")["detectors"]["adwin"]["drifts"]);
    assert_eq!(docs, vec![1023], "River's documented ADWIN example");
}
