//! `modelwatch drift` on real files, through the real binary: verdicts in JSON and in the
//! table, CSV and Parquet inputs, bad input named in the error, and the peer benchmark data.

use crate::common;

use common::modelwatch;

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Deterministic pseudo-random numbers (xorshift64*), so the files are the same every run.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Approximately standard normal (sum of 12 uniforms).
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

struct Rows {
    x_shift: Vec<f64>,
    x_same: Vec<f64>,
    city: Vec<&'static str>,
    flag: Vec<bool>,
}

const ROWS: usize = 2000;

/// Reference or current rows. In the current set `x_shift` moves by one sd and `city` gets a
/// category the reference never had (`oslo`, 20 % of rows); `x_same` and `flag` keep their
/// distribution.
fn rows(current: bool) -> Rows {
    let mut rng = Rng(if current { 0x9e37_79b9 } else { 0x1234_5678 });
    let mut r = Rows {
        x_shift: Vec::new(),
        x_same: Vec::new(),
        city: Vec::new(),
        flag: Vec::new(),
    };
    for _ in 0..ROWS {
        r.x_shift
            .push(10.0 + 2.0 * rng.normal() + if current { 2.0 } else { 0.0 });
        r.x_same.push(5.0 + rng.normal());
        let u = rng.uniform();
        r.city.push(match (current, u) {
            (true, u) if u < 0.2 => "oslo",
            (_, u) if u < 0.45 => "berlin",
            (_, u) if u < 0.75 => "paris",
            _ => "rome",
        });
        r.flag.push(rng.uniform() < 0.3);
    }
    r
}

fn write_csv(path: &Path, r: &Rows) {
    let mut s = String::from("request_id,x_shift,x_same,city,flag,y_pred_proba,y_pred\n");
    for i in 0..ROWS {
        s.push_str(&format!(
            "r{i},{},{},{},{},0.5,1\n",
            r.x_shift[i], r.x_same[i], r.city[i], r.flag[i]
        ));
    }
    std::fs::write(path, s).unwrap();
}

fn write_parquet(path: &Path, r: &Rows) {
    use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let ids: Vec<String> = (0..ROWS).map(|i| format!("r{i}")).collect();
    let batch = RecordBatch::try_from_iter([
        ("request_id", Arc::new(StringArray::from(ids)) as ArrayRef),
        (
            "x_shift",
            Arc::new(Float64Array::from(r.x_shift.clone())) as ArrayRef,
        ),
        (
            "x_same",
            Arc::new(Float64Array::from(r.x_same.clone())) as ArrayRef,
        ),
        (
            "city",
            Arc::new(StringArray::from(r.city.clone())) as ArrayRef,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(r.flag.clone())) as ArrayRef,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

struct Files {
    _dir: tempfile::TempDir,
    reference: PathBuf,
    current: PathBuf,
    current_parquet: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.csv");
    let current = dir.path().join("current.csv");
    let current_parquet = dir.path().join("current.parquet");
    write_csv(&reference, &rows(false));
    write_csv(&current, &rows(true));
    write_parquet(&current_parquet, &rows(true));
    Files {
        _dir: dir,
        reference,
        current,
        current_parquet,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json_report(reference: &Path, current: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "drift",
        "--reference",
        s(reference),
        "--current",
        s(current),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (ok, stdout, stderr) = modelwatch(&args);
    assert!(ok, "drift failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn feature<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == name)
        .unwrap_or_else(|| panic!("no feature {name} in {report}"))
}

fn check_verdicts(report: &Value) {
    let names: Vec<&str> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    // request_id and the model's outputs are not features.
    assert_eq!(names, ["x_shift", "x_same", "city", "flag"]);

    let f = feature(report, "x_shift");
    assert_eq!(f["kind"], "numeric");
    assert_eq!(f["method"], "ks");
    assert!(f["statistic"].as_f64().unwrap() > 0.2, "{f}");
    assert!(f["p_value"].as_f64().unwrap() < 1e-6, "{f}");
    assert_eq!(f["threshold"], 0.05);
    assert_eq!(f["drifted"], true, "{f}");

    let f = feature(report, "x_same");
    assert_eq!(f["kind"], "numeric");
    assert!(f["p_value"].as_f64().is_some(), "{f}");
    assert_eq!(f["drifted"], false, "{f}");

    let f = feature(report, "city");
    assert_eq!(f["kind"], "categorical");
    assert_eq!(f["method"], "chi_squared");
    assert_eq!(f["drifted"], true, "{f}");
    assert_eq!(f["unseen_categories"][0][0], "oslo", "{f}");

    let f = feature(report, "flag");
    assert_eq!(f["kind"], "boolean");
    assert_eq!(f["drifted"], false, "{f}");

    assert_eq!(report["drifted_features"], 2);
    assert_eq!(report["evaluated_features"], 4);
}

#[test]
fn json_verdicts_from_csv() {
    let f = files();
    check_verdicts(&json_report(&f.reference, &f.current, &[]));
}

#[test]
fn json_verdicts_from_parquet_current_match_csv() {
    let f = files();
    let from_csv = json_report(&f.reference, &f.current, &[]);
    let from_parquet = json_report(&f.reference, &f.current_parquet, &[]);
    check_verdicts(&from_parquet);
    // Same rows, same numbers, whichever format they came in.
    assert_eq!(from_csv, from_parquet);
}

#[test]
fn table_lists_every_feature_and_the_dataset_verdict() {
    let f = files();
    let (ok, stdout, stderr) = modelwatch(&[
        "drift",
        "--reference",
        s(&f.reference),
        "--current",
        s(&f.current),
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let header: Vec<&str> = lines[0].split("  ").filter(|c| !c.is_empty()).collect();
    let header: Vec<&str> = header.iter().map(|c| c.trim()).collect();
    assert_eq!(
        header,
        [
            "feature",
            "kind",
            "method",
            "statistic",
            "p-value",
            "adjusted p",
            "effect",
            "threshold",
            "drifted"
        ]
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("x_shift")[1..3], ["numeric", "ks"]);
    assert_eq!(row("x_shift").last(), Some(&"yes"));
    assert_eq!(row("x_same").last(), Some(&"no"));
    assert_eq!(row("city")[1..3], ["categorical", "chi_squared"]);
    assert_eq!(row("city").last(), Some(&"yes"));
    assert_eq!(row("flag").last(), Some(&"no"));
    // Aligned: the drifted column starts at the same place on every feature row.
    let at: Vec<usize> = lines[1..5].iter().map(|l| l.rfind(' ').unwrap()).collect();
    assert!(at.iter().all(|&a| a == at[0]), "{stdout}");
    assert!(
        stdout.contains("dataset drift: yes (2 of 4 features drifted, 50%"),
        "{stdout}"
    );
}

#[test]
fn features_and_method_overrides() {
    let f = files();
    let r = json_report(
        &f.reference,
        &f.current,
        &["--features", "x_same,city", "--method", "x_same=psi"],
    );
    let names: Vec<&str> = r["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x_same", "city"]);
    let x = feature(&r, "x_same");
    assert_eq!(x["method"], "psi");
    assert!(x["p_value"].is_null(), "a distance has no p-value: {x}");
    assert_eq!(x["threshold"], 0.1);
    assert_eq!(x["drifted"], false);
}

#[test]
fn bad_input_is_named_in_the_error() {
    let f = files();
    let dir = f.reference.parent().unwrap();
    let missing = dir.join("nope.parquet");
    let (ok, _, stderr) = modelwatch(&[
        "drift",
        "--reference",
        s(&f.reference),
        "--current",
        s(&missing),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("current file") && stderr.contains("nope.parquet"),
        "{stderr}"
    );

    // A feature of the reference that the current file lacks.
    let fewer = dir.join("fewer.csv");
    std::fs::write(&fewer, "x_shift,x_same,flag\n1,2,true\n").unwrap();
    let (ok, _, stderr) = modelwatch(&[
        "drift",
        "--reference",
        s(&f.reference),
        "--current",
        s(&fewer),
    ]);
    assert!(!ok);
    assert!(stderr.contains("feature `city`"), "{stderr}");

    // Nothing in common.
    let other = dir.join("other.csv");
    std::fs::write(&other, "a,b\n1,2\n").unwrap();
    let (ok, _, stderr) = modelwatch(&[
        "drift",
        "--reference",
        s(&f.reference),
        "--current",
        s(&other),
    ]);
    assert!(!ok);
    assert!(stderr.contains("no feature in common"), "{stderr}");

    // A --features name the reference lacks.
    let (ok, _, stderr) = modelwatch(&[
        "drift",
        "--reference",
        s(&f.reference),
        "--current",
        s(&f.current),
        "--features",
        "x_same,agee",
    ]);
    assert!(!ok);
    assert!(stderr.contains("feature `agee`"), "{stderr}");
}

/// The drifts `../shared/bench/peers/gen_data.py` injects (README of the peers' benchmark).
const INJECTED: [&str; 13] = [
    "c1", "c3", "c4", "f00", "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09",
];

/// Names of the drifted features of a JSON feature list, sorted.
fn drifted_names(features: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = features
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["drifted"] == true)
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    names.sort();
    names
}

/// The peers' 100k reference and current Parquet files, when generated (scripts/test.sh
/// generates them where the generator is, and then requires them).
fn peer_files() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".cache/modelwatch-bench/data");
    let (reference, current) = (
        dir.join("reference_100k.parquet"),
        dir.join("current_100k.parquet"),
    );
    if !reference.exists() || !current.exists() {
        assert!(
            std::env::var_os("MODELWATCH_REQUIRE_PEER_DATA").is_none(),
            "no {} / {}",
            reference.display(),
            current.display()
        );
        println!(
            "skipped: no {} / {}",
            reference.display(),
            current.display()
        );
        return None;
    }
    Some((reference, current))
}

/// The server's path on the same files: imported into a store, drift from the hourly sketches
/// over one 60-day window (2024-02-01 .. 03-01 falls in one), default settings: the same
/// verdicts as the offline command.
#[test]
fn peer_bench_data_in_the_server_flags_exactly_the_injected_drifts() {
    let Some((reference, current)) = peer_files() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let data_arg = data.to_str().unwrap();
    for (kind, file) in [("reference", &reference), ("predictions", &current)] {
        let (ok, _, stderr) = common::import(kind, file, "peers", &["--data", data_arg]);
        assert!(ok, "{stderr}");
    }
    let s = common::Server::start(&data);
    // The server's first (background) refresh decides the task and builds every hour's
    // aggregates and sketches (about 25 s in a debug build); a drift query before that
    // decision reads the raw events, as long: a longer timeout than the shared client's.
    let r = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .unwrap()
        .get(format!("{}/v1/models/peers/drift?window=60d", s.url))
        .send()
        .unwrap();
    let (status, d) = common::decode(r);
    assert_eq!(status, 200, "{d}");
    let w = d["windows"].as_array().unwrap();
    assert_eq!(w.len(), 1, "one window");
    assert_eq!(w[0]["rows"], 100_000);
    assert_eq!(drifted_names(&w[0]["features"]), INJECTED);
    assert_eq!(w[0]["evaluated_features"], 25);
}

/// The peers' benchmark data (`../shared/bench/peers/gen_data.py`), when it has been
/// generated: with default settings exactly the injected drifts are flagged (ADR 002).
#[test]
fn peer_bench_data_flags_exactly_the_injected_drifts() {
    let Some((reference, current)) = peer_files() else {
        return;
    };
    let r = json_report(&reference, &current, &[]);
    assert_eq!(drifted_names(&r["features"]), INJECTED);
    assert_eq!(r["evaluated_features"], 25, "20 numeric + 5 categorical");
    let c4 = feature(&r, "c4");
    let unseen: Vec<&str> = c4["unseen_categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[0].as_str().unwrap())
        .collect();
    assert!(
        unseen.contains(&"c4_new_x") && unseen.contains(&"c4_new_y"),
        "{c4}"
    );
}
