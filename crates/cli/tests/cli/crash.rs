//! Kill -9 at random moments while a client ingests: nothing acknowledged is ever lost, nothing
//! is stored twice, and the store opens cleanly every time.

use crate::common;

use common::{client, Server};
use rand::Rng;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const ROUNDS: usize = 22;
const ROWS_PER_BATCH: usize = 100;

fn stored_ids(s: &Server) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match after {
            Some(a) => format!("/v1/models/crash/predictions?limit=10000&after={a}"),
            None => "/v1/models/crash/predictions?limit=10000".to_string(),
        };
        let (status, page) = s.get(&path);
        if status == 404 {
            return ids; // nothing acknowledged yet
        }
        assert_eq!(status, 200, "{page}");
        for p in page["predictions"].as_array().unwrap() {
            ids.push(p["request_id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return ids,
        }
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let url: Arc<RwLock<Option<String>>> = Arc::new(RwLock::new(None));
    let acked: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let http = client();
            let mut batch_no = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ids: Vec<String> = (0..ROWS_PER_BATCH)
                    .map(|i| format!("b{batch_no}-{i}"))
                    .collect();
                let rows: Vec<_> = ids
                    .iter()
                    .map(|id| {
                        serde_json::json!({"request_id": id, "timestamp": "2026-01-01T00:00:00Z",
                        "features": {"x": 1.5, "c": "a"}, "prediction": 1, "score": 0.7})
                    })
                    .collect();
                let body = serde_json::to_string(&rows).unwrap();
                // Resend the same batch until one server acknowledges it: the retry after a kill
                // may find the batch already committed, which must count as duplicates.
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let target = url.read().unwrap().clone();
                    let Some(u) = target else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    let sent = http
                        .post(format!("{u}/v1/models/crash/predictions"))
                        .body(body.clone())
                        .send();
                    if let Ok(r) = sent {
                        if r.status().as_u16() == 200 {
                            let out: serde_json::Value = r.json().unwrap();
                            let n = out["accepted"].as_u64().unwrap()
                                + out["duplicates"].as_u64().unwrap();
                            assert_eq!(n, ROWS_PER_BATCH as u64, "{out}");
                            acked.lock().unwrap().extend(ids.iter().cloned());
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                batch_no += 1;
            }
        })
    };

    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let mut s = Server::start(dir.path());
        // Everything acknowledged by every earlier server is here, exactly once.
        let before: HashSet<String> = acked.lock().unwrap().clone();
        let ids = stored_ids(&s);
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "round {round}: a request id is stored twice"
        );
        let missing = before.iter().filter(|id| !unique.contains(id)).count();
        assert_eq!(
            missing, 0,
            "round {round}: {missing} acknowledged rows lost"
        );
        *url.write().unwrap() = Some(s.url.clone());
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        s.kill9();
        *url.write().unwrap() = None;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let s = Server::start(dir.path());
    let acked = acked.lock().unwrap().clone();
    let ids = stored_ids(&s);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(acked.iter().all(|id| unique.contains(id)));
    assert!(
        acked.len() >= ROUNDS * ROWS_PER_BATCH,
        "the client made too little progress to test anything: {}",
        acked.len()
    );
    let (_, m) = s.get("/v1/models/crash");
    assert_eq!(
        m["predictions"].as_u64().unwrap() as usize,
        ids.len(),
        "counters agree with rows"
    );
    eprintln!(
        "{} rows acknowledged, {} stored, over {ROUNDS} kills",
        acked.len(),
        ids.len()
    );
}
