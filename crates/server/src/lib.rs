//! The HTTP service: the only crate that speaks HTTP.
//!
//! Handlers do three things: check the request (model name, size, auth), turn the body into
//! validated events with `modelwatch-core` (on the blocking pool, so that parsing large batches
//! runs in parallel and never stalls the async workers), and hand them to the [`Store`]. They
//! hold no state of their own: a restart loses nothing but in-flight requests, which were not
//! acknowledged.

mod alerts;
mod attribution;
mod browser;
mod compare;
pub mod config;
mod dashboard;
mod drift;
mod error;
mod extract;
mod fairness;
mod ingest;
mod json_body;
mod login;
mod outliers;
mod query;
mod refused;
mod service_levels;

pub use alerts::IngestCounters;
pub use config::Config;
pub use error::ApiError;
pub use ingest::{parse_batch, ParseRow, ParsedBatch};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use modelwatch_alerts::AlertService;
use modelwatch_core::{ErrorCode, ModelName, Timestamp};
use modelwatch_store::{Lease, Store};
use serde_json::json;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tower_http::decompression::RequestDecompressionLayer;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Rules, alerts, silences, notifications; evaluated after ingest and on a schedule.
    pub alerts: Arc<AlertService>,
    pub ingest_counters: Arc<IngestCounters>,
    /// Wakes the background refresh of aggregates before its next tick (a new model's first
    /// predictions: see `ingest::predictions`).
    pub refresh_soon: Arc<tokio::sync::Notify>,
    /// Failed dashboard logins per client address (login.rs).
    pub login_throttle: Arc<login::LoginThrottle>,
    /// Whether this process does the once-per-cluster work (alerts, the background refresh):
    /// several processes on one shared store (ADR 020). Always held on the embedded store.
    pub lease: Arc<dyn Lease>,
    /// What the background refresh did in this process (`GET /metrics`).
    pub background_refresh: Arc<BackgroundRefresh>,
}

impl AppState {
    /// Runs a store call on the blocking pool (store calls block on SQLite and the writer).
    pub(crate) async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, modelwatch_store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        blocking(move || Ok(f(store.as_ref())?)).await
    }
}

/// Builds the router over a store.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    let api = Router::new()
        .route("/v1/models", get(query::list_models))
        .route(
            "/v1/models/{model}",
            get(query::get_model).patch(query::patch_model),
        )
        .route(
            "/v1/models/{model}/predictions",
            post(ingest::predictions).get(query::predictions),
        )
        .route(
            "/v1/models/{model}/labels",
            post(ingest::labels).get(query::labels),
        )
        .route(
            "/v1/models/{model}/kpis",
            post(ingest::kpis).get(query::kpis),
        )
        .route("/v1/models/{model}/reference", put(ingest::reference))
        .route("/v1/models/{model}/schema", put(query::put_schema))
        .route(
            "/v1/models/{model}/task",
            get(query::get_task).put(query::put_task),
        )
        .route("/v1/models/{model}/metrics", get(query::metrics))
        .route("/v1/models/{model}/rejected", get(query::rejected))
        .route("/v1/models/{model}/drift", get(drift::drift))
        .route(
            "/v1/models/{model}/drift/multivariate",
            get(drift::multivariate),
        )
        .route(
            "/v1/models/{model}/drift/domain-classifier",
            get(drift::domain_classifier),
        )
        .route("/v1/models/{model}/quality", get(drift::quality))
        .route("/v1/models/{model}/feedback", get(drift::feedback))
        .route("/v1/models/{model}/concept", get(drift::concept))
        .route("/v1/models/{model}/fairness", get(fairness::fairness))
        .route(
            "/v1/models/{model}/attributions",
            get(attribution::attributions),
        )
        .route(
            "/v1/models/{model}/fairness/settings",
            get(fairness::get_settings).put(fairness::put_settings),
        )
        .route(
            "/v1/models/{model}/service-levels",
            get(service_levels::service_levels),
        )
        .route(
            "/v1/models/{model}/service-levels/settings",
            get(service_levels::get_settings).put(service_levels::put_settings),
        )
        .route("/v1/models/{model}/compare", get(compare::compare))
        .route("/v1/models/{model}/outliers", get(outliers::outliers))
        .route(
            "/v1/models/{model}/rules",
            get(alerts::list_rules).post(alerts::create_rule),
        )
        .route(
            "/v1/models/{model}/rules/{name}",
            delete(alerts::delete_rule),
        )
        .route(
            "/v1/models/{model}/heartbeats",
            post(alerts::heartbeat).get(alerts::jobs),
        )
        .route("/v1/alerts", get(alerts::list_alerts))
        .route("/v1/alerts/history", get(alerts::history))
        .route("/v1/alerts/{fingerprint}", get(alerts::get_alert))
        .route("/v1/alerts/{fingerprint}/ack", post(alerts::acknowledge))
        .route(
            "/v1/silences",
            get(alerts::list_silences).post(alerts::create_silence),
        )
        .route("/v1/silences/{id}", delete(alerts::delete_silence))
        .route("/v1/notifications", get(alerts::notifications))
        .route("/metrics", get(alerts::metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    // The dashboard: HTML pages (JSON stays under /v1). With API keys, a browser logs in at
    // /login and gets a session cookie these pages (and only they) accept.
    let pages = Router::new()
        .route("/", get(dashboard::overview))
        .route("/models/{model}", get(dashboard::model))
        .route("/models/{model}/{view}", get(dashboard::model_view))
        .route(
            "/models/{model}/alerts/{fingerprint}/ack",
            post(dashboard::acknowledge),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            login::authorize_page,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(login::form).post(login::login))
        .route("/logout", post(login::logout))
        .merge(api)
        .merge(pages)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            browser::guard,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_READ_TIMEOUT,
        ))
        // Decompression runs before the body limit is applied, so the limit bounds the
        // decompressed size and a small gzip bomb gets a 413, not an out-of-memory.
        .layer(RequestDecompressionLayer::new())
        // Outermost, so that the layers' own answers (the decompression's 415) get it too.
        .layer(middleware::from_fn(error::json_error_body))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

/// What a request may do, by route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Ingest,
    Read,
    Admin,
}

fn scope_of(method: &Method, path: &str) -> Scope {
    // Heartbeats come from the same pipelines that send events: an ingest key may send them.
    let ingest = path.ends_with("/predictions")
        || path.ends_with("/labels")
        || path.ends_with("/kpis")
        || path.ends_with("/heartbeats");
    match *method {
        Method::GET | Method::HEAD => Scope::Read,
        Method::POST if ingest => Scope::Ingest,
        _ => Scope::Admin,
    }
}

/// Keys are compared in constant time, and every configured key is compared, so the response
/// time does not tell an attacker which prefix of which key was right.
fn key_matches(keys: &[String], given: &[u8]) -> bool {
    keys.iter().fold(false, |found, k| {
        found | bool::from(k.as_bytes().ct_eq(given))
    })
}

async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let auth = &state.config.auth;
    if auth.is_open() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().as_bytes().to_vec());
    let Some(given) = given else {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "unauthorized",
            "missing API key: send the header `Authorization: Bearer <key>`",
        )
        .into_response();
    };
    let scope = scope_of(req.method(), req.uri().path());
    let admin = key_matches(&auth.admin_keys, &given);
    let ingest = key_matches(&auth.ingest_keys, &given);
    let read = key_matches(&auth.read_keys, &given);
    let allowed = admin || (scope == Scope::Ingest && ingest) || (scope == Scope::Read && read);
    if allowed {
        next.run(req).await
    } else if ingest || read {
        ApiError::new(
            ErrorCode::Forbidden,
            "forbidden",
            format!(
                "this API key may not {}",
                match scope {
                    Scope::Ingest => "ingest",
                    Scope::Read => "read",
                    Scope::Admin => "change settings or upload references (an admin key is needed)",
                }
            ),
        )
        .into_response()
    } else {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "unauthorized",
            "invalid API key",
        )
        .into_response()
    }
}

pub(crate) fn model_name(raw: &str) -> Result<ModelName, ApiError> {
    ModelName::new(raw).map_err(|e| ApiError::of(&e, "invalid_model_name"))
}

/// Runs blocking work (parsing, storage) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    // hyper drops a request's future when its client goes away; the guard then tells the
    // store's scans on the blocking thread to stop (`modelwatch_store::run_cancellable`).
    struct AbandonOnDrop(Option<Arc<AtomicBool>>);
    impl Drop for AbandonOnDrop {
        fn drop(&mut self) {
            if let Some(flag) = &self.0 {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
    let abandoned = Arc::new(AtomicBool::new(false));
    let mut guard = AbandonOnDrop(Some(abandoned.clone()));
    let work = tokio::task::spawn_blocking(move || {
        let flag = abandoned.clone();
        let out = modelwatch_store::run_cancellable(abandoned, f);
        if flag.load(Ordering::Relaxed) {
            tracing::info!("a request's client went away: its store work stopped early");
        }
        out
    });
    let out = work.await;
    // Answered: nothing to stop any more.
    guard.0 = None;
    out.map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            "internal",
            format!("worker failed: {e}"),
        )
    })?
}

/// Applies retention settings from the config and deletes expired data, every
/// `retention.interval_seconds`, starting now.
pub async fn retention_loop(state: AppState) {
    let mut tick =
        tokio::time::interval(Duration::from_secs(state.config.retention.interval_seconds));
    loop {
        tick.tick().await;
        let st = state.clone();
        let result = blocking(move || {
            let models = st.store.list_models()?;
            for m in models {
                let name = model_name(&m.name)?;
                let wanted = st
                    .config
                    .models
                    .get(&m.name)
                    .and_then(|c| c.retention_days)
                    .or(m.retention_days)
                    .or(st.config.retention.default_days);
                if wanted != m.retention_days {
                    st.store.set_retention(&name, wanted)?;
                }
            }
            Ok(st.store.apply_retention(Timestamp::now())?)
        })
        .await;
        match result {
            Ok(r) if r.predictions_deleted + r.labels_deleted + r.rejected_deleted > 0 => {
                tracing::info!(
                    predictions = r.predictions_deleted,
                    labels = r.labels_deleted,
                    rejected = r.rejected_deleted,
                    "retention deleted expired data"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "retention failed"),
        }
    }
}

/// How often the aggregates of models with new events or labels are brought up to date in the
/// background (a query also refreshes first, so this only keeps queries fast, never right).
const AGGREGATE_REFRESH: Duration = Duration::from_secs(2);
/// How often a process without the cluster lease looks whether it holds it now.
const LEASE_RECHECK: Duration = Duration::from_millis(250);

/// The background refresh's passes and the hours they brought up to date, since start: only
/// the process holding the cluster lease runs them (`GET /metrics`).
#[derive(Debug, Default)]
pub struct BackgroundRefresh {
    passes: AtomicU64,
    hours: AtomicU64,
}

impl BackgroundRefresh {
    fn export(&self, e: &mut modelwatch_alerts::exposition::Exposition) {
        e.family(
            "modelwatch_background_refresh_passes_total",
            "counter",
            "Background passes over the models with stale per-hour state since start (only in the process holding the cluster lease; queries refresh on every process).",
        );
        e.sample(
            "modelwatch_background_refresh_passes_total",
            "modelwatch_background_refresh_passes_total",
            &[],
            self.passes.load(Ordering::Relaxed) as f64,
        );
        e.family(
            "modelwatch_background_refresh_hour_states_total",
            "counter",
            "Hours of per-hour state the background passes brought up to date since start.",
        );
        e.sample(
            "modelwatch_background_refresh_hour_states_total",
            "modelwatch_background_refresh_hour_states_total",
            &[],
            self.hours.load(Ordering::Relaxed) as f64,
        );
    }
}

/// Keeps every model's per-hour aggregates up to date with what was ingested. Once per
/// cluster: only while this process holds the lease (ADR 020); a query on any process still
/// refreshes the hours it reads first, so answers are never stale, only slower.
pub async fn aggregates_loop(state: AppState) {
    let mut tick = tokio::time::interval(AGGREGATE_REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.refresh_soon.notified() => {}
        }
        // Not the holder, or the holder between two epochs (not holding from the end of one
        // until it has read the next): look again shortly, not a tick later, since the tick's
        // phase could fall in that gap every time.
        while !state.lease.held() {
            tokio::time::sleep(LEASE_RECHECK).await;
        }
        let st = state.clone();
        let result = blocking(move || {
            st.background_refresh.passes.fetch_add(1, Ordering::Relaxed);
            for name in st.store.models_with_stale_hours()? {
                // The lease passed on mid-pass: the new holder takes the rest.
                if !st.lease.held() {
                    break;
                }
                let r = modelwatch_engine::aggregates::refresh(st.store.as_ref(), &name)
                    .map_err(ApiError::from)?;
                st.background_refresh
                    .hours
                    .fetch_add(r.hours as u64, Ordering::Relaxed);
                if r.hours > 0 {
                    tracing::debug!(model = %name, hours = r.hours, rescanned = r.predictions,
                        predictions_added = r.predictions_added, decoded = r.predictions_decoded,
                        labels_added = r.labels_added,
                        seconds = r.seconds, "aggregates refreshed");
                }
            }
            Ok(())
        })
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e.message, "aggregate refresh failed");
        }
    }
}

/// Serves until `shutdown` resolves. Requests in flight are finished first; the store is
/// flushed when the last reference to it is dropped.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Tasks the config file declares apply to every query, whether the model exists yet or not.
    modelwatch_engine::aggregates::configure_tasks(
        state
            .config
            .models
            .iter()
            .filter_map(|(name, m)| m.task.map(|t| (name.clone(), t))),
    );
    let retention = tokio::spawn(retention_loop(state.clone()));
    let aggregates = tokio::spawn(aggregates_loop(state.clone()));
    let alerts = tokio::spawn(state.alerts.clone().run());
    let app = router(state);
    let result = serve_http(listener, app, shutdown).await;
    retention.abort();
    aggregates.abort();
    alerts.abort();
    result
}

/// How long a client may take to send a request's headers before its connection is closed
/// (hyper's own default, which only applies with a timer: axum's `serve` sets none).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request body may pause between chunks before the request fails (408).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// After a shutdown signal, how long requests in flight get to finish. Past it the connections
/// are dropped: a client holding a half-sent request cannot keep the process alive. What was
/// acknowledged is on disk already, and what was not is for the client to send again.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The accept loop: HTTP/1 on each connection, with hyper's header read timeout,
/// until `shutdown`; then at most [`SHUTDOWN_GRACE`] for the requests in flight.
async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let peer = login::Peer(
            stream
                .peer_addr()
                .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
        );
        let service = hyper_util::service::TowerToHyperService::new(app.clone().map_request(
            move |r: Request<hyper::body::Incoming>| {
                let mut r = r.map(axum::body::Body::new);
                r.extensions_mut().insert(peer);
                r
            },
        ));
        // hyper's own refusals (a request head it cannot parse) get the JSON error body too.
        let io = TokioIo::new(refused::JsonRefusals::new(stream));
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!(
                seconds = SHUTDOWN_GRACE.as_secs(),
                "requests still open after the shutdown grace period: closing their connections"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_ingest_rules_and_silences_admin_metrics_read() {
        assert_eq!(
            scope_of(&Method::POST, "/v1/models/m/heartbeats"),
            Scope::Ingest
        );
        assert_eq!(scope_of(&Method::POST, "/v1/models/m/rules"), Scope::Admin);
        assert_eq!(
            scope_of(&Method::DELETE, "/v1/models/m/rules/r"),
            Scope::Admin
        );
        assert_eq!(scope_of(&Method::POST, "/v1/silences"), Scope::Admin);
        assert_eq!(scope_of(&Method::GET, "/v1/alerts"), Scope::Read);
        assert_eq!(scope_of(&Method::GET, "/metrics"), Scope::Read);
    }
}
