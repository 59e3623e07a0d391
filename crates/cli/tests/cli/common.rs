//! A real `modelwatch serve` process on 127.0.0.1, port 0, stopped by its pid.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub url: String,
    pub child: Child,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[], &[])
    }

    pub fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelwatch"));
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            // MW_TEST_LOG sets the servers' log filter when a test needs its story told.
            .env(
                "RUST_LOG",
                std::env::var("MW_TEST_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::attach(cmd.spawn().expect("start modelwatch serve"))
    }

    /// A server on `dir/data` that evaluates its alert rules every second, with 50 ms of
    /// debounce, from a config written to `dir/modelwatch.toml`: how the alert tests start one.
    pub fn start_evaluating_every_second(dir: &Path) -> Server {
        let cfg = dir.join("modelwatch.toml");
        std::fs::write(
            &cfg,
            "[alerts]\ndebounce_ms = 50\nevaluation_interval_seconds = 1\n",
        )
        .unwrap();
        Self::start_with(&dir.join("data"), &["--config", cfg.to_str().unwrap()], &[])
    }

    /// Waits for a started `modelwatch serve` (or `demo`) to print its address and answer.
    pub fn attach(mut child: Child) -> Server {
        let stdout = child.stdout.take().expect("stdout piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address line");
        let url = line
            .trim()
            .strip_prefix("modelwatch listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let server = Server { url, child };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(r) = client().get(format!("{}/healthz", self.url)).send() {
                if r.status().is_success() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server at {} never became healthy", self.url);
    }

    pub fn kill9(&mut self) {
        // SIGKILL: no chance to flush anything.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY-free: libc::kill on our own child's pid.
        unsafe_kill(pid, 15);
        let _ = self.child.wait();
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = client()
            .post(format!("{}{}", self.url, path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request");
        decode(r)
    }

    /// A PUT of `body` declared as `content_type` (a reference upload: `text/csv`,
    /// `application/x-ndjson` ...).
    pub fn put(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> (u16, serde_json::Value) {
        let r = client()
            .put(format!("{}{}", self.url, path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .expect("request");
        decode(r)
    }

    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        decode(
            client()
                .get(format!("{}{}", self.url, path))
                .send()
                .expect("request"),
        )
    }

    /// A GET that must answer 200: its JSON body.
    pub fn get_ok(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// A GET of a page or a text format: status, body as text, headers.
    pub fn get_text(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let r = client()
            .get(format!("{}{}", self.url, path))
            .send()
            .expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, r.text().expect("body"), headers)
    }

    /// POSTs `rows` (predictions, labels, KPIs) as a JSON array; fails the test unless the
    /// server answers 200 and accepts every row. Returns the reply.
    pub fn post_ok(&self, path: &str, rows: Vec<serde_json::Value>) -> serde_json::Value {
        let (status, body) = self.post(path, &serde_json::Value::Array(rows).to_string());
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            body["rejected"].as_array().map_or(0, Vec::len),
            0,
            "{path}: {body}"
        );
        body
    }

    /// Uploads `body` as `model`'s reference (`query`: "" or `?version=v2`) declared as
    /// `content_type` (`text/csv`, `application/x-ndjson` ...); fails the test unless the
    /// server answers 200. Returns the reply.
    pub fn put_reference(
        &self,
        model: &str,
        query: &str,
        content_type: &str,
        body: impl Into<reqwest::blocking::Body>,
    ) -> serde_json::Value {
        let (status, out) = self.put(
            &format!("/v1/models/{model}/reference{query}"),
            content_type,
            body,
        );
        assert_eq!(status, 200, "{model} reference: {out}");
        out
    }
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a child process we own has no memory-safety implications.
    unsafe {
        libc::kill(pid, sig);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Calls `probe` every 25 ms until it answers `Ok`, for at most `secs`; then fails with its
/// last `Err`. The binary works asynchronously (debounced evaluation, delivery loop, retention,
/// background refresh): tests wait for what a user would see, never for a fixed time.
pub fn poll<T>(secs: u64, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match probe() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("gave up after {secs} s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

/// Runs the real `modelwatch` binary: (succeeded, stdout, stderr).
pub fn modelwatch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(args)
        .output()
        .expect("run modelwatch");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `modelwatch import <kind> <file> --model <model>` followed by `target` (`--data DIR` or
/// `--server URL`, and any other flags): (succeeded, stdout, stderr).
pub fn import(kind: &str, file: &Path, model: &str, target: &[&str]) -> (bool, String, String) {
    let file = file.to_str().expect("a UTF-8 path");
    let mut args = vec!["import", kind, file, "--model", model];
    args.extend_from_slice(target);
    modelwatch(&args)
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn decode(r: reqwest::blocking::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, v)
}

/// A prediction row in the contract's format.
pub fn prediction(id: &str, ts: &str, age: f64, country: &str) -> serde_json::Value {
    serde_json::json!({
        "request_id": id, "timestamp": ts, "model_version": "v1",
        "features": {"age": age, "country": country},
        "prediction": 1, "score": 0.8, "latency_ms": 3.5
    })
}

/// The rules of `model` firing on `s` now.
pub fn firing(s: &Server, model: &str) -> Vec<String> {
    let (_, out) = s.get(&format!("/v1/alerts?model={model}&state=firing"));
    out["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// The first place where two JSON values differ, as `path: a != b`.
pub fn difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let (u, v) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = difference(u, v, &format!("{path}.{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| difference(u, v, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} != {b}")),
    }
}
