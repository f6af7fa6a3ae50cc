"""A malformed FLINK_GITOPS_* override is a config error naming the variable, for every command.

Through the real CLI as subprocesses: exit 2, the variable named on stderr, no traceback, and
never the value (an override may carry a secret). Each command must refuse before doing
anything (demo: before it starts Flink).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.errors import ConfigError
from flink_gitops.settings import load_settings
from tests.cli.clirun import cli, open_tempdir, remove_tree

#: every command that loads the settings.
COMMANDS = {
    "validate": ["validate", "."],
    "plan": ["plan", "--base", "HEAD"],
    "audit verify": ["audit", "verify"],
    "audit show": ["audit", "show"],
    "audit export": ["audit", "export"],
    "keys generate": ["keys", "generate"],
    "keys rotate": ["keys", "rotate"],
    "demo": ["demo", "--workdir", "demo-work"],
}


@pytest.fixture(scope="module")
def top() -> Iterator[Path]:
    path = open_tempdir("fg-env-")
    yield path
    remove_tree(path)


@pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
def test_malformed_json_override_names_the_variable(command: str, top: Path) -> None:
    run = cli(*COMMANDS[command], home=top, env={"FLINK_GITOPS_CLUSTERS": "{"})
    run.assert_clean()
    assert run.code == 2, run.out + run.err
    assert run.err.startswith("error: environment: invalid config for 'clusters': FLINK_GITOPS_CLUSTERS: ")
    assert "not valid JSON" in run.err
    assert not (top / "demo-work").exists()  # refused before anything started
    assert not list(top.glob("state*"))


SECRET = "hunter2-do-not-print"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLINK_GITOPS_GIT", '{"url": "https://x-access-token:' + SECRET + '@example.test/r.git"'),
        ("FLINK_GITOPS_STORE", '{"url": "postgresql://u:' + SECRET + '@db/x", '),
        ("FLINK_GITOPS_GIT__SIGNATURES__ALLOWED_FINGERPRINTS", "[" + SECRET),
        ("FLINK_GITOPS_AUDIT__KEY_COMMAND", '["kms", "--token", "' + SECRET),
    ],
)
def test_the_value_is_never_printed(name: str, value: str, top: Path) -> None:
    run = cli("validate", ".", home=top, env={name: value})
    run.assert_clean()
    assert run.code == 2
    assert name in run.err  # "NAME: not valid JSON", or "(set by NAME)" when it parsed as text
    assert SECRET not in run.out + run.err


def test_a_well_formed_override_of_the_wrong_shape_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLINK_GITOPS_CLUSTERS__DEFAULT", "{")
    with pytest.raises(ConfigError, match=r"clusters\.default: .* \(set by FLINK_GITOPS_CLUSTERS__DEFAULT\)"):
        load_settings(None)


def test_a_plain_string_override_next_to_the_broken_one_is_not_blamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLINK_GITOPS_GIT__REF", "release")
    monkeypatch.setenv("FLINK_GITOPS_GIT__SIGNATURES", "{")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert "FLINK_GITOPS_GIT__SIGNATURES: not valid JSON" in str(caught.value)
    assert "GIT__REF" not in str(caught.value)


def test_valid_json_overrides_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINK_GITOPS_CLUSTERS", '{"prod": {"url": "https://flink.example.test:8081"}}')
    assert set(load_settings(None).clusters) == {"prod"}
