#!/usr/bin/env python3
"""Renders alerts/iam-mfa.rules.yml from alerts/iam-mfa.rules.tmpl.yml and alerts/config.yml.

    scripts/render-alerts.py                    # regenerate the committed alerts/iam-mfa.rules.yml
    scripts/render-alerts.py --check            # exit 1 if it is not current
    scripts/render-alerts.py --config my.yml --output my-rules.yml
    scripts/render-alerts.py --set selector='job="aws-iam"' --set alerts.IAMRootAccountVirtualMFA.severity=info -o -

--config files hold only what differs from alerts/config.yml (merged over it, in order); --set
KEY=VALUE (dotted keys, string values) is applied last. Needs PyYAML (tests/e2e/requirements.txt)
and nothing else. The tests import this file (tests/e2e/test_alert_rules.py)."""

import argparse
import copy
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "alerts" / "iam-mfa.rules.tmpl.yml"
CONFIG = ROOT / "alerts" / "config.yml"
OUTPUT = ROOT / "alerts" / "iam-mfa.rules.yml"
REGENERATE = "scripts/render-alerts.py"

SEVERITIES = ("critical", "warning", "info")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
GRACE = re.compile(r"^([0-9]+)([smhdw])$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")
OMITTABLE = re.compile(r"^\s*[a-z_]+: \$\{([A-Za-z]+)\}\s*$")
ALERT = re.compile(r"^\s*- alert: (\w+)\s*$")
TOP_KEYS = {"selector", "newUserGracePeriod", "keepFiringFor", "runbookUrlPattern", "alerts"}
HEADER = """\
# GENERATED from alerts/iam-mfa.rules.tmpl.yml and alerts/config.yml by scripts/render-alerts.py.
# Do not edit: change the template or the settings and run `scripts/render-alerts.py`.
"""


class ConfigError(ValueError):
    pass


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(paths=(), sets=()) -> dict:
    """alerts/config.yml, then each file of `paths` merged over it, then `sets` ("a.b=value")."""
    config = yaml.safe_load(CONFIG.read_text())
    for path in paths:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


def grace_seconds(duration: str) -> int:
    m = GRACE.match(str(duration))
    if not m:
        raise ConfigError(f"newUserGracePeriod {duration!r}: expected a number and one of s, m, h, d, w (e.g. 7d)")
    return int(m.group(1)) * SECONDS[m.group(2)]


def check_config(config: dict, alerts_in_template: list) -> None:
    unknown = set(config) - TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown settings: {sorted(unknown)} (known: {sorted(TOP_KEYS)})")
    selector = str(config.get("selector") or "")
    if not selector or "{" in selector or "}" in selector:
        raise ConfigError(f"selector {selector!r}: expected label matchers without braces, e.g. job=\"iam-mfa-exporter\"")
    grace_seconds(config.get("newUserGracePeriod"))
    keep = config.get("keepFiringFor") or ""
    if keep and not DURATION.match(str(keep)):
        raise ConfigError(f"keepFiringFor {keep!r}: expected a Prometheus duration (15m) or empty")
    if "{anchor}" not in str(config.get("runbookUrlPattern")) and "{alertname}" not in str(config.get("runbookUrlPattern")):
        raise ConfigError("runbookUrlPattern must contain {anchor} or {alertname}")
    alerts = config.get("alerts") or {}
    missing, extra = set(alerts_in_template) - set(alerts), set(alerts) - set(alerts_in_template)
    if missing or extra:
        raise ConfigError(f"alerts: settings missing for {sorted(missing)}, unknown alerts {sorted(extra)}")
    for name, settings in alerts.items():
        if set(settings) != {"severity", "for"}:
            raise ConfigError(f"alerts.{name}: expected exactly `severity` and `for`, got {sorted(settings)}")
        if settings["severity"] not in SEVERITIES:
            raise ConfigError(f"alerts.{name}.severity {settings['severity']!r}: one of {', '.join(SEVERITIES)}")
        if not DURATION.match(str(settings["for"])):
            raise ConfigError(f"alerts.{name}.for {settings['for']!r}: expected a Prometheus duration")


def render(config: dict) -> str:
    """The rule file for `config` (a whole config, as load_config returns)."""
    lines = TEMPLATE.read_text().splitlines(keepends=True)
    alerts_in_template = [m.group(1) for line in lines if (m := ALERT.match(line))]
    check_config(config, alerts_in_template)
    values = {
        "selector": str(config["selector"]),
        "newUserGracePeriod": str(config["newUserGracePeriod"]),
        "newUserGracePeriodSeconds": str(grace_seconds(config["newUserGracePeriod"])),
        "keepFiringFor": str(config.get("keepFiringFor") or ""),
    }
    out, alert = [HEADER], None
    for number, line in enumerate(lines, 1):
        if line.startswith("#!"):
            continue
        if m := ALERT.match(line):
            alert = m.group(1)
        if (m := OMITTABLE.match(line)) and m.group(1) in values and not values[m.group(1)]:
            continue

        def substitute(m, alert=alert, number=number):
            name = m.group(1)
            if name in values:
                return values[name]
            if name in ("severity", "for", "runbookUrl"):
                if alert is None:
                    raise ConfigError(f"template line {number}: ${{{name}}} outside an alert")
                if name == "runbookUrl":
                    return (config["runbookUrlPattern"].replace("{anchor}", alert.lower())
                            .replace("{alertname}", alert))
                return str(config["alerts"][alert][name])
            raise ConfigError(f"template line {number}: unknown placeholder ${{{name}}}")

        out.append(PLACEHOLDER.sub(substitute, line))
    text = "".join(out)
    check_output(text, alerts_in_template)
    return text


def check_output(text: str, alerts: list) -> None:
    """What promtool cannot see: every alert has a known severity and its runbook link."""
    groups = yaml.safe_load(text)["groups"]
    rules = [r for g in groups for r in g["rules"] if "alert" in r]
    assert [r["alert"] for r in rules] == alerts
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["runbook_url"], rule["alert"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", action="append", default=[], help="settings merged over alerts/config.yml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="one setting, e.g. keepFiringFor=")
    parser.add_argument("-o", "--output", default=str(OUTPUT), help="file to write, - for stdout (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="exit 1 if --output is not what would be written")
    args = parser.parse_args(argv)
    try:
        text = render(load_config(args.config, args.set))
    except ConfigError as e:
        print(f"render-alerts: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = Path(args.output).read_text() if Path(args.output).exists() else ""
        if current != text:
            print(f"render-alerts: {args.output} is not current: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
