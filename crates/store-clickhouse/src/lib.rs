//! The ClickHouse backend of [`modelwatch_store::Store`] (issue 21 §2; schema and decisions in
//! ADR 019, boundary in ADR 018): a cluster of shards (and replicas) reached over the HTTP
//! interface with blocking `ureq` (https on rustls for `clickhouses://`), rows as JSONEachRow.
//!
//! Invariants (ARCHITECTURE.md states them for users):
//! - each prediction and label goes to the shard `cityHash64(request_id) % shards` (what the
//!   Distributed tables would pick), into that shard's `*_local` table, so a request's
//!   predictions of every version and its label share a shard and the label join is
//!   co-located; the rows are readable when the insert returns;
//! - with replicas every insert is a quorum insert (every replica of the shard has it) and
//!   every read is sequentially consistent: acknowledged means durable on the cluster;
//! - the first arrival of a (model, request id, version) is kept (`keep = u64::MAX -
//!   received_at`, read with `FINAL`); this process's writer reads a batch's ids on their
//!   shard before inserting, so it reports duplicates exactly; two processes racing on one id
//!   store it once and may both report it accepted;
//! - a label batch is inserted before the change counts of the hours it touches, so a
//!   refresh can never record a count that includes a label its blob was built without;
//! - reads that must be exact use `FINAL`; the label join names `DB.labels_local`;
//! - the alert state ([`ClickHouseAlertStore`], ADR 021) is in small tables on the first shard,
//!   shared by every process: versioned rows read with `FINAL`, never updated in place.

mod alerts;
mod cluster;
mod lease;
mod store;

pub use alerts::ClickHouseAlertStore;
pub use cluster::ClickHouseConfig;
pub use lease::{ClickHouseLease, LeaseCounts, DEFAULT_LEASE_SECONDS};
pub use store::ClickHouseStore;

/// ClickHouse's `cityHash64` of a string (CityHash v1.0.2), as the Distributed tables' sharding
/// key computes it: the backend routes a row to shard `city_hash64(request_id) % shards`.
pub fn city_hash64(s: &str) -> u64 {
    ch_cityhash102::cityhash64(s.as_bytes())
}
