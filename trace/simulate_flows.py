"""A pack's life as events: the steps of the fleet simulator, and its ground truth.

:class:`Fleet` puts each pack's first step on the :class:`~trace.simulate_agenda.Agenda`;
each step writes the events of one moment of the pack's life — commission, sale,
installation, yearly inspections, retirement, collection, cascade use, recycling — and
schedules the next, following the pack's :class:`~trace.simulate_plan.PackPlan`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from schemas.actors import Role
from schemas.codes import recode_for_cascade
from schemas.events import (
    AcceptData,
    CollectData,
    CommissionData,
    EventData,
    HandoverData,
    InspectData,
    InstallData,
    RemoveData,
    RepurposeData,
    RetireData,
    is_lot_id,
)
from trace.simulate_agenda import Agenda
from trace.simulate_config import AnomalyKind, SimConfig
from trace.simulate_lots import LotFlows
from trace.simulate_plan import Fate, PackPlan, code_date, grade
from trace.simulate_truth import Anomaly, GroundTruth, TruthBuilder
from trace.simulate_world import CST, Emitter, SimActor

__all__ = ["Fleet"]

_YEAR: Final = timedelta(days=365.25)
_STEP: Final = timedelta(minutes=1)
_HOUR: Final = timedelta(hours=1)
_CASCADE_SPEC: Final = "2L"  # the operators' specification code for second-life packs
_PERCENT: Final = 100.0
_OPEN_STATUSES: Final = frozenset({"retired", "collected"})


def _year(moment: datetime) -> int:
    return moment.astimezone(CST).year


def _same_day_later(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, kept on the same (CST) calendar day, and never before ``moment``.

    Steps land at fractions of a second, so a moment can lie past 23:59:59 itself; the
    day's last second would then come before it (the custody rules refuse that).

    >>> late = datetime(2023, 12, 27, 23, 59, 59, 458000, tzinfo=CST)
    >>> _same_day_later(late, _STEP) == late
    True
    >>> _same_day_later(late.replace(second=30), _STEP).isoformat()
    '2023-12-27T23:59:59+08:00'
    """
    local = moment.astimezone(CST)
    last = local.replace(hour=23, minute=59, second=59, microsecond=0)
    return min(local + delta, max(local, last))


@dataclass(slots=True)
class _Life:
    """What a pack's steps learn as they run."""

    plan: PackPlan
    code: str  # the code in use: the original, then the cascade re-code
    installed: datetime | None = None
    retire_at: datetime | None = None
    soh: float = _PERCENT
    second_life: datetime | None = None


class Fleet:
    """Turns pack plans into events, in simulated-time order, and counts the ground truth."""

    def __init__(
        self,
        config: SimConfig,
        emitter: Emitter,
        cast: Mapping[Role, Sequence[SimActor]],
        plans: Sequence[PackPlan],
        *,
        span: tuple[datetime, datetime],
    ) -> None:
        self.config = config
        self.emitter = emitter
        self.cast = cast
        self.plans = plans
        self.start, self.end = span
        self.truth = TruthBuilder()
        self.agenda = Agenda(emitter, span=span, upload_days=config.batch_days)
        self.schedule = self.agenda.schedule
        self.lots = LotFlows(
            config,
            emitter,
            self.truth,
            self.schedule,
            cast={
                "makers": cast[Role.BATTERY_MAKER],
                "recyclers": cast[Role.RECYCLER],
                "processors": cast[Role.SCRAP_PROCESSOR],
            },
            end=self.end,
        )
        self._serials: Counter[tuple[str, date]] = Counter()

    def run(self) -> GroundTruth:
        """Play the whole simulation; return its ground truth."""
        for plan in self.plans:
            self._next(_Life(plan, plan.code), plan.commissioned, "commission", self._commission)
        self.lots.start(self.start)
        self.agenda.play()
        return self._truth()

    def _emit(self, actor: SimActor, when: datetime, data: EventData) -> str:
        return self.emitter.emit(actor, when, data)

    def _actor(self, role: Role, index: int) -> SimActor:
        return self.cast[role][index]

    def _count(self, life: _Life, when: datetime, **amounts: float) -> None:
        """Add to the counters of the pack's battery maker and automaker."""
        plan = life.plan
        for role, index in ((Role.BATTERY_MAKER, plan.maker), (Role.AUTOMAKER, plan.automaker)):
            self.truth.producer(self._actor(role, index).id, _year(when), **amounts)

    def _hand(
        self,
        life: _Life,
        when: datetime,
        sender: SimActor,
        receiver: SimActor,
        label: str,
        then: Callable[[_Life, datetime], None],
    ) -> str:
        """Hand the pack over; the receiver accepts after the transit and goes on with ``then``."""
        offer = HandoverData(items_=[life.code], to=receiver.id, transfer_ownership=True)
        hid = self._emit(sender, when, offer)

        def accept(at: datetime) -> None:
            self._emit(receiver, at, AcceptData(handover=hid, handover_items=[life.code]))
            then(life, at)

        self.schedule(when + life.plan.transit, label, (life.code,), accept)
        return hid

    def _next(
        self, life: _Life, when: datetime, label: str, run: Callable[[_Life, datetime], None]
    ) -> None:
        self.schedule(when, label, (life.code,), lambda t: run(life, t))

    # --- first life ---

    def _commission(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        maker = self._actor(Role.BATTERY_MAKER, plan.maker)
        composition = plan.composition
        materials = self.lots.materials(maker, when, plan.code, composition)
        data = CommissionData(
            item=plan.code,
            composition=composition,
            mass_kg=composition.mass_kg,
            materials=materials,
        )
        self._emit(maker, when, data)
        self.truth.producer(
            maker.id,
            _year(when),
            placed_packs=1,
            placed_kwh=composition.energy_kwh,
            placed_kg=composition.mass_kg,
        )
        self._next(life, when + plan.sale_delay, "sale", self._sell)

    def _sell(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        maker = self._actor(Role.BATTERY_MAKER, plan.maker)
        automaker = self._actor(Role.AUTOMAKER, plan.automaker)
        self._hand(life, when, maker, automaker, "automaker accepts", self._bought)

    def _bought(self, life: _Life, when: datetime) -> None:
        self._next(life, when + life.plan.install_delay, "install", self._install)

    def _install(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        automaker = self._actor(Role.AUTOMAKER, plan.automaker)
        self._emit(automaker, when, InstallData(item=plan.code, vin=plan.vin))
        composition = plan.composition
        self.truth.producer(
            automaker.id,
            _year(when),
            placed_packs=1,
            placed_kwh=composition.energy_kwh,
            placed_kg=composition.mass_kg,
        )
        life.installed, life.retire_at = when, when + plan.life
        self._in_use(life, when)

    def _in_use(self, life: _Life, when: datetime) -> None:
        """Schedule the next yearly inspection, or the retirement if that comes first."""
        assert life.installed is not None and life.retire_at is not None
        years = (when - life.installed) // _YEAR + 1
        inspection = max(when, life.installed + years * _YEAR)
        if inspection < life.retire_at:
            self._next(life, inspection, "inspect", self._inspect)
        else:
            self._next(life, max(when, life.retire_at), "retire", self._retire)

    def _inspection(self, life: _Life, soh: float) -> InspectData:
        energy = life.plan.composition.energy_kwh
        soh = round(soh, 1)
        return InspectData(
            item=life.code,
            soh_pct=soh,
            remaining_capacity_kwh=round(energy * soh / _PERCENT, 2),
            grade=grade(soh),
        )

    def _inspect(self, life: _Life, when: datetime) -> None:
        assert life.installed is not None
        automaker = self._actor(Role.AUTOMAKER, life.plan.automaker)
        self._emit(automaker, when, self._inspection(life, life.plan.soh(when - life.installed)))
        self._in_use(life, when)

    def _retire(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        assert life.installed is not None
        automaker = self._actor(Role.AUTOMAKER, plan.automaker)
        life.soh = plan.soh(when - life.installed)
        self._emit(
            automaker, when, RemoveData(item=plan.code, vin=plan.vin, reason=plan.retire_reason)
        )
        retire = RetireData(item=plan.code, reason=plan.retire_reason)
        retired = self._emit(automaker, when + _STEP, retire)
        self._count(life, when + _STEP, retired_packs=1, retired_kg=plan.composition.mass_kg)
        if plan.fate is Fate.UNCOLLECTED:
            self._leak(life, when, AnomalyKind.UNCOLLECTED, (automaker.id,), retired)
            return
        self._next(
            life, when + _STEP + plan.retire_to_handover, "hand to collector", self._to_collector
        )

    def _leak(
        self, life: _Life, when: datetime, kind: AnomalyKind, actors: tuple[str, ...], eid: str
    ) -> None:
        self.truth.leaked[life.code] = kind.value
        self.truth.anomaly(when.isoformat(), Anomaly(kind.value, (life.code,), actors, (eid,)))

    def _to_collector(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        automaker = self._actor(Role.AUTOMAKER, plan.automaker)
        collector = self._actor(Role.COLLECTOR, plan.collector)
        if plan.fate is Fate.UNACCEPTED:
            offer = HandoverData(items_=[plan.code], to=collector.id, transfer_ownership=True)
            hid = self._emit(automaker, when, offer)
            self._leak(life, when, AnomalyKind.UNACCEPTED, (automaker.id, collector.id), hid)
            return
        self._hand(life, when, automaker, collector, "collector accepts", self._received)

    def _received(self, life: _Life, when: datetime) -> None:
        self._next(life, when + _HOUR, "collect", self._collect)

    def _collect(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        collector = self._actor(Role.COLLECTOR, plan.collector)
        mass = plan.composition.mass_kg
        eid = self._emit(collector, when, CollectData(item=plan.code, mass_kg=mass))
        self._count(life, when, collected_packs=1, collected_kg=mass)
        if plan.anomaly is AnomalyKind.STALLED:
            detail: dict[str, float | str] = {"collected_at": when.isoformat()}
            anomaly = Anomaly(plan.anomaly.value, (plan.code,), (collector.id,), (eid,), detail)
            self.truth.anomaly(when.isoformat(), anomaly)
            return
        self._next(life, when + plan.dwell, "send on", self._send_on)

    def _send_on(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        collector = self._actor(Role.COLLECTOR, plan.collector)
        if plan.cascade is not None:
            operator = self._actor(Role.CASCADE_OPERATOR, plan.cascade.operator)
            self._hand(life, when, collector, operator, "operator accepts", self._to_grade)
        else:
            recycler = self._actor(Role.RECYCLER, plan.recycler)
            self._hand(life, when, collector, recycler, "recycler accepts", self._at_recycler)

    # --- second life ---

    def _to_grade(self, life: _Life, when: datetime) -> None:
        assert life.plan.cascade is not None
        self._next(life, when + life.plan.cascade.wait, "repurpose", self._repurpose)

    def _recode(self, operator: SimActor, original: str, when: datetime) -> str:
        day = code_date(when)
        self._serials[(operator.id, day)] += 1
        link = recode_for_cascade(
            original,
            manufacturer=operator.code,
            spec=_CASCADE_SPEC,
            date=day,
            serial=self._serials[(operator.id, day)],
        )
        return link.code.text

    def _repurpose(self, life: _Life, when: datetime) -> None:
        plan, cascade = life.plan, life.plan.cascade
        assert cascade is not None
        operator = self._actor(Role.CASCADE_OPERATOR, cascade.operator)
        self._emit(operator, when, self._inspection(life, life.soh))
        new_code = self._recode(operator, plan.code, when)
        data = RepurposeData(item=plan.code, new_code=new_code, new_use=cascade.new_use)
        self._emit(operator, when + _STEP, data)
        self._count(life, when + _STEP, repurposed_packs=1, repurposed_kg=plan.composition.mass_kg)
        life.code, life.second_life = new_code, when + _STEP
        self._second_life(life, when + _STEP)

    def _second_soh(self, life: _Life, when: datetime) -> float:
        assert life.plan.cascade is not None and life.second_life is not None
        years = (when - life.second_life) / _YEAR
        return max(0.0, life.soh - life.plan.cascade.decline * years)

    def _second_life(self, life: _Life, when: datetime) -> None:
        cascade = life.plan.cascade
        assert cascade is not None and life.second_life is not None
        end = life.second_life + cascade.life
        years = (when - life.second_life) // _YEAR + 1
        inspection = max(when, life.second_life + years * _YEAR)
        if inspection < end:
            self._next(life, inspection, "inspect (second life)", self._second_inspect)
        else:
            self._next(life, max(when, end), "retire (second life)", self._second_retire)

    def _second_inspect(self, life: _Life, when: datetime) -> None:
        assert life.plan.cascade is not None
        operator = self._actor(Role.CASCADE_OPERATOR, life.plan.cascade.operator)
        self._emit(operator, when, self._inspection(life, self._second_soh(life, when)))
        self._second_life(life, when)

    def _second_retire(self, life: _Life, when: datetime) -> None:
        cascade = life.plan.cascade
        assert cascade is not None
        operator = self._actor(Role.CASCADE_OPERATOR, cascade.operator)
        reason = "end of second life: state of health too low for storage use"
        self._emit(operator, when, RetireData(item=life.code, reason=reason))
        self._next(life, when + cascade.to_recycler, "hand to recycler", self._cascade_to_recycler)

    def _cascade_to_recycler(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        assert plan.cascade is not None
        operator = self._actor(Role.CASCADE_OPERATOR, plan.cascade.operator)
        recycler = self._actor(Role.RECYCLER, plan.recycler)
        self._hand(life, when, operator, recycler, "recycler accepts", self._collect_again)

    def _collect_again(self, life: _Life, when: datetime) -> None:
        self._next(life, when + _HOUR, "recycler collects", self._recycler_collect)

    def _recycler_collect(self, life: _Life, when: datetime) -> None:
        recycler = self._actor(Role.RECYCLER, life.plan.recycler)
        mass = life.plan.composition.mass_kg
        self._emit(recycler, when, CollectData(item=life.code, mass_kg=mass))
        self._at_recycler(life, when)

    # --- the end ---

    def _at_recycler(self, life: _Life, when: datetime) -> None:
        self._next(life, when + life.plan.recycle_delay, "recycle", self._end)

    def _end(self, life: _Life, when: datetime) -> None:
        plan = life.plan
        recycler = self._actor(Role.RECYCLER, plan.recycler)
        composition = plan.composition
        self._count(life, when, recycled_packs=1, recycled_kg=composition.mass_kg)
        _, black_mass = self.lots.dismantle(recycler, when, life.code, composition, plan.anomaly)
        later = _same_day_later(when, _STEP)
        content = composition.content_kg

        def refine(at: datetime) -> None:
            self.lots.refine(
                recycler, at, black_mass, pack=life.code, pack_content=content, anomaly=plan.anomaly
            )

        self.schedule(later, "refine black mass", (black_mass.id,), refine)

    # --- the ground truth ---

    def _truth(self) -> GroundTruth:
        emitter = self.emitter
        in_flight: dict[str, str] = {}
        for step in self.agenda.left():
            for item in step.items:
                open_ = emitter.status.get(item) in _OPEN_STATUSES or item in emitter.pending
                if not is_lot_id(item) and open_:
                    in_flight.setdefault(item, step.label)
        c = self.config
        actors = {a.id: a.role.value for role in self.cast.values() for a in role}
        return self.truth.build(
            seed=c.seed,
            first_year=c.first_year,
            last_year=c.last_year,
            config=c.as_dict(),
            actors=dict(sorted(actors.items())),
            packs=len(self.plans),
            events=emitter.events,
            event_counts=dict(sorted(emitter.counts.items())),
            late_reports=dict(sorted(emitter.late_reports.items())),
            in_flight=dict(sorted(in_flight.items())),
            status_counts=emitter.status_counts(),
            pending_handovers=len(emitter.pending),
        )
