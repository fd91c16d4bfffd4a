"""The Helm chart: every ci/ scenario rendered with the Helm v4 SDK (helm-python-sdk), linted,
validated with kubernetes-validate --strict; secure defaults, value gating, one source of truth
for rules and dashboard (the PrometheusRule's settings give the same rules as
scripts/render-alerts.py, and pass promtool), and a schema that rejects wrong types but accepts
what Helm and parent charts pass."""

import json
import os
import re
import subprocess
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from conftest import BIN, ROOT, VENV_BIN
from test_alert_rules import CUSTOM_SETTINGS, alert_rules, promtool, render_alerts, run_custom_settings_test

# IAM_MFA_EXPORTER_CHART: run these tests against another copy of the chart (e.g. an older one,
# to see a test fail).
CHART = Path(os.environ.get("IAM_MFA_EXPORTER_CHART", ROOT / "helm" / "iam-mfa-exporter"))
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "1.30.0"
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The monitoring.coreos.com/v1 ServiceMonitor Endpoint fields the chart may set.
ENDPOINT_FIELDS = {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "tlsConfig", "basicAuth",
                   "relabelings", "metricRelabelings"}
# The ServiceMonitor and PrometheusRule spec fields the chart may set.
OPERATOR_SPEC_FIELDS = {"jobLabel", "sampleLimit", "selector", "namespaceSelector", "endpoints", "groups"}


def render(values=None):
    chart = helm.Chart.load(CHART)
    out = chart.render(values or {}, name="iam-mfa-exporter", namespace="monitoring", is_install=True)
    docs = []
    for path, text in out.items():
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


def scenario(path: Path):
    return yaml.safe_load(path.read_text()) or {}


def test_scenarios_exist():
    assert {p.name for p in SCENARIOS} >= {"default-values.yaml", "all-enabled-values.yaml", "irsa-values.yaml",
                                           "extra-args-values.yaml", "organization-values.yaml",
                                           "production-values.yaml"}


def test_lint_is_clean():
    for path in SCENARIOS:
        report = helm.lint(CHART, scenario(path), strict=True, kube_version=f"v{KUBE_VERSION}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, (path.name, problems)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_renders_valid_kubernetes(path, tmp_path):
    docs = render(scenario(path))
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in OPERATOR_KINDS]))
    result = subprocess.run([str(VENV_BIN / "kubernetes-validate"), "--strict", "-k", KUBE_VERSION, str(manifest)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr
    # kubernetes-validate has no schema for the Prometheus Operator CRDs: check their shape here,
    # and the PrometheusRule's rules with promtool.
    values = scenario(path)
    for d in docs:
        if d["kind"] in OPERATOR_KINDS:
            assert d["apiVersion"] == "monitoring.coreos.com/v1"
            key = "serviceMonitor" if d["kind"] == "ServiceMonitor" else "prometheusRule"
            assert d["metadata"]["namespace"] == (values.get(key, {}).get("namespace") or "monitoring")
            assert set(d["spec"]) <= OPERATOR_SPEC_FIELDS
            for endpoint in d["spec"].get("endpoints", []):
                assert set(endpoint) <= ENDPOINT_FIELDS, endpoint
        if d["kind"] == "PrometheusRule":
            rules = tmp_path / "rules.yml"
            rules.write_text(yaml.safe_dump({"groups": d["spec"]["groups"]}))
            result = promtool("check", "rules", rules)
            assert result.returncode == 0, result.stdout + result.stderr


def test_secure_defaults():
    kinds = by_kind(render())
    assert set(kinds) == {"ServiceAccount", "Deployment", "Service"}, "optional pieces are off by default"
    deployment = kinds["Deployment"][0]
    spec = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["automountServiceAccountToken"] is False
    assert kinds["ServiceAccount"][0]["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["resources"] == {}
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["ports"] == [{"name": "http-metrics", "containerPort": 10027, "protocol": "TCP"}]
    assert container["image"] == "ghcr.io/iam-mfa-exporter/iam-mfa-exporter:0.1.0"
    assert deployment["spec"]["revisionHistoryLimit"] == 10 and "strategy" not in deployment["spec"]
    assert "priorityClassName" not in spec and "topologySpreadConstraints" not in spec
    labels = deployment["metadata"]["labels"]
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"):
        assert key in labels


def test_rendered_flags_are_real_flags():
    """Every flag the chart passes exists in the binary (the chart and the CLI stay in step)."""
    help_text = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, check=True).stdout
    for path in SCENARIOS:
        (deployment,) = by_kind(render(scenario(path)))["Deployment"]
        for arg in deployment["spec"]["template"]["spec"]["containers"][0]["args"]:
            flag = arg.split("=", 1)[0]
            assert re.search(rf"{re.escape(flag)}[\s<]", help_text), f"{path.name}: {flag} is not a flag of the binary"


@pytest.mark.parametrize("key,kind", [("serviceMonitor", "ServiceMonitor"), ("prometheusRule", "PrometheusRule"),
                                      ("grafanaDashboard", "ConfigMap"), ("networkPolicy", "NetworkPolicy"),
                                      ("podDisruptionBudget", "PodDisruptionBudget")])
def test_optional_pieces_are_gated_on_values(key, kind):
    assert kind not in by_kind(render({key: {"enabled": False}}))
    assert len(by_kind(render({key: {"enabled": True}}))[kind]) == 1


STRENGTH_GROUP = "iam-mfa-exporter.mfa-strength"


def test_prometheus_rule_carries_exactly_the_rules_in_alerts():
    """With prometheusRule.mfaStrengthAlerts the rule file as it is; by default without the MFA
    strength group (its series needs --mfa.required-strength), every other group unchanged."""
    shipped = yaml.safe_load((ROOT / "alerts" / "iam-mfa.rules.yml").read_text())
    (rule,) = by_kind(render({"prometheusRule": {"enabled": True, "mfaStrengthAlerts": True}}))["PrometheusRule"]
    assert rule["spec"]["groups"] == shipped["groups"]
    (rule,) = by_kind(render({"prometheusRule": {"enabled": True}}))["PrometheusRule"]
    assert rule["spec"]["groups"] == [g for g in shipped["groups"] if g["name"] != STRENGTH_GROUP]


@pytest.mark.parametrize("on", [False, True])
def test_mfa_strength_group_is_gated_on_its_value(on, tmp_path):
    """prometheusRule.mfaStrengthAlerts keeps or drops the group iam-mfa-exporter.mfa-strength,
    and only it; either way the rules pass promtool, and the strength alert can still be tuned
    (prometheusRule.alerts) whether its group is on or not."""
    rule = prometheus_rule({"mfaStrengthAlerts": on, "selector": 'job="aws-iam"',
                            "alerts": {"IAMConsoleUserMFABelowRequiredStrength": {"severity": "info", "for": "2h"}}})
    names = [g["name"] for g in rule["spec"]["groups"]]
    shipped = [g["name"] for g in yaml.safe_load((ROOT / "alerts" / "iam-mfa.rules.yml").read_text())["groups"]]
    assert names == (shipped if on else [n for n in shipped if n != STRENGTH_GROUP])
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert ("IAMConsoleUserMFABelowRequiredStrength" in alerts) is on
    assert {"IAMExporterMFAChecksFailing", "IAMRootAccountUsed", "IAMUserTwoActiveAccessKeys"} <= set(alerts)
    if on:
        strength = alerts["IAMConsoleUserMFABelowRequiredStrength"]
        assert strength["labels"]["severity"] == "info" and strength["for"] == "2h"
        assert 'aws_iam_console_user_mfa_below_required_strength{job="aws-iam"}' in strength["expr"]
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_configmap_carries_the_dashboard():
    (cm,) = by_kind(render({"grafanaDashboard": {"enabled": True}}))["ConfigMap"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in cm["metadata"]
    assert json.loads(cm["data"]["iam-mfa.json"]) == json.loads((ROOT / "dashboards" / "iam-mfa.json").read_text())


def test_dashboard_folder_is_an_annotation_for_the_sidecar():
    (cm,) = by_kind(render({"grafanaDashboard": {"enabled": True, "folder": "Security",
                                                 "annotations": {"owner": "secops"}}}))["ConfigMap"]
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Security", "owner": "secops"}
    (cm,) = by_kind(render({"grafanaDashboard": {"enabled": True, "folder": "Security",
                                                 "folderAnnotation": "k8s-sidecar-target-directory"}}))["ConfigMap"]
    assert cm["metadata"]["annotations"] == {"k8s-sidecar-target-directory": "Security"}


def prometheus_rule(values):
    (rule,) = by_kind(render({"prometheusRule": {"enabled": True, **values}}))["PrometheusRule"]
    return rule


def test_prometheus_rule_settings_give_the_rules_render_alerts_gives(tmp_path):
    """The chart applies the settings of alerts/config.yml to the shipped rules with template
    functions; for the same settings the result is exactly what scripts/render-alerts.py renders
    from the template, and it passes the promtool tests of those settings."""
    rule = prometheus_rule({**CUSTOM_SETTINGS, "mfaStrengthAlerts": True})
    expected = yaml.safe_load(render_alerts.render(render_alerts.merge(render_alerts.load_config(), CUSTOM_SETTINGS)))
    assert rule["spec"]["groups"] == expected["groups"]
    result = run_custom_settings_test(yaml.safe_dump({"groups": rule["spec"]["groups"]}), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_selector_replaces_the_job_everywhere():
    rule = prometheus_rule({"selector": 'job="aws-iam"'})
    text = yaml.safe_dump(rule["spec"])
    assert 'job="iam-mfa-exporter"' not in text
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["IAMExporterAbsent"]["expr"].strip() == 'absent(up{job="aws-iam"})'
    assert alerts["IAMExporterDown"]["expr"].strip() == 'up{job="aws-iam"} == 0'
    assert '{job="aws-iam"}' in alerts["IAMExporterAbsent"]["annotations"]["description"]


def test_prometheus_rule_additional_rule_labels():
    rule = prometheus_rule({"additionalRuleLabels": {"team": "security", "severity": "page"},
                            "alerts": {"IAMRootAccountVirtualMFA": {"severity": "info"}}})
    shipped = alert_rules((ROOT / "alerts" / "iam-mfa.rules.yml").read_text())
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            if "record" in r:
                assert "labels" not in r, "recording rules keep their labels: the grace-period join is on ()"
                continue
            want = "info" if r["alert"] == "IAMRootAccountVirtualMFA" else shipped[r["alert"]]["labels"]["severity"]
            assert r["labels"] == {"team": "security", "severity": want}, r["alert"]


def test_prometheus_rule_grace_period_and_keep_firing_for():
    rule = prometheus_rule({"newUserGracePeriod": "36h", "keepFiringFor": "30m"})
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    (grace,) = [r for r in rules if r.get("record") == "iam_mfa:new_user_grace_period_seconds"]
    assert grace["expr"] == "vector(129600)"
    keep = {r["alert"]: r["keep_firing_for"] for r in rules if "keep_firing_for" in r}
    shipped = alert_rules((ROOT / "alerts" / "iam-mfa.rules.yml").read_text())
    want = {name for name, r in shipped.items() if "keep_firing_for" in r} - {"IAMConsoleUserMFABelowRequiredStrength"}
    assert set(keep) == want and len(keep) == 11 and set(keep.values()) == {"30m"}


def test_prometheus_rule_object_namespace_and_labels():
    rule = prometheus_rule({"namespace": "prometheus", "additionalLabels": {"release": "kps"}, "labels": {"x": "y"}})
    assert rule["metadata"]["namespace"] == "prometheus"
    assert rule["metadata"]["labels"]["release"] == "kps" and rule["metadata"]["labels"]["x"] == "y"


def test_prometheus_rule_rejects_an_unknown_alert():
    with pytest.raises(helm.HelmRenderError, match="prometheusRule.alerts.IAMNoSuchAlert: no such alert"):
        prometheus_rule({"alerts": {"IAMNoSuchAlert": {"severity": "info"}}})


@pytest.mark.parametrize("values,where", [
    ({"alerts": {"IAMConsoleUserWithoutMFA": {"severity": "high"}}}, "/prometheusRule/alerts/IAMConsoleUserWithoutMFA/severity"),
    ({"alerts": {"IAMConsoleUserWithoutMFA": {"for": "soon"}}}, "/prometheusRule/alerts/IAMConsoleUserWithoutMFA/for"),
    ({"alerts": {"IAMConsoleUserWithoutMFA": {"enabled": False}}}, "/prometheusRule/alerts/IAMConsoleUserWithoutMFA"),
    ({"selector": '{job="x"}'}, "/prometheusRule/selector"),
    ({"newUserGracePeriod": "7 days"}, "/prometheusRule/newUserGracePeriod"),
    ({"keepFiringFor": "a while"}, "/prometheusRule/keepFiringFor"),
    ({"runbookUrlPattern": "https://example.com/runbook"}, "/prometheusRule/runbookUrlPattern"),
    ({"additionalRuleLabels": {"team": 1}}, "/prometheusRule/additionalRuleLabels/team"),
    ({"additionalRuleLabels": {"bad-name": "x"}}, "invalid propertyName 'bad-name'"),
    ({"mfaStrengthAlerts": "yes"}, "/prometheusRule/mfaStrengthAlerts"),
])
def test_schema_rejects_bad_prometheus_rule_settings(values, where):
    """`where`: the value's path in the error, or the error itself (a bad label name)."""
    with pytest.raises(helm.HelmValuesError, match=re.escape(where if " " in where else f"'{where}'")):
        prometheus_rule(values)


def test_service_monitor_options():
    (sm,) = by_kind(render({"serviceMonitor": {
        "enabled": True, "namespace": "prometheus", "additionalLabels": {"release": "kps"}, "labels": {"x": "y"},
        "honorLabels": True, "sampleLimit": 5000}}))["ServiceMonitor"]
    assert sm["metadata"]["namespace"] == "prometheus"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["monitoring"]}, "still selects the release's Service"
    assert sm["metadata"]["labels"]["release"] == "kps" and sm["metadata"]["labels"]["x"] == "y"
    assert sm["spec"]["sampleLimit"] == 5000
    assert sm["spec"]["endpoints"][0]["honorLabels"] is True


def test_service_monitor_scrapes_the_service_as_job_iam_mfa_exporter():
    kinds = by_kind(render({"serviceMonitor": {"enabled": True}}))
    (sm,) = kinds["ServiceMonitor"]
    (svc,) = kinds["Service"]
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    # The job label comes from this Service label: the alert rules expect job="iam-mfa-exporter".
    assert svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == "iam-mfa-exporter"


def service_monitor_endpoint(values):
    (sm,) = by_kind(render(values))["ServiceMonitor"]
    (endpoint,) = sm["spec"]["endpoints"]
    return endpoint


def test_service_monitor_scrapes_plain_http_by_default():
    endpoint = service_monitor_endpoint({"serviceMonitor": {"enabled": True}})
    assert endpoint == {"port": "http-metrics", "path": "/metrics", "scheme": "http", "interval": "1m",
                        "scrapeTimeout": "30s"}


def test_service_monitor_scrapes_with_tls_and_basic_auth():
    """An exporter with --web.config.file (TLS, basic auth): the ServiceMonitor endpoint carries the
    scheme, the SafeTLSConfig and the basic-auth secret selectors exactly as given."""
    values = scenario(CHART / "ci" / "servicemonitor-tls-values.yaml")
    endpoint = service_monitor_endpoint(values)
    assert endpoint == {
        "port": "http-metrics",
        "path": "/metrics",
        "scheme": "https",
        "interval": "1m",
        "scrapeTimeout": "30s",
        "tlsConfig": {
            "ca": {"secret": {"name": "iam-mfa-exporter-tls", "key": "ca.crt"}},
            "serverName": "iam-mfa-exporter.monitoring.svc",
        },
        "basicAuth": {
            "username": {"name": "iam-mfa-exporter-scrape-auth", "key": "username"},
            "password": {"name": "iam-mfa-exporter-scrape-auth", "key": "password"},
        },
    }
    # Mutual TLS and the other settings still render alongside.
    endpoint = service_monitor_endpoint({"serviceMonitor": {
        "enabled": True, "scheme": "https", "interval": "2m", "scrapeTimeout": "45s",
        "tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}},
                      "cert": {"secret": {"name": "client", "key": "tls.crt"}},
                      "keySecret": {"name": "client", "key": "tls.key"}, "insecureSkipVerify": False},
        "relabelings": [{"targetLabel": "cluster", "replacement": "eu-1"}],
        "metricRelabelings": [{"action": "labeldrop", "regex": "pod"}],
    }})
    assert endpoint["scheme"] == "https" and endpoint["interval"] == "2m" and endpoint["scrapeTimeout"] == "45s"
    assert endpoint["tlsConfig"] == {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}},
                                     "cert": {"secret": {"name": "client", "key": "tls.crt"}},
                                     "keySecret": {"name": "client", "key": "tls.key"}, "insecureSkipVerify": False}
    assert "basicAuth" not in endpoint
    assert endpoint["relabelings"] == [{"targetLabel": "cluster", "replacement": "eu-1"}]
    assert endpoint["metricRelabelings"] == [{"action": "labeldrop", "regex": "pod"}]


def test_schema_knows_the_service_monitor_scheme():
    assert service_monitor_endpoint({"serviceMonitor": {"enabled": True, "scheme": "https"}})["scheme"] == "https"
    with pytest.raises(helm.HelmValuesError, match="/serviceMonitor/scheme"):
        render({"serviceMonitor": {"enabled": True, "scheme": "ftp"}})


@pytest.mark.parametrize("values,where", [
    ({"tlsConfig": "insecure"}, "/serviceMonitor/tlsConfig"),
    ({"tlsConfig": {"insecureSkipVerify": "yes"}}, "/serviceMonitor/tlsConfig/insecureSkipVerify"),
    ({"tlsConfig": {"ca": {"secret": {"name": "tls"}}}}, "/serviceMonitor/tlsConfig/ca/secret"),
    ({"basicAuth": "prom:secret"}, "/serviceMonitor/basicAuth"),
    ({"basicAuth": {"username": "prom"}}, "/serviceMonitor/basicAuth/username"),
    ({"basicAuth": {"user": {"name": "auth", "key": "username"}}}, "/serviceMonitor/basicAuth"),
])
def test_schema_rejects_bad_service_monitor_auth(values, where):
    with pytest.raises(helm.HelmValuesError, match=re.escape(f"'{where}'")):
        render({"serviceMonitor": {"enabled": True, **values}})


def test_account_names_with_commas_are_one_argument_each():
    """--aws.account-name is repeatable, with no comma delimiter: a name with commas (or other YAML
    specials) reaches the binary as one argument, unchanged."""
    names = {"111111111111": "Prod, EU", "222222222222": 'Dev: "sandbox" #2'}
    (deployment,) = by_kind(render({"accounts": {"names": names}}))["Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--aws.account-name")] == [
        "--aws.account-name=111111111111=Prod, EU",
        '--aws.account-name=222222222222=Dev: "sandbox" #2',
    ]


def test_irsa_and_extra_args():
    kinds = by_kind(render(scenario(CHART / "ci" / "irsa-values.yaml")))
    sa = kinds["ServiceAccount"][0]
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    args = kinds["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--aws.region=eu-west-1" in args and "--log.format=json" in args
    container = by_kind(render(scenario(CHART / "ci" / "extra-args-values.yaml")))["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert "--report.file=/reports/credential-report.json" in container["args"]
    assert "--web.telemetry-path=/metrics" in container["args"]
    assert container["volumeMounts"][0]["mountPath"] == "/reports"


def test_organization_scenario():
    (deployment,) = by_kind(render(scenario(CHART / "ci" / "organization-values.yaml")))["Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    for arg in ["--aws.organization", "--aws.assume-role-name=IamMfaExporter", "--aws.shard=0/2",
                "--aws.account-name=999999999999=management", "--aws.exclude-accounts=444455556666",
                "--aws.include-self", "--aws.max-concurrency=16", "--aws.external-id=iam-mfa-exporter",
                "--aws.organization-role-arn=arn:aws:iam::999999999999:role/ListAccounts"]:
        assert arg in args, (arg, args)


def test_organization_needs_a_role_name():
    with pytest.raises(helm.HelmRenderError, match="assumeRoleName"):
        render({"accounts": {"organization": True}})


def deployment_of(values):
    (deployment,) = by_kind(render(values))["Deployment"]
    return deployment


def test_schema_accepts_what_helm_and_parent_charts_pass():
    """A subchart gets `global` and (with a condition) `enabled`; image.digest/registry are the
    usual image values."""
    deployment = deployment_of({"global": {"imageRegistry": "mirror.example.com", "storageClass": "x"}, "enabled": True})
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/iam-mfa-exporter/iam-mfa-exporter:0.1.0", "image.registry wins over global.imageRegistry"
    digest = "sha256:" + "ab" * 32
    for values, want in [
        ({"global": {"imageRegistry": "mirror.example.com"}, "image": {"registry": ""}},
         "mirror.example.com/iam-mfa-exporter/iam-mfa-exporter:0.1.0"),
        ({"image": {"registry": "registry.example.com:5000", "tag": "1.2.3"}},
         "registry.example.com:5000/iam-mfa-exporter/iam-mfa-exporter:1.2.3"),
        ({"image": {"digest": digest}}, f"ghcr.io/iam-mfa-exporter/iam-mfa-exporter@{digest}"),
        ({"image": {"digest": digest, "tag": "1.2.3"}}, f"ghcr.io/iam-mfa-exporter/iam-mfa-exporter:1.2.3@{digest}"),
        ({"image": {"registry": "", "repository": "example.org/team/iam-mfa-exporter"}},
         "example.org/team/iam-mfa-exporter:0.1.0"),
    ]:
        assert deployment_of(values)["spec"]["template"]["spec"]["containers"][0]["image"] == want, values


def test_deployment_scheduling_and_update_values():
    deployment = deployment_of({
        "priorityClassName": "monitoring-high", "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 2,
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"team": "sec"}}},
        ]})
    spec = deployment["spec"]
    assert spec["strategy"] == {"type": "Recreate"} and spec["revisionHistoryLimit"] == 2
    pod = spec["template"]["spec"]
    assert pod["priorityClassName"] == "monitoring-high"
    zone, host = pod["topologySpreadConstraints"]
    assert zone["labelSelector"] == {"matchLabels": spec["selector"]["matchLabels"]}, "defaults to the pod's selector"
    assert host["labelSelector"] == {"matchLabels": {"team": "sec"}}


def test_pod_disruption_budget_never_blocks_a_drain():
    (pdb,) = by_kind(render({"podDisruptionBudget": {"enabled": True}}))["PodDisruptionBudget"]
    (deployment,) = by_kind(render({"podDisruptionBudget": {"enabled": True}}))["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    for bad in ({"maxUnavailable": 0}, {"maxUnavailable": "0%"}, {"minAvailable": 1}):
        with pytest.raises(helm.HelmValuesError, match="/podDisruptionBudget"):
            render({"podDisruptionBudget": {"enabled": True, **bad}})


def test_network_policy_lets_only_the_listed_peers_scrape():
    (np,) = by_kind(render({"networkPolicy": {"enabled": True}}))["NetworkPolicy"]
    (deployment,) = by_kind(render({}))["Deployment"]
    assert np["spec"]["podSelector"] == {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
    assert np["spec"]["policyTypes"] == ["Ingress"], "egress stays open unless rules are given"
    assert np["spec"]["ingress"] == [{"ports": [{"port": "http-metrics", "protocol": "TCP"}],
                                      "from": [{"podSelector": {}}]}]
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prometheus"}}}]
    egress = [{"ports": [{"port": 443, "protocol": "TCP"}]}]
    (np,) = by_kind(render({"networkPolicy": {"enabled": True, "ingressFrom": peers, "egress": egress}}))["NetworkPolicy"]
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["ingress"][0]["from"] == peers and np["spec"]["egress"] == egress


@pytest.mark.parametrize("values", [
    {"service": {"port": "http"}},
    {"image": {"digest": "latest"}},
    {"image": {"registry": "ghcr.io/iam-mfa-exporter"}},
    {"global": "x"},
    {"enabled": "yes"},
    {"strategy": {"type": "BlueGreen"}},
    {"revisionHistoryLimit": -1},
    {"topologySpreadConstraints": [{"maxSkew": 1}]},
    {"networkPolicy": {"enabled": True, "ingressFrom": [{"pods": "all"}]}},
    {"serviceMonitor": {"sampleLimit": -1}},
    {"serviceMonitor": {"honorLabels": "yes"}},
    {"grafanaDashboard": {"folderAnnotation": ""}},
    {"config": {"maxUserSeries": "many"}},
    {"config": {"refreshInterval": "soon"}},
    {"config": {"logFormat": "xml"}},
    {"serviceMonitor": {"enabled": "yes"}},
    {"extraArgs": "--once"},
    {"unknownKey": 1},
    {"accounts": {"roleArns": ["arn:aws:iam::1:user/x"]}},
    {"accounts": {"maxConcurrency": 0}},
    {"accounts": {"shard": "half"}},
])
def test_schema_rejects_bad_values(values):
    with pytest.raises(helm.HelmValuesError):
        render(values)
