//! Request buckets: the request index split by arrival, so that a commit writes only the pages
//! of the bucket being filled (ADR 005).
//!
//! Request ids are random, so every commit of many events used to touch most pages of the whole
//! index, and the WAL wrote each such page in full: throughput fell as the index grew (HTTP
//! ingest of 2M events at half the rate of 600k). Now `request_index` is keyed by (model,
//! bucket, request id). A model's newest bucket is open and takes its new predictions; once it
//! holds [`BUCKET_ROWS`] rows it is closed, and never written again except by retention. A
//! commit thus rewrites at most the open bucket's pages, however large the index is.
//!
//! A closed bucket keeps an xor filter (binary fuse, 8-bit fingerprints: 9 bits per id, under
//! 0.4 % false positives) of its ids' hashes, so that a lookup by request id (the writer's
//! de-duplication, the label join) probes only the buckets that may hold the id: the open one
//! and the closed ones whose filter lets it through (a B-tree probe for about 1 id in 256 of
//! the others). Every [`GROUP_BUCKETS`] closed buckets also get one filter over all their ids,
//! checked first: an id costs one filter check per group plus the checks inside the groups
//! that may hold it, instead of one per bucket.
//!
//! Invariants:
//! - A request id is in at most one bucket of its model (the writer looks in every bucket
//!   before storing an id), and a row never moves between buckets.
//! - A closed bucket's filter holds the hash of every id stored in it. It is written in the
//!   transaction that closes the bucket, and the bucket gets no rows after that.
//! - The open bucket is the model's highest, and the only one without a filter.

use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use xorf::{BinaryFuse8, BinaryFuse8Ref, DmaSerializable, Filter, FilterRef};

/// Rows a model's open bucket takes before it is closed (it is closed before the first batch
/// that finds it this full, so a bucket can end a batch larger). A commit rewrites up to this
/// bucket's pages; a lookup checks one filter per group of closed buckets, and the filters of
/// the buckets in no group yet. Measured in ADR 005 (2^16 then) and again in ADR 007: once
/// the index by chunk was gone, 2^15 took 3-5 % more events/s over HTTP (each commit
/// rewrites half as many pages) with the late-label join unchanged, at the cost of 11 % on
/// in-process loads of very large batches, whose few commits rewrite little anyway.
pub(crate) const BUCKET_ROWS: i64 = 1 << 15;

/// Closed buckets per group filter: 2^20 ids, as with ADR 005's 16 buckets of 2^16, so that a
/// new id is checked against as many group filters as before however large the model grows
/// (groups of 16 with buckets of 2^15 would double them), for up to 31 small bucket filters
/// instead of 15 (no difference measured at 2M events).
pub(crate) const GROUP_BUCKETS: i64 = 32;

/// The hash of a request id that the filters hold: XXH3-64, a fixed function, since filters
/// are stored and read back.
pub(crate) fn id_hash(request_id: &str) -> u64 {
    twox_hash::XxHash3_64::oneshot(request_id.as_bytes())
}

/// The closed buckets' filters, shared by the writer and the readers and loaded from the
/// database on first use. A closed bucket's filter never changes, so a cached one is right for
/// every snapshot that sees the bucket closed.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    /// By (model, bucket, whether it is the filter of the group starting at that bucket).
    by_bucket: RwLock<HashMap<(i64, i64, bool), Arc<StoredFilter>>>,
}

/// A filter as stored: the xor filter's descriptor, then its fingerprints. Empty when no
/// filter could be built (it then says "maybe" for every id, and the bucket is always probed).
#[derive(Debug)]
pub(crate) struct StoredFilter(Box<[u8]>);

impl StoredFilter {
    /// Builds the filter of a bucket's id hashes.
    fn build(mut hashes: Vec<u64>) -> StoredFilter {
        // Distinct ids can share a hash, and construction needs distinct keys.
        hashes.sort_unstable();
        hashes.dedup();
        match BinaryFuse8::try_from(&hashes) {
            Ok(f) => {
                let mut bytes = vec![0u8; BinaryFuse8::DESCRIPTOR_LEN];
                f.dma_copy_descriptor_to(&mut bytes);
                bytes.extend_from_slice(f.dma_fingerprints());
                StoredFilter(bytes.into_boxed_slice())
            }
            Err(e) => {
                tracing::warn!(
                    error = e,
                    ids = hashes.len(),
                    "no filter for a request bucket: it is always probed"
                );
                StoredFilter(Box::default())
            }
        }
    }

    /// A view that answers [`Probe::may_hold`]; made once per batch of lookups.
    pub(crate) fn probe(&self) -> Probe<'_> {
        if self.0.len() <= BinaryFuse8::DESCRIPTOR_LEN {
            return Probe(None);
        }
        let (descriptor, fingerprints) = self.0.split_at(BinaryFuse8::DESCRIPTOR_LEN);
        Probe(Some(BinaryFuse8Ref::from_dma(descriptor, fingerprints)))
    }
}

/// A closed bucket's filter, ready for checks.
pub(crate) struct Probe<'a>(Option<BinaryFuse8Ref<'a>>);

impl Probe<'_> {
    /// False only when the bucket certainly does not hold the id of `hash`.
    pub(crate) fn may_hold(&self, hash: u64) -> bool {
        self.0.as_ref().is_none_or(|f| f.contains(&hash))
    }
}

impl Filters {
    /// The filter of a closed bucket (or of the group starting at `bucket`), read from `conn`
    /// the first time.
    fn get(
        &self,
        conn: &Connection,
        model_id: i64,
        bucket: i64,
        group: bool,
    ) -> Result<Arc<StoredFilter>, StoreError> {
        let cached = self
            .by_bucket
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(model_id, bucket, group))
            .cloned();
        if let Some(f) = cached {
            return Ok(f);
        }
        let sql = if group {
            "SELECT filter FROM request_bucket_groups WHERE model_id = ?1 AND first_bucket = ?2"
        } else {
            "SELECT filter FROM request_buckets WHERE model_id = ?1 AND bucket = ?2"
        };
        let blob: Option<Vec<u8>> = conn
            .query_row(sql, params![model_id, bucket], |r| r.get(0))
            .optional()?
            .flatten();
        let filter = Arc::new(StoredFilter(blob.unwrap_or_default().into_boxed_slice()));
        self.put(model_id, bucket, group, Arc::clone(&filter));
        Ok(filter)
    }

    fn put(&self, model_id: i64, bucket: i64, group: bool, filter: Arc<StoredFilter>) {
        self.by_bucket
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((model_id, bucket, group), filter);
    }
}

/// A group of closed buckets (its filter and its buckets') or a bucket in no group.
#[derive(Debug)]
enum Part {
    Bucket(i64, Arc<StoredFilter>),
    Group(Arc<StoredFilter>, Vec<(i64, Arc<StoredFilter>)>),
}

impl Part {
    /// The buckets of this group (newest first), or this bucket, that may hold the ids of
    /// `ids` (positions into `hashes`): per such bucket, the positions of the ids it may hold,
    /// in the order given.
    ///
    /// Filter by filter, each checked against all the ids, rather than id by id: a filter is
    /// then read from memory once per batch instead of once per id. Id by id, a batch of 1M
    /// late labels on 30M stored predictions (458 buckets) missed the cache on nearly every
    /// check and took twice as long to join.
    fn candidates(&self, hashes: &[u64], ids: &[usize]) -> Vec<(i64, Vec<usize>)> {
        let through = |f: &StoredFilter, ids: &[usize]| -> Vec<usize> {
            let probe = f.probe();
            ids.iter()
                .copied()
                .filter(|&i| probe.may_hold(hashes[i]))
                .collect()
        };
        let mut out = Vec::new();
        match self {
            Part::Bucket(b, f) => out.push((*b, through(f, ids))),
            Part::Group(g, buckets) => {
                let in_group = through(g, ids);
                if !in_group.is_empty() {
                    for (b, f) in buckets.iter().rev() {
                        out.push((*b, through(f, &in_group)));
                    }
                }
            }
        }
        out.retain(|(_, ids)| !ids.is_empty());
        out
    }
}

/// The hashes of the ids stored in buckets `first..=last` of a model.
fn bucket_hashes(
    conn: &Connection,
    model_id: i64,
    first: i64,
    last: i64,
) -> Result<Vec<u64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT request_id FROM request_index WHERE model_id = ?1 AND bucket BETWEEN ?2 AND ?3",
        )?
        .query_map(params![model_id, first, last], |r| {
            Ok(id_hash(r.get_ref(0)?.as_str()?))
        })?
        .collect::<Result<Vec<u64>, _>>()?)
}

/// A model's buckets as one connection's snapshot sees them.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    /// The bucket new predictions go into; `None` before the model's first prediction.
    pub open: Option<i64>,
    /// Rows in the open bucket.
    pub open_rows: i64,
    /// The closed buckets, oldest first.
    pub closed: Vec<i64>,
    /// The groups of closed buckets with a filter of their own: (first, last) bucket.
    pub groups: Vec<(i64, i64)>,
    /// The hashes of the ids the writer stored in the open bucket since it loaded the buckets.
    /// When they are all of its ids (`open_rows` of them), the bucket's filter is built from
    /// them when it closes; otherwise (the writer restarted or reloaded the model mid-bucket)
    /// its ids are read back. Reading them back was a tenth of the writer's time.
    open_hashes: Vec<u64>,
}

impl Buckets {
    /// Reads a model's buckets.
    pub(crate) fn load(conn: &Connection, model_id: i64) -> Result<Buckets, StoreError> {
        let mut stmt = conn.prepare_cached(
            "SELECT bucket, rows, closed = 0 FROM request_buckets WHERE model_id = ?1
             ORDER BY bucket",
        )?;
        let mut out = Buckets::default();
        let mut rows = stmt.query([model_id])?;
        while let Some(r) = rows.next()? {
            let (bucket, count, open): (i64, i64, bool) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if open {
                out.open = Some(bucket);
                out.open_rows = count;
            } else {
                out.closed.push(bucket);
            }
        }
        out.groups = conn
            .prepare_cached(
                "SELECT first_bucket, last_bucket FROM request_bucket_groups WHERE model_id = ?1
                 ORDER BY first_bucket",
            )?
            .query_map([model_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(out)
    }

    /// The closed buckets as groups and lone buckets, oldest first, without their filters.
    fn plan(&self) -> Vec<(Option<i64>, Vec<i64>)> {
        let mut parts = Vec::new();
        let (closed, groups) = (&self.closed, &self.groups);
        let (mut i, mut g) = (0, 0);
        while i < closed.len() {
            let b = closed[i];
            while g < groups.len() && groups[g].1 < b {
                g += 1;
            }
            match groups.get(g) {
                Some(&(first, last)) if first <= b => {
                    let mut members = Vec::new();
                    while i < closed.len() && closed[i] <= last {
                        members.push(closed[i]);
                        i += 1;
                    }
                    parts.push((Some(first), members));
                    g += 1;
                }
                _ => {
                    parts.push((None, vec![b]));
                    i += 1;
                }
            }
        }
        parts
    }

    /// One part of [`Buckets::plan`] with its filters, loaded through `filters`.
    fn load_part(
        conn: &Connection,
        filters: &Filters,
        model_id: i64,
        (group, buckets): &(Option<i64>, Vec<i64>),
    ) -> Result<Part, StoreError> {
        let mut members = buckets
            .iter()
            .map(|&b| Ok((b, filters.get(conn, model_id, b, false)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(match group {
            Some(first) => Part::Group(filters.get(conn, model_id, *first, true)?, members),
            None => {
                let (b, f) = members.pop().expect("a lone bucket");
                Part::Bucket(b, f)
            }
        })
    }

    /// Looks for ids in the closed buckets, newest first. `look(bucket, which, found)` is
    /// called with the positions (ascending) of the ids, among those not found yet, that the
    /// bucket's filters let through, and marks in `found` the ones the bucket holds. Stops once
    /// every id is found. A group's filters are read (through `filters`) only when the search
    /// gets to it: late labels are mostly for recent predictions, so their lookups seldom
    /// need the older ones; new predictions, found nowhere, are checked against all of them.
    pub(crate) fn search_closed(
        &self,
        conn: &Connection,
        filters: &Filters,
        model_id: i64,
        hashes: &[u64],
        found: &mut [bool],
        mut look: impl FnMut(i64, &[usize], &mut [bool]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut missing: Vec<usize> = (0..found.len()).filter(|&i| !found[i]).collect();
        for plan in self.plan().iter().rev() {
            if missing.is_empty() {
                break;
            }
            let part = Self::load_part(conn, filters, model_id, plan)?;
            for (bucket, which) in part.candidates(hashes, &missing) {
                let which: Vec<usize> = which.into_iter().filter(|&i| !found[i]).collect();
                look(bucket, &which, found)?;
            }
            missing.retain(|&i| !found[i]);
        }
        Ok(())
    }

    /// The bucket for a batch of new predictions, in the writer's transaction: creates the
    /// model's first bucket, and closes the open one once it holds `bucket_rows` rows (its
    /// filter is built from its ids and stored, and a new bucket is opened).
    pub(crate) fn open_for_writes(
        &mut self,
        conn: &Connection,
        filters: &Filters,
        model_id: i64,
        bucket_rows: i64,
        group_buckets: i64,
    ) -> Result<i64, StoreError> {
        let Some(open) = self.open else {
            conn.execute(
                "INSERT INTO request_buckets(model_id, bucket, rows, closed, filter)
                 VALUES (?1, 0, 0, 0, NULL)",
                [model_id],
            )?;
            self.open = Some(0);
            self.open_rows = 0;
            return Ok(0);
        };
        if self.open_rows < bucket_rows {
            return Ok(open);
        }
        let hashes = if self.open_hashes.len() as i64 == self.open_rows {
            std::mem::take(&mut self.open_hashes)
        } else {
            bucket_hashes(conn, model_id, open, open)?
        };
        let filter = Arc::new(StoredFilter::build(hashes));
        conn.execute(
            "UPDATE request_buckets SET closed = 1, filter = ?3 WHERE model_id = ?1 AND bucket = ?2",
            params![model_id, open, &filter.0[..]],
        )?;
        conn.execute(
            "INSERT INTO request_buckets(model_id, bucket, rows, closed, filter)
             VALUES (?1, ?2, 0, 0, NULL)",
            params![model_id, open + 1],
        )?;
        // Before the commit: a reader that sees the bucket closed finds its filter here; one
        // that does not, or a rolled-back close, probes the bucket as the open one.
        filters.put(model_id, open, false, filter);
        self.closed.push(open);
        self.open = Some(open + 1);
        self.open_rows = 0;
        self.open_hashes.clear();
        // The closed buckets after the last group make a group once there are enough of them.
        let grouped_through = self.groups.last().map_or(-1, |&(_, last)| last);
        let first = grouped_through + 1;
        if open - first + 1 >= group_buckets {
            let filter = Arc::new(StoredFilter::build(bucket_hashes(
                conn, model_id, first, open,
            )?));
            conn.execute(
                "INSERT INTO request_bucket_groups(model_id, first_bucket, last_bucket, filter)
                 VALUES (?1, ?2, ?3, ?4)",
                params![model_id, first, open, &filter.0[..]],
            )?;
            filters.put(model_id, first, true, filter);
            self.groups.push((first, open));
        }
        Ok(open + 1)
    }

    /// Counts new rows into the open bucket, given the hashes of their ids.
    pub(crate) fn add_rows(
        &mut self,
        conn: &Connection,
        model_id: i64,
        hashes: &[u64],
    ) -> Result<(), StoreError> {
        let Some(open) = self.open else {
            return Ok(());
        };
        if !hashes.is_empty() {
            let rows = hashes.len() as i64;
            conn.prepare_cached(
                "UPDATE request_buckets SET rows = rows + ?3 WHERE model_id = ?1 AND bucket = ?2",
            )?
            .execute(params![model_id, open, rows])?;
            // Hashes are kept only while they are all of the bucket's.
            if self.open_hashes.len() as i64 == self.open_rows {
                self.open_hashes.extend_from_slice(hashes);
            }
            self.open_rows += rows;
        }
        Ok(())
    }
}

/// The filter a closed bucket would get from the ids stored in it, as stored.
#[cfg(test)]
pub(crate) fn filter_from_rows(conn: &Connection, model_id: i64, bucket: i64) -> Vec<u8> {
    StoredFilter::build(bucket_hashes(conn, model_id, bucket, bucket).unwrap())
        .0
        .into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_holds_every_id_it_was_built_from_and_few_others() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("req-{i:08}")).collect();
        let filter = StoredFilter::build(ids.iter().map(|i| id_hash(i)).collect());
        let probe = filter.probe();
        assert!(ids.iter().all(|i| probe.may_hold(id_hash(i))));
        let others = (20_000..120_000)
            .filter(|i| probe.may_hold(id_hash(&format!("req-{i:08}"))))
            .count();
        // 2^-8 of 100,000 is 390.
        assert!(others < 1_000, "{others} false positives in 100,000");
    }

    #[test]
    fn a_filter_of_no_ids_or_a_few_repeated_hashes_still_answers() {
        let empty = StoredFilter::build(Vec::new());
        assert!(!empty.probe().may_hold(id_hash("x")) || empty.0.is_empty());
        let repeated = StoredFilter::build(vec![7, 7, 7, 9]);
        assert!(repeated.probe().may_hold(7) && repeated.probe().may_hold(9));
    }
}
