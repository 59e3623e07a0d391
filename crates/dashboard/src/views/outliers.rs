//! Outlier rows on the data-quality view: the outlier rate per window against the share the
//! reference itself has above the threshold, the selected window's worst rows with the features
//! that made each unusual, and the clients flagged as possible boundary probing
//! (`GET .../outliers`).

use super::{latest_window, line, partial_note, partial_starts, pct, rule_thresholds, series};
use super::{span_chart, utc};
use crate::charts::{self, YScale};
use crate::data::ModelData;
use crate::layout::{unavailable, wide_figure};
use crate::params::ViewParams;
use maud::{html, Markup};

/// The section; `base` is the view's path, for the links choosing a window.
pub fn outliers_section(data: &ModelData, params: &ViewParams, base: Option<&str>) -> Markup {
    let Some(o) = &data.outliers else {
        return html! {
            h2 { "Outlier rows" }
            (unavailable(data, "outliers"))
        };
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let mut chart = span_chart(span, "outlier rate (HBOS)", YScale::Auto);
    chart.lines.push(line(
        "outlier rate",
        0,
        series(&o.windows, |w| w.outlier_rate),
    ));
    chart.baseline = Some(o.fit.contamination);
    chart.baseline_label = "reference rows above the threshold".into();
    chart
        .thresholds
        .extend(rule_thresholds(data, &["outlier_rate"]));
    chart.partial = partial_starts(&o.windows);
    let chosen = params
        .at
        .and_then(|at| o.windows.iter().find(|w| w.start <= at && at < w.end))
        .or_else(|| latest_window(&o.windows));
    let probing: u64 = o.windows.iter().map(|w| w.probing_flagged).sum();
    html! {
        section.outliers {
        h2 { "Outlier rows" }
        p.meta data-outlier-windows=(o.windows.len()) data-probing-flagged=(probing) {
            "Each prediction is scored against the reference's " (o.fit.features.len()) " features (HBOS: per-feature histograms of the reference; a row's score adds up how rare each of its values is). "
            "A row is an outlier above the score only " (pct(o.fit.contamination)) " of reference rows exceed; a window's rate far above that means rows unlike anything the model was trained on. "
            @if probing > 0 { strong { (probing) " client window(s) flagged as possible probing." } }
        }
        (wide_figure("outlier_rate", &chart, "dashed: the reference's own share above the threshold, and the rules on outlier_rate"))
        @if let Some(w) = chosen {
            h3 data-outliers-window=(w.start.to_rfc3339()) {
                "Worst rows of the window from " (utc(w.start)) (partial_note(w)) ": "
                (w.outliers) " outliers in " (w.rows) " rows"
                @if let Some(r) = w.outlier_rate { " (" (pct(r)) ")" }
            }
            @if let Some(base) = base {
                p.meta.window-links {
                    "Window: "
                    @for x in o.windows.iter().rev().take(8) {
                        @let start = x.start.to_rfc3339();
                        a href=(format!("{base}{}", params.query_with("at", &start))) class=(if x.start == w.start { "active" } else { "" }) {
                            (charts::window_label(x.start.0, x.end.0 - x.start.0))
                            @if let Some(r) = x.outlier_rate { " · " (pct(r)) }
                        }
                        " "
                    }
                }
            }
            @if w.worst.is_empty() {
                div.empty { "No rows in this window." }
            } @else {
                table.outliers data-panel="worst-rows" {
                    tr { th { "request" } th { "time" } th.num { "score" } th { "what made it unusual (bits over the feature's most common value)" } th { (o.probing_tag) } }
                    @for r in &w.worst {
                        tr class=(if r.outlier { "outlier" } else { "" }) {
                            td { (r.request_id) }
                            td { (utc(r.timestamp)) }
                            td.num { (format!("{:.2}", r.score)) @if r.outlier { " " span.flag { "outlier" } } }
                            td {
                                @for (i, f) in r.features.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    strong { (f.feature) } " = " (f.value) " (+" (format!("{:.1}", f.contribution)) ")"
                                }
                                @if r.features.is_empty() { "—" }
                            }
                            td { (r.tag.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
            @if !w.probing.is_empty() {
                table.probing data-panel="probing" {
                    tr { th { (o.probing_tag) } th.num { "scored rows" } th.num { "near the threshold" } th.num { "others near it" } th.num { "p-value" } th { "" } }
                    @for p in &w.probing {
                        tr {
                            td { (p.value) }
                            td.num { (p.test.rows) }
                            td.num { (pct(p.test.share)) }
                            td.num { (pct(p.test.expected_share)) }
                            td.num { (format!("{:.1e}", p.test.p_value)) }
                            td { @if p.test.flagged { span.flag { "possible probing" } } @else { span.ok { "ok" } } }
                        }
                    }
                }
                p.meta { "Near the threshold: a score within " (o.probing.margin) " of " (o.probing.threshold) ". Flagged when a client's share there is at least " (o.probing.min_ratio) " times the other rows' and a one-sided binomial test against their share is below " (o.probing.alpha) " divided by the clients tested (each with at least " (o.probing.min_rows) " scored rows)." }
            }
        }
    }
    }
}
