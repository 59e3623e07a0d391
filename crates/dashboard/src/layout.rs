//! The frame of every page: the document, the error page, figures holding charts, the pickers
//! and the span line.

use crate::charts::{self, TimeChart};
use crate::css::CSS;
use crate::data::{ModelData, Span};
use crate::params::{ViewParams, RANGES, WINDOWS};
use maud::{html, Markup, PreEscaped, DOCTYPE};

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

/// The page of an error: what was wrong, and where to go. `status` and `title` are the
/// server's (its status and that status's name): this crate does not know statuses.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
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

pub(crate) fn unavailable(data: &ModelData, section: &str) -> Markup {
    let why = data
        .unavailable
        .get(section)
        .cloned()
        .unwrap_or_else(|| "nothing to show in this range".into());
    html! { div.empty data-unavailable=(section) { (why) } }
}
pub(crate) fn pickers(p: &ViewParams, versions: &[String], extra: Markup) -> Markup {
    html! {
        form.pickers method="get" {
            label { "range"
                select name="range" {
                    @for (v, label) in RANGES { option value=(v) selected[p.from.is_none() && p.range_label == v] { (label) } }
                }
            }
            label { "window"
                select name="window" {
                    option value="" selected[p.window_label.is_empty()] { "fit the range" }
                    @for v in WINDOWS { option value=(v) selected[p.window_label == v] { (v) } }
                    @if !p.window_label.is_empty() && !WINDOWS.contains(&p.window_label.as_str()) { option value=(p.window_label) selected { (p.window_label) } }
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

pub(crate) fn span_line(span: &Span) -> Markup {
    html! {
        p.meta data-span-from=(span.from.to_rfc3339()) data-span-to=(span.to.to_rfc3339()) {
            "From " b { (span.from.to_rfc3339()) } " to " b { (span.to.to_rfc3339()) } " in windows of " b { (span.window) }
            @if let Some(v) = &span.version { ", version " b { (v) } }
        }
    }
}
