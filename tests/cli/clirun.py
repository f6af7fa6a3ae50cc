"""Run the real ``flink-gitops`` CLI as a subprocess, optionally as an unprivileged user.

Root reads mode-000 files, so the unreadable-file tests drop privileges. First choice: stay
root but without the capabilities that bypass file permissions (``setpriv --bounding-set
-dac_override,-dac_read_search``): root is then bound by modes like anyone, and still reaches a
checkout below a 0700 directory (a CI clone in a ``mktemp -d``), which nobody cannot. Then
``setpriv`` to uid/gid 65534 (nobody), then a user namespace (``unshare --user``).
:func:`unprivileged_prefix` picks the first that cannot read a mode-000 file and can still run
this interpreter with the package; it returns None only when none does. Tests that give files to
the unprivileged user ask :func:`drops_to_nobody`.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: no line of a report may be longer than this, whatever the input (a 900 KB value included).
MAX_LINE = 800

NO_DAC = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
_CANDIDATES = (NO_DAC, NOBODY, ["unshare", "--user"])


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines() + self.err.splitlines()

    def assert_clean(self) -> None:
        """No traceback, and every line bounded."""
        assert "Traceback" not in self.err, self.err[-3000:]
        longest = max((len(line) for line in self.lines), default=0)
        assert longest <= MAX_LINE, f"a line of {longest} characters: {max(self.lines, key=len)[:300]}"


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH, a HOME of its own, no FLINK_GITOPS_* from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("FLINK_GITOPS_")}
    env |= {"HOME": str(home), "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    return env | dict(extra or {})


def cli(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    prefix: list[str] | None = None,
    timeout: float = 120,
) -> Run:
    """``python -m flink_gitops ARGS`` (the installed CLI), with ``prefix`` (e.g. a privilege drop)."""
    command = [*(prefix or []), sys.executable, "-m", "flink_gitops", *args]
    proc = subprocess.run(
        command,
        cwd=cwd or home,
        env=clean_env(home, env),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def open_tempdir(prefix: str) -> Path:
    """A directory any user may enter (pytest's tmp_path is 0700 under root's name)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def remove_tree(path: Path) -> None:
    """Remove ``path`` after giving back the permissions a test took away."""
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IRWXU)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IRUSR | stat.S_IWUSR)
    shutil.rmtree(path)


def _cannot_read(prefix: list[str], probe: Path) -> bool:
    try:
        proc = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, timeout=30, check=False)
    except OSError:
        return False
    return proc.returncode != 0 and b"ermission denied" in proc.stderr


def runs_the_cli(prefix: list[str]) -> bool:
    """Whether a program run with ``prefix`` can start this interpreter and import the package."""
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", "import flink_gitops.cli"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return proc.returncode == 0


@functools.cache
def unprivileged_prefix() -> list[str] | None:
    """A command prefix that runs a program unable to read a mode-000 file, or None if none works.

    ``[]`` when we are not root (a mode-000 file is unreadable to us already).
    """
    if os.geteuid() != 0:
        return []
    top = open_tempdir("fg-probe-")
    try:
        probe = top / "secret"
        probe.write_text("x")
        probe.chmod(0)
        for candidate in _CANDIDATES:
            if shutil.which(candidate[0]) and _cannot_read(candidate, probe) and runs_the_cli(candidate):
                return candidate
        return None
    finally:
        remove_tree(top)


def drops_to_nobody() -> bool:
    """Whether the unprivileged runs are another user (then files they must write are given to it)."""
    return unprivileged_prefix() == NOBODY
