"""Shadow challengers: ``monitor.wrap(champion, shadow=[...])`` against the real binary.

The champion's call returns exactly what the bare estimator returns, and returns while a
challenger is still blocked (so a slow challenger cannot slow it); the challengers' predictions
arrive as shadow predictions of their own version under the same request ids, and the server's
comparison pairs them.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modelwatch


class Gated:
    """A challenger that waits for the test's go-ahead before each call it scores."""

    def __init__(self, estimator, gate: threading.Event):
        self.estimator = estimator
        self.gate = gate
        self.classes_ = estimator.classes_

    def predict_proba(self, X):
        self.gate.wait(30)
        return self.estimator.predict_proba(X)


class Broken:
    classes_ = np.array([0, 1])

    def predict_proba(self, X):
        raise RuntimeError("challenger exploded")


def _monitor(server, model, spool_dir, monitors):
    m = modelwatch.Monitor(server.url, model, "v1", spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(m)
    return m


def test_a_shadow_challenger_scores_the_same_requests_without_holding_the_champion(
        server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    challenger = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=500)).fit(X, y)
    gate = threading.Event()
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline, shadow=[("v2", Gated(challenger, gate))])
    rows = X.iloc[:200]
    # The challenger is blocked: the champion's call returns anyway, with the bare result.
    proba, ids = wrapped.predict_proba(rows, return_request_ids=True)
    assert np.array_equal(proba, fitted_pipeline.predict_proba(rows))
    assert wrapped.shadow_stats()["scored"] == 0
    gate.set()
    assert wrapped.flush_shadows(30)
    assert mon.flush(10), mon.stats()
    assert wrapped.shadow_stats() == {"versions": ["v2"], "scored": 1, "failed": 0, "skipped": 0,
                                      "queued": 0}

    events = server.predictions(model_name)
    served = {e["request_id"]: e for e in events if e.get("role") is None}
    shadow = {e["request_id"]: e for e in events if e.get("role") == "shadow"}
    assert set(served) == set(ids) == set(shadow)
    want = challenger.predict_proba(rows)
    for i, rid in enumerate(ids):
        assert served[rid]["model_version"] == "v1"
        assert shadow[rid]["model_version"] == "v2"
        assert shadow[rid]["score"] == pytest.approx(want[i, 1], rel=1e-12, abs=1e-15)
        assert shadow[rid]["features"] == served[rid]["features"]
    # The model's own numbers are the champion's: one prediction per request.
    assert server.model(model_name)["predictions"] == len(ids)

    mon.log_labels(list(ids), list(y[:200]))
    assert mon.flush(10)
    report = server.get("/v1/models/%s/compare?champion=v1&challenger=v2" % model_name)
    assert report["mode"] == "paired"
    assert report["overall"]["paired_labelled"] == 200
    assert report["decision"]["verdict"] in ("promote", "keep", "need_more_data")


def test_a_failing_or_saturated_challenger_never_reaches_the_caller(
        server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, _ = breast_cancer
    gate = threading.Event()
    mon = _monitor(server, model_name, spool_dir, monitors)
    # One slot in the queue, and a gated challenger ahead of a broken one: the first call is
    # taken by the thread and blocks it, the second waits in the queue, the third finds it full.
    wrapped = mon.wrap(fitted_pipeline, shadow={"v2": Gated(fitted_pipeline, gate), "v3": Broken()},
                       shadow_queue=1)
    results = [wrapped.predict_proba(X.iloc[i * 10:(i + 1) * 10]) for i in range(3)]
    for i, r in enumerate(results):
        assert np.array_equal(r, fitted_pipeline.predict_proba(X.iloc[i * 10:(i + 1) * 10]))
    gate.set()
    assert wrapped.flush_shadows(30)
    assert mon.flush(10)
    stats = wrapped.shadow_stats()
    # At most one call in the thread and one in the queue: at least one was not shadowed, and
    # each shadowed call was scored by v2 and failed in v3.
    assert stats["skipped"] >= 1
    assert stats["scored"] == stats["failed"] == 3 - stats["skipped"]
    events = server.predictions(model_name)
    broken = [e for e in events if e.get("model_version") == "v3"]
    assert len(broken) == 10 * stats["failed"]
    assert all(e["role"] == "shadow" for e in broken)
    assert all(e["error"] == "RuntimeError: challenger exploded" for e in broken)
    served = [e for e in events if e.get("role") is None]
    assert len(served) == 30


def test_a_wrapped_estimator_with_shadows_pickles(server, model_name, spool_dir, monitors,
                                                   fitted_pipeline):
    import pickle

    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline, shadow=[fitted_pipeline])
    again = pickle.loads(pickle.dumps(wrapped))
    assert again.shadow_stats()["versions"] == ["shadow-1"]
    json.dumps(again.shadow_stats())
