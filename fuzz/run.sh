#!/usr/bin/env bash
# A long fuzz session: each target (all, or those named) for FUZZ_SECONDS (600) under libFuzzer,
# one after the other on one core (-fork=1, so a crash is saved and the session goes on). New
# inputs go to FUZZ_WORK/<target> (/tmp/fuzz-work), outside the repository: `fuzz/merge.sh`
# then keeps those that add coverage in the committed corpus. Logs in FUZZ_LOGS
# (/tmp/fuzz-logs); crash inputs in fuzz/artifacts/<target>/.
# Needs the nightly toolchain and cargo-fuzz (docs/fuzzing.md).
set -uo pipefail
cd "$(dirname "$0")/.."
SECS="${FUZZ_SECONDS:-600}"
LOGS="${FUZZ_LOGS:-/tmp/fuzz-logs}"
WORK="${FUZZ_WORK:-/tmp/fuzz-work}"
mkdir -p "$LOGS" "$WORK"
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
for t in "${targets[@]}"; do
  case "$t" in
    csv_table) dict=csv ;;
    time_params) dict=time ;;
    config_file) dict=toml ;;
    *) dict=json ;;
  esac
  mkdir -p "$WORK/$t" "fuzz/artifacts/$t"
  echo "== $t: ${SECS}s, log $LOGS/$t.log"
  # New inputs go to the first directory (outside the repository); the committed corpus seeds it.
  cargo +nightly fuzz run "$t" "$WORK/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECS" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -timeout=10 -dict="fuzz/dicts/$dict.dict" -print_final_stats=1 >"$LOGS/$t.log" 2>&1
  echo "   exit $?; $(grep -c . <(ls "fuzz/artifacts/$t")) crash inputs"
  tail -n 3 "$LOGS/$t.log"
done
