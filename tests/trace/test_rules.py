"""The custody rules, rule by rule: each happy path and each refusal by its rule name."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from schemas.actors import Role
from schemas.codes import ProductType, recode_for_cascade
from schemas.composition import estimate_composition
from schemas.events import EventType
from schemas.lots import Material
from tests.trace.world import CAST, VIN, Sim, body, fake_event_id, lot, refused, snapshot
from trace.errors import ChainError, InvalidEvent, UnknownActor, UnknownItem
from trace.rules import ROLES, check_event
from trace.state import EuStatus, HandoverStatus, ItemKind, Status

NCM = estimate_composition("NCM622", 60)  # 313.8 kg; Li 6.291, Ni 31.923, Co 10.684 kg
NCM_JSON = NCM.model_dump(mode="json")
OTHER_VIN = "LGXCE4CB5N0000002"


@pytest.fixture
def sim() -> Sim:
    return Sim.cast()


def pending(handover: str) -> str:
    return re.escape(f"pending handover {handover}")


def recycle(inputs: dict[str, float], *outputs: dict[str, Any]) -> dict[str, Any]:
    masses = [{"item": item, "mass_kg": kg} for item, kg in inputs.items()]
    return body("recycle", inputs=masses, outputs=list(outputs))


def smelt(inputs: dict[str, float], *outputs: dict[str, Any]) -> dict[str, Any]:
    return {**recycle(inputs, *outputs), "type": "lot_smelt"}


def dismantle(item: str, kg: float, *outputs: dict[str, Any], parts: Any = ()) -> dict[str, Any]:
    return body("dismantle", item=item, mass_kg=kg, parts=list(parts), outputs=list(outputs))


def repurpose(item: str, new_code: str) -> dict[str, Any]:
    return body("repurpose", item=item, new_code=new_code, new_use="energy_storage")


def correction(item: str, **fields: Any) -> dict[str, Any]:
    return body("correction", corrects=fake_event_id(0), item=item, reason="misread", fields=fields)


def inspect(item: str, soh: float = 72, grade: str = "B") -> dict[str, Any]:
    return body("inspect", item=item, soh_pct=soh, grade=grade)


# --- actors and roles ---


def test_an_unregistered_actor_is_refused(sim: Sim) -> None:
    with pytest.raises(UnknownActor, match="'ghost' is not a registered"):
        sim.run("ghost", body("commission", item=sim.code()))


@pytest.mark.parametrize("kind", ["commission", "inspect", "correction"])
def test_auditors_write_nothing(sim: Sim, kind: str) -> None:
    code = sim.commission()
    data = {
        "commission": body("commission", item=sim.code()),
        "inspect": inspect(code),
        "correction": correction(code, mass_kg=401),
    }[kind]
    refused(sim, "auditor", data, "role", "auditors read the log, they write no events")


ROLE_CASES: list[tuple[str, Callable[[Sim, str], dict[str, Any]]]] = [
    ("cascade", lambda s, p: body("commission", item=s.code())),
    ("dealer", lambda s, p: body("assemble", parent=p, children=[s.code(ProductType.MODULE)])),
    ("collector", lambda s, p: body("install", item=p, vin=VIN)),
    ("recycler", lambda s, p: repurpose(p, s.code())),
    ("dealer", lambda s, p: body("collect", item=p)),
    ("byd", lambda s, p: dismantle(p, 400)),
    ("scrap", lambda s, p: recycle({p: 400}, lot(s.lot_id(), "black_mass", 100))),
    ("collector", lambda s, p: body("lot_create", **lot(s.lot_id(), "steel_scrap", 100))),
    ("catl", lambda s, p: smelt({s.lot_id(): 100}, lot(s.lot_id(), "black_mass", 100))),
]


@pytest.mark.parametrize(("actor", "build"), ROLE_CASES)
def test_each_event_type_is_written_by_its_roles(
    sim: Sim, actor: str, build: Callable[[Sim, str], dict[str, Any]]
) -> None:
    data = build(sim, sim.commission())
    role = CAST[actor][0]
    assert role not in ROLES[EventType(data["type"])]
    refused(sim, actor, data, "role", f"{actor} is a {role.value}; a {data['type']} is written by")


# --- the chain and time order ---


def test_a_stale_prev_is_a_chain_error(sim: Sim) -> None:
    code = sim.commission()
    first = sim.item(code).head
    sim.run("catl", inspect(code))
    with pytest.raises(ChainError, match="stale view or out of order"):
        sim.run("catl", body("retire", item=code, reason="x"), prev={code: first})


def test_null_prev_for_an_existing_item_is_a_chain_error(sim: Sim) -> None:
    code = sim.commission()
    with pytest.raises(ChainError, match=f"prev of {code} is None"):
        sim.run("catl", body("retire", item=code, reason="x"), prev={code: None})


def test_a_new_item_has_a_null_prev(sim: Sim) -> None:
    code = sim.code()
    with pytest.raises(ChainError, match="is new here, so its prev must be null"):
        sim.run("catl", body("commission", item=code), prev={code: fake_event_id(9)})


def test_an_item_never_created_is_unknown(sim: Sim) -> None:
    with pytest.raises(UnknownItem, match="never commissioned or created"):
        sim.run("catl", inspect(sim.code()))


def test_an_item_is_created_once(sim: Sim) -> None:
    code = sim.commission()
    data = body("commission", item=code)
    refused(sim, "catl", data, "already-exists", f"{code} already exists")
    data = body("lot_create", **lot(sim.new_lot(), "black_mass", 5))
    refused(sim, "recycler", data, "already-exists", "would create it again")


def test_events_keep_time_order_per_item(sim: Sim) -> None:
    code = sim.commission()
    last = sim.item(code).last_time
    early = last - timedelta(seconds=1)
    refused(sim, "catl", inspect(code), "time-order", "cannot come before it", at=early)
    sim.run("catl", inspect(code, 99), at=last)  # the same instant is not earlier
    assert sim.item(code).soh_pct == 99


# --- commission ---


@pytest.mark.parametrize("product", list(ProductType))
def test_commission_creates_an_item_held_owned_and_produced_by_the_actor(
    sim: Sim, product: ProductType
) -> None:
    code = sim.code(product)
    event_id = sim.run("byd", body("commission", item=code, mass_kg=12.5))
    state = sim.item(code)
    assert state.kind is ItemKind[product.name] and state.status is Status.IN_STOCK
    assert state.custodian == state.owner == state.producer == "byd"
    assert (state.head, state.last_time, state.region) == (event_id, sim.clock, "440000")
    assert (state.mass_kg, state.eu_status, state.pending_handover) == (
        12.5,
        EuStatus.ORIGINAL,
        None,
    )


def test_commission_records_the_composition_by_element(sim: Sim) -> None:
    code = sim.code()
    sim.run("catl", body("commission", item=code, composition=NCM_JSON))
    state = sim.item(code)
    assert (state.mass_kg, state.chemistry, state.energy_kwh) == (313.8, "NCM622", 60)
    assert state.content_kg["Li"] == 6.291 and all(type(k) is str for k in state.content_kg)


def test_commission_mass_agrees_with_its_composition(sim: Sim) -> None:
    data = body("commission", item=sim.code(), mass_kg=400, composition=NCM_JSON)
    match = "at 400 kg but its composition weighs 313.8 kg"
    refused(sim, "catl", data, "composition-mass", match)


def test_lots_are_not_commissioned(sim: Sim) -> None:
    data = body("commission", item=sim.lot_id())
    refused(sim, "catl", data, "battery-only", "lots are created by lot_create")


# --- assemble and disassemble ---


def test_assembly_links_parts_to_their_parent(sim: Sim) -> None:
    pack, modules, cells = sim.built_pack()
    assert sim.item(pack).children == tuple(modules)
    assert sim.item(modules[0]).children == tuple(cells[:2])
    for module in modules:
        assert (sim.item(module).status, sim.item(module).parent) == (Status.ASSEMBLED, pack)
    assert sim.item(cells[3]).parent == modules[1]


def test_a_part_is_assembled_once(sim: Sim) -> None:
    _, modules, cells = sim.built_pack()
    data = body("assemble", parent=sim.commission(ProductType.MODULE), children=cells[:1])
    refused(sim, "catl", data, "already-assembled", f"already assembled in {modules[0]}")


def test_assembly_needs_the_parts_in_stock_and_held(sim: Sim) -> None:
    module = sim.commission(ProductType.MODULE)
    sim.run("catl", body("retire", item=module, reason="failed test"))
    pack = sim.commission()
    data = body("assemble", parent=pack, children=[module])
    refused(sim, "catl", data, "not-in-stock", "retired parts are re-coded by repurpose")
    theirs = sim.commission(ProductType.MODULE, by="byd")
    data = body("assemble", parent=pack, children=[theirs])
    refused(sim, "catl", data, "custodian-only", f"{theirs} is held by byd")


def test_an_installed_pack_is_not_assembled_or_disassembled(sim: Sim) -> None:
    pack, modules, _ = sim.built_pack()
    sim.hand("catl", "byd", [pack])
    sim.run("byd", body("install", item=pack, vin=VIN))
    data = body("assemble", parent=pack, children=[sim.commission(ProductType.MODULE, by="byd")])
    refused(sim, "byd", data, "installed-item", f"installed in vehicle {VIN}")
    data = body("disassemble", parent=pack, children=modules[:1])
    refused(sim, "byd", data, "installed-item", "remove it before you disassemble")


@pytest.mark.parametrize("kind", ["inspect", "handover", "retire"])
def test_an_assembled_part_acts_through_its_parent(sim: Sim, kind: str) -> None:
    pack, modules, _ = sim.built_pack()
    data = {
        "inspect": inspect(modules[0]),
        "handover": body("handover", items=modules[:1], to="byd"),
        "retire": body("retire", item=modules[0], reason="x"),
    }[kind]
    refused(sim, "catl", data, "assembled-acts-through-parent", f"assembled in {pack}")


def test_disassembly_frees_the_listed_parts(sim: Sim) -> None:
    pack, modules, cells = sim.built_pack()
    event_id = sim.run("catl", body("disassemble", parent=pack, children=modules[:1]))
    freed = sim.item(modules[0])
    assert (freed.status, freed.parent, freed.head) == (Status.IN_STOCK, None, event_id)
    assert freed.children == tuple(cells[:2]) and freed.eu_status is EuStatus.ORIGINAL
    assert sim.item(pack).children == (modules[1],)
    assert sim.item(modules[1]).status is Status.ASSEMBLED


def test_only_parts_of_the_parent_are_disassembled(sim: Sim) -> None:
    pack, _, _ = sim.built_pack()
    _, elsewhere, _ = sim.built_pack()
    for module in (sim.commission(ProductType.MODULE), elsewhere[0]):
        data = body("disassemble", parent=pack, children=[module])
        refused(sim, "catl", data, "not-a-part", f"{module} is not a part of {pack}")


def test_parts_of_waste_are_waste(sim: Sim) -> None:
    pack, modules, _ = sim.built_pack()
    sim.run("catl", body("retire", item=pack, reason="recall"))
    sim.run("catl", body("disassemble", parent=pack, children=modules))
    part = sim.item(modules[0])
    assert (part.status, part.eu_status) == (Status.IN_STOCK, EuStatus.WASTE)


# --- install and remove ---


def test_install_and_remove_a_pack(sim: Sim) -> None:
    pack = sim.pack_at("byd")
    sim.run("byd", body("install", item=pack, vin=VIN))
    assert (sim.item(pack).status, sim.item(pack).vin) == (Status.INSTALLED, VIN)
    again = body("install", item=pack, vin=OTHER_VIN)
    refused(sim, "byd", again, "already-installed", f"already installed in vehicle {VIN}")
    wrong = body("remove", item=pack, vin=OTHER_VIN, reason="swap")
    refused(sim, "byd", wrong, "wrong-vehicle", f"installed in vehicle {VIN}, not {OTHER_VIN}")
    sim.run("byd", body("remove", item=pack, vin=VIN, reason="battery swap"))
    assert (sim.item(pack).status, sim.item(pack).vin) == (Status.IN_STOCK, None)
    again = body("remove", item=pack, vin=VIN, reason="again")
    refused(sim, "byd", again, "not-installed", "not installed in a vehicle")


def test_only_packs_are_installed(sim: Sim) -> None:
    data = body("install", item=sim.commission(ProductType.MODULE, by="byd"), vin=VIN)
    refused(sim, "byd", data, "pack-only", "only packs are installed")


@pytest.mark.parametrize(
    ("fate", "match"),
    [
        ("retired", "a retired pack is waste"),
        ("collected", "is collected .* cannot go back into a vehicle"),
        ("recycled", "was recycled; it cannot be installed"),
    ],
)
def test_a_retired_pack_is_not_installed(sim: Sim, fate: str, match: str) -> None:
    pack = sim.retired_at("byd")
    installer = "byd"
    if fate == "collected":
        sim.hand("byd", "collector", [pack])
        sim.run("collector", body("collect", item=pack))
        sim.hand("collector", "dealer", [pack])
        installer = "dealer"
    elif fate == "recycled":
        sim.hand("byd", "recycler", [pack])
        sim.run("recycler", body("collect", item=pack))
        sim.run("recycler", recycle({pack: 400}, lot(sim.lot_id(), "black_mass", 200)))
    data = body("install", item=pack, vin=VIN)
    refused(sim, installer, data, "retired-not-installable", match)


# --- handover and its answers ---


def test_a_handover_freezes_its_items_until_answered(sim: Sim) -> None:
    pack = sim.commission()
    offer = sim.run("catl", body("handover", items=[pack], to="byd", reference="PO-7"))
    state, handover = sim.item(pack), sim.handover(offer)
    assert (state.custodian, state.pending_handover, state.head) == ("catl", offer, offer)
    assert (handover.sender, handover.receiver, handover.items) == ("catl", "byd", (pack,))
    assert handover.status is HandoverStatus.PENDING and handover.created == sim.clock
    for actor, data in [
        ("catl", body("handover", items=[pack], to="dealer")),
        ("catl", inspect(pack)),
        ("byd", body("install", item=pack, vin=VIN)),
        ("catl", correction(pack, mass_kg=401)),
    ]:
        refused(sim, actor, data, "pending-handover", pending(offer))


def test_only_the_custodian_hands_over(sim: Sim) -> None:
    pack = sim.commission()
    data = body("handover", items=[pack], to="dealer")
    refused(sim, "byd", data, "custodian-only", f"{pack} is held by catl")


def test_the_receiver_is_registered_someone_else_and_not_an_auditor(sim: Sim) -> None:
    pack = sim.commission()
    with pytest.raises(UnknownActor, match="receiver 'ghost'"):
        sim.run("catl", body("handover", items=[pack], to="ghost"))
    data = body("handover", items=[pack], to="catl")
    refused(sim, "catl", data, "self-handover", "cannot hand items over to itself")
    data = body("handover", items=[pack], to="auditor")
    refused(sim, "catl", data, "role", "auditors take no custody")


def test_only_the_owner_transfers_ownership(sim: Sim) -> None:
    pack = sim.commission()
    sim.hand("catl", "byd", [pack])  # custody only
    assert (sim.item(pack).custodian, sim.item(pack).owner) == ("byd", "catl")
    data = body("handover", items=[pack], to="dealer", transfer_ownership=True)
    refused(sim, "byd", data, "owner-only", "owned by catl")


def test_accept_moves_custody_and_ownership_with_every_part(sim: Sim) -> None:
    pack, modules, cells = sim.built_pack()
    heads = {part: sim.item(part).head for part in modules + cells}
    offer = sim.run("catl", body("handover", items=[pack], to="byd", transfer_ownership=True))
    accept = sim.run("byd", body("accept", handover=offer, items=[pack]))
    state = sim.item(pack)
    assert (state.custodian, state.owner, state.pending_handover) == ("byd", "byd", None)
    assert (state.head, state.region, state.producer) == (accept, "440000", "catl")
    for part in modules + cells:
        moved = sim.item(part)
        assert (moved.custodian, moved.owner, moved.region) == ("byd", "byd", "440000")
        assert moved.head == heads[part]  # parts are not on the event: their chain stays
    handover = sim.handover(offer)
    assert (handover.status, handover.closed_by) == (HandoverStatus.ACCEPTED, accept)
    data = body("accept", handover=offer, items=[pack])
    refused(sim, "byd", data, "handover-closed", "already accepted")


def test_an_answer_comes_from_its_party_for_exactly_the_offered_items(sim: Sim) -> None:
    packs = [sim.commission() for _ in range(2)]
    offer = sim.run("catl", body("handover", items=packs, to="byd"))
    accept = body("accept", handover=offer, items=packs)
    refused(sim, "dealer", accept, "receiver-only", r"only the receiver \(byd\)")
    reject = body("reject", handover=offer, items=packs, reason="x")
    refused(sim, "catl", reject, "receiver-only", "may reject it, not catl")
    cancel = body("cancel", handover=offer, items=packs, reason="x")
    refused(sim, "byd", cancel, "sender-only", r"only the sender \(catl\)")
    partial = body("accept", handover=offer, items=packs[:1])
    refused(sim, "byd", partial, "handover-items", "names exactly those items")
    # Items waiting on one handover cannot be answered under another's id.
    ghost = body("accept", handover=fake_event_id(999), items=packs)
    refused(sim, "byd", ghost, "pending-handover", pending(offer))


def test_an_answer_to_an_unknown_handover_is_refused(sim: Sim) -> None:
    data = body("dispute", handover=fake_event_id(9), items=[sim.commission()], reason="x")
    refused(sim, "catl", data, "unknown-handover", "no handover")


@pytest.mark.parametrize(
    ("answer", "by", "status"),
    [("reject", "byd", HandoverStatus.REJECTED), ("cancel", "catl", HandoverStatus.CANCELLED)],
)
def test_reject_and_cancel_leave_custody_where_it_was(
    sim: Sim, answer: str, by: str, status: HandoverStatus
) -> None:
    pack = sim.commission()
    offer = sim.run("catl", body("handover", items=[pack], to="byd"))
    closed = sim.run(by, body(answer, handover=offer, items=[pack], reason="wrong spec"))
    state = sim.item(pack)
    assert (state.custodian, state.pending_handover, state.head) == ("catl", None, closed)
    assert (sim.handover(offer).status, sim.handover(offer).closed_by) == (status, closed)
    data = body("accept", handover=offer, items=[pack])
    refused(sim, "byd", data, "handover-closed", f"already {status.value}")
    sim.hand("catl", "dealer", [pack])  # the sender may offer it again
    assert sim.item(pack).custodian == "dealer"


@pytest.mark.parametrize("by", ["catl", "byd"])
@pytest.mark.parametrize("accepted", [True, False])
def test_either_party_disputes_a_pending_or_accepted_handover(
    sim: Sim, by: str, accepted: bool
) -> None:
    pack = sim.commission()
    offer = sim.run("catl", body("handover", items=[pack], to="byd"))
    if accepted:
        sim.run("byd", body("accept", handover=offer, items=[pack]))
    custodian = sim.item(pack).custodian
    sim.run(by, body("dispute", handover=offer, items=[pack], reason="short delivery"))
    assert sim.handover(offer).disputed and sim.item(pack).disputed
    assert sim.item(pack).custodian == custodian
    status = HandoverStatus.ACCEPTED if accepted else HandoverStatus.PENDING
    assert sim.handover(offer).status is status


def test_only_the_parties_dispute_and_only_what_moved(sim: Sim) -> None:
    pack = sim.commission()
    offer = sim.run("catl", body("handover", items=[pack], to="byd"))
    data = body("dispute", handover=offer, items=[pack], reason="x")
    refused(sim, "dealer", data, "party-only", "only the parties")
    sim.run("catl", body("cancel", handover=offer, items=[pack], reason="x"))
    refused(sim, "byd", data, "handover-closed", "was cancelled; nothing moved")


# --- inspect, retire, collect ---


def test_inspection_grades_a_battery_held_by_the_inspector(sim: Sim) -> None:
    pack = sim.commission()
    sim.run("catl", inspect(pack, 87.5, "B"))
    assert (sim.item(pack).soh_pct, sim.item(pack).grade) == (87.5, "B")
    refused(sim, "byd", inspect(pack), "custodian-only", "only its custodian may inspect")
    refused(sim, "recycler", inspect(sim.new_lot()), "battery-only", "is a lot")


def test_retirement_makes_waste_and_leaves_the_vehicle(sim: Sim) -> None:
    pack = sim.pack_at("byd")
    sim.run("byd", body("install", item=pack, vin=VIN))
    sim.run("byd", body("retire", item=pack, reason="SoH below 80 %"))
    state = sim.item(pack)
    assert (state.status, state.eu_status, state.vin) == (Status.RETIRED, EuStatus.WASTE, None)
    data = body("retire", item=pack, reason="again")
    refused(sim, "byd", data, "already-retired", "already retired")
    data = body("retire", item=sim.new_lot(), reason="x")
    refused(sim, "recycler", data, "battery-only", "is a lot")


def test_collection_takes_a_retired_item_into_storage(sim: Sim) -> None:
    pack = sim.retired_at("byd")
    collect = body("collect", item=pack)
    refused(sim, "collector", collect, "custodian-only", "held by byd")
    sim.hand("byd", "collector", [pack])
    heavy = body("collect", item=pack, mass_kg=403)
    refused(sim, "collector", heavy, "recorded-mass", "403 kg but was recorded at 400 kg")
    sim.run("collector", body("collect", item=pack, mass_kg=401.5))
    assert (sim.item(pack).status, sim.item(pack).mass_kg) == (Status.COLLECTED, 401.5)
    refused(sim, "collector", collect, "not-retired", "is collected; only retired items")
    fresh = body("collect", item=sim.pack_at("collector"))
    refused(sim, "collector", fresh, "not-retired", "is in_stock")


# --- repurpose ---


def graded_at_cascade(sim: Sim, grade: str | None = "B") -> str:
    pack = sim.retired_at("cascade")
    if grade is not None:
        sim.run("cascade", inspect(pack, 72, grade))
    return pack


def test_repurpose_recodes_the_item_and_keeps_its_origin(sim: Sim) -> None:
    pack, new_code = graded_at_cascade(sim), sim.code()
    event_id = sim.run("cascade", repurpose(pack, new_code))
    old, new = sim.item(pack), sim.item(new_code)
    assert (old.status, old.successor, old.head) == (Status.REPURPOSED, new_code, event_id)
    assert (new.status, new.eu_status) == (Status.IN_STOCK, EuStatus.REPURPOSED)
    assert (new.original, new.head, new.kind) == (pack, event_id, ItemKind.PACK)
    assert new.custodian == new.owner == new.producer == "cascade"
    assert (new.mass_kg, new.soh_pct, new.grade) == (400.0, 72, "B")
    refused(sim, "cascade", inspect(pack), "terminal-item", "was repurposed; its record only")


def test_repurposed_parts_live_on_in_the_new_code(sim: Sim) -> None:
    pack, modules, _ = sim.built_pack()
    sim.run("catl", body("retire", item=pack, reason="recall"))
    sim.hand("catl", "cascade", [pack])
    sim.run("cascade", inspect(pack))
    new_code = sim.code()
    sim.run("cascade", repurpose(pack, new_code))
    assert sim.item(new_code).children == tuple(modules) and sim.item(pack).children == ()
    assert all(sim.item(m).parent == new_code for m in modules)
    sim.run("cascade", body("disassemble", parent=new_code, children=modules))
    assert sim.item(modules[0]).status is Status.IN_STOCK


def test_repurpose_needs_a_grade_that_is_not_scrap(sim: Sim) -> None:
    data = repurpose(graded_at_cascade(sim, None), sim.code())
    refused(sim, "cascade", data, "not-inspected", "has not been inspected")
    data = repurpose(graded_at_cascade(sim, "scrap"), sim.code())
    refused(sim, "cascade", data, "scrap-grade", "graded scrap")


def test_a_recode_keeps_the_product_type_and_is_new(sim: Sim) -> None:
    pack = graded_at_cascade(sim)
    data = repurpose(pack, sim.code(ProductType.MODULE))
    refused(sim, "cascade", data, "recode-type", "a re-code keeps the product type")
    taken = sim.commission()
    refused(sim, "cascade", repurpose(pack, taken), "already-exists", f"{taken} already exists")


def test_an_installed_pack_is_not_repurposed(sim: Sim) -> None:
    sim.add_actor("swap-co", Role.CASCADE_OPERATOR)
    new_code = sim.code()
    sim.run("cascade", repurpose(graded_at_cascade(sim), new_code))
    sim.hand("cascade", "byd", [new_code])
    sim.run("byd", body("install", item=new_code, vin=VIN))  # a second life on wheels
    sim.hand("byd", "swap-co", [new_code])
    data = repurpose(new_code, sim.code())
    refused(sim, "swap-co", data, "installed-item", "remove and retire it")


# --- dismantle ---


def test_dismantling_frees_parts_and_yields_lots(sim: Sim) -> None:
    pack, modules, cells = sim.built_pack()
    sim.run("catl", body("retire", item=pack, reason="crash damage"))
    sim.hand("catl", "recycler", [pack])
    black, steel = sim.lot_id(), sim.lot_id()
    outputs = [lot(black, "black_mass", 150, {"Li": 5}), lot(steel, "steel_scrap", 30)]
    event_id = sim.run("recycler", dismantle(pack, 300, *outputs, parts=modules))
    assert (sim.item(pack).status, sim.item(pack).children) == (Status.DISMANTLED, ())
    for module in modules:
        part = sim.item(module)
        assert (part.status, part.parent, part.head) == (Status.IN_STOCK, None, event_id)
        assert (part.custodian, part.eu_status) == ("recycler", EuStatus.WASTE)
    assert sim.item(cells[0]).parent == modules[0]
    made = sim.item(black)
    assert (made.kind, made.material, made.mass_kg) == (ItemKind.LOT, "black_mass", 150)
    assert (made.sources, made.content_kg, made.producer) == ((pack,), {"Li": 5.0}, "recycler")
    assert (made.custodian, made.region) == ("recycler", "430000")


def test_dismantling_balances_mass_within_the_tolerance(sim: Sim) -> None:
    pack = sim.retired_at("recycler")  # 400 kg on record
    over = dismantle(pack, 400, lot(sim.lot_id(), "black_mass", 402.1))
    refused(sim, "recycler", over, "mass-balance", "outputs weigh 402.1 kg, more than the 400 kg")
    inflated = dismantle(pack, 403, lot(sim.lot_id(), "black_mass", 300))
    refused(sim, "recycler", inflated, "recorded-mass", "at 403 kg but was recorded at 400 kg")
    # Declared lighter than the record: the balance is against the declaration.
    light = dismantle(pack, 350, lot(sim.lot_id(), "black_mass", 351))
    refused(sim, "recycler", light, "mass-balance", "more than the 350 kg", tolerance=0.0)
    sim.run("recycler", dismantle(pack, 400, lot(sim.lot_id(), "black_mass", 401.9)))
    assert sim.item(pack).status is Status.DISMANTLED


def test_dismantling_accounts_for_every_part(sim: Sim) -> None:
    pack, modules, _ = sim.built_pack()
    sim.run("catl", body("retire", item=pack, reason="recall"))
    sim.hand("catl", "recycler", [pack])
    some = dismantle(pack, 300, lot(sim.lot_id(), "black_mass", 100), parts=modules[:1])
    refused(sim, "recycler", some, "has-parts", f"still holds assembled parts {modules[1]}")
    stranger = sim.commission(ProductType.MODULE)
    wrong = dismantle(pack, 300, parts=[*modules, stranger])
    refused(sim, "recycler", wrong, "not-a-part", f"{stranger} is not a part of {pack}")
    heavy = dismantle(pack, 300, lot(sim.lot_id(), "black_mass", 190), parts=modules)
    refused(sim, "recycler", heavy, "mass-balance", "outputs weigh 310 kg")


def test_dismantling_needs_a_retired_battery_and_some_output(sim: Sim) -> None:
    fresh = sim.pack_at("recycler")
    data = dismantle(fresh, 400, lot(sim.lot_id(), "black_mass", 100))
    refused(sim, "recycler", data, "not-retired", "or items in stock graded scrap")
    sim.run("recycler", inspect(fresh, 20, "scrap"))
    sim.run("recycler", data)  # stock graded scrap is dismantled
    retired = sim.retired_at("recycler")
    refused(sim, "recycler", dismantle(retired, 400), "no-outputs", "vanish from the record")
    data = dismantle(sim.new_lot(), 100, lot(sim.lot_id(), "black_mass", 50))
    refused(sim, "recycler", data, "battery-only", "is a lot")


# --- recycle and the lot steps ---


def test_recycling_consumes_inputs_into_new_lots(sim: Sim) -> None:
    pack = sim.retired_at("recycler", collect=True, composition=NCM_JSON, mass_kg=None)
    black = sim.new_lot(mass=50, content={"Li": 1.5, "Ni": 7})
    li, ni = sim.lot_id(), sim.lot_id()
    outputs = [
        lot(li, "lithium_carbonate", 40, {"Li": 7.5}),
        lot(ni, "nickel_sulphate", 150, {"Ni": 33}),
    ]
    event_id = sim.run("recycler", recycle({pack: 313.8, black: 50}, *outputs))
    assert (sim.item(pack).status, sim.item(black).status) == (Status.RECYCLED, Status.CONSUMED)
    assert sim.item(li).sources == (pack, black) and sim.item(ni).head == event_id
    assert sim.item(ni).material == "nickel_sulphate"


def test_recycling_takes_collected_batteries_without_parts(sim: Sim) -> None:
    retired = sim.retired_at("recycler")
    data = recycle({retired: 400}, lot(sim.lot_id(), "black_mass", 100))
    refused(sim, "recycler", data, "not-collected", "collected .* before they are recycled")
    pack, _, _ = sim.built_pack()
    sim.run("catl", body("retire", item=pack, reason="recall"))
    sim.hand("catl", "recycler", [pack])
    sim.run("recycler", body("collect", item=pack))
    data = recycle({pack: 300}, lot(sim.lot_id(), "black_mass", 100))
    refused(sim, "recycler", data, "has-parts", "still holds assembled parts")


def test_recycling_balances_mass_and_each_element(sim: Sim) -> None:
    pack = sim.retired_at("recycler", collect=True, composition=NCM_JSON, mass_kg=None)
    heavy = recycle({pack: 313.8}, lot(sim.lot_id(), "black_mass", 320))
    refused(sim, "recycler", heavy, "mass-balance", "weigh 320 kg, more than the 313.8 kg")
    li = recycle({pack: 313.8}, lot(sim.lot_id(), "lithium_carbonate", 40, {"Li": 7}))
    refused(sim, "recycler", li, "element-balance", "7 kg of Li, more than the 6.291 kg")
    fe = recycle({pack: 313.8}, lot(sim.lot_id(), "steel_scrap", 40, {"Fe": 1}))
    refused(sim, "recycler", fe, "element-balance", "1 kg of Fe, more than the 0 kg")
    over = recycle({pack: 320}, lot(sim.lot_id(), "black_mass", 100))
    refused(sim, "recycler", over, "recorded-mass", "declared at 320 kg")


def test_elements_are_not_balanced_against_unknown_content(sim: Sim) -> None:
    black = sim.new_lot(mass=100)  # no content recorded
    sim.run("recycler", smelt({black: 100}, lot(sim.lot_id(), "lithium_carbonate", 50, {"Li": 9})))
    assert sim.item(black).status is Status.CONSUMED


def test_smelting_takes_lots_only_and_balances_elements(sim: Sim) -> None:
    pack = sim.retired_at("recycler", collect=True)
    data = smelt({pack: 400}, lot(sim.lot_id(), "black_mass", 100))
    refused(sim, "recycler", data, "lot-only", "only lots can be smelted")
    black = sim.new_lot(mass=100, content={"Ni": 20})
    data = smelt({black: 100}, lot(sim.lot_id(), "nickel_sulphate", 100, {"Ni": 21}))
    refused(sim, "recycler", data, "element-balance", "21 kg of Ni")


def test_lot_create_makes_a_lot_of_the_actor(sim: Sim) -> None:
    steel = sim.lot_id()
    record = lot(steel, "steel_scrap", 850)
    record["lot"]["grade"] = {"standard": "GB/T 39733-2024", "designation": "LRS304"}
    sim.run("scrap", body("lot_create", **record))
    state = sim.item(steel)
    assert (state.kind, state.status, state.material) == (
        ItemKind.LOT,
        Status.IN_STOCK,
        "steel_scrap",
    )
    assert (state.mass_kg, state.grade, state.producer) == (850, "GB/T 39733-2024 LRS304", "scrap")


def test_a_split_divides_a_lot_without_loss(sim: Sim) -> None:
    steel = sim.new_lot("scrap", Material.STEEL_SCRAP, 1000)
    a, b = sim.lot_id(), sim.lot_id()

    def split(one: float, two: float, material: str = "steel_scrap") -> dict[str, Any]:
        return body("lot_split", lot=steel, parts=[lot(a, material, one), lot(b, material, two)])

    refused(sim, "scrap", split(600, 406), "mass-balance", "outputs weigh 1006 kg")
    refused(sim, "scrap", split(600, 390), "mass-lost", "weigh 990 kg of the 1000 kg")
    refused(sim, "scrap", split(600, 400, "copper_scrap"), "material-mismatch", "mixes materials")
    sim.run("scrap", split(600, 400))
    assert sim.item(steel).status is Status.CONSUMED and sim.item(a).sources == (steel,)
    parts = [lot(sim.lot_id(), "steel_scrap", 1) for _ in range(2)]
    data = body("lot_split", lot=sim.pack_at("scrap"), parts=parts)
    refused(sim, "scrap", data, "lot-only", "only lots can be split")
    refused(sim, "scrap", body("lot_split", lot=steel, parts=parts), "terminal-item", "consumed")


def test_a_merge_joins_lots_of_one_material(sim: Sim) -> None:
    lots = [sim.new_lot("scrap", Material.COPPER_SCRAP, 100) for _ in range(2)]
    steel = sim.new_lot("scrap", Material.STEEL_SCRAP, 100)
    theirs = sim.new_lot("recycler", Material.COPPER_SCRAP, 100)
    into = sim.lot_id()

    def merge(kg: float, *sources: str) -> dict[str, Any]:
        return body("lot_merge", lots=list(sources or lots), into=lot(into, "copper_scrap", kg))

    refused(sim, "scrap", merge(202), "mass-balance", "outputs weigh 202 kg")
    refused(sim, "scrap", merge(150), "mass-lost", "a split or merge loses nothing")
    refused(sim, "scrap", merge(200, lots[0], steel), "material-mismatch", "mixes materials")
    refused(sim, "scrap", merge(200, lots[0], theirs), "custodian-only", "held by recycler")
    sim.run("scrap", merge(200))
    assert [sim.item(i).status for i in lots] == [Status.CONSUMED] * 2
    assert sim.item(into).sources == tuple(lots)


# --- correction ---


def test_a_correction_fixes_facts_even_of_ended_items(sim: Sim) -> None:
    pack = sim.retired_at("recycler", collect=True)
    sim.run("recycler", recycle({pack: 400}, lot(sim.lot_id(), "black_mass", 200)))
    before = sim.item(pack)
    event_id = sim.run("catl", correction(pack, mass_kg=395, composition=NCM_JSON))
    after = sim.item(pack)
    assert (after.mass_kg, after.chemistry, after.content_kg["Ni"]) == (395, "NCM622", 31.923)
    assert (after.head, after.status, after.region) == (event_id, before.status, before.region)
    assert (after.custodian, after.owner) == (before.custodian, before.owner)
    sim.run("recycler", correction(pack, soh_pct=12, grade="scrap", remaining_capacity_kwh=3))
    assert (sim.item(pack).soh_pct, sim.item(pack).grade) == (12, "scrap")


def test_only_the_producer_or_custodian_corrects(sim: Sim) -> None:
    pack = sim.pack_at("byd")
    sim.run("byd", correction(pack, mass_kg=399))
    sim.run("catl", correction(pack, mass_kg=398))
    data = correction(pack, mass_kg=1)
    refused(sim, "dealer", data, "correction-author", "produced by catl and is held by byd")


def test_a_correction_reaches_an_assembled_part(sim: Sim) -> None:
    _, _, cells = sim.built_pack()
    sim.run("catl", correction(cells[0], mass_kg=5.1))
    assert sim.item(cells[0]).mass_kg == 5.1


@pytest.mark.parametrize(
    "fields",
    [
        {"mass_kg": -1},
        {"mass_kg": True},
        {"soh_pct": 101},
        {"grade": "E"},
        {"composition": {"chemistry": "NCM955"}},
        {"remaining_capacity_kwh": "lots"},
    ],
)
def test_corrected_values_are_checked(sim: Sim, fields: dict[str, Any]) -> None:
    pack = sim.commission()
    with pytest.raises(InvalidEvent) as caught:
        sim.run("catl", correction(pack, **fields))
    assert caught.value.field == f"data.fields.{next(iter(fields))}"


def test_lot_facts_are_lot_facts(sim: Sim) -> None:
    black = sim.new_lot()
    with pytest.raises(InvalidEvent, match="is a lot; soh_pct applies to batteries"):
        sim.run("recycler", correction(black, soh_pct=50))
    sim.run("recycler", correction(black, mass_kg=99))
    assert sim.item(black).mass_kg == 99


# --- the function itself ---


def test_check_event_reads_the_world_and_never_changes_it(sim: Sim) -> None:
    pack = sim.pack_at("byd")
    before = snapshot(sim.world)
    _, effects = sim.check(sim.event("byd", body("handover", items=[pack], to="dealer")))
    assert snapshot(sim.world) == before and set(effects.items) == {pack}


@pytest.mark.parametrize("tolerance", [-0.1, 1.0, float("nan")])
def test_the_tolerance_is_a_share(sim: Sim, tolerance: float) -> None:
    event = sim.event("catl", body("commission", item=sim.code()))
    with pytest.raises(ValueError, match="tolerance must be"):
        check_event(sim.world, event, event_id=fake_event_id(1), tolerance=tolerance)


# --- a whole life ---


def test_a_pack_from_the_factory_to_refined_lithium_and_nickel(sim: Sim) -> None:
    s = sim
    pack = s.code(date=dt.date(2024, 1, 5))
    s.run("catl", body("commission", item=pack, composition=NCM_JSON))
    modules = [s.commission(ProductType.MODULE, mass_kg=60.0) for _ in range(2)]
    cells = [s.commission(ProductType.CELL, mass_kg=5.0) for _ in range(4)]
    for i, module in enumerate(modules):
        s.run("catl", body("assemble", parent=module, children=cells[2 * i : 2 * i + 2]))
    s.run("catl", body("assemble", parent=pack, children=modules))
    everything = [pack, *modules, *cells]

    # First life: sold to the automaker, in a vehicle, out again, retired.
    s.hand("catl", "byd", [pack], transfer_ownership=True)
    assert {(s.item(i).custodian, s.item(i).owner) for i in everything} == {("byd", "byd")}
    s.run("byd", body("install", item=pack, vin=VIN))
    assert (s.item(pack).status, s.item(pack).vin) == (Status.INSTALLED, VIN)
    s.run("byd", body("remove", item=pack, vin=VIN, reason="end of first life"))
    s.run("byd", body("retire", item=pack, reason="SoH 74 %"))
    state = s.item(pack)
    assert (state.status, state.eu_status, state.vin) == (Status.RETIRED, EuStatus.WASTE, None)

    # Collected, then passed to a cascade-use operator.
    s.hand("byd", "collector", [pack])
    s.run("collector", body("collect", item=pack, mass_kg=313.0))
    state = s.item(pack)
    assert (state.status, state.custodian, state.owner) == (Status.COLLECTED, "collector", "byd")
    s.hand("collector", "cascade", [pack])
    s.run("cascade", inspect(pack, 74, "B"))

    # Second life under a cascade-use code that keeps the original (GB/T 34014 §4.2).
    link = recode_for_cascade(
        pack, manufacturer="T9X", spec="2B", date=dt.date(2031, 5, 1), serial=7
    )
    second = link.code.text
    recoded = s.run("cascade", repurpose(pack, second))
    old, new = s.item(pack), s.item(second)
    assert (old.status, old.successor, old.head) == (Status.REPURPOSED, second, recoded)
    assert (new.original, new.eu_status, new.head) == (pack, EuStatus.REPURPOSED, recoded)
    assert (new.producer, new.owner, new.custodian) == ("cascade", "cascade", "cascade")
    assert (new.mass_kg, new.chemistry, new.content_kg) == (313.0, "NCM622", old.content_kg)
    assert all(s.item(m).parent == second for m in modules)
    s.run("cascade", body("retire", item=second, reason="end of second life"))

    # To the recycler: dismantled into its modules and lots.
    s.hand("cascade", "recycler", [second], transfer_ownership=True)
    assert {s.item(i).custodian for i in [second, *modules, *cells]} == {"recycler"}
    black, alu, copper = s.lot_id(), s.lot_id(), s.lot_id()
    lots = [
        lot(black, "black_mass", 120, {"Li": 6.0, "Ni": 30.0, "Co": 10.0, "Mn": 9.5}),
        lot(alu, "aluminium_scrap", 40, {"Al": 38}),
        lot(copper, "copper_scrap", 20, {"Cu": 19}),
    ]
    s.run("recycler", dismantle(second, 313.0, *lots, parts=modules))
    assert s.item(second).status is Status.DISMANTLED
    assert [s.item(m).status for m in modules] == [Status.IN_STOCK] * 2
    assert (s.item(black).sources, s.item(black).owner) == ((second,), "recycler")

    # Black mass refined into lithium carbonate and nickel sulphate; aluminium remelted.
    li, ni, ingot = s.lot_id(), s.lot_id(), s.lot_id()
    refined = [
        lot(li, "lithium_carbonate", 25, {"Li": 4.7}),
        lot(ni, "nickel_sulphate", 90, {"Ni": 20}),
    ]
    s.run("recycler", recycle({black: 120}, *refined))
    assert s.item(black).status is Status.CONSUMED
    assert s.item(li).sources == s.item(ni).sources == (black,)
    s.run("recycler", smelt({alu: 40}, lot(ingot, "aluminium_scrap", 38, {"Al": 37.5})))
    assert (s.item(alu).status, s.item(ingot).sources) == (Status.CONSUMED, (alu,))
    assert {s.item(i).producer for i in (li, ni, ingot)} == {"recycler"}

    # The first code is history: it takes nothing but corrections.
    data = body("install", item=pack, vin=VIN)
    refused(s, "byd", data, "retired-not-installable", "was repurposed")
