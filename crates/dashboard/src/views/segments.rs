//! The segments view.

use super::{f, metric_text, s};
use crate::data::{chart_metrics, ModelData};
use crate::layout::unavailable;
use maud::{html, Markup};
use serde_json::Value;

/// Segments sorted worst first (the engine's order), with the main metrics.
pub fn segments_section(data: &ModelData) -> Markup {
    let Some(m) = &data.segments else {
        return unavailable(data, "segments");
    };
    let task = s(m, "task");
    let names = chart_metrics(task);
    let empty = Vec::new();
    let segs = m
        .get("segments")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    html! {
        h2 { "Segments by " (s(m, "segment")) ", worst first" }
        table.segments {
            tr { th { "value" } th.num { "predictions" } th.num { "labelled" }
                @for n in names { th.num { (n) } } }
            @for seg in segs {
                tr data-segment=(s(seg, "value")) {
                    td { (s(seg, "value")) }
                    td.num { (f(seg, &["predictions"]).unwrap_or(0.0) as u64) }
                    td.num { (f(seg, &["labelled"]).unwrap_or(0.0) as u64) }
                    @for n in names { td.num { (metric_text(seg, n)) } }
                }
            }
        }
        @if segs.is_empty() { div.empty { "No predictions in this range." } }
    }
}
