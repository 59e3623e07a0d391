//! `--store URL` on the commands that read or write events, against the real binary: a store
//! named two ways at once is refused by the parser, a URL that is not a store's is refused
//! naming where it came from (flag, environment, config file) and what is wrong with it.

use crate::common;

use common::modelwatch;
use std::process::Command;

/// Runs the binary with `env` set: (succeeded, stdout, stderr).
fn with_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelwatch"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run modelwatch");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const URL: &str = "clickhouse://127.0.0.1:1/mw";

#[test]
fn store_and_data_together_are_refused_on_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("p.csv");
    std::fs::write(&file, "request_id,timestamp,x\nr1,2026-11-01T00:00:00Z,1\n").unwrap();
    let (f, d) = (file.to_str().unwrap(), tmp.path().to_str().unwrap());
    let out = tmp.path().join("o.parquet");
    let html = tmp.path().join("r.html");
    for args in [
        vec!["serve", "--data", d, "--store", URL],
        vec![
            "import",
            "predictions",
            f,
            "--model",
            "m",
            "--data",
            d,
            "--store",
            URL,
        ],
        vec![
            "export",
            "predictions",
            "--model",
            "m",
            "--out",
            out.to_str().unwrap(),
            "--data",
            d,
            "--store",
            URL,
        ],
        vec!["metrics", "--model", "m", "--data", d, "--store", URL],
        vec![
            "report",
            "--model",
            "m",
            "--out",
            html.to_str().unwrap(),
            "--data",
            d,
            "--store",
            URL,
        ],
    ] {
        let (ok, _, err) = modelwatch(&args);
        assert!(!ok, "{args:?}");
        assert!(
            err.contains("cannot be used with")
                && err.contains("--store")
                && err.contains("--data"),
            "{args:?}: {err}"
        );
    }
    let (ok, _, err) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--store",
        URL,
        "--server",
        "http://127.0.0.1:1",
    ]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

#[test]
fn a_bad_store_url_is_refused_naming_where_it_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let (ok, _, err) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--store",
        "postgres://db:5432/mw",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--store `postgres://db:5432/mw`: unknown store `postgres://`")
            && err.contains("clickhouse://HOST:PORT/DATABASE"),
        "{err}"
    );
    // A ClickHouse URL is checked before anything is opened, naming the part that is wrong.
    for (url, problem) in [
        (
            "clickhouse://db/mw",
            "server `db` in `clickhouse://db/mw` has no port",
        ),
        ("clickhouse://db:8123", "names no database"),
        ("clickhouse://db:99999/mw", "`99999` is not a port number"),
        ("clickhouse://db:8123/my-db", "database `my-db`"),
        ("clickhouse://db:8123,/mw", "server `` in"),
    ] {
        let (ok, _, err) = modelwatch(&[
            "export",
            "labels",
            "--model",
            "m",
            "--out",
            &format!("{d}/o.parquet"),
            "--store",
            url,
        ]);
        assert!(!ok);
        assert!(
            err.contains("--store: ") && err.contains(problem),
            "{url}: {err}"
        );
    }
    let (ok, _, err) = with_env(
        &["report", "--model", "m", "--out", &format!("{d}/r.html")],
        &[("MODELWATCH_STORE", "127.0.0.1:8123/mw")],
    );
    assert!(!ok);
    assert!(
        err.contains("MODELWATCH_STORE `127.0.0.1:8123/mw`: not a store URL"),
        "{err}"
    );
    // --data on the command line wins over the environment, as every flag does.
    let (ok, _, err) = with_env(
        &["metrics", "--model", "m", "--data", d],
        &[("MODELWATCH_STORE", "127.0.0.1:8123/mw")],
    );
    assert!(!ok && !err.contains("MODELWATCH_STORE"), "{err}");
    assert!(err.contains("model `m` does not exist"), "{err}");

    // A server that does not answer: the error names it, and the command fails at once.
    let (ok, _, err) = modelwatch(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--store",
        "clickhouse://127.0.0.1:1/mw",
    ]);
    assert!(!ok);
    assert!(
        err.contains("connecting to clickhouse://127.0.0.1:1/mw")
            && err.contains("http://127.0.0.1:1"),
        "{err}"
    );

    // A password in the URL is refused without being echoed.
    let (ok, _, err) = modelwatch(&[
        "migrate",
        "--data",
        d,
        "--to",
        "clickhouse://mw:secret@db:8123/mw",
    ]);
    assert!(
        !ok && err.contains("carries no user or password") && !err.contains("secret"),
        "{err}"
    );

    let cfg = tmp.path().join("mw.toml");
    std::fs::write(
        &cfg,
        "store = \"mysql://db/mw\"\n[clickhouse]\nuser = \"mw\"\npassword = \"secret\"\n",
    )
    .unwrap();
    let (ok, _, err) = with_env(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[("RUST_LOG", "warn")],
    );
    assert!(!ok);
    assert!(
        err.contains("the config file's `store` `mysql://db/mw`: unknown store `mysql://`"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    std::fs::write(&cfg, "[clickhouse]\nusr = \"mw\"\n").unwrap();
    let (ok, _, err) = modelwatch(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("unknown field `usr`"), "{err}");
}

/// `alerts.evaluate = false`, for every replica but one on a shared store: the process says on
/// `/metrics` whether it evaluates (so a Prometheus rule can check that exactly one does).
#[test]
fn a_replica_with_alert_evaluation_off_says_so_on_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let evaluating = |s: &common::Server| -> String {
        let (status, text, _) = s.get_text("/metrics");
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find(|l| l.starts_with("modelwatch_alerts_evaluating "))
            .unwrap_or_else(|| panic!("no modelwatch_alerts_evaluating in\n{text}"))
            .to_owned()
    };
    let mut on = common::Server::start(&tmp.path().join("on"));
    assert_eq!(evaluating(&on), "modelwatch_alerts_evaluating 1");
    on.stop();
    let cfg = tmp.path().join("off.toml");
    std::fs::write(&cfg, "[alerts]\nevaluate = false\n").unwrap();
    let mut off = common::Server::start_with(
        &tmp.path().join("off"),
        &["--config", cfg.to_str().unwrap()],
        &[],
    );
    assert_eq!(evaluating(&off), "modelwatch_alerts_evaluating 0");
    off.stop();
}
