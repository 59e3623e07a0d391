//! `modelwatch import`: a CSV, Parquet or NDJSON file into the data directory, or into a running
//! server with `--server URL`, with a progress bar.
//!
//! Reading and converting runs on its own thread, one chunk ahead of storing, so that decoding
//! the file and committing to the store overlap.

use crate::store_arg::{self, Credentials, Mode, Opened};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use modelwatch_core::{ModelName, Rejection, Timestamp};
use modelwatch_engine::aggregates::{ImportFold, ImportState};
use modelwatch_formats::{
    ColumnMapping, Converted, ImportReader, ReadOptions, RowKind, Source, TableFormat,
};
use modelwatch_store::{
    Catalog, GatheredPredictions, LabelBatch, PendingLabels, PendingPredictions, PredictionBatch,
    Quarantined, SqliteStore, Store,
};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Predictions,
    Labels,
    Reference,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// What the file holds
    what: What,
    /// CSV, Parquet or NDJSON file (format from the extension, else from the content)
    file: PathBuf,
    /// Model the rows belong to
    #[arg(long)]
    model: String,
    /// Model version for rows without a version column (for a reference: the version it is the baseline of)
    #[arg(long)]
    version: Option<String>,
    #[command(flatten)]
    target: crate::args::Target,
    #[command(flatten)]
    columns: ColumnArgs,
}

/// Which column holds what. Every column not named here (and not excluded) is a feature.
#[derive(clap::Args, Debug, Default)]
pub struct ColumnArgs {
    /// Request id column [default: request_id]
    #[arg(long)]
    request_id_col: Option<String>,
    /// Event time column [default: timestamp]
    #[arg(long)]
    timestamp_col: Option<String>,
    /// Model version column [default: model_version]
    #[arg(long)]
    version_col: Option<String>,
    /// Prediction column [default: prediction, else y_pred]
    #[arg(long)]
    prediction_col: Option<String>,
    /// Positive-class probability column [default: score, else y_pred_proba, proba, probability]
    #[arg(long)]
    score_col: Option<String>,
    /// Prefix of per-class probability columns, e.g. `score_` for score_cat, score_dog
    #[arg(long)]
    scores_prefix: Option<String>,
    /// Label column [default: label, else y_true, target]; in a predictions file it also imports the labels
    #[arg(long)]
    label_col: Option<String>,
    /// Latency column in milliseconds [default: latency_ms]
    #[arg(long)]
    latency_col: Option<String>,
    /// Cost column, each prediction's cost (no default: a column named `cost` is a feature unless named here)
    #[arg(long)]
    cost_col: Option<String>,
    /// Error column [default: error]
    #[arg(long)]
    error_col: Option<String>,
    /// A column to keep as a tag rather than a feature (repeatable)
    #[arg(long = "tag-col")]
    tag_cols: Vec<String>,
    /// A column to ignore (repeatable)
    #[arg(long = "exclude")]
    exclude: Vec<String>,
}

impl ColumnArgs {
    pub(crate) fn mapping(&self) -> ColumnMapping {
        ColumnMapping {
            request_id: self.request_id_col.clone(),
            timestamp: self.timestamp_col.clone(),
            model_version: self.version_col.clone(),
            prediction: self.prediction_col.clone(),
            score: self.score_col.clone(),
            scores_prefix: self.scores_prefix.clone(),
            label: self.label_col.clone(),
            latency_ms: self.latency_col.clone(),
            cost: self.cost_col.clone(),
            error: self.error_col.clone(),
            tags: self.tag_cols.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

#[derive(Default)]
struct Totals {
    rows: u64,
    accepted: u64,
    duplicates: u64,
    labels: u64,
    rejected: Vec<Rejection>,
    rejected_count: u64,
}

impl Totals {
    fn reject(&mut self, r: Vec<Rejection>) {
        self.rejected_count += r.len() as u64;
        // Keep the first few for the summary; all of them are in the quarantine.
        let room = 10usize.saturating_sub(self.rejected.len());
        self.rejected.extend(r.into_iter().take(room));
    }
}

fn progress_bar(reader: &ImportReader) -> ProgressBar {
    let p = reader.progress();
    let (total, unit) = match (p.rows_total, p.bytes_total) {
        (Some(rows), _) => (rows, "rows"),
        (None, Some(bytes)) => (bytes, "bytes"),
        (None, None) => (0, "rows"),
    };
    let bar = ProgressBar::new(total);
    let template = if unit == "bytes" {
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})"
    } else {
        "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}, {eta})"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
    bar
}

fn update(bar: &ProgressBar, p: &modelwatch_formats::Progress) {
    if p.rows_total.is_some() {
        bar.set_position(p.rows_read);
    } else if p.bytes_total.is_some() {
        bar.set_position(p.bytes_read);
    }
}

fn quarantined(file: &str, rejected: &[Rejection]) -> Vec<Quarantined> {
    rejected
        .iter()
        .map(|r| Quarantined {
            rejection: r.clone(),
            row: format!("row {} of {file}", r.index),
        })
        .collect()
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let model = ModelName::new(&args.model)?;
    let format = TableFormat::detect(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let kind = match args.what {
        What::Predictions => RowKind::Predictions,
        What::Labels => RowKind::Labels,
        What::Reference => RowKind::Reference,
    };
    let source = Source::path(&args.file);
    // 8k-row chunks: two in flight between decoder and store keep memory low (a chunk of
    // 25-feature events is about 12 MB; with 16k-row chunks the 1M-row import's peak RSS was
    // 435-441 MB against 375-393 MB, the same CPU), and commits are gathered from several.
    let options = ReadOptions {
        batch_size: IMPORT_CHUNK_ROWS,
        ..ReadOptions::default()
    };
    let mut reader = ImportReader::open(&source, format, kind, args.columns.mapping(), &options)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let bar = progress_bar(&reader);
    let started = Instant::now();
    let file = args.file.display().to_string();
    let version = args.version.clone();
    let store = match &args.target.server {
        Some(_) => None,
        // The process ends with the import: its writer may take more memory than a server's.
        None => Some(store_arg::open(
            &args.target.location()?,
            Credentials::from_env(),
            Mode::Import,
            None,
        )?),
    };
    // Predictions into a model with nothing stored in the embedded store: the per-hour state
    // is folded as the file is read, on the decoder's thread, and written at the end in place
    // of the rescan the first query would otherwise run (`aggregates::ImportFold` says when
    // that is exact).
    let mut fold = match (&store, args.what) {
        (Some(Opened::Embedded(store)), What::Predictions) => ImportFold::start(store, &model)?,
        _ => None,
    };

    // Decode on a thread of its own, one chunk ahead of storage.
    let (tx, rx) =
        crossbeam_channel::bounded::<anyhow::Result<(Converted, modelwatch_formats::Progress)>>(2);
    let decoder = std::thread::spawn(move || {
        let now = Timestamp::now();
        while let Some(chunk) = reader.next_chunk(now, version.as_deref()) {
            if let (Some(f), Ok(c)) = (fold.as_mut(), chunk.as_ref()) {
                f.observe(
                    &c.predictions,
                    &c.prediction_index,
                    &c.labels,
                    &c.label_index,
                );
            }
            let item = chunk
                .map(|c| (c, reader.progress()))
                .map_err(anyhow::Error::from);
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return None;
            }
        }
        fold
    });

    let mut totals = Totals::default();
    let result = match &args.target.server {
        Some(url) => send_to_server(
            url,
            args.target.api_key.as_deref(),
            &model,
            args.what,
            &args,
            &rx,
            &bar,
            &mut totals,
        ),
        None => match store.as_ref().expect("opened without --server") {
            Opened::Embedded(store) => store_locally(
                store,
                &model,
                args.what,
                args.version.as_deref(),
                &file,
                &rx,
                &bar,
                &mut totals,
            ),
            Opened::Shared(store) => store_through_event_log(
                store.as_ref(),
                &model,
                args.what,
                args.version.as_deref(),
                &file,
                &rx,
                &bar,
                &mut totals,
            ),
        },
    };
    drop(rx);
    let fold = decoder.join().ok().flatten();
    bar.finish_and_clear();
    result?;
    // The per-hour state, written only when it is exactly what a rescan would build.
    let state = match (fold, &store) {
        (Some(fold), Some(Opened::Embedded(store))) => {
            let state = fold.finish(
                store,
                &model,
                totals.accepted,
                totals.duplicates,
                totals.labels,
            )?;
            if let ImportState::Skipped(why) = &state {
                tracing::info!(model = %model, "per-hour state left to the first query: {why}");
            }
            Some(state)
        }
        _ => None,
    };
    if totals.rows == 0 {
        // An empty export or a wrong path pattern upstream: a silent 0 would hide it.
        bail!("{file} holds no rows (an empty file, or a header alone): nothing was imported");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {1} {0} rows from {file} into model `{model}` in {secs:.2} s ({2:.0} rows/s): {3} accepted, {4} duplicates, {5} rejected{6}",
        what_name(args.what),
        totals.rows,
        totals.rows as f64 / secs.max(1e-9),
        totals.accepted,
        totals.duplicates,
        totals.rejected_count,
        if totals.labels > 0 { format!(", {} labels", totals.labels) } else { String::new() },
    );
    if let Some(ImportState::Written { hours }) = state {
        println!(
            "  per-hour metrics and drift state built for {hours} hours: queries read it at once"
        );
    }
    for r in &totals.rejected {
        let field = if r.field.is_empty() {
            String::new()
        } else {
            format!(" {}", r.field)
        };
        println!("  rejected row {}{field}: {}", r.index, r.reason);
    }
    if totals.rejected_count > totals.rejected.len() as u64 {
        println!("  … all rejected rows are listed by GET /v1/models/{model}/rejected");
    }
    if totals.accepted == 0 && totals.rows > 0 {
        bail!("no row of {file} was accepted");
    }
    Ok(())
}

fn what_name(w: What) -> &'static str {
    match w {
        What::Predictions => "predictions",
        What::Labels => "labels",
        What::Reference => "reference",
    }
}

type Chunks =
    crossbeam_channel::Receiver<anyhow::Result<(Converted, modelwatch_formats::Progress)>>;

#[allow(clippy::too_many_arguments)]
fn store_locally(
    store: &SqliteStore,
    model: &ModelName,
    what: What,
    version: Option<&str>,
    file: &str,
    rx: &Chunks,
    bar: &ProgressBar,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let mut reference = Vec::new();
    let mut reference_rejected = Vec::new();
    // Chunks are gathered into commits of about STORE_COMMIT_ROWS rows: each commit rewrites
    // every index page it touches (ADR 001), so fewer, larger commits write far less. Each
    // chunk's predictions are encoded for the store's own chunks (its compressed blobs of
    // events) as they arrive, while the decoder reads the next chunk.
    let mut predictions = GatheredPredictions::with_capacity(IMPORT_CHUNK_ROWS);
    let mut labels = LabelBatch::default();
    // The commit before the one being gathered: it is queued (encoded on this thread) before its
    // predecessor is waited for, so the writer stores one commit while this thread encodes the
    // next. Two commits in flight at most bound the memory.
    let mut in_flight: Option<InFlight> = None;
    // The writer idles until the first commit is encoded: the first commits are small, so that
    // it starts early, and grow to STORE_COMMIT_ROWS.
    let mut commit_rows = IMPORT_CHUNK_ROWS;
    let settle = |done: InFlight, totals: &mut Totals| -> anyhow::Result<()> {
        if let Some(p) = done.predictions {
            let out = p.wait()?;
            totals.accepted += out.accepted as u64;
            totals.duplicates += out.duplicates as u64;
            totals.reject(out.rejected);
        }
        if let Some(l) = done.labels {
            let out = l.wait()?;
            match what {
                What::Labels => {
                    totals.accepted += out.accepted as u64;
                    totals.reject(out.rejected);
                }
                _ => totals.labels += out.accepted as u64,
            }
        }
        Ok(())
    };
    let mut flush = |predictions: &mut GatheredPredictions,
                     next_rows: usize,
                     labels: &mut LabelBatch,
                     totals: &mut Totals|
     -> anyhow::Result<()> {
        let gathered =
            std::mem::replace(predictions, GatheredPredictions::with_capacity(next_rows));
        // Labels are queued after the predictions of the same rows, so they find them stored;
        // those of a predictions file are joined to their rows by the writer, no lookup.
        let labels = std::mem::take(labels);
        let has_labels = !labels.rows.is_empty() || !labels.rejected.is_empty();
        let queued = match (gathered.is_empty(), has_labels) {
            (false, true) => {
                let (p, l) = store.submit_gathered_with_labels(model, gathered, labels)?;
                InFlight {
                    predictions: Some(p),
                    labels: Some(l),
                }
            }
            (false, false) => InFlight {
                predictions: Some(store.submit_gathered(model, gathered)?),
                labels: None,
            },
            (true, true) => InFlight {
                predictions: None,
                labels: Some(store.submit_labels(model, labels)?),
            },
            (true, false) => InFlight {
                predictions: None,
                labels: None,
            },
        };
        match in_flight.replace(queued) {
            Some(previous) => settle(previous, totals),
            None => Ok(()),
        }
    };
    for item in rx.iter() {
        let (chunk, progress) = item?;
        let rejected = quarantined(file, &chunk.rejected);
        totals.rows +=
            (chunk.predictions.len() + chunk.reference.len() + chunk.rejected.len()) as u64;
        // Each row keeps its place in the file (as the reader numbers the rows it refuses), so
        // that a row the store refuses is named by it: counting only the converted rows named
        // every row after a refused one a row early.
        match what {
            What::Predictions => {
                predictions.push_rows(chunk.prediction_index.into_iter().zip(chunk.predictions))?;
                predictions.push_rejected(rejected);
                labels
                    .rows
                    .extend(chunk.label_index.into_iter().zip(chunk.labels));
            }
            What::Labels => {
                totals.rows += chunk.labels.len() as u64;
                labels
                    .rows
                    .extend(chunk.label_index.into_iter().zip(chunk.labels));
                labels.rejected.extend(rejected);
            }
            What::Reference => {
                // A reference replaces the previous one whole, so it is stored in one job. Each
                // row keeps its place in the file: a row the store refuses is named as the
                // reader names the rows it refuses.
                reference.extend(chunk.reference_index.into_iter().zip(chunk.reference));
                reference_rejected.extend(rejected);
            }
        }
        if predictions.len() + labels.rows.len() >= commit_rows {
            commit_rows = (commit_rows * 2).min(STORE_COMMIT_ROWS);
            flush(&mut predictions, commit_rows, &mut labels, totals)?;
        }
        update(bar, &progress);
    }
    flush(&mut predictions, 0, &mut labels, totals)?;
    if let Some(last) = in_flight.take() {
        settle(last, totals)?;
    }
    if what == What::Reference {
        let out = store.put_reference(model, version, reference, reference_rejected)?;
        totals.accepted += out.rows as u64;
        totals.reject(out.rejected);
    }
    Ok(())
}

/// Stores the file's rows through the event log any store has (a shared store: ClickHouse), in
/// batches of [`EVENT_LOG_BATCH_ROWS`] rows; a batch's labels after its predictions, so that
/// those of a predictions file find their rows. The embedded store's bulk path
/// ([`store_locally`]) is faster but its own.
#[allow(clippy::too_many_arguments)]
fn store_through_event_log(
    store: &dyn Store,
    model: &ModelName,
    what: What,
    version: Option<&str>,
    file: &str,
    rx: &Chunks,
    bar: &ProgressBar,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let mut reference = Vec::new();
    let mut reference_rejected = Vec::new();
    let mut predictions = PredictionBatch::default();
    let mut labels = LabelBatch::default();
    let flush = |predictions: &mut PredictionBatch,
                 labels: &mut LabelBatch,
                 totals: &mut Totals|
     -> anyhow::Result<()> {
        let batch = std::mem::take(predictions);
        if !batch.rows.is_empty() || !batch.rejected.is_empty() {
            let out = store.ingest_predictions(model, batch)?;
            totals.accepted += out.accepted as u64;
            totals.duplicates += out.duplicates as u64;
            totals.reject(out.rejected);
        }
        let batch = std::mem::take(labels);
        if !batch.rows.is_empty() || !batch.rejected.is_empty() {
            let out = store.ingest_labels(model, batch)?;
            match what {
                What::Labels => {
                    totals.accepted += out.accepted as u64;
                    totals.reject(out.rejected);
                }
                _ => totals.labels += out.accepted as u64,
            }
        }
        Ok(())
    };
    for item in rx.iter() {
        let (chunk, progress) = item?;
        let rejected = quarantined(file, &chunk.rejected);
        totals.rows +=
            (chunk.predictions.len() + chunk.reference.len() + chunk.rejected.len()) as u64;
        // Rows keep their place in the file, as in `store_locally`.
        match what {
            What::Predictions => {
                predictions
                    .rows
                    .extend(chunk.prediction_index.into_iter().zip(chunk.predictions));
                predictions.rejected.extend(rejected);
                labels
                    .rows
                    .extend(chunk.label_index.into_iter().zip(chunk.labels));
            }
            What::Labels => {
                totals.rows += chunk.labels.len() as u64;
                labels
                    .rows
                    .extend(chunk.label_index.into_iter().zip(chunk.labels));
                labels.rejected.extend(rejected);
            }
            What::Reference => {
                reference.extend(chunk.reference_index.into_iter().zip(chunk.reference));
                reference_rejected.extend(rejected);
            }
        }
        if predictions.rows.len() + labels.rows.len() >= EVENT_LOG_BATCH_ROWS {
            flush(&mut predictions, &mut labels, totals)?;
        }
        update(bar, &progress);
    }
    flush(&mut predictions, &mut labels, totals)?;
    if what == What::Reference {
        let out = store.put_reference(model, version, reference, reference_rejected)?;
        totals.accepted += out.rows as u64;
        totals.reject(out.rejected);
    }
    Ok(())
}

/// Rows (predictions plus labels) per call of the event log in [`store_through_event_log`]: a
/// few MB of JSON per insert for ClickHouse, whose inserts are fastest in large blocks.
const EVENT_LOG_BATCH_ROWS: usize = 50_000;

/// One commit's jobs, queued and not yet answered.
struct InFlight {
    predictions: Option<PendingPredictions>,
    labels: Option<PendingLabels>,
}

const IMPORT_CHUNK_ROWS: usize = 8_192;
/// Rows (predictions plus labels) per store commit during an import.
const STORE_COMMIT_ROWS: usize = 131_072;

/// Rows per request to a server: well under the server's default batch limit (100,000).
const SERVER_BATCH_ROWS: usize = 20_000;

#[allow(clippy::too_many_arguments)]
fn send_to_server(
    url: &str,
    api_key: Option<&str>,
    model: &ModelName,
    what: What,
    args: &ImportArgs,
    rx: &Chunks,
    bar: &ProgressBar,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()?;
    let base = url.trim_end_matches('/');
    if what == What::Reference {
        // The server converts the file itself: send it as it is, with the column mapping.
        let body = std::fs::read(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?;
        let mut req = client
            .put(format!("{base}/v1/models/{model}/reference"))
            .query(&reference_query(args))
            .header("content-type", content_type(&args.file))
            .body(body);
        if let Some(k) = api_key {
            req = req.bearer_auth(k);
        }
        let out = check(req.send().with_context(|| format!("sending to {base}"))?)?;
        totals.rows += out["rows"].as_u64().unwrap_or(0)
            + out["rejected"].as_array().map_or(0, |r| r.len() as u64);
        totals.accepted += out["rows"].as_u64().unwrap_or(0);
        return Ok(());
    }
    let post = |path: &str, lines: &[String]| -> anyhow::Result<serde_json::Value> {
        let mut req = client
            .post(format!("{base}/v1/models/{model}/{path}"))
            .header("content-type", "application/x-ndjson")
            .body(lines.join("\n"));
        if let Some(k) = api_key {
            req = req.bearer_auth(k);
        }
        check(req.send().with_context(|| format!("sending to {base}"))?)
    };
    for item in rx.iter() {
        let (chunk, progress) = item?;
        totals.rows += (chunk.predictions.len() + chunk.rejected.len()) as u64;
        totals.reject(chunk.rejected);
        // The server numbers a batch's rows from 0; `places` gives each its place in the file.
        let (path, lines, places): (&str, Vec<String>, &[usize]) = match what {
            What::Predictions => (
                "predictions",
                chunk
                    .predictions
                    .iter()
                    .map(|e| serde_json::to_string(e).expect("serializes"))
                    .collect(),
                &chunk.prediction_index,
            ),
            _ => {
                totals.rows += chunk.labels.len() as u64;
                (
                    "labels",
                    chunk
                        .labels
                        .iter()
                        .map(|e| serde_json::to_string(e).expect("serializes"))
                        .collect(),
                    &chunk.label_index,
                )
            }
        };
        for (part, places) in lines
            .chunks(SERVER_BATCH_ROWS)
            .zip(places.chunks(SERVER_BATCH_ROWS))
        {
            let out = post(path, part)?;
            totals.accepted += out["accepted"].as_u64().unwrap_or(0);
            totals.duplicates += out["duplicates"].as_u64().unwrap_or(0);
            let rejected: Vec<Rejection> = out["rejected"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| {
                            let index = r["index"].as_u64().unwrap_or(0) as usize;
                            Rejection::new(
                                places.get(index).copied().unwrap_or(index),
                                r["field"].as_str().unwrap_or(""),
                                r["reason"].as_str().unwrap_or(""),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            totals.reject(rejected);
        }
        if what == What::Predictions && !chunk.labels.is_empty() {
            let lines: Vec<String> = chunk
                .labels
                .iter()
                .map(|e| serde_json::to_string(e).expect("serializes"))
                .collect();
            for part in lines.chunks(SERVER_BATCH_ROWS) {
                totals.labels += post("labels", part)?["accepted"].as_u64().unwrap_or(0);
            }
        }
        update(bar, &progress);
    }
    Ok(())
}

fn reference_query(args: &ImportArgs) -> Vec<(&'static str, String)> {
    let c = &args.columns;
    let mut q = Vec::new();
    let mut add = |k: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    };
    add("version", &args.version);
    add("prediction_col", &c.prediction_col);
    add("score_col", &c.score_col);
    add("label_col", &c.label_col);
    add("scores_prefix", &c.scores_prefix);
    if !c.exclude.is_empty() {
        q.push(("exclude", c.exclude.join(",")));
    }
    q
}

fn content_type(path: &std::path::Path) -> &'static str {
    match TableFormat::detect(path) {
        Ok(TableFormat::Parquet) => "application/vnd.apache.parquet",
        Ok(TableFormat::Ndjson) => "application/x-ndjson",
        _ => "text/csv",
    }
}

fn check(r: reqwest::blocking::Response) -> anyhow::Result<serde_json::Value> {
    let status = r.status();
    let body: serde_json::Value = r.json().unwrap_or(serde_json::Value::Null);
    if status.is_success() || status.as_u16() == 422 {
        return Ok(body);
    }
    let msg = body["error"]["message"].as_str().unwrap_or("no message");
    bail!("server answered {status}: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of `csv` as the decoder thread sends them.
    fn chunks(csv: &std::path::Path, kind: RowKind) -> Chunks {
        let options = ReadOptions {
            batch_size: 100,
            ..ReadOptions::default()
        };
        let mut reader = ImportReader::open(
            &Source::path(csv),
            TableFormat::Csv,
            kind,
            ColumnMapping::default(),
            &options,
        )
        .unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        while let Some(chunk) = reader.next_chunk(Timestamp::now(), None) {
            tx.send(chunk.map(|c| (c, reader.progress())).map_err(Into::into))
                .unwrap();
        }
        rx
    }

    /// The path a shared store takes stores what the embedded store's bulk path stores, with
    /// the same counts and the same rows refused (named by their place in the file).
    #[test]
    fn the_event_log_path_stores_what_the_bulk_path_stores() {
        let tmp = tempfile::tempdir().unwrap();
        let csv = tmp.path().join("p.csv");
        let mut text =
            String::from("request_id,timestamp,model_version,x,prediction,score,label\n");
        for i in 0..450 {
            let score = if i == 7 {
                "high".to_owned()
            } else {
                format!("0.{}", i % 10)
            };
            let id = if i == 300 {
                "r3".to_owned()
            } else {
                format!("r{i}")
            };
            text += &format!(
                "{id},2026-11-01T{:02}:00:00Z,v1,{i},{},{score},{}\n",
                i % 24,
                i % 2,
                i % 3 % 2
            );
        }
        std::fs::write(&csv, text).unwrap();
        let model = ModelName::new("m").unwrap();
        let file = csv.display().to_string();
        let bar = ProgressBar::hidden();

        let bulk = SqliteStore::open_for_import(tmp.path().join("bulk")).unwrap();
        let mut bulk_totals = Totals::default();
        let rx = chunks(&csv, RowKind::Predictions);
        store_locally(
            &bulk,
            &model,
            What::Predictions,
            None,
            &file,
            &rx,
            &bar,
            &mut bulk_totals,
        )
        .unwrap();

        let generic = SqliteStore::open(tmp.path().join("generic")).unwrap();
        let mut totals = Totals::default();
        let rx = chunks(&csv, RowKind::Predictions);
        store_through_event_log(
            &generic,
            &model,
            What::Predictions,
            None,
            &file,
            &rx,
            &bar,
            &mut totals,
        )
        .unwrap();

        let key = |t: &Totals| {
            (
                t.rows,
                t.accepted,
                t.duplicates,
                t.labels,
                t.rejected_count,
                format!("{:?}", t.rejected),
            )
        };
        assert_eq!(key(&totals), key(&bulk_totals));
        // The bad score, and the id repeated within one batch.
        assert_eq!(
            (totals.accepted, totals.duplicates, totals.rejected_count),
            (448, 0, 2)
        );
        let summary = |s: &SqliteStore| {
            let m = s.model(&model).unwrap().unwrap();
            (
                m.predictions,
                m.labels,
                m.labelled,
                m.rejected,
                format!("{:?}", m.schema),
            )
        };
        assert_eq!(summary(&generic), summary(&bulk));
    }
}
