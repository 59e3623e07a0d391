"""The TLS proxy examples of docs/deployment.md, run as shipped in front of the real binary:
deploy/nginx/modelwatch.conf under Debian's nginx and deploy/caddy/Caddyfile under Debian's
caddy, with a self-signed certificate made by openssl. curl talks HTTPS to the proxy and checks
the certificate against it (no --insecure); modelwatch listens on 127.0.0.1 only.

The files are used as they are, but for what a test machine must change: the ports, the
certificate paths and the upstream's port. Each substitution must match exactly once, so the
test fails when the example changes shape rather than testing something else.
"""

import json
import os
import subprocess

import pytest

from conftest import (
    DEPLOY, INGEST_KEY, KEYS_ENV, READ_KEY, Server, free_port, gzipped, ndjson, poll, require_tool,
)


def substitute(text, replacements):
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} should appear once in the example"
        text = text.replace(old, new)
    return text


@pytest.fixture
def certificate(tmp_path):
    openssl = require_tool("openssl")
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def modelwatch(tmp_path):
    # The systemd example's config: loopback only, the proxy in front.
    server = Server(["--config", str(DEPLOY / "systemd" / "modelwatch.toml"),
                     "--addr", "127.0.0.1:0", "--data", str(tmp_path / "data")], env=KEYS_ENV)
    yield server
    server.stop()


def curl(cert, *args):
    """curl's (status, headers, body); verifies the proxy's certificate against `cert`."""
    out = subprocess.run(
        ["curl", "--silent", "--show-error", "--cacert", str(cert), "--max-time", "60",
         "--dump-header", "-", *args],
        capture_output=True, check=True)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(h.split(": ", 1)) for h in lines[1:]]
    return status, headers, body


def check_through_proxy(base, http_base, cert, modelwatch, tmp_path):
    """What a remote client does through the proxy: ingest (gzip, and a body over nginx's
    1 MB default), read with a read key, log in to the dashboard."""
    require_tool("curl")
    status, _, body = curl(cert, f"{base}/healthz")
    assert status == 200, body

    # Without a key the proxy passes modelwatch's own 401 through.
    status, _, body = curl(cert, f"{base}/v1/models")
    assert status == 401, body

    rows = [{"request_id": f"r-{i}", "prediction": i % 2, "score": (i % 10) / 10,
             "features": {"note": "x" * 200, "amount": i}} for i in range(8000)]
    big = tmp_path / "big.ndjson"
    big.write_text(ndjson(rows))
    assert big.stat().st_size > 1_500_000
    status, _, body = curl(cert, "-H", f"authorization: Bearer {INGEST_KEY}",
                           "--data-binary", f"@{big}", f"{base}/v1/models/credit/predictions")
    assert status == 200, body
    assert json.loads(body)["accepted"] == 8000

    small = tmp_path / "small.ndjson.gz"
    small.write_bytes(gzipped(ndjson([{"request_id": "z-1", "prediction": 1}])))
    status, _, body = curl(cert, "-H", f"authorization: Bearer {INGEST_KEY}",
                           "-H", "content-encoding: gzip", "--data-binary", f"@{small}",
                           f"{base}/v1/models/credit/predictions")
    assert status == 200, body
    assert json.loads(body)["accepted"] == 1

    status, _, body = curl(cert, "-H", f"authorization: Bearer {READ_KEY}",
                           f"{base}/v1/models/credit")
    assert status == 200, body
    assert json.loads(body)["predictions"] == 8001
    # What the proxy forwarded is what modelwatch stored.
    assert modelwatch.request("GET", "/v1/models/credit", key=READ_KEY)["predictions"] == 8001

    # The proxy says the client spoke HTTPS: the session cookie is Secure.
    status, headers, _ = curl(cert, "--data-urlencode", f"key={READ_KEY}",
                              "--data-urlencode", "next=/", f"{base}/login")
    assert status == 303
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    assert len(cookies) == 1 and "; Secure" in cookies[0], cookies

    if http_base is not None:
        status, headers, _ = curl(cert, f"{http_base}/v1/models")
        assert status == 301
        location = dict((k.lower(), v) for k, v in headers)["location"]
        assert location.startswith("https://"), location


def test_nginx_example_serves_modelwatch_over_https(tmp_path, certificate, modelwatch):
    nginx = require_tool("nginx")
    cert, key = certificate
    https_port, http_port = free_port(), free_port()
    site = substitute((DEPLOY / "nginx" / "modelwatch.conf").read_text(), [
        ("server 127.0.0.1:8080;", f"server 127.0.0.1:{modelwatch.port};"),
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https_port} ssl http2;\n"),
        ("    listen [::]:443 ssl http2;\n", ""),
        ("/etc/ssl/modelwatch/fullchain.pem", str(cert)),
        ("/etc/ssl/modelwatch/privkey.pem", str(key)),
    ])
    (tmp_path / "modelwatch.conf").write_text(site)
    # The frame a distribution's nginx.conf gives a site file, with every path in tmp_path.
    (tmp_path / "nginx.conf").write_text(f"""
{"user root;" if os.getuid() == 0 else ""}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp_path}/access.log;
    client_body_temp_path {tmp_path}/client_body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/modelwatch.conf;
}}
""")
    command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
               "-e", str(tmp_path / "error.log")]
    subprocess.run([*command, "-t"], check=True, capture_output=True)
    proc = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        wait_for_port(https_port, proc)
        check_through_proxy(f"https://localhost:{https_port}", f"http://localhost:{http_port}",
                            certificate[0], modelwatch, tmp_path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_caddy_example_serves_modelwatch_over_https(tmp_path, certificate, modelwatch):
    caddy = require_tool("caddy")
    cert, key = certificate
    https_port = free_port()
    site = substitute((DEPLOY / "caddy" / "Caddyfile").read_text(), [
        ("modelwatch.example.com {\n",
         # A public name gets its certificate from an ACME CA; the test has none to reach.
         f"https://localhost:{https_port} {{\n\ttls {cert} {key}\n"),
        ("reverse_proxy 127.0.0.1:8080", f"reverse_proxy 127.0.0.1:{modelwatch.port}"),
    ])
    # No admin endpoint and no port-80 redirect listener on a test machine.
    (tmp_path / "Caddyfile").write_text("{\n\tadmin off\n\tauto_https disable_redirects\n}\n\n"
                                        + site)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.Popen([caddy, "run", "--config", str(tmp_path / "Caddyfile"),
                             "--adapter", "caddyfile"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(https_port, proc)
        check_through_proxy(f"https://localhost:{https_port}", None, cert, modelwatch, tmp_path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_for_port(port, proc, timeout=30):
    import socket

    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"the proxy exited: {proc.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return None

    poll(listening, timeout, "the proxy never listened")
