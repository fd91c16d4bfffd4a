"""The dashboard shows the same numbers whether Prometheus scrapes one exporter replica or two.

As users run it: two real exporters (file mode) on the same credential reports, one Prometheus
scraping both (two targets, distinct `instance` and Prometheus-Operator-style `pod` labels) and
another scraping one of them. Every dashboard query, template variables substituted for several
selections, must give the same answer on both, without query errors, except on the exporter-health
panels that show each replica on purpose. Every query must return data with all accounts selected,
except the live MFA panels (AWS_MODE_ONLY): file mode has no live checks, so those are compared
(both empty) and must stay empty. Then the truth of empty states: an SSO-only account
(no console users) is not "0% coverage", and with the exporters gone no compliance count turns
into a green 0 while the report age stays visible."""

import datetime
import json
import math
import re
import shutil
import subprocess
import time
import urllib.parse

import pytest

from conftest import Exporter, REPORT_HEADER, ROOT, Service, aws_env, free_port, http_get, wait_for
from test_dashboard import (AWS_MODE_ONLY, HEALTH_ROW, PER_REPLICA, expressions, grafana_query_result, load,
                            panels_in_row, substitute, variable_options)

JOB = "iam-mfa-exporter"
REPORTS = [
    ROOT / "examples" / "credential-report.csv",  # 123456789012: 5 console users, 3 without MFA
    ROOT / "tests" / "fixtures" / "root-keys-no-mfa.csv",  # 111122223333: root without MFA
    ROOT / "tests" / "fixtures" / "org-member-root-no-password.csv",  # 210987654321: no root password
    ROOT / "tests" / "fixtures" / "hostile-names.csv",  # 444455556666: user names that break things
    # 555566667777: users just inside and outside each hygiene threshold (as of 2026-11-24 12:00 UTC;
    # "inside" users drift outside as time passes, the "outside" ones stay), root keys and password used.
    ROOT / "tests" / "fixtures" / "hygiene.csv",
]
SSO_ONLY = "777766665555"
HYGIENE = "555566667777"
ACCOUNTS = 6
# Console users without MFA (each with a creation-time series): 3 + 1 (legacy) + 0 + 4 (hostile
# names) + 1 (hygiene: pw-new-user) + 0 (SSO only).
WITHOUT_MFA = 9
WINDOW = 10  # seconds of history the range queries compare, one point a second
HEADER = REPORT_HEADER
# An account run the recommended way: people sign in through IAM Identity Center, root has no
# password, the only IAM user is a machine user with an access key and no console password.
SSO_REPORT = HEADER + "\n" + "\n".join([
    f"<root_account>,arn:aws:iam::{SSO_ONLY}:root,2023-01-10T10:00:00+00:00,false,N/A,N/A,N/A,false,"
    "false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
    f"ci-deploy,arn:aws:iam::{SSO_ONLY}:user/ci-deploy,2023-01-10T10:05:00+00:00,false,N/A,N/A,N/A,false,"
    "true,2023-01-10T10:05:00+00:00,2026-11-01T12:00:00+00:00,us-east-1,sts,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
]) + "\n"
# Prometheus Operator puts these on every target; an unaggregated query leaks them (and `pod`
# differs between replicas).
K8S_LABELS = {"namespace": "monitoring", "service": "iam-mfa-exporter", "endpoint": "http", "container": "iam-mfa-exporter"}
# Variable selections, as Grafana formats them in a regex matcher: All, a multi-select, one account.
SELECTIONS = [
    {"account_id": ".*"},
    {"account_id": "(123456789012|444455556666|" + SSO_ONLY + ")"},
    {"account_id": "111122223333"},
    {"account_id": SSO_ONLY},
]


class Prometheus:
    """A real Prometheus (Debian package) scraping `targets` ([(port, pod)]) every second."""

    def __init__(self, name, targets, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / f"{name}.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": JOB, "static_configs": [
                {"targets": [f"127.0.0.1:{port}"], "labels": {**K8S_LABELS, "pod": pod}} for port, pod in targets]}],
        }))
        self.service = Service(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / name}",
                                f"--web.listen-address=127.0.0.1:{self.port}"], name, tmp_path)
        wait_for(f"{name} ready", lambda: http_get(self.url + "/-/ready")[0] == 200)

    def api(self, path, **params):
        """(HTTP status, decoded body) of a query API call; errors are answers, not exceptions."""
        status, body = http_get(f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params))
        return status, json.loads(body)

    def query(self, expr, at=None):
        status, body = self.api("query", query=expr, **({"time": f"{at:.3f}"} if at else {}))
        assert status == 200 and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def value(self, expr, at=None):
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None


def exporter(reports):
    args = ["--refresh.interval=1s"]
    for report in reports:
        args += ["--report.file", str(report)]
    return Exporter(args, aws_env("http://127.0.0.1:9"))


def canonical(result):
    """A query result as a comparable set: (labels, value(s)) per series; NaN compares equal."""
    out = set()
    for series in result:
        labels = tuple(sorted(series["metric"].items()))
        if "value" in series:
            out.add((labels, series["value"][1]))
        else:
            out.add((labels, tuple(tuple(v) for v in series["values"])))
    return out


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    assert shutil.which("prometheus"), "prometheus is missing: run scripts/install-test-deps.sh"
    tmp = tmp_path_factory.mktemp("replicas")
    sso = tmp / "sso-only.csv"
    sso.write_text(SSO_REPORT)
    reports = [*REPORTS, sso]
    r0, r1 = exporter(reports), exporter(reports)
    started = []
    try:
        pair = Prometheus("pair", [(r0.port, "iam-mfa-exporter-0"), (r1.port, "iam-mfa-exporter-1")], tmp)
        started.append(pair)
        single = Prometheus("single", [(r0.port, "iam-mfa-exporter-0")], tmp)
        started.append(single)
        for prom, n in ((pair, 2), (single, 1)):
            # Every account refreshed on every replica, and enough history for the range
            # queries and functions ($__rate_interval).
            for metric in ("aws_iam_console_users", "aws_iam_account_info", "aws_iam_user_created_timestamp_seconds"):
                history = f"count(count_over_time({metric}[{WINDOW + 2}s]) >= {WINDOW})"
                wait_for(f"{metric} of every account scraped {WINDOW} times",
                         lambda: prom.value(history) == n * (ACCOUNTS if metric != "aws_iam_user_created_timestamp_seconds" else WITHOUT_MFA),
                         timeout=60)
        yield {"pair": pair, "single": single}
    finally:
        for prom in started:
            prom.service.stop()
        assert r0.stop() == 0 and r1.stop() == 0


def health_titles(dashboard):
    return {p["title"] for p in panels_in_row(dashboard, HEALTH_ROW)}


def test_the_pair_really_has_two_replicas(replicas):
    """Guards the comparison below: the pair must hold each series twice, with distinct instance
    and pod labels, or 'same result' would prove nothing."""
    pair, single = replicas["pair"], replicas["single"]
    series = pair.query('aws_iam_console_users{account_id="123456789012"}')
    assert len(series) == 2
    assert len({s["metric"]["instance"] for s in series}) == 2 and len({s["metric"]["pod"] for s in series}) == 2
    assert len(single.query('aws_iam_console_users{account_id="123456789012"}')) == 1
    # A naive query does change with the replica count.
    assert pair.value("sum(aws_iam_console_users)") == 2 * single.value("sum(aws_iam_console_users)")


def compare_once(replicas, selection):
    pair, single = replicas["pair"], replicas["single"]
    at = time.time()
    errors, differ, empty, aws_only_with_data, compared = [], [], [], [], 0
    for panel, target, expr in expressions(load(), selection, with_targets=True):
        where = f"{panel['title']} [{target['refId']}]: {expr}"
        results = []
        for prom in (pair, single):
            if target.get("instant"):
                status, body = prom.api("query", query=expr, time=f"{at:.3f}")
            else:  # Grafana runs time series panels as range queries.
                status, body = prom.api("query_range", query=expr, start=f"{at - WINDOW:.3f}", end=f"{at:.3f}", step="1")
            if status != 200 or body.get("status") != "success" or body.get("warnings"):
                errors.append(f"{where}\n    -> {body.get('error') or body.get('warnings')}")
                break
            results.append(canonical(body["data"]["result"]))
        else:
            if panel["title"] in PER_REPLICA:
                continue
            compared += 1
            if results[0] != results[1]:
                differ.append(f"{where}\n    two replicas: {sorted(results[0])}\n    one replica:  {sorted(results[1])}")
            elif panel["title"] in AWS_MODE_ONLY:
                # Live MFA: no data in file mode, and that is the point of the exemption.
                if results[0]:
                    aws_only_with_data.append(where)
            elif not results[0]:
                empty.append(where)
    # A scrape that failed (a busy machine) leaves a gap in one server only: not the dashboard's
    # fault. The comparison counts only when every target was up over the whole window.
    # Likewise every account's series must reach back past the window's first point on both servers
    # (under load a scrape arrives late and the first point is missing on one side only).
    clean = all(prom.value(f'min(min_over_time(up{{job="{JOB}"}}[{WINDOW + 5}s]))', at) == 1
                and (prom.value(f"min(count_over_time(aws_iam_console_users[{WINDOW + 3}s]))", at) or 0) >= WINDOW + 2
                for prom in (pair, single))
    # File mode has no live MFA checks: a live panel with data here means the exemption is stale.
    assert not aws_only_with_data, "AWS_MODE_ONLY panels with data in file mode:\n" + "\n".join(aws_only_with_data)
    return clean, (errors, differ, empty, compared)


def compare(replicas, selection):
    """Runs every dashboard query on both Prometheus servers at the same instant (range queries over
    the last WINDOW seconds, step 1s): (query errors, differing queries, queries without data,
    number compared). Exporter-health panels that show each replica are run, not compared; live MFA
    panels (AWS_MODE_ONLY) are compared but never count as without data, and must have none."""
    def attempt():
        clean, results = compare_once(replicas, selection)
        return results if clean else None

    return wait_for("a comparison over a window without failed scrapes", attempt, timeout=60, interval=1)


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: s["account_id"])
def test_every_query_is_the_same_with_one_replica_or_two(replicas, selection):
    assert PER_REPLICA <= health_titles(load()), "only exporter-health panels may differ per replica"
    errors, differ, empty, compared = compare(replicas, selection)
    assert not errors and not differ, (
        f"{len(errors)} queries fail:\n" + "\n".join(errors)
        + f"\n{len(differ)} of {compared} compared queries change with two replicas:\n" + "\n".join(differ))
    assert compared >= 16
    if selection["account_id"] == ".*":
        # Compared on data, not on two empty answers.
        assert not empty, "compliance queries without data:\n" + "\n".join(empty)


def resolve_variables(prom):
    """The template variables as Grafana resolves them against `prom`: (All value of each, the
    account options {value: text})."""
    variables = {v["name"]: v for v in load()["templating"]["list"]}

    def label_values(variable, selected):
        query = substitute(variables[variable]["query"]["query"], selected)
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        status, body = prom.api(f"label/{m.group(2)}/values", **{"match[]": m.group(1)})
        assert status == 200, body
        return body["data"]

    def grafana_all(variable, values):
        # includeAll: the allValue if set, else the options as a regex alternation.
        v = variables[variable]
        # (Grafana's Prometheus data source escapes regex metacharacters for a PromQL string.)
        return v.get("allValue") or "(" + "|".join(re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", x) for x in values) + ")"

    selected = {"cluster": grafana_all("cluster", label_values("cluster", {}))}
    selected["job"] = grafana_all("job", label_values("job", selected))
    inner = re.fullmatch(r"query_result\((.+)\)", substitute(variables["account_id"]["query"]["query"], selected)).group(1)
    options = variable_options(variables["account_id"], [grafana_query_result(s) for s in prom.query(inner)])
    return selected, options


def test_variables_resolve_alike_and_all_of_them_gives_the_same_numbers(replicas):
    """The variables as Grafana would fill them from each Prometheus: the same options, no
    cluster label needed, accounts listed once each (replicas deduplicated); then every query
    with those values (job = the list of exporter jobs, as Grafana's All sends it)."""
    pair_vars, pair_accounts = resolve_variables(replicas["pair"])
    single_vars, single_accounts = resolve_variables(replicas["single"])
    assert pair_vars == single_vars == {"cluster": ".*", "job": f"({JOB})"}
    # File mode knows no account names: the id is shown.
    expected = {a: a for a in ("123456789012", "111122223333", "210987654321", "444455556666", HYGIENE, SSO_ONLY)}
    assert pair_accounts == single_accounts == expected
    selection = {**pair_vars, "account_id": "(" + "|".join(sorted(pair_accounts)) + ")"}
    errors, differ, empty, compared = compare(replicas, selection)
    assert not errors and not differ and not empty, (errors, differ, empty)
    for panel, target, expr in expressions(load(), selection, with_targets=True):
        if panel["title"] == "Console users without MFA":
            assert replicas["pair"].value(expr) == WITHOUT_MFA


def test_per_replica_health_panels_label_each_replica(replicas):
    """Health panels that do show each replica say which one: `instance` in the legend or table."""
    dashboard = load()
    for panel, target, expr in expressions(dashboard, with_targets=True):
        if panel["title"] not in PER_REPLICA:
            continue
        for series in replicas["pair"].query(expr):
            assert "instance" in series["metric"], (panel["title"], series)
        if panel["type"] != "table":
            assert "{{instance}}" in target.get("legendFormat", ""), (panel["title"], target)


def by_title(dashboard, title, selection=None, ref="A"):
    for panel, target, expr in expressions(dashboard, selection, with_targets=True):
        if panel["title"] == title and target["refId"] == ref:
            return expr
    raise AssertionError(f"no query {title} [{ref}]")


def test_numbers_are_right_on_both(replicas):
    d = load()
    for prom in (replicas["pair"], replicas["single"]):
        assert prom.value(by_title(d, "Console users without MFA")) == WITHOUT_MFA
        # Console users with MFA: 2 of 5, 0 of 1, 1 of 1, 0 of 4, 3 of 4 (hygiene), none in the SSO account.
        assert prom.value(by_title(d, "Console users with MFA")) == pytest.approx(100 * 6 / 15)
        # Root without MFA with a password: only 111122223333 (210987654321 and the SSO account
        # have no root password).
        assert prom.value(by_title(d, "Accounts with root MFA off")) == 1
        assert prom.value(by_title(d, "Root access keys")) == 4  # both keys of 111122223333's and 555566667777's roots
        table = prom.query(by_title(d, "Non-compliant console users"))
        assert len(table) == WITHOUT_MFA
        assert {"back\\slash", "new\nline", 'quote"d', "ünï{cødé}=😀"} <= {s["metric"]["user"] for s in table}
        # No per-replica or Kubernetes columns.
        for ref in "ABCD":
            for series in prom.query(by_title(d, "Non-compliant console users", ref=ref)):
                assert set(series["metric"]) <= {"account_id", "account_name", "user"}, series
        top = prom.query(by_title(d, "Top accounts by console users without MFA"))
        assert {s["metric"]["account_id"]: float(s["value"][1]) for s in top}["444455556666"] == 4


def test_sso_only_account_is_not_zero_percent(replicas):
    """An account without console users has no MFA coverage to speak of: NaN (shown as "no
    console users"), not 0% in red; and it draws no per-account coverage line."""
    d = load()
    only_sso = {"account_id": SSO_ONLY}
    for prom in (replicas["pair"], replicas["single"]):
        assert math.isnan(prom.value(by_title(d, "Console users with MFA", only_sso)))
        assert prom.query(by_title(d, "MFA coverage per account", only_sso)) == []
        assert prom.query(by_title(d, "Fleet-wide MFA coverage over time", only_sso)) == []
        # Counts of a healthy account are a real 0, derived from its series.
        assert prom.value(by_title(d, "Console users without MFA", only_sso)) == 0
        assert prom.value(by_title(d, "Accounts with root MFA off", only_sso)) == 0
        assert prom.value(by_title(d, "Root access keys", only_sso)) == 0
        assert prom.value(by_title(d, "Two active keys", only_sso)) == 0
        assert prom.query(by_title(d, "Users with two active access keys", only_sso)) == []


def epoch(iso):
    return datetime.datetime.fromisoformat(iso).timestamp()


def days_ago(ts, at):
    return math.floor((at - ts) / 86400)


def test_hygiene_panels_are_right_on_both(replicas):
    """The hygiene fixture: counts equal the users listed, users outside a threshold are listed with
    the days since their timestamp, inactive keys never are, and the thresholds read in days."""
    d = load()
    only = {"account_id": HYGIENE}
    checks = {  # per-account count column -> (per-user table, count panel)
        "A": ("Users with an unused console password", "Unused console passwords"),
        "B": ("Users with an unused access key", "Unused access keys"),
        "C": ("Access keys overdue for rotation", "Access keys to rotate"),
        "D": ("Users with two active access keys", "Two active keys"),
    }
    for prom in (replicas["pair"], replicas["single"]):
        at = round(time.time(), 3)  # the instant Prometheus evaluates time() at, to the millisecond
        rows = {}
        for ref, (table, stat) in checks.items():
            result = prom.query(by_title(d, table, only), at)
            for series in result:
                # No per-replica or Kubernetes columns.
                assert set(series["metric"]) <= {"account_id", "account_name", "user", "key"}, series
            rows[table] = {(s["metric"]["user"], s["metric"].get("key")): float(s["value"][1]) for s in result}
            # The exact counts (not capped here) match the rows, per account and fleet-wide.
            (count,) = prom.query(by_title(d, "Hygiene findings per account", only, ref=ref), at)
            assert float(count["value"][1]) == len(rows[table]) > 0, table
            assert prom.value(by_title(d, stat, only), at) == len(rows[table]), stat
        pw, unused_keys = rows["Users with an unused console password"], rows["Users with an unused access key"]
        rotation, two = rows["Access keys overdue for rotation"], rows["Users with two active access keys"]
        # Just outside each threshold (45d unused, 90d rotation): listed, for good.
        assert pw[("pw-outside", None)] == days_ago(epoch("2026-10-10T11:59:59+00:00"), at)
        assert pw[("pw-never-used-set-long-ago", None)] == days_ago(epoch("2025-06-01T00:00:00+00:00"), at)
        assert unused_keys[("key-unused-outside", "1")] == days_ago(epoch("2026-10-10T11:59:59+00:00"), at)
        assert rotation[("key-rotation-outside", "1")] == days_ago(epoch("2026-08-26T11:59:59+00:00"), at)
        assert two == {("two-keys", None): 1}
        # Every listed user is past its threshold; an inactive key is never listed.
        assert min(pw.values()) >= 45 and min(unused_keys.values()) >= 45 and min(rotation.values()) >= 90
        assert "inactive-old-key" not in {user for table in rows.values() for user, _ in table}
        # Root: console sign-in and the later use of its two keys, in days.
        expr_a, expr_b = (by_title(d, "Root last use", only, ref=ref) for ref in "AB")
        assert prom.value(expr_a, at) == days_ago(epoch("2026-11-24T08:00:00+00:00"), at)
        assert prom.value(expr_b, at) == days_ago(epoch("2026-11-23T12:00:00+00:00"), at)
        thresholds = {s["metric"]["check"]: float(s["value"][1]) for s in prom.query(by_title(d, "Hygiene thresholds"), at)}
        assert thresholds == {"unused": 45, "rotation": 90, "root_used": 1}


def test_with_the_exporters_gone_counts_have_no_data_but_report_age_stays(tmp_path):
    """Exporter down: no compliance stat may show a (green) 0. The report age, which is what an
    operator needs then, keeps showing."""
    d = load()
    exp = exporter(REPORTS[:1])
    prom = Prometheus("gone", [(exp.port, "iam-mfa-exporter-0")], tmp_path)
    try:
        wait_for("the exporter scraped", lambda: prom.value("count(aws_iam_console_users)") == 1, timeout=60)
        # The exporter here reads a report file: AWS-mode-only stats have no data to begin with.
        compliance = [p for p in d["panels"] if p["type"] == "stat" and p["title"] not in health_titles(d)
                      and p["title"] not in AWS_MODE_ONLY]
        assert len(compliance) >= 5
        for panel in compliance:
            assert prom.query(by_title(d, panel["title"])), panel["title"]
        assert exp.stop() == 0
        wait_for("the scrape to fail", lambda: prom.value(f'up{{job="{JOB}"}}') == 0, timeout=30)
        for panel in compliance:
            expr = by_title(d, panel["title"])
            if panel["title"] == "Oldest report":
                age = prom.value(expr)
                assert age is not None and age > 3600, age  # examples/ report: generated long ago
            else:
                assert prom.query(expr) == [], (panel["title"], expr)
    finally:
        prom.service.stop()
        if exp.proc.poll() is None:
            exp.stop()
