//! Direct loss estimation of a regression model over a real `SqliteStore` (ADR 013): MAE and
//! RMSE attached to every window, labelled or not; refitted after a new reference; from the
//! per-hour states equal to a scan of the raw events however the hours were built.

mod common;

use modelwatch_core::{FeatureValue, ModelName, Outcome, ReferenceRow, Timestamp, Window};
use modelwatch_engine::estimate::{attach, estimator, scan};
use modelwatch_engine::performance::{window_performance, PerformanceQuery, PerformanceReport};
use modelwatch_store::{Catalog, SqliteStore};

fn model() -> ModelName {
    ModelName::new("r").unwrap()
}

const DAY: i64 = 86_400_000_000;
const D0: i64 = 20_000 * DAY;

/// A value in [0, 1) from `i`, spread evenly.
fn u(i: usize) -> f64 {
    ((i * 7919) % 1000) as f64 / 1000.0
}

/// The model errs by about `x` (and twice that for category `w`), times `scale`.
fn error(i: usize, x: f64, c: &str, scale: f64) -> f64 {
    let sign = if (i / 3).is_multiple_of(2) { 1.0 } else { -1.0 };
    sign * scale * (0.2 + x) * if c == "w" { 2.0 } else { 1.0 } * (0.5 + u(i * 31))
}

fn category(i: usize) -> &'static str {
    ["u", "v", "w"][i % 3]
}

/// 2,000 labelled rows whose errors are `scale` times the base size.
fn reference(scale: f64) -> Vec<(usize, ReferenceRow)> {
    (0..2000)
        .map(|i| {
            let (x, c) = (u(i), category(i));
            let p = 10.0 * u(i * 17);
            (
                i,
                ReferenceRow {
                    features: vec![
                        ("x".into(), FeatureValue::Number(x)),
                        ("c".into(), FeatureValue::Text(c.into())),
                    ],
                    prediction: Some(Outcome::Number(p)),
                    score: None,
                    scores: None,
                    label: Some(Outcome::Number(p + error(i, x, c, scale))),
                    explanations: Vec::new(),
                },
            )
        })
        .collect()
}

/// `n` predictions (ids `{tag}{i}`) spread over `hours` hours from `start`; every fifth row
/// lacks `c` (a missing value), and `shift` moves `x` up (where the model errs more).
fn prediction_rows(
    tag: &str,
    n: usize,
    start: i64,
    hours: i64,
    version: Option<&str>,
) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let t = start + (i as i64 * hours * 3_600_000_000) / n as i64;
            let mut features = serde_json::json!({"x": u(i * 13 + tag.len())});
            if !i.is_multiple_of(5) {
                features["c"] = serde_json::json!(category(i));
            }
            let mut row = serde_json::json!({
                "request_id": format!("{tag}{i}"),
                "timestamp": Timestamp(t).to_string(),
                "features": features,
                "prediction": 10.0 * u(i * 17 + 1),
            });
            if let Some(v) = version {
                row["model_version"] = serde_json::json!(v);
            }
            row
        })
        .collect()
}

/// Ingests `rows`, folded on arrival as the server does when `fold` is set.
fn ingest(store: &SqliteStore, rows: &[serde_json::Value], fold: bool) {
    common::ingest_predictions(store, &model(), rows, fold);
}

fn label(store: &SqliteStore, ids: &[String]) {
    common::label_all(store, &model(), ids, serde_json::json!(5.0));
}

fn report(store: &SqliteStore, q: &PerformanceQuery) -> PerformanceReport {
    let mut report = window_performance(store, &model(), q).unwrap();
    attach(store, &model(), q, &mut report).unwrap();
    report
}

fn mae(r: &PerformanceReport) -> Vec<f64> {
    r.windows
        .iter()
        .map(|w| w.estimated.as_ref().unwrap()["mae"].value)
        .collect()
}

/// Every window's estimates from the per-hour states (the report says so) equal those of a
/// scan of the raw events, at hourly and daily windows; returns the daily report.
fn hours_equal_a_scan(store: &SqliteStore, what: &str) -> PerformanceReport {
    let mut daily = None;
    for window in [Window::HOUR, Window::DAY] {
        let q = PerformanceQuery {
            window: Some(window),
            ..PerformanceQuery::default()
        };
        let report = report(store, &q);
        let info = report.estimation.clone().expect("estimated");
        assert_eq!(
            (info.method.as_str(), info.source.as_str()),
            ("dle", "hours")
        );
        let dle = estimator(store, &model(), None, &report.spec)
            .unwrap()
            .unwrap();
        let range = modelwatch_store::ScanRange::default();
        let mut scanned = scan(store, &model(), &range, window, &dle, &report.spec).unwrap();
        assert_eq!(scanned.len(), report.windows.len(), "{what}");
        for w in &report.windows {
            let want = scanned.remove(&w.start).unwrap().finish(&dle);
            let got = w.estimated.clone().unwrap();
            assert_eq!(
                got.keys().map(String::as_str).collect::<Vec<_>>(),
                ["mae", "rmse"],
                "{what}"
            );
            for (m, g) in &got {
                let e = &want[m];
                for (a, b) in [
                    (g.value, e.value),
                    (g.ci_low, e.ci_low),
                    (g.ci_high, e.ci_high),
                    (g.sampling_error, e.sampling_error),
                ] {
                    // Equal but for the order of sums.
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{what}: window {} {m}: hours {g:?}, scan {e:?}",
                        w.start
                    );
                }
            }
        }
        if window == Window::DAY {
            daily = Some(report);
        }
    }
    daily.unwrap()
}

/// The estimates from the hours equal a scan's however the hours were built: a first rescan,
/// new predictions folded on arrival or read from their chunk, late predictions into old
/// hours, labels, a new reference, a rebuild. A version with its own reference is estimated
/// from a scan.
#[test]
fn regression_estimates_from_the_hours_equal_a_scan_however_the_hours_were_built() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .put_reference(&model(), None, reference(1.0), vec![])
        .unwrap();
    ingest(&store, &prediction_rows("a", 1500, D0, 24, None), false);
    let first = hours_equal_a_scan(&store, "rescan");
    assert_eq!(first.windows[0].predictions, 1500);
    assert_eq!(first.estimation.as_ref().unwrap().reference_rows, 2000);
    for w in &first.windows {
        assert_eq!(w.labelled, 0);
        for v in w.estimated.as_ref().unwrap().values() {
            assert!(0.0 <= v.ci_low && v.ci_low <= v.value && v.value <= v.ci_high);
        }
    }
    ingest(&store, &prediction_rows("b", 600, D0 + DAY, 24, None), true);
    ingest(
        &store,
        &prediction_rows("late", 300, D0 + 3_600_000_000, 5, None),
        true,
    );
    let refreshed = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
    assert_eq!(
        (
            refreshed.predictions,
            refreshed.predictions_added,
            refreshed.predictions_decoded
        ),
        (0, 900, 0),
        "{refreshed:?}"
    );
    hours_equal_a_scan(&store, "folded on arrival");
    ingest(
        &store,
        &prediction_rows("c", 400, D0 + 2 * DAY, 10, None),
        false,
    );
    let refreshed = modelwatch_engine::aggregates::refresh(&store, &model()).unwrap();
    assert_eq!(
        (refreshed.predictions, refreshed.predictions_decoded),
        (0, 400),
        "{refreshed:?}"
    );
    let before = hours_equal_a_scan(&store, "from the chunk");
    // Labels do not change an estimate.
    let ids: Vec<String> = (0..300).map(|i| format!("a{i}")).collect();
    label(&store, &ids);
    let labelled = hours_equal_a_scan(&store, "labels");
    assert!(labelled.windows[0].labelled > 0);
    assert_eq!(mae(&before), mae(&labelled));
    // A reference whose errors are three times larger: every hour rebuilt with its estimator.
    store
        .put_reference(&model(), None, reference(3.0), vec![])
        .unwrap();
    let after = hours_equal_a_scan(&store, "new reference");
    for (a, b) in mae(&before).iter().zip(&mae(&after)) {
        assert!(
            b / a > 2.0,
            "{before:?} vs {after:?}",
            before = mae(&before)
        );
    }
    modelwatch_engine::aggregates::rebuild(&store, &model()).unwrap();
    hours_equal_a_scan(&store, "rebuild");
    // A version with its own reference: its estimator is not the hours' one.
    ingest(
        &store,
        &prediction_rows("v", 200, D0 + 3 * DAY, 3, Some("v2")),
        true,
    );
    store
        .put_reference(&model(), Some("v2"), reference(1.0), vec![])
        .unwrap();
    let q = PerformanceQuery {
        window: Some(Window::DAY),
        version: Some("v2".into()),
        ..PerformanceQuery::default()
    };
    let v2 = report(&store, &q);
    assert_eq!(v2.estimation.unwrap().source, "events");
    assert!(v2.windows.iter().all(|w| w.estimated.is_some()));
    hours_equal_a_scan(&store, "version-less beside a version's reference");
}

/// The estimate is the mean predicted loss: windows whose rows sit where the reference's errors
/// were large are estimated worse than windows where they were small.
#[test]
fn the_estimate_follows_where_the_model_errs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .put_reference(&model(), None, reference(1.0), vec![])
        .unwrap();
    let day = |tag: &str, d: i64, x: f64, c: &str| -> Vec<serde_json::Value> {
        (0..200)
            .map(|i| {
                serde_json::json!({
                    "request_id": format!("{tag}{i}"),
                    "timestamp": Timestamp(D0 + d * DAY + i as i64 * 60_000_000).to_string(),
                    "features": {"x": x, "c": c},
                    "prediction": 10.0 * u(i),
                })
            })
            .collect()
    };
    ingest(&store, &day("calm", 0, 0.05, "u"), false);
    ingest(&store, &day("rough", 1, 0.95, "w"), false);
    let r = report(
        &store,
        &PerformanceQuery {
            window: Some(Window::DAY),
            ..PerformanceQuery::default()
        },
    );
    let m = mae(&r);
    // Expected |error|: 0.25 × 0.75 ≈ 0.19 against 1.15 × 2 × 0.75 ≈ 1.7.
    assert!(m[0] < 0.4 && m[1] > 1.2, "{m:?}");
}
