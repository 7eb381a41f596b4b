"""What the anomaly detectors read: current states plus a few compact facts from the log.

The item and handover states (a :class:`~trace.state.MemoryWorld`) answer most checks. The
rest need facts a state does not keep, gathered in one pass and kept compact:

* when each accepted handover was accepted (whether two claims on an item overlap);
* one :class:`StepFact` per transformation — dismantle, recycle, lot split, merge and
  smelt — with its masses and element contents summed (mass balance, recovery);
* one :class:`LateFact` per event recorded after its deadline (late reporting);
* the rows of the projection tables that disagree with the in-memory state.

:meth:`ScanState.from_tracer` reads them with three streaming queries over the events table
(no query per item) and one over each projection table; :meth:`ScanState.apply` keeps a
state up to date event by event, as a :meth:`~trace.engine.Tracer.subscribe` subscriber
(:meth:`ScanState.follow` does both).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select

from schemas.events import EventType
from trace.anomalies_tables import TableMismatch, compare_tables, stream, table
from trace.deadlines import HolidayCalendar, lateness, prc_calendar
from trace.engine import Accepted, Tracer
from trace.rules_common import input_basis
from trace.state import ItemState, MemoryWorld

__all__ = ["TRANSFORMS", "LateFact", "ScanState", "StepFact"]

TRANSFORMS: Final = frozenset(
    {
        EventType.DISMANTLE,
        EventType.RECYCLE,
        EventType.LOT_SMELT,
        EventType.LOT_SPLIT,
        EventType.LOT_MERGE,
    }
)
"""The steps that turn items into other items, balanced in kilograms."""
_ACCEPT: Final = EventType.ACCEPT

_Lookup = Callable[[str], ItemState | None]


@dataclass(frozen=True, slots=True)
class StepFact:
    """One transformation, summed: what went in and what came out, in kg.

    ``in_kg`` counts each input at its declared mass capped at its recorded mass (as the
    rules do; a split or merge declares none, so its inputs count at their recorded
    mass). ``in_content`` sums the inputs' element content, or is ``None`` when an input's
    content is unknown; ``out_content`` sums the output lots'. ``sources`` are what the
    inputs were made from (the pack a black-mass lot came from), for the evidence.
    """

    event_id: str
    type: EventType
    actor: str
    time: datetime  # the event time, in the event's own UTC offset
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    sources: tuple[str, ...]
    in_kg: float
    reagents_kg: float
    out_kg: float
    in_content: Mapping[str, float] | None
    out_content: Mapping[str, float]

    @property
    def year(self) -> int:
        """The calendar year of the event time (docs/metrics.md)."""
        return self.time.year


@dataclass(frozen=True, slots=True)
class LateFact:
    """An event recorded after its reporting deadline (:func:`trace.deadlines.lateness`).

    ``items`` are the items the event touched, sorted.
    """

    event_id: str
    type: EventType
    actor: str
    items: tuple[str, ...]
    event_time: datetime
    recorded_at: datetime
    working_days: int


def _utc(moment: datetime) -> datetime:
    # SQLite returns the UTC times the projections stored without their offset.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _add(total: dict[str, float], content: Mapping[str, float]) -> None:
    for element, kg in content.items():
        total[element] = total.get(element, 0.0) + float(kg)


def _lot_output(entry: Mapping[str, Any]) -> tuple[str, float, Mapping[str, float]]:
    lot = entry["lot"]
    return lot["id"], float(lot["mass_kg"]), lot.get("content_kg") or {}


def _step_fact(event_id: str, actor: str, body: Mapping[str, Any], lookup: _Lookup) -> StepFact:
    """The :class:`StepFact` of a transformation's logged body; ``lookup`` finds item states.

    Masses and contents of existing items (inputs, dismantled parts) come from ``lookup``;
    output lots from the body.
    """
    data = body["data"]
    kind = EventType(data["type"])
    declared: list[tuple[str, float | None]]
    parts: Sequence[str] = ()
    if kind is EventType.DISMANTLE:
        declared = [(data["item"], float(data["mass_kg"]))]
        parts = data.get("parts", ())
        lots = [_lot_output(o) for o in data.get("outputs", ())]
    elif kind is EventType.LOT_SPLIT:
        declared = [(data["lot"], None)]
        lots = [_lot_output(p) for p in data["parts"]]
    elif kind is EventType.LOT_MERGE:
        declared = [(lot_id, None) for lot_id in data["lots"]]
        lots = [_lot_output(data["into"])]
    else:  # recycle, lot_smelt
        declared = [(i["item"], float(i["mass_kg"])) for i in data["inputs"]]
        lots = [_lot_output(o) for o in data["outputs"]]
    in_kg = 0.0
    in_content: dict[str, float] | None = {}
    sources: dict[str, None] = {}
    for item_id, kg in declared:
        state = lookup(item_id)
        if state is None:  # cannot happen for a logged event; count what was declared
            in_kg += kg or 0.0
            in_content = None
            continue
        in_kg += (state.mass_kg or 0.0) if kg is None else input_basis(state, kg)
        sources.update(dict.fromkeys(state.sources))
        if in_content is not None and state.content_kg:
            _add(in_content, state.content_kg)
        else:
            in_content = None  # an input of unknown content: no element balance
    out_kg = 0.0
    out_content: dict[str, float] = {}
    for part in parts:
        state = lookup(part)
        out_kg += 0.0 if state is None else (state.mass_kg or 0.0)
    for _lot_id, kg, content in lots:
        out_kg += kg
        _add(out_content, content)
    inputs = tuple(item_id for item_id, _ in declared)
    return StepFact(
        event_id=event_id,
        type=kind,
        actor=actor,
        time=datetime.fromisoformat(body["event_time"]),
        inputs=inputs,
        outputs=(*parts, *(lot_id for lot_id, _, _ in lots)),
        sources=tuple(s for s in sources if s not in inputs),
        in_kg=in_kg,
        reagents_kg=float(data.get("reagents_kg", 0.0)),
        out_kg=out_kg,
        in_content=in_content,
        out_content=out_content,
    )


@dataclass
class ScanState:
    """The states and facts the anomaly checks read (see the module docstring).

    Parameters
    ----------
    world : MemoryWorld
        Items, handovers and actors as they are now; read, never changed.
    calendar : HolidayCalendar, optional
        Working days for :meth:`apply`'s lateness (default: :func:`prc_calendar`).

    Attributes
    ----------
    steps : list of StepFact
        Every transformation, in log order.
    late : list of LateFact
        Every event recorded after its deadline, in log order.
    accepted_at : dict of str to float
        Accept event id -> its event time in POSIX seconds (floats keep millions small).
    mismatches : list of TableMismatch
        Projection rows that disagreed with ``world`` when the tables were compared
        (``tables_checked``).
    seq : int
        The log position of the next event :meth:`apply` takes.

    Examples
    --------
    >>> state = ScanState(MemoryWorld())
    >>> state.steps, state.late, state.accepted_at, state.tables_checked
    ([], [], {}, False)
    """

    world: MemoryWorld
    calendar: HolidayCalendar = field(default_factory=prc_calendar)
    steps: list[StepFact] = field(default_factory=list)
    late: list[LateFact] = field(default_factory=list)
    accepted_at: dict[str, float] = field(default_factory=dict)
    mismatches: list[TableMismatch] = field(default_factory=list)
    tables_checked: bool = False
    seq: int = 0

    # --- from a tracer, in one pass ---

    @classmethod
    def from_tracer(cls, tracer: Tracer, *, check_tables: bool = True) -> ScanState:
        """Everything the checks need from ``tracer``: its world and one pass over its tables.

        Parameters
        ----------
        tracer : Tracer
            Caught up first; its in-memory world is shared, not copied.
        check_tables : bool
            Also compare ``trace_items`` and ``trace_handovers`` row by row with the world
            (one more streaming query each).

        Returns
        -------
        ScanState
            Accept times, transformation facts and late events read with three streaming
            queries over ``trace_events`` (late days as the projections recorded them).
        """
        tracer.catch_up()
        # Up to the tracer's position, not the tables': another engine may have written
        # more, which the tracer applies, and a follower takes, when it catches up.
        upto = tracer.seq
        state = cls(tracer.world, tracer.calendar, seq=upto)
        engine = tracer.projections.engine
        events = table("trace_events")
        c = events.c
        world = tracer.world
        accepts = select(c.event_id, c.event_time).where(c.type == _ACCEPT.value, c.seq < upto)
        for event_id, event_time in stream(engine, accepts):
            state.accepted_at[event_id] = _utc(event_time).timestamp()
        steps = (
            select(c.event_id, c.actor, c.body_json)
            .where(c.type.in_(sorted(t.value for t in TRANSFORMS)), c.seq < upto)
            .order_by(c.seq)
        )
        for event_id, actor, body in stream(engine, steps):
            state.steps.append(_step_fact(event_id, actor, json.loads(body), world.item))
        late = (
            select(c.event_id, c.type, c.actor, c.recorded_at, c.late_working_days, c.body_json)
            .where(c.late_working_days.is_not(None), c.seq < upto)
            .order_by(c.seq)
        )
        for event_id, kind, actor, recorded_at, days, body in stream(engine, late):
            parsed = json.loads(body)
            state.late.append(
                LateFact(
                    event_id=event_id,
                    type=EventType(kind),
                    actor=actor,
                    items=tuple(sorted(parsed["prev"])),
                    event_time=datetime.fromisoformat(parsed["event_time"]),
                    recorded_at=_utc(recorded_at),
                    working_days=int(days),
                )
            )
        if check_tables:
            state.mismatches = list(compare_tables(engine, world, upto=upto))
            state.tables_checked = True
        return state

    @classmethod
    def follow(cls, tracer: Tracer, *, check_tables: bool = False) -> ScanState:
        """:meth:`from_tracer`, then kept up to date with every event the tracer applies.

        Table mismatches are those found when it was built.
        """
        state = cls.from_tracer(tracer, check_tables=check_tables)
        tracer.subscribe(state.apply)
        return state

    # --- event by event ---

    def apply(self, accepted: Accepted) -> None:
        """Fold one accepted event in (events already applied, by log position, are skipped).

        ``world`` must already hold the event's effects, as the tracer's world does when it
        calls its subscribers.
        """
        if accepted.seq < self.seq:
            return
        event = accepted.event
        kind = event.type
        if kind is _ACCEPT:
            self.accepted_at[accepted.event_id] = event.event_time.timestamp()
        elif kind in TRANSFORMS:
            effects = accepted.effects.items

            def lookup(item_id: str) -> ItemState | None:
                return effects.get(item_id) or self.world.item(item_id)

            self.steps.append(_step_fact(accepted.event_id, event.actor, event.body(), lookup))
        actor = self.world.actor(event.actor)
        if actor is not None:
            late = lateness(actor.role, kind, event.event_time, accepted.recorded_at, self.calendar)
            if late is not None:
                self.late.append(
                    LateFact(
                        event_id=accepted.event_id,
                        type=kind,
                        actor=event.actor,
                        items=tuple(sorted(event.items())),
                        event_time=event.event_time,
                        recorded_at=accepted.recorded_at,
                        working_days=late.working_days,
                    )
                )
        self.seq = accepted.seq + 1
