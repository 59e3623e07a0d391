//! Times reading and converting the peer benchmark's 1M-row Parquet file. Not a timed test:
//! run it by hand and read the figure.
//!
//! `cargo test --release -p modelwatch-formats --test bench_1m -- --ignored --nocapture`

use modelwatch_core::Timestamp;
use modelwatch_formats::{ColumnMapping, ImportReader, ReadOptions, RowKind, Source, TableFormat};
use std::path::PathBuf;
use std::time::Instant;

/// CPU time of this thread in seconds (conversion threads excluded): the machine is shared, so
/// wall time alone misleads.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn data_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home)
        .join(".cache/modelwatch-bench/data")
        .join(name);
    p.exists().then_some(p)
}

fn time_import(name: &str, format: TableFormat) {
    let Some(path) = data_file(name) else {
        eprintln!("{name} not found; generate it with bench/peers/gen_data.py");
        return;
    };
    let now = Timestamp::now();
    let start = Instant::now();
    let cpu0 = cpu_secs();
    let mut reader = ImportReader::open(
        &Source::path(&path),
        format,
        RowKind::Predictions,
        ColumnMapping::default(),
        &ReadOptions::default(),
    )
    .unwrap();
    let (mut predictions, mut labels, mut rejected, mut features) = (0usize, 0usize, 0usize, 0);
    while let Some(chunk) = reader.next_chunk(now, None) {
        let c = chunk.unwrap();
        predictions += c.predictions.len();
        labels += c.labels.len();
        rejected += c.rejected.len();
        features = c.predictions.first().map_or(features, |p| p.features.len());
        if let Some(r) = c.rejected.first() {
            eprintln!("first rejection: {r:?}");
        }
    }
    let elapsed = start.elapsed();
    println!(
        "{name}: read + convert {predictions} predictions ({features} features), {labels} labels, \
         {rejected} rejected in {:.3} s wall, {:.3} s cpu",
        elapsed.as_secs_f64(),
        cpu_secs() - cpu0
    );
}

/// Read, convert and drop timed apart, to see where the time goes.
fn phases(name: &str, format: TableFormat) {
    use modelwatch_formats::TableReader;
    let Some(path) = data_file(name) else { return };
    let now = Timestamp::now();
    let mut options = ReadOptions::default();
    if let Some(b) = std::env::var("BATCH").ok().and_then(|b| b.parse().ok()) {
        options.batch_size = b;
    }
    options.text_columns = ColumnMapping::default().text_columns();
    let mut reader = TableReader::open(&Source::path(&path), format, &options).unwrap();
    println!(
        "{name}: schema {:?}",
        reader
            .schema()
            .fields()
            .iter()
            .map(|f| format!("{}:{}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
    );
    // Wall time per phase: conversion runs on several threads, so this thread's CPU time
    // would undercount it.
    let (mut read, mut convert, mut drop) = (0.0, 0.0, 0.0);
    let wall = Instant::now();
    loop {
        let t = Instant::now();
        let Some(chunk) = reader.next() else { break };
        let chunk = chunk.unwrap();
        read += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let c = chunk
            .to_predictions(&ColumnMapping::default(), now, None)
            .unwrap();
        convert += t.elapsed().as_secs_f64();
        let t = Instant::now();
        std::mem::drop(c);
        drop += t.elapsed().as_secs_f64();
    }
    println!(
        "{name}: wall read {read:.3} s, convert {convert:.3} s, drop {drop:.3} s; total {:.3} s",
        wall.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "needs the peer benchmark data; prints a time"]
fn phases_1m_parquet() {
    phases("current_1m.parquet", TableFormat::Parquet);
}

#[test]
#[ignore = "needs the peer benchmark data; prints a time"]
fn read_and_convert_1m_parquet() {
    time_import("current_1m.parquet", TableFormat::Parquet);
}

#[test]
#[ignore = "needs the peer benchmark data; prints a time"]
fn read_and_convert_1m_csv() {
    time_import("current_1m.csv", TableFormat::Csv);
}
