//! Label-free performance estimates (CBPE) through the real binary: a binary classifier's
//! labelled reference and ten days of predictions whose features drift towards the decision
//! boundary (the fixture `crates/stats/tests/fixtures/cbpe/binary_miscalibrated.json`, made by
//! `scripts/fixtures/gen_cbpe_fixtures.py` with NannyML's per-chunk estimates). Labels arrive
//! for the first three days only. Every day of `GET /v1/models/{m}/metrics` carries
//! `estimated`, equal to NannyML's estimate of that chunk.

use crate::common;

use std::path::PathBuf;

use common::Server;
use serde_json::{json, Value};

/// The same calibrated sums as NannyML's over 2000 rows, in another order (see
/// crates/stats/tests/cbpe_nannyml.rs for the measured agreement).
const TOL: f64 = 1e-9;
/// ROC AUC's sampling error and interval: NannyML ranks tied reference scores in NumPy's
/// unstable order (about 1e-9 on the sampling error, three times that on the interval).
const AUC_SE_TOL: f64 = 1e-7;

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../stats/tests/fixtures/cbpe/binary_miscalibrated.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn scores(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_i64().unwrap() as f64 / 1e6)
        .collect()
}

fn labels(v: &Value) -> Vec<u8> {
    v.as_str().unwrap().bytes().map(|b| b - b'0').collect()
}

fn reference_csv(fx: &Value) -> String {
    let s = scores(&fx["reference"]["score_micro"]);
    let y = labels(&fx["reference"]["label"]);
    let mut csv = String::from("x,prediction,score,label\n");
    for (i, (s, y)) in s.iter().zip(&y).enumerate() {
        csv.push_str(&format!("{},{},{s},{y}\n", i % 7, u8::from(*s >= 0.5)));
    }
    csv
}

/// Day `c` of the analysis rows: chunk `c` of the fixture, one prediction every 40 s.
fn send_days(s: &Server, model: &str, fx: &Value, labelled_days: usize) {
    let size = fx["chunk_size"].as_u64().unwrap() as usize;
    let sc = scores(&fx["analysis"]["score_micro"]);
    let y = labels(&fx["analysis"]["label"]);
    for (c, (chunk, ys)) in sc.chunks(size).zip(y.chunks(size)).enumerate() {
        let (mut preds, mut labs) = (Vec::new(), Vec::new());
        for (i, (score, label)) in chunk.iter().zip(ys).enumerate() {
            let id = format!("d{c}-{i}");
            let secs = i * 40;
            preds.push(json!({"request_id": id,
                "timestamp": format!("2026-01-{:02}T{:02}:{:02}:{:02}Z", c + 1, secs / 3600, secs / 60 % 60, secs % 60),
                "features": {"x": i % 7}, "prediction": u8::from(*score >= 0.5), "score": score}));
            labs.push(json!({"request_id": id, "label": label}));
        }
        s.post_ok(&format!("/v1/models/{model}/predictions"), preds);
        if c < labelled_days {
            s.post_ok(&format!("/v1/models/{model}/labels"), labs);
        }
    }
}

#[track_caller]
fn close(what: &str, got: &Value, want: &Value, tol: f64) {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    assert!((g - w).abs() <= tol, "{what}: modelwatch {g}, NannyML {w}");
}

fn check_against_nannyml(report: &Value, fx: &Value) {
    let windows = report["windows"].as_array().unwrap();
    let expected = fx["nannyml_estimates"].as_array().unwrap();
    assert_eq!(windows.len(), expected.len(), "{report}");
    for (c, (w, want)) in windows.iter().zip(expected).enumerate() {
        for m in [
            "roc_auc",
            "f1",
            "precision",
            "recall",
            "specificity",
            "accuracy",
        ] {
            let got = &w["estimated"][m];
            let what = |f: &str| format!("day {c} {m} {f}");
            close(&what("value"), &got["value"], &want[m]["value"], TOL);
            let tol = if m == "roc_auc" { AUC_SE_TOL } else { TOL };
            close(
                &what("sampling_error"),
                &got["sampling_error"],
                &want[m]["sampling_error"],
                tol,
            );
            close(&what("ci_low"), &got["ci_low"], &want[m]["ci_low"], tol);
            close(&what("ci_high"), &got["ci_high"], &want[m]["ci_high"], tol);
        }
    }
}

#[test]
fn every_day_is_estimated_like_nannyml_labelled_or_not() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.put_reference("loans", "", "text/csv", reference_csv(&fx));
    send_days(&s, "loans", &fx, 3);

    // Whole days: the realized metrics come from the per-hour aggregates.
    let report = s.get_ok("/v1/models/loans/metrics?window=1d");
    assert_eq!(report["task"], "binary", "{report}");
    assert_eq!(report["estimation"]["method"], "cbpe");
    assert_eq!(
        report["estimation"]["calibrated"],
        json!(fx["nannyml_needs_calibration"])
    );
    assert_eq!(report["estimation"]["reference_rows"], 5000);
    check_against_nannyml(&report, &fx);

    let windows = report["windows"].as_array().unwrap();
    // Labelled days have the realized metric beside the estimate; the others the estimate only.
    assert_eq!(windows[0]["labelled"], 2000);
    assert!(windows[0]["accuracy"]["value"].is_f64(), "{}", windows[0]);
    assert_eq!(windows[9]["labelled"], 0);
    assert!(windows[9]["accuracy"]["value"].is_null(), "{}", windows[9]);
    // The drift degrades the model and the estimate shows it before any label.
    let acc = |w: &Value| w["estimated"]["accuracy"]["value"].as_f64().unwrap();
    assert!(acc(&windows[9]) < acc(&windows[0]) - 0.1);

    // Merged from the per-hour estimation states.
    assert_eq!(report["estimation"]["source"], "hours");

    // A range starting mid-hour is answered from the raw events: the same estimates.
    let raw = s.get_ok("/v1/models/loans/metrics?window=1d&from=2025-12-31T23:30:00Z");
    assert_eq!(raw["estimation"]["source"], "events");
    check_against_nannyml(&raw, &fx);

    // The CSV carries every window's estimates with their intervals, the JSON's numbers bit
    // for bit (empty where a metric is not estimated).
    let (status, text, _) = s.get_text("/v1/models/loans/metrics?window=1d&format=csv");
    assert_eq!(status, 200, "{text}");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), windows.len());
    let names = [
        "roc_auc",
        "f1",
        "precision",
        "recall",
        "specificity",
        "accuracy",
    ];
    for (rec, w) in records.iter().zip(windows) {
        for name in names {
            for (field, suffix) in [
                ("value", ""),
                ("ci_low", "_ci_low"),
                ("ci_high", "_ci_high"),
            ] {
                let column = format!("estimated_{name}{suffix}");
                let i = header.iter().position(|h| *h == column).expect(&column);
                let want = w["estimated"][name][field].as_f64().unwrap();
                assert_eq!(rec[i].parse::<f64>().unwrap(), want, "{column}");
            }
        }
    }
}

/// Without scores in the reference there is nothing to calibrate: no `estimation`, and no
/// window carries `estimated`.
#[test]
fn a_reference_without_scores_gives_no_estimates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let mut csv = String::from("x,prediction,label\n");
    for i in 0..200 {
        csv.push_str(&format!("{},{},{}\n", i % 7, i % 2, (i / 2) % 2));
    }
    s.put_reference("plain", "", "text/csv", csv);
    let preds = (0..50)
        .map(|i| {
            json!({"request_id": format!("p{i}"), "timestamp": "2026-01-02T10:00:00Z",
            "features": {"x": i % 7}, "prediction": i % 2, "score": 0.3 + (i % 5) as f64 / 10.0})
        })
        .collect();
    s.post_ok("/v1/models/plain/predictions", preds);
    let report = s.get_ok("/v1/models/plain/metrics?window=1d");
    assert!(report.get("estimation").is_none(), "{report}");
    assert!(report["windows"][0].get("estimated").is_none(), "{report}");
}

/// A three-class model (the fixture `multiclass.json`): a reference whose rows carry a `scores`
/// map, eight days of predictions, labels for none. Every day's one-vs-rest macro estimates
/// equal NannyML's.
#[test]
fn a_multiclass_model_is_estimated_like_nannyml() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../stats/tests/fixtures/cbpe/multiclass.json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let classes: Vec<String> = fx["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let rows = |v: &Value| -> Vec<(serde_json::Map<String, Value>, String, String)> {
        let name = |b: u8| classes[(b - b'0') as usize].clone();
        let (pred, label) = (v["pred"].as_str().unwrap(), v["label"].as_str().unwrap());
        v["score_micro"]
            .as_array()
            .unwrap()
            .iter()
            .zip(pred.bytes().zip(label.bytes()))
            .map(|(s, (p, l))| {
                let scores = classes
                    .iter()
                    .zip(s.as_array().unwrap())
                    .map(|(c, k)| (c.clone(), json!(k.as_i64().unwrap() as f64 / 1e6)))
                    .collect();
                (scores, name(p), name(l))
            })
            .collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let reference: String = rows(&fx["reference"])
        .into_iter()
        .enumerate()
        .map(|(i, (scores, p, l))| {
            json!({"x": i % 7, "prediction": p, "scores": scores, "label": l}).to_string() + "\n"
        })
        .collect();
    s.put_reference("cards", "", "application/x-ndjson", reference);
    let size = fx["chunk_size"].as_u64().unwrap() as usize;
    for (c, chunk) in rows(&fx["analysis"]).chunks(size).enumerate() {
        let preds = chunk
            .iter()
            .enumerate()
            .map(|(i, (scores, p, _))| {
                let secs = i * 40;
                json!({"request_id": format!("d{c}-{i}"),
                    "timestamp": format!("2026-01-{:02}T{:02}:{:02}:{:02}Z", c + 1, secs / 3600, secs / 60 % 60, secs % 60),
                    "features": {"x": i % 7}, "prediction": p, "scores": scores})
            })
            .collect();
        s.post_ok("/v1/models/cards/predictions", preds);
    }
    let report = s.get_ok("/v1/models/cards/metrics?window=1d");
    assert_eq!(report["task"], "multiclass", "{}", report["task_reason"]);
    assert_eq!(report["estimation"]["calibrated"], true);
    let windows = report["windows"].as_array().unwrap();
    let expected = fx["nannyml_estimates"].as_array().unwrap();
    assert_eq!(windows.len(), expected.len());
    for (c, (w, want)) in windows.iter().zip(expected).enumerate() {
        assert_eq!(w["labelled"], 0);
        for m in [
            "roc_auc",
            "f1",
            "precision",
            "recall",
            "specificity",
            "accuracy",
        ] {
            // Multiclass ROC AUC: tie order, up to about 1e-7 (crates/stats/tests/cbpe_nannyml.rs).
            let tol = if m == "roc_auc" { 1e-6 } else { TOL };
            for f in ["value", "sampling_error", "ci_low", "ci_high"] {
                close(
                    &format!("day {c} {m} {f}"),
                    &w["estimated"][m][f],
                    &want[m][f],
                    tol,
                );
            }
        }
    }
}
