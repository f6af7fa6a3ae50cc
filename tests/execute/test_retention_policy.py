"""The retention rule as properties: never a protected savepoint, never the newest, never a checkpoint;
what is left unprotected is at most maxCount, all among the newest maxCount and within maxAge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.execute.retention_policy import may_need_disposal, select_disposals
from flink_gitops.record.store import SavepointRecord, SnapshotKind, SnapshotOrigin

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rec(
    i: int, age_s: int, kind: SnapshotKind = SnapshotKind.SAVEPOINT, disposed: bool = False
) -> SavepointRecord:
    return SavepointRecord(
        id=i,
        name="orders",
        uid="u" * 32,
        cluster="default",
        path=f"file:///sp/{i}",
        kind=kind,
        origin=SnapshotOrigin.PERIODIC,
        flink_job_id=None,
        created_at=NOW - timedelta(seconds=age_s),
        disposed=disposed,
        disposed_at=None,
    )


records = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**6),  # age, seconds (ties on purpose: small range too)
        st.sampled_from([SnapshotKind.SAVEPOINT, SnapshotKind.SAVEPOINT, SnapshotKind.CHECKPOINT]),
        st.booleans(),
    ),
    max_size=30,
).map(lambda xs: [rec(i, age, kind, disposed) for i, (age, kind, disposed) in enumerate(xs)])


@given(
    history=records,
    data=st.data(),
    max_count=st.integers(min_value=1, max_value=12),
    max_age_s=st.integers(min_value=0, max_value=10**6),
)
def test_the_rule(
    history: list[SavepointRecord], data: st.DataObject, max_count: int, max_age_s: int
) -> None:
    paths = [r.path for r in history]
    protected = set(data.draw(st.lists(st.sampled_from(paths), unique=True)) if paths else [])
    chosen = select_disposals(history, protected, max_count=max_count, max_age_s=max_age_s, now=NOW)
    chosen_ids = {r.id for r in chosen}
    assert len(chosen_ids) == len(chosen)

    live = sorted(
        (r for r in history if r.kind is SnapshotKind.SAVEPOINT and not r.disposed),
        key=lambda r: (r.created_at, r.id),
        reverse=True,
    )
    # never: a protected path, a checkpoint, a disposed record, the newest savepoint
    assert not any(r.path in protected for r in chosen)
    assert all(r.kind is SnapshotKind.SAVEPOINT and not r.disposed for r in chosen)
    if live:
        assert live[0].id not in chosen_ids

    left = [r for r in live if r.id not in chosen_ids]
    unprotected = [r for r in left if r.path not in protected]
    # at most max_count unprotected left, each among the max_count newest, none past max age but the newest
    assert len(unprotected) <= max_count
    rank = {r.id: i for i, r in enumerate(live)}
    cutoff = NOW - timedelta(seconds=max_age_s)
    for r in unprotected:
        assert rank[r.id] < max_count
        assert r.created_at >= cutoff or rank[r.id] == 0
    # and nothing is chosen that the limits allow to keep (no over-eager disposal)
    for r in chosen:
        assert rank[r.id] >= max_count or r.created_at < cutoff
    # oldest first
    assert [(r.created_at, r.id) for r in chosen] == sorted((r.created_at, r.id) for r in chosen)
    # the aggregate pre-check never skips a job that has something to dispose
    if chosen:
        assert may_need_disposal(
            len(live), min(r.created_at for r in live), max_count=max_count, max_age_s=max_age_s, now=NOW
        )


def test_examples() -> None:
    history = [rec(i, age) for i, age in enumerate([10, 20, 30, 40, 50])]  # id 0 newest

    def pick(max_count: int, max_age_s: int) -> list[int]:
        chosen = select_disposals(history, set(), max_count=max_count, max_age_s=max_age_s, now=NOW)
        return [r.id for r in chosen]

    assert pick(max_count=3, max_age_s=10**6) == [4, 3]
    assert pick(max_count=10, max_age_s=25) == [4, 3, 2]
    assert pick(max_count=10, max_age_s=0) == [4, 3, 2, 1]  # the newest stays, however old
    protected = {"file:///sp/4", "file:///sp/1"}
    assert [r.id for r in select_disposals(history, protected, max_count=1, max_age_s=10**6, now=NOW)] == [
        3,
        2,
    ]


def test_checkpoints_neither_count_nor_go() -> None:
    history = [
        rec(0, 10),
        rec(1, 20, SnapshotKind.CHECKPOINT),
        rec(2, 30),
        rec(3, 40, SnapshotKind.CHECKPOINT),
    ]
    assert [r.id for r in select_disposals(history, set(), max_count=2, max_age_s=10**6, now=NOW)] == []
    assert [r.id for r in select_disposals(history, set(), max_count=1, max_age_s=10**6, now=NOW)] == [2]


def test_the_pre_check() -> None:
    old = NOW - timedelta(days=8)
    assert not may_need_disposal(1, old, max_count=1, max_age_s=86400, now=NOW)  # the newest stays
    assert may_need_disposal(2, old, max_count=10, max_age_s=7 * 86400, now=NOW)
    assert not may_need_disposal(2, NOW, max_count=10, max_age_s=7 * 86400, now=NOW)
    assert may_need_disposal(11, NOW, max_count=10, max_age_s=7 * 86400, now=NOW)
