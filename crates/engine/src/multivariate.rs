//! Multivariate drift per window: the PCA reconstruction error (`modelwatch_stats::multivariate`,
//! NannyML's definition) of the window's rows against a fit on the reference, with the band of
//! the reference's own chunks and an alert when the window leaves it. It sees a change of the
//! features' joint distribution that leaves each feature's own distribution as it was, which the
//! per-feature tests of [`crate::drift`] cannot.
//!
//! # Which reference, which features
//! The drift report's reference ([`Reference::load`]) and its features: numeric ones as
//! numbers, categorical and boolean ones by their share of reference rows (`true`/`false` for
//! booleans). A value of another kind than its feature's, a null, an absent feature or a
//! non-finite number is missing and takes the reference's mean or most frequent value.
//!
//! # Where it comes from
//! - The fit (encoding, standardisation, kept components, the reference chunks' band) is kept
//!   as the model-wide aggregate [`FIT`] per reference version: fitted on the first query after
//!   a reference upload, which deletes every `reference*` aggregate, never per query.
//! - A window's state is the count, sum and sum of squares of its rows' errors: additive once the
//!   fit is fixed. They are kept per (version, hour) as the aggregate [`HOURS`], each with the
//!   hour's prediction count when it was summed. A query the hourly drift sketches answer
//!   ([`crate::planner::drift`]: no segment, whole hours, the default reference) reads the
//!   sketches' count of every hour after their refresh ([`crate::aggregates::hour_rows`]) and
//!   rescans only the hours whose count changed (new predictions; predictions are never
//!   replaced, so an hour of the same count holds the same rows) or that have no sums yet, then
//!   stores their sums. A new reference deletes the sums with the fit. Other queries (a segment,
//!   a version with its own reference, partial hours) scan the range's predictions.

use std::collections::{BTreeMap, HashMap};

use modelwatch_core::{FeatureName, FeatureValue, ModelName, PredictionEvent, Timestamp, Window};
use modelwatch_stats::drift::FeatureKind;
use modelwatch_stats::multivariate::{
    Band, Cell, ColumnKind, Encoding, ErrorSums, ReconstructionFit, Scratch, WindowError,
    DEFAULT_VARIANCE,
};
use modelwatch_store::{ScanRange, Store};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::planner::Source;
use crate::query::DriftQuery;
use crate::reference::ReferenceInfo;
use crate::sketch::Reference;

/// Kind of the stored fit; it starts with `reference`, so a reference upload deletes it. `-2`:
/// its reference band is computed from exact error sums; a fit kept under the former kind is
/// not read (it stays until the next upload deletes it).
pub const FIT: &str = "reference-pca-2";
/// Kind of the per-(version, hour) error sums; deleted with the fit.
pub const HOURS: &str = "reference-pca-hours";
/// The layout of the stored hour sums, mixed into their stamp so that hours stored in another
/// layout are built again: 1, exact sums ([`ErrorSums`]; before,
/// plain `f64` sums, whose last digits followed the order of the scan).
const HOUR_SUMS_LAYOUT: u64 = 1;

/// A fit ready to read events: the column of each feature name, and each column's value when
/// missing.
pub struct Fitted {
    pub fit: ReconstructionFit,
    pub stamp: u64,
    index: HashMap<String, usize>,
    missing: Vec<f64>,
}

impl Fitted {
    fn new(fit: ReconstructionFit, stamp: u64) -> Fitted {
        let index = fit
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let missing = fit
            .columns
            .iter()
            .map(|c| c.encode(Cell::Missing))
            .collect();
        Fitted {
            fit,
            stamp,
            index,
            missing,
        }
    }

    /// The reconstruction error of one event's features (`encoded` is reused between rows).
    pub fn error(
        &self,
        features: &[(FeatureName, FeatureValue)],
        encoded: &mut Vec<f64>,
        scratch: &mut Scratch,
    ) -> f64 {
        encoded.clear();
        encoded.extend_from_slice(&self.missing);
        for (name, value) in features {
            if let Some(&j) = self.index.get(name.as_str()) {
                let column = &self.fit.columns[j];
                encoded[j] = column.encode(cell(&column.encoding, value));
            }
        }
        self.fit.error_of_encoded(encoded, scratch)
    }
}

/// A feature value as its fitted column reads it; another kind is missing.
fn cell<'a>(encoding: &Encoding, v: &'a FeatureValue) -> Cell<'a> {
    match (encoding, v) {
        (Encoding::Numeric { .. }, FeatureValue::Number(x)) => Cell::Number(*x),
        (Encoding::Categorical { .. }, FeatureValue::Text(s)) => Cell::Category(s),
        (Encoding::Categorical { .. }, FeatureValue::Bool(b)) => {
            Cell::Category(if *b { "true" } else { "false" })
        }
        _ => Cell::Missing,
    }
}

fn column_kind(kind: FeatureKind) -> ColumnKind {
    match kind {
        FeatureKind::Numeric => ColumnKind::Numeric,
        FeatureKind::Categorical | FeatureKind::Boolean => ColumnKind::Categorical,
    }
}

/// Fits on the reference rows of `reference` (its layout's features, upload order).
pub fn fit_reference(
    reference: &Reference,
    rows: &[modelwatch_core::ReferenceRow],
) -> Result<ReconstructionFit, String> {
    let columns: Vec<(String, ColumnKind)> = reference
        .layout
        .features
        .iter()
        .map(|(n, k)| (n.clone(), column_kind(*k)))
        .collect();
    let index: HashMap<&str, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let cells: Vec<Vec<Cell<'_>>> = rows
        .iter()
        .map(|r| {
            let mut out = vec![Cell::Missing; columns.len()];
            for (name, value) in &r.features {
                if let Some(&j) = index.get(name.as_str()) {
                    out[j] = match (columns[j].1, value) {
                        (ColumnKind::Numeric, FeatureValue::Number(x)) => Cell::Number(*x),
                        (ColumnKind::Categorical, FeatureValue::Text(s)) => Cell::Category(s),
                        (ColumnKind::Categorical, FeatureValue::Bool(b)) => {
                            Cell::Category(if *b { "true" } else { "false" })
                        }
                        _ => Cell::Missing,
                    };
                }
            }
            out
        })
        .collect();
    ReconstructionFit::fit(&columns, &cells, DEFAULT_VARIANCE).map_err(|e| e.to_string())
}

/// The fit of `reference`, from the store or fitted now and stored.
pub fn fitted(
    store: &dyn Store,
    model: &ModelName,
    reference: &Reference,
) -> Result<Result<Fitted, String>, EngineError> {
    // A reference that cannot be fitted is kept as its reason, so it is not tried again.
    let fitted = crate::aggregates::stamped_fit(store, model, reference, FIT, "pca fit", |rows| {
        Ok(fit_reference(reference, rows))
    })?;
    Ok(fitted.map(|f| Fitted::new(f, reference.stamp)))
}

/// What the windows are compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitInfo {
    /// `pca_reconstruction_error`.
    pub method: String,
    /// Features used: numeric ones standardised, the others by their share of reference rows.
    pub features: Vec<String>,
    pub categorical: Vec<String>,
    /// The share of variance the kept components had to exceed (0.65).
    pub variance_threshold: f64,
    pub components: usize,
    /// Share of the reference's variance the kept components explain.
    pub explained_variance: f64,
    /// The reference's mean error in each of its chunks (a tenth of its rows each, in upload
    /// order), from which the band is made.
    pub reference_chunks: Vec<f64>,
    /// Rows of each reference chunk.
    pub reference_chunk_rows: Vec<u64>,
    /// The chunks' mean ± 3 standard deviations; `lower` null when that is at or below 0.
    pub band: Band,
}

/// One window's multivariate drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    #[serde(flatten)]
    pub error: WindowError,
}

/// `GET /v1/models/{model}/drift/multivariate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateResponse {
    pub model: String,
    pub window: String,
    pub reference: ReferenceInfo,
    pub fit: FitInfo,
    /// Whether the windows came from the per-hour sums (`hours`) or a scan of the range
    /// (`events`).
    pub source: String,
    pub windows: Vec<MultivariateWindow>,
}

fn fit_info(fit: &ReconstructionFit) -> FitInfo {
    FitInfo {
        method: "pca_reconstruction_error".into(),
        features: fit.columns.iter().map(|c| c.name.clone()).collect(),
        categorical: fit
            .columns
            .iter()
            .filter(|c| matches!(c.encoding, Encoding::Categorical { .. }))
            .map(|c| c.name.clone())
            .collect(),
        variance_threshold: fit.variance,
        components: fit.n_components(),
        explained_variance: fit.explained_variance(),
        reference_chunks: fit.reference_chunks.iter().map(|c| c.value).collect(),
        reference_chunk_rows: fit.reference_chunks.iter().map(|c| c.rows).collect(),
        band: fit.band,
    }
}

/// Multivariate drift per window of the query.
pub fn multivariate(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
) -> Result<MultivariateResponse, EngineError> {
    let query = &crate::drift::one_slice(store, model, query, "multivariate drift")?;
    let reference = Reference::load(store, model, query.version.as_deref())?;
    let fitted =
        fitted(store, model, &reference)?.map_err(|why| EngineError::ReferenceNotFitted {
            model: model.as_str().to_owned(),
            why,
        })?;
    let (source, sums) = window_sums(store, model, query, &reference, &fitted)?;
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let windows = sums
        .into_iter()
        .map(|(start, s)| {
            let end = Timestamp(start.0 + query.window.micros());
            MultivariateWindow {
                start,
                end,
                partial: crate::partial::is_partial(end, cutoff),
                error: fitted.fit.window(&s),
            }
        })
        .collect();
    Ok(MultivariateResponse {
        model: model.as_str().to_owned(),
        window: query.window.label(),
        reference: reference.info(),
        fit: fit_info(&fitted.fit),
        source: match source {
            Source::Hours => "hours",
            Source::Events => "events",
        }
        .into(),
        windows,
    })
}

/// The error sums of each window (by start) with at least one prediction, and where they came
/// from.
pub fn window_sums(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    reference: &Reference,
    fitted: &Fitted,
) -> Result<(Source, BTreeMap<Timestamp, ErrorSums>), EngineError> {
    let range = ScanRange {
        from: query.from,
        to: query.to,
        version: query.version.clone(),
    };
    if crate::planner::drift(store, model, query, reference)? == Source::Hours {
        if let Some(hours) = hour_sums(store, model, &range, reference, fitted)? {
            let mut out: BTreeMap<Timestamp, ErrorSums> = BTreeMap::new();
            for ((_, hour), s) in hours {
                if s.n > 0 {
                    out.entry(query.window.start_of(hour))
                        .or_default()
                        .merge(&s);
                }
            }
            return Ok((Source::Hours, out));
        }
    }
    let mut out: BTreeMap<Timestamp, ErrorSums> = BTreeMap::new();
    scan(store, model, &range, fitted, |ev, e| {
        if query.segment.as_ref().is_none_or(|s| s.matches(ev)) {
            out.entry(query.window.start_of(ev.timestamp))
                .or_default()
                .push(e);
        }
    })?;
    Ok((Source::Events, out))
}

/// Every prediction of `range` with its reconstruction error.
fn scan(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    fitted: &Fitted,
    mut f: impl FnMut(&PredictionEvent, f64),
) -> Result<(), EngineError> {
    let mut scratch = Scratch::new(&fitted.fit);
    let mut encoded = Vec::new();
    store.scan_predictions(model, range, &mut |ev, _| {
        let e = fitted.error(&ev.features, &mut encoded, &mut scratch);
        f(ev, e);
    })?;
    Ok(())
}

/// Error sums by (version, hour).
type HourSums = BTreeMap<(String, Timestamp), ErrorSums>;

/// The sums of every (version, hour) of `range` from the stored ones, rescanning the hours whose
/// prediction count changed since (see the module doc); `None` when the hourly sketches cannot
/// say the counts.
fn hour_sums(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    reference: &Reference,
    fitted: &Fitted,
) -> Result<Option<HourSums>, EngineError> {
    let cache = crate::aggregates::HourCache {
        kind: HOURS,
        what: "pca hour sums",
        stamp: crate::aggregates::layout_stamp(fitted.stamp, HOUR_SUMS_LAYOUT),
    };
    crate::aggregates::stamped_hours(
        store,
        model,
        range,
        reference,
        &cache,
        |part, fresh: &mut HourSums| {
            scan(store, model, part, fitted, |ev, e| {
                let version = ev.model_version.clone().unwrap_or_default();
                fresh
                    .entry((version, Window::HOUR.start_of(ev.timestamp)))
                    .or_default()
                    .push(e);
            })
        },
        |sums| sums.n,
    )
}
