"""HTTP transport on ``http.client`` (standard library only), one keep-alive connection per user."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import ssl
from typing import Any, Dict, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

from . import __version__

USER_AGENT = "modelwatch-python/%s" % __version__


class ModelwatchError(Exception):
    """A synchronous call (metrics, reference upload, ...) failed.

    ``status`` is the HTTP status (0 when the server could not be reached); ``code`` and
    ``message`` come from the server's ``{"error": {"code", "message"}}`` body when there is one.
    """

    def __init__(self, status: int, code: str, message: str, body: Any = None):
        super().__init__("%s %s: %s" % (status or "unreachable", code, message))
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class Response:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: Any, headers: Dict[str, str]):
        self.status = status
        self.body = body
        self.headers = headers


class Transport:
    def __init__(self, url: str, api_key: Optional[str], timeout: float):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("modelwatch url must be http(s)://host[:port][/prefix], got %r" % url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.api_key = api_key
        self._conn: Optional[http.client.HTTPConnection] = None

    def model_path(self, model: str, suffix: str = "", query: Optional[Dict[str, Any]] = None) -> str:
        path = "%s/v1/models/%s%s" % (self.prefix, quote(model, safe=""), suffix)
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                path += "?" + urlencode(q)
        return path

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                content_type: Optional[str] = None, compress: bool = False) -> Response:
        """One HTTP exchange; raises OSError/http.client.HTTPException when the server is unreachable."""
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = "Bearer %s" % self.api_key
        if body is not None:
            if compress:
                body = gzip.compress(body, compresslevel=1)  # releases the GIL; level 1 is ~3x faster than 6
                headers["Content-Encoding"] = "gzip"
            headers["Content-Type"] = content_type or "application/json"
        for attempt in (0, 1):
            conn = self._connect()
            reused = getattr(conn, "sock", None) is not None
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                rheaders = {k.lower(): v for k, v in resp.getheaders()}
                if rheaders.get("connection", "").lower() == "close":
                    self.close()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server had closed: retry once on a fresh one
                self.close()
                if attempt == 1 or not reused:
                    raise
            except (OSError, http.client.HTTPException, socket.timeout):
                self.close()
                raise
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
        return Response(status, parsed, rheaders)

    def call(self, method: str, path: str, body: Optional[bytes] = None,
             content_type: Optional[str] = None, compress: bool = False) -> Any:
        """A synchronous call for user-facing methods: returns the JSON body or raises ModelwatchError."""
        try:
            r = self.request(method, path, body, content_type, compress)
        except (OSError, http.client.HTTPException) as e:
            raise ModelwatchError(0, "unreachable", "%s %s: %s" % (method, path, e)) from e
        if r.status >= 400:
            code, message = error_of(r)
            raise ModelwatchError(r.status, code, message, r.body)
        return r.body


def error_of(r: Response) -> Tuple[str, str]:
    if isinstance(r.body, dict) and isinstance(r.body.get("error"), dict):
        err = r.body["error"]
        return str(err.get("code", "error")), str(err.get("message", ""))
    return "http_%d" % r.status, str(r.body)[:500] if r.body else ""
