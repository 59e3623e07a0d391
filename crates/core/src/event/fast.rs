//! The fast path for prediction rows: a reader for the shape nearly every row has (an object of
//! the contract's fields, strings without escapes, numbers, booleans, nulls, flat objects of
//! features, scores and tags), written for it alone.
//!
//! Parsing rows with serde_json was a quarter of the server's CPU under load (ADR 006). This
//! reader does the same work without serde's visitors and without its second pass over each
//! string (one pass finds the end and checks the bytes), and parses numbers with the standard
//! library, which rounds correctly like serde_json with `float_roundtrip`.
//!
//! It answers `None` for anything else (an escape in a string, an unknown or repeated field, a
//! nested value, a number out of range, malformed JSON), and the caller then parses the row with
//! serde_json, which either reads it or says what is wrong with it. So the contract has one
//! definition, serde_json's: whenever this reader gives a row, serde_json gives the same row
//! (tested on the contract's rows and on generated ones, number for number, bit for bit).

use super::{FeaturePairs, Pairs, RawPrediction, RECENT_NAMES};
use crate::value::{FeatureValue, Outcome};

/// Reads `json` as a prediction row, or `None` when the row is not of the common shape.
pub(super) fn prediction(json: &str) -> Option<RawPrediction<'_>> {
    let mut r = Reader { text: json, pos: 0 };
    let mut raw = RawPrediction::default();
    // Fields already read, one bit each: serde refuses a repeated field.
    let mut seen = 0u16;
    r.expect(b'{')?;
    if r.peek()? == b'}' {
        r.pos += 1;
    } else {
        loop {
            let key = r.string()?;
            r.expect(b':')?;
            let bit = match key {
                "request_id" => {
                    raw.request_id = r.optional(Reader::owned_string)?;
                    1
                }
                "timestamp" => {
                    raw.timestamp = r.optional(|r| r.string().map(std::borrow::Cow::Borrowed))?;
                    2
                }
                "model_version" => {
                    raw.model_version = r.optional(Reader::owned_string)?;
                    4
                }
                "features" => {
                    raw.features = r.optional(Reader::features)?;
                    8
                }
                "prediction" => {
                    raw.prediction = r.optional(Reader::outcome)?;
                    16
                }
                "score" => {
                    raw.score = r.optional(Reader::number)?;
                    32
                }
                "scores" => {
                    raw.scores = r.optional(|r| r.pairs(Reader::number))?;
                    64
                }
                "latency_ms" => {
                    raw.latency_ms = r.optional(Reader::number)?;
                    128
                }
                "error" => {
                    raw.error = r.optional(Reader::owned_string)?;
                    256
                }
                "tags" => {
                    raw.tags = r.optional(|r| r.pairs(Reader::owned_string))?;
                    512
                }
                "role" => {
                    raw.role = r.optional(Reader::owned_string)?;
                    1024
                }
                "explanations" => {
                    raw.explanations = r.optional(|r| r.pairs(Reader::number))?;
                    2048
                }
                "cost" => {
                    raw.cost = r.optional(Reader::number)?;
                    4096
                }
                _ => return None,
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match r.next()? {
                b',' => continue,
                b'}' => break,
                _ => return None,
            }
        }
    }
    // Only whitespace may follow the object.
    r.skip_whitespace();
    (r.pos == json.len()).then_some(raw)
}

/// 10^0 to 10^22: the powers of ten an f64 holds exactly.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.pos).copied()
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// A string without escapes or control characters (serde_json refuses the latter).
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        let mut end = start;
        loop {
            match *bytes.get(end)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => end += 1,
            }
        }
        self.pos = end + 1;
        // Both ends are next to a '"', so on character boundaries.
        self.text.get(start..end)
    }

    fn owned_string(&mut self) -> Option<String> {
        self.string().map(str::to_owned)
    }

    /// `null` as `None` (as serde reads an `Option`), else what `read` reads.
    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        read(self).map(Some)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.skip_whitespace();
        let rest = self.text.get(self.pos..)?;
        rest.starts_with(word).then(|| self.pos += word.len())
    }

    /// A JSON number as the f64 serde_json makes of it: correctly rounded (integers too, as
    /// `u64 as f64` and `i64 as f64` are), `-0` as -0.0. Numbers beyond f64's range, which
    /// serde_json refuses, and those that round to zero, are left to it.
    fn number(&mut self) -> Option<f64> {
        self.skip_whitespace();
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        // The digits as an integer while it fits, and how many of them follow the point.
        let mut significand: u64 = 0;
        let mut significant_digits = 0u32;
        let mut fraction_digits = 0i32;
        let mut digits = |i: &mut usize, fraction: bool| {
            let from = *i;
            while let Some(&b @ b'0'..=b'9') = bytes.get(*i) {
                *i += 1;
                if significant_digits > 0 || b != b'0' {
                    significant_digits += 1;
                }
                significand = significand
                    .wrapping_mul(10)
                    .wrapping_add(u64::from(b - b'0'));
                fraction_digits += i32::from(fraction);
            }
            *i > from
        };
        let negative = bytes.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        // JSON allows no leading zero but the one of `0` or `0.5`.
        match bytes.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i, false);
            }
            _ => return None,
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i, true) {
                return None;
            }
        }
        let significand_end = i;
        let exponent = matches!(bytes.get(i), Some(b'e' | b'E'));
        if exponent {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            let digits_from = i;
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            if i == digits_from {
                return None;
            }
        }
        self.pos = i;
        // Clinger's fast path: a significand below 2^53 and a power of ten up to 10^22 are
        // both exact in an f64, so one multiplication or division rounds correctly. Most
        // numbers clients send (a few decimals, no exponent) take it.
        if !exponent && significant_digits <= 15 && fraction_digits <= 22 {
            let magnitude = significand as f64 / POWERS_OF_TEN[fraction_digits as usize];
            return Some(if negative { -magnitude } else { magnitude });
        }
        let text = self.text.get(start..i)?;
        let value: f64 = text.parse().ok()?;
        let nonzero = || {
            bytes[start..significand_end]
                .iter()
                .any(|b| b'1' <= *b && *b <= b'9')
        };
        if !value.is_finite() || (value == 0.0 && nonzero()) {
            return None;
        }
        Some(value)
    }

    fn outcome(&mut self) -> Option<Outcome> {
        Some(match self.peek()? {
            b'"' => Outcome::Text(self.owned_string()?),
            b't' => self.literal("true").map(|()| Outcome::Bool(true))?,
            b'f' => self.literal("false").map(|()| Outcome::Bool(false))?,
            _ => Outcome::Number(self.number()?),
        })
    }

    fn feature_value(&mut self) -> Option<FeatureValue> {
        Some(match self.peek()? {
            b'"' => FeatureValue::Text(self.owned_string()?),
            b't' => self.literal("true").map(|()| FeatureValue::Bool(true))?,
            b'f' => self.literal("false").map(|()| FeatureValue::Bool(false))?,
            b'n' => self.literal("null").map(|()| FeatureValue::Null)?,
            _ => FeatureValue::Number(self.number()?),
        })
    }

    /// The members of an object, `read` reading each value, with `on_name` making each name.
    fn members<K, V>(
        &mut self,
        mut on_name: impl FnMut(usize, &str) -> K,
        mut read: impl FnMut(&mut Self) -> Option<V>,
        out: &mut Vec<(K, V)>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let name = on_name(out.len(), self.string()?);
            self.expect(b':')?;
            out.push((name, read(self)?));
            match self.next()? {
                b',' => continue,
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `features`, with their names shared with the previous row's (the cache serde's path
    /// uses), and refused when one repeats.
    fn features(&mut self) -> Option<FeaturePairs> {
        RECENT_NAMES.with(|recent| {
            let mut recent = recent.borrow_mut();
            let mut out = recent.new_row(None);
            self.members(
                |position, name| recent.name(position, name),
                Reader::feature_value,
                &mut out,
            )?;
            recent.end_row(&out).ok()?;
            Some(FeaturePairs(out))
        })
    }

    /// `scores`, `tags` or `explanations`, refused when a name repeats.
    fn pairs<V>(&mut self, read: impl FnMut(&mut Self) -> Option<V>) -> Option<Pairs<V>> {
        let mut out = Vec::with_capacity(16);
        self.members(|_, name| name.to_owned(), read, &mut out)?;
        super::duplicate_name(&out).is_none().then_some(Pairs(out))
    }
}

#[cfg(test)]
mod tests;
