#!/usr/bin/env python3
"""Live-MFA call budget (not a test): USERS console users in moto behind the fault proxy (which
counts every IAM call), the report frozen as AWS keeps it for 4 hours, the exporter refreshing
every INTERVAL seconds with the default budget. Prints the calls of the first refresh, of a
steady-state refresh, and how many refreshes it takes until every console user with MFA is typed.
Results go to docs/benchmarks.md by hand.

    cargo build && .venv/bin/python scripts/bench-live-mfa.py [USERS [INTERVAL_SECONDS [MAX_REFRESHES]]]

Population (per 10 users): 4 with a virtual device, 2 with a FIDO key, 1 with a hardware token,
2 console users without MFA, 1 without a console password.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import faultproxy as fp  # noqa: E402
from conftest import Exporter, Moto, aws_env, free_port  # noqa: E402

USERS = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
INTERVAL = int(sys.argv[2]) if len(sys.argv) > 2 else 30
MAX_REFRESHES = int(sys.argv[3]) if len(sys.argv) > 3 else 100
ACCOUNT = '{account_id="123456789012"}'


def seed(moto):
    iam = moto.iam()
    code = dict(AuthenticationCode1="123456", AuthenticationCode2="654321")
    for i in range(USERS):
        name, kind = f"u{i:05}", i % 10
        iam.create_user(UserName=name)
        if kind == 9:
            continue
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9")
        if kind < 4:
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
            iam.enable_mfa_device(UserName=name, SerialNumber=serial, **code)
        elif kind < 6:
            iam.enable_mfa_device(UserName=name, SerialNumber=f"arn:aws:iam::123456789012:u2f/user/{name}/key", **code)
        elif kind == 6:
            iam.enable_mfa_device(UserName=name, SerialNumber=f"GAHT{i:08}", **code)


def main():
    moto = Moto(free_port())
    moto.start()
    started = time.monotonic()
    seed(moto)
    print(f"seeded {USERS} users in {time.monotonic() - started:.0f} s")
    proxy = fp.FaultProxy(moto.port)
    proxy.freeze_report()
    exporter = Exporter([f"--refresh.interval={INTERVAL}s", f"--refresh.timeout={INTERVAL - 2}s"], aws_env(proxy.url))
    try:
        refreshes, last_calls, last_ts = [], 0, None
        deadline = time.monotonic() + 60 * 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            m = exporter.metrics()
            ts = m.get("aws_iam_last_successful_refresh_timestamp_seconds" + ACCOUNT)
            if ts is None or ts == last_ts:
                continue
            last_ts = ts
            with proxy.lock:
                by_action = {a: n for (_, a), n in proxy.calls.items()}
            total = sum(by_action.values())
            unknown = m.get(f'aws_iam_console_users_mfa_strength{{account_id="123456789012",strength="unknown"}}')
            refreshes.append((total - last_calls, dict(by_action), unknown))
            last_calls = total
            print(f"refresh {len(refreshes)}: {refreshes[-1][0]} calls, untyped console users with MFA: {unknown:.0f}", flush=True)
            if (unknown == 0 and len(refreshes) >= 2) or len(refreshes) >= MAX_REFRESHES:
                break
        first, steady = refreshes[0], refreshes[-1]
        print(f"first refresh: {first[0]} calls ({first[1]})")
        print(f"steady state: {steady[0]} calls per refresh")
        typed = [i + 1 for i, r in enumerate(refreshes) if r[2] == 0]
        print(f"refreshes until every console user with MFA is typed: {typed[0] if typed else 'not within the run'}")
    finally:
        exporter.stop()
        proxy.stop()
        moto.stop()


if __name__ == "__main__":
    main()
