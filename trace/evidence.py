"""Rates, totals and the evidence behind them: the value types every suyuan rate is reported in.

EU Regulation 2023/1542 asks for rates an auditor can recompute: Art. 3(60) (recycling
efficiency as a ratio of masses), Annex XII (material recovery per element), Art. 8
(recycled content, documented per model and year) and Art. 76 (collection); China's EPR
forms (NDRC 发改产业 2021 No. 1102) ask for collected ÷ placed. So a :class:`Rate` carries its
numerator and denominator, the items, masses and events behind each (:class:`Evidence`),
and its comparison with each applicable target (:class:`Target`). A zero denominator gives
``value=None`` and a reason, never a division error and never a fake 0.

Evidence lists are capped (a national rate may stand on a million packs); the counts stay
complete and ``cut_items``/``cut_events`` say how many were left out, so a caller can page
through them with ``offset``.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Literal

__all__ = [
    "EVIDENCE_LIMIT",
    "Evidence",
    "Period",
    "Rate",
    "Target",
    "TargetStatus",
    "Total",
    "Unit",
    "dumps",
]

EVIDENCE_LIMIT: Final = 200
"""Items (and events) listed per evidence unless the caller asks for more."""
_KG_DECIMALS: Final = 6  # micrograms: enough to recompute, short enough to read

Unit = Literal["kg", "count", "kWh", "t"]
TargetStatus = Literal["pass", "fail", "not_applicable"]


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period: a calendar year or an inclusive date range, in China Standard Time.

    Examples
    --------
    >>> Period.year(2025).label, Period.year(2025).end.isoformat()
    ('2025', '2025-12-31')
    >>> Period.between(date(2025, 1, 1), date(2025, 6, 30)).label
    '2025-01-01..2025-06-30'
    >>> Period.year(2025).contains(date(2025, 7, 1).toordinal())
    True
    """

    start: date
    end: date
    label: str

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31), str(year))

    @classmethod
    def between(cls, start: date, end: date) -> Period:
        if end < start:
            raise ValueError(f"a period ends after it starts, not {start} .. {end}")
        return cls(start, end, f"{start.isoformat()}..{end.isoformat()}")

    @property
    def is_year(self) -> bool:
        return self.label.isdigit()

    def contains(self, day: int) -> bool:
        """Whether the day (a proleptic Gregorian ordinal) falls in the period."""
        return self.start.toordinal() <= day <= self.end.toordinal()


@dataclass(frozen=True, slots=True)
class Target:
    """One target a rate is compared with, and how the comparison came out.

    ``deadline`` is the date the target binds from; ``status`` is ``not_applicable`` when
    the period is before it or the target is for another battery category (``note`` says
    which), and then ``passed`` is ``None``.
    """

    source: str
    threshold: float
    deadline: date
    passed: bool | None
    status: TargetStatus
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "threshold": self.threshold,
            "deadline": self.deadline.isoformat(),
            "passed": self.passed,
            "status": self.status,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Evidence:
    """The items, masses and events one side of a rate stands on (capped, with full counts).

    ``items`` are sorted ids, ``events`` and ``seqs`` are parallel and in log order, and
    ``masses_kg`` gives the mass each listed item contributes (kg of the element, for
    per-element rates). ``total_items``/``total_events`` count everything; ``cut_*`` say how
    many were left out after ``offset`` and the cap.

    Examples
    --------
    >>> ev = Evidence.of({"B": 2.0, "A": 1.0, "C": 3.0}, [(7, "e7"), (3, "e3")], limit=2)
    >>> ev.items, ev.masses_kg, ev.seqs, ev.cut_items, ev.total_items
    (('A', 'B'), {'A': 1.0, 'B': 2.0}, (3, 7), 1, 3)
    >>> Evidence.of({}, []).to_json()["total_items"]
    0
    """

    items: tuple[str, ...] = ()
    masses_kg: Mapping[str, float] = field(default_factory=dict)
    events: tuple[str, ...] = ()
    seqs: tuple[int, ...] = ()
    total_items: int = 0
    total_events: int = 0
    cut_items: int = 0
    cut_events: int = 0
    offset: int = 0

    @classmethod
    def of(
        cls,
        masses: Mapping[str, float],
        events: Iterable[tuple[int, str]],
        *,
        limit: int = EVIDENCE_LIMIT,
        offset: int = 0,
    ) -> Evidence:
        """Evidence from item masses and ``(seq, event id)`` pairs, paged by ``offset``/``limit``."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset are non-negative")
        unique = dict(events)
        kept_items = heapq.nsmallest(offset + limit, masses)[offset:]
        kept_seqs = heapq.nsmallest(offset + limit, unique)[offset:]
        return cls(
            items=tuple(kept_items),
            masses_kg={i: masses[i] for i in kept_items},
            events=tuple(unique[s] for s in kept_seqs),
            seqs=tuple(kept_seqs),
            total_items=len(masses),
            total_events=len(unique),
            cut_items=max(0, len(masses) - offset - len(kept_items)),
            cut_events=max(0, len(unique) - offset - len(kept_seqs)),
            offset=offset,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "items": list(self.items),
            "masses_kg": {k: round(v, _KG_DECIMALS) for k, v in self.masses_kg.items()},
            "events": list(self.events),
            "seqs": list(self.seqs),
            "total_items": self.total_items,
            "total_events": self.total_events,
            "cut_items": self.cut_items,
            "cut_events": self.cut_events,
            "offset": self.offset,
        }


def _scope_json(scope: Mapping[str, Any]) -> dict[str, Any]:
    return {k: scope[k] for k in sorted(scope)}


@dataclass(frozen=True, slots=True)
class Rate:
    """A ratio with its parts: ``value = numerator / denominator``, or ``None`` with a reason.

    ``scope`` always names ``producer``, ``region``, ``chemistry`` and ``period`` (``None``
    when the rate is not narrowed by it) plus any of ``actor``, ``element`` and ``kind``.
    ``evidence`` backs the numerator, ``denominator_evidence`` the denominator.

    Examples
    --------
    >>> r = Rate.ratio("collection_rate", {"period": "2025"}, 3.0, 0.0, unit="count",
    ...                undefined="nothing placed on the market in 2022-2024")
    >>> r.value, r.undefined_reason
    (None, 'nothing placed on the market in 2022-2024')
    >>> Rate.ratio("collection_rate", {}, 3.0, 4.0, unit="count").value
    0.75
    """

    name: str
    scope: Mapping[str, Any]
    numerator: float
    denominator: float
    value: float | None
    undefined_reason: str | None
    unit: Unit
    targets: tuple[Target, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)
    denominator_evidence: Evidence = field(default_factory=Evidence)

    @classmethod
    def ratio(
        cls,
        name: str,
        scope: Mapping[str, Any],
        numerator: float,
        denominator: float,
        *,
        unit: Unit,
        undefined: str = "the denominator is zero",
        targets: tuple[Target, ...] = (),
        evidence: Evidence | None = None,
        denominator_evidence: Evidence | None = None,
    ) -> Rate:
        """A rate whose value is ``None`` (with ``undefined`` as the reason) when the denominator is 0."""
        defined = denominator > 0
        return cls(
            name=name,
            scope=dict(scope),
            numerator=numerator,
            denominator=denominator,
            value=numerator / denominator if defined else None,
            undefined_reason=None if defined else undefined,
            unit=unit,
            targets=targets,
            evidence=evidence or Evidence(),
            denominator_evidence=denominator_evidence or Evidence(),
        )

    @property
    def target(self) -> Target | None:
        """The first target that applies to the period, else the first listed, else ``None``."""
        for target in self.targets:
            if target.status != "not_applicable":
                return target
        return self.targets[0] if self.targets else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": _scope_json(self.scope),
            "unit": self.unit,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "value": self.value,
            "undefined_reason": self.undefined_reason,
            "targets": [t.to_json() for t in self.targets],
            "evidence": self.evidence.to_json(),
            "denominator_evidence": self.denominator_evidence.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Total:
    """An amount rather than a ratio: packs placed, tonnes of scrap steel, with its evidence.

    Examples
    --------
    >>> Total("placed", {"producer": "bm-01", "period": "2025"}, 12.0, "count").to_json()["amount"]
    12.0
    """

    name: str
    scope: Mapping[str, Any]
    amount: float
    unit: Unit
    targets: tuple[Target, ...] = ()
    evidence: Evidence = field(default_factory=Evidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": _scope_json(self.scope),
            "unit": self.unit,
            "amount": self.amount,
            "targets": [t.to_json() for t in self.targets],
            "evidence": self.evidence.to_json(),
        }


def dumps(value: Any) -> str:
    """JSON text of a ``to_json()`` result (sorted keys, UTF-8 kept).

    >>> print(dumps({"b": "梯次", "a": 1}))
    {
     "a": 1,
     "b": "梯次"
    }
    """
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=1)
