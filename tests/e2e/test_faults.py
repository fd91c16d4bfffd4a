"""AWS faults, injected by a proxy between the real exporter and moto: for each, the exporter
keeps serving the last good data, sets aws_iam_refresh_success 0, counts the right reason, logs
it, keeps its call rate bounded (no busy loop), and recovers by itself when the fault stops."""

import time

import pytest

import faultproxy as fp
from conftest import Exporter, aws_env, wait_for

ACCOUNT = '{account_id="123456789012"}'


def reason_count(metrics, reason):
    return metrics.get(f'aws_iam_refresh_errors_total{{account_id="123456789012",reason="{reason}"}}', 0)


@pytest.fixture
def setup(moto):
    iam = moto.iam()
    for name in ("alice", "bob"):
        iam.create_user(UserName=name)
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9")
    proxy = fp.FaultProxy(moto.port)
    exporter = Exporter(["--refresh.interval=1s", "--refresh.timeout=6s"], aws_env(proxy.url))
    wait_for("first refresh", lambda: exporter.metrics().get("aws_iam_refresh_success" + ACCOUNT) == 1, timeout=30)
    yield proxy, exporter
    assert exporter.stop() == 0
    proxy.stop()


@pytest.mark.parametrize("fault,action,reason", [
    (fp.THROTTLING, None, "throttled"),
    (fp.LIMIT_EXCEEDED, "GenerateCredentialReport", "throttled"),
    (fp.SERVICE_FAILURE, "GenerateCredentialReport", "other"),
    (fp.REPORT_IN_PROGRESS, "GetCredentialReport", "report_not_ready"),
    (fp.delay(20), "GetCredentialReport", "timeout"),
    (fp.RESET, "GetAccountSummary", "network"),
    (fp.TRUNCATE, "GetCredentialReport", "network"),
    (fp.ACCESS_DENIED, "ListVirtualMFADevices", "access_denied"),
], ids=["throttling", "limit-exceeded", "service-failure", "report-in-progress", "latency", "reset", "truncated", "access-denied"])
def test_fault_is_visible_bounded_and_recovers(setup, fault, action, reason):
    proxy, exporter = setup
    before = exporter.metrics()
    proxy.inject(fault, action=action)

    def failing():
        m = exporter.metrics()
        return m if m.get("aws_iam_refresh_success" + ACCOUNT) == 0 and reason_count(m, reason) > reason_count(before, reason) else None

    m = wait_for(f"a {reason} failure", failing, timeout=60)
    assert m["aws_iam_users" + ACCOUNT] == 2, "the last good data is still served"
    assert m["aws_iam_console_users_without_mfa" + ACCOUNT] == 2
    others = {r for r in ("access_denied", "credentials", "throttled", "report_not_ready", "report_invalid", "network", "timeout", "io", "other")
              if r != reason and reason_count(m, r) > reason_count(before, r)}
    assert not others, f"counted as {others} too"
    assert f"reason={reason}" in exporter.logs()

    # Bounded: over 5 s of continuous fault, the exporter's calls stay at a polite rate.
    start_calls, start = proxy.count(), time.monotonic()
    time.sleep(5)
    rate = (proxy.count() - start_calls) / (time.monotonic() - start)
    assert rate < 15, f"{rate:.1f} calls/s under {fault[0]}: a busy loop?"

    proxy.heal()
    wait_for("recovery", lambda: exporter.metrics().get("aws_iam_refresh_success" + ACCOUNT) == 1, timeout=60)


def test_report_in_progress_for_a_few_polls_is_waited_out(setup):
    proxy, exporter = setup
    polls_before = proxy.count("GetCredentialReport")
    proxy.inject(fp.REPORT_IN_PROGRESS, action="GetCredentialReport", times=2)
    wait_for("the injected polls used", lambda: proxy.count("GetCredentialReport") >= polls_before + 3, timeout=30)
    time.sleep(1.5)
    m = exporter.metrics()
    assert m["aws_iam_refresh_success" + ACCOUNT] == 1, "two not-ready answers are polled through, not a failure"
    assert reason_count(m, "report_not_ready") == 0


def with_password_present(value):
    """GetAccountSummary as AWS answers it: moto leaves out AccountPasswordPresent (1/0)."""
    entry = f"<entry><key>AccountPasswordPresent</key><value>{value}</value></entry>".encode()

    def change(body):
        assert b"<SummaryMap>" in body, body
        return body.replace(b"<SummaryMap>", b"<SummaryMap>" + entry, 1)
    return change


def test_root_password_comes_from_the_account_summary_when_the_report_cannot_tell(setup):
    """moto's report has no root row (so nothing says whether root has a password) and its
    GetAccountSummary has no AccountPasswordPresent: AWS's real answer is modelled in the proxy.
    AccountMFAEnabled is 0 in moto, so this is the 'root without MFA' account of the alert."""
    proxy, exporter = setup
    key = "aws_iam_root_password_enabled" + ACCOUNT
    m = exporter.metrics()
    assert m["aws_iam_root_mfa_enabled" + ACCOUNT] == 0
    assert key not in m, "no root row and no AccountPasswordPresent: unknown, never 0"
    proxy.rewrite("GetAccountSummary", with_password_present(0))
    wait_for("root without a password", lambda: exporter.metrics().get(key) == 0, timeout=30)
    proxy.rewrite("GetAccountSummary", with_password_present(1))
    wait_for("root with a password", lambda: exporter.metrics().get(key) == 1, timeout=30)


def test_health_series_name_the_account_from_the_first_failure(moto):
    """The own account is asked of STS before its first refresh: a refresh that fails from the
    start is counted under account_id, and the series keep that label when it heals."""
    moto.iam().create_user(UserName="alice")
    proxy = fp.FaultProxy(moto.port)
    proxy.inject(fp.ACCESS_DENIED, action="GenerateCredentialReport")
    exporter = Exporter(["--refresh.interval=1s", "--refresh.timeout=6s"], aws_env(proxy.url))
    try:
        m = wait_for("a failing first refresh", lambda: (lambda m: m if reason_count(m, "access_denied") >= 1 else None)(exporter.metrics()))
        assert m["aws_iam_refresh_success" + ACCOUNT] == 0
        assert not any('target="' in k for k in m), [k for k in m if "target=" in k]
        assert m["aws_iam_account_discovery_success"] == 1
        proxy.heal()
        m = wait_for("recovery", lambda: (lambda m: m if m.get("aws_iam_refresh_success" + ACCOUNT) == 1 else None)(exporter.metrics()))
        assert reason_count(m, "access_denied") >= 1, "the counter did not reset"
        assert not any('target="' in k for k in m)
    finally:
        assert exporter.stop() == 0
        proxy.stop()


def test_failed_discovery_is_visible_retried_soon_and_heals(moto):
    """GetCallerIdentity denied at start-up: no account yet, not ready, the discovery series say
    why; retried with backoff (not after a whole 15m interval); healed, the account appears."""
    moto.iam().create_user(UserName="alice")
    proxy = fp.FaultProxy(moto.port)
    proxy.inject(fp.ACCESS_DENIED, action="GetCallerIdentity")
    exporter = Exporter(["--refresh.interval=15m"], aws_env(proxy.url))
    try:
        errors = 'aws_iam_account_discovery_errors_total{reason="access_denied"}'
        m = wait_for("a failed discovery", lambda: (lambda m: m if m.get(errors, 0) >= 2 else None)(exporter.metrics()), timeout=30)
        assert m["aws_iam_account_discovery_success"] == 0
        assert "aws_iam_account_discovery_last_success_timestamp_seconds" not in m
        assert not any(k.startswith("aws_iam_users") for k in m)
        from conftest import http_get
        assert http_get(exporter.base + "/-/ready")[0] == 503
        assert "listing accounts failed" in exporter.logs() and "reason=access_denied" in exporter.logs()
        proxy.heal()
        m = wait_for("discovery and a refresh", lambda: (lambda m: m if m.get("aws_iam_refresh_success" + ACCOUNT) == 1 else None)(exporter.metrics()), timeout=30)
        assert m["aws_iam_account_discovery_success"] == 1
        assert m["aws_iam_account_discovery_last_success_timestamp_seconds"] > 0
        assert m[errors] >= 2, "kept"
    finally:
        assert exporter.stop() == 0
        proxy.stop()
