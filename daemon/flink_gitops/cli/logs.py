"""Where the CLI's log lines go: plain text on a terminal, one JSON object per line under journald.

``--log-format auto`` (the default) picks JSON when stderr is the stream systemd
set up for the service (``JOURNAL_STREAM=<dev>:<inode>`` matching ``fstat`` of
stderr, the test systemd itself documents), text otherwise. Both show the
job, cluster and commit the line is about when the code logging it runs under
``logger.contextualize`` (``execute.cycle`` binds them around a cycle, an
action and an observation). A JSON line holds ts, level, logger, message, the
bound scalar extras and, for an exception, its traceback. The standard
library's records (uvicorn's, at its default level WARNING) go through loguru
too. Messages are written as the code composed them: secrets are kept out at
the source (``SecretRef`` never formats its value; URLs are shown through
``redact_url``); as a last line of defence, what looks like a bearer or basic
credential in a message is redacted (``secrets.redact_credentials``).
Neighbours: ``cli`` (the global options), ``execute.cycle`` (the bound context).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loguru import logger

from flink_gitops.secrets import redact_credentials

if TYPE_CHECKING:
    from loguru import Message, Record

LogFormat = Literal["auto", "text", "json"]

#: the bound extras shown in the text format, in this order.
CONTEXT = ("job", "cluster", "commit")


def under_journald(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stderr) is the journal stream systemd gave this service."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not (sep and dev.isascii() and dev.isdigit() and ino.isascii() and ino.isdigit()):
        return False  # garbage (a superscript digit is isdigit() but no int): not the journal
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False  # no file descriptor (a test runner's buffer): not the journal
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def context(extra: dict[str, Any]) -> str:
    """``orders@default 1a2b3c4d`` from the bound job, cluster and commit ('' when none is bound)."""
    job, cluster, commit = (extra.get(k) for k in CONTEXT)
    where = f"{job}@{cluster}" if job and cluster else str(job or cluster or "")
    parts = [where] if where else []
    if commit:
        parts.append(str(commit)[:8])
    return " ".join(parts)


def _escape(text: str) -> str:
    """Literal text inside a loguru format template (braces, and the colour markup's '<')."""
    return text.replace("{", "{{").replace("}", "}}").replace("<", r"\<")


def _text_format(record: Record) -> str:
    ctx = context(record["extra"])
    shown = f"[{_escape(ctx)}] " if ctx else ""
    return (
        "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
        "<cyan>{name}</cyan>:<cyan>{function}</cyan>:<cyan>{line}</cyan> - "
        f"{shown}<level>{{message}}</level>\n" + ("{extra[_exc]}" if "_exc" in record["extra"] else "")
    )


def json_line(record: Record) -> str:
    """One record as one compact JSON object (no newline)."""
    out: dict[str, Any] = {
        "ts": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "logger": record["name"],
        "message": record["message"],
    }
    for key, value in record["extra"].items():
        if key.startswith("_"):
            continue
        if key not in out and (value is None or isinstance(value, str | int | float | bool)):
            out[key] = value
    exc = record["extra"].get("_exc") or _traceback(record)
    if exc:
        out["exception"] = exc
    return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


class _JsonSink:
    """Writes each record to ``stream`` as one JSON line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, message: Message) -> None:
        self.stream.write(json_line(message.record) + "\n")
        self.stream.flush()


class _ToLoguru(logging.Handler):
    """The standard library's records (uvicorn's "Invalid HTTP request received.", warnings and up
    as before) through loguru, so that under journald they too are JSON lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno

        def named(r: Record) -> None:
            r["name"] = record.name

        logger.patch(named).opt(exception=record.exc_info).log(level, "{}", record.getMessage())


def _route_stdlib() -> None:
    root = logging.getLogger()
    if not any(isinstance(h, _ToLoguru) for h in root.handlers):
        root.addHandler(_ToLoguru())


def resolve(fmt: LogFormat, stream: TextIO | None = None) -> Literal["text", "json"]:
    if fmt == "auto":
        return "json" if under_journald(stream) else "text"
    return fmt


def _traceback(record: Record) -> str | None:
    """The record's traceback as text, credentials redacted (an exception's text may quote them)."""
    exc = record["exception"]
    if exc is None or exc.type is None:
        return None
    return redact_credentials("".join(traceback.format_exception(exc.type, exc.value, exc.traceback)))


def _redact(record: Record) -> None:
    record["message"] = redact_credentials(record["message"])
    shown = _traceback(record)
    if shown is not None:
        record["extra"]["_exc"] = shown  # both formats print this, never loguru's own {exception}


def configure(level: str, fmt: LogFormat) -> Literal["text", "json"]:
    """Point loguru at stderr in ``fmt`` at ``level``; the format chosen."""
    stream = sys.stderr
    chosen = resolve(fmt, stream)
    logger.remove()
    logger.configure(patcher=_redact)
    if chosen == "json":
        logger.add(_JsonSink(stream), level=level, format="{message}", backtrace=False, diagnose=False)
    else:
        logger.add(stream, level=level, format=_text_format, diagnose=False)
    _route_stdlib()
    return chosen
