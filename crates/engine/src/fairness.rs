//! Fairness per protected attribute of a binary classifier: per window and per version, each
//! group's selection rate, true and false positive rates and precision, and the gaps between
//! groups as `fairlearn.metrics` defines them ([`modelwatch_stats::fairness`]).
//!
//! # The setting
//! A model names its protected attributes (features, or tags as `tag:<name>`, the segment
//! grammar of [`SegmentKey`]), the favourable outcome (a class of the model; the positive class
//! when not given) and the minimum group size ([`FairnessSettings`], `PUT
//! /v1/models/{model}/fairness/settings`). It is kept with the model as the model-wide aggregate
//! row `fairness-settings`: a setting, not a cache (nothing but [`set_settings`] writes it;
//! retention and rebuilds keep model-wide rows).
//!
//! # How a query runs, and what it costs
//! One scan of the range's raw events (as a `segment=` breakdown of `/metrics` does), split over
//! the cores: each prediction is folded into a [`GroupCounts`] (six counters) per (attribute,
//! window, group) and per (attribute, version, group). The per-hour cache does not hold
//! per-group state, so the cost grows with the range's predictions, not with the number of
//! groups: a query reads what `/metrics?segment=` reads. A predicted class is the one the
//! metrics use ([`TaskSpec::predicted_positive`]: the logged prediction, else the score at the
//! threshold); a row with neither (an error) is not counted.
//!
//! # Groups
//! The value of the attribute as a segment names it (`(missing)` when the event has none,
//! `(null)` when it is null); at most [`MAX_GROUPS`] values per attribute are tracked, later new
//! values go to `other`. Each group is reported; groups under the minimum size are left out of
//! the gaps and named (`left_out`).

use std::collections::BTreeMap;

use modelwatch_core::{ModelName, Outcome, PredictionEvent, Timestamp, Window};
use modelwatch_stats::fairness::{measures, FairnessMeasures, GroupCounts, GroupReport};
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EngineError;
use crate::query::SegmentKey;
use crate::state::{Task, TaskSpec};

/// Kind of the model-wide aggregate row holding the model's [`FairnessSettings`] (JSON).
pub(crate) const SETTINGS: &str = "fairness-settings";
/// Protected attributes a model may name.
pub const MAX_ATTRIBUTES: usize = 10;
/// Distinct values tracked per attribute; rows of later new values are counted in `other`.
pub const MAX_GROUPS: usize = 100;
/// Default minimum group size: as the metrics' `min_sample`.
pub const DEFAULT_MIN_GROUP_SIZE: u64 = 30;
const OTHER: &str = "other";

/// What a model's fairness is measured over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessSettings {
    /// Protected attributes: feature names, or `tag:<name>` for a tag.
    pub protected: Vec<String>,
    /// The class that is the favourable outcome (a loan granted); `None`: the positive class.
    pub favourable: Option<String>,
    /// A group with fewer rows behind a rate has it `insufficient_sample`, and is left out of
    /// that rate's gaps.
    pub min_group_size: u64,
}

/// A setting refused: the field (`protected[1]`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct SettingsError {
    pub field: String,
    pub problem: String,
}

impl FairnessSettings {
    /// Reads and checks a setting sent as JSON:
    /// `{"protected": ["sex", "tag:region"], "favourable": "approved", "min_group_size": 50}`.
    pub fn from_json(v: &Value) -> Result<FairnessSettings, SettingsError> {
        let bad = |field: &str, problem: String| SettingsError {
            field: field.to_owned(),
            problem,
        };
        let Some(obj) = v.as_object() else {
            return Err(bad(
                "(body)",
                "send an object, e.g. {\"protected\": [\"sex\"], \"favourable\": 1}".into(),
            ));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["protected", "favourable", "min_group_size"].contains(&k.as_str()))
        {
            return Err(bad(
                k,
                "unknown field: the setting has protected, favourable and min_group_size".into(),
            ));
        }
        let Some(list) = obj.get("protected").and_then(Value::as_array) else {
            return Err(bad(
                "protected",
                "required: a list of features or tag:<name>, e.g. [\"sex\", \"tag:region\"]".into(),
            ));
        };
        if list.is_empty() || list.len() > MAX_ATTRIBUTES {
            return Err(bad(
                "protected",
                format!(
                    "name between 1 and {MAX_ATTRIBUTES} attributes, got {}",
                    list.len()
                ),
            ));
        }
        let mut protected: Vec<String> = Vec::with_capacity(list.len());
        for (i, a) in list.iter().enumerate() {
            let field = format!("protected[{i}]");
            let Some(name) = a.as_str() else {
                return Err(bad(
                    &field,
                    format!("{a} is not a feature name or tag:<name>"),
                ));
            };
            let empty = match SegmentKey::parse(name) {
                SegmentKey::Feature(f) => f.trim().is_empty(),
                SegmentKey::Tag(t) => t.trim().is_empty(),
            };
            if empty {
                return Err(bad(
                    &field,
                    format!("{name:?} names no feature or tag: write sex or tag:region"),
                ));
            }
            if protected.iter().any(|p| p == name) {
                return Err(bad(&field, format!("{name:?} is named twice")));
            }
            protected.push(name.to_owned());
        }
        let favourable = match obj.get("favourable") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Bool(b)) => Some(Outcome::Bool(*b).class_key()),
            Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
                Some(Outcome::Number(n.as_f64().unwrap_or_default()).class_key())
            }
            Some(other) => {
                return Err(bad(
                    "favourable",
                    format!(
                        "{other} is not a class: give the favourable class, e.g. 1 or \"approved\""
                    ),
                ))
            }
        };
        let min_group_size = match obj.get("min_group_size") {
            None | Some(Value::Null) => DEFAULT_MIN_GROUP_SIZE,
            Some(n) => match n.as_u64() {
                Some(n @ 1..=1_000_000_000) => n,
                _ => {
                    return Err(bad(
                        "min_group_size",
                        format!("{n} is not a whole number between 1 and 1000000000"),
                    ))
                }
            },
        };
        Ok(FairnessSettings {
            protected,
            favourable,
            min_group_size,
        })
    }
}

/// The fairness setting of `model`, if it has one.
pub fn settings(
    store: &dyn Store,
    model: &ModelName,
) -> Result<Option<FairnessSettings>, StoreError> {
    crate::aggregates::model_setting(store, model, SETTINGS, "fairness settings")
}

/// Sets (`None`: removes) the fairness setting of `model`, which must exist.
pub fn set_settings(
    store: &dyn Store,
    model: &ModelName,
    settings: Option<&FairnessSettings>,
) -> Result<(), StoreError> {
    crate::aggregates::set_model_setting(store, model, SETTINGS, settings)
}

/// What a fairness query covers.
#[derive(Debug, Clone)]
pub struct FairnessQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
}

/// The groups of one attribute and their gaps in one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    pub groups: Vec<GroupReport>,
    #[serde(flatten)]
    pub measures: FairnessMeasures,
}

/// The groups of one attribute and their gaps in one version over the whole range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessVersion {
    /// Empty for predictions sent without a version.
    pub version: String,
    pub groups: Vec<GroupReport>,
    #[serde(flatten)]
    pub measures: FairnessMeasures,
}

/// One protected attribute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttributeReport {
    /// As the setting names it: a feature, or `tag:<name>`.
    pub attribute: String,
    pub windows: Vec<FairnessWindow>,
    pub versions: Vec<FairnessVersion>,
}

/// The answer to `GET /v1/models/{model}/fairness`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessReport {
    pub model: String,
    pub window: String,
    /// The class counted as favourable (predicted: selected).
    pub favourable: String,
    pub min_group_size: u64,
    /// How the model's predicted class is decided (as in `/metrics`).
    #[serde(flatten)]
    pub spec: TaskSpec,
    pub attributes: Vec<AttributeReport>,
}

/// Group name -> counts.
type Groups = BTreeMap<String, GroupCounts>;

/// Per attribute: window start -> groups, and version -> groups.
#[derive(Default, Clone)]
struct Fold {
    windows: Vec<BTreeMap<Timestamp, Groups>>,
    versions: Vec<BTreeMap<String, Groups>>,
}

fn add(groups: &mut Groups, group: &str, selected: bool, label: Option<bool>) {
    match groups.get_mut(group) {
        Some(c) => c.observe(selected, label),
        None => {
            let key = if groups.len() >= MAX_GROUPS {
                OTHER
            } else {
                group
            };
            groups
                .entry(key.to_owned())
                .or_default()
                .observe(selected, label);
        }
    }
}

fn merge_groups(into: &mut Groups, from: &Groups) {
    for (g, c) in from {
        if let Some(x) = into.get_mut(g) {
            x.merge(c);
        } else if into.len() >= MAX_GROUPS {
            into.entry(OTHER.to_owned()).or_default().merge(c);
        } else {
            into.insert(g.clone(), *c);
        }
    }
}

fn group_list(groups: Groups) -> Vec<(String, GroupCounts)> {
    groups.into_iter().collect()
}

/// The fairness of `model`'s predictions in the query's range, per protected attribute.
pub fn fairness(
    store: &dyn Store,
    model: &ModelName,
    q: &FairnessQuery,
) -> Result<FairnessReport, EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let Some(settings) = settings(store, model)? else {
        return Err(EngineError::FairnessUnavailable(format!(
            "model `{model}` names no protected attributes: set them first (fairness settings)"
        )));
    };
    let range = ScanRange {
        from: q.from,
        to: q.to,
        version: q.version.clone(),
    };
    let (spec, _) = crate::performance::scan_spec(store, model, &range, None, None)?;
    if spec.task != Task::Binary {
        return Err(EngineError::FairnessUnavailable(format!(
            "model `{model}` is a {} model: fairness is measured for binary classifiers",
            spec.task.as_str()
        )));
    }
    let positive = spec.positive().to_owned();
    let favourable = settings
        .favourable
        .clone()
        .unwrap_or_else(|| positive.clone());
    // Favourable is the positive class, or its other class (a fraud model's "0": cleared).
    let flip = favourable != positive;
    if let (true, Some(neg)) = (flip, spec.negative_class.as_deref()) {
        if neg != favourable {
            return Err(EngineError::FairnessUnavailable(format!(
                "the favourable outcome {favourable:?} is not a class of model `{model}` \
                 (its classes: {positive:?}, {neg:?})"
            )));
        }
    }
    let keys: Vec<SegmentKey> = settings
        .protected
        .iter()
        .map(|a| SegmentKey::parse(a))
        .collect();
    let window = q.window;
    let observe =
        |fold: &mut Fold, p: &PredictionEvent, l: Option<&modelwatch_core::LabelEvent>| {
            let Some(positive) = spec.predicted_positive(
                p.prediction.as_ref(),
                spec.binary_score(p.score, p.scores.as_deref()),
            ) else {
                return;
            };
            let selected = positive != flip;
            let label = l.map(|l| l.label.with_class_key(|c| c == favourable));
            let start = window.start_of(p.timestamp);
            let version = p.model_version.as_deref().unwrap_or_default();
            for (i, key) in keys.iter().enumerate() {
                let group = key.value_of(p);
                add(
                    fold.windows[i].entry(start).or_default(),
                    &group,
                    selected,
                    label,
                );
                let versions = &mut fold.versions[i];
                let groups = match versions.get_mut(version) {
                    Some(g) => g,
                    None => versions.entry(version.to_owned()).or_default(),
                };
                add(groups, &group, selected, label);
            }
        };
    let empty = Fold {
        windows: vec![BTreeMap::new(); keys.len()],
        versions: vec![BTreeMap::new(); keys.len()],
    };
    let parts = crate::performance::split_range(&range);
    let folded = modelwatch_stats::parallel::parallel_map(&parts, |part| {
        let mut fold = empty.clone();
        store.scan_predictions(model, part, &mut |p, l| observe(&mut fold, p, l))?;
        Ok::<_, EngineError>(fold)
    });
    let mut fold = empty;
    for part in folded {
        let f = part?;
        for i in 0..keys.len() {
            for (start, g) in &f.windows[i] {
                merge_groups(fold.windows[i].entry(*start).or_default(), g);
            }
            for (v, g) in &f.versions[i] {
                merge_groups(fold.versions[i].entry(v.clone()).or_default(), g);
            }
        }
    }
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let min = settings.min_group_size;
    let attributes = settings
        .protected
        .iter()
        .zip(fold.windows.into_iter().zip(fold.versions))
        .map(|(attribute, (windows, versions))| AttributeReport {
            attribute: attribute.clone(),
            windows: windows
                .into_iter()
                .map(|(start, groups)| {
                    let end = Timestamp(start.0 + window.micros());
                    let (groups, measures) = measures(&group_list(groups), min);
                    FairnessWindow {
                        start,
                        end,
                        partial: crate::partial::is_partial(end, cutoff),
                        groups,
                        measures,
                    }
                })
                .collect(),
            versions: versions
                .into_iter()
                .map(|(version, groups)| {
                    let (groups, measures) = measures(&group_list(groups), min);
                    FairnessVersion {
                        version,
                        groups,
                        measures,
                    }
                })
                .collect(),
        })
        .collect();
    Ok(FairnessReport {
        model: model.to_string(),
        window: window.label(),
        favourable,
        min_group_size: min,
        spec,
        attributes,
    })
}

/// A cell: quoted when it holds a comma, a quote or a line break (RFC 4180).
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A metric's value and interval: three cells, empty when it has no value (NaN in pandas).
fn metric_cells(m: &modelwatch_stats::perf::Metric, out: &mut Vec<String>) {
    match m.value().zip(m.ci()) {
        Some((v, (lo, hi))) => out.extend([v, lo, hi].map(|x| x.to_string())),
        None => out.extend(std::iter::repeat_n(String::new(), 3)),
    }
}

/// The rates of each group and the gaps of its window: the `?format=csv` table.
pub const CSV_COLUMNS: &str = "attribute,window_start,window_end,partial,group,predictions,\
selected,labelled,tp,fp,tn,fn,selection_rate,selection_rate_ci_low,selection_rate_ci_high,\
true_positive_rate,true_positive_rate_ci_low,true_positive_rate_ci_high,false_positive_rate,\
false_positive_rate_ci_low,false_positive_rate_ci_high,precision,precision_ci_low,\
precision_ci_high,demographic_parity_difference,demographic_parity_difference_ci_low,\
demographic_parity_difference_ci_high,demographic_parity_ratio,demographic_parity_ratio_ci_low,\
demographic_parity_ratio_ci_high,four_fifths_rule,equal_opportunity_difference,\
equal_opportunity_difference_ci_low,equal_opportunity_difference_ci_high,\
equalized_odds_difference,equalized_odds_difference_ci_low,equalized_odds_difference_ci_high";

/// A fairness report as one flat CSV table ([`CSV_COLUMNS`]): one row per (attribute, window,
/// group), the window's gaps repeated on each of its groups' rows, so that
/// `pd.read_csv(...)` gets it in one call. Numbers in shortest round-trip form (the JSON's,
/// bit for bit); a rate or gap without a value is three empty cells.
pub fn fairness_csv(report: &FairnessReport) -> String {
    let mut out = String::from(CSV_COLUMNS);
    out.push('\n');
    for a in &report.attributes {
        for w in &a.windows {
            let m = &w.measures;
            for g in &w.groups {
                let c = &g.counts;
                let mut row: Vec<String> = vec![
                    cell(&a.attribute),
                    w.start.to_rfc3339(),
                    w.end.to_rfc3339(),
                    w.partial.to_string(),
                    cell(&g.group),
                ];
                row.extend(
                    [
                        c.predictions,
                        c.selected,
                        g.labelled,
                        c.tp,
                        c.fp,
                        c.tn,
                        c.fn_,
                    ]
                    .map(|n| n.to_string()),
                );
                for r in [
                    &g.selection_rate,
                    &g.true_positive_rate,
                    &g.false_positive_rate,
                    &g.precision,
                ] {
                    metric_cells(r, &mut row);
                }
                metric_cells(&m.demographic_parity_difference.metric, &mut row);
                metric_cells(&m.demographic_parity_ratio.metric, &mut row);
                row.push(
                    serde_json::to_value(m.four_fifths_rule)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                );
                metric_cells(&m.equal_opportunity_difference.metric, &mut row);
                metric_cells(&m.equalized_odds_difference.metric, &mut row);
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(v: Value) -> SettingsError {
        FairnessSettings::from_json(&v).unwrap_err()
    }

    #[test]
    fn a_bad_setting_names_its_field() {
        assert_eq!(refused(json!({"favourable": 1})).field, "protected");
        assert_eq!(refused(json!({"protected": []})).field, "protected");
        assert_eq!(
            refused(json!({"protected": ["sex", 3]})).field,
            "protected[1]"
        );
        assert_eq!(
            refused(json!({"protected": ["sex", "tag:"]})).field,
            "protected[1]"
        );
        assert_eq!(
            refused(json!({"protected": ["sex", "sex"]})).field,
            "protected[1]"
        );
        assert_eq!(
            refused(json!({"protected": ["sex"], "favourable": [1]})).field,
            "favourable"
        );
        assert_eq!(
            refused(json!({"protected": ["sex"], "min_group_size": 0})).field,
            "min_group_size"
        );
        assert_eq!(
            refused(json!({"protected": ["sex"], "protect": ["x"]})).field,
            "protect"
        );
        assert_eq!(refused(json!(["sex"])).field, "(body)");
    }

    #[test]
    fn every_csv_row_has_a_cell_per_column_and_odd_names_are_quoted() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        let mut row = Vec::new();
        metric_cells(
            &modelwatch_stats::perf::Metric::InsufficientSample { n: 3, min: 30 },
            &mut row,
        );
        assert_eq!(row, vec![String::new(); 3]);
        assert_eq!(CSV_COLUMNS.split(',').count(), 37);
    }

    #[test]
    fn a_favourable_outcome_is_named_as_the_class_it_is() {
        let s = FairnessSettings::from_json(
            &json!({"protected": ["sex", "tag:region"], "favourable": 1.0}),
        )
        .unwrap();
        assert_eq!(s.favourable.as_deref(), Some("1"));
        assert_eq!(s.min_group_size, DEFAULT_MIN_GROUP_SIZE);
        let s = FairnessSettings::from_json(&json!({"protected": ["sex"], "favourable": false}))
            .unwrap();
        assert_eq!(s.favourable.as_deref(), Some("false"));
    }
}
