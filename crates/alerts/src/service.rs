//! The alert service: evaluates every rule on a schedule and after ingest (debounced), moves
//! alerts through their lifecycle, queues notifications in the outbox and delivers them with
//! retries; also keeps the latest per-model values for `GET /metrics`.
//!
//! This module holds the config, the error and the service's state; each responsibility is a
//! module of its own: `rules` (rules over the API), `alerts` (listing, acknowledgements,
//! history), `silences`, `heartbeats` (job runs and their state), `evaluation` (one pass: the
//! conditions, the lifecycle step, the write of state, history and outbox), `delivery` (the
//! outbox sent with retries, Alertmanager re-sends), `schedule` (the loops `run` starts) and
//! `metrics` (the values of `GET /metrics` and their exposition).

mod alerts;
mod delivery;
mod evaluation;
mod heartbeats;
mod metrics;
mod rules;
mod schedule;
mod silences;

pub use alerts::{AckRequest, AlertFilter};
pub use evaluation::PassReport;
pub use heartbeats::{HeartbeatRequest, JobStatus};
pub use rules::RuleView;
pub use silences::SilenceRequest;

use crate::db::{AlertStore, DbError, SqliteAlertStore};
use crate::lifecycle::Clock;
use crate::notify::{NotifierConfig, Sender};
use crate::rule::{Origin, Rule, RuleError, RuleSpec};
use metrics::ModelMetrics;
use modelwatch_core::{ErrorCode, ModelName, ServiceError, Timestamp, Window};
use modelwatch_store::{Lease, SoleProcess, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

/// `[alerts]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Whether this process evaluates the rules and sends notifications. Several servers of one
    /// ClickHouse store share the alert state, but each evaluating replica evaluates and
    /// notifies on its own: off on every replica but one.
    pub evaluate: bool,
    /// How often every rule is evaluated.
    pub evaluation_interval_seconds: u64,
    /// After ingest, wait this long for more batches before evaluating the model.
    pub debounce_ms: u64,
    /// First retry delay of a failed notification; doubles per attempt up to `retry_max_ms`.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// Base URL of the dashboard, for links in notifications.
    pub dashboard_url: Option<String>,
    /// Window of the per-model values on `GET /metrics`.
    pub metrics_window: String,
    /// Per model, a feature (or `tag:<name>`) whose values get their own performance series on
    /// `GET /metrics` (the 10 largest values plus `other`): `{ fraud = "country" }`.
    pub metrics_segments: BTreeMap<String, String>,
    pub notifiers: BTreeMap<String, NotifierConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            evaluate: true,
            evaluation_interval_seconds: 60,
            debounce_ms: 2000,
            retry_min_ms: 1000,
            retry_max_ms: 300_000,
            dashboard_url: None,
            metrics_window: "1h".to_owned(),
            metrics_segments: BTreeMap::new(),
            notifiers: BTreeMap::new(),
        }
    }
}

impl AlertsConfig {
    /// Checks the values and every notifier; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.evaluation_interval_seconds == 0 {
            return Err("alerts.evaluation_interval_seconds must be greater than 0".into());
        }
        if self.retry_min_ms == 0 || self.retry_max_ms < self.retry_min_ms {
            return Err(
                "alerts.retry_min_ms must be above 0 and at most alerts.retry_max_ms".into(),
            );
        }
        Window::parse(&self.metrics_window).map_err(|e| format!("alerts.metrics_window: {e}"))?;
        for (model, segment) in &self.metrics_segments {
            ModelName::new(model).map_err(|e| format!("alerts.metrics_segments.{model}: {e}"))?;
            if segment.trim().is_empty() {
                return Err(format!(
                    "alerts.metrics_segments.{model}: name a feature or tag:<name>"
                ));
            }
            // A slice (`country:DE`) is one segment, not values to list: its report has no
            // per-value series, so the setting would be accepted and export nothing.
            if let Ok(modelwatch_engine::performance::Segment {
                key,
                value: Some(value),
            }) = modelwatch_engine::performance::Segment::parse(segment)
            {
                let name = match key {
                    modelwatch_engine::performance::SegmentKey::Feature(f) => f,
                    modelwatch_engine::performance::SegmentKey::Tag(t) => format!("tag:{t}"),
                };
                return Err(format!(
                    "alerts.metrics_segments.{model}: {segment:?} is one slice ({name} = \
                     {value:?}); name the feature or tag:<name> whose values each get a \
                     series, e.g. {name:?}"
                ));
            }
        }
        for (name, n) in &self.notifiers {
            n.validate(name)
                .map_err(|e| format!("alerts.notifiers.{name}: {e}"))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The model store (or the data directory) failed: never the caller's mistake.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError for AlertsError {
    fn code(&self) -> ErrorCode {
        match self {
            AlertsError::Db(e) => e.code(),
            AlertsError::Invalid(_) => ErrorCode::InvalidInput,
            AlertsError::Rule(e) => e.code(),
            AlertsError::NotFound(_) => ErrorCode::NotFound,
            AlertsError::Conflict(_) => ErrorCode::Conflict,
            AlertsError::Store(e) => e.code(),
        }
    }
}

pub struct AlertService {
    /// The alert state: this process's SQLite file, or shared by every replica (ClickHouse).
    db: Arc<dyn AlertStore>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: AlertsConfig,
    sender: Sender,
    config_rules: Vec<Rule>,
    dirty: Mutex<BTreeSet<String>>,
    wake_eval: Notify,
    wake_delivery: Notify,
    /// One evaluation at a time: the schedule and ingest triggers never interleave.
    evaluating: Mutex<()>,
    metrics: RwLock<BTreeMap<String, ModelMetrics>>,
    /// Evaluation and delivery run only while this process holds the cluster lease (ADR 020;
    /// always, on the embedded store).
    lease: Arc<dyn Lease>,
}

impl AlertService {
    /// Opens `<data_dir>/alerts.sqlite` and checks the config's rules and notifiers.
    pub fn open(
        data_dir: &Path,
        config: AlertsConfig,
        config_rules: Vec<(String, RuleSpec)>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<AlertService, AlertsError> {
        // Checked before anything is created on disk.
        let (sender, rules) = checked(&config, config_rules)?;
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let db = Arc::new(SqliteAlertStore::open(&data_dir.join("alerts.sqlite"))?);
        Ok(AlertService::new(db, config, sender, rules, store, clock))
    }

    /// The service over an alert state of the caller's choosing (a shared one, when several
    /// processes serve one store); checks the config's rules and notifiers.
    pub fn with_store(
        db: Arc<dyn AlertStore>,
        config: AlertsConfig,
        config_rules: Vec<(String, RuleSpec)>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<AlertService, AlertsError> {
        let (sender, rules) = checked(&config, config_rules)?;
        Ok(AlertService::new(db, config, sender, rules, store, clock))
    }

    fn new(
        db: Arc<dyn AlertStore>,
        config: AlertsConfig,
        sender: Sender,
        rules: Vec<Rule>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> AlertService {
        AlertService {
            db,
            store,
            clock,
            config,
            sender,
            config_rules: rules,
            dirty: Mutex::new(BTreeSet::new()),
            wake_eval: Notify::new(),
            wake_delivery: Notify::new(),
            evaluating: Mutex::new(()),
            metrics: RwLock::new(BTreeMap::new()),
            lease: Arc::new(SoleProcess),
        }
    }

    /// Evaluates and delivers only while `lease` is held (several processes on one shared
    /// store: ADR 020). Without it the service always does (one process per data directory).
    pub fn with_lease(mut self, lease: Arc<dyn Lease>) -> Self {
        self.lease = lease;
        self
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Ingest of `kind` (`predictions` or `labels`) for `model` was acknowledged: remember
    /// when (freshness) and evaluate the model soon.
    pub fn on_ingest(&self, model: &str, kind: &str) {
        let (db, m, k, now) = (
            self.db.clone(),
            model.to_owned(),
            kind.to_owned(),
            self.now(),
        );
        let record = move || {
            if let Err(e) = db.record_arrival(&m, &k, now) {
                tracing::warn!(error = %e, "cannot record arrival");
            }
        };
        // Ingest calls this from its async handler: a shared alert state is a network round
        // trip, which must not hold an executor thread (the latest arrival is kept, whatever
        // order two records land in).
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(record)),
            Err(_) => record(),
        }
        self.mark_dirty(model);
    }

    /// Something the model's rules read changed (a new reference): evaluate it soon.
    pub fn reevaluate(&self, model: &str) {
        self.mark_dirty(model);
    }

    fn mark_dirty(&self, model: &str) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(model.to_owned());
        self.wake_eval.notify_one();
    }
}

/// The config's values, its notifiers and its rules, checked: the sender and the rules.
fn checked(
    config: &AlertsConfig,
    config_rules: Vec<(String, RuleSpec)>,
) -> Result<(Sender, Vec<Rule>), AlertsError> {
    config.validate().map_err(AlertsError::Invalid)?;
    let sender = Sender::new(config.notifiers.clone()).map_err(AlertsError::Invalid)?;
    let names = sender.names();
    let mut rules = Vec::new();
    let mut seen = BTreeSet::new();
    for (model, spec) in config_rules {
        let label = format!("[[models.{model}.rules]] `{}`", spec.name);
        if !seen.insert((model.clone(), spec.name.clone())) {
            return Err(AlertsError::Invalid(format!(
                "{label}: the name is used twice"
            )));
        }
        let rule = spec
            .validate(&model, Origin::Config, &names)
            .map_err(|e| AlertsError::Invalid(format!("{label}: {e}")))?;
        rules.push(rule);
    }
    Ok((sender, rules))
}
