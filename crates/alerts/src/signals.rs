//! Reads a signal's per-window series out of the engine's reports, through their documented
//! JSON shapes (docs/api.md) rather than their Rust types: the engine's internals are changing,
//! its JSON is the contract.

use crate::condition::{BaselineChange, Point};
use crate::rule::Signal;
use modelwatch_core::Timestamp;
use serde_json::Value;

fn ts(v: &Value) -> Option<Timestamp> {
    serde_json::from_value(v.clone()).ok()
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A metric object (`{"status": "defined", "value", "n", ...}`): `(value if defined, rows
/// behind it)`.
pub fn metric(m: &Value) -> (Option<f64>, u64) {
    let n = m.get("n").and_then(Value::as_u64).unwrap_or(0);
    match m.get("status").and_then(Value::as_str) {
        Some("defined") => (m.get("value").and_then(num), n),
        _ => (None, n),
    }
}

fn change(c: &Value) -> Option<BaselineChange> {
    (c.get("status")?.as_str()? == "compared").then(|| BaselineChange {
        baseline: c.get("baseline").and_then(num).unwrap_or(f64::NAN),
        relative_delta: c.get("relative_delta").and_then(num),
        significant: c
            .get("significant")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        p_value: c.get("p_value").and_then(num).unwrap_or(1.0),
    })
}

/// The array at `path` (`/windows`), or nothing.
fn array<'a>(report: &'a Value, path: &str) -> &'a [Value] {
    report
        .pointer(path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn point(w: &Value, value: Option<f64>, n: u64) -> Option<Point> {
    Some(Point {
        start: ts(w.get("start")?)?,
        end: ts(w.get("end")?)?,
        value,
        n,
        change: None,
    })
}

/// One class's precision, recall or F1 in a window of a metrics report: a multiclass
/// window's `per_class`; for a binary model the positive class's flat metric, and the
/// negative class's from the confusion counts (one-vs-rest: the roles swapped).
fn class_metric(report: &Value, w: &Value, name: &str, class: &str) -> (Option<f64>, u64) {
    if let Some(m) = w.pointer(&format!("/per_class/{}/{name}", escape(class))) {
        return metric(m);
    }
    let n = w.get("n").and_then(Value::as_u64).unwrap_or(0);
    let key = |k: &str| report.get(k).and_then(Value::as_str);
    if key("positive_class") == Some(class) {
        return metric(w.get(name).unwrap_or(&Value::Null));
    }
    if key("negative_class") != Some(class) {
        return (None, n);
    }
    let Some(cm) = w.get("confusion_matrix") else {
        return (None, n);
    };
    let count = |k: &str| cm.get(k).and_then(Value::as_u64).unwrap_or(0) as f64;
    // The negative class's true positives are the true negatives, and so on.
    let (tp, fp, fn_) = (count("tn"), count("fn"), count("fp"));
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let value = match name {
        "precision" => ratio(tp, tp + fp),
        "recall" => ratio(tp, tp + fn_),
        _ => ratio(2.0 * tp, 2.0 * tp + fp + fn_),
    };
    (value, n)
}

/// A JSON pointer token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A KPI's mean per window, from the metrics report's `kpis` (its windows are the report's):
/// the rows behind it are the KPI's points.
fn kpi_series(report: &Value, name: &str) -> Vec<Point> {
    report
        .get("kpis")
        .and_then(|k| k.get(name))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter_map(|w| {
            let n = w.get("n").and_then(Value::as_u64).unwrap_or(0);
            point(w, w.get("mean").and_then(num), n)
        })
        .collect()
}

/// The series of a performance, operational, per-class or KPI signal from a
/// `window_performance` report. Windows not yet over at `now` are left out for `predictions`
/// (a volume still growing).
pub fn performance_series(report: &Value, signal: &Signal, now: Timestamp) -> Vec<Point> {
    if let Signal::Kpi(name) = signal {
        return kpi_series(report, name);
    }
    array(report, "/windows")
        .iter()
        .filter_map(|w| {
            let predictions = w.get("predictions").and_then(Value::as_u64).unwrap_or(0);
            let (value, n, change) = match signal {
                Signal::ClassMetric(name, class) => {
                    let (v, n) = class_metric(report, w, name, class);
                    (v, n, None)
                }
                // The window's label-free estimate: over its predictions, labelled or not.
                Signal::Estimated(name) => {
                    let v = w
                        .get("estimated")
                        .and_then(|e| e.get(name))
                        .and_then(|m| m.get("value"))
                        .and_then(num);
                    (v, predictions, None)
                }
                Signal::Metric(name) => {
                    let (v, n) = metric(w.get(name).unwrap_or(&Value::Null));
                    let c = w.get("changes").and_then(|c| c.get(name)).and_then(change);
                    (v, n, c)
                }
                Signal::Operational(name) => {
                    let (v, n) = match name.as_str() {
                        "predictions" => {
                            let end = ts(w.get("end")?)?;
                            if end > now {
                                return None;
                            }
                            (Some(predictions as f64), predictions)
                        }
                        "error_rate" | "label_coverage" => {
                            (w.get(name.as_str()).and_then(num), predictions)
                        }
                        "latency_p50" | "latency_p95" | "latency_p99" => {
                            let l = w.get("latency_ms").unwrap_or(&Value::Null);
                            let (v, _) =
                                metric(l.get(&name["latency_".len()..]).unwrap_or(&Value::Null));
                            (v, l.get("n").and_then(Value::as_u64).unwrap_or(0))
                        }
                        "average_confidence" => {
                            metric(w.get(name.as_str()).unwrap_or(&Value::Null))
                        }
                        "prediction_entropy" | "top_class_share" => {
                            let d = w.get("prediction_distribution").unwrap_or(&Value::Null);
                            let key = if name == "prediction_entropy" {
                                "entropy_bits"
                            } else {
                                "top_class_share"
                            };
                            let (v, _) = metric(d.get(key).unwrap_or(&Value::Null));
                            (v, d.get("n").and_then(Value::as_u64).unwrap_or(0))
                        }
                        _ => (None, 0),
                    };
                    (v, n, None)
                }
                _ => return None,
            };
            let mut p = point(w, value, n)?;
            p.change = change;
            Some(p)
        })
        .collect()
}

/// A drift verdict's status: the report writes it as an object (`{"status": "evaluated"}`,
/// `{"status": "insufficient_data", "min_rows": 30}`); a bare string is read too.
fn drift_status(f: &Value) -> Option<&str> {
    let s = f.get("status")?;
    s.as_str().or_else(|| s.get("status")?.as_str())
}

fn column_drift(features: Option<&Value>, column: &str) -> Option<Option<f64>> {
    let f = features?
        .as_array()?
        .iter()
        .find(|f| f.get("feature").and_then(Value::as_str) == Some(column))?;
    let evaluated = drift_status(f) == Some("evaluated");
    Some(evaluated.then(|| {
        if f.get("drifted").and_then(Value::as_bool).unwrap_or(false) {
            1.0
        } else {
            0.0
        }
    }))
}

/// The series of a drift signal from a `drift` response.
pub fn drift_series(report: &Value, signal: &Signal) -> Vec<Point> {
    let outputs = array(report, "/prediction/windows");
    array(report, "/windows")
        .iter()
        .filter_map(|w| {
            let rows = w.get("rows").and_then(Value::as_u64).unwrap_or(0);
            let value = match signal {
                // A share of no evaluated feature (every column under the drift test's
                // minimum rows, as in a window just begun) is no value: 0 % would resolve a
                // firing drift alert on a window that tested nothing.
                Signal::DriftShare => {
                    let evaluated = w.get("evaluated_features").and_then(Value::as_u64);
                    if evaluated == Some(0) {
                        None
                    } else {
                        w.get("share_drifted").and_then(num)
                    }
                }
                Signal::Drift(col) => column_drift(w.get("features"), col)
                    .or_else(|| {
                        let out = outputs.iter().find(|o| o.get("start") == w.get("start"))?;
                        column_drift(out.get("features"), col)
                    })
                    .flatten(),
                _ => return None,
            };
            point(w, value, rows)
        })
        .collect()
}

/// The series of a data-quality signal from a `quality` response.
pub fn quality_series(report: &Value, signal: &Signal) -> Vec<Point> {
    array(report, "/windows")
        .iter()
        .filter_map(|w| {
            let rows = w.get("rows").and_then(Value::as_u64).unwrap_or(0);
            let feature = |name: &str| {
                w.get("features")?
                    .as_array()?
                    .iter()
                    .find(|f| f.get("feature").and_then(Value::as_str) == Some(name))
                    .cloned()
            };
            let value = match signal {
                Signal::QualityFlags => w
                    .get("flags")
                    .and_then(Value::as_array)
                    .map(|f| f.len() as f64),
                Signal::NullRate(f) => feature(f).and_then(|f| f.get("null_rate").and_then(num)),
                // A feature without out-of-range (or unseen) counts has none: 0.
                Signal::OutOfRange(f) => feature(f).map(|f| {
                    f.pointer("/out_of_range/share")
                        .and_then(num)
                        .unwrap_or(0.0)
                }),
                Signal::Unseen(f) => feature(f).map(|f| {
                    f.pointer("/unseen_categories/share")
                        .and_then(num)
                        .unwrap_or(0.0)
                }),
                _ => return None,
            };
            point(w, value, rows)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The drift report writes a verdict's status as an object; `drift:<column>` rules read
    /// nothing (and never fired) while the reader compared it with a string.
    #[test]
    fn reads_column_drift_whose_status_is_an_object() {
        let evaluated =
            serde_json::to_value(modelwatch_stats::drift::FeatureStatus::Evaluated).unwrap();
        assert!(evaluated.is_object(), "{evaluated}");
        let short =
            serde_json::to_value(modelwatch_stats::drift::FeatureStatus::InsufficientData {
                min_rows: 30,
            })
            .unwrap();
        let (start, end) = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        let report = json!({
            "windows": [{"start": start, "end": end, "rows": 500, "share_drifted": 0.5,
                "features": [{"feature": "age", "status": evaluated, "drifted": true},
                             {"feature": "city", "status": short, "drifted": false}]}],
            "prediction": {"columns": ["prediction", "score"], "windows": [{
                "start": start, "end": end, "rows": 500,
                "features": [{"feature": "prediction", "status": evaluated, "drifted": false},
                             {"feature": "score", "status": evaluated, "drifted": true}]}]}});
        let value = |col: &str| drift_series(&report, &Signal::Drift(col.into()))[0].value;
        assert_eq!(value("age"), Some(1.0));
        assert_eq!(value("city"), None, "no verdict on too few rows");
        assert_eq!(value("prediction"), Some(0.0));
        assert_eq!(value("score"), Some(1.0));
    }

    #[test]
    fn reads_class_metrics_of_binary_and_multiclass_reports() {
        let m = |v: f64| json!({"status": "defined", "value": v, "n": 100, "ci_low": 0.0, "ci_high": 1.0});
        let (start, end) = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        let binary = json!({"positive_class": "1", "negative_class": "0", "windows": [{
            "start": start, "end": end, "predictions": 100, "n": 100, "recall": m(0.9),
            "confusion_matrix": {"tp": 45, "fp": 20, "tn": 30, "fn": 5}}]});
        let now = Timestamp::from_secs(1_900_000_000);
        let class = |r: &Value, metric: &str, class: &str| {
            performance_series(r, &Signal::ClassMetric(metric.into(), class.into()), now)[0].value
        };
        assert_eq!(class(&binary, "recall", "1"), Some(0.9));
        // The negative class: recall = tn / (tn + fp), precision = tn / (tn + fn).
        assert_eq!(class(&binary, "recall", "0"), Some(30.0 / 50.0));
        assert_eq!(class(&binary, "precision", "0"), Some(30.0 / 35.0));
        assert_eq!(class(&binary, "f1", "0"), Some(60.0 / 85.0));
        assert_eq!(class(&binary, "recall", "2"), None);
        let multi = json!({"windows": [{"start": start, "end": end, "predictions": 100,
            "n": 100, "per_class": {"a/b": {"support": 40, "precision": m(0.5),
            "recall": m(0.25), "f1": m(0.33)}}}]});
        assert_eq!(class(&multi, "recall", "a/b"), Some(0.25));
    }

    #[test]
    fn reads_metrics_changes_and_operational_values() {
        let report = json!({"windows": [{
            "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
            "predictions": 500, "error_rate": 0.01, "label_coverage": 0.8,
            "f1": {"status": "defined", "value": 0.7, "n": 400, "ci_low": 0.65, "ci_high": 0.75},
            "roc_auc": {"status": "insufficient_sample", "n": 12, "min": 30},
            "changes": {"f1": {"status": "compared", "baseline": 0.8, "window": 0.7,
                               "delta": -0.1, "relative_delta": -0.125, "p_value": 0.001,
                               "significant": true, "test": "f1_via_two_proportion_z"}},
            "latency_ms": {"n": 500, "p50": {"status": "defined", "value": 3.0, "n": 500,
                                              "ci_low": 2.9, "ci_high": 3.1}}}]});
        let now = Timestamp::from_secs(1_900_000_000);
        let f1 = performance_series(&report, &Signal::Metric("f1".into()), now);
        assert_eq!(f1[0].value, Some(0.7));
        assert_eq!(f1[0].n, 400);
        let c = f1[0].change.as_ref().unwrap();
        assert_eq!(c.relative_delta, Some(-0.125));
        assert!(c.significant);
        let auc = performance_series(&report, &Signal::Metric("roc_auc".into()), now);
        assert_eq!((auc[0].value, auc[0].n), (None, 12));
        let p50 = performance_series(&report, &Signal::Operational("latency_p50".into()), now);
        assert_eq!((p50[0].value, p50[0].n), (Some(3.0), 500));
        let vol = performance_series(&report, &Signal::Operational("predictions".into()), now);
        assert_eq!(vol[0].value, Some(500.0));
        // The window is not over yet at an earlier "now": its volume is left out.
        let early = Timestamp::from_secs(1_767_240_000);
        assert!(
            performance_series(&report, &Signal::Operational("predictions".into()), early)
                .is_empty()
        );
    }

    #[test]
    fn a_drift_share_of_no_evaluated_feature_is_no_value() {
        let report = json!({"windows": [
            {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "rows": 400,
             "evaluated_features": 3, "drifted_features": 3, "share_drifted": 1.0},
            {"start": "2026-01-01T01:00:00Z", "end": "2026-01-01T02:00:00Z", "rows": 40,
             "partial": true, "evaluated_features": 0, "drifted_features": 0, "share_drifted": 0.0}]});
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
