"""What a revision changes compared with another, per job (the Git-only half of ``plan``).

A pure function over two :class:`~flink_gitops.specs.loader.DesiredState`: for
each job name, added / removed / changed / unchanged / invalid / fixed, the
change class and the changed fields (``specs.changes``). A job that disappears
while the file it was in is invalid is reported as invalid and kept, never as
removed (see ``DesiredState.may_prune``). The live-cluster plan (``plan``
package) comes on top of this. Neighbours: ``cli.plan`` (renders it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flink_gitops.specs.changes import ChangeSet, classify
from flink_gitops.specs.errors import Problem
from flink_gitops.specs.loader import DesiredJob, DesiredState, InvalidJob
from flink_gitops.specs.model import Change

JobStatus = Literal["added", "removed", "changed", "unchanged", "invalid", "fixed"]


@dataclass(frozen=True, slots=True)
class JobDiff:
    name: str
    status: JobStatus
    #: the highest change class (None: no change, or not comparable).
    change: Change | None
    changes: ChangeSet | None
    #: the head file, or the base file for a removed job.
    file: str | None
    problems: tuple[Problem, ...] = ()
    note: str = ""


def diff_states(base: DesiredState, head: DesiredState) -> list[JobDiff]:
    """One entry per job name found in either revision, sorted by name."""
    out: list[JobDiff] = []
    for name in sorted(base.jobs.keys() | head.jobs.keys()):
        old, new = base.jobs.get(name), head.jobs.get(name)
        if isinstance(new, InvalidJob):
            out.append(JobDiff(name, "invalid", None, None, new.file, new.problems, "invalid, left as is"))
        elif isinstance(new, DesiredJob):
            if old is None:
                out.append(JobDiff(name, "added", None, None, new.file, new.warnings))
            elif isinstance(old, InvalidJob):
                note = "was invalid in the base revision; the whole spec applies"
                out.append(JobDiff(name, "fixed", None, None, new.file, new.warnings, note))
            else:
                cs = classify(old.spec, old.jar_digest, new.spec, new.jar_digest)
                status: JobStatus = "changed" if cs.changed else "unchanged"
                out.append(JobDiff(name, status, cs.change, cs, new.file, new.warnings))
        else:
            assert old is not None
            if head.may_prune(name, old.file):
                note = "stopped with a final savepoint only if pruning is enabled"
                out.append(JobDiff(name, "removed", None, None, old.file, (), note))
            else:
                note = f"missing, but {old.file} has errors in this revision: left as is"
                out.append(JobDiff(name, "invalid", None, None, old.file, head.errors_of(old.file), note))
    return out
