#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs the test peers, then lint, unit, integration and
# end-to-end tests (moto server, promtool) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== end-to-end (moto, promtool)"
cargo build --locked --bin iam-mfa-exporter
.venv/bin/pytest tests/e2e -q
