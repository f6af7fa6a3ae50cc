"""Initial schema: audit trail, jobs, savepoints, operations log, cycles, lease.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ts = sa.DateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("recorded_at", _ts, nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("job_tag", sa.LargeBinary, nullable=True),
        sa.Column("action_tag", sa.LargeBinary, nullable=False),
        sa.Column("outcome_tag", sa.LargeBinary, nullable=True),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("prev_hash", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_audit_records_recorded_at", "audit_records", ["recorded_at"])
    op.create_index("ix_audit_records_job_tag", "audit_records", ["job_tag"])
    op.create_index("ix_audit_records_action_tag", "audit_records", ["action_tag"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": b"\0" * 32}])
    op.create_table(
        "audit_keys",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("cluster", sa.String(253), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("flink_job_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reconciled_spec", sa.JSON, nullable=True),
        sa.Column("reconciled_hash", sa.String(128), nullable=True),
        sa.Column("reconciled_commit", sa.String(64), nullable=True),
        sa.Column("stable_spec", sa.JSON, nullable=True),
        sa.Column("stable_hash", sa.String(128), nullable=True),
        sa.Column("stable_commit", sa.String(64), nullable=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _ts, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_table(
        "savepoints",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("flink_job_id", sa.String(64), nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("disposed", sa.Boolean, nullable=False),
        sa.Column("disposed_at", _ts, nullable=True),
        sa.UniqueConstraint("cluster", "name", "path", name="uq_savepoints_job_path"),
    )
    op.create_index("ix_savepoints_job", "savepoints", ["cluster", "name", "created_at"])
    op.create_table(
        "operations",
        sa.Column("op_id", sa.String(64), primary_key=True),
        sa.Column("cluster", sa.String(253), nullable=True),
        sa.Column("name", sa.String(253), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("intent", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON, nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("started_at", _ts, nullable=False),
        sa.Column("finished_at", _ts, nullable=True),
    )
    op.create_index("ix_operations_state", "operations", ["state", "started_at"])
    op.create_index("ix_operations_job", "operations", ["cluster", "name", "started_at"])
    op.create_table(
        "cycles",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("started_at", _ts, nullable=False),
        sa.Column("finished_at", _ts, nullable=False),
        sa.Column("revision", sa.String(64), nullable=True),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_cycles_started_at", "cycles", ["started_at"])
    lease = op.create_table(
        "lease",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(253), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", _ts, nullable=True),
        sa.Column("expires_at", _ts, nullable=True),
    )
    op.bulk_insert(lease, [{"name": "leader", "holder": None, "epoch": 0}])


def downgrade() -> None:
    for table in ("lease", "cycles", "operations", "savepoints", "jobs", "audit_keys", "audit_head"):
        op.drop_table(table)
    op.drop_table("audit_records")
