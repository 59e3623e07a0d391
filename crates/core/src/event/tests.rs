use super::*;
use crate::time::parse_timestamp;

fn now() -> Timestamp {
    parse_timestamp("2026-06-01T00:00:00Z").unwrap()
}

fn pred(json: &str) -> Result<PredictionEvent, Rejection> {
    parse_prediction_row(json, 7, now(), &IngestLimits::default())
}

fn field_of(json: &str) -> (String, String) {
    let r = pred(json).unwrap_err();
    assert_eq!(r.index, 7);
    (r.field, r.reason)
}

#[test]
fn parses_the_contract_example() {
    let e = pred(
        r#"{"request_id": "r-1", "timestamp": "2026-01-02T03:04:05Z", "model_version": "v3",
        "features": {"age": 41, "country": "DE", "amount": 12.5, "device": null},
        "prediction": 1, "score": 0.91, "scores": {"fraud": 0.91, "ok": 0.09},
        "latency_ms": 12.3, "error": null, "tags": {"region": "eu"}}"#,
    )
    .unwrap();
    assert_eq!(e.request_id, "r-1");
    assert_eq!(e.timestamp.to_rfc3339(), "2026-01-02T03:04:05Z");
    assert_eq!(e.features.len(), 4);
    assert_eq!(e.features[0], ("age".into(), FeatureValue::Number(41.0)));
    assert_eq!(e.features[3], ("device".into(), FeatureValue::Null));
    assert_eq!(e.prediction, Some(Outcome::Number(1.0)));
    assert_eq!(e.scores.as_ref().unwrap()[1], ("ok".into(), 0.09));
    assert_eq!(e.tags, vec![("region".into(), "eu".into())]);
}

#[test]
fn minimal_row_defaults_timestamp_to_arrival() {
    let e = pred(r#"{"request_id": "r", "prediction": "cat"}"#).unwrap();
    assert_eq!(e.timestamp, now());
    let e = pred(r#"{"request_id": "r", "error": "timeout"}"#).unwrap();
    assert_eq!(e.error.as_deref(), Some("timeout"));
}

#[test]
fn each_bad_field_is_named() {
    let cases = [
        (r#"{"prediction": 1}"#, "request_id"),
        (r#"{"request_id": "", "prediction": 1}"#, "request_id"),
        (r#"{"request_id": 5, "prediction": 1}"#, "request_id"),
        (r#"{"request_id": "r"}"#, "prediction"),
        (
            r#"{"request_id": "r", "prediction": 1, "timestamp": "soon"}"#,
            "timestamp",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "timestamp": "1970-01-01T00:00:01Z"}"#,
            "timestamp",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "timestamp": "2999-01-01T00:00:00Z"}"#,
            "timestamp",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "score": 1.5}"#,
            "score",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "score": "high"}"#,
            "score",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "scores": {"a": 0.5, "b": 0.2}}"#,
            "scores",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "scores": {"a": 1.2, "b": -0.2}}"#,
            "scores.a",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "scores": {"a": 0.5, "a": 0.5}}"#,
            "scores.a",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "latency_ms": -3}"#,
            "latency_ms",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "surprise": true}"#,
            "surprise",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "features": {"a": [1, 2]}}"#,
            "features.a",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "features": {"a": 1, "a": 2}}"#,
            "features.a",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "features": 3}"#,
            "features",
        ),
        (
            r#"{"request_id": "r", "prediction": 1, "tags": {"k": 1}}"#,
            "tags.k",
        ),
        (
            r#"{"request_id": "r", "prediction": {"a": 1}}"#,
            "prediction",
        ),
    ];
    for (json, field) in cases {
        let (f, reason) = field_of(json);
        assert_eq!(f, field, "{json} -> {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn malformed_and_non_object_rows_are_rejected_whole() {
    let (f, reason) = field_of(r#"{"request_id": "r", "prediction": NaN}"#);
    assert_eq!(f, "prediction");
    assert!(reason.contains("not JSON numbers"), "{reason}");
    let (f, reason) = field_of("[1, 2]");
    assert_eq!(f, "");
    assert!(reason.contains("JSON object"), "{reason}");
    let (f, reason) = field_of(r#"{"request_id": "r", "prediction": 1e999}"#);
    assert_eq!(f, "prediction");
    assert!(reason.contains("out of range"), "{reason}");
    let (f, reason) = field_of(r#"{"request_id": "r", "prediction": 1"#);
    assert_eq!(f, "prediction");
    assert!(reason.starts_with("malformed JSON"), "{reason}");
}

#[test]
fn labels_parse_and_reject() {
    let l = parse_label_row(
        r#"{"request_id": "r-1", "label": 1, "timestamp": "2026-01-09T00:00:00Z"}"#,
        0,
        now(),
        &IngestLimits::default(),
    )
    .unwrap();
    assert_eq!(l.label, Outcome::Number(1.0));
    let r = parse_label_row(
        r#"{"request_id": "r-1"}"#,
        3,
        now(),
        &IngestLimits::default(),
    )
    .unwrap_err();
    assert_eq!((r.index, r.field.as_str()), (3, "label"));
    let r = parse_label_row(
        r#"{"request_id": "r-1", "label": 1, "x": 2}"#,
        0,
        now(),
        &IngestLimits::default(),
    )
    .unwrap_err();
    assert_eq!(r.field, "x");
}

#[test]
fn serializes_back_to_the_contract_shape() {
    let e = pred(r#"{"request_id": "r", "prediction": 1, "features": {"b": 2, "a": "x"}, "tags": {"t": "v"}}"#).unwrap();
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["features"]["a"], "x");
    assert_eq!(v["features"]["b"], 2);
    assert_eq!(v["prediction"], 1);
    assert!(v["timestamp"].is_string());
    assert_eq!(v["tags"]["t"], "v");
    assert!(v.get("score").is_none());
}

#[test]
fn duplicate_feature_names_are_found_wherever_they_are() {
    use proptest::prelude::*;
    let naive = |names: &[String]| {
        names
            .iter()
            .enumerate()
            .any(|(i, a)| names[..i].iter().any(|b| a == b))
    };
    proptest!(|(names in proptest::collection::vec("[a-c]{1,2}", 0..40))| {
        let pairs: Vec<(String, ())> = names.iter().map(|n| (n.clone(), ())).collect();
        let found = duplicate_name(&pairs);
        prop_assert_eq!(found.is_some(), naive(&names));
        if let Some(name) = found {
            prop_assert!(names.iter().filter(|n| n.as_str() == name).count() >= 2);
        }
    });
}

#[test]
fn kpis_parse_and_name_the_bad_field() {
    let k = parse_kpi_row(
        r#"{"name": "fraud_loss", "value": 1520.5, "timestamp": "2026-01-09T00:00:00Z"}"#,
        0,
        now(),
    )
    .unwrap();
    assert_eq!((k.name.as_str(), k.value), ("fraud_loss", 1520.5));
    assert_eq!(
        parse_kpi_row(r#"{"name": "x", "value": 1}"#, 0, now())
            .unwrap()
            .timestamp,
        now()
    );
    for (row, field) in [
        (r#"{"value": 1}"#, "name"),
        (r#"{"name": "", "value": 1}"#, "name"),
        (r#"{"name": "x"}"#, "value"),
        (r#"{"name": "x", "value": "high"}"#, "value"),
        (
            r#"{"name": "x", "value": 1, "timestamp": "yesterday"}"#,
            "timestamp",
        ),
        (r#"{"name": "x", "value": 1, "unit": "eur"}"#, "unit"),
    ] {
        let r = parse_kpi_row(row, 4, now()).unwrap_err();
        assert_eq!(
            (r.index, r.field.as_str()),
            (4, field),
            "{row}: {}",
            r.reason
        );
    }
}

#[test]
fn rows_with_the_same_feature_names_share_them_and_other_names_still_parse() {
    let names = |json: &str| -> Vec<FeatureName> {
        pred(json)
            .unwrap()
            .features
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let first =
        names(r#"{"request_id": "a", "prediction": 1, "features": {"age": 1, "city": "x"}}"#);
    let second =
        names(r#"{"request_id": "b", "prediction": 1, "features": {"age": 2, "city": "y"}}"#);
    assert_eq!(first, second);
    // Shared, not copied: the same text in memory.
    assert!(std::ptr::eq(first[0].as_str(), second[0].as_str()));
    // Other names, other order, an escaped name: read as sent, whatever the previous row had.
    let third = names(
        r#"{"request_id": "c", "prediction": 1, "features": {"city": "z", "a\u0067e": 3, "new": 4}}"#,
    );
    assert_eq!(third, ["city", "age", "new"]);
    // A name repeated within a row is still refused.
    let (field, _) =
        field_of(r#"{"request_id": "d", "prediction": 1, "features": {"city": 1, "city": 2}}"#);
    assert_eq!(field, "features.city");
}

#[test]
fn a_stream_of_rows_finds_every_duplicate_feature_name_whatever_came_before() {
    use proptest::prelude::*;
    // Rows parsed one after the other on one thread share the name cache, which lets a row
    // whose names are all known to be distinct skip the duplicate check: every row must still
    // be refused exactly when it repeats a name.
    proptest!(|(rows in proptest::collection::vec(
        proptest::collection::vec("[a-d]", 0..6), 1..30))| {
        // Each row twice: the second time its names all come from the cache.
        for names in rows.iter().flat_map(|r| [r, r]) {
            let features: Vec<String> = names.iter().map(|n| format!("\"{n}\": 1")).collect();
            let json = format!(
                r#"{{"request_id": "r", "prediction": 1, "features": {{{}}}}}"#,
                features.join(", ")
            );
            let repeated = names.iter().enumerate().any(|(i, a)| names[..i].contains(a));
            match pred(&json) {
                Ok(e) => {
                    prop_assert!(!repeated, "{json} accepted");
                    let parsed: Vec<&str> = e.features.iter().map(|(n, _)| n.as_str()).collect();
                    prop_assert_eq!(parsed, names.iter().map(String::as_str).collect::<Vec<_>>());
                }
                Err(r) => prop_assert!(repeated, "{json} refused: {}", r.reason),
            }
        }
    });
}

/// Rows that are not JSON once came back with `field: ""` and "expected value at line 1 column
/// 50": each now names the field being read and says what is wrong in plain words.
#[test]
fn rows_that_are_not_json_name_the_field_and_the_problem() {
    let deep = format!(
        r#"{{"request_id":"a","prediction":1,"features":{{"x":{}{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: [(&str, &str, &str); 8] = [
        (
            r#"{"request_id":"a","prediction":1,"score":NaN}"#,
            "score",
            "NaN",
        ),
        (
            r#"{"request_id":"a","prediction":1,"score":-Infinity}"#,
            "score",
            "NaN and Infinity",
        ),
        (
            r#"{"request_id":"a","prediction":1,"features":{"age":1e400}}"#,
            "features.age",
            "out of range",
        ),
        (&deep, "features.x", "nested too deep"),
        (
            r#"{"request_id":"a\ud800","prediction":1}"#,
            "request_id",
            "surrogate",
        ),
        (
            r#"{"request_id":"a\ud800\u0041","prediction":1}"#,
            "request_id",
            "surrogate",
        ),
        (
            r#"{"request_id":"a","request_id":"b","prediction":1}"#,
            "request_id",
            "appears twice",
        ),
        (
            r#"{"request_id":"a","prediction":1,"tags":{"k":"v",}}"#,
            "tags",
            "malformed JSON",
        ),
    ];
    for (row, field, reason) in cases {
        let (f, r) = field_of(row);
        assert!(f.starts_with(field), "{row}: field {f:?}, reason {r:?}");
        assert!(r.contains(reason), "{row}: field {f:?}, reason {r:?}");
    }
}

#[test]
fn a_row_says_its_role_and_a_shadow_names_its_version() {
    let served = pred(r#"{"request_id": "r", "prediction": 1}"#).unwrap();
    assert_eq!(served.role, Role::Served);
    let shadow =
        pred(r#"{"request_id": "r", "model_version": "v2", "role": "shadow", "prediction": 1}"#)
            .unwrap();
    assert_eq!(shadow.role, Role::Shadow);
    // Written out only for a shadow: stored served rows read as they always did.
    assert!(!serde_json::to_string(&served).unwrap().contains("role"));
    let text = serde_json::to_string(&shadow).unwrap();
    assert!(text.contains(r#""role":"shadow""#));
    assert_eq!(pred(&text).unwrap(), shadow);
    let (field, reason) = field_of(r#"{"request_id": "r", "role": "shadow", "prediction": 1}"#);
    assert_eq!(field, "model_version");
    assert!(reason.contains("shadow"), "{reason}");
    let (field, reason) = field_of(
        r#"{"request_id": "r", "model_version": "v2", "role": "canary", "prediction": 1}"#,
    );
    assert_eq!(field, "role");
    assert!(reason.contains("`canary`"), "{reason}");
}

#[test]
fn attributions_are_read_by_feature_and_a_bad_one_is_named() {
    let e = pred(
        r#"{"request_id": "r", "prediction": 1, "features": {"amount": 3},
        "explanations": {"amount": 0.31, "country": -0.05}}"#,
    )
    .unwrap();
    assert_eq!(
        e.explanations,
        vec![("amount".into(), 0.31), ("country".into(), -0.05)]
    );
    // Written out with the event (the store's encoding) and read back the same.
    let text = serde_json::to_string(&e).unwrap();
    assert_eq!(pred(&text).unwrap(), e);
    // A row without them stores nothing more than before.
    let plain = pred(r#"{"request_id": "r", "prediction": 1}"#).unwrap();
    assert!(!serde_json::to_string(&plain)
        .unwrap()
        .contains("explanations"));

    let (field, reason) =
        field_of(r#"{"request_id": "r", "prediction": 1, "explanations": {"amount": "high"}}"#);
    assert_eq!(field, "explanations.amount");
    assert!(reason.contains("expected a number"), "{reason}");
    let (field, _) =
        field_of(r#"{"request_id": "r", "prediction": 1, "explanations": {"amount": null}}"#);
    assert_eq!(field, "explanations.amount");
    let (field, reason) =
        field_of(r#"{"request_id": "r", "prediction": 1, "explanations": {"a": 1e999}}"#);
    assert!(field.starts_with("explanations"), "{field}: {reason}");
    let (field, _) = field_of(r#"{"request_id": "r", "prediction": 1, "explanations": [0.1]}"#);
    assert_eq!(field, "explanations");
    let (field, reason) =
        field_of(r#"{"request_id": "r", "prediction": 1, "explanations": {"a": 1, "a": 2}}"#);
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("explanations.a", "appears twice in the same object")
    );
}
