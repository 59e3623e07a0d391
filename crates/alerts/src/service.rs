//! The alert service: evaluates every rule on a schedule and after ingest (debounced), moves
//! alerts through their lifecycle, queues notifications in the outbox and delivers them with
//! retries; also keeps the latest per-model values for `GET /metrics`.

use crate::condition::{evaluate as evaluate_condition, fmt_value, Evaluation, Outcome};
use crate::db::{Db, DbError, Heartbeat, HistoryEntry, OutboxEntry, Silence};
use crate::exposition::Exposition;
use crate::lifecycle::{fingerprint, resolve_orphan, step, Ack, Alert, Clock, State, Transition};
use crate::notify::{Notification, NotifierConfig, Sender};
use crate::rule::{
    Condition, Origin, Rule, RuleError, RuleSpec, Signal, Source, PERFORMANCE_METRICS,
};
use crate::signals::{drift_series, metric as metric_value, performance_series, quality_series};
use modelwatch_core::{parse_timestamp, ErrorCode, ModelName, ServiceError, Timestamp, Window};
use modelwatch_engine::drift::{self as engine_drift, DriftError, DriftQuery, QualityThresholds};
use modelwatch_engine::performance::{window_performance, PerformanceQuery};
use modelwatch_stats::drift::DriftConfig;
use modelwatch_stats::perf::Histogram;
use modelwatch_store::{ModelSummary, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;
use tokio::sync::Notify;

/// `[alerts]` in the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
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

/// A rule as `GET /v1/models/{model}/rules` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub model: String,
    pub origin: Origin,
    #[serde(flatten)]
    pub spec: RuleSpec,
}

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    pub state: Option<String>,
    pub model: Option<String>,
    pub severity: Option<String>,
    pub decision: Option<String>,
}

/// `POST /v1/silences`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    pub model: String,
    #[serde(default)]
    pub rule: Option<String>,
    /// RFC 3339 end; or give `duration` (`2h`) instead.
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub comment: String,
}

/// `POST /v1/alerts/{fingerprint}/ack`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Who takes the alert.
    pub owner: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /v1/models/{model}/heartbeats`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub job: String,
    /// `success` or `failed`.
    pub status: String,
    /// When the run finished; default: now.
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// A job's heartbeats and its state now (`GET /v1/models/{model}/heartbeats`).
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub job: String,
    /// Runs reported, and how many of them failed.
    pub runs: u64,
    pub failures: u64,
    /// The latest run, by its own timestamp.
    pub last_run: Option<Heartbeat>,
    pub last_success: Option<Timestamp>,
    /// The rules watching the job (`heartbeat:<job>`) and their `max_age`, by rule name.
    pub rules: BTreeMap<String, String>,
    /// `ok`; `failed` (the latest run failed); `late` (the latest success is older than the
    /// shortest `max_age` of its rules); `never` (no successful run yet); `unwatched` (no rule,
    /// the latest run succeeded).
    pub status: String,
}

impl JobStatus {
    #[allow(clippy::too_many_arguments)]
    fn new(
        job: String,
        runs: u64,
        failures: u64,
        last_success: Option<Timestamp>,
        last_run: Option<Heartbeat>,
        rules: &[Rule],
        model: &str,
        now: Timestamp,
    ) -> JobStatus {
        let watching: BTreeMap<String, (String, i64)> = rules
            .iter()
            .filter(|r| r.model == model && r.signal == Signal::Heartbeat(job.clone()))
            .filter_map(|r| match &r.spec.condition {
                Condition::Heartbeat { max_age } => {
                    Some((r.spec.name.clone(), (max_age.to_string(), max_age.seconds)))
                }
                _ => None,
            })
            .collect();
        let limit = watching.values().map(|(_, s)| *s).min();
        let status = match (&last_run, last_success, limit) {
            (Some(h), _, _) if h.status == "failed" => "failed",
            (_, None, _) => "never",
            (_, Some(t), Some(max)) if now.0 - t.0 > max * 1_000_000 => "late",
            (_, Some(_), None) => "unwatched",
            _ => "ok",
        };
        JobStatus {
            job,
            runs,
            failures,
            last_run,
            last_success,
            rules: watching.into_iter().map(|(k, (v, _))| (k, v)).collect(),
            status: status.to_owned(),
        }
    }
}

/// What one evaluation pass did (for logs and tests).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    pub rules: usize,
    pub transitions: Vec<(String, String, Transition)>,
    pub notifications: usize,
}

/// Latest per-model values for `/metrics`.
#[derive(Debug, Clone, Default)]
struct ModelMetrics {
    /// (version, name, value)
    values: Vec<(String, &'static str, f64)>,
    /// (version, metric, value)
    performance: Vec<(String, String, f64)>,
    /// (segment value, metric, value) of the model's configured segment, all versions
    segments: Vec<(String, &'static str, f64)>,
    /// (version, quantile, value) of the latest window
    latency: Vec<(String, &'static str, f64)>,
    /// (version, latency histogram since the first kept event)
    latency_histogram: Vec<(String, Histogram)>,
    /// (feature, drifted, statistic)
    drift: Vec<(String, f64, Option<f64>)>,
    share_drifted: Option<f64>,
    /// (feature, null rate)
    null_rate: Vec<(String, f64)>,
    quality_flags: Option<f64>,
}

pub struct AlertService {
    db: Db,
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
}

const MAX_METRIC_VERSIONS: usize = 10;

impl AlertService {
    /// Opens `<data_dir>/alerts.sqlite` and checks the config's rules and notifiers.
    pub fn open(
        data_dir: &Path,
        config: AlertsConfig,
        config_rules: Vec<(String, RuleSpec)>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<AlertService, AlertsError> {
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
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        let db = Db::open(&data_dir.join("alerts.sqlite"))?;
        Ok(AlertService {
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
        })
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Every rule: the config's, then the API's. A stored rule that no longer validates (a
    /// notifier removed from the config) is skipped with a warning.
    pub fn all_rules(&self) -> Result<Vec<Rule>, AlertsError> {
        let names = self.sender.names();
        let mut out = self.config_rules.clone();
        for (model, spec) in self.db.rules()? {
            let name = spec.name.clone();
            match spec.validate(&model, Origin::Api, &names) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(model = %model, rule = %name, error = %e, "stored rule skipped")
                }
            }
        }
        Ok(out)
    }

    pub fn rules(&self, model: &str) -> Result<Vec<RuleView>, AlertsError> {
        Ok(self
            .all_rules()?
            .into_iter()
            .filter(|r| r.model == model)
            .map(|r| RuleView {
                model: r.model,
                origin: r.origin,
                spec: r.spec,
            })
            .collect())
    }

    pub fn create_rule(&self, model: &str, body: Value) -> Result<RuleView, AlertsError> {
        let rule = RuleSpec::from_json(body)?.validate(model, Origin::Api, &self.sender.names())?;
        if self
            .config_rules
            .iter()
            .any(|r| r.model == model && r.spec.name == rule.spec.name)
        {
            return Err(AlertsError::Conflict(format!(
                "model `{model}` already has a rule `{}` (from the config file)",
                rule.spec.name
            )));
        }
        if !self.db.insert_rule(model, &rule.spec, self.now())? {
            return Err(AlertsError::Conflict(format!(
                "model `{model}` already has a rule `{}`: delete it first",
                rule.spec.name
            )));
        }
        self.mark_dirty(model);
        Ok(RuleView {
            model: model.to_owned(),
            origin: Origin::Api,
            spec: rule.spec,
        })
    }

    pub fn delete_rule(&self, model: &str, name: &str) -> Result<(), AlertsError> {
        if self
            .config_rules
            .iter()
            .any(|r| r.model == model && r.spec.name == name)
        {
            return Err(AlertsError::Conflict(format!(
                "rule `{name}` of model `{model}` is defined in the config file: remove it there"
            )));
        }
        if !self.db.delete_rule(model, name)? {
            return Err(AlertsError::NotFound(format!(
                "model `{model}` has no rule `{name}`"
            )));
        }
        self.mark_dirty(model);
        Ok(())
    }

    pub fn heartbeat(&self, model: &str, req: HeartbeatRequest) -> Result<Heartbeat, AlertsError> {
        let job = req.job.trim();
        if job.is_empty() || job.len() > 128 {
            return Err(AlertsError::Invalid(
                "`job`: must be 1-128 characters".to_owned(),
            ));
        }
        if !matches!(req.status.as_str(), "success" | "failed") {
            return Err(AlertsError::Invalid(format!(
                "`status`: {:?} is not valid: use success or failed",
                req.status
            )));
        }
        let now = self.now();
        let timestamp = match &req.timestamp {
            Some(t) => {
                let t = parse_timestamp(t)
                    .map_err(|e| AlertsError::Invalid(format!("`timestamp`: {e}")))?;
                t.check_plausible(now)
                    .map_err(|e| AlertsError::Invalid(format!("`timestamp`: {e}")))?;
                t
            }
            None => now,
        };
        let h = Heartbeat {
            job: job.to_owned(),
            status: req.status,
            timestamp,
            received_at: now,
            message: req.message,
        };
        self.db.insert_heartbeat(model, &h)?;
        self.mark_dirty(model);
        Ok(h)
    }

    /// `GET /v1/models/{model}/heartbeats`: each job that reported runs, with its latest run,
    /// its latest success and what the model's heartbeat rules make of it now.
    pub fn jobs(&self, model: &str) -> Result<Vec<JobStatus>, AlertsError> {
        let now = self.now();
        let rules = self.all_rules()?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (job, runs, failures, last_success) in self.db.jobs(model)? {
            let last = self.db.last_heartbeat(model, &job)?;
            seen.insert(job.clone());
            out.push(JobStatus::new(
                job,
                runs,
                failures,
                last_success,
                last,
                &rules,
                model,
                now,
            ));
        }
        // Jobs a rule watches that never reported: the rule fires, the page says why.
        for r in rules.iter().filter(|r| r.model == model) {
            if let Signal::Heartbeat(job) = &r.signal {
                if seen.insert(job.clone()) {
                    out.push(JobStatus::new(
                        job.clone(),
                        0,
                        0,
                        None,
                        None,
                        &rules,
                        model,
                        now,
                    ));
                }
            }
        }
        Ok(out)
    }

    pub fn alerts(&self, f: &AlertFilter) -> Result<Vec<Alert>, AlertsError> {
        if let Some(s) = &f.state {
            if State::parse(s).is_none() {
                return Err(AlertsError::Invalid(format!(
                    "`state`: {s:?} is not valid: use pending, firing or resolved"
                )));
            }
        }
        Ok(self
            .db
            .alerts()?
            .into_iter()
            .filter(|a| f.state.as_deref().is_none_or(|s| a.state.as_str() == s))
            .filter(|a| f.model.as_deref().is_none_or(|m| a.model == m))
            .filter(|a| f.severity.as_deref().is_none_or(|s| a.severity == s))
            .filter(|a| f.decision.as_deref().is_none_or(|d| a.decision == d))
            .collect())
    }

    /// Acknowledges a pending or firing alert: who took it and what they said, kept on the
    /// alert for the rest of its episode, in its history and in its later notifications.
    pub fn acknowledge(&self, fingerprint: &str, req: AckRequest) -> Result<Alert, AlertsError> {
        let owner = req.owner.trim();
        if owner.is_empty() || owner.chars().count() > 128 {
            return Err(AlertsError::Invalid(
                "`owner`: must be 1-128 characters: who takes the alert".to_owned(),
            ));
        }
        if req.comment.chars().count() > 4000 {
            return Err(AlertsError::Invalid(
                "`comment`: must be at most 4000 characters".to_owned(),
            ));
        }
        // Not during an evaluation pass, which would write back the alert it read before.
        let _one = self.evaluating.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut alert) = self.db.alert(fingerprint)? else {
            return Err(AlertsError::NotFound(format!(
                "no alert with fingerprint {fingerprint:?} (the list of alerts shows them)"
            )));
        };
        if alert.state == State::Resolved {
            return Err(AlertsError::Conflict(format!(
                "alert {fingerprint} ({}: {}) is resolved: there is nothing to acknowledge",
                alert.model, alert.rule
            )));
        }
        let now = self.now();
        alert.acknowledged = Some(Ack {
            owner: owner.to_owned(),
            comment: req.comment.trim().to_owned(),
            at: now,
        });
        self.db.acknowledge(&alert, now)?;
        Ok(alert)
    }

    pub fn history(
        &self,
        model: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, AlertsError> {
        Ok(self.db.history(model, limit)?)
    }

    pub fn silences(&self) -> Result<Vec<(Silence, bool)>, AlertsError> {
        let now = self.now();
        Ok(self
            .db
            .silences()?
            .into_iter()
            .map(|s| {
                let active = now < s.ends_at;
                (s, active)
            })
            .collect())
    }

    pub fn create_silence(&self, req: SilenceRequest) -> Result<Silence, AlertsError> {
        ModelName::new(&req.model).map_err(|e| AlertsError::Invalid(format!("`model`: {e}")))?;
        let now = self.now();
        let ends_at = match (&req.ends_at, &req.duration) {
            (Some(t), None) => {
                parse_timestamp(t).map_err(|e| AlertsError::Invalid(format!("`ends_at`: {e}")))?
            }
            (None, Some(d)) => {
                let d = crate::rule::Duration::parse(d)
                    .map_err(|e| AlertsError::Invalid(format!("`duration`: {e}")))?;
                Timestamp(now.0 + d.micros())
            }
            _ => {
                return Err(AlertsError::Invalid(
                    "give exactly one of `ends_at` (RFC 3339) and `duration` (e.g. 2h)".into(),
                ))
            }
        };
        if ends_at <= now {
            return Err(AlertsError::Invalid(format!(
                "`ends_at`: {ends_at} is not in the future"
            )));
        }
        let s =
            self.db
                .insert_silence(&req.model, req.rule.as_deref(), ends_at, &req.comment, now)?;
        self.mark_dirty(&req.model);
        Ok(s)
    }

    pub fn expire_silence(&self, id: i64) -> Result<(), AlertsError> {
        if !self.db.expire_silence(id, self.now())? {
            return Err(AlertsError::NotFound(format!("no silence with id {id}")));
        }
        Ok(())
    }

    pub fn notifications(
        &self,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, AlertsError> {
        if let Some(s) = status {
            if !matches!(s, "pending" | "failed" | "delivered") {
                return Err(AlertsError::Invalid(format!(
                    "`status`: {s:?} is not valid: use pending, failed or delivered"
                )));
            }
        }
        Ok(self.db.outbox(status, limit)?)
    }

    pub fn notifiers(&self) -> Vec<(String, &'static str)> {
        self.sender
            .notifiers()
            .iter()
            .map(|(n, c)| (n.clone(), c.kind()))
            .collect()
    }

    /// Ingest of `kind` (`predictions` or `labels`) for `model` was acknowledged: remember
    /// when (freshness) and evaluate the model soon.
    pub fn on_ingest(&self, model: &str, kind: &str) {
        if let Err(e) = self.db.record_arrival(model, kind, self.now()) {
            tracing::warn!(error = %e, "cannot record arrival");
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

    // ------------------------------------------------------------------------------------
    // Evaluation

    /// Evaluates the rules of `models` (all models when None) at `now`: lifecycle steps,
    /// history, queued notifications, and the `/metrics` values of those models. Blocking.
    pub fn evaluate(
        &self,
        now: Timestamp,
        models: Option<&BTreeSet<String>>,
    ) -> Result<PassReport, AlertsError> {
        let _one = self.evaluating.lock().unwrap_or_else(|e| e.into_inner());
        let rules = self.all_rules()?;
        let summaries = self.store.list_models()?;
        let summaries: HashMap<String, ModelSummary> =
            summaries.into_iter().map(|m| (m.name.clone(), m)).collect();
        let wanted = |m: &str| models.is_none_or(|set| set.contains(m));
        let mut by_model: BTreeMap<String, Vec<&Rule>> = BTreeMap::new();
        for r in rules.iter().filter(|r| wanted(&r.model)) {
            by_model.entry(r.model.clone()).or_default().push(r);
        }
        let alerts: HashMap<String, Alert> = self
            .db
            .alerts()?
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        let silences = self.db.silences()?;
        let mut report = PassReport::default();
        for (model, model_rules) in &by_model {
            let evals = self.evaluate_model(model, summaries.get(model), model_rules, now);
            for (rule, eval) in model_rules.iter().zip(evals) {
                report.rules += 1;
                let fp = fingerprint(model, &rule.spec.name);
                let prev = alerts.get(&fp);
                let (next, transition) = step(prev, rule, &eval, now);
                let silenced = silences
                    .iter()
                    .any(|s| s.matches(model, &rule.spec.name, now));
                let queued = self.commit(
                    &fp,
                    prev,
                    next,
                    transition,
                    silenced,
                    &rule.spec.notify,
                    now,
                )?;
                report.notifications += queued;
                if let Some(t) = transition {
                    report
                        .transitions
                        .push((model.clone(), rule.spec.name.clone(), t));
                }
            }
        }
        // Alerts whose rule is gone are resolved (and a resolve sent if a trigger was).
        let live: BTreeSet<String> = rules
            .iter()
            .map(|r| fingerprint(&r.model, &r.spec.name))
            .collect();
        for a in alerts
            .values()
            .filter(|a| wanted(&a.model) && !live.contains(&a.fingerprint))
        {
            if let Some((next, t)) = resolve_orphan(a, now) {
                let next = (t == Transition::Resolved).then_some(next);
                report.notifications +=
                    self.commit(&a.fingerprint, Some(a), next, Some(t), false, &[], now)?;
                report
                    .transitions
                    .push((a.model.clone(), a.rule.clone(), t));
            }
        }
        for name in summaries.keys().filter(|m| wanted(m)) {
            self.refresh_metrics(name, &summaries[name], now);
        }
        if report.notifications > 0 {
            self.wake_delivery.notify_one();
        }
        for (m, r, t) in &report.transitions {
            tracing::info!(model = %m, rule = %r, transition = ?t, "alert");
        }
        Ok(report)
    }

    /// Writes one alert's step: state, history, and the notifications it calls for.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        fp: &str,
        prev: Option<&Alert>,
        next: Option<Alert>,
        transition: Option<Transition>,
        silenced: bool,
        routes: &[String],
        now: Timestamp,
    ) -> Result<usize, AlertsError> {
        let mut next = next;
        let mut notify = Vec::new();
        let targets: Vec<String> = if routes.is_empty() {
            self.sender.names()
        } else {
            routes.to_vec()
        };
        if let Some(a) = next.as_mut() {
            a.silenced = silenced;
            let fire = a.state == State::Firing && !a.notified && !silenced;
            let resolve = transition == Some(Transition::Resolved) && a.notified;
            if fire {
                // Marked before queueing: the queued copy says it was notified, like the row.
                a.notified = true;
            }
            if fire || resolve {
                let n = Notification {
                    alert: a.clone(),
                    dashboard_url: self.dashboard_link(&a.model),
                };
                notify = targets.iter().map(|t| (t.clone(), n.clone())).collect();
            }
        }
        if next.as_ref() == prev && transition.is_none() {
            return Ok(0);
        }
        // Every transition has an alert on one side (step and resolve_orphan guarantee it).
        let history = transition.zip(next.as_ref().or(prev));
        self.db.apply(fp, next.as_ref(), history, &notify, now)?;
        Ok(notify.len())
    }

    fn dashboard_link(&self, model: &str) -> Option<String> {
        self.config
            .dashboard_url
            .as_ref()
            .map(|u| format!("{}/models/{model}", u.trim_end_matches('/')))
    }

    /// One evaluation per rule of a model; engine reports are computed once per (source,
    /// window, version) and shared by the rules that read them.
    fn evaluate_model(
        &self,
        model: &str,
        summary: Option<&ModelSummary>,
        rules: &[&Rule],
        now: Timestamp,
    ) -> Vec<Evaluation> {
        let name = match ModelName::new(model) {
            Ok(n) => n,
            Err(e) => {
                return rules
                    .iter()
                    .map(|_| Evaluation::unknown(e.to_string()))
                    .collect()
            }
        };
        // Source, window, version, segment, and the class a class rule watches.
        type Key = (Source, i64, Option<String>, Option<String>, Option<String>);
        let mut reports: HashMap<Key, Result<Value, String>> = HashMap::new();
        let lookback = rules
            .iter()
            .map(|r| r.spec.condition.windows_needed())
            .max()
            .unwrap_or(1)
            + 8;
        rules
            .iter()
            .map(|rule| {
                let source = rule.signal.source();
                match source {
                    Source::Freshness => return self.freshness(model, summary, rule, now),
                    Source::Heartbeat => return self.heartbeat_eval(model, rule, now),
                    _ => {}
                }
                let Some(last) = summary.and_then(|s| s.last_event) else {
                    return Evaluation::unknown(format!("model `{model}` has no events yet"));
                };
                let segment = rule.spec.segment.as_ref().map(|s| s.split());
                // A class rule's report names its class (see `report`): one report per class.
                let class = match &rule.signal {
                    crate::rule::Signal::ClassMetric(_, c) => Some(c.clone()),
                    _ => None,
                };
                let key = (
                    source,
                    rule.window.seconds(),
                    rule.spec.version.clone(),
                    segment,
                    class,
                );
                let from = Timestamp(
                    rule.window.start_of(last).0 - (lookback as i64 - 1) * rule.window.micros(),
                );
                let report = reports
                    .entry(key)
                    .or_insert_with(|| self.report(&name, source, rule, from));
                let series = match report {
                    Ok(v) => match source {
                        Source::Performance => match &rule.spec.segment {
                            Some(seg) => match segment_report(v, &seg.value) {
                                Ok(r) => performance_series(&r, &rule.signal, now),
                                Err(e) => return Evaluation::unknown(e),
                            },
                            None => performance_series(v, &rule.signal, now),
                        },
                        Source::Drift => drift_series(v, &rule.signal),
                        _ => quality_series(v, &rule.signal),
                    },
                    Err(e) => return Evaluation::unknown(e.clone()),
                };
                evaluate_condition(&rule.spec.condition, &series, rule.min_sample())
            })
            .collect()
    }

    fn report(
        &self,
        model: &ModelName,
        source: Source,
        rule: &Rule,
        from: Timestamp,
    ) -> Result<Value, String> {
        let store = self.store.as_ref();
        let version = rule.spec.version.clone();
        let drift_query = || DriftQuery {
            window: rule.window,
            from: Some(from),
            to: None,
            version: version.clone(),
            segment: None,
        };
        let no_reference = |e: DriftError| match e {
            e @ DriftError::NoReference { .. } => e.to_string(),
            e => format!("drift: {e}"),
        };
        match source {
            Source::Performance => {
                let mut q = PerformanceQuery {
                    window: Some(rule.window),
                    from: Some(from),
                    version,
                    segment: rule.spec.segment.as_ref().map(|s| s.split()),
                    ..Default::default()
                };
                // A multiclass report names the 50 classes with most rows: the rule's class is
                // named whatever its rows.
                if let crate::rule::Signal::ClassMetric(_, class) = &rule.signal {
                    q.config.named_classes = vec![class.clone()];
                }
                window_performance(store, model, &q)
                    .map_err(|e| format!("performance: {e}"))
                    .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
            }
            Source::Drift => {
                engine_drift::drift(store, model, &drift_query(), &DriftConfig::default())
                    .map_err(no_reference)
                    .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
            }
            _ => engine_drift::quality(store, model, &drift_query(), &QualityThresholds::default())
                .map_err(no_reference)
                .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string())),
        }
    }

    fn freshness(
        &self,
        model: &str,
        summary: Option<&ModelSummary>,
        rule: &Rule,
        now: Timestamp,
    ) -> Evaluation {
        let Condition::Freshness { max_age } = &rule.spec.condition else {
            return Evaluation::unknown("not a freshness condition");
        };
        let (kind, what) = match rule.signal {
            Signal::Labels => ("labels", "labels"),
            _ => ("predictions", "predictions"),
        };
        let arrival = match self.db.last_arrival(model, kind) {
            Ok(a) => a,
            Err(e) => return Evaluation::unknown(e.to_string()),
        };
        // Before this server saw any: the store's own record (event time, or creation when
        // nothing of the kind was ever stored).
        let last = arrival.or_else(|| {
            let s = summary?;
            match kind {
                "predictions" => s.last_event.or(Some(s.created_at)),
                _ => (s.labels == 0).then_some(s.created_at),
            }
        });
        let Some(last) = last else {
            return Evaluation::unknown(format!("no record of when {what} last arrived"));
        };
        let age = (now.0 - last.0).max(0) as f64 / 1e6;
        let active = age > max_age.seconds as f64;
        Evaluation {
            outcome: if active {
                Outcome::Active
            } else {
                Outcome::Inactive
            },
            value: Some(age),
            baseline: None,
            window_start: None,
            window_end: None,
            n: None,
            summary: format!("last {what} {} ago at {last} (limit {max_age})", human(age)),
        }
    }

    fn heartbeat_eval(&self, model: &str, rule: &Rule, now: Timestamp) -> Evaluation {
        let (Signal::Heartbeat(job), Condition::Heartbeat { max_age }) =
            (&rule.signal, &rule.spec.condition)
        else {
            return Evaluation::unknown("not a heartbeat condition");
        };
        let last = match self.db.last_heartbeat(model, job) {
            Ok(h) => h,
            Err(e) => return Evaluation::unknown(e.to_string()),
        };
        let (active, value, summary) = match last {
            None => (
                true,
                None,
                format!("no run of job `{job}` was ever reported"),
            ),
            Some(h) => {
                let age = (now.0 - h.timestamp.0).max(0) as f64 / 1e6;
                if h.status == "failed" {
                    (
                        true,
                        Some(age),
                        format!(
                            "the last run of job `{job}` failed at {}{}",
                            h.timestamp,
                            h.message.map(|m| format!(": {m}")).unwrap_or_default()
                        ),
                    )
                } else {
                    (
                        age > max_age.seconds as f64,
                        Some(age),
                        format!(
                            "last successful run of job `{job}` {} ago (limit {max_age})",
                            human(age)
                        ),
                    )
                }
            }
        };
        Evaluation {
            outcome: if active {
                Outcome::Active
            } else {
                Outcome::Inactive
            },
            value,
            baseline: None,
            window_start: None,
            window_end: None,
            n: None,
            summary,
        }
    }

    // ------------------------------------------------------------------------------------
    // Delivery

    /// Sends every due notification once; failures are kept with their error and retried
    /// after `retry_min_ms * 2^(attempts-1)`, at most `retry_max_ms`. Returns (sent, failed).
    pub async fn deliver_due(&self, now: Timestamp) -> Result<(usize, usize), AlertsError> {
        let due = self.db.due(now, 100)?;
        let (mut sent, mut failed) = (0, 0);
        for e in due {
            let Some(n) = &e.notification else { continue };
            match self
                .sender
                .send(&e.notifier, n, now.0.div_euclid(1_000_000))
                .await
            {
                Ok(()) => {
                    self.db.mark_delivered(e.id, self.now())?;
                    sent += 1;
                }
                Err(err) => {
                    let shift = e.attempts.min(30);
                    let delay = self
                        .config
                        .retry_min_ms
                        .saturating_mul(1u64 << shift)
                        .min(self.config.retry_max_ms);
                    let next = Timestamp(self.now().0 + delay as i64 * 1000);
                    tracing::warn!(notifier = %e.notifier, alert = %e.fingerprint, attempt = e.attempts + 1,
                        error = %err, retry_at = %next, "notification not delivered; kept for retry");
                    self.db.mark_failed(e.id, &err, next)?;
                    failed += 1;
                }
            }
        }
        Ok((sent, failed))
    }

    /// Runs the evaluation schedule, ingest-triggered evaluations and delivery until dropped.
    pub async fn run(self: Arc<Self>) {
        let delivery = tokio::spawn(self.clone().delivery_loop());
        self.evaluation_loop().await;
        delivery.abort();
    }

    async fn evaluation_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(StdDuration::from_secs(
            self.config.evaluation_interval_seconds,
        ));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let models = tokio::select! {
                _ = tick.tick() => {
                    self.dirty.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    None
                }
                _ = self.wake_eval.notified() => {
                    // Debounce: a burst of batches becomes one evaluation.
                    tokio::time::sleep(StdDuration::from_millis(self.config.debounce_ms)).await;
                    let set = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()));
                    if set.is_empty() { continue; }
                    Some(set)
                }
            };
            let me = self.clone();
            let now = self.now();
            let scheduled = models.is_none();
            match tokio::task::spawn_blocking(move || me.evaluate(now, models.as_ref())).await {
                Ok(Ok(_)) if scheduled => self.resend_firing().await,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "alert evaluation failed"),
                Err(e) => tracing::error!(error = %e, "alert evaluation panicked"),
            }
        }
    }

    /// Re-sends every notified, unsilenced firing alert to the Alertmanagers on each scheduled
    /// evaluation, as Prometheus does: Alertmanager resolves an alert it stops hearing about.
    pub async fn resend_firing(&self) {
        let (alerts, rules) = match (self.db.alerts(), self.all_rules()) {
            (Ok(a), Ok(r)) => (a, r),
            _ => return,
        };
        let now = self.now();
        let valid = StdDuration::from_secs(4 * self.config.evaluation_interval_seconds);
        let ends_at = Timestamp(now.0 + valid.as_micros() as i64);
        for a in alerts
            .into_iter()
            .filter(|a| a.state == State::Firing && a.notified && !a.silenced)
        {
            let Some(rule) = rules
                .iter()
                .find(|r| r.model == a.model && r.spec.name == a.rule)
            else {
                continue;
            };
            let n = Notification {
                dashboard_url: self.dashboard_link(&a.model),
                alert: a,
            };
            self.sender
                .resend_to_alertmanagers(&n, &rule.spec.notify, ends_at)
                .await;
        }
    }

    async fn delivery_loop(self: Arc<Self>) {
        let poll = StdDuration::from_millis(self.config.retry_min_ms.min(1000));
        loop {
            if let Err(e) = self.deliver_due(self.now()).await {
                tracing::warn!(error = %e, "notification delivery failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.wake_delivery.notified() => {}
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // /metrics

    fn refresh_metrics(&self, model: &str, summary: &ModelSummary, now: Timestamp) {
        let Ok(name) = ModelName::new(model) else {
            return;
        };
        let Some(last) = summary.last_event else {
            return;
        };
        let window = Window::parse(&self.config.metrics_window).unwrap_or(Window::HOUR);
        let from = Timestamp(window.start_of(last).0);
        let mut m = ModelMetrics::default();
        let mut versions: Vec<_> = summary.versions.iter().collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.last_event));
        // The latency histogram is cumulative since the first kept event (a counter for
        // Prometheus's rate() and histogram_quantile()), so it needs the whole history: one
        // query over every version, merged from the per-hour aggregates.
        let all = PerformanceQuery {
            window: Some(Window::WEEK),
            ..Default::default()
        };
        let mut histograms: std::collections::HashMap<String, Histogram> =
            window_performance(self.store.as_ref(), &name, &all)
                .map(|r| {
                    r.versions
                        .into_iter()
                        .map(|v| (v.version, v.latency_histogram_ms))
                        .collect()
                })
                .unwrap_or_default();
        for v in versions.into_iter().take(MAX_METRIC_VERSIONS) {
            let q = PerformanceQuery {
                window: Some(window),
                from: Some(from),
                version: Some(v.version.clone()).filter(|v| !v.is_empty()),
                ..Default::default()
            };
            let Ok(r) = window_performance(self.store.as_ref(), &name, &q) else {
                continue;
            };
            let Ok(r) = serde_json::to_value(r) else {
                continue;
            };
            let Some(w) = r
                .get("windows")
                .and_then(Value::as_array)
                .and_then(|w| w.last())
            else {
                continue;
            };
            let ver = v.version.clone();
            for metric in PERFORMANCE_METRICS {
                let s = performance_series(
                    &serde_json::json!({"windows": [w]}),
                    &Signal::Metric((*metric).to_owned()),
                    now,
                );
                if let Some(val) = s.first().and_then(|p| p.value) {
                    m.performance.push((ver.clone(), (*metric).to_owned(), val));
                }
            }
            for (key, label) in [
                ("predictions", "predictions"),
                ("error_rate", "error_rate"),
                ("label_coverage", "label_coverage"),
                ("average_confidence", "average_confidence"),
                ("prediction_entropy", "prediction_entropy"),
                ("top_class_share", "top_class_share"),
            ] {
                // The window in progress counts too here: this is a gauge of "now".
                let v = if key == "predictions" {
                    w.get("predictions").and_then(Value::as_f64)
                } else {
                    performance_series(
                        &serde_json::json!({"windows": [w]}),
                        &Signal::Operational(key.to_owned()),
                        now,
                    )
                    .first()
                    .and_then(|p| p.value)
                };
                if let Some(v) = v {
                    m.values.push((ver.clone(), label, v));
                }
            }
            if let Some(h) = histograms.remove(&v.version) {
                m.latency_histogram.push((ver.clone(), h));
            }
            for (q, key) in [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")] {
                if let Some(v) = w
                    .pointer(&format!("/latency_ms/{key}/value"))
                    .and_then(Value::as_f64)
                {
                    m.latency.push((ver.clone(), q, v));
                }
            }
        }
        if let Some(seg) = self.config.metrics_segments.get(model) {
            let q = PerformanceQuery {
                window: Some(window),
                from: Some(from),
                segment: Some(seg.clone()),
                ..Default::default()
            };
            if let Ok(r) = window_performance(self.store.as_ref(), &name, &q) {
                // The range is the latest window: each segment's totals are that window's.
                for s in r.segments.iter().flatten() {
                    let Ok(v) = serde_json::to_value(s) else {
                        continue;
                    };
                    for metric in PERFORMANCE_METRICS {
                        if let (Some(x), _) = metric_value(v.get(*metric).unwrap_or(&Value::Null)) {
                            m.segments.push((s.value.clone(), metric, x));
                        }
                    }
                }
            }
        }
        let dq = DriftQuery {
            window,
            from: Some(from),
            to: None,
            version: None,
            segment: None,
        };
        if let Ok(d) = engine_drift::drift(self.store.as_ref(), &name, &dq, &DriftConfig::default())
        {
            if let Some(w) = d.windows.last() {
                m.share_drifted = Some(w.share_drifted);
                for f in &w.features {
                    m.drift.push((
                        f.feature.clone(),
                        if f.drifted { 1.0 } else { 0.0 },
                        f.statistic,
                    ));
                }
            }
        }
        if let Ok(q) = engine_drift::quality(
            self.store.as_ref(),
            &name,
            &dq,
            &QualityThresholds::default(),
        ) {
            if let Some(w) = q.windows.last() {
                m.quality_flags = Some(w.flags.len() as f64);
                for f in &w.features {
                    m.null_rate.push((f.feature.clone(), f.null_rate));
                }
            }
        }
        self.metrics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(model.to_owned(), m);
    }

    /// Writes the model, drift, quality, freshness, alert and notification families.
    pub fn export(&self, e: &mut Exposition) {
        let now = self.now();
        let window = self.config.metrics_window.clone();
        for (model, m) in self
            .metrics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (version, metric, v) in &m.performance {
                e.gauge(
                    "modelwatch_model_performance",
                    "Performance metric of the latest window with labels (scikit-learn names), by model and version.",
                    &[("model", model), ("version", version), ("metric", metric), ("window", &window)],
                    *v,
                );
            }
            let segment = self.config.metrics_segments.get(model);
            for (value, metric, v) in &m.segments {
                e.gauge(
                    "modelwatch_segment_performance",
                    "Performance metric per value of the model's configured segment (the 10 largest values plus other) in the latest window, all versions.",
                    &[
                        ("model", model),
                        ("segment", segment.map_or("", String::as_str)),
                        ("segment_value", value),
                        ("metric", metric),
                        ("window", &window),
                    ],
                    *v,
                );
            }
            for (version, name, v) in &m.values {
                let family = format!("modelwatch_model_{name}");
                e.gauge(
                    &family,
                    "Label-free value of the latest window, by model and version.",
                    &[("model", model), ("version", version), ("window", &window)],
                    *v,
                );
            }
            for (version, h) in &m.latency_histogram {
                // Seconds, Prometheus's base unit (promtool's lint): the engine's ms / 1000.
                const F: &str = "modelwatch_model_latency_seconds";
                e.family(
                    F,
                    "histogram",
                    "Prediction latency since the first kept event (from the quantile sketch: a value within 2% of a bound may be counted on either side; _sum within 1%).",
                );
                for b in &h.buckets {
                    let le = (b.le / 1000.0).to_string();
                    e.sample(
                        F,
                        "modelwatch_model_latency_seconds_bucket",
                        &[("model", model), ("version", version), ("le", &le)],
                        b.count as f64,
                    );
                }
                let labels: [(&str, &str); 2] = [("model", model), ("version", version)];
                e.sample(
                    F,
                    "modelwatch_model_latency_seconds_bucket",
                    &[labels[0], labels[1], ("le", "+Inf")],
                    h.count as f64,
                );
                e.sample(
                    F,
                    "modelwatch_model_latency_seconds_sum",
                    &labels,
                    h.sum / 1000.0,
                );
                e.sample(
                    F,
                    "modelwatch_model_latency_seconds_count",
                    &labels,
                    h.count as f64,
                );
            }
            for (version, q, v) in &m.latency {
                e.family(
                    "modelwatch_model_window_latency_seconds",
                    "summary",
                    "Prediction latency quantiles of the latest window.",
                );
                e.sample(
                    "modelwatch_model_window_latency_seconds",
                    "modelwatch_model_window_latency_seconds",
                    &[("model", model), ("version", version), ("quantile", q)],
                    *v / 1000.0,
                );
            }
            for (feature, drifted, stat) in &m.drift {
                e.gauge(
                    "modelwatch_feature_drifted",
                    "1 when the feature drifted from the reference in the latest window.",
                    &[("model", model), ("feature", feature)],
                    *drifted,
                );
                if let Some(s) = stat {
                    e.gauge(
                        "modelwatch_feature_drift_statistic",
                        "The drift method's statistic of the feature in the latest window.",
                        &[("model", model), ("feature", feature)],
                        *s,
                    );
                }
            }
            if let Some(s) = m.share_drifted {
                e.gauge(
                    "modelwatch_model_drift_share",
                    "Share of evaluated features that drifted in the latest window.",
                    &[("model", model)],
                    s,
                );
            }
            for (feature, v) in &m.null_rate {
                e.gauge(
                    "modelwatch_feature_null_rate",
                    "Share of null values of the feature in the latest window.",
                    &[("model", model), ("feature", feature)],
                    *v,
                );
            }
            if let Some(f) = m.quality_flags {
                e.gauge(
                    "modelwatch_model_quality_flags",
                    "Data-quality flags raised in the latest window.",
                    &[("model", model)],
                    f,
                );
            }
            if let Ok(Some(t)) = self.db.last_arrival(model, "predictions") {
                e.gauge(
                    "modelwatch_model_seconds_since_last_prediction",
                    "Seconds since predictions last arrived.",
                    &[("model", model)],
                    (now.0 - t.0) as f64 / 1e6,
                );
            }
            if let Ok(Some(t)) = self.db.last_arrival(model, "labels") {
                e.gauge(
                    "modelwatch_model_seconds_since_last_label",
                    "Seconds since labels last arrived.",
                    &[("model", model)],
                    (now.0 - t.0) as f64 / 1e6,
                );
            }
        }
        if let Ok(alerts) = self.db.alerts() {
            for a in alerts.iter().filter(|a| a.state != State::Resolved) {
                e.gauge(
                    "modelwatch_alert",
                    "1 for each pending or firing alert.",
                    &[
                        ("model", &a.model),
                        ("rule", &a.rule),
                        ("severity", &a.severity),
                        ("decision", &a.decision),
                        ("state", a.state.as_str()),
                    ],
                    1.0,
                );
            }
            e.gauge(
                "modelwatch_alerts_firing",
                "Firing alerts.",
                &[],
                alerts.iter().filter(|a| a.state == State::Firing).count() as f64,
            );
        }
        if let Ok(counts) = self.db.outbox_counts() {
            for (notifier, undelivered, failing) in counts {
                e.gauge(
                    "modelwatch_notifications_undelivered",
                    "Notifications not delivered yet, by notifier.",
                    &[("notifier", &notifier)],
                    undelivered as f64,
                );
                e.gauge(
                    "modelwatch_notifications_failing",
                    "Undelivered notifications with at least one failed attempt.",
                    &[("notifier", &notifier)],
                    failing as f64,
                );
            }
        }
    }
}

/// The windows of one segment value of a metrics report split by segment, as a report of its
/// own (with the task's class names, which per-class signals need).
fn segment_report(report: &Value, value: &str) -> Result<Value, String> {
    let segments = report
        .get("segments")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let Some(seg) = segments
        .iter()
        .find(|s| s.get("value").and_then(Value::as_str) == Some(value))
    else {
        let names: Vec<&str> = segments
            .iter()
            .filter_map(|s| s.get("value").and_then(Value::as_str))
            .collect();
        return Err(format!(
            "segment value {value:?} has no predictions among the 10 values with most \
             predictions in the windows evaluated (found: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    };
    let mut r = serde_json::json!({"windows": seg.get("windows").cloned().unwrap_or(Value::Null)});
    for k in ["positive_class", "negative_class"] {
        if let Some(v) = report.get(k) {
            r[k] = v.clone();
        }
    }
    Ok(r)
}

fn human(secs: f64) -> String {
    let s = secs.round() as i64;
    if s >= 86_400 {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{}s", fmt_value(secs.max(0.0).round()))
    }
}
