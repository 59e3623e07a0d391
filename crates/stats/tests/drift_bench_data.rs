//! Drift verdicts on the peer benchmark data (`/work/shared/bench/peers`, schema in its README),
//! compared with SciPy's values for the same files (`results/values_scipy_drift_*.json`).
//!
//! The data is generated, not committed: the tests print why and pass when the CSV files are
//! absent. Paths: `$MODELWATCH_BENCH_DATA` (default `~/.cache/modelwatch-bench/data`) and
//! `$MODELWATCH_BENCH_RESULTS` (default `/work/shared/bench/peers/results`).
//! The 1M-row case is `#[ignore]`: `cargo test -p modelwatch-stats --release --test
//! drift_bench_data -- --ignored --nocapture`.

use modelwatch_stats::drift::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Instant;

const NUMERIC: usize = 20;
const CATEGORICAL: usize = 5;

fn data_dir() -> PathBuf {
    std::env::var_os("MODELWATCH_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/modelwatch-bench/data")
        })
}

fn results_dir() -> PathBuf {
    std::env::var_os("MODELWATCH_BENCH_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/bench/peers/results"))
}

/// The 25 feature columns of a bench CSV (no quoted fields in these files).
struct Table {
    names: Vec<String>,
    numeric: Vec<Vec<f64>>,
    categorical: Vec<Vec<String>>,
}

fn read_csv(path: &PathBuf) -> Option<Table> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let num_idx: Vec<usize> = (0..NUMERIC)
        .map(|i| {
            header
                .iter()
                .position(|h| *h == format!("f{i:02}"))
                .expect("fNN column")
        })
        .collect();
    let cat_idx: Vec<usize> = (0..CATEGORICAL)
        .map(|i| {
            header
                .iter()
                .position(|h| *h == format!("c{i}"))
                .expect("cN column")
        })
        .collect();
    let mut t = Table {
        names: (0..NUMERIC)
            .map(|i| format!("f{i:02}"))
            .chain((0..CATEGORICAL).map(|i| format!("c{i}")))
            .collect(),
        numeric: vec![Vec::new(); NUMERIC],
        categorical: vec![Vec::new(); CATEGORICAL],
    };
    let mut fields: Vec<&str> = Vec::with_capacity(header.len());
    for line in lines {
        fields.clear();
        fields.extend(line.split(','));
        for (k, &i) in num_idx.iter().enumerate() {
            t.numeric[k].push(fields[i].parse().unwrap_or(f64::NAN));
        }
        for (k, &i) in cat_idx.iter().enumerate() {
            let s = fields[i];
            t.categorical[k].push(s.to_string());
        }
    }
    Some(t)
}

fn columns<'a>(t: &'a Table, cats: &'a [Vec<Option<&'a str>>]) -> Vec<(&'a str, Column<'a>)> {
    let mut cols: Vec<(&str, Column)> = Vec::new();
    for (k, v) in t.numeric.iter().enumerate() {
        cols.push((t.names[k].as_str(), Column::Numeric(v)));
    }
    for (k, v) in cats.iter().enumerate() {
        cols.push((t.names[NUMERIC + k].as_str(), Column::Categorical(v)));
    }
    cols
}

fn borrowed(t: &Table) -> Vec<Vec<Option<&str>>> {
    t.categorical
        .iter()
        .map(|c| {
            c.iter()
                .map(|s| (!s.is_empty()).then_some(s.as_str()))
                .collect()
        })
        .collect()
}

fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    (a - b).abs() <= abs || (a - b).abs() <= rel * b.abs()
}

fn run(current_file: &str, values_file: &str) {
    let dir = data_dir();
    let (ref_path, cur_path) = (dir.join("reference_100k.csv"), dir.join(current_file));
    if !ref_path.exists() || !cur_path.exists() {
        println!(
            "skipped: {} or {} not found (generate with /work/shared/bench/peers/gen_data.py)",
            ref_path.display(),
            cur_path.display()
        );
        return;
    }
    let t0 = Instant::now();
    let reference = read_csv(&ref_path).expect("reference csv");
    let current = read_csv(&cur_path).expect("current csv");
    let t_read = t0.elapsed();
    let (rc, cc) = (borrowed(&reference), borrowed(&current));
    let (rcols, ccols) = (columns(&reference, &rc), columns(&current, &cc));

    let t1 = Instant::now();
    let profile = ReferenceProfile::build(&rcols, ProfileOptions::default());
    let t_profile = t1.elapsed();
    let t2 = Instant::now();
    let report = drift_report(&profile, &ccols, &DriftConfig::default());
    let t_report = t2.elapsed();
    println!(
        "{current_file}: csv read {:.2}s, profile {:.3}s, drift report {:.3}s",
        t_read.as_secs_f64(),
        t_profile.as_secs_f64(),
        t_report.as_secs_f64()
    );
    println!("feature method      stat        p_adj      effect   drifted | ks_D     psi      js       w_norm");
    for f in &report.features {
        let s = &f.secondary;
        println!(
            "{:7} {:11} {:<11.5} {:<10.3e} {:<8.4} {:7} | {:<8.5} {:<8.5} {:<8.5} {:<8.5}",
            f.feature,
            format!("{:?}", f.method),
            f.statistic.unwrap_or(f64::NAN),
            f.p_value_adjusted.unwrap_or(f64::NAN),
            f.effect_size.unwrap_or(f64::NAN),
            f.drifted,
            s.ks_statistic.unwrap_or(f64::NAN),
            s.psi.unwrap_or(f64::NAN),
            s.jensen_shannon.unwrap_or(f64::NAN),
            s.wasserstein_normed.unwrap_or(f64::NAN),
        );
    }
    let drifted: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.drifted)
        .map(|f| f.feature.as_str())
        .collect();
    println!(
        "drifted: {drifted:?}; dataset drift {}",
        report.dataset_drift
    );
    // Naive rules, for the ADR: raw p < 0.05 without effect size or correction.
    let p_only: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.p_value.is_some_and(|p| p < 0.05))
        .map(|f| f.feature.as_str())
        .collect();
    println!("p < 0.05 alone: {p_only:?}");
    // Other rules on the same numbers, for docs/adr/002-drift-test-choice.md.
    let rule = |name: &str, pred: &dyn Fn(&FeatureDrift) -> bool| {
        let hit: Vec<&str> = report
            .features
            .iter()
            .filter(|f| pred(f))
            .map(|f| f.feature.as_str())
            .collect();
        println!("{name}: {} {hit:?}", hit.len());
    };
    let s = |f: &FeatureDrift| f.secondary.clone();
    rule("bh-adjusted p < 0.05 alone", &|f| {
        f.p_value_adjusted.is_some_and(|p| p < 0.05)
    });
    rule(
        "evidently large-n rule (w_norm >= 0.1 numeric, js >= 0.1 categorical)",
        &|f| {
            s(f).wasserstein_normed.map_or_else(
                || s(f).jensen_shannon.is_some_and(|j| j >= 0.1),
                |w| w >= 0.1,
            )
        },
    );
    rule("psi >= 0.1", &|f| s(f).psi.is_some_and(|v| v >= 0.1));
    rule("chi2 on bins p < 0.05", &|f| {
        s(f).chi2_p_value.is_some_and(|p| p < 0.05)
    });
    let expected: Vec<String> = (0..10)
        .map(|i| format!("f{i:02}"))
        .chain(["c1", "c3", "c4"].map(String::from))
        .collect();
    assert_eq!(drifted, expected, "default verdicts");
    let c4 = report.features.iter().find(|f| f.feature == "c4").unwrap();
    assert!(c4.unseen_rows.unwrap() > 0, "c4 unseen categories counted");

    // SciPy's values on the same files.
    let values_path = results_dir().join(values_file);
    let Ok(text) = std::fs::read_to_string(&values_path) else {
        println!(
            "skipped scipy comparison: {} not found",
            values_path.display()
        );
        return;
    };
    let v: Value = serde_json::from_str(&text).expect("values json");
    for f in &report.features {
        let s = &f.secondary;
        if let Some(ks) = v["ks"].get(&f.feature) {
            let (d, p) = (
                ks["statistic"].as_f64().unwrap(),
                ks["pvalue"].as_f64().unwrap(),
            );
            assert!(
                close(s.ks_statistic.unwrap(), d, 1e-9, 1e-12),
                "{} ks D",
                f.feature
            );
            assert!(
                close(s.ks_p_value.unwrap(), p, 1e-6, 1e-12),
                "{} ks p {} vs {p}",
                f.feature,
                s.ks_p_value.unwrap()
            );
        }
        if let Some(chi) = v["chi2"].get(&f.feature) {
            let (st, p) = (
                chi["statistic"].as_f64().unwrap(),
                chi["pvalue"].as_f64().unwrap(),
            );
            assert!(
                close(s.chi2_statistic.unwrap(), st, 1e-9, 1e-12),
                "{} chi2",
                f.feature
            );
            assert!(
                close(s.chi2_p_value.unwrap(), p, 1e-6, 1e-12),
                "{} chi2 p",
                f.feature
            );
            assert_eq!(
                s.chi2_dof.unwrap(),
                chi["dof"].as_u64().unwrap(),
                "{} dof",
                f.feature
            );
        }
        let psi = v["psi"][&f.feature].as_f64().unwrap();
        assert!(
            close(s.psi.unwrap(), psi, 1e-9, 1e-12),
            "{} psi {} vs {psi}",
            f.feature,
            s.psi.unwrap()
        );
    }
    println!("scipy values match ({values_file})");
}

#[test]
fn bench_100k_default_verdicts_and_scipy_values() {
    run("current_100k.csv", "values_scipy_drift_100k.json");
}

#[test]
#[ignore = "reads the 300 MB 1M-row CSV; run with --release --ignored"]
fn bench_1m_default_verdicts_and_scipy_values() {
    run("current_1m.csv", "values_scipy_drift_1m.json");
}
