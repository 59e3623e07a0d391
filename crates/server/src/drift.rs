//! `GET /v1/models/{model}/drift`, `/quality` and `/feedback`: per-window drift, data quality
//! and feedback-loop signals against the stored reference (`modelwatch_engine::drift` and
//! `::feedback`).

use crate::extract::{Model, Params};
use crate::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::Json;
use modelwatch_core::{parse_timestamp, Timestamp, Window};
use modelwatch_engine::drift::{self, DriftQuery, QualityThresholds, Segment};
use modelwatch_engine::feedback::{self, FeedbackQuery, FeedbackResponse, FeedbackThresholds};
use modelwatch_stats::drift::{DriftConfig, Method};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// One value's slice, `feature:value` or `tag:<name>:<value>` (`engine::query::Segment`);
    /// a breakdown by every value (`feature`, `tag:<name>`) is refused with what to write.
    segment: Option<String>,
    // Drift settings of this request (GET .../drift only; defaults as in `DriftConfig`).
    /// `benjamini_hochberg` (default), `bonferroni` or `none`.
    correction: Option<String>,
    /// Significance level after correction (0.05).
    alpha: Option<f64>,
    /// Share of drifted features that makes the dataset drift (0.5).
    drift_share: Option<f64>,
    /// Fewer valid rows than this on either side: not evaluated (30).
    min_rows: Option<u64>,
    /// Per-feature method overrides, `feature:method,...` (e.g. `amount:psi,country:jensen_shannon`).
    method: Option<String>,
}

impl DriftParams {
    fn has_drift_settings(&self) -> bool {
        self.correction.is_some()
            || self.alpha.is_some()
            || self.drift_share.is_some()
            || self.min_rows.is_some()
            || self.method.is_some()
    }

    /// The request's drift settings over the defaults, each checked with a message naming it.
    fn drift_config(&self) -> Result<DriftConfig, ApiError> {
        let bad = |m: String| ApiError::bad_request("invalid_query", m);
        let mut c = DriftConfig::default();
        if let Some(name) = &self.correction {
            c.correction = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| {
                    bad(format!(
                        "`correction`: {name:?} is not one of benjamini_hochberg, bonferroni, none"
                    ))
                })?;
        }
        if let Some(a) = self.alpha {
            if !(a > 0.0 && a < 1.0) {
                return Err(bad(format!("`alpha`: must be in (0, 1), got {a}")));
            }
            c.alpha = a;
        }
        if let Some(d) = self.drift_share {
            if !(d > 0.0 && d <= 1.0) {
                return Err(bad(format!("`drift_share`: must be in (0, 1], got {d}")));
            }
            c.drift_share = d;
        }
        if let Some(n) = self.min_rows {
            c.min_rows = n;
        }
        for pair in self
            .method
            .iter()
            .flat_map(|m| m.split(','))
            .filter(|p| !p.is_empty())
        {
            let Some((feature, method)) = pair.rsplit_once(':') else {
                return Err(bad(format!(
                    "`method`: {pair:?} is not feature:method (e.g. amount:psi)"
                )));
            };
            let m: Method = serde_json::from_value(serde_json::Value::String(method.trim().to_owned()))
                .map_err(|_| {
                    bad(format!(
                        "`method`: {method:?} for feature {feature:?} is not one of ks, chi_squared, cramer_von_mises, psi, jensen_shannon, hellinger, kl_divergence, wasserstein_normed"
                    ))
                })?;
            c.overrides.insert(feature.trim().to_owned(), m);
        }
        Ok(c)
    }
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<Timestamp>, ApiError> {
    v.map(|s| {
        parse_timestamp(&s)
            .map_err(|e| ApiError::bad_request("invalid_query", format!("`{name}`: {e}")))
    })
    .transpose()
}

fn drift_query(p: DriftParams) -> Result<DriftQuery, ApiError> {
    let window = Window::parse(p.window.as_deref().unwrap_or("1d"))
        .map_err(|e| ApiError::bad_request("invalid_query", format!("`window`: {e}")))?;
    let from = time_param("from", p.from)?;
    let to = time_param("to", p.to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`from` must be before `to`",
            ));
        }
    }
    // Empty is no segment, as on /metrics.
    let segment = p
        .segment
        .filter(|s| !s.is_empty())
        .map(|s| Segment::parse(&s))
        .transpose()?;
    Ok(DriftQuery {
        window,
        from,
        to,
        version: p.version.filter(|v| !v.is_empty()),
        segment,
    })
}

/// The window, range and version of a query without drift settings or segment (feedback,
/// concept, compare), read as `drift_query` reads them.
pub(crate) fn range_query(
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
) -> Result<DriftQuery, ApiError> {
    drift_query(DriftParams {
        window,
        from,
        to,
        version,
        ..DriftParams::default()
    })
}

pub(crate) async fn drift(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<DriftParams>,
) -> Result<Json<drift::DriftResponse>, ApiError> {
    let config = p.drift_config()?;
    let query = drift_query(p)?;
    let store = state.store.clone();
    let out = blocking(move || Ok(drift::drift(store.as_ref(), &model, &query, &config)?)).await?;
    Ok(Json(out))
}

pub(crate) async fn quality(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<DriftParams>,
) -> Result<Json<drift::QualityResponse>, ApiError> {
    if p.has_drift_settings() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`correction`, `alpha`, `drift_share`, `min_rows` and `method` are drift settings: use them with GET .../drift",
        ));
    }
    let query = drift_query(p)?;
    let store = state.store.clone();
    let out = blocking(move || {
        Ok(drift::quality(
            store.as_ref(),
            &model,
            &query,
            &QualityThresholds::default(),
        )?)
    })
    .await?;
    Ok(Json(out))
}

/// The query of a drift report over whole rows (multivariate, domain classifier): `/drift`'s
/// window, range, version and segment; its per-feature test settings are a 400.
fn whole_row_query(p: DriftParams) -> Result<DriftQuery, ApiError> {
    if p.has_drift_settings() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`correction`, `alpha`, `drift_share`, `min_rows` and `method` are settings of the per-feature tests: use them with GET .../drift",
        ));
    }
    drift_query(p)
}

/// `GET /v1/models/{model}/drift/multivariate`: the PCA reconstruction error per window
/// (`modelwatch_engine::multivariate`). Takes the window, range, version and segment of
/// `/drift`, not its per-feature test settings.
pub(crate) async fn multivariate(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<DriftParams>,
) -> Result<Json<modelwatch_engine::multivariate::MultivariateResponse>, ApiError> {
    let query = whole_row_query(p)?;
    let store = state.store.clone();
    let out = blocking(move || {
        Ok(modelwatch_engine::multivariate::multivariate(
            store.as_ref(),
            &model,
            &query,
        )?)
    })
    .await?;
    Ok(Json(out))
}

/// `GET /v1/models/{model}/drift/domain-classifier`: how well a classifier tells each window's
/// rows from the reference's (`modelwatch_engine::domain`). Takes the window, range, version
/// and segment of `/drift`, not its per-feature test settings.
pub(crate) async fn domain_classifier(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<DriftParams>,
) -> Result<Json<modelwatch_engine::domain::DomainResponse>, ApiError> {
    let query = whole_row_query(p)?;
    let store = state.store.clone();
    let out = blocking(move || {
        Ok(modelwatch_engine::domain::domain_classifier(
            store.as_ref(),
            &model,
            &query,
        )?)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// `name=value` of the tag on exploration traffic (default `exploration=true`).
    exploration: Option<String>,
}

/// `GET /v1/models/{model}/feedback`: prediction diversity against the reference and
/// exploration traffic, per window.
pub(crate) async fn feedback(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<FeedbackParams>,
) -> Result<Json<FeedbackResponse>, ApiError> {
    let base = range_query(p.window, p.from, p.to, p.version)?;
    let exploration = match p
        .exploration
        .as_deref()
        .unwrap_or("exploration=true")
        .split_once('=')
    {
        Some((name, value)) if !name.trim().is_empty() => {
            (name.trim().to_owned(), value.trim().to_owned())
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`exploration`: use the tag as name=value, e.g. exploration=true",
            ))
        }
    };
    let query = FeedbackQuery {
        window: base.window,
        from: base.from,
        to: base.to,
        version: base.version,
        exploration,
    };
    let store = state.store.clone();
    let out = blocking(move || {
        Ok(feedback::feedback(
            store.as_ref(),
            &model,
            &query,
            &FeedbackThresholds::default(),
        )?)
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConceptParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// Comma-separated detector names (default: all that apply to the model's task).
    detectors: Option<String>,
}

/// `GET /v1/models/{model}/concept`: change points in each version's error stream.
pub(crate) async fn concept(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<ConceptParams>,
) -> Result<Json<modelwatch_engine::concept::ConceptReport>, ApiError> {
    use modelwatch_engine::concept::{self, ConceptQuery};
    use modelwatch_stats::concept::DetectorKind;
    let base = range_query(p.window, p.from, p.to, p.version)?;
    let mut detectors = Vec::new();
    for name in p.detectors.iter().flat_map(|d| d.split(',')) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let Some(kind) = DetectorKind::parse(name) else {
            let known: Vec<&str> = DetectorKind::ALL.iter().map(|k| k.name()).collect();
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "`detectors`: unknown detector `{name}`; known: {}",
                    known.join(", ")
                ),
            ));
        };
        if !detectors.contains(&kind) {
            detectors.push(kind);
        }
    }
    let query = ConceptQuery {
        window: base.window,
        from: base.from,
        to: base.to,
        version: base.version,
        detectors,
    };
    let store = state.store.clone();
    let out = blocking(move || Ok(concept::concept(store.as_ref(), &model, &query)?)).await?;
    Ok(Json(out))
}
