"""The lifecycle graph: items, actors, vehicles and transformations in one networkx multigraph.

Node keys are tuples of two strings; attributes that are ``None`` are left out:

====================  ===============================================================
``("item", id)``      pack, module, cell (GB/T 34014 code) or lot: kind, producer, region,
                      chemistry, energy_kwh, mass_kg, material (as its latest state says)
                      and stage (its :class:`Stage`; absent for lots from outside)
``("actor", id)``     an organisation: role, region (added when an event first names it)
``("vehicle", vin)``  a vehicle
``("step", id)``      a transformation, keyed by its event id: type, time, actor, seq
====================  ===============================================================

Edges (attribute ``rel``, a :class:`Rel`): ``part_of`` child -> parent, ``installed_in``
pack -> vehicle, ``custody`` and ``owns`` actor -> item, each with ``since``, ``via`` (the
event) and, once it ends, ``until``; ``recoded_to`` old code -> new code (``time``, ``via``);
``input`` item -> step and ``output`` step -> item with ``kg``; ``handover`` sender ->
receiver per accepted handover (``time``, ``via``, ``handover``, ``region``, ``items``,
``packs``, ``kg``, ``kwh``). A part's own custody and ownership stop while it is assembled:
it is held through its parent. One step node stands for each repurpose, dismantle, recycle,
lot split, merge or smelt, and each commission that consumes material lots.

Each applied event may also move items between lifecycle stages (:class:`Move`, kept in
:attr:`LifecycleGraph.moves`); :mod:`trace.flows` documents the mapping.

Measured on CPython 3.11 (``scripts``-free snippet in the module's report): about 6.3 KiB
per pack for a full life of a pack with four modules, so a 1M-pack world needs about
6.5 GB. GC is disabled during bulk builds (:meth:`LifecycleGraph.from_events`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple

import networkx as nx

from schemas.actors import Actor, Role
from schemas.epcis import event_id as compute_event_id
from schemas.events import (
    EVENT_KIND_PREFIX,
    CommissionData,
    DismantleData,
    Event,
    EventType,
    LotMergeData,
    LotSmeltData,
    LotSplitData,
    RecycleData,
    RepurposeData,
)
from trace.engine import ACTOR_REGISTER, Accepted, Tracer, parse_event
from trace.rules import check_event
from trace.state import Effects, ItemKind, ItemState, MemoryWorld, Status, World

__all__ = [
    "ACTOR",
    "ITEM",
    "STEP",
    "VEHICLE",
    "LifecycleGraph",
    "Move",
    "Node",
    "Rel",
    "Stage",
    "actor_node",
    "item_node",
    "stage_order",
]

ITEM: Final = "item"
ACTOR: Final = "actor"
VEHICLE: Final = "vehicle"
STEP: Final = "step"
_CHUNK: Final = 2048  # log entries read per query during a replay

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
    """Lifecycle stages (China's 生产, 使用, 报废, 回收, 梯次利用, 再生利用), in order."""

    PRODUCTION = "production"
    USE = "use"
    RETIREMENT = "retirement"
    COLLECTION = "collection"
    CASCADE_USE = "cascade_use"
    RECYCLING = "recycling"
    MATERIAL_RECOVERY = "material_recovery"
    NEW_PRODUCTION = "new_production"


_ORDER: Final = {stage: i for i, stage in enumerate(Stage)}


def stage_order(stage: Stage) -> int:
    """The position of ``stage`` in the life (production is 0).

    >>> stage_order(Stage.COLLECTION)
    3
    """
    return _ORDER[stage]


class Move(NamedTuple):
    """An item moving from one stage to a later one, by an event.

    ``kg`` is set only for material taken from a lot into a new product (``item`` is then
    the new product); otherwise the flow is the item's recorded mass and energy.
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
    """The node key of an organisation."""
    return (ACTOR, actor_id)


def _open_edge(
    adjacency: dict[Node, dict[int, dict[str, Any]]], rel: Rel
) -> tuple[Node, dict[str, Any]] | None:
    """The edge of kind ``rel`` in one node's adjacency that has not ended yet."""
    for other, keyed in adjacency.items():
        for attrs in keyed.values():
            if attrs["rel"] is rel and "until" not in attrs:
                return other, attrs
    return None


@contextmanager
def _bulk(freeze: bool) -> Iterator[None]:
    """No cyclic GC while millions of small dicts are made (it would rescan them all)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()  # the graph lives on: keep later collections from rescanning it
        if enabled:
            gc.enable()


class LifecycleGraph:
    """The lifecycle graph, kept up to date event by event.

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
        self.handovers: list[tuple[Node, Node, dict[str, Any]]] = []
        self._actors = actors

    # --- building ---

    @classmethod
    def from_events(
        cls, events: Iterable[Accepted], actors: World | None = None, *, freeze: bool = True
    ) -> LifecycleGraph:
        """A graph of ``events`` applied in order, with GC off (and frozen afterwards)."""
        graph = cls(actors)
        with _bulk(freeze):
            for accepted in events:
                graph.apply(accepted)
        return graph

    @classmethod
    def from_tracer(cls, tracer: Tracer, *, freeze: bool = True) -> LifecycleGraph:
        """Rebuild from the tracer's log: every entry replayed in order, as the engine does."""
        world = MemoryWorld()
        graph = cls.from_events(_replay(tracer, world), world, freeze=freeze)
        graph._actors = tracer.world
        return graph

    @classmethod
    def follow(cls, tracer: Tracer) -> LifecycleGraph:
        """Rebuild from the tracer's log, then stay up to date with every event it applies."""
        graph = cls.from_tracer(tracer)
        tracer.subscribe(graph.apply)
        return graph

    def equals(self, other: LifecycleGraph) -> bool:
        """Same nodes, edges (keys and attributes), stage moves and log position."""
        return (
            self.seq == other.seq
            and self.moves == other.moves
            and nx.utils.graphs_equal(self.nx, other.nx)
        )

    def apply(self, accepted: Accepted) -> None:
        """Fold one accepted event in; events already applied (by log position) are skipped."""
        if accepted.seq < self.seq:
            return
        event, effects = accepted.event, accepted.effects
        at = _At(event.event_time, accepted.event_id, event.actor, event.region, accepted.seq)
        self._actor(event.actor)
        for state in effects.items.values():
            self._sync_item(state)
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, at, event, effects)
        for item_id in event.items():
            named = effects.items.get(item_id)
            if named is not None:
                ended = named.terminal or named.status is Status.ASSEMBLED
                self._hold(Rel.CUSTODY, named.id, None if ended else named.custodian, at)
                self._hold(Rel.OWNS, named.id, None if ended else named.owner, at)
        for state in effects.items.values():
            self._attach(state, at)
        self.seq = accepted.seq + 1

    # --- nodes and edges every event keeps ---

    def _actor(self, actor_id: str) -> Node:
        node = actor_node(actor_id)
        if node not in self.nx:
            actor = self._actors.actor(actor_id) if self._actors is not None else None
            if actor is None:
                raise ValueError(f"actor {actor_id!r} is not known to the graph's actor lookup")
            self.nx.add_node(node, role=actor.role, region=actor.region)
        return node

    def _sync_item(self, state: ItemState) -> None:
        node = item_node(state.id)
        attrs = {
            "kind": state.kind,
            "producer": state.producer,
            "region": state.region,
            "chemistry": state.chemistry,
            "energy_kwh": state.energy_kwh,
            "mass_kg": state.mass_kg,
            "material": state.material,
        }
        known = self.nx._node.get(node)
        if known is None:
            self.nx.add_node(node, **{k: v for k, v in attrs.items() if v is not None})
        else:
            known.update((k, v) for k, v in attrs.items() if v is not None)

    def _hold(self, rel: Rel, item_id: str, holder: str | None, at: _At) -> None:
        """Custody or ownership: end the open edge unless ``holder`` still has the item."""
        node = item_node(item_id)
        current = _open_edge(self.nx._pred[node], rel)
        if current is not None:
            if holder is not None and current[0] == actor_node(holder):
                return
            current[1]["until"] = at.time
        if holder is not None:
            self.nx.add_edge(self._actor(holder), node, rel=rel, since=at.time, via=at.via)

    def _attach(self, state: ItemState, at: _At) -> None:
        """``part_of`` and ``installed_in`` follow the item's parent and vehicle."""
        node = item_node(state.id)
        for rel, target in ((Rel.PART_OF, state.parent), (Rel.INSTALLED_IN, state.vin)):
            current = _open_edge(self.nx._succ[node], rel)
            other = None if target is None else (ITEM if rel is Rel.PART_OF else VEHICLE, target)
            if current is not None:
                if current[0] == other:
                    continue
                current[1]["until"] = at.time
            if other is not None:
                self.nx.add_edge(node, other, rel=rel, since=at.time, via=at.via)

    # --- transformations and stages ---

    def _step(
        self,
        at: _At,
        kind: EventType,
        inputs: Iterable[tuple[str, float | None]],
        outputs: Iterable[tuple[str, float | None]],
    ) -> None:
        step = (STEP, at.via)
        self.nx.add_node(step, type=kind, time=at.time, actor=at.actor, seq=at.seq)
        for item_id, kg in inputs:
            self.nx.add_edge(item_node(item_id), step, **_flow(Rel.INPUT, kg))
        for item_id, kg in outputs:
            self.nx.add_edge(step, item_node(item_id), **_flow(Rel.OUTPUT, kg))

    def stage(self, item_id: str) -> Stage | None:
        """The stage an item is in (``None`` for a lot from outside the traced flow)."""
        stage: Stage | None = self.nx.nodes[item_node(item_id)].get("stage")
        return stage

    def _advance(self, item_id: str, target: Stage | None, at: _At, *, move: bool) -> None:
        """Stages only advance; a silent advance (created items, freed parts) records no move."""
        if target is None:
            return
        attrs = self.nx._node[item_node(item_id)]
        current = attrs.get("stage")
        if current is not None and _ORDER[target] <= _ORDER[current]:
            return
        attrs["stage"] = target
        if move and current is not None:
            self.moves.append(Move(at.time, item_id, current, target, at.actor, at.region, at.via))


class _At(NamedTuple):
    time: datetime
    via: str
    actor: str
    region: str
    seq: int


def _flow(rel: Rel, kg: float | None) -> dict[str, Any]:
    return {"rel": rel} if kg is None else {"rel": rel, "kg": kg}


def _mass(effects: Effects, item_id: str) -> float | None:
    state = effects.items.get(item_id)
    return None if state is None else state.mass_kg


def _on_commission(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, CommissionData)
    g._advance(data.item, Stage.PRODUCTION, at, move=False)
    if not data.materials:
        return
    inputs = [(m.item, m.mass_kg) for m in data.materials]
    g._step(at, EventType.COMMISSION, inputs, [(data.item, _mass(effects, data.item))])
    for m in data.materials:
        source = g.stage(m.item)
        if source is not None:
            g.moves.append(
                Move(
                    at.time,
                    data.item,
                    source,
                    Stage.NEW_PRODUCTION,
                    at.actor,
                    at.region,
                    at.via,
                    m.mass_kg,
                )
            )


_Handler = Callable[[LifecycleGraph, "_At", Event, Effects], None]


def _stage_of(target: Stage) -> _Handler:
    """Install, retire and collect: the event's one item advances to ``target``."""

    def handler(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
        g._advance(event.items()[0], target, at, move=True)

    return handler


def _on_repurpose(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, RepurposeData)
    mass = _mass(effects, data.new_code)
    g._step(at, EventType.REPURPOSE, [(data.item, mass)], [(data.new_code, mass)])
    g.nx.add_edge(
        item_node(data.item), item_node(data.new_code), rel=Rel.RECODED_TO, time=at.time, via=at.via
    )
    g._advance(data.item, Stage.CASCADE_USE, at, move=True)
    g._advance(data.new_code, Stage.CASCADE_USE, at, move=False)


def _on_dismantle(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, DismantleData)
    outputs = [(p, _mass(effects, p)) for p in data.parts]
    outputs += [(o.lot.id, o.mass_kg) for o in data.outputs]
    g._step(at, EventType.DISMANTLE, [(data.item, data.mass_kg)], outputs)
    g._advance(data.item, Stage.RECYCLING, at, move=True)
    for item_id, _kg in outputs:
        g._advance(item_id, Stage.RECYCLING, at, move=False)


def _on_disassemble(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    # Parts a cascade operator frees wait in its storage; a maker's stay in production.
    role = g.nx.nodes[actor_node(at.actor)]["role"]
    stage = Stage.COLLECTION if role is Role.CASCADE_OPERATOR else Stage.PRODUCTION
    for item_id in event.items()[1:]:
        g._advance(item_id, stage, at, move=False)


def _on_transform(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, RecycleData | LotSmeltData)
    outputs = [(o.lot.id, o.mass_kg) for o in data.outputs]
    g._step(at, event.type, [(i.item, i.mass_kg) for i in data.inputs], outputs)
    stages = []
    for entry in data.inputs:
        if effects.items[entry.item].kind is not ItemKind.LOT:
            g._advance(entry.item, Stage.RECYCLING, at, move=True)
        stages.append(g.stage(entry.item))
    if all(stage is None for stage in stages):
        return  # material from outside the traced flow stays outside
    for lot_id, _kg in outputs:
        g._advance(lot_id, Stage.MATERIAL_RECOVERY, at, move=False)
        if Stage.RECYCLING in stages:
            g.moves.append(
                Move(
                    at.time,
                    lot_id,
                    Stage.RECYCLING,
                    Stage.MATERIAL_RECOVERY,
                    at.actor,
                    at.region,
                    at.via,
                )
            )


def _on_relabel(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    data = event.data
    assert isinstance(data, LotSplitData | LotMergeData)
    inputs = [data.lot] if isinstance(data, LotSplitData) else list(data.lots)
    outputs = [p.lot for p in data.parts] if isinstance(data, LotSplitData) else [data.into.lot]
    g._step(
        at,
        event.type,
        [(i, _mass(effects, i)) for i in inputs],
        [(o.id, float(o.mass_kg)) for o in outputs],
    )
    staged = [s for s in map(g.stage, inputs) if s is not None]
    for lot in outputs:
        g._advance(lot.id, max(staged, key=stage_order) if staged else None, at, move=False)


def _on_accept(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    for handover in effects.handovers.values():
        states = [effects.items[i] for i in handover.items]
        attrs = {
            "rel": Rel.HANDOVER,
            "time": at.time,
            "via": at.via,
            "handover": handover.id,
            "region": at.region,
            "items": handover.items,
            "packs": sum(s.kind is ItemKind.PACK for s in states),
            "kg": sum(s.mass_kg or 0.0 for s in states),
            "kwh": sum(s.energy_kwh or 0.0 for s in states),
        }
        sender, receiver = g._actor(handover.sender), g._actor(handover.receiver)
        g.nx.add_edge(sender, receiver, **attrs)
        g.handovers.append((sender, receiver, attrs))


def _on_dispute(g: LifecycleGraph, at: _At, event: Event, effects: Effects) -> None:
    for handover in effects.handovers.values():
        keyed = g.nx._succ[actor_node(handover.sender)].get(actor_node(handover.receiver), {})
        for attrs in keyed.values():
            if attrs.get("handover") == handover.id:
                attrs["disputed"] = True


_HANDLERS: Final[dict[EventType, _Handler]] = {
    EventType.COMMISSION: _on_commission,
    EventType.INSTALL: _stage_of(Stage.USE),
    EventType.RETIRE: _stage_of(Stage.RETIREMENT),
    EventType.COLLECT: _stage_of(Stage.COLLECTION),
    EventType.REPURPOSE: _on_repurpose,
    EventType.DISMANTLE: _on_dismantle,
    EventType.DISASSEMBLE: _on_disassemble,
    EventType.RECYCLE: _on_transform,
    EventType.LOT_SMELT: _on_transform,
    EventType.LOT_SPLIT: _on_relabel,
    EventType.LOT_MERGE: _on_relabel,
    EventType.ACCEPT: _on_accept,
    EventType.DISPUTE: _on_dispute,
}


def _replay(tracer: Tracer, world: MemoryWorld) -> Iterator[Accepted]:
    """The tracer's log as accepted events, re-checked against ``world`` as the engine does."""
    head = tracer.log.head().size
    for start in range(0, head, _CHUNK):
        for entry in tracer.log.entries(start, min(head, start + _CHUNK)):
            if entry.kind == ACTOR_REGISTER:
                actor = Actor.model_validate(entry.body)
                world.actors[actor.id] = actor
            elif entry.kind.startswith(EVENT_KIND_PREFIX):
                event = parse_event(entry.body)
                eid = compute_event_id(event)
                effects = check_event(world, event, event_id=eid, tolerance=tracer.tolerance)
                world.apply(effects)
                recorded = datetime.fromisoformat(entry.recorded_at.replace("Z", "+00:00"))
                yield Accepted(entry.seq, event, eid, recorded, effects)
