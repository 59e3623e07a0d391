"""Attributions: ``monitor.wrap(model, explain=...)`` against the real binary.

The wrapped call returns exactly what the bare estimator returns, and returns while the explainer
is still blocked (a slow explainer cannot slow ``predict``); each prediction then arrives with
its per-feature attributions (``"explanations"``), and the server's attribution report reads
them. An explainer that fails, or a full queue, costs the attributions of that call, never its
predictions. With the ``shap`` package installed, ``explain=True`` logs shap's own values.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import modelwatch


def _monitor(server, model, spool_dir, monitors):
    m = modelwatch.Monitor(server.url, model, "v1", spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(m)
    return m


class GatedExplainer:
    """A linear model's exact attributions (coefficient x standardised value), computed only
    once the test lets it."""

    def __init__(self, pipeline, gate: threading.Event):
        self.scaler = pipeline[0]
        self.coef = pipeline[-1].coef_[0]
        self.gate = gate
        self.calls = 0

    def __call__(self, X):
        self.gate.wait(30)
        self.calls += 1
        return self.scaler.transform(X) * self.coef


def test_a_callable_explainer_adds_attributions_without_holding_predict(
        server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, _ = breast_cancer
    gate = threading.Event()
    explainer = GatedExplainer(fitted_pipeline, gate)
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline, explain=explainer)
    rows = X.iloc[:100]
    # The explainer is blocked: predict returns anyway, the bare result.
    proba, ids = wrapped.predict_proba(rows, return_request_ids=True)
    assert np.array_equal(proba, fitted_pipeline.predict_proba(rows))
    assert explainer.calls == 0
    gate.set()
    assert wrapped.flush_explanations(30)
    assert mon.flush(10), mon.stats()
    assert wrapped.explain_stats()["explained"] == 1

    events = {e["request_id"]: e for e in server.predictions(model_name)}
    assert set(events) == set(ids)
    want = fitted_pipeline[0].transform(rows) * fitted_pipeline[-1].coef_[0]
    for i, rid in enumerate(ids):
        e = events[rid]["explanations"]
        assert set(e) == {str(c) for c in X.columns}
        assert np.allclose([e[c] for c in X.columns], want[i], rtol=1e-12, atol=1e-15)
        # The attributions of a linear model add up to its log-odds.
        logit = np.log(proba[i, 1] / proba[i, 0])
        assert sum(e.values()) + fitted_pipeline[-1].intercept_[0] == pytest.approx(logit, abs=1e-6)

    report = server.get("/v1/models/%s/attributions?window=1d" % model_name)
    features = report["windows"][-1]["features"]
    assert report["windows"][-1]["explained"] == 100
    assert len(features) == X.shape[1]
    top = max(X.columns, key=lambda c: np.mean(np.abs(want[:, list(X.columns).index(c)])))
    assert features[0]["feature"] == top and features[0]["rank"] == 1


class Broken:
    def __call__(self, X):
        raise RuntimeError("explainer exploded")


def test_a_failing_or_saturated_explainer_never_costs_a_prediction(
        server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, _ = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors)
    broken = mon.wrap(fitted_pipeline, explain=Broken())
    out = broken.predict(X.iloc[:10])
    assert np.array_equal(out, fitted_pipeline.predict(X.iloc[:10]))
    assert broken.flush_explanations(30)
    assert broken.explain_stats()["failed"] == 1

    # One slot in the queue and a blocked explainer: the first call is taken by the thread, the
    # second waits, the third finds the queue full and is logged at once without attributions.
    gate = threading.Event()
    slow = mon.wrap(fitted_pipeline, explain=GatedExplainer(fitted_pipeline, gate), explain_queue=1)
    for i in range(3):
        slow.predict(X.iloc[10 + i * 10:20 + i * 10])
    gate.set()
    assert slow.flush_explanations(30)
    assert mon.flush(10)
    stats = slow.explain_stats()
    assert stats["skipped"] >= 1
    assert stats["explained"] == 3 - stats["skipped"]
    events = server.predictions(model_name)
    assert len(events) == 40
    explained = [e for e in events if "explanations" in e]
    assert len(explained) == 10 * stats["explained"]


def test_explain_true_without_shap_logs_predictions_as_before(
        server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer, monkeypatch):
    X, _ = breast_cancer
    monkeypatch.setitem(sys.modules, "shap", None)  # `import shap` raises ImportError
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline, explain=True)
    out = wrapped.predict(X.iloc[:20])
    assert np.array_equal(out, fitted_pipeline.predict(X.iloc[:20]))
    assert wrapped.flush_explanations(30)
    assert mon.flush(10)
    assert wrapped.explain_stats()["available"] is False
    events = server.predictions(model_name)
    assert len(events) == 20 and not any("explanations" in e for e in events)


def test_explain_true_logs_the_shap_packages_values(
        server, model_name, spool_dir, monitors, breast_cancer):
    shap = pytest.importorskip("shap")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = breast_cancer
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    linear = LogisticRegression(max_iter=5000).fit(X, y)
    mon = _monitor(server, model_name, spool_dir, monitors)
    # A tree model needs nothing more; a linear one its background rows.
    for model, kwargs, version in [(forest, {}, "forest"),
                                   (linear, {"explain_background": X.iloc[:200]}, "linear")]:
        wrapped = mon.wrap(model, explain=True, version=version, **kwargs)
        rows = X.iloc[200:240]
        out, ids = wrapped.predict(rows, return_request_ids=True)
        assert np.array_equal(out, model.predict(rows))
        assert wrapped.flush_explanations(120)
        assert mon.flush(10)
        assert wrapped.explain_stats()["explained"] == 1, wrapped.explain_stats()
        if version == "forest":
            want = shap.TreeExplainer(forest)(rows).values[:, :, 1]
        else:
            want = shap.Explainer(linear, X.iloc[:200])(rows).values
        events = {e["request_id"]: e for e in server.predictions(model_name)
                  if e.get("model_version") == version}
        assert set(events) == set(ids)
        for i, rid in enumerate(ids):
            got = events[rid]["explanations"]
            assert np.allclose([got[c] for c in X.columns], want[i], rtol=1e-9, atol=1e-12)
