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
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mwprocess import binary, poll, read_address, request, wait_until_answers  # noqa: E402,F401

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


def free_port():
    """A port free on 127.0.0.1 now (for a proxy, which cannot report the port it picked)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        self.url = read_address(self.proc, lambda: f": {self.stderr()}")
        self.port = int(self.url.rsplit(":", 1)[1])
        wait_until_answers(self.url + "/healthz")

    def request(self, method, path, body=None, key=ADMIN_KEY, content_type="application/json"):
        """The JSON reply; raises urllib.error.HTTPError on a 4xx/5xx, with the reply's message."""
        return request(self.url, method, path, body, content_type, key, timeout=120)

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
