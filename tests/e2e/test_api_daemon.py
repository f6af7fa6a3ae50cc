"""The HTTP API of `flink-gitops run` as a real subprocess against real Flink 2.3 and a real Git
remote: polling is off (an hour's interval), so only a signed webhook makes the daemon see a pushed
commit; unsigned or wrongly signed ones are refused and trigger nothing; the auth matrix holds on the
live daemon; no token or secret reaches its log or its responses."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from flink_gitops.service.api import hash_token
from tests.e2e.harness import CLI, Gitops
from tests.fixtures import secretscan
from tests.fixtures.flink import cancel_all_jobs, wait_until
from tests.fixtures.gitserver import Remote

VIEWER = "e2e-viewer-token-5b1f0c"
OPERATOR = "e2e-operator-token-9d2a7e"
SECRET = "e2e-webhook-secret-41c8"


@pytest.fixture
def g(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    world = Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    tokens = world.root / "tokens"
    tokens.write_text(f"viewer:{hash_token(VIEWER)}\noperator:{hash_token(OPERATOR)}\n", encoding="utf-8")
    secret = world.root / "webhook.secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    config: dict[str, Any] = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    config["git"]["poll_interval_s"] = 3600  # no polling: only the first cycle and webhooks
    config["sync"]["stability_s"] = 5  # room to push a commit while an upgrade waits for stability
    config["http"] = {"port": 0, "tokens": {"file": str(tokens)}, "webhook_secret": {"file": str(secret)}}
    world.config.write_text(yaml.safe_dump(config), encoding="utf-8")
    yield world
    cancel_all_jobs(flink_cluster)


def stable_job(g: Gitops, name: str, other_than: str | None = None) -> str:
    def probe() -> str | None:
        s = g.status(name)
        ok = s["lifecycle"] == "stable" and s["openOperation"] is None and s["flinkJobId"] != other_than
        return s["flinkJobId"] if ok else None

    return wait_until(f"{name} stable (not {other_than})", probe, 120)


def test_a_signed_webhook_upgrades_a_pushed_commit_and_unsigned_ones_trigger_nothing(g: Gitops) -> None:
    g.put_job("orders")
    log = g.root / "daemon.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [*CLI, "--config", str(g.config), "run"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )

    def text() -> str:
        return log.read_text(encoding="utf-8", errors="replace")

    responses: list[str] = []
    try:
        found = wait_until("api listening", lambda: re.search(r"api listening on (http://\S+)", text()), 60)
        api = secretscan.scanning_client(base_url=found.group(1), timeout=10)
        first = stable_job(g, "orders")
        viewer = {"Authorization": f"Bearer {VIEWER}"}
        operator = {"Authorization": f"Bearer {OPERATOR}"}

        # the auth matrix on the live daemon, and what the store says
        assert api.get("/healthz").status_code == 200
        assert api.get("/readyz").status_code == 200
        assert api.get("/api/v1/jobs").status_code == 401
        assert api.get("/api/v1/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
        listed = api.get("/api/v1/jobs", headers=viewer)
        assert listed.status_code == 200
        (job,) = listed.json()
        assert (job["name"], job["flink_job_id"], job["state"]) == ("orders", first, "stable")
        detail = api.get("/api/v1/jobs/orders", headers=viewer).json()
        assert detail["spec_hash"]
        assert detail["commit"]
        assert api.post("/api/v1/sync", headers=viewer).status_code == 403
        audit = api.get("/api/v1/audit", params={"job": "orders"}, headers=viewer)
        assert audit.status_code == 200, audit.text
        assert audit.json(), audit.text
        responses += [listed.text, json.dumps(detail), audit.text]

        # a pushed commit: unsigned and wrongly signed webhooks are refused, nothing triggered
        g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"])
        body = json.dumps({"ref": "refs/heads/main"}).encode()
        bad = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        for headers in ({}, {"X-Hub-Signature-256": f"sha256={bad}"}):
            r = api.post("/webhooks/github", content=body, headers=headers)
            assert r.status_code == 401, r.text
            responses.append(r.text)
        assert "cycle requested: webhook" not in text()
        assert g.status("orders")["flinkJobId"] == first

        # a signed one: a cycle at once, the commit is seen and the job upgraded through a savepoint
        good = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        t0 = time.monotonic()
        r = api.post("/webhooks/github", content=body, headers={"X-Hub-Signature-256": f"sha256={good}"})
        assert r.status_code == 202, r.text
        second = stable_job(g, "orders", other_than=first)
        latency = time.monotonic() - t0
        assert g.live_jobs() == [second]
        print(f"webhook -> upgraded and stable: {latency:.1f} s")
        cycles = text().count("cycle rev=")
        r = api.post("/api/v1/sync", params={"job": "orders"}, headers=operator)
        assert r.status_code == 202, r.text

        # a commit pushed while a webhook's cycle runs (its new job started, the cycle waiting for it
        # to be stable), and its own webhook then: not lost (one more cycle after the running one),
        # though polling is off
        signed = {"X-Hub-Signature-256": f"sha256={good}"}
        g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "130", "--keys", "4"])
        wait_until("the sync's cycle ended", lambda: text().count("cycle rev=") == cycles + 1 or None, 30)
        assert api.post("/webhooks/github", content=body, headers=signed).status_code == 202
        wait_until("the upgrade's new job", lambda: g.live_jobs() not in ([], [second]) or None, 60)
        ended = text().count("cycle rev=")
        last = g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "140", "--keys", "4"])
        assert api.post("/webhooks/github", content=body, headers=signed).status_code == 202
        # Usually the webhook lands while that cycle still waits for its new job (then only the
        # trigger-during-a-cycle path can deploy `last`); on a loaded machine the cycle may have
        # ended first. Either way the last pushed commit must be deployed, with polling off.
        mid_cycle = text().count("cycle rev=") == ended
        print(f"webhook during the running cycle: {mid_cycle}")

        def state() -> str:
            got: dict[str, Any] = api.get("/api/v1/jobs/orders", headers=viewer).json()
            return f"{got['state']} {got['commit']}"

        def deployed_last() -> bool:
            return state() == f"stable {last}"

        wait_until("the last pushed commit deployed", deployed_last, 120)
        api.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, text()[-3000:]
    out = text()
    assert "cycle requested: webhook github" in out
    for secret in (VIEWER, OPERATOR, SECRET, hash_token(VIEWER), hash_token(OPERATOR)):
        assert secret not in out
        assert all(secret not in r for r in responses)
