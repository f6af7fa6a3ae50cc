"""Job health and hygiene (issue 9): live drift, restarts, fingerprint, savepoint age, batch runs, jars.

Columns on ``jobs``, all nullable (rows from before have none and mean "nothing known yet"):
``drift_kind`` / ``drift_since`` / ``drift_detail`` (the live drift seen now, and since when),
``restarts`` (JSON list of ISO times of recoveries inside the restart window), ``fingerprint``
(JSON: what was deployed, compared with what runs), ``savepoint_at`` (when the current savepoint
was taken: periodic savepoints), ``last_run_at`` (a scheduled batch job's last started run).
A new table ``artifacts``: the jars this daemon uploaded, one row per (cluster, content digest),
so a jar is uploaded once and reused, and only jars we uploaded are ever deleted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ts = sa.DateTime(timezone=True)
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("drift_kind", sa.String(32)),
    ("drift_since", _ts),
    ("drift_detail", sa.Text()),
    ("restarts", sa.JSON()),
    ("fingerprint", sa.JSON()),
    ("savepoint_at", _ts),
    ("last_run_at", _ts),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_table(
        "artifacts",
        sa.Column("cluster", sa.String(253), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("jar_id", sa.Text, nullable=False),
        sa.Column("uploaded_at", _ts, nullable=False),
        sa.Column("last_used_at", _ts, nullable=False),
        sa.PrimaryKeyConstraint("cluster", "digest", name="pk_artifacts"),
    )


def downgrade() -> None:
    op.drop_table("artifacts")
    with op.batch_alter_table("jobs") as batch:
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
