#!/usr/bin/env python3
"""Cost of the label-free estimates (ADR 008) on `GET /v1/models/{m}/metrics`. Standard
library only.

Starts `modelwatch serve` on a fresh data directory, sends --days days of --per-day binary
predictions (scores, logged predictions, no labels) to two models, uploads a labelled,
scored reference to one of them (`est`: its windows carry `estimated`) and a reference without
scores to the other (`plain`: no estimates, the per-hour aggregates only), then times the same
daily metrics query on both, --repeat times each, and prints the medians. `est-scan` is the
`est` query with `from` one second past the first hour: not on whole hours, so the planner
sends it (realized metrics and estimates) to a scan of the raw events, the estimates' only
path before they were kept per hour. Each line says where the estimates came from
(`estimation.source`, absent before the hours kept them).

  python3 scripts/bench_estimates.py --bin target/release/modelwatch --days 5 --per-day 100000
"""

import argparse
import json
import math
import random
import statistics

from bench_http import post_days, request, serve


def score(rng):
    return min(max(1 / (1 + math.exp(-rng.gauss(0, 2))), 0.0), 1.0)


def send(url, model, days, per_day, rng):
    def event(i):
        s = round(score(rng), 6)
        return {"features": {"x": i % 7}, "prediction": int(s >= 0.5), "score": s}

    post_days(url, model, days, per_day, event)


def reference(rng, scored):
    lines = ["x,prediction,score,label" if scored else "x,prediction,label"]
    for i in range(5000):
        s = round(score(rng), 6)
        label = int(rng.random() < s ** 1.3)
        lines.append(f"{i % 7},{int(s >= 0.5)},{s},{label}" if scored else f"{i % 7},{int(s >= 0.5)},{label}")
    return ("\n".join(lines) + "\n").encode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--per-day", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    rng = random.Random(8)
    with serve(args.bin) as url:
        for model, scored in [("est", True), ("plain", False)]:
            request(f"{url}/v1/models/{model}/reference", reference(rng, scored), "PUT", "text/csv")
            send(url, model, args.days, args.per_day, rng)
        for name, model, q in [("est", "est", "window=1d"),
                               ("est-scan", "est", "window=1d&from=2026-01-01T00:00:01Z"),
                               ("plain", "plain", "window=1d")]:
            # The first query refreshes the hours and (est) fits and stores the estimator.
            _, body = request(f"{url}/v1/models/{model}/metrics?{q}")
            report = json.loads(body)
            times = [request(f"{url}/v1/models/{model}/metrics?{q}")[0] for _ in range(args.repeat)]
            est = report.get("estimation")
            print(f"{name}: {args.days} days x {args.per_day} predictions, "
                  f"median {statistics.median(times) * 1000:.0f} ms over {args.repeat} "
                  f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); "
                  f"estimation: {json.dumps(est)}; first window estimated: "
                  f"{json.dumps(report['windows'][0].get('estimated', {}).get('accuracy'))}")


if __name__ == "__main__":
    main()
