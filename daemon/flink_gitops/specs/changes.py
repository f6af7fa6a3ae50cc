"""Change classes between two versions of one job: which fields changed, and the highest class.

Each leaf field of :class:`~flink_gitops.specs.model.FlinkJob` declares its
:class:`~flink_gitops.specs.model.Change` next to its definition; this module
reads those declarations (:func:`leaves`), so there is no second table to keep
in sync. The jar is compared by content digest (``spec.job.jar``, UPGRADE), its
path only as an IGNORE field. Neighbours: ``specs.hashing`` (hashes the same
leaves), ``cli.plan`` and the planner (consume :class:`ChangeSet`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from flink_gitops.specs.model import Change, FlinkJob

LeafPath = tuple[str, ...]
#: the essence path that carries the jar's content digest.
JAR_PATH: LeafPath = ("spec", "job", "jar")


def field_change(model: type[BaseModel], name: str) -> Change | None:
    """The class declared on ``model.name``, or None for a nested model (a container)."""
    for item in model.model_fields[name].metadata:
        if isinstance(item, Change):
            return item
    return None


@functools.cache
def _fields(model: type[BaseModel]) -> tuple[tuple[str, Change | None, type[BaseModel] | None], ...]:
    """(name, class, nested model) per field; a field without a class must be a nested model."""
    out: list[tuple[str, Change | None, type[BaseModel] | None]] = []
    for name, info in model.model_fields.items():
        change = field_change(model, name)
        if change is not None:
            out.append((name, change, None))
            continue
        nested = info.annotation
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            raise TypeError(f"{model.__name__}.{name} declares no change class")
        out.append((name, None, nested))
    return tuple(out)


def _walk(
    model: type[BaseModel], dumped: dict[str, Any], prefix: LeafPath, out: dict[LeafPath, tuple[Change, Any]]
) -> None:
    for name, change, nested in _fields(model):
        if nested is not None:
            _walk(nested, dumped[name], (*prefix, name), out)
        else:
            assert change is not None
            out[(*prefix, name)] = (change, dumped[name])


def leaves(job: FlinkJob, jar_digest: str) -> dict[LeafPath, tuple[Change, Any]]:
    """Every leaf field (JSON value) with its class, plus the jar digest; apiVersion/kind excluded."""
    out: dict[LeafPath, tuple[Change, Any]] = {}
    dumped = job.model_dump(mode="json")
    _walk(type(job.metadata), dumped["metadata"], ("metadata",), out)
    _walk(type(job.spec), dumped["spec"], ("spec",), out)
    out[JAR_PATH] = (Change.UPGRADE, jar_digest)
    return out


def display(path: LeafPath, key: str | None = None) -> str:
    text = ".".join(path)
    return f"{text}[{key}]" if key is not None else text


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed field (for a mapping field like flinkConfiguration: one key of it)."""

    path: str
    change: Change
    kind: Literal["added", "removed", "changed"]
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed between two versions of a job; ``change`` is None when nothing did."""

    change: Change | None
    fields: tuple[FieldChange, ...]

    @property
    def changed(self) -> bool:
        return self.change is not None

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields)


def _diff_mapping(
    path: LeafPath, change: Change, old: dict[str, Any], new: dict[str, Any]
) -> list[FieldChange]:
    out: list[FieldChange] = []
    for key in sorted(old.keys() | new.keys()):
        if key not in new:
            out.append(FieldChange(display(path, key), change, "removed", old[key], None))
        elif key not in old:
            out.append(FieldChange(display(path, key), change, "added", None, new[key]))
        elif old[key] != new[key]:
            out.append(FieldChange(display(path, key), change, "changed", old[key], new[key]))
    return out


def classify_leaves(
    old: dict[LeafPath, tuple[Change, Any]], new: dict[LeafPath, tuple[Change, Any]]
) -> ChangeSet:
    """The changes between two leaf sets (both from :func:`leaves`)."""
    fields: list[FieldChange] = []
    for path in sorted(old.keys() | new.keys()):
        change = (new.get(path) or old[path])[0]
        a = old[path][1] if path in old else None
        b = new[path][1] if path in new else None
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            fields.extend(_diff_mapping(path, change, a, b))
        else:
            fields.append(FieldChange(display(path), change, "changed", a, b))
    top = max((f.change for f in fields), default=None)
    return ChangeSet(top, tuple(fields))


def classify(old: FlinkJob, old_jar: str, new: FlinkJob, new_jar: str) -> ChangeSet:
    """The change from ``old`` to ``new`` (same job name): the highest class and every changed field."""
    return classify_leaves(leaves(old, old_jar), leaves(new, new_jar))
