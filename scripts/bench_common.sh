# Shared set-up of the side-by-side benchmarks (sourced by scripts/bench_*.sh): paths, the
# release build of modelwatch, the peers' venv, the peers' data, and a scratch copy of their
# harness (it writes results/ next to itself and reads data/ there). Sets ROOT, PEERS, DATA,
# VENV, BIN and WORK (removed on exit).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-/work/shared/bench/peers}
CACHE=${BENCH_CACHE:-$HOME/.cache/modelwatch-bench}
DATA=$CACHE/data
VENV=$CACHE/venv
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/modelwatch-target}
# PROFILE=bench-files builds with the incremental release profile of Cargo.toml (rebuilds in
# seconds when builds alternate with a baseline); the default is the release profile.
PROFILE=${PROFILE:-release}
BIN=$CARGO_TARGET_DIR/$PROFILE/modelwatch

say() { echo "== $*" >&2; }

say "build ($PROFILE)"
(cd "$ROOT" && cargo build --profile "$PROFILE" -p modelwatch-cli --quiet)

if [ ! -x "$VENV/bin/python" ]; then
    say "peer venv: $VENV from $PEERS/requirements.txt"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$PEERS/requirements.txt"
fi
if [ ! -f "$DATA/reference_100k.parquet" ] || [ ! -f "$DATA/current_100k.parquet" ]; then
    say "generate data (100k)"
    "$VENV/bin/python" "$PEERS/gen_data.py" --out "$DATA" --current-rows 100000
fi
if [ ! -f "$DATA/current_1m.parquet" ]; then
    say "generate data (1m)"
    "$VENV/bin/python" "$PEERS/gen_data.py" --out "$DATA" --current-rows 1000000 --skip-existing
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp "$PEERS"/*.py "$PEERS"/requirements*.txt "$WORK/"
ln -s "$DATA" "$WORK/data"
mkdir -p "$WORK/results"
echo "uptime before: $(uptime)" | tee "$WORK/uptime" >&2
