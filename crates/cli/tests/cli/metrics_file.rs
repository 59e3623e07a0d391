//! `modelwatch metrics --predictions FILE [--labels FILE]`: per-day metrics straight from a
//! file, checked against scikit-learn on the same rows (fixtures made by
//! `scripts/fixtures/gen_file_metrics_fixtures.py`); and `modelwatch import` of the same file
//! building the per-hour state, so that the store answers without a rescan.

use crate::common;

use common::{import, modelwatch};
use serde_json::Value;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    // Read when the test runs (a test binary reused from another checkout would look there).
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    PathBuf::from(dir)
        .join("tests/fixtures/file_metrics")
        .join(name)
}

fn path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_owned()
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

fn metrics(args: &[&str]) -> Value {
    let mut all = vec!["metrics", "--window", "1d", "--format", "json"];
    all.extend_from_slice(args);
    let (ok, out, err) = modelwatch(&all);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Every day of `report` against scikit-learn's numbers: counts exactly, metrics to the
/// rounding of their sums.
fn check_against_sklearn(report: &Value) {
    let want = expected();
    let days = want["days"].as_object().unwrap();
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), days.len());
    for w in windows {
        let day = &w["start"].as_str().unwrap()[..10];
        let want = &days[day];
        assert_eq!(w["predictions"], want["predictions"], "{day}");
        assert_eq!(w["labelled"], want["labelled"], "{day}");
        // Past 1,000 rows a window the stored states rank scores in bins: a file is exact.
        assert_eq!(w["ranking_method"], "exact", "{day}");
        for (name, v) in want.as_object().unwrap() {
            if name == "predictions" || name == "labelled" {
                continue;
            }
            let got = w[name.as_str()]["value"]
                .as_f64()
                .unwrap_or_else(|| panic!("{day} {name}: {}", w[name.as_str()]));
            let v = v.as_f64().unwrap();
            assert!(
                (got - v).abs() <= 1e-12 * v.abs().max(1.0),
                "{day} {name}: modelwatch {got}, scikit-learn {v}"
            );
        }
    }
}

#[test]
fn a_csv_file_gives_scikit_learns_daily_metrics() {
    let report = metrics(&["--predictions", &path("predictions.csv")]);
    assert_eq!(report["task"], "binary");
    assert_eq!(report["model"], path("predictions.csv"));
    check_against_sklearn(&report);
}

#[test]
fn parquet_and_a_separate_labels_file_give_the_same_numbers() {
    let csv = metrics(&["--predictions", &path("predictions.csv")]);
    check_against_sklearn(&metrics(&["--predictions", &path("predictions.parquet")]));
    let joined = metrics(&[
        "--predictions",
        &path("unlabelled.csv"),
        "--labels",
        &path("labels.csv"),
    ]);
    check_against_sklearn(&joined);
    // Only the label delays differ (the labels file's labels came a week later).
    for (a, b) in csv["windows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(joined["windows"].as_array().unwrap())
    {
        assert_eq!(a["roc_auc"], b["roc_auc"]);
        assert_eq!(a["f1"], b["f1"]);
        assert_ne!(a["label_delay_seconds"], b["label_delay_seconds"]);
    }
}

#[test]
fn csv_and_table_formats_from_a_file() {
    let (ok, out, err) = modelwatch(&[
        "metrics",
        "--predictions",
        &path("predictions.csv"),
        "--window",
        "1d",
        "--format",
        "csv",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("window_start,window_end,accuracy,"));
    assert!(lines[1].starts_with("2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,0.72125,"));
    let (ok, out, err) = modelwatch(&["metrics", "--predictions", &path("predictions.csv")]);
    assert!(ok, "{err}");
    assert!(out.contains("2026-03-04T00:00:00Z  2000  1600"), "{out}");
}

#[test]
fn conflicting_flags_are_refused_with_what_to_do() {
    let file = path("predictions.csv");
    for (args, says) in [
        (
            vec!["--predictions", &file, "--data", "x"],
            "cannot be used with",
        ),
        (
            vec!["--predictions", &file, "--model", "m"],
            "cannot be used with",
        ),
        (
            vec!["--predictions", &file, "--segment", "country"],
            "cannot be used with",
        ),
        (vec!["--labels", &file, "--model", "m"], "--predictions"),
        (
            vec!["--model", "m", "--score-col", "s"],
            "apply to --predictions FILE only",
        ),
        (vec![], "--model"),
    ] {
        let mut all = vec!["metrics"];
        all.extend_from_slice(&args);
        let (ok, _, err) = modelwatch(&all);
        assert!(!ok, "{args:?} accepted");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A file with no prediction column names what is missing.
    let (ok, _, err) = modelwatch(&["metrics", "--predictions", &path("labels.csv")]);
    assert!(!ok);
    assert!(err.contains("prediction"), "{err}");
}

#[test]
fn import_builds_the_hours_and_the_store_answers_as_the_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ok, out, err) = import(
        "predictions",
        &fixture("predictions.csv"),
        "credit",
        &["--data", data],
    );
    assert!(ok, "{err}");
    assert!(out.contains("rows/s"), "{out}");
    assert!(
        out.contains("per-hour metrics and drift state built for 72 hours"),
        "{out}"
    );
    // Nothing left for the first query to rescan: the hours answer, with the numbers of the
    // file (scores ranked in bins past 1,000 rows a window, so ROC-AUC aside).
    let stored = metrics(&["--model", "credit", "--data", data]);
    let file = metrics(&["--predictions", &path("predictions.csv")]);
    let scan = metrics(&["--model", "credit", "--data", data, "--task", "binary"]);
    for ((s, f), r) in stored["windows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(file["windows"].as_array().unwrap())
        .zip(scan["windows"].as_array().unwrap())
    {
        for key in ["predictions", "labelled", "confusion_matrix"] {
            assert_eq!(s[key], f[key], "{key}");
            assert_eq!(s[key], r[key], "{key}");
        }
        for key in ["accuracy", "precision", "recall", "f1"] {
            assert_eq!(s[key]["value"], f[key]["value"], "{key}");
            assert_eq!(s[key]["value"], r[key]["value"], "{key}");
        }
        assert_eq!(s["ranking_method"], "binned");
        let (a, b) = (
            s["roc_auc"]["value"].as_f64().unwrap(),
            r["roc_auc"]["value"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-12, "hours {a}, raw events {b}");
    }
}
