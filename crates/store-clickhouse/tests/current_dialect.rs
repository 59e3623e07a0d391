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
    the_shim_answers_errors_as_a_server_does(&server.urls[0]);
    common::summary::the_summary_is_the_embedded_stores_after_every_write_and_kept_per_hour(
        &server.store("mw_summary"),
        &server,
        "mw_summary",
    );
    // Before the suite: the shim answers one query at a time, so claims would wait behind it.
    common::lease_checks(&server, "mw_lease", &[&[], &[], &[]]);
    common::run_checks(&server, "mw_current", &[]);
    common::run_alert_checks(&server, "mw_current_alerts");
}

/// The backend tells a refused query by its HTTP status and shows ClickHouse's message: the shim
/// must answer both as a server does, and must not ignore a setting the release lacks (the
/// backend's settings are checked, not dropped).
fn the_shim_answers_errors_as_a_server_does(url: &str) {
    let client = reqwest::blocking::Client::new();
    let ask = |query: &str, params: &[(&str, &str)]| {
        let r = client
            .post(format!("{url}/"))
            .query(params)
            .body(query.to_string())
            .send()
            .expect("the shim answers");
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, text) = ask("SELECT no_such_column", &[]);
    assert_eq!(status, 500, "{text}");
    assert!(
        text.starts_with("Code: 47. DB::Exception:") && text.contains("no_such_column"),
        "{text}"
    );
    let (status, text) = ask("SELECT 1", &[("no_such_setting", "1")]);
    assert_eq!(status, 500, "{text}");
    assert!(text.contains("no_such_setting"), "{text}");
    let (status, text) = ask("SELECT 1", &[("database", "no_such_database")]);
    assert!(status == 500 && text.contains("no_such_database"), "{text}");
}
