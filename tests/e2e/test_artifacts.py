"""Artifacts end to end on the real Flink 2.3 cluster, through `flink-gitops sync --once`:

- an https:// jar served from loopback by a real TLS server (tests/fixtures/jarserver.py, its CA
  trusted through ``artifact_download.ca_file``): the right jarSha256 deploys; a wrong one is
  refused, naming the expected and the found digest, and nothing on the cluster changes;
- an unpinned https jar (allowed) is hashed by its bytes: new bytes behind the same URL upgrade
  the job, the same bytes do nothing;
- jar reuse and cleanup, counted with GET /jars: two jobs with the same jar → one upload; a second
  cycle → no upload; once no job references a jar it is deleted; a jar uploaded by hand never is.

The cluster is shared by the whole run (other tests' jars are on it too), so jars are counted as
the difference to what was listed before.
"""

from __future__ import annotations

import hashlib
import io
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from tests.e2e.harness import Gitops
from tests.fixtures.flink import cancel_all_jobs
from tests.fixtures.gitserver import Remote
from tests.fixtures.jarserver import JarServer


@pytest.fixture
def gitops(
    tmp_path: Path,
    remote: Remote,
    flink_cluster: LocalFlinkCluster,
    test_jars: JobJars,
    jar_server: JarServer,
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    g = Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    configure(g, artifact_download={"ca_file": str(jar_server.ca_file), "timeout_s": 30})
    yield g
    cancel_all_jobs(flink_cluster)


def configure(g: Gitops, **top: Any) -> None:
    config = yaml.safe_load(g.config.read_text(encoding="utf-8"))
    config.update(top)
    g.config.write_text(yaml.safe_dump(config), encoding="utf-8")


def variant(jar: Path, tag: str) -> bytes:
    """The same classes with one more entry: other bytes, another digest, the same job."""
    out = io.BytesIO()
    with zipfile.ZipFile(jar) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr("META-INF/variant.txt", tag)
    return out.getvalue()


def jar_ids(g: Gitops) -> dict[str, str]:
    """Jar id -> file name, as GET /jars lists them."""
    with g.client() as c:
        return {f.id: f.name for f in c.jars().files}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stable(g: Gitops, name: str) -> str:
    status = g.status(name)
    assert status["lifecycle"] == "stable", status
    job_id = status["flinkJobId"]
    assert isinstance(job_id, str)
    assert g.running(job_id)
    return job_id


def test_an_https_jar_deploys_with_the_right_sha256_and_is_refused_with_a_wrong_one(
    gitops: Gitops, jar_server: JarServer
) -> None:
    g = gitops
    good = g.jars.stateful.read_bytes()
    jar_server.files["counter.jar"] = good
    url = jar_server.url("/jars/counter.jar")
    g.put_job("orders", jar=url, jarSha256=sha(good))
    g.synced()
    first = _stable(g, "orders")
    assert jar_server.hits["/jars/counter.jar"] == 1
    before = jar_ids(g)

    other = variant(g.jars.stateful, "v2")
    jar_server.files["counter-v2.jar"] = other
    wrong = "0" * 64
    g.put_job("orders", jar=jar_server.url("/jars/counter-v2.jar"), jarSha256=wrong)
    proc = g.sync()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = proc.stdout + proc.stderr
    assert "refused" in report
    assert wrong in report
    assert sha(other) in report
    assert "Traceback" not in report
    # nothing changed on the cluster: the same job runs, no jar was uploaded
    assert g.live_jobs() == [first]
    assert jar_ids(g) == before
    assert g.status("orders")["flinkJobId"] == first


def test_new_bytes_behind_the_same_unpinned_url_are_a_change(gitops: Gitops, jar_server: JarServer) -> None:
    g = gitops
    configure(g, allow_unpinned_artifacts=True)
    jar_server.files["latest.jar"] = g.jars.stateful.read_bytes()
    url = jar_server.url("/jars/latest.jar")
    g.put_job("orders", jar=url)
    g.synced()
    first = _stable(g, "orders")
    assert "in sync" in g.synced().stdout  # the same bytes: nothing to do
    assert g.live_jobs() == [first]
    jar_server.files["latest.jar"] = variant(g.jars.stateful, "v2")  # same URL, new bytes
    g.synced()
    second = _stable(g, "orders")
    assert second != first
    assert g.restored_from(second) == g.status("orders")["savepoint"]  # an upgrade, state kept


def test_one_upload_per_jar_reused_across_jobs_and_cycles_and_unreferenced_jars_deleted(
    gitops: Gitops, tmp_path: Path
) -> None:
    g = gitops
    before = jar_ids(g)
    with g.client() as c:
        by_hand = c.upload_jar(g.jars.batch)  # someone else's jar: never ours to delete
    g.commit(
        {
            "jobs/a.yaml": g.job_yaml("a", jar="artifacts/counter.jar"),
            "jobs/b.yaml": g.job_yaml("b", jar="artifacts/counter.jar"),
        }
    )
    g.synced()
    _stable(g, "a")
    _stable(g, "b")
    ours = {i: n for i, n in jar_ids(g).items() if i not in before and i != by_hand}
    assert len(ours) == 1, ours  # two jobs, one jar, one upload
    counter_jar = next(iter(ours))

    g.synced()  # a second cycle: nothing uploaded, nothing deleted
    assert {i for i in jar_ids(g) if i not in before} == {counter_jar, by_hand}

    # b moves to other bytes: uploaded once; counter.jar is still a's
    g.commit({"artifacts/counter-v2.jar": variant(g.jars.stateful, "v2")})
    g.put_job("b", jar="artifacts/counter-v2.jar")
    g.synced()
    _stable(g, "b")
    now = {i for i in jar_ids(g) if i not in before}
    assert counter_jar in now
    assert len(now) == 3, now
    (v2_jar,) = now - {counter_jar, by_hand}

    # a moves too: nothing references counter.jar any more, so it is deleted; v2 is reused
    g.put_job("a", jar="artifacts/counter-v2.jar")
    g.synced()
    _stable(g, "a")
    assert {i for i in jar_ids(g) if i not in before} == {v2_jar, by_hand}
    audit = g.cli("audit", "show", "--action", "jar.delete", "--output", "jsonl", check=True).stdout
    assert counter_jar in audit
    with g.client() as c:
        c.delete_jar(by_hand)


def test_killed_right_after_an_upload_the_next_run_adopts_that_jar(gitops: Gitops) -> None:
    """SIGKILL between the upload and its record: the next run finds the jar Flink has (our file name,
    uploaded after the recorded intent) and uses it; no second upload, no orphan."""
    g = gitops
    g.put_job("orders")
    g.synced()
    first = _stable(g, "orders")
    before = jar_ids(g)
    v2 = variant(g.jars.stateful, "crash")
    g.commit({"artifacts/counter-v2.jar": v2})
    g.put_job("orders", jar="artifacts/counter-v2.jar")
    killed = g.sync(env={"FLINK_GITOPS_KILL_AT": "upload-sent"})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    uploaded = {i: n for i, n in jar_ids(g).items() if i not in before}
    assert list(uploaded.values()) == [f"{sha(v2)}.jar"]
    g.synced()
    second = _stable(g, "orders")
    assert second != first
    now = {i: n for i, n in jar_ids(g).items() if i not in before}
    assert now == uploaded  # adopted: the same jar id, nothing uploaded again
    assert g.live_jobs() == [second]


def test_a_jar_deleted_by_hand_is_uploaded_again_when_needed(gitops: Gitops) -> None:
    g = gitops
    others = jar_ids(g)  # the shared cluster holds other tests' copies of the same jar
    g.put_job("orders")
    g.synced()
    first = _stable(g, "orders")
    (ours,) = set(jar_ids(g)) - set(others)
    with g.client() as c:
        c.delete_jar(ours)
    g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"])
    g.synced()  # Flink no longer lists the recorded jar: uploaded again, the upgrade goes through
    second = _stable(g, "orders")
    assert second != first
    (again,) = set(jar_ids(g)) - set(others)
    assert again != ours
