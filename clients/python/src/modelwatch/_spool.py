"""Local spool: every batch goes through it before it is sent (a write-ahead log).

Layout: one directory per (server url, model) under the spool root
(default ``~/.cache/modelwatch/spool``)::

    <root>/<sha256(url \\n model)[:16]>/
        target.json                                  # url and model, for humans
        <ns>-<seq>-<kind>.ndjson.tmp.<owner>        # open segment, appended to (owner = pid-token)
        <ns>-<seq>-<kind>.ndjson                     # sealed segment: complete, unowned
        <ns>-<seq>-<kind>.ndjson.sending.<owner>     # claimed by a sender

``kind`` is ``predictions`` or ``labels``; a segment's bytes are exactly the NDJSON body of one
POST.  Appends are plain ``write()``s without fsync: they survive the process being killed
(SIGKILL included), not a power loss.

Replay protocol (safe with several processes sharing the directory, e.g. gunicorn workers):
- A writer appends to its own ``.tmp.<owner>`` segment and seals it with an atomic ``rename`` to
  ``.ndjson`` (at most ``batch_size`` rows per segment).
- A sender claims a sealed segment by renaming it to ``.sending.<owner>`` (only one rename wins),
  POSTs it, and deletes it once the server acknowledged it; on a transient failure it renames it
  back (unowned again).
- ``.tmp``/``.sending`` segments whose owner is gone (dead pid, or an earlier incarnation of this
  pid, or untouched for ``stale_after`` seconds) are recovered: complete lines are kept, a torn last
  line is dropped, and the segment is sealed again.
- Delivery is at-least-once: a crash between the server's acknowledgement and the ``unlink`` sends
  the segment again.  That is correct because the server de-duplicates on ``request_id``
  (a resent row is counted as a duplicate, not stored twice).
Segments are sent oldest first (names sort by creation time).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

log = logging.getLogger("modelwatch")

KINDS = ("predictions", "labels")
_SUFFIX = ".ndjson"
_LIVE_TOKENS: set = set()
_LIVE_LOCK = threading.Lock()
_PROCESS_TOKEN = os.urandom(4).hex()


def default_spool_root() -> str:
    base = os.environ.get("MODELWATCH_SPOOL_DIR")
    if base:
        return base
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "modelwatch", "spool")


def spool_key(url: str, model: str) -> str:
    return hashlib.sha256(("%s\n%s" % (url.rstrip("/"), model)).encode("utf-8")).hexdigest()[:16]


def _pid_alive(pid: int) -> bool:
    if sys.platform.startswith("win"):
        return True  # os.kill(pid, 0) would terminate it on Windows; rely on staleness instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Segment:
    __slots__ = ("name", "kind", "path", "rows", "nbytes")

    def __init__(self, name: str, kind: str, path: str, rows: int = 0, nbytes: int = 0):
        self.name = name
        self.kind = kind
        self.path = path
        self.rows = rows
        self.nbytes = nbytes


class _OpenSegment:
    __slots__ = ("name", "kind", "path", "fh", "rows", "created")

    def __init__(self, name: str, kind: str, path: str, fh, created: float):
        self.name = name
        self.kind = kind
        self.path = path
        self.fh = fh
        self.rows = 0
        self.created = created


class Spool:
    """Interface shared by the directory spool and the in-memory fallback."""

    batch_size: int

    def append(self, kind: str, lines: List[bytes]) -> int:  # returns rows accepted
        raise NotImplementedError

    def seal(self, force: bool) -> None:
        raise NotImplementedError

    def begin_pass(self) -> None:
        pass

    def recover(self) -> int:
        return 0

    def claim_next(self, skip: set) -> Optional[Tuple[Segment, bytes]]:
        raise NotImplementedError

    def done(self, seg: Segment) -> None:
        raise NotImplementedError

    def release(self, seg: Segment) -> None:
        raise NotImplementedError

    def pending(self) -> Tuple[int, int]:
        """(segments, bytes) waiting to be sent, open segments included."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class DirSpool(Spool):
    def __init__(self, root: str, url: str, model: str, batch_size: int, max_bytes: int,
                 seal_after: float = 30.0, stale_after: float = 600.0):
        self.dir = os.path.join(root, spool_key(url, model))
        os.makedirs(self.dir, exist_ok=True)
        target = os.path.join(self.dir, "target.json")
        if not os.path.exists(target):
            tmp = target + ".%d" % os.getpid()
            with open(tmp, "w") as f:
                json.dump({"url": url, "model": model}, f)
            os.replace(tmp, target)
        self.batch_size = max(1, batch_size)
        self.max_bytes = max_bytes
        self.seal_after = seal_after
        self.stale_after = stale_after
        self.token = "%s%s" % (_PROCESS_TOKEN, os.urandom(3).hex())
        self._pid = os.getpid()
        self.owner = "%d-%s" % (self._pid, self.token)
        with _LIVE_LOCK:
            _LIVE_TOKENS.add(self.token)
        self._open: Dict[str, _OpenSegment] = {}
        self._seq = itertools.count()
        self._candidates: List[str] = []
        self._approx_bytes = self._scan_bytes()

    # -- writing -------------------------------------------------------------------------------
    def _new_name(self, kind: str) -> str:
        return "%020d-%s-%06d-%s%s" % (time.time_ns(), self.token, next(self._seq) % 1000000, kind, _SUFFIX)

    def append(self, kind: str, lines: List[bytes]) -> int:
        accepted = 0
        i = 0
        while i < len(lines):
            if self._approx_bytes >= self.max_bytes:
                return accepted
            seg = self._open.get(kind)
            if seg is None:
                name = self._new_name(kind)
                path = os.path.join(self.dir, name + ".tmp." + self.owner)
                seg = _OpenSegment(name, kind, path, open(path, "ab"), time.monotonic())
                self._open[kind] = seg
            take = lines[i:i + (self.batch_size - seg.rows)]
            data = b"".join(take)
            seg.fh.write(data)
            seg.fh.flush()  # into the OS page cache: survives a killed process (no fsync)
            seg.rows += len(take)
            self._approx_bytes += len(data)
            accepted += len(take)
            i += len(take)
            if seg.rows >= self.batch_size:
                self._seal(seg)
        return accepted

    def _seal(self, seg: _OpenSegment) -> None:
        seg.fh.close()
        os.replace(seg.path, os.path.join(self.dir, seg.name))
        self._open.pop(seg.kind, None)

    def seal(self, force: bool) -> None:
        now = time.monotonic()
        for seg in list(self._open.values()):
            if force or now - seg.created >= self.seal_after:
                self._seal(seg)

    # -- sending -------------------------------------------------------------------------------
    def _list(self) -> List[str]:
        try:
            return sorted(os.listdir(self.dir))
        except FileNotFoundError:
            os.makedirs(self.dir, exist_ok=True)
            return []

    def _owner_gone(self, owner: str, path: str) -> bool:
        pid_s, _, token = owner.partition("-")
        if token == self.token:
            return False
        with _LIVE_LOCK:
            if token in _LIVE_TOKENS and pid_s == str(self._pid):
                return False
        try:
            pid = int(pid_s)
        except ValueError:
            return True
        if pid == self._pid or not _pid_alive(pid):
            return True
        try:
            return time.time() - os.stat(path).st_mtime > self.stale_after
        except OSError:
            return False

    def recover(self) -> int:
        """Re-seal segments left behind by dead owners; returns how many were recovered."""
        n = 0
        for fn in self._list():
            if _SUFFIX not in fn or fn.endswith(_SUFFIX):
                continue
            base = fn[: fn.index(_SUFFIX) + len(_SUFFIX)]
            rest = fn[len(base):]  # .tmp.<owner> | .sending.<owner> | ...recover...
            path = os.path.join(self.dir, fn)
            if ".recover." in rest:
                try:
                    stale = time.time() - os.stat(path).st_mtime > self.stale_after
                except OSError:
                    continue
            else:
                parts = rest.split(".", 2)
                if len(parts) != 3 or parts[1] not in ("tmp", "sending"):
                    continue
                stale = self._owner_gone(parts[2], path)
            if stale:
                try:
                    self._reseal(path, base)
                    n += 1
                except OSError as e:
                    log.warning("modelwatch: could not recover spool segment %s: %s", path, e)
        if n:
            log.info("modelwatch: recovered %d spooled segment(s) left by an earlier process", n)
        return n

    def _reseal(self, path: str, base: str) -> None:
        # Claim it first (atomic), so two recovering processes cannot both rewrite it.
        mine = path + ".recover." + self.owner
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            return
        with open(mine, "rb") as f:
            data = f.read()
        good = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except ValueError:
                continue  # a torn last line from a killed writer
            good.append(line + b"\n")
        if good:
            tmp = os.path.join(self.dir, base + ".tmp.recover." + self.owner)
            with open(tmp, "wb") as f:
                f.write(b"".join(good))
            os.replace(tmp, os.path.join(self.dir, base))
        os.unlink(mine)

    def begin_pass(self) -> None:
        """Start a sending pass: the next claim lists the directory afresh."""
        self._candidates = []

    def claim_next(self, skip: set) -> Optional[Tuple[Segment, bytes]]:
        # One directory listing per pass (not per claim): a long backlog stays O(n).
        if not self._candidates:
            self._candidates = [fn for fn in reversed(self._list()) if fn.endswith(_SUFFIX)]
        while self._candidates:
            fn = self._candidates.pop()
            if fn in skip:
                continue
            kind = fn[: -len(_SUFFIX)].rsplit("-", 1)[-1]
            if kind not in KINDS:
                continue
            src = os.path.join(self.dir, fn)
            dst = src + ".sending." + self.owner
            try:
                os.rename(src, dst)
            except FileNotFoundError:
                continue  # another process claimed it
            try:
                os.utime(dst)
                with open(dst, "rb") as f:
                    body = f.read()
            except OSError:
                continue
            return Segment(fn, kind, dst, body.count(b"\n"), len(body)), body
        return None

    def done(self, seg: Segment) -> None:
        try:
            os.unlink(seg.path)
        except FileNotFoundError:
            pass
        self._approx_bytes = max(0, self._approx_bytes - seg.nbytes)

    def release(self, seg: Segment) -> None:
        try:
            os.rename(seg.path, os.path.join(self.dir, seg.name))
        except FileNotFoundError:
            pass
        self._candidates = []

    def _scan_bytes(self) -> int:
        total = 0
        for fn in self._list():
            if _SUFFIX in fn:
                try:
                    total += os.stat(os.path.join(self.dir, fn)).st_size
                except OSError:
                    pass
        return total

    def _in_other_hands(self, fn: str, path: str) -> bool:
        """A segment another live process is writing, sending or recovering: that process's to
        deliver, not this one's (sealed segments and those of dead owners are anyone's)."""
        if fn.endswith(_SUFFIX):
            return False  # sealed: whoever claims it first sends it
        owner = fn.rsplit(".", 1)[-1]
        if owner == self.owner:
            return False
        if ".recover." in fn:
            return True
        return not self._owner_gone(owner, path)

    def pending(self) -> Tuple[int, int]:
        """(segments this process is to deliver, bytes of every segment in the directory).

        The count is what ``Monitor.flush`` waits for, so it leaves out the segments other live
        processes hold (a forked worker's flush must not wait on its parent's open segment); the
        bytes bound the spool, so they count every segment."""
        segs = 0
        total = 0
        for fn in self._list():
            if _SUFFIX in fn:
                path = os.path.join(self.dir, fn)
                if not self._in_other_hands(fn, path):
                    segs += 1
                try:
                    total += os.stat(path).st_size
                except OSError:
                    pass
        self._approx_bytes = total
        return segs, total

    def pending_rows(self) -> int:
        rows = 0
        for fn in self._list():
            if _SUFFIX in fn:
                try:
                    with open(os.path.join(self.dir, fn), "rb") as f:
                        rows += f.read().count(b"\n")
                except OSError:
                    pass
        return rows

    def close(self) -> None:
        for seg in list(self._open.values()):
            try:
                self._seal(seg)
            except OSError:
                pass
        with _LIVE_LOCK:
            _LIVE_TOKENS.discard(self.token)


class MemorySpool(Spool):
    """Fallback when no spool directory is usable (or ``spool_dir=False``): bounded, lost on exit."""

    def __init__(self, batch_size: int, max_bytes: int):
        self.batch_size = max(1, batch_size)
        self.max_bytes = max_bytes
        self._sealed: List[Tuple[Segment, bytes]] = []
        self._open: Dict[str, List[bytes]] = {}
        self._bytes = 0
        self._seq = itertools.count()
        self._claimed: Dict[str, bytes] = {}

    def append(self, kind: str, lines: List[bytes]) -> int:
        accepted = 0
        for line in lines:
            if self._bytes >= self.max_bytes:
                break
            cur = self._open.setdefault(kind, [])
            cur.append(line)
            self._bytes += len(line)
            accepted += 1
            if len(cur) >= self.batch_size:
                self._seal_kind(kind)
        return accepted

    def _seal_kind(self, kind: str) -> None:
        lines = self._open.pop(kind, None)
        if lines:
            body = b"".join(lines)
            name = "%012d-%s" % (next(self._seq), kind)
            self._sealed.append((Segment(name, kind, "", len(lines), len(body)), body))

    def seal(self, force: bool) -> None:
        for kind in list(self._open):
            self._seal_kind(kind)

    def claim_next(self, skip: set) -> Optional[Tuple[Segment, bytes]]:
        for i, (seg, body) in enumerate(self._sealed):
            if seg.name not in skip:
                del self._sealed[i]
                self._claimed[seg.name] = body
                return seg, body
        return None

    def done(self, seg: Segment) -> None:
        self._claimed.pop(seg.name, None)
        self._bytes = max(0, self._bytes - seg.nbytes)

    def release(self, seg: Segment) -> None:
        body = self._claimed.pop(seg.name)
        pos = 0
        while pos < len(self._sealed) and self._sealed[pos][0].name < seg.name:
            pos += 1
        self._sealed.insert(pos, (seg, body))

    def pending(self) -> Tuple[int, int]:
        return len(self._sealed) + len(self._open), self._bytes

    def pending_rows(self) -> int:
        return sum(s.rows for s, _ in self._sealed) + sum(len(v) for v in self._open.values())

    def recover(self) -> int:
        return 0
