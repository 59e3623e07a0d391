//! Values kept as JSON text in SQL columns (reference rows' features, outcomes, scores and
//! attributions; labels' outcomes), written and read back.
//!
//! Invariant: a stored value that does not read back is a `StoreError::Corrupt` naming what it
//! is, never a panic.

use super::*;
use crate::rows::{json_feature_value, json_outcome};

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

pub(super) fn features_from(s: &str) -> Result<Vec<(FeatureName, FeatureValue)>, StoreError> {
    Ok(parse_json::<Pairs<serde_json::Value>>("features", s)?
        .0
        .into_iter()
        .map(|(k, v)| (k.into(), json_feature_value(v)))
        .collect())
}

pub(super) fn pairs_from<V: serde::de::DeserializeOwned>(
    what: &'static str,
    s: Option<String>,
) -> Result<Option<Vec<(String, V)>>, StoreError> {
    s.map(|s| parse_json::<Pairs<V>>(what, &s).map(|p| p.0))
        .transpose()
}
