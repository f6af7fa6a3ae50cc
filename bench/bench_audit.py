"""Audit trail speed on SQLite: append latency/throughput and verify time for a large trail.

Run: ``.venv/bin/python bench/bench_audit.py [--appends 3000] [--records 100000]``.

1. appends: ``AuditTrail.record`` one at a time through the real store (one
   SQLite transaction with synchronous=FULL through SQLAlchemy Core, the
   record's and the head's Ed25519 signatures, plus the head file's atomic
   rewrite with fsyncs), as the daemon does. Target: under 3 ms per append.
2. verify: a trail of ``--records`` records is filled quickly (rows sealed and
   signed by the real code, inserted in one SQLite transaction with stdlib
   sqlite3, so the fill does not dominate), then ``verify_trail`` runs without
   any key (unsigned chain), with only the public key file's trust (chain +
   signatures) and with the master key (+ decrypting every record). Target:
   100,000 records verified in under 10 s.
Figures are printed as one JSON object (and a readable summary).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flink_gitops.clock import SystemClock
from flink_gitops.record.audit import AuditEvent, AuditTrail, HeadFile, TrustedKeys, verify_trail
from flink_gitops.record.audit.sealing import seal
from flink_gitops.record.audit.trail import signed_head
from flink_gitops.record.keys import KeyFileSource, generate_key_file
from flink_gitops.record.store import ZERO_HASH, Store


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        action="job.upgrade" if i % 5 else "job.deploy",
        actor="daemon:bench",
        job=f"job-{i % 50}",
        cluster="default",
        git_commit=f"{i:040x}",
        spec_hash=f"{i * 7919:064x}",
        savepoint=f"s3://bucket/savepoints/job-{i % 50}/savepoint-{i:08x}",
        job_id_before=f"{i:032x}",
        job_id_after=f"{i + 1:032x}",
        outcome="succeeded",
    )


def _open(directory: Path, name: str) -> tuple[Store, AuditTrail]:
    store = Store.from_url(f"sqlite:///{directory / (name + '.db')}")
    key, head = KeyFileSource(directory / "audit.key"), directory / f"{name}.head"
    trail = AuditTrail.open(store, key, head_file=head, clock=SystemClock(), actor="daemon:bench")
    return store, trail


def bench_appends(directory: Path, count: int) -> dict[str, float]:
    store, trail = _open(directory, "appends")
    try:
        trail.record(_event(0))  # warm up connections and caches
        lat: list[float] = []
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(count):
            t0 = time.perf_counter()
            trail.record(_event(i))
            lat.append(time.perf_counter() - t0)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        # Where the time goes: the head file's atomic rewrite alone (temp, fsync, rename, dir fsync),
        # and one Ed25519 signature (an append makes two: the record's and the head's).
        head = HeadFile(directory / "alone.head")
        key = trail.keys.current()
        t0 = time.perf_counter()
        for i in range(1, min(count, 500) + 1):
            head.advance(signed_head(key, i, ZERO_HASH))
        head_ms = (time.perf_counter() - t0) / min(count, 500) * 1000
        t0 = time.perf_counter()
        for i in range(1000):
            key.sign(i.to_bytes(8, "big"))
        sign_ms = (time.perf_counter() - t0) / 1000 * 1000
    finally:
        store.close()
    lat.sort()
    return {
        "appends": count,
        "appends_per_s": count / total,
        "append_mean_ms": statistics.fmean(lat) * 1000,
        "append_p50_ms": lat[len(lat) // 2] * 1000,
        "append_p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "append_cpu_ms": cpu / count * 1000,
        "head_file_write_ms": head_ms,
        "ed25519_sign_ms": sign_ms,
    }


def _fill(directory: Path, records: int) -> tuple[Store, AuditTrail, float]:
    db = directory / "verify.db"
    store, trail = _open(directory, "verify")
    key, master = trail.keys.current(), trail.keys.master
    t0 = time.perf_counter()
    prev, when = ZERO_HASH, datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for seq in range(1, records + 1):
        row = seal(seq=seq, prev_hash=prev, event=_event(seq), recorded_at=when, key=key, master=master)
        rows.append(
            (
                row.seq,
                row.recorded_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                row.key_version,
                row.job_tag,
                row.action_tag,
                row.outcome_tag,
                row.nonce,
                row.ciphertext,
                row.prev_hash,
                row.hash,
                row.signature,
            )
        )
        prev, when = row.hash, when + timedelta(seconds=1)
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO audit_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (records, prev))
    conn.close()
    HeadFile(directory / "verify.head").write(signed_head(key, records, prev))
    return store, trail, time.perf_counter() - t0


def bench_verify(directory: Path, records: int) -> dict[str, float]:
    store, trail, fill_s = _fill(directory, records)
    try:
        head = HeadFile(directory / "verify.head")
        t0, c0 = time.perf_counter(), time.process_time()
        plain = verify_trail(store, head)
        keyless_s, keyless_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        public = verify_trail(
            store,
            head,
            trusted=TrustedKeys(trail.keys.public_keys(), origin="bench"),
            key_rows=store.audit_keys(),
        )
        public_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        keyed = verify_trail(store, head, trail.keys)
        keyed_s, keyed_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        found = sum(1 for _ in trail.records(job="job-7"))
        show_s = time.perf_counter() - t0
    finally:
        store.close()
    if not (plain.ok and public.ok and keyed.ok and keyed.decrypted == records):
        raise SystemExit(f"verify failed: {plain.problems[:3]} {public.problems[:3]} {keyed.problems[:3]}")
    return {
        "records": records,
        "fill_s": fill_s,
        "verify_keyless_s": keyless_s,
        "verify_public_key_s": public_s,
        "signatures_checked_with_key": keyed.signatures_checked,
        "verify_with_key_s": keyed_s,
        "verify_keyless_cpu_s": keyless_cpu,
        "verify_with_key_cpu_s": keyed_cpu,
        "verify_keyless_records_per_s": records / keyless_s,
        "verify_with_key_records_per_s": records / keyed_s,
        "show_one_job_s": show_s,
        "show_one_job_records": found,
        "db_bytes": (directory / "verify.db").stat().st_size,
        "bytes_per_record": (directory / "verify.db").stat().st_size / records,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--dir", default=None, help="Where the state goes (e.g. /dev/shm: no disk latency).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-audit-", dir=args.dir) as tmp:
        directory = Path(tmp)
        generate_key_file(directory / "audit.key")
        figures = {**bench_appends(directory, args.appends), **bench_verify(directory, args.records)}
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}, indent=2))
    print(
        f"append: {figures['append_mean_ms']:.2f} ms mean, {figures['append_p99_ms']:.2f} ms p99 "
        f"({figures['appends_per_s']:.0f}/s; target < 3 ms); CPU {figures['append_cpu_ms']:.2f} ms, "
        f"head file write alone {figures['head_file_write_ms']:.2f} ms, "
        f"one signature {figures['ed25519_sign_ms']:.3f} ms\n"
        f"verify {figures['records']:.0f} records: {figures['verify_keyless_s']:.2f} s without key, "
        f"{figures['verify_public_key_s']:.2f} s with the public key, "
        f"{figures['verify_with_key_s']:.2f} s with key (target < 10 s); CPU "
        f"{figures['verify_keyless_cpu_s']:.2f} s / {figures['verify_with_key_cpu_s']:.2f} s",
        file=sys.stderr,
    )
    return figures


if __name__ == "__main__":
    main()
