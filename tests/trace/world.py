"""Test helpers for the custody rules: a world of actors, valid codes and lots, chained events.

:class:`Sim` holds a :class:`~trace.state.MemoryWorld`, a seeded random source for GB/T
34014 codes and lot ids, and a clock; :meth:`Sim.event` builds an event whose ``prev`` is
read from the world, :meth:`Sim.run` checks it and applies its effects, and a few
builders put items where a test needs them (a pack at a recycler, a pack of modules).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from schemas.actors import Actor, Role
from schemas.codes import BatteryType, ProductType, generate_code
from schemas.events import Event, EventData
from schemas.lots import Material, new_lot_id
from trace.errors import CustodyError, MassBalanceError
from trace.rules import DEFAULT_TOLERANCE, check_event
from trace.state import Effects, HandoverState, ItemState, MemoryWorld

__all__ = [
    "CAST",
    "MASS_RULES",
    "T0",
    "VIN",
    "Sim",
    "apply",
    "body",
    "fake_event_id",
    "lot",
    "refused",
    "snapshot",
]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
VIN = "LGXCE4CB5N0000001"
# One organisation per role, each in a province of its own trade.
CAST: Mapping[str, tuple[Role, str]] = {
    "catl": (Role.BATTERY_MAKER, "350000"),
    "byd": (Role.AUTOMAKER, "440000"),
    "dealer": (Role.DEALER, "440000"),
    "collector": (Role.COLLECTOR, "440000"),
    "cascade": (Role.CASCADE_OPERATOR, "320000"),
    "recycler": (Role.RECYCLER, "430000"),
    "scrap": (Role.SCRAP_PROCESSOR, "430000"),
    "auditor": (Role.AUDITOR, "110000"),
}
MASS_RULES = frozenset({"mass-balance", "element-balance", "recorded-mass"})
_EVENT_DATA: TypeAdapter[Any] = TypeAdapter(EventData)


def fake_event_id(n: int) -> str:
    """An event id in the CBV 2.0 hash form, from a counter."""
    return f"ni:///sha-256;{hashlib.sha256(str(n).encode()).hexdigest()}?ver=CBV2.0"


def apply(world: MemoryWorld, effects: Effects) -> None:
    """Fold effects into a world (what the engine does after appending)."""
    world.apply(effects)


def snapshot(world: MemoryWorld) -> tuple[dict[str, ItemState], dict[str, HandoverState]]:
    """A copy of a world's states (they are frozen, so a shallow copy is a snapshot)."""
    return dict(world.items), dict(world.handovers)


def body(kind: str, **fields: Any) -> dict[str, Any]:
    """An event body: ``body("inspect", item=code, soh_pct=90, grade="A")``."""
    return {"type": kind, **fields}


def lot(
    lot_id: str,
    material: Material | str,
    mass_kg: float,
    content: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """An output lot as an event carries it."""
    record: dict[str, Any] = {"id": lot_id, "material": str(material), "mass_kg": mass_kg}
    if content:
        record["content_kg"] = dict(content)
    return {"lot": record}


def refused(
    sim: Sim, actor: str, data: Mapping[str, Any], rule: str, match: str, **kw: Any
) -> None:
    """The event is refused under ``rule`` (message matching ``match``); the world is unchanged."""
    before = snapshot(sim.world)
    error = MassBalanceError if rule in MASS_RULES else CustodyError
    with pytest.raises(error, match=match) as caught:
        sim.run(actor, data, **kw)
    assert caught.value.rule == rule
    assert snapshot(sim.world) == before


@dataclass
class Sim:
    """A world being built event by event."""

    world: MemoryWorld = field(default_factory=MemoryWorld)
    rng: random.Random = field(default_factory=lambda: random.Random(34014))
    tolerance: float = DEFAULT_TOLERANCE
    clock: datetime = T0
    count: int = 0
    ids: list[str] = field(default_factory=list)

    @classmethod
    def cast(cls, seed: int = 34014) -> Sim:
        """A world with the :data:`CAST` registered."""
        sim = cls(rng=random.Random(seed))
        for actor_id, (role, region) in CAST.items():
            sim.add_actor(actor_id, role, region)
        return sim

    def add_actor(self, actor_id: str, role: Role, region: str = "440000") -> str:
        name = actor_id.replace("-", " ").title()
        self.world.actors[actor_id] = Actor(id=actor_id, name=name, role=role, region=region)
        return actor_id

    def code(
        self,
        product: ProductType = ProductType.PACK,
        battery: BatteryType = BatteryType.TERNARY,
        **fields: Any,
    ) -> str:
        """A valid GB/T 34014 code; ``fields`` fix more of it (see ``generate_code``)."""
        return generate_code(self.rng, product_type=product, battery_type=battery, **fields)

    def lot_id(self) -> str:
        return new_lot_id(self.rng)

    def item(self, item_id: str) -> ItemState:
        state = self.world.item(item_id)
        assert state is not None, f"{item_id} is not in the world"
        return state

    def handover(self, handover_id: str) -> HandoverState:
        state = self.world.handover(handover_id)
        assert state is not None, f"no handover {handover_id}"
        return state

    def tick(self, minutes: int = 1) -> datetime:
        self.clock += timedelta(minutes=minutes)
        return self.clock

    # --- events ---

    def event(
        self,
        actor_id: str,
        data: Mapping[str, Any],
        *,
        at: datetime | None = None,
        prev: Mapping[str, str | None] | None = None,
        region: str | None = None,
    ) -> Event:
        """An event by ``actor_id``; ``prev`` defaults to each item's head in the world."""
        parsed = _EVENT_DATA.validate_python(dict(data))
        chain: dict[str, str | None] = {}
        for item_id in parsed.items():
            state = self.world.item(item_id)
            chain[item_id] = None if state is None else state.head
        chain.update(prev or {})
        actor = self.world.actor(actor_id)
        self.count += 1
        return Event(
            actor=actor_id,
            event_time=at or self.tick(),
            region=region or (actor.region if actor is not None else "110000"),
            idempotency_key=f"k-{self.count}",
            prev=chain,
            data=parsed,
        )

    def next_id(self) -> str:
        """The id the next applied event gets (refused events take none)."""
        return fake_event_id(len(self.ids))

    def check(self, event: Event, *, tolerance: float | None = None) -> tuple[str, Effects]:
        """The id the event would get and its effects; the world is not changed."""
        event_id = self.next_id()
        effects = check_event(
            self.world,
            event,
            event_id=event_id,
            tolerance=self.tolerance if tolerance is None else tolerance,
        )
        return event_id, effects

    def run(self, actor_id: str, data: Mapping[str, Any], **kw: Any) -> str:
        """Build, check and apply an event; return its id."""
        tolerance = kw.pop("tolerance", None)
        event_id, effects = self.check(self.event(actor_id, data, **kw), tolerance=tolerance)
        apply(self.world, effects)
        self.ids.append(event_id)
        return event_id

    # --- builders ---

    def hand(self, sender: str, receiver: str, items: list[str], **data: Any) -> str:
        """A handover accepted by its receiver; return the handover's id."""
        offer = self.run(sender, body("handover", items=items, to=receiver, **data))
        self.run(receiver, body("accept", handover=offer, items=items))
        return offer

    def commission(
        self, product: ProductType = ProductType.PACK, *, by: str = "catl", **data: Any
    ) -> str:
        """A new battery (400 kg unless ``data`` says otherwise)."""
        code = self.code(product)
        self.run(by, body("commission", item=code, **{"mass_kg": 400.0, **data}))
        return code

    def pack_at(self, holder: str, **data: Any) -> str:
        """A pack made by catl and sold (custody and ownership) to ``holder``."""
        code = self.commission(**data)
        if holder != "catl":
            self.hand("catl", holder, [code], transfer_ownership=True)
        return code

    def retired_at(self, holder: str, *, collect: bool = False, **data: Any) -> str:
        """A pack retired by its automaker and handed over to ``holder``."""
        code = self.pack_at("byd", **data)
        self.run("byd", body("retire", item=code, reason="end of first life"))
        if holder != "byd":
            self.hand("byd", holder, [code])
        if collect:
            self.run(holder, body("collect", item=code))
        return code

    def built_pack(self) -> tuple[str, list[str], list[str]]:
        """A 300 kg pack of two 60 kg modules of two 5 kg cells each, assembled by catl."""
        pack = self.commission(mass_kg=300.0)
        modules = [self.commission(ProductType.MODULE, mass_kg=60.0) for _ in range(2)]
        cells = [self.commission(ProductType.CELL, mass_kg=5.0) for _ in range(4)]
        for i, module in enumerate(modules):
            self.run("catl", body("assemble", parent=module, children=cells[2 * i : 2 * i + 2]))
        self.run("catl", body("assemble", parent=pack, children=modules))
        return pack, modules, cells

    def new_lot(
        self,
        by: str = "recycler",
        material: Material = Material.BLACK_MASS,
        mass: float = 100.0,
        content: Mapping[str, float] | None = None,
    ) -> str:
        lot_id = self.lot_id()
        self.run(by, body("lot_create", **lot(lot_id, material, mass, content)))
        return lot_id
