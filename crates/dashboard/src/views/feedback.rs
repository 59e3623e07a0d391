//! The feedback view: the diversity of the model's predictions per window against the
//! reference's (entropy, top class share, collapse) and the exploration traffic beside the
//! rest, from `GET /v1/models/{model}/feedback`.

use super::{f, is_partial, line, partial_note, partial_starts, rule_thresholds, s, windows};
use crate::charts::YScale;
use crate::data::{metric, short, start_of, ModelData, MIN_ROWS};
use crate::layout::{figure, unavailable, wide_figure};
use crate::views::span_chart;
use maud::{html, Markup};
use serde_json::Value;

/// Windows listed in the table, newest first.
const TABLE_ROWS: usize = 24;

/// The headline metric of an exploration entry's `metrics` (the task's first chart metric).
fn explore_metric(m: Option<&Value>, task: &str) -> Option<f64> {
    let name = crate::data::chart_metrics(task)[0];
    metric(m?, name).map(|x| x.0)
}

pub fn feedback_section(data: &ModelData) -> Markup {
    let Some(fb) = &data.feedback else {
        return unavailable(data, "feedback");
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let ws = windows(fb);
    let reference = fb.get("reference").filter(|r| !r.is_null());
    let series = |get: &dyn Fn(&Value) -> Option<f64>| -> Vec<(i64, Option<f64>)> {
        ws.iter()
            .filter_map(|w| start_of(w).map(|t| (t.0, get(w))))
            .collect()
    };
    let partial = partial_starts(ws);
    // A diversity measure per window against the reference's, with the rules watching it.
    let against_reference =
        |title: &str, y: YScale, name: &str, color: usize, key: &str, signal: &str| {
            let mut c = span_chart(span, title, y);
            c.lines.push(line(name, color, series(&|w| f(w, &[key]))));
            c.baseline = reference.and_then(|r| f(r, &[key]));
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
        "entropy_bits",
        "prediction_entropy",
    );
    let top = against_reference(
        "top class share",
        YScale::Unit,
        "top class share",
        1,
        "top_class_share",
        "top_class_share",
    );
    let mut explore = span_chart(span, "exploration traffic", YScale::Unit);
    explore.lines.push(line(
        "share of predictions",
        5,
        series(&|w| f(w, &["exploration", "share"])),
    ));
    explore.partial = partial;
    let task = data
        .metrics
        .as_ref()
        .map(|m| s(m, "task").to_string())
        .unwrap_or_else(|| {
            if ws.iter().any(|w| f(w, &["classes"]).unwrap_or(0.0) > 2.0) {
                "multiclass".into()
            } else {
                "binary".into()
            }
        });
    let collapsed = ws
        .iter()
        .filter(|w| w.get("collapsed").and_then(Value::as_bool) == Some(true))
        .count();
    let any_exploration = ws
        .iter()
        .any(|w| w.get("exploration").is_some_and(|e| !e.is_null()));
    let t = fb.get("thresholds").unwrap_or(&Value::Null);
    let min_predictions = f(t, &["min_predictions"]).map_or(MIN_ROWS, |v| v as u64);
    html! {
        h2 { "Feedback loops: prediction diversity and exploration" }
        p.meta data-panel="feedback" data-collapsed=(collapsed) data-windows=(ws.len()) {
            @match reference {
                Some(r) => { "Reference: " (f(r, &["classes"]).unwrap_or(0.0) as u64) " classes, entropy "
                    (f(r, &["entropy_bits"]).map(short).unwrap_or("—".into())) " bits, top class "
                    b { (s(r, "top_class")) } " at " (f(r, &["top_class_share"]).map(|v| format!("{:.1}%", v * 100.0)).unwrap_or("—".into())) ". " }
                None => { "The reference has no predictions: no diversity baseline. " }
            }
            "A window has collapsed when it has at least " (min_predictions)
            " predictions, its entropy is " (f(t, &["entropy_drop"]).map(|v| format!("{:.0}%", v * 100.0)).unwrap_or("—".into()))
            " or more under the reference's and its top class's share "
            (f(t, &["top_class_rise"]).map(short).unwrap_or("—".into())) " or more above. "
            b { (collapsed) } " of " (ws.len()) " windows collapsed. Exploration traffic: events tagged "
            code { (s(fb, "exploration_tag")) } "."
        }
        div.grid {
            (figure("entropy", &entropy, "entropy of the predicted classes per window; dashed: the reference's"))
            (figure("top_class_share", &top, "share of the most predicted class per window; dashed: the reference's"))
        }
        @if any_exploration {
            (wide_figure("exploration", &explore, "share of each window's predictions tagged as exploration"))
        } @else {
            div.empty data-panel="no-exploration" { "No prediction carries the tag " code { (s(fb, "exploration_tag")) } ": log exploration traffic with that tag to compare it with the rest." }
        }
        h2 { "Windows, newest first" }
        table.feedback {
            tr { th { "window" } th.num { "predictions" } th.num { "classes" } th.num { "entropy" } th.num { "change" }
                th { "top class" } th.num { "share" } th.num { "change" } th { "collapsed" }
                th.num { "exploration" } th.num { "its " (crate::data::chart_metrics(&task)[0]) } th.num { "the rest's" } }
            @for w in ws.iter().rev().take(TABLE_ROWS) {
                @let n = f(w, &["predictions"]).unwrap_or(0.0) as u64;
                @let e = w.get("exploration").filter(|e| !e.is_null());
                tr data-window=(s(w, "start")) data-partial=(is_partial(w)) {
                    td { (super::when(s(w, "start"))) (partial_note(w)) }
                    td.num { (n) }
                    td.num { (f(w, &["classes"]).unwrap_or(0.0) as u64) }
                    td.num { (f(w, &["entropy_bits"]).map(short).unwrap_or("—".into())) }
                    td.num { (f(w, &["entropy_change"]).map(|v| format!("{:+.0}%", v * 100.0)).unwrap_or("—".into())) }
                    td { (s(w, "top_class")) }
                    td.num { (f(w, &["top_class_share"]).map(|v| format!("{:.1}%", v * 100.0)).unwrap_or("—".into())) }
                    td.num { (f(w, &["top_class_share_change"]).map(|v| format!("{:+.3}", v)).unwrap_or("—".into())) }
                    td {
                        @if w.get("collapsed").and_then(Value::as_bool) == Some(true) { span.flag { "collapsed" } }
                        @else if n < min_predictions { span.few title="too few predictions for a verdict" { "too few rows" } }
                        @else { span.ok { "no" } }
                    }
                    td.num { @match e { Some(e) => { (f(e, &["predictions"]).unwrap_or(0.0) as u64) " (" (f(e, &["share"]).map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_default()) ")" }, None => span.muted { "—" } } }
                    td.num { (explore_metric(e.and_then(|e| e.get("metrics")), &task).map(short).unwrap_or("—".into())) }
                    td.num { (explore_metric(e.and_then(|e| e.get("others")), &task).map(short).unwrap_or("—".into())) }
                }
            }
        }
        @if ws.len() > TABLE_ROWS { p.meta { "The latest " (TABLE_ROWS) " windows of " (ws.len()) ": " code { "GET /v1/models/" (data.model) "/feedback" } " has them all." } }
    }
}
