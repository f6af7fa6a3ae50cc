"""What can be wrong with a spec: :class:`Problem` (data, reported with file:line:col) and
:class:`SpecError` (raised only when loading cannot even start).

Problems are values, not exceptions: one load collects every problem of every
file so ``validate`` can report them all at once. Neighbours: ``specs.yamlsafe``
and ``specs.loader`` (produce problems), ``cli.validate`` (prints them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flink_gitops.errors import PermanentError

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding in one file. ``line`` and ``col`` are 1-based; None when unknown."""

    file: str
    line: int | None
    col: int | None
    message: str
    severity: Severity = "error"
    #: the job name it concerns, when known.
    job: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def where(self) -> str:
        """``file:line:col`` (the parts that are known)."""
        out = self.file
        if self.line is not None:
            out += f":{self.line}"
            if self.col is not None:
                out += f":{self.col}"
        return out

    def __str__(self) -> str:
        return f"{self.where()}: {self.severity}: {self.message}"


class SpecError(PermanentError):
    """Loading cannot start at all (e.g. the spec directory leaves the repository)."""
