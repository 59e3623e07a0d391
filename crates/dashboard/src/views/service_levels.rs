//! Cost and service levels on the model page: the cost per window (what the events carried and
//! what the model's rate priced), and the latency objective's compliance, burn rate and error
//! budget left, from `GET /v1/models/{model}/service-levels`.

use super::{latest_window, line, partial_starts, rule_thresholds, series, span_chart};
use crate::charts::{Threshold, YScale};
use crate::data::{short, ModelData};
use crate::layout::{figure, unavailable};
use maud::{html, Markup};
use modelwatch_engine::service_levels::ServiceLevelWindow;

fn money(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

pub fn service_levels_section(data: &ModelData) -> Markup {
    let Some(r) = &data.service_levels else {
        return html! { h2 { "Cost and service levels" } (unavailable(data, "service_levels")) };
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let ws = &r.windows;
    let partial = partial_starts(ws);
    let total_events: f64 = ws.iter().map(|w| w.cost.from_events).sum();
    let total_rate: f64 = ws.iter().filter_map(|w| w.cost.from_rate).sum();
    let without: u64 = ws.iter().map(|w| w.cost.without_cost).sum();
    let mut cost = span_chart(span, "cost per window", YScale::FromZero);
    cost.lines
        .push(line("total", 0, series(ws, |w| Some(w.cost.total))));
    cost.lines.push(line(
        "from the events",
        1,
        series(ws, |w| Some(w.cost.from_events)),
    ));
    if r.settings.cost_per_prediction.is_some() {
        cost.lines
            .push(line("from the rate", 2, series(ws, |w| w.cost.from_rate)));
    }
    cost.thresholds = rule_thresholds(data, &["cost"]);
    cost.partial = partial.clone();
    let rate_text = match r.settings.cost_per_prediction {
        Some(rate) => format!("priced at the model's rate of {} each", short(rate)),
        None => "in no total: the model sets no cost_per_prediction".to_owned(),
    };
    let latest = latest_window(ws);
    let slo_charts = r.settings.latency_slo.as_ref().map(|slo| {
        let obj = slo.objective;
        let slo_of = |w: &ServiceLevelWindow| w.slo.clone();
        let mut compliance = span_chart(span, "share of requests under the bound", YScale::Unit);
        compliance.lines.push(line(
            "compliance",
            0,
            series(ws, |w| slo_of(w).and_then(|s| s.compliance)),
        ));
        compliance.thresholds.push(Threshold {
            label: format!("objective: {obj}"),
            value: obj,
        });
        compliance.partial = partial.clone();
        let mut burn = span_chart(
            span,
            "burn rate (1: the budget lasts 30 days)",
            YScale::FromZero,
        );
        burn.lines.push(line(
            "burn rate",
            3,
            series(ws, |w| slo_of(w).and_then(|s| s.burn_rate)),
        ));
        burn.thresholds.push(Threshold {
            label: "1".into(),
            value: 1.0,
        });
        burn.thresholds
            .extend(rule_thresholds(data, &["slo_burn_rate"]));
        burn.partial = partial.clone();
        let mut budget = span_chart(span, "error budget left over 30 days", YScale::Auto);
        budget.lines.push(line(
            "budget left",
            2,
            series(ws, |w| slo_of(w).and_then(|s| s.budget_remaining)),
        ));
        budget.thresholds.push(Threshold {
            label: "spent".into(),
            value: 0.0,
        });
        budget
            .thresholds
            .extend(rule_thresholds(data, &["slo_budget_remaining"]));
        budget.partial = partial.clone();
        (compliance, burn, budget)
    });
    html! {
        section.service-levels {
        h2 { "Cost and service levels" }
        p.meta data-panel="cost" data-from-events=(total_events) data-from-rate=(total_rate) data-without-cost=(without) {
            "Cost over the span: " b { (money(total_events + total_rate)) } ", of which "
            (money(total_events)) " carried by the events and " (money(total_rate))
            " from the rate (" (without) " predictions without a cost, " (rate_text) ")."
        }
        @if let Some(slo) = &r.settings.latency_slo {
            @let obj = slo.objective;
            @let sw = latest.and_then(|w| w.slo.as_ref());
            p.meta data-panel="slo" data-objective=(obj) data-threshold-ms=(slo.threshold_ms)
                data-burn-rate=(sw.and_then(|s| s.burn_rate).map(|b| b.to_string()).unwrap_or_default())
                data-budget-remaining=(sw.and_then(|s| s.budget_remaining).map(|b| b.to_string()).unwrap_or_default()) {
                "Latency objective: " b { (format!("{}", obj * 100.0)) " % of requests under " (short(slo.threshold_ms)) " ms" } "."
                @if let Some(s) = sw {
                    " Latest complete window: "
                    b { (s.compliance.map(|c| format!("{:.2} %", c * 100.0)).unwrap_or("—".into())) } " under the bound, burn rate "
                    b class=(if s.burn_rate.is_some_and(|b| b > 1.0) { "flag" } else { "ok" }) { (s.burn_rate.map(short).unwrap_or("—".into())) }
                    "; error budget left over " (r.budget_days) " days: "
                    b class=(if s.budget_remaining.is_some_and(|b| b < 0.0) { "flag" } else { "ok" }) { (s.budget_remaining.map(|b| format!("{:.1} %", b * 100.0)).unwrap_or("—".into())) }
                    " (" (s.budget_slow) " slow of " (s.budget_requests) " requests)."
                }
            }
            @if let Some((compliance, burn, budget)) = &slo_charts {
            div.grid {
                (figure("slo-compliance", compliance, "requests with a latency within the bound, per window (the latency sketch: within 2% of the bound may count on either side)"))
                (figure("slo-burn", burn, "slow share over the share the objective allows (SRE workbook); dashed: 1 and the rules"))
                (figure("slo-budget", budget, "1 − slow / allowed slow over the 30 days ending at each window's end; below 0: overspent"))
                (figure("cost", &cost, "sum of the events' cost, and the rate times the predictions without one"))
            }
            }
        } @else {
            p.meta data-panel="slo" { "No latency objective: set " code { "latency_slo" } " with " code { "PUT /v1/models/" (data.model) "/service-levels/settings" } "." }
            div.grid {
                (figure("cost", &cost, "sum of the events' cost, and the rate times the predictions without one"))
            }
        }
        }
    }
}
