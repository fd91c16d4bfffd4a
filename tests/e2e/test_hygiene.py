"""Credential hygiene against moto and the real binary. moto records an access key's last use
when the key signs a request (GetAccessKeyLastUsed and the report's access_key_N_last_used_date;
the report's region and service columns say not_supported) and writes password_last_used as
no_information for a password never used. Its users are brand new, so the thresholds are set to
seconds here: the same checks, on a clock one can wait for."""

import time

import boto3

from conftest import Exporter, aws_env, wait_for

ACCOUNT = '{account_id="123456789012"}'


def test_unused_credentials_rotation_and_two_keys_end_to_end(moto):
    iam = moto.iam()
    iam.create_user(UserName="svc")
    key1 = iam.create_access_key(UserName="svc")["AccessKey"]
    iam.create_access_key(UserName="svc")  # never used
    iam.create_user(UserName="web")
    iam.create_login_profile(UserName="web", Password="Correct-Horse-9")  # never used
    iam.create_user(UserName="old-key")
    old = iam.create_access_key(UserName="old-key")["AccessKey"]
    iam.update_access_key(UserName="old-key", AccessKeyId=old["AccessKeyId"], Status="Inactive")

    def use(key):
        boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                     aws_secret_access_key=key["SecretAccessKey"]).list_users()

    use(key1)
    exporter = Exporter(["--refresh.interval=1s", "--no-aws.mfa-devices",
                         "--hygiene.unused-after=4s", "--hygiene.rotate-after=6s"], aws_env(moto.url))
    try:
        m = wait_for("a refresh", lambda: (lambda m: m if m.get("aws_iam_refresh_success" + ACCOUNT) == 1 else None)(exporter.metrics()))
        assert m['aws_iam_hygiene_threshold_seconds{check="unused"}'] == 4
        assert m["aws_iam_users_with_two_active_access_keys" + ACCOUNT] == 1
        assert 'aws_iam_user_two_active_access_keys{account_id="123456789012",user="svc"}' in m

        def counts():
            m = exporter.metrics()
            c = (m["aws_iam_console_users_password_unused" + ACCOUNT], m["aws_iam_access_keys_unused" + ACCOUNT],
                 m["aws_iam_access_keys_rotation_overdue" + ACCOUNT])
            return m if c == (1, 2, 2) else None
        m = wait_for("credentials older than the thresholds", counts, timeout=30)
        assert 'aws_iam_user_password_unused_since_timestamp_seconds{account_id="123456789012",user="web"}' in m
        keys = sorted(k for k in m if k.startswith("aws_iam_access_key_unused_since_timestamp_seconds{"))
        assert keys == ['aws_iam_access_key_unused_since_timestamp_seconds{account_id="123456789012",user="svc",key="1"}',
                        'aws_iam_access_key_unused_since_timestamp_seconds{account_id="123456789012",user="svc",key="2"}'], keys
        assert not any('user="old-key"' in k for k in m), "inactive keys never count"

        use(key1)  # key 1 is in use again
        wait_for("key 1 used again", lambda: exporter.metrics()["aws_iam_access_keys_unused" + ACCOUNT] == 1, timeout=30)
    finally:
        assert exporter.stop() == 0


def test_the_group_can_be_turned_off(moto):
    moto.iam().create_user(UserName="svc")
    exporter = Exporter(["--refresh.interval=1s", "--no-collector.hygiene"], aws_env(moto.url))
    try:
        m = wait_for("a refresh", lambda: (lambda m: m if m.get("aws_iam_refresh_success" + ACCOUNT) == 1 else None)(exporter.metrics()))
        time.sleep(1.5)
        m = exporter.metrics()
        assert not any(k.startswith(("aws_iam_hygiene_", "aws_iam_access_keys_", "aws_iam_console_users_password_unused"))
                       for k in m), sorted(m)
    finally:
        assert exporter.stop() == 0
