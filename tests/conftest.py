"""Shared fixtures. Area fixtures live in tests/fixtures/ and are loaded as plugins here.

Real parts, not mocks: a real Flink session cluster (tests/fixtures/flink.py),
a real PostgreSQL server (tests/fixtures/postgres.py), real Git repositories
and a loopback git daemon (tests/fixtures/gitserver.py).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from flink_gitops.clock import FakeClock

# Shared 2-core machines: no per-example deadlines (timing is for bench/, not tests).
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("default")

pytest_plugins = [
    "tests.fixtures.secretscan",  # first: the other fixture modules import it
    "tests.fixtures.flink",
    "tests.fixtures.postgres",
    "tests.fixtures.gitserver",
    "tests.fixtures.jarserver",
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
