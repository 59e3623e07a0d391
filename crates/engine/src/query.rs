//! What a query asks: the parameters of a performance report and of a drift or quality report,
//! which the [`crate::planner`] reads to choose between the per-hour state and a scan.

use modelwatch_core::{FeatureValue, Outcome, PredictionEvent, Timestamp, Window};
use modelwatch_stats::perf::MetricConfig;

use crate::error::EngineError;
use crate::state::Task;

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct PerformanceQuery {
    pub window: Option<Window>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
    /// The `segment` parameter as given (see [`Segment`]): a breakdown by value (`country`,
    /// `tag:region`) or one value's slice (`country:DE`, `tag:region:eu`). Parsed by
    /// [`Segment::parse`] when the report is made.
    pub segment: Option<String>,
    /// Overrides detection.
    pub task: Option<Task>,
    /// What-if binary decision threshold: when given, the score decides at it instead of
    /// the logged prediction.
    pub threshold: Option<f64>,
    pub config: MetricConfig,
}

/// What a segment is cut by: a feature, or a tag (`tag:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SegmentKey {
    Feature(String),
    Tag(String),
}

impl SegmentKey {
    /// `tag:<name>` is a tag, anything else a feature's name (taken whole, `:` included).
    pub fn parse(s: &str) -> SegmentKey {
        match s.strip_prefix("tag:") {
            Some(tag) => SegmentKey::Tag(tag.to_owned()),
            None => SegmentKey::Feature(s.to_owned()),
        }
    }

    /// The event's value of the feature or tag as a segment's name: `(missing)` when the event
    /// has none, `(null)` for a null feature, numbers as classes are named (`30`, `0.5`).
    pub fn value_of(&self, p: &PredictionEvent) -> String {
        match self {
            SegmentKey::Tag(tag) => p
                .tags
                .iter()
                .find(|(k, _)| k == tag)
                .map_or_else(|| "(missing)".to_owned(), |(_, v)| v.clone()),
            SegmentKey::Feature(name) => match p.features.iter().find(|(k, _)| **k == **name) {
                None => "(missing)".to_owned(),
                Some((_, FeatureValue::Null)) => "(null)".to_owned(),
                Some((_, FeatureValue::Bool(b))) => b.to_string(),
                Some((_, FeatureValue::Number(n))) => Outcome::Number(*n).class_key(),
                Some((_, FeatureValue::Text(s))) => s.clone(),
            },
        }
    }
}

impl From<&str> for SegmentKey {
    fn from(s: &str) -> SegmentKey {
        SegmentKey::parse(s)
    }
}

impl std::fmt::Display for SegmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentKey::Feature(name) => f.write_str(name),
            SegmentKey::Tag(tag) => write!(f, "tag:{tag}"),
        }
    }
}

/// The `segment` parameter, one grammar with one meaning on `/metrics` and `/drift` (and the
/// CLI): a segment is the traffic of one value of a feature or a tag.
///
/// - `country`, `tag:region` (no value): every value, one breakdown per value (the 10 with most
///   predictions plus `other`); only a report that can list values answers it (`/metrics`).
/// - `country:DE`, `tag:region:eu`: only the events whose feature or tag has that value, on
///   every report. The value is everything after the name's `:`, so it may hold `:` itself.
///
/// `tag:` always names a tag. A feature whose own name holds `:` is read as a name and a value,
/// unless the model has no feature of that shorter name and one of the whole name: then it is
/// the whole name's breakdown, as `/metrics` read it before values could be given
/// ([`Segment::for_features`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub key: SegmentKey,
    /// `None`: a breakdown by value; `Some`: that value's slice.
    pub value: Option<String>,
}

impl Segment {
    /// The one parser of `segment`. An empty name is refused, with what to write instead.
    pub fn parse(s: &str) -> Result<Segment, EngineError> {
        let invalid = |why: &'static str| EngineError::InvalidSegment {
            given: s.to_owned(),
            why,
        };
        let (key, value) = match s.strip_prefix("tag:") {
            Some(rest) => match rest.split_once(':') {
                Some((tag, value)) => (SegmentKey::Tag(tag.to_owned()), Some(value)),
                None => (SegmentKey::Tag(rest.to_owned()), None),
            },
            None => match s.split_once(':') {
                Some((feature, value)) => (SegmentKey::Feature(feature.to_owned()), Some(value)),
                None => (SegmentKey::Feature(s.to_owned()), None),
            },
        };
        match &key {
            SegmentKey::Tag(t) if t.trim().is_empty() => Err(invalid(
                "no tag is named: use tag:<name> (each value) or tag:<name>:<value>, e.g. tag:region:eu",
            )),
            SegmentKey::Feature(f) if f.trim().is_empty() => Err(invalid(
                "no feature is named: use a feature (each value) or feature:value, e.g. country:DE",
            )),
            // A feature name as it was written: `country :DE` names `country ` (the filter
            // before this grammar trimmed it, so it still does).
            SegmentKey::Feature(f) => Ok(Segment {
                key: SegmentKey::Feature(if value.is_some() {
                    f.trim().to_owned()
                } else {
                    f.clone()
                }),
                value: value.map(str::to_owned),
            }),
            SegmentKey::Tag(_) => Ok(Segment {
                key,
                value: value.map(str::to_owned),
            }),
        }
    }

    /// This segment for a model with these features: `a:b` is the breakdown by a feature named
    /// `a:b` when there is one and no feature `a` (what `/metrics?segment=a:b` meant before
    /// values could be named).
    pub fn for_features<'a>(self, mut features: impl Iterator<Item = &'a str> + Clone) -> Segment {
        if let (SegmentKey::Feature(f), Some(v)) = (&self.key, &self.value) {
            let whole = format!("{f}:{v}");
            if !features.clone().any(|n| n == f) && features.any(|n| n == whole) {
                return Segment {
                    key: SegmentKey::Feature(whole),
                    value: None,
                };
            }
        }
        self
    }

    /// The slice's value; an error for a breakdown, which `report` (what is asked) cannot list.
    pub fn slice(&self, report: &'static str) -> Result<&str, EngineError> {
        self.value
            .as_deref()
            .ok_or_else(|| EngineError::SegmentNeedsValue {
                given: self.to_string(),
                report,
            })
    }

    /// True when the event is in the segment: for a slice, its feature equals the value (text
    /// exactly, numbers numerically, `age:30` matching 30.0; booleans as `true` / `false`) or
    /// its tag is the value; a breakdown holds every event.
    pub fn matches(&self, p: &PredictionEvent) -> bool {
        let Some(value) = &self.value else {
            return true;
        };
        match &self.key {
            SegmentKey::Tag(tag) => p.tags.iter().any(|(k, v)| k == tag && v == value),
            SegmentKey::Feature(name) => {
                let Some((_, v)) = p.features.iter().find(|(n, _)| **n == **name) else {
                    return false;
                };
                match v {
                    FeatureValue::Text(t) => t == value,
                    FeatureValue::Number(x) => value.trim().parse::<f64>().is_ok_and(|y| y == *x),
                    FeatureValue::Bool(b) => value.trim() == if *b { "true" } else { "false" },
                    FeatureValue::Null => value == "null",
                }
            }
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{v}", self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

/// What a feedback query covers.
#[derive(Debug, Clone)]
pub struct FeedbackQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
    /// The tag (name, value) that marks exploration traffic.
    pub exploration: (String, String),
}

/// What a drift or quality query covers.
#[derive(Debug, Clone)]
pub struct DriftQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// One version's predictions (and its reference when it has one).
    pub version: Option<String>,
    pub segment: Option<Segment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(name: &str, value: Option<&str>) -> Segment {
        Segment {
            key: SegmentKey::Feature(name.into()),
            value: value.map(Into::into),
        }
    }

    fn tag(name: &str, value: Option<&str>) -> Segment {
        Segment {
            key: SegmentKey::Tag(name.into()),
            value: value.map(Into::into),
        }
    }

    /// The grammar, form by form, and each form written back as it was given.
    #[test]
    fn one_grammar_for_a_breakdown_and_a_slice() {
        for (given, want) in [
            ("country", feature("country", None)),
            ("tag:region", tag("region", None)),
            ("country:DE", feature("country", Some("DE"))),
            ("tag:region:eu", tag("region", Some("eu"))),
            // The value is everything after the name, `:` included; it may be empty.
            ("url:http://x", feature("url", Some("http://x"))),
            ("tag:src:a:b", tag("src", Some("a:b"))),
            ("country:", feature("country", Some(""))),
        ] {
            let got = Segment::parse(given).unwrap();
            assert_eq!(got, want, "{given}");
            assert_eq!(got.to_string(), given);
        }
        // What the drift filter trimmed before, it still trims.
        assert_eq!(
            Segment::parse(" country :DE").unwrap(),
            feature("country", Some("DE"))
        );
        for bad in ["", ":DE", " :DE", "tag:", "tag::eu", "tag: :eu"] {
            assert!(
                matches!(Segment::parse(bad), Err(EngineError::InvalidSegment { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_feature_named_with_a_colon_keeps_its_breakdown() {
        let names = ["plan:tier", "age"];
        let s = Segment::parse("plan:tier").unwrap();
        assert_eq!(
            s.for_features(names.iter().copied()),
            feature("plan:tier", None)
        );
        // A feature of the shorter name wins: then it is that feature's value.
        let names = ["plan", "plan:tier"];
        let s = Segment::parse("plan:tier").unwrap();
        assert_eq!(
            s.for_features(names.iter().copied()),
            feature("plan", Some("tier"))
        );
    }
}
