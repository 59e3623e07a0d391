//! The kill test of the ClickHouse backend (issue 21 §3): on 2 shards x 2 replicas with
//! ZooKeeper (every insert a quorum insert, `insert_quorum = 2`), two `modelwatch serve --store`
//! processes take batches of predictions and labels from client threads; under that load one
//! modelwatch process is killed with SIGKILL, then one ClickHouse server (a replica of shard 2),
//! which is started again a little later. Clients do what a client should: a batch not
//! acknowledged (a refused connection, a 5xx) is sent again, to the live modelwatch once theirs
//! is gone. At the end every acknowledged request id is stored exactly once, every acknowledged
//! label joined, and the failures clients saw while the server was down were clear 5xx answers
//! naming the ClickHouse server, never a 2xx for rows the cluster did not hold.
//!
//! Run: `cargo test -p modelwatch-cli --test cli clickhouse_kill::` (needs clickhouse-server
//! and ZooKeeper: skipped with a message without them, failed when `CI` or
//! `MODELWATCH_REQUIRE_CLICKHOUSE` is set).

use crate::clickhouse::{cluster, serve};
use crate::common;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MODEL: &str = "kill";
const DATABASE: &str = "mw_kill";
const CLIENTS: usize = 4;
const BATCHES: usize = 40;
const BATCH: usize = 10;
/// cluster.sh lists the servers shard by shard: [s0r0, s0r1, s1r0, s1r1].
const KILLED_CLICKHOUSE: usize = 3;
/// The longest a client waits for an answer: a request that takes longer is a hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// What the clients saw.
#[derive(Default)]
struct Seen {
    acked_predictions: Vec<String>,
    acked_labels: Vec<String>,
    /// Answers other than 2xx: (status, message, which modelwatch, seconds it took).
    refused: Vec<(u16, String, usize, f64)>,
    /// Requests whose modelwatch process was gone (connection refused or reset).
    unanswered: usize,
    /// Batches sent more than once before they were acknowledged.
    retried_batches: usize,
    slowest_ack: f64,
}

struct Load {
    servers: [String; 2],
    alive: [AtomicBool; 2],
    acked_batches: AtomicUsize,
    seen: Mutex<Seen>,
}

fn prediction(id: &str, i: usize) -> Value {
    let region = ["north", "south"][i % 2];
    json!({"request_id": id, "timestamp": format!("2026-11-03T{:02}:{:02}:00Z", i % 24, i % 60),
        "model_version": "v1", "features": {"x": (i % 17) as f64, "region": region},
        "prediction": i % 2, "score": (i % 10) as f64 / 10.0})
}

impl Load {
    /// Sends `rows` to `path` until a modelwatch acknowledges them; returns the answer.
    fn send(&self, client: &reqwest::blocking::Client, first: usize, path: &str, rows: &[Value]) {
        let body = serde_json::to_string(rows).unwrap();
        let mut attempts = 0;
        let mut pick = first;
        loop {
            attempts += 1;
            assert!(attempts < 2_000, "{path}: never acknowledged");
            if !self.alive[pick].load(Ordering::SeqCst) {
                pick = 1 - pick;
            }
            let started = Instant::now();
            let sent = client
                .post(format!("{}/v1/models/{MODEL}/{path}", self.servers[pick]))
                .header("content-type", "application/json")
                .body(body.clone())
                .send();
            let took = started.elapsed().as_secs_f64();
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    assert!(!e.is_timeout(), "{path} to modelwatch {pick} hung: {e}");
                    // The process is gone: a client's answer is the other replica.
                    self.alive[pick].store(false, Ordering::SeqCst);
                    self.seen.lock().unwrap().unanswered += 1;
                    continue;
                }
            };
            let (status, out) = common::decode(resp);
            if (200..300).contains(&status) {
                let n = out["accepted"].as_u64().unwrap() + out["duplicates"].as_u64().unwrap();
                assert_eq!(n as usize, rows.len(), "{path}: {out}");
                let mut seen = self.seen.lock().unwrap();
                let ids = rows
                    .iter()
                    .map(|r| r["request_id"].as_str().unwrap().to_string());
                match path {
                    "predictions" => seen.acked_predictions.extend(ids),
                    _ => seen.acked_labels.extend(ids),
                }
                seen.retried_batches += usize::from(attempts > 1);
                seen.slowest_ack = seen.slowest_ack.max(took);
                return;
            }
            let message = out["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            self.seen
                .lock()
                .unwrap()
                .refused
                .push((status, message, pick, took));
            // A client's pause before it sends a refused batch again.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self, c: usize) {
        let client = reqwest::blocking::Client::builder()
            .timeout(CLIENT_TIMEOUT)
            .build()
            .unwrap();
        for b in 0..BATCHES {
            let ids: Vec<String> = (0..BATCH).map(|i| format!("c{c}-b{b}-{i}")).collect();
            let rows: Vec<Value> = (ids.iter().enumerate())
                .map(|(i, id)| prediction(id, b * BATCH + i))
                .collect();
            // Clients 0 and 1 send to the modelwatch that gets killed, 2 and 3 to the other.
            self.send(&client, c / 2, "predictions", &rows);
            if b % 3 == 0 {
                let labels: Vec<Value> = (ids.iter().enumerate())
                    .map(|(i, id)| json!({"request_id": id, "label": i % 2}))
                    .collect();
                self.send(&client, 1 - c / 2, "labels", &labels);
            }
            self.acked_batches.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Every request id of `path`'s pages on `s`, with how many times it was listed.
fn listed(s: &common::Server, path: &str) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/models/{MODEL}/{path}?limit=1000&after={a}"),
            None => format!("/v1/models/{MODEL}/{path}?limit=1000"),
        };
        let page = s.get_ok(&q);
        for row in page[path].as_array().unwrap() {
            *ids.entry(row["request_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return ids,
        }
    }
}

#[test]
fn every_acknowledged_id_is_stored_once_after_a_modelwatch_and_a_clickhouse_server_are_killed() {
    let Some(cluster) = cluster::Cluster::start(2, 2) else {
        return;
    };
    let started = Instant::now();
    let phase = |what: &str| eprintln!("{:6.1} s  {what}", started.elapsed().as_secs_f64());
    phase("cluster started");
    let tmp = tempfile::tempdir().unwrap();
    let url = cluster.url(DATABASE);
    let mut a = serve(&url, &tmp.path().join("a"), "");
    let b = serve(&url, &tmp.path().join("b"), "[alerts]\nevaluate = false\n");
    let load = Load {
        servers: [a.url.clone(), b.url.clone()],
        alive: [AtomicBool::new(true), AtomicBool::new(true)],
        acked_batches: AtomicUsize::new(0),
        seen: Mutex::new(Seen::default()),
    };
    let total = CLIENTS * BATCHES;
    let progress = || load.acked_batches.load(Ordering::SeqCst);
    let refusals = || load.seen.lock().unwrap().refused.len();
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        common::poll(120, || match done() {
            true => Ok(()),
            false => Err(format!(
                "{what}: {} of {total} batches acknowledged",
                progress()
            )),
        })
    };
    let (killed_at, restarted_at) = std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let load = &load;
            scope.spawn(move || load.client(c));
        }
        wait_for("a quarter of the load", &|| progress() >= total / 4);
        a.kill9();
        phase("modelwatch 0 killed");
        wait_for("half of the load", &|| progress() >= total / 2);
        let before = refusals();
        cluster.kill9(KILLED_CLICKHOUSE);
        let killed_at = Instant::now();
        phase("ClickHouse server killed");
        // Down until clients have been refused a few times (or the load is nearly done).
        wait_for("refusals while a ClickHouse server is down", &|| {
            refusals() >= before + 5 || progress() >= total * 9 / 10
        });
        let down_for = killed_at.elapsed().as_secs_f64();
        cluster.restart(KILLED_CLICKHOUSE);
        phase("ClickHouse server restarted");
        (down_for, killed_at.elapsed().as_secs_f64())
    });
    phase("load done");
    let seen = load.seen.into_inner().unwrap();
    eprintln!(
        "{} prediction ids and {} label ids acknowledged; {} batches sent more than once; {} \
         requests to the killed modelwatch unanswered; {} refused; ClickHouse server down {killed_at:.1} s \
         (back after {restarted_at:.1} s); slowest acknowledgement {:.1} s",
        seen.acked_predictions.len(),
        seen.acked_labels.len(),
        seen.retried_batches,
        seen.unanswered,
        seen.refused.len(),
        seen.slowest_ack
    );
    let mut by_message: HashMap<String, usize> = HashMap::new();
    for (status, message, _, took) in &seen.refused {
        eprintln!("  refused: {status} after {took:.1} s: {message:.300}");
        // A failure of the store is the service's (5xx), and says which server failed.
        assert!(*status >= 500, "{status}: {message}");
        assert!(
            message.starts_with("ClickHouse server "),
            "{status}: {message}"
        );
        *by_message
            .entry(message.chars().take(80).collect())
            .or_default() += 1;
    }
    assert!(seen.unanswered > 0, "the killed modelwatch was never asked");
    assert_eq!(seen.acked_predictions.len(), CLIENTS * BATCHES * BATCH);

    // Every acknowledged id exactly once, through the surviving modelwatch.
    let stored = listed(&b, "predictions");
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
    let missing: Vec<_> = (seen.acked_predictions.iter())
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged and not stored: {missing:?}"
    );
    assert_eq!(stored.len(), seen.acked_predictions.len());
    let labels = listed(&b, "labels");
    assert_eq!(labels.len(), seen.acked_labels.len());
    assert!(labels.values().all(|n| *n == 1));
    assert!(seen.acked_labels.iter().all(|id| labels.contains_key(id)));
    let m = b.get_ok(&format!("/v1/models/{MODEL}"));
    assert_eq!(m["predictions"], seen.acked_predictions.len(), "{m}");
    assert_eq!(m["labelled"], seen.acked_labels.len(), "{m}");

    phase("read back through modelwatch");
    // And on the servers themselves: each shard's replicas hold the same rows, each id once.
    let count = |i: usize| {
        cluster.query(
            i,
            &format!(
                "SELECT count(), uniqExact(request_id) FROM {DATABASE}.predictions_local FINAL \
                 WHERE model = '{MODEL}' FORMAT TSV"
            ),
        )
    };
    let mut total_rows = 0;
    for shard in 0..2 {
        // The restarted replica catches up from the other (ZooKeeper's log) on its own.
        let rows = common::poll(60, || {
            let (first, second) = (count(shard * 2), count(shard * 2 + 1));
            match first == second {
                true => Ok(first),
                false => Err(format!("shard {shard}: replicas hold {first} and {second}")),
            }
        });
        let (n, unique) = rows.trim().split_once('\t').unwrap();
        assert_eq!(n, unique, "shard {shard}: {rows}");
        total_rows += n.parse::<usize>().unwrap();
        phase(&format!("shard {shard}'s replicas agree"));
    }
    assert_eq!(total_rows, seen.acked_predictions.len());
    // The restarted server's Distributed tables still span the cluster (a restart evaluates
    // their metadata again).
    let through_restarted = cluster.query(
        KILLED_CLICKHOUSE,
        &format!(
            "SELECT uniqExact(request_id) FROM {DATABASE}.predictions WHERE model = '{MODEL}'"
        ),
    );
    assert_eq!(through_restarted.trim(), total_rows.to_string());
}
