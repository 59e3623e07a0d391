//! The fairness view: per protected attribute, each group's selection rate over time side by
//! side with its interval, the disparate impact (demographic parity ratio) with its band and
//! the four-fifths line, the TPR and odds gaps, and the latest window's groups, from
//! `GET /v1/models/{model}/fairness`.

use super::{line, partial_note, partial_starts, rule_thresholds, series, span_chart};
use crate::charts::{Threshold, YScale};
use crate::data::{short, ModelData};
use crate::layout::{figure, unavailable, wide_figure};
use maud::{html, Markup};
use modelwatch_engine::fairness::{AttributeReport, FairnessWindow};
use modelwatch_stats::fairness::{FourFifths, Gap, FOUR_FIFTHS};
use modelwatch_stats::perf::Metric;

/// Groups drawn per attribute (most predictions over the span first); the table lists all.
const MAX_GROUPS_DRAWN: usize = 6;

fn band(m: &Metric) -> Option<(f64, f64)> {
    m.ci()
}

fn gap_series(ws: &[FairnessWindow], read: fn(&FairnessWindow) -> &Gap) -> crate::charts::Line {
    let mut l = line("", 0, series(ws, |w| read(w).value()));
    l.band = ws
        .iter()
        .map(|w| (w.start.0, band(&read(w).metric)))
        .collect();
    l
}

fn rate_text(m: &Metric) -> Markup {
    match m {
        Metric::Defined {
            value,
            ci_low,
            ci_high,
            n,
        } => html! {
            span title=(format!("95% CI [{}, {}], n = {n}", short(*ci_low), short(*ci_high))) { (format!("{value:.3}")) }
        },
        Metric::InsufficientSample { n, min } => html! {
            span.few title=(format!("{n} rows, under the minimum group size {min}")) { "too few rows" }
        },
        Metric::Undefined { reason } => html! { span.muted title=(reason) { "—" } },
    }
}

fn four_fifths(f: FourFifths) -> Markup {
    match f {
        FourFifths::Violated => html! { span.flag { "violated" } },
        FourFifths::Met => html! { span.ok { "met" } },
        FourFifths::NotEvaluated => html! { span.muted { "not evaluated" } },
    }
}

fn attribute_section(data: &ModelData, a: &AttributeReport, index: usize) -> Markup {
    let span = data.span.as_ref().expect("gathered data has a span");
    let ws = &a.windows;
    let partial = partial_starts(ws);
    // The groups with most predictions over the span, drawn side by side.
    let mut totals: std::collections::BTreeMap<&str, u64> = Default::default();
    for w in ws {
        for g in &w.groups {
            *totals.entry(g.group.as_str()).or_default() += g.counts.predictions;
        }
    }
    let mut drawn: Vec<(&str, u64)> = totals.into_iter().collect();
    drawn.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    drawn.truncate(MAX_GROUPS_DRAWN);
    drawn.sort_by(|x, y| x.0.cmp(y.0));
    let mut rates = span_chart(
        span,
        &format!("selection rate by {}", a.attribute),
        YScale::Unit,
    );
    for (i, (group, _)) in drawn.iter().enumerate() {
        let pick = |w: &FairnessWindow| {
            w.groups
                .iter()
                .find(|g| g.group == *group)
                .map(|g| g.selection_rate.clone())
        };
        let mut l = line(group, i, series(ws, |w| pick(w).and_then(|m| m.value())));
        l.band = ws
            .iter()
            .map(|w| (w.start.0, pick(w).as_ref().and_then(band)))
            .collect();
        rates.lines.push(l);
    }
    rates.partial = partial.clone();
    let signal = |m: &str| format!("fairness:{m}:{}", a.attribute);
    let mut ratio = span_chart(
        span,
        "disparate impact (lowest / highest selection rate)",
        YScale::Unit,
    );
    let mut l = gap_series(ws, |w| &w.measures.demographic_parity_ratio);
    l.name = "ratio".into();
    l.color = crate::charts::PALETTE[3];
    ratio.lines.push(l);
    ratio.thresholds.push(Threshold {
        label: "four-fifths rule: 0.8".into(),
        value: FOUR_FIFTHS,
    });
    ratio.thresholds.extend(rule_thresholds(
        data,
        &[&signal("demographic_parity_ratio")],
    ));
    ratio.partial = partial.clone();
    let mut gaps = span_chart(span, "gaps between groups", YScale::Unit);
    for (name, color, read) in [
        (
            "demographic parity difference",
            1usize,
            (|w: &FairnessWindow| &w.measures.demographic_parity_difference)
                as fn(&FairnessWindow) -> &Gap,
        ),
        ("equal opportunity difference (TPR)", 2, |w| {
            &w.measures.equal_opportunity_difference
        }),
        ("equalized odds difference", 4, |w| {
            &w.measures.equalized_odds_difference
        }),
    ] {
        let mut l = gap_series(ws, read);
        l.name = name.into();
        l.color = crate::charts::PALETTE[color];
        gaps.lines.push(l);
    }
    let gap_signals: Vec<String> = [
        "demographic_parity_difference",
        "equal_opportunity_difference",
        "equalized_odds_difference",
    ]
    .iter()
    .map(|m| signal(m))
    .collect();
    let gap_refs: Vec<&str> = gap_signals.iter().map(String::as_str).collect();
    gaps.thresholds = rule_thresholds(data, &gap_refs);
    gaps.partial = partial;
    let latest = ws.iter().rev().find(|w| !w.partial).or(ws.last());
    let violated = ws
        .iter()
        .filter(|w| w.measures.four_fifths_rule == FourFifths::Violated)
        .count();
    let id = |what: &str| format!("fairness-{index}-{what}");
    html! {
        h2 data-attribute=(a.attribute) { "Protected attribute " code { (a.attribute) } }
        p.meta data-panel="fairness" data-attribute=(a.attribute) data-violated=(violated) data-windows=(ws.len()) {
            "The four-fifths rule is violated in " b { (violated) } " of " (ws.len()) " windows."
            @if let Some(w) = latest {
                @let m = &w.measures;
                " Latest complete window: disparate impact "
                (m.demographic_parity_ratio.value().map(short).unwrap_or("—".into()))
                @if let Some([hi, lo]) = &m.demographic_parity_ratio.between { " (" b { (lo) } " against " b { (hi) } ")" }
                ", rule " (four_fifths(m.four_fifths_rule)) "."
            }
        }
        div.grid {
            (figure(&id("rates"), &rates, "share of each group's predictions with the favourable outcome; band: Wilson 95% interval"))
            (figure(&id("ratio"), &ratio, "lowest group's selection rate over the highest's; band: log-adjusted 95% interval; dashed: the four-fifths line and rules"))
        }
        (wide_figure(&id("gaps"), &gaps, "highest minus lowest group; bands: Newcombe 95% intervals; TPR and FPR from labelled predictions only"))
        @if let Some(w) = latest {
            h2 { "Groups in the window of " (super::when(&w.start.to_rfc3339())) (partial_note(w)) }
            table.fairness data-attribute=(a.attribute) {
                tr { th { "group" } th.num { "predictions" } th.num { "selection rate" } th.num { "labelled" }
                    th.num { "TPR" } th.num { "FPR" } th.num { "precision" } }
                @for g in &w.groups {
                    tr data-group=(g.group) {
                        td { (g.group) }
                        td.num { (g.counts.predictions) }
                        td.num { (rate_text(&g.selection_rate)) }
                        td.num { (g.labelled) }
                        td.num { (rate_text(&g.true_positive_rate)) }
                        td.num { (rate_text(&g.false_positive_rate)) }
                        td.num { (rate_text(&g.precision)) }
                    }
                }
            }
            @let left: Vec<&str> = w.measures.demographic_parity_difference.left_out.iter().map(String::as_str).collect();
            @if !left.is_empty() { p.meta { "Left out of the gaps (under the minimum group size): " (left.join(", ")) } }
        }
    }
}

pub fn fairness_section(data: &ModelData) -> Markup {
    let Some(f) = &data.fairness else {
        return unavailable(data, "fairness");
    };
    html! {
        p.meta data-panel="fairness-settings" {
            "Favourable outcome " code { (f.favourable) } "; groups with fewer than "
            (f.min_group_size) " rows behind a rate are left out of its gaps. "
            "Definitions as fairlearn's; " code { "GET /v1/models/" (data.model) "/fairness" } " has every window and version."
        }
        @for (i, a) in f.attributes.iter().enumerate() { (attribute_section(data, a, i)) }
    }
}
