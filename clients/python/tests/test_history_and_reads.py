"""Replaying history with ``timestamp=``, failed calls logged as ``error`` events, and reading
back from a running server: ``metrics`` (the server's CSV table) and ``export``."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

import modelwatch
from conftest import wait_for

UTC = dt.timezone.utc


def _monitor(server, model_name, spool_dir, monitors, version="v1"):
    mon = modelwatch.Monitor(server.url, model_name, version, spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(mon)
    return mon


def test_timestamp_replays_history_one_time_per_call_or_per_row(server, model_name, spool_dir, monitors,
                                                               fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors)
    model = mon.wrap(fitted_pipeline)
    # One time for the whole call: a naive datetime is UTC.
    day1 = model.predict(X.iloc[:50], timestamp=dt.datetime(2026, 1, 5, 9, 30))
    ids1 = list(model.last_request_ids)
    # One time per row: a Series of datetimes (replaying a log), through predict_proba too.
    when = pd.Series(pd.date_range("2026-01-06T00:00:00Z", periods=50, freq="h"))
    proba = model.predict_proba(X.iloc[50:100], timestamp=when)
    ids2 = list(model.last_request_ids)
    # POSIX seconds and an RFC 3339 string.
    model.predict(X.iloc[100:110], timestamp=dt.datetime(2026, 1, 9, tzinfo=UTC).timestamp())
    ids3 = list(model.last_request_ids)
    model.predict(X.iloc[110:120], timestamp="2026-01-10T12:00:00Z")
    ids4 = list(model.last_request_ids)
    assert np.array_equal(day1, fitted_pipeline.predict(X.iloc[:50]))
    assert np.array_equal(proba, fitted_pipeline.predict_proba(X.iloc[50:100]))
    assert mon.flush(10), mon.stats()

    events = {e["request_id"]: e for e in server.predictions(model_name)}

    def at(ids):
        return [pd.Timestamp(events[i]["timestamp"]) for i in ids]

    assert set(at(ids1)) == {pd.Timestamp("2026-01-05T09:30:00Z")}
    assert at(ids2) == list(when)
    assert set(at(ids3)) == {pd.Timestamp("2026-01-09T00:00:00Z")}
    assert set(at(ids4)) == {pd.Timestamp("2026-01-10T12:00:00Z")}

    # The windows are those of when the rows happened.
    mon.log_labels(ids1 + ids2, list(y.iloc[:100]))
    assert mon.flush(10)
    wait_for(lambda: server.model(model_name)["labelled"] == 100, what="100 labels")
    df = mon.metrics(window="1d")
    assert [t.strftime("%Y-%m-%d") for t in df.index] == [
        "2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-10"]
    assert df["prediction_volume"].tolist() == [50, 24, 24, 2, 10, 10]


def test_a_failed_predict_is_logged_as_an_error_event_and_raised(server, model_name, spool_dir, monitors,
                                                                 fitted_pipeline, breast_cancer):
    X, _ = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors)
    model = mon.wrap(fitted_pipeline)
    model.predict(X.iloc[:5])
    bad = X.iloc[5:8].drop(columns=["mean radius"])  # the pipeline refuses a missing column
    with pytest.raises(ValueError) as raised:
        model.predict(bad)
    with pytest.raises(ValueError) as bare:
        fitted_pipeline.predict(bad)
    assert str(raised.value) == str(bare.value)  # the estimator's own exception, unchanged
    failed_ids = list(model.last_request_ids)
    assert len(failed_ids) == 3
    assert mon.flush(10), mon.stats()

    events = {e["request_id"]: e for e in server.predictions(model_name)}
    assert len(events) == 8
    for rid in failed_ids:
        e = events[rid]
        assert e["error"].startswith("ValueError: ") and "mean radius" in e["error"], e
        assert "prediction" not in e
        assert e["features"]["mean texture"] == float(X.loc[X.index[5 + failed_ids.index(rid)], "mean texture"])
        assert e["model_version"] == "v1" and e["latency_ms"] >= 0
    rows = mon.metrics(window="1d", as_frame=False)
    assert len(rows) == 1
    assert rows[0]["prediction_volume"] == 8 and rows[0]["errors"] == 3
    assert rows[0]["error_rate"] == 3 / 8


def _load_two_days(mon):
    """Two days of a binary model: 90 % right, then 60 % right; latency grows."""
    preds, labels = [], []
    for d, (day, wrong) in enumerate([("2026-02-02", lambda i: i % 10 == 0), ("2026-02-03", lambda i: i % 10 < 4)]):
        for i in range(100):
            y = i % 2
            p = 1 - y if wrong(i) else y
            rid = "d%d-%d" % (d, i)
            preds.append({"request_id": rid, "timestamp": "%sT%02d:00:00Z" % (day, i % 24), "prediction": p,
                          "score": 0.8 if p == 1 else 0.3, "amount": float(i), "latency_ms": 2.0 + i * 0.5})
            labels.append({"request_id": rid, "label": y})
    mon.log_predictions(preds)
    mon.log_labels(labels)
    assert mon.flush(10), mon.stats()


def test_metrics_is_the_servers_csv_table_with_the_json_numbers(server, model_name, spool_dir, monitors):
    mon = _monitor(server, model_name, spool_dir, monitors)
    _load_two_days(mon)
    wait_for(lambda: server.model(model_name)["labelled"] == 200, what="200 labels")
    report = server.get("/v1/models/%s/metrics?window=1d" % model_name)

    df = mon.metrics(window="1d")
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert df.index.name == "window_start"
    # What the README shows: pandas reads the URL in one call, the same table.
    url = "%s/v1/models/%s/metrics?window=1d&format=csv" % (server.url, model_name)
    direct = pd.read_csv(url, parse_dates=["window_start", "window_end"]).set_index("window_start")
    assert list(direct.columns) == list(df.columns)
    assert direct["accuracy"].tolist() == df["accuracy"].tolist()

    for (start, row), w in zip(df.iterrows(), report["windows"]):
        assert start == pd.Timestamp(w["start"])
        assert row["prediction_volume"] == w["predictions"]
        assert row["label_coverage"] == w["label_coverage"]
        for col, m in [("accuracy", w["accuracy"]), ("f1", w["f1"]), ("precision", w["precision"]),
                       ("recall", w["recall"]), ("average_confidence", w["average_confidence"]),
                       ("latency_p95", w["latency_ms"]["p95"])]:
            assert m["status"] == "defined", (col, m)
            assert row[col] == m["value"] and row[col + "_ci_low"] == m["ci_low"], col
            assert row[col + "_ci_high"] == m["ci_high"], col
    assert df["accuracy"].tolist() == [0.9, 0.6]

    # Without pandas (as_frame=False): the same cells as plain Python values.
    rows = mon.metrics(window="1d", as_frame=False)
    assert [r["accuracy"] for r in rows] == [0.9, 0.6]
    assert rows[0]["window_start"] == report["windows"][0]["start"]
    assert rows[0]["insufficient_sample"] is False

    summary = mon.metrics_summary(window="1d")
    acc = summary["metrics"]["accuracy"]
    assert (acc["first"], acc["last"]) == (0.9, 0.6)
    assert acc["first_to_last"]["significant"] is True
    assert summary["metrics"]["prediction_volume"]["first_to_last"]["significant"] is False


def test_metrics_segment_is_a_breakdown_or_one_slice_with_the_meaning_it_has_on_drift(
        server, model_name, spool_dir, monitors):
    mon = _monitor(server, model_name, spool_dir, monitors)
    preds, labels = [], []
    for i in range(100):
        y = i % 2
        # DE (rows 0-59) always right; FR (60-99) wrong on every fourth row.
        p = 1 - y if i >= 60 and i % 4 == 0 else y
        preds.append({"request_id": "s%d" % i, "timestamp": "2026-02-02T%02d:00:00Z" % (i % 24),
                      "prediction": p, "score": 0.8 if p == 1 else 0.3,
                      "country": "DE" if i < 60 else "FR", "region": "eu" if i % 2 == 0 else "us"})
        labels.append({"request_id": "s%d" % i, "label": y})
    mon.log_predictions(preds, tag_columns=["region"])
    mon.log_labels(labels)
    assert mon.flush(10), mon.stats()
    wait_for(lambda: server.model(model_name)["labelled"] == 100, what="100 labels")

    # A feature (or tag:<name>) alone: the metrics per value, as before.
    by_country = mon.metrics(window="1d", segment="country")
    values = {s["value"]: s for s in by_country["segments"]}
    assert set(values) == {"DE", "FR"}
    assert values["DE"]["accuracy"]["value"] == 1.0
    assert values["FR"]["accuracy"]["value"] == 0.75
    by_region = mon.metrics(window="1d", segment="tag:region")
    assert {s["value"] for s in by_region["segments"]} == {"eu", "us"}

    # feature:value or tag:<name>:<value>: the report of that slice only.
    fr = mon.metrics(window="1d", segment="country:FR")
    assert "segments" not in fr and fr["segment"] == "country:FR"
    assert fr["windows"][0]["predictions"] == 40
    assert fr["windows"][0]["accuracy"]["value"] == 0.75
    eu = mon.metrics(window="1d", segment="tag:region:eu")
    assert eu["windows"][0]["predictions"] == 50

    # A bad one is the server's 400, naming the parameter.
    with pytest.raises(modelwatch.ModelwatchError) as e:
        mon.metrics(window="1d", segment="tag:")
    assert e.value.status == 400 and "`segment`" in str(e.value)


def test_export_pages_through_a_running_server(server, model_name, spool_dir, monitors):
    mon = _monitor(server, model_name, spool_dir, monitors)
    _load_two_days(mon)
    wait_for(lambda: server.model(model_name)["labelled"] == 200, what="200 labels")
    df = mon.export(page_size=64)  # several pages
    assert len(df) == 200
    assert set(df["request_id"]) == {"d%d-%d" % (d, i) for d in range(2) for i in range(100)}
    assert str(df["timestamp"].dt.tz) == "UTC"
    first = df.set_index("request_id").loc["d0-3"]
    assert first["features.amount"] == 3.0 and first["prediction"] == 1 and first["score"] == 0.8
    labels = mon.export("labels", as_frame=False)
    assert len(labels) == 200 and {"request_id", "label", "timestamp"} <= set(labels[0])
    with pytest.raises(ValueError):
        mon.export("everything")
    assert not math.isnan(first["latency_ms"])
