//! Cost and the latency objective through the real binary: the model's setting (refused with
//! the field named when bad), `GET /v1/models/{model}/service-levels` (costs from the events
//! summed exactly, the rate for the rest; compliance, burn rate and budget), a burn-rate rule
//! that fires on a latency regression and stays quiet on clean traffic, the `modelwatch_slo_*`
//! series of `GET /metrics`, and the `cost` column of `modelwatch import`.

use crate::common;

use common::{poll, Server};
use serde_json::{json, Value};

const DAY: &str = "2026-01-12";
const SETTINGS: &str =
    r#"{"cost_per_prediction": 0.0005, "latency_slo": {"objective": 0.99, "threshold_ms": 200}}"#;

/// 120 predictions in each of the hours 00-06. Latencies 50-169 ms, far from the 200 ms bound
/// (the sketch counts those exactly); in hour 06 of a `regressed` model, every 4th request
/// takes 400 ms (25 % slow: burn rate 25). Every 3rd prediction carries no cost; the others
/// cost k millionths, k = 1..999.
fn rows(model: &str, regressed: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for h in 0..7usize {
        for i in 0..120usize {
            let n = h * 120 + i;
            let slow = regressed && h == 6 && i % 4 == 0;
            let mut r = json!({"request_id": format!("{model}-{n}"),
                "timestamp": format!("{DAY}T{h:02}:{:02}:{:02}Z", i / 2, (i % 2) * 30),
                "model_version": if i % 2 == 0 { "v1" } else { "v2" },
                "features": {"x": i % 7}, "prediction": i % 2,
                "latency_ms": if slow { 400.0 } else { 50.0 + i as f64 }});
            if n % 3 != 0 {
                r["cost"] = json!(format!("0.{:06}", n % 999 + 1).parse::<f64>().unwrap());
            }
            out.push(r);
        }
    }
    out
}

/// The events' costs in millionths (exact integers), the count without one, per hour.
fn expected_micros(rows: &[Value], hour: usize) -> (u64, u64) {
    let mut sum = 0u64;
    let mut without = 0;
    for r in &rows[hour * 120..(hour + 1) * 120] {
        match r.get("cost") {
            // The rows were written as 0.000k: k millionths.
            Some(c) => sum += (c.as_f64().unwrap() * 1e6).round() as u64,
            None => without += 1,
        }
    }
    (sum, without)
}

fn burn_rule(name: &str) -> String {
    json!({"name": name, "signal": "slo_burn_rate", "window": "1h",
        "condition": {"kind": "threshold", "op": ">", "value": 14.4},
        "decision": "review", "severity": "critical"})
    .to_string()
}

#[test]
fn a_latency_regression_fires_the_burn_rate_rule_and_clean_traffic_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    let (clean, regressed) = (rows("clean", false), rows("regressed", true));
    s.post_ok("/v1/models/clean/predictions", clean.clone());
    s.post_ok("/v1/models/regressed/predictions", regressed.clone());

    // A bad setting is a 400 naming the field; a good one reads back.
    for (body, field) in [
        (
            r#"{"latency_slo": {"objective": 99, "threshold_ms": 200}}"#,
            "latency_slo.objective",
        ),
        (
            r#"{"latency_slo": {"objective": 0.99}}"#,
            "latency_slo.threshold_ms",
        ),
        (r#"{"cost_per_prediction": -0.1}"#, "cost_per_prediction"),
    ] {
        let (st, out) = s.put(
            "/v1/models/clean/service-levels/settings",
            "application/json",
            body.to_owned(),
        );
        assert_eq!(st, 400, "{body}: {out}");
        assert!(
            out["error"]["message"].as_str().unwrap().contains(field),
            "{out}"
        );
    }
    for m in ["clean", "regressed"] {
        let (st, out) = s.put(
            &format!("/v1/models/{m}/service-levels/settings"),
            "application/json",
            SETTINGS.to_owned(),
        );
        assert_eq!(st, 200, "{out}");
        let (st, out) = s.post(&format!("/v1/models/{m}/rules"), &burn_rule("latency-burn"));
        assert_eq!(st, 201, "{out}");
    }
    let got = s.get_ok("/v1/models/regressed/service-levels/settings");
    assert_eq!(got["service_levels"]["latency_slo"]["threshold_ms"], 200.0);

    // The regressed model's last hour: 30 of 120 requests slow.
    let report = s.get_ok(&format!(
        "/v1/models/regressed/service-levels?window=1h&from={DAY}T00:00:00Z"
    ));
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 7, "{report}");
    let last = &windows[6]["slo"];
    assert_eq!(
        (last["requests"].as_u64(), last["good"].as_u64()),
        (Some(120), Some(90))
    );
    assert_eq!(last["compliance"].as_f64(), Some(0.75));
    let burn = last["burn_rate"].as_f64().unwrap();
    assert!((burn - 25.0).abs() < 1e-9, "{burn}");
    // 30 slow of 840 in the 30 days; 1 % of 840 allowed: 8.4. Left: 1 - 30 / 8.4.
    let left = last["budget_remaining"].as_f64().unwrap();
    assert!((left - (1.0 - 30.0 / 8.4)).abs() < 1e-9, "{left}");
    assert_eq!(windows[5]["slo"]["burn_rate"].as_f64(), Some(0.0));
    assert_eq!(windows[5]["slo"]["budget_remaining"].as_f64(), Some(1.0));

    // The regressed model's rule fires; the clean one's stays quiet through the same passes.
    poll(30, || {
        let (_, out) = s.get("/v1/alerts?state=firing&model=regressed");
        match out["alerts"].as_array().map(Vec::len) {
            Some(1) => Ok(()),
            _ => Err(format!("not firing: {out}")),
        }
    });
    let (_, clean_alerts) = s.get("/v1/alerts?model=clean");
    assert_eq!(
        clean_alerts["alerts"].as_array().unwrap().len(),
        0,
        "{clean_alerts}"
    );
    let clean_report = s.get_ok("/v1/models/clean/service-levels?window=1h");
    for w in clean_report["windows"].as_array().unwrap() {
        assert_eq!(w["slo"]["burn_rate"].as_f64(), Some(0.0), "{w}");
    }

    // Prometheus: the SLO series, with the objective as a label and as a series of its own.
    let text = poll(30, || {
        let (_, text, _) = s.get_text("/metrics");
        if text.contains("modelwatch_slo_burn_rate{model=\"regressed\"") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    let labels = "model=\"regressed\",slo=\"latency\",objective=\"0.99\",threshold_seconds=\"0.2\"";
    let burn_line = line("modelwatch_slo_burn_rate{model=\"regressed\"");
    let (series, value) = burn_line.rsplit_once(' ').unwrap();
    assert_eq!(
        series,
        format!("modelwatch_slo_burn_rate{{{labels},window=\"1h\"}}")
    );
    assert!(
        (value.parse::<f64>().unwrap() - 25.0).abs() < 1e-9,
        "{burn_line}"
    );
    assert_eq!(
        line("modelwatch_slo_compliance_ratio{model=\"regressed\""),
        format!("modelwatch_slo_compliance_ratio{{{labels},window=\"1h\"}} 0.75")
    );
    assert_eq!(
        line("modelwatch_slo_objective_ratio{model=\"regressed\""),
        format!("modelwatch_slo_objective_ratio{{{labels}}} 0.99")
    );
    assert!(
        line("modelwatch_slo_error_budget_remaining_ratio{model=\"regressed\"").contains(labels)
    );
    assert!(text.contains("# TYPE modelwatch_slo_burn_rate gauge"));
    assert!(line("modelwatch_model_cost{model=\"regressed\"").contains("window=\"1h\""));
}

#[test]
fn cost_sums_equal_the_events_sums_and_the_rate_prices_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let rows = rows("costs", false);
    // A bad cost refuses its row, naming the field; the valid rows beside it are kept.
    let mut batch = rows.clone();
    batch.push(
        json!({"request_id": "bad-cost", "timestamp": format!("{DAY}T03:00:00Z"),
        "features": {"x": 1}, "prediction": 1, "cost": -2}),
    );
    batch.push(
        json!({"request_id": "text-cost", "timestamp": format!("{DAY}T03:00:00Z"),
        "features": {"x": 1}, "prediction": 1, "cost": "cheap"}),
    );
    let (st, out) = s.post(
        "/v1/models/costs/predictions",
        &Value::Array(batch).to_string(),
    );
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["accepted"].as_u64(), Some(840), "{out}");
    let rejected = out["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{out}");
    assert!(rejected.iter().all(|r| r["field"] == "cost"), "{out}");

    // Before a rate: the predictions without a cost are counted, in no total.
    let report = s.get_ok("/v1/models/costs/service-levels?window=1h");
    let w0 = &report["windows"][0]["cost"];
    let (micros, without) = expected_micros(&rows, 0);
    assert_eq!(
        w0["from_events"].as_f64(),
        Some(micros as f64 / 1e6),
        "{w0}"
    );
    assert_eq!(w0["total"].as_f64(), Some(micros as f64 / 1e6), "{w0}");
    assert_eq!(w0["without_cost"].as_u64(), Some(without));
    assert_eq!(w0["from_rate"], Value::Null);
    assert_eq!(report["windows"][0]["slo"], Value::Null);

    let (st, out) = s.put(
        "/v1/models/costs/service-levels/settings",
        "application/json",
        r#"{"cost_per_prediction": 0.0005}"#.to_owned(),
    );
    assert_eq!(st, 200, "{out}");
    let report = s.get_ok("/v1/models/costs/service-levels?window=1h");
    assert_eq!(report["source"], "hours", "{report}");
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 7);
    let (mut all_micros, mut all_without) = (0, 0);
    for (h, w) in windows.iter().enumerate() {
        let (micros, without) = expected_micros(&rows, h);
        all_micros += micros;
        all_without += without;
        let c = &w["cost"];
        assert_eq!(
            c["from_events"].as_f64(),
            Some(micros as f64 / 1e6),
            "hour {h}: {c}"
        );
        assert_eq!(c["with_cost"].as_u64(), Some(120 - without));
        // 0.0005 a prediction: 500 millionths.
        assert_eq!(
            c["from_rate"].as_f64(),
            Some((without * 500) as f64 / 1e6),
            "{c}"
        );
        assert_eq!(
            c["total"].as_f64(),
            Some((micros + without * 500) as f64 / 1e6),
            "{c}"
        );
    }
    // One window of a day: the same sums, whatever the order the hours merge in.
    let day = s.get_ok("/v1/models/costs/service-levels?window=1d");
    let c = &day["windows"][0]["cost"];
    assert_eq!(
        c["from_events"].as_f64(),
        Some(all_micros as f64 / 1e6),
        "{c}"
    );
    assert_eq!(
        c["total"].as_f64(),
        Some((all_micros + all_without * 500) as f64 / 1e6)
    );
    // Per version: v1 holds the even rows, v2 the odd ones.
    let versions = day["versions"].as_array().unwrap();
    let by = |v: &str| versions.iter().find(|x| x["version"] == v).unwrap()["cost"].clone();
    let sum_of = |parity: usize| -> u64 {
        rows.iter()
            .enumerate()
            .filter(|(n, _)| (n % 120) % 2 == parity)
            .filter_map(|(_, r)| r.get("cost"))
            .map(|c| (c.as_f64().unwrap() * 1e6).round() as u64)
            .sum()
    };
    assert_eq!(
        by("v1")["from_events"].as_f64(),
        Some(sum_of(0) as f64 / 1e6)
    );
    assert_eq!(
        by("v2")["from_events"].as_f64(),
        Some(sum_of(1) as f64 / 1e6)
    );
    // A window that is not whole hours is refused, naming the parameter.
    let (st, out) = s.get("/v1/models/costs/service-levels?window=15m");
    assert_eq!(st, 400, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`window`"),
        "{out}"
    );
}

#[test]
fn import_reads_the_cost_column_and_refuses_a_bad_one_by_row() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("preds.csv");
    std::fs::write(
        &csv,
        "request_id,timestamp,x,prediction,cost\n\
         a,2026-01-12T01:00:00Z,1,1,0.0012\n\
         b,2026-01-12T01:10:00Z,2,0,0.0035\n\
         c,2026-01-12T01:20:00Z,3,1,\n\
         d,2026-01-12T01:30:00Z,4,1,-1\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = common::import(
        "predictions",
        &csv,
        "imported",
        &["--data", data.to_str().unwrap(), "--cost-col", "cost"],
    );
    assert!(ok, "{out}{err}");
    assert!(format!("{out}{err}").contains("cost"), "{out}{err}");
    // Without `--cost-col`, a column named `cost` stays the feature it was before costs existed.
    std::fs::write(
        &csv,
        "request_id,timestamp,x,prediction,cost\n\
         a,2026-01-12T01:00:00Z,1,1,-3\n\
         b,2026-01-12T01:10:00Z,2,0,4\n",
    )
    .unwrap();
    let (ok, out, err) = common::import(
        "predictions",
        &csv,
        "feature",
        &["--data", data.to_str().unwrap()],
    );
    assert!(ok && out.contains("2 accepted"), "{out}{err}");
    let s = Server::start(&data);
    let feature = s.get_ok("/v1/models/feature");
    assert!(feature.to_string().contains("\"cost\""), "{feature}");
    let report = s.get_ok("/v1/models/imported/service-levels?window=1h");
    let c = &report["windows"][0]["cost"];
    // 0.0012 + 0.0035, the row without a cost counted apart, the negative one refused.
    assert_eq!(c["from_events"].as_f64(), Some(0.0047), "{c}");
    assert_eq!(
        (c["with_cost"].as_u64(), c["without_cost"].as_u64()),
        (Some(2), Some(1))
    );
    // Not a feature.
    let model = s.get_ok("/v1/models/imported");
    assert!(!model.to_string().contains("\"cost\""), "{model}");
}
