#!/usr/bin/env bash
# Load benchmark (not a test): wrk against /metrics of the release binary serving a 5,000-user
# report with the default per-user cap, while a background refresh loop runs every second;
# compared in the same run with nginx serving the same body as a static file (the practical
# ceiling). Optional soak: SOAK_SECONDS=600 samples RSS every 10 s under continuous load.
# Loopback only. Needs: wrk, nginx (Debian), python3, a release build.
#
#   cargo build --release && scripts/bench-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/iam-mfa-exporter
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
SOAK_SECONDS=${SOAK_SECONDS:-0}
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers (www-data) read the body from here
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

python3 - "$work/report.csv" <<'PY'
import sys
out, sys.argv = sys.argv[1], sys.argv[:1]
import importlib.util
spec = importlib.util.spec_from_file_location("scale", "scripts/bench-scale.py")
scale = importlib.util.module_from_spec(spec); spec.loader.exec_module(scale)
open(out, "w").write(scale.report("123456789012", 5000))
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
exporter_port=$(free_port); nginx_port=$(free_port)
"$BIN" --web.listen-address=127.0.0.1:$exporter_port --report.file "$work/report.csv" \
  --refresh.interval=1s --log.level=warn &
exporter_pid=$!
for _ in $(seq 100); do curl -fs "127.0.0.1:$exporter_port/-/ready" >/dev/null && break; sleep 0.1; done
curl -fs "127.0.0.1:$exporter_port/metrics" > "$work/metrics.txt"
echo "body: $(wc -c < "$work/metrics.txt") bytes, $(wc -l < "$work/metrics.txt") lines"

mkdir -p "$work/nginx/logs"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    location = /metrics { default_type "text/plain; version=0.0.4"; alias $work/metrics.txt; }
  }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g 'daemon off;' &
for _ in $(seq 100); do curl -fs "127.0.0.1:$nginx_port/metrics" >/dev/null && break; sleep 0.1; done

run() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1"; }
echo "== iam-mfa-exporter (refreshing every second)"
run "http://127.0.0.1:$exporter_port/metrics" | tee "$work/exporter.txt"
echo "== nginx, same body, static file"
run "http://127.0.0.1:$nginx_port/metrics" | tee "$work/nginx.txt"
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
echo "throughput ratio exporter/nginx: $(python3 -c "print(f'{$(rps "$work/exporter.txt") / $(rps "$work/nginx.txt"):.2f}')")"

if [ "$SOAK_SECONDS" -gt 0 ]; then
  echo "== soak: ${SOAK_SECONDS}s of load, RSS (KiB) every 10 s"
  wrk -t1 -c4 -d"${SOAK_SECONDS}s" "http://127.0.0.1:$exporter_port/metrics" > "$work/soak.txt" &
  soak_pid=$!
  for _ in $(seq $((SOAK_SECONDS / 10))); do
    sleep 10
    awk '/VmRSS/ {printf "%s ", $2}' "/proc/$exporter_pid/status"
  done
  echo
  wait "$soak_pid" || true
  grep -E "requests in|Socket errors|Non-2xx" "$work/soak.txt" || true
fi
