//! The README's `curl` examples, run as written against the real binary (only the address is
//! the test server's), each answering 2xx; and the rule behind them: every JSON endpoint reads a
//! JSON body whatever `Content-Type` it carries, unless it declares another format.

use crate::common;

use common::{client, decode, Server};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// The commands starting with `program ` in the README's fenced `sh` blocks, in order. A
/// command may span lines (a quoted body); a `#` outside quotes after a space starts a comment.
fn readme_commands(readme: &str, program: &str) -> Vec<String> {
    let start = format!("{program} ");
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current: Option<String> = None;
    let mut quoted = false;
    for line in readme.lines() {
        if !in_sh {
            in_sh = line.trim_start().starts_with("```sh");
            continue;
        }
        if current.is_none() && line.trim_start().starts_with("```") {
            in_sh = false;
            continue;
        }
        if current.is_none() {
            if !line.trim_start().starts_with(&start) {
                continue;
            }
            current = Some(String::new());
        }
        let cmd = current.as_mut().expect("in a command");
        let mut prev = ' ';
        let mut kept = String::new();
        for c in line.chars() {
            if c == '\'' {
                quoted = !quoted;
            }
            if c == '#' && !quoted && prev.is_whitespace() {
                break;
            }
            kept.push(c);
            prev = c;
        }
        if !cmd.is_empty() {
            cmd.push('\n');
        }
        cmd.push_str(kept.trim_end());
        if !quoted {
            commands.push(current.take().expect("a command").trim().to_owned());
        }
    }
    assert!(
        !quoted,
        "an unclosed quote in the README's last curl command"
    );
    commands
}

#[test]
fn every_readme_curl_example_succeeds_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    // The examples addressed to a local server (an example of a proxy or a remote host is
    // not something this test can answer).
    let commands: Vec<String> = readme_commands(&readme, "curl")
        .into_iter()
        .filter(|c| c.contains("localhost:8080"))
        .collect();
    assert!(commands.len() >= 14, "{commands:#?}");
    // The examples the README is for: ingest, labels, every read, the reference, a rule, a
    // silence, the CSV table.
    for wanted in [
        "/predictions",
        "/labels",
        "/reference",
        "/rules",
        "/silences",
        "/drift",
        "format=csv",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(wanted)),
            "no README curl example for {wanted}: {commands:#?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let address = server.url.trim_start_matches("http://").to_owned();
    for cmd in &commands {
        let run = cmd.replace("localhost:8080", &address) + " -w '\\n%{http_code}'";
        let out = Command::new("bash")
            .args(["-c", &run])
            .output()
            .expect("curl (the README's examples use it) runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(out.status.success(), "{cmd}: curl failed: {out:?}");
        assert!(
            status.starts_with('2'),
            "README example answered {status}:\n{cmd}\n{body}"
        );
    }

    // Then the command line's examples, in a directory holding the files they name (made
    // here), against the same server where they say `--server`.
    let work = tempfile::tempdir().unwrap();
    write_example_files(work.path());
    let cli: Vec<String> = readme_commands(&readme, "modelwatch")
        .into_iter()
        .filter(|c| !c.starts_with("modelwatch demo") && !c.starts_with("modelwatch serve"))
        .collect();
    for wanted in ["import", "export", "drift", "report"] {
        assert!(
            cli.iter()
                .any(|c| c.starts_with(&format!("modelwatch {wanted} "))),
            "no README example of modelwatch {wanted}: {cli:#?}"
        );
    }
    for cmd in &cli {
        let run = cmd
            .replacen("modelwatch", env!("CARGO_BIN_EXE_modelwatch"), 1)
            .replace("127.0.0.1:8080", &address);
        let out = Command::new("bash")
            .args(["-c", &run])
            .current_dir(work.path())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "README example failed:\n{cmd}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for made in [
        "credit.parquet",
        "labels.parquet",
        "report.html",
        "report.json",
        "moved-data/modelwatch.db",
    ] {
        assert!(work.path().join(made).is_file(), "{made} was not written");
    }
}

/// The files the README's command line examples name: predictions, labels, a reference, and
/// the two sides of an offline drift check, as CSV and Parquet.
fn write_example_files(dir: &Path) {
    use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let n = 200;
    let country = |i: usize| ["DE", "FR", "IT"][i % 3];
    let age = |i: usize, shift: f64| 20.0 + (i % 50) as f64 + shift;
    let parquet = |name: &str, columns: Vec<(&str, ArrayRef)>| {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = std::fs::File::create(dir.join(name)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    };
    let strings = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from((0..n).map(f).collect::<Vec<_>>()))
    };
    let floats = |f: &dyn Fn(usize) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from((0..n).map(f).collect::<Vec<_>>()))
    };
    parquet(
        "preds.parquet",
        vec![
            ("request_id", strings(&|i| format!("p-{i}"))),
            (
                "timestamp",
                strings(&|i| format!("2026-01-0{}T10:00:00Z", 1 + i % 5)),
            ),
            ("age", floats(&|i| age(i, 0.0))),
            ("country", strings(&|i| country(i).to_owned())),
            (
                "y_pred",
                Arc::new(Int64Array::from(
                    (0..n as i64).map(|i| i % 2).collect::<Vec<_>>(),
                )),
            ),
            (
                "y_pred_proba",
                floats(&|i| if i % 2 == 1 { 0.8 } else { 0.3 }),
            ),
        ],
    );
    let csv = |name: &str, header: &str, row: &dyn Fn(usize) -> String| {
        let body: String = (0..n).map(|i| row(i) + "\n").collect();
        std::fs::write(dir.join(name), format!("{header}\n{body}")).unwrap();
    };
    csv("labels.csv", "request_id,label", &|i| {
        format!("p-{i},{}", (i + usize::from(i % 10 == 0)) % 2)
    });
    csv("train.csv", "age,country,prediction,score,label", &|i| {
        format!(
            "{},{},{},{},{}",
            age(i, 0.0),
            country(i),
            i % 2,
            0.3 + 0.5 * (i % 2) as f64,
            i % 2
        )
    });
    csv(
        "preds.csv",
        "request_id,timestamp,age,country,prediction,score",
        &|i| {
            format!(
                "c-{i},2026-01-06T10:00:00Z,{},{},{},{}",
                age(i, 0.0),
                country(i),
                i % 2,
                0.3 + 0.5 * (i % 2) as f64
            )
        },
    );
    csv("today.csv", "age,country", &|i| {
        format!("{},{}", age(i, 15.0), country(i))
    });
    for (name, shift) in [("train.parquet", 0.0), ("last_week.parquet", 15.0)] {
        parquet(
            name,
            vec![
                ("age", floats(&|i| age(i, shift))),
                ("country", strings(&|i| country(i).to_owned())),
            ],
        );
    }
}

#[test]
fn json_endpoints_read_json_without_a_json_content_type_and_refuse_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (s, _) = server.post(
        "/v1/models/m/predictions",
        r#"[{"request_id": "r-1", "prediction": 1, "features": {"age": 3}}]"#,
    );
    assert_eq!(s, 200);
    let c = client();
    let url = |p: &str| format!("{}{p}", server.url);
    let bodies = [
        (
            reqwest::Method::POST,
            "/v1/models/m/rules",
            json!({"name": "acc", "signal": "accuracy",
                   "condition": {"kind": "threshold", "op": "<", "value": 0.8},
                   "decision": "review", "severity": "warning"}),
            201,
        ),
        (
            reqwest::Method::POST,
            "/v1/silences",
            json!({"model": "m", "duration": "1h", "comment": "test"}),
            201,
        ),
        (
            reqwest::Method::POST,
            "/v1/models/m/heartbeats",
            json!({"job": "train", "status": "success"}),
            200,
        ),
        (
            reqwest::Method::PATCH,
            "/v1/models/m",
            json!({"retention_days": 30}),
            200,
        ),
        (
            reqwest::Method::PUT,
            "/v1/models/m/schema",
            json!({"features": [{"name": "age", "kind": "numeric"}]}),
            200,
        ),
    ];
    for (i, (method, path, body, status)) in bodies.iter().enumerate() {
        // Without a Content-Type, and with curl's default for `-d`: read as JSON.
        let mut b = body.clone();
        if b.get("name").is_some() {
            b["name"] = json!(format!("acc-{i}-a"));
        }
        let r = c
            .request(method.clone(), url(path))
            .body(b.to_string())
            .send()
            .unwrap();
        let (s, out) = decode(r);
        assert_eq!(s, *status, "{method} {path} without a type: {out}");
        let mut b = body.clone();
        if b.get("name").is_some() {
            b["name"] = json!(format!("acc-{i}-b"));
        }
        let r = c
            .request(method.clone(), url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b.to_string())
            .send()
            .unwrap();
        let (s, out) = decode(r);
        assert_eq!(s, *status, "{method} {path} as curl -d sends it: {out}");
        // A declared other format: 415 with the API's JSON error.
        let r = c
            .request(method.clone(), url(path))
            .header("content-type", "text/csv")
            .body("name,signal\nacc,accuracy\n")
            .send()
            .unwrap();
        let (s, out) = decode(r);
        assert_eq!(s, 415, "{method} {path} as CSV: {out}");
        assert_eq!(out["error"]["code"], "unsupported_media_type", "{out}");
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .contains("text/csv"),
            "{out}"
        );
        // Not JSON at all: 400 naming the problem.
        let r = c
            .request(method.clone(), url(path))
            .body("{not json")
            .send()
            .unwrap();
        let (s, out) = decode(r);
        assert_eq!(s, 400, "{method} {path} with a broken body: {out}");
        assert!(out["error"]["message"].as_str().is_some(), "{out}");
    }
}

#[test]
fn the_readme_parser_keeps_multi_line_bodies_and_drops_comments() {
    let text = "```sh\n# a comment\ncurl -s a -d '[\n  {\"x\": \"# not a comment\"}]'  # note\ncurl -s b   # b\nmodelwatch import x\n```\n```python\ncurl -s c\n```\n";
    assert_eq!(
        readme_commands(text, "curl"),
        vec![
            "curl -s a -d '[\n  {\"x\": \"# not a comment\"}]'".to_owned(),
            "curl -s b".to_owned()
        ]
    );
}
