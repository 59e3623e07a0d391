//! What a query asks: the parameters of a performance report and of a drift or quality report,
//! which the [`crate::planner`] reads to choose between the per-hour state and a scan.

use modelwatch_core::{FeatureName, FeatureValue, Timestamp, Window};
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
    /// A feature name, or `tag:<name>`.
    pub segment: Option<String>,
    /// Overrides detection.
    pub task: Option<Task>,
    /// What-if binary decision threshold: when given, the score decides at it instead of
    /// the logged prediction.
    pub threshold: Option<f64>,
    pub config: MetricConfig,
}

/// `feature:value`: only events whose feature has this value.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub feature: String,
    pub value: String,
}

impl Segment {
    pub fn parse(s: &str) -> Result<Segment, EngineError> {
        match s.split_once(':') {
            Some((f, v)) if !f.trim().is_empty() => Ok(Segment {
                feature: f.trim().to_string(),
                value: v.to_string(),
            }),
            _ => Err(EngineError::InvalidSegment(s.to_string())),
        }
    }

    /// True when the event's feature equals the value: text exactly, numbers numerically
    /// (`age:30` matches 30.0), booleans as `true` / `false`.
    pub fn matches(&self, features: &[(FeatureName, FeatureValue)]) -> bool {
        let Some((_, v)) = features.iter().find(|(n, _)| *n == self.feature) else {
            return false;
        };
        match v {
            FeatureValue::Text(t) => *t == self.value,
            FeatureValue::Number(x) => self.value.trim().parse::<f64>().is_ok_and(|y| y == *x),
            FeatureValue::Bool(b) => self.value.trim() == if *b { "true" } else { "false" },
            FeatureValue::Null => self.value == "null",
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
