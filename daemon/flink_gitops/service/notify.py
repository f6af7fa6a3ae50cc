"""systemd's notify protocol (sd_notify(3)): READY, STOPPING, STATUS and WATCHDOG datagrams.

With ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the
abstract namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``): the service sends ``READY=1`` once it works, ``WATCHDOG=1``
at least every half of that interval while its loop is alive, and ``STOPPING=1``
when it begins to stop. The protocol is one datagram per message, so it is
written here (a dozen lines) rather than taken from an unmaintained package or
from systemd-python (which needs libsystemd headers to build). Without
``$NOTIFY_SOCKET`` every call does nothing. Never raises: a lost notification
must not stop the daemon (systemd then restarts it, which is the point).
Neighbours: ``service.loop`` (when to send what).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from loguru import logger


class Notifier:
    """Sends notifications to ``address`` (None: disabled)."""

    def __init__(self, address: str | None, watchdog_usec: str | None = None) -> None:
        self.address = address or None
        self.watchdog_s: float | None = None
        if watchdog_usec:
            try:
                usec = int(watchdog_usec)
            except ValueError:
                logger.warning("WATCHDOG_USEC is not a number of microseconds: watchdog pings off")
            else:
                self.watchdog_s = usec / 1_000_000 if usec > 0 else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        pid = env.get("WATCHDOG_PID")
        usec = env.get("WATCHDOG_USEC") if pid in (None, "", str(os.getpid())) else None
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """One datagram of ``KEY=value`` lines; False when it could not be sent (logged)."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode(), target)
        except OSError as exc:
            logger.warning("sd_notify to {} failed: {}", self.address, exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")
