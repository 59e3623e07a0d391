//! What the load generator (`modelwatch-loadgen`) and the soak test (`modelwatch-soak`) share:
//! the request bodies they send and the readings they take of the server process.

use rand::Rng;

/// One NDJSON body of `rows` predictions: 25 features shaped like the peers' benchmark data
/// (20 numeric, 5 categorical), a score, its decision at 0.5 and a latency. Request ids are
/// unique per (`batch_no`, row). With `now`, every event carries that timestamp (live traffic);
/// without, events spread over 28 days of January 2026.
pub fn body(batch_no: usize, rows: usize, now: Option<&str>, rng: &mut impl Rng) -> String {
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
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
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

/// Resident memory of `pid` in MiB, from /proc.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `data` compressed with gzip at the fast level, as a client would send it.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

/// The current time as RFC 3339, the timestamp of live traffic.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    modelwatch_core::Timestamp::from_secs(secs as i64).to_rfc3339()
}

/// The `q` quantile of `v` (nearest rank; NaN when empty): request latencies in the reports.
/// Sorts `v`.
pub fn percentile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
}
