"""The spec hash: sha256 over a canonical JSON of a job's essence.

The essence is every non-IGNORE leaf of the spec (see ``specs.changes.leaves``)
with defaults made explicit by the model, durations as seconds, configuration
values as text, and the jar's content digest (``sha256:<hex>``) in place of its
path, so renaming a jar file or writing a default out changes nothing, while
any change the running job depends on changes the hash. Drift detection
compares this hash with the last reconciled one. Neighbours: ``specs.changes``,
``specs.loader`` (computes it per job), the planner and the store (record it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flink_gitops.specs.changes import leaves
from flink_gitops.specs.model import Change, FlinkJob


def jar_digest_of(sha256_hex: str) -> str:
    """The essence's jar value for a jar whose content digest is known."""
    return f"sha256:{sha256_hex.lower()}"


def essence(job: FlinkJob, jar_digest: str) -> dict[str, Any]:
    """The nested essence: non-IGNORE leaves only."""
    out: dict[str, Any] = {}
    for path, (change, value) in leaves(job, jar_digest).items():
        if change is Change.IGNORE:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def spec_hash(job: FlinkJob, jar_digest: str) -> str:
    """Hex sha256 of the canonical essence."""
    return hashlib.sha256(canonical_json(essence(job, jar_digest))).hexdigest()
