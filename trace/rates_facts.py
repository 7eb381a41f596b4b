"""Compact facts for the rates, built in one pass over the accepted events (docs/metrics.md).

The rates never rescan the log: :class:`RateFacts` reads each accepted event once, in log
order — from ``trace_events.body_json`` (:meth:`RateFacts.from_projections`) or live, as a
:meth:`~trace.engine.Tracer.subscribe` subscriber (:meth:`RateFacts.follow`) — and keeps
per physical battery (a pack and its cascade re-codes, GB/T 34014-2017 §4.2) the events
that count: placing on the market, first-life retirement, first collection, first
repurposing, end at a recycler. Lots keep their element shares and their post-consumer
share (EU 2023/1542 Art. 8: traced back to waste batteries); transformation steps keep
their inputs and outputs for Annex XII recycling efficiency and recovery.

Values a later correction may change (a pack's mass or composition) are kept raw and read
at computing time, so a correction applies to the whole history, as the SQL oracle sees it.
Days are China Standard Time (UTC+8) proleptic ordinals.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from operator import attrgetter
from typing import Any, Final

import orjson
from sqlalchemy import Engine, text

from trace.engine import Accepted, Tracer
from trace.projections import Projections
from trace.rates_model import CST, ELEMENTS, ZERO, At, Lot, Phys, Step, Vec
from trace.rates_steps import StepFacts

__all__ = ["FACT_TYPES", "RateFacts", "bulk", "entries_held", "events_query"]

logger = logging.getLogger(__name__)
intern = sys.intern  # actors and provinces recur on every event: one string each

FACT_TYPES: Final = (
    "accept",
    "collect",
    "commission",
    "correction",
    "dismantle",
    "install",
    "lot_create",
    "lot_merge",
    "lot_smelt",
    "lot_split",
    "recycle",
    "repurpose",
    "retire",
)
"""Event types the rates read; the others (handovers, inspections...) do not move a rate."""
_CHUNK: Final = 10_000
_ID_CHUNK: Final = 5_000  # log positions per look-up of event ids (literal integers)

RoleOf = Callable[[str], str]


@contextmanager
def bulk() -> Iterator[None]:
    """The cyclic garbage collector paused: facts and rates build no cycles, only many objects.

    Collections triggered by millions of new long-lived objects would otherwise rescan them
    again and again (the lifecycle graph pauses it likewise). What was built goes straight
    to the oldest generation: the next young collection would otherwise walk every object
    of the facts (seconds at a million packs) only to move them there. Unless objects are
    frozen already (by a lifecycle graph that keeps its own out of every collection), which
    moving them would undo.

    >>> with bulk():
    ...     gc.isenabled()
    False
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()  # into the oldest generation, still collectable
        if enabled:
            gc.enable()


class RateFacts(StepFacts):
    """Everything the rates read, folded from the accepted events in log order.

    ``role_of`` names an actor's role (``""`` if unknown); ``resolve`` maps log positions to
    event ids, for evidence. Build with :meth:`from_projections` or :meth:`follow`; tests
    and examples may :meth:`add` events by hand (:func:`trace.rates_example.example_facts`).
    """

    def __init__(self, role_of: RoleOf, resolve: Callable[[Sequence[int]], dict[int, str]]) -> None:
        self.role_of = role_of
        self.resolve = resolve
        self.phys: dict[str, Phys] = {}
        self.recodes: dict[str, str] = {}  # cascade re-code -> commissioned code
        self.lots: dict[str, Lot] = {}
        self.steps: list[Step] = []
        self.retired: set[str] = set()
        self.intake: list[tuple[str, str, str, At]] = []  # operator, root, code, at
        self.repurposes: list[tuple[str, str, str, At]] = []
        self.first_day: int | None = None
        self.last_day: int | None = None
        self.last_seq = -1
        self._eid = ""  # id of the event being folded in
        self._ids: dict[int, str] = {}  # seq -> event id, for evidence
        # kind -> (how many batteries there were, those of the kind in code order)
        self._ordered: dict[str, tuple[int, list[Phys]]] = {}
        # One object per day (by ordinal, and by the date a +08:00 time spells): every
        # battery's events share a few thousand, which the rates read without chasing a
        # fresh int per event across the heap.
        self._days: dict[int | str, int] = {}
        # Likewise one object per distinct mass, energy and element vector: packs come in a
        # few thousand specifications, and the rates sum these for every pack.
        self._floats: dict[float, float] = {}
        self._vectors: dict[Vec, Vec] = {}
        self._handlers: dict[str, Callable[[At, Mapping[str, Any]], None]] = {
            "commission": self._commission,
            "install": self._install,
            "retire": self._retire,
            "collect": self._collect,
            "accept": self._accept,
            "repurpose": self._repurpose,
            "dismantle": self._dismantle,
            "recycle": self._recycle,
            "lot_create": self._lot_create,
            "lot_split": self._lot_split,
            "lot_merge": self._lot_merge,
            "lot_smelt": self._lot_smelt,
            "correction": self._correction,
        }

    # --- building ---

    @classmethod
    def from_projections(
        cls, projections: Projections | Engine, *, upto: int | None = None
    ) -> RateFacts:
        """Facts from the projection tables, reading each relevant event body once.

        ``upto`` keeps the events before that log position (the rates as the log stood
        then); by default, every event the tables hold.

        Examples
        --------
        >>> empty = Projections("sqlite:///:memory:")
        >>> facts = RateFacts.from_projections(empty)
        >>> len(facts.phys), facts.last_seq
        (0, -1)
        >>> RateFacts.from_projections(empty, upto=5).last_seq  # no further than the tables
        -1
        """
        engine = projections.engine if isinstance(projections, Projections) else projections
        with engine.connect() as conn:
            roles = {str(r[0]): str(r[1]) for r in conn.execute(text(_ACTORS))}
        held = entries_held(engine)
        upto = held if upto is None else max(0, min(int(upto), held))
        facts = cls(lambda actor: roles.get(actor, ""), _resolver(engine))
        intake = [actor for actor, role in roles.items() if role == "cascade_operator"]
        query = events_query(engine.dialect.name, upto, accepted_by=intake)
        # The stored bodies are canonical JSON (RFC 8785: no integer beyond 2**53), which
        # orjson reads as the standard library would, in less than half the time.
        loads, add = orjson.loads, facts.add
        with engine.connect() as conn, bulk():
            # The driver's cursor, in batches: rows are plain tuples, read once. On
            # PostgreSQL a named (server-side) cursor, so the rows are not all held at once.
            raw: Any = conn.connection.dbapi_connection
            named = engine.dialect.name == "postgresql"
            cursor = raw.cursor(name="suyuan_rate_facts") if named else raw.cursor()
            try:
                cursor.execute(query)
                while rows := cursor.fetchmany(_CHUNK):
                    for seq, eid, kind, actor, region, body in rows:
                        parsed = loads(body)
                        add(seq, eid, kind, actor, region, parsed["event_time"], parsed["data"])
            finally:
                cursor.close()
        facts.last_seq = max(facts.last_seq, upto - 1)
        return facts

    @classmethod
    def follow(cls, tracer: Tracer) -> RateFacts:
        """Facts from the tracer's tables, then kept up to date as the tracer accepts events.

        Examples
        --------
        >>> import os, tempfile
        >>> from trace.simulate import SimClock, open_simulation_tracer
        >>> folder = tempfile.TemporaryDirectory()
        >>> tracer = open_simulation_tracer(os.path.join(folder.name, "log.db"), clock=SimClock())
        >>> facts = RateFacts.follow(tracer)
        >>> facts.last_seq, len(facts.phys)
        (0, 0)
        >>> tracer.close()
        >>> folder.cleanup()
        """
        facts = cls.from_projections(tracer.projections)

        def role_of(actor: str) -> str:
            found = tracer.world.actor(actor)
            return "" if found is None else found.role.value

        facts.role_of = role_of
        tracer.subscribe(facts.apply)
        return facts

    def apply(self, accepted: Accepted) -> None:
        """Fold one accepted event in (a :data:`~trace.engine.Subscriber`)."""
        event = accepted.event
        kind = event.type.value
        if accepted.seq <= self.last_seq:
            return
        if kind not in self._handlers:
            self.last_seq = accepted.seq  # no fact, yet the rates now stand after it
            return
        data = event.data.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.add(
            accepted.seq, accepted.event_id, kind, event.actor, event.region, event.event_time, data
        )

    def add(
        self,
        seq: int,
        event_id: str,
        kind: str,
        actor: str,
        region: str,
        when: datetime | str,
        data: Mapping[str, Any],
    ) -> None:
        """Fold one event in: its log position, id, type, actor, region, time and data.

        Examples
        --------
        >>> facts = RateFacts(role_of=lambda actor: "", resolve=lambda seqs: {})
        >>> facts.add(1, "e1", "commission", "bm-01", "350000", "2025-12-31T23:30:00+08:00",
        ...           {"item": "001PB1A0000001E390000042", "mass_kg": 400.0})
        >>> from datetime import date
        >>> pack = facts.phys["001PB1A0000001E390000042"]
        >>> pack.maker, pack.kg, date.fromordinal(pack.c_at.day).isoformat()
        ('bm-01', 400.0, '2025-12-31')
        """
        handler = self._handlers.get(kind)
        if handler is None:
            return
        day = self._day_of(when)
        if self.first_day is None or day < self.first_day:
            self.first_day = day
        if self.last_day is None or day > self.last_day:
            self.last_day = day
        self.last_seq = max(self.last_seq, seq)
        self._eid = event_id
        handler(At(seq, day, intern(region), intern(actor)), data)

    def _day_of(self, when: datetime | str) -> int:
        """The CST day ordinal of an event time: parsed once per calendar date for the
        ``+08:00`` times events mostly carry, whose day is the date they spell."""
        by_date = when[:10] if isinstance(when, str) and when.endswith("+08:00") else None
        day = self._days.get(by_date) if by_date is not None else None
        if day is None:
            moment = datetime.fromisoformat(when) if isinstance(when, str) else when
            found = moment.astimezone(CST).toordinal()
            day = self._days.setdefault(found, found)
            if by_date is not None:
                self._days[by_date] = day
        return day

    def ordered(self, kind: str = "pack") -> list[Phys]:
        """The physical batteries of ``kind`` in order of commissioned code (sorted once, kept).

        Rates group batteries in this order, so that each group is already in item order.

        >>> from trace.rates_example import example_facts
        >>> [p.code[-2:] for p in example_facts().ordered()]
        ['42', '43']
        """
        kept = self._ordered.get(kind)
        if kept is None or kept[0] != len(self.phys):
            batteries = [phys for phys in self.phys.values() if phys.kind == kind]
            batteries.sort(key=attrgetter("code"))
            kept = self._ordered[kind] = (len(self.phys), batteries)
        return kept[1]

    def root(self, code: str) -> str:
        """The commissioned code of a battery known by ``code`` (itself unless re-coded).

        >>> from trace.rates_example import P2, R2, example_facts
        >>> example_facts().root(R2) == P2
        True
        """
        return self.recodes.get(code, code)

    def _phys(self, code: str) -> Phys | None:
        return self.phys.get(self.recodes.get(code, code))

    # --- event handlers ---

    def _commission(self, at: At, data: Mapping[str, Any]) -> None:
        code = str(data["item"])
        phys = Phys(code, at, hash((self._eid, code)), data)
        materials = data.get("materials") or ()
        if materials:
            brought = [0.0] * len(ELEMENTS)
            taken: list[tuple[str, float, Vec]] = []
            for entry in materials:
                lot_id, kg = str(entry["item"]), float(entry["mass_kg"])
                lot = self.lots.get(lot_id)
                got = ZERO
                if lot is not None:
                    got = tuple(kg * share * lot.pcs for share in lot.share)
                    lot.remaining = max(lot.remaining - kg, 0.0)
                for i, kg_e in enumerate(got):
                    brought[i] += kg_e
                taken.append((lot_id, kg, got))
            phys.recycled = tuple(brought)
            phys.materials = tuple(taken)
        self.phys[code] = self._compact(phys)

    def _compact(self, phys: Phys) -> Phys:
        """``phys`` with its mass, energy and element kg as the shared objects of their values."""
        floats = self._floats
        phys.mass = floats.setdefault(phys.mass, phys.mass)
        phys.energy = floats.setdefault(phys.energy, phys.energy)
        if phys.content is not None:
            phys.content = self._vectors.setdefault(phys.content, phys.content)
        return phys

    def _install(self, at: At, data: Mapping[str, Any]) -> None:
        phys = self.phys.get(str(data["item"]))
        if phys is not None and phys.automaker is None and self.role_of(at.actor) == "automaker":
            phys.automaker, phys.i_at = at.actor, at

    def _retire(self, at: At, data: Mapping[str, Any]) -> None:
        code = str(data["item"])
        phys = self.phys.get(code)
        self.retired.add(code if phys is None else phys.code)
        if phys is not None and phys.retire is None:
            phys.retire = at

    def _collect(self, at: At, data: Mapping[str, Any]) -> None:
        code = str(data["item"])
        root = self.root(code)
        phys = self.phys.get(root)
        if phys is not None and phys.collect is None:
            phys.collect = at
            phys.collect_key = hash((self._eid, code))
            mass = data.get("mass_kg")
            kg = None if mass is None else float(mass)
            phys.collect_kg = None if kg is None else self._floats.setdefault(kg, kg)
        if self.role_of(at.actor) == "cascade_operator":
            self.intake.append((at.actor, root, code, at))

    def _accept(self, at: At, data: Mapping[str, Any]) -> None:
        if self.role_of(at.actor) != "cascade_operator":
            return
        for code in data["items"]:
            if code in self.retired:
                self.intake.append((at.actor, self.root(code), code, at))

    def _repurpose(self, at: At, data: Mapping[str, Any]) -> None:
        code, new = str(data["item"]), str(data["new_code"])
        root = self.root(code)
        self.recodes[new] = root
        phys = self.phys.get(root)
        if phys is not None and phys.repurpose is None:
            phys.repurpose = at
        self.repurposes.append((at.actor, root, code, at))

    def _correction(self, at: At, data: Mapping[str, Any]) -> None:
        code = str(data["item"])
        phys = self._phys(code)
        if phys is None:
            return
        fields = data["fields"]
        if "composition" in fields:
            phys.compose(fields["composition"])
            self._compact(phys)
        if "mass_kg" in fields:
            # A mass correction fixes the event it names: the commission or the first collect.
            target = hash((str(data["corrects"]), code))
            if target == phys.c_key:
                phys.mass = float(fields["mass_kg"])
            elif target == phys.collect_key:
                phys.collect_kg = float(fields["mass_kg"])

    def event_ids(self, seqs: Iterable[int]) -> dict[int, str]:
        """Event ids of log positions, for evidence (looked up once, then remembered)."""
        known = self._ids
        asked = list(seqs)
        wanted = sorted({s for s in asked if s not in known})
        if wanted:
            known.update(self.resolve(wanted))
        return {s: known[s] for s in asked if s in known}


_ACTORS: Final = "SELECT id, role FROM trace_actors"
_STATE: Final = "SELECT seq FROM trace_projection_state WHERE id = 1"
_EVENTS: Final = (
    "SELECT seq, event_id, type, actor, region, body_json FROM {source} "
    "WHERE {kinds} AND seq < {upto} ORDER BY seq"
)
# The fact types are most of the log. SQLite would otherwise take the type index: every row
# fetched by rowid, then all of them, bodies and all, sorted again in a temporary B-tree --
# more than linear, and spilled to disk at a million packs. Its scan in log order reads each
# page once. PostgreSQL weighs the two plans from its statistics.
_SOURCE: Final = {"sqlite": "trace_events NOT INDEXED"}


def entries_held(projections: Projections | Engine) -> int:
    """How many log entries the projection tables reflect.

    >>> entries_held(Projections("sqlite:///:memory:"))
    0
    """
    engine = projections.engine if isinstance(projections, Projections) else projections
    with engine.connect() as conn:
        held = conn.execute(text(_STATE)).scalar()
    return int(held) if held is not None else 0


def events_query(dialect: str, upto: int, *, accepted_by: Iterable[str] | None = None) -> str:
    """The facts' one query: every event of a fact type before log position ``upto``, in order.

    Only a cascade operator's acceptance is a fact (its intake), yet acceptances along the
    supply chain are a third of the events of the fact types: ``accepted_by`` (the cascade
    operators) leaves the others unread. ``None`` reads every acceptance.

    >>> events_query("sqlite", 10)[:40]
    'SELECT seq, event_id, type, actor, regio'
    >>> "NOT INDEXED" in events_query("postgresql", 10)
    False
    >>> "type = 'accept' AND actor IN ('cas-01', 'o''brien')" in events_query(
    ...     "sqlite", 10, accepted_by=["cas-01", "o'brien"])
    True
    """
    if accepted_by is None:
        kinds = f"type IN ({_quoted(FACT_TYPES)})"
    else:
        others = _quoted(t for t in FACT_TYPES if t != "accept")
        operators = _quoted(accepted_by) or "NULL"  # IN (NULL) keeps none
        kinds = f"(type IN ({others}) OR (type = 'accept' AND actor IN ({operators})))"
    return _EVENTS.format(source=_SOURCE.get(dialect, "trace_events"), kinds=kinds, upto=int(upto))


def _quoted(values: Iterable[str]) -> str:
    """SQL string literals, comma-separated."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _resolver(engine: Engine) -> Callable[[Sequence[int]], dict[int, str]]:
    def resolve(seqs: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        with engine.connect() as conn:
            for first in range(0, len(seqs), _ID_CHUNK):
                chunk = ", ".join(str(int(s)) for s in seqs[first : first + _ID_CHUNK])
                rows = conn.execute(
                    text(f"SELECT seq, event_id FROM trace_events WHERE seq IN ({chunk})")
                )
                out.update({int(s): str(e) for s, e in rows})
        return out

    return resolve
