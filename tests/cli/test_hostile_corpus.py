"""The hostile-input corpus (tests/cli/hostile.py) through the real CLI, as subprocesses.

validate: all cases in one repository next to a valid job, in the three outputs (each case
checked for its message at its file:line, its verdict, the valid job unaffected), and a set of
cases alone (hostile.ALONE), for the exit status each gets by itself. plan: a pull request adding all
cases at once (text, markdown, json), and for the six file-level problems the issue names, a
pull request adding one broken file and one breaking the file of an existing job (which must
be reported as left as is, with the reason, in every output). Every report: no traceback, no
line longer than clirun.MAX_LINE. Subprocesses run two at a time (the machines have 2 cores).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flink_gitops.cli.validate import _gh_escape
from tests.cli.clirun import Run, cli, open_tempdir, remove_tree
from tests.cli.hostile import ALONE, CASES, SUPPORT, Case, Content, Link
from tests.fixtures.gitserver import init_work_repo, isolated_env
from tests.specs.helpers import APP_JAR, spec_yaml

BASE: dict[str, Content] = {
    "artifacts/app.jar": APP_JAR,
    "jobs/good.yaml": spec_yaml("good").encode(),
    **SUPPORT,
}
PLAN6 = [c for c in CASES if "plan6" in c.tags]
IDS = [c.id for c in CASES]


def test_corpus_size_and_kinds() -> None:
    assert len(CASES) >= 45
    assert len(set(IDS)) == len(IDS)
    assert {c.verdict for c in CASES} == {"error", "warning", "ok"}
    assert len(PLAN6) == 6


def _write(root: Path, files: dict[str, Content]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        if isinstance(content, Link):
            path.symlink_to(content.target)
        else:
            path.write_bytes(content)


def _in_parallel(jobs: dict[str, Callable[[], Run]]) -> dict[str, Run]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return {key: f.result() for key, f in futures.items()}


@pytest.fixture(scope="module")
def top() -> Iterator[Path]:
    path = open_tempdir("fg-hostile-")
    yield path
    remove_tree(path)


# --- validate ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def together(top: Path) -> tuple[Path, dict[str, Run]]:
    """Every case in one repository: validate in each output format."""
    repo = top / "together"
    _write(repo, BASE)
    for case in CASES:
        _write(repo, case.files)

    def job(output: str) -> Callable[[], Run]:
        return lambda: cli("validate", str(repo), "--dir", "jobs", "--output", output, home=top)

    return repo, _in_parallel({output: job(output) for output in ("text", "github", "json")})


@pytest.fixture(scope="module")
def alone(top: Path) -> dict[str, tuple[Path, Run]]:
    """The ALONE cases, each in a repository of its own next to a valid job."""
    repos = {}
    for case in CASES:
        if case.id in ALONE:
            repo = top / "alone" / case.id
            _write(repo, {**BASE, **case.files})
            repos[case.id] = repo

    def job(repo: Path) -> Callable[[], Run]:
        return lambda: cli("validate", str(repo), "--dir", "jobs", home=top)

    runs = _in_parallel({cid: job(repo) for cid, repo in repos.items()})
    return {cid: (repos[cid], run) for cid, run in runs.items()}


def _shown(path: str) -> str:
    return path if path.isprintable() else repr(path)[1:-1]


def _check_text(case: Case, repo: Path, out: str) -> None:
    where = f"{repo}/{_shown(case.path)}"
    mine = [line for line in out.splitlines() if line.startswith(where + ":")]
    if case.verdict == "ok":
        assert mine == [], mine
        return
    prefix = f"{where}:{case.line}:" if case.line is not None else f"{where}:"
    found = [
        line
        for line in mine
        if line.startswith(prefix) and f": {case.verdict}: " in line and (case.expect or "") in line
    ]
    assert found, f"no {case.verdict} {case.expect!r} at {prefix}; got:\n" + "\n".join(mine)[-2000:]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_validate_reports_each_case_at_its_file_and_line(
    case: Case, together: tuple[Path, dict[str, Run]]
) -> None:
    repo, runs = together
    run = runs["text"]
    run.assert_clean()
    assert run.code == 1
    _check_text(case, repo, run.out)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.id in ALONE], ids=[c.id for c in CASES if c.id in ALONE]
)
def test_validate_each_case_alone(case: Case, alone: dict[str, tuple[Path, Run]]) -> None:
    repo, run = alone[case.id]
    run.assert_clean()
    assert run.code == (1 if case.verdict == "error" else 0), run.out
    _check_text(case, repo, run.out)
    valid = 2 if case.verdict == "ok" else 1
    assert run.out.splitlines()[-1].startswith(f"{valid} job(s) valid"), run.out  # the valid job unaffected


def test_a_file_name_cannot_forge_a_report_line(together: tuple[Path, dict[str, Run]]) -> None:
    _repo, runs = together
    assert not any(line.startswith("name.yaml") for line in runs["text"].out.splitlines())


# --- validate, every case in one repository -----------------------------------------------------


def test_validate_github_annotations_for_the_whole_corpus(together: tuple[Path, dict[str, Run]]) -> None:
    repo, runs = together
    run = runs["github"]
    run.assert_clean()
    assert run.code == 1
    for case in CASES:
        head = f"::{case.verdict} file={_gh_escape(f'{repo}/{case.path}', prop=True)}"
        found = [
            line
            for line in run.out.splitlines()
            if line.startswith(head + ",") or line.startswith(head + "::")
        ]
        if case.verdict == "ok":
            assert not any(
                f"file={_gh_escape(f'{repo}/{case.path}', prop=True)}" in line for line in run.lines
            )
        else:
            assert found, f"{case.id}: no annotation {head}"
            assert any(_gh_escape(case.expect or "") in line for line in found), (case.id, found)


def test_validate_json_for_the_whole_corpus(together: tuple[Path, dict[str, Run]]) -> None:
    repo, runs = together
    run = runs["json"]
    run.assert_clean()
    assert run.code == 1
    report = json.loads(run.out)
    invalid = set(report["invalidFiles"])
    for case in CASES:
        shown = f"{repo}/{case.path}"
        problems = [p for p in report["problems"] if p["file"] == shown]
        if case.verdict == "ok":
            assert problems == [], case.id
            continue
        assert (shown in invalid) == (case.verdict == "error"), case.id
        assert any(p["severity"] == case.verdict and (case.expect or "") in p["message"] for p in problems), (
            case.id,
            problems,
        )
        assert all(len(p["message"]) <= 600 for p in problems), case.id
    assert report["jobs"]["good"]["valid"] is True


# --- plan -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_runs(top: Path) -> tuple[dict[str, Run], dict[str, str]]:
    """main: the base files; 'all': every case added; 'add-ID' / 'break-ID' per PLAN6 case."""
    (top / "git-home").mkdir()
    env = isolated_env(top / "git-home")
    work = init_work_repo(top / "plan-repo", env)
    repo = work.path
    _write(repo, BASE)
    work.git("add", "-A")
    work.git("commit", "-q", "-m", "base")

    def branch(name: str, files: dict[str, Content]) -> None:
        work.git("checkout", "-q", "-b", name, "main")
        _write(repo, files)
        work.git("add", "-A")
        work.git("commit", "-q", "-m", name)
        work.git("checkout", "-q", "main")

    branch("all", {k: v for c in CASES for k, v in c.files.items()})
    for case in PLAN6:
        branch(f"add-{case.id}", case.files)
        branch(f"break-{case.id}", {"jobs/good.yaml": case.files[case.path]})

    def plan(head: str, output: str) -> Callable[[], Run]:
        args = ("plan", "--repo", str(repo), "--base", "main", "--head", head, "--dir", "jobs")
        return lambda: cli(*args, "--output", output, home=top)

    jobs = {f"all/{o}": plan("all", o) for o in ("text", "markdown", "json")}
    for case in PLAN6:
        jobs[f"add-{case.id}/text"] = plan(f"add-{case.id}", "text")
        for o in ("text", "markdown", "json"):
            jobs[f"break-{case.id}/{o}"] = plan(f"break-{case.id}", o)
    return _in_parallel(jobs), {"repo": str(repo)}


def test_plan_of_a_pr_adding_the_whole_corpus(plan_runs: tuple[dict[str, Run], dict[str, str]]) -> None:
    runs, _ = plan_runs
    for run in (runs["all/text"], runs["all/markdown"], runs["all/json"]):
        run.assert_clean()
        assert run.code == 1, run.out[-2000:]
    report = json.loads(runs["all/json"].out)
    assert report["ok"] is False
    texts = [f"{p['file']}: {p['severity']}: {p['message']}" for p in report["fileProblems"]]
    texts += [p for job in report["jobs"] for p in job["problems"]]
    jobs = {j["name"]: j for j in report["jobs"]}
    for case in CASES:
        mine = [t for t in texts if t.startswith(case.path + ":")]
        if case.verdict == "ok":
            assert mine == [], case.id
            assert jobs[case.id]["status"] == "added"
            continue
        assert any(f": {case.verdict}: " in t and (case.expect or "") in t for t in mine), (case.id, mine)
    assert all(p["new"] for p in report["fileProblems"])  # none of them was in main
    assert jobs["good"]["status"] == "unchanged"
    markdown = runs["all/markdown"].out
    assert "**Problems in files of the head revision (no job applied from them):**" in markdown
    assert "No job changes." not in markdown


@pytest.mark.parametrize("case", PLAN6, ids=[c.id for c in PLAN6])
def test_plan_of_a_pr_adding_one_broken_file(
    case: Case, plan_runs: tuple[dict[str, Run], dict[str, str]]
) -> None:
    run = plan_runs[0][f"add-{case.id}/text"]
    run.assert_clean()
    assert run.code == 1, run.out
    lines = run.out.splitlines()
    assert lines[0].endswith(
        "0 changed, 0 added, 0 removed, 1 unchanged; 1 error(s) in the head revision (1 new)"
    )
    assert lines[1] == "Problems in files of the head revision (no job applied from them):"
    assert lines[2].startswith(f"    {case.path}")
    assert (case.expect or "") in lines[2]
    assert lines[2].endswith(" (new)")


@pytest.mark.parametrize("case", PLAN6, ids=[c.id for c in PLAN6])
def test_plan_of_a_pr_breaking_a_jobs_file_says_why_it_is_left_as_is(
    case: Case, plan_runs: tuple[dict[str, Run], dict[str, str]]
) -> None:
    runs = plan_runs[0]
    note = "missing, but jobs/good.yaml has errors in this revision: left as is"
    text = runs[f"break-{case.id}/text"]
    text.assert_clean()
    assert text.code == 1
    lines = text.out.splitlines()
    at = lines.index(f"! good: invalid  [jobs/good.yaml] — {note}")
    assert lines[at + 1].startswith("    jobs/good.yaml")
    assert (case.expect or "") in lines[at + 1]

    markdown = runs[f"break-{case.id}/markdown"]
    markdown.assert_clean()
    assert markdown.code == 1
    row = next(line for line in markdown.out.splitlines() if line.startswith("| ! | `good` |"))
    assert row.startswith(f"| ! | `good` | **invalid** | _{note}_<br>`jobs/good.yaml")  # the reason, inline
    assert row.endswith(" | `jobs/good.yaml` |")
    assert (case.expect or "") in row
    details = markdown.out.split("<details><summary>Problems</summary>", 1)[1]
    assert (case.expect or "") in details

    report = json.loads(runs[f"break-{case.id}/json"].out)
    assert runs[f"break-{case.id}/json"].code == 1
    [good] = [j for j in report["jobs"] if j["name"] == "good"]
    assert good["status"] == "invalid"
    assert good["note"] == note
    assert any((case.expect or "") in p for p in good["problems"])
    assert report["fileProblems"] == []  # carried by the job, not listed twice
