//! What the engine's integration tests share: writing rows into a real store the way the
//! server does (each row parsed as the HTTP ingest parses it, folded on arrival when asked).

use modelwatch_core::{parse_label_row, parse_prediction_row, IngestLimits, ModelName, Timestamp};
use modelwatch_store::{IngestOutcome, LabelBatch, PredictionBatch, Store};
use serde_json::Value;

/// Ingests prediction `rows` (JSON events) for `model`, with the folds the server makes on
/// arrival when `fold` is set; every row must be accepted.
#[allow(dead_code)] // each test binary uses its own subset of this module
pub fn ingest_predictions(
    store: &dyn Store,
    model: &ModelName,
    rows: &[Value],
    fold: bool,
) -> IngestOutcome {
    let now = Timestamp::now();
    let rows: Vec<_> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let row =
                parse_prediction_row(&r.to_string(), i, now, &IngestLimits::default()).unwrap();
            (i, row)
        })
        .collect();
    let folds = match fold {
        true => modelwatch_engine::aggregates::fold_on_arrival(store, model, &rows)
            .unwrap()
            .unwrap_or_default(),
        false => Vec::new(),
    };
    let batch = PredictionBatch {
        folds,
        ..PredictionBatch::new(rows)
    };
    let out = store.ingest_predictions(model, batch).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    out
}

/// Ingests label `rows` (JSON label events) for `model`.
#[allow(dead_code)]
pub fn ingest_labels(store: &dyn Store, model: &ModelName, rows: &[Value]) {
    let now = Timestamp::now();
    let batch = LabelBatch {
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let row =
                    parse_label_row(&r.to_string(), i, now, &IngestLimits::default()).unwrap();
                (i, row)
            })
            .collect(),
        ..Default::default()
    };
    store.ingest_labels(model, batch).unwrap();
}

/// Labels every request of `ids` with the same `label`.
#[allow(dead_code)]
pub fn label_all(store: &dyn Store, model: &ModelName, ids: &[String], label: Value) {
    let rows: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::json!({"request_id": id, "label": label}))
        .collect();
    ingest_labels(store, model, &rows);
}
