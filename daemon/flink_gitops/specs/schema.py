"""JSON Schema files generated from the pydantic models (the models are the single source).

``schemas/flinkjob-v1.json`` and ``schemas/flinksessionjob-v1beta1.json`` are
written by ``flink-gitops schema --write`` (``make schemas``) and referenced by
the ``# yaml-language-server: $schema=...`` modelines in spec files, so editors
complete and check specs. A test fails when the files on disk are stale.
Each FlinkJob property carries ``x-change-class`` (see ``specs.model.Change``).
Neighbours: ``specs.model``, ``cli.schema``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from flink_gitops.specs.model import FlinkJob, FlinkSessionJob

#: file name → (model, description).
SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "flinkjob-v1.json": (
        FlinkJob,
        "A flink-gitops/v1 FlinkJob spec (one job of a Git-managed Flink cluster).",
    ),
    "flinksessionjob-v1beta1.json": (
        FlinkSessionJob,
        "The Kubernetes operator's flink.apache.org/v1beta1 FlinkSessionJob, as flink-gitops accepts it.",
    ),
}


def schema_for(file_name: str) -> dict[str, Any]:
    model, description = SCHEMAS[file_name]
    schema = model.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://flink-gitops.dev/schemas/{file_name}",
        **schema,
        "description": description,
    }


def render(file_name: str) -> str:
    return json.dumps(schema_for(file_name), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema file into ``directory`` (created if missing); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = directory / name
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path) -> list[str]:
    """Names of the schema files in ``directory`` that are missing or differ from the models."""
    stale = []
    for name in SCHEMAS:
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(name):
            stale.append(name)
    return stale
