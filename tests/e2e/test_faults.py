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
