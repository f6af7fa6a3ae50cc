"""Commit → RUNNING: how long after a commit the changed job runs, with a signed webhook and with
polling (a REAL local Flink 2.3 cluster, a real local Git repository, ``flink-gitops run`` as a
subprocess with SQLite and the API).

Run: ``.venv/bin/python bench/bench_loop.py [--samples 5] [--poll 10]``.

Each sample commits a new event rate for a stateless job (cancel, then start fresh: the deploy
path without a savepoint wait) and measures from the commit to (a) the new job listed RUNNING in
Flink's ``/jobs/overview`` and (b) the daemon recording it stable (after ``sync.stability_s``, 2 s
here, of the job running with all tasks up). Webhook: the poll interval is an hour and a signed
generic webhook is sent right after the commit. Watcher: the same hour, and the file watcher on
the local repository's refs (``git.watch``) triggers the cycle. Polling: ``git.poll_interval_s``
``--poll``, no webhook and no watcher, so the latency is the wait for the next poll (uniform in
0..interval) plus the same deploy time.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import re
import secrets
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from flink_gitops.cli.demo_loop import Api, daemon, wait_for, write_private
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.local import DEFAULT_VERSION, LocalFlinkCluster, ensure_flink
from flink_gitops.record.keys import generate_key_file
from flink_gitops.service.api import hash_token
from flink_gitops.source.git import commit_files, seed_repository

ROOT = Path(__file__).resolve().parents[1]
JOB = "payments-audit-tail"
FILE = "jobs/payments.yaml"


def _config(
    work: Path, rest_url: str, repo: Path, poll_s: float, token: str, secret: str, watch: bool
) -> Path:
    state = work / "state"
    generate_key_file(state / "audit.key")
    config = {
        "state_dir": str(state),
        "clusters": {"default": {"url": rest_url}},
        "git": {"url": str(repo), "poll_interval_s": poll_s, "poll_jitter_s": 0.0, "watch": watch},
        "audit": {"key_file": str(state / "audit.key")},
        "http": {
            "port": 0,
            "tokens": {"file": str(write_private(work / "tokens", f"operator:{hash_token(token)}"))},
            "webhook_secret": {"file": str(write_private(work / "webhook-secret", secret))},
        },
        "sync": {"stability_s": 2.0},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _api_url(log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"api listening on (http://\S+)", log.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.1)
    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
    raise RuntimeError(f"the daemon's API did not come up: {log}:\n{tail}")


def _webhook(url: str, secret: str) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{url}/webhooks/generic", data=body, headers={"X-Signature-256": f"sha256={sig}"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 202), answer.status


def _rate(repo: Path, n: int) -> dict[str, str]:
    text = (repo / FILE).read_text(encoding="utf-8")
    start = text.index(f'args: ["{JOB}", "')
    end = text.index('"]', start)
    return {FILE: text[:start] + f'args: ["{JOB}", "{5 + n}' + text[end:]}


def _session(
    cluster: LocalFlinkCluster, work: Path, poll_s: float, samples: int, hook: bool, watch: bool
) -> list[Any]:
    work.mkdir()
    repo = work / "repo"
    seed_repository(ROOT / "example-repo", repo, message="example jobs")
    token, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    config = _config(work, cluster.rest_url, repo, poll_s, token, secret, watch)
    out: list[dict[str, float]] = []
    with daemon(config, work / "daemon.log") as proc, FlinkClient(cluster.rest_url, name="bench") as flink:
        api = Api(_api_url(work / "daemon.log"), token)
        if hook or watch:
            _webhook(api.base, secret)  # the first deploy, without waiting an hour
        wait_for("the example jobs", lambda: api.jobs() if _all_stable(api) else None, proc)
        for n in range(1, samples + 1):
            old = api.job(JOB)["flink_job_id"]
            committed = time.monotonic()
            commit_files(repo, _rate(repo, n), message=f"rate {n}")
            if hook:
                _webhook(api.base, secret)

            def new_running(old: str = old) -> str | None:
                # from Flink itself: the daemon records the new id only once it is stable
                for job in flink.jobs_overview().jobs:
                    if job.name == JOB and job.jid != old and job.state == "RUNNING":
                        return job.jid
                return None

            wait_for("the new job RUNNING", new_running, proc)
            running = time.monotonic() - committed

            def stable(old: str = old) -> bool | None:
                job = api.job(JOB)
                return (job["state"] == "stable" and job["flink_job_id"] != old) or None

            wait_for("stable", stable, proc)
            out.append({"running_s": round(running, 2), "stable_s": round(time.monotonic() - committed, 2)})
            print(f"  {work.name} sample {n}: {out[-1]}", flush=True)
    return out


def _all_stable(api: Api) -> bool:
    jobs = api.jobs()
    streaming = {"orders-enricher", "payments-fraud-score", JOB, "inventory-sync"}
    return streaming <= set(jobs) and all(jobs[n]["state"] == "stable" for n in streaming)


def _summary(samples: list[dict[str, float]], key: str) -> dict[str, float]:
    values = [s[key] for s in samples]
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--poll", type=float, default=10.0)
    args = parser.parse_args()
    home = ensure_flink(DEFAULT_VERSION)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        modes = (
            ("webhook", 3600.0, True, False),
            ("watcher", 3600.0, False, True),
            (f"poll_{args.poll:g}s", args.poll, False, False),
        )
        for label, poll_s, hook, watch in modes:
            with LocalFlinkCluster(home, Path(tmp) / f"cluster-{label}", slots=8) as cluster:
                samples = _session(cluster, Path(tmp) / label, poll_s, args.samples, hook, watch)
            results[label] = {
                "running_s": _summary(samples, "running_s"),
                "stable_s": _summary(samples, "stable_s"),
                "samples": samples,
            }
            r = results[label]
            print(
                f"{label}: commit -> RUNNING median {r['running_s']['median']} s "
                f"(min {r['running_s']['min']}, max {r['running_s']['max']}); "
                f"-> stable median {r['stable_s']['median']} s",
                flush=True,
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
