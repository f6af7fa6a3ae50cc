"""Where a job is in its life: shared by the planner (reads it), the executor (moves it) and the store.

The states are the Flink Kubernetes operator's ResourceLifecycleState plus
UNKNOWN (its cluster could not be observed, so nothing is known or done). It
lives at the top of the package, beside ``errors`` and ``clock``, because every
stage speaks it and none of them owns it.
"""

from __future__ import annotations

import enum


class JobLifecycle(enum.StrEnum):
    """One job's lifecycle state (the operator's names, lowercase, plus ``unknown``)."""

    CREATED = "created"
    DEPLOYED = "deployed"
    STABLE = "stable"
    UPGRADING = "upgrading"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    SUSPENDED = "suspended"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"
    UNKNOWN = "unknown"

    @property
    def runs_a_job(self) -> bool:
        """Whether a Flink job is expected to run for this job in this state."""
        return self in {JobLifecycle.DEPLOYED, JobLifecycle.STABLE, JobLifecycle.ROLLED_BACK}
