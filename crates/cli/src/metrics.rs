//! `modelwatch metrics`: per-window performance and operational metrics of a model, from the
//! data directory or from a running server, as a table, CSV or the server's JSON.

use crate::store_arg::{self, Credentials, Location, Mode};
use anyhow::{bail, Context};
use modelwatch_core::{parse_timestamp, ModelName, Window};
use modelwatch_engine::metrics_csv::{column_names, metrics_csv};
use modelwatch_engine::performance::{
    window_performance, PerformanceQuery, PerformanceReport, Segment, Task, TaskReport,
};
use modelwatch_engine::summary::WindowRef;
use modelwatch_stats::perf::{Change, Metric, MetricName};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct MetricsArgs {
    /// Model to report on (not with --predictions)
    #[arg(long, required_unless_present = "predictions")]
    model: Option<String>,
    /// Answer straight from a predictions file (CSV, Parquet or NDJSON), with no data
    /// directory: its label column, if any, gives the labels
    #[arg(long, value_name = "FILE", conflicts_with_all = ["data", "server", "model", "segment", "api_key"])]
    predictions: Option<PathBuf>,
    /// With --predictions: a labels file (request_id, label, timestamp), joined by request id;
    /// its label replaces the row's own
    #[arg(long, value_name = "FILE", requires = "predictions")]
    labels: Option<PathBuf>,
    /// With --predictions: which column holds what, as for `modelwatch import`
    #[command(flatten)]
    columns: crate::import::ColumnArgs,
    #[command(flatten)]
    windows: crate::args::Windows,
    /// A feature or tag:<name>: also the metrics per value of it (the 10 largest plus other).
    /// feature:value or tag:<name>:<value> (e.g. country:DE, tag:region:eu): the metrics of
    /// that value's events only. The same `segment` as the API's /metrics and /drift
    #[arg(long)]
    segment: Option<String>,
    /// binary, multiclass or regression (default: detected from the data)
    #[arg(long)]
    task: Option<String>,
    /// What-if binary decision threshold: the score decides at it (default: the logged
    /// prediction decides)
    #[arg(long)]
    threshold: Option<f64>,
    /// Output format (csv: one row per window, one column per value and interval bound)
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Only the change summary: first window -> last window and baseline -> last window per
    /// metric, with the significance of each change (table or json)
    #[arg(long)]
    summary: bool,
    #[command(flatten)]
    target: crate::args::Target,
}

pub fn run(args: MetricsArgs) -> anyhow::Result<()> {
    if args.predictions.is_none() && args.columns.mapping() != Default::default() {
        bail!(
            "the column options (--score-col, --label-col, ...) apply to --predictions FILE only"
        );
    }
    let model = match (&args.model, &args.predictions) {
        (Some(m), _) => Some(ModelName::new(m)?),
        (None, Some(_)) => None,
        (None, None) => bail!("--model NAME (or --predictions FILE) is required"),
    };
    // Without a server: the data directory, or the file.
    let local = |args: &MetricsArgs| -> anyhow::Result<PerformanceReport> {
        match (&model, &args.predictions) {
            (_, Some(file)) => crate::metrics_file::report(
                file,
                args.labels.as_deref(),
                &args.columns,
                query(args)?,
            ),
            (Some(model), None) => from_data(model, args),
            (None, None) => unreachable!("refused above"),
        }
    };
    if args.format == Format::Csv {
        if args.summary {
            bail!("--summary is a table or JSON: drop --format csv (or --summary)");
        }
        // As the server: the CSV is the table of windows, which has no per-value breakdown.
        if let Some(s) = args.segment.as_deref().filter(|s| !s.is_empty()) {
            if Segment::parse(s).is_ok_and(|s| s.value.is_none()) {
                bail!("--format csv is the table of windows and has no segments: drop --segment, name one value (e.g. --segment country:DE), or use --format json");
            }
        }
        // The same table as `GET .../metrics?format=csv`, built by the same function.
        let text = match (&args.target.server, &model) {
            (Some(url), Some(model)) => ask_server(url, model, &args, "csv")?.text()?,
            _ => metrics_csv(&local(&args)?),
        };
        print!("{text}");
        return Ok(());
    }
    let report = match (&args.target.server, &model) {
        (Some(url), Some(model)) => from_server(url, model, &args)?,
        _ => local(&args)?,
    };
    let out = match (args.format, args.summary) {
        (Format::Json, false) => serde_json::to_string_pretty(&report)? + "\n",
        (Format::Json, true) => serde_json::to_string_pretty(&report.summary)? + "\n",
        (_, false) => table(&report) + "\n" + &summary_table(&report),
        (_, true) => summary_table(&report),
    };
    print!("{out}");
    Ok(())
}

fn from_data(model: &ModelName, args: &MetricsArgs) -> anyhow::Result<PerformanceReport> {
    let location = args.target.location()?;
    if let Location::Data(dir) = &location {
        if !dir.is_dir() {
            bail!(
                "data directory {} does not exist: pass --data DIR, --store URL, --server URL, or --predictions FILE",
                dir.display()
            );
        }
    }
    let query = query(args)?;
    // The lock error already tells the user to use --server when a server holds the directory.
    let opened = store_arg::open(&location, Credentials::from_env(), Mode::Service, None)?;
    let store = opened.store();
    let mut report = window_performance(store, model, &query)?;
    // The label-free estimates, as the API's metrics carry them.
    modelwatch_engine::estimate::attach(store, model, &query, &mut report)?;
    Ok(report)
}

/// The query the command's options ask.
fn query(args: &MetricsArgs) -> anyhow::Result<PerformanceQuery> {
    let time = |name: &str, v: &Option<String>| -> anyhow::Result<_> {
        v.as_deref()
            .map(|s| parse_timestamp(s).map_err(|e| anyhow::anyhow!("--{name}: {e}")))
            .transpose()
    };
    Ok(PerformanceQuery {
        window: Some(
            Window::parse(&args.windows.window).map_err(|e| anyhow::anyhow!("--window: {e}"))?,
        ),
        from: time("from", &args.windows.from)?,
        to: time("to", &args.windows.to)?,
        version: args.windows.version.clone(),
        // Read here for an error naming the flag; the engine reads it again.
        segment: match args.segment.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => {
                Segment::parse(s).map_err(|e| anyhow::anyhow!("--segment: {e}"))?;
                Some(s.to_owned())
            }
            None => None,
        },
        task: args
            .task
            .as_deref()
            .map(Task::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--task: {e}"))?,
        threshold: args.threshold,
        config: Default::default(),
    })
}

/// `GET /v1/models/{model}/metrics` with the command's parameters and `format`; an error
/// status becomes the server's message.
fn ask_server(
    url: &str,
    model: &ModelName,
    args: &MetricsArgs,
    format: &str,
) -> anyhow::Result<reqwest::blocking::Response> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()?;
    let mut params = vec![
        ("window", args.windows.window.clone()),
        ("format", format.into()),
    ];
    for (k, v) in [
        ("from", &args.windows.from),
        ("to", &args.windows.to),
        ("version", &args.windows.version),
        ("segment", &args.segment),
        ("task", &args.task),
    ] {
        if let Some(v) = v {
            params.push((k, v.clone()));
        }
    }
    if let Some(t) = args.threshold {
        params.push(("threshold", t.to_string()));
    }
    let mut req = client
        .get(format!(
            "{}/v1/models/{model}/metrics",
            url.trim_end_matches('/')
        ))
        .query(&params);
    if let Some(k) = &args.target.api_key {
        req = req.bearer_auth(k);
    }
    let r = req.send().with_context(|| format!("asking {url}"))?;
    let status = r.status();
    if !status.is_success() {
        let body: Value = r.json().unwrap_or(Value::Null);
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("server answered {status}: {msg}");
    }
    Ok(r)
}

/// The server's report, read into the type it was written from.
fn from_server(
    url: &str,
    model: &ModelName,
    args: &MetricsArgs,
) -> anyhow::Result<PerformanceReport> {
    let text = ask_server(url, model, args, "json")?.text()?;
    serde_json::from_str(&text).context("reading the server's metrics")
}

/// The metrics of a task the table shows (three, to fit a terminal), in table and CSV order.
fn headline(task: Task) -> [MetricName; 3] {
    use modelwatch_stats::perf::MetricName::*;
    match task {
        Task::Regression => [Mae, Rmse, R2],
        Task::Multiclass => [Accuracy, F1Macro, RocAuc],
        Task::Binary => [Accuracy, F1, RocAuc],
    }
}

/// `0.812 [0.790, 0.833]`, `n=12 < 30`, or `-` (undefined).
fn cell(m: Option<&Metric>) -> String {
    match m {
        Some(Metric::Defined {
            value,
            ci_low,
            ci_high,
            ..
        }) => format!("{value:.3} [{ci_low:.3}, {ci_high:.3}]"),
        Some(Metric::InsufficientSample { n, min }) => format!("n={n} < {min}"),
        _ => "-".into(),
    }
}

/// A table's rows: the header, then one row per (name, predictions, labelled, metrics).
fn rows<'a>(
    first: &str,
    names: [MetricName; 3],
    items: impl Iterator<Item = (String, u64, u64, &'a TaskReport)>,
) -> Vec<Vec<String>> {
    let mut header = vec![first.to_owned(), "n".into(), "labelled".into()];
    header.extend(names.iter().map(|n| n.to_string()));
    let mut rows = vec![header];
    for (name, predictions, labelled, metrics) in items {
        let mut r = vec![name, predictions.to_string(), labelled.to_string()];
        r.extend(names.iter().map(|n| cell(metrics.metric(*n))));
        rows.push(r);
    }
    rows
}

fn table(report: &PerformanceReport) -> String {
    let task = report.spec.task;
    let names = headline(task);
    let windows = report
        .windows
        .iter()
        .map(|w| (w.start.to_rfc3339(), w.predictions, w.labelled, &w.metrics));
    let mut out = format!(
        "model {}  task {}  window {}\n",
        report.model,
        task.as_str(),
        report.window
    );
    out += &align(&rows("start", names, windows));
    if let Some(segments) = &report.segments {
        let segments = segments
            .iter()
            .map(|s| (s.value.clone(), s.predictions, s.labelled, &s.metrics));
        let first = report.segment.as_deref().unwrap_or("segment");
        out += "\nsegments (worst first)\n";
        out += &align(&rows(first, names, segments));
    }
    out
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// `-0.100 (p 0.012, significant)`, or why it could not be compared.
fn change_cell(c: Option<&Change>) -> String {
    match c {
        Some(Change::Compared {
            delta,
            p_value,
            significant,
            ..
        }) => format!(
            "{delta:+.3} (p {}{})",
            match *p_value {
                p if p < 0.001 => format!("{p:.1e}"),
                p => format!("{p:.3}"),
            },
            if *significant { ", significant" } else { "" }
        ),
        Some(Change::NotComparable { .. }) => "not comparable".into(),
        None => "-".into(),
    }
}

/// The report's `summary` as a table: per metric, first and last window values and the change
/// between them, then the baseline and the change from it to the last window.
fn summary_table(report: &PerformanceReport) -> String {
    let s = &report.summary;
    if s.metrics.is_empty() {
        return "changes: no complete window with enough rows to compare\n".into();
    }
    let when = |w: Option<&WindowRef>| w.map_or("-".into(), |w| w.start.to_rfc3339());
    let mut out = format!(
        "changes: first window {} -> last window {} (windows chosen by {} rows)\n",
        when(s.first_window.as_ref()),
        when(s.last_window.as_ref()),
        s.basis,
    );
    let num = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.3}"));
    // In the order of the CSV table's columns (headline metrics first), the rest by name.
    let order = column_names(report.spec.task);
    let mut names: Vec<&String> = s.metrics.keys().collect();
    names.sort_by_key(|n| order.iter().position(|o| o == *n).unwrap_or(usize::MAX));
    let mut rows = vec![[
        "metric",
        "first",
        "last",
        "first -> last",
        "baseline",
        "baseline -> last",
    ]
    .map(str::to_owned)
    .to_vec()];
    for name in names {
        let m = &s.metrics[name.as_str()];
        rows.push(vec![
            name.clone(),
            num(m.first),
            num(m.last),
            change_cell(m.first_to_last.as_ref()),
            num(m.baseline),
            change_cell(m.baseline_to_last.as_ref()),
        ]);
    }
    out += &align(&rows);
    out
}
