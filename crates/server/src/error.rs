//! The one place where errors become HTTP statuses and `{"error": {"code", "message"}}` bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_store::StoreError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ModelNotFound(m) => ApiError::not_found(format!(
                "model `{m}` does not exist: send its predictions first"
            )),
            e if e.is_disk_full() => {
                tracing::error!(error = %e, "the data directory's disk is full");
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "disk_full",
                    "the disk holding the data directory is full: nothing of this request was \
                     stored. Send it again once space is freed (a shorter retention, a larger \
                     volume); what was acknowledged before is kept",
                )
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage_error",
                    other.to_string(),
                )
            }
        }
    }
}

impl From<modelwatch_engine::performance::PerformanceError> for ApiError {
    fn from(e: modelwatch_engine::performance::PerformanceError) -> Self {
        match e {
            modelwatch_engine::performance::PerformanceError::Store(e) => ApiError::from(e),
            e => ApiError::bad_request("invalid_query", e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", e.body_text())
    }
}

/// Gives an error that axum answered with an empty body (405 for a wrong method, the body
/// limit's 413, a timeout's 408) the JSON error body every other error has, so that a client
/// always has a message to show.
pub(crate) async fn json_error_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400
        || response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return response;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("{path} does not take {method}: docs/api.md lists each path's methods")
        }
        s => format!(
            "{method} {path}: {}",
            s.canonical_reason().unwrap_or("error")
        ),
    };
    let (mut parts, _) = response.into_parts();
    let fresh = ApiError::new(status, code, message).into_response();
    parts.headers.extend(fresh.headers().clone());
    Response::from_parts(parts, fresh.into_body())
}
