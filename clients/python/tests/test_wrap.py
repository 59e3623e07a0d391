"""The wrapped estimator returns exactly what the bare one does, and its events arrive intact."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

import modelwatch
from conftest import wait_for


def _monitor(server, model, spool_dir, monitors, **kw):
    m = modelwatch.Monitor(server.url, model, "v1", spool_dir=str(spool_dir), flush_interval=0.1, **kw)
    monitors.append(m)
    return m


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_wrapped_returns_exactly_the_bare_result(server, model_name, spool_dir, monitors,
                                                 fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    wrapped = _monitor(server, model_name, spool_dir, monitors).wrap(fitted_pipeline)
    for inp in (X.iloc[:57], X.iloc[[3]], X.to_numpy()[:40]):
        for method in ("predict", "predict_proba", "decision_function"):
            bare = getattr(fitted_pipeline, method)(inp)
            got = getattr(wrapped, method)(inp)
            assert type(got) is type(bare)
            assert got.dtype == bare.dtype and got.shape == bare.shape
            assert np.array_equal(got, bare)
    assert wrapped.score(X, y) == fitted_pipeline.score(X, y)
    res, ids = wrapped.predict(X.iloc[:5], return_request_ids=True)
    assert np.array_equal(res, fitted_pipeline.predict(X.iloc[:5]))
    assert len(ids) == 5 and len(set(ids)) == 5
    assert list(wrapped.last_request_ids) == list(ids)


def test_events_arrive_with_features_and_probabilities(server, model_name, spool_dir, monitors,
                                                       fitted_pipeline, breast_cancer):
    X, _ = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors, tags={"region": "eu"})
    wrapped = mon.wrap(fitted_pipeline)
    rows = X.iloc[100:130]
    proba = wrapped.predict_proba(rows)
    ids = list(wrapped.last_request_ids)
    assert mon.flush(10), mon.stats()

    got = {p["request_id"]: p for p in server.predictions(model_name)}
    assert set(got) == set(ids)
    classes = fitted_pipeline.classes_
    for i, rid in enumerate(ids):
        ev = got[rid]
        assert ev["model_version"] == "v1"
        assert ev["tags"] == {"region": "eu"}
        # every feature, bit-exact after the JSON round trip
        assert ev["features"] == {c: float(rows.iloc[i][c]) for c in X.columns}
        assert ev["prediction"] == int(classes[np.argmax(proba[i])])
        assert ev["score"] == pytest.approx(proba[i, 1], rel=1e-12, abs=1e-15)
        assert {k: pytest.approx(v, rel=1e-12, abs=1e-15) for k, v in ev["scores"].items()} == \
            {str(c): proba[i, j] for j, c in enumerate(classes)}
        assert ev["latency_ms"] > 0
        assert isinstance(ev["timestamp"], (int, str))  # normalised by the server
    st = mon.stats()
    assert st["sent_rows"] == 30 and st["dropped_rows"] == 0 and st["rejected_rows"] == 0


def test_numpy_input_uses_feature_names_in(server, model_name, spool_dir, monitors, breast_cancer):
    from sklearn.linear_model import LogisticRegression

    X, y = breast_cancer
    cols = list(X.columns[:5])
    est = LogisticRegression(max_iter=2000).fit(X[cols], y)
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(est)
    arr = X[cols].to_numpy()[:3]
    with pytest.warns(UserWarning):  # sklearn: "X does not have valid feature names"
        pred = wrapped.predict(arr)
    assert mon.flush(10)
    events = {e["request_id"]: e for e in server.predictions(model_name)}
    for i, rid in enumerate(wrapped.last_request_ids):
        assert events[rid]["features"] == dict(zip(cols, arr[i].tolist()))
        assert events[rid]["prediction"] == int(pred[i])

    # an estimator fitted on an array gets x0..xN, or the names given to wrap()
    est2 = LogisticRegression(max_iter=2000).fit(X[cols].to_numpy(), y)
    w2 = mon.wrap(est2, feature_names=["a", "b", "c", "d", "e"])
    w2.predict(arr[:1])
    w3 = mon.wrap(est2)
    w3.predict(arr[:1])
    assert mon.flush(10)
    events = {e["request_id"]: e for e in server.predictions(model_name)}
    assert sorted(events[w2.last_request_ids[0]]["features"]) == ["a", "b", "c", "d", "e"]
    assert sorted(events[w3.last_request_ids[0]]["features"]) == ["x0", "x1", "x2", "x3", "x4"]


def test_labels_logged_later_are_joined(server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline)
    ids = []
    for start in range(0, 60, 20):
        wrapped.predict_proba(X.iloc[start:start + 20])
        ids.extend(wrapped.last_request_ids)
    assert mon.flush(10)
    # labels arrive later, for 45 of the 60 predictions
    assert mon.log_labels(ids[:45], y.iloc[:45].tolist()) == 45
    assert mon.flush(10), mon.stats()
    info = wait_for(lambda: (lambda i: i if i and i["labelled"] == 45 else None)(server.model(model_name)),
                    what="45 labelled predictions")
    assert info["predictions"] == 60 and info["labels"] == 45
    labels = {l["request_id"]: l["label"] for l in server.labels(model_name)}
    assert labels == {rid: int(v) for rid, v in zip(ids[:45], y.iloc[:45])}


def test_behaves_like_the_estimator(server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    from sklearn.base import clone, is_classifier
    from sklearn.svm import SVC
    from sklearn.utils.validation import check_is_fitted

    X, y = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline)
    assert wrapped.get_params() == fitted_pipeline.get_params()
    assert list(wrapped.classes_) == list(fitted_pipeline.classes_)
    assert wrapped.named_steps["logisticregression"] is fitted_pipeline.named_steps["logisticregression"]
    assert len(wrapped) == 2 and wrapped[-1] is fitted_pipeline[-1]
    assert is_classifier(wrapped)
    check_is_fitted(wrapped)
    assert repr(wrapped) == repr(fitted_pipeline)
    assert wrapped.unwrap() is fitted_pipeline

    # hasattr mirrors the estimator (SVC without probability has no predict_proba)
    svc = SVC().fit(X.iloc[:100, :4], y.iloc[:100])
    wsvc = mon.wrap(svc)
    assert not hasattr(wsvc, "predict_proba") and hasattr(wsvc, "decision_function")

    # set_params / fit return the wrapper; attribute writes go to the estimator
    fresh = mon.wrap(clone(fitted_pipeline))
    assert fresh.set_params(logisticregression__C=0.5) is fresh
    assert fresh.fit(X, y) is fresh
    assert fresh.unwrap().get_params()["logisticregression__C"] == 0.5
    fresh.my_attr = 3
    assert fresh.unwrap().my_attr == 3

    # sklearn.clone gives a wrapped, unfitted clone logging to the same monitor
    c = clone(wrapped)
    assert isinstance(c, modelwatch.MonitoredEstimator) and c.modelwatch_monitor is mon
    assert c.unwrap() is not fitted_pipeline

    # pickling keeps the estimator and the monitor configuration; the copy logs too
    restored = pickle.loads(pickle.dumps(wrapped))
    assert np.array_equal(restored.predict_proba(X.iloc[:7]), fitted_pipeline.predict_proba(X.iloc[:7]))
    rids = list(restored.last_request_ids)
    assert restored.modelwatch_monitor.flush(10)
    assert set(rids) <= {p["request_id"] for p in server.predictions(model_name)}


def test_last_request_ids_are_per_thread(server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, _ = breast_cancer
    wrapped = _monitor(server, model_name, spool_dir, monitors).wrap(fitted_pipeline)
    seen = {}
    barrier = threading.Barrier(4)

    def work(k):
        barrier.wait()
        for _ in range(20):
            _, ids = wrapped.predict(X.iloc[k:k + 1 + k], return_request_ids=True)
            assert list(wrapped.last_request_ids) == list(ids)
        seen[k] = list(wrapped.last_request_ids)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [len(seen[k]) for k in range(4)] == [1, 2, 3, 4]
    all_ids = [r for k in range(4) for r in seen[k]]
    assert len(set(all_ids)) == len(all_ids)


def test_caller_request_ids(server, model_name, spool_dir, monitors, fitted_pipeline, breast_cancer):
    X, y = breast_cancer
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(fitted_pipeline)
    ids = ["order-%d" % i for i in range(10)]
    wrapped.predict(X.iloc[:10], request_ids=ids)
    assert list(wrapped.last_request_ids) == ids
    by_index = mon.wrap(fitted_pipeline, request_ids_from_index=True)
    frame = X.iloc[10:13].set_axis(["a-1", "a-2", "a-3"])
    by_index.predict(frame)
    assert list(by_index.last_request_ids) == ["a-1", "a-2", "a-3"]
    assert mon.flush(10)
    stored = {p["request_id"] for p in server.predictions(model_name)}
    assert set(ids) | {"a-1", "a-2", "a-3"} == stored


def test_predict_never_raises_on_bad_values(server, model_name, spool_dir, monitors):
    from sklearn.dummy import DummyRegressor

    mon = _monitor(server, model_name, spool_dir, monitors)
    est = DummyRegressor(strategy="constant", constant=2.5).fit([[0.0, 1.0]], [2.5])
    wrapped = mon.wrap(est, feature_names=["a", "b"])
    out = wrapped.predict(np.array([[np.nan, np.inf], [1.0, -np.inf]]))
    assert out.tolist() == [2.5, 2.5]
    ids = list(wrapped.last_request_ids)
    assert mon.flush(10), mon.stats()
    ev = {e["request_id"]: e for e in server.predictions(model_name)}
    assert ev[ids[0]]["features"] == {"a": None, "b": None}  # NaN/inf are sent as null
    assert ev[ids[1]]["features"] == {"a": 1.0, "b": None}
    assert ev[ids[0]]["prediction"] == 2.5

    # a row the server rejects (timestamp before 2000) is logged and dropped, never raised
    rid = mon.log_prediction({"a": 1}, 1, timestamp="1990-01-01T00:00:00Z")
    ok_id = mon.log_prediction({"a": 2}, 2)
    mon.flush(10)
    stored = {e["request_id"] for e in server.predictions(model_name)}
    assert ok_id in stored and rid not in stored
    assert mon.stats()["rejected_rows"] == 1


def test_mixed_type_dataframe_pipeline(server, model_name, spool_dir, monitors):
    """Strings, categories, bools, missing values and dates, through a ColumnTransformer pipeline."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    n = 40
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "amount": rng.normal(50, 10, n),
        "country": pd.Categorical(rng.choice(["DE", "FR", "ES"], n)),
        "device": rng.choice(["ios", "android", None], n).astype(object),
        "new_customer": rng.choice([True, False], n),
        "signup": pd.date_range("2026-01-01", periods=n, freq="D", tz="UTC"),
    })
    df.loc[3, "amount"] = np.nan
    y = (df["amount"].fillna(50) > 50).astype(int)
    pre = ColumnTransformer([
        ("num", SimpleImputer(), ["age", "amount"]),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="ignore")), ["country", "device"]),
        ("flag", "passthrough", ["new_customer"]),
    ])
    pipe = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(df, y)
    mon = _monitor(server, model_name, spool_dir, monitors)
    wrapped = mon.wrap(pipe)
    got = wrapped.predict_proba(df)
    assert np.array_equal(got, pipe.predict_proba(df))
    ids = list(wrapped.last_request_ids)
    assert mon.flush(10), mon.stats()
    ev = {e["request_id"]: e for e in server.predictions(model_name)}
    assert set(ev) == set(ids)
    for i in (0, 3, 7):
        f = ev[ids[i]]["features"]
        assert f["age"] == int(df["age"][i])
        assert f["amount"] == (None if i == 3 else float(df["amount"][i]))
        assert f["country"] == df["country"][i]
        assert f["device"] == (None if pd.isna(df["device"][i]) else df["device"][i])
        assert f["new_customer"] is bool(df["new_customer"][i])
        assert f["signup"] == df["signup"][i].strftime("%Y-%m-%dT%H:%M:%SZ")


def test_labels_before_any_prediction_are_retried(server, model_name, spool_dir, monitors):
    """Labels for a model the server does not know yet (404) wait, without blocking predictions."""
    mon = _monitor(server, model_name, spool_dir, monitors)
    mon.log_labels(["early-1", "early-2"], [1, 0])
    assert mon.flush(10) is False  # the model has no predictions yet: labels stay spooled
    assert mon.stats()["spool_segments"] == 1
    mon.log_prediction({"a": 1.0}, 1, request_id="early-1")
    mon.log_prediction({"a": 2.0}, 1, request_id="early-2")
    assert mon.flush(10), mon.stats()
    info = wait_for(lambda: (lambda i: i if i and i["labelled"] == 2 else None)(server.model(model_name)),
                    what="2 labelled")
    assert info["labels"] == 2
