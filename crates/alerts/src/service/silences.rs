//! Silences: create, list (with whether each is active now), expire.

use super::{AlertService, AlertsError};
use crate::db::Silence;
use modelwatch_core::{parse_timestamp, ModelName, Timestamp};
use serde::Deserialize;

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

impl AlertService {
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
}
