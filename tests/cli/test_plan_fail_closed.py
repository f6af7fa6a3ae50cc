"""`plan` as a subprocess on a real Git repository: exit status by the head's errors, errors
already in the base marked as such, a spec directory missing in the head, bounded field values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clirun import Run, cli, open_tempdir, remove_tree
from tests.fixtures.gitserver import WorkRepo, init_work_repo, isolated_env
from tests.specs.helpers import APP_JAR, spec_yaml

pytestmark = pytest.mark.git

BROKEN = "a: [unclosed\n"


@pytest.fixture(scope="module")
def repo() -> Iterator[tuple[WorkRepo, Path]]:
    top = open_tempdir("fg-plan-")
    (top / "home").mkdir()
    work = init_work_repo(top / "repo", isolated_env(top / "home"))
    work.write({"artifacts/app.jar": APP_JAR, "jobs/a.yaml": spec_yaml("a"), "jobs/broken.yaml": BROKEN})
    work.git("add", "-A")
    work.git("commit", "-q", "-m", "base: broken.yaml already broken")

    def branch(name: str, files: dict[str, str | bytes | None]) -> None:
        work.git("checkout", "-q", "-b", name, "main")
        work.write(files)
        work.git("add", "-A")
        work.git("commit", "-q", "-m", name)
        work.git("checkout", "-q", "main")

    huge = "v" * 900_000
    branch("huge-value", {"jobs/a.yaml": spec_yaml("a", extra_spec=f"flinkConfiguration: {{k: {huge}}}\n")})
    branch("fixes-it", {"jobs/broken.yaml": None})
    branch(
        "moves-everything", {"jobs/a.yaml": None, "jobs/broken.yaml": None, "flink/a.yaml": spec_yaml("a")}
    )
    yield work, top
    remove_tree(top)


def _plan(repo: tuple[WorkRepo, Path], head: str, *extra: str) -> Run:
    work, top = repo
    run = cli("plan", "--repo", str(work.path), "--base", "main", "--head", head, *extra, home=top)
    run.assert_clean()
    return run


def test_an_error_already_in_the_base_still_fails_the_plan_marked_not_new(
    repo: tuple[WorkRepo, Path],
) -> None:
    run = _plan(repo, "main")
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0].endswith(
        "0 changed, 0 added, 0 removed, 1 unchanged; 1 error(s) in the head revision (0 new)"
    )
    assert lines[-1].startswith("    jobs/broken.yaml:2:1: error: YAML syntax error")
    assert not lines[-1].endswith("(new)")


def test_a_head_without_errors_exits_0(repo: tuple[WorkRepo, Path]) -> None:
    run = _plan(repo, "fixes-it", "--output", "json")
    assert run.code == 0, run.out
    report = json.loads(run.out)
    assert report["ok"] is True
    assert report["errors"] == 0


def test_a_spec_dir_missing_in_the_head_is_an_error(repo: tuple[WorkRepo, Path]) -> None:
    run = _plan(repo, "moves-everything", "--dir", "jobs")
    assert run.code == 1
    assert (
        "    jobs: error: spec directory 'jobs' has no files in this revision (missing or empty) (new)"
        in (run.out.splitlines())
    )
    # nothing is pruned because the whole spec directory is gone: the job is left as is, and why
    assert (
        "! a: invalid  [jobs/a.yaml] — missing, but jobs/a.yaml has errors in this revision: left as is"
        in (run.out)
    )


@pytest.mark.parametrize("output", ["text", "markdown"])
def test_a_huge_changed_value_is_shown_as_a_prefix(repo: tuple[WorkRepo, Path], output: str) -> None:
    run = _plan(repo, "huge-value", "--output", output)
    assert run.code == 1  # broken.yaml is still broken
    assert "(900000 characters)" in run.out
    assert len(run.out) < 10_000
