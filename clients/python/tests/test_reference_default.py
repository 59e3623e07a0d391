"""The everyday workflow end to end with the SDK's defaults: a scikit-learn pipeline wrapped by a
``Monitor(version="v1")``, its test set uploaded with ``upload_reference`` (which stores it as
v1's reference), and no ``version=`` on any query or rule. The server then uses that reference
for version-less queries: the README's F1-vs-test rule fires, the drift view answers, and a
feedback window whose predictions collapsed to one class says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

import modelwatch
from conftest import wait_for

F1_VS_TEST = {"name": "f1-vs-test", "signal": "f1",
              "condition": {"kind": "baseline", "direction": "below", "relative": 0.05},
              "decision": "retrain", "severity": "critical"}


def _post_json(server, path, body):
    return server.request("POST", path, json.dumps(body).encode(),
                          {"Content-Type": "application/json"})


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_sdk_default_reference_drives_rules_drift_and_feedback(server, model_name, spool_dir,
                                                               monitors, breast_cancer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = breast_cancer
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)

    mon = modelwatch.Monitor(server.url, model_name, "v1", spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(mon)

    # The test set as the reference, with the SDK's default arguments (stored for v1).
    ref = X_test.copy()
    ref["prediction"] = pipeline.predict(X_test)
    ref["score"] = pipeline.predict_proba(X_test)[:, 1]
    ref["label"] = y_test.to_numpy()
    reply = mon.upload_reference(ref)
    assert reply["version"] == "v1" and reply["rows"] == len(ref), reply

    # Production: only benign cases reach the model (its outputs collapse to class 1), and two
    # in five of them turn out to be malignant (its F1 falls well below the test set's).
    wrapped = mon.wrap(pipeline, log_methods=("predict_proba",))
    prod = X[y == 1]
    proba = wrapped.predict_proba(prod)
    ids = list(wrapped.last_request_ids)
    truth = np.where(np.arange(len(prod)) % 5 < 2, 0, 1)
    mon.log_labels(ids, truth)
    assert mon.flush(10), mon.stats()
    assert (proba.argmax(axis=1) == 1).mean() > 0.9

    status, rule = _post_json(server, "/v1/models/%s/rules" % model_name, F1_VS_TEST)
    assert status == 201, rule

    # Metrics: the baseline is v1's reference, named in the reply.
    metrics = server.get("/v1/models/%s/metrics?window=1d" % model_name)
    assert metrics["reference"] == {"version": "v1", "rows": len(ref)}, metrics["reference"]
    assert metrics["baseline"] is not None and metrics["baseline"]["f1"]["value"] > 0.9

    # The README's rule fires against it.
    def firing():
        alerts = server.get("/v1/alerts?model=%s&state=firing" % model_name)["alerts"]
        return alerts or None

    alert = wait_for(firing, timeout=30, what="the f1-vs-test alert firing")[0]
    assert alert["rule"] == "f1-vs-test" and alert["decision"] == "retrain"
    assert alert["value"] < 0.9 * alert["baseline"], alert

    # The drift view answers (200, not 409 "no reference") and says which reference it used.
    drift = server.get("/v1/models/%s/drift?window=1d" % model_name)
    assert drift["reference"] == {"version": "v1", "rows": len(ref)}
    window = drift["windows"][-1]
    assert window["evaluated_features"] == X.shape[1]
    assert window["drifted_features"] > 0, window

    # Feedback: one class took over against the reference's mix.
    fb = server.get("/v1/models/%s/feedback?window=1d" % model_name)
    assert fb["reference"]["version"] == "v1" and fb["reference"]["rows"] == len(ref)
    assert fb["windows"][-1]["collapsed"] is True, fb["windows"][-1]
