"""The lifecycle graph: its node and edge model over a full life, and incremental = rebuild.

The helpers here (:func:`new_scene`, :func:`live_a_full_life`) also build the worlds of
``test_lineage.py`` and ``test_flows.py``.
"""

from __future__ import annotations

import gc
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import note
from schemas.actors import Role
from schemas.codes import CodeForm, ProductType, generate_code
from schemas.composition import estimate_composition
from schemas.lots import Material, new_lot_id
from tests.factories import Scene
from tests.trace.conftest import open_tracer
from trace.engine import Accepted, Tracer
from trace.errors import TraceError
from trace.graph import LifecycleGraph, Rel, Stage, actor_node, item_node
from trace.state import HandoverStatus, ItemKind, Status

VIN = "LGXCE4CB5N0000001"
CAST = {
    "catl": Role.BATTERY_MAKER,
    "byd": Role.AUTOMAKER,
    "gz-collect": Role.COLLECTOR,
    "js-storage": Role.CASCADE_OPERATOR,
    "brunp": Role.RECYCLER,
    "auditor": Role.AUDITOR,
}


# --- world builders (shared with test_lineage and test_flows) ---


def new_scene(tracer: Tracer) -> Scene:
    """A scene on ``tracer`` with :data:`CAST` registered."""
    scene = Scene(tracer)
    for actor_id, role in CAST.items():
        scene.add(actor_id, role)
    return scene


def sqlite_tracer(directory: Path) -> Tracer:
    return open_tracer(str(directory / "ledger.db"), note.Signer.generate("suyuan-log"))


def hand(scene: Scene, sender: str, receiver: str, items: list[str], **data: Any) -> str:
    """A handover accepted by its receiver; return the accept's event id."""
    offer = scene.submit(sender, {"type": "handover", "items": items, "to": receiver, **data})
    accept = {"type": "accept", "handover": offer.event_id, "items": items}
    return str(scene.submit(receiver, accept).event_id)


def lot(lot_id: str, material: Material, mass_kg: float) -> dict[str, Any]:
    return {"lot": {"id": lot_id, "material": material.value, "mass_kg": mass_kg}}


@dataclass
class Life:
    """The codes and lots of one full life (see :func:`live_a_full_life`)."""

    pack: str
    modules: list[str]
    cells: list[str]
    second: str  # the pack's cascade-use code
    casing: str  # steel scrap from dismantling the pack
    black_mass: str  # from dismantling the first module
    lithium: str  # recycled Li2CO3
    nickel: str  # recycled NiSO4
    lithium_parts: list[str]  # the lithium lot split in two
    steel: str  # the casing smelted
    outside: str  # Li2CO3 bought from outside the traced flow
    new_pack: str


def live_a_full_life(scene: Scene) -> Life:
    """commission -> assemble -> install -> retire -> collect -> repurpose -> retire ->
    dismantle -> recycle -> split, smelt -> a new pack made with the recycled lots.

    A 300 kg, 60 kWh NCM523 pack of two 100 kg modules (the first with two 5 kg cells).
    """
    rng = scene.rng
    pack, second = (
        scene.code(),
        generate_code(rng, form=CodeForm.CASCADE, product_type=ProductType.PACK),
    )
    composition = estimate_composition("NCM523", 60, mass_kg=300).model_dump(mode="json")
    scene.submit("catl", {"type": "commission", "item": pack, "composition": composition})
    modules = [scene.code(ProductType.MODULE) for _ in range(2)]
    cells = [scene.code(ProductType.CELL) for _ in range(2)]
    for code, kg in [*((m, 100.0) for m in modules), *((c, 5.0) for c in cells)]:
        scene.submit("catl", {"type": "commission", "item": code, "mass_kg": kg})
    scene.submit("catl", {"type": "assemble", "parent": modules[0], "children": cells})
    scene.submit("catl", {"type": "assemble", "parent": pack, "children": modules})
    hand(scene, "catl", "byd", [pack], transfer_ownership=True)
    scene.submit("byd", {"type": "install", "item": pack, "vin": VIN})
    scene.submit("byd", {"type": "retire", "item": pack, "reason": "end of first life"})
    hand(scene, "byd", "gz-collect", [pack])
    scene.submit("gz-collect", {"type": "collect", "item": pack})
    hand(scene, "gz-collect", "js-storage", [pack], transfer_ownership=False)
    scene.submit("js-storage", {"type": "inspect", "item": pack, "soh_pct": 78, "grade": "B"})
    scene.submit(
        "js-storage",
        {"type": "repurpose", "item": pack, "new_code": second, "new_use": "energy_storage"},
    )
    scene.submit("js-storage", {"type": "retire", "item": second, "reason": "end of second life"})
    hand(scene, "js-storage", "brunp", [second])
    scene.submit("brunp", {"type": "collect", "item": second})
    casing, black_mass, lithium, nickel, steel, outside = (new_lot_id(rng) for _ in range(6))
    lithium_parts = [new_lot_id(rng), new_lot_id(rng)]
    scene.submit(
        "brunp",
        {
            "type": "dismantle",
            "item": second,
            "mass_kg": 300,
            "parts": modules,
            "outputs": [lot(casing, Material.STEEL_SCRAP, 30)],
        },
    )
    first = modules[0]
    scene.submit("brunp", {"type": "retire", "item": first, "reason": "dismantled pack"})
    scene.submit("brunp", {"type": "collect", "item": first})
    scene.submit(
        "brunp",
        {
            "type": "dismantle",
            "item": first,
            "mass_kg": 100,
            "parts": cells,
            "outputs": [lot(black_mass, Material.BLACK_MASS, 80)],
        },
    )
    scene.submit("brunp", {"type": "retire", "item": modules[1], "reason": "dismantled pack"})
    scene.submit("brunp", {"type": "collect", "item": modules[1]})
    scene.submit(
        "brunp",
        {
            "type": "recycle",
            "inputs": [{"item": black_mass, "mass_kg": 80}, {"item": modules[1], "mass_kg": 100}],
            "outputs": [
                lot(lithium, Material.LITHIUM_CARBONATE, 30),
                lot(nickel, Material.NICKEL_SULPHATE, 60),
            ],
        },
    )
    parts = [lot(lithium_parts[0], Material.LITHIUM_CARBONATE, 20)]
    parts.append(lot(lithium_parts[1], Material.LITHIUM_CARBONATE, 10))
    scene.submit("brunp", {"type": "lot_split", "lot": lithium, "parts": parts})
    scene.submit(
        "brunp",
        {
            "type": "lot_smelt",
            "inputs": [{"item": casing, "mass_kg": 30}],
            "outputs": [lot(steel, Material.STEEL_SCRAP, 28)],
        },
    )
    scene.submit("brunp", {"type": "lot_create", **lot(outside, Material.LITHIUM_CARBONATE, 50)})
    hand(scene, "brunp", "catl", [lithium_parts[0], nickel, outside], transfer_ownership=True)
    new_pack = scene.code()
    materials = [
        {"item": lithium_parts[0], "mass_kg": 20},
        {"item": nickel, "mass_kg": 15},
        {"item": outside, "mass_kg": 10},
    ]
    scene.submit(
        "catl", {"type": "commission", "item": new_pack, "mass_kg": 280, "materials": materials}
    )
    return Life(
        pack, modules, cells, second, casing, black_mass, lithium, nickel, lithium_parts, steel,
        outside, new_pack,
    )  # fmt: skip


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tracer, LifecycleGraph, Life]:
    """A full life on SQLite, with a graph that followed it event by event."""
    tracer = sqlite_tracer(tmp_path_factory.mktemp("life"))
    graph = LifecycleGraph(tracer.world)
    tracer.subscribe(graph.apply)
    life = live_a_full_life(new_scene(tracer))
    return tracer, graph, life


def _edges(
    graph: LifecycleGraph, rel: Rel, *, node: Any = None
) -> list[tuple[Any, Any, dict[str, Any]]]:
    edges = graph.nx.edges(node, data=True) if node is not None else graph.nx.edges(data=True)
    return [(u, v, d) for u, v, d in edges if d["rel"] is rel]


def _in_edges(graph: LifecycleGraph, node: Any, rel: Rel) -> list[tuple[Any, Any, dict[str, Any]]]:
    return [(u, v, d) for u, v, d in graph.nx.in_edges(node, data=True) if d["rel"] is rel]


# --- the model ---


def test_item_actor_vehicle_and_step_nodes_carry_their_attributes(followed: Any) -> None:
    _, graph, life = followed
    pack = graph.nx.nodes[item_node(life.pack)]
    assert pack["kind"] is ItemKind.PACK and pack["producer"] == "catl"
    assert pack["chemistry"] == "NCM523" and pack["energy_kwh"] == 60 and pack["mass_kg"] == 300
    assert pack["stage"] is Stage.CASCADE_USE and "material" not in pack
    assert graph.nx.nodes[item_node(life.nickel)]["material"] == "nickel_sulphate"
    assert graph.nx.nodes[actor_node("js-storage")] == {
        "role": Role.CASCADE_OPERATOR,
        "region": "320000",
    }
    assert ("vehicle", VIN) in graph.nx and actor_node("auditor") not in graph.nx
    steps = sorted(d["type"].value for n, d in graph.nx.nodes(data=True) if n[0] == "step")
    assert steps == [
        "commission",
        "dismantle",
        "dismantle",
        "lot_smelt",
        "lot_split",
        "recycle",
        "repurpose",
    ]


def test_custody_edges_chain_since_until_and_the_accepting_event(followed: Any) -> None:
    _, graph, life = followed
    custody = sorted(
        _in_edges(graph, item_node(life.pack), Rel.CUSTODY), key=lambda e: e[2]["since"]
    )
    assert [u[1] for u, _, _ in custody] == ["catl", "byd", "gz-collect", "js-storage"]
    for (_, _, before), (_, _, after) in zip(custody, custody[1:], strict=False):
        assert before["until"] == after["since"]
    assert custody[-1][2]["until"] is not None  # repurposed: the code's life ended
    owners = [u[1] for u, _, _ in _in_edges(graph, item_node(life.pack), Rel.OWNS)]
    assert owners == ["catl", "byd"]  # ownership moved only when transferred
    second = _in_edges(graph, item_node(life.second), Rel.CUSTODY)
    assert [(u[1], "until" in d) for u, _, d in second] == [("js-storage", True), ("brunp", True)]


def test_parts_are_held_through_their_parent_while_assembled(followed: Any) -> None:
    _, graph, life = followed
    module = item_node(life.modules[0])
    own = _in_edges(graph, module, Rel.CUSTODY)
    # catl until the module was assembled; brunp from dismantling the pack to dismantling it
    assert [(u[1], "until" in d) for u, _, d in own] == [("catl", True), ("brunp", True)]
    cell = _in_edges(graph, item_node(life.cells[0]), Rel.CUSTODY)
    assert [(u[1], "until" in d) for u, _, d in cell] == [("catl", True), ("brunp", False)]
    part_of = _edges(graph, Rel.PART_OF, node=module)
    assert [(v[1], "until" in d) for _, v, d in part_of] == [(life.pack, True), (life.second, True)]
    assert part_of[0][2]["until"] == part_of[1][2]["since"]  # moved to the re-code


def test_installed_in_recoded_to_and_handover_edges(followed: Any) -> None:
    _, graph, life = followed
    [(_, vehicle, installed)] = _edges(graph, Rel.INSTALLED_IN, node=item_node(life.pack))
    assert vehicle == ("vehicle", VIN) and installed["until"] > installed["since"]
    [(_, new, _)] = _edges(graph, Rel.RECODED_TO, node=item_node(life.pack))
    assert new == item_node(life.second)
    handovers = [
        (u[1], v[1], d["packs"], d["kg"], d["kwh"]) for u, v, d in _edges(graph, Rel.HANDOVER)
    ]
    assert handovers[:4] == [
        ("catl", "byd", 1, 300, 60),
        ("byd", "gz-collect", 1, 300, 60),
        ("gz-collect", "js-storage", 1, 300, 60),
        ("js-storage", "brunp", 1, 300, 60),
    ]
    assert handovers[4][:3] == ("brunp", "catl", 0) and handovers[4][3] == 20 + 60 + 50
    assert len(graph.handovers) == 5


def test_transformations_link_inputs_to_outputs_with_kg(followed: Any) -> None:
    _, graph, life = followed
    [(_, step, into)] = _edges(graph, Rel.INPUT, node=item_node(life.second))
    assert graph.nx.nodes[step]["type"] == "dismantle" and into["kg"] == 300
    outputs = {v[1]: d.get("kg") for _, v, d in graph.nx.out_edges(step, data=True)}
    assert outputs == {life.modules[0]: 100, life.modules[1]: 100, life.casing: 30}
    [(made, _, _)] = _in_edges(graph, item_node(life.new_pack), Rel.OUTPUT)
    inputs = {u[1]: d["kg"] for u, _, d in graph.nx.in_edges(made, data=True)}
    assert inputs == {life.lithium_parts[0]: 20, life.nickel: 15, life.outside: 10}


def test_stage_moves_only_advance(followed: Any) -> None:
    _, graph, life = followed
    moves = [(m.item, m.source.value, m.target.value, m.kg) for m in graph.moves]
    assert moves == [
        (life.pack, "production", "use", None),
        (life.pack, "use", "retirement", None),
        (life.pack, "retirement", "collection", None),
        (life.pack, "collection", "cascade_use", None),
        (life.second, "cascade_use", "recycling", None),
        (life.lithium, "recycling", "material_recovery", None),
        (life.nickel, "recycling", "material_recovery", None),
        (life.steel, "recycling", "material_recovery", None),
        (life.new_pack, "material_recovery", "new_production", 20),
        (life.new_pack, "material_recovery", "new_production", 15),
    ]
    assert (
        graph.stage(life.outside) is None
        and graph.stage(life.lithium_parts[1]) is Stage.MATERIAL_RECOVERY
    )


# --- incremental = rebuild ---


def test_a_followed_graph_equals_a_rebuild_from_the_log(followed: Any) -> None:
    tracer, graph, _ = followed
    rebuilt = LifecycleGraph.from_tracer(tracer, freeze=False)
    assert rebuilt.equals(graph) and rebuilt.seq == tracer.log.head().size


def test_bulk_builds_restore_the_collector(followed: Any) -> None:
    tracer, _, _ = followed
    assert gc.isenabled()
    LifecycleGraph.from_tracer(tracer, freeze=False)
    assert gc.isenabled()
    gc.disable()
    try:
        LifecycleGraph.from_tracer(tracer, freeze=False)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_events_already_applied_are_skipped(followed: Any) -> None:
    tracer, graph, _ = followed
    rebuilt = LifecycleGraph.from_tracer(tracer, freeze=False)
    entry = tracer.log.entry(rebuilt.seq - 1)
    from trace.engine import parse_event

    event = parse_event(entry.body)
    stale = Accepted(
        entry.seq, event, "ni:///stale", event.event_time, tracer_effects(tracer, event)
    )
    rebuilt.apply(stale)
    assert rebuilt.equals(graph)


def tracer_effects(tracer: Tracer, event: Any) -> Any:
    from trace.state import Effects

    return Effects()


def test_an_actor_the_lookup_does_not_know_is_an_error(followed: Any) -> None:
    tracer, _, _ = followed
    entry = next(e for e in tracer.log.entries(0, 50) if e.kind.startswith("event."))
    from trace.engine import parse_event
    from trace.state import Effects

    event = parse_event(entry.body)
    with pytest.raises(ValueError, match="not known to the graph's actor lookup"):
        LifecycleGraph().apply(Accepted(entry.seq, event, "ni:///x", event.event_time, Effects()))
