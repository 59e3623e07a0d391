//! The cluster lease: which process does the work that must happen once per cluster, not once
//! per process (alert evaluation, notifications, the background refresh of the per-hour
//! state), when several `modelwatch serve` processes share one store (issue 21, ADR 020).
//!
//! A backend that serves several processes provides its own lease (the ClickHouse backend's
//! `ClickHouseLease`); the embedded store is opened by one process only (the data directory's
//! lock), which therefore always holds it ([`SoleProcess`]).

use std::time::Duration;

/// Asked before each piece of once-per-cluster work: "do I hold it now, and for how long?".
///
/// Invariant every implementation keeps: at any instant at most one process of the cluster
/// gets `Some` from [`Lease::held_for`] (under the implementation's stated clock assumption),
/// and the duration it answers never reaches past the moment another process may start holding.
pub trait Lease: Send + Sync {
    /// How much longer, at least, this process holds the lease; `None` when it does not hold
    /// it now (another process does, or nobody does yet).
    fn held_for(&self) -> Option<Duration>;

    /// Whether this process holds the lease now.
    fn held(&self) -> bool {
        self.held_for().is_some()
    }

    /// For reporting (`/metrics`): held now, or held in the previous epoch while the current
    /// one is not decided yet. A holder does not hold from the end of an epoch until it has
    /// read the next, and a gauge of [`Lease::held`] would read 0 there at every epoch.
    fn held_lately(&self) -> bool {
        self.held()
    }

    /// Work that must not overlap the next holder's (a notification being sent) starts only
    /// while the lease is held for longer than this.
    fn guard(&self) -> Duration {
        Duration::ZERO
    }

    /// Whether `held_for` is more than [`Lease::guard`]: the check before starting such work.
    fn held_beyond_guard(&self) -> bool {
        self.held_for().is_some_and(|left| left > self.guard())
    }

    /// The longest a holder goes without holding between two of its holdings (a lease held in
    /// epochs is not held from the end of one until its holder has read the next): work on a
    /// schedule that finds the lease not held waits this long for it before skipping, lest a
    /// period that is a multiple of the epoch always fall in that gap.
    fn epoch(&self) -> Duration {
        Duration::ZERO
    }

    /// How many times this process started or stopped holding the lease since it started (the
    /// counter `modelwatch_cluster_lease_changes_total`).
    fn changes(&self) -> u64 {
        0
    }
}

/// The lease of a store only one process can open (the embedded store): always held.
#[derive(Debug, Default, Clone, Copy)]
pub struct SoleProcess;

impl Lease for SoleProcess {
    fn held_for(&self) -> Option<Duration> {
        Some(Duration::MAX)
    }
}

/// The lease of a process that takes no part in the once-per-cluster work (`[alerts] evaluate =
/// false` on a shared store): never held, and never claimed, so it never keeps the lease from a
/// process that would do the work.
#[derive(Debug, Default, Clone, Copy)]
pub struct NeverHeld;

impl Lease for NeverHeld {
    fn held_for(&self) -> Option<Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_only_process_of_a_data_directory_always_holds_the_lease() {
        let lease = SoleProcess;
        assert!(lease.held());
        assert!(lease.held_beyond_guard());
        assert_eq!(lease.changes(), 0);
        assert!(lease.held_lately());
        assert!(!NeverHeld.held() && !NeverHeld.held_beyond_guard() && !NeverHeld.held_lately());
    }
}
