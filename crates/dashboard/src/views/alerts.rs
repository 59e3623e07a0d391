//! The alerts panel and banner.

use super::{ago, json_number, json_text, when, window_text};
use crate::data::{self, short, ModelData};
use crate::params::url_encode;
use maud::{html, Markup};
use modelwatch_core::Timestamp;
use serde_json::Value;

/// A rule's condition in a few words: `< 0.8`, `> 10 % below the baseline, significant`.
pub fn condition_text(c: &Value) -> String {
    let op = json_text(c, "op");
    let value = json_number(c, "value").map(short).unwrap_or_default();
    let windows = json_number(c, "windows").unwrap_or(0.0) as u64;
    let direction = json_text(c, "direction");
    match json_text(c, "kind") {
        "threshold" => format!("{op} {value}"),
        "rolling_mean" => format!("mean of {windows} windows {op} {value}"),
        "trend" => format!("slope over {windows} windows {op} {value} per window"),
        "baseline" => format!(
            "more than {} % {} the baseline{}",
            short(json_number(c, "relative").unwrap_or(0.0) * 100.0),
            direction,
            if c.get("require_significant").and_then(Value::as_bool) == Some(false) {
                ""
            } else {
                ", significant"
            }
        ),
        "significant_change" => format!("significant change ({direction})"),
        "anomaly" => format!(
            "more than {} sd from the mean of {windows} windows{}",
            json_number(c, "z").map(short).unwrap_or_default(),
            if direction.is_empty() || direction == "any" {
                String::new()
            } else {
                format!(" ({direction})")
            }
        ),
        "freshness" => format!("nothing arrived for {}", json_text(c, "max_age")),
        "heartbeat" => format!("no successful run for {}", json_text(c, "max_age")),
        other => other.to_string(),
    }
}

fn state_badge(state: &str) -> Markup {
    let class = match state {
        "firing" => "badge firing",
        "pending" => "badge pending",
        "resolved" => "badge resolved",
        _ => "badge other",
    };
    html! { span class=(class) { (state) } }
}

fn severity_badge(severity: &str) -> Markup {
    html! { span class=(format!("sev sev-{}", match severity { "critical" | "warning" | "info" => severity, _ => "other" })) { (severity) } }
}

/// Who acknowledged an open alert and what they said; on the alerts view (`with_form`), the
/// form that acknowledges it (or re-acknowledges it: a new owner takes over). The form posts
/// to `/models/{model}/alerts/{fingerprint}/ack`, a page route that calls the same service
/// method as `POST /v1/alerts/{fingerprint}/ack`, with an admin key's authority.
fn ack_cell(model: &str, x: &Value, with_form: bool) -> Markup {
    let ack = x.get("acknowledged").filter(|a| a.is_object());
    let action = format!(
        "/models/{}/alerts/{}/ack",
        url_encode(model),
        url_encode(json_text(x, "fingerprint"))
    );
    html! {
        @if let Some(a) = ack {
            div data-ack-owner=(json_text(a, "owner")) { span.badge.other { "acknowledged" } " by " b { (json_text(a, "owner")) } }
            @if !json_text(a, "comment").is_empty() { div.s data-ack-comment=(json_text(a, "comment")) { (json_text(a, "comment")) } }
            div.s { (when(json_text(a, "at"))) }
        }
        @if with_form {
            form.ack method="post" action=(action) {
                input type="text" name="owner" required maxlength="128" placeholder="owner" aria-label="owner";
                input type="text" name="comment" maxlength="4000" placeholder="comment" aria-label="comment";
                button type="submit" { @if ack.is_some() { "Re-acknowledge" } @else { "Acknowledge" } }
            }
        } @else if ack.is_none() {
            span.muted { "—" }
        }
    }
}

/// A firing performance alert's likely causes (`causes` of its JSON): the features most likely
/// behind the drop with why, and the segments where it is concentrated, worst first.
fn causes_block(x: &Value) -> Markup {
    let c = &x["causes"];
    let features: Vec<&Value> = c["features"]
        .as_array()
        .map(|v| v.iter().take(5).collect())
        .unwrap_or_default();
    let segments: Vec<&Value> = c["segments"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let notes: Vec<&str> = c["notes"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let metric = json_text(c, "metric");
    let importance = match json_text(c, "importance") {
        "attributions" => "mean |attribution|",
        "error_correlation" => "the correlation ratio of the error over each feature's values or reference quintile bins, on labelled rows",
        _ => "nothing (too few labelled rows)",
    };
    let number = |v: &Value, k: &str| json_number(v, k).map(short).unwrap_or("—".into());
    html! {
        div.causes data-causes=(json_text(x, "rule")) data-fingerprint=(json_text(x, "fingerprint")) {
            h3 { "Likely causes: " (json_text(x, "rule")) }
            p.meta { "Window " (window_text(json_text(c, "window_start"), json_text(c, "window_end")))
                ", " (c["sampled_rows"].as_u64().unwrap_or(0)) " of " (c["labelled_rows"].as_u64().unwrap_or(0)) " labelled rows looked at (at most " (c["sample_cap"].as_u64().unwrap_or(0)) "). "
                "Features ranked by their change (drift, null rate) × how much they matter: " (importance) "." }
            @if features.is_empty() { p.muted { "No feature to rank." } } @else {
                table.causes {
                    tr { th { "#" } th { "feature" } th.num { "score" } th { "why" } }
                    @for (i, f) in features.iter().enumerate() {
                        tr data-cause-feature=(json_text(f, "feature")) data-rank=(i + 1) {
                            td { (i + 1) }
                            td { b { (json_text(f, "feature")) } @if f["drifted"].as_bool() == Some(true) { " " span.badge.firing { "drifted" } } }
                            td.num { (number(f, "score")) }
                            td { (json_text(f, "reason")) }
                        }
                    }
                }
            }
            h3 { "Where " (metric) " dropped most" }
            @if segments.is_empty() { p.muted data-empty="segments" { "No segment of at least " (c["min_segment_rows"].as_u64().unwrap_or(0)) " rows is worse than the reference." } } @else {
                table.segments {
                    tr { th { "segment" } th.num { (metric) } th.num { "95% CI" } th.num { "rows" } th.num { "reference" } }
                    @for s in &segments {
                        @let ci = s.get("interval").filter(|i| i.is_object());
                        tr data-segment=(json_text(s, "segment")) {
                            td { b { (json_text(s, "segment")) } }
                            td.num { (number(s, "value")) }
                            td.num { @if let Some(i) = ci { (number(i, "low")) "–" (number(i, "high")) div.s { (json_text(i, "method")) } } @else { "—" } }
                            td.num { (s["rows"].as_u64().unwrap_or(0)) }
                            td.num { (number(s, "reference_value"))
                                @match s["reference_rows"].as_u64().unwrap_or(0) {
                                    0 => div.s { "not in the reference: against all of it" },
                                    r if s["reference_value"].is_null() => div.s { (r) " rows: against all of it" },
                                    r => div.s { (r) " rows" },
                                } }
                        }
                    }
                }
            }
            @for n in &notes { p.meta { (n) } }
        }
    }
}

/// The model's rules by name.
fn rules_by_name(a: &data::AlertsData) -> std::collections::HashMap<&str, &Value> {
    a.rules.iter().map(|r| (json_text(r, "name"), r)).collect()
}

/// Open alerts at the top of a model's page: what fires, and a link to the panel.
pub fn alerts_banner(data: &ModelData, alerts_href: &str) -> Markup {
    let Some(a) = &data.alerts else {
        return html! {};
    };
    let open: Vec<&Value> = a.open().collect();
    if open.is_empty() {
        return html! {};
    }
    let firing = open
        .iter()
        .filter(|x| json_text(x, "state") == "firing")
        .count();
    html! {
        div class=(if firing > 0 { "alertbar firing" } else { "alertbar pending" }) data-panel="alert-banner" data-open-alerts=(open.len()) {
            b { (firing) " firing, " (open.len() - firing) " pending" }
            @for x in &open {
                " · " (state_badge(json_text(x, "state"))) " " (json_text(x, "rule")) " → " (json_text(x, "decision"))
            }
            " · " a href=(alerts_href) { "alerts and their history" }
        }
    }
}

/// The alerts panel: the model's pending and firing alerts (rule, severity, decision, signal,
/// value against the rule's condition, window, since when), its latest transitions newest
/// first, and, with `show_rules`, the rules that watch it. Every string comes from the alert
/// endpoints' JSON and is escaped.
pub fn alerts_section(data: &ModelData, history_rows: usize, show_rules: bool) -> Markup {
    let model = data.model.as_str();
    let Some(a) = &data.alerts else {
        let why = data.unavailable.get("alerts").cloned().unwrap_or_else(|| {
            "alerts are not part of this page: GET /v1/alerts has them".to_string()
        });
        return html! {
            h2 { "Alerts" }
            div.empty data-panel="alerts" data-unavailable="alerts" { (why) }
        };
    };
    let now = data.generated_at.unwrap_or_else(Timestamp::now);
    let rules = rules_by_name(a);
    let open: Vec<&Value> = a.open().collect();
    let history = &a.history[..a.history.len().min(history_rows)];
    let example = format!(
        "curl -X POST http://HOST/v1/models/{model}/rules -H 'Authorization: Bearer ADMIN_KEY' -H 'Content-Type: application/json' -d '{{\"name\": \"accuracy-floor\", \"signal\": \"accuracy\", \"condition\": {{\"kind\": \"threshold\", \"op\": \"<\", \"value\": 0.8}}, \"decision\": \"retrain\", \"severity\": \"critical\", \"window\": \"1d\", \"for\": \"10m\"}}'"
    );
    html! {
        h2 { "Alerts" }
        div data-panel="alerts" data-open-alerts=(open.len()) data-rules=(a.rules.len()) {
            @if open.is_empty() {
                div.empty data-empty="alerts" {
                    @if a.rules.is_empty() {
                        p { b { "No alerts." } " No alert rule watches this model yet." }
                        p { "Add one with " code { "POST /v1/models/" (model) "/rules" } " (an admin key when keys are set), or as "
                            code { "[[models." (model) ".rules]]" } " in the config file (docs/api.md, docs/configuration.md):" }
                        pre { code { (example) } }
                    } @else {
                        p { b { "No alerts." } " " (a.rules.len()) " rule(s) watch this model; none is pending or firing. "
                            "More rules: " code { "POST /v1/models/" (model) "/rules" } "." }
                    }
                }
            } @else {
                table.alerts {
                    tr { th { "state" } th { "rule" } th { "severity" } th { "decision" } th { "signal" } th.num { "value" } th { "condition" } th { "window" } th { "since" } th { "acknowledged" } }
                    @for x in &open {
                        @let state = json_text(x, "state");
                        @let rule = rules.get(json_text(x, "rule")).copied();
                        @let since = if state == "firing" { json_text(x, "fired_at") } else { json_text(x, "active_at") };
                        tr data-alert-state=(state) data-rule=(json_text(x, "rule")) data-fingerprint=(json_text(x, "fingerprint")) {
                            td { (state_badge(state)) @if x.get("silenced").and_then(Value::as_bool) == Some(true) { " " span.badge.other title="an active silence matches: nothing is sent" { "silenced" } } }
                            td { b { (json_text(x, "rule")) }
                                @if let Some(d) = rule.map(|r| json_text(r, "description")).filter(|d| !d.is_empty()) { div.s { (d) } }
                                div.s { (json_text(x, "summary")) } }
                            td { (severity_badge(json_text(x, "severity"))) }
                            td { (json_text(x, "decision")) }
                            td { code { (json_text(x, "signal")) } }
                            td.num data-value=(x.get("value").map(|v| v.to_string()).unwrap_or_default()) {
                                (json_number(x, "value").map(short).unwrap_or("—".into()))
                                @if let Some(b) = json_number(x, "baseline") { div.s { "baseline " (short(b)) } }
                            }
                            td { @match rule { Some(r) => (condition_text(r.get("condition").unwrap_or(&Value::Null))), None => span.muted { "rule removed" } } }
                            td { @if let Some(r) = rule { (json_text(r, "window")) " " }
                                @if !json_text(x, "window_start").is_empty() { div.s { (window_text(json_text(x, "window_start"), json_text(x, "window_end"))) } }
                                @if let Some(n) = json_number(x, "n") { div.s { (n as u64) " rows" } } }
                            td { (when(since)) @if let Some(d) = ago(since, now) { div.s { (d) " ago" } }
                                @if state == "pending" { @if let Some(r) = rule { div.s { "fires once it has held for " (json_text(r, "for")) } } } }
                            td.ack { (ack_cell(model, x, show_rules && a.can_acknowledge)) }
                        }
                    }
                }
                @for x in open.iter().filter(|x| x.get("causes").is_some_and(Value::is_object)) {
                    (causes_block(x))
                }
                @if show_rules && !a.can_acknowledge {
                    p.meta data-ack-needs="admin" { "Acknowledging an alert needs an admin key: log out and log in with one." }
                }
            }
            h2 { "Alert history" }
            @if history.is_empty() {
                div.empty data-empty="alert-history" { "No transitions yet." }
            } @else {
                table.alert-history data-history=(history.len()) {
                    tr { th { "when" } th { "transition" } th { "rule" } th { "severity" } th { "decision" } th.num { "value" } th { "what was seen" } }
                    @for h in history {
                        @let x = h.get("alert").unwrap_or(&Value::Null);
                        tr data-transition=(json_text(h, "transition")) data-rule=(json_text(x, "rule")) {
                            td { (when(json_text(h, "at"))) }
                            td { (state_badge(json_text(h, "transition"))) }
                            td { (json_text(x, "rule")) }
                            td { (severity_badge(json_text(x, "severity"))) }
                            td { (json_text(x, "decision")) }
                            td.num { (json_number(x, "value").map(short).unwrap_or("—".into())) }
                            td { (json_text(x, "summary"))
                                @if json_text(h, "transition") == "acknowledged" { @if let Some(a) = x.get("acknowledged").filter(|a| a.is_object()) {
                                    div.s data-ack-owner=(json_text(a, "owner")) { "by " b { (json_text(a, "owner")) } @if !json_text(a, "comment").is_empty() { ": " (json_text(a, "comment")) } }
                                } } }
                        }
                    }
                }
                @if a.history.len() > history.len() { p.meta { "The latest " (history.len()) " transitions: the Alerts tab shows up to " (data::ALERT_HISTORY) ", " code { "GET /v1/alerts/history?model=" (model) } " all of them." } }
            }
            @if show_rules && !a.rules.is_empty() {
                h2 { "Rules" }
                table.rules {
                    tr { th { "rule" } th { "signal" } th { "condition" } th { "window" } th { "for" } th { "severity" } th { "decision" } th { "from" } }
                    @for r in &a.rules {
                        tr data-rule=(json_text(r, "name")) {
                            td { b { (json_text(r, "name")) } @if !json_text(r, "description").is_empty() { div.s { (json_text(r, "description")) } } }
                            td { code { (json_text(r, "signal")) } }
                            td { (condition_text(r.get("condition").unwrap_or(&Value::Null))) }
                            td { (json_text(r, "window")) @if !json_text(r, "version").is_empty() { ", version " (json_text(r, "version")) } }
                            td { (json_text(r, "for")) }
                            td { (severity_badge(json_text(r, "severity"))) }
                            td { (json_text(r, "decision")) }
                            td { (json_text(r, "origin")) }
                        }
                    }
                }
            }
        }
    }
}
