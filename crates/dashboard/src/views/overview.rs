//! The models overview at `/`.

use super::{f, is_partial, latest_defined, latest_window, pct, s, series, windows};
use crate::charts;
use crate::data::{self, chart_metrics, metric, AlertSource, MIN_ROWS};
use crate::layout::{inline_svg, layout, pickers};
use crate::params::{url_encode, ViewParams};
use crate::DashError;
use maud::html;
use modelwatch_core::{ModelName, Timestamp};
use modelwatch_store::Store;
use serde_json::Value;

/// One row of the overview.
struct Row {
    name: String,
    task: String,
    metric: &'static str,
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
        let e = out.entry(s(a, "model").to_string()).or_default();
        match s(a, "state") {
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
        let metrics = data.metrics.unwrap_or_default();
        let task = s(&metrics, "task").to_string();
        let metric_name = chart_metrics(&task)[0];
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
            (Some(d), _) => Ok(latest_window(windows(d)).map(|w| DriftCell {
                share: f(w, &["share_drifted"]),
                rows: f(w, &["rows"]).unwrap_or(0.0) as u64,
                evaluated: f(w, &["evaluated_features"]).unwrap_or(0.0) as u64,
                partial: is_partial(w),
                start: s(w, "start").to_string(),
            })),
            (None, Some(why)) => Err(why.clone()),
            (None, None) => Ok(None),
        };
        rows.push(Row {
            window_micros: w.micros(),
            current_partial: latest_defined(&metrics, metric_name).is_some_and(is_partial),
            current: latest_defined(&metrics, metric_name)
                .and_then(|w| metric(w, metric_name))
                .map(|x| x.0),
            baseline: metrics
                .get("baseline")
                .and_then(|b| metric(b, metric_name))
                .map(|x| x.0),
            predictions: windows(&metrics)
                .iter()
                .filter_map(|w| f(w, &["predictions"]))
                .sum::<f64>() as u64,
            trend: series(&metrics, |w| metric(w, metric_name).map(|x| x.0)),
            significant: latest_defined(&metrics, metric_name)
                .and_then(|w| {
                    w.get("changes")?
                        .get(metric_name)?
                        .get("significant")?
                        .as_bool()
                })
                .unwrap_or(false),
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
                        td { (r.task) }
                        td.num {
                            @match r.current {
                                Some(v) => {
                                    (r.metric) " " (format!("{v:.3}"))
                                    @if let Some(b) = r.baseline {
                                        @let worse = if matches!(r.metric, "mae" | "rmse" | "mape") { v > b } else { v < b };
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
