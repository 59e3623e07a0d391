//! The peer benchmark's CSVs (`/work/shared/bench/peers`) for the ignored cost tests of the
//! multivariate drift and the outlier scores: where they are, their feature columns as text,
//! and a row's cells.

use modelwatch_stats::multivariate::Cell;
use std::path::PathBuf;

/// A bench table: its feature columns (name, numeric or categorical), and its rows' values as
/// text.
pub type Table = (Vec<(String, bool)>, Vec<Vec<String>>);

/// `$MODELWATCH_BENCH_DATA`, else `~/.cache/modelwatch-bench/data` (where
/// `scripts/bench_files.sh` generates them).
pub fn dir() -> PathBuf {
    std::env::var_os("MODELWATCH_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/modelwatch-bench/data")
        })
}

/// The feature columns of a bench CSV (no quoted fields in these files): `fNN` numeric, `cN`
/// categorical, as strings.
pub fn read(path: &PathBuf) -> Option<Table> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let picked: Vec<(usize, String, bool)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let numeric = match h.as_bytes() {
                [b'f', a, b] if a.is_ascii_digit() && b.is_ascii_digit() => true,
                [b'c', a] if a.is_ascii_digit() => false,
                _ => return None,
            };
            Some((i, h.to_string(), numeric))
        })
        .collect();
    let rows = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            picked.iter().map(|(i, _, _)| f[*i].to_owned()).collect()
        })
        .collect();
    Some((picked.into_iter().map(|(_, n, k)| (n, k)).collect(), rows))
}

/// The columns of [`read`] in a crate's own column kinds.
pub fn columns<K: Copy>(table: &[(String, bool)], numeric: K, categorical: K) -> Vec<(String, K)> {
    table
        .iter()
        .map(|(name, is_numeric)| {
            let kind = if *is_numeric { numeric } else { categorical };
            (name.clone(), kind)
        })
        .collect()
}

/// A row's cells, by the columns of [`read`].
pub fn cells<'a>(columns: &[(String, bool)], row: &'a [String]) -> Vec<Cell<'a>> {
    columns
        .iter()
        .zip(row)
        .map(|((_, numeric), v)| match numeric {
            _ if v.is_empty() => Cell::Missing,
            true => v.parse().map_or(Cell::Missing, Cell::Number),
            false => Cell::Category(v),
        })
        .collect()
}
