"""`flink-gitops plan --base --head` on a real Git repository (example-repo plus a pull request)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flink_gitops.cli import main
from flink_gitops.cli.plan import render_markdown
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.diff import JobDiff, diff_states
from flink_gitops.specs.loader import SpecLoader
from flink_gitops.specs.model import Change
from tests.fixtures.gitserver import init_work_repo, isolated_env, run_git
from tests.specs.helpers import spec_yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.git


def _git(repo: Path, *args: str) -> str:
    return run_git(list(args), cwd=repo, env=isolated_env(repo.parent / "home"))


@pytest.fixture(scope="module")
def pr_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """example-repo on main, and a branch 'pr' that changes, adds, removes and breaks jobs."""
    top = tmp_path_factory.mktemp("plan")
    (top / "home").mkdir()
    work = init_work_repo(top / "repo", isolated_env(top / "home"))
    repo = work.path
    shutil.copytree(ROOT / "example-repo", repo, dirs_exist_ok=True)
    work.git("add", "-A")
    work.commit(message="base")
    work.git("checkout", "-q", "-b", "pr")
    orders = repo / "jobs/orders-enricher.yaml"
    text = (
        orders.read_text()
        .replace("parallelism: 2", "parallelism: 4")
        .replace("savepointTriggerNonce: 0", "savepointTriggerNonce: 1")
    )
    orders.write_text(text.replace("tier: critical", "tier: gold"))
    payments = repo / "jobs/payments.yaml"
    payments.write_text(
        payments.read_text().replace('"payments-audit-tail", "5"', '"payments-audit-tail", "50"')
    )
    (repo / "jobs/daily-report.yaml").unlink()
    (repo / "jobs/new-job.yaml").write_text(spec_yaml("new-job", jar="artifacts/event-counter-2.4.0.jar"))
    session = repo / "operator/inventory-sync.yaml"
    session.write_text(session.read_text().replace("state: running", "state: suspended\n    colour: red"))
    work.git("add", "-A")
    work.commit(message="pr")
    return repo


def _plan(repo: Path, output: str) -> str:
    result = CliRunner().invoke(
        main,
        ["plan", "--repo", str(repo), "--base", "main", "--head", "pr", "--output", output],
        catch_exceptions=False,
    )
    # the pull request breaks inventory-sync: the head has an error, so the plan fails
    assert result.exit_code == 1, result.output
    return result.output


def test_plan_json_lists_every_job_with_its_class_and_fields(pr_repo: Path) -> None:
    report = json.loads(_plan(pr_repo, "json"))
    assert report["base"] == _git(pr_repo, "rev-parse", "main")
    assert report["head"] == _git(pr_repo, "rev-parse", "pr")
    jobs = {j["name"]: j for j in report["jobs"]}
    assert jobs["orders-enricher"]["status"] == "changed"
    assert jobs["orders-enricher"]["change"] == "scale"
    fields = {f["path"]: (f["old"], f["new"], f["change"]) for f in jobs["orders-enricher"]["fields"]}
    assert fields == {
        "spec.job.parallelism": (2, 4, "scale"),
        "spec.job.savepointTriggerNonce": (0, 1, "savepoint"),
        "metadata.labels[tier]": ("critical", "gold", "ignore"),
    }
    assert jobs["payments-audit-tail"]["change"] == "upgrade"
    assert jobs["payments-fraud-score"]["status"] == "unchanged"
    assert jobs["daily-report"]["status"] == "removed"
    assert jobs["new-job"]["status"] == "added"
    # an invalid spec is reported and left as is, never treated as removed
    assert jobs["inventory-sync"]["status"] == "invalid"
    assert any("spec.job.colour: unknown field" in p for p in jobs["inventory-sync"]["problems"])
    assert report["ok"] is False
    assert report["errors"] == 1
    assert report["fileProblems"] == []  # the one error is carried by its job


def test_plan_text(pr_repo: Path) -> None:
    out = _plan(pr_repo, "text")
    assert out.startswith("Plan ")
    assert "1 changed" not in out.splitlines()[0]  # two jobs changed
    assert out.splitlines()[0].endswith(
        "2 changed, 1 added, 1 removed, 1 invalid, 1 unchanged; 1 error(s) in the head revision (1 new)"
    )
    assert "~ orders-enricher: changed (scale)  [jobs/orders-enricher.yaml]" in out
    assert "    spec.job.parallelism: 2 → 4  (changed, scale)" in out
    assert "- daily-report: removed" in out
    assert "! inventory-sync: invalid" in out
    assert "payments-fraud-score" not in out


def test_plan_markdown_is_a_table(pr_repo: Path) -> None:
    out = _plan(pr_repo, "markdown")
    assert out.startswith("### flink-gitops plan `")
    assert "| | Job | Change | Fields | File |" in out
    row = next(line for line in out.splitlines() if "`orders-enricher`" in line)
    assert "**changed (scale)**" in row
    assert "`spec.job.parallelism`: `2` → `4` (scale)" in row
    assert "<details><summary>Problems</summary>" in out


def test_plan_markdown_escapes_a_pipe_in_a_file_name() -> None:
    out = render_markdown([JobDiff("a", "added", None, None, "jobs/a|b.yaml")], "1" * 40, "2" * 40)
    row = next(line for line in out.splitlines() if "`a`" in line)
    assert row.endswith("| `jobs/a\\|b.yaml` |")  # one cell: the pipe does not split the row
    assert row.replace("\\|", "").count("|") == 6


def test_plan_missing_ref_is_an_error(pr_repo: Path) -> None:
    result = CliRunner().invoke(main, ["plan", "--repo", str(pr_repo), "--base", "no-such-branch"])
    assert result.exit_code == 2
    assert "error:" in result.output


def test_state_change_sorts_above_everything(tmp_path: Path) -> None:
    base_dir, head_dir = tmp_path / "base", tmp_path / "head"
    for d in (base_dir, head_dir):
        (d / "artifacts").mkdir(parents=True)
        (d / "artifacts/app.jar").write_bytes(b"jar")
    (base_dir / "a.yaml").write_text(spec_yaml("a", extra_job="parallelism: 1\n"))
    (head_dir / "a.yaml").write_text(
        spec_yaml("a", extra_job="parallelism: 2\nrestartNonce: 1\nstate: suspended\n")
    )
    loader = SpecLoader()
    [diff] = diff_states(loader.load(DirectoryTree(base_dir)), loader.load(DirectoryTree(head_dir)))
    assert diff.change is Change.STATE
    assert diff.changes is not None
    assert {f.change for f in diff.changes.fields} == {Change.SCALE, Change.REDEPLOY, Change.STATE}
