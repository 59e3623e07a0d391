//! `GET /v1/models/{model}/attributions`: per window and per version, each feature's mean
//! |attribution|, its rank and share, and their drift against the reference's attributions
//! (`modelwatch_engine::attribution`).

use crate::extract::{Model, Params};
use crate::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_engine::attribution::{self, AttributionQuery};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttributionParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// `json` (default) or `csv`: one row per (window, feature), then per (version, feature),
    /// then the reference's (`engine::attribution::attributions_csv`).
    format: Option<String>,
}

/// `GET /v1/models/{model}/attributions?window=1d`.
pub(crate) async fn attributions(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<AttributionParams>,
) -> Result<Response, ApiError> {
    let csv = crate::extract::wants_csv(p.format.as_deref())?;
    let base = crate::drift::range_query(p.window, p.from, p.to, p.version)?;
    let query = AttributionQuery {
        window: base.window,
        from: base.from,
        to: base.to,
        version: base.version,
    };
    let store = state.store.clone();
    let out =
        blocking(move || Ok(attribution::attributions(store.as_ref(), &model, &query)?)).await?;
    if csv {
        let text = attribution::attributions_csv(&out);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response());
    }
    Ok(Json(out).into_response())
}
