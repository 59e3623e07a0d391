//! Alerts end to end against the real binary: rules from the config file and the API, real
//! receivers on 127.0.0.1 (an HTTP server recording webhook, Slack, PagerDuty and Alertmanager
//! calls, and an SMTP sink that lettre really talks to), silences, pending alerts, an outage of
//! the receiver, and `/metrics` read by a Prometheus text-format parser.

use crate::common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use common::{client, decode, poll, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

// ---- an HTTP receiver that records every call, and can be made to answer 500

#[derive(Clone, Debug)]
pub(crate) struct Call {
    path: String,
    headers: HeaderMap,
    raw: Vec<u8>,
    pub(crate) body: Value,
}

#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    failing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

pub(crate) struct Receiver {
    pub(crate) url: String,
    rec: Recorder,
}

async fn record(
    State(rec): State<Recorder>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if rec.failing.load(Ordering::SeqCst) {
        rec.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    rec.calls.lock().unwrap().push(Call {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
    });
    StatusCode::OK
}

pub(crate) fn start_receiver() -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let rec = Recorder::default();
    let state = rec.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(record).with_state(state);
            axum::serve(l, app).await.unwrap();
        });
    });
    Receiver { url, rec }
}

impl Receiver {
    fn calls(&self, path: &str) -> Vec<Call> {
        let c = self.rec.calls.lock().unwrap();
        c.iter().filter(|c| c.path == path).cloned().collect()
    }

    /// Makes the receiver answer 500 to every call (`true`) or record them again (`false`).
    pub(crate) fn set_failing(&self, on: bool) {
        self.rec.failing.store(on, Ordering::SeqCst);
    }

    /// The calls `path` got so far that match `pred`.
    pub(crate) fn received(&self, path: &str, pred: impl Fn(&Call) -> bool) -> Vec<Call> {
        self.calls(path).into_iter().filter(|c| pred(c)).collect()
    }

    /// Waits (polling, bounded) until `path` got `n` calls matching `pred`.
    pub(crate) fn wait_for(&self, path: &str, n: usize, pred: impl Fn(&Call) -> bool) -> Vec<Call> {
        poll(30, || {
            let got: Vec<Call> = self.calls(path).into_iter().filter(|c| pred(c)).collect();
            if got.len() >= n {
                return Ok(got);
            }
            let calls = self.rec.calls.lock().unwrap();
            Err(format!(
                "{path}: {} matching calls of {n}; all calls: {:?}",
                got.len(),
                calls.iter().map(|c| (&c.path, &c.body)).collect::<Vec<_>>()
            ))
        })
    }
}

// ---- an SMTP sink: just enough of RFC 5321 for a client to hand over a message

fn start_smtp() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let m = mails.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let m = m.clone();
            std::thread::spawn(move || {
                let _ = smtp_session(conn, &m);
            });
        }
    });
    (port, mails)
}

fn smtp_session(s: TcpStream, mails: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    w.write_all(b"220 sink ESMTP\r\n")?;
    let mut data: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if let Some(d) = data.as_mut() {
            if line == ".\r\n" {
                mails.lock().unwrap().push(std::mem::take(d));
                data = None;
                w.write_all(b"250 queued\r\n")?;
            } else {
                d.push_str(&line);
            }
            continue;
        }
        let cmd = line.to_ascii_uppercase();
        let reply: &[u8] = if cmd.starts_with("EHLO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if cmd.starts_with("DATA") {
            data = Some(String::new());
            b"354 go ahead\r\n"
        } else if cmd.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        w.write_all(reply)?;
    }
}

fn wait_mail(mails: &Mutex<Vec<String>>, needle: &str) -> String {
    poll(30, || {
        let m = mails.lock().unwrap();
        m.iter()
            .find(|m| m.contains(needle))
            .cloned()
            .ok_or_else(|| format!("no mail containing {needle:?}: {m:?}"))
    })
}

// ---- data: a binary classifier; every `flip`-th row is predicted wrong

fn reference_csv() -> String {
    let mut s = String::from("x,prediction,score,label\n");
    for i in 0..2000usize {
        let label = i % 2;
        let pred = if i % 10 == 0 { 1 - label } else { label };
        s.push_str(&format!(
            "{},{pred},{},{label}\n",
            i % 7,
            if pred == 1 { 0.8 } else { 0.2 }
        ));
    }
    s
}

fn put_reference(s: &Server, model: &str) {
    s.put_reference(model, "", "text/csv", reference_csv());
}

/// Sends `n` predictions on `day` (each `flip`-th wrong) and then their labels.
fn send_day(s: &Server, model: &str, day: &str, n: usize, flip: usize) {
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = i % 2;
        let pred = if i % flip == 0 { 1 - label } else { label };
        let id = format!("{model}-{day}-{i}");
        let ts = format!(
            "{day}T{:02}:{:02}:{:02}Z",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60
        );
        preds.push(
            json!({"request_id": id, "timestamp": ts, "model_version": "v1",
            "features": {"x": i % 7}, "prediction": pred,
            "score": if pred == 1 { 0.8 } else { 0.2 }, "latency_ms": 5.0 + (i % 10) as f64}),
        );
        labels.push(json!({"request_id": id, "label": label}));
    }
    let (st, out) = s.post(
        &format!("/v1/models/{model}/predictions"),
        &Value::from(preds).to_string(),
    );
    assert_eq!(st, 200, "{out}");
    let (st, out) = s.post(
        &format!("/v1/models/{model}/labels"),
        &Value::from(labels).to_string(),
    );
    assert_eq!(st, 200, "{out}");
}

fn wait_alerts(s: &Server, query: &str, n: usize) -> Vec<Value> {
    poll(30, || {
        let (st, out) = s.get(&format!("/v1/alerts?{query}"));
        assert_eq!(st, 200, "{out}");
        let a = out["alerts"].as_array().unwrap().clone();
        if a.len() >= n {
            Ok(a)
        } else {
            Err(format!("alerts?{query}: {out}"))
        }
    })
}

/// Waits until `/metrics` shows that `model` was evaluated; returns the text.
fn wait_evaluated(s: &Server, model: &str) -> String {
    let needle = format!("modelwatch_model_performance{{model=\"{model}\"");
    poll(30, || {
        let text = client()
            .get(format!("{}/metrics", s.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if text.contains(&needle) {
            Ok(text)
        } else {
            Err(format!("{model} never evaluated:\n{text}"))
        }
    })
}

fn config(dir: &std::path::Path, hook: &str, smtp_port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("modelwatch.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[alerts]
debounce_ms = 50
retry_min_ms = 100
retry_max_ms = 400
evaluation_interval_seconds = 3600
metrics_window = "1d"
dashboard_url = "http://dash.example:8080"

[alerts.notifiers.hook]
kind = "webhook"
url = "{hook}/hook"
secret = "s3cret-s3cret"

[alerts.notifiers.slack]
kind = "slack"
url = "{hook}/slack"

[alerts.notifiers.pd]
kind = "pagerduty"
routing_key = "rk-123"
url = "{hook}/pd"

[alerts.notifiers.am]
kind = "alertmanager"
url = "{hook}/am/"

[alerts.notifiers.mail]
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
tls = "none"
from = "modelwatch <modelwatch@example.com>"
to = ["oncall@example.com"]
{extra}
"#
        ),
    )
    .unwrap();
    path
}

/// A receiver, an SMTP sink and a server whose config points at both, plus `extra` TOML.
fn start_all(extra: &str) -> (Receiver, Arc<Mutex<Vec<String>>>, tempfile::TempDir, Server) {
    let recv = start_receiver();
    let (smtp_port, mails) = start_smtp();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &recv.url, smtp_port, extra);
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
        &[],
    );
    (recv, mails, dir, s)
}

const F1_RULE: &str = r#"
name = "f1-vs-test"
signal = "f1"
condition = { kind = "baseline", direction = "below", relative = 0.05 }
decision = "retrain"
severity = "critical"
"#;

#[test]
fn f1_drop_beyond_the_interval_notifies_every_receiver_once_then_resolves() {
    let extra = format!("[[models.fraud.rules]]\n{F1_RULE}\n[[models.steady.rules]]\n{F1_RULE}");
    let (recv, mails, _dir, s) = start_all(&extra);

    // Reference F1 ≈ 0.91; production day with every 4th row wrong: F1 = 0.80 (-12 %).
    put_reference(&s, "fraud");
    send_day(&s, "fraud", "2026-01-05", 1000, 4);
    let firing = wait_alerts(&s, "model=fraud&state=firing", 1);
    assert_eq!(firing.len(), 1, "{firing:?}");
    let a = &firing[0];
    assert_eq!(
        (a["rule"].as_str(), a["decision"].as_str()),
        (Some("f1-vs-test"), Some("retrain"))
    );
    assert_eq!(a["severity"], "critical");
    assert!(
        a["value"].as_f64().unwrap() < 0.81 && a["baseline"].as_f64().unwrap() > 0.9,
        "{a}"
    );
    let fp = a["fingerprint"].as_str().unwrap().to_owned();

    // Webhook: JSON body, HMAC-SHA256 over "<timestamp>.<body>".
    let hook = recv.wait_for("/hook", 1, |c| c.body["status"] == "firing");
    let h = &hook[0];
    assert_eq!(h.body["decision"], "retrain");
    assert_eq!(h.body["model"], "fraud");
    assert_eq!(h.body["window"]["start"], "2026-01-05T00:00:00Z");
    let ts = h.headers["x-modelwatch-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret-s3cret").unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&h.raw);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        h.headers["x-modelwatch-signature"].to_str().unwrap(),
        format!("sha256={expected}")
    );

    // Slack: a readable message with metric, value, baseline, window and the dashboard link.
    let slack = recv.wait_for("/slack", 1, |c| {
        c.body["text"]
            .as_str()
            .is_some_and(|t| t.contains("FIRING"))
    });
    let text = slack[0].body["text"].as_str().unwrap();
    for needle in [
        "f1 = 0.8",
        "baseline 0.9",
        "2026-01-05T00:00:00Z",
        "retrain",
        "http://dash.example:8080/models/fraud",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }

    // PagerDuty: trigger with the fingerprint as dedup key.
    let pd = recv.wait_for("/pd", 1, |c| c.body["event_action"] == "trigger");
    assert_eq!(pd[0].body["routing_key"], "rk-123");
    assert_eq!(pd[0].body["dedup_key"], fp.as_str());
    assert_eq!(pd[0].body["payload"]["severity"], "critical");

    // Alertmanager: POST /api/v2/alerts with labels, annotations, startsAt and no endsAt.
    let am = recv.wait_for("/am/api/v2/alerts", 1, |_| true);
    let al = &am[0].body[0];
    assert_eq!(al["labels"]["alertname"], "f1-vs-test");
    assert_eq!(al["labels"]["decision"], "retrain");
    assert!(
        al["startsAt"].is_string() && al.get("endsAt").is_none(),
        "{al}"
    );

    // Email through the SMTP sink.
    let mail = wait_mail(&mails, "FIRING");
    assert!(mail.contains("To: oncall@example.com"), "{mail}");
    assert!(mail.contains("retrain"), "{mail}");

    // The other model drops by more than 5 % too, but on 60 rows: inside the interval.
    put_reference(&s, "steady");
    send_day(&s, "steady", "2026-01-05", 60, 6);
    let (_, m) = s.get("/v1/models/steady/metrics?window=1d");
    let change = &m["windows"][0]["changes"]["f1"];
    assert!(
        change["relative_delta"].as_f64().unwrap() < -0.05,
        "{change}"
    );
    assert_eq!(change["significant"], false, "{change}");
    wait_evaluated(&s, "steady");
    let (_, all) = s.get("/v1/alerts?model=steady");
    assert_eq!(
        all["alerts"],
        json!([]),
        "a change inside the interval raises nothing"
    );

    // Re-evaluation does not duplicate: more (older) events make the model be evaluated
    // again; still one alert, one firing transition.
    let before = a["evaluated_at"].clone();
    send_day(&s, "fraud", "2026-01-04", 100, 4);
    let again = poll(30, || {
        let (_, all) = s.get("/v1/alerts?model=fraud");
        if all["alerts"][0]["evaluated_at"] != before {
            Ok(all)
        } else {
            Err(format!("never re-evaluated: {all}"))
        }
    });
    assert_eq!(again["alerts"].as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again["alerts"][0]["state"], "firing");
    assert_eq!(
        again["alerts"][0]["fired_at"], a["fired_at"],
        "the same episode"
    );

    // Recovery: a newer day as good as the reference resolves it, everywhere.
    send_day(&s, "fraud", "2026-01-06", 1000, 10);
    wait_alerts(&s, "model=fraud&state=resolved", 1);
    recv.wait_for("/hook", 1, |c| c.body["status"] == "resolved");
    recv.wait_for("/slack", 1, |c| {
        c.body["text"]
            .as_str()
            .is_some_and(|t| t.contains("RESOLVED"))
    });
    let pd = recv.wait_for("/pd", 1, |c| c.body["event_action"] == "resolve");
    assert_eq!(pd[0].body["dedup_key"], fp.as_str());
    let am = recv.wait_for("/am/api/v2/alerts", 1, |c| {
        c.body[0].get("endsAt").is_some()
    });
    assert_eq!(am[0].body[0]["labels"]["alertname"], "f1-vs-test");
    wait_mail(&mails, "RESOLVED");
    assert_eq!(
        recv.calls("/pd")
            .iter()
            .filter(|c| c.body["event_action"] == "trigger")
            .count(),
        1
    );

    // A rule from the config file cannot be deleted over the API.
    let (st, out) = decode(
        client()
            .delete(format!("{}/v1/models/fraud/rules/f1-vs-test", s.url))
            .send()
            .unwrap(),
    );
    assert_eq!(st, 409, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("config file"),
        "{out}"
    );

    // The history has the episode: firing then resolved.
    let (_, h) = s.get("/v1/alerts/history?model=fraud");
    let t: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["resolved", "firing"]);
}

#[test]
fn pending_and_silenced_send_nothing_and_held_notifications_arrive_after_an_outage() {
    let (recv, _mails, _dir, s) = start_all("");
    let rule = |name: &str, for_: &str| {
        json!({"name": name, "signal": "accuracy",
               "condition": {"kind": "threshold", "op": "<", "value": 0.9},
               "decision": "review", "severity": "warning", "for": for_, "notify": ["hook"]})
        .to_string()
    };
    // Bad rules get a 400 naming the field.
    let (st, out) = s.post(
        "/v1/models/slow/rules",
        &json!({"name": "x", "signal": "acuracy",
        "condition": {"kind": "threshold", "op": "<", "value": 0.9},
        "decision": "review", "severity": "warning"})
        .to_string(),
    );
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`signal`"),
        "{out}"
    );
    let (st, out) = s.post(
        "/v1/models/slow/rules",
        &json!({"name": "x", "signal": "accuracy",
        "condition": {"kind": "trend", "windows": 1, "op": "<", "value": 0},
        "decision": "review", "severity": "warning"})
        .to_string(),
    );
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("condition.windows"),
        "{out}"
    );
    let (st, out) = s.post(
        "/v1/models/slow/rules",
        &json!({"name": "x", "signal": "accuracy",
        "condition": {"kind": "threshold", "op": "<", "value": 0.9},
        "decision": "retrain", "severity": "urgent"})
        .to_string(),
    );
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("severity"),
        "{out}"
    );

    for (model, r) in [
        ("slow", rule("acc", "1h")),
        ("quiet", rule("acc", "0")),
        ("outage", rule("acc", "0")),
    ] {
        let (st, out) = s.post(&format!("/v1/models/{model}/rules"), &r);
        assert_eq!(st, 201, "{out}");
    }
    let (st, out) = s.post("/v1/models/outage/rules", &rule("acc", "0"));
    assert_eq!(st, 409, "{out}");
    let (st, out) = s.post(
        "/v1/silences",
        &json!({"model": "quiet", "duration": "2h", "comment": "known"}).to_string(),
    );
    assert_eq!(st, 201, "{out}");

    // The receiver is down (answers 500) while the alerts fire.
    recv.rec.failing.store(true, Ordering::SeqCst);
    for model in ["slow", "quiet", "outage"] {
        send_day(&s, model, "2026-02-02", 200, 4); // accuracy 0.75
    }
    let pending = wait_alerts(&s, "model=slow", 1);
    assert_eq!(pending[0]["state"], "pending");
    let quiet = wait_alerts(&s, "model=quiet&state=firing", 1);
    assert_eq!(quiet[0]["silenced"], true);
    wait_alerts(&s, "model=outage&state=firing", 1);

    // The failure is visible and the notification kept.
    let failed = poll(30, || {
        let (_, n) = s.get("/v1/notifications?status=failed");
        let list = n["notifications"].as_array().unwrap().clone();
        if list
            .iter()
            .any(|x| x["attempts"].as_u64().unwrap_or(0) >= 2)
        {
            Ok(list)
        } else {
            Err(n.to_string())
        }
    });
    assert_eq!(
        failed.len(),
        1,
        "only the outage alert is queued: {failed:?}"
    );
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("500"),
        "{failed:?}"
    );
    assert!(failed[0]["delivered_at"].is_null());
    let text = client()
        .get(format!("{}/metrics", s.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains("modelwatch_notifications_failing{notifier=\"hook\"} 1"),
        "{text}"
    );

    // The receiver comes back: the held notification arrives.
    recv.rec.failing.store(false, Ordering::SeqCst);
    let got = recv.wait_for("/hook", 1, |c| c.body["model"] == "outage");
    assert_eq!(got[0].body["status"], "firing");
    let (_, n) = s.get("/v1/notifications?status=delivered");
    assert!(
        n["notifications"][0]["attempts"].as_u64().unwrap() >= 3,
        "two failed attempts, then the delivery: {n}"
    );
    assert!(recv.rec.refused.load(Ordering::SeqCst) >= 2);

    // Nothing was ever queued, let alone sent, for the pending or the silenced alert (both
    // were evaluated: their states are above).
    let (_, all) = s.get("/v1/notifications");
    let queued: Vec<&Value> = all["notifications"].as_array().unwrap().iter().collect();
    assert_eq!(queued.len(), 1, "{all}");
    let models: Vec<String> = recv
        .calls("/hook")
        .iter()
        .map(|c| c.body["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(models, ["outage"]);
    let (_, p) = s.get("/v1/alerts?model=slow");
    assert_eq!(p["alerts"][0]["state"], "pending");

    // Deleting a firing alert's rule resolves the alert, and the receiver is told.
    let del = client()
        .delete(format!("{}/v1/models/outage/rules/acc", s.url))
        .send()
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
    wait_alerts(&s, "model=outage&state=resolved", 1);
    let got = recv.wait_for("/hook", 1, |c| c.body["status"] == "resolved");
    assert_eq!(got[0].body["model"], "outage");
    let (st, _) = decode(
        client()
            .delete(format!("{}/v1/models/outage/rules/acc", s.url))
            .send()
            .unwrap(),
    );
    assert_eq!(st, 404);

    // Heartbeats: a failed run alerts; unknown status is a 400 naming the field.
    let (st, out) = s.post(
        "/v1/models/outage/heartbeats",
        r#"{"job": "train", "status": "maybe"}"#,
    );
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("status"),
        "{out}"
    );
    let (st, out) = s.post(
        "/v1/models/outage/rules",
        &json!({"name": "train-job", "signal": "heartbeat:train",
        "condition": {"kind": "heartbeat", "max_age": "1d"}, "decision": "data-incident",
        "severity": "critical", "notify": ["hook"]})
        .to_string(),
    );
    assert_eq!(st, 201, "{out}");
    let (st, out) = s.post(
        "/v1/models/outage/heartbeats",
        r#"{"job": "train", "status": "failed", "message": "OOM"}"#,
    );
    assert_eq!(st, 200, "{out}");
    let got = recv.wait_for("/hook", 1, |c| c.body["rule"] == "train-job");
    assert!(
        got[0].body["summary"].as_str().unwrap().contains("OOM"),
        "{:?}",
        got[0].body
    );
}

#[test]
fn metrics_endpoint_is_valid_prometheus_text_with_bounded_labels() {
    let extra = format!(
        "[alerts.metrics_segments]\nfraud = \"x\"\n[[models.fraud.rules]]\n{F1_RULE}\nnotify = [\"hook\"]\n"
    );
    let (_recv, _mails, _dir, s) = start_all(&extra);
    put_reference(&s, "fraud");
    send_day(&s, "fraud", "2026-01-05", 1000, 4);
    // KPI points are counted like the other rows.
    s.post_ok(
        "/v1/models/fraud/kpis",
        (0..3)
            .map(|h| json!({"name": "revenue", "value": h, "timestamp": format!("2026-01-05T0{h}:00:00Z")}))
            .collect(),
    );
    wait_alerts(&s, "model=fraud&state=firing", 1);
    let text = wait_evaluated(&s, "fraud");

    let r = client().get(format!("{}/metrics", s.url)).send().unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    promtool_accepts(&text);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let find = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
            .value
            .clone()
    };
    let gauge = |v: prometheus_parse::Value| match v {
        prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Untyped(x) => x,
        other => panic!("{other:?}"),
    };
    let f1 = gauge(find(
        "modelwatch_model_performance",
        &[("model", "fraud"), ("version", "v1"), ("metric", "f1")],
    ));
    assert!((f1 - 0.8).abs() < 1e-9, "{f1}");
    // The label-free estimate of the same window (the reference is scored and labelled), with
    // its interval: the API's numbers for that window.
    let window = scrape
        .samples
        .iter()
        .find(|s| s.metric == "modelwatch_model_performance")
        .and_then(|s| s.labels.get("window"))
        .unwrap()
        .to_owned();
    let (_, api) = s.get(&format!(
        "/v1/models/fraud/metrics?window={window}&version=v1"
    ));
    let last = api["windows"].as_array().unwrap().last().unwrap().clone();
    for (family, field) in [
        ("modelwatch_model_estimated_performance", "value"),
        ("modelwatch_model_estimated_performance_ci_low", "ci_low"),
        ("modelwatch_model_estimated_performance_ci_high", "ci_high"),
    ] {
        let got = gauge(find(
            family,
            &[
                ("model", "fraud"),
                ("version", "v1"),
                ("metric", "accuracy"),
            ],
        ));
        let want = last["estimated"]["accuracy"][field].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{family}: {got} vs {want}");
    }
    assert_eq!(
        gauge(find("modelwatch_model_predictions", &[("model", "fraud")])),
        1000.0
    );
    assert_eq!(
        gauge(find(
            "modelwatch_alert",
            &[
                ("model", "fraud"),
                ("rule", "f1-vs-test"),
                ("state", "firing"),
                ("decision", "retrain")
            ]
        )),
        1.0
    );
    assert_eq!(
        gauge(find(
            "modelwatch_ingest_rows_total",
            &[
                ("model", "fraud"),
                ("kind", "predictions"),
                ("outcome", "accepted")
            ]
        )),
        1000.0
    );
    assert_eq!(
        gauge(find(
            "modelwatch_ingest_rows_total",
            &[
                ("model", "fraud"),
                ("kind", "kpis"),
                ("outcome", "accepted")
            ]
        )),
        3.0
    );
    assert_eq!(
        gauge(find(
            "modelwatch_feature_drifted",
            &[("model", "fraud"), ("feature", "x")]
        )),
        0.0
    );
    match find(
        "modelwatch_model_window_latency_seconds",
        &[("model", "fraud")],
    ) {
        prometheus_parse::Value::Summary(q) => {
            assert!(q.iter().any(|q| q.quantile == 0.5 && q.count >= 0.005))
        }
        other => panic!("window latency is a summary, got {other:?}"),
    }
    // The histogram: latencies 5.0 + (i % 10) ms for 1000 rows, so 100 of each of 5..=14.
    // Bounds 5 and 10 sit on sampled values (either side allowed); 25 and above hold all.
    match find(
        "modelwatch_model_latency_seconds",
        &[("model", "fraud"), ("version", "v1")],
    ) {
        prometheus_parse::Value::Histogram(buckets) => {
            let at = |le: f64| {
                buckets
                    .iter()
                    .find(|b| b.less_than == le)
                    .unwrap_or_else(|| panic!("no le={le} in {buckets:?}"))
                    .count
            };
            assert!(at(0.005) == 0.0 || at(0.005) == 100.0, "{buckets:?}");
            assert!((500.0..=600.0).contains(&at(0.01)), "{buckets:?}");
            assert_eq!(at(0.025), 1000.0);
            assert_eq!(at(f64::INFINITY), 1000.0);
            assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
        }
        other => panic!("latency is a histogram, got {other:?}"),
    }
    assert_eq!(
        gauge(find(
            "modelwatch_model_latency_seconds_count",
            &[("model", "fraud"), ("version", "v1")]
        )),
        1000.0
    );
    let sum = gauge(find(
        "modelwatch_model_latency_seconds_sum",
        &[("model", "fraud"), ("version", "v1")],
    ));
    assert!((sum - 9.5).abs() <= 0.095, "sum {sum}");
    // Per value of the configured segment (feature x: 0..6), bounded to 10 values plus other.
    let seg = |v: &str| {
        gauge(find(
            "modelwatch_segment_performance",
            &[
                ("model", "fraud"),
                ("segment", "x"),
                ("segment_value", v),
                ("metric", "accuracy"),
            ],
        ))
    };
    assert!((0..7).all(|v| seg(&v.to_string()) > 0.7));
    // Bounded labels only: never a request id.
    let allowed = [
        "model",
        "version",
        "metric",
        "window",
        "feature",
        "quantile",
        "rule",
        "severity",
        "decision",
        "state",
        "notifier",
        "kind",
        "outcome",
        "segment",
        "segment_value",
    ];
    for sample in &scrape.samples {
        for (k, _) in sample.labels.iter() {
            assert!(
                allowed.contains(&k.as_str()),
                "label {k} on {}",
                sample.metric
            );
        }
    }
    assert!(
        !text.contains("fraud-2026"),
        "a request id leaked into /metrics"
    );
}

/// Prometheus's own checker (Debian's `prometheus` package, which `scripts/test.sh` installs)
/// reads the exposition and lints it.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn example_prometheus_rules_are_valid() {
    // The checkout's directory when the test runs (a shared target directory may hold a test
    // binary built in another checkout).
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let rules = format!("{dir}/../../examples/prometheus/alerts.yml");
    let out = std::process::Command::new("promtool")
        .args(["check", "rules", &rules])
        .output()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- every signal a rule accepts fires on data built to trip it

/// One rule of the signal test: it must fire (`fires`) or, as a control that the right value
/// is read, stay quiet.
struct Case {
    model: &'static str,
    signal: String,
    condition: Value,
    segment: Option<Value>,
    fires: bool,
}

fn case(model: &'static str, signal: &str, op: &str, value: f64) -> Case {
    Case {
        model,
        signal: signal.to_owned(),
        condition: json!({"kind": "threshold", "op": op, "value": value}),
        segment: None,
        fires: true,
    }
}

impl Case {
    fn quiet(mut self) -> Case {
        self.fires = false;
        self
    }

    fn on(mut self, segment: Value) -> Case {
        self.segment = Some(segment);
        self
    }

    /// Rule names are unique per model: the signal, with what the name charset lacks replaced,
    /// and whether it is a control.
    fn name(&self) -> String {
        let mut n: String = self
            .signal
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
            .collect();
        if let Some(seg) = &self.segment {
            n.push_str(&format!(".{}", seg["value"].as_str().unwrap()));
        }
        if !self.fires {
            n.push_str(".quiet");
        }
        n
    }

    fn rule(&self) -> Value {
        let mut r = json!({"name": self.name(), "signal": self.signal,
            "condition": self.condition, "decision": "review", "severity": "warning"});
        if let Some(s) = &self.segment {
            r["segment"] = s.clone();
        }
        r
    }
}

/// The rules of the test, and the data each model gets (see `send_signal_data`):
/// - `bin`: binary, 3 rows in 8 wrong (half of class 0, a quarter of class 1; all of them, and
///   only they, in country FR), 10 % unlabelled, 20 errors, latency 5-14 ms, scores 0.8 / 0.2,
///   a KPI at 500 a point;
/// - `multi`: classes a, b, c, every 4th row wrong;
/// - `reg`: regression, every prediction 5 too high;
/// - `drift`: against its reference, x shifted out of range, half the countries unseen,
///   half the amounts null, 95 % predicted 1 with score 0.95, every label 1;
/// - `fair`: protected `sex` and `tag:region`, F approved at 20 %, M at 60 %, both regions alike.
/// - `joint`: two features correlated in the reference and not in its day (multivariate drift).
/// - `probe`: ten clients scored across [0, 1], and client `bot` sending 60 rows scored 0.5.
/// - `attr` / `attrok`: attributions (`crate::attributions`), shifted from amount to country
///   against the reference or not.
fn signal_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for m in modelwatch_alerts::rule::PERFORMANCE_METRICS {
        cases.push(match *m {
            "fpr" | "fnr" => case("bin", m, ">", 0.1),
            "log_loss" => case("bin", m, ">", 0.3),
            "brier_score" => case("bin", m, ">", 0.1),
            "ece" => case("bin", m, ">", 0.01),
            m if m.ends_with("_micro") || m.ends_with("_macro") || m.ends_with("_weighted") => {
                case("multi", m, "<", 0.9)
            }
            "mae" | "rmse" | "mean_error" | "error_p05" | "error_p50" | "error_p95" => {
                case("reg", m, ">", 4.0)
            }
            "mse" => case("reg", m, ">", 20.0),
            "mape" => case("reg", m, ">", 0.01),
            "r2" => case("reg", m, "<", 0.99),
            m => case("bin", m, "<", 0.9),
        });
    }
    for o in modelwatch_alerts::rule::OPERATIONAL_SIGNALS {
        cases.push(match *o {
            "predictions" => case("bin", o, ">", 900.0),
            "error_rate" => case("bin", o, ">", 0.01),
            "label_coverage" => case("bin", o, "<", 0.95),
            "latency_p50" | "latency_p95" | "latency_p99" => case("bin", o, ">", 4.0),
            "average_confidence" => case("bin", o, "<", 0.85),
            "prediction_entropy" => case("drift", o, "<", 0.5),
            "top_class_share" => case("drift", o, ">", 0.9),
            other => panic!("operational signal {other} has no case here: add one"),
        });
    }
    cases.extend([
        // The binary model's class 0 has recall 0.5 (its own, from the confusion counts),
        // class 1 has 0.75.
        case("bin", "recall:0", "<", 0.6),
        case("bin", "recall:1", "<", 0.6).quiet(),
        case("bin", "precision:1", "<", 0.9),
        case("bin", "f1:0", "<", 0.9),
        case("multi", "precision:b", "<", 0.9),
        case("multi", "recall:a", "<", 0.9),
        case("multi", "f1:c", "<", 0.9),
        // `many`: 60 classes of 40 rows and `rare`, 30 rows always predicted wrong. A report
        // names the 50 classes with most rows; the rule's own class is named all the same.
        case("many", "recall:rare", "<", 0.5),
        case("many", "recall:k7", "<", 0.5).quiet(),
        case("bin", "kpi:fraud_loss_eur", ">", 100.0),
        case("bin", "kpi:fraud_loss_eur", ">", 1000.0).quiet(),
        // FR holds every wrong row: accuracy 0 there, 1 in DE.
        case("bin", "accuracy", "<", 0.7).on(json!({"feature": "country", "value": "FR"})),
        case("bin", "accuracy", "<", 0.7)
            .on(json!({"feature": "country", "value": "DE"}))
            .quiet(),
        // The drift model's reference ranks perfectly (no calibration): the estimated accuracy
        // of its day is the mean confidence of its predictions, 0.95.
        case("drift", "estimated:accuracy", "<", 0.99),
        case("drift", "estimated:accuracy", "<", 0.9).quiet(),
        case("drift", "drift_share", ">", 0.5),
        case("drift", "drift:x", ">", 0.5),
        case("drift", "drift:country", ">", 0.5),
        case("drift", "drift:amount", ">", 0.5).quiet(),
        case("drift", "drift:prediction", ">", 0.5),
        case("drift", "drift:score", ">", 0.5),
        case("drift", "drift:label", ">", 0.5),
        case("joint", "multivariate_drift", ">", 0.5),
        case("joint", "reconstruction_error", ">", 0.5),
        case("joint", "reconstruction_error", ">", 3.0).quiet(),
        // Every row of the drift model's day is far outside its reference (x); the joint
        // model's rows are each within theirs. `probe`: client `bot` scores at 0.5.
        case("drift", "outlier_rate", ">", 0.5),
        case("joint", "outlier_rate", ">", 0.2).quiet(),
        case("probe", "probing", ">", 0.0),
        case("joint", "probing", ">", 0.0).quiet(),
        // The day's rows break the reference's x1-x2 relation: a classifier tells them apart.
        case("joint", "domain_classifier_auc", ">", 0.65),
        case("joint", "domain_classifier_auc", "<", 0.5).quiet(),
        case("drift", "quality_flags", ">", 0.0),
        case("drift", "null_rate:amount", ">", 0.2),
        case("drift", "out_of_range:x", ">", 0.5),
        case("drift", "unseen:country", ">", 0.2),
        // `fair`: F approved at 20 %, M at 60 % (a third: under four fifths); each region
        // holds both alike, so the region's ratio is 1.
        case("fair", "fairness:demographic_parity_ratio:sex", "<", 0.8),
        case(
            "fair",
            "fairness:demographic_parity_ratio:tag:region",
            "<",
            0.8,
        )
        .quiet(),
        case(
            "fair",
            "fairness:demographic_parity_difference:sex",
            ">",
            0.3,
        ),
        // `attr`: amount drove the model in the reference, country drives it on its day (its
        // share of mean |attribution| up by about 0.8); `attrok`: a day like the reference.
        case("attr", "attribution:country", ">", 0.3),
        case("attr", "attribution:amount", ">", 0.3).quiet(),
        case("attrok", "attribution:country", ">", 0.1).quiet(),
        // `bin` has no costs in its events: its rate prices its 1,020 predictions at 0.001;
        // its latencies (5-14 ms) are under the 10 ms bound for about half the requests, where
        // the objective allows 1 % (burn rate about 45, the 30-day budget overspent).
        case("bin", "cost", ">", 1.0),
        case("bin", "cost", ">", 2.0).quiet(),
        case("bin", "slo_burn_rate", ">", 14.4),
        case("bin", "slo_burn_rate", ">", 100.0).quiet(),
        case("bin", "slo_budget_remaining", "<", 0.0),
        // `concept`: the outcome's relation to x changes at noon, the inputs do not
        // (`crate::concept_drift::relation_day`); `conceptok`: the same day without the change.
        case("concept", "concept:adwin", ">", 0.0),
        case("conceptok", "concept:adwin", ">", 0.0).quiet(),
        Case {
            condition: json!({"kind": "freshness", "max_age": "1s"}),
            ..case("bin", "events", ">", 0.0)
        },
        Case {
            condition: json!({"kind": "freshness", "max_age": "1s"}),
            ..case("multi", "labels", ">", 0.0)
        },
        Case {
            condition: json!({"kind": "heartbeat", "max_age": "1d"}),
            ..case("bin", "heartbeat:train", ">", 0.0)
        },
    ]);
    cases
}

fn ts(day: &str, i: usize) -> String {
    format!("{day}T{:02}:{:02}:{:02}Z", (i / 60) % 24, i % 60, i % 37)
}

fn send_signal_data(s: &Server) {
    let day = "2026-01-05";
    // bin
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..1000usize {
        let label = i % 2;
        // Wrong: i % 8 in {0, 2} (class 0, predicted 1) and 1 (class 1, predicted 0).
        let pred = if i % 8 < 3 { 1 - label } else { label };
        let id = format!("bin-{i}");
        preds.push(json!({"request_id": id, "timestamp": ts(day, i),
            "features": {"x": i % 7, "country": if i % 8 < 3 { "FR" } else { "DE" }},
            "prediction": pred, "score": if pred == 1 { 0.8 } else { 0.2 },
            "latency_ms": 5.0 + (i % 10) as f64}));
        if i % 10 != 9 {
            labels.push(json!({"request_id": id, "label": label}));
        }
    }
    for i in 0..20usize {
        preds.push(
            json!({"request_id": format!("bin-err-{i}"), "timestamp": ts(day, i),
            "features": {"x": 1, "country": "DE"}, "error": "timeout"}),
        );
    }
    s.post_ok("/v1/models/bin/predictions", preds);
    s.post_ok("/v1/models/bin/labels", labels);
    let kpis: Vec<Value> = (0..3)
        .map(|h| {
            json!({"name": "fraud_loss_eur", "value": 500.0,
                        "timestamp": format!("{day}T{:02}:00:00Z", 8 + h)})
        })
        .collect();
    s.post_ok("/v1/models/bin/kpis", kpis);
    let (st, out) = s.put(
        "/v1/models/bin/service-levels/settings",
        "application/json",
        r#"{"cost_per_prediction": 0.001, "latency_slo": {"objective": 0.99, "threshold_ms": 10}}"#,
    );
    assert_eq!(st, 200, "{out}");
    let (st, out) = s.post(
        "/v1/models/bin/heartbeats",
        r#"{"job": "train", "status": "failed", "message": "OOM"}"#,
    );
    assert_eq!(st, 200, "{out}");

    // multi
    let classes = ["a", "b", "c"];
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..600usize {
        let label = classes[i % 3];
        let pred = if i % 4 == 0 {
            classes[(i + 1) % 3]
        } else {
            label
        };
        let id = format!("multi-{i}");
        preds.push(json!({"request_id": id, "timestamp": ts(day, i),
            "features": {"x": i % 5}, "prediction": pred}));
        labels.push(json!({"request_id": id, "label": label}));
    }
    s.post_ok("/v1/models/multi/predictions", preds);
    s.post_ok("/v1/models/multi/labels", labels);

    // many
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..2430usize {
        let (label, pred) = match i {
            0..2400 => (format!("k{}", i % 60), format!("k{}", i % 60)),
            _ => ("rare".to_owned(), "k0".to_owned()),
        };
        let id = format!("many-{i}");
        preds.push(json!({"request_id": id, "timestamp": ts(day, i % 600),
            "features": {"x": i % 5}, "prediction": pred}));
        labels.push(json!({"request_id": id, "label": label}));
    }
    s.post_ok("/v1/models/many/predictions", preds);
    s.post_ok("/v1/models/many/labels", labels);

    // reg
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..500usize {
        let y = 50.5 + (i % 100) as f64;
        let id = format!("reg-{i}");
        preds.push(json!({"request_id": id, "timestamp": ts(day, i),
            "features": {"x": i % 5}, "prediction": y + 5.0}));
        labels.push(json!({"request_id": id, "label": y}));
    }
    s.post_ok("/v1/models/reg/predictions", preds);
    s.post_ok("/v1/models/reg/labels", labels);

    // drift: the reference first, over HTTP like the rest.
    let mut csv = String::from("x,amount,country,prediction,score,label\n");
    for i in 0..1000usize {
        let c = i % 2;
        csv.push_str(&format!(
            "{},{},{},{c},{},{c}\n",
            i % 100,
            (i % 50) as f64 + 0.5,
            if i % 3 == 0 { "DE" } else { "FR" },
            if c == 1 { 0.7 } else { 0.3 }
        ));
    }
    let (st, out) = s.put("/v1/models/drift/reference", "text/csv", csv);
    assert_eq!(st, 200, "{out}");
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..600usize {
        let pred = usize::from(i % 20 != 0);
        let id = format!("drift-{i}");
        let amount = if i % 2 == 0 {
            Value::Null
        } else {
            // Every reference value still appears: the amounts did not drift, they went null.
            json!(((i / 2) % 50) as f64 + 0.5)
        };
        preds.push(json!({"request_id": id, "timestamp": ts(day, i),
            "features": {"x": 500 + i % 100, "amount": amount,
                         "country": if i % 2 == 0 { "XX" } else { "DE" }},
            "prediction": pred, "score": if pred == 1 { 0.95 } else { 0.05 }}));
        labels.push(json!({"request_id": id, "label": 1}));
    }
    s.post_ok("/v1/models/drift/predictions", preds);
    s.post_ok("/v1/models/drift/labels", labels);

    // fair: F on even rows, M on odd; region north for rows 0-1 mod 4. The k-th row of a sex
    // is approved when k mod 10 is under 2 (F) or 6 (M): as many even k as odd in each, so
    // both regions see the same rates.
    let preds: Vec<Value> = (0..400usize)
        .map(|i| {
            let (sex, cut) = if i % 2 == 0 { ("F", 2) } else { ("M", 6) };
            json!({"request_id": format!("fair-{i}"), "timestamp": ts(day, i),
                "features": {"sex": sex},
                "tags": {"region": if i % 4 < 2 { "north" } else { "south" }},
                "prediction": if (i / 2) % 10 < cut { "approved" } else { "denied" }})
        })
        .collect();
    s.post_ok("/v1/models/fair/predictions", preds);
    let (st, out) = s.put(
        "/v1/models/fair/fairness/settings",
        "application/json",
        r#"{"protected": ["sex", "tag:region"], "favourable": "approved"}"#,
    );
    assert_eq!(st, 200, "{out}");
    // joint: x2 follows x1 in the reference; the day's x2 values are another row's (each
    // feature's values as before, their correlation gone).
    let u = |i: usize, k: usize| ((i * 2_654_435_761 + k * 40_503 + 17) % 10_007) as f64 / 10_007.0;
    let x = |i: usize| {
        let x1 = 2.0 * u(i, 1) - 1.0;
        (x1, 0.8 * x1 + 0.2 * (2.0 * u(i, 2) - 1.0))
    };
    let mut csv = String::from("x1,x2\n");
    for i in 0..2000 {
        let (x1, x2) = x(i);
        csv.push_str(&format!("{x1},{x2}\n"));
    }
    let (st, out) = s.put("/v1/models/joint/reference", "text/csv", csv);
    assert_eq!(st, 200, "{out}");
    let preds: Vec<Value> = (0..600usize)
        .map(|i| {
            let x1 = x(100_000 + i).0;
            let x2 = x(100_000 + (i * 7 + 3) % 600).1;
            json!({"request_id": format!("joint-{i}"), "timestamp": ts(day, i),
                "features": {"x1": x1, "x2": x2}, "prediction": i % 2})
        })
        .collect();
    s.post_ok("/v1/models/joint/predictions", preds);
    let mut csv = String::from("x\n");
    for i in 0..200 {
        csv.push_str(&format!("{}\n", i % 50));
    }
    s.put_reference("probe", "", "text/csv", csv);
    let preds: Vec<Value> = (0..460usize)
        .map(|i| {
            let (client, score) = if i < 400 {
                (format!("c{}", i % 10), (i % 100) as f64 / 100.0)
            } else {
                ("bot".to_owned(), 0.5)
            };
            json!({"request_id": format!("probe-{i}"), "timestamp": ts(day, i),
                "features": {"x": i % 50}, "score": score, "prediction": u8::from(score >= 0.5),
                "tags": {"client": client}})
        })
        .collect();
    s.post_ok("/v1/models/probe/predictions", preds);
    for (model, shifted) in [("attr", true), ("attrok", false)] {
        s.put_reference(model, "", "text/csv", crate::attributions::reference_csv());
        s.post_ok(
            &format!("/v1/models/{model}/predictions"),
            crate::attributions::day(day, shifted),
        );
    }
    for (model, changes) in [("concept", true), ("conceptok", false)] {
        let (preds, labels) = crate::concept_drift::relation_day(day, model, changes);
        s.post_ok(&format!("/v1/models/{model}/predictions"), preds);
        s.post_ok(&format!("/v1/models/{model}/labels"), labels);
    }
}

#[test]
fn every_signal_kind_a_rule_accepts_fires_on_data_built_to_trip_it() {
    use modelwatch_alerts::rule::{Signal, OPERATIONAL_SIGNALS, PERFORMANCE_METRICS, SIGNAL_KINDS};
    let cases = signal_cases();
    // The coverage first: every kind of the validator's one list, every metric and
    // operational name, and every kind of drift column has a rule that must fire.
    let firing: Vec<&Case> = cases.iter().filter(|c| c.fires).collect();
    let signal = |c: &Case| Signal::parse(&c.signal).unwrap();
    for kind in SIGNAL_KINDS {
        assert!(
            firing.iter().any(|c| signal(c).kind() == *kind),
            "signal kind {kind} has no rule shown to fire: add a case to signal_cases()"
        );
    }
    for name in PERFORMANCE_METRICS.iter().chain(OPERATIONAL_SIGNALS) {
        assert!(firing.iter().any(|c| c.signal == *name), "{name}");
    }
    for col in [
        "drift:x",
        "drift:country",
        "drift:prediction",
        "drift:score",
        "drift:label",
    ] {
        assert!(firing.iter().any(|c| c.signal == col), "{col}");
    }
    assert!(firing.iter().any(|c| c.segment.is_some()), "a segment rule");

    let dir = tempfile::tempdir().unwrap();
    // Every second: the freshness rules fire once their second has passed.
    let s = Server::start_evaluating_every_second(dir.path());
    for c in &cases {
        let (st, out) = s.post(
            &format!("/v1/models/{}/rules", c.model),
            &c.rule().to_string(),
        );
        assert_eq!(st, 201, "{}: {out}", c.signal);
    }
    send_signal_data(&s);

    let want: Vec<(String, String)> = firing
        .iter()
        .map(|c| (c.model.to_owned(), c.name()))
        .collect();
    let firing_now = poll(30, || {
        let (_, out) = s.get("/v1/alerts?state=firing");
        let got: Vec<(String, String)> = out["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["model"].as_str().unwrap().to_owned(),
                    a["rule"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let missing: Vec<&(String, String)> = want.iter().filter(|w| !got.contains(w)).collect();
        if missing.is_empty() {
            Ok(out)
        } else {
            let (_, all) = s.get("/v1/alerts");
            Err(format!("not firing: {missing:?}\nall alerts: {all}"))
        }
    });
    // The controls read the same reports in the same passes, and hold on their value.
    for c in cases.iter().filter(|c| !c.fires) {
        let (_, all) = s.get(&format!("/v1/alerts?model={}", c.model));
        assert!(
            !all["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["rule"] == c.name().as_str()),
            "{} should not fire: {all}",
            c.name()
        );
    }
    // A firing class metric carries its own value: class 0's recall is 0.5.
    let recall0 = firing_now["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "recall.0")
        .unwrap();
    assert!(
        (recall0["value"].as_f64().unwrap() - 0.5).abs() < 1e-9,
        "{recall0}"
    );
    // The fairness rule carries the ratio it read (0.2 / 0.6); the quiet region's is 1.
    let ratio = firing_now["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "fairness.demographic.parity.ratio.sex")
        .unwrap();
    assert!(
        (ratio["value"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9,
        "{ratio}"
    );
    let report = s.get_ok("/v1/models/fair/fairness");
    let region = &report["attributes"][1]["windows"][0];
    assert_eq!(region["demographic_parity_ratio"]["value"], 1.0, "{region}");
}

#[test]
fn an_acknowledged_alert_keeps_its_owner_in_history_and_later_notifications() {
    let extra = format!("[[models.fraud.rules]]\n{F1_RULE}\nnotify = [\"hook\", \"slack\"]\n");
    let (recv, _mails, _dir, s) = start_all(&extra);
    put_reference(&s, "fraud");
    send_day(&s, "fraud", "2026-01-05", 1000, 4);
    let a = wait_alerts(&s, "model=fraud&state=firing", 1)[0].clone();
    let fp = a["fingerprint"].as_str().unwrap().to_owned();
    let trigger = recv.wait_for("/hook", 1, |c| c.body["status"] == "firing");
    assert!(
        trigger[0].body["acknowledged"].is_null(),
        "{:?}",
        trigger[0].body
    );

    // Bad requests name what is wrong.
    let (st, out) = s.post("/v1/alerts/0000000000000000/ack", r#"{"owner": "alice"}"#);
    assert_eq!(st, 404, "{out}");
    let (st, out) = s.post(&format!("/v1/alerts/{fp}/ack"), r#"{"owner": " "}"#);
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("owner"),
        "{out}"
    );
    let (st, out) = s.post(
        &format!("/v1/alerts/{fp}/ack"),
        r#"{"owner": "a", "note": "x"}"#,
    );
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("note"),
        "{out}"
    );

    let (st, out) = s.post(
        &format!("/v1/alerts/{fp}/ack"),
        r#"{"owner": "alice", "comment": "retraining on last week's data"}"#,
    );
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["alert"]["acknowledged"]["owner"], "alice");
    let (_, listed) = s.get("/v1/alerts?model=fraud");
    let ack = &listed["alerts"][0]["acknowledged"];
    assert_eq!(ack["comment"], "retraining on last week's data", "{listed}");
    assert!(ack["at"].is_string(), "{listed}");
    let (_, h) = s.get("/v1/alerts/history?model=fraud");
    assert_eq!(h["history"][0]["transition"], "acknowledged", "{h}");
    assert_eq!(h["history"][0]["alert"]["acknowledged"]["owner"], "alice");

    // Re-evaluations keep it for the episode; the resolve carries it to every receiver.
    send_day(&s, "fraud", "2026-01-06", 1000, 10);
    wait_alerts(&s, "model=fraud&state=resolved", 1);
    let resolved = recv.wait_for("/hook", 1, |c| c.body["status"] == "resolved");
    assert_eq!(resolved[0].body["acknowledged"]["owner"], "alice");
    let slack = recv.wait_for("/slack", 1, |c| {
        c.body["text"]
            .as_str()
            .is_some_and(|t| t.contains("RESOLVED"))
    });
    let text = slack[0].body["text"].as_str().unwrap();
    assert!(
        text.contains("Acknowledged by alice") && text.contains("retraining on last week's data"),
        "{text}"
    );
    // A resolved alert has nothing left to take.
    let (st, out) = s.post(&format!("/v1/alerts/{fp}/ack"), r#"{"owner": "bob"}"#);
    assert_eq!(st, 409, "{out}");
}
