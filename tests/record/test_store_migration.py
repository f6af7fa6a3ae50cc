"""Migration 0002 on both backends: rows written by schema 0001 carry over; ambiguous names are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flink_gitops.clock import FakeClock
from flink_gitops.flink.ids import job_id_for
from flink_gitops.record.store import (
    JobLifecycle,
    MigrationRefused,
    NewSavepoint,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
    Store,
)
from flink_gitops.record.store.engine import create_engine, head_revision, migrate, parse_url
from flink_gitops.record.store.tables import UtcDateTime
from tests.fixtures.postgres import StoreTarget

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SPEC = {"job": {"jarURI": "a.jar"}, "state": "running"}


def _v1_table(name: str, *cols: tuple[str, Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, type_) for c, type_ in cols))


JOBS_V1 = _v1_table(
    "jobs",
    *[
        (c, sa.String())
        for c in ("cluster", "name", "flink_job_id", "state", "reconciled_hash", "stable_hash")
    ],
    ("reconciled_spec", sa.JSON()),
    ("stable_spec", sa.JSON()),
    ("reconciled_commit", sa.String()),
    ("generation", sa.Integer()),
    ("attempts", sa.Integer()),
    ("last_error", sa.String()),
    ("updated_at", UtcDateTime()),
)
SAVEPOINTS_V1 = _v1_table(
    "savepoints",
    *[(c, sa.String()) for c in ("cluster", "name", "path", "kind", "origin", "flink_job_id")],
    ("created_at", UtcDateTime()),
    ("disposed", sa.Boolean()),
)
OPERATIONS_V1 = _v1_table(
    "operations",
    *[(c, sa.String()) for c in ("op_id", "cluster", "name", "kind", "state")],
    ("intent", sa.JSON()),
    ("detail", sa.JSON()),
    ("epoch", sa.Integer()),
    ("started_at", UtcDateTime()),
    ("finished_at", UtcDateTime()),
)


@pytest.fixture
def v1_engine(store_target: StoreTarget) -> Iterator[sa.Engine]:
    """The target database migrated to 0001 only, as a daemon of the previous release left it."""
    engine = create_engine(parse_url(store_target.url, store_target.password))
    migrate(engine, "0001")
    try:
        yield engine
    finally:
        engine.dispose()


def _job(cluster: str, name: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cluster": cluster,
        "name": name,
        "flink_job_id": None,
        "state": "stable",
        "reconciled_hash": None,
        "stable_hash": None,
        "reconciled_spec": None,
        "stable_spec": None,
        "reconciled_commit": None,
        "generation": 0,
        "attempts": 0,
        "last_error": None,
        "updated_at": T0,
    }
    return row | kw


def _savepoint(cluster: str, name: str, path: str, minutes: int, *, disposed: bool = False) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "name": name,
        "path": path,
        "kind": "savepoint",
        "origin": "stop",
        "flink_job_id": "a" * 32,
        "created_at": T0 + timedelta(minutes=minutes),
        "disposed": disposed,
    }


def _write_v1(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(JOBS_V1),
            [
                _job(
                    "east",
                    "orders",
                    flink_job_id="f" * 32,
                    generation=5,
                    attempts=1,
                    last_error="x",
                    reconciled_spec=SPEC,
                    reconciled_hash="sha256:r",
                    reconciled_commit="c0ffee",
                    stable_spec=SPEC,
                    stable_hash="sha256:s",
                ),
                _job("west", "payments", state="suspended", generation=2, updated_at=T0 + timedelta(hours=1)),
            ],
        )
        conn.execute(
            sa.insert(SAVEPOINTS_V1),
            [
                _savepoint("east", "orders", "s3://sp/old", 1),
                _savepoint("east", "orders", "s3://sp/newest-but-disposed", 3, disposed=True),
                _savepoint("east", "orders", "s3://sp/current", 2),
                _savepoint("east", "gone", "s3://sp/of-a-deleted-job", 1),  # delete_job removed its row
            ],
        )
        ops = [
            ("op-open", "east", "orders", "started", None, None),
            ("op-done", "west", "payments", "succeeded", {"savepoint": "s3://p"}, T0 + timedelta(seconds=9)),
            ("op-global", None, None, "failed", None, T0 + timedelta(seconds=3)),
        ]
        conn.execute(
            sa.insert(OPERATIONS_V1),
            [
                {
                    "op_id": op_id,
                    "cluster": cluster,
                    "name": name,
                    "kind": "upgrade",
                    "state": state,
                    "intent": {"i": op_id},
                    "detail": detail,
                    "epoch": 3,
                    "started_at": T0,
                    "finished_at": finished,
                }
                for op_id, cluster, name, state, detail, finished in ops
            ],
        )
        conn.execute(sa.text("UPDATE lease SET epoch = 3 WHERE name = 'leader'"))


def test_rows_written_by_0001_carry_over(
    v1_engine: sa.Engine, store_target: StoreTarget, clock: FakeClock
) -> None:
    _write_v1(v1_engine)
    v1_engine.dispose()
    with store_target.open(clock) as store:
        assert store.schema_revision() == head_revision() == "0006"
        assert store.schema_differences() == []
        orders, payments = store.jobs.all()
        assert orders.name == "orders"
        assert payments.name == "payments"
        assert re.fullmatch(r"[0-9a-f]{32}", orders.uid)
        assert re.fullmatch(r"[0-9a-f]{32}", payments.uid)
        assert orders.uid != payments.uid
        assert (orders.cluster, orders.generation, orders.state, orders.flink_job_id) == (
            "east",
            5,
            JobLifecycle.STABLE,
            "f" * 32,
        )
        assert orders.last_reconciled == SpecRecord(SPEC, "sha256:r", "c0ffee", None)
        assert orders.last_stable == SpecRecord(SPEC, "sha256:s", None, None)
        assert (orders.attempts, orders.last_error) == (1, "x")
        assert orders.savepoint == "s3://sp/current"  # newest one not disposed
        assert (orders.created_at, orders.updated_at) == (T0, T0)
        assert (orders.failed_hash, orders.file) == (None, None)
        assert (payments.cluster, payments.state, payments.generation, payments.savepoint) == (
            "west",
            JobLifecycle.SUSPENDED,
            2,
            None,
        )

        history = store.snapshots.history("orders", include_disposed=True)
        assert [s.path for s in history] == ["s3://sp/newest-but-disposed", "s3://sp/current", "s3://sp/old"]
        assert {s.uid for s in history} == {orders.uid}
        (orphan,) = store.snapshots.history("gone")
        assert (orphan.uid, orphan.cluster, orphan.kind) == (None, "east", SnapshotKind.SAVEPOINT)

        (left_open,) = store.operations.open()
        assert (left_open.op_id, left_open.uid, left_open.step, left_open.detail) == (
            "op-open",
            orders.uid,
            "begin",
            {},
        )
        assert [(s.step, s.at, s.epoch) for s in left_open.steps] == [("begin", T0, 3)]
        done = store.operations.get("op-done")
        assert done is not None
        assert (done.uid, done.state, done.step, done.detail) == (
            payments.uid,
            OperationState.SUCCEEDED,
            "succeeded",
            {"savepoint": "s3://p"},
        )
        assert [(s.step, s.detail) for s in done.steps] == [
            ("begin", {}),
            ("succeeded", {"savepoint": "s3://p"}),
        ]
        assert done.updated_at == T0 + timedelta(seconds=9)
        glob = store.operations.get("op-global")
        assert glob is not None
        assert (glob.name, glob.uid, glob.step) == (None, None, "failed")

        # The carried-over store is fully usable: epochs and generations continue where they were.
        lease = store.leases.acquire("new-daemon", ttl=30)
        assert lease is not None
        assert lease.epoch == 4
        bumped = store.jobs.next_generation("orders", epoch=lease.epoch)
        assert bumped.generation == 6
        assert job_id_for(bumped.uid, bumped.generation) != orders.flink_job_id
        store.operations.advance("op-open", "stop-sent", {"trigger_id": "t"}, epoch=lease.epoch)
        store.snapshots.mark_disposed(history[1].id, epoch=lease.epoch)
        assert store.jobs.get("orders").savepoint is None  # type: ignore[union-attr]
        after = NewSavepoint("orders", "s3://sp/after", SnapshotKind.SAVEPOINT, SnapshotOrigin.MANUAL)
        new = store.snapshots.record(after, epoch=lease.epoch)
        assert new.id > max(s.id for s in history)  # the id sequence continues past carried-over rows


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_two_rows_of_one_name_are_refused_with_their_clusters_and_nothing_changes(
    v1_engine: sa.Engine, store_target: StoreTarget
) -> None:
    with v1_engine.begin() as conn:
        conn.execute(
            sa.insert(JOBS_V1),
            [_job("east", "orders"), _job("west", "orders"), _job("north", "orders"), _job("east", "ok")],
        )
    with pytest.raises(MigrationRefused) as info:
        store_target.open()
    message = str(info.value)
    assert "'orders' on clusters 'east', 'north', 'west'" in message
    assert "'ok'" not in message
    assert "Nothing was changed" in message
    assert _count(v1_engine, "jobs") == 4  # never deletes
    with v1_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
    with pytest.raises(MigrationRefused):
        store_target.open()  # still refused, still unchanged
    # The operator keeps one row; then the migration goes through.
    with v1_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM jobs WHERE name = 'orders' AND cluster <> 'east'"))
    with store_target.open() as store:
        assert [(j.name, j.cluster) for j in store.jobs.all()] == [("ok", "east"), ("orders", "east")]


def test_one_savepoint_path_of_one_name_on_two_clusters_is_refused(
    v1_engine: sa.Engine, store_target: StoreTarget
) -> None:
    with v1_engine.begin() as conn:
        conn.execute(
            sa.insert(SAVEPOINTS_V1),
            [_savepoint("east", "orders", "s3://sp/1", 1), _savepoint("west", "orders", "s3://sp/1", 2)],
        )
    with pytest.raises(MigrationRefused, match=r"'orders' path 's3://sp/1'"):
        store_target.open()
    assert _count(v1_engine, "savepoints") == 2


def test_a_fresh_store_is_at_head_and_cannot_be_downgraded(store: Store) -> None:
    from alembic import command

    from flink_gitops.record.store.engine import _alembic_config

    assert store.schema_revision() == head_revision() == "0006"
    cfg = _alembic_config()

    # the test drives Alembic on the store's own engine, in one transaction as migrate() does
    def downgrade() -> None:
        with store._engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")

    with pytest.raises(MigrationRefused, match="backup"):
        downgrade()
    assert store.schema_revision() == "0006"  # refused as a whole: nothing was dropped
