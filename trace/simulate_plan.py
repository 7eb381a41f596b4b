"""The life of every simulated pack, drawn up front from the seed.

Drawing each pack's life before anything is written — who makes and buys it, when it
retires and why, whether it is collected, lives a second life, where it is recycled — keeps
the run deterministic and lets the injected anomalies be placed exactly: a stalled pack must
be collected at least a year before the end, a dismantle-loss pack must be dismantled.
The flows (:mod:`trace.simulate_flows`) then turn plans into events in time order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Final

from schemas.codes import BatteryType, ProductType, generate_code
from schemas.composition import Chemistry, Composition, estimate_composition
from schemas.events import NewUse
from trace.simulate_config import AnomalyKind, SimConfig
from trace.simulate_world import CST

__all__ = [
    "CODE_DAY_MAX",
    "CascadePlan",
    "Fate",
    "PackPlan",
    "code_date",
    "grade",
    "plan_packs",
]

_YEAR: Final = timedelta(days=365.25)
_DAY: Final = timedelta(days=1)
_WORK_START_HOUR: Final = 8
_WORK_HOURS: Final = 10
CODE_DAY_MAX: Final = 26
"""Days 27-31 have two readings in the GB/T 34014 date table; codes are dated the 26th."""
STALL_MIN: Final = timedelta(days=365)
"""A stalled pack sits collected at least this long before the simulation ends."""
_MARGIN: Final = timedelta(days=150)  # room for late reports to push a step later
_FULL_SOH: Final = 100.0
_GRADES: Final = ((90.0, "A"), (80.0, "B"), (70.0, "C"), (60.0, "D"))
_SPECS: Final[Mapping[Chemistry, str]] = {
    Chemistry.LFP: "1L",
    Chemistry.NCM111: "11",
    Chemistry.NCM523: "52",
    Chemistry.NCM622: "62",
    Chemistry.NCM811: "81",
    Chemistry.NCA: "NA",
    Chemistry.LTO: "LT",
}
_NEW_USES: Final[Mapping[NewUse, float]] = {
    NewUse.ENERGY_STORAGE: 0.5,
    NewUse.BACKUP_POWER: 0.2,
    NewUse.CHARGING_STATION: 0.15,
    NewUse.LOW_SPEED_VEHICLE: 0.1,
    NewUse.SWAPPING_STATION: 0.05,
}
_VIN_CHARS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_VIN_BODY: Final = 14


def grade(soh_pct: float) -> str:
    """The grade of a state of health: A >= 90 %, B >= 80 %, C >= 70 %, D >= 60 %, else scrap."""
    for floor, letter in _GRADES:
        if soh_pct >= floor:
            return letter
    return "scrap"


def code_date(moment: datetime) -> date:
    """The date a code carries for ``moment``: the same day, or the 26th of its month."""
    day = moment.astimezone(CST).date()
    return day.replace(day=min(day.day, CODE_DAY_MAX))


class Fate(StrEnum):
    """What happens to a pack when it retires from its vehicle."""

    COLLECTED = "collected"
    UNCOLLECTED = "uncollected"
    UNACCEPTED = "unaccepted"


@dataclass(frozen=True, slots=True)
class CascadePlan:
    """A second life: the operator, how long the pack waits, lives and declines."""

    operator: int
    wait: timedelta  # accept -> inspection and repurpose
    life: timedelta  # repurpose -> second retirement
    decline: float  # SoH points per year in second life
    new_use: NewUse
    to_recycler: timedelta  # second retirement -> handover to the recycler


@dataclass(frozen=True, slots=True)
class PackPlan:
    """One pack's life as drawn; the flows may push steps later, never earlier."""

    index: int
    code: str
    maker: int
    automaker: int
    composition: Composition
    commissioned: datetime
    sale_delay: timedelta
    transit: timedelta  # handover -> accept, every time the pack moves
    install_delay: timedelta
    vin: str
    decline: float  # SoH points per year in the vehicle
    life: timedelta  # install -> retirement
    retire_reason: str
    fate: Fate
    collector: int
    retire_to_handover: timedelta
    dwell: timedelta  # collected -> sent on
    cascade: CascadePlan | None
    recycler: int
    recycle_delay: timedelta  # at the recycler -> dismantle or recycle
    anomaly: AnomalyKind | None = None

    def soh(self, since_install: timedelta) -> float:
        """State of health after ``since_install`` in the vehicle, in percent."""
        return max(0.0, _FULL_SOH - self.decline * (since_install / _YEAR))

    def milestones(self) -> tuple[datetime, datetime, datetime]:
        """Planned (installation, collection, end at the recycler), ignoring late reports."""
        installed = self.commissioned + self.sale_delay + self.transit + self.install_delay
        collected = installed + self.life + self.retire_to_handover + self.transit
        sent = collected + self.dwell + self.transit
        if self.cascade is not None:
            c = self.cascade
            sent += c.wait + c.life + c.to_recycler + self.transit
        return installed, collected, sent + self.recycle_delay


def _days(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(days=rng.uniform(low, high))


def _office_time(rng: random.Random, day: date) -> datetime:
    seconds = rng.randrange(_WORK_HOURS * 3600)
    start = datetime(day.year, day.month, day.day, _WORK_START_HOUR, tzinfo=CST)
    return start + timedelta(seconds=seconds)


@cache
def _composition(chemistry: Chemistry, energy_kwh: float) -> Composition:
    return estimate_composition(chemistry, energy_kwh)


def _yearly_counts(config: SimConfig) -> list[int]:
    """Packs per year, growing by ``market_growth``, summing to ``total_packs``."""
    weights = [(1 + config.market_growth) ** n for n in range(len(config.years))]
    exact = [config.total_packs * w / sum(weights) for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: config.total_packs - sum(counts)]:
        counts[i] += 1
    return counts


class _Drawer:
    """Draws pack lives from one seeded random source, in a fixed order."""

    def __init__(self, config: SimConfig, counts: Mapping[str, int]) -> None:
        self.config = config
        self.counts = counts
        self.rng = random.Random(f"{config.seed}:plan")
        self.serials: dict[tuple[int, date], int] = {}
        self.vins: set[str] = set()
        chemistries = list(config.chemistry_mix)
        self.chemistries = chemistries
        self.weights = [config.chemistry_mix[c] for c in chemistries]

    def u(self, bounds: tuple[float, float]) -> float:
        return self.rng.uniform(*bounds)

    def code(self, maker: int, maker_code: str, chemistry: Chemistry, when: datetime) -> str:
        day = code_date(when)
        serial = self.serials.get((maker, day), 0) + 1
        self.serials[(maker, day)] = serial
        battery = BatteryType.LFP if chemistry is Chemistry.LFP else BatteryType.TERNARY
        return generate_code(
            self.rng,
            manufacturer=maker_code,
            product_type=ProductType.PACK,
            battery_type=battery,
            spec=_SPECS.get(chemistry, "ZZ"),
            date=day,
            serial=serial,
        )

    def vin(self, wmi: str) -> str:
        while True:
            vin = wmi + "".join(self.rng.choices(_VIN_CHARS, k=_VIN_BODY))
            if vin not in self.vins:
                self.vins.add(vin)
                return vin

    def life(self) -> tuple[float, timedelta, str]:
        decline = self.u(self.config.soh_decline_pct_per_year)
        threshold = self.u(self.config.retirement_soh_pct)
        worn = (_FULL_SOH - threshold) / decline
        vehicle = self.u(self.config.vehicle_life_years)
        if worn <= vehicle:
            return decline, worn * _YEAR, "end of first life: state of health below threshold"
        return decline, vehicle * _YEAR, "vehicle scrapped"

    def fate(self) -> Fate:
        c = self.config
        if self.rng.random() < c.collection_probability:
            return Fate.COLLECTED
        return (
            Fate.UNACCEPTED if self.rng.random() < c.unaccepted_share_of_leaks else Fate.UNCOLLECTED
        )

    def cascade(self, fate: Fate, soh: float) -> CascadePlan | None:
        c = self.config
        wanted = self.rng.random() < c.cascade_share
        if fate is not Fate.COLLECTED or not wanted or grade(soh) == "scrap":
            return None
        uses = list(_NEW_USES)
        return CascadePlan(
            operator=self.rng.randrange(self.counts["cascade"]),
            wait=_days(self.rng, 3, 30),
            life=self.u(c.second_life_years) * _YEAR,
            decline=self.u(c.second_life_soh_decline_pct_per_year),
            new_use=self.rng.choices(uses, weights=[_NEW_USES[u] for u in uses])[0],
            to_recycler=_days(self.rng, 5, 30),
        )

    def pack(
        self, index: int, year: int, maker: int, codes: Sequence[str], wmis: Sequence[str]
    ) -> PackPlan:
        c, rng = self.config, self.rng
        chemistry = rng.choices(self.chemistries, weights=self.weights)[0]
        energy = round(self.u(c.energy_kwh), 1)
        composition = _composition(chemistry, energy)
        day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        commissioned = _office_time(rng, day)
        automaker = rng.randrange(self.counts["automakers"])
        decline, life, reason = self.life()
        fate = self.fate()
        cascade = self.cascade(fate, max(0.0, _FULL_SOH - decline * (life / _YEAR)))
        return PackPlan(
            index=index,
            code=self.code(maker, codes[maker], chemistry, commissioned),
            maker=maker,
            automaker=automaker,
            composition=composition,
            commissioned=commissioned,
            sale_delay=_days(rng, 1, 20),
            transit=_days(rng, 0.5, 4),
            install_delay=_days(rng, 5, 60),
            vin=self.vin(wmis[automaker]),
            decline=decline,
            life=life,
            retire_reason=reason,
            fate=fate,
            collector=rng.randrange(self.counts["collectors"]),
            retire_to_handover=_days(rng, 1, 30),
            dwell=_days(rng, 5, 60),
            cascade=cascade,
            recycler=rng.randrange(self.counts["recyclers"]),
            recycle_delay=_days(rng, 5, 45),
        )


def plan_packs(
    config: SimConfig, *, maker_codes: Sequence[str], wmis: Sequence[str], counts: Mapping[str, int]
) -> list[PackPlan]:
    """Every pack's life for ``config``, anomalies placed; ``counts`` has the actor counts.

    ``counts`` names how many ``automakers``, ``collectors``, ``cascade`` operators and
    ``recyclers`` there are; ``maker_codes`` and ``wmis`` are the battery makers'
    manufacturer codes and the automakers' VIN prefixes.
    """
    drawer = _Drawer(config, counts)
    plans: list[PackPlan] = []
    for year, count in zip(config.years, _yearly_counts(config), strict=True):
        for n in range(count):
            plans.append(drawer.pack(len(plans), year, n % len(maker_codes), maker_codes, wmis))
    end = datetime(config.last_year, 12, 31, 23, 59, tzinfo=CST)
    return _place_anomalies(config, plans, end, drawer.rng)


def _place_anomalies(
    config: SimConfig, plans: list[PackPlan], end: datetime, rng: random.Random
) -> list[PackPlan]:
    chosen: dict[int, AnomalyKind] = {}
    done = [p for p in plans if p.fate is Fate.COLLECTED and p.milestones()[2] <= end - _MARGIN]
    eligible: dict[AnomalyKind, list[PackPlan]] = {
        AnomalyKind.STALLED: [
            p
            for p in plans
            if p.fate is Fate.COLLECTED
            and p.cascade is None
            and p.milestones()[1] <= end - STALL_MIN - _MARGIN
        ],
        AnomalyKind.DISMANTLE_LOSS: done,
        AnomalyKind.LOW_RECOVERY: done,
        AnomalyKind.OVER_RECOVERY: done,
    }
    for kind, candidates in eligible.items():
        free = [p.index for p in candidates if p.index not in chosen]
        wanted = min(config.anomalies.get(kind, 0), len(free))
        for index in rng.sample(free, wanted):
            chosen[index] = kind
    return [replace(p, anomaly=chosen[p.index]) if p.index in chosen else p for p in plans]
