"""Helpers of the deployment tests: the real `modelwatch` binary (MODELWATCH_BIN) started as a
server on 127.0.0.1, and the tools the tests need (nginx, caddy, sqlite3, systemd-analyze,
hadolint...). A missing tool skips its test on a developer's machine and fails it in CI
(CI=true), so that CI never passes by skipping.
"""

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1].parent
DEPLOY = REPO / "deploy"

# Keys of at least 16 characters, as the server requires.
ADMIN_KEY = "admin-key-0123456789abcdef"
INGEST_KEY = "ingest-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"
KEYS_ENV = {
    "MODELWATCH_ADMIN_KEYS": ADMIN_KEY,
    "MODELWATCH_INGEST_KEYS": INGEST_KEY,
    "MODELWATCH_READ_KEYS": READ_KEY,
}


def require_tool(name):
    """The path of `name`; skips the test when it is missing, fails it in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/test.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def binary():
    path = os.environ.get("MODELWATCH_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("set MODELWATCH_BIN to the modelwatch binary (cargo build -p modelwatch-cli)")
    return path


def free_port():
    """A port free on 127.0.0.1 now (for a proxy, which cannot report the port it picked)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url, timeout=20, context=None):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            if time.time() > deadline:
                raise AssertionError(f"{url} never answered")
            time.sleep(0.05)


class Server:
    """A `modelwatch serve` process; `args` and `env` are added to the defaults."""

    def __init__(self, args, env=None):
        # The log goes to a file: a pipe nobody reads could fill and stall the server.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [binary(), "serve", *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "RUST_LOG": "warn", **(env or {})},
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        prefix = "modelwatch listening on "
        if not line.startswith(prefix):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"unexpected first line {line!r}: {self.stderr()}")
        self.url = line[len(prefix):]
        self.port = int(self.url.rsplit(":", 1)[1])
        wait_until_answers(self.url + "/healthz")

    def request(self, method, path, body=None, key=ADMIN_KEY, content_type="application/json"):
        """The JSON reply; raises urllib.error.HTTPError on a 4xx/5xx."""
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", content_type)
        if key is not None:
            req.add_header("authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            # The reply's JSON message in the error, for the failure report.
            e.msg = f"{e.msg}: {method} {path}: {e.read().decode(errors='replace')}"
            raise

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()

    def stderr(self):
        self.log.seek(0)
        return self.log.read()


def ndjson(rows):
    return "\n".join(json.dumps(r) for r in rows)


def gzipped(text):
    return gzip.compress(text.encode())
