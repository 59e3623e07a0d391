//! The sections of a model's views, one module each, and the helpers they share over the
//! engine's reports (and the alert endpoints' JSON).

pub mod alerts;
pub mod attributions;
pub mod changes;
pub mod concept;
pub mod drift;
pub mod fairness;
pub mod feedback;
pub mod jobs;
pub mod login;
pub mod outliers;
pub mod overview;
pub mod performance;
pub mod quality;
pub mod segments;
pub mod service_levels;
pub mod versions;
pub mod window;

use crate::charts::{Line, Threshold, TimeChart, YScale, PALETTE};
use crate::data::{metric, short, ModelData, Span};
use maud::{html, Markup};
use modelwatch_core::Timestamp;
use modelwatch_engine::drift::{WindowDrift, WindowQuality};
use modelwatch_engine::feedback::FeedbackWindow;
use modelwatch_engine::performance::{PerformanceReport, TaskReport, WindowReport};
use modelwatch_stats::perf::{Metric, MetricName};
use serde_json::Value;

/// A window of one of the engine's reports: when it starts and whether it is still filling.
pub(crate) trait ReportWindow {
    fn start(&self) -> Timestamp;
    fn partial(&self) -> bool;
}

macro_rules! report_window {
    ($($t:ty),+) => {$(
        impl ReportWindow for $t {
            fn start(&self) -> Timestamp {
                self.start
            }
            fn partial(&self) -> bool {
                self.partial
            }
        }
    )+};
}
report_window!(
    WindowReport,
    WindowDrift,
    WindowQuality,
    FeedbackWindow,
    modelwatch_engine::fairness::FairnessWindow,
    modelwatch_engine::attribution::AttributionWindow,
    modelwatch_engine::multivariate::MultivariateWindow,
    modelwatch_engine::domain::DomainWindow,
    modelwatch_engine::service_levels::ServiceLevelWindow,
    modelwatch_engine::outliers::OutlierWindow
);

/// The window "latest" values are read from: the last complete one; the last one (partial)
/// when none is complete.
pub(crate) fn latest_window<W: ReportWindow>(ws: &[W]) -> Option<&W> {
    ws.iter().rev().find(|w| !w.partial()).or(ws.last())
}

/// The starts of a report's partial windows, for the charts' grey ground.
pub(crate) fn partial_starts<W: ReportWindow>(ws: &[W]) -> Vec<i64> {
    ws.iter()
        .filter(|w| w.partial())
        .map(|w| w.start().0)
        .collect()
}

/// ` (partial)` after a window's time when it is still filling.
pub(crate) fn partial_note(w: &impl ReportWindow) -> Markup {
    html! {
        @if w.partial() {
            " " span.badge.partial title="this window is still filling: its end is after the latest event or after now" { "partial" }
        }
    }
}

/// A string field of the alert endpoints' JSON (alerts, rules, history, jobs), `""` when absent.
pub(crate) fn json_text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A number field of the alert endpoints' JSON.
pub(crate) fn json_number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// The thresholds of the model's rules on `signals` (threshold and rolling-mean rules), as
/// dashed lines for the chart that draws them.
pub(crate) fn rule_thresholds(data: &ModelData, signals: &[&str]) -> Vec<Threshold> {
    let Some(a) = &data.alerts else {
        return Vec::new();
    };
    a.rules
        .iter()
        .filter(|r| signals.contains(&json_text(r, "signal")))
        .filter_map(|r| {
            let c = r.get("condition")?;
            if !matches!(json_text(c, "kind"), "threshold" | "rolling_mean") {
                return None;
            }
            let value = json_number(c, "value")?;
            let signal = json_text(r, "signal");
            let on = if signals.len() > 1 {
                format!(" on {signal}")
            } else {
                String::new()
            };
            Some(Threshold {
                label: format!(
                    "rule {}{on}: {}",
                    json_text(r, "name"),
                    alerts::condition_text(c)
                ),
                value,
            })
        })
        .collect()
}

/// A timestamp for people, to the API's precision: `2026-11-25 15:13:52.5 UTC`.
pub(crate) fn utc(t: Timestamp) -> String {
    t.to_rfc3339().replace('T', " ").replace('Z', " UTC")
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The value of a metric with its interval, `—` when not defined.
pub(crate) fn metric_text(report: &TaskReport, name: MetricName) -> Markup {
    match metric(report, name) {
        Some((v, lo, hi)) => html! {
            span title=(format!("95% CI [{}, {}]", short(lo), short(hi))) { (format!("{v:.4}")) }
        },
        None => {
            let why = match report.metric(name) {
                Some(Metric::InsufficientSample { .. }) => "insufficient sample",
                _ => "undefined",
            };
            html! { span.muted title=(why) { "—" } }
        }
    }
}

/// Values of a series per window of a report.
pub(crate) fn series<W: ReportWindow>(
    ws: &[W],
    get: impl Fn(&W) -> Option<f64>,
) -> Vec<(i64, Option<f64>)> {
    ws.iter().map(|w| (w.start().0, get(w))).collect()
}

/// A metric per window of a performance report.
pub(crate) fn metric_series(m: &PerformanceReport, name: MetricName) -> Vec<(i64, Option<f64>)> {
    series(&m.windows, |w| metric(&w.metrics, name).map(|x| x.0))
}

pub(crate) fn span_chart(span: &Span, title: &str, y: YScale) -> TimeChart {
    let w = modelwatch_core::Window::parse(&span.window).expect("canonical window");
    TimeChart {
        title: title.to_string(),
        from: span.from.0,
        to: span.to.0,
        window_micros: w.micros(),
        y,
        lines: Vec::new(),
        bars: None,
        baseline: None,
        baseline_label: "baseline".into(),
        thresholds: Vec::new(),
        partial: Vec::new(),
    }
}

pub(crate) fn line(name: &str, color: usize, points: Vec<(i64, Option<f64>)>) -> Line {
    Line {
        name: name.to_string(),
        color: PALETTE[color % PALETTE.len()],
        points,
        band: Vec::new(),
        band_label: None,
    }
}

/// The last complete window where the metric is defined, else the last (partial) one where
/// it is.
pub(crate) fn latest_defined(m: &PerformanceReport, name: MetricName) -> Option<&WindowReport> {
    let defined = |w: &&WindowReport| metric(&w.metrics, name).is_some();
    let ws = &m.windows;
    ws.iter()
        .rev()
        .filter(defined)
        .find(|w| !w.partial)
        .or_else(|| ws.iter().rev().find(defined))
}

/// A timestamp of the API's JSON for people: `2026-11-25 15:13:52 UTC`, without fractions.
pub(crate) fn when(t: &str) -> String {
    if t.is_empty() {
        return "—".into();
    }
    let t = t.trim_end_matches('Z');
    let t = t.split('.').next().unwrap_or(t);
    format!("{} UTC", t.replace('T', " "))
}

/// An evaluated window for people: `2026-11-25 15:00 → 16:00 UTC`, the end's date only when it
/// differs, seconds only when not zero.
pub(crate) fn window_text(start: &str, end: &str) -> String {
    let short = |t: &str| {
        let w = when(t);
        let w = w.trim_end_matches(" UTC").to_string();
        w.strip_suffix(":00").map(str::to_string).unwrap_or(w)
    };
    let (a, b) = (short(start), short(end));
    let b = match (a.split_once(' '), b.split_once(' ')) {
        (Some((da, _)), Some((db, tb))) if da == db => tb.to_string(),
        _ => b,
    };
    format!("{a} → {b} UTC")
}

/// How long before `now` the timestamp `t` was: `3m`, `2h 5m`, `4d 1h`.
pub(crate) fn ago(t: &str, now: Timestamp) -> Option<String> {
    let t = modelwatch_core::parse_timestamp(t).ok()?;
    let secs = ((now.0 - t.0) / 1_000_000).max(0);
    Some(if secs >= 86_400 {
        format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600)
    } else if secs >= 3600 {
        format!("{}h {}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::alerts::condition_text;

    #[test]
    fn windows_read_short() {
        assert_eq!(
            window_text("2026-11-25T15:00:00Z", "2026-11-25T16:00:00Z"),
            "2026-11-25 15:00 → 16:00 UTC"
        );
        assert_eq!(
            window_text("2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"),
            "2026-11-25 00:00 → 2026-11-26 00:00 UTC"
        );
        assert_eq!(
            when("2026-11-25T15:29:40.123456Z"),
            "2026-11-25 15:29:40 UTC"
        );
    }

    #[test]
    fn conditions_read_as_words() {
        let c = |v: Value| condition_text(&v);
        assert_eq!(
            c(serde_json::json!({"kind": "threshold", "op": "<", "value": 0.8})),
            "< 0.8"
        );
        assert_eq!(
            c(serde_json::json!({"kind": "baseline", "direction": "below", "relative": 0.1})),
            "more than 10 % below the baseline, significant"
        );
        assert_eq!(
            c(serde_json::json!({"kind": "freshness", "max_age": "10m"})),
            "nothing arrived for 10m"
        );
    }
}
