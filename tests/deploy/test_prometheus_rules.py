"""The alert rules pass ``promtool check rules`` and their own ``promtool test rules`` cases."""

from __future__ import annotations

import yaml

from tests.deploy.tools import ROOT, require_tool, run

RULES = ROOT / "deploy" / "prometheus" / "flink-gitops.rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "flink-gitops.rules.test.yml"


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool", "prometheus")
    done = run([promtool, "check", "rules", str(RULES)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_rule_unit_tests() -> None:
    promtool = require_tool("promtool", "prometheus")
    done = run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test_and_a_severity() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    tested = {
        case["alertname"]
        for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in t["alert_rule_test"]
    }
    names = {r["alert"] for r in rules}
    assert names - tested == set(), "alerts without a promtool test case"
    assert all(r["labels"]["severity"] in {"warning", "critical"} for r in rules)
