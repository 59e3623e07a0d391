//! Which windows are partial: still filling, so that their numbers are not yet the window's.
//!
//! A window `[start, end)` is **partial** when its end is later than the model's last event
//! (the latest event-time timestamp of any of its predictions, all versions) or later than
//! the server's clock when the answer is computed. The first rule covers the window that holds
//! the latest event (more may come: an hour begun, a batch not yet sent), the second a window
//! that is still running. Windows are reported either way, with `"partial": true`; views and
//! "latest" values use the last complete window (docs/api.md).

use modelwatch_core::{ModelName, Timestamp};
use modelwatch_store::{Store, StoreError};

/// The time a window must end by to be complete: the earlier of `now` and the model's last
/// event (`now` when the model has no events).
pub fn cutoff(
    store: &dyn Store,
    model: &ModelName,
    now: Timestamp,
) -> Result<Timestamp, StoreError> {
    let last = store.model(model)?.and_then(|s| s.last_event);
    Ok(last.map_or(now, |l| l.min(now)))
}

/// Whether the window ending at `end` is partial against `cutoff`.
pub fn is_partial(end: Timestamp, cutoff: Timestamp) -> bool {
    end > cutoff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_complete_once_an_event_at_or_after_its_end_exists() {
        let h = 3_600_000_000;
        // The last event is at 10:59:59.999999: the window ending at 11:00 may still grow.
        assert!(is_partial(Timestamp(11 * h), Timestamp(11 * h - 1)));
        // An event at 11:00 sharp belongs to the next window and closes this one.
        assert!(!is_partial(Timestamp(11 * h), Timestamp(11 * h)));
    }
}
