#!/usr/bin/env python3
"""ClickHouse's HTTP interface, as much of it as modelwatch's backend uses, over a chdb session.

chdb (PyPI) embeds a current ClickHouse release (26.9 with chdb 4.4) in Python; it is not a
server. This shim makes it one, so that the ClickHouse backend's tests can run their SQL against
the current dialect as well as against Debian's 18.16 (ADR 019, issue 21 §2):

    python scripts/clickhouse/chdb_shim.py DATA_DIR [PORT]

prints `http://127.0.0.1:PORT` on stdout once it listens (PORT 0 or omitted: a free one) and
serves until killed. What it speaks:

- `GET|POST /?query=SQL&database=DB&SETTING=VALUE...`: the query is the `query` parameter
  followed by the request body (ClickHouse's rule: an INSERT's rows follow its `FORMAT` clause
  in the body), or the body alone. `database` is the current database of that query. Every
  other parameter is a ClickHouse setting and is applied with `SET` (so a setting the current
  release does not know fails the query, as a server's would); `user` and `password` are
  ignored (chdb has no users).
- The answer is the query's output in the format its `FORMAT` clause names (TabSeparated
  without one, as a server's HTTP interface); an error is HTTP 500 with ClickHouse's message
  text (`Code: N. DB::Exception: ...`), as a server's.
- External data (a `multipart/form-data` body): each part is a temporary table named by the
  part's `name`, its columns from the `NAME_structure` parameter, its rows TabSeparated; the
  query comes from the `query` parameter alone. The backend sends a batch's request ids so
  (`request_id IN _ids`) rather than as thousands of literals.
- `GET /ping` answers `Ok.`.

One chdb session serves every request, one query at a time (a lock): the session holds the
current database and the settings, and chdb is not documented as safe for concurrent queries.
"""

import email.parser
import email.policy
import http.server
import os
import ssl
import sys
import threading
import urllib.parse

from chdb import session as chdb_session

NOT_SETTINGS = {"query", "database", "user", "password", "query_id", "default_format"}


class Shim:
    def __init__(self, path):
        self.session = chdb_session.Session(path)
        self.lock = threading.Lock()

    def run(self, params, body, tables=None):
        """`tables`: external data, {name: TabSeparated text}, each with `NAME_structure`."""
        tables = tables or {}
        query = params.get("query", "")
        if body:
            query = f"{query}\n{body}" if query else body
        if not query.strip():
            raise RuntimeError("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        external = {f"{t}_{k}" for t in tables for k in ("structure", "types", "format")}
        with self.lock:
            for name, value in params.items():
                if name in NOT_SETTINGS or name in external:
                    continue
                if not name.replace("_", "").isalnum():
                    raise RuntimeError(f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                self.session.query(f"SET {name} = {quote(value)}")
            # Each request names its database, or gets `default`, as a server's HTTP interface.
            self.session.query(f"USE {params.get('database', 'default')}")
            try:
                for table, rows in tables.items():
                    structure = params.get(f"{table}_structure")
                    if not structure:
                        raise RuntimeError(f"Code: 36. DB::Exception: no {table}_structure for the external table {table}")
                    self.session.query(f"CREATE TEMPORARY TABLE {table} ({structure})")
                    if rows.strip():
                        self.session.query(f"INSERT INTO {table} FORMAT TabSeparated\n{rows}")
                result = self.session.query(query, params.get("default_format", "TabSeparated"))
            finally:
                for table in tables:
                    self.session.query(f"DROP TEMPORARY TABLE IF EXISTS {table}")
            return result.bytes() if hasattr(result, "bytes") else bytes(str(result), "utf-8")


def external_tables(content_type, body):
    """The parts of a multipart/form-data body, {name: text}."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True).decode("utf-8")
        for part in message.iter_parts()
    }


def quote(value):
    """A setting's value: a number as is, anything else as a string literal."""
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def handler(shim):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the backend's client expects

        def answer(self, status, data):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            if status != 200:
                self.send_header("X-ClickHouse-Exception-Code", "1")
            self.end_headers()
            self.wfile.write(data)

        def serve(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/ping":
                return self.answer(200, b"Ok.\n")
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type") or ""
            try:
                if content_type.startswith("multipart/form-data"):
                    data = shim.run(params, "", external_tables(content_type, raw))
                else:
                    data = shim.run(params, raw.decode("utf-8"))
            except Exception as e:  # chdb raises its ClickHouse error with the server's text
                return self.answer(500, (str(e).strip() + "\n").encode("utf-8"))
            self.answer(200, data)

        do_GET = serve
        do_POST = serve

        def log_message(self, *args):
            pass

    return Handler


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: chdb_shim.py DATA_DIR [PORT]")
    shim = Shim(sys.argv[1])
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(shim))
    server.daemon_threads = True
    scheme = "http"
    # HTTPS, as a ClickHouse server's https_port: the TLS test of the backend's client
    # (crates/store-clickhouse/tests/tls.rs) sets a certificate and its key.
    cert, key = os.environ.get("MW_SHIM_TLS_CERT"), os.environ.get("MW_SHIM_TLS_KEY")
    if cert and key:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print(f"{scheme}://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
