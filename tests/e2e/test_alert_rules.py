"""The alert rules: the committed alerts/iam-mfa.rules.yml is the current rendering of its template
and alerts/config.yml; `promtool check rules` and the `promtool test rules` unit tests; the
settings of config.yml change every rule they should (and the rules behave accordingly under
promtool); the renderer rejects bad settings; severities, docs and runbook stay in step; the
enforce-MFA policy in the runbook is valid JSON with the statements the runbook explains."""

import importlib.util
import json
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

RULES = ROOT / "alerts" / "iam-mfa.rules.yml"
RULE_TESTS = ROOT / "alerts" / "tests" / "iam-mfa.rules.test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
README = ROOT / "README.md"
RENDER = ROOT / "scripts" / "render-alerts.py"
DEFAULT_SELECTOR = 'job="iam-mfa-exporter"'


def load_renderer():
    spec = importlib.util.spec_from_file_location("render_alerts", RENDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_alerts = load_renderer()


def alert_rules(text: str) -> dict:
    return {r["alert"]: r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}


def promtool(*args):
    return subprocess.run(["promtool", *map(str, args)], capture_output=True, text=True)


# Settings that differ from alerts/config.yml in every key, and a promtool test that passes only
# with them applied. test_helm.py renders the chart's PrometheusRule with the same settings and
# runs the same test on it.
CUSTOM_SETTINGS = {
    "selector": 'job="aws-iam",cluster="eu-1"',
    "newUserGracePeriod": "1d",
    "keepFiringFor": "5m",
    "runbookUrlPattern": "https://wiki.example.com/runbooks/{alertname}#{anchor}",
    "alerts": {"IAMRootAccountVirtualMFA": {"severity": "info"}, "IAMConsoleUserWithoutMFA": {"for": "1h"}},
}


def custom_settings_test(rule_file) -> dict:
    """promtool unit tests of the rules rendered with CUSTOM_SETTINGS."""
    scrape = 'job="aws-iam",cluster="eu-1",instance="10.0.0.1:10027"'
    console_annotations = {
        "summary": "IAM user bob has console access without MFA",
        "description": 'IAM user "bob" in account 111111111111 can sign in to the AWS console with a password but has no MFA '
                       "device, and was created more than the grace period ago (CIS AWS Foundations, Security Hub IAM.5). "
                       "Enable MFA for the user, or remove the console password if the user does not need the console.",
        "runbook_url": "https://wiki.example.com/runbooks/IAMConsoleUserWithoutMFA#iamconsoleuserwithoutmfa",
    }
    return {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                # Scraped as job="aws-iam" in cluster eu-1: the exporter is not absent; a console
                # user two days old (grace period 1d) alerts after `for: 1h`, not 30m; the same
                # series under the default job are ignored; root's virtual MFA is `info`.
                "interval": "1m",
                "input_series": [
                    {"series": f"up{{{scrape}}}", "values": "1x120"},
                    {"series": f'aws_iam_console_user_without_mfa{{account_id="111111111111",user="bob",{scrape}}}', "values": "1x120"},
                    {"series": f'aws_iam_user_created_timestamp_seconds{{account_id="111111111111",user="bob",{scrape}}}', "values": "-172800x120"},
                    {"series": 'aws_iam_console_user_without_mfa{account_id="111111111111",user="eve",job="iam-mfa-exporter"}', "values": "1x120"},
                    {"series": 'aws_iam_user_created_timestamp_seconds{account_id="111111111111",user="eve",job="iam-mfa-exporter"}', "values": "-172800x120"},
                    {"series": f'aws_iam_root_mfa_enabled{{account_id="222222222222",{scrape}}}', "values": "1x120"},
                    {"series": f'aws_iam_root_virtual_mfa{{account_id="222222222222",{scrape}}}', "values": "1x120"},
                ],
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": "IAMExporterAbsent", "exp_alerts": []},
                    {"eval_time": "45m", "alertname": "IAMConsoleUserWithoutMFA", "exp_alerts": []},
                    {"eval_time": "65m", "alertname": "IAMConsoleUserWithoutMFA", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "account_id": "111111111111", "user": "bob"},
                         "exp_annotations": console_annotations}]},
                    {"eval_time": "65m", "alertname": "IAMRootAccountVirtualMFA", "exp_alerts": [
                        {"exp_labels": {"severity": "info", "account_id": "222222222222"},
                         "exp_annotations": {
                             "summary": "Root user of account 222222222222 uses a virtual MFA device",
                             "description": "The root user of AWS account 222222222222 is protected by a virtual (app-based) MFA "
                                            "device. Security Hub IAM.6 asks for hardware MFA on root: replace it with a FIDO "
                                            "security key or a hardware TOTP token.",
                             "runbook_url": "https://wiki.example.com/runbooks/IAMRootAccountVirtualMFA#iamrootaccountvirtualmfa"}}]},
                ],
                "promql_expr_test": [
                    {"expr": "iam_mfa:new_user_grace_period_seconds", "eval_time": "1m",
                     "exp_samples": [{"labels": "iam_mfa:new_user_grace_period_seconds", "value": 86400}]},
                ],
            },
            {
                # Only the default job is scraped: for these rules the exporter is absent, and the
                # description names the selector they expect.
                "interval": "1m",
                "input_series": [{"series": 'up{job="iam-mfa-exporter",instance="10.0.0.1:10027"}', "values": "1x30"}],
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": "IAMExporterAbsent", "exp_alerts": [
                        {"exp_labels": {"severity": "warning", "job": "aws-iam", "cluster": "eu-1"},
                         "exp_annotations": {
                             "summary": "No iam-mfa-exporter target is scraped",
                             "description": 'Prometheus has no scrape target matching {job="aws-iam",cluster="eu-1"}: either the '
                                            "exporter is not scraped at all (no scrape config, ServiceMonitor not picked up), or "
                                            "it is scraped under another job name than the alert rules expect. No MFA compliance "
                                            "alert can fire.",
                             "runbook_url": "https://wiki.example.com/runbooks/IAMExporterAbsent#iamexporterabsent"}}]},
                ],
            },
        ],
    }


def run_custom_settings_test(rules_text: str, tmp_path):
    rule_file = tmp_path / "custom.rules.yml"
    rule_file.write_text(rules_text)
    check = promtool("check", "rules", rule_file)
    assert check.returncode == 0, check.stdout + check.stderr
    test_file = tmp_path / "custom.rules.test.yml"
    test_file.write_text(yaml.safe_dump(custom_settings_test(rule_file), sort_keys=False))
    return promtool("test", "rules", test_file)


def test_rendered_rules_are_current():
    expected = render_alerts.render(render_alerts.load_config())
    assert RULES.read_text() == expected, (
        "alerts/iam-mfa.rules.yml is not the rendering of alerts/iam-mfa.rules.tmpl.yml with alerts/config.yml: "
        "run scripts/render-alerts.py (and commit the result)")


def test_check_mode_tells_a_stale_file_apart(tmp_path):
    current = tmp_path / "current.yml"
    current.write_text(RULES.read_text())
    stale = tmp_path / "stale.yml"
    stale.write_text(RULES.read_text().replace("for: 30m", "for: 31m", 1))
    ok = subprocess.run([sys.executable, RENDER, "--check", "--output", current], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, RENDER, "--check", "--output", stale], capture_output=True, text=True)
    assert bad.returncode == 1 and "run scripts/render-alerts.py" in bad.stderr, bad.stderr


def test_rules_pass_promtool_check():
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests_pass():
    result = promtool("test", "rules", RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook_section():
    rules = RULES.read_text()
    tests = RULE_TESTS.read_text()
    runbook = RUNBOOK.read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert len(alerts) >= 11
    for alert in alerts:
        assert f"alertname: {alert}" in tests, f"{alert} has no promtool unit test"
        assert f"\n## {alert}\n" in runbook, f"{alert} has no runbook section"
        assert f"runbook.md#{alert.lower()}" in rules, f"{alert} has no runbook_url to its section"


def test_severities_follow_the_ecosystem_conventions():
    rules = alert_rules(RULES.read_text())
    severities = {name: rule["labels"]["severity"] for name, rule in rules.items()}
    assert set(severities.values()) <= {"critical", "warning", "info"}, severities
    assert severities["IAMRootAccountMFADisabled"] == "critical"
    assert severities["IAMRootAccessKeysPresent"] == "critical"
    assert severities["IAMConsoleUserWithoutMFA"] == "warning"
    assert severities["IAMRootAccountVirtualMFA"] in {"warning", "info"}
    assert severities["IAMUserTwoActiveAccessKeys"] == "info", "normal mid-rotation: CIS 1.13 is a lower-severity control"
    for name in ("IAMConsoleUserMFABelowRequiredStrength", "IAMExporterMFAChecksFailing", "IAMConsolePasswordUnused",
                 "IAMAccessKeyUnused", "IAMAccessKeyRotationOverdue", "IAMRootAccountUsed"):
        assert severities[name] == "warning", name


def test_every_selector_of_every_rule_is_the_configured_one():
    """The scrape-job selector is set in one place and reaches every metric every rule reads: a
    job name other than the default then needs one setting, not an edit per rule. A selector may
    narrow further before it (`{check="root_used",<selector>}`), and may name its metrics with a
    `__name__` regex (`{__name__=~"a|b",<selector>}`)."""
    by_name = re.compile(r'\{__name__=~"([^"]*)",([^}]*)\}')
    selector = re.compile(r"\b(aws_iam_\w+|up)\b(\{[^}]*\})?")
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [r["expr"] for g in groups for r in g["rules"] if "alert" in r]

    def scoped(matchers: str) -> bool:
        return (matchers == DEFAULT_SELECTOR or matchers.endswith("," + DEFAULT_SELECTOR)) and \
            "job=" not in matchers.removesuffix(DEFAULT_SELECTOR)

    seen = 0
    for expr in exprs:
        for m in by_name.finditer(expr):
            assert all(re.fullmatch(r"aws_iam_\w+", name) for name in m.group(1).split("|")), expr
            seen += len(m.group(1).split("|"))
            assert scoped(m.group(2)), f"{m.group(0)} in: {expr}"
        for m in selector.finditer(by_name.sub("", expr)):
            seen += 1
            assert m.group(2) and scoped(m.group(2)[1:-1]), f"{m.group(0)} in: {expr}"
    assert seen >= 23


def test_alerts_about_account_data_drop_the_scrape_labels():
    """Every alert of the compliance, mfa-strength and hygiene groups (and the live-check alert)
    aggregates by account_id (and user): a replaced pod or two pods scraped at once neither
    duplicate nor resolve it (the promtool tests show it for each group)."""
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(RULES.read_text())["groups"]}
    rules = [r for name in ("iam-mfa-exporter.compliance", "iam-mfa-exporter.mfa-strength", "iam-mfa-exporter.hygiene")
             for r in groups[name] if "alert" in r]
    rules += [r for r in groups["iam-mfa-exporter.health"] if r["alert"] == "IAMExporterMFAChecksFailing"]
    assert len(rules) == 11
    for rule in rules:
        expr = rule["expr"]
        assert re.match(r"\s*(time\(\) - )?(max|min) by \(account_id[,)]", expr), (rule["alert"], expr)
        assert "instance" not in expr and not re.search(r"\bwithout \((?!result\))", expr), rule["alert"]


def test_mfa_strength_alert_has_a_group_of_its_own():
    """The chart drops the group by name (prometheusRule.mfaStrengthAlerts): it must hold that
    alert and nothing else, and no other group may hold it."""
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(RULES.read_text())["groups"]}
    assert [r.get("alert") for r in groups["iam-mfa-exporter.mfa-strength"]] == ["IAMConsoleUserMFABelowRequiredStrength"]
    others = [r.get("alert") for name, rules in groups.items() if name != "iam-mfa-exporter.mfa-strength" for r in rules]
    assert "IAMConsoleUserMFABelowRequiredStrength" not in others
    (rule,) = groups["iam-mfa-exporter.mfa-strength"]
    assert rule["for"] == "1h" and rule["labels"]["severity"] == "warning"
    assert "max by (account_id, user, strength)" in rule["expr"]


def test_root_used_takes_the_latest_of_password_and_keys():
    """`a or b` keeps only `a` where both exist (same labels once the names are ignored): the
    rule reads both metrics in one selector, so the later use wins; the threshold series has no
    account_id and is joined on ()."""
    expr = alert_rules(RULES.read_text())["IAMRootAccountUsed"]["expr"]
    assert " or " not in expr
    assert ('max by (account_id) ({__name__=~"aws_iam_root_password_last_used_timestamp_seconds|'
            'aws_iam_root_access_key_last_used_timestamp_seconds",') in expr
    assert "< on () group_left ()" in expr and 'aws_iam_hygiene_threshold_seconds{check="root_used",' in expr


def test_absent_and_down_are_two_alerts():
    rules = alert_rules(RULES.read_text())
    assert rules["IAMExporterDown"]["expr"].strip() == f"up{{{DEFAULT_SELECTOR}}} == 0"
    assert rules["IAMExporterAbsent"]["expr"].strip() == f"absent(up{{{DEFAULT_SELECTOR}}})"


def test_keep_firing_for_is_on_the_alerts_about_account_data():
    rules = alert_rules(RULES.read_text())
    keep = {name for name, rule in rules.items() if rule.get("keep_firing_for") == "15m"}
    assert keep == {"IAMConsoleUserWithoutMFA", "IAMRootAccountMFADisabled", "IAMRootAccountVirtualMFA",
                    "IAMRootAccessKeysPresent", "IAMConsoleUserMFABelowRequiredStrength", "IAMConsolePasswordUnused",
                    "IAMAccessKeyUnused", "IAMAccessKeyRotationOverdue", "IAMUserTwoActiveAccessKeys",
                    "IAMRootAccountUsed", "IAMCredentialReportStale", "IAMExporterUserSeriesDropped"}
    # A look back over an hour bridges a pod replacement by itself.
    assert "keep_firing_for" not in rules["IAMExporterMFAChecksFailing"]


def test_settings_change_every_rule_they_should(tmp_path):
    config = render_alerts.merge(render_alerts.load_config(), CUSTOM_SETTINGS)
    text = render_alerts.render(config)
    assert DEFAULT_SELECTOR + "}" not in text
    rules = alert_rules(text)
    assert all(r["keep_firing_for"] == "5m" for r in rules.values() if "keep_firing_for" in r)
    assert rules["IAMConsoleUserWithoutMFA"]["for"] == "1h"
    assert rules["IAMRootAccountVirtualMFA"]["labels"]["severity"] == "info"
    for name, rule in rules.items():
        assert rule["annotations"]["runbook_url"] == f"https://wiki.example.com/runbooks/{name}#{name.lower()}"
    result = run_custom_settings_test(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_custom_settings_test_fails_on_the_default_rules(tmp_path):
    """The promtool test above can fail: the shipped rules do not pass it."""
    result = run_custom_settings_test(RULES.read_text(), tmp_path)
    assert result.returncode != 0
    assert "IAMExporterAbsent" in result.stdout + result.stderr


def test_empty_keep_firing_for_leaves_the_lines_out(tmp_path):
    text = render_alerts.render(render_alerts.load_config(sets=["keepFiringFor="]))
    assert "keep_firing_for:" not in text
    (tmp_path / "rules.yml").write_text(text)
    result = promtool("check", "rules", tmp_path / "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_renders_with_a_settings_file_and_sets(tmp_path):
    settings = tmp_path / "mine.yml"
    settings.write_text('selector: job="aws-iam"\nalerts:\n  IAMRootAccountVirtualMFA: {severity: info}\n')
    out = tmp_path / "mine.rules.yml"
    result = subprocess.run([sys.executable, RENDER, "--config", settings, "--set", "newUserGracePeriod=2w", "--output", out],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rules = yaml.safe_load(out.read_text())
    (grace,) = [r for r in rules["groups"][0]["rules"] if r.get("record") == "iam_mfa:new_user_grace_period_seconds"]
    assert grace["expr"] == "vector(1209600)"
    by_name = alert_rules(out.read_text())
    assert by_name["IAMRootAccountVirtualMFA"]["labels"]["severity"] == "info"
    assert by_name["IAMRootAccessKeysPresent"]["labels"]["severity"] == "critical", "unset settings stay as in config.yml"
    assert by_name["IAMExporterDown"]["expr"].strip() == 'up{job="aws-iam"} == 0'


@pytest.mark.parametrize("sets,error", [
    (["alerts.IAMConsoleUserWithoutMFA.severity=high"], "one of critical, warning, info"),
    (["alerts.IAMConsoleUserWithoutMFA.for=half an hour"], "Prometheus duration"),
    (["alerts.IAMNoSuchAlert.severity=warning"], "unknown alerts"),
    (["selector={job=\"x\"}"], "without braces"),
    (["selector="], "without braces"),
    (["newUserGracePeriod=7 days"], "newUserGracePeriod"),
    (["keepFiringFor=soon"], "keepFiringFor"),
    (["runbookUrlPattern=https://example.com/runbook"], "{anchor}"),
    (["grace=7d"], "unknown settings"),
])
def test_renderer_rejects_bad_settings(sets, error):
    with pytest.raises(render_alerts.ConfigError, match=re.escape(error)):
        render_alerts.render(render_alerts.load_config(sets=sets))


def test_renderer_rejects_an_unknown_placeholder(tmp_path, monkeypatch):
    template = tmp_path / "t.yml"
    template.write_text(render_alerts.TEMPLATE.read_text().replace("vector(${newUserGracePeriodSeconds})", "vector(${selektor})"))
    monkeypatch.setattr(render_alerts, "TEMPLATE", template)
    with pytest.raises(render_alerts.ConfigError, match=r"unknown placeholder \$\{selektor\}"):
        render_alerts.render(render_alerts.load_config())


def test_readme_alert_table_matches_the_rules():
    """README's alert table lists every alert with its severity; the tunables are explained."""
    readme = README.read_text()
    rules = alert_rules(RULES.read_text())
    rows = dict(re.findall(r"^\| `(IAM\w+)` \| (\w+) \|", readme, re.M))
    assert rows == {name: rule["labels"]["severity"] for name, rule in rules.items()}
    config = yaml.safe_load((ROOT / "alerts" / "config.yml").read_text())
    for key in config:
        assert f"`{key}`" in readme, f"README does not explain the setting {key}"


def test_enforce_mfa_policy_is_valid_json_and_explained():
    policy = json.loads((ROOT / "docs" / "enforce-mfa-policy.json").read_text())
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    runbook = RUNBOOK.read_text()
    for sid in sids:
        assert f"**`{sid}`**" in runbook, f"statement {sid} is not explained in the runbook"
    deny = next(s for s in policy["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    allowed_without_mfa = {a for s in policy["Statement"] if s["Effect"] == "Allow" and "Condition" not in s for a in s["Action"]}
    assert allowed_without_mfa <= set(deny["NotAction"]), "a self-service action would be denied without MFA"
    assert "iam:EnableMFADevice" in deny["NotAction"] and "iam:DeactivateMFADevice" not in deny["NotAction"]
