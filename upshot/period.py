"""Periods: an ISO week or a `[start, end)` span, parsed once where the user gives it.

Weeks run Monday 00:00 to Monday 00:00 UTC, the boundaries every command uses, so the
report, the uplift estimates, the weights and the touches of a week describe the same
decisions. The business time zone only decides which week counts as the last complete
one: at 01:00 on Monday in Tokyo the previous week is over there even though it is still
Sunday in UTC.

`parse(week, start, end)` turns the command-line options into one `Period`; everything
below the command line takes that value (or a canonical week string) and never parses
dates again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from upshot.errors import UsageError

_WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """Decisions or conversions in `[start, end)`, UTC; `None` is unbounded.

    `week` is the canonical ISO week (`2026-W47`) when the period is one.
    """

    start: datetime | None = None
    end: datetime | None = None
    week: str | None = None

    @classmethod
    def of_week(cls, week: str) -> Period:
        """The ISO week `week` (any accepted spelling) as a period."""
        canonical = parse_week(week)
        return cls(*bounds(canonical), canonical)


ALL_TIME = Period()


def parse(
    week: str | None = None,
    start: str | date | datetime | None = None,
    end: str | date | datetime | None = None,
) -> Period:
    """`--week 2026-W47` (Monday to Monday, UTC) or `--start/--end` (end exclusive)."""
    if week and (start or end):
        raise UsageError("--week and --start/--end both given, use one")
    if week:
        return Period.of_week(week)
    lo, hi = as_instant(start, "--start"), as_instant(end, "--end")
    if lo and hi and hi <= lo:
        raise UsageError(f"--end == {str(end)!r}, must be after --start {str(start)!r}")
    return Period(lo, hi)


def parse_week(text: str) -> str:
    """`2026-W47` (also `2026-w7`) in canonical form, or a UsageError naming the value."""
    match = _WEEK.match(text.strip().upper())
    if not match:
        raise UsageError(f"--week == {text!r}, must look like 2026-W47")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise UsageError(f"--week == {text!r}: {year} has no ISO week {number}") from None
    return f"{year}-W{number:02d}"


def as_instant(value: datetime | date | str | None, where: str) -> datetime | None:
    """A UTC instant from a datetime, a date (midnight UTC) or an ISO string."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"{where} == {value!r}, must be a date like 2026-11-16") from None
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def monday(week: str) -> date:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def bounds(week: str) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, next Monday 00:00 UTC) of the canonical `week`."""
    first = monday(week)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, start + timedelta(days=7)


def week_of(day: date | datetime) -> str:
    """The ISO week holding `day` (a datetime is taken in UTC)."""
    if isinstance(day, datetime):
        day = (day.astimezone(UTC) if day.tzinfo else day).date()
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def shift(week: str, weeks: int) -> str:
    """The week `weeks` after (negative: before) `week`."""
    return week_of(monday(week) + timedelta(weeks=weeks))


def weeks_between(first: str, last: str) -> list[str]:
    """Every week from `first` to `last`, both included, in order."""
    out, current = [], first
    while current <= last:
        out.append(current)
        current = shift(current, 1)
    return out


def last_complete(timezone: str, now: datetime | None = None) -> str:
    """The ISO week before the one that `now` (default: the clock) falls in, in `timezone`."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(timezone)).date()
    return week_of(local - timedelta(days=7))


def label(week: str) -> str:
    """`2026-W47 (16–22 Nov 2026)`: the week with its dates, for people."""
    first = monday(week)
    last = first + timedelta(days=6)
    if first.month == last.month:
        span = f"{first.day}–{last.day} {last:%b %Y}"
    elif first.year == last.year:
        span = f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    else:
        span = f"{first:%-d %b %Y} – {last:%-d %b %Y}"
    return f"{week} ({span})"
