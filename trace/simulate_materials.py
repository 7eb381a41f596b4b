"""Material flows of the fleet simulator: what dismantling, refining and smelting yield, in kg.

A pack's element masses come from :func:`schemas.composition.estimate_composition`. A
recycler dismantles it (GB/T 33598) into a black-mass lot (cathode and anode powder: every
element but Cu and Al), Cu and Al foil-scrap lots and a steel-scrap lot (casing and
structure), then refines the black mass into products.

Refined products are the pure compounds of :class:`schemas.lots.Material` (Li2CO3,
NiSO4·6H2O, CoSO4·7H2O, MnSO4·H2O), so a lot weighs its element content divided by the
element's mass fraction: the sulphate hydrates weigh several times their metal. The acid,
carbonate and water that join the metal are declared as the step's reagents
(``RecycleData.reagents_kg``), with an excess (:data:`REAGENT_EXCESS`) for what leaves in
the process liquor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from schemas.composition import CATHODE_FORMULAS, Composition, Element, mass_fractions
from schemas.lots import Lot, Material

__all__ = [
    "DISMANTLE_LOSS_FACTOR",
    "LOW_RECOVERY_FACTOR",
    "OVER_RECOVERY_RATIO",
    "PRODUCTS",
    "REAGENT_EXCESS",
    "SCRAP_METALS",
    "HeldLot",
    "LotSpec",
    "black_mass",
    "dismantle_outputs",
    "product_lots",
    "reagents_kg",
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
REAGENT_EXCESS: Final = 1.5
"""Reagents used per kg that ends up in the products (the rest leaves in the liquor)."""
_GRAM: Final = 1000.0


def _floor_kg(kg: float) -> float:
    return math.floor(kg * _GRAM) / _GRAM


def _ceil_kg(kg: float) -> float:
    return math.ceil(kg * _GRAM - 1e-6) / _GRAM


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


def reagents_kg(products: Sequence[LotSpec]) -> float:
    """Process chemicals a refining step declares: what joins the metal, with the excess."""
    joined = sum(lot.mass_kg - sum(lot.content_kg.values()) for lot in products)
    return _ceil_kg(joined * REAGENT_EXCESS)


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
    """A refined lot a battery maker holds, and how much of it is left to build with.

    ``remaining_kg`` follows the lot's recorded mass exactly as the custody rules reduce it;
    ``consumed`` is set when a take leaves no more than the rules' tolerance of it.
    """

    id: str
    element: Element
    fraction: float  # kg of the element per kg of lot
    remaining_kg: float
    consumed: bool = False


def take_recycled(
    pack: Mapping[Element, float], held: Sequence[HeldLot], share: float, *, tolerance: float
) -> tuple[dict[str, float], dict[Element, float]]:
    """Take ``share`` of each of the pack's Li, Ni, Co and Mn from ``held`` lots, oldest first.

    Returns the kg taken from each lot and the element kg those bring; the lots'
    ``remaining_kg`` go down, and a lot left with at most ``tolerance`` of what it held is
    ``consumed`` (as the rules decide). An element the maker holds no lot of is not taken.
    """
    taken: dict[str, float] = {}
    brought: dict[Element, float] = {}
    for element in PRODUCTS:
        need = pack.get(element, 0.0) * share
        for lot in held:
            if need <= 0:
                break
            if lot.element is not element or lot.consumed:
                continue
            kg = _floor_kg(min(lot.remaining_kg, need / lot.fraction))
            if kg <= 0:
                continue
            left = max(lot.remaining_kg - kg, 0.0)
            lot.consumed = left <= lot.remaining_kg * tolerance
            lot.remaining_kg = left
            taken[lot.id] = kg
            brought[element] = brought.get(element, 0.0) + kg * lot.fraction
            need -= kg * lot.fraction
    return taken, brought
