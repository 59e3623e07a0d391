//! One evaluation pass: every rule's condition over the engine's reports (or freshness and
//! heartbeats), the lifecycle step of its alert, and the write of state, history and outbox.

use super::{AlertService, AlertsError};
use crate::condition::{evaluate as evaluate_condition, fmt_value, Evaluation, Outcome};
use crate::lifecycle::{fingerprint, resolve_orphan, step, Alert, State, Transition};
use crate::notify::Notification;
use crate::rule::{Condition, Rule, Signal, Source};
use crate::signals::{
    attribution_series, drift_series, fairness_series, performance_series, quality_series,
    segment_series,
};
use modelwatch_core::{ModelName, Timestamp};
use modelwatch_engine::attribution::{AttributionQuery, AttributionReport};
use modelwatch_engine::causes::{causes, AttributionShift, Causes, CausesQuery, Importance};
use modelwatch_engine::drift::{
    self as engine_drift, DriftQuery, DriftResponse, QualityResponse, QualityThresholds,
};
use modelwatch_engine::fairness::{FairnessQuery, FairnessReport};
use modelwatch_engine::performance::{window_performance, PerformanceQuery, PerformanceReport};
use modelwatch_engine::EngineError;
use modelwatch_stats::drift::DriftConfig;
use modelwatch_store::ModelSummary;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An engine report a rule's signal is read from.
enum Report {
    Performance(Box<PerformanceReport>),
    Drift(Box<DriftResponse>),
    Multivariate(Box<modelwatch_engine::multivariate::MultivariateResponse>),
    Outliers(Box<modelwatch_engine::outliers::OutlierResponse>),
    Domain(Box<modelwatch_engine::domain::DomainResponse>),
    Quality(Box<QualityResponse>),
    Fairness(Box<FairnessReport>),
    Attribution(Box<AttributionReport>),
    ServiceLevels(Box<modelwatch_engine::service_levels::ServiceLevelReport>),
    Concept(Box<modelwatch_engine::concept::ConceptReport>),
}

/// What one evaluation pass did (for logs and tests).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    pub rules: usize,
    pub transitions: Vec<(String, String, Transition)>,
    pub notifications: usize,
}

impl AlertService {
    /// Evaluates the rules of `models` (all models when None) at `now`: lifecycle steps,
    /// history, queued notifications, and the `/metrics` values of those models. Blocking.
    pub fn evaluate(
        &self,
        now: Timestamp,
        models: Option<&BTreeSet<String>>,
    ) -> Result<PassReport, AlertsError> {
        let _one = self.evaluating.lock().unwrap_or_else(|e| e.into_inner());
        // Once per cluster (ADR 020): only the holder of the lease steps alerts.
        if !self.lease.held_beyond_guard() {
            return Ok(PassReport::default());
        }
        let rules = self.all_rules()?;
        let summaries = self.store.list_models()?;
        let summaries: HashMap<String, ModelSummary> =
            summaries.into_iter().map(|m| (m.name.clone(), m)).collect();
        let wanted = |m: &str| models.is_none_or(|set| set.contains(m));
        let mut by_model: BTreeMap<String, Vec<&Rule>> = BTreeMap::new();
        for r in rules.iter().filter(|r| wanted(&r.model)) {
            by_model.entry(r.model.clone()).or_default().push(r);
        }
        let alerts: HashMap<String, Alert> = self
            .db
            .alerts()?
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        let silences = self.db.silences()?;
        let mut report = PassReport::default();
        for (model, model_rules) in &by_model {
            let evals = self.evaluate_model(model, summaries.get(model), model_rules, now);
            for (rule, eval) in model_rules.iter().zip(evals) {
                report.rules += 1;
                let fp = fingerprint(model, &rule.spec.name);
                let prev = alerts.get(&fp);
                let (mut next, transition) = step(prev, rule, &eval, now);
                if transition == Some(Transition::Firing) {
                    // Once per episode, when it fires: never on the evaluations that follow.
                    if let Some(a) = next.as_mut() {
                        a.causes = self.causes_of(rule, a, now);
                    }
                }
                if !self.lease.held() {
                    // The lease ended during the pass: the next holder evaluates from here.
                    tracing::info!(model = %model, "alert evaluation stopped: the cluster lease passed to another process");
                    return Ok(report);
                }
                let silenced = silences
                    .iter()
                    .any(|s| s.matches(model, &rule.spec.name, now));
                let queued = self.commit(
                    &fp,
                    prev,
                    next,
                    transition,
                    silenced,
                    &rule.spec.notify,
                    now,
                )?;
                report.notifications += queued;
                if let Some(t) = transition {
                    report
                        .transitions
                        .push((model.clone(), rule.spec.name.clone(), t));
                }
            }
        }
        // Alerts whose rule is gone are resolved (and a resolve sent if a trigger was).
        let live: BTreeSet<String> = rules
            .iter()
            .map(|r| fingerprint(&r.model, &r.spec.name))
            .collect();
        for a in alerts
            .values()
            .filter(|a| wanted(&a.model) && !live.contains(&a.fingerprint))
        {
            if let Some((next, t)) = resolve_orphan(a, now) {
                let next = (t == Transition::Resolved).then_some(next);
                report.notifications +=
                    self.commit(&a.fingerprint, Some(a), next, Some(t), false, &[], now)?;
                report
                    .transitions
                    .push((a.model.clone(), a.rule.clone(), t));
            }
        }
        for name in summaries.keys().filter(|m| wanted(m)) {
            self.refresh_metrics(name, &summaries[name]);
        }
        if report.notifications > 0 {
            self.wake_delivery.notify_one();
        }
        for (m, r, t) in &report.transitions {
            tracing::info!(model = %m, rule = %r, transition = ?t, "alert");
        }
        Ok(report)
    }

    /// Writes one alert's step: state, history, and the notifications it calls for.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        fp: &str,
        prev: Option<&Alert>,
        next: Option<Alert>,
        transition: Option<Transition>,
        silenced: bool,
        routes: &[String],
        now: Timestamp,
    ) -> Result<usize, AlertsError> {
        let mut next = next;
        let mut notify = Vec::new();
        let targets: Vec<String> = if routes.is_empty() {
            self.sender.names()
        } else {
            routes.to_vec()
        };
        if let Some(a) = next.as_mut() {
            a.silenced = silenced;
            let fire = a.state == State::Firing && !a.notified && !silenced;
            let resolve = transition == Some(Transition::Resolved) && a.notified;
            if fire {
                // Marked before queueing: the queued copy says it was notified, like the row.
                a.notified = true;
            }
            if fire || resolve {
                let n = Notification {
                    alert: a.clone(),
                    dashboard_url: self.dashboard_link(&a.model),
                };
                notify = targets.iter().map(|t| (t.clone(), n.clone())).collect();
            }
        }
        if next.as_ref() == prev && transition.is_none() {
            return Ok(0);
        }
        // Every transition has an alert on one side (step and resolve_orphan guarantee it).
        let history = transition.zip(next.as_ref().or(prev));
        self.db.apply(fp, next.as_ref(), history, &notify, now)?;
        Ok(notify.len())
    }

    /// One evaluation per rule of a model; engine reports are computed once per (source,
    /// window, version) and shared by the rules that read them.
    fn evaluate_model(
        &self,
        model: &str,
        summary: Option<&ModelSummary>,
        rules: &[&Rule],
        now: Timestamp,
    ) -> Vec<Evaluation> {
        let name = match ModelName::new(model) {
            Ok(n) => n,
            Err(e) => {
                return rules
                    .iter()
                    .map(|_| Evaluation::unknown(e.to_string()))
                    .collect()
            }
        };
        // Source, window, version, segment, and the class a class rule watches.
        type Key = (Source, i64, Option<String>, Option<String>, Option<String>);
        let mut reports: HashMap<Key, Result<Report, String>> = HashMap::new();
        // The detectors the model's concept rules name: one scan runs them all, and no other.
        let detectors: Vec<modelwatch_stats::concept::DetectorKind> = rules
            .iter()
            .filter_map(|r| match r.signal {
                Signal::Concept(d) => Some(d),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let lookback = rules
            .iter()
            .map(|r| r.spec.condition.windows_needed())
            .max()
            .unwrap_or(1)
            + 8;
        rules
            .iter()
            .map(|rule| {
                let source = rule.signal.source();
                match source {
                    Source::Freshness => return self.freshness(model, summary, rule, now),
                    Source::Heartbeat => return self.heartbeat_eval(model, rule, now),
                    _ => {}
                }
                let Some(last) = summary.and_then(|s| s.last_event) else {
                    return Evaluation::unknown(format!("model `{model}` has no events yet"));
                };
                let segment = rule.spec.segment.as_ref().map(|s| s.split());
                // A class rule's report names its class (see `report`): one report per class.
                let class = match &rule.signal {
                    crate::rule::Signal::ClassMetric(_, c) => Some(c.clone()),
                    _ => None,
                };
                let key = (
                    source,
                    rule.window.seconds(),
                    rule.spec.version.clone(),
                    segment,
                    class,
                );
                let from = Timestamp(
                    rule.window.start_of(last).0 - (lookback as i64 - 1) * rule.window.micros(),
                );
                let report = reports
                    .entry(key)
                    .or_insert_with(|| self.report(&name, source, rule, from, &detectors));
                let series = match report {
                    Ok(Report::Performance(r)) => match &rule.spec.segment {
                        Some(seg) => match segment_series(r, &seg.value, &rule.signal) {
                            Ok(s) => s,
                            Err(e) => return Evaluation::unknown(e),
                        },
                        None => performance_series(r, &rule.signal, now),
                    },
                    Ok(Report::Drift(r)) => drift_series(r, &rule.signal),
                    Ok(Report::Multivariate(r)) => {
                        crate::signals::multivariate_series(r, &rule.signal)
                    }
                    Ok(Report::Outliers(r)) => crate::signals::outlier_series(r, &rule.signal),
                    Ok(Report::Domain(r)) => crate::signals::domain_series(r),
                    Ok(Report::Quality(r)) => quality_series(r, &rule.signal),
                    Ok(Report::Fairness(r)) => match fairness_series(r, &rule.signal) {
                        Ok(s) => s,
                        Err(e) => return Evaluation::unknown(e),
                    },
                    Ok(Report::Attribution(r)) => attribution_series(r, &rule.signal),
                    Ok(Report::ServiceLevels(r)) => {
                        match crate::signals::service_level_series(r, &rule.signal) {
                            Ok(s) => s,
                            Err(e) => return Evaluation::unknown(e),
                        }
                    }
                    Ok(Report::Concept(r)) => match crate::signals::concept_series(r, &rule.signal)
                    {
                        Ok(s) => s,
                        Err(e) => return Evaluation::unknown(e),
                    },
                    Err(e) => return Evaluation::unknown(e.clone()),
                };
                evaluate_condition(&rule.spec.condition, &series, rule.min_sample())
            })
            .collect()
    }

    fn report(
        &self,
        model: &ModelName,
        source: Source,
        rule: &Rule,
        from: Timestamp,
        detectors: &[modelwatch_stats::concept::DetectorKind],
    ) -> Result<Report, String> {
        let store = self.store.as_ref();
        let version = rule.spec.version.clone();
        let drift_query = || DriftQuery {
            window: rule.window,
            from: Some(from),
            to: None,
            version: version.clone(),
            segment: None,
        };
        let no_reference = |e: EngineError| match e {
            e @ (EngineError::NoReference { .. } | EngineError::ReferenceNotFitted { .. }) => {
                e.to_string()
            }
            e => format!("drift: {e}"),
        };
        match source {
            Source::Performance => {
                let mut q = PerformanceQuery {
                    window: Some(rule.window),
                    from: Some(from),
                    version,
                    segment: rule.spec.segment.as_ref().map(|s| s.split()),
                    ..Default::default()
                };
                // A multiclass report names the 50 classes with most rows: the rule's class is
                // named whatever its rows.
                if let crate::rule::Signal::ClassMetric(_, class) = &rule.signal {
                    q.config.named_classes = vec![class.clone()];
                }
                window_performance(store, model, &q)
                    .and_then(|mut r| {
                        // Only a rule on an estimate pays for the estimates' scan.
                        if let crate::rule::Signal::Estimated(_) = &rule.signal {
                            modelwatch_engine::estimate::attach(store, model, &q, &mut r)?;
                        }
                        Ok(r)
                    })
                    .map(|r| Report::Performance(Box::new(r)))
                    .map_err(|e| format!("performance: {e}"))
            }
            Source::Drift => {
                engine_drift::drift(store, model, &drift_query(), &DriftConfig::default())
                    .map(|r| Report::Drift(Box::new(r)))
                    .map_err(no_reference)
            }
            Source::Fairness => {
                let q = FairnessQuery {
                    window: rule.window,
                    from: Some(from),
                    to: None,
                    version,
                };
                modelwatch_engine::fairness::fairness(store, model, &q)
                    .map(|r| Report::Fairness(Box::new(r)))
                    .map_err(|e| format!("fairness: {e}"))
            }
            Source::Attribution => {
                let q = AttributionQuery {
                    window: rule.window,
                    from: Some(from),
                    to: None,
                    version,
                };
                modelwatch_engine::attribution::attributions(store, model, &q)
                    .map(|r| Report::Attribution(Box::new(r)))
                    .map_err(|e| format!("attributions: {e}"))
            }
            Source::ServiceLevels => {
                let q = modelwatch_engine::service_levels::ServiceLevelQuery {
                    window: rule.window,
                    from: Some(from),
                    to: None,
                    version,
                };
                modelwatch_engine::service_levels::service_levels(store, model, &q)
                    .map(|r| Report::ServiceLevels(Box::new(r)))
                    .map_err(|e| format!("service levels: {e}"))
            }
            Source::Concept => {
                let q = modelwatch_engine::concept::ConceptQuery {
                    window: rule.window,
                    from: Some(from),
                    to: None,
                    version,
                    detectors: detectors.to_vec(),
                };
                modelwatch_engine::concept::concept(store, model, &q)
                    .map(|r| Report::Concept(Box::new(r)))
                    .map_err(|e| format!("concept: {e}"))
            }
            Source::Multivariate => {
                modelwatch_engine::multivariate::multivariate(store, model, &drift_query())
                    .map(|r| Report::Multivariate(Box::new(r)))
                    .map_err(no_reference)
            }
            Source::Outliers => modelwatch_engine::outliers::outliers(
                store,
                model,
                &modelwatch_engine::outliers::OutlierQuery::new(drift_query()),
            )
            .map(|r| Report::Outliers(Box::new(r)))
            .map_err(no_reference),
            Source::DomainClassifier => {
                modelwatch_engine::domain::domain_classifier(store, model, &drift_query())
                    .map(|r| Report::Domain(Box::new(r)))
                    .map_err(no_reference)
            }
            _ => engine_drift::quality(store, model, &drift_query(), &QualityThresholds::default())
                .map(|r| Report::Quality(Box::new(r)))
                .map_err(no_reference),
        }
    }

    /// The likely causes of a performance or estimated-performance alert that just fired, over
    /// the window it fired on (`None` for other signals, or without a window). A failure is
    /// kept as a note, so the alert says why it has no ranking.
    fn causes_of(&self, rule: &Rule, a: &Alert, now: Timestamp) -> Option<Causes> {
        let metric = match &rule.signal {
            Signal::Metric(m) | Signal::ClassMetric(m, _) => m.as_str(),
            Signal::Estimated(m) => m.as_str(),
            _ => return None,
        };
        let q = CausesQuery {
            window: rule.window,
            start: a.window_start?,
            end: a.window_end?,
            version: rule.spec.version.clone(),
            metric: metric.to_owned(),
            class: match &rule.signal {
                Signal::ClassMetric(_, c) => Some(c.clone()),
                _ => None,
            },
        };
        let started = std::time::Instant::now();
        let model = ModelName::new(&a.model).ok()?;
        // The weights: the model's own attributions of the window when its predictions carried
        // them, else the error correlation `causes` measures itself.
        let importance = self.attribution_importance(&model, &q);
        let causes = match causes(self.store.as_ref(), &model, &q, importance, now) {
            Ok(c) => c,
            Err(e) => {
                Causes::unavailable(&q, now, format!("the causes could not be computed: {e}"))
            }
        };
        tracing::info!(model = %a.model, rule = %a.rule, ms = started.elapsed().as_millis() as u64,
            features = causes.features.len(), segments = causes.segments.len(), "alert causes");
        Some(causes)
    }

    /// Each feature's mean |attribution| in the alert's window and in the reference, when the
    /// window's predictions carried attributions (`None` otherwise, or when they cannot be read:
    /// the causes then weigh by the error correlation).
    fn attribution_importance(&self, model: &ModelName, q: &CausesQuery) -> Option<Importance> {
        let report = modelwatch_engine::attribution::attributions(
            self.store.as_ref(),
            model,
            &AttributionQuery {
                window: q.window,
                from: Some(q.start),
                to: Some(q.end),
                version: q.version.clone(),
            },
        )
        .ok()?;
        let window = report.windows.iter().find(|w| w.start == q.start)?;
        if window.explained == 0 {
            return None;
        }
        let reference: BTreeMap<&str, f64> = report
            .reference
            .iter()
            .flat_map(|r| r.features.iter())
            .map(|f| (f.feature.as_str(), f.mean_abs))
            .collect();
        let shifts = window
            .features
            .iter()
            .map(|f| {
                let shift = AttributionShift {
                    window: f.mean_abs,
                    reference: reference.get(f.feature.as_str()).copied(),
                };
                (f.feature.clone(), shift)
            })
            .collect();
        Some(Importance::Attributions(shifts))
    }

    fn freshness(
        &self,
        model: &str,
        summary: Option<&ModelSummary>,
        rule: &Rule,
        now: Timestamp,
    ) -> Evaluation {
        let Condition::Freshness { max_age } = &rule.spec.condition else {
            return Evaluation::unknown("not a freshness condition");
        };
        let (kind, what) = match rule.signal {
            Signal::Labels => ("labels", "labels"),
            _ => ("predictions", "predictions"),
        };
        let arrival = match self.db.last_arrival(model, kind) {
            Ok(a) => a,
            Err(e) => return Evaluation::unknown(e.to_string()),
        };
        // Before this server saw any: the store's own record (event time, or creation when
        // nothing of the kind was ever stored).
        let last = arrival.or_else(|| {
            let s = summary?;
            match kind {
                "predictions" => s.last_event.or(Some(s.created_at)),
                _ => (s.labels == 0).then_some(s.created_at),
            }
        });
        let Some(last) = last else {
            return Evaluation::unknown(format!("no record of when {what} last arrived"));
        };
        let age = (now.0 - last.0).max(0) as f64 / 1e6;
        let active = age > max_age.seconds as f64;
        Evaluation {
            outcome: if active {
                Outcome::Active
            } else {
                Outcome::Inactive
            },
            value: Some(age),
            baseline: None,
            window_start: None,
            window_end: None,
            n: None,
            summary: format!("last {what} {} ago at {last} (limit {max_age})", human(age)),
        }
    }

    fn heartbeat_eval(&self, model: &str, rule: &Rule, now: Timestamp) -> Evaluation {
        let (Signal::Heartbeat(job), Condition::Heartbeat { max_age }) =
            (&rule.signal, &rule.spec.condition)
        else {
            return Evaluation::unknown("not a heartbeat condition");
        };
        let last = match self.db.last_heartbeat(model, job) {
            Ok(h) => h,
            Err(e) => return Evaluation::unknown(e.to_string()),
        };
        let (active, value, summary) = match last {
            None => (
                true,
                None,
                format!("no run of job `{job}` was ever reported"),
            ),
            Some(h) => {
                let age = (now.0 - h.timestamp.0).max(0) as f64 / 1e6;
                if h.status == "failed" {
                    (
                        true,
                        Some(age),
                        format!(
                            "the last run of job `{job}` failed at {}{}",
                            h.timestamp,
                            h.message.map(|m| format!(": {m}")).unwrap_or_default()
                        ),
                    )
                } else {
                    (
                        age > max_age.seconds as f64,
                        Some(age),
                        format!(
                            "last successful run of job `{job}` {} ago (limit {max_age})",
                            human(age)
                        ),
                    )
                }
            }
        };
        Evaluation {
            outcome: if active {
                Outcome::Active
            } else {
                Outcome::Inactive
            },
            value,
            baseline: None,
            window_start: None,
            window_end: None,
            n: None,
            summary,
        }
    }
}

fn human(secs: f64) -> String {
    let s = secs.round() as i64;
    if s >= 86_400 {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{}s", fmt_value(secs.max(0.0).round()))
    }
}
