"""Many accounts through assume-role, against moto (which keeps IAM data per account and maps
assumed-role credentials to the role's account), with a fault-injecting proxy in between:
Organizations discovery, explicit role ARNs, an account leaving the Organization, and one failing
account that leaves the others fresh."""

import boto3
import pytest

from conftest import BIN, Exporter, aws_env, parse_metrics, wait_for
from faultproxy import FaultProxy

MANAGEMENT = "123456789012"
ROLE = "OrganizationAccountAccessRole"


def series(name, account, **labels):
    extra = "".join(f',{k}="{v}"' for k, v in labels.items())
    return f'{name}{{account_id="{account}"{extra}}}'


@pytest.fixture
def org(moto):
    """An Organization with three member accounts: a has 1 console user without MFA, b has 2,
    c has 3 users of which none has a console password."""
    kw = dict(endpoint_url=moto.url, region_name="us-east-1")
    creds = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
    orgs = boto3.client("organizations", **kw, **creds)
    orgs.create_organization(FeatureSet="ALL")
    accounts = {}
    for name, users, console in (("acct-a", 1, True), ("acct-b", 2, True), ("acct-c", 3, False)):
        account = orgs.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]["AccountId"]
        c = boto3.client("sts", **kw, **creds).assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="seed")["Credentials"]
        iam = boto3.client("iam", **kw, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        for i in range(users):
            iam.create_user(UserName=f"{name}-user{i}")
            if console:
                iam.create_login_profile(UserName=f"{name}-user{i}", Password="Correct-Horse-9")
        accounts[name] = account
    proxy = FaultProxy(moto.port)
    yield {"orgs": orgs, "accounts": accounts, "proxy": proxy, "moto": moto}
    proxy.stop()


def test_discovery_isolation_and_removal(org):
    a, b, c = (org["accounts"][n] for n in ("acct-a", "acct-b", "acct-c"))
    proxy = org["proxy"]
    exporter = Exporter(["--aws.organization", f"--aws.assume-role-name={ROLE}", "--refresh.interval=1s",
                         "--refresh.timeout=20s", "--aws.max-concurrency=2"], aws_env(proxy.url))
    try:
        def all_three():
            m = exporter.metrics()
            return m if all(series("aws_iam_refresh_success", x) in m for x in (a, b, c)) else None

        m = wait_for("three accounts refreshed", all_three, timeout=60)
        assert m[series("aws_iam_users", a)] == 1 and m[series("aws_iam_console_users_without_mfa", a)] == 1
        assert m[series("aws_iam_users", b)] == 2 and m[series("aws_iam_console_users_without_mfa", b)] == 2
        assert m[series("aws_iam_users", c)] == 3 and m[series("aws_iam_console_users", c)] == 0
        assert series("aws_iam_users", MANAGEMENT) not in m, "own account only with --aws.include-self"
        assert m[series("aws_iam_account_info", b, account_name="acct-b")] == 1
        assert m[series("aws_iam_console_user_without_mfa", b, user="acct-b-user1")] == 1
        assert not any(k.startswith("aws_iam_console_user_without_mfa") and f'"{c}"' in k for k in m)

        # b fails (access denied on every call): only b shows it; a and c stay fresh.
        proxy.fail_account(b)
        before = exporter.metrics()

        def b_failing_others_fresh():
            m = exporter.metrics()
            fresh = all(m[series("aws_iam_last_successful_refresh_timestamp_seconds", x)]
                        > before[series("aws_iam_last_successful_refresh_timestamp_seconds", x)] for x in (a, c))
            return m if m[series("aws_iam_refresh_success", b)] == 0 and fresh else None

        m = wait_for("b failing while a and c refresh", b_failing_others_fresh, timeout=60)
        assert m[series("aws_iam_refresh_errors_total", b, reason="access_denied")] >= 1
        assert m[series("aws_iam_refresh_errors_total", a, reason="access_denied")] == 0
        assert m[series("aws_iam_refresh_success", a)] == 1 and m[series("aws_iam_refresh_success", c)] == 1
        assert m[series("aws_iam_users", b)] == 2, "b's last good data is kept"
        assert "reason=access_denied" in exporter.logs() and f"account_id={b}" in exporter.logs()

        # b heals by itself.
        proxy.heal(b)
        wait_for("b recovers", lambda: exporter.metrics()[series("aws_iam_refresh_success", b)] == 1, timeout=60)

        # a leaves the Organization: its series leave /metrics.
        org["orgs"].remove_account_from_organization(AccountId=a)
        wait_for("a disappears", lambda: not any(f'"{a}"' in k for k in exporter.metrics()), timeout=60)
        m = exporter.metrics()
        assert series("aws_iam_users", b) in m and series("aws_iam_users", c) in m
    finally:
        assert exporter.stop() == 0


def test_explicit_role_arns_and_include_self(org):
    import subprocess

    a, c = org["accounts"]["acct-a"], org["accounts"]["acct-c"]
    iam = org["moto"].iam()  # the exporter's own account (moto's default)
    iam.create_user(UserName="mgmt-admin")
    iam.create_login_profile(UserName="mgmt-admin", Password="Correct-Horse-9")
    result = subprocess.run(
        [str(BIN), "--once", f"--aws.role-arn=arn:aws:iam::{a}:role/{ROLE}", f"--aws.role-arn=arn:aws:iam::{c}:role/{ROLE}",
         "--aws.include-self", f"--aws.account-name={c}=the-c-account"],
        env=aws_env(org["proxy"].url), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    m = parse_metrics(result.stdout)
    assert m[series("aws_iam_users", a)] == 1
    assert m[series("aws_iam_users", c)] == 3
    assert m[series("aws_iam_users", MANAGEMENT)] == 1
    assert m[series("aws_iam_console_user_without_mfa", MANAGEMENT, user="mgmt-admin")] == 1
    assert m[series("aws_iam_account_info", c, account_name="the-c-account")] == 1
    assert org["accounts"]["acct-b"] not in result.stdout
