"""Anomalies in the traced flow: leakage, custody gaps, double custody, mass balance,
element recovery and late reporting.

The custody rules (:mod:`trace.rules`) refuse what must never happen; anomalies are what
they let through, or what only time reveals. :func:`find_anomalies` looks for six kinds
(:class:`AnomalyKind`), each found by one or more checks (:class:`Check`):

==================  =====================================================================
kind                found when
==================  =====================================================================
leakage             a handover is pending after ``pending_after`` (30 days); a waste item
                    or lot was rejected or cancelled that long ago and nothing followed; a
                    retired item is still with its last user after ``retired_after`` (30
                    days) — the collection duty of the 2018 interim measures
                    (工信部联节 2018 No. 43, domain.md §2.1)
custody gap         a retired item at a collector, cascade operator or recycler has no event
                    for ``uncollected_after`` (60 days); a collected item is neither
                    recycled nor repurposed nor sent on for ``collected_after`` (180 days)
double custody      two pending or accepted handovers of an item overlap in time; an item
                    and its pending handover disagree; a pack's or lot's custodian is not
                    its last receiver; a part is held apart from its parent; a projection
                    row disagrees with the in-memory state (after an import or damage)
mass balance        a step's outputs outweigh its inputs beyond ``tolerance``, per step and
                    per actor-year (reagents count as inputs); a dismantling loses over
                    ``max_dismantle_loss`` (30 %); a split or merge loses beyond tolerance
recovery            a recycle or smelt step, or an actor-year of them, recovers over 100 %
                    of an element (impossible; EU 2023/1542 Annex XII and Delegated Reg.
                    (EU) 2025/606 define recovery, docs/metrics.md) or under its plausible
                    floor (Li 50 %, Ni/Co/Mn/Cu/Al/Pb 80 %, against China's 2024 norms of
                    Li ≥ 90 %, Ni/Co/Mn ≥ 98 %: 规范条件 2024年本, domain.md §2.4, §3.5)
late reporting      an event recorded after its deadline under the 2018 traceability rules
                    (新能源汽车动力蓄电池回收利用溯源管理暂行规定, Arts. 9-15, domain.md §2.2),
                    by the working days of :mod:`trace.deadlines`
==================  =====================================================================

Every threshold is in :class:`AnomalyConfig`. Scanning reads compact state in one pass
(:class:`ScanState`): the tracer's in-memory items and handovers, and three streaming
queries over the events table — accept times, transformation bodies, late events — with
no query per item; see :meth:`ScanState.from_tracer`. Measured on a shared 2-vCPU machine
(load about 6): :meth:`~trace.simulate_config.SimConfig.demo`, 10,000 packs and 69,000
events, reads in 0.4 s (0.3 s more to compare the projection tables) and is checked in
0.2 s; a synthetic 200,000-pack world (600,000 items and handovers, 400,000 steps) is
checked in 10 s (1.1 GB for the process, world included). A 1M-pack world therefore takes a few minutes and a few GB
beyond the tracer's own world: about a minute of checks, the rest streaming rows.

=====================================  ===================================================
:mod:`trace.anomalies_model`           :class:`Anomaly`, :class:`AnomalyConfig`, the enums
:mod:`trace.anomalies_state`           :class:`ScanState` and its facts from the log
:mod:`trace.anomalies_tables`          projection rows against the in-memory state
:mod:`trace.anomalies_custody`         leakage, custody gaps, double custody
:mod:`trace.anomalies_flows`           mass balance, element recovery
:mod:`trace.anomalies_late`            late reporting
=====================================  ===================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from trace.anomalies_custody import custody_anomalies
from trace.anomalies_flows import flow_anomalies
from trace.anomalies_late import late_anomalies
from trace.anomalies_model import (
    CHECK_KINDS,
    DEFAULT_CONFIG,
    DEFAULT_RECOVERY_FLOORS,
    Anomaly,
    AnomalyConfig,
    AnomalyKind,
    Check,
    Severity,
)
from trace.anomalies_state import LateFact, ScanState, StepFact
from trace.anomalies_tables import TableMismatch
from trace.engine import Tracer

__all__ = [
    "CHECK_KINDS",
    "DEFAULT_CONFIG",
    "DEFAULT_RECOVERY_FLOORS",
    "Anomaly",
    "AnomalyConfig",
    "AnomalyKind",
    "Check",
    "LateFact",
    "ScanState",
    "Severity",
    "StepFact",
    "TableMismatch",
    "find_anomalies",
]

_KIND_ORDER: Final = {kind: n for n, kind in enumerate(AnomalyKind)}
_CHECK_ORDER: Final = {check: n for n, check in enumerate(Check)}


def _order(a: Anomaly) -> tuple[int, int, tuple[str, ...], tuple[str, ...], int]:
    return (_KIND_ORDER[a.kind], _CHECK_ORDER[a.check], a.event_ids, a.items, a.year or 0)


def find_anomalies(
    source: Tracer | ScanState, *, now: datetime, config: AnomalyConfig = DEFAULT_CONFIG
) -> list[Anomaly]:
    """Every anomaly in ``source`` as of ``now``, by kind, check and evidence.

    Parameters
    ----------
    source : Tracer or ScanState
        A tracer (caught up, then read in one pass: :meth:`ScanState.from_tracer`, with the
        projection tables compared when ``config.check_tables``), or a state built before
        (:meth:`ScanState.follow` keeps one up to date).
    now : datetime
        The time the scan is as of (timezone-aware): pending handovers, retired and
        collected items are aged against it.
    config : AnomalyConfig
        The thresholds.

    Returns
    -------
    list of Anomaly
        Ordered by kind, check, events and items; the same source gives the same list.

    Examples
    --------
    A handover of a retired pack, offered on 5 January and still unanswered a month later:

    >>> from datetime import UTC, datetime, timedelta
    >>> from trace.state import HandoverState, HandoverStatus, MemoryWorld
    >>> world = MemoryWorld()
    >>> offered = datetime(2026, 1, 5, 9, tzinfo=UTC)
    >>> world.handovers["h-1"] = HandoverState(
    ...     id="h-1", sender="byd", receiver="gz-collect", items=("001PB1A0000001E390000042",),
    ...     transfer_ownership=True, status=HandoverStatus.PENDING, created=offered)
    >>> state = ScanState(world)
    >>> find_anomalies(state, now=offered + timedelta(days=29))
    []
    >>> (found,) = find_anomalies(state, now=offered + timedelta(days=31))
    >>> found.kind.value, found.check.value, found.severity.value, found.amounts["age_days"]
    ('leakage', 'pending_handover', 'high', 31.0)
    >>> found.summary
    '001PB1A0000001E390000042 handed over by byd to gz-collect 31 days ago was never accepted, rejected or cancelled (limit 30 days)'
    """
    if now.utcoffset() is None:
        raise ValueError("now needs a UTC offset")
    state = (
        source
        if isinstance(source, ScanState)
        else ScanState.from_tracer(source, check_tables=config.check_tables)
    )
    found = [
        *custody_anomalies(state, now=now, config=config),
        *flow_anomalies(state, now=now, config=config),
        *late_anomalies(state, now=now, config=config),
    ]
    return sorted(found, key=_order)
