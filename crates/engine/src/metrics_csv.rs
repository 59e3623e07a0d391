//! A metrics report as one flat CSV table: one row per window, one column per value, what
//! `pd.read_csv(".../metrics?window=1d&format=csv")` reads in one call. The API
//! (`?format=csv`) and `modelwatch metrics --format csv` both write it from here.
//!
//! Columns: `window_start, window_end`, the task's headline metrics, `average_confidence`,
//! `prediction_volume, labelled, errors`, `latency_p50, latency_p95, latency_p99`,
//! `error_rate, label_coverage`, the task's other metrics, `insufficient_sample`. A metric
//! with a 95 % interval has `<metric>_ci_low` and `<metric>_ci_high` right after it. A
//! metric that is not defined in a window (too few rows, one class only) is an empty cell
//! (NaN in pandas). Numbers are written in Rust's shortest round-trip form, so a value read
//! back is the JSON report's number, bit for bit.
//!
//! The metrics and their order come from the vocabulary (`modelwatch_stats::perf::MetricName`).
//! Headline metrics: binary `accuracy, precision, recall, f1`; multiclass `accuracy,
//! precision_macro, recall_macro, f1_macro`; regression `mae, rmse, r2, mape`.

use modelwatch_stats::perf::{BINARY_METRICS, MULTICLASS_METRICS, REGRESSION_METRICS};
use serde_json::Value;

use crate::performance::{PerformanceReport, Task};

/// How a column's cells are read from a window's JSON.
enum Column {
    /// A plain value under this key (a timestamp, a count, a ratio).
    Plain(&'static str),
    /// The `Metric` object at this path: its value, then `_ci_low` and `_ci_high` columns.
    Metric(Vec<&'static str>),
}

fn columns(task: Task) -> Vec<(String, Column)> {
    // The task's metrics from the one vocabulary: its headline four first, the rest last.
    let metrics = match task {
        Task::Binary => BINARY_METRICS,
        Task::Multiclass => MULTICLASS_METRICS,
        Task::Regression => REGRESSION_METRICS,
    };
    let mut out: Vec<(String, Column)> = vec![
        ("window_start".into(), Column::Plain("start")),
        ("window_end".into(), Column::Plain("end")),
    ];
    let metric = |name: &'static str| (name.to_owned(), Column::Metric(vec![name]));
    out.extend(metrics.headline.iter().map(|m| metric(m.as_str())));
    if task != Task::Regression {
        out.push(metric("average_confidence"));
    }
    out.push(("prediction_volume".into(), Column::Plain("predictions")));
    out.push(("labelled".into(), Column::Plain("labelled")));
    out.push(("errors".into(), Column::Plain("errors")));
    const LATENCY: [(&str, &[&str]); 3] = [
        ("latency_p50", &["latency_ms", "p50"]),
        ("latency_p95", &["latency_ms", "p95"]),
        ("latency_p99", &["latency_ms", "p99"]),
    ];
    for (name, path) in LATENCY {
        out.push((name.into(), Column::Metric(path.to_vec())));
    }
    out.push(("error_rate".into(), Column::Plain("error_rate")));
    out.push(("label_coverage".into(), Column::Plain("label_coverage")));
    out.extend(metrics.rest.iter().map(|m| metric(m.as_str())));
    out.push((
        "insufficient_sample".into(),
        Column::Plain("insufficient_sample"),
    ));
    out
}

/// The table's column names for `task` without the interval columns, in table order (the
/// order the command line lists a summary's metrics in).
pub fn column_names(task: Task) -> Vec<String> {
    columns(task).into_iter().map(|(name, _)| name).collect()
}

/// A JSON scalar as a CSV cell: numbers in shortest round-trip form, null as empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.to_string(),
            (None, Some(i)) => i.to_string(),
            _ => n.as_f64().map(|f| f.to_string()).unwrap_or_default(),
        },
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// The report's windows as CSV text (see the module doc for the columns).
pub fn metrics_csv(report: &PerformanceReport) -> String {
    let columns = columns(report.spec.task);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = Vec::new();
    for (name, c) in &columns {
        header.push(name.clone());
        if let Column::Metric(..) = c {
            header.push(format!("{name}_ci_low"));
            header.push(format!("{name}_ci_high"));
        }
    }
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&header);
    for window in &report.windows {
        let v = serde_json::to_value(window).unwrap_or(Value::Null);
        let mut row = Vec::with_capacity(header.len());
        for (_, c) in &columns {
            match c {
                Column::Plain(key) => row.push(cell(&v[*key])),
                Column::Metric(path) => {
                    let m = path.iter().fold(&v, |at, k| &at[*k]);
                    let defined = m["status"] == "defined";
                    for field in ["value", "ci_low", "ci_high"] {
                        row.push(if defined {
                            cell(&m[field])
                        } else {
                            String::new()
                        });
                    }
                }
            }
        }
        let _ = w.write_record(&row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_column_has_its_interval_beside_it() {
        for task in [Task::Binary, Task::Multiclass, Task::Regression] {
            let cols = columns(task);
            assert_eq!(cols[0].0, "window_start");
            for (name, c) in &cols {
                if let Column::Metric(path) = c {
                    assert!(!path.is_empty(), "{name}");
                }
            }
        }
        let names: Vec<String> = columns(Task::Binary).into_iter().map(|c| c.0).collect();
        for wanted in [
            "accuracy",
            "precision",
            "recall",
            "f1",
            "average_confidence",
            "prediction_volume",
            "latency_p50",
            "latency_p95",
            "error_rate",
            "label_coverage",
        ] {
            assert!(names.iter().any(|n| n == wanted), "{wanted}");
        }
    }
}
