"""``MonitoredEstimator``: a scikit-learn estimator or Pipeline that logs what it predicts.

    wrapped = monitor.wrap(model)
    y = wrapped.predict(X)                 # exactly what model.predict(X) returns
    ids = wrapped.last_request_ids         # request id per row of that call (this thread)
    y, ids = wrapped.predict(X, return_request_ids=True)
    y = wrapped.predict(X, request_ids=df["order_id"])   # use your own ids
    y = wrapped.predict(X, timestamp=df["event_time"])   # replaying history: when each row happened

Request ids
-----------
Every logged call gets one request id per row; join labels later with
``monitor.log_labels(ids, y_true)``.  Generated ids are ``"<12 hex random>-<call seq hex>-<row>"``
(unique per process start; a ``RequestIds`` sequence built lazily, so generating them costs
nothing per row).  Use your own ids with ``request_ids=...`` on the call, or
``wrap(..., request_ids_from_index=True)`` to take them from a DataFrame's index.

What is logged per row: the input features (DataFrame columns, or ``feature_names``, or the
estimator's ``feature_names_in_``, else ``x0..xN``), the prediction, for ``predict_proba`` the class
probabilities (``scores``) and the positive-class probability (``score``, binary only) with the
prediction taken as the most probable class, the latency of the whole call (``latency_ms``), the
call's wall-clock time, the version and tags.  ``predict``, ``predict_proba`` and
``decision_function`` are logged (choose with ``log_methods``); each logged call logs its rows, so if
you call both ``predict`` and ``predict_proba`` on the same rows, log only one of them
(``log_methods=("predict_proba",)``) or pass the same ``request_ids`` to both (the server keeps the
first and counts the second as duplicates).  ``score``, ``transform``, ``fit`` etc. are passed
through without logging.

The hot path only records references: the input and result arrays are copied when they are numpy
arrays (cheap, and protects the log against in-place edits; ``copy_inputs=False`` to skip it);
DataFrames are referenced (pandas >= 3 copy-on-write makes that safe; with older pandas do not
mutate a frame in place after predicting on it).  Logging never raises into the call: the
estimator's own exceptions propagate unchanged, and a logging problem is logged and ignored.

Timestamps: each row is logged at the call's wall-clock time, or at ``timestamp=`` given to the
call: one time for every row, or one per row (a list, array or Series as long as ``X``), each a
``datetime`` (naive ones are UTC), a POSIX time in seconds or an RFC 3339 string.  This is how
history is replayed: events land in the windows of when they happened, not of when they were sent.

A call that raises is logged too: one event per input row with the features, no prediction and
``error`` = ``"<ExceptionType>: <message>"``, so the error rate counts it; then the exception is
re-raised unchanged.

Behaves like the wrapped object: any attribute (``classes_``, ``named_steps``, ``coef_`` ...) is
read from and written to it, ``hasattr(wrapped, "predict_proba")`` answers as the estimator does,
``get_params``/``set_params``/``fit`` work (``fit`` returns the wrapper), ``len()`` and indexing work
for a Pipeline, ``sklearn.base.clone`` returns a wrapped clone, and it pickles: the pickle holds
the estimator and the monitor's configuration (not the api key, taken from ``$MODELWATCH_API_KEY``
on load); after unpickling, one monitor per configuration is created lazily on the first logged call.
``isinstance(wrapped, Pipeline)`` is False: use ``wrapped.unwrap()`` to get the bare estimator.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from . import _rows
from .monitor import _CALL, _FAILED, Monitor, RequestIds, _Ctx, _RateLimitedLog, shared_monitor

log = logging.getLogger("modelwatch")
_time = time.time
_perf = time.perf_counter
_rl = _RateLimitedLog()
# An exception's text is logged up to this length (a traceback-sized message is not a label).
_MAX_ERROR_CHARS = 2000

try:  # numpy is optional for the package, always there with scikit-learn
    import numpy as _np

    _ndarray: Any = _np.ndarray
except ImportError:  # pragma: no cover
    _ndarray = None


class _Logged:
    """A method of the wrapped estimator that is logged; absent when the estimator lacks it."""

    def __init__(self, name: str):
        self.name = name
        self.__doc__ = "The estimator's ``%s``, logged to modelwatch. Extra keyword arguments: " \
                       "``request_ids=`` (your ids for the rows) and ``return_request_ids=True`` " \
                       "(return ``(result, ids)``)." % name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        fn = getattr(d["_mw_estimator"], self.name)  # AttributeError -> hasattr() is False
        if self.name not in d["_mw_methods"]:
            return fn
        return functools.partial(obj._mw_call, self.name, fn)


class _Fluent:
    """A method that returns the estimator itself (fit, set_params): return the wrapper instead."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        fn = getattr(obj.__dict__["_mw_estimator"], self.name)

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            out = fn(*args, **kwargs)
            return obj if out is obj.__dict__["_mw_estimator"] else out

        return call


class MonitoredEstimator:
    """A fitted estimator or Pipeline whose predictions are logged to modelwatch (see module doc)."""

    predict = _Logged("predict")
    predict_proba = _Logged("predict_proba")
    decision_function = _Logged("decision_function")
    fit = _Fluent("fit")
    partial_fit = _Fluent("partial_fit")
    set_params = _Fluent("set_params")

    def __init__(
        self,
        estimator: Any,
        monitor: Optional[Monitor],
        *,
        feature_names: Optional[Sequence[str]] = None,
        tags: Optional[Mapping[str, Any]] = None,
        version: Optional[str] = None,
        log_methods: Iterable[str] = ("predict", "predict_proba", "decision_function"),
        log_features: bool = True,
        request_ids_from_index: bool = False,
        copy_inputs: bool = True,
    ) -> None:
        d = self.__dict__
        d["_mw_estimator"] = estimator
        d["_mw_monitor"] = monitor
        d["_mw_config"] = monitor._config() if monitor is not None else None
        d["_mw_ctx"] = _Ctx(estimator, feature_names, dict(tags) if tags else None,
                            None if version is None else str(version), log_features)
        d["_mw_methods"] = frozenset(log_methods)
        d["_mw_from_index"] = bool(request_ids_from_index)
        d["_mw_copy"] = bool(copy_inputs) and _ndarray is not None
        d["_mw_local"] = threading.local()

    # -- the hot path ---------------------------------------------------------------------------
    def _mw_call(self, method: str, fn: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
        request_ids = kwargs.pop("request_ids", None)
        want_ids = kwargs.pop("return_request_ids", False)
        timestamp = kwargs.pop("timestamp", None)
        ts = _time() if timestamp is None else timestamp
        t0 = _perf()
        try:
            result = fn(X, *args, **kwargs)
        except Exception as exc:
            # The failure is an event too (an `error` row per input row, no prediction); the
            # caller gets the estimator's exception unchanged.
            latency_ms = (_perf() - t0) * 1000.0
            ids = None
            try:
                ids = self._mw_record(method, X, exc, ts, latency_ms, request_ids, failed=True)
            except Exception as e:
                _rl(logging.WARNING, "record", "modelwatch: could not log a failed %s call: %r", method, e)
            self.__dict__["_mw_local"].ids = ids
            raise
        latency_ms = (_perf() - t0) * 1000.0
        ids = None
        try:
            ids = self._mw_record(method, X, result, ts, latency_ms, request_ids)
        except Exception as e:  # logging must never break predict
            _rl(logging.WARNING, "record", "modelwatch: could not log a %s call: %r", method, e)
        self.__dict__["_mw_local"].ids = ids
        return (result, ids) if want_ids else result

    def _mw_record(self, method: str, X: Any, result: Any, ts: Any, latency_ms: float,
                   request_ids: Any, failed: bool = False) -> Optional[Sequence[str]]:
        d = self.__dict__
        mon = d["_mw_monitor"]
        if mon is None:
            mon = self._mw_resolve_monitor()
            if mon is None:
                return None
        try:
            n = X.shape[0]
        except AttributeError:
            try:
                n = len(X)
            except TypeError:
                if not failed:
                    raise
                n = 1  # an input without rows (the likely cause of the failure): one event
        if not _rows.is_scalar_time(ts) and len(ts) != n:
            _rl(logging.WARNING, "timestamps", "modelwatch: %d timestamps for %d rows; logging "
                "the call's time instead", len(ts), n)
            ts = _time()
        ids: Sequence[str]
        if request_ids is not None:
            ids = [str(r) for r in request_ids]
            if len(ids) != n:
                _rl(logging.WARNING, "ids", "modelwatch: %d request_ids for %d rows; generating ids",
                    len(ids), n)
                ids = mon._new_ids(n)
        elif d["_mw_from_index"] and _rows.is_dataframe(X):
            ids = [str(i) for i in X.index]
        else:
            ids = mon._new_ids(n)
        if d["_mw_copy"] and type(X) is _ndarray:
            X = X.copy()
        if failed:
            error = ("%s: %s" % (type(result).__name__, result))[:_MAX_ERROR_CHARS]
            mon._enqueue((_FAILED, d["_mw_ctx"], method, X, error, ts, latency_ms, ids), n)
            return ids
        if d["_mw_copy"] and type(result) is _ndarray:
            result = result.copy()
        mon._enqueue((_CALL, d["_mw_ctx"], method, X, result, ts, latency_ms, ids), n)
        return ids

    def _mw_resolve_monitor(self) -> Optional[Monitor]:
        d = self.__dict__
        cfg = d.get("_mw_config")
        if cfg is None:
            return None
        mon = shared_monitor(cfg)
        d["_mw_monitor"] = mon
        return mon

    # -- modelwatch-specific API ----------------------------------------------------------------
    @property
    def last_request_ids(self) -> Optional[Sequence[str]]:
        """Request ids of the rows of this thread's last logged call (None before any)."""
        return getattr(self.__dict__["_mw_local"], "ids", None)

    @property
    def modelwatch_monitor(self) -> Optional[Monitor]:
        """The ``Monitor`` this estimator logs to."""
        d = self.__dict__
        return d["_mw_monitor"] or self._mw_resolve_monitor()

    def unwrap(self) -> Any:
        """The bare wrapped estimator."""
        return self.__dict__["_mw_estimator"]

    # -- behave like the estimator --------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        est = self.__dict__.get("_mw_estimator")
        if est is None:  # during unpickling, before __setstate__
            raise AttributeError(name)
        return getattr(est, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_mw_"):
            self.__dict__[name] = value
        else:
            setattr(self.__dict__["_mw_estimator"], name, value)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_mw_"):
            del self.__dict__[name]
        else:
            delattr(self.__dict__["_mw_estimator"], name)

    def __dir__(self) -> Iterable[str]:
        return sorted(set(dir(type(self))) | set(dir(self.__dict__["_mw_estimator"])))

    def __repr__(self) -> str:
        return repr(self.__dict__["_mw_estimator"])

    def __len__(self) -> int:
        return len(self.__dict__["_mw_estimator"])

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, key: Any) -> Any:
        return self.__dict__["_mw_estimator"][key]

    def __sklearn_is_fitted__(self) -> bool:
        est = self.__dict__["_mw_estimator"]
        f = getattr(est, "__sklearn_is_fitted__", None)
        if f is not None:
            return bool(f())
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(est)
            return True
        except NotFittedError:
            return False

    def __sklearn_clone__(self) -> "MonitoredEstimator":
        from sklearn.base import clone

        d = self.__dict__
        new = MonitoredEstimator.__new__(MonitoredEstimator)
        new.__setstate__(self.__getstate__())
        new.__dict__["_mw_estimator"] = clone(d["_mw_estimator"])
        ctx = new.__dict__["_mw_ctx"]
        new.__dict__["_mw_ctx"] = _Ctx(new.__dict__["_mw_estimator"], ctx.feature_names, ctx.tags,
                                       ctx.version, ctx.log_features)
        new.__dict__["_mw_monitor"] = d["_mw_monitor"]
        return new

    def __getstate__(self) -> Dict[str, Any]:
        d = self.__dict__
        ctx = d["_mw_ctx"]
        return {
            "estimator": d["_mw_estimator"],
            "monitor_config": d["_mw_config"],
            "feature_names": ctx.feature_names,
            "tags": ctx.tags,
            "version": ctx.version,
            "log_features": ctx.log_features,
            "log_methods": sorted(d["_mw_methods"]),
            "request_ids_from_index": d["_mw_from_index"],
            "copy_inputs": d["_mw_copy"],
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        d = self.__dict__
        d["_mw_estimator"] = state["estimator"]
        d["_mw_monitor"] = None  # created lazily from the configuration on first use
        d["_mw_config"] = state["monitor_config"]
        d["_mw_ctx"] = _Ctx(state["estimator"], state["feature_names"], state["tags"],
                            state["version"], state["log_features"])
        d["_mw_methods"] = frozenset(state["log_methods"])
        d["_mw_from_index"] = state["request_ids_from_index"]
        d["_mw_copy"] = state["copy_inputs"] and _ndarray is not None
        d["_mw_local"] = threading.local()


__all__ = ["MonitoredEstimator", "RequestIds"]
