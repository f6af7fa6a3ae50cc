"""Git source speed over a real loopback ``git daemon``.

Run: ``.venv/bin/python bench/bench_git.py [--files 1000] [--rounds 5]``.

Measures, for a repository of ``--files`` job files (about 1 KiB each), through
:class:`flink_gitops.source.git.GitSource`: the first poll (clone into an empty
cache, depth 50, tree listed), a no-change poll (one ``ls-remote``), a poll
after a one-file commit (ls-remote, fetch, ancestry check, tree listed), and
:func:`flink_gitops.source.git.open_tree` plus reading every blob of a 10,000-file
commit. Figures are printed as one JSON object (min / median / max seconds).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fixtures (git helpers)

from loguru import logger
from tests.fixtures.gitserver import init_work_repo, isolated_env, running_git_daemon

from flink_gitops.clock import SystemClock
from flink_gitops.settings import GitConfig
from flink_gitops.source.git import GitSource, GitTree, open_tree

T = TypeVar("T")


def timed(samples: dict[str, list[float]], name: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    value = fn()
    samples.setdefault(name, []).append(time.perf_counter() - start)
    return value


def _read_all(tree: GitTree) -> list[bytes]:
    return [tree.read(e.path) for e in tree.entries()]


def job_file(i: int) -> str:
    return f"apiVersion: flink-gitops/v1\nkind: FlinkJob\nmetadata:\n  name: job-{i:05d}\n" + "#" * 900 + "\n"


def run(files: int = 1000, rounds: int = 5) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-git-") as tmp:
        base = Path(tmp)
        (base / "home").mkdir()
        env = isolated_env(base / "home")
        served = base / "served"
        served.mkdir()
        with running_git_daemon(served, env) as daemon:
            bare, url = daemon.new_remote()
            work = init_work_repo(base / "work", env)
            work.git("remote", "add", "origin", str(bare))
            work.commit({f"jobs/team{i % 20:02d}/job{i:05d}.yaml": job_file(i) for i in range(files)})
            work.push()
            for r in range(rounds):
                source = GitSource(GitConfig(url=url), base / f"cache{r}", clock=SystemClock())
                first = timed(samples, "clone_first_poll_s", source.poll)
                assert first.ok
                assert first.revision is not None
                assert len(first.revision.tree) == files
                for _ in range(3):
                    same = timed(samples, "no_change_poll_s", source.poll)
                    assert same.ok
                    assert not same.changed
                work.commit({"jobs/team00/job00000.yaml": job_file(0) + f"# round {r}\n"})
                work.push()
                changed = timed(samples, "one_file_change_poll_s", source.poll)
                assert changed.ok
                assert changed.changed
                source.close()

            big = 10_000
            work.bulk_commit({f"big/d{i % 100:02d}/f{i:05d}.yaml": job_file(i).encode() for i in range(big)})
            for _ in range(rounds):
                tree = timed(samples, "open_tree_10k_s", lambda: open_tree(work.path, "HEAD"))
                data = timed(samples, "read_all_10k_s", functools.partial(_read_all, tree))
                assert len(data) == big + files
                blobs = [e.blob for e in tree.entries()]
                batch = timed(samples, "read_blobs_10k_s", functools.partial(tree.read_blobs, blobs))
                assert len(batch) == len(set(blobs))
                tree.close()
    return {
        name: {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}
        for name, v in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logger.disable("flink_gitops")  # figures only, no per-poll log lines
    figures = run(args.files, args.rounds)
    print(json.dumps({"git": figures}, indent=2))
    for name, f in figures.items():
        median, low, high = (f[k] * 1000 for k in ("median", "min", "max"))
        print(f"{name:>24}: median {median:8.1f} ms  (min {low:.1f}, max {high:.1f})")


if __name__ == "__main__":
    main()
