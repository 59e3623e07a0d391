//! A real ClickHouse cluster for a test binary: started with scripts/clickhouse/cluster.sh in a
//! temporary directory, stopped (every server and ZooKeeper, by pid) when the guard drops, also
//! when a check panics. One cluster per test binary: each binary has one test that owns it.
//! Or one server without a cluster (`Cluster::single`), or the current release's dialect
//! through scripts/clickhouse/chdb_shim.py (`Cluster::chdb`).

pub mod summary;

use modelwatch_alerts::db::AlertStore;
use modelwatch_store::conformance;
use modelwatch_store_clickhouse::{ClickHouseAlertStore, ClickHouseConfig, ClickHouseStore};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    dir: tempfile::TempDir,
    pub urls: Vec<String>,
    /// The chdb shim's process (`Cluster::chdb`), killed by the guard.
    shim: Option<std::process::Child>,
    /// With TLS (`Cluster::chdb_tls`): the authority that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse/cluster.sh")
}

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("MODELWATCH_REQUIRE_CLICKHOUSE").is_some()
}

impl Cluster {
    /// Starts `shards` x `replicas` servers, or `None` when clickhouse-server is not installed
    /// and neither `CI` nor `MODELWATCH_REQUIRE_CLICKHOUSE` (set by scripts/test.sh, which
    /// installs the servers) is set: the test then says it was skipped, and why. Otherwise a
    /// missing server fails the test.
    #[allow(dead_code)]
    pub fn start(shards: usize, replicas: usize) -> Option<Cluster> {
        Self::start_as(shards, replicas, "modelwatch")
    }

    /// One plain server with no `remote_servers` cluster at all (cluster.sh `CLUSTER=none`).
    #[allow(dead_code)]
    pub fn single() -> Option<Cluster> {
        Self::start_as(1, 1, "none")
    }

    /// The current release's dialect: scripts/clickhouse/chdb_shim.py serving a chdb session on
    /// a free port, run by `MODELWATCH_CHDB_PYTHON` (default `python3`). `None`, with a message,
    /// when that Python cannot import chdb, unless `CI` or `MODELWATCH_REQUIRE_CLICKHOUSE` is
    /// set (scripts/test.sh installs chdb into its venv): then the test fails.
    #[allow(dead_code)]
    pub fn chdb() -> Option<Cluster> {
        Self::chdb_with(None)
    }

    /// [`Cluster::chdb`] over HTTPS: the shim serves TLS with `tls` = (certificate, its key),
    /// both PEM files; its URL is `https://127.0.0.1:PORT`.
    #[allow(dead_code)]
    pub fn chdb_tls(cert: &std::path::Path, key: &std::path::Path) -> Option<Cluster> {
        Self::chdb_with(Some((cert, key)))
    }

    fn chdb_with(tls: Option<(&std::path::Path, &std::path::Path)>) -> Option<Cluster> {
        use std::io::BufRead;
        let python = std::env::var("MODELWATCH_CHDB_PYTHON").unwrap_or_else(|_| "python3".into());
        let importable = Command::new(&python)
            .args(["-c", "import chdb"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !importable {
            let why = format!("`{python}` cannot import chdb (set MODELWATCH_CHDB_PYTHON to a Python with `pip install chdb`)");
            if required() {
                panic!("{why}: CI must check the SQL against the current dialect");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("mw-chdb-")
            .tempdir()
            .expect("temp dir");
        let shim =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/clickhouse/chdb_shim.py");
        let mut command = Command::new(&python);
        command.arg(shim).arg(dir.path().join("chdb"));
        if let Some((cert, key)) = tls {
            command
                .env("MW_SHIM_TLS_CERT", cert)
                .env("MW_SHIM_TLS_KEY", key);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start chdb_shim.py");
        let stdout = child.stdout.take().expect("the shim's stdout");
        // The guard exists before the URL is read: a shim that fails is killed.
        let mut cluster = Cluster {
            dir,
            urls: Vec::new(),
            shim: Some(child),
            ca_file: None,
        };
        // The shim prints its URL once it listens.
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the shim's URL");
        assert!(
            line.starts_with("http://") || line.starts_with("https://"),
            "chdb_shim.py did not start (it printed {line:?})"
        );
        cluster.urls.push(line.trim().to_string());
        Some(cluster)
    }

    fn start_as(shards: usize, replicas: usize, name: &str) -> Option<Cluster> {
        let installed = Command::new("sh")
            .args(["-c", "command -v clickhouse-server"])
            .output()
            .is_ok_and(|o| o.status.success());
        // cluster.sh starts ZooKeeper from Debian's zookeeperd for replicas.
        let zookeeper =
            replicas == 1 || std::path::Path::new("/usr/share/zookeeper/bin/zkServer.sh").exists();
        if !installed || !zookeeper {
            let why = match installed {
                false => "clickhouse-server is not installed (scripts/clickhouse/cluster.sh install, as root)",
                true => "ZooKeeper is not installed (REPLICAS=2 scripts/clickhouse/cluster.sh install, as root)",
            };
            if required() {
                panic!("{why}: CI must run the ClickHouse backend's tests");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("mw-clickhouse-")
            .tempdir()
            .expect("temp dir");
        // cluster.sh picks the first free ports from 20000 up: two clusters of one test binary
        // (the CLI's `clickhouse` and `clickhouse_kill` run in parallel) starting at once took
        // the same ports. One start at a time; once started, its servers hold their ports.
        static START: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = START.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path().join("cluster"))
            .env("SHARDS", shards.to_string())
            .env("REPLICAS", replicas.to_string())
            .env("CLUSTER", name)
            .output()
            .expect("run cluster.sh");
        // The guard exists before the check of the outcome: a half-started cluster is stopped.
        let cluster = Cluster {
            dir,
            urls: String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("http"))
                .map(str::to_string)
                .collect(),
            shim: None,
            ca_file: None,
        };
        assert!(
            out.status.success() && cluster.urls.len() == shards * replicas,
            "cluster.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(cluster)
    }

    /// The `clickhouse://` URL of every server, with `database`.
    pub fn url(&self, database: &str) -> String {
        self.url_on(database, &[])
    }

    /// The URL of the servers `only` (indexes into `urls`; empty: every server), with
    /// `database`: `clickhouses://` when the servers speak TLS.
    pub fn url_on(&self, database: &str, only: &[usize]) -> String {
        let only: Vec<usize> = match only {
            [] => (0..self.urls.len()).collect(),
            _ => only.to_vec(),
        };
        let hosts: Vec<&str> = only
            .iter()
            .map(|&i| {
                self.urls[i]
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
            })
            .collect();
        let scheme = match self.urls[0].starts_with("https://") {
            true => "clickhouses",
            false => "clickhouse",
        };
        format!("{scheme}://{}/{database}", hosts.join(","))
    }

    /// How a process connects to `database`: its URL, and the authority to trust with TLS.
    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig::from_url(&self.url(database))
            .expect("url")
            .with_ca_file(self.ca_file.clone())
    }

    /// A store on a database of its own.
    pub fn store(&self, database: &str) -> ClickHouseStore {
        let config = self.config(database);
        ClickHouseStore::connect(&config).unwrap_or_else(|e| panic!("connect to {database}: {e}"))
    }

    /// A store that talks to the servers `only` (indexes into `urls`), as one of several
    /// modelwatch processes each given its own replicas.
    #[allow(dead_code)]
    pub fn store_on(&self, database: &str, only: &[usize]) -> ClickHouseStore {
        let url = self.url_on(database, only);
        let config = ClickHouseConfig::from_url(&url)
            .expect("url")
            .with_ca_file(self.ca_file.clone());
        ClickHouseStore::connect(&config).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
    }
}

/// Killing and restarting one server, and asking one server directly: the kill test's tools
/// (`crates/cli/tests/cli/clickhouse_kill.rs`). `i` indexes `urls`.
#[allow(dead_code)]
impl Cluster {
    /// `kill -9` server `i` (its pid from the file cluster.sh keeps for it); returns when the
    /// process is gone.
    pub fn kill9(&self, i: usize) {
        let pid = self.server_file(i, "pid");
        let pid = pid.trim();
        let out = Command::new("kill")
            .args(["-9", pid])
            .status()
            .expect("kill");
        assert!(out.success(), "kill -9 {pid} (server {i})");
        let gone = || {
            std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(true, |s| {
                s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "server {i} (pid {pid}) survived kill -9"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts server `i` again after a kill (cluster.sh restart-one: same config and data);
    /// returns when it answers /ping.
    pub fn restart(&self, i: usize) {
        let out = Command::new("bash")
            .arg(script())
            .arg("restart-one")
            .arg(self.dir.path().join("cluster"))
            .arg(i.to_string())
            .output()
            .expect("run cluster.sh restart-one");
        assert!(
            out.status.success(),
            "cluster.sh restart-one {i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The answer of server `i` to `sql` (its HTTP interface, no session settings).
    pub fn query(&self, i: usize, sql: &str) -> String {
        let mut curl = Command::new("curl");
        if let Some(ca) = &self.ca_file {
            curl.arg("--cacert").arg(ca);
        }
        let out = curl
            .args(["-fsS", "--data-binary", sql, &format!("{}/", self.urls[i])])
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "{sql} on {}: {}",
            self.urls[i],
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A line of the files cluster.sh keeps per server (`pid`), for server `i`.
    fn server_file(&self, i: usize, name: &str) -> String {
        let servers = std::fs::read_to_string(self.dir.path().join("cluster/servers")).unwrap();
        let dir = servers
            .lines()
            .nth(i)
            .unwrap_or_else(|| panic!("no server {i}"));
        std::fs::read_to_string(std::path::Path::new(dir).join(name)).unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut shim) = self.shim.take() {
            let _ = shim.kill();
            let _ = shim.wait();
            return;
        }
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path().join("cluster"))
            .status();
    }
}

/// Runs the named checks of `conformance::ALL` (all when `only` is empty), each on a fresh
/// database `{prefix}_{n}`, and fails naming every check that failed.
pub fn run_checks(cluster: &Cluster, prefix: &str, only: &[&str]) {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (n, (name, check)) in conformance::ALL.iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o)) {
            continue;
        }
        ran += 1;
        let store = cluster.store(&format!("{prefix}_{n}"));
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&store)));
        match outcome {
            Ok(()) => eprintln!("ok    {name} ({:.1} s)", started.elapsed().as_secs_f64()),
            Err(e) => {
                let why = panic_message(e.as_ref());
                eprintln!("FAIL  {name}: {why}");
                failed.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(ran > 0, "no check named {only:?}");
    assert!(
        failed.is_empty(),
        "{} of {ran} conformance checks failed on ClickHouse:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// The cluster lease (ADR 020) with contenders in this process, each a `ClickHouseLease` as
/// one `serve` process runs it, on the servers `on[i]` (indexes into `urls`; empty: all),
/// epochs of 2 s: never two holders of one epoch; from the second full epoch after they start,
/// exactly one holder per epoch; the holder stops claiming and another holds within two epochs.
#[allow(dead_code)]
pub fn lease_checks(cluster: &Cluster, database: &str, on: &[&[usize]]) {
    use modelwatch_store::Lease;
    use modelwatch_store_clickhouse::ClickHouseLease;
    use std::time::{Duration, Instant};
    let period = Duration::from_secs(2);
    // Every server gets the schema (the lease's table) first.
    drop(cluster.store(database));
    let leases: Vec<ClickHouseLease> = on
        .iter()
        .map(|only| {
            let config = ClickHouseConfig::from_url(&cluster.url_on(database, only))
                .expect("url")
                .with_ca_file(cluster.ca_file.clone());
            ClickHouseLease::start(&config, period).expect("start a lease")
        })
        .collect();
    let first = leases[0].epoch_now();
    let wait_for_epoch = |e: u64| {
        while leases[0].epoch_now() < e {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The holder of an epoch is known once the epoch's margin has passed; look a bit later.
    let holder_now = |leases: &[ClickHouseLease]| -> Option<usize> {
        let deadline = Instant::now() + period;
        loop {
            let holding: Vec<usize> = (0..leases.len()).filter(|&i| leases[i].held()).collect();
            assert!(
                holding.len() <= 1,
                "two contenders hold the lease at once: {holding:?}"
            );
            if let [h] = holding[..] {
                return Some(h);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_epoch(first + 4);
    let holder = holder_now(&leases).expect("a holder while every contender runs");
    // What `/metrics` reports stays on the holder across an epoch's start, when `held` does
    // not (the gap until its read of the new epoch), and never on the others.
    let until = Instant::now() + period + period / 2;
    while Instant::now() < until {
        for (i, l) in leases.iter().enumerate() {
            assert_eq!(l.held_lately(), i == holder, "held_lately of contender {i}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    leases[holder].stop();
    let stopped_at = leases[0].epoch_now();
    // The stopped one's claim on the next epoch may name it the holder: nobody holds that one;
    // the one after has a holder among the others.
    wait_for_epoch(stopped_at + 3);
    let held: Vec<Vec<u64>> = leases.iter().map(|l| l.held_epochs()).collect();
    let counts: Vec<_> = leases.iter().map(|l| l.counts()).collect();
    drop(leases);
    let mut by_epoch: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, epochs) in held.iter().enumerate() {
        for &e in epochs {
            by_epoch.entry(e).or_default().push(i);
        }
    }
    let report = format!("epochs from {first}, holder {holder} stopped in {stopped_at}: {by_epoch:?}; counts {counts:?}");
    eprintln!("lease on {database}: {report}");
    for (e, holders) in &by_epoch {
        assert_eq!(holders.len(), 1, "epoch {e} had two holders: {report}");
    }
    for e in first + 2..=stopped_at {
        assert!(by_epoch.contains_key(&e), "nobody held epoch {e}: {report}");
    }
    let taken_over = by_epoch
        .get(&(stopped_at + 2))
        .unwrap_or_else(|| panic!("nobody took over two epochs after the stop: {report}"));
    assert_ne!(taken_over[0], holder, "{report}");
    assert!(
        !by_epoch
            .range(stopped_at + 1..)
            .any(|(_, h)| h[0] == holder),
        "the stopped contender held on: {report}"
    );
}
/// An alert store on `database` (created if missing), as one `modelwatch serve` process has.
#[allow(dead_code)]
pub fn alert_store(cluster: &Cluster, database: &str) -> ClickHouseAlertStore {
    let config = cluster.config(database);
    ClickHouseAlertStore::connect(&config)
        .unwrap_or_else(|e| panic!("connect the alert store to {database}: {e}"))
}

/// Runs every check of `modelwatch_alerts::conformance::ALL` (the same body the embedded alert
/// store passes), each on a fresh database `{prefix}_{n}`, then what two processes sharing
/// one alert state must see of each other's writes; fails naming every check that failed.
#[allow(dead_code)]
pub fn run_alert_checks(cluster: &Cluster, prefix: &str) {
    let mut failed = Vec::new();
    let checks = modelwatch_alerts::conformance::ALL;
    for n in 0..=checks.len() {
        let db = format!("{prefix}_{n}");
        let store = alert_store(cluster, &db);
        let (name, check): (&str, Box<dyn Fn()>) = match checks.get(n) {
            Some((name, check)) => (name, Box::new(|| check(&store))),
            None => (
                "two_processes_share_one_alert_state",
                Box::new(|| {
                    two_processes_share_one_alert_state(&store, &alert_store(cluster, &db))
                }),
            ),
        };
        let started = std::time::Instant::now();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
            Ok(()) => eprintln!(
                "ok    alerts: {name} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                let why = panic_message(e.as_ref());
                eprintln!("FAIL  alerts: {name}: {why}");
                failed.push(format!("{name}: {why}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} alert-store checks failed on ClickHouse:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Two processes (two stores on one database): each sees the other's rules, silences,
/// acknowledgements and deliveries; an acknowledgement made by one while the other evaluates
/// (and writes back the alert it read before) is kept, and a new episode starts without it.
fn two_processes_share_one_alert_state(a: &dyn AlertStore, b: &dyn AlertStore) {
    use modelwatch_alerts::conformance::{alert, t0};
    use modelwatch_alerts::lifecycle::{fingerprint, Ack, State, Transition};
    use modelwatch_alerts::notify::Notification;
    use modelwatch_core::Timestamp;
    let at = |s: i64| Timestamp(t0().0 + s * 1_000_000);
    let spec = modelwatch_alerts::RuleSpec::from_json(serde_json::json!({
        "name": "acc", "signal": "accuracy",
        "condition": {"kind": "threshold", "op": "<", "value": 0.9},
        "decision": "review", "severity": "warning"}))
    .unwrap();
    assert!(a.insert_rule("fraud", &spec, at(0)).unwrap());
    assert_eq!(b.rules().unwrap(), vec![("fraud".to_owned(), spec.clone())]);
    assert!(!b.insert_rule("fraud", &spec, at(1)).unwrap(), "taken on a");

    // a evaluates: firing, one notification; b acknowledges; a's next pass writes back the
    // alert it read before the acknowledgement.
    let fp = fingerprint("fraud", "acc");
    let firing = alert("fraud", "acc", State::Firing, at(0));
    let n = Notification {
        alert: firing.clone(),
        dashboard_url: None,
    };
    a.apply(
        &fp,
        Some(&firing),
        Some((Transition::Firing, &firing)),
        &[("hook".to_owned(), n)],
        at(0),
    )
    .unwrap();
    let mut acked = b.alert(&fp).unwrap().expect("b sees a's alert");
    assert_eq!(acked, firing);
    acked.acknowledged = Some(Ack {
        owner: "ana".into(),
        comment: "on it".into(),
        at: at(5),
    });
    b.acknowledge(&acked, at(5)).unwrap();
    let mut stale = firing.clone();
    stale.evaluated_at = at(10);
    a.apply(&fp, Some(&stale), None, &[], at(10)).unwrap();
    for s in [a, b] {
        let now = s.alert(&fp).unwrap().unwrap();
        assert_eq!(now.evaluated_at, at(10));
        assert_eq!(
            now.acknowledged, acked.acknowledged,
            "the acknowledgement is kept"
        );
    }
    let transitions: Vec<String> = (a.history(Some("fraud"), 10).unwrap().into_iter())
        .map(|h| h.transition)
        .collect();
    assert_eq!(transitions, ["acknowledged", "firing"]);
    // A new episode (resolved, then active again) starts unacknowledged.
    let next = alert("fraud", "acc", State::Firing, at(100));
    a.apply(
        &fp,
        Some(&next),
        Some((Transition::Firing, &next)),
        &[],
        at(100),
    )
    .unwrap();
    assert_eq!(b.alert(&fp).unwrap().unwrap().acknowledged, None);

    // The outbox: queued by a, delivered by b, no longer due on a.
    let due = a.due(at(0), 10).unwrap();
    assert_eq!(due.len(), 1);
    b.mark_delivered(due[0].id, at(1)).unwrap();
    assert!(a.due(at(1000), 10).unwrap().is_empty());
    // Silences: made on b, expired on a.
    let s = b
        .insert_silence("fraud", None, at(3600), "", at(0))
        .unwrap();
    assert_eq!(a.silences().unwrap(), vec![s.clone()]);
    assert!(a.expire_silence(s.id, at(60)).unwrap());
    assert_eq!(b.silences().unwrap()[0].ends_at, at(60));
    // Heartbeats and arrivals written on one count on the other.
    let h = modelwatch_alerts::db::Heartbeat {
        job: "nightly".into(),
        status: "success".into(),
        timestamp: at(50),
        received_at: at(50),
        message: None,
    };
    b.insert_heartbeat("fraud", &h).unwrap();
    assert_eq!(a.last_heartbeat("fraud", "nightly").unwrap(), Some(h));
    b.record_arrival("fraud", "labels", at(70)).unwrap();
    assert_eq!(a.last_arrival("fraud", "labels").unwrap(), Some(at(70)));
}

/// What a check's panic said (its message, as `panic!` and `assert!` give it).
fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
