//! The versions view.

use super::{
    f, latency, latest_defined, latest_window, line, metric_text, partial_starts, s, series,
    span_chart, windows,
};
use crate::charts::YScale;
use crate::data::{chart_metrics, metric, short, ModelData};
use crate::layout::wide_figure;
use maud::{html, Markup};

/// Versions side by side: the headline metric per version over time, and a table.
pub fn versions_section(data: &ModelData) -> Markup {
    let Some(span) = &data.span else {
        return html! {};
    };
    if data.versions.is_empty() {
        return html! { div.empty { "No model versions in this range." } };
    }
    let task = data
        .versions
        .first()
        .map(|v| s(&v.metrics, "task"))
        .unwrap_or("");
    let names = chart_metrics(task);
    let mut c = span_chart(span, &format!("{} by version", names[0]), YScale::Unit);
    if task == "regression" {
        c.y = YScale::FromZero;
    }
    if let Some(v) = data.versions.first() {
        c.partial = partial_starts(windows(&v.metrics));
    }
    for (i, v) in data.versions.iter().enumerate() {
        c.lines.push(line(
            &v.version,
            i,
            series(&v.metrics, |w| metric(w, names[0]).map(|x| x.0)),
        ));
    }
    html! {
        h2 { "Model versions side by side" }
        (wide_figure("versions", &c, "one line per version"))
        table.versions {
            tr { th { "version" } th.num { "predictions" } th.num { "labelled" }
                @for n in names { th.num { (n) " (latest)" } } th.num { "latency p95 (latest)" } }
            @for v in &data.versions {
                @let ws = windows(&v.metrics);
                @let latest = latest_defined(&v.metrics, names[0]);
                tr data-version=(v.version) {
                    td { (v.version) }
                    td.num { (ws.iter().filter_map(|w| f(w, &["predictions"])).sum::<f64>() as u64) }
                    td.num { (ws.iter().filter_map(|w| f(w, &["labelled"])).sum::<f64>() as u64) }
                    @for n in names { td.num { @match latest { Some(w) => (metric_text(w, n)), None => span.muted { "—" } } } }
                    td.num { (latest_window(ws).and_then(|w| latency(w, "p95")).map(short).unwrap_or("—".into())) }
                }
            }
        }
    }
}
