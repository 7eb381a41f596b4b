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
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    "MakerStock",
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


class MakerStock:
    """The refined lots a battery maker holds, per element in the order they arrived.

    A maker takes oldest first, so emptied lots leave from the front of each queue; one
    emptied behind a lot still held back stays, marked ``consumed``, until the lots before
    it are gone. Each take then costs the lots it touches, not the whole stock, which
    grows with the fleet.
    """

    __slots__ = ("_least_fraction", "_lots")

    def __init__(self) -> None:
        self._lots: dict[Element, deque[HeldLot]] = {}
        self._least_fraction: dict[Element, float] = {}

    def add(self, lot: HeldLot) -> None:
        """A lot the maker has accepted."""
        self._lots.setdefault(lot.element, deque()).append(lot)
        least = self._least_fraction.get(lot.element, math.inf)
        self._least_fraction[lot.element] = min(least, lot.fraction)

    def lots(self, element: Element) -> Iterable[HeldLot]:
        """The lots of ``element`` not yet consumed, oldest first."""
        return (lot for lot in self._lots.get(element, ()) if not lot.consumed)

    def any_free(self, held_back: Callable[[str], bool]) -> bool:
        """Whether some lot is left that is not ``held_back`` (its events not reported yet)."""
        return any(not held_back(lot.id) for e in self._lots for lot in self.lots(e))

    def least_fraction(self, element: Element) -> float:
        """No lot of ``element`` the maker holds carries less of it per kg than this."""
        return self._least_fraction.get(element, math.inf)

    def drop_consumed(self) -> None:
        """Forget the emptied lots at the front of each queue."""
        for queue in self._lots.values():
            while queue and queue[0].consumed:
                queue.popleft()


def take_recycled(
    pack: Mapping[Element, float],
    stock: MakerStock,
    share: float,
    *,
    tolerance: float,
    held_back: Callable[[str], bool] = lambda lot_id: False,
) -> tuple[dict[str, float], dict[Element, float], list[str]]:
    """Take ``share`` of each of the pack's Li, Ni, Co and Mn from ``stock``, oldest first.

    Lots ``held_back`` (their events not reported yet) are passed over. Returns the kg taken
    from each lot, the element kg those bring and the lots it emptied: a lot left with at
    most ``tolerance`` of what it held is ``consumed`` (as the rules decide), and every
    lot's ``remaining_kg`` follows what was taken. An element the maker holds no lot of
    is not taken.
    """
    taken: dict[str, float] = {}
    brought: dict[Element, float] = {}
    emptied: list[str] = []
    for element in PRODUCTS:
        need = pack.get(element, 0.0) * share
        least = stock.least_fraction(element)
        for lot in stock.lots(element):
            # A lot gives at most need / its fraction, rounded down to the gram: when even
            # the leanest lot would give nothing, so would every lot after this one.
            if need <= 0 or _floor_kg(need / least) <= 0:
                break
            if held_back(lot.id):
                continue
            kg = _floor_kg(min(lot.remaining_kg, need / lot.fraction))
            if kg <= 0:
                continue
            left = max(lot.remaining_kg - kg, 0.0)
            lot.consumed = left <= lot.remaining_kg * tolerance
            lot.remaining_kg = left
            taken[lot.id] = kg
            if lot.consumed:
                emptied.append(lot.id)
            brought[element] = brought.get(element, 0.0) + kg * lot.fraction
            need -= kg * lot.fraction
    stock.drop_consumed()
    return taken, brought, emptied
