#!/usr/bin/env bash
# After a long session (fuzz/run.sh): replaces each target's committed corpus (all, or those
# named) by the smallest set of its inputs and the session's new ones that keeps their edge
# coverage (libFuzzer's -merge=1; -use_counters=0 so that hit counts do not each keep an input:
# a few dozen KB per target). Inputs named regress-* (crash inputs of fixed bugs) are kept as
# they are, whatever their coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${FUZZ_WORK:-/tmp/fuzz-work}"
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi
for t in "${targets[@]}"; do
  out="$WORK/$t.merged"
  rm -rf "$out" && mkdir -p "$out" "$WORK/$t"
  cargo +nightly fuzz run "$t" "$out" "fuzz/corpus/$t" "$WORK/$t" -- -merge=1 -use_counters=0 >"$WORK/$t.merge.log" 2>&1
  find "fuzz/corpus/$t" -type f ! -name 'regress-*' -delete
  cp "$out"/* "fuzz/corpus/$t/"
  echo "$t: $(find "fuzz/corpus/$t" -type f | wc -l) inputs, $(du -sk "fuzz/corpus/$t" | cut -f1) KB"
done
