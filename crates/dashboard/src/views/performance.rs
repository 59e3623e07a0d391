//! The performance view: headline and count cards, metric charts with their bands and baseline, operational charts, custom KPIs.

use super::{
    f, latency, latest_defined, latest_window, line, partial_note, partial_starts, pct,
    rule_thresholds, s, series, span_chart, windows,
};
use crate::charts::{TimeChart, YScale};
use crate::data::{chart_metrics, metric, short, start_of, ModelData, Span};
use crate::layout::figure;
use crate::params::ViewParams;
use maud::{html, Markup};
use serde_json::Value;

/// A metric over time with its 95 % band and the baseline line.
pub fn metric_chart(m: &Value, span: &Span, name: &str, color: usize) -> TimeChart {
    let task = s(m, "task");
    let y = if task == "regression" && name != "r2" {
        YScale::FromZero
    } else if task == "regression" {
        YScale::Auto
    } else {
        YScale::Unit
    };
    let mut c = span_chart(span, name, y);
    let mut l = line(name, color, series(m, |w| metric(w, name).map(|x| x.0)));
    l.band = windows(m)
        .iter()
        .filter_map(|w| start_of(w).map(|t| (t.0, metric(w, name).map(|x| (x.1, x.2)))))
        .collect();
    c.lines.push(l);
    c.baseline = m.get("baseline").and_then(|b| metric(b, name)).map(|x| x.0);
    c.partial = partial_starts(windows(m));
    c
}

/// The operational charts: confidence, volume, latency, error rate, label coverage.
pub fn operational_charts(m: &Value, span: &Span) -> Vec<(&'static str, TimeChart, &'static str)> {
    let mut out = Vec::new();
    let mut c = span_chart(span, "average confidence", YScale::Unit);
    let mut l = line(
        "average confidence",
        5,
        series(m, |w| metric(w, "average_confidence").map(|x| x.0)),
    );
    l.band = windows(m)
        .iter()
        .filter_map(|w| {
            start_of(w).map(|t| (t.0, metric(w, "average_confidence").map(|x| (x.1, x.2))))
        })
        .collect();
    c.lines.push(l);
    out.push((
        "average_confidence",
        c,
        "mean top-class probability per window",
    ));

    let mut c = span_chart(span, "prediction volume", YScale::FromZero);
    c.bars = Some(line(
        "predictions",
        0,
        series(m, |w| f(w, &["predictions"])),
    ));
    out.push(("volume", c, "predictions per window, by event time"));

    let mut c = span_chart(span, "latency (ms)", YScale::FromZero);
    for (i, q) in ["p50", "p95", "p99"].iter().enumerate() {
        c.lines.push(line(q, i + 1, series(m, |w| latency(w, q))));
    }
    out.push(("latency", c, "latency percentiles per window"));

    let mut c = span_chart(span, "error rate", YScale::FromZero);
    c.lines
        .push(line("error rate", 4, series(m, |w| f(w, &["error_rate"]))));
    out.push(("error_rate", c, "share of predictions that carry an error"));

    let mut c = span_chart(span, "label coverage", YScale::Unit);
    c.lines.push(line(
        "label coverage",
        2,
        series(m, |w| f(w, &["label_coverage"])),
    ));
    out.push((
        "label_coverage",
        c,
        "share of predictions whose label has arrived (labels come late)",
    ));
    for (_, c, _) in &mut out {
        c.partial = partial_starts(windows(m));
    }
    out
}

/// The alert-rule signals each operational chart draws.
fn operational_signals(id: &str) -> &'static [&'static str] {
    match id {
        "average_confidence" => &["average_confidence"],
        "volume" => &["predictions"],
        "latency" => &["latency_p50", "latency_p95", "latency_p99"],
        "error_rate" => &["error_rate"],
        "label_coverage" => &["label_coverage"],
        _ => &[],
    }
}

fn headline_card(m: &Value) -> Markup {
    let task = s(m, "task");
    let name = chart_metrics(task)[0];
    let current = latest_defined(m, name);
    let base = m.get("baseline").and_then(|b| metric(b, name)).map(|x| x.0);
    let higher_is_better = !matches!(name, "mae" | "rmse" | "mape");
    html! {
        div.card data-card="headline" data-window=(current.map(|w| s(w, "start")).unwrap_or("")) {
            div.k { (name) " (latest complete window)" @if let Some(w) = current { (partial_note(w)) } }
            @match current.and_then(|w| metric(w, name)) {
                Some((v, lo, hi)) => {
                    div.v { (format!("{v:.4}")) }
                    div.s { "95% CI " (short(lo)) "–" (short(hi)) }
                    @if let Some(b) = base {
                        @let worse = if higher_is_better { v < b } else { v > b };
                        @let significant = current.and_then(|w| w.get("changes")?.get(name)?.get("significant")?.as_bool()).unwrap_or(false);
                        div.s { "baseline " (format!("{b:.4}")) " · "
                            span class=(match (significant, worse) { (true, true) => "bad", (true, false) => "good", _ => "muted" }) { (format!("{:+.4}", v - b)) }
                            @if significant { " (significant)" } }
                    } @else { div.s { "no labelled reference: no baseline" } }
                }
                None => { div.v.muted { "—" } div.s { "no window with enough labels yet" } }
            }
        }
    }
}

fn count_cards(m: &Value) -> Markup {
    let ws = windows(m);
    let preds: f64 = ws.iter().filter_map(|w| f(w, &["predictions"])).sum();
    let labelled: f64 = ws.iter().filter_map(|w| f(w, &["labelled"])).sum();
    let errors: f64 = ws.iter().filter_map(|w| f(w, &["errors"])).sum();
    let last = latest_window(ws);
    html! {
        div.card { div.k { "predictions in range" } div.v { (preds as u64) } div.s { (ws.len()) " windows with events" } }
        div.card { div.k { "label coverage" } div.v { (if preds > 0.0 { pct(labelled / preds) } else { "—".into() }) }
            div.s { "latest window " (last.and_then(|w| f(w, &["label_coverage"])).map(pct).unwrap_or("—".into())) } }
        div.card { div.k { "error rate" } div.v { (if preds > 0.0 { pct(errors / preds) } else { "—".into() }) }
            div.s { (errors as u64) " errors" } }
        div.card { div.k { "latency p95 (latest)" } div.v { (last.and_then(|w| latency(w, "p95")).map(|x| format!("{} ms", short(x))).unwrap_or("—".into())) }
            div.s { "p50 " (last.and_then(|w| latency(w, "p50")).map(short).unwrap_or("—".into())) " ms" } }
    }
}

/// The performance section: cards, metric charts with bands, baseline and the rules'
/// thresholds, operational charts, the selected window's confusion matrix and calibration
/// (`params.at`; `base` is the page's path for the window picker, none in a report).
pub fn performance_section(data: &ModelData, params: &ViewParams, base: Option<&str>) -> Markup {
    let (Some(m), Some(span)) = (&data.metrics, &data.span) else {
        return html! {};
    };
    let task = s(m, "task");
    let charts: Vec<(&str, TimeChart)> = chart_metrics(task)
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let mut c = metric_chart(m, span, name, i);
            c.thresholds = rule_thresholds(data, &[name]);
            (name, c)
        })
        .collect();
    let mut operational = operational_charts(m, span);
    for (id, c, _) in &mut operational {
        c.thresholds = rule_thresholds(data, operational_signals(id));
    }
    html! {
        div.cards { (headline_card(m)) (count_cards(m)) }
        h2 { "Performance (" (task) ")" }
        @if windows(m).is_empty() { div.empty { "No predictions in this range." } }
        div.grid {
            @for (name, c) in &charts {
                (figure(name, c, "per window, shaded: 95% confidence interval; dashed: the reference's value, red dashed: alert rules; hover a window for its values"))
            }
        }
        (super::window::window_section(m, params, base))
        h2 { "Operations" }
        div.grid {
            @for (id, c, caption) in &operational { (figure(id, c, caption)) }
        }
        h2 { "Custom KPIs" }
        @let kpis = kpi_charts(m, span);
        @if kpis.is_empty() {
            div.empty data-panel="kpis" { "custom KPIs: none logged (POST /v1/models/{model}/kpis)" }
        }
        div.grid {
            @for (name, c) in &kpis { (figure(&format!("kpi:{name}"), c, "mean per window of the logged points")) }
        }
    }
}

/// One chart per business KPI of the metrics response (`kpis`: name -> windows).
pub fn kpi_charts(m: &Value, span: &Span) -> Vec<(String, TimeChart)> {
    let Some(kpis) = m.get("kpis").and_then(Value::as_object) else {
        return Vec::new();
    };
    kpis.iter()
        .enumerate()
        .map(|(i, (name, windows))| {
            let mut c = span_chart(span, name, YScale::Auto);
            let points = windows
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|w| start_of(w).map(|t| (t.0, f(w, &["mean"]))))
                .collect();
            c.lines.push(line(name, i + 2, points));
            (name.clone(), c)
        })
        .collect()
}
