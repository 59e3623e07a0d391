//! Talking to the cluster: the configuration (`clickhouse://` URLs), one HTTP query to one
//! server, the topology (which shard each listed server holds), and the schema applier.
//!
//! Invariants:
//! - every failure names the server, what the query was for and the server's message
//!   (`StoreError::Remote`);
//! - with replicas, every insert carries `insert_quorum` = the shard's replicas (acknowledged
//!   means on every replica; a replica that does not take the part fails the insert after
//!   `INSERT_QUORUM_TIMEOUT`, not 18.16's default 600 s) and `insert_deduplicate = 0` (two
//!   equal change-count blocks are two changes, never one), and every read carries
//!   `select_sequential_consistency = 1`.

use modelwatch_store::StoreError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `MODELWATCH_CLICKHOUSE_TRACE=1`: every query's wall time, answer size and purpose on stderr,
/// and the query sent with `log_queries = 1` under an id of the line (`mw-PID-N`), so that
/// `system.query_log` (kept by `QUERY_LOG=1 scripts/clickhouse/cluster.sh`) says what each read
/// and took on the server. How a slow request was taken apart (docs/benchmarks.md).
fn tracing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::env::var_os("MODELWATCH_CLICKHOUSE_TRACE").is_some_and(|v| !v.is_empty())
    })
}

fn next_query_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "mw-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A traced query's line: id, wall time, answer bytes, what for, the statement's start.
fn trace(id: &str, start: Instant, bytes: usize, what: &str, sql: &str) {
    let shown: String = sql.chars().take(160).collect();
    eprintln!(
        "clickhouse trace: {id} {:.1} ms {bytes} B {what}: {}",
        start.elapsed().as_secs_f64() * 1e3,
        shown.replace('\n', " ")
    );
}

/// The schema, one source of truth with the scripts that check it (ADR 019).
const SCHEMA: &str = include_str!("../../../scripts/clickhouse/schema.sql");

/// Where the cluster is and how to log in: `clickhouse://HOST:PORT[,HOST:PORT...]/DATABASE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// The servers' HTTP base URLs (`http://host:port`, or `https://` for `clickhouses://`).
    pub servers: Vec<String>,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The `remote_servers` cluster the Distributed tables span (`modelwatch` unless the URL
    /// says `?cluster=NAME`).
    pub cluster: String,
    /// Whether the URL named the cluster (`?cluster=NAME`): a named cluster must exist, while a
    /// single server without the default `modelwatch` cluster is used as one shard (ADR 019,
    /// "One server").
    pub cluster_named: bool,
    /// With TLS: a PEM file of the certificate authorities to trust instead of the Mozilla
    /// roots (a self-hosted cluster's own CA); `None`: the Mozilla roots (ClickHouse Cloud).
    pub ca_file: Option<std::path::PathBuf>,
}

impl ClickHouseConfig {
    /// `clickhouse://HOST:PORT[,HOST:PORT...]/DATABASE` (HTTP ports); `clickhouses://` for TLS
    /// (https, the servers' HTTPS ports). An optional `?cluster=NAME` names the cluster (default `modelwatch`). The error
    /// names what is wrong in the URL.
    pub fn from_url(url: &str) -> Result<ClickHouseConfig, String> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("clickhouse://") {
            ("http", rest)
        } else if let Some(rest) = url.strip_prefix("clickhouses://") {
            ("https", rest)
        } else {
            return Err(format!(
                "`{url}` is not a ClickHouse URL: it must start with clickhouse:// (or clickhouses:// for TLS), as in clickhouse://HOST:PORT/DATABASE"
            ));
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (hosts, database) = rest.split_once('/').ok_or_else(|| {
            format!("`{url}` names no database: write clickhouse://HOST:PORT/DATABASE")
        })?;
        let database = database.trim_end_matches('/');
        if database.is_empty() {
            return Err(format!(
                "`{url}` names no database: write clickhouse://HOST:PORT/DATABASE"
            ));
        }
        if !valid_identifier(database) {
            return Err(format!(
                "database `{database}` in `{url}`: use letters, digits and underscores, not starting with a digit"
            ));
        }
        let mut servers = Vec::new();
        for host in hosts.split(',') {
            let (name, port) = host.rsplit_once(':').ok_or_else(|| {
                format!("server `{host}` in `{url}` has no port: write HOST:PORT (the HTTP port, 8123 by default)")
            })?;
            if name.is_empty() || name.contains('@') || name.contains('/') {
                return Err(format!("server `{host}` in `{url}`: the host is missing or not a host name (credentials go in the config file or the environment, not the URL)"));
            }
            if port.parse::<u16>().ok().filter(|p| *p > 0).is_none() {
                return Err(format!(
                    "server `{host}` in `{url}`: `{port}` is not a port number"
                ));
            }
            servers.push(format!("{scheme}://{name}:{port}"));
        }
        let mut cluster = "modelwatch".to_string();
        let mut cluster_named = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("cluster", name)) if valid_identifier(name) => {
                    cluster = name.to_string();
                    cluster_named = true;
                }
                _ => {
                    return Err(format!(
                        "`{pair}` in `{url}`: the only option is ?cluster=NAME (letters, digits, underscores)"
                    ))
                }
            }
        }
        Ok(ClickHouseConfig {
            servers,
            database: database.to_string(),
            user: None,
            password: None,
            cluster,
            cluster_named,
            ca_file: None,
        })
    }

    pub fn with_credentials(mut self, user: Option<String>, password: Option<String>) -> Self {
        self.user = user;
        self.password = password;
        self
    }

    /// Trust the certificate authorities of `ca_file` (PEM) for `clickhouses://`.
    pub fn with_ca_file(mut self, ca_file: Option<std::path::PathBuf>) -> Self {
        self.ca_file = ca_file;
        self
    }
}

fn valid_identifier(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One server of the cluster: its HTTP URL and the shard (0-based, in `remote_servers` order)
/// it holds.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub url: String,
    pub shard: usize,
}

/// A ClickHouse server's answer, its body not read yet.
type Response = ureq::http::Response<ureq::Body>;

/// `Authorization: Basic …` for ClickHouse's HTTP interface.
fn basic_auth(user: &str, password: Option<&str>) -> String {
    use base64::Engine;
    let pair = format!("{user}:{}", password.unwrap_or(""));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The certificates of `path` (PEM), or an error naming the file and what is wrong with it.
fn read_ca_file(
    path: &std::path::Path,
    servers: &[String],
) -> Result<Vec<ureq::tls::Certificate<'static>>, StoreError> {
    let fail = |message: String| StoreError::Remote {
        server: servers.join(","),
        what: "read the certificate authorities to trust (ca_file)".into(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        // A private key or anything else in the file is not an authority.
        if let ureq::tls::PemItem::Certificate(c) =
            item.map_err(|e| fail(format!("{}: {e}", path.display())))?
        {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(fail(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        )));
    }
    Ok(certs)
}

/// The HTTP client and what every query carries.
pub(crate) struct Http {
    agent: ureq::Agent,
    pub database: String,
    user: Option<String>,
    password: Option<String>,
    /// Whether the shards have replicas: then quorum inserts and sequentially consistent reads.
    pub quorum: Option<usize>,
}

/// A quorum insert into a table whose previous quorum insert has not finished (18.16 allows
/// one at a time per table): retried, it goes through once the previous one is on every replica.
/// The second is the same refusal when two inserts (two modelwatch processes) race to start
/// theirs: the loser's part is rolled back, nothing of it stored (found by the kill test: with
/// two processes under load it refused batches with a 500).
const QUORUM_BUSY: [&str; 2] = [
    "Quorum for previous write has not been satisfied yet",
    "Another quorum insert has been already started",
];

/// How long a quorum insert waits for the shard's other replicas (`insert_quorum_timeout`).
/// 18.16's default is 600 s: with a replica killed, the insert to the live one waited that long
/// while holding the process's writer lock, so every write of the process hung behind it (found
/// by the kill test, `crates/cli/tests/cli/clickhouse_kill.rs`). Past this the server answers
/// "Timeout while waiting for quorum": the batch is not acknowledged (a 5xx naming the server)
/// and the client sends it again; its rows become visible only if the replica comes back and
/// takes the part, and the retry then reads them as duplicates.
pub(crate) const INSERT_QUORUM_TIMEOUT: Duration = Duration::from_secs(15);

impl Http {
    pub fn new(config: &ClickHouseConfig) -> Result<Http, StoreError> {
        Self::with_timeout(config, Duration::from_secs(600))
    }

    /// A client whose queries fail after `timeout` (the cluster lease's: an answer after its
    /// epoch is worthless).
    pub fn with_timeout(config: &ClickHouseConfig, timeout: Duration) -> Result<Http, StoreError> {
        // ureq on rustls with ring, as the webhooks' client: blocking without a Tokio runtime
        // (callable from anywhere), and TLS without a process-wide crypto provider.
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &config.ca_file {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&read_ca_file(
                path,
                &config.servers,
            )?));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .into();
        Ok(Http {
            agent,
            database: config.database.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
            quorum: None,
        })
    }

    /// Runs `sql` on `url` (in the store's database unless `in_db` is false), with `body` as
    /// the data of an INSERT when given; returns the response text.
    pub fn run(
        &self,
        url: &str,
        sql: &str,
        body: Option<Vec<u8>>,
        what: &str,
        in_db: bool,
    ) -> Result<String, StoreError> {
        self.text_of(url, sql, body, None, what, in_db)
    }

    /// [`Http::run`] with the external table of [`Http::with_ids`]: the whole answer as text.
    fn text_of(
        &self,
        url: &str,
        sql: &str,
        body: Option<Vec<u8>>,
        ids: Option<&[&str]>,
        what: &str,
        in_db: bool,
    ) -> Result<String, StoreError> {
        let start = Instant::now();
        let id = tracing().then(next_query_id);
        let mut resp = self.send_with(url, sql, body, ids, what, in_db, id.as_deref())?;
        let text = (resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string())
        .map_err(|e| StoreError::Remote {
            server: url.to_string(),
            what: what.to_string(),
            message: e.to_string(),
        })?;
        if let Some(id) = &id {
            trace(id, start, text.len(), what, sql);
        }
        Ok(text)
    }

    /// Runs a SELECT (`FORMAT JSONEachRow` appended) and calls `f` with each row's line as
    /// it arrives: a scan never holds the whole answer.
    pub fn each_line(
        &self,
        url: &str,
        sql: &str,
        what: &str,
        f: &mut dyn FnMut(&str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.each_line_as(url, sql, "JSONEachRow", what, f)
    }

    /// [`Http::each_line`] in `format` (a line-per-row one: `JSONEachRow`, `TabSeparated`).
    pub fn each_line_as(
        &self,
        url: &str,
        sql: &str,
        format: &str,
        what: &str,
        f: &mut dyn FnMut(&str) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        use std::io::BufRead;
        let start = Instant::now();
        let id = tracing().then(next_query_id);
        let resp = self.send(
            url,
            &format!("{sql} FORMAT {format}"),
            None,
            what,
            true,
            id.as_deref(),
        )?;
        let body = resp.into_body().into_with_config().limit(u64::MAX).reader();
        let mut reader = std::io::BufReader::with_capacity(1 << 16, body);
        let mut line = String::new();
        let mut bytes = 0;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| StoreError::Remote {
                    server: url.to_string(),
                    what: what.to_string(),
                    message: format!("reading the answer: {e}"),
                })?;
            if n == 0 {
                if let Some(id) = &id {
                    trace(id, start, bytes, what, sql);
                }
                return Ok(());
            }
            bytes += n;
            let l = line.trim_end_matches('\n');
            if l.starts_with("Code: ") && l.contains("Exception") {
                // An error after the answer began streaming comes as text in a 200 answer.
                return Err(StoreError::Remote {
                    server: url.to_string(),
                    what: what.to_string(),
                    message: l.chars().take(2000).collect(),
                });
            }
            if !l.is_empty() {
                f(l)?;
            }
        }
    }

    /// Runs `sql` (a SELECT, `FORMAT JSONEachRow` appended, or an `INSERT … SELECT`) with
    /// `ids` as the external table `_ids` (one column, `request_id String`): the statement
    /// says `request_id IN _ids` instead of carrying the ids as literals. Why: 18.16 spent
    /// 70-160 ms parsing a 5,000-literal `IN (…)` list before reading a row, 5-10x what the
    /// lookup itself cost on a table of 150,000 rows (ADR 019, "The duplicate check").
    pub fn with_ids(
        &self,
        url: &str,
        sql: &str,
        ids: &[&str],
        what: &str,
    ) -> Result<String, StoreError> {
        self.text_of(url, sql, None, Some(ids), what, true)
    }

    /// [`Http::with_ids`] for a SELECT: its rows, `FORMAT JSONEachRow` appended.
    pub fn rows_with_ids<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        sql: &str,
        ids: &[&str],
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let text = self.with_ids(url, &format!("{sql} FORMAT JSONEachRow"), ids, what)?;
        json_rows(url, what, &text)
    }

    fn send(
        &self,
        url: &str,
        sql: &str,
        body: Option<Vec<u8>>,
        what: &str,
        in_db: bool,
        query_id: Option<&str>,
    ) -> Result<Response, StoreError> {
        self.send_with(url, sql, body, None, what, in_db, query_id)
    }

    // One request's every part (the external table, the trace's query id) in one place.
    #[allow(clippy::too_many_arguments)]
    fn send_with(
        &self,
        url: &str,
        sql: &str,
        body: Option<Vec<u8>>,
        ids: Option<&[&str]>,
        what: &str,
        in_db: bool,
        query_id: Option<&str>,
    ) -> Result<Response, StoreError> {
        let insert = sql.trim_start().starts_with("INSERT");
        let mut params: Vec<(&str, String)> = vec![
            ("output_format_json_quote_64bit_integers", "0".into()),
            // IN lists of a batch's request ids exceed the default 256 KiB.
            ("max_query_size", "104857600".into()),
        ];
        if in_db {
            params.push(("database", self.database.clone()));
        }
        if let Some(replicas) = self.quorum {
            if insert {
                params.push(("insert_quorum", replicas.to_string()));
                let ms = INSERT_QUORUM_TIMEOUT.as_millis();
                params.push(("insert_quorum_timeout", ms.to_string()));
                params.push(("insert_deduplicate", "0".into()));
            } else if sql.trim_start().starts_with("SELECT") {
                params.push(("select_sequential_consistency", "1".into()));
            }
        }
        if body.is_some() || ids.is_some() {
            params.push(("query", sql.to_string()));
        }
        if let Some(id) = query_id {
            params.push(("log_queries", "1".into()));
            params.push(("query_id", id.to_string()));
        }
        let external = ids.map(|ids| {
            params.push(("_ids_structure", "request_id String".into()));
            external_table("_ids", ids)
        });
        let fail = |message: String| StoreError::Remote {
            server: url.to_string(),
            what: what.to_string(),
            message,
        };
        let mut attempt = 0;
        loop {
            let mut req = (self.agent.post(format!("{url}/")))
                .query_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            if let Some(user) = &self.user {
                req = req.header("Authorization", basic_auth(user, self.password.as_deref()));
            }
            let sent = match (&body, &external) {
                (Some(b), _) => req.send(&b[..]),
                (None, Some(form)) => req
                    .header(
                        "Content-Type",
                        format!("multipart/form-data; boundary={EXTERNAL_BOUNDARY}"),
                    )
                    .send(&form[..]),
                (None, None) => req.send(sql.as_bytes()),
            };
            let mut resp = sent.map_err(|e| fail(format!("sending the query: {e}")))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            if QUORUM_BUSY.iter().any(|m| text.contains(m)) && attempt < 1000 {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let mut message = format!("HTTP {status}: {}", text.trim());
            if message.len() > 2000 {
                let mut end = 2000;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
            }
            let shown: String = sql.chars().take(300).collect();
            return Err(fail(format!("{message} (query: {shown})")));
        }
    }

    /// Runs a SELECT and returns its answer in `FORMAT RowBinary` (appended): the bytes of
    /// binary columns as they are, without JSON's escaping (read with [`RowBinary`]).
    pub fn row_binary(&self, url: &str, sql: &str, what: &str) -> Result<Vec<u8>, StoreError> {
        let start = Instant::now();
        let id = tracing().then(next_query_id);
        let sql = format!("{sql} FORMAT RowBinary");
        let mut resp = self.send(url, &sql, None, what, true, id.as_deref())?;
        let bytes = (resp.body_mut().with_config().limit(u64::MAX).read_to_vec()).map_err(|e| {
            StoreError::Remote {
                server: url.to_string(),
                what: what.to_string(),
                message: e.to_string(),
            }
        })?;
        if let Some(id) = &id {
            trace(id, start, bytes.len(), what, &sql);
        }
        Ok(bytes)
    }

    /// Runs a SELECT and reads its rows (`FORMAT JSONEachRow` is appended).
    pub fn rows<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        sql: &str,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let text = self.run(url, &format!("{sql} FORMAT JSONEachRow"), None, what, true)?;
        json_rows(url, what, &text)
    }

    /// Inserts `rows` (serialised as JSONEachRow) into `table` on `url`.
    pub fn insert<T: serde::Serialize>(
        &self,
        url: &str,
        table: &str,
        rows: &[T],
        what: &str,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(rows.len() * 256);
        for r in rows {
            serde_json::to_writer(&mut body, r).expect("rows serialise");
            body.push(b'\n');
        }
        self.run(
            url,
            &format!("INSERT INTO {table} FORMAT JSONEachRow"),
            Some(body),
            what,
            true,
        )
        .map(drop)
    }
}

/// A `TabSeparated` field as it was stored: ClickHouse escapes `\b \f \n \r \t \0 \\ \'`
/// with a backslash (`writeEscapedString`); a field without one is borrowed as it is.
pub(crate) fn tsv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A reader of a `RowBinary` answer: each column in turn, strings as a LEB128 length and
/// their bytes, integers little-endian. `None` when the answer ends early (truncated).
pub(crate) struct RowBinary<'a> {
    bytes: &'a [u8],
}

impl<'a> RowBinary<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        RowBinary { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = *self.take(1)?.first()?;
            len |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        self.take(len)
    }

    pub fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(*self.take(1)?.first()?)
    }
}

fn json_rows<T: serde::de::DeserializeOwned>(
    url: &str,
    what: &str,
    text: &str,
) -> Result<Vec<T>, StoreError> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| StoreError::Remote {
                server: url.to_string(),
                what: what.to_string(),
                message: format!("unreadable answer row ({e}): {}", &l[..l.len().min(300)]),
            })
        })
        .collect()
}

/// The multipart boundary of an external table's body. The table's text never holds a line
/// break (TabSeparated escapes them), so no line of it can be the boundary's `--` line.
const EXTERNAL_BOUNDARY: &str = "modelwatch-external-table";

/// ClickHouse's external data over HTTP: a multipart form whose part `name` is the table, as
/// TabSeparated, one value a line.
pub(crate) fn external_table(name: &str, values: &[&str]) -> Vec<u8> {
    let mut form = Vec::with_capacity(values.iter().map(|v| v.len() + 1).sum::<usize>() + 200);
    form.extend_from_slice(
        format!(
            "--{EXTERNAL_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\
             Content-Type: text/tab-separated-values\r\n\r\n"
        )
        .as_bytes(),
    );
    for v in values {
        tsv_escape(v, &mut form);
        form.push(b'\n');
    }
    form.extend_from_slice(format!("\r\n--{EXTERNAL_BOUNDARY}--\r\n").as_bytes());
    form
}

/// A value as a TabSeparated field (ClickHouse's escapes: backslash, tab, line breaks, NUL).
fn tsv_escape(v: &str, out: &mut Vec<u8>) {
    for &b in v.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

/// What the servers listed say about the cluster: each one's shard, the number of shards and of
/// replicas per shard.
pub(crate) struct Topology {
    pub servers: Vec<Server>,
    pub shards: usize,
    pub replicas: usize,
    /// One server and no cluster: the tables without `_local` are `Merge` tables over the
    /// local ones (`statements`), since a `Distributed` table needs a cluster.
    pub single: bool,
}

#[derive(serde::Deserialize)]
struct ClusterRow {
    shard_num: u32,
    replica_num: u32,
    is_local: u8,
}

pub(crate) fn topology(http: &Http, config: &ClickHouseConfig) -> Result<Topology, StoreError> {
    let mut servers = Vec::new();
    let mut shards = 0;
    let mut replicas = 0;
    for url in &config.servers {
        let text = http.run(
            url,
            &format!(
                "SELECT shard_num, replica_num, is_local FROM system.clusters WHERE cluster = {} FORMAT JSONEachRow",
                q(&config.cluster)
            ),
            None,
            "read the cluster's topology (system.clusters)",
            false,
        )?;
        let rows: Vec<ClusterRow> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if rows.is_empty() && !config.cluster_named && config.servers.len() == 1 {
            // One server without the cluster (most users start there; ClickHouse Cloud's one
            // service too): one shard of one replica.
            return Ok(Topology {
                servers: vec![Server {
                    url: url.clone(),
                    shard: 0,
                }],
                shards: 1,
                replicas: 1,
                single: true,
            });
        }
        if rows.is_empty() {
            return Err(StoreError::Remote {
                server: url.clone(),
                what: "read the cluster's topology".into(),
                message: format!(
                    "the server has no cluster `{}` in its remote_servers configuration, and {}: several servers need one (scripts/clickhouse/cluster.sh shows one; or name yours with ?cluster=NAME)",
                    config.cluster,
                    if config.cluster_named { "the URL names it" } else { "the URL lists several servers" }
                ),
            });
        }
        let n = rows.iter().map(|r| r.shard_num).max().unwrap_or(0) as usize;
        let r = rows.iter().map(|r| r.replica_num).max().unwrap_or(0) as usize;
        // 18.16 marks every replica of the server's own shard local (is_local is the shard's
        // "has a local replica"), so the shard is what the local entries share.
        let mut local: Vec<u32> = rows
            .iter()
            .filter(|r| r.is_local == 1)
            .map(|r| r.shard_num)
            .collect();
        local.dedup();
        let [shard_num] = local[..] else {
            return Err(StoreError::Remote {
                server: url.clone(),
                what: "read the cluster's topology".into(),
                message: format!(
                    "the server is local to {} shards of cluster `{}` (system.clusters.is_local): cannot tell its shard",
                    local.len(),
                    config.cluster
                ),
            });
        };
        if servers.is_empty() {
            (shards, replicas) = (n, r);
        } else if (shards, replicas) != (n, r) {
            return Err(StoreError::Remote {
                server: url.clone(),
                what: "read the cluster's topology".into(),
                message: format!(
                    "this server's cluster `{}` has {n} shards x {r} replicas, {} has {shards} x {replicas}: the servers must share one configuration",
                    config.cluster, config.servers[0]
                ),
            });
        }
        servers.push(Server {
            url: url.clone(),
            shard: shard_num as usize - 1,
        });
    }
    for shard in 0..shards {
        if !servers.iter().any(|s| s.shard == shard) {
            return Err(StoreError::Remote {
                server: config.servers.join(","),
                what: "read the cluster's topology".into(),
                message: format!(
                    "no server listed in the URL holds shard {} of {shards}: list at least one server of every shard",
                    shard + 1
                ),
            });
        }
    }
    Ok(Topology {
        servers,
        shards,
        replicas,
        single: false,
    })
}

/// schema.sql as statements for this cluster: `Distributed(modelwatch, …)` naming the
/// configured cluster (with no cluster, `cluster` None: one server, each `X` is instead
/// `Merge(DB, '^X_local$')`, which reads the one local table, `FINAL` included, on 18.16 and
/// on the current release; the database is written out, as `currentDatabase()` in a stored
/// engine would be evaluated again when the server loads the table), and with replicas, `ENGINE = XMergeTree(args)` of each `*_local` table
/// turned into `ReplicatedXMergeTree('/clickhouse/DB/tables/{shard}/TABLE', '{replica}', args)`
/// (the same rewrite as scripts/clickhouse/check_schema.py; 18.16 has no `{database}` macro).
pub(crate) fn statements(database: &str, cluster: Option<&str>, replicated: bool) -> Vec<String> {
    let text: String = SCHEMA
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for st in text.split(";\n") {
        let st = st.trim().trim_end_matches(';').trim();
        if st.is_empty() {
            continue;
        }
        let mut st = match cluster {
            // The database written out: 18.16 keeps `currentDatabase()` in the table's metadata
            // and evaluates it again when the server restarts, outside any database, so every
            // Distributed table of a restarted server pointed at `.predictions_local` ("There is
            // no table .labels_local on server", found by the kill test).
            Some(cluster) => st
                .replace(
                    "ENGINE = Distributed(modelwatch, currentDatabase(),",
                    &format!("ENGINE = Distributed({cluster}, '{database}',"),
                )
                .replace(
                    "ENGINE = Distributed(modelwatch,",
                    &format!("ENGINE = Distributed({cluster},"),
                ),
            None => st
                .lines()
                .map(|line| {
                    // `ENGINE = Distributed(modelwatch, currentDatabase(), X_local, key)`
                    let local = line
                        .strip_prefix("ENGINE = Distributed(")
                        .and_then(|args| args.split(',').nth(2));
                    match local {
                        Some(local) => {
                            format!("ENGINE = Merge({database}, '^{}$')", local.trim())
                        }
                        None => line.to_string(),
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
        };
        if replicated {
            if let Some(table) = st
                .strip_prefix("CREATE TABLE IF NOT EXISTS ")
                .and_then(|r| r.split([' ', '(']).next())
                .filter(|t| t.ends_with("_local"))
                .map(str::to_string)
            {
                st = st
                    .lines()
                    .map(|line| {
                        let Some(engine) = line.strip_prefix("ENGINE = ") else {
                            return line.to_string();
                        };
                        let (name, args) = match engine.split_once('(') {
                            Some((n, a)) => (n, a.trim_end_matches(')')),
                            None => (engine, ""),
                        };
                        let path = format!(
                            "'/clickhouse/{database}/tables/{{shard}}/{table}', '{{replica}}'"
                        );
                        let args = if args.is_empty() {
                            path
                        } else {
                            format!("{path}, {args}")
                        };
                        format!("ENGINE = Replicated{name}({args})")
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
        }
        out.push(st);
    }
    out
}

/// A string literal for ClickHouse SQL.
pub(crate) fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// An Int64 literal (i64::MIN cannot be written as a negated literal: 9223372036854775808 is
/// a UInt64).
pub(crate) fn int(v: i64) -> String {
    if v == i64::MIN {
        "toInt64('-9223372036854775808')".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_servers_and_database_and_refuse_what_is_wrong() {
        let c = ClickHouseConfig::from_url("clickhouse://a:8123,b:9000/mw").unwrap();
        assert_eq!(c.servers, ["http://a:8123", "http://b:9000"]);
        assert_eq!(
            (c.database.as_str(), c.cluster.as_str()),
            ("mw", "modelwatch")
        );
        let c = ClickHouseConfig::from_url("clickhouse://h:8123/db?cluster=prod").unwrap();
        assert_eq!(c.servers, ["http://h:8123"]);
        assert_eq!(c.cluster, "prod");
        let c = ClickHouseConfig::from_url("clickhouses://h:8443/db").unwrap();
        assert_eq!(c.servers, ["https://h:8443"]);
        for (url, says) in [
            ("http://a:1/db", "must start with clickhouse://"),
            ("clickhouse://a:8123", "names no database"),
            ("clickhouse://a:8123/", "names no database"),
            ("clickhouse://a/db", "has no port"),
            ("clickhouse://a:x/db", "`x` is not a port number"),
            ("clickhouse://u:p@a:1/db", "not a host name"),
            ("clickhouse://a:1/my-db", "database `my-db`"),
            (
                "clickhouse://a:1/db?x=1",
                "the only option is ?cluster=NAME",
            ),
        ] {
            let e = ClickHouseConfig::from_url(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn the_replicated_rewrite_names_the_table_and_keeps_the_engine_arguments() {
        let st = statements("db", Some("c"), true);
        let p = st
            .iter()
            .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS predictions_local"))
            .unwrap();
        assert!(p.contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/db/tables/{shard}/predictions_local', '{replica}', keep)"), "{p}");
        let r = st
            .iter()
            .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS rejected_local"))
            .unwrap();
        assert!(r.contains("ENGINE = ReplicatedMergeTree('/clickhouse/db/tables/{shard}/rejected_local', '{replica}')"), "{r}");
        assert!(st.iter().any(|s| s.contains("ENGINE = Distributed(c,")));
        assert!(!st.iter().any(|s| s.contains("Distributed(modelwatch")));
        // Unreplicated: engines as written.
        assert!(statements("db", Some("modelwatch"), false)
            .iter()
            .all(|s| !s.contains("Replicated")));
    }

    #[test]
    fn one_server_reads_its_local_tables_through_merge_tables() {
        let st = statements("db", None, false);
        let p = st
            .iter()
            .find(|s| s.starts_with("CREATE TABLE IF NOT EXISTS predictions AS"))
            .unwrap();
        assert!(
            p.ends_with("ENGINE = Merge(db, '^predictions_local$')"),
            "{p}"
        );
        assert!(!st.iter().any(|s| s.contains("Distributed")));
        let tables = |st: &[String], engine: &str| st.iter().filter(|s| s.contains(engine)).count();
        assert_eq!(
            tables(&st, "ENGINE = Merge("),
            tables(&statements("db", Some("c"), false), "ENGINE = Distributed(")
        );
    }

    #[test]
    fn row_binary_reads_strings_of_every_length_and_integers_and_refuses_a_cut_answer() {
        let long = vec![0xffu8; 300];
        let mut bytes = vec![1, b'v'];
        bytes.extend((-5i64).to_le_bytes());
        bytes.extend([0xac, 0x02]); // 300 as LEB128
        bytes.extend(&long);
        bytes.push(1);
        let mut r = RowBinary::new(&bytes);
        assert_eq!(r.string().as_deref(), Some("v"));
        assert_eq!(r.i64(), Some(-5));
        assert_eq!(r.bytes(), Some(&long[..]));
        assert_eq!(r.u8(), Some(1));
        assert!(r.is_empty());
        let mut cut = RowBinary::new(&bytes[..bytes.len() - 10]);
        assert_eq!(cut.string().as_deref(), Some("v"));
        assert_eq!(cut.i64(), Some(-5));
        assert_eq!(cut.bytes(), None);
    }

    #[test]
    fn tab_separated_fields_read_back_what_clickhouse_escaped() {
        assert!(matches!(
            tsv_field(r#"{"a":"b"}"#),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            tsv_field(r#"{"t":"it\'s a \\\"q\\\" \\n"}\t\n\0"#),
            "{\"t\":\"it's a \\\"q\\\" \\n\"}\t\n\0"
        );
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(q(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(int(i64::MIN), "toInt64('-9223372036854775808')");
    }

    /// A Distributed table names its database in its metadata: `currentDatabase()` there is
    /// evaluated again when the server restarts, outside the database (the kill test's finding).
    #[test]
    fn distributed_tables_name_their_database_not_the_current_one() {
        for replicated in [false, true] {
            let all = statements("mw_db", Some("c1"), replicated);
            let distributed: Vec<&String> =
                all.iter().filter(|s| s.contains("Distributed(")).collect();
            assert!(distributed.len() >= 10, "{distributed:?}");
            for st in distributed {
                assert!(!st.contains("currentDatabase"), "{st}");
                assert!(st.contains("ENGINE = Distributed(c1, 'mw_db', "), "{st}");
            }
        }
    }

    /// A request id holding a line break and the boundary's own text stays one TabSeparated
    /// line inside its part: the form has exactly its two boundary lines.
    #[test]
    fn an_external_table_keeps_every_id_on_one_line_of_its_part() {
        let form = external_table(
            "_ids",
            &["a", "x\r\n--modelwatch-external-table--\r\n", "t\tb\\"],
        );
        let text = String::from_utf8(form).unwrap();
        let boundary_lines = text
            .split("\r\n")
            .filter(|l| l.starts_with("--modelwatch-external-table"))
            .count();
        assert_eq!(boundary_lines, 2, "{text}");
        assert!(
            text.contains(
                "\r\n\r\na\nx\\r\\n--modelwatch-external-table--\\r\\n\nt\\tb\\\\\n\r\n--"
            ),
            "{text}"
        );
    }
}
