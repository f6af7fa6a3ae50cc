"""The invalid-spec corpus: every file in invalid/ states, in its first line, where its error is.

Header format: ``# expect: LINE[:COL] message substring``. Each file is loaded
on its own (as jobs/<file> next to a repo jar) and must produce that error at
that file and position, and its job must be invalid (left as is), its file
listed among the invalid files.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import SpecLoader
from tests.specs.helpers import write_repo

CORPUS = Path(__file__).parent / "invalid"
CASES = sorted(CORPUS.glob("*.yaml"))
_HEADER = re.compile(r"# expect: (\d+)(?::(\d+))? (.+)")


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_spec_reports_file_line_and_message(case: Path, tmp_path: Path) -> None:
    header = case.read_text(encoding="utf-8").splitlines()[0]
    match = _HEADER.fullmatch(header)
    assert match, f"{case.name}: bad header {header!r}"
    line, col, message = int(match[1]), match[2], match[3]
    write_repo(tmp_path, {})
    (tmp_path / "jobs").mkdir()
    shutil.copy(case, tmp_path / "jobs" / case.name)

    state = SpecLoader().load(DirectoryTree(tmp_path))

    rel = f"jobs/{case.name}"
    found = [p for p in state.errors if message in p.message]
    assert found, f"expected {message!r}; got {[str(p) for p in state.problems]}"
    problem = found[0]
    assert problem.file == rel
    assert problem.line == line, str(problem)
    if col is not None:
        assert problem.col == int(col), str(problem)
    assert rel in state.invalid_files
    assert not state.ok
    if problem.job is not None:
        assert problem.job not in state.valid_jobs()
