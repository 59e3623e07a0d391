//! `modelwatch migrate --to clickhouse://…` also moves the embedded store's alert state
//! (`DIR/alerts.sqlite`) into the database, where every `serve --store` replica shares it
//! (ADR 021): rules made over the API, the alerts with their history and acknowledgements,
//! silences, each job's latest heartbeat and the latest arrivals. Not the notification outbox
//! (what was delivered stays delivered; what was not would be sent by the new servers, after
//! the old one may have sent it too). Done once: a target that has alert state already is
//! left as it is, so a rerun of `migrate` copies nothing twice.

use anyhow::Context;
use modelwatch_alerts::db::{AlertStore, SqliteAlertStore};
use modelwatch_alerts::lifecycle::Transition;
use modelwatch_core::Timestamp;
use std::collections::BTreeSet;
use std::path::Path;

/// Copies `data/alerts.sqlite` into `target`; the line `migrate` prints about it.
pub fn copy(data: &Path, target: &dyn AlertStore, models: &[String]) -> anyhow::Result<String> {
    let path = data.join("alerts.sqlite");
    if !path.exists() {
        return Ok("alert state: none in the data directory".into());
    }
    let src = SqliteAlertStore::open(&path)
        .with_context(|| format!("opening the alert state {}", path.display()))?;
    let had = !target.rules()?.is_empty()
        || !target.alerts()?.is_empty()
        || !target.silences()?.is_empty()
        || !target.history(None, 1)?.is_empty();
    if had {
        return Ok("alert state: the target has its own already, not copied".into());
    }
    let now = Timestamp::now();
    let rules = src.rules()?;
    for (model, spec) in &rules {
        target.insert_rule(model, spec, now)?;
    }
    // History oldest first, so the target's ids keep its order; each row's alert is written
    // as the state too, then replaced by the current state (or removed) below.
    let history = src.history(None, usize::MAX)?;
    let mut seen = BTreeSet::new();
    for h in history.iter().rev() {
        seen.insert(h.alert.fingerprint.clone());
        let t = match h.transition.as_str() {
            "acknowledged" => {
                target.acknowledge(&h.alert, h.at)?;
                continue;
            }
            "pending" => Transition::Pending,
            "firing" => Transition::Firing,
            "resolved" => Transition::Resolved,
            "cancelled" => Transition::Cancelled,
            _ => continue,
        };
        let fp = &h.alert.fingerprint;
        target.apply(fp, Some(&h.alert), Some((t, &h.alert)), &[], h.at)?;
    }
    let alerts = src.alerts()?;
    for a in &alerts {
        seen.remove(&a.fingerprint);
        target.apply(&a.fingerprint, Some(a), None, &[], now)?;
    }
    for gone in &seen {
        target.apply(gone, None, None, &[], now)?;
    }
    let silences = src.silences()?;
    for s in &silences {
        let rule = s.rule.as_deref();
        target.insert_silence(&s.model, rule, s.ends_at, &s.comment, s.created_at)?;
    }
    // Heartbeats: each job's latest run (the store lists no more); arrivals: the latest.
    let mut models: BTreeSet<&str> = models.iter().map(String::as_str).collect();
    models.extend(rules.iter().map(|(m, _)| m.as_str()));
    let mut jobs = 0;
    for model in &models {
        for (job, ..) in src.jobs(model)? {
            if let Some(h) = src.last_heartbeat(model, &job)? {
                target.insert_heartbeat(model, &h)?;
                jobs += 1;
            }
        }
        for kind in ["predictions", "labels"] {
            if let Some(at) = src.last_arrival(model, kind)? {
                target.record_arrival(model, kind, at)?;
            }
        }
    }
    Ok(format!(
        "alert state: copied {} rules, {} alerts with {} history rows, {} silences, the latest heartbeat of {jobs} jobs",
        rules.len(),
        alerts.len(),
        history.len(),
        silences.len()
    ))
}
