//! The one place where errors become HTTP statuses and `{"error": {"code", "message"}}` bodies.
//!
//! Library errors say what kind of failure they are ([`ErrorCode`], from `modelwatch-core`);
//! [`status`] is the only map from a kind to a status, and the `From` impls below the only
//! places a library error becomes a reply: they choose the body's `code` (the API's name for
//! the problem, docs/api.md) and, where a reply should say where to go, add the route.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_alerts::AlertsError;
use modelwatch_core::{ErrorCode, ServiceError};
use modelwatch_dashboard::DashError;
use modelwatch_engine::EngineError;
use modelwatch_formats::FormatError;
use modelwatch_store::StoreError;
use serde_json::json;

/// The HTTP status of each kind of failure.
pub(crate) fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::NothingValid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorCode,
    /// The body's `code`: the API's name for the problem (`invalid_query`, `no_reference`...).
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        status(self.kind)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooLarge, "payload_too_large", message)
    }

    /// A library error whose kind decides the status: the caller's mistakes get `code`
    /// in the body, failures of the service their own (a full disk, a storage failure), so a
    /// failing store is never answered as the caller's mistake.
    pub fn of(e: &(impl ServiceError + ?Sized), code: &'static str) -> Self {
        match e.code() {
            ErrorCode::StorageFull => disk_full(&e.to_string()),
            ErrorCode::Internal => {
                tracing::error!(error = %e, "storage failure");
                ApiError::new(ErrorCode::Internal, "storage_error", e.to_string())
            }
            kind => ApiError::new(kind, code, e.to_string()),
        }
    }

    /// The JSON error body with its status.
    fn reply(status: StatusCode, code: &str, message: &str) -> Response {
        let body = json!({"error": {"code": code, "message": message}});
        (status, Json(body)).into_response()
    }
}

fn disk_full(error: &str) -> ApiError {
    tracing::error!(error, "the data directory's disk is full");
    ApiError::new(
        ErrorCode::StorageFull,
        "disk_full",
        "the disk holding the data directory is full: nothing of this request was \
         stored. Send it again once space is freed (a shorter retention, a larger \
         volume); what was acknowledged before is kept",
    )
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ModelNotFound(m) => ApiError::not_found(format!(
                "model `{m}` does not exist: send its predictions first"
            )),
            e @ StoreError::InvalidCursor { .. } => {
                ApiError::new(e.code(), "invalid_query", format!("`after`: {e}"))
            }
            e => ApiError::of(&e, "storage_error"),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(e) => e.into(),
            // The engine names the concept; the reply says where to upload one.
            EngineError::NoReference { ref model } => ApiError::new(
                e.code(),
                "no_reference",
                format!(
                    "model `{model}` has no reference dataset: upload one with \
                     PUT /v1/models/{model}/reference"
                ),
            ),
            e @ EngineError::FairnessUnavailable(_) => ApiError::of(&e, "fairness_unavailable"),
            e @ EngineError::ReferenceNotFitted { .. } => ApiError::of(&e, "reference_not_fitted"),
            e @ (EngineError::InvalidThreshold(_) | EngineError::InvalidTask(_)) => {
                ApiError::of(&e, "invalid_query")
            }
            // The same words on /metrics and /drift, naming the query parameter.
            e @ (EngineError::InvalidSegment { .. } | EngineError::SegmentNeedsValue { .. }) => {
                ApiError::new(e.code(), "invalid_query", format!("`segment`: {e}"))
            }
            e @ EngineError::InvalidWindow(_) => {
                ApiError::new(e.code(), "invalid_query", format!("`window`: {e}"))
            }
        }
    }
}

impl From<AlertsError> for ApiError {
    fn from(e: AlertsError) -> Self {
        let code = match &e {
            AlertsError::Store(e) => return ApiError::of(e, "storage_error"),
            AlertsError::Rule(_) => "invalid_rule",
            AlertsError::Invalid(_) => "invalid_request",
            AlertsError::NotFound(_) => "not_found",
            AlertsError::Conflict(_) => "conflict",
            AlertsError::Db(_) => "storage_error",
        };
        ApiError::of(&e, code)
    }
}

/// `report.json`'s errors (the pages' are HTML: `dashboard::error`).
impl From<DashError> for ApiError {
    fn from(e: DashError) -> Self {
        match e {
            DashError::Store(e) => e.into(),
            e @ DashError::BadRequest(_) => ApiError::of(&e, "invalid_query"),
            e @ DashError::NotFound(_) => ApiError::of(&e, "not_found"),
        }
    }
}

/// A reference upload's table that cannot be read.
impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        let code = match e.code() {
            ErrorCode::UnsupportedFormat => "unsupported_media_type",
            _ => "invalid_reference",
        };
        ApiError::of(&e, code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ApiError::reply(self.status(), self.code, &self.message)
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", e.body_text())
    }
}

/// The kind of an error axum or hyper answered with `status` on its own (a body that could
/// not be read, a wrong method): the inverse of [`status`], for the statuses they produce.
pub(crate) fn kind_of(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::URI_TOO_LONG => ErrorCode::TooLarge,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::TooLarge,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::Timeout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedFormat,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::InvalidInput,
    }
}

/// The body's `code` of an error axum or hyper answered on its own.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

/// Gives an error that axum or a layer answered with an empty body (405 for a wrong method,
/// the body limit's 413, a timeout's 408, the decompression layer's 415 for an unknown
/// `Content-Encoding`) or with axum's plain text (a path segment that is not UTF-8) the JSON
/// error body every other error has, so that a client always has a message to show. It keeps
/// their status (405 has no [`ErrorCode`]: only the router knows which methods a path takes).
pub(crate) async fn json_error_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::header::CONTENT_TYPE;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let encoded = request
        .headers()
        .contains_key(axum::http::header::CONTENT_ENCODING);
    let response = next.run(request).await;
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    // Every error of ours is JSON or an HTML page; plain text is axum's own rejection.
    let plain = match response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()) {
        None => false,
        Some(t) if t.starts_with(b"text/plain") => true,
        Some(_) => return response,
    };
    let (mut parts, body) = response.into_parts();
    let text = if plain {
        axum::body::to_bytes(body, 64 * 1024)
            .await
            .ok()
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .filter(|t| !t.is_empty())
    } else {
        None
    };
    let message = match (status, text) {
        (_, Some(text)) => format!("{method} {path}: {text}"),
        (StatusCode::METHOD_NOT_ALLOWED, None) => {
            format!("{path} does not take {method}: docs/api.md lists each path's methods")
        }
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, None) if encoded => format!(
            "{method} {path}: the body's Content-Encoding is not one this service reads: \
             send it uncompressed or with gzip"
        ),
        (s, None) => format!(
            "{method} {path}: {}",
            s.canonical_reason().unwrap_or("error")
        ),
    };
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let fresh = ApiError::reply(status, code_of(status), &message);
    parts.headers.extend(fresh.headers().clone());
    Response::from_parts(parts, fresh.into_body())
}

/// The JSON error body of a request hyper refused before any handler saw it (see
/// `lib::json_for_refused_heads`): the whole HTTP/1.1 response, status line to body, with
/// `Connection: close` (hyper closes the connection after such an error).
pub(crate) fn refused_head_reply(status: StatusCode) -> Vec<u8> {
    let message = match status {
        StatusCode::URI_TOO_LONG => {
            "the request's URI is too long: send the data in the body, not in the query"
        }
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request's headers are too large: send fewer or shorter headers"
        }
        _ => "the request is not valid HTTP/1.1: its request line or a header cannot be read",
    };
    let body = json!({"error": {"code": code_of(status), "message": message}}).to_string();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of failure of the store is the service's: never a 4xx but a missing model.
    #[test]
    fn store_failures_are_never_the_callers_mistake() {
        let corrupt = StoreError::Corrupt {
            what: "chunk",
            detail: "x".into(),
        };
        let full = StoreError::Io {
            path: "d".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert_eq!(ApiError::from(corrupt).status(), 500);
        assert_eq!(ApiError::from(full).status(), 507);
        let through_dashboard = ApiError::from(DashError::Store(StoreError::WriterGone));
        assert_eq!(through_dashboard.status(), 500);
        assert_eq!(through_dashboard.code, "storage_error");
        let through_alerts = ApiError::from(AlertsError::Store(StoreError::WriterGone));
        assert_eq!(through_alerts.status(), 500);
    }
}
