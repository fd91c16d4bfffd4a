#!/usr/bin/env python3
"""Scale benchmark (not a test): ACCOUNTS report files of USERS users each, served by the release
binary through the same code path as AWS mode minus the network (--report.file, one target per
account, bounded concurrency). Records peak RSS, the time of full refresh cycles, the /metrics
size and the HTTP scrape time. Results go to docs/benchmarks.md by hand.

    cargo build --release && scripts/bench-scale.py [ACCOUNTS] [USERS]
"""

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "target" / "release" / "iam-mfa-exporter"
ACCOUNTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
USERS = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
HEADER = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
          "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
          "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
          "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
          "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
          "cert_1_last_rotated,cert_2_active,cert_2_last_rotated")


def report(account: str, users: int) -> str:
    """The same population as benches/common: 60% console users, 70% of them with MFA."""
    rows = [HEADER, f"<root_account>,arn:aws:iam::{account}:root,2015-06-01T00:00:00+00:00,not_supported,"
            "2026-11-20T22:10:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"]
    for i in range(users):
        console = i % 10 < 6
        mfa = (console and i % 10 < 4) or i % 17 == 0
        last = f"2026-11-{1 + i % 23:02}T{i % 24:02}:{i % 60:02}:00+00:00" if console else "N/A"
        keys = "false,N/A,N/A,N/A,N/A" if console else f"true,2026-0{1 + i % 9}-01T00:00:00+00:00,2026-11-20T10:00:00+00:00,us-east-1,s3"
        rows.append(f"user.{i:05}@example.com,arn:aws:iam::{account}:user/team-{i % 40}/user.{i:05}@example.com,"
                    f"20{15 + i % 11:02}-0{1 + i % 9}-1{i % 10}T08:30:00+00:00,{'true' if console else 'false'},{last},"
                    f"2025-01-01T00:00:00+00:00,N/A,{'true' if mfa else 'false'},{keys},false,N/A,N/A,N/A,N/A,false,N/A,false,N/A")
    return "\n".join(rows) + "\n"


def get(url):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = resp.read()
    return body, time.perf_counter() - start


def rss_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("VmRSS", "VmHWM")}


def main():
    assert BIN.exists(), "build first: cargo build --release"
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        t0 = time.perf_counter()
        for i in range(ACCOUNTS):
            path = Path(tmp) / f"{100_000_000_000 + i:012}.csv"
            path.write_text(report(f"{100_000_000_000 + i:012}", USERS))
            files.append(str(path))
        size = sum(os.path.getsize(f) for f in files)
        print(f"generated {ACCOUNTS} reports x {USERS} users: {size / 2**20:.0f} MiB in {time.perf_counter() - t0:.1f} s")

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        interval = 20
        env = dict(os.environ, IAM_MFA_EXPORTER_REPORT_FILE="\n".join(files))
        proc = subprocess.Popen([str(BIN), f"--web.listen-address=127.0.0.1:{port}", f"--refresh.interval={interval}s",
                                 "--log.level=warn"], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            start = time.perf_counter()
            while True:
                try:
                    body, _ = get(base + "/metrics")
                except OSError:
                    time.sleep(0.05)
                    continue
                done = body.count(b'aws_iam_refresh_success{account_id=')
                if done == ACCOUNTS:
                    break
                assert proc.poll() is None, "exporter died"
                time.sleep(0.05)
            first_cycle = time.perf_counter() - start
            durations = [float(v) for v in re.findall(rb"aws_iam_refresh_duration_seconds\{[^}]*\} (\S+)", body)]
            # Two more full cycles, sampling RSS.
            samples = []
            end = time.perf_counter() + 2 * interval + 2
            while time.perf_counter() < end:
                samples.append(rss_kib(proc.pid)["VmRSS"])
                time.sleep(0.5)
            mem = rss_kib(proc.pid)
            scrapes = [get(base + "/metrics")[1] for _ in range(30)]
            body, _ = get(base + "/metrics")
            print(f"first full cycle ({ACCOUNTS} accounts, concurrency 8): {first_cycle:.2f} s")
            print(f"per-account refresh: median {statistics.median(durations) * 1000:.1f} ms, max {max(durations) * 1000:.1f} ms")
            print(f"RSS: peak (VmHWM) {mem['VmHWM'] / 1024:.1f} MiB, steady median {statistics.median(samples) / 1024:.1f} MiB")
            lines = body.count(b"\n")
            print(f"/metrics: {len(body)} bytes, {lines} lines; scrape over HTTP median {statistics.median(scrapes) * 1000:.1f} ms")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
