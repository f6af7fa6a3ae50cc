"""The commented sample config in systemd/ is a config the daemon accepts, and documents every key.

Every leaf key path of :class:`~flink_gitops.settings.Settings` (``clusters.<name>.auth.kind``...)
appears in it, set or commented out (``# key: value``; a commented block's keys are indented
after the ``#``), under a comment giving its meaning and default.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from flink_gitops.secrets import SecretRef
from flink_gitops.settings import Settings, load_settings

SAMPLE = Path(__file__).resolve().parents[1] / "systemd" / "config.yaml"
_KEY = re.compile(r"^(\s*)([a-z_][a-z0-9_]*):(\s|$)")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Key paths of every leaf setting; a mapping's key (a cluster name) is ``*``."""
    out: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            value_models = _models_in(typing.get_args(annotation)[1])
            for m in value_models:
                out |= leaf_paths(m, (*path, "*"))
            if not value_models:
                out.add(path)
            continue
        models = [m for m in _models_in(annotation) if m is not SecretRef]
        if models:
            for m in models:
                out |= leaf_paths(m, path)
        else:
            out.add(path)
    return out


def mapping_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is dict:
            out.add((*prefix, name))
        for m in _models_in(field.annotation):
            if m is not SecretRef:
                out |= mapping_paths(m, (*prefix, name))
    return out


def documented_keys(text: str) -> dict[tuple[str, ...], list[str]]:
    """Key path → the comment lines just above it, for set and commented-out keys alike."""
    found: dict[tuple[str, ...], list[str]] = {}
    stack: list[tuple[int, str]] = []
    comments: list[str] = []
    for raw in text.splitlines():
        lead = len(raw) - len(raw.lstrip())
        body = raw.lstrip()
        if body.startswith("#"):
            after = body[1:].removeprefix(" ")
            match = _KEY.match(after)
            if match is None or after.lstrip().startswith("#"):
                comments.append(after)
                continue
            indent, key = lead + len(match.group(1)), match.group(2)
        elif not body:
            comments = []
            continue
        else:
            match = _KEY.match(raw)
            if match is None:  # a list item or a continuation
                continue
            indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        found.setdefault(tuple(k for _, k in stack), comments)
        comments = []
    return found


def _generalise(path: tuple[str, ...], mappings: set[tuple[str, ...]]) -> tuple[str, ...]:
    out = list(path)
    for i in range(len(out)):
        if tuple(out[:i]) in mappings:
            out[i] = "*"
    return tuple(out)


def test_the_sample_config_loads() -> None:
    settings = load_settings(SAMPLE)
    assert settings.sync.prune is False
    assert settings.sync.max_prune_fraction == 0.5
    assert settings.artifact_download.max_bytes == 512 * 1024 * 1024
    assert settings.allow_unpinned_artifacts is False
    assert settings.sync.missed_run_grace_s == 600


def test_the_sample_config_names_every_settings_key_with_its_default() -> None:
    mappings = mapping_paths(Settings)
    documented = {_generalise(p, mappings): c for p, c in documented_keys(SAMPLE.read_text()).items()}
    wanted = leaf_paths(Settings)
    assert len(wanted) > 80
    missing = sorted(".".join(p) for p in wanted - documented.keys())
    assert missing == [], "settings keys not in systemd/config.yaml"
    undocumented = sorted(
        ".".join(p) for p in wanted if not any("default" in c.lower() for c in documented[p])
    )
    assert undocumented == [], "keys without a comment giving their default"
    sections = {p[:i] for p in wanted for i in range(1, len(p))}
    unknown = sorted(".".join(p) for p in documented.keys() - wanted - sections)
    assert unknown == [], "keys Settings does not have"


def test_the_leaf_paths_cover_nested_sections() -> None:
    paths = leaf_paths(Settings)
    assert ("clusters", "*", "auth", "kind") in paths
    assert ("git", "signatures", "mode") in paths
    assert ("http", "tokens") in paths  # a SecretRef is one leaf
