"""The fleet simulator: every event accepted and verifiable, the ground truth equal to the log."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from schemas.actors import Role
from schemas.events import EventType
from trace.deadlines import DEADLINES
from trace.engine import Tracer
from trace.simulate import (
    AnomalyKind,
    GroundTruth,
    SimClock,
    SimConfig,
    SimProgress,
    SimulationError,
    open_simulation_tracer,
    simulate,
)
from trace.simulate_world import CST
from trace.state import ItemKind, Status

# The small preset runs once on SQLite (the module's fixture); each backend runs a smaller one.
BACKEND_CONFIG = SimConfig.small(total_packs=60, last_year=2024, seed=2260)
RECOVERED = frozenset(
    {
        "lithium_carbonate",
        "nickel_sulphate",
        "cobalt_sulphate",
        "manganese_sulphate",
        "copper_scrap",
        "aluminium_scrap",
    }
)
SCRAP = frozenset({"copper_scrap", "aluminium_scrap", "steel_scrap"})


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Tracer, GroundTruth]]:
    """The small preset on SQLite, run once for the tests that only read it."""
    path = tmp_path_factory.mktemp("sim") / "small.db"
    tracer = open_simulation_tracer(str(path), clock=SimClock())
    truth = simulate(tracer, SimConfig.small())
    yield tracer, truth
    tracer.close()


def _events(tracer: Tracer) -> list[tuple[int, str, str, dict[str, Any], int | None]]:
    """``(seq, event id, type, body, late working days)`` of every event, from the tables."""
    query = text(
        "SELECT seq, event_id, type, body_json, late_working_days FROM trace_events ORDER BY seq"
    )
    with tracer.projections.engine.connect() as conn:
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in conn.execute(query)]


def _kind(kind: ItemKind) -> str:
    return "lot" if kind is ItemKind.LOT else "pack"


# --- checks shared by the runs on each backend ---


def check_log(tracer: Tracer, truth: GroundTruth) -> None:
    """Every entry verifies; the log holds genesis, two entries per actor, and the events."""
    tracer.log.verify(workers=1)
    assert len(tracer.log) == 1 + 2 * len(truth.actors) + truth.events
    counted = Counter(kind for _, _, kind, _, _ in _events(tracer))
    assert dict(counted) == dict(truth.event_counts)


def check_statuses(tracer: Tracer, truth: GroundTruth) -> None:
    """Items by kind and status in the projection tables are the simulator's own count."""
    world = tracer.projections.load_world()
    counts: dict[str, Counter[str]] = {}
    for item in world.items.values():
        counts.setdefault(_kind(item.kind), Counter())[item.status.value] += 1
    assert {k: dict(v) for k, v in counts.items()} == truth.status_counts
    pending = [i for i in world.items.values() if i.pending_handover is not None]
    assert len(pending) == truth.pending_handovers


def check_leaks(tracer: Tracer, truth: GroundTruth) -> None:
    """Leaked items are exactly the pending or retired-not-collected ones, less those in flight."""
    world = tracer.projections.load_world()
    open_items = {
        i.id
        for i in world.items.values()
        if i.kind is not ItemKind.LOT
        and (i.pending_handover is not None or i.status is Status.RETIRED)
    }
    assert open_items - set(truth.in_flight) == set(truth.leaked)
    for item_id, kind in truth.leaked.items():
        state = world.items[item_id]
        if kind == AnomalyKind.UNACCEPTED:
            assert state.pending_handover is not None and state.custodian.startswith("am-")
        else:
            assert state.status is Status.RETIRED and state.pending_handover is None


def check_late_reports(tracer: Tracer, truth: GroundTruth) -> None:
    """The receipts that carry late_working_days are exactly the ground truth's late reports."""
    late = {eid: days for _, eid, _, _, days in _events(tracer) if days is not None}
    assert late == {eid: r.late_working_days for eid, r in truth.late_reports.items()}


def check_recovery(tracer: Tracer, truth: GroundTruth) -> None:
    """Recovered element kg and scrap kg equal what the recyclers' events put in their lots."""
    recovered: Counter[str] = Counter()
    scrap: Counter[str] = Counter()
    for _, _, kind, body, _ in _events(tracer):
        if kind not in ("dismantle", "recycle") or body["actor"].startswith("scr-"):
            continue
        for output in body["data"]["outputs"]:
            lot = output["lot"]
            if lot["material"] in RECOVERED:
                recovered.update(lot.get("content_kg", {}))
            if lot["material"] in SCRAP:
                scrap[lot["material"]] += lot["mass_kg"]
    truth_recovered: Counter[str] = Counter()
    for years in truth.recyclers.values():
        for flow in years.values():
            truth_recovered.update(flow.recovered_kg)
    assert truth_recovered.keys() == recovered.keys()
    for element, kg in recovered.items():
        assert truth_recovered[element] == pytest.approx(kg, abs=1e-6)
    for material, kg in scrap.items():
        produced = sum(y.produced_kg for y in truth.scrap[material].values())
        assert produced == pytest.approx(kg, abs=1e-6)


def check_all(tracer: Tracer, truth: GroundTruth) -> None:
    check_log(tracer, truth)
    check_statuses(tracer, truth)
    check_leaks(tracer, truth)
    check_late_reports(tracer, truth)
    check_recovery(tracer, truth)


def test_simulation_on_each_backend_is_accepted_and_matches_its_ground_truth(
    store_url: str,
) -> None:
    tracer = open_simulation_tracer(store_url, clock=SimClock())
    try:
        truth = simulate(tracer, BACKEND_CONFIG)
        assert truth.packs == BACKEND_CONFIG.total_packs
        check_all(tracer, truth)
    finally:
        tracer.close()


def test_small_preset_is_accepted_and_matches_its_ground_truth(
    small: tuple[Tracer, GroundTruth],
) -> None:
    check_all(*small)


# --- the small preset, in detail ---


def test_every_stage_occurs_in_the_small_preset(small: tuple[Tracer, GroundTruth]) -> None:
    _, truth = small
    for kind in ("commission", "install", "inspect", "retire", "collect", "repurpose"):
        assert truth.event_counts[kind] > 0, kind
    for kind in ("dismantle", "recycle", "lot_smelt"):
        assert truth.event_counts[kind] > 0, kind
    kinds = Counter(a.kind for a in truth.anomalies)
    assert set(kinds) == {k.value for k in AnomalyKind}
    for kind, count in SimConfig.small().anomalies.items():
        assert kinds[kind.value] == count
    assert truth.recycled_content and truth.in_flight


def test_placed_on_the_market_counts_each_pack_for_its_maker_and_its_automaker(
    small: tuple[Tracer, GroundTruth],
) -> None:
    _, truth = small
    placed = Counter[str]()
    for producer, years in truth.producers.items():
        placed[producer[:2]] += sum(y.placed_packs for y in years.values())
    assert placed["bm"] == truth.packs
    assert placed["am"] == truth.event_counts["install"]
    collected = sum(y.collected_packs for ys in truth.producers.values() for y in ys.values())
    assert collected == 2 * truth.event_counts["collect"] - 2 * _recycler_collects(small[0])


def _recycler_collects(tracer: Tracer) -> int:
    return sum(
        1
        for _, _, kind, body, _ in _events(tracer)
        if kind == "collect" and body["actor"][:3] == "rec"
    )


def test_collection_rate_divides_by_the_mean_of_the_three_preceding_years(
    small: tuple[Tracer, GroundTruth],
) -> None:
    _, truth = small
    years = truth.producers["bm-01"]
    placed = sum(years[y].placed_kg for y in (2022, 2023, 2024)) / 3
    expected = years[2025].collected_kg / placed
    assert truth.collection_rate("bm-01", 2025) == pytest.approx(expected)
    assert truth.collection_rate("bm-01", 2021) is None


def test_injected_anomalies_are_what_an_auditor_should_flag(
    small: tuple[Tracer, GroundTruth],
) -> None:
    tracer, truth = small
    world = tracer.world
    end = datetime(truth.last_year, 12, 31, 23, 59, tzinfo=CST)
    for anomaly in truth.anomalies_of(AnomalyKind.STALLED):
        state = world.item(anomaly.items[0])
        assert state is not None and state.status is Status.COLLECTED
        assert state.custodian == anomaly.actors[0]
        collected = datetime.fromisoformat(str(anomaly.detail["collected_at"]))
        assert end - collected > timedelta(days=365)
    (loss,) = truth.anomalies_of(AnomalyKind.DISMANTLE_LOSS)
    assert float(loss.detail["loss_share"]) > 0.3
    (low,) = truth.anomalies_of(AnomalyKind.LOW_RECOVERY)
    assert low.detail and all(float(v) < 0.5 for v in low.detail.values())
    (over,) = truth.anomalies_of(AnomalyKind.OVER_RECOVERY)
    assert over.detail and all(1.0 < float(v) <= 1.005 for v in over.detail.values())


def test_recycled_content_is_traced_to_the_lots_the_pack_consumed(
    small: tuple[Tracer, GroundTruth],
) -> None:
    tracer, truth = small
    for code, content in truth.recycled_content.items():
        state = tracer.world.item(code)
        assert state is not None and state.sources == tuple(content.lots)
        for element, share in content.share.items():
            assert 0 <= share < 1
            assert share == pytest.approx(
                content.recycled_kg.get(element, 0.0) / content.pack_kg[element]
            )


def test_late_reports_are_recorded_after_their_deadline(small: tuple[Tracer, GroundTruth]) -> None:
    _, truth = small
    assert truth.late_reports
    low, high = SimConfig.small().late_working_days
    for report in truth.late_reports.values():
        limit = DEADLINES[(Role(report.role), EventType(report.type))].working_days
        assert low <= report.delay_working_days <= high
        assert report.late_working_days == report.delay_working_days - limit > 0
        recorded = datetime.fromisoformat(report.recorded_at)
        assert recorded > datetime.fromisoformat(report.event_time)


def test_ground_truth_is_json(small: tuple[Tracer, GroundTruth]) -> None:
    _, truth = small
    data = json.loads(truth.to_json())
    assert data["packs"] == truth.packs
    assert set(data["producers"]["bm-01"]) == {str(y) for y in truth.producers["bm-01"]}


def test_the_same_seed_gives_the_same_events(
    small: tuple[Tracer, GroundTruth], tmp_path: Path
) -> None:
    tracer, truth = small
    again = open_simulation_tracer(str(tmp_path / "again.db"), clock=SimClock())
    try:
        second = simulate(again, SimConfig.small())
        assert [e[1] for e in _events(again)] == [e[1] for e in _events(tracer)]
        assert second.to_json() == truth.to_json()
    finally:
        again.close()


def test_a_worker_process_gives_the_same_log_and_truth(
    small: tuple[Tracer, GroundTruth], tmp_path: Path
) -> None:
    tracer, truth = small
    seen: list[SimProgress] = []
    forked = open_simulation_tracer(str(tmp_path / "forked.db"), clock=SimClock())
    try:
        second = simulate(forked, SimConfig.small(), progress=seen.append, worker=True)
        assert _events(forked) == _events(tracer)
        assert second.to_json() == truth.to_json()
        assert seen[-1].events == truth.events and forked.clock() == tracer.clock()
    finally:
        forked.close()


def test_a_failing_worker_is_reported_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trace.simulate_flows import Fleet

    def broken(self: Fleet) -> GroundTruth:
        raise RuntimeError("the plans ran out")

    monkeypatch.setattr(Fleet, "run", broken)
    tracer = open_simulation_tracer(str(tmp_path / "broken.db"), clock=SimClock())
    with pytest.raises(SimulationError, match=r"(?s)worker failed.*the plans ran out"):
        simulate(tracer, SimConfig.small(total_packs=10), worker=True)
    tracer.close()


def test_an_engine_refusal_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer = open_simulation_tracer(str(tmp_path / "refused.db"), clock=SimClock())

    def refuse(batches: Any, **_: Any) -> Any:
        next(iter(batches))  # the first upload arrives, and the engine refuses it
        raise SimulationError("refused")
        yield  # a generator, as submit_stream is

    monkeypatch.setattr(tracer, "submit_stream", refuse)
    with pytest.raises(SimulationError, match="refused"):
        simulate(tracer, SimConfig.small(total_packs=10), worker=True)
    tracer.close()


def test_another_seed_gives_other_events(tmp_path: Path) -> None:
    runs = []
    for seed in (1, 2):
        tracer = open_simulation_tracer(str(tmp_path / f"{seed}.db"), clock=SimClock())
        simulate(tracer, SimConfig.small(total_packs=10, seed=seed))
        runs.append({e[1] for e in _events(tracer)})
        tracer.close()
    assert not runs[0] & runs[1]


# --- refusals and configuration ---


def test_progress_reports_every_batch_in_order(tmp_path: Path) -> None:
    seen: list[SimProgress] = []
    tracer = open_simulation_tracer(str(tmp_path / "p.db"), clock=SimClock())
    truth = simulate(tracer, SimConfig.small(total_packs=10), progress=seen.append)
    tracer.close()
    assert seen and [p.simulated for p in seen] == sorted(p.simulated for p in seen)
    assert 0 <= seen[0].fraction <= seen[-1].fraction <= 1
    assert seen[-1].events == truth.events


def test_a_tracer_without_a_simulated_clock_is_refused(tmp_path: Path) -> None:
    from ledger import Log, note, open_store
    from trace.projections import Projections

    url = str(tmp_path / "wall.db")
    log = Log.create(open_store(url), signer=note.Signer.generate("log"))
    tracer = Tracer(log, Projections(url))
    with pytest.raises(SimulationError, match="SimClock"):
        simulate(tracer, SimConfig.small(total_packs=1))
    tracer.close()


def test_a_clock_past_the_start_is_refused(tmp_path: Path) -> None:
    clock = SimClock(datetime(2030, 1, 1, tzinfo=UTC))
    tracer = open_simulation_tracer(str(tmp_path / "late.db"), clock=clock)
    with pytest.raises(SimulationError, match="past the simulation's start"):
        simulate(tracer, SimConfig.small(total_packs=1))
    tracer.close()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"recyclers": 0}, "recyclers must be at least 1"),
        ({"provinces": ("999999",)}, "GB/T 2260"),
        ({"first_year": 2017}, "GB/T 34014 date table"),
        ({"collection_probability": 1.5}, "collection_probability must be a share"),
        ({"energy_kwh": (90.0, 40.0)}, "energy_kwh must be"),
        ({"anomalies": {AnomalyKind.LATE_REPORT: 3}}, "anomalies counts"),
        ({"chemistry_mix": {}}, "chemistry_mix"),
    ],
)
def test_config_refuses_impossible_values(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SimConfig.small(**changes)


def test_demo_preset_is_ten_thousand_packs_by_twenty_organisations() -> None:
    demo = SimConfig.demo()
    actors = (
        demo.battery_makers
        + demo.automakers
        + demo.collectors
        + demo.cascade_operators
        + demo.recyclers
        + demo.scrap_processors
    )
    assert (demo.total_packs, actors, len(demo.years)) == (10_000, 20, 5)


def test_configs_are_values() -> None:
    assert SimConfig.small() == SimConfig.small(seed=34014)
    assert hash(SimConfig.small()) == hash(SimConfig.small(seed=34014))
    assert SimConfig.small(seed=1) != SimConfig.small(seed=2)


def test_late_reports_count_the_tracers_holiday_calendar(tmp_path: Path) -> None:
    from trace.deadlines import prc_calendar

    calendar = prc_calendar()
    tracer = open_simulation_tracer(str(tmp_path / "cal.db"), clock=SimClock(), calendar=calendar)
    config = SimConfig.small(total_packs=40, first_year=2024, late_share=0.5)
    truth = simulate(tracer, config)
    assert truth.late_reports and tracer.calendar is calendar
    check_late_reports(tracer, truth)
    tracer.close()
