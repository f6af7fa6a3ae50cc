"""The schema as SQLAlchemy Core tables, for queries (migrations/ creates it).

Keep in step with the newest migration in ``migrations/versions``; a test
compares the two. Times go through :class:`UtcDateTime`: TIMESTAMP WITH TIME
ZONE on PostgreSQL, and on SQLite a fixed-width UTC text
(``YYYY-MM-DD HH:MM:SS.ffffff``) that sorts as it compares. Neighbours:
the aggregate modules (queries), :mod:`.engine` (migrates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Accepts only tz-aware datetimes; always returns tz-aware UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use a tz-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json: sa.types.TypeEngine[Any] = sa.JSON()

metadata = sa.MetaData()

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Column("key_version", sa.Integer, nullable=False),
    sa.Column("job_tag", sa.LargeBinary, nullable=True),
    sa.Column("action_tag", sa.LargeBinary, nullable=False),
    sa.Column("outcome_tag", sa.LargeBinary, nullable=True),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Column("prev_hash", sa.LargeBinary, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=True),
)

# Exactly one row (id = 1): the last seq and hash, locked by every appender.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
)

audit_keys = sa.Table(
    "audit_keys",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
    sa.Column("params", Json, nullable=False),
)

# One row per job name (global), whatever cluster it is on; a removed job's row is a tombstone.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("uid", sa.String(32), nullable=False),
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("flink_job_id", sa.String(64), nullable=True),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reconciled_spec", Json, nullable=True),
    sa.Column("reconciled_hash", sa.String(128), nullable=True),
    sa.Column("reconciled_commit", sa.String(64), nullable=True),
    sa.Column("reconciled_jar_digest", sa.String(128), nullable=True),
    sa.Column("reconciled_full_digest", sa.String(64), nullable=True),
    sa.Column("stable_spec", Json, nullable=True),
    sa.Column("stable_hash", sa.String(128), nullable=True),
    sa.Column("stable_commit", sa.String(64), nullable=True),
    sa.Column("stable_jar_digest", sa.String(128), nullable=True),
    sa.Column("stable_full_digest", sa.String(64), nullable=True),
    sa.Column("failed_hash", sa.String(128), nullable=True),
    sa.Column("savepoint", sa.Text, nullable=True),
    sa.Column("file", sa.Text, nullable=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # issue 9 (0005): live drift, recoveries in the restart window, what was deployed, batch runs
    sa.Column("drift_kind", sa.String(32), nullable=True),
    sa.Column("drift_since", UtcDateTime, nullable=True),
    sa.Column("drift_detail", sa.Text, nullable=True),
    sa.Column("restarts", Json, nullable=True),
    sa.Column("fingerprint", Json, nullable=True),
    sa.Column("savepoint_at", UtcDateTime, nullable=True),
    sa.Column("last_run_at", UtcDateTime, nullable=True),
    sa.PrimaryKeyConstraint("name", name="pk_jobs"),
)

# The jars this daemon uploaded: one per (cluster, content digest), reused; only these are deleted.
artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("digest", sa.String(128), nullable=False),
    sa.Column("jar_id", sa.Text, nullable=False),
    sa.Column("uploaded_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("cluster", "digest", name="pk_artifacts"),
)

# One row per paused scope (a job's name, or "*": every job); no row: not paused (0006).
pauses = sa.Table(
    "pauses",
    metadata,
    sa.Column("scope", sa.String(253), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("paused_by", sa.String(253), nullable=False),
    sa.Column("paused_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("scope", name="pk_pauses"),
)

savepoints = sa.Table(
    "savepoints",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("cluster", sa.String(253), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("uid", sa.String(32), nullable=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("flink_job_id", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("disposed", sa.Boolean, nullable=False),
    sa.Column("disposed_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("name", "path", name="uq_savepoints_name_path"),
)

operations = sa.Table(
    "operations",
    metadata,
    sa.Column("op_id", sa.String(64), primary_key=True),
    sa.Column("cluster", sa.String(253), nullable=True),
    sa.Column("name", sa.String(253), nullable=True),
    sa.Column("uid", sa.String(32), nullable=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("intent", Json, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("detail", Json, nullable=True),
    sa.Column("steps", Json, nullable=False),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=True),
)

cycles = sa.Table(
    "cycles",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime, nullable=False),
    sa.Column("revision", sa.String(64), nullable=True),
    sa.Column("counts", Json, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
)

# One row per named lease ('leader' always exists; others appear on first acquisition);
# holder NULL while nobody holds it.
lease = sa.Table(
    "lease",
    metadata,
    sa.Column("name", sa.String(253), primary_key=True),
    sa.Column("holder", sa.String(253), nullable=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=True),
)

sa.Index("ix_audit_records_recorded_at", audit_records.c.recorded_at)
sa.Index("ix_audit_records_job_tag", audit_records.c.job_tag)
sa.Index("ix_audit_records_action_tag", audit_records.c.action_tag)
sa.Index("ix_jobs_cluster", jobs.c.cluster)
sa.Index("ix_savepoints_name", savepoints.c.name, savepoints.c.created_at)
sa.Index("ix_operations_state", operations.c.state, operations.c.started_at)
sa.Index("ix_operations_name", operations.c.name, operations.c.started_at)
sa.Index("ix_cycles_started_at", cycles.c.started_at)
