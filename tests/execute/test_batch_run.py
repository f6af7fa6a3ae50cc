"""A batch run (ActionKind.RUN) against fakes of our own ports: started, not waited on to the end,
never rolled back, and resumed after a crash at any write with exactly one run of one job id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.execute.operation import Operation
from flink_gitops.execute.procedures import Procedures, RunSpec
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind
from flink_gitops.specs.hashing import spec_hash
from flink_gitops.specs.model import FlinkJob
from tests.execute.fakes import Crash, DirJars, FakeFlink, MemoryJournal

PREVIOUS, RUN = "a" * 32, "b" * 32
FIRE = "2026-12-02T03:00:00+00:00"


def batch_spec(entry: str = "com.example.Batch", schedule: str | None = "0 3 * * *") -> RunSpec:
    model = FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "report"},
            "spec": {
                "job": {"jarURI": "a.jar", "entryClass": entry, "parallelism": 2},
                "mode": "batch",
                "schedule": schedule,
            },
        }
    )
    digest = "sha256:" + "ab" * 32
    return RunSpec(model, "a.jar", "ab" * 32, digest, spec_hash(model, digest))


def run_op(spec: RunSpec) -> Operation:
    ids: dict[str, Any] = {
        "cluster": "default",
        "from_cluster": "default",
        "from_job_id": PREVIOUS,
        "lifecycle": "deployed",
        "stop": "none",
        "restore": "none",
        "restore_path": None,
        "trigger_id": "f" * 32,
        "job_id": RUN,
        "rollback_job_id": "c" * 32,
        "spec": spec.to_record(),
        "stable": None,
        "savepoint_before": None,
        "scheduled_at": FIRE,
    }
    return Operation("op-1", ActionKind.RUN, "report", ids)


def world(tmp_path: Path) -> tuple[FakeFlink, MemoryJournal, Procedures]:
    flink = FakeFlink(tmp_path / "state")
    flink.add_running(PREVIOUS)
    flink.jobs[PREVIOUS].state = "FINISHED"  # the last run
    journal = MemoryJournal()
    return flink, journal, Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), FakeClock())


def test_a_run_is_started_as_a_new_job_and_not_waited_on_to_its_end(tmp_path: Path) -> None:
    flink, journal, procs = world(tmp_path)
    outcome = procs.execute(journal.begin(run_op(batch_spec())))
    assert outcome.lifecycle is JobLifecycle.DEPLOYED
    assert outcome.flink_job_id == RUN
    assert flink.jobs[RUN].request.parallelism == 2
    assert flink.jobs[RUN].request.savepoint_path is None
    assert journal.ops["op-1"].op.steps == ["upload-sent", "uploaded", "run-sent:job_id", "started:job_id"]
    # no stability window, no checkpoint wait: a batch run is not a streaming job
    assert not any(c.startswith("cancel") for c in flink.calls)
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["ok"] is True
    assert finished["job"].stable is None  # a run proves nothing about stability: last_stable kept


def test_a_run_that_fails_at_once_was_started_its_failure_is_the_runs_outcome(tmp_path: Path) -> None:
    flink, journal, procs = world(tmp_path)
    flink.crash_on_start.add("com.example.Broken")
    outcome = procs.execute(journal.begin(run_op(batch_spec("com.example.Broken"))))
    # the fake lists the job FAILED at once, as Flink does for a job whose main() threw: started
    # and failed is the run's outcome (the planner reports it with its cause)
    assert outcome.lifecycle is JobLifecycle.DEPLOYED
    assert [j for j in flink.jobs if j != PREVIOUS] == [RUN]


def test_a_refused_submission_of_an_unscheduled_run_marks_its_hash_but_a_scheduled_one_does_not(
    tmp_path: Path,
) -> None:
    for schedule, marked in (("0 3 * * *", False), (None, True)):
        flink, journal, procs = world(tmp_path / str(marked))
        spec = batch_spec("com.example.Refused", schedule=schedule)
        flink.refuse_state.add("com.example.Refused")  # Flink answers 400 to the submission
        op = journal.begin(run_op(spec))
        state = tmp_path / str(marked) / "input-state"
        state.mkdir(parents=True)
        (state / "_metadata").write_bytes(b"x")
        op.ids["restore_path"] = f"file://{state}"
        outcome = procs.execute(op)
        assert outcome.lifecycle is JobLifecycle.FAILED
        assert (outcome.failed_hash == spec.hash) is marked
        assert outcome.error is not None
        assert "refused" in outcome.error
        # the fake lists the refused submission FAILED, as Flink may; no second (rollback) run
        assert [j for j in flink.jobs if j != PREVIOUS] == [RUN]


def test_killed_at_every_write_and_resumed_gives_exactly_one_run(tmp_path: Path) -> None:
    spec = batch_spec()
    flink, journal, procs = world(tmp_path / "clean")
    procs.execute(journal.begin(run_op(spec)))
    total = journal.writes
    assert total == 5  # upload-sent, uploaded, run-sent, started, the outcome
    for n in range(1, total + 1):
        for when in ("before", "after"):
            flink, journal, procs = world(tmp_path / f"{n}-{when}")
            journal.die_at = (n, when)
            journal.begin(run_op(spec))
            with pytest.raises(Crash):
                procs.execute(journal.load("op-1"))
            journal.die_at = None
            if journal.ops["op-1"].finished is None:
                procs.execute(journal.load("op-1"))
            where = f"killed {when} write {n}"
            runs = [j for j in flink.jobs if j != PREVIOUS]
            assert runs == [RUN], where
            assert sum(c.startswith("run ") for c in flink.calls) <= 2, where  # a resend is a duplicate
            finished = journal.ops["op-1"].finished
            assert finished is not None, where
            assert journal.ops["op-1"].op.ids["scheduled_at"] == FIRE, where
