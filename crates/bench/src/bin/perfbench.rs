//! `modelwatch-perfbench`: the metrics benchmark of docs/benchmarks.md. Loads D days x N
//! predictions a day of a binary classifier (70 % labelled) into an embedded store, builds the
//! per-hour aggregates, times metrics queries, then times the join of the last M labels
//! arriving late (ingest until durable, then the aggregates brought up to date).
//!
//! The store is kept in `--dir`; a second run with the same settings reuses it (`--reuse`) and
//! only repeats the timings.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use modelwatch_core::{
    FeatureValue, LabelEvent, ModelName, Outcome, PredictionEvent, ReferenceRow, Timestamp, Window,
};
use modelwatch_engine::aggregates;
use modelwatch_engine::drift::{self, DriftQuery};
use modelwatch_engine::performance::{scan_performance, window_performance, PerformanceQuery};
use modelwatch_stats::drift::DriftConfig;
use modelwatch_store::{
    Catalog, DerivedState, EventLog, IngestOutcome, LabelBatch, PendingLabels, PredictionBatch,
    SqliteStore, StoreError,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Parser)]
#[command(about = "Metrics benchmark: D days x N predictions/day, query and late-label timings")]
struct Args {
    /// Data directory (created; reused with --reuse).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 1_000_000)]
    per_day: u64,
    /// Labels held back and sent late, after everything else is loaded.
    #[arg(long, default_value_t = 1_000_000)]
    late_labels: u64,
    /// Share of predictions that get a label.
    #[arg(long, default_value_t = 0.7)]
    labelled: f64,
    /// Runs of each query timed.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Reuse the store in --dir as loaded by an earlier run (skips loading and late labels).
    #[arg(long)]
    reuse: bool,
    /// Also time the concept-drift query (`GET .../concept`).
    #[arg(long)]
    concept: bool,
    /// With --reuse: first rebuild every aggregate from the raw events, and time it.
    #[arg(long)]
    rebuild: bool,
    /// Load and build the aggregates, but keep the late labels back and stop: copy the
    /// directory, then time the late labels on each copy with `--reuse --send-late`.
    #[arg(long)]
    hold_late: bool,
    /// With --reuse: send the late labels a `--hold-late` run kept back (regenerated from the
    /// same seed and settings) and time them, before the queries.
    #[arg(long)]
    send_late: bool,
    /// Late-label requests in flight at once (a client's concurrency; 1: each waits for the
    /// previous one's answer).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Also time drift: upload a reference of this many rows (drawn like day 0), time the
    /// rebuild of every hour's drift sketch it causes, then drift queries (0: keep the stored
    /// reference and time the queries only).
    #[arg(long)]
    drift_reference: Option<u64>,
    /// Also time multivariate drift (`GET .../drift/multivariate`) against the stored
    /// reference (upload one with --drift-reference): the fit, the first query (every hour
    /// summed), a raw-event pass over one day, and queries from the per-hour sums.
    #[arg(long)]
    multivariate: bool,
    /// Also time the outlier report (`GET .../outliers`) against the stored reference (upload
    /// one with --drift-reference): the first query (every hour scored), a raw-event pass over
    /// one day, and queries from the per-hour state.
    #[arg(long)]
    outliers: bool,
}

const BATCH: u64 = 20_000;
const START: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn model() -> ModelName {
    ModelName::new("perfbench").expect("valid name")
}

/// The i-th prediction of day d: a binary classifier whose score is informative, accuracy
/// decaying a little over the days; label drawn from the score.
fn prediction(rng: &mut SmallRng, day: u32, i: u64, per_day: u64) -> (PredictionEvent, bool) {
    let ts = START + day as i64 * 86_400_000_000 + (i as i64 * 86_400_000_000 / per_day as i64);
    let truth = rng.random_bool(0.3);
    let noise = 0.15 + 0.01 * day as f64;
    let score: f64 = if truth {
        (0.7 + rng.random_range(-0.5..0.3) * (1.0 + noise)).clamp(0.0, 1.0)
    } else {
        (0.3 + rng.random_range(-0.3..0.5) * (1.0 + noise)).clamp(0.0, 1.0)
    };
    let countries = ["DE", "FR", "US", "GB", "IN"];
    let event = PredictionEvent {
        request_id: format!("r{day:02}-{i:08}"),
        timestamp: Timestamp(ts),
        model_version: Some(if day < 15 { "v1" } else { "v2" }.to_owned()),
        features: vec![
            (
                "amount".into(),
                FeatureValue::Number(rng.random_range(1.0..500.0)),
            ),
            (
                "age".into(),
                FeatureValue::Number(rng.random_range(18..90) as f64),
            ),
            (
                "country".into(),
                FeatureValue::Text(countries[rng.random_range(0..5)].into()),
            ),
            ("returning".into(), FeatureValue::Bool(rng.random_bool(0.5))),
        ],
        prediction: Some(Outcome::Number(if score >= 0.5 { 1.0 } else { 0.0 })),
        score: Some(score),
        scores: None,
        latency_ms: Some(rng.random_range(2.0..40.0)),
        cost: None,
        error: None,
        tags: vec![],
        explanations: Vec::new(),
        role: modelwatch_core::Role::Served,
    };
    (event, truth)
}

fn label(p: &PredictionEvent, truth: bool, delay_days: i64) -> LabelEvent {
    LabelEvent {
        request_id: p.request_id.clone(),
        label: Outcome::Number(if truth { 1.0 } else { 0.0 }),
        timestamp: Timestamp(p.timestamp.micros() + delay_days * 86_400_000_000),
    }
}

/// Generates the workload in batches of predictions, handed to `sink`, and returns every label
/// (in prediction order). Deterministic: the same settings give the same events.
fn workload(
    args: &Args,
    mut sink: impl FnMut(Vec<(usize, PredictionEvent)>) -> Result<()>,
) -> Result<Vec<LabelEvent>> {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut labels: Vec<LabelEvent> = Vec::new();
    for day in 0..args.days {
        let mut i = 0;
        while i < args.per_day {
            let n = BATCH.min(args.per_day - i);
            let mut rows = Vec::with_capacity(n as usize);
            for k in 0..n {
                let (p, truth) = prediction(&mut rng, day, i + k, args.per_day);
                if rng.random_bool(args.labelled) {
                    labels.push(label(&p, truth, rng.random_range(1..5)));
                }
                rows.push((k as usize, p));
            }
            sink(rows)?;
            i += n;
        }
    }
    Ok(labels)
}

/// The last `late_labels` labels (by prediction time): the ones that arrive late.
fn split_late(labels: &mut Vec<LabelEvent>, args: &Args) -> Vec<LabelEvent> {
    labels.split_off(labels.len().saturating_sub(args.late_labels as usize))
}

fn load(store: &SqliteStore, args: &Args) -> Result<Vec<LabelEvent>> {
    let total = args.days as u64 * args.per_day;
    let bar = indicatif::ProgressBar::new(total);
    let started = Instant::now();
    let mut labels = workload(args, |rows| {
        let n = rows.len() as u64;
        let out = store.ingest_predictions(&model(), PredictionBatch::new(rows))?;
        if !out.rejected.is_empty() {
            bail!("rejected: {:?}", &out.rejected[..1]);
        }
        bar.inc(n);
        Ok(())
    })?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {total} predictions in {secs:.1} s ({:.0}/s)",
        total as f64 / secs
    );
    // Every label but the late ones arrives as the days go by.
    let late = split_late(&mut labels, args);
    let started = Instant::now();
    for chunk in labels.chunks(BATCH as usize * 5) {
        ingest_labels(store, chunk)?;
    }
    println!(
        "loaded {} labels in {:.1} s",
        labels.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(late)
}

fn ingest_labels(store: &SqliteStore, chunk: &[LabelEvent]) -> Result<()> {
    let out = store.ingest_labels(
        &model(),
        LabelBatch {
            rows: chunk.iter().cloned().enumerate().collect(),
            rejected: vec![],
        },
    );
    check_labels(out)
}

fn check_labels(out: Result<IngestOutcome, StoreError>) -> Result<()> {
    let out = out?;
    if !out.rejected.is_empty() {
        bail!("rejected labels: {:?}", &out.rejected[..1]);
    }
    Ok(())
}

/// Times the late labels: sent in requests of 100,000, `in_flight` at a time as a client with
/// that concurrency would (the store commits them in order), until all are durable; then the
/// aggregates brought up to date.
fn send_late(store: &SqliteStore, late: &[LabelEvent], in_flight: usize) -> Result<()> {
    let t = Instant::now();
    let mut pending: std::collections::VecDeque<PendingLabels> = std::collections::VecDeque::new();
    for chunk in late.chunks(100_000) {
        if pending.len() >= in_flight.max(1) {
            let oldest = pending.pop_front().expect("in_flight >= 1 requests queued");
            check_labels(oldest.wait())?;
        }
        pending.push_back(store.submit_labels(
            &model(),
            LabelBatch {
                rows: chunk.iter().cloned().enumerate().collect(),
                rejected: vec![],
            },
        )?);
    }
    while let Some(p) = pending.pop_front() {
        check_labels(p.wait())?;
    }
    let durable = t.elapsed().as_secs_f64();
    let r = aggregates::refresh(store, &model())?;
    let total = t.elapsed().as_secs_f64();
    println!(
        "| {} late labels | durable {durable:.2} s | aggregates of {} hours ({} predictions rescanned) brought up to date in {:.2} s | joined and queryable {total:.2} s |",
        late.len(),
        r.hours,
        r.predictions,
        r.seconds
    );
    Ok(())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn time_query(store: &SqliteStore, name: &str, q: &PerformanceQuery, runs: usize) -> Result<()> {
    let mut ms = Vec::with_capacity(runs);
    let mut windows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let r = window_performance(store, &model(), q)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        windows = r.windows.len();
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "| {name} | {windows} | {:.1} | {:.1} | {:.1} |",
        percentile(&ms, 0.5),
        percentile(&ms, 0.95),
        ms[ms.len() - 1]
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.reuse && args.dir.exists() {
        std::fs::remove_dir_all(&args.dir).with_context(|| format!("clearing {:?}", args.dir))?;
    }
    let store = SqliteStore::open(&args.dir)?;
    if !args.reuse {
        let late = load(&store, &args)?;
        let t = Instant::now();
        let r = aggregates::refresh(&store, &model())?;
        println!(
            "aggregates built: {} hours from {} predictions in {:.1} s",
            r.hours,
            r.predictions,
            t.elapsed().as_secs_f64()
        );

        if args.hold_late {
            println!(
                "{} late labels held back: copy {:?}, then run with --reuse --send-late",
                late.len(),
                args.dir
            );
            return Ok(());
        }
        send_late(&store, &late, args.in_flight)?;
    } else if args.send_late {
        let mut labels = workload(&args, |_| Ok(()))?;
        send_late(&store, &split_late(&mut labels, &args), args.in_flight)?;
    }
    if args.rebuild {
        let r = aggregates::rebuild(&store, &model())?;
        println!(
            "rebuilt {} hours from {} predictions in {:.1} s ({:.0} predictions/s)",
            r.hours,
            r.predictions,
            r.seconds,
            r.predictions as f64 / r.seconds
        );
    }
    println!("| query | windows | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|---|");
    let day = PerformanceQuery {
        window: Some(Window::DAY),
        ..PerformanceQuery::default()
    };
    time_query(&store, "1d windows, all days", &day, args.runs)?;
    let hour = PerformanceQuery {
        window: Some(Window::HOUR),
        ..PerformanceQuery::default()
    };
    time_query(&store, "1h windows, all days", &hour, args.runs)?;
    let week = PerformanceQuery {
        window: Some(Window::WEEK),
        ..PerformanceQuery::default()
    };
    time_query(&store, "7d windows, all days", &week, args.runs)?;
    let v2 = PerformanceQuery {
        version: Some("v2".into()),
        ..day.clone()
    };
    time_query(&store, "1d windows, version v2", &v2, args.runs)?;
    // The same answer from the raw events, once, for scale (one day only: it grows with rows).
    let one_day = PerformanceQuery {
        from: Some(Timestamp(START)),
        to: Some(Timestamp(START + 86_400_000_000)),
        ..day
    };
    let t = Instant::now();
    scan_performance(&store, &model(), &one_day)?;
    println!(
        "raw-event scan of one day ({} predictions): {:.0} ms",
        args.per_day,
        t.elapsed().as_secs_f64() * 1e3
    );
    if let Some(n) = args.drift_reference {
        drift_timings(&store, n, args.runs, args.per_day)?;
    }
    if args.multivariate {
        multivariate_timings(&store, args.runs, args.per_day)?;
    }
    if args.outliers {
        outlier_timings(&store, args.runs, args.per_day)?;
    }
    if args.concept {
        concept_timings(&store, &args)?;
    }
    Ok(())
}

/// Times the outlier report: the first query (the HBOS fit, every hour scored from the raw
/// events), one day from the raw events, then queries from the per-hour state.
fn outlier_timings(store: &SqliteStore, runs: usize, per_day: u64) -> Result<()> {
    use modelwatch_engine::outliers::{outliers, OutlierQuery};
    let query = |window: Window, from: Option<Timestamp>, to: Option<Timestamp>| {
        OutlierQuery::new(DriftQuery {
            window,
            from,
            to,
            version: None,
            segment: None,
        })
    };
    let t = Instant::now();
    let first = outliers(store, &model(), &query(Window::DAY, None, None))?;
    println!(
        "first outliers query (fit stored, every hour scored from the raw events): {:.1} s, {} windows, source {}, outlier rate of the first {:?}",
        t.elapsed().as_secs_f64(),
        first.windows.len(),
        first.source,
        first.windows.first().and_then(|w| w.outlier_rate)
    );
    let one_day = query(
        Window::DAY,
        Some(Timestamp(START + 1)),
        Some(Timestamp(START + 86_400_000_000)),
    );
    let mut ms = Vec::new();
    for _ in 0..runs.clamp(1, 3) {
        let t = Instant::now();
        let r = outliers(store, &model(), &one_day)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.source, "events");
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "raw-event outliers pass over one day ({per_day} predictions): {:.0} ms (min {:.0})",
        ms[ms.len() / 2],
        ms[0]
    );
    println!("| outliers query | windows | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, w) in [
        ("1d windows, all days", Window::DAY),
        ("1h windows, all days", Window::HOUR),
    ] {
        let mut ms = Vec::new();
        let mut n = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let r = outliers(store, &model(), &query(w, None, None))?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            n = r.windows.len();
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {n} | {:.0} | {:.0} | {:.0} |",
            ms[ms.len() / 2],
            ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
            ms[ms.len() - 1]
        );
    }
    Ok(())
}

/// Times multivariate drift: the fit on the reference, the first query (every hour's error
/// sums made from the raw events), one day from the raw events, then queries from the sums.
fn multivariate_timings(store: &SqliteStore, runs: usize, per_day: u64) -> Result<()> {
    use modelwatch_engine::multivariate::{fit_reference, multivariate};
    let reference = drift::Reference::load(store, &model(), None)?;
    let rows = store.reference_rows(&model(), None)?;
    let t = Instant::now();
    let fit = fit_reference(&reference, &rows).map_err(anyhow::Error::msg)?;
    println!(
        "multivariate fit on the {}-row reference ({} columns, {} components): {:.0} ms",
        rows.len(),
        fit.columns.len(),
        fit.n_components(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let query = |window: Window| DriftQuery {
        window,
        from: None,
        to: None,
        version: None,
        segment: None,
    };
    let t = Instant::now();
    let first = multivariate(store, &model(), &query(Window::DAY))?;
    println!(
        "first multivariate query (fit stored, every hour summed from the raw events): {:.1} s, {} windows, source {}",
        t.elapsed().as_secs_f64(),
        first.windows.len(),
        first.source
    );
    // One day from the raw events: a `from` inside an hour is not answered by the hours.
    let one_day = DriftQuery {
        from: Some(Timestamp(START + 1)),
        to: Some(Timestamp(START + 86_400_000_000)),
        ..query(Window::DAY)
    };
    let mut ms = Vec::new();
    for _ in 0..runs.clamp(1, 3) {
        let t = Instant::now();
        let r = multivariate(store, &model(), &one_day)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.source, "events");
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "raw-event multivariate pass over one day ({per_day} predictions): {:.0} ms (min {:.0})",
        ms[ms.len() / 2],
        ms[0]
    );
    println!("| multivariate query | windows | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, w) in [
        ("1d windows, all days", Window::DAY),
        ("1h windows, all days", Window::HOUR),
    ] {
        let mut ms = Vec::new();
        let mut n = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let r = multivariate(store, &model(), &query(w))?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            n = r.windows.len();
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {n} | {:.0} | {:.0} | {:.0} |",
            ms[ms.len() / 2],
            ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
            ms[ms.len() - 1]
        );
    }
    Ok(())
}

/// CPU seconds (user + system) this process has used so far (0 where /proc cannot be read): on
/// a shared machine the wall time depends on the load, the CPU time less.
fn cpu_seconds() -> f64 {
    modelwatch_bench::cpu_seconds(None).unwrap_or(0.0)
}

/// Times `GET .../concept` (every detector over the error stream, and ADWIN alone as a rule
/// runs it), over one day and all days, with the CPU time of each query: the raw-event scan
/// (the computation before the per-hour streams, kept as `concept_from_events`), the first
/// query from the streams after they were all deleted (every hour's stream built from its
/// events), then queries reading the stored streams. Last, the detectors alone over a stream
/// of one day's length, to tell their share.
fn concept_timings(store: &SqliteStore, args: &Args) -> Result<()> {
    use modelwatch_engine::concept::{concept_counted, concept_from_events, ConceptQuery};
    use modelwatch_stats::concept::{change_points, DetectorKind};
    println!(
        "| concept query | labelled predictions | computed from | p50 ms | max ms | CPU s (p50) | hours built / read / holding a change point (of which scanned) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let all = ConceptQuery {
        window: Window::DAY,
        from: None,
        to: None,
        version: None,
        detectors: vec![],
    };
    let one_day = ConceptQuery {
        from: Some(Timestamp(START)),
        to: Some(Timestamp(START + 86_400_000_000)),
        ..all.clone()
    };
    // What a `concept:adwin` rule runs: one detector.
    let adwin = |q: &ConceptQuery| ConceptQuery {
        detectors: vec![DetectorKind::Adwin],
        ..q.clone()
    };
    let mut day_labelled = 0;
    for (name, q) in [
        ("one day, 6 detectors", one_day.clone()),
        ("one day, adwin only (a rule)", adwin(&one_day)),
        ("all days, 6 detectors", all.clone()),
        ("all days, adwin only (a rule)", adwin(&all)),
    ] {
        let (t, c) = (Instant::now(), cpu_seconds());
        let r = concept_from_events(store, &model(), &q)?;
        let labelled = r.versions.iter().map(|v| v.labelled).sum::<u64>();
        if q.from.is_some() {
            day_labelled = labelled;
        }
        println!(
            "| {name} | {labelled} | raw events (before) | {:.0} | | {:.2} | |",
            t.elapsed().as_secs_f64() * 1e3,
            cpu_seconds() - c
        );
        forget_concept_streams(store)?;
        let (t, c) = (Instant::now(), cpu_seconds());
        let (r, used) = concept_counted(store, &model(), &q)?;
        let first = r.versions.iter().map(|v| v.labelled).sum::<u64>();
        anyhow::ensure!(
            first == labelled,
            "the streams count {first}, the scan {labelled}"
        );
        println!(
            "| {name} | {labelled} | first query, every stream built | {:.0} | | {:.2} | {} / {} / {} ({}) |",
            t.elapsed().as_secs_f64() * 1e3,
            cpu_seconds() - c,
            used.hours_built,
            used.hours_read,
            used.change_hours,
            used.change_hours_scanned
        );
        let (mut ms, mut cpu) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..args.runs.clamp(1, 5) {
            let (t, c) = (Instant::now(), cpu_seconds());
            let (_, used) = concept_counted(store, &model(), &q)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.push(cpu_seconds() - c);
            last = Some(used);
        }
        ms.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let used = last.unwrap_or_default();
        println!(
            "| {name} | {labelled} | stored streams | {:.0} | {:.0} | {:.2} | {} / {} / {} ({}) |",
            ms[ms.len() / 2],
            ms[ms.len() - 1],
            cpu[cpu.len() / 2],
            used.hours_built,
            used.hours_read,
            used.change_hours,
            used.change_hours_scanned
        );
    }
    for kind in [
        modelwatch_engine::concept::STREAMS,
        modelwatch_engine::concept::KEYS,
    ] {
        let rows = store.aggregates(&model(), kind, &modelwatch_store::ScanRange::default())?;
        let bytes: usize = rows.iter().map(|r| r.data.len()).sum();
        println!(
            "stored {kind}: {} hours, {bytes} bytes ({:.2} bytes a labelled prediction)",
            rows.len(),
            bytes as f64 / day_labelled.max(1) as f64 / (rows.len() as f64 / 24.0).max(1.0)
        );
    }
    // The detectors alone, over a stream as long as one day's, 30 % mistakes.
    let mut rng = SmallRng::seed_from_u64(5);
    let stream: Vec<f64> = (0..day_labelled)
        .map(|_| f64::from(rng.random_bool(0.3)))
        .collect();
    for kind in DetectorKind::ALL {
        let (t, c) = (Instant::now(), cpu_seconds());
        let found = change_points(kind, &stream).len();
        println!(
            "detector {} alone over {} values: {:.0} ms, {:.2} CPU s, {found} changes",
            kind.name(),
            stream.len(),
            t.elapsed().as_secs_f64() * 1e3,
            cpu_seconds() - c
        );
    }
    Ok(())
}

/// Deletes every stored concept stream of the model, so that the next query builds them all.
fn forget_concept_streams(store: &SqliteStore) -> Result<()> {
    use modelwatch_engine::concept::STREAMS;
    let delete = store
        .aggregates(&model(), STREAMS, &modelwatch_store::ScanRange::default())?
        .into_iter()
        .map(|a| (a.version, a.hour))
        .collect();
    store.put_aggregates(
        &model(),
        modelwatch_store::AggregateWrite {
            kind: STREAMS.into(),
            delete,
            ..Default::default()
        },
    )?;
    Ok(())
}

/// Uploads a reference, times the sketch rebuild it causes and drift queries over all days.
fn drift_timings(store: &SqliteStore, rows: u64, runs: usize, per_day: u64) -> Result<()> {
    let mut rng = SmallRng::seed_from_u64(11);
    let reference: Vec<(usize, ReferenceRow)> = (0..rows)
        .map(|i| {
            let (p, truth) = prediction(&mut rng, 0, i, rows.max(1));
            let row = ReferenceRow {
                features: p.features,
                prediction: p.prediction,
                score: p.score,
                label: Some(Outcome::Number(if truth { 1.0 } else { 0.0 })),
                ..Default::default()
            };
            (i as usize, row)
        })
        .collect();
    if rows > 0 {
        store.put_reference(&model(), None, reference, vec![])?;
    }
    let config = DriftConfig::default();
    let query = |window: Window| DriftQuery {
        window,
        from: None,
        to: None,
        version: None,
        segment: None,
    };
    let t = Instant::now();
    let first = drift::drift(store, &model(), &query(Window::DAY), &config)?;
    println!(
        "first drift query after a {rows}-row reference upload (every hour's sketch rebuilt): {:.1} s, {} windows",
        t.elapsed().as_secs_f64(),
        first.windows.len()
    );
    let t = Instant::now();
    let one_day = DriftQuery {
        from: Some(Timestamp(START)),
        to: Some(Timestamp(START + 86_400_000_000)),
        ..query(Window::DAY)
    };
    let reference = drift::Reference::load(store, &model(), None)?;
    drift::fold_windows(store, &model(), &one_day, &reference)?;
    println!(
        "raw-event fold of one day ({per_day} predictions) into drift sketches: {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!("| drift query | windows | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, w) in [
        ("1d windows, all days", Window::DAY),
        ("1h windows, all days", Window::HOUR),
    ] {
        let mut ms = Vec::new();
        let mut n = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let r = drift::drift(store, &model(), &query(w), &config)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            n = r.windows.len();
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {name} | {n} | {:.0} | {:.0} | {:.0} |",
            ms[ms.len() / 2],
            ms[(ms.len() * 95 / 100).min(ms.len() - 1)],
            ms[ms.len() - 1]
        );
    }
    Ok(())
}
