"""The lifecycle graph: its node and edge model over a full life, and incremental = rebuild.

The helpers here (:func:`new_scene`, :func:`live_a_full_life`) also build the worlds of
``test_lineage.py`` and ``test_flows.py``.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
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
from trace.engine import Accepted, Tracer, parse_event
from trace.errors import TraceError
from trace.graph import LifecycleGraph, Rel, Stage, actor_node, item_node, stored_events
from trace.state import Effects, HandoverStatus, ItemKind, MemoryWorld, Status

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
    for (_, _, before), (_, _, after) in itertools.pairwise(custody):
        assert before["until"] == after["since"]
    assert custody[-1][2]["until"] is not None  # repurposed: the code's life ended
    owned = [(u[1], d) for u, _, d in graph.nx.in_edges(item_node(life.pack), data=True)]
    owned = [(a, d) for a, d in owned if d["rel"] is Rel.OWNS or d.get("owns")]
    owners = sorted(owned, key=lambda e: e[1]["since"])
    assert [a for a, _ in owners] == ["catl", "byd"]  # ownership moved only when transferred
    assert owners[0][1]["until"] == owners[1][1]["since"] and "until" in owners[1][1]
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
    lots = graph.handovers[4][2]
    assert lots["items"] == (life.lithium_parts[0], life.nickel, life.outside)
    assert lots["masses"] == (20, 60, 50)  # as handed over, before the new pack took its share


def test_a_lot_used_up_by_a_new_pack_ends_its_custody(followed: Any) -> None:
    _, graph, life = followed
    used_up = _in_edges(graph, item_node(life.lithium_parts[0]), Rel.CUSTODY)
    assert [(u[1], "until" in d) for u, _, d in used_up] == [("brunp", True), ("catl", True)]
    left = _in_edges(graph, item_node(life.nickel), Rel.CUSTODY)
    assert [(u[1], "until" in d) for u, _, d in left] == [("brunp", True), ("catl", False)]
    assert graph.nx.nodes[item_node(life.nickel)]["mass_kg"] == 45


def test_a_disputed_handover_is_marked(tmp_path: Path) -> None:
    tracer = sqlite_tracer(tmp_path)
    try:
        graph = LifecycleGraph.follow(tracer, freeze=False)
        scene = new_scene(tracer)
        pack = scene.code()
        scene.submit("catl", {"type": "commission", "item": pack, "mass_kg": 300})
        offer = scene.submit("catl", {"type": "handover", "items": [pack], "to": "byd"})
        scene.submit("byd", {"type": "accept", "handover": offer.event_id, "items": [pack]})
        dispute = {"handover": offer.event_id, "items": [pack], "reason": "short"}
        scene.submit("byd", {"type": "dispute", **dispute})
        [(_, _, edge)] = graph.handovers
        assert edge["disputed"] is True and edge["handover"] == offer.event_id
        assert graph.equals(LifecycleGraph.from_tracer(tracer, freeze=False))
    finally:
        tracer.close()


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
        (life.lithium, "recycling", "material_recovery", 30),
        (life.nickel, "recycling", "material_recovery", 60),
        (life.steel, "recycling", "material_recovery", 28),
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


def test_a_graph_rebuilt_from_the_tables_alone_equals_the_followed_one(followed: Any) -> None:
    tracer, graph, _ = followed
    alone = LifecycleGraph.from_projections(tracer.projections, freeze=False)
    assert alone.equals(graph) and alone.seq == tracer.log.head().size
    # It knows the organisations from the tables, as the followed graph knows them.
    assert alone.nx.nodes[actor_node("catl")] == graph.nx.nodes[actor_node("catl")]


def test_a_rebuild_reads_the_events_as_the_engine_accepted_them(tmp_path: Path) -> None:
    tracer = sqlite_tracer(tmp_path)
    try:
        published: list[Accepted] = []
        tracer.subscribe(published.append)
        live_a_full_life(new_scene(tracer))
        world = MemoryWorld()
        world.actors.update(tracer.world.actors)
        stored = list(stored_events(tracer.projections, world, tolerance=tracer.tolerance))
        assert [(a.seq, a.event_id, a.event, a.effects) for a in stored] == [
            (a.seq, a.event_id, a.event, a.effects) for a in published
        ]
        assert world.items == tracer.world.items and world.handovers == tracer.world.handovers
    finally:
        tracer.close()


def test_bulk_builds_pause_the_collector_and_freeze_what_they_built(followed: Any) -> None:
    tracer, _, _ = followed
    frozen = gc.get_freeze_count()
    try:
        LifecycleGraph.from_tracer(tracer)
        assert gc.isenabled() and gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()  # give the test process its collector back
    gc.disable()
    try:
        LifecycleGraph.from_tracer(tracer, freeze=False)
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def _first_event(tracer: Tracer) -> tuple[int, Any]:
    entries = tracer.log.entries(0, tracer.log.head().size)
    entry = next(e for e in entries if e.kind.startswith("event."))
    return entry.seq, parse_event(entry.body)


def test_events_already_applied_are_skipped(followed: Any) -> None:
    tracer, graph, _ = followed
    rebuilt = LifecycleGraph.from_tracer(tracer, freeze=False)
    seq, event = _first_event(tracer)
    rebuilt.apply(Accepted(seq, event, "ni:///stale", event.event_time, Effects()))
    assert rebuilt.equals(graph)


def test_an_actor_the_lookup_does_not_know_is_an_error(followed: Any) -> None:
    tracer, _, _ = followed
    seq, event = _first_event(tracer)
    with pytest.raises(ValueError, match="not known to the graph's actor lookup"):
        LifecycleGraph().apply(Accepted(seq, event, "ni:///x", event.event_time, Effects()))


# --- random lives: the followed graph equals a rebuild ---


BATTERIES = (ItemKind.PACK, ItemKind.MODULE, ItemKind.CELL)


class Driver:
    """Random but mostly valid events: each action picks its subject among the items that fit,
    and hands it to the organisation that may act on it first."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.world = scene.tracer.world

    def run(self, action: int, pick: int) -> None:
        with contextlib.suppress(TraceError):  # a refused event appends nothing
            getattr(self, ACTIONS[action % len(ACTIONS)])(pick)

    def _free(self, pick: int, *, kinds: tuple[ItemKind, ...] = BATTERIES, **want: Any) -> Any:
        """One item that is neither ended, assembled nor frozen by a pending handover."""
        found = [
            s
            for s in self.world.items.values()
            if not (s.terminal or s.pending_handover or s.status is Status.ASSEMBLED)
            and s.kind in kinds
            and all(getattr(s, k) in v for k, v in want.items())
        ]
        return sorted(found, key=lambda s: s.id)[pick % len(found)] if found else None

    def _bring(self, state: Any, to: str, pick: int = 0) -> None:
        if state.custodian != to:
            transfer = bool(pick % 2) and state.owner == state.custodian
            hand(self.scene, state.custodian, to, [state.id], transfer_ownership=transfer)

    def _lot(self, material: Material, kg: float) -> dict[str, Any]:
        return lot(new_lot_id(self.scene.rng), material, round(kg, 3))

    def commission(self, pick: int) -> None:
        product = (ProductType.PACK, ProductType.MODULE, ProductType.CELL)[pick % 3]
        data: dict[str, Any] = {"type": "commission", "item": self.scene.code(product)}
        if product is ProductType.PACK and pick % 2:
            data["composition"] = estimate_composition("LFP", 50).model_dump(mode="json")
        else:
            data["mass_kg"] = {ProductType.PACK: 300.0, ProductType.MODULE: 100.0}.get(product, 5)
        self.scene.submit("catl", data)

    def assemble(self, pick: int) -> None:
        kinds = (ItemKind.PACK, ItemKind.MODULE)
        parent = self._free(pick, kinds=kinds, custodian=("catl",), status=(Status.IN_STOCK,))
        if parent is not None:
            product = ProductType.MODULE if parent.kind is ItemKind.PACK else ProductType.CELL
            child = self.scene.code(product)
            self.scene.submit("catl", {"type": "commission", "item": child, "mass_kg": 5})
            data = {"type": "assemble", "parent": parent.id, "children": [child]}
            self.scene.submit("catl", data)

    def handover(self, pick: int) -> None:
        state = self._free(pick, kinds=(*BATTERIES, ItemKind.LOT))
        if state is not None:
            receivers = [a for a in CAST if a not in ("auditor", state.custodian)]
            self._bring(state, receivers[pick % len(receivers)], pick)

    def unanswered(self, pick: int) -> None:
        state = self._free(pick, kinds=(*BATTERIES, ItemKind.LOT))
        if state is None:
            return
        to = "brunp" if state.custodian != "brunp" else "gz-collect"
        offer = self.scene.submit(
            state.custodian, {"type": "handover", "items": [state.id], "to": to}
        )
        answer, who = (("reject", to), ("cancel", state.custodian))[pick % 2]
        data = {
            "type": answer,
            "handover": offer.event_id,
            "items": [state.id],
            "reason": "plans changed",
        }
        self.scene.submit(who, data)

    def install(self, pick: int) -> None:
        state = self._free(
            pick, kinds=(ItemKind.PACK,), status=(Status.IN_STOCK,), custodian=("catl", "byd")
        )
        if state is not None:
            self._bring(state, "byd", pick)
            self.scene.submit(
                "byd", {"type": "install", "item": state.id, "vin": VIN[:-1] + str(pick % 10)}
            )

    def remove(self, pick: int) -> None:
        state = self._free(pick, status=(Status.INSTALLED,))
        if state is not None:
            data = {"type": "remove", "item": state.id, "vin": state.vin, "reason": "repair"}
            self.scene.submit(state.custodian, data)

    def retire(self, pick: int) -> None:
        state = self._free(pick, status=(Status.IN_STOCK, Status.INSTALLED))
        if state is not None:
            self.scene.submit(
                state.custodian, {"type": "retire", "item": state.id, "reason": "worn"}
            )

    def collect(self, pick: int) -> None:
        state = self._free(pick, status=(Status.RETIRED,))
        if state is not None:
            to = ("gz-collect", "js-storage", "brunp")[pick % 3]
            self._bring(state, to, pick)
            self.scene.submit(to, {"type": "collect", "item": state.id})

    def repurpose(self, pick: int) -> None:
        state = self._free(pick, status=(Status.IN_STOCK, Status.RETIRED, Status.COLLECTED))
        if state is None:
            return
        self._bring(state, "js-storage", pick)
        grade = {"type": "inspect", "item": state.id, "soh_pct": 80, "grade": "B"}
        self.scene.submit("js-storage", grade)
        product = PRODUCTS[state.kind]
        new = {
            "type": "repurpose",
            "item": state.id,
            "new_code": self.scene.code(product),
            "new_use": "backup_power",
        }
        self.scene.submit("js-storage", new)

    def dismantle(self, pick: int) -> None:
        state = self._free(pick, status=(Status.RETIRED, Status.COLLECTED))
        if state is None:
            return
        to = ("brunp", "js-storage")[pick % 2]
        self._bring(state, to, pick)
        mass = state.mass_kg or 100.0
        rest = mass - sum(self.world.items[c].mass_kg or 0.0 for c in state.children)
        outputs = [self._lot(Material.BLACK_MASS, rest / 2)] if rest > 1 else []
        data = {
            "type": "dismantle",
            "item": state.id,
            "mass_kg": mass,
            "parts": list(state.children),
            "outputs": outputs,
        }
        self.scene.submit(to, data)

    def recycle(self, pick: int) -> None:
        state = self._free(pick, status=(Status.RETIRED, Status.COLLECTED))
        inputs = []
        if state is not None and not state.children:
            self._bring(state, "brunp", pick)
            if state.status is Status.RETIRED:
                self.scene.submit("brunp", {"type": "collect", "item": state.id})
            inputs.append({"item": state.id, "mass_kg": state.mass_kg or 100.0})
        extra = self._free(
            pick, kinds=(ItemKind.LOT,), custodian=("brunp",), material=("black_mass",)
        )
        if extra is not None and pick % 2:
            inputs.append({"item": extra.id, "mass_kg": extra.mass_kg})
        if inputs:
            kg = sum(i["mass_kg"] for i in inputs) / 3
            outputs = [self._lot(Material.LITHIUM_CARBONATE, kg)]
            self.scene.submit(
                "brunp",
                {"type": "recycle", "inputs": inputs, "outputs": outputs, "reagents_kg": pick % 3},
            )

    def split(self, pick: int) -> None:
        state = self._free(pick, kinds=(ItemKind.LOT,), custodian=("brunp",))
        if state is not None:
            half = round(state.mass_kg / 2, 3)
            parts = [
                lot(new_lot_id(self.scene.rng), Material(state.material), kg)
                for kg in (half, state.mass_kg - half)
            ]
            self.scene.submit("brunp", {"type": "lot_split", "lot": state.id, "parts": parts})

    def merge(self, pick: int) -> None:
        pair = [
            self._free(
                pick + i,
                kinds=(ItemKind.LOT,),
                custodian=("brunp",),
                material=("lithium_carbonate",),
            )
            for i in range(2)
        ]
        if None not in pair and pair[0].id != pair[1].id:
            into = lot(
                new_lot_id(self.scene.rng), Material.LITHIUM_CARBONATE, sum(s.mass_kg for s in pair)
            )
            self.scene.submit(
                "brunp", {"type": "lot_merge", "lots": [s.id for s in pair], "into": into}
            )

    def smelt(self, pick: int) -> None:
        state = self._free(pick, kinds=(ItemKind.LOT,), custodian=("brunp",))
        if state is not None:
            inputs = [{"item": state.id, "mass_kg": state.mass_kg}]
            outputs = [self._lot(Material.LITHIUM_CARBONATE, state.mass_kg / 4)]
            self.scene.submit("brunp", {"type": "lot_smelt", "inputs": inputs, "outputs": outputs})

    def materials(self, pick: int) -> None:
        state = self._free(pick, kinds=(ItemKind.LOT,))
        if state is not None:
            self._bring(state, "catl", pick)
            taken = [{"item": state.id, "mass_kg": min(5.0 + pick % 50, state.mass_kg)}]
            data = {
                "type": "commission",
                "item": self.scene.code(),
                "mass_kg": 300,
                "materials": taken,
            }
            self.scene.submit("catl", data)

    def disassemble(self, pick: int) -> None:
        state = self._free(
            pick,
            kinds=(ItemKind.PACK, ItemKind.MODULE),
            status=(Status.IN_STOCK, Status.RETIRED, Status.COLLECTED),
        )
        if state is not None and state.children:
            to = ("catl", "js-storage")[pick % 2]
            self._bring(state, to, pick)
            data = {"type": "disassemble", "parent": state.id, "children": list(state.children[:1])}
            self.scene.submit(to, data)

    def dispute(self, pick: int) -> None:
        accepted = sorted(
            (h for h in self.world.handovers.values() if h.status is HandoverStatus.ACCEPTED),
            key=lambda h: h.id,
        )
        if accepted:
            h = accepted[pick % len(accepted)]
            data = {"type": "dispute", "handover": h.id, "items": list(h.items), "reason": "short"}
            self.scene.submit(h.receiver, data)

    def external(self, pick: int) -> None:
        material = (Material.BLACK_MASS, Material.LITHIUM_CARBONATE)[pick % 2]
        self.scene.submit("brunp", {"type": "lot_create", **self._lot(material, 40.0)})


PRODUCTS = {
    ItemKind.PACK: ProductType.PACK,
    ItemKind.MODULE: ProductType.MODULE,
    ItemKind.CELL: ProductType.CELL,
}
ACTIONS = [name for name in vars(Driver) if not name.startswith("_") and name != "run"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(st.integers(0, len(ACTIONS) - 1), st.integers(0, 2**16)), min_size=4, max_size=40
    ),
    join=st.integers(0, 40),
)
def test_the_followed_graph_always_equals_a_rebuild(
    steps: list[tuple[int, int]], join: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        tracer = sqlite_tracer(Path(directory))
        try:
            live = LifecycleGraph(tracer.world)
            tracer.subscribe(live.apply)
            driver = Driver(new_scene(tracer))
            late = None
            for i, (action, pick) in enumerate(steps):
                if i == join:
                    late = LifecycleGraph.follow(
                        tracer, freeze=False
                    )  # joins mid-way: rebuild, then follow
                driver.run(action, pick)
            rebuilt = LifecycleGraph.from_tracer(tracer, freeze=False)
            assert live.equals(rebuilt)
            assert late is None or late.equals(rebuilt)
        finally:
            tracer.close()
