"""External checkers the deploy tests run (promtool, systemd-analyze, hadolint).

In CI (``CI=true``, as .ci/run is run there) a missing tool fails the test: .ci/run installs
it, so its absence is a broken CI image, not a reason to skip. Locally a skip names the
Debian package that provides it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; fails in CI, skips elsewhere when it is not installed."""
    found = shutil.which(name)
    if found is not None:
        return found
    why = f"{name} is not installed (Debian package {package!r}; .ci/run installs it)"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI: {why}")
    pytest.skip(why)


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
