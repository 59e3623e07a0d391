//! Delivery of the outbox: due notifications sent with retries and backoff, firing alerts
//! re-sent to Alertmanagers, and the outbox and notifiers as the API lists them.

use super::{AlertService, AlertsError};
use crate::db::OutboxEntry;
use crate::lifecycle::State;
use crate::notify::Notification;
use modelwatch_core::Timestamp;
use std::time::Duration as StdDuration;

impl AlertService {
    /// Sends every due notification once; failures are kept with their error and retried
    /// after `retry_min_ms * 2^(attempts-1)`, at most `retry_max_ms`. Returns (sent, failed).
    pub async fn deliver_due(&self, now: Timestamp) -> Result<(usize, usize), AlertsError> {
        let (mut sent, mut failed) = (0, 0);
        // Only the lease's holder sends (ADR 020), and it starts no send that could still be
        // under way when its holding ends and the next holder's starts.
        if !self.lease.held_beyond_guard() {
            return Ok((sent, failed));
        }
        let due = self.db.due(now, 100)?;
        for e in due {
            if !self.lease.held_beyond_guard() {
                break;
            }
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

    /// Re-sends every notified, unsilenced firing alert to the Alertmanagers on each scheduled
    /// evaluation, as Prometheus does: Alertmanager resolves an alert it stops hearing about.
    pub async fn resend_firing(&self) {
        if !self.lease.held_beyond_guard() {
            return;
        }
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
            if !self.lease.held_beyond_guard() {
                return;
            }
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

    pub(super) fn dashboard_link(&self, model: &str) -> Option<String> {
        self.config
            .dashboard_url
            .as_ref()
            .map(|u| format!("{}/models/{model}", u.trim_end_matches('/')))
    }
}
