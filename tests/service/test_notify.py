"""sd_notify over a real AF_UNIX datagram socket (a path and the abstract namespace)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.service.notify import Notifier


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def test_messages_reach_the_socket(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
    assert n.enabled
    assert n.watchdog_s == 4.0
    n.ready("reconciling 3 jobs")
    assert sock.recv(4096) == b"READY=1\nSTATUS=reconciling 3 jobs"
    n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.stopping("bye")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=bye"


def test_the_abstract_namespace_is_used_for_an_at_address() -> None:
    name = f"flink-gitops-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        Notifier(f"@{name}").watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_a_socket_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    assert not Notifier.from_env({}).enabled
    assert Notifier.from_env({}).send("READY=1") is False
    # a socket that is gone: logged, never raised
    assert Notifier(str(tmp_path / "gone")).send("READY=1") is False


def test_a_watchdog_meant_for_another_process_or_garbage_is_ignored(
    receiver: tuple[socket.socket, str],
) -> None:
    _sock, path = receiver
    assert (
        Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_s
        is None
    )
    assert Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "soon"}).watchdog_s is None
    mine = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(mine).watchdog_s == 2.0
