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

/// A file whose rows have several feature schemas (a feature added part-way, values of the
/// wrong kind, nulls, a repeated id) is stored, and its bad rows refused and named, exactly as
/// the same rows sent over HTTP: the import holds its rows without their events between
/// encoding and the writer (`crates/store/src/sqlite/gathered.rs`), the server holds events.
#[test]
fn a_file_of_mixed_feature_schemas_imports_as_the_same_rows_sent_over_http() {
    let row = |id: &str, hour: u32, features: serde_json::Value| {
        serde_json::json!({
            "request_id": id, "timestamp": format!("2026-01-01T{hour:02}:00:00Z"),
            "model_version": "v1", "features": features, "prediction": 1, "score": 0.7
        })
    };
    let rows = [
        row("a", 1, serde_json::json!({"age": 30, "country": "DE"})),
        row(
            "b",
            2,
            serde_json::json!({"age": 31, "country": "FR", "city": "Lyon"}),
        ),
        row("c", 3, serde_json::json!({"age": "old", "country": "DE"})),
        row("d", 4, serde_json::json!({"age": "young", "country": "IT"})),
        row("e", 5, serde_json::json!({"age": null, "country": "DE"})),
        row("a", 6, serde_json::json!({"age": 32, "country": "DE"})),
        row(
            "f",
            7,
            serde_json::json!({"country": "FR", "age": 33, "city": true}),
        ),
        row(
            "g",
            8,
            serde_json::json!({"age": 34, "country": "DE", "city": "Köln"}),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.ndjson");
    let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let data = dir.path().join("data");
    let (ok, stdout, stderr) = import(
        "predictions",
        &file,
        "from-file",
        &["--data", data.to_str().unwrap()],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("4 accepted, 0 duplicates, 4 rejected"),
        "{stdout}"
    );
    // Each refused row named by its place, its field and its own value.
    for line in [
        r#"rejected row 2 features.age: expected a number (numeric feature), got string "old""#,
        r#"rejected row 3 features.age: expected a number (numeric feature), got string "young""#,
        "rejected row 5 request_id: appears twice in this batch (first at row 0)",
        "rejected row 6 features.city: expected a string (categorical feature), got boolean true",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }

    let s = Server::start(&data);
    let (status, body) = s.post("/v1/models/over-http/predictions", &text.join("\n"));
    assert_eq!(status, 200, "{body}");
    let model = |name: &str| {
        let m = s.get_ok(&format!("/v1/models/{name}"));
        (m["schema"].clone(), m["predictions"].clone())
    };
    assert_eq!(model("from-file"), model("over-http"));
    assert_eq!(model("from-file").1, 4);
    let rejected = |name: &str| {
        let q = s.get_ok(&format!("/v1/models/{name}/rejected"));
        let mut rows: Vec<String> = q["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {} {} {}", r["index"], r["field"], r["reason"], r["row"]))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(rejected("from-file"), rejected("over-http"));
    assert_eq!(rejected("from-file").len(), 4);
    let stored = |name: &str| {
        let p = s.get_ok(&format!("/v1/models/{name}/predictions?limit=100"));
        p["predictions"].clone()
    };
    assert_eq!(stored("from-file"), stored("over-http"));
}
