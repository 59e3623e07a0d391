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
mod migrate;
mod migrate_alerts;
mod report;
mod serve;
mod store_arg;

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
    /// Run the service on the embedded store, or on a shared ClickHouse store (--store).
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
    /// Copy an embedded store into another store (ClickHouse, or another data directory):
    /// resumable, with a progress bar, verified by counts.
    Migrate(migrate::MigrateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if !matches!(cli.command, Command::Serve(_) | Command::Demo(_)) {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Import(args) => import::run(*args),
        Command::Export(args) => export::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Metrics(args) => metrics::run(*args),
        Command::Report(args) => report::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Check(args) => check::run(args),
        Command::Migrate(args) => migrate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A report piped into `head` or `grep -m1` ends when the reader closes the pipe. Rust starts
/// with SIGPIPE ignored, so `println!` then panics on the broken pipe; the commands that print
/// a report die of the signal instead, silently, as Unix tools do. Not `serve` or `demo`:
/// they talk to sockets and webhooks, where a peer's closed connection must stay an error the
/// code handles, never a signal that stops the service. The one `unsafe` of the binary: std has
/// no safe way to set a signal's disposition.
#[allow(unsafe_code)]
fn quiet_on_closed_pipe() {
    // SAFETY: called on the main thread before any other thread starts; restoring a signal's
    // default disposition has no other effect on the process's state.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
