//! Chunks (the SQL table `segments`): a batch's events as zstd-compressed NDJSON, at most
//! `CHUNK_MAX_ROWS` events each, encoded and compressed on the caller's thread before the batch
//! reaches the writer (`Encoded`, `GatheredPredictions`, `ChunkEncoder`), with the batch's
//! request-index columns in key order; and read back (`chunk_text`, `decode_stored`).
//!
//! Invariants:
//! - every stored event (served or shadow) is in exactly one chunk, and a chunk holds only
//!   stored events (a duplicate or refused row is never written to one);
//! - a chunk line decodes, with the ingest parser, to the event that was stored: a row is kept
//!   as the client sent it only when it reads back as its event;
//! - chunk ids only grow in insertion order, and a chunk holds fewer than 2^20 events (the
//!   predictions' page cursor, `reads.rs`, relies on both).

use super::*;

// Chunks (each job's compressed events) live in the table `segments`, and the columns that point
// at one are `segment_id` (`request_index`, `hour_deltas`): the SQL names predate the word chunk
// ("segment" now means a slice of traffic by feature or tag value) and are kept so that every
// existing data directory opens as it is, with no migration to run and none to undo.

/// zstd level for chunks: level 1 compresses event JSON about 4x at several hundred MB/s, so
/// the disk writes (WAL, then checkpoint) stay well under the disk's bandwidth.
const CHUNK_ZSTD_LEVEL: i32 = 1;

/// Level 1's hash table for 1 MiB frames has 2^14 entries; 2^11 compresses event NDJSON both
/// faster and smaller (`zstd -b1 --zstd=hlog=11` on 1 MiB of chunk: 362 -> 427 MB/s and
/// 3.58 -> 3.95 times on the peers' rows, 370 -> 434 MB/s and 3.59 -> 4.07 times on the load
/// generator's). A smaller table keeps the most recent occurrence of each short sequence, and
/// in NDJSON the best match for a field name is the previous row's. Readers are unaffected.
const CHUNK_ZSTD_HASH_LOG: u32 = 11;

/// Most events in one chunk: bounds the memory a reader needs to decode one, and keeps row
/// offsets within the pagination cursor's 20 bits.
pub(super) const CHUNK_MAX_ROWS: usize = 65_536;

/// A batch's events encoded for chunks before they reach the writer: each CHUNK_MAX_ROWS-row
/// chunk as NDJSON, compressed. Encoding and compressing run on the caller's thread, in parallel
/// across requests; the single writer only stores the result.
///
/// Lines are compressed as they are written, about 1 MiB at a time, rather than gathered for the
/// whole batch first: a 131k-row import commit made 70 MB of fresh memory per commit whose page
/// faults were a fifth of the encoding thread's time. The writer needs single lines only when
/// some rows of a chunk are not stored (repeated ids, rejections), and encodes those rows again
/// then.
///
/// What does not depend on the stored state is worked out here too, off the writer's thread: the
/// rows' request-index columns in request-id order (index rows go in in key order) and the rows
/// whose request id repeats an earlier row of the batch.
#[derive(Debug, Default)]
pub(super) struct Encoded {
    /// Names the job, for the labels of its rows
    /// ([`SqliteStore::submit_gathered_with_labels`]).
    pub(super) job: u64,
    /// Those labels are queued right after the job: keep its index rows for them.
    pub(super) labels_follow: bool,
    /// Compressed chunks of all rows, valid for a chunk when every row of the chunk is stored.
    pub(super) chunks: Vec<Vec<u8>>,
    /// Every row's request-index columns, sorted by request id (rows with the same id in batch
    /// order), copied side by side: the writer reads them in this order, and reading them from
    /// the events, scattered across the heap in that order, missed the cache on every row (the
    /// costliest line of the writer's own code).
    pub(super) keys: Vec<IndexKey>,
    /// The request ids of `keys`, one after the other.
    pub(super) ids: String,
    /// The outcomes of `keys` in `compact.rs` form, one after the other.
    pub(super) outcomes: Vec<u8>,
    /// The distinct versions of the batch ('' for none), which `IndexKey::version` points into.
    pub(super) versions: Vec<String>,
    /// For a row whose request id appeared earlier in the batch, the position of that first row.
    pub(super) repeat_of: Vec<Option<usize>>,
    /// The rows, when they were gathered without their events (`gathered.rs`).
    pub(super) slim: Option<Box<SlimRows>>,
}

/// One row's columns of `request_index`, as [`Encoded::keys`] holds them.
#[derive(Debug)]
pub(super) struct IndexKey {
    /// Position of the row in the batch.
    pub(super) position: usize,
    /// Where its request id is in `Encoded::ids`.
    pub(super) id: std::ops::Range<usize>,
    /// Where its outcome is in `Encoded::outcomes`.
    pub(super) outcome: std::ops::Range<usize>,
    pub(super) ts: i64,
    pub(super) version: usize,
    pub(super) error: bool,
    /// [`id_hash`] of its request id, for the closed buckets' filters.
    pub(super) hash: u64,
}

impl Encoded {
    /// The index columns of `rows`, whose chunks are already compressed.
    pub(super) fn new(rows: &[(usize, PredictionEvent)], chunks: Vec<Vec<u8>>) -> Encoded {
        let id = |p: usize| rows[p].1.request_id.as_str();
        // Sorted on the ids' first 16 bytes first, held in the array itself: comparing strings
        // behind pointers missed the cache on nearly every comparison. Ties (equal prefixes)
        // compare the whole ids, then positions, so the first of equal ids is the earliest row.
        let mut by_id: Vec<(u128, usize)> =
            (0..rows.len()).map(|p| (id_prefix(id(p)), p)).collect();
        by_id.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0))
                .then_with(|| id(a.1).cmp(id(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let by_id: Vec<usize> = by_id.into_iter().map(|(_, p)| p).collect();
        let mut repeat_of = vec![None; rows.len()];
        for run in by_id.chunk_by(|a, b| id(*a) == id(*b)) {
            for &later in &run[1..] {
                repeat_of[later] = Some(run[0]);
            }
        }
        let mut ids = String::with_capacity(by_id.iter().map(|&p| id(p).len()).sum());
        let mut outcomes = Vec::with_capacity(rows.len() * 20);
        let mut versions: Vec<String> = Vec::new();
        let keys = by_id
            .iter()
            .map(|&position| {
                let e = &rows[position].1;
                let start = ids.len();
                ids.push_str(&e.request_id);
                let outcome_start = outcomes.len();
                compact::put_prediction(
                    &mut outcomes,
                    e.prediction.as_ref(),
                    e.score,
                    e.scores.as_deref(),
                    e.has_tag(modelwatch_core::EXPLORATION_TAG),
                );
                let v = e.model_version.as_deref().unwrap_or("");
                // A batch has one version or a few: a search beats hashing every row's.
                let version = match versions.iter().position(|known| known == v) {
                    Some(n) => n,
                    None => {
                        versions.push(v.to_string());
                        versions.len() - 1
                    }
                };
                IndexKey {
                    position,
                    id: start..ids.len(),
                    outcome: outcome_start..outcomes.len(),
                    ts: e.timestamp.micros(),
                    version,
                    error: e.error.is_some(),
                    hash: id_hash(&e.request_id),
                }
            })
            .collect();
        static JOBS: AtomicU64 = AtomicU64::new(0);
        Encoded {
            job: JOBS.fetch_add(1, Ordering::Relaxed),
            labels_follow: false,
            chunks,
            keys,
            ids,
            outcomes,
            versions,
            repeat_of,
            slim: None,
        }
    }
}

/// A prediction batch gathered piece by piece for [`SqliteStore::submit_gathered`] (a bulk
/// import gathers a commit from the pieces it reads the file in), its chunks encoded and
/// compressed as the rows arrive. Encoding each piece while the next one is read keeps the reader
/// busy: when a whole commit was encoded at once, the import's reader, two pieces ahead at most, waited for
/// it, and the import then waited for the reader (0.5 s of a 5 s import).
#[derive(Debug, Default)]
pub struct GatheredPredictions {
    pub(super) batch: PredictionBatch,
    pub(super) chunks: ChunkEncoder,
    /// The rows pushed, kept without their events once encoded (`gathered.rs`).
    pub(super) slim: SlimRows,
}

impl GatheredPredictions {
    /// An empty batch for about `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        GatheredPredictions {
            batch: PredictionBatch::new(Vec::with_capacity(rows)),
            chunks: ChunkEncoder::with_capacity(rows),
            slim: SlimRows::default(),
        }
    }

    /// Adds rows (each with its index in the client's batch), encoding them for their chunks
    /// and keeping only what the writer needs of them (`gathered.rs`).
    pub fn push_rows(
        &mut self,
        rows: impl IntoIterator<Item = (usize, PredictionEvent)>,
    ) -> Result<(), StoreError> {
        for (index, event) in rows {
            self.chunks.push(&event, None)?;
            self.slim.push(index, &event);
        }
        Ok(())
    }

    /// Adds rows rejected before they reached the store.
    pub fn push_rejected(&mut self, rows: impl IntoIterator<Item = Quarantined>) {
        self.batch.rejected.extend(rows);
    }

    /// Rows gathered, accepted or rejected.
    pub fn len(&self) -> usize {
        self.batch.rows.len() + self.slim.len() + self.batch.rejected.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Chunks being encoded: each event's NDJSON line is staged and compressed about 1 MiB at a
/// time (`CHUNK_FRAME_BYTES`), and a new chunk starts every `CHUNK_MAX_ROWS` rows.
#[derive(Debug, Default)]
pub(super) struct ChunkEncoder {
    /// Made with the first row.
    z: Option<ChunkCompressor>,
    stage: Vec<u8>,
    /// Compressed chunks, the last one still growing.
    chunks: Vec<Vec<u8>>,
    rows_in_last: usize,
    /// Rows expected, to size the chunks' buffers.
    capacity: usize,
}

impl ChunkEncoder {
    pub(super) fn with_capacity(rows: usize) -> Self {
        ChunkEncoder {
            capacity: rows,
            ..ChunkEncoder::default()
        }
    }

    /// Adds one event's line: `sent`, the row as the client sent it, when it reads back as
    /// the event (encoding the event again was a third of the encoding time), else the event
    /// encoded.
    pub(super) fn push(
        &mut self,
        e: &PredictionEvent,
        sent: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        if self.z.is_none() {
            self.z = Some(ChunkCompressor::new()?);
            self.stage = Vec::with_capacity(CHUNK_FRAME_BYTES + 64 * 1024);
        }
        if self.chunks.is_empty() || self.rows_in_last == CHUNK_MAX_ROWS {
            self.compress_stage()?;
            let rows = (self
                .capacity
                .saturating_sub(self.chunks.len() * CHUNK_MAX_ROWS))
            .clamp(1, CHUNK_MAX_ROWS);
            // Compressed events take 150-250 bytes each (25 features): start near that.
            self.chunks.push(Vec::with_capacity(rows * 192));
            self.rows_in_last = 0;
        }
        match sent {
            Some(row) => {
                self.stage.extend_from_slice(row);
                self.stage.push(b'\n');
            }
            None => encode_line(&mut self.stage, e),
        }
        self.rows_in_last += 1;
        if self.stage.len() >= CHUNK_FRAME_BYTES {
            self.compress_stage()?;
        }
        Ok(())
    }

    /// Compresses the staged lines onto the last chunk as one frame.
    fn compress_stage(&mut self) -> Result<(), StoreError> {
        if let (Some(z), Some(data)) = (&mut self.z, self.chunks.last_mut()) {
            z.append(data, &self.stage)?;
        }
        self.stage.clear();
        Ok(())
    }

    /// The compressed chunks, one per `CHUNK_MAX_ROWS` rows.
    pub(super) fn finish(mut self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.compress_stage()?;
        Ok(self.chunks)
    }
}

/// The first 16 bytes of a request id as a number that sorts like the bytes (zero-padded: a
/// shorter id sorts first, or ties and is compared whole).
pub(super) fn id_prefix(id: &str) -> u128 {
    let mut b = [0u8; 16];
    let n = id.len().min(16);
    b[..n].copy_from_slice(&id.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

/// One event as a chunk line: its JSON in the contract's format and a newline. Public, with
/// [`decode_stored`], for the fuzz targets' check that every accepted event reads back.
pub fn encode_line(out: &mut Vec<u8>, e: &PredictionEvent) {
    serde_json::to_writer(&mut *out, e).expect("validated events serialize");
    out.push(b'\n');
}

/// NDJSON bytes per zstd frame. A chunk is a sequence of whole frames, which readers decode as
/// one stream (chunks written before were a single frame; they read the same). Compressing
/// 1 MiB pieces in one call each takes zstd's fast path, while feeding a streaming compressor
/// the same pieces was 2.5 times slower (its window wraps around an internal buffer); and
/// chunks come out within 0.1 % of one frame's size (measured on the peers' data).
const CHUNK_FRAME_BYTES: usize = 1 << 20;

/// A zstd context kept for all the frames of one batch.
pub(super) struct ChunkCompressor(zstd::bulk::Compressor<'static>);

impl std::fmt::Debug for ChunkCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkCompressor")
    }
}

impl ChunkCompressor {
    pub(super) fn new() -> Result<Self, StoreError> {
        let mut z = zstd::bulk::Compressor::new(CHUNK_ZSTD_LEVEL).map_err(compression_error)?;
        z.set_parameter(zstd::stream::raw::CParameter::HashLog(CHUNK_ZSTD_HASH_LOG))
            .map_err(compression_error)?;
        Ok(ChunkCompressor(z))
    }

    /// Appends `ndjson` (whole lines) to a chunk's data as one frame.
    pub(super) fn append(&mut self, data: &mut Vec<u8>, ndjson: &[u8]) -> Result<(), StoreError> {
        if ndjson.is_empty() {
            return Ok(());
        }
        data.reserve(zstd::zstd_safe::compress_bound(ndjson.len()));
        let mut out = std::io::Cursor::new(data);
        out.set_position(out.get_ref().len() as u64);
        self.0
            .compress_to_buffer(ndjson, &mut out)
            .map(drop)
            .map_err(compression_error)
    }
}

/// NDJSON cut into pieces of about CHUNK_FRAME_BYTES, at line ends.
pub(super) fn frames(ndjson: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = ndjson;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = match rest.get(CHUNK_FRAME_BYTES..) {
            None => rest.len(),
            Some(after) => after
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |i| CHUNK_FRAME_BYTES + i + 1),
        };
        let (frame, tail) = rest.split_at(end);
        rest = tail;
        Some(frame)
    })
}

fn compression_error(source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: "chunk compression".into(),
        source,
    }
}

/// Decodes one stored event. Stored events were validated at ingest; they are read back with the
/// same parser, with an arrival time far enough ahead that no stored timestamp looks "future".
pub(super) fn corrupt_chunk(chunk: i64, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: "chunk",
        detail: format!("chunk {chunk}: {detail}"),
    }
}

/// The NDJSON of a stored chunk.
pub(super) fn chunk_text(
    chunk: i64,
    data: rusqlite::types::ValueRef<'_>,
) -> Result<String, StoreError> {
    let data = data.as_blob().map_err(|e| corrupt_chunk(chunk, e))?;
    let text = zstd::stream::decode_all(data).map_err(|e| corrupt_chunk(chunk, e))?;
    String::from_utf8(text).map_err(|e| corrupt_chunk(chunk, e))
}

/// A chunk line read back as its event (the reverse of [`encode_line`], and of a row stored
/// as sent).
pub fn decode_stored(line: &str) -> Result<PredictionEvent, String> {
    let limits = IngestLimits {
        max_features: usize::MAX,
        max_tags: usize::MAX,
        max_request_id_len: usize::MAX,
    };
    parse_prediction_row(line, 0, Timestamp(i64::MAX / 2), &limits)
        .map_err(|r| format!("{}: {}", r.field, r.reason))
}
