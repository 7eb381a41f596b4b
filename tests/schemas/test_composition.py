"""Pack composition: stoichiometry against domain.md §5.2, estimates, and given compositions."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.composition import (
    CATHODE_FORMULAS,
    Chemistry,
    Composition,
    Element,
    check_quantity,
    estimate_composition,
    load_composition,
    mass_fractions,
    parse_chemistry,
)
from schemas.errors import (
    InvalidComposition,
    InvalidMass,
    InvalidQuantity,
    NoCompositionData,
    UnknownChemistry,
)

ESTIMABLE = [c for c in Chemistry if c not in {Chemistry.LMO, Chemistry.LEAD_ACID}]


def given_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "chemistry": "NCM811",
        "energy_kwh": 75.0,
        "mass_kg": 450.0,
        "content_kg": {"Li": 8.0, "Ni": 55.0, "Co": 7.0, "Mn": 6.5},
        "estimated": False,
        "basis": "maker's bill of materials",
    }
    data.update(changes)
    return data


# --- chemistry names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "chemistry"),
    [
        ("LFP", Chemistry.LFP),
        ("lfp", Chemistry.LFP),
        ("LiFePO4", Chemistry.LFP),
        ("NCM523", Chemistry.NCM523),
        ("NMC532", Chemistry.NCM523),
        ("nmc811", Chemistry.NCM811),
        ("Lead-Acid", Chemistry.LEAD_ACID),
        (Chemistry.NCA, Chemistry.NCA),
    ],
)
def test_chemistry_names_and_aliases(name: str, chemistry: Chemistry) -> None:
    assert parse_chemistry(name) is chemistry


@pytest.mark.parametrize("name", ["", "NCM955", "sodium-ion", "NMC523"])
def test_unknown_chemistry_is_refused_with_the_known_names(name: str) -> None:
    with pytest.raises(UnknownChemistry, match=r"unknown chemistry .*; known: LFP, NCM111") as info:
        parse_chemistry(name)
    assert info.value.name == name


# --- stoichiometry ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chemistry", "percent"),
    [
        # domain.md §5.2, derived from IUPAC atomic weights
        (Chemistry.LFP, {"Li": 4.40, "Fe": 35.40, "P": 19.63, "O": 40.57}),
        (Chemistry.NCM811, {"Li": 7.13, "Ni": 48.27, "Mn": 5.65, "Co": 6.06}),
        (Chemistry.NCM622, {"Li": 7.16, "Ni": 36.33, "Mn": 11.34, "Co": 12.16}),
        (Chemistry.NCM523, {"Li": 7.19, "Ni": 30.39, "Mn": 17.07, "Co": 12.21}),
        (Chemistry.NCM111, {"Li": 7.19, "Ni": 20.28, "Mn": 18.98, "Co": 20.37}),
    ],
)
def test_cathode_fractions_reproduce_domain_figures(
    chemistry: Chemistry, percent: dict[str, float]
) -> None:
    fractions = mass_fractions(CATHODE_FORMULAS[chemistry])
    for symbol, expected in percent.items():
        assert 100 * fractions[symbol] == pytest.approx(expected, abs=0.006)


def test_nmc811_matches_the_critical_minerals_constants() -> None:
    # changbatterygroup/CriticalMinerals core/constants.py: [Li, Ni, Mn, Co]
    fractions = mass_fractions(CATHODE_FORMULAS[Chemistry.NCM811])
    got = [fractions[s] for s in ("Li", "Ni", "Mn", "Co")]
    assert got == pytest.approx([0.0714, 0.4828, 0.0565, 0.0606], abs=2e-4)


@pytest.mark.parametrize("chemistry", list(CATHODE_FORMULAS))
def test_mass_fractions_sum_to_one(chemistry: Chemistry) -> None:
    assert sum(mass_fractions(CATHODE_FORMULAS[chemistry]).values()) == pytest.approx(1.0)


# --- estimates --------------------------------------------------------------------------------


def test_lfp_100_kwh_matches_the_domain_estimate() -> None:
    # domain.md §5.2: 0.30 x 666 kg cathode -> Li ~ 8.8 kg, Fe ~ 71 kg, P ~ 39 kg
    pack = estimate_composition(Chemistry.LFP, 100)
    assert pack.mass_kg == 666.0
    assert pack.mass_of(Element.LI) == pytest.approx(8.8, abs=0.05)
    assert pack.mass_of(Element.FE) == pytest.approx(71, abs=0.5)
    assert pack.mass_of(Element.P) == pytest.approx(39, abs=0.5)
    assert pack.mass_of(Element.CO) == 0.0
    assert pack.mass_of(Element.NI) == 0.0
    assert pack.estimated is True
    assert "BatPaC 5.2" in pack.basis
    assert "T&E" in pack.basis


def test_cell_minerals_scale_with_energy() -> None:
    # average 2020 60 kWh battery: Cu 20 kg, Al 35 kg, graphite 52 kg
    pack = estimate_composition("NCM622", 60)
    assert pack.mass_of(Element.CU) == 20.0
    assert pack.mass_of(Element.AL) == 35.0
    assert pack.mass_of(Element.GRAPHITE) == 52.0


def test_nca_aluminium_includes_the_cathode_dopant() -> None:
    pack = estimate_composition(Chemistry.NCA, 60)
    assert pack.mass_of(Element.AL) > 35.0


def test_lto_gets_no_graphite_anode_estimate() -> None:
    pack = estimate_composition(Chemistry.LTO, 30)
    assert pack.mass_kg == pytest.approx(321.9)
    assert set(pack.content_kg) == {Element.LI, Element.MN}
    assert "no Cu, Al or graphite estimate" in pack.basis


def test_ncm523_is_interpolated_and_says_so() -> None:
    pack = estimate_composition(Chemistry.NCM523, 100)
    assert pack.mass_kg == pytest.approx(537.0)
    assert "interpolated" in pack.basis


def test_a_given_pack_mass_is_used() -> None:
    pack = estimate_composition(Chemistry.LFP, 50, mass_kg=310)
    assert pack.mass_kg == 310.0
    assert pack.mass_of(Element.FE) == pytest.approx(0.30 * 310 * 0.3540, rel=1e-3)
    assert "pack mass given" in pack.basis


@given(
    chemistry=st.sampled_from(ESTIMABLE),
    energy=st.floats(min_value=0.5, max_value=300, allow_nan=False),
)
def test_every_estimate_is_a_valid_estimated_composition(
    chemistry: Chemistry, energy: float
) -> None:
    pack = estimate_composition(chemistry, energy)
    assert pack.estimated
    assert pack.chemistry is chemistry
    assert sum(pack.content_kg.values()) <= pack.mass_kg
    assert all(kg >= 0 for kg in pack.content_kg.values())
    assert Composition.model_validate(pack.model_dump()) == pack


@pytest.mark.parametrize("chemistry", [Chemistry.LMO, Chemistry.LEAD_ACID])
def test_no_published_figures_means_no_estimate(chemistry: Chemistry) -> None:
    with pytest.raises(
        NoCompositionData, match=f"no published composition figures for {chemistry}"
    ):
        estimate_composition(chemistry, 10)


def test_estimate_refuses_an_unknown_chemistry() -> None:
    with pytest.raises(UnknownChemistry, match="unknown chemistry 'NaFePO4'"):
        estimate_composition("NaFePO4", 10)


@pytest.mark.parametrize(
    ("energy", "mass", "error", "match"),
    [
        (0, None, InvalidQuantity, "energy_kwh: must be positive"),
        (-5, None, InvalidQuantity, "energy_kwh: must be positive"),
        (math.nan, None, InvalidQuantity, "energy_kwh: must be finite"),
        (math.inf, None, InvalidQuantity, "energy_kwh: must be finite"),
        (60, 0, InvalidMass, "mass_kg: must be positive"),
        (60, math.inf, InvalidMass, "mass_kg: must be finite"),
        (60, 100, InvalidMass, "mass_kg: 100 kg is lighter than the estimated elements"),
    ],
)
def test_estimate_refuses_bad_quantities(
    energy: float, mass: float | None, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        estimate_composition(Chemistry.LFP, energy, mass)


def test_energy_errors_are_not_mass_errors() -> None:
    with pytest.raises(InvalidQuantity) as info:
        estimate_composition(Chemistry.LFP, -1)
    assert not isinstance(info.value, InvalidMass)
    assert info.value.field == "energy_kwh"


# --- given compositions -----------------------------------------------------------------------


def test_a_given_composition_loads() -> None:
    composition = load_composition(given_data())
    assert composition.chemistry is Chemistry.NCM811
    assert composition.estimated is False
    assert composition.mass_of(Element.NI) == 55.0
    assert composition.mass_of(Element.CU) == 0.0


@pytest.mark.parametrize(
    ("changes", "field", "match"),
    [
        ({"chemistry": "NCM955"}, "chemistry", "unknown chemistry 'NCM955'"),
        ({"energy_kwh": 0}, "energy_kwh", "must be positive"),
        ({"energy_kwh": "75 kWh"}, "energy_kwh", "must be a number, got str"),
        ({"mass_kg": -1}, "mass_kg", "must be positive"),
        ({"mass_kg": math.nan}, "mass_kg", "must be finite"),
        ({"content_kg": {"Li": -0.1}}, "content_kg\\[Li\\]", "must not be negative"),
        ({"content_kg": {"Ni": math.inf}}, "content_kg\\[Ni\\]", "must be finite"),
        ({"content_kg": {"Ni": 500.0}}, "content_kg", "elements weigh 500 kg in all, more than"),
        ({"basis": ""}, "basis", "at least 1 character"),
        ({"estimated": "maybe"}, "estimated", "valid boolean"),
    ],
)
def test_invalid_compositions_name_the_field(
    changes: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(InvalidComposition, match=f"{field}: .*{match}"):
        load_composition(given_data(**changes))


def test_a_composition_is_frozen() -> None:
    composition = load_composition(given_data())
    with pytest.raises(ValidationError, match="frozen"):
        composition.mass_kg = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "positive", "match"),
    [
        (0, True, "must be positive"),
        (-1, False, "must not be negative"),
        (None, True, "must be a number \\(kilograms\\), got NoneType None"),
    ],
)
def test_check_quantity_refuses(value: object, positive: bool, match: str) -> None:
    with pytest.raises(InvalidMass, match=f"x: {match}"):
        check_quantity(value, field="x", positive=positive)
