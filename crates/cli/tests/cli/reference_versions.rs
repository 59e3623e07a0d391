//! A reference uploaded for one version serves the queries without a version (the Python SDK
//! uploads for its monitor's version by default): drift, quality, the metrics' baseline,
//! feedback and rules, each naming the reference it used; the hourly drift sketches are built
//! against it, so that they agree with the raw events, and a newer reference replaces it.

use crate::common;

use common::{poll, Server};
use serde_json::{json, Value};

/// `n` rows: x evenly over [offset, offset + 100), country DE / FR, prediction and label with
/// one row in `wrong` predicted wrong, a score on the prediction's side.
fn reference_csv(offset: usize, wrong: usize) -> String {
    let mut s = String::from("x,country,prediction,score,label\n");
    for i in 0..1000usize {
        let label = i % 2;
        let pred = if i % wrong == 0 { 1 - label } else { label };
        s.push_str(&format!(
            "{},{},{pred},{},{label}\n",
            offset + i % 100,
            ["DE", "FR"][i % 2],
            if pred == 1 { 0.8 } else { 0.2 }
        ));
    }
    s
}

fn put_reference(s: &Server, query: &str, csv: String) -> Value {
    s.put_reference("credit", query, "text/csv", csv)
}

/// Version v1's day: x shifted by 50, every 4th prediction wrong and predicted 1, so the
/// predictions lean to class 1.
fn send_day(s: &Server) {
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..800usize {
        let label = i % 2;
        let pred = if i % 4 == 0 { 1 } else { label };
        let id = format!("c-{i}");
        preds.push(json!({"request_id": id, "model_version": "v1",
            "timestamp": format!("2026-01-05T{:02}:{:02}:00Z", i / 60 % 24, i % 60),
            "features": {"x": 50 + i % 100, "country": (["DE", "FR"][i % 2])},
            "prediction": pred, "score": if pred == 1 { 0.8 } else { 0.2 }}));
        labels.push(json!({"request_id": id, "label": label}));
    }
    for (path, rows) in [("predictions", preds), ("labels", labels)] {
        let (st, out) = s.post(
            &format!("/v1/models/credit/{path}"),
            &Value::from(rows).to_string(),
        );
        assert_eq!(st, 200, "{out}");
    }
}

fn feature<'a>(drift: &'a Value, name: &str) -> &'a Value {
    drift["windows"][0]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == name)
        .unwrap_or_else(|| panic!("no {name} in {drift}"))
}

/// The per-hour sketches (whole hours) and the raw events (a range starting mid-hour) give
/// the same verdicts and statistics against the same reference.
fn fast_and_raw_agree(s: &Server, query: &str) -> Value {
    let fast = s.get_ok(&format!("/v1/models/credit/drift?window=1d{query}"));
    let raw = s.get_ok(&format!(
        "/v1/models/credit/drift?window=1d&from=2026-01-04T23:30:00Z{query}"
    ));
    assert_eq!(fast["reference"], raw["reference"]);
    for col in ["x", "country"] {
        let (f, r) = (feature(&fast, col), feature(&raw, col));
        assert_eq!(f["drifted"], r["drifted"], "{col}: {f} vs {r}");
        let (a, b) = (
            f["statistic"].as_f64().unwrap(),
            r["statistic"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-12, "{col}: {a} vs {b}");
    }
    fast
}

#[test]
fn a_version_reference_serves_queries_without_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(&cfg, "[alerts]\ndebounce_ms = 50\n").unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
        &[],
    );
    put_reference(&s, "?version=v1", reference_csv(0, 10));
    send_day(&s);

    // Drift without version=: v1's reference, named; x moved by half its range.
    let drift = fast_and_raw_agree(&s, "");
    assert_eq!(drift["reference"], json!({"version": "v1", "rows": 1000}));
    assert_eq!(feature(&drift, "x")["drifted"], true);
    assert_eq!(feature(&drift, "country")["drifted"], false);
    let quality = s.get_ok("/v1/models/credit/quality?window=1d");
    assert_eq!(quality["reference"]["version"], "v1");

    // The baseline is v1's test-set F1 (500 true positives, 100 false: 1000 / 1100), and the
    // window's change is measured against it.
    let m = s.get_ok("/v1/models/credit/metrics?window=1d");
    assert_eq!(
        m["reference"],
        json!({"version": "v1", "rows": 1000}),
        "{m}"
    );
    assert!((m["baseline"]["f1"]["value"].as_f64().unwrap() - 1000.0 / 1100.0).abs() < 1e-9);
    assert_eq!(m["windows"][0]["changes"]["f1"]["status"], "compared");

    // Feedback compares with v1's predictions.
    let fb = s.get_ok("/v1/models/credit/feedback?window=1d");
    assert_eq!(fb["reference"]["version"], "v1", "{fb}");
    assert_eq!(fb["reference"]["rows"], 1000);
    // Class 1: 75 % of the window's predictions, 60 % of v1's reference.
    let change = fb["windows"][0]["top_class_share_change"].as_f64().unwrap();
    assert!((change - 0.15).abs() < 1e-9, "{change}");

    // A rule without a version reads the same drift.
    let (st, out) = s.post(
        "/v1/models/credit/rules",
        &json!({"name": "x-moved", "signal": "drift:x",
            "condition": {"kind": "threshold", "op": ">", "value": 0.5},
            "decision": "data-incident", "severity": "warning"})
        .to_string(),
    );
    assert_eq!(st, 201, "{out}");
    poll(30, || {
        let (_, a) = s.get("/v1/alerts?model=credit&state=firing");
        if a["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            Ok(())
        } else {
            Err(format!("never fired: {a}"))
        }
    });

    // A reference uploaded later for v2 (x where v1's predictions now are) takes over for the
    // queries without a version; the sketches are rebuilt against it.
    put_reference(&s, "?version=v2", reference_csv(50, 10));
    let drift = fast_and_raw_agree(&s, "");
    assert_eq!(drift["reference"], json!({"version": "v2", "rows": 1000}));
    assert_eq!(feature(&drift, "x")["drifted"], false);
    // v1's own queries still use v1's.
    let v1 = fast_and_raw_agree(&s, "&version=v1");
    assert_eq!(v1["reference"]["version"], "v1");
    assert_eq!(feature(&v1, "x")["drifted"], true);

    // An all-versions reference, once uploaded, is the one for every query without a version.
    put_reference(&s, "", reference_csv(0, 10));
    let drift = fast_and_raw_agree(&s, "");
    assert_eq!(drift["reference"], json!({"version": null, "rows": 1000}));
    let m = s.get_ok("/v1/models/credit/metrics?window=1d");
    assert_eq!(m["reference"]["version"], Value::Null);
    // A version without its own reference falls back to it.
    let v3 = s.get_ok("/v1/models/credit/drift?window=1d&version=v3");
    assert_eq!(v3["reference"]["version"], Value::Null);
}
