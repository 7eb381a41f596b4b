"""The rate engine on a hand-built world whose every figure is worked out by hand.

The world (:func:`build_edge_world`) holds what a simulation does not: corrections of a
commissioned and of a collected mass and of a composition, a pack dismantled with its
modules taken out whole, black mass split and merged with black mass bought from outside,
refining with reagents, a pack built from that refined lithium, a cascade operator that
both accepts and collects, and a recovery above 100 %.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from ledger import note
from schemas.actors import Role
from schemas.codes import ProductType
from schemas.composition import Composition, estimate_composition
from schemas.lots import Material, new_lot_id
from tests.factories import Scene
from tests.trace.conftest import open_tracer
from trace.engine import Tracer
from trace.evidence import Evidence, Period, Rate
from trace.graph import stored_events
from trace.rates import RateReport, compute_rates, facts_of, pack_recycled_content
from trace.rates_facts import RateFacts, events_query
from trace.rates_producer import ContentGroups, Producers, producer_groups, recycled_content
from trace.rates_query import Query
from trace.rates_recycling import RecoveryGroups, pack_recovery, recovered_by_pack
from trace.rates_targets import targets_for
from trace.state import MemoryWorld

CST = timezone(timedelta(hours=8))
LI_CARBONATE = Material.LITHIUM_CARBONATE.nominal_fractions
ACTORS = (
    ("catl", Role.BATTERY_MAKER, "350000"),
    ("byd", Role.AUTOMAKER, "440000"),
    ("gz-collect", Role.COLLECTOR, "440000"),
    ("js-storage", Role.CASCADE_OPERATOR, "320000"),
    ("brunp", Role.RECYCLER, "430000"),
    ("hn-scrap", Role.SCRAP_PROCESSOR, "430000"),
)


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=CST)


def lot(lot_id: str, material: str, mass: float, content: dict[str, float] | None = None) -> Any:
    record: dict[str, Any] = {"id": lot_id, "material": material, "mass_kg": mass}
    if content:
        record["content_kg"] = content
    return {"lot": record}


@dataclass
class EdgeWorld:
    """Codes, lot ids, event ids and compositions of :func:`build_edge_world`."""

    codes: dict[str, str]
    lots: dict[str, str]
    events: dict[str, str]
    comps: dict[str, Composition]


def build_edge_world(scene: Scene) -> EdgeWorld:
    """54 events, 2022-2025, every one accepted by the custody rules."""
    for actor, role, region in ACTORS:
        scene.add(actor, role, region)
    c = {n: scene.code() for n in ("P1", "P2", "P3", "P4", "P5", "R2")}
    c["M1"], c["M2"] = scene.code(ProductType.MODULE), scene.code(ProductType.MODULE)
    names = ("BM1", "CU1", "ST1", "BM1a", "BM1b", "BMX", "BMM", "L1", "CUR", "ST2", "ST3")
    lots = {n: new_lot_id(scene.rng) for n in (*names, "NI2", "LI2", "CO1")}
    comps = {
        "P1": estimate_composition("LFP", 50.0),
        "P2": estimate_composition("NCM811", 60.0),
        "M1": estimate_composition("NCM622", 10.0),
        "M2": estimate_composition("NCM622", 10.0),
        "P5": estimate_composition("LFP", 40.0),
    }
    ev: dict[str, str] = {}

    def go(name: str, actor: str, data: dict[str, Any], when: datetime) -> None:
        ev[name] = scene.submit(actor, data, when=when).event_id

    def move(item: str, sender: str, receiver: str, when: datetime) -> None:
        offer = {"type": "handover", "items": [item], "to": receiver, "transfer_ownership": True}
        go(f"h-{item}-{receiver}", sender, offer, when)
        answer = {"type": "accept", "handover": ev[f"h-{item}-{receiver}"], "items": [item]}
        go(f"a-{item}-{receiver}", receiver, answer, when + timedelta(hours=1))

    def commission(name: str, actor: str, when: datetime, **data: Any) -> None:
        body = {"type": "commission", "item": c[name], **data}
        if name in comps:
            body["composition"] = comps[name].model_dump(mode="json")
        go(f"c-{name}", actor, body, when)

    commission("P1", "catl", at(2022, 3, 1))
    commission("P2", "catl", at(2022, 3, 1, 11))
    commission("M1", "catl", at(2022, 3, 2))
    commission("M2", "catl", at(2022, 3, 2, 11))
    commission("P3", "catl", at(2022, 3, 3), mass_kg=150.0)  # no composition
    go("asm", "catl", {"type": "assemble", "parent": c["P3"], "children": [c["M1"], c["M2"]]},
       at(2022, 3, 4))  # fmt: skip
    for n in ("P1", "P2", "P3"):
        move(c[n], "catl", "byd", at(2022, 4, 1))
    for i, n in enumerate(("P1", "P2", "P3")):
        go(f"i-{n}", "byd", {"type": "install", "item": c[n], "vin": f"LGXCE4CB5N000000{i + 1}"},
           at(2022, 5, 1 + i))  # fmt: skip
    commission("P4", "byd", at(2023, 2, 1), mass_kg=300.0)  # an automaker's own pack
    fix = {"type": "correction", "corrects": ev["c-P1"], "item": c["P1"], "reason": "reweighed"}
    go("fix-P1", "catl", {**fix, "fields": {"mass_kg": 340.0}}, at(2023, 3, 1))
    # P1: collected, dismantled; black mass split, half merged with bought black mass, refined.
    go("r-P1", "byd", {"type": "retire", "item": c["P1"], "reason": "worn"}, at(2024, 1, 10))
    move(c["P1"], "byd", "gz-collect", at(2024, 1, 20))
    go(
        "col-P1",
        "gz-collect",
        {"type": "collect", "item": c["P1"], "mass_kg": 338.0},
        at(2024, 2, 1),
    )
    move(c["P1"], "gz-collect", "brunp", at(2024, 2, 10))
    li1 = comps["P1"].content_kg["Li"]  # type: ignore[index]
    outputs = [
        lot(lots["BM1"], "black_mass", 120.0, {"Li": li1}),
        lot(lots["CU1"], "copper_scrap", 15.0, {"Cu": 14.5}),
        lot(lots["ST1"], "steel_scrap", 60.0),
    ]
    go("d-P1", "brunp", {"type": "dismantle", "item": c["P1"], "mass_kg": 338.0, "outputs": outputs},
       at(2024, 3, 1))  # fmt: skip
    fix = {"type": "correction", "corrects": ev["col-P1"], "item": c["P1"], "reason": "scale"}
    go("fix-col-P1", "catl", {**fix, "fields": {"mass_kg": 336.0}}, at(2024, 3, 2))
    parts = [
        lot(lots["BM1a"], "black_mass", 80.0, {"Li": li1 * 2 / 3}),
        lot(lots["BM1b"], "black_mass", 40.0, {"Li": li1 / 3}),
    ]
    go("split", "brunp", {"type": "lot_split", "lot": lots["BM1"], "parts": parts}, at(2024, 3, 5))
    bought = lot(lots["BMX"], "black_mass", 50.0, {"Li": 1.0})["lot"]
    go("create-BMX", "brunp", {"type": "lot_create", "lot": bought}, at(2024, 3, 6))
    merged = lot(lots["BMM"], "black_mass", 90.0, {"Li": li1 / 3 + 1.0})
    go("merge", "brunp", {"type": "lot_merge", "lots": [lots["BM1b"], lots["BMX"]], "into": merged},
       at(2024, 3, 7))  # fmt: skip
    li_out = round(0.9 * (li1 + 1.0), 3)
    refined = lot(lots["L1"], "lithium_carbonate", round(li_out / LI_CARBONATE["Li"], 3),  # type: ignore[index]
                  {"Li": li_out})  # fmt: skip
    inputs = [{"item": lots["BM1a"], "mass_kg": 80.0}, {"item": lots["BMM"], "mass_kg": 90.0}]
    go("refine", "brunp", {"type": "recycle", "inputs": inputs, "outputs": [refined],
                           "reagents_kg": 20.0}, at(2024, 3, 10))  # fmt: skip
    move(lots["L1"], "brunp", "catl", at(2024, 4, 1))
    commission("P5", "catl", at(2024, 5, 1), materials=[{"item": lots["L1"], "mass_kg": 3.0}])
    move(lots["CU1"], "brunp", "hn-scrap", at(2024, 5, 2))
    smelt = {"type": "lot_smelt", "inputs": [{"item": lots["CU1"], "mass_kg": 15.0}],
             "outputs": [lot(lots["CUR"], "copper_scrap", 14.5, {"Cu": 14.0})]}  # fmt: skip
    go("smelt", "hn-scrap", smelt, at(2024, 6, 1))
    steel = lot(lots["ST2"], "steel_scrap", 500.0)["lot"]
    go("create-ST2", "hn-scrap", {"type": "lot_create", "lot": steel}, at(2024, 6, 2))
    # P2: accepted and collected by the cascade operator, re-coded, recycled whole later.
    go("r-P2", "byd", {"type": "retire", "item": c["P2"], "reason": "scrapped"}, at(2024, 6, 10))
    move(c["P2"], "byd", "js-storage", at(2024, 6, 11))
    go("col-P2", "js-storage", {"type": "collect", "item": c["P2"]}, at(2024, 6, 13))
    go("ins-P2", "js-storage", {"type": "inspect", "item": c["P2"], "soh_pct": 82.0, "grade": "B"},
       at(2024, 6, 20))  # fmt: skip
    go("rep-P2", "js-storage", {"type": "repurpose", "item": c["P2"], "new_code": c["R2"],
                                "new_use": "energy_storage"}, at(2024, 7, 1))  # fmt: skip
    go("r-R2", "js-storage", {"type": "retire", "item": c["R2"], "reason": "done"}, at(2025, 3, 1))
    move(c["R2"], "js-storage", "brunp", at(2025, 3, 5))
    go("col-R2", "brunp", {"type": "collect", "item": c["R2"]}, at(2025, 3, 10))
    p2 = comps["P2"]
    ni2 = p2.content_kg["Ni"]  # type: ignore[index]
    nickel = Material.NICKEL_SULPHATE.nominal_fractions["Ni"]  # type: ignore[index]
    recovered = [
        lot(
            lots["NI2"],
            "nickel_sulphate",
            round(ni2 * 1.003 / nickel, 3),
            {"Ni": round(ni2 * 1.003, 3)},
        ),
        lot(lots["LI2"], "lithium_carbonate", 10.0, {"Li": 1.5}),
    ]
    go("rec-R2", "brunp", {"type": "recycle", "inputs": [{"item": c["R2"], "mass_kg": p2.mass_kg}],
                           "outputs": recovered}, at(2025, 4, 1))  # fmt: skip
    assayed = p2.model_dump(mode="json")
    assayed["content_kg"]["Ni"] = ni2 * 0.99
    fix = {"type": "correction", "corrects": ev["c-P2"], "item": c["P2"], "reason": "assay"}
    go("fix-P2", "catl", {**fix, "fields": {"composition": assayed}}, at(2025, 5, 1))
    # P3: dismantled with its two modules taken out whole; one of them recycled after.
    go("r-P3", "byd", {"type": "retire", "item": c["P3"], "reason": "worn"}, at(2024, 8, 1))
    move(c["P3"], "byd", "gz-collect", at(2024, 8, 2))
    go("col-P3", "gz-collect", {"type": "collect", "item": c["P3"]}, at(2024, 8, 10))
    move(c["P3"], "gz-collect", "brunp", at(2024, 8, 20))
    go("d-P3", "brunp", {"type": "dismantle", "item": c["P3"], "mass_kg": 150.0,
                         "parts": [c["M1"], c["M2"]], "outputs": [lot(lots["ST3"], "steel_scrap", 30.0)]},
       at(2024, 9, 1))  # fmt: skip
    go("r-M1", "brunp", {"type": "retire", "item": c["M1"], "reason": "loose"}, at(2024, 9, 2))
    go("col-M1", "brunp", {"type": "collect", "item": c["M1"]}, at(2024, 9, 3))
    co1 = comps["M1"].content_kg["Co"]  # type: ignore[index]
    cobalt = Material.COBALT_SULPHATE.nominal_fractions["Co"]  # type: ignore[index]
    out = lot(
        lots["CO1"], "cobalt_sulphate", round(co1 * 0.98 / cobalt, 3), {"Co": round(co1 * 0.98, 3)}
    )
    go("rec-M1", "brunp", {"type": "recycle", "inputs": [{"item": c["M1"], "mass_kg": comps["M1"].mass_kg}],
                           "outputs": [out]}, at(2024, 9, 10))  # fmt: skip
    return EdgeWorld(c, lots, ev, comps)


def open_edge_world(url: str) -> tuple[Tracer, EdgeWorld]:
    tracer = open_tracer(url, note.Signer.generate("suyuan-log"))
    return tracer, build_edge_world(Scene(tracer))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tracer, EdgeWorld]]:
    tracer, world = open_edge_world(str(tmp_path_factory.mktemp("edge") / "edge.db"))
    yield tracer, world
    tracer.close()


@pytest.fixture(scope="module")
def report(edge: tuple[Tracer, EdgeWorld]) -> RateReport:
    return compute_rates(edge[0])


def kg(world: EdgeWorld, name: str) -> float:
    return float(world.comps[name].mass_kg)


def element(world: EdgeWorld, name: str, symbol: str) -> float:
    return float(world.comps[name].content_kg.get(symbol, 0.0))  # type: ignore[call-overload]


def test_placed_and_collected_use_corrected_masses(
    edge: tuple[Tracer, EdgeWorld], report: RateReport
) -> None:
    _, w = edge
    placed = 340.0 + kg(w, "P2") + 150.0  # P1 as corrected; modules are not packs
    assert report.total("placed", "kg", producer="catl", period="2022").amount == pytest.approx(
        placed
    )
    assert report.total("placed", "count", producer="catl", period="2022").amount == 3
    # The automaker places the packs it installs, and its own pack when it commissions it.
    assert report.total("placed", "kg", producer="byd", period="2022").amount == pytest.approx(
        placed
    )
    assert report.total("placed", "kg", producer="byd", period="2023").amount == 300.0
    # Nationally each pack counts once, when commissioned.
    assert report.total("placed", "count", period="2022").amount == 3
    collected = 336.0 + kg(w, "P2") + 150.0  # P1's collect mass corrected; P3 as commissioned
    assert report.total("collected", "kg", producer="catl", period="2024").amount == pytest.approx(
        collected
    )
    # P2 was collected once; its re-code's collection at the recycler is a second life.
    assert report.total("collected", "count", period="2025").amount == 0
    assert report.total("repurposed", "count", producer="byd", period="2024").amount == 1
    assert report.total("recycled", "count", period="2024").amount == 2  # P1, P3
    assert report.total("recycled", "count", period="2025").amount == 1  # P2, as R2


def test_collection_rate_china_and_eu_forms(
    edge: tuple[Tracer, EdgeWorld], report: RateReport
) -> None:
    _, w = edge
    collected = 336.0 + kg(w, "P2") + 150.0
    placed_2022 = 340.0 + kg(w, "P2") + 150.0
    cn = report.rate("collection_rate", "kg", producer="catl", period="2024")
    assert cn.numerator == pytest.approx(collected)
    assert cn.denominator == pytest.approx(placed_2022 / 3)  # 2021, 2022, 2023
    eu = report.rate("collection_rate_eu", "kg", producer="catl", period="2024")
    assert eu.denominator == pytest.approx((placed_2022 + kg(w, "P5")) / 3)  # 2022-2024
    assert eu.value == pytest.approx(collected / eu.denominator)
    assert [t.status for t in eu.targets] == ["not_applicable"] * 4  # portable and LMT only
    assert set(cn.evidence.items) == {w.codes["P1"], w.codes["P2"], w.codes["P3"]}
    assert cn.evidence.masses_kg[w.codes["P1"]] == 336.0
    assert len(cn.evidence.seqs) == 3 and all(e.startswith("ni:///") for e in cn.evidence.events)


def test_a_zero_denominator_is_undefined_with_a_reason(report: RateReport) -> None:
    rate = report.rate("collection_rate", "count", producer="catl", period="2022")
    assert rate.value is None and rate.denominator == 0
    assert rate.undefined_reason == "nothing placed on the market in 2019-2021"
    assert (
        report.rate("recycled_content", "kg", producer="catl", period="2024", element="Co").value
        is None
    )


def test_recycler_boundary_counts_bought_lots_once_and_no_intermediates(
    edge: tuple[Tracer, EdgeWorld], report: RateReport
) -> None:
    _, w = edge
    modules = kg(w, "M1") + kg(w, "M2")
    # P1 as declared, the bought black mass, P3 less its modules, then module M1 itself.
    inputs = 338.0 + 50.0 + (150.0 - modules) + kg(w, "M1")
    rate = report.rate("recycling_efficiency", "kg", actor="brunp", period="2024")
    assert rate.denominator == pytest.approx(inputs)
    got = set(rate.evidence.items)
    assert {w.lots["CU1"], w.lots["ST1"], w.lots["L1"], w.lots["ST3"], w.lots["CO1"]} == got
    products = sum(rate.evidence.masses_kg.values())
    assert rate.numerator == pytest.approx(products - 20.0)  # less the declared reagents
    assert w.lots["BMX"] in rate.denominator_evidence.items
    assert w.lots["BMM"] not in rate.denominator_evidence.items  # its own merge
    li = report.rate("material_recovery", "kg", actor="brunp", period="2024", element="Li")
    assert li.denominator == pytest.approx(element(w, "P1", "Li") + 1.0 + element(w, "M1", "Li"))


def test_a_recovery_above_100_percent_is_an_anomaly_not_a_rate(report: RateReport) -> None:
    # R2 gave up 100.3 % of the nickel its pack was declared with, and the assay later found
    # 1 % less: an impossible ratio, reported as undefined, never judged against a target.
    rate = report.rate("material_recovery", "kg", actor="brunp", period="2025", element="Ni")
    assert rate.value is None and rate.numerator > rate.denominator > 0
    assert rate.undefined_reason is not None and "physically impossible" in rate.undefined_reason
    assert rate.targets == ()


def test_recovery_of_a_producers_packs_follows_black_mass(
    edge: tuple[Tracer, EdgeWorld], report: RateReport
) -> None:
    _, w = edge
    li1 = element(w, "P1", "Li")
    refined = round(0.9 * (li1 + 1.0), 3)
    # The refined lithium came 4.395 parts from P1's black mass for 1 part bought.
    rate = report.rate(
        "material_recovery_of_packs", "kg", producer="catl", period="2024", element="Li"
    )
    assert rate.numerator == pytest.approx(refined * li1 / (li1 + 1.0))
    assert rate.denominator == pytest.approx(li1)  # P3 has no composition, M1 is a module


def test_recycled_content_follows_lot_lineage(
    edge: tuple[Tracer, EdgeWorld], report: RateReport
) -> None:
    tracer, w = edge
    # L1 came from 80 kg of P1's black mass and 90 kg of a merge that was 40 kg P1 and
    # 50 kg bought: post-consumer share (80 + 40) / 170.
    share = LI_CARBONATE["Li"]  # type: ignore[index]
    brought = 3.0 * share * 120.0 / 170.0
    rate = report.rate("recycled_content", "kg", producer="catl", period="2024", element="Li")
    assert rate.numerator == pytest.approx(brought, rel=1e-3)
    assert rate.denominator == pytest.approx(element(w, "P5", "Li"))
    assert rate.evidence.items == (w.lots["L1"],)
    assert [t.status for t in rate.targets] == ["not_applicable", "not_applicable"]  # from 2031
    per_pack = pack_recycled_content(tracer, w.codes["P5"])
    assert per_pack["Li"] == pytest.approx(rate.value) and per_pack["Co"] is None
    assert set(per_pack) == {"Li", "Ni", "Co", "Mn", "Cu", "Al", "Pb"}


def test_cascade_operator_counts_each_battery_once(
    edge: tuple[Tracer, EdgeWorld], report: RateReport
) -> None:
    _, w = edge
    rate = report.rate(
        "cascade_use_rate_operator", "kg", actor="js-storage", period="2024", kind="pack"
    )
    assert rate.numerator == rate.denominator == pytest.approx(kg(w, "P2"))  # accepted, collected
    assert rate.value == 1.0
    assert [t.status for t in rate.targets] == ["not_applicable"]  # the draft binds from 2025
    producer = report.rate("cascade_use_rate", "count", producer="catl", period="2024", kind="pack")
    assert (producer.numerator, producer.denominator) == (1.0, 3.0)


def test_scrap_totals_are_tonnes_of_lots(report: RateReport) -> None:
    assert report.total("scrap_steel", "t", period="2024").amount == pytest.approx(0.59)
    assert report.total("scrap_nonferrous", "t", period="2024").amount == pytest.approx(0.015)
    assert report.total("recycled_copper", "t", period="2024").amount == pytest.approx(0.0145)
    assert report.total("scrap_steel", "t", period="2024", region="430000").amount == pytest.approx(
        0.59
    )
    national = report.total("scrap_steel", "t", period="2024").targets[0]
    assert national.status == "not_applicable" and national.threshold == 320e6


def test_targets_bind_by_their_dates(report: RateReport) -> None:
    re_2025 = report.rate("recycling_efficiency", "kg", actor="brunp", period="2025")
    assert [(t.threshold, t.status) for t in re_2025.targets[:2]] == [
        (0.65, "fail"),
        (0.70, "not_applicable"),
    ]
    co = report.rate("material_recovery", "kg", actor="brunp", period="2024", element="Co")
    assert {t.source.split(" ")[0]: t.status for t in co.targets}["规范条件"] == "not_applicable"
    assert (
        targets_for("material_recovery", 0.97, Period.year(2025), element="Co")[0].status == "fail"
    )


@pytest.mark.parametrize(
    ("filters", "present", "absent"),
    [
        (
            {"producer": "catl"},
            {"collection_rate", "recycled_content"},
            {"recycling_efficiency", "cascade_use_rate_operator"},
        ),
        (
            {"chemistry": "LFP"},
            {"cascade_use_rate_operator", "recycled_content"},
            {"recycling_efficiency"},
        ),
        (
            {"period": Period.between(date(2024, 1, 1), date(2024, 6, 30))},
            {"recycling_efficiency"},
            {"collection_rate"},
        ),
    ],
)
def test_a_filter_leaves_out_the_rates_it_does_not_apply_to(
    edge: tuple[Tracer, EdgeWorld], filters: dict[str, Any], present: set[str], absent: set[str]
) -> None:
    names = {r.name for r in compute_rates(edge[0], **filters).rates}
    assert present <= names and not absent & names


def test_chemistry_and_region_filters_narrow_the_facts(edge: tuple[Tracer, EdgeWorld]) -> None:
    lfp = compute_rates(edge[0], chemistry="lfp", year=2022)
    assert lfp.query["chemistry"] == "LFP"
    assert lfp.total("placed", "count", producer="catl", period="2022", chemistry="LFP").amount == 1
    hunan = compute_rates(edge[0], region="430000", year=2024)
    assert hunan.total("placed", "count", period="2024", region="430000").amount == 0
    assert hunan.total("recycled", "count", period="2024", region="430000").amount == 2


@pytest.mark.parametrize(
    "filters",
    [{}, {"producer": "byd"}, {"region": "430000", "year": 2024}, {"chemistry": "lfp"}],
    ids=["all", "producer", "region", "chemistry"],
)
def test_groups_gathered_in_the_figures_walk_equal_walks_of_their_own(
    edge: tuple[Tracer, EdgeWorld], filters: dict[str, Any]
) -> None:
    facts = RateFacts.from_projections(edge[0].projections)
    q = Query.build(facts, **filters)
    found = Producers(q)
    content = ContentGroups(q, found)
    recovery = RecoveryGroups(q, recovered_by_pack(facts), found)
    producer_groups(facts, q, sinks=(found.take, content.take, recovery.take))
    alone = recycled_content(facts, q), pack_recovery(facts, q)
    assert (recycled_content(facts, q, content), pack_recovery(facts, q, recovery)) == alone
    if not filters:  # the world has recycled content and recovered packs to compare
        assert all(any(r.numerator > 0 for r in rates) for rates in alone)


def test_evidence_pages_with_full_counts(edge: tuple[Tracer, EdgeWorld]) -> None:
    first = compute_rates(edge[0], year=2024, evidence_limit=1)
    rate = first.rate("collection_rate", "count", producer="catl", period="2024")
    assert len(rate.evidence.items) == 1 and rate.evidence.total_items == 3
    assert rate.evidence.cut_items == 2 and rate.evidence.cut_events == 2
    second = compute_rates(edge[0], year=2024, evidence_limit=1, evidence_offset=1)
    page = second.rate("collection_rate", "count", producer="catl", period="2024").evidence
    assert page.offset == 1 and page.items[0] > rate.evidence.items[0] and page.cut_items == 1


def test_days_are_china_standard_time_whatever_offset_an_event_carries() -> None:
    facts = RateFacts(role_of=lambda actor: "", resolve=lambda seqs: {})
    times = {
        "2025-12-31T23:59:00+08:00": date(2025, 12, 31),
        "2025-12-31T16:30:00+00:00": date(2026, 1, 1),  # 00:30 in Beijing
        "2025-12-31T15:59:00+00:00": date(2025, 12, 31),
        "2026-01-01T00:00:00+08:00": date(2026, 1, 1),
        "2025-12-31T23:00:00-05:00": date(2026, 1, 1),
    }
    for seq, when in enumerate(times, start=1):
        code = f"001PB1A00000{seq:02d}E390000042"
        facts.add(seq, f"e{seq}", "commission", "bm", "350000", when, {"item": code})
    days = [date.fromordinal(p.c_at.day) for p in facts.phys.values()]
    assert days == list(times.values())
    # The same wall-clock instant given as a datetime counts on the same day.
    facts.add(9, "e9", "commission", "bm", "350000", at(2025, 12, 31, 23), {"item": "X" * 24})
    assert date.fromordinal(facts.phys["X" * 24].c_at.day) == date(2025, 12, 31)


def test_evidence_counts_the_events_behind_its_items() -> None:
    # Two packs commissioned, retired and collected one event each, then recycled in one.
    facts = RateFacts(role_of=lambda actor: "recycler" if actor == "rec" else "",
                      resolve=lambda seqs: {s: f"e{s}" for s in seqs})  # fmt: skip
    codes = [f"001PB1A00000{n:02d}E390000042" for n in (1, 2)]
    days = iter(f"2024-0{m}-0{d}T10:00:00+08:00" for m in range(1, 10) for d in range(1, 10))
    events: list[tuple[str, str, dict[str, Any]]] = [
        *(("commission", "bm", {"item": c, "mass_kg": 300.0}) for c in codes),
        *(("retire", "am", {"item": c, "reason": "worn"}) for c in codes),
        *(("collect", "col", {"item": c, "mass_kg": 290.0}) for c in codes),
        ("recycle", "rec", {"inputs": [{"item": c, "mass_kg": 290.0} for c in codes],
                            "outputs": [lot("LOT-NFCB6HGGNV6JT", "steel_scrap", 100.0)]}),
    ]  # fmt: skip
    for seq, (kind, actor, data) in enumerate(events, start=1):
        facts.add(seq, f"e{seq}", kind, actor, "350000", next(days), data)
    report = compute_rates(facts, year=2024)
    counts = {
        figure: (ev.total_items, ev.total_events, len(ev.seqs))
        for figure in ("placed", "retired", "collected", "recycled")
        for ev in [report.total(figure, "count", producer="bm", period="2024").evidence]
    }
    assert counts == {
        "placed": (2, 2, 2),
        "retired": (2, 2, 2),
        "collected": (2, 2, 2),
        "recycled": (2, 1, 1),
    }


def test_facts_followed_live_equal_facts_read_from_the_tables(tmp_path: Any) -> None:
    tracer = open_tracer(str(tmp_path / "live.db"), note.Signer.generate("suyuan-log"))
    try:
        followed = RateFacts.follow(tracer)  # before any event: every fact arrives live
        build_edge_world(Scene(tracer))
        live, read = compute_rates(followed), compute_rates(facts_of(tracer))
        assert json.dumps(live.to_json(), sort_keys=True) == json.dumps(
            read.to_json(), sort_keys=True
        )
    finally:
        tracer.close()


def test_a_follower_stands_after_the_events_that_are_no_fact(scene: Scene) -> None:
    followed = RateFacts.follow(scene.tracer)
    code = scene.code()
    scene.submit("catl", {"type": "commission", "item": code, "mass_kg": 400.0})
    commissioned = followed.last_seq
    scene.submit("catl", {"type": "inspect", "item": code, "soh_pct": 99, "grade": "A"})
    read = facts_of(scene.tracer)
    assert followed.last_seq == read.last_seq > commissioned
    assert compute_rates(followed).to_json() == compute_rates(read).to_json()


def test_facts_as_of_a_log_position_hold_the_events_before_it(
    edge: tuple[Tracer, EdgeWorld],
) -> None:
    # The reference takes the events through the live path (each one replayed by the
    # custody rules, then folded in as a follower folds it) and stops before the cut.
    projections = edge[0].projections
    world = MemoryWorld()
    world.actors.update(projections.load_actors())
    replayed = list(stored_events(projections, world))
    whole = json.dumps(compute_rates(projections).to_json(), sort_keys=True)
    seen = set()
    end = replayed[-1].seq + 1
    for cut in [*range(0, end, 3), end, end + 10]:  # the last two: every event
        reference = RateFacts.from_projections(projections, upto=0)
        for accepted in replayed:
            if accepted.seq < cut:
                reference.apply(accepted)
        reference.last_seq = max(reference.last_seq, min(cut, end) - 1)  # non-events too
        as_of = RateFacts.from_projections(projections, upto=cut)
        assert as_of.last_seq == max(min(cut, end) - 1, -1)
        got = json.dumps(compute_rates(as_of).to_json(), sort_keys=True)
        assert got == json.dumps(compute_rates(reference).to_json(), sort_keys=True), cut
        seen.add(got)
    assert got == whole
    assert len(seen) > 5  # the cuts moved the rates


def test_facts_are_read_in_one_pass_in_log_order_on_sqlite(
    edge: tuple[Tracer, EdgeWorld],
) -> None:
    # Through the type index, SQLite would sort every fact row (bodies too) in a temporary
    # B-tree: more than linear in the log, and spilled to disk at a million packs.
    queries = [events_query("sqlite", 10**9), events_query("sqlite", 10**9, accepted_by=["c-1"])]
    with edge[0].projections.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        plans = [[row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {q}")] for q in queries]
    assert plans == [["SEARCH trace_events USING INTEGER PRIMARY KEY (rowid<?)"]] * 2


def test_only_a_cascade_operators_acceptances_are_read(edge: tuple[Tracer, EdgeWorld]) -> None:
    engine = edge[0].projections.engine
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        roles = dict(raw.execute("SELECT id, role FROM trace_actors").fetchall())
        intake = [a for a, role in roles.items() if role == Role.CASCADE_OPERATOR.value]
        read = raw.execute(events_query("sqlite", 10**9, accepted_by=intake)).fetchall()
        every = raw.execute(events_query("sqlite", 10**9)).fetchall()
    accepts = [row for row in every if row[2] == "accept"]
    assert intake and {roles[row[3]] for row in accepts} > {Role.CASCADE_OPERATOR.value}
    assert read == [
        row for row in every if row[2] != "accept" or roles[row[3]] == "cascade_operator"
    ]


def test_the_report_is_json(report: RateReport) -> None:
    data = json.loads(json.dumps(report.to_json()))
    assert data["query"]["periods"] == ["2022", "2023", "2024", "2025"]
    assert {"name", "scope", "numerator", "denominator", "value", "evidence"} <= set(
        data["rates"][0]
    )


def test_evidence_and_rate_value_types() -> None:
    ev = Evidence.of(
        {f"P{i}": float(i) for i in range(5)}, [(i, f"e{i}") for i in range(5)], limit=2
    )
    assert ev.items == ("P0", "P1") and ev.cut_items == 3 and ev.events == ("e0", "e1")
    with pytest.raises(ValueError, match="non-negative"):
        Evidence.of({}, [], limit=-1)
    zero = Rate.ratio("r", {}, 0.0, 0.0, unit="kg", undefined="nothing")
    assert (zero.value, zero.undefined_reason, zero.target) == (None, "nothing", None)
    with pytest.raises(ValueError, match="ends after it starts"):
        Period.between(date(2025, 2, 1), date(2025, 1, 1))
