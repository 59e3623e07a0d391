//! `aggregates::ImportFold`: the per-hour state an import folds from the file's rows is the
//! state the first refresh would build by rescanning the stored events, byte for byte, and it
//! is written only when that holds.

use modelwatch_core::{
    FeatureName, FeatureValue, LabelEvent, ModelName, Outcome, PredictionEvent, ReferenceRow,
    Timestamp, Window,
};
use modelwatch_engine::aggregates::{self, ImportFold, ImportState, DRIFT, PERFORMANCE};
use modelwatch_engine::drift::{self, DriftQuery};
use modelwatch_engine::performance::{window_performance, PerformanceQuery};
use modelwatch_stats::drift::DriftConfig;
use modelwatch_store::{
    Catalog, DerivedState, EventLog, GatheredPredictions, LabelBatch, PredictionBatch, ScanRange,
    SqliteStore,
};

/// 2026-11-02T00:00:00Z.
const START: i64 = 1_793_577_600;

fn model() -> ModelName {
    ModelName::new("credit").unwrap()
}

fn features(i: usize) -> Vec<(FeatureName, FeatureValue)> {
    let u = ((i * 7919) % 1000) as f64 / 1000.0;
    vec![
        ("age".into(), FeatureValue::Number(20.0 + 60.0 * u)),
        (
            "country".into(),
            FeatureValue::Text(["DE", "FR", "IT"][i % 3].into()),
        ),
    ]
}

/// Row `i` of a file: two versions, one row in 11 tagged as exploration traffic, rows over 50 hours in no particular order (as in a file
/// exported unsorted), a score, and a label for 7 rows in 10 (with the prediction's time, as
/// a predictions file's label column gets).
fn row(i: usize, class: &str) -> (PredictionEvent, Option<LabelEvent>) {
    let hour = ((i * 37) % 50) as i64;
    let ts = Timestamp::from_secs(START + hour * 3600 + (i % 3600) as i64);
    let score = ((i * 31) % 100) as f64 / 100.0;
    let p = PredictionEvent {
        request_id: format!("r{i}"),
        timestamp: ts,
        model_version: Some(if i.is_multiple_of(3) { "v2" } else { "v1" }.into()),
        features: features(i),
        prediction: Some(Outcome::Text(class.into())),
        score: Some(score),
        scores: None,
        latency_ms: Some((i % 50) as f64),
        cost: None,
        error: None,
        // Some exploration traffic, so that the hours' exploration split is compared too.
        tags: if i.is_multiple_of(11) {
            vec![("exploration".into(), "true".into())]
        } else {
            vec![]
        },
        explanations: Vec::new(),
        role: modelwatch_core::Role::Served,
    };
    let label = (i % 10 < 7).then(|| LabelEvent {
        request_id: p.request_id.clone(),
        label: Outcome::Text(
            if (i * 13).is_multiple_of(3) {
                "no"
            } else {
                "yes"
            }
            .into(),
        ),
        timestamp: ts,
    });
    (p, label)
}

fn class(i: usize) -> &'static str {
    if score_of(i) >= 0.5 {
        "yes"
    } else {
        "no"
    }
}

fn score_of(i: usize) -> f64 {
    ((i * 31) % 100) as f64 / 100.0
}

fn reference() -> Vec<(usize, ReferenceRow)> {
    (0..400)
        .map(|i| {
            let row = ReferenceRow {
                features: features(i + 5),
                prediction: Some(Outcome::Text(class(i).into())),
                score: Some(score_of(i)),
                scores: None,
                label: Some(Outcome::Text(class(i + 1).into())),
                explanations: Vec::new(),
            };
            (i, row)
        })
        .collect()
}

/// Imports `rows` in chunks as `modelwatch import` does: each chunk's predictions, then its
/// labels joined by the writer to the predictions of their rows
/// (`submit_gathered_with_labels`), folded
/// into `fold` when there is one. Returns (accepted, duplicates, labels).
fn import(
    store: &SqliteStore,
    rows: &[(PredictionEvent, Option<LabelEvent>)],
    fold: Option<&mut ImportFold>,
) -> (u64, u64, u64) {
    import_with(store, rows, fold, true)
}

/// [`import`], the labels joined to their rows (`joined`) or looked up by request id as any
/// label batch is.
fn import_with(
    store: &SqliteStore,
    rows: &[(PredictionEvent, Option<LabelEvent>)],
    mut fold: Option<&mut ImportFold>,
    joined: bool,
) -> (u64, u64, u64) {
    let (mut accepted, mut duplicates, mut labelled) = (0, 0, 0);
    for (c, chunk) in rows.chunks(700).enumerate() {
        let first = c * 700;
        let predictions: Vec<PredictionEvent> = chunk.iter().map(|r| r.0.clone()).collect();
        let prediction_index: Vec<usize> = (first..first + chunk.len()).collect();
        let (label_index, labels): (Vec<usize>, Vec<LabelEvent>) = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.1.clone().map(|l| (first + i, l)))
            .unzip();
        if let Some(f) = fold.as_deref_mut() {
            f.observe(&predictions, &prediction_index, &labels, &label_index);
        }
        let labels = LabelBatch {
            rows: label_index.into_iter().zip(labels).collect(),
            rejected: vec![],
        };
        let (out, labels) = if joined {
            let mut gathered = GatheredPredictions::with_capacity(chunk.len());
            gathered
                .push_rows(prediction_index.into_iter().zip(predictions))
                .unwrap();
            let (p, l) = store
                .submit_gathered_with_labels(&model(), gathered, labels)
                .unwrap();
            (p.wait().unwrap(), l.wait().unwrap())
        } else {
            let batch =
                PredictionBatch::new(prediction_index.into_iter().zip(predictions).collect());
            let out = store.ingest_predictions(&model(), batch).unwrap();
            (out, store.ingest_labels(&model(), labels).unwrap())
        };
        accepted += out.accepted as u64;
        duplicates += out.duplicates as u64;
        labelled += labels.accepted as u64;
    }
    (accepted, duplicates, labelled)
}

fn rows(n: usize) -> Vec<(PredictionEvent, Option<LabelEvent>)> {
    (0..n).map(|i| row(i, class(i))).collect()
}

fn stored(store: &SqliteStore, kind: &str) -> Vec<(String, Timestamp, Vec<u8>)> {
    store
        .aggregates(&model(), kind, &ScanRange::default())
        .unwrap()
        .into_iter()
        .map(|a| (a.version, a.hour, a.data))
        .collect()
}

fn metrics(store: &SqliteStore, window: Window) -> serde_json::Value {
    let q = PerformanceQuery {
        window: Some(window),
        ..PerformanceQuery::default()
    };
    serde_json::to_value(window_performance(store, &model(), &q).unwrap()).unwrap()
}

fn drift_of(store: &SqliteStore) -> serde_json::Value {
    let q = DriftQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
        segment: None,
    };
    serde_json::to_value(drift::drift(store, &model(), &q, &DriftConfig::default()).unwrap())
        .unwrap()
}

/// Two stores holding the same rows and reference: one imported with the fold, one left to the
/// first refresh.
fn imported_both_ways(
    all: &[(PredictionEvent, Option<LabelEvent>)],
    with_reference: bool,
) -> (tempfile::TempDir, SqliteStore, SqliteStore, ImportState) {
    let dir = tempfile::tempdir().unwrap();
    let folded = SqliteStore::open(dir.path().join("folded")).unwrap();
    let rescanned = SqliteStore::open(dir.path().join("rescanned")).unwrap();
    if with_reference {
        for s in [&folded, &rescanned] {
            s.put_reference(&model(), None, reference(), vec![])
                .unwrap();
        }
    }
    let mut fold = ImportFold::start(&folded, &model())
        .unwrap()
        .expect("a new model");
    let (accepted, duplicates, labels) = import(&folded, all, Some(&mut fold));
    let state = fold
        .finish(&folded, &model(), accepted, duplicates, labels)
        .unwrap();
    import(&rescanned, all, None);
    (dir, folded, rescanned, state)
}

#[test]
fn the_folded_hours_are_the_rescanned_hours_byte_for_byte() {
    for with_reference in [false, true] {
        let all = rows(5_000);
        let (_dir, folded, rescanned, state) = imported_both_ways(&all, with_reference);
        // One hour per (version, hour) the rows fall in: 50 hours, both versions in each.
        assert_eq!(state, ImportState::Written { hours: 100 });
        assert!(folded.pending_changes(&model()).unwrap().marks.is_empty());
        assert!(folded.pending_changes(&model()).unwrap().deltas.is_empty());
        // The other store's first refresh rescans every hour.
        let report = aggregates::refresh(&rescanned, &model()).unwrap();
        assert_eq!(report.predictions, 5_000);
        assert_eq!(aggregates::refresh(&folded, &model()).unwrap().hours, 0);
        assert_eq!(
            stored(&folded, PERFORMANCE),
            stored(&rescanned, PERFORMANCE)
        );
        assert_eq!(stored(&folded, DRIFT), stored(&rescanned, DRIFT));
        assert_eq!(stored(&folded, DRIFT).is_empty(), !with_reference);
        // The label-free estimation states too (the reference is scored and labelled), with
        // the key of the estimator they were built with: the first estimate rebuilds nothing.
        use modelwatch_engine::estimate::ESTIMATE;
        assert_eq!(stored(&folded, ESTIMATE), stored(&rescanned, ESTIMATE));
        assert_eq!(
            stored(&folded, ESTIMATE).len(),
            if with_reference { 100 } else { 0 }
        );
        let key = "reference-estimate-key";
        assert_eq!(stored(&folded, key), stored(&rescanned, key));
        for window in [Window::HOUR, Window::DAY] {
            assert_eq!(metrics(&folded, window), metrics(&rescanned, window));
        }
        if with_reference {
            assert_eq!(drift_of(&folded), drift_of(&rescanned));
        }
    }
}

#[test]
fn the_hours_answer_as_the_raw_events_do() {
    let all = rows(3_000);
    let (_dir, folded, _rescanned, _) = imported_both_ways(&all, true);
    // A task given in the query sends it to the raw events (the planner): the same numbers, up
    // to the order of float sums.
    let scan = PerformanceQuery {
        window: Some(Window::DAY),
        task: Some(modelwatch_engine::performance::Task::Binary),
        ..PerformanceQuery::default()
    };
    let mut raw =
        serde_json::to_value(window_performance(&folded, &model(), &scan).unwrap()).unwrap();
    let mut hours = metrics(&folded, Window::DAY);
    for r in [&mut raw, &mut hours] {
        r["task_reason"] = serde_json::Value::Null;
    }
    modelwatch_testkit::assert_json_close(&hours, &raw, 1e-9, "");
}

#[test]
fn nothing_is_written_when_the_store_did_not_keep_every_row() {
    // A request id twice: the store keeps the first, so the fold (which saw both) is not
    // what is stored.
    let mut all = rows(2_000);
    all[1_500].0.request_id = all[10].0.request_id.clone();
    all[1_500].1 = None;
    let (_dir, folded, rescanned, state) = imported_both_ways(&all, false);
    assert!(matches!(state, ImportState::Skipped(ref why) if why.contains("1 duplicates")));
    assert!(!folded.pending_changes(&model()).unwrap().marks.is_empty());
    assert!(stored(&folded, PERFORMANCE).is_empty());
    // The first query builds the hours as it always did.
    assert_eq!(
        metrics(&folded, Window::DAY),
        metrics(&rescanned, Window::DAY)
    );
}

#[test]
fn nothing_is_written_when_later_rows_change_the_task() {
    // The first chunk has two classes (binary); a third appears later: the decision changes,
    // so every hour folded as binary would be wrong.
    let mut all = rows(2_000);
    for r in &mut all[1_800..] {
        r.0.prediction = Some(Outcome::Text("maybe".into()));
    }
    let (_dir, folded, rescanned, state) = imported_both_ways(&all, false);
    assert!(matches!(state, ImportState::Skipped(ref why) if why.contains("task")));
    assert!(stored(&folded, PERFORMANCE).is_empty());
    let report = metrics(&folded, Window::DAY);
    assert_eq!(report["task"], "multiclass");
    assert_eq!(report, metrics(&rescanned, Window::DAY));
}

#[test]
fn a_model_with_stored_predictions_is_left_to_the_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    import(&store, &rows(100), None);
    assert!(ImportFold::start(&store, &model()).unwrap().is_none());
}

/// What a label changes in a store: the model's counts, the hours marked and their deltas,
/// and the metrics once the hours are brought up to date.
fn label_state(store: &SqliteStore) -> (String, serde_json::Value, serde_json::Value) {
    let m = store.model(&model()).unwrap().unwrap();
    let mut dirty: Vec<_> = store
        .pending_changes(&model())
        .unwrap()
        .marks
        .iter()
        .map(|d| (d.version.clone(), d.hour, d.deltas_only))
        .collect();
    dirty.sort();
    // The deltas without their ids (a job records its hours in no particular order).
    let mut deltas: Vec<String> = store
        .pending_changes(&model())
        .unwrap()
        .deltas
        .iter()
        .map(|d| {
            let text = format!("{d:?}");
            text[text.find("version").unwrap()..].to_owned()
        })
        .collect();
    deltas.sort();
    let marks = format!(
        "labels {} labelled {} dirty {dirty:?} deltas {deltas:?}",
        m.labels, m.labelled,
    );
    (
        marks,
        metrics(store, Window::HOUR),
        metrics(store, Window::DAY),
    )
}

#[test]
fn labels_joined_to_their_rows_are_the_labels_looked_up_and_a_reimport_changes_nothing() {
    // A file's labels are joined by the writer to the predictions of their own rows, with no
    // lookup in the request index: the same store as labels looked up by request id.
    let mut all = rows(3_000);
    // A label whose row's prediction is not in the batch (refused before the store) is looked
    // up as before: here its prediction never came, so it waits as an orphan.
    all[2_900].1.as_mut().unwrap().request_id = "never-predicted".into();
    let dir = tempfile::tempdir().unwrap();
    let joined = SqliteStore::open(dir.path().join("joined")).unwrap();
    let looked_up = SqliteStore::open(dir.path().join("looked-up")).unwrap();
    let counts = import_with(&joined, &all, None, true);
    assert_eq!(counts, import_with(&looked_up, &all, None, false));
    assert_eq!(counts, (3_000, 0, 2_100));
    let first = label_state(&joined);
    assert_eq!(first, label_state(&looked_up));
    assert!(
        first.0.starts_with("labels 2100 labelled 2099 "),
        "{}",
        first.0
    );

    // Importing the same file again: every prediction a duplicate (so nothing to join to
    // without a lookup), every label the same again. Nothing changes.
    let again = import_with(&joined, &all, None, true);
    assert_eq!(again, (0, 3_000, 2_100));
    assert_eq!(again, import_with(&looked_up, &all, None, false));
    let again = label_state(&joined);
    assert_eq!(again, label_state(&looked_up));
    // Same labels again are replacements: their hours are rescanned, to the same numbers.
    assert!(
        again.0.starts_with("labels 2100 labelled 2099 dirty [("),
        "{}",
        again.0
    );
    assert_eq!((&again.1, &again.2), (&first.1, &first.2));

    // Labels arriving later for the same request ids: a changed label for some, a first one
    // for rows that had none; and the orphan's prediction at last.
    let late = || LabelBatch {
        rows: (0..3_000)
            .step_by(7)
            .map(|i| {
                let label = match &all[i].1 {
                    Some(l) if l.label == Outcome::Text("yes".into()) => "no",
                    _ => "yes",
                };
                (
                    i,
                    LabelEvent {
                        request_id: format!("r{i}"),
                        label: Outcome::Text(label.into()),
                        timestamp: all[i].0.timestamp,
                    },
                )
            })
            .collect(),
        rejected: vec![],
    };
    let mut orphan = all[2_900].0.clone();
    orphan.request_id = "never-predicted".into();
    for store in [&joined, &looked_up] {
        store.ingest_labels(&model(), late()).unwrap();
        store
            .ingest_predictions(&model(), PredictionBatch::new(vec![(0, orphan.clone())]))
            .unwrap();
    }
    let later = label_state(&joined);
    assert_eq!(later, label_state(&looked_up));
    assert_ne!(later.2, first.2);
    // The late labels of unlabelled rows are new ones; the orphan's label found its prediction.
    let new = (0..3_000)
        .step_by(7)
        .filter(|&i| all[i].1.is_none())
        .count();
    assert!(
        later
            .0
            .starts_with(&format!("labels {} labelled {} ", 2_100 + new, 2_100 + new)),
        "{}",
        later.0
    );
}
