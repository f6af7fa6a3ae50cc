"""Pauses (issue 10): ``flink-gitops pause [JOB]`` held in the store, so every replica sees it.

A new table ``pauses``: one row per paused scope, the job's name or ``*`` for every job (a
global pause), with the reason, who paused it and when. No row: not paused. Nothing else
changes; rows from before mean "nothing paused".

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pauses",
        sa.Column("scope", sa.String(253), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("paused_by", sa.String(253), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_pauses"),
    )


def downgrade() -> None:
    op.drop_table("pauses")
