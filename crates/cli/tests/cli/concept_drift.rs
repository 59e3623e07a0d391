//! `GET /v1/models/{model}/concept` against the real binary: a classifier whose error rate
//! jumps, labels arriving late and out of order, a regressor, and bad parameters.

use crate::common;

use common::Server;
use modelwatch_stats::concept::{change_points, DetectorKind};
use serde_json::{json, Value};

const N: usize = 2000;

/// Whether prediction `i` is a mistake: 10 % before the 1,000th, 40 % after, spread evenly.
fn mistake(i: usize) -> bool {
    let rate = if i < N / 2 { 10 } else { 40 };
    (i * 7919) % 100 < rate
}

fn time(i: usize) -> String {
    // One prediction a minute from 2026-11-20 00:00.
    format!(
        "2026-11-{:02}T{:02}:{:02}:00Z",
        20 + i / 1440,
        (i / 60) % 24,
        i % 60
    )
}

fn predictions(version: &str) -> Vec<Value> {
    (0..N)
        .map(|i| {
            json!({"request_id": format!("{version}-{i}"), "timestamp": time(i),
                   "model_version": version, "features": {"x": i as f64},
                   "prediction": 1, "score": 0.9})
        })
        .collect()
}

fn labels(version: &str, ids: impl Iterator<Item = usize>) -> Vec<Value> {
    ids.map(|i| {
        json!({"request_id": format!("{version}-{i}"), "label": if mistake(i) { 0 } else { 1 },
               "timestamp": "2026-12-01T00:00:00Z"})
    })
    .collect()
}

fn stream() -> Vec<f64> {
    (0..N).map(|i| f64::from(mistake(i))).collect()
}

fn positions(version: &Value, detector: &str) -> Vec<usize> {
    version["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["detector"] == detector)
        .map(|c| c["position"].as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn change_points_are_the_detectors_on_the_error_stream_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.post_ok("/v1/models/churn/predictions", predictions("v1"));
    // Labels arrive late and in another order than the predictions: the second half first
    // (reversed), then the first half.
    server.post_ok("/v1/models/churn/labels", labels("v1", (N / 2..N).rev()));
    let partial = server.get_ok("/v1/models/churn/concept?detectors=ddm");
    assert_eq!(partial["versions"][0]["labelled"], N / 2);
    server.post_ok("/v1/models/churn/labels", labels("v1", 0..N / 2));

    let report = server.get_ok("/v1/models/churn/concept?window=1d");
    assert_eq!(report["task"], "binary");
    assert_eq!(report["stream"], "mistake");
    let v1 = &report["versions"][0];
    assert_eq!(v1["version"], "v1");
    assert_eq!(v1["labelled"], N);
    let stream = stream();
    let mut found_the_jump = 0;
    for kind in DetectorKind::ALL {
        let want = change_points(kind, &stream);
        assert_eq!(positions(v1, kind.name()), want, "{}", kind.name());
        if want.iter().any(|&p| (N / 2..N / 2 + 300).contains(&p)) {
            found_the_jump += 1;
        }
    }
    assert!(found_the_jump >= 4, "most detectors see the jump at 1,000");
    // Each change names its prediction and its window, and the windows count them.
    let change = v1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["detector"] == "ddm")
        .unwrap();
    let i = change["position"].as_u64().unwrap() as usize;
    assert_eq!(change["request_id"], format!("v1-{i}"));
    assert_eq!(change["timestamp"], time(i));
    assert_eq!(
        change["window_start"],
        format!("2026-11-{:02}T00:00:00Z", 20 + i / 1440)
    );
    let windows = v1["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    let counted: u64 = windows
        .iter()
        .map(|w| w["changes"]["ddm"].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, positions(v1, "ddm").len());
    let first_day_mistakes = (0..1440).filter(|&i| mistake(i)).count() as f64 / 1440.0;
    assert!((windows[0]["mean_error"].as_f64().unwrap() - first_day_mistakes).abs() < 1e-12);

    // A range: the stream restarts at `from`.
    let later = server.get_ok("/v1/models/churn/concept?from=2026-11-21T00:00:00Z&detectors=adwin");
    assert_eq!(later["detectors"], json!(["adwin"]));
    assert_eq!(
        positions(&later["versions"][0], "adwin"),
        change_points(DetectorKind::Adwin, &stream[1440..])
    );
}

#[test]
fn a_regressor_gets_the_detectors_for_real_valued_errors_and_bad_parameters_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let rows: Vec<Value> = (0..600)
        .map(|i| {
            json!({"request_id": format!("r{i}"), "timestamp": time(i), "model_version": "v2",
                   "features": {"x": 1.0}, "prediction": 10.5 + (i % 7) as f64 / 10.0})
        })
        .collect();
    server.post_ok("/v1/models/price/predictions", rows);
    let labels: Vec<Value> = (0..600)
        .map(|i| json!({"request_id": format!("r{i}"), "label": if i < 300 { 10.0 } else { 14.0 }}))
        .collect();
    server.post_ok("/v1/models/price/labels", labels);
    let report = server.get_ok("/v1/models/price/concept");
    assert_eq!(report["task"], "regression");
    assert_eq!(report["stream"], "absolute_error");
    assert_eq!(
        report["detectors"],
        json!(["adwin", "page_hinkley", "kswin"])
    );
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["detector"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["ddm", "eddm", "hddm_a"]);
    let errors: Vec<f64> = (0..600)
        .map(|i| {
            let label = if i < 300 { 10.0 } else { 14.0 };
            f64::abs(label - (10.5 + (i % 7) as f64 / 10.0))
        })
        .collect();
    let v2 = &report["versions"][0];
    for kind in [
        DetectorKind::Adwin,
        DetectorKind::PageHinkley,
        DetectorKind::Kswin,
    ] {
        assert_eq!(
            positions(v2, kind.name()),
            change_points(kind, &errors),
            "{}",
            kind.name()
        );
    }
    assert!(!positions(v2, "adwin").is_empty());

    let (status, body) = server.get("/v1/models/price/concept?detectors=adwin,cusum");
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`detectors`") && message.contains("cusum"),
        "{body}"
    );
    let (status, _) = server.get("/v1/models/price/concept?window=1ü");
    assert_eq!(status, 400);
    let (status, _) = server.get("/v1/models/nobody/concept");
    assert_eq!(status, 404);
}
