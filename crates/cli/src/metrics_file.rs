//! `modelwatch metrics --predictions FILE [--labels FILE]`: per-window metrics straight from
//! files, with no data directory (`engine::offline`). The file is read on a thread of its own,
//! one chunk ahead of the fold, and only the columns the metrics use are decoded (a Parquet
//! projection: the features are never read).

use anyhow::{bail, Context};
use modelwatch_core::{LabelEvent, Rejection, Timestamp};
use modelwatch_engine::offline::{FileMetrics, FileReport};
use modelwatch_engine::performance::{PerformanceQuery, PerformanceReport};
use modelwatch_formats::{
    ColumnMapping, Converted, ImportReader, ReadOptions, RowKind, Source, TableFormat, TableReader,
};
use std::collections::HashMap;
use std::path::Path;

/// Rows per chunk read.
const CHUNK_ROWS: usize = 65_536;

pub fn report(
    predictions: &Path,
    labels: Option<&Path>,
    columns: &crate::import::ColumnArgs,
    query: PerformanceQuery,
) -> anyhow::Result<PerformanceReport> {
    let mapping = columns.mapping();
    let labels = match labels {
        Some(file) => read_labels(file, &mapping)?,
        None => HashMap::new(),
    };
    let name = predictions.display().to_string();
    let mut fold = FileMetrics::new(&query)?;
    // A second pass only when rows after the first chunk change the task decided from it.
    for _ in 0..2 {
        fold_file(predictions, &mapping, &labels, &mut fold)?;
        match fold.finish(&name) {
            FileReport::Done(report) => return Ok(*report),
            FileReport::ReadAgain(spec) => fold = FileMetrics::with_spec(&query, spec)?,
        }
    }
    unreachable!("the second pass folds with the spec of every row")
}

/// The columns of `file` other than its features, for a projection; `None` for NDJSON (events
/// in the contract's format, read whole).
fn metric_columns(
    file: &Path,
    format: TableFormat,
    mapping: &ColumnMapping,
) -> anyhow::Result<Option<Vec<String>>> {
    if format == TableFormat::Ndjson {
        return Ok(None);
    }
    let options = ReadOptions {
        batch_size: 1_024,
        text_columns: mapping.text_columns(),
        columns: None,
    };
    let schema = TableReader::open(&Source::path(file), format, &options)?.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let features = mapping.feature_columns(&names)?;
    Ok(Some(
        names
            .iter()
            .filter(|n| {
                !features.iter().any(|f| f == *n) && !mapping.exclude.iter().any(|e| e == *n)
            })
            .map(|n| n.to_string())
            .collect(),
    ))
}

fn open(file: &Path, kind: RowKind, mapping: &ColumnMapping) -> anyhow::Result<ImportReader> {
    let format =
        TableFormat::detect(file).with_context(|| format!("reading {}", file.display()))?;
    let options = ReadOptions {
        batch_size: CHUNK_ROWS,
        columns: match kind {
            RowKind::Predictions => metric_columns(file, format, mapping)?,
            _ => None,
        },
        ..ReadOptions::default()
    };
    // Excluded columns are left out by the projection already: naming them again would be a
    // missing column.
    let mut mapping = mapping.clone();
    if options.columns.is_some() {
        mapping.exclude.clear();
    }
    ImportReader::open(&Source::path(file), format, kind, mapping, &options)
        .with_context(|| format!("opening {}", file.display()))
}

/// Reports the rows a file refused (the first few), as `modelwatch import` does.
fn refused(file: &Path, rejected: &[Rejection], total: u64) {
    for r in rejected {
        let field = if r.field.is_empty() {
            String::new()
        } else {
            format!(" {}", r.field)
        };
        eprintln!(
            "{}: rejected row {}{field}: {}",
            file.display(),
            r.index,
            r.reason
        );
    }
    if total > rejected.len() as u64 {
        eprintln!(
            "{}: {total} rows rejected in all (the first {} above), left out of the metrics",
            file.display(),
            rejected.len()
        );
    }
}

/// Every label of a labels file by request id; a later row of an id replaces an earlier one,
/// as a label sent again does.
fn read_labels(
    file: &Path,
    mapping: &ColumnMapping,
) -> anyhow::Result<HashMap<String, LabelEvent>> {
    let mut reader = open(file, RowKind::Labels, mapping)?;
    let now = Timestamp::now();
    let mut out = HashMap::new();
    let (mut rejected, mut total) = (Vec::new(), 0u64);
    while let Some(chunk) = reader.next_chunk(now, None) {
        let chunk = chunk.with_context(|| format!("reading {}", file.display()))?;
        total += chunk.rejected.len() as u64;
        rejected.extend(chunk.rejected.into_iter().take(10 - rejected.len().min(10)));
        for l in chunk.labels {
            out.insert(l.request_id.clone(), l);
        }
    }
    refused(file, &rejected, total);
    if out.is_empty() {
        bail!("{} holds no label", file.display());
    }
    Ok(out)
}

/// Folds every row of the predictions file, each with its label: the labels file's for its
/// request id, else the row's own.
fn fold_file(
    file: &Path,
    mapping: &ColumnMapping,
    labels: &HashMap<String, LabelEvent>,
    fold: &mut FileMetrics,
) -> anyhow::Result<()> {
    let mut reader = open(file, RowKind::Predictions, mapping)?;
    let (tx, rx) = crossbeam_channel::bounded::<anyhow::Result<Converted>>(2);
    let name = file.display().to_string();
    let decoder = std::thread::spawn(move || {
        let now = Timestamp::now();
        while let Some(chunk) = reader.next_chunk(now, None) {
            let item = chunk.with_context(|| format!("reading {name}"));
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    });
    let (mut rows, mut rejected, mut total) = (0u64, Vec::new(), 0u64);
    for chunk in rx.iter() {
        let chunk = chunk?;
        rows += chunk.predictions.len() as u64;
        total += chunk.rejected.len() as u64;
        rejected.extend(
            chunk
                .rejected
                .iter()
                .take(10 - rejected.len().min(10))
                .cloned(),
        );
        // Each prediction's label: its row's (both indexes are in file order), or the labels
        // file's.
        let mut joined: Vec<Option<&LabelEvent>> = Vec::with_capacity(chunk.predictions.len());
        let mut l = 0;
        for (p, row) in chunk.predictions.iter().zip(&chunk.prediction_index) {
            while l < chunk.label_index.len() && chunk.label_index[l] < *row {
                l += 1;
            }
            let own = (l < chunk.label_index.len() && chunk.label_index[l] == *row)
                .then(|| &chunk.labels[l]);
            joined.push(if labels.is_empty() {
                own
            } else {
                labels.get(&p.request_id).or(own)
            });
        }
        fold.observe(chunk.predictions.iter().zip(joined.iter().copied()));
    }
    let _ = decoder.join();
    refused(file, &rejected, total);
    if rows == 0 {
        bail!("{} holds no prediction that could be read", file.display());
    }
    Ok(())
}
