"""A regression model's label-free MAE and RMSE (direct loss estimation, ADR 013) on the model
page: the estimate and its ± 3σ band drawn under the realized value, in every window, labelled
or not, with the API's numbers on hover; and a screenshot of it."""

import json
import os
import random
from datetime import datetime, timedelta, timezone

import pytest

from conftest import Process

MODEL = "prices"
DAYS = 6
LABELLED_DAYS = 3


def _error(rng, x, c):
    """The model errs by about 0.2 + x, twice that for category `w`."""
    return rng.choice([-1, 1]) * (0.2 + x) * (2.0 if c == "w" else 1.0) * (0.5 + rng.random())


def _row(rng, day):
    """From the fourth day on, traffic moves to high `x` and category `w`, where the model errs
    more."""
    drift = max(0, day - 2) / 3
    x = min(1.0, rng.random() * (1 - drift) + drift * (0.7 + 0.3 * rng.random()))
    c = "w" if rng.random() < drift else rng.choice("uvw")
    return x, c, 10 * rng.random()


def _seed(server):
    rng = random.Random(13)
    reference = []
    for _ in range(2000):
        x, c, p = _row(rng, 0)
        reference.append({"features": {"x": x, "c": c}, "prediction": p, "label": p + _error(rng, x, c)})
    server.request("PUT", f"/v1/models/{MODEL}/reference",
                   "\n".join(json.dumps(r) for r in reference), "application/x-ndjson")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    preds, labels = [], []
    for d in range(DAYS):
        for i in range(400):
            x, c, p = _row(rng, d)
            rid = f"r-{d}-{i}"
            preds.append({
                "request_id": rid,
                "timestamp": (start + timedelta(days=d, seconds=i * 216)).isoformat().replace("+00:00", "Z"),
                "features": {"x": x, "c": c}, "prediction": p,
            })
            if d < LABELLED_DAYS:
                labels.append({"request_id": rid, "label": p + _error(rng, x, c)})
    server.request("POST", f"/v1/models/{MODEL}/predictions", json.dumps(preds))
    server.request("POST", f"/v1/models/{MODEL}/labels", json.dumps(labels))


@pytest.fixture(scope="module")
def prices():
    s = Process(["serve"])
    try:
        _seed(s)
        yield s
    finally:
        s.stop()


def test_estimated_mae_and_rmse_are_drawn_with_their_band(prices, page, screenshots):
    api = prices.request("GET", f"/v1/models/{MODEL}/metrics?window=1d")
    assert api["estimation"]["method"] == "dle"
    windows = api["windows"]
    assert len(windows) == DAYS
    page.goto(f"{prices.url}/models/{MODEL}?range=all&window=1d")
    for metric in ["mae", "rmse"]:
        fig = page.page.locator(f'figure[data-chart="{metric}"]')
        assert fig.get_attribute("data-series").startswith(
            f"estimated {metric}|estimated {metric} ± 3σ|{metric}|{metric} 95% CI")
        titles = fig.locator("svg rect.hover title").evaluate_all("els => els.map(e => e.textContent)")
        assert len(titles) == DAYS
        for w, title in zip(windows, titles):
            e = w["estimated"][metric]
            est = next(line for line in title.split("\n") if line.startswith(f"estimated {metric}: "))
            value, band = est.split(": ", 1)[1].split(" (± 3σ ")
            lo, hi = band.rstrip(")").split(" – ")
            assert abs(float(value) - e["value"]) < 1e-4, (est, e)
            assert abs(float(lo) - e["ci_low"]) < 1e-4 and abs(float(hi) - e["ci_high"]) < 1e-4, (est, e)
    # The drift shows in the estimate before any label of those days.
    assert windows[-1]["estimated"]["mae"]["value"] > 1.5 * windows[0]["estimated"]["mae"]["value"]
    fig = page.page.locator('figure[data-chart="mae"]')
    fig.screenshot(path=os.path.join(screenshots, "estimated-regression.png"))
    with open(os.path.join(screenshots, "estimated-regression.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.problems == [], page.problems
