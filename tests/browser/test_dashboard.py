"""The dashboard in headless Chromium: pages load cleanly, charts draw the expected series, the
time-range picker changes the data, user strings are text, the demo's alerts show in the alerts
panel, a login with API keys, the change summary and acknowledging an alert, and screenshots of
the demo."""

import json
import urllib.error
import os
from datetime import datetime, timedelta, timezone

from conftest import HOURS, MODEL, XSS, Process, poll, wait_for_firing

DEMO_RULES = ["inputs-drifted", "inputs-drifted-together", "inputs-told-apart", "concept-changed", "accuracy-below-reference",
              "f1-below-reference", "unfair-to-a-group", "latency-slo-burn",
              "unusual-inputs", "client-probing"]

def svg_texts(locator):
    """The text of every <text> of a chart (SVG elements have no innerText)."""
    return locator.locator("svg text").evaluate_all("els => els.map(e => e.textContent.trim())")


VIEWS = ["", "/drift", "/quality", "/segments", "/versions", "/feedback", "/fairness", "/attributions", "/concept",
         "/alerts", "/jobs"]


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
        # The label-free estimate with its band (the reference is labelled and scored), then
        # the realized metric with its confidence band, then the baseline.
        assert fig.get_attribute("data-series") == (
            f"estimated {metric}|estimated {metric} ± 3σ|{metric}|{metric} 95% CI|baseline")
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
    # Few windows get wide cells (28 px), many get narrow ones (72 hours: 640 / 72 = 8 px).
    cell = heat.locator("td[data-p]").first.bounding_box()
    assert 26 <= cell["width"] <= 30, cell
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


def test_the_demo_shows_its_firing_alerts(demo, page):
    alerts = wait_for_firing(demo, "fraud-demo", DEMO_RULES)
    page.goto(demo.url + "/models/fraud-demo/alerts")
    panel = page.page.locator('div[data-panel="alerts"]')
    assert panel.get_attribute("data-open-alerts") == str(len(DEMO_RULES))
    for rule in DEMO_RULES:
        row = page.page.locator(f'tr[data-alert-state="firing"][data-rule="{rule}"]')
        assert row.is_visible(), rule
        cells = row.locator("td").all_inner_texts()
        assert cells[0].startswith("firing"), cells
        assert cells[1].startswith(rule), cells
        assert cells[2] == alerts[rule]["severity"] and cells[3] == alerts[rule]["decision"], cells
        assert cells[4] == alerts[rule]["signal"], cells
    # The values move as the demo's data arrives: each against its own rule.
    value = lambda rule: float(page.page.locator(
        f'tr[data-alert-state="firing"][data-rule="{rule}"] td[data-value]').get_attribute("data-value"))
    assert value("inputs-drifted") > 0.25
    row = page.page.locator('tr[data-alert-state="firing"][data-rule="accuracy-below-reference"]')
    assert "more than 10 % below the baseline, significant" in row.inner_text()
    baseline = float(row.locator("td[data-value] div.s").inner_text().removeprefix("baseline "))
    assert value("accuracy-below-reference") < 0.9 * baseline
    # The F1 alert lists its likely causes: amount, the drifted feature, first, as the API has it.
    causes = page.page.locator('div.causes[data-causes="f1-below-reference"]')
    assert causes.is_visible()
    first = causes.locator('tr[data-cause-feature]').first
    assert first.get_attribute("data-rank") == "1"
    assert first.get_attribute("data-cause-feature") == alerts["f1-below-reference"]["causes"]["features"][0]["feature"] == "amount"
    assert "drifted" in first.inner_text()
    worst = alerts["f1-below-reference"]["causes"]["segments"][0]["segment"]
    assert causes.locator("tr[data-segment]").first.get_attribute("data-segment") == worst
    # Its history: pending, then firing, newest first.
    history = page.page.locator('table.alert-history tr[data-rule="accuracy-below-reference"]')
    transitions = [history.nth(i).get_attribute("data-transition") for i in range(history.count())]
    assert transitions[-2:] == ["firing", "pending"], transitions
    # The tab counts them; the overview too, and links to the panel.
    assert page.page.locator('nav.tabs a.active span.count').inner_text() == str(len(DEMO_RULES))
    page.goto(demo.url + "/")
    fraud = page.page.locator('tr[data-model="fraud-demo"] a[data-open-alerts]')
    assert fraud.inner_text() == str(len(DEMO_RULES))
    # The healthy model opens none; if it does, the message names the rule and its value.
    churn_open = [(a["rule"], a["state"], a.get("value"), a.get("active_at"))
                  for a in demo.request("GET", "/v1/alerts?model=churn-demo")["alerts"]
                  if a["state"] in ("pending", "firing")]
    assert page.page.locator('tr[data-model="churn-demo"] [data-open-alerts]').inner_text() == "0", churn_open
    fraud.click()
    page.page.wait_for_url("**/models/fraud-demo/alerts**")
    assert page.page.locator('tr[data-alert-state="firing"]').count() == len(DEMO_RULES)
    # The model page says it at the top.
    page.goto(demo.url + "/models/fraud-demo")
    banner = page.page.locator('div[data-panel="alert-banner"]')
    assert banner.is_visible() and f"{len(DEMO_RULES)} firing" in banner.inner_text()
    assert page.problems == [], page.problems


def test_with_api_keys_a_browser_logs_in(browser):
    keys = {"MODELWATCH_READ_KEYS": "read-key-0123456789abcdef",
            "MODELWATCH_INGEST_KEYS": "ingest-key-0123456789abcdef"}
    s = Process(["serve"], env=keys)
    try:
        s.request("POST", f"/v1/models/{MODEL}/predictions",
                  json.dumps([{"request_id": "a", "prediction": 1, "features": {"x": 1}}]),
                  key=keys["MODELWATCH_INGEST_KEYS"])
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(f"{s.url}/models/{MODEL}/alerts")
        assert page.url.startswith(f"{s.url}/login?next="), page.url
        page.fill('input[name="key"]', "not-a-key-0123456789abcdef")
        page.click('form.login button[type="submit"]')
        assert page.locator("[data-login-error]").is_visible()
        assert ctx.cookies() == []
        page.fill('input[name="key"]', keys["MODELWATCH_READ_KEYS"])
        page.click('form.login button[type="submit"]')
        page.wait_for_url(f"{s.url}/models/{MODEL}/alerts")
        assert page.locator("h1").first.inner_text() == MODEL
        assert page.locator('div[data-panel="alerts"]').is_visible()
        [cookie] = ctx.cookies()
        assert cookie["name"] == "modelwatch_session" and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        page.goto(s.url + "/")
        assert page.locator(f'tr[data-model="{MODEL}"]').is_visible()
        # The cookie opens the pages, not the API.
        assert ctx.request.get(s.url + "/v1/models").status == 401
        ctx.close()
    finally:
        s.stop()


def hover_titles(locator):
    """The hover texts of a chart: the <title> of each transparent rectangle."""
    return locator.locator("svg rect.hover title").evaluate_all("els => els.map(e => e.textContent)")


def test_every_chart_shows_its_values_on_hover_and_legends_stay_off_the_data(server, page):
    page.goto(f"{server.url}/models/{MODEL}?range=all&window=1h")
    metrics = server.request("GET", f"/v1/models/{MODEL}/metrics?window=1h")
    windows = {w["start"]: w for w in metrics["windows"]}
    figs = page.page.locator("figure.chart")
    assert figs.count() >= 9
    for i in range(figs.count()):
        fig = figs.nth(i)
        assert len(hover_titles(fig)) > 0, fig.get_attribute("data-chart")
    titles = hover_titles(page.page.locator('figure[data-chart="accuracy"]'))
    assert len(titles) == HOURS
    # The hover text is the API's value of that window.
    first = titles[0].split("\n")
    assert first[0] == "2026-01-01 00:00 → 01:00 UTC", first
    realized = next(line for line in first if line.startswith("accuracy: "))
    value = float(realized.split(": ")[1].split(" ")[0])
    assert abs(value - windows["2026-01-01T00:00:00Z"]["accuracy"]["value"]) < 1e-4
    # Chromium shows the title of the rectangle under the pointer: it is the top element there.
    rect = page.page.locator('figure[data-chart="accuracy"] svg rect.hover').nth(10)
    box = rect.bounding_box()
    top = page.page.evaluate(
        "([x, y]) => { const e = document.elementFromPoint(x, y); return e && e.querySelector('title') && e.querySelector('title').textContent }",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    assert top == titles[10]
    # Legends sit above the plot: every legend text ends above the first hover column's top.
    for chart in ["accuracy", "latency", "volume"]:
        fig = page.page.locator(f'figure[data-chart="{chart}"]')
        plot_top = fig.locator("svg rect.hover").first.bounding_box()["y"]
        names = fig.get_attribute("data-series").split("|")
        texts = fig.locator("svg text")
        seen = set()
        for j in range(texts.count()):
            t = texts.nth(j)
            if t.text_content().strip() in names:  # the title and the legend entries
                b = t.bounding_box()
                assert b["y"] + b["height"] <= plot_top + 1, (chart, t.text_content(), b, plot_top)
                seen.add(t.text_content().strip())
        assert seen == set(names), (chart, seen, names)
    # The drift heatmap: dates on its axis, p-values in its cells.
    page.goto(f"{server.url}/models/{MODEL}/drift?range=all&window=1h")
    axis = page.page.locator("div.heat tr.axis th.axis").all_inner_texts()
    assert axis == ["01-01", "01-02", "01-03"], axis
    hourly = page.page.locator("div.heat td[data-p]").first.bounding_box()
    assert 7 <= hourly["width"] <= 10, hourly
    cell = page.page.locator("div.heat td[data-p]").first.get_attribute("title")
    assert "p = " in cell and "adjusted p = " in cell and "2026-01-01 00:00 → 01:00 UTC" in cell, cell
    dist = page.page.locator('figure[data-chart="distribution"][data-feature="age"]')
    assert any(t.startswith("age: ") and "reference: " in t for t in hover_titles(dist))
    assert page.problems == [], page.problems


def test_rule_thresholds_are_drawn_on_the_charts_they_watch(server, page):
    server.request("POST", f"/v1/models/{MODEL}/rules", json.dumps({
        "name": "accuracy-floor", "signal": "accuracy", "window": "1d",
        "condition": {"kind": "threshold", "op": "<", "value": 0.4}, "decision": "retrain", "severity": "warning"}))
    try:
        page.goto(f"{server.url}/models/{MODEL}?range=all&window=1h")
        fig = page.page.locator('figure[data-chart="accuracy"]')
        assert fig.get_attribute("data-series").endswith("|rule accuracy-floor: < 0.4")
        assert "rule accuracy-floor: < 0.4" in svg_texts(fig)
        assert "rule accuracy-floor: < 0.4" in hover_titles(fig)[0]
        # Only there: the F1 chart has no rule.
        assert "rule" not in page.page.locator('figure[data-chart="f1"]').get_attribute("data-series")
    finally:
        server.request("DELETE", f"/v1/models/{MODEL}/rules/accuracy-floor")
    assert page.problems == [], page.problems


def test_a_window_in_detail_confusion_matrix_and_calibration(server, page):
    page.goto(f"{server.url}/models/{MODEL}?range=all&window=1h")
    metrics = server.request("GET", f"/v1/models/{MODEL}/metrics?window=1h")
    by_start = {w["start"]: w for w in metrics["windows"]}
    detail = page.page.locator('[data-panel="window-detail"]')
    # The latest window is partial (it holds the last event): the detail is the one before.
    last_complete = [w for w in metrics["windows"] if not w["partial"]][-1]
    assert metrics["windows"][-1]["partial"] is True
    assert detail.get_attribute("data-window") == last_complete["start"]

    def matrix():
        table = page.page.locator('table.confusion[data-confusion="binary"]')
        cells = {}
        for true in ["0", "1"]:
            for pred in ["0", "1"]:
                cells[(true, pred)] = int(table.locator(
                    f'tr[data-true="{true}"] td[data-predicted="{pred}"]').inner_text())
        return cells

    def expected(w):
        c = w["confusion_matrix"]
        return {("0", "0"): c["tn"], ("0", "1"): c["fp"], ("1", "0"): c["fn"], ("1", "1"): c["tp"]}

    assert matrix() == expected(last_complete)
    # Pick another window: the page's `at` selects it, the matrix is that window's.
    page.page.select_option('form.window-picker select[name="at"]', "2026-01-02T05:00:00Z")
    page.page.click('form.window-picker button[type="submit"]')
    page.page.wait_for_url("**at=2026-01-02T05%3A00%3A00Z**")
    assert page.page.locator('[data-panel="window-detail"]').get_attribute("data-window") == "2026-01-02T05:00:00Z"
    assert matrix() == expected(by_start["2026-01-02T05:00:00Z"])
    assert page.page.locator('select[name="range"]').input_value() == "all"
    rel = page.page.locator('figure[data-chart="reliability"]')
    bins = by_start["2026-01-02T05:00:00Z"]["reliability"]
    assert rel.get_attribute("data-bins") == str(len(bins))
    titles = hover_titles(rel)
    assert len(titles) == len(bins)
    assert f"{bins[0]['count']} rows" in titles[0]
    assert page.problems == [], page.problems


def test_feedback_and_jobs_views(server, page):
    page.goto(f"{server.url}/models/{MODEL}/feedback?range=all&window=1d")
    panel = page.page.locator('[data-panel="feedback"]')
    api = server.request("GET", f"/v1/models/{MODEL}/feedback?window=1d")
    assert panel.get_attribute("data-windows") == str(len(api["windows"]))
    assert panel.get_attribute("data-collapsed") == str(sum(w["collapsed"] for w in api["windows"]))
    for chart in ["entropy", "top_class_share"]:
        fig = page.page.locator(f'figure[data-chart="{chart}"]')
        assert "reference" in fig.get_attribute("data-series").split("|")
        assert len(hover_titles(fig)) == len(api["windows"])
    assert page.page.locator("table.feedback tr[data-window]").count() == len(api["windows"])
    # Jobs: nothing reported yet, then a failed run and a watched, successful one.
    page.goto(f"{server.url}/models/{MODEL}/jobs")
    assert page.page.locator('[data-empty="jobs"]').is_visible()
    server.request("POST", f"/v1/models/{MODEL}/heartbeats",
                   json.dumps({"job": "nightly-scoring", "status": "failed", "message": "disk full"}))
    server.request("POST", f"/v1/models/{MODEL}/heartbeats", json.dumps({"job": "retrain", "status": "success"}))
    server.request("POST", f"/v1/models/{MODEL}/rules", json.dumps({
        "name": "retrain-ran", "signal": "heartbeat:retrain", "decision": "retrain", "severity": "warning",
        "condition": {"kind": "heartbeat", "max_age": "7d"}}))
    try:
        page.goto(f"{server.url}/models/{MODEL}/jobs")
        failed = page.page.locator('tr[data-job="nightly-scoring"]')
        assert failed.locator("[data-job-status]").get_attribute("data-job-status") == "failed"
        assert "disk full" in failed.inner_text()
        ok = page.page.locator('tr[data-job="retrain"]')
        assert ok.locator("[data-job-status]").get_attribute("data-job-status") == "ok"
        assert "retrain-ran (7d)" in ok.inner_text()
    finally:
        server.request("DELETE", f"/v1/models/{MODEL}/rules/retrain-ran")
    assert page.problems == [], page.problems


def test_the_default_view_fits_the_data(server, page):
    # No parameters: the last week, but never before the first event, in windows that fit.
    page.goto(f"{server.url}/models/{MODEL}")
    span = page.page.locator("p[data-span-from]")
    assert span.get_attribute("data-span-from") == "2026-01-01T00:00:00Z"
    assert page.page.locator('figure[data-chart="volume"]').get_attribute("data-windows") == str(HOURS)
    assert page.page.locator('select[name="window"]').input_value() == ""
    assert page.problems == [], page.problems


def test_screenshots_of_the_demo(demo, page, screenshots):
    # After the demo's alerts fired, so that the pictures show them.
    wait_for_firing(demo, "fraud-demo", DEMO_RULES)
    page.page.set_viewport_size({"width": 1360, "height": 300})
    wait_for_credit_history(demo)
    page.goto(demo.url + "/")
    assert page.page.locator("tr[data-model]").count() == 3
    page.page.screenshot(path=os.path.join(screenshots, "overview.png"), full_page=True)
    page.page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(demo.url + "/models/fraud-demo")
    page.page.screenshot(path=os.path.join(screenshots, "model.png"), full_page=True)
    page.goto(demo.url + "/models/fraud-demo/drift")
    page.page.screenshot(path=os.path.join(screenshots, "drift.png"), full_page=True)
    page.goto(demo.url + "/models/fraud-demo/alerts")
    page.page.screenshot(path=os.path.join(screenshots, "alerts.png"), full_page=True)
    page.page.locator('div.causes[data-causes="f1-below-reference"]').screenshot(
        path=os.path.join(screenshots, "alert-causes.png"))
    page.goto(demo.url + "/models/fraud-demo/feedback")
    page.page.screenshot(path=os.path.join(screenshots, "feedback.png"), full_page=True)
    # Concept drift: one strip per version, a dot per change point the API reports.
    page.goto(demo.url + "/models/fraud-demo/concept?range=all&window=1d")
    api = demo.request("GET", "/v1/models/fraud-demo/concept?window=1d")
    strips = page.page.locator('figure[data-chart="concept_changes"]')
    assert strips.count() == len(api["versions"]) >= 2
    for v in api["versions"]:
        strip = page.page.locator(f'figure[data-chart="concept_changes"][data-version="{v["version"]}"]')
        dots = strip.locator("circle[data-detector]")
        assert dots.count() == len(v["changes"]), v["version"]
        assert strip.locator("circle[data-detector=adwin]").count() == sum(
            c["detector"] == "adwin" for c in v["changes"])
    # adwin, which the demo's concept rule watches, is named so.
    assert "adwin (rule)" in svg_texts(strips.first), svg_texts(strips.first)
    page.page.screenshot(path=os.path.join(screenshots, "concept.png"), full_page=True)
    page.goto(demo.url + "/models/fraud-demo/quality")
    assert page.page.locator('table.probing tr', has_text="scraper-7").count() >= 1
    page.page.locator("section.outliers").screenshot(path=os.path.join(screenshots, "outliers.png"))
    page.goto(demo.url + "/models/churn-demo")
    page.page.locator("section.window-detail").screenshot(path=os.path.join(screenshots, "window.png"))
    # Jobs: a watched job that ran, and one whose last run failed.
    ago = lambda hours: (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    for job, status, hours, message in [("retrain", "success", 30, None), ("retrain", "success", 6, None),
                                        ("nightly-scoring", "success", 26, None),
                                        ("nightly-scoring", "failed", 2, "input table missing")]:
        demo.request("POST", "/v1/models/fraud-demo/heartbeats", json.dumps(
            {"job": job, "status": status, "timestamp": ago(hours), **({"message": message} if message else {})}))
    demo.request("POST", "/v1/models/fraud-demo/rules", json.dumps({
        "name": "retrain-ran", "signal": "heartbeat:retrain", "decision": "retrain", "severity": "warning",
        "condition": {"kind": "heartbeat", "max_age": "7d"}}))
    page.goto(demo.url + "/models/fraud-demo/jobs")
    page.page.screenshot(path=os.path.join(screenshots, "jobs.png"), full_page=True)
    for name in ["overview.png", "model.png", "drift.png", "alerts.png", "alert-causes.png", "feedback.png",
                 "concept.png", "window.png", "jobs.png", "outliers.png"]:
        with open(os.path.join(screenshots, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.problems == [], page.problems


def test_the_change_summary_and_acknowledging_an_alert(demo, page, screenshots):
    alerts = wait_for_firing(demo, "fraud-demo", DEMO_RULES)
    # The model page's change summary holds the API's numbers for the same span.
    page.goto(demo.url + "/models/fraud-demo?window=1d")
    span = page.page.locator("p[data-span-from]")
    frm, to = span.get_attribute("data-span-from"), span.get_attribute("data-span-to")
    api = demo.request("GET", f"/v1/models/fraud-demo/metrics?window=1d&from={frm}&to={to}")["summary"]
    table = page.page.locator("table.changes")
    assert table.is_visible()
    for name, m in api["metrics"].items():
        row = table.locator(f'tr[data-metric="{name}"]')
        first, last = row.get_attribute("data-first"), row.get_attribute("data-last")
        assert (float(first) if first else None) == m["first"], name
        assert (float(last) if last else None) == m["last"], name
        # Each comparison's cells are named: a significant baseline change must not pass for a
        # significant first-to-last one.
        for comparison in ["first_to_last", "baseline_to_last"]:
            assert row.locator(f'td[data-comparison="{comparison}"]').count() >= 1, (name, comparison)
            c = m[comparison]
            if c and c["status"] == "compared":
                flag = row.locator(f'td[data-comparison="{comparison}"] [data-significant]')
                assert (flag.count() > 0) == c["significant"], (name, comparison)
    table.screenshot(path=os.path.join(screenshots, "changes.png"))

    # Acknowledge the firing accuracy alert with the alerts view's form: no script, a POST and
    # a redirect back.
    page.goto(demo.url + "/models/fraud-demo/alerts")
    row = page.page.locator('tr[data-alert-state="firing"][data-rule="accuracy-below-reference"]')
    row.locator('input[name="owner"]').fill("ana@example.com")
    row.locator('input[name="comment"]').fill("retraining on last week's labels tonight")
    row.locator('form.ack button[type="submit"]').click()
    page.page.wait_for_url(demo.url + "/models/fraud-demo/alerts")
    ack = demo.request("GET", "/v1/alerts?model=fraud-demo")["alerts"]
    ack = {a["rule"]: a for a in ack}["accuracy-below-reference"]["acknowledged"]
    assert ack["owner"] == "ana@example.com" and ack["comment"].startswith("retraining"), ack
    row = page.page.locator('tr[data-alert-state="firing"][data-rule="accuracy-below-reference"]')
    fingerprint = alerts["accuracy-below-reference"]["fingerprint"]
    assert row.locator("form.ack").get_attribute("action") == f"/models/fraud-demo/alerts/{fingerprint}/ack"
    assert row.locator('[data-ack-owner="ana@example.com"]').is_visible()
    assert "retraining on last week's labels tonight" in row.inner_text()
    history = page.page.locator('table.alert-history tr[data-transition="acknowledged"]')
    assert history.count() == 1
    page.page.locator('div[data-panel="alerts"] table.alerts').screenshot(path=os.path.join(screenshots, "ack.png"))
    for name in ["changes.png", "ack.png"]:
        with open(os.path.join(screenshots, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.problems == [], page.problems


def test_multivariate_drift_on_the_drift_page_shows_the_apis_windows(server, page, screenshots):
    api = server.request("GET", f"/v1/models/{MODEL}/drift/multivariate?window=1d")
    alerting = sum(1 for w in api["windows"] if w["alert"])
    # The last day's age shift moves its rows off the reference's principal components.
    assert api["windows"][-1]["alert"] and alerting >= 1, api
    page.goto(f"{server.url}/models/{MODEL}/drift?range=all&window=1d")
    fig = page.page.locator('figure[data-chart="reconstruction_error"]')
    assert fig.get_attribute("data-series").split("|")[:3] == [
        "reconstruction error", "reference mean", "band: reference mean + 3 sd"]
    assert fig.get_attribute("data-windows") == str(len(api["windows"]))
    meta = page.page.locator("[data-multivariate-alerts]")
    assert int(meta.get_attribute("data-multivariate-alerts")) == alerting
    assert f"{api['fit']['components']} components" in meta.inner_text()
    # Each window's hover text holds the API's value.
    titles = hover_titles(fig)
    for w in api["windows"]:
        value = f"{w['value']:.4f}".rstrip("0").rstrip(".")
        assert any(value in t for t in titles), (value, titles)
    section = page.page.locator('figure[data-chart="reconstruction_error"]')
    section.screenshot(path=os.path.join(screenshots, "multivariate.png"))
    assert page.problems == [], page.problems


CREDIT = "credit-demo"


def wait_for_credit_history(demo):
    """The delayed-labels model loads after the two others (its labels in one batch, last):
    until its labels are in and its weekly metrics count them all."""
    def loaded():
        try:
            m = demo.request("GET", f"/v1/models/{CREDIT}")
        except urllib.error.HTTPError:  # 404 until its first upload
            return None
        if m.get("labelled", 0) == 0:
            return None
        weeks = demo.request("GET", f"/v1/models/{CREDIT}/metrics?window=1w")["windows"]
        return m if sum(w["labelled"] for w in weeks) == m["labelled"] else None
    return poll(loaded, 60, f"{CREDIT}'s history never arrived", interval=0.5)


def test_the_credit_demo_shows_the_estimate_before_its_labels(demo, page, screenshots):
    """credit-demo's labels come 60-90 days late: the weekly accuracy chart draws the estimate
    and its band over all 120 days, the realized value only where labels have arrived (inside
    the band), the estimate falling in the unlabelled weeks; the versions view compares the
    shadow challenger, with labels over the whole range and before them over the last 30 days."""
    wait_for_credit_history(demo)
    api = demo.request("GET", f"/v1/models/{CREDIT}/metrics?window=1w")
    # The last window grows while the demo runs: compared up to the one before.
    windows = api["windows"][:-1]
    # A week with fewer labels than the metrics' minimum sample (30) shows no realized value.
    labelled = [w for w in windows if w["labelled"] >= 30]
    unlabelled = [w for w in windows if w["labelled"] == 0]
    assert len(labelled) >= 8 and len(unlabelled) >= 7, [(w["start"], w["labelled"]) for w in windows]
    # Labelled weeks come first: the labels are months late.
    assert all(w["labelled"] == 0 for w in windows[windows.index(unlabelled[0]):])
    page.page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(f"{demo.url}/models/{CREDIT}?range=all&window=1w")
    fig = page.page.locator('figure[data-chart="accuracy"]')
    assert fig.get_attribute("data-series").startswith(
        "estimated accuracy|estimated accuracy ± 3σ|accuracy|accuracy 95% CI"), fig.get_attribute("data-series")
    titles = fig.locator("svg rect.hover title").evaluate_all("els => els.map(e => e.textContent)")
    assert len(titles) == len(api["windows"]), (len(titles), len(api["windows"]))

    def line_of(title, name):
        return next(line for line in title.split("\n") if line.startswith(f"{name}: "))

    inside = 0
    for w, title in zip(windows, titles):
        e = w["estimated"]["accuracy"]
        value, band = line_of(title, "estimated accuracy").split(": ", 1)[1].split(" (± 3σ ")
        lo, hi = (float(x) for x in band.rstrip(")").split(" – "))
        assert abs(float(value) - e["value"]) < 1e-4 and abs(lo - e["ci_low"]) < 1e-4 and abs(hi - e["ci_high"]) < 1e-4, (title, e)
        realized = line_of(title, "accuracy")
        if w["labelled"] >= 30:
            r = float(realized.split(": ")[1].split(" ")[0])
            assert abs(r - w["accuracy"]["value"]) < 1e-4, (realized, w["accuracy"])
            inside += lo <= r <= hi
        elif w["labelled"] == 0:
            assert realized == "accuracy: —", realized
    # The estimate is confirmed where labels arrived: the realized accuracy is inside its ± 3σ
    # band (each week misses it with a chance of about 0.3 %, so one miss is allowed).
    assert inside >= len(labelled) - 1, (inside, len(labelled))
    # The degradation started inside the unlabelled months: only the estimate shows it.
    first = sum(w["estimated"]["accuracy"]["value"] for w in labelled) / len(labelled)
    last = unlabelled[-1]["estimated"]["accuracy"]
    assert last["ci_high"] < first, (first, last)
    fig.screenshot(path=os.path.join(screenshots, "delayed-labels.png"))

    # The shadow challenger: promoted on the labelled pairs of the whole range ...
    page.goto(f"{demo.url}/models/{CREDIT}/versions?range=all&window=1w")
    assert page.page.locator('h2[data-challenger="v2"]').count() == 1
    assert page.page.locator("p[data-verdict]").get_attribute("data-verdict") == "promote"
    assert page.page.locator("tr[data-estimated-metric]").count() >= 2
    # ... and, over the last 30 days, which have no label, the verdict waits for labels while
    # the estimates favour the challenger.
    page.goto(f"{demo.url}/models/{CREDIT}/versions?range=30d")
    verdict = page.page.locator("p[data-verdict]")
    assert verdict.get_attribute("data-verdict") == "need_more_data"
    assert "waits for labels" in verdict.inner_text()
    assert page.page.locator("p[data-estimated-hint]").get_attribute("data-estimated-hint") == "estimated_promote"
    compare = demo.request("GET", f"/v1/models/{CREDIT}/compare?champion=v1&challenger=v2&window=1w")
    assert compare["decision"]["verdict"] == "promote", compare["decision"]
    # The challenger's section: from its heading to the end of the page.
    top = page.page.locator('h2[data-challenger="v2"]').bounding_box()
    main = page.page.locator("main").bounding_box()
    page.page.screenshot(path=os.path.join(screenshots, "delayed-labels-compare.png"), full_page=True, clip={
        "x": main["x"], "y": top["y"] - 8, "width": main["width"], "height": main["y"] + main["height"] - top["y"] + 8})
    # The rule on the estimate fires months before a label could: the champion's estimated
    # ROC AUC of the last whole week is under 0.75, and the alert names `debt_ratio`, the
    # feature whose contraction drives the fall, as its first likely cause.
    def estimate_alert():
        alerts = demo.request("GET", f"/v1/alerts?model={CREDIT}&state=firing")["alerts"]
        return next((a for a in alerts if a["rule"] == "estimated-auc-falling"), None)
    alert = poll(estimate_alert, 60, "the estimated-auc-falling rule never fired", interval=0.5)
    assert alert["value"] < 0.75 and alert["n"] >= 500, alert
    assert alert["causes"]["features"][0]["feature"] == "debt_ratio", alert["causes"]["features"]
    for name in ["delayed-labels.png", "delayed-labels-compare.png"]:
        with open(os.path.join(screenshots, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert page.problems == [], page.problems


def test_domain_classifier_on_the_drift_page_shows_the_apis_windows(demo, page, screenshots):
    # After the demo's alerts fired: its rule on domain_classifier_auc among them.
    wait_for_firing(demo, "fraud-demo", DEMO_RULES)
    api = demo.request("GET", "/v1/models/fraud-demo/drift/domain-classifier?window=1d")
    complete = [w for w in api["windows"] if not w["partial"] and w["auc"] is not None]
    # fraud-demo's amount and country drift day after day: its last complete day is told apart.
    assert complete and complete[-1]["auc"] > 0.65, api
    page.page.set_viewport_size({"width": 1360, "height": 900})
    page.goto(demo.url + "/models/fraud-demo/drift?range=all&window=1d")
    fig = page.page.locator('figure[data-chart="domain_classifier"]')
    assert fig.get_attribute("data-series").split("|")[:3] == [
        "domain classifier AUC", "domain classifier AUC 95% CI", "0.5: rows like the reference's"]
    assert fig.get_attribute("data-windows") == str(len(api["windows"]))
    meta = page.page.locator("[data-domain-alerts]")
    assert int(meta.get_attribute("data-domain-alerts")) >= 1
    # Each complete window's hover text holds the API's AUC (kept: the same fit).
    titles = hover_titles(fig)
    for w in complete:
        value = f"{w['auc']:.4f}".rstrip("0").rstrip(".")
        assert any(value in t for t in titles), (value, titles)
    fig.screenshot(path=os.path.join(screenshots, "domain-classifier.png"))
    assert page.problems == [], page.problems


def test_the_model_page_shows_cost_and_the_latency_slo(demo, page, screenshots):
    """fraud-demo's events carry their cost and its latency regresses with the drift: the model
    page shows the API's cost over the span and the last complete window's burn rate and budget,
    with the burn-rate rule's line on its chart; churn-demo's cost comes from its rate."""
    wait_for_firing(demo, "fraud-demo", ["latency-slo-burn"])
    # The demo keeps posting live predictions: the page's sum lies between the API's before and
    # after it, over the same span.
    def carried():
        api = demo.request("GET", f"/v1/models/fraud-demo/service-levels?window=1h&from={frm}&to={to}")
        return api, sum(w["cost"]["from_events"] for w in api["windows"])
    page.goto(demo.url + "/models/fraud-demo?window=1h")
    span = page.page.locator("p[data-span-from]")
    frm, to = span.get_attribute("data-span-from"), span.get_attribute("data-span-to")
    _, before = carried()
    page.goto(demo.url + f"/models/fraud-demo?window=1h&from={frm}&to={to}")
    api, after = carried()
    shown = float(page.page.locator('p[data-panel="cost"]').get_attribute("data-from-events"))
    assert before - 1e-9 <= shown <= after + 1e-9, (before, shown, after)
    slo = page.page.locator('p[data-panel="slo"]')
    assert slo.get_attribute("data-objective") == "0.99"
    complete = [w for w in api["windows"] if not w["partial"]] or api["windows"]
    assert float(slo.get_attribute("data-burn-rate")) == complete[-1]["slo"]["burn_rate"]
    assert float(slo.get_attribute("data-burn-rate")) > 14.4
    burn = page.page.locator('figure[data-chart="slo-burn"]')
    assert burn.get_attribute("data-windows") == str(len(api["windows"]))
    section = page.page.locator("section.service-levels")
    section.screenshot(path=os.path.join(screenshots, "slo.png"))
    page.goto(demo.url + "/models/churn-demo?window=1h")
    churn = page.page.locator('p[data-panel="cost"]')
    assert float(churn.get_attribute("data-from-rate")) > 0
    assert float(churn.get_attribute("data-from-events")) == 0
    assert page.problems == [], page.problems
