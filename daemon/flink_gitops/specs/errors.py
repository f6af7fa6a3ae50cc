"""What can be wrong with a spec: :class:`Problem` (data, reported with file:line:col) and
:class:`SpecError` (raised only when loading cannot even start).

Problems are values, not exceptions: one load collects every problem of every
file so ``validate`` can report them all at once. Messages stay short whatever the
input: values are quoted with :func:`quote` (a prefix, control characters escaped),
and a message is cut at :data:`MAX_MESSAGE` characters as a last guard. Neighbours: ``specs.yamlsafe``
and ``specs.loader`` (produce problems), ``cli.validate`` (prints them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from flink_gitops.errors import PermanentError

Severity = Literal["error", "warning"]

#: most characters of a Problem message (longer ones are cut, with a marker).
MAX_MESSAGE = 500
#: most characters of an input value quoted in a message.
QUOTE_CHARS = 40


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``value`` for a message: repr-quoted (control characters escaped), at most ``limit`` characters
    of it, then ``… (N characters)`` when it is longer."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}… ({len(text)} characters)"


def shown(value: object, limit: int = QUOTE_CHARS) -> str:
    """A short, printable text value as it is (no quotes); anything else as :func:`quote` gives it."""
    if isinstance(value, str) and len(value) <= limit and value.isprintable() and value.strip():
        return value
    return quote(value, limit)


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

    def __post_init__(self) -> None:
        if len(self.message) > MAX_MESSAGE:
            cut = f"{self.message[:MAX_MESSAGE]}… (message cut at {MAX_MESSAGE} characters)"
            object.__setattr__(self, "message", cut)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def where(self) -> str:
        """``file:line:col`` (the parts that are known); a file name with control characters escaped."""
        out = self.file if self.file.isprintable() else repr(self.file)[1:-1]
        if self.line is not None:
            out += f":{self.line}"
            if self.col is not None:
                out += f":{self.col}"
        return out

    def __str__(self) -> str:
        return f"{self.where()}: {self.severity}: {self.message}"


class SpecError(PermanentError):
    """Loading cannot start at all (e.g. the spec directory leaves the repository)."""


def redact_url(url: str) -> str:
    """A URL fit for logs and messages: no ``user:password@``, the query and fragment shown as ``…``
    (a presigned URL carries its token there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    netloc = f"{host}:{port}" if port else host
    if parts.username is not None or parts.password is not None:
        netloc = "***@" + netloc
    query, fragment = ("…" if parts.query else ""), ("…" if parts.fragment else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
