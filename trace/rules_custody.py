"""Custody rules for one item's life in use: commission, assembly, vehicle, inspection, retirement.

Also corrections, which fix recorded facts of any item and never its custody. Each handler
takes a :class:`~trace.rules_common.Step` whose generic checks (role, chain, time order,
terminal, assembled and pending items) :func:`trace.rules.check_event` has already made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic import ValidationError

from schemas.composition import Composition
from schemas.events import (
    AssembleData,
    CollectData,
    CommissionData,
    CorrectionData,
    EventType,
    InspectData,
    InstallData,
    RetireData,
)
from trace.errors import CustodyError, InvalidEvent, MassBalanceError
from trace.rules_common import (
    Handler,
    Step,
    check_recorded_mass,
    kind_of_code,
    release_part,
    require_battery,
    require_lot,
)
from trace.state import Effects, EuStatus, ItemKind, ItemState, Status

__all__ = ["HANDLERS"]

_BATTERY_GRADES: Final = frozenset({"A", "B", "C", "D", "scrap"})


def _composition_fields(composition: Composition) -> dict[str, Any]:
    return {
        "content_kg": {element.value: kg for element, kg in composition.content_kg.items()},
        "chemistry": composition.chemistry.value,
        "energy_kwh": composition.energy_kwh,
    }


def _commission(step: Step) -> Effects:
    data = step.data(CommissionData)
    kind = kind_of_code(data.item, "commissioned (lots are created by lot_create)")
    fields: dict[str, Any] = {"mass_kg": data.mass_kg}
    if data.composition is not None:
        declared = data.composition.mass_kg
        if data.mass_kg is not None and abs(data.mass_kg - declared) > step.tolerance * declared:
            raise CustodyError(
                f"{data.item} is commissioned at {data.mass_kg:g} kg but its composition "
                f"weighs {declared:g} kg",
                rule="composition-mass",
            )
        fields["mass_kg"] = declared if data.mass_kg is None else data.mass_kg
        fields.update(_composition_fields(data.composition))
    effects = Effects()
    if data.materials:
        # Traced material going into production: the maker must hold each lot and cannot
        # take more than it weighs. What is left stays in stock; an emptied lot is consumed.
        for taken in data.materials:
            lot = step.held(taken.item, "build with")
            require_lot(lot, "consumed in production")
            effects.items[lot.id] = _take_from_lot(step, lot, taken.mass_kg)
        fields["sources"] = tuple(m.item for m in data.materials)
    effects.items[data.item] = step.new_item(data.item, kind, **fields)
    return effects


def _take_from_lot(step: Step, lot: ItemState, kg: float) -> ItemState:
    held = lot.mass_kg or 0.0
    if kg > held * (1 + step.tolerance):
        raise MassBalanceError(
            f"{lot.id} holds {held:g} kg; {kg:g} kg cannot be taken from it", rule="mass-balance"
        )
    left = max(held - kg, 0.0)
    share = left / held if held else 0.0
    content = {element: value * share for element, value in lot.content_kg.items()}
    if left <= held * step.tolerance:
        return step.touch(lot, status=Status.CONSUMED, mass_kg=0.0, content_kg={})
    return step.touch(lot, mass_kg=left, content_kg=content)


def _require_stock(state: ItemState, verb: str) -> None:
    if state.status is Status.INSTALLED:
        raise CustodyError(
            f"{state.id} is installed in vehicle {state.vin}; remove it before you {verb} it",
            rule="installed-item",
        )
    if state.status is not Status.IN_STOCK:
        raise CustodyError(
            f"{state.id} is {state.status.value}; only items in stock can be assembled "
            "(retired parts are re-coded by repurpose first)",
            rule="not-in-stock",
        )


def _assemble(step: Step) -> Effects:
    data = step.data(AssembleData)
    parent = step.held(data.parent, "assemble")
    _require_stock(parent, "assemble parts into")
    effects = Effects()
    for child_id in data.children:
        child = step.item(child_id)
        if child.status is Status.ASSEMBLED:
            raise CustodyError(
                f"{child_id} is already assembled in {child.parent}; disassemble it first",
                rule="already-assembled",
            )
        child = step.held(child_id, "assemble")
        _require_stock(child, "assemble")
        effects.items[child_id] = step.touch(child, status=Status.ASSEMBLED, parent=parent.id)
    effects.items[parent.id] = step.touch(parent, children=(*parent.children, *data.children))
    return effects


def _disassemble(step: Step) -> Effects:
    data = step.data(AssembleData)
    parent = step.held(data.parent, "disassemble")
    if parent.status is Status.INSTALLED:
        raise CustodyError(
            f"{parent.id} is installed in vehicle {parent.vin}; remove it before you disassemble it",
            rule="installed-item",
        )
    effects = Effects()
    for child_id in data.children:
        if child_id not in parent.children:
            raise CustodyError(f"{child_id} is not a part of {parent.id}", rule="not-a-part")
        effects.items[child_id] = release_part(step, parent, step.held(child_id, "disassemble"))
    taken = set(data.children)
    remaining = tuple(c for c in parent.children if c not in taken)
    effects.items[parent.id] = step.touch(parent, children=remaining)
    return effects


def _install(step: Step) -> Effects:
    data = step.data(InstallData)
    state = step.held(data.item, "install")
    if state.kind is not ItemKind.PACK:
        raise CustodyError(
            f"{data.item} is a {state.kind.value}; only packs are installed in vehicles",
            rule="pack-only",
        )
    if state.status is Status.INSTALLED:
        raise CustodyError(
            f"{data.item} is already installed in vehicle {state.vin}", rule="already-installed"
        )
    if state.status is not Status.IN_STOCK or state.eu_status is EuStatus.WASTE:
        raise CustodyError(
            f"{data.item} is {state.status.value} (EU status {state.eu_status.value}); a retired "
            "pack is waste and cannot go back into a vehicle unless repurposed under a new code",
            rule="retired-not-installable",
        )
    return Effects(items={data.item: step.touch(state, status=Status.INSTALLED, vin=data.vin)})


def _remove(step: Step) -> Effects:
    data = step.data(InstallData)
    state = step.held(data.item, "remove")
    if state.status is not Status.INSTALLED:
        raise CustodyError(
            f"{data.item} is {state.status.value}, not installed in a vehicle",
            rule="not-installed",
        )
    if state.vin != data.vin:
        raise CustodyError(
            f"{data.item} is installed in vehicle {state.vin}, not {data.vin}",
            rule="wrong-vehicle",
        )
    return Effects(items={data.item: step.touch(state, status=Status.IN_STOCK, vin=None)})


def _inspect(step: Step) -> Effects:
    data = step.data(InspectData)
    state = step.held(data.item, "inspect")
    require_battery(state, "inspected for state of health")
    return Effects(items={data.item: step.touch(state, soh_pct=data.soh_pct, grade=data.grade)})


def _retire(step: Step) -> Effects:
    data = step.data(RetireData)
    state = step.held(data.item, "retire")
    require_battery(state, "retired")
    if state.status in (Status.RETIRED, Status.COLLECTED):
        raise CustodyError(f"{data.item} is already {state.status.value}", rule="already-retired")
    # A retired pack leaves its vehicle: the VIN is cleared with the status.
    retired = step.touch(state, status=Status.RETIRED, eu_status=EuStatus.WASTE, vin=None)
    return Effects(items={data.item: retired})


def _collect(step: Step) -> Effects:
    data = step.data(CollectData)
    state = step.held(data.item, "collect")
    if state.status is not Status.RETIRED:
        raise CustodyError(
            f"{data.item} is {state.status.value}; only retired items are collected",
            rule="not-retired",
        )
    mass = state.mass_kg
    if data.mass_kg is not None:
        check_recorded_mass(step, state, data.mass_kg)
        mass = data.mass_kg
    return Effects(items={data.item: step.touch(state, status=Status.COLLECTED, mass_kg=mass)})


# --- correction ---


def _number(value: Any, name: str, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidEvent(f"{name} must be a finite number, got {value!r}", field=name)
    if not low <= value <= high:
        raise InvalidEvent(f"{name} must be within [{low:g}, {high:g}], got {value!r}", field=name)
    return float(value)


def _mass(value: Any, name: str) -> dict[str, Any]:
    mass = _number(value, name, low=0.0)
    if mass == 0:
        raise InvalidEvent(f"{name} must be positive, got {value!r}", field=name)
    return {"mass_kg": mass}


def _soh(value: Any, name: str) -> dict[str, Any]:
    return {"soh_pct": _number(value, name, low=0.0, high=100.0)}


def _capacity(value: Any, name: str) -> dict[str, Any]:
    _number(value, name, low=0.0)
    return {}  # remaining capacity is on the log, not in the item's state


def _grade(value: Any, name: str) -> dict[str, Any]:
    if value not in _BATTERY_GRADES:
        raise InvalidEvent(f"{name} must be one of A, B, C, D or scrap, got {value!r}", field=name)
    return {"grade": value}


def _composition(value: Any, name: str) -> dict[str, Any]:
    try:
        composition = Composition.model_validate(value)
    except (ValidationError, ValueError) as exc:
        raise InvalidEvent(f"{name} is not a valid composition: {exc}", field=name) from exc
    return _composition_fields(composition)


_CORRECTABLE: Final[Mapping[str, Callable[[Any, str], dict[str, Any]]]] = {
    "mass_kg": _mass,
    "soh_pct": _soh,
    "remaining_capacity_kwh": _capacity,
    "grade": _grade,
    "composition": _composition,
}
_BATTERY_FIELDS: Final = frozenset({"soh_pct", "remaining_capacity_kwh", "grade", "composition"})


def _correction(step: Step) -> Effects:
    data = step.data(CorrectionData)
    state = step.item(data.item)
    if step.actor.id not in (state.producer, state.custodian):
        raise CustodyError(
            f"{data.item} was produced by {state.producer} and is held by {state.custodian}; "
            f"only they may correct its record, not {step.actor.id}",
            rule="correction-author",
        )
    changes: dict[str, Any] = {}
    for name, value in sorted(data.fields.items()):
        where = f"data.fields.{name}"
        if state.kind is ItemKind.LOT and name in _BATTERY_FIELDS:
            raise InvalidEvent(f"{data.item} is a lot; {name} applies to batteries", field=where)
        changes.update(_CORRECTABLE[name](value, where))
    # A correction fixes facts where they were recorded: it neither moves nor re-homes the item.
    return Effects(items={data.item: step.touch(state, region=state.region, **changes)})


HANDLERS: Final[Mapping[EventType, Handler]] = {
    EventType.COMMISSION: _commission,
    EventType.ASSEMBLE: _assemble,
    EventType.DISASSEMBLE: _disassemble,
    EventType.INSTALL: _install,
    EventType.REMOVE: _remove,
    EventType.INSPECT: _inspect,
    EventType.RETIRE: _retire,
    EventType.COLLECT: _collect,
    EventType.CORRECTION: _correction,
}
