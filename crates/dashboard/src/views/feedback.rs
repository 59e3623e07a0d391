//! The feedback view: the diversity of the model's predictions per window against the
//! reference's (entropy, top class share, collapse) and the exploration traffic beside the
//! rest, from `GET /v1/models/{model}/feedback`.

use super::{line, partial_note, partial_starts, rule_thresholds, series};
use crate::charts::YScale;
use crate::data::{chart_metrics, metric, short, ModelData};
use crate::layout::{figure, unavailable, wide_figure};
use crate::views::span_chart;
use maud::{html, Markup};
use modelwatch_engine::feedback::Diversity;
use modelwatch_engine::performance::{Task, TaskReport};

/// Windows listed in the table, newest first.
const TABLE_ROWS: usize = 24;

/// The headline metric of an exploration entry's `metrics` (the task's first chart metric).
fn explore_metric(m: Option<&TaskReport>, task: Task) -> Option<f64> {
    metric(m?, chart_metrics(task)[0]).map(|x| x.0)
}

pub fn feedback_section(data: &ModelData) -> Markup {
    let Some(fb) = &data.feedback else {
        return unavailable(data, "feedback");
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let ws = &fb.windows;
    let reference = fb.reference.as_ref();
    let partial = partial_starts(ws);
    // A diversity measure per window against the reference's, with the rules watching it.
    let against_reference = |title: &str,
                             y: YScale,
                             name: &str,
                             color: usize,
                             read: fn(&Diversity) -> Option<f64>,
                             signal: &str| {
        let mut c = span_chart(span, title, y);
        c.lines
            .push(line(name, color, series(ws, |w| read(&w.diversity))));
        c.baseline = reference.and_then(|r| read(&r.diversity));
        c.baseline_label = "reference".into();
        c.partial = partial.clone();
        c.thresholds = rule_thresholds(data, &[signal]);
        c
    };
    let entropy = against_reference(
        "prediction entropy (bits)",
        YScale::FromZero,
        "entropy",
        3,
        |d| d.entropy_bits,
        "prediction_entropy",
    );
    let top = against_reference(
        "top class share",
        YScale::Unit,
        "top class share",
        1,
        |d| d.top_class_share,
        "top_class_share",
    );
    let mut explore = span_chart(span, "exploration traffic", YScale::Unit);
    explore.lines.push(line(
        "share of predictions",
        5,
        series(ws, |w| w.exploration.as_ref().map(|e| e.share)),
    ));
    explore.partial = partial;
    let task = data.metrics.as_ref().map_or_else(
        || {
            if ws.iter().any(|w| w.diversity.classes > 2) {
                Task::Multiclass
            } else {
                Task::Binary
            }
        },
        |m| m.spec.task,
    );
    let collapsed = ws.iter().filter(|w| w.collapsed).count();
    let any_exploration = ws.iter().any(|w| w.exploration.is_some());
    let t = &fb.thresholds;
    let min_predictions = t.min_predictions;
    let share = |v: Option<f64>| v.map(|v| format!("{:.1}%", v * 100.0));
    html! {
        h2 { "Feedback loops: prediction diversity and exploration" }
        p.meta data-panel="feedback" data-collapsed=(collapsed) data-windows=(ws.len()) {
            @match reference {
                Some(r) => { "Reference: " (r.diversity.classes) " classes, entropy "
                    (r.diversity.entropy_bits.map(short).unwrap_or("—".into())) " bits, top class "
                    b { (r.diversity.top_class.as_deref().unwrap_or_default()) } " at " (share(r.diversity.top_class_share).unwrap_or("—".into())) ". " }
                None => { "The reference has no predictions: no diversity baseline. " }
            }
            "A window has collapsed when it has at least " (min_predictions)
            " predictions, its entropy is " (format!("{:.0}%", t.entropy_drop * 100.0))
            " or more under the reference's and its top class's share "
            (short(t.top_class_rise)) " or more above. "
            b { (collapsed) } " of " (ws.len()) " windows collapsed. Exploration traffic: events tagged "
            code { (fb.exploration_tag) } "."
        }
        div.grid {
            (figure("entropy", &entropy, "entropy of the predicted classes per window; dashed: the reference's"))
            (figure("top_class_share", &top, "share of the most predicted class per window; dashed: the reference's"))
        }
        @if any_exploration {
            (wide_figure("exploration", &explore, "share of each window's predictions tagged as exploration"))
        } @else {
            div.empty data-panel="no-exploration" { "No prediction carries the tag " code { (fb.exploration_tag) } ": log exploration traffic with that tag to compare it with the rest." }
        }
        h2 { "Windows, newest first" }
        table.feedback {
            tr { th { "window" } th.num { "predictions" } th.num { "classes" } th.num { "entropy" } th.num { "change" }
                th { "top class" } th.num { "share" } th.num { "change" } th { "collapsed" }
                th.num { "exploration" } th.num { "its " (chart_metrics(task)[0]) } th.num { "the rest's" } }
            @for w in ws.iter().rev().take(TABLE_ROWS) {
                @let d = &w.diversity;
                @let n = d.predictions;
                @let e = w.exploration.as_ref();
                @let start = w.start.to_rfc3339();
                tr data-window=(start) data-partial=(w.partial) {
                    td { (super::when(&start)) (partial_note(w)) }
                    td.num { (n) }
                    td.num { (d.classes) }
                    td.num { (d.entropy_bits.map(short).unwrap_or("—".into())) }
                    td.num { (w.entropy_change.map(|v| format!("{:+.0}%", v * 100.0)).unwrap_or("—".into())) }
                    td { (d.top_class.as_deref().unwrap_or_default()) }
                    td.num { (share(d.top_class_share).unwrap_or("—".into())) }
                    td.num { (w.top_class_share_change.map(|v| format!("{:+.3}", v)).unwrap_or("—".into())) }
                    td {
                        @if w.collapsed { span.flag { "collapsed" } }
                        @else if n < min_predictions { span.few title="too few predictions for a verdict" { "too few rows" } }
                        @else { span.ok { "no" } }
                    }
                    td.num { @match e { Some(e) => { (e.predictions) " (" (share(Some(e.share)).unwrap_or_default()) ")" }, None => span.muted { "—" } } }
                    td.num { (explore_metric(e.map(|e| &e.metrics), task).map(short).unwrap_or("—".into())) }
                    td.num { (explore_metric(e.and_then(|e| e.others.as_ref()), task).map(short).unwrap_or("—".into())) }
                }
            }
        }
        @if ws.len() > TABLE_ROWS { p.meta { "The latest " (TABLE_ROWS) " windows of " (ws.len()) ": " code { "GET /v1/models/" (data.model) "/feedback" } " has them all." } }
    }
}
