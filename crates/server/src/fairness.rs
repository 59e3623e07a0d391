//! `GET /v1/models/{model}/fairness` (per-window fairness per protected attribute,
//! `modelwatch_engine::fairness`) and the model's fairness setting,
//! `GET`/`PUT /v1/models/{model}/fairness/settings`.

use crate::extract::{Model, Params};
use crate::json_body::JsonBody;
use crate::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_engine::fairness::{self, FairnessQuery, FairnessSettings};
use serde::Deserialize;
use serde_json::{json, Value};

/// `PUT /v1/models/{model}/fairness/settings`: the protected attributes, the favourable outcome
/// and the minimum group size (`{"protected": ["sex", "tag:region"], "favourable": 1}`); `null`
/// removes the setting. A bad one is a 400 naming the field.
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    Model(model): Model,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonBody(body) = body.map_err(|e| match e.code {
        "invalid_body" => ApiError::bad_request("invalid_fairness_settings", e.message),
        _ => e,
    })?;
    let settings = match body {
        Value::Null => None,
        v => Some(
            FairnessSettings::from_json(&v)
                .map_err(|e| ApiError::bad_request("invalid_fairness_settings", e.to_string()))?,
        ),
    };
    let (m, s) = (model.clone(), settings.clone());
    state
        .with_store(move |store| fairness::set_settings(store, &m, s.as_ref()))
        .await?;
    Ok(Json(json!({"name": model.as_str(), "fairness": settings})))
}

/// `GET /v1/models/{model}/fairness/settings`: the setting, `null` when there is none.
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    Model(model): Model,
) -> Result<Json<Value>, ApiError> {
    let m = model.clone();
    let settings = state
        .with_store(move |store| {
            if store.model(&m)?.is_none() {
                return Err(modelwatch_store::StoreError::ModelNotFound(m.to_string()));
            }
            fairness::settings(store, &m)
        })
        .await?;
    Ok(Json(json!({"name": model.as_str(), "fairness": settings})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FairnessParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// `json` (default) or `csv`: one row per (attribute, window, group)
    /// (`engine::fairness::fairness_csv`).
    format: Option<String>,
}

/// `GET /v1/models/{model}/fairness?window=1d`: per protected attribute, per window and per
/// version, each group's rates and the gaps between groups.
pub(crate) async fn fairness(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<FairnessParams>,
) -> Result<Response, ApiError> {
    let csv = crate::extract::wants_csv(p.format.as_deref())?;
    let base = crate::drift::range_query(p.window, p.from, p.to, p.version)?;
    let query = FairnessQuery {
        window: base.window,
        from: base.from,
        to: base.to,
        version: base.version,
    };
    let store = state.store.clone();
    let out = blocking(move || Ok(fairness::fairness(store.as_ref(), &model, &query)?)).await?;
    if csv {
        let text = fairness::fairness_csv(&out);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response());
    }
    Ok(Json(out).into_response())
}
