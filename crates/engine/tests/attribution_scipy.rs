//! Attributions over a real `SqliteStore`, against numpy and SciPy: every number of
//! `GET /v1/models/{model}/attributions` per day and per version (count, mean |attribution|,
//! mean, share, rank, share change, the KS statistic and p-value against the reference's
//! attributions, the Benjamini-Hochberg adjusted p-value) and the reference's own summary equal
//! what `numpy` and `scipy.stats.ks_2samp` / `scipy.stats.false_discovery_control` compute of
//! the same rows. Fixtures: `scripts/fixtures/gen_attribution_fixtures.py`.

use modelwatch_core::{parse_prediction_row, FeatureValue, IngestLimits, ModelName, ReferenceRow};
use modelwatch_engine::attribution::{attributions, AttributionQuery, FeatureAttribution};
use modelwatch_store::{Catalog, EventLog, PredictionBatch, SqliteStore};
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/attribution/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Equal to SciPy's up to rounding: sums in another order, the exact KS distribution by
/// another recursion.
fn close(what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: {want}"));
    assert!(
        (got - want).abs() <= 1e-9 * want.abs() + 1e-14,
        "{what}: modelwatch {got}, numpy/SciPy {want}"
    );
}

fn check(what: &str, got: &[FeatureAttribution], want: &Value, compared: bool) {
    let want = want.as_object().unwrap();
    assert_eq!(got.len(), want.len(), "{what}");
    for f in got {
        let w = &want[&f.feature];
        let at = |k: &str| format!("{what} {} {k}", f.feature);
        assert_eq!(f.count, w["count"].as_u64().unwrap(), "{}", at("count"));
        assert_eq!(
            u64::from(f.rank),
            w["rank"].as_u64().unwrap(),
            "{}",
            at("rank")
        );
        close(&at("mean_abs"), f.mean_abs, &w["mean_abs"]);
        close(&at("mean"), f.mean, &w["mean"]);
        close(&at("share"), f.share, &w["share"]);
        if compared {
            close(
                &at("share_change"),
                f.share_change.unwrap(),
                &w["share_change"],
            );
            let d = f.drift.unwrap();
            close(&at("ks statistic"), d.statistic, &w["ks_statistic"]);
            close(&at("p_value"), d.p_value, &w["p_value"]);
            close(
                &at("p_value_adjusted"),
                d.p_value_adjusted,
                &w["p_value_adjusted"],
            );
            assert_eq!(
                d.drifted,
                w["p_value_adjusted"].as_f64().unwrap() < 0.05,
                "{}",
                at("drifted")
            );
        }
    }
}

#[test]
fn attributions_per_day_and_version_equal_numpy_and_scipy() {
    let doc = fixture("two_days_shifted");
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let model = ModelName::new("credit").unwrap();
    let now = modelwatch_core::parse_timestamp("2026-05-01T00:00:00Z").unwrap();
    let preds = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut p = json!({"request_id": r["request_id"], "timestamp": r["timestamp"],
                "model_version": r["version"], "prediction": r["prediction"]});
            if !r["explanations"].is_null() {
                p["explanations"] = r["explanations"].clone();
            }
            let e = parse_prediction_row(&p.to_string(), i, now, &IngestLimits::default());
            (i, e.unwrap())
        })
        .collect();
    store
        .ingest_predictions(&model, PredictionBatch::new(preds))
        .unwrap();
    let reference = doc["reference_rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let explanations = r["explanations"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                .collect();
            let row = ReferenceRow {
                features: vec![("x".into(), FeatureValue::Number(i as f64))],
                explanations,
                ..ReferenceRow::default()
            };
            (i, row)
        })
        .collect();
    store
        .put_reference(&model, None, reference, vec![])
        .unwrap();

    let q = AttributionQuery {
        window: modelwatch_core::Window::DAY,
        from: Some(modelwatch_core::parse_timestamp("2026-04-01T00:00:00Z").unwrap()),
        to: Some(modelwatch_core::parse_timestamp("2026-04-03T00:00:00Z").unwrap()),
        version: None,
    };
    let report = attributions(&store, &model, &q).unwrap();
    let r = report.reference.as_ref().unwrap();
    assert_eq!(r.explained, 200);
    check("reference", &r.features, &doc["reference"], false);
    assert_eq!(report.windows.len(), 2);
    for w in &report.windows {
        let day = &w.start.to_rfc3339()[..10];
        let want = &doc["windows"][day];
        assert_eq!(w.explained, want["explained"].as_u64().unwrap(), "{day}");
        check(day, &w.features, &want["features"], true);
    }
    assert_eq!(report.versions.len(), 2);
    for v in &report.versions {
        let want = &doc["versions"][&v.version];
        assert_eq!(v.explained, want["explained"].as_u64().unwrap());
        check(&v.version, &v.features, &want["features"], true);
    }
    // The second day's driving feature is country; the test says so after the correction.
    let shifted = &report.windows[1].features[0];
    assert_eq!(shifted.feature, "country");
    assert!(shifted.drift.unwrap().drifted);
}
