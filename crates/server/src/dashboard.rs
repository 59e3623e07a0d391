//! The dashboard's pages (`/`, `/models/{model}`, `/models/{model}/{view}`) and the data of a
//! report (`/models/{model}/report.json`), rendered by `modelwatch_dashboard` on the blocking
//! pool. Errors are HTML pages with the right status; bad query parameters are a 400 page.
//! The alerts panel and the overview's counts read the alert service through the same JSON
//! its endpoints answer.

use crate::{blocking, ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use modelwatch_alerts::service::AlertFilter;
use modelwatch_alerts::AlertService;
use modelwatch_dashboard::{pages, AlertSource, AlertsData, DashError, Parts, Tab, ViewParams};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// The alert service as the pages' alert source: `GET /v1/alerts?model=`,
/// `GET /v1/alerts/history?model=&limit=` and `GET /v1/models/{model}/rules`, as JSON.
/// The flag: whoever asked may acknowledge alerts ([`crate::login::MayChange`]).
struct Alerts(Arc<AlertService>, bool);

fn json_list<T: Serialize>(items: Vec<T>) -> Result<Vec<Value>, String> {
    items
        .into_iter()
        .map(|x| serde_json::to_value(x).map_err(|e| e.to_string()))
        .collect()
}

impl AlertSource for Alerts {
    fn model_alerts(&self, model: &str, history: usize) -> Result<AlertsData, String> {
        let filter = AlertFilter {
            model: Some(model.to_owned()),
            ..Default::default()
        };
        let err = |e: modelwatch_alerts::AlertsError| e.to_string();
        Ok(AlertsData {
            alerts: json_list(self.0.alerts(&filter).map_err(err)?)?,
            history: json_list(self.0.history(Some(model), history).map_err(err)?)?,
            rules: json_list(self.0.rules(model).map_err(err)?)?,
            jobs: json_list(self.0.jobs(model).map_err(err)?)?,
            can_acknowledge: self.1,
        })
    }

    fn all_alerts(&self) -> Result<Vec<Value>, String> {
        json_list(
            self.0
                .alerts(&AlertFilter::default())
                .map_err(|e| e.to_string())?,
        )
    }
}

type Params = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// Pages hold only inline styles and SVG: the policy forbids every script and every fetch, so
/// even a missed escape could not run or load anything.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub(crate) fn html(status: StatusCode, body: String, started: Instant) -> Response {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("render;dur={ms:.1}")) {
        h.insert("server-timing", v);
    }
    r
}

fn error(e: DashError, started: Instant) -> Response {
    error_page(&ApiError::from(e), started)
}

/// An error as an HTML page, with the status and the message the API would answer.
pub(crate) fn error_page(e: &ApiError, started: Instant) -> Response {
    let status = e.status();
    let title = status.canonical_reason().unwrap_or("Error");
    html(
        status,
        pages::error_page(status.as_u16(), title, &e.message),
        started,
    )
}

fn params(p: Params) -> Result<ViewParams, DashError> {
    let Query(pairs) = p.map_err(|e| DashError::BadRequest(e.body_text()))?;
    ViewParams::parse(&pairs)
}

async fn render(
    state: AppState,
    may: Option<axum::Extension<crate::login::MayChange>>,
    p: Params,
    f: impl FnOnce(
            &dyn modelwatch_store::Store,
            &dyn AlertSource,
            ViewParams,
        ) -> Result<String, DashError>
        + Send
        + 'static,
) -> Response {
    let started = Instant::now();
    let params = match params(p) {
        Ok(p) => p,
        Err(e) => return error(e, started),
    };
    let store = state.store.clone();
    let alerts = Alerts(state.alerts.clone(), may.is_some_and(|m| m.0 .0));
    let out = blocking(move || Ok(f(store.as_ref(), &alerts, params))).await;
    match out {
        Ok(Ok(body)) => html(StatusCode::OK, body, started),
        Ok(Err(e)) => error(e, started),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn overview(
    State(state): State<AppState>,
    may: Option<axum::Extension<crate::login::MayChange>>,
    p: Params,
) -> Response {
    render(state, may, p, |store, alerts, params| {
        pages::overview(store, &params, Some(alerts))
    })
    .await
}

pub(crate) async fn model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    may: Option<axum::Extension<crate::login::MayChange>>,
    p: Params,
) -> Response {
    render(state, may, p, move |store, alerts, params| {
        pages::model_page(store, &model, Tab::Performance, &params, Some(alerts))
    })
    .await
}

pub(crate) async fn model_view(
    State(state): State<AppState>,
    Path((model, view)): Path<(String, String)>,
    may: Option<axum::Extension<crate::login::MayChange>>,
    p: Params,
) -> Response {
    if view == "report.json" {
        return report_json(state, model, p).await;
    }
    let Some(tab) = Tab::ALL
        .into_iter()
        .find(|t| t.path().strip_prefix('/') == Some(view.as_str()))
    else {
        let msg = format!(
            "no view `{view}`: use drift, quality, segments, versions, feedback, fairness, attributions, alerts, jobs or report.json"
        );
        return error(DashError::NotFound(msg), Instant::now());
    };
    render(state, may, p, move |store, alerts, params| {
        pages::model_page(store, &model, tab, &params, Some(alerts))
    })
    .await
}

/// Every section of a model's views as JSON: what `modelwatch report --server` renders.
async fn report_json(state: AppState, model: String, p: Params) -> Response {
    let params = match params(p) {
        Ok(p) => p,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let store = state.store.clone();
    let out = blocking(move || {
        let name = crate::model_name(&model)?;
        Ok(modelwatch_dashboard::gather(
            store.as_ref(),
            &name,
            &params,
            Parts::ALL,
        )?)
    })
    .await;
    match out {
        Ok(data) => axum::Json(data).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The alerts view's acknowledge form: `owner`, `comment`.
#[derive(serde::Deserialize)]
pub(crate) struct AckForm {
    #[serde(default)]
    owner: String,
    #[serde(default)]
    comment: String,
}

/// `POST /models/{model}/alerts/{fingerprint}/ack` (form `owner`, `comment`): the dashboard's
/// way to `POST /v1/alerts/{fingerprint}/ack`, through the same service method, then back to
/// the alerts view (303). With API keys it needs an admin key's authority, as the API route
/// does: an `Authorization: Bearer` admin key, or a session an admin key logged in
/// (`login::authorize_page`); a read key's session gets 403. A refusal is an HTML page with the
/// API's status and message.
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Path((model, fingerprint)): Path<(String, String)>,
    form: Result<axum::extract::Form<AckForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let started = Instant::now();
    let f = match form {
        Ok(axum::extract::Form(f)) => f,
        Err(e) => {
            return error(
                DashError::BadRequest(format!(
                    "send the form's `owner` and `comment` fields: {}",
                    e.body_text()
                )),
                started,
            )
        }
    };
    let alerts = state.alerts.clone();
    let out = blocking(move || {
        let name = crate::model_name(&model)?;
        // The page acts on the model in its URL: the fingerprint must be one of its alerts.
        let filter = AlertFilter {
            model: Some(name.as_str().to_owned()),
            ..Default::default()
        };
        if !alerts
            .alerts(&filter)?
            .iter()
            .any(|a| a.fingerprint == fingerprint)
        {
            return Err(ApiError::not_found(format!(
                "model `{name}` has no alert with fingerprint {fingerprint:?}"
            )));
        }
        let req = modelwatch_alerts::service::AckRequest {
            owner: f.owner,
            comment: f.comment,
        };
        alerts.acknowledge(&fingerprint, req)?;
        Ok(format!(
            "/models/{}/alerts",
            modelwatch_dashboard::params::url_encode(name.as_str())
        ))
    })
    .await;
    match out {
        Ok(back) => crate::login::see_other(&back),
        Err(e) => error_page(&e, started),
    }
}
