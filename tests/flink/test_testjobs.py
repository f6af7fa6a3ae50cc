"""The test-job builder lives in the package (flink_gitops.flink.testjobs) so bench/ can use it
without importing tests/; the builder itself is exercised by every cluster test's fixture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from flink_gitops.flink.testjobs import REPO_JOBS_SRC, build_test_jars

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_bench_client_does_not_import_tests() -> None:
    script = BENCH / "bench_client.py"
    offenders = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"), str(script))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        offenders += [f"{script.name}:{node.lineno} {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []
    assert "sys.path" not in script.read_text(encoding="utf-8")


def test_the_sources_are_found_in_a_checkout_and_a_missing_tree_is_a_clear_error(tmp_path: Path) -> None:
    assert (REPO_JOBS_SRC / "flinkgitops" / "testjobs" / "StatefulCounter.java").is_file()
    with pytest.raises(FileNotFoundError, match="test job sources not found"):
        build_test_jars(tmp_path, cache_dir=tmp_path, src=tmp_path / "nope")
