//! What a view shows, gathered from the engine: the same typed reports the HTTP API serialises
//! (`/v1/models/{model}`, `/metrics`, `/drift`, `/quality`, `/feedback`), so that a page, a
//! report and the API can never disagree, plus the reference and current distributions the
//! drift view overlays.
//!
//! [`ModelData`] is also the `report.json` of `modelwatch report`.

use crate::params::{Range, ViewParams, AUTO_WINDOWS, MAX_WINDOWS};
use crate::DashError;
use modelwatch_core::{ModelName, Timestamp, Window};
use modelwatch_engine::drift::{
    self, ColumnCounts, DriftQuery, DriftResponse, QualityResponse, QualityThresholds, Reference,
};
use modelwatch_engine::feedback::{self, FeedbackQuery, FeedbackResponse, FeedbackThresholds};
use modelwatch_engine::performance::{
    window_performance, PerformanceQuery, PerformanceReport, Task, TaskReport,
};
use modelwatch_engine::EngineError;
use modelwatch_stats::drift::{DriftConfig, ProfileDetail};
use modelwatch_stats::perf::{Metric, MetricName};
use modelwatch_store::{ModelSummary, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event-time span of a view: whole windows, ending with the model's last event unless
/// `to` is given, and starting no earlier than the window of its first event (a range longer
/// than the data would draw mostly empty charts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub window: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub version: Option<String>,
}

impl Span {
    /// The span of `params` for a model with this summary.
    pub fn of(params: &ViewParams, summary: &ModelSummary) -> Result<Span, DashError> {
        let last = summary.last_event.unwrap_or_else(Timestamp::now);
        let first = summary.first_event.unwrap_or(last);
        let bounds = |w: Window| {
            let to = params
                .to
                .unwrap_or(Timestamp(w.start_of(last).0 + w.micros()));
            let from = match (params.from, params.range) {
                (Some(f), _) => f,
                (None, Range::Last(secs)) => Timestamp((to.0 - secs * 1_000_000).max(first.0)),
                (None, Range::All) => first,
            };
            (w.start_of(from), to)
        };
        // Without a window: the narrowest that gives at most AUTO_WINDOWS over the range.
        let w = params.window.unwrap_or_else(|| {
            [Window::HOUR, Window::DAY]
                .into_iter()
                .find(|&w| {
                    let (from, to) = bounds(w);
                    (to.0 - from.0) / w.micros() <= AUTO_WINDOWS
                })
                .unwrap_or(Window::WEEK)
        });
        let (from, to) = bounds(w);
        if from >= to {
            return Err(DashError::BadRequest(
                "the time range is empty: `from` must be before `to`".into(),
            ));
        }
        let windows = (to.0 - from.0 + w.micros() - 1) / w.micros();
        if windows > MAX_WINDOWS {
            return Err(DashError::BadRequest(format!(
                "{windows} windows of {} in this range (at most {MAX_WINDOWS}): pick a wider window or a shorter range",
                w.label()
            )));
        }
        Ok(Span {
            window: w.label(),
            from,
            to,
            version: params.version.clone(),
        })
    }

    fn window(&self) -> modelwatch_core::Window {
        modelwatch_core::Window::parse(&self.window).expect("span windows are canonical labels")
    }

    fn performance(&self, version: Option<String>, segment: Option<String>) -> PerformanceQuery {
        PerformanceQuery {
            window: Some(self.window()),
            from: Some(self.from),
            to: Some(self.to),
            version,
            segment,
            task: None,
            threshold: None,
            config: Default::default(),
        }
    }

    fn drift(&self, from: Timestamp) -> DriftQuery {
        DriftQuery {
            window: self.window(),
            from: Some(from),
            to: Some(self.to),
            version: self.version.clone(),
            segment: None,
        }
    }

    /// The query string that asks the HTTP API for the same numbers.
    pub fn api_query(&self) -> String {
        let mut q = format!(
            "window={}&from={}&to={}",
            self.window,
            crate::params::url_encode(&self.from.to_rfc3339()),
            crate::params::url_encode(&self.to.to_rfc3339())
        );
        if let Some(v) = &self.version {
            q.push_str(&format!("&version={}", crate::params::url_encode(v)));
        }
        q
    }
}

/// The reference and current shares of one feature, bin by bin (numeric: the reference's
/// quantile bins; categorical: its categories, then unseen ones together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub feature: String,
    pub kind: String,
    /// Start of the current window the shares are of.
    pub window_start: Timestamp,
    /// That window is still filling (no complete window had enough rows).
    #[serde(default)]
    pub partial: bool,
    pub bins: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
    pub reference_rows: u64,
    pub current_rows: u64,
}

/// The metrics of one model version over the span (the API's `/metrics?version=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionMetrics {
    pub version: String,
    pub metrics: PerformanceReport,
}

/// Everything a model view or report shows. Sections that were not asked for are `null`;
/// sections that cannot be computed say why in `unavailable`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelData {
    pub model: String,
    pub generated_at: Option<Timestamp>,
    pub span: Option<Span>,
    /// `GET /v1/models/{model}`.
    pub summary: ModelSummary,
    /// `GET /v1/models/{model}/metrics` over the span.
    pub metrics: Option<PerformanceReport>,
    /// `GET /v1/models/{model}/drift` over the span.
    pub drift: Option<DriftResponse>,
    /// `GET /v1/models/{model}/quality` over the span.
    pub quality: Option<QualityResponse>,
    /// `GET /v1/models/{model}/drift/multivariate` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<modelwatch_engine::multivariate::MultivariateResponse>,
    /// `GET /v1/models/{model}/outliers` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outliers: Option<modelwatch_engine::outliers::OutlierResponse>,
    /// `GET /v1/models/{model}/drift/domain-classifier` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<modelwatch_engine::domain::DomainResponse>,
    /// Reference against the last window of the span, per feature.
    pub distributions: Vec<Distribution>,
    /// `GET /v1/models/{model}/metrics?segment=` over the span.
    pub segments: Option<PerformanceReport>,
    /// `GET /v1/models/{model}/feedback` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackResponse>,
    /// `GET /v1/models/{model}/fairness` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<modelwatch_engine::fairness::FairnessReport>,
    /// `GET /v1/models/{model}/attributions` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributions: Option<modelwatch_engine::attribution::AttributionReport>,
    /// `GET /v1/models/{model}/service-levels` over the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_levels: Option<modelwatch_engine::service_levels::ServiceLevelReport>,
    /// `GET /v1/models/{model}/concept` over the span (every detector that applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concept: Option<modelwatch_engine::concept::ConceptReport>,
    pub versions: Vec<VersionMetrics>,
    /// `GET /v1/models/{model}/compare` over the span: each challenger (shadow versions, then
    /// the other served versions) against the champion (the picked version, else the served
    /// version with the most predictions). Versions view only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub challengers: Vec<modelwatch_engine::challenger::CompareReport>,
    /// The model's alerts, rules and recent transitions, when an alert service was asked
    /// (the server's pages); absent from a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsData>,
    /// Why a section is missing (`drift`: "no reference dataset ..."), by section.
    pub unavailable: std::collections::BTreeMap<String, String>,
}

/// One model's alerts as the alert endpoints answer them, so that the panel shows what the API
/// says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertsData {
    /// `GET /v1/alerts?model=`: the current alert of each rule (pending, firing, or resolved
    /// until the rule's next episode).
    pub alerts: Vec<Value>,
    /// `GET /v1/alerts/history?model=&limit=`: transitions, newest first.
    pub history: Vec<Value>,
    /// `GET /v1/models/{model}/rules`.
    pub rules: Vec<Value>,
    /// `GET /v1/models/{model}/heartbeats`: each job's latest run and latest success.
    #[serde(default)]
    pub jobs: Vec<Value>,
    /// Whoever views the page may acknowledge alerts (no keys configured, or an admin key's
    /// session or header): the alerts view shows the acknowledge form.
    #[serde(default)]
    pub can_acknowledge: bool,
}

impl AlertsData {
    /// The alerts that are pending or firing.
    pub fn open(&self) -> impl Iterator<Item = &Value> {
        self.alerts.iter().filter(|a| is_open(a))
    }
}

/// Whether an alert of the API's JSON is pending or firing.
pub fn is_open(alert: &Value) -> bool {
    matches!(
        alert.get("state").and_then(Value::as_str),
        Some("pending" | "firing")
    )
}

/// Transitions the alerts panel shows (`GET /v1/alerts/history?limit=`).
pub const ALERT_HISTORY: usize = 50;

/// Where the pages read alerts from. The server implements it over its alert service with the
/// JSON of `GET /v1/alerts`, `GET /v1/alerts/history` and `GET /v1/models/{model}/rules`; this
/// crate does not depend on the alerts crate, only on those documented shapes.
pub trait AlertSource {
    /// A model's alerts, its rules and its latest `history` transitions (newest first).
    fn model_alerts(&self, model: &str, history: usize) -> Result<AlertsData, String>;
    /// Every model's current alerts (`GET /v1/alerts`), for the overview's counts.
    fn all_alerts(&self) -> Result<Vec<Value>, String>;
}

/// Which sections to compute.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parts {
    pub metrics: bool,
    pub drift: bool,
    pub quality: bool,
    pub distributions: bool,
    pub segments: bool,
    pub versions: bool,
    pub feedback: bool,
    pub fairness: bool,
    pub attributions: bool,
    /// `GET /v1/models/{model}/drift/multivariate` (the drift view).
    pub multivariate: bool,
    /// `GET /v1/models/{model}/drift/domain-classifier` (the drift view).
    pub domain: bool,
    /// `GET /v1/models/{model}/service-levels` (the performance view).
    pub service_levels: bool,
    /// `GET /v1/models/{model}/concept` (the concept view).
    pub concept: bool,
    /// `GET /v1/models/{model}/outliers` (the data-quality view).
    pub outliers: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        metrics: true,
        drift: true,
        quality: true,
        distributions: true,
        segments: true,
        versions: true,
        feedback: true,
        fairness: true,
        attributions: true,
        multivariate: true,
        domain: true,
        service_levels: true,
        concept: true,
        outliers: true,
    };
}

/// The drift page shows the domain classifier over at most this many windows: each is a fit
/// (about a quarter of a CPU second, ADR 015), kept once made, but a first view of a week of
/// hours would be 168 of them.
pub const DOMAIN_MAX_WINDOWS: i64 = 31;

/// Fewer rows than this in a window: too few to call it healthy (the metrics' default
/// `min_sample` and the drift tests' `min_rows`). Views show such a window grey, "too few
/// rows", never green.
pub const MIN_ROWS: u64 = 30;

/// Most versions compared side by side (the ones with most predictions).
pub const MAX_VERSIONS: usize = 6;

/// Challengers compared on the versions view (each comparison is a scan of the span).
pub const MAX_CHALLENGERS: usize = 3;

/// The comparisons of the versions view (see [`ModelData::challengers`]).
fn challengers(
    store: &dyn Store,
    model: &ModelName,
    summary: &ModelSummary,
    span: &Span,
) -> Result<Vec<modelwatch_engine::challenger::CompareReport>, DashError> {
    use modelwatch_engine::challenger::{compare, CompareQuery};
    let champion = span.version.clone().or_else(|| {
        (summary.versions.iter())
            .max_by_key(|v| v.predictions)
            .map(|v| v.version.clone())
    });
    let Some(champion) = champion else {
        return Ok(Vec::new());
    };
    let others = (summary.shadow_versions.iter())
        .chain(&summary.versions)
        .map(|v| &v.version)
        .filter(|v| **v != champion);
    let mut names: Vec<&String> = Vec::new();
    for v in others {
        if !names.contains(&v) && names.len() < MAX_CHALLENGERS {
            names.push(v);
        }
    }
    let mut out = Vec::new();
    for challenger in names {
        let q = CompareQuery {
            window: span.window(),
            from: Some(span.from),
            to: Some(span.to),
            champion: champion.clone(),
            challenger: challenger.clone(),
        };
        out.push(compare(store, model, &q).map_err(|e| match e {
            EngineError::Store(e) => DashError::Store(e),
            e => DashError::BadRequest(e.to_string()),
        })?);
    }
    Ok(out)
}
/// Most features whose distributions are drawn.
pub const MAX_DISTRIBUTIONS: usize = 40;
/// Most categories drawn per categorical feature (by reference count); the rest are `(other)`.
const MAX_CATEGORIES: usize = 12;

/// The summary of a model, or a 404.
pub fn summary(store: &dyn Store, model: &ModelName) -> Result<ModelSummary, DashError> {
    store
        .model(model)?
        .ok_or_else(|| DashError::NotFound(format!("model `{model}` does not exist")))
}

fn perf(
    store: &dyn Store,
    model: &ModelName,
    q: &PerformanceQuery,
) -> Result<PerformanceReport, DashError> {
    // With the windows' label-free estimates, as the API's metrics answer them.
    window_performance(store, model, q)
        .and_then(|mut r| {
            modelwatch_engine::estimate::attach(store, model, q, &mut r)?;
            Ok(r)
        })
        .map_err(|e| match e {
            EngineError::Store(e) => DashError::Store(e),
            e => DashError::BadRequest(e.to_string()),
        })
}

/// `Ok(None)` with the reason when the model has no reference.
fn no_reference<T>(r: Result<T, EngineError>) -> Result<Result<T, String>, DashError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ EngineError::NoReference { .. }) => Ok(Err(e.to_string())),
        Err(EngineError::Store(e)) => Err(DashError::Store(e)),
        Err(e) => Err(DashError::BadRequest(e.to_string())),
    }
}

/// Gathers the asked sections of one model's view.
pub fn gather(
    store: &dyn Store,
    model: &ModelName,
    params: &ViewParams,
    parts: Parts,
) -> Result<ModelData, DashError> {
    let summary = summary(store, model)?;
    let span = Span::of(params, &summary)?;
    let mut data = ModelData {
        model: model.as_str().to_string(),
        generated_at: Some(Timestamp::now()),
        span: None,
        summary: summary.clone(),
        metrics: None,
        drift: None,
        quality: None,
        multivariate: None,
        outliers: None,
        domain: None,
        distributions: Vec::new(),
        segments: None,
        feedback: None,
        fairness: None,
        attributions: None,
        service_levels: None,
        concept: None,
        versions: Vec::new(),
        challengers: Vec::new(),
        alerts: None,
        unavailable: Default::default(),
    };
    if parts.metrics {
        data.metrics = Some(perf(
            store,
            model,
            &span.performance(span.version.clone(), None),
        )?);
    }
    if parts.segments {
        let segment = params.segment.clone().or_else(|| default_segment(&summary));
        match segment {
            Some(s) => {
                // The view shows each value's totals over the span, not its windows: one
                // window as wide as the span (two when it straddles an aligned boundary)
                // instead of hundreds of per-window states per value.
                let hours =
                    ((span.to.0 - span.from.0 + 3_599_999_999) / 3_600_000_000).clamp(1, 366 * 24);
                let mut q = span.performance(span.version.clone(), Some(s));
                q.window = Window::parse(&format!("{hours}h")).ok().or(q.window);
                data.segments = Some(perf(store, model, &q)?)
            }
            None => {
                data.unavailable.insert(
                    "segments".into(),
                    "the model has no features to segment by".into(),
                );
            }
        }
    }
    if parts.versions {
        let mut versions = summary.versions.clone();
        versions.sort_by_key(|v| std::cmp::Reverse(v.predictions));
        versions.truncate(MAX_VERSIONS);
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        for v in versions {
            let metrics = perf(
                store,
                model,
                &span.performance(Some(v.version.clone()), None),
            )?;
            data.versions.push(VersionMetrics {
                version: v.version,
                metrics,
            });
        }
        data.challengers = challengers(store, model, &summary, &span)?;
    }
    let query = span.drift(span.from);
    if parts.drift {
        match no_reference(drift::drift(store, model, &query, &DriftConfig::default()))? {
            Ok(d) => data.drift = Some(d),
            Err(why) => {
                data.unavailable.insert("drift".into(), why);
            }
        }
    }
    if parts.multivariate {
        match modelwatch_engine::multivariate::multivariate(store, model, &query) {
            Ok(m) => data.multivariate = Some(m),
            // No reference, or one too small to fit: the section says why.
            Err(e @ (EngineError::NoReference { .. } | EngineError::ReferenceNotFitted { .. })) => {
                data.unavailable
                    .insert("multivariate".into(), e.to_string());
            }
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => return Err(DashError::BadRequest(e.to_string())),
        }
    }
    if parts.concept {
        let q = modelwatch_engine::concept::ConceptQuery {
            window: Window::parse(&span.window).expect("canonical window"),
            from: Some(span.from),
            to: Some(span.to),
            version: span.version.clone(),
            detectors: Vec::new(),
        };
        match modelwatch_engine::concept::concept(store, model, &q) {
            Ok(c) => data.concept = Some(c),
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => {
                data.unavailable.insert("concept".into(), e.to_string());
            }
        }
    }
    if parts.outliers {
        let q = modelwatch_engine::outliers::OutlierQuery::new(query.clone());
        match modelwatch_engine::outliers::outliers(store, model, &q) {
            Ok(o) => data.outliers = Some(o),
            Err(e @ (EngineError::NoReference { .. } | EngineError::ReferenceNotFitted { .. })) => {
                data.unavailable.insert("outliers".into(), e.to_string());
            }
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => return Err(DashError::BadRequest(e.to_string())),
        }
    }
    let windows = (span.to.0 - span.from.0) / query.window.micros().max(1);
    if parts.domain && windows > DOMAIN_MAX_WINDOWS {
        data.unavailable.insert(
            "domain".into(),
            format!(
                "The domain classifier fits a classifier per window: {windows} windows of {} \
                 are more than the {DOMAIN_MAX_WINDOWS} this page fits. Pick a window of a day \
                 or longer, or a shorter range.",
                query.window.label()
            ),
        );
    } else if parts.domain {
        match no_reference(modelwatch_engine::domain::domain_classifier(
            store, model, &query,
        ))? {
            Ok(d) => data.domain = Some(d),
            Err(why) => {
                data.unavailable.insert("domain".into(), why);
            }
        }
    }
    if parts.quality {
        match no_reference(drift::quality(
            store,
            model,
            &query,
            &QualityThresholds::default(),
        ))? {
            Ok(q) => data.quality = Some(q),
            Err(why) => {
                data.unavailable.insert("quality".into(), why);
            }
        }
    }
    if parts.feedback {
        let q = FeedbackQuery {
            window: span.window(),
            from: Some(span.from),
            to: Some(span.to),
            version: span.version.clone(),
            exploration: ("exploration".into(), "true".into()),
        };
        match feedback::feedback(store, model, &q, &FeedbackThresholds::default()) {
            Ok(r) => data.feedback = Some(r),
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => {
                data.unavailable.insert("feedback".into(), e.to_string());
            }
        }
    }
    if parts.attributions {
        let q = modelwatch_engine::attribution::AttributionQuery {
            window: span.window(),
            from: Some(span.from),
            to: Some(span.to),
            version: span.version.clone(),
        };
        match modelwatch_engine::attribution::attributions(store, model, &q) {
            Ok(r) => data.attributions = Some(r),
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => {
                data.unavailable
                    .insert("attributions".into(), e.to_string());
            }
        }
    }
    if parts.service_levels {
        let q = modelwatch_engine::service_levels::ServiceLevelQuery {
            window: span.window(),
            from: Some(span.from),
            to: Some(span.to),
            version: span.version.clone(),
        };
        match modelwatch_engine::service_levels::service_levels(store, model, &q) {
            Ok(r) => data.service_levels = Some(r),
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => {
                data.unavailable
                    .insert("service_levels".into(), e.to_string());
            }
        }
    }
    if parts.fairness {
        let q = modelwatch_engine::fairness::FairnessQuery {
            window: span.window(),
            from: Some(span.from),
            to: Some(span.to),
            version: span.version.clone(),
        };
        match modelwatch_engine::fairness::fairness(store, model, &q) {
            Ok(r) => data.fairness = Some(r),
            Err(EngineError::Store(e)) => return Err(DashError::Store(e)),
            Err(e) => {
                data.unavailable.insert("fairness".into(), e.to_string());
            }
        }
    }
    if parts.distributions {
        match no_reference(distributions(store, model, &span))? {
            Ok(d) => data.distributions = d,
            Err(why) => {
                data.unavailable.insert("distributions".into(), why);
            }
        }
    }
    data.span = Some(span);
    Ok(data)
}

/// The first categorical feature of the schema, else the first feature.
pub fn default_segment(summary: &ModelSummary) -> Option<String> {
    let f = &summary.schema.features;
    f.iter()
        .find(|f| matches!(f.kind, modelwatch_core::FeatureKind::Categorical))
        .or_else(|| f.first())
        .map(|f| f.name.clone())
}

/// Reference shares against the shares of the last window with events in the span.
fn distributions(
    store: &dyn Store,
    model: &ModelName,
    span: &Span,
) -> Result<Vec<Distribution>, EngineError> {
    let reference = Reference::load(store, model, span.version.as_deref())?;
    let w = span.window();
    // The latest complete window with enough events (the current hour may have just begun),
    // else the latest with enough, else the latest with any.
    let mut windows = drift::windows(
        store,
        model,
        &span.drift(Timestamp(span.to.0 - 2 * w.micros()).max(span.from)),
        &reference,
    )?;
    if windows.is_empty() {
        windows = drift::windows(store, model, &span.drift(span.from), &reference)?;
    }
    let cutoff = modelwatch_engine::partial::cutoff(store, model, Timestamp::now())?;
    let partial = |w: &drift::Windowed| modelwatch_engine::partial::is_partial(w.end, cutoff);
    let pick = windows
        .iter()
        .rposition(|w| !partial(w) && w.sketch.rows >= MIN_ROWS)
        .or_else(|| windows.iter().rposition(|w| w.sketch.rows >= MIN_ROWS))
        .unwrap_or(windows.len().saturating_sub(1));
    let current_partial = windows.get(pick).is_some_and(partial);
    let Some(current) = windows.into_iter().nth(pick) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, (profile, col)) in reference
        .features
        .features
        .iter()
        .zip(&current.sketch.features)
        .enumerate()
        .take(MAX_DISTRIBUTIONS)
    {
        let (bins, ref_counts, cur_counts) = match (&profile.detail, &col.numeric) {
            (ProfileDetail::Numeric(n), Some(counts)) => {
                let Some(grid) = reference.feature_grid(i) else {
                    continue;
                };
                let labels = numeric_bins(n.edges.edges());
                (
                    labels,
                    n.bin_counts.clone(),
                    grid.bin_counts(counts, n.edges.len()),
                )
            }
            (ProfileDetail::Categorical(c), _) => categorical_bins(&c.categories, &c.counts, col),
            _ => continue,
        };
        out.push(Distribution {
            feature: profile.name.clone(),
            kind: format!("{:?}", profile.kind).to_lowercase(),
            window_start: current.start,
            partial: current_partial,
            reference: shares(&ref_counts),
            current: shares(&cur_counts),
            reference_rows: ref_counts.iter().sum(),
            current_rows: cur_counts.iter().sum(),
            bins,
        });
    }
    Ok(out)
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// `< e1`, `[e1, e2)`, ..., `≥ ek` (`BinEdges::bin_of` counts the edges at or below a value).
fn numeric_bins(edges: &[f64]) -> Vec<String> {
    if edges.is_empty() {
        return vec!["all".into()];
    }
    let mut out = vec![format!("< {}", short(edges[0]))];
    for pair in edges.windows(2) {
        out.push(format!("[{}, {})", short(pair[0]), short(pair[1])));
    }
    out.push(format!("≥ {}", short(edges[edges.len() - 1])));
    out
}

/// The most frequent reference categories, `(other)` for the rest of the reference's, and
/// `(unseen)` for values the reference never had.
fn categorical_bins(
    categories: &[String],
    counts: &[u64],
    current: &ColumnCounts,
) -> (Vec<String>, Vec<u64>, Vec<u64>) {
    let mut order: Vec<usize> = (0..categories.len()).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let shown = order.len().min(MAX_CATEGORIES);
    let mut labels: Vec<String> = order[..shown]
        .iter()
        .map(|&i| categories[i].clone())
        .collect();
    let mut ref_counts: Vec<u64> = order[..shown].iter().map(|&i| counts[i]).collect();
    let other = order.len() > shown;
    if other {
        labels.push("(other)".into());
        ref_counts.push(order[shown..].iter().map(|&i| counts[i]).sum());
    }
    labels.push("(unseen)".into());
    ref_counts.push(0);
    // The window's counts are in the reference's category order.
    let mut cur = vec![0u64; labels.len()];
    for (pos, &i) in order.iter().enumerate() {
        let slot = if pos < shown { pos } else { shown }; // else: (other)
        cur[slot] += current.categories.get(i).copied().unwrap_or(0);
    }
    let unseen = labels.len() - 1;
    cur[unseen] = current.unseen.values().sum::<u64>() + current.unseen_overflow;
    (labels, ref_counts, cur)
}

/// A number in few characters: 3 significant digits, no trailing zeros.
pub fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A metric's value with its interval, when defined: (value, ci_low, ci_high).
pub fn estimate(m: &Metric) -> Option<(f64, f64, f64)> {
    match m {
        Metric::Defined {
            value,
            ci_low,
            ci_high,
            ..
        } => Some((*value, *ci_low, *ci_high)),
        _ => None,
    }
}

/// A metric of a task report, when defined: (value, ci_low, ci_high).
pub fn metric(report: &TaskReport, name: MetricName) -> Option<(f64, f64, f64)> {
    estimate(report.metric(name)?)
}

/// The four metrics charted for a task (the vocabulary's headline ones), the first being the
/// headline one.
pub fn chart_metrics(task: Task) -> [MetricName; 4] {
    task.metrics().headline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short(0.123456), "0.123");
        assert_eq!(short(12.5), "12.5");
        assert_eq!(short(1234.0), "1234");
        assert_eq!(short(0.0), "0");
    }

    #[test]
    fn bins_cover_every_value() {
        assert_eq!(numeric_bins(&[1.0, 2.0]), vec!["< 1", "[1, 2)", "≥ 2"]);
        let cats: Vec<String> = (0..15).map(|i| format!("c{i}")).collect();
        let counts: Vec<u64> = (0..15).map(|i| 100 - i).collect();
        // One c0, one c14 (in "(other)"), one unseen "new".
        let mut categories = vec![0u64; 15];
        categories[0] = 1;
        categories[14] = 1;
        let current = ColumnCounts {
            categories,
            unseen: [("new".to_string(), 1)].into(),
            nulls: 1,
            ..ColumnCounts::default()
        };
        let (labels, r, c) = categorical_bins(&cats, &counts, &current);
        assert_eq!(labels.len(), MAX_CATEGORIES + 2);
        assert_eq!(labels[MAX_CATEGORIES], "(other)");
        assert_eq!(labels[MAX_CATEGORIES + 1], "(unseen)");
        assert_eq!(r.iter().sum::<u64>(), counts.iter().sum::<u64>());
        assert_eq!(c, {
            let mut v = vec![0; MAX_CATEGORIES + 2];
            v[0] = 1;
            v[MAX_CATEGORIES] = 1;
            v[MAX_CATEGORIES + 1] = 1;
            v
        });
    }
}
