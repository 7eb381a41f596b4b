"""Properties of the custody rules over random histories of valid and invalid events.

A small world (one organisation per role, a few packs) is driven by random events: mostly
plausible ones by the custodian, some by the wrong actor, on the wrong item, with a stale
``prev``, too early, or with outputs heavier than their inputs. After every step:

* every item has one custodian and one owner, both registered, and at most one pending
  handover, which is pending and lists it;
* a refused event leaves the world exactly as it was, and checking never mutates it;
* masses never grow through a step beyond the tolerance: a step's outputs weigh at most
  (1 + tolerance) times the items it touched, so the mass of all live items stays within a
  budget that grows by (1 + tolerance) per accepted step plus any mass newly brought in
  (commission, lot_create, or a correction upwards: corrections are not steps);
* ended items change only by correction, and then only in recorded facts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.actors import Role
from schemas.composition import estimate_composition
from schemas.events import EventType
from tests.trace.world import CAST, Sim, body, fake_event_id, lot, snapshot
from trace.errors import TraceError
from trace.state import TERMINAL, HandoverStatus, ItemKind, ItemState, Status

_T = TypeVar("_T")
ACTORS = sorted(CAST)
VINS = ["LGXCE4CB5N0000001", "LGXCE4CB5N0000002"]
# What a correction may change besides the chain; everything else of an ended item is fixed.
CORRECTABLE = {"mass_kg", "soh_pct", "grade", "content_kg", "chemistry", "energy_kwh"}
CHAIN = {"head", "last_time"}


class Chooser(Protocol):
    """The randomness a driver needs: hypothesis's draws or a seeded ``random.Random``."""

    def choice(self, options: Sequence[_T]) -> _T: ...
    def uniform(self, low: float, high: float) -> float: ...
    def chance(self, p: float) -> bool: ...


@dataclass
class Drawn:
    draw: Any  # hypothesis's data.draw

    def choice(self, options: Sequence[_T]) -> _T:
        return options[int(self.draw(st.integers(0, len(options) - 1)))]

    def uniform(self, low: float, high: float) -> float:
        return float(self.draw(st.floats(low, high, allow_nan=False, allow_infinity=False)))

    def chance(self, p: float) -> bool:
        return int(self.draw(st.integers(0, 999))) < p * 1000


@dataclass
class Seeded:
    rng: random.Random

    def choice(self, options: Sequence[_T]) -> _T:
        return options[self.rng.randrange(len(options))]

    def uniform(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p


@dataclass
class Stats:
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)


# --- building random events ---

Built = tuple[str, dict[str, Any]]
STOCK = {Status.IN_STOCK}
WASTE = {Status.RETIRED, Status.COLLECTED}
# Who usually takes an item next, by its status: the flow of a pack's life.
NEXT = {
    Status.IN_STOCK: ["byd", "dealer", "cascade"],
    Status.INSTALLED: ["byd", "dealer"],
    Status.RETIRED: ["collector", "cascade", "recycler"],
    Status.COLLECTED: ["cascade", "recycler"],
}


def _pick(sim: Sim, c: Chooser, want: set[Status], *, lots: bool | None = False) -> ItemState:
    """An item, mostly one in ``want`` of the wanted kind, sometimes any at all."""
    every = [sim.item(i) for i in sorted(sim.world.items)]
    fit = [
        s for s in every if s.status in want and (lots is None or (s.kind is ItemKind.LOT) == lots)
    ]
    return c.choice(fit if fit and c.chance(0.9) else every)


def _by(c: Chooser, state: ItemState) -> str:
    """Mostly the custodian; sometimes anyone (who may lack the custody or the role)."""
    return state.custodian if c.chance(0.85) else c.choice(ACTORS)


def _kg(c: Chooser, state: ItemState) -> float:
    """A declared mass near the record, sometimes above its tolerance."""
    return round((state.mass_kg or 100.0) * c.uniform(0.9, 1.01), 6)


def _outputs(c: Chooser, sim: Sim, inputs: list[tuple[ItemState, float]]) -> list[dict[str, Any]]:
    """One or two lots of black mass, together sometimes heavier (or richer) than the input."""
    total = sum(kg for _, kg in inputs) * c.uniform(0.3, 1.05)
    li = sum(s.content_kg.get("Li", 0.0) for s, _ in inputs) * c.uniform(0.4, 1.03)
    n = 1 if c.chance(0.5) else 2
    content = {"Li": min(li, total) / n} if li else None
    return [lot(sim.lot_id(), "black_mass", round(total / n, 6), content) for _ in range(n)]


def _masses(inputs: list[tuple[ItemState, float]]) -> list[dict[str, Any]]:
    return [{"item": s.id, "mass_kg": kg} for s, kg in inputs]


def _new(sim: Sim, c: Chooser) -> Built:
    actor = c.choice(["catl", "byd", "recycler", "scrap", "cascade"])
    if c.chance(0.5):
        return actor, body("commission", item=sim.code(), mass_kg=round(c.uniform(50, 500), 3))
    record = lot(sim.lot_id(), "black_mass", round(c.uniform(10, 200), 3))
    return actor, body("lot_create", **record)


def _handover(sim: Sim, c: Chooser) -> Built:
    state = _pick(sim, c, STOCK | WASTE | {Status.INSTALLED}, lots=None)
    to = c.choice(NEXT.get(state.status, ACTORS) if c.chance(0.8) else ACTORS)
    data = body("handover", items=[state.id], to=to, transfer_ownership=c.chance(0.5))
    return _by(c, state), data


def _answer(sim: Sim, c: Chooser) -> Built:
    offers = sorted(sim.world.handovers.values(), key=lambda h: h.created)
    open_ = [h for h in offers if h.status is HandoverStatus.PENDING]
    if not offers:
        return _handover(sim, c)
    h = c.choice(open_ if open_ and c.chance(0.9) else offers)
    kind = c.choice(["accept"] * 6 + ["reject", "cancel", "dispute"])
    party = {"accept": h.receiver, "reject": h.receiver, "cancel": h.sender}.get(kind, h.sender)
    actor = party if c.chance(0.9) else c.choice(ACTORS)
    items = list(h.items)
    if c.chance(0.1):  # not what was offered: one more item, or one never seen
        other = _pick(sim, c, STOCK, lots=None).id
        items = [*items, other] if other not in items else [*items[:1], sim.code()]
    extra = {} if kind == "accept" else {"reason": "random"}
    return actor, body(kind, handover=h.id, items=items, **extra)


def _use(sim: Sim, c: Chooser) -> Built:
    """Inspect, install, remove or retire a battery."""
    kind = c.choice(["inspect", "install", "install", "remove", "remove", "retire", "retire"])
    want = {"install": STOCK, "remove": {Status.INSTALLED}, "retire": STOCK | {Status.INSTALLED}}
    state = _pick(sim, c, want.get(kind, STOCK | WASTE))
    actor = _by(c, state)
    if kind in ("install", "remove"):
        extra = {} if kind == "install" else {"reason": "service"}
        return actor, body(kind, item=state.id, vin=c.choice(VINS), **extra)
    if kind == "retire":
        return actor, body("retire", item=state.id, reason="worn")
    grade = c.choice(["A", "B", "C", "D", "scrap"])
    soh = round(c.uniform(0, 100), 1)
    return actor, body("inspect", item=state.id, soh_pct=soh, grade=grade)


def _end_of_life(sim: Sim, c: Chooser) -> Built:
    """Collect, repurpose, dismantle or recycle a battery."""
    kind = c.choice(["collect", "repurpose", "dismantle", "recycle"])
    if kind == "recycle" and c.chance(0.5):
        state = _pick(sim, c, STOCK, lots=True)  # black mass from a dismantling
    else:
        state = _pick(sim, c, {Status.RETIRED} if kind == "collect" else WASTE)
    actor = _by(c, state)
    if kind == "collect":
        return actor, body("collect", item=state.id, mass_kg=_kg(c, state))
    if kind == "repurpose":
        return actor, body("repurpose", item=state.id, new_code=sim.code(), new_use="backup_power")
    inputs = [(state, _kg(c, state))]
    if kind == "dismantle":
        outputs = _outputs(c, sim, inputs)
        return actor, body("dismantle", item=state.id, mass_kg=inputs[0][1], outputs=outputs)
    return actor, body("recycle", inputs=_masses(inputs), outputs=_outputs(c, sim, inputs))


def _lots(sim: Sim, c: Chooser) -> Built:
    """Split, merge or smelt lots."""
    first = _pick(sim, c, STOCK, lots=True)
    mates = [
        s
        for s in sim.world.items.values()
        if s.kind is ItemKind.LOT and s.custodian == first.custodian and s.id != first.id
    ]
    second = c.choice(sorted(mates, key=lambda s: s.id)) if mates else first
    actor = _by(c, first)
    material = first.material or "black_mass"
    kind = c.choice(["lot_split", "lot_merge", "lot_smelt"])
    if kind == "lot_split":
        half = round((first.mass_kg or 1.0) * c.uniform(0.99, 1.01) / 2, 6)
        parts = [lot(sim.lot_id(), material, half) for _ in range(2)]
        return actor, body("lot_split", lot=first.id, parts=parts)
    if kind == "lot_merge" and second.id != first.id:
        kg = ((first.mass_kg or 1.0) + (second.mass_kg or 1.0)) * c.uniform(0.99, 1.01)
        into = lot(sim.lot_id(), material, round(kg, 6))
        return actor, body("lot_merge", lots=[first.id, second.id], into=into)
    inputs = [(first, _kg(c, first))]
    return actor, body("lot_smelt", inputs=_masses(inputs), outputs=_outputs(c, sim, inputs))


def _correction(sim: Sim, c: Chooser) -> Built:
    state = _pick(sim, c, set(TERMINAL), lots=None)
    actor = state.producer if c.chance(0.5) else _by(c, state)
    fields_: dict[str, Any] = {"soh_pct": 50, "grade": "C"}
    if c.chance(0.5):
        fields_ = {"mass_kg": round(c.uniform(10, 500), 3)}
    data = body("correction", corrects=fake_event_id(0), item=state.id, reason="r", fields=fields_)
    return actor, data


# Weighted so that lives get far enough to be recycled.
BUILDERS = [_new, _handover, _handover, _answer, _answer, _answer, _use, _use]
BUILDERS += [_end_of_life, _end_of_life, _end_of_life, _lots, _lots, _correction]


def _build(sim: Sim, c: Chooser) -> Built:
    return c.choice(BUILDERS)(sim, c)


# --- the driver and the invariants ---


def _world(c: Chooser, seed: int) -> tuple[Sim, float]:
    sim = Sim.cast(seed)
    total = 0.0
    for _ in range(3):
        kwh = round(c.uniform(20, 80), 1)
        data: dict[str, Any] = {"mass_kg": round(kwh * 5, 3)}
        if c.chance(0.5):  # mass and content from the composition
            composition = estimate_composition("NCM622", kwh).model_dump(mode="json")
            data = {"mass_kg": None, "composition": composition}
        total += sim.item(sim.commission(**data)).mass_kg or 0.0
    return sim, total


def _live_mass(sim: Sim) -> float:
    return sum(s.mass_kg or 0.0 for s in sim.world.items.values() if not s.terminal)


def _check_invariants(sim: Sim) -> None:
    pending: Counter[str] = Counter()
    for handover in sim.world.handovers.values():
        if handover.status is HandoverStatus.PENDING:
            pending.update(handover.items)
            assert all(sim.item(i).pending_handover == handover.id for i in handover.items)
    for state in sim.world.items.values():
        assert state.custodian in sim.world.actors and state.owner in sim.world.actors
        assert sim.world.actors[state.custodian].role is not Role.AUDITOR
        assert pending[state.id] <= 1
        if state.pending_handover is not None:
            offer = sim.handover(state.pending_handover)
            assert offer.status is HandoverStatus.PENDING and state.id in offer.items


def _check_ended(kind: str, old: ItemState, new: ItemState) -> None:
    """An ended item changes only by correction, and only in its recorded facts."""
    assert kind == EventType.CORRECTION.value, f"{kind} changed ended item {old.id}"
    for f in fields(ItemState):
        if f.name not in CORRECTABLE | CHAIN:
            assert getattr(old, f.name) == getattr(new, f.name), f.name


def drive(c: Chooser, *, seed: int, steps: int) -> Stats:
    """Run ``steps`` random events, checking every property after each."""
    sim, budget = _world(c, seed)
    stats = Stats()
    for _ in range(steps):
        actor, data = _build(sim, c)
        noise = c.choice(["none"] * 18 + ["stale", "early"])
        kw: dict[str, Any] = {}
        if noise == "early":
            kw["at"] = sim.clock.replace(year=2025)  # before everything in this world
        try:
            event = sim.event(actor, data, **kw)
        except ValidationError:  # the schema's refusal (a lot re-coded), not the rules'
            stats.refused["schema"] += 1
            continue
        if noise == "stale":
            stale = {item: fake_event_id(-1) for item in event.items()}
            event = event.model_copy(update={"prev": {**event.prev, **stale}})
        before = snapshot(sim.world)
        try:
            event_id, effects = sim.check(event)
        except TraceError as exc:
            assert snapshot(sim.world) == before, f"refused {event.type} changed the world"
            stats.refused[getattr(exc, "rule", type(exc).__name__)] += 1
            continue
        assert snapshot(sim.world) == before, "checking changed the world"
        added = touched = 0.0
        live = _live_mass(sim)
        for item_id, new in effects.items.items():
            old = sim.world.item(item_id)
            if old is None:
                if event.type in (EventType.COMMISSION, EventType.LOT_CREATE):
                    added += new.mass_kg or 0.0
                continue
            touched += old.mass_kg or 0.0
            if old.terminal:
                _check_ended(event.type.value, old, new)
            elif event.type is EventType.CORRECTION:
                added += max(0.0, (new.mass_kg or 0.0) - (old.mass_kg or 0.0))
        assert all(effects.items[i].head == event_id for i in event.items())
        sim.world.apply(effects)
        sim.ids.append(event_id)
        stats.accepted[event.type.value] += 1
        # Per step: what went in may come out at most (1 + tolerance) times heavier ...
        assert _live_mass(sim) <= live + added + sim.tolerance * touched + 1e-6, event.type
        # ... so over a history, at most (1 + tolerance) per step of all that came in.
        budget = budget * (1 + sim.tolerance) + added
        assert _live_mass(sim) <= budget + 1e-6
        lots = sum(
            s.mass_kg or 0.0
            for s in sim.world.items.values()
            if s.kind is ItemKind.LOT and not s.terminal
        )
        assert lots <= budget + 1e-6
        _check_invariants(sim)
    return stats


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_random_histories_keep_custody_and_mass_invariants(data: st.DataObject, seed: int) -> None:
    drive(Drawn(data.draw), seed=seed, steps=data.draw(st.integers(5, 60)))


EVENTS_REACHED = {e.value for e in EventType} - {"assemble", "disassemble"}
RULES_REACHED = {
    "custodian-only", "role", "ChainError", "UnknownItem", "time-order", "pending-handover",
    "terminal-item", "mass-balance", "handover-items", "handover-closed", "not-inspected",
}  # fmt: skip


def test_the_driver_reaches_the_rules_it_means_to_test() -> None:
    stats = Stats()
    for seed in range(6):
        run = drive(Seeded(random.Random(seed)), seed=seed, steps=300)
        stats.accepted.update(run.accepted)
        stats.refused.update(run.refused)
    assert not EVENTS_REACHED - set(stats.accepted), stats.accepted
    assert not RULES_REACHED - set(stats.refused), stats.refused
