//! The model's summary (versions, predictions, labels, labelled) comes from per-hour counts
//! kept in `hour_counts` and counted again only where an hour's change count moved: after
//! every kind of write it must still be the embedded store's, and the counts must be kept
//! (a repeated summary reads them instead of every event).
use modelwatch_core::{parse_label_row, parse_prediction_row, IngestLimits, ModelName, Timestamp};
use modelwatch_store::{Catalog, LabelBatch, ModelSummary, PredictionBatch, SqliteStore, Store};

fn model() -> ModelName {
    ModelName::new("counted").unwrap()
}

/// (id, event time, version, role) predictions, one batch.
fn predict(stores: &[&dyn Store], rows: &[(&str, &str, &str, &str)]) {
    for store in stores {
        let now = Timestamp::now();
        let rows = rows
            .iter()
            .enumerate()
            .map(|(i, (id, at, version, role))| {
                let row = format!(
                    r#"{{"request_id":"{id}","timestamp":"{at}","model_version":"{version}","role":"{role}","features":{{"x":1}},"prediction":1}}"#
                );
                (i, parse_prediction_row(&row, i, now, &IngestLimits::default()).unwrap())
            })
            .collect();
        store
            .ingest_predictions(&model(), PredictionBatch::new(rows))
            .unwrap();
    }
}

fn label(stores: &[&dyn Store], ids: &[&str]) {
    for store in stores {
        let rows = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let row = format!(r#"{{"request_id":"{id}","label":1}}"#);
                let l =
                    parse_label_row(&row, i, Timestamp::now(), &IngestLimits::default()).unwrap();
                (i, l)
            })
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
}

/// What a summary says about the events (not when the model was created).
fn counts(s: ModelSummary) -> String {
    let versions = |vs: &[modelwatch_store::VersionSummary]| {
        vs.iter()
            .map(|v| {
                format!(
                    "{}:{}:{:?}:{:?}",
                    v.version, v.predictions, v.first_event, v.last_event
                )
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "predictions {} labels {} labelled {} first {:?} last {:?} served [{}] shadow [{}]",
        s.predictions,
        s.labels,
        s.labelled,
        s.first_event,
        s.last_event,
        versions(&s.versions),
        versions(&s.shadow_versions)
    )
}

pub fn the_summary_is_the_embedded_stores_after_every_write_and_kept_per_hour(
    store: &dyn Store,
    cluster: &super::Cluster,
    database: &str,
) {
    let tmp = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(tmp.path()).unwrap();
    let both: [&dyn Store; 2] = [store, &sqlite];
    let same = |step: &str| {
        let ours = counts(store.model(&model()).unwrap().unwrap());
        let embedded = counts(sqlite.model(&model()).unwrap().unwrap());
        assert_eq!(ours, embedded, "after {step}");
        // Asked again with nothing written: the kept counts answer the same.
        assert_eq!(
            counts(store.model(&model()).unwrap().unwrap()),
            ours,
            "repeated after {step}"
        );
        ours
    };
    predict(
        &both,
        &[
            ("a", "2026-01-01T00:10:00Z", "v1", "served"),
            ("b", "2026-01-01T00:50:00Z", "v1", "served"),
            ("c", "2026-01-01T03:05:00Z", "v1", "served"),
            ("a", "2026-01-01T00:20:00Z", "v2", "shadow"),
        ],
    );
    same("the first predictions");
    // Every (version, hour) with events has its kept counts.
    let kept = cluster.query(
        0,
        &format!(
            "SELECT count() FROM {database}.hour_counts FINAL WHERE model = 'counted' FORMAT TabSeparated"
        ),
    );
    assert_eq!(kept.trim(), "3", "the kept per-hour counts");
    // A late label moves its hour; a label before its prediction counts as a label only,
    // and as labelled once its prediction comes; a shadow's label is not `labelled`.
    label(&both, &["a", "early"]);
    let labelled = same("a late label and an early one");
    assert!(labelled.contains("labels 2 labelled 1"), "{labelled}");
    predict(&both, &[("early", "2026-01-01T03:40:00Z", "v1", "served")]);
    let later = same("the early label's prediction");
    assert!(later.contains("labels 2 labelled 2"), "{later}");
    // A new hour, a new version, and a duplicate (not counted twice).
    predict(
        &both,
        &[
            ("d", "2026-01-02T10:00:00Z", "v3", "served"),
            ("c", "2026-01-01T03:05:00Z", "v1", "served"),
        ],
    );
    let last = same("a new hour and version, and a duplicate");
    assert!(last.contains("predictions 5"), "{last}");
    // A relabel changes nothing counted.
    label(&both, &["a"]);
    assert_eq!(same("a relabel"), last);
}
