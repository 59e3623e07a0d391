//! The cluster lease on ClickHouse (ADR 020): exactly one live `modelwatch serve` process of
//! those sharing a database does the once-per-cluster work (alert evaluation, notifications,
//! the background refresh of the per-hour state), and another takes over when it dies.
//!
//! Time is cut into epochs of `T` seconds (`[clickhouse] lease_seconds`), numbered from the
//! Unix epoch; `M = T / 4` is the margin. Each process runs one thread that, in epoch `E`:
//! 1. if its claim on `E` was acknowledged in time, reads at `E·T + M` (its clock) every claim
//!    on `E` and holds `E` when its own is the least of them by (was not the holder of `E-1`,
//!    holder id): the holder of the previous epoch keeps the lease while it lives, else the
//!    least id wins;
//! 2. inserts its claim on `E+1` (with whether it holds `E`); an insert acknowledged after
//!    `(E+1)·T - M` (its clock) does not count: the process stays out of `E+1`.
//!
//! Invariants (why, in ADR 020):
//! - at most one process holds an epoch, provided the clocks of the processes differ by less
//!   than `M`: every claim that counts was acknowledged before any process reads (at least `2M`
//!   of clock later), a quorum insert is on every replica when acknowledged and the read is
//!   sequentially consistent, so every reader that counts its own claim sees the same set of
//!   claims that count, and the least of them is one process; a late claim a reader may or may
//!   not see can only make that reader lose, and its owner never counts it;
//! - two holders never overlap in time: a holding ends at the end of its epoch by its own
//!   clock, the next one starts `M` after it by the next holder's clock, and `held_for` is
//!   computed from the clock at each call, never from a thread that may be late;
//! - the claims live in `lease_local` on the first shard (its replicas), like the catalog: with
//!   the first shard down (or, with replicas, one of its replicas: claims are quorum inserts),
//!   no claim is acknowledged and nobody holds the lease: the once-per-cluster work pauses.

use crate::cluster::{q, topology, ClickHouseConfig, Http};
use modelwatch_store::{Lease, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The lease every once-per-cluster piece of work asks (one lease: the work all belongs to the
/// same process, so a process that evaluates alerts also refreshes in the background).
const NAME: &str = "cluster";
/// Claims are kept in this many slots (`epoch % SLOTS`), each holder's claim replacing its
/// claim of `SLOTS` epochs before: the table stays small without deletes (18.16 has no `TTL`,
/// and its mutations on replicated tables never finish: ADR 019).
const SLOTS: u64 = 64;
/// How many held epochs a lease remembers (for tests and logs).
const HISTORY: usize = 1024;
/// The default epoch length (`[clickhouse] lease_seconds`).
pub const DEFAULT_LEASE_SECONDS: u64 = 10;

#[derive(Serialize, Deserialize)]
struct Claim {
    name: String,
    slot: u16,
    holder: String,
    epoch: u64,
    was_holder: u8,
    claimed_at: u64,
}

#[derive(Deserialize)]
struct Read {
    holder: String,
    epoch: u64,
    was_holder: u8,
}

/// What the lease's thread decided, read by `held_for` from any thread.
#[derive(Default)]
struct State {
    /// The last epoch this process won.
    held: Option<u64>,
    /// Whether the last decision was to hold (for the change counter).
    holding: bool,
    /// The epoch of the last decision.
    decided: Option<u64>,
    changes: u64,
    history: VecDeque<u64>,
    claims: u64,
    reads: u64,
    late: u64,
    failed: u64,
    slowest: Duration,
    /// No more claims, no holding: set by `stop`, under the same lock as `held`, so a decision
    /// racing with it cannot hold again.
    stopped: bool,
}

struct Shared {
    holder: String,
    period: u64,
    margin: u64,
    state: Mutex<State>,
    /// Wakes the thread's sleeps (on `state`) when the lease is stopped.
    wake: Condvar,
}

/// The ClickHouse backend's [`Lease`]. Dropping it (or [`ClickHouseLease::stop`]) stops its
/// claims: another process takes over within two epochs.
pub struct ClickHouseLease {
    shared: Arc<Shared>,
}

/// What a lease did since it started (tests print it; ADR 020 quotes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseCounts {
    pub claims: u64,
    pub reads: u64,
    /// Claims acknowledged too late to count.
    pub late: u64,
    /// Claims or reads that failed (the epoch is not held).
    pub failed: u64,
    /// The slowest claim or read (a claim has `T/2` minus the read's time to be acknowledged).
    pub slowest: Duration,
}

impl ClickHouseLease {
    /// Starts claiming the lease of `config`'s database, epochs of `period` (at least 1 s). The
    /// table must exist (`ClickHouseStore::connect` applies the schema). Returns once the first
    /// shard's servers are known; the first epoch this process can hold is the next one (the one
    /// after, when it started too late in this one to claim the next in time).
    pub fn start(
        config: &ClickHouseConfig,
        period: Duration,
    ) -> Result<ClickHouseLease, StoreError> {
        let period = period.max(Duration::from_secs(1)).as_micros() as u64;
        let shared = Arc::new(Shared {
            holder: holder_id(),
            period,
            margin: period / 4,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        // The HTTP client is made, used and dropped on the lease's own thread, never on an
        // executor thread of the server's Tokio runtime (its calls block).
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let config = config.clone();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("cluster-lease".into())
            .spawn(move || {
                let claimer = match Claimer::connect(&config, thread_shared) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                claimer.run();
            })
            .map_err(|e| StoreError::Remote {
                server: String::new(),
                what: "start the cluster lease's thread".into(),
                message: e.to_string(),
            })?;
        ready_rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Remote {
                server: String::new(),
                what: "start the cluster lease".into(),
                message: "its thread stopped".into(),
            })
        })?;
        Ok(ClickHouseLease { shared })
    }

    /// This process's id in the claims (`pid-random`).
    pub fn holder(&self) -> &str {
        &self.shared.holder
    }

    /// The epoch the clock is in now.
    pub fn epoch_now(&self) -> u64 {
        now_micros() / self.shared.period
    }

    /// The epochs this process held, oldest first (the last 1024).
    pub fn held_epochs(&self) -> Vec<u64> {
        self.shared.lock().history.iter().copied().collect()
    }

    pub fn counts(&self) -> LeaseCounts {
        let s = self.shared.lock();
        LeaseCounts {
            claims: s.claims,
            reads: s.reads,
            late: s.late,
            failed: s.failed,
            slowest: s.slowest,
        }
    }

    /// Stops claiming (and holding: `held_for` answers `None` from now on).
    pub fn stop(&self) {
        let mut s = self.shared.lock();
        s.stopped = true;
        s.held = None;
        drop(s);
        self.shared.wake.notify_all();
    }
}

impl Drop for ClickHouseLease {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Lease for ClickHouseLease {
    fn held_for(&self) -> Option<Duration> {
        let now = now_micros();
        let epoch = now / self.shared.period;
        (self.shared.lock().held == Some(epoch))
            .then(|| Duration::from_micros((epoch + 1) * self.shared.period - now))
    }

    fn held_lately(&self) -> bool {
        let now = now_micros();
        let epoch = now / self.shared.period;
        let s = self.shared.lock();
        match s.held {
            Some(e) if e == epoch => true,
            // Decided on `e` and on nothing since: the current epoch's read is still to come.
            Some(e) => e + 1 == epoch && s.holding && s.decided == Some(e),
            None => false,
        }
    }

    fn guard(&self) -> Duration {
        Duration::from_micros(self.shared.margin)
    }

    fn epoch(&self) -> Duration {
        Duration::from_micros(self.shared.period)
    }

    fn changes(&self) -> u64 {
        self.shared.lock().changes
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until the clock reads `at` (microseconds); false when stopped meanwhile.
    fn sleep_until(&self, at: u64) -> bool {
        let mut s = self.lock();
        loop {
            if s.stopped {
                return false;
            }
            let now = now_micros();
            if now >= at {
                return true;
            }
            s = self
                .wake
                .wait_timeout(s, Duration::from_micros(at - now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Records the decision on `epoch`.
    fn decide(&self, epoch: u64, held: bool) {
        let mut s = self.lock();
        if s.stopped {
            return;
        }
        s.decided = Some(epoch);
        if held {
            s.held = Some(epoch);
            s.history.push_back(epoch);
            if s.history.len() > HISTORY {
                s.history.pop_front();
            }
        }
        if held != s.holding {
            s.holding = held;
            s.changes += 1;
            if held {
                tracing::info!(holder = %self.holder, epoch, "this process now holds the cluster lease: it evaluates the alert rules, sends notifications and refreshes the per-hour state in the background");
            } else {
                tracing::info!(holder = %self.holder, epoch, "this process no longer holds the cluster lease");
            }
        }
    }
}

/// The lease's thread: the HTTP client and the first shard's servers.
struct Claimer {
    http: Http,
    servers: Vec<String>,
    shared: Arc<Shared>,
}

impl Claimer {
    fn connect(config: &ClickHouseConfig, shared: Arc<Shared>) -> Result<Claimer, StoreError> {
        // A claim or read answered after its deadline is worthless: never wait longer than an
        // epoch for one.
        let timeout = Duration::from_micros(shared.period).max(Duration::from_secs(2));
        let mut http = Http::with_timeout(config, timeout)?;
        let topo = topology(&http, config)?;
        if topo.replicas > 1 {
            http.quorum = Some(topo.replicas);
        }
        let servers = topo
            .servers
            .iter()
            .filter(|s| s.shard == 0)
            .map(|s| s.url.clone())
            .collect();
        Ok(Claimer {
            http,
            servers,
            shared,
        })
    }

    fn run(self) {
        let (period, margin) = (self.shared.period, self.shared.margin);
        // The epoch whose claim was acknowledged in time.
        let mut claimed: Option<u64> = None;
        while !self.shared.is_stopped() {
            let epoch = now_micros() / period;
            let start = epoch * period;
            let mut held = false;
            if claimed == Some(epoch) {
                if !self.shared.sleep_until(start + margin) {
                    break;
                }
                if now_micros() / period == epoch {
                    held = match self.winner(epoch) {
                        Ok(winner) => winner.as_deref() == Some(self.shared.holder.as_str()),
                        Err(e) => {
                            self.shared.lock().failed += 1;
                            tracing::warn!(error = %e, epoch, "cannot read the cluster lease's claims: this process does not hold it this epoch");
                            false
                        }
                    };
                }
            }
            if self.shared.is_stopped() {
                break;
            }
            self.shared.decide(epoch, held);
            let deadline = start + period - margin;
            claimed = None;
            if now_micros() < deadline {
                match self.claim(epoch + 1, held) {
                    Ok(()) if now_micros() < deadline => claimed = Some(epoch + 1),
                    Ok(()) => {
                        self.shared.lock().late += 1;
                        tracing::warn!(epoch = epoch + 1, "the cluster lease's claim was acknowledged too late to count: this process stays out of the next epoch");
                    }
                    Err(e) => {
                        self.shared.lock().failed += 1;
                        tracing::warn!(error = %e, epoch = epoch + 1, "cannot claim the cluster lease: this process stays out of the next epoch");
                    }
                }
            }
            if !self.shared.sleep_until(start + period) {
                break;
            }
        }
    }

    /// Inserts this process's claim on `epoch`, on the first server of the first shard that
    /// takes it (a refused insert may still have been stored: harmless, see the invariants).
    fn claim(&self, epoch: u64, was_holder: bool) -> Result<(), StoreError> {
        self.shared.lock().claims += 1;
        let _timed = Timed::new(&self.shared);
        let row = Claim {
            name: NAME.into(),
            slot: (epoch % SLOTS) as u16,
            holder: self.shared.holder.clone(),
            epoch,
            was_holder: u8::from(was_holder),
            claimed_at: now_micros(),
        };
        let mut last = None;
        for url in &self.servers {
            match self.http.insert(
                url,
                "lease_local",
                std::slice::from_ref(&row),
                "claim the cluster lease",
            ) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("the first shard has a server"))
    }

    /// The holder of `epoch`: the least claim by (was not the holder before, holder id).
    fn winner(&self, epoch: u64) -> Result<Option<String>, StoreError> {
        self.shared.lock().reads += 1;
        let _timed = Timed::new(&self.shared);
        let sql = format!(
            "SELECT holder, epoch, was_holder FROM lease_local FINAL WHERE name = {} AND slot = {}",
            q(NAME),
            epoch % SLOTS
        );
        let mut last = None;
        for url in &self.servers {
            match self
                .http
                .rows::<Read>(url, &sql, "read the cluster lease's claims")
            {
                // Filtered here, after FINAL: a condition on `epoch` (the replacing version)
                // might be applied before the rows collapse.
                Ok(rows) => {
                    return Ok(rows
                        .into_iter()
                        .filter(|r| r.epoch == epoch)
                        .min_by(|a, b| {
                            (a.was_holder == 0, &a.holder).cmp(&(b.was_holder == 0, &b.holder))
                        })
                        .map(|r| r.holder))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("the first shard has a server"))
    }
}

/// Records the slowest claim or read when dropped.
struct Timed<'a>(&'a Shared, std::time::Instant);

impl<'a> Timed<'a> {
    fn new(shared: &'a Shared) -> Self {
        Timed(shared, std::time::Instant::now())
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let took = self.1.elapsed();
        let mut s = self.0.lock();
        s.slowest = s.slowest.max(took);
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `pid-random`: unique per process start (a restarted process is a new contender).
fn holder_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{}-{:016x}", std::process::id(), h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_ids_differ_between_leases_of_one_process() {
        assert_ne!(holder_id(), holder_id());
    }
}
