//! `modelwatch-loadgen`: posts NDJSON prediction batches to a running server over loopback and
//! prints sustained events/s, request latency percentiles and the server's RSS over time (with
//! several servers, round-robin, and the sum of their RSS and CPU).
//!
//! Bodies are generated before the clock starts (25 features shaped like the peers' benchmark
//! data: 20 numeric, 5 categorical), so the generator spends its CPU on sending, not on JSON.
//! On a 2-core machine the generator and the server share the cores: the figures are a lower
//! bound on what the server does alone.

use anyhow::{bail, Context};
use clap::Parser;
use modelwatch_bench::{body, cpu_seconds, gzip, now_rfc3339, percentile, rss_mb};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Ingest load generator for modelwatch")]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080; several (comma-separated or the
    /// option repeated) share the requests round-robin, as a load balancer in front of
    /// several `modelwatch serve` replicas would
    #[arg(long, required = true, value_delimiter = ',')]
    server: Vec<String>,
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
    /// Pid of the server, to sample its resident memory and CPU; one per server (comma-separated
    /// or repeated): the figures are their sums
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Compress bodies with gzip
    #[arg(long)]
    gzip: bool,
    /// Stamp every event with the time the bodies are generated (live traffic: all events in
    /// the current hour) instead of spreading them over 28 days of January 2026
    #[arg(long)]
    now: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.events == 0 || args.concurrency == 0 {
        bail!("--events, --batch and --concurrency must be at least 1");
    }
    let batches = args.events.div_ceil(args.batch);
    eprintln!("generating {batches} bodies of {} events…", args.batch);
    let mut rng = rand::rng();
    let now = args.now.then(now_rfc3339);
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
    let urls: Vec<String> = args
        .server
        .iter()
        .map(|s| {
            format!(
                "{}/v1/models/{}/predictions",
                s.trim_end_matches('/'),
                args.model
            )
        })
        .collect();
    let done = Arc::new(AtomicUsize::new(0));

    let sampler = (!args.pid.is_empty()).then(|| {
        let done = done.clone();
        let pids = args.pid.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let start = Instant::now();
            while done.load(Ordering::Relaxed) == 0 {
                let rss: Option<f64> = pids.iter().map(|&pid| rss_mb(pid)).sum();
                if let Some(mb) = rss {
                    samples.push((start.elapsed().as_secs_f64(), mb));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            samples
        })
    });

    let start = Instant::now();
    let cpu_before = cpu_seconds(None);
    let servers_cpu = || -> Option<f64> {
        if args.pid.is_empty() {
            return None;
        }
        args.pid.iter().map(|&pid| cpu_seconds(Some(pid))).sum()
    };
    let server_before = servers_cpu();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            // Worker w always posts to the same server: with as many workers as servers or
            // a multiple, each server gets an equal share of the requests in flight.
            let url = urls[w % urls.len()].clone();
            let (bodies, next, latencies) = (bodies.clone(), next.clone(), latencies.clone());
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
    let server_cpu = servers_cpu().zip(server_before).map(|(a, b)| a - b);
    done.store(1, Ordering::Relaxed);
    let mut lat = latencies.lock().expect("latencies").clone();
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
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
        p50,
        p99,
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
