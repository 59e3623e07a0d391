//! The latest window is usually partial (issue 18, item 5): through the real binary, the API
//! marks a window still filling as `"partial": true`, the dashboard's "latest" values come from
//! the last complete window, a window with too few rows is never shown as healthy, and an alert
//! is neither resolved nor fired by a window that tested nothing.

use crate::common;

use common::{poll, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const START: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const HOUR_2: &str = "2026-01-01T02:00:00Z";
const COUNTRIES: [&str; 3] = ["DE", "FR", "US"];

fn ts(secs: i64) -> String {
    modelwatch_core::Timestamp::from_secs(secs).to_rfc3339()
}

/// A reference of 400 labelled rows: `age` in [30, 50), three countries.
fn put_reference(server: &Server, model: &str, r: &mut StdRng) {
    let mut body = String::new();
    for _ in 0..400 {
        let score = r.random::<f64>();
        let row = json!({"features": {"age": 30.0 + 20.0 * r.random::<f64>(),
            "country": COUNTRIES[r.random_range(0..3)]},
            "prediction": u8::from(score >= 0.5), "score": score, "label": u8::from(r.random::<f64>() < score)});
        body.push_str(&row.to_string());
        body.push('\n');
    }
    server.put_reference(model, "", "application/x-ndjson", body);
}

/// `n` labelled predictions in the hour starting `hour` hours after START, `age` shifted by
/// `shift` (25: every age outside the reference's range, drifted).
fn send_hour(server: &Server, model: &str, r: &mut StdRng, hour: i64, n: i64, shift: f64) {
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let id = format!("{model}-{hour}-{i}");
        let score = r.random::<f64>();
        preds.push(
            json!({"request_id": id, "timestamp": ts(START + hour * 3600 + i * 3600 / n.max(1) / 2),
            "features": {"age": 30.0 + 20.0 * r.random::<f64>() + shift,
                         "country": COUNTRIES[r.random_range(0..3)]},
            "prediction": u8::from(score >= 0.5), "score": score}),
        );
        labels.push(json!({"request_id": id, "label": u8::from(r.random::<f64>() < score)}));
    }
    server.post_ok(&format!("/v1/models/{model}/predictions"), preds);
    server.post_ok(&format!("/v1/models/{model}/labels"), labels);
}

/// One prediction at 10 minutes past the hour `hour`: the window it opens is partial.
fn one_event(server: &Server, model: &str, hour: i64) {
    server.post_ok(
        &format!("/v1/models/{model}/predictions"),
        vec![json!({"request_id": format!("{model}-late-{hour}"),
            "timestamp": ts(START + hour * 3600 + 600),
            "features": {"age": 40.0, "country": "DE"}, "prediction": 1, "score": 0.9})],
    );
}

fn page(server: &Server, path: &str) -> String {
    let (status, html, _) = server.get_text(path);
    assert_eq!(status, 200, "{path}");
    html
}

/// The `partial` flags of a response's windows, by start.
fn partial_flags(v: &Value) -> Vec<(String, Value)> {
    v["windows"]
        .as_array()
        .unwrap_or_else(|| panic!("no windows: {v}"))
        .iter()
        .map(|w| {
            (
                w["start"].as_str().unwrap().to_string(),
                w["partial"].clone(),
            )
        })
        .collect()
}

/// The overview's table row of a model.
fn overview_row(html: &str, model: &str) -> String {
    let start = html
        .find(&format!("<tr data-model=\"{model}\""))
        .unwrap_or_else(|| panic!("no row of {model}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    html[start..end].to_string()
}

#[test]
fn the_window_still_filling_is_marked_and_the_views_use_the_last_complete_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let mut r = StdRng::seed_from_u64(7);
    // `drifting`: three full hours whose ages all drifted, then one event at 03:10.
    put_reference(&server, "drifting", &mut r);
    for h in 0..3 {
        send_hour(&server, "drifting", &mut r, h, 80, 25.0);
    }
    one_event(&server, "drifting", 3);
    // `sparse`: a full hour, an hour of 5 events, then one event at 02:10.
    put_reference(&server, "sparse", &mut r);
    send_hour(&server, "sparse", &mut r, 0, 80, 0.0);
    send_hour(&server, "sparse", &mut r, 1, 5, 0.0);
    one_event(&server, "sparse", 2);

    // The API: every window says whether it is still filling; only the last one is.
    let expected = |last: usize| -> Vec<(String, Value)> {
        (0..=last)
            .map(|h| (ts(START + h as i64 * 3600), json!(h == last)))
            .collect()
    };
    for section in ["metrics", "drift", "quality", "feedback"] {
        let (status, v) = server.get(&format!(
            "/v1/models/drifting/{section}?window=1h&from=2026-01-01T00:00:00Z"
        ));
        assert_eq!(status, 200, "{section}: {v}");
        assert_eq!(partial_flags(&v), expected(3), "{section}");
    }

    // The overview: the drift share is the last complete hour's (every age drifted), not a
    // green 0 % from the one event of 03:00; a last complete hour of 5 rows is grey.
    let html = page(&server, "/?range=all&window=1h");
    let row = overview_row(&html, "drifting");
    assert!(
        row.contains(&format!("data-drift-window=\"{HOUR_2}\"")),
        "{row}"
    );
    assert!(row.contains("class=\"bad\" data-drift=\""), "{row}");
    assert!(!row.contains("class=\"good\""), "{row}");
    let row = overview_row(&html, "sparse");
    assert!(row.contains("data-drift=\"too-few-rows\""), "{row}");
    assert!(!row.contains("class=\"good\""), "{row}");

    // Data quality: the last complete hour, not the hour with one event whose features would
    // all look fine (or missing); the sparse model's 5-row hour is "too few rows", never "ok".
    let html = page(&server, "/models/drifting/quality?range=all&window=1h");
    assert!(
        html.contains(&format!("data-quality-window=\"{HOUR_2}\"")),
        "{html}"
    );
    let html = page(&server, "/models/sparse/quality?range=all&window=1h");
    assert!(
        html.contains("data-quality-window=\"2026-01-01T01:00:00Z\""),
        "{html}"
    );
    assert!(html.contains("data-panel=\"too-few-rows\""), "{html}");
    assert!(!html.contains("class=\"ok\""), "{html}");

    // The performance view: the headline and the confusion matrix are of the last complete
    // window with labels; the partial hour is drawn on a grey ground and named on hover.
    let html = page(&server, "/models/drifting?range=all&window=1h");
    assert!(
        html.contains(&format!("data-card=\"headline\" data-window=\"{HOUR_2}\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "data-panel=\"window-detail\" data-window=\"{HOUR_2}\""
        )),
        "{html}"
    );
    assert!(html.contains("03:00 → 04:00 UTC (partial: still filling)"));
    assert!(html.contains("partial window\n</text>"));
}

/// Waits until the rule's alert was evaluated by a pass that began after `since`.
fn evaluated_after(server: &Server, since: modelwatch_core::Timestamp) -> Value {
    poll(60, || {
        let (_, v) = server.get("/v1/alerts?model=inputs");
        let a = v["alerts"][0].clone();
        let at = a["evaluated_at"]
            .as_str()
            .and_then(|t| modelwatch_core::parse_timestamp(t).ok());
        if at.is_some_and(|t| t > since) {
            Ok(a)
        } else {
            Err(format!("never re-evaluated: {v}"))
        }
    })
}

#[test]
fn a_window_that_tested_no_feature_neither_resolves_nor_fires_a_drift_alert() {
    let dir = tempfile::tempdir().unwrap();
    // Passes run only after ingest (debounced), so each is caused by what the test sends.
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(
        &config,
        "[alerts]\ndebounce_ms = 50\nevaluation_interval_seconds = 3600\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    let mut r = StdRng::seed_from_u64(11);
    put_reference(&server, "inputs", &mut r);
    let (status, body) = server.post(
        "/v1/models/inputs/rules",
        &json!({"name": "inputs-drifted", "signal": "drift_share", "window": "1h",
                "condition": {"kind": "threshold", "op": ">", "value": 0.25},
                "decision": "retrain", "severity": "warning"})
        .to_string(),
    );
    assert_eq!(status, 201, "{body}");
    for h in 0..3 {
        send_hour(&server, "inputs", &mut r, h, 80, 25.0);
    }
    let firing = poll(60, || {
        let (_, v) = server.get("/v1/alerts?model=inputs");
        // Firing, on the last of the three hours (passes run as the hours arrive).
        if v["alerts"][0]["state"] == "firing" && v["alerts"][0]["window_start"] == HOUR_2 {
            Ok(v["alerts"][0].clone())
        } else {
            Err(format!("never fired: {v}"))
        }
    });
    assert_eq!(firing["n"], 80);
    // A new hour begins with 40 events whose features are all null: enough rows for the
    // rule's min_sample, but no feature has the drift test's 30 valid values, so the share of
    // drifted features is of nothing. Before, it read as 0 % and resolved the alert.
    let preds: Vec<Value> = (0..40)
        .map(|i| {
            json!({"request_id": format!("null-{i}"), "timestamp": ts(START + 3 * 3600 + i * 10),
                "features": {"age": null, "country": null}, "prediction": 1, "score": 0.7})
        })
        .collect();
    server.post_ok("/v1/models/inputs/predictions", preds);
    let sent = modelwatch_core::Timestamp::now();
    let (_, drift) = server.get("/v1/models/inputs/drift?window=1h&from=2026-01-01T03:00:00Z");
    assert_eq!(drift["windows"][0]["rows"], 40, "{drift}");
    assert_eq!(drift["windows"][0]["evaluated_features"], 0, "{drift}");
    assert_eq!(drift["windows"][0]["partial"], true, "{drift}");
    let after = evaluated_after(&server, sent);
    assert_eq!(after["state"], "firing", "{after}");
    assert_eq!(after["window_start"], HOUR_2, "{after}");
}
