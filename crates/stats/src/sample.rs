//! Samples of a stream that do not depend on the order of the stream.
//!
//! Two stores may hand the same events over in different orders (the embedded store in the
//! order they were written, ClickHouse in the order its shards answer), and the same events must
//! give the same numbers on both. A reservoir sample depends on that order; [`LowestHash`] keeps
//! the items whose keys hash lowest under a seed (a bottom-k sample), which is a uniform sample
//! of distinct keys whatever the order, and hands them back in the order of their hashes, so
//! that what is fitted on them (cross-validation folds taken by position, say) does not depend
//! on the order either.

use std::collections::BinaryHeap;

/// The hash a key is ranked by: XXH3 (64 bits, a fixed and documented hash, so a sample is the
/// same across builds and Rust versions) of each part in turn, each part's hash the next one's
/// seed.
pub fn key_hash(seed: u64, parts: &[&str]) -> u64 {
    parts.iter().fold(seed, |h, part| {
        twox_hash::XxHash3_64::oneshot_with_seed(h, part.as_bytes())
    })
}

/// At most `capacity` items of a stream, those whose keys (a request id and its model version,
/// say) hash lowest; keys are expected to be distinct (a key seen twice is kept twice). Equal
/// hashes are ordered by the key itself, so the sample is a function of the set of (key, item)
/// pairs offered.
#[derive(Debug, Clone)]
pub struct LowestHash<T> {
    capacity: usize,
    seed: u64,
    seen: u64,
    /// The kept items' ranks, greatest on top: the one to give up when a lower one comes.
    heap: BinaryHeap<(u64, Vec<String>, usize)>,
    items: Vec<T>,
}

impl<T> LowestHash<T> {
    pub fn new(capacity: usize, seed: u64) -> LowestHash<T> {
        LowestHash {
            capacity,
            seed,
            seen: 0,
            heap: BinaryHeap::new(),
            items: Vec::new(),
        }
    }

    /// Offers the item of `key`, made by `make` only when it is kept.
    pub fn offer_with(&mut self, key: &[&str], make: impl FnOnce() -> T) {
        self.seen += 1;
        if self.capacity == 0 {
            return;
        }
        let hash = key_hash(self.seed, key);
        if self.items.len() < self.capacity {
            self.heap.push((hash, owned(key), self.items.len()));
            self.items.push(make());
            return;
        }
        let top = self.heap.peek().expect("a full sample has a top");
        let lower = hash < top.0
            || (hash == top.0 && key.iter().copied().lt(top.1.iter().map(String::as_str)));
        if lower {
            let (_, _, slot) = self.heap.pop().expect("a full sample has a top");
            self.items[slot] = make();
            self.heap.push((hash, owned(key), slot));
        }
    }

    /// Items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The kept items, lowest hash first.
    pub fn into_items(self) -> Vec<T> {
        let mut order = self.heap.into_vec();
        order.sort_unstable();
        let mut items: Vec<Option<T>> = self.items.into_iter().map(Some).collect();
        order
            .into_iter()
            .map(|(_, _, slot)| items[slot].take().expect("each slot is ranked once"))
            .collect()
    }
}

fn owned(key: &[&str]) -> Vec<String> {
    key.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(ids: &[String], capacity: usize) -> (Vec<String>, u64) {
        let mut s = LowestHash::new(capacity, 7);
        for id in ids {
            s.offer_with(&[id, "v1"], || id.clone());
        }
        let seen = s.seen();
        (s.into_items(), seen)
    }

    #[test]
    fn keeps_the_lowest_hashes_in_their_order() {
        let ids: Vec<String> = (0..1000).map(|i| format!("req-{i}")).collect();
        let (kept, seen) = sample(&ids, 10);
        assert_eq!(seen, 1000);
        let mut ranked: Vec<(u64, &String)> = ids
            .iter()
            .map(|id| (key_hash(7, &[id, "v1"]), id))
            .collect();
        ranked.sort();
        let expected: Vec<String> = ranked[..10].iter().map(|(_, id)| (*id).clone()).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn a_short_stream_is_kept_whole_in_hash_order() {
        let ids: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        let (kept, _) = sample(&ids, 10);
        let mut sorted = kept.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
        let hashes: Vec<u64> = kept.iter().map(|id| key_hash(7, &[id, "v1"])).collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]), "{hashes:?}");
    }

    #[test]
    fn the_version_is_part_of_the_key() {
        assert_ne!(key_hash(7, &["r1", "v1"]), key_hash(7, &["r1", "v2"]));
        assert_ne!(key_hash(7, &["r1", "v1"]), key_hash(8, &["r1", "v1"]));
        let mut s = LowestHash::new(0, 7);
        s.offer_with(&["r1"], || ());
        assert_eq!(s.seen(), 1);
        assert!(s.into_items().is_empty());
    }

    proptest! {
        /// The sample is the same whatever order the stream comes in.
        #[test]
        fn the_order_of_the_stream_does_not_matter(
            n in 0usize..300,
            capacity in 0usize..50,
            swaps in proptest::collection::vec((0usize..300, 0usize..300), 0..200),
        ) {
            let ids: Vec<String> = (0..n).map(|i| format!("id{i}")).collect();
            let mut shuffled = ids.clone();
            for (a, b) in swaps {
                if n > 0 {
                    shuffled.swap(a % n, b % n);
                }
            }
            prop_assert_eq!(sample(&ids, capacity), sample(&shuffled, capacity));
        }
    }
}
