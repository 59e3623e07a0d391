//! Domain-classifier drift through the real binary: `GET /v1/models/{m}/drift/domain-classifier`
//! and the rule signal `domain_classifier_auc`.
//!
//! The day built to trip it moves both features together along the reference's first principal
//! component, by 1.5 of their standard deviations each. With two standardised features the PCA
//! (ADR 010) keeps that component alone and a row's reconstruction error is its distance from
//! it, |z1 − z2| / √2: the same for every moved row as before the move. So the multivariate
//! drift rule (`multivariate_drift`) stays quiet on that day, while the classifier tells its
//! rows from the reference's and its rule fires. A model whose days are all clean fires
//! neither.

use crate::common;

use common::{poll, Server};
use serde_json::{json, Value};

const DAYS: [&str; 2] = ["2026-01-05", "2026-01-06"];
/// Reference rows and rows a day: small, so the test's fits stay cheap in a debug build.
const REFERENCE_ROWS: usize = 600;
const DAY_ROWS: usize = 300;

/// A uniform number in [0, 1) from (row, stream): SplitMix64 of both.
fn u(i: usize, k: usize) -> f64 {
    let mut z = (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((k as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / 2f64.powi(64)
}

/// Row `i`'s features: x2 follows x1 closely (correlation 0.97).
fn row(i: usize) -> (f64, f64) {
    let x1 = 2.0 * u(i, 1) - 1.0;
    let x2 = 0.8 * x1 + 0.2 * (2.0 * u(i, 2) - 1.0);
    (x1, x2)
}

/// The reference's standard deviations of x1 and x2: the PCA standardises by them, so a move
/// of the same number of each one's standard deviations is a move along the kept component.
fn reference_sd() -> (f64, f64) {
    let rows: Vec<(f64, f64)> = (0..REFERENCE_ROWS).map(row).collect();
    let sd = |v: Vec<f64>| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    (
        sd(rows.iter().map(|r| r.0).collect()),
        sd(rows.iter().map(|r| r.1).collect()),
    )
}

fn reference_csv() -> String {
    let mut s = String::from("x1,x2,prediction\n");
    for i in 0..REFERENCE_ROWS {
        let (x1, x2) = row(i);
        s.push_str(&format!("{x1},{x2},{}\n", i % 2));
    }
    s
}

/// One day of predictions; `moved`: both features shifted by 1.5 of their standard deviations.
fn day(model: &str, d: usize, moved: bool) -> Vec<Value> {
    let base = 100_000 * (d + 1);
    let shift = if moved { 1.5 } else { 0.0 };
    let (sd1, sd2) = reference_sd();
    (0..DAY_ROWS)
        .map(|i| {
            let (x1, x2) = row(base + i);
            json!({
                "request_id": format!("{model}-{d}-{i}"),
                "timestamp": format!("{}T{:02}:{:02}:00Z", DAYS[d], i / 13, i % 60),
                "features": {"x1": x1 + shift * sd1, "x2": x2 + shift * sd2},
                "prediction": i % 2,
            })
        })
        .collect()
}

fn rule(name: &str, signal: &str, op: &str, value: f64) -> String {
    json!({"name": name, "signal": signal,
           "condition": {"kind": "threshold", "op": op, "value": value},
           "decision": "review", "severity": "warning"})
    .to_string()
}

fn firing(s: &Server, model: &str) -> Vec<String> {
    let (_, out) = s.get(&format!("/v1/alerts?model={model}&state=firing"));
    let mut f: Vec<String> = out["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect();
    f.sort();
    f
}

#[test]
fn a_day_moved_along_the_kept_component_fires_the_classifier_not_the_pca() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    for model in ["moved", "clean"] {
        for (name, signal, op, v) in [
            ("domain", "domain_classifier_auc", ">", 0.65),
            ("pca", "multivariate_drift", ">", 0.5),
            // The sentinel: once it fires, the model's rules have been evaluated.
            ("volume", "predictions", ">", 100.0),
        ] {
            let (st, out) = s.post(
                &format!("/v1/models/{model}/rules"),
                &rule(name, signal, op, v),
            );
            assert_eq!(st, 201, "{model} {name}: {out}");
        }
        s.put_reference(model, "", "text/csv", reference_csv());
    }
    s.post_ok("/v1/models/moved/predictions", day("moved", 0, false));
    s.post_ok("/v1/models/moved/predictions", day("moved", 1, true));
    s.post_ok("/v1/models/clean/predictions", day("clean", 0, false));
    s.post_ok("/v1/models/clean/predictions", day("clean", 1, false));

    // The report: the clean day looks like the reference, the moved one is told apart.
    let r = s.get_ok("/v1/models/moved/drift/domain-classifier?window=1d");
    assert_eq!(r["classifier"]["method"], "domain_classifier", "{r}");
    assert_eq!(r["classifier"]["features"], json!(["x1", "x2"]), "{r}");
    assert_eq!(r["classifier"]["folds"], 5, "{r}");
    assert_eq!(r["reference"]["rows"], REFERENCE_ROWS);
    let w = r["windows"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{r}");
    let auc = |w: &Value| w["auc"].as_f64().unwrap();
    assert!(auc(&w[0]) < 0.6 && w[0]["alert"] == false, "{r}");
    assert!(w[1]["ci_low"].as_f64().unwrap() > 0.65, "{r}");
    assert!(w[1]["ci_low"].as_f64() < w[1]["auc"].as_f64(), "{r}");
    assert_eq!(w[1]["alert"], true, "{r}");
    assert_eq!(w[1]["rows"], DAY_ROWS);
    assert_eq!(w[1]["window_rows"], DAY_ROWS);
    assert_eq!(w[1]["reference_rows"], REFERENCE_ROWS);
    // The scores are kept: asked again, no window is fitted and the answer is the same.
    let again = s.get_ok("/v1/models/moved/drift/domain-classifier?window=1d");
    assert_eq!(again["fitted"], 0, "{again}");
    assert_eq!(again["kept"], 2, "{again}");
    assert_eq!(again["windows"], r["windows"]);
    let clean = s.get_ok("/v1/models/clean/drift/domain-classifier?window=1d");
    for w in clean["windows"].as_array().unwrap() {
        assert!(auc(w) < 0.6 && w["alert"] == false, "{clean}");
    }

    // The PCA reconstruction error of the same days: inside the band.
    let m = s.get_ok("/v1/models/moved/drift/multivariate?window=1d");
    assert_eq!(m["fit"]["components"], 1, "{m}");
    for w in m["windows"].as_array().unwrap() {
        assert_eq!(w["alert"], false, "{m}");
    }

    for (model, want) in [
        ("moved", vec!["domain", "volume"]),
        ("clean", vec!["volume"]),
    ] {
        poll(60, || {
            let f = firing(&s, model);
            if f.contains(&"volume".to_owned()) && (model == "clean" || f.len() == 2) {
                Ok(())
            } else {
                Err(format!("{model} not evaluated yet: {f:?}"))
            }
        });
        assert_eq!(firing(&s, model), want, "{model}");
    }
}

#[test]
fn bad_queries_are_answered_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.post_ok("/v1/models/tiny/predictions", day("tiny", 0, false));
    let (st, out) = s.get("/v1/models/tiny/drift/domain-classifier");
    assert_eq!(st, 409, "{out}");
    assert_eq!(out["error"]["code"], "no_reference", "{out}");
    s.put_reference("tiny", "", "text/csv", "x1,x2,prediction\n0.1,0.2,1\n");
    // Too few reference rows: a window without a score, and why.
    let r = s.get_ok("/v1/models/tiny/drift/domain-classifier");
    let w = &r["windows"][0];
    assert_eq!(w["auc"], Value::Null, "{r}");
    assert!(w["note"].as_str().unwrap().contains("at least 5"), "{r}");
    let (st, out) = s.get("/v1/models/tiny/drift/domain-classifier?alpha=0.1");
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("alpha"),
        "{out}"
    );
}
