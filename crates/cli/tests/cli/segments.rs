//! One `segment` grammar with one meaning on `/metrics` and `/drift` (and `/quality` and
//! `modelwatch metrics`), through the real binary: a feature or `tag:<name>` alone is a
//! breakdown by value, `feature:value` or `tag:<name>:<value>` that value's slice. The forms
//! that worked before keep their answers.

use crate::common;

use common::{modelwatch, Server};
use serde_json::{json, Value};

const DAYS: [&str; 2] = ["2026-02-02", "2026-02-03"];

/// One event of the test traffic: its row and whether its prediction is right.
struct Row {
    country: &'static str,
    region: &'static str,
    right: bool,
}

/// 120 rows a day. Country DE for even rows, FR for odd; tag region eu for rows 0-1 mod 3,
/// us for the rest (so a region holds both countries); a feature `plan:tier` (a name with
/// `:`) gold or basic. DE is always right; FR is wrong on every fourth odd row; so each slice
/// has an accuracy of its own.
fn rows() -> Vec<Row> {
    (0..120)
        .map(|i| Row {
            country: if i % 2 == 0 { "DE" } else { "FR" },
            region: if i % 3 < 2 { "eu" } else { "us" },
            right: i % 2 == 0 || i % 8 != 1,
        })
        .collect()
}

fn load(s: &Server) {
    let mut preds = Vec::new();
    let mut labels = Vec::new();
    for day in DAYS {
        for (i, r) in rows().iter().enumerate() {
            let y = i32::from(i % 4 < 2);
            let p = if r.right { y } else { 1 - y };
            let id = format!("{day}-{i}");
            preds.push(json!({
                "request_id": id, "timestamp": format!("{day}T10:00:00Z"),
                "features": {"country": r.country, "age": 20 + (i % 40),
                             "plan:tier": if i % 5 == 0 { "gold" } else { "basic" }},
                "tags": {"region": r.region},
                "prediction": p, "score": if p == 1 { 0.8 } else { 0.2 }
            }));
            labels.push(json!({"request_id": id, "label": y}));
        }
    }
    s.post_ok("/v1/models/m/predictions", preds);
    s.post_ok("/v1/models/m/labels", labels);
    let mut csv = String::from("country,age,plan:tier\n");
    for i in 0..200 {
        csv += &format!(
            "{},{},{}\n",
            if i % 2 == 0 { "DE" } else { "FR" },
            20 + i % 40,
            if i % 5 == 0 { "gold" } else { "basic" }
        );
    }
    s.put_reference("m", "", "text/csv", csv);
}

/// Rows of one day in the slice, and how many of them are right.
fn expected(keep: impl Fn(&Row) -> bool) -> (u64, u64) {
    let rows: Vec<Row> = rows().into_iter().filter(|r| keep(r)).collect();
    (
        rows.len() as u64,
        rows.iter().filter(|r| r.right).count() as u64,
    )
}

fn accuracy(v: &Value) -> f64 {
    v["accuracy"]["value"].as_f64().unwrap()
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn a_slice_means_the_same_events_on_metrics_and_drift() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    load(&s);
    let range = "window=1d&from=2026-02-02T00:00:00Z&to=2026-02-04T00:00:00Z";

    for (segment, keep) in [
        (
            "country:DE",
            &(|r: &Row| r.country == "DE") as &dyn Fn(&Row) -> bool,
        ),
        ("country:FR", &|r: &Row| r.country == "FR"),
        ("tag:region:eu", &|r: &Row| r.region == "eu"),
        ("tag:region:us", &|r: &Row| r.region == "us"),
    ] {
        let (n, right) = expected(keep);
        let m = s.get_ok(&format!("/v1/models/m/metrics?{range}&segment={segment}"));
        // A slice is a report of its own: the parameter echoed, no breakdown.
        assert_eq!(m["segment"], segment, "{m}");
        assert!(m.get("segments").is_none(), "{segment}: {m}");
        let windows = m["windows"].as_array().unwrap();
        assert_eq!(windows.len(), 2, "{segment}: {m}");
        for w in windows {
            assert_eq!(w["predictions"], n, "{segment}: {w}");
            assert_eq!(w["labelled"], n, "{segment}: {w}");
            let want = right as f64 / n as f64;
            assert!((accuracy(w) - want).abs() < 1e-12, "{segment}: {w}");
        }
        let d = s.get_ok(&format!("/v1/models/m/drift?{range}&segment={segment}"));
        let q = s.get_ok(&format!("/v1/models/m/quality?{range}&segment={segment}"));
        for report in [&d, &q] {
            let windows = report["windows"].as_array().unwrap();
            assert_eq!(windows.len(), 2, "{segment}: {report}");
            for w in windows {
                assert_eq!(w["rows"], n, "{segment}: {w}");
            }
        }
    }

    // The breakdown by value (as before) has the slices' numbers, value by value.
    for (split, values) in [("country", ["DE", "FR"]), ("tag:region", ["eu", "us"])] {
        let b = s.get_ok(&format!("/v1/models/m/metrics?{range}&segment={split}"));
        assert_eq!(b["segment"], split);
        let segments = b["segments"].as_array().unwrap();
        assert_eq!(segments.len(), 2, "{b}");
        for value in values {
            let seg = segments.iter().find(|x| x["value"] == value).unwrap();
            let slice = s.get_ok(&format!(
                "/v1/models/m/metrics?{range}&segment={split}:{value}"
            ));
            assert_eq!(
                seg["predictions"],
                2 * slice["windows"][0]["predictions"].as_u64().unwrap()
            );
            for (a, b) in seg["windows"]
                .as_array()
                .unwrap()
                .iter()
                .zip(slice["windows"].as_array().unwrap())
            {
                assert_eq!(a["start"], b["start"]);
                assert_eq!(a["predictions"], b["predictions"]);
                assert_eq!(accuracy(a), accuracy(b), "{split}:{value}");
            }
        }
    }

    // A feature whose own name holds `:` is still the breakdown it was when the model has no
    // feature of the shorter name.
    let b = s.get_ok(&format!("/v1/models/m/metrics?{range}&segment=plan:tier"));
    let mut values: Vec<&str> = b["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["value"].as_str().unwrap())
        .collect();
    values.sort_unstable();
    assert_eq!(values, ["basic", "gold"], "{b}");

    // An empty segment is no segment, on both.
    let whole = s.get_ok(&format!("/v1/models/m/metrics?{range}"));
    let empty = s.get_ok(&format!("/v1/models/m/metrics?{range}&segment="));
    assert_eq!(empty["windows"], whole["windows"]);
    assert!(empty.get("segment").is_none(), "{empty}");
    let d = s.get_ok(&format!("/v1/models/m/drift?{range}&segment="));
    assert_eq!(d["windows"][0]["rows"], 120);

    // A slice is a table of windows, so CSV answers it; a breakdown is not.
    let (status, text, _) = s.get_text(&format!(
        "/v1/models/m/metrics?{range}&segment=country:DE&format=csv"
    ));
    assert_eq!(status, 200, "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let (status, text, _) = s.get_text(&format!(
        "/v1/models/m/metrics?{range}&segment=country&format=csv"
    ));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("segment"), "{text}");

    // The command reads the same parameter, through the server and from the data directory.
    let args = |target: &[&str]| {
        let mut a = vec![
            "metrics",
            "--model",
            "m",
            "--from",
            "2026-02-02T00:00:00Z",
            "--to",
            "2026-02-04T00:00:00Z",
            "--segment",
            "tag:region:eu",
            "--format",
            "json",
        ];
        a.extend_from_slice(target);
        modelwatch(&a)
    };
    let (ok, out, err) = args(&["--server", &s.url]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    let http = s.get_ok(&format!(
        "/v1/models/m/metrics?{range}&segment=tag:region:eu"
    ));
    assert_eq!(
        cli["windows"][0]["predictions"],
        http["windows"][0]["predictions"]
    );
    assert_eq!(accuracy(&cli["windows"][1]), accuracy(&http["windows"][1]));
    drop(s);
    let (ok, out, err) = args(&["--data", dir.path().to_str().unwrap()]);
    assert!(ok, "{err}");
    let local: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        local["windows"][0]["predictions"],
        http["windows"][0]["predictions"]
    );
    assert_eq!(
        accuracy(&local["windows"][1]),
        accuracy(&http["windows"][1])
    );
}

#[test]
fn a_bad_segment_is_a_400_naming_the_parameter_on_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    load(&s);
    for (segment, says) in [
        (":DE", "no feature is named"),
        ("tag:", "no tag is named"),
        ("tag::eu", "no tag is named"),
    ] {
        for path in ["metrics", "drift", "quality"] {
            let (status, body) = s.get(&format!("/v1/models/m/{path}?segment={segment}"));
            assert_eq!(status, 400, "{path}?segment={segment}: {body}");
            assert_eq!(body["error"]["code"], "invalid_query");
            let msg = message(&body);
            assert!(
                msg.starts_with("`segment`:") && msg.contains(says),
                "{path}: {msg}"
            );
        }
    }
    // Drift and quality compare one slice with the reference: a breakdown asks for a value.
    for path in ["drift", "quality"] {
        for segment in ["country", "tag:region"] {
            let (status, body) = s.get(&format!("/v1/models/m/{path}?segment={segment}"));
            assert_eq!(status, 400, "{path}?segment={segment}: {body}");
            let msg = message(&body);
            assert!(
                msg.starts_with("`segment`:") && msg.contains(&format!("{segment}:<value>")),
                "{path}: {msg}"
            );
        }
    }
    let (ok, _, err) = modelwatch(&[
        "metrics",
        "--model",
        "m",
        "--server",
        &s.url,
        "--segment",
        "tag:",
    ]);
    assert!(!ok);
    assert!(
        err.contains("segment") && err.contains("no tag is named"),
        "{err}"
    );
}
