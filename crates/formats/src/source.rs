//! Where a table comes from (a file or bytes in memory) and how far reading has got.

use crate::FormatError;
use bytes::Bytes;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A table to read: a file, or a body already in memory (an HTTP upload).
#[derive(Debug, Clone)]
pub enum Source {
    Path(PathBuf),
    /// `name` is what error messages call the body, e.g. `"request body"`.
    Bytes {
        name: String,
        data: Bytes,
    },
}

impl Source {
    pub fn path(p: impl Into<PathBuf>) -> Source {
        Source::Path(p.into())
    }

    /// In-memory bytes, called "request body" in messages. Accepts `Bytes` or `Vec<u8>`.
    pub fn bytes(data: impl Into<Bytes>) -> Source {
        Source::Bytes {
            name: "request body".to_string(),
            data: data.into(),
        }
    }

    /// What error messages call this source: the path, or the body's name.
    pub fn name(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Bytes { name, .. } => name.clone(),
        }
    }

    /// Total size in bytes, when it can be known without reading.
    pub fn size(&self) -> Option<u64> {
        match self {
            Source::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Source::Bytes { data, .. } => Some(data.len() as u64),
        }
    }

    pub(crate) fn io_err(&self, source: io::Error) -> FormatError {
        FormatError::Io {
            name: self.name(),
            source,
        }
    }

    /// A sequential reader that counts the bytes it hands out into `counter`.
    pub(crate) fn open_read(&self, counter: Arc<AtomicU64>) -> Result<CountingRead, FormatError> {
        let inner: Box<dyn Read + Send> = match self {
            Source::Path(p) => Box::new(std::fs::File::open(p).map_err(|e| self.io_err(e))?),
            Source::Bytes { data, .. } => Box::new(io::Cursor::new(data.clone())),
        };
        Ok(CountingRead { inner, counter })
    }
}

/// How far a reader has got, for a progress bar. Totals are known up front where the format
/// allows: Parquet gives `rows_total` from its metadata; CSV and NDJSON give `bytes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub rows_total: Option<u64>,
    /// Rows (lines for NDJSON, data records for CSV) handed out so far, including rejected ones.
    pub rows_read: u64,
    pub bytes_total: Option<u64>,
    /// Bytes consumed from the source so far; reads run ahead of the rows handed out by up to a
    /// buffer. Zero for Parquet, which is read by row group, not sequentially.
    pub bytes_read: u64,
}

pub(crate) struct CountingRead {
    inner: Box<dyn Read + Send>,
    counter: Arc<AtomicU64>,
}

impl Read for CountingRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
