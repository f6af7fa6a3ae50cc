"""Jobs keep the whole-spec digest of their reconciled and stable specs beside the hash (issue 8).

The spec hash leaves out IGNORE-class fields (labels, upgradeMode...); the full digest does not.
With both as plain columns a steady-state cycle compares them without decoding any spec JSON
(10,000 jobs). Nullable: rows from before have none, and the reconciler then reads the spec.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reconciled_full_digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stable_full_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("stable_full_digest")
        batch.drop_column("reconciled_full_digest")
