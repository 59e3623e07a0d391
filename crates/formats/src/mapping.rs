//! Which table column plays which part of an event.

use crate::FormatError;

/// Names of the columns that hold each part of an event; every other column is a feature.
///
/// A field left `None` means "the contract's name if the file has it": `request_id`,
/// `timestamp`, `model_version`, `prediction`, `score`, `label`, `latency_ms`, `error`; failing
/// that, for three fields, the first alias present: prediction `y_pred`; score `y_pred_proba`,
/// `proba`, `probability`; label `y_true`, `target`. A field set to `Some(name)` must name a
/// column of the file, or resolving fails with [`FormatError::MissingColumn`].
///
/// Columns of the export layout are recognised by name whenever present: `prediction_value` and
/// `label_value` (the numeric outcome, see [`crate::PredictionWriter`]), `scores` and `tags`
/// (JSON objects as text); `explanation.<feature>` columns hold the attribution of `<feature>`
/// (a number, or empty for none). Columns with an empty name (an unnamed pandas index) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMapping {
    pub request_id: Option<String>,
    pub timestamp: Option<String>,
    pub model_version: Option<String>,
    pub prediction: Option<String>,
    pub score: Option<String>,
    /// Multiclass probabilities, one column per class: with prefix `score_`, the column
    /// `score_fraud` holds the probability of class `fraud`. No default: a feature may well be
    /// called `score_something`.
    pub scores_prefix: Option<String>,
    pub label: Option<String>,
    pub latency_ms: Option<String>,
    /// Each prediction's cost (docs/api.md, "Cost and service levels"). No default: a file
    /// written before costs existed may well have a feature called `cost`, so the column is
    /// read as the cost only when named here (`modelwatch import --cost-col cost`).
    pub cost: Option<String>,
    pub error: Option<String>,
    /// Columns whose text values become tags (`tags.<column>`).
    pub tags: Vec<String>,
    /// Columns that are neither features nor any part of the event.
    pub exclude: Vec<String>,
}

const PREDICTION_ALIASES: &[&str] = &["prediction", "y_pred"];
const SCORE_ALIASES: &[&str] = &["score", "y_pred_proba", "proba", "probability"];
const LABEL_ALIASES: &[&str] = &["label", "y_true", "target"];

/// Column indices for each part, resolved against one file's column names.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    pub request_id: Option<usize>,
    pub timestamp: Option<usize>,
    pub model_version: Option<usize>,
    pub prediction: Option<usize>,
    pub prediction_value: Option<usize>,
    pub score: Option<usize>,
    pub scores_json: Option<usize>,
    /// (class, column)
    pub scores_cols: Vec<(String, usize)>,
    pub label: Option<usize>,
    pub label_value: Option<usize>,
    pub latency_ms: Option<usize>,
    pub cost: Option<usize>,
    pub error: Option<usize>,
    /// (tag name, column)
    pub tags: Vec<(String, usize)>,
    pub tags_json: Option<usize>,
    /// (feature, column): the columns named `explanation.<feature>`, each prediction's
    /// attribution of that feature.
    pub explanations: Vec<(String, usize)>,
    pub features: Vec<usize>,
}

/// Prefix of the columns that hold per-feature attributions (`explanation.amount`), in
/// predictions and reference tables alike: they are never features.
pub const EXPLANATION_PREFIX: &str = "explanation.";

impl ColumnMapping {
    /// Columns that should be read as text whatever their values look like (ids, versions,
    /// error messages, tags, JSON columns), for [`crate::ReadOptions::text_columns`].
    pub fn text_columns(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            (&self.request_id, "request_id"),
            (&self.model_version, "model_version"),
            (&self.error, "error"),
        ]
        .into_iter()
        .map(|(given, default)| given.clone().unwrap_or_else(|| default.to_string()))
        .collect();
        v.extend(self.tags.iter().cloned());
        v.push("scores".into());
        v.push("tags".into());
        v
    }

    /// The columns, among a file's `names`, that this mapping reads as features: every column
    /// that is not the request id, time, version, prediction, score(s), label, latency, error, a
    /// tag, or excluded (with the same aliases `import` uses).
    pub fn feature_columns(&self, names: &[&str]) -> Result<Vec<String>, FormatError> {
        let r = self.resolve(names)?;
        Ok(r.features.iter().map(|&i| names[i].to_string()).collect())
    }

    /// Resolves the mapping against a file's column names (in file order).
    pub(crate) fn resolve(&self, names: &[&str]) -> Result<Resolved, FormatError> {
        let available = || names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let usable = |n: &str| !n.is_empty() && !self.exclude.iter().any(|e| e == n);
        let find = |n: &str| names.iter().position(|c| *c == n).filter(|_| usable(n));
        let mut taken = vec![false; names.len()];
        let mut pick = |given: &Option<String>,
                        defaults: &[&str],
                        role: &'static str|
         -> Result<Option<usize>, FormatError> {
            let idx = match given {
                Some(name) => Some(names.iter().position(|c| c == name).ok_or_else(|| {
                    FormatError::MissingColumn {
                        column: name.clone(),
                        role,
                        available: available(),
                    }
                })?),
                None => defaults.iter().find_map(|d| find(d)),
            };
            if let Some(i) = idx {
                taken[i] = true;
            }
            Ok(idx)
        };
        let mut r = Resolved {
            request_id: pick(&self.request_id, &["request_id"], "request_id")?,
            timestamp: pick(&self.timestamp, &["timestamp"], "timestamp")?,
            model_version: pick(&self.model_version, &["model_version"], "model_version")?,
            prediction: pick(&self.prediction, PREDICTION_ALIASES, "prediction")?,
            prediction_value: pick(&None, &["prediction_value"], "prediction_value")?,
            score: pick(&self.score, SCORE_ALIASES, "score")?,
            scores_json: pick(&None, &["scores"], "scores")?,
            label: pick(&self.label, LABEL_ALIASES, "label")?,
            label_value: pick(&None, &["label_value"], "label_value")?,
            latency_ms: pick(&self.latency_ms, &["latency_ms"], "latency_ms")?,
            cost: pick(&self.cost, &[], "cost")?,
            error: pick(&self.error, &["error"], "error")?,
            tags_json: pick(&None, &["tags"], "tags")?,
            ..Resolved::default()
        };
        for t in &self.tags {
            if let Some(i) = pick(&Some(t.clone()), &[], "a tag")? {
                r.tags.push((t.clone(), i));
            }
        }
        for e in &self.exclude {
            if !names.contains(&e.as_str()) {
                return Err(FormatError::MissingColumn {
                    column: e.clone(),
                    role: "exclusion",
                    available: available(),
                });
            }
        }
        if let Some(prefix) = &self.scores_prefix {
            for (i, n) in names.iter().enumerate() {
                if taken[i] || !usable(n) {
                    continue;
                }
                if let Some(class) = n.strip_prefix(prefix.as_str()) {
                    if !class.is_empty() {
                        r.scores_cols.push((class.to_string(), i));
                        taken[i] = true;
                    }
                }
            }
            if r.scores_cols.is_empty() {
                return Err(FormatError::MissingColumn {
                    column: format!("{prefix}*"),
                    role: "scores",
                    available: available(),
                });
            }
        }
        for (i, n) in names.iter().enumerate() {
            if taken[i] || !usable(n) {
                continue;
            }
            if let Some(feature) = n.strip_prefix(EXPLANATION_PREFIX) {
                if !feature.is_empty() {
                    r.explanations.push((feature.to_string(), i));
                    taken[i] = true;
                }
            }
        }
        r.features = (0..names.len())
            .filter(|&i| !taken[i] && usable(names[i]))
            .collect();
        Ok(r)
    }
}

impl Resolved {
    /// Errors unless the file can hold predictions.
    pub(crate) fn require_predictions(&self, names: &[&str]) -> Result<(), FormatError> {
        let available = names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if self.request_id.is_none() {
            return Err(FormatError::NoColumnFor {
                role: "request_id",
                looked_for: vec!["request_id".into()],
                available,
            });
        }
        if self.prediction.is_none() && self.prediction_value.is_none() && self.error.is_none() {
            let mut looked_for: Vec<String> =
                PREDICTION_ALIASES.iter().map(|s| s.to_string()).collect();
            looked_for.push("error".into());
            return Err(FormatError::NoColumnFor {
                role: "prediction",
                looked_for,
                available,
            });
        }
        Ok(())
    }

    pub(crate) fn require_labels(&self, names: &[&str]) -> Result<(), FormatError> {
        let available = names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if self.request_id.is_none() {
            return Err(FormatError::NoColumnFor {
                role: "request_id",
                looked_for: vec!["request_id".into()],
                available,
            });
        }
        if self.label.is_none() && self.label_value.is_none() {
            return Err(FormatError::NoColumnFor {
                role: "label",
                looked_for: LABEL_ALIASES.iter().map(|s| s.to_string()).collect(),
                available,
            });
        }
        Ok(())
    }
}
