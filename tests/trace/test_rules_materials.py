"""Recycled material into new production, and process reagents in refining steps."""

from __future__ import annotations

import pytest

from tests.trace.world import Sim, body, lot, refused
from trace.state import Status


@pytest.fixture
def sim() -> Sim:
    return Sim.cast()


def _refined_lot_at_maker(sim: Sim, kg: float = 50.0, ni: float = 11.0) -> str:
    lot_id = sim.new_lot(material="nickel_sulphate", mass=kg, content={"Ni": ni})  # type: ignore[arg-type]
    sim.hand("recycler", "catl", [lot_id], transfer_ownership=True)
    return lot_id


def test_a_new_pack_consumes_material_lots_and_names_them_as_sources(sim: Sim) -> None:
    lot_id = _refined_lot_at_maker(sim)
    code = sim.code()
    materials = [{"item": lot_id, "mass_kg": 20.0}]
    sim.run("catl", body("commission", item=code, mass_kg=400.0, materials=materials))
    pack = sim.item(code)
    assert pack.sources == (lot_id,)
    left = sim.item(lot_id)
    assert left.status is Status.IN_STOCK and left.mass_kg == pytest.approx(30.0)
    assert left.content_kg["Ni"] == pytest.approx(11.0 * 30 / 50)
    assert left.head == pack.head  # the commission is in the lot's history too


def test_taking_a_whole_lot_consumes_it(sim: Sim) -> None:
    lot_id = _refined_lot_at_maker(sim)
    sim.run(
        "catl", body("commission", item=sim.code(), materials=[{"item": lot_id, "mass_kg": 50.0}])
    )
    assert sim.item(lot_id).status is Status.CONSUMED


def test_a_maker_cannot_take_more_than_a_lot_holds_or_a_lot_it_does_not_hold(sim: Sim) -> None:
    lot_id = _refined_lot_at_maker(sim)
    data = body("commission", item=sim.code(), materials=[{"item": lot_id, "mass_kg": 60.0}])
    refused(sim, "catl", data, "mass-balance", "holds 50 kg")
    elsewhere = sim.new_lot(material="nickel_sulphate", mass=10.0)  # type: ignore[arg-type]
    data = body("commission", item=sim.code(), materials=[{"item": elsewhere, "mass_kg": 5.0}])
    refused(sim, "catl", data, "custodian-only", elsewhere)


def test_declared_reagents_let_refined_products_outweigh_the_black_mass(sim: Sim) -> None:
    black = sim.new_lot(mass=100, content={"Ni": 20})
    sulphate = lot(sim.lot_id(), "nickel_sulphate", 88, {"Ni": 19.5})
    data = body("lot_smelt", inputs=[{"item": black, "mass_kg": 100}], outputs=[sulphate])
    sim.run("recycler", {**data, "reagents_kg": 0})  # within the mass of the input alone
    black2 = sim.new_lot(mass=100, content={"Ni": 20})
    heavy = lot(sim.lot_id(), "nickel_sulphate", 88 * 1.2, {"Ni": 19.5})
    data = body("lot_smelt", inputs=[{"item": black2, "mass_kg": 100}], outputs=[heavy])
    refused(sim, "recycler", data, "mass-balance", "weigh")
    sim.run("recycler", {**data, "reagents_kg": 10})
