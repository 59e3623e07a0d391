//! The versions view.

use super::{
    latest_defined, latest_window, line, metric_series, metric_text, partial_starts, span_chart,
};
use crate::charts::YScale;
use crate::data::{chart_metrics, short, ModelData};
use crate::layout::wide_figure;
use maud::{html, Markup};
use modelwatch_engine::performance::Task;

/// Versions side by side: the headline metric per version over time, and a table.
pub fn versions_section(data: &ModelData) -> Markup {
    let Some(span) = &data.span else {
        return html! {};
    };
    let Some(first) = data.versions.first() else {
        return html! { div.empty { "No model versions in this range." } };
    };
    let task = first.metrics.spec.task;
    let names = chart_metrics(task);
    let mut c = span_chart(span, &format!("{} by version", names[0]), YScale::Unit);
    if task == Task::Regression {
        c.y = YScale::FromZero;
    }
    c.partial = partial_starts(&first.metrics.windows);
    for (i, v) in data.versions.iter().enumerate() {
        c.lines
            .push(line(&v.version, i, metric_series(&v.metrics, names[0])));
    }
    html! {
        h2 { "Model versions side by side" }
        (wide_figure("versions", &c, "one line per version"))
        table.versions {
            tr { th { "version" } th.num { "predictions" } th.num { "labelled" }
                @for n in names { th.num { (n) " (latest)" } } th.num { "latency p95 (latest)" } }
            @for v in &data.versions {
                @let ws = &v.metrics.windows;
                @let latest = latest_defined(&v.metrics, names[0]);
                tr data-version=(v.version) {
                    td { (v.version) }
                    td.num { (ws.iter().map(|w| w.predictions).sum::<u64>()) }
                    td.num { (ws.iter().map(|w| w.labelled).sum::<u64>()) }
                    @for n in names { td.num { @match latest { Some(w) => (metric_text(&w.metrics, n)), None => span.muted { "—" } } } }
                    td.num { (latest_window(ws).and_then(|w| w.operational.latency_ms.p95.value()).map(short).unwrap_or("—".into())) }
                }
            }
        }
    }
}
