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
