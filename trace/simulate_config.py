"""Configuration of the fleet simulator: who takes part, how packs age, what goes wrong.

:class:`SimConfig` is a frozen value; :meth:`SimConfig.small` (about 200 packs, seconds)
and :meth:`SimConfig.demo` (about 10,000 packs, 20 organisations, five years) are the
presets. Recovery efficiencies default to China's 2024 norms for recyclers
(新能源汽车废旧动力电池综合利用行业规范条件 2024年本, domain.md §2.4: Li ≥ 90 %,
Ni/Co/Mn ≥ 98 %; Cu/Al ≥ 98 % from the August 2024 draft). The retirement threshold
brackets the 80 % of GB/T 34015.4-2021's rationale (domain.md §1.5).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

from schemas.actors import check_region
from schemas.composition import Chemistry, Element

__all__ = [
    "DEFAULT_RECOVERY",
    "INJECTED_KINDS",
    "AnomalyKind",
    "SimConfig",
]

# GB/T 34014-2017 took effect in 2018; the code's date table ends (unambiguously) in 2036.
_FIRST_CODED_YEAR: Final = 2018
_LAST_CODED_YEAR: Final = 2036
_PERCENT: Final = 100.0


class AnomalyKind(StrEnum):
    """What the simulator makes go wrong, each recorded in the ground truth."""

    UNCOLLECTED = "uncollected"  # a retired pack is never handed to a collector (leak)
    UNACCEPTED = "unaccepted"  # a retired pack is handed over and never accepted (leak)
    STALLED = "stalled"  # collected, then neither recycled nor repurposed for a year or more
    LATE_REPORT = "late_report"  # recorded after the deadline of domain.md §2.2
    LOW_RECOVERY = "low_recovery"  # recycling recovers under half of Li, Ni, Co and Mn
    OVER_RECOVERY = "over_recovery"  # recovery a little above 100 %, inside the tolerance
    DISMANTLE_LOSS = "dismantle_loss"  # dismantling outputs lose more than 30 % of the mass


INJECTED_KINDS: Final = frozenset(
    {
        AnomalyKind.STALLED,
        AnomalyKind.LOW_RECOVERY,
        AnomalyKind.OVER_RECOVERY,
        AnomalyKind.DISMANTLE_LOSS,
    }
)
"""Kinds injected by count (:attr:`SimConfig.anomalies`); leaks follow
:attr:`SimConfig.collection_probability` and late reports :attr:`SimConfig.late_share`."""

DEFAULT_RECOVERY: Final[Mapping[Element, float]] = {
    Element.LI: 0.90,
    Element.NI: 0.98,
    Element.CO: 0.98,
    Element.MN: 0.98,
    Element.CU: 0.98,
    Element.AL: 0.98,
}
"""Per-element recovery of a recycler: China's 2024 norms (domain.md §2.4)."""

_DEFAULT_MIX: Final[Mapping[Chemistry, float]] = {
    Chemistry.LFP: 0.55,
    Chemistry.NCM811: 0.25,
    Chemistry.NCM622: 0.15,
    Chemistry.NCM523: 0.05,
}
_DEFAULT_ANOMALIES: Final[Mapping[AnomalyKind, int]] = {
    AnomalyKind.STALLED: 2,
    AnomalyKind.LOW_RECOVERY: 1,
    AnomalyKind.OVER_RECOVERY: 1,
    AnomalyKind.DISMANTLE_LOSS: 1,
}
_DEMO_ANOMALIES: Final[Mapping[AnomalyKind, int]] = {
    AnomalyKind.STALLED: 12,
    AnomalyKind.LOW_RECOVERY: 6,
    AnomalyKind.OVER_RECOVERY: 6,
    AnomalyKind.DISMANTLE_LOSS: 6,
}


def _range(name: str, value: tuple[float, float], low: float, high: float) -> None:
    lo, hi = value
    if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi <= high):
        raise ValueError(f"{name} must be (low, high) with {low:g} <= low <= high <= {high:g}")


def _share(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a share in [0, 1], got {value!r}")


@dataclass(frozen=True)
class SimConfig:
    """Everything a simulation run depends on; the same config gives the same events.

    Ranges are ``(low, high)`` and drawn uniformly per pack. Times are simulated, from
    1 January of ``first_year`` to 31 December of ``last_year`` (China Standard Time).
    """

    seed: int = 34014
    battery_makers: int = 2
    automakers: int = 2
    collectors: int = 2
    cascade_operators: int = 1
    recyclers: int = 1
    scrap_processors: int = 1
    provinces: tuple[str, ...] = ("440000", "350000", "320000", "430000")
    first_year: int = 2021
    last_year: int = 2026
    total_packs: int = 200
    market_growth: float = 0.3
    """Yearly growth of the packs placed on the market (0.3 = each year 30 % more)."""
    chemistry_mix: Mapping[Chemistry, float] = field(default_factory=lambda: dict(_DEFAULT_MIX))
    energy_kwh: tuple[float, float] = (40.0, 90.0)
    vehicle_life_years: tuple[float, float] = (1.5, 7.0)
    """Years from installation to the vehicle's end (scrapping, accident, fleet renewal)."""
    soh_decline_pct_per_year: tuple[float, float] = (5.0, 10.0)
    retirement_soh_pct: tuple[float, float] = (70.0, 80.0)
    """A pack retires when its state of health falls below this (or its vehicle ends)."""
    collection_probability: float = 0.85
    unaccepted_share_of_leaks: float = 0.5
    """Of the packs that leak, the share handed over and never accepted (the rest are
    retired and never handed over)."""
    cascade_share: float = 0.3
    second_life_years: tuple[float, float] = (1.0, 3.0)
    second_life_soh_decline_pct_per_year: tuple[float, float] = (2.0, 4.0)
    recovery: Mapping[Element, float] = field(default_factory=lambda: dict(DEFAULT_RECOVERY))
    recycled_content: bool = True
    """Build new packs from recycled lots (``CommissionData.materials``)."""
    recycled_pack_share: float = 0.3
    """Share of new packs built with recycled lots, when the maker holds any."""
    recycled_element_share: tuple[float, float] = (0.05, 0.2)
    """Share of each of the pack's Li, Ni, Co and Mn taken from recycled lots."""
    late_share: float = 0.05
    """Share of events with a reporting deadline (domain.md §2.2) that are reported late."""
    late_working_days: tuple[int, int] = (20, 60)
    """Working days between a late event and its report (always past its deadline)."""
    anomalies: Mapping[AnomalyKind, int] = field(default_factory=lambda: dict(_DEFAULT_ANOMALIES))
    batch_days: int = 7
    """Events are uploaded in batches, one per simulated week by default."""
    max_batch: int = 400

    def __post_init__(self) -> None:
        for name in (
            "battery_makers",
            "automakers",
            "collectors",
            "cascade_operators",
            "recyclers",
            "scrap_processors",
            "total_packs",
            "batch_days",
            "max_batch",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.provinces:
            raise ValueError("provinces must name at least one GB/T 2260 province code")
        for code in self.provinces:
            check_region(code)
        if not _FIRST_CODED_YEAR <= self.first_year <= self.last_year <= _LAST_CODED_YEAR:
            raise ValueError(
                f"years must satisfy {_FIRST_CODED_YEAR} <= first_year <= last_year <= "
                f"{_LAST_CODED_YEAR} (the GB/T 34014 date table)"
            )
        self._check_ranges()
        self._check_mix()
        unknown = set(self.anomalies) - INJECTED_KINDS
        if unknown or any(n < 0 for n in self.anomalies.values()):
            raise ValueError(
                "anomalies counts are non-negative and only for "
                f"{sorted(k.value for k in INJECTED_KINDS)}"
            )

    def _check_ranges(self) -> None:
        _range("energy_kwh", self.energy_kwh, 1.0, 1000.0)
        _range("vehicle_life_years", self.vehicle_life_years, 0.1, 40.0)
        _range("soh_decline_pct_per_year", self.soh_decline_pct_per_year, 0.1, 50.0)
        _range("retirement_soh_pct", self.retirement_soh_pct, 1.0, _PERCENT)
        _range("second_life_years", self.second_life_years, 0.1, 20.0)
        _range(
            "second_life_soh_decline_pct_per_year",
            self.second_life_soh_decline_pct_per_year,
            0.0,
            50.0,
        )
        _range("recycled_element_share", self.recycled_element_share, 0.0, 1.0)
        _range("late_working_days", self.late_working_days, 1, 250)
        for name in (
            "collection_probability",
            "unaccepted_share_of_leaks",
            "cascade_share",
            "recycled_pack_share",
            "late_share",
        ):
            _share(name, getattr(self, name))
        if not math.isfinite(self.market_growth) or self.market_growth <= -1:
            raise ValueError("market_growth must be a finite number above -1")
        for element, share in self.recovery.items():
            if not (math.isfinite(share) and 0.0 < share <= 1.0):
                raise ValueError(f"recovery of {element} must be in (0, 1], got {share!r}")

    def _check_mix(self) -> None:
        if not self.chemistry_mix or any(
            not math.isfinite(w) or w < 0 for w in self.chemistry_mix.values()
        ):
            raise ValueError("chemistry_mix maps chemistries to non-negative weights")
        if sum(self.chemistry_mix.values()) <= 0:
            raise ValueError("chemistry_mix needs a positive weight")

    def __hash__(self) -> int:
        # The mappings make the generated hash fail; the JSON form is the config's identity.
        return hash(json.dumps(self.as_dict(), sort_keys=True))

    @property
    def years(self) -> range:
        """The simulated calendar years."""
        return range(self.first_year, self.last_year + 1)

    def as_dict(self) -> dict[str, Any]:
        """The config as JSON-ready values (enum keys by their values)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, Mapping):
                value = {str(k): v for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    @classmethod
    def small(cls, **changes: Any) -> SimConfig:
        """About 200 packs and 9 organisations over 2021-2026; runs in seconds.

        Packs age fast so that every stage (collection, cascade use, recycling, leaks and
        the injected anomalies) occurs within the six years.
        """
        return replace(cls(), **changes)

    @classmethod
    def demo(cls, **changes: Any) -> SimConfig:
        """About 10,000 packs, 20 organisations in six provinces, 2021-2025."""
        base = cls(
            battery_makers=4,
            automakers=5,
            collectors=5,
            cascade_operators=2,
            recyclers=3,
            scrap_processors=1,
            provinces=("440000", "350000", "320000", "430000", "510000", "330000"),
            first_year=2021,
            last_year=2025,
            total_packs=10_000,
            vehicle_life_years=(1.0, 8.0),
            soh_decline_pct_per_year=(4.0, 9.0),
            late_share=0.02,
            anomalies=dict(_DEMO_ANOMALIES),
        )
        return replace(base, **changes)
