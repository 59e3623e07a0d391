//! What every backend does the same way with the rows it is handed or reads back: the
//! quarantine's bounds, the rejection of a request id repeated within a batch, and the JSON
//! form of outcomes and feature values. One copy, so that both stores answer alike.

use crate::StoreError;
use modelwatch_core::{FeatureValue, Outcome, Rejection};

/// Longest row text kept in quarantine; longer rows are cut (the reason is kept whole).
pub const MAX_QUARANTINE_ROW_BYTES: usize = 16 * 1024;

/// Quarantined rows are deleted after this many days, whatever the model's retention.
pub const QUARANTINE_RETENTION_DAYS: i64 = 30;

/// A refused row's text as the quarantine keeps it: cut at [`MAX_QUARANTINE_ROW_BYTES`], on a
/// character boundary.
pub fn quarantine_text(s: &str) -> &str {
    if s.len() <= MAX_QUARANTINE_ROW_BYTES {
        return s;
    }
    let mut end = MAX_QUARANTINE_ROW_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The rejection of the row at `index` whose request id the row at `first` already had.
pub fn repeated_rejection(index: usize, request_id: &str, first: usize) -> Rejection {
    Rejection::new(
        index,
        "request_id",
        format!("appears twice in this batch (first at row {first})"),
    )
    .with_request_id(Some(request_id))
}

/// A stored outcome read back from its JSON value; anything but a scalar is corrupt (`what`
/// names the stored value).
pub fn json_outcome(what: &'static str, v: serde_json::Value) -> Result<Outcome, StoreError> {
    match v {
        serde_json::Value::Bool(b) => Ok(Outcome::Bool(b)),
        serde_json::Value::Number(n) => Ok(Outcome::Number(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Ok(Outcome::Text(s)),
        other => Err(StoreError::Corrupt {
            what,
            detail: format!("not a scalar: {other}"),
        }),
    }
}

/// A stored feature value read back from its JSON value.
pub fn json_feature_value(v: serde_json::Value) -> FeatureValue {
    match v {
        serde_json::Value::Bool(b) => FeatureValue::Bool(b),
        serde_json::Value::Number(n) => FeatureValue::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => FeatureValue::Text(s),
        _ => FeatureValue::Null,
    }
}
