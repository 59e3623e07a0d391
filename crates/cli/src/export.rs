//! `modelwatch export`: stored predictions or labels to a Parquet file anyone can read.

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use modelwatch_core::ModelName;
use modelwatch_formats::{LabelWriter, PredictionWriter};
use modelwatch_store::{SqliteStore, Store};
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
    /// Data directory of the embedded store (default ./modelwatch-data)
    #[arg(long, default_value = "modelwatch-data")]
    data: PathBuf,
}

const PAGE: usize = 65_536;

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let model = ModelName::new(&args.model)?;
    if args.out.extension().and_then(|e| e.to_str()) != Some("parquet") {
        bail!(
            "--out {}: only Parquet is written; name the file *.parquet",
            args.out.display()
        );
    }
    let store = SqliteStore::open(&args.data)
        .with_context(|| format!("opening the data directory {}", args.data.display()))?;
    let Some(summary) = store.model(&model)? else {
        bail!("model `{model}` does not exist in {}", args.data.display());
    };
    let total = match args.what {
        What::Predictions => summary.predictions,
        What::Labels => summary.labels,
    };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({eta})",
        )
        .expect("valid template"),
    );
    let mut after = None;
    let written = match args.what {
        What::Predictions => {
            let mut w = PredictionWriter::create(&args.out, &summary.schema)?;
            loop {
                let page = store.predictions(&model, after, PAGE)?;
                w.write(&page.items)?;
                bar.inc(page.items.len() as u64);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            w.finish()?
        }
        What::Labels => {
            let mut w = LabelWriter::create(&args.out)?;
            loop {
                let page = store.labels(&model, after, PAGE)?;
                w.write(&page.items)?;
                bar.inc(page.items.len() as u64);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
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
