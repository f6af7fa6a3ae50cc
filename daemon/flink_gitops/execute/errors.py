"""Errors of the executor; the type tells the reconciler whether the job may be tried again.

Neighbours: ``execute.procedures`` raises them; the reconciler turns a
temporary one into backoff (``next_attempt_at``) with the operation left open
to resume, and a permanent one into a FAILED / ROLLED_BACK status.
"""

from __future__ import annotations

from flink_gitops.errors import PermanentError, TemporaryError


class StopFailed(TemporaryError):
    """The stop (with savepoint) or cancel did not complete: the old job is still running, untouched."""


class LeaseLost(TemporaryError):
    """This instance no longer leads the cluster: stop driving Flink; the new leader resumes the operation."""


class Unsettled(TemporaryError):
    """A request may or may not have been applied (its answer was lost): the operation stays open and
    the next attempt asks Flink about its recorded ids before doing anything again."""


class Busy(TemporaryError):
    """Another operation of the job is open (in flight, or parked for a resume): nothing was done;
    ask again once it has finished."""


class RestoreRefused(PermanentError):
    """There is no state to restore from that the rules allow (no retained checkpoint, or too old)."""


class DeployFailed(PermanentError):
    """The new job could not be started or did not become stable; rolled back where a stable spec exists.

    ``started``: Flink accepted the job and it failed afterwards (a runtime failure, recovered within
    the restart budget); False: Flink refused to run it (not retried until the spec changes).
    """

    def __init__(self, message: str, *, started: bool = False) -> None:
        super().__init__(message)
        self.started = started


class PeriodicSavepointFailed(TemporaryError):
    """Flink could not take a periodic savepoint (the job restarting, a checkpoint failing): the job
    runs on untouched and the savepoint is tried again after backoff; its spec is never marked failed."""
