//! `modelwatch migrate` against the real binary, into a second data directory (the ClickHouse
//! target reuses the same steps once the backend is in the workspace): a store with served and
//! shadow predictions, labels (one before any prediction of its request), KPI points, two
//! references, settings and a quarantined row; a migration killed with SIGKILL in the middle,
//! then run again, ends with equal counts and the same metrics; a third run copies nothing.

use crate::common;

use common::{client, modelwatch, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

pub(crate) const MODEL: &str = "loans";
const REQUESTS: usize = 6_000;
const SHADOWED: usize = 1_000;
const LABELLED: usize = 4_000;

fn time(i: usize) -> String {
    // 100 requests an hour from 2026-11-01: 60 hours.
    format!(
        "2026-11-{:02}T{:02}:{:02}:00Z",
        1 + i / 2400,
        (i / 100) % 24,
        i % 60
    )
}

pub(crate) fn prediction(i: usize, version: &str) -> Value {
    let score = ((i * 37) % 100) as f64 / 100.0;
    let region = ["north", "south"][i % 2];
    let mut row = json!({"request_id": format!("r{i}"), "timestamp": time(i),
        "model_version": version, "features": {"income": (i % 97) as f64, "region": region},
        "prediction": u8::from(score >= 0.5), "score": score});
    if version == "v2" {
        row["role"] = json!("shadow");
    }
    row
}

/// Fills `dir` through a real server, as users do, and stops it.
pub(crate) fn populate(dir: &Path) {
    let mut s = Server::start(dir);
    let rows: Vec<Value> = (0..REQUESTS).map(|i| prediction(i, "v1")).collect();
    // A label before any prediction of its request, and one whose prediction never comes.
    s.post_ok(
        &format!("/v1/models/{MODEL}/predictions"),
        rows[..10].to_vec(),
    );
    let early = vec![
        json!({"request_id": "r100", "label": 1, "timestamp": "2026-11-04T00:00:00Z"}),
        json!({"request_id": "never", "label": 0, "timestamp": "2026-11-04T00:00:00Z"}),
    ];
    s.post_ok(&format!("/v1/models/{MODEL}/labels"), early);
    for part in rows[10..].chunks(2_000) {
        s.post_ok(&format!("/v1/models/{MODEL}/predictions"), part.to_vec());
    }
    let shadows: Vec<Value> = (0..SHADOWED).map(|i| prediction(i, "v2")).collect();
    s.post_ok(&format!("/v1/models/{MODEL}/predictions"), shadows);
    let labels: Vec<Value> = (0..LABELLED)
        .filter(|i| *i != 100)
        .map(|i| json!({"request_id": format!("r{i}"), "label": u8::from(i % 3 == 0), "timestamp": "2026-11-04T00:00:00Z"}))
        .collect();
    for part in labels.chunks(2_000) {
        s.post_ok(&format!("/v1/models/{MODEL}/labels"), part.to_vec());
    }
    let kpis: Vec<Value> = (0..48)
        .map(|h| json!({"name": "loss", "value": h as f64 * 1.5, "timestamp": time(h * 100)}))
        .collect();
    s.post_ok(&format!("/v1/models/{MODEL}/kpis"), kpis);
    // A row the server refuses: it goes to the quarantine.
    let (status, out) = s.post(
        &format!("/v1/models/{MODEL}/predictions"),
        &json!([{"request_id": "bad", "timestamp": time(0), "score": "high"}]).to_string(),
    );
    assert!(status == 200 || status == 422, "{status} {out}");
    let reference = |n: usize| {
        let mut csv = String::from("income,region,prediction,score,label\n");
        for i in 0..n {
            csv += &format!("{},{},1,0.7,1\n", i % 97, ["north", "south"][i % 2]);
        }
        csv
    };
    s.put_reference(MODEL, "?version=v1", "text/csv", reference(150));
    // A reference row the model's schema refuses (income is a number): quarantined too.
    let out = s.put_reference(
        MODEL,
        "?version=v1",
        "text/csv",
        reference(150) + "not-a-number,north,1,0.7,1\n",
    );
    assert_eq!(out["rejected"].as_array().unwrap().len(), 1, "{out}");
    s.put_reference(MODEL, "", "text/csv", reference(200));
    let put = |path: &str, body: Value| {
        let r = client()
            .put(format!("{}{path}", s.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
    };
    put(
        &format!("/v1/models/{MODEL}/task"),
        json!({"task": "binary"}),
    );
    put(
        &format!("/v1/models/{MODEL}/fairness/settings"),
        json!({"protected": ["region"], "favourable": 1}),
    );
    let r = client()
        .patch(format!("{}/v1/models/{MODEL}", s.url))
        .json(&json!({"retention_days": 3650}))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    s.stop();
}

fn migrate(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    modelwatch(&all)
}

fn progress(src: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(src.join("migrate-progress.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a user compares after a move: the model's summary, settings, KPI points, quarantine.
pub(crate) fn what_a_user_sees(s: &Server) -> Value {
    let mut model = s.get_ok(&format!("/v1/models/{MODEL}"));
    for v in ["created_at", "reference"] {
        // Stamped by the copy (docs/api.md, migrate): arrival and upload times.
        model.as_object_mut().unwrap().remove(v);
    }
    // In order within a kind; a reference's refused rows go with its upload (docs/api.md).
    let mut rejected: Vec<Value> = s.get_ok(&format!("/v1/models/{MODEL}/rejected"))["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!([r["kind"], r["request_id"], r["field"], r["reason"]]))
        .collect();
    rejected.sort_by_key(|r| r[0].to_string());
    let seen = json!({
        "model": model,
        "task": s.get_ok(&format!("/v1/models/{MODEL}/task")),
        "fairness": s.get_ok(&format!("/v1/models/{MODEL}/fairness/settings")),
        "kpis": s.get_ok(&format!("/v1/models/{MODEL}/kpis?window=1d")),
        "rejected": rejected,
        "metrics": s.get_ok(&format!("/v1/models/{MODEL}/metrics?window=1d")),
        "drift": s.get_ok(&format!("/v1/models/{MODEL}/drift?window=1d")),
        "quality": s.get_ok(&format!("/v1/models/{MODEL}/quality?window=1d")),
        "domain_classifier": domain_scores(s),
        "multivariate": s.get_ok(&format!("/v1/models/{MODEL}/drift/multivariate?window=1d"))["windows"],
    });
    seen
}

/// Panics naming the first difference between what a user sees of two stores.
#[track_caller]
pub(crate) fn assert_same(expected: &Value, seen: &Value) {
    if let Some(d) = common::difference(expected, seen, "") {
        panic!("the stores differ at {d}");
    }
}

/// The domain classifier's windows, of every version and of v1 (days of 2,400 predictions: more
/// than it samples), without `kept` and `fitted` (which say what this server had cached): the
/// sample is chosen by request id, so every store gives the same scores for the same events.
fn domain_scores(s: &Server) -> Value {
    let scores = |query: &str| {
        let r = s.get_ok(&format!(
            "/v1/models/{MODEL}/drift/domain-classifier?window=1d{query}"
        ));
        let windows = r["windows"].as_array().unwrap().clone();
        assert!(
            windows.iter().any(|w| w["auc"].is_f64()),
            "no window was scored: {r}"
        );
        windows
    };
    json!({"all": scores(""), "v1": scores("&version=v1")})
}

/// The `modelwatch metrics` CSV of the model, per hour, from `target` (`--data DIR` or
/// `--store URL`).
pub(crate) fn hourly_metrics(target: &[&str]) -> String {
    let mut args = vec![
        "metrics", "--model", MODEL, "--format", "csv", "--window", "1h",
    ];
    args.extend_from_slice(target);
    let (ok, out, err) = modelwatch(&args);
    assert!(ok, "{err}");
    out
}

/// Migrates `src` to `to`, killed with SIGKILL after its first batches, then run again to the
/// end: the counts match. A third run copies nothing and checks again.
pub(crate) fn kill_then_finish(src: &Path, to: &str) {
    let src_s = src.to_str().unwrap();
    // Small batches, so that the kill lands between two of them.
    let mut child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args([
            "migrate",
            "--data",
            src_s,
            "--to",
            to,
            "--batch-rows",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::poll(60, || match progress(src) {
        Some(p) if p["models"][MODEL]["predictions_after"].is_string() => Ok(()),
        _ => Err("no batch copied yet".to_string()),
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the migration ended before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let stopped = progress(src).unwrap();
    assert_ne!(stopped["models"][MODEL]["labels_done"], true, "{stopped}");

    let (ok, out, err) = migrate(&["--data", src_s, "--to", to]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("every count matches"), "{out}");
    // The verification table: model, count, source, target, verdict.
    let rows: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for row in [
        "loans predictions v1 served 6000 6000 ok",
        "loans predictions v2 shadow 1000 1000 ok",
        "loans labels 4001 4001 ok",
        "loans KPI points 48 48 ok",
    ] {
        assert!(rows.iter().any(|r| r == row), "{row:?} not in\n{out}");
    }

    // Everything was copied: a third run copies nothing and checks again.
    let (ok, out, err) = migrate(&["--data", src_s, "--to", to]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("model `loans`: already copied"), "{out}");
    assert!(out.contains("every count matches"), "{out}");
}

#[test]
fn a_migration_killed_in_the_middle_finishes_on_a_rerun_with_equal_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    populate(&src);
    let (src_s, dst_s) = (src.to_str().unwrap(), dst.to_str().unwrap());
    kill_then_finish(&src, dst_s);

    // The same numbers from both stores.
    assert_eq!(
        hourly_metrics(&["--data", src_s]),
        hourly_metrics(&["--data", dst_s])
    );
    let seen = |dir: &Path| {
        let mut s = Server::start(dir);
        let seen = what_a_user_sees(&s);
        s.stop();
        seen
    };
    let (before, after) = (seen(&src), seen(&dst));
    assert_same(&before, &after);
    assert_eq!(after["model"]["retention_days"], 3650);
    assert_eq!(after["task"]["task"], "binary", "{after}");
    assert_eq!(after["task"]["declared_in"], "api", "{after}");
    // The prediction and the reference row refused.
    assert_eq!(after["rejected"].as_array().unwrap().len(), 2, "{after}");

    // Pages read back in the source's arrival order.
    let ids = |dir: &Path| {
        let mut s = Server::start(dir);
        let page = s.get_ok(&format!("/v1/models/{MODEL}/predictions?limit=20"));
        s.stop();
        page["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["request_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&src), ids(&dst));
}

#[test]
fn a_migration_refuses_what_it_cannot_do_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut s = Server::start(&src);
    s.post_ok(
        &format!("/v1/models/{MODEL}/predictions"),
        (0..5).map(|i| prediction(i, "v1")).collect(),
    );
    s.stop();
    let src_s = src.to_str().unwrap();
    let other = tmp.path().join("other");
    let other_s = other.to_str().unwrap();

    let (ok, _, err) = migrate(&["--data", src_s, "--to", src_s]);
    assert!(
        !ok && err.contains("is the data directory being copied"),
        "{err}"
    );
    let (ok, _, err) = migrate(&["--data", src_s, "--to", "postgres://db:5432/mw"]);
    assert!(!ok && err.contains("unknown store `postgres://`"), "{err}");
    let (ok, _, err) = migrate(&["--data", src_s, "--to", other_s, "--model", "nope"]);
    assert!(!ok && err.contains("--model nope: no such model"), "{err}");
    let missing = tmp.path().join("missing");
    let (ok, _, err) = migrate(&["--data", missing.to_str().unwrap(), "--to", other_s]);
    assert!(!ok && err.contains("does not exist"), "{err}");

    // The progress file belongs to one target: another needs --restart.
    let (ok, out, err) = migrate(&["--data", src_s, "--to", other_s]);
    assert!(ok, "{out}\n{err}");
    let third = tmp.path().join("third");
    let third_s = third.to_str().unwrap();
    let (ok, _, err) = migrate(&["--data", src_s, "--to", third_s]);
    assert!(!ok && err.contains("pass --restart"), "{err}");
    let (ok, out, err) = migrate(&["--data", src_s, "--to", third_s, "--restart"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("copied 5 predictions"), "{out}");

    // A target that already holds other rows of the model: the counts differ, named.
    let (ok, out, err) = migrate(&["--data", src_s, "--to", other_s, "--restart"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("copied 0 predictions (5 already there)"),
        "{out}"
    );
    let mut t = Server::start(&other);
    t.post_ok(
        &format!("/v1/models/{MODEL}/predictions"),
        vec![prediction(99, "v1")],
    );
    t.stop();
    let (ok, out, err) = migrate(&["--data", src_s, "--to", other_s]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("model `loans`: predictions v1 served: 5 in the source, 6 in the target"),
        "{err}"
    );
    assert!(out.contains("MISMATCH"), "{out}");
}
