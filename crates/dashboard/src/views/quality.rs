//! The data-quality view.

use super::{f, latest_window, partial_note, pct, s, ts, windows};
use crate::data::{ModelData, MIN_ROWS};
use crate::layout::unavailable;
use maud::{html, Markup};
use serde_json::Value;

/// The data-quality section: the latest complete window's per-feature checks (a window with
/// fewer than `MIN_ROWS` events is "too few rows", never "ok") and flags over the range.
pub fn quality_section(data: &ModelData) -> Markup {
    let Some(q) = &data.quality else {
        return unavailable(data, "quality");
    };
    let ws = windows(q);
    let Some(last) = latest_window(ws) else {
        return html! { div.empty { "No events in this range." } };
    };
    let flagged = |feature: &str| {
        ws.iter()
            .filter(|w| {
                w.get("features")
                    .and_then(Value::as_array)
                    .and_then(|fs| fs.iter().find(|x| s(x, "feature") == feature))
                    .and_then(|x| x.get("flags").and_then(Value::as_array))
                    .is_some_and(|f| !f.is_empty())
            })
            .count()
    };
    let empty = Vec::new();
    let feats = last
        .get("features")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let unexpected = last
        .get("unexpected_features")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    html! {
        @let rows = f(last, &["rows"]).unwrap_or(0.0) as u64;
        @let few = rows < MIN_ROWS;
        h2 data-quality-window=(s(last, "start")) { "Data quality: the latest complete window, from " (ts(last, "start")) " (" (rows) " events)" (partial_note(last)) }
        @if few { p.meta.few data-panel="too-few-rows" { "Too few rows in this window (" (rows) ", under " (MIN_ROWS) ") to call a feature healthy: checks without a flag show grey." } }
        table.quality {
            tr { th { "feature" } th { "kind" } th.num { "null rate" } th.num { "reference" } th.num { "out of range" } th.num { "unseen categories" } th.num { "distinct (ref)" } th.num { "windows flagged" } th { "flags" } }
            @for x in feats {
                @let name = s(x, "feature");
                @let flags = x.get("flags").and_then(Value::as_array).cloned().unwrap_or_default();
                tr {
                    td { (name) }
                    td { (s(x, "kind")) }
                    td.num { (f(x, &["null_rate"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["reference_null_rate"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["out_of_range", "share"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["unseen_categories", "share"]).map(pct).unwrap_or("—".into())) }
                    td.num { (f(x, &["distinct"]).map(|v| v.to_string()).unwrap_or("—".into())) " (" (f(x, &["reference_distinct"]).map(|v| v.to_string()).unwrap_or("—".into())) ")" }
                    td.num { (flagged(name)) " / " (ws.len()) }
                    td { @if flags.is_empty() { @if few { span.few title=(format!("{rows} events: under {MIN_ROWS}, too few to call it healthy")) { "too few rows" } } @else { span.ok { "ok" } } } @for fl in &flags { span.flag { (fl.as_str().unwrap_or("")) } } }
                }
            }
        }
        @if !unexpected.is_empty() {
            h2 { "Features the reference does not have" }
            table { tr { th { "feature" } th.num { "events" } }
                @for u in unexpected { tr { td { (s(u, "feature")) } td.num { (f(u, &["rows"]).or(f(u, &["count"])).unwrap_or(0.0)) } } } }
        }
    }
}
