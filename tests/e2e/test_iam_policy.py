"""docs/iam-policy.json is enough, and nothing less is: with moto's real IAM authorization on, an
IAM user holding only that policy runs a full refresh; one without iam:GenerateCredentialReport
gets a clean access_denied."""

import json
import subprocess
import urllib.request

import pytest

from conftest import BIN, ROOT, aws_env, parse_metrics

POLICY = json.loads((ROOT / "docs" / "iam-policy.json").read_text())


def set_auth(moto, value: str):
    req = urllib.request.Request(f"{moto.url}/moto-api/reset-auth", data=value.encode(),
                                 headers={"Content-Type": "text/plain"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def user_with_policy(iam, name, document):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="exporter", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def once(moto, key):
    env = aws_env(moto.url)
    env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key
    return subprocess.run([str(BIN), "--once"], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def authorized(moto):
    iam = moto.iam()
    iam.create_user(UserName="console-no-mfa")
    iam.create_login_profile(UserName="console-no-mfa", Password="Correct-Horse-9")
    full = user_with_policy(iam, "exporter", POLICY)
    reduced = json.loads(json.dumps(POLICY))
    reduced["Statement"][0]["Action"].remove("iam:GenerateCredentialReport")
    limited = user_with_policy(iam, "exporter-limited", reduced)
    no_live = json.loads(json.dumps(POLICY))
    no_live["Statement"][0]["Action"].remove("iam:ListMFADevices")
    without_live_checks = user_with_policy(iam, "exporter-no-live", no_live)
    set_auth(moto, "0")
    try:
        yield moto, full, limited, without_live_checks
    finally:
        set_auth(moto, "inf")


def test_policy_is_enough_for_a_full_refresh(authorized):
    moto, full, _, _ = authorized
    result = once(moto, full)
    assert result.returncode == 0, result.stderr
    m = parse_metrics(result.stdout)
    account = '{account_id="123456789012"}'
    assert m["aws_iam_refresh_success" + account] == 1
    assert m["aws_iam_console_users_without_mfa" + account] == 1
    assert "aws_iam_root_virtual_mfa" + account in m, "ListVirtualMFADevices and GetAccountSummary ran"
    assert m['aws_iam_mfa_device_checks_total{account_id="123456789012",result="ok"}'] >= 1, "ListMFADevices ran"
    assert m['aws_iam_mfa_device_checks_total{account_id="123456789012",result="access_denied"}'] == 0


def test_without_list_mfa_devices_the_refresh_works_on_the_report_alone(authorized):
    """A policy written before live MFA checks (no iam:ListMFADevices): the refresh still works,
    verdicts come from the report, and the denied checks are counted, not fatal."""
    moto, _, _, without_live_checks = authorized
    result = once(moto, without_live_checks)
    assert result.returncode == 0, result.stderr
    m = parse_metrics(result.stdout)
    account = '{account_id="123456789012"}'
    assert m["aws_iam_refresh_success" + account] == 1
    assert m["aws_iam_console_users_without_mfa" + account] == 1
    assert m['aws_iam_mfa_device_checks_total{account_id="123456789012",result="access_denied"}'] >= 1
    assert "live MFA checks (ListMFADevices) incomplete" in result.stderr


def test_missing_permission_is_a_clean_access_denied(authorized):
    moto, _, limited, _ = authorized
    result = once(moto, limited)
    assert result.returncode == 1
    m = parse_metrics(result.stdout)
    assert m['aws_iam_refresh_errors_total{account_id="123456789012",reason="access_denied"}'] == 1
    assert m['aws_iam_refresh_success{account_id="123456789012"}'] == 0
    errors = [line for line in result.stderr.splitlines() if "level=ERROR" in line]
    assert len(errors) == 1 and "reason=access_denied" in errors[0] and "GenerateCredentialReport" in errors[0], result.stderr


def test_authorization_is_really_on(authorized):
    """The two tests above mean something only if moto enforces policies: unknown keys fail."""
    moto, _, _, _ = authorized
    result = once(moto, ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
    assert result.returncode == 1
    assert 'reason="credentials"} 1' in result.stdout, result.stdout + result.stderr


def test_cross_account_policies_are_consistent():
    org = json.loads((ROOT / "docs" / "iam-policy-organization.json").read_text())
    actions = set()
    for statement in org["Statement"]:
        actions |= set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    assert {"sts:AssumeRole", "organizations:ListAccounts"} <= actions
    assert set(POLICY["Statement"][0]["Action"]) <= actions, "the own account (--aws.include-self) needs the base actions"
    trust = json.loads((ROOT / "docs" / "iam-member-role-trust-policy.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole" and "AWS" in statement["Principal"]
    irsa = json.loads((ROOT / "docs" / "iam-trust-policy-irsa.json").read_text())
    assert irsa["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"
