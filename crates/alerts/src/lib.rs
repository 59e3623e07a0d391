//! Alerts that lead to decisions: rules over the engine's per-window reports, the Prometheus
//! alert lifecycle (pending, firing, resolved) driven by a [`Clock`], silences, and
//! notifications (webhook, Slack, PagerDuty, email, Alertmanager) delivered from an outbox with
//! retries. Also the text exposition of `GET /metrics`.
//!
//! Pure parts (rule validation, conditions, lifecycle steps) have no IO; [`AlertService`] ties
//! them to the event store (read only, through the engine) and to its alert state
//! ([`db::AlertStore`]: its own SQLite file, or one shared by every replica of a cluster).

pub mod condition;
pub mod conformance;
pub mod db;
pub mod exposition;
pub mod lifecycle;
pub mod notify;
pub mod rule;
pub mod service;
pub mod signals;

pub use lifecycle::{Alert, Clock, ManualClock, State, SystemClock};
pub use rule::{Rule, RuleError, RuleSpec};
pub use service::{AlertService, AlertsConfig, AlertsError};
