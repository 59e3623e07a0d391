//! Prediction and label events: parsing one JSON row into a validated event, or a [`Rejection`]
//! that names the row, the field and the problem.
//!
//! Each row is parsed twice only when it is bad: a typed fast path (no intermediate
//! `serde_json::Value`) for the common case, and on failure a diagnosis pass over the generic
//! value that finds the field to blame, since serde's own message gives a line and column but
//! not a field name.

use crate::checks;
use crate::model::validate_version;
use crate::time::{parse_timestamp, Timestamp};
use crate::value::{FeatureName, FeatureValue, Outcome};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

mod fast;

/// A validated prediction event, as the event format in docs/api.md ("Ingest") defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionEvent {
    pub request_id: String,
    /// Event time: when the prediction was made (arrival time if the client did not say).
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(serialize_with = "pairs_as_map")]
    pub features: Vec<(FeatureName, FeatureValue)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_pairs_as_map"
    )]
    pub scores: Option<Vec<(String, f64)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// What this prediction cost (any currency, the model's choice; docs/api.md, "Cost and
    /// service levels"). Optional: a model's cost rate stands in for the predictions without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(serialize_with = "pairs_as_map", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Per-feature attributions of this prediction (SHAP values or the like), as sent: finite
    /// numbers by name. Written out only when there are some, so rows stored before they
    /// existed read back unchanged (an absent field is no attributions).
    #[serde(serialize_with = "pairs_as_map", skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<(String, f64)>,
    /// Whether this prediction is the one the caller was served, or a shadow's (docs/api.md,
    /// "Challengers"). Written out only for a shadow, so stored served rows stay as they were.
    #[serde(skip_serializing_if = "Role::is_served")]
    pub role: Role,
}

/// The role a prediction plays for its request (ADR 011). A request id has at most one served
/// prediction, which every report but `/compare` reads; shadow predictions of other versions
/// for the same request id are stored beside it, one per version, and join its label.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The prediction whose answer was returned: the default.
    #[default]
    Served,
    /// A challenger scoring the same request in the background; its answer was not used.
    Shadow,
}

impl Role {
    pub fn is_served(&self) -> bool {
        *self == Role::Served
    }

    /// The role a row names: `served` or `shadow`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "served" => Some(Role::Served),
            "shadow" => Some(Role::Shadow),
            _ => None,
        }
    }
}

/// The tag (name, value) that marks a prediction as exploration traffic by default (docs/api.md,
/// "Feedback loops"): the feedback report compares those predictions with the others, and the
/// store notes in each prediction's index row whether it carries it, so that a late label can
/// be told apart.
pub const EXPLORATION_TAG: (&str, &str) = ("exploration", "true");

impl PredictionEvent {
    /// Whether the prediction's first tag named `name` has `value`.
    pub fn has_tag(&self, (name, value): (&str, &str)) -> bool {
        self.tags
            .iter()
            .find(|(k, _)| k == name)
            .is_some_and(|(_, v)| v == value)
    }
}

/// A ground-truth label for one earlier (or later) prediction, joined by `request_id`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelEvent {
    pub request_id: String,
    pub label: Outcome,
    /// When the label became known (arrival time if the client did not say).
    pub timestamp: Timestamp,
}

/// A row that was not stored, and why. `index` is the row's position in its batch (0-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The offending field (`score`, `features.age`), or empty when the row as a whole is bad.
    pub field: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(index: usize, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            index,
            request_id: None,
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn with_request_id(mut self, id: Option<&str>) -> Self {
        self.request_id = id.map(str::to_string);
        self
    }
}

/// Per-batch bounds on what a single row may carry.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_features: usize,
    pub max_tags: usize,
    pub max_request_id_len: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_features: 2_000,
            max_tags: 64,
            max_request_id_len: 256,
        }
    }
}

const PREDICTION_FIELDS: &[&str] = &[
    "request_id",
    "timestamp",
    "model_version",
    "features",
    "prediction",
    "score",
    "scores",
    "latency_ms",
    "error",
    "tags",
    "role",
    "explanations",
    "cost",
];
const LABEL_FIELDS: &[&str] = &["request_id", "label", "timestamp"];
const KPI_FIELDS: &[&str] = &["name", "value", "timestamp"];
/// Longest KPI name.
pub const MAX_KPI_NAME: usize = 128;

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrediction<'a> {
    request_id: Option<String>,
    /// Borrowed from the row when it has no escapes: it is parsed, not kept.
    #[serde(borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    model_version: Option<String>,
    features: Option<FeaturePairs>,
    prediction: Option<Outcome>,
    score: Option<f64>,
    scores: Option<Pairs<f64>>,
    latency_ms: Option<f64>,
    error: Option<String>,
    tags: Option<Pairs<String>>,
    role: Option<String>,
    explanations: Option<Pairs<f64>>,
    cost: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpi {
    name: Option<String>,
    value: Option<f64>,
    timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    request_id: Option<String>,
    label: Option<Outcome>,
    timestamp: Option<String>,
}

/// Parses and validates one prediction row. `now` is the arrival time, used when the row has no
/// timestamp and to reject timestamps far in the future.
pub fn parse_prediction_row(
    json: &str,
    index: usize,
    now: Timestamp,
    limits: &IngestLimits,
) -> Result<PredictionEvent, Rejection> {
    parse_prediction_row_verbatim(json, index, now, limits).map(|(event, _)| event)
}

/// [`parse_prediction_row`], also telling whether the row as sent parses back to the same
/// event: true unless a default filled a field in (the timestamp, when the row names none). A
/// store may then keep the row's own text rather than encoding the event again, since this
/// function is also how stored rows are read back.
pub fn parse_prediction_row_verbatim(
    json: &str,
    index: usize,
    now: Timestamp,
    limits: &IngestLimits,
) -> Result<(PredictionEvent, bool), Rejection> {
    // The common shape is read by the fast path; serde_json reads the rest and names what is
    // wrong with a bad row.
    let raw: RawPrediction = match fast::prediction(json) {
        Some(r) => r,
        None => match serde_json::from_str(json) {
            Ok(r) => r,
            Err(e) => return Err(diagnose(json, index, PREDICTION_FIELDS, &e)),
        },
    };
    let id = raw.request_id.as_deref();
    let reject =
        |field: &str, reason: String| Rejection::new(index, field, reason).with_request_id(id);

    check_request_id(id, limits).map_err(|r| reject("request_id", r))?;
    let timestamp = match raw.timestamp.as_deref() {
        None => now,
        Some(s) => {
            let t = parse_timestamp(s).map_err(|r| reject("timestamp", r))?;
            t.check_plausible(now).map_err(|r| reject("timestamp", r))?;
            t
        }
    };
    if let Some(v) = &raw.model_version {
        validate_version(v).map_err(|r| reject("model_version", r))?;
    }
    if raw.prediction.is_none() && raw.error.is_none() {
        return Err(reject("prediction", checks::MISSING_PREDICTION.into()));
    }
    if let Some(Outcome::Number(n)) = &raw.prediction {
        if !n.is_finite() {
            return Err(reject("prediction", checks::NOT_FINITE_OUTCOME.into()));
        }
    }
    if let Some(s) = raw.score {
        checks::score(s).map_err(|r| reject("score", r))?;
    }
    let scores = raw.scores.map(|p| p.0);
    if let Some(scores) = &scores {
        checks::scores(scores).map_err(|(field, r)| reject(&field, r))?;
    }
    if let Some(l) = raw.latency_ms {
        checks::latency(l).map_err(|r| reject("latency_ms", r))?;
    }
    if let Some(c) = raw.cost {
        checks::cost(c).map_err(|r| reject("cost", r))?;
    }
    let features = raw.features.map(|f| f.0).unwrap_or_default();
    checks::feature_count(features.len(), limits).map_err(|r| reject("features", r))?;
    for (name, value) in &features {
        if name.is_empty() {
            return Err(reject("features", "a feature has an empty name".into()));
        }
        if let FeatureValue::Number(n) = value {
            if !n.is_finite() {
                return Err(reject(
                    &format!("features.{name}"),
                    checks::NOT_FINITE_FEATURE.into(),
                ));
            }
        }
    }
    let tags = raw.tags.map(|p| p.0).unwrap_or_default();
    checks::tag_count(tags.len(), limits).map_err(|r| reject("tags", r))?;
    let explanations = raw.explanations.map(|p| p.0).unwrap_or_default();
    checks::explanations(&explanations, limits).map_err(|(field, r)| reject(&field, r))?;
    let role = match raw.role.as_deref() {
        None => Role::Served,
        Some(r) => Role::parse(r).ok_or_else(|| {
            reject(
                "role",
                format!("unknown role `{r}`: a prediction is `served` (the default) or `shadow`"),
            )
        })?,
    };
    if role == Role::Shadow && raw.model_version.is_none() {
        return Err(reject(
            "model_version",
            "a shadow prediction must name its model_version: it is stored once per version".into(),
        ));
    }
    let verbatim = raw.timestamp.is_some();
    let event = PredictionEvent {
        request_id: raw.request_id.expect("checked"),
        timestamp,
        model_version: raw.model_version,
        features,
        prediction: raw.prediction,
        score: raw.score,
        scores,
        latency_ms: raw.latency_ms,
        cost: raw.cost,
        error: raw.error,
        tags,
        explanations,
        role,
    };
    Ok((event, verbatim))
}

/// Parses and validates one label row.
pub fn parse_label_row(
    json: &str,
    index: usize,
    now: Timestamp,
    limits: &IngestLimits,
) -> Result<LabelEvent, Rejection> {
    let raw: RawLabel = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => return Err(diagnose(json, index, LABEL_FIELDS, &e)),
    };
    let id = raw.request_id.as_deref();
    let reject =
        |field: &str, reason: String| Rejection::new(index, field, reason).with_request_id(id);
    check_request_id(id, limits).map_err(|r| reject("request_id", r))?;
    let label = raw
        .label
        .ok_or_else(|| reject("label", checks::MISSING_LABEL.into()))?;
    if let Outcome::Number(n) = &label {
        if !n.is_finite() {
            return Err(reject("label", checks::NOT_FINITE_OUTCOME.into()));
        }
    }
    let timestamp = match raw.timestamp.as_deref() {
        None => now,
        Some(s) => {
            let t = parse_timestamp(s).map_err(|r| reject("timestamp", r))?;
            t.check_plausible(now).map_err(|r| reject("timestamp", r))?;
            t
        }
    };
    Ok(LabelEvent {
        request_id: raw.request_id.expect("checked"),
        label,
        timestamp,
    })
}

/// One point of a business KPI series logged beside a model (fraud loss, conversion rate...):
/// `{"name": "fraud_loss_eur", "value": 1520.5, "timestamp": "2026-01-02T00:00:00Z"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiEvent {
    pub name: String,
    pub value: f64,
    pub timestamp: Timestamp,
}

/// Parses and validates one KPI row; `timestamp` defaults to `now`.
pub fn parse_kpi_row(json: &str, index: usize, now: Timestamp) -> Result<KpiEvent, Rejection> {
    let raw: RawKpi = match serde_json::from_str(json) {
        Ok(r) => r,
        Err(e) => return Err(diagnose(json, index, KPI_FIELDS, &e)),
    };
    let reject = |field: &str, reason: &str| Rejection::new(index, field, reason.to_owned());
    let name = raw.name.ok_or_else(|| reject("name", "missing KPI name"))?;
    if name.is_empty() || name.len() > MAX_KPI_NAME || name.chars().any(char::is_control) {
        return Err(reject(
            "name",
            "KPI name must be 1 to 128 characters without control characters",
        ));
    }
    let value = raw.value.ok_or_else(|| reject("value", "missing value"))?;
    if !value.is_finite() {
        return Err(reject("value", "value must be a finite number"));
    }
    let timestamp = match raw.timestamp.as_deref() {
        None => now,
        Some(s) => {
            let t = parse_timestamp(s).map_err(|r| reject("timestamp", &r))?;
            t.check_plausible(now)
                .map_err(|r| reject("timestamp", &r))?;
            t
        }
    };
    Ok(KpiEvent {
        name,
        value,
        timestamp,
    })
}

/// Checks the row's request id; the caller then moves it into the event (no copy).
fn check_request_id(id: Option<&str>, limits: &IngestLimits) -> Result<(), String> {
    let id = id.ok_or_else(|| checks::MISSING_REQUEST_ID.to_string())?;
    checks::request_id(id, limits)
}

/// Finds the field to blame for a row that failed the typed parse.
fn diagnose(json: &str, index: usize, fields: &[&str], err: &serde_json::Error) -> Rejection {
    let value: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => return malformed(json, index, &e),
    };
    let Some(obj) = value.as_object() else {
        return Rejection::new(
            index,
            "",
            format!("a row must be a JSON object, got {}", json_type(&value)),
        );
    };
    let id = obj.get("request_id").and_then(|v| v.as_str());
    let reject =
        |field: &str, reason: String| Rejection::new(index, field, reason).with_request_id(id);
    for key in obj.keys() {
        if !fields.contains(&key.as_str()) {
            return reject(
                key,
                format!("unknown field; expected one of: {}", fields.join(", ")),
            );
        }
    }
    for (key, v) in obj {
        if v.is_null() {
            continue;
        }
        let expect_string = |what: &str| {
            reject(
                key,
                format!("expected {what}, got {} {}", json_type(v), short(v)),
            )
        };
        match key.as_str() {
            "request_id" | "timestamp" | "model_version" | "error" | "name" if !v.is_string() => {
                return expect_string("a string")
            }
            "score" | "latency_ms" | "cost" | "value" if !v.is_number() => {
                return expect_string("a number")
            }
            "prediction" | "label" if v.is_object() || v.is_array() => {
                return expect_string("a class (string, integer or boolean) or a number")
            }
            "features" | "scores" | "tags" | "explanations" => {
                let Some(map) = v.as_object() else {
                    return expect_string("an object");
                };
                for (k, item) in map {
                    let field = format!("{key}.{k}");
                    let bad = match key.as_str() {
                        "features" if item.is_object() || item.is_array() => Some(
                            "nested objects and arrays are not supported: flatten the feature"
                                .to_string(),
                        ),
                        "scores" if !item.is_number() => {
                            Some(format!("expected a probability, got {}", json_type(item)))
                        }
                        "tags" if !item.is_string() => {
                            Some(format!("expected a string, got {}", json_type(item)))
                        }
                        "explanations" if !item.is_number() => Some(format!(
                            "expected a number (the feature's attribution), got {} {}",
                            json_type(item),
                            short(item)
                        )),
                        _ => None,
                    };
                    if let Some(reason) = bad {
                        return reject(&field, reason);
                    }
                }
            }
            _ => {}
        }
    }
    // The generic value keeps only the last of two equal keys; the typed parse names it.
    let msg = err.to_string();
    if let Some(rest) = msg
        .strip_prefix("duplicate key `")
        .or_else(|| msg.strip_prefix("duplicate field `"))
    {
        if let Some(name) = rest.split('`').next() {
            let parent = ["features", "scores", "tags", "explanations"]
                .into_iter()
                .find(|p| obj.get(*p).and_then(|o| o.get(name)).is_some());
            let field = parent.map_or(name.to_string(), |p| format!("{p}.{name}"));
            return reject(&field, "appears twice in the same object".into());
        }
    }
    reject("", msg)
}

/// A row that is not JSON at all: the field being read where the parse stopped, and what is
/// wrong there in the user's words (serde_json says "expected value at line 1 column 50").
fn malformed(json: &str, index: usize, e: &serde_json::Error) -> Rejection {
    let offset = byte_offset(json, e.line(), e.column());
    let at = |s: &str| {
        let from = offset.saturating_sub(1);
        json.get(from..).is_some_and(|t| t.starts_with(s))
            || json.get(offset..).is_some_and(|t| t.starts_with(s))
    };
    let msg = e.to_string();
    let reason = if at("NaN") || at("Infinity") || at("-Infinity") {
        "NaN and Infinity are not JSON numbers: send null for a missing value".to_string()
    } else if msg.starts_with("number out of range") {
        "number out of range: beyond what a 64-bit float holds (about ±1.8e308)".to_string()
    } else if msg.starts_with("recursion limit exceeded") {
        "nested too deep: a row is an object of fields, and feature values are not nested"
            .to_string()
    } else if msg.contains("surrogate") || msg.contains("hex escape") {
        "invalid \\u escape: it takes four hex digits, and a lone UTF-16 surrogate \
         (\\ud800-\\udfff) is not a character"
            .to_string()
    } else {
        format!("malformed JSON: {msg}")
    };
    Rejection::new(index, path_at(json, offset), reason)
}

/// Byte offset of serde_json's 1-based line and column in `json`.
fn byte_offset(json: &str, line: usize, column: usize) -> usize {
    let line_start: usize = json
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column).min(json.len())
}

/// The dotted path (`features.age`, `scores.1`) of the value being read at byte `offset` of
/// `json`, as far as a scan of the text up to there tells; empty at the top level.
fn path_at(json: &str, offset: usize) -> String {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array(usize),
    }
    let bytes = json.as_bytes();
    let end = offset.min(bytes.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
            }
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object {
                    key,
                    want_key: true,
                }) = stack.last_mut()
                {
                    let stop = i.min(bytes.len());
                    *key = Some(String::from_utf8_lossy(&bytes[start..stop]).into_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack
        .iter()
        .filter_map(|f| match f {
            Frame::Object { key, .. } => key.clone(),
            Frame::Array(n) => Some(n.to_string()),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// A JSON object read as its pairs in the order sent, refusing repeated keys (which
/// `serde_json::Value` would silently collapse to the last). Serializes back as an object in the
/// same order.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs<V>(pub Vec<(String, V)>);

impl<V: Serialize> Serialize for Pairs<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        pairs_as_map(&self.0, s)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Pairs<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
            type Value = Pairs<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Pairs<V>, A::Error> {
                let mut out: Vec<(String, V)> = Vec::with_capacity(m.size_hint().unwrap_or(16));
                while let Some((k, v)) = m.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                if let Some(dup) = duplicate_name(&out) {
                    return Err(de::Error::custom(format_args!("duplicate key `{dup}`")));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(PairsVisitor(std::marker::PhantomData))
    }
}

/// Features as parsed from JSON. Names go through a per-thread cache of the previous row's names
/// by position: the rows of a batch mostly carry the same names in the same order, so they share
/// one [`FeatureName`] each instead of allocating it again for every row.
#[derive(Debug, PartialEq)]
struct FeaturePairs(Vec<(FeatureName, FeatureValue)>);

/// Positions remembered by the name cache: far above real feature counts, a bound on memory.
const RECENT_NAMES_MAX: usize = 4096;

/// The per-thread cache of feature names by position.
struct RecentNames {
    names: Vec<FeatureName>,
    /// How many of the first `names` are known to be pairwise different (a row that held
    /// exactly them passed the duplicate check). A row whose every name came from that prefix
    /// needs no check of its own: on a stream of rows with the same names, hashing and sorting
    /// them again was about 4 % of the server's CPU (on arrival and when read back).
    distinct: usize,
}

thread_local! {
    static RECENT_NAMES: std::cell::RefCell<RecentNames> = const {
        std::cell::RefCell::new(RecentNames { names: Vec::new(), distinct: 0 })
    };
}

impl<'de> Deserialize<'de> for FeaturePairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = FeaturePairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<FeaturePairs, A::Error> {
                RECENT_NAMES.with(|recent| {
                    let mut recent = recent.borrow_mut();
                    let mut out = recent.new_row(m.size_hint());
                    while let Some(name) = m.next_key_seed(NameSeed {
                        recent: &mut recent,
                        position: out.len(),
                    })? {
                        out.push((name, m.next_value::<FeatureValue>()?));
                    }
                    recent
                        .end_row(&out)
                        .map_err(|dup| de::Error::custom(format_args!("duplicate key `{dup}`")))?;
                    Ok(FeaturePairs(out))
                })
            }
        }
        d.deserialize_map(PairsVisitor)
    }
}

/// Reads one feature name, reusing the name the previous row had at the same position.
struct NameSeed<'a> {
    recent: &'a mut RecentNames,
    position: usize,
}

impl<'de> de::DeserializeSeed<'de> for NameSeed<'_> {
    type Value = FeatureName;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FeatureName, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for NameSeed<'_> {
    type Value = FeatureName;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a feature name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureName, E> {
        Ok(self.recent.name(self.position, v))
    }
}

impl RecentNames {
    /// An empty feature vector for the next row. serde_json gives no size hint: the previous
    /// rows' feature count is the best guess (growing the vector from 16 to 32 for 25
    /// features, then freeing the 16, cost about 1 % of the server's CPU).
    fn new_row(&self, size_hint: Option<usize>) -> Vec<(FeatureName, FeatureValue)> {
        Vec::with_capacity(size_hint.unwrap_or(self.names.len().clamp(4, 256)))
    }

    /// The name at `position` of a row: the previous row's when it is the same.
    fn name(&mut self, position: usize, v: &str) -> FeatureName {
        let p = position;
        if let Some(known) = self.names.get(p).filter(|n| n.as_str() == v) {
            return known.clone();
        }
        let name = FeatureName::from(v);
        // A name that is not the cached one: the prefix known distinct ends before it (also
        // when it cannot be cached, so the check runs for this row).
        self.distinct = self.distinct.min(p);
        if p < self.names.len() {
            self.names[p] = name.clone();
        } else if p == self.names.len() && p < RECENT_NAMES_MAX {
            self.names.push(name.clone());
        }
        name
    }

    /// Checks a row's names once they are all read: the repeated one, if any.
    fn end_row<'r>(&mut self, row: &'r [(FeatureName, FeatureValue)]) -> Result<(), &'r str> {
        // Every name is the cached one at its position (a miss replaces the cache entry and
        // shortens the distinct prefix to it).
        if row.len() <= self.distinct {
            return Ok(());
        }
        if let Some(dup) = duplicate_name(row) {
            return Err(dup);
        }
        // The row's names are the cache's first ones (unless it outgrew the cache).
        if row.len() <= self.names.len() {
            self.distinct = row.len();
        }
        Ok(())
    }
}

fn duplicate_name<K: AsRef<str>, T>(pairs: &[(K, T)]) -> Option<&str> {
    // Every row's features pass here, so this is on the ingest hot path. Comparing all pairs of
    // names costs n^2/2 string compares (300 for 25 features); instead hash each name, sort the
    // hashes, and compare names only within runs of equal hashes.
    let mut hashed: Vec<(u64, usize)> = pairs
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (fnv1a(name.as_ref().as_bytes()), i))
        .collect();
    hashed.sort_unstable();
    let mut start = 0;
    while start < hashed.len() {
        let mut end = start + 1;
        while end < hashed.len() && hashed[end].0 == hashed[start].0 {
            end += 1;
        }
        let run = &hashed[start..end];
        for (k, (_, i)) in run.iter().enumerate() {
            if let Some((_, j)) = run[k + 1..]
                .iter()
                .find(|(_, j)| pairs[*j].0.as_ref() == pairs[*i].0.as_ref())
            {
                return Some(pairs[(*i).max(*j)].0.as_ref());
            }
        }
        start = end;
    }
    None
}

/// FNV-1a: a fast, deterministic hash for short strings (not for untrusted keys in a table).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

struct ScalarVisitor;

/// What a JSON scalar is, for both feature values and outcomes.
enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
}

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
}

impl<'de> Deserialize<'de> for FeatureValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match d.deserialize_any(ScalarVisitor)? {
            Scalar::Null => FeatureValue::Null,
            Scalar::Bool(b) => FeatureValue::Bool(b),
            Scalar::Number(n) => FeatureValue::Number(n),
            Scalar::Text(s) => FeatureValue::Text(s),
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(ScalarVisitor)? {
            Scalar::Null => Err(de::Error::custom("expected a class or a number, got null")),
            Scalar::Bool(b) => Ok(Outcome::Bool(b)),
            Scalar::Number(n) => Ok(Outcome::Number(n)),
            Scalar::Text(s) => Ok(Outcome::Text(s)),
        }
    }
}

fn pairs_as_map<S: Serializer, K: Serialize, V: Serialize>(
    pairs: &[(K, V)],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

fn opt_pairs_as_map<S: Serializer>(
    pairs: &Option<Vec<(String, f64)>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match pairs {
        Some(p) => pairs_as_map(p, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests;

/// One row of a model's reference (baseline) dataset: features, and where the reference carries
/// them, the model's prediction, scores and the true label (for baseline performance).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ReferenceRow {
    #[serde(serialize_with = "pairs_as_map")]
    pub features: Vec<(FeatureName, FeatureValue)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_pairs_as_map"
    )]
    pub scores: Option<Vec<(String, f64)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Outcome>,
    /// Per-feature attributions of the reference row's prediction, when the reference carries
    /// them (`explanation.<feature>` columns, or `explanations` in an event-shaped row).
    #[serde(serialize_with = "pairs_as_map", skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<(String, f64)>,
}
