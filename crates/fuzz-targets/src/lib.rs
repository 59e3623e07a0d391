//! The fuzz targets' bodies: one function per parser that an outsider can reach, each taking
//! arbitrary bytes. `fuzz/` (cargo fuzz, nightly) runs them under libFuzzer; `tests/replay.rs`
//! runs them on stable over the committed corpora and a few thousand seeded mutations, so CI
//! keeps a short run of each. docs/fuzzing.md says how to run a long session and add a target.
//!
//! Every body calls the production functions (the HTTP ingest's `parse_batch`, the import and
//! reference upload's `ImportReader`, ...), never a copy, and checks only what the code
//! promises: no panic anywhere; every row of a batch or file accepted or refused, once; an
//! accepted event reads back from the store's encoding as the same event; a parsed duration,
//! window, timestamp, rule or dashboard view renders to text that parses back to it.

use axum::http::HeaderMap;
use modelwatch_alerts::rule::{Duration, Origin};
use modelwatch_alerts::RuleSpec;
use modelwatch_core::{
    parse_label_row, parse_prediction_row_verbatim, parse_timestamp, Outcome, PredictionEvent,
    Rejection, Timestamp, Window,
};
use modelwatch_dashboard::params::Range;
use modelwatch_dashboard::ViewParams;
use modelwatch_formats::{ColumnMapping, ImportReader, ReadOptions, RowKind, Source, TableFormat};
use modelwatch_server::{parse_batch, Config, ParsedBatch};
use modelwatch_store::{decode_stored, encode_line, VerbatimRows};
use std::collections::HashSet;

/// The arrival time every target uses, so that a replay is deterministic (the server uses the
/// clock; only the plausibility bound for timestamps depends on it).
pub const NOW: Timestamp = Timestamp(1_780_272_000_000_000); // 2026-06-01T00:00:00Z

/// A target: its name (the directory of its corpus, `fuzz/corpus/<name>`) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name. `fuzz/fuzz_targets/<name>.rs` calls the body of the same name.
pub const TARGETS: &[Target] = &[
    ("prediction_rows", prediction_rows),
    ("label_rows", label_rows),
    ("csv_table", csv_table),
    ("ndjson_table", ndjson_table),
    ("time_params", time_params),
    ("rule_json", rule_json),
    ("config_file", config_file),
];

/// Most rows in a batch, as the server's default `limits.max_batch_rows`.
const MAX_BATCH_ROWS: usize = 100_000;

/// `POST /v1/models/{model}/predictions`: the body split into rows and each row parsed, as the
/// handler does; then what the store does with an accepted row (encode it as a chunk line,
/// or keep the row as sent) must read back as the same event.
pub fn prediction_rows(data: &[u8]) {
    let Ok(batch) = parse_batch(
        data,
        &HeaderMap::new(),
        MAX_BATCH_ROWS,
        parse_prediction_row_verbatim,
        NOW,
    ) else {
        return;
    };
    check_every_row_once(&batch);
    let verbatim = VerbatimRows {
        text: bytes::Bytes::copy_from_slice(data),
        spans: batch
            .good
            .iter()
            .zip(&batch.spans)
            .map(|((_, (_, same)), span)| span.clone().filter(|_| *same))
            .collect(),
    };
    for (position, (_, (event, _))) in batch.good.iter().enumerate() {
        check_reads_back(event);
        if let Some(row) = verbatim.row(position) {
            let text = std::str::from_utf8(row).expect("a row stored as sent is UTF-8");
            assert_eq!(
                decode_stored(text).as_ref(),
                Ok(event),
                "a row stored as sent reads back as another event"
            );
        }
    }
}

/// `POST /v1/models/{model}/labels`, as the handler parses it; a label's class is stored as its
/// JSON and read back with the same `Outcome` serde.
pub fn label_rows(data: &[u8]) {
    let Ok(batch) = parse_batch(
        data,
        &HeaderMap::new(),
        MAX_BATCH_ROWS,
        parse_label_row,
        NOW,
    ) else {
        return;
    };
    check_every_row_once(&batch);
    for (_, label) in &batch.good {
        let text = serde_json::to_string(&label.label).expect("an outcome serializes");
        let back: Outcome = serde_json::from_str(&text).expect("a stored label reads back");
        assert_eq!(back, label.label, "{text}");
    }
}

/// Every row of a batch is accepted or refused, once, and a refusal says why.
fn check_every_row_once<T>(batch: &ParsedBatch<T>) {
    assert_eq!(
        batch.good.len() + batch.rejected.len(),
        batch.rows,
        "accepted + refused rows must be the rows sent"
    );
    assert_eq!(batch.spans.len(), batch.good.len());
    let mut seen = HashSet::new();
    let indices = batch
        .good
        .iter()
        .map(|(i, _)| *i)
        .chain(batch.rejected.iter().map(|q| q.rejection.index));
    for i in indices {
        assert!(i < batch.rows, "row index {i} beyond the batch");
        assert!(seen.insert(i), "row {i} counted twice");
    }
    for q in &batch.rejected {
        check_rejection(&q.rejection);
    }
}

fn check_rejection(r: &Rejection) {
    assert!(!r.reason.is_empty(), "a refusal without a reason: {r:?}");
}

/// An accepted event, encoded as the store writes it to a chunk, decodes to the same event.
fn check_reads_back(event: &PredictionEvent) {
    let mut line = Vec::new();
    encode_line(&mut line, event);
    assert_eq!(line.last(), Some(&b'\n'));
    let text = std::str::from_utf8(&line[..line.len() - 1]).expect("JSON is UTF-8");
    assert!(!text.contains('\n'), "a chunk line holds one event");
    assert_eq!(
        decode_stored(text).as_ref(),
        Ok(event),
        "stored line {text} reads back as another event"
    );
}

/// `PUT /v1/models/{model}/reference` and `modelwatch import` of a CSV file.
pub fn csv_table(data: &[u8]) {
    table(TableFormat::Csv, data)
}

/// The same for an NDJSON (or JSON array) file.
pub fn ndjson_table(data: &[u8]) {
    table(TableFormat::Ndjson, data)
}

/// The first byte chooses what the rows are (predictions, labels, a reference) and the chunk
/// size (small, so that rows cross chunk boundaries); the rest is the file. Read with the
/// `ImportReader` both the reference upload and `modelwatch import` use.
fn table(format: TableFormat, data: &[u8]) {
    let Some((&control, file)) = data.split_first() else {
        return;
    };
    let kind =
        [RowKind::Predictions, RowKind::Labels, RowKind::Reference][usize::from(control % 3)];
    let options = ReadOptions {
        batch_size: [1, 2, 3, 64][usize::from(control / 3 % 4)],
        ..ReadOptions::default()
    };
    let Ok(mut reader) = ImportReader::open(
        &Source::bytes(file.to_vec()),
        format,
        kind,
        ColumnMapping::default(),
        &options,
    ) else {
        return;
    };
    let mut rows_before = 0;
    let mut indices = HashSet::new();
    while let Some(chunk) = reader.next_chunk(NOW, None) {
        // A file-level error ends the read.
        let Ok(chunk) = chunk else { break };
        let rows = reader.progress().rows_read;
        let converted = match kind {
            RowKind::Predictions => chunk.predictions.len(),
            RowKind::Labels => chunk.labels.len(),
            RowKind::Reference => chunk.reference.len(),
        };
        assert_eq!(
            (converted + chunk.rejected.len()) as u64,
            rows - rows_before,
            "each row of the file is converted or refused"
        );
        rows_before = rows;
        for r in &chunk.rejected {
            check_rejection(r);
            assert!(indices.insert(r.index), "row {} refused twice", r.index);
        }
        for e in &chunk.predictions {
            check_reads_back(e);
        }
    }
}

/// Durations, windows and time parameters: every parser of `window=`, `range=`, `from=`, `to=`,
/// `at=` (API and dashboard), a rule's `for` / `keep_firing_for` / `max_age` and a silence's
/// `duration`. What parses renders to text that parses back to the same value. The bytes are
/// also read as a dashboard query string (`range=7d&window=1h&from=...`).
pub fn time_params(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    if let Ok(w) = Window::parse(&s) {
        assert!(w.seconds() > 0);
        assert_eq!(Window::parse(&w.label()), Ok(w), "window {s:?}");
    }
    if let Ok(d) = Duration::parse(&s) {
        assert!(d.seconds >= 0);
        assert_eq!(Duration::parse(&d.to_string()), Ok(d), "duration {s:?}");
    }
    if let Ok(t) = parse_timestamp(&s) {
        assert_eq!(
            parse_timestamp(&t.to_rfc3339()),
            Ok(t),
            "timestamp {s:?} renders as {}",
            t.to_rfc3339()
        );
    }
    let _ = Range::parse(&s);
    if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) {
        if let Ok(view) = ViewParams::parse(&pairs) {
            // The dashboard's links carry the view in their query string.
            let query = view.query();
            let again: Vec<(String, String)> =
                serde_urlencoded::from_str(query.trim_start_matches('?'))
                    .expect("a link's query string decodes");
            assert_eq!(ViewParams::parse(&again).ok(), Some(view), "{query}");
        }
    }
}

/// `POST /v1/models/{model}/rules`: the JSON body read as the server reads it, the rule parsed
/// and validated; a valid rule is stored as its JSON and must validate again, the same, when
/// the service reads it back.
pub fn rule_json(data: &[u8]) {
    let mut de = serde_json::Deserializer::from_slice(data);
    let Ok(value) = <serde_json::Value as serde::Deserialize>::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
    else {
        return;
    };
    let notifiers = ["ops".to_string(), "pager".to_string()];
    let spec = match RuleSpec::from_json(value) {
        Ok(spec) => spec,
        Err(e) => {
            assert!(!e.message.is_empty());
            return;
        }
    };
    let Ok(rule) = spec.validate("fraud", Origin::Api, &notifiers) else {
        return;
    };
    let stored = serde_json::to_string(&rule.spec).expect("a rule serializes");
    let back: RuleSpec = serde_json::from_str(&stored).expect("a stored rule reads back");
    let again = back
        .validate("fraud", Origin::Api, &notifiers)
        .expect("a stored rule validates again");
    assert_eq!(again, rule, "{stored}");
}

/// `modelwatch serve --config FILE`: the TOML read and checked as at start-up (environment
/// variables aside).
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::from_toml(text) {
        let _ = config.validate();
    }
}
