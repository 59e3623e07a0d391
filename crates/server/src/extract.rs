//! The two things nearly every route reads before its handler runs: the `{model}` of its path,
//! checked, and its query string, as the handler's parameters. As extractors, a bad model name or
//! a bad parameter is answered (400, with its code) in one place instead of in every handler.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use modelwatch_core::ModelName;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// The route's `{model}`, a valid model name (`invalid_model_name` otherwise).
pub(crate) struct Model(pub ModelName);

impl<S: Send + Sync> FromRequestParts<S> for Model {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // A map, not `Path<String>`: routes such as `/rules/{name}` have more than one capture.
        let Path(captures) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_model_name", e.body_text()))?;
        let raw = captures
            .get("model")
            .expect("Model is only extracted on routes with a {model} capture");
        Ok(Model(crate::model_name(raw)?))
    }
}

/// The query string as `P` (`invalid_query`, naming the parameter, otherwise).
pub(crate) struct Params<P>(pub P);

impl<S: Send + Sync, P: DeserializeOwned> FromRequestParts<S> for Params<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(p) = Query::<P>::from_request_parts(parts, state).await?;
        Ok(Params(p))
    }
}

/// A report's `format` parameter: `json` (the default) or `csv`; true for CSV.
pub(crate) fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "invalid_query",
            format!("`format`: {other:?} is not json or csv"),
        )),
    }
}
