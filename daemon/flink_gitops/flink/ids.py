"""Flink ids we choose ourselves: job ids and trigger ids (32 lowercase hex characters each).

A deterministic job id (same parts, same id) in a run request lets a submission be found again
after a crash instead of being doubled. A trigger id chosen by the caller, recorded before the
POST and sent in the savepoint / stop body, makes that POST idempotent: Flink answers a repeat
with the same operation. Neighbours: execute chooses the parts and records the ids;
:mod:`.client` passes them to Flink.
"""

from __future__ import annotations

import hashlib
import re
import secrets

#: A Flink id (job id, trigger id): 32 lowercase hex characters.
FLINK_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def deterministic_job_id(*parts: str) -> str:
    """sha256 over the parts (NUL-separated, so ("ab", "c") != ("a", "bc")), cut to 32 hex chars."""
    if not parts:
        raise ValueError("deterministic_job_id needs at least one part")
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


def job_id_for(uid: str, generation: int) -> str:
    """The Flink job id of one generation of one life of a job (``uid`` from the store's job record)."""
    if not uid or generation < 0:
        raise ValueError("job_id_for needs a uid and a generation >= 0")
    return deterministic_job_id(uid, str(generation))


def new_trigger_id() -> str:
    """A fresh random trigger id for one savepoint or stop. Record it before sending the trigger;
    re-sending the trigger with it is then safe (Flink answers with the same operation)."""
    return secrets.token_hex(16)


def check_flink_id(value: str, what: str) -> str:
    """``value`` if it is 32 lowercase hex characters, else ValueError naming ``what``."""
    if not FLINK_ID_RE.match(value):
        raise ValueError(f"{what} must be 32 lowercase hex characters")
    return value
