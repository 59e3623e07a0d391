//! Per-window metrics over a real server and from a data directory: `GET /v1/models/{m}/metrics`
//! and `modelwatch metrics --server` / `--data`.

use crate::common;

use common::{modelwatch, Server};
use serde_json::{json, Value};

/// 100 predictions on each of two days; every fifth one scores the wrong side of 0.5, so
/// accuracy is exactly 0.8 per day. Country DE for even rows, FR for odd ones.
fn load(server: &Server) {
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for (d, day) in ["2026-01-05", "2026-01-06"].iter().enumerate() {
        for i in 0..100 {
            let y = i % 2;
            let right = if y == 1 { 0.9 } else { 0.1 };
            let score = if i % 5 == 0 { 1.0 - right } else { right };
            let id = format!("r-{d}-{i}");
            preds.push(json!({
                "request_id": id, "timestamp": format!("{day}T10:00:00Z"),
                "model_version": "v1",
                "features": {"country": if i % 2 == 0 { "DE" } else { "FR" }},
                "prediction": i32::from(score >= 0.5), "score": score, "latency_ms": 5.0
            }));
            labels.push(json!({"request_id": id, "label": y, "timestamp": "2026-01-07T00:00:00Z"}));
        }
    }
    server.post_ok("/v1/models/m/predictions", preds);
    server.post_ok("/v1/models/m/labels", labels);
}

#[test]
fn metrics_endpoint_and_command_report_per_window_performance() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    load(&server);

    let (s, body) = server.get("/v1/models/m/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"], "binary");
    let windows = body["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    let w = &windows[0];
    for key in [
        "start",
        "end",
        "predictions",
        "labelled",
        "label_coverage",
        "errors",
        "error_rate",
        "label_delay_seconds",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier_score",
        "ece",
        "confusion_matrix",
        "latency_ms",
        "average_confidence",
        "prediction_distribution",
    ] {
        assert!(w.get(key).is_some(), "{key} missing in {w}");
    }
    assert_eq!(w["start"], "2026-01-05T00:00:00Z");
    assert_eq!(w["predictions"], 100);
    assert_eq!(w["labelled"], 100);
    assert_eq!(w["accuracy"]["status"], "defined");
    assert!((w["accuracy"]["value"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    assert!(body["baseline"].is_null());

    let (s, body) = server.get("/v1/models/m/metrics?window=1d&segment=country");
    assert_eq!(s, 200, "{body}");
    let segments = body["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0]["predictions"], 100);

    let (s, body) = server.get("/v1/models/m/metrics?task=ranking");
    assert_eq!(s, 400, "{body}");

    // The command, through the server.
    let (ok, out, err) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--server",
        &server.url,
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!((v["windows"][1]["accuracy"]["value"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    let (ok, out, err) = modelwatch(&["metrics", "--model", "m", "--server", &server.url]);
    assert!(ok, "{err}");
    assert!(out.contains("accuracy") && out.contains("roc_auc"), "{out}");
    assert!(out.contains("2026-01-06T00:00:00Z"), "{out}");
    assert!(out.contains("0.800 ["), "{out}");

    // The data directory is the server's while it runs.
    let data = dir.path().to_str().unwrap();
    let (ok, _, err) = modelwatch(&["metrics", "--model", "m", "--data", data]);
    assert!(!ok);
    assert!(err.contains("--server"), "{err}");

    server.stop();
    let (ok, out, err) =
        modelwatch(&["metrics", "--model", "m", "--data", data, "--format", "csv"]);
    assert!(ok, "{err}");
    // The flat table of `format=csv` (tests/metrics_csv.rs checks it number for number).
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("window_start,window_end,accuracy,accuracy_ci_low,"));
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(row[0], "2026-01-05T00:00:00Z");
    assert_eq!(row[2], "0.8");

    let (ok, out, err) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--data",
        data,
        "--segment",
        "country",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("segments (worst first)") && out.contains("DE"),
        "{out}"
    );
}

#[test]
fn versions_side_by_side_and_kpis_come_with_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    load(&server);
    // Version v2 on the second day: right every time.
    let preds: Vec<Value> = (0..50)
        .map(|i| {
            json!({"request_id": format!("v2-{i}"), "timestamp": "2026-01-06T12:00:00Z",
                   "model_version": "v2", "features": {"country": "DE"},
                   "prediction": i % 2, "score": if i % 2 == 1 { 0.8 } else { 0.2 }})
        })
        .collect();
    let labels: Vec<Value> = (0..50)
        .map(|i| json!({"request_id": format!("v2-{i}"), "label": i % 2}))
        .collect();
    assert_eq!(
        server
            .post("/v1/models/m/predictions", &Value::Array(preds).to_string())
            .0,
        200
    );
    assert_eq!(
        server
            .post("/v1/models/m/labels", &Value::Array(labels).to_string())
            .0,
        200
    );

    let kpis = r#"[{"name": "fraud_loss_eur", "value": 120.5, "timestamp": "2026-01-05T08:00:00Z"},
                   {"name": "fraud_loss_eur", "value": "a lot"},
                   {"name": "fraud_loss_eur", "value": 79.5, "timestamp": "2026-01-05T20:00:00Z"},
                   {"name": "fraud_loss_eur", "value": 300, "timestamp": "2026-01-06T08:00:00Z"},
                   {"name": "review_minutes", "value": 12, "timestamp": "2026-01-06T09:00:00Z"}]"#;
    let (s, body) = server.post("/v1/models/m/kpis", kpis);
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["accepted"], 4);
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["field"], "value");
    let (s, body) = server.post("/v1/models/nobody/kpis", kpis);
    assert_eq!(s, 404, "{body}");
    let (s, body) = server.get("/v1/models/nobody/metrics");
    assert_eq!(s, 404, "{body}");

    let (s, body) = server.get("/v1/models/m/kpis?window=1d&name=fraud_loss_eur");
    assert_eq!(s, 200, "{body}");
    let loss = body["kpis"]["fraud_loss_eur"].as_array().unwrap();
    assert_eq!(loss.len(), 2);
    assert_eq!(
        (loss[0]["n"].clone(), loss[0]["sum"].clone()),
        (json!(2), json!(200.0))
    );
    assert_eq!(loss[0]["last"], 79.5);
    assert!(body["kpis"].get("review_minutes").is_none());
    let (s, _) = server.get("/v1/models/m/kpis?window=fortnight");
    assert_eq!(s, 400);

    let (s, body) = server.get("/v1/models/m/metrics?window=1d");
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["kpis"]["fraud_loss_eur"][1]["sum"], 300.0);
    assert_eq!(body["kpis"]["review_minutes"][0]["n"], 1);
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (
            versions[0]["version"].clone(),
            versions[0]["predictions"].clone()
        ),
        (json!("v1"), json!(200))
    );
    assert!((versions[0]["accuracy"]["value"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    assert_eq!(versions[1]["version"], "v2");
    assert_eq!(versions[1]["accuracy"]["value"], 1.0);
    // Day two holds both versions: 80 + 50 right of 150.
    let day2 = &body["windows"][1];
    assert_eq!(day2["predictions"], 150);
    assert!((day2["accuracy"]["value"].as_f64().unwrap() - 130.0 / 150.0).abs() < 1e-12);

    // A late correction of ten v2 labels reaches the (persisted) per-window metrics at once.
    let flipped: Vec<Value> = (0..10)
        .map(|i| json!({"request_id": format!("v2-{i}"), "label": 1 - i % 2}))
        .collect();
    let (s, body) = server.post("/v1/models/m/labels", &Value::Array(flipped).to_string());
    assert_eq!((s, body["replaced"].clone()), (200, json!(10)));
    let (_, body) = server.get("/v1/models/m/metrics?window=1d&version=v2");
    assert_eq!(body["windows"][0]["accuracy"]["value"], 0.8);
    // The same from the raw events (a threshold other than the default is not aggregated).
    let (_, raw) = server.get("/v1/models/m/metrics?window=1d&version=v2&threshold=0.50001");
    assert_eq!(
        raw["windows"][0]["accuracy"],
        body["windows"][0]["accuracy"]
    );
}
