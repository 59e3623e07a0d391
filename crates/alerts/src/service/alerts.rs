//! The alerts as the API lists them, acknowledgements and the history.

use super::{AlertService, AlertsError};
use crate::db::HistoryEntry;
use crate::lifecycle::{Ack, Alert, State};
use serde::Deserialize;

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFilter {
    pub state: Option<String>,
    pub model: Option<String>,
    pub severity: Option<String>,
    pub decision: Option<String>,
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

impl AlertService {
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

    /// One alert by its fingerprint (`GET /v1/alerts/{fingerprint}`).
    pub fn alert(&self, fingerprint: &str) -> Result<Alert, AlertsError> {
        self.db.alert(fingerprint)?.ok_or_else(|| {
            AlertsError::NotFound(format!(
                "no alert with fingerprint {fingerprint:?} (the list of alerts shows them)"
            ))
        })
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
}
