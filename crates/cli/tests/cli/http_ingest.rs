//! Ingest over a real socket against the real binary: durability across restarts, the late-label
//! join, idempotency, and every kind of bad input the foundation issue lists.

use crate::common;

use common::{client, decode, poll, prediction, Server};
use serde_json::{json, Value};
use std::io::Write;

fn batch(rows: &[Value]) -> String {
    serde_json::to_string(rows).unwrap()
}

#[test]
fn everything_is_still_there_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    let rows: Vec<Value> = (0..50)
        .map(|i| prediction(&format!("r{i}"), "2026-01-02T03:04:05Z", i as f64, "DE"))
        .collect();
    let (status, out) = s.post("/v1/models/fraud/predictions", &batch(&rows));
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["accepted"], 50);
    let (status, _) = s.post(
        "/v1/models/fraud/labels",
        r#"[{"request_id": "r1", "label": 1}]"#,
    );
    assert_eq!(status, 200);
    s.stop();

    let s = Server::start(dir.path());
    let (status, m) = s.get("/v1/models/fraud");
    assert_eq!(status, 200);
    assert_eq!(m["predictions"], 50);
    assert_eq!(m["labels"], 1);
    assert_eq!(m["labelled"], 1);
    assert_eq!(m["schema"]["features"][0]["name"], "age");
    let (_, p) = s.get("/v1/models/fraud/predictions?limit=5");
    assert_eq!(p["predictions"][0]["request_id"], "r0");
    assert_eq!(p["predictions"][0]["features"]["country"], "DE");
    assert_eq!(p["predictions"][0]["timestamp"], "2026-01-02T03:04:05Z");
    let (_, list) = s.get("/v1/models");
    assert_eq!(list["models"][0]["name"], "fraud");
}

#[test]
fn a_late_label_lands_in_its_predictions_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let rows = [
        prediction("a", "2026-01-01T10:00:00Z", 1.0, "DE"),
        prediction("b", "2026-01-02T10:00:00Z", 2.0, "FR"),
    ];
    s.post("/v1/models/m/predictions", &batch(&rows));
    // A week later the label for "a" arrives.
    let (status, out) = s.post(
        "/v1/models/m/labels",
        r#"[{"request_id": "a", "label": 0, "timestamp": "2026-01-08T10:00:00Z"}]"#,
    );
    assert_eq!(status, 200, "{out}");
    let (_, m) = s.get("/v1/models/m/metrics?window=1d");
    let w = m["windows"].as_array().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w[0]["start"], "2026-01-01T00:00:00Z");
    assert_eq!(w[0]["labelled"], 1);
    assert_eq!(w[0]["label_coverage"], 1.0);
    assert_eq!(w[0]["label_delay_seconds"]["p50"], 7.0 * 86_400.0);
    assert_eq!(w[1]["labelled"], 0);
    // from/to select by event time, never by label time.
    let (_, m) =
        s.get("/v1/models/m/metrics?window=1d&from=2026-01-02T00:00:00Z&to=2026-01-09T00:00:00Z");
    assert_eq!(m["windows"].as_array().unwrap().len(), 1);
}

#[test]
fn a_label_sent_before_its_prediction_is_joined_when_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    s.post(
        "/v1/models/m/predictions",
        &batch(&[prediction("x", "2026-01-01T00:00:00Z", 1.0, "DE")]),
    );
    let (status, _) = s.post(
        "/v1/models/m/labels",
        r#"[{"request_id": "early", "label": 1, "timestamp": "2026-01-03T00:00:00Z"}]"#,
    );
    assert_eq!(status, 200);
    let (_, m) = s.get("/v1/models/m");
    assert_eq!(
        (m["labels"].as_u64(), m["labelled"].as_u64()),
        (Some(1), Some(0))
    );
    s.post(
        "/v1/models/m/predictions",
        &batch(&[prediction("early", "2026-01-02T00:00:00Z", 1.0, "DE")]),
    );
    let (_, m) = s.get("/v1/models/m");
    assert_eq!(m["labelled"], 1);
    let (_, w) = s.get("/v1/models/m/metrics?window=1d&from=2026-01-02T00:00:00Z");
    assert_eq!(w["windows"][0]["labelled"], 1);
    assert_eq!(w["windows"][0]["label_delay_seconds"]["p50"], 86_400.0);
}

#[test]
fn a_retried_batch_does_not_double_count_and_a_second_label_replaces_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let body = batch(&[
        prediction("a", "2026-01-01T00:00:00Z", 1.0, "DE"),
        prediction("b", "2026-01-01T00:00:00Z", 1.0, "DE"),
    ]);
    let (_, first) = s.post("/v1/models/m/predictions", &body);
    let (status, retry) = s.post("/v1/models/m/predictions", &body);
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(status, 200);
    assert_eq!(
        (retry["accepted"].as_u64(), retry["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    s.post(
        "/v1/models/m/labels",
        r#"[{"request_id": "a", "label": 1}]"#,
    );
    let (_, again) = s.post(
        "/v1/models/m/labels",
        r#"[{"request_id": "a", "label": 0}]"#,
    );
    assert_eq!(again["replaced"], 1);
    let (_, m) = s.get("/v1/models/m");
    assert_eq!(
        (m["predictions"].as_u64(), m["labels"].as_u64()),
        (Some(2), Some(1))
    );
    let (_, l) = s.get("/v1/models/m/labels");
    assert_eq!(l["labels"][0]["label"], 0);
}

/// Sends `rows` (NDJSON, one good row first) and returns the rejection of row 1.
/// Every row of `GET /v1/models/m/{kind}`, following `next` (a string) from page to page.
fn every_page(s: &Server, kind: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/models/m/{kind}?limit=2&after={a}"),
            None => format!("/v1/models/m/{kind}?limit=2"),
        };
        let (status, page) = s.get(&path);
        assert_eq!(status, 200, "{page}");
        for row in page[kind].as_array().unwrap() {
            ids.push(row["request_id"].as_str().unwrap().to_owned());
        }
        match &page["next"] {
            Value::Null => return ids,
            next => after = Some(next.as_str().expect("an opaque string").to_owned()),
        }
    }
}

#[test]
fn pages_follow_the_cursor_they_hand_out_and_a_made_up_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let ids = ["a", "b", "c", "d", "e"];
    for part in [&ids[..3], &ids[3..]] {
        let rows: Vec<Value> = (part.iter())
            .map(|id| prediction(id, "2026-01-01T10:00:00Z", 1.0, "DE"))
            .collect();
        let (status, out) = s.post("/v1/models/m/predictions", &batch(&rows));
        assert_eq!(status, 200, "{out}");
    }
    let (status, out) = s.post(
        "/v1/models/m/labels",
        r#"[{"request_id": "e", "label": 1}, {"request_id": "a", "label": 0},
            {"request_id": "c", "label": 1}]"#,
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(every_page(&s, "predictions"), ids);
    // Labels in arrival order: the writer stores a batch by request id.
    assert_eq!(every_page(&s, "labels"), ["a", "c", "e"]);
    // A cursor the server never handed out (made up, or another kind's) is the caller's
    // mistake, said about `after`, never read as some other position.
    let (_, labels) = s.get("/v1/models/m/labels?limit=1");
    let label_cursor = labels["next"].as_str().unwrap().to_owned();
    for path in [
        "/v1/models/m/predictions?after=yesterday".to_owned(),
        format!("/v1/models/m/predictions?after={label_cursor}"),
        "/v1/models/m/labels?after=p1.1".to_owned(),
    ] {
        let (status, out) = s.get(&path);
        assert_eq!(status, 400, "{path}: {out}");
        assert_eq!(out["error"]["code"], "invalid_query", "{out}");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("`after`"), "{message}");
    }
}

fn reject_row(s: &Server, model: &str, bad_row: &str) -> (u16, Value) {
    let good = serde_json::to_string(&prediction(
        &format!("good-{}", rand_id()),
        "2026-01-01T00:00:00Z",
        1.0,
        "DE",
    ))
    .unwrap();
    let body = format!("{good}\n{bad_row}\n");
    let r = client()
        .post(format!("{}/v1/models/{model}/predictions", s.url))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    let (status, out) = decode(r);
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["accepted"], 1,
        "the good row beside a bad one is kept: {out}"
    );
    assert_eq!(out["rejected"][0]["index"], 1, "{out}");
    (status, out["rejected"][0].clone())
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn each_bad_row_is_rejected_with_its_index_field_and_reason_and_its_neighbours_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    // Establish the schema: age numeric, country categorical.
    s.post(
        "/v1/models/m/predictions",
        &batch(&[prediction("seed", "2026-01-01T00:00:00Z", 1.0, "DE")]),
    );
    let cases = [
        (r#"{"prediction": 1}"#, "request_id", "missing"),
        (
            r#"{"request_id": "", "prediction": 1}"#,
            "request_id",
            "empty",
        ),
        (
            r#"{"request_id": "t1", "prediction": 1, "timestamp": "last tuesday"}"#,
            "timestamp",
            "not a timestamp",
        ),
        (
            r#"{"request_id": "t2", "prediction": 1, "timestamp": "1970-01-01T00:00:05Z"}"#,
            "timestamp",
            "before 2000",
        ),
        (
            r#"{"request_id": "t3", "prediction": 1, "timestamp": "2999-01-01T00:00:00Z"}"#,
            "timestamp",
            "future",
        ),
        (
            r#"{"request_id": "n1", "prediction": NaN}"#,
            "prediction",
            "NaN and Infinity are not JSON numbers",
        ),
        (
            r#"{"request_id": "n2", "prediction": 1, "score": Infinity}"#,
            "score",
            "NaN and Infinity are not JSON numbers",
        ),
        (
            r#"{"request_id": "f1", "prediction": 1, "features": {"age": "forty"}}"#,
            "features.age",
            "expected a number",
        ),
        (
            r#"{"request_id": "f2", "prediction": 1, "features": {"country": 49}}"#,
            "features.country",
            "expected a string",
        ),
        (
            r#"{"request_id": "u1", "prediction": 1, "colour": "red"}"#,
            "colour",
            "unknown field",
        ),
        (
            r#"{"request_id": "s1", "prediction": 1, "score": 1.2}"#,
            "score",
            "outside [0, 1]",
        ),
        (
            r#"{"request_id": "s2", "prediction": "a", "scores": {"a": 0.7, "b": 0.7}}"#,
            "scores",
            "sum to",
        ),
        (
            r#"{"request_id": "j1", "prediction": 1, "features": {"nested": {"x": 1}}}"#,
            "features.nested",
            "nested",
        ),
    ];
    for (row, field, reason) in cases {
        let (_, rej) = reject_row(&s, "m", row);
        assert_eq!(rej["field"], field, "{row}: {rej}");
        assert!(
            rej["reason"].as_str().unwrap().contains(reason),
            "{row}: {rej}"
        );
    }
    // Invalid UTF-8 in one NDJSON row.
    let mut body =
        serde_json::to_vec(&prediction("utf-good", "2026-01-01T00:00:00Z", 1.0, "DE")).unwrap();
    body.extend_from_slice(b"\n{\"request_id\": \"bad\xff\xfe\", \"prediction\": 1}\n");
    let (status, out) = decode(
        client()
            .post(format!("{}/v1/models/m/predictions", s.url))
            .body(body)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["accepted"], 1);
    assert!(
        out["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("UTF-8"),
        "{out}"
    );
    // The same request id twice in one batch.
    let dup = batch(&[
        prediction("d", "2026-01-01T00:00:00Z", 1.0, "DE"),
        prediction("d", "2026-01-01T00:00:00Z", 2.0, "DE"),
    ]);
    let (_, out) = s.post("/v1/models/m/predictions", &dup);
    assert_eq!(out["accepted"], 1);
    assert_eq!(out["rejected"][0]["index"], 1);
    assert!(
        out["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("twice"),
        "{out}"
    );
    // Every rejected row is in the quarantine, readable back.
    let (_, q) = s.get("/v1/models/m/rejected?limit=100");
    assert_eq!(q["rejected"].as_array().unwrap().len(), cases.len() + 2);
    assert!(q["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["row"].as_str().unwrap().contains("forty")));
    // A batch where every row is bad is a 422 that still lists the rows.
    let (status, out) = s.post(
        "/v1/models/m/predictions",
        r#"[{"request_id": "x", "prediction": 1, "score": 7}]"#,
    );
    assert_eq!(status, 422);
    assert_eq!(out["error"]["code"], "all_rows_rejected");
    assert_eq!(out["rejected"][0]["field"], "score");
}

#[test]
fn bad_bodies_and_names_get_a_clear_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[],
        &[
            ("MODELWATCH_MAX_BODY_BYTES", "4096"),
            ("MODELWATCH_MAX_BATCH_ROWS", "10"),
        ],
    );
    let cases: [(&str, &str, u16, &str); 6] = [
        (
            "/v1/models/m/predictions",
            r#"[{"request_id": "a", "prediction": 1},"#,
            400,
            "malformed_json",
        ),
        (
            "/v1/models/m/predictions",
            r#"[{"request_id": "a", "prediction": NaN}]"#,
            400,
            "malformed_json",
        ),
        (
            "/v1/models/m/predictions",
            r#""just a string""#,
            400,
            "not_a_batch",
        ),
        ("/v1/models/m/predictions", "   ", 400, "empty_body"),
        (
            "/v1/models/unknown-model/labels",
            r#"[{"request_id": "a", "label": 1}]"#,
            404,
            "not_found",
        ),
        (
            "/v1/models/m/predictions",
            &format!(
                "[{}]",
                [r#"{"request_id":"x","prediction":1}"#; 11].join(",")
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, out) = s.post(path, body);
        assert_eq!(got, status, "{path} {body:.60}: {out}");
        assert_eq!(out["error"]["code"], code, "{out}");
        assert!(!out["error"]["message"].as_str().unwrap().is_empty());
    }
    // Oversized body, also when it arrives gzip-compressed (limit applies after decompression).
    let big = format!(
        "[{}]",
        [r#"{"request_id":"x","prediction":1}"#; 200].join(",")
    );
    let (status, out) = s.post("/v1/models/m/predictions", &big);
    assert_eq!(status, 413, "{out}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(big.as_bytes()).unwrap();
    let r = client()
        .post(format!("{}/v1/models/m/predictions", s.url))
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // Model names with path, quote or control characters.
    for name in ["a%2Fb", "a%22b", "a%0Ab", ".hidden", "a%20b", "a%5Cb"] {
        let (status, out) = s.post(&format!("/v1/models/{name}/predictions"), "[]");
        assert_eq!(status, 400, "{name}: {out}");
        assert_eq!(out["error"]["code"], "invalid_model_name");
        // Every route naming a model checks it the same way, reads and deletes included.
        for path in ["metrics?window=1d", "drift", "rules", "rules/r1"] {
            let url = format!("{}/v1/models/{name}/{path}", s.url);
            let method = if path == "rules/r1" { "DELETE" } else { "GET" };
            let r = client()
                .request(method.parse().unwrap(), &url)
                .send()
                .unwrap();
            assert_eq!(r.status().as_u16(), 400, "{method} {url}");
            let out: Value = r.json().unwrap();
            assert_eq!(out["error"]["code"], "invalid_model_name", "{method} {url}");
        }
    }
    // A CSV body where JSON is expected.
    let r = client()
        .post(format!("{}/v1/models/m/predictions", s.url))
        .header("content-type", "text/csv")
        .body("a,b\n1,2")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Nothing above created the model or stored a row.
    let (status, _) = s.get("/v1/models/m");
    assert_eq!(status, 404);
}

#[test]
fn gzip_bodies_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let body = batch(&[prediction("g", "2026-01-01T00:00:00Z", 1.0, "DE")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let r = client()
        .post(format!("{}/v1/models/m/predictions", s.url))
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    let (status, out) = decode(r);
    assert_eq!((status, out["accepted"].as_u64()), (200, Some(1)), "{out}");
}

#[test]
fn api_keys_are_scoped_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = "ingest-key-0123456789";
    let read = "read-key-0123456789ab";
    let admin = "admin-key-0123456789a";
    let s = Server::start_with(
        dir.path(),
        &[],
        &[
            ("MODELWATCH_INGEST_KEYS", ingest),
            ("MODELWATCH_READ_KEYS", read),
            ("MODELWATCH_ADMIN_KEYS", admin),
        ],
    );
    let send = |method: reqwest::Method, path: &str, key: Option<&str>, body: &str| {
        let mut r = client()
            .request(method, format!("{}{}", s.url, path))
            .body(body.to_string());
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        decode(r.send().unwrap())
    };
    let body = batch(&[prediction("a", "2026-01-01T00:00:00Z", 1.0, "DE")]);
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    assert_eq!(
        send(post.clone(), "/v1/models/m/predictions", None, &body).0,
        401
    );
    assert_eq!(
        send(
            post.clone(),
            "/v1/models/m/predictions",
            Some("wrong-key-0123456789"),
            &body
        )
        .0,
        401
    );
    assert_eq!(
        send(post.clone(), "/v1/models/m/predictions", Some(read), &body).0,
        403
    );
    assert_eq!(
        send(
            post.clone(),
            "/v1/models/m/predictions",
            Some(ingest),
            &body
        )
        .0,
        200
    );
    assert_eq!(send(get.clone(), "/v1/models/m", Some(ingest), "").0, 403);
    assert_eq!(send(get.clone(), "/v1/models/m", Some(read), "").0, 200);
    assert_eq!(
        send(reqwest::Method::PATCH, "/v1/models/m", Some(read), "{}").0,
        403
    );
    assert_eq!(send(get, "/v1/models/m", Some(admin), "").0, 200);
    assert_eq!(s.get("/healthz").0, 200, "health needs no key");
}

#[test]
fn retention_deletes_old_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("modelwatch.toml");
    std::fs::write(&config, "[retention]\ninterval_seconds = 1\n").unwrap();
    let data = dir.path().join("data");
    let s = Server::start_with(&data, &["--config", config.to_str().unwrap()], &[]);
    let old = chrono_days_ago(40);
    let recent = chrono_days_ago(1);
    s.post(
        "/v1/models/m/predictions",
        &batch(&[
            prediction("old", &old, 1.0, "DE"),
            prediction("new", &recent, 1.0, "DE"),
        ]),
    );
    let r = client()
        .patch(format!("{}/v1/models/m", s.url))
        .json(&json!({"retention_days": 30}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m = poll(15, || {
        let (_, m) = s.get("/v1/models/m");
        if m["predictions"] == 1 {
            Ok(m)
        } else {
            Err(format!("retention never ran: {m}"))
        }
    });
    assert_eq!(m["retention_days"], 30);
}

fn chrono_days_ago(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    modelwatch_core::Timestamp::from_secs(now - days * 86_400).to_rfc3339()
}

#[test]
fn a_config_file_with_an_unknown_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmax_rows = 5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_rows"), "{err}");
}
