"""Shared machinery of the custody rules: the step being checked, item look-ups, mass balance.

The rule modules (:mod:`trace.rules_custody`, :mod:`trace.rules_handover`,
:mod:`trace.rules_transform`) each get a :class:`Step` — the world, the event, its id,
its actor and the tolerance — and return :class:`~trace.state.Effects`. Nothing here
mutates the world: new states are built with :func:`trace.state.evolve`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from schemas.actors import Actor
from schemas.codes import ProductType, product_type_of
from schemas.events import Event, is_lot_id
from schemas.lots import Lot
from trace.errors import CustodyError, InvalidEvent, MassBalanceError, UnknownItem
from trace.state import Effects, EuStatus, ItemKind, ItemState, Status, World, evolve

__all__ = [
    "FLOAT_SLACK_KG",
    "Handler",
    "Step",
    "check_balance",
    "check_elements",
    "check_recorded_mass",
    "input_basis",
    "kind_of_code",
    "lot_content",
    "release_part",
    "require_battery",
    "require_lot",
]

# Float sums of kilograms differ from exact arithmetic by far less than a microgram; the
# slack keeps a zero tolerance usable and is never a tolerance of its own.
FLOAT_SLACK_KG: Final = 1e-9

_KINDS: Final[Mapping[ProductType, ItemKind]] = {
    ProductType.PACK: ItemKind.PACK,
    ProductType.MODULE: ItemKind.MODULE,
    ProductType.CELL: ItemKind.CELL,
}

_D = TypeVar("_D", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Step:
    """One event being checked against one world."""

    world: World
    event: Event
    event_id: str
    actor: Actor
    tolerance: float

    def data(self, kind: type[_D]) -> _D:
        """The event's body as ``kind`` (the dispatch table guarantees the match)."""
        data = self.event.data
        if not isinstance(data, kind):
            raise InvalidEvent(f"a {self.event.type.value} event carries {data.type} data")
        return data

    def item(self, item_id: str) -> ItemState:
        """The current state of an item that must exist."""
        state = self.world.item(item_id)
        if state is None:
            raise UnknownItem(f"{item_id} is not known: it was never commissioned or created")
        return state

    def held(self, item_id: str, verb: str) -> ItemState:
        """The state of an item the actor must hold."""
        state = self.item(item_id)
        if state.custodian != self.actor.id:
            raise CustodyError(
                f"{item_id} is held by {state.custodian}; only its custodian may {verb} it, "
                f"not {self.actor.id}",
                rule="custodian-only",
            )
        return state

    def touch(self, state: ItemState, **changes: Any) -> ItemState:
        """The item's next version: this event becomes its head."""
        changes["head"] = self.event_id
        changes["last_time"] = self.event.event_time
        return self.carry(state, **changes)

    def carry(self, state: ItemState, **changes: Any) -> ItemState:
        """Change an item without making this event its head (parts that follow a parent).

        An item is where its custodian last acted on it: when the actor holds the item
        after the change, the item's region becomes the event's region.
        """
        if changes.get("custodian", state.custodian) == self.actor.id:
            changes.setdefault("region", self.event.region)
        return evolve(state, **changes)

    def new_item(self, item_id: str, kind: ItemKind, **fields: Any) -> ItemState:
        """A new item created by this event, held, owned and produced by the actor."""
        return ItemState(
            id=item_id,
            kind=kind,
            status=Status.IN_STOCK,
            custodian=self.actor.id,
            owner=self.actor.id,
            producer=self.actor.id,
            head=self.event_id,
            last_time=self.event.event_time,
            region=self.event.region,
            **fields,
        )

    def new_lot(self, lot: Lot, sources: Iterable[str]) -> ItemState:
        """A new lot item from its record; ``sources`` are the items it was made from."""
        grade = None if lot.grade is None else f"{lot.grade.standard.value} {lot.grade.designation}"
        return self.new_item(
            lot.id,
            ItemKind.LOT,
            mass_kg=float(lot.mass_kg),
            content_kg=lot_content(lot),
            material=lot.material.value,
            grade=grade,
            sources=tuple(sources),
        )

    def ceiling(self, kg: float) -> float:
        """The most a quantity of ``kg`` may become within the tolerance."""
        return kg * (1 + self.tolerance) + FLOAT_SLACK_KG

    def floor(self, kg: float) -> float:
        """The least a quantity of ``kg`` may become within the tolerance."""
        return kg * (1 - self.tolerance) - FLOAT_SLACK_KG


Handler = Callable[[Step], Effects]
"""A rule for one event type: the effects of the event, or a refusal."""


def lot_content(lot: Lot) -> dict[str, float]:
    """A lot's element content keyed by element symbol (the state keeps plain strings)."""
    return {element.value: float(kg) for element, kg in lot.content_kg.items()}


def kind_of_code(item_id: str, verb: str) -> ItemKind:
    """The kind of item a battery code names; a lot id is refused."""
    if is_lot_id(item_id):
        raise CustodyError(
            f"{item_id} is a lot; only packs, modules and cells (GB/T 34014 codes) can be {verb}",
            rule="battery-only",
        )
    product = product_type_of(item_id)
    if product is None:  # events validate codes, so this is a contract breach
        raise InvalidEvent(f"{item_id} is not a GB/T 34014 code", field="data")
    return _KINDS[product]


def require_battery(state: ItemState, verb: str) -> None:
    if state.kind is ItemKind.LOT:
        raise CustodyError(
            f"{state.id} is a lot; only packs, modules and cells can be {verb}", rule="battery-only"
        )


def require_lot(state: ItemState, verb: str) -> None:
    if state.kind is not ItemKind.LOT:
        raise CustodyError(
            f"{state.id} is a {state.kind.value}; only lots can be {verb}", rule="lot-only"
        )


def release_part(step: Step, parent: ItemState, part: ItemState) -> ItemState:
    """A part taken out of ``parent`` by this event: in stock, held by the actor.

    A part of waste is waste: a part leaving a parent whose EU status is Waste is Waste too.
    """
    if part.parent != parent.id or part.status is not Status.ASSEMBLED:
        raise CustodyError(f"{part.id} is not a part of {parent.id}", rule="not-a-part")
    eu_status = EuStatus.WASTE if parent.eu_status is EuStatus.WASTE else part.eu_status
    return step.touch(
        part, status=Status.IN_STOCK, parent=None, custodian=step.actor.id, eu_status=eu_status
    )


def check_recorded_mass(step: Step, state: ItemState, declared_kg: float) -> None:
    """A declared mass may not exceed the item's recorded mass beyond the tolerance."""
    if state.mass_kg is not None and declared_kg > step.ceiling(state.mass_kg):
        raise MassBalanceError(
            f"{state.id} is declared at {declared_kg:g} kg but was recorded at "
            f"{state.mass_kg:g} kg (tolerance {step.tolerance:.1%})",
            rule="recorded-mass",
        )


def input_basis(state: ItemState, declared_kg: float) -> float:
    """The mass an input contributes to a balance: as declared, capped at its recorded mass.

    The cap stops the tolerance compounding: an input declared a little heavier than its
    record cannot also yield outputs a little heavier than that declaration.
    """
    return declared_kg if state.mass_kg is None else min(declared_kg, state.mass_kg)


def check_balance(step: Step, *, out_kg: float, in_kg: float, what: str) -> None:
    """Outputs of a step may weigh at most its inputs plus the tolerance."""
    if out_kg > step.ceiling(in_kg):
        raise MassBalanceError(
            f"{what}: the outputs weigh {out_kg:g} kg, more than the {in_kg:g} kg that went in "
            f"(tolerance {step.tolerance:.1%})",
            rule="mass-balance",
        )


def check_elements(
    step: Step,
    inputs: Sequence[Mapping[str, float]],
    outputs: Sequence[Mapping[str, float]],
    *,
    what: str,
) -> None:
    """Per element, the outputs may hold at most what the inputs held plus the tolerance.

    Checked only when every input's content is known (recorded and not empty); an element
    a known content does not list counts as 0 kg, so cobalt cannot come out of LFP.
    """
    if not inputs or any(not content for content in inputs):
        return
    held: dict[str, float] = {}
    for content in inputs:
        for element, kg in content.items():
            held[element] = held.get(element, 0.0) + kg
    made: dict[str, float] = {}
    for content in outputs:
        for element, kg in content.items():
            made[element] = made.get(element, 0.0) + kg
    for element in sorted(made):
        if made[element] > step.ceiling(held.get(element, 0.0)):
            raise MassBalanceError(
                f"{what}: the outputs hold {made[element]:g} kg of {element}, more than the "
                f"{held.get(element, 0.0):g} kg the inputs held (tolerance {step.tolerance:.1%})",
                rule="element-balance",
            )
