"""5-field cron expressions (UTC) as cron(8) reads them: parsed once, fire times found without I/O.

Why our own evaluator and not APScheduler's ``CronTrigger``: APScheduler 3 numbers
day_of_week 0=Monday (cron: 0 and 7 are Sunday), ANDs day-of-month with day-of-week
(cron ORs them when both are restricted) and only looks forward, while the batch
schedule also needs the latest fire time at or before now (missed runs). The tests
check this evaluator against APScheduler as an oracle, with the weekday numbers
converted. Fields: minute 0-59, hour 0-23, day 1-31, month 1-12 (jan-dec), weekday
0-7 (sun-sat, 7 is Sunday too); each a list of ``*``, ``n``, ``a-b``, with an optional
``/step`` (``a/step`` means ``a-max/step``). Fire times are whole minutes, UTC.
Neighbours: ``specs.model`` (validates ``spec.schedule`` with :func:`parse`),
``plan.schedule`` (decides when a batch job runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: (name, low, high, names) per field, in order.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
#: how far a search for a fire time looks, days: 8 years cover every Feb 29 (1900 and 2100 skip it).
SEARCH_DAYS = 366 * 8 + 2


def _value(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text in names:
        return names.index(text) + (1 if low == 1 else 0)
    if not (text.isascii() and text.isdigit()):  # "²".isdigit() is true, and int("٣") is 3
        raise ValueError(
            f"{field}: {text!r} is not a number" + (f" or a name ({names[0]}..)" if names else "")
        )
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{field}: {value} is out of range {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    out: set[int] = set()
    for atom in text.split(","):
        body, slash, step_text = atom.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{field}: step {step_text!r} is not a positive number")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = (_value(a, field, low, high, names), _value(b, field, low, high, names))
            if first > last:
                raise ValueError(f"{field}: range {body!r} runs backwards")
        else:
            first = _value(body, field, low, high, names)
            last = high if slash else first
        out.update(range(first, last + 1, step))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed schedule; :func:`parse` makes one."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    #: 0 = Sunday .. 6 = Saturday (7 folded into 0).
    weekdays: frozenset[int]
    #: the day or weekday field starts with ``*``: then both must match, else either (cron(8)).
    day_star: bool
    weekday_star: bool

    def _day_ok(self, d: date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        return (dom and dow) if (self.day_star or self.weekday_star) else (dom or dow)

    def next_after(self, t: datetime) -> datetime | None:
        """The first fire time strictly after ``t`` (aware); None if none within :data:`SEARCH_DAYS`."""
        start = _minute(t) + timedelta(minutes=1)
        day = start.date()
        for n in range(SEARCH_DAYS):
            if self._day_ok(day):
                first = n == 0
                for h in self.hours:
                    if first and h < start.hour:
                        continue
                    for m in self.minutes:
                        if first and h == start.hour and m < start.minute:
                            continue
                        return datetime.combine(day, time(h, m), UTC)
            day += timedelta(days=1)
        return None

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The last fire time at or before ``t`` (aware); None if none within :data:`SEARCH_DAYS`."""
        end = _minute(t)
        day = end.date()
        for n in range(SEARCH_DAYS):
            if self._day_ok(day):
                last = n == 0
                for h in reversed(self.hours):
                    if last and h > end.hour:
                        continue
                    for m in reversed(self.minutes):
                        if last and h == end.hour and m > end.minute:
                            continue
                        return datetime.combine(day, time(h, m), UTC)
            day -= timedelta(days=1)
        return None

    def fire_times(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Fire times in (after, until], oldest first, at most ``limit`` of them."""
        out: list[datetime] = []
        t = after
        while len(out) < limit:
            nxt = self.next_after(t)
            if nxt is None or nxt > until:
                break
            out.append(nxt)
            t = nxt
        return out


def _minute(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("cron times are timezone-aware (UTC)")
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def parse(text: str) -> Cron:
    """Parse a 5-field expression (lowercase names); ValueError saying which field is wrong."""
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"a schedule has 5 fields (minute hour day month weekday), got {len(parts)}")
    sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(
        " ".join(parts),
        tuple(sorted(sets[0])),
        tuple(sorted(sets[1])),
        sets[2],
        sets[3],
        weekdays,
        parts[2].startswith("*"),
        parts[4].startswith("*"),
    )
