//! `GET /v1/models/{model}/drift` and `/quality`: per-window drift and data quality against the
//! stored reference, computed at query time by `modelwatch_engine::drift`.

use crate::{blocking, model_name, ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use modelwatch_core::{parse_timestamp, Timestamp, Window};
use modelwatch_engine::drift::{self, DriftError, DriftQuery, QualityThresholds, Segment};
use modelwatch_stats::drift::DriftConfig;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// `feature:value`.
    segment: Option<String>,
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
    let segment = p
        .segment
        .map(|s| Segment::parse(&s))
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("`segment`: {e}")))?;
    Ok(DriftQuery {
        window,
        from,
        to,
        version: p.version.filter(|v| !v.is_empty()),
        segment,
    })
}

impl From<DriftError> for ApiError {
    fn from(e: DriftError) -> Self {
        match e {
            DriftError::Store(e) => e.into(),
            e @ DriftError::NoReference { .. } => {
                ApiError::new(StatusCode::CONFLICT, "no_reference", e.to_string())
            }
            e @ DriftError::InvalidSegment(_) => {
                ApiError::bad_request("invalid_query", e.to_string())
            }
        }
    }
}

type Params = Result<Query<DriftParams>, axum::extract::rejection::QueryRejection>;

pub(crate) async fn drift(
    State(state): State<AppState>,
    Path(model): Path<String>,
    params: Params,
) -> Result<Json<drift::DriftResponse>, ApiError> {
    let model = model_name(&model)?;
    let Query(p) = params?;
    let query = drift_query(p)?;
    let store = state.store.clone();
    let out = blocking(move || {
        Ok(drift::drift(
            store.as_ref(),
            &model,
            &query,
            &DriftConfig::default(),
        )?)
    })
    .await?;
    Ok(Json(out))
}

pub(crate) async fn quality(
    State(state): State<AppState>,
    Path(model): Path<String>,
    params: Params,
) -> Result<Json<drift::QualityResponse>, ApiError> {
    let model = model_name(&model)?;
    let Query(p) = params?;
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
