"""Job identity and recorded steps: jobs keyed by name with a uid per life, operation steps, named leases.

- jobs: primary key ``name`` (was (cluster, name)); ``cluster`` is a column. New
  columns ``uid`` (generated for every carried-over row), ``failed_hash``,
  ``savepoint`` (filled with the job's newest non-disposed savepoint/checkpoint
  on its cluster), ``file``, ``created_at`` (= its ``updated_at``), and the jar
  digests of the reconciled and stable specs. ``generation`` is kept.
- savepoints: ``uid`` (the job's, where its row exists); unique by (name, path).
- operations: ``uid``, ``step`` ("begin" while open, else the outcome),
  ``steps`` (the step history), ``updated_at``.
- lease: ``name`` widened to 253 characters (one lease per cluster).

New uids come from the database (SQLite ``randomblob``, PostgreSQL 13+
``gen_random_uuid``). Refuses, changing nothing, when two job rows share a name on different clusters
or one savepoint path was recorded for one name on two clusters: the error names
them, and an operator decides which row is right. It never deletes a row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from flink_gitops.record.store.errors import MigrationRefused

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ts = sa.DateTime(timezone=True)

#: the 0001 jobs table's columns, all carried over.
_OLD_JOB_COLUMNS = (
    "cluster",
    "name",
    "flink_job_id",
    "state",
    "reconciled_spec",
    "reconciled_hash",
    "reconciled_commit",
    "stable_spec",
    "stable_hash",
    "stable_commit",
    "generation",
    "attempts",
    "next_attempt_at",
    "last_error",
    "updated_at",
)
_old_jobs = sa.table("jobs", *(sa.column(c) for c in _OLD_JOB_COLUMNS))
_savepoints = sa.table(
    "savepoints",
    sa.column("id"),
    sa.column("cluster"),
    sa.column("name"),
    sa.column("uid"),
    sa.column("path"),
    sa.column("disposed", sa.Boolean),
    sa.column("created_at"),
)
_operations = sa.table(
    "operations",
    sa.column("op_id"),
    sa.column("name"),
    sa.column("uid"),
    sa.column("state"),
    sa.column("detail", sa.JSON),
    sa.column("step"),
    sa.column("steps", sa.JSON),
    sa.column("epoch"),
    sa.column("started_at", _ts),
    sa.column("updated_at", _ts),
    sa.column("finished_at", _ts),
)


def _refuse_ambiguous(conn: sa.Connection) -> None:
    names = conn.execute(
        sa.select(_old_jobs.c.name)
        .group_by(_old_jobs.c.name)
        .having(sa.func.count() > 1)
        .order_by(_old_jobs.c.name)
    ).scalars()
    clashes = []
    for name in names:
        clusters = conn.execute(
            sa.select(_old_jobs.c.cluster).where(_old_jobs.c.name == name).order_by(_old_jobs.c.cluster)
        ).scalars()
        clashes.append(f"{name!r} on clusters {', '.join(repr(c) for c in clusters)}")
    if clashes:
        raise MigrationRefused(
            "cannot migrate the state store to schema 0002: a job is now its name, but "
            + "; ".join(clashes)
            + ". Nothing was changed. Keep one row per name (after checking which cluster runs the job, "
            "delete the stale rows from the jobs table by hand) and start again."
        )
    paths = conn.execute(
        sa.select(_savepoints.c.name, _savepoints.c.path)
        .group_by(_savepoints.c.name, _savepoints.c.path)
        .having(sa.func.count() > 1)
        .order_by(_savepoints.c.name, _savepoints.c.path)
    ).all()
    if paths:
        listed = "; ".join(f"{name!r} path {path!r}" for name, path in paths)
        raise MigrationRefused(
            "cannot migrate the state store to schema 0002: one savepoint path is recorded for one job "
            f"on several clusters: {listed}. Nothing was changed. Keep one row per (name, path) in the "
            "savepoints table by hand and start again."
        )


def _new_uid(dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "sqlite":
        return sa.func.lower(sa.func.hex(sa.func.randomblob(16)))
    return sa.func.replace(sa.cast(sa.func.gen_random_uuid(), sa.Text), "-", "")


def _migrate_jobs(conn: sa.Connection) -> None:
    new = op.create_table(
        "jobs_0002",
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("flink_job_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reconciled_spec", sa.JSON, nullable=True),
        sa.Column("reconciled_hash", sa.String(128), nullable=True),
        sa.Column("reconciled_commit", sa.String(64), nullable=True),
        sa.Column("reconciled_jar_digest", sa.String(128), nullable=True),
        sa.Column("stable_spec", sa.JSON, nullable=True),
        sa.Column("stable_hash", sa.String(128), nullable=True),
        sa.Column("stable_commit", sa.String(64), nullable=True),
        sa.Column("stable_jar_digest", sa.String(128), nullable=True),
        sa.Column("failed_hash", sa.String(128), nullable=True),
        sa.Column("savepoint", sa.Text, nullable=True),
        sa.Column("file", sa.Text, nullable=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _ts, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_jobs"),
    )
    assert new is not None
    o, s = _old_jobs.c, _savepoints.c
    newest = (
        sa.select(s.path)
        .where(s.cluster == o.cluster, s.name == o.name, s.disposed == sa.false())
        .order_by(s.created_at.desc(), s.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    kept = _OLD_JOB_COLUMNS
    query = sa.select(
        *(o[c] for c in kept), _new_uid(conn.dialect.name), newest, o.updated_at.label("created_at")
    )
    conn.execute(sa.insert(new).from_select([*kept, "uid", "savepoint", "created_at"], query))
    op.drop_table("jobs")
    op.rename_table("jobs_0002", "jobs")
    op.create_index("ix_jobs_cluster", "jobs", ["cluster"])


def _uid_of_name(table: sa.TableClause) -> sa.ScalarSelect[Any]:
    jobs = sa.table("jobs", sa.column("name"), sa.column("uid"))
    return sa.select(jobs.c.uid).where(jobs.c.name == table.c.name).scalar_subquery()


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _migrate_operations(conn: sa.Connection) -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("uid", sa.String(32), nullable=True))
        batch.add_column(sa.Column("step", sa.String(64), nullable=True))
        batch.add_column(sa.Column("steps", sa.JSON, nullable=True))
        batch.add_column(sa.Column("updated_at", _ts, nullable=True))
    o = _operations.c
    conn.execute(sa.update(_operations).values(uid=_uid_of_name(_operations)))
    rows = conn.execute(sa.select(o.op_id, o.state, o.detail, o.epoch, o.started_at, o.finished_at)).all()
    for r in rows:
        # v0001 had no steps: the history is the begin and, if finished, the outcome.
        steps: list[dict[str, Any]] = [
            {"step": "begin", "detail": {}, "at": _iso(r.started_at), "epoch": int(r.epoch)}
        ]
        if r.state != "started":
            outcome = json.loads(r.detail) if isinstance(r.detail, str) else (r.detail or {})
            at = _iso(r.finished_at or r.started_at)
            steps.append({"step": r.state, "detail": outcome, "at": at, "epoch": int(r.epoch)})
        conn.execute(
            sa.update(_operations)
            .where(o.op_id == r.op_id)
            .values(
                step="begin" if r.state == "started" else r.state,
                steps=steps,
                updated_at=r.finished_at or r.started_at,
            )
        )
    with op.batch_alter_table("operations") as batch:
        batch.alter_column("step", existing_type=sa.String(64), nullable=False)
        batch.alter_column("steps", existing_type=sa.JSON, nullable=False)
        batch.alter_column("updated_at", existing_type=_ts, nullable=False)
        batch.drop_index("ix_operations_job")
        batch.create_index("ix_operations_name", ["name", "started_at"])


def upgrade() -> None:
    conn = op.get_bind()
    _refuse_ambiguous(conn)
    with op.batch_alter_table("savepoints") as batch:
        batch.add_column(sa.Column("uid", sa.String(32), nullable=True))
        batch.drop_constraint("uq_savepoints_job_path", type_="unique")
        batch.drop_index("ix_savepoints_job")
        batch.create_unique_constraint("uq_savepoints_name_path", ["name", "path"])
        batch.create_index("ix_savepoints_name", ["name", "created_at"])
    _migrate_jobs(conn)
    conn.execute(sa.update(_savepoints).values(uid=_uid_of_name(_savepoints)))
    _migrate_operations(conn)
    with op.batch_alter_table("lease") as batch:
        batch.alter_column("name", existing_type=sa.String(32), type_=sa.String(253))


def downgrade() -> None:
    raise MigrationRefused(
        "schema 0002 cannot be downgraded: jobs are keyed by name and tombstones would be lost; "
        "restore the backup taken before the upgrade instead"
    )
