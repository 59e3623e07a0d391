//! Bad input found by the adversarial review (issue 19), each through the real binary: the
//! service answers a clear 4xx and keeps serving.

mod common;

use common::{client, decode, prediction, Server};
use serde_json::json;

/// Non-ASCII in a span (`1ü`, `%ff`) once panicked in `split_at` and dropped the connection
/// (query parameters, dashboard pages) or answered 500 (rule windows, `for`, silences).
#[test]
fn a_non_ascii_span_is_a_400_naming_the_parameter_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let rows = json!([prediction("r-1", "2026-01-02T03:04:05Z", 41.0, "DE")]).to_string();
    assert_eq!(s.post("/v1/models/fraud/predictions", &rows).0, 200);

    for path in [
        "/v1/models/fraud/metrics?window=1%C3%BC",
        "/v1/models/fraud/metrics?window=%ff",
        "/v1/models/fraud/drift?window=1%E2%82%AC",
        "/v1/models/fraud/quality?window=%C3%BC",
    ] {
        let (status, body) = s.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains("window"), "{path}: {body}");
    }
    for path in [
        "/models/fraud?range=1%C3%BC",
        "/models/fraud?window=1%C3%BC",
        "/models/fraud/drift?range=%ff",
    ] {
        let r = client().get(format!("{}{}", s.url, path)).send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert_eq!(status, 400, "{path}: {text}");
    }

    for (rule, field) in [
        (
            json!({"name": "w", "signal": "accuracy", "window": "1ü", "decision": "retrain", "severity": "warning",
                   "condition": {"kind": "threshold", "op": "<", "value": 0.9}}),
            "window",
        ),
        (
            json!({"name": "f", "signal": "accuracy", "for": "1€", "decision": "retrain", "severity": "warning",
                   "condition": {"kind": "threshold", "op": "<", "value": 0.9}}),
            "for",
        ),
    ] {
        let (status, body) = s.post("/v1/models/fraud/rules", &rule.to_string());
        assert_eq!(status, 400, "{rule}: {body}");
        assert!(body.to_string().contains(field), "{rule}: {body}");
    }
    let (status, body) = s.post(
        "/v1/silences",
        &json!({"model": "fraud", "duration": "2ü"}).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("duration"), "{body}");

    // Still serving.
    let (status, _) = decode(
        client()
            .get(format!("{}/v1/models/fraud", s.url))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
}
