//! Attributions through the real binary: predictions carrying `explanations` (a bad one refused
//! naming its row and field, the rows beside it kept), a reference with `explanation.<feature>`
//! columns, and `GET /v1/models/{model}/attributions` per day: ranks, shares and the KS drift of
//! each feature's attributions against the reference, quiet on a day like the reference and
//! flagged on the day the model's driving feature changed.

use crate::common;

use common::Server;
use serde_json::{json, Value};

/// The attribution of `amount` and `country` of row `i`: on a normal day amount drives the
/// model (|0.3..0.5|), country barely (|0..0.08|); on a shifted day the other way round.
pub fn attribution(i: usize, shifted: bool) -> (f64, f64) {
    let sign = if i.is_multiple_of(2) { 1.0 } else { -1.0 };
    let big = sign * (0.3 + 0.02 * (i % 11) as f64);
    let small = -sign * 0.01 * (i % 9) as f64;
    if shifted {
        (small, big)
    } else {
        (big, small)
    }
}

/// 240 reference rows with attributions, as CSV (`explanation.<feature>` columns).
pub fn reference_csv() -> String {
    let mut csv =
        String::from("amount,country,prediction,explanation.amount,explanation.country\n");
    for i in 0..240 {
        let (a, c) = attribution(i, false);
        let country = ["DE", "FR", "IT"][i % 3];
        csv.push_str(&format!("{},{country},{},{a},{c}\n", 10 + i, i % 2));
    }
    csv
}

/// 200 predictions of `day`, attributions shifted or not.
pub fn day(day: &str, shifted: bool) -> Vec<Value> {
    (0..200usize)
        .map(|i| {
            let (a, c) = attribution(i * 7 + 3, shifted);
            let country = ["DE", "FR", "IT"][i % 3];
            json!({"request_id": format!("{day}-{i}"),
                "timestamp": format!("{day}T{:02}:{:02}:00Z", i % 24, i % 60),
                "features": {"amount": 10 + i, "country": country},
                "prediction": i % 2, "score": if i % 2 == 0 { 0.3 } else { 0.7 },
                "explanations": {"amount": a, "country": c}})
        })
        .collect()
}

/// `fraud` with its reference, a day like it (2026-03-02) and a shifted day (2026-03-03).
pub fn send(s: &Server, model: &str) {
    s.post_ok(
        &format!("/v1/models/{model}/predictions"),
        day("2026-03-02", false),
    );
    s.put_reference(model, "", "text/csv", reference_csv());
    s.post_ok(
        &format!("/v1/models/{model}/predictions"),
        day("2026-03-03", true),
    );
}

fn feature<'a>(w: &'a Value, name: &str) -> &'a Value {
    w["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == name)
        .unwrap_or_else(|| panic!("{name} in {w}"))
}

#[test]
fn a_bad_attribution_is_refused_naming_its_row_and_field_and_the_rows_beside_it_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let rows = r#"[
        {"request_id": "a", "prediction": 1, "explanations": {"amount": 0.3}},
        {"request_id": "b", "prediction": 1, "explanations": {"amount": "high"}},
        {"request_id": "c", "prediction": 1, "explanations": {"amount": 0.1, "country": null}},
        {"request_id": "d", "prediction": 0, "explanations": [0.1]},
        {"request_id": "e", "prediction": 0, "explanations": {"amount": -0.2}}
    ]"#;
    let (st, body) = s.post("/v1/models/fraud/predictions", rows);
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["accepted"], 2, "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    let named: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            (1, "explanations.amount"),
            (2, "explanations.country"),
            (3, "explanations")
        ],
        "{body}"
    );
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("expected a number"),
        "{body}"
    );
    // A batch of only bad rows is a 4xx, naming them the same way.
    let (st, body) = s.post(
        "/v1/models/fraud/predictions",
        r#"[{"request_id": "f", "prediction": 1, "explanations": {"amount": true}}]"#,
    );
    assert_eq!(st, 422, "{body}");
    assert_eq!(
        body["rejected"][0]["field"], "explanations.amount",
        "{body}"
    );
    // A reference whose attribution cell is not a number: that row only.
    let csv = "amount,explanation.amount\n1,0.5\n2,0.25\n3,0.125\n4,much\n";
    let out = s.put_reference("fraud", "", "text/csv", csv);
    assert_eq!(out["rows"], 3, "{out}");
    assert_eq!(out["rejected"][0]["field"], "explanations.amount", "{out}");
}

#[test]
fn attributions_rank_features_per_day_and_flag_the_day_the_driving_feature_changed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    send(&s, "fraud");
    let r = s.get_ok(
        "/v1/models/fraud/attributions?window=1d&from=2026-03-02T00:00:00Z&to=2026-03-04T00:00:00Z",
    );
    assert_eq!(r["test"], "ks", "{r}");
    let reference = &r["reference"];
    assert_eq!(reference["explained"], 240, "{r}");
    assert_eq!(feature(reference, "amount")["rank"], 1);
    let days = r["windows"].as_array().unwrap();
    assert_eq!(days.len(), 2, "{r}");
    // The day like the reference: amount first, shares as the reference's, no drift.
    let (amount, country) = (feature(&days[0], "amount"), feature(&days[0], "country"));
    assert_eq!(days[0]["explained"], 200);
    assert_eq!(
        (amount["rank"].as_u64(), country["rank"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(
        amount["share_change"].as_f64().unwrap().abs() < 0.05,
        "{amount}"
    );
    assert_eq!(amount["drift"]["drifted"], false, "{amount}");
    assert_eq!(country["drift"]["drifted"], false, "{country}");
    // The shifted day: country drives the model, both distributions moved.
    let (amount, country) = (feature(&days[1], "amount"), feature(&days[1], "country"));
    assert_eq!(
        (country["rank"].as_u64(), amount["rank"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(country["reference_rank"], 2);
    assert!(country["share_change"].as_f64().unwrap() > 0.5, "{country}");
    assert!(amount["share_change"].as_f64().unwrap() < -0.5, "{amount}");
    for f in [amount, country] {
        assert_eq!(f["drift"]["drifted"], true, "{f}");
        assert!(f["drift"]["statistic"].as_f64().unwrap() >= 0.5, "{f}");
    }
    // One version (none sent): both days together.
    let versions = r["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["explained"], 400);

    // The CSV: one row per (window, feature), per (version, feature) and the reference's.
    let (st, text, headers) = s.get_text(
        "/v1/models/fraud/attributions?window=1d&from=2026-03-02T00:00:00Z&to=2026-03-04T00:00:00Z&format=csv",
    );
    assert_eq!(st, 200, "{text}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2 * 2 + 2 + 2, "{text}");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let shifted_country = rows
        .iter()
        .find(|r| {
            r[col("window_start")].starts_with("2026-03-03") && &r[col("feature")] == "country"
        })
        .unwrap();
    assert_eq!(
        shifted_country[col("share_change")].parse::<f64>().unwrap(),
        country["share_change"].as_f64().unwrap()
    );
    assert_eq!(&shifted_country[col("drifted")], "true");

    // The model's attributions view: one of its two days moved; the ranking shown is the last
    // complete day's (the second is still filling: no event after it yet), amount first.
    let (st, page, _) = s.get_text(
        "/models/fraud/attributions?from=2026-03-02T00:00:00Z&to=2026-03-04T00:00:00Z&window=1d",
    );
    assert_eq!(st, 200, "{page}");
    assert!(
        page.contains(r#"data-feature="amount" data-rank="1" data-drifted="false""#),
        "{page}"
    );
    assert!(
        page.contains(r#"data-panel="attributions" data-windows="2" data-drifted="1""#),
        "{page}"
    );

    // Parameters the other reports refuse are refused alike; an unknown model is a 404.
    let (st, body) = s.get("/v1/models/fraud/attributions?window=3x");
    assert_eq!(st, 400, "{body}");
    let (st, body) = s.get("/v1/models/fraud/attributions?windw=1d");
    assert_eq!(st, 400, "{body}");
    let (st, body) = s.get("/v1/models/nobody/attributions");
    assert_eq!(st, 404, "{body}");
}

#[test]
fn a_model_without_attributions_answers_empty_windows_and_no_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.post_ok(
        "/v1/models/plain/predictions",
        vec![json!({"request_id": "a", "timestamp": "2026-03-02T10:00:00Z", "prediction": 1})],
    );
    let r = s.get_ok("/v1/models/plain/attributions?window=1d");
    assert_eq!(r["reference"], Value::Null, "{r}");
    assert_eq!(r["windows"], json!([]), "{r}");
}
