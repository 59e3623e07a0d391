//! [`ExactSum`]: a sum of `f64`s kept exactly, so that its value does not depend on the order
//! the terms were added or the states merged in.
//!
//! A mergeable state that sums floats in a plain `f64` gives results that differ in the last
//! digits depending on the order: an hour built by a rescan of its events and the same hour
//! built by adding its labels afterwards (in the order they arrived) did, and a dashboard read
//! a moment after the background refresh rebuilt the hour showed another last digit than the
//! API had a moment before. Every finite `f64` is an integer multiple of 2⁻¹⁰⁷⁴, so the sum is
//! kept as a wide integer of that unit (base-2³² digits, only those the terms touch), and its
//! value is the sum correctly rounded to the nearest `f64` (ties to even), as Python's
//! `math.fsum` gives it.
//!
//! Cost: a term is split into at most three digits added without carrying; carries are
//! propagated only every 2²⁹ additions and when the value is read or stored. A sum of scores
//! of one hour is 3 to 6 digits.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Digits are base 2³²; digit `i` of the whole number is worth `2^(32·i − 1074)`.
const DIGIT_BITS: u32 = 32;
const DIGIT_MASK: i64 = (1 << DIGIT_BITS) - 1;
/// Exponent of the unit: the smallest subnormal `f64`.
const UNIT_EXP: i32 = -1074;
/// Digits a value can need: 2⁻¹⁰⁷⁴ up to sums of 2⁶⁴ terms of magnitude below 2¹⁰²⁴
/// (2162 bits), with room to spare. A stored sum claiming more is refused.
const MAX_DIGITS: usize = 72;
/// Additions (or merges) without carrying, at most: each adds less than 2³² to a digit in
/// magnitude, so the `i64` digits stay below 2⁶² in magnitude.
const CARRY_EVERY: u32 = 1 << 29;

/// The infinite and NaN terms, summed apart: `inf + -inf` is NaN and NaN absorbs everything,
/// whatever the order, so this part is order-free as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
enum Special {
    #[default]
    None,
    PosInf,
    NegInf,
    NaN,
}

impl Special {
    fn add(self, x: f64) -> Special {
        let this = if x.is_nan() {
            Special::NaN
        } else if x > 0.0 {
            Special::PosInf
        } else {
            Special::NegInf
        };
        match (self, this) {
            (Special::None, t) => t,
            (a, b) if a == b => a,
            _ => Special::NaN,
        }
    }

    fn merge(self, other: Special) -> Special {
        match other {
            Special::None => self,
            Special::PosInf => self.add(f64::INFINITY),
            Special::NegInf => self.add(f64::NEG_INFINITY),
            Special::NaN => Special::NaN,
        }
    }

    fn value(self) -> Option<f64> {
        match self {
            Special::None => None,
            Special::PosInf => Some(f64::INFINITY),
            Special::NegInf => Some(f64::NEG_INFINITY),
            Special::NaN => Some(f64::NAN),
        }
    }
}

/// The exact sum of the `f64`s added to it; see the module doc. Equality is equality of the
/// sums (however they were reached), and the stored form is canonical: equal sums store the
/// same bytes.
#[derive(Debug, Clone, Default)]
pub struct ExactSum {
    /// Index of the first digit of `digits` in the whole number.
    lo: usize,
    /// Signed digits, least significant first; not carried (any `i64`, bounded by
    /// [`CARRY_EVERY`]).
    digits: Vec<i64>,
    /// Additions since the last carry.
    pending: u32,
    special: Special,
}

impl ExactSum {
    /// Zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one term (an infinite or NaN term makes the value infinite or NaN, as in a plain
    /// sum).
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special = self.special.add(x);
            return;
        }
        if x == 0.0 {
            return;
        }
        let bits = x.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as usize;
        let frac = bits & ((1 << 52) - 1);
        // x = m · 2^(at − 1074): subnormals have exponent field 0 and no implicit bit.
        let (m, at) = match exp {
            0 => (frac, 0),
            e => (frac | 1 << 52, e - 1),
        };
        // m < 2⁵³ shifted by less than 32: three digits (the hot path of every fold).
        let first = at / DIGIT_BITS as usize;
        let v = u128::from(m) << (at % DIGIT_BITS as usize);
        self.cover(first, first + 3);
        let sign = if bits >> 63 != 0 { -1 } else { 1 };
        let d = &mut self.digits[first - self.lo..first - self.lo + 3];
        d[0] += sign * ((v as i64) & DIGIT_MASK);
        d[1] += sign * (((v >> DIGIT_BITS) as i64) & DIGIT_MASK);
        d[2] += sign * ((v >> (2 * DIGIT_BITS)) as i64);
        self.pending += 1;
        if self.pending >= CARRY_EVERY {
            self.carry();
        }
    }

    /// Adds the product `a · b` exactly (the rounded product and its rounding error, each an
    /// `f64`), unless it underflows or overflows, where it adds what the `f64`s can hold.
    pub fn add_product(&mut self, a: f64, b: f64) {
        let p = a * b;
        self.add(p);
        if p.is_finite() {
            self.add(a.mul_add(b, -p));
        }
    }

    /// Adds `c` times `other`, rounding only the bits below 2⁻¹⁰⁷⁴ (toward zero); so it
    /// depends on `other`'s sum, never on how that sum was reached.
    pub fn add_scaled(&mut self, other: &ExactSum, c: f64) {
        if !c.is_finite() || other.special != Special::None {
            self.special = self.special.add(c * other.value());
            return;
        }
        if c == 0.0 {
            return;
        }
        let bits = c.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as i64;
        let frac = bits & ((1 << 52) - 1);
        let (m, e) = match exp {
            0 => (frac, 0),
            e => (frac | 1 << 52, e - 1),
        };
        // c = m · 2^(e − 1074); digit i of `other` is worth 2^(32·i − 1074), so the product
        // of the two is m·d at position 32·i + e − 1074 on the grid.
        let (negative, mag) = other.magnitude();
        let negative = negative != (bits >> 63 != 0);
        for (i, d) in mag.digits.iter().enumerate() {
            if *d == 0 {
                continue;
            }
            let v = u128::from(m) * u128::from(*d);
            let q = (DIGIT_BITS as i64) * (mag.lo + i) as i64 + e + i64::from(UNIT_EXP);
            if q >= 0 {
                self.add_at(q as usize, v, negative);
            } else if -q < 128 {
                let v = v >> (-q);
                if v != 0 {
                    self.add_at(0, v, negative);
                }
            }
        }
    }

    /// Adds the terms of `other`.
    pub fn merge(&mut self, other: &ExactSum) {
        self.special = self.special.merge(other.special);
        if other.digits.is_empty() {
            return;
        }
        self.cover(other.lo, other.lo + other.digits.len());
        let at = other.lo - self.lo;
        for (a, b) in self.digits[at..].iter_mut().zip(&other.digits) {
            *a += b;
        }
        self.pending += other.pending + 1;
        if self.pending >= CARRY_EVERY {
            self.carry();
        }
    }

    /// The sum rounded to the nearest `f64`, ties to even (±infinity past the largest);
    /// infinite or NaN when such a term was added.
    pub fn value(&self) -> f64 {
        if let Some(v) = self.special.value() {
            return v;
        }
        let (negative, mag) = self.magnitude();
        let v = mag.round();
        if negative {
            -v
        } else {
            v
        }
    }

    /// Adds `v` (at most 116 bits) placed at bit `at` of the whole number.
    fn add_at(&mut self, at: usize, v: u128, negative: bool) {
        let first = at / DIGIT_BITS as usize;
        let v = v << (at % DIGIT_BITS as usize);
        let len = (128 - v.leading_zeros() as usize).div_ceil(DIGIT_BITS as usize);
        self.cover(first, first + len);
        let base = first - self.lo;
        for i in 0..len {
            let piece = ((v >> (DIGIT_BITS as usize * i)) as i64) & DIGIT_MASK;
            let d = &mut self.digits[base + i];
            if negative {
                *d -= piece;
            } else {
                *d += piece;
            }
        }
        self.pending += 1;
        if self.pending >= CARRY_EVERY {
            self.carry();
        }
    }

    /// Makes `digits` cover the digit indexes `from..to`.
    #[inline]
    fn cover(&mut self, from: usize, to: usize) {
        if from >= self.lo && to <= self.lo + self.digits.len() {
            return;
        }
        self.grow(from, to);
    }

    fn grow(&mut self, from: usize, to: usize) {
        if self.digits.is_empty() {
            self.lo = from;
            self.digits = vec![0; to - from];
            return;
        }
        if from < self.lo {
            self.digits
                .splice(0..0, std::iter::repeat_n(0, self.lo - from));
            self.lo = from;
        }
        if to > self.lo + self.digits.len() {
            self.digits.resize(to - self.lo, 0);
        }
    }

    /// Carries, so that every digit but the last is in [0, 2³²).
    fn carry(&mut self) {
        let c = propagate(&mut self.digits);
        if c != 0 {
            self.digits.push(c);
        }
        self.pending = 0;
    }

    /// The sign and the magnitude in canonical digits.
    fn magnitude(&self) -> (bool, Magnitude) {
        let mut d = self.digits.clone();
        let mut c = propagate(&mut d);
        let negative = c < 0;
        if negative {
            // −V = Σ(−dᵢ)·2^(32i) − c·2^(32n): carried again, it is non-negative.
            d.iter_mut().for_each(|x| *x = -*x);
            c = propagate(&mut d) - c;
        }
        while c > 0 {
            d.push(c & DIGIT_MASK);
            c >>= DIGIT_BITS;
        }
        let mut lo = self.lo;
        let low_zeros = d.iter().take_while(|x| **x == 0).count();
        d.drain(..low_zeros);
        lo += low_zeros;
        while d.last() == Some(&0) {
            d.pop();
        }
        if d.is_empty() {
            return (false, Magnitude::default());
        }
        let digits = d.into_iter().map(|x| x as u32).collect();
        (negative, Magnitude { lo, digits })
    }
}

/// Carries through `d` so that every digit is in [0, 2³²); returns the carry out of the top.
fn propagate(d: &mut [i64]) -> i64 {
    let mut carry = 0i64;
    for x in d.iter_mut() {
        let t = *x + carry;
        *x = t & DIGIT_MASK;
        carry = t >> DIGIT_BITS;
    }
    carry
}

/// A non-negative whole number of 2⁻¹⁰⁷⁴ units: digits in [0, 2³²), the first and last
/// non-zero (none for zero), the first at index `lo`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Magnitude {
    lo: usize,
    digits: Vec<u32>,
}

impl Magnitude {
    /// The nearest `f64`, ties to even.
    fn round(&self) -> f64 {
        let n = self.digits.len();
        if n == 0 {
            return 0.0;
        }
        let take = n.min(3);
        let top = self.digits[n - take..]
            .iter()
            .rev()
            .fold(0u128, |t, d| (t << DIGIT_BITS) | u128::from(*d));
        let sticky = self.digits[..n - take].iter().any(|d| *d != 0);
        // top · 2^exp is the value without the digits below (`sticky`).
        let exp = (DIGIT_BITS as i32) * (self.lo + n - take) as i32 + UNIT_EXP;
        let bits = 128 - top.leading_zeros() as i32;
        if bits <= 53 {
            // Exact: fewer than three digits, so nothing below; a subnormal is exact too,
            // the unit being the smallest subnormal.
            return scale(top as u64, exp);
        }
        let shift = bits - 53;
        let mut mant = (top >> shift) as u64;
        let rest = top & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rest > half || (rest == half && (sticky || mant & 1 == 1)) {
            mant += 1;
        }
        scale(mant, exp + shift)
    }
}

/// `m · 2^e` for `m ≤ 2⁵³` when the result is an `f64` (or overflows: infinity).
fn scale(m: u64, e: i32) -> f64 {
    let m = m as f64;
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    if e < -1022 {
        // m · 2^(e + 1074) is an integer below 2^106, then times the smallest subnormal.
        m * pow2(e + 1074) * f64::from_bits(1)
    } else if e > 1023 {
        m * pow2(1023) * pow2(e - 1023)
    } else {
        m * pow2(e)
    }
}

impl PartialEq for ExactSum {
    fn eq(&self, other: &ExactSum) -> bool {
        self.special == other.special && self.magnitude() == other.magnitude()
    }
}

/// The stored form: the sign and the canonical magnitude, so equal sums store equal bytes.
#[derive(Serialize)]
struct Stored {
    negative: bool,
    lo: usize,
    digits: Vec<u32>,
    special: Special,
}

/// [`Stored`] as read: the digits go straight into the `i64`s of an [`ExactSum`] (one
/// allocation per sum: a query decodes some 20 sums of each of 720 hours).
#[derive(Deserialize)]
struct Read {
    negative: bool,
    lo: usize,
    digits: Digits,
    special: Special,
}

/// A sequence of `u32` digits read as `i64`s, at most [`MAX_DIGITS`].
struct Digits(Vec<i64>);

impl<'de> Deserialize<'de> for Digits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Digits;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the digits of an exact sum")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Digits, A::Error> {
                use serde::de::Error;
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_DIGITS));
                while let Some(d) = seq.next_element::<u32>()? {
                    if v.len() == MAX_DIGITS {
                        return Err(A::Error::custom("exact sum out of range"));
                    }
                    v.push(i64::from(d));
                }
                Ok(Digits(v))
            }
        }
        d.deserialize_seq(Visit)
    }
}

impl Serialize for ExactSum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (negative, Magnitude { lo, digits }) = self.magnitude();
        Stored {
            negative,
            lo,
            digits,
            special: self.special,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ExactSum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Read {
            negative,
            lo,
            digits: Digits(mut digits),
            special,
        } = Read::deserialize(d)?;
        if lo + digits.len() > MAX_DIGITS {
            return Err(D::Error::custom("exact sum out of range"));
        }
        if negative {
            digits.iter_mut().for_each(|x| *x = -*x);
        }
        Ok(ExactSum {
            lo,
            digits,
            pending: 1,
            special,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::new();
        xs.iter().for_each(|x| s.add(*x));
        s.value()
    }

    #[test]
    fn the_sum_is_the_exact_sum_correctly_rounded() {
        // Values Python's math.fsum gives.
        assert_eq!(sum(&[0.1; 10]), 1.0);
        assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
        assert_eq!(sum(&[1e308, 1e308, -1e308]), 1e308);
        assert_eq!(sum(&[]), 0.0);
        assert_eq!(sum(&[0.1, 0.2, 0.3]), 0.6);
        assert_eq!(sum(&[0.1, 0.2, -0.3]), 2.7755575615628914e-17);
        // Ties go to even; anything below a tie breaks it.
        let e = f64::EPSILON;
        assert_eq!(sum(&[1.0, e / 2.0]), 1.0);
        assert_eq!(sum(&[1.0 + e, e / 2.0]), 1.0 + 2.0 * e);
        assert_eq!(sum(&[1.0, e / 2.0, 1e-300]), 1.0 + e);
        assert_eq!(sum(&[1.0, e / 2.0, -1e-300]), 1.0);
        assert_eq!(sum(&[-1.0, -e / 2.0, -1e-300]), -1.0 - e);
        // Subnormals, and sums past the largest f64.
        let tiny = f64::from_bits(1);
        assert_eq!(sum(&[tiny, tiny, tiny]), f64::from_bits(3));
        assert_eq!(sum(&[f64::MIN_POSITIVE, -tiny]), f64::MIN_POSITIVE - tiny);
        assert_eq!(sum(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(sum(&[-f64::MAX, -f64::MAX, f64::MAX]), -f64::MAX);
        assert_eq!(sum(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(sum(&[1.5, -1.5]).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn any_order_and_any_merge_give_the_same_sum_and_the_same_bytes() {
        // Terms of every magnitude, as log losses and squared errors are.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut terms = Vec::new();
        for i in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            let sign = if i % 7 == 0 { -1.0 } else { 1.0 };
            terms.push(sign * u.powi(1 + i % 9) * 10f64.powi(i % 13 - 6));
        }
        let forward = {
            let mut s = ExactSum::new();
            terms.iter().for_each(|t| s.add(*t));
            s
        };
        let backward = {
            let mut s = ExactSum::new();
            terms.iter().rev().for_each(|t| s.add(*t));
            s
        };
        // In three parts merged in another order.
        let merged = {
            let mut parts = [ExactSum::new(), ExactSum::new(), ExactSum::new()];
            for (i, t) in terms.iter().enumerate() {
                parts[i % 3].add(*t);
            }
            let [a, b, mut c] = parts;
            c.merge(&a);
            c.merge(&b);
            c
        };
        let plain: f64 = terms.iter().sum();
        let plain_back: f64 = terms.iter().rev().sum();
        assert_ne!(plain, plain_back, "the terms do show the problem");
        assert_eq!(forward.value().to_bits(), backward.value().to_bits());
        assert_eq!(forward.value().to_bits(), merged.value().to_bits());
        assert!((forward.value() - plain).abs() <= 1e-12 * plain.abs());
        assert_eq!(forward, merged);
        let bytes = |s: &ExactSum| postcard::to_stdvec(s).unwrap();
        assert_eq!(bytes(&forward), bytes(&backward));
        assert_eq!(bytes(&forward), bytes(&merged));
        let back: ExactSum = postcard::from_bytes(&bytes(&merged)).unwrap();
        assert_eq!(back, forward);
        assert_eq!(back.value().to_bits(), forward.value().to_bits());
        let json: ExactSum = serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap();
        assert_eq!(json, forward);
    }

    #[test]
    fn products_and_scaled_sums_are_added_exactly() {
        // (1 + 2⁻³⁰)² = 1 + 2⁻²⁹ + 2⁻⁶⁰: the last term is lost in a plain product.
        let a = 1.0 + 2f64.powi(-30);
        let mut s = ExactSum::new();
        s.add_product(a, a);
        s.add(-1.0);
        s.add(-(2f64.powi(-29)));
        assert_eq!(s.value(), 2f64.powi(-60));
        // Σ(y − c)² = Σy² − 2c·Σy + n·c², for targets far from zero.
        let ys = [1e8 + 1.0, 1e8 + 2.0, 1e8 + 3.0];
        let (mut s1, mut s2) = (ExactSum::new(), ExactSum::new());
        for y in ys {
            s1.add(y);
            s2.add_product(y, y);
        }
        let c = s1.value() / 3.0;
        let mut ss = s2.clone();
        ss.add_scaled(&s1, -2.0 * c);
        let mut nc2 = ExactSum::new();
        nc2.add_product(c, c);
        ss.add_scaled(&nc2, 3.0);
        assert_eq!(ss.value(), 2.0);
        // A negative sum scaled by a negative factor.
        let mut neg = ExactSum::new();
        neg.add(-0.75);
        let mut t = ExactSum::new();
        t.add_scaled(&neg, -4.0);
        assert_eq!(t.value(), 3.0);
    }

    #[test]
    fn a_stored_sum_out_of_range_is_refused() {
        let stored = |lo, digits| Stored {
            negative: false,
            lo,
            digits,
            special: Special::None,
        };
        for s in [
            stored(MAX_DIGITS, vec![1]),
            stored(0, vec![1; MAX_DIGITS + 1]),
        ] {
            let bytes = postcard::to_stdvec(&s).unwrap();
            assert!(postcard::from_bytes::<ExactSum>(&bytes).is_err());
        }
        let bytes = postcard::to_stdvec(&stored(3, vec![1, 2])).unwrap();
        assert!(postcard::from_bytes::<ExactSum>(&bytes).is_ok());
    }
}
