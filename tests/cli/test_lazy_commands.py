"""The CLI registers its commands by name and imports a command's module only when it runs."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from flink_gitops.cli import _COMMANDS, main


def test_every_registered_command_resolves_and_shows_its_help() -> None:
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0, listing.output
    for name in _COMMANDS:
        assert f"  {name} " in listing.output, name
        command = main.get_command(click.Context(main), name)
        assert isinstance(command, click.Command)
        assert command.name == name
        shown = runner.invoke(main, [name, "--help"])
        assert shown.exit_code == 0, (name, shown.output)


def test_an_unknown_command_is_refused_by_name() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


def test_sync_imports_neither_the_demo_nor_audit_nor_plan_commands() -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from flink_gitops.cli import main\n"
        "result = CliRunner().invoke(main, ['sync', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.startswith('flink_gitops.cli.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # cli.logs is the logger setup every command needs, not a command
    expected = "['flink_gitops.cli.logs', 'flink_gitops.cli.sync']"
    assert out.stdout.strip() == expected, out.stdout + out.stderr
