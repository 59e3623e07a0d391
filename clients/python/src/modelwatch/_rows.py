"""Turning what the hot path enqueued into contract rows (runs in the background thread only).

Nothing here is called from ``predict``: the wrapper only enqueues references to the input, the
result, a wall-clock timestamp, the latency and the request ids.  This module builds the per-row
``dict``s the server expects (see docs/api.md, "Ingest") and encodes them as NDJSON lines.

Value rules (what the server accepts as a feature value): numbers, strings, bools and null.
NaN and +-inf become null; numpy scalars become Python scalars; dates become RFC 3339 strings;
anything else becomes ``str(value)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from decimal import Decimal
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

_UTC = _dt.timezone.utc
_SCALARS = (str, bool, int)


_ts_cache = (-1, "")  # (second, formatted prefix); replaced whole, so safe across threads


def iso_timestamp(t: float) -> str:
    """Format a POSIX timestamp as RFC 3339 UTC with millisecond precision."""
    global _ts_cache
    sec = int(t // 1)
    ms = int((t - sec) * 1000)
    cache = _ts_cache
    if cache[0] != sec:
        cache = (sec, _dt.datetime.fromtimestamp(sec, _UTC).strftime("%Y-%m-%dT%H:%M:%S."))
        _ts_cache = cache
    return cache[1] + "%03dZ" % ms


def is_scalar_time(t: Any) -> bool:
    """One time for every row of a call (not a sequence of per-row times)."""
    return isinstance(t, (str, bytes, int, float)) or hasattr(t, "timestamp") or not hasattr(t, "__len__")


def time_text(t: Any) -> str:
    """A call's timestamp as RFC 3339: POSIX seconds, a datetime (naive = UTC), or a string."""
    if isinstance(t, str):
        return t
    if isinstance(t, bytes):
        return t.decode()
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return iso_timestamp(float(t))
    if hasattr(t, "timestamp"):
        if getattr(t, "tzinfo", None) is None and isinstance(t, _dt.datetime):
            t = t.replace(tzinfo=_UTC)
        return iso_timestamp(t.timestamp())
    if type(t).__name__ == "datetime64":  # numpy, without importing it
        return iso_timestamp(int(t.astype("datetime64[us]").astype("int64")) / 1e6)
    raise ValueError("timestamp %r is not a datetime, a POSIX time or an RFC 3339 string" % (t,))


def call_times(t: Any, n: int) -> Union[str, List[str]]:
    """The timestamp(s) of a logged call: one string for all rows, or one per row."""
    if is_scalar_time(t):
        return time_text(t)
    if _is_ndarray(t) and t.dtype.kind == "M":  # numpy datetimes: tolist() gives datetimes at us
        t = t.astype("datetime64[us]")
    values = t.tolist() if hasattr(t, "tolist") else list(t)
    return [time_text(v) for v in values]


def clean_value(v: Any) -> Any:
    """Coerce one value to a JSON scalar the server accepts (NaN/inf -> None)."""
    if v is None or isinstance(v, _SCALARS):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    # numpy scalars (np.float64 is a float subclass and was handled above)
    item = getattr(v, "item", None)
    if item is not None and getattr(v, "ndim", None) == 0:
        try:
            py = item()
        except Exception:  # pragma: no cover - exotic scalar types
            py = None
        if py is not v and not (hasattr(py, "item") and getattr(py, "ndim", None) == 0):
            if isinstance(py, int) and not isinstance(py, bool) and type(v).__name__.startswith("datetime64"):
                # datetime64 with ns resolution -> int; convert to a timestamp string
                return iso_timestamp(py / 1e9)
            return clean_value(py)
    if isinstance(v, _dt.timedelta):  # incl. pandas Timedelta: seconds, a number
        try:
            f = v.total_seconds()
        except (ValueError, OverflowError):
            return None
        return f if f == f else None  # NaT-like timedeltas are NaN
    if isinstance(v, _dt.datetime):
        if v != v:  # pandas NaT is a datetime subclass
            return None
        if v.tzinfo is None:
            return v.isoformat() + "Z"
        return v.astimezone(_UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    # pandas NA / NaT and other "missing" markers compare unequal to themselves or raise
    try:
        if v != v:  # noqa: PLR0124 - NaN-like check
            return None
    except Exception:
        return None
    iso = getattr(v, "isoformat", None)  # pandas Timestamp
    if iso is not None:
        try:
            return clean_value(v.to_pydatetime()) if hasattr(v, "to_pydatetime") else iso()
        except Exception:
            pass
    return str(v)


def _clean_list(values: List[Any]) -> List[Any]:
    """Clean a list produced by ``ndarray.tolist()``/``Series.tolist()``; fast when already clean."""
    for v in values:
        if v is None or type(v) in (str, bool, int):
            continue
        if type(v) is float and (v - v) == 0.0:  # finite float
            continue
        return [clean_value(x) for x in values]
    return values


def is_dataframe(x: Any) -> bool:
    t = type(x)
    return t.__module__.startswith("pandas") and hasattr(x, "columns") and hasattr(x, "iloc")


def _is_ndarray(x: Any) -> bool:
    return type(x).__module__ == "numpy" and type(x).__name__ == "ndarray"


def _is_sparse(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("scipy.sparse") or hasattr(x, "tocsr")


def _tolist(x: Any) -> List[Any]:
    if hasattr(x, "tolist"):
        return x.tolist()
    return list(x)


_DEFAULT_NAMES: Dict[int, List[str]] = {}


def default_feature_names(n: int) -> List[str]:
    """``x0 .. x{n-1}`` (as scikit-learn names array columns); cached, do not mutate."""
    names = _DEFAULT_NAMES.get(n)
    if names is None:
        names = ["x%d" % i for i in range(n)]
        if n <= 100_000:
            _DEFAULT_NAMES[n] = names
    return names


def feature_rows(X: Any, names: Optional[Sequence[str]], n: int) -> List[Dict[str, Any]]:
    """One feature dict per row of ``X`` (DataFrame, 2-D/1-D array, list of rows/dicts, sparse)."""
    if X is None or n == 0:
        return [{} for _ in range(n)]
    if is_dataframe(X):
        cols = [str(c) for c in X.columns]
        columns = [_clean_list(X.iloc[:, j].tolist()) for j in range(len(cols))]
        return [dict(zip(cols, vals)) for vals in zip(*columns)] if cols else [{} for _ in range(n)]
    if _is_sparse(X) and not _is_ndarray(X):
        # Sparse inputs (text pipelines, one-hot matrices) are not logged feature by feature.
        return [{} for _ in range(n)]
    if _is_ndarray(X):
        if X.ndim == 1:
            return [{"x0": v} for v in _clean_list(X.tolist())]
        if X.ndim != 2:
            return [{} for _ in range(n)]
        d = X.shape[1]
        cols = list(names) if names is not None and len(names) == d else default_feature_names(d)
        rows = X.tolist()
        out = []
        for r in rows:
            out.append(dict(zip(cols, _clean_list(r))))
        return out
    # Python sequences
    rows_list = list(X)
    if rows_list and isinstance(rows_list[0], Mapping):
        return [{str(k): clean_value(v) for k, v in r.items()} for r in rows_list]
    if rows_list and isinstance(rows_list[0], (list, tuple)) or (
        rows_list and _is_ndarray(rows_list[0])
    ):
        d = len(rows_list[0])
        cols = list(names) if names is not None and len(names) == d else default_feature_names(d)
        return [dict(zip(cols, _clean_list(_tolist(r)))) for r in rows_list]
    return [{"x0": clean_value(v)} for v in rows_list]


def _classes_list(classes: Any, k: int) -> List[Any]:
    if classes is None:
        return list(range(k))
    lst = _tolist(classes)
    if len(lst) != k:
        return list(range(k))
    return [clean_value(c) for c in lst]


def predictions_from_result(method: str, result: Any, classes: Any) -> Optional[Dict[str, List[Any]]]:
    """Per-row ``prediction`` (and ``score``/``scores``) from one estimator call's result.

    Returns ``None`` for results that cannot be logged (multi-output, ragged).
    - ``predict``: the returned labels/values.
    - ``predict_proba``: prediction = class with the highest probability (``classes_[argmax]``),
      ``scores`` = {str(class): probability}, ``score`` = probability of ``classes_[1]`` for binary.
    - ``decision_function``: prediction derived as scikit-learn does (sign for binary, argmax
      otherwise); the raw decision values are not logged (they are not probabilities).
    """
    if isinstance(result, tuple):  # e.g. predict(X, return_std=True)
        result = result[0]
    if isinstance(result, list) and result and _is_ndarray(result[0]):
        return None  # multi-output predict_proba: list of arrays
    if method == "predict":
        arr = result
        if _is_ndarray(arr):
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr.ravel()
            if arr.ndim != 1:
                return None
        vals = _clean_list(_tolist(arr))
        if vals and isinstance(vals[0], list):
            return None
        return {"prediction": vals}
    rows = _tolist(result)
    if not rows:
        return {"prediction": []}
    if method == "decision_function":
        if not isinstance(rows[0], list):
            cls = _classes_list(classes, 2)
            return {"prediction": [cls[1] if (v is not None and v > 0) else cls[0] for v in rows]}
        k = len(rows[0])
        cls = _classes_list(classes, k)
        return {"prediction": [cls[max(range(k), key=r.__getitem__)] for r in rows]}
    if method == "predict_proba":
        if not isinstance(rows[0], list):
            return None
        k = len(rows[0])
        cls = _classes_list(classes, k)
        keys = [str(c) for c in cls]
        preds: List[Any] = []
        score: List[Any] = []
        scores: List[Any] = []
        for r in rows:
            ok = len(r) == k and all(isinstance(p, (int, float)) and math.isfinite(p) for p in r)
            if not ok:
                preds.append(None)
                score.append(None)
                scores.append(None)
                continue
            j = max(range(k), key=r.__getitem__)
            preds.append(cls[j])
            total = sum(r)
            if abs(total - 1.0) <= 0.01 and all(0.0 <= p <= 1.0 for p in r):
                scores.append(dict(zip(keys, (float(p) for p in r))))
                score.append(float(r[1]) if k == 2 else None)
            else:
                scores.append(None)
                score.append(None)
        return {"prediction": preds, "score": score, "scores": scores}
    return None


def build_prediction_rows(
    ids: Sequence[str],
    features: List[Dict[str, Any]],
    preds: Dict[str, List[Any]],
    timestamp: str,
    version: Optional[str],
    latency_ms: Optional[float],
    tags: Optional[Dict[str, Any]],
) -> List[Dict[str, Any]]:
    prediction = preds["prediction"]
    score = preds.get("score")
    scores = preds.get("scores")
    out = []
    for i, rid in enumerate(ids):
        row: Dict[str, Any] = {"request_id": rid, "timestamp": timestamp}
        if version is not None:
            row["model_version"] = version
        row["features"] = features[i]
        row["prediction"] = prediction[i]
        if score is not None and score[i] is not None:
            row["score"] = score[i]
        if scores is not None and scores[i] is not None:
            row["scores"] = scores[i]
        if latency_ms is not None:
            row["latency_ms"] = latency_ms
        if tags:
            row["tags"] = tags
        out.append(row)
    return out


def _col(frame_cols: Mapping[str, List[Any]], name: Optional[str]) -> Optional[List[Any]]:
    if name is None:
        return None
    return frame_cols.get(name)


def table_columns(data: Any) -> "tuple[List[str], Dict[str, List[Any]], int]":
    """Column-oriented view of a DataFrame or a list of flat dicts: (names, name->values, n)."""
    if is_dataframe(data):
        names = [str(c) for c in data.columns]
        cols = {names[j]: data.iloc[:, j].tolist() for j in range(len(names))}
        return names, cols, len(data)
    records = list(data)
    names = []
    seen = set()
    for r in records:
        for k in r:
            if k not in seen:
                seen.add(k)
                names.append(str(k))
    cols = {k: [r.get(k) for r in records] for k in names}
    return names, cols, len(records)


def prediction_rows_from_table(
    data: Any,
    ids: Optional[Sequence[str]],
    *,
    default_timestamp: str,
    version: Optional[str],
    tags: Optional[Dict[str, Any]],
    request_id_column: str,
    prediction_column: str,
    score_column: Optional[str],
    scores_columns: Optional[Mapping[str, Any]],
    timestamp_column: Optional[str],
    feature_columns: Optional[Sequence[str]],
    tag_columns: Optional[Sequence[str]],
) -> List[Dict[str, Any]]:
    """Rows from a DataFrame / flat records, or from records already in the contract shape."""
    if not is_dataframe(data):
        records = list(data)
        if records and isinstance(records[0], Mapping) and "features" in records[0]:
            out = []
            for i, r in enumerate(records):
                row: Dict[str, Any] = dict(r)
                row["request_id"] = str(row.get("request_id") or (ids[i] if ids is not None else ""))
                row.setdefault("timestamp", default_timestamp)
                if version is not None:
                    row.setdefault("model_version", version)
                row["features"] = {str(k): clean_value(v) for k, v in (row.get("features") or {}).items()}
                row["prediction"] = clean_value(row.get("prediction"))
                if tags:
                    row["tags"] = {**tags, **(row.get("tags") or {})}
                out.append(_clean_row(row))
            return out
        data = records
    names, cols, n = table_columns(data)
    if prediction_column not in cols:
        raise ValueError("no %r column in the predictions table" % prediction_column)
    special = {request_id_column, prediction_column, "model_version", "latency_ms"}
    for c in (score_column, timestamp_column):
        if c:
            special.add(c)
    if scores_columns:
        special.update(scores_columns)
    if tag_columns:
        special.update(tag_columns)
    feats = list(feature_columns) if feature_columns is not None else [c for c in names if c not in special]
    fcols = [_clean_list(cols[c]) for c in feats]
    rid_col = cols.get(request_id_column)
    pred_col = _clean_list(cols[prediction_column])
    score_col = _clean_list(cols[score_column]) if score_column and score_column in cols else None
    ts_col = cols.get(timestamp_column) if timestamp_column else None
    ver_col = cols.get("model_version")
    lat_col = _clean_list(cols["latency_ms"]) if "latency_ms" in cols else None
    out = []
    for i in range(n):
        rid = rid_col[i] if rid_col is not None and rid_col[i] is not None else (ids[i] if ids is not None else None)
        row = {"request_id": str(clean_value(rid))}
        ts = clean_value(ts_col[i]) if ts_col is not None else None
        row["timestamp"] = ts if ts is not None else default_timestamp
        ver = clean_value(ver_col[i]) if ver_col is not None else None
        if ver is not None or version is not None:
            row["model_version"] = str(ver if ver is not None else version)
        row["features"] = {feats[j]: fcols[j][i] for j in range(len(feats))}
        row["prediction"] = pred_col[i]
        if score_col is not None and score_col[i] is not None:
            row["score"] = score_col[i]
        if scores_columns:
            sc = {str(cls): clean_value(cols[c][i]) for c, cls in scores_columns.items() if c in cols}
            if sc and all(isinstance(p, (int, float)) for p in sc.values()):
                row["scores"] = sc
        if lat_col is not None and lat_col[i] is not None:
            row["latency_ms"] = lat_col[i]
        t = dict(tags) if tags else {}
        if tag_columns:
            for c in tag_columns:
                if c in cols:
                    t[c] = clean_value(cols[c][i])
        if t:
            row["tags"] = t
        out.append(row)
    return out


def label_rows_from_table(
    data: Any,
    *,
    default_timestamp: str,
    request_id_column: str,
    label_column: str,
    timestamp_column: Optional[str],
) -> List[Dict[str, Any]]:
    names, cols, n = table_columns(data)
    if request_id_column not in cols or label_column not in cols:
        raise ValueError("labels need %r and %r columns" % (request_id_column, label_column))
    rids = cols[request_id_column]
    labels = _clean_list(cols[label_column])
    ts_col = cols.get(timestamp_column) if timestamp_column else None
    out = []
    for i in range(n):
        ts = clean_value(ts_col[i]) if ts_col is not None else None
        out.append({"request_id": str(clean_value(rids[i])), "label": labels[i],
                    "timestamp": ts if ts is not None else default_timestamp})
    return out


def _clean_row(row: Dict[str, Any]) -> Dict[str, Any]:
    for k in ("score", "latency_ms"):
        if k in row:
            row[k] = clean_value(row[k])
            if row[k] is None:
                del row[k]
    if isinstance(row.get("scores"), Mapping):
        row["scores"] = {str(c): clean_value(p) for c, p in row["scores"].items()}
    return row


_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=clean_value).encode


def encode_lines(rows: Iterable[Dict[str, Any]]) -> Iterator[bytes]:
    """NDJSON-encode rows; a row that still cannot be encoded is deep-cleaned once."""
    for row in rows:
        try:
            s = _dumps(row)
        except ValueError:
            s = _dumps(_deep_clean(row))
        yield s.encode("utf-8") + b"\n"


def _deep_clean(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _deep_clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_deep_clean(x) for x in v]
    return clean_value(v)


# -- fast path ------------------------------------------------------------------------------------
# For the common case (numeric features, numeric/str predictions, well-formed probabilities) the
# NDJSON lines are formatted directly, skipping per-row dicts and the generic JSON encoder: a
# cached ``%r`` template per feature schema turns a row of ``tolist()`` floats into its JSON object
# in one C-level formatting call.  ``repr`` of a finite Python float/int is valid JSON and is
# exactly what ``json.dumps`` writes.  Anything else (strings, bools, NaN/inf, odd shapes) returns
# None and the generic path is used; tests check both paths produce the same events.

_TEMPLATES: Dict[tuple, str] = {}


def _template(names: Sequence[str]) -> str:
    key = tuple(names)
    t = _TEMPLATES.get(key)
    if t is None:
        t = "{" + ",".join("%s:%%r" % json.dumps(str(n)).replace("%", "%%") for n in names) + "}"
        if len(_TEMPLATES) > 1000:
            _TEMPLATES.clear()
        _TEMPLATES[key] = t
    return t


def _numeric_finite_json(values: List[Any]) -> Optional[List[str]]:
    for v in values:
        t = type(v)
        if t is int or (t is float and (v - v) == 0.0):
            continue
        return None
    return list(map(repr, values))


def _all_finite(rows: List[List[Any]]) -> bool:
    """True when every number in the rows is finite (a row's sum is NaN/inf otherwise; an overflow
    to inf only sends the rows down the generic path, which is also correct)."""
    for r in rows:
        t = sum(r)
        if t - t != 0.0:
            return False
    return True


def fast_feature_json(X: Any, names: Optional[Sequence[str]], n: int) -> Optional[List[str]]:
    """Per-row JSON feature objects for numeric, finite 2-D inputs; None when not applicable."""
    if _is_ndarray(X):
        if X.ndim != 2 or X.dtype.kind not in "fiu" or X.shape[0] != n:
            return None
        rows = X.tolist()
        if X.dtype.kind == "f" and not _all_finite(rows):
            return None
        d = X.shape[1]
        cols = names if names is not None and len(names) == d else default_feature_names(d)
    elif is_dataframe(X):
        kinds = {getattr(dt, "kind", "O") for dt in X.dtypes}
        if not kinds or not kinds <= {"f", "i", "u"} or len(X) != n:
            return None
        cols = [str(c) for c in X.columns]
        if len(set(cols)) != len(cols):
            return None
        rows = (X.to_numpy() if len(kinds) == 1 else X.to_numpy(dtype=object)).tolist()
        if "f" in kinds and not _all_finite(rows):
            return None
    else:
        return None
    tmpl = _template(cols)
    return [tmpl % tuple(r) for r in rows]


_CLASS_JSON: Dict[tuple, "tuple[List[str], str]"] = {}


def _class_json(cls: List[Any]) -> Optional["tuple[List[str], str]"]:
    key = tuple((type(c), c) for c in cls)
    got = _CLASS_JSON.get(key)
    if got is None:
        keys = [str(c) for c in cls]
        if len(set(keys)) != len(keys):
            return None
        got = ([json.dumps(c) for c in cls], _template(keys))
        if len(_CLASS_JSON) > 1000:
            _CLASS_JSON.clear()
        _CLASS_JSON[key] = got
    return got


def fast_prediction_json(method: str, result: Any, classes: Any, n: int
                         ) -> Optional["tuple[List[str], Optional[List[str]], Optional[List[str]]]"]:
    """(prediction, score, scores) JSON per row, or None when the generic path must be used."""
    if not _is_ndarray(result) or result.shape[0] != n:
        return None
    if method == "predict":
        if result.ndim == 2 and result.shape[1] == 1:
            result = result.ravel()
        if result.ndim != 1:
            return None
        kind = result.dtype.kind
        vals = result.tolist()
        if kind in "fiu":
            pj = _numeric_finite_json(vals)
        elif kind in "UO":
            if not all(type(v) is str for v in vals):
                return None
            pj = [json.dumps(v) for v in vals]
        else:
            return None
        return (pj, None, None) if pj is not None else None
    if method == "predict_proba":
        if result.ndim != 2 or result.dtype.kind != "f" or result.shape[1] < 1:
            return None
        k = result.shape[1]
        rows = result.tolist()
        for r in rows:
            t = sum(r)
            if not (abs(t - 1.0) <= 0.01 and min(r) >= 0.0 and max(r) <= 1.0):
                return None  # also catches NaN (comparisons are False)
        cj = _class_json(_classes_list(classes, k))
        if cj is None:
            return None
        cls_json, tmpl = cj
        pj = [cls_json[r.index(max(r))] for r in rows]
        scores = [tmpl % tuple(r) for r in rows]
        score = [repr(r[1]) for r in rows] if k == 2 else None
        return pj, score, scores
    return None


def encode_call_fast(
    ids: Sequence[str],
    feats: List[str],
    preds: "tuple[List[str], Optional[List[str]], Optional[List[str]]]",
    timestamp: str,
    version: Optional[str],
    latency_ms: Optional[float],
    tags: Optional[Dict[str, Any]],
) -> List[bytes]:
    """NDJSON lines with the same keys, order and values as ``build_prediction_rows`` + encoding."""
    head = ',"timestamp":' + json.dumps(timestamp)
    if version is not None:
        head += ',"model_version":' + json.dumps(version)
    head += ',"features":'
    tail = ""
    if latency_ms is not None and math.isfinite(latency_ms):
        tail += ',"latency_ms":' + repr(float(latency_ms))
    if tags:
        tail += ',"tags":' + _dumps(_deep_clean(tags))
    tail += "}\n"
    pj, sj, ssj = preds
    prefix = getattr(ids, "prefix", None)
    if prefix is not None:
        p = '{"request_id":' + json.dumps(prefix + "-")[:-1]
        rid = [p + '%d"' % i for i in range(len(ids))]
    else:
        rid = ['{"request_id":' + json.dumps(r) for r in ids]
    if ssj is None:
        out = [(rid[i] + head + feats[i] + ',"prediction":' + pj[i] + tail).encode() for i in range(len(rid))]
    elif sj is None:
        out = [(rid[i] + head + feats[i] + ',"prediction":' + pj[i] + ',"scores":' + ssj[i] + tail).encode()
               for i in range(len(rid))]
    else:
        out = [(rid[i] + head + feats[i] + ',"prediction":' + pj[i] + ',"score":' + sj[i]
                + ',"scores":' + ssj[i] + tail).encode() for i in range(len(rid))]
    return out
