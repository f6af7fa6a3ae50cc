"""The loader fails closed: bounded messages, positions for bad bytes, a missing spec directory,
empty files, and pruning refused below a directory that could not be read."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_gitops.settings import SpecLimits
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.errors import MAX_MESSAGE, Problem, quote
from flink_gitops.specs.loader import DesiredState, SpecLoader
from flink_gitops.specs.model import parse_duration
from flink_gitops.specs.yamlsafe import parse_documents
from tests.specs.helpers import spec_yaml, write_repo


def test_quote_keeps_a_prefix_and_escapes_control_characters() -> None:
    assert quote("short") == "'short'"
    assert quote("x" * 1000) == "'" + "x" * 40 + "'… (1000 characters)"
    assert quote("a\x1b[31mb\n") == "'a\\x1b[31mb\\n'"
    assert quote(["a"] * 100).endswith("(500 characters)")


def test_a_problem_message_is_cut() -> None:
    p = Problem("f.yaml", 1, 1, "m" * 10_000)
    assert len(p.message) < MAX_MESSAGE + 60
    assert p.message.endswith(f"(message cut at {MAX_MESSAGE} characters)")


def test_a_file_name_with_a_newline_is_escaped_in_where() -> None:
    assert Problem("jobs/a\nb.yaml", 2, 3, "m").where() == "jobs/a\\nb.yaml:2:3"


def test_nul_byte_and_bad_utf8_are_reported_with_their_position() -> None:
    _docs, [nul] = parse_documents(b"a: 1\nb: x\x00y\n", "f.yaml", SpecLimits())
    assert (nul.line, nul.col) == (2, 5)
    assert nul.message == "a NUL byte at offset 9 (line 2, column 5): control characters are not allowed"
    _docs, [bad] = parse_documents(b"a: 1\nb: caf\xe9\n", "f.yaml", SpecLimits())
    assert (bad.line, bad.col) == (2, 7)
    assert bad.message == "not UTF-8 text: byte 0xe9 at offset 11"


def test_a_huge_key_or_value_is_quoted_briefly(tmp_path: Path) -> None:
    write_repo(tmp_path, {"a.yaml": spec_yaml("a", extra_job="k" * 1000 + ": 1\nentryClass: [x]\n")})
    state = SpecLoader().load(DirectoryTree(tmp_path))
    assert state.errors
    assert all(len(p.message) < 200 for p in state.errors), [p.message for p in state.errors]


def test_a_name_no_job_can_have_is_not_recovered(tmp_path: Path) -> None:
    write_repo(tmp_path, {"a.yaml": spec_yaml("n" * 300)})
    state = SpecLoader().load(DirectoryTree(tmp_path))
    assert state.jobs == {}
    assert [u.file for u in state.unnamed] == ["a.yaml"]
    assert "a.yaml" in state.invalid_files


@pytest.mark.parametrize(
    ("spec_dir", "why"),
    [("flink", "has no files in this revision (missing or empty)"), ("a.yaml", "is a file")],
)
def test_a_missing_spec_directory_is_an_error_that_stops_pruning(
    tmp_path: Path, spec_dir: str, why: str
) -> None:
    write_repo(tmp_path, {"a.yaml": spec_yaml("a")})
    state = SpecLoader(spec_dir).load(DirectoryTree(tmp_path))
    [problem] = state.errors
    assert problem.file == spec_dir
    assert why in problem.message
    assert not state.may_prune("old-job", f"{spec_dir}/old.yaml")
    assert not state.may_prune("old-job", None)


def test_an_empty_file_is_a_warning_not_an_invalid_file(tmp_path: Path) -> None:
    write_repo(tmp_path, {"a.yaml": spec_yaml("a"), "empty.yaml": "# nothing\n"})
    state = SpecLoader().load(DirectoryTree(tmp_path))
    assert state.ok
    [warning] = state.warnings
    assert (warning.file, warning.message) == ("empty.yaml", "no spec document in this file (empty)")
    assert state.invalid_files == frozenset()


def _state(invalid: set[str], problems: tuple[Problem, ...] = ()) -> DesiredState:
    return DesiredState(None, {}, (), frozenset(invalid), {}, problems)


def test_no_pruning_below_a_directory_that_could_not_be_read() -> None:
    problem = Problem("jobs/private", None, None, "cannot read directory: Permission denied")
    state = _state({"jobs/private"}, (problem,))
    assert not state.may_prune("a", "jobs/private/a.yaml")
    assert not state.may_prune("a", "jobs/private/deeper/a.yaml")
    assert state.may_prune("a", "jobs/private-not/a.yaml")
    assert state.may_prune("a", "jobs/other.yaml")
    assert state.errors_of("jobs/private/a.yaml") == (problem,)
    assert state.errors_of("jobs/other.yaml") == ()


def test_an_unreadable_root_stops_all_pruning() -> None:
    state = _state({"."}, (Problem(".", None, None, "cannot read directory: Permission denied"),))
    assert not state.may_prune("a", "jobs/a.yaml")
    assert len(state.errors_of("jobs/a.yaml")) == 1


@pytest.mark.parametrize("text", [" 5m", "5m ", "5 m", "5m\n", "٥m", "５m"])
def test_durations_are_as_strict_as_the_schema_pattern(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
