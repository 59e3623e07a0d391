"""Test harness: runs the real ``modelwatch`` binary on 127.0.0.1 (never a fake server).

The binary is taken from ``$MODELWATCH_BIN``, else ``$CARGO_TARGET_DIR`` or
``~/.cache/modelwatch-target`` ``/debug/modelwatch``, else built with
``cargo build -p modelwatch-cli`` from the repository root (two levels above clients/python).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "modelwatch-target")


def _find_binary() -> str:
    env = os.environ.get("MODELWATCH_BIN")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail("MODELWATCH_BIN=%s is not an executable" % env)
        return env
    candidate = TARGET_DIR / "debug" / "modelwatch"
    if candidate.exists():
        return str(candidate)
    cargo = shutil.which("cargo")
    if cargo is None or not (REPO_ROOT / "Cargo.toml").exists():
        pytest.fail("no modelwatch binary: set MODELWATCH_BIN or build it with "
                    "`cargo build -p modelwatch-cli` (CARGO_TARGET_DIR=%s)" % TARGET_DIR)
    env_vars = dict(os.environ, CARGO_TARGET_DIR=str(TARGET_DIR))
    r = subprocess.run([cargo, "build", "-p", "modelwatch-cli"], cwd=str(REPO_ROOT), env=env_vars)
    if r.returncode != 0 or not candidate.exists():
        pytest.fail("cargo build -p modelwatch-cli failed (exit %d)" % r.returncode)
    return str(candidate)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    last: Any = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what or pred, last))
        time.sleep(interval)


class Server:
    """One ``modelwatch serve`` process bound to 127.0.0.1:port, stopped by pid."""

    def __init__(self, binary: str, data_dir: Path, port: int, log_path: Path,
                 env: Optional[Dict[str, str]] = None):
        self.env = dict(os.environ, **(env or {}))
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data", str(self.data_dir), "--addr", "127.0.0.1:%d" % self.port],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        logf.close()
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("modelwatch serve exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                status, body = self.request("GET", "/healthz", timeout=1.0)
                if status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > end:
                self.kill()
                raise AssertionError("modelwatch serve not healthy after %.0fs:\n%s" % (timeout, self.log()))
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL if it does not exit within 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None, timeout: float = 10.0):
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, "GET %s -> %s %s" % (path, status, body)
        return body

    def model(self, model: str) -> Optional[Dict[str, Any]]:
        status, body = self.request("GET", "/v1/models/%s" % model)
        return body if status == 200 else None

    def _pages(self, model: str, what: str) -> List[Dict[str, Any]]:
        """Every stored prediction/label of a model, following the server's ``next`` cursor."""
        out: List[Dict[str, Any]] = []
        after = None
        while True:
            q = "limit=10000" + ("&after=%s" % after if after is not None else "")
            status, body = self.request("GET", "/v1/models/%s/%s?%s" % (model, what, q))
            if status == 404:
                return out
            assert status == 200, (status, body)
            out.extend(body[what])
            after = body.get("next")
            if after is None or not body[what]:
                return out

    def predictions(self, model: str) -> List[Dict[str, Any]]:
        return self._pages(model, "predictions")

    def labels(self, model: str) -> List[Dict[str, Any]]:
        return self._pages(model, "labels")

    def prediction_count(self, model: str) -> int:
        info = self.model(model)
        return int(info["predictions"]) if info else 0


@pytest.fixture(scope="session")
def modelwatch_bin() -> str:
    return _find_binary()


@pytest.fixture(scope="session")
def _session_tmp():
    d = Path(tempfile.mkdtemp(prefix="mw-pytest-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def server(modelwatch_bin: str, _session_tmp: Path):
    """A server shared by the tests that do not stop it (each test uses its own model name)."""
    s = Server(modelwatch_bin, _session_tmp / "shared-data", free_port(), _session_tmp / "shared.log")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def make_server(modelwatch_bin: str, tmp_path: Path):
    """Factory for servers a test starts, stops and kills itself; all are stopped at teardown."""
    started: List[Server] = []

    def make(port: Optional[int] = None, data_dir: Optional[Path] = None,
             env: Optional[Dict[str, str]] = None) -> Server:
        n = len(started)
        s = Server(modelwatch_bin, data_dir or tmp_path / ("data%d" % n), port or free_port(),
                   tmp_path / ("server%d.log" % n), env)
        started.append(s)
        return s

    yield make
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            try:
                os.kill(s.proc.pid, signal.SIGCONT)  # in case a test left it stopped
            except OSError:
                pass
        s.kill()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def model_name() -> str:
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def fitted_pipeline(breast_cancer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = breast_cancer
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


@pytest.fixture
def monitors():
    """Monitors created through this list are closed at teardown."""
    created: List[Any] = []
    yield created
    for m in created:
        m.close(timeout=2)


def python_subprocess(code: str, env_extra: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
