//! The short run of every fuzz target that CI keeps (stable, no libFuzzer): each target's body
//! over its committed corpus (fuzz/corpus/<target>, which holds every crash input found so far)
//! and then over a fixed number of mutations of it from a seeded generator (bytes flipped,
//! inserted, deleted, duplicated; tokens of JSON, CSV and durations inserted; entries spliced),
//! the same on every run. A failure prints the input as a Rust byte string to add to the corpus.
//! Long sessions under libFuzzer: docs/fuzzing.md.

use modelwatch_fuzz_targets::TARGETS;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Mutated inputs per target: a few seconds for all targets in a debug build.
/// `FUZZ_REPLAY_MUTATIONS=N` runs more (a longer search on stable, e.g. in a release build).
const MUTATIONS: usize = 3_000;

fn mutations() -> usize {
    std::env::var("FUZZ_REPLAY_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MUTATIONS)
}

/// Tokens worth inserting: structure of JSON, CSV, TOML and query strings, and values that
/// parsers get wrong (non-ASCII at the end of a span, huge numbers, lone surrogates).
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"=",
    b"&",
    b"%",
    b"\\",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"1e400",
    b"NaN",
    b"-0",
    b"1.5",
    b"\xc3\xbc",
    b"\xe2\x82\xac",
    b"\xff",
    b"\\ud800",
    b"\\u00fc",
    b"9223372036854775807",
    b"h",
    b"d",
    b"m",
    b"s",
    b"w",
    b"T",
    b"Z",
    b"+02:00",
    b"2026-01-02T03:04:05Z",
    b"\"features\"",
    b"\"score\"",
    b"\"prediction\"",
    b"\"request_id\"",
    b"\"timestamp\"",
    b"\"kind\"",
    b"\"windows\"",
    b"\"for\"",
    b"\"max_age\"",
    b"[[models.m.rules]]",
    b"[alerts]",
    b"window=",
    b"range=",
];

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] = rng.next() as u8;
            }
            2 => data.insert(at, rng.next() as u8),
            3 => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            5 => {
                // Duplicate a piece (a repeated field, row or key).
                let end = (at + 1 + rng.below(64)).min(data.len());
                let piece = data[at.min(end)..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, piece);
            }
            _ => {
                // Splice: this entry's head, another's tail.
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect()
}

fn run(target: &str) {
    let body = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a target of that name")
        .1;
    let corpus = corpus(target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
    let check = |what: &str, input: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| body(input))).is_err() {
            panic!(
                "fuzz target {target} failed on {what}; add the input to fuzz/corpus/{target}/ \
                 and fix the code:\nb\"{}\"",
                input.escape_ascii()
            );
        }
    };
    for (i, input) in corpus.iter().enumerate() {
        check(&format!("corpus entry {i}"), input);
    }
    // One seed per target, so that adding a target does not change the others' inputs.
    let mut rng = Rng(target.bytes().fold(0x6d77_u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    }));
    for i in 0..mutations() {
        let input = mutate(&mut rng, &corpus);
        check(&format!("mutation {i}"), &input);
    }
}

#[test]
fn every_target_has_a_short_run_here() {
    let here = include_str!("replay.rs");
    for (name, _) in TARGETS {
        assert!(
            here.contains(&format!("fn {name}() {{")),
            "target {name} has no test in tests/replay.rs"
        );
    }
}

#[test]
fn prediction_rows() {
    run("prediction_rows");
}

#[test]
fn label_rows() {
    run("label_rows");
}

#[test]
fn csv_table() {
    run("csv_table");
}

#[test]
fn ndjson_table() {
    run("ndjson_table");
}

#[test]
fn time_params() {
    run("time_params");
}

#[test]
fn rule_json() {
    run("rule_json");
}

#[test]
fn config_file() {
    run("config_file");
}
