//! Helpers shared by the tests of several crates (JSON equal up to rounding, the process's CPU
//! time); a dev-dependency only, never in the binary.
//! (The HTTP harness around the real binary is `crates/cli/tests/cli/common.rs`: it needs the
//! binary that only the cli crate's tests are given.)

use serde_json::Value;

/// Asserts that two JSON values are equal, numbers to a relative `rel`
/// (`|a - b| <= rel * max(1, |a|, |b|)`): reports computed from the same rows merged in
/// another order differ in the last bits of their sums. Objects must have the same keys in
/// the same order, arrays the same length; `path` names the place that differs.
pub fn assert_json_close(a: &Value, b: &Value, rel: f64, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= rel * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, rel, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                assert_json_close(v, &y[k], rel, &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

/// CPU seconds (user + system) this process has used so far, from /proc/self/stat; 0 where it
/// cannot be read. Timing tests report it beside wall time: on a shared machine it moves less
/// with the load.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file (utime, stime) are 12 and 13 after the command's ')'.
    (ticks(11) + ticks(12)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::assert_json_close;
    use serde_json::json;

    #[test]
    fn sums_in_another_order_are_close() {
        let a = json!({"x": [0.1 + 0.2 + 0.3, "s"], "n": 3});
        let b = json!({"x": [0.3 + 0.2 + 0.1, "s"], "n": 3});
        assert_json_close(&a, &b, 1e-12, "");
    }

    #[test]
    #[should_panic(expected = ".x[0]: 1 vs 1.001")]
    fn a_real_difference_names_its_place() {
        assert_json_close(&json!({"x": [1.0]}), &json!({"x": [1.001]}), 1e-9, "");
    }

    #[test]
    #[should_panic]
    fn other_keys_differ() {
        assert_json_close(&json!({"x": 1}), &json!({"y": 1}), 1e-9, "");
    }
}
