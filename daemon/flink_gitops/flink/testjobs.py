"""Builds the Java test jobs (a stateful keyed counter, the same with a changed operator uid,
a bounded batch count) into jars, cached by source hash.

A development tool, not used by the daemon: the test fixtures (tests/fixtures/flink.py) and
the benchmarks (bench/) both need the jars, and bench must not import tests. The Java sources
live in ``tests/jobs/src`` (:data:`REPO_JOBS_SRC` in a checkout); compiled with
``--release 11`` against a Flink 2.3 ``lib/``, the jars run unchanged on 1.20.5. Needs
``javac`` and ``jar`` on PATH. Neighbours: :mod:`.local` (the cache directory).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flink_gitops.flink.local import default_cache_dir

#: The test jobs' sources in a repository checkout (absent in an installed package).
REPO_JOBS_SRC = Path(__file__).resolve().parents[3] / "tests" / "jobs" / "src"
STATEFUL_ENTRY = "flinkgitops.testjobs.StatefulCounter"
BATCH_ENTRY = "flinkgitops.testjobs.BatchCount"
#: the stateful operator's uid in stateful.jar, and in stateful_uid_changed.jar.
COUNTER_UID = "counter-v1"
CHANGED_COUNTER_UID = "counter-v2"


@dataclass(frozen=True)
class JobJars:
    """The compiled test jobs and how to run them."""

    __test__ = False  # not a test class, whatever a test module imports it as

    #: unbounded stateful counter; args: --out DIR [--rate R] [--keys N]
    stateful: Path
    #: the same job, its keyed operator's uid changed (state cannot be mapped on restore)
    stateful_uid_changed: Path
    #: bounded BATCH count that finishes; args: [--records N] [--keys N] [--out DIR]
    batch: Path
    stateful_entry: str = STATEFUL_ENTRY
    batch_entry: str = BATCH_ENTRY


def _sources_digest(src: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*.java")):
        digest.update(path.relative_to(src).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _compile(flink_home: Path, src: Path, out_jar: Path, main_class: str, scratch: Path) -> None:
    classes = scratch / f"classes-{out_jar.stem}"
    sources = [str(p) for p in sorted(src.rglob("*.java"))]
    subprocess.run(
        [
            "javac",
            "--release",
            "11",
            "-nowarn",
            "-cp",
            f"{flink_home / 'lib'}/*",
            "-d",
            str(classes),
            *sources,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(
        ["jar", "--create", "--file", str(out_jar), "--main-class", main_class, "-C", str(classes), "."],
        check=True,
        capture_output=True,
        text=True,
    )


def build_test_jars(flink_home: Path, cache_dir: Path | None = None, src: Path = REPO_JOBS_SRC) -> JobJars:
    """Compile ``src`` into three jars, reusing a cached build of the same sources."""
    if not src.is_dir():
        raise FileNotFoundError(f"test job sources not found at {src} (a repository checkout is needed)")
    root = (cache_dir or default_cache_dir()) / "test-jars"
    final = root / _sources_digest(src)
    jars = JobJars(
        stateful=final / "stateful.jar",
        stateful_uid_changed=final / "stateful-uid-changed.jar",
        batch=final / "batch.jar",
    )
    if final.is_dir():
        return jars
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        built = scratch / "jars"
        built.mkdir()
        _compile(flink_home, src, built / "stateful.jar", STATEFUL_ENTRY, scratch)
        _compile(flink_home, src, built / "batch.jar", BATCH_ENTRY, scratch)
        changed = scratch / "src-uid-changed"
        shutil.copytree(src, changed)
        counter = changed / "flinkgitops" / "testjobs" / "StatefulCounter.java"
        text = counter.read_text(encoding="utf-8")
        if f'"{COUNTER_UID}"' not in text:
            raise ValueError(f"{counter}: operator uid {COUNTER_UID!r} not found")
        counter.write_text(text.replace(f'"{COUNTER_UID}"', f'"{CHANGED_COUNTER_UID}"'), encoding="utf-8")
        _compile(flink_home, changed, built / "stateful-uid-changed.jar", STATEFUL_ENTRY, scratch)
        try:
            built.rename(final)
        except OSError:
            if not final.is_dir():  # not merely a parallel build that won
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # Builds of other sources older than a week go (other checkouts, e.g. worktrees of branches
    # with other test sources, build and use theirs side by side meanwhile).
    week_ago = time.time() - 7 * 86400
    for old in root.iterdir():
        if old != final and len(old.name) == 16 and not old.name.startswith("build-"):
            try:
                stale = old.stat().st_mtime < week_ago
            except OSError:
                continue
            if stale:
                shutil.rmtree(old, ignore_errors=True)
    return jars
