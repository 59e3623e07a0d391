//! The alert lifecycle as Prometheus has it: a condition that starts holding makes the alert
//! `pending`; once it has held for the rule's `for` the alert is `firing`; when it stops
//! holding the alert stays firing for `keep_firing_for`, then is `resolved`. One alert per
//! (model, rule): its fingerprint, so re-evaluations never duplicate it.
//!
//! Time comes from a [`Clock`], so tests move time by hand and never sleep.

use crate::condition::{Evaluation, Outcome};
use crate::rule::Rule;
use modelwatch_core::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to (tests).
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(t: Timestamp) -> ManualClock {
        ManualClock(Mutex::new(t))
    }

    pub fn set(&self, t: Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    pub fn advance_secs(&self, secs: i64) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t = Timestamp(t.0 + secs * 1_000_000);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Firing,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Firing => "firing",
            State::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "firing" => Some(State::Firing),
            "resolved" => Some(State::Resolved),
            _ => None,
        }
    }
}

/// One alert: the current episode of one rule on one model. The JSON of `GET /v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub model: String,
    pub rule: String,
    pub signal: String,
    pub severity: String,
    pub decision: String,
    pub state: State,
    /// When the condition started holding (this episode).
    pub active_at: Timestamp,
    pub fired_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Last evaluation at which the condition held.
    pub last_active_at: Timestamp,
    pub evaluated_at: Timestamp,
    /// What the last evaluation with data saw.
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub window_start: Option<Timestamp>,
    pub window_end: Option<Timestamp>,
    pub n: Option<u64>,
    pub summary: String,
    /// A firing notification was queued for this episode (a resolve follows only then).
    pub notified: bool,
    /// Matched by an active silence at the last evaluation.
    #[serde(default)]
    pub silenced: bool,
    /// Someone took it (`POST /v1/alerts/{fingerprint}/ack`): kept for the episode and sent
    /// with its later notifications; a new episode starts unacknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Ack>,
    /// A performance (or estimated-performance) alert's likely causes: computed once when it
    /// fired, kept for the episode (`engine::causes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causes: Option<modelwatch_engine::causes::Causes>,
}

/// Who acknowledged an alert, when, and what they said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub owner: String,
    pub comment: String,
    pub at: Timestamp,
}

/// The stable identity of (model, rule): 16 hex digits of a SHA-256.
pub fn fingerprint(model: &str, rule: &str) -> String {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(rule.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an evaluation did to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The condition started holding; `for` not yet reached.
    Pending,
    Firing,
    Resolved,
    /// The condition stopped holding before `for` was reached: nobody was told.
    Cancelled,
}

/// Moves `prev` (the rule's current alert, if any) by one evaluation at `now`. Returns the new
/// alert (None: no alert) and the transition, if the state changed.
pub fn step(
    prev: Option<&Alert>,
    rule: &Rule,
    eval: &Evaluation,
    now: Timestamp,
) -> (Option<Alert>, Option<Transition>) {
    let for_ = rule.spec.for_.micros();
    let keep = rule.spec.keep_firing_for.micros();
    // A resolved alert is history: a new activation starts a new episode.
    let live = prev.filter(|a| a.state != State::Resolved);
    let observe = |a: &mut Alert| {
        a.evaluated_at = now;
        if eval.outcome != Outcome::Unknown {
            a.value = eval.value;
            a.baseline = eval.baseline;
            a.window_start = eval.window_start;
            a.window_end = eval.window_end;
            a.n = eval.n;
        }
        a.summary = eval.summary.clone();
    };
    match (live, eval.outcome) {
        (None, Outcome::Active) => {
            let mut a = Alert {
                fingerprint: fingerprint(&rule.model, &rule.spec.name),
                model: rule.model.clone(),
                rule: rule.spec.name.clone(),
                signal: rule.spec.signal.clone(),
                severity: rule.spec.severity.as_str().to_owned(),
                decision: rule.spec.decision.as_str().to_owned(),
                state: State::Pending,
                active_at: now,
                fired_at: None,
                resolved_at: None,
                last_active_at: now,
                evaluated_at: now,
                value: None,
                baseline: None,
                window_start: None,
                window_end: None,
                n: None,
                summary: String::new(),
                notified: false,
                silenced: false,
                acknowledged: None,
                causes: None,
            };
            observe(&mut a);
            if for_ == 0 {
                a.state = State::Firing;
                a.fired_at = Some(now);
                (Some(a), Some(Transition::Firing))
            } else {
                (Some(a), Some(Transition::Pending))
            }
        }
        (None, _) => (prev.cloned(), None),
        (Some(a), Outcome::Unknown) => {
            let mut a = a.clone();
            a.evaluated_at = now;
            (Some(a), None)
        }
        (Some(a), Outcome::Active) => {
            let mut a = a.clone();
            observe(&mut a);
            a.last_active_at = now;
            if a.state == State::Pending && now.0 - a.active_at.0 >= for_ {
                a.state = State::Firing;
                a.fired_at = Some(now);
                return (Some(a), Some(Transition::Firing));
            }
            (Some(a), None)
        }
        (Some(a), Outcome::Inactive) => {
            let mut a = a.clone();
            observe(&mut a);
            match a.state {
                State::Pending => (None, Some(Transition::Cancelled)),
                State::Firing if now.0 - a.last_active_at.0 >= keep => {
                    a.state = State::Resolved;
                    a.resolved_at = Some(now);
                    (Some(a), Some(Transition::Resolved))
                }
                _ => (Some(a), None),
            }
        }
    }
}

/// Resolves an alert whose rule no longer exists.
pub fn resolve_orphan(a: &Alert, now: Timestamp) -> Option<(Alert, Transition)> {
    match a.state {
        State::Resolved => None,
        State::Pending => Some((a.clone(), Transition::Cancelled)),
        State::Firing => {
            let mut a = a.clone();
            a.state = State::Resolved;
            a.resolved_at = Some(now);
            a.evaluated_at = now;
            a.summary = "the rule was removed".to_owned();
            Some((a, Transition::Resolved))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Origin, RuleSpec};

    fn rule(for_: &str, keep: &str) -> Rule {
        RuleSpec::from_json(serde_json::json!({
            "name": "acc", "signal": "accuracy",
            "condition": {"kind": "threshold", "op": "<", "value": 0.9},
            "decision": "review", "severity": "warning",
            "for": for_, "keep_firing_for": keep}))
        .unwrap()
        .validate("m", Origin::Api, &[])
        .unwrap()
    }

    fn eval(outcome: Outcome) -> Evaluation {
        Evaluation {
            outcome,
            value: Some(0.8),
            baseline: None,
            window_start: None,
            window_end: None,
            n: Some(100),
            summary: String::new(),
        }
    }

    /// Runs a sequence of (seconds to advance, outcome) and returns the transitions.
    fn run(r: &Rule, steps: &[(i64, Outcome)]) -> Vec<Option<Transition>> {
        let clock = ManualClock::new(Timestamp::from_secs(1_800_000_000));
        let mut alert = None;
        steps
            .iter()
            .map(|(dt, o)| {
                clock.advance_secs(*dt);
                let (a, t) = step(alert.as_ref(), r, &eval(*o), clock.now());
                alert = a;
                t
            })
            .collect()
    }

    use Outcome::{Active as A, Inactive as I, Unknown as U};
    use Transition::*;

    #[test]
    fn fires_at_once_without_for() {
        assert_eq!(
            run(&rule("0", "0"), &[(0, A), (60, A), (60, I), (60, I)]),
            [Some(Firing), None, Some(Resolved), None]
        );
    }

    #[test]
    fn pending_until_for_has_passed() {
        let r = rule("10m", "0");
        assert_eq!(
            run(&r, &[(0, A), (300, A), (299, A), (1, A), (60, A)]),
            [Some(Pending), None, None, Some(Firing), None]
        );
        // Stops holding while pending: cancelled, and the next activation starts over.
        assert_eq!(
            run(&r, &[(0, A), (300, I), (60, A), (540, A), (60, A)]),
            [
                Some(Pending),
                Some(Cancelled),
                Some(Pending),
                None,
                Some(Firing)
            ]
        );
    }

    #[test]
    fn keep_firing_for_holds_a_flapping_alert() {
        let r = rule("0", "15m");
        assert_eq!(
            run(
                &r,
                &[(0, A), (60, I), (600, I), (60, A), (600, I), (300, I)]
            ),
            [Some(Firing), None, None, None, None, Some(Resolved)]
        );
    }

    #[test]
    fn unknown_changes_nothing_and_resolved_starts_a_new_episode() {
        let r = rule("0", "0");
        assert_eq!(
            run(&r, &[(0, U), (0, A), (60, U), (60, U), (60, I), (60, A)]),
            [None, Some(Firing), None, None, Some(Resolved), Some(Firing)]
        );
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        assert_eq!(fingerprint("m", "r"), fingerprint("m", "r"));
        assert_ne!(fingerprint("m", "r"), fingerprint("mr", ""));
        assert_eq!(fingerprint("m", "r").len(), 16);
    }
}
