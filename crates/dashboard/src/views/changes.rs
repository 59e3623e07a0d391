//! The change summary under the performance view and in the report: per metric, the first
//! compared window → the last one and the baseline → the last one, with each change's test,
//! read from the metrics report's `summary` (`GET /v1/models/{model}/metrics`, built by
//! `modelwatch_engine::summary`) so that the table and the API cannot disagree.

use super::when;
use crate::data::{chart_metrics, short};
use maud::{html, Markup};
use modelwatch_engine::performance::Task;
use modelwatch_engine::summary::{ChangeSummary, MetricChange, WindowRef};
use modelwatch_stats::perf::Change;

/// A p-value in few characters: `0.012`, `3.1e-5`.
fn p_text(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// A number as the API's JSON writes it (for the `data-` attributes tests compare); empty
/// for null.
fn raw(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .and_then(|x| serde_json::to_string(&x).ok())
        .unwrap_or_default()
}

/// The change cells of one comparison (`first_to_last` or `baseline_to_last`, named on each
/// cell so that a reader of the page can tell the two apart): the change, its p-value,
/// whether it is significant.
fn change_cells(c: Option<&Change>, comparison: &str) -> Markup {
    match c {
        Some(Change::Compared {
            delta,
            relative_delta,
            p_value,
            significant,
            test,
            ..
        }) => {
            let test = test.name().replace('_', " ");
            html! {
                td.num data-comparison=(comparison) data-delta=(raw(Some(*delta))) {
                    // Bold, not red: whether a rise is bad depends on the metric (recall, latency).
                    @if *significant { b { (signed(*delta)) } } @else { (signed(*delta)) }
                    @if let Some(r) = relative_delta { div.s { (if *r > 0.0 { "+" } else { "" }) (format!("{:.1} %", r * 100.0)) } }
                }
                td.num data-comparison=(comparison) data-p-value=(raw(Some(*p_value))) title=(test) {
                    (p_text(*p_value))
                    @if *significant { " " span.flag data-significant="true" title="p below the significance level: the change is unlikely to be chance" { "significant" } }
                }
            }
        }
        None => html! {
            td.num data-comparison=(comparison) { span.muted { "—" } }
            td.num data-comparison=(comparison) { span.muted { "—" } }
        },
        Some(Change::NotComparable { reason }) => html! {
            td.num colspan="2" data-comparison=(comparison) { span.muted title=(reason) { "not comparable" } div.s { (reason) } }
        },
    }
}

fn signed(x: f64) -> String {
    format!("{}{}", if x > 0.0 { "+" } else { "" }, short(x))
}

fn value(v: Option<f64>) -> Markup {
    match v.filter(|x| x.is_finite()) {
        Some(x) => html! { (short(x)) },
        None => html! { span.muted { "—" } },
    }
}

/// The change summary of a metrics report (its `summary`, of a model of this task) as a
/// compact table: the task's headline metrics first, then the others by name.
pub fn changes_section(summary: &ChangeSummary, task: Task) -> Markup {
    if summary.metrics.is_empty() {
        return html! {
            h2 { "Changes" }
            div.empty data-panel="changes" data-empty="changes" {
                "No complete window with enough rows to compare yet: the change summary compares the first and the last complete window."
            }
        };
    }
    let headline = chart_metrics(task);
    let mut names: Vec<(&String, &MetricChange)> = summary.metrics.iter().collect();
    names.sort_by_key(|(n, _)| {
        headline
            .iter()
            .position(|h| h.as_str() == n.as_str())
            .unwrap_or(headline.len())
    });
    let window = |w: Option<&WindowRef>| match w {
        None => "—".to_string(),
        Some(w) => format!(
            "{} ({} predictions, {} labelled)",
            when(&w.start.to_rfc3339()),
            w.predictions,
            w.labelled
        ),
    };
    html! {
        h2 { "Changes" }
        p.meta {
            "First window " b { (window(summary.first_window.as_ref())) } " → last window " b { (window(summary.last_window.as_ref())) }
            ", both complete, chosen by " (summary.basis) " rows; the baseline is the reference's value. "
            "Two-sided tests: " span.flag { "significant" } " marks a p-value under the significance level."
        }
        table.changes data-panel="changes" data-metrics=(names.len()) {
            tr { th { "metric" } th.num { "first" } th.num { "last" } th.num { "change" } th.num { "p-value" }
                 th.num { "baseline" } th.num { "last vs baseline" } th.num { "p-value" } }
            @for (name, m) in names {
                tr data-metric=(name) data-first=(raw(m.first)) data-last=(raw(m.last)) data-baseline=(raw(m.baseline)) {
                    td { code { (name) } }
                    td.num { (value(m.first)) }
                    td.num { (value(m.last)) }
                    (change_cells(m.first_to_last.as_ref(), "first_to_last"))
                    td.num { (value(m.baseline)) }
                    (change_cells(m.baseline_to_last.as_ref(), "baseline_to_last"))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelwatch_core::Timestamp;
    use modelwatch_stats::perf::Test;

    #[test]
    fn significant_changes_are_marked_and_undefined_ones_say_why() {
        let day = 86_400_000_000;
        let window = |start: i64| WindowRef {
            start: Timestamp(start),
            end: Timestamp(start + day),
            predictions: 10,
            labelled: 10,
        };
        let compared =
            |baseline: f64, window: f64, p_value: f64, significant: bool| Change::Compared {
                baseline,
                window,
                delta: window - baseline,
                relative_delta: Some((window - baseline) / baseline),
                p_value,
                significant,
                test: Test::TwoProportionZ,
            };
        let summary = ChangeSummary {
            basis: "labelled".into(),
            first_window: Some(window(1_767_225_600_000_000)),
            last_window: Some(window(1_767_225_600_000_000 + day)),
            metrics: [
                (
                    "recall".to_string(),
                    MetricChange {
                        first: Some(0.9),
                        last: Some(0.5),
                        baseline: None,
                        first_to_last: Some(compared(0.9, 0.5, 0.00001, true)),
                        baseline_to_last: None,
                    },
                ),
                (
                    "accuracy".to_string(),
                    MetricChange {
                        first: Some(0.8),
                        last: Some(0.79),
                        baseline: Some(0.81),
                        first_to_last: Some(compared(0.8, 0.79, 0.7, false)),
                        baseline_to_last: Some(Change::NotComparable {
                            reason: "window: insufficient sample".into(),
                        }),
                    },
                ),
            ]
            .into(),
        };
        let html = changes_section(&summary, Task::Binary).into_string();
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
        let empty = ChangeSummary {
            metrics: Default::default(),
            ..summary
        };
        assert!(changes_section(&empty, Task::Binary)
            .into_string()
            .contains("data-empty=\"changes\""));
    }
}
