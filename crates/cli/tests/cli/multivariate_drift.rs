//! Multivariate drift through the real binary: `GET /v1/models/{m}/drift/multivariate` and the
//! rule signals `multivariate_drift` and `reconstruction_error`. A day whose features keep
//! their values but lose their correlation (each feature's column permuted within the day)
//! leaves the reference band and fires the rule, while every per-feature test of
//! `GET .../drift` stays quiet; a model whose days are all clean fires nothing.

use crate::common;

use common::{firing, poll, Server};
use serde_json::{json, Value};

const DAYS: [&str; 2] = ["2026-01-05", "2026-01-06"];

/// A uniform number in [0, 1) from (row, stream), spread without a pattern the tests see.
fn u(i: usize, k: usize) -> f64 {
    ((i * 2_654_435_761 + k * 40_503 + 17) % 10_007) as f64 / 10_007.0
}

/// Row `i`'s features: x2 follows x1 closely, c follows x1, x3 is on its own.
fn row(i: usize) -> (f64, f64, f64, &'static str) {
    let x1 = 2.0 * u(i, 1) - 1.0;
    let x2 = 0.8 * x1 + 0.2 * (2.0 * u(i, 2) - 1.0);
    let x3 = 10.0 * u(i, 3);
    let c = if x1 + 0.3 * (2.0 * u(i, 4) - 1.0) > 0.0 {
        "a"
    } else {
        "b"
    };
    (x1, x2, x3, c)
}

fn reference_csv() -> String {
    let mut s = String::from("x1,x2,x3,c,prediction\n");
    for i in 0..2000 {
        let (x1, x2, x3, c) = row(i);
        s.push_str(&format!("{x1},{x2},{x3},{c},{}\n", i % 2));
    }
    s
}

/// One day of 1000 predictions; `broken`: x2 and c taken from other rows of the same day (a
/// permutation: the day's values of each feature are exactly those of a clean day).
fn day(model: &str, d: usize, broken: bool) -> Vec<Value> {
    let base = 100_000 * (d + 1);
    (0..1000usize)
        .map(|i| {
            let (x1, mut x2, x3, mut c) = row(base + i);
            if broken {
                x2 = row(base + (i * 7 + 3) % 1000).1;
                c = row(base + (i * 13 + 5) % 1000).3;
            }
            json!({
                "request_id": format!("{model}-{d}-{i}"),
                "timestamp": format!("{}T{:02}:{:02}:{:02}Z", DAYS[d], i / 42, i % 60, i % 37),
                "features": {"x1": x1, "x2": x2, "x3": x3, "c": c},
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

#[test]
fn a_correlation_breaking_day_fires_while_every_per_feature_test_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    for model in ["joint", "clean"] {
        for (name, signal, op, v) in [
            ("joint-drift", "multivariate_drift", ">", 0.5),
            // The per-feature tests of the same windows, as rules.
            ("feature-drift", "drift_share", ">", 0.0),
            ("x2-drift", "drift:x2", ">", 0.5),
            ("c-drift", "drift:c", ">", 0.5),
        ] {
            let (st, out) = s.post(
                &format!("/v1/models/{model}/rules"),
                &rule(name, signal, op, v),
            );
            assert_eq!(st, 201, "{model} {name}: {out}");
        }
        s.put_reference(model, "", "text/csv", reference_csv());
    }
    let (st, out) = s.post(
        "/v1/models/clean/rules",
        &rule("volume", "predictions", ">", 100.0),
    );
    assert_eq!(st, 201, "{out}");
    s.post_ok("/v1/models/joint/predictions", day("joint", 0, false));
    s.post_ok("/v1/models/joint/predictions", day("joint", 1, true));
    s.post_ok("/v1/models/clean/predictions", day("clean", 0, false));
    s.post_ok("/v1/models/clean/predictions", day("clean", 1, false));

    // The report: the clean day inside the band, the broken one above it.
    let r = s.get_ok("/v1/models/joint/drift/multivariate?window=1d");
    assert_eq!(r["fit"]["method"], "pca_reconstruction_error", "{r}");
    assert_eq!(r["fit"]["features"], json!(["x1", "x2", "x3", "c"]), "{r}");
    assert_eq!(r["reference"]["rows"], 2000);
    let windows = r["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{r}");
    let upper = r["fit"]["band"]["upper"].as_f64().unwrap();
    assert_eq!(windows[0]["alert"], false, "{r}");
    assert_eq!(windows[1]["alert"], true, "{r}");
    assert!(windows[1]["value"].as_f64().unwrap() > upper, "{r}");
    assert_eq!(windows[1]["rows"], 1000);
    let clean = s.get_ok("/v1/models/clean/drift/multivariate?window=1d");
    for w in clean["windows"].as_array().unwrap() {
        assert_eq!(w["alert"], false, "{clean}");
    }

    // Every per-feature test of the same days: nothing drifted.
    let d = s.get_ok("/v1/models/joint/drift?window=1d");
    for w in d["windows"].as_array().unwrap() {
        assert_eq!(w["evaluated_features"], 4, "{w}");
        for f in w["features"].as_array().unwrap() {
            assert_eq!(f["drifted"], false, "{f}");
        }
    }

    // The rule fires on the broken day; the per-feature rules and the clean model stay quiet.
    let fired = poll(30, || {
        let f = firing(&s, "joint");
        if f.contains(&"joint-drift".to_owned()) {
            Ok(f)
        } else {
            let (_, all) = s.get("/v1/alerts");
            Err(format!("joint-drift not firing: {all}"))
        }
    });
    assert_eq!(fired, ["joint-drift"], "only the multivariate rule fires");
    // The clean model's rules are evaluated together: once its sentinel (its volume) fires,
    // its multivariate rule has been evaluated too.
    poll(30, || {
        let f = firing(&s, "clean");
        if f.contains(&"volume".to_owned()) {
            Ok(())
        } else {
            Err(format!("clean not evaluated yet: {f:?}"))
        }
    });
    assert_eq!(firing(&s, "clean"), ["volume"]);
}

#[test]
fn bad_queries_and_a_reference_too_small_are_answered_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    s.post_ok("/v1/models/tiny/predictions", day("tiny", 0, false));
    let (st, out) = s.get("/v1/models/tiny/drift/multivariate");
    assert_eq!(st, 409, "{out}");
    assert_eq!(out["error"]["code"], "no_reference", "{out}");
    let mut small = String::from("x1,x2,x3,c,prediction\n");
    for i in 0..5 {
        let (x1, x2, x3, c) = row(i);
        small.push_str(&format!("{x1},{x2},{x3},{c},0\n"));
    }
    s.put_reference("tiny", "", "text/csv", small);
    let (st, out) = s.get("/v1/models/tiny/drift/multivariate");
    assert_eq!(st, 409, "{out}");
    assert_eq!(out["error"]["code"], "reference_not_fitted", "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("5 rows"),
        "{out}"
    );
    let (st, out) = s.get("/v1/models/tiny/drift/multivariate?alpha=0.1");
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"].as_str().unwrap().contains("alpha"),
        "{out}"
    );
    let (st, out) = s.get("/v1/models/tiny/drift/multivariate?segment=c");
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("segment"),
        "{out}"
    );
}
