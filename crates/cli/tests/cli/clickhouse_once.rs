//! Alerts once per cluster, end to end (issue 21 §2: "alert rules evaluated once per cluster,
//! notifications sent once"): two `modelwatch serve --store` replicas, BOTH configured to
//! evaluate every second and to notify the same webhook, share one alert state (ADR 021) and one
//! cluster lease (ADR 020). A rule made through one fires once and its receiver gets one call,
//! however many passes follow. A notification the receiver refused is still in the shared
//! outbox when the lease holder is killed with SIGKILL: the survivor takes the lease over, sends
//! that notification once the receiver is back, and does not notify again the alert that was
//! already firing. Run on the server of `clickhouse_lease` (one ClickHouse start-up: CI time).

use crate::alerts::Receiver;
use crate::clickhouse::{cluster::Cluster, serve};
use crate::clickhouse_lease::{lease_holder, metric};
use crate::common::{poll, Server};
use serde_json::{json, Value};
use std::path::Path;

const MODEL: &str = "once";

/// A job-freshness rule on `job` that fires at once (no run was ever reported).
fn heartbeat_rule(name: &str, job: &str) -> String {
    json!({"name": name, "signal": format!("heartbeat:{job}"),
        "condition": {"kind": "heartbeat", "max_age": "1d"}, "decision": "data-incident",
        "severity": "critical", "notify": ["hook"]})
    .to_string()
}

/// The firing alert of rule `rule` as `s` lists it.
fn firing(s: &Server, rule: &str) -> Option<Value> {
    let out = s.get_ok(&format!("/v1/alerts?model={MODEL}&state=firing"));
    (out["alerts"].as_array().unwrap().iter())
        .find(|a| a["rule"] == rule)
        .cloned()
}

/// The webhook calls for rule `rule` so far.
fn calls_for(hook: &Receiver, rule: &str) -> usize {
    hook.received("/hook", |c| c.body["rule"] == rule).len()
}

/// Waits until `s` has evaluated rule `rule` `passes` more times (its `evaluated_at` moved).
fn wait_for_passes(s: &Server, rule: &str, passes: usize) {
    // The receiver may hear of the alert before its state is written (ADR 021: the outbox,
    // then the history, then the state).
    let mut last = poll(30, || {
        firing(s, rule)
            .map(|a| a["evaluated_at"].clone())
            .ok_or(format!("{rule} not listed as firing yet"))
    });
    for _ in 0..passes {
        last = poll(30, || {
            let now = firing(s, rule).expect("still firing")["evaluated_at"].clone();
            (now != last)
                .then_some(now)
                .ok_or("no new pass yet".to_owned())
        });
    }
}

pub(crate) fn two_evaluating_replicas_notify_once_and_a_takeover_sends_what_was_left(
    server: &Cluster,
    dir: &Path,
) {
    let url = server.url("mw_once");
    let hook = crate::alerts::start_receiver();
    // Both replicas would evaluate and notify: only the lease decides which one does.
    let config = format!(
        "[clickhouse]\nlease_seconds = 2\n\
         [alerts]\ndebounce_ms = 50\nevaluation_interval_seconds = 1\n\
         retry_min_ms = 100\nretry_max_ms = 400\n\
         [alerts.notifiers.hook]\nkind = \"webhook\"\nurl = \"{}/hook\"\n",
        hook.url
    );
    let mut replicas = [
        serve(&url, &dir.join("once-a"), &config),
        serve(&url, &dir.join("once-b"), &config),
    ];
    let holder = lease_holder(&replicas);
    let other = 1 - holder;

    // A rule made through the replica without the lease fires once: one call, whatever the
    // passes after it (every second, over several epochs of the lease).
    let (st, out) = replicas[other].post(
        &format!("/v1/models/{MODEL}/rules"),
        &heartbeat_rule("train-job", "train"),
    );
    assert_eq!(st, 201, "{out}");
    hook.wait_for("/hook", 1, |c| c.body["rule"] == "train-job");
    wait_for_passes(&replicas[other], "train-job", 4);
    assert_eq!(calls_for(&hook, "train-job"), 1, "one firing, one call");

    // The receiver goes down; a second rule fires and its notification is refused and kept.
    hook.set_failing(true);
    let (st, out) = replicas[holder].post(
        &format!("/v1/models/{MODEL}/rules"),
        &heartbeat_rule("backfill-job", "backfill"),
    );
    assert_eq!(st, 201, "{out}");
    poll(30, || {
        let n = replicas[other].get_ok("/v1/notifications?status=failed");
        let refused = (n["notifications"].as_array().unwrap().iter())
            .any(|x| x["attempts"].as_u64().unwrap_or(0) >= 2);
        refused.then_some(()).ok_or(n.to_string())
    });

    // The holder dies without a word; the receiver comes back. The survivor holds the lease,
    // sends the kept notification once, and does not notify the first alert again.
    replicas[holder].kill9();
    hook.set_failing(false);
    poll(30, || {
        let on = metric(&replicas[other], "modelwatch_alerts_evaluating");
        (on == 1.0)
            .then_some(())
            .ok_or(format!("the survivor's gauge reads {on}"))
    });
    hook.wait_for("/hook", 1, |c| c.body["rule"] == "backfill-job");
    let delivered = poll(30, || {
        let n = replicas[other].get_ok("/v1/notifications?status=delivered");
        let list = n["notifications"].as_array().unwrap().clone();
        (list.len() == 2).then_some(list).ok_or(n.to_string())
    });
    assert!(
        delivered
            .iter()
            .any(|x| x["attempts"].as_u64().unwrap() >= 3),
        "the refused notification was delivered after its failed attempts: {delivered:?}"
    );
    wait_for_passes(&replicas[other], "backfill-job", 3);
    assert_eq!(
        calls_for(&hook, "backfill-job"),
        1,
        "sent once by the survivor"
    );
    assert_eq!(
        calls_for(&hook, "train-job"),
        1,
        "not notified again after the takeover"
    );
}
