//! The HTML of the dashboard: the models overview and a model's views. maud escapes every
//! interpolated string; only chart SVG (escaped by plotters) is inserted as markup.

use crate::charts::{self, Line, Overlay, TimeChart, YScale, PALETTE};
use crate::data::{self, chart_metrics, metric, short, start_of, AlertSource, ModelData, Span};
use crate::params::{url_encode, ViewParams, RANGES, WINDOWS};
use crate::{DashError, Tab};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use modelwatch_core::{ModelName, Timestamp};
use modelwatch_store::Store;
use serde_json::Value;

/// The dashboard's stylesheet, inlined in every page and report.
pub const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111827;background:#f3f4f6}
header.top{background:#111827;color:#f9fafb;padding:10px 24px;display:flex;gap:16px;align-items:baseline}
header.top a{color:#f9fafb;text-decoration:none;font-weight:600;font-size:16px}
header.top span{color:#9ca3af;font-size:12px}
main{padding:16px 24px;max-width:1280px;margin:0 auto}
h1{font-size:22px;margin:4px 0 2px}
h2{font-size:16px;margin:22px 0 8px}
.meta{color:#4b5563;font-size:13px;margin-bottom:8px}
.meta b{color:#111827}
form.pickers{display:flex;gap:12px;align-items:end;flex-wrap:wrap;background:#fff;padding:8px 12px;border-radius:8px;border:1px solid #e5e7eb;margin:8px 0}
form.pickers label{display:flex;flex-direction:column;font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
form.pickers select,form.pickers input{font:inherit;padding:3px 6px;border:1px solid #d1d5db;border-radius:4px;background:#fff}
form.pickers button{font:inherit;padding:4px 14px;border:0;border-radius:4px;background:#2563eb;color:#fff;cursor:pointer}
nav.tabs{display:flex;gap:2px;border-bottom:1px solid #d1d5db;margin:12px 0}
nav.tabs a{padding:7px 14px;color:#374151;text-decoration:none;border-radius:6px 6px 0 0}
nav.tabs a.active{background:#fff;border:1px solid #d1d5db;border-bottom-color:#fff;margin-bottom:-1px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:10px;margin:8px 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px}
.card .k{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600}
.card .s{font-size:12px;color:#6b7280}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}
figure.chart{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:6px}
figure.chart svg{width:100%;height:auto;display:block}
figure.chart figcaption{font-size:12px;color:#6b7280;padding:2px 6px}
table{border-collapse:collapse;background:#fff;border:1px solid #e5e7eb;width:100%}
th,td{padding:6px 10px;border-bottom:1px solid #f3f4f6;text-align:left;vertical-align:top}
th{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em;background:#f9fafb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#1d4ed8}
.bad{color:#b91c1c;font-weight:600}.good{color:#15803d;font-weight:600}.muted{color:#9ca3af}
.flag{display:inline-block;background:#fee2e2;color:#991b1b;border-radius:4px;padding:0 6px;margin:1px;font-size:12px}
.ok{display:inline-block;background:#dcfce7;color:#166534;border-radius:4px;padding:0 6px;font-size:12px}
.empty{background:#fff;border:1px dashed #d1d5db;border-radius:8px;padding:14px;color:#6b7280}
.heat{overflow-x:auto;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px}
.heat table{border:0;width:auto}
.heat td{padding:0;border:0;width:7px;min-width:7px;height:18px}
.heat td.name{width:auto;padding:0 10px 0 0;white-space:nowrap;font-size:12px;max-width:260px;overflow:hidden;text-overflow:ellipsis}
.heat th{padding:0 0 4px;background:#fff;font-size:10px;text-transform:none}
.legend{font-size:12px;color:#6b7280;margin:6px 0}
.legend i{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 3px 0 10px;border-radius:2px}
.error{background:#fff;border:1px solid #fecaca;border-radius:8px;padding:16px 20px}
table.models td{white-space:nowrap}
td.spark{padding:2px 10px}td.spark svg{width:160px;height:36px;display:block}
code{background:#e5e7eb;border-radius:3px;padding:0 4px}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;border:1px solid #e5e7eb;border-radius:6px;padding:8px 10px;font-size:12px}
pre code{background:none;padding:0}
td .s{font-size:12px;color:#6b7280}
.badge{display:inline-block;border-radius:4px;padding:0 7px;font-size:12px;font-weight:600}
.badge.firing{background:#fee2e2;color:#991b1b}.badge.pending{background:#fef3c7;color:#92400e}
.badge.resolved{background:#dcfce7;color:#166534}.badge.other{background:#e5e7eb;color:#374151}
.sev{font-size:12px;font-weight:600}.sev-critical{color:#b91c1c}.sev-warning{color:#b45309}.sev-info{color:#1d4ed8}.sev-other{color:#374151}
.alertbar{margin:8px 0;padding:8px 14px;border-radius:8px;font-size:13px}
.alertbar.firing{background:#fef2f2;border:1px solid #fecaca}.alertbar.pending{background:#fffbeb;border:1px solid #fde68a}
.count{display:inline-block;min-width:20px;text-align:center;border-radius:10px;padding:0 6px;font-size:12px;font-weight:600;color:#fff;text-decoration:none}
.count.firing{background:#dc2626}.count.pending{background:#d97706}
div.login{max-width:420px;margin:40px auto;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 24px}
form.login{display:flex;flex-direction:column;gap:10px}
form.login label{display:flex;flex-direction:column;font-size:12px;color:#6b7280;gap:4px}
form.login input{font:inherit;padding:5px 8px;border:1px solid #d1d5db;border-radius:4px}
form.login button{font:inherit;padding:6px 14px;border:0;border-radius:4px;background:#2563eb;color:#fff;cursor:pointer;align-self:flex-start}
"#;

/// A whole page.
pub fn layout(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · modelwatch" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header.top { a href="/" { "modelwatch" } span { "model monitoring" } }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// The page of an error: what was wrong, and where to go.
pub fn error_page(status: u16, message: &str) -> String {
    let title = match status {
        400 => "Bad request",
        404 => "Not found",
        _ => "Error",
    };
    layout(
        title,
        html! {
            div.error data-status=(status) {
                h1 { (status) " · " (title) }
                p { (message) }
                p { a href="/" { "Back to the models" } }
            }
        },
    )
}

/// Inline SVG for an HTML page: plotters' document without the namespace attribute (an
/// inline `<svg>` in HTML needs none, and a report then holds no URL at all).
pub fn inline_svg(svg: Result<String, String>) -> Markup {
    match svg {
        Ok(s) => PreEscaped(s.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)),
        Err(e) => html! { p.muted { "chart failed: " (e) } },
    }
}

/// A chart in a figure that names what it draws (`data-series`), for people and tests.
pub fn figure(id: &str, chart: &TimeChart, caption: &str) -> Markup {
    sized_figure(id, chart, caption, 620)
}

/// A chart as wide as the page.
pub fn wide_figure(id: &str, chart: &TimeChart, caption: &str) -> Markup {
    sized_figure(id, chart, caption, 1240)
}

fn sized_figure(id: &str, chart: &TimeChart, caption: &str, width: u32) -> Markup {
    html! {
        figure.chart data-chart=(id) data-series=(chart.series_names().join("|"))
            data-windows=(chart.lines.first().or(chart.bars.as_ref()).map(|l| l.points.len()).unwrap_or(0)) {
            (inline_svg(charts::time_svg(chart, width, 250)))
            @if !caption.is_empty() { figcaption { (caption) } }
        }
    }
}

fn windows(v: &Value) -> &[Value] {
    v.get("windows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn ts(v: &Value, key: &str) -> String {
    let t = s(v, key);
    if t.is_empty() {
        "—".into()
    } else {
        t.replace('T', " ").replace('Z', " UTC")
    }
}

/// A latency quantile of a window (`latency_ms.p95` is a metric with its interval).
fn latency(w: &Value, q: &str) -> Option<f64> {
    w.get("latency_ms").and_then(|l| metric(l, q)).map(|x| x.0)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The value of a metric with its interval, `—` when not defined.
fn metric_text(w: &Value, name: &str) -> Markup {
    match metric(w, name) {
        Some((v, lo, hi)) => html! {
            span title=(format!("95% CI [{}, {}]", short(lo), short(hi))) { (format!("{v:.4}")) }
        },
        None => {
            let why = w
                .get(name)
                .and_then(|m| m.get("status"))
                .and_then(Value::as_str)
                .unwrap_or("undefined")
                .replace('_', " ");
            html! { span.muted title=(why) { "—" } }
        }
    }
}

/// Values of a series per window of a metrics report.
fn series(m: &Value, get: impl Fn(&Value) -> Option<f64>) -> Vec<(i64, Option<f64>)> {
    windows(m)
        .iter()
        .filter_map(|w| start_of(w).map(|t| (t.0, get(w))))
        .collect()
}

fn span_chart(span: &Span, title: &str, y: YScale) -> TimeChart {
    let w = modelwatch_core::Window::parse(&span.window).expect("canonical window");
    TimeChart {
        title: title.to_string(),
        from: span.from.0,
        to: span.to.0,
        window_micros: w.micros(),
        y,
        lines: Vec::new(),
        bars: None,
        baseline: None,
        baseline_label: "baseline".into(),
    }
}

fn line(name: &str, color: usize, points: Vec<(i64, Option<f64>)>) -> Line {
    Line {
        name: name.to_string(),
        color: PALETTE[color % PALETTE.len()],
        points,
        band: Vec::new(),
    }
}

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
    out
}

/// The last window where the metric is defined.
fn latest_defined<'a>(m: &'a Value, name: &str) -> Option<&'a Value> {
    windows(m).iter().rev().find(|w| metric(w, name).is_some())
}

fn headline_card(m: &Value) -> Markup {
    let task = s(m, "task");
    let name = chart_metrics(task)[0];
    let current = latest_defined(m, name);
    let base = m.get("baseline").and_then(|b| metric(b, name)).map(|x| x.0);
    let higher_is_better = !matches!(name, "mae" | "rmse" | "mape");
    html! {
        div.card data-card="headline" {
            div.k { (name) " (latest window)" }
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
    let last = ws.last();
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

/// The performance section: cards, metric charts with bands and baseline, operational charts.
pub fn performance_section(m: &Value, span: &Span) -> Markup {
    let task = s(m, "task");
    html! {
        div.cards { (headline_card(m)) (count_cards(m)) }
        h2 { "Performance (" (task) ")" }
        @if windows(m).is_empty() { div.empty { "No predictions in this range." } }
        div.grid {
            @for (i, name) in chart_metrics(task).iter().enumerate() {
                (figure(name, &metric_chart(m, span, name, i), "per window, shaded: 95% confidence interval; dashed: the reference's value"))
            }
        }
        h2 { "Operations" }
        div.grid {
            @for (id, c, caption) in operational_charts(m, span) { (figure(id, &c, caption)) }
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

/// Colour of a heatmap cell: grey when not evaluated; dark red when drifted; pink when the
/// change is significant but its effect under the threshold; else white to a faint rose by
/// effect size over its threshold (noise in small windows stays pale).
fn heat_color(feature: &Value) -> String {
    let status = feature
        .get("status")
        .map(|st| st.get("status").unwrap_or(st));
    if status.and_then(Value::as_str) != Some("evaluated") {
        return "#e5e7eb".into();
    }
    if feature.get("drifted").and_then(Value::as_bool) == Some(true) {
        return "#b91c1c".into();
    }
    if let (Some(p), Some(a)) = (f(feature, &["p_value_adjusted"]), f(feature, &["alpha"])) {
        if p < a {
            return "#f87171".into();
        }
    }
    let ratio = match (f(feature, &["effect_size"]), f(feature, &["threshold"])) {
        (Some(e), Some(t)) if t > 0.0 => (e / t).clamp(0.0, 1.0),
        _ => 0.0,
    };
    let g = (252.0 - ratio * 40.0) as u8;
    format!("rgb(254,{g},{g})")
}

/// Most heatmap columns: the latest windows of the range.
pub const HEATMAP_COLUMNS: usize = 200;

/// One row per feature (named `prefix` + feature), one cell per window.
fn heat_rows<'a>(ws: &'a [Value], prefix: &str) -> Vec<(String, Vec<Option<&'a Value>>)> {
    let mut rows: Vec<(String, Vec<Option<&Value>>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, w) in ws.iter().enumerate() {
        for fv in w
            .get("features")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = format!("{prefix}{}", s(fv, "feature"));
            let row = *index.entry(name.clone()).or_insert_with(|| {
                rows.push((name, vec![None; ws.len()]));
                rows.len() - 1
            });
            rows[row].1[i] = Some(fv);
        }
    }
    rows
}

/// Features x windows, one cell per verdict, with the details in its tooltip.
pub fn heatmap(drift: &Value, base: Option<&str>) -> Markup {
    let ws = windows(drift);
    let skip = ws.len().saturating_sub(HEATMAP_COLUMNS);
    let ws = &ws[skip..];
    let rows = heat_rows(ws, "");
    let outputs = drift.get("prediction").map(windows).unwrap_or(&[]);
    let out_rows = heat_rows(
        &outputs[outputs.len().saturating_sub(HEATMAP_COLUMNS)..],
        "output: ",
    );
    let starts: Vec<String> = ws.iter().map(|w| ts(w, "start")).collect();
    let first = ws.first().map(|w| ts(w, "start")).unwrap_or_default();
    let last = ws.last().map(|w| ts(w, "start")).unwrap_or_default();
    html! {
        div.heat data-heatmap-rows=(rows.len()) data-heatmap-columns=(ws.len()) {
            @if skip > 0 { p.muted { "latest " (HEATMAP_COLUMNS) " windows of " (skip + ws.len()) } }
            table {
                tr { th { "feature" } th colspan=(ws.len().max(1)) { (first) " → " (last) } }
                @for (name, cells) in rows.iter().chain(out_rows.iter()) {
                    tr {
                        td.name title=(name) {
                            @match base {
                                Some(b) if !name.starts_with("output: ") => a href=(format!("{b}&feature={}#dist-{}", url_encode(name), url_encode(name))) { (name) },
                                _ => (name),
                            }
                        }
                        @for (i, c) in cells.iter().enumerate() {
                            @match c {
                                Some(fv) => td style=(format!("background:{}", heat_color(fv)))
                                    title=(format!("{} · {} · {} {} (threshold {}){}",
                                        name, starts.get(i).map(String::as_str).unwrap_or(""),
                                        s(fv, "effect_measure"),
                                        f(fv, &["effect_size"]).map(short).unwrap_or("—".into()),
                                        f(fv, &["threshold"]).map(short).unwrap_or("—".into()),
                                        if fv.get("drifted").and_then(Value::as_bool) == Some(true) { " · DRIFTED" } else { "" })) {}
                                None => td style="background:#f9fafb" {}
                            }
                        }
                    }
                }
            }
            div.legend {
                i style="background:rgb(254,252,252);border:1px solid #e5e7eb" {} "no significant change (paler: smaller effect)"
                i style="background:#f87171" {} "significant, effect under its threshold"
                i style="background:#b91c1c" {} "drifted (significant and large enough)"
                i style="background:#e5e7eb" {} "not evaluated"
            }
        }
    }
}

/// The drift section: heatmap, share of drifted features, reference vs current distributions.
pub fn drift_section(data: &ModelData, base: Option<&str>, selected: Option<&str>) -> Markup {
    let Some(drift) = &data.drift else {
        return unavailable(data, "drift");
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut share = span_chart(span, "share of features drifted", YScale::Unit);
    share.lines.push(line(
        "share drifted",
        4,
        series(drift, |w| f(w, &["share_drifted"])),
    ));
    share.baseline = f(drift, &["drift_share"]);
    share.baseline_label = "dataset drift threshold".into();
    let mut dists: Vec<&data::Distribution> = data.distributions.iter().collect();
    if let Some(sel) = selected {
        dists.sort_by_key(|d| d.feature != sel);
    }
    html! {
        h2 { "Drift: features × windows" }
        p.meta { "Against the reference (" (drift.get("reference").and_then(|r| r.get("rows")).and_then(Value::as_u64).unwrap_or(0)) " rows); p-values adjusted together (Benjamini-Hochberg), a feature drifts when significant and its effect reaches the threshold." }
        (heatmap(drift, base))
        (wide_figure("drift_share", &share, "dashed: the share of drifted features at which the whole dataset counts as drifted"))
        h2 { "Distributions: reference and latest window" }
        @if dists.is_empty() { (unavailable(data, "distributions")) }
        div.grid {
            @for d in dists {
                @let o = Overlay { title: d.feature.clone(), bins: d.bins.clone(), reference: d.reference.clone(), current: d.current.clone() };
                figure.chart id=(format!("dist-{}", url_encode(&d.feature))) data-chart="distribution" data-feature=(d.feature) data-series="reference|current" {
                    (inline_svg(charts::overlay_svg(&o, 620)))
                    figcaption { (d.feature) " (" (d.kind) "): " (d.reference_rows) " reference values, " (d.current_rows) " in the window from " (d.window_start.to_rfc3339()) }
                }
            }
        }
    }
}

fn unavailable(data: &ModelData, section: &str) -> Markup {
    let why = data
        .unavailable
        .get(section)
        .cloned()
        .unwrap_or_else(|| "nothing to show in this range".into());
    html! { div.empty data-unavailable=(section) { (why) } }
}

/// The data-quality section: the latest window's per-feature checks and flags over the range.
pub fn quality_section(data: &ModelData) -> Markup {
    let Some(q) = &data.quality else {
        return unavailable(data, "quality");
    };
    let ws = windows(q);
    let Some(last) = ws.last() else {
        return html! { div.empty { "No events in this range." } };
    };
    let flagged = |feature: &str| {
        ws.iter()
            .filter(|w| {
                w.get("features")
                    .and_then(Value::as_array)
                    .and_then(|fs| fs.iter().find(|x| s(x, "feature") == feature))
                    .and_then(|x| x.get("flags").and_then(Value::as_array))
                    .is_some_and(|f| !f.is_empty())
            })
            .count()
    };
    let empty = Vec::new();
    let feats = last
        .get("features")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let unexpected = last
        .get("unexpected_features")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    html! {
        h2 { "Data quality: window from " (ts(last, "start")) " (" (f(last, &["rows"]).unwrap_or(0.0) as u64) " events)" }
        table.quality {
            tr { th { "feature" } th { "kind" } th.num { "null rate" } th.num { "reference" } th.num { "out of range" } th.num { "unseen categories" } th.num { "distinct (ref)" } th.num { "windows flagged" } th { "flags" } }
            @for x in feats {
                @let name = s(x, "feature");
                @let flags = x.get("flags").and_then(Value::as_array).cloned().unwrap_or_default();
                tr {
                    td { (name) }
                    td { (s(x, "kind")) }
                    td.num { (f(x, &["null_rate"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["reference_null_rate"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["out_of_range", "share"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["unseen_categories", "share"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["distinct"]).map(|v| v.to_string()).unwrap_or("—".into())) " (" (f(x, &["reference_distinct"]).map(|v| v.to_string()).unwrap_or("—".into())) ")" }
                    td.num { (flagged(name)) " / " (ws.len()) }
                    td { @if flags.is_empty() { span.ok { "ok" } } @for fl in &flags { span.flag { (fl.as_str().unwrap_or("")) } } }
                }
            }
        }
        @if !unexpected.is_empty() {
            h2 { "Features the reference does not have" }
            table { tr { th { "feature" } th.num { "events" } }
                @for u in unexpected { tr { td { (s(u, "feature")) } td.num { (f(u, &["rows"]).or(f(u, &["count"])).unwrap_or(0.0)) } } } }
        }
    }
}

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
                    td.num { (ws.last().and_then(|w| latency(w, "p95")).map(short).unwrap_or("—".into())) }
                }
            }
        }
    }
}

/// A timestamp of the API's JSON for people: `2026-11-25 15:13:52 UTC`, without fractions.
fn when(t: &str) -> String {
    if t.is_empty() {
        return "—".into();
    }
    let t = t.trim_end_matches('Z');
    let t = t.split('.').next().unwrap_or(t);
    format!("{} UTC", t.replace('T', " "))
}

/// An evaluated window for people: `2026-11-25 15:00 → 16:00 UTC`, the end's date only when it
/// differs, seconds only when not zero.
fn window_text(start: &str, end: &str) -> String {
    let short = |t: &str| {
        let w = when(t);
        let w = w.trim_end_matches(" UTC").to_string();
        w.strip_suffix(":00").map(str::to_string).unwrap_or(w)
    };
    let (a, b) = (short(start), short(end));
    let b = match (a.split_once(' '), b.split_once(' ')) {
        (Some((da, _)), Some((db, tb))) if da == db => tb.to_string(),
        _ => b,
    };
    format!("{a} → {b} UTC")
}

/// How long before `now` the timestamp `t` was: `3m`, `2h 5m`, `4d 1h`.
fn ago(t: &str, now: Timestamp) -> Option<String> {
    let t = modelwatch_core::parse_timestamp(t).ok()?;
    let secs = ((now.0 - t.0) / 1_000_000).max(0);
    Some(if secs >= 86_400 {
        format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600)
    } else if secs >= 3600 {
        format!("{}h {}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    })
}

/// A rule's condition in a few words: `< 0.8`, `> 10 % below the baseline, significant`.
pub fn condition_text(c: &Value) -> String {
    let op = s(c, "op");
    let value = f(c, &["value"]).map(short).unwrap_or_default();
    let windows = f(c, &["windows"]).unwrap_or(0.0) as u64;
    let direction = s(c, "direction");
    match s(c, "kind") {
        "threshold" => format!("{op} {value}"),
        "rolling_mean" => format!("mean of {windows} windows {op} {value}"),
        "trend" => format!("slope over {windows} windows {op} {value} per window"),
        "baseline" => format!(
            "more than {} % {} the baseline{}",
            short(f(c, &["relative"]).unwrap_or(0.0) * 100.0),
            direction,
            if c.get("require_significant").and_then(Value::as_bool) == Some(false) {
                ""
            } else {
                ", significant"
            }
        ),
        "significant_change" => format!("significant change ({direction})"),
        "anomaly" => format!(
            "more than {} sd from the mean of {windows} windows{}",
            f(c, &["z"]).map(short).unwrap_or_default(),
            if direction.is_empty() || direction == "any" {
                String::new()
            } else {
                format!(" ({direction})")
            }
        ),
        "freshness" => format!("nothing arrived for {}", s(c, "max_age")),
        "heartbeat" => format!("no successful run for {}", s(c, "max_age")),
        other => other.to_string(),
    }
}

fn state_badge(state: &str) -> Markup {
    let class = match state {
        "firing" => "badge firing",
        "pending" => "badge pending",
        "resolved" => "badge resolved",
        _ => "badge other",
    };
    html! { span class=(class) { (state) } }
}

fn severity_badge(severity: &str) -> Markup {
    html! { span class=(format!("sev sev-{}", match severity { "critical" | "warning" | "info" => severity, _ => "other" })) { (severity) } }
}

/// The model's rules by name.
fn rules_by_name(a: &data::AlertsData) -> std::collections::HashMap<&str, &Value> {
    a.rules.iter().map(|r| (s(r, "name"), r)).collect()
}

/// Open alerts at the top of a model's page: what fires, and a link to the panel.
pub fn alerts_banner(data: &ModelData, alerts_href: &str) -> Markup {
    let Some(a) = &data.alerts else {
        return html! {};
    };
    let open: Vec<&Value> = a.open().collect();
    if open.is_empty() {
        return html! {};
    }
    let firing = open.iter().filter(|x| s(x, "state") == "firing").count();
    html! {
        div class=(if firing > 0 { "alertbar firing" } else { "alertbar pending" }) data-panel="alert-banner" data-open-alerts=(open.len()) {
            b { (firing) " firing, " (open.len() - firing) " pending" }
            @for x in &open {
                " · " (state_badge(s(x, "state"))) " " (s(x, "rule")) " → " (s(x, "decision"))
            }
            " · " a href=(alerts_href) { "alerts and their history" }
        }
    }
}

/// The alerts panel: the model's pending and firing alerts (rule, severity, decision, signal,
/// value against the rule's condition, window, since when), its latest transitions newest
/// first, and, with `show_rules`, the rules that watch it. Every string comes from the alert
/// endpoints' JSON and is escaped.
pub fn alerts_section(data: &ModelData, history_rows: usize, show_rules: bool) -> Markup {
    let model = data.model.as_str();
    let Some(a) = &data.alerts else {
        let why = data.unavailable.get("alerts").cloned().unwrap_or_else(|| {
            "alerts are not part of this page: GET /v1/alerts has them".to_string()
        });
        return html! {
            h2 { "Alerts" }
            div.empty data-panel="alerts" data-unavailable="alerts" { (why) }
        };
    };
    let now = data.generated_at.unwrap_or_else(Timestamp::now);
    let rules = rules_by_name(a);
    let open: Vec<&Value> = a.open().collect();
    let history = &a.history[..a.history.len().min(history_rows)];
    let example = format!(
        "curl -X POST http://HOST/v1/models/{model}/rules -H 'Authorization: Bearer ADMIN_KEY' -H 'Content-Type: application/json' -d '{{\"name\": \"accuracy-floor\", \"signal\": \"accuracy\", \"condition\": {{\"kind\": \"threshold\", \"op\": \"<\", \"value\": 0.8}}, \"decision\": \"retrain\", \"severity\": \"critical\", \"window\": \"1d\", \"for\": \"10m\"}}'"
    );
    html! {
        h2 { "Alerts" }
        div data-panel="alerts" data-open-alerts=(open.len()) data-rules=(a.rules.len()) {
            @if open.is_empty() {
                div.empty data-empty="alerts" {
                    @if a.rules.is_empty() {
                        p { b { "No alerts." } " No alert rule watches this model yet." }
                        p { "Add one with " code { "POST /v1/models/" (model) "/rules" } " (an admin key when keys are set), or as "
                            code { "[[models." (model) ".rules]]" } " in the config file (docs/api.md, docs/configuration.md):" }
                        pre { code { (example) } }
                    } @else {
                        p { b { "No alerts." } " " (a.rules.len()) " rule(s) watch this model; none is pending or firing. "
                            "More rules: " code { "POST /v1/models/" (model) "/rules" } "." }
                    }
                }
            } @else {
                table.alerts {
                    tr { th { "state" } th { "rule" } th { "severity" } th { "decision" } th { "signal" } th.num { "value" } th { "condition" } th { "window" } th { "since" } }
                    @for x in &open {
                        @let state = s(x, "state");
                        @let rule = rules.get(s(x, "rule")).copied();
                        @let since = if state == "firing" { s(x, "fired_at") } else { s(x, "active_at") };
                        tr data-alert-state=(state) data-rule=(s(x, "rule")) data-fingerprint=(s(x, "fingerprint")) {
                            td { (state_badge(state)) @if x.get("silenced").and_then(Value::as_bool) == Some(true) { " " span.badge.other title="an active silence matches: nothing is sent" { "silenced" } } }
                            td { b { (s(x, "rule")) }
                                @if let Some(d) = rule.map(|r| s(r, "description")).filter(|d| !d.is_empty()) { div.s { (d) } }
                                div.s { (s(x, "summary")) } }
                            td { (severity_badge(s(x, "severity"))) }
                            td { (s(x, "decision")) }
                            td { code { (s(x, "signal")) } }
                            td.num data-value=(x.get("value").map(|v| v.to_string()).unwrap_or_default()) {
                                (f(x, &["value"]).map(short).unwrap_or("—".into()))
                                @if let Some(b) = f(x, &["baseline"]) { div.s { "baseline " (short(b)) } }
                            }
                            td { @match rule { Some(r) => (condition_text(r.get("condition").unwrap_or(&Value::Null))), None => span.muted { "rule removed" } } }
                            td { @if let Some(r) = rule { (s(r, "window")) " " }
                                @if !s(x, "window_start").is_empty() { div.s { (window_text(s(x, "window_start"), s(x, "window_end"))) } }
                                @if let Some(n) = f(x, &["n"]) { div.s { (n as u64) " rows" } } }
                            td { (when(since)) @if let Some(d) = ago(since, now) { div.s { (d) " ago" } }
                                @if state == "pending" { @if let Some(r) = rule { div.s { "fires once it has held for " (s(r, "for")) } } } }
                        }
                    }
                }
            }
            h2 { "Alert history" }
            @if history.is_empty() {
                div.empty data-empty="alert-history" { "No transitions yet." }
            } @else {
                table.alert-history data-history=(history.len()) {
                    tr { th { "when" } th { "transition" } th { "rule" } th { "severity" } th { "decision" } th.num { "value" } th { "what was seen" } }
                    @for h in history {
                        @let x = h.get("alert").unwrap_or(&Value::Null);
                        tr data-transition=(s(h, "transition")) data-rule=(s(x, "rule")) {
                            td { (when(s(h, "at"))) }
                            td { (state_badge(s(h, "transition"))) }
                            td { (s(x, "rule")) }
                            td { (severity_badge(s(x, "severity"))) }
                            td { (s(x, "decision")) }
                            td.num { (f(x, &["value"]).map(short).unwrap_or("—".into())) }
                            td { (s(x, "summary")) }
                        }
                    }
                }
                @if a.history.len() > history.len() { p.meta { "The latest " (history.len()) " transitions: the Alerts tab shows up to " (data::ALERT_HISTORY) ", " code { "GET /v1/alerts/history?model=" (model) } " all of them." } }
            }
            @if show_rules && !a.rules.is_empty() {
                h2 { "Rules" }
                table.rules {
                    tr { th { "rule" } th { "signal" } th { "condition" } th { "window" } th { "for" } th { "severity" } th { "decision" } th { "from" } }
                    @for r in &a.rules {
                        tr data-rule=(s(r, "name")) {
                            td { b { (s(r, "name")) } @if !s(r, "description").is_empty() { div.s { (s(r, "description")) } } }
                            td { code { (s(r, "signal")) } }
                            td { (condition_text(r.get("condition").unwrap_or(&Value::Null))) }
                            td { (s(r, "window")) @if !s(r, "version").is_empty() { ", version " (s(r, "version")) } }
                            td { (s(r, "for")) }
                            td { (severity_badge(s(r, "severity"))) }
                            td { (s(r, "decision")) }
                            td { (s(r, "origin")) }
                        }
                    }
                }
            }
        }
    }
}

fn pickers(p: &ViewParams, versions: &[String], extra: Markup) -> Markup {
    html! {
        form.pickers method="get" {
            label { "range"
                select name="range" {
                    @for (v, label) in RANGES { option value=(v) selected[p.from.is_none() && p.range_label == v] { (label) } }
                }
            }
            label { "window"
                select name="window" {
                    @for v in WINDOWS { option value=(v) selected[p.window_label == v] { (v) } }
                    @if !WINDOWS.contains(&p.window_label.as_str()) { option value=(p.window_label) selected { (p.window_label) } }
                }
            }
            @if !versions.is_empty() {
                label { "version"
                    select name="version" {
                        option value="" selected[p.version.is_none()] { "all versions" }
                        @for v in versions { option value=(v) selected[p.version.as_deref() == Some(v.as_str())] { (v) } }
                    }
                }
            }
            (extra)
            button type="submit" { "Show" }
        }
    }
}

fn span_line(span: &Span) -> Markup {
    html! {
        p.meta data-span-from=(span.from.to_rfc3339()) data-span-to=(span.to.to_rfc3339()) {
            "From " b { (span.from.to_rfc3339()) } " to " b { (span.to.to_rfc3339()) } " in windows of " b { (span.window) }
            @if let Some(v) = &span.version { ", version " b { (v) } }
        }
    }
}

/// A model's view at `/models/{model}{tab.path()}`. With an alert source, every view shows
/// the open alerts and the performance and alerts views the alerts panel.
pub fn model_page(
    store: &dyn Store,
    model: &str,
    tab: Tab,
    params: &ViewParams,
    alerts: Option<&dyn AlertSource>,
) -> Result<String, DashError> {
    let name = ModelName::new(model).map_err(|e| DashError::BadRequest(e.to_string()))?;
    let mut data = data::gather(store, &name, params, tab.parts())?;
    if let Some(source) = alerts {
        match source.model_alerts(name.as_str(), data::ALERT_HISTORY) {
            Ok(a) => data.alerts = Some(a),
            Err(why) => {
                data.unavailable
                    .insert("alerts".into(), format!("alerts unavailable: {why}"));
            }
        }
    }
    Ok(render_model(&data, tab, params))
}

/// Transitions shown under the performance view (the alerts view shows `ALERT_HISTORY`).
const PERFORMANCE_HISTORY: usize = 10;

/// The HTML of a model's view from gathered data.
pub fn render_model(data: &ModelData, tab: Tab, params: &ViewParams) -> String {
    let model = data.model.as_str();
    let sum = &data.summary;
    let versions: Vec<String> = sum
        .get("versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().map(|x| s(x, "version").to_string()).collect())
        .unwrap_or_default();
    let base = format!("/models/{}", url_encode(model));
    let query = params.query();
    let span = data.span.as_ref().expect("gathered data has a span");
    let extra = match tab {
        Tab::Segments => {
            let feats: Vec<String> = sum
                .get("schema")
                .and_then(|s| s.get("features"))
                .and_then(Value::as_array)
                .map(|v| v.iter().map(|x| s(x, "name").to_string()).collect())
                .unwrap_or_default();
            let current = data
                .segments
                .as_ref()
                .map(|m| s(m, "segment").to_string())
                .unwrap_or_default();
            html! { label { "segment by" select name="segment" {
                @for fe in &feats { option value=(fe) selected[*fe == current] { (fe) } }
            } } }
        }
        Tab::Drift => html! {
            @if let Some(fe) = &params.feature { input type="hidden" name="feature" value=(fe); }
        },
        _ => html! {},
    };
    let (open, firing) = data.alerts.as_ref().map_or((0, 0), |a| {
        (
            a.open().count(),
            a.open().filter(|x| s(x, "state") == "firing").count(),
        )
    });
    let body = html! {
        h1 data-model=(model) { (model) }
        p.meta {
            (sum.get("predictions").and_then(Value::as_u64).unwrap_or(0)) " predictions, "
            (sum.get("labelled").and_then(Value::as_u64).unwrap_or(0)) " labelled · versions: "
            @if versions.is_empty() { "—" } @else { (versions.join(", ")) }
            " · last event " (ts(sum, "last_event"))
        }
        (pickers(params, &versions, extra))
        (span_line(span))
        nav.tabs {
            @for t in Tab::ALL {
                a class=(if t == tab { "active" } else { "" }) href=(format!("{base}{}{query}", t.path())) {
                    (t.title())
                    @if t == Tab::Alerts && open > 0 { " " span class=(if firing > 0 { "count firing" } else { "count pending" }) data-open-alerts=(open) { (open) } }
                }
            }
        }
        @if tab != Tab::Alerts { (alerts_banner(data, &format!("{base}/alerts{query}"))) }
        @match tab {
            Tab::Performance => {
                @if let Some(m) = &data.metrics { (performance_section(m, span)) }
                (alerts_section(data, PERFORMANCE_HISTORY, false))
            }
            Tab::Drift => (drift_section(data, Some(&format!("{base}/drift{}", params.query_with("feature", ""))), params.feature.as_deref())),
            Tab::Quality => (quality_section(data)),
            Tab::Segments => (segments_section(data)),
            Tab::Versions => (versions_section(data)),
            Tab::Alerts => (alerts_section(data, data::ALERT_HISTORY, true)),
        }
    };
    layout(&format!("{model} · {}", tab.title()), body)
}

/// One row of the overview.
struct Row {
    name: String,
    task: String,
    metric: &'static str,
    current: Option<f64>,
    baseline: Option<f64>,
    /// The latest window differs from the baseline significantly (the API's `changes`).
    significant: bool,
    drift: Result<Option<f64>, String>,
    predictions: u64,
    last_event: Option<Timestamp>,
    trend: Vec<(i64, Option<f64>)>,
}

/// Pending and firing alerts of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenAlerts {
    pub firing: usize,
    pub pending: usize,
}

/// Open alerts per model from `GET /v1/alerts`'s list.
pub fn open_alerts(alerts: &[Value]) -> std::collections::HashMap<String, OpenAlerts> {
    let mut out: std::collections::HashMap<String, OpenAlerts> = Default::default();
    for a in alerts {
        let e = out.entry(s(a, "model").to_string()).or_default();
        match s(a, "state") {
            "firing" => e.firing += 1,
            "pending" => e.pending += 1,
            _ => {}
        }
    }
    out
}

/// The models overview at `/`: each model's headline metric against its baseline, drift
/// share of the latest window, open alerts (pending and firing, from the alert source),
/// volume and last event.
pub fn overview(
    store: &dyn Store,
    params: &ViewParams,
    alerts: Option<&dyn AlertSource>,
) -> Result<String, DashError> {
    let open: Result<std::collections::HashMap<String, OpenAlerts>, String> = match alerts {
        Some(source) => source.all_alerts().map(|a| open_alerts(&a)),
        None => Err("no alert service here: GET /v1/alerts".into()),
    };
    let models = store.list_models()?;
    let mut rows = Vec::new();
    for m in &models {
        let Ok(name) = ModelName::new(&m.name) else {
            continue;
        };
        let parts = crate::Parts {
            metrics: true,
            ..Default::default()
        };
        let data = data::gather(store, &name, params, parts)?;
        let metrics = data.metrics.unwrap_or_default();
        let task = s(&metrics, "task").to_string();
        let metric_name = chart_metrics(&task)[0];
        let span = data.span.expect("gathered data has a span");
        // Drift of the latest window only: cheap, and what "now" means.
        let w = modelwatch_core::Window::parse(&span.window).expect("canonical window");
        let last = ViewParams {
            from: Some(Timestamp(span.to.0 - w.micros())),
            to: Some(span.to),
            ..params.clone()
        };
        let drift = data::gather(
            store,
            &name,
            &last,
            crate::Parts {
                drift: true,
                ..Default::default()
            },
        )?;
        let drift = match (&drift.drift, drift.unavailable.get("drift")) {
            (Some(d), _) => Ok(windows(d).last().and_then(|w| f(w, &["share_drifted"]))),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Ok(None),
        };
        rows.push(Row {
            current: latest_defined(&metrics, metric_name)
                .and_then(|w| metric(w, metric_name))
                .map(|x| x.0),
            baseline: metrics
                .get("baseline")
                .and_then(|b| metric(b, metric_name))
                .map(|x| x.0),
            predictions: windows(&metrics)
                .iter()
                .filter_map(|w| f(w, &["predictions"]))
                .sum::<f64>() as u64,
            trend: series(&metrics, |w| metric(w, metric_name).map(|x| x.0)),
            significant: latest_defined(&metrics, metric_name)
                .and_then(|w| {
                    w.get("changes")?
                        .get(metric_name)?
                        .get("significant")?
                        .as_bool()
                })
                .unwrap_or(false),
            name: m.name.clone(),
            task,
            metric: metric_name,
            drift,
            last_event: m.last_event,
        });
    }
    let query = params.query();
    let body = html! {
        h1 { "Models" }
        (pickers(params, &[], html! {}))
        @if rows.is_empty() {
            div.empty data-panel="no-models" {
                p { "No model has sent predictions yet." }
                p { "Try " code { "modelwatch demo" } " for a simulated model, or post predictions to " code { "/v1/models/{model}/predictions" } " (see docs/api.md)." }
            }
        } @else {
            table.models {
                tr { th { "model" } th { "task" } th.num { "headline metric (latest)" } th.num { "baseline" } th { "trend" } th.num { "drift share (latest window)" } th.num { "open alerts" } th.num { "predictions in range" } th { "last event" } }
                @for r in &rows {
                    tr data-model=(r.name) {
                        td { a href=(format!("/models/{}{query}", url_encode(&r.name))) { (r.name) } }
                        td { (r.task) }
                        td.num {
                            @match r.current {
                                Some(v) => {
                                    (r.metric) " " (format!("{v:.3}"))
                                    @if let Some(b) = r.baseline {
                                        @let worse = if matches!(r.metric, "mae" | "rmse" | "mape") { v > b } else { v < b };
                                        @let class = match (r.significant, worse) { (true, true) => "bad", (true, false) => "good", _ => "muted" };
                                        " " span class=(class) title=(if r.significant { "significant change from the baseline" } else { "within noise of the baseline" }) { (format!("{:+.3}", v - b)) }
                                    }
                                }
                                None => span.muted { (r.metric) " —" },
                            }
                        }
                        td.num { (r.baseline.map(|b| format!("{b:.3}")).unwrap_or("—".into())) }
                        td.spark { (inline_svg(charts::sparkline_svg(&r.trend, r.baseline, 160, 36))) }
                        td.num {
                            @match &r.drift {
                                Ok(Some(v)) => span class=(if *v > 0.0 { "bad" } else { "good" }) { (pct(*v)) },
                                Ok(None) => span.muted { "—" },
                                Err(why) => span.muted title=(why) { "no reference" },
                            }
                        }
                        td.num {
                            @match &open {
                                Ok(counts) => {
                                    @let c = counts.get(&r.name).copied().unwrap_or_default();
                                    @let n = c.firing + c.pending;
                                    @if n == 0 {
                                        span.muted data-open-alerts="0" title="no pending or firing alert" { "0" }
                                    } @else {
                                        a class=(if c.firing > 0 { "count firing" } else { "count pending" }) data-open-alerts=(n)
                                            href=(format!("/models/{}/alerts{query}", url_encode(&r.name)))
                                            title=(format!("{} firing, {} pending", c.firing, c.pending)) { (n) }
                                        div.s { (c.firing) " firing" @if c.pending > 0 { ", " (c.pending) " pending" } }
                                    }
                                }
                                Err(why) => span.muted title=(why) { "—" },
                            }
                        }
                        td.num { (r.predictions) }
                        td { (r.last_event.map(|t| t.to_rfc3339()).unwrap_or("—".into())) }
                    }
                }
            }
        }
    };
    Ok(layout("Models", body))
}

/// The login page of a server with API keys: a form that posts a read or admin key to
/// `/login`, which sets the session cookie and goes back to `next`.
pub fn login_page(next: &str, error: Option<&str>) -> String {
    layout(
        "Log in",
        html! {
            div.login {
                h1 { "Log in" }
                p.meta { "This modelwatch needs an API key. Enter a read or an admin key: the server checks it and keeps a session cookie (HttpOnly, SameSite=Lax) for 12 hours." }
                @if let Some(e) = error { p.bad data-login-error { (e) } }
                form.login method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "API key" input type="password" name="key" autocomplete="current-password" required autofocus; }
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_short() {
        assert_eq!(
            window_text("2026-11-25T15:00:00Z", "2026-11-25T16:00:00Z"),
            "2026-11-25 15:00 → 16:00 UTC"
        );
        assert_eq!(
            window_text("2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"),
            "2026-11-25 00:00 → 2026-11-26 00:00 UTC"
        );
        assert_eq!(
            when("2026-11-25T15:29:40.123456Z"),
            "2026-11-25 15:29:40 UTC"
        );
    }

    #[test]
    fn conditions_read_as_words() {
        let c = |v: Value| condition_text(&v);
        assert_eq!(
            c(serde_json::json!({"kind": "threshold", "op": "<", "value": 0.8})),
            "< 0.8"
        );
        assert_eq!(
            c(serde_json::json!({"kind": "baseline", "direction": "below", "relative": 0.1})),
            "more than 10 % below the baseline, significant"
        );
        assert_eq!(
            c(serde_json::json!({"kind": "freshness", "max_age": "10m"})),
            "nothing arrived for 10m"
        );
    }
}
