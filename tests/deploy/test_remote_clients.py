"""Serving remote clients (docs/deployment.md): a server that listens beyond loopback with no
API keys says so at start, before its address line, since anyone who reaches it can then read
and change everything. Only the first stdout line is read: nothing connects to the server."""

import os
import signal
import subprocess
import tempfile

from conftest import KEYS_ENV, binary

WARNING = "listening beyond loopback with no API keys"


def start_and_stop(addr, data, env):
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [binary(), "serve", "--addr", addr, "--data", str(data)],
            stdout=subprocess.PIPE, stderr=log, text=True,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("MODELWATCH_")},
                 "RUST_LOG": "info", **env})
        first = proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        proc.stdout.close()
        log.seek(0)
        return first, log.read()


def test_every_interface_without_keys_is_warned_about(tmp_path):
    first, log = start_and_stop("0.0.0.0:0", tmp_path / "d", {})
    assert first.startswith("modelwatch listening on http://0.0.0.0:")
    assert WARNING in log, log
    assert "MODELWATCH_ADMIN_KEYS" in log


def test_every_interface_with_keys_is_not_warned_about(tmp_path):
    first, log = start_and_stop("0.0.0.0:0", tmp_path / "d", KEYS_ENV)
    assert first.startswith("modelwatch listening on ")
    assert WARNING not in log


def test_loopback_without_keys_is_not_warned_about(tmp_path):
    first, log = start_and_stop("127.0.0.1:0", tmp_path / "d", {})
    assert first.startswith("modelwatch listening on ")
    assert WARNING not in log
