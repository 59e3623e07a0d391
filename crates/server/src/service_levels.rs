//! `GET /v1/models/{model}/service-levels` (cost and the latency objective per window,
//! `modelwatch_engine::service_levels`) and the model's setting,
//! `GET`/`PUT /v1/models/{model}/service-levels/settings`.

use crate::extract::{Model, Params};
use crate::json_body::JsonBody;
use crate::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::Json;
use modelwatch_engine::service_levels::{
    self, ServiceLevelQuery, ServiceLevelReport, ServiceLevelSettings,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// `PUT /v1/models/{model}/service-levels/settings`: the cost per prediction and the latency
/// objective (`{"cost_per_prediction": 0.0004, "latency_slo": {"objective": 0.99,
/// "threshold_ms": 200}}`); `null` removes the setting. A bad one is a 400 naming the field.
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    Model(model): Model,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let invalid = "invalid_service_level_settings";
    let JsonBody(body) = body.map_err(|e| match e.code {
        "invalid_body" => ApiError::bad_request(invalid, e.message),
        _ => e,
    })?;
    let settings = match body {
        Value::Null => None,
        v => Some(
            ServiceLevelSettings::from_json(&v)
                .map_err(|e| ApiError::bad_request(invalid, e.to_string()))?,
        ),
    };
    let (m, s) = (model.clone(), settings.clone());
    state
        .with_store(move |store| service_levels::set_settings(store, &m, s.as_ref()))
        .await?;
    Ok(Json(
        json!({"name": model.as_str(), "service_levels": settings}),
    ))
}

/// `GET /v1/models/{model}/service-levels/settings`: the setting, `null` when there is none.
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
            service_levels::settings(store, &m)
        })
        .await?;
    Ok(Json(
        json!({"name": model.as_str(), "service_levels": settings}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceLevelParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
}

/// `GET /v1/models/{model}/service-levels?window=1h`: per window the cost (from the events and
/// from the rate) and the latency objective's compliance, burn rate and budget left; per
/// version the same over the range.
pub(crate) async fn service_levels(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<ServiceLevelParams>,
) -> Result<Json<ServiceLevelReport>, ApiError> {
    let base = crate::drift::range_query(p.window, p.from, p.to, p.version)?;
    let query = ServiceLevelQuery {
        window: base.window,
        from: base.from,
        to: base.to,
        version: base.version,
    };
    let store = state.store.clone();
    let out = blocking(move || {
        Ok(service_levels::service_levels(
            store.as_ref(),
            &model,
            &query,
        )?)
    })
    .await?;
    Ok(Json(out))
}
