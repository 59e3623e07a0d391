"""The fairness view in headless Chromium, on the demo: fraud-demo's women are cleared less and
less often than men, so the four-fifths rule is crossed in the last days; churn-demo treats both
alike. The view's numbers are the API's for the same span; a screenshot of it is saved."""

import os

from conftest import wait_for_firing


def hover_titles(locator):
    """The hover texts of a chart: the <title> of each transparent rectangle."""
    return locator.locator("svg rect.hover title").evaluate_all("els => els.map(e => e.textContent)")


def span_of(page):
    span = page.page.locator("p[data-span-from]")
    return span.get_attribute("data-span-from"), span.get_attribute("data-span-to")


def test_the_fairness_view_shows_the_gap_growing_past_the_four_fifths_rule(demo, page, screenshots):
    wait_for_firing(demo, "fraud-demo", ["unfair-to-a-group"])
    page.goto(demo.url + "/models/fraud-demo/fairness?window=1d")
    frm, to = span_of(page)
    api = demo.request("GET", f"/v1/models/fraud-demo/fairness?window=1d&from={frm}&to={to}")
    sex = api["attributes"][0]
    assert sex["attribute"] == "tag:sex"
    windows = sex["windows"]
    violated = sum(w["four_fifths_rule"] == "violated" for w in windows)
    panel = page.page.locator('p[data-panel="fairness"][data-attribute="tag:sex"]')
    assert panel.get_attribute("data-windows") == str(len(windows))
    assert panel.get_attribute("data-violated") == str(violated)
    # The treatment worsens over the week: met at first, violated at the end.
    complete = [w for w in windows if not w["partial"]]
    assert complete[0]["four_fifths_rule"] == "met", complete[0]
    assert complete[-1]["four_fifths_rule"] == "violated", complete[-1]
    assert violated >= 1
    # The groups side by side with their bands, the ratio with its band, the four-fifths line
    # and the rule watching it, one hover per window.
    rates = page.page.locator('figure[data-chart="fairness-0-rates"]')
    assert rates.get_attribute("data-series").split("|")[:4] == ["F", "F 95% CI", "M", "M 95% CI"]
    ratio = page.page.locator('figure[data-chart="fairness-0-ratio"]')
    series = ratio.get_attribute("data-series").split("|")
    assert series[:2] == ["ratio", "ratio 95% CI"], series
    assert "four-fifths rule: 0.8" in series, series
    assert any(s.startswith("rule unfair-to-a-group") for s in series), series
    assert len(hover_titles(ratio)) == len(windows)
    # The latest complete window's table holds the API's counts.
    latest = complete[-1]
    for g in latest["groups"]:
        row = page.page.locator(f'table.fairness tr[data-group="{g["group"]}"]')
        cells = row.locator("td").all_inner_texts()
        assert cells[1] == str(g["predictions"]), cells
        assert cells[2] == f'{g["selection_rate"]["value"]:.3f}', cells
    page.page.screenshot(path=os.path.join(screenshots, "fairness.png"), full_page=True)
    with open(os.path.join(screenshots, "fairness.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The healthy model: the rule never crossed.
    page.goto(demo.url + "/models/churn-demo/fairness?window=1d")
    assert page.page.locator('p[data-panel="fairness"]').get_attribute("data-violated") == "0"
    assert page.problems == [], page.problems


def test_a_model_without_a_fairness_setting_says_so(server, page):
    page.goto(server.url + "/models/credit/fairness?range=all&window=1d")
    text = page.page.locator("main, body").first.inner_text()
    assert "names no protected attributes" in text, text[:2000]
    assert page.problems == [], page.problems
