"""Concurrent appenders never fork the chain: threads on SQLite, two processes on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from flink_gitops.clock import FakeClock, SystemClock
from flink_gitops.record.audit import AuditTrail, Head, HeadFile, HeadNotAccepted, verify_trail
from flink_gitops.record.audit.trail import HEAD_SETTLE_S, HEAD_SETTLE_STEP_S
from flink_gitops.record.store import Store
from tests.fixtures.postgres import StoreTarget
from tests.record.audit_helpers import event, key_source, open_trail

THREADS = 4
PER_THREAD = 30


def _hammer(trails: list[AuditTrail]) -> list[int]:
    seqs: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(trails))
    errors: list[BaseException] = []

    def work(n: int, trail: AuditTrail) -> None:
        try:
            barrier.wait()
            for i in range(PER_THREAD):
                rec = trail.record(event(n * 1000 + i, job=f"t{n}"))
                with lock:
                    seqs.append(rec.seq)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, t)) for n, t in enumerate(trails)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return seqs


def test_threads_sharing_one_trail(tmp_path: Path) -> None:
    with Store.from_url(f"sqlite:///{tmp_path / 'state.db'}") as store:
        trail = open_trail(store, tmp_path, SystemClock())
        seqs = _hammer([trail] * THREADS)
        assert sorted(seqs) == list(range(1, THREADS * PER_THREAD + 1))
        report = verify_trail(store, trail.head_file, trail.keys)
        assert report.ok, report.problems
        assert trail.head_file.read() == Head(*store.audit_head())


def test_threads_with_their_own_store_connections(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    stores = [Store.from_url(url) for _ in range(THREADS)]
    try:
        trails = [open_trail(s, tmp_path, SystemClock()) for s in stores]
        seqs = _hammer(trails)
        assert sorted(seqs) == list(range(1, THREADS * PER_THREAD + 1))
        report = verify_trail(stores[0], HeadFile(tmp_path / "audit.head"), trails[0].keys)
        assert report.ok, report.problems
        assert report.decrypted == THREADS * PER_THREAD
        for n in range(THREADS):
            assert len(list(trails[0].records(job=f"t{n}"))) == PER_THREAD
        assert HeadFile(tmp_path / "audit.head").read() == Head(*stores[0].audit_head())
    finally:
        for s in stores:
            s.close()


_PG_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from flink_gitops.clock import FakeClock, SystemClock
    from flink_gitops.record.audit import AuditEvent, AuditTrail
    from flink_gitops.record.keys import KeyFileSource
    from flink_gitops.record.store import Store
    from flink_gitops.secrets import SecretRef, read_secret

    url, pwfile, d, name, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    store = Store.from_url(url, password=read_secret(SecretRef(file=Path(pwfile))))
    trail = AuditTrail.open(store, KeyFileSource(d / "audit.key"), head_file=d / "audit.head",
                            clock=SystemClock(), actor=f"daemon:{name}")
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        trail.record(AuditEvent(action="job.deploy", actor=f"daemon:{name}", job=name, details={"i": i}))
    store.close()
    print("done", flush=True)
    """
)


@pytest.mark.postgres
def test_two_processes_on_postgres(postgres_database: StoreTarget, tmp_path: Path) -> None:
    key_source(tmp_path)  # both processes share the master key file; the first creates key v1
    per_process = 60
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    assert postgres_database.password_file is not None
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PG_CHILD,
                postgres_database.url,
                str(postgres_database.password_file),
                str(tmp_path),
                name,
                str(per_process),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "done"
            assert p.wait(timeout=60) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    stream.close()
    with postgres_database.open() as store:
        trail = open_trail(store, tmp_path, SystemClock())
        report = verify_trail(store, HeadFile(tmp_path / "audit.head"), trail.keys)
        assert report.ok, report.problems
        assert report.records == report.decrypted == 2 * per_process
        assert [k.version for k in store.audit_keys()] == [1]
        assert len(list(trail.records(job="a"))) == len(list(trail.records(job="b"))) == per_process
        assert trail.head_file.read() == Head(*store.audit_head())


def test_opening_a_trail_while_another_appends_never_reads_the_race_as_tampering(tmp_path: Path) -> None:
    # A second replica starts (or a CLI opens the trail) while the first appends: the store and the
    # head file are read at different moments, and each append commits before it advances the head
    # file. Neither order of the two reads may look like truncation or a gap.
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with Store.from_url(url) as writer_store, Store.from_url(url) as reader_store:
        writer = open_trail(writer_store, tmp_path, SystemClock())
        done = threading.Event()
        errors: list[BaseException] = []

        def append() -> None:
            try:
                i = 0
                while not done.is_set():
                    writer.record(event(i, job="w"))
                    i += 1
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=append)
        thread.start()
        try:
            for _ in range(150):
                open_trail(reader_store, tmp_path, SystemClock())
        finally:
            done.set()
            thread.join()
        assert errors == []
        assert writer_store.audit_head()[0] > 10, "the writer appended while the trail was opened"


def test_replicas_starting_together_on_a_new_store_both_open_the_trail(tmp_path: Path) -> None:
    # Two replicas started at once on an empty store: one creates the key and the seq-0 head file,
    # the other may see the key before that head file exists. That is a start, not a wipe.
    for attempt in range(40):
        d = tmp_path / str(attempt)
        d.mkdir()
        key_source(d)
        url = f"sqlite:///{d / 'state.db'}"
        Store.from_url(url).close()  # the schema, created once (as a migrated PostgreSQL is)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def start(store: Store, directory: Path = d, gate: threading.Barrier = barrier) -> None:
            try:
                gate.wait()
                open_trail(store, directory, SystemClock()).record(event(1, job="r"))
            except BaseException as exc:
                errors.append(exc)

        with Store.from_url(url) as a, Store.from_url(url) as b:
            threads = [threading.Thread(target=start, args=(s,)) for s in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == [], f"attempt {attempt}: {errors}"
            assert a.audit_head()[0] == 2


class _OtherReplicaFinishes(FakeClock):
    """A fake clock whose first sleep lets "the other replica" finish what it was writing."""

    def __init__(self, finish: Callable[[], None] | None) -> None:
        super().__init__()
        self._finish = finish

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self._finish is not None:
            self._finish()
            self._finish = None


def test_a_replica_that_sees_the_key_before_the_first_head_file_waits_for_it(tmp_path: Path) -> None:
    with Store.from_url(f"sqlite:///{tmp_path / 'state.db'}") as store:
        open_trail(store, tmp_path, SystemClock())  # the first replica: key v1, head file at seq 0
        head = HeadFile(tmp_path / "audit.head")
        written = head.read()
        assert written is not None
        head.path.unlink()  # ... as seen a moment before it wrote the head file
        clock = _OtherReplicaFinishes(lambda: head.write(written))
        open_trail(store, tmp_path, clock).record(event(1))
        assert clock.sleeps == [HEAD_SETTLE_STEP_S]


def test_a_head_file_that_stays_missing_is_still_refused_after_the_settle_time(tmp_path: Path) -> None:
    with Store.from_url(f"sqlite:///{tmp_path / 'state.db'}") as store:
        open_trail(store, tmp_path, SystemClock()).record(event(1))
        (tmp_path / "audit.head").unlink()
        clock = _OtherReplicaFinishes(None)
        with pytest.raises(HeadNotAccepted, match="head file is missing"):
            open_trail(store, tmp_path, clock)
        assert sum(clock.sleeps) == pytest.approx(HEAD_SETTLE_S)
        assert store.audit_head()[0] == 1, "nothing appended"
