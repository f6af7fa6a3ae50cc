"""Crash points for the kill -9 tests: the process SIGKILLs itself at a named point of a procedure.

``FLINK_GITOPS_KILL_AT=<point>`` (read once) makes :func:`failpoint` kill the
process with SIGKILL when execution reaches ``<point>``, which is what a power
cut or the OOM killer does at that instant: nothing after it runs, no cleanup,
no ``finally``. The points are named after what has just happened:
``stop-sent``, ``stopped``, ``cancel-sent``, ``cancelled``, ``upload-sent`` (the jar is on
Flink, not yet recorded), ``uploaded`` (its jar id recorded: uploaded, or reused),
``run-sent``, ``before-finish``. ``FLINK_GITOPS_HANG_AT=<point>`` instead blocks
there forever, as a call that never returns does (the watchdog tests), and
``FLINK_GITOPS_STALL_AT=<point>`` waits there, asking the procedure's cancel hook,
as a long savepoint or start does, until the hook says stop (the SIGTERM tests).
Unset (always, outside those tests), a failpoint is a dictionary lookup.
Neighbours: ``execute.procedures`` (calls it), tests/e2e (sets the variable on
a ``flink-gitops sync --once`` or ``run`` subprocess).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable

ENV = "FLINK_GITOPS_KILL_AT"
HANG_ENV = "FLINK_GITOPS_HANG_AT"
STALL_ENV = "FLINK_GITOPS_STALL_AT"


@functools.cache
def _armed() -> tuple[str | None, str | None, str | None]:
    env = os.environ
    return env.get(ENV) or None, env.get(HANG_ENV) or None, env.get(STALL_ENV) or None


def failpoint(point: str, cancelled: Callable[[], bool] | None = None) -> None:
    """Die here, at once, if the environment asks for ``point`` (or hang, or stall, here)."""
    kill, hang, stall = _armed()
    if kill == point:
        os.kill(os.getpid(), signal.SIGKILL)
    if hang == point:
        threading.Event().wait()
    if stall == point and cancelled is not None:
        while not cancelled():
            time.sleep(0.05)
