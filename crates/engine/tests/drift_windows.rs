//! Per-window drift and quality on a real SQLite store: three days of predictions against an
//! uploaded reference, the third day shifted.

use modelwatch_core::{
    FeatureName, FeatureValue, LabelEvent, ModelName, Outcome, PredictionEvent, ReferenceRow,
    Timestamp, Window,
};
use modelwatch_engine::drift::{
    self, DriftError, DriftQuery, QualityThresholds, Segment, LABEL_COLUMN, SCORE_COLUMN,
};
use modelwatch_stats::drift::{
    adjust_p_values, drift_report, Column, Correction, DriftConfig, FeatureStatus, ProfileOptions,
    ReferenceProfile,
};
use modelwatch_store::{
    Catalog, DerivedState, EventLog, LabelBatch, PredictionBatch, ScanRange, SqliteStore,
};
use modelwatch_testkit::assert_json_close;

const DAY: i64 = 86_400;
/// 2026-11-02T00:00:00Z, a Monday.
const START: i64 = 1_793_577_600;
const COUNTRIES: [&str; 3] = ["DE", "FR", "IT"];

fn model() -> ModelName {
    ModelName::new("fraud").unwrap()
}

/// Row `i` of `n` of the reference distribution: age and income evenly spread (a grid, so two
/// samples of it never differ by chance), countries in turn.
fn features(i: usize, n: usize, age_shift: f64) -> Vec<(FeatureName, FeatureValue)> {
    let u = (i as f64 + 0.5) / n as f64;
    // Spread the grid over the rows so that countries and ages are independent.
    let v = ((i * 7919) % n) as f64 / n as f64;
    vec![
        (
            "age".into(),
            FeatureValue::Number(20.0 + 60.0 * u + age_shift),
        ),
        (
            "country".into(),
            FeatureValue::Text(COUNTRIES[i % 3].into()),
        ),
        ("income".into(), FeatureValue::Number(1000.0 + 4000.0 * v)),
    ]
}

fn reference_rows() -> Vec<ReferenceRow> {
    (0..600)
        .map(|i| ReferenceRow {
            features: features(i, 600, 0.0),
            prediction: Some(Outcome::Number((i % 2) as f64)),
            score: Some((i as f64 + 0.5) / 600.0),
            label: Some(Outcome::Number((i % 2) as f64)),
            ..Default::default()
        })
        .collect()
}

/// 300 predictions per day for three days; day 3: age +15, 10% unseen country `XX`, 30% null
/// income, scores pushed up, and a feature the reference does not have.
fn events() -> Vec<PredictionEvent> {
    let mut out = Vec::new();
    for day in 0..3 {
        for i in 0..300 {
            let shifted = day == 2;
            let mut f = features(i, 300, if shifted { 15.0 } else { 0.0 });
            let mut score = (i as f64 + 0.5) / 300.0;
            if shifted {
                if i % 10 == 0 {
                    f[1].1 = FeatureValue::Text("XX".into());
                }
                if i % 10 < 3 {
                    f[2].1 = FeatureValue::Null;
                }
                f.push(("device".into(), FeatureValue::Text("ios".into())));
                score = score.sqrt();
            }
            out.push(PredictionEvent {
                request_id: format!("d{day}-{i}"),
                timestamp: Timestamp::from_secs(START + day * DAY + (i as i64) * 60),
                model_version: Some("v1".into()),
                features: f,
                prediction: Some(Outcome::Number((i % 2) as f64)),
                score: Some(score),
                scores: None,
                latency_ms: None,
                cost: None,
                error: None,
                tags: vec![],
                explanations: Vec::new(),
                role: modelwatch_core::Role::Served,
            });
        }
    }
    out
}

fn store_with_data(dir: &std::path::Path, reference: bool) -> SqliteStore {
    let store = SqliteStore::open(dir).unwrap();
    if reference {
        let rows = reference_rows().into_iter().enumerate().collect();
        store.put_reference(&model(), None, rows, vec![]).unwrap();
    }
    let batch = PredictionBatch::new(events().into_iter().enumerate().collect());
    let out = store.ingest_predictions(&model(), batch).unwrap();
    assert_eq!(out.accepted, 900, "{:?}", out.rejected);
    // Labels for day 1 (as in the reference) and day 3 (80 % positive); day 2 has none yet.
    let labels = (0..300)
        .map(|i| (0, format!("d0-{i}"), (i % 2) as f64))
        .chain((0..300).map(|i| (2, format!("d2-{i}"), f64::from(i % 5 != 0))))
        .enumerate()
        .map(|(k, (day, id, y))| {
            let event = LabelEvent {
                request_id: id,
                label: Outcome::Number(y),
                timestamp: Timestamp::from_secs(START + (day + 4) * DAY),
            };
            (k, event)
        })
        .collect();
    let batch = LabelBatch {
        rows: labels,
        rejected: vec![],
    };
    store.ingest_labels(&model(), batch).unwrap();
    store
}

fn query() -> DriftQuery {
    DriftQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
        segment: None,
    }
}

fn drifted(w: &drift::WindowDrift) -> Vec<&str> {
    w.features
        .iter()
        .filter(|f| f.drifted)
        .map(|f| f.feature.as_str())
        .collect()
}

#[test]
fn the_shifted_day_drifts_and_the_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), true);
    let r = drift::drift(&store, &model(), &query(), &DriftConfig::default()).unwrap();
    assert_eq!(r.reference.rows, 600);
    assert_eq!(r.reference.version, None);
    assert_eq!(r.window, "1d");
    assert_eq!(r.windows.len(), 3);
    assert_eq!(r.windows[0].start, Timestamp::from_secs(START));
    assert_eq!(r.windows[2].end, Timestamp::from_secs(START + 3 * DAY));
    for w in &r.windows[..2] {
        assert_eq!(w.rows, 300);
        assert!(drifted(w).is_empty(), "{:?}", drifted(w));
        assert!(!w.dataset_drift);
        assert_eq!(w.evaluated_features, 3);
    }
    let day3 = &r.windows[2];
    assert_eq!(drifted(day3), ["age", "country"]);
    assert!(day3.dataset_drift, "2 of 3 features drifted");
    // Prediction drift: the score moved, the prediction did not; labels moved on day 3 and
    // have not arrived for day 2.
    assert_eq!(r.prediction.columns, ["prediction", "score", "label"]);
    let output = |i: usize, name: &str| {
        r.prediction.windows[i]
            .features
            .iter()
            .find(|f| f.feature == name)
            .unwrap()
            .clone()
    };
    let drifted_outputs = |i: usize| -> Vec<String> {
        r.prediction.windows[i]
            .features
            .iter()
            .filter(|f| f.drifted)
            .map(|f| f.feature.clone())
            .collect()
    };
    assert!(drifted_outputs(0).is_empty() && drifted_outputs(1).is_empty());
    assert_eq!(drifted_outputs(2), [SCORE_COLUMN, LABEL_COLUMN]);
    let unlabelled = output(1, LABEL_COLUMN);
    assert_eq!(unlabelled.status, FeatureStatus::NoCurrentData);
    assert_eq!(output(0, LABEL_COLUMN).current_missing.rows, 300);
}

#[test]
fn statistics_equal_the_drift_library_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), true);
    let r = drift::drift(&store, &model(), &query(), &DriftConfig::default()).unwrap();

    // The same rows, columns built by hand.
    let column_of = |rows: &[Vec<(FeatureName, FeatureValue)>], name: &str| -> Vec<FeatureValue> {
        rows.iter()
            .map(|f| f.iter().find(|(n, _)| n == name).unwrap().1.clone())
            .collect()
    };
    let ref_rows: Vec<_> = reference_rows().into_iter().map(|r| r.features).collect();
    let all = events();
    let config = DriftConfig {
        correction: Correction::None,
        ..DriftConfig::default()
    };
    let mut raw_p = Vec::new();
    for (day, w) in r.windows.iter().enumerate() {
        let cur_rows: Vec<_> = all[day * 300..(day + 1) * 300]
            .iter()
            .map(|e| e.features.clone())
            .collect();
        let num = |v: Vec<FeatureValue>| -> Vec<Option<f64>> {
            v.into_iter()
                .map(|x| match x {
                    FeatureValue::Number(x) => Some(x),
                    _ => None,
                })
                .collect()
        };
        let cat = |v: Vec<FeatureValue>| -> Vec<Option<String>> {
            v.into_iter()
                .map(|x| match x {
                    FeatureValue::Text(s) => Some(s),
                    _ => None,
                })
                .collect()
        };
        let (ra, ri) = (
            num(column_of(&ref_rows, "age")),
            num(column_of(&ref_rows, "income")),
        );
        let rc = cat(column_of(&ref_rows, "country"));
        let (ca, ci) = (
            num(column_of(&cur_rows, "age")),
            num(column_of(&cur_rows, "income")),
        );
        let cc = cat(column_of(&cur_rows, "country"));
        let rc: Vec<Option<&str>> = rc.iter().map(|s| s.as_deref()).collect();
        let cc: Vec<Option<&str>> = cc.iter().map(|s| s.as_deref()).collect();
        let profile = ReferenceProfile::build(
            &[
                ("age", Column::NumericOpt(&ra)),
                ("country", Column::Categorical(&rc)),
                ("income", Column::NumericOpt(&ri)),
            ],
            ProfileOptions::default(),
        );
        let direct = drift_report(
            &profile,
            &[
                ("age", Column::NumericOpt(&ca)),
                ("country", Column::Categorical(&cc)),
                ("income", Column::NumericOpt(&ci)),
            ],
            &config,
        );
        assert_eq!(w.features.len(), 3);
        for (got, want) in w.features.iter().zip(&direct.features) {
            assert_eq!(got.feature, want.feature);
            assert_eq!(got.method, want.method);
            assert_eq!(got.status, FeatureStatus::Evaluated);
            assert_eq!(got.statistic, want.statistic, "{}", got.feature);
            assert_eq!(got.p_value, want.p_value, "{}", got.feature);
            assert_eq!(got.effect_size, want.effect_size, "{}", got.feature);
            assert_eq!(got.current_missing, want.current_missing);
            raw_p.push(got.p_value.unwrap());
        }
    }
    // Benjamini-Hochberg over every p-value of the response: features, then outputs.
    for w in &r.prediction.windows {
        raw_p.extend(w.features.iter().filter_map(|f| f.p_value));
    }
    let adjusted = adjust_p_values(&raw_p, Correction::BenjaminiHochberg);
    let got: Vec<f64> = r
        .windows
        .iter()
        .flat_map(|w| &w.features)
        .chain(r.prediction.windows.iter().flat_map(|w| &w.features))
        .filter_map(|f| f.p_value_adjusted)
        .collect();
    assert_eq!(got, adjusted);
}

#[test]
fn quality_flags_the_shifted_day_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), true);
    let t = QualityThresholds::default();
    let q = drift::quality(&store, &model(), &query(), &t).unwrap();
    assert_eq!(q.windows.len(), 3);
    for w in &q.windows[..2] {
        assert!(w.flags.is_empty(), "{:?}", w.flags);
        assert!(w.unexpected_features.is_empty());
        let age = &w.features[0];
        assert_eq!(age.out_of_range.as_ref().unwrap().count, 0);
        assert_eq!(age.null_rate, 0.0);
    }
    let day3 = &q.windows[2];
    assert_eq!(
        day3.flags,
        [
            "unexpected_features",
            "age:out_of_range",
            "country:unseen_categories",
            "income:null_rate"
        ]
    );
    assert_eq!(day3.unexpected_features[0].feature, "device");
    assert_eq!(day3.unexpected_features[0].rows, 300);
    let age = &day3.features[0];
    // Ages above 80 (the reference max, 79.95) after a +15 shift: the top quarter.
    let oor = age.out_of_range.as_ref().unwrap();
    assert_eq!(oor.count, 75);
    assert_eq!(oor.share, 0.25);
    let country = &day3.features[1];
    let unseen = country.unseen_categories.as_ref().unwrap();
    assert_eq!((unseen.count, unseen.rows), (1, 30));
    assert_eq!(unseen.top, [("XX".to_string(), 30)]);
    assert_eq!(country.distinct, 4);
    assert_eq!(country.reference_distinct, 3);
    let income = &day3.features[2];
    assert_eq!(income.nulls, 90);
    assert!((income.null_rate - 0.3).abs() < 1e-12);
    assert_eq!(income.reference_null_rate, 0.0);
    assert!(!income.constant);
}

#[test]
fn a_segment_keeps_only_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), true);
    let q = DriftQuery {
        segment: Some(Segment::parse("country:DE").unwrap()),
        ..query()
    };
    let r = drift::quality(&store, &model(), &q, &QualityThresholds::default()).unwrap();
    // Days 1-2: every third row; day 3: the same minus the 10 rows turned into `XX`.
    let rows: Vec<u64> = r.windows.iter().map(|w| w.rows).collect();
    assert_eq!(rows, [100, 100, 90]);
    // A breakdown by every value is not one slice to compare with the reference.
    let q = DriftQuery {
        segment: Some(Segment::parse("country").unwrap()),
        ..query()
    };
    assert!(matches!(
        drift::quality(&store, &model(), &q, &QualityThresholds::default()),
        Err(DriftError::SegmentNeedsValue { .. })
    ));
    assert!(matches!(
        Segment::parse(":DE"),
        Err(DriftError::InvalidSegment { .. })
    ));
}

#[test]
fn no_reference_is_a_typed_error_naming_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), false);
    let e = drift::drift(&store, &model(), &query(), &DriftConfig::default()).unwrap_err();
    assert!(matches!(e, DriftError::NoReference { .. }));
    assert!(
        e.to_string()
            .contains("upload the data it was trained on as its reference"),
        "{e}"
    );
    let unknown = ModelName::new("nobody").unwrap();
    assert!(matches!(
        drift::quality(&store, &unknown, &query(), &QualityThresholds::default()),
        Err(DriftError::Store(_))
    ));
}

#[test]
fn a_versions_own_reference_wins_over_the_all_versions_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), true);
    // v1's own reference: 90 rows, every age 50 and every country `DE`.
    let rows = (0..90)
        .map(|i| {
            let row = ReferenceRow {
                features: vec![
                    ("age".into(), FeatureValue::Number(50.0)),
                    ("country".into(), FeatureValue::Text("DE".into())),
                ],
                ..Default::default()
            };
            (i, row)
        })
        .collect();
    store
        .put_reference(&model(), Some("v1"), rows, vec![])
        .unwrap();
    let q = DriftQuery {
        version: Some("v1".into()),
        ..query()
    };
    let t = QualityThresholds::default();
    let r = drift::quality(&store, &model(), &q, &t).unwrap();
    assert_eq!(r.reference.version.as_deref(), Some("v1"));
    assert_eq!(r.reference.rows, 90);
    // Against one age and one country, every day grows both and has income unexpected.
    let day1 = &r.windows[0];
    assert_eq!(day1.unexpected_features[0].feature, "income");
    assert!(day1
        .flags
        .contains(&"country:cardinality_growth".to_string()));
    assert!(day1.flags.contains(&"age:cardinality_growth".to_string()));
    // A version without predictions nor reference of its own: the all-versions reference,
    // no windows.
    let q = DriftQuery {
        version: Some("v2".into()),
        ..query()
    };
    let r = drift::drift(&store, &model(), &q, &DriftConfig::default()).unwrap();
    assert_eq!(r.reference.version, None);
    assert_eq!(r.reference.rows, 600);
    assert!(r.windows.is_empty());
}

/// The hourly sketches merged into windows equal the windows folded from the raw events, for
/// 1h, 1d and 7d windows, per version, after refreshes between batches and after a new
/// reference; and drift and quality computed from them are the same.
#[test]
fn hourly_sketches_equal_the_raw_event_fold() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let rows = reference_rows().into_iter().enumerate().collect();
    store.put_reference(&model(), None, rows, vec![]).unwrap();
    let all = events();
    let compare = |store: &SqliteStore| {
        let reference = drift::Reference::load(store, &model(), None).unwrap();
        for window in [Window::HOUR, Window::DAY, Window::parse("7d").unwrap()] {
            for version in [None, Some("v1".to_string()), Some("v2".to_string())] {
                let q = DriftQuery {
                    window,
                    version,
                    ..query()
                };
                let merged =
                    modelwatch_engine::aggregates::drift_windows(store, &model(), &q, &reference)
                        .unwrap()
                        .expect("whole hours: answered from the hourly sketches");
                let folded = drift::fold_windows(store, &model(), &q, &reference).unwrap();
                assert_eq!(merged.len(), folded.len());
                for (m, f) in merged.iter().zip(&folded) {
                    assert_eq!((m.start, m.end), (f.start, f.end));
                    assert_json_close(
                        &serde_json::to_value(&m.sketch).unwrap(),
                        &serde_json::to_value(&f.sketch).unwrap(),
                        1e-9,
                        &format!("{window:?} {}", m.start),
                    );
                }
                let d = drift::drift_of_windows(
                    &model(),
                    window,
                    &reference,
                    &merged,
                    &DriftConfig::default(),
                );
                let e = drift::drift_of_windows(
                    &model(),
                    window,
                    &reference,
                    &folded,
                    &DriftConfig::default(),
                );
                assert_json_close(
                    &serde_json::to_value(&d).unwrap(),
                    &serde_json::to_value(&e).unwrap(),
                    1e-9,
                    "drift",
                );
            }
        }
    };
    // Day by day, refreshing (through a query) in between; labels last.
    for day in 0..3 {
        let rows = all[day * 300..(day + 1) * 300]
            .iter()
            .cloned()
            .enumerate()
            .collect();
        store
            .ingest_predictions(&model(), PredictionBatch::new(rows))
            .unwrap();
        // The first refresh decides the task (a drift query does not: see
        // `a_drift_query_neither_decides_nor_changes_the_task`); after it new predictions are
        // added to the sketches from their chunks, without a rescan.
        let r = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
        if day > 0 {
            assert_eq!((r.predictions, r.predictions_added), (0, 300), "{r:?}");
        }
        compare(&store);
    }
    let labels = (0..300)
        .map(|i| LabelEvent {
            request_id: format!("d2-{i}"),
            label: Outcome::Number(f64::from(i % 5 != 0)),
            timestamp: Timestamp::from_secs(START + 6 * DAY),
        })
        .enumerate()
        .collect();
    store
        .ingest_labels(
            &model(),
            LabelBatch {
                rows: labels,
                rejected: vec![],
            },
        )
        .unwrap();
    // The labels are added to the stored sketches from their deltas, without a rescan.
    let late = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
    assert_eq!((late.predictions, late.labels_added), (0, 300));
    compare(&store);
    // A new reference (ages shifted): the sketches are rebuilt against it.
    let rows = reference_rows()
        .into_iter()
        .map(|mut r| {
            if let FeatureValue::Number(x) = &mut r.features[0].1 {
                *x += 5.0;
            }
            r
        })
        .enumerate()
        .collect();
    store.put_reference(&model(), None, rows, vec![]).unwrap();
    compare(&store);
    let r = drift::drift(&store, &model(), &query(), &DriftConfig::default()).unwrap();
    assert_eq!(r.windows.len(), 3);
}

/// The first query after an upload profiles the reference and stores the profile (JSON); the
/// next ones read it back. Both must be the same numbers to the last bit, or a drift figure
/// changes in its last digit between two identical queries: serde_json's default float parser
/// misreads some 17-digit numbers by one unit in the last place (hence `float_roundtrip`).
#[test]
fn a_stored_reference_profile_reads_back_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Full-precision values: most print with 16 or 17 significant digits.
    let rows: Vec<(usize, ReferenceRow)> = (0..600)
        .map(|i| {
            let x = ((i as f64) * 0.618_033_988_749_894_9).fract();
            let mut row = reference_rows()[i].clone();
            row.features[0].1 = FeatureValue::Number(20.0 + 60.0 * x);
            row.score = Some(x);
            (i, row)
        })
        .collect();
    store.put_reference(&model(), None, rows, vec![]).unwrap();
    let built = drift::Reference::load(&store, &model(), None).unwrap();
    let stored = drift::Reference::load(&store, &model(), None).unwrap();
    assert_eq!(
        serde_json::to_string(&built).unwrap(),
        serde_json::to_string(&stored).unwrap()
    );
    // The profile has the kind of numbers the default parser misreads.
    let misread = serde_json::to_string(&built)
        .unwrap()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|s| s.contains('.') && s.len() >= 18)
        .count();
    assert!(misread > 0, "no 17-digit number in the profile");
}

/// The task decision the refresh persisted for the model (`spec.task`), if any.
fn decided_task(store: &SqliteStore) -> Option<String> {
    let rows = store
        .aggregates(&model(), "task", &ScanRange::default())
        .unwrap();
    let row = rows.first()?;
    let decision: serde_json::Value = serde_json::from_slice(&row.data).unwrap();
    Some(decision["spec"]["task"].as_str().unwrap().to_owned())
}

/// Drift does not depend on the task, so a drift query neither makes the model's first task
/// decision (the reference read again and an hour scanned to detect it) nor acts on a changed
/// one (every hour rebuilt): it answers all the same, and the next refresh that decides (the
/// server's background one, a performance query) does both.
#[test]
fn a_drift_query_neither_decides_nor_changes_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path(), true);
    let config = DriftConfig::default();
    let raw = |store: &SqliteStore| {
        let reference = drift::Reference::load(store, &model(), None).unwrap();
        let windows = drift::fold_windows(store, &model(), &query(), &reference).unwrap();
        drift::drift_of_windows(&model(), Window::DAY, &reference, &windows, &config)
    };
    // No decision yet: the drift query answers (from the raw events) and decides nothing.
    let before = drift::drift(&store, &model(), &query(), &config).unwrap();
    assert_eq!(before.windows.len(), 3);
    assert_eq!(decided_task(&store), None);
    let mut answered = serde_json::to_value(&before).unwrap();
    let mut expected = serde_json::to_value(raw(&store)).unwrap();
    for w in answered["windows"].as_array_mut().unwrap().iter_mut() {
        w["partial"] = false.into();
    }
    for w in expected["windows"].as_array_mut().unwrap().iter_mut() {
        w["partial"] = false.into();
    }
    assert_json_close(&answered, &expected, 1e-9, "drift before any decision");

    // A deciding refresh: binary (predictions 0 and 1).
    let r = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
    assert!(r.predictions > 0, "{r:?}");
    assert_eq!(decided_task(&store).as_deref(), Some("binary"));

    // A third class arrives: the detector would now say multiclass. The drift query counts the
    // new rows (in the sketches and the detector) but leaves the binary decision, and rebuilds
    // nothing; its answer is the raw events' all the same.
    let more: Vec<PredictionEvent> = (0..60)
        .map(|i| PredictionEvent {
            request_id: format!("late-{i}"),
            timestamp: Timestamp::from_secs(START + 2 * DAY + 3600 + i * 30),
            model_version: Some("v1".into()),
            features: features(i as usize, 60, 0.0),
            prediction: Some(Outcome::Number((i % 3) as f64)),
            score: None,
            scores: None,
            cost: None,
            latency_ms: None,
            error: None,
            tags: vec![],
            explanations: Vec::new(),
            role: modelwatch_core::Role::Served,
        })
        .collect();
    let batch = PredictionBatch::new(more.into_iter().enumerate().collect());
    store.ingest_predictions(&model(), batch).unwrap();
    let after = drift::drift(&store, &model(), &query(), &config).unwrap();
    assert_eq!(after.windows[2].rows, 360);
    assert_eq!(decided_task(&store).as_deref(), Some("binary"));
    assert!(
        store.pending_changes(&model()).unwrap().marks.is_empty(),
        "the drift query refreshed the hours"
    );
    let merged = modelwatch_engine::aggregates::drift_windows(
        &store,
        &model(),
        &query(),
        &drift::Reference::load(&store, &model(), None).unwrap(),
    )
    .unwrap()
    .expect("the hours answer the drift query");
    assert_eq!(merged[2].sketch.rows, 360);

    // The next deciding refresh finds the decision out of date: multiclass, every hour rebuilt.
    let r = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
    assert!(r.rebuilt, "{r:?}");
    assert_eq!(decided_task(&store).as_deref(), Some("multiclass"));
}
