"""`flink-gitops pause|resume [JOB]` and `status` through the real CLI (click's runner in-process; the
hostile config cases as a subprocess): audited first, idempotent and saying so, unknown jobs an
error naming them (exit 2), a huge reason cut, paused and held jobs shown by `status`, and bad
``sync.windows`` refused at config load naming the key."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from loguru import logger

from flink_gitops.cli import main
from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.store import JobUpdate, SpecRecord, Store, cluster_lease, open_store
from flink_gitops.settings import Settings
from tests.cli.clirun import cli


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logger.remove()  # the CLI pointed loguru at the runner's (now closed) stderr
    logger.add(sys.stderr)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    assert run(state, "keys", "generate").exit_code == 0
    store = Store.from_url(f"sqlite:///{state / 'state.db'}", clock=FakeClock())
    try:
        lease = store.leases.acquire("seed", 10**6, name=cluster_lease("default"))
        assert lease is not None
        kw: dict[str, Any] = {"epoch": lease.epoch, "lease": lease.name}
        for name, labels in (("orders", {"team": "core"}), ("payments", {})):
            store.jobs.create(name, "default", **kw)
            body = {"spec": {"metadata": {"name": name, "labels": labels}, "spec": {}}}
            store.jobs.update(name, _reconciled(body), **kw)
    finally:
        store.close()
    return state


def _reconciled(body: dict[str, Any]) -> JobUpdate:
    return JobUpdate(last_reconciled=SpecRecord(body, "a" * 64, "c" * 40))


def run(state: Path, *args: str, config: Path | None = None) -> Result:
    pre = ["--config", str(config)] if config is not None else []
    env = {"FLINK_GITOPS_STATE_DIR": str(state), "USER": "alice", "LOGNAME": "alice"}
    return CliRunner().invoke(main, [*pre, *args], env=env, catch_exceptions=False)


def audit_actions(state: Path) -> list[tuple[str, str | None, str | None]]:
    settings = Settings(state_dir=state)
    with open_store(settings) as store:
        trail = AuditTrail.from_settings(settings, store, clock=FakeClock(), actor="test")
        return [(r.event.action, r.event.job, r.event.outcome) for r in trail.records()]


def status_json(state: Path, config: Path | None = None) -> dict[str, Any]:
    result = run(state, "status", "--output", "json", config=config)
    assert result.exit_code == 0, result.output
    return {d["job"]: d for d in json.loads(result.output)}


def test_pause_is_audited_first_idempotent_and_shown_by_status(state: Path) -> None:
    first = run(state, "pause", "orders", "--reason", "incident 42")
    assert first.exit_code == 0, first.output
    assert "job orders paused" in first.output
    again = run(state, "pause", "orders", "--reason", "other")
    assert again.exit_code == 0
    assert "already paused (by cli:" in again.output
    assert "nothing changed" in again.output
    assert audit_actions(state) == [("job.pause", "orders", "intent"), ("job.pause", "orders", "succeeded")]
    shown = status_json(state)
    hold = shown["orders"]["hold"]
    assert hold["status"] == "paused"
    assert hold["reason"].startswith("paused by cli:")
    assert hold["reason"].endswith(": incident 42")
    assert shown["payments"]["hold"] is None
    table = run(state, "status")
    assert "paused by cli:" in table.output
    resumed = run(state, "resume", "orders")
    assert resumed.exit_code == 0
    assert "job orders resumed" in resumed.output
    twice = run(state, "resume", "orders")
    assert twice.exit_code == 0
    assert "was not paused: nothing changed" in twice.output
    assert audit_actions(state)[2:] == [
        ("job.resume", "orders", "intent"),
        ("job.resume", "orders", "succeeded"),
    ]
    assert status_json(state)["orders"]["hold"] is None


def test_a_global_pause_holds_every_job_and_its_resume_leaves_per_job_pauses(state: Path) -> None:
    assert run(state, "pause", "payments").exit_code == 0
    everyone = run(state, "pause", "--reason", "freeze")
    assert everyone.exit_code == 0
    assert "every job paused" in everyone.output
    shown = status_json(state)
    assert shown["orders"]["hold"]["reason"].startswith("paused (every job) by cli:")
    assert shown["payments"]["hold"]["reason"].startswith("paused by cli:")  # its own pause first
    lifted = run(state, "resume")
    assert lifted.exit_code == 0
    assert "every job resumed" in lifted.output
    assert "still paused one by one: payments" in lifted.output
    assert [a for a, _j, o in audit_actions(state) if o == "succeeded"] == [
        "job.pause",
        "sync.pause",
        "sync.resume",
    ]


@pytest.mark.parametrize("name", ["ghost", "../etc", "a" * 300, "x\x1b[31my"])
def test_pausing_an_unknown_job_is_an_error_naming_it(state: Path, name: str) -> None:
    for command in ("pause", "resume"):
        result = run(state, command, name)
        assert result.exit_code == 2, result.output
        assert "error: no job named" in result.output
        assert "\x1b" not in result.output
    assert audit_actions(state) == []


def test_a_huge_reason_is_cut_and_said_so(state: Path) -> None:
    result = run(state, "pause", "orders", "--reason", "r" * 100_000)
    assert result.exit_code == 0
    assert "reason cut to 1000 characters" in result.output
    assert len(status_json(state)["orders"]["hold"]["reason"]) < 1100


def test_status_shows_a_job_held_by_an_open_deny_window(state: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    window = {"kind": "deny", "schedule": "* * * * *", "duration_s": 120, "labels": {"team": "core"}}
    config.write_text(yaml.safe_dump({"state_dir": str(state), "sync": {"windows": [window]}}))
    shown = status_json(state, config)
    assert shown["orders"]["hold"]["status"] == "held"
    assert shown["orders"]["hold"]["reason"].startswith("held by sync window deny '* * * * *' until ")
    assert shown["payments"]["hold"] is None


WINDOW = {"kind": "deny", "schedule": "0 22 * * *", "duration_s": 3600}
BAD_WINDOWS: dict[str, tuple[Any, str]] = {
    "duration-zero": ([WINDOW | {"duration_s": 0}], "sync.windows.0.duration_s"),
    "duration-negative": ([WINDOW | {"duration_s": -5}], "sync.windows.0.duration_s"),
    "duration-huge": ([WINDOW | {"duration_s": 10**12}], "sync.windows.0.duration_s"),
    "cron-invalid": ([WINDOW | {"schedule": "61 * * * *"}], "minute: 61 is out of range"),
    "cron-fields": ([WINDOW | {"schedule": "every night"}], "sync.windows.0"),
    "cron-never": ([WINDOW | {"schedule": "0 0 30 2 *"}], "never fires"),
    "kind-unknown": ([WINDOW | {"kind": "maybe"}], "sync.windows.0.kind"),
    "glob-path": ([WINDOW | {"jobs": ["../etc/*"]}], "is not a job name or glob"),
    "not-a-list": ({"kind": "deny"}, "sync.windows"),
}


@pytest.mark.parametrize("case", list(BAD_WINDOWS), ids=list(BAD_WINDOWS))
def test_a_bad_sync_window_is_a_config_error_naming_the_key(tmp_path: Path, case: str) -> None:
    windows, expected = BAD_WINDOWS[case]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "sync": {"windows": windows}}))
    result = cli("--config", str(config), "status", home=tmp_path)
    result.assert_clean()
    assert result.code == 2, result.out + result.err
    assert f"{config}: invalid config: " in result.err
    assert expected in result.err
    assert not (tmp_path / "state").exists()
