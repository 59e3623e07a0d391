"""The spool's replay protocol (no server needed: these exercise files and processes only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from modelwatch._spool import DirSpool, spool_key


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _line(i: int) -> bytes:
    return json.dumps({"request_id": "r-%d" % i, "prediction": 1}).encode() + b"\n"


def test_torn_segment_of_a_dead_writer_is_recovered(tmp_path):
    url, model = "http://127.0.0.1:9", "m"
    d = tmp_path / spool_key(url, model)
    d.mkdir(parents=True)
    dead = "%d-deadbeef" % _dead_pid()
    name = "00000000000000000001-deadbeef-000000-predictions.ndjson"
    (d / (name + ".tmp." + dead)).write_bytes(_line(1) + _line(2) + b'{"request_id": "r-3", "predi')
    name2 = "00000000000000000002-deadbeef-000001-labels.ndjson"
    (d / (name2 + ".sending." + dead)).write_bytes(b'{"request_id": "r-1", "label": 1}\n')

    sp = DirSpool(str(tmp_path), url, model, batch_size=100, max_bytes=1 << 20)
    assert sp.recover() == 2
    assert sorted(os.listdir(d)) == sorted(["target.json", name, name2])
    assert (d / name).read_bytes() == _line(1) + _line(2)  # the torn last line is dropped
    got = sp.claim_next(set())
    assert got is not None and got[0].kind == "predictions" and got[1] == _line(1) + _line(2)
    sp.done(got[0])
    sp.begin_pass()
    seg, body = sp.claim_next(set())
    assert seg.kind == "labels"
    sp.release(seg)  # back to unowned
    assert os.path.exists(d / name2)
    sp.close()


def test_live_owners_are_left_alone_and_claims_are_exclusive(tmp_path):
    url, model = "http://127.0.0.1:9", "m"
    a = DirSpool(str(tmp_path), url, model, batch_size=2, max_bytes=1 << 20)
    b = DirSpool(str(tmp_path), url, model, batch_size=2, max_bytes=1 << 20)
    assert a.append("predictions", [_line(i) for i in range(5)]) == 5  # 2 sealed segments + 1 open
    assert b.recover() == 0  # a's open segment belongs to a live owner
    assert a.pending()[0] == 3
    # b's flush waits for the sealed segments, not for a's open one (a forked worker's flush
    # failed while its parent had a segment open); the bytes bound the spool, so count it all.
    assert b.pending()[0] == 2 and b.pending()[1] == a.pending()[1]
    first = b.claim_next(set())
    second = a.claim_next(set())
    assert first and second and first[0].name != second[0].name
    assert a.claim_next(set()) is None  # the open segment is not claimable until sealed
    a.seal(force=True)
    b.begin_pass()  # a sending pass lists the directory once
    third = b.claim_next(set())
    assert third and third[1] == _line(4)
    for sp, got in ((b, first), (a, second), (b, third)):
        sp.done(got[0])
    assert a.pending() == (0, 0)
    a.close()
    b.close()


def test_spool_size_is_bounded(tmp_path):
    sp = DirSpool(str(tmp_path), "http://x:1", "m", batch_size=10, max_bytes=200)
    accepted = sp.append("predictions", [_line(i) for i in range(100)])
    assert 0 < accepted < 100
    sp.close()
