"""Reporting deadlines of the 2018 traceability rules, counted in working days.

新能源汽车动力蓄电池回收利用溯源管理暂行规定 (MIIT, published 2018-07-03, in force
2018-08-01), Arts. 9-15, give each kind of enterprise a number of working days (工作日)
to upload traceability data after a trigger (domain.md §2.2). :data:`DEADLINES` maps
(actor role, event type) to that limit; a pair the rules do not name has none.

Counting follows the Civil Code (民法典) Art. 201 -- the day of the trigger is not
counted -- and Art. 203 -- the last day ends at 24:00 -- in the event's own UTC offset.
Working days are Monday to Friday, minus public holidays, plus the make-up working
days (调休) the State Council announces each year: a :class:`HolidayCalendar`. The
schedules for 2024-2026 ship with :func:`prc_calendar`; a deployment loads later years
from a file (:meth:`HolidayCalendar.from_text`), one ISO date per line::

    # 国务院办公厅关于2025年部分节假日安排的通知
    2025-01-28 holiday
    2025-01-26 workday

Late reports are flagged (:func:`lateness`), never refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Literal

from schemas.actors import Role
from schemas.events import EventType
from trace.errors import TraceError

__all__ = [
    "DEADLINES",
    "PRC_SCHEDULES",
    "CalendarError",
    "Deadline",
    "HolidayCalendar",
    "Lateness",
    "add_working_days",
    "deadline",
    "lateness",
    "prc_calendar",
    "working_days_between",
]

_WEEKEND: Final = frozenset({5, 6})  # date.weekday(): Saturday, Sunday
_HOLIDAY: Final = "holiday"
_WORKDAY: Final = "workday"


class CalendarError(TraceError, ValueError):
    """Raised when a holiday calendar is inconsistent or a calendar file cannot be read."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """A reporting limit: working days after the trigger, the article, how sure the source is."""

    working_days: int
    article: str
    basis: Literal["confirmed", "secondary"]


DEADLINES: Final[Mapping[tuple[Role, EventType], Deadline]] = {
    # Art. 9: the automaker, 15 working days after issuing the vehicle certificate (合格证);
    # suyuan records the pack going into the vehicle as install. [secondary: the draft said 7]
    (Role.AUTOMAKER, EventType.INSTALL): Deadline(15, "Art. 9", "secondary"),
    # Arts. 10 and 12: a battery repaired or replaced by a service shop, 30 working days
    # (a partner reports through the automaker, others upload themselves). [confirmed]
    (Role.DEALER, EventType.INSTALL): Deadline(30, "Arts. 10, 12", "confirmed"),
    (Role.DEALER, EventType.REMOVE): Deadline(30, "Arts. 10, 12", "confirmed"),
    # Art. 11: a collection service point, 30 working days after warehousing in (collect)
    # or out (handover). [confirmed]
    (Role.COLLECTOR, EventType.COLLECT): Deadline(30, "Art. 11", "confirmed"),
    (Role.COLLECTOR, EventType.HANDOVER): Deadline(30, "Art. 11", "confirmed"),
    # Art. 13: a scrapped-vehicle dismantler, 15 working days after taking the battery out.
    # suyuan has no dismantler role; such firms register as scrap processors, whose other
    # handovers (metal lots) the rules do not cover, so only the removal counts. [confirmed]
    (Role.SCRAP_PROCESSOR, EventType.REMOVE): Deadline(15, "Art. 13", "confirmed"),
    # Art. 14: a cascade-use enterprise, 15 working days after a cascade product is made
    # (repurpose, its re-code) and leaves the warehouse (handover). [confirmed]
    (Role.CASCADE_OPERATOR, EventType.REPURPOSE): Deadline(15, "Art. 14", "confirmed"),
    (Role.CASCADE_OPERATOR, EventType.HANDOVER): Deadline(15, "Art. 14", "confirmed"),
    # Art. 15: a recycling enterprise, 30 working days after taking waste batteries into
    # storage (accept, collect) and after recycling them (recycle). [confirmed]
    (Role.RECYCLER, EventType.ACCEPT): Deadline(30, "Art. 15", "confirmed"),
    (Role.RECYCLER, EventType.COLLECT): Deadline(30, "Art. 15", "confirmed"),
    (Role.RECYCLER, EventType.RECYCLE): Deadline(30, "Art. 15", "confirmed"),
    # Battery makers (Art. 8?) have no confirmed limit; auditors report nothing.
}
"""Upload limits of the 2018 traceability rules by (role, event type); see domain.md §2.2."""


# ---------------------------------------------------------------------------
# Calendars


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """Working days: Monday-Friday, minus ``holidays``, plus ``workdays`` (make-up days, 调休).

    With no dates it counts Monday to Friday only.
    """

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        both = sorted(self.holidays & self.workdays)
        if both:
            raise CalendarError(f"{both[0].isoformat()} is both a holiday and a working day")

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() not in _WEEKEND

    @property
    def years(self) -> frozenset[int]:
        """The years whose official schedule this calendar holds (any date of theirs given)."""
        return frozenset(day.year for day in self.holidays | self.workdays)

    def __or__(self, other: HolidayCalendar) -> HolidayCalendar:
        return HolidayCalendar(self.holidays | other.holidays, self.workdays | other.workdays)

    @classmethod
    def from_text(cls, text: str, *, source: str = "<text>") -> HolidayCalendar:
        """Read ``<ISO date> holiday|workday`` lines; ``#`` starts a comment.

        Raises
        ------
        CalendarError
            Naming the source and line of the first line that is not of that form.
        """
        days: dict[str, set[date]] = {_HOLIDAY: set(), _WORKDAY: set()}
        for number, line in enumerate(text.splitlines(), start=1):
            words = line.partition("#")[0].split()
            if not words:
                continue
            try:
                day, kind = date.fromisoformat(words[0]), words[1] if len(words) == 2 else ""
            except ValueError:
                kind = ""
            if kind not in days:
                raise CalendarError(f"{source}:{number}: expected '<YYYY-MM-DD> holiday|workday'")
            days[kind].add(day)
        return cls(frozenset(days[_HOLIDAY]), frozenset(days[_WORKDAY]))

    @classmethod
    def load(cls, path: Path) -> HolidayCalendar:
        """Read a calendar file (:meth:`from_text`)."""
        return cls.from_text(path.read_text(encoding="utf-8"), source=str(path))

    def to_text(self) -> str:
        """The calendar in the file format of :meth:`from_text`, in date order."""
        entries = [(d, _HOLIDAY) for d in self.holidays] + [(d, _WORKDAY) for d in self.workdays]
        return "".join(f"{day.isoformat()} {kind}\n" for day, kind in sorted(entries))


@dataclass(frozen=True, slots=True)
class _Schedule:
    notice: str
    source: str
    holidays: str  # MM-DD, or MM-DD..MM-DD for a run of days, separated by spaces
    workdays: str


PRC_SCHEDULES: Final[Mapping[int, _Schedule]] = {
    2024: _Schedule(
        "国务院办公厅关于2024年部分节假日安排的通知 (国办发明电〔2023〕7号, 2023-10-25)",  # noqa: RUF001
        "人民日报 2023-10-26 p. 6, http://paper.people.com.cn/rmrb/html/2023-10/26/"
        "nw.D110000renmrb_20231026_3-06.htm",
        "01-01 02-10..02-17 04-04..04-06 05-01..05-05 06-10 09-15..09-17 10-01..10-07",
        "02-04 02-18 04-07 04-28 05-11 09-14 09-29 10-12",
    ),
    2025: _Schedule(
        "国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号, 2024-11-12)",  # noqa: RUF001
        "新华社 via 光明网, https://m.gmw.cn/2024-11/12/content_1303894933.htm",
        "01-01 01-28..02-04 04-04..04-06 05-01..05-05 05-31..06-02 10-01..10-08",
        "01-26 02-08 04-27 09-28 10-11",
    ),
    2026: _Schedule(
        "国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04)",
        "新华社 via 光明网, https://politics.gmw.cn/2025-11/04/content_38391083.htm",
        "01-01..01-03 02-15..02-23 04-04..04-06 05-01..05-05 06-19..06-21 09-25..09-27 "
        "10-01..10-07",
        "01-04 02-14 02-28 05-09 09-20 10-10",
    ),
}
"""The State Council's holiday schedules suyuan ships, by year, with the notice and a source."""


def _days(year: int, spans: str) -> set[date]:
    days: set[date] = set()
    for span in spans.split():
        first, _, last = span.partition("..")
        day = date.fromisoformat(f"{year}-{first}")
        end = date.fromisoformat(f"{year}-{last or first}")
        while day <= end:
            days.add(day)
            day += timedelta(days=1)
    return days


def prc_calendar(years: Iterable[int] | None = None) -> HolidayCalendar:
    """The PRC working-day calendar for ``years`` (default: every year of :data:`PRC_SCHEDULES`).

    Dates in other years count Monday to Friday only; load their schedule and combine
    calendars with ``|``.
    """
    chosen = sorted(PRC_SCHEDULES) if years is None else sorted(years)
    missing = [year for year in chosen if year not in PRC_SCHEDULES]
    if missing:
        raise CalendarError(f"no holiday schedule shipped for {missing}; load it from a file")
    holidays = {d for y in chosen for d in _days(y, PRC_SCHEDULES[y].holidays)}
    workdays = {d for y in chosen for d in _days(y, PRC_SCHEDULES[y].workdays)}
    return HolidayCalendar(frozenset(holidays), frozenset(workdays))


# ---------------------------------------------------------------------------
# Counting


def working_days_between(start: date, end: date, calendar: HolidayCalendar) -> int:
    """Working days after ``start`` up to and including ``end``; negative if ``end`` is earlier.

    Examples
    --------
    >>> weekends = HolidayCalendar()
    >>> working_days_between(date(2026, 3, 6), date(2026, 3, 9), weekends)  # Fri -> Mon
    1
    >>> working_days_between(date(2026, 3, 9), date(2026, 3, 6), weekends)
    -1
    """
    if end < start:
        return -working_days_between(end, start, calendar)
    return sum(
        calendar.is_working_day(start + timedelta(days=n)) for n in range(1, (end - start).days + 1)
    )


def add_working_days(start: date, count: int, calendar: HolidayCalendar) -> date:
    """The ``count``-th working day after ``start`` (``count`` ≥ 1).

    >>> spring_festival = prc_calendar([2025])  # 26 Jan works; 28 Jan - 4 Feb are holidays
    >>> add_working_days(date(2025, 1, 24), 2, spring_festival)
    datetime.date(2025, 1, 27)
    >>> add_working_days(date(2025, 1, 24), 3, spring_festival)
    datetime.date(2025, 2, 5)
    """
    if count < 1:
        raise ValueError(f"count is at least 1, not {count}")
    day = start
    while count:
        day += timedelta(days=1)
        count -= calendar.is_working_day(day)
    return day


@functools.lru_cache(maxsize=8192)
def _last_allowed_day(start: date, working_days: int, calendar: HolidayCalendar) -> date:
    # Every event's deadline is checked when it is recorded; most share their day.
    return add_working_days(start, working_days, calendar)


def _aware(value: datetime, name: str) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(f"{name} needs a UTC offset")
    return value


def deadline(
    role: Role, event_type: EventType, event_time: datetime, calendar: HolidayCalendar
) -> datetime | None:
    """When the report of an event is due: 24:00 of the last allowed working day, or ``None``.

    The time is written as 00:00 of the next day, in ``event_time``'s offset.

    >>> from datetime import timezone
    >>> cst = timezone(timedelta(hours=8))
    >>> deadline(Role.RECYCLER, EventType.RECYCLE, datetime(2026, 3, 2, 10, tzinfo=cst),
    ...          HolidayCalendar()).isoformat()
    '2026-04-14T00:00:00+08:00'
    >>> deadline(Role.AUDITOR, EventType.RECYCLE, datetime(2026, 3, 2, tzinfo=cst),
    ...          HolidayCalendar()) is None
    True
    """
    rule = DEADLINES.get((Role(role), EventType(event_type)))
    if rule is None:
        return None
    start = _aware(event_time, "event_time")
    last = _last_allowed_day(start.date(), rule.working_days, calendar)
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=start.tzinfo)


@dataclass(frozen=True, slots=True)
class Lateness:
    """A report after its deadline: by how many working days, the deadline and its rule."""

    working_days: int
    deadline: datetime
    rule: Deadline


def lateness(
    role: Role,
    event_type: EventType,
    event_time: datetime,
    recorded_at: datetime,
    calendar: HolidayCalendar,
) -> Lateness | None:
    """How late an event was recorded, or ``None`` if on time (or without a deadline).

    A record made after the deadline is late by the working days from the last allowed
    day to the day of the record, a rest day counting as the working day after it: a
    Saturday record of a Friday deadline is one working day late.
    """
    due = deadline(role, event_type, event_time, calendar)
    if due is None or _aware(recorded_at, "recorded_at") <= due:
        return None
    last_day = due.date() - timedelta(days=1)
    day = recorded_at.astimezone(due.tzinfo).date()
    days = working_days_between(last_day, day, calendar) + (not calendar.is_working_day(day))
    return Lateness(days, due, DEADLINES[(Role(role), EventType(event_type))])
