use serde::Serialize;

/// One feature value of one event. JSON `null` is [`FeatureValue::Null`] (a missing value).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FeatureValue {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
}

impl FeatureValue {
    /// Names the JSON type, for rejection messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            FeatureValue::Null => "null",
            FeatureValue::Bool(_) => "boolean",
            FeatureValue::Number(_) => "number",
            FeatureValue::Text(_) => "string",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, FeatureValue::Null)
    }
}

/// A prediction or a label: a class (string, integer or boolean) or a number (regression).
///
/// Stored as it was sent; whether `1` is class "1" or the number 1.0 is decided by the model's
/// task when metrics are computed, never at ingest.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl Outcome {
    /// The class this outcome names: `1` and `1.0` are class "1", `true` is class "true".
    pub fn class_key(&self) -> String {
        match self {
            Outcome::Bool(b) => b.to_string(),
            Outcome::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Outcome::Number(n) => n.to_string(),
            Outcome::Text(s) => s.clone(),
        }
    }

    /// The outcome as a number, for regression; `None` for text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Outcome::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Outcome::Number(n) => Some(*n),
            Outcome::Text(s) => s.parse().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numbers_and_strings_name_the_same_class() {
        assert_eq!(Outcome::Number(1.0).class_key(), "1");
        assert_eq!(Outcome::Text("1".into()).class_key(), "1");
        assert_eq!(Outcome::Bool(true).class_key(), "true");
        assert_eq!(Outcome::Number(2.5).class_key(), "2.5");
    }
}
