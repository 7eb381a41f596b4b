"""Sankey flows: stage and actor flows from the lifecycle graph, and the same stage flows in SQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger import note
from tests.factories import T0
from tests.trace.conftest import open_tracer
from tests.trace.test_graph import Life, live_a_full_life, new_scene, sqlite_tracer
from trace.engine import Tracer
from trace.flows import Flows, actor_flows, flows_sql, stage_flows
from trace.graph import LifecycleGraph


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tracer, LifecycleGraph, Life]:
    tracer = sqlite_tracer(tmp_path_factory.mktemp("flows"))
    graph = LifecycleGraph.follow(tracer, freeze=False)
    return tracer, graph, live_a_full_life(new_scene(tracer))


def _links(flows: Flows) -> list[tuple[str, str, int, float, float]]:
    return [(x.source, x.target, x.packs, x.kwh, x.kg) for x in flows.links]


FULL_LIFE = [
    ("production", "use", 1, 60.0, 300.0),
    ("use", "retirement", 1, 60.0, 300.0),
    ("retirement", "collection", 1, 60.0, 300.0),
    ("collection", "cascade_use", 1, 60.0, 300.0),
    ("cascade_use", "recycling", 1, 60.0, 300.0),
    ("recycling", "material_recovery", 0, 0.0, 30.0 + 60.0 + 28.0),
    ("material_recovery", "new_production", 0, 0.0, 20.0 + 15.0),
]


def test_a_full_life_flows_through_every_stage_once(world: Any) -> None:
    _, graph, _ = world
    flows = stage_flows(graph)
    assert _links(flows) == FULL_LIFE
    assert flows.nodes == [
        "production",
        "use",
        "retirement",
        "collection",
        "cascade_use",
        "recycling",
        "material_recovery",
        "new_production",
    ]


def test_filters_by_producer_region_and_period(world: Any) -> None:
    _, graph, _ = world
    # brunp made the lots it recovered; catl made the pack and the new one.
    assert _links(stage_flows(graph, producer="brunp")) == [FULL_LIFE[5]]
    # The pack's second life is under the code js-storage gave it.
    assert _links(stage_flows(graph, producer="catl")) == [*FULL_LIFE[:4], FULL_LIFE[6]]
    assert _links(stage_flows(graph, producer="js-storage")) == [FULL_LIFE[4]]
    # Hunan (430000): brunp's dismantling, recycling and smelting; Guangdong: byd's and
    # the collector's events, and the collection of the pack js-storage repurposed.
    assert _links(stage_flows(graph, region="430000")) == FULL_LIFE[4:6]
    assert _links(stage_flows(graph, region="440100")) == FULL_LIFE[:3]
    install = graph.moves[0].time
    in_the_hour = stage_flows(graph, start=install, end=install + timedelta(minutes=59))
    assert _links(in_the_hour) == FULL_LIFE[:1]


@pytest.mark.parametrize(
    "filters",
    [
        {"producer": "nobody"},
        {"region": "110000"},
        {"start": date(2030, 1, 1)},
        {"end": date(2020, 1, 1)},
    ],
)
def test_filters_that_match_nothing_give_empty_flows(world: Any, filters: dict[str, Any]) -> None:
    tracer, graph, _ = world
    for flows in (stage_flows(graph, **filters), actor_flows(graph, **filters)):
        assert flows == Flows([], [])
        assert json.loads(flows.to_json()) == {"nodes": [], "links": []}
    assert flows_sql(tracer.projections.engine, **filters) == Flows([], [])


def test_actor_flows_by_role_and_by_organisation(world: Any) -> None:
    _, graph, _ = world
    by_role = actor_flows(graph)
    assert _links(by_role) == [
        ("battery_maker", "automaker", 1, 60.0, 300.0),
        ("automaker", "collector", 1, 60.0, 300.0),
        ("collector", "cascade_operator", 1, 60.0, 300.0),
        ("cascade_operator", "recycler", 1, 60.0, 300.0),
        ("recycler", "battery_maker", 0, 0.0, 20.0 + 60.0 + 50.0),  # the lots, as handed over
    ]
    by_actor = actor_flows(graph, by="actor", producer="catl")
    assert by_actor.nodes == ["byd", "catl", "gz-collect", "js-storage"]
    assert [(x.source, x.target) for x in by_actor.links] == [
        ("byd", "gz-collect"),
        ("catl", "byd"),
        ("gz-collect", "js-storage"),
    ]
    assert _links(actor_flows(graph, region="320000")) == _links(by_role)[2:4]


def test_to_json_is_ready_for_a_sankey(world: Any) -> None:
    _, graph, _ = world
    shape = json.loads(stage_flows(graph).to_json(measure="packs"))
    assert shape["nodes"][0] == {"name": "production"}
    assert shape["links"][0] == {
        "source": 0,
        "target": 1,
        "value": 1,
        "packs": 1,
        "kwh": 60.0,
        "kg": 300.0,
    }
    with pytest.raises(ValueError, match="measure must be one of packs, kwh, kg"):
        stage_flows(graph).to_json(measure="tonnes")
    with pytest.raises(ValueError, match="by must be 'role' or 'actor'"):
        actor_flows(graph, by="province")  # type: ignore[arg-type]


def _assert_same(got: Flows, expected: Flows, context: object = None) -> None:
    assert got.nodes == expected.nodes, context
    assert [x[:3] for x in _links(got)] == [x[:3] for x in _links(expected)], context
    numbers = [v for x in _links(expected) for v in x[3:]]
    assert [v for x in _links(got) for v in x[3:]] == pytest.approx(numbers), context


AGREEMENT_FILTERS: list[dict[str, Any]] = [
    {},
    {"producer": "catl"},
    {"producer": "brunp"},
    {"producer": "js-storage"},
    {"region": "430000"},
    {"region": "320000"},
    {"start": T0 + timedelta(hours=20)},
    {"start": T0.date(), "end": datetime(2026, 3, 3, 12, tzinfo=T0.tzinfo)},
    {"end": date(2020, 1, 1)},
]


def test_sql_agrees_with_the_graph(store_url: str) -> None:
    tracer = open_tracer(store_url, note.Signer.generate("suyuan-log"))
    try:
        graph = LifecycleGraph.follow(tracer, freeze=False)
        scene = new_scene(tracer)
        live_a_full_life(scene)
        live_a_full_life(scene)  # a second pack: flows add up
        for filters in AGREEMENT_FILTERS:
            got = flows_sql(tracer.projections.engine, **filters)
            _assert_same(got, stage_flows(graph, **filters), filters)
        assert _links(stage_flows(graph))[0] == ("production", "use", 2, 120.0, 600.0)
    finally:
        tracer.close()


@pytest.mark.slow
def test_a_simulated_fleet_gives_the_same_flows_in_sql_and_a_graph_equal_to_its_rebuild(
    tmp_path: Path,
) -> None:
    from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate

    tracer = open_simulation_tracer(str(tmp_path / "sim.db"), clock=SimClock())
    try:
        graph = LifecycleGraph.follow(tracer, freeze=False)
        simulate(tracer, SimConfig.small(total_packs=60))
        assert graph.equals(LifecycleGraph.from_tracer(tracer, freeze=False))
        expected = stage_flows(graph)
        _assert_same(flows_sql(tracer.projections.engine), expected)
        assert {"production", "use", "recycling", "material_recovery"} <= set(expected.nodes)
    finally:
        tracer.close()
