//! Outlier rows per window: each prediction's HBOS score against the reference
//! (`modelwatch_stats::outlier`, ADR 016), the share of rows above the reference's own 99th
//! percentile (the outlier rate), the window's worst rows with the features that made each
//! unusual, and boundary probing by one tag value (`client` by default): many rows of one value
//! with scores near the decision threshold.
//!
//! # Where it comes from
//! Like [`crate::multivariate`]:
//! - the fit (per-feature histograms, the threshold) is kept as the model-wide aggregate [`FIT`]
//!   per reference version, fitted on the first query after a reference upload (which deletes
//!   every `reference*` aggregate);
//! - per (version, hour) the aggregate [`HOURS`] keeps what the windows merge: rows, outliers,
//!   the hour's [`MAX_LIMIT`] worst rows with their scores and contributions, and per value of
//!   the default probing tag its scored rows and those near the threshold. A query the hourly
//!   drift sketches answer rescans only the hours whose prediction count changed. Other queries
//!   (a segment, partial hours, another probing tag, a version with its own reference) scan.
//!
//! So a prediction's score is kept with its hour, computed once against the reference in force;
//! predictions that arrived before any reference are scored when the first one is uploaded (the
//! query answers 409 until then), and a new reference rescores every hour (ADR 016).

use std::collections::{BTreeMap, HashMap};

use modelwatch_core::{FeatureValue, ModelName, PredictionEvent, Timestamp, Window};
use modelwatch_stats::drift::FeatureKind;
use modelwatch_stats::outlier::{
    probing_test, Cell, ColumnKind, HbosFit, Histogram, ProbingConfig, ProbingTest,
    DEFAULT_CONTAMINATION,
};
use modelwatch_store::{ScanRange, Store};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::planner::Source;
use crate::query::DriftQuery;
use crate::reference::ReferenceInfo;
use crate::sketch::Reference;

/// Kind of the stored fit; it starts with `reference`, so a reference upload deletes it.
pub const FIT: &str = "reference-hbos";
/// Kind of the per-(version, hour) state; deleted with the fit.
pub const HOURS: &str = "reference-hbos-hours";
/// The tag whose values the hours keep for the probing test.
pub const DEFAULT_TAG: &str = "client";
/// Worst rows kept per hour, and the most a query lists per window.
pub const MAX_LIMIT: usize = 20;
/// Worst rows listed per window unless `limit` says.
pub const DEFAULT_LIMIT: usize = 10;
/// Features named per listed row (those contributing most, above 0).
const NAMED_FEATURES: usize = 3;
/// Distinct tag values an hour keeps for the probing test; rows of further values count in the
/// window's totals only.
const MAX_TAG_VALUES: usize = 1000;
/// Probing tag values listed per window (the flagged ones, then the lowest p-values).
const LISTED_TAG_VALUES: usize = 5;

/// What an outliers query asks.
#[derive(Debug, Clone)]
pub struct OutlierQuery {
    pub drift: DriftQuery,
    /// Worst rows listed per window, at most [`MAX_LIMIT`].
    pub limit: usize,
    /// The tag whose values are tested for probing.
    pub tag: String,
}

impl OutlierQuery {
    pub fn new(drift: DriftQuery) -> OutlierQuery {
        OutlierQuery {
            drift,
            limit: DEFAULT_LIMIT,
            tag: DEFAULT_TAG.to_owned(),
        }
    }
}

/// One hour's (or window's) mergeable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    rows: u64,
    outliers: u64,
    /// Highest score first, at most [`MAX_LIMIT`].
    worst: Vec<OutlierRow>,
    /// Rows with a score (for the probing test) and those near the threshold.
    scored: u64,
    near: u64,
    /// Per value of the probing tag: (scored rows, near the threshold).
    tags: BTreeMap<String, (u64, u64)>,
    /// While scoring: the lowest score kept once `worst` was cut to its size.
    #[serde(skip)]
    floor: Option<f64>,
}

impl State {
    fn merge(&mut self, o: &State) {
        self.rows += o.rows;
        self.outliers += o.outliers;
        self.scored += o.scored;
        self.near += o.near;
        for (v, (n, k)) in &o.tags {
            if let Some(e) = self.tags.get_mut(v) {
                e.0 += n;
                e.1 += k;
            } else if self.tags.len() < MAX_TAG_VALUES {
                self.tags.insert(v.clone(), (*n, *k));
            }
        }
        self.worst.extend(o.worst.iter().cloned());
        sort_worst(&mut self.worst);
    }
}

/// Highest score first; ties by time then request id, so any order of merging lists the same.
fn sort_worst(rows: &mut Vec<OutlierRow>) {
    rows.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.timestamp.cmp(&b.timestamp))
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
    rows.truncate(MAX_LIMIT);
}

/// A feature of a listed row and how much it added to the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    /// The value as sent, as JSON text (`"DE"`, `1250.5`, `null`).
    pub value: String,
    /// Bits the value adds over the feature's most common bin or category (0 to 3.3).
    pub contribution: f64,
}

/// One of a window's worst rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutlierRow {
    pub request_id: String,
    pub timestamp: Timestamp,
    /// Null for a prediction without a version. (Always written: the hours keep these rows
    /// with postcard, which cannot read back a field left out.)
    pub version: Option<String>,
    /// The HBOS score (higher: more unusual).
    pub score: f64,
    /// Above the fit's threshold.
    pub outlier: bool,
    /// The features that contributed most, most first.
    pub features: Vec<Contribution>,
    /// The row's value of the probing tag, null without one.
    pub tag: Option<String>,
}

/// A tag value's probing test in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbingValue {
    pub value: String,
    #[serde(flatten)]
    pub test: ProbingTest,
}

/// One window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutlierWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    pub partial: bool,
    pub rows: u64,
    pub outliers: u64,
    /// `outliers / rows`; null without rows.
    pub outlier_rate: Option<f64>,
    /// The worst rows, highest score first.
    pub worst: Vec<OutlierRow>,
    /// Tag values flagged as possible probing.
    pub probing_flagged: u64,
    /// The flagged values, then those closest to it (at most 5).
    pub probing: Vec<ProbingValue>,
}

/// What the windows are scored against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutlierFit {
    /// `hbos`.
    pub method: String,
    pub features: Vec<String>,
    pub bins: usize,
    pub alpha: f64,
    pub contamination: f64,
    /// A row scoring above this is an outlier: the reference rows' own score at the
    /// `1 - contamination` quantile.
    pub threshold: f64,
}

/// `GET /v1/models/{model}/outliers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutlierResponse {
    pub model: String,
    pub window: String,
    pub reference: ReferenceInfo,
    pub fit: OutlierFit,
    /// The tag tested for probing and the test's settings.
    pub probing_tag: String,
    pub probing: ProbingConfig,
    /// `hours` or `events`.
    pub source: String,
    pub windows: Vec<OutlierWindow>,
}

/// The fit ready to read events.
struct Fitted {
    fit: HbosFit,
    stamp: u64,
    index: HashMap<String, usize>,
}

fn column_kind(kind: FeatureKind) -> ColumnKind {
    match kind {
        FeatureKind::Numeric => ColumnKind::Numeric,
        FeatureKind::Categorical | FeatureKind::Boolean => ColumnKind::Categorical,
    }
}

fn cell(kind: ColumnKind, v: &FeatureValue) -> Cell<'_> {
    match (kind, v) {
        (ColumnKind::Numeric, FeatureValue::Number(x)) => Cell::Number(*x),
        (ColumnKind::Categorical, FeatureValue::Text(s)) => Cell::Category(s),
        (ColumnKind::Categorical, FeatureValue::Bool(b)) => {
            Cell::Category(if *b { "true" } else { "false" })
        }
        _ => Cell::Missing,
    }
}

fn kinds(reference: &Reference) -> Vec<(String, ColumnKind)> {
    reference
        .layout
        .features
        .iter()
        .map(|(n, k)| (n.clone(), column_kind(*k)))
        .collect()
}

fn fit_reference(
    reference: &Reference,
    rows: &[modelwatch_core::ReferenceRow],
) -> Result<HbosFit, String> {
    let columns = kinds(reference);
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
                    out[j] = cell(columns[j].1, value);
                }
            }
            out
        })
        .collect();
    HbosFit::fit(&columns, &cells, DEFAULT_CONTAMINATION).map_err(|e| e.to_string())
}

fn fitted(
    store: &dyn Store,
    model: &ModelName,
    reference: &Reference,
) -> Result<Fitted, EngineError> {
    let fit = crate::aggregates::stamped_fit(store, model, reference, FIT, "hbos fit", |rows| {
        fit_reference(reference, rows).map_err(|why| EngineError::ReferenceNotFitted {
            model: model.as_str().to_owned(),
            why: format!("outlier scores: {why}"),
        })
    })?;
    Ok(Fitted {
        index: fit
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect(),
        fit,
        stamp: reference.stamp,
    })
}

/// Scores events into states, reusing its buffers between rows.
struct Scorer<'a> {
    fitted: &'a Fitted,
    probing: ProbingConfig,
    tag: &'a str,
    kinds: Vec<ColumnKind>,
    contributions: Vec<f64>,
}

impl<'a> Scorer<'a> {
    fn new(fitted: &'a Fitted, tag: &'a str) -> Scorer<'a> {
        Scorer {
            fitted,
            probing: ProbingConfig::default(),
            tag,
            kinds: fitted
                .fit
                .columns
                .iter()
                .map(|c| match c.histogram {
                    Histogram::Categorical { .. } => ColumnKind::Categorical,
                    _ => ColumnKind::Numeric,
                })
                .collect(),
            contributions: Vec::new(),
        }
    }

    fn add(&mut self, state: &mut State, ev: &PredictionEvent) {
        let fit = &self.fitted.fit;
        let mut cells: Vec<Cell<'_>> = vec![Cell::Missing; fit.columns.len()];
        for (name, value) in &ev.features {
            if let Some(&j) = self.fitted.index.get(name.as_str()) {
                cells[j] = cell(self.kinds[j], value);
            }
        }
        let score = fit.score_with_contributions(&cells, &mut self.contributions);
        let outlier = fit.is_outlier(score);
        state.rows += 1;
        state.outliers += u64::from(outlier);
        let tag = ev
            .tags
            .iter()
            .find(|(k, _)| k == self.tag)
            .map(|(_, v)| v.as_str());
        if let Some(s) = ev.score.filter(|s| s.is_finite()) {
            let near = u64::from(self.probing.is_near(s));
            state.scored += 1;
            state.near += near;
            if let Some(v) = tag {
                if let Some(e) = state.tags.get_mut(v) {
                    e.0 += 1;
                    e.1 += near;
                } else if state.tags.len() < MAX_TAG_VALUES {
                    state.tags.insert(v.to_owned(), (1, near));
                }
            }
        }
        // Rows below the kept ones' lowest score cost nothing more.
        if state.floor.is_some_and(|f| score < f) {
            return;
        }
        state
            .worst
            .push(self.row(ev, score, outlier, tag.map(str::to_owned)));
        if state.worst.len() >= 2 * MAX_LIMIT {
            sort_worst(&mut state.worst);
            state.floor = state.worst.last().map(|w| w.score);
        }
    }

    fn row(
        &self,
        ev: &PredictionEvent,
        score: f64,
        outlier: bool,
        tag: Option<String>,
    ) -> OutlierRow {
        let fit = &self.fitted.fit;
        let mut order: Vec<usize> = (0..fit.columns.len())
            .filter(|&j| self.contributions[j] > 0.0)
            .collect();
        order.sort_by(|&a, &b| {
            self.contributions[b]
                .total_cmp(&self.contributions[a])
                .then(a.cmp(&b))
        });
        let value_of = |name: &str| {
            ev.features
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, v)| value_text(v))
                .unwrap_or_else(|| "null".into())
        };
        OutlierRow {
            request_id: ev.request_id.clone(),
            timestamp: ev.timestamp,
            version: ev.model_version.clone(),
            score,
            outlier,
            features: order
                .into_iter()
                .take(NAMED_FEATURES)
                .map(|j| Contribution {
                    feature: fit.columns[j].name.clone(),
                    value: value_of(&fit.columns[j].name),
                    contribution: self.contributions[j],
                })
                .collect(),
            tag,
        }
    }
}

fn value_text(v: &FeatureValue) -> String {
    match v {
        FeatureValue::Null => "null".into(),
        FeatureValue::Bool(b) => b.to_string(),
        FeatureValue::Number(x) => serde_json::to_string(x).unwrap_or_else(|_| x.to_string()),
        FeatureValue::Text(s) => serde_json::to_string(s).unwrap_or_else(|_| s.clone()),
    }
}

/// Outliers and probing per window of the query.
pub fn outliers(
    store: &dyn Store,
    model: &ModelName,
    query: &OutlierQuery,
) -> Result<OutlierResponse, EngineError> {
    let drift = &crate::drift::one_slice(store, model, &query.drift, "outliers")?;
    let reference = Reference::load(store, model, drift.version.as_deref())?;
    let fitted = fitted(store, model, &reference)?;
    let (source, states) = window_states(store, model, drift, &query.tag, &reference, &fitted)?;
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let probing = ProbingConfig::default();
    let windows = states
        .into_iter()
        .map(|(start, mut s)| {
            let end = Timestamp(start.0 + drift.window.micros());
            let tested = s
                .tags
                .values()
                .filter(|(n, _)| *n >= probing.min_rows)
                .count();
            let mut tests: Vec<ProbingValue> = s
                .tags
                .iter()
                .filter_map(|(v, (n, k))| {
                    probing_test(*n, *k, s.scored, s.near, tested, &probing).map(|test| {
                        ProbingValue {
                            value: v.clone(),
                            test,
                        }
                    })
                })
                .collect();
            tests.sort_by(|a, b| {
                b.test
                    .flagged
                    .cmp(&a.test.flagged)
                    .then(a.test.p_value.total_cmp(&b.test.p_value))
                    .then_with(|| a.value.cmp(&b.value))
            });
            let flagged = tests.iter().filter(|t| t.test.flagged).count();
            tests.truncate(LISTED_TAG_VALUES.max(flagged));
            s.worst.truncate(query.limit.min(MAX_LIMIT));
            OutlierWindow {
                start,
                end,
                partial: crate::partial::is_partial(end, cutoff),
                rows: s.rows,
                outliers: s.outliers,
                outlier_rate: (s.rows > 0).then(|| s.outliers as f64 / s.rows as f64),
                worst: s.worst,
                probing_flagged: flagged as u64,
                probing: tests,
            }
        })
        .collect();
    Ok(OutlierResponse {
        model: model.as_str().to_owned(),
        window: drift.window.label(),
        reference: reference.info(),
        fit: OutlierFit {
            method: "hbos".into(),
            features: fitted.fit.columns.iter().map(|c| c.name.clone()).collect(),
            bins: fitted.fit.bins,
            alpha: fitted.fit.alpha,
            contamination: fitted.fit.contamination,
            threshold: fitted.fit.threshold,
        },
        probing_tag: query.tag.clone(),
        probing,
        source: match source {
            Source::Hours => "hours",
            Source::Events => "events",
        }
        .into(),
        windows,
    })
}

fn window_states(
    store: &dyn Store,
    model: &ModelName,
    query: &DriftQuery,
    tag: &str,
    reference: &Reference,
    fitted: &Fitted,
) -> Result<(Source, BTreeMap<Timestamp, State>), EngineError> {
    let range = ScanRange {
        from: query.from,
        to: query.to,
        version: query.version.clone(),
    };
    if tag == DEFAULT_TAG && crate::planner::drift(store, model, query, reference)? == Source::Hours
    {
        if let Some(hours) = hour_states(store, model, &range, reference, fitted)? {
            let mut out: BTreeMap<Timestamp, State> = BTreeMap::new();
            for ((_, hour), s) in hours {
                if s.rows > 0 {
                    out.entry(query.window.start_of(hour))
                        .or_default()
                        .merge(&s);
                }
            }
            return Ok((Source::Hours, out));
        }
    }
    let mut out: BTreeMap<Timestamp, State> = BTreeMap::new();
    let mut scorer = Scorer::new(fitted, tag);
    store.scan_predictions(model, &range, &mut |ev, _| {
        if query.segment.as_ref().is_none_or(|s| s.matches(ev)) {
            let s = out.entry(query.window.start_of(ev.timestamp)).or_default();
            scorer.add(s, ev);
        }
    })?;
    for s in out.values_mut() {
        sort_worst(&mut s.worst);
    }
    Ok((Source::Events, out))
}

type HourStates = BTreeMap<(String, Timestamp), State>;

/// Every (version, hour) of `range` from the stored states, rescoring the hours whose prediction
/// count changed since; `None` when the hourly sketches cannot say the counts.
fn hour_states(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    reference: &Reference,
    fitted: &Fitted,
) -> Result<Option<HourStates>, EngineError> {
    let cache = crate::aggregates::HourCache {
        kind: HOURS,
        what: "hbos hour state",
        stamp: fitted.stamp,
    };
    let mut scorer = Scorer::new(fitted, DEFAULT_TAG);
    crate::aggregates::stamped_hours(
        store,
        model,
        range,
        reference,
        &cache,
        |part, fresh: &mut HourStates| {
            store.scan_predictions(model, part, &mut |ev, _| {
                let version = ev.model_version.clone().unwrap_or_default();
                let s = fresh
                    .entry((version, Window::HOUR.start_of(ev.timestamp)))
                    .or_default();
                scorer.add(s, ev);
            })?;
            Ok(())
        },
        |state| {
            sort_worst(&mut state.worst);
            state.rows
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored hour must read back, or every query rescores every hour (it did while a worst
    /// row's `version` and `tag` were left out when null: 12 s a query for 1M rows instead of
    /// milliseconds).
    #[test]
    fn an_hour_with_a_row_without_version_or_tag_reads_back() {
        let row = |id: &str, tag: Option<&str>| OutlierRow {
            request_id: id.into(),
            timestamp: Timestamp(3_600_000_000),
            version: None,
            score: 4.2,
            outlier: true,
            features: vec![Contribution {
                feature: "amount".into(),
                value: "5000.0".into(),
                contribution: 3.3,
            }],
            tag: tag.map(str::to_owned),
        };
        let mut state = State {
            rows: 2,
            outliers: 2,
            worst: vec![row("a", None), row("b", Some("bot"))],
            scored: 2,
            near: 1,
            ..State::default()
        };
        state.tags.insert("bot".into(), (1, 1));
        let blob = crate::aggregates::StampedHour {
            stamp: 7,
            rows: 2,
            state,
        };
        let bytes = postcard::to_stdvec(&blob).unwrap();
        let back: crate::aggregates::StampedHour<State> =
            postcard::from_bytes(&bytes).expect("the hour reads back");
        assert_eq!(back.state.worst, blob.state.worst);
        assert_eq!(back.state.tags, blob.state.tags);
        assert_eq!((back.stamp, back.rows), (7, 2));
    }
}
