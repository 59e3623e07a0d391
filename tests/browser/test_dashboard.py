"""The dashboard in headless Chromium: pages load cleanly, charts draw the expected series, the
time-range picker changes the data, user strings are text, and screenshots of the demo."""

import os

from conftest import HOURS, MODEL, XSS

def svg_texts(locator):
    """The text of every <text> of a chart (SVG elements have no innerText)."""
    return locator.locator("svg text").evaluate_all("els => els.map(e => e.textContent.trim())")


VIEWS = ["", "/drift", "/quality", "/segments", "/versions", "/alerts"]


def test_overview_and_model_pages_load_without_console_errors(server, page):
    page.goto(server.url + "/?range=all")
    assert page.page.locator(f'tr[data-model="{MODEL}"] a').inner_text() == MODEL
    page.page.click(f'tr[data-model="{MODEL}"] a')
    page.page.wait_for_load_state()
    assert page.page.url.startswith(f"{server.url}/models/{MODEL}?")
    for view in VIEWS:
        page.goto(f"{server.url}/models/{MODEL}{view}?range=all&window=1h")
        assert page.page.locator("h1").first.inner_text() == MODEL
        # Every tab link keeps the view's parameters.
        hrefs = page.page.eval_on_selector_all("nav.tabs a", "els => els.map(e => e.getAttribute('href'))")
        assert len(hrefs) == len(VIEWS) and all("range=all" in h for h in hrefs), hrefs
    assert page.problems == [], page.problems
    assert page.dialogs == []


def test_charts_contain_the_expected_series(server, page):
    page.goto(f"{server.url}/models/{MODEL}?range=all&window=1h")
    for metric in ["accuracy", "precision", "recall", "f1"]:
        fig = page.page.locator(f'figure[data-chart="{metric}"]')
        assert fig.get_attribute("data-series") == f"{metric}|{metric} 95% CI|baseline"
        assert fig.get_attribute("data-windows") == str(HOURS)
        texts = svg_texts(fig)
        for legend in [metric, f"{metric} 95% CI", "baseline"]:
            assert legend in texts, (metric, texts)
        assert fig.locator("svg polyline").count() >= 2  # the metric and the dashed baseline
        assert fig.locator("svg polygon").count() >= 1  # the confidence band
        box = fig.locator("svg").bounding_box()
        assert box["width"] > 300 and box["height"] > 100
    latency = page.page.locator('figure[data-chart="latency"]')
    assert latency.get_attribute("data-series") == "p50|p95|p99"
    volume = page.page.locator('figure[data-chart="volume"]')
    assert volume.locator("svg rect").count() >= HOURS  # one bar per window
    page.goto(f"{server.url}/models/{MODEL}/drift?range=all&window=1d")
    heat = page.page.locator("div.heat")
    assert heat.get_attribute("data-heatmap-columns") == "3"
    assert int(heat.get_attribute("data-heatmap-rows")) >= 3
    dist = page.page.locator('figure[data-chart="distribution"][data-feature="age"]')
    assert set(["reference", "current"]) <= set(svg_texts(dist))
    assert page.problems == [], page.problems


def test_time_range_picker_changes_the_data(server, page):
    page.goto(f"{server.url}/models/{MODEL}?range=all&window=1h")
    volume = page.page.locator('figure[data-chart="volume"]')
    assert volume.get_attribute("data-windows") == str(HOURS)
    before = page.page.locator("p[data-span-from]").get_attribute("data-span-from")
    page.page.select_option('select[name="range"]', "24h")
    page.page.click('form.pickers button[type="submit"]')
    page.page.wait_for_url("**range=24h**")
    volume = page.page.locator('figure[data-chart="volume"]')
    assert volume.get_attribute("data-windows") == "24"
    after = page.page.locator("p[data-span-from]").get_attribute("data-span-from")
    assert after != before
    assert page.page.locator('select[name="range"]').input_value() == "24h"
    # The window picker too: a day per point.
    page.page.select_option('select[name="window"]', "1d")
    page.page.click('form.pickers button[type="submit"]')
    page.page.wait_for_url("**window=1d**")
    assert page.page.locator('figure[data-chart="volume"]').get_attribute("data-windows") == "1"
    assert page.problems == [], page.problems


def test_a_script_as_feature_name_is_shown_as_text(server, page):
    for view in ["/drift", "/quality"]:
        page.goto(f"{server.url}/models/{MODEL}{view}?range=all&window=1d")
        texts = page.page.locator("td").all_inner_texts()
        assert XSS in texts, texts[:20]
        assert page.page.locator("script").count() == 0
    page.goto(f"{server.url}/models/{MODEL}/drift?range=all&window=1d")
    assert page.page.get_by_text(XSS, exact=True).first.is_visible()
    assert page.dialogs == [], "alert() ran"
    assert page.problems == [], page.problems


def test_screenshots_of_the_demo(demo, page, screenshots):
    page.page.set_viewport_size({"width": 1360, "height": 300})
    page.goto(demo.url + "/")
    assert page.page.locator("tr[data-model]").count() == 2
    page.page.screenshot(path=os.path.join(screenshots, "overview.png"), full_page=True)
    page.page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(demo.url + "/models/fraud-demo")
    page.page.screenshot(path=os.path.join(screenshots, "model.png"), full_page=True)
    page.goto(demo.url + "/models/fraud-demo/drift")
    page.page.screenshot(path=os.path.join(screenshots, "drift.png"), full_page=True)
    for name in ["overview.png", "model.png", "drift.png"]:
        with open(os.path.join(screenshots, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.problems == [], page.problems
