"""End to end with real components on loopback: moto server → iam-mfa-exporter (AWS mode) plus a
second exporter on a report file (another account, with the root row and sign-in times moto does
not write) → Prometheus (Debian package) with alerts/ loaded → Alertmanager (Debian package).

The rules are rendered from alerts/config.yml with test settings (scripts/render-alerts.py), as an
operator would tune them: no grace period, a short `for:` and keep_firing_for. Prometheus 2.42
must load them (keep_firing_for included) and evaluate every rule without error. The console-user
alert must fire for exactly the user without MFA, per account and user only (two exporters are
scraped: no instance label), reach Alertmanager, and resolve once the user enables MFA in moto;
every dashboard query must return data."""

import json
import shutil
import subprocess
import time
import urllib.parse

import pytest

import faultproxy as fp
from conftest import Exporter, ROOT, Service, aws_env, free_port, http_get, wait_for
from test_alert_rules import render_alerts
from test_dashboard import expressions, load

# The settings an operator tunes, made short for a test that lasts seconds.
TEST_SETTINGS = ["newUserGracePeriod=0s", "alerts.IAMConsoleUserWithoutMFA.for=2s", "keepFiringFor=1s"]


def shortened_rules() -> str:
    """The shipped rules rendered with TEST_SETTINGS; the scrape job is the default one."""
    text = render_alerts.render(render_alerts.load_config(sets=TEST_SETTINGS))
    assert "vector(0)" in text and "keep_firing_for: 1s" in text
    return text


def prometheus_query(base, expr):
    status, body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def firing(base, alertname):
    status, body = http_get(f"{base}/api/v1/alerts")
    assert status == 200, body
    return [a["labels"] for a in json.loads(body)["data"]["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def alertmanager_alerts(base, alertname):
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"', "active": "true", "silenced": "false", "inhibited": "false"})
    status, body = http_get(f"{base}/api/v2/alerts?{query}")
    assert status == 200, body
    return [a["labels"] for a in json.loads(body) if a["status"]["state"] == "active"]


@pytest.fixture
def monitoring(moto, tmp_path):
    for tool in ("prometheus", "prometheus-alertmanager", "amtool"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/install-test-deps.sh"
    iam = moto.iam()
    for name in ("alice", "bob"):
        iam.create_user(UserName=name)
        iam.create_login_profile(UserName=name, Password="Correct-Horse-9")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=serial, AuthenticationCode1="111111", AuthenticationCode2="222222")

    # Rendered first: a broken rule setting fails here, before any process is started.
    (tmp_path / "rules.yml").write_text(shortened_rules())
    # AWS builds a credential report at most every 4 hours; moto rebuilds it on every call. The
    # proxy models AWS: after the first download the report is frozen, so every change below
    # reaches the exporter through its live MFA checks alone.
    proxy = fp.FaultProxy(moto.port)
    proxy.freeze_report()
    # A required strength, so the per-user strength series (and its dashboard table) have data.
    aws = Exporter(["--refresh.interval=1s", "--refresh.timeout=20s", "--mfa.required-strength=phishing_resistant"],
                   aws_env(proxy.url))
    report = tmp_path / "other-account.csv"
    report.write_text((ROOT / "examples" / "credential-report.csv").read_text().replace("123456789012", "999988887777"))
    # A third account with users just inside and outside each credential-hygiene threshold, so the
    # hygiene panels have data (moto's users have no old keys, the example's keys were used lately).
    hygiene = ROOT / "tests" / "fixtures" / "hygiene.csv"
    files = Exporter(["--refresh.interval=1s", "--report.file", str(report), "--report.file", str(hygiene)],
                     aws_env("http://127.0.0.1:9"))

    am_port, prom_port = free_port(), free_port()
    (tmp_path / "alertmanager.yml").write_text(
        "route: {receiver: 'null', group_by: ['alertname', 'account_id', 'user'], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\n"
        "receivers: [{name: 'null'}]\n")
    am = Service(["prometheus-alertmanager", f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
                  f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="], "alertmanager", tmp_path)
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "iam-mfa-exporter", "static_configs": [
            {"targets": [f"127.0.0.1:{aws.port}", f"127.0.0.1:{files.port}"]}]}],
    }))
    prom = Service(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}"], "prometheus", tmp_path)
    prom_url, am_url = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
    try:
        wait_for("prometheus", lambda: http_get(prom_url + "/-/ready")[0] == 200)
        wait_for("alertmanager", lambda: http_get(am_url + "/-/ready")[0] == 200)
        yield {"iam": iam, "prometheus": prom_url, "alertmanager": am_url, "am_port": am_port, "proxy": proxy}
    finally:
        prom.stop()
        am.stop()
        assert aws.stop() == 0
        assert files.stop() == 0
        proxy.stop()


def test_alert_fires_reaches_alertmanager_and_resolves(monitoring):
    prom, am = monitoring["prometheus"], monitoring["alertmanager"]
    moto_bob = {"account_id": "123456789012", "user": "bob"}

    def console_alerts():
        return {(a["account_id"], a["user"]) for a in firing(prom, "IAMConsoleUserWithoutMFA")}

    # Exactly bob in the moto account (alice has MFA), plus the file account's three users.
    expected = ({("123456789012", "bob"), ("555566667777", "pw-new-user")}
                | {("999988887777", u) for u in ("bob", "carol.ops@example.com", "dave+admin")})
    wait_for("the console alert to fire", lambda: console_alerts() == expected, timeout=60)
    alert = next(a for a in firing(prom, "IAMConsoleUserWithoutMFA") if a["account_id"] == "123456789012")
    # The scrape's labels (job, instance) are aggregated away: a new pod would not be a new alert.
    assert alert == {"alertname": "IAMConsoleUserWithoutMFA", "severity": "warning", "account_id": "123456789012", "user": "bob"}
    assert len(firing(prom, "IAMConsoleUserWithoutMFA")) == len(expected), "one alert per account and user"

    def in_alertmanager():
        return [a for a in alertmanager_alerts(am, "IAMConsoleUserWithoutMFA") if a["account_id"] == "123456789012"]

    got = wait_for("the alert in Alertmanager", in_alertmanager, timeout=60)
    assert [{k: a[k] for k in ("account_id", "user")} for a in got] == [moto_bob]
    amtool = subprocess.run(["amtool", f"--alertmanager.url={am}", "alert", "query", "alertname=IAMConsoleUserWithoutMFA", "account_id=123456789012"],
                            capture_output=True, text=True, check=True)
    assert "IAMConsoleUserWithoutMFA" in amtool.stdout and "bob" in amtool.stdout, amtool.stdout

    # bob enables MFA: the report stays frozen, the live checks see it, the alert resolves
    # everywhere.
    iam = monitoring["iam"]
    assert monitoring["proxy"].frozen is not None, "the exporter works from a frozen report"
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="bob", SerialNumber=serial, AuthenticationCode1="333333", AuthenticationCode2="444444")
    wait_for("the alert to resolve in Prometheus", lambda: ("123456789012", "bob") not in console_alerts(), timeout=60)
    assert console_alerts() == expected - {("123456789012", "bob")}
    wait_for("the alert to resolve in Alertmanager", lambda: in_alertmanager() == [], timeout=60)

    # alice's device is removed: the frozen report still says MFA, the live checks say no device,
    # and the alert fires for her.
    iam.deactivate_mfa_device(UserName="alice", SerialNumber="arn:aws:iam::123456789012:mfa/alice")
    wait_for("the alert for alice", lambda: ("123456789012", "alice") in console_alerts(), timeout=60)
    assert console_alerts() == (expected - {("123456789012", "bob")}) | {("123456789012", "alice")}


def test_every_rule_loads_and_evaluates_without_error(monitoring):
    """Prometheus accepts the rendered rules (keep_firing_for needs 2.42+) and evaluates each one
    without error (e.g. no many-to-many match with two exporters scraped), and the exporter is
    neither down nor absent."""
    prom = monitoring["prometheus"]
    wait_for("both targets scraped", lambda: len(prometheus_query(prom, 'up{job="iam-mfa-exporter"} == 1')) == 2, timeout=60)

    def rules():
        status, body = http_get(f"{prom}/api/v1/rules")
        assert status == 200, body
        return [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]

    expected = len(render_alerts.load_config()["alerts"]) + 1  # and the grace-period recording rule

    def all_evaluated():
        current = rules()
        never = [r for r in current if r["lastEvaluation"].startswith("0001-")]
        return current if len(current) == expected and not never else None

    evaluated = wait_for("every rule evaluated", all_evaluated, timeout=60)
    broken = [(r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"]
    assert not broken, broken
    keep = {r["name"]: r.get("keepFiringFor") for r in evaluated if r.get("type") == "alerting"}
    assert keep["IAMConsoleUserWithoutMFA"] == 1, keep
    assert not firing(prom, "IAMExporterDown") and not firing(prom, "IAMExporterAbsent")


def test_every_dashboard_query_returns_data(monitoring):
    prom = monitoring["prometheus"]
    # Both exporters scraped, and a little history for the range functions.
    wait_for("all three accounts scraped", lambda: len(prometheus_query(prom, "aws_iam_users")) == 3, timeout=60)
    time.sleep(3)
    empty = []
    for title, ref, expr in expressions(load()):
        if not prometheus_query(prom, expr):
            empty.append(f"{title} [{ref}]: {expr}")
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)
