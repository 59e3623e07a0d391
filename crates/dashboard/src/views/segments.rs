//! The segments view.

use super::{metric_text, utc};
use crate::data::{chart_metrics, ModelData};
use crate::layout::unavailable;
use maud::{html, Markup};
use modelwatch_engine::performance::PerformanceReport;

/// Segments sorted worst first (the engine's order), with the main metrics. A slice
/// (`segment=country:DE`) has no values to list: its own totals are shown instead.
pub fn segments_section(data: &ModelData) -> Markup {
    let Some(m) = &data.segments else {
        return unavailable(data, "segments");
    };
    let Some(segs) = m.segments.as_deref() else {
        return slice_section(m);
    };
    let names = chart_metrics(m.spec.task);
    html! {
        h2 { "Segments by " (m.segment.as_deref().unwrap_or_default()) ", worst first" }
        table.segments {
            tr { th { "value" } th.num { "predictions" } th.num { "labelled" }
                @for n in names { th.num { (n) } } }
            @for seg in segs {
                tr data-segment=(seg.value) {
                    td { (seg.value) }
                    td.num { (seg.predictions) }
                    td.num { (seg.labelled) }
                    @for n in names { td.num { (metric_text(&seg.metrics, n)) } }
                }
            }
        }
        @if segs.is_empty() { div.empty { "No predictions in this range." } }
    }
}

/// One slice's report: its window(s) over the span (one, two when the span straddles an
/// aligned boundary), so a link to `country:DE` shows that segment, not an empty table.
fn slice_section(m: &PerformanceReport) -> Markup {
    let names = chart_metrics(m.spec.task);
    let slice = m.segment.as_deref().unwrap_or_default();
    let windows: Vec<_> = m.windows.iter().filter(|w| w.predictions > 0).collect();
    html! {
        h2 { "Segment " (slice) }
        table.segments data-slice=(slice) {
            tr { th { "from" } th { "to" } th.num { "predictions" } th.num { "labelled" }
                @for n in names { th.num { (n) } } }
            @for w in &windows {
                tr data-segment=(slice) {
                    td { (utc(w.start)) }
                    td { (utc(w.end)) }
                    td.num { (w.predictions) }
                    td.num { (w.labelled) }
                    @for n in names { td.num { (metric_text(&w.metrics, n)) } }
                }
            }
        }
        @if windows.is_empty() { div.empty { "No predictions of this segment in this range." } }
    }
}
