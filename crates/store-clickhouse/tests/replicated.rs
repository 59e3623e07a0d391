//! The conformance suite on 2 shards x 2 replicas (ReplicatedReplacingMergeTree and friends,
//! ZooKeeper), every server listed in the URL: the store takes each shard's replicas in turn,
//! so consecutive writes (and the concurrent writers' batches) alternate between replicas,
//! every insert a quorum insert and every read sequentially consistent.
//!
//! Run: `cargo test -p modelwatch-store-clickhouse --test replicated` (needs clickhouse-server
//! and ZooKeeper; skipped with a message without the server, failed when `CI` is set).

mod common;

#[test]
fn conformance_checks_pass_with_writes_alternating_between_replicas() {
    let Some(cluster) = common::Cluster::start(2, 2) else {
        return;
    };
    common::run_checks(&cluster, "mw_repl", &[]);
}
