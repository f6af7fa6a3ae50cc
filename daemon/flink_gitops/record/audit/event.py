"""What one audit record says: the event, its JSON plaintext, and who acted.

Why: the plaintext is encrypted as one JSON object, so its shape must be fixed
and round-trip exactly (keys sorted, no whitespace, UTC times with
microseconds). Values here must never be secrets: callers pass names, ids,
paths and hashes. Neighbours: record.audit.trail (encrypts these),
record.audit.verify (decrypts them), cli.audit (prints them).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from flink_gitops.clock import utc

#: outcome of an intent record written before a side effect.
INTENT = "intent"
SUCCEEDED = "succeeded"
FAILED = "failed"

_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """One thing that happened (or is about to). Only ``action`` and ``actor`` are required."""

    action: str  # e.g. "job.upgrade", "job.deploy", "keys.rotate"
    actor: str  # "daemon:<instance>", "api:<user>", "cli:<user>"
    job: str | None = None
    cluster: str | None = None
    git_commit: str | None = None
    git_signer: str | None = None
    spec_hash: str | None = None
    savepoint: str | None = None
    job_id_before: str | None = None
    job_id_after: str | None = None
    outcome: str | None = None  # intent | succeeded | failed | ... (free text, tagged)
    error: str | None = None
    #: the seq of the intent record an outcome record closes.
    intent_seq: int | None = None
    #: extra JSON-safe facts (no secrets).
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (``details`` as a plain dict), ready for JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"details": dict(self.details)}

    def to_plaintext(self, time: datetime) -> bytes:
        """The canonical JSON that gets encrypted."""
        body = {"v": _FORMAT, "time": format_time(time), **self.as_dict()}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_plaintext(cls, data: bytes) -> tuple[AuditEvent, datetime]:
        """The event and its time; raises ValueError on anything that is not our format."""
        body = json.loads(data.decode("utf-8"))
        if not isinstance(body, dict) or body.get("v") != _FORMAT:
            raise ValueError("not an audit plaintext of a known format")
        time = parse_time(str(body.pop("time")))
        body.pop("v")
        unknown = body.keys() - _EVENT_FIELDS
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        return cls(**body), time


_EVENT_FIELDS = frozenset(f.name for f in fields(AuditEvent))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A decrypted record: where it sits in the chain, and what it says."""

    seq: int
    recorded_at: datetime
    key_version: int
    event: AuditEvent

    def to_json(self) -> dict[str, Any]:
        """A flat JSON object for SIEM export and ``audit show --output jsonl``."""
        return {
            "seq": self.seq,
            "time": format_time(self.recorded_at),
            "key_version": self.key_version,
            **self.event.as_dict(),
        }


def format_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (always 27 characters)."""
    return utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time` (only that exact form)."""
    if len(text) != 27 or text[10] != "T" or not text.endswith("Z"):
        raise ValueError(f"not an audit time: {text!r}")
    return datetime.fromisoformat(text)


def daemon_actor(instance: str) -> str:
    return f"daemon:{instance}"


def api_actor(user: str) -> str:
    return f"api:{user}"


def cli_actor(user: str | None = None) -> str:
    """``cli:<login name>`` of whoever runs the command."""
    if user is None:
        try:
            user = getpass.getuser()
        except (OSError, KeyError):
            user = "unknown"
    return f"cli:{user}"
