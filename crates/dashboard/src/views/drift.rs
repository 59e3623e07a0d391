//! The drift view: the features x windows heatmap, the share of drifted features, reference and current distributions.

use super::{
    f, is_partial, line, partial_starts, rule_thresholds, s, series, span_chart, ts, windows,
};
use crate::charts::{self, Overlay, YScale};
use crate::data::{self, short, start_of, ModelData};
use crate::layout::{inline_svg, unavailable, wide_figure};
use crate::params::url_encode;
use maud::{html, Markup};
use serde_json::Value;

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
    let labels: Vec<String> = ws.iter().map(window_text).collect();
    let partial: Vec<bool> = ws.iter().map(is_partial).collect();
    let first = ws.first().map(|w| ts(w, "start")).unwrap_or_default();
    let last = ws.last().map(|w| ts(w, "end")).unwrap_or_default();
    html! {
        div.heat data-heatmap-rows=(rows.len()) data-heatmap-columns=(ws.len()) {
            @if skip > 0 { p.muted { "latest " (HEATMAP_COLUMNS) " windows of " (skip + ws.len()) } }
            table {
                tr { th { "feature" } th colspan=(ws.len().max(1)) { (first) " → " (last) } }
                tr.axis {
                    th {}
                    @for (label, span, title) in date_axis(ws) {
                        th.axis colspan=(span) title=(title) { (label) }
                    }
                }
                @for (name, cells) in rows.iter().chain(out_rows.iter()) {
                    tr {
                        td.name title=(name) {
                            @match base {
                                Some(b) if !name.starts_with("output: ") => a href=(format!("{b}&feature={}#dist-{}", url_encode(name), url_encode(name))) { (name) },
                                _ => (name),
                            }
                        }
                        @for (i, c) in cells.iter().enumerate() {
                            @let when = labels.get(i).map(String::as_str).unwrap_or("");
                            @let part = partial.get(i).copied().unwrap_or(false);
                            @match c {
                                Some(fv) => td class=(if part { "partial" } else { "" }) style=(format!("background:{}", heat_color(fv)))
                                    data-p=(f(fv, &["p_value"]).map(|p| p.to_string()).unwrap_or_default())
                                    title=(cell_title(name, when, part, fv)) {}
                                None => td style="background:#f9fafb" title=(format!("{name} · {when} · no rows")) {}
                            }
                        }
                    }
                }
            }
            div.legend {
                i style="background:rgb(254,252,252);border:1px solid #e5e7eb" {} "no significant change (paler: smaller effect)"
                i style="background:#f87171" {} "significant, effect under its threshold"
                i style="background:#b91c1c" {} "drifted (significant and large enough)"
                i style="background:#e5e7eb" {} "not evaluated (too few rows, no data)"
                i.partial style="background:#e5e7eb" {} "partial window (still filling)"
                " · hover a cell for its window, p-value and effect"
            }
        }
    }
}

/// A drift window's time for people.
fn window_text(w: &Value) -> String {
    let start = start_of(w).map_or(0, |t| t.0);
    let end = w
        .get("end")
        .and_then(Value::as_str)
        .and_then(|e| modelwatch_core::parse_timestamp(e).ok())
        .map_or(start, |t| t.0);
    charts::window_label(start, end - start)
}

/// The hover text of a heatmap cell: the feature, the window, the test's p-values and the
/// effect against its threshold, or why it was not tested.
fn cell_title(name: &str, when: &str, partial: bool, fv: &Value) -> String {
    let status = fv
        .get("status")
        .map(|st| st.get("status").unwrap_or(st))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut t = format!("{name}\n{when}");
    if partial {
        t.push_str(" (partial: still filling)");
    }
    if status != "evaluated" {
        let min = fv.pointer("/status/min_rows").and_then(Value::as_u64);
        t.push_str(&format!("\nnot evaluated: {}", status.replace('_', " ")));
        if let Some(m) = min {
            t.push_str(&format!(" (fewer than {m} valid rows)"));
        }
        return t;
    }
    let p = |k: &str| f(fv, &[k]).map(p_text).unwrap_or("—".into());
    t.push_str(&format!(
        "\n{}: p = {}, adjusted p = {}",
        s(fv, "method"),
        p("p_value"),
        p("p_value_adjusted")
    ));
    t.push_str(&format!(
        "\n{} {} (threshold {})",
        s(fv, "effect_measure"),
        f(fv, &["effect_size"]).map(short).unwrap_or("—".into()),
        f(fv, &["threshold"]).map(short).unwrap_or("—".into())
    ));
    if fv.get("drifted").and_then(Value::as_bool) == Some(true) {
        t.push_str("\nDRIFTED");
    }
    t
}

/// A p-value: 3 significant digits, `< 1e-16` below the float's resolution.
fn p_text(p: f64) -> String {
    if p < 1e-16 {
        "< 1e-16".into()
    } else if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

/// The date axis of the heatmap: one label per day of hourly windows, per month of daily or
/// weekly ones, as (label, columns, title). Labels too wide for their columns stay in the title.
fn date_axis(ws: &[Value]) -> Vec<(String, usize, String)> {
    let mut out: Vec<(String, usize, String)> = Vec::new();
    let daily = ws.first().is_some_and(|w| {
        let t = window_text(w);
        !t.contains(':')
    });
    for w in ws {
        let start = s(w, "start");
        let key = if daily {
            start.get(..7).unwrap_or(start).to_string()
        } else {
            start.get(..10).unwrap_or(start).to_string()
        };
        match out.last_mut() {
            Some((k, n, _)) if *k == key => *n += 1,
            _ => out.push((key, 1, String::new())),
        }
    }
    out.into_iter()
        .map(|(key, n, _)| {
            let label = if daily {
                key.clone()
            } else {
                key.get(5..).unwrap_or(&key).to_string()
            };
            // A cell is 7 px wide; a label needs about 6 px per character.
            let fits = n * 7 >= label.chars().count() * 6 + 4;
            (if fits { label } else { String::new() }, n, key)
        })
        .collect()
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
    share.partial = partial_starts(windows(drift));
    share.thresholds = rule_thresholds(data, &["drift_share"]);
    let mut dists: Vec<&data::Distribution> = data.distributions.iter().collect();
    if let Some(sel) = selected {
        dists.sort_by_key(|d| d.feature != sel);
    }
    html! {
        h2 { "Drift: features × windows" }
        p.meta { "Against the reference (" (drift.get("reference").and_then(|r| r.get("rows")).and_then(Value::as_u64).unwrap_or(0)) " rows); p-values adjusted together (Benjamini-Hochberg), a feature drifts when significant and its effect reaches the threshold." }
        (heatmap(drift, base))
        (wide_figure("drift_share", &share, "dashed: the share of drifted features at which the whole dataset counts as drifted"))
        h2 { "Distributions: reference and the latest complete window" }
        @if dists.is_empty() { (unavailable(data, "distributions")) }
        div.grid {
            @for d in dists {
                @let o = Overlay { title: d.feature.clone(), bins: d.bins.clone(), reference: d.reference.clone(), current: d.current.clone() };
                figure.chart id=(format!("dist-{}", url_encode(&d.feature))) data-chart="distribution" data-feature=(d.feature) data-series="reference|current" {
                    (inline_svg(charts::overlay_svg(&o, 620)))
                    figcaption { (d.feature) " (" (d.kind) "): " (d.reference_rows) " reference values, " (d.current_rows) " in the window from " (d.window_start.to_rfc3339())
                        @if d.partial { " " span.badge.partial title="no complete window with enough rows: this one is still filling" { "partial" } } }
                }
            }
        }
    }
}
