//! The storage conformance suite (`modelwatch_store::conformance::ALL`) on a real two-shard
//! ClickHouse cluster, each check on a fresh database; and the backend's CityHash64 against the
//! server's `cityHash64`, which routing to shards depends on.
//!
//! Run: `cargo test -p modelwatch-store-clickhouse --test conformance` (needs clickhouse-server;
//! skipped with a message without it, failed when `CI` is set).

mod common;

use modelwatch_store_clickhouse::city_hash64;

#[test]
fn every_conformance_check_passes_on_a_two_shard_cluster_and_stale_hours_follow_the_change_counts()
{
    let Some(cluster) = common::Cluster::start(2, 1) else {
        return;
    };
    city_hash_is_the_servers(&cluster.urls[0]);
    // Beside the suite, on the same cluster (one start-up per test binary): how this backend
    // answers the freshness calls of DerivedState (ADR 018's amendment).
    hours::stale_hours_follow_the_change_counts(&cluster.store("mw_hours"));
    common::summary::the_summary_is_the_embedded_stores_after_every_write_and_kept_per_hour(
        &cluster.store("mw_summary"),
        &cluster,
        "mw_summary",
    );
    engine::per_window_metrics_equal_the_embedded_stores(&cluster.store("mw_engine"));
    connects_from_an_async_context(&cluster.url("mw_async"));
    connection_errors_name_what_is_wrong(&cluster);
    // The cluster lease (ADR 020) while the suite loads the servers, as live traffic would.
    std::thread::scope(|s| {
        s.spawn(|| common::lease_checks(&cluster, "mw_lease", &[&[], &[], &[]]));
        common::run_checks(&cluster, "mw_test", &[]);
    });
    common::run_alert_checks(&cluster, "mw_alerts");
}

/// The server opens its store inside its Tokio runtime: blocking reqwest used there panicked
/// ("Cannot drop a runtime in a context where blocking is not allowed") until `connect` ran on
/// a thread of its own. The store's methods are then called from the blocking pool.
fn connects_from_an_async_context(url: &str) {
    use modelwatch_store::Catalog;
    use modelwatch_store_clickhouse::{ClickHouseConfig, ClickHouseStore};
    let config = ClickHouseConfig::from_url(url).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = std::sync::Arc::new(ClickHouseStore::connect(&config).unwrap());
        let reader = store.clone();
        let models = tokio::task::spawn_blocking(move || reader.list_models().unwrap())
            .await
            .unwrap();
        assert!(models.is_empty());
        drop(store);
    });
}

/// A URL the cluster cannot serve is refused at `connect`, the error naming the server and
/// what is wrong, before anything is created.
fn connection_errors_name_what_is_wrong(cluster: &common::Cluster) {
    use modelwatch_store_clickhouse::{ClickHouseConfig, ClickHouseStore};
    let first = cluster.urls[0].trim_start_matches("http://");
    let refused = |url: &str| {
        let config = ClickHouseConfig::from_url(url).unwrap();
        ClickHouseStore::connect(&config).unwrap_err().to_string()
    };
    // cluster.sh lists shard 1's server first: the other shard has none in the URL.
    let e = refused(&format!("clickhouse://{first}/mw_partial"));
    assert!(
        e.contains("no server listed in the URL holds shard 2 of 2"),
        "{e}"
    );
    let e = refused(&format!(
        "clickhouse://{first}/mw_partial?cluster=elsewhere"
    ));
    assert!(
        e.contains(&format!("http://{first}")) && e.contains("no cluster `elsewhere`"),
        "{e}"
    );
    // A port nothing listens on (bound, then released).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("127.0.0.1:{}", free.local_addr().unwrap().port());
    drop(free);
    let e = refused(&format!("clickhouse://{closed}/mw_partial"));
    assert!(
        e.contains(&format!("http://{closed}")) && e.contains("topology"),
        "{e}"
    );
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

mod hours {
    //! The derived state and its freshness as ADR 018's amendment says a backend without
    //! additions answers them: change counts, every stale hour to rescan, an hour with events
    //! and no blob always stale.
    use modelwatch_core::{
        parse_label_row, parse_prediction_row, IngestLimits, ModelName, ReferenceRow, Timestamp,
    };
    use modelwatch_store::{
        AggregateWrite, LabelBatch, PredictionBatch, ScanRange, StaleHour, Store, StoredAggregate,
        MODEL_WIDE,
    };

    const H0: &str = "2026-01-01T00:";
    const H3: &str = "2026-01-01T03:";

    fn model() -> ModelName {
        ModelName::new("fraud").unwrap()
    }

    fn hour(prefix: &str) -> Timestamp {
        modelwatch_core::parse_timestamp(&format!("{prefix}00:00Z")).unwrap()
    }

    fn predict(store: &dyn Store, rows: &[(&str, &str)]) {
        let now = Timestamp::now();
        let rows = rows
            .iter()
            .enumerate()
            .map(|(i, (id, at))| {
                let row = format!(
                    r#"{{"request_id":"{id}","timestamp":"{at}10:00Z","model_version":"v1","features":{{"x":1}},"prediction":1}}"#
                );
                (i, parse_prediction_row(&row, i, now, &IngestLimits::default()).unwrap())
            })
            .collect();
        store
            .ingest_predictions(&model(), PredictionBatch::new(rows))
            .unwrap();
    }

    fn label(store: &dyn Store, id: &str) {
        let row = format!(r#"{{"request_id":"{id}","label":1}}"#);
        let l = parse_label_row(&row, 0, Timestamp::now(), &IngestLimits::default()).unwrap();
        store
            .ingest_labels(
                &model(),
                LabelBatch {
                    rows: vec![(0, l)],
                    rejected: vec![],
                },
            )
            .unwrap();
    }

    fn stale(store: &dyn Store) -> Vec<StaleHour> {
        store.stale_hours(&model(), true).unwrap()
    }

    fn dirty(store: &dyn Store) -> Vec<(String, Timestamp)> {
        let hours = stale(store);
        // Nothing to add, even when asked: every stale hour is rescanned.
        assert!(hours.iter().all(|h| h.additions().is_none()));
        hours.into_iter().map(|h| (h.version, h.hour)).collect()
    }

    /// A refresh as the engine does it: read the stale hours, write a blob for each, clearing
    /// the hours as read.
    fn refresh(store: &dyn Store, kind: &str, blob: &[u8]) {
        let hours = stale(store);
        let snapshot = store
            .scan_predictions(&model(), &ScanRange::default(), &mut |_, _| {})
            .unwrap();
        let put = hours
            .iter()
            .map(|h| StoredAggregate {
                version: h.version.clone(),
                hour: h.hour,
                data: blob.to_vec(),
            })
            .collect();
        store
            .put_aggregates(
                &model(),
                AggregateWrite {
                    kind: kind.into(),
                    put,
                    refreshed: hours.iter().map(|h| h.rescanned(snapshot)).collect(),
                    ..AggregateWrite::default()
                },
            )
            .unwrap();
    }

    fn blobs(store: &dyn Store, kind: &str) -> Vec<(Timestamp, Vec<u8>)> {
        (store
            .aggregates(&model(), kind, &ScanRange::default())
            .unwrap())
        .into_iter()
        .map(|a| (a.hour, a.data))
        .collect()
    }

    pub fn stale_hours_follow_the_change_counts(store: &dyn Store) {
        let v1 = |h: &str| ("v1".to_string(), hour(h));
        predict(store, &[("a", H0), ("b", H0), ("c", H3)]);
        // Hours with events and no blob are stale.
        assert_eq!(dirty(store), [v1(H0), v1(H3)]);
        assert_eq!(store.models_with_stale_hours().unwrap(), [model()]);
        let blob = [0u8, 159, 146, 150, 255, b'\n', b'"'];
        refresh(store, "metrics", &blob);
        assert_eq!(dirty(store), []);
        assert!(store.models_with_stale_hours().unwrap().is_empty());
        assert_eq!(
            blobs(store, "metrics"),
            [(hour(H0), blob.to_vec()), (hour(H3), blob.to_vec())]
        );
        // A late label moves its prediction's hour only; a label before its prediction
        // moves nothing until the prediction comes.
        label(store, "a");
        assert_eq!(dirty(store), [v1(H0)]);
        refresh(store, "metrics", b"2");
        label(store, "later");
        assert_eq!(dirty(store), []);
        predict(store, &[("later", H3)]);
        assert_eq!(dirty(store), [v1(H3)]);
        // A change racing with a refresh leaves the hour stale: the blob was built before it.
        let read = stale(store);
        label(store, "c");
        store
            .put_aggregates(
                &model(),
                AggregateWrite {
                    kind: "metrics".into(),
                    put: vec![StoredAggregate {
                        version: "v1".into(),
                        hour: hour(H3),
                        data: b"3".to_vec(),
                    }],
                    refreshed: read.iter().map(StaleHour::added).collect(),
                    ..AggregateWrite::default()
                },
            )
            .unwrap();
        assert_eq!(dirty(store), [v1(H3)]);
        refresh(store, "metrics", b"4");
        assert_eq!(dirty(store), []);
        // Invalidation makes every hour stale and keeps the blobs readable meanwhile.
        store.invalidate_aggregates(&model()).unwrap();
        assert_eq!(dirty(store), [v1(H0), v1(H3)]);
        assert_eq!(blobs(store, "metrics").len(), 2);
        refresh(store, "metrics", b"5");
        assert_eq!(dirty(store), []);
        // An hour's blob deleted, a model-wide blob kept beside the hours.
        store
            .put_aggregates(
                &model(),
                AggregateWrite {
                    kind: "metrics".into(),
                    delete: vec![("v1".into(), hour(H3))],
                    ..AggregateWrite::default()
                },
            )
            .unwrap();
        assert_eq!(blobs(store, "metrics"), [(hour(H0), b"5".to_vec())]);
        for kind in ["declared-task", "reference-profile"] {
            store
                .put_aggregates(
                    &model(),
                    AggregateWrite {
                        kind: kind.into(),
                        put: vec![StoredAggregate {
                            version: String::new(),
                            hour: MODEL_WIDE,
                            data: b"w".to_vec(),
                        }],
                        ..AggregateWrite::default()
                    },
                )
                .unwrap();
            assert_eq!(blobs(store, kind), [(MODEL_WIDE, b"w".to_vec())]);
        }
        // A new reference deletes what was derived from the old one, nothing else.
        let row = ReferenceRow {
            features: vec![("x".into(), modelwatch_core::FeatureValue::Number(1.0))],
            ..ReferenceRow::default()
        };
        store
            .put_reference(&model(), None, vec![(0, row)], vec![])
            .unwrap();
        assert_eq!(blobs(store, "reference-profile"), []);
        assert_eq!(blobs(store, "declared-task"), [(MODEL_WIDE, b"w".to_vec())]);
    }
}

mod engine {
    //! The engine over this backend: the scikit-learn fixture of the engine's performance tests
    //! (`crates/engine/tests/fixtures/binary.json`, from `scripts/fixtures/gen_window_fixtures.py`)
    //! gives the same per-window metrics on ClickHouse as on the embedded store, to the bit,
    //! with the aggregates refreshed half-way (late labels and new predictions landing in hours
    //! already aggregated: the change counts must say which hours to rebuild).
    use modelwatch_core::{
        parse_label_row, parse_prediction_row, FeatureValue, IngestLimits, ModelName, Outcome,
        ReferenceRow, Timestamp, Window,
    };
    use modelwatch_engine::performance::{scan_performance, window_performance, PerformanceQuery};
    use modelwatch_store::{LabelBatch, PredictionBatch, SqliteStore, Store};
    use serde_json::Value;

    fn model() -> ModelName {
        ModelName::new("m").unwrap()
    }

    fn outcome(v: &Value) -> Outcome {
        match v {
            Value::Bool(b) => Outcome::Bool(*b),
            Value::Number(n) => Outcome::Number(n.as_f64().unwrap()),
            Value::String(s) => Outcome::Text(s.clone()),
            other => panic!("not an outcome: {other}"),
        }
    }

    fn load(store: &dyn Store, preds: &[Value], labels: &[Value]) {
        let now = Timestamp::now();
        let limits = IngestLimits::default();
        for chunk in preds.chunks(500) {
            let rows = (chunk.iter().enumerate())
                .map(|(i, r)| {
                    (
                        i,
                        parse_prediction_row(&r.to_string(), i, now, &limits).unwrap(),
                    )
                })
                .collect();
            let out = store
                .ingest_predictions(&model(), PredictionBatch::new(rows))
                .unwrap();
            assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        }
        let rows = (labels.iter().enumerate())
            .map(|(i, r)| (i, parse_label_row(&r.to_string(), i, now, &limits).unwrap()))
            .collect();
        store
            .ingest_labels(
                &model(),
                LabelBatch {
                    rows,
                    rejected: vec![],
                },
            )
            .unwrap();
    }

    fn reference(store: &dyn Store, rows: &[Value]) {
        let rows = (rows.iter().enumerate())
            .map(|(i, r)| {
                let features = (r["features"].as_object().unwrap().iter())
                    .map(|(k, v)| (k.into(), FeatureValue::Text(v.as_str().unwrap().into())))
                    .collect();
                let row = ReferenceRow {
                    features,
                    prediction: r.get("prediction").map(outcome),
                    score: r.get("score").and_then(Value::as_f64),
                    label: r.get("label").map(outcome),
                    ..ReferenceRow::default()
                };
                (i, row)
            })
            .collect();
        store.put_reference(&model(), None, rows, vec![]).unwrap();
    }

    fn reports(store: &dyn Store) -> Vec<Value> {
        [Window::DAY, Window::WEEK, Window::HOUR]
            .into_iter()
            .flat_map(|window| {
                let q = PerformanceQuery {
                    window: Some(window),
                    ..PerformanceQuery::default()
                };
                [
                    serde_json::to_value(window_performance(store, &model(), &q).unwrap()),
                    serde_json::to_value(scan_performance(store, &model(), &q).unwrap()),
                ]
            })
            .map(Result::unwrap)
            .collect()
    }

    pub fn per_window_metrics_equal_the_embedded_stores(clickhouse: &dyn Store) {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
        let path = format!("{dir}/../engine/tests/fixtures/binary.json");
        let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let preds = data["predictions"].as_array().unwrap();
        let labels = data["labels"].as_array().unwrap();
        let (half_p, half_l) = (preds.len() / 2, labels.len() / 2);
        let tmp = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(tmp.path()).unwrap();
        let mut answers = Vec::new();
        for store in [&sqlite as &dyn Store, clickhouse] {
            reference(store, data["reference"].as_array().unwrap());
            load(store, &preds[..half_p], &labels[..half_l]);
            let first = reports(store);
            load(store, &preds[half_p..], &labels[half_l..]);
            answers.push((first, reports(store)));
        }
        let (embedded, ours) = (&answers[0], &answers[1]);
        for (i, (a, b)) in (embedded.0.iter().zip(&ours.0))
            .chain(embedded.1.iter().zip(&ours.1))
            .enumerate()
        {
            // To the bit: the embedded store added late labels and new predictions to stored
            // hours, ClickHouse rescanned them, and the sums are exact either way.
            assert_eq!(a, b, "report {i}");
        }
        // The sklearn fixture's days are all there.
        let days = ours.1[0]["windows"].as_array().unwrap().len();
        assert_eq!(days, data["expected"]["windows"].as_object().unwrap().len());
        assert!(clickhouse.stale_hours(&model(), false).unwrap().is_empty());
    }
}
