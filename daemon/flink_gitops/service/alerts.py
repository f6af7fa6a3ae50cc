"""Alerts: conditions a platform team must hear about, sent to webhooks without blocking a cycle.

:func:`conditions` (pure) turns one cycle's result into the alerts active now —
live drift per job, a job FAILED (a failed spec, or its restart budget spent),
a cluster that could not be observed, the Git source failing (stale) or a
signature refused, the audit trail unwritable — plus one-cycle events
(a rollback, a recovery, a give-up). :class:`AlertState` deduplicates: an alert
fires once when it becomes active and once "resolved" when it is no longer, never
again while it lasts. :class:`Alerter` delivers each change to every configured
sink — a generic JSON webhook, a Slack incoming webhook, the Alertmanager v2
API — from its own thread, retried with exponential backoff (tenacity, sleeping
through the injected clock); a sink that stays down loses that message after
``max_attempts`` and is logged, never raised into the cycle. URLs that carry a
token (Slack's always do) come from secret files, never the config, and never
reach a log line. Neighbours: ``service.loop`` (calls it after each cycle),
``execute.cycle`` (the result), ``settings.AlertsConfig``.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from loguru import logger
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from flink_gitops.clock import Clock
from flink_gitops.execute.cycle import CycleResult
from flink_gitops.plan.model import ActionKind, Status
from flink_gitops.secrets import Secret, read_secret
from flink_gitops.settings import AlertsConfig

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``key`` identifies it while it lasts (dedup), ``kind`` is its alertname."""

    key: str
    kind: str
    severity: Severity
    summary: str
    labels: Mapping[str, str] = field(default_factory=dict)
    #: an event (a rollback happened): active for the cycle it happened in only.
    event: bool = False


def conditions(
    result: CycleResult, *, source_error: str | None = None, signature_refused: bool = False
) -> list[Alert]:
    """The alerts one cycle's result makes active (see the module docstring)."""
    out: list[Alert] = []
    for name, report in sorted(result.plan.reports.items()):
        labels = {"job": name, "cluster": report.cluster or ""}
        if report.drift is not None:
            out.append(
                Alert(f"drift:{name}", "FlinkGitOpsDrift", "warning", f"{name}: {report.reason}", labels)
            )
        if report.status is Status.FAILED:
            out.append(
                Alert(
                    f"failed:{name}", "FlinkGitOpsJobFailed", "critical", f"{name}: {report.reason}", labels
                )
            )
    for name, done in sorted(result.results.items()):
        if name in result.led_elsewhere:
            continue  # its cluster's leader acts on it and alerts; here it is only observed
        planned = result.plan.reports.get(name)
        labels = {"job": name, "cluster": (planned.cluster if planned else None) or ""}
        lifecycle = done.lifecycle.value if done.lifecycle is not None else None
        if lifecycle == "rolled-back":
            out.append(
                _event(
                    name, "FlinkGitOpsRollback", "critical", f"{name}: rolled back: {done.message}", labels
                )
            )
        elif done.kind is ActionKind.GIVE_UP:
            out.append(
                _event(name, "FlinkGitOpsRestartBudgetSpent", "critical", f"{name}: {done.message}", labels)
            )
        elif done.kind is ActionKind.RECOVER and done.ok:
            out.append(
                _event(name, "FlinkGitOpsRecovered", "info", f"{name}: recovered: {done.message}", labels)
            )
        elif not done.ok and not done.retry and done.kind in _CHANGES:
            out.append(
                Alert(
                    f"failed:{name}",
                    "FlinkGitOpsJobFailed",
                    "critical",
                    f"{name}: {done.kind.value} failed: {done.message}",
                    labels,
                )
            )
    for cluster, why in sorted(result.plan.unreachable.items()):
        out.append(
            Alert(
                f"cluster-down:{cluster}",
                "FlinkGitOpsClusterDown",
                "critical",
                f"cluster {cluster!r} could not be observed: {why}",
                {"cluster": cluster},
            )
        )
    if source_error is not None:
        kind, summary = (
            ("FlinkGitOpsSignatureRefused", f"the Git revision's signature was refused: {source_error}")
            if signature_refused
            else (
                "FlinkGitOpsGitStale",
                f"the Git source failed; acting on the last good revision: {source_error}",
            )
        )
        out.append(Alert(f"git:{kind}", kind, "critical", summary))
    if result.aborted and result.aborted.startswith("audit"):
        out.append(Alert("audit", "FlinkGitOpsAuditUnwritable", "critical", result.aborted))
    return _unique(out)


_CHANGES = frozenset(
    {ActionKind.DEPLOY, ActionKind.UPGRADE, ActionKind.REDEPLOY, ActionKind.RESUME, ActionKind.RECOVER}
)


def _event(name: str, kind: str, severity: Severity, summary: str, labels: Mapping[str, str]) -> Alert:
    return Alert(f"{kind}:{name}", kind, severity, summary, labels, event=True)


def _unique(alerts: Iterable[Alert]) -> list[Alert]:
    seen: dict[str, Alert] = {}
    for a in alerts:
        seen.setdefault(a.key, a)
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class Change:
    """One message to send: an alert that fired or resolved, and when."""

    alert: Alert
    status: Literal["firing", "resolved"]
    at: datetime
    #: when it began firing (Alertmanager's startsAt).
    since: datetime


class AlertState:
    """Deduplication: what is active now; :meth:`update` returns only what changed."""

    def __init__(self) -> None:
        self.active: dict[str, tuple[Alert, datetime]] = {}

    def update(self, alerts: Iterable[Alert], now: datetime) -> list[Change]:
        current = {a.key: a for a in alerts}
        changes: list[Change] = []
        for key, (alert, since) in sorted(self.active.items()):
            if key not in current:
                changes.append(Change(alert, "resolved", now, since))
                del self.active[key]
        for key, alert in current.items():
            if key not in self.active:
                self.active[key] = (alert, now)
                changes.append(Change(alert, "firing", now, now))
        return changes


# --- sinks --------------------------------------------------------------------------------------


class SinkError(Exception):
    """A sink did not take the message (retried); the text never holds the URL."""


def _post(url: Secret | str, body: Any, timeout_s: float, headers: Mapping[str, str] | None = None) -> None:
    target = url.reveal_text() if isinstance(url, Secret) else url
    if not target.startswith(("http://", "https://")):
        raise SinkError("the URL is not http(s)")
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the settings (http/https)
        target, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise SinkError(f"answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SinkError(f"not reached: {type(reason).__name__}") from None


def generic_body(change: Change) -> dict[str, Any]:
    a = change.alert
    return {
        "status": change.status,
        "alert": a.kind,
        "key": a.key,
        "severity": a.severity,
        "summary": a.summary,
        "labels": dict(a.labels),
        "startsAt": change.since.isoformat(),
        "at": change.at.isoformat(),
    }


def slack_body(change: Change) -> dict[str, Any]:
    mark = "resolved" if change.status == "resolved" else change.alert.severity.upper()
    return {"text": f"[{mark}] {change.alert.kind}: {change.alert.summary}"}


def alertmanager_body(change: Change) -> list[dict[str, Any]]:
    a = change.alert
    item: dict[str, Any] = {
        "labels": {"alertname": a.kind, "severity": a.severity, "key": a.key, **a.labels},
        "annotations": {"summary": a.summary},
        "startsAt": change.since.isoformat(),
        "generatorURL": "https://github.com/flink-gitops",
    }
    if change.status == "resolved":
        item["endsAt"] = change.at.isoformat()
    return [item]


@dataclass(frozen=True)
class Sink:
    name: str
    send: Callable[[Change], None]


def sinks_from(config: AlertsConfig) -> list[Sink]:
    """One sink per configured destination (secrets read now: a missing file is a config error)."""
    out: list[Sink] = []
    t = config.timeout_s
    if config.webhook is not None:
        url = read_secret(config.webhook)

        def webhook(c: Change) -> None:
            _post(url, generic_body(c), t)

        out.append(Sink("webhook", webhook))
    if config.slack is not None:
        slack_url = read_secret(config.slack)

        def slack(c: Change) -> None:
            _post(slack_url, slack_body(c), t)

        out.append(Sink("slack", slack))
    if config.alertmanager_url is not None:
        base = config.alertmanager_url.rstrip("/") + "/api/v2/alerts"
        out.append(Sink("alertmanager", lambda c: _post(base, alertmanager_body(c), t)))
    return out


class Alerter:
    """Deduplicates and delivers alerts from a thread of its own; :meth:`observe` never blocks."""

    def __init__(
        self, sinks: list[Sink], clock: Clock, *, max_attempts: int = 5, backoff_s: float = 1.0
    ) -> None:
        self.sinks = sinks
        self.clock = clock
        self.state = AlertState()
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._queue: queue.Queue[Change | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        #: (sink, status, key) of every message delivered, in order (for tests and /metrics).
        self.delivered: list[tuple[str, str, str]] = []
        self.dropped = 0

    def start(self) -> Alerter:
        if self.sinks and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()
        return self

    def observe(self, alerts: Iterable[Alert]) -> list[Change]:
        """The alerts active now: queue what fired or resolved (returns those changes)."""
        changes = self.state.update(alerts, self.clock.now())
        for change in changes:
            logger.log(
                "WARNING" if change.status == "firing" else "INFO",
                "alert {} {}: {}",
                change.status,
                change.alert.kind,
                change.alert.summary[:300],
            )
            if self.sinks:
                self._queue.put(change)
        return changes

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    def drain(self, timeout_s: float = 10.0) -> None:
        """Wait until every queued message was delivered or given up (tests, clean stop)."""
        deadline = self.clock.monotonic() + timeout_s
        while self._queue.unfinished_tasks and self.clock.monotonic() < deadline:
            self.clock.sleep(0.01)

    def _run(self) -> None:
        while True:
            change = self._queue.get()
            try:
                if change is None:
                    return
                for sink in self.sinks:
                    self._deliver(sink, change)
            finally:
                self._queue.task_done()

    def _deliver(self, sink: Sink, change: Change) -> None:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=60),
            retry=retry_if_exception_type(SinkError),
            sleep=self.clock.sleep,
            reraise=True,
        )
        try:
            retrying(sink.send, change)
        except SinkError as exc:
            self.dropped += 1
            logger.error(
                "alert {} to {} given up after {} attempts: {}",
                change.alert.kind,
                sink.name,
                self.max_attempts,
                exc,
            )
            return
        self.delivered.append((sink.name, change.status, change.alert.key))
