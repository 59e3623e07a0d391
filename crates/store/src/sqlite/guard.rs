//! Telling a new data directory from a damaged one, before anything is written to it.
//!
//! SQLite creates a database wherever it is asked to open one, so a data directory whose
//! `modelwatch.db` was deleted, emptied or replaced used to start as a new, empty store, and
//! the acknowledged rows were gone without a word. The store therefore keeps a marker,
//! `modelwatch.store`, written when it is created and updated when it is opened (`open`) and
//! closed cleanly (`closed`). At open:
//!
//! - no database, no write-ahead log and no marker: a new store;
//! - a marker (or a write-ahead log) without its database, an empty database, a file that is not
//!   a SQLite database, or a write-ahead log missing after an unclean stop (the marker says
//!   `open`: the log still held the commits since the last checkpoint): damage, and the store
//!   refuses to open;
//! - then `PRAGMA quick_check` over what SQLite opened: garbage pages are damage too, unless
//!   the files are exactly as the last clean close left them (ADR 017): a clean close records
//!   in the marker the database's size, times of change and file identity, and the state of its
//!   write-ahead log, and an open that finds them all the same skips the check (it read every
//!   page: 80 % of the first query after a 1M-row import). Any write to the files since (another
//!   process, a restore, an editor, a crash) changes them, and the check runs as before.
//!
//! A store created before the marker existed has a database and no marker: it is checked the
//! same way and gets its marker.

use super::DB_FILE;
use crate::StoreError;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub(super) const MARKER_FILE: &str = "modelwatch.store";
const WAL_SUFFIX: &str = "-wal";
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// `quick_check` lists at most this many problems: enough to say what is wrong.
const MAX_PROBLEMS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum State {
    /// A process has the store open, or stopped without closing it (a crash, `kill -9`).
    Open,
    /// The last process closed the store: its write-ahead log was checkpointed.
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Marker {
    /// What wrote the marker: `modelwatch` and its version.
    pub created_by: String,
    pub created_at: String,
    pub state: State,
    /// At a clean close: the files as it left them. Absent while the store is open, and in
    /// markers written before this field (the check then runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Stamps>,
}

/// The store's files at a clean close, as [`Stamps::of`] reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stamps {
    pub db: Stamp,
    /// The write-ahead log, normally removed by the clean close.
    pub wal: Option<Stamp>,
}

/// What the file system says of one file: a write to it changes its size or its modification
/// time, and on Unix its change time too, which no program can set back (`touch -d` sets the
/// modification time and changes the change time); another file put in its place has another
/// inode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Stamp {
    pub len: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: i128,
    /// Unix only: status change time (nanoseconds), device and inode.
    #[serde(default)]
    pub changed_ns: i128,
    #[serde(default)]
    pub device: u64,
    #[serde(default)]
    pub inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Result<Option<Stamp>, StoreError> {
        let m = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let modified_ns = m
            .modified()
            .map_err(io(path))?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(-1, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let (changed_ns, device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
                m.dev(),
                m.ino(),
            )
        };
        #[cfg(not(unix))]
        let (changed_ns, device, inode) = (0, 0, 0);
        Ok(Some(Stamp {
            len: m.len(),
            modified_ns,
            changed_ns,
            device,
            inode,
        }))
    }
}

impl Stamps {
    /// The database's and its write-ahead log's stamps now; `None` without a database.
    pub(super) fn of(dir: &Path) -> Result<Option<Stamps>, StoreError> {
        let Some(db) = Stamp::of(&dir.join(DB_FILE))? else {
            return Ok(None);
        };
        Ok(Some(Stamps {
            db,
            wal: Stamp::of(&wal_path(dir))?,
        }))
    }
}

/// What the files of a data directory say before it is opened.
#[derive(Debug)]
pub(super) struct Inspection {
    pub marker: Option<Marker>,
    /// The database file exists (and was found sound so far).
    pub existing: bool,
    /// `PRAGMA quick_check` must run at open: an existing database not exactly as a clean
    /// close left it.
    pub check: bool,
}

fn wal_path(dir: &Path) -> PathBuf {
    dir.join(format!("{DB_FILE}{WAL_SUFFIX}"))
}

fn damaged(dir: &Path, found: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        dir: dir.display().to_string(),
        found: found.into(),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn read_marker(dir: &Path) -> Result<Option<Marker>, StoreError> {
    let path = dir.join(MARKER_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            damaged(
                dir,
                format!("the store's marker {MARKER_FILE} is unreadable ({e})"),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Writes the marker durably: a temporary file, fsynced, renamed over the old one, and the
/// directory fsynced so that the rename survives a power loss.
pub(super) fn write_marker(dir: &Path, marker: &Marker) -> Result<(), StoreError> {
    let path = dir.join(MARKER_FILE);
    let tmp = dir.join(format!("{MARKER_FILE}.tmp"));
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&serde_json::to_vec_pretty(marker).expect("a marker encodes"))
        .and_then(|()| f.sync_all())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// A marker in `state`, keeping the creation time of the store when it had one.
pub(super) fn new_marker(state: State, created_at: Option<String>) -> Marker {
    Marker {
        created_by: format!("modelwatch {}", env!("CARGO_PKG_VERSION")),
        created_at: created_at.unwrap_or_else(|| modelwatch_core::Timestamp::now().to_rfc3339()),
        state,
        files: None,
    }
}

/// Records a clean close, with the files as it leaves them (every connection is closed: the
/// write-ahead log was checkpointed into the database).
pub(super) fn mark_closed(dir: &Path) -> Result<(), StoreError> {
    let created_at = read_marker(dir)?.map(|m| m.created_at);
    let marker = Marker {
        files: Stamps::of(dir)?,
        ..new_marker(State::Closed, created_at)
    };
    write_marker(dir, &marker)
}

/// Damage SQLite found, told as damage of `dir`: a [`quick_check`] failure, or a read that
/// SQLite answered with "corrupt" or "not a database". Other errors pass unchanged.
pub(super) fn corrupt_is_damage<T>(dir: &Path, r: Result<T, StoreError>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        StoreError::Damaged { dir: d, found } if d.is_empty() => damaged(dir, found),
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, msg))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) =>
        {
            damaged(
                dir,
                format!(
                    "SQLite could not read {DB_FILE}: {}",
                    msg.unwrap_or_else(|| f.to_string())
                ),
            )
        }
        e => e,
    })
}

/// Looks at the files of `dir` (locked by the caller) and refuses what cannot be a sound store.
pub(super) fn inspect(dir: &Path) -> Result<Inspection, StoreError> {
    let marker = read_marker(dir)?;
    let db = dir.join(DB_FILE);
    let wal = wal_path(dir);
    let wal_exists = wal.exists();
    let db_len = match fs::metadata(&db) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&db)(e)),
    };
    let Some(db_len) = db_len else {
        if let Some(m) = &marker {
            return Err(damaged(
                dir,
                format!(
                    "{DB_FILE} is missing, but {MARKER_FILE} says a store was created here on {}{}",
                    m.created_at,
                    if wal_exists {
                        format!(" (its write-ahead log {DB_FILE}{WAL_SUFFIX} is still there)")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        if wal_exists {
            return Err(damaged(
                dir,
                format!("{DB_FILE}{WAL_SUFFIX} is there without its database {DB_FILE}"),
            ));
        }
        return Ok(Inspection {
            marker: None,
            existing: false,
            check: false,
        });
    };
    if db_len == 0 {
        return Err(damaged(dir, format!("{DB_FILE} is empty (0 bytes)")));
    }
    let mut header = [0u8; 16];
    let read = File::open(&db)
        .and_then(|mut f| f.read(&mut header))
        .map_err(io(&db))?;
    if read < header.len() || &header != SQLITE_HEADER {
        return Err(damaged(
            dir,
            format!("{DB_FILE} is not a SQLite database (its first bytes are {header:02x?})"),
        ));
    }
    if marker.as_ref().is_some_and(|m| m.state == State::Open) && !wal_exists {
        return Err(damaged(
            dir,
            format!(
                "the write-ahead log {DB_FILE}{WAL_SUFFIX} is missing after an unclean stop: \
                 the rows committed since the last checkpoint were in it"
            ),
        ));
    }
    let check = !unchanged_since_clean_close(dir, marker.as_ref())?;
    Ok(Inspection {
        marker,
        existing: true,
        check,
    })
}

/// The marker says the store was closed cleanly and its files are exactly as that close left
/// them: SQLite's check at open would read what the last process left sound.
fn unchanged_since_clean_close(dir: &Path, marker: Option<&Marker>) -> Result<bool, StoreError> {
    let Some(Marker {
        state: State::Closed,
        files: Some(recorded),
        ..
    }) = marker
    else {
        return Ok(false);
    };
    Ok(Stamps::of(dir)?.as_ref() == Some(recorded))
}

/// `PRAGMA quick_check` of an open database: `Ok` when SQLite finds it sound. The error's
/// directory is left for [`corrupt_is_damage`] to fill in.
pub(super) fn quick_check(conn: &Connection) -> Result<(), StoreError> {
    let problems = integrity(conn, "quick_check");
    if problems.is_empty() {
        return Ok(());
    }
    Err(StoreError::Damaged {
        dir: String::new(),
        found: format!(
            "SQLite's quick check of {DB_FILE} found: {}",
            problems.join("; ")
        ),
    })
}

/// The problems `PRAGMA <pragma>` (`quick_check` or `integrity_check`) reports; empty when the
/// database is sound. A database too damaged to be read at all is one problem.
pub(super) fn integrity(conn: &Connection, pragma: &str) -> Vec<String> {
    let run = || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(&format!("PRAGMA {pragma}({MAX_PROBLEMS})"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    match run() {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Vec::new(),
        Ok(lines) => lines,
        Err(e) => vec![e.to_string()],
    }
}

/// What `modelwatch check` found in a data directory.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub dir: String,
    /// One line per thing looked at, in the order looked at.
    pub findings: Vec<String>,
    /// What is wrong, when something is: the store will not open over it.
    pub damage: Option<String>,
}

/// Looks at a data directory without changing it: its files, the marker, and SQLite's full
/// `integrity_check`. Works beside a running service (reads only).
pub fn check(dir: &Path) -> Result<CheckReport, StoreError> {
    if !dir.is_dir() {
        return Err(io(dir)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such data directory",
        )));
    }
    let mut report = CheckReport {
        dir: dir.display().to_string(),
        findings: Vec::new(),
        damage: None,
    };
    for name in [
        DB_FILE.to_owned(),
        format!("{DB_FILE}{WAL_SUFFIX}"),
        MARKER_FILE.to_owned(),
    ] {
        let line = match fs::metadata(dir.join(&name)) {
            Ok(m) => format!("{name}: {} bytes", m.len()),
            Err(_) => format!("{name}: absent"),
        };
        report.findings.push(line);
    }
    let inspection = match inspect(dir) {
        Ok(i) => i,
        Err(StoreError::Damaged { found, .. }) => {
            report.damage = Some(found);
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    match &inspection.marker {
        Some(m) => report.findings.push(format!(
            "marker: created {} by {}, last {}",
            m.created_at,
            m.created_by,
            match m.state {
                State::Open => "opened (running now, or stopped without closing)",
                State::Closed => "closed cleanly",
            }
        )),
        None => report
            .findings
            .push("marker: none (a store created before markers, or a new directory)".into()),
    }
    if !inspection.existing {
        report
            .findings
            .push("no database: a new, empty data directory".into());
        return Ok(report);
    }
    report.findings.push(
        if inspection.check {
            "files: not known unchanged since a clean close (the next open runs SQLite's quick check)"
        } else {
            "files: unchanged since the clean close (the next open skips SQLite's quick check)"
        }
        .into(),
    );
    // Read only: the last read-write connection to close checkpoints the WAL and deletes it,
    // and a check must leave a crashed store exactly as it found it.
    let conn = Connection::open_with_flags(
        dir.join(DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let version: rusqlite::Result<i64> = conn.query_row("PRAGMA user_version", [], |r| r.get(0));
    match version {
        Ok(v) => report.findings.push(format!("schema version: {v}")),
        Err(e) => {
            report.damage = Some(format!("SQLite could not read {DB_FILE}: {e}"));
            return Ok(report);
        }
    }
    let problems = integrity(&conn, "integrity_check");
    if problems.is_empty() {
        report.findings.push("SQLite integrity check: ok".into());
    } else {
        report.damage = Some(format!(
            "SQLite's integrity check of {DB_FILE} found: {}",
            problems.join("; ")
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use super::*;
    use crate::conformance::{model, p, preds};
    use crate::EventLog;

    /// A closed store of `n` predictions (16 KiB pages: 20,000 rows make dozens).
    fn closed_store(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let rows: Vec<String> = (0..n)
            .map(|i| p(&format!("r-{i}"), "2026-01-02T03:04:05Z", i as f64))
            .collect();
        for chunk in rows.chunks(5_000) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            store.ingest_predictions(&model(), preds(&chunk)).unwrap();
        }
        drop(store);
        dir
    }

    fn damage_message(dir: &Path) -> String {
        match SqliteStore::open(dir) {
            Err(StoreError::Damaged { found, .. }) => found,
            Err(e) => panic!("refused, but not as damage: {e}"),
            Ok(_) => panic!("a damaged store opened"),
        }
    }

    /// Garbage over the pages between the second and the last, as `hardening.rs` writes it.
    fn garbage_pages(bytes: &mut [u8]) {
        let page = 16_384;
        assert!(bytes.len() > 8 * page, "{} bytes", bytes.len());
        let end = bytes.len() - page;
        for (i, b) in bytes[2 * page..end].iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
        }
    }

    #[test]
    fn a_store_closed_cleanly_opens_without_the_check_until_a_file_changes() {
        let dir = closed_store(20_000);
        let marker = read_marker(dir.path()).unwrap().unwrap();
        assert_eq!(marker.state, State::Closed);
        let files = marker.files.expect("a clean close records the files");
        assert_eq!(
            files.wal, None,
            "the clean close removed the write-ahead log"
        );
        assert!(!inspect(dir.path()).unwrap().check);
        // Opened and closed again without a write: still skipped, the rows all there.
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.model(&model()).unwrap().unwrap().predictions, 20_000);
        drop(store);
        assert!(!inspect(dir.path()).unwrap().check);

        // A marker written before the stamps (or by an older version): checked.
        let mut old = read_marker(dir.path()).unwrap().unwrap();
        old.files = None;
        write_marker(dir.path(), &old).unwrap();
        assert!(inspect(dir.path()).unwrap().check);
        drop(SqliteStore::open(dir.path()).unwrap());
        assert!(!inspect(dir.path()).unwrap().check);

        // Garbage written over pages after the clean close: checked at open, and refused as
        // the damage tests expect.
        let db = dir.path().join(DB_FILE);
        let mut bytes = fs::read(&db).unwrap();
        garbage_pages(&mut bytes);
        fs::write(&db, &bytes).unwrap();
        assert!(inspect(dir.path()).unwrap().check);
        let found = damage_message(dir.path());
        assert!(found.contains("SQLite's quick check"), "{found}");

        // What the skip gives up (ADR 017): damage that leaves every stamp as recorded (here
        // the marker rewritten to match; in life a media error) is not found at open, only by
        // the first read of its pages or by `modelwatch check`.
        let mut marker = read_marker(dir.path()).unwrap().unwrap();
        marker.files = Stamps::of(dir.path()).unwrap();
        write_marker(dir.path(), &marker).unwrap();
        assert!(!inspect(dir.path()).unwrap().check);
        assert!(
            SqliteStore::open(dir.path()).is_ok(),
            "the check was skipped"
        );
        assert!(check(dir.path()).unwrap().damage.is_some());
    }

    /// One byte changed, the file's size and modification time put back as they were: the
    /// change time (which no program sets) still tells, and the open checks.
    #[test]
    fn a_byte_changed_with_the_size_and_modification_time_kept_is_still_checked() {
        let dir = closed_store(20_000);
        let db = dir.path().join(DB_FILE);
        let modified = fs::metadata(&db).unwrap().modified().unwrap();
        let mut bytes = fs::read(&db).unwrap();
        garbage_pages(&mut bytes);
        fs::write(&db, &bytes).unwrap();
        File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let now = Stamp::of(&db).unwrap().unwrap();
        let recorded = read_marker(dir.path()).unwrap().unwrap().files.unwrap().db;
        assert_eq!(
            (now.len, now.modified_ns),
            (recorded.len, recorded.modified_ns)
        );
        if cfg!(unix) {
            assert!(inspect(dir.path()).unwrap().check);
            let found = damage_message(dir.path());
            assert!(found.contains("SQLite's quick check"), "{found}");
        }
    }

    /// The files as a crash leaves them (copied while the store is open: the marker says
    /// `open`, the write-ahead log holds the last commits): checked at open, and garbage in
    /// them refused.
    #[test]
    fn a_store_left_open_by_a_crash_is_checked() {
        let dir = closed_store(20_000);
        let store = SqliteStore::open(dir.path()).unwrap();
        let more = p("one-more", "2026-01-02T03:04:05Z", 1.0);
        store.ingest_predictions(&model(), preds(&[&more])).unwrap();
        let crashed = tempfile::tempdir().unwrap();
        for name in [
            DB_FILE.to_string(),
            format!("{DB_FILE}{WAL_SUFFIX}"),
            MARKER_FILE.to_string(),
        ] {
            fs::copy(dir.path().join(&name), crashed.path().join(&name)).unwrap();
        }
        drop(store);
        let marker = read_marker(crashed.path()).unwrap().unwrap();
        assert_eq!((marker.state, marker.files), (State::Open, None));
        assert!(inspect(crashed.path()).unwrap().check);
        let db = crashed.path().join(DB_FILE);
        let mut bytes = fs::read(&db).unwrap();
        garbage_pages(&mut bytes);
        fs::write(&db, &bytes).unwrap();
        let found = damage_message(crashed.path());
        assert!(found.contains("SQLite"), "{found}");
    }
}
