"""Reporting deadlines of the 2018 traceability rules, in working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.actors import Role
from schemas.events import EventType
from trace.deadlines import (
    DEADLINES,
    PRC_SCHEDULES,
    CalendarError,
    Deadline,
    HolidayCalendar,
    add_working_days,
    deadline,
    lateness,
    prc_calendar,
    working_days_between,
)

CST = timezone(timedelta(hours=8))
WEEKENDS = HolidayCalendar()
PRC = prc_calendar()


def at(day: date, hour: int = 10, tz: timezone = CST) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz)


# ---------------------------------------------------------------------------
# Counting working days


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 6), date(2026, 3, 9), 1),  # Friday -> Monday
        (date(2026, 3, 9), date(2026, 3, 13), 4),  # Monday -> Friday
        (date(2026, 3, 7), date(2026, 3, 8), 0),  # Saturday -> Sunday
        (date(2026, 3, 9), date(2026, 3, 9), 0),
        (date(2026, 3, 9), date(2026, 3, 6), -1),
        (date(2026, 3, 2), date(2026, 3, 30), 20),
    ],
)
def test_weekends_are_not_working_days(start: date, end: date, expected: int) -> None:
    assert working_days_between(start, end, WEEKENDS) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2025, 9, 30), date(2025, 10, 9), 1),  # National Day: 1-8 October off
        (date(2025, 9, 26), date(2025, 9, 30), 3),  # Sunday 28 September is a make-up day
        (date(2025, 10, 10), date(2025, 10, 12), 1),  # Saturday 11 October is a make-up day
        (date(2026, 2, 13), date(2026, 2, 28), 6),  # Sat 14th, 24th-27th and Sat 28th work
    ],
)
def test_holidays_and_make_up_days(start: date, end: date, expected: int) -> None:
    assert working_days_between(start, end, PRC) == expected


def test_make_up_saturday_is_a_working_day_only_in_the_official_calendar() -> None:
    saturday = date(2025, 10, 11)
    assert PRC.is_working_day(saturday)
    assert not WEEKENDS.is_working_day(saturday)
    assert not PRC.is_working_day(date(2025, 10, 8))  # a Wednesday of the holiday week


@pytest.mark.parametrize(
    ("start", "count", "expected"),
    [
        (date(2025, 1, 24), 1, date(2025, 1, 26)),  # the make-up Sunday
        (date(2025, 1, 24), 3, date(2025, 2, 5)),  # over the Spring Festival
        (date(2026, 3, 6), 1, date(2026, 3, 9)),
    ],
)
def test_add_working_days(start: date, count: int, expected: date) -> None:
    assert add_working_days(start, count, PRC) == expected
    assert working_days_between(start, expected, PRC) == count


def test_add_working_days_counts_at_least_one() -> None:
    with pytest.raises(ValueError, match="count is at least 1, not 0"):
        add_working_days(date(2026, 3, 6), 0, WEEKENDS)


# ---------------------------------------------------------------------------
# The shipped PRC schedules


@pytest.mark.parametrize("year", sorted(PRC_SCHEDULES))
def test_make_up_days_fall_on_weekends(year: int) -> None:
    calendar = prc_calendar([year])
    assert calendar.years == {year}
    assert all(day.weekday() >= 5 for day in calendar.workdays)


@pytest.mark.parametrize(
    ("year", "weekdays_off", "working_days"),
    [(2024, 19, 251), (2025, 18, 248), (2026, 19, 248)],  # derived from the notices
)
def test_working_days_of_a_year(year: int, weekdays_off: int, working_days: int) -> None:
    calendar = prc_calendar([year])
    assert sum(day.weekday() < 5 for day in calendar.holidays) == weekdays_off
    assert (
        working_days_between(date(year - 1, 12, 31), date(year, 12, 31), calendar) == working_days
    )


def test_no_schedule_is_invented_for_other_years() -> None:
    with pytest.raises(CalendarError, match=r"no holiday schedule shipped for \[2027\]"):
        prc_calendar([2026, 2027])


# ---------------------------------------------------------------------------
# Calendar files


def test_calendar_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "2025.txt"
    path.write_text(
        "# 国务院办公厅关于2025年部分节假日安排的通知\n"
        "2025-01-28 holiday\n\n2025-01-26   workday  # a Sunday\n",
        encoding="utf-8",
    )
    calendar = HolidayCalendar.load(path)
    assert calendar == HolidayCalendar(
        frozenset({date(2025, 1, 28)}), frozenset({date(2025, 1, 26)})
    )
    assert calendar.to_text() == "2025-01-26 workday\n2025-01-28 holiday\n"
    assert HolidayCalendar.from_text(PRC.to_text()) == PRC


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("2025-01-28 holiday\n2025-13-01 holiday\n", r"^f\.txt:2: expected '<YYYY-MM-DD> holiday"),
        ("2025-01-28\n", r"^f\.txt:1: expected"),
        ("2025-01-28 vacation\n", r"^f\.txt:1: expected"),
        ("2025-01-28 holiday extra\n", r"^f\.txt:1: expected"),
        (
            "2025-01-26 holiday\n2025-01-26 workday\n",
            r"^2025-01-26 is both a holiday and a working",
        ),
    ],
)
def test_bad_calendar_file_is_refused(text: str, match: str) -> None:
    with pytest.raises(CalendarError, match=match):
        HolidayCalendar.from_text(text, source="f.txt")


def test_calendars_combine() -> None:
    assert prc_calendar([2024]) | prc_calendar([2025, 2026]) == PRC
    assert PRC.years == set(PRC_SCHEDULES)
    assert WEEKENDS.years == set()


def test_calendar_error_is_a_trace_error_and_a_value_error() -> None:
    from trace.errors import TraceError

    assert issubclass(CalendarError, TraceError)
    assert issubclass(CalendarError, ValueError)


# ---------------------------------------------------------------------------
# Deadlines


@pytest.mark.parametrize(
    ("role", "event_type", "working_days"),
    [
        (Role.AUTOMAKER, EventType.INSTALL, 15),
        (Role.DEALER, EventType.INSTALL, 30),
        (Role.DEALER, EventType.REMOVE, 30),
        (Role.COLLECTOR, EventType.COLLECT, 30),
        (Role.COLLECTOR, EventType.HANDOVER, 30),
        (Role.SCRAP_PROCESSOR, EventType.REMOVE, 15),
        (Role.CASCADE_OPERATOR, EventType.REPURPOSE, 15),
        (Role.CASCADE_OPERATOR, EventType.HANDOVER, 15),
        (Role.RECYCLER, EventType.ACCEPT, 30),
        (Role.RECYCLER, EventType.COLLECT, 30),
        (Role.RECYCLER, EventType.RECYCLE, 30),
    ],
)
def test_deadline_table(role: Role, event_type: EventType, working_days: int) -> None:
    rule = DEADLINES[(role, event_type)]
    assert rule.working_days == working_days
    assert rule.article.startswith("Art")


def test_table_lists_only_those_rows() -> None:
    assert len(DEADLINES) == 11
    assert {rule.basis for rule in DEADLINES.values()} == {"confirmed", "secondary"}
    assert DEADLINES[(Role.AUTOMAKER, EventType.INSTALL)] == Deadline(15, "Art. 9", "secondary")


@pytest.mark.parametrize(
    ("role", "event_type"),
    [
        (Role.BATTERY_MAKER, EventType.COMMISSION),
        (Role.AUDITOR, EventType.INSPECT),
        (Role.RECYCLER, EventType.INSPECT),
        (Role.SCRAP_PROCESSOR, EventType.HANDOVER),
        (Role.COLLECTOR, EventType.ACCEPT),
    ],
)
def test_events_without_a_deadline(role: Role, event_type: EventType) -> None:
    event_time = at(date(2026, 3, 2))
    assert deadline(role, event_type, event_time, PRC) is None
    assert lateness(role, event_type, event_time, event_time + timedelta(days=400), PRC) is None


def test_deadline_is_midnight_after_the_last_working_day_in_the_event_offset() -> None:
    # Monday 2 March 2026 + 15 working days = Monday 23 March.
    due = deadline(Role.AUTOMAKER, EventType.INSTALL, at(date(2026, 3, 2)), PRC)
    assert due == datetime(2026, 3, 24, tzinfo=CST)
    assert due is not None and due.utcoffset() == timedelta(hours=8)


def test_the_event_day_is_the_one_in_its_own_offset() -> None:
    # 20:00 UTC on 1 March is already 2 March in China.
    utc_evening = datetime(2026, 3, 1, 20, tzinfo=UTC)
    in_china = deadline(Role.AUTOMAKER, EventType.INSTALL, utc_evening.astimezone(CST), PRC)
    in_utc = deadline(Role.AUTOMAKER, EventType.INSTALL, utc_evening, PRC)
    assert in_china == datetime(2026, 3, 24, tzinfo=CST)
    assert in_utc == datetime(2026, 3, 21, tzinfo=UTC)  # Friday 20 March is the last day


def test_deadline_moves_over_a_holiday_week() -> None:
    # Collection on Friday 26 September 2025: Sunday 28th works, 1-8 October are off.
    due = deadline(Role.COLLECTOR, EventType.COLLECT, at(date(2025, 9, 26)), PRC)
    assert due == datetime(2025, 11, 14, tzinfo=CST)
    weekends_only = deadline(Role.COLLECTOR, EventType.COLLECT, at(date(2025, 9, 26)), WEEKENDS)
    assert weekends_only == datetime(2025, 11, 8, tzinfo=CST)


# ---------------------------------------------------------------------------
# Lateness

EVENT_TIME = at(date(2026, 3, 2))  # recycler accepts on Monday; due 24:00 Monday 13 April
DUE = datetime(2026, 4, 14, tzinfo=CST)


@pytest.mark.parametrize(
    ("recorded_at", "late_by"),
    [
        (EVENT_TIME + timedelta(minutes=5), None),  # on time
        (DUE - timedelta(microseconds=1), None),
        (DUE, None),  # exactly at the deadline
        (DUE + timedelta(microseconds=1), 1),  # one working day late
        (DUE + timedelta(hours=23), 1),
        (DUE + timedelta(days=1), 2),
        (datetime(2026, 4, 18, 9, tzinfo=CST), 5),  # a Saturday counts as Monday 20th
        (datetime(2026, 4, 13, 20, tzinfo=UTC), 1),  # 04:00 on the 14th in China
        (datetime(2026, 4, 13, 15, 59, tzinfo=UTC), None),  # 23:59 on the 13th in China
    ],
)
def test_lateness(recorded_at: datetime, late_by: int | None) -> None:
    assert deadline(Role.RECYCLER, EventType.ACCEPT, EVENT_TIME, WEEKENDS) == DUE
    late = lateness(Role.RECYCLER, EventType.ACCEPT, EVENT_TIME, recorded_at, WEEKENDS)
    if late_by is None:
        assert late is None
    else:
        assert late is not None
        assert (late.working_days, late.deadline) == (late_by, DUE)
        assert late.rule == DEADLINES[(Role.RECYCLER, EventType.ACCEPT)]


def test_friday_deadline_recorded_over_the_weekend_is_one_day_late() -> None:
    # Automaker installs on Friday 13 March 2026; 15 working days end on Friday 3 April.
    friday = at(date(2026, 3, 13))
    due = deadline(Role.AUTOMAKER, EventType.INSTALL, friday, WEEKENDS)
    assert due == datetime(2026, 4, 4, tzinfo=CST)
    for day in (4, 5, 6):  # Saturday, Sunday, Monday
        late = lateness(Role.AUTOMAKER, EventType.INSTALL, friday, at(date(2026, 4, day)), WEEKENDS)
        assert late is not None and late.working_days == 1


def test_roles_and_types_may_be_given_as_text() -> None:
    due = deadline("recycler", "accept", EVENT_TIME, WEEKENDS)  # type: ignore[arg-type]
    assert due == DUE


@pytest.mark.parametrize(
    ("event_time", "recorded_at", "match"),
    [
        (datetime(2026, 3, 2, 10), DUE, "event_time needs a UTC offset"),
        (EVENT_TIME, datetime(2026, 4, 20), "recorded_at needs a UTC offset"),
    ],
)
def test_times_need_an_offset(event_time: datetime, recorded_at: datetime, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lateness(Role.RECYCLER, EventType.ACCEPT, event_time, recorded_at, WEEKENDS)
