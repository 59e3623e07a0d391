//! Sorting a column of f64 by LSD radix sort, for the drift tests of a whole column.
//!
//! Why: looking each of a million current values up in the sorted reference (a slot table and
//! a short binary search, ~27 ns a value) was half of `modelwatch drift`'s time. Sorting the
//! column (six passes of 11 bits over order-preserving integer keys, passes whose digit is the
//! same for every value skipped) and walking it once beside the sorted reference gives the gap
//! counts (KS), the values of the gaps Wasserstein needs and the decile counts together.

/// Below this many values a comparison sort is cheaper than the radix passes' fixed cost.
const SMALL: usize = 2048;
const BITS: u32 = 11;
const BUCKETS: usize = 1 << BITS;
const PASSES: usize = 64usize.div_ceil(BITS as usize);

/// An order-preserving key: `key(a) < key(b)` whenever `a < b` (finite values; -0.0 sorts just
/// before 0.0, which compare equal, so the order is one of f64's).
#[inline]
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b ^ (1 << 63)
    }
}

#[inline]
fn value(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k ^ (1 << 63) } else { !k })
}

/// The finite values of `values`, ascending (NaN and infinities left out).
pub fn sorted_finite(values: &[f64]) -> Vec<f64> {
    let mut keys: Vec<u64> = values
        .iter()
        .filter(|x| x.is_finite())
        .map(|&x| key(x))
        .collect();
    if keys.len() < SMALL {
        keys.sort_unstable();
        return keys.into_iter().map(value).collect();
    }
    // Every pass's histogram in one read of the keys.
    let mut hist = vec![[0u32; BUCKETS]; PASSES];
    for &k in &keys {
        for (p, h) in hist.iter_mut().enumerate() {
            h[((k >> (p as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let n = keys.len() as u32;
    let mut buf = vec![0u64; keys.len()];
    for (p, h) in hist.iter().enumerate() {
        // A digit shared by every key moves nothing.
        if h.contains(&n) {
            continue;
        }
        let mut offsets = [0u32; BUCKETS];
        let mut sum = 0u32;
        for (o, &c) in offsets.iter_mut().zip(h.iter()) {
            *o = sum;
            sum += c;
        }
        let shift = p as u32 * BITS;
        for &k in &keys {
            let d = ((k >> shift) as usize) & (BUCKETS - 1);
            buf[offsets[d] as usize] = k;
            offsets[d] += 1;
        }
        std::mem::swap(&mut keys, &mut buf);
    }
    drop(buf);
    // In place: the keys' buffer becomes the values' (same size), no third allocation.
    keys.into_iter().map(value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_a_comparison_sort_and_drops_non_finite_values() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0usize, 1, 5, 2047, 2048, 50_000] {
            let mut v: Vec<f64> = (0..n)
                .map(|i| match next() % 10 {
                    0 => -((next() % 1000) as f64) / 7.0,
                    1 => ((next() % 5) as f64) - 2.0, // many ties, -0.0 never, 0.0 often
                    2 => f64::from_bits(next() >> 2), // tiny to huge positives
                    3 if i % 97 == 0 => f64::NAN,
                    4 if i % 89 == 0 => f64::NEG_INFINITY,
                    5 if i % 83 == 0 => -0.0,
                    _ => (next() % 1_000_000) as f64 / 1000.0 - 500.0,
                })
                .collect();
            let got = sorted_finite(&v);
            v.retain(|x| x.is_finite());
            v.sort_by(f64::total_cmp);
            assert_eq!(got.len(), v.len());
            for (a, b) in got.iter().zip(&v) {
                assert_eq!(a.to_bits(), b.to_bits(), "n {n}");
            }
        }
    }

    #[test]
    fn one_shared_digit_everywhere_still_sorts() {
        // Values differing only in their low mantissa bits: most passes are skipped.
        let v: Vec<f64> = (0..5000u64)
            .rev()
            .map(|i| f64::from_bits(1.0f64.to_bits() + i))
            .collect();
        let got = sorted_finite(&v);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(got.len(), 5000);
    }
}
