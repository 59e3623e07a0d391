"""Overhead the modelwatch wrapper adds to one predict call (hot path only; sending is background).

    python3 clients/python/bench/bench_overhead.py [--calls 20000] [--bin PATH]

For each scenario (server up: the real binary on 127.0.0.1; server down: nothing listening) and
each input size (1 row, 100 rows of the 30-feature breast cancer data) it times, call by call with
``perf_counter_ns``, the bare estimator and the wrapped one, in alternating blocks so that drift
(CPU frequency, the background thread's work) hits both alike.  Two estimators:

- ``pipeline``: StandardScaler + LogisticRegression, what users actually serve;
- ``noop``: an estimator whose predict just returns a preallocated array, so that the difference
  is the wrapper's own cost and nothing else.

Per-call overhead = wrapped - bare (median and mean).  The background thread runs during the
measurement (it converts, spools and sends what the loop logs), so its GIL contention is included.
The queue is sized so that nothing is dropped (every call pays the whole hot path); the tight
loop logs far more rows per second than a real service would, so the *mean* includes the
background thread's CPU for those rows (GIL), which the median mostly does not.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import modelwatch

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent.parent


class Noop:
    """predict returns a preallocated result: the wrapper's cost is all that is measured."""

    def __init__(self, n_classes: int = 2):
        self.classes_ = np.arange(n_classes)
        self._out = {}

    def predict(self, X):
        n = X.shape[0]
        out = self._out.get(n)
        if out is None:
            out = self._out[n] = np.zeros(n, dtype=np.int64)
        return out

    def get_params(self, deep=True):
        return {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bin(arg):
    if arg:
        return arg
    if os.environ.get("MODELWATCH_BIN"):
        return os.environ["MODELWATCH_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "modelwatch-target")
    for profile in ("release", "debug"):
        p = target / profile / "modelwatch"
        if p.exists():
            return str(p)
    sys.exit("no modelwatch binary: pass --bin or set MODELWATCH_BIN")


def start_server(binary: str, data: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([binary, "serve", "--data", data, "--addr", "127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("server did not become healthy")


def time_calls(obj, X, calls: int, out: list) -> None:
    """``obj.predict(X)`` looked up on every call, as serving code does."""
    pc = time.perf_counter_ns
    for _ in range(calls):
        t = pc()
        obj.predict(X)
        out.append(pc() - t)


def measure(bare, wrapped, X, calls: int, block: int = 500):
    b: list = []
    w: list = []
    for _ in range(50):  # warm-up
        bare.predict(X)
        wrapped.predict(X)
    done = 0
    while done < calls:
        k = min(block, calls - done)
        time_calls(bare, X, k, b)
        time_calls(wrapped, X, k, w)
        done += k
    return b, w


def measure_throughput(est, Xall, port: int, spool: str, server_up: bool, rows: int = 60_000) -> dict:
    """Background capacity, 100-row calls logged as fast as possible.

    server up: until the server acknowledged every row (conversion, spool, gzip, HTTP and the
    server's durable ingest); server down: until every row is in the spool (the client's own work).
    """
    out = {}
    for method in ("predict", "predict_proba"):
        mon = modelwatch.Monitor("http://127.0.0.1:%d" % port, "bench-throughput-%s-%s" % (server_up, method),
                                 "v1", spool_dir=spool, max_queue_rows=rows + 1000,
                                 retry_initial=3600, retry_max=3600)
        wrapped = mon.wrap(est)
        X = Xall[:100]
        fn = getattr(wrapped, method)
        t0 = time.perf_counter()
        for _ in range(rows // 100):
            fn(X)
        t_hot = time.perf_counter() - t0
        if server_up:
            ok = mon.flush(300)
            done = mon.stats()["sent_rows"]
        else:
            end = time.monotonic() + 300
            while mon.stats()["spooled_rows"] < rows and time.monotonic() < end:
                time.sleep(0.005)
            done = mon.stats()["spooled_rows"]
            ok = done == rows
        t_all = time.perf_counter() - t0
        mon.close(timeout=0.1)
        out[method] = dict(rows=done, ok=ok, hot_s=t_hot, total_s=t_all, rows_per_s=done / t_all)
    return out


def us(ns: float) -> float:
    return ns / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000, help="calls per (estimator, size, scenario)")
    ap.add_argument("--bin", default=None, help="modelwatch binary (default: $MODELWATCH_BIN or the cargo target dir)")
    args = ap.parse_args()

    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xall, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Xall, y)
    estimators = {"pipeline": pipe, "noop": Noop()}
    inputs = {1: Xall[:1].copy(), 100: Xall[:100].copy()}

    binary = find_bin(args.bin)
    tmp = tempfile.mkdtemp(prefix="mw-bench-")
    rows = []
    throughput: dict = {}
    try:
        for scenario in ("up", "down", "idle"):
            # idle: nothing listening and the background thread held asleep during the loop, so the
            # figures are the hot path alone (no GIL contention from conversion)
            port = free_port()
            proc = start_server(binary, os.path.join(tmp, "data"), port) if scenario == "up" else None
            try:
                for est_name, est in estimators.items():
                    for n, X in inputs.items():
                        calls = args.calls if n == 1 else max(1000, args.calls // 10)
                        model = "bench-%s-%s-%d" % (scenario, est_name, n)
                        spool = os.path.join(tmp, "spool-" + model)
                        # queue large enough that nothing is dropped: every call pays the full hot path
                        idle = dict(flush_interval=3600, batch_size=10**9) if scenario == "idle" else {}
                        mon = modelwatch.Monitor("http://127.0.0.1:%d" % port, model, "v1", spool_dir=spool,
                                                 max_queue_rows=(calls + 100) * n, retry_max=2.0, **idle)
                        wrapped = mon.wrap(est)
                        b, w = measure(est, wrapped, X, calls)
                        if scenario != "idle":
                            mon.flush(30 if scenario == "up" else 1)
                        st = mon.stats()
                        mon.close(timeout=1)
                        shutil.rmtree(spool, ignore_errors=True)
                        rows.append(dict(
                            scenario=scenario, est=est_name, n=n, calls=calls,
                            bare_med=us(statistics.median(b)), wrap_med=us(statistics.median(w)),
                            bare_mean=us(statistics.fmean(b)), wrap_mean=us(statistics.fmean(w)),
                            bare_p99=us(float(np.percentile(b, 99))), wrap_p99=us(float(np.percentile(w, 99))),
                            sent=st["sent_rows"], dropped=st["dropped_rows"] + st["spool_dropped_rows"],
                            logged=st["enqueued_rows"]))
                if scenario != "idle":
                    throughput[scenario] = measure_throughput(pipe, Xall, port, os.path.join(tmp, "spool-tp"),
                                                              scenario == "up")
            finally:
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("modelwatch %s, Python %s, numpy %s, %s, %d CPUs" % (
        modelwatch.__version__, platform.python_version(), np.__version__, platform.machine(), os.cpu_count()))
    print()
    print("| server | estimator | rows/call | calls | bare median µs | wrapped median µs | overhead median µs "
          "| overhead mean µs | bare p99 µs | wrapped p99 µs | rows logged | rows sent | rows dropped |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %d | %d |" % (
            r["scenario"], r["est"], r["n"], r["calls"], r["bare_med"], r["wrap_med"],
            r["wrap_med"] - r["bare_med"], r["wrap_mean"] - r["bare_mean"], r["bare_p99"], r["wrap_p99"],
            r["logged"], r["sent"], r["dropped"]))


    print()
    print("Background throughput: 100-row calls of the 30-feature pipeline logged as fast as possible; "
          "server up = until the server acknowledged every row, server down = until every row is spooled "
          "(the client's own capacity):")
    print()
    print("| server | method | rows | time in the predict loop s | time until done s | rows/s |")
    print("|---|---|---:|---:|---:|---:|")
    for scenario, per in throughput.items():
        for method, t in per.items():
            print("| %s | %s | %d | %.2f | %.2f | %.0f |" % (scenario, method, t["rows"], t["hot_s"],
                                                        t["total_s"], t["rows_per_s"]))


if __name__ == "__main__":
    main()
