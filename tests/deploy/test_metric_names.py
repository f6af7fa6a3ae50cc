"""Every metric the alert rules and the Grafana dashboard query is one the daemon exports.

Names come from the daemon's own registry (``service.metrics.Metrics``), with the suffixes
Prometheus exposes (``_total`` for counters, ``_bucket``/``_sum``/``_count`` for histograms).
Label matchers on a series the code emits are checked against what a cycle really renders
(``kind="upgrade", outcome="failed"``), so a renamed label value breaks this test, not the alert.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import yaml
from prometheus_client.parser import text_string_to_metric_families

from flink_gitops.execute.cycle import ActionResult, CycleResult
from flink_gitops.plan.model import ActionKind, JobReport, Plan, Status
from flink_gitops.service.metrics import Metrics
from tests.deploy.tools import ROOT

RULES = ROOT / "deploy" / "prometheus" / "flink-gitops.rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "flink-gitops.json"

#: Metrics a branch's rules or dashboard use before service.metrics exports them (empty on main; a
#: name that reaches the registry fails the test until it is removed from here).
PENDING: dict[str, str] = {}
#: Series Prometheus makes itself.
BUILTIN = {"up"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
_NAME = re.compile(r"(?<![\w$])(flink_[a-z0-9_]+)")
_SELECTOR = re.compile(r"(?<![\w$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def exposed(family: str, kind: str) -> set[str]:
    base = family.removesuffix("_total") if kind == "counter" else family
    return {base + s for s in _SUFFIXES[kind]}


def registry_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names |= exposed(family.name, family.type)
    return names


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"expr", "definition"} and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(json.loads(DASHBOARD.read_text())))


def test_pending_names_are_not_yet_in_the_registry() -> None:
    landed = {n for n, kind in PENDING.items() if exposed(n, kind) & registry_names()}
    assert landed == set(), f"now exported by service.metrics: remove from PENDING: {sorted(landed)}"


def test_rules_and_dashboard_query_only_exported_metrics() -> None:
    known = registry_names() | BUILTIN
    for name, kind in PENDING.items():
        known |= exposed(name, kind)
    exprs = rule_exprs() + dashboard_exprs()
    assert len(exprs) > 20
    used = {m for e in exprs for m in _NAME.findall(e)} | {m for e in exprs for m, _ in _SELECTOR.findall(e)}
    assert used - known == set(), "metric names no registry exports"
    # every metric of the daemon is on the dashboard (or at least in a rule)
    unused = {n for n in registry_names() if not n.endswith("_created")} - used
    family_used = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert {n for n in unused if re.sub(r"_(bucket|sum|count)$", "", n) not in family_used} == set()


def _rendered_after_a_bad_cycle() -> list[tuple[str, dict[str, str]]]:
    m = Metrics()
    reports = {
        "orders": JobReport("orders", "eu", Status.PENDING, "upgrade"),
        "clicks": JobReport("clicks", "eu", Status.PENDING, "give up"),
    }
    results = {
        "orders": ActionResult("orders", ActionKind.UPGRADE, False, None, "rolled back"),
        "clicks": ActionResult("clicks", ActionKind.GIVE_UP, True, None, "budget spent"),
    }
    aborted = CycleResult("c1", Plan((), reports, (), {}), results, aborted="audit unavailable")
    m.observe_cycle(aborted, ["eu"], 1.0)
    return [
        (s.name, s.labels)
        for family in text_string_to_metric_families(m.render().decode())
        for s in family.samples
    ]


def test_rule_label_matchers_select_series_the_daemon_emits() -> None:
    rendered = _rendered_after_a_bad_cycle()
    names = {n for n, _ in rendered}
    checked = 0
    for expr in rule_exprs():
        for metric, body in _SELECTOR.findall(expr):
            if metric not in names:
                continue  # a pending metric, or one with no series after this cycle
            wanted = {k: v for k, op, v in _MATCHER.findall(body) if op == "="}
            assert any(
                n == metric and all(labels.get(k) == v for k, v in wanted.items()) for n, labels in rendered
            ), f"{metric}{{{body}}} selects nothing the daemon emits"
            checked += 1
    assert checked >= 3  # failed upgrade, give-up, aborted cycles


def test_the_dashboard_is_grafana_json_with_a_prometheus_datasource_variable() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert 36 <= dash["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        assert all(t["expr"].strip() for t in p["targets"]), p["title"]
