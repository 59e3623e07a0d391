//! `modelwatch-loadgen`: posts NDJSON prediction batches to a running server over loopback and
//! prints sustained events/s, request latency percentiles and the server's RSS over time.
//!
//! Bodies are generated before the clock starts (25 features shaped like the peers' benchmark
//! data: 20 numeric, 5 categorical), so the generator spends its CPU on sending, not on JSON.
//! On a 2-core machine the generator and the server share the cores: the figures are a lower
//! bound on what the server does alone.

use anyhow::{bail, Context};
use clap::Parser;
use rand::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Ingest load generator for modelwatch")]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    server: String,
    /// Model to post to
    #[arg(long, default_value = "loadgen")]
    model: String,
    /// Events in total
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per request
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Requests in flight
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Pid of the server, to sample its resident memory
    #[arg(long)]
    pid: Option<u32>,
    /// Compress bodies with gzip
    #[arg(long)]
    gzip: bool,
    /// Stamp every event with the time the bodies are generated (live traffic: all events in
    /// the current hour) instead of spreading them over 28 days of January 2026
    #[arg(long)]
    now: bool,
}

fn body(batch_no: usize, rows: usize, now: Option<&str>, rng: &mut impl Rng) -> String {
    let cats = ["a", "b", "c", "d", "e", "f", "g"];
    let mut out = String::with_capacity(rows * 700);
    for i in 0..rows {
        let mut features = serde_json::Map::new();
        for f in 0..20 {
            features.insert(
                format!("f{f:02}"),
                serde_json::json!((rng.random::<f64>() * 100.0 * 1e4).round() / 1e4),
            );
        }
        for c in 0..5 {
            features.insert(
                format!("c{c}"),
                serde_json::json!(format!("c{c}_{}", cats[rng.random_range(0..cats.len())])),
            );
        }
        let score: f64 = (rng.random::<f64>() * 1e6).round() / 1e6;
        let row = serde_json::json!({
            "request_id": format!("{:016x}{:08x}{:08x}", rng.random::<u64>(), batch_no, i),
            "timestamp": now.map_or_else(
                || format!("2026-01-{:02}T{:02}:{:02}:00Z", 1 + (batch_no % 28), i % 24, i % 60),
                str::to_owned,
            ),
            "model_version": "v1",
            "features": features,
            "prediction": i32::from(score >= 0.5),
            "score": score,
            "latency_ms": (rng.random::<f64>() * 2000.0).round() / 100.0,
        });
        out.push_str(&row.to_string());
        out.push('\n');
    }
    out
}

/// CPU seconds (user + system) used so far by this process, or by `pid`: the load generator
/// shares the machine with the server, so both are reported.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; the kernel
    // counts them in USER_HZ, which is 100 on Linux.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.events == 0 || args.concurrency == 0 {
        bail!("--events, --batch and --concurrency must be at least 1");
    }
    let batches = args.events.div_ceil(args.batch);
    eprintln!("generating {batches} bodies of {} events…", args.batch);
    let mut rng = rand::rng();
    let now = args.now.then(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        modelwatch_core::Timestamp::from_secs(secs as i64).to_rfc3339()
    });
    let bodies: Vec<Vec<u8>> = (0..batches)
        .map(|b| {
            let rows = args.batch.min(args.events - b * args.batch);
            let text = body(b, rows, now.as_deref(), &mut rng);
            if args.gzip {
                gzip(text.as_bytes())
            } else {
                text.into_bytes()
            }
        })
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(batches)));
    let url = format!(
        "{}/v1/models/{}/predictions",
        args.server.trim_end_matches('/'),
        args.model
    );
    let done = Arc::new(AtomicUsize::new(0));

    let sampler = args.pid.map(|pid| {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let start = Instant::now();
            while done.load(Ordering::Relaxed) == 0 {
                if let Some(mb) = rss_mb(pid) {
                    samples.push((start.elapsed().as_secs_f64(), mb));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            samples
        })
    });

    let start = Instant::now();
    let cpu_before = cpu_seconds(None);
    let server_before = args.pid.and_then(|pid| cpu_seconds(Some(pid)));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (bodies, next, latencies, url) =
                (bodies.clone(), next.clone(), latencies.clone(), url.clone());
            let gz = args.gzip;
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()?;
                let mut accepted = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = bodies.get(i) else {
                        return Ok(accepted);
                    };
                    let t = Instant::now();
                    let mut req = client
                        .post(&url)
                        .header("content-type", "application/x-ndjson")
                        .body(b.clone());
                    if gz {
                        req = req.header("content-encoding", "gzip");
                    }
                    let r = req.send().context("posting a batch")?;
                    let status = r.status();
                    let out: serde_json::Value = r.json().context("reading the reply")?;
                    if !status.is_success() {
                        bail!("server answered {status}: {out}");
                    }
                    accepted += out["accepted"].as_u64().unwrap_or(0) as usize;
                    latencies
                        .lock()
                        .expect("latencies")
                        .push(t.elapsed().as_secs_f64() * 1e3);
                }
            })
        })
        .collect();
    let mut accepted = 0;
    for w in workers {
        accepted += w.join().expect("worker panicked")?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(None).zip(cpu_before).map(|(a, b)| a - b);
    let server_cpu = args
        .pid
        .and_then(|pid| cpu_seconds(Some(pid)))
        .zip(server_before)
        .map(|(a, b)| a - b);
    done.store(1, Ordering::Relaxed);
    let mut lat = latencies.lock().expect("latencies").clone();
    lat.sort_by(f64::total_cmp);
    let pct = |q: f64| lat[((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1];
    println!("| events | batch | concurrency | gzip | seconds | events/s | MB/s sent | p50 ms | p99 ms | accepted |");
    println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
        args.events,
        args.batch,
        args.concurrency,
        if args.gzip { "yes" } else { "no" },
        elapsed,
        args.events as f64 / elapsed,
        bytes as f64 / elapsed / 1e6,
        pct(0.5),
        pct(0.99),
        accepted
    );
    if let Some(s) = sampler {
        let samples = s.join().expect("sampler panicked");
        let line: Vec<String> = samples
            .iter()
            .step_by(samples.len().div_ceil(12).max(1))
            .map(|(t, mb)| format!("{t:.0}s {mb:.0}"))
            .collect();
        println!("\nserver RSS MiB over time: {}", line.join(", "));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let show = |c: Option<f64>| c.map_or("?".to_owned(), |c| format!("{c:.2} s"));
    println!(
        "CPU while sending: server {}, load generator {} (of {:.2} s x {cores} cores)",
        show(server_cpu),
        show(cpu),
        elapsed
    );
    Ok(())
}
