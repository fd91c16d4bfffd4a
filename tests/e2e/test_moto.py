"""End to end: moto server (AWS emulator) → the real exporter binary → /metrics over HTTP."""

from conftest import Exporter, aws_env, http_get, wait_for

ACCOUNT = '{account_id="123456789012"}'


def user_series(name, user):
    return f'{name}{{account_id="123456789012",user="{user}"}}'


def seed(iam):
    """alice: console + MFA; bob: console, no MFA; ann=lee,qa@corp: console, no MFA (a comma moto
    writes unquoted); carol: access key only; dave: nothing."""
    for name in ["alice", "bob", "ann=lee,qa@corp", "carol", "dave"]:
        iam.create_user(UserName=name)
    for name in ["alice", "bob", "ann=lee,qa@corp"]:
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9")
    iam.create_access_key(UserName="carol")
    enable_mfa(iam, "alice", "alice-mfa")


def enable_mfa(iam, user, device):
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=device)["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName=user, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")


def test_refreshes_from_moto_follows_changes_and_survives_an_outage(moto):
    iam = moto.iam()
    seed(iam)
    exporter = Exporter(["--refresh.interval=1s", "--refresh.timeout=20s"], aws_env(moto.url))
    try:
        wait_for("ready", lambda: http_get(exporter.base + "/-/ready")[0] == 200)
        m = exporter.metrics()
        assert m["aws_iam_users" + ACCOUNT] == 5
        assert m["aws_iam_console_users" + ACCOUNT] == 3
        assert m["aws_iam_console_users_mfa_enabled" + ACCOUNT] == 1
        assert m["aws_iam_console_users_without_mfa" + ACCOUNT] == 2
        assert m["aws_iam_users_mfa_enabled" + ACCOUNT] == 1
        flagged = {k for k in m if k.startswith("aws_iam_console_user_without_mfa{")}
        assert flagged == {user_series("aws_iam_console_user_without_mfa", u) for u in ["bob", "ann=lee,qa@corp"]}
        # moto: no root row, AccountMFAEnabled always 0, GeneratedTime fixed at 2015-02-02T20:02:02Z.
        assert m["aws_iam_root_mfa_enabled" + ACCOUNT] == 0
        assert m["aws_iam_root_virtual_mfa" + ACCOUNT] == 0
        assert m["aws_iam_credential_report_generated_timestamp_seconds" + ACCOUNT] == 1422907322
        assert m["aws_iam_refresh_success" + ACCOUNT] == 1

        # bob enables MFA with a device named like root's default: a user's device is never root's.
        enable_mfa(iam, "bob", "root-account-mfa-device")
        iam.delete_user(UserName="dave")

        def changed():
            m = exporter.metrics()
            return m if m.get("aws_iam_users" + ACCOUNT) == 4 and m.get("aws_iam_console_users_without_mfa" + ACCOUNT) == 1 else None

        m = wait_for("the refresh after changes", changed)
        assert m["aws_iam_console_users_mfa_enabled" + ACCOUNT] == 2
        assert m["aws_iam_root_virtual_mfa" + ACCOUNT] == 0
        assert user_series("aws_iam_console_user_without_mfa", "bob") not in m
        assert user_series("aws_iam_console_user_without_mfa", "ann=lee,qa@corp") in m

        # moto goes away: the last data stays, the failure shows.
        moto.stop()

        def failing():
            m = exporter.metrics()
            return m if m.get("aws_iam_refresh_success" + ACCOUNT) == 0 else None

        m = wait_for("refresh failure", failing)
        assert m["aws_iam_users" + ACCOUNT] == 4
        assert m['aws_iam_refresh_errors_total{account_id="123456789012",reason="network"}'] >= 1
        assert http_get(exporter.base + "/-/ready")[0] == 200
        assert "refresh failed" in exporter.logs() and "reason=network" in exporter.logs()

        # moto is back (empty, as a restarted moto is): re-seed, and the exporter recovers alone.
        moto.start()
        seed(moto.iam())

        def recovered():
            m = exporter.metrics()
            return m if m.get("aws_iam_refresh_success" + ACCOUNT) == 1 and m.get("aws_iam_users" + ACCOUNT) == 5 else None

        wait_for("recovery", recovered)
    finally:
        assert exporter.stop() == 0
