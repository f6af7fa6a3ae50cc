"""Crash safety: SIGKILL in the middle of a burst of appends leaves a chain that verifies and continues.

Rule under test (record.audit.verify): the head file may lag the store by the
one record whose append was in flight (head seq ∈ {db seq, db seq - 1} with
that record's hash); verify says so and passes; the next append rewrites it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flink_gitops.clock import FakeClock, SystemClock
from flink_gitops.record.audit import (
    ACCEPT_HEAD_ACTION,
    AuditIntegrityError,
    AuditTrail,
    Head,
    HeadFile,
    HeadNotAccepted,
    verify_trail,
)
from flink_gitops.record.audit.sealing import seal
from flink_gitops.record.store import ZERO_HASH, Store
from tests.record.audit_helpers import ACTOR, event, key_source, open_trail
from tests.record.fakes import FakeAuditStore

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from flink_gitops.clock import SystemClock
    from flink_gitops.record.audit import AuditEvent, AuditTrail
    from flink_gitops.record.keys import KeyFileSource
    from flink_gitops.record.store import Store

    d = Path(sys.argv[1])
    store = Store.from_url(f"sqlite:///{d / 'state.db'}")
    trail = AuditTrail.open(store, KeyFileSource(d / "audit.key"), head_file=d / "audit.head",
                            clock=SystemClock(), actor="daemon:crash-child")
    print("ready", flush=True)
    i = 0
    while True:
        rec = trail.record(AuditEvent(action="job.deploy", actor="daemon:crash-child", job=f"j{i % 5}",
                                      outcome="succeeded", details={"i": i, "pad": "x" * (i % 200)}))
        print(rec.seq, flush=True)
        i += 1
    """
)


def _run_and_kill(directory: Path, after: int) -> int:
    """Start an appender, SIGKILL it once it has reported ``after`` appends; the last seq it reported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    last = 0
    for _ in range(after):
        last = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)  # mid-burst: the child is appending as fast as it can
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return last


def test_sigkill_mid_burst_leaves_a_verifiable_chain_that_continues(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        opened = open_trail(store, tmp_path, SystemClock())  # creates the key file and data key v1
        head = HeadFile(tmp_path / "audit.head")
        seen = 0
        for burst in (40, 25, 60):
            reported = _run_and_kill(tmp_path, burst)
            db_seq, _ = store.audit_head()
            assert db_seq >= reported > seen  # every reported append is durable
            report = verify_trail(store, head, opened.keys)
            assert report.ok, report.problems
            assert report.records == db_seq
            file_head = head.read()
            assert file_head is not None
            assert file_head.seq in (db_seq, db_seq - 1)
            seen = db_seq
        # A new appender (the restarted daemon) continues the chain and rewrites the head.
        trail = open_trail(store, tmp_path, SystemClock())
        rec = trail.record(event(1))
        assert rec.seq == seen + 1
        assert head.read() == Head(*store.audit_head())
        assert verify_trail(store, head, trail.keys).ok
    finally:
        store.close()


def test_head_lagging_by_the_in_flight_record_is_accepted_and_repaired(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        trail = open_trail(store, tmp_path, clock)
        for i in range(3):
            trail.record(event(i))
        # The crash window: the row committed, the process died before the head file write.
        key, master = trail.keys.current(), trail.keys.master
        store.append_audit(
            lambda seq, prev: seal(
                seq=seq, prev_hash=prev, event=event(9), recorded_at=clock.now(), key=key, master=master
            )
        )
        head = HeadFile(tmp_path / "audit.head")
        on_disk = head.read()
        assert on_disk is not None
        assert on_disk.seq == 3
        report = verify_trail(store, head, trail.keys)
        assert report.ok, report.problems
        assert any("lags the store by one record" in n for n in report.notes)

        restarted = open_trail(store, tmp_path, clock)  # accepted on open
        restarted.record(event(10))
        assert head.read() == Head(*store.audit_head())
        assert head.read().seq == 5  # type: ignore[union-attr]
        report = verify_trail(store, head, trail.keys)
        assert report.ok
        assert not report.notes
        assert report.records == 5
        assert report.decrypted == 5
        assert [r.event.actor for r in restarted.records()] == [ACTOR] * 5
    finally:
        store.close()


def test_temp_files_of_dead_appenders_are_removed_on_open(tmp_path: Path, clock: FakeClock) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(finished.stdout)
    stale = tmp_path / f".audit.head.{dead_pid}.1.tmp"
    live = tmp_path / f".audit.head.{os.getpid()}.1.tmp"
    stale.write_text("{")
    live.write_text("{")
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        open_trail(store, tmp_path, clock)
    finally:
        store.close()
    assert not stale.exists()
    assert live.exists()  # a running appender's temp file is left alone


def _append_without_head_write(trail: AuditTrail, store: Store, clock: FakeClock, i: int) -> None:
    """The crash window: the row commits, the process dies before the head file write."""
    key, master = trail.keys.current(), trail.keys.master
    store.append_audit(
        lambda seq, prev: seal(
            seq=seq, prev_hash=prev, event=event(i), recorded_at=clock.now(), key=key, master=master
        )
    )


def test_a_crash_inside_the_very_first_append_is_the_in_flight_lag(tmp_path: Path, clock: FakeClock) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        trail = open_trail(store, tmp_path, clock)
        head = HeadFile(tmp_path / "audit.head")
        assert head.read() == Head(0, ZERO_HASH)  # written on open, before any append
        _append_without_head_write(trail, store, clock, 0)
        report = verify_trail(store, head, trail.keys)
        assert report.ok, report.problems
        assert any("lags the store by one record" in n for n in report.notes)
        restarted = open_trail(store, tmp_path, clock)  # not mistaken for a deleted head file
        restarted.record(event(1))
        assert head.read() == Head(*store.audit_head())
        assert verify_trail(store, head, trail.keys).ok
    finally:
        store.close()


def test_a_forged_seq_0_head_file_is_not_taken_for_the_lag(tmp_path: Path, clock: FakeClock) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        trail = open_trail(store, tmp_path, clock)
        _append_without_head_write(trail, store, clock, 0)
        head = HeadFile(tmp_path / "audit.head")
        head.write(Head(0, b"\x01" * 32))
        report = verify_trail(store, head)
        assert not report.ok
        assert report.first_break == 0
        with pytest.raises(AuditIntegrityError, match="head file hash differs"):
            open_trail(store, tmp_path, clock)
    finally:
        store.close()


def test_an_idle_replica_is_refused_until_the_gap_is_accepted(tmp_path: Path, clock: FakeClock) -> None:
    # A head file more than one record behind (a replica with its own head file, or a restored
    # backup) is not laundered by the next append: open refuses until `audit accept-head`.
    store = FakeAuditStore()

    def replica(name: str) -> AuditTrail:
        return AuditTrail.open(
            store, key_source(tmp_path), head_file=tmp_path / name, clock=clock, actor=ACTOR
        )

    replica("idle.head")
    (tmp_path / "busy.head").write_bytes((tmp_path / "idle.head").read_bytes())
    writer = replica("busy.head")
    for i in range(3):
        writer.record(event(i))
    assert HeadFile(tmp_path / "idle.head").read() == Head(0, ZERO_HASH)
    with pytest.raises(HeadNotAccepted, match="accept-head") as refused:
        replica("idle.head")
    assert refused.value.seq == 1
    assert store.appends_attempted == 3
    accepted = AuditTrail.accept_head(
        store,
        key_source(tmp_path),
        head_file=tmp_path / "idle.head",
        clock=clock,
        actor=ACTOR,
        reason="failover",
    )
    assert accepted is not None
    assert accepted.seq == 4
    assert accepted.event.action == ACCEPT_HEAD_ACTION
    assert accepted.event.details["reason"] == "failover"
    assert accepted.event.details["head_file"] == {"seq": 0, "hash": ZERO_HASH.hex()}
    assert accepted.event.details["store_head"]["seq"] == 3
    assert HeadFile(tmp_path / "idle.head").read() == Head(*store.head)
    replica("idle.head").record(event(3))  # opens again
    assert (
        AuditTrail.accept_head(
            store,
            key_source(tmp_path),
            head_file=tmp_path / "idle.head",
            clock=clock,
            actor=ACTOR,
            reason="x",
        )
        is None
    )  # nothing to accept
