//! Fairness per protected attribute over a real `SqliteStore`, against fairlearn: every
//! number of `GET /v1/models/{model}/fairness` (per day and per version, for a feature, a
//! numeric feature and a tag) equals what `fairlearn.metrics` computes of the same rows, and
//! the intervals equal statsmodels'. Fixtures: `scripts/fixtures/gen_fairness_fixtures.py`.

use modelwatch_core::{parse_label_row, parse_prediction_row, IngestLimits, ModelName, Window};
use modelwatch_engine::fairness::{fairness, set_settings, FairnessQuery, FairnessSettings};
use modelwatch_stats::fairness::{FourFifths, Gap, GroupReport};
use modelwatch_stats::perf::Metric;
use modelwatch_store::{EventLog, LabelBatch, PredictionBatch, SqliteStore};
use serde_json::{json, Value};

const TOL: f64 = 1e-12;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/fairness/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: {want}"));
    assert!(
        (got - want).abs() <= TOL,
        "{what}: modelwatch {got}, fairlearn/statsmodels {want}"
    );
}

fn defined(what: &str, m: &Metric) -> (f64, f64, f64) {
    match m {
        Metric::Defined {
            value,
            ci_low,
            ci_high,
            ..
        } => (*value, *ci_low, *ci_high),
        other => panic!("{what}: {other:?}"),
    }
}

/// The fixture's rows stored as a client sends them, and the setting of the case.
fn store_rows(dir: &std::path::Path, doc: &Value) -> (SqliteStore, ModelName) {
    let store = SqliteStore::open(dir).unwrap();
    let model = ModelName::new("credit").unwrap();
    let limits = IngestLimits::default();
    let now = modelwatch_core::parse_timestamp("2026-03-01T00:00:00Z").unwrap();
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for (i, r) in doc["rows"].as_array().unwrap().iter().enumerate() {
        let p = json!({"request_id": r["request_id"], "timestamp": r["timestamp"],
            "model_version": r["version"], "features": r["features"], "tags": r["tags"],
            "prediction": r["prediction"], "score": r["score"]});
        preds.push((
            i,
            parse_prediction_row(&p.to_string(), i, now, &limits).unwrap(),
        ));
        if !r["label"].is_null() {
            let l = json!({"request_id": r["request_id"], "label": r["label"]});
            labels.push((i, parse_label_row(&l.to_string(), i, now, &limits).unwrap()));
        }
    }
    store
        .ingest_predictions(&model, PredictionBatch::new(preds))
        .unwrap();
    store
        .ingest_labels(
            &model,
            LabelBatch {
                rows: labels,
                rejected: vec![],
            },
        )
        .unwrap();
    let settings = FairnessSettings::from_json(&json!({
        "protected": ["sex", "age_band", "tag:region"],
        "favourable": doc["favourable"],
        "min_group_size": doc["min_group_size"],
    }))
    .unwrap();
    set_settings(&store, &model, Some(&settings)).unwrap();
    (store, model)
}

/// One group against fairlearn's `MetricFrame(...).by_group` row: selection_rate,
/// true_positive_rate, false_positive_rate and scikit-learn's precision_score, with statsmodels'
/// Wilson intervals (`proportion_confint(method="wilson")`).
/// A rate whose denominator is under the minimum group size is `insufficient_sample` instead.
fn check_group(what: &str, g: &GroupReport, want: &Value, min: u64) {
    let c = &g.counts;
    for (name, got) in [
        ("predictions", c.predictions),
        ("selected", c.selected),
        ("tp", c.tp),
        ("fp", c.fp),
        ("tn", c.tn),
        ("fn", c.fn_),
    ] {
        assert_eq!(Some(got), want[name].as_u64(), "{what} {name}");
    }
    for (name, m, n) in [
        ("selection_rate", &g.selection_rate, c.predictions),
        ("true_positive_rate", &g.true_positive_rate, c.tp + c.fn_),
        ("false_positive_rate", &g.false_positive_rate, c.fp + c.tn),
        ("precision", &g.precision, c.tp + c.fp),
    ] {
        if n < min {
            assert_eq!(*m, Metric::InsufficientSample { n, min }, "{what} {name}");
            continue;
        }
        let (v, lo, hi) = defined(&format!("{what} {name}"), m);
        close(&format!("{what} {name} (fairlearn {name})"), v, &want[name]);
        let ci = &want[format!("{name}_ci")];
        close(&format!("{what} {name} Wilson low"), lo, &ci[0]);
        close(&format!("{what} {name} Wilson high"), hi, &ci[1]);
    }
}

fn check_gap(what: &str, gap: &Gap, want: &Value, name: &str, ci: bool) {
    // fairlearn compares every group: these fixtures have every group at the minimum size.
    assert!(
        gap.left_out.is_empty(),
        "{what} {name}: left out {:?}",
        gap.left_out
    );
    let (v, lo, hi) = defined(&format!("{what} {name}"), &gap.metric);
    close(&format!("{what} fairlearn.metrics.{name}"), v, &want[name]);
    if ci {
        let w = &want[format!("{name}_ci")];
        close(&format!("{what} {name} statsmodels low"), lo, &w[0]);
        close(&format!("{what} {name} statsmodels high"), hi, &w[1]);
    }
}

fn check_case(name: &str) {
    let doc = fixture(name);
    let dir = tempfile::tempdir().unwrap();
    let (store, model) = store_rows(dir.path(), &doc);
    let q = FairnessQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
    };
    let report = fairness(&store, &model, &q).unwrap();
    // The JSON reads back into the same report (`modelwatch report --server` does).
    let json = serde_json::to_value(&report).unwrap();
    let back: modelwatch_engine::fairness::FairnessReport =
        serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), json);
    assert_eq!(Some(report.favourable.as_str()), doc["favourable"].as_str());
    let expected = doc["expected"].as_object().unwrap();
    assert_eq!(report.attributes.len(), expected.len());
    let mut compared = 0;
    for a in &report.attributes {
        let want = &expected[&a.attribute];
        let spans = a
            .windows
            .iter()
            .map(|w| {
                let day = w.start.to_rfc3339()[..10].to_owned();
                (
                    format!("{} day {day}", a.attribute),
                    &want["days"][&day],
                    &w.groups,
                    &w.measures,
                )
            })
            .chain(a.versions.iter().map(|v| {
                (
                    format!("{} version {}", a.attribute, v.version),
                    &want["versions"][&v.version],
                    &v.groups,
                    &v.measures,
                )
            }));
        for (what, want, groups, m) in spans {
            assert!(want.is_object(), "{what}: no such span in the fixture");
            let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
            let mut want_names: Vec<&str> = want["groups"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            want_names.sort_unstable();
            assert_eq!(names, want_names, "{what}: groups");
            for g in groups {
                check_group(
                    &format!("{what} group {}", g.group),
                    g,
                    &want["groups"][&g.group],
                    report.min_group_size,
                );
            }
            check_gap(
                &what,
                &m.demographic_parity_difference,
                want,
                "demographic_parity_difference",
                true,
            );
            assert_eq!(
                m.demographic_parity_difference
                    .between
                    .as_ref()
                    .map(|b| json!(b)),
                Some(want["demographic_parity_difference_between"].clone()),
                "{what}: highest and lowest group"
            );
            check_gap(
                &what,
                &m.demographic_parity_ratio,
                want,
                "demographic_parity_ratio",
                true,
            );
            check_gap(
                &what,
                &m.equal_opportunity_difference,
                want,
                "equal_opportunity_difference",
                true,
            );
            check_gap(
                &what,
                &m.equalized_odds_difference,
                want,
                "equalized_odds_difference",
                false,
            );
            let ratio = want["demographic_parity_ratio"].as_f64().unwrap();
            assert_eq!(
                m.four_fifths_rule,
                if ratio < 0.8 {
                    FourFifths::Violated
                } else {
                    FourFifths::Met
                },
                "{what}"
            );
            compared += 1;
        }
    }
    // 3 attributes x (2 days + 2 versions).
    assert_eq!(compared, 12);
}

/// fairlearn's selection_rate, demographic_parity_difference, demographic_parity_ratio,
/// true_positive_rate, false_positive_rate, equal_opportunity_difference,
/// equalized_odds_difference and MetricFrame by group, the favourable outcome being the
/// model's positive class.
#[test]
fn fairness_equals_fairlearn_metrics_when_the_favourable_outcome_is_the_positive_class() {
    check_case("favourable_is_positive");
}

/// The same functions with the favourable outcome the model's other class (`0`: a fraud
/// model's "cleared"), fairlearn given the rows with `0` recoded as its positive label.
#[test]
fn fairness_equals_fairlearn_metrics_when_the_favourable_outcome_is_the_other_class() {
    check_case("favourable_is_negative");
}
