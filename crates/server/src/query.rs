//! Read endpoints and model settings.

use crate::extract::{Model, Params};
use crate::json_body::JsonBody;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_core::{parse_timestamp, Schema, Timestamp, Window};
use modelwatch_engine::performance;
use modelwatch_store::{Cursor, WindowQuery};
use serde::Deserialize;
use serde_json::{json, Value};

const DEFAULT_PAGE: usize = 1_000;
const MAX_PAGE: usize = 10_000;

pub(crate) async fn list_models(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let models = state.with_store(move |store| store.list_models()).await?;
    Ok(Json(json!({ "models": models })))
}

pub(crate) async fn get_model(
    State(state): State<AppState>,
    Model(model): Model,
) -> Result<Json<Value>, ApiError> {
    let m = model.clone();
    let summary = state.with_store(move |store| store.model(&m)).await?;
    match summary {
        Some(s) => Ok(Json(serde_json::to_value(s).expect("summary serializes"))),
        None => Err(ApiError::not_found(format!(
            "model `{model}` does not exist"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelPatch {
    /// Days of predictions to keep; `null` keeps everything.
    retention_days: Option<u32>,
}

pub(crate) async fn patch_model(
    State(state): State<AppState>,
    Model(model): Model,
    JsonBody(patch): JsonBody<ModelPatch>,
) -> Result<Json<Value>, ApiError> {
    let m = model.clone();
    state
        .with_store(move |store| store.set_retention(&m, patch.retention_days))
        .await?;
    Ok(Json(
        json!({"name": model.as_str(), "retention_days": patch.retention_days}),
    ))
}

pub(crate) async fn put_schema(
    State(state): State<AppState>,
    Model(model): Model,
    body: Result<JsonBody<Schema>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    // A body that is not a schema is an `invalid_schema` (415 and 413 keep their codes).
    let JsonBody(schema) = body.map_err(|e| match e.code {
        "invalid_body" => ApiError::bad_request("invalid_schema", e.message),
        _ => e,
    })?;
    // Ingest refuses a row with a feature named "" ; a schema must not declare one either.
    if let Some(i) = schema.features.iter().position(|f| f.name.is_empty()) {
        return Err(ApiError::bad_request(
            "invalid_schema",
            format!("features[{i}]: a feature name cannot be empty"),
        ));
    }
    let mut names = std::collections::HashSet::new();
    if let Some(dup) = schema
        .features
        .iter()
        .find(|f| !names.insert(f.name.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_schema",
            format!("feature `{}` is declared twice", dup.name),
        ));
    }
    let m = model.clone();
    let s = schema.clone();
    state
        .with_store(move |store| store.declare_schema(&m, s))
        .await?;
    Ok(Json(
        json!({"name": model.as_str(), "schema": {"features": schema.features, "declared": true}}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskBody {
    /// `binary`, `multiclass`, `regression`, or `null` to go back to detection.
    task: Option<String>,
}

/// The task declared for a model and where: `{"name", "task", "declared_in"}` (`config`,
/// `api`, or `null` with `task: null` when detection decides).
fn task_reply(model: &modelwatch_core::ModelName, api: Option<performance::Task>) -> Value {
    let (task, declared_in) = match (modelwatch_engine::aggregates::configured_task(model), api) {
        (Some(t), _) => (Some(t), Some("config")),
        (None, Some(t)) => (Some(t), Some("api")),
        (None, None) => (None, None),
    };
    json!({"name": model.as_str(), "task": task, "declared_in": declared_in})
}

/// `GET /v1/models/{model}/task`: the declared task, if any.
pub(crate) async fn get_task(
    State(state): State<AppState>,
    Model(model): Model,
) -> Result<Json<Value>, ApiError> {
    let m = model.clone();
    let api = state
        .with_store(move |store| {
            if store.model(&m)?.is_none() {
                return Err(modelwatch_store::StoreError::ModelNotFound(m.to_string()));
            }
            modelwatch_engine::aggregates::api_declared_task(store, &m)
        })
        .await?;
    Ok(Json(task_reply(&model, api)))
}

/// `PUT /v1/models/{model}/task`: declares the model's task (`{"task": "regression"}`), kept
/// across restarts; `{"task": null}` goes back to detection. The aggregates are rebuilt for it.
pub(crate) async fn put_task(
    State(state): State<AppState>,
    Model(model): Model,
    body: Result<JsonBody<TaskBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    // A body that is not a task is an `invalid_task` (415 and 413 keep their codes).
    let JsonBody(body) = body.map_err(|e| match e.code {
        "invalid_body" => ApiError::bad_request("invalid_task", e.message),
        _ => e,
    })?;
    let task = body
        .task
        .as_deref()
        .map(performance::Task::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_task", format!("`task`: {e}")))?;
    if let Some(configured) = modelwatch_engine::aggregates::configured_task(&model) {
        if task != Some(configured) {
            return Err(ApiError::new(
                modelwatch_core::ErrorCode::Conflict,
                "conflict",
                format!(
                    "the config file declares task `{}` for model `{model}` \
                     ([models.{model}] task): change it there",
                    configured.as_str()
                ),
            ));
        }
    }
    let m = model.clone();
    state
        .with_store(move |store| {
            if store.model(&m)?.is_none() {
                return Err(modelwatch_store::StoreError::ModelNotFound(m.to_string()));
            }
            modelwatch_engine::aggregates::declare_task(store, &m, task)
        })
        .await?;
    Ok(Json(task_reply(&model, task)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    /// The `next` of the page before: an opaque token, passed to the store as it came.
    after: Option<String>,
    limit: Option<usize>,
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        0 => Err(ApiError::bad_request(
            "invalid_query",
            "limit must be at least 1",
        )),
        n if n > MAX_PAGE => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit {n} is above the maximum of {MAX_PAGE}: page with `after`"),
        )),
        n => Ok(n),
    }
}

pub(crate) async fn predictions(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(p.limit)?;
    let page = state
        .with_store(move |store| {
            store.predictions(&model, p.after.map(Cursor::new).as_ref(), limit)
        })
        .await?;
    Ok(Json(json!({"predictions": page.items, "next": page.next})))
}

pub(crate) async fn labels(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(p.limit)?;
    let page = state
        .with_store(move |store| store.labels(&model, p.after.map(Cursor::new).as_ref(), limit))
        .await?;
    Ok(Json(json!({"labels": page.items, "next": page.next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectedParams {
    limit: Option<usize>,
}

pub(crate) async fn rejected(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<RejectedParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(p.limit)?;
    let rows = state
        .with_store(move |store| store.rejected(&model, limit))
        .await?;
    Ok(Json(json!({ "rejected": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// `engine::query::Segment`: a feature or `tag:<name>` for metrics per value of it, or
    /// `feature:value` / `tag:<name>:<value>` for the metrics of that slice only.
    segment: Option<String>,
    /// `binary`, `multiclass` or `regression`: overrides detection.
    task: Option<String>,
    /// What-if binary decision threshold: the score decides at it instead of the logged
    /// prediction.
    threshold: Option<f64>,
    /// `json` (default) or `csv`: the windows as one flat table (`engine::metrics_csv`).
    format: Option<String>,
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<Timestamp>, ApiError> {
    v.map(|s| {
        parse_timestamp(&s)
            .map_err(|e| ApiError::bad_request("invalid_query", format!("`{name}`: {e}")))
    })
    .transpose()
}

pub(crate) async fn metrics(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<MetricsParams>,
) -> Result<Response, ApiError> {
    let csv = crate::extract::wants_csv(p.format.as_deref())?;
    // Checked here so that a bad one is refused before any work; the engine reads it again.
    // Empty is no segment (as it was: an empty name split nothing useful).
    let segment = p.segment.filter(|s| !s.is_empty());
    let breakdown = match &segment {
        Some(s) => performance::Segment::parse(s)?.value.is_none(),
        None => false,
    };
    if csv && breakdown {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`format=csv` is the table of windows and has no segments: drop `segment`, name one value (e.g. country:DE), or ask for JSON",
        ));
    }
    let window = Window::parse(p.window.as_deref().unwrap_or("1d"))
        .map_err(|e| ApiError::bad_request("invalid_query", format!("`window`: {e}")))?;
    let query = WindowQuery {
        window,
        from: time_param("from", p.from)?,
        to: time_param("to", p.to)?,
        version: p.version,
    };
    if let (Some(f), Some(t)) = (query.from, query.to) {
        if f >= t {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`from` must be before `to`",
            ));
        }
    }
    let task = p
        .task
        .as_deref()
        .map(performance::Task::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("`task`: {e}")))?;
    let q = performance::PerformanceQuery {
        window: Some(query.window),
        from: query.from,
        to: query.to,
        version: query.version,
        segment,
        task,
        threshold: p.threshold,
        config: Default::default(),
    };
    // One object per window: the existing count keys, then the metrics flattened under their
    // scikit-learn names (shape in `modelwatch_engine::performance`).
    let report = state
        .with_store(move |store| {
            // The label-free estimates of each window (CBPE), beside the realized metrics.
            Ok(
                performance::window_performance(store, &model, &q).and_then(|mut r| {
                    modelwatch_engine::estimate::attach(store, &model, &q, &mut r)?;
                    Ok(r)
                }),
            )
        })
        .await??;
    if csv {
        let text = modelwatch_engine::metrics_csv::metrics_csv(&report);
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response());
    }
    Ok(Json(serde_json::to_value(report).expect("report serializes")).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KpiParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    name: Option<String>,
}

/// `GET /v1/models/{model}/kpis`: each KPI series per window (n, sum, mean, min, max, last).
pub(crate) async fn kpis(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<KpiParams>,
) -> Result<Json<Value>, ApiError> {
    let window = Window::parse(p.window.as_deref().unwrap_or("1d"))
        .map_err(|e| ApiError::bad_request("invalid_query", format!("`window`: {e}")))?;
    let range = modelwatch_store::ScanRange {
        from: time_param("from", p.from)?,
        to: time_param("to", p.to)?,
        version: None,
    };
    let m = model.clone();
    let series = state
        .with_store(move |store| {
            if store.model(&m)?.is_none() {
                return Err(modelwatch_store::StoreError::ModelNotFound(m.to_string()));
            }
            modelwatch_engine::kpis::kpi_series(store, &m, window, &range, p.name.as_deref())
        })
        .await?;
    Ok(Json(
        json!({"model": model.as_str(), "window": window.label(), "kpis": series}),
    ))
}
