#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test peers, then lint, unit and integration
# tests, a short fuzz run, and the end-to-end tests against the real binary and real peers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== fuzz (short run; see docs/benchmarks.md for a long one)"
FUZZ_SECONDS=${FUZZ_SECONDS:-30} scripts/fuzz.sh
echo "== end-to-end (moto, Prometheus, Alertmanager, promtool, helm, buildah)"
cargo build --locked --bin iam-mfa-exporter
.venv/bin/pytest tests/e2e -q
