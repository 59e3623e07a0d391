#!/usr/bin/env python3
"""Cost of the label-free MAE / RMSE of a regression model (direct loss estimation, ADR 013) on
`GET /v1/models/{m}/metrics`. Standard library only.

Starts `modelwatch serve` on a fresh data directory, sends --days days of --per-day regression
predictions (two features, no labels) to two models, uploads a labelled reference to one of
them (`est`: its windows carry `estimated.mae` / `estimated.rmse`) and none to the other
(`plain`: no estimates, the per-hour aggregates only), then times the same daily metrics query
on both, --repeat times each, and prints the medians. The first query of `est` fits the
estimator and builds every hour's estimation state (each prediction's loss predicted once): its
time is printed as `first`. `est-scan` is the `est` query with `from` one second past the first
hour: not on whole hours, so the planner sends it to a scan of the raw events.

  python3 scripts/bench_dle.py --bin target/release/modelwatch --days 30 --per-day 100000
"""

import argparse
import json
import random
import statistics

from bench_http import post_days, request, serve


def error(rng, x, c):
    return rng.choice([-1, 1]) * (0.2 + x) * (2.0 if c == "w" else 1.0) * (0.5 + rng.random())


def send(url, model, days, per_day, rng):
    def event(_):
        return {"features": {"x": round(rng.random(), 4), "c": rng.choice("uvw")},
                "prediction": round(10 * rng.random(), 4)}

    post_days(url, model, days, per_day, event)


def reference(rng):
    lines = ["x,c,prediction,label"]
    for _ in range(5000):
        x, c, p = round(rng.random(), 4), rng.choice("uvw"), round(10 * rng.random(), 4)
        lines.append(f"{x},{c},{p},{p + error(rng, x, c):.4f}")
    return ("\n".join(lines) + "\n").encode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--per-day", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    rng = random.Random(13)
    with serve(args.bin) as url:
        for model in ["est", "plain"]:
            send(url, model, args.days, args.per_day, rng)
            # The realized metrics' hours first, so that `first` below is the estimates' own.
            request(f"{url}/v1/models/{model}/metrics?window=1d")
        request(f"{url}/v1/models/est/reference", reference(rng), "PUT", "text/csv")
        for name, model, q in [("est", "est", "window=1d"),
                               ("est-scan", "est", "window=1d&from=2026-01-01T00:00:01Z"),
                               ("plain", "plain", "window=1d")]:
            first, body = request(f"{url}/v1/models/{model}/metrics?{q}")
            report = json.loads(body)
            times = [request(f"{url}/v1/models/{model}/metrics?{q}")[0] for _ in range(args.repeat)]
            print(f"{name}: {args.days} days x {args.per_day} predictions, first {first * 1000:.0f} ms, "
                  f"then median {statistics.median(times) * 1000:.0f} ms over {args.repeat} "
                  f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); "
                  f"estimation: {json.dumps(report.get('estimation'))}; first window estimated: "
                  f"{json.dumps(report['windows'][0].get('estimated'))}")


if __name__ == "__main__":
    main()
