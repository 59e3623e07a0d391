"""The fast NDJSON encoder produces exactly the events of the generic one (no server needed)."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

import modelwatch
from modelwatch.monitor import _CALL, _Ctx


class _Est:
    def __init__(self, classes=None, names=None):
        if classes is not None:
            self.classes_ = np.asarray(classes)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)


@pytest.fixture
def mon():
    m = modelwatch.Monitor("http://127.0.0.1:9", "enc", "v7", spool_dir=False, flush_interval=3600,
                           tags={"region": "eu"})
    yield m
    m.close(timeout=0.1)


def _both(mon, item):
    mon.fast_encoding = True
    fast = [json.loads(x) for x in mon._convert(item)[1]]
    mon.fast_encoding = False
    slow = [json.loads(x) for x in mon._convert(item)[1]]
    return fast, slow


rng = np.random.default_rng(1)
X_float = rng.normal(size=(7, 4)) * 1e3
X_int = rng.integers(-5, 10**12, size=(7, 3))
P2 = rng.dirichlet([1, 1], size=7)
P3 = rng.dirichlet([1, 1, 1], size=7)
frame_mixed = pd.DataFrame({"age": rng.integers(18, 90, 7), "amount": rng.normal(size=7),
                            'we"ird %s name': rng.normal(size=7)})
CASES = [
    ("float ndarray, int predict", X_float, "predict", rng.integers(0, 2, 7), None, None),
    ("int ndarray, float predict", X_int, "predict", rng.normal(size=7), None, ["a", "b", "c"]),
    ("names from feature_names_in_", X_float, "predict_proba", P2, [0, 1], None),
    ("str classes proba", X_float, "predict_proba", P3, ["cat", "dog", "ému"], None),
    ("mixed dataframe", frame_mixed, "predict_proba", P2, [False, True], None),
    ("float dataframe, str predict", pd.DataFrame(X_float, columns=list("wxyz")), "predict",
     np.array(["no", "yes"] * 3 + ["no"]), None, None),
    ("nan features falls back", np.where(X_float > 500, np.nan, X_float), "predict", np.zeros(7), None, None),
    ("bad proba falls back", X_float, "predict_proba", P2 * 1.5, [0, 1], None),
]


@pytest.mark.parametrize("name,X,method,result,classes,names", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("caller_ids", [False, True])
def test_fast_and_generic_encoders_agree(mon, name, X, method, result, classes, names, caller_ids):
    est = _Est(classes, ["f%d" % i for i in range(X.shape[1])] if name.startswith("names") else None)
    ctx = _Ctx(est, names, {"batch": "b1"}, None, True)
    ids = ['id"%d' % i for i in range(7)] if caller_ids else mon._new_ids(7)
    fast, slow = _both(mon, (_CALL, ctx, method, X, result, time.time(), 1.25, ids))
    assert fast == slow
    from modelwatch import _rows

    took_fast = (_rows.fast_prediction_json(method, result, getattr(est, "classes_", None), 7) is not None
                 and _rows.fast_feature_json(X, names, 7) is not None)
    assert took_fast == (not name.endswith("falls back"))
    assert [e["request_id"] for e in fast] == list(ids)
    assert fast[0]["tags"] == {"region": "eu", "batch": "b1"} and fast[0]["model_version"] == "v7"


def test_clean_value():
    import datetime as dt
    from decimal import Decimal

    from modelwatch._rows import clean_value as c

    assert c(np.float32(1.5)) == 1.5 and type(c(np.int64(3))) is int and c(np.bool_(True)) is True
    assert c(np.nan) is None and c(float("inf")) is None and c(pd.NA) is None and c(pd.NaT) is None
    assert c(np.datetime64("2026-01-02T03:04:05")) == "2026-01-02T03:04:05Z"
    assert c(pd.Timestamp("2026-01-02 03:04:05", tz="Europe/Berlin")) == "2026-01-02T02:04:05Z"
    assert c(dt.date(2026, 1, 2)) == "2026-01-02"
    assert c(pd.Timedelta("1s")) == 1.0 and c(np.timedelta64(5, "s")) == 5.0
    assert c(Decimal("1.5")) == 1.5 and c(Decimal("NaN")) is None
    assert c(b"x") == "x" and c([1, 2]) == "[1, 2]"
