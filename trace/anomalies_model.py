"""What an anomaly is and the thresholds the detectors of :mod:`trace.anomalies` judge by.

An :class:`Anomaly` is one finding: its :class:`AnomalyKind`, the :class:`Check` that made
it, a :class:`Severity`, a summary in plain words, and the evidence — items, actors, event
ids and amounts (kg, days, working days, ratios) — so that an auditor can look each one up.
:class:`AnomalyConfig` holds every threshold, each with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from trace.rules import DEFAULT_TOLERANCE

__all__ = [
    "CHECK_KINDS",
    "DEFAULT_CONFIG",
    "DEFAULT_RECOVERY_FLOORS",
    "Anomaly",
    "AnomalyConfig",
    "AnomalyKind",
    "Check",
    "Severity",
    "build",
    "listing",
]


class AnomalyKind(StrEnum):
    """The six kinds of anomaly suyuan looks for (DESIGN.md, "Mass balance and anomalies")."""

    LEAKAGE = "leakage"  # items that left one custodian and never reached another
    CUSTODY_GAP = "custody_gap"  # an item waits longer than its next step allows
    DOUBLE_CUSTODY = "double_custody"  # an item claimed by two custodians, or state disagreeing
    MASS_BALANCE = "mass_balance"  # outputs heavier than inputs, or unexplained losses
    RECOVERY = "recovery"  # element recovery above 100 % or below a plausible floor
    LATE_REPORT = "late_report"  # recorded after the 2018 traceability rules' deadline


class Check(StrEnum):
    """The test that found an anomaly; each belongs to one kind (:data:`CHECK_KINDS`)."""

    PENDING_HANDOVER = "pending_handover"  # offered, never answered
    RETURNED = "returned"  # rejected or cancelled, then nothing
    NOT_HANDED_OVER = "not_handed_over"  # retired, never handed to a collector
    NOT_COLLECTED = "not_collected"  # retired at a collector, never taken into storage
    STALLED = "stalled"  # collected, neither recycled nor repurposed
    OVERLAPPING_HANDOVERS = "overlapping_handovers"  # two open claims on one item
    PENDING_MISMATCH = "pending_mismatch"  # item and handover disagree on a pending offer
    HANDOVER_CUSTODIAN = "handover_custodian"  # custodian is not the last receiver
    PART_CUSTODIAN = "part_custodian"  # an assembled part held apart from its parent
    PROJECTION = "projection"  # a projection row disagrees with the in-memory state
    STEP_GAIN = "step_gain"  # a step's outputs outweigh its inputs
    STEP_LOSS = "step_loss"  # a step lost more mass than it may
    ACTOR_YEAR_GAIN = "actor_year_gain"  # an actor-year's outputs outweigh its inputs
    STEP_OVER_RECOVERY = "step_over_recovery"
    STEP_UNDER_RECOVERY = "step_under_recovery"
    YEAR_OVER_RECOVERY = "year_over_recovery"
    YEAR_UNDER_RECOVERY = "year_under_recovery"
    LATE = "late"


CHECK_KINDS: Final[Mapping[Check, AnomalyKind]] = {
    Check.PENDING_HANDOVER: AnomalyKind.LEAKAGE,
    Check.RETURNED: AnomalyKind.LEAKAGE,
    Check.NOT_HANDED_OVER: AnomalyKind.LEAKAGE,
    Check.NOT_COLLECTED: AnomalyKind.CUSTODY_GAP,
    Check.STALLED: AnomalyKind.CUSTODY_GAP,
    Check.OVERLAPPING_HANDOVERS: AnomalyKind.DOUBLE_CUSTODY,
    Check.PENDING_MISMATCH: AnomalyKind.DOUBLE_CUSTODY,
    Check.HANDOVER_CUSTODIAN: AnomalyKind.DOUBLE_CUSTODY,
    Check.PART_CUSTODIAN: AnomalyKind.DOUBLE_CUSTODY,
    Check.PROJECTION: AnomalyKind.DOUBLE_CUSTODY,
    Check.STEP_GAIN: AnomalyKind.MASS_BALANCE,
    Check.STEP_LOSS: AnomalyKind.MASS_BALANCE,
    Check.ACTOR_YEAR_GAIN: AnomalyKind.MASS_BALANCE,
    Check.STEP_OVER_RECOVERY: AnomalyKind.RECOVERY,
    Check.STEP_UNDER_RECOVERY: AnomalyKind.RECOVERY,
    Check.YEAR_OVER_RECOVERY: AnomalyKind.RECOVERY,
    Check.YEAR_UNDER_RECOVERY: AnomalyKind.RECOVERY,
    Check.LATE: AnomalyKind.LATE_REPORT,
}
"""The kind of anomaly each check reports."""


class Severity(StrEnum):
    """How urgent a finding is.

    ``high``: physically impossible or a broken custody invariant (mass or element gained,
    an item claimed twice, state disagreeing with the log) and items lost from the chain;
    ``medium``: implausible but possible (losses, low recovery, items waiting too long,
    reports far past their deadline); ``low``: reports a little late.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


DEFAULT_RECOVERY_FLOORS: Final[Mapping[str, float]] = {
    "Li": 0.50,
    "Ni": 0.80,
    "Co": 0.80,
    "Mn": 0.80,
    "Cu": 0.80,
    "Al": 0.80,
    "Pb": 0.80,
}
"""Plausible floors of element recovery per step, well under the norms (domain.md §2.4,
§3.5): China's 2024 conditions ask Li ≥ 90 % and Ni/Co/Mn ≥ 98 %, the EU Li 50 % and
Co/Cu/Ni/Pb 90 % by 2027. Li at the EU's 2027 level, the others at 80 %: a step below
these has most likely lost material or mis-declared its content, not merely underperformed."""


@dataclass(frozen=True)
class AnomalyConfig:
    """The thresholds of every check; the defaults are suyuan's.

    Attributes
    ----------
    pending_after : timedelta
        A handover still pending after this long is leakage; so is an item rejected or
        cancelled this long ago with no event since. 30 days: transport takes days, and
        Art. 11 gives a collection point 30 working days to report a handover.
    retired_after : timedelta
        A retired item still with its last user (not a collector, cascade operator or
        recycler) after this long was never handed over: leakage.
    uncollected_after : timedelta
        A retired item held by a collector, cascade operator or recycler, with no event for
        this long, was never taken into storage (入库) or sent on: a custody gap.
    collected_after : timedelta
        A collected item with no event for this long was neither recycled nor repurposed
        nor sent on: a custody gap (180 days by default).
    tolerance : float
        The share by which a step's outputs may outweigh its inputs (weighing error), as in
        :func:`trace.rules.check_event`; re-checked from the log, so it may differ from the
        tolerance the rules applied when the events were written.
    max_dismantle_loss : float
        A dismantling whose outputs weigh less than ``1 - max_dismantle_loss`` of its input
        lost mass it does not explain (30 % by default: casings, cathode and foils are all
        recorded outputs; electrolyte and binder are a few per cent).
    max_recovery : float
        Recovery of an element above this share is impossible (1.0: no tolerance; the
        rules' weighing tolerance lets 100.3 % through, physics does not).
    recovery_floors : Mapping[str, float]
        Per element symbol, the least plausible recovery of a recycling or smelting step
        (:data:`DEFAULT_RECOVERY_FLOORS`); elements not named are not judged against a floor.
    min_element_kg : float
        Recovery is judged only for elements with at least this much in the inputs: below
        it, gram rounding of declared contents dominates the ratio.
    late_min_working_days : int
        Reports late by at least this many working days are anomalies.
    late_serious_working_days : int
        Reports later than this are of medium severity, the rest low.
    check_tables : bool
        When scanning a tracer, compare the projection tables with the in-memory state.
    """

    pending_after: timedelta = timedelta(days=30)
    retired_after: timedelta = timedelta(days=30)
    uncollected_after: timedelta = timedelta(days=60)
    collected_after: timedelta = timedelta(days=180)
    tolerance: float = DEFAULT_TOLERANCE
    max_dismantle_loss: float = 0.30
    max_recovery: float = 1.0
    recovery_floors: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_RECOVERY_FLOORS)
    )
    min_element_kg: float = 0.1
    late_min_working_days: int = 1
    late_serious_working_days: int = 30
    check_tables: bool = True

    def __post_init__(self) -> None:
        for name in ("pending_after", "retired_after", "uncollected_after", "collected_after"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        shares = {
            "tolerance": self.tolerance,
            "max_dismantle_loss": self.max_dismantle_loss,
            **{f"recovery_floors[{e!r}]": v for e, v in self.recovery_floors.items()},
        }
        for name, value in shares.items():
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a share in [0, 1], got {value!r}")
        if not (math.isfinite(self.max_recovery) and self.max_recovery > 0):
            raise ValueError(f"max_recovery must be positive, got {self.max_recovery!r}")
        if not (math.isfinite(self.min_element_kg) and self.min_element_kg >= 0):
            raise ValueError(f"min_element_kg must be >= 0, got {self.min_element_kg!r}")
        if not 1 <= self.late_min_working_days <= self.late_serious_working_days:
            raise ValueError("1 <= late_min_working_days <= late_serious_working_days")


DEFAULT_CONFIG: Final = AnomalyConfig()
"""The default thresholds (the ``config`` of :func:`trace.anomalies.find_anomalies`)."""


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding, with the evidence an auditor needs to look it up.

    Attributes
    ----------
    kind, check, severity : what was found, by which test, how urgent.
    summary : str
        The finding in plain words.
    items : tuple of str
        The items involved (codes and lot ids), the most telling first.
    actors : tuple of str
        The organisations involved.
    event_ids : tuple of str
        The events (and handovers, by their opening event) showing it.
    amounts : Mapping[str, float]
        The figures: ``*_kg`` masses, ``*_days`` days, ``working_days_*``, ``ratio``,
        ``*_share`` and ``recovery_<element>`` as fractions (1.0 is 100 %).
    detected_at : datetime
        The scan time (``now``) the finding is relative to.
    year : int, optional
        The calendar year of an actor-year finding.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> a = Anomaly(AnomalyKind.LATE_REPORT, Check.LATE, Severity.LOW, "late", ("P1",),
    ...             ("col-01",), ("e1",), {"working_days_late": 3.0},
    ...             datetime(2026, 5, 1, tzinfo=UTC))
    >>> a.to_json()["amounts"], a.to_json()["detected_at"]
    ({'working_days_late': 3.0}, '2026-05-01T00:00:00+00:00')
    """

    kind: AnomalyKind
    check: Check
    severity: Severity
    summary: str
    items: tuple[str, ...]
    actors: tuple[str, ...]
    event_ids: tuple[str, ...]
    amounts: Mapping[str, float]
    detected_at: datetime
    year: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The anomaly as JSON-ready values (enums by value, times in ISO 8601)."""
        return {
            "kind": self.kind.value,
            "check": self.check.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "items": list(self.items),
            "actors": list(self.actors),
            "event_ids": list(self.event_ids),
            "amounts": dict(sorted(self.amounts.items())),
            "detected_at": self.detected_at.isoformat(),
            "year": self.year,
        }


_SHOWN: Final = 3
_DIGITS: Final = 6  # amounts to the milligram, the microsecond of a day, 1e-6 of a ratio


def build(
    check: Check,
    severity: Severity,
    summary: str,
    *,
    items: Iterable[str],
    actors: Iterable[str],
    events: Iterable[str],
    amounts: Mapping[str, float],
    now: datetime,
    year: int | None = None,
) -> Anomaly:
    """An anomaly of ``check``'s kind; names listed once, in order, and amounts rounded.

    >>> from datetime import UTC, datetime
    >>> a = build(Check.STALLED, Severity.MEDIUM, "waits", items=["P1", "P1"], actors=["c"],
    ...           events=["e"], amounts={"age_days": 200.00000001},
    ...           now=datetime(2026, 1, 1, tzinfo=UTC))
    >>> a.kind.value, a.items, a.amounts
    ('custody_gap', ('P1',), {'age_days': 200.0})
    """
    return Anomaly(
        CHECK_KINDS[check],
        check,
        severity,
        summary,
        tuple(dict.fromkeys(items)),
        tuple(dict.fromkeys(actors)),
        tuple(dict.fromkeys(events)),
        {name: round(value, _DIGITS) for name, value in amounts.items()},
        now,
        year,
    )


def listing(names: Iterable[str]) -> str:
    """Names for a summary: the first three, then how many more.

    >>> listing(["a", "b"]), listing(["a", "b", "c", "d", "e"])
    ('a, b', 'a, b, c and 2 more')
    """
    names = list(names)
    shown = ", ".join(names[:_SHOWN])
    return shown if len(names) <= _SHOWN else f"{shown} and {len(names) - _SHOWN} more"
