"""Rules for steps that turn items into other items: repurpose, dismantle, recycle, lots.

Repurpose re-codes an item for cascade use (GB/T 34014-2017 §4.2: the original code is
kept, here as ``original``/``successor``). Dismantling (GB/T 33598), recycling and the lot
steps are balanced in kilograms: outputs may weigh at most what went in plus the tolerance,
and recycling, smelting, splitting and merging are balanced per element too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from schemas.events import (
    DismantleData,
    EventType,
    LotCreateData,
    LotMergeData,
    LotSmeltData,
    LotSplitData,
    MassIn,
    OutputLot,
    RecycleData,
    RepurposeData,
)
from trace.errors import CustodyError
from trace.rules_common import (
    Handler,
    Step,
    check_balance,
    check_elements,
    check_recorded_mass,
    input_basis,
    kind_of_code,
    lot_content,
    release_part,
    require_battery,
    require_lot,
)
from trace.state import Effects, EuStatus, ItemKind, ItemState, Status

__all__ = ["HANDLERS"]

_SCRAP_GRADE: Final = "scrap"
# verb -> (past participle, gerund), for messages
_FORMS: Final[Mapping[str, tuple[str, str]]] = {
    "recycle": ("recycled", "recycling"),
    "smelt": ("smelted", "smelting"),
}


def _refuse_installed(state: ItemState, verb: str) -> None:
    if state.status is Status.INSTALLED:
        raise CustodyError(
            f"{state.id} is installed in vehicle {state.vin}; remove and retire it before you "
            f"{verb} it",
            rule="installed-item",
        )


def _refuse_parts(item_id: str, parts: Sequence[str], verb: str) -> None:
    # Every coded module and cell keeps a status of its own: none is left assembled inside
    # an item that has ended.
    if parts:
        raise CustodyError(
            f"{item_id} still holds assembled parts {', '.join(parts)}; disassemble them "
            f"(or list them as dismantled parts) before you {verb} it",
            rule="has-parts",
        )


def _repurpose(step: Step) -> Effects:
    data = step.data(RepurposeData)
    state = step.held(data.item, "repurpose")
    _refuse_installed(state, "repurpose")
    # Cascade use starts from testing and grading (MIIT 2021 No. 114, domain.md §2.3).
    if state.grade is None:
        raise CustodyError(
            f"{data.item} has not been inspected; grade it before it is repurposed",
            rule="not-inspected",
        )
    if state.grade == _SCRAP_GRADE:
        raise CustodyError(
            f"{data.item} was graded scrap; it can be dismantled or recycled, not repurposed",
            rule="scrap-grade",
        )
    kind = kind_of_code(data.new_code, "repurposed")
    if kind is not state.kind:
        raise CustodyError(
            f"{data.new_code} codes a {kind.value} but {data.item} is a {state.kind.value}; "
            "a re-code keeps the product type",
            rule="recode-type",
        )
    reborn = step.new_item(
        data.new_code,
        kind,
        original=data.item,
        eu_status=EuStatus.REPURPOSED,
        mass_kg=state.mass_kg,
        content_kg=dict(state.content_kg),
        chemistry=state.chemistry,
        energy_kwh=state.energy_kwh,
        soh_pct=state.soh_pct,
        grade=state.grade,
        children=state.children,
    )
    effects = Effects(items={data.new_code: reborn})
    # The parts live on inside the re-coded item; they are not on the event, so their head stays.
    for child_id in state.children:
        effects.items[child_id] = step.carry(step.item(child_id), parent=data.new_code)
    effects.items[data.item] = step.touch(
        state, status=Status.REPURPOSED, successor=data.new_code, children=()
    )
    return effects


def _dismantle(step: Step) -> Effects:
    data = step.data(DismantleData)
    state = step.held(data.item, "dismantle")
    require_battery(state, "dismantled")
    _refuse_installed(state, "dismantle")
    scrap_in_stock = state.status is Status.IN_STOCK and state.grade == _SCRAP_GRADE
    if state.status not in (Status.RETIRED, Status.COLLECTED) and not scrap_in_stock:
        raise CustodyError(
            f"{data.item} is {state.status.value}; only retired or collected items, or items "
            "in stock graded scrap, are dismantled",
            rule="not-retired",
        )
    for part_id in data.parts:
        if part_id not in state.children:
            raise CustodyError(f"{part_id} is not a part of {data.item}", rule="not-a-part")
    listed = set(data.parts)
    _refuse_parts(data.item, [c for c in state.children if c not in listed], "dismantle")
    if not data.parts and not data.outputs:
        raise CustodyError(
            f"dismantling {data.item} yields neither parts nor lots; it would vanish from the "
            "record",
            rule="no-outputs",
        )
    check_recorded_mass(step, state, data.mass_kg)
    effects = Effects()
    parts_kg = 0.0
    for part_id in data.parts:
        part = release_part(step, state, step.held(part_id, "dismantle"))
        parts_kg += part.mass_kg or 0.0
        effects.items[part_id] = part
    lots_kg = sum(o.mass_kg for o in data.outputs)
    check_balance(
        step,
        out_kg=lots_kg + parts_kg,
        in_kg=input_basis(state, data.mass_kg),
        what=f"dismantling {data.item}",
    )
    effects.items[data.item] = step.touch(state, status=Status.DISMANTLED, children=())
    for output in data.outputs:
        effects.items[output.lot.id] = step.new_lot(output.lot, (data.item,))
    return effects


def _consume(step: Step, inputs: Sequence[MassIn], *, verb: str, lots_only: bool) -> Effects:
    """Inputs of a recycling or smelting step: held, consumable, within their recorded mass."""
    done = _FORMS[verb][0]
    effects = Effects()
    for entry in inputs:
        state = step.held(entry.item, verb)
        if lots_only:
            require_lot(state, done)
        if state.kind is ItemKind.LOT:
            ended = Status.CONSUMED
        else:
            if state.status is not Status.COLLECTED:
                raise CustodyError(
                    f"{entry.item} is {state.status.value}; batteries are collected (入库) "
                    f"before they are {done}",
                    rule="not-collected",
                )
            _refuse_parts(entry.item, state.children, verb)
            ended = Status.RECYCLED
        check_recorded_mass(step, state, entry.mass_kg)
        effects.items[entry.item] = step.touch(state, status=ended)
    return effects


def _transform(
    step: Step,
    inputs: Sequence[MassIn],
    outputs: Sequence[OutputLot],
    *,
    verb: str,
    lots_only: bool,
    reagents_kg: float = 0.0,
) -> Effects:
    effects = _consume(step, inputs, verb=verb, lots_only=lots_only)
    states = [step.item(entry.item) for entry in inputs]
    what = f"{_FORMS[verb][1]} {', '.join(entry.item for entry in inputs)}"
    # Declared process chemicals (acids, carbonates) add mass to refined products but carry
    # none of the tracked elements: they count in the mass balance, not the element balance.
    in_kg = reagents_kg + sum(
        input_basis(s, entry.mass_kg) for s, entry in zip(states, inputs, strict=True)
    )
    check_balance(step, out_kg=sum(o.mass_kg for o in outputs), in_kg=in_kg, what=what)
    check_elements(
        step, [s.content_kg for s in states], [lot_content(o.lot) for o in outputs], what=what
    )
    sources = tuple(entry.item for entry in inputs)
    for output in outputs:
        effects.items[output.lot.id] = step.new_lot(output.lot, sources)
    return effects


def _recycle(step: Step) -> Effects:
    data = step.data(RecycleData)
    return _transform(
        step,
        data.inputs,
        data.outputs,
        verb="recycle",
        lots_only=False,
        reagents_kg=data.reagents_kg,
    )


def _smelt(step: Step) -> Effects:
    data = step.data(LotSmeltData)
    return _transform(
        step, data.inputs, data.outputs, verb="smelt", lots_only=True, reagents_kg=data.reagents_kg
    )


def _lot_create(step: Step) -> Effects:
    data = step.data(LotCreateData)
    return Effects(items={data.lot.id: step.new_lot(data.lot, ())})


def _relabel(
    step: Step, inputs: Sequence[ItemState], outputs: Sequence[OutputLot], *, what: str
) -> Effects:
    """A split or merge re-labels material: same material, and no mass gained or lost."""
    materials = {s.material for s in inputs} | {o.lot.material.value for o in outputs}
    if len(materials) > 1:
        raise CustodyError(
            f"{what} mixes materials {', '.join(sorted(m or '?' for m in materials))}; "
            "lots are split and merged within one material",
            rule="material-mismatch",
        )
    in_kg = sum(s.mass_kg or 0.0 for s in inputs)
    out_kg = sum(o.mass_kg for o in outputs)
    check_balance(step, out_kg=out_kg, in_kg=in_kg, what=what)
    if out_kg < step.floor(in_kg):
        raise CustodyError(
            f"{what}: the outputs weigh {out_kg:g} kg of the {in_kg:g} kg that went in; a "
            f"split or merge loses nothing beyond the tolerance ({step.tolerance:.1%})",
            rule="mass-lost",
        )
    check_elements(
        step, [s.content_kg for s in inputs], [lot_content(o.lot) for o in outputs], what=what
    )
    effects = Effects()
    for state in inputs:
        effects.items[state.id] = step.touch(state, status=Status.CONSUMED)
    sources = tuple(s.id for s in inputs)
    for output in outputs:
        effects.items[output.lot.id] = step.new_lot(output.lot, sources)
    return effects


def _held_lot(step: Step, lot_id: str, verb: str) -> ItemState:
    state = step.held(lot_id, verb)
    require_lot(state, verb)
    return state


def _lot_split(step: Step) -> Effects:
    data = step.data(LotSplitData)
    lot = _held_lot(step, data.lot, "split")
    return _relabel(step, [lot], data.parts, what=f"splitting {data.lot}")


def _lot_merge(step: Step) -> Effects:
    data = step.data(LotMergeData)
    lots = [_held_lot(step, lot_id, "merge") for lot_id in data.lots]
    return _relabel(step, lots, [data.into], what=f"merging {', '.join(data.lots)}")


HANDLERS: Final[Mapping[EventType, Handler]] = {
    EventType.REPURPOSE: _repurpose,
    EventType.DISMANTLE: _dismantle,
    EventType.RECYCLE: _recycle,
    EventType.LOT_CREATE: _lot_create,
    EventType.LOT_SPLIT: _lot_split,
    EventType.LOT_MERGE: _lot_merge,
    EventType.LOT_SMELT: _smelt,
}
