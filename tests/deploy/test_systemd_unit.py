"""The systemd unit: ``systemd-analyze verify`` clean, ``security`` exposure low, the daemon's
directives present, and the daemon's Python working under its MemoryDenyWriteExecute=.

``verify`` checks that ExecStart's binary exists, so it runs on a copy of the unit whose
ExecStart is this venv's ``flink-gitops`` (the rest is byte for byte the shipped unit).
"""

from __future__ import annotations

import ctypes
import errno
import re
import sys
import textwrap
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT, require_tool, run

UNIT = ROOT / "systemd" / "flink-gitops.service"
SAMPLE = ROOT / "systemd" / "config.yaml"
INSTALLED_EXEC = "/opt/flink-gitops/bin/flink-gitops"
#: systemd-analyze security's overall exposure (0 best, 10 worst); "OK" is below 4.
MAX_EXPOSURE = 2.5


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    exe = Path(sys.executable).parent / "flink-gitops"
    assert exe.exists(), exe
    text = UNIT.read_text()
    assert INSTALLED_EXEC in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_EXEC, str(exe)))
    return copy


def test_systemd_analyze_verify_is_clean(unit_copy: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    done = run([analyze, "verify", str(unit_copy)])
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert UNIT.name not in output, output  # no warning about our unit


def test_systemd_analyze_security_exposure(unit_copy: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    done = run([analyze, "security", "--offline=true", "--no-pager", str(unit_copy)])
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", done.stdout)
    assert found, done.stdout
    score, verdict = float(found.group(1)), found.group(2)
    print(f"systemd-analyze security: overall exposure {score} {verdict}")
    assert score <= MAX_EXPOSURE, done.stdout
    assert verdict == "OK"


def test_the_unit_has_the_daemons_directives() -> None:
    d = directives(UNIT.read_text())
    want = {
        "Type": "notify",
        "NotifyAccess": "main",
        "Restart": "on-failure",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "KillSignal": "SIGTERM",
        "User": "flink-gitops",
        "StateDirectory": "flink-gitops",
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "PrivateDevices": "true",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "LockPersonality": "true",
        "MemoryDenyWriteExecute": "true",
        "RestrictNamespaces": "true",
        "ProtectKernelTunables": "true",
        "ProtectKernelModules": "true",
        "ProtectKernelLogs": "true",
    }
    for key, value in want.items():
        assert d.get(key) == [value], key
    assert "@system-service" in d["SystemCallFilter"]
    assert int(d["WatchdogSec"][0]) > 0


def test_every_credential_the_sample_config_names_is_loaded() -> None:
    loaded = {v.split(":", 1)[0] for v in directives(UNIT.read_text())["LoadCredential"]}
    sample = SAMPLE.read_text()
    named = set(re.findall(r"credential:\s*([\w.-]+)", sample))
    # a Path setting (audit.key_file) reads a credential by its path
    named |= set(re.findall(r"/run/credentials/flink-gitops\.service/([\w.-]+)", sample))
    assert named == loaded


# The child sets the kernel's MDWE (PR_SET_MDWE, Linux 6.3+: no mapping may be writable and
# executable, nor gain exec), the same rule MemoryDenyWriteExecute= enforces with seccomp, then
# runs what the daemon loads: every module, its crypto, SQLite through SQLAlchemy, the CLI, git.
_MDWE_CHILD = textwrap.dedent(
    """
    import ctypes, importlib, os, pkgutil, subprocess, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        sys.exit(77)
    import mmap
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit("MDWE is not in force")
    import flink_gitops
    for mod in pkgutil.walk_packages(flink_gitops.__path__, "flink_gitops."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    import psycopg, sqlalchemy, uvicorn, watchfiles  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    AESGCM(AESGCM.generate_key(256)).encrypt(os.urandom(12), b"x", None)
    Ed25519PrivateKey.generate().sign(b"x")
    Scrypt(salt=b"s" * 16, length=32, n=2**10, r=8, p=1).derive(b"pw")
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text("select 1"))
    exe = os.path.join(os.path.dirname(sys.executable), "flink-gitops")
    subprocess.run([exe, "validate", sys.argv[1]], check=True, capture_output=True)
    subprocess.run([exe, "keys", "generate", "--out", sys.argv[2]], check=True, capture_output=True)
    subprocess.run(["git", "--version"], check=True, capture_output=True)
    print("ok")
    """
)


def test_the_daemon_runs_under_memory_deny_write_execute(tmp_path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(66, 0, 0, 0, 0) < 0 and ctypes.get_errno() == errno.EINVAL:  # PR_GET_MDWE
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    done = run([sys.executable, "-c", _MDWE_CHILD, str(ROOT / "example-repo"), str(tmp_path / "k")])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"
