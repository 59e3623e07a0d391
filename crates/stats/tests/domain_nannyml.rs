//! Domain-classifier drift against scikit-learn and NannyML 0.13.1 on fixtures from
//! `scripts/fixtures/gen_domain_fixtures.py`: a reference and four chunks (same distribution, a
//! mean shift, a correlation that disappears, category shares that change).
//!
//! - On the same out-of-fold scores (LightGBM's, from the cross-validation NannyML runs), our
//!   AUC equals scikit-learn's `roc_auc_score` and our DeLong standard error and interval equal
//!   the script's Python implementation, to 1e-12; our folds are `StratifiedKFold`'s.
//! - On the same rows, our score (our own boosted trees, ADR 015) is within [`TOLERANCE`] of
//!   NannyML's (LightGBM) and both sides agree on which chunks drift (above 0.55).
//!
//! `cargo test -p modelwatch-stats --test domain_nannyml -- --nocapture` prints the table in
//! docs/benchmarks.md.

use std::path::PathBuf;

use modelwatch_stats::domain::{auc_delong, domain_score, stratified_folds, Row, FOLDS};
use modelwatch_stats::estimate::{Cell, ColumnKind};
use serde_json::Value;

/// |ours − NannyML| allowed per chunk. The learners differ (LightGBM: 31 leaves grown leaf-wise,
/// 255 bins, native categorical splits; ours: depth 4, 127 bins, categories ranked), so the
/// out-of-fold scores differ; with 3000 rows the AUC's own standard error is about 0.01, and
/// two classifiers of similar power land within a few of those.
const TOLERANCE: f64 = 0.04;

fn fixture() -> Value {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fixtures/domain/domain.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn rows(v: &Value, unit: f64) -> Vec<(f64, f64, f64, String)> {
    let col = |name: &str| -> Vec<f64> {
        v[name]
            .as_array()
            .expect("an array")
            .iter()
            .map(|k| k.as_i64().expect("an integer") as f64 / unit)
            .collect()
    };
    let (x1, x2, x3) = (col("x1"), col("x2"), col("x3"));
    let cat: Vec<String> = v["cat"]
        .as_str()
        .expect("categories")
        .chars()
        .map(String::from)
        .collect();
    (0..x1.len())
        .map(|i| (x1[i], x2[i], x3[i], cat[i].clone()))
        .collect()
}

fn cells(rows: &[(f64, f64, f64, String)]) -> Vec<Row<'_>> {
    rows.iter()
        .map(|(a, b, c, d)| {
            vec![
                Cell::Number(*a),
                Cell::Number(*b),
                Cell::Number(*c),
                Cell::Text(d),
            ]
        })
        .collect()
}

#[test]
fn auc_and_delong_interval_equal_scikit_learn_and_python_on_the_same_scores() {
    let f = fixture();
    for chunk in f["chunks"].as_array().unwrap() {
        let kind = chunk["kind"].as_str().unwrap();
        let labels: Vec<bool> = chunk["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        let scores: Vec<f64> = chunk["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as f64)
            .collect();
        let folds: Vec<usize> = chunk["folds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(stratified_folds(&labels, FOLDS), folds, "{kind}: folds");
        let ours = auc_delong(&labels, &scores).unwrap();
        let sklearn = chunk["sklearn_auc"].as_f64().unwrap();
        assert!(
            (ours.auc - sklearn).abs() <= 1e-12,
            "{kind}: {ours:?} vs {sklearn}"
        );
        let py = &chunk["delong"];
        for (name, v) in [
            ("auc", ours.auc),
            ("standard_error", ours.standard_error),
            ("ci_low", ours.ci_low),
            ("ci_high", ours.ci_high),
        ] {
            let want = py[name].as_f64().unwrap();
            assert!((v - want).abs() <= 1e-12, "{kind}: {name} {v} vs {want}");
        }
    }
}

#[test]
fn score_agrees_with_nannyml_domain_classifier() {
    let f = fixture();
    let unit = f["unit"].as_f64().unwrap();
    let reference = rows(&f["reference"], unit);
    let reference = cells(&reference);
    let kinds = [
        ColumnKind::Numeric,
        ColumnKind::Numeric,
        ColumnKind::Numeric,
        ColumnKind::Categorical,
    ];
    println!("| chunk | NannyML AUC (LightGBM) | ours | ours 95 % interval | difference |");
    println!("|---|---|---|---|---|");
    for chunk in f["chunks"].as_array().unwrap() {
        let kind = chunk["kind"].as_str().unwrap();
        let window = rows(&chunk["rows"], unit);
        let ours = domain_score(&kinds, &reference, &cells(&window)).unwrap();
        let nml = chunk["nannyml_auc"].as_f64().unwrap();
        let diff = ours.auc.auc - nml;
        println!(
            "| {kind} | {nml:.4} | {:.4} | [{:.4}, {:.4}] | {diff:+.4} |",
            ours.auc.auc, ours.auc.ci_low, ours.auc.ci_high
        );
        assert!(
            diff.abs() <= TOLERANCE,
            "{kind}: ours {ours:?}, NannyML {nml}"
        );
        assert_eq!(
            ours.auc.auc > 0.55,
            nml > 0.55,
            "{kind}: both see drift or neither"
        );
        assert_eq!(ours.reference_rows, 2000);
        assert_eq!(ours.window_rows, 1000);
    }
}
