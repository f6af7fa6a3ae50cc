"""The validate-time guards (specs.guards): initialSavepointPath under the savepoint roots, after
normalisation, and the flinkConfiguration deny-list, reported by the loader at file:line."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.errors import ConfigError
from flink_gitops.settings import DENIED_CONFIGURATION_KEYS, Settings, SyncConfig
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.guards import SpecGuards
from flink_gitops.specs.loader import SpecLoader
from tests.specs.helpers import spec_yaml, write_repo

GUARDS = SpecGuards.of(["file:///srv/savepoints", "s3://State-Bucket/sp/"])


@pytest.mark.parametrize(
    "path",
    [
        "file:///srv/savepoints/savepoint-1",
        "file:/srv/savepoints/savepoint-1",
        "file://localhost/srv/savepoints/a/b",
        "/srv/savepoints/x",
        "FILE:///srv/savepoints/x",
        "file:///srv/savepoints//x/",
        "s3://state-bucket/sp/job/chk-4",
        "file:///srv/savepoints/caf%C3%A9",
    ],
)
def test_paths_under_a_root_are_allowed(path: str) -> None:
    assert GUARDS.savepoint_problem(path) is None


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("file:///srv/savepoints/../../etc", "'..' path segment"),
        ("file:///srv/savepoints/%2e%2e/%2e%2e/etc", "'..' path segment"),
        ("file:///srv/savepoints/%2E%2E/x", "'..' path segment"),
        ("file:///srv/savepoints/%252e%252e/x", "encoded '%'"),
        ("file:///srv/savepoints/./x", "'.' or '..'"),
        ("file:///srv/savepoints-other/x", "not under the configured savepoint roots"),
        ("file:///srv/savepoint", "not under"),
        ("file:///srv", "not under"),
        ("file://evil.example/srv/savepoints/x", "another host"),
        ("s3://other-bucket/sp/x", "not under"),
        ("hdfs:///srv/savepoints/x", "not under"),
        ("file:///srv/savepoints/x?y=1", "query or fragment"),
        ("file:///srv/savepoints/x#frag", "query or fragment"),
        ("file:///srv/savepoints/a\\..\\b", "backslash"),
        ("file:///srv/savepoints/a%00b", "control character"),
        ("file:///srv/savepoints/a\nb", "control character"),
        ("file:///srv/savepoints/%ff", "not UTF-8"),
        ("s3://user:pw@state-bucket/sp/x", "credentials"),
        ("relative/path", "neither an absolute path"),
        ("c:/windows", "neither an absolute path"),
        ("", "neither an absolute path"),
    ],
)
def test_tricks_and_paths_elsewhere_are_refused(path: str, why: str) -> None:
    problem = GUARDS.savepoint_problem(path)
    assert problem is not None
    assert why in problem, problem
    assert "pw" not in problem


def test_without_roots_every_path_is_refused() -> None:
    problem = SpecGuards().savepoint_problem("file:///srv/savepoints/x")
    assert problem is not None
    assert "no savepoint roots are configured" in problem


def test_sync_savepoint_dir_is_a_root_too() -> None:
    settings = Settings(sync=SyncConfig(savepoint_dir="file:///data/sp"))
    guards = SpecGuards.from_settings(settings)
    assert guards.savepoint_problem("file:///data/sp/savepoint-1") is None
    assert guards.savepoint_problem("file:///data/other") is not None


def test_a_root_that_cannot_be_normalised_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="savepoint root"):
        SpecGuards.of(["file:///a/../b"])


_SEGMENT = st.sampled_from(["a", "b", ".", "..", "%2e", "%2E%2e", "%2f", "%25", "x%2e", "", "sp"])


@given(st.lists(_SEGMENT, max_size=6))
def test_an_allowed_path_always_resolves_under_its_root(segments: list[str]) -> None:
    path = "file:///srv/savepoints/" + "/".join(segments)
    if GUARDS.savepoint_problem(path) is None:
        resolved = posixpath.normpath(unquote(path.removeprefix("file://")))
        assert resolved == "/srv/savepoints" or resolved.startswith("/srv/savepoints/"), path
        assert ".." not in unquote(path).split("/")


@pytest.mark.parametrize(
    "key",
    [
        "execution.savepoint.path",
        "execution.state-recovery.path",
        "execution.state-recovery.claim-mode",
        "  Execution.State-Recovery.Path ",
        "pipeline.jars",
        "pipeline.classpaths",
        "pipeline.cached-files",
        "$internal.pipeline.job-id",
        "env.java.opts.all",
        "env.java.opts",
        "classloader.resolve-order",
        "state.checkpoints.dir",
        "execution.checkpointing.dir",
        "python.files",
        "user.artifacts.artifact-list",
    ],
)
def test_denied_keys(key: str) -> None:
    assert SpecGuards().denied_key(key) is not None


@pytest.mark.parametrize(
    "key",
    ["execution.checkpointing.interval", "pipeline.max-parallelism", "pipeline.name", "parallelism.default"],
)
def test_ordinary_keys_pass(key: str) -> None:
    assert SpecGuards().denied_key(key) is None


def test_the_default_deny_list_is_the_settings_default() -> None:
    assert Settings().denied_configuration_keys == list(DENIED_CONFIGURATION_KEYS)


# --- through the loader: file:line, the job invalid ----------------------------------------------


def test_the_loader_reports_both_rules_at_their_lines(tmp_path: Path) -> None:
    bad = spec_yaml(
        "bad",
        extra_job="initialSavepointPath: file:///srv/savepoints/../../etc\n",
        extra_spec="flinkConfiguration:\n  pipeline.name: ok\n  pipeline.classpaths: file:///tmp/evil.jar\n",
    )
    repo = write_repo(tmp_path, {"jobs/bad.yaml": bad, "jobs/good.yaml": spec_yaml("good")})
    state = SpecLoader("jobs", guards=GUARDS).load(DirectoryTree(repo))
    assert "bad" in state.invalid_jobs()
    assert "good" in state.valid_jobs()
    where = {(p.line, p.col): p.message for p in state.errors}
    assert any(line == 8 and "'..' path segment" in m for (line, _c), m in where.items()), where
    assert any(
        line == 11 and col == 5 and "'pipeline.classpaths' is not allowed" in m
        for (line, col), m in where.items()
    ), where


def test_a_session_job_initial_state_reference_is_checked_too(tmp_path: Path) -> None:
    doc = """\
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: inv
spec:
  deploymentName: default
  job:
    jarURI: artifacts/app.jar
    initialStateReference:
      path: file:///elsewhere/sp-1
"""
    repo = write_repo(tmp_path, {"jobs/inv.yaml": doc})
    state = SpecLoader("jobs", guards=GUARDS).load(DirectoryTree(repo))
    errors = [p for p in state.errors if "not under" in p.message]
    assert errors, state.problems
    assert errors[0].line == 10
