//! `modelwatch-soak`: live traffic at a fixed rate for a fixed time, with readers querying the
//! same model meanwhile, to show that memory stays flat and nothing fails over a long run.
//!
//! Senders post NDJSON batches paced to `--rate` events/s (a batch is sent when its turn comes,
//! never early, so a slow server shows as a rate below the target rather than as a burst).
//! Every event is stamped with the start time (live traffic, all in the current hour). Bodies
//! come from a pool made before the clock starts; each send gives its rows new request ids, so
//! every event is a new prediction; one in `--explore-every` (20) is tagged as exploration
//! traffic, so the feedback readers' hours hold both sides of the split. Readers loop over the
//! API, the Prometheus exporter and the dashboard. Every `--report-every` seconds a table row
//! gives the rate reached, the server's memory and CPU, and the errors; at the end the stored
//! count is compared with the count the server acknowledged. Exits non-zero on any error or
//! lost event.

use anyhow::{bail, Context, Result};
use clap::Parser;
use modelwatch_bench::{body, cpu_seconds, now_rfc3339, percentile, rss_mb};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The stand-in each body's request ids start with, replaced per send by the send's round.
const ROUND: &str = "~~~~~~~~";

#[derive(Parser)]
#[command(about = "Soak test: paced live ingest plus concurrent queries against a running server")]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    server: String,
    /// Pid of the server, to read its resident memory and CPU
    #[arg(long)]
    pid: u32,
    /// Model to post to and query
    #[arg(long, default_value = "soak")]
    model: String,
    /// Target events per second
    #[arg(long)]
    rate: f64,
    /// Seconds to run
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Events per request
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Requests in flight at most
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Readers, each looping over the query paths
    #[arg(long, default_value_t = 2)]
    readers: usize,
    /// A path to query (repeatable); by default the model's metrics, drift, quality and
    /// feedback in hourly windows, the model list, alerts, Prometheus and the dashboard page
    #[arg(long)]
    query: Vec<String>,
    /// Seconds between report lines
    #[arg(long, default_value_t = 30)]
    report_every: u64,
    /// One event in this many is tagged as exploration traffic (`exploration=true`), so that
    /// the feedback readers split each hour into both sides; 0: none
    #[arg(long, default_value_t = 20)]
    explore_every: usize,
}

/// What senders and readers count, read by the reporter.
#[derive(Default)]
struct Tally {
    events: AtomicU64,
    posts: AtomicU64,
    queries: AtomicU64,
    errors: AtomicU64,
    /// The first few errors, for the report.
    messages: Mutex<Vec<String>>,
    /// Latencies in ms since the last report line: posts, then queries.
    post_ms: Mutex<Vec<f64>>,
    query_ms: Mutex<Vec<f64>>,
}

impl Tally {
    fn error(&self, what: String) {
        // Said at once as well, so that a long run shows its first error when it happens.
        eprintln!("error at {}: {what}", now_rfc3339());
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut m = self.messages.lock().expect("messages");
        if m.len() < 10 {
            m.push(what);
        }
    }
}

fn default_queries(model: &str) -> Vec<String> {
    [
        "/v1/models/{m}/metrics?window=1h",
        "/v1/models/{m}/drift?window=1h",
        "/v1/models/{m}/quality?window=1h",
        "/v1/models/{m}/feedback?window=1h",
        "/v1/models",
        "/v1/alerts",
        "/metrics",
        "/models/{m}",
    ]
    .iter()
    .map(|p| p.replace("{m}", model))
    .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.concurrency == 0 || args.rate <= 0.0 || args.duration == 0 {
        bail!("--batch, --concurrency, --rate and --duration must be positive");
    }
    let base = args.server.trim_end_matches('/').to_owned();
    let queries = if args.query.is_empty() {
        default_queries(&args.model)
    } else {
        args.query.clone()
    };

    // Enough distinct bodies that consecutive sends differ; rounds make their ids new.
    let pool_size = 16;
    eprintln!("generating {pool_size} bodies of {} events…", args.batch);
    let now = now_rfc3339();
    let mut rng = rand::rng();
    let pool: Arc<Vec<String>> = Arc::new(
        (0..pool_size)
            .map(|b| {
                let text = body(b, args.batch, Some(&now), &mut rng)
                    .replace("\"request_id\":\"", &format!("\"request_id\":\"{ROUND}"));
                tag_exploration(&text, args.explore_every)
            })
            .collect(),
    );

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.duration);
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{base}/v1/models/{}/predictions", args.model);
    let seconds_per_batch = args.batch as f64 / args.rate;

    let senders: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (pool, tally, next, url) = (pool.clone(), tally.clone(), next.clone(), url.clone());
            std::thread::spawn(move || -> Result<()> {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let due = start + Duration::from_secs_f64(i as f64 * seconds_per_batch);
                    // A server behind the target is not caught up after the deadline: the run
                    // lasts its duration and the table shows the rate it reached.
                    if due >= deadline || Instant::now() >= deadline {
                        return Ok(());
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let text =
                        pool[i % pool.len()].replace(ROUND, &format!("{:08x}", i / pool.len()));
                    let t = Instant::now();
                    let reply = client
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(text)
                        .send();
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    match reply {
                        Ok(r) if r.status().is_success() => {
                            let out: serde_json::Value = r.json().context("reading a reply")?;
                            let accepted = out["accepted"].as_u64().unwrap_or(0);
                            tally.events.fetch_add(accepted, Ordering::Relaxed);
                            tally.posts.fetch_add(1, Ordering::Relaxed);
                            tally.post_ms.lock().expect("latencies").push(ms);
                            if accepted != 0
                                && out["refused"].as_array().is_some_and(|r| !r.is_empty())
                            {
                                tally.error(format!("batch {i}: rows refused: {out}"));
                            }
                        }
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().unwrap_or_default();
                            tally.error(format!(
                                "batch {i}: {status}: {}",
                                &text[..text.len().min(300)]
                            ));
                        }
                        Err(e) => tally.error(format!("batch {i}: {e}")),
                    }
                }
            })
        })
        .collect();

    let readers: Vec<_> = (0..args.readers)
        .map(|r| {
            let (tally, stop, base, queries) =
                (tally.clone(), stop.clone(), base.clone(), queries.clone());
            std::thread::spawn(move || -> Result<()> {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()?;
                // Readers start at different paths so that they do not ask the same thing at once.
                for path in queries.iter().cycle().skip(r * queries.len() / 2) {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    let t = Instant::now();
                    match client.get(format!("{base}{path}")).send() {
                        Ok(resp) if resp.status().is_success() => {
                            // Read the whole body: a reply is only answered once it is all sent.
                            let _ = resp.bytes();
                            tally.queries.fetch_add(1, Ordering::Relaxed);
                            tally
                                .query_ms
                                .lock()
                                .expect("latencies")
                                .push(t.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok(resp) => {
                            let status = resp.status();
                            let text = resp.text().unwrap_or_default();
                            tally.error(format!(
                                "GET {path}: {status}: {}",
                                &text[..text.len().min(300)]
                            ));
                        }
                        Err(e) => tally.error(format!("GET {path}: {e}")),
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(())
            })
        })
        .collect();

    println!(
        "soak: target {:.0} events/s for {} s, batches of {}, {} in flight, {} readers over {} paths",
        args.rate,
        args.duration,
        args.batch,
        args.concurrency,
        args.readers,
        queries.len()
    );
    println!("| s | events/s | post p50 ms | post p99 ms | queries | query p50 ms | query max ms | server RSS MiB | server CPU % | errors |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rss_seen = Vec::new();
    let (mut last_t, mut last_events, mut last_queries) = (0.0, 0u64, 0u64);
    let mut last_cpu = cpu_seconds(Some(args.pid));
    let senders_done = || senders.iter().all(|s| s.is_finished());
    while !senders_done() {
        let step = Instant::now() + Duration::from_secs(args.report_every);
        while Instant::now() < step && !senders_done() {
            std::thread::sleep(Duration::from_millis(200));
        }
        let t = start.elapsed().as_secs_f64();
        let events = tally.events.load(Ordering::Relaxed);
        let queries_done = tally.queries.load(Ordering::Relaxed);
        let cpu = cpu_seconds(Some(args.pid));
        let rss = rss_mb(args.pid);
        if let Some(mb) = rss {
            rss_seen.push((t, mb));
        }
        let mut post_ms = std::mem::take(&mut *tally.post_ms.lock().expect("latencies"));
        let mut query_ms = std::mem::take(&mut *tally.query_ms.lock().expect("latencies"));
        let cpu_pct = cpu
            .zip(last_cpu)
            .map_or(f64::NAN, |(a, b)| (a - b) / (t - last_t) * 100.0);
        println!(
            "| {t:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0} | {:.0} | {} | {cpu_pct:.0} | {} |",
            (events - last_events) as f64 / (t - last_t),
            percentile(&mut post_ms, 0.5),
            percentile(&mut post_ms, 0.99),
            queries_done - last_queries,
            percentile(&mut query_ms, 0.5),
            percentile(&mut query_ms, 1.0),
            rss.map_or("?".to_owned(), |mb| format!("{mb:.0}")),
            tally.errors.load(Ordering::Relaxed),
        );
        (last_t, last_events, last_queries, last_cpu) = (t, events, queries_done, cpu);
    }
    // The run lasts its duration even when the last batch was due a little before the end.
    let elapsed = start.elapsed().as_secs_f64().max(args.duration as f64);
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().expect("sender panicked")?;
    }
    for r in readers {
        r.join().expect("reader panicked")?;
    }

    let acknowledged = tally.events.load(Ordering::Relaxed);
    let stored = stored_predictions(&base, &args.model)?;
    println!(
        "\n{acknowledged} events acknowledged in {elapsed:.0} s ({:.0} events/s against a target of {:.0}); {stored} stored; {} queries answered",
        acknowledged as f64 / elapsed,
        args.rate,
        tally.queries.load(Ordering::Relaxed)
    );
    // Flat memory: the highest reading of the last third against that of the second third
    // (the first third includes the warm-up of caches and the page cache filling).
    let third = elapsed / 3.0;
    let peak = |from: f64, to: f64| {
        rss_seen
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, mb)| *mb)
            .fold(f64::NAN, f64::max)
    };
    println!(
        "server RSS peak, MiB: first third {:.0}, second third {:.0}, last third {:.0}",
        peak(0.0, third),
        peak(third, 2.0 * third),
        peak(2.0 * third, f64::INFINITY)
    );
    let messages = tally.messages.lock().expect("messages");
    for m in messages.iter() {
        println!("error: {m}");
    }
    if !messages.is_empty() {
        bail!("{} errors", tally.errors.load(Ordering::Relaxed));
    }
    if stored != acknowledged {
        bail!("{acknowledged} events acknowledged but {stored} stored");
    }
    Ok(())
}

/// The NDJSON `body` with every `every`-th row tagged `exploration=true` (none when 0).
fn tag_exploration(body: &str, every: usize) -> String {
    if every == 0 {
        return body.to_owned();
    }
    let mut out = String::with_capacity(body.len() + body.len() / every);
    for (i, line) in body.lines().enumerate() {
        match line.strip_prefix('{') {
            Some(rest) if i.is_multiple_of(every) => {
                out.push_str("{\"tags\":{\"exploration\":\"true\"},");
                out.push_str(rest);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Predictions the server holds for `model`, from its model listing.
fn stored_predictions(base: &str, model: &str) -> Result<u64> {
    let reply: serde_json::Value = reqwest::blocking::get(format!("{base}/v1/models/{model}"))?
        .error_for_status()?
        .json()?;
    reply["predictions"]
        .as_u64()
        .with_context(|| format!("no prediction count in {reply}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `every`-th row, and only those, carries the exploration tag, and each row stays
    /// one JSON object with all its fields.
    #[test]
    fn one_row_in_every_n_is_tagged_as_exploration() {
        let mut rng = rand::rng();
        let text = body(0, 45, Some("2026-01-01T00:00:00Z"), &mut rng);
        let tagged = tag_exploration(&text, 20);
        let rows: Vec<serde_json::Value> = tagged
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let plain: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 45);
        for (i, (row, before)) in rows.iter().zip(&plain).enumerate() {
            assert_eq!(row["request_id"], before["request_id"]);
            let explore = row["tags"]["exploration"] == "true";
            assert_eq!(explore, i.is_multiple_of(20), "row {i}: {row}");
        }
        assert_eq!(tag_exploration(&text, 0), text);
    }
}
