//! Cost and the latency SLO over a real `SqliteStore`, against NumPy: 32 days of hourly traffic
//! from `scripts/fixtures/gen_slo_fixtures.py` (latencies, costs), stored as events; the
//! service-level report per window of 1 h, 6 h and 1 d over the last two days, read from the
//! per-hour state, gives NumPy's counts exactly, its cost sums exactly (the events' decimal sum),
//! and its compliance, burn rate and 30-day budget to the last bits.

use modelwatch_core::{FeatureValue, ModelName, Outcome, PredictionEvent, Timestamp, Window};
use modelwatch_engine::service_levels::{
    self, ServiceLevelQuery, ServiceLevelReport, ServiceLevelSettings,
};
use modelwatch_store::{EventLog, PredictionBatch, SqliteStore};
use serde_json::{json, Value};

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/slo.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

fn store_with_fixture(dir: &std::path::Path, f: &Value) -> (SqliteStore, ModelName) {
    let store = SqliteStore::open(dir.join("store")).unwrap();
    let model = ModelName::new("slo").unwrap();
    let start = f["start"].as_i64().unwrap();
    let mut events = Vec::new();
    for (h, hour) in f["hours"].as_array().unwrap().iter().enumerate() {
        let lat = hour["latency_ms"].as_array().unwrap();
        let costs = hour["cost_micros"].as_array().unwrap();
        for (i, (l, c)) in lat.iter().zip(costs).enumerate() {
            // Spread over the hour; a cost of k millionths written as the client would.
            let ts = start + h as i64 * 3_600_000_000 + i as i64 * 60_000_000;
            let cost = c
                .as_u64()
                .map(|m| format!("0.{m:06}").parse::<f64>().unwrap());
            events.push(PredictionEvent {
                request_id: format!("r{h}-{i}"),
                timestamp: Timestamp(ts),
                model_version: Some(if i % 2 == 0 { "v1" } else { "v2" }.into()),
                features: vec![("x".into(), FeatureValue::Number(i as f64))],
                prediction: Some(Outcome::Number(f64::from(u8::from(i % 3 == 0)))),
                score: None,
                scores: None,
                latency_ms: l.as_f64(),
                cost,
                error: None,
                tags: vec![],
                explanations: Vec::new(),
                role: modelwatch_core::Role::Served,
            });
        }
    }
    let batch: Vec<(usize, PredictionEvent)> = events.into_iter().enumerate().collect();
    store
        .ingest_predictions(&model, PredictionBatch::new(batch))
        .unwrap();
    (store, model)
}

fn report(store: &SqliteStore, model: &ModelName, f: &Value, window: Window) -> ServiceLevelReport {
    let q = ServiceLevelQuery {
        window,
        from: Some(Timestamp(f["from"].as_i64().unwrap())),
        to: None,
        version: None,
    };
    service_levels::service_levels(store, model, &q).unwrap()
}

fn check(r: &ServiceLevelReport, want: &[Value], label: &str) {
    assert_eq!(r.windows.len(), want.len(), "{label}");
    for (w, e) in r.windows.iter().zip(want) {
        let at = format!("{label} {}", w.start.to_rfc3339());
        assert_eq!(w.start.0, e["start"].as_i64().unwrap(), "{at}");
        assert_eq!(w.predictions, e["predictions"].as_u64().unwrap(), "{at}");
        // Costs: exactly NumPy's decimal sums.
        assert_eq!(
            w.cost.from_events,
            e["from_events"].as_f64().unwrap(),
            "{at}"
        );
        assert_eq!(w.cost.with_cost, e["with_cost"].as_u64().unwrap(), "{at}");
        assert_eq!(
            w.cost.without_cost,
            e["without_cost"].as_u64().unwrap(),
            "{at}"
        );
        assert_eq!(w.cost.from_rate, e["from_rate"].as_f64(), "{at}");
        assert_eq!(w.cost.total, e["total"].as_f64().unwrap(), "{at}");
        let s = w.slo.as_ref().unwrap();
        assert_eq!(s.requests, e["requests"].as_u64().unwrap(), "{at}");
        assert_eq!(s.good, e["good"].as_u64().unwrap(), "{at}");
        assert_eq!(
            s.budget_requests,
            e["budget_requests"].as_u64().unwrap(),
            "{at}"
        );
        assert_eq!(s.budget_slow, e["budget_slow"].as_u64().unwrap(), "{at}");
        for (name, got) in [
            ("compliance", s.compliance),
            ("burn_rate", s.burn_rate),
            ("budget_remaining", s.budget_remaining),
        ] {
            let want = e[name].as_f64().unwrap();
            assert!(close(got.unwrap(), want), "{at} {name}: {got:?} vs {want}");
        }
    }
}

#[test]
fn cost_and_slo_windows_from_the_hours_equal_numpy() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let (store, model) = store_with_fixture(dir.path(), &f);
    let settings = ServiceLevelSettings::from_json(&json!({
        "cost_per_prediction": f["cost_per_prediction"],
        "latency_slo": {"objective": f["objective"], "threshold_ms": f["threshold_ms"]},
    }))
    .unwrap();
    service_levels::set_settings(&store, &model, Some(&settings)).unwrap();
    // The report refreshes the hours first (deciding the task), then reads them.
    for (label, window) in [
        ("1h", Window::HOUR),
        ("6h", Window::parse("6h").unwrap()),
        ("1d", Window::DAY),
    ] {
        let r = report(&store, &model, &f, window);
        assert_eq!(r.source, "hours", "{label}");
        check(&r, f["expected"][label].as_array().unwrap(), label);
    }
    // The regressed last six hours burn the budget fast; the day before did not.
    let six = report(&store, &model, &f, Window::parse("6h").unwrap());
    let burn = |i: usize| six.windows[i].slo.as_ref().unwrap().burn_rate.unwrap();
    assert!(
        burn(six.windows.len() - 1) > 14.4,
        "{}",
        burn(six.windows.len() - 1)
    );
    assert!(burn(0) < 6.0, "{}", burn(0));
}
