#!/usr/bin/env bash
# Fuzzes the report parser and the --report.file decoder with cargo fuzz (libFuzzer + ASan) for
# FUZZ_SECONDS each (default 30: the short run of the test command; run longer by hand, e.g.
# FUZZ_SECONDS=3600). Seeds: fuzz/seeds/<target> (committed); what libFuzzer finds goes to
# fuzz/corpus/<target> (not committed). A crash, panic, leak or an allocation over 256 MiB fails.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes nightly-only compiler flags (-Zsanitizer); only a stable toolchain can be
# installed here, and RUSTC_BOOTSTRAP lets it accept them.
export RUSTC_BOOTSTRAP=1
for target in parse_report decode_file; do
  mkdir -p "fuzz/corpus/$target"
  log=$(mktemp)
  if ! cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=1024 -malloc_limit_mb=256 -max_len=65536 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz: $target FAILED"
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  echo "fuzz: $target ok: $runs executions in ${FUZZ_SECONDS}s"
  rm -f "$log"
done
