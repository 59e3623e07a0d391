//! Cost and service levels per window: what the predictions cost, and how a latency objective
//! (an SLO: "99 % of requests under 200 ms") is kept, with its error budget over 30 days and
//! its burn rate, as the Google SRE workbook defines them (docs/api.md, "Cost and service
//! levels").
//!
//! # The setting
//! A model may name a cost per prediction (`cost_per_prediction`, used for the predictions
//! whose event carries no `cost`) and a latency objective (`latency_slo`: the share of
//! requests that must answer within `threshold_ms`). It is kept with the model as the
//! model-wide aggregate row `service-levels-settings`: a setting, not a cache (nothing but
//! [`set_settings`] writes it; retention and rebuilds keep model-wide rows).
//!
//! # Where the numbers come from
//! From the per-hour state, never a scan per query: each (version, hour) accumulator keeps the
//! count of predictions, the count of those that carried a cost and the sum of their costs in
//! whole billionths (integers: a sum reads the same whatever the order the hours merge in), and
//! the latency sketch. A request is under the bound when its latency's sketch bucket is
//! ([`QuantileSketch::histogram`]: a latency within 2 % of the bound may be counted on either
//! side; every other one is counted exactly), so a change of the objective needs no rebuild.
//! Before the model's task is decided (the hours hold nothing yet) the raw events are folded
//! into the same per-hour counts.
//!
//! # Definitions (SRE workbook, "Alerting on SLOs")
//! - compliance = requests under the bound / requests with a latency, in the window;
//! - error rate = 1 − compliance; burn rate = error rate / (1 − objective): 1 spends the budget
//!   exactly over the budget period, 14.4 spends 2 % of a 30-day budget in one hour;
//! - budget remaining, at a window's end = 1 − (slow requests in the 30 days ending there) /
//!   ((1 − objective) × requests in those 30 days): 1 untouched, 0 spent, below 0 overspent.

use std::collections::BTreeMap;

use modelwatch_core::{ModelName, Timestamp, Window};
use modelwatch_stats::perf::QuantileSketch;
use modelwatch_store::{ScanRange, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EngineError;

/// Kind of the model-wide aggregate row holding the model's [`ServiceLevelSettings`] (JSON).
pub(crate) const SETTINGS: &str = "service-levels-settings";
/// Days the error budget is counted over (the SRE workbook's rolling 30 days).
pub const BUDGET_DAYS: i64 = 30;
const HOUR: i64 = 3_600_000_000;
/// Billionths per unit of cost.
const NANOS: f64 = 1e9;

/// A cost in whole billionths, as the hours sum it (ingest checked it is in range).
pub fn nanos(cost: f64) -> u128 {
    (cost * NANOS).round().max(0.0) as u128
}

fn units(nanos: u128) -> f64 {
    nanos as f64 / NANOS
}

/// A latency objective: `objective` of the requests answer within `threshold_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySlo {
    /// In (0, 1): 0.99 for "99 % of requests".
    pub objective: f64,
    /// The bound, in milliseconds (as `latency_ms` in the events).
    pub threshold_ms: f64,
}

/// What a model's predictions cost and the latency it promises.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevelSettings {
    /// The cost of a prediction whose event carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_prediction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_slo: Option<LatencySlo>,
}

/// A setting refused: the field (`latency_slo.objective`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {problem}")]
pub struct SettingsError {
    pub field: String,
    pub problem: String,
}

impl ServiceLevelSettings {
    /// Reads and checks a setting sent as JSON:
    /// `{"cost_per_prediction": 0.0004, "latency_slo": {"objective": 0.99, "threshold_ms": 200}}`.
    pub fn from_json(v: &Value) -> Result<ServiceLevelSettings, SettingsError> {
        let bad = |field: &str, problem: String| SettingsError {
            field: field.to_owned(),
            problem,
        };
        let Some(obj) = v.as_object() else {
            return Err(bad(
                "(body)",
                "send an object, e.g. {\"latency_slo\": {\"objective\": 0.99, \"threshold_ms\": 200}}"
                    .into(),
            ));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["cost_per_prediction", "latency_slo"].contains(&k.as_str()))
        {
            return Err(bad(
                k,
                "unknown field: the setting has cost_per_prediction and latency_slo".into(),
            ));
        }
        let cost_per_prediction = match obj.get("cost_per_prediction") {
            None | Some(Value::Null) => None,
            Some(n) => match n.as_f64() {
                Some(c) if modelwatch_core::checks::cost(c).is_ok() => Some(c),
                _ => {
                    return Err(bad(
                        "cost_per_prediction",
                        format!(
                            "{n} is not a cost: give a non-negative number up to {:e}",
                            modelwatch_core::checks::MAX_COST
                        ),
                    ))
                }
            },
        };
        let latency_slo = match obj.get("latency_slo") {
            None | Some(Value::Null) => None,
            Some(Value::Object(s)) => {
                if let Some(k) = s
                    .keys()
                    .find(|k| !["objective", "threshold_ms"].contains(&k.as_str()))
                {
                    return Err(bad(
                        &format!("latency_slo.{k}"),
                        "unknown field: a latency SLO has objective and threshold_ms".into(),
                    ));
                }
                let objective = match s.get("objective").and_then(Value::as_f64) {
                    Some(o) if o > 0.0 && o < 1.0 => o,
                    other => {
                        return Err(bad(
                            "latency_slo.objective",
                            format!(
                                "{} is not a share of requests strictly between 0 and 1 \
                                 (0.99 for 99 %)",
                                other.map_or_else(
                                    || s.get("objective")
                                        .map_or("missing".into(), Value::to_string),
                                    |o| o.to_string()
                                )
                            ),
                        ))
                    }
                };
                let threshold_ms = match s.get("threshold_ms").and_then(Value::as_f64) {
                    Some(t) if t.is_finite() && t > 0.0 => t,
                    _ => {
                        return Err(bad(
                            "latency_slo.threshold_ms",
                            format!(
                                "{} is not a latency bound: give a positive number of \
                                 milliseconds",
                                s.get("threshold_ms")
                                    .map_or("missing".into(), Value::to_string)
                            ),
                        ))
                    }
                };
                Some(LatencySlo {
                    objective,
                    threshold_ms,
                })
            }
            Some(other) => {
                return Err(bad(
                    "latency_slo",
                    format!(
                        "{other} is not an objective: give {{\"objective\": 0.99, \
                         \"threshold_ms\": 200}}"
                    ),
                ))
            }
        };
        Ok(ServiceLevelSettings {
            cost_per_prediction,
            latency_slo,
        })
    }
}

/// The service-level setting of `model`, if it has one.
pub fn settings(
    store: &dyn Store,
    model: &ModelName,
) -> Result<Option<ServiceLevelSettings>, StoreError> {
    crate::aggregates::model_setting(store, model, SETTINGS, "service-level settings")
}

/// Sets (`None`: removes) the service-level setting of `model`, which must exist.
pub fn set_settings(
    store: &dyn Store,
    model: &ModelName,
    settings: Option<&ServiceLevelSettings>,
) -> Result<(), StoreError> {
    crate::aggregates::set_model_setting(store, model, SETTINGS, settings)
}

/// What a service-level query asks: windows of whole hours.
#[derive(Debug, Clone)]
pub struct ServiceLevelQuery {
    pub window: Window,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
}

/// Additive counts of some hours.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub predictions: u64,
    /// Predictions whose event carried a cost, and the sum of those costs (billionths).
    pub costed: u64,
    pub cost_nanos: u128,
    /// Predictions with a latency, and those within the objective's bound.
    pub requests: u64,
    pub good: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.predictions += o.predictions;
        self.costed += o.costed;
        self.cost_nanos += o.cost_nanos;
        self.requests += o.requests;
        self.good += o.good;
    }

    fn of(
        predictions: u64,
        costed: u64,
        cost_nanos: u128,
        latency: &QuantileSketch,
        slo: Option<&LatencySlo>,
    ) -> Counts {
        let (requests, good) = match slo {
            Some(s) => {
                let h = latency.histogram(&[s.threshold_ms]);
                (h.count, h.buckets.first().map_or(0, |b| b.count))
            }
            None => (0, 0),
        };
        Counts {
            predictions,
            costed,
            cost_nanos,
            requests,
            good,
        }
    }
}

/// What the predictions of a window (or a version) cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// `from_events` plus `from_rate` (when the model has a rate).
    pub total: f64,
    /// The sum of the `cost` the events carried (exact to the billionth).
    pub from_events: f64,
    /// Predictions whose event carried a cost.
    pub with_cost: u64,
    /// Predictions without one: priced at the model's `cost_per_prediction`, when set.
    pub without_cost: u64,
    /// `without_cost` × `cost_per_prediction`; `null` when the model has no rate (then those
    /// predictions are in no total).
    pub from_rate: Option<f64>,
}

/// The latency objective's figures of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloWindow {
    /// Predictions with a latency in the window, and those within the bound.
    pub requests: u64,
    pub good: u64,
    /// good / requests (`null` without requests).
    pub compliance: Option<f64>,
    /// (1 − compliance) / (1 − objective) (`null` without requests).
    pub burn_rate: Option<f64>,
    /// Over the 30 days ending at the window's end: 1 − slow / ((1 − objective) × requests);
    /// `null` without requests in those days.
    pub budget_remaining: Option<f64>,
    /// Requests in those 30 days, and the slow ones among them.
    pub budget_requests: u64,
    pub budget_slow: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevelWindow {
    pub start: Timestamp,
    pub end: Timestamp,
    pub partial: bool,
    pub predictions: u64,
    pub cost: CostReport,
    /// `null` when the model has no latency objective.
    pub slo: Option<SloWindow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevelVersion {
    pub version: String,
    pub predictions: u64,
    pub cost: CostReport,
    /// Over the query's range: requests, good, compliance and burn rate (no budget: the
    /// budget is the model's).
    pub slo: Option<SloWindow>,
}

/// `GET /v1/models/{model}/service-levels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLevelReport {
    pub model: String,
    pub window: String,
    pub settings: ServiceLevelSettings,
    pub budget_days: i64,
    /// `hours`: read from the per-hour state; `events`: folded from the raw events (before the
    /// model's task is decided, the hours hold nothing).
    pub source: String,
    pub windows: Vec<ServiceLevelWindow>,
    pub versions: Vec<ServiceLevelVersion>,
}

fn cost_report(c: &Counts, rate: Option<f64>) -> CostReport {
    let without = c.predictions - c.costed;
    let from_events = units(c.cost_nanos);
    let from_rate_nanos = rate.map(|r| nanos(r) * u128::from(without));
    CostReport {
        total: units(c.cost_nanos + from_rate_nanos.unwrap_or(0)),
        from_events,
        with_cost: c.costed,
        without_cost: without,
        from_rate: from_rate_nanos.map(units),
    }
}

/// Compliance and burn rate of `requests` of which `good` were within the bound.
pub fn burn(objective: f64, requests: u64, good: u64) -> (Option<f64>, Option<f64>) {
    if requests == 0 {
        return (None, None);
    }
    let compliance = good as f64 / requests as f64;
    (
        Some(compliance),
        Some((1.0 - compliance) / (1.0 - objective)),
    )
}

/// The share of the error budget left after `slow` of `requests` missed the bound.
pub fn budget_remaining(objective: f64, requests: u64, slow: u64) -> Option<f64> {
    (requests > 0).then(|| 1.0 - slow as f64 / ((1.0 - objective) * requests as f64))
}

fn slo_of(slo: &LatencySlo, c: &Counts, budget: Option<&Counts>) -> SloWindow {
    let (compliance, burn_rate) = burn(slo.objective, c.requests, c.good);
    let (budget_requests, budget_slow) =
        budget.map_or((0, 0), |b| (b.requests, b.requests - b.good));
    SloWindow {
        requests: c.requests,
        good: c.good,
        compliance,
        burn_rate,
        budget_remaining: budget
            .and_then(|_| budget_remaining(slo.objective, budget_requests, budget_slow)),
        budget_requests,
        budget_slow,
    }
}

/// Per-hour counts keyed by (version, hour), from the hours or the raw events.
type HourCounts = BTreeMap<(String, Timestamp), Counts>;

fn hour_counts(
    store: &dyn Store,
    model: &ModelName,
    range: &ScanRange,
    slo: Option<&LatencySlo>,
) -> Result<(HourCounts, &'static str), EngineError> {
    let mut out = HourCounts::new();
    let answered =
        crate::aggregates::each_hour_accumulator(store, model, range, |v, hour, acc| {
            let c = Counts::of(
                acc.predictions,
                acc.costed,
                acc.cost_nanos,
                &acc.latency_ms,
                slo,
            );
            out.entry((v.to_owned(), hour)).or_default().add(&c);
        })?;
    if answered {
        return Ok((out, "hours"));
    }
    // The hours cannot answer yet: fold the raw events into the same per-hour state.
    type Fold = (u64, u64, u128, QuantileSketch);
    let mut folds: BTreeMap<(String, Timestamp), Fold> = BTreeMap::new();
    store.scan_predictions(model, range, &mut |p, _| {
        let key = (
            p.model_version.clone().unwrap_or_default(),
            Window::HOUR.start_of(p.timestamp),
        );
        let f = folds.entry(key).or_default();
        f.0 += 1;
        if let Some(c) = p.cost {
            f.1 += 1;
            f.2 += nanos(c);
        }
        if let Some(ms) = p.latency_ms {
            let _ = f.3.observe(ms);
        }
    })?;
    for (key, (n, costed, cost, sketch)) in folds {
        out.insert(key, Counts::of(n, costed, cost, &sketch, slo));
    }
    Ok((out, "events"))
}

/// Cost and the latency objective per window of `q`, and per version over its range.
pub fn service_levels(
    store: &dyn Store,
    model: &ModelName,
    q: &ServiceLevelQuery,
) -> Result<ServiceLevelReport, EngineError> {
    if store.model(model)?.is_none() {
        return Err(StoreError::ModelNotFound(model.to_string()).into());
    }
    let window = q.window;
    if window.micros() % HOUR != 0 {
        return Err(EngineError::InvalidWindow(format!(
            "window {} is not whole hours: cost and service levels are kept per hour",
            window.label()
        )));
    }
    let settings = settings(store, model)?.unwrap_or_default();
    let slo = settings.latency_slo.as_ref();
    let rate = settings.cost_per_prediction;
    // Hours: from and to are taken to the hour; the budget needs the 30 days before `from`.
    let from = q.from.map(|f| Window::HOUR.start_of(f));
    let to =
        q.to.map(|t| Timestamp(Window::HOUR.start_of(Timestamp(t.0 - 1)).0 + HOUR));
    let budget_span = BUDGET_DAYS * 24 * HOUR;
    let range = ScanRange {
        from: from.map(|f| Timestamp(f.0 - if slo.is_some() { budget_span } else { 0 })),
        to,
        version: q.version.clone(),
    };
    let (hours, source) = hour_counts(store, model, &range, slo)?;
    let in_range = |h: Timestamp| from.is_none_or(|f| h >= f);
    // Per hour, all versions (for the rolling budget), per window and per version.
    let mut by_hour: BTreeMap<Timestamp, Counts> = BTreeMap::new();
    let mut windows: BTreeMap<Timestamp, Counts> = BTreeMap::new();
    let mut versions: BTreeMap<String, Counts> = BTreeMap::new();
    for ((v, h), c) in &hours {
        by_hour.entry(*h).or_default().add(c);
        if in_range(*h) {
            windows.entry(window.start_of(*h)).or_default().add(c);
            versions.entry(v.clone()).or_default().add(c);
        }
    }
    let cutoff = crate::partial::cutoff(store, model, Timestamp::now())?;
    let windows = windows
        .into_iter()
        .map(|(start, c)| {
            let end = Timestamp(start.0 + window.micros());
            let slo = slo.map(|s| {
                let mut budget = Counts::default();
                for (_, h) in by_hour.range(Timestamp(end.0 - budget_span)..end) {
                    budget.add(h);
                }
                slo_of(s, &c, Some(&budget))
            });
            ServiceLevelWindow {
                start,
                end,
                partial: crate::partial::is_partial(end, cutoff),
                predictions: c.predictions,
                cost: cost_report(&c, rate),
                slo,
            }
        })
        .collect();
    let versions = versions
        .into_iter()
        .map(|(version, c)| ServiceLevelVersion {
            version,
            predictions: c.predictions,
            cost: cost_report(&c, rate),
            slo: slo.map(|s| slo_of(s, &c, None)),
        })
        .collect();
    Ok(ServiceLevelReport {
        model: model.to_string(),
        window: window.label(),
        settings,
        budget_days: BUDGET_DAYS,
        source: source.to_owned(),
        windows,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cost_is_summed_in_billionths_whatever_the_order() {
        let costs = [0.0012, 0.0035, 0.1, 0.0000007, 2.5];
        let forward: u128 = costs.iter().map(|c| nanos(*c)).sum();
        let backward: u128 = costs.iter().rev().map(|c| nanos(*c)).sum();
        assert_eq!(forward, backward);
        assert_eq!(forward, 2_604_700_700);
    }

    #[test]
    fn burn_rate_and_budget_follow_the_sre_workbook() {
        // 99.9 % objective, 0.2 % slow: twice the allowed rate.
        let (c, b) = burn(0.999, 10_000, 9_980);
        assert_eq!(c, Some(0.998));
        assert!((b.unwrap() - 2.0).abs() < 1e-9);
        // Half the budget spent; then all of it; then overspent.
        assert!((budget_remaining(0.99, 1000, 5).unwrap() - 0.5).abs() < 1e-12);
        assert!(budget_remaining(0.99, 1000, 10).unwrap().abs() < 1e-12);
        assert!(budget_remaining(0.99, 1000, 20).unwrap() < 0.0);
        assert_eq!(budget_remaining(0.99, 0, 0), None);
    }

    #[test]
    fn a_bad_setting_names_its_field() {
        let field = |v: Value| ServiceLevelSettings::from_json(&v).unwrap_err().field;
        assert_eq!(
            field(json!({"cost_per_prediction": -1})),
            "cost_per_prediction"
        );
        assert_eq!(
            field(json!({"latency_slo": {"objective": 1.0, "threshold_ms": 200}})),
            "latency_slo.objective"
        );
        assert_eq!(
            field(json!({"latency_slo": {"objective": 0.99}})),
            "latency_slo.threshold_ms"
        );
        assert_eq!(
            field(json!({"latency_slo": {"objective": 0.99, "threshold_ms": 200, "x": 1}})),
            "latency_slo.x"
        );
        assert_eq!(field(json!({"latency": 1})), "latency");
        let ok = ServiceLevelSettings::from_json(
            &json!({"cost_per_prediction": 0.0004, "latency_slo": {"objective": 0.99, "threshold_ms": 200}}),
        )
        .unwrap();
        assert_eq!(ok.latency_slo.unwrap().threshold_ms, 200.0);
    }
}
