//! The change summary under the performance view and in the report: per metric, the first
//! compared window → the last one and the baseline → the last one, with each change's test,
//! read from the metrics report's `summary` (`GET /v1/models/{model}/metrics`, built by
//! `modelwatch_engine::summary`) so that the table and the API cannot disagree.

use super::{s, when};
use crate::data::{chart_metrics, short};
use maud::{html, Markup};
use serde_json::Value;

/// A p-value in few characters: `0.012`, `3.1e-5`.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// The JSON of a number as the API writes it (for the `data-` attributes tests compare).
fn raw(v: &Value) -> String {
    if v.is_null() {
        String::new()
    } else {
        v.to_string()
    }
}

/// The change cells of one comparison (`first_to_last` or `baseline_to_last`, named on each
/// cell so that a reader of the page can tell the two apart): the change, its p-value,
/// whether it is significant.
fn change_cells(m: &Value, comparison: &str) -> Markup {
    let c = &m[comparison];
    match s(c, "status") {
        "compared" => {
            let delta = c.get("delta").and_then(Value::as_f64).unwrap_or(f64::NAN);
            let p = c.get("p_value").and_then(Value::as_f64).unwrap_or(f64::NAN);
            let significant = c.get("significant").and_then(Value::as_bool) == Some(true);
            let test = s(c, "test").replace('_', " ");
            html! {
                td.num data-comparison=(comparison) data-delta=(raw(&c["delta"])) {
                    // Bold, not red: whether a rise is bad depends on the metric (recall, latency).
                    @if significant { b { (signed(delta)) } } @else { (signed(delta)) }
                    @if let Some(r) = c.get("relative_delta").and_then(Value::as_f64) { div.s { (if r > 0.0 { "+" } else { "" }) (format!("{:.1} %", r * 100.0)) } }
                }
                td.num data-comparison=(comparison) data-p-value=(raw(&c["p_value"])) title=(test) {
                    (p_text(p))
                    @if significant { " " span.flag data-significant="true" title="p below the significance level: the change is unlikely to be chance" { "significant" } }
                }
            }
        }
        "" => html! {
            td.num data-comparison=(comparison) { span.muted { "—" } }
            td.num data-comparison=(comparison) { span.muted { "—" } }
        },
        _ => html! {
            td.num colspan="2" data-comparison=(comparison) { span.muted title=(s(c, "reason")) { "not comparable" } div.s { (s(c, "reason")) } }
        },
    }
}

fn signed(x: f64) -> String {
    format!("{}{}", if x > 0.0 { "+" } else { "" }, short(x))
}

fn value(v: &Value) -> Markup {
    match v.as_f64() {
        Some(x) => html! { (short(x)) },
        None => html! { span.muted { "—" } },
    }
}

/// The change summary of a metrics report as a compact table: the task's headline metrics
/// first, then the others by name.
pub fn changes_section(metrics: &Value) -> Markup {
    let summary = metrics.get("summary").unwrap_or(&Value::Null);
    let rows = summary.get("metrics").and_then(Value::as_object);
    let Some(rows) = rows.filter(|m| !m.is_empty()) else {
        return html! {
            h2 { "Changes" }
            div.empty data-panel="changes" data-empty="changes" {
                "No complete window with enough rows to compare yet: the change summary compares the first and the last complete window."
            }
        };
    };
    let headline = chart_metrics(s(metrics, "task"));
    let mut names: Vec<&String> = rows.keys().collect();
    names.sort_by_key(|n| {
        headline
            .iter()
            .position(|h| h == n)
            .unwrap_or(headline.len())
    });
    let window = |key: &str| {
        let w = summary.get(key).unwrap_or(&Value::Null);
        if w.is_null() {
            "—".to_string()
        } else {
            format!(
                "{} ({} predictions, {} labelled)",
                when(s(w, "start")),
                w["predictions"],
                w["labelled"]
            )
        }
    };
    html! {
        h2 { "Changes" }
        p.meta {
            "First window " b { (window("first_window")) } " → last window " b { (window("last_window")) }
            ", both complete, chosen by " (s(summary, "basis")) " rows; the baseline is the reference's value. "
            "Two-sided tests: " span.flag { "significant" } " marks a p-value under the significance level."
        }
        table.changes data-panel="changes" data-metrics=(names.len()) {
            tr { th { "metric" } th.num { "first" } th.num { "last" } th.num { "change" } th.num { "p-value" }
                 th.num { "baseline" } th.num { "last vs baseline" } th.num { "p-value" } }
            @for name in names {
                @let m = &rows[name.as_str()];
                tr data-metric=(name) data-first=(raw(&m["first"])) data-last=(raw(&m["last"])) data-baseline=(raw(&m["baseline"])) {
                    td { code { (name) } }
                    td.num { (value(&m["first"])) }
                    td.num { (value(&m["last"])) }
                    (change_cells(m, "first_to_last"))
                    td.num { (value(&m["baseline"])) }
                    (change_cells(m, "baseline_to_last"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_changes_are_marked_and_undefined_ones_say_why() {
        let m = serde_json::json!({"task": "binary", "summary": {"basis": "labelled",
            "first_window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "predictions": 10, "labelled": 10},
            "last_window": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-03T00:00:00Z", "predictions": 10, "labelled": 10},
            "metrics": {
                "recall": {"first": 0.9, "last": 0.5, "baseline": null,
                    "first_to_last": {"status": "compared", "baseline": 0.9, "window": 0.5, "delta": -0.4,
                        "relative_delta": -0.444, "p_value": 0.00001, "significant": true, "test": "two_proportion_z"},
                    "baseline_to_last": null},
                "accuracy": {"first": 0.8, "last": 0.79, "baseline": 0.81,
                    "first_to_last": {"status": "compared", "baseline": 0.8, "window": 0.79, "delta": -0.01,
                        "relative_delta": -0.0125, "p_value": 0.7, "significant": false, "test": "two_proportion_z"},
                    "baseline_to_last": {"status": "not_comparable", "reason": "window: insufficient sample"}}}}});
        let html = changes_section(&m).into_string();
        // The headline metric first.
        assert!(html.find("data-metric=\"accuracy\"") < html.find("data-metric=\"recall\""));
        let recall = html.split("data-metric=\"recall\"").nth(1).unwrap();
        assert!(recall.contains("data-significant=\"true\""), "{recall}");
        assert!(
            recall.contains("1.0e-5") && recall.contains("-0.4"),
            "{recall}"
        );
        let accuracy = html.split("data-metric=\"accuracy\"").nth(1).unwrap();
        let accuracy = accuracy.split("</tr>").next().unwrap();
        assert!(!accuracy.contains("data-significant"), "{accuracy}");
        assert!(accuracy.contains("0.700") && accuracy.contains("insufficient sample"));
        let empty = changes_section(&serde_json::json!({"summary": {"metrics": {}}})).into_string();
        assert!(empty.contains("data-empty=\"changes\""));
    }
}
