//! `GET /v1/models/{model}/outliers`: per window the outlier rate against the reference, the
//! worst rows with the features that made each unusual, and tag values flagged as possible
//! boundary probing (`modelwatch_engine::outliers`).

use crate::extract::{Model, Params};
use crate::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::Json;
use modelwatch_engine::outliers::{self, OutlierQuery, OutlierResponse, MAX_LIMIT};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutlierParams {
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    version: Option<String>,
    /// Worst rows listed per window (10; at most 20).
    limit: Option<String>,
    /// The tag whose values are tested for probing (`client`).
    tag: Option<String>,
}

pub(crate) async fn outliers(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<OutlierParams>,
) -> Result<Json<OutlierResponse>, ApiError> {
    let mut query = OutlierQuery::new(crate::drift::range_query(
        p.window, p.from, p.to, p.version,
    )?);
    if let Some(l) = p.limit {
        query.limit = match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("`limit`: must be a whole number from 1 to {MAX_LIMIT}, got {l:?}"),
                ))
            }
        };
    }
    if let Some(t) = p.tag {
        if t.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid_query",
                "`tag`: must name a tag (e.g. client)",
            ));
        }
        query.tag = t;
    }
    let store = state.store.clone();
    let out = blocking(move || Ok(outliers::outliers(store.as_ref(), &model, &query)?)).await?;
    Ok(Json(out))
}
