//! `modelwatch import` and `export` on real files: into a data directory, into a running
//! server, and the reference upload over HTTP.

use crate::common;

use common::{client, import, modelwatch, Server};

const CSV: &str = "request_id,timestamp,model_version,age,country,y_pred_proba,y_pred,y_true
r1,2026-01-01 10:00:00,v1,41,DE,0.9,1,1
r2,2026-01-01 11:00:00,v1,35,FR,0.2,0,0
r3,2026-01-02 10:00:00,v1,abc,FR,0.4,0,1
r4,2026-01-02 11:00:00,v1,29,DE,1.7,1,1
,2026-01-02 12:00:00,v1,50,DE,0.5,1,0
r6,2026-01-03 12:00:00,v2,52,IT,0.6,1,0
";

#[test]
fn import_a_csv_into_a_data_directory_then_serve_it_and_export_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("preds.csv");
    std::fs::write(&csv, CSV).unwrap();
    let data = dir.path().join("data");
    let (ok, stdout, stderr) = import(
        "predictions",
        &csv,
        "credit",
        &["--data", data.to_str().unwrap()],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("3 accepted"), "{stdout}");
    assert!(stdout.contains("3 rejected"), "{stdout}");
    assert!(
        stdout.contains("features.age"),
        "the bad cell is named: {stdout}"
    );
    assert!(stdout.contains("score"), "{stdout}");
    assert!(stdout.contains("request_id"), "{stdout}");
    // Importing again counts duplicates, not new rows.
    let (_, again, _) = import(
        "predictions",
        &csv,
        "credit",
        &["--data", data.to_str().unwrap()],
    );
    assert!(again.contains("0 accepted, 3 duplicates"), "{again}");

    let out = dir.path().join("out.parquet");
    let (ok, stdout, stderr) = modelwatch(&[
        "export",
        "predictions",
        "--model",
        "credit",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("wrote 3 rows"), "{stdout}");
    let file = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 3);

    let s = Server::start(&data);
    let (_, m) = s.get("/v1/models/credit");
    assert_eq!(m["predictions"], 3);
    assert_eq!(m["labels"], 3, "the y_true column was imported as labels");
    assert_eq!(m["schema"]["features"][0]["name"], "age");
    assert_eq!(m["versions"].as_array().unwrap().len(), 2);
    let (_, q) = s.get("/v1/models/credit/rejected");
    // Imported twice: each import quarantines its three bad rows.
    assert_eq!(q["rejected"].as_array().unwrap().len(), 6);
}

#[test]
fn import_is_refused_while_a_server_holds_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("preds.csv");
    std::fs::write(&csv, CSV).unwrap();
    let data = dir.path().join("data");
    let _s = Server::start(&data);
    let (ok, _, stderr) = import(
        "predictions",
        &csv,
        "credit",
        &["--data", data.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        stderr.contains("--server"),
        "the error says what to do: {stderr}"
    );
}

#[test]
fn import_into_a_running_server_and_upload_a_reference_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("preds.csv");
    std::fs::write(&csv, CSV).unwrap();
    let s = Server::start(&dir.path().join("data"));
    let (ok, stdout, stderr) = import("predictions", &csv, "credit", &["--server", &s.url]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("3 accepted"), "{stdout}");
    let (_, m) = s.get("/v1/models/credit");
    assert_eq!(
        (m["predictions"].as_u64(), m["labels"].as_u64()),
        (Some(3), Some(3))
    );

    // The reference as a CSV body over HTTP.
    let reference = "age,country,y_pred_proba,y_true\n40,DE,0.8,1\n33,FR,0.3,0\n28,DE,0.6,1\n51,IT,0.2,0\n47,FR,0.7,1\nold,FR,0.1,0\n";
    let r = client()
        .put(format!("{}/v1/models/credit/reference?version=v1", s.url))
        .header("content-type", "text/csv")
        .body(reference)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let out: serde_json::Value = r.json().unwrap();
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["rows"], 5);
    assert_eq!(out["rejected"][0]["index"], 5);
    assert_eq!(out["rejected"][0]["field"], "features.age");
    let (_, m) = s.get("/v1/models/credit");
    assert_eq!(m["reference"][0]["version"], "v1");
    assert_eq!(m["reference"][0]["rows"], 5);
    // And through the CLI with --server.
    let refcsv = dir.path().join("ref.csv");
    std::fs::write(&refcsv, reference).unwrap();
    let (ok, stdout, stderr) = import(
        "reference",
        &refcsv,
        "credit",
        &["--version", "v2", "--server", &s.url],
    );
    assert!(ok, "{stdout}{stderr}");
    let (_, m) = s.get("/v1/models/credit");
    assert_eq!(m["reference"].as_array().unwrap().len(), 2);
    // A body that is no table at all.
    let r = client()
        .put(format!("{}/v1/models/credit/reference", s.url))
        .header("content-type", "image/png")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
}

#[test]
fn a_missing_column_named_on_the_command_line_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("preds.csv");
    std::fs::write(&csv, CSV).unwrap();
    let (ok, _, stderr) = modelwatch(&[
        "import",
        "predictions",
        csv.to_str().unwrap(),
        "--model",
        "credit",
        "--data",
        dir.path().join("d").to_str().unwrap(),
        "--score-col",
        "proba_1",
    ]);
    assert!(!ok);
    assert!(stderr.contains("proba_1"), "{stderr}");
}
