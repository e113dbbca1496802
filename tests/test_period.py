"""ISO weeks: parsing, bounds, the last complete week in a business time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from upshot import period
from upshot.errors import UsageError


def test_parse_canonicalises_and_rejects_with_the_value():
    assert period.parse_week("2026-w7") == "2026-W07"
    assert period.parse_week(" 2026-W47 ") == "2026-W47"
    with pytest.raises(UsageError, match=r"--week == '2026-47', must look like 2026-W47"):
        period.parse_week("2026-47")
    with pytest.raises(UsageError, match="2025 has no ISO week 53"):
        period.parse_week("2025-W53")


def test_bounds_are_monday_to_monday_utc_and_agree_with_isocalendar():
    start, end = period.bounds("2026-W47")
    assert start == datetime(2026, 11, 16, tzinfo=UTC)
    assert end - start == timedelta(days=7)
    for offset in range(7):
        assert (start + timedelta(days=offset)).isocalendar()[:2] == (2026, 47)


def test_shift_and_between_cross_year_ends():
    # 2026 has 53 ISO weeks (1 January 2026 is a Thursday)
    assert period.shift("2026-W53", 1) == "2027-W01"
    assert period.shift("2027-W01", -1) == "2026-W53"
    assert period.weeks_between("2026-W52", "2027-W02") == [
        "2026-W52",
        "2026-W53",
        "2027-W01",
        "2027-W02",
    ]
    assert period.weeks_between("2026-W03", "2026-W01") == []


def test_last_complete_week_depends_on_the_business_time_zone():
    # Sunday 22 Nov 2026 18:00 UTC is already Monday 23 Nov 03:00 in Tokyo
    now = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    assert period.last_complete("UTC", now) == "2026-W46"
    assert period.last_complete("Asia/Tokyo", now) == "2026-W47"
    # Monday 00:30 UTC is still Sunday in New York
    monday = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert period.last_complete("UTC", monday) == "2026-W47"
    assert period.last_complete("America/New_York", monday) == "2026-W46"


def test_week_of_and_label():
    assert period.week_of(date(2026, 11, 22)) == "2026-W47"
    assert period.week_of(datetime(2026, 11, 23, 0, 0, tzinfo=UTC)) == "2026-W48"
    assert period.label("2026-W47") == "2026-W47 (16–22 Nov 2026)"
    assert period.label("2026-W44") == "2026-W44 (26 Oct – 1 Nov 2026)"
    assert period.label("2026-W53") == "2026-W53 (28 Dec 2026 – 3 Jan 2027)"
