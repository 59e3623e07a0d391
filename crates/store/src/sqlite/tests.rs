use super::*;
use crate::conformance::{self, model, p, preds};

#[test]
fn passes_the_store_conformance_suite() {
    for (name, check) in conformance::ALL {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        eprintln!("conformance: {name}");
        check(&store);
    }
}

#[test]
fn data_survives_reopen_and_a_second_process_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .ingest_predictions(&model(), preds(&[&p("a", "2026-01-01T00:00:00Z", 1.5)]))
            .unwrap();
        assert!(matches!(
            SqliteStore::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let page = store.predictions(&model(), None, 10).unwrap();
    assert_eq!(page.items.len(), 1);
    let e = &page.items[0];
    assert_eq!(e.request_id, "a");
    assert_eq!(
        e.features[0],
        ("age".to_string(), FeatureValue::Number(1.5))
    );
    assert_eq!(e.model_version.as_deref(), Some("v1"));
    assert_eq!(e.score, Some(0.8));
}

#[test]
fn a_version_1_database_is_migrated_with_every_hour_dirty() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .ingest_predictions(
                &model(),
                preds(&[
                    &p("a", "2026-01-01T00:10:00Z", 1.5),
                    &p("b", "2026-01-01T02:10:00Z", 1.5),
                ]),
            )
            .unwrap();
        let labels = crate::LabelBatch {
            rows: vec![(0, label_event("a")), (1, label_event("not-yet"))],
            rejected: vec![],
        };
        store.ingest_labels(&model(), labels).unwrap();
    }
    // Turn it back into what version 1 wrote: no aggregates tables, no marks.
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "DROP TABLE label_deltas; ALTER TABLE request_index DROP COLUMN outcome;
             DROP TABLE dirty_hours; DROP TABLE aggregates; DROP TABLE kpis;
             DROP INDEX request_index_segment;
             ALTER TABLE models DROP COLUMN labelled; ALTER TABLE models DROP COLUMN orphan_labels;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let dirty: Vec<String> = store
        .dirty_hours(&model())
        .unwrap()
        .iter()
        .map(|d| d.hour.to_rfc3339())
        .collect();
    assert_eq!(dirty, ["2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z"]);
    // The label counters are computed once by the migration, then kept by the writer.
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (2, 1));
    store
        .ingest_predictions(
            &model(),
            preds(&[&p("not-yet", "2026-01-01T03:00:00Z", 1.5)]),
        )
        .unwrap();
    assert_eq!(store.model(&model()).unwrap().unwrap().labelled, 2);
    assert_eq!(
        store.predictions(&model(), None, 10).unwrap().items.len(),
        3
    );
}

#[test]
fn a_version_2_database_rescans_the_hours_of_its_old_predictions_for_new_labels() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .ingest_predictions(
                &model(),
                preds(&[
                    &p("a", "2026-01-01T00:10:00Z", 1.5),
                    &p("b", "2026-01-01T02:10:00Z", 1.5),
                ]),
            )
            .unwrap();
        let labels = crate::LabelBatch {
            rows: vec![(0, label_event("a")), (1, label_event("not-yet"))],
            rejected: vec![],
        };
        store.ingest_labels(&model(), labels).unwrap();
    }
    // Turn it back into what version 2 wrote: no outcomes in the index, no label deltas,
    // every mark a full one.
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "DROP TABLE label_deltas; ALTER TABLE request_index DROP COLUMN outcome;
             ALTER TABLE dirty_hours DROP COLUMN labels_only; DELETE FROM dirty_hours;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (2, 1));
    let labels = store.labels(&model(), None, 10).unwrap().items;
    assert_eq!(labels.len(), 2);
    // "b" was stored without its outcome: its first label marks the hour for a rescan.
    store
        .ingest_labels(
            &model(),
            crate::LabelBatch {
                rows: vec![(0, label_event("b"))],
                rejected: vec![],
            },
        )
        .unwrap();
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(dirty.len(), 1);
    assert!(!dirty[0].labels_only);
    assert!(store.label_deltas(&model()).unwrap().is_empty());
    // A prediction stored now carries its outcome: its first label is a delta.
    store
        .ingest_predictions(&model(), preds(&[&p("c", "2026-01-01T05:00:00Z", 1.5)]))
        .unwrap();
    let c = crate::Store::put_aggregates(
        &store,
        &model(),
        crate::AggregateWrite {
            kind: "perf".into(),
            clear: store.dirty_hours(&model()).unwrap(),
            ..Default::default()
        },
    );
    c.unwrap();
    store
        .ingest_labels(
            &model(),
            crate::LabelBatch {
                rows: vec![(0, label_event("c"))],
                rejected: vec![],
            },
        )
        .unwrap();
    let deltas = store.label_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0].labels[0].score, Some(0.8));
}

fn label_event(id: &str) -> LabelEvent {
    LabelEvent {
        request_id: id.into(),
        label: Outcome::Number(1.0),
        timestamp: Timestamp::now(),
    }
}
