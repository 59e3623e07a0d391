//! The compact binary form of a prediction's outcome (prediction, score, class scores) kept in
//! its `request_index` row, and of the label deltas built from it.
//!
//! Why it exists: a late label is applied to its hour's stored aggregate from these bytes
//! alone (ADR 003, "new labels without a rescan"), so the label writer, which reads the index
//! row anyway to find the hour, hands the refresh everything it needs without a chunk decode.
//! Floats are stored as their exact bits: a metric folded from a delta equals one folded from
//! the raw event. The first byte also says whether the prediction carries the exploration tag
//! ([`modelwatch_core::EXPLORATION_TAG`]), so that a late label joins its prediction's side of
//! the exploration split; rows written before that flag existed say neither.

use modelwatch_core::{Outcome, Timestamp};

use crate::{NewLabel, StoreError};

const NONE: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3;
const TEXT: u8 = 4;
/// The numbers 0 and 1, the predictions of most binary classifiers, in the tag alone.
const ZERO: u8 = 5;
const ONE: u8 = 6;
/// Flags of a prediction's first byte, beside the outcome tag in the low bits.
const HAS_SCORE: u8 = 0x10;
const HAS_SCORES: u8 = 0x20;
/// The row says whether the prediction is exploration traffic (set on every row written since),
/// and whether it is.
const EXPLORATION_KNOWN: u8 = 0x40;
const EXPLORATION: u8 = 0x80;
const TAG: u8 = 0x0f;

/// Appends the outcome of one prediction to `out`: one byte (prediction tag, score and class
/// scores present, exploration traffic or not), the prediction's value when the tag does not
/// say it, the score, the class scores. A binary classifier's row (prediction 0 or 1, score)
/// takes 9 bytes.
pub(crate) fn put_prediction(
    out: &mut Vec<u8>,
    prediction: Option<&Outcome>,
    score: Option<f64>,
    scores: Option<&[(String, f64)]>,
    exploration: bool,
) {
    let at = out.len();
    put_outcome(out, prediction);
    out[at] |= EXPLORATION_KNOWN;
    if exploration {
        out[at] |= EXPLORATION;
    }
    if score.is_some() {
        out[at] |= HAS_SCORE;
    }
    if scores.is_some() {
        out[at] |= HAS_SCORES;
    }
    if let Some(x) = score {
        out.extend_from_slice(&x.to_le_bytes());
    }
    if let Some(s) = scores {
        put_len(out, s.len());
        for (class, p) in s {
            put_str(out, class);
            out.extend_from_slice(&p.to_le_bytes());
        }
    }
}

fn put_outcome(out: &mut Vec<u8>, o: Option<&Outcome>) {
    match o {
        None => out.push(NONE),
        Some(Outcome::Bool(false)) => out.push(FALSE),
        Some(Outcome::Bool(true)) => out.push(TRUE),
        // Bit patterns, not values: -0.0 keeps its own form.
        Some(Outcome::Number(x)) if x.to_bits() == 0f64.to_bits() => out.push(ZERO),
        Some(Outcome::Number(x)) if x.to_bits() == 1f64.to_bits() => out.push(ONE),
        Some(Outcome::Number(x)) => {
            out.push(NUMBER);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Some(Outcome::Text(s)) => {
            out.push(TEXT);
            put_str(out, s);
        }
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Appends one entry of a label delta: the prediction's event time and stored outcome bytes
/// (as read from its index row), then the label and when it became known.
pub(crate) fn put_delta_entry(
    out: &mut Vec<u8>,
    prediction_time: i64,
    outcome: &[u8],
    label: &Outcome,
    labelled_at: i64,
) {
    out.extend_from_slice(&prediction_time.to_le_bytes());
    out.extend_from_slice(outcome);
    put_outcome(out, Some(label));
    out.extend_from_slice(&labelled_at.to_le_bytes());
}

/// Reads the entries of one label delta back.
pub(crate) fn delta_entries(mut data: &[u8]) -> Result<Vec<NewLabel>, StoreError> {
    let mut rows = Vec::new();
    while !data.is_empty() {
        let mut r = Reader(data);
        let prediction_time = Timestamp(r.i64()?);
        let first = r.u8()?;
        let prediction = r.outcome_tagged(first & TAG)?;
        let score = match first & HAS_SCORE {
            0 => None,
            _ => Some(f64::from_le_bytes(r.array()?)),
        };
        let scores = match first & HAS_SCORES {
            0 => None,
            _ => {
                let n = r.len()?;
                let mut v = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let class = r.string()?;
                    v.push((class, f64::from_le_bytes(r.array()?)));
                }
                Some(v)
            }
        };
        let label = r
            .outcome()?
            .ok_or_else(|| bad("a delta entry without its label"))?;
        let labelled_at = Timestamp(r.i64()?);
        rows.push(NewLabel {
            prediction_time,
            prediction,
            score,
            scores,
            label,
            labelled_at,
            exploration: (first & EXPLORATION_KNOWN != 0).then_some(first & EXPLORATION != 0),
        });
        data = r.0;
    }
    Ok(rows)
}

fn bad(detail: &str) -> StoreError {
    StoreError::Corrupt {
        what: "label delta",
        detail: detail.to_owned(),
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, StoreError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| bad("text that is not UTF-8"))
    }

    fn outcome(&mut self) -> Result<Option<Outcome>, StoreError> {
        let tag = self.u8()?;
        self.outcome_tagged(tag)
    }

    fn outcome_tagged(&mut self, tag: u8) -> Result<Option<Outcome>, StoreError> {
        Ok(match tag {
            NONE => None,
            FALSE => Some(Outcome::Bool(false)),
            TRUE => Some(Outcome::Bool(true)),
            ZERO => Some(Outcome::Number(0.0)),
            ONE => Some(Outcome::Number(1.0)),
            NUMBER => Some(Outcome::Number(f64::from_le_bytes(self.array()?))),
            TEXT => Some(Outcome::Text(self.string()?)),
            t => return Err(bad(&format!("unknown outcome tag {t}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prediction, score, class scores, label.
    type Case<'a> = (
        Option<Outcome>,
        Option<f64>,
        Option<&'a [(String, f64)]>,
        Outcome,
    );

    #[test]
    fn delta_entries_read_back_exactly() {
        let scores = vec![("cat".to_owned(), 0.1 + 0.2), ("dog".to_owned(), 0.7)];
        let cases: Vec<Case> = vec![
            (
                Some(Outcome::Number(1.0)),
                Some(0.8125),
                None,
                Outcome::Number(0.0),
            ),
            (None, None, Some(&scores), Outcome::Text("dog".into())),
            (Some(Outcome::Bool(true)), None, None, Outcome::Bool(false)),
            (
                Some(Outcome::Text("é".into())),
                Some(f64::MIN_POSITIVE),
                Some(&[]),
                Outcome::Number(-3.25),
            ),
        ];
        // Exploration traffic or not, alternately; the last row as one written before the
        // flag existed.
        let exploration = |i: usize| (i + 1 < cases.len()).then_some(i.is_multiple_of(2));
        let mut data = Vec::new();
        for (i, (p, s, ss, l)) in cases.iter().enumerate() {
            let mut outcome = Vec::new();
            put_prediction(&mut outcome, p.as_ref(), *s, *ss, i.is_multiple_of(2));
            if exploration(i).is_none() {
                outcome[0] &= !(EXPLORATION_KNOWN | EXPLORATION);
            }
            put_delta_entry(&mut data, i as i64 * 7, &outcome, l, -(i as i64));
        }
        let back = delta_entries(&data).unwrap();
        assert_eq!(back.len(), cases.len());
        for (i, ((p, s, ss, l), b)) in cases.iter().zip(&back).enumerate() {
            assert_eq!(b.prediction_time, Timestamp(i as i64 * 7));
            assert_eq!(
                b.prediction.as_ref().map(outcome_bits),
                p.as_ref().map(outcome_bits)
            );
            assert_eq!(b.score.map(f64::to_bits), s.map(f64::to_bits));
            assert_eq!(b.scores.as_deref(), *ss);
            assert_eq!(&b.label, l);
            assert_eq!(b.labelled_at, Timestamp(-(i as i64)));
            assert_eq!(b.exploration, exploration(i), "row {i}");
        }
    }

    /// An outcome with its floats as bits, so that -0.0 and 0.0 differ.
    fn outcome_bits(o: &Outcome) -> String {
        match o {
            Outcome::Number(x) => format!("number {:x}", x.to_bits()),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_binary_classifiers_outcome_takes_nine_bytes() {
        let mut out = Vec::new();
        put_prediction(
            &mut out,
            Some(&Outcome::Number(1.0)),
            Some(0.75),
            None,
            true,
        );
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn a_truncated_delta_is_an_error_not_a_panic() {
        let mut outcome = Vec::new();
        put_prediction(
            &mut outcome,
            Some(&Outcome::Text("abc".into())),
            Some(0.5),
            None,
            false,
        );
        let mut data = Vec::new();
        put_delta_entry(&mut data, 1, &outcome, &Outcome::Bool(true), 2);
        for cut in 0..data.len() {
            assert!(delta_entries(&data[..cut]).is_err() || cut == 0);
        }
    }
}
