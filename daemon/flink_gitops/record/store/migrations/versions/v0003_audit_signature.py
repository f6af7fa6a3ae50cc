"""Audit records carry an Ed25519 signature of their hash (issue 7).

Nullable: rows written before it have none, and the verifier reports them. Never downgraded.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flink_gitops.record.store.errors import MigrationRefused

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("signature", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    raise MigrationRefused(
        "schema 0003 cannot be downgraded: it would drop the audit records' signatures (evidence); "
        "restore the backup taken before the upgrade instead"
    )
