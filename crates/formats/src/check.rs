//! Row checks that core applies inside `parse_prediction_row` but does not export on their own.
//!
//! The wording is core's, character for character, so a rejection reads the same whether the row
//! came as JSON or as a table row. When core exports these checks, call them instead.

use modelwatch_core::IngestLimits;

/// Tolerance on the sum of class probabilities (core: `SCORES_SUM_TOLERANCE`).
const SCORES_SUM_TOLERANCE: f64 = 0.01;

pub(crate) fn request_id(s: &str, limits: &IngestLimits) -> Result<(), String> {
    if s.trim().is_empty() {
        Err("is empty".into())
    } else if s.len() > limits.max_request_id_len {
        Err(format!(
            "is {} bytes, longer than the limit of {}",
            s.len(),
            limits.max_request_id_len
        ))
    } else if s.chars().any(char::is_control) {
        Err("contains a control character".into())
    } else {
        Ok(())
    }
}

pub(crate) const MISSING_REQUEST_ID: &str = "missing: every row needs a request_id";
pub(crate) const MISSING_PREDICTION: &str =
    "missing: a row needs `prediction` (or `error` for a failed request)";
pub(crate) const MISSING_LABEL: &str = "missing: a label row needs `label`";
pub(crate) const NOT_FINITE_OUTCOME: &str = "must be a finite number";
pub(crate) const NOT_FINITE_FEATURE: &str =
    "must be a finite number; send null for a missing value";

pub(crate) fn score(s: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&s) {
        Ok(())
    } else {
        Err(format!(
            "{s} is outside [0, 1]: `score` is the probability of the positive class"
        ))
    }
}

/// Checks multiclass scores; the error names the field (`scores` or `scores.<class>`).
pub(crate) fn scores(scores: &[(String, f64)]) -> Result<(), (String, String)> {
    if scores.is_empty() {
        return Err((
            "scores".into(),
            "is empty: give one probability per class".into(),
        ));
    }
    for (i, (class, p)) in scores.iter().enumerate() {
        if scores[..i].iter().any(|(c, _)| c == class) {
            return Err((format!("scores.{class}"), "class appears twice".into()));
        }
        if !(0.0..=1.0).contains(p) {
            return Err((format!("scores.{class}"), format!("{p} is outside [0, 1]")));
        }
    }
    let sum: f64 = scores.iter().map(|(_, p)| p).sum();
    if (sum - 1.0).abs() > SCORES_SUM_TOLERANCE {
        return Err((
            "scores".into(),
            format!(
                "class probabilities sum to {sum:.4}, not 1 (tolerance {SCORES_SUM_TOLERANCE})"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn latency(l: f64) -> Result<(), String> {
    if l.is_finite() && l >= 0.0 {
        Ok(())
    } else {
        Err(format!("{l} is not a non-negative duration"))
    }
}

pub(crate) fn feature_count(n: usize, limits: &IngestLimits) -> Result<(), String> {
    if n > limits.max_features {
        Err(format!(
            "{n} features, more than the limit of {}",
            limits.max_features
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn tag_count(n: usize, limits: &IngestLimits) -> Result<(), String> {
    if n > limits.max_tags {
        Err(format!(
            "{n} tags, more than the limit of {}",
            limits.max_tags
        ))
    } else {
        Ok(())
    }
}
