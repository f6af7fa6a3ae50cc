"""The secret scan itself (tests/fixtures/secretscan.py): an inner pytest session with a leak
fails, the same session without one passes; a leak into a file under basetemp of a secret that
is only known from a key file written there is found too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LEAKY = """
TOKEN = "leaky-token-0123456789"

def test_prints_it():
    print("calling with", TOKEN)
"""

QUIET = """
TOKEN = "quiet-token-0123456789"

def test_keeps_it():
    print("calling with a token of", len(TOKEN), "characters")
"""

KEY_IN_A_LOG = """
def test_logs_a_key(tmp_path):
    (tmp_path / "audit.key").write_text("# header line\\nc2VjcmV0LWtleS1tYXRlcmlhbC0wMTIz\\n")
    (tmp_path / "daemon.log").write_text("opened key c2VjcmV0LWtleS1tYXRlcmlhbC0wMTIz\\n")
"""


def _inner(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    # outside the outer session's basetemp: its own scan must not read the inner leaks
    (tmp_path / "test_inner.py").write_text(body, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.fixtures.secretscan",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--basetemp={tmp_path / 'base'}",
            "-c",
            str(tmp_path / "pytest.ini"),
            str(tmp_path / "test_inner.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def outside() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fg-secretscan-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(
    ("body", "leaks", "where"),
    [
        (LEAKY, True, "test_prints_it (Captured stdout call): contains test_inner.TOKEN"),
        (QUIET, False, "no leak"),
        (KEY_IN_A_LOG, True, "daemon.log: contains the content of a file named audit.key"),
    ],
    ids=["captured-output", "clean", "key-in-a-log-file"],
)
def test_the_scan_fails_the_session_on_a_leak_and_only_then(
    outside: Path, body: str, leaks: bool, where: str
) -> None:
    proc = _inner(outside, body)
    out = proc.stdout + proc.stderr
    assert (proc.returncode != 0) is leaks, out
    assert where in out, out
    report = out.split("secret scan")[-1]
    for value in ("leaky-token-0123456789", "c2VjcmV0LWtleS1tYXRlcmlhbC0wMTIz"):
        assert value not in report, "a finding names the secret's kind, never its value"
