//! `GET /v1/models/{model}/drift` and `/quality` against the real binary: a CSV reference sent
//! over HTTP, three days of predictions, the third shifted.

use crate::common;

use common::Server;
use serde_json::{json, Value};

const COUNTRIES: [&str; 3] = ["DE", "FR", "IT"];
const DAYS: [&str; 3] = ["2026-11-20", "2026-11-21", "2026-11-22"];

/// Row `i` of `n`: age and income spread evenly (two samples never differ by chance).
fn age_income(i: usize, n: usize) -> (f64, f64) {
    let u = (i as f64 + 0.5) / n as f64;
    let v = ((i * 7919) % n) as f64 / n as f64;
    (20.0 + 60.0 * u, 1000.0 + 4000.0 * v)
}

fn reference_csv() -> String {
    let mut s = String::from("age,country,income,prediction,score\n");
    for i in 0..600 {
        let (age, income) = age_income(i, 600);
        let score = (i as f64 + 0.5) / 600.0;
        s.push_str(&format!(
            "{age},{},{income},{},{score}\n",
            COUNTRIES[i % 3],
            i % 2
        ));
    }
    s
}

/// Day 3: age +15, 10% unseen country `XX`, 30% null income.
fn predictions(day: usize) -> String {
    let rows: Vec<Value> = (0..300)
        .map(|i| {
            let (mut age, income) = age_income(i, 300);
            let mut country = COUNTRIES[i % 3];
            let mut income = json!(income);
            if day == 2 {
                age += 15.0;
                if i % 10 == 0 {
                    country = "XX";
                }
                if i % 10 < 3 {
                    income = Value::Null;
                }
            }
            json!({
                "request_id": format!("d{day}-{i}"),
                "timestamp": format!("{}T{:02}:{:02}:00Z", DAYS[day], i / 60, i % 60),
                "model_version": "v1",
                "features": {"age": age, "country": country, "income": income},
                "prediction": i % 2,
                "score": (i as f64 + 0.5) / 300.0,
            })
        })
        .collect();
    serde_json::to_string(&rows).unwrap()
}

fn put_reference(s: &Server, model: &str) {
    s.put_reference(model, "", "text/csv", reference_csv());
}

fn drifted(w: &Value) -> Vec<&str> {
    w["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["drifted"] == true)
        .map(|f| f["feature"].as_str().unwrap())
        .collect()
}

#[test]
fn drift_and_quality_flag_the_shifted_day() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    put_reference(&s, "fraud");
    for day in 0..3 {
        let (status, out) = s.post("/v1/models/fraud/predictions", &predictions(day));
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["accepted"], 300, "{out}");
    }

    let (status, d) = s.get("/v1/models/fraud/drift?window=1d");
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["model"], "fraud");
    assert_eq!(d["window"], "1d");
    assert_eq!(d["reference"]["rows"], 600);
    assert_eq!(d["correction"], "benjamini_hochberg");
    let windows = d["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0]["start"], "2026-11-20T00:00:00Z");
    assert_eq!(windows[0]["end"], "2026-11-21T00:00:00Z");
    assert_eq!(windows[0]["rows"], 300);
    assert!(drifted(&windows[0]).is_empty(), "{}", windows[0]);
    assert!(drifted(&windows[1]).is_empty(), "{}", windows[1]);
    assert_eq!(drifted(&windows[2]), ["age", "country"]);
    assert_eq!(windows[2]["dataset_drift"], true);
    let age = &windows[2]["features"][0];
    assert_eq!(age["method"], "ks");
    assert!(age["p_value_adjusted"].as_f64().unwrap() < 0.05, "{age}");
    assert_eq!(d["prediction"]["columns"], json!(["prediction", "score"]));
    assert_eq!(d["prediction"]["windows"].as_array().unwrap().len(), 3);

    let (status, q) = s.get("/v1/models/fraud/quality");
    assert_eq!(status, 200, "{q}");
    let windows = q["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3, "window defaults to 1d");
    assert_eq!(windows[0]["flags"], json!([]));
    assert_eq!(windows[1]["flags"], json!([]));
    assert_eq!(
        windows[2]["flags"],
        json!([
            "age:out_of_range",
            "country:unseen_categories",
            "income:null_rate"
        ])
    );
    let country = &windows[2]["features"][1];
    assert_eq!(country["unseen_categories"]["top"], json!([["XX", 30]]));
    assert_eq!(q["thresholds"]["null_rate_margin"], 0.1);

    // Settings of one request: no correction, PSI for age, a stricter alpha.
    let (status, d) = s.get("/v1/models/fraud/drift?window=1d&correction=none&alpha=0.01&method=age:psi,country:jensen_shannon&drift_share=0.9");
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["correction"], "none");
    assert_eq!(d["alpha"], 0.01);
    assert_eq!(d["drift_share"], 0.9);
    let day3 = &d["windows"][2];
    assert_eq!(day3["features"][0]["method"], "psi");
    assert_eq!(day3["features"][1]["method"], "jensen_shannon");
    assert_eq!(
        day3["features"][2]["method"], "ks",
        "income keeps the automatic choice"
    );
    let income = &day3["features"][2];
    assert_eq!(
        income["p_value_adjusted"], income["p_value"],
        "no correction"
    );
    // Two of three drifted is under the 0.9 share asked for.
    assert_eq!(day3["dataset_drift"], false, "{day3}");
    for (query, names) in [
        ("correction=holm", "correction"),
        ("alpha=2", "alpha"),
        ("drift_share=0", "drift_share"),
        ("method=age", "method"),
        ("method=age:t_test", "t_test"),
    ] {
        let (status, out) = s.get(&format!("/v1/models/fraud/drift?{query}"));
        assert_eq!(status, 400, "{query}: {out}");
        let msg = out["error"]["message"].as_str().unwrap();
        assert!(msg.contains(names), "{query}: {msg}");
    }
    let (status, out) = s.get("/v1/models/fraud/quality?alpha=0.1");
    assert_eq!(status, 400, "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("drift settings"));

    // A segment and a range narrow the events.
    let (status, q) = s.get(
        "/v1/models/fraud/quality?segment=country:DE&from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z",
    );
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["windows"].as_array().unwrap().len(), 1);
    assert_eq!(q["windows"][0]["rows"], 100);
}

#[test]
fn a_model_without_reference_gets_409_and_bad_params_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let (status, out) = s.post("/v1/models/noref/predictions", &predictions(0));
    assert_eq!(status, 200, "{out}");
    for path in ["drift", "quality"] {
        let (status, out) = s.get(&format!("/v1/models/noref/{path}"));
        assert_eq!(status, 409, "{out}");
        assert_eq!(out["error"]["code"], "no_reference");
        let msg = out["error"]["message"].as_str().unwrap();
        assert!(msg.contains("PUT /v1/models/noref/reference"), "{msg}");
    }
    let (status, out) = s.get("/v1/models/noref/drift?window=fortnight");
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["error"]["code"], "invalid_query");
    let (status, _) = s.get("/v1/models/noref/quality?segment=country");
    assert_eq!(status, 400);
    let (status, _) = s.get("/v1/models/noref/drift?bogus=1");
    assert_eq!(status, 400);
    let (status, _) = s.get("/v1/models/nobody/drift");
    assert_eq!(status, 404);
}

/// Day 1 predicts like the reference (half 0, half 1); on day 2 the model's outputs have
/// taken over (19 in 20 predictions are 1). Every tenth event is exploration traffic (tagged
/// `exploration=true`), labelled like the others; its accuracy is measured on its own.
#[test]
fn feedback_flags_a_collapse_of_prediction_diversity_and_measures_exploration() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    put_reference(&s, "loop");
    for (day, date) in DAYS.iter().enumerate().take(2) {
        let rows: Vec<Value> = (0..300)
            .map(|i| {
                let explore = i % 10 == 0;
                let pred = if day == 0 || explore {
                    i % 2
                } else {
                    usize::from(i % 20 != 0)
                };
                json!({
                    "request_id": format!("d{day}-{i}"),
                    "timestamp": format!("{date}T{:02}:{:02}:00Z", i / 60, i % 60),
                    "features": {"age": 30.0, "country": "DE", "income": 2000.0},
                    "prediction": pred,
                    "tags": {"exploration": if explore { "true" } else { "false" }},
                })
            })
            .collect();
        let (status, out) = s.post(
            "/v1/models/loop/predictions",
            &serde_json::to_string(&rows).unwrap(),
        );
        assert_eq!(status, 200, "{out}");
        // Truth: i % 2, so exploration (predicting i % 2) is always right.
        let labels: Vec<Value> = (0..300)
            .map(|i| json!({"request_id": format!("d{day}-{i}"), "label": i % 2, "timestamp": format!("{date}T23:00:00Z")}))
            .collect();
        let (status, out) = s.post(
            "/v1/models/loop/labels",
            &serde_json::to_string(&labels).unwrap(),
        );
        assert_eq!(status, 200, "{out}");
    }
    let (status, f) = s.get("/v1/models/loop/feedback?window=1d");
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["exploration_tag"], "exploration=true");
    assert!(
        (f["reference"]["entropy_bits"].as_f64().unwrap() - 1.0).abs() < 1e-9,
        "{f}"
    );
    let w = f["windows"].as_array().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0]["collapsed"], false, "{}", w[0]);
    assert_eq!(w[1]["collapsed"], true, "{}", w[1]);
    assert_eq!(w[1]["top_class"], "1");
    assert!(w[1]["entropy_change"].as_f64().unwrap() < -0.25, "{}", w[1]);
    assert!(
        w[1]["top_class_share_change"].as_f64().unwrap() >= 0.1,
        "{}",
        w[1]
    );
    for day in w {
        let e = &day["exploration"];
        assert_eq!(e["predictions"], 30, "{day}");
        assert!((e["share"].as_f64().unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(e["labelled"], 30);
        assert_eq!(e["metrics"]["accuracy"]["value"], 1.0, "{e}");
    }
    // On day 2 the others always predict 1: right for the 150 odd i of their 270.
    let others = w[1]["exploration"]["others"]["accuracy"]["value"]
        .as_f64()
        .unwrap();
    assert!((others - 150.0 / 270.0).abs() < 1e-12, "{others}");
    let (status, out) = s.get("/v1/models/loop/feedback?exploration=nonsense");
    assert_eq!(status, 400, "{out}");
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("name=value"));
}

/// The feedback report of whole hours comes from the per-hour state (the exploration split is
/// kept beside each hour's accumulator); a `to` off the hour sends the same question to the
/// raw events. Both answer alike: predictions aggregated first, then labels added as deltas,
/// in hours holding both sides (whose split the labels leave unknown) and in an hour without
/// exploration traffic. Predictions carry no score, so every number is a count's and the
/// answers are equal to the bit.
#[test]
fn feedback_from_the_hours_equals_the_raw_events_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    put_reference(&s, "loop");
    let mut explore_per_day = [0u64; 2];
    let mut labels = Vec::new();
    let mut rows = Vec::new();
    for (day, date) in DAYS.iter().enumerate().take(2) {
        for hour in 0..3 {
            for i in 0..200 {
                // Day 2's last hour has no exploration traffic.
                let tag = match i % 4 {
                    0 if !(day == 1 && hour == 2) => Some("true"),
                    1 => Some("false"),
                    _ => None,
                };
                let id = format!("d{day}-h{hour}-{i}");
                let mut row = json!({
                    "request_id": id,
                    "timestamp": format!("{date}T{hour:02}:{:02}:{:02}Z", i / 60, i % 60),
                    "features": {"age": 30.0, "country": "DE", "income": 2000.0},
                    "prediction": usize::from(i % 3 != 0),
                });
                if let Some(v) = tag {
                    row["tags"] = json!({"exploration": v});
                }
                explore_per_day[day] += u64::from(tag == Some("true"));
                if i % 4 != 3 {
                    labels.push(json!({"request_id": id, "label": i % 2,
                        "timestamp": format!("{date}T23:00:00Z")}));
                }
                rows.push(row);
            }
        }
    }
    s.post_ok("/v1/models/loop/predictions", rows);
    // A metrics query refreshes the hours: the labels then come as deltas of aggregated hours.
    s.get_ok("/v1/models/loop/metrics?window=1h");
    s.post_ok("/v1/models/loop/labels", labels);
    for window in ["1h", "1d"] {
        let hours = s.get_ok(&format!("/v1/models/loop/feedback?window={window}"));
        let events = s.get_ok(&format!(
            "/v1/models/loop/feedback?window={window}&to=2026-11-23T00:00:00.5Z"
        ));
        assert_eq!(hours, events, "window {window}");
    }
    let f = s.get_ok("/v1/models/loop/feedback?window=1d");
    let w = f["windows"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{f}");
    for (day, n) in explore_per_day.iter().enumerate() {
        let e = &w[day]["exploration"];
        assert_eq!(e["predictions"], *n, "{e}");
        assert!(e["others"]["accuracy"]["n"].as_u64().unwrap() > 0, "{e}");
    }
}
