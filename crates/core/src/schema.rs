use crate::value::{FeatureName, FeatureValue};
use serde::{Deserialize, Serialize};

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

impl Schema {
    pub fn kind_of(&self, name: &str) -> Option<FeatureKind> {
        self.features
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.kind)
    }

    /// Checks one event's features; returns the features it would add to an inferred schema.
    /// `pending` holds features added earlier in the same batch, so that a batch is checked as if
    /// its rows arrived one by one.
    pub fn check(
        &self,
        features: &[(FeatureName, FeatureValue)],
        pending: &[FeatureSpec],
    ) -> Result<Vec<FeatureSpec>, FieldError> {
        let mut added = Vec::new();
        for (i, (name, value)) in features.iter().enumerate() {
            // Clients send features in a stable order, usually the schema's: try the same
            // position first, so the common case needs no search.
            let known = self
                .features
                .get(i)
                .filter(|f| f.name == name.as_str())
                .map(|f| f.kind)
                .or_else(|| self.kind_of(name))
                .or_else(|| {
                    pending
                        .iter()
                        .find(|f| f.name == name.as_str())
                        .map(|f| f.kind)
                });
            let field = || format!("features.{name}");
            match known {
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
        let err = schema()
            .check(&[("age".into(), FeatureValue::Text("41".into()))], &[])
            .unwrap_err();
        assert_eq!(err.0, "features.age");
        assert!(err.1.contains("expected a number"), "{}", err.1);
        assert!(err.1.contains("\"41\""), "{}", err.1);
    }

    #[test]
    fn nulls_fit_every_kind_and_new_features_are_reported() {
        let added = schema()
            .check(
                &[
                    ("age".into(), FeatureValue::Null),
                    ("device".into(), FeatureValue::Text("ios".into())),
                    ("unknown_yet".into(), FeatureValue::Null),
                ],
                &[],
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
            .check(&[("extra".into(), FeatureValue::Number(1.0))], &[])
            .unwrap_err();
        assert_eq!(err.0, "features.extra");
    }
}
