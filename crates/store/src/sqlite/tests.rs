use super::*;
use crate::conformance;
use modelwatch_core::{parse_prediction_row, IngestLimits};

fn model() -> ModelName {
    ModelName::new("fraud").unwrap()
}

#[test]
fn passes_the_store_conformance_suite() {
    for (name, check) in conformance::ALL {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        eprintln!("conformance: {name}");
        check(&store);
    }
}

fn p(id: &str, ts: &str, age: f64) -> String {
    format!(
        r#"{{"request_id":"{id}","timestamp":"{ts}","model_version":"v1","features":{{"age":{age},"country":"DE"}},"prediction":1,"score":0.8}}"#
    )
}

fn preds(rows: &[&str]) -> PredictionBatch {
    let now = Timestamp::now();
    PredictionBatch {
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    i,
                    parse_prediction_row(r, i, now, &IngestLimits::default()).unwrap(),
                )
            })
            .collect(),
        rejected: vec![],
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
