"""The label-free estimate on the model page: for a metric, the estimate and its ± 3σ band are
drawn beside the realized value, in windows whose labels have not arrived (estimate alone) and
in windows whose labels have (both, so the estimate is seen confirmed), with the API's numbers
on hover; and a screenshot of it."""

import json
import os
import random
from datetime import datetime, timedelta, timezone

import pytest

from conftest import Process

MODEL = "delayed"
DAYS = 4
LABELLED_DAYS = 2


def _seed(server):
    """A labelled, scored reference; four days of predictions, labels for the first two only
    (as with a label delay)."""
    rng = random.Random(22)
    reference = []
    for _ in range(2000):
        score = rng.random()
        reference.append({"features": {"x": rng.random()}, "prediction": int(score >= 0.5),
                          "score": score, "label": int(rng.random() < score ** 1.2)})
    server.request("PUT", f"/v1/models/{MODEL}/reference",
                   "\n".join(json.dumps(r) for r in reference), "application/x-ndjson")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    preds, labels = [], []
    for d in range(DAYS):
        for i in range(600):
            # Later days drift towards the decision boundary: the model gets less sure.
            score = min(max(0.5 + (rng.random() - 0.5) * (1.0 - 0.2 * d), 0.0), 1.0)
            rid = f"r-{d}-{i}"
            preds.append({
                "request_id": rid,
                "timestamp": (start + timedelta(days=d, seconds=i * 144)).isoformat().replace("+00:00", "Z"),
                "features": {"x": rng.random()}, "prediction": int(score >= 0.5), "score": score,
            })
            if d < LABELLED_DAYS:
                labels.append({"request_id": rid, "label": int(rng.random() < score ** 1.2)})
    server.request("POST", f"/v1/models/{MODEL}/predictions", json.dumps(preds))
    server.request("POST", f"/v1/models/{MODEL}/labels", json.dumps(labels))


@pytest.fixture(scope="module")
def delayed():
    s = Process(["serve"])
    try:
        _seed(s)
        yield s
    finally:
        s.stop()


def hover_titles(locator):
    return locator.locator("svg rect.hover title").evaluate_all("els => els.map(e => e.textContent)")


def line_of(title, name):
    """The hover line `name: ...` of a window's hover text."""
    return next(line for line in title.split("\n") if line.startswith(f"{name}: "))


def test_estimate_and_realized_are_drawn_together_with_the_band(delayed, page, screenshots):
    api = delayed.request("GET", f"/v1/models/{MODEL}/metrics?window=1d")
    windows = api["windows"]
    assert len(windows) == DAYS
    assert [w["labelled"] > 0 for w in windows] == [True] * LABELLED_DAYS + [False] * (DAYS - LABELLED_DAYS)
    assert all("accuracy" in w["estimated"] for w in windows)
    page.goto(f"{delayed.url}/models/{MODEL}?range=all&window=1d")
    for metric in ["accuracy", "precision", "recall", "f1"]:
        fig = page.page.locator(f'figure[data-chart="{metric}"]')
        assert fig.get_attribute("data-series") == (
            f"estimated {metric}|estimated {metric} ± 3σ|{metric}|{metric} 95% CI|baseline")
        texts = set(fig.locator("svg text").evaluate_all("els => els.map(e => e.textContent.trim())"))
        assert {f"estimated {metric}", f"estimated {metric} ± 3σ", metric} <= texts, texts
        # Two bands (the estimate's over all four days, the realized one over the labelled
        # two) and two lines.
        assert fig.locator("svg polygon").count() >= 2
        assert fig.locator("svg polyline").count() >= 3  # two lines and the dashed baseline
        titles = hover_titles(fig)
        assert len(titles) == DAYS
        for w, title in zip(windows, titles):
            e = w["estimated"][metric]
            est = line_of(title, f"estimated {metric}")
            # The estimate and its band, as the API answers them, in every window.
            assert "± 3σ" in est, est
            value, band = est.split(": ", 1)[1].split(" (± 3σ ")
            lo, hi = band.rstrip(")").split(" – ")
            assert abs(float(value) - e["value"]) < 1e-4, (est, e)
            assert abs(float(lo) - e["ci_low"]) < 1e-4 and abs(float(hi) - e["ci_high"]) < 1e-4, (est, e)
            realized = line_of(title, metric)
            if w["labelled"]:
                # Labelled: the realized value beside the estimate.
                assert abs(float(realized.split(": ")[1].split(" ")[0]) - w[metric]["value"]) < 1e-4, realized
            else:
                # No labels yet: only the estimate.
                assert realized == f"{metric}: —", realized
    # The estimate's band is drawn where there are no labels: its polygon reaches the last
    # window's column, past the realized band's.
    fig = page.page.locator('figure[data-chart="accuracy"]')
    last_column = fig.locator("svg rect.hover").nth(DAYS - 1).bounding_box()
    xs = fig.locator("svg polygon").evaluate_all(
        "els => els.map(e => Math.max(...e.getAttribute('points').trim().split(/\\s+/).map(p => parseFloat(p.split(',')[0]))))")
    svg_box = fig.locator("svg").bounding_box()
    right_edges = [svg_box["x"] + x * svg_box["width"] / float(fig.locator("svg").get_attribute("width")) for x in xs]
    assert max(right_edges) > last_column["x"], (right_edges, last_column)
    assert min(right_edges) < last_column["x"], (right_edges, last_column)
    fig.screenshot(path=os.path.join(screenshots, "estimated.png"))
    with open(os.path.join(screenshots, "estimated.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.problems == [], page.problems
