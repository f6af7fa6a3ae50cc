"""The cron evaluator (flink_gitops.cron): cron(8) semantics, checked against APScheduler 3 as an oracle.

APScheduler's ``CronTrigger.from_crontab`` numbers the weekday 0=Monday; cron numbers it
0=Sunday (and 7=Sunday). The oracle gets the weekday field converted to names, which is the
conversion the evaluator has to get right; one test shows the pitfall itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import assume, given
from hypothesis import strategies as st

from flink_gitops import cron

SUNDAY = datetime(2026, 12, 6, tzinfo=UTC)  # a Sunday
assert SUNDAY.isoweekday() == 7


def test_weekday_0_and_7_are_sunday_unlike_apschedulers_from_crontab() -> None:
    for text in ("0 0 * * 0", "0 0 * * 7", "0 0 * * sun"):
        fire = cron.parse(text).next_after(SUNDAY - timedelta(days=3))
        assert fire == SUNDAY, text
    # the pitfall: APScheduler reads the same expression as Mondays
    trigger = CronTrigger.from_crontab("0 0 * * 0", timezone="UTC")
    apscheduler = trigger.get_next_fire_time(None, SUNDAY - timedelta(days=3))
    assert apscheduler is not None
    assert apscheduler.isoweekday() == 1


def test_weekday_ranges_lists_and_names() -> None:
    c = cron.parse("30 2 * * 1-5")
    fires = c.fire_times(SUNDAY, SUNDAY + timedelta(days=7), 10)
    assert [f.isoweekday() for f in fires] == [1, 2, 3, 4, 5]
    assert all((f.hour, f.minute) == (2, 30) for f in fires)
    assert cron.parse("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert cron.parse("0 0 * * mon,wed").weekdays == {1, 3}


def test_day_of_month_and_weekday_both_restricted_fire_on_either() -> None:
    c = cron.parse("0 0 13 * 5")  # every 13th and every Friday (cron(8)), not only Friday the 13th
    fires = c.fire_times(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), 20)
    assert [f.day for f in fires] == [6, 13, 20, 27]  # Nov 2026: Fridays 6,13,20,27; the 13th is one
    fires = c.fire_times(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC), 20)
    assert [f.day for f in fires] == [4, 11, 13, 18, 25]
    # a star in either field: both must match
    assert cron.parse("0 0 */1 * 5").fire_times(datetime(2026, 12, 1, tzinfo=UTC), SUNDAY, 9) == [
        datetime(2026, 12, 4, tzinfo=UTC)
    ]


def test_latest_at_or_before_and_next_after_at_the_edges() -> None:
    c = cron.parse("*/15 * * * *")
    t = datetime(2026, 12, 1, 10, 15, 0, tzinfo=UTC)
    assert c.latest_at_or_before(t) == t
    assert c.latest_at_or_before(t - timedelta(seconds=1)) == t - timedelta(minutes=15)
    assert c.next_after(t) == t + timedelta(minutes=15)
    assert c.next_after(t - timedelta(seconds=1)) == t
    leap = cron.parse("0 12 29 2 *")
    assert leap.next_after(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert leap.latest_at_or_before(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2024, 2, 29, 12, tzinfo=UTC)
    never = cron.parse("0 0 31 2 *")
    assert never.next_after(t) is None
    assert never.latest_at_or_before(t) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0 0 * *", "5 fields"),
        ("60 0 * * *", "minute: 60 is out of range"),
        ("0 23-1 * * *", "hour: range '23-1' runs backwards"),
        ("*/0 * * * *", "step"),
        ("0 0 * * 8", "day of week: 8 is out of range"),
        ("0 0 * xyz *", "month: 'xyz' is not a number"),
        ("\u00b2 0 * * *", "minute: '\u00b2' is not a number"),  # str.isdigit() says yes; int() no
        ("\u0663 0 * * *", "minute: '\u0663' is not a number"),  # an Arabic-Indic 3: int() says 3
    ],
)
def test_bad_expressions_say_which_field(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        cron.parse(text)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.parse("* * * * *").next_after(datetime(2026, 1, 1))


# --- the oracle ---------------------------------------------------------------------------------


def _atoms(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    step = st.integers(1, max(1, high - low))
    single = number.map(str)
    ranged = st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}")
    stepped = st.tuples(st.sampled_from(["*"]) | ranged, step).map(lambda a: f"{a[0]}/{a[1]}")
    return st.one_of(single, ranged, stepped)


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    return st.just("*") | st.lists(_atoms(low, high), min_size=1, max_size=3).map(",".join)


_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@st.composite
def expressions(draw: st.DrawFn) -> str:
    day = draw(_field(1, 28))
    weekday = draw(_field(0, 7))
    if not day.startswith("*") and not weekday.startswith("*"):
        weekday = "*"  # APScheduler ANDs the two; the OR case is tested above
    return " ".join([draw(_field(0, 59)), draw(_field(0, 23)), day, draw(_field(1, 12)), weekday])


def _oracle(text: str) -> CronTrigger:
    minute, hour, day, month, weekday = text.split()
    days = cron.parse(text).weekdays
    names = "*" if weekday == "*" else ",".join(_NAMES[d] for d in sorted(days))
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=names, timezone="UTC")
    except ValueError:  # APScheduler refuses a step wider than its range (1-1/2); cron(8) does not
        assume(False)
        raise


moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda t: t.replace(tzinfo=UTC)
)


@given(expressions(), moments)
def test_next_fire_time_agrees_with_apscheduler_with_weekdays_converted(text: str, t: datetime) -> None:
    c = cron.parse(text)
    start = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    expected = _oracle(text).get_next_fire_time(None, start)
    got = c.next_after(t)
    if expected is None or expected - start > timedelta(days=cron.SEARCH_DAYS - 1):
        return  # beyond the evaluator's search horizon
    assert got == expected.astimezone(UTC)


@given(expressions(), moments)
def test_latest_fire_time_is_a_fire_time_and_nothing_fires_between_it_and_now(text: str, t: datetime) -> None:
    c = cron.parse(text)
    latest = c.latest_at_or_before(t)
    if latest is None:
        return
    assert latest <= t
    assert c.next_after(latest - timedelta(minutes=1)) == latest
    nxt = c.next_after(latest)
    assert nxt is None or nxt > t
