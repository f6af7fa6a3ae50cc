"""`validate --dir` must name a real directory: otherwise exit 2 and say why (a subprocess each)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clirun import cli, open_tempdir, remove_tree
from tests.specs.helpers import spec_yaml, write_repo


@pytest.fixture(scope="module")
def repo() -> Iterator[Path]:
    top = open_tempdir("fg-dir-")
    root = write_repo(top / "repo", {"jobs/a.yaml": spec_yaml("a")})
    (root / "linked").symlink_to("jobs")
    (root / "empty").mkdir()
    yield root
    remove_tree(top)


@pytest.mark.parametrize(
    ("spec_dir", "why"),
    [
        ("nosuch", "'nosuch' does not exist in"),
        ("jobs/a.yaml", "'jobs/a.yaml' is not a directory in"),
        ("linked", "'linked' is a symlink (a commit would not walk through it) in"),
        ("../..", "'../..' leaves"),
    ],
)
def test_a_bad_spec_dir_is_a_usage_error(repo: Path, spec_dir: str, why: str) -> None:
    run = cli("validate", str(repo), "--dir", spec_dir, home=repo.parent)
    run.assert_clean()
    assert run.code == 2, run.out
    assert f"Invalid value for --dir: {why}" in run.err
    assert "file(s)" not in run.out


def test_the_config_spec_dir_is_checked_too(repo: Path) -> None:
    run = cli("validate", str(repo), home=repo.parent, env={"FLINK_GITOPS_GIT__PATH": "nosuch"})
    assert run.code == 2
    assert "Invalid value for git.path: 'nosuch' does not exist in" in run.err


def test_an_existing_but_empty_spec_dir_is_an_error(repo: Path) -> None:
    run = cli("validate", str(repo), "--dir", "empty", home=repo.parent)
    run.assert_clean()
    assert run.code == 1
    assert (
        f"{repo}/empty: error: spec directory 'empty' has no files in this revision (missing or empty)"
        in (run.out)
    )


def test_a_good_spec_dir(repo: Path) -> None:
    run = cli("validate", str(repo), "--dir", "jobs", home=repo.parent)
    assert run.code == 0, run.out
    assert run.out.splitlines()[-1] == "1 job(s) valid, 0 invalid; 0 error(s), 0 warning(s) in 1 file(s)"
