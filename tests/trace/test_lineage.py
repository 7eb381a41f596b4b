"""Lineage queries over a full life: parts, lives, custody, downstream and upstream, paging."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.trace.test_graph import Life, live_a_full_life, new_scene, sqlite_tracer
from trace.errors import UnknownItem
from trace.graph import ITEM, STEP, LifecycleGraph, Rel
from trace.lineage import (
    MAX_LIMIT,
    LineageRole,
    Page,
    custody_chain,
    downstream,
    lives,
    parts,
    upstream,
)

QUERIES: list[Callable[..., Page[Any]]] = [parts, lives, custody_chain, downstream, upstream]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[LifecycleGraph, Life]:
    tracer = sqlite_tracer(tmp_path_factory.mktemp("lineage"))
    graph = LifecycleGraph.follow(tracer, freeze=False)
    return graph, live_a_full_life(new_scene(tracer))


def _roles(page: Page[Any]) -> dict[str, tuple[LineageRole, Any]]:
    return {row.node: (row.role, row.attributed_kg) for row in page.items}


def test_parts_are_the_tree_of_modules_and_cells_now_or_at_a_moment(world: Any) -> None:
    graph, life = world
    assert parts(graph, life.pack).items == ()  # its parts moved on to the re-code, then out
    installed = graph.moves[0].time
    then = parts(graph, life.pack, at=installed).items
    first, second = sorted(life.modules)
    expected = [(first, life.pack, 1)]
    if first == life.modules[0]:
        expected += [(c, first, 2) for c in sorted(life.cells)]
    expected.append((second, life.pack, 1))
    if second == life.modules[0]:
        expected += [(c, second, 2) for c in sorted(life.cells)]
    assert [(p.code, p.parent, p.depth) for p in then] == expected
    assert {p.kind for p in then} == {"module", "cell"}


def test_lives_chain_the_codes_of_one_pack_oldest_first(world: Any) -> None:
    graph, life = world
    assert lives(graph, life.pack).items == (life.pack, life.second)
    assert lives(graph, life.second).items == (life.pack, life.second)
    assert lives(graph, life.new_pack).items == (life.new_pack,)


def test_custody_chain_crosses_lives(world: Any) -> None:
    graph, life = world
    chain = custody_chain(graph, life.second).items
    assert [(c.code, c.actor, c.role) for c in chain] == [
        (life.pack, "catl", "battery_maker"),
        (life.pack, "byd", "automaker"),
        (life.pack, "gz-collect", "collector"),
        (life.pack, "js-storage", "cascade_operator"),
        (life.second, "js-storage", "cascade_operator"),
        (life.second, "brunp", "recycler"),
    ]
    assert all(a.until == b.since for a, b in itertools.pairwise(chain))
    assert chain[-1].until is not None  # dismantled
    assert chain[2].region == "440000" and chain[4].via.startswith("ni:///sha-256;")


def test_a_cells_custody_runs_through_its_module_and_pack(world: Any) -> None:
    graph, life = world
    chain = custody_chain(graph, life.cells[0]).items
    module = life.modules[0]
    assert [(c.code, c.actor) for c in chain] == [
        (life.cells[0], "catl"),
        (module, "catl"),
        (life.pack, "catl"),
        (life.pack, "byd"),
        (life.pack, "gz-collect"),
        (life.pack, "js-storage"),
        (life.second, "js-storage"),
        (life.second, "brunp"),
        (module, "brunp"),
        (life.cells[0], "brunp"),
    ]
    assert all(a.until == b.since for a, b in itertools.pairwise(chain))
    assert chain[-1].until is None  # the freed cell is still at the recycler


def test_downstream_follows_the_material_to_new_packs(world: Any) -> None:
    graph, life = world
    rows = _roles(downstream(graph, life.pack, limit=100))
    assert rows[life.second] == (LineageRole.RECODED, 300)
    assert rows[life.modules[1]] == (LineageRole.PART, 100)
    assert rows[life.black_mass] == (LineageRole.LOT, 80)
    assert rows[life.lithium_parts[0]] == (LineageRole.LOT, 20)
    assert rows[life.steel] == (LineageRole.LOT, 28)
    # 20 kg of its lithium and 15 kg of its nickel; the bought lot is not its material.
    assert rows[life.new_pack] == (LineageRole.NEW_PRODUCT, 35)
    assert life.outside not in rows
    steps = [r for r in downstream(graph, life.pack).items if r.kind == STEP]
    assert [s.type for s in steps] == [
        "repurpose",
        "dismantle",
        "dismantle",
        "recycle",
        "lot_split",
        "lot_smelt",
        "commission",
    ]


def test_downstream_attributes_mixed_inputs_by_mass(world: Any) -> None:
    graph, life = world
    # The second module is 100 of the recycle's 180 kg input: that share of what came out.
    rows = _roles(downstream(graph, life.modules[1]))
    share = 100 / 180
    assert rows[life.nickel][1] == pytest.approx(60 * share)
    assert rows[life.lithium_parts[1]][1] == pytest.approx(10 * share)
    assert rows[life.new_pack] == (LineageRole.NEW_PRODUCT, pytest.approx(35 * share))
    assert life.steel not in rows


def test_upstream_traces_a_new_pack_to_its_source_packs(world: Any) -> None:
    graph, life = world
    rows = _roles(upstream(graph, life.new_pack))
    assert rows[life.lithium_parts[0]] == (LineageRole.LOT, 20)
    assert rows[life.outside] == (LineageRole.LOT, 10)  # bought: no traced origin
    assert rows[life.black_mass][1] == pytest.approx(35 * 80 / 180)
    assert rows[life.modules[1]] == (LineageRole.PART, pytest.approx(35 * 100 / 180))
    assert rows[life.modules[0]] == (LineageRole.PART, pytest.approx(35 * 80 / 180))
    assert rows[life.second] == (LineageRole.SOURCE, pytest.approx(35))
    assert rows[life.pack] == (LineageRole.EARLIER_LIFE, pytest.approx(35))
    assert life.steel not in rows and life.cells[0] not in rows
    sources = [r for r in upstream(graph, life.new_pack).items if r.role is LineageRole.SOURCE]
    assert [(r.node, r.actor, r.kg) for r in sources] == [(life.second, "js-storage", 300)]


def test_upstream_of_a_lot_and_of_a_plain_pack(world: Any) -> None:
    graph, life = world
    rows = _roles(upstream(graph, life.lithium))
    assert rows[life.modules[1]][1] == pytest.approx(30 * 100 / 180)
    assert upstream(graph, life.pack).items == ()
    assert downstream(graph, life.outside).items[-1].role is LineageRole.NEW_PRODUCT


@pytest.mark.parametrize("query", QUERIES)
def test_unknown_items_are_named(world: Any, query: Callable[..., Page[Any]]) -> None:
    graph, _ = world
    with pytest.raises(UnknownItem, match="001PB1A0000001E390000042 is not in the lifecycle graph"):
        query(graph, "001PB1A0000001E390000042")


@pytest.mark.parametrize("query", QUERIES)
def test_pages_join_up_to_the_whole_list(world: Any, query: Callable[..., Page[Any]]) -> None:
    graph, life = world
    item = life.cells[0] if query is custody_chain else life.pack
    if query is upstream:
        item = life.new_pack
    whole = query(graph, item, limit=MAX_LIMIT)
    assert whole.next_cursor is None
    pages, cursor = [], None
    while True:
        page = query(graph, item, limit=2, cursor=cursor)
        pages.append(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert tuple(row for page in pages for row in page.items) == whole.items
    assert all(len(page.items) == 2 for page in pages[:-1])


@pytest.mark.parametrize(
    ("limit", "cursor", "match"),
    [
        (0, None, "limit must be within 1..10000"),
        (MAX_LIMIT + 1, None, "limit must be within"),
        (10, "-1", "cursor '-1' is not one this query returned"),
        (10, "page2", "is not one this query returned"),
    ],
)
def test_bad_paging_arguments_are_refused(
    world: Any, limit: int, cursor: str | None, match: str
) -> None:
    graph, life = world
    with pytest.raises(ValueError, match=match):
        custody_chain(graph, life.pack, limit=limit, cursor=cursor)


def test_a_lot_feeding_thousands_of_packs_pages_through_them() -> None:
    g = LifecycleGraph()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    g.nx.add_node((ITEM, "LOT-1"), kind="lot", material="nickel_sulphate", mass_kg=5000.0)
    for i in range(2500):
        step, pack = (STEP, f"e{i:05d}"), (ITEM, f"P{i:05d}")
        g.nx.add_node(step, type="commission", time=t0 + timedelta(minutes=i), actor="m", seq=i)
        g.nx.add_node(pack, kind="pack", mass_kg=300.0)
        g.nx.add_edge((ITEM, "LOT-1"), step, rel=Rel.INPUT, kg=2.0)
        g.nx.add_edge(step, pack, rel=Rel.OUTPUT, kg=300.0)
    first = downstream(g, "LOT-1", limit=1000)
    assert len(first.items) == 1000 and first.items[0].node == "e00000"
    last = downstream(g, "LOT-1", limit=1000, cursor="4000")
    assert last.next_cursor is None and last.items[-1].node == "P02499"
    assert {r.attributed_kg for r in last.items} == {2.0}
