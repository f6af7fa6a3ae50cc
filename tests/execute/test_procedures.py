"""The procedures against fakes of our own ports: every step, every crash point, resumed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.execute.errors import LeaseLost, RestoreRefused, StopFailed
from flink_gitops.execute.operation import Operation
from flink_gitops.execute.procedures import Procedures, RunSpec
from flink_gitops.flink.models import RunRequest
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind
from flink_gitops.specs.hashing import spec_hash
from flink_gitops.specs.model import FlinkJob
from tests.execute.fakes import Crash, DirJars, FakeFlink, MemoryJournal

OLD, NEW, RB = "a" * 32, "b" * 32, "c" * 32


def run_spec(entry: str = "com.example.Main", mode: str = "savepoint", **job: Any) -> RunSpec:
    model = FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "orders"},
            "spec": {"job": {"jarURI": "a.jar", "entryClass": entry, "upgradeMode": mode, **job}},
        }
    )
    digest = "sha256:" + "ab" * 32
    return RunSpec(model, "a.jar", "ab" * 32, digest, spec_hash(model, digest))


def upgrade_op(
    new: RunSpec, old: RunSpec, *, stop: str = "savepoint", restore: str = "stop-savepoint"
) -> Operation:
    ids = {
        "cluster": "default",
        "from_cluster": "default",
        "from_job_id": OLD,
        "stop": stop,
        "restore": restore,
        "trigger_id": "f" * 32,
        "job_id": NEW,
        "rollback_job_id": RB,
        "spec": new.to_record(),
        "stable": old.to_record(),
    }
    return Operation("op-1", ActionKind.UPGRADE, "orders", ids)


@pytest.fixture
def world(tmp_path: Path) -> tuple[FakeFlink, MemoryJournal, Procedures, FakeClock]:
    flink = FakeFlink(tmp_path / "state")
    flink.jars["jar-0"] = "old"
    old = FakeJobRequest()
    flink.add_running(OLD, old)
    flink.jobs[OLD].checkpoint = flink._state_dir("chk")
    journal = MemoryJournal()
    clock = FakeClock()
    procs = Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), clock)
    return flink, journal, procs, clock


def FakeJobRequest() -> RunRequest:
    return RunRequest(entry_class="com.example.Main", job_id=OLD)


def test_savepoint_upgrade_runs_the_new_spec_from_the_stop_savepoint(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, _ = world
    new, old = run_spec(args=["v2"]), run_spec()
    op = journal.begin(upgrade_op(new, old))
    outcome = procs.execute(op)
    assert outcome.lifecycle is JobLifecycle.STABLE
    assert [j.job_id for j in flink.live()] == [NEW]
    (location,) = [loc for _, loc in flink.triggers.values()]
    assert flink.jobs[NEW].request.savepoint_path == location
    assert flink.jobs[NEW].request.claim_mode == "NO_CLAIM"
    assert flink.jobs[NEW].request.args == ["v2"]
    assert flink.jobs[OLD].state == "FINISHED"
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["ok"] is True
    assert finished["savepoint"] == (location, "upgrade")
    assert outcome.stable is not None
    assert outcome.stable["hash"] == new.hash
    assert journal.ops["op-1"].op.steps == [
        "stop-sent",
        "stopped",
        "upload-sent",
        "uploaded",
        "run-sent:job_id",
        "stable:job_id",
    ]


def _clean_writes(tmp_path: Path, op_for: Any) -> int:
    flink = FakeFlink(tmp_path / "count")
    flink.add_running(OLD, FakeJobRequest())
    flink.jobs[OLD].checkpoint = flink._state_dir("chk")
    journal = MemoryJournal()
    Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), FakeClock()).execute(
        journal.begin(op_for())
    )
    return journal.writes


@pytest.mark.parametrize(
    ("stop", "restore"), [("savepoint", "stop-savepoint"), ("cancel", "last-checkpoint")]
)
def test_killed_at_every_write_and_resumed_leaves_exactly_one_job_from_the_right_state(
    tmp_path: Path, stop: str, restore: str
) -> None:
    new, old = run_spec(args=["v2"]), run_spec()
    total = _clean_writes(tmp_path, lambda: upgrade_op(new, old, stop=stop, restore=restore))
    assert total == 7
    for n in range(1, total + 1):
        for when in ("before", "after"):
            flink = FakeFlink(tmp_path / f"{stop}-{n}-{when}")
            flink.add_running(OLD, FakeJobRequest())
            checkpoint = flink._state_dir("chk")
            flink.jobs[OLD].checkpoint = checkpoint
            journal = MemoryJournal(die_at=(n, when))
            procs = Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), FakeClock())
            journal.begin(upgrade_op(new, old, stop=stop, restore=restore))
            with pytest.raises(Crash):
                procs.execute(journal.load("op-1"))
            journal.die_at = None
            if journal.ops["op-1"].finished is None:
                procs.execute(journal.load("op-1"))  # the next run resumes the open operation
            where = f"killed {when} write {n}"
            assert [j.job_id for j in flink.live()] == [NEW], where
            expected = checkpoint if stop == "cancel" else next(loc for _, loc in flink.triggers.values())
            assert flink.jobs[NEW].request.savepoint_path == expected, where
            assert len(flink.triggers) == (1 if stop == "savepoint" else 0), where
            finished = journal.ops["op-1"].finished
            assert finished is not None, where
            assert finished["ok"] is True, where
            assert finished["job"].flink_job_id == NEW, where


def test_a_new_job_refused_for_its_state_is_rolled_back_to_the_stable_spec_from_the_same_savepoint(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, _ = world
    flink.refuse_state.add("com.example.Changed")
    new, old = run_spec("com.example.Changed"), run_spec()
    outcome = procs.execute(journal.begin(upgrade_op(new, old)))
    assert outcome.lifecycle is JobLifecycle.ROLLED_BACK
    assert outcome.failed_hash == new.hash
    assert [j.job_id for j in flink.live()] == [RB]
    (location,) = [loc for _, loc in flink.triggers.values()]
    assert flink.jobs[RB].request.savepoint_path == location
    assert flink.jobs[RB].request.entry_class == "com.example.Main"
    assert flink.jobs[NEW].state == "FAILED"
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["ok"] is False


def test_a_new_job_that_fails_after_start_is_rolled_back_too(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, _ = world
    flink.crash_on_start.add("com.example.Crashy")
    outcome = procs.execute(journal.begin(upgrade_op(run_spec("com.example.Crashy"), run_spec())))
    assert outcome.lifecycle is JobLifecycle.ROLLED_BACK
    assert [j.job_id for j in flink.live()] == [RB]


def test_a_failing_stop_leaves_the_old_job_running_and_never_cancels_it(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, _ = world
    flink.triggers["f" * 32] = (OLD, None)  # Flink answers this trigger with a failure cause
    with pytest.raises(StopFailed) as err:
        procs.execute(journal.begin(upgrade_op(run_spec(args=["2"]), run_spec())))
    assert err.value.retryable
    assert [j.job_id for j in flink.live()] == [OLD]
    assert not any(c.startswith("cancel") for c in flink.calls)
    # Flink answered this trigger with a failure: the operation ends, the job as it was; a new one
    # (with a new trigger id) is the next attempt
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["ok"] is False
    assert (finished["job"].flink_job_id, finished["job"].lifecycle) == (OLD, JobLifecycle.STABLE)


def test_last_state_without_a_retained_checkpoint_is_refused_before_cancelling(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, _ = world
    flink.jobs[OLD].checkpoint = None
    with pytest.raises(RestoreRefused):
        procs.execute(
            journal.begin(
                upgrade_op(run_spec(args=["2"]), run_spec(), stop="cancel", restore="last-checkpoint")
            )
        )
    assert [j.job_id for j in flink.live()] == [OLD]


def test_last_state_refuses_a_checkpoint_older_than_the_limit(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, clock = world
    clock.advance(7200)  # two hours after the fake job's checkpoint; the limit is one
    with pytest.raises(RestoreRefused, match="old"):
        procs.execute(
            journal.begin(
                upgrade_op(run_spec(args=["2"]), run_spec(), stop="cancel", restore="last-checkpoint")
            )
        )
    assert [j.job_id for j in flink.live()] == [OLD]


def test_suspend_keeps_the_savepoint_and_resume_runs_from_it(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock],
) -> None:
    flink, journal, procs, _ = world
    spec = run_spec(state="suspended")
    op = upgrade_op(spec, run_spec(), restore="none")
    op = Operation("op-s", ActionKind.SUSPEND, "orders", op.ids)
    outcome = procs.execute(journal.begin(op))
    assert outcome.lifecycle is JobLifecycle.SUSPENDED
    assert flink.live() == []
    assert outcome.savepoint is not None
    resume = upgrade_op(run_spec(), run_spec(), stop="none", restore="path")
    resume.ids["restore_path"] = outcome.savepoint
    outcome2 = procs.execute(journal.begin(Operation("op-r", ActionKind.RESUME, "orders", resume.ids)))
    assert outcome2.lifecycle is JobLifecycle.STABLE
    assert [j.job_id for j in flink.live()] == [NEW]
    assert flink.jobs[NEW].request.savepoint_path == outcome.savepoint


def test_a_lost_lease_stops_before_the_next_side_effect(
    world: tuple[FakeFlink, MemoryJournal, Procedures, FakeClock], tmp_path: Path
) -> None:
    flink, journal, _, clock = world
    procs = Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), clock, cancelled=lambda: True)
    with pytest.raises(LeaseLost):
        procs.execute(journal.begin(upgrade_op(run_spec(args=["2"]), run_spec())))
    assert flink.calls == []


def test_waits_poll_fast_for_the_first_second_then_at_the_normal_interval(tmp_path: Path) -> None:
    from flink_gitops.flink.errors import FlinkStillRunning

    class SlowSavepoints(FakeFlink):
        """The fake, whose savepoints take longer than the fast first second."""

        waits: list[tuple[float | None, float]]

        def wait_for_savepoint(
            self,
            job_id: str,
            trigger_id: str,
            timeout: float | None = None,
            *,
            cancelled: Callable[[], bool] | None = None,
            poll_s: float = 0.2,
        ) -> str:
            self.waits.append((timeout, poll_s))
            if len(self.waits) == 1:
                raise FlinkStillRunning(
                    "still",
                    cluster="fake",
                    path="/x",
                    job_id=job_id,
                    trigger_id=trigger_id,
                    last_state="IN_PROGRESS",
                )
            return super().wait_for_savepoint(job_id, trigger_id, timeout)

    flink = SlowSavepoints(tmp_path / "state")
    flink.waits = []
    flink.add_running(OLD, FakeJobRequest())
    journal = MemoryJournal()
    procs = Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), FakeClock())
    assert (
        procs.execute(journal.begin(upgrade_op(run_spec(args=["2"]), run_spec()))).lifecycle
        is JobLifecycle.STABLE
    )
    assert flink.waits == [(1.0, 0.05), (599.0, 0.2)]
