"""The alert rules: `promtool check rules` and their `promtool test rules` unit tests; the
enforce-MFA policy in the runbook is valid JSON with the statements the runbook explains."""

import json
import re
import subprocess

from conftest import ROOT

RULES = ROOT / "alerts" / "iam-mfa.rules.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def test_rules_pass_promtool_check():
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests_pass():
    result = subprocess.run(["promtool", "test", "rules", str(ROOT / "alerts" / "tests" / "iam-mfa.rules.test.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook_section():
    rules = RULES.read_text()
    tests = (ROOT / "alerts" / "tests" / "iam-mfa.rules.test.yml").read_text()
    runbook = RUNBOOK.read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert len(alerts) >= 7
    for alert in alerts:
        assert f"alertname: {alert}" in tests, f"{alert} has no promtool unit test"
        assert f"\n## {alert}\n" in runbook, f"{alert} has no runbook section"
        assert f"runbook.md#{alert.lower()}" in rules, f"{alert} has no runbook_url to its section"


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
