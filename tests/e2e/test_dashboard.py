"""The Grafana dashboard: type-checked against npm @grafana/schema, every PromQL expression valid
for promtool, and its conventions (variables, filters, colours of empty states). That every
expression returns data is checked against a live Prometheus in test_monitoring.py; that it gives
the same numbers with one exporter replica or two, in test_dashboard_replicas.py."""

import json
import re
import subprocess

import pytest

from conftest import ROOT

DASHBOARD = ROOT / "dashboards" / "iam-mfa.json"
CHECKER = ROOT / "tests" / "dashboard"

# Grafana's template variables, as the checks substitute them: the All value of `cluster` and
# `account_id` (".*", which also matches series without the label), the conventional scrape job.
VARIABLES = {"cluster": ".*", "job": "iam-mfa-exporter", "account_id": ".*",
             "__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
HEALTH_ROW = "Exporter health"
# Exporter-health panels that show each replica (labelled with `instance`) on purpose; every other
# query must give the same answer with one exporter replica or two (test_dashboard_replicas.py).
PER_REPLICA = {"Exporter up and version", "Refresh status", "Refresh errors by account",
               "Account discovery", "Discovery errors and restarted refresh loops",
               "Time since the last account discovery"}
LIVE_MFA_ROW = "MFA strength (live)"
HYGIENE_ROW = "Credential hygiene"
# Metrics of the live MFA checks (ListMFADevices): AWS mode only, absent when the exporter reads
# report files, which cannot tell device kinds (docs/metrics.md, "Live MFA").
LIVE_MFA_METRICS = {"aws_iam_console_users_mfa_strength", "aws_iam_console_users_mfa_lag_corrected",
                    "aws_iam_mfa_devices", "aws_iam_mfa_device_checks_total",
                    "aws_iam_mfa_devices_last_checked_oldest_timestamp_seconds",
                    "aws_iam_console_user_mfa_below_required_strength"}
# The panels of the live MFA row, built on those metrics alone: without data in file mode, so the
# file-mode replica test (test_dashboard_replicas.py) compares them (two empty answers must agree)
# but cannot require data from them, as it cannot from the AWS-mode-only discovery panels of
# PER_REPLICA. test_monitoring.py requires their data from an AWS-mode exporter on moto.
LIVE_MFA_PANELS = {"MFA strength per account", "Live MFA corrections of the report", "MFA devices by kind",
                   "Live MFA checks by result", "Oldest device look",
                   "Console users below the required MFA strength"}
# Root's MFA kind needs GetAccountSummary and ListVirtualMFADevices: AWS mode only as well.
ROOT_KIND_PANEL = "Accounts with root hardware or FIDO MFA"
AWS_MODE_ONLY = LIVE_MFA_PANELS | {ROOT_KIND_PANEL}


def load():
    return json.loads(DASHBOARD.read_text())


def substitute(expr, values=None):
    """`expr` with $name / ${name} / ${name:format} replaced; an unknown variable is an error.
    ($1 in label_replace is not a variable.)"""
    values = {**VARIABLES, **(values or {})}
    return re.sub(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)",
                  lambda m: values[m.group(1) or m.group(2)], expr)


def expressions(dashboard, values=None, with_targets=False):
    """(panel title, refId, expr with variables substituted) of every query; with `with_targets`,
    (panel, target, expr)."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = substitute(target["expr"], values)
            out.append((panel, target, expr) if with_targets else (panel["title"], target["refId"], expr))
    return out


def panels_in_row(dashboard, row_title):
    """The panels under the (expanded) row titled `row_title`."""
    out, current = [], None
    for panel in sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
        elif current == row_title:
            out.append(panel)
    return out


def typecheck(dashboard, tmp_path):
    """Runs tsc on the dashboard as a `Dashboard` object literal; (returncode, output)."""
    source = (
        "import type { Dashboard } from '@grafana/schema';\n"
        "// JSON has no enums: enum-typed fields take their string values. Everything else stays\n"
        "// exact, so excess-property checks catch unknown keys.\n"
        "type Loose<T> = T extends string ? `${T}` : T extends Array<infer U> ? Array<Loose<U>>"
        " : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;\n"
        f"export const dashboard: Loose<Dashboard> = {json.dumps(dashboard, indent=2)};\n"
    )
    gen = CHECKER / f"{tmp_path.name}.gen.ts"
    gen.write_text(source)
    try:
        result = subprocess.run(
            [str(CHECKER / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--skipLibCheck",
             "--target", "es2020", "--module", "commonjs", "--moduleResolution", "node", str(gen)],
            cwd=CHECKER, capture_output=True, text=True,
        )
    finally:
        gen.unlink()
    return result.returncode, result.stdout + result.stderr


def test_dashboard_matches_grafana_schema(tmp_path):
    code, output = typecheck(load(), tmp_path)
    assert code == 0, output


def test_schema_check_catches_unknown_keys(tmp_path):
    dashboard = load()
    dashboard["panels"][1]["fieldConfig"]["defaults"]["colour"] = "red"
    code, output = typecheck(dashboard, tmp_path)
    assert code != 0 and "colour" in output, output


# Series without account_id: exporter-wide (discovery, restarted loops, build info, hygiene
# thresholds) or Prometheus'.
EXPORTER_WIDE = ("aws_iam_account_discovery_success", "aws_iam_account_discovery_errors_total",
                 "aws_iam_refresh_task_restarts_total", "aws_iam_exporter_build_info",
                 "aws_iam_hygiene_threshold_seconds", "aws_iam_account_discovery_last_success_timestamp_seconds", "up")
SELECTOR = re.compile(r"\b(aws_iam_[a-z_]+|up)\b(\{[^}]*\})?")
NEUTRAL = "#808080"
# The IAMCredentialReportStale alert (alerts/iam-mfa.rules.yml) fires past 8h; AWS builds a report
# at most every 4h and the exporter refreshes every 15m by default.
STALE_AFTER, REPORT_CYCLE, REFRESH = 8 * 3600, 4 * 3600, 15 * 60


def targets(dashboard):
    return [(panel, target) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def compliance_stats(dashboard):
    health = {p["title"] for p in panels_in_row(dashboard, HEALTH_ROW)}
    return [p for p in dashboard["panels"] if p["type"] == "stat" and p["title"] not in health]


def test_dashboard_conventions():
    d = load()
    for panel in d["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"
        assert panel.get("targets"), panel["title"]
    titles = [p["title"] for p in d["panels"]]
    assert len(titles) == len(set(titles)), titles
    assert len({p["id"] for p in d["panels"]}) == len(d["panels"])


def test_variables():
    variables = {v["name"]: v for v in load()["templating"]["list"]}
    assert list(variables) == ["datasource", "cluster", "job", "account_id"]
    assert variables["datasource"]["type"] == "datasource"
    for name in ("cluster", "job", "account_id"):
        v = variables[name]
        assert v["type"] == "query" and v["multi"] and v["includeAll"], name
        assert v["datasource"]["uid"] == "${datasource}", name
        assert v["current"]["value"] == ["$__all"], name
    # No `cluster` label at all (one cluster) must work: All is ".*", which matches an absent label.
    assert variables["cluster"]["allValue"] == ".*"
    assert "label_values(aws_iam_exporter_build_info, cluster)" in variables["cluster"]["query"]["query"]
    # All jobs = the jobs that expose the exporter's build info (no allValue: Grafana lists them),
    # so `up` of unrelated targets never shows.
    assert "allValue" not in variables["job"]
    assert 'aws_iam_exporter_build_info{cluster=~"$cluster"}, job)' in variables["job"]["query"]["query"]
    account = variables["account_id"]
    assert account["allValue"] == ".*"
    assert "aws_iam_account_info" in account["query"]["query"] and 'job=~"$job"' in account["query"]["query"]
    assert "(?<value>" in account["regex"] and "(?<text>" in account["regex"]


def grafana_query_result(series):
    """One option string the way Grafana's Prometheus query_result() variable writes it."""
    metric = dict(series["metric"])
    name = metric.pop("__name__", "")
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in metric.items()) + "} " + series["value"][1] + " 1700000000000"


def variable_options(variable, strings):
    """{value: text} of a query variable's options from `strings`, applying its regex as Grafana does
    (named groups `value` and `text`; an empty group falls back to the other)."""
    pattern = variable["regex"]
    assert pattern.startswith("/") and pattern.endswith("/")
    regex = re.compile(pattern[1:-1].replace("(?<", "(?P<"))
    options = {}
    for s in strings:
        m = regex.search(s)
        if m:
            options.setdefault(m.group("value") or m.group("text"), m.group("text") or m.group("value"))
    return options


def test_account_variable_shows_names_and_selects_ids():
    account = {v["name"]: v for v in load()["templating"]["list"]}["account_id"]
    strings = [grafana_query_result({"metric": {"account_id": "123456789012", "account_name": "Production, EU \"main\""},
                                     "value": [0, "1"]}),
               # Prometheus drops empty labels: an account without a name has no account_name.
               grafana_query_result({"metric": {"account_id": "210987654321"}, "value": [0, "1"]})]
    assert variable_options(account, strings) == {"123456789012": 'Production, EU "main"', "210987654321": "210987654321"}


def test_every_query_filters_on_cluster_job_and_account():
    for panel, target in targets(load()):
        selectors = SELECTOR.findall(target["expr"])
        assert selectors, (panel["title"], target["expr"])
        for metric, matchers in selectors:
            where = (panel["title"], target["refId"], metric)
            assert matchers, f"{where}: no label matchers"
            assert 'cluster=~"$cluster"' in matchers and 'job=~"$job"' in matchers, where
            assert metric in EXPORTER_WIDE or 'account_id=~"$account_id"' in matchers, where


def test_counts_never_fake_a_zero_and_legends_name_accounts():
    for panel, target in targets(load()):
        expr = target["expr"]
        # "or vector(0)" turns an absent exporter into a green 0; clamp_min(..., 1) turns "no
        # console users" into 0%.
        assert "vector(0)" not in expr and "clamp_min" not in expr, (panel["title"], expr)
        legend = target.get("legendFormat", "")
        if "{{account_id}}" in legend:
            assert "{{account_name}}" in legend and "group_left (account_name)" in expr, (panel["title"], legend)


def test_no_compliance_stat_is_green_without_data():
    """Grafana colours a stat without a value with its base threshold step (and runs value
    mappings first): the base must be neutral and "No data" must say so."""
    stats = compliance_stats(load())
    assert len(stats) >= 5
    for panel in stats:
        defaults = panel["fieldConfig"]["defaults"]
        base = defaults["thresholds"]["steps"][0]
        assert base["value"] is None and base["color"] == NEUTRAL, panel["title"]
        assert defaults["noValue"] == "No data", panel["title"]
        null = [m for m in defaults["mappings"] if m["type"] == "special" and m["options"]["match"] == "null"]
        assert null and null[0]["options"]["result"]["color"] == NEUTRAL, panel["title"]


def test_no_console_users_is_not_zero_percent():
    (coverage,) = [p for p in load()["panels"] if p["title"] == "Console users with MFA"]
    expr = coverage["targets"][0]["expr"]
    # 0 console users: 0 / 0 = NaN (no clamp_min), shown as text in a neutral colour. lastNotNull
    # skips NaN in Grafana, so the stat reduces with "last" (an instant query has one point).
    assert "/ sum(" in expr and "> 0" not in expr
    defaults = coverage["fieldConfig"]["defaults"]
    nan = [m for m in defaults["mappings"] if m["type"] == "special" and m["options"]["match"] == "nan"]
    assert nan and nan[0]["options"]["result"]["text"] == "no console users"
    assert nan[0]["options"]["result"]["color"] not in ("red", "green", "orange")
    assert coverage["options"]["reduceOptions"]["calcs"] == ["last"]
    # Per-account and fleet-wide lines leave such accounts out instead.
    for panel in load()["panels"]:
        if panel["type"] == "timeseries" and "coverage" in panel["title"].lower():
            assert "> 0)" in panel["targets"][0]["expr"], panel["title"]


def test_report_age_thresholds_match_the_alert():
    panels = {p["title"]: p for p in load()["panels"]}
    for title in ("Oldest report", "Report age"):
        panel = panels[title]
        steps = {s["color"]: s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]}
        # A healthy report is up to one AWS cycle plus one refresh old: still green.
        assert steps["orange"] > REPORT_CYCLE + REFRESH, title
        assert steps["red"] == STALE_AFTER, title
        # Stale data is when the age matters: keep it when the exporter stops answering.
        assert "last_over_time(aws_iam_credential_report_generated_timestamp_seconds{" in panel["targets"][0]["expr"]


def test_user_table_colours_the_grace_period():
    (table,) = [p for p in load()["panels"] if p["title"] == "Non-compliant console users"]
    (days,) = [o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Days since creation"]
    thresholds = next(p["value"] for p in days["properties"] if p["id"] == "thresholds")
    assert [s["value"] for s in thresholds["steps"]] == [None, 7]
    assert thresholds["steps"][1]["color"] == "red"
    renamed = table["transformations"][1]["options"]["renameByName"]
    assert renamed["Value #D"] == "Days since creation"


def test_security_panels_exist():
    panels = {p["title"]: p for p in load()["panels"]}
    for title in ("Fleet-wide MFA coverage over time", "Exporter up and version", "Per-user series dropped by the cap"):
        assert title in panels, title
    exprs = " ".join(t["expr"] for t in panels["Exporter up and version"]["targets"])
    assert "up{" in exprs and "aws_iam_exporter_build_info{" in exprs and "version, revision" in exprs
    assert {p["title"] for p in panels_in_row(load(), HEALTH_ROW)} >= PER_REPLICA


def metrics_of(panel):
    return {metric for target in panel.get("targets", []) for metric, _ in SELECTOR.findall(target["expr"])}


def overrides_by_name(panel):
    """{field or series name: {property id: value}} of a panel's byName overrides."""
    return {o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
            for o in panel["fieldConfig"]["overrides"] if o["matcher"]["id"] == "byName"}


def test_live_mfa_panels_are_the_aws_mode_only_ones():
    """AWS_MODE_ONLY, the panels the file-mode tests cannot get data from, is exactly the live MFA
    row, and those panels use nothing but live MFA metrics (and account names): no panel elsewhere
    depends on them, and none of them hides a metric that file mode has."""
    d = load()
    row = {p["title"]: p for p in panels_in_row(d, LIVE_MFA_ROW)}
    assert set(row) == LIVE_MFA_PANELS
    for title, panel in row.items():
        assert LIVE_MFA_METRICS & metrics_of(panel), title
        assert metrics_of(panel) <= LIVE_MFA_METRICS | {"aws_iam_account_info"}, title
        assert "AWS mode" in panel["description"], title
    for panel in d["panels"]:
        if panel["title"] not in LIVE_MFA_PANELS:
            assert not LIVE_MFA_METRICS & metrics_of(panel), panel["title"]
    root_kind = next(p for p in d["panels"] if p["title"] == ROOT_KIND_PANEL)
    assert metrics_of(root_kind) == {"aws_iam_root_hardware_mfa"}
    used = set().union(*(metrics_of(p) for p in row.values()))
    assert used >= LIVE_MFA_METRICS


def test_live_mfa_colours_and_names_every_label_value():
    panels = {p["title"]: p for p in load()["panels"]}
    strength = overrides_by_name(panels["MFA strength per account"])
    colours = {name: props["color"]["fixedColor"] for name, props in strength.items()}
    assert colours == {"phishing_resistant": "green", "hardware": "blue", "virtual": "orange", "unknown": NEUTRAL}
    bars = panels["MFA strength per account"]
    assert bars["type"] == "barchart" and bars["options"]["stacking"] == "normal"
    matrix = bars["transformations"][0]
    assert matrix["id"] == "groupingToMatrix" and matrix["options"]["columnField"] == "strength"
    # Every value of each label has a colour and a readable name.
    for title, values in (("Live MFA corrections of the report", {"enabled", "removed", "deleted"}),
                          ("MFA devices by kind", {"virtual", "hardware", "fido"}),
                          ("Live MFA checks by result", {"ok", "throttled", "access_denied", "other"})):
        styled = overrides_by_name(panels[title])
        assert set(styled) == values, title
        assert all("color" in props and "displayName" in props for props in styled.values()), title
    checks = overrides_by_name(panels["Live MFA checks by result"])
    assert checks["access_denied"]["color"]["fixedColor"] == "red"
    assert "iam:ListMFADevices" in checks["access_denied"]["displayName"]
    assert "rate(aws_iam_mfa_device_checks_total{" in panels["Live MFA checks by result"]["targets"][0]["expr"]


HYGIENE_COUNTS = {"aws_iam_console_users_password_unused": "Unused console passwords",
                  "aws_iam_access_keys_unused": "Unused access keys",
                  "aws_iam_access_keys_rotation_overdue": "Access keys to rotate",
                  "aws_iam_users_with_two_active_access_keys": "Two active keys"}
HYGIENE_USERS = {"aws_iam_user_password_unused_since_timestamp_seconds": "Users with an unused console password",
                 "aws_iam_access_key_unused_since_timestamp_seconds": "Users with an unused access key",
                 "aws_iam_access_key_last_rotated_timestamp_seconds": "Access keys overdue for rotation",
                 "aws_iam_user_two_active_access_keys": "Users with two active access keys"}


def test_hygiene_row():
    d = load()
    row = {p["title"]: p for p in panels_in_row(d, HYGIENE_ROW)}
    # A fleet-wide count per check, and the same counts per account.
    for metric, title in HYGIENE_COUNTS.items():
        assert row[title]["type"] == "stat" and metrics_of(row[title]) == {metric}, title
        assert f"max by (account_id) ({metric}{{" in " ".join(t["expr"] for t in row["Hygiene findings per account"]["targets"])
    # A table of users per check, with days since the timestamp (a timestamp, never an age, is exported).
    for metric, title in HYGIENE_USERS.items():
        table = row[title]
        assert table["type"] == "table" and metrics_of(table) == {metric, "aws_iam_account_info"}, title
        expr = table["targets"][0]["expr"]
        assert "group_left (account_name)" in expr, title
        if metric.endswith("_timestamp_seconds"):
            assert expr.startswith("floor((time() - max by (account_id, user") and ") / 86400)" in expr, title
        if "access_key_" in metric:
            assert "key" in table["transformations"][0]["options"]["indexByName"], title
    root = row["Root last use"]
    assert metrics_of(root) == {"aws_iam_root_password_last_used_timestamp_seconds",
                                "aws_iam_root_access_key_last_used_timestamp_seconds", "aws_iam_account_info"}
    # The thresholds in force, in days, each named.
    thresholds = row["Hygiene thresholds"]
    assert thresholds["targets"][0]["expr"].endswith(") / 86400") and thresholds["targets"][0]["legendFormat"] == "{{check}}"
    assert set(overrides_by_name(thresholds)) == {"unused", "rotation", "root_used"}


def test_every_expression_is_valid_promql(tmp_path):
    exprs = expressions(load())
    assert len(exprs) >= 12
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:q{i}", "expr": expr} for i, (_, _, expr) in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("bad", ["sum(", 'aws_iam_users{account_id=~"$account_id"'])
def test_promql_check_catches_bad_expressions(tmp_path, bad):
    path = tmp_path / "bad.yml"
    path.write_text(json.dumps({"groups": [{"name": "x", "rules": [{"record": "x:y", "expr": bad}]}]}))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode != 0
