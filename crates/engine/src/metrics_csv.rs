//! A metrics report as one flat CSV table: one row per window, one column per value, what
//! `pd.read_csv(".../metrics?window=1d&format=csv")` reads in one call. The API
//! (`?format=csv`) and `modelwatch metrics --format csv` both write it from here.
//!
//! Columns: `window_start, window_end`, the task's headline metrics, `average_confidence`,
//! `prediction_volume, labelled, errors`, `latency_p50, latency_p95, latency_p99`,
//! `error_rate, label_coverage`, the task's other metrics, `insufficient_sample`, then, when
//! the report has label-free estimates (`estimation`), `estimated_<metric>` for `roc_auc, f1,
//! precision, recall, specificity, accuracy` (a regression model: `mae, rmse`) each with its
//! ± 3σ interval
//! (`estimated_<metric>_ci_low`, `_ci_high`). A metric
//! with a 95 % interval has `<metric>_ci_low` and `<metric>_ci_high` right after it. A
//! metric that is not defined in a window (too few rows, one class only) is an empty cell
//! (NaN in pandas). Numbers are written in Rust's shortest round-trip form, so a value read
//! back is the JSON report's number, bit for bit.
//!
//! The metrics and their order come from the vocabulary (`modelwatch_stats::perf::MetricName`).
//! Headline metrics: binary `accuracy, precision, recall, f1`; multiclass `accuracy,
//! precision_macro, recall_macro, f1_macro`; regression `mae, rmse, r2, mape`.

use modelwatch_stats::estimate::EstimatedMetric;
use modelwatch_stats::perf::{Metric, MetricName};

use crate::performance::{PerformanceReport, Task, WindowReport};
use crate::state::Operational;

/// How a column's cells are read from a window.
enum Column {
    /// A plain value (a timestamp, a count, a ratio).
    Plain(fn(&WindowReport) -> String),
    /// A task metric by its name: its value, then `_ci_low` and `_ci_high` columns.
    Metric(MetricName),
    /// A label-free metric of the window, with its interval columns too.
    Operational(OperationalMetric),
}

/// Reads one label-free metric of a window.
type OperationalMetric = fn(&Operational) -> &Metric;

/// A number in shortest round-trip form; a non-finite one (null in the JSON) as empty.
fn number(x: f64) -> String {
    if x.is_finite() {
        x.to_string()
    } else {
        String::new()
    }
}

fn columns(task: Task) -> Vec<(String, Column)> {
    // The task's metrics from the one vocabulary: its headline four first, the rest last.
    let metrics = task.metrics();
    let plain =
        |name: &str, read: fn(&WindowReport) -> String| (name.to_owned(), Column::Plain(read));
    let mut out: Vec<(String, Column)> = vec![
        plain("window_start", |w| w.start.to_rfc3339()),
        plain("window_end", |w| w.end.to_rfc3339()),
    ];
    let metric = |m: MetricName| (m.as_str().to_owned(), Column::Metric(m));
    out.extend(metrics.headline.iter().copied().map(metric));
    if task != Task::Regression {
        out.push((
            "average_confidence".into(),
            Column::Operational(|o| &o.average_confidence),
        ));
    }
    out.push(plain("prediction_volume", |w| w.predictions.to_string()));
    out.push(plain("labelled", |w| w.labelled.to_string()));
    out.push(plain("errors", |w| w.errors.to_string()));
    let latency: [(&str, OperationalMetric); 3] = [
        ("latency_p50", |o| &o.latency_ms.p50),
        ("latency_p95", |o| &o.latency_ms.p95),
        ("latency_p99", |o| &o.latency_ms.p99),
    ];
    for (name, read) in latency {
        out.push((name.into(), Column::Operational(read)));
    }
    out.push(plain("error_rate", |w| number(w.error_rate)));
    out.push(plain("label_coverage", |w| number(w.label_coverage)));
    out.extend(metrics.rest.iter().copied().map(metric));
    out.push(plain("insufficient_sample", |w| {
        w.insufficient_sample.to_string()
    }));
    out
}

/// The table's column names for `task` without the interval columns, in table order (the
/// order the command line lists a summary's metrics in).
pub fn column_names(task: Task) -> Vec<String> {
    columns(task).into_iter().map(|(name, _)| name).collect()
}

/// The report's windows as CSV text (see the module doc for the columns).
pub fn metrics_csv(report: &PerformanceReport) -> String {
    let columns = columns(report.spec.task);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = Vec::new();
    for (name, c) in &columns {
        header.push(name.clone());
        if !matches!(c, Column::Plain(_)) {
            header.push(format!("{name}_ci_low"));
            header.push(format!("{name}_ci_high"));
        }
    }
    // The estimates last, so that the columns before them stay where they were.
    let estimated = report.estimation.is_some();
    let estimated_names: &[&str] = match report.spec.task {
        Task::Regression => &EstimatedMetric::REGRESSION_NAMES,
        _ => &EstimatedMetric::NAMES,
    };
    if estimated {
        for name in estimated_names {
            header.push(format!("estimated_{name}"));
            header.push(format!("estimated_{name}_ci_low"));
            header.push(format!("estimated_{name}_ci_high"));
        }
    }
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&header);
    for window in &report.windows {
        let mut row = Vec::with_capacity(header.len());
        for (_, c) in &columns {
            let m = match c {
                Column::Plain(read) => {
                    row.push(read(window));
                    continue;
                }
                Column::Metric(name) => window.metrics.metric(*name),
                Column::Operational(read) => Some(read(&window.operational)),
            };
            match m {
                Some(Metric::Defined {
                    value,
                    ci_low,
                    ci_high,
                    ..
                }) => row.extend([*value, *ci_low, *ci_high].map(number)),
                _ => row.extend([String::new(), String::new(), String::new()]),
            }
        }
        if estimated {
            for name in estimated_names {
                match window.estimated.as_ref().and_then(|e| e.get(*name)) {
                    Some(e) => row.extend([e.value, e.ci_low, e.ci_high].map(number)),
                    None => row.extend([String::new(), String::new(), String::new()]),
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
                if let Column::Metric(m) = c {
                    assert_eq!(m.as_str(), name);
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
