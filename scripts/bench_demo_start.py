#!/usr/bin/env python3
"""Seconds from `modelwatch demo` starting to fraud-demo and churn-demo having 150 hourly windows
(the browser fixture's condition), three starts; with a model name as second argument, also until
that model has labels (credit-demo). Standard library only.

  python3 scripts/bench_demo_start.py $CARGO_TARGET_DIR/debug/modelwatch credit-demo
"""
import json, subprocess, sys, tempfile, time, urllib.request
BIN = sys.argv[1]
extra = sys.argv[2:]
def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)
times = []
for run in range(3):
    d = tempfile.TemporaryDirectory()
    t0 = time.time()
    p = subprocess.Popen([BIN, "demo", "--days", "7", "--addr", "127.0.0.1:0", "--data", d.name], stdout=subprocess.PIPE, text=True, env={"RUST_LOG": "warn"})
    url = p.stdout.readline().strip().split(" ")[-1]
    while True:
        try:
            m = get(url + "/v1/models/fraud-demo/metrics?window=1h")
            c = get(url + "/v1/models/churn-demo/metrics?window=1h")
            if len(m["windows"]) >= 150 and len(c["windows"]) >= 150:
                break
        except Exception:
            pass
        time.sleep(0.2)
    t1 = time.time() - t0
    t2 = None
    if extra:
        while time.time() - t0 < 120:
            try:
                k = get(url + "/v1/models/" + extra[0])
                if k.get("labelled", 0) > 0:
                    t2 = time.time() - t0
                    break
            except Exception:
                pass
            time.sleep(0.2)
    p.terminate(); p.wait()
    times.append((round(t1, 2), t2 and round(t2, 2)))
print(times)
