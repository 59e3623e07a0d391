#!/usr/bin/env python3
"""Wide models against one writer (issue 19, items 5 and 10). Standard library only.

Starts `modelwatch serve` on a fresh data directory and measures:

  schema   a model grown to --features feature names (batches of --grow-rows rows, each row
           bringing 2,000 new features, the per-row limit), then one batch of --rows rows with
           2,000 new features each into it, and, while that batch is in the writer, a 1-row
           batch of known features to another model: the time of each.
  csv      a reference upload of --columns numeric columns x --ref-rows rows (text/csv).

  python3 scripts/bench_wide.py --bin target/release/modelwatch schema --features 220000
  python3 scripts/bench_wide.py --bin target/release/modelwatch csv --columns 5000

The server gets MODELWATCH_MAX_FEATURES_PER_MODEL=--limit (a build without the setting ignores
it), so that a model can grow past the default limit and the lookup itself is measured.
"""

import argparse
import json
import os
import random
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

PER_ROW = 2000  # core's per-row limit (IngestLimits::max_features)


def request(url, body, method="POST", ctype="application/x-ndjson"):
    req = urllib.request.Request(url, data=body, method=method, headers={"content-type": ctype})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, time.perf_counter() - t, text


def rows(first_id, n, names_of_row):
    out = []
    for i in range(n):
        feats = {name: round(random.random(), 4) for name in names_of_row(i)}
        out.append(json.dumps({
            "request_id": f"r-{first_id + i}", "timestamp": "2026-01-02T03:04:05Z",
            "prediction": 1, "score": 0.5, "features": feats}))
    return ("\n".join(out) + "\n").encode()


def schema(url, args):
    model = f"{url}/v1/models/wide/predictions"
    grown, next_id = 0, 0
    t0 = time.perf_counter()
    while grown < args.features:
        n = min(args.grow_rows, (args.features - grown) // PER_ROW) or 1
        base = grown
        body = rows(next_id, n, lambda i: (f"g{base + i * PER_ROW + j}" for j in range(PER_ROW)))
        status, secs, text = request(model, body)
        assert status == 200, (status, text[:300])
        grown += n * PER_ROW
        next_id += n
        print(f"grow: {grown} features, last batch {secs:.2f} s", flush=True)
    print(f"grown to {grown} features in {time.perf_counter() - t0:.1f} s")
    assert request(f"{url}/v1/models/other/predictions", rows(0, 1, lambda i: ["x"]))[0] == 200

    body = rows(next_id, args.rows, lambda i: (f"n{i * PER_ROW + j}" for j in range(PER_ROW)))
    result = {}

    def wide():
        result["wide"] = request(model, body)

    t = threading.Thread(target=wide)
    t.start()
    time.sleep(args.delay)
    other = request(f"{url}/v1/models/other/predictions", rows(1, 1, lambda i: ["x"]))
    t.join()
    status, secs, text = result["wide"]
    reply = json.loads(text)
    print(f"{args.rows}-row batch of new features into a model of {grown} features: "
          f"{secs:.2f} s, status {status}, accepted {reply.get('accepted')}, "
          f"rejected {len(reply.get('rejected', []))}")
    if reply.get("rejected"):
        print("  first refusal:", json.dumps(reply["rejected"][0])[:300])
    print(f"1-row batch to another model sent {args.delay} s later: {other[1]:.2f} s, "
          f"status {other[0]}")
    known = rows(next_id + args.rows, 1, lambda i: ["g0", "g1", f"g{PER_ROW - 1}"])
    status, secs, _ = request(model, known)
    print(f"1-row batch of known features into the wide model: {secs:.3f} s, status {status}")


def csv(url, args):
    cols = [f"c{i}" for i in range(args.columns)]
    lines = [",".join(cols + ["prediction"])]
    for _ in range(args.ref_rows):
        lines.append(",".join(f"{random.random():.4f}" for _ in cols) + ",1")
    body = ("\n".join(lines) + "\n").encode()
    for i in range(args.repeat):
        status, secs, text = request(f"{url}/v1/models/wideref{i}/reference", body, "PUT", "text/csv")
        reply = json.loads(text)
        print(f"reference {args.columns} columns x {args.ref_rows} rows ({len(body) / 1e6:.1f} MB): "
              f"{secs:.2f} s, status {status}, rows {reply.get('rows')}, "
              f"rejected {len(reply.get('rejected', []))}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=os.environ.get("MODELWATCH_BIN", "target/release/modelwatch"))
    p.add_argument("--limit", type=int, default=1_000_000)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("schema")
    s.add_argument("--features", type=int, default=220_000)
    s.add_argument("--grow-rows", type=int, default=10)
    s.add_argument("--rows", type=int, default=10)
    s.add_argument("--delay", type=float, default=0.3)
    c = sub.add_parser("csv")
    c.add_argument("--columns", type=int, default=5000)
    c.add_argument("--ref-rows", type=int, default=300)
    c.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    random.seed(19)
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, RUST_LOG="warn",
                   MODELWATCH_MAX_FEATURES_PER_MODEL=str(args.limit))
        server = subprocess.Popen(
            [args.bin, "serve", "--addr", "127.0.0.1:0", "--data", data],
            stdout=subprocess.PIPE, env=env)
        try:
            line = server.stdout.readline().decode().strip()
            url = line.removeprefix("modelwatch listening on ")
            {"schema": schema, "csv": csv}[args.what](url, args)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
