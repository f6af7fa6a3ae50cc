"""FlinkClient against REAL local Flink clusters (2.3.0 always, a core subset on 1.20.5 too).

Covers upload, run, savepoint, stop-with-savepoint, restore with the keyed counts continuing
(read from the StatefulCounter's output files, i.e. the job's own state), cancel, the real
cause of a failed run (missing savepoint path, changed operator uid), DuplicateJobId, jar
deletion and savepoint disposal. Every job started here is cancelled or stopped here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.errors import (
    DuplicateJobId,
    FlinkBadRequest,
    FlinkConflict,
    FlinkNotFound,
    FlinkProgramError,
    FlinkStillRunning,
    JobEnded,
    SavepointFailed,
    UnknownTrigger,
)
from flink_gitops.flink.ids import deterministic_job_id, new_trigger_id
from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.models import TERMINAL_STATES, RunRequest
from tests.fixtures.flink import JobJars, local_cluster, read_counts, wait_until

WAIT_S = 60.0
POLL_S = 0.1


def fresh_id(*parts: str) -> str:
    """A deterministic id per (test, run): the run part keeps reruns against one cluster apart."""
    return deterministic_job_id("client-it", uuid.uuid4().hex, *parts)


@dataclass
class Env:
    cluster: LocalFlinkCluster
    client: FlinkClient
    jars: JobJars
    stateful_jar: str

    def run_counter(self, out: Path, job_id: str, **kw: object) -> str:
        request = RunRequest(
            entry_class=self.jars.stateful_entry,
            args=["--out", str(out), "--rate", "200"],
            job_id=job_id,
            **kw,
        )
        result = self.client.run(self.stateful_jar, request)
        assert result.jobid == job_id
        return result.jobid

    def running(self, job_id: str) -> None:
        self.client.wait_for_job_state(job_id, {"RUNNING"}, WAIT_S, poll_s=POLL_S, all_tasks_running=True)

    def savepoints_of(self, job_id: str) -> list[Path]:
        """The savepoint directories Flink wrote for ``job_id`` (named savepoint-<first 6 hex>-...)."""
        return sorted(self.cluster.savepoint_dir.glob(f"savepoint-{job_id[:6]}-*"))

    def cancel_quietly(self, job_id: str) -> None:
        """Cancel unless already terminal (job views are cached ~200 ms, so a 409 can still come)."""
        if self.client.job(job_id).state in TERMINAL_STATES:
            return
        try:
            self.client.cancel(job_id)
        except FlinkConflict:
            return
        self.client.wait_for_job_state(job_id, {"CANCELED"}, WAIT_S, poll_s=POLL_S)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("flink_cluster", marks=pytest.mark.flink, id="flink-2.3"),
        pytest.param("flink120_cluster", marks=pytest.mark.flink120, id="flink-1.20"),
    ],
)
def env(request: pytest.FixtureRequest, test_jars: JobJars) -> Iterator[Env]:
    cluster: LocalFlinkCluster = request.getfixturevalue(request.param)
    with FlinkClient(cluster.rest_url, name=f"it-{cluster.version}") as client:
        jar_id = client.upload_jar(test_jars.stateful)
        yield Env(cluster, client, test_jars, jar_id)
        client.delete_jar(jar_id)


def test_version_and_overview(env: Env) -> None:
    assert env.client.version().flink_version == env.cluster.version
    overview = env.client.overview()
    assert overview.taskmanagers == 1
    assert overview.slots_total == env.cluster.slots
    assert overview.flink_version == env.cluster.version


def test_stop_with_savepoint_and_restore_continues_the_counts(env: Env, tmp_path: Path) -> None:
    client = env.client
    first = env.run_counter(tmp_path / "a", fresh_id("first"))
    try:
        env.running(first)
        wait_until("counts", lambda: (c := read_counts(tmp_path / "a", first)) and min(c.values()) >= 100)
        # A plain savepoint keeps the job running; dispose of it afterwards.
        extra = client.wait_for_savepoint(
            first, client.trigger_savepoint(first, trigger_id=new_trigger_id()), poll_s=POLL_S
        )
        assert Path(extra.removeprefix("file:")).is_dir()
        assert client.job(first).state == "RUNNING"

        location = client.wait_for_savepoint(
            first, client.stop_with_savepoint(first, trigger_id=new_trigger_id()), poll_s=POLL_S
        )
        client.wait_for_job_state(first, {"FINISHED"}, WAIT_S, poll_s=POLL_S)
    finally:
        env.cancel_quietly(first)
    assert Path(location.removeprefix("file:")).is_dir()
    at_stop = read_counts(tmp_path / "a", first)
    assert set(at_stop) == {f"key-{i}" for i in range(4)}

    second = env.run_counter(tmp_path / "b", fresh_id("second"), savepoint_path=location)
    try:
        env.running(second)
        after = wait_until(
            "restored counts", lambda: c if len(c := read_counts(tmp_path / "b", second)) == 4 else None
        )
        # Restored from state: every key continues where it stopped, none restarts from zero.
        for key, count in at_stop.items():
            assert after[key] >= count, (key, after[key], count)
        restored = client.checkpoints(second).latest.restored
        assert restored is not None
        assert restored.is_savepoint
        assert restored.external_path == location
        assert client.exceptions(second).root_cause() is None
    finally:
        env.cancel_quietly(second)
    assert client.job(second).state == "CANCELED"
    # NO_CLAIM (the default): Flink left the savepoint for us (rollback needs it).
    assert Path(location.removeprefix("file:")).is_dir()

    client.wait_for_disposal(client.dispose_savepoint(extra), poll_s=POLL_S)
    assert not Path(extra.removeprefix("file:")).exists()


def test_missing_savepoint_path_surfaces_the_real_cause(env: Env, tmp_path: Path) -> None:
    job_id = fresh_id("missing")
    missing = tmp_path / "no-such-savepoint"
    with pytest.raises(FlinkBadRequest) as info:
        env.run_counter(tmp_path / "out", job_id, savepoint_path=str(missing))
    message = str(info.value)
    assert "Cannot find checkpoint or savepoint" in message
    assert str(missing) in message
    assert info.value.path == f"/jars/{env.stateful_jar}/run"
    # Flink still lists a FAILED job under that id, and its exceptions parse on both versions.
    assert env.client.job(job_id).state == "FAILED"
    cause = env.client.exceptions(job_id).root_cause()
    assert cause is not None
    assert "Cannot find checkpoint or savepoint" in cause
    print(f"\n{env.cluster.version} missing savepoint: {message}\n  exceptions root cause: {cause}")


def test_duplicate_job_id_is_its_own_error(env: Env, tmp_path: Path) -> None:
    job_id = fresh_id("dup")
    env.run_counter(tmp_path / "out", job_id)
    try:
        with pytest.raises(DuplicateJobId) as info:
            env.run_counter(tmp_path / "out2", job_id)
        assert info.value.job_id == job_id
        print(f"\n{env.cluster.version} duplicate: {info.value.__cause__}")
    finally:
        env.cancel_quietly(job_id)
    # Still refused once the first job is terminal but listed.
    with pytest.raises(DuplicateJobId):
        env.run_counter(tmp_path / "out3", job_id)


def test_savepoint_of_a_finished_job_is_savepoint_failed(env: Env, tmp_path: Path) -> None:
    job_id = fresh_id("finished")
    env.run_counter(tmp_path / "out", job_id)
    env.cancel_quietly(job_id)
    with pytest.raises(SavepointFailed):
        env.client.wait_for_savepoint(
            job_id, env.client.trigger_savepoint(job_id, trigger_id=new_trigger_id()), poll_s=POLL_S
        )


# --- idempotent triggers: our trigger id, sent twice, is one operation ------------------------------


def test_savepoint_with_our_trigger_id_is_one_operation_however_often_sent(env: Env, tmp_path: Path) -> None:
    client = env.client
    job = env.run_counter(tmp_path / "out", fresh_id("idem-savepoint"))
    try:
        env.running(job)
        trigger = new_trigger_id()
        # Sent twice back to back (a resumed step after a crash), then once more after it completed.
        assert client.trigger_savepoint(job, trigger_id=trigger) == trigger
        assert client.trigger_savepoint(job, trigger_id=trigger) == trigger
        location = client.wait_for_savepoint(job, trigger, poll_s=POLL_S)
        assert client.trigger_savepoint(job, trigger_id=trigger) == trigger
        again = client.savepoint_status(job, trigger)  # GET by our own trigger id
        assert again.completed
        assert again.operation is not None
        assert again.operation.location == location
        assert client.wait_for_savepoint(job, trigger, poll_s=POLL_S) == location
        # Nothing new was started: one savepoint directory for this job, the job still runs.
        assert env.savepoints_of(job) == [Path(location.removeprefix("file:"))]
        assert client.checkpoints(job).latest_savepoint_path == location
        assert client.job(job).state == "RUNNING"
        # A trigger id Flink never saw for this job is its own error (safe to send it then).
        with pytest.raises(UnknownTrigger) as unknown:
            client.savepoint_status(job, new_trigger_id())
        print(f"\n{env.cluster.version} unknown trigger: {unknown.value}")
    finally:
        env.cancel_quietly(job)


def test_stop_with_our_trigger_id_repeats_as_the_same_stop_after_the_job_finished(
    env: Env, tmp_path: Path
) -> None:
    client = env.client
    job = env.run_counter(tmp_path / "out", fresh_id("idem-stop"))
    try:
        env.running(job)
        trigger = new_trigger_id()
        assert client.stop_with_savepoint(job, trigger_id=trigger) == trigger
        assert client.stop_with_savepoint(job, trigger_id=trigger) == trigger
        location = client.wait_for_savepoint(job, trigger, poll_s=POLL_S)
        client.wait_for_job_state(job, {"FINISHED"}, WAIT_S, poll_s=POLL_S)
        # The stop finished and the job is FINISHED: the same request still answers 202 with the
        # same operation and its savepoint, instead of a failed new stop.
        assert client.stop_with_savepoint(job, trigger_id=trigger) == trigger
        assert client.wait_for_savepoint(job, trigger, poll_s=POLL_S) == location
        status = client.savepoint_status(job, trigger)
        assert status.operation is not None
        assert status.operation.failure_cause is None
        assert len(env.savepoints_of(job)) == 1
        assert client.job(job).state == "FINISHED"
        assert client.checkpoints(job).latest_savepoint_path == location
        # A new trigger id for the finished job is a new stop, and it fails.
        with pytest.raises(SavepointFailed):
            client.wait_for_savepoint(
                job, client.stop_with_savepoint(job, trigger_id=new_trigger_id()), poll_s=POLL_S
            )
    finally:
        env.cancel_quietly(job)
    assert Path(location.removeprefix("file:")).is_dir()


def test_a_trigger_id_reused_for_another_kind_of_operation(env: Env, tmp_path: Path) -> None:
    """Measured: Flink keys savepoints and stops by (job, trigger id) in one cache, so a stop sent
    with a savepoint's trigger id is taken for a repeat of that savepoint: the job is NOT stopped.
    Callers must use one fresh trigger id per operation."""
    client = env.client
    job = env.run_counter(tmp_path / "out", fresh_id("idem-reuse"))
    try:
        env.running(job)
        trigger = new_trigger_id()
        location = client.wait_for_savepoint(
            job, client.trigger_savepoint(job, trigger_id=trigger), poll_s=POLL_S
        )
        assert client.stop_with_savepoint(job, trigger_id=trigger) == trigger
        assert client.wait_for_savepoint(job, trigger, poll_s=POLL_S) == location
        with pytest.raises(FlinkStillRunning):
            client.wait_for_job_state(job, {"FINISHED"}, 1.0, poll_s=POLL_S)
        assert client.job(job).state == "RUNNING"
        assert len(env.savepoints_of(job)) == 1
    finally:
        env.cancel_quietly(job)


def test_wait_for_job_state_raises_job_ended_and_suspended_is_not_terminal(env: Env, tmp_path: Path) -> None:
    job = env.run_counter(tmp_path / "out", fresh_id("ended"))
    env.running(job)
    env.cancel_quietly(job)
    with pytest.raises(JobEnded) as info:
        env.client.wait_for_job_state(job, {"RUNNING"}, WAIT_S, poll_s=POLL_S)
    assert (info.value.job_id, info.value.state) == (job, "CANCELED")
    assert "SUSPENDED" not in TERMINAL_STATES


def _forgotten(client: FlinkClient, job_id: str, trigger_id: str) -> bool:
    try:
        client.savepoint_status(job_id, trigger_id)
    except UnknownTrigger:
        return True
    return False


@pytest.mark.parametrize(
    "home",
    [
        pytest.param("flink_home", marks=pytest.mark.flink, id="flink-2.3"),
        pytest.param("flink120_home", marks=pytest.mark.flink120, id="flink-1.20"),
    ],
)
def test_once_flink_forgot_a_trigger_the_same_id_starts_a_new_operation(
    request: pytest.FixtureRequest, home: str, test_jars: JobJars, tmp_path: Path
) -> None:
    """Idempotence lasts while Flink keeps the result: ``rest.async.store-duration`` (default 5 min)
    after the operation ended, on that JobManager. Here 1 s, on a private cluster."""
    flink_home: Path = request.getfixturevalue(home)
    with (
        local_cluster(flink_home, extra_conf={"rest.async.store-duration": "1 s"}) as cluster,
        FlinkClient(cluster.rest_url, name="forgetful") as client,
    ):
        env = Env(cluster, client, test_jars, client.upload_jar(test_jars.stateful))
        job = env.run_counter(tmp_path / "out", fresh_id("forgotten"))
        env.running(job)
        trigger = new_trigger_id()
        first = client.wait_for_savepoint(
            job, client.trigger_savepoint(job, trigger_id=trigger), poll_s=POLL_S
        )
        wait_until("the savepoint forgotten", lambda: _forgotten(client, job, trigger))
        second = client.wait_for_savepoint(
            job, client.trigger_savepoint(job, trigger_id=trigger), poll_s=POLL_S
        )
        assert second != first
        assert len(env.savepoints_of(job)) == 2  # a second savepoint was taken

        stop = new_trigger_id()
        stopped_at = client.wait_for_savepoint(
            job, client.stop_with_savepoint(job, trigger_id=stop), poll_s=POLL_S
        )
        client.wait_for_job_state(job, {"FINISHED"}, WAIT_S, poll_s=POLL_S)
        wait_until("the stop forgotten", lambda: _forgotten(client, job, stop))
        # Now the same stop is a new one, against a finished job: it fails. The job's own
        # checkpoint statistics still name the savepoint the first stop took.
        with pytest.raises(SavepointFailed, match="FlinkJobNotFoundException") as info:
            client.wait_for_savepoint(job, client.stop_with_savepoint(job, trigger_id=stop), poll_s=POLL_S)
        assert client.checkpoints(job).latest_savepoint_path == stopped_at
        print(f"\n{cluster.version} stop re-sent after Flink forgot it: {info.value}")


# --- 2.3 only below: the rest of the surface ---------------------------------------------------------


@pytest.fixture(scope="module")
def env23(flink_cluster: LocalFlinkCluster, test_jars: JobJars) -> Iterator[Env]:
    with FlinkClient(flink_cluster.rest_url, name="it-2.3") as client:
        jar_id = client.upload_jar(test_jars.stateful)
        yield Env(flink_cluster, client, test_jars, jar_id)
        client.delete_jar(jar_id)


def test_changed_operator_uid_needs_allow_non_restored_state(env23: Env, tmp_path: Path) -> None:
    client = env23.client
    first = env23.run_counter(tmp_path / "a", fresh_id("uid-first"))
    try:
        env23.running(first)
        location = client.wait_for_savepoint(
            first, client.stop_with_savepoint(first, trigger_id=new_trigger_id()), poll_s=POLL_S
        )
        client.wait_for_job_state(first, {"FINISHED"}, WAIT_S, poll_s=POLL_S)
    finally:
        env23.cancel_quietly(first)

    changed_jar = client.upload_jar(env23.jars.stateful_uid_changed)
    changed = Env(env23.cluster, client, env23.jars, changed_jar)
    try:
        with pytest.raises(FlinkBadRequest, match="Cannot map checkpoint/savepoint state") as info:
            changed.run_counter(tmp_path / "b", fresh_id("uid-strict"), savepoint_path=location)
        print(f"\nincompatible: {info.value}")
        lenient = changed.run_counter(
            tmp_path / "c", fresh_id("uid-lenient"), savepoint_path=location, allow_non_restored_state=True
        )
        try:
            changed.running(lenient)
        finally:
            changed.cancel_quietly(lenient)
    finally:
        client.delete_jar(changed_jar)
        client.wait_for_disposal(client.dispose_savepoint(location), poll_s=POLL_S)


def test_jars_list_plan_delete_and_bad_entry_class(env23: Env) -> None:
    client = env23.client
    jar_id = client.upload_jar(env23.jars.batch)
    try:
        listed = {f.id: f for f in client.jars().files}
        assert jar_id in listed
        assert listed[jar_id].name == env23.jars.batch.name
        plan = client.plan(jar_id, RunRequest(entry_class=env23.jars.batch_entry, parallelism=2))
        assert plan.plan.get("nodes")
        with pytest.raises(FlinkProgramError) as info:
            client.run(jar_id, RunRequest(entry_class="no.such.Entry"))
        assert "no.such.Entry" in str(info.value)
        print("bad entry class:", info.value)
    finally:
        client.delete_jar(jar_id)
    assert jar_id not in {f.id for f in client.jars().files}
    with pytest.raises(FlinkNotFound, match="does not exist"):
        client.run(jar_id, RunRequest(entry_class=env23.jars.batch_entry))
    assert client.breaker.state == "closed"


def test_job_config_and_taskmanagers(env23: Env, tmp_path: Path) -> None:
    client = env23.client
    job_id = env23.run_counter(tmp_path / "out", fresh_id("config"), parallelism=2)
    try:
        env23.running(job_id)
        assert client.job_config(job_id).jid == job_id
        assert any(v.parallelism == 2 for v in client.job(job_id).vertices)
        assert job_id in {j.jid for j in client.jobs_overview().jobs}
        assert sum(tm.slots_number for tm in client.taskmanagers().taskmanagers) == env23.cluster.slots
    finally:
        env23.cancel_quietly(job_id)
