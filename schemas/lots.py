"""Scrap-metal and material lots: identifiers, materials, grades and the lot record.

Grades follow the Chinese recycled-raw-material standards (domain.md §6.2): GB/T 39733-2024
再生钢铁原料 (recycled steel), GB/T 38471-2023 再生铜原料 (recycled copper, with GB/T 38470-2019
for brass), GB/T 38472-2023 再生铸造铝合金原料 (recycled cast aluminium, with GB/T 40382-2021 and
GB/T 40386-2021 for wrought and pure aluminium), and the versions they replaced. Their grade
tables were not read, so a grade is its standard plus the designation as printed.

Those standards carry a lot's identity on its quality certificate (质量证明书); no national
lot-identifier standard was found, so suyuan defines one::

    LOT-NFCB6HGGNV6JT
    ^^^^ ^^^^^^^^^^^^ ^
    |    |            check character
    |    12 characters of Crockford base32 (0-9, A-Z without I, L, O, U): 60 random bits
    prefix

The check character is Luhn mod 32 over the body in the same alphabet: it catches every
single mistyped character and most swaps of neighbours. Lowercase and look-alike letters
(I, L, O, U) are refused, not folded, so one lot has one spelling.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.composition import Element, check_quantity, mass_fractions
from schemas.errors import CodeIssue, GradeMismatch, InvalidLot, InvalidLotId, InvalidMass

__all__ = [
    "APPLICABLE_STANDARDS",
    "LOT_ID_LENGTH",
    "LOT_PREFIX",
    "Grade",
    "GradeStandard",
    "Lot",
    "LotId",
    "Material",
    "QualityCertificate",
    "check_grade",
    "load_lot",
    "new_lot_id",
    "parse_lot_id",
]

LOT_PREFIX: Final = "LOT-"
_LOT_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_LOT_BASE: Final = len(_LOT_ALPHABET)
_LOT_BODY_LENGTH: Final = 12
LOT_ID_LENGTH: Final = len(LOT_PREFIX) + _LOT_BODY_LENGTH + 1
# A claimed element content may exceed the pure compound's by this share (rounding in tests).
_STOICHIOMETRIC_TOLERANCE: Final = 1e-3


class Material(StrEnum):
    """What a lot holds: scrap metal, black mass, or a refined product."""

    STEEL_SCRAP = "steel_scrap"
    COPPER_SCRAP = "copper_scrap"
    ALUMINIUM_SCRAP = "aluminium_scrap"
    LEAD_SCRAP = "lead_scrap"
    LEAD = "lead"  # refined secondary lead
    BLACK_MASS = "black_mass"  # crushed electrode powder from dismantled cells
    LITHIUM_CARBONATE = "lithium_carbonate"
    LITHIUM_HYDROXIDE = "lithium_hydroxide"
    NICKEL_SULPHATE = "nickel_sulphate"
    COBALT_SULPHATE = "cobalt_sulphate"
    MANGANESE_SULPHATE = "manganese_sulphate"

    @property
    def formula(self) -> str | None:
        """The chemical formula of a refined product; ``None`` for scrap and black mass."""
        entry = _FORMULAS.get(self)
        return None if entry is None else entry[0]

    @property
    def nominal_fractions(self) -> Mapping[Element, float]:
        """Mass fraction of each tracked element in the pure product (empty if not defined).

        Examples
        --------
        >>> round(Material.LITHIUM_CARBONATE.nominal_fractions[Element.LI], 4)
        0.1879
        """
        return _NOMINAL.get(self, {})


# Refined products as battery-grade material is traded: the hydrates are an assumption of
# suyuan (domain.md names Li2CO3 and NiSO4 without water of crystallisation).
_FORMULAS: Final[Mapping[Material, tuple[str, Mapping[str, float]]]] = {
    Material.LEAD: ("Pb", {"Pb": 1}),
    Material.LITHIUM_CARBONATE: ("Li2CO3", {"Li": 2, "C": 1, "O": 3}),
    Material.LITHIUM_HYDROXIDE: ("LiOH·H2O", {"Li": 1, "O": 2, "H": 3}),
    Material.NICKEL_SULPHATE: ("NiSO4·6H2O", {"Ni": 1, "S": 1, "O": 10, "H": 12}),
    Material.COBALT_SULPHATE: ("CoSO4·7H2O", {"Co": 1, "S": 1, "O": 11, "H": 14}),
    Material.MANGANESE_SULPHATE: ("MnSO4·H2O", {"Mn": 1, "S": 1, "O": 5, "H": 2}),
}
_TRACKED: Final = frozenset(element.value for element in Element)
_NOMINAL: Final[Mapping[Material, Mapping[Element, float]]] = {
    material: {
        Element(symbol): share
        for symbol, share in mass_fractions(formula).items()
        if symbol in _TRACKED  # carbonate carbon is not graphite
    }
    for material, (_, formula) in _FORMULAS.items()
}


class GradeStandard(StrEnum):
    """Standards that grade recycled metal raw materials (domain.md §6.2)."""

    STEEL_2024 = "GB/T 39733-2024"
    STEEL_2020 = "GB/T 39733-2020"
    COPPER_2023 = "GB/T 38471-2023"
    COPPER_2019 = "GB/T 38471-2019"
    BRASS_2019 = "GB/T 38470-2019"
    CAST_ALUMINIUM_2023 = "GB/T 38472-2023"
    CAST_ALUMINIUM_2019 = "GB/T 38472-2019"
    WROUGHT_ALUMINIUM_2021 = "GB/T 40382-2021"
    PURE_ALUMINIUM_2021 = "GB/T 40386-2021"


APPLICABLE_STANDARDS: Final[Mapping[Material, frozenset[GradeStandard]]] = {
    Material.STEEL_SCRAP: frozenset({GradeStandard.STEEL_2024, GradeStandard.STEEL_2020}),
    Material.COPPER_SCRAP: frozenset(
        {GradeStandard.COPPER_2023, GradeStandard.COPPER_2019, GradeStandard.BRASS_2019}
    ),
    Material.ALUMINIUM_SCRAP: frozenset(
        {
            GradeStandard.CAST_ALUMINIUM_2023,
            GradeStandard.CAST_ALUMINIUM_2019,
            GradeStandard.WROUGHT_ALUMINIUM_2021,
            GradeStandard.PURE_ALUMINIUM_2021,
        }
    ),
}


class Grade(BaseModel):
    """A grade: the standard and the designation as printed in it (e.g. ``LRS304``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    standard: GradeStandard
    designation: str = Field(min_length=1, max_length=40, pattern=r"^\S(.*\S)?$")


def check_grade(material: Material, grade: Grade) -> None:
    """Refuse a grade whose standard does not apply to ``material``.

    Raises
    ------
    GradeMismatch
        Naming the material, the standard and the standards that would apply.

    Examples
    --------
    >>> steel = Grade(standard=GradeStandard.STEEL_2024, designation="LRS304")
    >>> check_grade(Material.STEEL_SCRAP, steel)
    >>> check_grade(Material.COPPER_SCRAP, steel)
    Traceback (most recent call last):
    ...
    schemas.errors.GradeMismatch: GB/T 39733-2024 does not grade copper scrap; use GB/T 38470-2019, GB/T 38471-2019 or GB/T 38471-2023
    """
    applicable = APPLICABLE_STANDARDS.get(material, frozenset())
    if grade.standard in applicable:
        return
    name = material.value.replace("_", " ")
    if not applicable:
        raise GradeMismatch(f"{grade.standard.value} does not grade {name}; no grade applies")
    listed = " or ".join(sorted(s.value for s in applicable))
    listed = listed.replace(" or ", ", ", len(applicable) - 2)
    raise GradeMismatch(f"{grade.standard.value} does not grade {name}; use {listed}")


def _luhn_sum(text: str, *, double_first: bool) -> int:
    total, double = 0, double_first
    for ch in reversed(text):
        value = _LOT_ALPHABET.index(ch) * (2 if double else 1)
        total += value // _LOT_BASE + value % _LOT_BASE
        double = not double
    return total


def _check_char(body: str) -> str:
    return _LOT_ALPHABET[-_luhn_sum(body, double_first=True) % _LOT_BASE]


def new_lot_id(rng: random.Random) -> str:
    """A new lot identifier drawn from ``rng`` (use ``random.SystemRandom()`` in service).

    Examples
    --------
    >>> new_lot_id(random.Random(1))
    'LOT-NFCB6HGGNV6JT'
    >>> parse_lot_id(new_lot_id(random.Random(1))).body
    'NFCB6HGGNV6J'
    """
    bits = rng.getrandbits(5 * _LOT_BODY_LENGTH)
    body = "".join(_LOT_ALPHABET[(bits >> (5 * i)) & 31] for i in range(_LOT_BODY_LENGTH))
    return LOT_PREFIX + body + _check_char(body)


@dataclass(frozen=True, slots=True)
class LotId:
    """A valid lot identifier: its text, random body and check character."""

    text: str
    body: str
    check: str

    def __str__(self) -> str:
        return self.text


def _lot_char_issue(position: int, ch: str, allowed: str = _LOT_ALPHABET) -> CodeIssue:
    if ch.isascii() and ch.islower() and ch.upper() in allowed:
        return CodeIssue(
            position, f"lowercase {ch!r}; lot ids use capital letters ({ch.upper()!r})"
        )
    if ch in "ILOU":
        return CodeIssue(
            position, f"{ch!r} is not used in lot ids (Crockford base32 leaves out I, L, O, U)"
        )
    return CodeIssue(position, f"{ch!r} is not allowed in a lot id (0-9, A-Z except I, L, O, U)")


def parse_lot_id(text: str) -> LotId:
    """Parse and verify a lot identifier.

    Raises
    ------
    InvalidLotId
        Listing every problem with its 1-based position: prefix, length, characters, and a
        check character that does not match (the id was mistyped).

    Examples
    --------
    >>> parse_lot_id("LOT-NFCB6HGGNV6JT").check
    'T'
    >>> parse_lot_id("LOT-NFCB6HGGNV6JZ")
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidLotId: invalid lot id 'LOT-NFCB6HGGNV6JZ': position 17: check character 'Z' does not match the id; it was mistyped
    """
    issues: list[CodeIssue] = []
    for position, (ch, wanted) in enumerate(zip(text, LOT_PREFIX, strict=False), start=1):
        if ch != wanted:
            if ch.upper() == wanted:
                issues.append(_lot_char_issue(position, ch, wanted))
            else:
                reason = f"expected {wanted!r}, found {ch!r}; lot ids start with {LOT_PREFIX!r}"
                issues.append(CodeIssue(position, reason))
    issues += [
        _lot_char_issue(position, ch)
        for position, ch in enumerate(text, start=1)
        if position > len(LOT_PREFIX) and ch not in _LOT_ALPHABET
    ]
    if len(text) != LOT_ID_LENGTH:
        at = min(len(text), LOT_ID_LENGTH) + 1
        reason = f"{len(text)} characters; a lot id has {LOT_ID_LENGTH}"
        issues.append(CodeIssue(at, reason))
    elif not issues and _luhn_sum(text[len(LOT_PREFIX) :], double_first=False) % _LOT_BASE:
        reason = f"check character {text[-1]!r} does not match the id; it was mistyped"
        issues.append(CodeIssue(LOT_ID_LENGTH, reason))
    if issues:
        raise InvalidLotId(sorted(issues, key=lambda issue: issue.position), text=text)
    return LotId(text=text, body=text[len(LOT_PREFIX) : -1], check=text[-1])


def _check_content(content: Mapping[Any, Any], field: str, *, limit: float, unit: str) -> None:
    for element, amount in content.items():
        check_quantity(amount, field=f"{field}[{element}]", positive=False)
    total = sum(content.values())
    if total > limit:
        message = f"the elements add up to {total:g} {unit}, more than {limit:g} {unit}"
        raise InvalidMass(message, field=field)


class QualityCertificate(BaseModel):
    """The quality certificate (质量证明书) that travels with a lot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: str = Field(min_length=1)
    issuer: str = Field(min_length=1)
    issue_date: date
    standard: str = Field(min_length=1)
    tested_composition_pct: dict[Element, float] = Field(default_factory=dict)

    @field_validator("tested_composition_pct", mode="before")
    @classmethod
    def _percentages(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            _check_content(value, "tested_composition_pct", limit=100.0, unit="%")
        return value


class Lot(BaseModel):
    """A lot of scrap metal, black mass or refined product; every mass is in kilograms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    material: Material
    grade: Grade | None = None
    mass_kg: float
    unit: str = Field(default="kg", description="Always 'kg'; any other unit is refused.")
    content_kg: dict[Element, float] = Field(default_factory=dict)
    certificate: QualityCertificate | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_other_mass_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if isinstance(key, str) and key.startswith(("mass", "weight")) and key != "mass_kg":
                    raise InvalidMass("lots record mass in kilograms, as mass_kg", field=key)
        return data

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return parse_lot_id(value).text

    @field_validator("grade")
    @classmethod
    def _grade(cls, value: Grade | None, info: ValidationInfo) -> Grade | None:
        material = info.data.get("material")
        if value is not None and isinstance(material, Material):
            check_grade(material, value)
        return value

    @field_validator("mass_kg", mode="before")
    @classmethod
    def _mass(cls, value: Any) -> float:
        return check_quantity(value, field="mass_kg")

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if value != "kg":
            raise InvalidMass(f"{value!r} refused; lots record mass in kg", field="unit")
        return value

    @field_validator("content_kg", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for element, amount in value.items():
                check_quantity(amount, field=f"content_kg[{element}]", positive=False)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Lot:
        _check_content(self.content_kg, "content_kg", limit=self.mass_kg, unit="kg")
        for element, share in self.material.nominal_fractions.items():
            ceiling = share * self.mass_kg
            claimed = self.content_kg.get(element, 0.0)
            if claimed > ceiling * (1 + _STOICHIOMETRIC_TOLERANCE):
                raise InvalidMass(
                    f"{claimed:g} kg of {element.value} is more than a pure {self.mass_kg:g} kg "
                    f"lot of {self.material.formula} holds ({ceiling:.3f} kg)",
                    field=f"content_kg[{element.value}]",
                )
        return self


def load_lot(data: Mapping[str, Any]) -> Lot:
    """Build a :class:`Lot` from outside data.

    Raises
    ------
    InvalidLot
        Naming every failing field: the id, a non-kg unit, a mass that is not a positive
        finite number, a grade for the wrong material, element contents heavier than the lot.

    Examples
    --------
    >>> lot = load_lot({"id": "LOT-NFCB6HGGNV6JT", "material": "copper_scrap", "mass_kg": 850,
    ...                 "grade": {"standard": "GB/T 38471-2023", "designation": "A1"}})
    >>> lot.mass_kg, lot.grade.standard.value
    (850.0, 'GB/T 38471-2023')
    >>> load_lot({"id": "LOT-NFCB6HGGNV6JT", "material": "copper_scrap", "mass_kg": 0.85,
    ...           "unit": "t"})
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidLot: invalid lot: unit: 't' refused; lots record mass in kg
    """
    try:
        return Lot.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidLot.from_validation_error(exc) from exc
