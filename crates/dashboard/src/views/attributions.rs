//! The attributions view: which features drive the model's predictions over time, beside the
//! reference's, from `GET /v1/models/{model}/attributions`: each feature's mean |attribution|
//! per window with the reference's level dashed, its share change against the reference with
//! the `attribution:<feature>` rules, and the latest window's ranking with the KS test of each
//! feature's attributions against the reference's.

use super::{line, partial_note, partial_starts, rule_thresholds, series, span_chart};
use crate::charts::{Threshold, YScale, PALETTE};
use crate::data::{short, ModelData};
use crate::layout::{figure, unavailable};
use maud::{html, Markup};
use modelwatch_engine::attribution::{AttributionWindow, FeatureAttribution};

/// Features drawn (largest mean |attribution| over the span first); the table lists all.
const MAX_FEATURES_DRAWN: usize = 6;

fn feature_of<'a>(w: &'a AttributionWindow, name: &str) -> Option<&'a FeatureAttribution> {
    w.features.iter().find(|f| f.feature == name)
}

fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", short(x))
    } else {
        short(x)
    }
}

pub fn attributions_section(data: &ModelData) -> Markup {
    let Some(a) = &data.attributions else {
        return unavailable(data, "attributions");
    };
    let span = data.span.as_ref().expect("gathered data has a span");
    let ws = &a.windows;
    if ws.is_empty() {
        return html! {
            div.empty data-unavailable="attributions" {
                "No prediction in this range carries attributions. Send them as "
                code { "\"explanations\": {\"amount\": 0.31, ...}" } " with each prediction (the Python SDK's "
                code { "Monitor.wrap(model, explain=True)" } " computes them), and as "
                code { "explanation.<feature>" } " columns of the reference."
            }
        };
    }
    // The features with the largest mean |attribution| over the span, in a stable order.
    let mut totals: std::collections::BTreeMap<&str, f64> = Default::default();
    for w in ws {
        for f in &w.features {
            *totals.entry(f.feature.as_str()).or_default() += f.mean_abs * f.count as f64;
        }
    }
    let mut drawn: Vec<(&str, f64)> = totals.into_iter().collect();
    drawn.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(y.0)));
    drawn.truncate(MAX_FEATURES_DRAWN);
    let partial = partial_starts(ws);
    let reference = a.reference.as_ref();

    let mut levels = span_chart(span, "mean |attribution| per feature", YScale::FromZero);
    let mut shares = span_chart(
        span,
        "share of mean |attribution|, change against the reference",
        YScale::Auto,
    );
    for (i, (name, _)) in drawn.iter().enumerate() {
        levels.lines.push(line(
            name,
            i,
            series(ws, |w| feature_of(w, name).map(|f| f.mean_abs)),
        ));
        if let Some(r) = reference.and_then(|r| r.features.iter().find(|f| f.feature == *name)) {
            levels.thresholds.push(Threshold {
                label: format!("reference {name}: {}", short(r.mean_abs)),
                value: r.mean_abs,
            });
        }
        let mut l = line(
            name,
            i,
            series(ws, |w| feature_of(w, name).and_then(|f| f.share_change)),
        );
        l.color = PALETTE[i % PALETTE.len()];
        shares.lines.push(l);
    }
    let signals: Vec<String> = drawn
        .iter()
        .map(|(n, _)| format!("attribution:{n}"))
        .collect();
    let refs: Vec<&str> = signals.iter().map(String::as_str).collect();
    shares.thresholds = rule_thresholds(data, &refs);
    shares.baseline = reference.map(|_| 0.0);
    shares.baseline_label = "as in the reference".into();
    levels.partial = partial.clone();
    shares.partial = partial;

    let latest = ws.iter().rev().find(|w| !w.partial).or(ws.last());
    let drifted = ws
        .iter()
        .filter(|w| {
            w.features
                .iter()
                .any(|f| f.drift.is_some_and(|d| d.drifted))
        })
        .count();
    html! {
        p.meta data-panel="attributions" data-windows=(ws.len()) data-drifted=(drifted) {
            @match reference {
                Some(r) => {
                    "Against the reference"
                    @if let Some(v) = &r.info.version { " of version " code { (v) } }
                    " (" (r.explained) " of its " (r.info.rows) " rows carry attributions): "
                    "the attributions of some feature moved in " b { (drifted) } " of " (ws.len()) " windows "
                    "(two-sample KS of the signed attributions, Benjamini-Hochberg over the reply, α = " (a.alpha) ")."
                }
                None => {
                    "The reference carries no attributions (upload it with "
                    code { "explanation.<feature>" } " columns): shares and ranks are shown without a comparison."
                }
            }
            " " code { "GET /v1/models/" (data.model) "/attributions" } " has every window and version."
        }
        div.grid {
            (figure("attributions-levels", &levels, "mean of |attribution| over the predictions that carry one; dashed: the reference's"))
            (figure("attributions-shares", &shares, "feature's share of the summed mean |attribution| minus the reference's (the rule signal attribution:<feature>); dashed: rules"))
        }
        @if let Some(w) = latest {
            h2 { "Features in the window of " (super::when(&w.start.to_rfc3339())) (partial_note(w)) }
            table.attributions data-window=(w.start.to_rfc3339()) {
                tr { th.num { "rank" } th { "feature" } th.num { "mean |attribution|" } th.num { "share" }
                    th.num { "reference rank" } th.num { "reference share" } th.num { "share change" }
                    th.num { "KS" } th.num { "adjusted p" } th { "" } }
                @for f in &w.features {
                    @let d = f.drift;
                    @let r = reference.and_then(|r| r.features.iter().find(|x| x.feature == f.feature));
                    tr data-feature=(f.feature) data-rank=(f.rank) data-drifted=(d.is_some_and(|d| d.drifted)) {
                        td.num { (f.rank) }
                        td { (f.feature) }
                        td.num title=(format!("{} predictions; mean {}", f.count, short(f.mean))) {
                            (short(f.mean_abs))
                            @if let Some(r) = r { span.muted { " (ref " (short(r.mean_abs)) ")" } }
                        }
                        td.num { (format!("{:.1} %", f.share * 100.0)) }
                        td.num { (f.reference_rank.map(|r| r.to_string()).unwrap_or("—".into())) }
                        td.num { (f.reference_share.map(|s| format!("{:.1} %", s * 100.0)).unwrap_or("—".into())) }
                        td.num { (f.share_change.map(signed).unwrap_or("—".into())) }
                        td.num { (d.map(|d| short(d.statistic)).unwrap_or("—".into())) }
                        td.num { (d.map(|d| short(d.p_value_adjusted)).unwrap_or("—".into())) }
                        td { @if d.is_some_and(|d| d.drifted) { span.flag { "moved" } } }
                    }
                }
            }
        }
        @if let Some(r) = reference {
            (reference_table(r))
        }
    }
}

/// The reference's ranking, for reading the table's reference columns at a glance.
fn reference_table(r: &modelwatch_engine::attribution::ReferenceAttributions) -> Markup {
    html! {
        h2 { "Reference" }
        table.attributions data-reference="" {
            tr { th.num { "rank" } th { "feature" } th.num { "mean |attribution|" } th.num { "share" } th.num { "rows" } }
            @for f in &r.features {
                tr data-feature=(f.feature) {
                    td.num { (f.rank) }
                    td { (f.feature) }
                    td.num { (short(f.mean_abs)) }
                    td.num { (format!("{:.1} %", f.share * 100.0)) }
                    td.num { (f.count) }
                }
            }
        }
    }
}
