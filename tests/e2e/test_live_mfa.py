"""Live MFA against moto (which implements ListMFADevices and accepts any serial in
EnableMFADevice): device kinds and strengths of every shape, the credential report's lag closed
by live checks while the report is frozen (AWS's 4-hour window, modelled in the proxy), and
failing live checks that never fail a refresh."""

import pytest

import faultproxy as fp
from conftest import Exporter, aws_env, wait_for

ACCOUNT_ID = "123456789012"
ACCOUNT = f'{{account_id="{ACCOUNT_ID}"}}'


def labelled(name, **labels):
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return f'{name}{{account_id="{ACCOUNT_ID}"{extra}}}'


def fido(user, key):
    return f"arn:aws:iam::{ACCOUNT_ID}:u2f/user/{user}/{key}"


class Iam:
    def __init__(self, moto):
        self.iam = moto.iam()

    def console_user(self, name):
        self.iam.create_user(UserName=name)
        self.iam.create_login_profile(UserName=name, Password="Correct-Horse-9")

    def enable(self, user, serial):
        self.iam.enable_mfa_device(UserName=user, SerialNumber=serial,
                                   AuthenticationCode1="123456", AuthenticationCode2="654321")

    def virtual(self, user, device=None):
        serial = self.iam.create_virtual_mfa_device(VirtualMFADeviceName=device or user)["VirtualMFADevice"]["SerialNumber"]
        self.enable(user, serial)
        return serial


@pytest.fixture
def seeded(moto):
    """Console users with every kind and mix of devices."""
    iam = Iam(moto)
    for name in ("virt", "hw", "fido", "virt-fido", "hw-fido", "eight-keys", "nomfa", "later"):
        iam.console_user(name)
    iam.virtual("virt")
    iam.enable("hw", "GAHT12345678")
    iam.enable("fido", fido("fido", "key1"))
    iam.virtual("virt-fido")
    iam.enable("virt-fido", fido("virt-fido", "key1"))
    iam.enable("hw-fido", "GAHT87654321")
    iam.enable("hw-fido", fido("hw-fido", "key1"))
    for i in range(8):
        iam.enable("eight-keys", fido("eight-keys", f"key{i}"))
    proxy = fp.FaultProxy(moto.port)
    yield iam, proxy
    proxy.stop()


def frozen_report(proxy):
    """The frozen credential report, by user."""
    import base64
    import csv
    import io
    import re
    content = re.search(rb"<Content>([^<]*)</Content>", proxy.frozen).group(1)
    return {row["user"]: row for row in csv.DictReader(io.StringIO(base64.b64decode(content).decode()))}


def start(proxy, *args):
    return Exporter(["--refresh.interval=1s", "--refresh.timeout=20s", "--aws.mfa-devices.max-age=1s", *args],
                    aws_env(proxy.url))


def typed(exporter):
    m = exporter.metrics()
    return m if m.get(labelled("aws_iam_console_users_mfa_strength", strength="unknown")) == 0 else None


def test_every_kind_and_strength(seeded):
    _, proxy = seeded
    exporter = start(proxy)
    try:
        m = wait_for("every user typed", lambda: typed(exporter), timeout=60)
        strength = {s: m[labelled("aws_iam_console_users_mfa_strength", strength=s)]
                    for s in ("phishing_resistant", "hardware", "virtual", "unknown")}
        assert strength == {"phishing_resistant": 2, "hardware": 2, "virtual": 2, "unknown": 0}, strength
        assert sum(strength.values()) == m["aws_iam_console_users_mfa_enabled" + ACCOUNT] == 6
        devices = {k: m[labelled("aws_iam_mfa_devices", kind=k)] for k in ("virtual", "hardware", "fido")}
        assert devices == {"virtual": 2, "hardware": 2, "fido": 1 + 1 + 1 + 8}, devices
        assert m["aws_iam_console_users_without_mfa" + ACCOUNT] == 2
        assert labelled("aws_iam_console_user_without_mfa", user="nomfa") in m
        assert m[labelled("aws_iam_mfa_device_checks_total", result="ok")] > 0
        assert m[labelled("aws_iam_mfa_device_checks_total", result="access_denied")] == 0
        assert m["aws_iam_mfa_devices_last_checked_oldest_timestamp_seconds" + ACCOUNT] > 0
        assert m["aws_iam_root_hardware_mfa" + ACCOUNT] == 0, "moto's root has no MFA"
        assert all(m[labelled("aws_iam_console_users_mfa_lag_corrected", direction=d)] == 0
                   for d in ("enabled", "removed", "deleted")), "moto's report is never late"
    finally:
        assert exporter.stop() == 0


def test_required_strength_flags_weaker_users(seeded):
    _, proxy = seeded
    exporter = start(proxy, "--mfa.required-strength=phishing_resistant")
    try:
        m = wait_for("every user typed", lambda: typed(exporter), timeout=60)
        below = sorted(k for k in m if k.startswith("aws_iam_console_user_mfa_below_required_strength{"))
        assert below == sorted(labelled("aws_iam_console_user_mfa_below_required_strength", user=u, strength=s)
                               for u, s in (("virt", "virtual"), ("virt-fido", "virtual"),
                                            ("hw", "hardware"), ("hw-fido", "hardware"))), below
    finally:
        assert exporter.stop() == 0


def test_the_report_lag_is_closed_by_live_checks(seeded):
    """The report is frozen after the first download (AWS builds one at most every 4 hours):
    MFA enabled for an offender, and a device removed from a typed user, show within two refresh
    intervals all the same."""
    iam, proxy = seeded
    proxy.freeze_report()
    exporter = start(proxy)
    try:
        wait_for("every user typed", lambda: typed(exporter), timeout=60)
        generated = exporter.metrics()["aws_iam_credential_report_generated_timestamp_seconds" + ACCOUNT]
        iam.virtual("nomfa")
        iam.iam.deactivate_mfa_device(UserName="virt", SerialNumber=f"arn:aws:iam::{ACCOUNT_ID}:mfa/virt")

        def corrected():
            m = exporter.metrics()
            return m if (m.get(labelled("aws_iam_console_users_mfa_lag_corrected", direction="enabled")) == 1
                         and m.get(labelled("aws_iam_console_users_mfa_lag_corrected", direction="removed")) == 1) else None
        m = wait_for("the live corrections", corrected, timeout=10)
        users = sorted(k for k in m if k.startswith("aws_iam_console_user_without_mfa{"))
        assert users == [labelled("aws_iam_console_user_without_mfa", user=u) for u in ("later", "virt")], users
        assert m["aws_iam_console_users_without_mfa" + ACCOUNT] == 2
        assert m["aws_iam_console_users_mfa_enabled" + ACCOUNT] == 6
        assert m["aws_iam_credential_report_generated_timestamp_seconds" + ACCOUNT] == generated, "still the frozen report"
        frozen = frozen_report(proxy)
        assert frozen["nomfa"]["mfa_active"] == "false" and frozen["virt"]["mfa_active"] == "true", \
            "the report the exporter has still says the opposite"
    finally:
        assert exporter.stop() == 0


@pytest.mark.parametrize("fault,result", [(fp.THROTTLING, "throttled"), (fp.ACCESS_DENIED, "access_denied")])
def test_failing_live_checks_fall_back_to_the_report(seeded, fault, result):
    _, proxy = seeded
    proxy.inject(fault, action="ListMFADevices")
    exporter = start(proxy)
    try:
        def counted():
            m = exporter.metrics()
            return m if m.get(labelled("aws_iam_mfa_device_checks_total", result=result), 0) >= 3 else None
        m = wait_for(f"{result} checks counted", counted, timeout=60)
        assert m["aws_iam_refresh_success" + ACCOUNT] == 1, "a failed live check never fails the refresh"
        assert m["aws_iam_console_users_without_mfa" + ACCOUNT] == 2, "the report's verdict stands"
        assert m[labelled("aws_iam_console_users_mfa_strength", strength="virtual")] == 2, "virtual: from ListVirtualMFADevices"
        assert m[labelled("aws_iam_console_users_mfa_strength", strength="unknown")] == 4
        assert m[labelled("aws_iam_mfa_device_checks_total", result="ok")] == 0
        assert f"access_denied=" in exporter.logs() and "live MFA checks (ListMFADevices) incomplete" in exporter.logs()
        proxy.heal()
        wait_for("typed after healing", lambda: typed(exporter), timeout=60)
    finally:
        assert exporter.stop() == 0
