"""What a rate computation is asked for — periods and filters — and the helpers every rate uses.

A :class:`Query` names the periods (calendar years in China Standard Time, or one date
range), the filters (producer, GB/T 2260 province, chemistry) and how much evidence to
list. A filter that does not apply to a rate's scope leaves that rate out: a producer
filter keeps only producer rates; a chemistry filter drops the recycler and scrap rates,
whose outputs have no chemistry (docs/metrics.md, "Scope").
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from operator import itemgetter
from typing import Any, Final, Generic, TypeVar

from schemas.composition import parse_chemistry
from trace.evidence import EVIDENCE_LIMIT, Evidence, Period, Rate, Total
from trace.rates_facts import RateFacts

__all__ = [
    "FIRST",
    "NATIONAL",
    "GroupKey",
    "Listing",
    "Query",
    "attach_events",
    "scope",
    "years_of",
]

NATIONAL: Final = None
"""The producer of a national (all-producer) rate: every physical pack counts once."""
GroupKey = tuple[str | None, str]
"""A group of a per-producer rate: producer (:data:`NATIONAL` for all), period label."""

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Query:
    """Periods, filters and evidence paging of one computation.

    Examples
    --------
    >>> q = Query(periods=(Period.year(2024), Period.year(2025)), chemistry="lfp")
    >>> q.chemistry, q.label_of(date(2025, 3, 1).toordinal())
    ('LFP', '2025')
    """

    periods: tuple[Period, ...]
    producer: str | None = None
    region: str | None = None
    chemistry: str | None = None
    limit: int = EVIDENCE_LIMIT
    offset: int = 0
    _years: dict[int, Period] | None = field(init=False, repr=False, compare=False)
    _days: dict[int, str | None] = field(init=False, repr=False, compare=False)
    _year_of: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.chemistry is not None:
            object.__setattr__(self, "chemistry", parse_chemistry(self.chemistry).value)
        years = {p.start.year: p for p in self.periods if p.is_year}
        object.__setattr__(self, "_years", years if len(years) == len(self.periods) else None)
        object.__setattr__(self, "_days", {})
        object.__setattr__(self, "_year_of", {})

    @classmethod
    def build(
        cls,
        facts: RateFacts,
        *,
        year: int | None = None,
        period: Period | None = None,
        producer: str | None = None,
        region: str | None = None,
        chemistry: str | None = None,
        limit: int = EVIDENCE_LIMIT,
        offset: int = 0,
    ) -> Query:
        """A query over ``year``, or ``period``, or every year the facts span."""
        if year is not None and period is not None:
            raise ValueError("give a year or a period, not both")
        if period is not None:
            periods: tuple[Period, ...] = (period,)
        elif year is not None:
            periods = (Period.year(year),)
        else:
            periods = tuple(Period.year(y) for y in years_of(facts))
        return cls(periods, producer, region, chemistry, limit, offset)

    def year_of(self, day: int) -> int:
        """The calendar year of a CST day ordinal (remembered per day)."""
        cache = self._year_of
        found = cache.get(day)
        if found is None:
            found = cache[day] = date.fromordinal(day).year
        return found

    def label_of(self, day: int) -> str | None:
        """The label of the period ``day`` falls in, or ``None``."""
        cache = self._days
        if day in cache:
            return cache[day]
        years = self._years
        found: str | None = None
        if years is not None:
            hit = years.get(date.fromordinal(day).year)
            found = None if hit is None else hit.label
        else:
            found = next((p.label for p in self.periods if p.contains(day)), None)
        cache[day] = found
        return found

    def period(self, label: str) -> Period:
        return next(p for p in self.periods if p.label == label)

    @property
    def years(self) -> tuple[int, ...]:
        """The calendar years asked for (empty for a date range)."""
        return tuple(p.start.year for p in self.periods if p.is_year)

    def keeps_region(self, region: str) -> bool:
        return self.region is None or region == self.region

    def keeps_chemistry(self, chemistry: str | None) -> bool:
        return self.chemistry is None or chemistry == self.chemistry


def years_of(facts: RateFacts) -> range:
    """Every calendar year (CST) from the first to the last event the rates read.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> years_of(example_facts())
    range(2022, 2026)
    """
    if facts.first_day is None or facts.last_day is None:
        return range(0)
    first = date.fromordinal(facts.first_day).year
    return range(first, date.fromordinal(facts.last_day).year + 1)


def scope(q: Query, period: str, *, producer: str | None = None, **extra: Any) -> dict[str, Any]:
    """The scope of a rate: the query's filters, the producer, the period and ``extra``.

    Examples
    --------
    >>> scope(Query((Period.year(2025),), region="440000"), "2025", element="Li")
    {'producer': None, 'region': '440000', 'chemistry': None, 'period': '2025', 'element': 'Li'}
    """
    return {
        "producer": producer,
        "region": q.region,
        "chemistry": q.chemistry,
        "period": period,
        **extra,
    }


FIRST: Final = itemgetter(0)
"""The item of rows led by it, such as ``(code, kg, seq)``. A :class:`Listing` compares
such rows whole, with no key function to call on each: their items are distinct, so the
item decides every comparison."""


class Listing(Generic[R]):
    """A page of a group's rows, by item id, and the group's full counts.

    A group's rows name distinct items. Rows already in item order (``ordered``) are
    paged by slicing; others in one pass. Rows that each stand on an event of their own
    (``one_event_each``: events naming a single item, such as commissions) are not counted
    again by event. :meth:`merge` pages the union of disjoint groups
    (a collection rate's three years) from their pages alone. :meth:`evidence` lists the
    page's items with the kg each contributes and the events they stand on; event ids are
    filled in afterwards, for a whole computation at once (:func:`attach_events`).

    Examples
    --------
    >>> from operator import itemgetter
    >>> q = Query((Period.year(2025),), limit=2)
    >>> rows = [("B", 2.0, 7), ("A", 1.0, 3), ("C", 3.0, 3)]
    >>> page = Listing(q, rows, item=itemgetter(0), seq=itemgetter(2))
    >>> ev = page.evidence(itemgetter(1))
    >>> ev.items, ev.masses_kg, ev.seqs, ev.cut_items, ev.total_events, ev.cut_events
    (('A', 'B'), {'A': 1.0, 'B': 2.0}, (3, 7), 1, 2, 0)
    >>> more = Listing(q, [("0", 5.0, 1)], item=itemgetter(0), seq=itemgetter(2))
    >>> both = Listing.merge(q, [page, more])
    >>> both.evidence(itemgetter(1)).items, both.total
    (('0', 'A'), 4)
    """

    __slots__ = ("item", "offset", "rows", "seq", "total", "total_events")

    def __init__(
        self,
        q: Query,
        rows: Sequence[R],
        *,
        item: Callable[[R], str],
        seq: Callable[[R], int],
        ordered: bool = False,
        one_event_each: bool = False,
    ) -> None:
        wanted = q.offset + q.limit
        self.item, self.seq, self.offset = item, seq, q.offset
        self.total = len(rows)
        self.total_events = self.total if one_event_each else len(set(map(seq, rows)))
        self.rows = list(rows[:wanted]) if ordered else _smallest(wanted, rows, item)

    @classmethod
    def merge(cls, q: Query, parts: Sequence[Listing[R]]) -> Listing[R]:
        """The listing of the union of ``parts``: groups with no item or event in common."""
        if len(parts) == 1:
            return parts[0]
        out: Listing[R] = cls.__new__(cls)
        first = parts[0]
        out.item, out.seq, out.offset = first.item, first.seq, q.offset
        out.total = sum(p.total for p in parts)
        out.total_events = sum(p.total_events for p in parts)
        wanted = q.offset + q.limit
        out.rows = _smallest(wanted, (r for p in parts for r in p.rows), first.item)
        return out

    def evidence(self, kg: Callable[[R], float]) -> Evidence:
        """The page as :class:`Evidence`, each listed row with ``kg(row)``."""
        rows = self.rows[self.offset :]
        items = tuple(map(self.item, rows))
        seqs = tuple(sorted(set(map(self.seq, rows))))
        return Evidence(
            items=items,
            masses_kg={i: kg(r) for i, r in zip(items, rows, strict=True)},
            seqs=seqs,
            total_items=self.total,
            total_events=self.total_events,
            cut_items=max(0, self.total - self.offset - len(items)),
            cut_events=max(0, self.total_events - len(seqs)),
            offset=self.offset,
        )


def _smallest(wanted: int, rows: Iterable[R], item: Callable[[R], str]) -> list[R]:
    """The ``wanted`` rows of least ``item``, in order (rows led by it, :data:`FIRST`, whole).

    >>> rows = [("b", 1), ("a", 2), ("c", 0)]
    >>> _smallest(2, rows, FIRST), _smallest(2, rows, itemgetter(1))
    ([('a', 2), ('b', 1)], [('c', 0), ('b', 1)])
    """
    if item is FIRST:
        return heapq.nsmallest(wanted, rows)  # type: ignore[type-var]  # tuples, item first
    return heapq.nsmallest(wanted, rows, key=item)


Record = TypeVar("Record", Rate, Total)


def attach_events(facts: RateFacts, records: Sequence[Record]) -> list[Record]:
    """``records`` with the event ids of their evidence filled in, looked up in one batch.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> from trace.evidence import Evidence
    >>> total = Total("placed", {}, 1.0, "count", evidence=Evidence(items=("P",), seqs=(1,)))
    >>> attach_events(example_facts(), [total])[0].evidence.events
    ('',)
    """
    wanted: set[int] = set()
    for record in records:
        wanted.update(record.evidence.seqs)
        if isinstance(record, Rate):
            wanted.update(record.denominator_evidence.seqs)
    ids = facts.event_ids(wanted)
    done: dict[int, Evidence] = {}

    def fill(ev: Evidence) -> Evidence:
        found = done.get(id(ev))
        if found is None:
            found = done[id(ev)] = replace(ev, events=tuple(ids.get(s, "") for s in ev.seqs))
        return found

    out: list[Record] = []
    for record in records:
        if isinstance(record, Rate):
            out.append(
                replace(
                    record,
                    evidence=fill(record.evidence),
                    denominator_evidence=fill(record.denominator_evidence),
                )
            )
        else:
            out.append(replace(record, evidence=fill(record.evidence)))
    return out
