"""Shared fixtures. Area fixtures live in tests/fixtures/ and are loaded as plugins here.

Real parts, not mocks: a real Flink session cluster (tests/fixtures/flink.py),
a real PostgreSQL server (tests/fixtures/postgres.py), real Git repositories
and a loopback git daemon (tests/fixtures/gitserver.py).
"""

from __future__ import annotations

import pytest

from flink_gitops.clock import FakeClock

pytest_plugins: list[str] = []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
