//! The versions view.

use super::{
    latest_defined, latest_window, line, metric_series, metric_text, partial_starts, span_chart,
};
use crate::charts::YScale;
use crate::data::{chart_metrics, short, ModelData};
use crate::layout::wide_figure;
use maud::{html, Markup};
use modelwatch_engine::challenger::{CompareReport, Estimate, EstimatedHint, Verdict};
use modelwatch_engine::estimate::EstimatedValue;
use modelwatch_engine::performance::Task;

/// Versions side by side: the headline metric per version over time, and a table.
pub fn versions_section(data: &ModelData) -> Markup {
    let Some(span) = &data.span else {
        return html! {};
    };
    let Some(first) = data.versions.first() else {
        return html! { div.empty { "No model versions in this range." } };
    };
    let challengers = html! { @for c in &data.challengers { (challenger_section(c)) } };
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
        (challengers)
    }
}

fn estimate_text(e: &Option<Estimate>) -> Markup {
    match e {
        Some(e) => {
            html! { (short(e.value)) " " span.muted { "[" (short(e.ci_low)) ", " (short(e.ci_high)) "]" } }
        }
        None => html! { span.muted { "—" } },
    }
}

fn estimated_text(e: &Option<EstimatedValue>) -> Markup {
    match e {
        Some(e) => {
            html! { (short(e.value)) " " span.muted { "[" (short(e.ci_low)) ", " (short(e.ci_high)) "]" } }
        }
        None => html! { span.muted { "—" } },
    }
}

/// One challenger against the champion over the span: the API's `/compare` (the decision,
/// then each metric with its interval and test), as numbers, no chart.
fn challenger_section(c: &CompareReport) -> Markup {
    let d = &c.decision;
    let (class, verdict) = match d.verdict {
        Verdict::Promote => ("good", "promote the challenger"),
        Verdict::Keep => ("bad", "keep the champion"),
        Verdict::NeedMoreData => ("muted", "need more data"),
    };
    let o = &c.overall;
    html! {
        h2 data-challenger=(c.challenger) { "Challenger " (c.challenger) " against " (c.champion) }
        p.meta {
            @if o.paired_requests > 0 {
                "shadow: " (o.paired_requests) " requests scored by both, " (o.paired_labelled) " labelled"
                @if let Some(a) = &o.agreement { " · agreement " (short(a.rate)) }
            } @else {
                "A/B on disjoint requests: " (o.champion_labelled) " and " (o.challenger_labelled) " labelled"
            }
        }
        p data-verdict=(serde_json::to_value(d.verdict).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) {
            span class=(class) { (verdict) } " · " (d.reason)
            @if let Some(n) = d.labelled_requests_still_needed { " (about " (n) " more labelled requests)" }
        }
        table.versions {
            tr { th { "metric" } th.num { (c.champion) } th.num { (c.challenger) } th.num { "difference" } th { "test" } th.num { "p-value" } }
            @for m in &o.metrics {
                tr data-compare-metric=(m.metric) {
                    td { (m.metric) }
                    td.num { (estimate_text(&m.champion)) }
                    td.num { (estimate_text(&m.challenger)) }
                    td.num { (m.difference.map(short).unwrap_or("—".into())) }
                    @match m.tests.first() {
                        Some(t) => { td { (t.test) } td.num { (short(t.p_value)) } }
                        None => { td.muted colspan="2" { (m.reason.as_deref().unwrap_or("")) } }
                    }
                }
            }
        }
        @if let Some(e) = &o.estimated {
            p.meta data-estimated-hint=(match d.estimated_hint {
                Some(EstimatedHint::EstimatedPromote) => "estimated_promote",
                Some(EstimatedHint::EstimatedKeep) => "estimated_keep",
                Some(EstimatedHint::EstimatedUnclear) => "estimated_unclear",
                None => "",
            }) {
                "Label-free estimates (" (c.estimation.as_ref().map_or("cbpe", |x| x.method.as_str()).to_uppercase()) ", ± 3σ) over " (e.champion_requests.max(e.challenger_requests)) " requests, labelled or not"
                @for s in &c.skipped { " · " (s.version) ": " (s.reason) }
            }
            table.versions {
                tr { th { "estimated metric" } th.num { (c.champion) } th.num { (c.challenger) } th.num { "difference" } }
                @for m in &e.metrics {
                    tr data-estimated-metric=(m.metric) {
                        td { "estimated " (m.metric) }
                        td.num { (estimated_text(&m.champion)) }
                        td.num { (estimated_text(&m.challenger)) }
                        td.num { (m.difference.map(short).unwrap_or("—".into())) }
                    }
                }
            }
        }
    }
}
