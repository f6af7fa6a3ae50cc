"""Spec loading speed: a full load (parse + validate + hash) and a no-change poll.

Run: ``.venv/bin/python bench/bench_specs.py [--sizes 1000,10000] [--rounds 5]``.

For each size, generates a real Git repository (subprocess git) with that many
job specs in 100-file team directories, a mix of FlinkJob and FlinkSessionJob
documents, all using one repo jar; then measures through
:func:`flink_gitops.source.git.open_tree` and an incremental
:class:`flink_gitops.specs.loader.SpecLoader`:

- ``full_load_s``: a fresh loader loading the commit (every file parsed and validated, every hash computed);
- ``nochange_poll_s``: the same loader loading the same commit again (a new GitTree, as after a poll);
- ``one_file_changed_s``: loading the next commit, where one spec changed;
- ``dirtree_full_load_s`` / ``dirtree_nochange_s``: the same over the working directory
  (what ``validate`` does).

Targets: no-change poll of 1,000 specs under 150 ms; full load of 1,000 under 2 s.
Figures are printed as JSON (min / median / max seconds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.fixtures (git helpers)

from tests.fixtures.gitserver import init_work_repo, isolated_env

from flink_gitops.source.git import open_tree
from flink_gitops.source.tree import DirectoryTree, Tree
from flink_gitops.specs.loader import SpecLoader

T = TypeVar("T")
TARGET_NOCHANGE_1000_S = 0.150
TARGET_FULL_1000_S = 2.0


def spec_text(i: int, rnd: random.Random, *, parallelism: int | None = None) -> str:
    name = f"job-{i:05d}"
    team = f"team-{i // 100:03d}"
    p = parallelism if parallelism is not None else rnd.randint(1, 8)
    if i % 10 == 9:
        return f"""\
# yaml-language-server: $schema=../../schemas/flinksessionjob-v1beta1.json
apiVersion: flink.apache.org/v1beta1
kind: FlinkSessionJob
metadata:
  name: {name}
  namespace: flink
  labels: {{team: {team}}}
spec:
  deploymentName: default
  job:
    jarURI: artifacts/app.jar
    entryClass: com.example.jobs.Job{i % 7}
    args: ["--name", "{name}", "--rate", "{rnd.randint(1, 500)}"]
    parallelism: {p}
    upgradeMode: savepoint
    state: running
  flinkConfiguration:
    execution.checkpointing.interval: "30s"
"""
    mode = ["savepoint", "last-state", "stateless"][i % 3]
    return f"""\
# yaml-language-server: $schema=../../schemas/flinkjob-v1.json
apiVersion: flink-gitops/v1
kind: FlinkJob
metadata:
  name: {name}
  labels: {{team: {team}, tier: standard}}
  annotations:
    owner: {team}@example.com
spec:
  cluster: default
  job:
    jarURI: artifacts/app.jar
    entryClass: com.example.jobs.Job{i % 7}
    args: ["--name", "{name}", "--window", "{rnd.randint(1, 60)}m"]
    parallelism: {p}
    upgradeMode: {mode}
    state: running
    allowNonRestoredState: false
    savepointTriggerNonce: 0
  flinkConfiguration:
    execution.checkpointing.interval: 30s
    pipeline.max-parallelism: 128
    state.backend.type: rocksdb
  mode: streaming
  savepoints: {{periodic: 6h, maxCount: 10, maxAge: 7d}}
"""


def make_repo(root: Path, count: int) -> Path:
    rnd = random.Random(count)
    (root / "artifacts").mkdir(parents=True)
    (root / "artifacts/app.jar").write_bytes(rnd.randbytes(8 * 1024))
    for i in range(count):
        path = root / "jobs" / f"team-{i // 100:03d}" / f"job-{i:05d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec_text(i, rnd), encoding="utf-8")
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    repo = init_work_repo(root, isolated_env(home))
    repo.git("add", "-A")
    repo.commit(message=f"{count} specs")
    # the next commit changes one spec
    repo.commit(
        {"jobs/team-000/job-00000.yaml": spec_text(0, random.Random(0), parallelism=9)}, "scale job-00000"
    )
    return root


#: CPU seconds of this process per measurement name (the machine is shared: wall time depends on load).
CPU: dict[str, list[float]] = {}


def timed(fn: Callable[[], T], cpu_name: str | None = None) -> tuple[float, T]:
    start, cpu_start = time.perf_counter(), time.process_time()
    value = fn()
    if cpu_name is not None:
        CPU.setdefault(cpu_name, []).append(time.process_time() - cpu_start)
    return time.perf_counter() - start, value


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "min": round(min(samples), 4),
        "median": round(statistics.median(samples), 4),
        "max": round(max(samples), 4),
    }


def _load_git(loader: SpecLoader, repo: Path, ref: str, name: str) -> tuple[float, int]:
    tree = open_tree(repo, ref)
    try:
        seconds, state = timed(lambda: loader.load(tree), name)
    finally:
        tree.close()
    assert state.ok, state.problems[:3]
    return seconds, len(state.jobs)


def bench_size(count: int, rounds: int) -> dict[str, Any]:
    CPU.clear()
    with tempfile.TemporaryDirectory(prefix="bench-specs-") as tmp:
        gen_s, repo = timed(lambda: make_repo(Path(tmp) / "repo", count))
        full: list[float] = []
        nochange: list[float] = []
        one_changed: list[float] = []
        for _ in range(max(1, rounds // 2)):
            loader = SpecLoader()
            seconds, jobs = _load_git(loader, repo, "main~1", "full_load")
            assert jobs == count
            full.append(seconds)
            for _ in range(rounds):
                nochange.append(_load_git(loader, repo, "main~1", "nochange_poll")[0])
            one_changed.append(_load_git(loader, repo, "main", "one_file_changed")[0])
            assert loader.last_parsed == 1
        open_s = [timed(lambda: open_tree(repo, "main").close())[0] for _ in range(rounds)]
        dir_full: list[float] = []
        dir_nochange: list[float] = []
        for _ in range(max(1, rounds // 2)):
            dir_loader = SpecLoader()
            tree: Tree = DirectoryTree(repo)
            dir_full.append(timed(lambda: dir_loader.load(tree), "dirtree_full_load")[0])  # noqa: B023
            dir_nochange += [
                timed(lambda: dir_loader.load(tree), "dirtree_nochange")[0]  # noqa: B023 - called at once
                for _ in range(rounds)
            ]
        return {
            "specs": count,
            "generate_repo_s": round(gen_s, 2),
            "open_tree_s": _stats(open_s),
            "full_load_s": _stats(full),
            "nochange_poll_s": _stats(nochange),
            "one_file_changed_s": _stats(one_changed),
            "dirtree_full_load_s": _stats(dir_full),
            "dirtree_nochange_s": _stats(dir_nochange),
            # this process's CPU seconds (git cat-file's own CPU not included)
            "cpu_s": {name: _stats(samples) for name, samples in CPU.items()},
        }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated spec counts")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [bench_size(int(s), args.rounds) for s in args.sizes.split(",")]
    for r in sizes:
        if r["specs"] == 1000:
            r["targets_met"] = {
                "nochange_poll_under_150ms": r["nochange_poll_s"]["median"] < TARGET_NOCHANGE_1000_S,
                "full_load_under_2s": r["full_load_s"]["median"] < TARGET_FULL_1000_S,
            }
    results: dict[str, object] = {"sizes": sizes}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
