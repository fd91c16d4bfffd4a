#!/usr/bin/env bash
# Installs every test peer the suite needs, on Debian/Ubuntu:
#   - prometheus + promtool, alertmanager + amtool, buildah, node + npm (Debian packages)
#   - moto server, boto3, pytest, helm-python-sdk, kubernetes-validate, hadolint (PyPI, ./.venv)
#   - typescript and @grafana/schema (npm, into tests/dashboard/node_modules)
#   - cargo-fuzz (crates.io); rustfmt and clippy (rustup components), if missing
# Safe to re-run: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_packages=()
command -v promtool >/dev/null 2>&1 || apt_packages+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || apt_packages+=(prometheus-alertmanager)
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
command -v buildah >/dev/null 2>&1 || apt_packages+=(buildah)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${apt_packages[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

# The venv is rebuilt when tests/e2e/requirements.txt changes (a stamp records its hash).
want=$(sha256sum tests/e2e/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/moto_server ] || [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  echo "install-test-deps: python venv from tests/e2e/requirements.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  echo "$want" > .venv/.requirements.sha256
fi

# npm packages for the dashboard schema check, from tests/dashboard/package-lock.json.
want=$(sha256sum tests/dashboard/package-lock.json | cut -d' ' -f1)
if [ ! -x tests/dashboard/node_modules/.bin/tsc ] || [ "$(cat tests/dashboard/node_modules/.lock.sha256 2>/dev/null)" != "$want" ]; then
  echo "install-test-deps: npm ci in tests/dashboard"
  (cd tests/dashboard && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > tests/dashboard/node_modules/.lock.sha256
fi

# cargo-fuzz for the fuzz targets (scripts/fuzz.sh).
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi
