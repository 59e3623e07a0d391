//! Ingest of predictions and labels: a JSON array or NDJSON body, gzip accepted.
//!
//! A batch is split into rows first and each row parsed on its own, so one bad row is a
//! per-row rejection and its neighbours are kept. Only a body that cannot be split into rows
//! at all (malformed JSON array, not JSON) is refused whole.

use crate::extract::{Model, Params};
use crate::{blocking, ApiError, AppState};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelwatch_core::{
    parse_kpi_row, parse_label_row, parse_prediction_row_verbatim, IngestLimits, Rejection,
    Timestamp,
};
use modelwatch_core::{ErrorCode, ModelName};
use modelwatch_store::{
    IngestOutcome, LabelBatch, PredictionBatch, Quarantined, StoreError, VerbatimRows,
};
use serde_json::value::RawValue;

/// One row of a batch: its index, and its text or why it could not be read.
type RawRow<'a> = (usize, Result<&'a str, String>);

pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let kind = crate::error::kind_of(e.status());
        if kind == ErrorCode::TooLarge {
            ApiError::too_large(format!(
                "request body is larger than the limit (limits.max_body_bytes, after gzip decompression): split the batch; {}",
                e.body_text()
            ))
        } else {
            ApiError::new(kind, "unreadable_body", format!("cannot read the request body: {}", e.body_text()))
        }
    })
}

/// The lines of an NDJSON body, without their `\n`.
fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', body)
        .chain(std::iter::once(body.len()))
        .map(move |end| {
            let line = &body[start..end];
            start = end + 1;
            line
        })
}

/// Splits a body into rows: a JSON array of objects, or NDJSON (one object per line).
fn split_rows<'a>(
    body: &'a [u8],
    headers: &HeaderMap,
    max_rows: usize,
) -> Result<Vec<RawRow<'a>>, ApiError> {
    // The JSON endpoints' rule (json_body.rs): curl's default type and a missing one are read
    // as JSON; a declared other format is refused.
    crate::json_body::refuse_other_format(
        headers,
        "a JSON array or NDJSON (application/x-ndjson)",
    )?;
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let rows = match first.map(|i| body[i]) {
        None => {
            return Err(ApiError::bad_request(
                "empty_body",
                "the body is empty: send a JSON array of events or NDJSON",
            ))
        }
        Some(b'[') => {
            let rows: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not a valid JSON array: {e} (no row was stored; NaN and Infinity are not JSON: send null)"),
                )
            })?;
            rows.into_iter()
                .enumerate()
                .map(|(i, r)| (i, Ok(r.get())))
                .collect::<Vec<_>>()
        }
        // Lines found with memchr: splitting on a per-byte closure was 3 % of the server's CPU.
        Some(b'{') => ndjson_lines(body)
            .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
            .enumerate()
            .map(|(i, line)| {
                (
                    i,
                    std::str::from_utf8(line).map_err(|e| format!("row is not valid UTF-8: {e}")),
                )
            })
            .collect(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "not_a_batch",
                "the body must be a JSON array of events or NDJSON (one JSON object per line)",
            ))
        }
    };
    if rows.len() > max_rows {
        return Err(ApiError::too_large(format!(
            "the batch has {} rows, more than the limit of {max_rows} (limits.max_batch_rows): split it",
            rows.len()
        )));
    }
    Ok(rows)
}

/// 200 with the outcome; 422 when no row of the batch could be stored, so that a client that
/// only checks the status still notices.
fn reply(outcome: IngestOutcome) -> Response {
    let mut body = serde_json::to_value(&outcome).expect("outcome serializes");
    if outcome.accepted == 0 && outcome.duplicates == 0 && !outcome.rejected.is_empty() {
        let first = &outcome.rejected[0];
        let field = if first.field.is_empty() {
            String::new()
        } else {
            format!(", field `{}`", first.field)
        };
        body["error"] = serde_json::json!({
            "code": "all_rows_rejected",
            "message": format!(
                "all {} rows were rejected; first: row {}{field}: {}",
                outcome.rejected.len(), first.index, first.reason
            ),
        });
        return (crate::error::status(ErrorCode::NothingValid), Json(body)).into_response();
    }
    Json(body).into_response()
}

fn quarantined(index: usize, reason: String, row: &str) -> Quarantined {
    Quarantined {
        rejection: Rejection::new(index, "", reason),
        row: row.to_string(),
    }
}

/// Parses one row of a batch.
pub type ParseRow<T> = fn(&str, usize, Timestamp, &IngestLimits) -> Result<T, Rejection>;
/// Stores the parsed rows and the rows already rejected. The parsed rows' text is in the body,
/// at the spans given (in the order of the rows).
type StoreRows<T> = fn(
    &AppState,
    &ModelName,
    Vec<(usize, T)>,
    Vec<Quarantined>,
    Sent,
) -> Result<IngestOutcome, StoreError>;

/// The body of an ingest request and where each parsed row's text is in it.
struct Sent {
    body: Bytes,
    spans: Vec<Option<std::ops::Range<usize>>>,
}

/// Where `row` is in `body`: rows are slices of the body (NDJSON lines, or array elements
/// borrowed by the JSON parser); checked rather than assumed.
fn span_in(body: &[u8], row: &str) -> Option<std::ops::Range<usize>> {
    let start = (row.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let span = start..start.checked_add(row.len())?;
    (body.get(span.clone())? == row.as_bytes()).then_some(span)
}

/// An ingest body split into rows and each row parsed, before anything is stored.
#[derive(Debug)]
pub struct ParsedBatch<T> {
    /// How many rows the body holds (blank NDJSON lines are not rows).
    pub rows: usize,
    /// The rows that parsed, with their index in the batch, in order.
    pub good: Vec<(usize, T)>,
    /// For each of `good`, where its text is in the body (see [`span_in`]).
    pub spans: Vec<Option<std::ops::Range<usize>>>,
    /// The rows that did not, with the reason.
    pub rejected: Vec<Quarantined>,
}

/// Splits an ingest body into rows and parses each with `parse` (`parse_prediction_row_verbatim`,
/// `parse_label_row`...), as `POST .../predictions` and `.../labels` do: every row ends up in
/// `good` or in `rejected`. `Err` only for a body that is not a batch at all. Public for the
/// fuzz targets (crates/fuzz-targets), which must run exactly the handlers' path.
pub fn parse_batch<T>(
    body: &[u8],
    headers: &HeaderMap,
    max_rows: usize,
    parse: ParseRow<T>,
    now: Timestamp,
) -> Result<ParsedBatch<T>, ApiError> {
    let rows = split_rows(body, headers, max_rows)?;
    let limits = IngestLimits::default();
    let mut batch = ParsedBatch {
        rows: rows.len(),
        good: Vec::with_capacity(rows.len()),
        spans: Vec::with_capacity(rows.len()),
        rejected: Vec::new(),
    };
    for (i, row) in rows {
        match row {
            Ok(text) => match parse(text, i, now, &limits) {
                Ok(e) => {
                    batch.spans.push(span_in(body, text));
                    batch.good.push((i, e));
                }
                Err(rejection) => batch.rejected.push(Quarantined {
                    rejection,
                    row: text.to_string(),
                }),
            },
            Err(reason) => batch.rejected.push(quarantined(i, reason, "")),
        }
    }
    Ok(batch)
}

/// The ingest path shared by predictions, labels and KPIs: split the body into rows, parse each
/// on the blocking pool, store the good ones with the rejected ones, log and count what was
/// stored, and answer.
async fn ingest<T: Send + 'static>(
    kind: &'static str,
    state: AppState,
    model: ModelName,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    parse: ParseRow<T>,
    store_rows: StoreRows<T>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let body = body_bytes(body)?;
    let max_rows = state.config.limits.max_batch_rows;
    let m = model.clone();
    let outcome = blocking(move || {
        let ParsedBatch {
            good,
            spans,
            rejected,
            ..
        } = parse_batch(&body, &headers, max_rows, parse, Timestamp::now())?;
        let sent = Sent {
            body: body.clone(),
            spans,
        };
        Ok(store_rows(&state, &m, good, rejected, sent)?)
    })
    .await?;
    tracing::info!(model = %model, accepted = outcome.accepted, duplicates = outcome.duplicates,
        replaced = outcome.replaced, rejected = outcome.rejected.len(), "ingested {kind}");
    count(&st, model.as_str(), kind, &outcome);
    Ok(reply(outcome))
}

pub(crate) async fn predictions(
    State(state): State<AppState>,
    Model(model): Model,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(
        "predictions",
        state,
        model,
        headers,
        body,
        parse_prediction_row_verbatim,
        |st, m, rows, rejected, sent| {
            let s = st.store.as_ref();
            // Rows that parse back as sent are stored as sent (no second encoding).
            let (rows, verbatim): (Vec<_>, Vec<_>) = rows
                .into_iter()
                .zip(sent.spans)
                .map(|((i, (event, same)), span)| ((i, event), span.filter(|_| same)))
                .unzip();
            // Folded here, where the events are parsed, so that the refresh need not decode
            // and parse them again. Without a fold the refresh reads the chunk: no error
            // here can lose anything.
            let folds =
                modelwatch_engine::aggregates::fold_on_arrival(s, m, &rows).unwrap_or_else(|e| {
                    tracing::debug!(model = %m, error = %e, "predictions not folded on arrival");
                    Some(Vec::new())
                });
            // A model whose task is not decided yet (its first predictions) gets a refresh as
            // soon as this batch is stored: it decides the task from this batch and the few
            // that arrive meanwhile, after which batches are folded here. Waiting for the next
            // tick instead left seconds of predictions (560k in the 2M-event load test) to be
            // read back and parsed again, a fifth of the server's CPU.
            let undecided = folds.is_none();
            let out = s.ingest_predictions(
                m,
                PredictionBatch {
                    rows,
                    rejected,
                    verbatim: Some(VerbatimRows {
                        text: sent.body,
                        spans: verbatim,
                    }),
                    folds: folds.unwrap_or_default(),
                },
            );
            if undecided && out.is_ok() {
                st.refresh_soon.notify_one();
            }
            out
        },
    )
    .await
}

pub(crate) async fn labels(
    State(state): State<AppState>,
    Model(model): Model,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(
        "labels",
        state,
        model,
        headers,
        body,
        parse_label_row,
        |st, m, rows, rejected, _| st.store.ingest_labels(m, LabelBatch { rows, rejected }),
    )
    .await
}

/// `POST /v1/models/{model}/kpis`: business KPI points, `{"name", "value", "timestamp"}` rows
/// as a JSON array or NDJSON, for a model that exists.
pub(crate) async fn kpis(
    State(state): State<AppState>,
    Model(model): Model,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(
        "kpis",
        state,
        model,
        headers,
        body,
        |text, i, now, _| parse_kpi_row(text, i, now),
        |st, m, rows, rejected, _| st.store.ingest_kpis(m, rows, rejected),
    )
    .await
}

/// Counts the rows for `/metrics` and, when some were stored, asks for an alert evaluation.
fn count(state: &AppState, model: &str, kind: &'static str, o: &IngestOutcome) {
    let c = &state.ingest_counters;
    c.add(model, kind, "accepted", o.accepted);
    c.add(model, kind, "duplicate", o.duplicates);
    c.add(model, kind, "rejected", o.rejected.len());
    if o.accepted > 0 {
        state.alerts.on_ingest(model, kind);
    }
}

/// 422 `no_valid_rows`: a reference upload none of whose rows can be stored, naming the first
/// refused rows; the stored reference is unchanged.
fn no_valid_rows(refused: &[Rejection]) -> ApiError {
    let why: Vec<String> = refused
        .iter()
        .take(5)
        .map(|r| {
            if r.field.is_empty() {
                format!("row {}: {}", r.index, r.reason)
            } else {
                format!("row {}, field `{}`: {}", r.index, r.field, r.reason)
            }
        })
        .collect();
    ApiError::new(
        ErrorCode::NothingValid,
        "no_valid_rows",
        if why.is_empty() {
            "the reference has no rows (a header alone, or nothing readable as a table); the \
             stored reference is unchanged"
                .to_owned()
        } else {
            format!(
                "none of the reference's {} rows is valid, so the stored reference is \
                 unchanged: {}",
                refused.len(),
                why.join("; ")
            )
        },
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReferenceParams {
    /// The version this reference is the baseline of; none = every version.
    version: Option<String>,
    prediction_col: Option<String>,
    score_col: Option<String>,
    label_col: Option<String>,
    scores_prefix: Option<String>,
    /// Columns to ignore, comma-separated.
    exclude: Option<String>,
}

/// `PUT /v1/models/{model}/reference`: a CSV, Parquet or NDJSON body replaces the model's
/// reference dataset (of one version, or of all). Rows that do not convert are rejected one by
/// one, like ingest rows.
pub(crate) async fn reference(
    State(state): State<AppState>,
    Model(model): Model,
    Params(p): Params<ReferenceParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    use modelwatch_formats::{
        ColumnMapping, ImportReader, ReadOptions, RowKind, Source, TableFormat,
    };
    if let Some(v) = &p.version {
        modelwatch_core::validate_version(v)
            .map_err(|e| ApiError::bad_request("invalid_query", e))?;
    }
    let body = body_bytes(body)?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body is empty: send the reference dataset as CSV, Parquet or NDJSON",
        ));
    }
    // curl's default type for `--data-binary` says nothing about the body: the body is sniffed
    // as when no type is given.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|ct| !ct.starts_with("application/x-www-form-urlencoded"))
        .map(str::to_string);
    let store = state.store.clone();
    let evaluate = model.to_string();
    let outcome = blocking(move || {
        let format = TableFormat::from_content_type(content_type.as_deref(), &body)
            .map_err(ApiError::from)?;
        let mapping = ColumnMapping {
            prediction: p.prediction_col,
            score: p.score_col,
            label: p.label_col,
            scores_prefix: p.scores_prefix,
            exclude: p
                .exclude
                .map(|e| {
                    e.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            ..ColumnMapping::default()
        };
        let invalid = ApiError::from;
        let mut reader = ImportReader::open(
            &Source::bytes(body),
            format,
            RowKind::Reference,
            mapping,
            &ReadOptions::default(),
        )
        .map_err(invalid)?;
        let mut rows = Vec::new();
        let mut rejected = Vec::new();
        while let Some(chunk) = reader.next_chunk(Timestamp::now(), None) {
            let chunk = chunk.map_err(invalid)?;
            // Each row keeps its place in the file, so that a row the store refuses later is
            // named as the reader names the rows it refuses.
            rows.extend(chunk.reference_index.into_iter().zip(chunk.reference));
            rejected.extend(chunk.rejected.into_iter().map(|r| Quarantined {
                row: format!("row {} of the reference", r.index),
                rejection: r,
            }));
        }
        if rows.is_empty() {
            // Storing it would replace the model's reference with nothing (drift then has no
            // baseline): refuse it and keep what is stored.
            let refused: Vec<Rejection> = rejected.into_iter().map(|q| q.rejection).collect();
            return Err(no_valid_rows(&refused));
        }
        let outcome = store.put_reference(&model, p.version.as_deref(), rows, rejected)?;
        if outcome.rows == 0 {
            // The store refused every row (the schema, the feature limit) and kept its
            // reference.
            return Err(no_valid_rows(&outcome.rejected));
        }
        Ok(outcome)
    })
    .await?;
    // A new reference is a new baseline: the model's rules are evaluated again.
    state.alerts.reevaluate(&evaluate);
    Ok(Json(outcome).into_response())
}
