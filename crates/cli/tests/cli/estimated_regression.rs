//! Label-free MAE and RMSE of a regression model (direct loss estimation, ADR 013) through the
//! real binary: a labelled reference uploaded as CSV, three days of predictions without labels
//! (but for the first day of one model). Every day of `GET /v1/models/{m}/metrics` carries
//! `estimated.mae` and `estimated.rmse`; a rule on `estimated:mae` fires for the model whose
//! traffic moved to where it errs, and stays quiet for the one whose traffic did not; the CSV,
//! the Prometheus export and the dashboard's chart carry the estimates.

use crate::common;

use common::{poll, Server};
use serde_json::{json, Value};

/// A value in [0, 1) from `i`, spread evenly.
fn u(i: usize) -> f64 {
    ((i * 7919) % 1000) as f64 / 1000.0
}

fn category(i: usize) -> &'static str {
    ["u", "v", "w"][i % 3]
}

/// The model errs by about `0.2 + x`, twice that for category `w`: a mean absolute error of
/// about 0.9 on the reference, about 2.2 where x is near 1 and the category is `w`.
fn error(i: usize, x: f64, c: &str) -> f64 {
    let sign = if (i / 3).is_multiple_of(2) { 1.0 } else { -1.0 };
    sign * (0.2 + x) * if c == "w" { 2.0 } else { 1.0 } * (0.5 + u(i * 31))
}

fn reference_csv() -> String {
    let mut csv = String::from("x,c,prediction,label\n");
    for i in 0..1500 {
        let (x, c, p) = (u(i), category(i), 10.0 * u(i * 17));
        csv.push_str(&format!("{x},{c},{p},{}\n", p + error(i, x, c)));
    }
    csv
}

/// `n` predictions of `day` (2026-01-0{day}), like the reference's, or with `x` near 1 and
/// category `w` when `degraded`; returns them with their labels.
fn day(model: &str, day: usize, n: usize, degraded: bool) -> (Vec<Value>, Vec<Value>) {
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let k = i + 7 * day;
        let (x, c) = match degraded {
            false => (u(k * 13), category(k)),
            true => (0.8 + 0.2 * u(k * 13), "w"),
        };
        let p = 10.0 * u(k * 17 + 1);
        let id = format!("{model}-{day}-{i}");
        preds.push(json!({"request_id": id,
            "timestamp": format!("2026-01-0{day}T{:02}:{:02}:00Z", (i / 30) % 24, i % 60),
            "features": {"x": x, "c": c}, "prediction": p}));
        labels.push(json!({"request_id": id, "label": p + error(k, x, c)}));
    }
    (preds, labels)
}

#[test]
fn a_regressor_is_estimated_before_its_labels_and_a_rule_reads_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    for model in ["steady", "drifting"] {
        let rule = json!({"name": "estimated.mae", "signal": "estimated:mae",
            "condition": {"kind": "threshold", "op": ">", "value": 1.5},
            "decision": "review", "severity": "warning"});
        let (st, out) = s.post(&format!("/v1/models/{model}/rules"), &rule.to_string());
        assert_eq!(st, 201, "{out}");
        s.put_reference(model, "", "text/csv", reference_csv());
        for d in 1..=3 {
            let (preds, labels) = day(model, d, 400, model == "drifting" && d > 1);
            s.post_ok(&format!("/v1/models/{model}/predictions"), preds);
            // Labels for the first day only: there the realized MAE confirms the estimate.
            if d == 1 {
                s.post_ok(&format!("/v1/models/{model}/labels"), labels);
            }
        }
    }

    let steady = s.get_ok("/v1/models/steady/metrics?window=1d");
    assert_eq!(steady["task"], "regression", "{steady}");
    assert_eq!(steady["estimation"]["method"], "dle", "{steady}");
    assert_eq!(steady["estimation"]["reference_rows"], 1500);
    assert_eq!(steady["estimation"]["source"], "hours");
    let drifting = s.get_ok("/v1/models/drifting/metrics?window=1d");
    let est = |r: &Value, d: usize, m: &str| -> (f64, f64, f64) {
        let e = &r["windows"][d]["estimated"][m];
        (
            e["value"].as_f64().unwrap(),
            e["ci_low"].as_f64().unwrap(),
            e["ci_high"].as_f64().unwrap(),
        )
    };
    for r in [&steady, &drifting] {
        assert_eq!(r["windows"].as_array().unwrap().len(), 3, "{r}");
        for d in 0..3 {
            for m in ["mae", "rmse"] {
                let (v, lo, hi) = est(r, d, m);
                assert!(0.0 <= lo && lo < v && v < hi, "day {d} {m}: {lo} {v} {hi}");
            }
            // RMSE is at least MAE, in the estimates as in the realized values.
            assert!(est(r, d, "rmse").0 >= est(r, d, "mae").0);
        }
        // The labelled day: the realized MAE lies in the estimate's ± 3σ interval.
        let realized = r["windows"][0]["mae"]["value"].as_f64().unwrap();
        let (_, lo, hi) = est(r, 0, "mae");
        assert!(
            (lo..=hi).contains(&realized),
            "{realized} not in [{lo}, {hi}]"
        );
        assert!(r["windows"][2]["mae"]["value"].is_null());
    }
    // Steady traffic is estimated like the reference (MAE about 0.9); the drifting model's
    // last days where it errs more.
    for d in 0..3 {
        assert!(est(&steady, d, "mae").0 < 1.2, "{steady}");
    }
    assert!(est(&drifting, 2, "mae").0 > 1.8, "{drifting}");

    // The rule fires for the drifting model and not for the steady one (both evaluated in the
    // same passes).
    poll(30, || {
        let (_, out) = s.get("/v1/alerts?state=firing&model=drifting");
        match out["alerts"].as_array().unwrap().len() {
            0 => Err(format!("not firing yet: {out}")),
            _ => Ok(()),
        }
    });
    let (_, all) = s.get("/v1/alerts?model=steady");
    assert!(all["alerts"].as_array().unwrap().is_empty(), "{all}");
    // An estimated-performance alert carries its likely causes too: both features drifted on
    // the degraded day, and a drifted one comes first (a regressor gets no segment search).
    let (_, firing) = s.get("/v1/alerts?state=firing&model=drifting");
    let causes = &firing["alerts"][0]["causes"];
    let ranked: Vec<&str> = causes["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no causes: {firing}"))
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert!(ranked.contains(&"x") && ranked.contains(&"c"), "{causes}");
    assert_eq!(causes["features"][0]["drifted"], true, "{causes}");

    // The CSV: the estimates with their intervals, the JSON's numbers.
    let (status, text, _) = s.get_text("/v1/models/drifting/metrics?window=1d&format=csv");
    assert_eq!(status, 200, "{text}");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert!(!header.iter().any(|h| h == "estimated_accuracy"));
    for m in ["mae", "rmse"] {
        let i = header
            .iter()
            .position(|h| *h == format!("estimated_{m}"))
            .unwrap();
        assert_eq!(header[i + 1], format!("estimated_{m}_ci_low"));
        for (d, rec) in records.iter().enumerate() {
            assert_eq!(rec[i].parse::<f64>().unwrap(), est(&drifting, d, m).0);
        }
    }

    // The Prometheus export carries the latest window's estimates (refreshed in the background).
    poll(30, || {
        let (_, prom, _) = s.get_text("/metrics");
        for model in ["steady", "drifting"] {
            for m in ["mae", "rmse"] {
                if !prom.lines().any(|l| {
                    l.starts_with("modelwatch_model_estimated_performance{")
                        && l.contains(&format!("model=\"{model}\""))
                        && l.contains(&format!("metric=\"{m}\""))
                }) {
                    return Err(format!("no estimated {m} of {model}:\n{prom}"));
                }
            }
        }
        Ok(())
    });

    // The dashboard draws the estimate and its band under the realized MAE.
    let (status, html, _) = s.get_text("/models/drifting?range=all&window=1d");
    assert_eq!(status, 200);
    assert!(
        html.contains("data-series=\"estimated mae|estimated mae ± 3σ|mae|mae 95% CI"),
        "{html}"
    );
    assert!(html.contains("data-series=\"estimated rmse|estimated rmse ± 3σ|rmse|rmse 95% CI"));
}
