"""Three computations of every rate agree, and the engine recovers the simulator's ground truth.

The Python engine (:mod:`trace.rates`), the SQL oracle where the data is (SQLite or
PostgreSQL) and the same SQL on a DuckDB copy must agree on every rate and total within
1e-9 relative, and on which are undefined. On a simulated world the engine must also give
back what the simulator counted: exactly where the truth is exact.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger import note
from tests.factories import Scene
from tests.trace.conftest import open_tracer
from tests.trace.test_rates import build_edge_world
from trace.engine import Tracer
from trace.evidence import Period
from trace.oracle import Figure, Key, duckdb_rates, key, sql_rates
from trace.rates import RateReport, bench_rates, compute_rates, pack_recycled_content
from trace.simulate import GroundTruth, SimClock, SimConfig, open_simulation_tracer, simulate

RELATIVE = 1e-9
ABSOLUTE = 1e-9  # kg: below a microgram, a sum is zero
CONFIGS = {
    "sqlite": SimConfig.small(recycled_content=True),
    # PostgreSQL round trips are slower: its run is smaller.
    "postgres": SimConfig.small(total_packs=60, last_year=2024, seed=2260, recycled_content=True),
}
# (filters, also on DuckDB): the filter fragments are the same SQL in every dialect, so
# DuckDB runs the whole world and one filtered query; the database runs them all.
FILTERS: list[tuple[dict[str, Any], bool]] = [
    ({}, True),
    ({"year": 2024, "region": "430000"}, False),
    ({"producer": "am-02"}, False),
    ({"chemistry": "LFP", "kind": "module"}, False),
    ({"period": Period.between(date(2023, 3, 1), date(2024, 8, 31))}, True),
]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Tracer, GroundTruth]]:
    """A simulated world on each backend (a module-scoped ``store_url``: simulated once)."""
    import psycopg

    if request.param == "sqlite":
        url, schema = str(tmp_path_factory.mktemp("oracle") / "sim.db"), None
    else:
        server = request.getfixturevalue("postgres_server_url")
        schema = f"suyuan_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{server}?options=-csearch_path%3D{schema}"
    tracer = open_simulation_tracer(url, clock=SimClock())
    try:
        yield tracer, simulate(tracer, CONFIGS[request.param])
    finally:
        tracer.close()
        if schema is not None:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= RELATIVE * max(abs(a), abs(b)) + ABSOLUTE


def engine_figures(report: RateReport) -> dict[Key, tuple[float, float | None, float | None]]:
    out: dict[Key, tuple[float, float | None, float | None]] = {
        key(r.name, r.unit, r.scope): (r.numerator, r.denominator, r.value) for r in report.rates
    }
    out.update({key(t.name, t.unit, t.scope): (t.amount, None, None) for t in report.totals})
    return out


def assert_agree(report: RateReport, other: dict[Key, Figure], label: str) -> int:
    """Every engine figure has an equal ``other`` figure (and no more); returns how many."""
    mine = engine_figures(report)
    assert set(mine) == set(other), (
        f"{label}: only the engine has {sorted(set(mine) - set(other), key=repr)[:3]}, "
        f"only the oracle has {sorted(set(other) - set(mine), key=repr)[:3]}"
    )
    for k, (num, den, value) in mine.items():
        o = other[k]
        assert _close(num, o.numerator), f"{label} numerator of {k}: {num} != {o.numerator}"
        assert _close(den, o.denominator), f"{label} denominator of {k}: {den} != {o.denominator}"
        assert _close(value, o.value), f"{label} value of {k}: {value} != {o.value}"
    return len(mine)


def _oracle_args(filters: dict[str, Any]) -> dict[str, Any]:
    args = dict(filters)
    if "period" in args:
        period = args.pop("period")
        args["between"] = (period.start, period.end)
    return args


@pytest.mark.parametrize(
    ("filters", "on_duckdb"), FILTERS, ids=[",".join(f) or "all" for f, _ in FILTERS]
)
def test_engine_sql_and_duckdb_agree_on_a_simulated_world(
    world: tuple[Tracer, GroundTruth], filters: dict[str, Any], on_duckdb: bool
) -> None:
    tracer, _ = world
    report = compute_rates(tracer, **filters)
    engine = tracer.projections.engine
    n = assert_agree(report, sql_rates(engine, **_oracle_args(filters)), "SQL")
    if on_duckdb:
        assert assert_agree(report, duckdb_rates(engine, **_oracle_args(filters)), "DuckDB") == n
    assert n > 0
    undefined = [r for r in report.rates if r.value is None]
    assert undefined and all(r.undefined_reason for r in undefined)


def test_engine_sql_and_duckdb_agree_on_the_edge_world(store_url: str, backend: str) -> None:
    tracer = open_tracer(store_url, note.Signer.generate("suyuan-log"))
    try:
        build_edge_world(Scene(tracer))
        runs: list[dict[str, Any]] = [{}]
        if backend == "sqlite":
            runs.append({"year": 2024, "producer": "byd"})
        for filters in runs:
            report = compute_rates(tracer, **filters)
            engine = tracer.projections.engine
            assert_agree(report, sql_rates(engine, **filters), "SQL")
            assert_agree(report, duckdb_rates(engine, **filters), "DuckDB")
        impossible = compute_rates(tracer).rate(
            "material_recovery", "kg", actor="brunp", period="2025", element="Ni"
        )
        assert impossible.value is None
    finally:
        tracer.close()


def test_oracle_accepts_a_path_and_refuses_a_bad_query(tmp_path: Path) -> None:
    tracer = open_tracer(str(tmp_path / "empty.db"), note.Signer.generate("x"))
    tracer.close()
    assert sql_rates(str(tmp_path / "empty.db")) == {}
    with pytest.raises(ValueError, match="kind is one of"):
        sql_rates(str(tmp_path / "empty.db"), kind="lot")
    with pytest.raises(ValueError, match="a year or a date range"):
        duckdb_rates(
            str(tmp_path / "empty.db"), year=2024, between=(date(2024, 1, 1), date(2024, 2, 1))
        )


def test_a_duckdb_peer_out_of_memory_keeps_the_other_timings(
    world: tuple[Tracer, GroundTruth], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a million packs the DuckDB copy outgrew its memory limit; the bench keeps the
    engine's and SQL's figures, says why DuckDB has none and leaves the limit as it was."""
    tracer, _ = world
    monkeypatch.setattr("trace.oracle._DUCK_MEMORY", "1MB")  # a real DuckDB, a tiny limit
    with pytest.warns(RuntimeWarning, match="DuckDB oracle failed: Out of Memory"):
        timings = bench_rates(tracer)
    assert timings["figures"] == timings["oracle_figures"] > 0
    assert timings["engine_s"] > 0 and timings["sql_s"] > 0
    assert math.isnan(timings["duckdb_s"]) and math.isnan(timings["duckdb_figures"])


def test_engine_recovers_the_ground_truth(world: tuple[Tracer, GroundTruth]) -> None:
    tracer, truth = world
    report = compute_rates(tracer)
    # Packs placed, retired, collected, repurposed and recycled: exact counts and masses.
    for producer, years in truth.producers.items():
        for year, counted in years.items():
            for figure in ("placed", "retired", "collected", "repurposed", "recycled"):
                got = (
                    report.total(figure, "count", producer=producer, period=str(year)).amount,
                    report.total(figure, "kg", producer=producer, period=str(year)).amount,
                )
                want = getattr(counted, f"{figure}_packs"), getattr(counted, f"{figure}_kg")
                assert got[0] == want[0], (producer, year, figure)
                assert got[1] == pytest.approx(want[1], abs=1e-6), (producer, year, figure)
            rate = report.rate("collection_rate", "kg", producer=producer, period=str(year))
            expected = truth.collection_rate(producer, year)
            assert (rate.value is None) == (expected is None)
            if expected is not None:
                assert rate.value == pytest.approx(expected, rel=1e-9)
    # Per-element recovery at each recycler: exact element kg in and out.
    for recycler, flows in truth.recyclers.items():
        for year, flow in flows.items():
            for element in ("Li", "Ni", "Co", "Mn", "Cu", "Al"):
                rate = report.rate(
                    "material_recovery", "kg", actor=recycler, period=str(year), element=element
                )
                assert rate.numerator == pytest.approx(
                    flow.recovered_kg.get(element, 0.0), abs=1e-6
                )
                assert rate.denominator == pytest.approx(flow.input_kg.get(element, 0.0), abs=1e-6)
                expected = flow.recovery(element)
                if expected is not None and expected <= 1.0:
                    assert rate.value == pytest.approx(expected, rel=1e-9)
    # Scrap made by recyclers and recycled metal smelted, in tonnes.
    for material, scrap in truth.scrap.items():
        for year, made in scrap.items():
            if material == "steel_scrap":
                total = report.total("scrap_steel", "t", period=str(year))
                assert total.amount * 1000 == pytest.approx(made.produced_kg, abs=1e-6)
            else:
                name = {"copper_scrap": "recycled_copper", "aluminium_scrap": "recycled_aluminium"}
                total = report.total(name[material], "t", period=str(year))
                assert total.amount * 1000 == pytest.approx(made.output_kg, abs=1e-6)
    # Recycled content, pack by pack, traced through the refined lots.
    assert truth.recycled_content, "the world should build packs from recycled lots"
    for code, content in truth.recycled_content.items():
        shares = pack_recycled_content(tracer, code)
        for element, share in content.share.items():
            assert shares.get(element, 0.0) == pytest.approx(share, rel=1e-9), (code, element)


def test_national_recovery_of_packs_adds_up_the_recyclers(
    world: tuple[Tracer, GroundTruth],
) -> None:
    """Every recovered kg is credited to the pack it came from (its products are made that day)."""
    tracer, truth = world
    report = compute_rates(tracer)
    for year in range(truth.first_year, truth.last_year + 1):
        for element in ("Li", "Ni", "Co", "Cu"):
            national = report.rate(
                "material_recovery_of_packs", "kg", period=str(year), element=element
            )
            flows = [years[year] for years in truth.recyclers.values() if year in years]
            assert national.numerator == pytest.approx(
                sum(f.recovered_kg.get(element, 0.0) for f in flows), abs=1e-6
            )
            assert national.denominator == pytest.approx(
                sum(f.input_kg.get(element, 0.0) for f in flows), abs=1e-6
            )
