"""Late reporting: events recorded after the deadlines of the 2018 traceability rules.

新能源汽车动力蓄电池回收利用溯源管理暂行规定 (MIIT, in force 2018-08-01), Arts. 9-15, give
each kind of enterprise a number of working days to upload its traceability data
(domain.md §2.2); :mod:`trace.deadlines` counts them. The projections record each event's
lateness when it is appended (``trace_events.late_working_days``); a followed
:class:`~trace.anomalies_state.ScanState` recomputes it with :func:`trace.deadlines.lateness`.
Each late event is one anomaly naming the actor, the event, its items and the working days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from trace.anomalies_model import Anomaly, AnomalyConfig, Check, Severity, build, listing
from trace.anomalies_state import LateFact, ScanState
from trace.deadlines import DEADLINES, deadline

__all__ = ["late_anomalies"]

_DAY: Final = timedelta(days=1)


def _late(state: ScanState, fact: LateFact, config: AnomalyConfig, now: datetime) -> Anomaly:
    actor = state.world.actor(fact.actor)
    due = rule = None
    if actor is not None:
        due = deadline(actor.role, fact.type, fact.event_time, state.calendar)
        rule = DEADLINES.get((actor.role, fact.type))
    # deadline() gives 00:00 after the last allowed day, in the event's own offset.
    by = "" if due is None else f", due by {(due - _DAY).date().isoformat()}"
    article = "" if rule is None else f" ({rule.article}: {rule.working_days} working days)"
    severity = (
        Severity.MEDIUM if fact.working_days > config.late_serious_working_days else Severity.LOW
    )
    amounts = {"working_days_late": float(fact.working_days)}
    if rule is not None:
        amounts["deadline_working_days"] = float(rule.working_days)
    return build(
        Check.LATE,
        severity,
        f"{fact.actor} recorded its {fact.type.value} of {listing(fact.items)} "
        f"{fact.working_days} working day{'s' if fact.working_days != 1 else ''} late"
        f"{by}{article}, on {fact.recorded_at.date().isoformat()}",
        items=fact.items,
        actors=(fact.actor,),
        events=(fact.event_id,),
        amounts=amounts,
        now=now,
    )


def late_anomalies(state: ScanState, *, now: datetime, config: AnomalyConfig) -> list[Anomaly]:
    """Events recorded at least ``late_min_working_days`` after their deadline.

    Examples
    --------
    >>> from datetime import timedelta, timezone
    >>> from schemas.actors import Actor, Role
    >>> from schemas.events import EventType
    >>> from trace.anomalies_model import DEFAULT_CONFIG
    >>> from trace.deadlines import HolidayCalendar
    >>> from trace.state import MemoryWorld
    >>> cst = timezone(timedelta(hours=8))
    >>> world = MemoryWorld()
    >>> world.actors["col-01"] = Actor(id="col-01", name="Collector", role=Role.COLLECTOR,
    ...                                region="440000")
    >>> state = ScanState(world, HolidayCalendar())  # Monday to Friday
    >>> state.late.append(LateFact(
    ...     "e-1", EventType.COLLECT, "col-01", ("P1",), datetime(2026, 3, 2, 10, tzinfo=cst),
    ...     recorded_at=datetime(2026, 4, 16, 10, tzinfo=cst), working_days=3))
    >>> (a,) = late_anomalies(state, now=datetime(2026, 5, 1, tzinfo=cst),
    ...                       config=DEFAULT_CONFIG)
    >>> a.summary
    'col-01 recorded its collect of P1 3 working days late, due by 2026-04-13 (Art. 11: 30 working days), on 2026-04-16'
    """
    return [
        _late(state, fact, config, now)
        for fact in state.late
        if fact.working_days >= config.late_min_working_days
    ]
