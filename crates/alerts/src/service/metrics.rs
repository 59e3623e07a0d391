//! The per-model values of `GET /metrics`: refreshed after each evaluation pass, written in
//! the Prometheus text exposition.

use super::AlertService;
use crate::exposition::Exposition;
use crate::lifecycle::State;
use crate::rule::OperationalSignal;
use crate::signals::operational;
use modelwatch_core::{ModelName, Timestamp, Window};
use modelwatch_engine::drift::{self as engine_drift, DriftQuery, QualityThresholds};
use modelwatch_engine::performance::{window_performance, PerformanceQuery};
use modelwatch_stats::drift::DriftConfig;
use modelwatch_stats::perf::{Histogram, Metric, MetricName};
use modelwatch_store::ModelSummary;

/// Latest per-model values for `/metrics`.
#[derive(Debug, Clone, Default)]
pub(super) struct ModelMetrics {
    /// (version, name, value)
    values: Vec<(String, &'static str, f64)>,
    /// (version, metric, value)
    performance: Vec<(String, String, f64)>,
    /// (version, metric, label-free estimate, ci_low, ci_high)
    estimated: Vec<(String, String, f64, f64, f64)>,
    /// (segment value, metric, value) of the model's configured segment, all versions
    segments: Vec<(String, &'static str, f64)>,
    /// (version, quantile, value) of the latest window
    latency: Vec<(String, &'static str, f64)>,
    /// (version, latency histogram since the first kept event)
    latency_histogram: Vec<(String, Histogram)>,
    /// (feature, drifted, statistic)
    drift: Vec<(String, f64, Option<f64>)>,
    share_drifted: Option<f64>,
    /// (feature, null rate)
    null_rate: Vec<(String, f64)>,
    quality_flags: Option<f64>,
    /// (protected attribute, measure, value) of the latest window, all versions
    fairness: Vec<(String, &'static str, f64)>,
    /// The latest window's cost and latency objective (`engine::service_levels`).
    service_levels: Option<modelwatch_engine::service_levels::ServiceLevelWindow>,
    slo: Option<modelwatch_engine::service_levels::LatencySlo>,
}

pub(super) const MAX_METRIC_VERSIONS: usize = 10;

impl AlertService {
    pub(super) fn refresh_metrics(&self, model: &str, summary: &ModelSummary) {
        let Ok(name) = ModelName::new(model) else {
            return;
        };
        let Some(last) = summary.last_event else {
            return;
        };
        let window = Window::parse(&self.config.metrics_window).unwrap_or(Window::HOUR);
        let from = Timestamp(window.start_of(last).0);
        let mut m = ModelMetrics::default();
        let mut versions: Vec<_> = summary.versions.iter().collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.last_event));
        // The latency histogram is cumulative since the first kept event (a counter for
        // Prometheus's rate() and histogram_quantile()), so it needs the whole history: one
        // query over every version, merged from the per-hour aggregates.
        let all = PerformanceQuery {
            window: Some(Window::WEEK),
            ..Default::default()
        };
        let mut histograms: std::collections::HashMap<String, Histogram> =
            window_performance(self.store.as_ref(), &name, &all)
                .map(|r| {
                    r.versions
                        .into_iter()
                        .map(|v| (v.version, v.latency_histogram_ms))
                        .collect()
                })
                .unwrap_or_default();
        for v in versions.into_iter().take(MAX_METRIC_VERSIONS) {
            let q = PerformanceQuery {
                window: Some(window),
                from: Some(from),
                version: Some(v.version.clone()).filter(|v| !v.is_empty()),
                ..Default::default()
            };
            let Ok(mut r) = window_performance(self.store.as_ref(), &name, &q) else {
                continue;
            };
            // The label-free estimates of the window (merged from the per-hour states, so
            // about as cheap as the realized metrics); without them the rest is still shown.
            if let Err(e) =
                modelwatch_engine::estimate::attach(self.store.as_ref(), &name, &q, &mut r)
            {
                tracing::warn!(model = %name, error = %e, "label-free estimates for /metrics");
            }
            let Some(w) = r.windows.last() else {
                continue;
            };
            let ver = v.version.clone();
            for (metric, e) in w.estimated.iter().flatten() {
                m.estimated
                    .push((ver.clone(), metric.clone(), e.value, e.ci_low, e.ci_high));
            }
            for metric in MetricName::ALL {
                if let Some(val) = w.metrics.metric(metric).and_then(Metric::value) {
                    m.performance
                        .push((ver.clone(), metric.as_str().to_owned(), val));
                }
            }
            // The window in progress counts too here: this is a gauge of "now".
            for signal in [
                OperationalSignal::Predictions,
                OperationalSignal::ErrorRate,
                OperationalSignal::LabelCoverage,
                OperationalSignal::AverageConfidence,
                OperationalSignal::PredictionEntropy,
                OperationalSignal::TopClassShare,
            ] {
                if let (Some(v), _) = operational(w, signal) {
                    m.values.push((ver.clone(), signal.as_str(), v));
                }
            }
            if let Some(h) = histograms.remove(&v.version) {
                m.latency_histogram.push((ver.clone(), h));
            }
            let latency = &w.operational.latency_ms;
            for (q, quantile) in [
                ("0.5", &latency.p50),
                ("0.95", &latency.p95),
                ("0.99", &latency.p99),
            ] {
                if let Some(v) = quantile.value() {
                    m.latency.push((ver.clone(), q, v));
                }
            }
        }
        if let Some(seg) = self.config.metrics_segments.get(model) {
            let q = PerformanceQuery {
                window: Some(window),
                from: Some(from),
                segment: Some(seg.clone()),
                ..Default::default()
            };
            if let Ok(r) = window_performance(self.store.as_ref(), &name, &q) {
                // The range is the latest window: each segment's totals are that window's.
                for s in r.segments.iter().flatten() {
                    for metric in MetricName::ALL {
                        if let Some(x) = s.metrics.metric(metric).and_then(Metric::value) {
                            m.segments.push((s.value.clone(), metric.as_str(), x));
                        }
                    }
                }
            }
        }
        let dq = DriftQuery {
            window,
            from: Some(from),
            to: None,
            version: None,
            segment: None,
        };
        if let Ok(d) = engine_drift::drift(self.store.as_ref(), &name, &dq, &DriftConfig::default())
        {
            if let Some(w) = d.windows.last() {
                m.share_drifted = Some(w.share_drifted);
                for f in &w.features {
                    m.drift.push((
                        f.feature.clone(),
                        if f.drifted { 1.0 } else { 0.0 },
                        f.statistic,
                    ));
                }
            }
        }
        if let Ok(q) = engine_drift::quality(
            self.store.as_ref(),
            &name,
            &dq,
            &QualityThresholds::default(),
        ) {
            if let Some(w) = q.windows.last() {
                m.quality_flags = Some(w.flags.len() as f64);
                for f in &w.features {
                    m.null_rate.push((f.feature.clone(), f.null_rate));
                }
            }
        }
        // Only for a model with a fairness setting (the others answer an error: nothing).
        let fq = modelwatch_engine::fairness::FairnessQuery {
            window,
            from: Some(from),
            to: None,
            version: None,
        };
        if let Ok(f) = modelwatch_engine::fairness::fairness(self.store.as_ref(), &name, &fq) {
            for a in &f.attributes {
                let Some(w) = a.windows.last() else { continue };
                for measure in modelwatch_stats::fairness::MEASURES {
                    if let Some(v) = w.measures.get(measure).and_then(|g| g.value()) {
                        m.fairness.push((a.attribute.clone(), measure, v));
                    }
                }
            }
        }
        let sq = modelwatch_engine::service_levels::ServiceLevelQuery {
            window,
            from: Some(from),
            to: None,
            version: None,
        };
        if window.micros() % Window::HOUR.micros() == 0 {
            if let Ok(r) =
                modelwatch_engine::service_levels::service_levels(self.store.as_ref(), &name, &sq)
            {
                m.slo = r.settings.latency_slo.clone();
                m.service_levels = r.windows.last().cloned();
            }
        }
        self.metrics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(model.to_owned(), m);
    }

    /// Writes every model's families (`export_model`), then the alert and notification ones.
    pub fn export(&self, e: &mut Exposition) {
        let now = self.now();
        let window = self.config.metrics_window.clone();
        // The per-model values come from the evaluation pass, which only the lease's holder
        // runs (ADR 020): a process that held it before would export stale ones.
        let fresh = self.lease.held_lately();
        for (model, m) in self
            .metrics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|_| fresh)
        {
            self.export_model(e, model, m, &window, now);
        }
        if let Ok(alerts) = self.db.alerts() {
            for a in alerts.iter().filter(|a| a.state != State::Resolved) {
                e.gauge(
                    "modelwatch_alert",
                    "1 for each pending or firing alert.",
                    &[
                        ("model", &a.model),
                        ("rule", &a.rule),
                        ("severity", &a.severity),
                        ("decision", &a.decision),
                        ("state", a.state.as_str()),
                    ],
                    1.0,
                );
            }
            e.gauge(
                "modelwatch_alerts_firing",
                "Firing alerts.",
                &[],
                alerts.iter().filter(|a| a.state == State::Firing).count() as f64,
            );
        }
        e.gauge(
            "modelwatch_alerts_evaluating",
            "1 while this process evaluates the alert rules and sends notifications: alerts.evaluate is on and it holds the cluster lease (always, on the embedded store).",
            &[],
            f64::from(u8::from(self.config.evaluate && self.lease.held_lately())),
        );
        if let Ok(counts) = self.db.outbox_counts() {
            for (notifier, undelivered, failing) in counts {
                e.gauge(
                    "modelwatch_notifications_undelivered",
                    "Notifications not delivered yet, by notifier.",
                    &[("notifier", &notifier)],
                    undelivered as f64,
                );
                e.gauge(
                    "modelwatch_notifications_failing",
                    "Undelivered notifications with at least one failed attempt.",
                    &[("notifier", &notifier)],
                    failing as f64,
                );
            }
        }
    }

    /// The latest window's cost, and the latency objective in the conventional SLO form:
    /// `modelwatch_slo_*` series labelled with the objective, and the objective as a series of
    /// its own (docs/api.md, "Cost and service levels").
    fn export_service_levels(
        &self,
        e: &mut Exposition,
        model: &str,
        m: &ModelMetrics,
        window: &str,
    ) {
        let Some(w) = &m.service_levels else {
            return;
        };
        e.gauge(
            "modelwatch_model_cost",
            "Cost of the latest window's predictions: the events' cost plus the model's rate for those without one, all versions.",
            &[("model", model), ("window", window)],
            w.cost.total,
        );
        let (Some(slo), Some(sw)) = (&m.slo, &w.slo) else {
            return;
        };
        let objective = slo.objective.to_string();
        let threshold = (slo.threshold_ms / 1000.0).to_string();
        let labels = [
            ("model", model),
            ("slo", "latency"),
            ("objective", objective.as_str()),
            ("threshold_seconds", threshold.as_str()),
        ];
        e.gauge(
            "modelwatch_slo_objective_ratio",
            "The latency objective: the share of requests that must answer within threshold_seconds.",
            &labels,
            slo.objective,
        );
        let with_window = [
            labels[0],
            labels[1],
            labels[2],
            labels[3],
            ("window", window),
        ];
        if let Some(c) = sw.compliance {
            e.gauge(
                "modelwatch_slo_compliance_ratio",
                "Share of the latest window's requests within the latency objective's bound.",
                &with_window,
                c,
            );
        }
        if let Some(b) = sw.burn_rate {
            e.gauge(
                "modelwatch_slo_burn_rate",
                "Error rate of the latest window over the rate the objective allows (1 spends the 30-day budget exactly).",
                &with_window,
                b,
            );
        }
        if let Some(b) = sw.budget_remaining {
            e.gauge(
                "modelwatch_slo_error_budget_remaining_ratio",
                "Share of the error budget left over the 30 days ending with the latest window (below 0: overspent).",
                &labels,
                b,
            );
        }
    }

    /// The families of one model: performance, label-free values, latency, drift, quality,
    /// freshness.
    fn export_model(
        &self,
        e: &mut Exposition,
        model: &str,
        m: &ModelMetrics,
        window: &str,
        now: Timestamp,
    ) {
        for (version, metric, v) in &m.performance {
            e.gauge(
                "modelwatch_model_performance",
                "Performance metric of the latest window with labels (scikit-learn names), by model and version.",
                &[("model", model), ("version", version), ("metric", metric), ("window", window)],
                *v,
            );
        }
        for (version, metric, v, lo, hi) in &m.estimated {
            let labels = [
                ("model", model),
                ("version", version),
                ("metric", metric.as_str()),
                ("window", window),
            ];
            for (family, help, x) in [
                ("modelwatch_model_estimated_performance", "Label-free estimate (CBPE, or DLE for regression) of a performance metric in the latest window, labelled or not, by model and version.", v),
                ("modelwatch_model_estimated_performance_ci_low", "Lower end of the label-free estimate's ± 3 sampling-error interval.", lo),
                ("modelwatch_model_estimated_performance_ci_high", "Upper end of the label-free estimate's ± 3 sampling-error interval.", hi),
            ] {
                e.gauge(family, help, &labels, *x);
            }
        }
        let segment = self.config.metrics_segments.get(model);
        for (value, metric, v) in &m.segments {
            e.gauge(
                "modelwatch_segment_performance",
                "Performance metric per value of the model's configured segment (the 10 largest values plus other) in the latest window, all versions.",
                &[
                    ("model", model),
                    ("segment", segment.map_or("", String::as_str)),
                    ("segment_value", value),
                    ("metric", metric),
                    ("window", window),
                ],
                *v,
            );
        }
        for (version, name, v) in &m.values {
            let family = format!("modelwatch_model_{name}");
            e.gauge(
                &family,
                "Label-free value of the latest window, by model and version.",
                &[("model", model), ("version", version), ("window", window)],
                *v,
            );
        }
        for (version, h) in &m.latency_histogram {
            // Seconds, Prometheus's base unit (promtool's lint): the engine's ms / 1000.
            const F: &str = "modelwatch_model_latency_seconds";
            e.family(
                F,
                "histogram",
                "Prediction latency since the first kept event (from the quantile sketch: a value within 2% of a bound may be counted on either side; _sum within 1%).",
            );
            for b in &h.buckets {
                let le = (b.le / 1000.0).to_string();
                e.sample(
                    F,
                    "modelwatch_model_latency_seconds_bucket",
                    &[("model", model), ("version", version), ("le", &le)],
                    b.count as f64,
                );
            }
            let labels: [(&str, &str); 2] = [("model", model), ("version", version)];
            e.sample(
                F,
                "modelwatch_model_latency_seconds_bucket",
                &[labels[0], labels[1], ("le", "+Inf")],
                h.count as f64,
            );
            e.sample(
                F,
                "modelwatch_model_latency_seconds_sum",
                &labels,
                h.sum / 1000.0,
            );
            e.sample(
                F,
                "modelwatch_model_latency_seconds_count",
                &labels,
                h.count as f64,
            );
        }
        for (version, q, v) in &m.latency {
            e.family(
                "modelwatch_model_window_latency_seconds",
                "summary",
                "Prediction latency quantiles of the latest window.",
            );
            e.sample(
                "modelwatch_model_window_latency_seconds",
                "modelwatch_model_window_latency_seconds",
                &[("model", model), ("version", version), ("quantile", q)],
                *v / 1000.0,
            );
        }
        for (attribute, measure, v) in &m.fairness {
            e.gauge(
                "modelwatch_fairness",
                "Gap between the groups of a protected attribute in the latest window, all versions (fairlearn names).",
                &[("model", model), ("attribute", attribute), ("measure", measure), ("window", window)],
                *v,
            );
        }
        self.export_service_levels(e, model, m, window);
        for (feature, drifted, stat) in &m.drift {
            e.gauge(
                "modelwatch_feature_drifted",
                "1 when the feature drifted from the reference in the latest window.",
                &[("model", model), ("feature", feature)],
                *drifted,
            );
            if let Some(s) = stat {
                e.gauge(
                    "modelwatch_feature_drift_statistic",
                    "The drift method's statistic of the feature in the latest window.",
                    &[("model", model), ("feature", feature)],
                    *s,
                );
            }
        }
        if let Some(s) = m.share_drifted {
            e.gauge(
                "modelwatch_model_drift_share",
                "Share of evaluated features that drifted in the latest window.",
                &[("model", model)],
                s,
            );
        }
        for (feature, v) in &m.null_rate {
            e.gauge(
                "modelwatch_feature_null_rate",
                "Share of null values of the feature in the latest window.",
                &[("model", model), ("feature", feature)],
                *v,
            );
        }
        if let Some(f) = m.quality_flags {
            e.gauge(
                "modelwatch_model_quality_flags",
                "Data-quality flags raised in the latest window.",
                &[("model", model)],
                f,
            );
        }
        if let Ok(Some(t)) = self.db.last_arrival(model, "predictions") {
            e.gauge(
                "modelwatch_model_seconds_since_last_prediction",
                "Seconds since predictions last arrived.",
                &[("model", model)],
                (now.0 - t.0) as f64 / 1e6,
            );
        }
        if let Ok(Some(t)) = self.db.last_arrival(model, "labels") {
            e.gauge(
                "modelwatch_model_seconds_since_last_label",
                "Seconds since labels last arrived.",
                &[("model", model)],
                (now.0 - t.0) as f64 / 1e6,
            );
        }
    }
}
