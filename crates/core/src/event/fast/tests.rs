//! The fast path against serde_json: whenever it reads a row, serde_json reads the same row,
//! and on the common shapes it does read them.

use super::super::RawPrediction;
use super::prediction;
use proptest::prelude::*;

fn serde(json: &str) -> Result<RawPrediction<'_>, serde_json::Error> {
    serde_json::from_str(json)
}

/// Debug output tells every f64 apart (-0.0 from 0.0, one ulp from the next).
fn same(fast: &RawPrediction, serde: &RawPrediction) -> bool {
    format!("{fast:?}") == format!("{serde:?}")
}

#[track_caller]
fn assert_fast(json: &str) {
    let fast = prediction(json).unwrap_or_else(|| panic!("the fast path refused {json}"));
    let serde = serde(json).unwrap_or_else(|e| panic!("serde_json refused {json}: {e}"));
    assert!(
        same(&fast, &serde),
        "{json}\nfast:  {fast:?}\nserde: {serde:?}"
    );
}

#[test]
fn common_rows_take_the_fast_path_and_read_as_serde_json_reads_them() {
    let rows = [
        r#"{"request_id": "r-1", "timestamp": "2026-01-02T03:04:05Z", "model_version": "v3",
        "features": {"age": 41, "country": "DE", "amount": 12.5, "device": null},
        "prediction": 1, "score": 0.91, "scores": {"fraud": 0.91, "ok": 0.09},
        "latency_ms": 12.3, "error": null, "tags": {"region": "eu"}}"#,
        r#"{"request_id":"00ab","timestamp":"2026-01-01T00:00:00Z","model_version":"v1","features":{"f00":12.3456,"f01":-0.5,"c0":"c0_3"},"prediction":0,"score":0.123456,"latency_ms":3.5}"#,
        r#"{"request_id": "r", "prediction": "cat"}"#,
        r#"{"request_id": "r", "error": "timeout"}"#,
        "{}",
        " { } \n",
        "\t{\"request_id\"\n:\r\"r\" , \"prediction\" : true }  ",
        r#"{"request_id": "r", "prediction": false, "features": {}}"#,
        r#"{"request_id": "ü-ß-日本", "prediction": "猫", "features": {"名前": "値", "é": 1}}"#,
        r#"{"request_id": "r", "prediction": -0, "score": -0.0, "latency_ms": 0}"#,
        r#"{"request_id": "r", "prediction": 18446744073709551615, "latency_ms": 18446744073709551616}"#,
        r#"{"request_id": "r", "prediction": -9223372036854775808, "score": -9223372036854775809}"#,
        r#"{"request_id": "r", "prediction": 1e5, "score": 1.5E-7, "latency_ms": 2e+2}"#,
        r#"{"request_id": "r", "prediction": 0.1000000000000000055511151231257827021181583404541015625}"#,
        r#"{"request_id": "r", "prediction": 2.2250738585072011e-308, "score": 5e-324}"#,
        r#"{"request_id": "r", "prediction": 1.7976931348623157e308}"#,
        r#"{"request_id": "r", "prediction": 0e400, "score": 0.000e-999}"#,
        r#"{"request_id": null, "timestamp": null, "model_version": null, "features": null,
            "prediction": null, "score": null, "scores": null, "latency_ms": null,
            "error": null, "tags": null}"#,
        r#"{"request_id": "r", "prediction": 1, "features": {"a": true, "b": false, "c": null}}"#,
        r#"{"request_id": "r", "model_version": "v2", "role": "shadow", "prediction": 1}"#,
        r#"{"request_id": "r", "role": null, "prediction": 1}"#,
        r#"{"request_id": "r", "prediction": 1, "explanations": {"amount": 0.31, "country": -0.05}}"#,
        r#"{"request_id": "r", "prediction": 1, "explanations": null}"#,
    ];
    for row in rows {
        assert_fast(row);
    }
}

#[test]
fn other_rows_are_left_to_serde_json() {
    let rows = [
        // Escapes and control characters in strings.
        r#"{"request_id": "r\"1", "prediction": 1}"#,
        r#"{"request_id": "r\u0031", "prediction": 1}"#,
        "{\"request_id\": \"r\t1\", \"prediction\": 1}",
        r#"{"request\u005fid": "r", "prediction": 1}"#,
        // Fields: unknown, repeated, repeated inside an object.
        r#"{"request_id": "r", "prediction": 1, "extra": 2}"#,
        r#"{"request_id": "r", "prediction": 1, "prediction": 2}"#,
        r#"{"request_id": "r", "prediction": 1, "features": {"a": 1, "a": 2}}"#,
        r#"{"request_id": "r", "prediction": 1, "scores": {"a": 0.5, "a": 0.5}}"#,
        r#"{"request_id": "r", "prediction": 1, "tags": {"a": "x", "a": "y"}}"#,
        // Values of the wrong JSON type.
        r#"{"request_id": "r", "prediction": 1, "features": {"a": [1]}}"#,
        r#"{"request_id": "r", "prediction": 1, "features": {"a": {"b": 1}}}"#,
        r#"{"request_id": 5, "prediction": 1}"#,
        r#"{"request_id": "r", "prediction": [1]}"#,
        r#"{"request_id": "r", "prediction": 1, "score": "0.5"}"#,
        r#"{"request_id": "r", "prediction": 1, "scores": {"a": null}}"#,
        r#"{"request_id": "r", "prediction": 1, "tags": {"a": 1}}"#,
        r#"{"request_id": "r", "prediction": 1, "features": [1, 2]}"#,
        // Numbers JSON does not have, or f64 cannot hold.
        r#"{"request_id": "r", "prediction": NaN}"#,
        r#"{"request_id": "r", "prediction": Infinity}"#,
        r#"{"request_id": "r", "prediction": 1e400}"#,
        r#"{"request_id": "r", "prediction": -1e400}"#,
        r#"{"request_id": "r", "prediction": 1e-400}"#,
        r#"{"request_id": "r", "prediction": 01}"#,
        r#"{"request_id": "r", "prediction": 1.}"#,
        r#"{"request_id": "r", "prediction": .5}"#,
        r#"{"request_id": "r", "prediction": +1}"#,
        r#"{"request_id": "r", "prediction": 1e}"#,
        r#"{"request_id": "r", "prediction": -}"#,
        r#"{"request_id": "r", "prediction": 0x10}"#,
        // Not one JSON object.
        r#"{"request_id": "r", "prediction": 1} x"#,
        r#"{"request_id": "r", "prediction": 1}{}"#,
        r#"{"request_id": "r", "prediction": 1,}"#,
        r#"{"request_id": "r" "prediction": 1}"#,
        r#"{"request_id": "r", "prediction": tru}"#,
        r#"{"request_id": "r", "prediction": nul}"#,
        r#"{"request_id": "r", "prediction": 1"#,
        r#"[{"request_id": "r", "prediction": 1}]"#,
        r#""r""#,
        "",
        "{",
    ];
    for row in rows {
        assert!(prediction(row).is_none(), "the fast path read {row}");
    }
}

/// A number as clients write it: Rust's and Python's shortest forms, exponents, long digit
/// strings, integers beyond u64. With it, whether the fast path must read it: all but those
/// beyond f64's range or rounding to zero.
fn number() -> impl Strategy<Value = (String, bool)> {
    let finite = || any::<f64>().prop_filter("finite", |v| v.is_finite());
    prop_oneof![
        finite().prop_map(|v| format!("{v}")),
        finite().prop_map(|v| format!("{v:e}")),
        finite().prop_map(|v| format!("{v:.17e}")),
        (-1e6f64..1e6).prop_map(|v| format!("{v}")),
        (0f64..1.0).prop_map(|v| format!("{v:.6}")),
        "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?",
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
    ]
    .prop_map(|text| {
        let v: f64 = text.parse().expect("a number");
        let significand = text.split(['e', 'E']).next().unwrap_or_default();
        let nonzero = significand.bytes().any(|b| (b'1'..=b'9').contains(&b));
        let fast = v.is_finite() && !(v == 0.0 && nonzero);
        (text, fast)
    })
}

/// A string token: plain (fast path) or with what only serde_json reads.
fn string() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        4 => "[a-zA-Z0-9_ .:-]{0,12}".prop_map(|s| (format!("\"{s}\""), true)),
        1 => "[ü日ßé a-z]{0,6}".prop_map(|s| (format!("\"{s}\""), true)),
        1 => "[a-z]{0,3}(\\\\n|\\\\\"|\\\\u00e9|\\\\\\\\)[a-z]{0,3}".prop_map(|s| (format!("\"{s}\""), false)),
    ]
}

fn scalar() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        number(),
        string(),
        Just(("true".to_string(), true)),
        Just(("false".to_string(), true)),
        Just(("null".to_string(), true)),
    ]
}

fn whitespace() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => "[ \t\r\n]{1,3}",
    ]
}

/// An object of `value`s under names from a small set (so that some repeat).
fn object(value: impl Strategy<Value = (String, bool)>) -> impl Strategy<Value = (String, bool)> {
    proptest::collection::vec(("[a-e]{1,2}", value, whitespace()), 0..8).prop_map(|members| {
        let mut names = std::collections::HashSet::new();
        let mut fast = true;
        let body: Vec<String> = members
            .into_iter()
            .map(|(name, (v, simple), ws)| {
                fast &= simple && names.insert(name.clone());
                format!("{ws}\"{name}\"{ws}:{ws}{v}{ws}")
            })
            .collect();
        (format!("{{{}}}", body.join(",")), fast)
    })
}

fn field() -> impl Strategy<Value = (&'static str, (String, bool))> {
    prop_oneof![
        string().prop_map(|s| ("request_id", s)),
        string().prop_map(|s| ("timestamp", s)),
        string().prop_map(|s| ("model_version", s)),
        object(scalar()).prop_map(|o| ("features", o)),
        scalar().prop_map(|s| ("prediction", s)),
        number().prop_map(|n| ("score", n)),
        object(number()).prop_map(|o| ("scores", o)),
        number().prop_map(|n| ("latency_ms", n)),
        string().prop_map(|s| ("error", s)),
        object(string()).prop_map(|o| ("tags", o)),
        Just(("tags", ("null".to_string(), true))),
        string().prop_map(|s| ("role", s)),
        object(number()).prop_map(|o| ("explanations", o)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn generated_rows_read_as_serde_json_reads_them(
        fields in proptest::collection::vec((field(), whitespace()), 0..10),
    ) {
        let mut seen = std::collections::HashSet::new();
        let mut simple = true;
        let body: Vec<String> = fields
            .iter()
            .map(|((name, (value, fast)), ws)| {
                simple &= *fast && seen.insert(*name);
                format!("{ws}\"{name}\"{ws}:{ws}{value}")
            })
            .collect();
        let row = format!("{{{}}}", body.join(","));
        let serde = serde(&row);
        match prediction(&row) {
            Some(fast) => {
                let serde = serde.map_err(|e| TestCaseError::fail(format!("{row}: fast read it, serde_json: {e}")))?;
                prop_assert!(same(&fast, &serde), "{}\nfast:  {:?}\nserde: {:?}", row, fast, serde);
            }
            // A row of plain strings, numbers in range and no repeated names must take the
            // fast path.
            None => prop_assert!(!simple, "the fast path refused {}", row),
        }
    }
}
