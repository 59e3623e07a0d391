//! `GET /v1/models/{model}/compare`: a challenger version against the champion, per window and
//! over the range, with the paired (shadow) or two-sample (A/B) tests and the decision they
//! support (`modelwatch_engine::challenger`).

use crate::extract::{Model, Params};
use crate::{blocking, ApiError, AppState};
use axum::extract::State;
use axum::Json;
use modelwatch_core::validate_version;
use modelwatch_engine::challenger::{self, CompareQuery, CompareReport};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareParams {
    champion: Option<String>,
    challenger: Option<String>,
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// A version parameter: present, valid, named in the message when not.
fn version(name: &str, value: Option<String>) -> Result<String, ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_query", m);
    let v = value.filter(|v| !v.is_empty()).ok_or_else(|| {
        bad(format!(
            "`{name}`: name the model version, e.g. champion=v1&challenger=v2"
        ))
    })?;
    validate_version(&v).map_err(|r| bad(format!("`{name}`: {r}")))?;
    Ok(v)
}

pub(crate) async fn compare(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<CompareParams>,
) -> Result<Json<CompareReport>, ApiError> {
    let champion = version("champion", p.champion)?;
    let challenger = version("challenger", p.challenger)?;
    if champion == challenger {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`challenger`: `{challenger}` is the champion too; name two versions"),
        ));
    }
    let base = crate::drift::range_query(p.window, p.from, p.to, None)?;
    let query = CompareQuery {
        window: base.window,
        from: base.from,
        to: base.to,
        champion,
        challenger,
    };
    let store = state.store.clone();
    let out = blocking(move || Ok(challenger::compare(store.as_ref(), &model, &query)?)).await?;
    Ok(Json(out))
}
