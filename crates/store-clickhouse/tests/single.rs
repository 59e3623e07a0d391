//! One ClickHouse server with no cluster in its configuration (`system.clusters` has no
//! `modelwatch`): most users start there, and ClickHouse Cloud's one service is one too. The
//! whole conformance suite runs on it as one shard (ADR 019, "One server").
//!
//! Run: `cargo test -p modelwatch-store-clickhouse --test single` (needs clickhouse-server;
//! skipped with a message without it, failed when `CI` is set).

mod common;

#[test]
fn every_conformance_check_passes_on_one_server_without_a_cluster() {
    let Some(server) = common::Cluster::single() else {
        return;
    };
    let clusters = reqwest::blocking::Client::new()
        .post(format!("{}/", server.urls[0]))
        .body("SELECT count() FROM system.clusters")
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("system.clusters");
    assert_eq!(
        clusters.trim(),
        "0",
        "the server must have no cluster at all"
    );
    common::summary::the_summary_is_the_embedded_stores_after_every_write_and_kept_per_hour(
        &server.store("mw_summary"),
        &server,
        "mw_summary",
    );
    std::thread::scope(|s| {
        s.spawn(|| common::lease_checks(&server, "mw_lease", &[&[], &[], &[]]));
        common::run_checks(&server, "mw_single", &[]);
    });
    common::run_alert_checks(&server, "mw_single_alerts");
    a_named_cluster_must_exist(&server);
}

/// Without `?cluster=` one server is one shard; a cluster the URL names must exist (a typo must
/// not silently turn a sharded cluster's server into a single server).
fn a_named_cluster_must_exist(server: &common::Cluster) {
    use modelwatch_store_clickhouse::{ClickHouseConfig, ClickHouseStore};
    let url = format!("{}?cluster=modelwatch", server.url("mw_named"));
    let e = ClickHouseStore::connect(&ClickHouseConfig::from_url(&url).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no cluster `modelwatch`") && e.contains("the URL names it"),
        "{e}"
    );
}
