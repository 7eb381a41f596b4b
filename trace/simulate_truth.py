"""The ground truth of a simulation run: what the simulator did, counted exactly.

The rate engine and the anomaly detectors are tested against :class:`GroundTruth`. Every
figure is counted by the simulator as it writes the events, never read back from the log.
Conventions for every field:

* a **year** is the calendar year of the event's time in China Standard Time (UTC+8),
  the offset every simulated event carries;
* **kg** of a pack is its commissioned mass (``Composition.mass_kg``); the simulator
  declares that same mass whenever it weighs the pack again (collect, dismantle, recycle);
* a **producer** is a battery maker or an automaker. A pack counts for both: for the
  battery maker that commissioned it and for the automaker that installed it;
* **first life** is a pack under its original GB/T 34014 code; a repurposed pack's second
  life runs under its cascade re-code (§4.2) and still counts for the original producers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from trace.simulate_config import AnomalyKind

__all__ = [
    "Anomaly",
    "ElementFlow",
    "GroundTruth",
    "LateReport",
    "ProducerYear",
    "RecycledContent",
    "ScrapYear",
    "TruthBuilder",
]

_PRECEDING_YEARS = 3


@dataclass(frozen=True, slots=True)
class ProducerYear:
    """One producer's packs in one year.

    ``placed_*``: packs placed on the market in the year — for a battery maker, the packs
    it commissioned (commission event); for an automaker, the packs it installed in a new
    vehicle (install event). ``*_kwh`` is rated energy.

    ``retired_*``: the producer's packs retired from their first life (retire event of the
    original code). ``collected_*``: the producer's packs taken into a collector's storage
    (the collector's collect event of the original code; the recycler's collect of a
    re-coded pack after its second life is not counted). ``repurposed_*``: the producer's
    packs re-coded for cascade use (repurpose event). ``recycled_*``: the producer's packs
    ended at a recycler, under either code (dismantle event, or recycle event of the pack
    itself).
    """

    placed_packs: int = 0
    placed_kwh: float = 0.0
    placed_kg: float = 0.0
    retired_packs: int = 0
    retired_kg: float = 0.0
    collected_packs: int = 0
    collected_kg: float = 0.0
    repurposed_packs: int = 0
    repurposed_kg: float = 0.0
    recycled_packs: int = 0
    recycled_kg: float = 0.0


@dataclass(frozen=True, slots=True)
class ElementFlow:
    """One recycler's element flows in one year (kg per element symbol).

    ``input_kg``: element content of the packs the recycler ended in the year (the
    composition of each pack dismantled or recycled whole; every element of the
    composition, graphite included). ``recovered_kg``: element content of the recovered
    outputs made from those packs — refined products (Li2CO3, NiSO4, CoSO4, MnSO4) and the
    Cu and Al scrap lots; black mass is an intermediate and counts only through its
    products. A pack's products are made the day it is ended, so they fall in the same year.
    Recovery of element e is ``recovered_kg[e] / input_kg[e]``.
    """

    packs: int = 0
    input_kg: Mapping[str, float] = field(default_factory=dict)
    recovered_kg: Mapping[str, float] = field(default_factory=dict)

    def recovery(self, element: str) -> float | None:
        """``recovered_kg / input_kg`` of ``element``; ``None`` without input."""
        held = self.input_kg.get(element, 0.0)
        return None if held <= 0 else self.recovered_kg.get(element, 0.0) / held


@dataclass(frozen=True, slots=True)
class ScrapYear:
    """One scrap material (steel, copper, aluminium) in one year, in kg of lot mass.

    ``produced_kg``/``produced_lots``: scrap lots recyclers made (dismantle or recycle
    outputs). ``delivered_kg``: scrap lots scrap processors accepted. ``smelted_kg``:
    scrap lots consumed by smelting (lot_smelt inputs). ``output_kg``: recycled-metal lots
    the smelting made (they keep the scrap material: :class:`schemas.lots.Material` has no
    secondary copper, aluminium or steel).
    """

    produced_lots: int = 0
    produced_kg: float = 0.0
    delivered_kg: float = 0.0
    smelted_kg: float = 0.0
    output_kg: float = 0.0


@dataclass(frozen=True, slots=True)
class RecycledContent:
    """A new pack built with recycled lots (``CommissionData.materials``).

    ``lots``: kg taken from each refined lot. ``recycled_kg``: element kg those bring (kg
    taken times the lot's element share). ``pack_kg``: the element kg of the pack's
    composition. ``share``: ``recycled_kg / pack_kg`` per element — the pack's recycled
    content (EU 2023/1542 Art. 8, domain.md §3.4), all of it post-consumer.
    """

    maker: str
    year: int
    lots: Mapping[str, float]
    recycled_kg: Mapping[str, float]
    pack_kg: Mapping[str, float]
    share: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One injected anomaly: its kind, the items and actors involved, the events showing it.

    ``detail`` holds kind-specific figures, e.g. ``loss_share`` (dismantle_loss),
    ``recovery_<element>`` (low_recovery, over_recovery), ``collected_at`` (stalled).
    """

    kind: str
    items: tuple[str, ...]
    actors: tuple[str, ...]
    event_ids: tuple[str, ...]
    detail: Mapping[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LateReport:
    """An event recorded after its deadline (domain.md §2.2, :mod:`trace.deadlines`).

    ``delay_working_days``: working days from the event to its recording (the simulator
    draws it from ``SimConfig.late_working_days``, past the deadline). ``late_working_days``:
    working days past the deadline, what the receipt says: the delay less the deadline's
    working days. Times are ISO 8601 (``recorded_at`` is the simulated clock, UTC).
    """

    actor: str
    role: str
    type: str
    items: tuple[str, ...]
    event_time: str
    recorded_at: str
    delay_working_days: int
    late_working_days: int


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Everything a simulation run did, counted exactly (see the module's conventions).

    Attributes
    ----------
    seed, first_year, last_year : the run.
    config : the :class:`~trace.simulate_config.SimConfig` as JSON-ready values.
    actors : actor id -> role.
    packs : packs commissioned (first-life codes; re-codes are not packs of their own).
    events : events the simulator submitted (all accepted); ``event_counts`` by type.
    producers : producer -> year -> :class:`ProducerYear`.
    recyclers : recycler -> year -> :class:`ElementFlow`.
    recycled_content : new pack code -> :class:`RecycledContent` (empty unless the config
        turns ``recycled_content`` on).
    scrap : material (``steel_scrap``, ``copper_scrap``, ``aluminium_scrap``) -> year ->
        :class:`ScrapYear`.
    anomalies : every anomaly, leaks and late reports included, in simulated-time order.
    leaked : item -> ``uncollected`` (retired, never handed over) or ``unaccepted``
        (handed to a collector who never accepts). At the end these are exactly the
        retired-not-collected and pending items, less ``in_flight``.
    late_reports : event id -> :class:`LateReport`; exactly the events whose receipt carries
        ``late_working_days``.
    in_flight : item -> the step it was waiting for when simulated time ran out (retired,
        handed over or collected, with the next step after 31 December of ``last_year``).
    status_counts : item kind (pack, lot) -> status -> count, as the simulator left them;
        ``pending_handovers`` counts items left with an unanswered handover.
    """

    seed: int
    first_year: int
    last_year: int
    config: Mapping[str, Any]
    actors: Mapping[str, str]
    packs: int
    events: int
    event_counts: Mapping[str, int]
    producers: Mapping[str, Mapping[int, ProducerYear]]
    recyclers: Mapping[str, Mapping[int, ElementFlow]]
    recycled_content: Mapping[str, RecycledContent]
    scrap: Mapping[str, Mapping[int, ScrapYear]]
    anomalies: tuple[Anomaly, ...]
    leaked: Mapping[str, str]
    late_reports: Mapping[str, LateReport]
    in_flight: Mapping[str, str]
    status_counts: Mapping[str, Mapping[str, int]]
    pending_handovers: int

    def anomalies_of(self, kind: str) -> tuple[Anomaly, ...]:
        """The anomalies of one kind (an :class:`~trace.simulate_config.AnomalyKind` value)."""
        return tuple(a for a in self.anomalies if a.kind == kind)

    def collection_rate(self, producer: str, year: int) -> float | None:
        """Packs' kg collected in ``year`` ÷ mean kg placed in the three preceding years.

        domain.md §5.1 (China EPR: 年度回收量 / 前三年度平均销售量); ``None`` when nothing
        was placed in those years (a year before the simulation counts as zero).
        """
        years = self.producers.get(producer, {})
        placed = [years[y].placed_kg for y in range(year - _PRECEDING_YEARS, year) if y in years]
        mean = sum(placed) / _PRECEDING_YEARS
        if mean <= 0:
            return None
        collected = years[year].collected_kg if year in years else 0.0
        return collected / mean

    def to_json(self) -> str:
        """The ground truth as JSON (sorted keys; years become strings)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, indent=1)


def _add(table: dict[str, float], amounts: Mapping[str, float]) -> None:
    for name, value in amounts.items():
        table[name] = table.get(name, 0.0) + value


class TruthBuilder:
    """Collects the ground truth while the simulator runs; :meth:`build` freezes it."""

    def __init__(self) -> None:
        self.producers: dict[str, dict[int, dict[str, float]]] = {}
        self.recyclers: dict[str, dict[int, dict[str, dict[str, float]]]] = {}
        self.scrap: dict[str, dict[int, dict[str, float]]] = {}
        self.recycled_content: dict[str, RecycledContent] = {}
        self.anomalies: list[tuple[str, Anomaly]] = []  # (ISO time, anomaly)
        self.leaked: dict[str, str] = {}

    def producer(self, producer: str, year: int, **amounts: float) -> None:
        """Add to a producer-year's counters (the :class:`ProducerYear` field names)."""
        _add(self.producers.setdefault(producer, {}).setdefault(year, {}), amounts)

    def elements(
        self,
        recycler: str,
        year: int,
        *,
        input_kg: Mapping[str, float] | None = None,
        recovered_kg: Mapping[str, float] | None = None,
        packs: int = 0,
    ) -> None:
        """Add element flows to a recycler-year."""
        flows = self.recyclers.setdefault(recycler, {}).setdefault(
            year, {"input_kg": {}, "recovered_kg": {}, "packs": {}}
        )
        _add(flows["input_kg"], input_kg or {})
        _add(flows["recovered_kg"], recovered_kg or {})
        _add(flows["packs"], {"packs": float(packs)})

    def scrap_flow(self, material: str, year: int, **amounts: float) -> None:
        """Add to a scrap material-year's counters (the :class:`ScrapYear` field names)."""
        _add(self.scrap.setdefault(material, {}).setdefault(year, {}), amounts)

    def anomaly(self, when: str, anomaly: Anomaly) -> None:
        self.anomalies.append((when, anomaly))

    def build(self, **fields: Any) -> GroundTruth:
        """The frozen ground truth; ``fields`` supplies what the run knows at its end.

        Each of ``fields["late_reports"]`` becomes a ``late_report`` anomaly too.
        """
        producers = {
            p: {y: _producer_year(v) for y, v in sorted(years.items())}
            for p, years in sorted(self.producers.items())
        }
        recyclers = {
            r: {
                y: ElementFlow(
                    packs=int(v["packs"].get("packs", 0)),
                    input_kg=_rounded(v["input_kg"]),
                    recovered_kg=_rounded(v["recovered_kg"]),
                )
                for y, v in sorted(years.items())
            }
            for r, years in sorted(self.recyclers.items())
        }
        scrap = {
            m: {y: _scrap_year(v) for y, v in sorted(years.items())}
            for m, years in sorted(self.scrap.items())
        }
        late_reports: Mapping[str, LateReport] = fields["late_reports"]
        for eid, late in late_reports.items():
            detail: dict[str, float | str] = {
                "delay_working_days": late.delay_working_days,
                "late_working_days": late.late_working_days,
            }
            anomaly = Anomaly(
                AnomalyKind.LATE_REPORT.value, late.items, (late.actor,), (eid,), detail
            )
            self.anomaly(late.event_time, anomaly)
        ordered = tuple(a for _, a in sorted(self.anomalies, key=lambda pair: pair[0]))
        return GroundTruth(
            producers=producers,
            recyclers=recyclers,
            scrap=scrap,
            recycled_content=dict(sorted(self.recycled_content.items())),
            anomalies=ordered,
            leaked=dict(sorted(self.leaked.items())),
            **fields,
        )


_DECIMALS = 6  # micrograms: sums of gram-rounded masses, without float noise


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, _DECIMALS) for k, v in sorted(values.items())}


def _producer_year(values: Mapping[str, float]) -> ProducerYear:
    counts = {k: int(v) if k.endswith("_packs") else round(v, _DECIMALS) for k, v in values.items()}
    return ProducerYear(**counts)  # type: ignore[arg-type]


def _scrap_year(values: Mapping[str, float]) -> ScrapYear:
    counts = {k: int(v) if k.endswith("_lots") else round(v, _DECIMALS) for k, v in values.items()}
    return ScrapYear(**counts)  # type: ignore[arg-type]
