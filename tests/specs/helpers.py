"""Test helpers for spec tests: write a spec repo into a directory (real files, read via DirectoryTree)."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

#: bytes of the repo jar every helper repo carries at artifacts/app.jar (only hashed, never run).
APP_JAR = b"PK\x03\x04 not really a zip, only hashed by the loader\n"
APP_JAR_SHA = hashlib.sha256(APP_JAR).hexdigest()


def spec_yaml(
    name: str = "demo", *, jar: str = "artifacts/app.jar", extra_job: str = "", extra_spec: str = ""
) -> str:
    """A valid FlinkJob document; ``extra_*`` are YAML lines (dedented) appended to spec.job / spec."""
    body = f"""\
apiVersion: flink-gitops/v1
kind: FlinkJob
metadata:
  name: {name}
spec:
  job:
    jarURI: {jar}
"""
    if extra_job:
        body += textwrap.indent(textwrap.dedent(extra_job), "    ")
    if extra_spec:
        body += textwrap.indent(textwrap.dedent(extra_spec), "  ")
    return body


def write_repo(root: Path, files: dict[str, str | bytes], *, jar: bool = True) -> Path:
    """Write ``files`` (path → text or bytes) under ``root``, plus artifacts/app.jar unless ``jar``."""
    if jar:
        files = {"artifacts/app.jar": APP_JAR, **files}
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root
