use crate::value::{FeatureName, FeatureValue};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Features a model may have unless configured otherwise (`limits.max_features_per_model`).
/// The same as the most features one row may carry ([`crate::IngestLimits`]), so that any row
/// accepted alone also fits a new model; wide tabular models have hundreds of features, and a
/// schema grown past a few thousand names is nearly always a client sending values (ids,
/// timestamps) as feature names.
pub const DEFAULT_MAX_FEATURES_PER_MODEL: usize = 2_000;

/// What kind of values a feature holds. Decides which drift tests and quality checks apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
    Boolean,
    /// Free text: only by declaration; strings are inferred as categorical.
    Text,
}

impl FeatureKind {
    /// The kind a first non-null value implies; `None` for null, which says nothing.
    pub fn infer(value: &FeatureValue) -> Option<FeatureKind> {
        match value {
            FeatureValue::Null => None,
            FeatureValue::Bool(_) => Some(FeatureKind::Boolean),
            FeatureValue::Number(_) => Some(FeatureKind::Numeric),
            FeatureValue::Text(_) => Some(FeatureKind::Categorical),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
            FeatureKind::Boolean => "boolean",
            FeatureKind::Text => "text",
        }
    }

    fn accepts(self, value: &FeatureValue) -> bool {
        matches!(
            (self, value),
            (_, FeatureValue::Null)
                | (FeatureKind::Numeric, FeatureValue::Number(_))
                | (FeatureKind::Boolean, FeatureValue::Bool(_))
                | (
                    FeatureKind::Categorical | FeatureKind::Text,
                    FeatureValue::Text(_)
                )
        )
    }

    fn expected(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "a number",
            FeatureKind::Boolean => "true or false",
            FeatureKind::Categorical | FeatureKind::Text => "a string",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    pub kind: FeatureKind,
}

/// A model's features, in the order they were first seen or declared.
///
/// An inferred schema grows when events bring new features (reported as [`SchemaChange`]); a
/// declared schema does not, and an event with a feature outside it is rejected. A value of the
/// wrong kind is rejected in both cases: nothing is silently coerced.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    pub features: Vec<FeatureSpec>,
    /// True when the user declared the schema; false when inferred from reference or events.
    #[serde(default)]
    pub declared: bool,
}

/// A feature added to an inferred schema by an accepted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaChange {
    pub feature: String,
    pub kind: FeatureKind,
}

/// Why a feature value does not fit the schema: the field and the reason.
pub type FieldError = (String, String);

/// A model's features by name: the kind of each, found by hash. Checking a row against a schema
/// searched linearly cost a comparison per known feature for every feature of the row, and at
/// 220k feature names a 10-row batch held the single writer for 14.5 s (issue 19).
#[derive(Debug, Clone, Default)]
pub struct FeatureIndex(HashMap<String, FeatureKind>);

impl FeatureIndex {
    pub fn of(schema: &Schema) -> Self {
        FeatureIndex(
            schema
                .features
                .iter()
                .map(|f| (f.name.clone(), f.kind))
                .collect(),
        )
    }

    pub fn kind_of(&self, name: &str) -> Option<FeatureKind> {
        self.0.get(name).copied()
    }

    pub fn insert(&mut self, feature: &FeatureSpec) {
        self.0.insert(feature.name.clone(), feature.kind);
    }

    /// Features known: the schema's and those inserted since.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Schema {
    /// A linear search: for one look-up. Rows are checked with a [`FeatureIndex`].
    pub fn kind_of(&self, name: &str) -> Option<FeatureKind> {
        self.features
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.kind)
    }

    /// Checks one event's features; returns the features it would add to an inferred schema.
    /// `known` indexes the schema's features and those added earlier in the same batch, so that
    /// a batch is checked as if its rows arrived one by one. A row whose new features would take
    /// the model past `max_features` is refused, naming the first feature over the limit: the
    /// model's known features keep being accepted.
    pub fn check(
        &self,
        features: &[(FeatureName, FeatureValue)],
        known: &FeatureIndex,
        max_features: usize,
    ) -> Result<Vec<FeatureSpec>, FieldError> {
        let mut added: Vec<FeatureSpec> = Vec::new();
        for (i, (name, value)) in features.iter().enumerate() {
            // Clients send features in a stable order, usually the schema's: try the same
            // position first, so the common case needs no hashing.
            let kind = self
                .features
                .get(i)
                .filter(|f| f.name == name.as_str())
                .map(|f| f.kind)
                .or_else(|| known.kind_of(name));
            let field = || format!("features.{name}");
            match kind {
                Some(kind) if kind.accepts(value) => {}
                Some(kind) => {
                    return Err((
                        field(),
                        format!(
                            "expected {} ({} feature), got {} {}",
                            kind.expected(),
                            kind.as_str(),
                            value.type_name(),
                            short_json(value)
                        ),
                    ))
                }
                None if self.declared => {
                    return Err((
                        field(),
                        format!("feature `{name}` is not in the model's declared schema"),
                    ))
                }
                None => {
                    if let Some(kind) = FeatureKind::infer(value) {
                        let count = known.len() + added.len() + 1;
                        if count > max_features {
                            return Err((
                                field(),
                                format!(
                                    "new feature `{name}` would be the model's feature number \
                                     {count}, over the limit of {max_features} features per \
                                     model (limits.max_features_per_model); rows with the \
                                     model's known features are still accepted"
                                ),
                            ));
                        }
                        added.push(FeatureSpec {
                            name: name.to_string(),
                            kind,
                        });
                    }
                }
            }
        }
        Ok(added)
    }
}

fn short_json(value: &FeatureValue) -> String {
    let s = serde_json::to_string(value).unwrap_or_default();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema {
            features: vec![
                FeatureSpec {
                    name: "age".into(),
                    kind: FeatureKind::Numeric,
                },
                FeatureSpec {
                    name: "country".into(),
                    kind: FeatureKind::Categorical,
                },
            ],
            declared: false,
        }
    }

    #[test]
    fn wrong_kind_is_rejected_with_field_and_reason() {
        let s = schema();
        let err = s
            .check(
                &[("age".into(), FeatureValue::Text("41".into()))],
                &FeatureIndex::of(&s),
                100,
            )
            .unwrap_err();
        assert_eq!(err.0, "features.age");
        assert!(err.1.contains("expected a number"), "{}", err.1);
        assert!(err.1.contains("\"41\""), "{}", err.1);
    }

    #[test]
    fn nulls_fit_every_kind_and_new_features_are_reported() {
        let s = schema();
        let added = s
            .check(
                &[
                    ("age".into(), FeatureValue::Null),
                    ("device".into(), FeatureValue::Text("ios".into())),
                    ("unknown_yet".into(), FeatureValue::Null),
                ],
                &FeatureIndex::of(&s),
                100,
            )
            .unwrap();
        assert_eq!(
            added,
            vec![FeatureSpec {
                name: "device".into(),
                kind: FeatureKind::Categorical
            }]
        );
    }

    #[test]
    fn declared_schema_rejects_extra_features() {
        let mut s = schema();
        s.declared = true;
        let err = s
            .check(
                &[("extra".into(), FeatureValue::Number(1.0))],
                &FeatureIndex::of(&s),
                100,
            )
            .unwrap_err();
        assert_eq!(err.0, "features.extra");
    }

    #[test]
    fn a_row_that_would_pass_the_feature_limit_is_refused_naming_the_feature() {
        let s = schema();
        let mut known = FeatureIndex::of(&s);
        let row = |names: &[&str]| -> Vec<(FeatureName, FeatureValue)> {
            names
                .iter()
                .map(|n| ((*n).into(), FeatureValue::Number(1.0)))
                .collect()
        };
        // Two known, one new: exactly at a limit of 3.
        let added = s.check(&row(&["age", "height"]), &known, 3).unwrap();
        known.insert(&added[0]);
        let err = s.check(&row(&["age", "weight"]), &known, 3).unwrap_err();
        assert_eq!(err.0, "features.weight");
        assert!(
            err.1.contains("number 4") && err.1.contains("limit of 3"),
            "{}",
            err.1
        );
        assert!(err.1.contains("limits.max_features_per_model"), "{}", err.1);
        // Known features still pass at the limit; a new one given as null adds nothing.
        s.check(&row(&["height", "age"]), &known, 3).unwrap();
        let nothing = s
            .check(&[("weight".into(), FeatureValue::Null)], &known, 3)
            .unwrap();
        assert!(nothing.is_empty());
    }
}
