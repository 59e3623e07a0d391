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

Shadow challengers: ``monitor.wrap(champion, version="v1", shadow=[("v2", challenger)])`` also
scores every logged call's rows with each challenger, on one background thread, and logs the
results as shadow predictions (``"role": "shadow"``) of the challenger's version under the same
request ids, for ``GET /v1/models/{model}/compare``.  The champion's call returns what it
returned before, as soon as before: it only puts the call (its already-copied input and ids) in a
bounded queue, and a call that finds the queue full is not shadowed (``shadow_stats()``).  A
challenger that raises is logged as error rows of its version; nothing reaches the caller.
``flush_shadows()`` waits until the queued calls are scored (then ``monitor.flush()`` sends them).

Attributions: ``monitor.wrap(model, explain=True)`` logs each prediction's per-feature
attributions (``"explanations"``) computed by the ``shap`` package's ``shap.Explainer(model)``
(``explain_background=X_train`` for models it needs background rows for, as linear ones), or
``explain=f`` any callable returning them for a batch of rows (an array ``(rows, features)``, a
``shap.Explanation`` or a list of ``{feature: value}``).  They are computed on one background
thread: the call returns what it returned, as soon as before, and its rows reach the monitor's
queue once explained (a call that finds the explainer's queue of ``explain_queue`` calls full, or
that the explainer fails on, is logged without attributions: ``explain_stats()``).
``flush_explanations()`` waits for the queued calls.

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
import queue
import threading
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

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


def _shadow_list(shadow: Any) -> List[Tuple[str, Any]]:
    """``(version, estimator)`` pairs of ``wrap(shadow=...)``."""
    if shadow is None:
        return []
    if isinstance(shadow, Mapping):
        return [(str(v), est) for v, est in shadow.items()]
    out = []
    for i, item in enumerate(shadow):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append((item[0], item[1]))
        else:
            out.append(("shadow-%d" % (i + 1), item))
    return out


class _Shadows:
    """The challengers of one wrapped estimator and the thread that scores them."""

    def __init__(self, pairs: List[Tuple[str, Any]], champion_ctx: _Ctx, capacity: int):
        self.pairs = pairs
        self.ctxs = [_Ctx(est, champion_ctx.feature_names, champion_ctx.tags, version,
                          champion_ctx.log_features, role="shadow") for version, est in pairs]
        self.queue: "queue.Queue[Any]" = queue.Queue(maxsize=max(1, int(capacity)))
        self.capacity = max(1, int(capacity))
        self.lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None
        self.monitor: Optional[Monitor] = None
        self.scored = 0
        self.skipped = 0
        self.failed = 0

    def submit(self, mon: Monitor, method: str, X: Any, ts: Any, ids: Sequence[str]) -> None:
        """Queues one call for the challengers; never blocks."""
        self.monitor = mon
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(target=self._run, name="modelwatch-shadow",
                                                   daemon=True)
                    self.thread.start()
        try:
            self.queue.put_nowait((method, X, ts, ids))
        except queue.Full:
            self.skipped += 1
            _rl(logging.WARNING, "shadow-full", "modelwatch: the shadow queue is full (%d calls); "
                "a call was not shadowed", self.capacity)

    def _run(self) -> None:
        while True:
            method, X, ts, ids = self.queue.get()
            try:
                self._score(method, X, ts, ids)
            except Exception as e:  # the thread must survive anything
                _rl(logging.WARNING, "shadow", "modelwatch: shadow scoring failed: %r", e)
            finally:
                self.queue.task_done()

    def _score(self, method: str, X: Any, ts: Any, ids: Sequence[str]) -> None:
        mon = self.monitor
        if mon is None:
            return
        n = len(ids)
        for ctx in self.ctxs:
            fn = getattr(ctx.estimator, method, None)
            if fn is None:
                _rl(logging.WARNING, "shadow-method", "modelwatch: shadow %s has no %s; not "
                    "scored", ctx.version, method)
                continue
            t0 = _perf()
            try:
                result = fn(X)
            except Exception as exc:
                latency_ms = (_perf() - t0) * 1000.0
                error = ("%s: %s" % (type(exc).__name__, exc))[:_MAX_ERROR_CHARS]
                mon._enqueue((_FAILED, ctx, method, X, error, ts, latency_ms, ids), n)
                self.failed += 1
                continue
            latency_ms = (_perf() - t0) * 1000.0
            mon._enqueue((_CALL, ctx, method, X, result, ts, latency_ms, ids), n)
            self.scored += 1

    def join(self, timeout: Optional[float]) -> bool:
        """Waits until every queued call is scored; False on timeout."""
        end = None if timeout is None else _perf() + timeout
        while self.queue.unfinished_tasks:
            if end is not None and _perf() > end:
                return False
            time.sleep(0.005)
        return True


class _Explainer:
    """Per-feature attributions of a wrapped estimator's logged calls, computed on one background
    thread: a logged call's rows wait here (their prediction already computed and returned) and
    go to the monitor's queue with their attributions; when the queue is full, or the explainer
    fails, they go without. So ``predict`` never waits for the explainer, and no prediction is
    lost for it."""

    def __init__(self, explain: Any, background: Any, capacity: int):
        # True: the shap package's explainer, built on the thread at its first call.
        self.explain = explain
        self.background = background
        self.capacity = max(1, int(capacity))
        self.queue: "queue.Queue[Any]" = queue.Queue(maxsize=self.capacity)
        self.lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None
        self.fn: Any = None if explain is True else explain
        self.unavailable = False
        self.explained = 0
        self.failed = 0
        self.skipped = 0

    def submit(self, mon: Monitor, item: tuple, n: int) -> None:
        """Queues a logged call's item (``_CALL``, ...) for its attributions; never blocks."""
        if self.unavailable:
            mon._enqueue(item, n)
            return
        if self.thread is None or not self.thread.is_alive():
            with self.lock:
                if self.thread is None or not self.thread.is_alive():
                    self.thread = threading.Thread(target=self._run, name="modelwatch-explain",
                                                   daemon=True)
                    self.thread.start()
        try:
            self.queue.put_nowait((mon, item, n))
        except queue.Full:
            self.skipped += 1
            mon._enqueue(item, n)
            _rl(logging.WARNING, "explain-full", "modelwatch: the explainer's queue is full (%d "
                "calls); a call was logged without attributions", self.capacity)

    def _run(self) -> None:
        while True:
            mon, item, n = self.queue.get()
            explanations = None
            try:
                explanations = self._explain(item)
                if explanations is not None:
                    self.explained += 1
            except Exception as e:  # the thread and the prediction must survive anything
                self.failed += 1
                _rl(logging.WARNING, "explain", "modelwatch: computing attributions failed: %r", e)
            try:
                mon._enqueue(item if explanations is None else item + (explanations,), n)
            finally:
                self.queue.task_done()

    def _function(self, estimator: Any) -> Any:
        if self.fn is not None or self.unavailable:
            return self.fn
        try:
            import shap  # type: ignore
        except ImportError:
            self.unavailable = True
            _rl(logging.WARNING, "explain-shap", "modelwatch: explain=True needs the shap package "
                "(pip install shap); predictions are logged without attributions")
            return None
        if self.background is not None:
            self.fn = shap.Explainer(estimator, self.background)
        else:
            self.fn = shap.Explainer(estimator)
        return self.fn

    def _explain(self, item: tuple) -> Optional[List[Optional[Dict[str, float]]]]:
        _, ctx, method, X, result, _ts, _latency, ids = item
        fn = self._function(ctx.estimator)
        if fn is None:
            return None
        return explanation_rows(fn(X), X, ctx, method, result, len(ids))

    def join(self, timeout: Optional[float]) -> bool:
        end = None if timeout is None else _perf() + timeout
        while self.queue.unfinished_tasks:
            if end is not None and _perf() > end:
                return False
            time.sleep(0.005)
        return True


def explanation_rows(out: Any, X: Any, ctx: Any, method: str, result: Any,
                     n: int) -> Optional[List[Optional[Dict[str, float]]]]:
    """One ``{feature: attribution}`` per row from what an explainer returned: a list of dicts,
    an array ``(rows, features)`` or a ``shap.Explanation`` (its ``.values``; for a classifier's
    per-class values ``(rows, features, classes)``, the positive class of a binary one, else each
    row's predicted class). Features are named as the logged features are; values that are not
    finite numbers are left out (the server refuses them)."""
    if isinstance(out, list) and (not out or isinstance(out[0], Mapping)):
        if len(out) != n:
            raise ValueError("the explainer returned %d rows for %d" % (len(out), n))
        return [_finite({str(k): v for k, v in r.items()}) if r else None for r in out]
    if _np is None:
        raise ValueError("attributions as an array need numpy")
    names = getattr(out, "feature_names", None)
    values = _np.asarray(getattr(out, "values", out), dtype=float)
    if values.ndim == 3:
        k = values.shape[2]
        if k == 2:
            values = values[:, :, 1]
        else:
            # Each row's predicted class: the most probable one, or the predicted label's index.
            r = _np.asarray(result)
            if r.ndim == 2 and r.shape[1] == k:
                idx = r.argmax(axis=1)
            else:
                classes = list(getattr(ctx.estimator, "classes_", []))
                idx = _np.array([classes.index(c) for c in r.tolist()])
            values = values[_np.arange(values.shape[0]), :, idx]
    if values.ndim != 2 or values.shape[0] != n:
        raise ValueError("the explainer returned values of shape %s for %d rows" % (values.shape, n))
    d = values.shape[1]
    if names is None or len(names) != d:
        if _rows.is_dataframe(X):
            names = [str(c) for c in X.columns]
        else:
            given = ctx.names_for(X)
            names = given if given is not None and len(given) == d else _rows.default_feature_names(d)
    names = [str(x) for x in names]
    if len(names) != d:
        raise ValueError("%d attributions per row for %d features" % (d, len(names)))
    return [_finite(dict(zip(names, row))) for row in values.tolist()]


def _finite(row: Dict[str, Any]) -> Optional[Dict[str, float]]:
    out = {}
    for k, v in row.items():
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if x == x and x not in (float("inf"), float("-inf")):
            out[k] = x
    return out or None


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
        shadow: Any = None,
        shadow_queue: int = 64,
        explain: Any = None,
        explain_background: Any = None,
        explain_queue: int = 64,
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
        pairs = _shadow_list(shadow)
        d["_mw_shadows"] = _Shadows(pairs, d["_mw_ctx"], shadow_queue) if pairs else None
        d["_mw_explainer"] = (_Explainer(explain, explain_background, explain_queue)
                              if explain not in (None, False) else None)

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
        item = (_CALL, d["_mw_ctx"], method, X, result, ts, latency_ms, ids)
        explainer = d.get("_mw_explainer")
        if explainer is not None:
            explainer.submit(mon, item, n)  # to the monitor's queue once explained
        else:
            mon._enqueue(item, n)
        shadows = d.get("_mw_shadows")
        if shadows is not None:
            # The same rows, time and ids for the challengers, scored off this thread.
            shadows.submit(mon, method, X, ts if _rows.is_scalar_time(ts) else list(ts), ids)
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

    def flush_shadows(self, timeout: Optional[float] = 10.0) -> bool:
        """Waits until the challengers have scored every queued call (their rows are then in the
        monitor's queue: ``monitor.flush()`` sends them). True without challengers."""
        shadows = self.__dict__.get("_mw_shadows")
        return True if shadows is None else shadows.join(timeout)

    def flush_explanations(self, timeout: Optional[float] = 10.0) -> bool:
        """Waits until every queued call's attributions are computed (its rows are then in the
        monitor's queue: ``monitor.flush()`` sends them). True without an explainer."""
        e = self.__dict__.get("_mw_explainer")
        return True if e is None else e.join(timeout)

    def explain_stats(self) -> Dict[str, Any]:
        """Calls explained, failed and skipped (queue full): the latter two logged without
        attributions; ``available`` is False when ``explain=True`` found no shap package."""
        e = self.__dict__.get("_mw_explainer")
        if e is None:
            return {"explained": 0, "failed": 0, "skipped": 0, "queued": 0, "available": False}
        return {"explained": e.explained, "failed": e.failed, "skipped": e.skipped,
                "queued": e.queue.qsize(), "available": not e.unavailable}

    def shadow_stats(self) -> Dict[str, Any]:
        """Challenger calls scored, failed (logged as error rows) and skipped (queue full)."""
        s = self.__dict__.get("_mw_shadows")
        if s is None:
            return {"versions": [], "scored": 0, "failed": 0, "skipped": 0, "queued": 0}
        return {"versions": [v for v, _ in s.pairs], "scored": s.scored, "failed": s.failed,
                "skipped": s.skipped, "queued": s.queue.qsize()}

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
            "shadow": d["_mw_shadows"].pairs if d.get("_mw_shadows") is not None else None,
            "shadow_queue": d["_mw_shadows"].capacity if d.get("_mw_shadows") is not None else 64,
            "explain": d["_mw_explainer"].explain if d.get("_mw_explainer") is not None else None,
            "explain_background": (d["_mw_explainer"].background
                                   if d.get("_mw_explainer") is not None else None),
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
        pairs = _shadow_list(state.get("shadow"))
        d["_mw_shadows"] = (_Shadows(pairs, d["_mw_ctx"], state.get("shadow_queue", 64))
                            if pairs else None)
        explain = state.get("explain")
        d["_mw_explainer"] = (_Explainer(explain, state.get("explain_background"), 64)
                              if explain not in (None, False) else None)


__all__ = ["MonitoredEstimator", "RequestIds"]
