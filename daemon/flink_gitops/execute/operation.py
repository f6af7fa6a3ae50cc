"""One operation in flight: the ids it chose up front and the steps it has recorded.

Every id a side effect will use is chosen when the operation begins and is in
the intent before anything is sent: the stop's or savepoint's ``trigger_id``,
the next Flink job id and the rollback job id (both derived from the job's uid
and reserved generations). What Flink tells us later (the savepoint location,
the jar id) is recorded as soon as it is known. A resumed operation is the same
object rebuilt from the journal, and every step checks these ids before it acts.
Neighbours: ``execute.ports`` (the journal), ``execute.procedures`` (the steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flink_gitops.execute.ports import Journal
from flink_gitops.plan.model import ActionKind


@dataclass
class Operation:
    """An operation's identity, its ids (chosen and learned) and its recorded steps, oldest first."""

    op_id: str
    kind: ActionKind
    job: str
    ids: dict[str, Any]
    steps: list[str] = field(default_factory=list)
    #: on_step(job, step) after each recorded step; set by the procedures.
    on_step: Callable[[str, str], None] | None = field(default=None, compare=False, repr=False)

    def has(self, step: str) -> bool:
        return step in self.steps

    def record(self, journal: Journal, step: str, **ids: Any) -> None:
        """Write the step (and ids) to the journal first, then remember it here."""
        journal.advance(self.op_id, step, ids)
        self.ids.update(ids)
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(self.job, step)

    def str_id(self, key: str) -> str:
        value = self.ids.get(key)
        if not isinstance(value, str):
            raise KeyError(f"operation {self.op_id} has no {key!r}")
        return value
