#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs (fuzz/corpus/<target>/seed-*) from the examples of
docs/api.md, docs/configuration.md and the tests (crates/formats/tests, crates/cli/tests).
Run from the repository root: python3 fuzz/seeds/make_seeds.py. libFuzzer grows the corpus from
these; `cargo fuzz cmin` keeps it small before a commit (docs/fuzzing.md)."""
import os

PRED = ('{"request_id": "r-1", "timestamp": "2026-01-02T03:04:05Z", "model_version": "v3", '
        '"features": {"age": 41, "country": "DE", "amount": 12.5, "device": null}, "prediction": 1, '
        '"score": 0.91, "scores": {"fraud": 0.91, "ok": 0.09}, "latency_ms": 12.3, "error": null, '
        '"tags": {"region": "eu"}}')
LABEL = '{"request_id": "r-1", "label": 1, "timestamp": "2026-01-09T00:00:00Z"}'
SEEDS = {
    "prediction_rows": [
        "[" + PRED + "]",
        PRED + "\n" + '{"request_id":"r-2","prediction":"a","features":{"x":true,"y":"s"}}\n',
        '{"request_id":"r-0","timestamp":"2026-01-02T03:04:05Z","features":{"age":41},"prediction":1}\n'
        '\n{"request_id":"r-2","prediction":1,"score":2}\nnot json\n'
        '{"request_id":"r-4","model_version":"v9","prediction":"a"}\n',
        '[{"request_id":"r-3","error":"timeout","latency_ms":3000},'
        '{"request_id":"r-3","prediction":NaN},{"request_id":"\\ud800","prediction":1e400}]',
        '{"request_id":"r","timestamp":"2026-01-02 03:04:05","prediction":0.5,"features":{"a":1,"a":2}}\n',
        '{"request_id":"r","prediction":1,"tags":{"k":"v"},"scores":{"a":0.5,"b":0.5},"x":1}',
    ],
    "label_rows": [
        "[" + LABEL + "]",
        LABEL + '\n{"request_id":"r-2","label":"fraud"}\n{"request_id":"r-3","label":true}\n',
        '{"request_id":"r-1"}\n{"request_id":"r-4","label":null}\n{"label":1}\n[1]\n',
        '[{"request_id":"r-5","label":1.5,"timestamp":"1990-01-01T00:00:00Z"},{"request_id":5}]',
    ],
    # The first byte chooses the rows' kind (byte % 3: predictions, labels, reference) and the
    # chunk size; see crates/fuzz-targets/src/lib.rs.
    "csv_table": [
        "\x00request_id,timestamp,age,country,vip,empty,mixed,y_pred,y_pred_proba,y_true\n"
        "r-0,2026-01-02 03:04:05,41,DE,true,,1,1,0.9,1\n"
        "r-1,2026-01-02T03:04:06Z,35.5,FR,false,,x,0,0.2,\n"
        "r-2,2026-01-02 03:04:07,,US,true,,2,1,0.8,0\n"
        "r-3,2026-01-02 03:04:08,abc,US,true,,3,1,0.7,1\n"
        ",2026-01-02 03:04:09,20,US,true,,4,1,0.7,1\n"
        "r-7,yesterday,20,US,true,,7,1,0.5,1\n",
        "\x01request_id,label,timestamp\nr-1,1,2026-01-09T00:00:00Z\nr-2,fraud,\n,1,\n",
        "\x02age,country,label\n41,DE,1\n35,FR,0\n",
        "\x05id,when,cls,score_a,score_b,region,debug,x\n"
        "007,1767323045,a,0.7,0.3,eu,zz,1\n008,1767323046,b,0.2,0.9,us,zz,2\n",
        "\x08\xef\xbb\xbfrequest_id,prediction,score,x\nr1,1,0.3,\"a,b\"\nr2,0,0.7,\"q\"\"\"\nr3,1\n",
    ],
    "ndjson_table": [
        "\x00" + PRED + "\n\n" + '{"request_id":"r-2","prediction":1,"score":2}\nnot json\n',
        "\x01" + LABEL + '\n{"request_id":"r-1"}\n',
        '\x02{"age": 41, "country": "DE", "label": 1}\n'
        '{"features": {"age": 35, "country": null}, "prediction": 0, "label": 0}\n'
        '{"age": [1], "country": "FR", "label": 1}\n'
        '{"age": 50, "country": "FR", "y_true": 1, "y_pred_proba": 0.4}\n',
        '\x05[{"age": 1, "scores": {"a": 0.5, "b": 0.5}}, {"age": 2, "scores": "{\\"a\\": 1}"}]',
    ],
    "time_params": [
        "15m", "1h", "7d", "2w", "0", "30s", "10m", "1\u00fc", "\u20ac", "-1d", "366d",
        "2026-01-02T03:04:05Z", "2026-01-02 03:04:05.123456", "2026-01-02T05:04:05+02:00",
        "2026-01-02", "range=7d&window=1h&version=v2&segment=country&feature=age&at=2026-01-02T10:00:00Z",
        "from=2026-01-01T00:00:00Z&to=2026-01-08T00:00:00Z&window=%C3%BC", "range=all&window=",
    ],
    "rule_json": [
        '{"name": "f1-vs-test", "signal": "f1", "condition": {"kind": "baseline", "direction": "below", '
        '"relative": 0.05}, "decision": "retrain", "severity": "critical", "window": "1d", "version": "v3", '
        '"min_sample": 30, "for": "0", "keep_firing_for": "0", "notify": ["pagerduty", "ops"], '
        '"description": "production F1 vs the test set"}',
        '{"name":"lat","signal":"latency_p99","condition":{"kind":"threshold","op":">","value":250},'
        '"decision":"review","severity":"warning","for":"10m"}',
        '{"name":"vol","signal":"predictions","condition":{"kind":"anomaly","windows":24,"z":3,'
        '"direction":"below"},"decision":"data-incident","severity":"info","window":"1h"}',
        '{"name":"trend","signal":"recall:fraud","condition":{"kind":"trend","windows":5,"op":"<","value":-0.01},'
        '"decision":"rollback","severity":"critical","segment":{"feature":"country","value":"DE"}}',
        '{"name":"fresh","signal":"events","condition":{"kind":"freshness","max_age":"2h"},'
        '"decision":"data-incident","severity":"critical"}',
        '{"name":"hb","signal":"heartbeat:nightly","condition":{"kind":"heartbeat","max_age":"1d"},'
        '"decision":"review","severity":"info","keep_firing_for":"30s"}',
        '{"name":"kpi","signal":"kpi:fraud_loss_eur","condition":{"kind":"rolling_mean","windows":3,"op":">",'
        '"value":1000},"decision":"review","severity":"warning"}',
        '{"name":"d","signal":"drift:age","condition":{"kind":"significant_change","direction":"any"},'
        '"decision":"review","severity":"info","window":"1\u00fc"}',
    ],
    "config_file": [
        open("docs/configuration.md").read().split("```toml\n")[1].split("```")[0],
        open("deploy/systemd/modelwatch.toml").read(),
        'addr = "0.0.0.0:0"\n[auth]\nadmin_keys = ["short"]\n',
        '[models."bad name"]\nretention_days = 1\n',
        '[[models.m.rules]]\nname="r"\nsignal="f1"\ncondition={kind="threshold",op="<",value=0.5}\n'
        'decision="retrain"\nseverity="info"\nfor="1\u00fc"\n',
    ],
}

for target, seeds in SEEDS.items():
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        data = s.encode("utf-8") if not s.startswith(("\x08\xef",)) else s.encode("latin-1")
        with open(os.path.join(d, f"seed-{i:02}"), "wb") as f:
            f.write(data)
