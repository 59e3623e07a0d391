//! The jobs view: the model's pipelines (training, scoring, label joins) that report
//! heartbeats, each with its latest run, latest success and what its heartbeat rules make of
//! it, from `GET /v1/models/{model}/heartbeats`.

use super::{ago, json_number, json_text, when};
use crate::data::ModelData;
use maud::{html, Markup};
use modelwatch_core::Timestamp;
use serde_json::Value;

fn status_badge(status: &str) -> Markup {
    let (class, text) = match status {
        "ok" => ("badge resolved", "ok"),
        "failed" => ("badge firing", "failed"),
        "late" => ("badge firing", "late"),
        "never" => ("badge pending", "never ran"),
        _ => ("badge other", "no rule"),
    };
    html! { span class=(class) data-job-status=(status) { (text) } }
}

pub fn jobs_section(data: &ModelData) -> Markup {
    let model = data.model.as_str();
    let Some(a) = &data.alerts else {
        let why = data.unavailable.get("alerts").cloned().unwrap_or_else(|| {
            "job status comes from the alert service: GET /v1/models/{model}/heartbeats".into()
        });
        return html! { h2 { "Jobs" } div.empty data-panel="jobs" data-unavailable="jobs" { (why) } };
    };
    let now = data.generated_at.unwrap_or_else(Timestamp::now);
    let example = format!(
        "curl -X POST http://HOST/v1/models/{model}/heartbeats -H 'Content-Type: application/json' -d '{{\"job\": \"retrain\", \"status\": \"success\"}}'"
    );
    let rule_example = format!(
        "{{\"name\": \"retrain-ran\", \"signal\": \"heartbeat:retrain\", \"condition\": {{\"kind\": \"heartbeat\", \"max_age\": \"1d\"}}, \"decision\": \"retrain\", \"severity\": \"warning\"}}  → POST /v1/models/{model}/rules"
    );
    html! {
        h2 { "Jobs (heartbeats)" }
        div data-panel="jobs" data-jobs=(a.jobs.len()) {
            @if a.jobs.is_empty() {
                div.empty data-empty="jobs" {
                    p { b { "No job has reported a run." } " A pipeline reports each run of a job (training, batch scoring, label joins) with:" }
                    pre { code { (example) } }
                    p { "and a rule fires when the latest run failed or no success came for too long:" }
                    pre { code { (rule_example) } }
                }
            } @else {
                table.jobs {
                    tr { th { "job" } th { "status" } th { "latest run" } th { "latest success" } th.num { "runs" } th.num { "failed" } th { "rules (max age)" } }
                    @for j in &a.jobs {
                        @let last = j.get("last_run").filter(|l| !l.is_null());
                        @let success = json_text(j, "last_success");
                        tr data-job=(json_text(j, "job")) {
                            td { b { (json_text(j, "job")) } }
                            td { (status_badge(json_text(j, "status"))) }
                            td {
                                @match last {
                                    Some(l) => {
                                        span class=(if json_text(l, "status") == "failed" { "bad" } else { "" }) { (json_text(l, "status")) }
                                        " " (when(json_text(l, "timestamp")))
                                        @if let Some(d) = ago(json_text(l, "timestamp"), now) { div.s { (d) " ago" } }
                                        @if !json_text(l, "message").is_empty() { div.s { (json_text(l, "message")) } }
                                    }
                                    None => span.muted { "never reported" },
                                }
                            }
                            td { @if success.is_empty() { span.muted { "—" } } @else { (when(success)) @if let Some(d) = ago(success, now) { div.s { (d) " ago" } } } }
                            td.num { (json_number(j, "runs").unwrap_or(0.0) as u64) }
                            td.num { (json_number(j, "failures").unwrap_or(0.0) as u64) }
                            td {
                                @let rules = j.get("rules").and_then(Value::as_object);
                                @match rules.filter(|r| !r.is_empty()) {
                                    Some(r) => { @for (name, age) in r { div { (name) " (" (age.as_str().unwrap_or("")) ")" } } }
                                    None => span.muted title="no heartbeat rule watches this job: nothing alerts when it stops" { "none" },
                                }
                            }
                        }
                    }
                }
                p.meta { "Status: " b { "failed" } " the latest run failed; " b { "late" } " no success within the shortest max age of its rules; "
                    b { "never ran" } " no successful run yet; " b { "no rule" } " nothing watches it." }
            }
        }
    }
}
