#!/usr/bin/env bash
# Runs every test of modelwatch: the Rust workspace (unit tests, SciPy/scikit-learn fixtures,
# integration tests over real sockets, the kill -9 crash test) and the Python SDK's pytest suite
# against the real binary. Installs what it needs (a venv for the Python side) on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/modelwatch-target}"
VENV="${MODELWATCH_VENV:-$HOME/.cache/modelwatch-venv}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet ./clients/python -r clients/python/requirements-test.txt

echo "== Rust: cargo test --workspace"
cargo test --workspace

echo "== Python SDK: pytest against the real modelwatch binary"
cargo build -p modelwatch-cli
MODELWATCH_BIN="$CARGO_TARGET_DIR/debug/modelwatch" "$VENV/bin/python" -m pytest -q clients/python/tests
