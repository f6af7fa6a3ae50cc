"""Git source tests: run every git the daemon starts without the developer's git, ssh or gpg setup."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from flink_gitops.clock import FakeClock
from flink_gitops.settings import GitConfig
from flink_gitops.source.git import GitSource


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "daemon-home"
    home.mkdir()
    for key in list(os.environ):
        if key.startswith(("GIT_", "GNUPG", "SSH_A")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


SourceFactory = Callable[..., GitSource]


@pytest.fixture
def make_source(tmp_path: Path, clock: FakeClock) -> Iterator[SourceFactory]:
    """Build a GitSource on a cache in tmp_path (``cache`` by default); closed at teardown."""
    made: list[GitSource] = []

    def make(url: str, *, cache: str = "cache", **config: Any) -> GitSource:
        source = GitSource(GitConfig(url=url, **config), tmp_path / cache, clock=clock)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    """Every loguru message (formatted with extras and exception) while the test runs."""
    lines: list[str] = []
    sink_id = logger.add(
        lambda msg: lines.append(str(msg)), level="DEBUG", format="{level} {message} {extra}"
    )
    yield lines
    logger.remove(sink_id)
