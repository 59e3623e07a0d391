//! One window in detail, on the performance view: its confusion matrix (binary or multiclass)
//! and its reliability (calibration) diagram. The window is the page's selected one
//! (`at=`), by default the last complete window with labels; a picker lists the others.

use super::{f, is_partial, partial_note, s, windows};
use crate::charts::{self, value_text, ReliabilityBin};
use crate::data::start_of;
use crate::layout::inline_svg;
use crate::params::ViewParams;
use maud::{html, Markup};
use modelwatch_core::Timestamp;
use serde_json::Value;

/// The selected window: the one holding `at`, else the last complete one with labels, else
/// the last with labels.
pub fn selected(m: &Value, at: Option<Timestamp>) -> Option<&Value> {
    let ws = windows(m);
    if let Some(at) = at {
        let holds = |w: &&Value| {
            let end = w
                .get("end")
                .and_then(Value::as_str)
                .and_then(|e| modelwatch_core::parse_timestamp(e).ok());
            matches!((start_of(w), end), (Some(a), Some(b)) if a <= at && at < b)
        };
        if let Some(w) = ws.iter().find(holds) {
            return Some(w);
        }
    }
    let labelled = |w: &&Value| f(w, &["labelled"]).unwrap_or(0.0) > 0.0;
    ws.iter()
        .rev()
        .filter(labelled)
        .find(|w| !is_partial(w))
        .or_else(|| ws.iter().rev().find(labelled))
}

/// Window picker, confusion matrix and reliability diagram of the selected window.
pub fn window_section(m: &Value, params: &ViewParams, base: Option<&str>) -> Markup {
    let ws = windows(m);
    let task = s(m, "task");
    let chosen = selected(m, params.at);
    let chosen_start = chosen.map(|w| s(w, "start")).unwrap_or("");
    let with_labels: Vec<&Value> = ws
        .iter()
        .rev()
        .filter(|w| f(w, &["labelled"]).unwrap_or(0.0) > 0.0)
        .collect();
    html! {
        section.window-detail {
        h2 { "One window: confusion matrix and calibration" }
        @if let Some(base) = base {
            form.pickers.window-picker method="get" action=(base) {
                @for (k, v) in hidden_params(params) { input type="hidden" name=(k) value=(v); }
                label { "window"
                    select name="at" {
                        @for w in &with_labels {
                            option value=(s(w, "start")) selected[s(w, "start") == chosen_start] {
                                (charts::window_label(start_of(w).map_or(0, |t| t.0), window_micros(w)))
                                @if is_partial(w) { " (partial)" }
                                " · " (f(w, &["labelled"]).unwrap_or(0.0) as u64) " labelled"
                            }
                        }
                    }
                }
                button type="submit" { "Show" }
            }
        }
        @match chosen {
            None => div.empty data-panel="window-detail" { "No window with labels in this range: the confusion matrix and the calibration need labelled predictions." },
            Some(w) => {
                p.meta data-panel="window-detail" data-window=(chosen_start) {
                    "Window " b { (charts::window_label(start_of(w).map_or(0, |t| t.0), window_micros(w))) } (partial_note(w))
                    ": " (f(w, &["predictions"]).unwrap_or(0.0) as u64) " predictions, "
                    (f(w, &["labelled"]).unwrap_or(0.0) as u64) " labelled."
                }
                div.grid.top {
                    div.panel { (confusion(m, w, task)) }
                    (reliability(w, task))
                }
            }
        }
        }
    }
}

fn window_micros(w: &Value) -> i64 {
    let t = |k: &str| {
        w.get(k)
            .and_then(Value::as_str)
            .and_then(|e| modelwatch_core::parse_timestamp(e).ok())
    };
    match (t("start"), t("end")) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0,
    }
}

/// The view's parameters but `at`, as hidden fields of the window picker.
fn hidden_params(p: &ViewParams) -> Vec<(&'static str, String)> {
    let mut out = vec![("range", p.range_label.clone())];
    if !p.window_label.is_empty() {
        out.push(("window", p.window_label.clone()));
    }
    if let Some(t) = p.from {
        out.push(("from", t.to_rfc3339()));
    }
    if let Some(t) = p.to {
        out.push(("to", t.to_rfc3339()));
    }
    if let Some(v) = &p.version {
        out.push(("version", v.clone()));
    }
    out
}

/// A cell's background: white to blue by its share of the row (the true class).
fn shade(count: u64, row_total: u64, diagonal: bool) -> String {
    let share = if row_total == 0 {
        0.0
    } else {
        count as f64 / row_total as f64
    };
    let (r, g, b) = if diagonal {
        (22.0, 163.0, 74.0)
    } else {
        (220.0, 38.0, 38.0)
    };
    let mix = |c: f64| (255.0 - (255.0 - c) * share * 0.55) as u8;
    format!("background:rgb({},{},{})", mix(r), mix(g), mix(b))
}

/// The confusion matrix of a window: rows the true class, columns the predicted class, each
/// cell its count, its share of the row on hover.
fn confusion(m: &Value, w: &Value, task: &str) -> Markup {
    let (labels, counts): (Vec<String>, Vec<Vec<u64>>) = match task {
        "binary" => {
            let Some(c) = w.get("confusion_matrix") else {
                return html! { div.empty { "no confusion matrix in this window" } };
            };
            let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
            let pos = m
                .get("positive_class")
                .and_then(Value::as_str)
                .unwrap_or("positive");
            let neg = m
                .get("negative_class")
                .and_then(Value::as_str)
                .unwrap_or("negative");
            (
                vec![neg.to_string(), pos.to_string()],
                vec![vec![n("tn"), n("fp")], vec![n("fn"), n("tp")]],
            )
        }
        "multiclass" => {
            let c = w.get("confusion_matrix").unwrap_or(&Value::Null);
            let labels = c
                .get("labels")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            let counts = c
                .get("counts")
                .and_then(Value::as_array)
                .map(|rows| {
                    rows.iter()
                        .map(|r| {
                            r.as_array()
                                .map(|r| r.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            (labels, counts)
        }
        _ => {
            return html! { div.empty data-confusion="none" { "A regression model has no confusion matrix." } }
        }
    };
    if labels.is_empty() {
        return html! { div.empty data-confusion="none" { "No labelled prediction in this window." } };
    }
    let threshold = f(w, &["threshold"]).or(f(m, &["threshold"]));
    // The logged prediction decides unless the view asked for a what-if threshold.
    let by_threshold = [s(w, "decision"), s(m, "decision")].contains(&"threshold");
    html! {
        table.confusion data-confusion=(task) data-classes=(labels.len()) {
            tr { th { "true ↓ / predicted →" } @for l in &labels { th.num { (l) } } th.num { "total" } }
            @for (i, row) in counts.iter().enumerate() {
                @let total: u64 = row.iter().sum();
                tr data-true=(labels.get(i).map(String::as_str).unwrap_or("")) {
                    th { (labels.get(i).map(String::as_str).unwrap_or("")) }
                    @for (j, &c) in row.iter().enumerate() {
                        td.num style=(shade(c, total, i == j)) data-predicted=(labels.get(j).map(String::as_str).unwrap_or(""))
                            title=(format!("true {} predicted {}: {} of {} ({})",
                                labels.get(i).map(String::as_str).unwrap_or(""),
                                labels.get(j).map(String::as_str).unwrap_or(""),
                                c, total,
                                if total == 0 { "—".to_string() } else { format!("{:.1}%", 100.0 * c as f64 / total as f64) })) { (c) }
                    }
                    td.num.muted { (total) }
                }
            }
        }
        p.legend {
            "Rows: the label; columns: the predicted class, as the metrics count it. Green: right, red: wrong, darker: a larger share of the row."
            @if task == "binary" { @if let Some(t) = threshold {
                @if by_threshold { " Decided by the score at the what-if threshold " (value_text(t)) ", not by the logged predictions." }
                @else { " The class each model logged; a row with a score and no prediction is decided by score ≥ " (value_text(t)) "." }
            } }
        }
    }
}

/// The reliability diagram of a binary window (`reliability` bins), or why there is none.
fn reliability(w: &Value, task: &str) -> Markup {
    if task != "binary" {
        return html! { div.empty data-reliability="none" { "Calibration is drawn for binary models with scores." } };
    }
    let bins: Vec<ReliabilityBin> = w
        .get("reliability")
        .and_then(Value::as_array)
        .map(|bins| {
            bins.iter()
                .filter_map(|b| {
                    Some(ReliabilityBin {
                        low: f(b, &["bin_low"])?,
                        high: f(b, &["bin_high"])?,
                        count: b.get("count")?.as_u64()?,
                        mean_predicted: f(b, &["mean_predicted"])?,
                        fraction_positive: f(b, &["fraction_positive"])?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if bins.is_empty() {
        return html! { div.empty data-reliability="none" { "No labelled prediction with a score in this window." } };
    }
    let ece = w
        .get("ece")
        .filter(|e| s(e, "status") == "defined")
        .and_then(|e| f(e, &["value"]));
    html! {
        figure.chart data-chart="reliability" data-bins=(bins.len()) {
            (inline_svg(charts::reliability_svg("calibration (reliability)", &bins, 560, 330)))
            figcaption { "share of positives against the mean score, per tenth of the score range; dot size: rows in the bin"
                @if let Some(e) = ece { " · expected calibration error " (value_text(e)) } }
        }
    }
}
