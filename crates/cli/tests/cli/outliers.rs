//! Outlier rows and probing through the real binary: `GET /v1/models/{m}/outliers` and the rule
//! signals `outlier_rate` and `probing`. A day with planted rows (an amount fifty times the
//! reference's largest) raises the outlier rate, fires its rule and lists those rows first with
//! `amount` named; a burst of scores at the decision threshold from one client is flagged; a
//! clean day of the same traffic stays quiet. The predictions are sent before the reference:
//! until it comes the report is a 409, then those earlier rows are scored against it.

use crate::common;

use common::{firing, poll, Server};
use serde_json::{json, Value};

const DAY: &str = "2026-01-05";

/// A uniform number in [0, 1) from (row, stream).
fn u(i: usize, k: usize) -> f64 {
    ((i * 2_654_435_761 + k * 40_503 + 17) % 10_007) as f64 / 10_007.0
}

const COUNTRIES: [&str; 3] = ["DE", "FR", "IT"];

fn reference_csv() -> String {
    let mut s = String::from("amount,age,country,score\n");
    for i in 0..2000 {
        s.push_str(&format!(
            "{:.2},{:.1},{},{:.3}\n",
            100.0 * u(i, 1),
            20.0 + 50.0 * u(i, 2),
            COUNTRIES[i % 3],
            u(i, 3)
        ));
    }
    s
}

/// 1000 ordinary rows from ten clients, scores spread over [0, 1]; `attacked` adds 40 rows with
/// an amount of 5000 and 120 rows from client `bot` scored within 0.02 of 0.5.
fn day(model: &str, attacked: bool) -> Vec<Value> {
    let ts = |i: usize| format!("{DAY}T{:02}:{:02}:{:02}Z", (i / 50) % 24, i % 60, i % 37);
    let mut rows: Vec<Value> = (0..1000usize)
        .map(|i| {
            let j = 100_000 + i;
            json!({"request_id": format!("{model}-{i}"), "timestamp": ts(i),
                "features": {"amount": 100.0 * u(j, 1), "age": 20.0 + 50.0 * u(j, 2),
                             "country": COUNTRIES[i % 3]},
                "score": u(j, 3), "prediction": u8::from(u(j, 3) >= 0.5),
                "tags": {"client": format!("c{}", i % 10)}})
        })
        .collect();
    if attacked {
        rows.extend((0..40usize).map(|i| {
            json!({"request_id": format!("planted-{i}"), "timestamp": ts(i * 25),
                "features": {"amount": 5000.0 + i as f64, "age": 20.0 + 50.0 * u(i, 2),
                             "country": COUNTRIES[i % 3]},
                "score": 0.9, "prediction": 1, "tags": {"client": "c1"}})
        }));
        rows.extend((0..120usize).map(|i| {
            let s = 0.48 + 0.04 * u(i, 5);
            json!({"request_id": format!("bot-{i}"), "timestamp": ts(500 + i),
                "features": {"amount": 100.0 * u(i, 6), "age": 20.0 + 50.0 * u(i, 7),
                             "country": "DE"},
                "score": s, "prediction": u8::from(s >= 0.5), "tags": {"client": "bot"}})
        }));
    }
    rows
}

#[test]
fn planted_outliers_and_a_probing_client_fire_and_a_clean_day_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    for (model, attacked) in [("watched", true), ("clean", false)] {
        for (name, signal, value) in [
            ("outliers", "outlier_rate", 0.03),
            ("probe", "probing", 0.0),
        ] {
            let rule = json!({"name": name, "signal": signal, "window": "1d",
                "condition": {"kind": "threshold", "op": ">", "value": value},
                "decision": "review", "severity": "warning"});
            let (st, out) = s.post(&format!("/v1/models/{model}/rules"), &rule.to_string());
            assert_eq!(st, 201, "{model} {name}: {out}");
        }
        s.post_ok(
            &format!("/v1/models/{model}/predictions"),
            day(model, attacked),
        );
    }
    // Before any reference: nothing to score against.
    let (st, out) = s.get("/v1/models/watched/outliers?window=1d");
    assert_eq!(st, 409, "{out}");
    for model in ["watched", "clean"] {
        s.put_reference(model, "", "text/csv", reference_csv());
    }

    let r = s.get_ok("/v1/models/watched/outliers?window=1d&limit=15");
    assert_eq!(r["fit"]["method"], "hbos", "{r}");
    assert_eq!(r["source"], "hours", "{r}");
    let w = &r["windows"][0];
    assert_eq!(w["rows"], 1160, "{w}");
    assert!(w["outlier_rate"].as_f64().unwrap() > 0.03, "{w}");
    let worst = w["worst"].as_array().unwrap();
    assert_eq!(worst.len(), 15);
    for row in worst {
        assert!(
            row["request_id"].as_str().unwrap().starts_with("planted-"),
            "{row}"
        );
        assert_eq!(row["outlier"], true, "{row}");
        assert_eq!(row["features"][0]["feature"], "amount", "{row}");
        assert!(
            row["features"][0]["contribution"].as_f64().unwrap() > 2.0,
            "{row}"
        );
    }
    assert_eq!(w["probing_flagged"], 1, "{w}");
    assert_eq!(w["probing"][0]["value"], "bot", "{w}");
    assert_eq!(w["probing"][0]["flagged"], true, "{w}");
    assert!(w["probing"][1]["flagged"] == false, "{w}");

    // A range not on whole hours is a scan of the events: the same answer.
    let scan = s.get_ok("/v1/models/watched/outliers?window=1d&limit=15&from=2026-01-04T23:30:00Z");
    assert_eq!(scan["source"], "events", "{scan}");
    assert_eq!(scan["windows"][0]["outliers"], w["outliers"]);
    assert_eq!(scan["windows"][0]["worst"], w["worst"]);
    assert_eq!(scan["windows"][0]["probing"], w["probing"]);

    let c = s.get_ok("/v1/models/clean/outliers?window=1d");
    let cw = &c["windows"][0];
    assert!(cw["outlier_rate"].as_f64().unwrap() < 0.03, "{cw}");
    assert_eq!(cw["probing_flagged"], 0, "{cw}");

    let fired = poll(30, || {
        let f = firing(&s, "watched");
        if f.len() == 2 {
            Ok(f)
        } else {
            Err(format!("firing on watched: {f:?}"))
        }
    });
    assert!(fired.contains(&"outliers".to_owned()) && fired.contains(&"probe".to_owned()));
    assert_eq!(firing(&s, "clean"), Vec::<String>::new());

    // Bad parameters name themselves.
    for (q, name) in [
        ("limit=0", "`limit`"),
        ("limit=21", "`limit`"),
        ("window=banana", "`window`"),
        ("tag=", "`tag`"),
        ("colour=red", "colour"),
    ] {
        let (st, out) = s.get(&format!("/v1/models/watched/outliers?{q}"));
        assert_eq!(st, 400, "{q}: {out}");
        assert!(out.to_string().contains(name), "{q}: {out}");
    }
}
