#!/usr/bin/env bash
# Runs every test of modelwatch: the Rust workspace (unit tests, SciPy/scikit-learn fixtures,
# integration tests over real sockets, the kill -9 crash test) and the Python SDK's pytest suite
# against the real binary, and the dashboard's browser tests in headless Chromium. Installs what it
# needs on a fresh machine: a venv for the Python side, Debian's chromium for the browser tests,
# Debian's prometheus package for promtool (it checks /metrics and the example alerting rules),
# and for the deployment tests (tests/deploy) a venv of their own plus Debian's nginx, caddy,
# sqlite3, openssl, curl and systemd (systemd-analyze), and for the ClickHouse backend's tests
# Debian's clickhouse-server (18.16) and zookeeperd (the replicated cluster's coordinator): the
# tests start their own clusters on 127.0.0.1 with scripts/clickhouse/cluster.sh; and PyPI's chdb
# (ClickHouse 26.9 in Python, into the venv) for the same SQL against the current dialect.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/modelwatch-target}"
VENV="${MODELWATCH_VENV:-$HOME/.cache/modelwatch-venv}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet ./clients/python -r clients/python/requirements-test.txt \
  -r tests/browser/requirements.txt -r tests/requirements-chdb.txt
# The browser tests drive Debian's Chromium (Playwright's own browser download is never used).
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
# The Debian packages of the deployment and ClickHouse tests, by the command each provides.
APT_PACKAGES=""
for tool in nginx:nginx caddy:caddy sqlite3:sqlite3 openssl:openssl curl:curl \
  systemd-analyze:systemd clickhouse-server:clickhouse-server clickhouse-client:clickhouse-client; do
  if ! command -v "${tool%%:*}" >/dev/null; then APT_PACKAGES="$APT_PACKAGES ${tool#*:}"; fi
done
# ZooKeeper has no command on the PATH: its start script is what cluster.sh runs.
if [ ! -x /usr/share/zookeeper/bin/zkServer.sh ]; then APT_PACKAGES="$APT_PACKAGES zookeeperd"; fi
if ! command -v chromium >/dev/null || ! command -v promtool >/dev/null \
  || [ -n "$APT_PACKAGES" ]; then
  $SUDO apt-get update -qq
fi
if ! command -v chromium >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi
# promtool is all the tests need of the prometheus package (hence no recommends).
if ! command -v promtool >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
fi
if [ -n "$APT_PACKAGES" ]; then
  # shellcheck disable=SC2086 # a list of package names
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PACKAGES
fi
DEPLOY_VENV="${MODELWATCH_DEPLOY_VENV:-$HOME/.cache/modelwatch-deploy-venv}"
if [ ! -x "$DEPLOY_VENV/bin/python" ]; then
  python3 -m venv "$DEPLOY_VENV"
fi
"$DEPLOY_VENV/bin/python" -m pip install --quiet --upgrade pip
"$DEPLOY_VENV/bin/python" -m pip install --quiet -r tests/deploy/requirements.txt

# The peers' benchmark data (../shared/bench/peers/gen_data.py, seeded): the drift verdict test
# checks that exactly the injected drifts are flagged on it, and must not skip where it can run.
PEERS_GEN="../shared/bench/peers/gen_data.py"
PEER_DATA="$HOME/.cache/modelwatch-bench/data"
if [ -f "$PEERS_GEN" ]; then
  if [ ! -f "$PEER_DATA/reference_100k.parquet" ] || [ ! -f "$PEER_DATA/current_100k.parquet" ]; then
    "$VENV/bin/python" -m pip install --quiet -r tests/requirements-peer-data.txt
    "$VENV/bin/python" "$PEERS_GEN" --reference-rows 100000 --current-rows 100000 --no-csv \
      --skip-existing --out "$PEER_DATA"
  fi
  export MODELWATCH_REQUIRE_PEER_DATA=1
fi

# The ClickHouse backend's tests (crates/store-clickhouse, the CLI's clickhouse module) must run
# here, never skip: the servers were installed above.
export MODELWATCH_REQUIRE_CLICKHOUSE=1
# The current dialect (ClickHouse 26.9 in chdb, installed into the venv above) for
# crates/store-clickhouse/tests/current_dialect.rs.
export MODELWATCH_CHDB_PYTHON="$VENV/bin/python"

echo "== Rust: building the tests and the binary"
cargo test --workspace --no-run
# `cargo test` builds the binary for the CLI's integration tests; a separate
# `cargo build -p modelwatch-cli` resolved other dependency features and rebuilt 20 crates.
test -x "$CARGO_TARGET_DIR/debug/modelwatch"
export MODELWATCH_BIN="$CARGO_TARGET_DIR/debug/modelwatch"

# The Python suites need only the binary, so they run beside the Rust tests and beside each
# other: all of them spend most of their time waiting on the servers, demos and browsers they
# start (a warm run, one after the other: Rust tests ~120 s, SDK ~75 s, browser ~110 s,
# deployment ~10 s). Each suite's output is printed after the Rust tests', and every suite
# runs to its end, so one run shows every failure.
PY_DIR="$(mktemp -d)"
declare -A PY_PIDS=()
declare -A PY_TITLES=(
  [sdk]="Python SDK: pytest against the real modelwatch binary"
  [browser]="Dashboard: browser tests in headless Chromium against the real binary"
  [deploy]="Deployment: manifests, unit, Dockerfile lint, TLS proxies, backup and restore"
)
"$VENV/bin/python" -m pytest -q clients/python/tests >"$PY_DIR/sdk.log" 2>&1 &
PY_PIDS[sdk]=$!
CHROMIUM="$(command -v chromium)" "$VENV/bin/python" -m pytest -q tests/browser \
  >"$PY_DIR/browser.log" 2>&1 &
PY_PIDS[browser]=$!
"$DEPLOY_VENV/bin/python" -m pytest -q tests/deploy >"$PY_DIR/deploy.log" 2>&1 &
PY_PIDS[deploy]=$!

echo "== Rust: cargo test --workspace"
rust_rc=0
# Four test threads on two cores: the CLI's integration tests mostly wait on the servers they
# start, so two threads left the cores idle (RUST_TEST_THREADS set by the caller wins).
RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}" cargo test --workspace || rust_rc=$?
failed=""
for suite in sdk browser deploy; do
  suite_rc=0
  wait "${PY_PIDS[$suite]}" || suite_rc=$?
  echo "== ${PY_TITLES[$suite]}"
  cat "$PY_DIR/$suite.log"
  if [ "$suite_rc" != 0 ]; then failed="$failed $suite"; fi
done
rm -rf "$PY_DIR"
if [ "$rust_rc" != 0 ] || [ -n "$failed" ]; then
  echo "FAILED: the Rust tests exited with $rust_rc; failed Python suites:${failed:- none}" >&2
  exit 1
fi
