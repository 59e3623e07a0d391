//! The SQL the backend sends, against the current ClickHouse release: chdb (PyPI; ClickHouse
//! 26.9 with chdb 4.4) served over HTTP by scripts/clickhouse/chdb_shim.py, used as one server
//! without a cluster. The whole conformance suite must pass on it with the same SQL text as on
//! Debian's 18.16 (ADR 019, "What 18.16 could not do, and the current alternative").
//!
//! Run: `MODELWATCH_CHDB_PYTHON=path/to/python cargo test -p modelwatch-store-clickhouse --test
//! current_dialect` (a Python with `pip install chdb`; skipped with a message without it,
//! failed when `CI` or `MODELWATCH_REQUIRE_CLICKHOUSE` is set).

mod common;

#[test]
fn every_conformance_check_passes_on_the_current_release_through_chdb() {
    let Some(server) = common::Cluster::chdb() else {
        return;
    };
    let version = reqwest::blocking::Client::new()
        .post(format!("{}/", server.urls[0]))
        .body("SELECT version()")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("version()");
    let major: u32 = version.split('.').next().unwrap().trim().parse().unwrap();
    assert!(
        major >= 24,
        "chdb serves ClickHouse {version}: not a current release"
    );
    eprintln!("ClickHouse {} (chdb)", version.trim());
    common::run_checks(&server, "mw_current", &[]);
}
