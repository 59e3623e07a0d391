//! When the service works: the evaluation schedule, debounced evaluations after ingest, and
//! the delivery poll.

use super::AlertService;
use std::sync::Arc;
use std::time::Duration as StdDuration;

impl AlertService {
    /// Runs the evaluation schedule, ingest-triggered evaluations and delivery until dropped.
    pub async fn run(self: Arc<Self>) {
        if !self.config.evaluate {
            tracing::info!("alert evaluation and notifications are off in this process (alerts.evaluate = false)");
            return;
        }
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
            // Once per cluster (ADR 020): another process holds the lease, or nobody does yet.
            // Its models are evaluated on the holder's next scheduled pass.
            if !self.lease_ready().await {
                tracing::debug!(
                    "alert evaluation skipped: this process does not hold the cluster lease"
                );
                continue;
            }
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

    /// Whether this process holds the lease beyond its guard, waiting up to one epoch for it:
    /// the holder itself does not hold between the end of an epoch and its read of the next,
    /// and a schedule whose period is a multiple of the epoch (60 s and 10 s) would otherwise
    /// fall in that gap at every tick.
    async fn lease_ready(&self) -> bool {
        let until = tokio::time::Instant::now() + self.lease.epoch();
        loop {
            if self.lease.held_beyond_guard() {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
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
}
