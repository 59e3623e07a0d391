//! The performance view: headline and count cards, metric charts with their bands and baseline, operational charts, custom KPIs.

use super::{
    latest_defined, latest_window, line, metric_series, partial_note, partial_starts, pct,
    rule_thresholds, series, span_chart,
};
use crate::charts::{Line, TimeChart, YScale};
use crate::data::{chart_metrics, estimate, metric, short, ModelData, Span};
use crate::layout::figure;
use crate::params::ViewParams;
use maud::{html, Markup};
use modelwatch_engine::performance::{PerformanceReport, Task, WindowReport};
use modelwatch_stats::perf::{Metric, MetricName, QuantileReport};

/// One latency quantile of a window's latency report.
type Quantile = fn(&QuantileReport) -> &Metric;

/// A metric over time with its 95 % band and the baseline line.
pub fn metric_chart(
    m: &PerformanceReport,
    span: &Span,
    name: MetricName,
    color: usize,
) -> TimeChart {
    let y = match m.spec.task {
        Task::Regression if name != MetricName::R2 => YScale::FromZero,
        Task::Regression => YScale::Auto,
        _ => YScale::Unit,
    };
    let mut c = span_chart(span, name.as_str(), y);
    // The label-free estimate first (drawn under the realized line), with its ± 3σ band: where
    // labels have arrived, the realized value is seen inside (or outside) the band.
    if let Some(e) = estimated_line(m, name) {
        c.lines.push(e);
    }
    let mut l = line(name.as_str(), color, metric_series(m, name));
    l.band = m
        .windows
        .iter()
        .map(|w| (w.start.0, metric(&w.metrics, name).map(|x| (x.1, x.2))))
        .collect();
    c.lines.push(l);
    c.baseline = m
        .baseline
        .as_ref()
        .and_then(|b| metric(b, name))
        .map(|x| x.0);
    c.partial = partial_starts(&m.windows);
    c
}

/// The name of a charted metric among a window's label-free estimates (CBPE's multiclass
/// precision, recall and F1 are the macro averages; DLE's MAE and RMSE for regression).
fn estimated_name(name: MetricName) -> Option<&'static str> {
    Some(match name {
        MetricName::Accuracy => "accuracy",
        MetricName::Precision | MetricName::PrecisionMacro => "precision",
        MetricName::Recall | MetricName::RecallMacro => "recall",
        MetricName::F1 | MetricName::F1Macro => "f1",
        MetricName::RocAuc => "roc_auc",
        MetricName::Specificity => "specificity",
        MetricName::Mae => "mae",
        MetricName::Rmse => "rmse",
        _ => return None,
    })
}

/// The label-free estimate of `name` per window with its ± 3σ band (`estimated <name>`), when
/// the report carries estimates of it.
fn estimated_line(m: &PerformanceReport, name: MetricName) -> Option<Line> {
    let key = estimated_name(name)?;
    let value = |w: &WindowReport| w.estimated.as_ref()?.get(key).copied();
    if !m.windows.iter().any(|w| value(w).is_some()) {
        return None;
    }
    let mut l = line(
        &format!("estimated {}", name.as_str()),
        ESTIMATE_COLOR,
        series(&m.windows, |w| value(w).map(|e| e.value)),
    );
    l.band = m
        .windows
        .iter()
        .map(|w| (w.start.0, value(w).map(|e| (e.ci_low, e.ci_high))))
        .collect();
    l.band_label = Some("± 3σ".into());
    Some(l)
}

/// The palette colour of the estimates (slate): apart from the four metrics' own.
const ESTIMATE_COLOR: usize = 7;

/// The operational charts: confidence, volume, latency, error rate, label coverage.
pub fn operational_charts(
    m: &PerformanceReport,
    span: &Span,
) -> Vec<(&'static str, TimeChart, &'static str)> {
    let ws = &m.windows;
    let mut out = Vec::new();
    let mut c = span_chart(span, "average confidence", YScale::Unit);
    let confidence = |w: &WindowReport| estimate(&w.operational.average_confidence);
    let mut l = line(
        "average confidence",
        5,
        series(ws, |w| confidence(w).map(|x| x.0)),
    );
    l.band = ws
        .iter()
        .map(|w| (w.start.0, confidence(w).map(|x| (x.1, x.2))))
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
        series(ws, |w| Some(w.predictions as f64)),
    ));
    out.push(("volume", c, "predictions per window, by event time"));

    let mut c = span_chart(span, "latency (ms)", YScale::FromZero);
    let quantiles: [(&str, Quantile); 3] = [
        ("p50", |l| &l.p50),
        ("p95", |l| &l.p95),
        ("p99", |l| &l.p99),
    ];
    for (i, (name, read)) in quantiles.into_iter().enumerate() {
        c.lines.push(line(
            name,
            i + 1,
            series(ws, |w| read(&w.operational.latency_ms).value()),
        ));
    }
    out.push(("latency", c, "latency percentiles per window"));

    let mut c = span_chart(span, "error rate", YScale::FromZero);
    c.lines
        .push(line("error rate", 4, series(ws, |w| Some(w.error_rate))));
    out.push(("error_rate", c, "share of predictions that carry an error"));

    let mut c = span_chart(span, "label coverage", YScale::Unit);
    c.lines.push(line(
        "label coverage",
        2,
        series(ws, |w| Some(w.label_coverage)),
    ));
    out.push((
        "label_coverage",
        c,
        "share of predictions whose label has arrived (labels come late)",
    ));
    for (_, c, _) in &mut out {
        c.partial = partial_starts(ws);
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

fn headline_card(m: &PerformanceReport) -> Markup {
    let name = chart_metrics(m.spec.task)[0];
    let current = latest_defined(m, name);
    let base = m
        .baseline
        .as_ref()
        .and_then(|b| metric(b, name))
        .map(|x| x.0);
    let higher_is_better = !matches!(name, MetricName::Mae | MetricName::Rmse | MetricName::Mape);
    html! {
        div.card data-card="headline" data-window=(current.map(|w| w.start.to_rfc3339()).unwrap_or_default()) {
            div.k { (name) " (latest complete window)" @if let Some(w) = current { (partial_note(w)) } }
            @match current.and_then(|w| metric(&w.metrics, name)) {
                Some((v, lo, hi)) => {
                    div.v { (format!("{v:.4}")) }
                    div.s { "95% CI " (short(lo)) "–" (short(hi)) }
                    @if let Some(b) = base {
                        @let worse = if higher_is_better { v < b } else { v > b };
                        @let significant = current.and_then(|w| w.changes.as_ref()?.change(name)).is_some_and(|c| c.is_significant());
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

fn count_cards(m: &PerformanceReport) -> Markup {
    let ws = &m.windows;
    let preds: f64 = ws.iter().map(|w| w.predictions as f64).sum();
    let labelled: f64 = ws.iter().map(|w| w.labelled as f64).sum();
    let errors: f64 = ws.iter().map(|w| w.errors as f64).sum();
    let last = latest_window(ws);
    let latency = |read: Quantile| last.and_then(|w| read(&w.operational.latency_ms).value());
    html! {
        div.card { div.k { "predictions in range" } div.v { (preds as u64) } div.s { (ws.len()) " windows with events" } }
        div.card { div.k { "label coverage" } div.v { (if preds > 0.0 { pct(labelled / preds) } else { "—".into() }) }
            div.s { "latest window " (last.map(|w| pct(w.label_coverage)).unwrap_or("—".into())) } }
        div.card { div.k { "error rate" } div.v { (if preds > 0.0 { pct(errors / preds) } else { "—".into() }) }
            div.s { (errors as u64) " errors" } }
        div.card { div.k { "latency p95 (latest)" } div.v { (latency(|l| &l.p95).map(|x| format!("{} ms", short(x))).unwrap_or("—".into())) }
            div.s { "p50 " (latency(|l| &l.p50).map(short).unwrap_or("—".into())) " ms" } }
    }
}

/// The performance section: cards, metric charts with bands, baseline and the rules'
/// thresholds, operational charts, the selected window's confusion matrix and calibration
/// (`params.at`; `base` is the page's path for the window picker, none in a report).
pub fn performance_section(data: &ModelData, params: &ViewParams, base: Option<&str>) -> Markup {
    let (Some(m), Some(span)) = (&data.metrics, &data.span) else {
        return html! {};
    };
    let task = m.spec.task;
    let charts: Vec<(MetricName, TimeChart)> = chart_metrics(task)
        .iter()
        .enumerate()
        .map(|(i, &name)| {
            let mut c = metric_chart(m, span, name, i);
            c.thresholds = rule_thresholds(data, &[name.as_str()]);
            (name, c)
        })
        .collect();
    let mut operational = operational_charts(m, span);
    for (id, c, _) in &mut operational {
        c.thresholds = rule_thresholds(data, operational_signals(id));
    }
    html! {
        div.cards { (headline_card(m)) (count_cards(m)) }
        h2 { "Performance (" (task.as_str()) ")" }
        @if m.windows.is_empty() { div.empty { "No predictions in this range." } }
        div.grid {
            @for (name, c) in &charts {
                (figure(name.as_str(), c, "per window, shaded: 95% confidence interval; grey: the label-free estimate (CBPE, or DLE for regression) with its ± 3σ band, before and after labels arrive; dashed: the reference's value, red dashed: alert rules; hover a window for its values"))
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
pub fn kpi_charts(m: &PerformanceReport, span: &Span) -> Vec<(String, TimeChart)> {
    m.kpis
        .iter()
        .enumerate()
        .map(|(i, (name, windows))| {
            let mut c = span_chart(span, name, YScale::Auto);
            let points = windows
                .iter()
                .map(|w| (w.start.0, Some(w.mean).filter(|x| x.is_finite())))
                .collect();
            c.lines.push(line(name, i + 2, points));
            (name.clone(), c)
        })
        .collect()
}
