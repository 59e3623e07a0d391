use super::*;
use crate::conformance::{self, model, p, preds};

#[test]
fn passes_the_store_conformance_suite() {
    for (name, check) in conformance::ALL {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        eprintln!("conformance: {name}");
        check(&store);
    }
}

/// The suite again with request buckets of 2 rows: nearly every batch closes the bucket before
/// it, so de-duplication, the label join, retention and scans all cross closed buckets and
/// their filters.
#[test]
fn passes_the_store_conformance_suite_with_tiny_request_buckets() {
    for (name, check) in conformance::ALL {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with_bucket_rows(dir.path(), 2).unwrap();
        eprintln!("conformance, buckets of 2: {name}");
        check(&store);
    }
}

/// Ids `from..to` as predictions in one batch, an hour apart from 2026-01-01.
fn numbered(from: usize, to: usize) -> PredictionBatch {
    let rows: Vec<String> = (from..to)
        .map(|i| {
            let ts = format!("2026-01-01T{:02}:00:00Z", i % 24);
            p(&format!("req-{i:05}"), &ts, i as f64)
        })
        .collect();
    preds(&rows.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn ids_in_closed_buckets_are_duplicates_and_their_labels_join() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with_bucket_rows(dir.path(), 100).unwrap();
    // Ten batches of 100: each closes the bucket the previous one filled.
    for b in 0..10 {
        let out = store
            .ingest_predictions(&model(), numbered(b * 100, b * 100 + 100))
            .unwrap();
        assert_eq!(out.accepted, 100);
    }
    let buckets = {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let id = model_id(&conn, &model()).unwrap().unwrap();
        Buckets::load(&conn, id).unwrap()
    };
    // Groups of 4 (the tests' size): buckets 0-3 and 4-7; bucket 8 is in none yet.
    assert_eq!((buckets.closed.len(), buckets.open_rows), (9, 100));
    assert_eq!(buckets.groups, [(0, 3), (4, 7)]);
    // A retry of every batch at once, with 50 new ids: only those are stored.
    let out = store
        .ingest_predictions(&model(), numbered(0, 1050))
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (50, 1000));
    assert_eq!(store.model(&model()).unwrap().unwrap().predictions, 1050);
    // Labels for ids of every bucket, and one without a prediction, join where they belong,
    // whether the caller or the writer looks them up.
    let ids: Vec<String> = (0..1051)
        .step_by(7)
        .map(|i| format!("req-{i:05}"))
        .collect();
    let labels = LabelBatch {
        rows: ids.iter().map(|id| label_event(id)).enumerate().collect(),
        rejected: vec![],
    };
    store.ingest_labels(&model(), labels).unwrap();
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!(
        (m.labels, m.labelled),
        (ids.len() as u64, ids.len() as u64 - 1)
    );
    // The orphan label joins its prediction when it comes, in the open bucket.
    store
        .ingest_predictions(&model(), numbered(1050, 1051))
        .unwrap();
    assert_eq!(
        store.model(&model()).unwrap().unwrap().labelled,
        ids.len() as u64
    );
    // And everything reads back after a restart, with the filters loaded from the database.
    drop(store);
    let store = SqliteStore::open_with_bucket_rows(dir.path(), 100).unwrap();
    let out = store
        .ingest_predictions(&model(), numbered(0, 1051))
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 1051));
    let mut scanned = 0;
    let mut labelled = 0;
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |_, l| {
            scanned += 1;
            labelled += usize::from(l.is_some());
        })
        .unwrap();
    assert_eq!((scanned, labelled), (1051, ids.len()));
}

#[test]
fn a_scan_hands_every_event_its_own_label_across_lookup_batches_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Three chunks, the largest holding more events than a scan looks up labels for at once.
    let n = 2 * SCAN_LABEL_BATCH + 1000;
    for (from, to) in [
        (0, 1000),
        (1000, SCAN_LABEL_BATCH + 5000),
        (SCAN_LABEL_BATCH + 5000, n),
    ] {
        store
            .ingest_predictions(&model(), numbered(from, to))
            .unwrap();
    }
    // Every third event is labelled, each with a label of its own, in an order of their own.
    let label_of = |i: usize| Outcome::Number((i % 97) as f64);
    let mut labelled: Vec<usize> = (0..n).step_by(3).collect();
    labelled.reverse();
    let labels = LabelBatch {
        rows: labelled
            .iter()
            .map(|&i| LabelEvent {
                request_id: format!("req-{i:05}"),
                label: label_of(i),
                timestamp: Timestamp::now(),
            })
            .enumerate()
            .collect(),
        rejected: vec![],
    };
    store.ingest_labels(&model(), labels).unwrap();
    let mut seen = Vec::new();
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |e, l| {
            if let Some(l) = l {
                assert_eq!(l.request_id, e.request_id);
            }
            seen.push((e.request_id.clone(), l.map(|l| l.label.clone())));
        })
        .unwrap();
    // Stored order, and the label of each event's own id.
    let want: Vec<(String, Option<Outcome>)> = (0..n)
        .map(|i| (format!("req-{i:05}"), (i % 3 == 0).then(|| label_of(i))))
        .collect();
    assert_eq!(seen.len(), want.len());
    assert!(
        seen == want,
        "first difference at {:?}",
        seen.iter().zip(&want).position(|(a, b)| a != b)
    );
}

#[test]
fn a_version_5_database_loses_its_index_by_chunk_and_scans_the_same() {
    let dir = two_predictions_and_labels();
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "CREATE INDEX request_index_segment ON request_index(model_id, segment_id);
         DROP TABLE IF EXISTS shadow_index; DROP TABLE IF EXISTS shadow_versions; ALTER TABLE reference_rows DROP COLUMN explanations; PRAGMA user_version = 5;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut seen = Vec::new();
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |e, l| {
            seen.push((e.request_id.clone(), l.is_some()));
        })
        .unwrap();
    assert_eq!(seen, [("a".to_string(), true), ("b".to_string(), false)]);
    drop(store);
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let (version, indexes): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_schema WHERE name = 'request_index_segment')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, indexes), (SCHEMA_VERSION, 0));
}

#[test]
fn a_bucket_filled_across_a_restart_or_not_gets_the_filter_of_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with_bucket_rows(dir.path(), 100).unwrap();
    // Bucket 0 fills in one process: its filter is built from the hashes the writer kept.
    store
        .ingest_predictions(&model(), numbered(0, 100))
        .unwrap();
    // Half of this batch is already stored: only the new half goes into bucket 1 (and only its
    // hashes are kept).
    let out = store
        .ingest_predictions(&model(), numbered(50, 150))
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (50, 50));
    // Bucket 1 fills after a restart: its filter is built from its rows, read back.
    drop(store);
    let store = SqliteStore::open_with_bucket_rows(dir.path(), 100).unwrap();
    for (from, to) in [(150, 200), (200, 300), (300, 301)] {
        store
            .ingest_predictions(&model(), numbered(from, to))
            .unwrap();
    }
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let id = model_id(&conn, &model()).unwrap().unwrap();
    let filters: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT bucket, filter FROM request_buckets WHERE model_id = ?1 AND closed = 1")
        .unwrap()
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(filters.len(), 3);
    for (bucket, filter) in filters {
        assert!(filter.len() > 100, "bucket {bucket} has no filter");
        assert_eq!(
            filter,
            buckets::filter_from_rows(&conn, id, bucket),
            "bucket {bucket}"
        );
    }
    // Every id is found again, whichever bucket holds it.
    let out = store
        .ingest_predictions(&model(), numbered(0, 301))
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 301));
}

#[test]
fn a_version_4_index_becomes_the_first_bucket() {
    let dir = two_predictions_and_labels();
    downgrade(&dir, "");
    let store = SqliteStore::open_with_bucket_rows(dir.path(), 1).unwrap();
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.predictions, m.labels, m.labelled), (2, 2, 1));
    // The old rows are a full bucket: the next batch closes it and still sees them.
    let out = store
        .ingest_predictions(
            &model(),
            preds(&[
                &p("a", "2026-01-01T00:00:00Z", 1.5),
                &p("c", "2026-01-01T00:00:00Z", 1.5),
            ]),
        )
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (1, 1));
}

#[test]
fn data_survives_reopen_and_a_second_process_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store
            .ingest_predictions(&model(), preds(&[&p("a", "2026-01-01T00:00:00Z", 1.5)]))
            .unwrap();
        assert!(matches!(
            SqliteStore::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let page = store.predictions(&model(), None, 10).unwrap();
    assert_eq!(page.items.len(), 1);
    let e = &page.items[0];
    assert_eq!(e.request_id, "a");
    assert_eq!(e.features[0], ("age".into(), FeatureValue::Number(1.5)));
    assert_eq!(e.model_version.as_deref(), Some("v1"));
    assert_eq!(e.score, Some(0.8));
}

/// A closed data directory with predictions "a" (00:10) and "b" (02:10), a label for "a" and
/// one for "not-yet", whose prediction is missing: what the migration tests turn back into an
/// older schema.
fn two_predictions_and_labels() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .ingest_predictions(
            &model(),
            preds(&[
                &p("a", "2026-01-01T00:10:00Z", 1.5),
                &p("b", "2026-01-01T02:10:00Z", 1.5),
            ]),
        )
        .unwrap();
    let labels = crate::LabelBatch {
        rows: vec![(0, label_event("a")), (1, label_event("not-yet"))],
        rejected: vec![],
    };
    store.ingest_labels(&model(), labels).unwrap();
    dir
}

#[test]
fn a_version_1_database_is_migrated_with_every_hour_dirty() {
    let dir = two_predictions_and_labels();
    // Turn it back into what version 1 wrote: no aggregates tables, no marks.
    downgrade(
        &dir,
        "DROP TABLE hour_deltas; ALTER TABLE request_index DROP COLUMN outcome;
         DROP TABLE dirty_hours; DROP TABLE aggregates; DROP TABLE kpis;
         DROP INDEX request_index_segment;
         ALTER TABLE models DROP COLUMN labelled; ALTER TABLE models DROP COLUMN orphan_labels;
         DROP TABLE IF EXISTS shadow_index; DROP TABLE IF EXISTS shadow_versions; PRAGMA user_version = 1;",
    );
    let store = SqliteStore::open(dir.path()).unwrap();
    let dirty: Vec<String> = store
        .dirty_hours(&model())
        .unwrap()
        .iter()
        .map(|d| d.hour.to_rfc3339())
        .collect();
    assert_eq!(dirty, ["2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z"]);
    // The label counters are computed once by the migration, then kept by the writer.
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (2, 1));
    store
        .ingest_predictions(
            &model(),
            preds(&[&p("not-yet", "2026-01-01T03:00:00Z", 1.5)]),
        )
        .unwrap();
    assert_eq!(store.model(&model()).unwrap().unwrap().labelled, 2);
    assert_eq!(
        store.predictions(&model(), None, 10).unwrap().items.len(),
        3
    );
}

#[test]
fn a_version_2_database_rescans_the_hours_of_its_old_predictions_for_new_labels() {
    let dir = two_predictions_and_labels();
    // Turn it back into what version 2 wrote: no outcomes in the index, no label deltas,
    // every mark a full one.
    downgrade(
        &dir,
        "DROP TABLE hour_deltas; ALTER TABLE request_index DROP COLUMN outcome;
         ALTER TABLE dirty_hours DROP COLUMN deltas_only; ALTER TABLE dirty_hours DROP COLUMN full_at;
         DELETE FROM dirty_hours;
         DROP TABLE IF EXISTS shadow_index; DROP TABLE IF EXISTS shadow_versions; PRAGMA user_version = 2;",
    );
    let store = SqliteStore::open(dir.path()).unwrap();
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (2, 1));
    let labels = store.labels(&model(), None, 10).unwrap().items;
    assert_eq!(labels.len(), 2);
    // "b" was stored without its outcome: its first label marks the hour for a rescan.
    store
        .ingest_labels(
            &model(),
            crate::LabelBatch {
                rows: vec![(0, label_event("b"))],
                rejected: vec![],
            },
        )
        .unwrap();
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(dirty.len(), 1);
    assert!(!dirty[0].deltas_only);
    assert!(store.hour_deltas(&model()).unwrap().is_empty());
    // A prediction stored now carries its outcome: its first label is a delta.
    store
        .ingest_predictions(&model(), preds(&[&p("c", "2026-01-01T05:00:00Z", 1.5)]))
        .unwrap();
    answer_every_mark(&store);
    store
        .ingest_labels(
            &model(),
            crate::LabelBatch {
                rows: vec![(0, label_event("c"))],
                rejected: vec![],
            },
        )
        .unwrap();
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0].labels().unwrap()[0].score, Some(0.8));
}

#[test]
fn a_version_3_database_keeps_its_label_deltas_and_marks() {
    let dir = two_predictions_and_labels();
    // Turn it back into what version 3 wrote: label deltas only, `labels_only` marks.
    downgrade(
        &dir,
        "DELETE FROM hour_deltas WHERE segment_id IS NOT NULL;
         DROP INDEX hour_deltas_hour; ALTER TABLE hour_deltas DROP COLUMN segment_id;
         ALTER TABLE hour_deltas RENAME TO label_deltas;
         CREATE INDEX label_deltas_hour ON label_deltas(model_id, version, hour);
         ALTER TABLE dirty_hours RENAME COLUMN deltas_only TO labels_only;
         ALTER TABLE dirty_hours DROP COLUMN full_at;
         DROP TABLE IF EXISTS shadow_index; DROP TABLE IF EXISTS shadow_versions; PRAGMA user_version = 3;",
    );
    let store = SqliteStore::open(dir.path()).unwrap();
    // The label of "a" is still a delta of its hour, and new predictions now make deltas too.
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0].chunk, None);
    assert_eq!(deltas[0].labels().unwrap().len(), 1);
    store
        .ingest_predictions(&model(), preds(&[&p("c", "2026-01-01T05:00:00Z", 1.5)]))
        .unwrap();
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 2);
    assert!(deltas[1].chunk.is_some());
    assert!(store
        .dirty_hours(&model())
        .unwrap()
        .iter()
        .all(|d| d.deltas_only));
}

#[test]
fn a_version_6_database_keeps_its_deltas_and_never_hands_their_ids_out_again() {
    let dir = two_predictions_and_labels();
    // Turn it back into what version 6 wrote: delta ids that are plain rowids.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "CREATE TABLE hour_deltas_v6 (id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL,
             version TEXT NOT NULL, hour INTEGER NOT NULL, data BLOB NOT NULL,
             segment_id INTEGER);
         INSERT INTO hour_deltas_v6 SELECT * FROM hour_deltas;
         DROP TABLE hour_deltas; ALTER TABLE hour_deltas_v6 RENAME TO hour_deltas;
         CREATE INDEX hour_deltas_hour ON hour_deltas(model_id, version, hour);
         DROP TABLE IF EXISTS shadow_index; DROP TABLE IF EXISTS shadow_versions; ALTER TABLE reference_rows DROP COLUMN explanations; PRAGMA user_version = 6;",
    )
    .unwrap();
    let before: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, data FROM hour_deltas ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    let deltas = store.hour_deltas(&model()).unwrap();
    let after: Vec<(i64, Vec<u8>)> = deltas.iter().map(|d| (d.id, d.data.clone())).collect();
    assert!(!before.is_empty());
    assert_eq!(after, before);
    // Once they are applied (and deleted), a new delta still gets a new id.
    let last = deltas.iter().map(|d| d.id).max().unwrap();
    answer_every_mark(&store);
    store
        .ingest_predictions(&model(), preds(&[&p("c", "2026-01-01T05:00:00Z", 1.5)]))
        .unwrap();
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    assert!(deltas[0].id > last, "{} after {last}", deltas[0].id);
}

/// What a refresh does to every dirty hour, without the aggregates: clears its mark and
/// deletes its deltas as applied.
fn answer_every_mark(store: &SqliteStore) {
    let mut applied: Vec<i64> = store
        .hour_deltas(&model())
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    let refreshed = store
        .dirty_hours(&model())
        .unwrap()
        .into_iter()
        .map(|d| crate::Refreshed {
            version: d.version,
            hour: d.hour,
            seen: Seen::new(d.generation),
            how: How::Added(std::mem::take(&mut applied)),
        })
        .collect();
    let write = crate::AggregateWrite {
        kind: "perf".into(),
        refreshed,
        ..Default::default()
    };
    store.put_aggregates(&model(), write).unwrap();
}

/// Turns a closed data directory back into what an older version wrote, by running `sql` on
/// its database (which ends by setting that version's `user_version`).
/// Turns a data directory back into what an older version wrote: first version 4 (the request
/// index without buckets), then whatever `sql` undoes.
fn downgrade(dir: &tempfile::TempDir, sql: &str) {
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "CREATE TABLE request_index_v4 (
             model_id INTEGER NOT NULL, request_id TEXT NOT NULL, ts INTEGER NOT NULL,
             version TEXT NOT NULL, error INTEGER NOT NULL, segment_id INTEGER NOT NULL,
             outcome BLOB, PRIMARY KEY (model_id, request_id)) WITHOUT ROWID;
         INSERT INTO request_index_v4
             SELECT model_id, request_id, ts, version, error, segment_id, outcome
             FROM request_index;
         DROP TABLE request_index;
         ALTER TABLE request_index_v4 RENAME TO request_index;
         CREATE INDEX request_index_segment ON request_index(model_id, segment_id);
         DROP TABLE request_buckets; DROP TABLE request_bucket_groups;
         DROP TABLE IF EXISTS shadow_index; DROP TABLE IF EXISTS shadow_versions; ALTER TABLE reference_rows DROP COLUMN explanations; PRAGMA user_version = 4;",
    )
    .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn label_event(id: &str) -> LabelEvent {
    LabelEvent {
        request_id: id.into(),
        label: Outcome::Number(1.0),
        timestamp: Timestamp::now(),
    }
}

#[test]
fn rows_that_read_back_as_sent_are_stored_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Fields in another order, spaces, a number written 2.50 and a timestamp with an offset:
    // stored as sent. A row without a timestamp gets the arrival time, so it is encoded.
    let sent = [
        r#"{ "features": {"age": 2.50, "country": "DE"}, "request_id": "as-sent", "prediction": 1, "timestamp": "2026-01-01T01:10:00+01:00" }"#,
        r#"{"request_id":"no-time","features":{"age":1},"prediction":0}"#,
    ];
    let text = format!("{}\n{}\n", sent[0], sent[1]);
    let now = Timestamp::now();
    let mut rows = Vec::new();
    let mut spans = Vec::new();
    let mut at = 0;
    for (i, row) in sent.iter().enumerate() {
        let (event, same) =
            modelwatch_core::parse_prediction_row_verbatim(row, i, now, &Default::default())
                .unwrap();
        assert_eq!(same, i == 0);
        spans.push(same.then_some(at..at + row.len()));
        at += row.len() + 1;
        rows.push((i, event));
    }
    let events: Vec<PredictionEvent> = rows.iter().map(|(_, e)| e.clone()).collect();
    let batch = crate::PredictionBatch {
        rows,
        rejected: vec![],
        verbatim: Some(crate::VerbatimRows {
            text: text.into(),
            spans,
        }),
        folds: Vec::new(),
    };
    assert_eq!(
        store.ingest_predictions(&model(), batch).unwrap().accepted,
        2
    );
    let stored = chunks(dir.path());
    let lines = String::from_utf8(zstd::stream::decode_all(&stored[0].1[..]).unwrap()).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines[0], sent[0]);
    assert_ne!(lines[1], sent[1]);
    // Both read back as the events parsed on arrival.
    let mut read = store.predictions(&model(), None, 10).unwrap().items;
    read.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    let mut expected = events;
    expected.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    assert_eq!(read, expected);
    assert_eq!(
        (read[1].request_id.as_str(), read[1].timestamp),
        ("no-time", now)
    );
}

/// How many zstd frames a chunk's data holds.
fn frame_count(mut data: &[u8]) -> usize {
    let mut n = 0;
    while !data.is_empty() {
        let len = zstd::zstd_safe::find_frame_compressed_size(data).unwrap();
        data = &data[len..];
        n += 1;
    }
    n
}

/// One prediction per request id, all at 00:10.
fn preds_for(ids: impl Iterator<Item = String>) -> PredictionBatch {
    let rows: Vec<String> = ids
        .enumerate()
        .map(|(i, id)| p(&id, "2026-01-01T00:10:00Z", i as f64))
        .collect();
    preds(&rows.iter().map(String::as_str).collect::<Vec<_>>())
}

fn chunks(dir: &Path) -> Vec<(i64, Vec<u8>)> {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, data FROM segments ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Rows enough for several 1 MiB frames: chunks are written as a sequence of frames, and read
/// back whole, in order, through both read paths; the writer's own re-encoding (a batch with a
/// repeated id) makes frames too.
#[test]
fn a_chunk_of_several_frames_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let rows: Vec<String> = (0..24_000)
        .map(|i| p(&format!("r{i:05}"), "2026-01-01T00:00:00Z", i as f64))
        .collect();
    let mut rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let out = store
        .ingest_predictions(&model(), preds(&rows[..12_000]))
        .unwrap();
    assert_eq!(out.accepted, 12_000);
    // The second batch repeats a row of its own: its chunk is re-encoded by the writer.
    rows.push(rows[14_000]);
    let out = store
        .ingest_predictions(&model(), preds(&rows[12_000..]))
        .unwrap();
    assert_eq!((out.accepted, out.rejected.len()), (12_000, 1));
    let stored = chunks(dir.path());
    assert_eq!(stored.len(), 2);
    for (_, data) in &stored {
        assert!(frame_count(data) > 1, "a chunk of one frame");
    }
    let page = store.predictions(&model(), None, 30_000).unwrap();
    let ids: Vec<String> = page.items.iter().map(|e| e.request_id.clone()).collect();
    let expected: Vec<String> = (0..24_000).map(|i| format!("r{i:05}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(
        page.items[23_999].features[0],
        ("age".into(), FeatureValue::Number(23_999.0))
    );
    let mut scanned = 0;
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |_, _| scanned += 1)
        .unwrap();
    assert_eq!(scanned, 24_000);
}

/// A batch gathered piece by piece (the pieces an import reads), its chunks encoded as the pieces
/// arrive, is cut into chunks at the same rows as a batch handed over whole, and reads back in
/// order.
#[test]
fn a_batch_gathered_in_pieces_is_cut_into_chunks_like_a_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut rows = preds_for((0..70_000).map(|i| format!("r{i:05}")))
        .rows
        .into_iter();
    // Sized for fewer rows than it gets: the chunks' buffers grow.
    let mut gathered = GatheredPredictions::with_capacity(16_384);
    loop {
        let piece: Vec<_> = rows.by_ref().take(16_384).collect();
        if piece.is_empty() {
            break;
        }
        gathered.push_rows(piece).unwrap();
    }
    assert_eq!(gathered.len(), 70_000);
    let out = store
        .submit_gathered(&model(), gathered)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!((out.accepted, out.duplicates), (70_000, 0));
    let lines: Vec<usize> = chunks(dir.path())
        .iter()
        .map(|(_, data)| {
            let text = zstd::stream::decode_all(&data[..]).unwrap();
            text.iter().filter(|b| **b == b'\n').count()
        })
        .collect();
    assert_eq!(lines, [CHUNK_MAX_ROWS, 70_000 - CHUNK_MAX_ROWS]);
    let page = store.predictions(&model(), None, 70_000).unwrap();
    let ids: Vec<String> = page.items.into_iter().map(|e| e.request_id).collect();
    let expected: Vec<String> = (0..70_000).map(|i| format!("r{i:05}")).collect();
    assert_eq!(ids, expected);
}

/// A data directory written before chunks were cut into frames (each chunk one zstd frame
/// of the whole NDJSON) still reads.
#[test]
fn a_chunk_written_as_one_frame_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..8_000)
        .map(|i| p(&format!("r{i:05}"), "2026-01-01T00:00:00Z", i as f64))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let before = {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.ingest_predictions(&model(), preds(&rows)).unwrap();
        store.predictions(&model(), None, 10_000).unwrap().items
    };
    // Rewrite every chunk the way earlier versions did: one frame of the whole text.
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        for (id, data) in chunks(dir.path()) {
            let text = zstd::stream::decode_all(&data[..]).unwrap();
            let old = zstd::bulk::compress(&text, 1).unwrap();
            assert_eq!(frame_count(&old), 1);
            conn.execute(
                "UPDATE segments SET data = ?1 WHERE id = ?2",
                params![old, id],
            )
            .unwrap();
        }
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let after = store.predictions(&model(), None, 10_000).unwrap().items;
    assert_eq!(after, before);
    let mut scanned = 0;
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |_, _| scanned += 1)
        .unwrap();
    assert_eq!(scanned, 8_000);
}

#[test]
fn labels_stored_many_per_statement_tell_new_from_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // 200 predictions, hour 0 for the first 100 and hour 5 for the others.
    let rows: Vec<String> = (0..200)
        .map(|i| {
            let hour = if i < 100 { 0 } else { 5 };
            p(
                &format!("r{i:03}"),
                &format!("2026-01-01T0{hour}:10:00Z"),
                1.0,
            )
        })
        .collect();
    let refs: Vec<&str> = rows.iter().map(String::as_str).collect();
    store.ingest_predictions(&model(), preds(&refs)).unwrap();
    let labels = |ids: &mut dyn Iterator<Item = usize>, value: f64| crate::LabelBatch {
        rows: ids
            .enumerate()
            .map(|(k, i)| {
                (
                    k,
                    LabelEvent {
                        request_id: format!("r{i:03}"),
                        label: Outcome::Number(value),
                        timestamp: Timestamp::now(),
                    },
                )
            })
            .collect(),
        rejected: vec![],
    };
    // Labels for the first hour's predictions only (more than one statement's worth).
    let first = store
        .ingest_labels(&model(), labels(&mut (0..100), 1.0))
        .unwrap();
    assert_eq!((first.accepted, first.replaced), (100, 0));
    answer_every_mark(&store);
    // Every third id of the first hour again (replaced), and all of the second hour (new).
    let out = store
        .ingest_labels(
            &model(),
            labels(&mut (0..100).step_by(3).chain(100..200), 0.0),
        )
        .unwrap();
    assert_eq!((out.accepted, out.replaced), (134, 34));
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (200, 200));
    // The replaced ids carry their new label.
    let stored = store.labels(&model(), None, 1000).unwrap().items;
    let zero = stored
        .iter()
        .filter(|l| l.label == Outcome::Number(0.0))
        .count();
    assert_eq!(zero, 134);
    // The first hour is rescanned (replacements); the second gets a delta of its 100 labels.
    let dirty = store.dirty_hours(&model()).unwrap();
    assert_eq!(
        dirty
            .iter()
            .map(|d| (d.hour.to_rfc3339(), d.deltas_only))
            .collect::<Vec<_>>(),
        [
            ("2026-01-01T00:00:00Z".to_owned(), false),
            ("2026-01-01T05:00:00Z".to_owned(), true)
        ]
    );
    let deltas = store.hour_deltas(&model()).unwrap();
    assert_eq!(deltas.len(), 1);
    assert_eq!(deltas[0].labels().unwrap().len(), 100);
}

#[test]
fn arrival_times_never_repeat() {
    let times: Vec<i64> = (0..10_000).map(|_| arrival_time().micros()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]));
}

/// The caller finds a label batch's predictions before the writer stores it; what changed in
/// between must not leak into the join: a prediction that arrived is found by the writer, and
/// after a retention deletion the writer looks everything up again.
#[test]
fn predictions_found_before_the_writer_are_checked_by_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let recent = Timestamp::now().micros() - 3_600_000_000;
    let at = |us: i64| Timestamp(us).to_rfc3339();
    let old = Timestamp::now().micros() - 40 * 86_400_000_000;
    store
        .ingest_predictions(
            &model(),
            preds(&[&p("a", &at(recent), 1.0), &p("b", &at(old), 1.0)]),
        )
        .unwrap();
    let labels = || crate::LabelBatch {
        rows: ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, id)| (i, label_event(id)))
            .collect(),
        rejected: vec![],
    };
    let submit = |found: Option<Found>| {
        let batch = labels();
        store
            .enqueue(|r| Job::Labels(model(), batch, found, None, r))
            .unwrap()
            .wait()
            .unwrap()
    };
    // Found a and b; then c's prediction arrives before the writer stores the labels.
    let found = store.find_label_predictions(&model(), &labels()).unwrap();
    assert_eq!(
        found
            .as_ref()
            .unwrap()
            .rows
            .iter()
            .filter(|r| r.is_some())
            .count(),
        2
    );
    store
        .ingest_predictions(&model(), preds(&[&p("c", &at(recent), 1.0)]))
        .unwrap();
    submit(found);
    assert_eq!(store.model(&model()).unwrap().unwrap().labelled, 3);

    // Found all three; then retention deletes b's prediction: b's new label must not be
    // joined to it (nor mark its hour).
    let second = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(second.path()).unwrap();
    store
        .ingest_predictions(
            &model(),
            preds(&[
                &p("a", &at(recent), 1.0),
                &p("b", &at(old), 1.0),
                &p("c", &at(recent), 1.0),
            ]),
        )
        .unwrap();
    store.set_retention(&model(), Some(30)).unwrap();
    let found = store.find_label_predictions(&model(), &labels()).unwrap();
    assert_eq!(
        found
            .as_ref()
            .unwrap()
            .rows
            .iter()
            .filter(|r| r.is_some())
            .count(),
        3
    );
    store.apply_retention(Timestamp::now()).unwrap();
    let dirty_before = store.dirty_hours(&model()).unwrap().len();
    let batch = labels();
    store
        .enqueue(|r| Job::Labels(model(), batch, found, None, r))
        .unwrap()
        .wait()
        .unwrap();
    let m = store.model(&model()).unwrap().unwrap();
    assert_eq!((m.labels, m.labelled), (3, 2));
    // a and c share an hour; b's (deleted) hour is not marked.
    let dirty = store.dirty_hours(&model()).unwrap();
    assert!(dirty
        .iter()
        .all(|d| d.hour.micros() >= recent - 3_600_000_000));
    assert!(dirty.len() <= dirty_before.max(1) + 1);
}

#[test]
fn index_rows_stored_many_per_statement_tell_new_from_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let batch = |ids: &mut dyn Iterator<Item = usize>| preds_for(ids.map(|i| format!("r{i:04}")));
    // Every third id of 300 first; then all 300: full 64-row statements (and a short last one)
    // where some rows are stored ids and some are not, and a group with none stored.
    let first = store
        .ingest_predictions(&model(), batch(&mut (0..300).step_by(3)))
        .unwrap();
    assert_eq!((first.accepted, first.duplicates), (100, 0));
    let second = store
        .ingest_predictions(&model(), batch(&mut (0..300).chain(1000..1070)))
        .unwrap();
    assert_eq!((second.accepted, second.duplicates), (270, 100));
    assert!(second.rejected.is_empty());
    // Each id once, a duplicate keeping the event stored first.
    let page = store.predictions(&model(), None, 1000).unwrap();
    let mut ids: Vec<&str> = page.items.iter().map(|e| e.request_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((ids.len(), page.items.len()), (370, 370));
    assert_eq!(store.model(&model()).unwrap().unwrap().predictions, 370);
}

/// A writer on a fresh database in `dir`, driven directly so that a test decides which jobs
/// share a transaction. Jobs whose events carry the version `fails` fail in SQLite itself, after
/// their index rows and chunk are written: a trigger refuses their `versions` row.
fn writer_with_a_failing_version(dir: &Path) -> Writer {
    let conn = Connection::open(dir.join(DB_FILE)).unwrap();
    migrate(&conn).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fails BEFORE INSERT ON versions WHEN NEW.version = 'fails'
         BEGIN SELECT RAISE(ABORT, 'this job fails'); END;",
    )
    .unwrap();
    // Nobody listens for commits: the writer's notice to the checkpointer is dropped.
    let (committed, _) = bounded(1);
    Writer {
        conn,
        models: HashMap::new(),
        committed,
        stored: None,
        shared: WriterShared {
            deletions: Arc::new(AtomicU64::new(0)),
            filters: Arc::new(Filters::default()),
            bucket_rows: BUCKET_ROWS,
            group_buckets: GROUP_BUCKETS,
            max_features: Arc::new(AtomicUsize::new(DEFAULT_MAX_FEATURES_PER_MODEL)),
        },
    }
}

type Answer<T> = Receiver<Result<T, StoreError>>;

/// A predictions job for the rows `ids` with `version`, and where its answer comes.
fn predictions_job(
    ids: std::ops::Range<usize>,
    version: &str,
) -> (Job, Answer<(IngestOutcome, PredictionBatch)>) {
    let mut batch = preds_for(ids.map(|i| format!("{version}-{i:03}")));
    for (_, e) in &mut batch.rows {
        e.model_version = Some(version.to_string());
    }
    let mut chunks = ChunkEncoder::default();
    for (_, e) in &batch.rows {
        chunks.push(e, None).unwrap();
    }
    let encoded = Encoded::new(&batch.rows, chunks.finish().unwrap());
    let (to, answer) = bounded(1);
    let reply = Reply { to, result: None };
    (Job::Predictions(model(), batch, encoded, reply), answer)
}

fn accepted(answer: Answer<(IngestOutcome, PredictionBatch)>) -> (usize, usize) {
    let (out, _) = answer.recv().unwrap().unwrap();
    (out.accepted, out.duplicates)
}

/// What the store holds after the writer is gone: each stored event's request id, and the
/// versions' counters.
fn stored(dir: &Path) -> (Vec<String>, Vec<(String, u64)>) {
    let store = SqliteStore::open(dir).unwrap();
    let mut ids: Vec<String> = (store.predictions(&model(), None, 10_000).unwrap().items)
        .into_iter()
        .map(|e| e.request_id)
        .collect();
    ids.sort();
    let summary = store.model(&model()).unwrap().unwrap();
    let versions = (summary.versions.into_iter())
        .map(|v| (v.version, v.predictions))
        .collect();
    (ids, versions)
}

/// Jobs share their group's transaction without savepoints: one that fails after writing rolls
/// the group back, and the others are stored all the same (run again, each alone), exactly once.
#[test]
fn a_job_failing_in_a_group_leaves_nothing_and_the_others_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = writer_with_a_failing_version(dir.path());
    // The model exists before the group, so that the failing job's own writes are index rows,
    // a chunk and its hours.
    let (first, answer) = predictions_job(0..10, "v1");
    writer.commit_group(vec![first]);
    assert_eq!(accepted(answer), (10, 0));

    let (before, before_answer) = predictions_job(10..90, "v1");
    let (failing, failing_answer) = predictions_job(0..50, "fails");
    let (after, after_answer) = predictions_job(90..200, "v2");
    writer.commit_group(vec![before, failing, after]);
    assert_eq!(accepted(before_answer), (80, 0));
    assert_eq!(accepted(after_answer), (110, 0));
    let failure = failing_answer.recv().unwrap().unwrap_err();
    assert!(failure.to_string().contains("this job fails"), "{failure}");
    drop(writer);

    let (ids, versions) = stored(dir.path());
    let expected: Vec<String> = (0..90)
        .map(|i| format!("v1-{i:03}"))
        .chain((90..200).map(|i| format!("v2-{i:03}")))
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(versions, [("v1".to_string(), 90), ("v2".to_string(), 110)]);
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let index_rows: i64 = conn
        .query_row("SELECT count(*) FROM request_index", [], |r| r.get(0))
        .unwrap();
    let failed_rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM request_index WHERE request_id LIKE 'fails-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((index_rows, failed_rows), (200, 0));
}

/// A job that fails before writing anything (labels of an unknown model) needs no rollback: the
/// rest of its group commits together, and the failing job is answered with its error.
#[test]
fn a_job_failing_before_it_writes_leaves_its_group_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = writer_with_a_failing_version(dir.path());
    let (before, before_answer) = predictions_job(0..30, "v1");
    let (to, labels_answer) = bounded(1);
    let labels = Job::Labels(
        ModelName::new("no-such-model").unwrap(),
        crate::LabelBatch {
            rows: vec![(0, label_event("v1-001"))],
            rejected: vec![],
        },
        None,
        None,
        Reply { to, result: None },
    );
    let (after, after_answer) = predictions_job(30..60, "v1");
    writer.commit_group(vec![before, labels, after]);
    assert_eq!(accepted(before_answer), (30, 0));
    assert_eq!(accepted(after_answer), (30, 0));
    assert!(matches!(
        labels_answer.recv().unwrap(),
        Err(StoreError::ModelNotFound(_))
    ));
    drop(writer);
    let (ids, versions) = stored(dir.path());
    assert_eq!(ids.len(), 60);
    assert_eq!(versions, [("v1".to_string(), 60)]);
}

#[test]
fn a_new_database_gets_16_kib_pages_and_an_older_one_keeps_its_own() {
    let page_size = |dir: &Path| -> i64 {
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let new = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(new.path()).unwrap());
    assert_eq!(page_size(new.path()), PAGE_SIZE);

    // A database created before the setting: 4 KiB pages, in WAL mode.
    let old = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(old.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        migrate(&conn).unwrap();
    }
    let store = SqliteStore::open(old.path()).unwrap();
    store
        .ingest_predictions(&model(), preds(&[&p("a", "2026-01-01T00:00:00Z", 1.0)]))
        .unwrap();
    drop(store);
    assert_eq!(page_size(old.path()), 4096);
    let store = SqliteStore::open(old.path()).unwrap();
    assert_eq!(
        store.predictions(&model(), None, 10).unwrap().items.len(),
        1
    );
}

/// `?after=` cursors are this store's own tokens (ADR 018), and the numbers earlier releases
/// handed out (`chunk id << 20 | row offset`, the ids of rows of the table `segments`; a
/// label's rowid) keep reading on.
#[test]
fn a_page_cursor_handed_out_by_an_earlier_release_still_reads_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for batch in [["a", "b", "c"], ["d", "e", "f"]] {
        let rows: Vec<_> = batch
            .iter()
            .map(|id| p(id, "2026-01-01T00:10:00Z", 1.0))
            .collect();
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        store.ingest_predictions(&model(), preds(&rows)).unwrap();
    }
    let page = store.predictions(&model(), None, 2).unwrap();
    // Chunk 1 (the first job), offset 1 (its second row).
    assert_eq!(page.next, Some(Cursor::new("p1.1")));
    // A cursor written by an earlier release: chunk 2, row 0, so the rest of chunk 2 follows.
    let old = Cursor::new((2i64 << 20).to_string());
    let page = store.predictions(&model(), Some(&old), 10).unwrap();
    let ids: Vec<&str> = page.items.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(ids, ["e", "f"]);
    let labels = LabelBatch {
        rows: ["a", "b", "c"]
            .into_iter()
            .map(label_event)
            .enumerate()
            .collect(),
        rejected: vec![],
    };
    store.ingest_labels(&model(), labels).unwrap();
    let page = store.labels(&model(), None, 1).unwrap();
    assert_eq!(page.next, Some(Cursor::new("l1")));
    let page = store.labels(&model(), Some(&Cursor::new("2")), 10).unwrap();
    let ids: Vec<&str> = page.items.iter().map(|l| l.request_id.as_str()).collect();
    assert_eq!(ids, ["c"]);
}

/// A reference row with attributions, as the formats crate makes of an
/// `explanation.<feature>` column.
fn explained_reference_row(age: f64, attribution: f64) -> ReferenceRow {
    ReferenceRow {
        features: vec![("age".into(), modelwatch_core::FeatureValue::Number(age))],
        explanations: vec![("age".into(), attribution)],
        ..ReferenceRow::default()
    }
}

#[test]
fn attributions_of_predictions_and_of_the_reference_read_back_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let row = r#"{"request_id":"a","timestamp":"2026-01-01T00:10:00Z","features":{"age":3},"prediction":1,"explanations":{"age":0.1234567890123,"country":-0.5}}"#;
    store.ingest_predictions(&model(), preds(&[row])).unwrap();
    store
        .put_reference(
            &model(),
            None,
            vec![(0, explained_reference_row(3.0, -0.25))],
            vec![],
        )
        .unwrap();
    let mut seen = Vec::new();
    store
        .scan_predictions(&model(), &ScanRange::default(), &mut |e, _| {
            seen.push(e.explanations.clone())
        })
        .unwrap();
    assert_eq!(
        seen,
        [vec![
            ("age".to_string(), 0.1234567890123),
            ("country".to_string(), -0.5)
        ]]
    );
    let reference = store.reference_rows(&model(), None).unwrap();
    assert_eq!(reference[0].explanations, [("age".to_string(), -0.25)]);
}

#[test]
fn a_version_8_database_gains_reference_attributions_and_keeps_its_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut plain = explained_reference_row(3.0, 0.0);
    plain.explanations.clear();
    store
        .put_reference(&model(), None, vec![(0, plain.clone())], vec![])
        .unwrap();
    drop(store);
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "ALTER TABLE reference_rows DROP COLUMN explanations; PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.reference_rows(&model(), None).unwrap(), [plain]);
    // The migrated table takes attributions.
    store
        .put_reference(
            &model(),
            None,
            vec![(0, explained_reference_row(3.0, 0.5))],
            vec![],
        )
        .unwrap();
    assert_eq!(
        store.reference_rows(&model(), None).unwrap()[0].explanations,
        [("age".to_string(), 0.5)]
    );
}

/// Rows of several feature schemas, with every reason the writer refuses a row for: a value of
/// the wrong kind (twice, with different values), a feature over the model's limit, a repeated
/// request id; and nulls, which change a row's schema but not its kinds.
fn mixed_schema_rows() -> Vec<String> {
    let row = |id: &str, features: &str, extra: &str| {
        format!(
            r#"{{"request_id":"{id}","timestamp":"2026-01-01T0{h}:00:00Z","model_version":"v1","features":{{{features}}},"prediction":1,"score":0.5{extra}}}"#,
            h = id.len() % 10,
        )
    };
    vec![
        row("a", r#""age":30,"country":"DE""#, ""),
        row("bb", r#""age":31,"country":"FR""#, ""),
        // Adds a feature.
        row("ccc", r#""age":32,"country":"DE","city":"Bonn""#, ""),
        // Wrong kind, twice: each rejection names its own value.
        row("dddd", r#""age":"old","country":"DE""#, ""),
        row("eeeee", r#""age":"young","country":"FR""#, ""),
        // A fourth feature, over the limit of 3.
        row("f", r#""age":33,"country":"DE","extra":1"#, ""),
        // Nulls: accepted whatever the kind, add nothing.
        row("gg", r#""age":null,"country":"IT""#, ""),
        row("hhh", r#""country":null,"age":34"#, ""),
        row("a", r#""age":35,"country":"DE""#, ""),
        row("jjjjj", r#""age":37,"country":"DE","city":"Köln""#, ""),
        row("k", r#""age":38,"country":"DE""#, ""),
    ]
}

/// What a store holds after a batch, for comparing two stores: its model (schema and counts),
/// its stored events and its quarantine (index, field, reason, row).
type StoredState = (String, Vec<String>, Vec<(usize, String, String, String)>);

fn stored_state(store: &SqliteStore) -> StoredState {
    let m = store.model(&model()).unwrap().unwrap();
    let page = store.predictions(&model(), None, 1_000).unwrap();
    let rejected = store
        .rejected(&model(), 100)
        .unwrap()
        .into_iter()
        .map(|r| (r.index, r.field, r.reason, r.row))
        .collect();
    (
        format!("{:?} {} {}", m.schema, m.predictions, m.labels),
        page.items.iter().map(|e| format!("{e:?}")).collect(),
        rejected,
    )
}

/// A file import keeps its gathered rows without their events (`gathered.rs`): it must store,
/// refuse and name every row exactly as a batch of events (HTTP ingest) does, however many
/// schemas its rows have, and a row refused for its value is named by its own value.
#[test]
fn rows_gathered_without_their_events_are_stored_and_refused_as_events_are() {
    let rows = mixed_schema_rows();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let events_dir = tempfile::tempdir().unwrap();
    let gathered_dir = tempfile::tempdir().unwrap();
    let events = SqliteStore::open(events_dir.path()).unwrap();
    let gathered = SqliteStore::open(gathered_dir.path()).unwrap();
    events.set_max_features_per_model(3);
    gathered.set_max_features_per_model(3);
    let by_events = events.ingest_predictions(&model(), preds(&rows)).unwrap();
    let mut batch = GatheredPredictions::with_capacity(4);
    // In pieces, as an import reads a file.
    let mut all = preds(&rows).rows.into_iter();
    loop {
        let piece: Vec<_> = all.by_ref().take(5).collect();
        if piece.is_empty() {
            break;
        }
        batch.push_rows(piece).unwrap();
    }
    let by_gathering = gathered
        .submit_gathered(&model(), batch)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        format!("{by_gathering:?}"),
        format!("{by_events:?}"),
        "the same outcome, rejections and schema changes"
    );
    assert_eq!((by_gathering.accepted, by_gathering.duplicates), (7, 0));
    let refused: Vec<(usize, &str)> = by_gathering
        .rejected
        .iter()
        .map(|r| (r.index, r.field.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (3, "features.age"),
            (4, "features.age"),
            (5, "features.extra"),
            (8, "request_id"),
        ]
    );
    assert!(
        by_gathering.rejected[0].reason.contains(r#""old""#)
            && by_gathering.rejected[1].reason.contains(r#""young""#),
        "each row named by its own value: {:?}",
        by_gathering.rejected
    );
    let state = stored_state(&gathered);
    assert_eq!(state, stored_state(&events));
    // A quarantined row is kept as its event's JSON, as the events path keeps it.
    let kept = &state.2.iter().find(|r| r.0 == 4).unwrap().3;
    assert!(
        kept.contains(r#""request_id":"eeeee""#) && kept.contains("young"),
        "{kept}"
    );

    // The same rows again with two new ids: duplicates, and chunks not stored whole (their
    // rows' lines read back from the compressed chunk).
    let mut again = mixed_schema_rows();
    again.push(again[0].replace(r#""a""#, r#""new-1""#));
    again.push(again[2].replace(r#""ccc""#, r#""new-2""#));
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let by_events = events.ingest_predictions(&model(), preds(&again)).unwrap();
    let mut batch = GatheredPredictions::with_capacity(again.len());
    batch.push_rows(preds(&again).rows).unwrap();
    let by_gathering = gathered
        .submit_gathered(&model(), batch)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(format!("{by_gathering:?}"), format!("{by_events:?}"));
    assert_eq!((by_gathering.accepted, by_gathering.duplicates), (2, 7));
    assert_eq!(stored_state(&gathered), stored_state(&events));

    // A shadow prediction in a file is refused (the ingest API parts it into a job of its
    // own), kept as its JSON.
    let shadow = r#"{"request_id":"s1","timestamp":"2026-01-01T05:00:00Z","model_version":"v1","features":{"age":1,"country":"DE"},"prediction":1,"role":"shadow"}"#;
    let mut batch = GatheredPredictions::with_capacity(1);
    batch.push_rows(preds(&[shadow]).rows).unwrap();
    let out = gathered
        .submit_gathered(&model(), batch)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!((out.accepted, out.rejected.len()), (0, 1));
    assert_eq!(out.rejected[0].field, "role");
    let kept = gathered.rejected(&model(), 100).unwrap();
    let kept = kept.iter().find(|r| r.field == "role").unwrap();
    assert!(kept.row.contains(r#""role":"shadow""#), "{}", kept.row);
}
