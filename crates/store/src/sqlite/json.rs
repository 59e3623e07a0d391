//! Values kept as JSON text in SQL columns (reference rows' features, outcomes, scores and
//! attributions; labels' outcomes), written and read back.
//!
//! Invariant: a stored value that does not read back is a `StoreError::Corrupt` naming what it
//! is, never a panic.

use super::*;

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("values of validated events serialize")
}

pub(super) fn features_json(features: &[(FeatureName, FeatureValue)]) -> String {
    // Serializing the borrowed slice directly avoids cloning every feature name.
    struct AsMap<'a>(&'a [(FeatureName, FeatureValue)]);
    impl serde::Serialize for AsMap<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }
    to_json(&AsMap(features))
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(super) fn outcome_from(
    what: &'static str,
    s: Option<String>,
) -> Result<Option<Outcome>, StoreError> {
    s.map(|s| parse_json::<serde_json::Value>(what, &s).and_then(|v| json_outcome(what, v)))
        .transpose()
}

fn json_outcome(what: &'static str, v: serde_json::Value) -> Result<Outcome, StoreError> {
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

pub(super) fn features_from(s: &str) -> Result<Vec<(FeatureName, FeatureValue)>, StoreError> {
    Ok(parse_json::<Pairs<serde_json::Value>>("features", s)?
        .0
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::Bool(b) => FeatureValue::Bool(b),
                serde_json::Value::Number(n) => FeatureValue::Number(n.as_f64().unwrap_or(0.0)),
                serde_json::Value::String(s) => FeatureValue::Text(s),
                _ => FeatureValue::Null,
            };
            (k.into(), v)
        })
        .collect())
}

pub(super) fn pairs_from<V: serde::de::DeserializeOwned>(
    what: &'static str,
    s: Option<String>,
) -> Result<Option<Vec<(String, V)>>, StoreError> {
    s.map(|s| parse_json::<Pairs<V>>(what, &s).map(|p| p.0))
        .transpose()
}
