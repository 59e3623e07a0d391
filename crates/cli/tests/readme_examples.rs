//! The README's `curl` examples, run as written against the real binary (only the address is
//! the test server's), each answering 2xx; and the rule behind them: every JSON endpoint reads a
//! JSON body whatever `Content-Type` it carries, unless it declares another format.

mod common;

use common::{client, decode, Server};
use serde_json::json;
use std::process::Command;

/// The `curl` commands of the README's fenced `sh` blocks, in order. A command may span lines
/// (a quoted body); a `#` outside quotes after a space starts a comment.
fn readme_curl_commands(readme: &str) -> Vec<String> {
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
            if !line.trim_start().starts_with("curl ") {
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
    let commands = readme_curl_commands(&readme);
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
        readme_curl_commands(text),
        vec![
            "curl -s a -d '[\n  {\"x\": \"# not a comment\"}]'".to_owned(),
            "curl -s b".to_owned()
        ]
    );
}
