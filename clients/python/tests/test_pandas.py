"""pandas: predictions and labels from a DataFrame in one call, metrics back as a DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd

import modelwatch
from conftest import wait_for


def test_dataframe_round_trip(server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    mon = modelwatch.Monitor(server.url, model_name, "v2", spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(mon)

    batch = X.iloc[200:300].copy()
    proba = fitted_pipeline.predict_proba(batch)
    batch["request_id"] = ["bc-%d" % i for i in range(100)]
    batch["prediction"] = fitted_pipeline.predict(X.iloc[200:300])
    batch["score"] = proba[:, 1]
    batch["segment"] = np.where(np.arange(100) % 2 == 0, "a", "b")
    batch.loc[batch.index[0], "mean radius"] = np.nan  # sent as null
    ids = mon.log_predictions(batch, tag_columns=["segment"])
    assert ids == ["bc-%d" % i for i in range(100)]

    labels = pd.DataFrame({"request_id": ids[:80], "label": y.iloc[200:280].to_numpy()})
    assert mon.log_labels(labels) == 80
    assert mon.flush(10), mon.stats()

    events = {e["request_id"]: e for e in server.predictions(model_name)}
    assert set(events) == set(ids)
    e0 = events["bc-0"]
    assert e0["features"]["mean radius"] is None
    assert e0["features"]["mean texture"] == float(X.iloc[200]["mean texture"])
    assert "segment" not in e0["features"] and e0["tags"] == {"segment": "a"}
    assert e0["score"] == float(proba[0, 1]) and e0["model_version"] == "v2"

    info = wait_for(lambda: (lambda i: i if i and i["labelled"] == 80 else None)(server.model(model_name)),
                    what="80 labelled")
    assert info["predictions"] == 100

    df = mon.metrics(window="1d")
    assert isinstance(df, pd.DataFrame)
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert df.index.name == "window_start"
    assert int(df["prediction_volume"].sum()) == 100
    assert int(df["labelled"].sum()) == 80


def test_log_predictions_records_and_contract_shape(server, model_name, spool_dir, monitors):
    mon = modelwatch.Monitor(server.url, model_name, spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(mon)
    flat = [{"request_id": "f-1", "prediction": "fraud", "amount": 12.5, "country": "DE"},
            {"prediction": "ok", "amount": 3, "country": None}]
    ids = mon.log_predictions(flat)
    assert ids[0] == "f-1" and len(ids) == 2
    shaped = [{"request_id": "c-1", "features": {"amount": 1.0}, "prediction": "ok",
               "scores": {"fraud": 0.2, "ok": 0.8}}]
    assert mon.log_predictions(shaped) == ["c-1"]
    single = mon.log_prediction({"amount": 7.0, "country": "FR"}, "fraud", score=0.9, latency_ms=1.5)
    assert mon.flush(10), mon.stats()
    events = {e["request_id"]: e for e in server.predictions(model_name)}
    assert set(events) == {"f-1", ids[1], "c-1", single}
    assert events["f-1"]["features"] == {"amount": 12.5, "country": "DE"}
    assert events[ids[1]]["features"] == {"amount": 3, "country": None}
    assert events["c-1"]["scores"] == {"fraud": 0.2, "ok": 0.8}
    assert events[single]["score"] == 0.9 and events[single]["latency_ms"] == 1.5


def test_upload_reference(server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    mon = modelwatch.Monitor(server.url, model_name, "v2", spool_dir=str(spool_dir))
    monitors.append(mon)
    mon.log_prediction({"mean radius": 1.0}, 0)  # the model exists
    assert mon.flush(10)
    ref = X.iloc[:200].copy()
    ref["prediction"] = fitted_pipeline.predict(X.iloc[:200])
    ref["label"] = y.iloc[:200].to_numpy()
    reply = mon.upload_reference(ref)
    assert reply["rows"] == 200
