use serde::{Serialize, Serializer};
use std::sync::Arc;

/// Largest integer an f64 holds exactly (2^53).
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Integral numbers are written as integers (`1`, not `1.0`): a class sent as `1` comes back as
/// `1`, and exports compare equal to what was sent.
fn serialize_number<S: Serializer>(n: f64, s: S) -> Result<S::Ok, S::Error> {
    if n.fract() == 0.0 && n.abs() < MAX_EXACT_INT {
        s.serialize_i64(n as i64)
    } else {
        s.serialize_f64(n)
    }
}

impl Serialize for FeatureValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FeatureValue::Null => s.serialize_unit(),
            FeatureValue::Bool(b) => s.serialize_bool(*b),
            FeatureValue::Number(n) => serialize_number(*n, s),
            FeatureValue::Text(t) => s.serialize_str(t),
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Outcome::Bool(b) => s.serialize_bool(*b),
            Outcome::Number(n) => serialize_number(*n, s),
            Outcome::Text(t) => s.serialize_str(t),
        }
    }
}

/// One feature value of one event. JSON `null` is [`FeatureValue::Null`] (a missing value).
#[derive(Debug, Clone, PartialEq)]
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
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl Outcome {
    /// The class this outcome names: `1` and `1.0` are class "1", `true` is class "true".
    pub fn class_key(&self) -> String {
        self.with_class_key(str::to_owned)
    }

    /// `f` of [`Outcome::class_key`], without making a string for a boolean, an integer or a
    /// text: folding a batch on arrival asks every row's class, and the allocation and
    /// formatting were most of that.
    pub fn with_class_key<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Outcome::Bool(b) => f(if *b { "true" } else { "false" }),
            Outcome::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                f(itoa::Buffer::new().format(*n as i64))
            }
            Outcome::Number(n) => f(&n.to_string()),
            Outcome::Text(s) => f(s),
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

    #[test]
    fn class_keys_borrowed_or_owned() {
        let max = f64::MAX.to_string();
        for (o, key) in [
            (Outcome::Number(1.0), "1"),
            (Outcome::Number(-3.0), "-3"),
            (Outcome::Number(0.0), "0"),
            (Outcome::Number(-0.0), "0"),
            (Outcome::Number(2.5), "2.5"),
            (Outcome::Number(1e15), "1000000000000000"),
            (Outcome::Number(-1e15 + 1.0), "-999999999999999"),
            (Outcome::Number(f64::MAX), max.as_str()),
            (Outcome::Bool(true), "true"),
            (Outcome::Bool(false), "false"),
            (Outcome::Text("fraud".into()), "fraud"),
            (Outcome::Text(String::new()), ""),
        ] {
            assert_eq!(o.class_key(), key, "{o:?}");
            assert!(o.with_class_key(|k| k == key), "{o:?}");
        }
    }
}

/// A feature's name, shared rather than copied. A table holds one name per column and a batch of
/// JSON rows mostly repeats the previous row's names: every event of an import or a request
/// holds a reference to the same few names instead of a `String` of its own each. For 1M events
/// of 25 features that is 25M fewer allocations, which were about half of converting a Parquet
/// file and most of the time spent freeing the events.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeatureName(Arc<str>);

impl FeatureName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for FeatureName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for FeatureName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for FeatureName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for FeatureName {
    fn from(s: &str) -> Self {
        FeatureName(s.into())
    }
}

impl From<String> for FeatureName {
    fn from(s: String) -> Self {
        FeatureName(s.into())
    }
}

impl From<&String> for FeatureName {
    fn from(s: &String) -> Self {
        FeatureName(s.as_str().into())
    }
}

impl From<FeatureName> for String {
    fn from(n: FeatureName) -> Self {
        n.0.to_string()
    }
}

impl PartialEq<str> for FeatureName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for FeatureName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for FeatureName {
    fn eq(&self, other: &String) -> bool {
        &*self.0 == other.as_str()
    }
}

impl PartialEq<FeatureName> for String {
    fn eq(&self, other: &FeatureName) -> bool {
        self.as_str() == &*other.0
    }
}

impl PartialEq<FeatureName> for &str {
    fn eq(&self, other: &FeatureName) -> bool {
        *self == &*other.0
    }
}

impl std::fmt::Debug for FeatureName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for FeatureName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for FeatureName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
