"""What the HTTP benchmarks share (standard library only): a `modelwatch serve` on a fresh data
directory, timed requests, and days of predictions posted in batches like a client would."""

import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request


def request(url, body=None, method="GET", ctype="application/x-ndjson", timeout=3600):
    """Sends one request; returns (seconds it took, reply body)."""
    req = urllib.request.Request(url, data=body, method=method, headers={"content-type": ctype})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read()
    return time.perf_counter() - t, text


@contextlib.contextmanager
def serve(binary):
    """`modelwatch serve` on a free port and a temporary data directory; yields its URL and
    stops it (and deletes the data) on exit."""
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [binary, "serve", "--addr", "127.0.0.1:0", "--data", data],
            stdout=subprocess.PIPE, env=dict(os.environ, RUST_LOG="warn"))
        try:
            yield server.stdout.readline().decode().strip().removeprefix("modelwatch listening on ")
        finally:
            server.terminate()
            server.wait()


def post_days(url, model, days, per_day, event, batch_rows=50_000):
    """Posts `days` x `per_day` predictions from 2026-01-01, spread evenly over each day;
    `event(i)` gives the event's other fields for the i-th prediction of a day."""
    batch = []

    def flush():
        request(f"{url}/v1/models/{model}/predictions", ("\n".join(batch) + "\n").encode(), "POST")
        batch.clear()

    for d in range(days):
        for i in range(per_day):
            secs = i * 86400 // per_day
            row = {
                "request_id": f"{d}-{i}",
                "timestamp": f"2026-01-{d + 1:02}T{secs // 3600:02}:{secs // 60 % 60:02}:{secs % 60:02}Z",
            }
            row.update(event(i))
            batch.append(json.dumps(row))
            if len(batch) == batch_rows:
                flush()
    if batch:
        flush()
