"""Pause, resume and savepoint through the HTTP API over the daemon's real view (``DaemonView``) of a
real SQLite store, audit trail and reconciler (the Flink cluster is FakeCluster, our port): audited
first, idempotent, 409 naming the leader on a replica that does not lead, a queued savepoint taken
under the daemon's lock at the next cycle, /readyz with leadership, and the reconciler holding a
paused job's periodic savepoint until it is resumed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger

from flink_gitops.execute import pauses
from flink_gitops.execute.cycle import Reconciler
from flink_gitops.record.store import SnapshotOrigin
from flink_gitops.secrets import Secret
from flink_gitops.service.api import ApiServer, DaemonView, TokenBook, create_app, hash_token
from flink_gitops.service.loop import Daemon, Runtime
from flink_gitops.settings import HttpConfig, Settings, SyncConfig, SyncWindowConfig
from tests.execute.test_retention import World, flink_job, make_world

TOKEN = "control-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _no_runtime(_settings: Settings) -> AbstractContextManager[Runtime]:
    raise AssertionError("the test sets the reconciler itself")


@dataclass
class Served:
    url: str
    daemon: Daemon

    def post(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            return c.post(path, headers=AUTH | (headers or {}), **kw)

    def get(self, path: str) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            return c.get(path, headers=AUTH)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path, flink_job(periodic=600))
    try:
        yield w
    finally:
        w.rec.release()
        w.store.close()


@pytest.fixture
def serve(world: World) -> Iterator[Any]:
    servers: list[ApiServer] = []

    def start(rec: Reconciler) -> Served:
        daemon = Daemon(
            rec.settings, reload=lambda: rec.settings, open_runtime=_no_runtime, clock=world.clock
        )
        daemon._reconciler = rec  # the runtime a real start would open
        view = DaemonView(daemon)
        tokens = TokenBook.parse(f"operator:{hash_token(TOKEN)}", "t")
        app = create_app(view, daemon.trigger, tokens=tokens, webhook_secret=Secret(b"s"), control=view)
        server = ApiServer(app, HttpConfig(port=0))
        server.start()
        servers.append(server)
        return Served(f"http://{server.host}:{server.port}", daemon)

    yield start
    for server in servers:
        server.stop()


def actions(world: World) -> list[tuple[str, str | None, str | None, str]]:
    return [(r.event.action, r.event.job, r.event.outcome, r.event.actor) for r in world.audit.records()]


def test_pause_and_resume_are_audited_first_and_idempotent(world: World, serve: Any) -> None:
    api = serve(world.rec)
    first = api.post("/api/v1/jobs/orders/pause", json={"reason": "incident 42"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["scope"], body["paused"], body["changed"], body["reason"]) == (
        "orders",
        True,
        True,
        "incident 42",
    )
    assert body["paused_by"] == "api:operator@test"
    again = api.post("/api/v1/jobs/orders/pause", json={"reason": "other"})
    assert again.json()["changed"] is False
    assert "already paused" in again.json()["detail"]
    assert api.post("/api/v1/jobs/orders/resume").json()["changed"] is True
    assert api.post("/api/v1/jobs/orders/resume").json()["changed"] is False
    everyone = api.post("/api/v1/pause")  # no body: no reason
    assert everyone.status_code == 200
    assert everyone.json()["scope"] == "*"
    assert api.post("/api/v1/resume").json()["changed"] is True
    assert [(a, j, o) for a, j, o, _ in actions(world)] == [
        ("job.pause", "orders", "intent"),
        ("job.pause", "orders", "succeeded"),
        ("job.resume", "orders", "intent"),
        ("job.resume", "orders", "succeeded"),
        ("sync.pause", None, "intent"),
        ("sync.pause", None, "succeeded"),
        ("sync.resume", None, "intent"),
        ("sync.resume", None, "succeeded"),
    ]
    assert world.store.pauses.all() == []


def test_unknown_jobs_are_404_and_a_huge_reason_is_cut(world: World, serve: Any) -> None:
    api = serve(world.rec)
    for verb in ("pause", "resume", "savepoint"):
        assert api.post(f"/api/v1/jobs/ghost/{verb}").status_code == 404
    big = api.post("/api/v1/jobs/orders/pause", json={"reason": "x" * 100_000})
    assert big.status_code == 200
    assert len(big.json()["reason"]) == 1000
    assert "reason cut to 1000 characters" in big.json()["detail"]
    assert api.post("/api/v1/jobs/orders/pause", json={"reason": 5}).status_code == 422
    assert api.post("/api/v1/jobs/orders/pause", content=b"{").status_code == 422


def test_a_replica_that_does_not_lead_is_read_only_and_names_the_leader(world: World, serve: Any) -> None:
    other = Reconciler(
        world.rec.settings,
        world.store,
        world.audit,
        world.rec.clients,
        world.clock,
        actor="r2",
        instance="r2",
    )
    assert sorted(other.lead_all()) == ["default"]  # the world's reconciler holds the lease
    api = serve(other)
    for path in ("/api/v1/jobs/orders/pause", "/api/v1/jobs/orders/resume", "/api/v1/jobs/orders/savepoint"):
        r = api.post(path)
        assert r.status_code == 409, (path, r.text)
        assert f"led by {world.rec.holder}" in r.json()["detail"]
    r = api.post("/api/v1/pause")
    assert r.status_code == 409
    assert "this replica leads no cluster" in r.json()["detail"]
    assert world.store.pauses.all() == []
    assert actions(world) == []
    assert api.get("/readyz").json()["leadership"] == {"default": False}
    assert api.get("/api/v1/jobs/orders").status_code == 200  # reads are served
    leader = serve(world.rec)
    assert leader.get("/readyz").json()["leadership"] == {"default": True}


def test_a_savepoint_is_queued_and_taken_under_the_daemons_lock_at_the_next_cycle(
    world: World, serve: Any
) -> None:
    api = serve(world.rec)
    r = api.post("/api/v1/jobs/orders/savepoint")
    assert r.status_code == 202, r.text
    assert r.json() == {
        "job": "orders",
        "queued": True,
        "detail": "queued: taken at the start of the next cycle",
    }
    assert api.post("/api/v1/jobs/orders/savepoint").json()["queued"] is False  # one is taken
    assert world.savepoints() == []  # nothing happens on the request thread
    api.daemon._take_queued_savepoints(world.rec)  # what the next tick does, under its lock
    taken = world.savepoints()
    assert [s.origin for s in taken] == [SnapshotOrigin.MANUAL]
    api.daemon._take_queued_savepoints(world.rec)
    assert len(world.savepoints()) == 1  # the queue was emptied


def test_a_paused_job_keeps_its_periodic_savepoint_held_until_it_is_resumed(world: World) -> None:
    world.add_savepoint(current=True)
    world.clock.advance(601)  # the periodic savepoint is due
    pauses.pause(world.store, world.audit, "orders", "freeze", actor="cli:alice")
    held = world.rec.cycle(world.revision)
    report = held.plan.reports["orders"]
    assert (held.plan.actions, report.status) == ((), report.status.PAUSED)
    assert report.reason.startswith("paused by cli:alice at ")
    assert len(world.savepoints()) == 1
    pauses.resume(world.store, world.audit, "orders", actor="cli:alice")
    done = world.rec.cycle(world.revision)
    assert [a.kind.value for a in done.plan.actions] == ["savepoint"]
    assert len(world.savepoints()) == 2


def test_a_job_glob_that_matches_nothing_is_warned_about_once(world: World) -> None:
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        window = SyncWindowConfig(kind="deny", schedule="0 3 * * *", duration_s=60, jobs=["pay*", "ord*"])
        settings = world.rec.settings.model_copy(update={"sync": SyncConfig(windows=[window])})
        rec = Reconciler(
            settings, world.store, world.audit, world.rec.clients, world.clock, actor="t", instance="t"
        )
        rec.holds({"orders"})
        rec.holds({"orders"})
    finally:
        logger.remove(sink)
    warned = [m for m in messages if "matches no job" in m]
    assert len(warned) == 1
    assert "jobs entry 'pay*' matches no job" in warned[0]


#: bodies of a pause request that are refused (4xx, nothing changed): (body, content type, status)
BAD_PAUSE_BODIES: dict[str, tuple[bytes, str, int]] = {
    "not-json": (b"{", "application/json", 422),
    "not-utf8": (b'{"reason":"\xff"}', "application/json", 400),
    "a-list": (b'["x"]', "application/json", 422),
    "a-string": (b'"x"', "application/json", 422),
    "reason-null": (b'{"reason": null}', "application/json", 422),
    "reason-number": (b'{"reason": 5}', "application/json", 422),
    "misspelt-key": (b'{"reson": "x"}', "application/json", 422),
    "text-plain": (b"pause please", "text/plain", 422),
    "deep": (b'{"reason":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400),
    "2mb": (b'{"reason":"' + b"x" * 2_000_000 + b'"}', "application/json", 413),
}


@pytest.mark.parametrize("case", list(BAD_PAUSE_BODIES), ids=list(BAD_PAUSE_BODIES))
def test_a_bad_pause_body_is_a_4xx_and_changes_nothing(world: World, serve: Any, case: str) -> None:
    body, kind, status = BAD_PAUSE_BODIES[case]
    api = serve(world.rec)
    for path in ("/api/v1/jobs/orders/pause", "/api/v1/pause"):
        r = api.post(path, content=body, headers={"Content-Type": kind})
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert "detail" in r.json()
        assert TOKEN not in r.text
    assert world.store.pauses.all() == []
    assert actions(world) == []


def test_a_reason_with_a_lone_surrogate_or_nul_is_kept_with_replacement_characters(
    world: World, serve: Any
) -> None:
    """JSON can escape what UTF-8 cannot hold: it used to fail the audit record (503)."""
    api = serve(world.rec)
    body = b'{"reason": "a\\ud800b\\u0000c"}'
    r = api.post("/api/v1/jobs/orders/pause", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == "a\ufffdb\ufffdc"
    assert world.store.pauses.get("orders") is not None
    assert [(a, o) for a, _j, o, _ in actions(world)] == [("job.pause", "intent"), ("job.pause", "succeeded")]
    assert next(iter(world.audit.records())).event.details == {"reason": "a\ufffdb\ufffdc"}
