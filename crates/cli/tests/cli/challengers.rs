//! Shadow challengers and `GET /v1/models/{model}/compare` against the real binary: a shadow
//! version scoring the same requests (stored once per version, labels joining both whichever
//! arrives first, the served traffic's reports unchanged), the paired tests and the decision;
//! an A/B regression on disjoint traffic; a challenger too close to call; bad parameters.
//!
//! Expected values are computed here from the rows the test sends, with the stats functions
//! that `crates/stats/tests/paired_scipy.rs` checks against statsmodels and SciPy.

use crate::common;

use common::Server;
use modelwatch_stats::paired;
use serde_json::{json, Value};

/// A deterministic number in [0, 1) for (i, salt).
fn unit(i: usize, salt: u64) -> f64 {
    let mut x =
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED69);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn time(i: usize) -> String {
    // Eight requests an hour from 2026-11-20 00:00: 600 requests span a bit over three days.
    format!(
        "2026-11-{:02}T{:02}:{:02}:00Z",
        20 + i / 192,
        (i / 8) % 24,
        (i % 8) * 7
    )
}

fn positive(i: usize) -> bool {
    unit(i, 1) < 0.4
}

/// Scores rounded to 4 decimals (exact through JSON): the challenger separates the classes
/// better than the champion.
fn score(i: usize, version: &str) -> f64 {
    let y = f64::from(u8::from(positive(i)));
    let s = match version {
        "v1" => 0.2 * y + 0.8 * unit(i, 2),
        _ => 0.35 * y + 0.65 * unit(i, 3),
    };
    (s * 1e4).round() / 1e4
}

fn prediction(i: usize, version: &str, role: &str) -> Value {
    let s = score(i, version);
    let mut row = json!({"request_id": format!("r{i}"), "timestamp": time(i),
        "model_version": version, "features": {"x": unit(i, 4)},
        "prediction": u8::from(s >= 0.5), "score": s});
    if role == "shadow" {
        row["role"] = json!("shadow");
    }
    row
}

fn label(i: usize) -> Value {
    json!({"request_id": format!("r{i}"), "label": u8::from(positive(i)),
           "timestamp": "2026-12-01T00:00:00Z"})
}

#[track_caller]
fn close(what: &str, ours: &Value, want: f64) {
    let v = ours.as_f64().unwrap_or_else(|| panic!("{what}: {ours}"));
    assert!(
        (v - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: {v} != {want}"
    );
}

fn test_named<'a>(metric: &'a Value, name: &str) -> &'a Value {
    metric["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["test"] == name)
        .unwrap_or_else(|| panic!("no {name} in {metric}"))
}

fn metric<'a>(comparison: &'a Value, name: &str) -> &'a Value {
    comparison["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap_or_else(|| panic!("no {name} in {comparison}"))
}

#[test]
fn a_shadow_challenger_is_compared_on_the_requests_both_scored() {
    const N: usize = 600;
    const LABELLED: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let path = "/v1/models/fraud/predictions";
    // Labels of the first 100 requests arrive before any prediction of them.
    server.post_ok(path, vec![prediction(N, "v1", "served")]);
    server.post_ok("/v1/models/fraud/labels", (0..100).map(label).collect());
    // The shadow's rows for the first half come before the served ones, the rest after, and
    // one batch holds both versions of the same requests.
    server.post_ok(
        path,
        (0..300).map(|i| prediction(i, "v2", "shadow")).collect(),
    );
    let both: Vec<Value> = (0..N)
        .map(|i| prediction(i, "v1", "served"))
        .chain((300..N).map(|i| prediction(i, "v2", "shadow")))
        .collect();
    let out = server.post_ok(path, both.clone());
    assert_eq!(out["accepted"], N + 300);
    // A retry of the whole batch stores nothing: each (request id, version) is there.
    let again = server.post_ok(path, both);
    assert_eq!(
        (&again["accepted"], &again["duplicates"]),
        (&json!(0), &json!(N + 300))
    );
    server.post_ok(
        "/v1/models/fraud/labels",
        (100..LABELLED).map(label).collect(),
    );

    // The served traffic's reports read what they read before shadows existed.
    let model = server.get_ok("/v1/models/fraud");
    assert_eq!(model["predictions"], N + 1);
    assert_eq!(model["labelled"], LABELLED);
    let versions: Vec<&str> = model["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1"]);

    let report = server.get_ok(
        "/v1/models/fraud/compare?champion=v1&challenger=v2&window=1d&from=2026-11-20T00:00:00Z&to=2026-11-24T00:00:00Z",
    );
    assert_eq!(report["mode"], "paired");
    assert_eq!(report["task"], "binary");
    let overall = &report["overall"];
    assert_eq!(overall["paired_requests"], N);
    assert_eq!(overall["paired_labelled"], LABELLED);

    // Expected, from the rows sent.
    let ids: Vec<usize> = (0..LABELLED).collect();
    let y: Vec<bool> = ids.iter().map(|&i| positive(i)).collect();
    let sa: Vec<f64> = ids.iter().map(|&i| score(i, "v1")).collect();
    let sb: Vec<f64> = ids.iter().map(|&i| score(i, "v2")).collect();
    let right =
        |s: &[f64]| -> Vec<bool> { s.iter().zip(&y).map(|(s, y)| (*s >= 0.5) == *y).collect() };
    let (ra, rb) = (right(&sa), right(&sb));
    let b = ra.iter().zip(&rb).filter(|(a, b)| **a && !**b).count() as u64;
    let c = ra.iter().zip(&rb).filter(|(a, b)| !**a && **b).count() as u64;
    let accuracy = metric(overall, "accuracy");
    close(
        "champion accuracy",
        &accuracy["champion"]["value"],
        ra.iter().filter(|r| **r).count() as f64 / LABELLED as f64,
    );
    close(
        "challenger accuracy",
        &accuracy["challenger"]["value"],
        rb.iter().filter(|r| **r).count() as f64 / LABELLED as f64,
    );
    let exact = paired::mcnemar_exact(b, c).unwrap();
    close(
        "mcnemar p",
        &test_named(accuracy, "mcnemar_exact")["p_value"],
        exact.p_value,
    );
    let asymptotic = paired::mcnemar_asymptotic(b, c).unwrap();
    close(
        "mcnemar chi2",
        &test_named(accuracy, "mcnemar_asymptotic")["statistic"],
        asymptotic.statistic,
    );
    let delong = paired::delong_paired(&y, &sa, &sb).unwrap();
    let auc = metric(overall, "roc_auc");
    close("champion auc", &auc["champion"]["value"], delong.auc_a);
    close("challenger auc", &auc["challenger"]["value"], delong.auc_b);
    close(
        "delong p",
        &test_named(auc, "delong")["p_value"],
        delong.test.p_value,
    );
    assert!(
        auc["challenger"]["ci_low"].as_f64().unwrap() < delong.auc_b,
        "{auc}"
    );
    // Agreement over every request both scored, labelled or not.
    let agree = (0..N)
        .filter(|&i| (score(i, "v1") >= 0.5) == (score(i, "v2") >= 0.5))
        .count() as u64;
    close(
        "agreement",
        &overall["agreement"]["rate"],
        agree as f64 / N as f64,
    );

    // The challenger is far better: promote, read on ROC AUC.
    let decision = &report["decision"];
    assert_eq!(decision["verdict"], "promote", "{decision}");
    assert_eq!(decision["metric"], "roc_auc");
    assert_eq!(decision["labelled_requests"], LABELLED);

    // Windows: days of the champion's event time, their pairs adding up to the range's.
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 4);
    assert_eq!(windows[0]["start"], "2026-11-20T00:00:00Z");
    let labelled: u64 = windows
        .iter()
        .map(|w| w["paired_labelled"].as_u64().unwrap())
        .sum();
    assert_eq!(labelled, LABELLED as u64);
    // The first day's pairs are requests 0..192, all labelled.
    assert_eq!(windows[0]["paired_labelled"], 192);

    // The model lists its challenger, and the versions view shows the API's comparison over
    // the same span.
    let shadows = &server.get_ok("/v1/models/fraud")["shadow_versions"];
    assert_eq!(shadows[0]["version"], "v2");
    assert_eq!(shadows[0]["predictions"], N);
    let span = "window=1d&from=2026-11-20T00:00:00Z&to=2026-11-24T00:00:00Z";
    let (status, html, _) = server.get_text(&format!("/models/fraud/versions?{span}"));
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"data-challenger="v2""#), "{html}");
    assert!(html.contains(r#"data-verdict="promote""#), "{html}");
    assert!(html.contains(r#"data-compare-metric="roc_auc""#), "{html}");
    let reason = report["decision"]["reason"]
        .as_str()
        .unwrap()
        .replace('<', "&lt;");
    assert!(html.contains(&reason), "{reason} not in the page");

    // A Parquet export holds the served predictions (a file has no role column; an import
    // stores what it reads as served).
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("fraud.parquet");
    let (ok, stdout, err) = common::modelwatch(&[
        "export",
        "predictions",
        "--model",
        "fraud",
        "--server",
        &server.url,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains(&format!("wrote {} rows", N + 1)),
        "{stdout}"
    );
}

#[test]
fn a_close_challenger_needs_more_labelled_requests() {
    const N: usize = 120;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // The versions differ on a few requests only: the challenger is right on 7 of them, the
    // champion on 4.
    let class = |i: usize, version: &str| -> u8 {
        let truth = u8::from(positive(i));
        match version {
            "v1" if i % 10 == 3 && i < 70 => 1 - truth,
            "v2" if i % 10 == 7 && i < 40 => 1 - truth,
            _ => truth,
        }
    };
    let row = |i: usize, version: &str, role: Option<&str>| {
        let mut r = json!({"request_id": format!("q{i}"), "timestamp": time(i),
            "model_version": version, "features": {"x": 1.0}, "prediction": class(i, version)});
        if let Some(role) = role {
            r["role"] = json!(role);
        }
        r
    };
    let rows: Vec<Value> = (0..N)
        .map(|i| row(i, "v1", None))
        .chain((0..N).map(|i| row(i, "v2", Some("shadow"))))
        .collect();
    server.post_ok("/v1/models/churn/predictions", rows);
    server.post_ok(
        "/v1/models/churn/labels",
        (0..N)
            .map(|i| json!({"request_id": format!("q{i}"), "label": u8::from(positive(i))}))
            .collect(),
    );
    let report = server.get_ok("/v1/models/churn/compare?champion=v1&challenger=v2&window=1d");
    let accuracy = metric(&report["overall"], "accuracy");
    let (b, c) = (
        (0..N)
            .filter(|&i| {
                class(i, "v1") == u8::from(positive(i)) && class(i, "v2") != u8::from(positive(i))
            })
            .count() as u64,
        (0..N)
            .filter(|&i| {
                class(i, "v1") != u8::from(positive(i)) && class(i, "v2") == u8::from(positive(i))
            })
            .count() as u64,
    );
    assert_eq!((b, c), (4, 7));
    close(
        "p",
        &test_named(accuracy, "mcnemar_exact")["p_value"],
        paired::mcnemar_exact(b, c).unwrap().p_value,
    );
    // Needed at the observed difference: n · (2.8016 / z)², z = (c − b) / √(b + c).
    let z = (c as f64 - b as f64) / ((b + c) as f64).sqrt();
    let total = paired::labelled_requests_needed(N as u64, z).unwrap();
    assert_eq!(accuracy["labelled_requests_needed"], total);
    let decision = &report["decision"];
    assert_eq!(decision["verdict"], "need_more_data", "{decision}");
    assert_eq!(decision["metric"], "accuracy");
    assert_eq!(decision["labelled_requests_still_needed"], total - N as u64);
    assert!(decision["reason"]
        .as_str()
        .unwrap()
        .contains("not significant"));
}

#[test]
fn an_ab_test_on_disjoint_traffic_uses_two_sample_tests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    // Half the traffic to each version; the challenger's errors are smaller.
    let truth = |i: usize| 10.0 + (unit(i, 5) * 100.0).round() / 10.0;
    let error = |i: usize| (unit(i, 6) * 40.0).round() / 10.0 - 2.0;
    let version = |i: usize| if i.is_multiple_of(2) { "v1" } else { "v2" };
    let predicted = |i: usize| {
        let scale = if version(i) == "v1" { 1.0 } else { 0.5 };
        truth(i) + scale * error(i)
    };
    let rows: Vec<Value> = (0..400)
        .map(|i| {
            json!({"request_id": format!("a{i}"), "timestamp": time(i), "model_version": version(i),
                   "features": {"x": 1.0}, "prediction": predicted(i)})
        })
        .collect();
    server.post_ok("/v1/models/price/predictions", rows);
    server.post_ok(
        "/v1/models/price/labels",
        (0..400)
            .map(|i| json!({"request_id": format!("a{i}"), "label": truth(i)}))
            .collect(),
    );
    let report = server.get_ok("/v1/models/price/compare?champion=v1&challenger=v2");
    assert_eq!(report["mode"], "independent");
    assert_eq!(report["task"], "regression");
    let overall = &report["overall"];
    assert_eq!(
        (
            &overall["champion_labelled"],
            &overall["challenger_labelled"]
        ),
        (&json!(200), &json!(200))
    );
    assert_eq!(overall["paired_requests"], 0);
    let abs = |v: &str| -> Vec<f64> {
        (0..400)
            .filter(|&i| version(i) == v)
            .map(|i| (truth(i) - predicted(i)).abs())
            .collect()
    };
    let (a, b) = (abs("v1"), abs("v2"));
    let welch = paired::welch_t(&paired::Summary::of(&b), &paired::Summary::of(&a)).unwrap();
    let mae = metric(overall, "mae");
    close(
        "welch t",
        &test_named(mae, "welch_t")["statistic"],
        welch.statistic,
    );
    close(
        "welch p",
        &test_named(mae, "welch_t")["p_value"],
        welch.p_value,
    );
    close(
        "champion mae",
        &mae["champion"]["value"],
        a.iter().sum::<f64>() / 200.0,
    );
    assert_eq!(
        report["decision"]["verdict"], "promote",
        "{}",
        report["decision"]
    );
    assert_eq!(report["decision"]["labelled_requests"], 400);
}

#[test]
fn bad_compare_parameters_are_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.post_ok(
        "/v1/models/fraud/predictions",
        vec![prediction(0, "v1", "served")],
    );
    let (status, body) = server.get("/v1/models/fraud/compare?challenger=v2");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`champion`"),
        "{body}"
    );
    let (status, body) = server.get("/v1/models/fraud/compare?champion=v1&challenger=v1");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("two versions"),
        "{body}"
    );
    let (status, body) =
        server.get("/v1/models/fraud/compare?champion=v1&challenger=v2&window=fortnight");
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.get("/v1/models/nobody/compare?champion=v1&challenger=v2");
    assert_eq!(status, 404);
    // A shadow row without its version, or with a role we do not know: a rejected row naming
    // the field, its neighbours stored.
    let (status, body) = server.post(
        "/v1/models/fraud/predictions",
        r#"[{"request_id": "s", "role": "shadow", "prediction": 1},
            {"request_id": "t", "model_version": "v2", "role": "canary", "prediction": 1},
            {"request_id": "u", "model_version": "v2", "role": "shadow", "prediction": 1}]"#,
    );
    assert_eq!(status, 200, "{body}");
    let fields: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["model_version", "role"]);
    assert_eq!(body["accepted"], 1);
    // No labelled pair yet: need more data, with no count to quote.
    let report = server.get_ok("/v1/models/fraud/compare?champion=v1&challenger=v2");
    assert_eq!(report["decision"]["verdict"], "need_more_data");
    assert_eq!(
        report["decision"]["labelled_requests_still_needed"],
        Value::Null
    );
    assert_eq!(
        (
            &report["overall"]["champion_requests"],
            &report["overall"]["challenger_requests"]
        ),
        (&json!(1), &json!(1))
    );
    // A version with no prediction in the range is named.
    let report = server.get_ok("/v1/models/fraud/compare?champion=v1&challenger=v9");
    assert_eq!(
        report["decision"]["reason"],
        "no prediction of version `v9` in this range"
    );
}

/// A reference of `version`'s scores, labelled, as NDJSON: rows 10_000.. (not the compared
/// requests).
fn reference_of(version: &str) -> String {
    (10_000..11_500)
        .map(|i| {
            let s = score(i, version);
            json!({"features": {"x": unit(i, 4)}, "prediction": u8::from(s >= 0.5), "score": s,
                   "label": u8::from(positive(i))})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// CBPE fitted on `version`'s reference and applied to its predictions of `ids`: what
/// `crates/stats/tests/cbpe_nannyml.rs` checks against NannyML.
fn cbpe_of(
    version: &str,
    ids: impl Iterator<Item = usize>,
) -> modelwatch_stats::estimate::BinaryEstimates {
    use modelwatch_stats::estimate::{BinaryCbpe, ReferenceRow};
    let reference: Vec<ReferenceRow> = (10_000..11_500)
        .map(|i| ReferenceRow {
            score: score(i, version),
            predicted: score(i, version) >= 0.5,
            label: positive(i),
        })
        .collect();
    let cbpe = BinaryCbpe::fit(&reference).unwrap();
    let rows: Vec<(f64, bool)> = ids
        .map(|i| (score(i, version), score(i, version) >= 0.5))
        .collect();
    cbpe.estimate(&rows)
}

#[track_caller]
/// A comparison's `estimated` block: both versions estimated on the same `n` requests, each
/// metric equal to the estimate of each version alone (`champion`, `challenger`), and the
/// difference challenger − champion. Returns the metrics' names in the reply's order.
fn same_estimated_pair(
    estimated: &Value,
    n: usize,
    champion: &modelwatch_stats::estimate::BinaryEstimates,
    challenger: &modelwatch_stats::estimate::BinaryEstimates,
) -> Vec<String> {
    assert_eq!(
        (
            &estimated["champion_requests"],
            &estimated["challenger_requests"]
        ),
        (&json!(n), &json!(n))
    );
    let metrics = estimated["metrics"].as_array().unwrap();
    for m in metrics {
        same_estimate("champion", m, champion);
        same_estimate("challenger", m, challenger);
        let diff =
            m["challenger"]["value"].as_f64().unwrap() - m["champion"]["value"].as_f64().unwrap();
        close("difference", &m["difference"], diff);
    }
    metrics
        .iter()
        .map(|m| m["metric"].as_str().unwrap().to_owned())
        .collect()
}

fn same_estimate(what: &str, ours: &Value, want: &modelwatch_stats::estimate::BinaryEstimates) {
    use modelwatch_stats::estimate::EstimatedMetric;
    let m = EstimatedMetric::parse(ours["metric"].as_str().unwrap()).unwrap();
    let side = if what.starts_with("champion") {
        "champion"
    } else {
        "challenger"
    };
    let e = want.get(m).unwrap();
    close(&format!("{what} {m:?}"), &ours[side]["value"], e.value);
    close(
        &format!("{what} {m:?} low"),
        &ours[side]["ci_low"],
        e.ci_low,
    );
    close(
        &format!("{what} {m:?} high"),
        &ours[side]["ci_high"],
        e.ci_high,
    );
}

/// Before labels arrive, `/compare` reports both versions' label-free estimates over the
/// requests both scored, each calibrated on its own reference; a challenger without a
/// reference of its own is skipped, with the reason, and the verdict waits for labels while
/// saying what the estimates favour.
#[test]
fn before_labels_the_comparison_reports_each_versions_estimates() {
    const N: usize = 600;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    server.put_reference("loans", "", "application/x-ndjson", reference_of("v1"));
    let rows: Vec<Value> = (0..N)
        .map(|i| prediction(i, "v1", "served"))
        .chain((0..N).map(|i| prediction(i, "v2", "shadow")))
        // A request only the champion scored is not compared.
        .chain([prediction(N, "v1", "served")])
        .collect();
    server.post_ok("/v1/models/loans/predictions", rows);
    let url = "/v1/models/loans/compare?champion=v1&challenger=v2&window=1d&from=2026-11-20T00:00:00Z&to=2026-11-24T00:00:00Z";

    // The challenger has no reference of its own: the champion's calibration says nothing of
    // its scores, so it is not estimated.
    let report = server.get_ok(url);
    assert_eq!(
        report["estimation"]["champion"]["reference"],
        "all_versions"
    );
    assert!(report["estimation"]["challenger"].is_null(), "{report}");
    assert_eq!(report["skipped"][0]["version"], "v2");
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("reference?version=v2"),
        "{}",
        report["skipped"]
    );
    let estimated = &report["overall"]["estimated"];
    assert_eq!(estimated["champion_requests"], N);
    let auc = &estimated["metrics"][0];
    assert_eq!(auc["metric"], "roc_auc");
    assert!(auc["challenger"].is_null() && auc["difference"].is_null());
    same_estimate("champion", auc, &cbpe_of("v1", 0..N));
    assert!(report["decision"].get("estimated_hint").is_none());

    // With its own reference, both are estimated on the same requests.
    server.put_reference(
        "loans",
        "?version=v2",
        "application/x-ndjson",
        reference_of("v2"),
    );
    let report = server.get_ok(url);
    assert!(report.get("skipped").is_none(), "{}", report["skipped"]);
    assert_eq!(report["estimation"]["method"], "cbpe");
    assert_eq!(report["estimation"]["challenger"]["reference"], "version");
    assert_eq!(report["estimation"]["challenger"]["reference_rows"], 1500);
    let overall = &report["overall"];
    assert_eq!(overall["paired_labelled"], 0);
    let estimated = &overall["estimated"];
    let names = same_estimated_pair(estimated, N, &cbpe_of("v1", 0..N), &cbpe_of("v2", 0..N));
    // The decision's metric first.
    assert_eq!(names[0], "roc_auc");
    assert_eq!(report["decision"]["metric"], "roc_auc");
    assert!(
        names.iter().any(|n| n == "accuracy") && names.iter().any(|n| n == "f1"),
        "{names:?}"
    );
    // Per window: the day's requests both scored (192 a day from the 20th).
    let day = &report["windows"][1];
    assert_eq!(day["start"], "2026-11-21T00:00:00Z");
    assert_eq!(day["estimated"]["champion_requests"], 192);
    same_estimate(
        "challenger (day 2)",
        &day["estimated"]["metrics"][0],
        &cbpe_of("v2", 192..384),
    );

    // No labels: the verdict waits for them, and says what the estimates favour. The
    // challenger separates the classes far better (ROC AUC intervals apart).
    let d = &report["decision"];
    assert_eq!(d["verdict"], "need_more_data", "{d}");
    let auc = &estimated["metrics"][0];
    assert!(
        auc["challenger"]["ci_low"].as_f64().unwrap()
            > auc["champion"]["ci_high"].as_f64().unwrap(),
        "{auc}"
    );
    assert_eq!(d["estimated_hint"], "estimated_promote", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("favour the challenger") && reason.contains("waits for labels"),
        "{reason}"
    );

    // Once labels settle it, the verdict is the labels' and the hint stays beside it.
    server.post_ok("/v1/models/loans/labels", (0..N).map(label).collect());
    let d = server.get_ok(url)["decision"].clone();
    assert_eq!(d["verdict"], "promote", "{d}");
    assert_eq!(d["estimated_hint"], "estimated_promote");
    assert!(!d["reason"].as_str().unwrap().contains("waits"), "{d}");
}

/// A regressor's truth, and `version`'s prediction of it, for row `i`: the errors grow with
/// the feature `x` (which DLE's error model learns), and the challenger's are 0.4 times the
/// champion's. Predictions rounded to 4 decimals.
fn regression_row(i: usize, version: &str) -> (f64, f64, f64) {
    let x = (unit(i, 7) * 1e4).round() / 1e4;
    let truth = ((20.0 + 10.0 * x) * 1e4).round() / 1e4;
    let sign = if unit(i, 8) < 0.5 { -1.0 } else { 1.0 };
    let error = (1.0 + 3.0 * x) * (0.5 + unit(i, 9)) * sign;
    let scale = if version == "v1" { 1.0 } else { 0.4 };
    (x, truth, ((truth + scale * error) * 1e4).round() / 1e4)
}

/// DLE fitted on `version`'s reference (rows 10_000..11_000) and applied to its predictions of
/// `ids`: what `crates/stats/tests/dle_nannyml.rs` checks against NannyML.
fn dle_of(
    version: &str,
    ids: impl Iterator<Item = usize>,
) -> modelwatch_stats::estimate::BinaryEstimates {
    use modelwatch_stats::estimate::{Cell, ColumnKind, Dle, DleRow, DleWindow};
    let reference: Vec<DleRow> = (10_000..11_000)
        .map(|i| {
            let (x, truth, predicted) = regression_row(i, version);
            DleRow {
                features: vec![Cell::Number(x)],
                prediction: predicted,
                label: truth,
            }
        })
        .collect();
    let dle = Dle::fit(&[ColumnKind::Numeric], &reference).unwrap();
    let mut w = DleWindow::default();
    for i in ids {
        let (x, _, predicted) = regression_row(i, version);
        w.observe(dle.predict(&[Cell::Number(x)], predicted));
    }
    dle.estimates(&w)
}

/// Before labels arrive, a regressor's `/compare` reports both versions' DLE estimates of MAE
/// and RMSE over the requests both scored, each fitted on its own version's reference, and
/// hints the challenger whose estimated errors lie wholly below the champion's.
#[test]
fn before_labels_a_regressors_comparison_reports_each_versions_estimated_errors() {
    const N: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let reference = |version: &str| {
        (10_000..11_000)
            .map(|i| {
                let (x, truth, predicted) = regression_row(i, version);
                json!({"features": {"x": x}, "prediction": predicted, "label": truth}).to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    server.put_reference(
        "price",
        "?version=v1",
        "application/x-ndjson",
        reference("v1"),
    );
    let rows: Vec<Value> = ["v1", "v2"]
        .into_iter()
        .flat_map(|v| {
            (0..N).map(move |i| {
                let (x, _, predicted) = regression_row(i, v);
                let mut row = json!({"request_id": format!("q{i}"), "timestamp": time(i),
                    "model_version": v, "features": {"x": x}, "prediction": predicted});
                if v == "v2" {
                    row["role"] = json!("shadow");
                }
                row
            })
        })
        .collect();
    server.post_ok("/v1/models/price/predictions", rows);
    let url = "/v1/models/price/compare?champion=v1&challenger=v2&window=1d&from=2026-11-20T00:00:00Z&to=2026-11-24T00:00:00Z";

    // Without a reference of its own the challenger's errors have no model: skipped.
    let report = server.get_ok(url);
    assert_eq!(report["task"], "regression");
    assert_eq!(report["skipped"][0]["version"], "v2", "{report}");
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("reference?version=v2"),
        "{}",
        report["skipped"]
    );

    server.put_reference(
        "price",
        "?version=v2",
        "application/x-ndjson",
        reference("v2"),
    );
    let report = server.get_ok(url);
    assert!(report.get("skipped").is_none(), "{}", report["skipped"]);
    assert_eq!(report["mode"], "paired");
    let estimation = &report["estimation"];
    assert_eq!(estimation["method"], "dle");
    assert_eq!(estimation["champion"]["reference"], "version");
    assert_eq!(estimation["challenger"]["reference_rows"], 1000);
    let estimated = &report["overall"]["estimated"];
    let names = same_estimated_pair(estimated, N, &dle_of("v1", 0..N), &dle_of("v2", 0..N));
    assert_eq!(names, ["mae", "rmse"]);

    // No labels: the verdict waits; the challenger's estimated MAE lies wholly below.
    let d = &report["decision"];
    assert_eq!(d["metric"], "mae");
    assert_eq!(d["verdict"], "need_more_data", "{d}");
    let mae = &estimated["metrics"][0];
    assert!(
        mae["challenger"]["ci_high"].as_f64().unwrap()
            < mae["champion"]["ci_low"].as_f64().unwrap(),
        "{mae}"
    );
    assert_eq!(d["estimated_hint"], "estimated_promote", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("DLE") && reason.contains("favour the challenger"),
        "{reason}"
    );
}
