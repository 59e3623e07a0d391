//! The segments view.

use super::metric_text;
use crate::data::{chart_metrics, ModelData};
use crate::layout::unavailable;
use maud::{html, Markup};

/// Segments sorted worst first (the engine's order), with the main metrics.
pub fn segments_section(data: &ModelData) -> Markup {
    let Some(m) = &data.segments else {
        return unavailable(data, "segments");
    };
    let names = chart_metrics(m.spec.task);
    let segs = m.segments.as_deref().unwrap_or_default();
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
