//! A file import's rows held without their events between encoding and the writer (issue 24).
//!
//! An import gathers about 131k rows per commit and keeps one commit queued while the writer
//! stores the previous one. Holding both commits' events (25 features a row as name/value
//! pairs, about 1.3 KB a row) was most of the import's 596 MB. Once a row is encoded for its
//! chunk, the writer needs of it only its request-index columns, its place in the file, its
//! role and what the schema check reads of its features: the names and the types of the values,
//! in order. So [`GatheredPredictions::push_rows`] keeps those ([`SlimRows`], tens of bytes a
//! row, and each distinct feature schema of the batch once) and drops the event.
//!
//! The rare rows whose text the writer needs (a refused row, kept in quarantine as its JSON and
//! named in its rejection by its value; the rows of a chunk that is not stored whole) are read
//! back from the chunk they were compressed into: a file import's lines are the events encoded
//! by [`encode_line`], so a line is exactly the JSON the event made, and reads back as its event.
//!
//! [`Rows`] gives the writer the same answers from either form, so that a batch of events (HTTP
//! ingest) takes the path it always took.

use super::*;
use serde_json::value::RawValue;
use std::hash::{Hash, Hasher};

/// One gathered row without its event.
#[derive(Debug)]
struct SlimRow {
    /// Its index in the client's batch (its place in the file).
    index: usize,
    /// End of its request id in `SlimRows::ids` (it starts where the previous row's ends).
    id_end: usize,
    /// End of its outcome in `SlimRows::outcomes`, in `compact.rs` form.
    outcome_end: usize,
    ts: i64,
    hash: u64,
    /// Its entry in `SlimRows::schemas`.
    schema: u32,
    /// Its entry in `SlimRows::versions`.
    version: u32,
    served: bool,
    error: bool,
}

/// The rows of a gathered batch without their events, in arrival order (see the module's
/// documentation).
#[derive(Debug, Default)]
pub(super) struct SlimRows {
    rows: Vec<SlimRow>,
    ids: String,
    outcomes: Vec<u8>,
    /// The distinct versions ('' for none).
    versions: Vec<String>,
    /// The distinct feature schemas, each as the features of its first row: `Schema::check`
    /// reads of a row the names and the types of its values, in order, so it answers for every
    /// row of a schema as it answers for its first, but for the value a refusal names.
    schemas: Vec<Vec<(FeatureName, FeatureValue)>>,
    /// `schemas` by a hash of their names and value types, for a row whose schema is not the
    /// previous row's.
    by_hash: HashMap<u64, Vec<u32>>,
    /// Filled by [`Encoded::from_slim`]: each row's place in `Encoded::keys`.
    key_of: Vec<u32>,
}

/// Same names and value types in the same order: the schema check answers both alike.
fn same_schema(a: &[(FeatureName, FeatureValue)], b: &[(FeatureName, FeatureValue)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, va), (nb, vb))| {
            na == nb && std::mem::discriminant(va) == std::mem::discriminant(vb)
        })
}

impl SlimRows {
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Keeps what the writer needs of `e`, the row at `index` of the client's batch.
    pub(super) fn push(&mut self, index: usize, e: &PredictionEvent) {
        self.ids.push_str(&e.request_id);
        compact::put_prediction(
            &mut self.outcomes,
            e.prediction.as_ref(),
            e.score,
            e.scores.as_deref(),
            e.has_tag(modelwatch_core::EXPLORATION_TAG),
        );
        let v = e.model_version.as_deref().unwrap_or("");
        // A batch has one version or a few: a search beats hashing every row's.
        let version = match self.versions.iter().position(|known| known == v) {
            Some(n) => n,
            None => {
                self.versions.push(v.to_string());
                self.versions.len() - 1
            }
        } as u32;
        let schema = self.schema_of(&e.features);
        self.rows.push(SlimRow {
            index,
            id_end: self.ids.len(),
            outcome_end: self.outcomes.len(),
            ts: e.timestamp.micros(),
            hash: id_hash(&e.request_id),
            schema,
            version,
            served: e.role.is_served(),
            error: e.error.is_some(),
        });
    }

    /// The entry of `features`' schema, added if new. Rows of a file share one schema or a
    /// few: the previous row's is tried first.
    fn schema_of(&mut self, features: &[(FeatureName, FeatureValue)]) -> u32 {
        if let Some(last) = self.rows.last() {
            if same_schema(&self.schemas[last.schema as usize], features) {
                return last.schema;
            }
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        features.len().hash(&mut h);
        for (name, value) in features {
            name.as_str().hash(&mut h);
            std::mem::discriminant(value).hash(&mut h);
        }
        let same_hash = self.by_hash.entry(h.finish()).or_default();
        if let Some(&s) = same_hash
            .iter()
            .find(|&&s| same_schema(&self.schemas[s as usize], features))
        {
            return s;
        }
        let s = self.schemas.len() as u32;
        self.schemas.push(features.to_vec());
        same_hash.push(s);
        s
    }

    fn id(&self, p: usize) -> &str {
        let start = if p == 0 { 0 } else { self.rows[p - 1].id_end };
        &self.ids[start..self.rows[p].id_end]
    }

    fn outcome(&self, p: usize) -> &[u8] {
        let start = if p == 0 {
            0
        } else {
            self.rows[p - 1].outcome_end
        };
        &self.outcomes[start..self.rows[p].outcome_end]
    }
}

impl Encoded {
    /// [`Encoded::new`] for rows kept as [`SlimRows`]: the same keys, ids, outcomes, versions and
    /// repeats as the events would give, and the rows kept for the writer.
    pub(super) fn from_slim(mut slim: SlimRows, chunks: Vec<Vec<u8>>) -> Encoded {
        // The job's number, from the same counter as every batch's.
        let mut encoded = Encoded::new(&[], chunks);
        let n = slim.rows.len();
        // The same order as `Encoded::new`'s: the ids' first 16 bytes, then whole ids, then
        // positions (the first of equal ids is the earliest row).
        let mut by_id: Vec<(u128, usize)> = (0..n).map(|p| (id_prefix(slim.id(p)), p)).collect();
        by_id.sort_unstable_by(|a, b| {
            (a.0.cmp(&b.0))
                .then_with(|| slim.id(a.1).cmp(slim.id(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let by_id: Vec<usize> = by_id.into_iter().map(|(_, p)| p).collect();
        let mut repeat_of = vec![None; n];
        for run in by_id.chunk_by(|a, b| slim.id(*a) == slim.id(*b)) {
            for &later in &run[1..] {
                repeat_of[later] = Some(run[0]);
            }
        }
        // Copied in key order, side by side, as `Encoded::new` does (the writer reads them so).
        let mut ids = String::with_capacity(slim.ids.len());
        let mut outcomes = Vec::with_capacity(slim.outcomes.len());
        let mut key_of = vec![0u32; n];
        let keys = by_id
            .iter()
            .enumerate()
            .map(|(k, &position)| {
                key_of[position] = k as u32;
                let r = &slim.rows[position];
                let start = ids.len();
                ids.push_str(slim.id(position));
                let outcome_start = outcomes.len();
                outcomes.extend_from_slice(slim.outcome(position));
                IndexKey {
                    position,
                    id: start..ids.len(),
                    outcome: outcome_start..outcomes.len(),
                    ts: r.ts,
                    version: r.version as usize,
                    error: r.error,
                    hash: r.hash,
                }
            })
            .collect();
        encoded.keys = keys;
        encoded.ids = ids;
        encoded.outcomes = outcomes;
        encoded.versions = std::mem::take(&mut slim.versions);
        encoded.repeat_of = repeat_of;
        // Only the rows' own columns and schemas stay: the ids and outcomes are in `encoded`.
        slim.ids = String::new();
        slim.outcomes = Vec::new();
        slim.by_hash = HashMap::new();
        slim.key_of = key_of;
        encoded.slim = Some(Box::new(slim));
        encoded
    }
}

/// A job's rows as the writer reads them: its events, or its [`SlimRows`].
pub(super) enum Rows<'a> {
    Events(&'a [(usize, PredictionEvent)]),
    Slim(&'a SlimRows, &'a Encoded),
}

impl<'a> Rows<'a> {
    pub(super) fn of(batch: &'a PredictionBatch, encoded: &'a Encoded) -> Self {
        match &encoded.slim {
            Some(slim) => Rows::Slim(slim, encoded),
            None => Rows::Events(&batch.rows),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Rows::Events(rows) => rows.len(),
            Rows::Slim(slim, _) => slim.rows.len(),
        }
    }

    fn key(slim: &SlimRows, encoded: &'a Encoded, p: usize) -> &'a IndexKey {
        &encoded.keys[slim.key_of[p] as usize]
    }

    pub(super) fn request_id(&self, p: usize) -> &'a str {
        match self {
            Rows::Events(rows) => &rows[p].1.request_id,
            Rows::Slim(slim, encoded) => &encoded.ids[Self::key(slim, encoded, p).id.clone()],
        }
    }

    // The version and time from the row itself, not its key: the writer asks in batch order,
    // and the keys are in request-id order (a cache miss a row: 1 % of the import's samples).
    pub(super) fn version(&self, p: usize) -> &'a str {
        match self {
            Rows::Events(rows) => rows[p].1.model_version.as_deref().unwrap_or(""),
            Rows::Slim(slim, encoded) => &encoded.versions[slim.rows[p].version as usize],
        }
    }

    pub(super) fn ts(&self, p: usize) -> i64 {
        match self {
            Rows::Events(rows) => rows[p].1.timestamp.micros(),
            Rows::Slim(slim, _) => slim.rows[p].ts,
        }
    }

    /// Appends the row's NDJSON line, as [`encode_line`] writes it.
    pub(super) fn encode_line(
        &self,
        p: usize,
        out: &mut Vec<u8>,
        lines: &mut Lines,
    ) -> Result<(), StoreError> {
        match self {
            Rows::Events(rows) => encode_line(out, &rows[p].1),
            Rows::Slim(_, encoded) => {
                out.extend_from_slice(lines.line(encoded, p)?);
                out.push(b'\n');
            }
        }
        Ok(())
    }

    /// The positions of the rows that pass the checks, in order; the others are set aside in
    /// `admission`, each named as its event would name it. Checks of a [`SlimRows`] batch run
    /// once per distinct schema while they add nothing to the model's features; a refused
    /// row is read back from its chunk for its rejection and its quarantined text.
    pub(super) fn admit(
        &self,
        admission: &mut Admission,
        entry: &mut CachedModel,
        encoded: &Encoded,
        lines: &mut Lines,
    ) -> Result<Vec<usize>, StoreError> {
        let mut admitted: Vec<usize> = Vec::with_capacity(self.len());
        let rows = match self {
            Rows::Events(rows) => rows,
            Rows::Slim(slim, _) => return self.admit_slim(slim, admission, entry, encoded, lines),
        };
        for (position, (index, event)) in rows.iter().enumerate() {
            if !event.role.is_served() {
                admission.refuse(shadow_rejection(*index, &event.request_id), event);
                continue;
            }
            if let Some(first) = encoded.repeat_of[position] {
                admission.refuse(
                    repeated_rejection(*index, &event.request_id, rows[first].0),
                    event,
                );
                continue;
            }
            if admission.admit(
                entry,
                *index,
                Some(&event.request_id),
                &event.features,
                event,
            ) {
                admitted.push(position);
            }
        }
        Ok(admitted)
    }

    fn admit_slim(
        &self,
        slim: &SlimRows,
        admission: &mut Admission,
        entry: &mut CachedModel,
        encoded: &Encoded,
        lines: &mut Lines,
    ) -> Result<Vec<usize>, StoreError> {
        let mut admitted: Vec<usize> = Vec::with_capacity(slim.rows.len());
        // A schema whose check added nothing passes every later row of it: the model's known
        // features only grow during a job, and their kinds do not change.
        let mut passes = vec![false; slim.schemas.len()];
        for (position, r) in slim.rows.iter().enumerate() {
            // Only a refused row needs its id (from its key, out of batch order).
            let id = || self.request_id(position);
            if !r.served {
                let row = lines.raw(encoded, position)?;
                admission.refuse(shadow_rejection(r.index, id()), &row);
                continue;
            }
            if let Some(first) = encoded.repeat_of[position] {
                let row = lines.raw(encoded, position)?;
                admission.refuse(
                    repeated_rejection(r.index, id(), slim.rows[first].index),
                    &row,
                );
                continue;
            }
            let s = r.schema as usize;
            if passes[s] {
                admitted.push(position);
                continue;
            }
            match admission.fits(entry, &slim.schemas[s]) {
                Some(added_nothing) => {
                    passes[s] = added_nothing;
                    admitted.push(position);
                }
                None => {
                    // Refused for the same field as its schema's first row; its own value
                    // names it, so the check runs again on the row read back.
                    let row = lines.raw(encoded, position)?;
                    let event =
                        decode_stored(row.get()).map_err(|e| corrupt_chunk(position as i64, e))?;
                    if admission.admit(entry, r.index, Some(id()), &event.features, &row) {
                        admitted.push(position);
                    }
                }
            }
        }
        Ok(admitted)
    }
}

/// The rejection of a shadow prediction in a batch gathered piece by piece.
fn shadow_rejection(index: usize, request_id: &str) -> Rejection {
    // Only `submit_predictions` parts a batch's shadow rows from its served ones; a batch
    // gathered piece by piece (a file import) has no role column.
    Rejection::new(
        index,
        "role",
        "shadow predictions are accepted by the ingest API, not by a file import",
    )
    .with_request_id(Some(request_id))
}

/// The lines of a [`SlimRows`] batch's chunks, read back one chunk at a time (the writer asks
/// for rows in batch order, so each chunk is decompressed once per pass).
#[derive(Default)]
pub(super) struct Lines {
    chunk: Option<usize>,
    text: Vec<u8>,
    /// Where each line of `text` ends (its newline).
    ends: Vec<usize>,
}

impl Lines {
    /// The line of the row at `position`, without its newline.
    fn line(&mut self, encoded: &Encoded, position: usize) -> Result<&[u8], StoreError> {
        let (chunk, row) = (position / CHUNK_MAX_ROWS, position % CHUNK_MAX_ROWS);
        let unreadable = |detail: String| StoreError::Corrupt {
            what: "chunk",
            detail: format!("row {position} of a batch being stored: {detail}"),
        };
        if self.chunk != Some(chunk) {
            let data = encoded
                .chunks
                .get(chunk)
                .ok_or_else(|| unreadable("no chunk holds it".into()))?;
            self.text =
                zstd::stream::decode_all(&data[..]).map_err(|e| unreadable(e.to_string()))?;
            self.ends = memchr_newlines(&self.text);
            self.chunk = Some(chunk);
        }
        let end = *self
            .ends
            .get(row)
            .ok_or_else(|| unreadable("its chunk is shorter".into()))?;
        let start = if row == 0 { 0 } else { self.ends[row - 1] + 1 };
        Ok(&self.text[start..end])
    }

    /// The row's line as JSON to keep as it is (the quarantined text of a refused row).
    fn raw(&mut self, encoded: &Encoded, position: usize) -> Result<Box<RawValue>, StoreError> {
        let line = self.line(encoded, position)?.to_vec();
        let text = String::from_utf8(line).map_err(|e| corrupt_chunk(position as i64, e))?;
        RawValue::from_string(text).map_err(|e| corrupt_chunk(position as i64, e))
    }
}

fn memchr_newlines(text: &[u8]) -> Vec<usize> {
    text.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect()
}
