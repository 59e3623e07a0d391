//! The alert service over a real SQLite event store and its real alerts file, with time moved
//! by a `ManualClock`: `for`, `keep_firing_for`, freshness, silence expiry and retry backoff
//! without a single sleep.

use modelwatch_alerts::service::SilenceRequest;
use modelwatch_alerts::{AlertService, AlertsConfig, Clock, ManualClock, RuleSpec, State};
use modelwatch_core::{
    parse_label_row, parse_prediction_row, parse_timestamp, IngestLimits, ModelName, Timestamp,
};
use modelwatch_store::{LabelBatch, PredictionBatch, SqliteStore, Store};
use serde_json::json;
use std::sync::Arc;

fn t(s: &str) -> Timestamp {
    parse_timestamp(s).unwrap()
}

/// `n` labelled predictions in the hour starting at `hour`, every `flip`-th one wrong.
fn ingest(store: &dyn Store, model: &ModelName, hour: &str, n: usize, flip: usize, tag: &str) {
    let now = t("2026-03-11T00:00:00Z");
    let limits = IngestLimits::default();
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let label = i % 2;
        let pred = if i % flip == 0 { 1 - label } else { label };
        let id = format!("{tag}-{i}");
        let p = json!({"request_id": id, "timestamp": format!("{hour}:{:02}:00Z", i % 60),
                       "features": {"x": i % 5}, "prediction": pred})
        .to_string();
        preds.push((i, parse_prediction_row(&p, i, now, &limits).unwrap()));
        let l = json!({"request_id": id, "label": label}).to_string();
        labels.push((i, parse_label_row(&l, i, now, &limits).unwrap()));
    }
    store
        .ingest_predictions(model, PredictionBatch::new(preds))
        .unwrap();
    store
        .ingest_labels(
            model,
            LabelBatch {
                rows: labels,
                rejected: vec![],
            },
        )
        .unwrap();
}

/// Answers one HTTP request with 200 and returns its body.
fn one_http_request(l: std::net::TcpListener) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let (s, _) = l.accept().unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (&s).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    String::from_utf8(body).unwrap()
}

fn rule(v: serde_json::Value) -> (String, RuleSpec) {
    ("m".to_owned(), RuleSpec::from_json(v).unwrap())
}

#[tokio::test]
async fn lifecycle_freshness_silences_and_backoff_on_a_manual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("store")).unwrap());
    let clock = Arc::new(ManualClock::new(t("2026-03-10T12:00:00Z")));
    let mut config = AlertsConfig::default();
    // A port nobody listens on for now: deliveries fail with "connection refused".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.notifiers.insert(
        "hook".into(),
        toml::from_str(&format!(
            "kind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\""
        ))
        .unwrap(),
    );
    let rules = vec![
        rule(
            json!({"name": "acc-low", "signal": "accuracy", "window": "1h",
            "condition": {"kind": "threshold", "op": "<", "value": 0.9},
            "for": "10m", "keep_firing_for": "5m", "decision": "rollback", "severity": "critical"}),
        ),
        rule(
            json!({"name": "fresh", "signal": "events", "condition": {"kind": "freshness", "max_age": "30m"},
            "decision": "data-incident", "severity": "warning"}),
        ),
    ];
    let svc = AlertService::open(dir.path(), config, rules, store.clone(), clock.clone()).unwrap();
    let m = ModelName::new("m").unwrap();
    let state = |rule: &str| {
        svc.alerts(&Default::default())
            .unwrap()
            .into_iter()
            .find(|a| a.rule == rule)
            .map(|a| a.state)
    };
    let queued = || svc.notifications(None, 100).unwrap();

    // Accuracy 0.75 in the 10:00 window, predictions just arrived.
    ingest(store.as_ref(), &m, "2026-03-10T10", 120, 4, "a");
    svc.on_ingest("m", "predictions");
    let silence = svc
        .create_silence(SilenceRequest {
            model: "m".into(),
            rule: Some("fresh".into()),
            ends_at: None,
            duration: Some("1h".into()),
            comment: "pipeline maintenance".into(),
        })
        .unwrap();
    svc.evaluate(clock.now(), None).unwrap();
    assert_eq!(state("acc-low"), Some(State::Pending));
    assert_eq!(state("fresh"), None, "predictions arrived just now");

    clock.advance_secs(9 * 60);
    svc.evaluate(clock.now(), None).unwrap();
    assert_eq!(state("acc-low"), Some(State::Pending), "`for` is 10m");
    assert!(queued().is_empty(), "nothing is sent while pending");

    clock.advance_secs(60);
    let r = svc.evaluate(clock.now(), None).unwrap();
    assert_eq!(state("acc-low"), Some(State::Firing));
    assert_eq!(r.notifications, 1);

    // Delivery fails; the notification is kept, retried after 1 s, then 2 s, then 4 s.
    let start = clock.now();
    assert_eq!(svc.deliver_due(clock.now()).await.unwrap(), (0, 1));
    assert_eq!(
        svc.deliver_due(clock.now()).await.unwrap(),
        (0, 0),
        "not due yet"
    );
    let n = &queued()[0];
    assert_eq!(n.attempts, 1);
    assert!(
        n.last_error
            .as_deref()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{n:?}"
    );
    assert_eq!(n.next_attempt_at.unwrap().0 - start.0, 1_000_000);
    clock.advance_secs(1);
    assert_eq!(svc.deliver_due(clock.now()).await.unwrap(), (0, 1));
    assert_eq!(
        queued()[0].next_attempt_at.unwrap().0 - clock.now().0,
        2_000_000
    );
    assert_eq!(svc.notifications(Some("failed"), 10).unwrap().len(), 1);

    // The receiver comes up: the held notification is delivered at its next attempt.
    let receiver = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let got = std::thread::spawn(move || one_http_request(receiver));
    clock.advance_secs(2);
    assert_eq!(svc.deliver_due(clock.now()).await.unwrap(), (1, 0));
    let body = got.join().unwrap();
    assert!(
        body.contains("\"rule\":\"acc-low\"") && body.contains("\"status\":\"firing\""),
        "{body}"
    );
    let n = &queued()[0];
    assert_eq!((n.attempts, n.delivered_at), (3, Some(clock.now())));
    assert!(n.last_error.is_none());

    // No predictions for 40 minutes: the freshness alert fires, silenced.
    clock.advance_secs(40 * 60);
    svc.evaluate(clock.now(), None).unwrap();
    let fresh = svc
        .alerts(&Default::default())
        .unwrap()
        .into_iter()
        .find(|a| a.rule == "fresh")
        .unwrap();
    assert_eq!(fresh.state, State::Firing);
    assert!(fresh.silenced && !fresh.notified);
    assert_eq!(queued().len(), 1, "a silenced alert queues nothing");
    // The silence ends while it still fires: the trigger goes out then.
    clock.set(Timestamp(silence.ends_at.0 + 1));
    svc.evaluate(clock.now(), None).unwrap();
    let q = queued();
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].fingerprint, fresh.fingerprint);

    // A good 11:00 window: acc-low keeps firing for 5m, then resolves and queues a resolve.
    ingest(store.as_ref(), &m, "2026-03-10T11", 120, 20, "b");
    svc.on_ingest("m", "predictions");
    svc.evaluate(clock.now(), None).unwrap();
    assert_eq!(state("acc-low"), Some(State::Firing), "keep_firing_for");
    assert_eq!(state("fresh"), Some(State::Resolved));
    clock.advance_secs(5 * 60);
    svc.evaluate(clock.now(), None).unwrap();
    assert_eq!(state("acc-low"), Some(State::Resolved));
    let statuses: Vec<(String, String)> = queued()
        .iter()
        .map(|n| (n.status.clone(), n.fingerprint.clone()))
        .collect();
    assert_eq!(
        statuses.iter().filter(|(s, _)| s == "resolved").count(),
        2,
        "{statuses:?}"
    );

    // History: every transition, newest first.
    let h: Vec<(String, String)> = svc
        .history(None, 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.alert.rule, e.transition))
        .collect();
    let expect = [
        ("acc-low", "resolved"),
        ("fresh", "resolved"),
        ("fresh", "firing"),
        ("acc-low", "firing"),
        ("acc-low", "pending"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(h, expect);

    // State survives a restart: a new service on the same files sees the same alerts.
    drop(svc);
    let again = AlertService::open(
        dir.path(),
        AlertsConfig::default(),
        vec![],
        store,
        clock.clone(),
    )
    .unwrap();
    assert_eq!(again.alerts(&Default::default()).unwrap().len(), 2);
}

#[tokio::test]
async fn volume_anomaly_and_missing_heartbeats_over_the_real_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("store")).unwrap());
    let clock = Arc::new(ManualClock::new(t("2026-03-10T09:00:00Z")));
    let rules = vec![
        rule(
            json!({"name": "volume", "signal": "predictions", "window": "1h", "min_sample": 0,
            "condition": {"kind": "anomaly", "windows": 5, "z": 3.0},
            "decision": "data-incident", "severity": "critical"}),
        ),
        rule(json!({"name": "train", "signal": "heartbeat:train",
            "condition": {"kind": "heartbeat", "max_age": "1h"},
            "decision": "retrain", "severity": "warning"})),
    ];
    // An Alertmanager, to see the re-send of firing alerts.
    let am = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = AlertsConfig::default();
    config.notifiers.insert(
        "am".into(),
        toml::from_str(&format!(
            "kind = \"alertmanager\"\nurl = \"http://{}\"",
            am.local_addr().unwrap()
        ))
        .unwrap(),
    );
    let svc = AlertService::open(dir.path(), config, rules, store.clone(), clock.clone()).unwrap();
    let m = ModelName::new("m").unwrap();
    let alert = |rule: &str| {
        svc.alerts(&Default::default())
            .unwrap()
            .into_iter()
            .find(|a| a.rule == rule)
    };
    for h in 0..6 {
        ingest(
            store.as_ref(),
            &m,
            &format!("2026-03-10T0{h}"),
            100 + h * 3,
            1000,
            &format!("h{h}"),
        );
    }
    svc.evaluate(clock.now(), None).unwrap();
    assert!(
        alert("volume").is_none(),
        "steady volume: {:?}",
        alert("volume")
    );
    // No run of the job was ever reported: that is a missing run.
    let train = alert("train").unwrap();
    assert_eq!(train.state, State::Firing);
    assert!(train.summary.contains("no run"), "{}", train.summary);

    // Each scheduled pass re-sends firing alerts to Alertmanager, valid for 4 intervals.
    let got = std::thread::spawn(move || one_http_request(am));
    svc.resend_firing().await;
    let body: serde_json::Value = serde_json::from_str(&got.join().unwrap()).unwrap();
    assert_eq!(body[0]["labels"]["alertname"], "train");
    assert_eq!(body[0]["endsAt"], "2026-03-10T09:04:00Z");

    // 07:00 gets a fifth of the usual volume.
    ingest(store.as_ref(), &m, "2026-03-10T07", 20, 1000, "h7");
    svc.heartbeat(
        "m",
        serde_json::from_value(json!({"job": "train", "status": "success"})).unwrap(),
    )
    .unwrap();
    svc.evaluate(clock.now(), None).unwrap();
    let v = alert("volume").unwrap();
    assert_eq!(v.state, State::Firing);
    assert_eq!(v.value, Some(20.0));
    assert!(
        (v.baseline.unwrap() - 109.0).abs() < 1e-9,
        "mean of the 5 windows before (01:00-05:00): {v:?}"
    );
    assert_eq!(v.window_start, Some(t("2026-03-10T07:00:00Z")));
    assert_eq!(alert("train").unwrap().state, State::Resolved);

    // Two hours without a run: missing again.
    clock.advance_secs(2 * 3600);
    svc.evaluate(clock.now(), None).unwrap();
    let train = alert("train").unwrap();
    assert_eq!(train.state, State::Firing);
    assert!(train.summary.contains("2h 0m ago"), "{}", train.summary);
}

/// Several processes on one shared store (ADR 020): the one without the cluster lease steps no
/// alert and sends nothing, even with a notification due; the holder does both, and says so
/// with `modelwatch_alerts_evaluating`. Two services on one alerts file stand for two replicas
/// sharing alert state; `NeverHeld` and `SoleProcess` are the store crate's own leases.
#[tokio::test]
async fn only_the_process_holding_the_cluster_lease_evaluates_and_delivers() {
    use modelwatch_alerts::exposition::Exposition;
    use modelwatch_store::{NeverHeld, SoleProcess};
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("store")).unwrap());
    let clock = Arc::new(ManualClock::new(t("2026-03-10T12:00:00Z")));
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = AlertsConfig::default();
    config.notifiers.insert(
        "hook".into(),
        toml::from_str(&format!(
            "kind = \"webhook\"\nurl = \"http://{}/\"",
            receiver.local_addr().unwrap()
        ))
        .unwrap(),
    );
    let rules = vec![rule(
        json!({"name": "acc-low", "signal": "accuracy", "window": "1h",
        "condition": {"kind": "threshold", "op": "<", "value": 0.9},
        "decision": "rollback", "severity": "critical"}),
    )];
    let open = |lease: Arc<dyn modelwatch_store::Lease>| {
        AlertService::open(
            dir.path(),
            config.clone(),
            rules.clone(),
            store.clone(),
            clock.clone(),
        )
        .unwrap()
        .with_lease(lease)
    };
    let (out, holder) = (open(Arc::new(NeverHeld)), open(Arc::new(SoleProcess)));
    let evaluating = |svc: &AlertService| {
        let mut e = Exposition::new();
        svc.export(&mut e);
        let text = e.finish();
        text.lines()
            .find_map(|l| l.strip_prefix("modelwatch_alerts_evaluating "))
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (evaluating(&out), evaluating(&holder)),
        ("0".into(), "1".into())
    );

    // Accuracy 0.75: the rule's condition holds.
    ingest(
        store.as_ref(),
        &ModelName::new("m").unwrap(),
        "2026-03-10T10",
        120,
        4,
        "a",
    );
    let r = out.evaluate(clock.now(), None).unwrap();
    assert_eq!((r.rules, r.notifications), (0, 0), "{r:?}");
    assert!(out.alerts(&Default::default()).unwrap().is_empty());
    let r = holder.evaluate(clock.now(), None).unwrap();
    assert_eq!(r.notifications, 1, "{r:?}");

    // A notification is due: only the holder sends it.
    assert_eq!(out.deliver_due(clock.now()).await.unwrap(), (0, 0));
    assert_eq!(holder.notifications(Some("pending"), 10).unwrap().len(), 1);
    let got = std::thread::spawn(move || one_http_request(receiver));
    assert_eq!(holder.deliver_due(clock.now()).await.unwrap(), (1, 0));
    assert!(got.join().unwrap().contains("\"rule\":\"acc-low\""));
}
