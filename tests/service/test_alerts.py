"""Alerts: which conditions fire, deduplication and "resolved", and delivery to REAL HTTP receivers
on loopback (a generic webhook, Slack's incoming-webhook shape, the Alertmanager v2 API), retried
with backoff on the injected clock and never blocking the caller."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from flink_gitops.clock import FakeClock
from flink_gitops.execute.cycle import ActionResult, CycleResult
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind, DriftKind, JobReport, Plan, Status
from flink_gitops.secrets import SecretRef
from flink_gitops.service.alerts import Alert, Alerter, AlertState, conditions, sinks_from
from flink_gitops.settings import AlertsConfig

TOKEN = "T000-slack-token-do-not-print"


def result(
    reports: dict[str, JobReport],
    results: dict[str, ActionResult] | None = None,
    unreachable: dict[str, str] | None = None,
    aborted: str | None = None,
) -> CycleResult:
    plan = Plan((), reports, (), unreachable or {})
    return CycleResult("c" * 40, plan, results or {}, aborted=aborted)


def report(name: str, status: Status, reason: str = "why", drift: DriftKind | None = None) -> JobReport:
    return JobReport(name, "default", status, reason, drift=drift)


def test_conditions_name_each_kind_once() -> None:
    r = result(
        {
            "a": report("a", Status.DRIFT, "job x was cancelled", DriftKind.CANCELLED),
            "b": report("b", Status.FAILED, "spec failed before"),
            "c": report("c", Status.PENDING, "upgrade"),
            "d": report("d", Status.PENDING, "recover"),
            "e": report("e", Status.PENDING, "give up"),
            "ok": report("ok", Status.IN_SYNC),
        },
        {
            "c": ActionResult("c", ActionKind.UPGRADE, False, JobLifecycle.ROLLED_BACK, "state mismatch"),
            "d": ActionResult("d", ActionKind.RECOVER, True, JobLifecycle.STABLE, "stable, job 1"),
            "e": ActionResult(
                "e", ActionKind.GIVE_UP, False, JobLifecycle.FAILED, "restart budget spent: boom"
            ),
        },
        {"eu": "FlinkNotSent: connection refused"},
        "audit trail unavailable: disk full",
    )
    alerts = {a.key: a for a in conditions(r, source_error="RemoteUnreachableError: timeout")}
    assert alerts["drift:a"].kind == "FlinkGitOpsDrift"
    assert alerts["failed:b"].severity == "critical"
    assert alerts["FlinkGitOpsRollback:c"].event
    assert alerts["FlinkGitOpsRecovered:d"].severity == "info"
    assert "boom" in alerts["FlinkGitOpsRestartBudgetSpent:e"].summary
    assert alerts["cluster-down:eu"].labels == {"cluster": "eu"}
    assert "git:FlinkGitOpsGitStale" in alerts
    assert "audit" in alerts
    assert not any(k.endswith(":ok") for k in alerts)
    signed = conditions(result({}), source_error="unsigned commit", signature_refused=True)
    assert [a.kind for a in signed] == ["FlinkGitOpsSignatureRefused"]


def test_a_job_on_a_cluster_led_by_another_replica_is_not_this_replicas_failure() -> None:
    why = "cluster 'eu' is led by r1:4638@4026531836"
    r = result(
        {"p": report("p", Status.PENDING, "deploy"), "q": report("q", Status.PENDING, "deploy")},
        {
            "p": ActionResult("p", ActionKind.DEPLOY, False, None, why),
            "q": ActionResult("q", ActionKind.DEPLOY, False, None, "jar upload refused"),
        },
    )
    r.led_elsewhere["p"] = why
    assert [a.key for a in conditions(r)] == ["failed:q"]


def test_an_alert_fires_once_while_it_lasts_and_resolves_when_it_ends() -> None:
    state = AlertState()
    clock = FakeClock()
    drift = Alert("drift:a", "FlinkGitOpsDrift", "warning", "a drifted", {"job": "a"})
    event = Alert("FlinkGitOpsRecovered:b", "FlinkGitOpsRecovered", "info", "b recovered", event=True)
    first = state.update([drift, event], clock.now())
    assert [(c.alert.key, c.status) for c in first] == [("drift:a", "firing"), (event.key, "firing")]
    clock.advance(30)
    again = state.update([drift], clock.now())  # the event is over; the drift lasts: nothing new
    assert [(c.alert.key, c.status) for c in again] == [(event.key, "resolved")]
    assert state.update([drift], clock.now()) == []
    clock.advance(30)
    ended = state.update([], clock.now())
    assert [(c.alert.key, c.status) for c in ended] == [("drift:a", "resolved")]
    assert ended[0].since < ended[0].at


# --- delivery to real receivers --------------------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP server on loopback: records every POST; ``fail_first`` answers 503 that often."""

    fail_first: int = 0
    hold: threading.Event | None = None
    bodies: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.hold is not None:
                    receiver.hold.wait(10)
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append((self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {"webhook": Receiver(), "slack": Receiver(), "alertmanager": Receiver()}
    yield made
    for r in made.values():
        r.close()


def secret_file(tmp_path: Path, name: str, value: str) -> SecretRef:
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return SecretRef(file=path)


def test_every_sink_gets_firing_then_resolved_in_its_own_shape(
    tmp_path: Path, receivers: dict[str, Receiver]
) -> None:
    config = AlertsConfig(
        webhook=secret_file(tmp_path, "hook", receivers["webhook"].url + "/hook"),
        slack=secret_file(tmp_path, "slack", receivers["slack"].url + f"/services/{TOKEN}"),
        alertmanager_url=receivers["alertmanager"].url,
    )
    clock = FakeClock()
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG")
    alerter = Alerter(sinks_from(config), clock).start()
    try:
        drift = Alert(
            "drift:a", "FlinkGitOpsDrift", "warning", "a drifted", {"job": "a", "cluster": "default"}
        )
        alerter.observe([drift])
        alerter.observe([drift])  # deduplicated: nothing more sent
        clock.advance(60)
        alerter.observe([])
        alerter.drain()
    finally:
        alerter.stop()
        logger.remove(sink_id)
    hook = [b for _, b in receivers["webhook"].bodies]
    assert [(b["status"], b["alert"], b["labels"]["job"]) for b in hook] == [
        ("firing", "FlinkGitOpsDrift", "a"),
        ("resolved", "FlinkGitOpsDrift", "a"),
    ]
    slack = [b["text"] for _, b in receivers["slack"].bodies]
    assert slack == ["[WARNING] FlinkGitOpsDrift: a drifted", "[resolved] FlinkGitOpsDrift: a drifted"]
    am = receivers["alertmanager"].bodies
    assert [p for p, _ in am] == ["/api/v2/alerts", "/api/v2/alerts"]
    firing, resolved = am[0][1][0], am[1][1][0]
    assert firing["labels"]["alertname"] == "FlinkGitOpsDrift"
    assert "endsAt" not in firing
    assert resolved["endsAt"] > resolved["startsAt"]
    assert TOKEN not in "".join(lines), "the Slack URL is a secret"


def test_a_failing_receiver_is_retried_with_backoff_and_a_dead_one_given_up_without_raising(
    tmp_path: Path,
) -> None:
    flaky = Receiver(fail_first=2)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/x"
    clock = FakeClock()
    try:
        config = AlertsConfig(
            webhook=secret_file(tmp_path, "hook", flaky.url + "/hook"), alertmanager_url=dead, max_attempts=3
        )
        alerter = Alerter(sinks_from(config), clock, max_attempts=3, backoff_s=2).start()
        start = clock.monotonic()
        alerter.observe([Alert("cluster-down:eu", "FlinkGitOpsClusterDown", "critical", "eu down")])
        alerter.drain()
        alerter.stop()
    finally:
        flaky.close()
        sock.close()
    assert len(flaky.bodies) == 1, "delivered on the third attempt"
    assert alerter.dropped == 1, "the dead receiver's message given up after 3 attempts"
    assert clock.monotonic() - start >= 2 + 4, "backed off 2 s, then 4 s (on the injected clock)"
    assert ("webhook", "firing", "cluster-down:eu") in alerter.delivered


def test_delivery_never_blocks_the_caller(tmp_path: Path) -> None:
    hold = threading.Event()
    slow = Receiver(hold=hold)
    try:
        alerter = Alerter(
            sinks_from(AlertsConfig(webhook=secret_file(tmp_path, "hook", slow.url))), FakeClock()
        ).start()
        changes = alerter.observe([Alert("audit", "FlinkGitOpsAuditUnwritable", "critical", "audit down")])
        assert [c.status for c in changes] == ["firing"]
        assert slow.bodies == [], "observe returned while the receiver still holds the request"
        hold.set()
        alerter.drain()
        alerter.stop()
        assert len(slow.bodies) == 1
    finally:
        hold.set()
        slow.close()


def test_an_unreadable_secret_is_a_config_error_at_start(tmp_path: Path) -> None:
    from flink_gitops.errors import FlinkGitOpsError

    with pytest.raises(FlinkGitOpsError, match="cannot read secret"):
        sinks_from(AlertsConfig(slack=SecretRef(file=tmp_path / "missing")))
