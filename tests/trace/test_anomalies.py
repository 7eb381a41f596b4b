"""Anomaly detection: hand-built scenes per kind (found and not found), and a simulated fleet
whose injected anomalies must all be found, with nothing else of those kinds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from ledger import Log, note, open_store
from schemas.actors import Role
from schemas.codes import ProductType
from schemas.composition import Element
from schemas.lots import Material, new_lot_id
from tests.factories import ORIGIN, Scene
from trace.anomalies import (
    Anomaly,
    AnomalyConfig,
    AnomalyKind,
    Check,
    ScanState,
    Severity,
    find_anomalies,
)
from trace.engine import Tracer
from trace.projections import Projections
from trace.simulate import GroundTruth, SimClock, SimConfig, open_simulation_tracer, simulate
from trace.simulate_config import AnomalyKind as SimKind
from trace.state import HandoverState, HandoverStatus, MemoryWorld

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=CST)  # a Monday
DAY = timedelta(days=1)
LI_IN_LI2CO3 = Material.LITHIUM_CARBONATE.nominal_fractions[Element.LI]


class Clock:
    """The time the log records: moved forward by the story, never back."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, to: datetime) -> None:
        self.at = max(self.at, to)


@dataclass
class Story:
    """A tracer with one actor per role whose log clock follows the events written."""

    scene: Scene
    clock: Clock

    @property
    def tracer(self) -> Tracer:
        tracer: Tracer = self.scene.tracer
        return tracer

    def do(
        self, actor: str, data: dict[str, Any], day: float, *, recorded: float | None = None
    ) -> Any:
        """Write an event at ``T0 + day`` (recorded then, or at ``T0 + recorded``)."""
        when = T0 + day * DAY
        self.clock.advance(when if recorded is None else T0 + recorded * DAY)
        return self.scene.submit(actor, data, when=when)

    def pack(
        self, day: float = 0, mass: float = 400.0, product: ProductType = ProductType.PACK
    ) -> str:
        code = self.scene.code(product)
        self.do("catl", {"type": "commission", "item": code, "mass_kg": mass}, day)
        return code

    def offer(self, sender: str, receiver: str, items: list[str], day: float) -> str:
        data = {"type": "handover", "items": items, "to": receiver, "transfer_ownership": True}
        return str(self.do(sender, data, day).event_id)

    def answer(self, actor: str, kind: str, handover: str, items: list[str], day: float) -> str:
        data: dict[str, Any] = {"type": kind, "handover": handover, "items": items}
        if kind != "accept":
            data["reason"] = "not ours"
        return str(self.do(actor, data, day).event_id)

    def hand(self, sender: str, receiver: str, items: list[str], day: float) -> str:
        offer = self.offer(sender, receiver, items, day)
        self.answer(receiver, "accept", offer, items, day + 1)
        return offer

    def retired(self, day: float = 0) -> tuple[str, str]:
        """A pack sold to byd and retired by it on ``day``; return the code and retire id."""
        code = self.pack(day - 5)
        self.hand("catl", "byd", [code], day - 4)
        retire = self.do("byd", {"type": "retire", "item": code, "reason": "worn out"}, day)
        return code, str(retire.event_id)

    def lot(self, actor: str, material: Material, mass: float, day: float, **content: float) -> str:
        lot_id = self.lot_id()
        record: dict[str, Any] = {"id": lot_id, "material": material.value, "mass_kg": mass}
        if content:
            record["content_kg"] = content
        self.do(actor, {"type": "lot_create", "lot": record}, day)
        return lot_id

    def lot_id(self) -> str:
        return new_lot_id(self.scene.rng)

    def scan(self, day: float, config: AnomalyConfig | None = None) -> list[Anomaly]:
        return find_anomalies(self.tracer, now=T0 + day * DAY, config=config or AnomalyConfig())


def _story(url: str) -> Story:
    clock = Clock(T0 - 30 * DAY)
    log = Log.create(
        open_store(url), signer=note.Signer.generate("suyuan-log"), origin=ORIGIN, clock=clock.now
    )
    scene = Scene(Tracer(log, Projections(url), clock=clock.now))
    for actor, role in (
        ("catl", Role.BATTERY_MAKER),
        ("byd", Role.AUTOMAKER),
        ("gz-collect", Role.COLLECTOR),
        ("sz-collect", Role.COLLECTOR),
        ("brunp", Role.RECYCLER),
        ("scrap", Role.SCRAP_PROCESSOR),
    ):
        scene.add(actor, role)
    return Story(scene, clock)


@pytest.fixture
def story(tmp_path: Path) -> Iterator[Story]:
    s = _story(str(tmp_path / "suyuan.db"))
    yield s
    s.tracer.close()


@pytest.fixture
def story_on(store_url: str) -> Iterator[Story]:
    """A story on each database backend (PostgreSQL when reachable)."""
    s = _story(store_url)
    yield s
    s.tracer.close()


def _of(found: list[Anomaly], *checks: Check) -> list[Anomaly]:
    return [a for a in found if a.check in checks]


# --- leakage ---


@pytest.mark.parametrize(("age", "leaked"), [(29, False), (31, True)])
def test_a_handover_pending_over_30_days_is_leakage(story: Story, age: int, leaked: bool) -> None:
    code, _ = story.retired(0)
    offer = story.offer("byd", "gz-collect", [code], 1)
    found = story.scan(1 + age)
    pending = _of(found, Check.PENDING_HANDOVER)
    if not leaked:
        assert found == []
        return
    (a,) = pending
    assert (a.kind, a.severity, a.items, a.actors, a.event_ids) == (
        AnomalyKind.LEAKAGE,
        Severity.HIGH,
        (code,),
        ("byd", "gz-collect"),
        (offer,),
    )
    assert a.amounts == {"age_days": 31.0, "limit_days": 30.0}
    assert "byd to gz-collect 31 days ago" in a.summary
    assert found == [a]  # the item waits on the handover: no other finding


@pytest.mark.parametrize(("age", "leaked"), [(29, False), (31, True)])
def test_a_retired_pack_never_handed_over_is_leakage(story: Story, age: int, leaked: bool) -> None:
    code, retire = story.retired(0)
    found = story.scan(age)
    assert [(a.check, a.items, a.event_ids) for a in found] == (
        [(Check.NOT_HANDED_OVER, (code,), (retire,))] if leaked else []
    )
    if leaked:
        assert (
            found[0].actors == ("byd", "catl") and "still with byd (automaker)" in found[0].summary
        )


@pytest.mark.parametrize("answer", ["reject", "cancel"])
def test_rejected_or_cancelled_then_nothing_is_leakage(story: Story, answer: str) -> None:
    code, _ = story.retired(0)
    offer = story.offer("byd", "gz-collect", [code], 1)
    who = "gz-collect" if answer == "reject" else "byd"
    closed = story.answer(who, answer, offer, [code], 2)
    assert story.scan(2 + 29) == []
    (a,) = story.scan(2 + 31)
    assert (a.kind, a.check, a.items, a.event_ids) == (
        AnomalyKind.LEAKAGE,
        Check.RETURNED,
        (code,),
        (offer, closed),
    )


def test_a_rejected_pack_handed_to_another_collector_is_not_leakage(story: Story) -> None:
    code, _ = story.retired(0)
    offer = story.offer("byd", "gz-collect", [code], 1)
    story.answer("gz-collect", "reject", offer, [code], 2)
    story.hand("byd", "sz-collect", [code], 3)
    story.do("sz-collect", {"type": "collect", "item": code}, 5)
    assert story.scan(60) == []


# --- custody gaps ---


@pytest.mark.parametrize(("age", "gap"), [(179, False), (181, True)])
def test_collected_and_never_recycled_is_a_custody_gap(story: Story, age: int, gap: bool) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    collect = str(story.do("gz-collect", {"type": "collect", "item": code}, 3).event_id)
    found = story.scan(3 + age)
    expected = [(AnomalyKind.CUSTODY_GAP, Check.STALLED, (code,), ("gz-collect",), (collect,))]
    assert [(a.kind, a.check, a.items, a.actors, a.event_ids) for a in found] == (
        expected if gap else []
    )


def test_the_stall_limit_is_configurable(story: Story) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    story.do("gz-collect", {"type": "collect", "item": code}, 3)
    config = AnomalyConfig(collected_after=timedelta(days=90))
    assert story.scan(3 + 89, config) == []
    (a,) = story.scan(3 + 91, config)
    assert a.check is Check.STALLED and a.amounts["limit_days"] == 90


@pytest.mark.parametrize(("age", "gap"), [(59, False), (61, True)])
def test_retired_at_a_collector_and_never_collected_is_a_custody_gap(
    story: Story, age: int, gap: bool
) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)  # accepted on day 2
    found = story.scan(2 + age)
    assert [(a.kind, a.check, a.items) for a in found] == (
        [(AnomalyKind.CUSTODY_GAP, Check.NOT_COLLECTED, (code,))] if gap else []
    )


def test_a_pack_that_went_all_the_way_raises_nothing(story: Story) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    story.do("gz-collect", {"type": "collect", "item": code}, 3)
    story.hand("gz-collect", "brunp", [code], 20)
    lots = [
        {"lot": {"id": story.lot_id(), "material": "black_mass", "mass_kg": 120.0}},
        {"lot": {"id": story.lot_id(), "material": "steel_scrap", "mass_kg": 180.0}},
    ]
    story.do("brunp", {"type": "dismantle", "item": code, "mass_kg": 400.0, "outputs": lots}, 30)
    assert story.scan(1000) == []


# --- double custody ---


def _damaged(story: Story) -> tuple[ScanState, MemoryWorld]:
    """A state read from the tracer whose world is a copy the test may damage."""
    state = ScanState.from_tracer(story.tracer, check_tables=False)
    world = MemoryWorld()
    world.items, world.handovers = dict(state.world.items), dict(state.world.handovers)
    world.actors = dict(state.world.actors)
    state.world = world
    return state, world


def test_an_honest_world_has_no_double_custody(story: Story) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    story.do("gz-collect", {"type": "collect", "item": code}, 3)
    story.hand("gz-collect", "brunp", [code], 10)
    state, _ = _damaged(story)
    assert find_anomalies(state, now=T0 + 20 * DAY) == []


def test_two_handovers_open_at_once_are_double_custody(story: Story) -> None:
    code = story.pack(0)
    sale = story.hand("catl", "byd", [code], 1)  # offered on day 1, accepted on day 2
    state, world = _damaged(story)
    world.handovers["h-forged"] = HandoverState(
        id="h-forged",
        sender="catl",
        receiver="gz-collect",
        items=(code,),
        transfer_ownership=True,
        status=HandoverStatus.ACCEPTED,
        created=T0 + 1.5 * DAY,
    )
    (a,) = find_anomalies(state, now=T0 + 3 * DAY)
    assert (a.kind, a.check, a.items, a.event_ids) == (
        AnomalyKind.DOUBLE_CUSTODY,
        Check.OVERLAPPING_HANDOVERS,
        (code,),
        (sale, "h-forged"),
    )
    assert a.actors == ("catl", "byd", "gz-collect")


def test_a_custodian_other_than_the_last_receiver_is_double_custody(story: Story) -> None:
    code = story.pack(0)
    sale = story.hand("catl", "byd", [code], 1)
    state, world = _damaged(story)
    world.items[code] = replace(world.items[code], custodian="gz-collect")
    (a,) = find_anomalies(state, now=T0 + 3 * DAY)
    assert (a.check, a.items, a.actors, a.event_ids[0]) == (
        Check.HANDOVER_CUSTODIAN,
        (code,),
        ("gz-collect", "byd"),
        sale,
    )


def test_a_part_held_apart_from_its_parent_is_double_custody(story: Story) -> None:
    pack = story.pack(0, mass=300.0)
    module = story.pack(0, mass=60.0, product=ProductType.MODULE)
    story.do("catl", {"type": "assemble", "parent": pack, "children": [module]}, 1)
    story.hand("catl", "byd", [pack], 2)
    state, world = _damaged(story)
    assert find_anomalies(state, now=T0 + 5 * DAY) == []  # the module moved with its pack
    world.items[module] = replace(world.items[module], custodian="catl")
    (a,) = find_anomalies(state, now=T0 + 5 * DAY)
    assert (a.check, a.items, a.actors) == (Check.PART_CUSTODIAN, (module, pack), ("catl", "byd"))


def test_a_second_pending_handover_is_double_custody(story: Story) -> None:
    code, _ = story.retired(0)
    offer = story.offer("byd", "gz-collect", [code], 1)
    state, world = _damaged(story)
    world.handovers["h-forged"] = replace(
        world.handovers[offer], id="h-forged", receiver="sz-collect", created=T0 + 2 * DAY
    )
    found = find_anomalies(state, now=T0 + 3 * DAY)
    assert sorted((a.check, a.event_ids) for a in found) == sorted(
        [
            (Check.OVERLAPPING_HANDOVERS, (offer, "h-forged")),
            (Check.PENDING_MISMATCH, ("h-forged", offer)),
        ]
    )


def test_projection_rows_that_disagree_with_the_state_are_reported(story_on: Story) -> None:
    story = story_on
    code, _ = story.retired(0)
    offer = story.hand("byd", "gz-collect", [code], 1)
    assert story.scan(5) == []
    with story.tracer.projections.engine.begin() as conn:
        conn.execute(
            text("UPDATE trace_items SET custodian = 'brunp' WHERE id = :id"), {"id": code}
        )
        conn.execute(text("DELETE FROM trace_handovers WHERE id = :id"), {"id": offer})
    found = story.scan(5)
    assert {(a.kind, a.check) for a in found} == {(AnomalyKind.DOUBLE_CUSTODY, Check.PROJECTION)}
    by_key = {(a.items, a.event_ids): a for a in found}
    item = by_key[((code,), ())]
    assert "custodian is gz-collect in memory but brunp in the table" in item.summary
    handover = by_key[((code,), (offer,))]
    assert "row is present in memory but (no row) in the table" in handover.summary
    assert story.scan(5, AnomalyConfig(check_tables=False)) == []


# --- mass balance ---


def test_a_gain_within_the_rules_tolerance_is_found_when_the_tolerance_is_tightened(
    story: Story,
) -> None:
    lot = story.lot("brunp", Material.BLACK_MASS, 100.0, 0)
    out = story.lot_id()
    data = {
        "type": "recycle",
        "inputs": [{"item": lot, "mass_kg": 100.0}],
        "outputs": [{"lot": {"id": out, "material": "steel_scrap", "mass_kg": 100.3}}],
    }
    step = str(story.do("brunp", data, 1).event_id)
    assert story.scan(2) == []  # 0.3 % is inside the default 0.5 %
    found = story.scan(2, AnomalyConfig(tolerance=0.0))
    assert [(a.check, a.event_ids, a.year) for a in found] == [
        (Check.STEP_GAIN, (step,), None),
        (Check.ACTOR_YEAR_GAIN, (step,), 2025),
    ]
    assert found[0].items == (lot, out)
    assert found[0].amounts["ratio"] == pytest.approx(1.003)


def test_reagents_count_as_inputs(story: Story) -> None:
    lot = story.lot("brunp", Material.BLACK_MASS, 100.0, 0)
    data = {
        "type": "recycle",
        "inputs": [{"item": lot, "mass_kg": 100.0}],
        "outputs": [{"lot": {"id": story.lot_id(), "material": "steel_scrap", "mass_kg": 140.0}}],
        "reagents_kg": 50.0,
    }
    story.do("brunp", data, 1)
    assert story.scan(2, AnomalyConfig(tolerance=0.0)) == []


def test_a_split_losing_mass_is_found_when_the_tolerance_is_tightened(story: Story) -> None:
    lot = story.lot("scrap", Material.STEEL_SCRAP, 100.0, 0)
    parts = [
        {"lot": {"id": story.lot_id(), "material": "steel_scrap", "mass_kg": kg}}
        for kg in (50.0, 49.8)
    ]
    step = str(story.do("scrap", {"type": "lot_split", "lot": lot, "parts": parts}, 1).event_id)
    assert story.scan(2) == []  # 0.2 % lost is inside the rules' 0.5 %
    (a,) = story.scan(2, AnomalyConfig(tolerance=0.001))
    assert (a.check, a.event_ids, a.items[0]) == (Check.STEP_LOSS, (step,), lot)
    assert a.amounts["loss_share"] == pytest.approx(0.002)


@pytest.mark.parametrize(("kept_kg", "lost"), [(300.0, False), (250.0, True)])
def test_dismantling_losing_over_30_percent_is_a_mass_balance_anomaly(
    story: Story, kept_kg: float, lost: bool
) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "brunp", [code], 1)
    black_mass = story.lot_id()
    outputs = [{"lot": {"id": black_mass, "material": "black_mass", "mass_kg": kept_kg}}]
    step = str(
        story.do(
            "brunp", {"type": "dismantle", "item": code, "mass_kg": 400.0, "outputs": outputs}, 5
        ).event_id
    )
    found = story.scan(6)
    if not lost:
        assert found == []
        return
    (a,) = found
    assert (a.kind, a.check, a.items, a.actors, a.event_ids) == (
        AnomalyKind.MASS_BALANCE,
        Check.STEP_LOSS,
        (code, black_mass),
        ("brunp",),
        (step,),
    )
    assert a.amounts["loss_share"] == pytest.approx(0.375)
    assert "lost 37.5 % of the 400 kg" in a.summary


# --- element recovery ---


def _refine(story: Story, share: float, *, content: bool = True) -> tuple[str, str, str]:
    """Recycle 100 kg of black mass holding 5 kg of Li into Li2CO3 holding ``share`` of it."""
    extra = {"Li": 5.0, "Fe": 30.0} if content else {}
    lot = story.lot("brunp", Material.BLACK_MASS, 100.0, 0, **extra)
    li = round(5.0 * share, 3)
    out = story.lot_id()
    product = {
        "id": out,
        "material": "lithium_carbonate",
        "mass_kg": round(li / LI_IN_LI2CO3 + 0.01, 3),
    }
    product["content_kg"] = {"Li": li}
    data = {
        "type": "recycle",
        "inputs": [{"item": lot, "mass_kg": 100.0}],
        "outputs": [{"lot": product}],
    }
    return lot, out, str(story.do("brunp", data, 1).event_id)


@pytest.mark.parametrize(
    ("share", "checks"),
    [
        (0.90, []),
        (
            1.003,
            [Check.STEP_OVER_RECOVERY, Check.YEAR_OVER_RECOVERY],
        ),  # inside the rules' tolerance
        (0.45, [Check.STEP_UNDER_RECOVERY, Check.YEAR_UNDER_RECOVERY]),
    ],
)
def test_recovery_over_100_percent_or_under_the_floor(
    story: Story, share: float, checks: list[Check]
) -> None:
    lot, out, step = _refine(story, share)
    found = story.scan(2)
    assert [a.check for a in found] == checks
    for a in found:
        assert (a.kind, a.items, a.event_ids) == (AnomalyKind.RECOVERY, (lot, out), (step,))
        assert a.amounts["recovery_Li"] == pytest.approx(share, abs=1e-3)
        assert a.amounts["input_Li_kg"] == 5.0
    if checks:
        assert found[1].year == 2025
        assert found[0].severity is (Severity.HIGH if share > 1 else Severity.MEDIUM)


def test_recovery_is_not_judged_without_the_input_content(story: Story) -> None:
    story.lot("brunp", Material.BLACK_MASS, 100.0, 0)
    _refine(story, 0.45, content=False)
    assert story.scan(2) == []


def test_recovery_floors_are_configurable(story: Story) -> None:
    _refine(story, 0.90)
    config = AnomalyConfig(recovery_floors={"Li": 0.95})
    assert [a.check for a in story.scan(2, config)] == [
        Check.STEP_UNDER_RECOVERY,
        Check.YEAR_UNDER_RECOVERY,
    ]


def test_smelting_is_judged_too(story: Story) -> None:
    scrap = story.lot("scrap", Material.COPPER_SCRAP, 100.0, 0, Cu=98.0)
    out = {
        "id": story.lot_id(),
        "material": "copper_scrap",
        "mass_kg": 60.0,
        "content_kg": {"Cu": 58.0},
    }
    data = {
        "type": "lot_smelt",
        "inputs": [{"item": scrap, "mass_kg": 100.0}],
        "outputs": [{"lot": out}],
    }
    story.do("scrap", data, 1)
    found = story.scan(2)
    assert [a.check for a in found] == [Check.STEP_UNDER_RECOVERY, Check.YEAR_UNDER_RECOVERY]
    assert "smelting" in found[0].summary and found[1].actors == ("scrap",)


# --- late reporting ---


def test_events_recorded_after_their_deadline_are_late_reports(story: Story) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    # Art. 11: a collection point has 30 working days; this one reports after about 70.
    receipt = story.do("gz-collect", {"type": "collect", "item": code}, 3, recorded=100)
    assert receipt.late_working_days is not None and receipt.late_working_days > 30
    (a,) = story.scan(101)
    assert (a.kind, a.check, a.items, a.actors, a.event_ids) == (
        AnomalyKind.LATE_REPORT,
        Check.LATE,
        (code,),
        ("gz-collect",),
        (receipt.event_id,),
    )
    assert a.amounts == {
        "working_days_late": receipt.late_working_days,
        "deadline_working_days": 30.0,
    }
    assert a.severity is Severity.MEDIUM
    assert "(Art. 11: 30 working days)" in a.summary
    config = AnomalyConfig(
        late_min_working_days=receipt.late_working_days + 1, late_serious_working_days=999
    )
    assert story.scan(101, config) == []


def test_events_recorded_on_time_are_not_late(story: Story) -> None:
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    story.do("gz-collect", {"type": "collect", "item": code}, 3, recorded=40)  # 27 working days
    assert story.scan(41) == []


# --- the state, the API ---


def test_a_followed_state_finds_what_a_fresh_scan_finds(story: Story) -> None:
    followed = ScanState.follow(story.tracer)
    code, _ = story.retired(0)
    story.hand("byd", "gz-collect", [code], 1)
    story.do("gz-collect", {"type": "collect", "item": code}, 3, recorded=100)
    other, _ = story.retired(101)
    story.offer("byd", "sz-collect", [other], 102)
    _refine(story, 1.003)
    _refine(story, 0.45)
    now = T0 + 400 * DAY
    config = AnomalyConfig(check_tables=False)
    fresh = find_anomalies(story.tracer, now=now, config=config)
    assert {a.kind for a in fresh} == {
        AnomalyKind.LEAKAGE,
        AnomalyKind.CUSTODY_GAP,
        AnomalyKind.RECOVERY,
        AnomalyKind.LATE_REPORT,
    }
    assert find_anomalies(followed, now=now, config=config) == fresh
    assert followed.steps == ScanState.from_tracer(story.tracer).steps


def test_a_state_followed_while_another_engine_writes_holds_each_event_once(
    story: Story, tmp_path: Path
) -> None:
    url = str(tmp_path / "suyuan.db")
    _refine(story, 0.9)
    reader = Tracer(Log(open_store(url)), Projections(url))
    written: list[str] = []

    @event.listens_for(reader.projections.engine, "before_cursor_execute")
    def another_engine_writes(*args: object) -> None:
        if not written and "FROM trace_events" in str(args[2]):
            written.append(_refine(story, 0.95)[2])  # after the reader caught up, before it reads

    try:
        followed = ScanState.follow(reader, check_tables=True)
        assert written
        assert reader.catch_up() > 0
        assert followed.mismatches == []
        fresh = ScanState.from_tracer(story.tracer)
        assert [s.event_id for s in followed.steps] == [s.event_id for s in fresh.steps]
        assert followed.steps == fresh.steps and followed.seq == fresh.seq
    finally:
        reader.close()


def test_anomalies_are_json_ready(story: Story) -> None:
    code, _ = story.retired(0)
    (a,) = story.scan(40)
    data = json.loads(json.dumps(a.to_json()))
    assert data["kind"] == "leakage" and data["check"] == "not_handed_over"
    assert data["items"] == [code] and data["detected_at"] == (T0 + 40 * DAY).isoformat()
    assert set(data) == {f.name for f in dataclasses.fields(Anomaly)}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"pending_after": timedelta(days=-1)}, "pending_after must not be negative"),
        ({"tolerance": 1.5}, "tolerance must be a share"),
        ({"recovery_floors": {"Li": -0.1}}, r"recovery_floors\['Li'\] must be a share"),
        ({"max_recovery": 0.0}, "max_recovery must be positive"),
        ({"min_element_kg": -1.0}, "min_element_kg"),
        ({"late_min_working_days": 0}, "late_min_working_days"),
    ],
)
def test_config_refuses_nonsense(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AnomalyConfig(**changes)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        find_anomalies(ScanState(MemoryWorld()), now=datetime(2026, 1, 1))


# --- a simulated fleet with known anomalies ---

TRUTH_CHECKS = {
    SimKind.UNCOLLECTED: Check.NOT_HANDED_OVER,
    SimKind.UNACCEPTED: Check.PENDING_HANDOVER,
    SimKind.STALLED: Check.STALLED,
    SimKind.LATE_REPORT: Check.LATE,
    SimKind.LOW_RECOVERY: Check.STEP_UNDER_RECOVERY,
    SimKind.OVER_RECOVERY: Check.STEP_OVER_RECOVERY,
    SimKind.DISMANTLE_LOSS: Check.STEP_LOSS,
}
"""The check expected to find each kind the simulator injects."""
# Actor-year findings the injected steps cause by themselves: allowed when every event they
# name is an injected anomaly's (a recycler-year holding one 100.3 % step may exceed 100 %).
DERIVED = {
    Check.YEAR_OVER_RECOVERY: SimKind.OVER_RECOVERY,
    Check.YEAR_UNDER_RECOVERY: SimKind.LOW_RECOVERY,
}


@dataclass
class Run:
    tracer: Tracer
    truth: GroundTruth
    now: datetime
    found: list[Anomaly]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """``SimConfig.small()`` (200 packs, 2021-2026, every kind injected), scanned at its end."""
    clock = SimClock()
    path = tmp_path_factory.mktemp("fleet") / "sim.db"
    tracer = open_simulation_tracer(str(path), clock=clock)
    config = SimConfig.small()
    truth = simulate(tracer, config)
    now = datetime(config.last_year, 12, 31, 23, 59, 59, tzinfo=CST)
    yield Run(tracer, truth, now, find_anomalies(tracer, now=now))
    tracer.close()


def _limit(kind: str, config: AnomalyConfig) -> timedelta | None:
    """How old an injected leak or stall must be before a scan can see it."""
    return {
        SimKind.UNCOLLECTED: config.retired_after,
        SimKind.UNACCEPTED: config.pending_after,
        SimKind.STALLED: config.collected_after,
    }.get(SimKind(kind))


def _age(run: Run, injected: Any) -> timedelta:
    if injected.kind == SimKind.UNACCEPTED:
        return run.now - run.tracer.world.handovers[injected.event_ids[0]].created
    return run.now - run.tracer.world.items[injected.items[0]].last_time


def test_the_simulator_injects_every_kind(fleet: Run) -> None:
    assert {a.kind for a in fleet.truth.anomalies} == set(TRUTH_CHECKS)
    assert set(TRUTH_CHECKS) == set(SimKind)


def test_every_injected_anomaly_is_found(fleet: Run) -> None:
    """Each injected anomaly is found by its check, naming its first item and its event.

    The one allowance: a leak or stall younger than its limit at the end of the run (a pack
    retired, offered or collected in the last weeks) cannot be told from one in progress.
    """
    config = AnomalyConfig()
    too_young = []
    for injected in fleet.truth.anomalies:
        check = TRUTH_CHECKS[SimKind(injected.kind)]
        hits = [
            a
            for a in fleet.found
            if a.check is check
            and set(injected.event_ids) & set(a.event_ids)
            and injected.items[0] in a.items
        ]
        limit = _limit(injected.kind, config)
        if limit is not None and _age(fleet, injected) <= limit:
            assert hits == []
            too_young.append(injected)
            continue
        assert len(hits) == 1, injected
    assert len(too_young) <= len(fleet.truth.leaked) // 3  # a few at the very end
    found_leaks = {i for a in fleet.found if a.kind is AnomalyKind.LEAKAGE for i in a.items}
    young = {a.items[0] for a in too_young}
    assert found_leaks == set(fleet.truth.leaked) - young


def test_nothing_else_is_found(fleet: Run) -> None:
    """Every finding is an injected anomaly or an actor-year total it alone explains."""
    injected_events = {
        SimKind(a.kind): {e for b in fleet.truth.anomalies_of(a.kind) for e in b.event_ids}
        for a in fleet.truth.anomalies
    }
    for a in fleet.found:
        if a.check in DERIVED:
            assert set(a.event_ids) <= injected_events[DERIVED[a.check]], a
            continue
        kinds = [k for k, check in TRUTH_CHECKS.items() if check is a.check]
        assert kinds, a  # no double custody, no mass gain, no projection mismatch
        assert set(a.event_ids) & injected_events[kinds[0]], a


def test_late_reports_match_the_receipts(fleet: Run) -> None:
    late = {a.event_ids[0]: a for a in fleet.found if a.kind is AnomalyKind.LATE_REPORT}
    assert set(late) == set(fleet.truth.late_reports)
    for event_id, report in fleet.truth.late_reports.items():
        assert late[event_id].amounts["working_days_late"] == report.late_working_days
        assert late[event_id].actors == (report.actor,)
        assert set(late[event_id].items) == set(report.items)
