//! `modelwatch migrate --data DIR --to URL|DIR`: copies an embedded store into another store
//! (ClickHouse, or another data directory), resumably, and checks the counts at the end.
//!
//! What is copied, per model: every prediction (served and shadow) and label in arrival order,
//! with its event time; the KPI points; the reference datasets (oldest upload first, so that
//! the target chooses the same one for version-less queries); a declared schema; the
//! retention; the settings a user made (declared task, fairness and service-level settings:
//! `aggregates::MODEL_SETTINGS`); the quarantine (in order within each kind; a reference's
//! refused rows go with the last reference upload, the only way a store takes them). Everything
//! else the store keeps (per-hour aggregates, drift sketches, fits) is a cache the target
//! rebuilds from the events.
//!
//! What cannot be kept: arrival *times*. The store stamps a row's `received_at` when it takes
//! it, and the `Store` interface has no way to pass another, so the target's arrival times
//! are those of the copy (arrival *order* is kept: rows are read and written in the source's
//! page order, which is its arrival order). No report reads a prediction's or a label's
//! arrival time (label delays are label event time minus prediction event time, both kept);
//! the model's `created_at` and a quarantined row's `received_at` (which starts its 30 days)
//! are those of the copy too.
//!
//! Resumable: after each batch the target has acknowledged, the cursor of the source's last
//! page copied is written to `migrate-progress.json` in the source data directory, per model
//! and stream. A rerun continues from it. The batch in flight when a run stopped is copied
//! again: harmless, because ingest is idempotent on request id (a prediction already there is
//! a duplicate, not stored twice; a label replaces itself with the same value; a KPI point is
//! keyed by name and time).

use crate::store_arg::{self, Credentials, Location, Mode};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use modelwatch_core::ModelName;
use modelwatch_store::{
    AggregateWrite, Catalog, DerivedState, EventLog, LabelBatch, ModelSummary, PredictionBatch,
    Quarantined, ScanRange, SqliteStore, Store,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// Data directory of the embedded store to copy (not changed, but for the progress file
    /// written into it); no server may be running on it
    #[arg(long, default_value = "modelwatch-data")]
    data: PathBuf,
    /// Where to copy it: clickhouse://HOST:PORT[,HOST:PORT]/DATABASE (clickhouses:// for TLS;
    /// user and password from MODELWATCH_CLICKHOUSE_USER and MODELWATCH_CLICKHOUSE_PASSWORD),
    /// or another data directory
    #[arg(long)]
    to: String,
    /// Only this model (repeatable); default: every model
    #[arg(long = "model")]
    models: Vec<String>,
    /// Forget the progress of an earlier run and copy everything again
    #[arg(long)]
    restart: bool,
    /// Rows read from the source and written to the target per batch
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    batch_rows: u32,
}

/// The file in the source data directory that says how far a migration got.
const PROGRESS_FILE: &str = "migrate-progress.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// The target it is the progress of (its directory or URL).
    target: String,
    models: BTreeMap<String, ModelProgress>,
}

/// How far one model got: per stream, the cursor of the last source page the target
/// acknowledged, and whether the stream is done.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ModelProgress {
    predictions_after: Option<String>,
    predictions_done: bool,
    catalog_done: bool,
    labels_after: Option<String>,
    labels_done: bool,
    kpis_done: bool,
    quarantine_done: bool,
}

impl ModelProgress {
    fn done(&self) -> bool {
        self.predictions_done
            && self.catalog_done
            && self.labels_done
            && self.kpis_done
            && self.quarantine_done
    }
}

/// The progress file, rewritten whole (write, sync, rename) so that a kill leaves the old
/// or the new one, never half of one.
struct ProgressFile {
    path: PathBuf,
    progress: Progress,
}

impl ProgressFile {
    fn load(dir: &Path, target: &str, restart: bool) -> anyhow::Result<ProgressFile> {
        let path = dir.join(PROGRESS_FILE);
        let fresh = || Progress {
            target: target.to_owned(),
            models: BTreeMap::new(),
        };
        let progress = match std::fs::read_to_string(&path) {
            Ok(_) if restart => fresh(),
            Ok(text) => {
                let p: Progress = serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", path.display()))?;
                if p.target != target {
                    bail!(
                        "{} is the progress of a migration to {}, not to {target}: pass --restart \
                         to start over into {target}",
                        path.display(),
                        p.target
                    );
                }
                p
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(ProgressFile { path, progress })
    }

    fn model(&self, model: &str) -> ModelProgress {
        self.progress.models.get(model).cloned().unwrap_or_default()
    }

    fn save(&mut self, model: &str, p: &ModelProgress) -> anyhow::Result<()> {
        use std::io::Write;
        self.progress.models.insert(model.to_owned(), p.clone());
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.progress).expect("progress serializes");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().with_context(|| format!("writing {}", self.path.display()))
    }
}

/// What one run copied of one model.
#[derive(Default)]
struct Copied {
    predictions: u64,
    duplicates: u64,
    labels: u64,
    kpis: u64,
    reference_rows: u64,
    quarantined: u64,
    /// Quarantined rows of a kind the store cannot take back (reference rows of a model
    /// whose references are all gone).
    quarantined_skipped: u64,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    if !args.data.is_dir() {
        bail!(
            "data directory {} does not exist: pass --data DIR, the embedded store to copy",
            args.data.display()
        );
    }
    let to = Location::url_or_dir("--to", &args.to)?;
    if let Location::Data(dir) = &to {
        if dir.canonicalize().ok() == Some(args.data.canonicalize()?) {
            bail!("--to {} is the data directory being copied: name another directory or a ClickHouse URL", dir.display());
        }
    }
    let source = SqliteStore::open(&args.data).with_context(|| {
        format!(
            "opening the data directory {} (stop the server that uses it first: a migration \
             reads a store no one is writing)",
            args.data.display()
        )
    })?;
    let target_name = to.describe();
    let mut progress = ProgressFile::load(&args.data, &target_name, args.restart)?;
    // The source accepted every feature it holds; the copy must not refuse one of them.
    let target = store_arg::open(&to, Credentials::from_env(), Mode::Import, Some(usize::MAX))?;
    let target = target.store();

    let all = source.list_models()?;
    let models: Vec<ModelSummary> = if args.models.is_empty() {
        all
    } else {
        let mut chosen = Vec::new();
        for name in &args.models {
            match all.iter().find(|m| &m.name == name) {
                Some(m) => chosen.push(m.clone()),
                None => bail!("--model {name}: no such model in {}", args.data.display()),
            }
        }
        chosen
    };

    // The bar counts the prediction and label rows still to copy.
    let remaining: u64 = models
        .iter()
        .map(|m| {
            let p = progress.model(&m.name);
            let shadows: u64 = m.shadow_versions.iter().map(|v| v.predictions).sum();
            (if p.predictions_done {
                0
            } else {
                m.predictions + shadows
            }) + (if p.labels_done { 0 } else { m.labels })
        })
        .sum();
    let bar = ProgressBar::new(remaining);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}, {eta}) {msg}",
        )
        .expect("valid template"),
    );
    let batch = args.batch_rows as usize;
    let mut lines = Vec::new();
    for summary in &models {
        let model = ModelName::new(&summary.name)?;
        let mut p = progress.model(&summary.name);
        if p.done() {
            lines.push(format!(
                "model `{model}`: already copied (per {}), nothing to copy",
                progress.path.display()
            ));
            continue;
        }
        bar.set_message(format!("model {model}"));
        let copied = copy_model(
            &source,
            target,
            summary,
            &model,
            &mut p,
            &mut progress,
            &bar,
            batch,
        )
        .with_context(|| format!("copying model `{model}` to {target_name}"))?;
        let mut line = format!(
            "model `{model}`: copied {} predictions ({} already there), {} labels, {} KPI points, {} reference rows, {} quarantined rows",
            copied.predictions, copied.duplicates, copied.labels, copied.kpis, copied.reference_rows, copied.quarantined
        );
        if copied.quarantined_skipped > 0 {
            line += &format!(
                " ({} quarantined reference rows not copied: the model has no reference left to upload them with)",
                copied.quarantined_skipped
            );
        }
        lines.push(line);
    }
    bar.finish_and_clear();
    for line in lines {
        println!("{line}");
    }
    // Into ClickHouse the alert state moves too (a data directory takes the file as it is).
    if let Some(alerts) = store_arg::shared_alert_state(&to, Credentials::from_env())? {
        let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
        println!(
            "{}",
            crate::migrate_alerts::copy(&args.data, alerts.as_ref(), &names)?
        );
    }
    verify(&source, target, &models, &target_name)
}

#[allow(clippy::too_many_arguments)]
fn copy_model(
    source: &SqliteStore,
    target: &dyn Store,
    summary: &ModelSummary,
    model: &ModelName,
    p: &mut ModelProgress,
    progress: &mut ProgressFile,
    bar: &ProgressBar,
    batch: usize,
) -> anyhow::Result<Copied> {
    let mut copied = Copied::default();
    let name = summary.name.as_str();
    // Predictions first: they create the model in the target, and the schema a declared one
    // would refuse rows stored before it was declared.
    while !p.predictions_done {
        let after = p
            .predictions_after
            .clone()
            .map(modelwatch_store::Cursor::new);
        let page = source.predictions(model, after.as_ref(), batch)?;
        let n = page.items.len() as u64;
        if n > 0 {
            let rows = page.items.into_iter().enumerate().collect();
            let out = target.ingest_predictions(model, PredictionBatch::new(rows))?;
            refused("predictions", &out.rejected)?;
            copied.predictions += out.accepted as u64;
            copied.duplicates += out.duplicates as u64;
        }
        match page.next {
            Some(next) => p.predictions_after = Some(next.as_str().to_owned()),
            None => p.predictions_done = true,
        }
        progress.save(name, p)?;
        bar.inc(n);
    }
    if !p.catalog_done {
        let (rows, quarantined, skipped) = copy_catalog(source, target, summary, model)?;
        copied.reference_rows = rows;
        copied.quarantined += quarantined;
        copied.quarantined_skipped += skipped;
        p.catalog_done = true;
        progress.save(name, p)?;
    }
    while !p.labels_done {
        let after = p.labels_after.clone().map(modelwatch_store::Cursor::new);
        let page = source.labels(model, after.as_ref(), batch)?;
        let n = page.items.len() as u64;
        if n > 0 {
            let rows = page.items.into_iter().enumerate().collect();
            let out = target.ingest_labels(
                model,
                LabelBatch {
                    rows,
                    rejected: Vec::new(),
                },
            )?;
            refused("labels", &out.rejected)?;
            copied.labels += out.accepted as u64;
        }
        match page.next {
            Some(next) => p.labels_after = Some(next.as_str().to_owned()),
            None => p.labels_done = true,
        }
        progress.save(name, p)?;
        bar.inc(n);
    }
    if !p.kpis_done {
        // Keyed by (name, time): a rerun replaces each point with itself.
        let points = source.kpis(model, None, &ScanRange::default())?;
        for part in points.chunks(batch) {
            let rows = part.iter().cloned().enumerate().collect();
            let out = target.ingest_kpis(model, rows, Vec::new())?;
            refused("KPI points", &out.rejected)?;
            copied.kpis += part.len() as u64;
        }
        p.kpis_done = true;
        progress.save(name, p)?;
    }
    if !p.quarantine_done {
        // Newest first from the source: written oldest first, as they came. Not idempotent
        // (the quarantine is a log), so written in one call per kind and marked done at once.
        let mut rows = source.rejected(model, summary.rejected as usize)?;
        rows.reverse();
        // A reference's refused rows went with the last reference upload (`copy_catalog`).
        rows.retain(|r| r.kind != "reference");
        let mut by_kind: BTreeMap<String, Vec<Quarantined>> = BTreeMap::new();
        for r in rows {
            let mut rejection = modelwatch_core::Rejection::new(r.index, r.field, r.reason);
            rejection.request_id = r.request_id;
            by_kind.entry(r.kind).or_default().push(Quarantined {
                rejection,
                row: r.row,
            });
        }
        for (kind, rows) in by_kind {
            let n = rows.len() as u64;
            match kind.as_str() {
                "predictions" => {
                    target.ingest_predictions(
                        model,
                        PredictionBatch {
                            rejected: rows,
                            ..PredictionBatch::default()
                        },
                    )?;
                }
                "labels" => {
                    target.ingest_labels(
                        model,
                        LabelBatch {
                            rows: Vec::new(),
                            rejected: rows,
                        },
                    )?;
                }
                "kpis" => {
                    target.ingest_kpis(model, Vec::new(), rows)?;
                }
                _ => {
                    copied.quarantined_skipped += n;
                    continue;
                }
            }
            copied.quarantined += n;
        }
        p.quarantine_done = true;
        progress.save(name, p)?;
    }
    Ok(copied)
}

/// The catalog of one model, after its predictions: its references (oldest upload first), a
/// declared schema, its retention, its settings. The quarantined rows of reference uploads go
/// with the last upload, the only way the store takes them (in the same call, so a rerun never
/// repeats them). Returns the reference rows copied, the quarantined rows copied and those
/// that could not be (no reference left to upload them with).
fn copy_catalog(
    source: &SqliteStore,
    target: &dyn Store,
    summary: &ModelSummary,
    model: &ModelName,
) -> anyhow::Result<(u64, u64, u64)> {
    let mut references = summary.reference.clone();
    references.sort_by_key(|r| r.uploaded_at);
    let mut refused_rows: Vec<Quarantined> = source
        .rejected(model, summary.rejected as usize)?
        .into_iter()
        .rev()
        .filter(|r| r.kind == "reference")
        .map(|r| {
            let mut rejection = modelwatch_core::Rejection::new(r.index, r.field, r.reason);
            rejection.request_id = r.request_id;
            Quarantined {
                rejection,
                row: r.row,
            }
        })
        .collect();
    let (mut copied, mut quarantined) = (0, 0);
    let last = references.len();
    for (n, r) in references.into_iter().enumerate() {
        let version = (!r.version.is_empty()).then_some(r.version.as_str());
        let rows = source.reference_rows(model, version)?;
        let rows = rows.into_iter().enumerate().collect();
        let with = if n + 1 == last {
            std::mem::take(&mut refused_rows)
        } else {
            Vec::new()
        };
        let sent = with.len();
        let out = target.put_reference(model, version, rows, with)?;
        // The quarantined rows sent come back as rejections; any more is a refusal.
        if out.rejected.len() > sent {
            bail!(
                "the target refused {} reference rows the source holds (version {})",
                out.rejected.len() - sent,
                version.unwrap_or("all")
            );
        }
        copied += out.rows as u64;
        quarantined += sent as u64;
    }
    // Declared after the rows: rows stored before the source's declaration stay accepted.
    if summary.schema.declared {
        target.declare_schema(model, summary.schema.clone())?;
    }
    if target.model(model)?.is_none() {
        // Nothing above made it (a model with labels or KPIs only): nothing below can be
        // written to a model the target does not have.
        bail!("model `{model}` has no predictions, reference or declared schema to create it in the target with");
    }
    target.set_retention(model, summary.retention_days)?;
    for kind in modelwatch_engine::aggregates::MODEL_SETTINGS {
        let rows = source.aggregates(model, kind, &ScanRange::default())?;
        if !rows.is_empty() {
            target.put_aggregates(
                model,
                AggregateWrite {
                    kind: kind.to_owned(),
                    put: rows,
                    ..AggregateWrite::default()
                },
            )?;
        }
    }
    // A declared task changes every hour's aggregates: built again from the copied events.
    target.invalidate_aggregates(model)?;
    Ok((copied, quarantined, refused_rows.len() as u64))
}

/// Fails when the target refused rows the source holds: it names the first.
fn refused(what: &str, rejected: &[modelwatch_core::Rejection]) -> anyhow::Result<()> {
    if let Some(r) = rejected.first() {
        bail!(
            "the target refused {} {what} the source holds; the first, request id {}: field `{}`: {}",
            rejected.len(),
            r.request_id.as_deref().unwrap_or("-"),
            r.field,
            r.reason
        );
    }
    Ok(())
}

/// Prints, per model, the source's and the target's counts; fails naming every model and
/// count that differ.
fn verify(
    source: &SqliteStore,
    target: &dyn Store,
    models: &[ModelSummary],
    target_name: &str,
) -> anyhow::Result<()> {
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut mismatches = Vec::new();
    for before in models {
        let model = ModelName::new(&before.name)?;
        // The source's summary of the start still holds: this process has its lock.
        let after = target.model(&model)?;
        let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for v in &before.versions {
            counts
                .entry(format!("predictions {} served", v.version))
                .or_default()
                .0 = v.predictions;
        }
        for v in &before.shadow_versions {
            counts
                .entry(format!("predictions {} shadow", v.version))
                .or_default()
                .0 = v.predictions;
        }
        counts.entry("labels".into()).or_default().0 = before.labels;
        counts.entry("KPI points".into()).or_default().0 =
            source.kpis(&model, None, &ScanRange::default())?.len() as u64;
        if let Some(after) = &after {
            for v in &after.versions {
                counts
                    .entry(format!("predictions {} served", v.version))
                    .or_default()
                    .1 = v.predictions;
            }
            for v in &after.shadow_versions {
                counts
                    .entry(format!("predictions {} shadow", v.version))
                    .or_default()
                    .1 = v.predictions;
            }
            counts.entry("labels".into()).or_default().1 = after.labels;
            counts.entry("KPI points".into()).or_default().1 =
                target.kpis(&model, None, &ScanRange::default())?.len() as u64;
        }
        for (what, (s, t)) in counts {
            let ok = s == t;
            if !ok {
                mismatches.push(format!(
                    "model `{model}`: {what}: {s} in the source, {t} in the target"
                ));
            }
            rows.push([
                model.to_string(),
                what,
                s.to_string(),
                t.to_string(),
                if ok { "ok".into() } else { "MISMATCH".into() },
            ]);
        }
    }
    let header = ["model", "count", "source", "target", ""];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |cells: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
        .trim_end()
        .to_owned()
    };
    println!("verification, source against {target_name}:");
    println!("{}", line(header));
    for r in &rows {
        println!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    if !mismatches.is_empty() {
        bail!(
            "the target's counts differ from the source's:\n  {}",
            mismatches.join("\n  ")
        );
    }
    println!("every count matches");
    Ok(())
}
