//! `modelwatch demo`: the service with two simulated classifiers, `fraud-demo` (its inputs drift,
//! its accuracy decays) and `churn-demo` (healthy), so that a newcomer sees the dashboard light
//! up within a minute, and what a model that needs nothing looks like beside it.
//!
//! A generator posts, over HTTP to the demo's own server, like a real client:
//! 1. a labelled reference (the training data);
//! 2. `--days` of history (event times spread over the past days, so there are many windows at
//!    once) in which `amount` and `country` drift, a new country appears, latency creeps up and
//!    the relation between inputs and outcome changes, so accuracy decays; version `v2` takes a
//!    share of the traffic for the last third;
//! 3. labels, late: only for predictions older than the label delay, then the rest trickling
//!    in while the demo runs, with new predictions every few seconds;
//! 4. on `fraud-demo`, a shadow challenger, version `v3` (ADR 011): every answered request is
//!    scored by it too, logged with `"role": "shadow"`, so that `GET .../compare?champion=v1&
//!    challenger=v3` pairs them. It was retrained on recent data and ranks better than `v1`.
//!
//! Before the data, it creates ten alert rules on each model over the API, as a user would
//! ([`rules`]): on `fraud-demo` the drift rules (per feature, joint by the PCA reconstruction
//! error, and the domain classifier), the concept-drift rule (ADWIN on its error stream: the
//! relation between amount and risk moves) and the F1 rule fire within seconds (the F1 alert
//! with its likely causes: `amount`, whose drift drives the drop, and the worst segment), the
//! latency objective's burn-rate rule fires, the outlier-rate rule fires on its drifted rows
//! (countries it never saw, amounts past its range) and the probing rule on client
//! `scraper-7`, whose near-duplicate rows sit at the decision threshold ([`probes`]), and the
//! accuracy rule is pending, then firing 20 seconds later; on `churn-demo`, which stays
//! healthy, none does.
//!
//! Each event carries the customer's `sex` as a tag (a protected attribute logged for
//! monitoring, not a model input), and each model's fairness setting names it, the favourable
//! outcome being `0` (not flagged). As `fraud-demo` drifts, its scores for women are pushed up,
//! so they are flagged more and more often than men: by the last days the four-fifths rule is
//! crossed and the third rule fires; `churn-demo` treats both alike.
//!
//! Each `fraud-demo` event carries what it cost (`cost`); `churn-demo`'s carry none and are
//! priced by its setting's rate. Both promise 99 % of requests under 50 ms; `fraud-demo`'s
//! latency regresses as it drifts, so its burn-rate rule (`latency-slo-burn`) fires.
//!
//! Each answered prediction, and each reference row, carries the model's exact per-feature
//! attributions (`explanations`, its log-odds contributions): as `amount` drifts up and new
//! countries come, those two drive `fraud-demo` more and `age` less (the attributions view).

use anyhow::Context;
use modelwatch_server::Config;
use modelwatch_store::SqliteStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The demo model whose inputs drift and whose accuracy decays.
pub const MODEL: &str = "fraud-demo";
/// A second model that stays healthy, for contrast on the overview.
pub const STABLE_MODEL: &str = "churn-demo";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Data directory (default: a temporary directory, deleted when the demo stops)
    #[arg(long)]
    data: Option<PathBuf>,
    /// Days of history to simulate
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Predictions per simulated hour of history
    #[arg(long, default_value_t = 150)]
    per_hour: u32,
    /// Random seed (the same seed gives the same data)
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp;
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("modelwatch-demo-")
                .tempdir()
                .context("creating a temporary data directory")?;
            temp.path().to_path_buf()
        }
    };
    let store = SqliteStore::open(&dir)
        .with_context(|| format!("opening the data directory {}", dir.display()))?;
    let config = Config {
        addr: args.addr,
        data_dir: dir.clone(),
        ..Config::default()
    };
    let state = crate::serve::app_state(
        &config,
        std::sync::Arc::new(store),
        std::sync::Arc::new(modelwatch_store::SoleProcess),
        None,
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        // Same first line as `serve`: scripts and tests read the address from it.
        // One write, so that a reader that stops after the first line cannot make a second
        // one fail.
        let mut out = std::io::stdout();
        let _ = write!(
            out,
            "modelwatch listening on {url}\ndemo: open {url}/models/{MODEL} (data in {}); its alerts: {url}/models/{MODEL}/alerts; labels months late: {url}/models/{credit}?range=all&window=1w\n",
            dir.display(),
            credit = crate::credit_demo::MODEL,
        );
        let _ = out.flush();
        // The delayed-labels model loads once the two others' history is in, so that the
        // demo's start (which tests wait for) is as quick as before.
        let (loaded, history_in) = std::sync::mpsc::channel::<()>();
        for (model, drifting, seed) in [
            (MODEL, true, args.seed),
            (STABLE_MODEL, false, args.seed + 1),
        ] {
            let mut sim = Simulation::new(seed, args.days, args.per_hour);
            sim.model = model;
            sim.drifting = drifting;
            sim.loaded = Some(loaded.clone());
            let gen_url = url.clone();
            std::thread::spawn(move || {
                if let Err(e) = sim.run(&gen_url) {
                    tracing::error!(error = %format!("{e:#}"), model, "demo generator stopped");
                }
            });
        }
        drop(loaded);
        let credit_url = url.clone();
        let credit_seed = args.seed + 2;
        std::thread::spawn(move || {
            // Both senders answer or are dropped (a generator that stopped): no wait forever.
            let ready = move || while history_in.recv().is_ok() {};
            if let Err(e) = crate::credit_demo::run(&credit_url, credit_seed, ready) {
                tracing::error!(error = %format!("{e:#}"), model = crate::credit_demo::MODEL, "demo generator stopped");
            }
        });
        modelwatch_server::serve(listener, state, crate::serve::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// A demo model's API (`{url}/v1/models/{model}`), called the way a user's code would.
pub(crate) struct ModelApi {
    pub(crate) client: reqwest::blocking::Client,
    pub(crate) base: String,
}

impl ModelApi {
    pub(crate) fn new(url: &str, model: &str) -> anyhow::Result<ModelApi> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(ModelApi {
            client,
            base: format!("{url}/v1/models/{model}"),
        })
    }

    /// `method` on `path` (under the model) with `body`; an error unless it succeeds.
    pub(crate) fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: String,
    ) -> anyhow::Result<()> {
        let base = &self.base;
        let r = self
            .client
            .request(method, format!("{base}{path}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .with_context(|| format!("posting to {base}{path}"))?;
        if !r.status().is_success() {
            anyhow::bail!("{path}: {} {}", r.status(), r.text().unwrap_or_default());
        }
        Ok(())
    }

    /// `rows` posted to `path` as JSON arrays of at most 5,000 (none for no rows).
    /// Creates the alert rules through the API like a user's; a rule already there (the demo
    /// started again on the same data directory) is kept.
    pub(crate) fn create_rules(&self, rules: &[Value]) -> anyhow::Result<()> {
        let base = &self.base;
        for rule in rules {
            let r = self
                .client
                .post(format!("{base}/rules"))
                .header("content-type", "application/json")
                .body(rule.to_string())
                .send()
                .with_context(|| format!("posting to {base}/rules"))?;
            if !r.status().is_success() && r.status() != reqwest::StatusCode::CONFLICT {
                anyhow::bail!("/rules: {} {}", r.status(), r.text().unwrap_or_default());
            }
        }
        Ok(())
    }

    pub(crate) fn post(&self, path: &str, rows: &[Value]) -> anyhow::Result<()> {
        for chunk in rows.chunks(5_000) {
            let body = Value::Array(chunk.to_vec()).to_string();
            self.send(reqwest::Method::POST, path, "application/json", body)?;
        }
        Ok(())
    }
}

/// The alert rules the demo creates on each model with `POST /v1/models/{model}/rules`, the
/// way a user would: examples of rules that name the decision they call for.
///
/// They are honest about the simulation: `fraud-demo`'s accuracy and F1 fall 15 % or more
/// under the reference's in the last days (significantly, on thousands of labels), and two of its four
/// features (`amount`, `country`) drift in every recent hour; `churn-demo`'s accuracy stays
/// within a few percent of its reference, none of its features drift, alone or together, and
/// ADWIN flags no change in its error stream (its rule watches three days, as the drifting
/// model's errors climb over the last three or four).
pub fn rules() -> Vec<Value> {
    vec![
        json!({
            "name": "accuracy-below-reference",
            "description": "accuracy of the day more than 10 % under the reference's, significantly",
            "signal": "accuracy",
            "condition": {"kind": "baseline", "direction": "below", "relative": 0.1},
            "window": "1d",
            "for": "20s",
            "decision": "retrain",
            "severity": "critical",
        }),
        json!({
            "name": "f1-below-reference",
            "description": "F1 of the day more than 10 % under the reference's, significantly: the alert lists its likely causes",
            "signal": "f1",
            "condition": {"kind": "baseline", "direction": "below", "relative": 0.1},
            "window": "1d",
            "decision": "retrain",
            "severity": "critical",
        }),
        json!({
            "name": "unfair-to-a-group",
            "description": "one sex cleared at under four fifths of the other's rate in the day (judged on a day of at least 1,000 rows: just after midnight, the last whole day)",
            "signal": "fairness:demographic_parity_ratio:tag:sex",
            "condition": {"kind": "threshold", "op": "<", "value": 0.8},
            "window": "1d",
            // A ratio of two rates has no interval in the rule: on the few dozen rows of the
            // day's first minutes it crosses 0.8 by chance (churn-demo: 0.75 at 00:10 UTC).
            // With this floor the rule judges the newest day with enough rows behind it.
            "min_sample": 1000,
            "decision": "review",
            "severity": "warning",
        }),
        json!({
            "name": "latency-slo-burn",
            "description": "the latency objective (99 % under 50 ms) burning its 30-day budget 14.4 times too fast in the hour: 2 % of the budget gone in an hour (SRE workbook)",
            "signal": "slo_burn_rate",
            "condition": {"kind": "threshold", "op": ">", "value": 14.4},
            "window": "1h",
            "decision": "rollback",
            "severity": "critical",
        }),
        json!({
            "name": "concept-changed",
            "description": "the relation between inputs and outcome changed: ADWIN flagged a change in the error stream in the last three days",
            "signal": "concept:adwin",
            "condition": {"kind": "rolling_mean", "windows": 3, "op": ">", "value": 0.0},
            "window": "1d",
            "min_sample": 300,
            "decision": "retrain",
            "severity": "warning",
        }),
        json!({
            "name": "inputs-drifted-together",
            "description": "the features' joint distribution left the reference's band (PCA reconstruction error) in the day",
            "signal": "multivariate_drift",
            "condition": {"kind": "threshold", "op": ">", "value": 0.5},
            "window": "1d",
            "min_sample": 500,
            "decision": "review",
            "severity": "warning",
        }),
        json!({
            "name": "unusual-inputs",
            "description": "more than 5 % of the day's rows unlike the reference (1 % of its own rows are)",
            "signal": "outlier_rate",
            "condition": {"kind": "threshold", "op": ">", "value": 0.05},
            "window": "1d",
            // A day of 500 rows at least: minutes after midnight UTC, a handful of rows would
            // make 1 % look like 5 % on the healthy model; the previous day is read instead.
            "min_sample": 500,
            "decision": "review",
            "severity": "warning",
        }),
        json!({
            "name": "client-probing",
            "description": "a client sends many rows scored at the decision threshold",
            "signal": "probing",
            "condition": {"kind": "threshold", "op": ">", "value": 0.0},
            "window": "1d",
            "min_sample": 500,
            "decision": "review",
            "severity": "warning",
        }),
        json!({
            "name": "inputs-drifted",
            "description": "more than a quarter of the features drifted from the reference in the hour",
            "signal": "drift_share",
            "condition": {"kind": "threshold", "op": ">", "value": 0.25},
            "window": "1h",
            "keep_firing_for": "30m",
            "decision": "review",
            "severity": "warning",
        }),
        json!({
            "name": "inputs-told-apart",
            "description": "a classifier tells the day's inputs from the reference's (domain-classifier ROC AUC above 0.65, NannyML's default)",
            "signal": "domain_classifier_auc",
            "condition": {"kind": "threshold", "op": ">", "value": 0.65},
            "window": "1d",
            "decision": "review",
            "severity": "warning",
        }),
    ]
}

/// In each of the drifting model's last 30 hours of history (40 an hour), and live (2 a tick),
/// client `scraper-7` sends near-duplicate rows scored within 0.05 under the decision threshold
/// (someone probing for the boundary): the outliers view flags it. Built without the
/// generator, so the rest of the simulated traffic is unchanged; never labelled.
fn probes(start: i64, hours_ago: i64) -> Vec<Value> {
    (0..40i64)
        .map(|i| probe(format!("probe-{hours_ago}-{i}"), start + (i * 89) % 3600, i))
        .collect()
}

fn probe(id: String, ts: i64, i: i64) -> Value {
    // Just under the threshold: each probe is answered "not flagged".
    let score = 0.451 + 0.0024 * (i % 20) as f64;
    json!({
        "request_id": id,
        "timestamp": modelwatch_core::Timestamp::from_secs(ts).to_rfc3339(),
        "model_version": "v1",
        "features": {"amount": 180.0 + (i % 20) as f64, "age": 41.0, "country": "DE", "device": "desktop"},
        "prediction": u8::from(score >= 0.5),
        "score": score,
        "latency_ms": 12.0,
        // A man's, answered "not flagged" (the favourable outcome): the fairness view's groups
        // stay F and M, and the probes widen their gap rather than dilute it.
        "tags": {"channel": "api", "client": "scraper-7", "sex": "M"},
    })
}

/// Hours of label delay: predictions younger than this have no label at first.
const LABEL_DELAY_HOURS: i64 = 6;

struct Simulation {
    model: &'static str,
    /// False: the data stays like the reference (no drift, no decay).
    drifting: bool,
    rng: StdRng,
    days: u32,
    per_hour: u32,
    next_id: u64,
    /// Labels not sent yet: (event time in seconds, request id, label).
    pending: Vec<(i64, String, u8)>,
    /// Shadow predictions of the challenger `v3` not sent yet (drifting model only).
    shadows: Vec<Value>,
    /// Told (dropped) once the history is loaded.
    loaded: Option<std::sync::mpsc::Sender<()>>,
}

/// The shadow challenger's version on the drifting demo model.
pub const SHADOW_VERSION: &str = "v3";

fn normal(rng: &mut StdRng) -> f64 {
    // Box-Muller: two uniforms, one standard normal.
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One simulated request at drift level `d` (0: like the training data, 1: fully drifted).
struct Row {
    features: Value,
    /// The model's exact per-feature contributions to its log-odds (what SHAP gives for this
    /// linear model): weight × (value − the training data's mean), so they sum to the logit
    /// minus its training mean.
    explanations: Value,
    score: f64,
    label: u8,
    latency_ms: f64,
    error: bool,
}

impl Simulation {
    fn new(seed: u64, days: u32, per_hour: u32) -> Self {
        Simulation {
            model: MODEL,
            drifting: true,
            rng: StdRng::seed_from_u64(seed),
            days: days.max(1),
            per_hour: per_hour.max(1),
            next_id: 0,
            pending: Vec::new(),
            shadows: Vec::new(),
            loaded: None,
        }
    }

    fn row(&mut self, d: f64) -> Row {
        let r = &mut self.rng;
        // amount: log-normal, drifting upward.
        let log_amount = 3.5 + 0.9 * normal(r) + 0.9 * d;
        let amount = (log_amount.exp() * 100.0).round() / 100.0;
        let age = (40.0 + 12.0 * normal(r)).clamp(18.0, 90.0).round();
        let countries = ["DE", "FR", "US", "GB", "ES"];
        let country = if r.random::<f64>() < 0.25 * d {
            "BR" // unseen in training
        } else if r.random::<f64>() < 0.3 * d {
            "US"
        } else {
            countries[r.random_range(0..countries.len())]
        };
        let device = if r.random::<f64>() < 0.6 {
            "mobile"
        } else {
            "desktop"
        };
        let z_amount = log_amount - 3.5;
        let z_age = (age - 40.0) / 12.0;
        let country_effect = match country {
            "US" => 0.4,
            "BR" => 0.8,
            _ => 0.0,
        };
        let model_logit = -0.6 + 1.8 * z_amount - 0.7 * z_age + country_effect;
        // In the training data z_amount and z_age average 0 and the country effect 0.08 (US is
        // one country in five); the score is sigmoid(1.6 × logit).
        let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
        let explanations = json!({
            "amount": round(1.6 * 1.8 * z_amount),
            "age": round(1.6 * -0.7 * z_age),
            "country": round(1.6 * (country_effect - 0.08)),
            "device": 0.0,
        });
        // What the model does not know: the drift of `amount` is prices rising, and the risk
        // follows the amount before the rise, so the model reads drifted amounts as riskier
        // than they are and flags more and more ordinary payments: the drift drives the drop
        // (F1 and accuracy), most on the large amounts. (`hidden` is still drawn, so that the
        // rows keep the random stream they had.)
        let _hidden = normal(r);
        let risk_amount = z_amount - 1.2 * d;
        let true_logit = model_logit - 1.8 * (z_amount - risk_amount);
        let label = u8::from(r.random::<f64>() < sigmoid(true_logit * 1.6));
        let score = sigmoid(model_logit * 1.6).clamp(0.0, 1.0);
        // Latency regresses with the drift: about 16 ms typically at first, half the requests
        // over 50 ms once fully drifted (the latency objective's burn rate pages).
        let latency_ms =
            ((2.8 + 0.35 * normal(r)).exp() * (1.0 + 0.8 * d + 1.2 * d * d) * 10.0).round() / 10.0;
        let error = r.random::<f64>() < 0.004 + 0.02 * d;
        Row {
            features: json!({
                "amount": amount, "age": age, "country": country, "device": device,
            }),
            explanations,
            score: (score * 10_000.0).round() / 10_000.0,
            label,
            latency_ms,
            error,
        }
    }

    fn reference(&mut self) -> String {
        let mut out = String::new();
        for _ in 0..3_000 {
            let r = self.row(0.0);
            let line = json!({
                "features": r.features,
                "prediction": u8::from(r.score >= 0.5),
                "score": r.score,
                "label": r.label,
                "explanations": r.explanations,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }

    /// The predictions of one hour of history, `hours_ago` before `now`.
    fn hour(&mut self, now: i64, hours_ago: i64, total_hours: i64) -> Vec<Value> {
        let progress = 1.0 - hours_ago as f64 / total_hours as f64;
        // Calm for the first half, then drifting faster and faster.
        let d = if self.drifting {
            ((progress - 0.45) / 0.55).clamp(0.0, 1.0).powf(1.3)
        } else {
            0.0
        };
        let start = now - hours_ago * 3600;
        // Daily traffic cycle.
        let hour_of_day = (start.rem_euclid(86_400)) as f64 / 3600.0;
        let volume = f64::from(self.per_hour)
            * (1.0 + 0.35 * ((hour_of_day - 15.0) / 24.0 * std::f64::consts::TAU).cos());
        let n = volume.round().max(1.0) as usize;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let ts = start + self.rng.random_range(0..3600);
            out.push(self.event(ts, d, progress));
        }
        if self.drifting && hours_ago <= 30 {
            out.extend(probes(start, hours_ago));
        }
        out
    }

    fn event(&mut self, ts: i64, d: f64, progress: f64) -> Value {
        let r = self.row(d);
        self.next_id += 1;
        let id = format!("demo-{}", self.next_id);
        let v2 = progress > 0.66 && self.rng.random::<f64>() < 0.3;
        let version = if v2 { "v2" } else { "v1" };
        let mut score = r.score;
        if v2 {
            // v2 was retrained on recent data: it knows a little of the hidden cause.
            let y = f64::from(r.label);
            score = (0.8 * score + 0.2 * y).clamp(0.0, 1.0);
        }
        let time = modelwatch_core::Timestamp::from_secs(ts).to_rfc3339();
        let mut ev = json!({
            "request_id": id, "timestamp": time, "model_version": version,
            "features": r.features, "latency_ms": r.latency_ms,
            "tags": {"channel": if ts % 3 == 0 { "api" } else { "web" }},
        });
        // One event in 25 is exploration traffic (the feedback view compares it with the
        // rest); chosen by time, not by the generator, so the simulated data is unchanged.
        if ts % 25 == 0 {
            ev["tags"]["exploration"] = json!("true");
        }
        // The protected attribute, from the id (not the generator, whose stream stays as it
        // was); a drifting model's scores for women creep up, so they are flagged more often.
        // Strong enough that the last complete day crosses the four-fifths rule whatever the
        // time of day the demo starts (that day's drift is weakest just before midnight UTC).
        let female = (self.next_id * 7919) % 100 < 48;
        ev["tags"]["client"] = json!(format!("app-{}", self.next_id % 12));
        ev["tags"]["sex"] = json!(if female { "F" } else { "M" });
        if female {
            score = (score + 0.5 * d).min(1.0);
        }
        if self.drifting {
            // What the call cost (a feature store lookup and the scoring; v2 is the bigger
            // model), from the version, not the generator.
            ev["cost"] = json!(if v2 { 0.0034 } else { 0.0021 });
        }
        if r.error {
            ev["error"] = json!("upstream timeout");
        } else {
            ev["prediction"] = json!(u8::from(score >= 0.5));
            ev["score"] = json!((score * 10_000.0).round() / 10_000.0);
            ev["explanations"] = r.explanations.clone();
            if self.drifting {
                // The challenger knows more of the hidden cause than either served version.
                // Computed from the row, without drawing from the generator, so that the
                // simulated traffic is the same with or without it.
                let y = f64::from(r.label);
                let shadow = ((0.65 * r.score + 0.35 * y) * 10_000.0).round() / 10_000.0;
                self.shadows.push(json!({
                    "request_id": id, "timestamp": time, "model_version": SHADOW_VERSION,
                    "role": "shadow", "features": r.features,
                    "prediction": u8::from(shadow >= 0.5), "score": shadow,
                }));
            }
            self.pending.push((ts, id, r.label));
        }
        ev
    }

    /// Labels of every pending prediction older than `cutoff` (seconds).
    fn due_labels(&mut self, cutoff: i64) -> Vec<Value> {
        let (due, keep): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| p.0 <= cutoff);
        self.pending = keep;
        due.into_iter()
            .map(|(_, id, label)| json!({"request_id": id, "label": label}))
            .collect()
    }

    fn run(mut self, url: &str) -> anyhow::Result<()> {
        let api = ModelApi::new(url, self.model)?;
        let send = |method, path: &str, ct: &str, body| api.send(method, path, ct, body);
        let post = |path: &str, rows: &[Value]| api.post(path, rows);
        api.create_rules(&rules())?;
        // The reference first: drift needs it, and its labels give the baseline.
        let reference = self.reference();
        send(
            reqwest::Method::PUT,
            "/reference",
            "application/x-ndjson",
            reference,
        )?;
        // The protected attribute and the favourable outcome (not flagged), once the model
        // exists.
        send(
            reqwest::Method::PUT,
            "/fairness/settings",
            "application/json",
            json!({"protected": ["tag:sex"], "favourable": 0}).to_string(),
        )?;
        // The latency objective, and a cost per prediction for the events that carry none
        // (churn-demo's: its predictions are priced by the rate; fraud-demo's carry their own).
        send(
            reqwest::Method::PUT,
            "/service-levels/settings",
            "application/json",
            json!({"cost_per_prediction": 0.0008,
                   "latency_slo": {"objective": 0.99, "threshold_ms": 50}})
            .to_string(),
        )?;
        let now = modelwatch_core::Timestamp::now().micros() / 1_000_000;
        // History, oldest first, half a day per request.
        let total = i64::from(self.days) * 24;
        let mut batch = Vec::new();
        for hours_ago in (1..=total).rev() {
            batch.extend(self.hour(now, hours_ago, total));
            batch.append(&mut self.shadows);
            if hours_ago % 12 == 1 {
                post("/predictions", &batch)?;
                batch.clear();
            }
        }
        post("/predictions", &batch)?;
        let labels = self.due_labels(now - LABEL_DELAY_HOURS * 3600);
        post("/labels", &labels)?;
        tracing::info!(
            predictions = self.next_id,
            labels = labels.len(),
            "demo history loaded"
        );
        self.loaded = None;
        // Live: new predictions every few seconds; the late labels catch up, half an hour of
        // event time per tick.
        let mut label_cutoff = now - LABEL_DELAY_HOURS * 3600;
        loop {
            std::thread::sleep(Duration::from_secs(3));
            let t = modelwatch_core::Timestamp::now().micros() / 1_000_000;
            let d = if self.drifting { 1.0 } else { 0.0 };
            let mut live: Vec<Value> = (0..5).map(|_| self.event(t, d, 1.0)).collect();
            if self.drifting {
                live.extend((0..2).map(|i| probe(format!("probe-live-{t}-{i}"), t, t + i)));
            }
            live.append(&mut self.shadows);
            post("/predictions", &live)?;
            label_cutoff = (label_cutoff + 1800).min(t - 30);
            let labels = self.due_labels(label_cutoff);
            post("/labels", &labels)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_rules_are_valid_rules() {
        for r in rules() {
            modelwatch_alerts::RuleSpec::from_json(r)
                .unwrap()
                .validate(MODEL, modelwatch_alerts::rule::Origin::Api, &[])
                .unwrap();
        }
    }

    #[test]
    fn the_attributions_add_up_to_the_score_and_amount_drives_more_as_it_drifts() {
        let mut sim = Simulation::new(3, 7, 100);
        let mean_abs = |sim: &mut Simulation, d: f64, f: &str| {
            let rows: Vec<Row> = (0..4_000).map(|_| sim.row(d)).collect();
            for r in &rows {
                let e = r.explanations.as_object().unwrap();
                let logit: f64 =
                    e.values().map(|v| v.as_f64().unwrap()).sum::<f64>() + 1.6 * (-0.6 + 0.08);
                // Both rounded to 4 decimals.
                assert!((sigmoid(logit) - r.score).abs() < 1e-3, "{e:?} {}", r.score);
            }
            rows.iter()
                .map(|r| r.explanations[f].as_f64().unwrap().abs())
                .sum::<f64>()
                / rows.len() as f64
        };
        let (a0, a1) = (
            mean_abs(&mut sim, 0.0, "amount"),
            mean_abs(&mut sim, 1.0, "amount"),
        );
        assert!(a1 > a0 * 1.3, "amount drives more: {a0} -> {a1}");
    }

    #[test]
    fn drift_raises_amounts_and_lowers_agreement() {
        let mut sim = Simulation::new(1, 7, 100);
        let stats = |sim: &mut Simulation, d: f64| {
            let rows: Vec<Row> = (0..4_000).map(|_| sim.row(d)).collect();
            let amount = rows
                .iter()
                .map(|r| r.features["amount"].as_f64().unwrap().ln())
                .sum::<f64>()
                / rows.len() as f64;
            let accuracy = rows
                .iter()
                .filter(|r| u8::from(r.score >= 0.5) == r.label)
                .count() as f64
                / rows.len() as f64;
            (amount, accuracy)
        };
        let (a0, acc0) = stats(&mut sim, 0.0);
        let (a1, acc1) = stats(&mut sim, 1.0);
        assert!(a1 > a0 + 0.5, "amount drifts up: {a0} -> {a1}");
        assert!(acc1 < acc0 - 0.1, "accuracy decays: {acc0} -> {acc1}");
    }
}
