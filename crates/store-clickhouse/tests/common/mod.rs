//! A real ClickHouse cluster for a test binary: started with scripts/clickhouse/cluster.sh in a
//! temporary directory, stopped (every server and ZooKeeper, by pid) when the guard drops, also
//! when a check panics. One cluster per test binary: each binary has one test that owns it.
//! Or one server without a cluster (`Cluster::single`), or the current release's dialect
//! through scripts/clickhouse/chdb_shim.py (`Cluster::chdb`).

pub mod summary;

use modelwatch_store::conformance;
use modelwatch_store_clickhouse::{ClickHouseConfig, ClickHouseStore};
use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    dir: tempfile::TempDir,
    pub urls: Vec<String>,
    /// The chdb shim's process (`Cluster::chdb`), killed by the guard.
    shim: Option<std::process::Child>,
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
        let mut child = Command::new(&python)
            .arg(shim)
            .arg(dir.path().join("chdb"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start chdb_shim.py");
        let stdout = child.stdout.take().expect("the shim's stdout");
        // The guard exists before the URL is read: a shim that fails is killed.
        let mut cluster = Cluster {
            dir,
            urls: Vec::new(),
            shim: Some(child),
        };
        // The shim prints its URL once it listens.
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the shim's URL");
        assert!(
            line.starts_with("http://"),
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
        let hosts: Vec<&str> = self
            .urls
            .iter()
            .map(|u| u.trim_start_matches("http://"))
            .collect();
        format!("clickhouse://{}/{database}", hosts.join(","))
    }

    /// A store on a database of its own.
    pub fn store(&self, database: &str) -> ClickHouseStore {
        let config = ClickHouseConfig::from_url(&self.url(database)).expect("url");
        ClickHouseStore::connect(&config).unwrap_or_else(|e| panic!("connect to {database}: {e}"))
    }

    /// A store that talks to the servers `only` (indexes into `urls`), as one of several
    /// modelwatch processes each given its own replicas.
    #[allow(dead_code)]
    pub fn store_on(&self, database: &str, only: &[usize]) -> ClickHouseStore {
        let hosts: Vec<&str> = only
            .iter()
            .map(|&i| self.urls[i].trim_start_matches("http://"))
            .collect();
        let url = format!("clickhouse://{}/{database}", hosts.join(","));
        let config = ClickHouseConfig::from_url(&url).expect("url");
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
        let out = Command::new("curl")
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
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
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
