"""`flink-gitops run` refuses an API it cannot serve as configured — a bad tokens file, an
unreadable webhook secret, a port in use — at start, exit 2, the file and line or the port named,
no traceback and no secret echoed (the real CLI as a subprocess, ``--repo`` on an empty directory)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

CLI = [sys.executable, "-m", "flink_gitops"]


@pytest.fixture
def world(tmp_path: Path) -> Path:
    subprocess.run(
        [*CLI, "keys", "generate", "--out", str(tmp_path / "key")], check=True, capture_output=True
    )
    (tmp_path / "repo").mkdir()
    return tmp_path


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def run(world: Path, http: dict[str, object]) -> subprocess.CompletedProcess[str]:
    config = world / "config.yaml"
    body = {"state_dir": str(world / "state"), "audit": {"key_file": str(world / "key")}, "http": http}
    config.write_text(yaml.safe_dump(body), encoding="utf-8")
    return subprocess.run(
        [*CLI, "--config", str(config), "run", "--repo", str(world / "repo")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_tokens_line_is_named_and_not_echoed(world: Path) -> None:
    tokens = world / "tokens"
    tokens.write_text("viewer:" + "a" * 64 + "\noperator:hunter2-plain-token\n", encoding="utf-8")
    proc = run(world, {"port": 0, "tokens": {"file": str(tokens)}})
    assert proc.returncode == 2, proc.stderr
    assert f"file {tokens}, line 2" in proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_missing_webhook_secret_is_an_error_at_start(world: Path) -> None:
    proc = run(world, {"port": 0, "webhook_secret": {"file": str(world / "nope")}})
    assert proc.returncode == 2, proc.stderr
    assert "cannot read secret from file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_port_in_use_is_an_error_at_start(world: Path, busy_port: int) -> None:
    proc = run(world, {"port": busy_port})
    assert proc.returncode == 2, proc.stderr
    assert f"http.port: cannot listen on 127.0.0.1:{busy_port}" in proc.stderr
    assert "Traceback" not in proc.stderr
