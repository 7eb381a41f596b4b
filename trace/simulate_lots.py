"""Lots in the fleet simulator: a recycler's outputs, monthly shipments, smelting, recycled content.

A recycler ends a pack (dismantle, or recycle it whole) and refines black mass
(:mod:`trace.simulate_materials` has the masses). On the first of each month it ships its
scrap lots to a scrap processor and its refined lots to a battery maker; on the 15th each
scrap processor smelts what it holds, one lot_smelt per material. With
``SimConfig.recycled_content`` on, battery makers build new packs with the refined lots
they hold (``CommissionData.materials``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from schemas.composition import Composition, Element
from schemas.events import (
    AcceptData,
    DismantleData,
    HandoverData,
    LotSmeltData,
    MassIn,
    OutputLot,
    RecycleData,
)
from schemas.lots import Material, new_lot_id
from trace.simulate_config import AnomalyKind, SimConfig
from trace.simulate_materials import (
    DISMANTLE_LOSS_FACTOR,
    LOW_RECOVERY_FACTOR,
    OVER_RECOVERY_RATIO,
    PRODUCTS,
    SCRAP_METALS,
    HeldLot,
    LotSpec,
    MakerStock,
    dismantle_outputs,
    product_lots,
    reagents_kg,
    smelt_output,
    take_recycled,
    total_kg,
)
from trace.simulate_truth import Anomaly, RecycledContent, TruthBuilder
from trace.simulate_world import CST, Emitter, SimActor

__all__ = ["LotFlows", "Schedule"]

Schedule = Callable[[datetime, str, tuple[str, ...], Callable[[datetime], None]], None]
"""``schedule(when, label, items, action)``: run ``action(when)`` once ``items`` are free."""

_SHIP_DAY: Final = 1
_SMELT_DAY: Final = 15
_WORK_HOUR: Final = 10
_ACCEPT_AFTER: Final = timedelta(days=2)
# Lots per shipment or melt: with their prev ids, 200 lots keep an entry well under the
# log's 64 KiB limit (schemas.events allows 1000 items).
_LOTS_PER_EVENT: Final = 200
_SCRAP: Final = frozenset({*SCRAP_METALS.values(), Material.STEEL_SCRAP})


def _year(moment: datetime) -> int:
    return moment.astimezone(CST).year


def _elements(content: Mapping[Element, float]) -> dict[str, float]:
    return {element.value: kg for element, kg in content.items()}


def _month_day(after: datetime, day: int) -> datetime:
    """The next ``day`` of a month at 10:00 CST strictly after ``after``."""
    local = after.astimezone(CST)
    candidate = local.replace(day=day, hour=_WORK_HOUR, minute=0, second=0, microsecond=0)
    if candidate <= local:
        month = local.month % 12 + 1
        year = local.year + (local.month == 12)
        candidate = candidate.replace(year=year, month=month)
    return candidate


@dataclass(frozen=True, slots=True)
class _Made:
    """A lot a recycler or processor made: its id and what it holds."""

    id: str
    spec: LotSpec


class LotFlows:
    """Everything that happens to lots, from a recycler's outputs to a maker's new pack."""

    def __init__(
        self,
        config: SimConfig,
        emitter: Emitter,
        truth: TruthBuilder,
        schedule: Schedule,
        *,
        cast: Mapping[str, Sequence[SimActor]],
        end: datetime,
    ) -> None:
        self.config = config
        self.emitter = emitter
        self.truth = truth
        self.schedule = schedule
        self.makers = cast["makers"]
        self.recyclers = cast["recyclers"]
        self.processors = cast["processors"]
        self.end = end
        self.tolerance = emitter.tracer.tolerance
        self.rng = random.Random(f"{config.seed}:lots")
        self.outbound: dict[str, list[_Made]] = {r.id: [] for r in self.recyclers}
        self.yard: dict[str, list[_Made]] = {p.id: [] for p in self.processors}
        self.stock: dict[str, MakerStock] = {m.id: MakerStock() for m in self.makers}

    def start(self, first: datetime) -> None:
        """Schedule the first monthly shipment and smelt."""
        self.schedule(_month_day(first, _SHIP_DAY), "ship lots", (), self.ship)
        self.schedule(_month_day(first, _SMELT_DAY), "smelt", (), self.smelt)

    def _lots(self, specs: Sequence[LotSpec]) -> list[_Made]:
        return [_Made(new_lot_id(self.rng), spec) for spec in specs]

    # --- at the recycler ---

    def ratios(self, anomaly: AnomalyKind | None) -> dict[Element, float]:
        """Recovery per element for one pack: the config's, or an injected anomaly's."""
        ratios = dict(self.config.recovery)
        for element in PRODUCTS:
            if anomaly is AnomalyKind.LOW_RECOVERY:
                ratios[element] = ratios.get(element, 0.0) * LOW_RECOVERY_FACTOR
            elif anomaly is AnomalyKind.OVER_RECOVERY:
                ratios[element] = OVER_RECOVERY_RATIO
        return ratios

    def dismantle(
        self,
        recycler: SimActor,
        when: datetime,
        item: str,
        composition: Composition,
        anomaly: AnomalyKind | None,
    ) -> tuple[str, _Made]:
        """Dismantle a pack; return the event id and the black-mass lot to refine."""
        loss = DISMANTLE_LOSS_FACTOR if anomaly is AnomalyKind.DISMANTLE_LOSS else 1.0
        made = self._lots(dismantle_outputs(composition, self.ratios(None), loss_factor=loss))
        data = DismantleData(
            item=item,
            mass_kg=composition.mass_kg,
            outputs=[OutputLot(lot=m.spec.to_lot(m.id)) for m in made],
        )
        eid = self.emitter.emit(recycler, when, data)
        inputs = _elements(composition.content_kg)
        self.truth.elements(recycler.id, _year(when), input_kg=inputs, packs=1)
        self._stock(recycler, when, made)
        if anomaly is AnomalyKind.DISMANTLE_LOSS:
            loss_share = 1 - total_kg([m.spec for m in made]) / composition.mass_kg
            self._anomaly(anomaly, when, (item, made[0].id), recycler, eid, loss_share=loss_share)
        return eid, made[0]

    def refine(
        self,
        recycler: SimActor,
        when: datetime,
        black_mass: _Made,
        *,
        pack: str,
        pack_content: Mapping[Element, float],
        anomaly: AnomalyKind | None,
    ) -> str:
        """Recycle a black-mass lot into refined products, declaring the reagents."""
        made = self._lots(product_lots(black_mass.spec.content_kg, self.ratios(anomaly)))
        data = RecycleData(
            inputs=[MassIn(item=black_mass.id, mass_kg=black_mass.spec.mass_kg)],
            outputs=[OutputLot(lot=m.spec.to_lot(m.id)) for m in made],
            reagents_kg=reagents_kg([m.spec for m in made]),
        )
        eid = self.emitter.emit(recycler, when, data)
        self._stock(recycler, when, made)
        self._recovery_anomaly(anomaly, when, pack, recycler, eid, pack_content, made)
        return eid

    def _stock(self, recycler: SimActor, when: datetime, made: list[_Made]) -> None:
        """Outputs wait for the monthly shipment; black mass is refined on site instead."""
        year = _year(when)
        for m in made:
            material = m.spec.material
            if material is Material.BLACK_MASS:
                continue
            self.outbound[recycler.id].append(m)
            if material in _SCRAP:
                self.truth.scrap_flow(
                    material.value, year, produced_lots=1, produced_kg=m.spec.mass_kg
                )
            self.truth.elements(recycler.id, year, recovered_kg=_elements(m.spec.content_kg))

    def _recovery_anomaly(
        self,
        anomaly: AnomalyKind | None,
        when: datetime,
        pack: str,
        recycler: SimActor,
        eid: str,
        content: Mapping[Element, float],
        made: list[_Made],
    ) -> None:
        if anomaly not in (AnomalyKind.LOW_RECOVERY, AnomalyKind.OVER_RECOVERY):
            return
        detail: dict[str, float] = {}
        for m in made:
            for element, kg in m.spec.content_kg.items():
                if element in PRODUCTS and content.get(element, 0.0) > 0:
                    detail[f"recovery_{element.value}"] = kg / content[element]
        self._anomaly(anomaly, when, (pack, *(m.id for m in made)), recycler, eid, **detail)

    def _anomaly(
        self,
        kind: AnomalyKind,
        when: datetime,
        items: tuple[str, ...],
        actor: SimActor,
        eid: str,
        **detail: float,
    ) -> None:
        anomaly = Anomaly(kind.value, items, (actor.id,), (eid,), dict(sorted(detail.items())))
        self.truth.anomaly(when.isoformat(), anomaly)

    # --- monthly shipments and smelting ---

    def ship(self, when: datetime) -> None:
        """Each recycler sends its scrap to a processor and its refined lots to a maker."""
        for number, recycler in enumerate(self.recyclers):
            ready: list[_Made] = []
            waiting: list[_Made] = []
            for m in self.outbound[recycler.id]:
                (waiting if self.emitter.is_held(m.id) else ready).append(m)
            self.outbound[recycler.id] = waiting
            scrap = [m for m in ready if m.spec.material in _SCRAP]
            refined = [m for m in ready if m.spec.material not in _SCRAP]
            processor = self.processors[number % len(self.processors)]
            maker = self.makers[(number + when.month) % len(self.makers)]
            self._send(recycler, processor, when, scrap, self._delivered)
            self._send(recycler, maker, when, refined, self._received)
        after = _month_day(when, _SHIP_DAY)
        if after <= self.end:
            self.schedule(after, "ship lots", (), self.ship)

    def _send(
        self,
        sender: SimActor,
        receiver: SimActor,
        when: datetime,
        lots: list[_Made],
        on_accept: Callable[[SimActor, list[_Made], datetime], None],
    ) -> None:
        for first in range(0, len(lots), _LOTS_PER_EVENT):
            chunk = lots[first : first + _LOTS_PER_EVENT]
            ids = [m.id for m in chunk]
            offer = HandoverData(items_=ids, to=receiver.id, transfer_ownership=True)
            hid = self.emitter.emit(sender, when, offer)

            def accept(at: datetime, hid: str = hid, chunk: list[_Made] = chunk) -> None:
                answer = AcceptData(handover=hid, handover_items=[m.id for m in chunk])
                self.emitter.emit(receiver, at, answer)
                on_accept(receiver, chunk, at)

            label = f"{receiver.role.value} accepts lots"
            self.schedule(when + _ACCEPT_AFTER, label, tuple(ids), accept)

    def _delivered(self, processor: SimActor, lots: list[_Made], when: datetime) -> None:
        self.yard[processor.id].extend(lots)
        for m in lots:
            self.truth.scrap_flow(m.spec.material.value, _year(when), delivered_kg=m.spec.mass_kg)

    def _received(self, maker: SimActor, lots: list[_Made], when: datetime) -> None:
        for m in lots:
            ((element, kg),) = m.spec.content_kg.items()
            self.stock[maker.id].add(HeldLot(m.id, element, kg / m.spec.mass_kg, m.spec.mass_kg))

    def smelt(self, when: datetime) -> None:
        """Each scrap processor melts what it holds, one lot_smelt per material."""
        year = _year(when)
        for processor in self.processors:
            by_material: dict[Material, list[_Made]] = {}
            waiting: list[_Made] = []
            for m in self.yard[processor.id]:
                if self.emitter.is_held(m.id):
                    waiting.append(m)
                else:
                    by_material.setdefault(m.spec.material, []).append(m)
            self.yard[processor.id] = waiting
            for material, lots in by_material.items():
                for first in range(0, len(lots), _LOTS_PER_EVENT):
                    chunk = lots[first : first + _LOTS_PER_EVENT]
                    out = smelt_output(material, [m.spec for m in chunk])
                    (made,) = self._lots([out])
                    data = LotSmeltData(
                        inputs=[MassIn(item=m.id, mass_kg=m.spec.mass_kg) for m in chunk],
                        outputs=[OutputLot(lot=out.to_lot(made.id))],
                    )
                    self.emitter.emit(processor, when, data)
                    smelted = total_kg([m.spec for m in chunk])
                    self.truth.scrap_flow(
                        material.value, year, smelted_kg=smelted, output_kg=out.mass_kg
                    )
        after = _month_day(when, _SMELT_DAY)
        if after <= self.end:
            self.schedule(after, "smelt", (), self.smelt)

    # --- recycled content ---

    def materials(
        self, maker: SimActor, when: datetime, code: str, pack: Composition
    ) -> list[MassIn]:
        """Recycled lots for a new pack (maybe none), recorded in the ground truth."""
        c = self.config
        stock, emitter = self.stock[maker.id], self.emitter
        if not c.recycled_content or not stock.any_free(emitter.is_held):
            return []
        if self.rng.random() >= c.recycled_pack_share:
            return []
        share = self.rng.uniform(*c.recycled_element_share)
        taken, brought, emptied = take_recycled(
            pack.content_kg, stock, share, tolerance=self.tolerance, held_back=emitter.is_held
        )
        emitter.status.update(dict.fromkeys(emptied, "consumed"))
        if not taken:
            return []
        pack_kg = {e.value: pack.mass_of(e) for e in PRODUCTS if pack.mass_of(e) > 0}
        recycled = {e.value: kg for e, kg in brought.items()}
        self.truth.recycled_content[code] = RecycledContent(
            maker=maker.id,
            year=_year(when),
            lots=dict(taken),
            recycled_kg=recycled,
            pack_kg=pack_kg,
            share={e: recycled.get(e, 0.0) / kg for e, kg in pack_kg.items()},
        )
        return [MassIn(item=lot, mass_kg=kg) for lot, kg in taken.items()]
