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
