//! `modelwatch export`: stored predictions or labels to a Parquet file anyone can read, from
//! the data directory or, with `--server`, from a running server (which holds the directory's
//! lock) by paging through its read endpoints.

use crate::store_arg::{self, Credentials, Mode, Opened};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use modelwatch_core::{
    parse_label_row, parse_prediction_row, IngestLimits, LabelEvent, ModelName, PredictionEvent,
    Rejection, Schema, Timestamp,
};
use modelwatch_formats::{LabelWriter, PredictionWriter};
use modelwatch_store::{Cursor, Page};
use serde_json::Value;
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum What {
    Predictions,
    Labels,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    what: What,
    /// Model to export
    #[arg(long)]
    model: String,
    /// Output file (.parquet)
    #[arg(long)]
    out: PathBuf,
    /// Where the rows are: --data DIR, --store URL, or --server URL (which pages through
    /// GET /v1/models/{model}/predictions or /labels)
    #[command(flatten)]
    target: crate::args::Target,
}

/// Where the rows come from: a store (the data directory, ClickHouse), or a server's paged
/// read endpoints.
enum Source {
    Data(Opened),
    Server(RemoteStore),
}

impl Source {
    fn predictions(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
    ) -> anyhow::Result<Page<PredictionEvent>> {
        match self {
            Source::Data(s) => Ok(s.store().predictions(model, after, PAGE)?),
            Source::Server(r) => r.page(model, "predictions", after, |row, i| {
                parse_prediction_row(row, i, Timestamp::now(), &READ_BACK)
            }),
        }
    }

    fn labels(
        &self,
        model: &ModelName,
        after: Option<&Cursor>,
    ) -> anyhow::Result<Page<LabelEvent>> {
        match self {
            Source::Data(s) => Ok(s.store().labels(model, after, PAGE)?),
            Source::Server(r) => r.page(model, "labels", after, |row, i| {
                parse_label_row(row, i, Timestamp::now(), &READ_BACK)
            }),
        }
    }
}

/// Stored rows were checked when they arrived; reading them back must not refuse any.
const READ_BACK: IngestLimits = IngestLimits {
    max_features: usize::MAX,
    max_tags: usize::MAX,
    max_request_id_len: usize::MAX,
};

/// A running server's read endpoints.
struct RemoteStore {
    url: String,
    client: reqwest::blocking::Client,
    api_key: Option<String>,
}

impl RemoteStore {
    fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let mut req = self.client.get(format!("{}{path}", self.url)).query(query);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        let r = req.send().with_context(|| format!("asking {}", self.url))?;
        let status = r.status();
        let body: Value = r.json().unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body["error"]["message"].as_str().unwrap_or("no message");
            bail!("server answered {status} for {path}: {msg}");
        }
        Ok(body)
    }

    /// One page of `GET /v1/models/{model}/{kind}`: each row read back by the ingest parser
    /// (the rows are the contract's events, as the server stored them).
    fn page<T>(
        &self,
        model: &ModelName,
        kind: &str,
        after: Option<&Cursor>,
        parse: impl Fn(&str, usize) -> Result<T, Rejection>,
    ) -> anyhow::Result<Page<T>> {
        let mut query = vec![("limit", SERVER_PAGE.to_string())];
        if let Some(a) = after {
            query.push(("after", a.to_string()));
        }
        let body = self.get(&format!("/v1/models/{model}/{kind}"), &query)?;
        let rows = body[kind].as_array().cloned().unwrap_or_default();
        let items = rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                parse(&row.to_string(), i).map_err(|r| {
                    anyhow::anyhow!(
                        "row {i} of a page of {kind}: field `{}`: {}",
                        r.field,
                        r.reason
                    )
                })
            })
            .collect::<anyhow::Result<Vec<T>>>()?;
        Ok(Page {
            items,
            // A string; a number from a server of an earlier release, passed back the same.
            next: match &body["next"] {
                Value::String(token) => Some(Cursor::new(token.as_str())),
                Value::Number(n) => Some(Cursor::new(n.to_string())),
                _ => None,
            },
        })
    }
}

const PAGE: usize = 65_536;
/// The server's largest page (`GET .../predictions?limit=` is at most 10,000).
const SERVER_PAGE: usize = 10_000;

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let model = ModelName::new(&args.model)?;
    if args.out.extension().and_then(|e| e.to_str()) != Some("parquet") {
        bail!(
            "--out {}: only Parquet is written; name the file *.parquet",
            args.out.display()
        );
    }
    let (source, schema, total) = match &args.target.server {
        None => {
            let location = args.target.location()?;
            let store = store_arg::open(&location, Credentials::from_env(), Mode::Service, None)?;
            let Some(summary) = store.store().model(&model)? else {
                bail!("model `{model}` does not exist in {}", location.describe());
            };
            let total = match args.what {
                What::Predictions => summary.predictions,
                What::Labels => summary.labels,
            };
            (Source::Data(store), summary.schema, total)
        }
        Some(url) => {
            let remote = RemoteStore {
                url: url.trim_end_matches('/').to_owned(),
                client: reqwest::blocking::Client::builder()
                    .timeout(std::time::Duration::from_secs(300))
                    .build()?,
                api_key: args.target.api_key.clone(),
            };
            let summary = remote.get(&format!("/v1/models/{model}"), &[])?;
            let schema: Schema = serde_json::from_value(summary["schema"].clone())
                .context("reading the model's schema from the server")?;
            let total = match args.what {
                What::Predictions => summary["predictions"].as_u64(),
                What::Labels => summary["labels"].as_u64(),
            };
            (Source::Server(remote), schema, total.unwrap_or(0))
        }
    };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({eta})",
        )
        .expect("valid template"),
    );
    let written = match args.what {
        What::Predictions => {
            let mut w = PredictionWriter::create(&args.out, &schema)?;
            copy_pages(
                &bar,
                |after| source.predictions(&model, after),
                |rows| {
                    // The served predictions: a file has no role column, and an import stores
                    // what it reads as served (ADR 011). Shadows stay readable over the API.
                    if rows.iter().all(|e| e.role.is_served()) {
                        return w.write(rows);
                    }
                    let served: Vec<_> = rows
                        .iter()
                        .filter(|e| e.role.is_served())
                        .cloned()
                        .collect();
                    w.write(&served)
                },
            )?;
            w.finish()?
        }
        What::Labels => {
            let mut w = LabelWriter::create(&args.out)?;
            copy_pages(
                &bar,
                |after| source.labels(&model, after),
                |rows| w.write(rows),
            )?;
            w.finish()?
        }
    };
    bar.finish_and_clear();
    println!(
        "wrote {written} rows of model `{model}` to {}",
        args.out.display()
    );
    Ok(())
}

/// Reads every page from the first on and hands each page's rows to `write`.
fn copy_pages<T, E: Into<anyhow::Error>>(
    bar: &ProgressBar,
    mut page: impl FnMut(Option<&Cursor>) -> anyhow::Result<Page<T>>,
    mut write: impl FnMut(&[T]) -> Result<(), E>,
) -> anyhow::Result<()> {
    let mut after = None;
    loop {
        let p = page(after.as_ref())?;
        write(&p.items).map_err(Into::into)?;
        bar.inc(p.items.len() as u64);
        match p.next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}
