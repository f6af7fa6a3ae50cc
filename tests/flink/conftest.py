"""Shared fixtures for the Flink client tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger


@pytest.fixture
def flink_logs_enabled() -> Iterator[None]:
    """The flink package's log lines switched on (as the CLI does), and off again afterwards."""
    logger.enable("flink_gitops.flink")
    try:
        yield
    finally:
        logger.disable("flink_gitops.flink")
