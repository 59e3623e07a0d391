//! Domain-classifier drift per window (`modelwatch_stats::domain`, NannyML's definition): how
//! well a classifier tells the window's rows from the reference's, as the ROC AUC of its
//! out-of-fold scores with DeLong's interval. It sees what the PCA reconstruction error
//! ([`crate::multivariate`]) cannot: a shift within the components the PCA keeps, a change of a
//! nonlinear relation between features.
//!
//! # Which rows
//! The drift report's reference ([`Reference::load`]) and its features (numeric ones as numbers,
//! categorical and boolean ones as categories; a value of another kind, a null or an absent
//! feature is missing). At most [`SAMPLE_ROWS`] reference rows (a seeded sample in upload order,
//! the same for every window) and [`SAMPLE_ROWS`] window rows: the predictions whose request id
//! and version hash lowest under a seed made of the window's start ([`LowestHash`]), fitted in
//! the order of those hashes. So a window's cost is bounded (ADR 015), and its score depends
//! only on its events, not on the order a store scans them in: the embedded and the ClickHouse
//! stores give the same AUC for the same events.
//!
//! # What is kept
//! Each window's score with the reference stamp and the window's prediction count, as the
//! aggregate `reference-domain-<window seconds>` per (version, window start): a query rescans
//! the range's predictions (to sample them and count them) but refits only the windows whose
//! count changed (predictions are never replaced, so a window of the same count holds the same
//! rows) or whose reference changed. A window keeps its score until it has grown by
//! [`REFIT_GROWTH`], so that a live window, or a past one receiving a backfill, is not refitted
//! on every new prediction (a few tens of fits over a day instead of one per evaluation pass);
//! a window scored while still filling is refitted on its final rows once complete. A reference upload deletes every `reference*` aggregate.
//! A query with a segment is not kept.

use std::collections::{BTreeMap, HashMap};

use modelwatch_core::{FeatureValue, ModelName, Timestamp};
use modelwatch_stats::domain::{
    domain_score, DomainScore, Reservoir, DEFAULT_THRESHOLD, FOLDS, SAMPLE_ROWS,
};
use modelwatch_stats::drift::FeatureKind;
use modelwatch_stats::estimate::dle::{GBDT_DEPTH, GBDT_TREES};
use modelwatch_stats::estimate::{Cell, ColumnKind};
use modelwatch_stats::sample::LowestHash;
use modelwatch_store::{AggregateWrite, ScanRange, Store, StoredAggregate};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::query::DriftQuery;
use crate::reference::ReferenceInfo;
use crate::sketch::Reference;

/// Prefix of the kept scores' kind (the window's length in seconds follows); it starts with
/// `reference`, so a reference upload deletes them.
pub const KIND: &str = "reference-domain";
/// NannyML's lower threshold: a window below it alerts too (the classifier tells the rows apart,
/// the wrong way round).
pub const LOWER_THRESHOLD: f64 = 0.45;
/// A window is refitted once its predictions exceed its scored count by this share (or, scored
/// while filling, once it is complete).
pub const REFIT_GROWTH: f64 = 0.1;
/// Seed of the reference's sample; a window's is this with its start.
const SEED: u64 = 0x005E_EDD0_3A17;

/// A cell of a sampled row, owned.
#[derive(Debug, Clone)]
enum Owned {
    Missing,
    Number(f64),
    Text(String),
}

impl Owned {
    fn cell(&self) -> Cell<'_> {
        match self {
            Owned::Missing => Cell::Missing,
            Owned::Number(x) => Cell::Number(*x),
            Owned::Text(t) => Cell::Text(t),
        }
    }
}

/// The features of a row in the classifier's column order.
struct Columns {
    kinds: Vec<ColumnKind>,
    index: HashMap<String, usize>,
}

impl Columns {
    fn new(reference: &Reference) -> Columns {
        Columns {
            kinds: reference
                .layout
                .features
                .iter()
                .map(|(_, k)| match k {
                    FeatureKind::Numeric => ColumnKind::Numeric,
                    FeatureKind::Categorical | FeatureKind::Boolean => ColumnKind::Categorical,
                })
                .collect(),
            index: reference
                .layout
                .features
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), i))
                .collect(),
        }
    }

    fn row<'a>(
        &self,
        features: impl IntoIterator<Item = (&'a str, &'a FeatureValue)>,
    ) -> Vec<Owned> {
        let mut out = vec![Owned::Missing; self.kinds.len()];
        for (name, value) in features {
            if let Some(&j) = self.index.get(name) {
                out[j] = match (self.kinds[j], value) {
                    (ColumnKind::Numeric, FeatureValue::Number(x)) if x.is_finite() => {
                        Owned::Number(*x)
                    }
                    (ColumnKind::Categorical, FeatureValue::Text(s)) => Owned::Text(s.clone()),
                    (ColumnKind::Categorical, FeatureValue::Bool(b)) => {
                        Owned::Text(if *b { "true" } else { "false" }.into())
                    }
                    _ => Owned::Missing,
                };
            }
        }
        out
    }
}

/// How the windows were scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierInfo {
    /// `domain_classifier`.
    pub method: String,
    pub features: Vec<String>,
    pub categorical: Vec<String>,
    /// Stratified cross-validation folds (5).
    pub folds: usize,
    /// Reference rows and window rows sampled at most (each).
    pub sample_rows: usize,
    /// Boosted trees per fold and their depth.
    pub trees: usize,
    pub depth: usize,
    /// `delong_95`: AUC ± 1.96 DeLong standard errors, within [0, 1].
    pub interval: String,
    /// NannyML's default thresholds: a window outside [lower, upper] alerts.
    pub lower_threshold: f64,
    pub upper_threshold: f64,
}

/// One window's domain-classifier drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The window is still filling (see [`crate::partial`]).
    pub partial: bool,
    /// The window's predictions (of the version, the segment).
    pub rows: u64,
    /// The window's predictions when its score was fitted: fewer than `rows` while a filling
    /// window has grown by less than a tenth since.
    pub scored_rows: u64,
    /// The AUC, its standard error, interval and the rows fitted; null (with `note`) when the
    /// window or the reference has too few rows.
    pub auc: Option<f64>,
    pub standard_error: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub reference_rows: u64,
    pub window_rows: u64,
    /// The AUC is outside [`ClassifierInfo::lower_threshold`, `upper_threshold`].
    pub alert: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `GET /v1/models/{model}/drift/domain-classifier`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainResponse {
    pub model: String,
    pub window: String,
    pub reference: ReferenceInfo,
    pub classifier: ClassifierInfo,
    /// Windows whose score was kept from an earlier query, and those fitted by this one.
    pub kept: usize,
    pub fitted: usize,
    pub windows: Vec<DomainWindow>,
}

/// A kept score.
#[derive(Serialize, Deserialize)]
struct Kept {
    stamp: u64,
    rows: u64,
    /// The window was still filling when scored.
    partial: bool,
    score: Result<DomainScore, String>,
}

fn version_key(query: &DriftQuery) -> String {
    query.version.clone().unwrap_or_default()
}

/// Domain-classifier drift per window of the query.
pub fn domain_classifier(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
) -> Result<DomainResponse, EngineError> {
    let query = &crate::drift::one_slice(store, model, query, "domain-classifier drift")?;
    let reference = Reference::load(store, model, query.version.as_deref())?;
    let columns = Columns::new(&reference);
    let kind = format!("{KIND}-{}", query.window.micros() / 1_000_000);
    let range = ScanRange {
        from: query.from,
        to: query.to,
        version: query.version.clone(),
    };
    // Every window's sample and count, in one scan.
    let mut samples: BTreeMap<Timestamp, LowestHash<Vec<Owned>>> = BTreeMap::new();
    store.scan_predictions(model, &range, &mut |ev, _| {
        if query.segment.as_ref().is_none_or(|s| s.matches(ev)) {
            let start = query.window.start_of(ev.timestamp);
            let version = ev.model_version.as_deref().unwrap_or_default();
            samples
                .entry(start)
                .or_insert_with(|| LowestHash::new(SAMPLE_ROWS, SEED ^ start.0 as u64))
                .offer_with(&[&ev.request_id, version], || {
                    columns.row(ev.features.iter().map(|(n, v)| (n.as_str(), v)))
                });
        }
    })?;
    let keep = query.segment.is_none();
    let mut kept: HashMap<Timestamp, Kept> = HashMap::new();
    if keep {
        let kept_range = ScanRange {
            from: query.from.map(|f| query.window.start_of(f)),
            to: query.to,
            version: Some(version_key(query)),
        };
        for row in store.aggregates(model, &kind, &kept_range)? {
            // An unreadable one (another version of modelwatch wrote it) is fitted again.
            if let Ok(k) = postcard::from_bytes::<Kept>(&row.data) {
                if k.stamp == reference.stamp {
                    kept.insert(row.hour, k);
                }
            }
        }
    }
    let mut reference_sample: Option<Vec<Vec<Owned>>> = None;
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let mut put = Vec::new();
    let (mut n_kept, mut n_fitted) = (0, 0);
    let mut windows = Vec::with_capacity(samples.len());
    for (start, sample) in samples {
        let rows = sample.seen();
        let end = Timestamp(start.0 + query.window.micros());
        let partial = crate::partial::is_partial(end, cutoff);
        let (scored_rows, score) = match kept.remove(&start) {
            Some(k)
                if k.rows == rows
                    || ((partial || !k.partial)
                        && k.rows < rows
                        && (rows as f64) <= k.rows as f64 * (1.0 + REFIT_GROWTH)) =>
            {
                n_kept += 1;
                (k.rows, k.score)
            }
            _ => {
                n_fitted += 1;
                let reference_rows = match &reference_sample {
                    Some(r) => r,
                    None => reference_sample
                        .insert(sample_reference(store, model, &reference, &columns)?),
                };
                let window_rows = sample.into_items();
                let score = domain_score(
                    &columns.kinds,
                    &as_cells(reference_rows),
                    &as_cells(&window_rows),
                )
                .map_err(|e| e.to_string());
                if keep {
                    put.push(StoredAggregate {
                        version: version_key(query),
                        hour: start,
                        data: postcard::to_stdvec(&Kept {
                            stamp: reference.stamp,
                            rows,
                            partial,
                            score: score.clone(),
                        })
                        .map_err(|e| crate::aggregates::corrupt("domain score", e))?,
                    });
                }
                (rows, score)
            }
        };
        let mut w = window(start, end, partial, rows, score);
        w.scored_rows = scored_rows;
        windows.push(w);
    }
    if !put.is_empty() {
        store.put_aggregates(
            model,
            AggregateWrite {
                kind,
                put,
                ..AggregateWrite::default()
            },
        )?;
    }
    Ok(DomainResponse {
        model: model.as_str().to_owned(),
        window: query.window.label(),
        reference: reference.info(),
        classifier: ClassifierInfo {
            method: "domain_classifier".into(),
            features: reference
                .layout
                .features
                .iter()
                .map(|(n, _)| n.clone())
                .collect(),
            categorical: reference
                .layout
                .features
                .iter()
                .filter(|(_, k)| *k != FeatureKind::Numeric)
                .map(|(n, _)| n.clone())
                .collect(),
            folds: FOLDS,
            sample_rows: SAMPLE_ROWS,
            trees: GBDT_TREES,
            depth: GBDT_DEPTH,
            interval: "delong_95".into(),
            lower_threshold: LOWER_THRESHOLD,
            upper_threshold: DEFAULT_THRESHOLD,
        },
        kept: n_kept,
        fitted: n_fitted,
        windows,
    })
}

fn window(
    start: Timestamp,
    end: Timestamp,
    partial: bool,
    rows: u64,
    score: Result<DomainScore, String>,
) -> DomainWindow {
    match score {
        Ok(s) => DomainWindow {
            start,
            end,
            partial,
            rows,
            scored_rows: rows,
            auc: Some(s.auc.auc),
            standard_error: Some(s.auc.standard_error),
            ci_low: Some(s.auc.ci_low),
            ci_high: Some(s.auc.ci_high),
            reference_rows: s.reference_rows,
            window_rows: s.window_rows,
            alert: !(LOWER_THRESHOLD..=DEFAULT_THRESHOLD).contains(&s.auc.auc),
            note: None,
        },
        Err(why) => DomainWindow {
            start,
            end,
            partial,
            rows,
            scored_rows: rows,
            auc: None,
            standard_error: None,
            ci_low: None,
            ci_high: None,
            reference_rows: 0,
            window_rows: 0,
            alert: false,
            note: Some(why),
        },
    }
}

fn as_cells(rows: &[Vec<Owned>]) -> Vec<Vec<Cell<'_>>> {
    rows.iter()
        .map(|r| r.iter().map(Owned::cell).collect())
        .collect()
}

/// The reference's seeded sample (upload order).
fn sample_reference(
    store: &dyn Store,
    model: &ModelName,
    reference: &Reference,
    columns: &Columns,
) -> Result<Vec<Vec<Owned>>, EngineError> {
    let rows = store.reference_rows(model, reference.version.as_deref())?;
    let mut sample = Reservoir::new(SAMPLE_ROWS, SEED);
    for r in &rows {
        sample.offer_with(|| columns.row(r.features.iter().map(|(n, v)| (n.as_str(), v))));
    }
    Ok(sample.into_items())
}
