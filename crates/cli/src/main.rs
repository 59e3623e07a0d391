//! The `modelwatch` command. anyhow and clap live only here.

mod args;
mod check;
mod credit_demo;
mod demo;
mod drift;
mod export;
mod import;
mod metrics;
mod metrics_file;
mod report;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "modelwatch",
    version,
    about = "Production ML model monitoring: ingest predictions and late labels, watch performance, drift and data quality."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service on the embedded store.
    Serve(serve::ServeArgs),
    /// Import predictions, labels or a reference dataset from CSV, Parquet or NDJSON.
    Import(Box<import::ImportArgs>),
    /// Export stored predictions or labels to Parquet.
    Export(export::ExportArgs),
    /// Per-feature drift of a current dataset against a reference, from two CSV or Parquet files.
    Drift(drift::DriftArgs),
    /// Per-window performance and operational metrics of a model.
    Metrics(Box<metrics::MetricsArgs>),
    /// A model's dashboard as one standalone HTML file (opens offline), its numbers as JSON, its charts as PNG.
    Report(Box<report::ReportArgs>),
    /// The service with two simulated classifiers: one whose inputs drift and whose accuracy
    /// decays, one that stays healthy.
    Demo(demo::DemoArgs),
    /// Whether a data directory is a sound store (read only; safe beside a running service).
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Import(args) => import::run(*args),
        Command::Export(args) => export::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Metrics(args) => metrics::run(*args),
        Command::Report(args) => report::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
