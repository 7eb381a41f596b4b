"""The lifecycle graph: items, actors, vehicles and transformations in one networkx multigraph.

Node keys are tuples of two strings; attributes that would be ``None`` are left out.
``("item", id)``: a pack, module, cell (GB/T 34014 code) or lot, with kind, producer,
region, chemistry, energy_kwh, mass_kg and material as its latest state says, and its
:class:`Stage`. ``("actor", id)``: an organisation (role, region). ``("vehicle", vin)``.
``("step", event id)``: a transformation (type, time, actor, seq, reagents_kg) -- each
repurpose, dismantle, recycle, lot split, merge and smelt, and each commission that consumes
material lots.

Edges carry ``rel`` (a :class:`Rel`): ``part_of`` child -> parent, ``installed_in`` pack ->
vehicle, ``custody`` and ``owns`` actor -> item, each with ``since``, ``via`` (the event) and,
once over, ``until`` (an assembled part is held through its parent; one ``custody`` edge with
``owns: True`` stands for both while they go together); ``recoded_to`` old ->
new code; ``input`` item -> step and ``output`` step -> item with ``kg``; ``handover``
sender -> receiver per accepted handover (``time``, ``via``, ``handover``, ``region``,
``items`` and their ``masses``, ``packs``, ``kg``, ``kwh``). Events also move items between
stages (:attr:`LifecycleGraph.moves`; the mapping is in :mod:`trace.flows`).

Memory (CPython 3.11, networkx 3.6; ``sys.getsizeof`` of every node, adjacency dict, key
dict, attribute dict and value, each object once), the demo preset's fleet: 7.4 KiB per pack
at 10,000 and at 100,000 packs alike -- about 3.3 nodes, 8.4 edges, 2.4 stage moves and 1.4
handovers per pack for a life of commission, sale, install, retire, collect, for some a
second life, dismantling, recycling and new packs made from the smelted lots. The largest
parts: the multigraph's key dict per node pair (1.6 KiB), handover edges (1.0 KiB), item
nodes' adjacency (0.8 KiB), custody edges (0.7 KiB; separate ``owns`` edges would double
that) and item attributes (0.55 KiB). A rebuild replays the events on a world of its own
(:meth:`LifecycleGraph.from_projections`, as a query process holds it): graph and world
together grew the process by 10.4 KiB per pack at 105,061 packs (RSS, ``scripts/bench
trace``), about 10 GiB for a million. Node key tuples are shared, small vocabularies
interned, and bulk builds run without the cyclic GC.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple, TypeVar

import networkx as nx
import orjson
from sqlalchemy import select
from sqlmodel import SQLModel

import schemas.events as ev
from schemas.actors import Role
from trace.engine import DEFAULT_TOLERANCE, Accepted, Tracer, parse_event
from trace.projections import Projections
from trace.rules import check_event
from trace.state import Effects, ItemKind, ItemState, MemoryWorld, Status, World

# fmt: off
__all__ = ["ACTOR", "ITEM", "STEP", "VEHICLE", "LifecycleGraph", "Move", "Node", "Rel", "Stage",
           "actor_node", "item_node", "stored_events"]
# fmt: on

ITEM: Final = "item"
ACTOR: Final = "actor"
VEHICLE: Final = "vehicle"
STEP: Final = "step"
_CHUNK: Final = 4096  # events fetched per round trip during a rebuild
# fmt: off
_ITEM_FIELDS: Final = ("kind", "producer", "region", "chemistry", "energy_kwh", "mass_kg", "material")
# fmt: on
_SHARED: Final = frozenset({"producer", "region", "chemistry", "material"})  # few values

Node = tuple[str, str]


class Rel(StrEnum):
    """What an edge means (its ``rel`` attribute)."""

    PART_OF = "part_of"
    INSTALLED_IN = "installed_in"
    CUSTODY = "custody"
    OWNS = "owns"
    RECODED_TO = "recoded_to"
    INPUT = "input"
    OUTPUT = "output"
    HANDOVER = "handover"


class Stage(StrEnum):
    """Lifecycle stages (生产, 使用, 报废, 回收, 梯次利用, 再生利用, 材料回收, 再生产), in order."""

    PRODUCTION = "production"
    USE = "use"
    RETIREMENT = "retirement"
    COLLECTION = "collection"
    CASCADE_USE = "cascade_use"
    RECYCLING = "recycling"
    MATERIAL_RECOVERY = "material_recovery"
    NEW_PRODUCTION = "new_production"

    @property
    def order(self) -> int:
        """The stage's position in a life.

        >>> Stage.PRODUCTION.order, Stage.COLLECTION.order
        (0, 3)
        """
        return _ORDER[self]


_ORDER: Final = {stage: i for i, stage in enumerate(Stage)}


class Move(NamedTuple):
    """An item moving to a later stage by an event.

    ``kg`` is set for material flows (a lot recovered from recycling; material taken from a
    lot into a new product, whose code is then ``item``): they count in kg only. A battery's
    flow is its recorded mass and energy.
    """

    time: datetime
    item: str
    source: Stage
    target: Stage
    actor: str
    region: str
    via: str
    kg: float | None = None


def item_node(item_id: str) -> Node:
    """The node key of a pack, module, cell or lot.

    >>> item_node("LOT-NFCB6HGGNV6JT")
    ('item', 'LOT-NFCB6HGGNV6JT')
    """
    return (ITEM, item_id)


def actor_node(actor_id: str) -> Node:
    """The node key of an organisation.

    >>> actor_node("catl")
    ('actor', 'catl')
    """
    return (ACTOR, actor_id)


def _open_edge(adjacency: dict[Node, dict[int, dict[str, Any]]], rel: Rel) -> Any:
    """``(other node, attributes)`` of the edge of kind ``rel`` that has not ended, or None."""
    for other, keyed in adjacency.items():
        for attrs in keyed.values():
            if attrs["rel"] is rel and "until" not in attrs:
                return other, attrs
    return None


@contextmanager
def _bulk(freeze: bool) -> Iterator[None]:
    """No cyclic GC while millions of small dicts are made: each pass would rescan them all."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()  # the graph lives on: later collections skip what is built now
        if enabled:
            gc.enable()


class _At(NamedTuple):
    """The event being applied, as edges and moves record it."""

    time: datetime
    via: str
    actor: str
    region: str
    seq: int


class LifecycleGraph:
    """The lifecycle graph, kept up to date event by event (:attr:`nx` is the multigraph).

    Parameters
    ----------
    actors : World, optional
        Where organisations are looked up when an event first names them (the tracer's
        world when following a tracer).

    Examples
    --------
    >>> g = LifecycleGraph()
    >>> g.nx.number_of_nodes(), g.seq, g.moves
    (0, 0, [])
    """

    def __init__(self, actors: World | None = None) -> None:
        self.nx: Any = nx.MultiDiGraph()
        self.seq = 0  # the log position of the next event to apply
        self.moves: list[Move] = []
        self.handovers: list[tuple[Node, Node, dict[str, Any]]] = []  # the edges, in order
        self._actors = actors
        self._keys: dict[Node, Node] = {}  # one key tuple per node, however often it is named

    @classmethod
    def from_events(
        cls, events: Iterable[Accepted], actors: World | None = None, *, freeze: bool = True
    ) -> LifecycleGraph:
        """A graph of ``events`` applied in order, GC off meanwhile (and frozen after)."""
        graph = cls(actors)
        with _bulk(freeze):
            for accepted in events:
                graph.apply(accepted)
        return graph

    @classmethod
    def from_tracer(cls, tracer: Tracer, *, freeze: bool = True) -> LifecycleGraph:
        """Rebuild from the events the tracer's tables hold (caught up with its log first).

        Each event is checked again against a world rebuilt alongside, for its effects, under
        the event id the engine stored: signatures and ids were verified when it was accepted.
        """
        tracer.catch_up()
        world = MemoryWorld()
        world.actors.update(tracer.world.actors)
        events = stored_events(tracer.projections, world, tolerance=tracer.tolerance)
        graph = cls.from_events(events, world, freeze=freeze)
        graph._actors = tracer.world
        return graph

    @classmethod
    def from_projections(
        cls, projections: Projections, *, tolerance: float = DEFAULT_TOLERANCE, freeze: bool = True
    ) -> LifecycleGraph:
        """Rebuild from the events the tables hold, without a tracer.

        For a process that answers lineage and flow queries and takes no events: it
        holds the graph and the world replayed alongside (about half a tracer's memory
        less than :meth:`from_tracer` beside the tracer that feeds it).
        """
        world = MemoryWorld()
        world.actors.update(projections.load_actors())
        return cls.from_events(
            stored_events(projections, world, tolerance=tolerance), world, freeze=freeze
        )

    @classmethod
    def follow(cls, tracer: Tracer, *, freeze: bool = True) -> LifecycleGraph:
        """:meth:`from_tracer`, then apply every event the tracer applies."""
        graph = cls.from_tracer(tracer, freeze=freeze)
        tracer.subscribe(graph.apply)
        return graph

    def equals(self, other: LifecycleGraph) -> bool:
        """Same nodes, edges (keys and attributes), stage moves and log position."""
        same = self.seq == other.seq and self.moves == other.moves
        return same and bool(nx.utils.graphs_equal(self.nx, other.nx))

    def stage(self, item_id: str) -> Stage | None:
        """The stage an item is in (``None`` for a lot from outside the traced flow)."""
        stage: Stage | None = self.nx.nodes[item_node(item_id)].get("stage")
        return stage

    def apply(self, accepted: Accepted) -> None:
        """Fold one accepted event in; an event already applied (by log position) is skipped."""
        if accepted.seq < self.seq:
            return
        event, effects = accepted.event, accepted.effects
        actor, region = sys.intern(event.actor), sys.intern(event.region)
        at = _At(event.event_time, accepted.event_id, actor, region, accepted.seq)
        self._actor(actor)
        for state in effects.items.values():
            self._sync_item(state)
        handler = _HANDLERS.get(event.data.type)
        if handler is not None:
            handler(self, at, event, effects)
        for item_id in event.items():  # parts carried along are held through their parent
            if (named := effects.items.get(item_id)) is not None:
                self._holders(named, at)
        for state in effects.items.values():
            self._attach(state, at)
        self.seq = accepted.seq + 1

    # --- what every event keeps up to date ---

    def _key(self, kind: str, name: str) -> Node:
        key = (kind, name)
        return self._keys.setdefault(key, key)

    def _actor(self, actor_id: str) -> Node:
        node = self._key(ACTOR, actor_id)
        if node not in self.nx:
            actor = None if self._actors is None else self._actors.actor(actor_id)
            if actor is None:
                raise ValueError(f"actor {actor_id!r} is not known to the graph's actor lookup")
            self.nx.add_node(node, role=actor.role, region=actor.region)
        return node

    def _sync_item(self, state: ItemState) -> None:
        node = self._key(ITEM, state.id)
        attrs = {k: v for k in _ITEM_FIELDS if (v := getattr(state, k)) is not None}
        for k in _SHARED & attrs.keys():
            attrs[k] = sys.intern(attrs[k])
        known = self.nx._node.get(node)
        if known is None:
            self.nx.add_node(node, **attrs)
        else:
            known.update(attrs)

    def _holders(self, state: ItemState, at: _At) -> None:
        """Custody and ownership: none while assembled (held through the parent) or ended.

        Held and owned by one actor from one event on, the item has one ``custody`` edge
        with ``owns`` set; when custody and ownership part, it splits into two edges.
        """
        node, gone = self._key(ITEM, state.id), state.terminal or state.status is Status.ASSEMBLED
        custodian = None if gone else self._actor(state.custodian)
        owner = None if gone else self._actor(state.owner)
        pred = self.nx._pred[node]
        held = _open_edge(pred, Rel.CUSTODY)
        shared = held is not None and "owns" in held[1]
        owned = held if shared else _open_edge(pred, Rel.OWNS)
        keep_custody = (None if held is None else held[0]) == custodian
        keep_owner = (None if owned is None else owned[0]) == owner
        if keep_custody and keep_owner:
            return
        if shared:
            actor, attrs = held
            if keep_custody or keep_owner:  # one of the two goes on: give ownership its edge
                del attrs["owns"]
                split: dict[str, Any] = {
                    "rel": Rel.OWNS,
                    "since": attrs["since"],
                    "via": attrs["via"],
                }
                if keep_custody:  # ownership ended here, custody goes on
                    split["until"] = at.time
                self.nx.add_edge(actor, node, **split)
            if not keep_custody:
                attrs["until"] = at.time
        else:
            for edge, kept in ((held, keep_custody), (owned, keep_owner)):
                if edge is not None and not kept:
                    edge[1]["until"] = at.time
        new_custody = None if keep_custody else custodian
        new_owner = None if keep_owner else owner
        if new_custody is not None and new_custody == new_owner:
            self.nx.add_edge(new_custody, node, rel=Rel.CUSTODY, since=at.time, via=at.via, owns=True)  # fmt: skip
            return
        for rel, holder in ((Rel.CUSTODY, new_custody), (Rel.OWNS, new_owner)):
            if holder is not None:
                self.nx.add_edge(holder, node, rel=rel, since=at.time, via=at.via)

    def _attach(self, state: ItemState, at: _At) -> None:
        """``part_of`` and ``installed_in`` follow the item's parent and vehicle."""
        if state.kind is ItemKind.LOT:
            return  # never a part nor in a vehicle; a lot feeding many packs has many out-edges
        node = self._key(ITEM, state.id)
        parent = None if state.parent is None else self._key(ITEM, state.parent)
        vehicle = None if state.vin is None else self._key(VEHICLE, state.vin)
        self._keep(node, Rel.PART_OF, parent, at, into=False)
        self._keep(node, Rel.INSTALLED_IN, vehicle, at, into=False)

    def _keep(self, node: Node, rel: Rel, other: Node | None, at: _At, *, into: bool) -> None:
        """One open ``rel`` edge between ``node`` and ``other`` (into ``node`` or out of it):
        an edge to anyone else ends, and a new one starts unless ``other`` is None."""
        current = _open_edge((self.nx._pred if into else self.nx._succ)[node], rel)
        if current is not None:
            if current[0] == other:
                return
            current[1]["until"] = at.time
        if other is not None:
            u, v = (other, node) if into else (node, other)
            self.nx.add_edge(u, v, rel=rel, since=at.time, via=at.via)

    # --- transformations and stages ---

    def _step(self, at: _At, kind: str, ins: _Masses, outs: _Masses, reagents: float = 0) -> None:
        step = (STEP, at.via)
        self.nx.add_node(step, type=kind, time=at.time, actor=at.actor, seq=at.seq)
        if reagents:
            self.nx.nodes[step]["reagents_kg"] = reagents
        for item_id, kg in ins:
            self.nx.add_edge(self._key(ITEM, item_id), step, **_flow(Rel.INPUT, kg))
        for item_id, kg in outs:
            self.nx.add_edge(step, self._key(ITEM, item_id), **_flow(Rel.OUTPUT, kg))

    def _advance(self, item_id: str, target: Stage | None, at: _At, *, move: bool) -> None:
        """Stages only advance; a silent advance (new items, freed parts) records no move."""
        attrs = self.nx._node[(ITEM, item_id)]
        current = attrs.get("stage")
        if target is None or (current is not None and target.order <= current.order):
            return
        attrs["stage"] = target
        if move and current is not None:
            self._move(at, item_id, current, target)

    def _move(self, at: _At, item: str, source: Stage, target: Stage, kg: float | None = None) -> None:  # fmt: skip
        name = self._key(ITEM, item)[1]
        self.moves.append(Move(at.time, name, source, target, at.actor, at.region, at.via, kg))


_Masses = list[tuple[str, float | None]]
_Handler = Callable[[LifecycleGraph, _At, ev.Event, Effects], None]
_D = TypeVar("_D")


def _data(event: ev.Event, kind: type[_D]) -> _D:
    data = event.data
    if not isinstance(data, kind):  # the dispatch table guarantees the match
        raise TypeError(f"a {event.data.type} event carries {type(data).__name__}")
    return data


def _flow(rel: Rel, kg: float | None) -> dict[str, Any]:
    return {"rel": rel} if kg is None else {"rel": rel, "kg": kg}


def _mass(effects: Effects, item_id: str) -> float | None:
    state = effects.items.get(item_id)
    return None if state is None else state.mass_kg


def _on_commission(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    data = _data(event, ev.CommissionData)
    g._advance(data.item, Stage.PRODUCTION, at, move=False)
    if data.materials:
        ins: _Masses = [(m.item, m.mass_kg) for m in data.materials]
        g._step(at, ev.EventType.COMMISSION, ins, [(data.item, _mass(effects, data.item))])
        for taken in data.materials:
            if (source := g.stage(taken.item)) is not None:
                g._move(at, data.item, source, Stage.NEW_PRODUCTION, taken.mass_kg)


def _stage_of(target: Stage) -> _Handler:
    """Install, retire and collect: the event's one item advances to ``target``."""

    def handler(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
        g._advance(event.items()[0], target, at, move=True)

    return handler


def _on_repurpose(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    data = _data(event, ev.RepurposeData)
    kg = _mass(effects, data.new_code)
    g._step(at, ev.EventType.REPURPOSE, [(data.item, kg)], [(data.new_code, kg)])
    old, new = g._key(ITEM, data.item), g._key(ITEM, data.new_code)
    g.nx.add_edge(old, new, rel=Rel.RECODED_TO, time=at.time, via=at.via)
    g._advance(data.item, Stage.CASCADE_USE, at, move=True)
    g._advance(data.new_code, Stage.CASCADE_USE, at, move=False)


def _on_dismantle(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    data = _data(event, ev.DismantleData)
    outs = [(p, _mass(effects, p)) for p in data.parts]
    outs += [(o.lot.id, o.mass_kg) for o in data.outputs]
    g._step(at, ev.EventType.DISMANTLE, [(data.item, data.mass_kg)], outs)
    g._advance(data.item, Stage.RECYCLING, at, move=True)
    for item_id, _kg in outs:
        g._advance(item_id, Stage.RECYCLING, at, move=False)


def _on_disassemble(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    # Parts a cascade operator frees wait in its storage; a maker's stay in production.
    role = g.nx.nodes[(ACTOR, at.actor)]["role"]
    stage = Stage.COLLECTION if role is Role.CASCADE_OPERATOR else Stage.PRODUCTION
    for item_id in event.items()[1:]:
        g._advance(item_id, stage, at, move=False)


def _on_refine(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, ev.RecycleData | ev.LotSmeltData)
    ins: _Masses = [(i.item, i.mass_kg) for i in data.inputs]
    outs: _Masses = [(o.lot.id, o.mass_kg) for o in data.outputs]
    g._step(at, data.type, ins, outs, data.reagents_kg)
    for item_id, _kg in ins:
        if effects.items[item_id].kind is not ItemKind.LOT:
            g._advance(item_id, Stage.RECYCLING, at, move=True)
    stages = {g.stage(item_id) for item_id, _kg in ins}
    if stages == {None}:
        return  # material from outside the traced flow stays outside
    for lot_id, kg in outs:
        g._advance(lot_id, Stage.MATERIAL_RECOVERY, at, move=False)
        if Stage.RECYCLING in stages:
            g._move(at, lot_id, Stage.RECYCLING, Stage.MATERIAL_RECOVERY, kg)


def _on_relabel(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, ev.LotSplitData | ev.LotMergeData)  # the dispatch table's promise
    if isinstance(data, ev.LotSplitData):
        ins, outs = [data.lot], [p.lot for p in data.parts]
    else:
        ins, outs = list(data.lots), [data.into.lot]
    made: _Masses = [(o.id, float(o.mass_kg)) for o in outs]
    g._step(at, data.type, [(i, _mass(effects, i)) for i in ins], made)
    staged = [s for s in map(g.stage, ins) if s is not None]
    for lot_id, _kg in made:
        g._advance(lot_id, max(staged, key=_ORDER.__getitem__, default=None), at, move=False)


def _on_accept(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    for handover in effects.handovers.values():
        states = [effects.items[i] for i in handover.items]
        masses = tuple(s.mass_kg or 0.0 for s in states)  # kg of each, as handed over
        sender, receiver = g._actor(handover.sender), g._actor(handover.receiver)
        key = g.nx.add_edge(
            sender, receiver, rel=Rel.HANDOVER, time=at.time, via=at.via, handover=handover.id,
            region=at.region, items=tuple(g._key(ITEM, i)[1] for i in handover.items),
            masses=masses, packs=sum(s.kind is ItemKind.PACK for s in states), kg=sum(masses),
            kwh=sum(s.energy_kwh or 0.0 for s in states),
        )  # fmt: skip
        g.handovers.append((sender, receiver, g.nx._succ[sender][receiver][key]))


def _on_dispute(g: LifecycleGraph, at: _At, event: ev.Event, effects: Effects) -> None:
    for handover in effects.handovers.values():
        keyed = g.nx._succ[(ACTOR, handover.sender)].get((ACTOR, handover.receiver), {})
        for attrs in keyed.values():
            if attrs.get("handover") == handover.id:
                attrs["disputed"] = True


_HANDLERS: Final[dict[str, _Handler]] = {
    ev.EventType.COMMISSION: _on_commission,
    ev.EventType.INSTALL: _stage_of(Stage.USE),
    ev.EventType.RETIRE: _stage_of(Stage.RETIREMENT),
    ev.EventType.COLLECT: _stage_of(Stage.COLLECTION),
    ev.EventType.REPURPOSE: _on_repurpose,
    ev.EventType.DISMANTLE: _on_dismantle,
    ev.EventType.DISASSEMBLE: _on_disassemble,
    ev.EventType.RECYCLE: _on_refine,
    ev.EventType.LOT_SMELT: _on_refine,
    ev.EventType.LOT_SPLIT: _on_relabel,
    ev.EventType.LOT_MERGE: _on_relabel,
    ev.EventType.ACCEPT: _on_accept,
    ev.EventType.DISPUTE: _on_dispute,
}


def stored_events(
    projections: Projections, world: MemoryWorld, *, tolerance: float = DEFAULT_TOLERANCE
) -> Iterator[Accepted]:
    """Every event in ``trace_events``, in log order, as accepted: effects checked on ``world``.

    ``world`` must know every actor the events name; it ends in the state the tracer's is
    in (``tolerance``: the tracer's mass-balance tolerance).
    """
    c = SQLModel.metadata.tables["trace_events"].c
    query = select(c.seq, c.event_id, c.recorded_at, c.body_json).order_by(c.seq)
    with projections.engine.connect() as conn:
        for seq, eid, recorded, body in conn.execution_options(yield_per=_CHUNK).execute(query):
            event = parse_event(orjson.loads(body))  # canonical JSON: orjson reads it alike
            effects = check_event(world, event, event_id=eid, tolerance=tolerance)
            world.apply(effects)
            at = recorded.replace(tzinfo=UTC) if recorded.tzinfo is None else recorded
            yield Accepted(seq, event, eid, at, effects)
