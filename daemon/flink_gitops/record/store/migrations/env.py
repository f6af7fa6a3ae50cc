"""Alembic environment: runs on the connection the store hands over (no alembic.ini, no logging config).

:func:`flink_gitops.record.store.engine.migrate` opens the transaction (and,
on PostgreSQL, takes the migration lock) and puts the connection into
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
