//! The command line on a real two-shard ClickHouse cluster (started by the ClickHouse backend's
//! own test harness, `crates/store-clickhouse/tests/common`): `modelwatch migrate` killed in the
//! middle and run again ends with equal counts; two `modelwatch serve --store` replicas show what
//! the embedded store showed and take each other's writes; `import`, `export`, `metrics` and
//! `report` with `--store`.
//!
//! Needs clickhouse-server (scripts/clickhouse/cluster.sh install): skipped with a message
//! without it, failed when `CI` is set.

use crate::common;
use crate::migrate::{self, MODEL};

use common::{modelwatch, Server};
use std::path::Path;
use std::process::{Command, Stdio};

#[allow(dead_code)] // the harness's conformance runner is the backend's own test's
#[path = "../../../store-clickhouse/tests/common/mod.rs"]
pub(crate) mod cluster;

/// `modelwatch serve --store URL`, its alert state in `alerts_dir`, with `config` (TOML).
pub(crate) fn serve(url: &str, alerts_dir: &Path, config: &str) -> Server {
    std::fs::create_dir_all(alerts_dir).unwrap();
    let cfg = alerts_dir.join("modelwatch.toml");
    std::fs::write(&cfg, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_modelwatch"))
        .args(["serve", "--addr", "127.0.0.1:0", "--store", url, "--config"])
        .arg(&cfg)
        .env("MODELWATCH_DATA", alerts_dir)
        .env(
            "RUST_LOG",
            std::env::var("MW_TEST_LOG").unwrap_or("error".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start modelwatch serve");
    Server::attach(child)
}

#[test]
fn an_embedded_store_moves_onto_two_shards_and_two_servers_serve_it() {
    let Some(cluster) = cluster::Cluster::start(2, 1) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    migrate::populate(&src);
    let url = cluster.url("mw_migrate");
    migrate::kill_then_finish(&src, &url);

    // The same numbers from the embedded store and from ClickHouse, to the last digit: the two
    // stores visit a window's rows in different orders, and nothing computed from them depends
    // on that order (exact sums, samples by hash).
    let src_s = src.to_str().unwrap();
    let hourly = migrate::hourly_metrics(&["--data", src_s]);
    assert!(hourly.lines().count() > 1, "no windows: {hourly}");
    assert_eq!(hourly, migrate::hourly_metrics(&["--store", &url]));
    let before = {
        let mut s = Server::start(&src);
        let seen = migrate::what_a_user_sees(&s);
        s.stop();
        seen
    };
    // One replica evaluates the alert rules once it holds the cluster lease (ADR 020: epochs
    // of 1 s here); the other, out of it by its config, says on /metrics that it does not.
    let a = serve(
        &url,
        &tmp.path().join("replica-a"),
        "[clickhouse]\nlease_seconds = 1\n",
    );
    let b = serve(
        &url,
        &tmp.path().join("replica-b"),
        "[alerts]\nevaluate = false\n",
    );
    for (s, on) in [(&a, 1), (&b, 0)] {
        common::poll(30, || {
            let (_, text, _) = s.get_text("/metrics");
            text.contains(&format!("\nmodelwatch_alerts_evaluating {on}\n"))
                .then_some(())
                .ok_or(text)
        });
    }
    migrate::assert_same(&before, &migrate::what_a_user_sees(&a));
    migrate::assert_same(&before, &migrate::what_a_user_sees(&b));

    // Any replica takes any request: a prediction sent to one, its label to the other.
    a.post_ok(
        &format!("/v1/models/{MODEL}/predictions"),
        vec![migrate::prediction(9_000, "v1")],
    );
    let label =
        serde_json::json!({"request_id": "r9000", "label": 1, "timestamp": "2026-11-04T00:00:00Z"});
    let out = b.post_ok(&format!("/v1/models/{MODEL}/labels"), vec![label]);
    assert_eq!(out["accepted"], 1, "{out}");
    for s in [&a, &b] {
        let m = s.get_ok(&format!("/v1/models/{MODEL}"));
        assert_eq!(m["predictions"], 6_001, "{m}");
        assert_eq!(m["labels"], 4_002, "{m}");
    }

    // report, import and export with --store: the report has every part the embedded store's
    // has (a part it could not make is listed under `unavailable`, with why).
    let report = |target: &[&str]| {
        let out = tmp.path().join("report.json");
        let mut args = vec![
            "report",
            "--model",
            MODEL,
            "--range",
            "all",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(target);
        let (ok, stdout, err) = modelwatch(&args);
        assert!(ok, "{stdout}\n{err}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        json
    };
    let (embedded, shared) = (report(&["--data", src_s]), report(&["--store", &url]));
    assert_eq!(shared["unavailable"], embedded["unavailable"], "{shared}");
    assert_eq!(shared["summary"]["predictions"], 6_001);
    let csv = tmp.path().join("more.csv");
    let mut text = String::from("request_id,timestamp,x,prediction,score,label\n");
    for i in 0..300 {
        text += &format!(
            "m{i},2026-11-02T{:02}:00:00Z,{i},{},0.{},{}\n",
            i % 24,
            i % 2,
            i % 10,
            i % 3 % 2
        );
    }
    std::fs::write(&csv, text).unwrap();
    let (ok, out, err) = common::import("predictions", &csv, "more", &["--store", &url]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("300 accepted, 0 duplicates, 0 rejected, 300 labels"),
        "{out}"
    );
    let parquet = tmp.path().join("more.parquet");
    let (ok, out, err) = modelwatch(&[
        "export",
        "predictions",
        "--model",
        "more",
        "--out",
        parquet.to_str().unwrap(),
        "--store",
        &url,
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("wrote 300 rows of model `more`"), "{out}");

    // Two more replicas, on a database of their own: the alert state is shared (and moved by
    // `migrate`).
    crate::clickhouse_alerts::two_replicas_share_one_alert_state(&cluster, tmp.path());
    crate::clickhouse_alerts::migrate_moves_the_alert_state(&cluster, tmp.path());
}
