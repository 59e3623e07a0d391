//! Heartbeats of batch jobs: recording a run, and each job's state now.

use super::{AlertService, AlertsError};
use crate::db::Heartbeat;
use crate::rule::{Condition, Rule, Signal};
use modelwatch_core::{parse_timestamp, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

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

impl AlertService {
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
}
