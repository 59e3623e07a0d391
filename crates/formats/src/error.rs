use std::fmt;

/// Everything that stops a whole file from being read or written.
///
/// A bad *row* is never a `FormatError`: it is a [`modelwatch_core::Rejection`] in the
/// conversion's output, and the other rows go on.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot read {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {name}: {source}")]
    Write {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} is not valid csv: {message}")]
    Csv { name: String, message: String },
    #[error("{name} is not a readable parquet file: {message}")]
    Parquet { name: String, message: String },
    #[error("cannot write parquet {name}: {message}")]
    ParquetWrite { name: String, message: String },
    #[error("{0} is ndjson, not a table: read it with NdjsonReader or ImportReader")]
    NotATable(String),
    #[error("content type {0:?} is not a table format: use text/csv, application/vnd.apache.parquet or application/x-ndjson")]
    UnknownContentType(String),
    #[error("column `{column}` (given for {role}) is not in the file; the file has: {}", Columns(.available))]
    MissingColumn {
        column: String,
        role: &'static str,
        available: Vec<String>,
    },
    #[error("the file has no {role} column (looked for {}); the file has: {}", Columns(.looked_for), Columns(.available))]
    NoColumnFor {
        role: &'static str,
        looked_for: Vec<String>,
        available: Vec<String>,
    },
    #[error("column `{0}` appears more than once")]
    DuplicateColumn(String),
    #[error("column `{column}` has type {data_type}, which cannot be read as {role}; exclude it or convert it")]
    UnsupportedColumn {
        column: String,
        data_type: String,
        role: &'static str,
    },
    #[error("feature `{0}` has the name of a reserved export column; rename the feature")]
    ReservedName(String),
    #[error("feature `{feature}` of request {request_id:?}: expected {expected} for the export schema, got {got}")]
    ExportKind {
        feature: String,
        request_id: String,
        expected: &'static str,
        got: &'static str,
    },
}

impl modelwatch_core::ServiceError for FormatError {
    /// Reading is about the table that was given (`Io` also carries "not a JSON array"):
    /// the caller's input. Writing an export is the service's own failure.
    fn code(&self) -> modelwatch_core::ErrorCode {
        use modelwatch_core::ErrorCode;
        match self {
            FormatError::Write { .. } | FormatError::ParquetWrite { .. } => ErrorCode::Internal,
            FormatError::UnknownContentType(_) => ErrorCode::UnsupportedFormat,
            _ => ErrorCode::InvalidInput,
        }
    }
}

/// Formats a column list as `a, b, c` (or `(none)`).
struct Columns<'a>(&'a [String]);

impl fmt::Display for Columns<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{c}`")?;
        }
        Ok(())
    }
}
