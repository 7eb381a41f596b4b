"""Material flows of the fleet simulator: what dismantling, recycling and smelting yield, in kg.

A pack's element masses come from :func:`schemas.composition.estimate_composition`. A
recycler takes a pack apart one of two ways (:class:`Route`):

* **dismantle** (GB/T 33598): the pack becomes a black-mass lot (cathode and anode powder:
  every element but Cu and Al), Cu and Al foil-scrap lots and a steel-scrap lot (casing and
  structure); the black mass is then recycled into refined products;
* **direct**: the whole pack is shredded and leached in one recycling step into refined
  products and Cu and Al scrap.

Refined products are the pure compounds of :class:`schemas.lots.Material` (Li2CO3,
NiSO4·6H2O, CoSO4·7H2O, MnSO4·H2O), so a lot weighs its element content divided by the
element's mass fraction. The sulphate hydrates weigh several times their metal — reagents
and water join in the leaching — and the custody rules bound a step's outputs by its inputs
without counting reagents, so NCM black mass cannot be refined in a step of its own; such
packs take the direct route (:func:`choose_route`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from schemas.composition import CATHODE_FORMULAS, Composition, Element, mass_fractions
from schemas.lots import Lot, Material

__all__ = [
    "LOW_RECOVERY_FACTOR",
    "OVER_RECOVERY_RATIO",
    "PRODUCTS",
    "SCRAP_METALS",
    "HeldLot",
    "LotSpec",
    "Route",
    "black_mass",
    "choose_route",
    "dismantle_outputs",
    "direct_outputs",
    "product_lots",
    "smelt_output",
    "take_recycled",
    "total_kg",
]

PRODUCTS: Final[Mapping[Element, Material]] = {
    Element.LI: Material.LITHIUM_CARBONATE,
    Element.NI: Material.NICKEL_SULPHATE,
    Element.CO: Material.COBALT_SULPHATE,
    Element.MN: Material.MANGANESE_SULPHATE,
}
"""The refined product each recovered element leaves the recycler as."""

SCRAP_METALS: Final[Mapping[Element, Material]] = {
    Element.CU: Material.COPPER_SCRAP,
    Element.AL: Material.ALUMINIUM_SCRAP,
}
"""Current-collector foils leave as scrap lots for a scrap processor."""

STEEL_SHARE: Final = 0.18
"""Casing and structure recovered as steel scrap, as a share of the pack's mass."""
SCRAP_PURITY: Final = 0.98
"""Metal share of a Cu or Al scrap lot (the rest is coating and dirt)."""
SMELT_YIELD: Final = 0.97
"""Share of a scrap lot's mass (and metal) a scrap processor's melt keeps."""
LOW_RECOVERY_FACTOR: Final = 0.45
"""An implausible recycling step recovers this share of what the norms require."""
OVER_RECOVERY_RATIO: Final = 1.003
"""An implausible recycling step recovers 100.3 % of an element: inside the rules'
0.5 % tolerance, impossible in fact."""
DISMANTLE_LOSS_FACTOR: Final = 0.5
"""An implausible dismantling reports half the black mass it should."""
_GRAM: Final = 1000.0


def _floor_kg(kg: float) -> float:
    return math.floor(kg * _GRAM) / _GRAM


def _ceil_kg(kg: float) -> float:
    return math.ceil(kg * _GRAM - 1e-6) / _GRAM


class Route(StrEnum):
    """How a recycler takes a pack apart."""

    DISMANTLE = "dismantle"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class LotSpec:
    """A lot to be created: material, mass and element content in kg."""

    material: Material
    mass_kg: float
    content_kg: Mapping[Element, float]

    def to_lot(self, lot_id: str) -> Lot:
        """The lot record an event carries."""
        return Lot(
            id=lot_id,
            material=self.material,
            mass_kg=self.mass_kg,
            content_kg=dict(self.content_kg),
        )


def total_kg(lots: Sequence[LotSpec]) -> float:
    """The mass of some lots together."""
    return sum(lot.mass_kg for lot in lots)


def product_lots(
    content: Mapping[Element, float], ratios: Mapping[Element, float]
) -> list[LotSpec]:
    """Refined-product lots holding ``ratios[e]`` of each element ``e`` of ``content``."""
    lots = []
    for element, material in PRODUCTS.items():
        recovered = _floor_kg(content.get(element, 0.0) * ratios.get(element, 0.0))
        if recovered <= 0:
            continue
        mass = _ceil_kg(recovered / material.nominal_fractions[element])
        lots.append(LotSpec(material, mass, {element: recovered}))
    return lots


def _scrap_lots(content: Mapping[Element, float], ratios: Mapping[Element, float]) -> list[LotSpec]:
    lots = []
    for element, material in SCRAP_METALS.items():
        recovered = _floor_kg(content.get(element, 0.0) * ratios.get(element, 0.0))
        if recovered > 0:
            lots.append(LotSpec(material, _ceil_kg(recovered / SCRAP_PURITY), {element: recovered}))
    return lots


def black_mass(composition: Composition, *, factor: float = 1.0) -> LotSpec:
    """The black mass of a pack: its cathode (by formula) and graphite, without Cu and Al.

    ``factor`` below 1 reports only that share of it (the dismantle-loss anomaly).
    """
    li_share = mass_fractions(CATHODE_FORMULAS[composition.chemistry])["Li"]
    cathode = composition.mass_of(Element.LI) / li_share
    mass = cathode + composition.mass_of(Element.GRAPHITE)
    content = {
        element: _floor_kg(kg * factor)
        for element, kg in composition.content_kg.items()
        if element not in SCRAP_METALS and kg > 0
    }
    return LotSpec(Material.BLACK_MASS, _floor_kg(mass * factor), content)


def dismantle_outputs(
    composition: Composition, ratios: Mapping[Element, float], *, loss_factor: float = 1.0
) -> list[LotSpec]:
    """Black mass, Cu and Al scrap and steel scrap from dismantling a pack."""
    steel = LotSpec(Material.STEEL_SCRAP, _floor_kg(composition.mass_kg * STEEL_SHARE), {})
    return [
        black_mass(composition, factor=loss_factor),
        *_scrap_lots(composition.content_kg, ratios),
        steel,
    ]


def direct_outputs(composition: Composition, ratios: Mapping[Element, float]) -> list[LotSpec]:
    """Refined products and Cu and Al scrap from shredding and leaching a whole pack."""
    return product_lots(composition.content_kg, ratios) + _scrap_lots(
        composition.content_kg, ratios
    )


def choose_route(composition: Composition, ratios: Mapping[Element, float]) -> Route | None:
    """The route whose outputs weigh no more than their inputs, or ``None`` if neither does.

    Dismantling is preferred; it works when the black mass outweighs its refined products
    (LFP, whose only product is lithium carbonate).
    """
    bm = black_mass(composition)
    if total_kg(product_lots(bm.content_kg, ratios)) <= bm.mass_kg:
        return Route.DISMANTLE
    if total_kg(direct_outputs(composition, ratios)) <= composition.mass_kg:
        return Route.DIRECT
    return None


def smelt_output(material: Material, inputs: Sequence[LotSpec]) -> LotSpec:
    """The recycled-metal lot a scrap processor's melt makes of ``inputs`` (one material)."""
    content: dict[Element, float] = {}
    for lot in inputs:
        for element, kg in lot.content_kg.items():
            content[element] = content.get(element, 0.0) + kg
    mass = _floor_kg(total_kg(inputs) * SMELT_YIELD)
    kept = {element: _floor_kg(kg * SMELT_YIELD) for element, kg in content.items()}
    return LotSpec(material, mass, kept)


@dataclass(slots=True)
class HeldLot:
    """A refined lot a battery maker holds, and how much of it is left to build with."""

    id: str
    element: Element
    fraction: float  # kg of the element per kg of lot
    remaining_kg: float


def take_recycled(
    pack: Mapping[Element, float], held: Sequence[HeldLot], share: float
) -> tuple[dict[str, float], dict[Element, float]]:
    """Take ``share`` of each of the pack's Li, Ni, Co and Mn from ``held`` lots, oldest first.

    Returns the kg taken from each lot and the element kg those bring; the lots'
    ``remaining_kg`` go down. An element the maker holds no lot of is simply not taken.
    """
    taken: dict[str, float] = {}
    brought: dict[Element, float] = {}
    for element in PRODUCTS:
        need = pack.get(element, 0.0) * share
        for lot in held:
            if need <= 0:
                break
            if lot.element is not element or lot.remaining_kg <= 0:
                continue
            kg = _floor_kg(min(lot.remaining_kg, need / lot.fraction))
            if kg <= 0:
                continue
            lot.remaining_kg = _floor_kg(lot.remaining_kg - kg)
            taken[lot.id] = kg
            brought[element] = brought.get(element, 0.0) + kg * lot.fraction
            need -= kg * lot.fraction
    return taken, brought
