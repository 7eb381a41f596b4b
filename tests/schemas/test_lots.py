"""Lots: identifiers with a check character, materials, grades and the lot record in kg."""

from __future__ import annotations

import datetime as dt
import math
import random
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.composition import Element
from schemas.errors import GradeMismatch, InvalidLot, InvalidLotId
from schemas.lots import (
    APPLICABLE_STANDARDS,
    LOT_ID_LENGTH,
    Grade,
    GradeStandard,
    Lot,
    Material,
    check_grade,
    load_lot,
    new_lot_id,
    parse_lot_id,
)

LOT_ID = new_lot_id(random.Random(1))  # 'LOT-NFCB6HGGNV6JT'
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LOT_ID_PATTERN = re.compile(r"^LOT-[0-9A-HJKMNP-TV-Z]{13}$")


def lot_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": LOT_ID,
        "material": "copper_scrap",
        "mass_kg": 850.0,
        "grade": {"standard": "GB/T 38471-2023", "designation": "A1"},
        "content_kg": {"Cu": 800.0},
        "certificate": {
            "number": "QC-2025-0042",
            "issuer": "Example Copper Recycling Co.",
            "issue_date": "2025-06-03",
            "standard": "GB/T 38471-2023",
            "tested_composition_pct": {"Cu": 94.1, "Al": 0.4},
        },
    }
    data.update(changes)
    return data


# --- lot identifiers --------------------------------------------------------------------------


def test_lot_id_is_short_uppercase_and_self_checking() -> None:
    assert LOT_ID == "LOT-NFCB6HGGNV6JT"
    assert len(LOT_ID) == LOT_ID_LENGTH == 17
    parsed = parse_lot_id(LOT_ID)
    assert (parsed.body, parsed.check, str(parsed)) == ("NFCB6HGGNV6J", "T", LOT_ID)


@given(st.integers())
def test_new_lot_ids_are_deterministic_and_parse(seed: int) -> None:
    text = new_lot_id(random.Random(seed))
    assert text == new_lot_id(random.Random(seed))
    assert LOT_ID_PATTERN.match(text)
    assert parse_lot_id(text).text == text


@given(seed=st.integers(), index=st.integers(4, LOT_ID_LENGTH - 1), char=st.sampled_from(CROCKFORD))
def test_every_single_substitution_is_caught(seed: int, index: int, char: str) -> None:
    text = new_lot_id(random.Random(seed))
    if text[index] == char:
        return
    corrupted = text[:index] + char + text[index + 1 :]
    with pytest.raises(InvalidLotId, match="position 17: check character") as info:
        parse_lot_id(corrupted)
    assert [issue.position for issue in info.value.errors] == [LOT_ID_LENGTH]


@pytest.mark.parametrize(
    ("text", "positions", "match"),
    [
        ("", [1], "0 characters; a lot id has 17"),
        (LOT_ID[:-1], [17], "16 characters"),
        (LOT_ID + "0", [18], "18 characters"),
        ("lot-" + LOT_ID[4:], [1, 2, 3], "lowercase 'l'; lot ids use capital letters \\('L'\\)"),
        ("LOT_" + LOT_ID[4:], [4], "expected '-', found '_'"),
        ("BAT-" + LOT_ID[4:], [1, 2], "lot ids start with 'LOT-'"),
        (LOT_ID[:6] + "I" + LOT_ID[7:], [7], "'I' is not used in lot ids"),
        (LOT_ID[:6] + "O" + LOT_ID[7:], [7], "Crockford base32 leaves out I, L, O, U"),
        (LOT_ID[:6] + "b" + LOT_ID[7:], [7], "lowercase 'b'"),
        (LOT_ID[:6] + "l" + LOT_ID[7:], [7], "'l' is not allowed in a lot id"),
        (LOT_ID[:6] + "#" + LOT_ID[7:], [7], "'#' is not allowed"),
        (LOT_ID[:-1] + ("0" if LOT_ID[-1] != "0" else "1"), [17], "does not match"),
    ],
)
def test_bad_lot_ids_are_refused_with_positions(
    text: str, positions: list[int], match: str
) -> None:
    with pytest.raises(InvalidLotId, match=match) as info:
        parse_lot_id(text)
    assert [issue.position for issue in info.value.errors] == positions


def test_a_swap_of_neighbours_is_usually_caught() -> None:
    rng = random.Random(5)
    caught = total = 0
    for _ in range(300):
        text = new_lot_id(rng)
        i = rng.randrange(4, LOT_ID_LENGTH - 1)
        if text[i] == text[i + 1]:
            continue
        total += 1
        try:
            parse_lot_id(text[:i] + text[i + 1] + text[i] + text[i + 2 :])
        except InvalidLotId:
            caught += 1
    assert caught / total > 0.9


# --- materials and grades ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("material", "element", "fraction"),
    [
        # 2 x 6.94 / (2 x 6.94 + 12.011 + 3 x 15.999)
        (Material.LITHIUM_CARBONATE, Element.LI, 13.88 / 73.888),
        (Material.LITHIUM_HYDROXIDE, Element.LI, 6.94 / 41.962),
        (Material.NICKEL_SULPHATE, Element.NI, 58.693 / 262.843),
        (Material.COBALT_SULPHATE, Element.CO, 58.933 / 281.100),
        (Material.MANGANESE_SULPHATE, Element.MN, 54.938 / 169.013),
        (Material.LEAD, Element.PB, 1.0),
    ],
)
def test_refined_products_carry_their_stoichiometric_content(
    material: Material, element: Element, fraction: float
) -> None:
    assert material.nominal_fractions == {element: pytest.approx(fraction, rel=1e-4)}
    assert material.formula is not None


@pytest.mark.parametrize(
    "material", [Material.STEEL_SCRAP, Material.COPPER_SCRAP, Material.BLACK_MASS]
)
def test_scrap_and_black_mass_have_no_nominal_content(material: Material) -> None:
    assert material.formula is None
    assert material.nominal_fractions == {}


@pytest.mark.parametrize(
    ("material", "standard"),
    [(m, s) for m, standards in APPLICABLE_STANDARDS.items() for s in sorted(standards)],
)
def test_grades_apply_to_their_material(material: Material, standard: GradeStandard) -> None:
    check_grade(material, Grade(standard=standard, designation="X1"))


@pytest.mark.parametrize(
    ("material", "standard", "match"),
    [
        (Material.COPPER_SCRAP, GradeStandard.STEEL_2024, "GB/T 39733-2024 does not grade copper"),
        (Material.STEEL_SCRAP, GradeStandard.CAST_ALUMINIUM_2023, "use GB/T 39733-2020 or GB/T"),
        (Material.ALUMINIUM_SCRAP, GradeStandard.COPPER_2023, "does not grade aluminium scrap"),
        (Material.BLACK_MASS, GradeStandard.COPPER_2023, "black mass; no grade applies"),
        (Material.LITHIUM_CARBONATE, GradeStandard.STEEL_2024, "no grade applies"),
    ],
)
def test_a_grade_for_the_wrong_material_is_refused(
    material: Material, standard: GradeStandard, match: str
) -> None:
    with pytest.raises(GradeMismatch, match=match):
        check_grade(material, Grade(standard=standard, designation="X1"))


@pytest.mark.parametrize("designation", ["", " A1", "A1 ", "X" * 41])
def test_grade_designation_must_be_clean(designation: str) -> None:
    with pytest.raises(ValidationError, match="designation"):
        Grade(standard=GradeStandard.STEEL_2024, designation=designation)


# --- the lot record ---------------------------------------------------------------------------


def test_a_lot_with_certificate_loads() -> None:
    lot = load_lot(lot_data())
    assert lot.material is Material.COPPER_SCRAP
    assert lot.mass_kg == 850.0
    assert lot.unit == "kg"
    assert lot.content_kg == {Element.CU: 800.0}
    assert lot.grade == Grade(standard=GradeStandard.COPPER_2023, designation="A1")
    assert lot.certificate is not None
    assert lot.certificate.issue_date == dt.date(2025, 6, 3)
    assert lot.certificate.tested_composition_pct[Element.CU] == 94.1


def test_a_lot_is_frozen() -> None:
    lot = load_lot(lot_data())
    with pytest.raises(ValidationError, match="frozen"):
        lot.mass_kg = 1.0  # type: ignore[misc]


def test_refined_product_content_within_stoichiometry_is_accepted() -> None:
    lot = load_lot(
        lot_data(material="lithium_carbonate", grade=None, mass_kg=1000, content_kg={"Li": 187.8})
    )
    assert lot.content_kg[Element.LI] == 187.8


@pytest.mark.parametrize(
    ("changes", "field", "match"),
    [
        ({"mass_kg": 0}, "mass_kg", "must be positive, got 0"),
        ({"mass_kg": -3.5}, "mass_kg", "must be positive"),
        ({"mass_kg": math.inf}, "mass_kg", "must be finite"),
        ({"mass_kg": math.nan}, "mass_kg", "must be finite"),
        ({"mass_kg": "850 t"}, "mass_kg", "must be a number \\(kilograms\\), got str '850 t'"),
        ({"mass_kg": True}, "mass_kg", "must be a number"),
        ({"unit": "t"}, "unit", "'t' refused; lots record mass in kg"),
        ({"unit": "KG"}, "unit", "'KG' refused"),
        ({"mass_t": 0.85}, "mass_t", "lots record mass in kilograms, as mass_kg"),
        ({"weight": 850}, "weight", "lots record mass in kilograms"),
        ({"id": "LOT-123"}, "id", "7 characters; a lot id has 17"),
        ({"material": "tin_scrap"}, "material", "Input should be"),
        ({"content_kg": {"Cu": 900.0}}, "content_kg", "add up to 900 kg, more than 850 kg"),
        ({"content_kg": {"Cu": -1.0}}, "content_kg\\[Cu\\]", "must not be negative"),
        ({"content_kg": {"Xx": 1.0}}, "content_kg.Xx.\\[key\\]", "Input should be"),
        (
            {"grade": {"standard": "GB/T 39733-2024", "designation": "LRS304"}},
            "grade",
            "GB/T 39733-2024 does not grade copper scrap",
        ),
        (
            {
                "material": "lithium_carbonate",
                "grade": None,
                "mass_kg": 1000,
                "content_kg": {"Li": 250.0},
            },
            "content_kg\\[Li\\]",
            "250 kg of Li is more than a pure 1000 kg lot of Li2CO3 holds \\(187.85",
        ),
        (
            {"certificate": {**lot_data()["certificate"], "tested_composition_pct": {"Cu": 101}}},
            "certificate.tested_composition_pct",
            "add up to 101 %, more than 100 %",
        ),
        (
            {"certificate": {**lot_data()["certificate"], "number": ""}},
            "certificate.number",
            "at least 1 character",
        ),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
    ],
)
def test_invalid_lots_name_the_field(changes: dict[str, Any], field: str, match: str) -> None:
    with pytest.raises(InvalidLot, match=f"{field}: .*{match}") as info:
        load_lot(lot_data(**changes))
    assert any(re.fullmatch(field, issue.field) for issue in info.value.errors)


def test_direct_construction_raises_a_pydantic_error_at_the_field() -> None:
    with pytest.raises(ValidationError, match=r"mass_kg\n.*must be positive"):
        Lot.model_validate(lot_data(mass_kg=0))


def test_every_failing_field_is_reported() -> None:
    with pytest.raises(InvalidLot) as info:
        load_lot(lot_data(id="LOT-1", mass_kg=-1, unit="lb"))
    assert [issue.field for issue in info.value.errors] == ["id", "mass_kg", "unit"]
