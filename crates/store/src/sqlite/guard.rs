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
//! - then `PRAGMA quick_check` over what SQLite opened: garbage pages are damage too.
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
}

/// What the files of a data directory say before it is opened.
#[derive(Debug)]
pub(super) struct Inspection {
    pub marker: Option<Marker>,
    /// The database file exists (and was found sound so far).
    pub existing: bool,
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
    }
}

/// Records a clean close.
pub(super) fn mark_closed(dir: &Path) -> Result<(), StoreError> {
    let created_at = read_marker(dir)?.map(|m| m.created_at);
    write_marker(dir, &new_marker(State::Closed, created_at))
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
    Ok(Inspection {
        marker,
        existing: true,
    })
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
