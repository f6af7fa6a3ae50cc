"""Deterministic Flink job ids: the same parts, e.g. (uid, generation), always give the same id.

A submission that carries such an id (the run request's ``jobId``) can be found
again after a crash instead of being doubled. Neighbours: execute chooses the
parts; :mod:`.client` passes the id to Flink.
"""

from __future__ import annotations

import hashlib


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
