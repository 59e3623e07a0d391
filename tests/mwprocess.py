"""The real `modelwatch` binary as a process of the Python test suites (tests/browser,
tests/deploy): where the binary is, its address line, waiting until it answers, and its JSON
API. Each suite's conftest.py imports it (the suites run in venvs of their own, so it uses the
standard library only). The SDK's own suite (clients/python/tests) keeps its harness: it starts
servers on a chosen port to restart them under a client.
"""

import json
import os
import time
import urllib.error
import urllib.request

import pytest

LISTENING = "modelwatch listening on "


def binary():
    """MODELWATCH_BIN, the binary under test; fails the test when it is not set."""
    path = os.environ.get("MODELWATCH_BIN")
    if not path or not os.path.exists(path):
        pytest.fail("set MODELWATCH_BIN to the modelwatch binary (cargo build -p modelwatch-cli)")
    return path


def read_address(proc, why=lambda: ""):
    """The base URL a started `modelwatch serve` or `demo` prints on its first line. Anything
    else stops the process and fails, with `why()` (its log, say) in the message."""
    line = proc.stdout.readline().strip()
    if not line.startswith(LISTENING):
        proc.kill()
        proc.wait()
        raise AssertionError(f"unexpected first line {line!r}{why()}")
    return line[len(LISTENING):]


def poll(probe, timeout, what, interval=0.05):
    """Calls `probe` until it returns something other than None, at most `timeout` seconds;
    then fails naming `what` (a string, or a function giving one: the last state seen). Tests
    wait for what a user would see, never for a fixed time."""
    deadline = time.time() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.time() > deadline:
            raise AssertionError(f"after {timeout:.0f} s: {what() if callable(what) else what}")
        time.sleep(interval)


def wait_until_answers(url, timeout=20, context=None):
    """The HTTP status of the first answer from `url` (any status: it answers)."""

    def probe():
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    return poll(probe, timeout, f"{url} never answered")


def request(url, method, path, body=None, content_type="application/json", key=None, timeout=60):
    """The JSON reply of `method url+path`; raises urllib.error.HTTPError on a 4xx/5xx, with the
    reply's message in it for the failure report."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", content_type)
    if key is not None:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        e.msg = f"{e.msg}: {method} {path}: {e.read().decode(errors='replace')}"
        raise
