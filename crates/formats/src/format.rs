//! Which table format a file or an HTTP body is in.

use crate::FormatError;
use std::path::Path;

/// The file formats modelwatch imports. JSON bodies (an array of objects) count as NDJSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableFormat {
    Csv,
    Parquet,
    Ndjson,
}

const PARQUET_MAGIC: &[u8] = b"PAR1";

impl TableFormat {
    /// The format a file name's extension names: `.csv`, `.parquet`/`.pq`,
    /// `.ndjson`/`.jsonl`/`.json` (case-insensitive). `None` for anything else.
    pub fn from_extension(path: &Path) -> Option<TableFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(TableFormat::Csv),
            "parquet" | "pq" => Some(TableFormat::Parquet),
            "ndjson" | "jsonl" | "json" => Some(TableFormat::Ndjson),
            _ => None,
        }
    }

    /// The format the first bytes of a file imply: the Parquet magic `PAR1`, a `{` or `[` as the
    /// first non-blank byte for NDJSON / JSON, and CSV otherwise.
    pub fn sniff(head: &[u8]) -> TableFormat {
        if head.starts_with(PARQUET_MAGIC) {
            return TableFormat::Parquet;
        }
        let first = head
            .iter()
            .copied()
            // A UTF-8 byte-order mark is not content.
            .skip(if head.starts_with(b"\xEF\xBB\xBF") {
                3
            } else {
                0
            })
            .find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'{') | Some(b'[') => TableFormat::Ndjson,
            _ => TableFormat::Csv,
        }
    }

    /// The format of a file: its extension when it names one, else its first bytes.
    pub fn detect(path: &Path) -> Result<TableFormat, FormatError> {
        if let Some(f) = TableFormat::from_extension(path) {
            return Ok(f);
        }
        let mut head = [0u8; 64];
        let n = read_head(path, &mut head).map_err(|source| FormatError::Io {
            name: path.display().to_string(),
            source,
        })?;
        Ok(TableFormat::sniff(&head[..n]))
    }

    /// The format an HTTP `Content-Type` names (parameters such as `; charset=utf-8` ignored).
    /// `application/octet-stream` and an absent type sniff `body`; any other type is an error.
    pub fn from_content_type(
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<TableFormat, FormatError> {
        let Some(ct) = content_type else {
            return Ok(TableFormat::sniff(body));
        };
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "text/csv" | "application/csv" => Ok(TableFormat::Csv),
            "application/vnd.apache.parquet" | "application/x-parquet" | "application/parquet" => {
                Ok(TableFormat::Parquet)
            }
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/json" => Ok(TableFormat::Ndjson),
            "application/octet-stream" | "" => Ok(TableFormat::sniff(body)),
            _ => Err(FormatError::UnknownContentType(ct.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TableFormat::Csv => "csv",
            TableFormat::Parquet => "parquet",
            TableFormat::Ndjson => "ndjson",
        }
    }
}

fn read_head(path: &Path, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
