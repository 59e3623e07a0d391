//! The dashboard, the report and the demo, through the real binary on a real socket: pages
//! render from real data, user strings are escaped, bad parameters get a 400 page, the report
//! holds no URL and its numbers are the API's, the demo drifts and decays within a minute.
//! (The browser tests, in headless Chromium, are in tests/browser.)

use crate::common;

use common::{client, decode, modelwatch, poll, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const XSS: &str = "<script>alert(1)</script>";
const MODEL: &str = "credit";

fn features(r: &mut StdRng, shift: f64) -> Value {
    let country = ["DE", "FR", "US"][(r.random::<f64>() * 3.0) as usize];
    json!({"age": 30.0 + 20.0 * r.random::<f64>() + shift, "country": country, XSS: if r.random::<f64>() < 0.5 { "a" } else { "b" }})
}

/// A model with a labelled reference and 48 hours of labelled predictions whose `age` drifts
/// in the second day.
fn seed(server: &Server) {
    let mut r = StdRng::seed_from_u64(42);
    let mut reference = String::new();
    for _ in 0..600 {
        let score = r.random::<f64>();
        let label = u8::from(r.random::<f64>() < score);
        let row = json!({"features": features(&mut r, 0.0), "prediction": u8::from(score >= 0.5), "score": score, "label": label});
        reference.push_str(&row.to_string());
        reference.push('\n');
    }
    let start = 1_767_225_600; // 2026-01-01T00:00:00Z
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for h in 0..48 {
        for i in 0..60 {
            let id = format!("r-{h}-{i}");
            let score = r.random::<f64>();
            let label = u8::from(r.random::<f64>() < if h >= 24 { 0.5 } else { score });
            let ts = modelwatch_core::Timestamp::from_secs(start + h * 3600 + i * 50);
            preds.push(json!({
                "request_id": id, "timestamp": ts.to_rfc3339(),
                "model_version": if h >= 36 { "v2" } else { "v1" },
                "features": features(&mut r, if h >= 24 { 25.0 } else { 0.0 }),
                "prediction": u8::from(score >= 0.5), "score": score, "latency_ms": 5.0 + 10.0 * r.random::<f64>(),
            }));
            labels.push(json!({"request_id": id, "label": label}));
        }
    }
    server.post_ok(&format!("/v1/models/{MODEL}/predictions"), preds);
    server.post_ok(&format!("/v1/models/{MODEL}/labels"), labels);
    let kpis: Vec<Value> = (0..48)
        .map(|h| {
            let ts = modelwatch_core::Timestamp::from_secs(start + h * 3600 + 60);
            json!({"name": "fraud_loss_eur", "value": 100.0 + h as f64, "timestamp": ts.to_rfc3339()})
        })
        .collect();
    server.post_ok(&format!("/v1/models/{MODEL}/kpis"), kpis);
    server.put_reference(MODEL, "", "application/x-ndjson", reference);
}

#[test]
fn pages_render_real_data_and_escape_user_strings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // Before any model: the overview says how to start.
    let (status, html, _) = server.get_text("/");
    assert_eq!(status, 200);
    assert!(html.contains("modelwatch demo"), "{html}");
    seed(&server);

    let (status, html, headers) = server.get_text("/?range=all&window=1d");
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(html.contains(&format!("data-model=\"{MODEL}\"")), "{html}");
    assert!(html.contains("accuracy"));

    let (status, html, _) = server.get_text(&format!("/models/{MODEL}?range=all&window=1h"));
    assert_eq!(status, 200);
    for chart in [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "volume",
        "latency",
        "kpi:fraud_loss_eur",
    ] {
        assert!(html.contains(&format!("data-chart=\"{chart}\"")), "{chart}");
    }
    // The reference is scored and labelled: the label-free estimate with its band is drawn
    // beside the realized accuracy.
    assert!(html.contains(
        "data-series=\"estimated accuracy|estimated accuracy ± 3σ|accuracy|accuracy 95% CI|baseline\""
    ));
    // 48 hourly windows with events, one point each.
    assert!(html.contains("data-windows=\"48\""), "48 windows");
    assert!(html.contains("<polyline"));
    assert!(html.contains("data-panel=\"alerts\""));

    for view in [
        "drift", "quality", "segments", "versions", "feedback", "alerts", "jobs",
    ] {
        let (status, html, _) = server.get_text(&format!(
            "/models/{MODEL}/{view}?range=all&window=1h&segment=country"
        ));
        assert_eq!(status, 200, "{view}: {html}");
        assert!(!html.contains(XSS), "{view}: the feature name is markup");
        assert!(!html.contains("<script"), "{view}: a script element");
        if view == "drift" || view == "quality" {
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{view}: the feature name is shown as text"
            );
        }
    }
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}/drift?range=all&window=1d"));
    // age drifts on the second day: a dark cell in the heatmap.
    assert!(html.contains("DRIFTED"), "no drifted cell");
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}/versions?range=all"));
    assert!(html.contains("data-version=\"v1\"") && html.contains("data-version=\"v2\""));
    let (_, html, _) = server.get_text(&format!(
        "/models/{MODEL}/segments?range=all&segment=country"
    ));
    for c in ["DE", "FR", "US"] {
        assert!(html.contains(&format!("data-segment=\"{c}\"")), "{c}");
    }
    // A slice shows its own totals (it was a blank table), as many predictions as the API's.
    let (_, html, _) = server.get_text(&format!(
        "/models/{MODEL}/segments?range=all&segment=country:DE"
    ));
    assert!(html.contains("Segment country:DE"), "{html}");
    let (_, api) = server.get(&format!(
        "/v1/models/{MODEL}/metrics?window=1d&segment=country:DE"
    ));
    let predictions: u64 = api["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["predictions"].as_u64().unwrap())
        .sum();
    assert!(predictions > 0, "{api}");
    let shown: u64 = html
        .split("<tr data-segment=\"country:DE\">")
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = row.split("<td class=\"num\">").collect();
            cells[1].split('<').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(shown, predictions, "{html}");
}

/// The model's alerts of `GET /v1/alerts?model=` by rule name.
fn alerts_by_rule(server: &Server, model: &str) -> std::collections::BTreeMap<String, Value> {
    let (status, body) = server.get(&format!("/v1/alerts?model={model}"));
    assert_eq!(status, 200, "{body}");
    body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["rule"].as_str().unwrap().to_string(), a.clone()))
        .collect()
}

#[test]
fn alerts_panel_shows_the_apis_alerts_and_history_and_the_overview_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    seed(&server);

    // No rule yet: the panel says so and how to add one; the overview counts 0.
    let (status, html, _) = server.get_text(&format!("/models/{MODEL}/alerts?range=all"));
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-panel=\"alerts\" data-open-alerts=\"0\" data-rules=\"0\""));
    assert!(html.contains("No alerts."), "{html}");
    assert!(html.contains(&format!("POST /v1/models/{MODEL}/rules")));
    let (_, html, _) = server.get_text("/?range=all");
    assert!(html.contains("data-open-alerts=\"0\""), "{html}");

    // Day 1's accuracy is about 0.75, day 2's about 0.5 (labels are coin flips).
    let floor = |name: &str, for_: &str| {
        json!({"name": name, "signal": "accuracy",
               "condition": {"kind": "threshold", "op": "<", "value": 0.65},
               "decision": "retrain", "severity": "critical", "window": "1d", "for": for_,
               "description": format!("accuracy under 0.65 {XSS}")})
    };
    for rule in [
        floor("accuracy-floor", "0"),
        // Holds too, but must hold for an hour first: pending for the whole test.
        floor("accuracy-floor-slow", "1h"),
        // Latencies are 5 to 15 ms: never holds.
        json!({"name": "latency-ceiling", "signal": "latency_p95",
               "condition": {"kind": "threshold", "op": ">", "value": 1000},
               "decision": "review", "severity": "warning", "window": "1h"}),
        // A feature named like a script, in a rule's signal: shown as text.
        json!({"name": "script-nulls", "signal": format!("null_rate:{XSS}"),
               "condition": {"kind": "threshold", "op": ">", "value": 0.5},
               "decision": "data-incident", "severity": "info", "window": "1d"}),
    ] {
        let (status, body) = server.post(&format!("/v1/models/{MODEL}/rules"), &rule.to_string());
        assert_eq!(status, 201, "{body}");
    }
    let alerts = poll(30, || {
        let a = alerts_by_rule(&server, MODEL);
        let state = |r: &str| a.get(r).map(|x| x["state"].as_str().unwrap().to_string());
        if state("accuracy-floor").as_deref() == Some("firing")
            && state("accuracy-floor-slow").as_deref() == Some("pending")
        {
            Ok(a)
        } else {
            Err(format!("alerts: {a:?}"))
        }
    });
    assert!(!alerts.contains_key("latency-ceiling"), "{alerts:?}");
    let firing = &alerts["accuracy-floor"];
    let value = firing["value"].as_f64().unwrap();
    assert!((0.4..0.6).contains(&value), "{firing}");

    let (status, html, _) = server.get_text(&format!("/models/{MODEL}/alerts?range=all"));
    assert_eq!(status, 200);
    assert!(
        html.contains("data-panel=\"alerts\" data-open-alerts=\"2\" data-rules=\"4\""),
        "{html}"
    );
    // The firing alert's row: its state, rule, the API's value, the rule's threshold,
    // severity and decision, its window.
    let row = html
        .split("<tr ")
        .find(|r| r.starts_with("data-alert-state=\"firing\" data-rule=\"accuracy-floor\""))
        .unwrap_or_else(|| panic!("no firing row: {html}"));
    assert!(
        row.contains(&format!("data-value=\"{}\"", firing["value"])),
        "{row}"
    );
    assert!(
        row.contains(&modelwatch_dashboard::data::short(value)),
        "{row}"
    );
    assert!(row.contains("&lt; 0.65"), "{row}");
    assert!(row.contains("critical") && row.contains("retrain"), "{row}");
    assert!(
        row.contains("1d") && row.contains("2026-01-02 00:00 → 2026-01-03 00:00 UTC"),
        "{row}"
    );
    assert!(row.contains(
        firing["summary"]
            .as_str()
            .unwrap()
            .replace('<', "&lt;")
            .as_str()
    ));
    assert!(html.contains("data-alert-state=\"pending\" data-rule=\"accuracy-floor-slow\""));
    assert!(html.contains("fires once it has held for 1h"));
    // The history, newest first, as GET /v1/alerts/history has it.
    let (_, hist) = server.get(&format!("/v1/alerts/history?model={MODEL}"));
    let transitions: Vec<(String, String)> = hist["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["transition"].as_str().unwrap().to_string(),
                h["alert"]["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let shown: Vec<(String, String)> = html
        .split("<tr data-transition=\"")
        .skip(1)
        .map(|r| {
            let (t, rest) = r.split_once('"').unwrap();
            let rule = rest
                .split("data-rule=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (t.to_string(), rule.to_string())
        })
        .collect();
    assert_eq!(shown, transitions);
    assert!(shown.contains(&("firing".into(), "accuracy-floor".into())));
    // Every rule is listed; the user's strings are text.
    for r in [
        "accuracy-floor",
        "accuracy-floor-slow",
        "latency-ceiling",
        "script-nulls",
    ] {
        assert!(html.contains(&format!("<tr data-rule=\"{r}\"")), "{r}");
    }
    assert!(!html.contains(XSS) && !html.contains("<script"));
    assert!(html.contains("null_rate:&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("accuracy under 0.65 &lt;script&gt;"));

    // The model page says what fires at the top, and the Alerts tab counts them.
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}?range=all"));
    assert!(html.contains("data-panel=\"alert-banner\" data-open-alerts=\"2\""));
    assert!(html.contains("class=\"count firing\" data-open-alerts=\"2\""));
    assert!(html.contains("data-alert-state=\"firing\" data-rule=\"accuracy-floor\""));
    // The overview counts pending and firing alerts.
    let (_, html, _) = server.get_text("/?range=all");
    assert!(
        html.contains("data-open-alerts=\"2\"") && html.contains("1 firing, 1 pending"),
        "{html}"
    );

    // The rule goes: its alert is resolved, the counts follow, the history says so.
    let r = client()
        .delete(format!(
            "{}/v1/models/{MODEL}/rules/accuracy-floor",
            server.url
        ))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    poll(30, || {
        let a = alerts_by_rule(&server, MODEL);
        match a["accuracy-floor"]["state"].as_str() {
            Some("resolved") => Ok(()),
            s => Err(format!("state {s:?}")),
        }
    });
    let (_, html, _) = server.get_text("/?range=all");
    assert!(
        html.contains("data-open-alerts=\"1\"") && html.contains("0 firing, 1 pending"),
        "{html}"
    );
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}/alerts?range=all"));
    assert!(html.contains("data-open-alerts=\"1\" data-rules=\"3\""));
    assert!(html.contains("<tr data-transition=\"resolved\" data-rule=\"accuracy-floor\""));
    assert!(!html.contains("data-alert-state=\"firing\""));
}

#[test]
fn bad_parameters_get_a_clear_error_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    seed(&server);
    for (path, status, words) in [
        (format!("/models/{MODEL}?window=forever"), 400, "window"),
        (format!("/models/{MODEL}?range=yesterday"), 400, "range"),
        (format!("/models/{MODEL}?from=soon"), 400, "from"),
        (
            format!("/models/{MODEL}?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"),
            400,
            "before",
        ),
        (
            format!("/models/{MODEL}?window=1m&range=90d"),
            400,
            "windows",
        ),
        (format!("/models/{MODEL}/drift?colour=red"), 400, "colour"),
        ("/?window=%ZZ".to_string(), 400, ""),
        ("/models/bad%20name!".to_string(), 400, "model"),
        ("/models/nosuch".to_string(), 404, "nosuch"),
        (format!("/models/{MODEL}/nosuchview"), 404, "nosuchview"),
    ] {
        let (got, html, headers) = server.get_text(&path);
        assert_eq!(got, status, "{path}: {html}");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(
            html.contains(&format!("data-status=\"{status}\"")),
            "{path}"
        );
        assert!(html.contains(words), "{path}: {html}");
    }
    // The report's data is JSON, with the API's error shape.
    let (status, body) = server.get(&format!("/models/{MODEL}/report.json?window=soon"));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_query", "{body}");
    let (status, body) = server.get("/models/nosuch/report.json");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn report_is_standalone_and_its_numbers_are_the_apis() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    seed(&server);
    let html = out.path().join("report.html");
    let json = out.path().join("report.json");
    let png = out.path().join("png");
    let (ok, _, err) = modelwatch(&[
        "report",
        "--model",
        MODEL,
        "--server",
        &server.url,
        "--window",
        "1d",
        "--range",
        "all",
        "--out",
        html.to_str().unwrap(),
        "--out",
        json.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let span = &data["span"];
    let q = format!(
        "window=1d&from={}&to={}",
        span["from"].as_str().unwrap(),
        span["to"].as_str().unwrap()
    );
    for section in ["metrics", "drift", "quality", "feedback"] {
        let (status, api) = server.get(&format!("/v1/models/{MODEL}/{section}?{q}"));
        assert_eq!(status, 200, "{api}");
        if let Some(d) = common::difference(&data[section], &api, section) {
            panic!("the report's {d}");
        }
    }
    assert_eq!(data["metrics"]["windows"].as_array().unwrap().len(), 2);

    let text = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "http:", "https:", "//", "src=", "<link", "<script", "@import", "url(",
    ] {
        // `//` may not appear at all: no protocol-relative URL either.
        assert!(!text.contains(needle), "the report contains {needle:?}");
    }
    // The numbers shown are the API's: each day's accuracy, as printed in the table cards.
    let last = data["metrics"]["windows"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|w| w["accuracy"]["status"] == "defined")
        .unwrap();
    let acc = last["accuracy"]["value"].as_f64().unwrap();
    assert!(
        text.contains(&format!("{acc:.4}")),
        "accuracy {acc:.4} not shown"
    );
    assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let pngs: Vec<_> = std::fs::read_dir(&png).unwrap().collect();
    assert!(pngs.len() >= 8, "{} charts", pngs.len());
    let bytes = std::fs::read(png.join("accuracy.png")).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    // From the data directory, once the server is gone: the same numbers.
    drop(server);
    let json2 = out.path().join("offline.json");
    let (ok, _, err) = modelwatch(&[
        "report",
        "--model",
        MODEL,
        "--data",
        dir.path().to_str().unwrap(),
        "--window",
        "1d",
        "--range",
        "all",
        "--out",
        json2.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let offline: Value = serde_json::from_str(&std::fs::read_to_string(&json2).unwrap()).unwrap();
    for section in ["metrics", "drift"] {
        if let Some(d) = common::difference(&offline[section], &data[section], section) {
            panic!("offline: {d}");
        }
    }

    let (ok, _, err) = modelwatch(&["report", "--model", MODEL, "--out", "x.txt"]);
    assert!(!ok && err.contains(".html or a .json"), "{err}");
}

#[test]
fn demo_drifts_decays_and_fires_an_alert_within_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["demo", "--addr", "127.0.0.1:0", "--days", "4", "--data"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let server = Server::attach(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, m) = server.get("/v1/models/fraud-demo/metrics?window=1h");
        let (_, d) = server.get("/v1/models/fraud-demo/drift?window=1d");
        // Accuracy pooled over the first labelled day against the last labelled half-day, from
        // hourly windows: calendar days would make the first or the last day a few minutes'
        // worth near midnight UTC (the history starts at this hour four days ago), and 58 rows
        // at 67 % failed this test at 23:35.
        let labelled: Vec<(f64, f64)> = m["windows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| {
                let n = w["accuracy"]["n"].as_u64().filter(|&n| n > 0)? as f64;
                Some((n, n * w["accuracy"]["value"].as_f64()?))
            })
            .collect();
        let pooled = |hours: &[(f64, f64)]| {
            let (n, correct) = hours
                .iter()
                .fold((0.0, 0.0), |(n, c), (hn, hc)| (n + hn, c + hc));
            (n >= 300.0).then(|| correct / n)
        };
        let first = pooled(&labelled[..labelled.len().min(24)]);
        let last = pooled(&labelled[labelled.len().saturating_sub(12)..]);
        let accuracies = [first, last];
        let drifted = d["windows"]
            .as_array()
            .and_then(|w| w.last())
            .and_then(|w| w["drifted_features"].as_u64())
            .unwrap_or(0);
        let decayed =
            labelled.len() >= 36 && matches!((first, last), (Some(f), Some(l)) if l + 0.1 < f);
        if decayed && drifted >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after a minute: accuracy {accuracies:?}, drifted features {drifted}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // fraud-demo's shadow challenger is paired with the served v1 on the same requests, and
    // ranks better.
    let c = server.get_ok("/v1/models/fraud-demo/compare?champion=v1&challenger=v3&window=1d");
    assert_eq!(c["mode"], "paired");
    assert!(
        c["overall"]["paired_labelled"].as_u64().unwrap() > 1000,
        "{}",
        c["overall"]
    );
    assert_eq!(c["decision"]["verdict"], "promote", "{}", c["decision"]);
    // Labels come late: the newest window has fewer than the oldest.
    let (_, m) = server.get("/v1/models/fraud-demo/metrics?window=1h");
    let w = m["windows"].as_array().unwrap();
    let first = w[0]["label_coverage"].as_f64().unwrap();
    let last = w.last().unwrap()["label_coverage"].as_f64().unwrap();
    assert!(last < first, "coverage {first} then {last}");
    let (status, html, _) = server.get_text("/models/fraud-demo");
    assert_eq!(status, 200);
    assert!(html.contains("data-chart=\"accuracy\""));

    // The demo made its rules over the API, on both models.
    for model in ["fraud-demo", "churn-demo"] {
        let (status, body) = server.get(&format!("/v1/models/{model}/rules"));
        assert_eq!(status, 200, "{body}");
        let names: Vec<&str> = body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "accuracy-below-reference",
                "client-probing",
                "concept-changed",
                "f1-below-reference",
                "inputs-drifted",
                "inputs-drifted-together",
                "inputs-told-apart",
                "latency-slo-burn",
                "unfair-to-a-group",
                "unusual-inputs"
            ],
            "{model}"
        );
    }
    // fraud-demo's rules fire: the drift and F1 ones at once, the accuracy one after its
    // `for` of 20 s. Bounded at 90 s from the start of the demo.
    let mut seen = std::collections::BTreeMap::new();
    let firing = poll(90u64.saturating_sub(started.elapsed().as_secs()), || {
        let a = alerts_by_rule(&server, "fraud-demo");
        for (rule, x) in &a {
            let state = x["state"].as_str().unwrap().to_string();
            seen.entry((rule.clone(), state))
                .or_insert_with(|| started.elapsed().as_secs_f64());
        }
        let fires = |r: &str| a.get(r).is_some_and(|x| x["state"] == "firing");
        if fires("inputs-drifted")
            && fires("inputs-drifted-together")
            && fires("concept-changed")
            && fires("inputs-told-apart")
            && fires("accuracy-below-reference")
            && fires("f1-below-reference")
            && fires("unfair-to-a-group")
            && fires("latency-slo-burn")
            && fires("unusual-inputs")
            && fires("client-probing")
        {
            Ok(a)
        } else {
            Err(format!("fraud-demo's alerts: {a:?}"))
        }
    });
    eprintln!("demo alert states first seen, seconds after the demo started: {seen:?}");
    let acc = &firing["accuracy-below-reference"];
    let (value, baseline) = (
        acc["value"].as_f64().unwrap(),
        acc["baseline"].as_f64().unwrap(),
    );
    assert!(value < 0.9 * baseline, "{acc}");
    assert!(firing["inputs-drifted"]["value"].as_f64().unwrap() > 0.25);
    // ADWIN flagged at least one change in the error stream over the last three days.
    assert!(firing["concept-changed"]["value"].as_f64().unwrap() > 0.0);
    assert!(firing["inputs-told-apart"]["value"].as_f64().unwrap() > 0.65);
    // The F1 alert carries its likely causes: `amount`, whose drift drives the drop, first,
    // and the worst segment is one of its slices. The demo's predictions carry their
    // attributions, so those weigh the features (not the error correlation).
    let causes = &firing["f1-below-reference"]["causes"];
    assert_eq!(causes["importance"], "attributions", "{causes}");
    assert_eq!(causes["features"][0]["feature"], "amount", "{causes}");
    assert_eq!(causes["features"][0]["drifted"], true, "{causes}");
    let worst = &causes["segments"][0];
    assert!(
        worst["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["feature"] == "amount")),
        "{causes}"
    );
    // Women are cleared at under four fifths of men's rate by the last day, not on the first.
    assert!(firing["unfair-to-a-group"]["value"].as_f64().unwrap() < 0.8);
    // The outliers: the drifted rows, and client scraper-7 probing the threshold.
    let (_, o) = server.get("/v1/models/fraud-demo/outliers?window=1d");
    let last = o["windows"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["probing"][0]["value"], "scraper-7", "{last}");
    let (_, f) = server.get("/v1/models/fraud-demo/fairness?window=1d");
    let days = f["attributes"][0]["windows"].as_array().unwrap();
    // The first day with enough of each group: near midnight UTC the history's first calendar
    // day holds minutes, too few to judge (`not_evaluated`).
    let first = days
        .iter()
        .find(|d| d["four_fifths_rule"] != "not_evaluated")
        .unwrap_or_else(|| panic!("no day evaluated: {f}"));
    assert_eq!(first["four_fifths_rule"], "met", "{first}");
    // The accuracy alert was pending before it fired: its history says so, newest first.
    let (_, hist) = server.get("/v1/alerts/history?model=fraud-demo");
    let steps: Vec<(&str, &str)> = hist["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["alert"]["rule"].as_str().unwrap(),
                h["transition"].as_str().unwrap(),
            )
        })
        .filter(|(r, _)| *r == "accuracy-below-reference")
        .collect();
    assert_eq!(
        steps.last().copied(),
        Some(("accuracy-below-reference", "pending")),
        "{steps:?}"
    );
    assert!(
        steps.contains(&("accuracy-below-reference", "firing")),
        "{steps:?}"
    );
    // The healthy model trips neither.
    let churn = alerts_by_rule(&server, "churn-demo");
    assert!(
        churn
            .values()
            .all(|x| x["state"] != "firing" && x["state"] != "pending"),
        "{churn:?}"
    );
    // The dashboard shows them: the alerts panel, and the overview's counts.
    let (_, html, _) = server.get_text("/models/fraud-demo/alerts");
    for rule in [
        "inputs-drifted",
        "inputs-drifted-together",
        "concept-changed",
        "inputs-told-apart",
        "accuracy-below-reference",
        "f1-below-reference",
        "unfair-to-a-group",
        "latency-slo-burn",
        "unusual-inputs",
        "client-probing",
    ] {
        assert!(
            html.contains(&format!("data-alert-state=\"firing\" data-rule=\"{rule}\"")),
            "{rule}: {html}"
        );
    }
    let (_, html, _) = server.get_text("/");
    let row = |model: &str| {
        html.split("<tr data-model=")
            .find(|r| r.starts_with(&format!("\"{model}\"")))
            .unwrap()
            .to_string()
    };
    assert!(
        row("fraud-demo").contains("data-open-alerts=\"10\""),
        "{html}"
    );
    assert!(
        row("churn-demo").contains("data-open-alerts=\"0\""),
        "{html}"
    );
}

const READ_KEY: &str = "read-key-0123456789abcdef";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
const INGEST_KEY: &str = "ingest-key-0123456789abcdef";

/// A session cookie's value as the server makes it, for forging ones it must refuse.
fn session_token(key: &str, expires: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(format!("modelwatch dashboard session v1 {expires}").as_bytes());
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1.{expires}.{hex}")
}

#[test]
fn with_api_keys_the_dashboard_needs_a_login_and_the_api_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &[],
        &[
            ("MODELWATCH_READ_KEYS", READ_KEY),
            ("MODELWATCH_ADMIN_KEYS", ADMIN_KEY),
            ("MODELWATCH_INGEST_KEYS", INGEST_KEY),
        ],
    );
    // A browser that follows no redirect and keeps no cookie: each step is seen.
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", server.url);
    let rows: Vec<Value> = (0..40)
        .map(|i| {
            common::prediction(
                &format!("k-{i}"),
                "2026-11-01T10:00:00Z",
                30.0 + i as f64,
                "DE",
            )
        })
        .collect();
    let r = browser
        .post(url(&format!("/v1/models/{MODEL}/predictions")))
        .bearer_auth(INGEST_KEY)
        .header("content-type", "application/json")
        .body(Value::Array(rows).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Without a key, every page sends the browser to the login form, which will come back.
    for (path, next) in [
        ("/", "%2F"),
        (
            "/models/credit/drift?range=all",
            "%2Fmodels%2Fcredit%2Fdrift%3Frange%3Dall",
        ),
        ("/models/credit", "%2Fmodels%2Fcredit"),
    ] {
        let r = browser.get(url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{path}");
        assert_eq!(r.headers()["location"], format!("/login?next={next}"));
    }
    // The report's JSON is read by programs: the API's 401.
    let (status, body) = decode(
        browser
            .get(url(&format!("/models/{MODEL}/report.json")))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");

    let r = browser
        .get(url("/login?next=%2Fmodels%2Fcredit%3Frange%3Dall"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("form-action 'self'"));
    let html = r.text().unwrap();
    assert!(
        html.contains("<form class=\"login\" method=\"post\" action=\"/login\">"),
        "{html}"
    );
    assert!(html.contains("name=\"next\" value=\"/models/credit?range=all\""));
    assert!(html.contains("type=\"password\" name=\"key\""));

    let login = |key: &str, next: &str| {
        browser
            .post(url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("key={}&next={}", key, next))
            .send()
            .unwrap()
    };
    // A wrong key, an ingest key, no key: refused, no cookie.
    for key in ["not-a-key-0123456789abcdef", INGEST_KEY, ""] {
        let r = login(key, "%2F");
        assert_eq!(r.status().as_u16(), 401, "{key}");
        assert!(r.headers().get("set-cookie").is_none(), "{key}");
        let html = r.text().unwrap();
        assert!(html.contains("data-login-error"), "{key}: {html}");
        assert!(html.contains("not a read or admin key"), "{key}");
    }
    // The read key: a cookie for the dashboard, and back where the browser was going.
    let r = login(READ_KEY, "%2Fmodels%2Fcredit%3Frange%3Dall");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/models/credit?range=all");
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{attr}: {set}");
    }
    assert!(!set.contains(READ_KEY), "the cookie holds the key: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("modelwatch_session=v1."), "{cookie}");

    let get = |path: &str, cookie: &str| {
        let r = browser
            .get(url(path))
            .header("cookie", cookie)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    // The cookie opens every page.
    let (status, html) = get("/?range=all", &cookie);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("data-model=\"{MODEL}\"")));
    for path in [
        format!("/models/{MODEL}?range=all"),
        format!("/models/{MODEL}/alerts"),
        format!("/models/{MODEL}/quality?range=all"),
        format!("/models/{MODEL}/report.json?range=all"),
    ] {
        let (status, body) = get(&path, &cookie);
        assert_eq!(status, 200, "{path}: {body}");
    }
    // ... and no API route: those still need their header.
    for path in [
        "/v1/models",
        "/v1/alerts",
        "/metrics",
        "/v1/models/credit/metrics",
    ] {
        let (status, body) = get(path, &cookie);
        assert_eq!(status, 401, "{path}: {body}");
        let r = browser.get(url(path)).bearer_auth(READ_KEY).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let r = browser
        .post(url(&format!("/v1/models/{MODEL}/rules")))
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Cookies the server did not make, or made for another key or time, open nothing.
    let now = modelwatch_core::Timestamp::now().0 / 1_000_000;
    let mut tampered = cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    for (what, c) in [
        ("tampered", tampered),
        (
            "expired",
            format!("modelwatch_session={}", session_token(READ_KEY, now - 5)),
        ),
        (
            "made with the ingest key",
            format!(
                "modelwatch_session={}",
                session_token(INGEST_KEY, now + 3600)
            ),
        ),
        ("garbage", "modelwatch_session=v1.x.y".to_string()),
    ] {
        let r = browser.get(url("/")).header("cookie", c).send().unwrap();
        assert_eq!(r.status().as_u16(), 303, "{what}");
    }
    // One made with a read key the server has, as it would: accepted (the check is the
    // key's MAC, not a list of sessions, so it survives a restart).
    let (status, _) = get(
        "/",
        &format!("modelwatch_session={}", session_token(READ_KEY, now + 3600)),
    );
    assert_eq!(status, 200);

    // The admin key logs in too; `next` never leaves the server.
    let r = login(ADMIN_KEY, "%2F%2Fevil.example%2F");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/");
    assert!(r.headers().get("set-cookie").is_some());
    // The usual header still opens pages, with the API's rules for it.
    let r = browser.get(url("/")).bearer_auth(READ_KEY).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = browser
        .get(url("/"))
        .bearer_auth(INGEST_KEY)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Logging out forgets the cookie.
    let r = browser.post(url("/logout")).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/login");
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
}

#[test]
fn without_api_keys_there_is_nothing_to_log_in_to() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser.get(format!("{}/login", server.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/");
    let r = browser.get(format!("{}/", server.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn a_window_in_detail_shows_its_confusion_matrix_binary_and_multiclass() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // A three-class model over two days: each day's matrix is its own.
    let classes = ["bird", "cat", "dog"];
    let start = 1_767_225_600; // 2026-01-01T00:00:00Z
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for day in 0..2i64 {
        for i in 0..90i64 {
            let id = format!("m-{day}-{i}");
            let truth = classes[(i % 3) as usize];
            // Day 0 gets every fifth row wrong, day 1 every second.
            let wrong = i % if day == 0 { 5 } else { 2 } == 0;
            let predicted = if wrong {
                classes[((i + 1) % 3) as usize]
            } else {
                truth
            };
            let ts = modelwatch_core::Timestamp::from_secs(start + day * 86_400 + i * 600);
            preds.push(json!({"request_id": id, "timestamp": ts.to_rfc3339(),
                "features": {"x": i % 7}, "prediction": predicted}));
            labels.push(json!({"request_id": id, "label": truth}));
        }
    }
    let (status, body) = server.post(
        "/v1/models/animals/predictions",
        &Value::Array(preds).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.post(
        "/v1/models/animals/labels",
        &Value::Array(labels).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (_, metrics) = server.get("/v1/models/animals/metrics?window=1d");
    assert_eq!(metrics["task"], "multiclass", "{metrics}");
    for (day, at) in [(0, "2026-01-01T12:00:00Z"), (1, "2026-01-02T12:00:00Z")] {
        let (status, html, _) =
            server.get_text(&format!("/models/animals?range=all&window=1d&at={at}"));
        assert_eq!(status, 200);
        let w = &metrics["windows"][day];
        assert!(
            html.contains(&format!(
                "data-panel=\"window-detail\" data-window=\"{}\"",
                w["start"].as_str().unwrap()
            )),
            "{html}"
        );
        assert!(html.contains("data-confusion=\"multiclass\" data-classes=\"3\""));
        let cm = &w["confusion_matrix"];
        let labels = cm["labels"].as_array().unwrap();
        for (i, row) in cm["counts"].as_array().unwrap().iter().enumerate() {
            for (j, count) in row.as_array().unwrap().iter().enumerate() {
                let needle = format!(
                    "title=\"true {} predicted {}: {} of ",
                    labels[i].as_str().unwrap(),
                    labels[j].as_str().unwrap(),
                    count
                );
                assert!(html.contains(&needle), "{needle}");
            }
        }
        // A model without scores has no calibration to draw, and says so.
        assert!(html.contains("data-reliability=\"none\""));
    }
    let (_, html, _) = server.get_text("/models/animals?range=all&window=1d");
    // Without `at`: the last complete window with labels; the second day holds the last
    // event, so it is partial, and the first day is shown.
    assert!(html.contains("data-panel=\"window-detail\" data-window=\"2026-01-01T00:00:00Z\""));
}

/// The rows of the model page's change summary by metric: the row's HTML, up to its end.
fn change_rows(html: &str) -> std::collections::BTreeMap<String, String> {
    html.split("<tr data-metric=\"")
        .skip(1)
        .map(|r| {
            let (name, rest) = r.split_once('"').unwrap();
            (
                name.to_string(),
                rest.split("</tr>").next().unwrap().to_string(),
            )
        })
        .collect()
}

/// A number of the API's JSON as the page's `data-` attributes write it (empty for null).
fn attr(v: &Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        v.to_string()
    }
}

#[test]
fn model_page_and_report_show_the_apis_change_summary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    seed(&server);
    // Day 1 against day 2 (labels turn to coin flips): the page's span and the same query
    // to the API.
    let (status, html, _) = server.get_text(&format!("/models/{MODEL}?range=all&window=1d"));
    assert_eq!(status, 200, "{html}");
    let (status, api) = server.get(&format!(
        "/v1/models/{MODEL}/metrics?window=1d&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z"
    ));
    assert_eq!(status, 200, "{api}");
    let summary = &api["summary"];
    assert_eq!(summary["first_window"]["start"], "2026-01-01T00:00:00Z");
    assert_eq!(summary["last_window"]["start"], "2026-01-02T00:00:00Z");
    let metrics = summary["metrics"].as_object().unwrap();
    let rows = change_rows(&html);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        metrics.keys().collect::<Vec<_>>(),
        "one row per metric of the API's summary"
    );
    assert!(html.contains(&format!(
        "<table class=\"changes\" data-panel=\"changes\" data-metrics=\"{}\">",
        metrics.len()
    )));
    let mut significant = 0;
    for (name, m) in metrics {
        let row = &rows[name];
        for key in ["first", "last", "baseline"] {
            assert!(
                row.starts_with(&format!(" data-first=\"{}\"", attr(&m["first"])))
                    && row.contains(&format!("data-{key}=\"{}\"", attr(&m[key]))),
                "{name} {key}: {row}"
            );
        }
        for change in ["first_to_last", "baseline_to_last"] {
            let c = &m[change];
            if c["status"] == "compared" {
                assert!(
                    row.contains(&format!("data-delta=\"{}\"", c["delta"]))
                        && row.contains(&format!("data-p-value=\"{}\"", c["p_value"])),
                    "{name} {change}: {row}"
                );
            }
        }
        let c = &m["first_to_last"];
        if c["status"] != "compared" {
            continue;
        }
        // The first → last change is marked significant exactly when the API says so.
        let marked = row.split("data-p-value=").nth(1).is_some_and(|cell| {
            cell.split("</td>")
                .next()
                .unwrap()
                .contains("data-significant")
        });
        assert_eq!(marked, c["significant"] == true, "{name}: {row}");
        significant += usize::from(marked);
    }
    // Accuracy fell from about 0.75 to 0.5 on 1440 rows a day: significant, and shown.
    let acc = &metrics["accuracy"]["first_to_last"];
    assert_eq!(acc["significant"], true, "{acc}");
    assert!(acc["delta"].as_f64().unwrap() < -0.15, "{acc}");
    assert!(significant >= 1);
    let row = &rows["accuracy"];
    assert!(
        row.contains(&modelwatch_dashboard::data::short(
            metrics["accuracy"]["first"].as_f64().unwrap()
        )),
        "{row}"
    );

    // The report renders the same table from the same numbers.
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.html");
    let (ok, _, err) = modelwatch(&[
        "report",
        "--model",
        MODEL,
        "--server",
        &server.url,
        "--window",
        "1d",
        "--range",
        "all",
        "--out",
        report.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let report = std::fs::read_to_string(&report).unwrap();
    let rows = change_rows(&report);
    assert_eq!(rows.len(), metrics.len());
    assert!(rows["accuracy"].contains(&format!("data-delta=\"{}\"", acc["delta"])));
    assert!(rows["accuracy"].contains("data-significant=\"true\""));
}

/// A browser that follows no redirect: each answer is seen.
fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Posts the alerts view's acknowledge form as a browser on `origin` does.
fn post_ack(
    server: &Server,
    fingerprint: &str,
    form: &str,
    origin: &str,
    cookie: Option<&str>,
) -> reqwest::blocking::Response {
    let mut r = no_redirects()
        .post(format!(
            "{}/models/{MODEL}/alerts/{fingerprint}/ack",
            server.url
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .body(form.to_string());
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().unwrap()
}

/// Seeds the model and a rule that fires on its second day; returns the alert's fingerprint.
fn firing_alert(server: &Server) -> String {
    seed(server);
    let rule = json!({"name": "accuracy-floor", "signal": "accuracy",
        "condition": {"kind": "threshold", "op": "<", "value": 0.65},
        "decision": "retrain", "severity": "critical", "window": "1d"});
    let (status, body) = server.post(&format!("/v1/models/{MODEL}/rules"), &rule.to_string());
    assert_eq!(status, 201, "{body}");
    poll(30, || {
        let a = alerts_by_rule(server, MODEL);
        match a.get("accuracy-floor") {
            Some(x) if x["state"] == "firing" => Ok(x["fingerprint"].as_str().unwrap().to_string()),
            x => Err(format!("{x:?}")),
        }
    })
}

#[test]
fn an_alert_is_acknowledged_from_the_alerts_view() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let fp = firing_alert(&server);
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}/alerts?range=all"));
    let action = format!("/models/{MODEL}/alerts/{fp}/ack");
    assert!(
        html.contains(&format!(
            "<form class=\"ack\" method=\"post\" action=\"{action}\">"
        )),
        "{html}"
    );
    assert!(html.contains("name=\"owner\"") && html.contains("name=\"comment\""));

    // From another site: refused by the cross-site guard, nothing changes.
    let r = post_ack(
        &server,
        &fp,
        "owner=mallory&comment=x",
        "http://evil.example",
        None,
    );
    assert_eq!(r.status().as_u16(), 403);
    assert!(alerts_by_rule(&server, MODEL)["accuracy-floor"]["acknowledged"].is_null());
    // No owner: the API's message on a 400 page.
    let r = post_ack(&server, &fp, "owner=+&comment=x", &server.url, None);
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .unwrap()
        .contains("`owner`: must be 1-128 characters"));
    // An alert of no such model, or no such alert: 404.
    let r = post_ack(&server, "0000000000000000", "owner=ana", &server.url, None);
    assert_eq!(r.status().as_u16(), 404);

    // From the page itself: acknowledged, and back to the alerts view.
    let comment = format!("retraining tonight {XSS}");
    let form = format!(
        "owner=ana%40example.com&comment={}",
        modelwatch_dashboard::params::url_encode(&comment)
    );
    let r = post_ack(&server, &fp, &form, &server.url, None);
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], format!("/models/{MODEL}/alerts"));
    // The API has it, as if POST /v1/alerts/{fp}/ack had been called.
    let alert = &alerts_by_rule(&server, MODEL)["accuracy-floor"];
    assert_eq!(alert["acknowledged"]["owner"], "ana@example.com", "{alert}");
    assert_eq!(alert["acknowledged"]["comment"], comment.as_str());
    let (_, hist) = server.get(&format!("/v1/alerts/history?model={MODEL}"));
    assert_eq!(hist["history"][0]["transition"], "acknowledged", "{hist}");
    // The page shows who and what, escaped, and the history row.
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}/alerts?range=all"));
    let row = html
        .split("<tr ")
        .find(|r| r.starts_with("data-alert-state=\"firing\" data-rule=\"accuracy-floor\""))
        .unwrap();
    assert!(row.contains("data-ack-owner=\"ana@example.com\""), "{row}");
    assert!(
        row.contains("retraining tonight &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{row}"
    );
    assert!(row.contains("Re-acknowledge"));
    assert!(html.contains("<tr data-transition=\"acknowledged\" data-rule=\"accuracy-floor\""));
    assert!(!html.contains(XSS));
    // The performance view shows the acknowledgement without the form.
    let (_, html, _) = server.get_text(&format!("/models/{MODEL}?range=all"));
    assert!(html.contains("data-ack-owner=\"ana@example.com\""));
    assert!(!html.contains("<form class=\"ack\""));
}

#[test]
fn with_api_keys_only_an_admin_session_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let fp = firing_alert(&server);
    server.stop();
    // The same data with keys: the alert is still firing.
    let server = Server::start_with(
        dir.path(),
        &[],
        &[
            ("MODELWATCH_READ_KEYS", READ_KEY),
            ("MODELWATCH_ADMIN_KEYS", ADMIN_KEY),
        ],
    );
    let now = modelwatch_core::Timestamp::now().0 / 1_000_000;
    let read = format!("modelwatch_session={}", session_token(READ_KEY, now + 3600));
    let admin = format!(
        "modelwatch_session={}",
        session_token(ADMIN_KEY, now + 3600)
    );
    let acknowledged = || {
        let r = client()
            .get(format!("{}/v1/alerts?model={MODEL}", server.url))
            .bearer_auth(READ_KEY)
            .send()
            .unwrap();
        let (_, body) = decode(r);
        body["alerts"][0]["acknowledged"].clone()
    };
    // The form is on the alerts view only for those it would work for.
    let view = |cookie: Option<&str>, key: Option<&str>| {
        let mut r = no_redirects().get(format!("{}/models/{MODEL}/alerts", server.url));
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let r = r.send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().unwrap()
    };
    for (who, html, form) in [
        ("read session", view(Some(&read), None), false),
        ("read key", view(None, Some(READ_KEY)), false),
        ("admin session", view(Some(&admin), None), true),
        ("admin key", view(None, Some(ADMIN_KEY)), true),
    ] {
        assert!(
            html.contains("data-alert-state=\"firing\""),
            "{who}: {html}"
        );
        assert_eq!(html.contains("<form class=\"ack\""), form, "{who}");
        assert_eq!(html.contains("data-ack-needs=\"admin\""), !form, "{who}");
    }
    // No session: to the login, which comes back to the alerts view.
    let r = post_ack(&server, &fp, "owner=ana", &server.url, None);
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/login?next=%2Fmodels%2F{MODEL}%2Falerts")
    );
    // A read key's session reads the page but may not acknowledge.
    let r = post_ack(&server, &fp, "owner=ana", &server.url, Some(&read));
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().unwrap().contains("log in with an admin key"));
    assert!(acknowledged().is_null());
    // A read key in the header: the API's 403.
    let r = no_redirects()
        .post(format!("{}/models/{MODEL}/alerts/{fp}/ack", server.url))
        .bearer_auth(READ_KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("owner=ana")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(acknowledged().is_null());
    // An admin key's session does.
    let r = post_ack(
        &server,
        &fp,
        "owner=ana&comment=on+it",
        &server.url,
        Some(&admin),
    );
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(acknowledged()["owner"], "ana");
    assert_eq!(acknowledged()["comment"], "on it");
}
