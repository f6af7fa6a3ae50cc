"""Crash points for the kill -9 tests: the process SIGKILLs itself at a named point of a procedure.

``FLINK_GITOPS_KILL_AT=<point>`` (read once) makes :func:`failpoint` kill the
process with SIGKILL when execution reaches ``<point>``, which is what a power
cut or the OOM killer does at that instant: nothing after it runs, no cleanup,
no ``finally``. The points are named after what has just happened:
``stop-sent``, ``stopped``, ``cancel-sent``, ``cancelled``, ``upload-sent`` (the jar is on
Flink, not yet recorded), ``uploaded`` (its jar id recorded: uploaded, or reused),
``run-sent``, ``before-finish``. Unset (always, outside those tests), a
failpoint is a dictionary lookup. Neighbours: ``execute.procedures`` (calls
it), tests/e2e (sets the variable on a ``flink-gitops sync --once`` subprocess).
"""

from __future__ import annotations

import functools
import os
import signal

ENV = "FLINK_GITOPS_KILL_AT"


@functools.cache
def _armed() -> str | None:
    return os.environ.get(ENV) or None


def failpoint(point: str) -> None:
    """Die here, at once, if the environment asks for ``point``."""
    if _armed() == point:
        os.kill(os.getpid(), signal.SIGKILL)
