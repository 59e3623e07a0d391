//! The checks every ingest path applies to a row's fields, whether the row came as JSON
//! ([`crate::parse_prediction_row`]) or as a table row (modelwatch-formats), so that a rejection
//! reads the same either way. Each returns the reason; the caller names the row and the field.

use crate::IngestLimits;

/// Tolerance on the sum of class probabilities: clients round scores.
pub const SCORES_SUM_TOLERANCE: f64 = 0.01;

pub fn request_id(s: &str, limits: &IngestLimits) -> Result<(), String> {
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

pub const MISSING_REQUEST_ID: &str = "missing: every row needs a request_id";
pub const MISSING_PREDICTION: &str =
    "missing: a row needs `prediction` (or `error` for a failed request)";
pub const MISSING_LABEL: &str = "missing: a label row needs `label`";
pub const NOT_FINITE_OUTCOME: &str = "must be a finite number";
pub const NOT_FINITE_FEATURE: &str = "must be a finite number; send null for a missing value";

pub fn score(s: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&s) {
        Ok(())
    } else {
        Err(format!(
            "{s} is outside [0, 1]: `score` is the probability of the positive class"
        ))
    }
}

/// Checks multiclass scores; the error names the field (`scores` or `scores.<class>`).
pub fn scores(scores: &[(String, f64)]) -> Result<(), (String, String)> {
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

pub fn latency(l: f64) -> Result<(), String> {
    if l.is_finite() && l >= 0.0 {
        Ok(())
    } else {
        Err(format!("{l} is not a non-negative duration"))
    }
}

/// Largest cost one prediction may carry: a cost is summed exactly in units of
/// [`COST_RESOLUTION`], and this bound keeps a year of a busy model's sums in range.
pub const MAX_COST: f64 = 1e9;
/// Costs are summed in whole billionths (nano-units), so that sums are exact whatever the
/// order of the hours; a cost finer than that is rounded to the nearest billionth.
pub const COST_RESOLUTION: f64 = 1e-9;

pub fn cost(c: f64) -> Result<(), String> {
    if c.is_finite() && (0.0..=MAX_COST).contains(&c) {
        Ok(())
    } else {
        Err(format!(
            "{c} is not a cost: give a non-negative number up to {MAX_COST:e}"
        ))
    }
}

pub fn feature_count(n: usize, limits: &IngestLimits) -> Result<(), String> {
    if n > limits.max_features {
        Err(format!(
            "{n} features, more than the limit of {}",
            limits.max_features
        ))
    } else {
        Ok(())
    }
}

pub fn tag_count(n: usize, limits: &IngestLimits) -> Result<(), String> {
    if n > limits.max_tags {
        Err(format!(
            "{n} tags, more than the limit of {}",
            limits.max_tags
        ))
    } else {
        Ok(())
    }
}

/// Checks a row's attributions (`explanations`): at most as many as features, named, finite.
/// The error names the field (`explanations` or `explanations.<feature>`).
pub fn explanations(
    pairs: &[(String, f64)],
    limits: &IngestLimits,
) -> Result<(), (String, String)> {
    if pairs.len() > limits.max_features {
        return Err((
            "explanations".into(),
            format!(
                "{} attributions, more than the limit of {} (one per feature)",
                pairs.len(),
                limits.max_features
            ),
        ));
    }
    for (name, x) in pairs {
        if name.is_empty() {
            return Err((
                "explanations".into(),
                "an attribution has an empty feature name".into(),
            ));
        }
        if !x.is_finite() {
            return Err((
                format!("explanations.{name}"),
                "must be a finite number (the feature's attribution)".into(),
            ));
        }
    }
    Ok(())
}
