//! The models overview at `/`.

use super::{json_text, latest_defined, latest_window, metric_series, pct};
use crate::charts;
use crate::data::{self, chart_metrics, metric, AlertSource, MIN_ROWS};
use crate::layout::{inline_svg, layout, pickers};
use crate::params::{url_encode, ViewParams};
use crate::DashError;
use maud::html;
use modelwatch_core::{ModelName, Timestamp};
use modelwatch_engine::performance::Task;
use modelwatch_stats::perf::MetricName;
use modelwatch_store::Store;
use serde_json::Value;

/// One row of the overview.
struct Row {
    name: String,
    task: Option<Task>,
    metric: MetricName,
    current: Option<f64>,
    baseline: Option<f64>,
    /// The latest window differs from the baseline significantly (the API's `changes`).
    significant: bool,
    drift: Result<Option<DriftCell>, String>,
    predictions: u64,
    last_event: Option<Timestamp>,
    trend: Vec<(i64, Option<f64>)>,
    window_micros: i64,
    /// The headline's window is still filling (no complete window has the metric).
    current_partial: bool,
}

/// The drift share of the latest complete window.
struct DriftCell {
    share: Option<f64>,
    rows: u64,
    evaluated: u64,
    partial: bool,
    start: String,
}

/// Pending and firing alerts of one model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenAlerts {
    pub firing: usize,
    pub pending: usize,
}

/// Open alerts per model from `GET /v1/alerts`'s list.
pub fn open_alerts(alerts: &[Value]) -> std::collections::HashMap<String, OpenAlerts> {
    let mut out: std::collections::HashMap<String, OpenAlerts> = Default::default();
    for a in alerts {
        let e = out.entry(json_text(a, "model").to_string()).or_default();
        match json_text(a, "state") {
            "firing" => e.firing += 1,
            "pending" => e.pending += 1,
            _ => {}
        }
    }
    out
}

/// The models overview at `/`: each model's headline metric against its baseline, drift
/// share of the latest window, open alerts (pending and firing, from the alert source),
/// volume and last event.
pub fn overview(
    store: &dyn Store,
    params: &ViewParams,
    alerts: Option<&dyn AlertSource>,
) -> Result<String, DashError> {
    let open: Result<std::collections::HashMap<String, OpenAlerts>, String> = match alerts {
        Some(source) => source.all_alerts().map(|a| open_alerts(&a)),
        None => Err("no alert service here: GET /v1/alerts".into()),
    };
    let models = store.list_models()?;
    let mut rows = Vec::new();
    for m in &models {
        let Ok(name) = ModelName::new(&m.name) else {
            continue;
        };
        let parts = crate::Parts {
            metrics: true,
            ..Default::default()
        };
        let data = data::gather(store, &name, params, parts)?;
        let metrics = data.metrics;
        let task = metrics.as_ref().map(|m| m.spec.task);
        let metric_name = chart_metrics(task.unwrap_or(Task::Binary))[0];
        let span = data.span.expect("gathered data has a span");
        // Drift of the latest two windows only: cheap, and what "now" means: the last
        // complete one (the last is usually still filling).
        let w = modelwatch_core::Window::parse(&span.window).expect("canonical window");
        let last = ViewParams {
            from: Some(Timestamp((span.to.0 - 2 * w.micros()).max(span.from.0))),
            to: Some(span.to),
            window: Some(w),
            window_label: w.label(),
            ..params.clone()
        };
        let drift = data::gather(
            store,
            &name,
            &last,
            crate::Parts {
                drift: true,
                ..Default::default()
            },
        )?;
        let drift = match (&drift.drift, drift.unavailable.get("drift")) {
            (Some(d), _) => Ok(latest_window(&d.windows).map(|w| DriftCell {
                share: Some(w.share_drifted).filter(|x| x.is_finite()),
                rows: w.rows,
                evaluated: w.evaluated_features as u64,
                partial: w.partial,
                start: w.start.to_rfc3339(),
            })),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Ok(None),
        };
        let current = metrics
            .as_ref()
            .and_then(|m| latest_defined(m, metric_name));
        rows.push(Row {
            window_micros: w.micros(),
            current_partial: current.is_some_and(|w| w.partial),
            current: current
                .and_then(|w| metric(&w.metrics, metric_name))
                .map(|x| x.0),
            baseline: metrics
                .as_ref()
                .and_then(|m| metric(m.baseline.as_ref()?, metric_name))
                .map(|x| x.0),
            predictions: metrics
                .as_ref()
                .map_or(0, |m| m.windows.iter().map(|w| w.predictions).sum()),
            trend: metrics
                .as_ref()
                .map(|m| metric_series(m, metric_name))
                .unwrap_or_default(),
            significant: current
                .and_then(|w| w.changes.as_ref()?.change(metric_name))
                .is_some_and(|c| c.is_significant()),
            name: m.name.clone(),
            task,
            metric: metric_name,
            drift,
            last_event: m.last_event,
        });
    }
    let query = params.query();
    let body = html! {
        h1 { "Models" }
        (pickers(params, &[], html! {}))
        @if rows.is_empty() {
            div.empty data-panel="no-models" {
                p { "No model has sent predictions yet." }
                p { "Try " code { "modelwatch demo" } " for a simulated model, or post predictions to " code { "/v1/models/{model}/predictions" } " (see docs/api.md)." }
            }
        } @else {
            table.models {
                tr { th { "model" } th { "task" } th.num { "headline metric (latest complete window)" } th.num { "baseline" } th { "trend" } th.num { "drift share (latest complete window)" } th.num { "open alerts" } th.num { "predictions in range" } th { "last event" } }
                @for r in &rows {
                    tr data-model=(r.name) {
                        td { a href=(format!("/models/{}{query}", url_encode(&r.name))) { (r.name) } }
                        td { (r.task.map(Task::as_str).unwrap_or_default()) }
                        td.num {
                            @match r.current {
                                Some(v) => {
                                    (r.metric) " " (format!("{v:.3}"))
                                    @if let Some(b) = r.baseline {
                                        @let worse = if matches!(r.metric, MetricName::Mae | MetricName::Rmse | MetricName::Mape) { v > b } else { v < b };
                                        @let class = match (r.significant, worse) { (true, true) => "bad", (true, false) => "good", _ => "muted" };
                                        " " span class=(class) title=(if r.significant { "significant change from the baseline" } else { "within noise of the baseline" }) { (format!("{:+.3}", v - b)) }
                                    }
                                    @if r.current_partial { " " span.badge.partial title="no complete window has this metric yet: this one is still filling" { "partial" } }
                                }
                                None => span.muted { (r.metric) " —" },
                            }
                        }
                        td.num { (r.baseline.map(|b| format!("{b:.3}")).unwrap_or("—".into())) }
                        td.spark { (inline_svg(charts::sparkline_svg(&r.trend, r.baseline, r.window_micros, 160, 36))) }
                        td.num data-drift-window=(r.drift.as_ref().ok().and_then(|d| d.as_ref()).map(|d| d.start.as_str()).unwrap_or("")) {
                            @match &r.drift {
                                // Too few rows (or no feature tested): grey, never green.
                                Ok(Some(d)) if d.rows < MIN_ROWS || d.evaluated == 0 || d.share.is_none() => {
                                    span.few data-drift="too-few-rows" title=(format!("{} rows in the window from {}: under {MIN_ROWS}, or no feature could be tested", d.rows, d.start)) { "too few rows" }
                                }
                                Ok(Some(d)) => {
                                    @let v = d.share.unwrap_or(0.0);
                                    span class=(if v > 0.0 { "bad" } else { "good" }) data-drift=(v) title=(format!("window from {}: {} rows", d.start, d.rows)) { (pct(v)) }
                                    @if d.partial { " " span.badge.partial title="no complete window yet: this one is still filling" { "partial" } }
                                }
                                Ok(None) => span.muted { "—" },
                                Err(why) => span.muted title=(why) { "no reference" },
                            }
                        }
                        td.num {
                            @match &open {
                                Ok(counts) => {
                                    @let c = counts.get(&r.name).copied().unwrap_or_default();
                                    @let n = c.firing + c.pending;
                                    @if n == 0 {
                                        span.muted data-open-alerts="0" title="no pending or firing alert" { "0" }
                                    } @else {
                                        a class=(if c.firing > 0 { "count firing" } else { "count pending" }) data-open-alerts=(n)
                                            href=(format!("/models/{}/alerts{query}", url_encode(&r.name)))
                                            title=(format!("{} firing, {} pending", c.firing, c.pending)) { (n) }
                                        div.s { (c.firing) " firing" @if c.pending > 0 { ", " (c.pending) " pending" } }
                                    }
                                }
                                Err(why) => span.muted title=(why) { "—" },
                            }
                        }
                        td.num { (r.predictions) }
                        td { (r.last_event.map(|t| t.to_rfc3339()).unwrap_or("—".into())) }
                    }
                }
            }
        }
    };
    Ok(layout("Models", body))
}
