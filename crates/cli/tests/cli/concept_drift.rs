//! `GET /v1/models/{model}/concept` against the real binary: a classifier whose error rate
//! jumps, labels arriving late and out of order, a regressor, and bad parameters.

use crate::common;

use common::Server;
use modelwatch_stats::concept::{change_points, DetectorKind};
use serde_json::{json, Value};

const N: usize = 2000;

/// Whether prediction `i` is a mistake: 10 % before the 1,000th, 40 % after, spread evenly.
fn mistake(i: usize) -> bool {
    let rate = if i < N / 2 { 10 } else { 40 };
    (i * 7919) % 100 < rate
}

fn time(i: usize) -> String {
    // One prediction a minute from 2026-11-20 00:00.
    format!(
        "2026-11-{:02}T{:02}:{:02}:00Z",
        20 + i / 1440,
        (i / 60) % 24,
        i % 60
    )
}

fn predictions(version: &str) -> Vec<Value> {
    (0..N)
        .map(|i| {
            json!({"request_id": format!("{version}-{i}"), "timestamp": time(i),
                   "model_version": version, "features": {"x": i as f64},
                   "prediction": 1, "score": 0.9})
        })
        .collect()
}

fn labels(version: &str, ids: impl Iterator<Item = usize>) -> Vec<Value> {
    ids.map(|i| {
        json!({"request_id": format!("{version}-{i}"), "label": if mistake(i) { 0 } else { 1 },
               "timestamp": "2026-12-01T00:00:00Z"})
    })
    .collect()
}

fn stream() -> Vec<f64> {
    (0..N).map(|i| f64::from(mistake(i))).collect()
}

fn positions(version: &Value, detector: &str) -> Vec<usize> {
    version["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["detector"] == detector)
        .map(|c| c["position"].as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn change_points_are_the_detectors_on_the_error_stream_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.post_ok("/v1/models/churn/predictions", predictions("v1"));
    // Labels arrive late and in another order than the predictions: the second half first
    // (reversed), then the first half.
    server.post_ok("/v1/models/churn/labels", labels("v1", (N / 2..N).rev()));
    let partial = server.get_ok("/v1/models/churn/concept?detectors=ddm");
    assert_eq!(partial["versions"][0]["labelled"], N / 2);
    server.post_ok("/v1/models/churn/labels", labels("v1", 0..N / 2));

    let report = server.get_ok("/v1/models/churn/concept?window=1d");
    assert_eq!(report["task"], "binary");
    assert_eq!(report["stream"], "mistake");
    let v1 = &report["versions"][0];
    assert_eq!(v1["version"], "v1");
    assert_eq!(v1["labelled"], N);
    let stream = stream();
    let mut found_the_jump = 0;
    for kind in DetectorKind::ALL {
        let want = change_points(kind, &stream);
        assert_eq!(positions(v1, kind.name()), want, "{}", kind.name());
        if want.iter().any(|&p| (N / 2..N / 2 + 300).contains(&p)) {
            found_the_jump += 1;
        }
    }
    assert!(found_the_jump >= 4, "most detectors see the jump at 1,000");
    // Each change names its prediction and its window, and the windows count them.
    let change = v1["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["detector"] == "ddm")
        .unwrap();
    let i = change["position"].as_u64().unwrap() as usize;
    assert_eq!(change["request_id"], format!("v1-{i}"));
    assert_eq!(change["timestamp"], time(i));
    assert_eq!(
        change["window_start"],
        format!("2026-11-{:02}T00:00:00Z", 20 + i / 1440)
    );
    let windows = v1["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2);
    let counted: u64 = windows
        .iter()
        .map(|w| w["changes"]["ddm"].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, positions(v1, "ddm").len());
    let first_day_mistakes = (0..1440).filter(|&i| mistake(i)).count() as f64 / 1440.0;
    assert!((windows[0]["mean_error"].as_f64().unwrap() - first_day_mistakes).abs() < 1e-12);

    // A range: the stream restarts at `from`.
    let later = server.get_ok("/v1/models/churn/concept?from=2026-11-21T00:00:00Z&detectors=adwin");
    assert_eq!(later["detectors"], json!(["adwin"]));
    assert_eq!(
        positions(&later["versions"][0], "adwin"),
        change_points(DetectorKind::Adwin, &stream[1440..])
    );
}

#[test]
fn a_regressor_gets_the_detectors_for_real_valued_errors_and_bad_parameters_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let rows: Vec<Value> = (0..600)
        .map(|i| {
            json!({"request_id": format!("r{i}"), "timestamp": time(i), "model_version": "v2",
                   "features": {"x": 1.0}, "prediction": 10.5 + (i % 7) as f64 / 10.0})
        })
        .collect();
    server.post_ok("/v1/models/price/predictions", rows);
    let labels: Vec<Value> = (0..600)
        .map(|i| json!({"request_id": format!("r{i}"), "label": if i < 300 { 10.0 } else { 14.0 }}))
        .collect();
    server.post_ok("/v1/models/price/labels", labels);
    let report = server.get_ok("/v1/models/price/concept");
    assert_eq!(report["task"], "regression");
    assert_eq!(report["stream"], "absolute_error");
    assert_eq!(
        report["detectors"],
        json!(["adwin", "page_hinkley", "kswin"])
    );
    let skipped: Vec<&str> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["detector"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["ddm", "eddm", "hddm_a"]);
    let errors: Vec<f64> = (0..600)
        .map(|i| {
            let label = if i < 300 { 10.0 } else { 14.0 };
            f64::abs(label - (10.5 + (i % 7) as f64 / 10.0))
        })
        .collect();
    let v2 = &report["versions"][0];
    for kind in [
        DetectorKind::Adwin,
        DetectorKind::PageHinkley,
        DetectorKind::Kswin,
    ] {
        assert_eq!(
            positions(v2, kind.name()),
            change_points(kind, &errors),
            "{}",
            kind.name()
        );
    }
    assert!(!positions(v2, "adwin").is_empty());

    let (status, body) = server.get("/v1/models/price/concept?detectors=adwin,cusum");
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("`detectors`") && message.contains("cusum"),
        "{body}"
    );
    let (status, _) = server.get("/v1/models/price/concept?window=1ü");
    assert_eq!(status, 400);
    let (status, _) = server.get("/v1/models/nobody/concept");
    assert_eq!(status, 404);
}

// ---- a change in the relation between inputs and outcome, seen by rules

/// Rows of the relation data: a day of 1,200 predictions, one a minute from midnight.
pub const RELATION_ROWS: usize = 1200;

/// The input of row `i`: x spread evenly over [0, 1) whatever the part of the day.
fn relation_x(i: usize) -> f64 {
    ((i * 7919 + 13) % 1000) as f64 / 1000.0
}

/// Whether row `i`'s outcome is the odd one out (5 % of rows, spread evenly).
fn relation_noise(i: usize) -> bool {
    (i * 7907 + 1) % 100 < 5
}

/// The outcome of input `x`: positive above 0.5 before the change, above 0.8 after it.
fn relation_label(i: usize, x: f64, changed: bool) -> u8 {
    let bound = if changed { 0.8 } else { 0.5 };
    u8::from((x > bound) != relation_noise(i))
}

/// A reference for the relation data: 1,000 rows of x with the model's decision (x > 0.5) and
/// the outcome before any change.
pub fn relation_reference_csv() -> String {
    let mut csv = String::from("x,prediction,score,label\n");
    for i in 0..1000 {
        let x = (i as f64 + 0.5) / 1000.0;
        let pred = u8::from(x > 0.5);
        csv.push_str(&format!("{x},{pred},{x},{}\n", relation_label(i, x, false)));
    }
    csv
}

/// A day of a classifier deciding x > 0.5 (its score is x) and the labels of its
/// predictions. With `changes`, the outcome's bound moves from 0.5 to 0.8 at noon: the inputs
/// and the decisions keep their distribution (no per-feature or prediction drift), only the
/// relation between input and outcome changes, and the error rate goes from 5 % to about 33 %.
pub fn relation_day(day: &str, prefix: &str, changes: bool) -> (Vec<Value>, Vec<Value>) {
    let (mut preds, mut labels) = (Vec::new(), Vec::new());
    for i in 0..RELATION_ROWS {
        let x = relation_x(i);
        let id = format!("{prefix}-{i}");
        preds.push(json!({"request_id": id,
            "timestamp": format!("{day}T{:02}:{:02}:00Z", i / 60, i % 60),
            "features": {"x": x}, "prediction": u8::from(x > 0.5), "score": x}));
        let changed = changes && i >= RELATION_ROWS / 2;
        labels.push(json!({"request_id": id, "label": relation_label(i, x, changed)}));
    }
    (preds, labels)
}

#[test]
fn a_change_in_the_relation_fires_concept_rules_while_feature_drift_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    let rule = |name: &str, signal: &str, op: &str, bound: f64| {
        json!({"name": name, "signal": signal, "decision": "retrain", "severity": "warning",
               "condition": {"kind": "threshold", "op": op, "value": bound}})
    };
    for (model, changes) in [("shifted", true), ("steady", false)] {
        s.put_reference(model, "", "text/csv", relation_reference_csv());
        for r in [
            rule("concept-adwin", "concept:adwin", ">", 0.0),
            rule("concept-ddm", "concept:ddm", ">", 0.0),
            rule("drift-x", "drift:x", ">", 0.5),
            rule("drift-prediction", "drift:prediction", ">", 0.5),
            // Fires when x's drift test read "no drift": shows the drift rules had a value.
            rule("x-steady", "drift:x", "<", 0.5),
        ] {
            let (st, out) = s.post(&format!("/v1/models/{model}/rules"), &r.to_string());
            assert_eq!(st, 201, "{out}");
        }
        let (preds, labels) = relation_day("2026-11-20", model, changes);
        s.post_ok(&format!("/v1/models/{model}/predictions"), preds);
        s.post_ok(&format!("/v1/models/{model}/labels"), labels);
    }
    let sent = modelwatch_core::Timestamp::now();
    let rules_of = |out: &Value, model: &str| -> Vec<String> {
        let mut r: Vec<String> = out["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["model"] == model)
            .map(|a| a["rule"].as_str().unwrap().to_owned())
            .collect();
        r.sort();
        r
    };
    // `x-steady` fires when x's drift test reads "no drift", which shows the drift rules had a
    // value; once each model's has been evaluated after every label was in, so were the other
    // rules of that model, in the same pass.
    let evaluated_since_sent = |out: &Value, model: &str| {
        out["alerts"].as_array().unwrap().iter().any(|a| {
            a["model"] == model
                && a["rule"] == "x-steady"
                && modelwatch_core::parse_timestamp(a["evaluated_at"].as_str().unwrap()).unwrap()
                    > sent
        })
    };
    let all = common::poll(30, || {
        let (_, out) = s.get("/v1/alerts");
        if evaluated_since_sent(&out, "shifted") && evaluated_since_sent(&out, "steady") {
            Ok(out)
        } else {
            Err(format!("not yet evaluated since the labels: {out}"))
        }
    });
    // The relation changed: the concept rules fire; the inputs and decisions did not move: the
    // drift rules hold nothing. The steady model's concept rules hold nothing either.
    assert_eq!(
        rules_of(&all, "shifted"),
        ["concept-adwin", "concept-ddm", "x-steady"],
        "{all}"
    );
    assert_eq!(rules_of(&all, "steady"), ["x-steady"], "{all}");
    // The alert carries the window's count of change points and its labelled predictions.
    let adwin = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["model"] == "shifted" && a["rule"] == "concept-adwin")
        .unwrap();
    assert_eq!(adwin["state"], "firing", "{adwin}");
    assert!(adwin["value"].as_f64().unwrap() >= 1.0, "{adwin}");
    assert_eq!(adwin["n"], RELATION_ROWS as u64, "{adwin}");
    let report = s.get_ok("/v1/models/shifted/concept?window=1d&detectors=adwin");
    let changes = positions(&report["versions"][0], "adwin");
    assert!(
        changes.iter().any(|&p| p >= RELATION_ROWS / 2),
        "adwin flags the change after noon: {changes:?}"
    );
}

#[test]
fn a_rule_on_a_detector_of_mistakes_reads_nothing_from_a_regressor() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_evaluating_every_second(dir.path());
    // `>= 0` holds on any value read: `adwin` shows the rules were evaluated, `ddm` (defined
    // on 0/1 mistakes) has no value on absolute errors and stays out of the alerts.
    for d in ["adwin", "ddm"] {
        let rule = json!({"name": d, "signal": format!("concept:{d}"), "decision": "review",
            "severity": "info", "condition": {"kind": "threshold", "op": ">=", "value": 0.0}});
        let (st, out) = s.post("/v1/models/price/rules", &rule.to_string());
        assert_eq!(st, 201, "{out}");
    }
    let rows: Vec<Value> = (0..100)
        .map(|i| {
            json!({"request_id": format!("r{i}"), "timestamp": time(i),
                   "features": {"x": 1.0}, "prediction": 10.5 + (i % 7) as f64 / 10.0})
        })
        .collect();
    s.post_ok("/v1/models/price/predictions", rows);
    let labels: Vec<Value> = (0..100)
        .map(|i| json!({"request_id": format!("r{i}"), "label": 10.0 + (i % 3) as f64 * 0.7}))
        .collect();
    s.post_ok("/v1/models/price/labels", labels);
    let alerts = common::poll(30, || {
        let (_, out) = s.get("/v1/alerts?model=price");
        let rules: Vec<&str> = out["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["rule"].as_str().unwrap())
            .collect();
        if rules.contains(&"adwin") {
            Ok(out.clone())
        } else {
            Err(format!("adwin not evaluated yet: {out}"))
        }
    });
    let rules: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["adwin"], "{alerts}");
    let report = s.get_ok("/v1/models/price/concept");
    assert_eq!(report["stream"], "absolute_error", "{report}");
}
