//! Metrics over time as one flat CSV table (`GET .../metrics?format=csv`, `modelwatch metrics
//! --format csv`), equal number for number to the JSON report; and the change summary (first
//! window → last, baseline → last) in the JSON reply and `modelwatch metrics --summary`.

use crate::common;

use common::{modelwatch, Server};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Day 1: 200 predictions, 90 % right; day 2: 200 predictions, 60 % right, 10 errors. Latency
/// grows with the row. Every prediction is labelled.
fn load(server: &Server, model: &str) {
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for (d, (day, wrong_every)) in [("2026-01-05", 10), ("2026-01-06", 2)].iter().enumerate() {
        for i in 0..200 {
            let y = i % 2;
            // Day 2: 60 % right = every row but 4 of each 10.
            let wrong = if *wrong_every == 10 {
                i % 10 == 0
            } else {
                i % 10 < 4
            };
            let p = if wrong { 1 - y } else { y };
            let id = format!("r-{d}-{i}");
            let mut row = json!({
                "request_id": id, "timestamp": format!("{day}T{:02}:00:00Z", i % 24),
                "features": {"age": i},
                "prediction": p, "score": if p == 1 { 0.7 + (i % 3) as f64 * 0.1 } else { 0.2 },
                "latency_ms": 5.0 + i as f64 * (d + 1) as f64 * 0.1
            });
            if d == 1 && i % 20 == 0 {
                row["error"] = json!("timeout");
            }
            preds.push(row);
            labels.push(json!({"request_id": id, "label": y}));
        }
    }
    server.post_ok(&format!("/v1/models/{model}/predictions"), preds);
    server.post_ok(&format!("/v1/models/{model}/labels"), labels);
}

/// (status, content type, body).
fn get_text(server: &Server, path: &str) -> (u16, String, String) {
    let (status, text, headers) = server.get_text(path);
    let ct = headers["content-type"].to_str().unwrap().to_owned();
    (status, ct, text)
}

/// The CSV's rows as maps column → cell.
fn rows(text: &str) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

/// A cell as the JSON report's number: parsed back, it must be the same f64, bit for bit.
fn same_number(cell: &str, json: &Value, what: &str) {
    match json.as_f64() {
        Some(x) => assert_eq!(
            cell.parse::<f64>().ok(),
            Some(x),
            "{what}: {cell} vs {json}"
        ),
        None => assert_eq!(cell, "", "{what}: {cell} vs {json}"),
    }
}

#[test]
fn csv_table_has_the_json_reports_numbers_from_the_api_and_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    load(&server, "m");

    let (s, ct, text) = get_text(&server, "/v1/models/m/metrics?window=1d&format=csv");
    assert_eq!(s, 200, "{text}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    let (header, table) = rows(&text);
    // The columns a pandas user asks for, in this order, with each interval beside its metric.
    let wanted = [
        "window_start",
        "window_end",
        "accuracy",
        "accuracy_ci_low",
        "accuracy_ci_high",
        "precision",
        "precision_ci_low",
        "precision_ci_high",
        "recall",
        "recall_ci_low",
        "recall_ci_high",
        "f1",
        "f1_ci_low",
        "f1_ci_high",
        "average_confidence",
        "average_confidence_ci_low",
        "average_confidence_ci_high",
        "prediction_volume",
    ];
    assert_eq!(&header[..wanted.len()], &wanted, "{header:?}");
    for c in [
        "latency_p50",
        "latency_p95",
        "error_rate",
        "label_coverage",
        "roc_auc_ci_high",
    ] {
        assert!(header.iter().any(|h| h == c), "{c} missing: {header:?}");
    }

    let (s, report) = server.get("/v1/models/m/metrics?window=1d");
    assert_eq!(s, 200, "{report}");
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(table.len(), windows.len());
    assert_eq!(table.len(), 2);
    let mut compared = 0;
    for (row, w) in table.iter().zip(windows) {
        assert_eq!(row["window_start"], w["start"].as_str().unwrap());
        assert_eq!(row["window_end"], w["end"].as_str().unwrap());
        same_number(&row["prediction_volume"], &w["predictions"], "volume");
        same_number(&row["error_rate"], &w["error_rate"], "error_rate");
        same_number(&row["label_coverage"], &w["label_coverage"], "coverage");
        for (col, json) in [
            ("latency_p50", &w["latency_ms"]["p50"]),
            ("latency_p95", &w["latency_ms"]["p95"]),
            ("average_confidence", &w["average_confidence"]),
        ]
        .into_iter()
        .chain(
            [
                "accuracy",
                "precision",
                "recall",
                "f1",
                "roc_auc",
                "log_loss",
            ]
            .map(|m| (m, &w[m])),
        ) {
            for (suffix, field) in [
                ("", "value"),
                ("_ci_low", "ci_low"),
                ("_ci_high", "ci_high"),
            ] {
                same_number(&row[&format!("{col}{suffix}")], &json[field], col);
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 2 * 9 * 3);
    assert_eq!(table[1]["error_rate"], "0.05");
    assert_eq!(table[0]["accuracy"], "0.9");

    // The command through the server and from the data directory: the same bytes.
    let (ok, via_server, err) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--server",
        &server.url,
        "--format",
        "csv",
    ]);
    assert!(ok, "{err}");
    assert_eq!(via_server, text);
    let (s, _, out) = get_text(&server, "/v1/models/m/metrics?format=xml");
    assert_eq!(s, 400, "{out}");
    let (s, _, out) = get_text(&server, "/v1/models/m/metrics?format=csv&segment=age");
    assert_eq!(s, 400, "{out}");
    server.stop();
    let data = dir.path().to_str().unwrap();
    let (ok, from_data, err) =
        modelwatch(&["metrics", "--model", "m", "--data", data, "--format", "csv"]);
    assert!(ok, "{err}");
    assert_eq!(from_data, text);
}

#[test]
fn csv_columns_follow_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let preds: Vec<Value> = (0..40)
        .map(|i| {
            json!({"request_id": format!("r{i}"), "timestamp": "2026-01-05T10:00:00Z",
                   "prediction": 10.5 + i as f64, "features": {"x": i}})
        })
        .collect();
    let labels: Vec<Value> = (0..40)
        .map(|i| json!({"request_id": format!("r{i}"), "label": 11.0 + i as f64}))
        .collect();
    assert_eq!(
        server
            .post(
                "/v1/models/price/predictions",
                &Value::Array(preds).to_string()
            )
            .0,
        200
    );
    assert_eq!(
        server
            .post("/v1/models/price/labels", &Value::Array(labels).to_string())
            .0,
        200
    );
    let (s, _, text) = get_text(&server, "/v1/models/price/metrics?window=1d&format=csv");
    assert_eq!(s, 200, "{text}");
    let (header, table) = rows(&text);
    assert_eq!(&header[2..5], ["mae", "mae_ci_low", "mae_ci_high"]);
    assert!(!header
        .iter()
        .any(|h| h == "accuracy" || h == "average_confidence"));
    assert_eq!(table[0]["mae"], "0.5");
    assert_eq!(table[0]["prediction_volume"], "40");
}

#[test]
fn summary_compares_first_and_last_window_and_the_baseline_with_significance() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    load(&server, "m");
    // The reference (the test set): 95 % right on 400 labelled rows.
    let mut reference = String::from("age,prediction,score,label\n");
    for i in 0..400 {
        let y = i % 2;
        let p = if i % 20 == 0 { 1 - y } else { y };
        reference += &format!("{i},{p},{},{y}\n", if p == 1 { 0.8 } else { 0.2 });
    }
    let (status, out) = server.put("/v1/models/m/reference", "text/csv", reference);
    assert_eq!(status, 200, "{out}");
    // Today's window is still in progress: never the "last" window of the summary.
    let now: Vec<Value> = (0..40)
        .map(|i| {
            json!({"request_id": format!("now-{i}"), "prediction": 1, "score": 0.9,
                         "features": {"age": i}})
        })
        .collect();
    assert_eq!(
        server
            .post("/v1/models/m/predictions", &Value::Array(now).to_string())
            .0,
        200
    );
    let labels: Vec<Value> = (0..40)
        .map(|i| json!({"request_id": format!("now-{i}"), "label": 0}))
        .collect();
    assert_eq!(
        server
            .post("/v1/models/m/labels", &Value::Array(labels).to_string())
            .0,
        200
    );

    let (s, report) = server.get("/v1/models/m/metrics?window=1d");
    assert_eq!(s, 200, "{report}");
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3, "two days and today");
    let summary = &report["summary"];
    assert_eq!(summary["basis"], "labelled");
    assert_eq!(summary["first_window"]["start"], windows[0]["start"]);
    assert_eq!(summary["last_window"]["start"], windows[1]["start"]);
    let acc = &summary["metrics"]["accuracy"];
    assert_eq!(acc["first"], windows[0]["accuracy"]["value"]);
    assert_eq!(acc["last"], windows[1]["accuracy"]["value"]);
    assert_eq!(acc["baseline"], report["baseline"]["accuracy"]["value"]);
    // 0.9 → 0.6 on 200 rows each: a change no noise explains; the same for the baseline's 0.95.
    let f2l = &acc["first_to_last"];
    assert_eq!(f2l["status"], "compared", "{f2l}");
    assert_eq!(f2l["test"], "two_proportion_z");
    assert!(
        (f2l["delta"].as_f64().unwrap() + 0.3).abs() < 1e-12,
        "{f2l}"
    );
    assert_eq!(f2l["significant"], true);
    // The summary's test is the windows' own baseline test: the same p-value.
    assert_eq!(
        acc["baseline_to_last"], windows[1]["changes"]["accuracy"],
        "{acc}"
    );
    assert_eq!(acc["baseline_to_last"]["significant"], true);
    // Volume: 200 → 200, nothing to see; errors 0 → 10 of 200.
    let vol = &summary["metrics"]["prediction_volume"];
    assert_eq!(
        (vol["first"].clone(), vol["last"].clone()),
        (json!(200.0), json!(200.0))
    );
    assert_eq!(vol["first_to_last"]["significant"], false);
    assert_eq!(vol["first_to_last"]["p_value"], 1.0);
    assert!(vol["baseline_to_last"].is_null());
    let err = &summary["metrics"]["error_rate"];
    assert_eq!(err["last"], windows[1]["error_rate"]);
    assert_eq!(err["first_to_last"]["test"], "two_proportion_z");
    for m in [
        "latency_p50",
        "latency_p95",
        "average_confidence",
        "label_coverage",
        "f1",
    ] {
        assert!(
            summary["metrics"][m]["first_to_last"]["status"].is_string(),
            "{m}: {summary}"
        );
    }

    // The command: the summary as a table, and in the default table output.
    let (ok, out, e) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--server",
        &server.url,
        "--summary",
    ]);
    assert!(ok, "{e}");
    assert!(
        out.contains("first window 2026-01-05T00:00:00Z -> last window 2026-01-06T00:00:00Z"),
        "{out}"
    );
    let line = out.lines().find(|l| l.starts_with("accuracy")).unwrap();
    assert!(
        line.contains("0.900") && line.contains("0.600") && line.contains("-0.300"),
        "{line}"
    );
    assert!(line.contains("significant"), "{line}");
    let (ok, out, e) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--server",
        &server.url,
        "--summary",
        "--format",
        "json",
    ]);
    assert!(ok, "{e}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, *summary);
}
