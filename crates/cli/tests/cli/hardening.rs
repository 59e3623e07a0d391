//! Bad input found by the adversarial review (issue 19), each through the real binary: the
//! service answers a clear 4xx and keeps serving.

use crate::common;

use common::{client, decode, import, modelwatch, prediction, Server};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

/// Non-ASCII in a span (`1ü`, `%ff`) once panicked in `split_at` and dropped the connection
/// (query parameters, dashboard pages) or answered 500 (rule windows, `for`, silences).
#[test]
fn a_non_ascii_span_is_a_400_naming_the_parameter_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let rows = json!([prediction("r-1", "2026-01-02T03:04:05Z", 41.0, "DE")]).to_string();
    assert_eq!(s.post("/v1/models/fraud/predictions", &rows).0, 200);

    for path in [
        "/v1/models/fraud/metrics?window=1%C3%BC",
        "/v1/models/fraud/metrics?window=%ff",
        "/v1/models/fraud/drift?window=1%E2%82%AC",
        "/v1/models/fraud/quality?window=%C3%BC",
    ] {
        let (status, body) = s.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.to_string().contains("window"), "{path}: {body}");
    }
    for path in [
        "/models/fraud?range=1%C3%BC",
        "/models/fraud?window=1%C3%BC",
        "/models/fraud/drift?range=%ff",
    ] {
        let r = client().get(format!("{}{}", s.url, path)).send().unwrap();
        let status = r.status().as_u16();
        let text = r.text().unwrap();
        assert_eq!(status, 400, "{path}: {text}");
    }

    for (rule, field) in [
        (
            json!({"name": "w", "signal": "accuracy", "window": "1ü", "decision": "retrain", "severity": "warning",
                   "condition": {"kind": "threshold", "op": "<", "value": 0.9}}),
            "window",
        ),
        (
            json!({"name": "f", "signal": "accuracy", "for": "1€", "decision": "retrain", "severity": "warning",
                   "condition": {"kind": "threshold", "op": "<", "value": 0.9}}),
            "for",
        ),
    ] {
        let (status, body) = s.post("/v1/models/fraud/rules", &rule.to_string());
        assert_eq!(status, 400, "{rule}: {body}");
        assert!(body.to_string().contains(field), "{rule}: {body}");
    }
    let (status, body) = s.post(
        "/v1/silences",
        &json!({"model": "fraud", "duration": "2ü"}).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("duration"), "{body}");

    // Still serving.
    let (status, _) = decode(
        client()
            .get(format!("{}/v1/models/fraud", s.url))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
}

/// Waits for `child` to exit. Still running after a minute is a hang, not a slow machine
/// (the shutdown grace is 10 s, a refused start takes well under one): the child is killed
/// and the test fails with `hang`.
fn exits(child: &mut std::process::Child, hang: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + StdDuration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{hang}");
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
}

/// `modelwatch serve` on `dir`, expected to refuse to start: its stderr. Fails the test if it
/// starts serving instead (it would print its address) or does not exit within a minute.
fn refused_start(dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exits(&mut child, "serve started over a damaged data directory");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "serve exited 0: {err}");
    err
}

/// A data directory holding `n` acknowledged predictions, the server stopped by `stop`.
fn store_with_rows(n: usize, stop: impl FnOnce(&mut Server)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let rows: Vec<_> = (0..n)
        .map(|i| prediction(&format!("r-{i}"), "2026-01-02T03:04:05Z", i as f64, "DE"))
        .collect();
    for chunk in rows.chunks(2_000) {
        let (status, body) = s.post(
            "/v1/models/fraud/predictions",
            &serde_json::to_string(chunk).unwrap(),
        );
        assert_eq!(status, 200, "{body}");
    }
    stop(&mut s);
    dir
}

fn check(dir: &Path) -> (bool, String) {
    let (ok, out, err) = modelwatch(&["check", "--data", dir.to_str().unwrap()]);
    (ok, format!("{out}{err}"))
}

#[test]
fn damaged_store_files_refuse_to_start_and_nothing_is_created_over_them() {
    let db = |d: &tempfile::TempDir| d.path().join("modelwatch.db");
    let wal = |d: &tempfile::TempDir| d.path().join("modelwatch.db-wal");

    // A clean stop, then the database emptied.
    let d = store_with_rows(3_000, Server::stop);
    assert!(check(d.path()).0, "{}", check(d.path()).1);
    std::fs::write(db(&d), b"").unwrap();
    let err = refused_start(d.path());
    assert!(err.contains("damaged") && err.contains("empty"), "{err}");
    assert!(err.contains("modelwatch check --data"), "{err}");
    assert_eq!(
        std::fs::metadata(db(&d)).unwrap().len(),
        0,
        "no store created over it"
    );
    let (ok, out) = check(d.path());
    assert!(!ok && out.contains("empty"), "{out}");

    // A crash, then the database deleted with its write-ahead log kept.
    let d = store_with_rows(3_000, Server::kill9);
    assert!(wal(&d).exists());
    std::fs::remove_file(db(&d)).unwrap();
    let err = refused_start(d.path());
    assert!(err.contains("modelwatch.db is missing"), "{err}");
    assert!(!db(&d).exists(), "no store created over it");

    // A crash, then the write-ahead log deleted: the commits since the last checkpoint.
    let d = store_with_rows(3_000, Server::kill9);
    std::fs::remove_file(wal(&d)).unwrap();
    let err = refused_start(d.path());
    assert!(err.contains("write-ahead log"), "{err}");
    let (ok, out) = check(d.path());
    assert!(!ok && out.contains("write-ahead log"), "{out}");

    // Garbage pages in the middle of the file.
    let d = store_with_rows(20_000, Server::stop);
    let mut bytes = std::fs::read(db(&d)).unwrap();
    let page = 16_384;
    assert!(bytes.len() > 8 * page, "{} bytes", bytes.len());
    let end = bytes.len() - page;
    for (i, b) in bytes[2 * page..end].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    std::fs::write(db(&d), &bytes).unwrap();
    let err = refused_start(d.path());
    assert!(err.contains("damaged"), "{err}");
    let (ok, out) = check(d.path());
    assert!(!ok && out.contains("damaged"), "{out}");
}

#[test]
fn a_sound_store_restarts_after_a_crash_and_after_a_clean_stop() {
    let d = store_with_rows(2_000, Server::kill9);
    let (ok, out) = check(d.path());
    assert!(ok, "{out}");
    // After a kill -9 the next open runs SQLite's check (ADR 017).
    assert!(out.contains("next open runs SQLite's quick check"), "{out}");
    let mut s = Server::start(d.path());
    let (_, model) = s.get("/v1/models/fraud");
    assert_eq!(model["predictions"], 2_000, "{model}");
    s.stop();
    let (ok, out) = check(d.path());
    assert!(ok && out.contains("closed cleanly"), "{out}");
    assert!(
        out.contains("next open skips SQLite's quick check"),
        "{out}"
    );
    let s = Server::start(d.path());
    assert_eq!(s.get("/v1/models/fraud").1["predictions"], 2_000);
}

#[test]
fn deleting_lock_does_not_let_a_second_process_in() {
    let dir = tempfile::tempdir().unwrap();
    let _s = Server::start(dir.path());
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    let err = refused_start(dir.path());
    assert!(
        err.contains("in use by another modelwatch process"),
        "{err}"
    );
}

/// A client holding a half-sent request (headers cut off, or a body shorter than its
/// Content-Length) once kept `serve` from stopping on SIGTERM for as long as it liked.
#[test]
fn sigterm_stops_the_server_while_clients_hold_half_sent_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let rows = json!([prediction("r-1", "2026-01-02T03:04:05Z", 41.0, "DE")]).to_string();
    assert_eq!(s.post("/v1/models/fraud/predictions", &rows).0, 200);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut half_header = std::net::TcpStream::connect(&addr).unwrap();
    half_header
        .write_all(b"POST /v1/models/fraud/predictions HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut half_body = std::net::TcpStream::connect(&addr).unwrap();
    half_body
        .write_all(
            b"POST /v1/models/fraud/predictions HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"request_id\"",
        )
        .unwrap();
    std::thread::sleep(StdDuration::from_millis(300));
    let pid = s.child.id() as i32;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = exits(&mut s.child, "still running a minute after SIGTERM");
    assert!(status.success(), "{status:?}");
    drop((half_header, half_body));
    // What was acknowledged is there, and the store was closed cleanly.
    let (ok, out) = check(dir.path());
    assert!(ok && out.contains("closed cleanly"), "{out}");
    let s = Server::start(dir.path());
    assert_eq!(s.get("/v1/models/fraud").1["predictions"], 1);
}

/// A reference upload with no valid row once answered 200 `{"rows": 0}` and replaced the
/// stored reference with nothing (drift then answered 409).
#[test]
fn a_reference_with_no_valid_row_is_refused_and_the_stored_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let rows: Vec<_> = (0..50)
        .map(|i| prediction(&format!("r-{i}"), "2026-01-02T03:04:05Z", i as f64, "DE"))
        .collect();
    assert_eq!(
        s.post("/v1/models/fraud/predictions", &json!(rows).to_string())
            .0,
        200
    );
    let put = |body: Vec<u8>, ct: &str| s.put("/v1/models/fraud/reference", ct, body);
    let good: String = std::iter::once("age,country\n".to_owned())
        .chain((0..50).map(|i| format!("{i},DE\n")))
        .collect();
    let (status, body) = put(good.into_bytes(), "text/csv");
    assert_eq!(status, 200, "{body}");
    let (status, before) = s.get("/v1/models/fraud/drift?window=1d");
    assert_eq!(status, 200, "{before}");

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for (body, ct) in [
        (b"a,c\n".to_vec(), "text/csv"),
        (garbage, "application/octet-stream"),
        (b"{\"features\": 3}\n".to_vec(), "application/x-ndjson"),
    ] {
        let (status, reply) = put(body, ct);
        assert!((400..500).contains(&status), "{status}: {reply}");
        let (status, after) = s.get("/v1/models/fraud/drift?window=1d");
        assert_eq!(status, 200, "the stored reference is kept: {after}");
        assert_eq!(after, before);
    }
    let (status, reply) = put(b"{\"features\": 3}\n".to_vec(), "application/x-ndjson");
    assert_eq!(status, 422, "{reply}");
    assert!(reply.to_string().contains("row 0"), "{reply}");
}

/// A small tmpfs mounted for a test (needs root, as CI has); unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` where mounting is not allowed (a developer's machine without root); CI must
    /// be able to, so there it fails instead.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs for the disk-full test (run as root)"
            );
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A full disk once answered 500 "storage failure". It is 507 `disk_full` now, with a message
/// a client can act on, and what was acknowledged before it survives; once space is freed the
/// same service takes writes again.
#[test]
fn a_full_disk_answers_507_and_keeps_what_was_acknowledged() {
    let Some(disk) = SmallDisk::mount("6m") else {
        return;
    };
    let data = disk.dir.path().join("data");
    let mut s = Server::start(&data);
    let batch = |n: usize| {
        let rows: Vec<_> = (0..200)
            .map(|i| {
                let mut p =
                    prediction(&format!("b{n}-{i}"), "2026-01-02T03:04:05Z", i as f64, "DE");
                p["features"]["note"] = json!(format!("{n:08}-{i:04}-{}", "x".repeat(200)));
                p
            })
            .collect();
        serde_json::to_string(&rows).unwrap()
    };
    let mut acknowledged = 0;
    let mut full = None;
    for n in 0..2_000 {
        let (status, body) = s.post("/v1/models/fraud/predictions", &batch(n));
        match status {
            200 => acknowledged += body["accepted"].as_u64().unwrap(),
            _ => {
                full = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = full.expect("the 6 MiB disk filled up");
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "disk_full", "{body}");
    assert!(
        body.to_string()
            .contains("nothing of this request was stored"),
        "{body}"
    );
    assert!(acknowledged > 0);

    disk.resize("64m");
    let (status, body) = s.post("/v1/models/fraud/predictions", &batch(9_999));
    assert_eq!(status, 200, "writes resume once space is freed: {body}");
    acknowledged += 200;
    s.kill9();
    let s = Server::start(&data);
    let (_, model) = s.get("/v1/models/fraud");
    assert_eq!(model["predictions"], acknowledged, "{model}");
}

/// Errors axum answered itself (a wrong method) once had an empty body.
#[test]
fn every_error_has_a_json_body() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let (status, body) = decode(
        client()
            .delete(format!("{}/v1/models/fraud/predictions", s.url))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not take DELETE"),
        "{body}"
    );
    let (status, body) = s.get("/v1/nothing-here");
    assert_eq!(status, 404);
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// Sends `request` on a fresh connection and reads until the server closes it: the status and
/// the JSON body of the last response (earlier ones, pipelined, come first).
fn raw(url: &str, request: &[u8]) -> (u16, serde_json::Value) {
    let mut conn = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    // A server that keeps the connection open fails the test instead of hanging it.
    conn.set_read_timeout(Some(StdDuration::from_secs(30)))
        .unwrap();
    // The server may answer and close before taking all of an oversized request.
    let _ = conn.write_all(request);
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let last = text
        .rfind("HTTP/1.1 ")
        .unwrap_or_else(|| panic!("no reply: {text:?}"));
    let (head, body) = text[last..]
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head: {text:?}"));
    let status = head[9..12].parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text:?}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, body)
}

/// Requests hyper refuses before any handler sees them (a request head it cannot read), the
/// decompression layer's refusal of an unknown encoding and axum's refusal of a path that is
/// not UTF-8 answered with an empty or a plain-text body; each has the JSON error body now,
/// with the status it had.
#[test]
fn refusals_before_the_handlers_have_the_json_error_body_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let long_uri = format!(
        "GET /v1/models?x={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-{i}: a\r\n"))
            .collect::<String>()
    );
    let cases: [(&str, &[u8], u16, &str); 8] = [
        ("a garbage request line", b"GARBAGE\r\n\r\n", 400, "bad_request"),
        ("an unknown HTTP version", b"GET /v1/models HTTP/1.2\r\nHost: 127.0.0.1\r\n\r\n", 400, "bad_request"),
        ("a header without a colon", b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon\r\n\r\n", 400, "bad_request"),
        ("a garbage request after a good one",
         b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGARBAGE\r\n\r\n", 400, "bad_request"),
        ("a URI over 64 KiB", long_uri.as_bytes(), 414, "uri_too_long"),
        ("200 headers", many_headers.as_bytes(), 431, "headers_too_large"),
        ("an unknown Content-Encoding",
         b"POST /v1/models/fraud/predictions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
           Content-Encoding: br\r\nContent-Length: 2\r\n\r\n[]", 415, "unsupported_media_type"),
        // The route's {model} capture is checked before any handler: not a valid model name.
        ("a path that is not UTF-8",
         b"GET /v1/models/%ff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 400, "invalid_model_name"),
    ];
    for (what, request, status, code) in cases {
        let (got, body) = raw(&s.url, request);
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.len() > 20, "{what}: {body}");
    }
    // Still serving.
    assert_eq!(s.get("/v1/models").0, 200);
}

/// A write to the alerts database on a full disk answered 500 `storage_error`; like every
/// other write it is 507 `disk_full` now (docs/api.md), and the same request succeeds once
/// space is freed.
#[test]
fn alert_writes_on_a_full_disk_answer_507() {
    let Some(disk) = SmallDisk::mount("6m") else {
        return;
    };
    let data = disk.dir.path().join("data");
    let s = Server::start(&data);
    let rows = json!([prediction("r-1", "2026-01-02T03:04:05Z", 41.0, "DE")]).to_string();
    assert_eq!(s.post("/v1/models/fraud/predictions", &rows).0, 200);
    // Everything the disk has left goes to one file.
    let filler_path = disk.dir.path().join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while filler.write_all(&chunk).is_ok() {}
    while filler.write_all(&chunk[..512]).is_ok() {}
    let rule = json!({"name": "accuracy-low", "signal": "accuracy", "decision": "retrain",
        "severity": "warning", "condition": {"kind": "threshold", "op": "<", "value": 0.9}})
    .to_string();
    let (status, body) = s.post("/v1/models/fraud/rules", &rule);
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "disk_full", "{body}");

    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    let (status, body) = s.post("/v1/models/fraud/rules", &rule);
    assert_eq!(status, 201, "once space is freed: {body}");
}

/// Importing an empty file exited 0 without a word; a schema could declare a feature named ""
/// that ingest then refused on every row.
#[test]
fn an_empty_import_fails_and_a_schema_cannot_name_a_feature_empty() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (name, text) in [("empty.csv", ""), ("header.csv", "request_id,prediction\n")] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let (ok, out, err) = import(
            "predictions",
            &file,
            "m",
            &["--data", data.to_str().unwrap()],
        );
        assert!(!ok, "{name}: {out}");
        assert!(err.contains("holds no rows"), "{name}: {err}");
    }
    let s = Server::start(&data);
    let (status, body) = decode(
        client()
            .put(format!("{}/v1/models/m/schema", s.url))
            .json(&json!({"features": [{"name": "age", "kind": "numeric"},
                                       {"name": "", "kind": "numeric"}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("features[1]"), "{body}");
}

/// With no API keys (the default), a page on another site could make a visitor's browser store
/// predictions (a cross-site `text/plain` POST) and, through DNS rebinding, read the service.
#[test]
fn pages_from_other_sites_cannot_change_or_read_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[],
        &[("MODELWATCH_ALLOWED_HOSTS", "mw.internal.example")],
    );
    let host = s.url.trim_start_matches("http://").to_owned();
    let row = json!([prediction("r-1", "2026-01-02T03:04:05Z", 41.0, "DE")]).to_string();
    let post = |headers: &[(&str, &str)]| {
        let mut r = client()
            .post(format!("{}/v1/models/fraud/predictions", s.url))
            .header("content-type", "text/plain")
            .body(row.clone());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        decode(r.send().unwrap())
    };
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let (status, body) = post(&headers);
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert_eq!(body["error"]["code"], "cross_site_refused", "{body}");
    }
    assert_eq!(s.get("/v1/models/fraud").0, 404, "nothing was stored");
    // The dashboard's own origin, and clients that send no Origin (curl, the SDK).
    let own = format!("http://{host}");
    assert_eq!(post(&[("origin", own.as_str())]).0, 200);
    assert_eq!(post(&[("sec-fetch-site", "same-origin")]).0, 200);

    // DNS rebinding: a name the attacker points at 127.0.0.1.
    let get_as = |name: &str| {
        decode(
            client()
                .get(format!("{}/v1/models/fraud", s.url))
                .header("host", name)
                .send()
                .unwrap(),
        )
    };
    let (status, body) = get_as("rebind.evil.example");
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("allowed_hosts"), "{body}");
    for ok in [
        "localhost:1234",
        "127.0.0.1",
        "[::1]:80",
        "mw.internal.example",
    ] {
        assert_eq!(get_as(ok).0, 200, "{ok}");
    }
}

/// A script could try thousands of keys a second at the dashboard's login form.
#[test]
fn wrong_login_keys_are_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let read = "read-key-0123456789ab";
    let s = Server::start_with(dir.path(), &[], &[("MODELWATCH_READ_KEYS", read)]);
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |key: &str| {
        no_redirects
            .post(format!("{}/login", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("key={key}&next=%2F"))
            .send()
            .unwrap()
    };
    let statuses: Vec<u16> = (0..8)
        .map(|i| login(&format!("guess-{i}")).status().as_u16())
        .collect();
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    // While the wait lasts, even the right key is not read.
    let r = login(read);
    assert_eq!(r.status().as_u16(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    std::thread::sleep(StdDuration::from_secs(retry + 1));
    let r = login(read);
    assert_eq!(r.status().as_u16(), 303, "the right key after the wait");
}

/// A prediction row with the given numeric features.
fn wide_row(id: &str, features: &[&str]) -> serde_json::Value {
    let features: serde_json::Map<String, serde_json::Value> = features
        .iter()
        .map(|f| (f.to_string(), json!(1.5)))
        .collect();
    json!({"request_id": id, "timestamp": "2026-01-02T03:04:05Z", "features": features,
           "prediction": 1, "score": 0.8})
}

/// A client sending values as feature names once grew a schema to 220k features and stalled
/// the writer for every model. A model has at most `limits.max_features_per_model` features:
/// the row that would add one more is refused alone, naming the row, the feature and the limit,
/// and rows with the model's known features keep being stored.
#[test]
fn a_row_that_would_pass_the_configured_feature_limit_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[],
        &[("MODELWATCH_MAX_FEATURES_PER_MODEL", "5")],
    );
    let batch = json!([
        wide_row("r-0", &["a", "b", "c"]),
        wide_row("r-1", &["a", "d", "e"]),
        wide_row("r-2", &["a", "f"]),
        wide_row("r-3", &["e", "a"]),
    ]);
    let (status, reply) = s.post("/v1/models/m/predictions", &batch.to_string());
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 3, "{reply}");
    let rejected = reply["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{reply}");
    assert_eq!(rejected[0]["index"], 2, "{reply}");
    assert_eq!(rejected[0]["field"], "features.f", "{reply}");
    let reason = rejected[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("limit of 5") && reason.contains("limits.max_features_per_model"),
        "{reason}"
    );

    // At its limit the model still takes rows of known features.
    let known = json!([wide_row("r-4", &["b", "c", "d"])]).to_string();
    let (status, reply) = s.post("/v1/models/m/predictions", &known);
    assert_eq!((status, &reply["accepted"]), (200, &json!(1)), "{reply}");
    // A batch of only such rows is refused whole, naming its first row.
    let over = json!([wide_row("r-5", &["g"])]).to_string();
    let (status, reply) = s.post("/v1/models/m/predictions", &over);
    assert_eq!(status, 422, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("row 0, field `features.g`"), "{message}");
    // A reference whose rows would all pass the limit changes nothing.
    let (status, reply) = s.put(
        "/v1/models/m/reference",
        "text/csv",
        "a,b,h\n1,2,3\n4,5,6\n",
    );
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["error"]["code"], "no_valid_rows", "{reply}");
    assert!(reply.to_string().contains("limit of 5"), "{reply}");
    let (_, model) = s.get("/v1/models/m");
    let schema = model.to_string();
    assert!(!schema.contains("\"h\""), "{schema}");
    // Other models have a limit of their own.
    let other = json!([wide_row("o-0", &["v", "w", "x", "y", "z"])]).to_string();
    let (status, reply) = s.post("/v1/models/other/predictions", &other);
    assert_eq!((status, &reply["accepted"]), (200, &json!(1)), "{reply}");
}

/// Without a setting, the row that would add a model's 2,001st feature is refused.
#[test]
fn the_default_feature_limit_is_two_thousand_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let names: Vec<String> = (0..2_000).map(|i| format!("f{i}")).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let batch = json!([
        wide_row("r-0", &all),
        wide_row("r-1", &["f1", "one_more"]),
        wide_row("r-2", &["f1999"]),
    ]);
    let (status, reply) = s.post("/v1/models/m/predictions", &batch.to_string());
    // Not the whole reply in messages: it lists 2,000 schema changes.
    let rejected = &reply["rejected"];
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(reply["accepted"], 2, "{rejected}");
    assert_eq!(rejected[0]["index"], 1, "{rejected}");
    assert_eq!(rejected[0]["field"], "features.one_more", "{rejected}");
    let reason = reply["rejected"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("number 2001") && reason.contains("limit of 2000"),
        "{reason}"
    );
}

/// One CSV row with another number of fields than the header refused a whole reference upload
/// or import. It is refused alone now, named by its place in the file, as JSON rows are.
#[test]
fn a_ragged_csv_row_is_refused_alone_in_a_reference_upload_and_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "age,country\n40,DE\n41,FR,extra\n42\n43,IT\n";
    let check = |rejected: &serde_json::Value| {
        let rows: Vec<(u64, String)> = rejected
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["index"].as_u64().unwrap(),
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(rows.len(), 2, "{rejected}");
        assert_eq!(rows[0].0, 1, "{rejected}");
        assert!(
            rows[0].1.contains("3 fields where the header has 2"),
            "{rejected}"
        );
        assert_eq!(rows[1].0, 2, "{rejected}");
        assert!(
            rows[1].1.contains("1 field where the header has 2"),
            "{rejected}"
        );
    };
    {
        let s = Server::start(&dir.path().join("served"));
        let (status, reply) = s.put("/v1/models/m/reference", "text/csv", csv);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["rows"], 2, "{reply}");
        check(&reply["rejected"]);
        // Only ragged rows: nothing to store, the upload is refused.
        let (status, reply) = s.put("/v1/models/m/reference", "text/csv", "age,country\n1\n");
        assert_eq!(status, 422, "{reply}");
        assert!(reply.to_string().contains("row 0: has 1 field"), "{reply}");
    }

    let file = dir.path().join("reference.csv");
    std::fs::write(&file, csv).unwrap();
    let data = dir.path().join("imported");
    let (ok, out, err) = import("reference", &file, "m", &["--data", data.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("2 accepted"), "{out}");
    assert!(out.contains("rejected row 1: has 3 fields"), "{out}");
    assert!(out.contains("rejected row 2: has 1 field "), "{out}");
    let s = Server::start(&data);
    let (_, rejected) = s.get("/v1/models/m/rejected");
    let mut rows: Vec<serde_json::Value> = rejected["rejected"].as_array().unwrap().clone();
    rows.sort_by_key(|r| r["index"].as_u64());
    check(&json!(rows));
}

/// A row the store refused in a reference upload or import was named by its place among the
/// valid rows, not in the file: after a bad first line, the third line was called row 1.
#[test]
fn refused_reference_rows_are_named_by_their_place_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = "not json\n{\"features\": {\"age\": 30}}\n{\"features\": {\"age\": \"old\"}}\n";
    let indices = |rejected: &serde_json::Value| -> Vec<(u64, String)> {
        let mut v: Vec<(u64, String)> = rejected
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["index"].as_u64().unwrap(),
                    r["field"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let expected = vec![(0, String::new()), (2, "features.age".to_string())];
    {
        let s = Server::start(&dir.path().join("served"));
        let (status, reply) = s.put("/v1/models/m/reference", "application/x-ndjson", ndjson);
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["rows"], 1, "{reply}");
        assert_eq!(indices(&reply["rejected"]), expected, "{reply}");
    }
    let file = dir.path().join("reference.ndjson");
    std::fs::write(&file, ndjson).unwrap();
    let data = dir.path().join("imported");
    let (ok, out, err) = import("reference", &file, "m", &["--data", data.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("rejected row 2 features.age"), "{out}");
    let s = Server::start(&data);
    let (_, rejected) = s.get("/v1/models/m/rejected");
    assert_eq!(indices(&rejected["rejected"]), expected, "{rejected}");
}

/// The same for imported predictions, into a data directory and through a server: a row the
/// store refused was named by its place among the converted rows (or, through a server, in
/// the batch the import posted), not in the file.
#[test]
fn refused_prediction_rows_of_an_import_are_named_by_their_place_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let row = |id: &str, age: serde_json::Value| {
        json!({"request_id": id, "timestamp": "2026-01-02T03:04:05Z",
               "features": {"age": age}, "prediction": 1})
        .to_string()
    };
    let file = dir.path().join("predictions.ndjson");
    std::fs::write(
        &file,
        format!(
            "not json\n{}\n{}\n",
            row("r-1", json!(30)),
            row("r-2", json!("old"))
        ),
    )
    .unwrap();
    let import_to = |target: &[&str]| {
        let (ok, out, err) = import("predictions", &file, "m", target);
        assert!(ok, "{out}{err}");
        assert!(out.contains("1 accepted"), "{out}");
        assert!(out.contains("rejected row 0:"), "{out}");
        assert!(out.contains("rejected row 2 features.age"), "{out}");
    };
    let data = dir.path().join("imported");
    import_to(&["--data", data.to_str().unwrap()]);
    let s = Server::start(&dir.path().join("served"));
    import_to(&["--server", &s.url]);
}

/// A query that scans the raw events (here the feedback report split by a tag other than the
/// default one, whose split the hours do not keep) stops when its client goes away, instead of running to the end for nobody: a client
/// that times out and asks again must not leave one more scan running each time (the soak
/// test saw CPU and memory grow that way). The server says so in its log.
#[test]
fn a_scan_whose_client_went_away_stops_early() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let data = dir.path().join("data");
    let child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "warn,modelwatch_server=info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let s = Server::attach(child);
    // Enough events that one scan of them takes seconds in a debug build; each posted batch
    // is a stored chunk, between which the scan looks at its flag.
    for b in 0..60 {
        let rows: Vec<_> = (0..5_000)
            .map(|i| prediction(&format!("b{b}-{i}"), "2026-01-02T03:04:05Z", i as f64, "DE"))
            .collect();
        s.post_ok("/v1/models/fraud/predictions", rows);
    }
    let addr = s.url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET /v1/models/fraud/feedback?window=1h&exploration=variant=b HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(StdDuration::from_millis(200));
    drop(conn);
    common::poll(120, || {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("store work stopped early") {
            Ok(())
        } else {
            Err(format!("no cancellation in the log yet:\n{log}"))
        }
    });
    // The server is well and answers the same query for a client that waits.
    let (status, body) = s.get("/v1/models/fraud/feedback?window=1h&exploration=variant=b");
    assert_eq!(status, 200, "{body}");
}

/// `modelwatch check ... | head` once panicked ("failed printing to stdout: Broken pipe") when
/// the reader had gone before the report was printed. The read end is closed before the
/// command starts, so its first line meets a closed pipe every time.
#[test]
fn a_report_printed_into_a_closed_pipe_ends_quietly_not_in_a_panic() {
    let d = store_with_rows(10, Server::stop);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["check", "--data", d.path().to_str().unwrap()])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {err}",
        out.status
    );
}
