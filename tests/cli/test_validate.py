"""`flink-gitops validate`: exit codes and the three output formats, on real directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from flink_gitops.cli import main
from tests.specs.helpers import spec_yaml, write_repo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bad_repo(tmp_path: Path) -> Path:
    return write_repo(
        tmp_path / "repo",
        {
            "jobs/good.yaml": spec_yaml("good"),
            "jobs/bad.yaml": spec_yaml("bad", extra_job="parallelism: 0\n"),
            "jobs/remote.yaml": spec_yaml("remote", jar="https://repo.example.com/x,y.jar"),
        },
    )


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_example_repo_is_valid() -> None:
    code, out = _run("validate", str(ROOT / "example-repo"))
    assert code == 0, out
    assert out.strip().endswith("5 job(s) valid, 0 invalid; 0 error(s), 0 warning(s) in 4 file(s)")


def test_errors_exit_1_with_file_line_col(bad_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bad_repo)
    code, out = _run("validate")
    assert code == 1
    lines = out.splitlines()
    assert (
        "jobs/bad.yaml:8:18: error: spec.job.parallelism: Input should be greater than or equal to 1" in lines
    )
    assert any(line.startswith("jobs/remote.yaml:7:13: warning: jarURI https://") for line in lines)
    assert lines[-1] == "2 job(s) valid, 1 invalid; 1 error(s), 1 warning(s) in 3 file(s)"


def test_warnings_alone_exit_0(tmp_path: Path) -> None:
    write_repo(tmp_path, {"a.yaml": spec_yaml("a", jar="https://repo.example.com/a.jar")})
    code, out = _run("validate", str(tmp_path))
    assert code == 0
    assert f"{tmp_path}/a.yaml:7:13: warning:" in out


def test_json_output(bad_repo: Path) -> None:
    code, out = _run("validate", str(bad_repo), "--output", "json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert report["jobs"]["good"]["valid"] is True
    assert len(report["jobs"]["good"]["specHash"]) == 64
    assert report["jobs"]["bad"] == {"valid": False, "file": f"{bad_repo}/jobs/bad.yaml", "line": 1}
    assert report["invalidFiles"] == [f"{bad_repo}/jobs/bad.yaml"]
    assert {(p["severity"], p["line"], p["job"]) for p in report["problems"]} == {
        ("error", 8, "bad"),
        ("warning", 7, "remote"),
    }


def test_github_annotations(bad_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bad_repo)
    code, out = _run("validate", "--output", "github")
    assert code == 1
    lines = out.splitlines()
    expected = "::error file=jobs/bad.yaml,line=8,col=18::spec.job.parallelism: Input should be greater than"
    assert f"{expected} or equal to 1" in lines
    warning = next(line for line in lines if line.startswith("::warning "))
    # property values escape ':' and ','; the message keeps them
    assert warning.startswith(
        "::warning file=jobs/remote.yaml,line=7,col=13::jarURI https://repo.example.com/x,y.jar"
    )


def test_spec_dir_option(tmp_path: Path) -> None:
    write_repo(tmp_path, {"flink/a.yaml": spec_yaml("a"), "other/b.yaml": "not: a spec\n"})
    code, out = _run("validate", str(tmp_path), "--dir", "flink")
    assert code == 0, out
    code, _out = _run("validate", str(tmp_path))
    assert code == 1


def test_clusters_are_checked_against_an_explicit_config(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {"a.yaml": spec_yaml("a", extra_spec="cluster: prod\n")})
    config = tmp_path / "config.yaml"
    config.write_text("clusters:\n  staging: {url: 'http://127.0.0.1:1'}\n")
    code, _ = _run("validate", str(repo))
    assert code == 0
    code, out = _run("--config", str(config), "validate", str(repo))
    assert code == 1
    assert "unknown cluster 'prod' (configured: staging)" in out


def test_example_repo_copy_with_a_broken_jar_checksum(tmp_path: Path) -> None:
    repo = tmp_path / "example"
    shutil.copytree(ROOT / "example-repo", repo)
    path = repo / "jobs/orders-enricher.yaml"
    path.write_text(path.read_text().replace("959e43e5", "00000000"))
    code, out = _run("validate", str(repo))
    assert code == 1
    assert f"{repo}/jobs/orders-enricher.yaml:13:13: error: jarSha256 does not match" in out
