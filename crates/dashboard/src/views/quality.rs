//! The data-quality view.

use super::{latest_window, partial_note, pct, utc};
use crate::data::{ModelData, MIN_ROWS};
use crate::layout::unavailable;
use maud::{html, Markup};

/// The data-quality section: the latest complete window's per-feature checks (a window with
/// fewer than `MIN_ROWS` events is "too few rows", never "ok") and flags over the range.
pub fn quality_section(data: &ModelData) -> Markup {
    let Some(q) = &data.quality else {
        return unavailable(data, "quality");
    };
    let ws = &q.windows;
    let Some(last) = latest_window(ws) else {
        return html! { div.empty { "No events in this range." } };
    };
    let flagged = |feature: &str| {
        ws.iter()
            .filter(|w| {
                w.features
                    .iter()
                    .find(|x| x.feature == feature)
                    .is_some_and(|x| !x.flags.is_empty())
            })
            .count()
    };
    let feats = &last.features;
    let unexpected = &last.unexpected_features;
    html! {
        @let rows = last.rows;
        @let few = rows < MIN_ROWS;
        h2 data-quality-window=(last.start.to_rfc3339()) { "Data quality: the latest complete window, from " (utc(last.start)) " (" (rows) " events)" (partial_note(last)) }
        @if few { p.meta.few data-panel="too-few-rows" { "Too few rows in this window (" (rows) ", under " (MIN_ROWS) ") to call a feature healthy: checks without a flag show grey." } }
        table.quality {
            tr { th { "feature" } th { "kind" } th.num { "null rate" } th.num { "reference" } th.num { "out of range" } th.num { "unseen categories" } th.num { "distinct (ref)" } th.num { "windows flagged" } th { "flags" } }
            @for x in feats {
                @let name = x.feature.as_str();
                tr {
                    td { (name) }
                    td { (x.kind.name()) }
                    td.num { (pct(x.null_rate)) }
                    td.num { (pct(x.reference_null_rate)) }
                    td.num { (x.out_of_range.as_ref().map(|o| pct(o.share)).unwrap_or("—".into())) }
                    td.num { (x.unseen_categories.as_ref().map(|u| pct(u.share)).unwrap_or("—".into())) }
                    td.num { (x.distinct) " (" (x.reference_distinct) ")" }
                    td.num { (flagged(name)) " / " (ws.len()) }
                    td { @if x.flags.is_empty() { @if few { span.few title=(format!("{rows} events: under {MIN_ROWS}, too few to call it healthy")) { "too few rows" } } @else { span.ok { "ok" } } } @for fl in &x.flags { span.flag { (fl) } } }
                }
            }
        }
        @if !unexpected.is_empty() {
            h2 { "Features the reference does not have" }
            table { tr { th { "feature" } th.num { "events" } }
                @for u in unexpected { tr { td { (u.feature) } td.num { (u.rows) } } } }
        }
    }
}
