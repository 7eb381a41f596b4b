"""The state of items and handovers that the custody rules read and produce.

States are frozen values; the rules never mutate them, they return the new
versions as :class:`Effects`. A :class:`World` is anything that can look
states up (the in-memory world of the engine, a batch overlay, a test).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from schemas.actors import Actor

__all__ = [
    "Effects",
    "EuStatus",
    "HandoverState",
    "HandoverStatus",
    "ItemKind",
    "ItemState",
    "MemoryWorld",
    "Status",
    "World",
    "evolve",
]


class ItemKind(StrEnum):
    PACK = "pack"
    MODULE = "module"
    CELL = "cell"
    LOT = "lot"


class Status(StrEnum):
    """Where an item is in its life (China's stages: 生产, 使用, 报废, 回收, 梯次利用, 再生利用)."""

    IN_STOCK = "in_stock"  # commissioned or removed, held by an organisation
    ASSEMBLED = "assembled"  # part of a module or pack: acts through its parent
    INSTALLED = "installed"  # in a vehicle (VIN)
    RETIRED = "retired"  # out of use, not yet collected
    COLLECTED = "collected"  # in a collection point's or recycler's storage
    REPURPOSED = "repurposed"  # lives on under its new code (this code is history)
    DISMANTLED = "dismantled"  # taken apart
    RECYCLED = "recycled"  # consumed by recycling
    CONSUMED = "consumed"  # a lot split, merged or smelted into others


TERMINAL = frozenset({Status.REPURPOSED, Status.DISMANTLED, Status.RECYCLED, Status.CONSUMED})


class EuStatus(StrEnum):
    """Battery status in the EU Battery Regulation's passport (Annex XIII 4(c))."""

    ORIGINAL = "Original"
    REPURPOSED = "Repurposed"
    REUSED = "Reused"
    REMANUFACTURED = "Remanufactured"
    WASTE = "Waste"


class HandoverStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ItemState:
    """One pack, module, cell or lot as the log says it is now."""

    id: str
    kind: ItemKind
    status: Status
    custodian: str  # actor holding it (possessing_party)
    owner: str  # actor owning it (owning_party)
    producer: str  # actor that commissioned or created it
    head: str  # id of the item's latest event
    last_time: datetime  # event time of that event
    region: str
    mass_kg: float | None = None
    content_kg: Mapping[str, float] = field(default_factory=dict)  # element -> kg
    chemistry: str | None = None
    energy_kwh: float | None = None
    material: str | None = None  # lots
    vin: str | None = None
    parent: str | None = None
    children: tuple[str, ...] = ()
    original: str | None = None  # the code this item was re-coded from
    successor: str | None = None  # the code it was re-coded to
    pending_handover: str | None = None
    disputed: bool = False
    soh_pct: float | None = None
    grade: str | None = None
    eu_status: EuStatus = EuStatus.ORIGINAL
    sources: tuple[str, ...] = ()  # items or lots this one was made from (recycling lineage)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class HandoverState:
    """A two-party custody transfer; with its accept event, a receipt signed by both sides."""

    id: str
    sender: str
    receiver: str
    items: tuple[str, ...]
    transfer_ownership: bool
    status: HandoverStatus
    created: datetime
    disputed: bool = False
    closed_by: str | None = None  # the accept / reject / cancel event


_State = TypeVar("_State", "ItemState", "HandoverState")
_FIELDS: dict[type, tuple[str, ...]] = {}


def evolve(state: _State, **changes: Any) -> _State:
    """``dataclasses.replace`` for the frozen states: a copy with ``changes``.

    The states have no ``__post_init__``, so the copy is made slot by slot instead of
    through ``__init__`` (the rules make a new version of every item they touch).
    """
    kind = type(state)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(kind))
    unknown = changes.keys() - set(names)
    if unknown:
        raise TypeError(f"{kind.__name__} has no field {sorted(unknown)[0]!r}")
    new = object.__new__(kind)
    for name in names:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(state, name))
    return new


@dataclass(slots=True)
class Effects:
    """What an accepted event changes: new versions of items and handovers."""

    items: dict[str, ItemState] = field(default_factory=dict)
    handovers: dict[str, HandoverState] = field(default_factory=dict)


class World(Protocol):
    """Read access to the current state."""

    def item(self, item_id: str) -> ItemState | None: ...

    def handover(self, handover_id: str) -> HandoverState | None: ...

    def actor(self, actor_id: str) -> Actor | None: ...


class MemoryWorld:
    """A world in dictionaries; :meth:`apply` folds effects in. Also used as a batch overlay."""

    def __init__(self, base: World | None = None) -> None:
        self.base = base
        self.items: dict[str, ItemState] = {}
        self.handovers: dict[str, HandoverState] = {}
        self.actors: dict[str, Actor] = {}

    def item(self, item_id: str) -> ItemState | None:
        found = self.items.get(item_id)
        if found is None and self.base is not None:
            return self.base.item(item_id)
        return found

    def handover(self, handover_id: str) -> HandoverState | None:
        found = self.handovers.get(handover_id)
        if found is None and self.base is not None:
            return self.base.handover(handover_id)
        return found

    def actor(self, actor_id: str) -> Actor | None:
        found = self.actors.get(actor_id)
        if found is None and self.base is not None:
            return self.base.actor(actor_id)
        return found

    def apply(self, effects: Effects) -> None:
        self.items.update(effects.items)
        self.handovers.update(effects.handovers)
