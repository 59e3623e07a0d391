//! Two `modelwatch serve --store clickhouse://` replicas share one alert state (issue 21 §2,
//! ADR 021): a rule made through one is listed and evaluated by the other, an alert fired by the
//! evaluating replica is listed with its history, acknowledgement and notifications by the
//! other, a silence made on one is seen on the other, and a heartbeat sent to the replica that
//! does not evaluate counts for the one that does. Run on the cluster of
//! `clickhouse::an_embedded_store_moves_onto_two_shards_and_two_servers_serve_it` (one cluster
//! start-up per test binary's ClickHouse test: CI time).

use crate::clickhouse::{cluster::Cluster, serve};
use crate::common::poll;
use serde_json::{json, Value};
use std::path::Path;

const MODEL: &str = "nightly";

/// The alerts of `MODEL` on `s` in `state`.
fn alerts(s: &crate::common::Server, state: &str) -> Vec<Value> {
    let out = s.get_ok(&format!("/v1/alerts?model={MODEL}&state={state}"));
    out["alerts"].as_array().unwrap().clone()
}

/// The transitions of `MODEL` on `s`, newest first.
fn history(s: &crate::common::Server) -> Vec<String> {
    let out = s.get_ok(&format!("/v1/alerts/history?model={MODEL}"));
    (out["history"].as_array().unwrap().iter())
        .map(|h| h["transition"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn two_replicas_share_one_alert_state(cluster: &Cluster, dir: &Path) {
    let url = cluster.url("mw_alert_state");
    let hook = crate::alerts::start_receiver();
    let notifier = format!(
        "[alerts.notifiers.hook]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
        hook.url
    );
    // `a` takes requests and never evaluates; `b` evaluates every second.
    let a = serve(
        &url,
        &dir.join("shared-a"),
        &format!("[alerts]\nevaluate = false\n{notifier}"),
    );
    let b = serve(
        &url,
        &dir.join("shared-b"),
        &format!("[alerts]\ndebounce_ms = 50\nevaluation_interval_seconds = 1\n{notifier}"),
    );

    // A rule made on `a` is `b`'s too: listed there, its name taken there.
    let rule = json!({"name": "train-job", "signal": "heartbeat:train",
        "condition": {"kind": "heartbeat", "max_age": "1d"}, "decision": "data-incident",
        "severity": "critical", "notify": ["hook"]})
    .to_string();
    let (st, out) = a.post(&format!("/v1/models/{MODEL}/rules"), &rule);
    assert_eq!(st, 201, "{out}");
    let listed = b.get_ok(&format!("/v1/models/{MODEL}/rules"));
    assert_eq!(listed["rules"][0]["name"], "train-job", "{listed}");
    assert_eq!(listed["rules"][0]["origin"], "api", "{listed}");
    let (st, out) = b.post(&format!("/v1/models/{MODEL}/rules"), &rule);
    assert_eq!(st, 409, "{out}");

    // `b` evaluates it (no run of the job was ever reported): firing, listed on `a` with its
    // history, its notification sent once and listed as delivered on `a`.
    let firing = poll(30, || match alerts(&a, "firing").as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!("not firing on a: {other:?}")),
    });
    assert_eq!(firing["rule"], "train-job");
    assert_eq!(history(&a), ["firing"]);
    hook.wait_for("/hook", 1, |c| c.body["status"] == "firing");
    let delivered = poll(30, || {
        let out = a.get_ok("/v1/notifications?status=delivered");
        match out["notifications"].as_array().unwrap().as_slice() {
            [one] => Ok(one.clone()),
            other => Err(format!("delivered on a: {other:?}")),
        }
    });
    assert_eq!(delivered["fingerprint"], firing["fingerprint"]);

    // Acknowledged on `a`: kept through `b`'s next evaluations, which rewrite the alert.
    let fp = firing["fingerprint"].as_str().unwrap();
    let (st, out) = a.post(&format!("/v1/alerts/{fp}/ack"), r#"{"owner": "ana"}"#);
    assert_eq!(st, 200, "{out}");
    let evaluated = firing["evaluated_at"].clone();
    let later = poll(30, || match alerts(&b, "firing").as_slice() {
        [one] if one["evaluated_at"] != evaluated => Ok(one.clone()),
        other => Err(format!("not evaluated again on b: {other:?}")),
    });
    assert_eq!(later["acknowledged"]["owner"], "ana", "{later}");

    // A silence made on `b` is listed, active, on `a`.
    let (st, out) = b.post(
        "/v1/silences",
        &json!({"model": MODEL, "duration": "2h", "comment": "maintenance"}).to_string(),
    );
    assert_eq!(st, 201, "{out}");
    let silences = a.get_ok("/v1/silences");
    let listed = &silences["silences"][0];
    assert_eq!(
        (&listed["id"], &listed["active"]),
        (&out["id"], &json!(true)),
        "{silences}"
    );

    // The job's run is reported to `a`: `b` resolves the alert; `a` shows the whole episode.
    let (st, out) = a.post(
        &format!("/v1/models/{MODEL}/heartbeats"),
        r#"{"job": "train", "status": "success"}"#,
    );
    assert_eq!(st, 200, "{out}");
    poll(30, || match alerts(&a, "resolved").as_slice() {
        [_] => Ok(()),
        other => Err(format!("not resolved on a: {other:?}")),
    });
    assert_eq!(history(&a), ["resolved", "acknowledged", "firing"]);
    let jobs = b.get_ok(&format!("/v1/models/{MODEL}/heartbeats"));
    assert_eq!(
        (&jobs["jobs"][0]["runs"], &jobs["jobs"][0]["status"]),
        (&json!(1), &json!("ok")),
        "{jobs}"
    );
    // One evaluating replica: the trigger was sent once, and the resolve follows it.
    let calls = hook.wait_for("/hook", 2, |_| true);
    let statuses: Vec<&Value> = calls.iter().map(|c| &c.body["status"]).collect();
    assert_eq!(statuses, [&json!("firing"), &json!("resolved")]);
}

/// `modelwatch migrate --to clickhouse://…` moves the embedded store's alert state too: the
/// rule made over the API, the firing alert with its acknowledgement and history, the silence
/// and the job's latest run are what a `serve --store` of the target shows; a second run copies
/// nothing twice.
pub(crate) fn migrate_moves_the_alert_state(cluster: &Cluster, dir: &Path) {
    let home = dir.join("embedded-alerts");
    std::fs::create_dir_all(&home).unwrap();
    let mut embedded = crate::common::Server::start_evaluating_every_second(&home);
    let rule = json!({"name": "train-job", "signal": "heartbeat:train",
        "condition": {"kind": "heartbeat", "max_age": "1d"}, "decision": "data-incident",
        "severity": "critical"})
    .to_string();
    let (st, out) = embedded.post(&format!("/v1/models/{MODEL}/rules"), &rule);
    assert_eq!(st, 201, "{out}");
    let firing = poll(30, || match alerts(&embedded, "firing").as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!("not firing: {other:?}")),
    });
    let fp = firing["fingerprint"].as_str().unwrap();
    let (st, out) = embedded.post(&format!("/v1/alerts/{fp}/ack"), r#"{"owner": "bo"}"#);
    assert_eq!(st, 200, "{out}");
    let (st, out) = embedded.post(
        "/v1/silences",
        &json!({"model": MODEL, "duration": "2h"}).to_string(),
    );
    assert_eq!(st, 201, "{out}");
    let (st, out) = embedded.post(
        &format!("/v1/models/{MODEL}/heartbeats"),
        r#"{"job": "backfill", "status": "success"}"#,
    );
    assert_eq!(st, 200, "{out}");
    embedded.stop();

    let url = cluster.url("mw_alert_migrate");
    let data = home.join("data");
    let migrate = || {
        let (ok, out, err) =
            crate::common::modelwatch(&["migrate", "--data", data.to_str().unwrap(), "--to", &url]);
        assert!(ok, "{out}\n{err}");
        out
    };
    let out = migrate();
    assert!(
        out.contains("alert state: copied 1 rules, 1 alerts with 2 history rows, 1 silences, the latest heartbeat of 1 jobs"),
        "{out}"
    );
    assert!(
        migrate().contains("alert state: the target has its own already, not copied"),
        "a second run"
    );

    let moved = serve(&url, &dir.join("moved"), "[alerts]\nevaluate = false\n");
    let rules = moved.get_ok(&format!("/v1/models/{MODEL}/rules"));
    assert_eq!(rules["rules"][0]["name"], "train-job", "{rules}");
    let now = alerts(&moved, "firing");
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["fingerprint"], fp);
    assert_eq!(now[0]["acknowledged"]["owner"], "bo", "{now:?}");
    assert_eq!(history(&moved), ["acknowledged", "firing"]);
    let silences = moved.get_ok("/v1/silences");
    assert_eq!(silences["silences"][0]["active"], true, "{silences}");
    let jobs = moved.get_ok(&format!("/v1/models/{MODEL}/heartbeats"));
    let names: Vec<&str> = (jobs["jobs"].as_array().unwrap().iter())
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["backfill", "train"], "{jobs}");
}
