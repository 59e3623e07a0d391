"""Backup and restore of a data directory through the real binary, by the procedures of
docs/deployment.md: `deploy/backup/modelwatch-backup` while the server runs and ingests, and a
plain copy of the directory while it is stopped (cleanly, or killed: the WAL is then part of
the copy). The restored directory must answer what the original did.
"""

import json
import math
import shutil
import signal
import subprocess
import threading
import urllib.error
from pathlib import Path

import pytest

from conftest import DEPLOY, INGEST_KEY, KEYS_ENV, READ_KEY, Server, ndjson, require_tool

BACKUP = DEPLOY / "backup" / "modelwatch-backup"
DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]
FRAUD_PREDICTIONS = 6_000
CHURN_BATCH = 500


def start(data_dir):
    return Server(["--addr", "127.0.0.1:0", "--data", str(data_dir)], env=KEYS_ENV)


def fraud_predictions():
    rows = []
    for i in range(FRAUD_PREDICTIONS):
        day = DAYS[i % len(DAYS)]
        score = ((i * 7919) % 1000) / 1000
        rows.append({
            "request_id": f"f-{i}",
            "timestamp": f"{day}T{(i // 7) % 24:02d}:{i % 60:02d}:00Z",
            "model_version": "v1" if i % 4 else "v2",
            "features": {"amount": (i * 37) % 500 + 0.5, "country": ["DE", "FR", "US"][i % 3]},
            "prediction": int(score >= 0.5),
            "score": score,
            "latency_ms": 5 + i % 20,
        })
    return rows


def seed(server):
    """A model with events of three days, labels for most, a reference, an API rule and a
    silence: a row in every kind of table the two databases hold."""
    rows = fraud_predictions()
    for start_at in range(0, len(rows), 1000):
        reply = server.request("POST", "/v1/models/fraud/predictions",
                               ndjson(rows[start_at:start_at + 1000]), key=INGEST_KEY)
        assert reply["accepted"] == 1000
    labels = [{"request_id": r["request_id"], "label": (i * 13) % 2}
              for i, r in enumerate(rows) if i % 5]
    reply = server.request("POST", "/v1/models/fraud/labels", ndjson(labels), key=INGEST_KEY)
    assert reply["accepted"] == len(labels)
    # A rejected row, for the quarantine (alone in its batch: 422, nothing stored).
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.request("POST", "/v1/models/fraud/predictions",
                       ndjson([{"request_id": "bad", "prediction": 1, "score": 7}]),
                       key=INGEST_KEY)
    assert refused.value.code == 422
    reference = [{"amount": (i * 31) % 400 + 0.5, "country": ["DE", "FR"][i % 2],
                  "prediction": i % 2, "score": (i % 10) / 10, "label": i % 2}
                 for i in range(2000)]
    server.request("PUT", "/v1/models/fraud/reference", ndjson(reference),
                   content_type="application/x-ndjson")
    server.request("POST", "/v1/models/fraud/rules", json.dumps({
        "name": "f1-floor", "signal": "f1",
        "condition": {"kind": "threshold", "op": "<", "value": 0.99},
        "decision": "retrain", "severity": "critical"}))
    server.request("POST", "/v1/silences", json.dumps(
        {"model": "fraud", "duration": "2h", "comment": "retraining"}))


def state(server):
    """What a user reads back: the model, its metrics, drift, quarantine, rules, silences."""
    get = lambda path: server.request("GET", path, key=READ_KEY)  # noqa: E731
    window = "window=1d&from=2026-03-02T00:00:00Z&to=2026-03-05T00:00:00Z"
    return {
        "model": get("/v1/models/fraud"),
        "metrics": get(f"/v1/models/fraud/metrics?{window}"),
        "drift": get(f"/v1/models/fraud/drift?{window}"),
        "rejected": get("/v1/models/fraud/rejected"),
        "rules": get("/v1/models/fraud/rules"),
        "silences": get("/v1/silences"),
    }


def same(a, b, path="state"):
    """a == b, but for floats, equal to 1e-12 relative: the engine's sums can differ in the
    last bit with the order in which an hour's aggregate was built (folded on arrival before
    the stop, rescanned after), which is not what a backup is tested for."""
    if isinstance(a, float) and isinstance(b, float):
        # Absolutely to 1e-12 too: a change summary's `delta` of two equal means is a rounding
        # residue near 0 (2.2e-16 against 1.1e-16), where no relative tolerance holds.
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (path, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), (path, sorted(a), sorted(b))
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def stored_ids(server, model):
    ids, after = [], None
    while True:
        path = f"/v1/models/{model}/predictions?limit=10000" + (f"&after={after}" if after else "")
        page = server.request("GET", path, key=READ_KEY)
        ids += [p["request_id"] for p in page["predictions"]]
        after = page.get("next")
        if not after:
            return ids


class Ingest(threading.Thread):
    """Posts batches of new predictions one after another until stopped, counting the
    acknowledged ones: the writes a backup of a live server races with."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server = server
        self.acknowledged = 0
        self.stopping = threading.Event()
        self.error = None

    def batch(self, n):
        return ndjson({"request_id": f"c-{n}-{i}", "prediction": i % 2, "score": (i % 10) / 10,
                       "features": {"tenure": i}} for i in range(CHURN_BATCH))

    def run(self):
        try:
            while not self.stopping.is_set():
                reply = self.server.request("POST", "/v1/models/churn/predictions",
                                            self.batch(self.acknowledged), key=INGEST_KEY)
                assert reply["accepted"] == CHURN_BATCH
                self.acknowledged += 1
        except Exception as e:  # reported by the test
            self.error = e


def test_online_backup_of_a_server_under_ingest_restores_a_consistent_state(tmp_path):
    require_tool("sqlite3")
    data, backup, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    server = start(data)
    try:
        seed(server)
        before = state(server)
        ingest = Ingest(server)
        ingest.start()
        # Let some batches land first, so the backup races with a writer mid-stream.
        while ingest.acknowledged < 3 and ingest.error is None:
            ingest.join(0.05)
        acknowledged_before_backup = ingest.acknowledged
        out = subprocess.run([str(BACKUP), str(data), str(backup)], capture_output=True,
                             text=True, check=False)
        ingest.stopping.set()
        ingest.join()
        assert ingest.error is None, ingest.error
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [str(backup / "modelwatch.db"),
                                      str(backup / "alerts.sqlite")]
        acknowledged_after_backup = ingest.acknowledged
    finally:
        server.stop()
    assert sorted(p.name for p in backup.iterdir()) == ["alerts.sqlite", "modelwatch.db"]

    restored.mkdir()
    for name in ("modelwatch.db", "alerts.sqlite"):
        shutil.copy2(backup / name, restored / name)
    server = start(restored)
    try:
        same(state(server), before)
        # The live model's batches: every batch acknowledged before the backup started, then
        # whole batches in the order they were sent, none cut in two.
        ids = stored_ids(server, "churn")
        batches = len(ids) // CHURN_BATCH
        assert len(ids) % CHURN_BATCH == 0, len(ids)
        assert acknowledged_before_backup <= batches <= acknowledged_after_backup + 1
        expected = [f"c-{n}-{i}" for n in range(batches) for i in range(CHURN_BATCH)]
        assert sorted(ids) == sorted(expected)
        # The restored service takes new events as usual.
        reply = server.request("POST", "/v1/models/churn/predictions",
                               ndjson([{"request_id": "after-restore", "prediction": 1}]),
                               key=INGEST_KEY)
        assert reply["accepted"] == 1
    finally:
        server.stop()


def test_backup_refuses_a_directory_that_is_not_a_data_directory(tmp_path):
    require_tool("sqlite3")
    (tmp_path / "empty").mkdir()
    out = subprocess.run([str(BACKUP), str(tmp_path / "empty"), str(tmp_path / "b")],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert "not a modelwatch data directory" in out.stderr
    assert not (tmp_path / "b").exists()


def test_backup_refuses_to_write_into_a_non_empty_directory(tmp_path):
    require_tool("sqlite3")
    server = start(tmp_path / "data")
    try:
        server.request("POST", "/v1/models/m/predictions",
                       ndjson([{"request_id": "r", "prediction": 1}]), key=INGEST_KEY)
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "old").write_text("an earlier backup")
        out = subprocess.run([str(BACKUP), str(tmp_path / "data"), str(tmp_path / "b")],
                             capture_output=True, text=True, check=False)
    finally:
        server.stop()
    assert out.returncode == 1
    assert "is not empty" in out.stderr


def test_a_copy_of_a_stopped_server_directory_restores_it(tmp_path):
    """Stopped cleanly (SIGTERM) or killed (SIGKILL, the WAL not checkpointed): `cp -a` of the
    whole directory, WAL files included, is a backup."""
    for n, sig in enumerate([signal.SIGTERM, signal.SIGKILL]):
        data, copy = tmp_path / f"data-{n}", tmp_path / f"copy-{n}"
        server = start(data)
        seed(server)
        before = state(server)
        server.stop(sig)
        subprocess.run(["cp", "-a", str(data), str(copy)], check=True)
        server = start(copy)
        try:
            same(state(server), before, f"state after {sig.name}")
        finally:
            server.stop()


def test_the_backup_script_is_plain_posix_sh():
    # The image and most hosts have no bash at /bin/sh; `sh -n` parses without running.
    subprocess.run(["sh", "-n", str(BACKUP)], check=True)
    assert Path(BACKUP).read_text().startswith("#!/bin/sh\n")
