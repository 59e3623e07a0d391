//! One window in detail, on the performance view: its confusion matrix (binary or multiclass)
//! and its reliability (calibration) diagram. The window is the page's selected one
//! (`at=`), by default the last complete window with labels; a picker lists the others.

use super::partial_note;
use crate::charts::{self, value_text, ReliabilityBin};
use crate::layout::inline_svg;
use crate::params::ViewParams;
use maud::{html, Markup};
use modelwatch_core::Timestamp;
use modelwatch_engine::performance::{PerformanceReport, Task, WindowReport};
use modelwatch_stats::perf::Decision;

/// The selected window: the one holding `at`, else the last complete one with labels, else
/// the last with labels.
pub fn selected(m: &PerformanceReport, at: Option<Timestamp>) -> Option<&WindowReport> {
    let ws = &m.windows;
    if let Some(at) = at {
        if let Some(w) = ws.iter().find(|w| w.start <= at && at < w.end) {
            return Some(w);
        }
    }
    let labelled = |w: &&WindowReport| w.labelled > 0;
    ws.iter()
        .rev()
        .filter(labelled)
        .find(|w| !w.partial)
        .or_else(|| ws.iter().rev().find(labelled))
}

/// Window picker, confusion matrix and reliability diagram of the selected window.
pub fn window_section(m: &PerformanceReport, params: &ViewParams, base: Option<&str>) -> Markup {
    let ws = &m.windows;
    let task = m.spec.task;
    let chosen = selected(m, params.at);
    let chosen_start = chosen.map(|w| w.start.to_rfc3339()).unwrap_or_default();
    let with_labels: Vec<&WindowReport> = ws.iter().rev().filter(|w| w.labelled > 0).collect();
    html! {
        section.window-detail {
        h2 { "One window: confusion matrix and calibration" }
        @if let Some(base) = base {
            form.pickers.window-picker method="get" action=(base) {
                @for (k, v) in hidden_params(params) { input type="hidden" name=(k) value=(v); }
                label { "window"
                    select name="at" {
                        @for w in &with_labels {
                            @let start = w.start.to_rfc3339();
                            option value=(start) selected[start == chosen_start] {
                                (charts::window_label(w.start.0, w.end.0 - w.start.0))
                                @if w.partial { " (partial)" }
                                " · " (w.labelled) " labelled"
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
                    "Window " b { (charts::window_label(w.start.0, w.end.0 - w.start.0)) } (partial_note(w))
                    ": " (w.predictions) " predictions, "
                    (w.labelled) " labelled."
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
fn confusion(m: &PerformanceReport, w: &WindowReport, task: Task) -> Markup {
    let binary = w.metrics.binary();
    let (labels, counts): (Vec<String>, Vec<Vec<u64>>) = match task {
        Task::Binary => {
            let Some(b) = binary else {
                return html! { div.empty { "no confusion matrix in this window" } };
            };
            let c = &b.confusion_matrix;
            let pos = m.spec.positive_class.as_deref().unwrap_or("positive");
            let neg = m.spec.negative_class.as_deref().unwrap_or("negative");
            (
                vec![neg.to_string(), pos.to_string()],
                vec![vec![c.tn, c.fp], vec![c.fn_, c.tp]],
            )
        }
        Task::Multiclass => w.metrics.multiclass().map_or_else(Default::default, |r| {
            (
                r.confusion_matrix.labels.clone(),
                r.confusion_matrix.counts.clone(),
            )
        }),
        Task::Regression => {
            return html! { div.empty data-confusion="none" { "A regression model has no confusion matrix." } }
        }
    };
    if labels.is_empty() {
        return html! { div.empty data-confusion="none" { "No labelled prediction in this window." } };
    }
    let threshold = binary.map_or(m.spec.threshold, |b| b.threshold);
    // The logged prediction decides unless the view asked for a what-if threshold.
    let by_threshold = binary.map(|b| b.decision) == Some(Decision::Threshold)
        || m.spec.decision == Decision::Threshold;
    html! {
        table.confusion data-confusion=(task.as_str()) data-classes=(labels.len()) {
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
            @if task == Task::Binary {
                @if by_threshold { " Decided by the score at the what-if threshold " (value_text(threshold)) ", not by the logged predictions." }
                @else { " The class each model logged; a row with a score and no prediction is decided by score ≥ " (value_text(threshold)) "." }
            }
        }
    }
}

/// The reliability diagram of a binary window (`reliability` bins), or why there is none.
fn reliability(w: &WindowReport, task: Task) -> Markup {
    let Some(b) = w.metrics.binary().filter(|_| task == Task::Binary) else {
        return html! { div.empty data-reliability="none" { "Calibration is drawn for binary models with scores." } };
    };
    let bins: Vec<ReliabilityBin> = b
        .reliability
        .iter()
        .map(|b| ReliabilityBin {
            low: b.bin_low,
            high: b.bin_high,
            count: b.count,
            mean_predicted: b.mean_predicted,
            fraction_positive: b.fraction_positive,
        })
        .collect();
    if bins.is_empty() {
        return html! { div.empty data-reliability="none" { "No labelled prediction with a score in this window." } };
    }
    let ece = b.ece.value();
    html! {
        figure.chart data-chart="reliability" data-bins=(bins.len()) {
            (inline_svg(charts::reliability_svg("calibration (reliability)", &bins, 560, 330)))
            figcaption { "share of positives against the mean score, per tenth of the score range; dot size: rows in the bin"
                @if let Some(e) = ece { " · expected calibration error " (value_text(e)) } }
        }
    }
}
