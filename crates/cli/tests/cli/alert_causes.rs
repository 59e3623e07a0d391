//! An F1 alert's likely causes, end to end against the real binary (issue 25, section 3): a
//! day whose `amount` drifted above everything the reference saw, and where the model is
//! mostly wrong on large amounts paid through the app. The alert that fires ranks `amount`
//! first and names `amount ≥ … & channel = app` as the worst segment, with its interval; the
//! same ranking is in `GET /v1/alerts/{fingerprint}`, the webhook's body, Slack's text (three
//! causes) and the alerts page; it is computed once, not on every evaluation. A model whose
//! day looks like its reference fires nothing, so it has no causes.

use crate::alerts::start_receiver;
use crate::common::{poll, Server};
use serde_json::{json, Value};

/// A uniform number in [0, 1) from `(i, salt)` (splitmix64): rows without a pattern in `i`.
fn u(i: u64, salt: u64) -> f64 {
    let mut z = i
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(salt.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// One row: (features, prediction, label). `drifted`: half the amounts are 200–400, above the
/// reference's 10–100, and large amounts paid through the app are predicted wrong 85 % of the
/// time; every other row 8 %.
fn row(i: u64, drifted: bool) -> (Value, u8, u8) {
    let amount = if drifted && u(i, 1) < 0.5 {
        200.0 + 200.0 * u(i, 2)
    } else {
        10.0 + 90.0 * u(i, 2)
    };
    let channel = ["web", "app", "pos"][(3.0 * u(i, 3)) as usize];
    let age = (20.0 + 50.0 * u(i, 4)).round();
    let region = ["north", "south", "east", "west"][(4.0 * u(i, 5)) as usize];
    let label = u8::from(u(i, 6) < 0.4);
    let wrong = if amount > 200.0 && channel == "app" {
        u(i, 7) < 0.85
    } else {
        u(i, 7) < 0.08
    };
    let prediction = if wrong { 1 - label } else { label };
    let features = json!({"amount": (amount * 100.0_f64).round() / 100.0, "channel": channel,
                          "age": age, "region": region});
    (features, prediction, label)
}

fn score(prediction: u8) -> f64 {
    if prediction == 1 {
        0.8
    } else {
        0.2
    }
}

fn put_reference(s: &Server, model: &str) {
    let body: String = (0..2000u64)
        .map(|i| {
            let (features, prediction, label) = row(1_000_000 + i, false);
            json!({"features": features, "prediction": prediction,
                   "score": score(prediction), "label": label})
            .to_string()
                + "\n"
        })
        .collect();
    s.put_reference(model, "", "application/x-ndjson", body);
}

/// A day of 3000 predictions and their labels.
fn send_day(s: &Server, model: &str, drifted: bool) {
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for i in 0..3000u64 {
        let (features, prediction, label) = row(i, drifted);
        let id = format!("{model}-{i}");
        let ts = format!(
            "2026-11-20T{:02}:{:02}:{:02}Z",
            (i / 125) % 24,
            (i / 2) % 60,
            i % 60
        );
        preds.push(
            json!({"request_id": id, "timestamp": ts, "features": features,
                          "prediction": prediction, "score": score(prediction)}),
        );
        labels.push(json!({"request_id": id, "label": label}));
    }
    for (path, rows) in [("predictions", preds), ("labels", labels)] {
        let (st, out) = s.post(
            &format!("/v1/models/{model}/{path}"),
            &Value::from(rows).to_string(),
        );
        assert_eq!(st, 200, "{out}");
    }
}

const RULE: &str = r#"
name = "f1-below-reference"
signal = "f1"
window = "1d"
condition = { kind = "baseline", direction = "below", relative = 0.1 }
decision = "retrain"
severity = "critical"
"#;

#[test]
fn a_firing_f1_alert_ranks_the_drifted_feature_first_and_names_the_worst_segment() {
    let recv = start_receiver();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[alerts]\ndebounce_ms = 50\nevaluation_interval_seconds = 3600\n\
             [alerts.notifiers.hook]\nkind = \"webhook\"\nurl = \"{0}/hook\"\n\
             [alerts.notifiers.slack]\nkind = \"slack\"\nurl = \"{0}/slack\"\n\
             [[models.payments.rules]]\n{RULE}\n[[models.steady.rules]]\n{RULE}",
            recv.url
        ),
    )
    .unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
        &[],
    );
    for model in ["payments", "steady"] {
        put_reference(&s, model);
    }
    send_day(&s, "steady", false);
    send_day(&s, "payments", true);

    let alert = poll(60, || {
        let (_, out) = s.get("/v1/alerts?model=payments&state=firing");
        out["alerts"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .ok_or_else(|| format!("no firing alert: {out}"))
    });
    let fp = alert["fingerprint"].as_str().unwrap().to_owned();
    let (status, one) = s.get(&format!("/v1/alerts/{fp}"));
    assert_eq!(status, 200, "{one}");
    let causes = &one["alert"]["causes"];
    assert_eq!(causes, &alert["causes"], "the list and the alert agree");
    assert_eq!(causes["metric"], "f1");
    assert_eq!(causes["importance"], "error_correlation");
    assert_eq!(causes["labelled_rows"], 3000);
    assert_eq!(causes["sampled_rows"], 3000);
    assert_eq!(causes["window_start"], "2026-11-20T00:00:00Z");

    // The drifted feature first, and why.
    let features = causes["features"].as_array().unwrap();
    let names: Vec<&str> = features
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "amount", "{causes}");
    let amount = &features[0];
    assert_eq!(amount["drifted"], true);
    assert_eq!(amount["importance_measure"], "correlation_ratio");
    // The errors grow with the amount: Spearman's correlation says so beside it.
    assert!(amount["error_spearman"].as_f64().unwrap() > 0.1, "{amount}");
    assert!(amount["importance"].as_f64().unwrap() > 0.2, "{amount}");
    let reason = amount["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("amount: drift p=")
            && reason.contains("PSI")
            && reason.contains("importance"),
        "{reason}"
    );
    // `channel` goes with the errors but did not drift: ranked lower.
    let channel = features.iter().find(|f| f["feature"] == "channel").unwrap();
    assert_eq!(channel["importance_measure"], "correlation_ratio");
    assert_eq!(channel["drifted"], false);
    assert!(channel["importance"].as_f64().unwrap() > 0.2, "{channel}");
    let scores: Vec<f64> = features
        .iter()
        .map(|f| f["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // The worst segment: large amounts through the app, with a bootstrap interval for F1.
    let worst = &causes["segments"][0];
    let mut on: Vec<&str> = worst["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["feature"].as_str().unwrap())
        .collect();
    on.sort();
    assert_eq!(on, ["amount", "channel"], "{worst}");
    let segment = worst["segment"].as_str().unwrap();
    assert!(
        segment.contains("amount ≥ ") && segment.contains("channel = app"),
        "{segment}"
    );
    let value = worst["value"].as_f64().unwrap();
    assert!(value < 0.3, "{worst}");
    assert!(worst["rows"].as_u64().unwrap() >= causes["min_segment_rows"].as_u64().unwrap());
    let ci = &worst["interval"];
    assert_eq!(ci["method"], "bootstrap");
    assert!(ci["low"].as_f64().unwrap() <= value && value <= ci["high"].as_f64().unwrap());
    let drops: Vec<f64> = causes["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["drop_lower_bound"].as_f64().unwrap())
        .collect();
    assert!(
        drops.windows(2).all(|w| w[0] >= w[1]),
        "worst first: {drops:?}"
    );

    // The webhook carries the same causes; Slack, the top three and the worst segment.
    let hook = recv.wait_for("/hook", 1, |c| c.body["status"] == "firing");
    assert_eq!(hook[0].body["causes"], *causes);
    let slack = recv.wait_for("/slack", 1, |c| c.body["text"].as_str().is_some());
    let text = slack[0].body["text"].as_str().unwrap();
    assert!(text.contains("Likely causes:\n1. amount: drift"), "{text}");
    assert!(text.contains("\n3. ") && !text.contains("\n4. "), "{text}");
    assert!(
        text.contains(&format!("Worst segment: {segment} (f1 ")),
        "{text}"
    );

    // The alerts page shows the ranking.
    let (status, html, _) = s.get_text("/models/payments/alerts");
    assert_eq!(status, 200);
    assert!(
        html.contains("data-cause-feature=\"amount\" data-rank=\"1\""),
        "{html}"
    );
    let escaped = segment.replace('&', "&amp;");
    assert!(
        html.contains(&format!("data-segment=\"{escaped}\"")),
        "{html}"
    );

    // Computed once: a later evaluation (more rows of the day) keeps the firing's causes.
    let evaluated = one["alert"]["evaluated_at"].clone();
    let more: Vec<Value> = (0..50u64)
        .map(|i| {
            let (features, prediction, _) = row(90_000 + i, true);
            json!({"request_id": format!("late-{i}"), "timestamp": "2026-11-20T23:30:00Z",
                   "features": features, "prediction": prediction, "score": score(prediction)})
        })
        .collect();
    let (st, out) = s.post(
        "/v1/models/payments/predictions",
        &Value::from(more).to_string(),
    );
    assert_eq!(st, 200, "{out}");
    let later = poll(30, || {
        let (_, out) = s.get(&format!("/v1/alerts/{fp}"));
        if out["alert"]["evaluated_at"] != evaluated {
            Ok(out)
        } else {
            Err(format!("not evaluated again: {out}"))
        }
    });
    assert_eq!(later["alert"]["causes"], *causes);

    // The model whose day looks like its reference fires nothing: no causes anywhere.
    let (_, steady) = s.get("/v1/alerts?model=steady");
    assert_eq!(steady["alerts"], json!([]), "{steady}");
    let (status, missing) = s.get("/v1/alerts/0000000000000000");
    assert_eq!(status, 404, "{missing}");
    assert!(missing["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("0000000000000000")));
}
