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
    common::summary::the_summary_is_the_embedded_stores_after_every_write_and_kept_per_hour(
        &cluster.store("mw_summary"),
        &cluster,
        "mw_summary",
    );
    // The cluster lease (ADR 020), its contenders on other replicas of the first shard (urls =
    // [s0r0, s0r1, s1r0, s1r1]), while the suite loads the servers.
    std::thread::scope(|s| {
        s.spawn(|| common::lease_checks(&cluster, "mw_lease", &[&[0, 2], &[1, 3], &[]]));
        common::run_checks(&cluster, "mw_repl", &[]);
    });
    two_processes_on_other_replicas_behave_as_one(&cluster);
    common::run_alert_checks(&cluster, "mw_repl_alerts");
    // Last: it kills a server.
    alert_reads_fall_back_to_the_other_replica_of_the_first_shard(&cluster);
}

/// The alert state lives on the first shard: with one of its replicas killed, every read of a
/// process that lists both goes to the other (a read never fails for the dead one).
fn alert_reads_fall_back_to_the_other_replica_of_the_first_shard(cluster: &common::Cluster) {
    use modelwatch_alerts::db::AlertStore;
    let store = common::alert_store(cluster, "mw_repl_down");
    let spec = modelwatch_alerts::RuleSpec::from_json(serde_json::json!({
        "name": "acc", "signal": "accuracy",
        "condition": {"kind": "threshold", "op": "<", "value": 0.9},
        "decision": "review", "severity": "warning"}))
    .unwrap();
    let now = modelwatch_core::Timestamp::now();
    assert!(store.insert_rule("fraud", &spec, now).unwrap());
    // cluster.sh lists shard 0's replicas first: urls = [s0r0, s0r1, s1r0, s1r1].
    cluster.kill9(0);
    for _ in 0..4 {
        assert_eq!(
            store.rules().unwrap(),
            vec![("fraud".to_owned(), spec.clone())]
        );
        assert!(store.due(now, 10).unwrap().is_empty());
    }
}

/// Two modelwatch processes, each talking to other replicas (the first to replica 1 of each
/// shard, the second to replica 2), behave as one service: a request id stored through one is
/// a duplicate through the other, and a label sent to either joins, whichever came first.
fn two_processes_on_other_replicas_behave_as_one(cluster: &common::Cluster) {
    use modelwatch_core::{parse_label_row, parse_prediction_row, IngestLimits, ModelName};
    use modelwatch_core::{Timestamp, Window};
    use modelwatch_store::{EventLog, LabelBatch, PredictionBatch, ScanRange, Store, WindowQuery};
    let model = ModelName::new("shared").unwrap();
    let now = Timestamp::now();
    let limits = IngestLimits::default();
    let preds = |ids: &[String]| {
        PredictionBatch::new(
            (ids.iter().enumerate())
                .map(|(i, id)| {
                    let row = format!(
                        r#"{{"request_id":"{id}","timestamp":"2026-01-01T00:00:00Z","model_version":"v1","prediction":1}}"#
                    );
                    (i, parse_prediction_row(&row, i, now, &limits).unwrap())
                })
                .collect(),
        )
    };
    let labels = |ids: &[String]| LabelBatch {
        rows: (ids.iter().enumerate())
            .map(|(i, id)| {
                let row = format!(r#"{{"request_id":"{id}","label":1}}"#);
                (i, parse_label_row(&row, i, now, &limits).unwrap())
            })
            .collect(),
        rejected: vec![],
    };
    // Every server gets the schema first (a quorum insert needs the table on every replica).
    drop(cluster.store("mw_two"));
    // cluster.sh lists shard 0's replicas first: urls = [s0r0, s0r1, s1r0, s1r1].
    let a = cluster.store_on("mw_two", &[0, 2]);
    let b = cluster.store_on("mw_two", &[1, 3]);
    let ids: Vec<String> = (0..40).map(|i| format!("q{i}")).collect();
    assert!((ids.iter()).any(|id| a.shard_of(id) == 0) && ids.iter().any(|id| a.shard_of(id) == 1));
    let first = a.ingest_predictions(&model, preds(&ids)).unwrap();
    assert_eq!((first.accepted, first.duplicates), (40, 0));
    let again = b.ingest_predictions(&model, preds(&ids)).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 40));
    // Labels through the other process, one sent before its prediction.
    let early = vec!["early".to_string()];
    b.ingest_labels(&model, labels(&ids[..10])).unwrap();
    b.ingest_labels(&model, labels(&early)).unwrap();
    a.ingest_predictions(&model, preds(&early)).unwrap();
    for store in [&a as &dyn Store, &b] {
        let mut labelled = 0;
        let mut seen = 0;
        store
            .scan_predictions(&model, &ScanRange::default(), &mut |_, l| {
                seen += 1;
                labelled += usize::from(l.is_some());
            })
            .unwrap();
        assert_eq!((seen, labelled), (41, 11));
        let m = store.model(&model).unwrap().unwrap();
        assert_eq!((m.predictions, m.labels, m.labelled), (41, 11, 11));
        let q = WindowQuery {
            window: Window::DAY,
            from: None,
            to: None,
            version: None,
        };
        let w = store.window_counts(&model, &q).unwrap();
        assert_eq!((w[0].predictions, w[0].labelled), (41, 11));
    }
}
