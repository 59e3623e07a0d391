//! Times reading and converting the peer benchmark's 1M-row Parquet file. Not a timed test:
//! run it by hand and read the figure.
//!
//! `cargo test --release -p modelwatch-formats --test bench_1m -- --ignored --nocapture`

use modelwatch_core::Timestamp;
use modelwatch_formats::{ColumnMapping, ImportReader, ReadOptions, RowKind, Source, TableFormat};
use std::path::PathBuf;
use std::time::Instant;

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
         {rejected} rejected in {:.3} s",
        elapsed.as_secs_f64()
    );
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
