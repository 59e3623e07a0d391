//! `ExactSum` against Python's `math.fsum` (the exact sum correctly rounded, ties to even) on
//! the lists of `scripts/fixtures/gen_exact_sum_fixtures.py`: scores, squared errors, log
//! losses, cancelling errors over 30 orders of magnitude, subnormals, numbers near the largest
//! float, sums half-way between two floats. Each list summed forward, backward, and in three
//! interleaved parts merged in another order gives fsum's bits.

use modelwatch_stats::exact::ExactSum;
use serde_json::Value;

/// A float written by Python's `float.hex()`: `[-]0x1.<13 hex digits>p<exp>`, or
/// `[-]0x0.<digits>p-1022` for a subnormal, `0x0.0p+0` for zero.
fn from_hex(s: &str) -> f64 {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let s = s.strip_prefix("0x").expect("a hex float");
    let (mantissa, exp) = s.split_once('p').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let (lead, frac) = mantissa.split_once('.').unwrap();
    let frac_bits = u64::from_str_radix(frac, 16).unwrap() << (52 - 4 * frac.len() as u32);
    let bits = match lead {
        "1" => (((exp + 1023) as u64) << 52) | frac_bits,
        "0" if frac_bits == 0 => 0,
        "0" => {
            assert_eq!(exp, -1022, "{s}");
            frac_bits
        }
        _ => panic!("not a float.hex(): {s}"),
    };
    let v = f64::from_bits(bits);
    if negative {
        -v
    } else {
        v
    }
}

#[test]
fn exact_sums_equal_math_fsum_in_any_order() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let path = format!("{dir}/tests/fixtures/exact/fsum.json");
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() > 50);
    assert_eq!(from_hex("0x1.8000000000000p-1"), 0.75);
    assert_eq!(from_hex("-0x0.0000000000001p-1022"), -f64::from_bits(1));
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let terms: Vec<f64> = (c["terms"].as_array().unwrap().iter())
            .map(|t| from_hex(t.as_str().unwrap()))
            .collect();
        let want = from_hex(c["fsum"].as_str().unwrap());
        let mut forward = ExactSum::new();
        terms.iter().for_each(|t| forward.add(*t));
        let mut backward = ExactSum::new();
        terms.iter().rev().for_each(|t| backward.add(*t));
        let mut parts = [ExactSum::new(), ExactSum::new(), ExactSum::new()];
        for (i, t) in terms.iter().enumerate() {
            parts[i % 3].add(*t);
        }
        let [a, b, mut merged] = parts;
        merged.merge(&b);
        merged.merge(&a);
        for (how, s) in [
            ("forward", forward),
            ("backward", backward),
            ("merged", merged),
        ] {
            assert_eq!(
                s.value().to_bits(),
                want.to_bits(),
                "{name} {how}: {} against fsum {want}",
                s.value()
            );
        }
    }
}
