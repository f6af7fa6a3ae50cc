"""The local Flink launcher, the test jobs and the fixtures, against real Flink 2.3.0 and 1.20.5."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.errors import FlinkBadRequest, FlinkTemporaryError
from flink_gitops.flink.ids import new_trigger_id
from flink_gitops.flink.local import (
    LocalFlinkCluster,
    LocalFlinkError,
    ensure_flink,
    flink_version_of,
)
from flink_gitops.flink.models import RunRequest
from flink_gitops.flink.retry import RetryPolicy
from tests.fixtures.flink import (
    JobJars,
    cancel_all_jobs,
    jvms_mentioning,
    local_cluster,
    read_counts,
    wait_until,
)

KEYS = {f"key-{i}" for i in range(4)}


# --- install and configuration (no cluster started) ------------------------------------------


def test_ensure_flink_honours_flink_home_only_for_its_version(
    flink_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert flink_version_of(flink_home) == "2.3.0"
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "bin").symlink_to(flink_home / "bin")
    (copy / "lib").symlink_to(flink_home / "lib")
    monkeypatch.setenv("FLINK_HOME", str(copy))
    assert ensure_flink("2.3.0") == copy
    monkeypatch.setenv("FLINK_HOME", str(tmp_path))  # not a Flink home at all
    assert ensure_flink("2.3.0") == flink_home
    assert flink_version_of(tmp_path) is None
    with pytest.raises(LocalFlinkError):
        ensure_flink("2.3; rm -rf /")


def test_ensure_flink_installs_into_an_empty_cache_atomically(monkeypatch: pytest.MonkeyPatch) -> None:
    # a 2.x install is pip from the package index (~5 s, 378 MB, removed again);
    # the 1.20.5 path is exercised by flink120_home. `make test` exports FLINK_HOME: ignore it here.
    monkeypatch.delenv("FLINK_HOME", raising=False)
    cache = Path(tempfile.mkdtemp(prefix="flink-gitops-cache-"))
    try:
        home = ensure_flink("2.3.0", cache_dir=cache)
        assert home == cache.resolve() / "flink-2.3.0" / "pyflink"
        assert flink_version_of(home) == "2.3.0"
        assert os.access(home / "bin" / "jobmanager.sh", os.X_OK)
        assert sorted(p.name for p in cache.iterdir()) == ["flink-2.3.0", "flink-2.3.0.lock"]
        assert ensure_flink("2.3.0", cache_dir=cache) == home  # second call: no install
    finally:
        shutil.rmtree(cache)


@pytest.mark.parametrize(
    "home_fixture", ["flink_home", pytest.param("flink120_home", marks=pytest.mark.flink120)]
)
def test_configuration_is_private_and_keeps_shipped_java_opts(
    home_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    home: Path = request.getfixturevalue(home_fixture)
    shipped = yaml.safe_load((home / "conf" / "config.yaml").read_text())
    a = LocalFlinkCluster(home, tmp_path / "a")
    b = LocalFlinkCluster(home, tmp_path / "b")
    conf_a, conf_b = a.configuration(), b.configuration()
    assert conf_a["env.java.opts.all"] == shipped["env"]["java"]["opts"]["all"]
    ports = ("rest.port", "jobmanager.rpc.port", "blob.server.port")
    assert {str(conf_a[p]) for p in ports}.isdisjoint(str(conf_b[p]) for p in ports)
    for key in ("env.pid.dir", "io.tmp.dirs", "web.upload.dir", "web.tmpdir", "env.log.dir"):
        assert str(conf_a[key]).startswith(str(tmp_path / "a")), key
    assert conf_a["execution.checkpointing.dir"] == (tmp_path / "a" / "checkpoints").resolve().as_uri()
    assert conf_a["execution.checkpointing.externalized-checkpoint-retention"] == "RETAIN_ON_CANCELLATION"
    assert conf_a["taskmanager.numberOfTaskSlots"] == 4
    assert a.rest_url == f"http://127.0.0.1:{conf_a['rest.port']}"
    extra = LocalFlinkCluster(home, tmp_path / "c", extra_conf={"heartbeat.timeout": 5000})
    assert extra.configuration()["heartbeat.timeout"] == 5000


# --- read_counts ----------------------------------------------------------------------------

_file = st.tuples(
    st.integers(0, 7),  # subtask
    st.sampled_from(["a" * 32, "b" * 32]),  # job id
    st.integers(1, 10**6),  # written at
    st.dictionaries(st.sampled_from(sorted(KEYS)), st.integers(0, 10**9), max_size=4),
)


@given(files=st.lists(_file, max_size=6, unique_by=lambda f: f[0]))
def test_read_counts_takes_each_key_from_its_newest_file(
    files: list[tuple[int, str, int, dict[str, int]]],
) -> None:
    out = Path(tempfile.mkdtemp())
    try:
        for subtask, job, written, counts in files:
            body = "".join(f"{k}={v}\n" for k, v in counts.items())
            (out / f"counts-{subtask}.txt").write_text(f"# job={job} written={written}\n{body}")
        (out / ".counts-9.tmp").write_text("half-written")
        job_filter: str | None
        for job_filter in (None, "a" * 32):
            expected: dict[str, tuple[int, int]] = {}
            for _, file_job, written, counts in files:
                if job_filter is not None and file_job != job_filter:
                    continue
                for key, value in counts.items():
                    if key not in expected or expected[key][0] < written:
                        expected[key] = (written, value)
            got = read_counts(out, job_filter)
            assert set(got) == set(expected)
            for key, value in got.items():
                # equal timestamps: either file may win, but the value must come from one at that time
                newest = expected[key][0]
                assert any(
                    w == newest and c.get(key) == value
                    for _, j, w, c in files
                    if job_filter is None or j == job_filter
                )
    finally:
        shutil.rmtree(out)


# --- real clusters ----------------------------------------------------------------------------


def _exercise_jobs(cluster: LocalFlinkCluster, jars: JobJars, tmp_path: Path) -> None:
    """Stateful job: savepoint, restore continues the counts; changed uid refused; batch finishes."""
    out = tmp_path / "out"
    with FlinkClient(cluster.rest_url) as client:
        assert client.version().refresh_interval == 200  # job views cached 200 ms, not 3 s
        stateful = client.upload_jar(jars.stateful)
        args = ["--out", str(out), "--rate", "800"]
        first = client.run(
            stateful, RunRequest(entry_class=jars.stateful_entry, args=args, parallelism=2)
        ).jobid
        client.wait_for_job_state(first, {"RUNNING"}, 60, all_tasks_running=True)
        wait_until(
            "counts >= 200 for every key",
            lambda: (c := read_counts(out, first)).keys() == KEYS and min(c.values()) >= 200,
        )
        savepoint = client.wait_for_savepoint(
            first, client.stop_with_savepoint(first, trigger_id=new_trigger_id()), 60
        )
        client.wait_for_job_state(first, {"FINISHED"}, 30)
        before = read_counts(out, first)
        assert Path(urlparse(savepoint).path).parent == cluster.savepoint_dir

        changed = client.upload_jar(jars.stateful_uid_changed)
        with pytest.raises(FlinkBadRequest, match="Cannot map checkpoint/savepoint state"):
            client.run(
                changed,
                RunRequest(
                    entry_class=jars.stateful_entry, args=args, parallelism=2, savepoint_path=savepoint
                ),
            )

        restored = client.run(
            stateful,
            RunRequest(entry_class=jars.stateful_entry, args=args, parallelism=2, savepoint_path=savepoint),
        ).jobid
        try:

            def all_keys_counted() -> dict[str, int] | None:
                counts = read_counts(out, restored)
                return counts if counts.keys() == KEYS else None

            after = wait_until("the restored job's counts", all_keys_counted)
            assert all(after[key] > before[key] for key in KEYS), (before, after)
            restored_from = client.checkpoints(restored).latest.restored
            assert restored_from is not None
            assert restored_from.is_savepoint
            checkpoint = wait_until(
                "a completed checkpoint", lambda: client.checkpoints(restored).latest.completed, 30
            )
        finally:
            cancelled = cancel_all_jobs(cluster)  # the fixtures' clean-up helper
        assert cancelled == [restored]
        assert client.job(restored).state == "CANCELED"
        # cancelled: the last completed checkpoint is retained (RETAIN_ON_CANCELLATION)
        assert checkpoint.external_path is not None
        retained = Path(urlparse(checkpoint.external_path).path)
        assert retained.parent.parent == cluster.checkpoint_dir
        assert (retained / "_metadata").is_file()

        batch = client.upload_jar(jars.batch)
        done = client.run(
            batch, RunRequest(entry_class=jars.batch_entry, args=["--records", "1000", "--out", str(out)])
        ).jobid
        client.wait_for_job_state(done, {"FINISHED"}, 60)
        lines = (out / "batch-counts.txt").read_text().split()
        assert lines == [f"key-{i}=250" for i in range(4)]


def test_stateful_and_batch_jobs_on_flink_2_3(
    flink_cluster: LocalFlinkCluster, test_jars: JobJars, tmp_path: Path
) -> None:
    assert flink_cluster.version == "2.3.0"
    _exercise_jobs(flink_cluster, test_jars, tmp_path)


def test_the_same_jars_run_on_flink_1_20(
    flink120_cluster: LocalFlinkCluster, test_jars: JobJars, tmp_path: Path
) -> None:
    with FlinkClient(flink120_cluster.rest_url) as client:
        assert client.overview().flink_version == "1.20.5"
    _exercise_jobs(flink120_cluster, test_jars, tmp_path)


def test_two_clusters_side_by_side_and_nothing_survives_teardown(
    flink_cluster: LocalFlinkCluster, flink_home: Path
) -> None:
    workdir: Path | None = None
    with pytest.raises(RuntimeError, match="the test failed"), local_cluster(flink_home) as other:  # noqa: PT012
        workdir = other.workdir
        assert other.rest_url != flink_cluster.rest_url
        for cluster in (flink_cluster, other):
            with FlinkClient(cluster.rest_url) as client:
                overview = client.overview()
            assert (overview.taskmanagers, overview.slots_total) == (1, 4)
        assert set(other.processes()) == {"jobmanager", "taskmanager"}
        assert len(jvms_mentioning(str(workdir))) == 2

        other.kill_jobmanager()
        with (
            FlinkClient(other.rest_url, retry=RetryPolicy(max_attempts=1)) as client,
            pytest.raises(FlinkTemporaryError),
        ):
            client.overview()
        assert set(other.processes()) == {"taskmanager"}
        other.start_jobmanager(need_slots=False)
        with FlinkClient(other.rest_url) as client:
            assert client.overview().flink_version == "2.3.0"
        raise RuntimeError("the test failed")
    assert workdir is not None
    assert not workdir.exists()
    assert jvms_mentioning(str(workdir)) == []
    with FlinkClient(flink_cluster.rest_url) as client:  # the shared cluster is untouched
        assert client.overview().taskmanagers == 1


def test_a_cluster_that_cannot_start_raises_with_log_tails_and_leaves_no_jvm(
    flink_home: Path, tmp_path: Path
) -> None:
    cluster = LocalFlinkCluster(
        flink_home, tmp_path / "bad", extra_conf={"jobmanager.memory.process.size": "10m"}
    )
    with pytest.raises(LocalFlinkError, match="jobmanager exited") as caught:
        cluster.start()
    assert "---" in str(caught.value)  # the log tails
    assert cluster.processes() == {}
    assert jvms_mentioning(str(tmp_path / "bad")) == []


def test_jvms_die_with_the_process_that_started_them(flink_home: Path) -> None:
    """A SIGKILLed test run (or demo) cannot orphan its JVMs: they get SIGKILL from the kernel too."""
    workdir = Path(tempfile.mkdtemp(prefix="flink-gitops-orphan-"))
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from flink_gitops.flink.local import LocalFlinkCluster\n"
        "LocalFlinkCluster(Path(sys.argv[1]), Path(sys.argv[2])).start()\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(flink_home), str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        entrypoints = ("StandaloneSessionClusterEntrypoint", "TaskManagerRunner")

        def both_jvms_up() -> bool:
            cmdlines = []
            for pid in jvms_mentioning(str(workdir)):
                with contextlib.suppress(OSError):  # a config-parsing helper JVM may be gone already
                    cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
            return all(any(e.encode() in c for c in cmdlines) for e in entrypoints)

        wait_until("the JobManager and TaskManager JVMs", both_jvms_up, 90)
    finally:
        owner.kill()
        owner.wait()
    try:
        assert wait_until("the JVMs to die", lambda: jvms_mentioning(str(workdir)) == [], 15)
    finally:
        for pid in jvms_mentioning(str(workdir)):  # only if the assertion failed
            os.kill(pid, 9)
        shutil.rmtree(workdir, ignore_errors=True)
