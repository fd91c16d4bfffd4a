#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test peers, then lint, unit and integration
# tests, a short fuzz run, and the end-to-end tests against the real binary and real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'echo "== test.sh: ${SECONDS}s in all (exit $?)"' EXIT

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
# `cargo test` built target/debug/iam-mfa-exporter for the integration tests already; a separate
# `cargo build` would rebuild part of the tree without the dev-dependencies' features (~1 min).
test -x target/debug/iam-mfa-exporter
.venv/bin/pytest tests/e2e -q
