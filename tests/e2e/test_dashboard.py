"""The Grafana dashboard: type-checked against npm @grafana/schema, every PromQL expression valid
for promtool. (That every expression returns data is checked against a live Prometheus in
test_monitoring.py.)"""

import json
import subprocess

import pytest

from conftest import ROOT

DASHBOARD = ROOT / "dashboards" / "iam-mfa.json"
CHECKER = ROOT / "tests" / "dashboard"

# Grafana's template variables, as the checks substitute them.
VARIABLES = {"$account_id": ".*", "$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}


def load():
    return json.loads(DASHBOARD.read_text())


def expressions(dashboard):
    """(panel title, refId, expr with variables substituted) of every query."""
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], target["refId"], expr))
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


EXPORTER_WIDE = ("aws_iam_account_discovery_success", "aws_iam_account_discovery_errors_total",
                 "aws_iam_refresh_task_restarts_total")


def test_dashboard_conventions():
    d = load()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["account_id"]["multi"] and variables["account_id"]["includeAll"]
    for panel in d["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"
        for target in panel["targets"]:
            # Every query filters on the account variable, except those of the exporter-wide
            # series that have no account_id (discovery, restarted loops).
            exporter_wide = any(m in target["expr"] for m in EXPORTER_WIDE) and "account_id" not in target["expr"]
            assert exporter_wide or 'account_id=~"$account_id"' in target["expr"], (panel["title"], target["expr"])
    titles = [p["title"] for p in d["panels"]]
    assert len(titles) == len(set(titles)), titles


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
