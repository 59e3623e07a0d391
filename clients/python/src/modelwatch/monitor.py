"""``Monitor``: the client for one model on one modelwatch server.

Hot path vs background
----------------------
Every ``log_*`` call and every wrapped ``predict`` only appends a tuple of references (input,
result, timestamp, latency, request ids) to a bounded in-memory queue.  A daemon thread drains the
queue every ``flush_interval`` seconds, builds the per-row events, appends them as NDJSON to the
local spool (see ``_spool.py``), then POSTs sealed spool segments (gzip, ``application/x-ndjson``)
and deletes each one once the server acknowledged it.

Failure handling: nothing is ever raised into the caller's serving path.  When the server is
unreachable (or answers 5xx/408/429/401/403) the segment stays in the spool and the thread retries
with exponential backoff (``retry_initial`` doubling up to ``retry_max`` seconds, with jitter); new
events keep being appended to the spool meanwhile.  Spooled segments are sent when the server is
back, also by a later process (after a crash or a restart) that creates a ``Monitor`` for the same
url and model.  Rows the server rejects (422, or listed in ``rejected``) are logged and dropped:
resending them would not help.  Delivery is at-least-once; the server de-duplicates on
``request_id``.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import random
import re
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _rows
from ._spool import DirSpool, MemorySpool, Spool, default_spool_root
from ._transport import ModelwatchError, Transport, error_of

if TYPE_CHECKING:  # pragma: no cover
    from .wrap import MonitoredEstimator

log = logging.getLogger("modelwatch")

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_OK, _RETRY, _DEFER, _SPLIT, _DROP = range(5)
_CALL, _ONE, _TABLE, _LABELS, _LABEL_LISTS, _FAILED = range(6)

_LIVE: "weakref.WeakSet[Monitor]" = weakref.WeakSet()


class RequestIds(Sequence[str]):
    """The request ids of the rows of one call: ``"<prefix>-<row index>"``, built lazily.

    A ``Sequence[str]``: index it, iterate it, ``list()`` it, compare it to a list.
    """

    __slots__ = ("prefix", "n")

    def __init__(self, prefix: str, n: int):
        self.prefix = prefix
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(i)
        return "%s-%d" % (self.prefix, i)

    def __iter__(self):
        p = self.prefix
        return ("%s-%d" % (p, i) for i in range(self.n))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RequestIds):
            return self.prefix == other.prefix and self.n == other.n
        try:
            return list(self) == list(other)  # type: ignore[call-overload]
        except TypeError:
            return NotImplemented

    def __hash__(self) -> int:
        return hash((self.prefix, self.n))

    def __repr__(self) -> str:
        if self.n <= 3:
            return "RequestIds(%r)" % list(self)
        return "RequestIds(['%s', ..., '%s'], n=%d)" % (self[0], self[self.n - 1], self.n)


class _Ctx:
    """What the background thread needs to turn a wrapped call into rows."""

    __slots__ = ("estimator", "feature_names", "tags", "version", "log_features", "role", "_names_in")

    def __init__(self, estimator: Any, feature_names: Optional[Sequence[str]],
                 tags: Optional[Dict[str, Any]], version: Optional[str], log_features: bool,
                 role: Optional[str] = None):
        self.estimator = estimator
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.tags = dict(tags) if tags else None
        self.version = version
        self.log_features = log_features
        # "shadow" for a challenger scoring in the background (rows say "role": "shadow").
        self.role = role
        self._names_in: Tuple[Any, Optional[List[str]]] = (None, None)

    def names_for(self, X: Any) -> Optional[List[str]]:
        """Feature names for array inputs: given to wrap(), else the estimator's feature_names_in_."""
        if self.feature_names is not None or _rows.is_dataframe(X):
            return self.feature_names
        fn = getattr(self.estimator, "feature_names_in_", None)
        if fn is None:
            return None
        cached = self._names_in
        if cached[0] is not fn:
            cached = (fn, [str(x) for x in fn])
            self._names_in = cached
        return cached[1]


class _RateLimitedLog:
    def __init__(self, every: float = 60.0):
        self.every = every
        self.last: Dict[str, float] = {}

    def __call__(self, level: int, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.every:
            self.last[key] = now
            log.log(level, msg, *args)


class Monitor:
    """Client for one model on a modelwatch server.

    Args:
        url: server base url, e.g. ``"http://127.0.0.1:8080"``.
        model: model name (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``).
        version: model version stamped on every prediction (``model_version``), optional.
        api_key: sent as ``Authorization: Bearer``; defaults to ``$MODELWATCH_API_KEY``.
        tags: tags added to every prediction.
        spool_dir: root of the on-disk spool (default ``$MODELWATCH_SPOOL_DIR`` or
            ``~/.cache/modelwatch/spool``); ``False`` keeps pending events in memory only (lost on
            exit or crash).  If the directory is not writable the monitor falls back to memory.
        flush_interval: seconds between background drains/sends (latency to the server).
        batch_size: rows per POST (and per spool segment).
        max_queue_rows: rows waiting in memory for the background thread; beyond it new rows are
            dropped (counted in ``stats()["dropped_rows"]``) rather than slowing the caller.
        max_spool_bytes: cap on the spool size; beyond it new rows are dropped.
        timeout: HTTP timeout in seconds.
        retry_initial, retry_max: backoff bounds in seconds while the server is unreachable.
        exit_timeout: seconds the interpreter-exit flush waits for the server; what is not
            delivered by then stays in the spool for the next process.
        compress: gzip request bodies.
    """

    def __init__(
        self,
        url: str,
        model: str,
        version: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        tags: Optional[Mapping[str, Any]] = None,
        spool_dir: Union[str, "os.PathLike[str]", bool, None] = None,
        flush_interval: float = 0.5,
        batch_size: int = 5000,
        max_queue_rows: int = 100_000,
        max_spool_bytes: int = 1 << 30,
        timeout: float = 10.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        exit_timeout: float = 5.0,
        compress: bool = True,
    ) -> None:
        if not isinstance(model, str) or not MODEL_NAME_RE.match(model):
            raise ValueError("invalid model name %r: must match %s" % (model, MODEL_NAME_RE.pattern))
        self.url = url.rstrip("/")
        self.model = model
        self.version = None if version is None else str(version)
        self.api_key = api_key if api_key is not None else os.environ.get("MODELWATCH_API_KEY")
        self.tags = {str(k): _rows.clean_value(v) for k, v in (tags or {}).items()}
        self.flush_interval = float(flush_interval)
        self.batch_size = int(batch_size)
        self.max_queue_rows = int(max_queue_rows)
        self.max_spool_bytes = int(max_spool_bytes)
        self.timeout = float(timeout)
        self.retry_initial = float(retry_initial)
        self.retry_max = float(retry_max)
        self.exit_timeout = float(exit_timeout)
        self.compress = bool(compress)
        self._spool_dir_arg = spool_dir
        self.fast_encoding = True  # see _rows.encode_call_fast; False forces the generic encoder
        self._sync = Transport(self.url, self.api_key, self.timeout)  # for synchronous calls
        self._sync_lock = threading.Lock()
        self._closed = False
        self._init_runtime()
        _LIVE.add(self)

    # -- construction / fork ----------------------------------------------------------------
    def _init_runtime(self) -> None:
        self._rid_base = os.urandom(6).hex()
        self._rid_seq = itertools.count()
        self._qlock = threading.Lock()
        self._queue: "collections.deque[tuple]" = collections.deque()
        self._queued_rows = 0
        self._wake_rows = max(1, self.batch_size)
        self._wake = threading.Event()
        self._cv = threading.Condition()
        self._flush_req = 0
        self._flush_done = 0
        self._flush_ok = True
        self._stopping = False
        self._stats: Dict[str, Any] = collections.defaultdict(int)
        self._stats["server_up"] = None
        self._stats["last_error"] = None
        self._rl = _RateLimitedLog()
        self._backoff = self.retry_initial
        self._next_attempt = 0.0
        self._defer_until: Dict[str, float] = {}
        self._last_recover = time.monotonic()
        self._send_budget = max(0.5, 2 * self.flush_interval)
        self._transport = Transport(self.url, self.api_key, self.timeout)
        self._spool = self._make_spool()
        self._thread = threading.Thread(target=self._run, name="modelwatch-%s" % self.model, daemon=True)
        self._thread.start()

    def _make_spool(self) -> Spool:
        arg = self._spool_dir_arg
        if arg is False:
            return MemorySpool(self.batch_size, self.max_spool_bytes)
        root = default_spool_root() if arg in (None, True) else os.fspath(arg)  # type: ignore[arg-type]
        try:
            sp = DirSpool(root, self.url, self.model, self.batch_size, self.max_spool_bytes)
            sp.recover()
            return sp
        except OSError as e:
            log.warning("modelwatch: spool directory %s is not usable (%s); pending events are kept "
                        "in memory only and are lost if the process exits before they are sent", root, e)
            return MemorySpool(self.batch_size, self.max_spool_bytes)

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here and its queue/open segments belong to the parent.
        if self._closed:
            return
        old = self._spool
        if isinstance(old, DirSpool):
            old._open.clear()  # do not close the parent's file handles' segments
        self._sync = Transport(self.url, self.api_key, self.timeout)
        self._sync_lock = threading.Lock()
        self._init_runtime()

    # -- hot path -------------------------------------------------------------------------------
    def _new_ids(self, n: int) -> RequestIds:
        return RequestIds("%s-%x" % (self._rid_base, next(self._rid_seq)), n)

    def _enqueue(self, item: tuple, n: int) -> bool:
        wake = False
        with self._qlock:
            if self._queued_rows + n > self.max_queue_rows or self._closed:
                self._stats["dropped_rows"] += n
                full = not self._closed
            else:
                self._queued_rows += n
                self._queue.append(item)
                self._stats["enqueued_rows"] += n
                wake = self._queued_rows >= self._wake_rows
                full = False
        if wake:
            self._wake.set()
        if full:
            self._rl(logging.WARNING, "queue", "modelwatch: queue full (%d rows), dropping events; "
                     "the server or the spool cannot keep up", self.max_queue_rows)
            return False
        return True

    # -- public logging API (all non-blocking) -------------------------------------------------
    def log_prediction(
        self,
        features: Optional[Mapping[str, Any]],
        prediction: Any,
        *,
        score: Optional[float] = None,
        scores: Optional[Mapping[Any, float]] = None,
        request_id: Optional[str] = None,
        timestamp: Any = None,
        latency_ms: Optional[float] = None,
        tags: Optional[Mapping[str, Any]] = None,
        model_version: Optional[str] = None,
        cost: Optional[float] = None,
    ) -> str:
        """Log one prediction; returns its request id (generated unless given). Never raises.

        ``cost``: what this prediction cost (summed per window by the server; a prediction
        without one is priced by the model's ``cost_per_prediction`` setting, if any)."""
        try:
            rid = str(request_id) if request_id is not None else self._new_ids(1)[0]
            item = (_ONE, rid, dict(features) if features else {}, prediction, score,
                    dict(scores) if scores else None, time.time() if timestamp is None else timestamp,
                    latency_ms, dict(tags) if tags else None, model_version, cost)
            self._enqueue(item, 1)
            return rid
        except Exception as e:  # never into the caller
            self._rl(logging.WARNING, "log_prediction", "modelwatch: log_prediction failed: %r", e)
            return str(request_id) if request_id is not None else ""

    def log_predictions(
        self,
        data: Any,
        *,
        request_id_column: str = "request_id",
        prediction_column: str = "prediction",
        score_column: Optional[str] = "score",
        scores_columns: Optional[Mapping[str, Any]] = None,
        timestamp_column: Optional[str] = "timestamp",
        feature_columns: Optional[Sequence[str]] = None,
        tag_columns: Optional[Sequence[str]] = None,
    ) -> List[str]:
        """Log many predictions in one call: a pandas DataFrame or a list of dicts.

        Table form (DataFrame, or flat dicts): ``prediction_column`` is required;
        ``request_id_column`` (generated when absent), ``score_column``, ``timestamp_column``,
        ``model_version`` and ``latency_ms`` are used when present; ``scores_columns`` maps
        probability columns to class names (``{"p_fraud": "fraud", "p_ok": "ok"}``);
        ``tag_columns`` become tags; every other column (or exactly ``feature_columns``) is a
        feature.  Records that have a ``"features"`` key are taken as events in the contract shape.

        Returns the request ids, in row order.  Conversion happens in the background thread.
        """
        try:
            n = len(data)
            given: Optional[List[str]] = None
            if _rows.is_dataframe(data):
                if request_id_column in data.columns:
                    given = [str(v) for v in data[request_id_column].tolist()]
            else:
                data = list(data)
                if data and isinstance(data[0], Mapping) and all(r.get("request_id") is not None for r in data):
                    given = [str(r.get("request_id")) for r in data]
            ids: Sequence[str] = given if given is not None else self._new_ids(n)
            if given is None and data and isinstance(data[0], Mapping):
                ids = [str(r["request_id"]) if r.get("request_id") is not None else ids[i]
                       for i, r in enumerate(data)]
            opts = dict(request_id_column=request_id_column, prediction_column=prediction_column,
                        score_column=score_column, scores_columns=scores_columns,
                        timestamp_column=timestamp_column, feature_columns=feature_columns,
                        tag_columns=tag_columns)
            self._enqueue((_TABLE, data, ids, opts, time.time()), n)
            return list(ids)
        except Exception as e:
            self._rl(logging.WARNING, "log_predictions", "modelwatch: log_predictions failed: %r", e)
            return []

    def log_labels(
        self,
        data: Any,
        labels: Optional[Sequence[Any]] = None,
        *,
        request_id_column: str = "request_id",
        label_column: str = "label",
        timestamp_column: Optional[str] = "timestamp",
        timestamp: Any = None,
    ) -> int:
        """Log ground-truth labels, joined by the server to predictions by request id.

        Accepts a DataFrame (``request_id`` and ``label`` columns, optional ``timestamp``), a list
        of ``{"request_id", "label"[, "timestamp"]}`` dicts, or two sequences
        ``log_labels(request_ids, labels)``.  Returns the number of labels queued.
        """
        try:
            ts = time.time() if timestamp is None else timestamp
            if labels is not None:
                ids = [str(r) for r in data]
                labs = list(labels)
                if len(ids) != len(labs):
                    raise ValueError("%d request ids but %d labels" % (len(ids), len(labs)))
                n = len(ids)
                self._enqueue((_LABEL_LISTS, ids, labs, ts), n)
                return n
            if not _rows.is_dataframe(data):
                data = list(data)
            n = len(data)
            opts = dict(request_id_column=request_id_column, label_column=label_column,
                        timestamp_column=timestamp_column)
            self._enqueue((_LABELS, data, opts, ts), n)
            return n
        except Exception as e:
            self._rl(logging.WARNING, "log_labels", "modelwatch: log_labels failed: %r", e)
            return 0

    def log_label(self, request_id: str, label: Any, timestamp: Any = None) -> None:
        """Log one label (see ``log_labels``)."""
        self.log_labels([request_id], [label], timestamp=timestamp)

    def wrap(
        self,
        estimator: Any,
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
    ) -> "MonitoredEstimator":
        """Wrap a fitted scikit-learn estimator or Pipeline; see ``MonitoredEstimator``.

        ``shadow``: challengers that score the same rows in the background, logged as shadow
        predictions of their own version for the same request ids (docs/api.md, "Challengers"):
        a list of estimators (versions ``shadow-1``, ``shadow-2`` ...) or of ``(version,
        estimator)`` pairs, or a dict ``{version: estimator}``.  What the champion returns, and
        when, does not change: calls wait in a queue of ``shadow_queue`` calls for one
        background thread, and a call that finds it full is not shadowed (counted in
        ``wrapped.shadow_stats()``).

        ``explain``: per-feature attributions logged with each prediction (``"explanations"``,
        docs/api.md), computed on a background thread: ``True`` for the ``shap`` package's
        ``shap.Explainer(estimator)`` (``shap.Explainer(estimator, explain_background)`` when
        background rows are given, as linear models need), or a callable ``f(X)`` returning one
        attribution per feature and row (an array ``(rows, features)``, a ``shap.Explanation``, or
        a list of ``{feature: value}``).  ``predict`` returns what it returned, as soon as before:
        the call waits in a queue of ``explain_queue`` calls; a call that finds it full, or that the
        explainer fails on, is logged without attributions (``wrapped.explain_stats()``).  Without
        ``shap`` installed, ``explain=True`` logs a warning once and nothing else changes."""
        from .wrap import MonitoredEstimator

        return MonitoredEstimator(estimator, self, feature_names=feature_names, tags=tags,
                                  version=version, log_methods=log_methods, log_features=log_features,
                                  request_ids_from_index=request_ids_from_index, copy_inputs=copy_inputs,
                                  shadow=shadow, shadow_queue=shadow_queue, explain=explain,
                                  explain_background=explain_background,
                                  explain_queue=explain_queue)

    # -- flushing / lifecycle ---------------------------------------------------------------------
    def flush(self, timeout: Optional[float] = 10.0) -> bool:
        """Send everything logged so far; wait at most ``timeout`` seconds.

        Returns True when every event logged before the call (and everything in the spool) has been
        acknowledged by the server; False when some remain (server down: they stay spooled and are
        retried in the background) or the timeout expired.  Forces an immediate attempt even during
        backoff.  Never raises.
        """
        if self._closed or not self._thread.is_alive():
            return False
        with self._cv:
            self._flush_req += 1
            target = self._flush_req
            self._wake.set()
            end = None if timeout is None else time.monotonic() + timeout
            while self._flush_done < target:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(left)
            return self._flush_ok

    def close(self, timeout: Optional[float] = 10.0) -> bool:
        """Flush, then stop the background thread, within ``timeout`` seconds in all.  Undelivered
        events stay in the spool (sent by the next ``Monitor`` for the same url and model).
        Idempotent."""
        if self._closed:
            return False
        end = None if timeout is None else time.monotonic() + timeout
        ok = self.flush(timeout)
        with self._qlock:
            self._closed = True  # later log calls are dropped (counted), never raised
        with self._cv:
            self._stopping = True
        self._wake.set()
        # The thread's last cycle seals the open segments; a daemon thread stuck on a hung server
        # is abandoned at the deadline (its segment is recovered by the next process).
        left = 5.0 if end is None else end - time.monotonic()
        self._thread.join(timeout=max(0.05, left))
        if self._thread.is_alive():
            self._spool_leftovers()
        _LIVE.discard(self)
        return ok

    def _spool_leftovers(self) -> None:
        """The thread is stuck (a hung server): write what is still queued in memory to the spool
        through a separate writer (its own segment files), so that it is not lost at exit."""
        items = self._drain()
        if not items or not isinstance(self._spool, DirSpool):
            return
        try:
            sp = DirSpool(os.path.dirname(self._spool.dir), self.url, self.model, self.batch_size,
                          self.max_spool_bytes)
        except OSError as e:
            log.error("modelwatch: %d queued events lost at close: %s", len(items), e)
            return
        try:
            for item in items:
                kind, lines = self._convert(item)
                sp.append(kind, lines)
        except Exception as e:
            log.error("modelwatch: could not spool queued events at close: %r", e)
        finally:
            sp.close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stats(self) -> Dict[str, Any]:
        """Counters: enqueued/sent/duplicate/rejected/dropped rows, spool backlog, server state."""
        with self._qlock:
            s = dict(self._stats)
            s["queued_rows"] = self._queued_rows
        try:
            s["spool_segments"], s["spool_bytes"] = self._spool.pending()
        except OSError:
            pass
        for k in ("in_flight_rows", "enqueued_rows", "spooled_rows", "sent_rows", "duplicate_rows", "rejected_rows", "dropped_rows",
                  "spool_dropped_rows", "failed_sends"):
            s.setdefault(k, 0)
        s["spool_dir"] = getattr(self._spool, "dir", None)
        return s

    # -- synchronous API (not for the hot path; raises ModelwatchError) ------------------------
    def _call(self, method: str, path: str, body: Optional[bytes] = None,
              content_type: Optional[str] = None, compress: bool = False) -> Any:
        with self._sync_lock:
            return self._sync.call(method, path, body, content_type, compress)

    def info(self) -> Dict[str, Any]:
        """``GET /v1/models/{model}``: counts, schema and versions."""
        return self._call("GET", self._sync.model_path(self.model))

    def metrics(self, window: str = "1d", *, start: Any = None, end: Any = None,
                version: Optional[str] = None, segment: Optional[str] = None, as_frame: bool = True) -> Any:
        """Metrics over time: one row per event-time window, one column per value.

        The server's CSV table (``GET /v1/models/{model}/metrics?format=csv``): ``window_start``,
        ``window_end``, the task's metrics (``accuracy, precision, recall, f1`` ..., each with
        ``<metric>_ci_low`` / ``<metric>_ci_high``), ``average_confidence``,
        ``prediction_volume``, ``labelled``, ``latency_p50``/``p95``/``p99``, ``error_rate``,
        ``label_coverage`` ...; a metric not defined in a window (too few labels) is NaN (None).
        A pandas DataFrame indexed by ``window_start`` (UTC) when pandas is installed and
        ``as_frame`` is true, else a list of dicts.  ``window`` is ``1h``, ``1d`` or ``7d``;
        ``start``/``end`` (``from``/``to``) accept datetimes or RFC 3339 strings.  With
        ``segment`` the server's JSON report instead, with the server's one meaning of
        ``segment`` (the same as for ``/drift``): a feature or ``tag:<name>`` (``"country"``,
        ``"tag:region"``) adds ``segments``, the metrics per value (10 largest plus ``other``);
        ``feature:value`` or ``tag:<name>:<value>`` (``"country:DE"``, ``"tag:region:eu"``)
        makes the report's ``windows`` those of that slice of the traffic only.  Raises
        ``ModelwatchError`` on failure (a bad ``segment`` is a 400 naming it).
        """
        q = {"window": window, "from": _fmt_time(start), "to": _fmt_time(end), "version": version}
        if segment is not None:
            q["segment"] = segment
            return self._call("GET", self._sync.model_path(self.model, "/metrics", q))
        q["format"] = "csv"
        text = self._call("GET", self._sync.model_path(self.model, "/metrics", q))
        if not isinstance(text, str):
            raise ModelwatchError(200, "unexpected_reply", ("expected CSV, got %r" % (text,))[:200])
        pd = _pandas() if as_frame else None
        if pd is None:
            return _csv_records(text)
        import io

        df = pd.read_csv(io.StringIO(text))
        for c in ("window_start", "window_end"):
            df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601")
        return df.set_index("window_start").sort_index()

    def metrics_summary(self, window: str = "1d", *, start: Any = None, end: Any = None,
                        version: Optional[str] = None) -> Dict[str, Any]:
        """The change summary of the metrics report: per metric, the first window against the last
        and the baseline (the reference) against the last, each with its significance test
        (``first_to_last`` / ``baseline_to_last``: ``delta``, ``p_value``, ``significant``)."""
        q = {"window": window, "from": _fmt_time(start), "to": _fmt_time(end), "version": version}
        return self._call("GET", self._sync.model_path(self.model, "/metrics", q))["summary"]

    def export(self, kind: str = "predictions", *, as_frame: bool = True, page_size: int = 10_000) -> Any:
        """Every stored prediction (or label, ``kind="labels"``) of the model, in arrival order,
        paged through ``GET /v1/models/{model}/predictions`` (``/labels``).

        A pandas DataFrame when pandas is installed and ``as_frame`` is true (nested values
        flattened: ``features.age``, ``scores.fraud``, ``tags.region``; ``timestamp`` as UTC
        datetimes), else the events as the server returns them (list of dicts).  For a whole
        history, ``modelwatch export --server URL`` writes Parquet.  Raises ``ModelwatchError``.
        """
        if kind not in ("predictions", "labels"):
            raise ValueError("kind must be 'predictions' or 'labels', got %r" % (kind,))
        rows: List[Dict[str, Any]] = []
        after: Optional[str] = None  # the server's opaque cursor, passed back unchanged
        while True:
            q = {"limit": int(page_size), "after": after}
            page = self._call("GET", self._sync.model_path(self.model, "/" + kind, q))
            rows.extend(page.get(kind) or [])
            after = page.get("next")
            if after is None:
                break
        pd = _pandas() if as_frame else None
        if pd is None:
            return rows
        df = pd.json_normalize(rows, sep=".") if rows else pd.DataFrame(columns=["request_id", "timestamp"])
        if "timestamp" in df.columns and len(df):
            df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
        return df

    def upload_reference(self, data: Any, version: Optional[str] = None) -> Dict[str, Any]:
        """Upload the reference (baseline) dataset: a DataFrame or a list of flat dicts.

        Columns ``prediction``, ``score`` and ``label`` (or ``y_pred``, ``y_pred_proba``,
        ``y_true``) are mapped by the server; every other column is a feature.  Sent as gzipped
        NDJSON with ``PUT /v1/models/{model}/reference?version=...`` (default: this monitor's
        version; while the model has no all-versions reference, the server also uses the
        reference uploaded last for queries and rules without a version).  Synchronous; returns
        the server's reply; raises ``ModelwatchError``.
        """
        if _rows.is_dataframe(data):
            names, cols, n = _rows.table_columns(data)
            cleaned = [_rows._clean_list(cols[c]) for c in names]
            records: Iterable[Dict[str, Any]] = (dict(zip(names, vals)) for vals in zip(*cleaned))
        else:
            records = ({str(k): _rows.clean_value(v) for k, v in r.items()} for r in data)
        body = b"".join(_rows.encode_lines(records))
        v = version if version is not None else self.version
        path = self._sync.model_path(self.model, "/reference", {"version": v})
        return self._call("PUT", path, body, "application/x-ndjson", compress=self.compress)

    # -- background thread -------------------------------------------------------------------
    def _run(self) -> None:
        more = False
        while True:
            if not more:
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._cv:
                req = self._flush_req
                stopping = self._stopping
            ok = False
            more = False
            try:
                ok, more = self._cycle(force=req > self._flush_done or stopping)
            except Exception as e:  # keep the thread alive whatever happens
                self._stats["last_error"] = repr(e)
                log.exception("modelwatch: background cycle failed")
            if more:
                continue  # a backlog is being sent: drain the queue, then go on sending at once
            with self._cv:
                self._flush_done = req
                self._flush_ok = ok
                self._cv.notify_all()
            if stopping:
                try:
                    self._spool.close()
                finally:
                    self._transport.close()
                return

    def _drain(self) -> List[tuple]:
        with self._qlock:
            if not self._queue:
                return []
            items = list(self._queue)
            self._queue.clear()
            self._queued_rows = 0
        return items

    def _cycle(self, force: bool) -> Tuple[bool, bool]:
        """Drain the queue into the spool, then send. Returns (everything delivered, more to send
        right away: the pass stopped at its time budget)."""
        items = self._drain()
        if items:
            by_kind: Dict[str, List[bytes]] = {"predictions": [], "labels": []}
            last_yield = time.perf_counter()
            for item in items:
                # Hand the GIL to the serving threads at least every ~0.5 ms of conversion work
                # rather than at the interpreter's 5 ms switch interval: keeps predict's tail short.
                now_pc = time.perf_counter()
                if now_pc - last_yield > 0.0005:
                    time.sleep(0)
                    last_yield = time.perf_counter()
                try:
                    kind, lines = self._convert(item)
                except Exception as e:
                    self._rl(logging.WARNING, "convert", "modelwatch: could not convert logged events "
                             "(%r); they are dropped", e)
                    self._stats["rejected_rows"] += _item_rows(item)
                    continue
                by_kind[kind].extend(lines)
            for kind in ("predictions", "labels"):  # predictions first: labels join on them
                lines = by_kind[kind]
                if lines:
                    try:
                        accepted = self._spool.append(kind, lines)
                    except OSError as e:
                        self._fallback_to_memory(e)
                        accepted = self._spool.append(kind, lines)
                    self._stats["spooled_rows"] += accepted
                    if accepted < len(lines):
                        self._stats["spool_dropped_rows"] += len(lines) - accepted
                        self._rl(logging.ERROR, "spool_full", "modelwatch: spool full (%d bytes), "
                                 "dropping events", self.max_spool_bytes)
        now = time.monotonic()
        if force or now >= self._next_attempt:
            try:
                self._spool.seal(force=True)
            except OSError as e:
                self._fallback_to_memory(e)
            delivered, more = self._send_all(now, force)
            return delivered and not self._queue and self._spool.pending()[0] == 0, more
        self._spool.seal(force=False)
        return False, False

    def _fallback_to_memory(self, e: Exception) -> None:
        log.error("modelwatch: spool write failed (%s); keeping pending events in memory", e)
        old = self._spool
        self._spool = MemorySpool(self.batch_size, self.max_spool_bytes)
        try:
            old.close()
        except Exception:
            pass

    def _send_all(self, now: float, force: bool = False) -> Tuple[bool, bool]:
        """Send claimable segments, oldest first, for at most ``_send_budget`` seconds (so that a
        long backlog after an outage does not keep the queue from being drained).
        Returns (all sent, stopped at the budget with more to send)."""
        if now - self._last_recover >= 60.0:  # segments of processes that died since we started
            self._last_recover = now
            try:
                self._spool.recover()
            except OSError as e:
                self._rl(logging.WARNING, "recover", "modelwatch: spool recovery failed: %s", e)
        # Deferred segments (labels answered 404: no predictions for the model yet) wait for their
        # own retry time, unless flush() forces an attempt.
        skip = set() if force else {name for name, t in self._defer_until.items() if t > now}
        all_ok = not skip
        retried_deferred = False
        started = time.monotonic()
        while True:
            self._spool.begin_pass()
            deferred_now: List[str] = []
            progress_after_defer = False
            while True:
                got = self._spool.claim_next(skip)
                if got is None:
                    break
                seg, body = got
                outcome = self._post(seg.kind, body, seg.rows)
                if outcome == _OK or outcome == _DROP:
                    self._spool.done(seg)
                    self._defer_until.pop(seg.name, None)
                    progress_after_defer = progress_after_defer or bool(deferred_now)
                    if time.monotonic() - started >= self._send_budget:
                        return False, True
                elif outcome == _SPLIT:
                    lines = body.splitlines(keepends=True)
                    half = max(1, len(lines) // 2)
                    self.batch_size = self._spool.batch_size = max(1, half)
                    for part in (lines[:half], lines[half:]):
                        if part:
                            self._spool.append(seg.kind, part)
                    self._spool.done(seg)
                    self._spool.seal(force=True)
                elif outcome == _DEFER:
                    self._spool.release(seg)
                    prev = self._defer_until.get(seg.name)
                    self._defer_until[seg.name] = now + (60.0 if prev else 5.0)
                    skip.add(seg.name)
                    deferred_now.append(seg.name)
                else:  # _RETRY
                    self._spool.release(seg)
                    self._next_attempt = time.monotonic() + self._backoff * random.uniform(0.8, 1.2)
                    self._backoff = min(self.retry_max, self._backoff * 2)
                    return False, False
            if deferred_now and progress_after_defer and not retried_deferred:
                # e.g. labels queued before the predictions they join: those just went through
                retried_deferred = True
                skip.difference_update(deferred_now)
                continue
            return all_ok and not deferred_now, False

    def _post(self, kind: str, body: bytes, rows: int) -> int:
        path = self._transport.model_path(self.model, "/" + kind)
        self._stats["in_flight_rows"] = rows
        try:
            r = self._transport.request("POST", path, body, "application/x-ndjson", compress=self.compress)
        except Exception as e:
            self._stats["in_flight_rows"] = 0
            self._stats["failed_sends"] += 1
            self._stats["last_error"] = "%s: %s" % (type(e).__name__, e)
            if self._stats["server_up"] is not False:
                log.warning("modelwatch: server %s unreachable (%s); events are spooled and retried",
                            self.url, e)
            self._stats["server_up"] = False
            return _RETRY
        self._stats["in_flight_rows"] = 0
        status = r.status
        if status < 500 and self._stats["server_up"] is False:
            log.info("modelwatch: server %s reachable again; sending spooled events", self.url)
        if status < 500:
            self._stats["server_up"] = True
        if status in (200, 201, 202, 422):
            self._backoff = self.retry_initial
            self._next_attempt = 0.0
            b = r.body if isinstance(r.body, dict) else {}
            accepted = int(b.get("accepted", rows if status < 300 else 0) or 0)
            dups = int(b.get("duplicates", 0) or 0)
            rejected = b.get("rejected") or []
            self._stats["sent_rows"] += accepted
            self._stats["duplicate_rows"] += dups
            if rejected or status == 422:
                n_rej = len(rejected) if rejected else rows
                self._stats["rejected_rows"] += n_rej
                sample = "; ".join("%s %s: %s" % (x.get("request_id"), x.get("field"), x.get("reason"))
                                   for x in rejected[:3] if isinstance(x, dict))
                self._rl(logging.WARNING, "rejected", "modelwatch: server rejected %d of %d %s rows "
                         "(e.g. %s)", n_rej, rows, kind, sample)
            changes = b.get("schema_changes")
            if changes:
                self._stats["schema_changes"] += len(changes)
                log.debug("modelwatch: %d schema change(s) reported for %s: %s", len(changes), self.model, changes)
            return _OK
        code, message = error_of(r)
        self._stats["last_error"] = "%d %s: %s" % (status, code, message)
        if status == 413:
            return _SPLIT if rows > 1 else _DROP
        if status == 404 and kind == "labels":
            self._rl(logging.INFO, "labels404", "modelwatch: labels for %s not accepted yet (%s); "
                     "retrying later", self.model, message)
            return _DEFER
        if status >= 500 or status in (401, 403, 404, 408, 425, 429):
            self._stats["failed_sends"] += 1
            self._rl(logging.WARNING if status >= 500 else logging.ERROR, "http%d" % status,
                     "modelwatch: %s answered %d %s (%s); events stay spooled and are retried",
                     self.url, status, code, message)
            return _RETRY
        self._stats["rejected_rows"] += rows
        self._rl(logging.ERROR, "http%d" % status, "modelwatch: %s rejected a batch of %d %s rows with "
                 "%d %s (%s); dropped", self.url, rows, kind, status, code, message)
        return _DROP

    def _convert(self, item: tuple) -> Tuple[str, List[bytes]]:
        """One queue item -> (endpoint kind, NDJSON lines)."""
        kind, rows = self._convert_rows(item)
        if rows and isinstance(rows[0], bytes):
            return kind, rows  # type: ignore[return-value]
        return kind, list(_rows.encode_lines(rows))

    def _convert_rows(self, item: tuple) -> Tuple[str, List[Any]]:
        tag = item[0]
        if tag == _FAILED:
            _, ctx, method, X, error, ts, latency_ms, ids = item
            n = len(ids)
            times = _rows.call_times(ts, n)
            tags = {**self.tags, **ctx.tags} if ctx.tags else self.tags
            version = ctx.version if ctx.version is not None else self.version
            try:
                feats = _rows.feature_rows(X, ctx.names_for(X), n) if ctx.log_features else None
            except Exception:  # the input the estimator refused may not be a table at all
                feats = None
            failed = []
            for i, rid in enumerate(ids):
                row: Dict[str, Any] = {"request_id": rid,
                                       "timestamp": times if isinstance(times, str) else times[i]}
                if version is not None:
                    row["model_version"] = version
                row["features"] = feats[i] if feats is not None else {}
                row["error"] = error
                row["latency_ms"] = round(latency_ms, 4)
                if tags:
                    row["tags"] = tags
                if ctx.role is not None:
                    row["role"] = ctx.role
                failed.append(row)
            return "predictions", failed
        if tag == _CALL:
            _, ctx, method, X, result, ts, latency_ms, ids = item[:8]
            # Per-row attributions, when the wrapper's explainer computed them (wrap.py).
            explanations = item[8] if len(item) > 8 else None
            n = len(ids)
            est = ctx.estimator
            classes = getattr(est, "classes_", None) if method != "predict" else None
            tags = {**self.tags, **ctx.tags} if ctx.tags else self.tags
            version = ctx.version if ctx.version is not None else self.version
            times = _rows.call_times(ts, n)
            # A shadow's rows (rare, and off the caller's path) take the general encoder, which
            # adds their role.
            if (self.fast_encoding and ctx.role is None and method in ("predict", "predict_proba")
                    and isinstance(times, str) and explanations is None):
                fp = _rows.fast_prediction_json(method, result, classes, n)
                if fp is not None:
                    if ctx.log_features:
                        fj = _rows.fast_feature_json(X, ctx.names_for(X), n)
                    else:
                        fj = ["{}"] * n
                    if fj is not None:
                        return "predictions", _rows.encode_call_fast(
                            ids, fj, fp, times, version, round(latency_ms, 4), tags)
            preds = _rows.predictions_from_result(method, result, classes)
            if preds is None or len(preds["prediction"]) != n:
                self._rl(logging.WARNING, "unsupported", "modelwatch: cannot log %s output of %s "
                         "(multi-output or unexpected shape); not logged", method, type(est).__name__)
                return "predictions", []
            if ctx.log_features:
                feats = _rows.feature_rows(X, ctx.names_for(X), n)
            else:
                feats = [{} for _ in range(n)]
            rows = _rows.build_prediction_rows(
                ids, feats, preds, times if isinstance(times, str) else "", version,
                round(latency_ms, 4), tags)
            if not isinstance(times, str):  # one time per row (replayed history)
                for row, t in zip(rows, times):
                    row["timestamp"] = t
            if ctx.role is not None:
                for row in rows:
                    row["role"] = ctx.role
            if explanations is not None:
                for row, e in zip(rows, explanations):
                    if e:
                        row["explanations"] = e
            return "predictions", rows
        if tag == _ONE:
            _, rid, features, prediction, score, scores, ts, latency_ms, tags, version = item[:10]
            # Items queued before `cost` existed have ten fields.
            cost = item[10] if len(item) > 10 else None
            row: Dict[str, Any] = {"request_id": rid, "timestamp": _ts(ts)}
            v = version if version is not None else self.version
            if v is not None:
                row["model_version"] = str(v)
            row["features"] = {str(k): _rows.clean_value(x) for k, x in features.items()}
            row["prediction"] = _rows.clean_value(prediction)
            if score is not None and _rows.clean_value(score) is not None:
                row["score"] = _rows.clean_value(score)
            if scores:
                row["scores"] = {str(k): _rows.clean_value(x) for k, x in scores.items()}
            if latency_ms is not None and _rows.clean_value(latency_ms) is not None:
                row["latency_ms"] = _rows.clean_value(latency_ms)
            if cost is not None and _rows.clean_value(cost) is not None:
                row["cost"] = _rows.clean_value(cost)
            t = {**self.tags, **{str(k): _rows.clean_value(x) for k, x in tags.items()}} if tags else self.tags
            if t:
                row["tags"] = t
            return "predictions", [row]
        if tag == _TABLE:
            _, data, ids, opts, ts = item
            return "predictions", _rows.prediction_rows_from_table(
                data, ids, default_timestamp=_rows.iso_timestamp(ts), version=self.version,
                tags=self.tags, **opts)
        if tag == _LABELS:
            _, data, opts, ts = item
            return "labels", _rows.label_rows_from_table(data, default_timestamp=_ts(ts), **opts)
        if tag == _LABEL_LISTS:
            _, ids, labels, ts = item
            t = _ts(ts)
            return "labels", [{"request_id": r, "label": _rows.clean_value(lab), "timestamp": t}
                              for r, lab in zip(ids, labels)]
        raise ValueError("unknown queue item %r" % (tag,))

    def __repr__(self) -> str:
        return "Monitor(url=%r, model=%r, version=%r)" % (self.url, self.model, self.version)

    # -- pickling support for wrapped estimators ----------------------------------------------
    def _config(self) -> Dict[str, Any]:
        """Everything needed to re-create an equivalent monitor, except the api key."""
        return dict(url=self.url, model=self.model, version=self.version, tags=self.tags,
                    spool_dir=self._spool_dir_arg if not isinstance(self._spool_dir_arg, os.PathLike)
                    else os.fspath(self._spool_dir_arg),
                    flush_interval=self.flush_interval, batch_size=self.batch_size,
                    max_queue_rows=self.max_queue_rows, max_spool_bytes=self.max_spool_bytes,
                    timeout=self.timeout, retry_initial=self.retry_initial, retry_max=self.retry_max,
                    exit_timeout=self.exit_timeout, compress=self.compress)


def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:
        return None
    return pd


def _csv_cell(v: str) -> Any:
    """A cell of the server's CSV: empty is None, numbers are numbers, true/false are bools."""
    if v == "":
        return None
    if v in ("true", "false"):
        return v == "true"
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def _csv_records(text: str) -> List[Dict[str, Any]]:
    import csv
    import io

    return [{k: _csv_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def _item_rows(item: tuple) -> int:
    try:
        if item[0] in (_CALL, _FAILED):
            return len(item[7])
        if item[0] == _ONE:
            return 1
        if item[0] in (_TABLE, _LABELS):
            return len(item[1])
        return len(item[1])
    except Exception:
        return 0


def _ts(t: Any) -> Any:
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return _rows.iso_timestamp(float(t))
    return _rows.clean_value(t)


def _fmt_time(t: Any) -> Optional[str]:
    if t is None:
        return None
    if isinstance(t, str):
        return t
    return _ts(t.timestamp()) if hasattr(t, "timestamp") else str(t)


_SHARED: Dict[tuple, Monitor] = {}
_SHARED_LOCK = threading.Lock()


def shared_monitor(config: Dict[str, Any]) -> Monitor:
    """One monitor per configuration in a process: what unpickled wrapped estimators use."""
    key = tuple(sorted((k, repr(v)) for k, v in config.items()))
    with _SHARED_LOCK:
        m = _SHARED.get(key)
        if m is None or m._closed:
            m = Monitor(**config)
            _SHARED[key] = m
        return m


def _close_all_at_exit() -> None:
    monitors = list(_LIVE)
    if not monitors:
        return
    deadline = time.monotonic() + max(m.exit_timeout for m in monitors)
    for m in monitors:
        try:
            m.close(timeout=max(0.05, deadline - time.monotonic()))
        except Exception:
            pass


def _after_fork() -> None:
    for m in list(_LIVE):
        try:
            m._after_fork_in_child()
        except Exception:
            pass


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


__all__ = ["Monitor", "RequestIds", "ModelwatchError", "shared_monitor"]
