//! What every [`AlertStore`] must do, as functions over `&dyn AlertStore`: rules by name,
//! an evaluation's write (state, history, notifications), acknowledgements, silences that
//! expire, heartbeats, arrivals, and the outbox's due / delivered / failed. Each backend's tests
//! call every function in [`ALL`] on a fresh, empty store (the embedded SQLite file here, each
//! ClickHouse set-up in `crates/store-clickhouse/tests`). Panics on a failed check, like a test.

use crate::db::{AlertStore, Heartbeat};
use crate::lifecycle::{fingerprint, Ack, Alert, State, Transition};
use crate::notify::Notification;
use crate::rule::RuleSpec;
use modelwatch_core::Timestamp;

/// One check: takes a fresh, empty alert store.
pub type Check = fn(&dyn AlertStore);

/// Every check, by name.
pub const ALL: &[(&str, Check)] = &[
    (
        "rules_are_created_and_deleted_by_name",
        rules_are_created_and_deleted_by_name,
    ),
    (
        "an_evaluation_writes_the_alert_its_history_and_its_notifications",
        an_evaluation_writes_the_alert_its_history_and_its_notifications,
    ),
    (
        "an_acknowledgement_is_kept_on_the_alert_and_in_its_history",
        an_acknowledgement_is_kept_on_the_alert_and_in_its_history,
    ),
    (
        "silences_are_listed_and_expire",
        silences_are_listed_and_expire,
    ),
    (
        "heartbeats_give_each_jobs_runs_and_latest_run",
        heartbeats_give_each_jobs_runs_and_latest_run,
    ),
    ("the_latest_arrival_is_kept", the_latest_arrival_is_kept),
    (
        "the_outbox_is_due_delivered_and_failed_in_order",
        the_outbox_is_due_delivered_and_failed_in_order,
    ),
];

/// A fixed "now": 2027-01-15T08:00:00Z.
pub fn t0() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

fn at(secs: i64) -> Timestamp {
    Timestamp(t0().0 + secs * 1_000_000)
}

fn spec(name: &str, threshold: f64) -> RuleSpec {
    RuleSpec::from_json(serde_json::json!({
        "name": name, "signal": "accuracy",
        "condition": {"kind": "threshold", "op": "<", "value": threshold},
        "decision": "review", "severity": "warning"}))
    .expect("a valid rule")
}

/// The alert of (model, rule) in `state`, its episode started at `active_at`.
pub fn alert(model: &str, rule: &str, state: State, active_at: Timestamp) -> Alert {
    Alert {
        fingerprint: fingerprint(model, rule),
        model: model.to_owned(),
        rule: rule.to_owned(),
        signal: "accuracy".to_owned(),
        severity: "warning".to_owned(),
        decision: "review".to_owned(),
        state,
        active_at,
        fired_at: (state != State::Pending).then_some(active_at),
        resolved_at: (state == State::Resolved).then_some(active_at),
        last_active_at: active_at,
        evaluated_at: active_at,
        value: Some(0.8),
        baseline: None,
        window_start: None,
        window_end: None,
        n: Some(100),
        summary: format!("accuracy 0.80 < 0.9 ({})", state.as_str()),
        notified: state != State::Pending,
        silenced: false,
        acknowledged: None,
        causes: None,
    }
}

fn to(notifiers: &[&str], a: &Alert) -> Vec<(String, Notification)> {
    notifiers
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Notification {
                    alert: a.clone(),
                    dashboard_url: None,
                },
            )
        })
        .collect()
}

fn rules_are_created_and_deleted_by_name(s: &dyn AlertStore) {
    assert!(s.rules().unwrap().is_empty());
    assert!(s.insert_rule("fraud", &spec("acc", 0.9), t0()).unwrap());
    assert!(s.insert_rule("churn", &spec("acc", 0.7), t0()).unwrap());
    assert!(s.insert_rule("fraud", &spec("a-low", 0.5), t0()).unwrap());
    // A name is taken once per model: the second create changes nothing.
    assert!(!s.insert_rule("fraud", &spec("acc", 0.1), at(1)).unwrap());
    let listed = s.rules().unwrap();
    assert_eq!(
        listed,
        vec![
            ("churn".to_owned(), spec("acc", 0.7)),
            ("fraud".to_owned(), spec("a-low", 0.5)),
            ("fraud".to_owned(), spec("acc", 0.9)),
        ]
    );
    assert!(s.delete_rule("fraud", "acc").unwrap());
    assert!(!s.delete_rule("fraud", "acc").unwrap(), "deleted twice");
    assert!(!s.delete_rule("fraud", "never").unwrap());
    let names: Vec<(String, String)> = (s.rules().unwrap().into_iter())
        .map(|(m, r)| (m, r.name))
        .collect();
    assert_eq!(
        names,
        [
            ("churn".into(), "acc".into()),
            ("fraud".into(), "a-low".into())
        ]
    );
    // The name is free again, and the new rule is the one listed.
    assert!(s.insert_rule("fraud", &spec("acc", 0.95), at(2)).unwrap());
    let again = s.rules().unwrap();
    assert!(
        again.contains(&("fraud".to_owned(), spec("acc", 0.95))),
        "{again:?}"
    );
    assert_eq!(again.len(), 3);
}

fn an_evaluation_writes_the_alert_its_history_and_its_notifications(s: &dyn AlertStore) {
    let fp = fingerprint("fraud", "acc");
    assert_eq!(s.alert(&fp).unwrap(), None);
    let pending = alert("fraud", "acc", State::Pending, at(0));
    s.apply(
        &fp,
        Some(&pending),
        Some((Transition::Pending, &pending)),
        &[],
        at(0),
    )
    .unwrap();
    assert_eq!(s.alert(&fp).unwrap(), Some(pending.clone()));
    // An evaluation with no transition rewrites the alert only (evaluated_at moves).
    let mut seen = pending.clone();
    seen.evaluated_at = at(30);
    s.apply(&fp, Some(&seen), None, &[], at(30)).unwrap();
    assert_eq!(s.alert(&fp).unwrap(), Some(seen.clone()));
    let mut firing = alert("fraud", "acc", State::Firing, at(0));
    firing.fired_at = Some(at(60));
    firing.evaluated_at = at(60);
    s.apply(
        &fp,
        Some(&firing),
        Some((Transition::Firing, &firing)),
        &to(&["hook", "pager"], &firing),
        at(60),
    )
    .unwrap();
    // A second alert, of another model, cancelled: its row is gone, its history stays.
    let other_fp = fingerprint("churn", "acc");
    let other = alert("churn", "acc", State::Pending, at(70));
    s.apply(
        &other_fp,
        Some(&other),
        Some((Transition::Pending, &other)),
        &[],
        at(70),
    )
    .unwrap();
    s.apply(
        &other_fp,
        None,
        Some((Transition::Cancelled, &other)),
        &[],
        at(80),
    )
    .unwrap();
    assert_eq!(s.alert(&other_fp).unwrap(), None);
    assert_eq!(s.alerts().unwrap(), vec![firing.clone()]);

    let history = s.history(None, 100).unwrap();
    let rows: Vec<(&str, Timestamp, &str)> = history
        .iter()
        .map(|h| (h.transition.as_str(), h.at, h.alert.model.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("cancelled", at(80), "churn"),
            ("pending", at(70), "churn"),
            ("firing", at(60), "fraud"),
            ("pending", at(0), "fraud"),
        ],
        "newest first"
    );
    assert!(history.windows(2).all(|w| w[0].id > w[1].id), "ids grow");
    assert_eq!(history[2].alert, firing);
    let fraud = s.history(Some("fraud"), 100).unwrap();
    assert_eq!(fraud.len(), 2);
    assert_eq!(s.history(None, 1).unwrap()[0].transition, "cancelled");
    assert!(s.history(Some("none"), 10).unwrap().is_empty());

    // The notifications went to the outbox, one per notifier, pending.
    let out = s.outbox(None, 100).unwrap();
    let mut notifiers: Vec<&str> = out.iter().map(|e| e.notifier.as_str()).collect();
    notifiers.sort();
    assert_eq!(notifiers, ["hook", "pager"]);
    for e in &out {
        assert_eq!(
            (e.fingerprint.as_str(), e.status.as_str()),
            (fp.as_str(), "firing")
        );
        assert_eq!((e.created_at, e.attempts), (at(60), 0));
        assert_eq!(e.next_attempt_at, Some(at(60)));
        assert_eq!((e.delivered_at, e.last_error.as_deref()), (None, None));
        assert_eq!(e.notification.as_ref().unwrap().alert, firing);
    }
}

fn an_acknowledgement_is_kept_on_the_alert_and_in_its_history(s: &dyn AlertStore) {
    let fp = fingerprint("fraud", "acc");
    let firing = alert("fraud", "acc", State::Firing, at(0));
    s.apply(
        &fp,
        Some(&firing),
        Some((Transition::Firing, &firing)),
        &[],
        at(0),
    )
    .unwrap();
    let mut acked = firing.clone();
    acked.acknowledged = Some(Ack {
        owner: "ana".into(),
        comment: "on it".into(),
        at: at(10),
    });
    s.acknowledge(&acked, at(10)).unwrap();
    assert_eq!(s.alert(&fp).unwrap(), Some(acked.clone()));
    assert_eq!(s.alerts().unwrap(), vec![acked.clone()]);
    let h = s.history(Some("fraud"), 10).unwrap();
    assert_eq!(h[0].transition, "acknowledged");
    assert_eq!((h[0].at, &h[0].alert), (at(10), &acked));
    assert_eq!(h[1].transition, "firing");
    // Taken again by someone else: the latest owner is the one shown.
    let mut again = acked.clone();
    again.acknowledged = Some(Ack {
        owner: "bo".into(),
        comment: String::new(),
        at: at(20),
    });
    s.acknowledge(&again, at(20)).unwrap();
    assert_eq!(s.alert(&fp).unwrap(), Some(again.clone()));
    // The evaluation that follows writes the alert it read (with the acknowledgement).
    let mut evaluated = again.clone();
    evaluated.evaluated_at = at(30);
    s.apply(&fp, Some(&evaluated), None, &[], at(30)).unwrap();
    assert_eq!(s.alert(&fp).unwrap(), Some(evaluated));
    assert_eq!(s.history(None, 10).unwrap().len(), 3);
}

fn silences_are_listed_and_expire(s: &dyn AlertStore) {
    assert!(s.silences().unwrap().is_empty());
    let a = s
        .insert_silence("fraud", Some("acc"), at(3600), "deploy", at(0))
        .unwrap();
    let b = s
        .insert_silence("fraud", None, at(7200), "", at(5))
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(
        (a.model.as_str(), a.rule.as_deref(), a.ends_at, a.created_at),
        ("fraud", Some("acc"), at(3600), at(0))
    );
    assert_eq!(a.comment, "deploy");
    assert_eq!(b.rule, None);
    assert_eq!(s.silences().unwrap(), vec![a.clone(), b.clone()], "by id");
    assert!(a.matches("fraud", "acc", at(10)) && !a.matches("fraud", "other", at(10)));
    assert!(b.matches("fraud", "other", at(10)) && !b.matches("churn", "acc", at(10)));
    // Expired now: kept, ending now; an expired one is not extended by a later expiry.
    assert!(s.expire_silence(a.id, at(100)).unwrap());
    assert!(s.expire_silence(a.id, at(200)).unwrap());
    let listed = s.silences().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].ends_at, at(100));
    assert!(!listed[0].matches("fraud", "acc", at(150)));
    assert_eq!(listed[1], b);
    let missing = a.id.max(b.id) + 1_000_000;
    assert!(!s.expire_silence(missing, at(100)).unwrap());
}

fn heartbeats_give_each_jobs_runs_and_latest_run(s: &dyn AlertStore) {
    let run = |job: &str, status: &str, ts: i64, msg: Option<&str>| Heartbeat {
        job: job.into(),
        status: status.into(),
        timestamp: at(ts),
        received_at: at(1000),
        message: msg.map(str::to_owned),
    };
    assert_eq!(s.last_heartbeat("fraud", "nightly").unwrap(), None);
    assert!(s.jobs("fraud").unwrap().is_empty());
    // Sent out of order: the latest run is the latest by its own timestamp.
    s.insert_heartbeat("fraud", &run("nightly", "success", 100, None))
        .unwrap();
    s.insert_heartbeat("fraud", &run("nightly", "failed", 300, Some("oom")))
        .unwrap();
    s.insert_heartbeat("fraud", &run("nightly", "success", 200, None))
        .unwrap();
    s.insert_heartbeat("fraud", &run("backfill", "failed", 50, None))
        .unwrap();
    s.insert_heartbeat("churn", &run("nightly", "success", 900, None))
        .unwrap();
    assert_eq!(
        s.last_heartbeat("fraud", "nightly").unwrap(),
        Some(run("nightly", "failed", 300, Some("oom")))
    );
    assert_eq!(
        s.jobs("fraud").unwrap(),
        vec![
            ("backfill".to_owned(), 1, 1, None),
            ("nightly".to_owned(), 3, 1, Some(at(200))),
        ]
    );
    assert_eq!(
        s.jobs("churn").unwrap(),
        vec![("nightly".to_owned(), 1, 0, Some(at(900)))]
    );
}

fn the_latest_arrival_is_kept(s: &dyn AlertStore) {
    assert_eq!(s.last_arrival("fraud", "predictions").unwrap(), None);
    s.record_arrival("fraud", "predictions", at(20)).unwrap();
    s.record_arrival("fraud", "predictions", at(10)).unwrap();
    s.record_arrival("fraud", "labels", at(5)).unwrap();
    assert_eq!(
        s.last_arrival("fraud", "predictions").unwrap(),
        Some(at(20))
    );
    assert_eq!(s.last_arrival("fraud", "labels").unwrap(), Some(at(5)));
    // A second later than the latest: recorded (a backend may skip arrivals closer than that).
    s.record_arrival("fraud", "predictions", at(30)).unwrap();
    assert_eq!(
        s.last_arrival("fraud", "predictions").unwrap(),
        Some(at(30))
    );
    assert_eq!(s.last_arrival("churn", "predictions").unwrap(), None);
}

fn the_outbox_is_due_delivered_and_failed_in_order(s: &dyn AlertStore) {
    assert!(s.due(at(0), 100).unwrap().is_empty());
    assert!(s.outbox_counts().unwrap().is_empty());
    let fp = fingerprint("fraud", "acc");
    let firing = alert("fraud", "acc", State::Firing, at(0));
    s.apply(
        &fp,
        Some(&firing),
        Some((Transition::Firing, &firing)),
        &to(&["hook", "pager"], &firing),
        at(0),
    )
    .unwrap();
    let due = s.due(at(0), 100).unwrap();
    assert_eq!(due.len(), 2);
    assert!(due[0].id < due[1].id, "oldest first");
    let (hook, pager) = match due[0].notifier.as_str() {
        "hook" => (due[0].clone(), due[1].clone()),
        _ => (due[1].clone(), due[0].clone()),
    };
    assert_eq!(s.due(at(0), 1).unwrap().len(), 1, "the limit");
    assert!(s.due(at(-1), 100).unwrap().is_empty(), "not due before");

    // The hook fails: retried at +10 s; the pager is delivered.
    s.mark_failed(hook.id, "HTTP 500", at(10)).unwrap();
    s.mark_delivered(pager.id, at(1)).unwrap();
    assert!(s.due(at(5), 100).unwrap().is_empty());
    let failed = s.outbox(Some("failed"), 100).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (
            failed[0].id,
            failed[0].attempts,
            failed[0].last_error.as_deref()
        ),
        (hook.id, 1, Some("HTTP 500"))
    );
    assert_eq!(failed[0].next_attempt_at, Some(at(10)));
    let delivered = s.outbox(Some("delivered"), 100).unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        (
            delivered[0].id,
            delivered[0].delivered_at,
            delivered[0].attempts
        ),
        (pager.id, Some(at(1)), 1)
    );
    assert_eq!(delivered[0].next_attempt_at, None);
    assert_eq!(s.outbox(Some("pending"), 100).unwrap().len(), 1);
    assert_eq!(s.outbox_counts().unwrap(), vec![("hook".to_owned(), 1, 1)]);

    // The alert resolves: its resolve to the hook waits behind the undelivered trigger.
    let mut resolved = firing.clone();
    resolved.state = State::Resolved;
    resolved.resolved_at = Some(at(20));
    s.apply(
        &fp,
        Some(&resolved),
        Some((Transition::Resolved, &resolved)),
        &to(&["hook", "pager"], &resolved),
        at(20),
    )
    .unwrap();
    let due: Vec<(i64, String, String)> = (s.due(at(20), 100).unwrap().into_iter())
        .map(|e| (e.id, e.notifier, e.status))
        .collect();
    assert_eq!(due.len(), 2, "{due:?}");
    assert_eq!((due[0].0, due[0].2.as_str()), (hook.id, "firing"));
    assert_eq!(
        (due[1].1.as_str(), due[1].2.as_str()),
        ("pager", "resolved")
    );
    s.mark_delivered(hook.id, at(21)).unwrap();
    let due = s.due(at(21), 100).unwrap();
    let statuses: Vec<(&str, &str)> = due
        .iter()
        .map(|e| (e.notifier.as_str(), e.status.as_str()))
        .collect();
    assert_eq!(statuses, [("hook", "resolved"), ("pager", "resolved")]);
    let all = s.outbox(None, 100).unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(s.outbox(None, 3).unwrap().len(), 3);
    let counts = s.outbox_counts().unwrap();
    assert_eq!(
        counts,
        vec![("hook".to_owned(), 1, 0), ("pager".to_owned(), 1, 0)]
    );
    let hook_after = (s.outbox(Some("delivered"), 100).unwrap().into_iter())
        .find(|e| e.id == hook.id)
        .unwrap();
    assert_eq!(
        (hook_after.attempts, hook_after.last_error),
        (2, None),
        "delivered on the second attempt"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::SqliteAlertStore;

    #[test]
    fn every_check_passes_on_the_embedded_alert_store() {
        for (name, check) in ALL {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteAlertStore::open(&dir.path().join("alerts.sqlite")).unwrap();
            eprintln!("{name}");
            check(&store);
        }
    }
}
