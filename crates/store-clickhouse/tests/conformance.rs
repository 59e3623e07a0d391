//! The storage conformance suite (`modelwatch_store::conformance::ALL`) on a real two-shard
//! ClickHouse cluster, each check on a fresh database; and the backend's CityHash64 against the
//! server's `cityHash64`, which routing to shards depends on.
//!
//! Run: `cargo test -p modelwatch-store-clickhouse --test conformance` (needs clickhouse-server;
//! skipped with a message without it, failed when `CI` is set).

mod common;

use modelwatch_store_clickhouse::city_hash64;

#[test]
fn every_conformance_check_passes_on_a_two_shard_cluster() {
    let Some(cluster) = common::Cluster::start(2, 1) else {
        return;
    };
    city_hash_is_the_servers(&cluster.urls[0]);
    common::run_checks(&cluster, "mw_test", &[]);
}

/// The shard a row is routed to is `city_hash64(request_id) % shards`: it must be the hash the
/// Distributed tables compute, or a label would land on another shard than its prediction.
fn city_hash_is_the_servers(server: &str) {
    let mut ids: Vec<String> = (0..300)
        .map(|i| {
            // Every length class of CityHash v1.0.2 (0-16, 17-32, 33-64, 65+ bytes), and
            // non-ASCII text.
            let len = (i * 7) % 150;
            let base = format!("req-{i}-é字-");
            base.repeat(len / base.len() + 1)[..]
                .char_indices()
                .take_while(|(at, _)| *at < len)
                .map(|(_, c)| c)
                .collect()
        })
        .collect();
    ids.push(String::new());
    ids.push("550e8400-e29b-41d4-a716-446655440000".into());
    let literals: Vec<String> = ids
        .iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    let sql = format!(
        "SELECT cityHash64(s) FROM (SELECT arrayJoin([{}]) AS s) FORMAT TabSeparated",
        literals.join(", ")
    );
    let text = reqwest::blocking::Client::new()
        .post(format!("{server}/"))
        .body(sql)
        .send()
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .expect("cityHash64 on the server");
    let theirs: Vec<u64> = text.lines().map(|l| l.parse().expect("a u64")).collect();
    let ours: Vec<u64> = ids.iter().map(|s| city_hash64(s)).collect();
    assert_eq!(theirs.len(), ids.len());
    for ((id, a), b) in ids.iter().zip(&ours).zip(&theirs) {
        assert_eq!(a, b, "cityHash64({id:?}): ours {a}, the server's {b}");
    }
}
