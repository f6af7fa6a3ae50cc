"""Unreadable spec files, directories and jars through the real CLI, run as an unprivileged user.

Root reads mode-000 files, so every run here drops privileges (setpriv to nobody, or a user
namespace; see ``clirun.unprivileged_prefix``). The tests skip only when neither mechanism
exists on the machine; the skip reason says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clirun import Run, cli, open_tempdir, remove_tree, runs_the_cli, unprivileged_prefix
from tests.specs.helpers import spec_yaml, write_repo


@pytest.fixture(scope="module")
def drop() -> list[str]:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("running as root and neither setpriv nor unshare --user can drop the privilege")
    return prefix


@pytest.fixture
def top() -> Iterator[Path]:
    path = open_tempdir("fg-unreadable-")
    yield path
    remove_tree(path)


def _repo(top: Path) -> Path:
    return write_repo(top / "repo", {"jobs/good.yaml": spec_yaml("good")})


def _validate(drop: list[str], top: Path, *args: str) -> Run:
    run = cli("validate", *args, home=top, prefix=drop)
    run.assert_clean()
    return run


def test_an_unreadable_spec_file_is_an_error_naming_it(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    locked = repo / "jobs/locked.yaml"
    locked.write_text(spec_yaml("locked"))
    locked.chmod(0)
    run = _validate(drop, top, str(repo))
    assert run.code == 1, run.out + run.err
    assert f"{repo}/jobs/locked.yaml: error: cannot read file: Permission denied" in run.out.splitlines()
    assert run.out.splitlines()[-1].startswith("1 job(s) valid, 1 invalid; 1 error(s)")


def test_an_unreadable_directory_is_an_error_not_skipped(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    private = repo / "jobs/private"
    private.mkdir()
    (private / "a.yaml").write_text(spec_yaml("a"))
    private.chmod(0)
    run = _validate(drop, top, str(repo), "--output", "json")
    assert run.code == 1, run.out + run.err
    report = json.loads(run.out)
    assert report["ok"] is False
    assert report["invalidFiles"] == [f"{repo}/jobs/private"]
    [problem] = report["problems"]
    assert problem["message"] == "cannot read directory: Permission denied"
    assert report["jobs"]["good"]["valid"] is True


def test_a_directory_listed_but_not_searchable_reports_each_file(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    half = repo / "jobs/half"
    half.mkdir()
    (half / "a.yaml").write_text(spec_yaml("a"))
    half.chmod(0o644)  # names readable, files not reachable
    run = _validate(drop, top, str(repo), "--output", "github")
    assert run.code == 1
    assert "::error file=" + f"{repo}/jobs/half/a.yaml::cannot read file: Permission denied" in run.out


def test_the_validated_path_itself_unreadable(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    repo.chmod(0)
    run = _validate(drop, top, str(repo))
    assert run.code == 2  # nothing could be checked
    assert f"Directory '{repo}' is not readable" in run.err


def test_an_unreadable_repo_jar_is_an_error_of_the_jobs_using_it(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    (repo / "artifacts/app.jar").chmod(0)
    run = _validate(drop, top, str(repo))
    assert run.code == 1
    assert (
        f"{repo}/jobs/good.yaml:7:13: error: jarURI 'artifacts/app.jar': cannot read file: Permission denied"
        in run.out.splitlines()
    )


def test_a_symlinked_spec_to_an_unreadable_file(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    (repo / "other").mkdir()
    target = repo / "other/real.yaml"
    target.write_text(spec_yaml("linked"))
    target.chmod(0)
    (repo / "jobs/linked.yaml").symlink_to("../other/real.yaml")
    run = _validate(drop, top, str(repo), "--dir", "jobs")
    assert run.code == 1
    assert (
        f"{repo}/jobs/linked.yaml: error: cannot read file: Permission denied "
        "(symlink jobs/linked.yaml points to other/real.yaml)"
    ) in run.out.splitlines()


def test_a_spec_dir_below_an_unreadable_directory_is_a_usage_error(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    (repo / "locked/specs").mkdir(parents=True)
    (repo / "locked").chmod(0)
    run = _validate(drop, top, str(repo), "--dir", "locked/specs")
    assert run.code == 2
    assert "'locked/specs' cannot be looked at (Permission denied)" in run.err


def test_an_unreadable_file_that_is_no_spec_is_not_an_error(drop: list[str], top: Path) -> None:
    repo = _repo(top)
    for name in ("README.md", "artifacts/unused.jar"):
        (repo / name).write_text("x")
        (repo / name).chmod(0)
    run = _validate(drop, top, str(repo))
    assert run.code == 0, run.out
    assert run.out.splitlines() == ["1 job(s) valid, 0 invalid; 0 error(s), 0 warning(s) in 1 file(s)"]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare(1) on this machine")
def test_in_a_user_namespace_too(top: Path) -> None:
    """The other mechanism: an unprivileged user namespace (the overflow uid, no capabilities)."""
    prefix = ["unshare", "--user"]
    if os.geteuid() == 0 and not _can_drop(prefix):
        pytest.skip("user namespaces are not available here")
    if not runs_the_cli(prefix):
        pytest.skip("the overflow uid cannot reach this checkout (it lies below a 0700 directory)")
    repo = _repo(top)
    (repo / "jobs/locked.yaml").write_text(spec_yaml("locked"))
    (repo / "jobs/locked.yaml").chmod(0)
    run = _validate(prefix, top, str(repo))
    assert run.code == 1
    assert f"{repo}/jobs/locked.yaml: error: cannot read file: Permission denied" in run.out.splitlines()


def _can_drop(prefix: list[str]) -> bool:
    probe = open_tempdir("fg-probe-")
    try:
        (probe / "x").write_text("x")
        (probe / "x").chmod(0)
        done = subprocess.run([*prefix, "cat", str(probe / "x")], capture_output=True, check=False)
        return done.returncode != 0
    finally:
        remove_tree(probe)


def test_the_same_repo_is_valid_once_readable(drop: list[str], top: Path) -> None:
    """The errors above come from the permissions, not from the content."""
    repo = _repo(top)
    (repo / "jobs/private").mkdir()
    (repo / "jobs/private/a.yaml").write_text(spec_yaml("a"))
    run = _validate(drop, top, str(repo))
    assert run.code == 0, run.out
    assert run.out.splitlines()[-1] == "2 job(s) valid, 0 invalid; 0 error(s), 0 warning(s) in 2 file(s)"
