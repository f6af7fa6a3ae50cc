"""The planner with plain values: no cluster, no store, no fakes (it is a pure function)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ClusterView, ObservedJob
from flink_gitops.plan.model import ActionKind, Plan, ReconciledSpec, RecordedJob, Restore, Status
from flink_gitops.plan.planner import plan
from flink_gitops.specs.errors import Problem
from flink_gitops.specs.hashing import spec_hash
from flink_gitops.specs.loader import DesiredJob, DesiredState, InvalidJob, JarRef
from flink_gitops.specs.model import Change, FlinkJob

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
JAR = "sha256:" + "ab" * 32
JOB_ID = "0" * 31 + "1"


def spec(name: str = "orders", **job: Any) -> FlinkJob:
    cluster = job.pop("cluster", "default")
    conf = job.pop("flinkConfiguration", {})
    labels = job.pop("labels", {})
    body = {"jarURI": "artifacts/a.jar", "entryClass": "com.example.Main", **job}
    return FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": name, "labels": labels},
            "spec": {"cluster": cluster, "job": body, "flinkConfiguration": conf},
        }
    )


def desired_job(job: FlinkJob, jar: str = JAR) -> DesiredJob:
    return DesiredJob(
        name=job.metadata.name,
        file=f"jobs/{job.metadata.name}.yaml",
        line=1,
        source_kind="FlinkJob",
        spec=job,
        jar=JarRef("repo", "artifacts/a.jar", jar.removeprefix("sha256:")),
        jar_digest=jar,
        spec_hash=spec_hash(job, jar),
    )


def state(*jobs: DesiredJob | InvalidJob) -> DesiredState:
    by_name = {j.name: j for j in jobs if j.name is not None}
    files = {j.file: (j.name,) for j in jobs if j.name is not None}
    return DesiredState(
        commit="c" * 40,
        jobs=by_name,
        unnamed=(),
        invalid_files=frozenset(j.file for j in jobs if isinstance(j, InvalidJob)),
        files=files,
        problems=(),
    )


def record(
    job: FlinkJob | None,
    *,
    lifecycle: JobLifecycle = JobLifecycle.STABLE,
    flink_job_id: str | None = JOB_ID,
    cluster: str = "default",
    jar: str = JAR,
    **extra: Any,
) -> RecordedJob:
    reconciled = ReconciledSpec(job, jar, spec_hash(job, jar)) if job is not None else None
    name = job.metadata.name if job is not None else extra.pop("name")
    return RecordedJob(
        name=name,
        uid="u" * 32,
        generation=1,
        cluster=cluster,
        lifecycle=lifecycle,
        flink_job_id=flink_job_id,
        reconciled=reconciled,
        **extra,
    )


def view(cluster: str = "default", *jobs: tuple[str, str]) -> ClusterView:
    return ClusterView(cluster, True, {i: ObservedJob(i, "job", s) for i, s in jobs})


def running(cluster: str = "default", job_id: str = JOB_ID) -> dict[str, ClusterView]:
    return {cluster: view(cluster, (job_id, "RUNNING"))}


def only_action(p: Plan) -> Any:
    assert len(p.actions) == 1, p.reports
    return p.actions[0]


# --- the cases the issue names ----------------------------------------------------------------


def test_new_job_is_deployed_fresh_or_from_its_initial_savepoint() -> None:
    p = plan(state(desired_job(spec())), {"default": view()}, {}, NOW)
    a = only_action(p)
    assert (a.kind, a.cluster, a.restore, a.new_life) == (ActionKind.DEPLOY, "default", Restore("none"), True)
    assert p.reports["orders"].status is Status.PENDING

    p = plan(state(desired_job(spec(initialSavepointPath="file:///sp/1"))), {"default": view()}, {}, NOW)
    assert only_action(p).restore == Restore("path", "file:///sp/1")


def test_a_new_suspended_job_is_recorded_not_started() -> None:
    a = only_action(plan(state(desired_job(spec(state="suspended"))), {"default": view()}, {}, NOW))
    assert a.kind is ActionKind.RECORD
    assert not a.touches_flink


def test_no_change_and_the_job_running_is_in_sync() -> None:
    job = spec()
    p = plan(state(desired_job(job)), running(), {"orders": record(job)}, NOW)
    assert p.actions == ()
    assert p.in_sync
    assert p.unmanaged == ()


@pytest.mark.parametrize(
    ("mode", "stop", "restore"),
    [
        ("savepoint", "savepoint", Restore("stop-savepoint")),
        ("last-state", "cancel", Restore("last-checkpoint")),
        ("stateless", "cancel", Restore("none")),
    ],
)
def test_a_spec_change_upgrades_by_upgrade_mode(mode: str, stop: str, restore: Restore) -> None:
    old = spec(upgradeMode=mode, args=["--v", "1"])
    new = spec(upgradeMode=mode, args=["--v", "2"])
    a = only_action(plan(state(desired_job(new)), running(), {"orders": record(old)}, NOW))
    assert (a.kind, a.stop, a.restore, a.change) == (ActionKind.UPGRADE, stop, restore, Change.UPGRADE)
    assert a.current_job_id == JOB_ID


def test_new_jar_bytes_behind_the_same_path_are_an_upgrade() -> None:
    job = spec()
    other = "sha256:" + "cd" * 32
    a = only_action(plan(state(desired_job(job, other)), running(), {"orders": record(job)}, NOW))
    assert (a.kind, a.change) == (ActionKind.UPGRADE, Change.UPGRADE)


def test_parallelism_alone_is_a_scale_done_as_an_upgrade() -> None:
    a = only_action(
        plan(state(desired_job(spec(parallelism=4))), running(), {"orders": record(spec(parallelism=2))}, NOW)
    )
    assert (a.kind, a.change, a.stop) == (ActionKind.UPGRADE, Change.SCALE, "savepoint")


def test_running_to_suspended_stops_with_a_savepoint_and_back_resumes_from_it() -> None:
    a = only_action(
        plan(state(desired_job(spec(state="suspended"))), running(), {"orders": record(spec())}, NOW)
    )
    assert (a.kind, a.stop) == (ActionKind.SUSPEND, "savepoint")

    suspended = record(
        spec(state="suspended"),
        lifecycle=JobLifecycle.SUSPENDED,
        flink_job_id=None,
        savepoint="file:///sp/s1",
    )
    a = only_action(
        plan(state(desired_job(spec(args=["x"]))), {"default": view()}, {"orders": suspended}, NOW)
    )
    assert (a.kind, a.restore, a.stop) == (ActionKind.RESUME, Restore("path", "file:///sp/s1"), "none")


def test_a_stateless_job_suspends_by_cancel_and_resumes_fresh() -> None:
    old = spec(upgradeMode="stateless")
    a = only_action(
        plan(
            state(desired_job(spec(upgradeMode="stateless", state="suspended"))),
            running(),
            {"orders": record(old)},
            NOW,
        )
    )
    assert (a.kind, a.stop) == (ActionKind.SUSPEND, "cancel")
    rec = record(
        spec(upgradeMode="stateless", state="suspended"), lifecycle=JobLifecycle.SUSPENDED, flink_job_id=None
    )
    a = only_action(plan(state(desired_job(old)), {"default": view()}, {"orders": rec}, NOW))
    assert (a.kind, a.restore) == (ActionKind.RESUME, Restore("none"))


def test_resume_without_a_recorded_savepoint_is_refused_not_started_empty() -> None:
    rec = record(spec(state="suspended"), lifecycle=JobLifecycle.SUSPENDED, flink_job_id=None)
    p = plan(state(desired_job(spec())), {"default": view()}, {"orders": rec}, NOW)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.REFUSED


def test_changes_while_suspended_are_recorded_for_the_resume() -> None:
    rec = record(spec(state="suspended"), lifecycle=JobLifecycle.SUSPENDED, flink_job_id=None, savepoint="s")
    a = only_action(
        plan(
            state(desired_job(spec(state="suspended", args=["new"]))),
            {"default": view()},
            {"orders": rec},
            NOW,
        )
    )
    assert a.kind is ActionKind.RECORD


def test_savepoint_and_checkpoint_nonces_trigger_without_redeploy() -> None:
    a = only_action(
        plan(state(desired_job(spec(savepointTriggerNonce=1))), running(), {"orders": record(spec())}, NOW)
    )
    assert (a.kind, a.stop, a.change) == (ActionKind.SAVEPOINT, "none", Change.SAVEPOINT)
    a = only_action(
        plan(state(desired_job(spec(checkpointTriggerNonce=3))), running(), {"orders": record(spec())}, NOW)
    )
    assert a.kind is ActionKind.CHECKPOINT


def test_a_savepoint_nonce_with_the_job_not_running_is_drift_not_an_action() -> None:
    p = plan(
        state(desired_job(spec(savepointTriggerNonce=1))),
        {"default": view()},
        {"orders": record(spec())},
        NOW,
    )
    assert p.actions == ()
    assert p.reports["orders"].status is Status.DRIFT


def test_redeploy_nonce_redeploys_from_initial_savepoint_keeping_a_savepoint_of_the_old_job() -> None:
    old = spec(initialSavepointPath="file:///sp/chosen")
    new = spec(initialSavepointPath="file:///sp/chosen", savepointRedeployNonce=1)
    a = only_action(plan(state(desired_job(new)), running(), {"orders": record(old)}, NOW))
    assert (a.kind, a.stop, a.restore) == (
        ActionKind.REDEPLOY,
        "savepoint",
        Restore("path", "file:///sp/chosen"),
    )


def test_redeploy_nonce_without_a_savepoint_path_is_refused() -> None:
    p = plan(state(desired_job(spec(savepointRedeployNonce=1))), running(), {"orders": record(spec())}, NOW)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.REFUSED


def test_restart_nonce_restarts_through_a_fresh_savepoint() -> None:
    a = only_action(
        plan(state(desired_job(spec(restartNonce=1))), running(), {"orders": record(spec())}, NOW)
    )
    assert (a.kind, a.stop, a.restore) == (ActionKind.UPGRADE, "savepoint", Restore("stop-savepoint"))
    assert a.reason.startswith("restart")


def test_ignore_class_changes_are_recorded_only() -> None:
    new = spec(labels={"team": "payments"}, upgradeMode="last-state", allowNonRestoredState=True)
    a = only_action(plan(state(desired_job(new)), running(), {"orders": record(spec())}, NOW))
    assert (a.kind, a.change) == (ActionKind.RECORD, Change.IGNORE)
    assert not a.touches_flink


def test_an_invalid_spec_leaves_the_job_as_it_is() -> None:
    bad = InvalidJob(
        "orders", "jobs/orders.yaml", 7, (Problem("jobs/orders.yaml", 7, 3, "parallelism: not an int"),)
    )
    p = plan(state(bad), running(), {"orders": record(spec())}, NOW)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.INVALID
    assert "jobs/orders.yaml:7" in p.reports["orders"].reason


def test_a_removed_job_is_reported_and_kept_running() -> None:
    p = plan(state(), running(), {"orders": record(spec())}, NOW)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.REMOVED


def test_a_removed_then_re_added_job_is_a_new_life() -> None:
    tomb = record(spec(), lifecycle=JobLifecycle.DELETED, flink_job_id=None)
    a = only_action(plan(state(desired_job(spec(args=["2"]))), {"default": view()}, {"orders": tomb}, NOW))
    assert (a.kind, a.new_life) == (ActionKind.DEPLOY, True)
    p = plan(state(), {"default": view()}, {"orders": tomb}, NOW)
    assert p.in_sync


def test_moving_a_job_to_another_cluster_upgrades_across_both() -> None:
    views = {"default": view("default", (JOB_ID, "RUNNING")), "eu": view("eu")}
    a = only_action(plan(state(desired_job(spec(cluster="eu"))), views, {"orders": record(spec())}, NOW))
    assert (a.kind, a.cluster, a.from_cluster, a.stop) == (ActionKind.UPGRADE, "eu", "default", "savepoint")
    assert a.clusters == {"eu", "default"}


def test_an_unreachable_cluster_gets_no_action_and_its_jobs_are_unknown_not_missing() -> None:
    views = {"default": ClusterView.unreachable("default", "FlinkUnreachable: connection refused")}
    p = plan(state(desired_job(spec(args=["new"]))), views, {"orders": record(spec())}, NOW)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.UNKNOWN
    assert p.unreachable == {"default": "FlinkUnreachable: connection refused"}
    # a move away from an unreachable cluster waits too: the old job might still run there
    views = {"default": ClusterView.unreachable("default", "down"), "eu": view("eu")}
    p = plan(state(desired_job(spec(cluster="eu"))), views, {"orders": record(spec())}, NOW)
    assert p.actions == ()


def test_an_open_operation_is_resumed_before_anything_else() -> None:
    rec = record(spec(), open_operation="op-1", pending_job_id="f" * 32)
    views = {"default": view("default", (JOB_ID, "RUNNING"), ("f" * 32, "RUNNING"))}
    a = only_action(plan(state(desired_job(spec(args=["other"]))), views, {"orders": rec}, NOW))
    assert (a.kind, a.operation_id) == (ActionKind.RESUME_OPERATION, "op-1")
    assert plan(state(desired_job(spec())), views, {"orders": rec}, NOW).unmanaged == ()


def test_backoff_waits_and_then_retries() -> None:
    rec = record(spec(), next_attempt_at=NOW + timedelta(seconds=30), last_error="stop timed out")
    p = plan(state(desired_job(spec(args=["2"]))), running(), {"orders": rec}, NOW)
    assert p.reports["orders"].status is Status.WAITING
    p = plan(state(desired_job(spec(args=["2"]))), running(), {"orders": rec}, NOW + timedelta(seconds=31))
    assert only_action(p).kind is ActionKind.UPGRADE


def test_a_rolled_back_spec_is_not_retried_until_it_changes() -> None:
    good, bad = spec(args=["good"]), spec(args=["bad"])
    rec = record(
        good, lifecycle=JobLifecycle.ROLLED_BACK, failed_hash=spec_hash(bad, JAR), last_error="no state"
    )
    p = plan(state(desired_job(bad)), running(), {"orders": rec}, NOW)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.FAILED
    a = only_action(plan(state(desired_job(spec(args=["fixed"]))), running(), {"orders": rec}, NOW))
    assert a.kind is ActionKind.UPGRADE


def test_an_upgrade_of_a_job_that_is_not_running_restores_its_newest_state() -> None:
    # the executor picks the newest of the recorded history and the old job's checkpoint stats
    rec = record(spec(), savepoint="file:///sp/last")
    a = only_action(plan(state(desired_job(spec(args=["2"]))), {"default": view()}, {"orders": rec}, NOW))
    assert (a.kind, a.stop, a.restore) == (ActionKind.UPGRADE, "none", Restore("newest"))


def test_jobs_nobody_records_are_unmanaged_and_terminal_ones_are_ignored() -> None:
    views = {"default": view("default", (JOB_ID, "RUNNING"), ("e" * 32, "RUNNING"), ("d" * 32, "CANCELED"))}
    p = plan(state(desired_job(spec())), views, {"orders": record(spec())}, NOW)
    assert [j.job_id for _, j in p.unmanaged] == ["e" * 32]
    assert p.actions == ()


def test_only_limits_the_plan_to_the_named_jobs() -> None:
    p = plan(state(desired_job(spec("a")), desired_job(spec("b"))), {"default": view()}, {}, NOW, only=["b"])
    assert [a.job for a in p.actions] == ["b"]
    assert set(p.reports) == {"b"}


# --- properties -------------------------------------------------------------------------------

CLUSTERS = ["default", "eu"]
names = st.sampled_from(["a", "b", "c", "d"])
job_specs = st.builds(
    lambda name, cluster, args, par, mode, st_, sp, rd, rs: spec(
        name,
        cluster=cluster,
        args=args,
        parallelism=par,
        upgradeMode=mode,
        state=st_,
        savepointTriggerNonce=sp,
        savepointRedeployNonce=rd,
        restartNonce=rs,
        initialSavepointPath="file:///sp/x" if rd else None,
    ),
    names,
    st.sampled_from(CLUSTERS),
    st.lists(st.sampled_from(["1", "2"]), max_size=2),
    st.sampled_from([None, 1, 2]),
    st.sampled_from(["savepoint", "last-state", "stateless"]),
    st.sampled_from(["running", "suspended"]),
    st.integers(0, 1),
    st.integers(0, 1),
    st.integers(0, 1),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[DesiredState, dict[str, ClusterView], dict[str, RecordedJob]]:
    desired: dict[str, DesiredJob | InvalidJob] = {}
    for job in draw(st.lists(job_specs, max_size=4, unique_by=lambda j: j.metadata.name)):
        if draw(st.booleans()) and draw(st.booleans()):
            desired[job.metadata.name] = InvalidJob(job.metadata.name, "f.yaml", 1, ())
        else:
            desired[job.metadata.name] = desired_job(job)
    recorded: dict[str, RecordedJob] = {}
    live: dict[str, list[tuple[str, str]]] = {c: [] for c in CLUSTERS}
    for i, job in enumerate(draw(st.lists(job_specs, max_size=4, unique_by=lambda j: j.metadata.name))):
        lifecycle = draw(st.sampled_from(list(JobLifecycle)))
        jid = f"{i:032x}"
        recorded[job.metadata.name] = record(
            job,
            lifecycle=lifecycle,
            flink_job_id=jid,
            cluster=job.spec.cluster,
            savepoint=draw(st.sampled_from([None, "file:///sp/r"])),
            open_operation=draw(st.sampled_from([None, None, "op"])),
        )
        state_ = draw(st.sampled_from([None, "RUNNING", "FAILED", "CANCELED"]))
        if state_:
            live[job.spec.cluster].append((jid, state_))
    live["default"].extend(draw(st.lists(st.sampled_from([("f" * 32, "RUNNING")]), max_size=1)))
    views = {}
    for c in CLUSTERS:
        views[c] = (
            view(c, *live[c]) if draw(st.booleans()) or c == "default" else ClusterView.unreachable(c, "x")
        )
    ds = DesiredState("c", desired, (), frozenset(), {}, ())
    return ds, views, recorded


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_plan_invariants(world: tuple[DesiredState, dict[str, ClusterView], dict[str, RecordedJob]]) -> None:
    desired, views, recorded = world
    p = plan(desired, views, recorded, NOW)
    # at most one action per job: never two running jobs planned for one spec
    assert len({a.job for a in p.actions}) == len(p.actions)
    # every job heard of has exactly one report, and planned jobs are PENDING
    assert set(p.reports) == set(desired.jobs) | set(recorded)
    for a in p.actions:
        assert p.reports[a.job].status is Status.PENDING
        # no action on a cluster that could not be observed
        assert all(views[c].reachable for c in a.clusters)
        # an invalid spec never produces an action, unless a crash left an operation to finish
        if isinstance(desired.jobs.get(a.job), InvalidJob):
            assert a.kind is ActionKind.RESUME_OPERATION
        # a savepoint-mode stop always keeps a savepoint
        if a.desired is not None and a.desired.spec.spec.job.upgradeMode == "savepoint" and a.stop != "none":
            assert a.stop == "savepoint"
    # the same inputs give the same plan
    assert plan(desired, views, recorded, NOW) == p


@settings(max_examples=200, deadline=None)
@given(job_specs)
def test_a_job_recorded_as_deployed_and_running_unchanged_is_in_sync(job: FlinkJob) -> None:
    if job.spec.job.state == "suspended":
        rec = record(job, lifecycle=JobLifecycle.SUSPENDED, flink_job_id=None, cluster=job.spec.cluster)
        views = {c: view(c) for c in CLUSTERS}
    else:
        rec = record(job, cluster=job.spec.cluster)
        views = {c: view(c) for c in CLUSTERS} | running(job.spec.cluster)
    p = plan(state(desired_job(job)), views, {job.metadata.name: rec}, NOW)
    assert p.actions == ()
    assert p.in_sync


# --- prune --------------------------------------------------------------------------------------


def test_with_prune_on_a_removed_job_is_stopped_with_a_final_savepoint() -> None:
    recorded = {"orders": record(spec("orders")), "b": record(spec("b"), flink_job_id="e" * 32)}
    views = {"default": view("default", (JOB_ID, "RUNNING"), ("e" * 32, "RUNNING"))}
    p = plan(state(desired_job(spec("b"))), views, recorded, NOW, prune=True)
    a = only_action(p)
    assert (a.kind, a.job, a.stop, a.current_job_id) == (ActionKind.PRUNE, "orders", "savepoint", JOB_ID)


def test_a_revision_pruning_too_many_jobs_is_refused_whole() -> None:
    recorded = {n: record(spec(n), flink_job_id=f"{i:032x}") for i, n in enumerate("abcd")}
    views = {"default": view("default", *((f"{i:032x}", "RUNNING") for i in range(4)))}
    p = plan(state(desired_job(spec("a"))), views, recorded, NOW, prune=True, max_prune_fraction=0.5)
    assert p.actions == ()
    assert {p.reports[n].status for n in "bcd"} == {Status.REFUSED}
    assert "3 of 4" in p.reports["b"].reason


def test_a_revision_pruning_every_job_is_refused_unless_the_fraction_is_one() -> None:
    recorded = {n: record(spec(n), flink_job_id=f"{i:032x}") for i, n in enumerate("ab")}
    views = {"default": view("default", *((f"{i:032x}", "RUNNING") for i in range(2)))}
    empty = DesiredState("c", {}, (), frozenset(), {}, ())
    p = plan(empty, views, recorded, NOW, prune=True, max_prune_fraction=0.99)
    assert p.actions == ()
    assert "would prune 2 of 2 jobs" in p.reports["a"].reason
    p = plan(empty, views, recorded, NOW, prune=True, max_prune_fraction=1.0)
    assert {a.kind for a in p.actions} == {ActionKind.PRUNE}


def test_a_job_whose_file_broke_is_never_pruned() -> None:
    kept = record(spec(), file="jobs/orders.yaml")
    broken = DesiredState("c", {}, (), frozenset({"jobs/orders.yaml"}), {}, ())
    p = plan(broken, running(), {"orders": kept}, NOW, prune=True)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.REMOVED
    assert "never pruned" in p.reports["orders"].reason


def test_a_scheduled_batch_job_is_recorded_not_started_and_then_in_sync() -> None:
    batch = FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "report"},
            "spec": {
                "job": {"jarURI": "a.jar", "upgradeMode": "stateless"},
                "mode": "batch",
                "schedule": "30 2 * * *",
            },
        }
    )
    a = only_action(plan(state(desired_job(batch)), {"default": view()}, {}, NOW))
    assert a.kind is ActionKind.RECORD
    rec = record(batch, lifecycle=JobLifecycle.CREATED, flink_job_id=None)
    p = plan(state(desired_job(batch)), {"default": view()}, {"report": rec}, NOW)
    assert p.in_sync
    assert "scheduled" in p.reports["report"].reason
