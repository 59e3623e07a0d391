//! Alert rules: what a user writes (JSON over the API, TOML in the config file), and the checks
//! that turn it into a [`Rule`] or a [`RuleError`] naming the field and the problem.

use modelwatch_core::Window;
use modelwatch_stats::estimate::EstimatedMetric;
use modelwatch_stats::perf::MetricName;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the rule asks people to do when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Retrain,
    Rollback,
    Review,
    DataIncident,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Retrain => "retrain",
            Decision::Rollback => "rollback",
            Decision::Review => "review",
            Decision::DataIncident => "data-incident",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A comparison of a value with a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Op::Lt => value < bound,
            Op::Le => value <= bound,
            Op::Gt => value > bound,
            Op::Ge => value >= bound,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// Which way a change must go to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Below,
    Above,
    #[default]
    Any,
}

impl Direction {
    /// Whether a signed change goes this way.
    pub fn matches(self, delta: f64) -> bool {
        match self {
            Direction::Below => delta < 0.0,
            Direction::Above => delta > 0.0,
            Direction::Any => delta != 0.0,
        }
    }
}

/// A span of time written `0`, `30s`, `10m`, `2h` or `7d`. JSON and TOML: that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration {
    pub seconds: i64,
}

impl Duration {
    pub fn parse(s: &str) -> Result<Duration, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(Duration { seconds: 0 });
        }
        let bad =
            || format!("{s:?} is not a duration: use a number and a unit s, m, h or d, e.g. 10m");
        let (n, unit) = modelwatch_core::split_span(t).ok_or_else(bad)?;
        let unit = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        if !(0..=3650 * 86_400 / unit).contains(&n) {
            return Err(bad());
        }
        Ok(Duration { seconds: n * unit })
    }

    pub fn micros(self) -> i64 {
        self.seconds * 1_000_000
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        match s {
            0 => f.write_str("0"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// When the rule's signal is a problem. JSON: `{"kind": "threshold", "op": "<", "value": 0.9}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The latest window's value compared with a bound.
    Threshold { op: Op, value: f64 },
    /// The latest window's value moved more than `relative` (0.05 = 5 %) against the reference
    /// baseline, in `direction`; with `require_significant` (the default) only when the
    /// engine's test says the change is significant, so a move inside the noise raises nothing.
    Baseline {
        direction: Direction,
        relative: f64,
        #[serde(default = "yes")]
        require_significant: bool,
    },
    /// The mean of the last `windows` windows compared with a bound.
    RollingMean { windows: u32, op: Op, value: f64 },
    /// The least-squares slope over the last `windows` windows (change per window) compared
    /// with a bound: `{"op": "<", "value": -0.01}` is "falling by more than 0.01 a window".
    Trend { windows: u32, op: Op, value: f64 },
    /// The engine's significance test against the baseline says the latest window changed.
    SignificantChange {
        #[serde(default)]
        direction: Direction,
    },
    /// The latest window is more than `z` standard deviations from the mean of the `windows`
    /// windows before it (for `predictions`: a volume anomaly).
    Anomaly {
        windows: u32,
        z: f64,
        #[serde(default)]
        direction: Direction,
    },
    /// Nothing arrived for longer than `max_age` (signals `events` and `labels`).
    Freshness { max_age: Duration },
    /// The job's latest run failed, or no run was reported for longer than `max_age`
    /// (signal `heartbeat:<job>`).
    Heartbeat { max_age: Duration },
}

fn yes() -> bool {
    true
}

impl Condition {
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::Threshold { .. } => "threshold",
            Condition::Baseline { .. } => "baseline",
            Condition::RollingMean { .. } => "rolling_mean",
            Condition::Trend { .. } => "trend",
            Condition::SignificantChange { .. } => "significant_change",
            Condition::Anomaly { .. } => "anomaly",
            Condition::Freshness { .. } => "freshness",
            Condition::Heartbeat { .. } => "heartbeat",
        }
    }

    /// Windows the condition looks at (the latest one included).
    pub fn windows_needed(&self) -> usize {
        match self {
            Condition::RollingMean { windows, .. } | Condition::Trend { windows, .. } => {
                *windows as usize
            }
            Condition::Anomaly { windows, .. } => *windows as usize + 1,
            _ => 1,
        }
    }
}

/// Performance metric names of the engine's per-window report (scikit-learn's names), from
/// the one vocabulary (`modelwatch_stats::perf::MetricName`).
pub const PERFORMANCE_METRICS: &[&str] = &modelwatch_stats::perf::MetricName::NAMES;

/// A label-free per-window value of the performance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationalSignal {
    Predictions,
    ErrorRate,
    LabelCoverage,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    AverageConfidence,
    PredictionEntropy,
    TopClassShare,
}

impl OperationalSignal {
    /// Every operational signal, in the order the docs list them.
    pub const ALL: [OperationalSignal; 9] = [
        OperationalSignal::Predictions,
        OperationalSignal::ErrorRate,
        OperationalSignal::LabelCoverage,
        OperationalSignal::LatencyP50,
        OperationalSignal::LatencyP95,
        OperationalSignal::LatencyP99,
        OperationalSignal::AverageConfidence,
        OperationalSignal::PredictionEntropy,
        OperationalSignal::TopClassShare,
    ];

    /// Their names, in the order of [`OperationalSignal::ALL`].
    pub const NAMES: [&'static str; 9] = {
        let mut out = [""; 9];
        let mut i = 0;
        while i < out.len() {
            out[i] = Self::ALL[i].as_str();
            i += 1;
        }
        out
    };

    /// The signal's name in rules and `GET /metrics`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationalSignal::Predictions => "predictions",
            OperationalSignal::ErrorRate => "error_rate",
            OperationalSignal::LabelCoverage => "label_coverage",
            OperationalSignal::LatencyP50 => "latency_p50",
            OperationalSignal::LatencyP95 => "latency_p95",
            OperationalSignal::LatencyP99 => "latency_p99",
            OperationalSignal::AverageConfidence => "average_confidence",
            OperationalSignal::PredictionEntropy => "prediction_entropy",
            OperationalSignal::TopClassShare => "top_class_share",
        }
    }

    /// The signal of this name, if there is one.
    pub fn parse(name: &str) -> Option<OperationalSignal> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// Label-free per-window values of the performance report.
pub const OPERATIONAL_SIGNALS: &[&str] = &OperationalSignal::NAMES;

/// Every kind of signal a rule accepts, as written (`<...>` stands for a name). The one list:
/// the validator's message names them, and the alerts test of the real binary
/// (`crates/cli/tests/cli/alerts.rs`) shows a rule of each kind fire, so a kind added here
/// without a firing test fails there.
pub const SIGNAL_KINDS: &[&str] = &[
    "<metric>",
    "<operational>",
    "precision:<class>",
    "recall:<class>",
    "f1:<class>",
    "kpi:<name>",
    "estimated:<metric>",
    "drift_share",
    "drift:<column>",
    "reconstruction_error",
    "multivariate_drift",
    "outlier_rate",
    "probing",
    "domain_classifier_auc",
    "quality_flags",
    "null_rate:<feature>",
    "out_of_range:<feature>",
    "unseen:<feature>",
    "fairness:<measure>:<attribute>",
    "attribution:<feature>",
    "cost",
    "slo_burn_rate",
    "slo_budget_remaining",
    "concept:<detector>",
    "events",
    "labels",
    "heartbeat:<job>",
];

/// The per-class metrics a rule can watch (`recall:<class>`...).
pub const CLASS_METRICS: [MetricName; 3] =
    [MetricName::Precision, MetricName::Recall, MetricName::F1];

/// What a rule watches. Written as a string: a metric name (`f1`), an operational value
/// (`error_rate`), a class's metric (`recall:fraud`), a KPI (`kpi:fraud_loss_eur`),
/// `drift_share`, `drift:<column>`, `reconstruction_error`, `multivariate_drift`,
/// `domain_classifier_auc`, `outlier_rate`, `probing`, `quality_flags`, `null_rate:<feature>`,
/// `out_of_range:<feature>`, `unseen:<feature>`, `fairness:<measure>:<attribute>`,
/// `attribution:<feature>`, `cost`, `slo_burn_rate`, `slo_budget_remaining`,
/// `concept:<detector>`, `events`, `labels` or `heartbeat:<job>`
/// ([`SIGNAL_KINDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A performance metric, with its interval and baseline comparison.
    Metric(MetricName),
    /// A label-free value of the window (volume, errors, latency, feedback-loop signals).
    Operational(OperationalSignal),
    /// One class's precision, recall or F1 (one-vs-rest): `(metric, class)`, the metric one
    /// of [`CLASS_METRICS`].
    ClassMetric(MetricName, String),
    /// The mean of a business KPI's points in the window.
    Kpi(String),
    /// A label-free estimate of a metric (`estimated:<metric>`, CBPE for classifiers, DLE's
    /// `mae` / `rmse` for regression), known before the labels.
    Estimated(EstimatedMetric),
    /// Share of evaluated features that drifted in the window.
    DriftShare,
    /// 1 when the column (a feature, `prediction`, `score` or `label`) drifted, else 0.
    Drift(String),
    /// The window's mean PCA reconstruction error (multivariate drift).
    ReconstructionError,
    /// 1 when the window's reconstruction error left the reference band, else 0.
    MultivariateDrift,
    /// Share of the window's rows whose HBOS score is above the reference's 99th percentile.
    OutlierRate,
    /// Tag values (clients) of the window flagged as possible boundary probing.
    Probing,
    /// The window's domain-classifier ROC AUC (0.5: its rows look like the reference's).
    DomainClassifierAuc,
    /// Number of data-quality flags in the window.
    QualityFlags,
    NullRate(String),
    OutOfRange(String),
    Unseen(String),
    /// A gap between the groups of a protected attribute (`fairness:<measure>:<attribute>`):
    /// `(measure, attribute)`, the measure one of `modelwatch_stats::fairness::MEASURES`, the
    /// attribute as the model's fairness setting names it (`sex`, `tag:region`).
    Fairness(String, String),
    /// How much more (or less) of the model's attribution a feature takes than in the
    /// reference (`attribution:<feature>`): the window's share of mean |attribution| minus the
    /// reference's, in [-1, 1] (`modelwatch_engine::attribution`); positive when the feature
    /// drives the model more than it did.
    Attribution(String),
    /// The window's total cost: the events' `cost`, plus the model's rate for the predictions
    /// without one (`modelwatch_engine::service_levels`).
    Cost,
    /// The window's burn rate of the model's latency objective: its share of slow requests
    /// over the share the objective allows (SRE workbook; 1 spends the budget in 30 days).
    SloBurnRate,
    /// The share of the latency objective's error budget left over the 30 days ending at the
    /// window's end (1 untouched, below 0 overspent).
    SloBudgetRemaining,
    /// Change points a concept-drift detector flags in the window's stream of errors
    /// (`concept:<detector>`, `modelwatch_engine::concept`; the detectors run over the rule's
    /// range in event-time order), summed over versions: `> 0` is "the relation between inputs
    /// and outcome changed in this window".
    Concept(modelwatch_stats::concept::DetectorKind),
    /// Time since the last prediction arrived.
    Events,
    /// Time since the last label arrived.
    Labels,
    Heartbeat(String),
}

impl Signal {
    pub fn parse(s: &str) -> Result<Signal, String> {
        let named =
            |prefix: &str, make: &dyn Fn(String) -> Signal| -> Option<Result<Signal, String>> {
                s.strip_prefix(prefix).map(|rest| {
                    let rest = rest.trim();
                    if rest.is_empty() {
                        Err(format!("`{prefix}` needs a name after the colon"))
                    } else {
                        Ok(make(rest.to_owned()))
                    }
                })
            };
        if let Some(rest) = s.strip_prefix("estimated:") {
            let m = rest.trim();
            return EstimatedMetric::parse(m)
                .map(Signal::Estimated)
                .ok_or_else(|| {
                    format!(
                        "`estimated:` takes a metric estimated before the labels, one of {}: \
                         got {m:?}",
                        EstimatedMetric::NAMES
                            .iter()
                            .chain(&EstimatedMetric::REGRESSION_NAMES)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
        }
        if let Some(rest) = s.strip_prefix("fairness:") {
            return Signal::parse_fairness(rest);
        }
        if let Some(rest) = s.strip_prefix("concept:") {
            use modelwatch_stats::concept::DetectorKind;
            let d = rest.trim();
            return DetectorKind::parse(d).map(Signal::Concept).ok_or_else(|| {
                let names: Vec<&str> = DetectorKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "`concept:` takes a concept-drift detector, one of {}: got {d:?}",
                    names.join(", ")
                )
            });
        }
        let class = |m: MetricName| move |c: String| Signal::ClassMetric(m, c);
        if let Some(r) = named("drift:", &Signal::Drift)
            .or_else(|| named("null_rate:", &Signal::NullRate))
            .or_else(|| named("out_of_range:", &Signal::OutOfRange))
            .or_else(|| named("unseen:", &Signal::Unseen))
            .or_else(|| named("attribution:", &Signal::Attribution))
            .or_else(|| named("heartbeat:", &Signal::Heartbeat))
            .or_else(|| named("kpi:", &Signal::Kpi))
            .or_else(|| named("precision:", &class(MetricName::Precision)))
            .or_else(|| named("recall:", &class(MetricName::Recall)))
            .or_else(|| named("f1:", &class(MetricName::F1)))
        {
            return r;
        }
        match s {
            "drift_share" => Ok(Signal::DriftShare),
            "reconstruction_error" => Ok(Signal::ReconstructionError),
            "multivariate_drift" => Ok(Signal::MultivariateDrift),
            "outlier_rate" => Ok(Signal::OutlierRate),
            "probing" => Ok(Signal::Probing),
            "domain_classifier_auc" => Ok(Signal::DomainClassifierAuc),
            "quality_flags" => Ok(Signal::QualityFlags),
            "cost" => Ok(Signal::Cost),
            "slo_burn_rate" => Ok(Signal::SloBurnRate),
            "slo_budget_remaining" => Ok(Signal::SloBudgetRemaining),
            "events" => Ok(Signal::Events),
            "labels" => Ok(Signal::Labels),
            name => match (MetricName::parse(name), OperationalSignal::parse(name)) {
                (Some(m), _) => Ok(Signal::Metric(m)),
                (None, Some(o)) => Ok(Signal::Operational(o)),
                (None, None) => Err(format!(
                    "unknown signal {name:?}: use one of {} where <metric> is one of {} and \
                     <operational> one of {}",
                    SIGNAL_KINDS.join(", "),
                    PERFORMANCE_METRICS.join(", "),
                    OPERATIONAL_SIGNALS.join(", ")
                )),
            },
        }
    }

    /// `<measure>:<attribute>` of a `fairness:` signal.
    fn parse_fairness(rest: &str) -> Result<Signal, String> {
        let measures = modelwatch_stats::fairness::MEASURES;
        let (measure, attribute) = rest.split_once(':').unwrap_or((rest, ""));
        let measure = measure.trim();
        if !measures.contains(&measure) {
            return Err(format!(
                "`fairness:<measure>:<attribute>` takes a measure, one of {}: got {measure:?}",
                measures.join(", ")
            ));
        }
        let attribute = attribute.trim();
        if attribute.is_empty() {
            return Err(format!(
                "`fairness:{measure}:` needs a protected attribute after the colon, as the \
                 model's fairness setting names it (e.g. fairness:{measure}:sex)"
            ));
        }
        Ok(Signal::Fairness(measure.to_owned(), attribute.to_owned()))
    }

    /// The entry of [`SIGNAL_KINDS`] this signal is of.
    pub fn kind(&self) -> &'static str {
        match self {
            Signal::Metric(_) => "<metric>",
            Signal::Operational(_) => "<operational>",
            Signal::ClassMetric(m, _) => match m {
                MetricName::Precision => "precision:<class>",
                MetricName::Recall => "recall:<class>",
                _ => "f1:<class>",
            },
            Signal::Kpi(_) => "kpi:<name>",
            Signal::Estimated(_) => "estimated:<metric>",
            Signal::DriftShare => "drift_share",
            Signal::Drift(_) => "drift:<column>",
            Signal::ReconstructionError => "reconstruction_error",
            Signal::MultivariateDrift => "multivariate_drift",
            Signal::OutlierRate => "outlier_rate",
            Signal::Probing => "probing",
            Signal::DomainClassifierAuc => "domain_classifier_auc",
            Signal::QualityFlags => "quality_flags",
            Signal::NullRate(_) => "null_rate:<feature>",
            Signal::OutOfRange(_) => "out_of_range:<feature>",
            Signal::Unseen(_) => "unseen:<feature>",
            Signal::Fairness(..) => "fairness:<measure>:<attribute>",
            Signal::Attribution(_) => "attribution:<feature>",
            Signal::Cost => "cost",
            Signal::SloBurnRate => "slo_burn_rate",
            Signal::SloBudgetRemaining => "slo_budget_remaining",
            Signal::Concept(_) => "concept:<detector>",
            Signal::Events => "events",
            Signal::Labels => "labels",
            Signal::Heartbeat(_) => "heartbeat:<job>",
        }
    }

    /// Which engine report the signal is read from.
    pub fn source(&self) -> Source {
        match self {
            Signal::Metric(_)
            | Signal::Operational(_)
            | Signal::ClassMetric(..)
            | Signal::Kpi(_)
            | Signal::Estimated(_) => Source::Performance,
            Signal::DriftShare | Signal::Drift(_) => Source::Drift,
            Signal::ReconstructionError | Signal::MultivariateDrift => Source::Multivariate,
            Signal::OutlierRate | Signal::Probing => Source::Outliers,
            Signal::DomainClassifierAuc => Source::DomainClassifier,
            Signal::QualityFlags
            | Signal::NullRate(_)
            | Signal::OutOfRange(_)
            | Signal::Unseen(_) => Source::Quality,
            Signal::Fairness(..) => Source::Fairness,
            Signal::Attribution(_) => Source::Attribution,
            Signal::Cost | Signal::SloBurnRate | Signal::SloBudgetRemaining => {
                Source::ServiceLevels
            }
            Signal::Concept(_) => Source::Concept,
            Signal::Events | Signal::Labels => Source::Freshness,
            Signal::Heartbeat(_) => Source::Heartbeat,
        }
    }

    /// Rows a window needs behind its value when the rule does not say (`min_sample`): 30,
    /// but 1 for a KPI, whose points are often one a window.
    pub fn default_min_sample(&self) -> u64 {
        match self {
            Signal::Kpi(_) => 1,
            _ => 30,
        }
    }
}

/// The segment a rule watches: `{"feature": "country", "value": "DE"}` or
/// `{"tag": "region", "value": "eu"}`. Only performance and per-class metrics are kept per
/// segment; the value must be among the 10 values of the feature with most predictions in the
/// range evaluated (the others are reported together as `other`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSegment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub value: String,
}

impl RuleSegment {
    /// The metrics query's `segment` parameter: the feature, or `tag:<name>`.
    pub fn split(&self) -> String {
        match (&self.feature, &self.tag) {
            (Some(f), _) => f.clone(),
            (None, Some(t)) => format!("tag:{t}"),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Performance,
    Drift,
    /// The multivariate drift report (`GET .../drift/multivariate`).
    Multivariate,
    /// The outliers report (`GET .../outliers`).
    Outliers,
    /// The domain-classifier drift report (`GET .../drift/domain-classifier`).
    DomainClassifier,
    Quality,
    Fairness,
    /// The attribution report (`GET .../attributions`).
    Attribution,
    /// The cost and service-level report (`GET .../service-levels`).
    ServiceLevels,
    /// The concept-drift report (`GET .../concept`).
    Concept,
    Freshness,
    Heartbeat,
}

/// A rule as written. JSON (API) and TOML (`[[models.<name>.rules]]`) share this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique within the model: `[A-Za-z0-9._-]`, 1-64 characters.
    pub name: String,
    pub signal: String,
    pub condition: Condition,
    pub decision: Decision,
    pub severity: Severity,
    /// Event-time window of the signal: `1h`, `1d` (default), `7d`...
    #[serde(default = "default_window")]
    pub window: String,
    /// Only this model version's events (and its reference when it has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Only the events of this segment (performance and per-class metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<RuleSegment>,
    /// A window counts only with at least this many rows behind the value (labelled rows for
    /// a metric, points for a KPI, predictions otherwise). Default 30 (1 for a KPI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sample: Option<u64>,
    /// How long the condition must hold before the alert fires (pending until then).
    #[serde(default, rename = "for")]
    pub for_: Duration,
    /// How long a firing alert stays firing after the condition stops holding.
    #[serde(default)]
    pub keep_firing_for: Duration,
    /// Notifier names to send to; empty sends to every configured notifier.
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_window() -> String {
    "1d".to_owned()
}

/// A rule that passed validation, with what evaluation needs parsed out.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub model: String,
    pub spec: RuleSpec,
    pub signal: Signal,
    pub window: Window,
    /// `config` or `api`.
    pub origin: Origin,
}

impl Rule {
    /// Rows a window needs behind its value: the rule's `min_sample`, else the signal's default.
    pub fn min_sample(&self) -> u64 {
        self.spec
            .min_sample
            .unwrap_or_else(|| self.signal.default_min_sample())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Config,
    Api,
}

/// A rule that is not valid: which field, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rule field `{field}`: {message}")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

impl modelwatch_core::ServiceError for RuleError {
    fn code(&self) -> modelwatch_core::ErrorCode {
        modelwatch_core::ErrorCode::InvalidInput
    }
}

fn err(field: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl RuleSpec {
    /// Parses a JSON rule; the error names the unknown, missing or mistyped field by its path
    /// (`condition.windows`).
    pub fn from_json(v: serde_json::Value) -> Result<RuleSpec, RuleError> {
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            // A missing key is reported at its parent: name the key itself.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next());
            let field = match (path.as_str(), missing) {
                (".", Some(k)) => k.to_owned(),
                (p, Some(k)) => format!("{p}.{k}"),
                (p, None) => p.to_owned(),
            };
            RuleError { field, message }
        })
    }

    /// Checks the rule and parses its signal and window. `notifiers` are the configured
    /// notifier names a rule may route to.
    pub fn validate(
        self,
        model: &str,
        origin: Origin,
        notifiers: &[String],
    ) -> Result<Rule, RuleError> {
        let s = &self;
        if s.name.is_empty()
            || s.name.len() > 64
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(err(
                "name",
                format!(
                    "{:?} is not valid: use 1-64 characters of A-Z a-z 0-9 . _ -",
                    s.name
                ),
            ));
        }
        let signal = Signal::parse(&s.signal).map_err(|m| err("signal", m))?;
        let window = Window::parse(&s.window).map_err(|e| err("window", e.to_string()))?;
        let source = signal.source();
        let c = &s.condition;
        let finite = |field: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(err(field, "must be a finite number"))
            }
        };
        match c {
            Condition::Threshold { value, .. } => finite("condition.value", *value)?,
            Condition::RollingMean { windows, value, .. } => {
                finite("condition.value", *value)?;
                if !(1..=100).contains(windows) {
                    return Err(err("condition.windows", "must be between 1 and 100"));
                }
            }
            Condition::Trend { windows, value, .. } => {
                finite("condition.value", *value)?;
                if !(3..=100).contains(windows) {
                    return Err(err(
                        "condition.windows",
                        "must be between 3 and 100 (a trend needs at least 3 points)",
                    ));
                }
            }
            Condition::Anomaly { windows, z, .. } => {
                if !(3..=100).contains(windows) {
                    return Err(err(
                        "condition.windows",
                        "must be between 3 and 100 trailing windows",
                    ));
                }
                if !(z.is_finite() && *z > 0.0) {
                    return Err(err("condition.z", "must be a number above 0"));
                }
            }
            Condition::Baseline {
                relative,
                direction,
                ..
            } => {
                if !(relative.is_finite() && *relative >= 0.0) {
                    return Err(err(
                        "condition.relative",
                        "must be a number of at least 0 (0.05 = 5 %)",
                    ));
                }
                if *direction == Direction::Any {
                    return Err(err(
                        "condition.direction",
                        "must be `below` or `above` for a baseline condition",
                    ));
                }
            }
            Condition::SignificantChange { .. } => {}
            Condition::Freshness { max_age } | Condition::Heartbeat { max_age } => {
                if max_age.seconds <= 0 {
                    return Err(err("condition.max_age", "must be longer than 0"));
                }
            }
        }
        let fits = match c {
            Condition::Baseline { .. } | Condition::SignificantChange { .. } => {
                matches!(signal, Signal::Metric(_))
            }
            Condition::Freshness { .. } => source == Source::Freshness,
            Condition::Heartbeat { .. } => source == Source::Heartbeat,
            _ => !matches!(source, Source::Freshness | Source::Heartbeat),
        };
        if !fits {
            let hint = match c {
                Condition::Baseline { .. } | Condition::SignificantChange { .. } => {
                    "needs a performance metric signal (the reference gives its baseline)"
                }
                Condition::Freshness { .. } => "needs the signal `events` or `labels`",
                Condition::Heartbeat { .. } => "needs the signal `heartbeat:<job>`",
                _ => "does not apply to events, labels or heartbeats: use freshness or heartbeat",
            };
            return Err(err(
                "condition.kind",
                format!("`{}` on signal {:?} {hint}", c.kind(), s.signal),
            ));
        }
        if let Some(seg) = &s.segment {
            let named = |n: &Option<String>| n.as_ref().is_some_and(|n| !n.trim().is_empty());
            if named(&seg.feature) == named(&seg.tag) {
                return Err(err(
                    "segment",
                    "name exactly one of `feature` and `tag`, with a `value`: \
                     {\"feature\": \"country\", \"value\": \"DE\"}",
                ));
            }
            if !matches!(signal, Signal::Metric(_) | Signal::ClassMetric(..)) {
                return Err(err(
                    "segment",
                    format!(
                        "signal {:?} is not kept per segment: a segment applies to a \
                         performance metric (<metric>) or a class's metric \
                         (precision:<class>, recall:<class>, f1:<class>)",
                        s.signal
                    ),
                ));
            }
            if matches!(
                c,
                Condition::Baseline { .. } | Condition::SignificantChange { .. }
            ) {
                return Err(err(
                    "condition.kind",
                    format!(
                        "`{}` compares with the reference, which has no segments: use \
                         threshold, rolling_mean, trend or anomaly on a segment",
                        c.kind()
                    ),
                ));
            }
        }
        if let Some(v) = &s.version {
            if v.is_empty() {
                return Err(err(
                    "version",
                    "must not be empty (leave it out for all versions)",
                ));
            }
        }
        for n in &s.notify {
            if !notifiers.contains(n) {
                return Err(err(
                    "notify",
                    format!(
                        "no notifier named {n:?} is configured (configured: {})",
                        if notifiers.is_empty() {
                            "none".to_owned()
                        } else {
                            notifiers.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(Rule {
            model: model.to_owned(),
            signal,
            window,
            origin,
            spec: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// docs/api.md's list of the metrics a rule takes is the validator's list: a metric added
    /// to the vocabulary fails here until the docs name it, and a name the docs give that the
    /// validator refuses fails too.
    #[test]
    fn the_docs_list_exactly_the_metrics_a_rule_accepts() {
        let api = include_str!("../../../docs/api.md");
        let start = api
            .find("- `<metric>`: a performance metric")
            .expect("the docs' signal list");
        let end = start
            + api[start..]
                .find("- `<operational>`")
                .expect("the next item");
        let documented: std::collections::BTreeSet<&str> = api[start..end]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|name| !name.contains(['<', ' ', '.']))
            .collect();
        let accepted: std::collections::BTreeSet<&str> =
            PERFORMANCE_METRICS.iter().copied().collect();
        assert_eq!(documented, accepted);
        for name in documented {
            assert!(
                matches!(Signal::parse(name), Ok(Signal::Metric(_))),
                "{name}"
            );
        }
    }

    #[test]
    fn an_estimated_metric_is_a_signal_and_a_wrong_one_is_named() {
        assert_eq!(
            Signal::parse("estimated:accuracy"),
            Ok(Signal::Estimated(EstimatedMetric::Accuracy))
        );
        assert_eq!(
            Signal::parse("estimated:roc_auc").unwrap().kind(),
            "estimated:<metric>"
        );
        // A regression model's (DLE).
        assert_eq!(
            Signal::parse("estimated:mae"),
            Ok(Signal::Estimated(EstimatedMetric::Mae))
        );
        let e = Signal::parse("estimated:log_loss").unwrap_err();
        assert!(
            e.contains("log_loss") && e.contains("specificity") && e.contains("rmse"),
            "{e}"
        );
    }

    fn f1_rule() -> serde_json::Value {
        json!({"name": "f1-vs-test", "signal": "f1",
               "condition": {"kind": "baseline", "direction": "below", "relative": 0.05},
               "decision": "retrain", "severity": "critical"})
    }

    #[test]
    fn a_valid_rule_gets_defaults() {
        let r = RuleSpec::from_json(f1_rule())
            .unwrap()
            .validate("fraud", Origin::Api, &[])
            .unwrap();
        assert_eq!(r.signal, Signal::Metric(MetricName::F1));
        assert_eq!(r.window, Window::DAY);
        assert_eq!(r.min_sample(), 30);
        assert_eq!(r.spec.for_, Duration::default());
        assert!(matches!(
            r.spec.condition,
            Condition::Baseline {
                require_significant: true,
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = f1_rule();
        v["decison"] = json!("retrain");
        let e = RuleSpec::from_json(v).unwrap_err();
        assert_eq!(e.field, "decison", "{e}");

        let mut v = f1_rule();
        v.as_object_mut().unwrap().remove("severity");
        assert_eq!(RuleSpec::from_json(v).unwrap_err().field, "severity");

        let mut v = f1_rule();
        v["decision"] = json!("retrian");
        let e = RuleSpec::from_json(v).unwrap_err();
        assert!(e.message.contains("retrain"), "{e}");

        let check = |patch: serde_json::Value, field: &str| {
            let mut v = f1_rule();
            for (k, x) in patch.as_object().unwrap() {
                v[k] = x.clone();
            }
            let e = RuleSpec::from_json(v)
                .and_then(|s| s.validate("m", Origin::Api, &["slack".into()]))
                .unwrap_err();
            assert_eq!(e.field, field, "{e}");
        };
        check(json!({"signal": "f2"}), "signal");
        check(json!({"window": "1y"}), "window");
        check(json!({"name": "has space"}), "name");
        check(json!({"notify": ["pagerduty"]}), "notify");
        check(json!({"for": "ten minutes"}), "for");
        check(
            json!({"condition": {"kind": "trend", "windows": 2, "op": "<", "value": 0}}),
            "condition.windows",
        );
        check(
            json!({"signal": "events", "condition": {"kind": "threshold", "op": "<", "value": 1}}),
            "condition.kind",
        );
        check(
            json!({"signal": "error_rate", "condition": {"kind": "baseline", "direction": "above", "relative": 0.1}}),
            "condition.kind",
        );
        check(
            json!({"condition": {"kind": "baseline", "direction": "below", "relative": -1}}),
            "condition.relative",
        );
    }

    #[test]
    fn every_signal_kind_parses_and_the_error_names_them_all() {
        for kind in SIGNAL_KINDS {
            let example = match *kind {
                "<metric>" => "f1".to_owned(),
                "<operational>" => "error_rate".to_owned(),
                "estimated:<metric>" => "estimated:f1".to_owned(),
                "fairness:<measure>:<attribute>" => {
                    "fairness:demographic_parity_ratio:tag:region".to_owned()
                }
                "concept:<detector>" => "concept:adwin".to_owned(),
                k => k.replace(['<', '>'], ""),
            };
            let signal = Signal::parse(&example).unwrap_or_else(|e| panic!("{example}: {e}"));
            assert_eq!(signal.kind(), *kind, "{example}");
        }
        let e = Signal::parse("f2").unwrap_err();
        for kind in SIGNAL_KINDS {
            assert!(e.contains(kind), "{kind} not in {e}");
        }
        // A fairness signal's attribute is everything after the measure, a tag's `tag:` too.
        assert_eq!(
            Signal::parse("fairness:demographic_parity_ratio:tag:region").unwrap(),
            Signal::Fairness("demographic_parity_ratio".into(), "tag:region".into())
        );
        for bad in [
            "fairness:parity:sex",
            "fairness:demographic_parity_ratio:",
            "fairness:",
            "concept:cusum",
            "concept:",
        ] {
            assert!(Signal::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Signal::parse("recall:fraud").unwrap(),
            Signal::ClassMetric(MetricName::Recall, "fraud".into())
        );
        assert_eq!(
            Signal::parse("kpi:loss:eur").unwrap(),
            Signal::Kpi("loss:eur".into())
        );
    }

    #[test]
    fn segments_apply_to_metrics_with_window_conditions() {
        let rule = |signal: &str, condition: serde_json::Value, segment: serde_json::Value| {
            RuleSpec::from_json(
                json!({"name": "seg", "signal": signal, "condition": condition,
                "decision": "review", "severity": "warning", "segment": segment}),
            )
            .and_then(|s| s.validate("m", Origin::Api, &[]))
        };
        let below = json!({"kind": "threshold", "op": "<", "value": 0.8});
        let de = json!({"feature": "country", "value": "DE"});
        let r = rule("recall:1", below.clone(), de.clone()).unwrap();
        assert_eq!(r.spec.segment.as_ref().unwrap().split(), "country");
        let r = rule("f1", below.clone(), json!({"tag": "region", "value": "eu"})).unwrap();
        assert_eq!(r.spec.segment.as_ref().unwrap().split(), "tag:region");
        for (signal, condition, segment, field) in [
            ("f1", below.clone(), json!({"value": "DE"}), "segment"),
            (
                "f1",
                below.clone(),
                json!({"feature": "a", "tag": "b", "value": "DE"}),
                "segment",
            ),
            ("error_rate", below.clone(), de.clone(), "segment"),
            (
                "f1",
                json!({"kind": "baseline", "direction": "below", "relative": 0.05}),
                de.clone(),
                "condition.kind",
            ),
        ] {
            let e = rule(signal, condition, segment).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let e = RuleSpec::from_json(json!({"name": "seg", "signal": "f1", "condition": below,
            "decision": "review", "severity": "warning",
            "segment": {"feature": "country", "valeu": "DE"}}))
        .unwrap_err();
        assert!(e.field.starts_with("segment"), "{e}");
    }

    #[test]
    fn kpis_need_one_point_a_window_unless_told() {
        let r = RuleSpec::from_json(json!({"name": "loss", "signal": "kpi:fraud_loss_eur",
            "condition": {"kind": "threshold", "op": ">", "value": 1000},
            "decision": "review", "severity": "warning"}))
        .unwrap()
        .validate("m", Origin::Api, &[])
        .unwrap();
        assert_eq!(r.min_sample(), 1);
        assert_eq!(r.signal, Signal::Kpi("fraud_loss_eur".into()));
    }

    #[test]
    fn durations() {
        assert_eq!(Duration::parse("10m").unwrap().seconds, 600);
        assert_eq!(Duration::parse("0").unwrap().seconds, 0);
        assert_eq!(Duration::parse("2d").unwrap().to_string(), "2d");
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "90s");
        assert!(Duration::parse("-1m").is_err());
        assert!(Duration::parse("m").is_err());
        for bad in ["1ü", "2€", "ü", "\u{ff}"] {
            assert!(Duration::parse(bad).is_err(), "{bad:?}");
        }
    }
}
