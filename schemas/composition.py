"""Pack composition: the mass in kg of each tracked element in a battery, given or estimated.

The estimates follow domain.md §5.2 and cite their figures in :attr:`Composition.basis`:

* pack mass per kWh and cathode mass fraction from Argonne's BatPaC 5.2 (100 kWh packs), as
  tabulated by pmbusch/EoL-LIB-NorthAmerica ``Scripts/Prepare Data/4-CathodeWeight.R``;
* element fractions of the cathode from its formula and the IUPAC standard atomic weights
  (:data:`ATOMIC_WEIGHTS`), which reproduces domain.md's derived percentages;
* copper, aluminium and graphite per kWh from the "average 2020" 60 kWh battery (T&E data
  via Visual Capitalist): Cu 20 kg, Al 35 kg, graphite 52 kg in the cells.

Only cathode elements, copper, aluminium and graphite are estimated; electrolyte, binder,
separator, casing and steel are not elements suyuan tracks here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.errors import (
    InvalidComposition,
    InvalidMass,
    InvalidQuantity,
    NoCompositionData,
    UnknownChemistry,
)

__all__ = [
    "ATOMIC_WEIGHTS",
    "CATHODE_FORMULAS",
    "Chemistry",
    "Composition",
    "Element",
    "check_quantity",
    "estimate_composition",
    "load_composition",
    "mass_fractions",
    "parse_chemistry",
]

# IUPAC/CIAAW standard atomic weights 2021, abridged to five significant figures (conventional
# values for H, Li, C, O and S): Prohaska et al., Pure Appl. Chem. 94 (2022) 573-600;
# https://www.ciaaw.org/atomic-weights.htm
ATOMIC_WEIGHTS: Final[Mapping[str, float]] = {
    "H": 1.008,
    "Li": 6.94,
    "C": 12.011,
    "O": 15.999,
    "Al": 26.982,
    "P": 30.974,
    "S": 32.06,
    "Mn": 54.938,
    "Fe": 55.845,
    "Co": 58.933,
    "Ni": 58.693,
    "Cu": 63.546,
    "Pb": 207.2,
}


class Element(StrEnum):
    """The constituents suyuan tracks by mass: chemical elements, plus graphite (anode carbon)."""

    LI = "Li"
    NI = "Ni"
    CO = "Co"
    MN = "Mn"
    CU = "Cu"
    AL = "Al"
    FE = "Fe"
    P = "P"
    GRAPHITE = "graphite"
    PB = "Pb"


_ELEMENT_SYMBOLS: Final = frozenset(element.value for element in Element)


class Chemistry(StrEnum):
    """Battery chemistries, named by cathode (NCM by Ni:Co:Mn ratio; LTO by its anode)."""

    LFP = "LFP"  # LiFePO4
    NCM111 = "NCM111"
    NCM523 = "NCM523"
    NCM622 = "NCM622"
    NCM811 = "NCM811"
    NCA = "NCA"
    LMO = "LMO"  # LiMn2O4 cathode, graphite anode
    LTO = "LTO"  # Li4Ti5O12 anode; BatPaC pairs it with an LMO cathode
    LEAD_ACID = "lead-acid"


# Names accepted besides the enum values (case is ignored): NMC is the same material as NCM
# with the ratio written Ni:Mn:Co.
_ALIASES: Final[Mapping[str, Chemistry]] = {
    "NMC111": Chemistry.NCM111,
    "NMC532": Chemistry.NCM523,
    "NMC622": Chemistry.NCM622,
    "NMC811": Chemistry.NCM811,
    "LIFEPO4": Chemistry.LFP,
    "PBA": Chemistry.LEAD_ACID,
}

# Cathode formulas (atoms per formula unit). LiNi0.8Co0.15Al0.05O2 is the usual NCA composition;
# domain.md does not give it.
CATHODE_FORMULAS: Final[Mapping[Chemistry, Mapping[str, float]]] = {
    Chemistry.LFP: {"Li": 1, "Fe": 1, "P": 1, "O": 4},
    Chemistry.NCM111: {"Li": 1, "Ni": 1 / 3, "Co": 1 / 3, "Mn": 1 / 3, "O": 2},
    Chemistry.NCM523: {"Li": 1, "Ni": 0.5, "Co": 0.2, "Mn": 0.3, "O": 2},
    Chemistry.NCM622: {"Li": 1, "Ni": 0.6, "Co": 0.2, "Mn": 0.2, "O": 2},
    Chemistry.NCM811: {"Li": 1, "Ni": 0.8, "Co": 0.1, "Mn": 0.1, "O": 2},
    Chemistry.NCA: {"Li": 1, "Ni": 0.8, "Co": 0.15, "Al": 0.05, "O": 2},
    Chemistry.LMO: {"Li": 1, "Mn": 2, "O": 4},
    Chemistry.LTO: {"Li": 1, "Mn": 2, "O": 4},
}


@dataclass(frozen=True, slots=True)
class _PackFigures:
    kg_per_kwh: float
    cathode_fraction: float
    source: str
    graphite_anode: bool = True


_BATPAC = "BatPaC 5.2 100 kWh pack"
# BatPaC 5.2 (domain.md §5.2): pack mass for 100 kWh and cathode share of pack mass.
_PACKS: Final[Mapping[Chemistry, _PackFigures]] = {
    Chemistry.LFP: _PackFigures(6.66, 0.30, f"{_BATPAC} LFP: 666 kg, cathode 30 %"),
    Chemistry.NCM111: _PackFigures(5.51, 0.30, f"{_BATPAC} NMC111: 551 kg, cathode 30 %"),
    # No BatPaC figure for NCM523: the mean of NCM622 and NCM111 (derived, not published).
    Chemistry.NCM523: _PackFigures(
        5.37, 0.29, f"{_BATPAC} mean of NMC622 and NMC111 (interpolated): 537 kg, cathode 29 %"
    ),
    Chemistry.NCM622: _PackFigures(5.23, 0.28, f"{_BATPAC} NMC622: 523 kg, cathode 28 %"),
    Chemistry.NCM811: _PackFigures(4.99, 0.26, f"{_BATPAC} NMC811: 499 kg, cathode 26 %"),
    Chemistry.NCA: _PackFigures(5.11, 0.27, f"{_BATPAC} NCA: 511 kg, cathode 27 %"),
    Chemistry.LTO: _PackFigures(
        10.73, 0.32, f"{_BATPAC} LMO/LTO: 1073 kg, cathode 32 %", graphite_anode=False
    ),
}

# "Average 2020" 60 kWh EV battery, cell minerals (T&E via Visual Capitalist, domain.md §5.2).
_AVERAGE_KWH: Final = 60.0
_CELL_MINERALS_KG: Final[Mapping[Element, float]] = {
    Element.CU: 20.0,
    Element.AL: 35.0,
    Element.GRAPHITE: 52.0,
}
_CELL_MINERALS_SOURCE: Final = (
    "Cu, Al, graphite per kWh from the average 2020 60 kWh battery (T&E via Visual Capitalist)"
)
_DECIMALS: Final = 3  # estimates are reported to the gram


def mass_fractions(formula: Mapping[str, float]) -> dict[str, float]:
    """Mass fraction of each element in a formula, from :data:`ATOMIC_WEIGHTS`.

    Examples
    --------
    >>> round(mass_fractions({"Li": 2, "C": 1, "O": 3})["Li"], 4)
    0.1879
    >>> round(mass_fractions(CATHODE_FORMULAS[Chemistry.LFP])["Fe"], 4)
    0.354
    """
    total = sum(ATOMIC_WEIGHTS[symbol] * count for symbol, count in formula.items())
    return {symbol: ATOMIC_WEIGHTS[symbol] * count / total for symbol, count in formula.items()}


def parse_chemistry(name: str | Chemistry) -> Chemistry:
    """Read a chemistry name (any case; NMC spellings accepted for NCM).

    Raises
    ------
    UnknownChemistry
        The name is not a chemistry suyuan knows; the message lists those it does.

    Examples
    --------
    >>> parse_chemistry("nmc532")
    <Chemistry.NCM523: 'NCM523'>
    >>> parse_chemistry("NCM955")
    Traceback (most recent call last):
    ...
    schemas.errors.UnknownChemistry: unknown chemistry 'NCM955'; known: LFP, NCM111, NCM523, NCM622, NCM811, NCA, LMO, LTO, lead-acid
    """
    if isinstance(name, Chemistry):
        return name
    if not isinstance(name, str):
        raise UnknownChemistry(
            f"a chemistry is named by a string, not {type(name).__name__}", name=repr(name)
        )
    key = name.strip().upper()
    for chemistry in Chemistry:
        if chemistry.value.upper() == key:
            return chemistry
    if key in _ALIASES:
        return _ALIASES[key]
    known = ", ".join(c.value for c in Chemistry)
    raise UnknownChemistry(f"unknown chemistry {name!r}; known: {known}", name=name)


def check_quantity(value: object, *, field: str, positive: bool = True, mass: bool = True) -> float:
    """Return ``value`` as a float if it is a finite number (positive, or at least non-negative).

    Strings are refused even when they hold a number, so a unit written into the value
    ("12 t") cannot slip through as kilograms.

    Raises
    ------
    InvalidMass
        When ``mass`` is true (the default); otherwise :class:`InvalidQuantity`. The
        message starts with ``field``.

    Examples
    --------
    >>> check_quantity(12, field="mass_kg")
    12.0
    >>> check_quantity("12 t", field="mass_kg")
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidMass: mass_kg: must be a number (kilograms), got str '12 t'
    """
    error = InvalidMass if mass else InvalidQuantity
    unit = " (kilograms)" if mass else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"must be a number{unit}, got {type(value).__name__} {value!r}", field=field)
    if not math.isfinite(value):
        raise error(f"must be finite, got {value!r}", field=field)
    if positive and value <= 0:
        raise error(f"must be positive, got {value!r}", field=field)
    if value < 0:
        raise error(f"must not be negative, got {value!r}", field=field)
    return float(value)


class Composition(BaseModel):
    """What a pack (or module, or cell) is made of, per element in kg.

    ``estimated`` says whether the figures were measured or declared (``False``) or estimated
    from published averages (``True``); ``basis`` names the source or assumption either way.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chemistry: Chemistry
    energy_kwh: float
    mass_kg: float
    content_kg: dict[Element, float]
    estimated: bool
    basis: str = Field(min_length=1)

    @field_validator("chemistry", mode="before")
    @classmethod
    def _chemistry(cls, value: Any) -> Chemistry:
        return parse_chemistry(value)

    @field_validator("energy_kwh", mode="before")
    @classmethod
    def _energy(cls, value: Any) -> float:
        return check_quantity(value, field="energy_kwh", mass=False)

    @field_validator("mass_kg", mode="before")
    @classmethod
    def _mass(cls, value: Any) -> float:
        return check_quantity(value, field="mass_kg")

    @field_validator("content_kg", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for element, kg in value.items():
                check_quantity(kg, field=f"content_kg[{element}]", positive=False)
        return value

    @model_validator(mode="after")
    def _parts_within_whole(self) -> Composition:
        total = sum(self.content_kg.values())
        if total > self.mass_kg:
            raise InvalidMass(
                f"elements weigh {total:g} kg in all, more than the pack's {self.mass_kg:g} kg",
                field="content_kg",
            )
        return self

    def mass_of(self, element: Element) -> float:
        """The mass of ``element`` in kg (0.0 when not present)."""
        return self.content_kg.get(element, 0.0)


def load_composition(data: Mapping[str, Any]) -> Composition:
    """Build a :class:`Composition` from outside data.

    Raises
    ------
    InvalidComposition
        Naming every failing field (negative or non-finite masses, elements heavier than
        the pack, unknown chemistry).

    Examples
    --------
    >>> load_composition({"chemistry": "LFP", "energy_kwh": 50, "mass_kg": 300,
    ...                   "content_kg": {"Li": 4.1}, "estimated": False,
    ...                   "basis": "maker's declaration"}).mass_of(Element.LI)
    4.1
    """
    try:
        return Composition.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidComposition.from_validation_error(exc) from exc


def estimate_composition(
    chemistry: Chemistry | str, energy_kwh: float, mass_kg: float | None = None
) -> Composition:
    """Estimate a pack's element masses from its chemistry and rated energy.

    The cathode is ``cathode share x pack mass`` (BatPaC 5.2) split by its formula; Cu, Al
    and graphite scale with energy (average 2020 battery), except that LTO packs have no
    graphite anode and get no Cu, Al or graphite estimate.

    Parameters
    ----------
    chemistry : Chemistry or str
    energy_kwh : float
        Rated energy; positive and finite.
    mass_kg : float, optional
        The pack's mass; when omitted it is estimated from BatPaC's mass per kWh.

    Returns
    -------
    Composition
        With ``estimated=True`` and a ``basis`` naming every figure used.

    Raises
    ------
    UnknownChemistry
        ``chemistry`` is not a name suyuan knows.
    NoCompositionData
        No published figures cover this chemistry (LMO with graphite, lead-acid).
    InvalidQuantity, InvalidMass
        ``energy_kwh`` or ``mass_kg`` is not positive and finite, or the estimated elements
        would weigh more than ``mass_kg``.

    Examples
    --------
    >>> pack = estimate_composition("LFP", 100)
    >>> pack.mass_kg, pack.mass_of(Element.LI), pack.mass_of(Element.FE), pack.estimated
    (666.0, 8.79, 70.729, True)
    """
    chemistry = parse_chemistry(chemistry)
    energy_kwh = check_quantity(energy_kwh, field="energy_kwh", mass=False)
    figures = _PACKS.get(chemistry)
    if figures is None:
        raise NoCompositionData(
            f"no published composition figures for {chemistry.value}; give a composition"
        )
    basis = [figures.source]
    if mass_kg is None:
        mass_kg = figures.kg_per_kwh * energy_kwh
    else:
        mass_kg = check_quantity(mass_kg, field="mass_kg")
        basis.append("pack mass given")
    cathode_kg = figures.cathode_fraction * mass_kg
    content: dict[Element, float] = {}
    for symbol, fraction in mass_fractions(CATHODE_FORMULAS[chemistry]).items():
        if symbol in _ELEMENT_SYMBOLS:
            content[Element(symbol)] = cathode_kg * fraction
    basis.append("cathode split by formula with IUPAC 2021 atomic weights")
    if figures.graphite_anode:
        for element, kg in _CELL_MINERALS_KG.items():
            content[element] = content.get(element, 0.0) + kg / _AVERAGE_KWH * energy_kwh
        basis.append(_CELL_MINERALS_SOURCE)
    else:
        basis.append("no Cu, Al or graphite estimate: the average battery has a graphite anode")
    rounded = {element: round(kg, _DECIMALS) for element, kg in content.items()}
    total = sum(rounded.values())
    if total > mass_kg:
        raise InvalidMass(
            f"{mass_kg:g} kg is lighter than the estimated elements ({total:g} kg) "
            f"of a {energy_kwh:g} kWh {chemistry.value} pack",
            field="mass_kg",
        )
    return Composition(
        chemistry=chemistry,
        energy_kwh=energy_kwh,
        mass_kg=round(mass_kg, _DECIMALS),
        content_kg=rounded,
        estimated=True,
        basis="; ".join(basis),
    )
