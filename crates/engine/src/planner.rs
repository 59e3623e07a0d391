//! Which source answers a query: the per-hour state of the cache ([`crate::aggregates`]) or a
//! scan of the raw events. One function per report kind; the reports ([`crate::performance`],
//! [`crate::drift`], [`crate::feedback`]) ask here instead of deciding themselves. Both sources give the same
//! numbers (the states merge exactly); only the cost differs. The hours may still decline a
//! query the plan sends them (an hour built for another task or reference, or unreadable):
//! the report then scans.

use modelwatch_core::{ModelName, Timestamp, Window};
use modelwatch_store::{Store, HOUR_MICROS};

use crate::error::EngineError;
use crate::query::{DriftQuery, FeedbackQuery, PerformanceQuery};
use crate::sketch::Reference;

/// Where a query's windows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Merged from the per-hour state.
    Hours,
    /// Folded from a scan of the raw events of the range.
    Events,
}

/// Windows, `from` and `to` all on whole UTC hours: windows are then unions of hours.
fn whole_hours(from: Option<Timestamp>, to: Option<Timestamp>, window: Window) -> bool {
    let whole = |t: Option<Timestamp>| t.is_none_or(|t| t.micros().rem_euclid(HOUR_MICROS) == 0);
    whole(from) && whole(to) && window.micros() % HOUR_MICROS == 0
}

/// A performance report: the hours hold no segment split and are built at the model's task
/// with the logged prediction deciding (so `task=` and any what-if `threshold=`, even 0.5, go
/// to the raw events), and cover whole hours.
pub fn performance(q: &PerformanceQuery) -> Source {
    let hours = q.segment.is_none()
        && q.task.is_none()
        && q.threshold.is_none()
        && whole_hours(q.from, q.to, q.window.unwrap_or(Window::DAY));
    if hours {
        Source::Hours
    } else {
        Source::Events
    }
}

/// A drift or quality report against `reference`: no segment, whole hours, and the reference
/// the hourly sketches are built against, the one of version-less queries. A version's query
/// uses the sketches too unless the version has its own reference (then only if it is that
/// very reference: a model whose one reference was uploaded for this version).
pub fn drift(
    store: &dyn Store,
    model: &ModelName,
    q: &DriftQuery,
    reference: &Reference,
) -> Result<Source, EngineError> {
    if q.segment.is_some() || !whole_hours(q.from, q.to, q.window) {
        return Ok(Source::Events);
    }
    if q.version.is_some() && reference.version.is_some() {
        match Reference::load_default(store, model)? {
            Some(d) if d.stamp == reference.stamp => {}
            _ => return Ok(Source::Events),
        }
    }
    Ok(Source::Hours)
}

/// Label-free estimates ([`crate::estimate`]): the hours when the realized metrics come from
/// them (the hours' estimation states are built at the decided task, for whole hours, without
/// segments). The hours still decline a query whose estimator is not the one they were built
/// with (a version with its own reference).
pub fn estimate(q: &PerformanceQuery) -> Source {
    performance(q)
}

/// A feedback report: the hours keep the exploration split of the default tag
/// ([`crate::exploration::DEFAULT_TAG`]) only, so a query naming another tag scans; and whole
/// hours. (Hours whose split is unknown are still folded from their events by the hours'
/// answer, [`crate::aggregates::exploration_hours`].)
pub fn feedback(q: &FeedbackQuery) -> Source {
    let (name, value) = crate::exploration::DEFAULT_TAG;
    let default_tag = q.exploration.0 == name && q.exploration.1 == value;
    if default_tag && whole_hours(q.from, q.to, q.window) {
        Source::Hours
    } else {
        Source::Events
    }
}
