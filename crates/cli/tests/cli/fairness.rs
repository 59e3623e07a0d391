//! Fairness per protected attribute through the real binary: the model's setting (refused with
//! the field named when bad), and `GET /v1/models/{model}/fairness` per day with the
//! four-fifths rule crossed on the day a group's treatment worsened.

use crate::common;

use common::Server;
use serde_json::{json, Value};

/// 200 predictions a day: sex F / M alternating, region north / south. Day 1: F approved at
/// 40 %, M at 45 %; day 2: F at 20 %, M still 45 % (ratio 0.44, under four fifths). Labels
/// on every other row.
fn rows(day: &str, f_approved: usize) -> (Vec<Value>, Vec<Value>) {
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..200usize {
        let sex = if i % 2 == 0 { "F" } else { "M" };
        // The i-th row of its sex, 0..100: approved when under its rate (per hundred).
        let k = i / 2;
        let approved = if sex == "F" { k < f_approved } else { k < 45 };
        let id = format!("{day}-{i}");
        preds.push(json!({"request_id": id, "timestamp": format!("{day}T{:02}:{:02}:00Z", i % 24, i % 60),
            "features": {"sex": sex, "income": 1000 + i}, "tags": {"region": if i % 4 < 2 { "north" } else { "south" }},
            "prediction": if approved { "approved" } else { "denied" }}));
        if i % 3 != 0 {
            labels.push(
                json!({"request_id": id, "label": if k % 2 == 0 { "approved" } else { "denied" }}),
            );
        }
    }
    (preds, labels)
}

fn send(s: &Server, model: &str) {
    for (day, f) in [("2026-02-02", 40), ("2026-02-03", 20)] {
        let (p, l) = rows(day, f);
        s.post_ok(&format!("/v1/models/{model}/predictions"), p);
        s.post_ok(&format!("/v1/models/{model}/labels"), l);
    }
}

fn put_settings(s: &Server, model: &str, body: &str) -> (u16, Value) {
    s.put(
        &format!("/v1/models/{model}/fairness/settings"),
        "application/json",
        body.to_owned(),
    )
}

#[test]
fn a_bad_fairness_setting_is_refused_naming_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let (st, body) = put_settings(&s, "credit", r#"{"protected": ["sex"]}"#);
    assert_eq!(st, 404, "no such model yet: {body}");
    send(&s, "credit");
    for (bad, field) in [
        (r#"{"favourable": "approved"}"#, "`protected`"),
        (r#"{"protected": ["sex", ""]}"#, "`protected[1]`"),
        (r#"{"protected": ["sex", "tag:"]}"#, "`protected[1]`"),
        (r#"{"protected": ["sex", "sex"]}"#, "`protected[1]`"),
        (
            r#"{"protected": ["sex"], "favourable": {}}"#,
            "`favourable`",
        ),
        (
            r#"{"protected": ["sex"], "min_group_size": -3}"#,
            "`min_group_size`",
        ),
        (r#"{"protected": ["sex"], "favorable": 1}"#, "`favorable`"),
        (r#"{"protected": "#, "JSON"),
    ] {
        let (st, body) = put_settings(&s, "credit", bad);
        assert_eq!(st, 400, "{bad}: {body}");
        assert_eq!(
            body["error"]["code"], "invalid_fairness_settings",
            "{bad}: {body}"
        );
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{bad}: {msg}");
    }
    // Nothing was kept, and a report without a setting says what to do.
    let got = s.get_ok("/v1/models/credit/fairness/settings");
    assert_eq!(got["fairness"], Value::Null);
    let (st, body) = s.get("/v1/models/credit/fairness");
    assert_eq!(st, 409, "{body}");
    assert_eq!(body["error"]["code"], "fairness_unavailable");
}

#[test]
fn the_fairness_report_flags_the_four_fifths_rule_on_the_day_a_group_is_selected_less() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    send(&s, "credit");
    let (st, body) = put_settings(
        &s,
        "credit",
        r#"{"protected": ["sex", "tag:region"], "favourable": "approved", "min_group_size": 30}"#,
    );
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        s.get_ok("/v1/models/credit/fairness/settings")["fairness"],
        json!({"protected": ["sex", "tag:region"], "favourable": "approved", "min_group_size": 30})
    );
    let r = s.get_ok("/v1/models/credit/fairness?window=1d");
    assert_eq!(r["favourable"], "approved");
    let sex = &r["attributes"][0];
    assert_eq!(sex["attribute"], "sex");
    let days = sex["windows"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    let rate = |w: &Value, g: &str| -> f64 {
        let group = w["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["group"] == g)
            .unwrap();
        group["selection_rate"]["value"].as_f64().unwrap()
    };
    assert_eq!((rate(&days[0], "F"), rate(&days[0], "M")), (0.4, 0.45));
    assert_eq!((rate(&days[1], "F"), rate(&days[1], "M")), (0.2, 0.45));
    let ratio = |w: &Value| w["demographic_parity_ratio"]["value"].as_f64().unwrap();
    assert!((ratio(&days[0]) - 0.4 / 0.45).abs() < 1e-12);
    assert!((ratio(&days[1]) - 0.2 / 0.45).abs() < 1e-12);
    assert_eq!(days[0]["four_fifths_rule"], "met");
    assert_eq!(days[1]["four_fifths_rule"], "violated");
    assert_eq!(
        days[1]["demographic_parity_difference"]["between"],
        json!(["M", "F"])
    );
    let d = &days[1]["demographic_parity_difference"];
    assert!(
        d["ci_low"].as_f64().unwrap() > 0.0 && d["ci_high"].as_f64().unwrap() < 1.0,
        "{d}"
    );
    // The region is treated alike: selection depends on sex only, and both sexes are in both.
    let region = &r["attributes"][1];
    assert_eq!(region["attribute"], "tag:region");
    assert_eq!(region["windows"][0]["four_fifths_rule"], "met");
    // One version (none sent): the whole range.
    assert_eq!(sex["versions"].as_array().unwrap().len(), 1);
    // A window or range the other reports refuse is refused alike.
    let (st, body) = s.get("/v1/models/credit/fairness?window=3x");
    assert_eq!(st, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`window`"),
        "{body}"
    );
}

#[test]
fn fairness_of_a_regression_model_says_it_is_for_binary_classifiers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let preds: Vec<Value> = (0..50)
        .map(|i| {
            json!({"request_id": format!("r{i}"), "timestamp": "2026-02-02T10:00:00Z",
            "features": {"sex": if i % 2 == 0 { "F" } else { "M" }}, "prediction": 10.5 + i as f64})
        })
        .collect();
    s.post_ok("/v1/models/price/predictions", preds);
    let (st, body) = put_settings(&s, "price", r#"{"protected": ["sex"]}"#);
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.get("/v1/models/price/fairness");
    assert_eq!(st, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("binary"),
        "{body}"
    );
}

/// `?format=csv`: one row per (attribute, window, group), each number the JSON's bit for bit,
/// read by a CSV reader as pandas would.
#[test]
fn the_fairness_csv_holds_the_json_numbers_one_row_per_group_and_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    send(&s, "credit");
    let (st, body) = put_settings(
        &s,
        "credit",
        r#"{"protected": ["sex", "tag:region"], "favourable": "approved"}"#,
    );
    assert_eq!(st, 200, "{body}");
    let json = s.get_ok("/v1/models/credit/fairness?window=1d");
    let (st, text, headers) = s.get_text("/v1/models/credit/fairness?window=1d&format=csv");
    assert_eq!(st, 200, "{text}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // 2 attributes x 2 days x 2 groups.
    assert_eq!(rows.len(), 8);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut checked = 0;
    for a in json["attributes"].as_array().unwrap() {
        for w in a["windows"].as_array().unwrap() {
            for g in w["groups"].as_array().unwrap() {
                let row = rows
                    .iter()
                    .find(|r| {
                        r[col("attribute")] == *a["attribute"].as_str().unwrap()
                            && r[col("window_start")] == *w["start"].as_str().unwrap()
                            && r[col("group")] == *g["group"].as_str().unwrap()
                    })
                    .unwrap();
                let num = |name: &str| row[col(name)].parse::<f64>().ok();
                assert_eq!(num("predictions"), g["predictions"].as_f64());
                for rate in ["selection_rate", "true_positive_rate", "precision"] {
                    assert_eq!(num(rate), g[rate]["value"].as_f64(), "{rate}");
                    assert_eq!(num(&format!("{rate}_ci_low")), g[rate]["ci_low"].as_f64());
                }
                for gap in ["demographic_parity_ratio", "equalized_odds_difference"] {
                    assert_eq!(num(gap), w[gap]["value"].as_f64(), "{gap}");
                    assert_eq!(num(&format!("{gap}_ci_high")), w[gap]["ci_high"].as_f64());
                }
                assert_eq!(
                    row[col("four_fifths_rule")],
                    *w["four_fifths_rule"].as_str().unwrap()
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8);
    let (st, body) = s.get("/v1/models/credit/fairness?format=xml");
    assert_eq!(st, 400, "{body}");
}

/// `GET /metrics`: the latest window's gaps of each protected attribute, as the API has them.
#[test]
fn prometheus_exports_the_latest_windows_gaps_per_attribute() {
    let dir = tempfile::tempdir().unwrap();
    // Values of the day: the day holds both groups at the minimum size.
    let cfg = dir.path().join("modelwatch.toml");
    std::fs::write(
        &cfg,
        "[alerts]\nmetrics_window = \"1d\"\ndebounce_ms = 50\n",
    )
    .unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
        &[],
    );
    let (p1, l1) = rows("2026-02-02", 40);
    s.post_ok("/v1/models/credit/predictions", p1);
    s.post_ok("/v1/models/credit/labels", l1);
    let (st, body) = put_settings(
        &s,
        "credit",
        r#"{"protected": ["sex"], "favourable": "approved"}"#,
    );
    assert_eq!(st, 200, "{body}");
    // New predictions after the setting: the evaluation after ingest refreshes the values.
    let (p2, _) = rows("2026-02-03", 20);
    s.post_ok("/v1/models/credit/predictions", p2);
    let api = s.get_ok("/v1/models/credit/fairness?window=1d&from=2026-02-03T00:00:00Z");
    let ratio = api["attributes"][0]["windows"][0]["demographic_parity_ratio"]["value"]
        .as_f64()
        .unwrap();
    // The pass after the first day's ingest may still be the latest one: wait for the pass
    // after the second day's, whose value is the API's.
    let line = common::poll(30, || {
        let (_, text, _) = s.get_text("/metrics");
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("modelwatch_fairness{")
                    && l.contains("attribute=\"sex\"")
                    && l.contains("measure=\"demographic_parity_ratio\"")
            })
            .map(str::to_owned);
        let value = line
            .as_deref()
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        match line {
            Some(l) if value == Some(ratio) => Ok(l),
            other => Err(format!("not yet the latest day's ratio {ratio}: {other:?}")),
        }
    });
    assert!(
        line.contains("model=\"credit\"") && line.contains("window=\"1d\""),
        "{line}"
    );
}
