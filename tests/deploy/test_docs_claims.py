"""What the docs say of the quarantine (docs/api.md, `GET .../rejected`; ARCHITECTURE.md, "Bad
input is data"), checked against the real binary: a row refused on arrival is kept as sent, a row
refused by the writer is kept as its parsed event written out again, a row of a reference upload
as where it is."""

import json

from conftest import INGEST_KEY, KEYS_ENV, READ_KEY, Server, ndjson


def test_the_quarantine_keeps_what_api_md_says(tmp_path):
    server = Server(["--addr", "127.0.0.1:0", "--data", str(tmp_path / "data")], env=KEYS_ENV)
    try:
        post = lambda rows: server.request(  # noqa: E731
            "POST", "/v1/models/m/predictions", rows, key=INGEST_KEY)
        # The model's schema: `age` is numeric.
        post(ndjson([{"request_id": "ok", "prediction": 1, "features": {"age": 41}}]))
        # Refused on arrival (score out of range): kept byte for byte, spacing included.
        on_arrival = '{"request_id":"a",   "prediction": 1, "score": 7}'
        # Refused by the writer (the schema): parsed first, so written out again.
        by_writer = '{"features": {"age": "forty"},   "prediction": 1, "request_id": "w"}'
        good = '{"request_id": "ok-2", "prediction": 0, "features": {"age": 3}}'
        reply = post("\n".join([on_arrival, by_writer, good]))
        assert [r["request_id"] for r in reply["rejected"]] == ["a", "w"]
        # A reference row refused while reading the file (a score outside [0, 1]), one refused
        # by the writer (the schema), and a valid one: a reference with no valid row is refused
        # whole and changes nothing. Its age is missing, because a CSV column holding text reads
        # every cell as text, and the schema wants a number.
        reference = "age,score\n5,7\nforty-one,0.5\n,0.4\n"
        server.request("PUT", "/v1/models/m/reference", reference, content_type="text/csv")
        rows = server.request("GET", "/v1/models/m/rejected", key=READ_KEY)["rejected"]
    finally:
        server.stop()

    by_id = {r["request_id"]: r for r in rows if r["kind"] == "predictions"}
    assert by_id["a"]["row"] == on_arrival
    kept = by_id["w"]["row"]
    assert kept != by_writer
    event = json.loads(kept)
    assert (event["request_id"], event["prediction"], event["features"]) == (
        "w", 1, {"age": "forty"})
    reference_rows = {r["field"]: r for r in rows if r["kind"] == "reference"}
    assert sorted(reference_rows) == ["features.age", "score"]
    assert reference_rows["score"]["row"] == "row 0 of the reference"
    assert json.loads(reference_rows["features.age"]["row"])["features"] == {"age": "forty-one"}


def test_cli_server_flag_speaks_plain_http_only_as_deployment_md_says():
    """docs/deployment.md tells users to run `--server` commands against http:// (the CLI's
    HTTP client has no TLS). When that changes, this fails and the docs must change with it."""
    import subprocess

    from conftest import binary

    out = subprocess.run([binary(), "metrics", "--model", "m", "--server", "https://127.0.0.1:9"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "scheme is not http" in out.stderr, out.stderr
