//! Reads a signal's per-window series out of the engine's typed reports (the structs the
//! server serialises as the API's JSON), metric names through the vocabulary
//! (`modelwatch_stats::perf::MetricName`).

use crate::condition::{BaselineChange, Point};
use crate::rule::{OperationalSignal, Signal};
use modelwatch_core::Timestamp;
use modelwatch_engine::attribution::AttributionReport;
use modelwatch_engine::concept::ConceptReport;
use modelwatch_engine::domain::DomainResponse;
use modelwatch_engine::drift::{DriftResponse, QualityResponse};
use modelwatch_engine::fairness::FairnessReport;
use modelwatch_engine::multivariate::MultivariateResponse;
use modelwatch_engine::performance::{
    PerformanceReport, TaskChanges, TaskReport, TaskSpec, WindowReport,
};
use modelwatch_engine::service_levels::ServiceLevelReport;
use modelwatch_stats::drift::{FeatureDrift, FeatureStatus};
use modelwatch_stats::perf::{Change, Metric, MetricName};

/// A number as the API's JSON has it: a non-finite one is written `null`, no value.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// A metric: `(value if defined, rows behind it)`.
pub fn metric(m: &Metric) -> (Option<f64>, u64) {
    (m.value(), m.n().unwrap_or(0))
}

fn change(c: &Change) -> Option<BaselineChange> {
    match c {
        Change::Compared {
            baseline,
            relative_delta,
            significant,
            p_value,
            ..
        } => Some(BaselineChange {
            baseline: *baseline,
            relative_delta: *relative_delta,
            significant: *significant,
            p_value: *p_value,
        }),
        Change::NotComparable { .. } => None,
    }
}

fn point(start: Timestamp, end: Timestamp, value: Option<f64>, n: u64) -> Point {
    Point {
        start,
        end,
        value,
        n,
        change: None,
    }
}

/// One class's precision, recall or F1 (`name`) in a window's task report: a multiclass
/// report's `per_class`; for a binary model the positive class's metric, and the negative
/// class's from the confusion counts (one-vs-rest: the roles swapped).
fn class_metric(
    spec: &TaskSpec,
    metrics: &TaskReport,
    name: MetricName,
    class: &str,
) -> (Option<f64>, u64) {
    if let Some(c) = metrics.multiclass().and_then(|m| m.per_class.get(class)) {
        return metric(match name {
            MetricName::Precision => &c.precision,
            MetricName::Recall => &c.recall,
            _ => &c.f1,
        });
    }
    let n = metrics.n();
    if spec.positive_class.as_deref() == Some(class) {
        return metrics.metric(name).map_or((None, 0), metric);
    }
    let (Some(b), true) = (
        metrics.binary(),
        spec.negative_class.as_deref() == Some(class),
    ) else {
        return (None, n);
    };
    let cm = &b.confusion_matrix;
    // The negative class's true positives are the true negatives, and so on.
    let (tp, fp, fn_) = (cm.tn as f64, cm.fn_ as f64, cm.fp as f64);
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let value = match name {
        MetricName::Precision => ratio(tp, tp + fp),
        MetricName::Recall => ratio(tp, tp + fn_),
        _ => ratio(2.0 * tp, 2.0 * tp + fp + fn_),
    };
    (value, n)
}

/// A label-free value of a window: `(value, rows behind it)`. `predictions` counts the
/// window in progress too (callers that want whole windows leave it out).
pub fn operational(w: &WindowReport, signal: OperationalSignal) -> (Option<f64>, u64) {
    let op = &w.operational;
    let distribution = |read: fn(&modelwatch_stats::perf::DistributionReport) -> &Metric| {
        op.prediction_distribution
            .as_ref()
            .map_or((None, 0), |d| (read(d).value(), d.n))
    };
    let latency = |m: &Metric| (m.value(), op.latency_ms.n);
    match signal {
        OperationalSignal::Predictions => (Some(w.predictions as f64), w.predictions),
        OperationalSignal::ErrorRate => (finite(w.error_rate), w.predictions),
        OperationalSignal::LabelCoverage => (finite(w.label_coverage), w.predictions),
        OperationalSignal::LatencyP50 => latency(&op.latency_ms.p50),
        OperationalSignal::LatencyP95 => latency(&op.latency_ms.p95),
        OperationalSignal::LatencyP99 => latency(&op.latency_ms.p99),
        OperationalSignal::AverageConfidence => metric(&op.average_confidence),
        OperationalSignal::PredictionEntropy => distribution(|d| &d.entropy_bits),
        OperationalSignal::TopClassShare => distribution(|d| &d.top_class_share),
    }
}

/// A performance metric or a class's metric of one window's task report, with its change
/// against the baseline for a metric; `None` for other signals.
fn task_value(
    spec: &TaskSpec,
    metrics: &TaskReport,
    changes: Option<&TaskChanges>,
    signal: &Signal,
) -> Option<(Option<f64>, u64, Option<BaselineChange>)> {
    match signal {
        Signal::ClassMetric(name, class) => {
            let (v, n) = class_metric(spec, metrics, *name, class);
            Some((v, n, None))
        }
        Signal::Metric(name) => {
            let (v, n) = metrics.metric(*name).map_or((None, 0), metric);
            let c = changes.and_then(|c| c.change(*name)).and_then(change);
            Some((v, n, c))
        }
        _ => None,
    }
}

/// The series of a performance, operational, per-class or KPI signal from a
/// `window_performance` report. Windows not yet over at `now` are left out for `predictions`
/// (a volume still growing).
pub fn performance_series(
    report: &PerformanceReport,
    signal: &Signal,
    now: Timestamp,
) -> Vec<Point> {
    if let Signal::Kpi(name) = signal {
        // A KPI's mean per window (its windows are the report's): the rows behind it are
        // the KPI's points.
        return report
            .kpis
            .get(name)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|w| point(w.start, w.end, finite(w.mean), w.n))
            .collect();
    }
    report
        .windows
        .iter()
        .filter_map(|w| {
            let (value, n, change) = match signal {
                Signal::Operational(o) => {
                    if *o == OperationalSignal::Predictions && w.end > now {
                        return None;
                    }
                    let (v, n) = operational(w, *o);
                    (v, n, None)
                }
                // The window's label-free estimate: over its predictions, labelled or not.
                Signal::Estimated(m) => {
                    let v = w
                        .estimated
                        .as_ref()
                        .and_then(|e| e.get(m.as_str()))
                        .and_then(|e| finite(e.value));
                    (v, w.predictions, None)
                }
                _ => task_value(&report.spec, &w.metrics, w.changes.as_ref(), signal)?,
            };
            let mut p = point(w.start, w.end, value, n);
            p.change = change;
            Some(p)
        })
        .collect()
}

/// The series of a performance or per-class signal in one segment value of a report split
/// by segment (`segment=`): segments carry their task metrics per window, no baseline change.
pub fn segment_series(
    report: &PerformanceReport,
    value: &str,
    signal: &Signal,
) -> Result<Vec<Point>, String> {
    let segments = report.segments.as_deref().unwrap_or_default();
    let Some(seg) = segments.iter().find(|s| s.value == value) else {
        let names: Vec<&str> = segments.iter().map(|s| s.value.as_str()).collect();
        return Err(format!(
            "segment value {value:?} has no predictions among the 10 values with most \
             predictions in the windows evaluated (found: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ));
    };
    Ok(seg
        .windows
        .iter()
        .filter_map(|w| {
            let (value, n, _) = task_value(&report.spec, &w.metrics, None, signal)?;
            Some(point(w.start, w.end, value, n))
        })
        .collect())
}

/// 1 when the column drifted, 0 when it did not, `Some(None)` when it was not evaluated,
/// `None` when the window has no such column.
fn column_drift(features: &[FeatureDrift], column: &str) -> Option<Option<f64>> {
    let f = features.iter().find(|f| f.feature == column)?;
    Some((f.status == FeatureStatus::Evaluated).then_some(if f.drifted { 1.0 } else { 0.0 }))
}

/// The series of a drift signal from a `drift` response.
pub fn drift_series(report: &DriftResponse, signal: &Signal) -> Vec<Point> {
    let outputs = &report.prediction.windows;
    report
        .windows
        .iter()
        .filter_map(|w| {
            let value = match signal {
                // A share of no evaluated feature (every column under the drift test's
                // minimum rows, as in a window just begun) is no value: 0 % would resolve a
                // firing drift alert on a window that tested nothing.
                Signal::DriftShare => {
                    if w.evaluated_features == 0 {
                        None
                    } else {
                        finite(w.share_drifted)
                    }
                }
                Signal::Drift(col) => column_drift(&w.features, col)
                    .or_else(|| {
                        let out = outputs.iter().find(|o| o.start == w.start)?;
                        column_drift(&out.features, col)
                    })
                    .flatten(),
                _ => return None,
            };
            Some(point(w.start, w.end, value, w.rows))
        })
        .collect()
}

/// The series of a `fairness:<measure>:<attribute>` signal from a fairness report: the gap
/// per window, with the rows of the two groups it compares behind it.
pub fn fairness_series(report: &FairnessReport, signal: &Signal) -> Result<Vec<Point>, String> {
    let Signal::Fairness(measure, attribute) = signal else {
        return Ok(Vec::new());
    };
    let Some(a) = report.attributes.iter().find(|a| &a.attribute == attribute) else {
        let names: Vec<&str> = report
            .attributes
            .iter()
            .map(|a| a.attribute.as_str())
            .collect();
        return Err(format!(
            "{attribute:?} is not a protected attribute of the model (its fairness setting \
             names: {})",
            names.join(", ")
        ));
    };
    Ok(a.windows
        .iter()
        .map(|w| {
            let (value, n) = w
                .measures
                .get(measure)
                .map_or((None, 0), |g| metric(&g.metric));
            point(w.start, w.end, value, n)
        })
        .collect())
}

/// The series of `domain_classifier_auc` from a `drift/domain-classifier` response: each
/// window's AUC, with the window rows the classifier was fitted on as its sample.
pub fn domain_series(report: &DomainResponse) -> Vec<Point> {
    report
        .windows
        .iter()
        .map(|w| point(w.start, w.end, w.auc.and_then(finite), w.window_rows))
        .collect()
}

/// The series of a multivariate drift signal from a `drift/multivariate` response: the mean
/// reconstruction error, or 1 when it left the reference band (else 0).
pub fn multivariate_series(report: &MultivariateResponse, signal: &Signal) -> Vec<Point> {
    report
        .windows
        .iter()
        .filter_map(|w| {
            let value = match signal {
                Signal::ReconstructionError => w.error.value.and_then(finite),
                Signal::MultivariateDrift => {
                    w.error.value.map(|_| if w.error.alert { 1.0 } else { 0.0 })
                }
                _ => return None,
            };
            Some(point(w.start, w.end, value, w.error.rows))
        })
        .collect()
}

/// The series of a `concept:<detector>` signal from a concept report: per window the change
/// points the detector flagged, summed over the versions of the report, behind it the window's
/// labelled predictions. An error when the detector did not run (a 0/1 detector on a
/// regressor's errors): the rule can never hold.
pub fn concept_series(report: &ConceptReport, signal: &Signal) -> Result<Vec<Point>, String> {
    let Signal::Concept(detector) = signal else {
        return Ok(Vec::new());
    };
    if let Some(s) = report.skipped.iter().find(|s| s.detector == *detector) {
        return Err(s.reason.clone());
    }
    let mut windows: std::collections::BTreeMap<Timestamp, (Timestamp, u64, u64)> =
        Default::default();
    for w in report.versions.iter().flat_map(|v| &v.windows) {
        let e = windows.entry(w.start).or_insert((w.end, 0, 0));
        e.1 += w.changes.get(detector).copied().unwrap_or(0);
        e.2 += w.labelled;
    }
    Ok(windows
        .into_iter()
        .map(|(start, (end, changes, n))| point(start, end, Some(changes as f64), n))
        .collect())
}

/// The series of an outliers signal from a `GET .../outliers` response: the outlier rate, or
/// the number of tag values flagged as possible probing; behind each value the window's rows.
pub fn outlier_series(
    report: &modelwatch_engine::outliers::OutlierResponse,
    signal: &Signal,
) -> Vec<Point> {
    report
        .windows
        .iter()
        .filter_map(|w| {
            let value = match signal {
                Signal::OutlierRate => w.outlier_rate,
                Signal::Probing => Some(w.probing_flagged as f64),
                _ => return None,
            };
            Some(point(w.start, w.end, value, w.rows))
        })
        .collect()
}

/// The series of an `attribution:<feature>` signal from an attribution report: per window the
/// feature's share of mean |attribution| minus the reference's, behind it the window's
/// predictions carrying an attribution of the feature. No value (the rule's state is kept)
/// where the window has none, or the reference carries no attributions of the feature.
pub fn attribution_series(report: &AttributionReport, signal: &Signal) -> Vec<Point> {
    let Signal::Attribution(feature) = signal else {
        return Vec::new();
    };
    report
        .windows
        .iter()
        .map(|w| {
            let f = w.features.iter().find(|f| &f.feature == feature);
            point(
                w.start,
                w.end,
                f.and_then(|f| f.share_change),
                f.map_or(0, |f| f.count),
            )
        })
        .collect()
}

/// The series of a cost or latency-objective signal from a service-level report: behind a
/// cost the window's predictions, behind an SLO value its requests with a latency. An SLO
/// signal of a model without a latency objective is an error naming the setting.
pub fn service_level_series(
    report: &ServiceLevelReport,
    signal: &Signal,
) -> Result<Vec<Point>, String> {
    if signal != &Signal::Cost && report.settings.latency_slo.is_none() {
        return Err(format!(
            "model `{}` has no latency objective: set `latency_slo` in its service-level              settings",
            report.model
        ));
    }
    Ok(report
        .windows
        .iter()
        .map(|w| {
            let (value, n) = match (signal, &w.slo) {
                (Signal::Cost, _) => (finite(w.cost.total), w.predictions),
                (Signal::SloBurnRate, Some(s)) => (s.burn_rate.and_then(finite), s.requests),
                (Signal::SloBudgetRemaining, Some(s)) => {
                    (s.budget_remaining.and_then(finite), s.requests)
                }
                _ => (None, 0),
            };
            point(w.start, w.end, value, n)
        })
        .collect())
}

/// The series of a data-quality signal from a `quality` response.
pub fn quality_series(report: &QualityResponse, signal: &Signal) -> Vec<Point> {
    report
        .windows
        .iter()
        .filter_map(|w| {
            let feature = |name: &str| w.features.iter().find(|f| f.feature == name);
            let value = match signal {
                Signal::QualityFlags => Some(w.flags.len() as f64),
                Signal::NullRate(f) => feature(f).and_then(|f| finite(f.null_rate)),
                // A feature without out-of-range (or unseen) counts has none: 0.
                Signal::OutOfRange(f) => {
                    feature(f).map(|f| f.out_of_range.as_ref().map_or(0.0, |o| o.share))
                }
                Signal::Unseen(f) => {
                    feature(f).map(|f| f.unseen_categories.as_ref().map_or(0.0, |u| u.share))
                }
                _ => return None,
            };
            Some(point(w.start, w.end, value, w.rows))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Source, OPERATIONAL_SIGNALS, PERFORMANCE_METRICS, SIGNAL_KINDS};
    use modelwatch_core::{
        parse_kpi_row, parse_label_row, parse_prediction_row, FeatureValue, IngestLimits,
        ModelName, Outcome, ReferenceRow,
    };
    use modelwatch_engine::drift::{drift, quality, DriftQuery, QualityThresholds};
    use modelwatch_engine::performance::{window_performance, PerformanceQuery, Task};
    use modelwatch_stats::drift::DriftConfig;
    use modelwatch_store::{Catalog, EventLog, LabelBatch, PredictionBatch, SqliteStore, Store};
    use serde_json::{json, Value};

    fn t(s: &str) -> Timestamp {
        modelwatch_core::parse_timestamp(s).unwrap()
    }

    /// A little after the data: every window is over.
    fn now() -> Timestamp {
        t("2026-03-11T00:00:00Z")
    }

    /// What one row of a model says: (prediction, score, scores, label).
    type Row = (Value, Value, Value, Value);

    /// The row `i` of a binary (`b`), multiclass (`mc`) or regression (`r`) model.
    fn row(task: &str, i: usize) -> Row {
        let score = (i % 100) as f64 / 100.0;
        match task {
            "b" => {
                let pred = usize::from(score >= 0.5);
                let label = if i.is_multiple_of(5) { 1 - pred } else { pred };
                (json!(pred), json!(score), Value::Null, json!(label))
            }
            "mc" => {
                let classes = ["a", "b", "c"];
                let pred = classes[i % 3];
                let label = if i.is_multiple_of(4) {
                    classes[(i + 1) % 3]
                } else {
                    pred
                };
                let scores = json!({"a": 0.2, "b": 0.2, "c": 0.2, pred: 0.6});
                (json!(pred), Value::Null, scores, json!(label))
            }
            _ => {
                let target = 10.0 + (i % 40) as f64;
                (
                    json!(target + score),
                    Value::Null,
                    Value::Null,
                    json!(target),
                )
            }
        }
    }

    fn features(i: usize) -> Vec<(String, FeatureValue)> {
        vec![
            ("x".into(), FeatureValue::Number((i % 50) as f64)),
            (
                "city".into(),
                FeatureValue::Text(["a", "b", "c"][i % 3].into()),
            ),
        ]
    }

    /// A model of each task with two hours of labelled predictions, a labelled reference
    /// (for baselines, drift and quality) and a KPI.
    fn store_with_models(dir: &std::path::Path) -> SqliteStore {
        let store = SqliteStore::open(dir.join("store")).unwrap();
        let limits = IngestLimits::default();
        for task in ["b", "mc", "r"] {
            let model = ModelName::new(task).unwrap();
            let reference = (0..300)
                .map(|i| {
                    let (p, s, sc, l) = row(task, i + 7);
                    let outcome = |v: &Value| match v {
                        Value::String(s) => Some(Outcome::Text(s.clone())),
                        v => v.as_f64().map(Outcome::Number),
                    };
                    let city = if i.is_multiple_of(2) { "a" } else { "b" };
                    let r = ReferenceRow {
                        features: vec![
                            ("x".into(), FeatureValue::Number((i % 40) as f64)),
                            ("city".into(), FeatureValue::Text(city.into())),
                        ],
                        prediction: outcome(&p),
                        score: s.as_f64(),
                        scores: sc.as_object().map(|o| {
                            o.iter()
                                .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                                .collect()
                        }),
                        label: outcome(&l),
                        explanations: vec![
                            ("x".into(), (i % 40) as f64 / 100.0),
                            ("city".into(), -0.1),
                        ],
                    };
                    (i, r)
                })
                .collect();
            store
                .put_reference(&model, None, reference, vec![])
                .unwrap();
            let (mut preds, mut labels) = (Vec::new(), Vec::new());
            for i in 0..400 {
                let (p, s, sc, l) = row(task, i);
                let id = format!("{task}-{i}");
                let ts = format!("2026-03-10T{:02}:{:02}:00Z", 10 + i / 200, i % 60);
                let mut features: serde_json::Map<String, Value> = features(i)
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::to_value(v).unwrap()))
                    .collect();
                if i.is_multiple_of(10) {
                    features.insert("x".into(), Value::Null);
                }
                let mut pred = json!({"request_id": id, "timestamp": ts, "features": features,
                    "prediction": p, "latency_ms": 5 + i % 20, "cost": (i % 2) as f64 / 1000.0,
                    "explanations": {"x": (i % 50) as f64 / 100.0, "city": 0.2}});
                for (k, v) in [("score", s), ("scores", sc)] {
                    if !v.is_null() {
                        pred[k] = v;
                    }
                }
                preds.push((
                    i,
                    parse_prediction_row(&pred.to_string(), i, now(), &limits).unwrap(),
                ));
                let label = json!({"request_id": id, "label": l}).to_string();
                labels.push((i, parse_label_row(&label, i, now(), &limits).unwrap()));
            }
            store
                .ingest_predictions(&model, PredictionBatch::new(preds))
                .unwrap();
            store
                .ingest_labels(
                    &model,
                    LabelBatch {
                        rows: labels,
                        rejected: vec![],
                    },
                )
                .unwrap();
            let kpis = (0..4)
                .map(|i| {
                    let k = json!({"name": "loss", "value": i as f64 * 1.5,
                        "timestamp": format!("2026-03-10T{:02}:30:00Z", 10 + i / 2)});
                    (i, parse_kpi_row(&k.to_string(), i, now()).unwrap())
                })
                .collect();
            store.ingest_kpis(&model, kpis, vec![]).unwrap();
        }
        store
    }

    fn performance(store: &dyn Store, model: &str) -> PerformanceReport {
        let q = PerformanceQuery {
            window: Some(modelwatch_core::Window::HOUR),
            ..Default::default()
        };
        window_performance(store, &ModelName::new(model).unwrap(), &q).unwrap()
    }

    fn drift_query() -> DriftQuery {
        DriftQuery {
            window: modelwatch_core::Window::HOUR,
            from: None,
            to: None,
            version: None,
            segment: None,
        }
    }

    /// Every signal a rule accepts that is read from a report reads a value from a real one:
    /// each metric of the vocabulary from a model of a task that has it (equal to what the
    /// API's JSON holds under its name), each operational value, class metric, KPI, drift and
    /// quality signal. A name the validator accepts that no report field answers fails here.
    #[test]
    fn every_accepted_signal_name_reads_a_value_from_a_real_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_models(dir.path());
        let model_of = |task: Task| match task {
            Task::Binary => "b",
            Task::Multiclass => "mc",
            Task::Regression => "r",
        };
        let reports: std::collections::HashMap<&str, PerformanceReport> = ["b", "mc", "r"]
            .into_iter()
            .map(|m| (m, performance(&store, m)))
            .collect();
        for (m, r) in &reports {
            assert_eq!(
                model_of(r.spec.task),
                *m,
                "{m} was detected as {:?}",
                r.spec.task
            );
        }
        let b = ModelName::new("b").unwrap();
        let drift = drift(&store, &b, &drift_query(), &DriftConfig::default()).unwrap();
        let quality = quality(&store, &b, &drift_query(), &QualityThresholds::default()).unwrap();
        let settings = modelwatch_engine::fairness::FairnessSettings::from_json(
            &json!({"protected": ["city"], "min_group_size": 10}),
        )
        .unwrap();
        modelwatch_engine::fairness::set_settings(&store, &b, Some(&settings)).unwrap();
        let fair_query = modelwatch_engine::fairness::FairnessQuery {
            window: modelwatch_core::Window::HOUR,
            from: None,
            to: None,
            version: None,
        };
        let fair = modelwatch_engine::fairness::fairness(&store, &b, &fair_query).unwrap();
        let multivariate =
            modelwatch_engine::multivariate::multivariate(&store, &b, &drift_query()).unwrap();
        let outliers = modelwatch_engine::outliers::outliers(
            &store,
            &b,
            &modelwatch_engine::outliers::OutlierQuery::new(drift_query()),
        )
        .unwrap();
        let domain =
            modelwatch_engine::domain::domain_classifier(&store, &b, &drift_query()).unwrap();
        let attribution_query = modelwatch_engine::attribution::AttributionQuery {
            window: modelwatch_core::Window::HOUR,
            from: None,
            to: None,
            version: None,
        };
        let attributions =
            modelwatch_engine::attribution::attributions(&store, &b, &attribution_query).unwrap();
        let levels = modelwatch_engine::service_levels::ServiceLevelSettings::from_json(
            &json!({"cost_per_prediction": 0.25, "latency_slo": {"objective": 0.9, "threshold_ms": 15}}),
        )
        .unwrap();
        modelwatch_engine::service_levels::set_settings(&store, &b, Some(&levels)).unwrap();
        let service_levels = modelwatch_engine::service_levels::service_levels(
            &store,
            &b,
            &modelwatch_engine::service_levels::ServiceLevelQuery {
                window: modelwatch_core::Window::HOUR,
                from: None,
                to: None,
                version: None,
            },
        )
        .unwrap();

        let concept_query = modelwatch_engine::concept::ConceptQuery {
            window: modelwatch_core::Window::HOUR,
            from: None,
            to: None,
            version: None,
            detectors: Vec::new(),
        };
        let concept = modelwatch_engine::concept::concept(&store, &b, &concept_query).unwrap();

        let mut names: Vec<String> = PERFORMANCE_METRICS.iter().map(|s| s.to_string()).collect();
        names.extend(OPERATIONAL_SIGNALS.iter().map(|s| s.to_string()));
        names.extend(
            [
                "precision:1",
                "recall:0",
                "f1:0",
                "recall:a",
                "kpi:loss",
                "drift_share",
                "drift:x",
                "drift:city",
                "drift:prediction",
                "drift:score",
                "reconstruction_error",
                "multivariate_drift",
                "outlier_rate",
                "probing",
                "domain_classifier_auc",
                "quality_flags",
                "null_rate:x",
                "out_of_range:x",
                "unseen:city",
                "attribution:x",
                "attribution:city",
                "cost",
                "slo_burn_rate",
                "slo_budget_remaining",
                "concept:adwin",
                "concept:ddm",
            ]
            .map(String::from),
        );
        names.extend(
            modelwatch_stats::fairness::MEASURES
                .iter()
                .map(|m| format!("fairness:{m}:city")),
        );
        names.extend(
            modelwatch_stats::estimate::EstimatedMetric::NAMES
                .iter()
                .map(|m| format!("estimated:{m}")),
        );
        // The estimates are attached where a rule on them is evaluated.
        let mut estimated = performance(&store, "b");
        let q = PerformanceQuery {
            window: Some(modelwatch_core::Window::HOUR),
            ..Default::default()
        };
        modelwatch_engine::estimate::attach(&store, &b, &q, &mut estimated).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for name in &names {
            let signal = Signal::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            kinds.insert(signal.kind());
            let series = match (&signal, signal.source()) {
                (Signal::Metric(m), _) => {
                    let task = [Task::Binary, Task::Multiclass, Task::Regression]
                        .into_iter()
                        .find(|t| t.metrics().all().any(|x| x == *m))
                        .unwrap_or_else(|| panic!("{m} belongs to no task"));
                    let report = &reports[model_of(task)];
                    let series = performance_series(report, &signal, now());
                    let json = serde_json::to_value(report).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        assert_eq!(p.value, w[m.as_str()]["value"].as_f64(), "{m}");
                    }
                    series
                }
                (Signal::ClassMetric(_, class), _) if class == "a" => {
                    performance_series(&reports["mc"], &signal, now())
                }
                (Signal::Estimated(m), _) => {
                    let series = performance_series(&estimated, &signal, now());
                    let json = serde_json::to_value(&estimated).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        assert_eq!(
                            p.value,
                            w["estimated"][m.as_str()]["value"].as_f64(),
                            "{m:?}"
                        );
                    }
                    series
                }
                (_, Source::Performance) => performance_series(&reports["b"], &signal, now()),
                (_, Source::Drift) => drift_series(&drift, &signal),
                (_, Source::Multivariate) => {
                    let series = multivariate_series(&multivariate, &signal);
                    let json = serde_json::to_value(&multivariate).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        let want = match signal {
                            Signal::ReconstructionError => w["value"].as_f64(),
                            _ => w["alert"].as_bool().map(|a| f64::from(u8::from(a))),
                        };
                        assert_eq!(p.value, want, "{name}");
                    }
                    series
                }
                (_, Source::Outliers) => {
                    let series = outlier_series(&outliers, &signal);
                    let json = serde_json::to_value(&outliers).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        let want = match signal {
                            Signal::OutlierRate => w["outlier_rate"].as_f64(),
                            _ => w["probing_flagged"].as_f64(),
                        };
                        assert_eq!(p.value, want, "{name}");
                    }
                    series
                }
                (_, Source::DomainClassifier) => {
                    let series = domain_series(&domain);
                    let json = serde_json::to_value(&domain).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        assert_eq!(p.value, w["auc"].as_f64(), "{name}");
                    }
                    series
                }
                (_, Source::Quality) => quality_series(&quality, &signal),
                (Signal::Fairness(measure, _), Source::Fairness) => {
                    let series = fairness_series(&fair, &signal).unwrap();
                    let json = serde_json::to_value(&fair).unwrap();
                    let windows = json["attributes"][0]["windows"].as_array().unwrap();
                    for (p, w) in series.iter().zip(windows) {
                        assert_eq!(p.value, w[measure.as_str()]["value"].as_f64(), "{name}");
                    }
                    series
                }
                (Signal::Attribution(f), Source::Attribution) => {
                    let series = attribution_series(&attributions, &signal);
                    let json = serde_json::to_value(&attributions).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        let feature = w["features"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|x| x["feature"] == f.as_str())
                            .unwrap();
                        assert_eq!(p.value, feature["share_change"].as_f64(), "{name}");
                    }
                    series
                }
                (_, Source::ServiceLevels) => {
                    let series = service_level_series(&service_levels, &signal).unwrap();
                    let json = serde_json::to_value(&service_levels).unwrap();
                    for (p, w) in series.iter().zip(json["windows"].as_array().unwrap()) {
                        let want = match signal {
                            Signal::Cost => w["cost"]["total"].as_f64(),
                            Signal::SloBurnRate => w["slo"]["burn_rate"].as_f64(),
                            _ => w["slo"]["budget_remaining"].as_f64(),
                        };
                        assert_eq!(p.value, want, "{name}");
                    }
                    series
                }
                (Signal::Concept(d), Source::Concept) => {
                    let series = concept_series(&concept, &signal).unwrap();
                    let json = serde_json::to_value(&concept).unwrap();
                    let windows = json["versions"][0]["windows"].as_array().unwrap();
                    for (p, w) in series.iter().zip(windows) {
                        assert_eq!(p.value, w["changes"][d.name()].as_f64(), "{name}");
                        assert_eq!(p.n, w["labelled"].as_u64().unwrap(), "{name}");
                    }
                    series
                }
                (_, other) => panic!("{name} is read from {other:?}, not a report"),
            };
            assert_eq!(series.len(), 2, "{name}: one point per window");
            assert!(
                series.iter().all(|p| p.value.is_some_and(f64::is_finite)),
                "{name} read no value: {series:?}"
            );
        }
        // Every kind of signal read from a report is in the list above.
        for kind in SIGNAL_KINDS {
            let example = match *kind {
                "estimated:<metric>" => "estimated:f1".to_owned(),
                "fairness:<measure>:<attribute>" => {
                    "fairness:demographic_parity_ratio:city".to_owned()
                }
                "concept:<detector>" => "concept:adwin".to_owned(),
                k => k.replace(['<', '>'], ""),
            };
            let source = Signal::parse(&example).map(|s| s.source());
            if matches!(source, Ok(Source::Freshness | Source::Heartbeat)) {
                continue;
            }
            assert!(kinds.contains(kind), "no signal of kind {kind} was read");
        }
    }

    /// A class's metric of a binary model: the positive class's is the report's; the
    /// negative class's comes from the confusion counts with the roles swapped.
    #[test]
    fn reads_class_metrics_of_binary_and_multiclass_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_models(dir.path());
        let b = performance(&store, "b");
        let class = |r: &PerformanceReport, metric: MetricName, class: &str| {
            performance_series(r, &Signal::ClassMetric(metric, class.into()), now())[0].value
        };
        let w = &b.windows[0];
        assert_eq!(
            class(&b, MetricName::Recall, "1"),
            w.metrics.metric(MetricName::Recall).unwrap().value()
        );
        let cm = &w.metrics.binary().unwrap().confusion_matrix;
        let (tn, fp, fn_) = (cm.tn as f64, cm.fp as f64, cm.fn_ as f64);
        assert_eq!(class(&b, MetricName::Recall, "0"), Some(tn / (tn + fp)));
        assert_eq!(class(&b, MetricName::Precision, "0"), Some(tn / (tn + fn_)));
        assert_eq!(
            class(&b, MetricName::F1, "0"),
            Some(2.0 * tn / (2.0 * tn + fn_ + fp))
        );
        assert_eq!(class(&b, MetricName::Recall, "2"), None);
        let mc = performance(&store, "mc");
        let per_class = &mc.windows[0].metrics.multiclass().unwrap().per_class["b"];
        assert_eq!(
            class(&mc, MetricName::Recall, "b"),
            per_class.recall.value()
        );
    }

    #[test]
    fn a_window_not_over_yet_has_no_volume_and_changes_come_with_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_models(dir.path());
        let b = performance(&store, "b");
        let f1 = performance_series(&b, &Signal::Metric(MetricName::F1), now());
        let change = f1[0]
            .change
            .as_ref()
            .expect("a labelled reference: a baseline");
        assert_eq!(
            Some(change.baseline),
            b.baseline
                .as_ref()
                .unwrap()
                .metric(MetricName::F1)
                .unwrap()
                .value()
        );
        let volume = Signal::Operational(OperationalSignal::Predictions);
        assert_eq!(performance_series(&b, &volume, now())[0].value, Some(200.0));
        // At 10:30 the second window (10:00-11:00 is the first) is not over: left out.
        let early = t("2026-03-10T11:30:00Z");
        assert_eq!(performance_series(&b, &volume, early).len(), 1);
    }

    #[test]
    fn a_drift_share_of_no_evaluated_feature_is_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_models(dir.path());
        let b = ModelName::new("b").unwrap();
        let mut report = drift(&store, &b, &drift_query(), &DriftConfig::default()).unwrap();
        // The second window as one just begun: every column under the test's minimum rows.
        let last = report.windows.last_mut().unwrap();
        last.evaluated_features = 0;
        last.drifted_features = 0;
        last.share_drifted = 0.0;
        report.windows[0].share_drifted = 1.0;
        let s = drift_series(&report, &Signal::DriftShare);
        assert_eq!(s[0].value, Some(1.0));
        assert_eq!(s[1].value, None);
        // So a threshold rule keeps the last window that tested something: still active.
        let c = crate::rule::Condition::Threshold {
            op: crate::rule::Op::Gt,
            value: 0.25,
        };
        let e = crate::condition::evaluate(&c, &s, 30);
        assert_eq!(e.outcome, crate::condition::Outcome::Active);
        assert_eq!(e.value, Some(1.0));
    }
}
