//! Alert rules, heartbeats, alerts, silences, notifications and `GET /metrics`: thin handlers
//! over `modelwatch_alerts::AlertService`.

use crate::extract::{Model, Params};
use crate::json_body::JsonBody;
use crate::{blocking, ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_alerts::exposition::{Exposition, CONTENT_TYPE};
use modelwatch_alerts::service::{AckRequest, AlertFilter, HeartbeatRequest, SilenceRequest};
use modelwatch_alerts::AlertsError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Runs an alert-service call on the blocking pool (SQLite).
async fn with_alerts<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&modelwatch_alerts::AlertService) -> Result<T, AlertsError> + Send + 'static,
) -> Result<T, ApiError> {
    let alerts = state.alerts.clone();
    blocking(move || Ok(f(&alerts)?)).await
}

pub(crate) async fn list_rules(
    State(state): State<AppState>,
    Model(model): Model,
) -> Result<Json<Value>, ApiError> {
    let rules = with_alerts(&state, move |a| a.rules(model.as_str())).await?;
    Ok(Json(json!({ "rules": rules })))
}

pub(crate) async fn create_rule(
    State(state): State<AppState>,
    Model(model): Model,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let rule = with_alerts(&state, move |a| a.create_rule(model.as_str(), body)).await?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

pub(crate) async fn delete_rule(
    State(state): State<AppState>,
    Model(model): Model,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    with_alerts(&state, move |a| a.delete_rule(model.as_str(), &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Model(model): Model,
    JsonBody(req): JsonBody<HeartbeatRequest>,
) -> Result<Json<Value>, ApiError> {
    let h = with_alerts(&state, move |a| a.heartbeat(model.as_str(), req)).await?;
    Ok(Json(json!({ "heartbeat": h })))
}

/// `GET /v1/models/{model}/heartbeats`: each job's runs and state.
pub(crate) async fn jobs(
    State(state): State<AppState>,
    Model(model): Model,
) -> Result<Json<Value>, ApiError> {
    let jobs = with_alerts(&state, move |a| a.jobs(model.as_str())).await?;
    Ok(Json(json!({ "jobs": jobs })))
}

pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    Params(f): Params<AlertFilter>,
) -> Result<Json<Value>, ApiError> {
    let alerts = with_alerts(&state, move |a| a.alerts(&f)).await?;
    Ok(Json(json!({ "alerts": alerts })))
}

/// `GET /v1/alerts/{fingerprint}`: one alert, with its likely causes when it has them.
pub(crate) async fn get_alert(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let alert = with_alerts(&state, move |a| a.alert(&fingerprint)).await?;
    Ok(Json(json!({ "alert": alert })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    model: Option<String>,
    limit: Option<usize>,
}

fn limit(l: Option<usize>) -> Result<usize, ApiError> {
    match l.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        n => Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit`: {n} is not between 1 and 1000"),
        )),
    }
}

pub(crate) async fn history(
    State(state): State<AppState>,
    Params(p): Params<HistoryParams>,
) -> Result<Json<Value>, ApiError> {
    let n = limit(p.limit)?;
    let h = with_alerts(&state, move |a| a.history(p.model.as_deref(), n)).await?;
    Ok(Json(json!({ "history": h })))
}

/// `POST /v1/alerts/{fingerprint}/ack` (admin): `{"owner", "comment"}`.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
    JsonBody(req): JsonBody<AckRequest>,
) -> Result<Json<Value>, ApiError> {
    let alert = with_alerts(&state, move |a| a.acknowledge(&fingerprint, req)).await?;
    Ok(Json(json!({ "alert": alert })))
}

pub(crate) async fn list_silences(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = with_alerts(&state, |a| a.silences()).await?;
    let s: Vec<Value> = s
        .into_iter()
        .map(|(s, active)| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            v["active"] = json!(active);
            v
        })
        .collect();
    Ok(Json(json!({ "silences": s })))
}

pub(crate) async fn create_silence(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<SilenceRequest>,
) -> Result<Response, ApiError> {
    let s = with_alerts(&state, move |a| a.create_silence(req)).await?;
    Ok((StatusCode::CREATED, Json(s)).into_response())
}

pub(crate) async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request("invalid_path", format!("silence id {id:?} is not a number"))
    })?;
    with_alerts(&state, move |a| a.expire_silence(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationParams {
    status: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn notifications(
    State(state): State<AppState>,
    Params(p): Params<NotificationParams>,
) -> Result<Json<Value>, ApiError> {
    let n = limit(p.limit)?;
    let (list, notifiers) = with_alerts(&state, move |a| {
        Ok((a.notifications(p.status.as_deref(), n)?, a.notifiers()))
    })
    .await?;
    let notifiers: Vec<Value> = notifiers
        .into_iter()
        .map(|(name, kind)| json!({"name": name, "kind": kind}))
        .collect();
    Ok(Json(
        json!({ "notifiers": notifiers, "notifications": list }),
    ))
}

/// Rows the ingest endpoints stored, saw again or refused, by model, kind and outcome.
#[derive(Default)]
pub struct IngestCounters {
    counts: Mutex<BTreeMap<(String, &'static str, &'static str), AtomicU64>>,
}

impl IngestCounters {
    pub fn add(&self, model: &str, kind: &'static str, outcome: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.entry((model.to_owned(), kind, outcome))
            .or_default()
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    fn export(&self, e: &mut Exposition) {
        e.family(
            "modelwatch_ingest_rows_total",
            "counter",
            "Rows received by the ingest endpoints since start, by model, kind and outcome.",
        );
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for ((model, kind, outcome), n) in c.iter() {
            e.sample(
                "modelwatch_ingest_rows_total",
                "modelwatch_ingest_rows_total",
                &[("model", model), ("kind", kind), ("outcome", outcome)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
    }
}

/// `GET /metrics`: the latest evaluated per-model values, alert and notification states, and
/// the service's ingest counters, in the Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let st = state.clone();
    let text = blocking(move || {
        let mut e = Exposition::new();
        st.alerts.export(&mut e);
        st.ingest_counters.export(&mut e);
        st.background_refresh.export(&mut e);
        e.family(
            "modelwatch_cluster_lease_changes_total",
            "counter",
            "Times this process started or stopped holding the cluster lease (ADR 020) since start.",
        );
        e.sample(
            "modelwatch_cluster_lease_changes_total",
            "modelwatch_cluster_lease_changes_total",
            &[],
            st.lease.changes() as f64,
        );
        let models = st.store.list_models()?;
        for m in &models {
            e.gauge(
                "modelwatch_model_predictions_stored",
                "Predictions stored for the model.",
                &[("model", &m.name)],
                m.predictions as f64,
            );
            e.gauge(
                "modelwatch_model_labels_stored",
                "Labels stored for the model.",
                &[("model", &m.name)],
                m.labels as f64,
            );
        }
        e.gauge("modelwatch_up", "1 while the service answers.", &[], 1.0);
        Ok(e.finish())
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}
