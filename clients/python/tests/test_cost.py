"""A prediction's cost (``log_prediction(..., cost=...)``) against the real binary: it arrives
as the event's ``cost`` and the server's service-level report sums it."""

from __future__ import annotations

import modelwatch


def test_a_logged_cost_reaches_the_event_and_the_window_sum(server, model_name, spool_dir, monitors):
    mon = modelwatch.Monitor(server.url, model_name, "v1", spool_dir=str(spool_dir), flush_interval=0.1)
    monitors.append(mon)
    ids = [mon.log_prediction({"x": i}, i % 2, latency_ms=20.0, cost=0.0012 * (i + 1),
                              timestamp="2026-01-12T01:00:00Z") for i in range(3)]
    ids.append(mon.log_prediction({"x": 9}, 1, timestamp="2026-01-12T01:30:00Z"))
    assert mon.flush(10), mon.stats()
    events = {e["request_id"]: e for e in server.predictions(model_name)}
    assert [events[i].get("cost") for i in ids] == [0.0012, 0.0024, 0.0036, None]
    report = server.get(f"/v1/models/{model_name}/service-levels?window=1h")
    cost = report["windows"][0]["cost"]
    # 0.0012 + 0.0024 + 0.0036, summed in billionths: exactly 0.0072.
    assert cost["from_events"] == 0.0072
    assert (cost["with_cost"], cost["without_cost"]) == (3, 1)
