//! `modelwatch export --server URL`: the same Parquet files as from the data directory, read
//! by paging through a running server's read endpoints (the server holds the directory).

use crate::common;

use common::{modelwatch, Server};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Value};

/// Every row of a Parquet file, as text, in file order.
fn parquet_rows(path: &std::path::Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| arrow::util::display::array_value_to_string(c, row).unwrap_or_default())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out
}

#[test]
fn export_over_http_pages_through_the_server_and_equals_the_data_directory_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data);
    // More rows than one page of the API (10,000), with every optional field somewhere.
    let n = 12_345;
    let preds: Vec<Value> = (0..n)
        .map(|i| {
            let country = ["DE", "FR", "IT"][i % 3];
            let mut row = json!({
                "request_id": format!("r-{i}"),
                "timestamp": format!("2026-01-0{}T{:02}:00:00Z", 1 + i % 3, i % 24),
                "model_version": if i % 2 == 0 { "v1" } else { "v2" },
                "features": {"age": i % 90, "country": country},
                "prediction": i % 2, "score": (i % 100) as f64 / 100.0,
                "latency_ms": 1.5 + (i % 7) as f64,
            });
            if i % 1000 == 0 {
                row["error"] = json!("upstream timeout");
                row["tags"] = json!({"region": "eu"});
            }
            row
        })
        .collect();
    let (s, out) = server.post("/v1/models/m/predictions", &Value::Array(preds).to_string());
    assert_eq!(s, 200, "{out}");
    let labels: Vec<Value> = (0..n)
        .step_by(3)
        .map(|i| {
            json!({"request_id": format!("r-{i}"), "label": i % 2,
                        "timestamp": "2026-01-05T00:00:00Z"})
        })
        .collect();
    let (s, out) = server.post("/v1/models/m/labels", &Value::Array(labels).to_string());
    assert_eq!(s, 200, "{out}");

    let over_http = |what: &str| {
        let out = dir.path().join(format!("http-{what}.parquet"));
        let (ok, stdout, stderr) = modelwatch(&[
            "export",
            what,
            "--model",
            "m",
            "--server",
            &server.url,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{stdout}{stderr}");
        (out, stdout)
    };
    let (http_preds, said) = over_http("predictions");
    assert!(said.contains(&format!("wrote {n} rows")), "{said}");
    let (http_labels, said) = over_http("labels");
    assert!(
        said.contains(&format!("wrote {} rows", n.div_ceil(3))),
        "{said}"
    );
    // An unknown model: the server's message.
    let (ok, _, err) = modelwatch(&[
        "export",
        "labels",
        "--model",
        "nobody",
        "--server",
        &server.url,
        "--out",
        dir.path().join("x.parquet").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("404"), "{err}");

    server.stop();
    for (what, http) in [("predictions", &http_preds), ("labels", &http_labels)] {
        let local = dir.path().join(format!("local-{what}.parquet"));
        let (ok, stdout, stderr) = modelwatch(&[
            "export",
            what,
            "--model",
            "m",
            "--data",
            data.to_str().unwrap(),
            "--out",
            local.to_str().unwrap(),
        ]);
        assert!(ok, "{stdout}{stderr}");
        let (a, b) = (parquet_rows(http), parquet_rows(&local));
        assert!(!a.is_empty());
        assert_eq!(a.len(), b.len(), "{what}");
        assert!(a == b, "{what}: the files differ");
    }
}
