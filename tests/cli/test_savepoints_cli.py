"""`flink-gitops savepoints JOB` through the real CLI (a subprocess): the history with origin and state,
as text and JSON, and hostile input (unknown job, huge name, control characters, store unreachable)
answered with one clear line and exit 2, never a traceback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.store import (
    JobUpdate,
    NewSavepoint,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    Store,
    cluster_lease,
)
from tests.cli.clirun import Run, cli, open_tempdir, remove_tree

JOB = "1" * 32
HOSTILE_PATH = "s3://b/sp [/red] \x1b[31m x"


@pytest.fixture
def top() -> Iterator[Path]:
    path = open_tempdir("fg-savepoints-")
    yield path
    remove_tree(path)


def seed(state: Path) -> dict[str, str]:
    """orders: six records: stable (restored from), two kept, one disposed, a checkpoint, current."""
    clock = FakeClock()
    store = Store.from_url(f"sqlite:///{state / 'state.db'}", clock=clock)
    try:
        lease = store.leases.acquire("seed", 10**6, name=cluster_lease("default"))
        assert lease is not None
        kw: dict[str, Any] = {"epoch": lease.epoch, "lease": lease.name}
        store.jobs.create("orders", "default", **kw)
        paths: dict[str, str] = {}
        for key, origin, kind in (
            ("stable", SnapshotOrigin.UPGRADE, SnapshotKind.SAVEPOINT),
            ("disposed", SnapshotOrigin.PERIODIC, SnapshotKind.SAVEPOINT),
            ("kept", SnapshotOrigin.NONCE, SnapshotKind.SAVEPOINT),
            ("hostile", SnapshotOrigin.MANUAL, SnapshotKind.SAVEPOINT),
            ("checkpoint", SnapshotOrigin.RETAINED, SnapshotKind.CHECKPOINT),
            ("current", SnapshotOrigin.PERIODIC, SnapshotKind.SAVEPOINT),
        ):
            clock.advance(60)
            path = HOSTILE_PATH if key == "hostile" else f"file:///sp/{key}"
            new = NewSavepoint("orders", path, kind, origin, flink_job_id=JOB, make_current=key == "current")
            sp = store.snapshots.record(new, **kw)
            paths[key] = path
            if key == "disposed":
                store.snapshots.mark_disposed(sp.id, **kw)
        store.jobs.update("orders", JobUpdate(state=JobLifecycle.STABLE, flink_job_id=JOB), **kw)
        intent = {"cluster": "default", "job_id": JOB, "restore": "path", "restore_path": paths["stable"]}
        op = store.operations.begin("orders", "upgrade", intent, **kw)
        store.operations.finish(op.op_id, OperationState.SUCCEEDED, **kw)
        store.jobs.create("empty", "default", **kw)
        return paths
    finally:
        store.close()


def run(top: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    result = cli(*args, home=top, env={"FLINK_GITOPS_STATE_DIR": str(top / "state")} | (env or {}))
    result.assert_clean()
    return result


@pytest.fixture
def state(top: Path) -> dict[str, str]:
    (top / "state").mkdir()
    return seed(top / "state")


def test_json_lists_every_record_newest_first_with_its_state(top: Path, state: dict[str, str]) -> None:
    result = run(top, "savepoints", "orders", "--output", "json")
    assert result.code == 0, result.err
    body = json.loads(result.out)
    assert body["job"] == "orders"
    got = [(r["path"], r["state"], r["origin"], r["kind"]) for r in body["savepoints"]]
    assert got == [
        (state["current"], "current", "periodic", "savepoint"),
        (state["checkpoint"], "kept", "retained", "checkpoint"),
        (state["hostile"], "kept", "manual", "savepoint"),
        (state["kept"], "kept", "nonce", "savepoint"),
        (state["disposed"], "disposed", "periodic", "savepoint"),
        (state["stable"], "stable", "upgrade", "savepoint"),
    ]
    disposed = body["savepoints"][4]
    assert disposed["disposedAt"] is not None
    assert all(r["created"].endswith("+00:00") for r in body["savepoints"])


def test_the_table_shows_each_state_and_escapes_control_characters(top: Path, state: dict[str, str]) -> None:
    result = run(top, "savepoints", "orders")
    assert result.code == 0, result.err
    for word in ("current", "stable", "disposed", "kept", "periodic", "nonce", "retained", "upgrade"):
        assert word in result.out
    assert "\x1b" not in result.out
    assert "\\x1b[31m" in result.out
    assert "[/red]" in result.out  # no rich markup: the text as recorded


def test_a_job_without_savepoints_says_so(top: Path, state: dict[str, str]) -> None:
    result = run(top, "savepoints", "empty")
    assert (result.code, result.out.strip()) == (0, "job empty: no savepoints recorded")
    assert json.loads(run(top, "savepoints", "empty", "--output", "json").out)["savepoints"] == []


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("nope", "Error: no job named 'nope' is recorded"),
        ("x" * 100_000, "characters)"),
        ("a\x1b[31mb\nc\x07", "no job named 'a\\x1b[31mb\\nc\\x07' is recorded"),
        ("", "no job named '' is recorded"),
        ("--", "Missing argument 'JOB'"),
    ],
    ids=["unknown", "huge", "control", "empty", "none"],
)
def test_hostile_job_names(top: Path, state: dict[str, str], name: str, expect: str) -> None:
    result = run(top, "savepoints", name)
    assert result.code == 2
    assert result.out == ""
    assert any(expect in line for line in result.err.splitlines()), result.err[-500:]


def test_bad_options_are_refused(top: Path, state: dict[str, str]) -> None:
    assert run(top, "savepoints", "orders", "--output", "yaml").code == 2
    assert run(top, "savepoints", "orders", "--limit", "0").code == 2


def test_store_unreachable_is_one_error_line(top: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        port = sock.getsockname()[1]
        url = f"postgresql+psycopg://flink@127.0.0.1:{port}/state"
        result = run(top, "savepoints", "orders", env={"FLINK_GITOPS_STORE__URL": url})
    finally:
        sock.close()
    assert result.code == 2
    assert result.out == ""
    (line,) = [x for x in result.err.splitlines() if x.strip()]
    assert line.startswith("error: ")


def test_a_store_that_is_not_a_database_is_one_error_line(top: Path) -> None:
    (top / "state").mkdir()
    (top / "state" / "state.db").write_bytes(b"not sqlite at all" * 100)
    result = run(top, "savepoints", "orders")
    assert result.code == 2
    assert "Traceback" not in result.err
    assert result.err.startswith("error: ")
