//! The demo's third model, `credit-demo`: a credit-default classifier whose labels arrive 60 to
//! 90 days after the prediction (a default is known only after missed payments), with a shadow
//! challenger, so that the dashboard shows a model's performance in the months before its labels
//! (issue 22, ADR 008 and ADR 011).
//!
//! 120 days of history at a low volume (150 applications a day): the windows older than 90
//! days are labelled, those of 60 to 90 days partly, the last 60 days not at all. 45 days ago,
//! inside the unlabelled period, the applicants start to crowd towards the decision boundary
//! (a new channel brings marginal applicants: `debt_ratio` contracts around its mean), so the
//! champion `v1`, which reads `debt_ratio` alone, is less and less sure and less accurate.
//! That is covariate shift, which CBPE sees without labels: the estimate falls where there is
//! no realized value yet, and where labels have arrived the realized value sits inside the
//! estimate's band.
//!
//! The challenger `v2` scores every request of the last 100 days in shadow (`"role":
//! "shadow"`). It also reads `bureau_score`, so it ranks better and stays sure as `debt_ratio`
//! contracts; its own labelled reference is uploaded for its version (`PUT
//! .../reference?version=v2`), which is what `/compare` calibrates its estimates on. Over the
//! whole range the labelled pairs (days 60 to 100) let the paired tests promote it; over the
//! last 30 days there is no label, and the comparison waits for labels while saying that the
//! estimates favour the challenger.
//!
//! Both versions score with the true probabilities of what they read (the champion's is the
//! logistic-normal integral over what it does not read, by the probit approximation), so both
//! are nearly calibrated, as a model fitted on its reference is.
//!
//! It loads after the two other models' history (the demo's start, which tests wait for, is
//! unchanged), then logs a new application every few seconds.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::time::Duration;

/// The delayed-labels demo model.
pub const MODEL: &str = "credit-demo";
/// Its shadow challenger.
pub const CHALLENGER: &str = "v2";
/// Days of history.
pub const DAYS: i64 = 120;
/// Applications a day.
const PER_DAY: i64 = 150;
/// The challenger has scored in shadow for the last this many days.
pub const SHADOW_DAYS: i64 = 100;
/// Label delay: between these many days after the prediction.
pub const LABEL_DELAY_DAYS: (i64, i64) = (60, 90);
/// The applicants start crowding towards the boundary this many days ago.
pub const DEGRADATION_DAYS: i64 = 45;

const DAY: i64 = 86_400;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// One application at degradation level `g` (0: like the training data, 1: fully crowded).
pub struct Application {
    pub features: Value,
    /// The champion's and the challenger's probability of default.
    pub champion: f64,
    pub challenger: f64,
    pub default: u8,
}

pub struct Generator {
    rng: StdRng,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn application(&mut self, g: f64) -> Application {
        let r = &mut self.rng;
        // z1: standardized debt ratio, contracting towards its mean as `g` grows; z2: what the
        // bureau knows, unchanged.
        let z1 = normal(r) * (1.0 - 0.75 * g);
        let z2 = normal(r);
        let (a, b1, b2) = (-0.8, 2.2, 1.6);
        let p = sigmoid(a + b1 * z1 + b2 * z2);
        let default = u8::from(r.random::<f64>() < p);
        // E[sigmoid(a + b1 z1 + b2 z2) | z1] ≈ sigmoid((a + b1 z1) / √(1 + π b2² / 8)).
        let champion = sigmoid((a + b1 * z1) / (1.0 + std::f64::consts::PI * b2 * b2 / 8.0).sqrt());
        let income = (3.6 + 0.4 * normal(r)).exp().round() * 100.0;
        Application {
            features: json!({
                "debt_ratio": round4((0.35 + 0.12 * z1).clamp(0.0, 2.0)),
                "bureau_score": (680.0 - 45.0 * z2).round(),
                "income": income,
            }),
            champion: round4(champion),
            challenger: round4(p),
            default,
        }
    }

    /// A labelled reference of one version's scores.
    fn reference(&mut self, challenger: bool) -> String {
        let mut out = String::new();
        for _ in 0..3_000 {
            let a = self.application(0.0);
            let score = if challenger { a.challenger } else { a.champion };
            out.push_str(
                &json!({"features": a.features, "prediction": u8::from(score >= 0.5),
                        "score": score, "label": a.default})
                .to_string(),
            );
            out.push('\n');
        }
        out
    }
}

/// Degradation level of an application `age` seconds old.
fn degradation(age: i64) -> f64 {
    ((DEGRADATION_DAYS * DAY - age) as f64 / (DEGRADATION_DAYS * DAY) as f64).clamp(0.0, 1.0)
}

/// The served prediction and, when the challenger was running, its shadow.
fn events(id: &str, ts: i64, a: &Application, shadow: bool) -> Vec<Value> {
    let time = modelwatch_core::Timestamp::from_secs(ts).to_rfc3339();
    let mut out = vec![json!({
        "request_id": id, "timestamp": time, "model_version": "v1", "features": a.features,
        "prediction": u8::from(a.champion >= 0.5), "score": a.champion,
    })];
    if shadow {
        out.push(json!({
            "request_id": id, "timestamp": time, "model_version": CHALLENGER, "role": "shadow",
            "features": a.features, "prediction": u8::from(a.challenger >= 0.5),
            "score": a.challenger,
        }));
    }
    out
}

/// The alert rule the demo creates on `credit-demo`: on the label-free estimate, since the
/// labels of the last two months are still to come. In the last weeks the estimated ROC AUC of
/// the champion falls from about 0.82 to under 0.65 as applicants crowd towards its boundary,
/// so the rule fires months before a label could say so; the alert lists `debt_ratio`, the
/// feature that moved, among its likely causes.
pub fn rules() -> Vec<Value> {
    vec![json!({
        "name": "estimated-auc-falling",
        "description": "label-free estimate (CBPE) of the champion's ROC AUC over the week under 0.75, with labels 60-90 days away: review whether to promote the challenger v2",
        "signal": "estimated:roc_auc",
        "condition": {"kind": "threshold", "op": "<", "value": 0.75},
        "window": "7d",
        "version": "v1",
        // The week just begun holds a few applications: judge a week of at least 500.
        "min_sample": 500,
        "decision": "review",
        "severity": "warning",
    })]
}

/// Loads the model over HTTP (references, history, the labels due), then logs a new
/// application every few seconds. Waits for `ready` first (the other models' history).
pub fn run(url: &str, seed: u64, ready: impl FnOnce()) -> anyhow::Result<()> {
    ready();
    let api = crate::demo::ModelApi::new(url, MODEL)?;
    let send = |method, path: &str, ct: &str, body| api.send(method, path, ct, body);
    let post = |path: &str, rows: &[Value]| api.post(path, rows);
    api.create_rules(&rules())?;
    let mut gen = Generator::new(seed);
    let ndjson = "application/x-ndjson";
    send(
        reqwest::Method::PUT,
        "/reference",
        ndjson,
        gen.reference(false),
    )?;
    send(
        reqwest::Method::PUT,
        &format!("/reference?version={CHALLENGER}"),
        ndjson,
        gen.reference(true),
    )?;
    let now = modelwatch_core::Timestamp::now().micros() / 1_000_000;
    let mut ages: Vec<i64> = (0..DAYS * PER_DAY)
        .map(|_| gen.rng.random_range(60..DAYS * DAY))
        .collect();
    ages.sort_unstable_by(|a, b| b.cmp(a));
    let (mut predictions, mut labels) = (Vec::new(), Vec::new());
    for (i, age) in ages.into_iter().enumerate() {
        let a = gen.application(degradation(age));
        let id = format!("credit-{i}");
        predictions.extend(events(&id, now - age, &a, age < SHADOW_DAYS * DAY));
        let (lo, hi) = LABEL_DELAY_DAYS;
        let delay = gen.rng.random_range(lo * DAY..hi * DAY);
        if age >= delay {
            labels.push(json!({"request_id": id, "label": a.default}));
        }
    }
    post("/predictions", &predictions)?;
    // In one request (about 8,000 rows), so that labels are all in once any is.
    send(
        reqwest::Method::POST,
        "/labels",
        "application/json",
        Value::Array(labels.clone()).to_string(),
    )?;
    tracing::info!(
        predictions = predictions.len(),
        labels = labels.len(),
        "credit demo history loaded"
    );
    // Live: new applications, whose labels are months away.
    for i in 0.. {
        std::thread::sleep(Duration::from_secs(3));
        let t = modelwatch_core::Timestamp::now().micros() / 1_000_000;
        let a = gen.application(1.0);
        post(
            "/predictions",
            &events(&format!("credit-live-{i}"), t, &a, true),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_rule_is_a_valid_rule() {
        for r in rules() {
            modelwatch_alerts::RuleSpec::from_json(r)
                .unwrap()
                .validate(MODEL, modelwatch_alerts::rule::Origin::Api, &[])
                .unwrap();
        }
    }

    /// Crowding towards the boundary costs the champion accuracy, and the challenger, which
    /// reads the bureau score too, loses less.
    #[test]
    fn crowding_degrades_the_champion_more_than_the_challenger() {
        let mut g = Generator::new(3);
        let accuracy = |g: &mut Generator, level: f64| {
            let rows: Vec<Application> = (0..6_000).map(|_| g.application(level)).collect();
            let right = |s: fn(&Application) -> f64| {
                rows.iter()
                    .filter(|a| u8::from(s(a) >= 0.5) == a.default)
                    .count() as f64
                    / rows.len() as f64
            };
            (right(|a| a.champion), right(|a| a.challenger))
        };
        let (v1_before, v2_before) = accuracy(&mut g, 0.0);
        let (v1_after, v2_after) = accuracy(&mut g, 1.0);
        assert!(v1_after < v1_before - 0.08, "{v1_before} -> {v1_after}");
        assert!(v2_before > v1_before && v2_after > v1_after + 0.05);
        assert!(degradation(DEGRADATION_DAYS * DAY) == 0.0 && degradation(0) == 1.0);
    }
}
