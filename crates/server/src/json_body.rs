//! The one rule for JSON request bodies, and the extractor every JSON handler uses.
//!
//! A JSON body is read as JSON whatever its `Content-Type` says, unless the type names another
//! format: `curl -d '{...}'` sends `application/x-www-form-urlencoded`, and the README's examples
//! (and most people's first try) use exactly that. Only a declared non-JSON format (CSV,
//! Parquet, multipart, XML, an image, `application/octet-stream` ...) is refused, with 415 and a
//! JSON error body. Ingest (`ingest::split_rows`) applies the same rule through
//! [`refuse_other_format`].

use crate::ingest::body_bytes;
use crate::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use modelwatch_core::ErrorCode;
use serde::de::DeserializeOwned;

/// Content types read as JSON: no type, JSON and its relatives, plain text, and curl's default
/// for `-d` (the body is what matters, not what curl guessed).
fn reads_as_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence.contains("ndjson")
        || essence.contains("jsonl")
        || essence == "application/x-www-form-urlencoded"
        || essence == "text/plain"
        || essence == "*/*"
}

/// `Err(415)` when the request declares a format other than JSON (see the module doc).
pub(crate) fn refuse_other_format(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let content_type = value.to_str().unwrap_or("(not text)");
    if reads_as_json(content_type) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedFormat,
        "unsupported_media_type",
        format!(
            "content type {content_type:?} is not accepted here: send {expected} \
             (with Content-Type application/json, or none)"
        ),
    ))
}

/// A JSON request body of type `T`. Unlike `axum::Json` it does not require
/// `Content-Type: application/json`; errors are the API's `{"error": {...}}` bodies: 415 for a
/// declared non-JSON type, 413 over the size limit, 400 `invalid_body` naming where the JSON
/// is wrong.
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        refuse_other_format(req.headers(), "a JSON object")?;
        let bytes = body_bytes(Bytes::from_request(req, state).await)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "invalid_body",
                "the request body is empty: send a JSON object",
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = T::deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| {
                ApiError::bad_request("invalid_body", format!("the JSON body is not valid: {e}"))
            })?;
        Ok(JsonBody(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_default_and_json_types_read_as_json_other_formats_do_not() {
        for t in [
            "",
            "application/json",
            "application/json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "application/x-ndjson",
            "application/merge-patch+json",
            "text/plain",
        ] {
            assert!(reads_as_json(t), "{t}");
        }
        for t in [
            "text/csv",
            "application/vnd.apache.parquet",
            "multipart/form-data; boundary=x",
            "application/octet-stream",
            "application/xml",
            "image/png",
        ] {
            assert!(!reads_as_json(t), "{t}");
        }
    }
}
