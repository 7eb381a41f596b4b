"""Flow anomalies: mass balance and element recovery, from the transformation steps.

* **mass balance** — per transformation step, outputs heavier than inputs (reagents
  included) beyond ``tolerance``; per actor and calendar year, Σ outputs heavier than
  Σ inputs of all its steps; a dismantling that loses more than ``max_dismantle_loss`` of
  its input, and a split or merge that loses more than ``tolerance`` (they only re-label);
* **recovery** — per recycle or smelt step and per actor-year (recycler-year, smelter-year),
  recovery of an element (kg out ÷ kg in, EU 2023/1542 Annex XII, Delegated Reg. (EU)
  2025/606; docs/metrics.md) above ``max_recovery`` — impossible — or below its plausible
  floor. Steps with an input of unknown content are not judged (the rules skip them too).

An actor-year finding names the events of its steps that are out of bounds the same way:
a Σ beyond a bound has at least one such step, since it is a weighted mean of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from schemas.events import EventType
from trace.anomalies_model import Anomaly, AnomalyConfig, Check, Severity, build, listing
from trace.anomalies_state import ScanState, StepFact
from trace.rules_common import FLOAT_SLACK_KG

__all__ = ["flow_anomalies", "mass_anomalies", "recovery_anomalies"]

_RECOVERING: Final = frozenset({EventType.RECYCLE, EventType.LOT_SMELT})
_RELABELLING: Final = frozenset({EventType.LOT_SPLIT, EventType.LOT_MERGE})
_GERUNDS: Final = {
    EventType.DISMANTLE: "dismantling",
    EventType.RECYCLE: "recycling",
    EventType.LOT_SMELT: "smelting",
    EventType.LOT_SPLIT: "splitting",
    EventType.LOT_MERGE: "merging",
}


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def _kg(kg: float) -> str:
    return f"{kg:,.3f}".rstrip("0").rstrip(".") + " kg"


def _what(step: StepFact) -> str:
    return (
        f"{_GERUNDS[step.type]} {listing(step.inputs)} by {step.actor} on "
        f"{step.time.date().isoformat()}"
    )


def _add(
    found: list[Anomaly],
    check: Check,
    severity: Severity,
    summary: str,
    *,
    items: Iterable[str],
    actors: tuple[str, ...],
    events: Iterable[str],
    amounts: Mapping[str, float],
    now: datetime,
    year: int | None = None,
) -> None:
    found.append(
        build(
            check,
            severity,
            summary,
            items=items,
            actors=actors,
            events=events,
            amounts=amounts,
            now=now,
            year=year,
        )
    )


def _step_items(step: StepFact) -> tuple[str, ...]:
    return (*step.inputs, *step.sources, *step.outputs)


# --- mass balance ---


@dataclass(slots=True)
class _Totals:
    in_kg: float = 0.0
    out_kg: float = 0.0
    gaining: list[StepFact] = field(default_factory=list)


def _loss_limit(step: StepFact, config: AnomalyConfig) -> float | None:
    """The share of its input a step may lose: dismantling some, re-labelling none."""
    if step.type is EventType.DISMANTLE:
        return config.max_dismantle_loss
    if step.type in _RELABELLING:
        return config.tolerance
    return None  # recycling and smelting lose what is not recovered


def mass_anomalies(state: ScanState, *, now: datetime, config: AnomalyConfig) -> list[Anomaly]:
    """Steps and actor-years whose outputs outweigh their inputs; unexplained losses.

    Examples
    --------
    A dismantling that accounts for half of a 400 kg pack:

    >>> from datetime import UTC, datetime
    >>> from trace.anomalies_model import DEFAULT_CONFIG
    >>> from trace.state import MemoryWorld
    >>> state = ScanState(MemoryWorld())
    >>> state.steps.append(StepFact(
    ...     "e-1", EventType.DISMANTLE, "rec-01", datetime(2026, 3, 2, tzinfo=UTC), ("P1",),
    ...     ("LOT-1",), (), in_kg=400.0, reagents_kg=0.0, out_kg=200.0, in_content=None,
    ...     out_content={}))
    >>> [(a.check.value, a.amounts["loss_share"]) for a in mass_anomalies(
    ...     state, now=datetime(2026, 4, 1, tzinfo=UTC), config=DEFAULT_CONFIG)]
    [('step_loss', 0.5)]
    """
    found: list[Anomaly] = []
    years: dict[tuple[str, int], _Totals] = {}
    tolerance = config.tolerance
    for step in state.steps:
        in_kg = step.in_kg + step.reagents_kg
        totals = years.setdefault((step.actor, step.year), _Totals())
        totals.in_kg += in_kg
        totals.out_kg += step.out_kg
        amounts = {
            "input_kg": step.in_kg,
            "reagents_kg": step.reagents_kg,
            "output_kg": step.out_kg,
            "ratio": step.out_kg / in_kg if in_kg > 0 else 0.0,
        }
        if step.out_kg > in_kg * (1 + tolerance) + FLOAT_SLACK_KG:
            totals.gaining.append(step)
            _add(
                found,
                Check.STEP_GAIN,
                Severity.HIGH,
                f"{_what(step)}: the outputs weigh {_kg(step.out_kg)}, more than the "
                f"{_kg(in_kg)} that went in (tolerance {_pct(tolerance)})",
                items=_step_items(step),
                actors=(step.actor,),
                events=(step.event_id,),
                amounts=amounts,
                now=now,
            )
        loss = 1 - step.out_kg / in_kg if in_kg > 0 else 0.0
        limit = _loss_limit(step, config)
        if limit is not None and loss > limit:
            _add(
                found,
                Check.STEP_LOSS,
                Severity.MEDIUM,
                f"{_what(step)} lost {_pct(loss)} of the {_kg(in_kg)} that went in, "
                f"unexplained (limit {_pct(limit)})",
                items=_step_items(step),
                actors=(step.actor,),
                events=(step.event_id,),
                amounts={**amounts, "loss_share": loss, "limit_share": limit},
                now=now,
            )
    for (actor, year), totals in sorted(years.items()):
        if totals.out_kg > totals.in_kg * (1 + tolerance) + FLOAT_SLACK_KG:
            _add(
                found,
                Check.ACTOR_YEAR_GAIN,
                Severity.HIGH,
                f"{actor}'s transformation steps of {year} put out {_kg(totals.out_kg)}, more "
                f"than the {_kg(totals.in_kg)} (reagents included) that went in (tolerance "
                f"{_pct(tolerance)}); {len(totals.gaining)} step(s) gained mass",
                items=(i for step in totals.gaining for i in _step_items(step)),
                actors=(actor,),
                events=(step.event_id for step in totals.gaining),
                amounts={
                    "input_kg": totals.in_kg,
                    "output_kg": totals.out_kg,
                    "ratio": totals.out_kg / totals.in_kg if totals.in_kg > 0 else 0.0,
                },
                now=now,
                year=year,
            )
    return found


# --- element recovery ---


@dataclass(slots=True)
class _Elements:
    held: dict[str, float] = field(default_factory=dict)
    made: dict[str, float] = field(default_factory=dict)
    over: dict[str, list[StepFact]] = field(default_factory=dict)
    under: dict[str, list[StepFact]] = field(default_factory=dict)


def _judge(
    held: Mapping[str, float], made: Mapping[str, float], config: AnomalyConfig
) -> tuple[list[str], list[str]]:
    """The elements recovered above ``max_recovery`` and those below their floor."""
    over: list[str] = []
    under: list[str] = []
    for element in sorted(set(held) | set(made)):
        kg_in, kg_out = held.get(element, 0.0), made.get(element, 0.0)
        if kg_in < config.min_element_kg:
            # Too little to judge a ratio: only material appearing from (almost) nothing.
            if kg_out > kg_in + config.min_element_kg:
                over.append(element)
            continue
        if kg_out > kg_in * config.max_recovery + FLOAT_SLACK_KG:
            over.append(element)
        floor = config.recovery_floors.get(element)
        if floor is not None and kg_out < kg_in * floor:
            under.append(element)
    return over, under


def _element_amounts(
    elements: list[str],
    held: Mapping[str, float],
    made: Mapping[str, float],
    config: AnomalyConfig,
) -> dict[str, float]:
    amounts: dict[str, float] = {}
    for e in elements:
        amounts[f"input_{e}_kg"] = held.get(e, 0.0)
        amounts[f"output_{e}_kg"] = made.get(e, 0.0)
        if held.get(e, 0.0) > 0:
            amounts[f"recovery_{e}"] = made.get(e, 0.0) / held[e]
        if e in config.recovery_floors:
            amounts[f"floor_{e}"] = config.recovery_floors[e]
    return amounts


def _shares(elements: list[str], held: Mapping[str, float], made: Mapping[str, float]) -> str:
    said = []
    for e in elements:
        kg_in, kg_out = held.get(e, 0.0), made.get(e, 0.0)
        ratio = _pct(kg_out / kg_in) if kg_in > 0 else f"{_kg(kg_out)} from none"
        said.append(f"{ratio} of {e}")
    return ", ".join(said)


def recovery_anomalies(state: ScanState, *, now: datetime, config: AnomalyConfig) -> list[Anomaly]:
    """Recycle and smelt steps, and actor-years, recovering impossibly much or too little.

    Examples
    --------
    A recycling that recovers 40 % of the lithium it took in, its recycler's only one of
    the year:

    >>> from datetime import UTC, datetime
    >>> from trace.anomalies_model import DEFAULT_CONFIG
    >>> from trace.state import MemoryWorld
    >>> state = ScanState(MemoryWorld())
    >>> state.steps.append(StepFact(
    ...     "e-1", EventType.RECYCLE, "rec-01", datetime(2026, 3, 2, tzinfo=UTC), ("LOT-1",),
    ...     ("LOT-2",), ("P1",), in_kg=100.0, reagents_kg=0.0, out_kg=11.0,
    ...     in_content={"Li": 5.0}, out_content={"Li": 2.0}))
    >>> found = recovery_anomalies(state, now=datetime(2026, 4, 1, tzinfo=UTC),
    ...                            config=DEFAULT_CONFIG)
    >>> [(a.check.value, a.year, a.amounts["recovery_Li"]) for a in found]
    [('step_under_recovery', None, 0.4), ('year_under_recovery', 2026, 0.4)]
    >>> found[0].summary
    'recycling LOT-1 by rec-01 on 2026-03-02 recovered 40.0 % of Li: below the plausible floor'
    """
    found: list[Anomaly] = []
    years: dict[tuple[str, int, EventType], _Elements] = {}
    for step in state.steps:
        if step.type not in _RECOVERING or step.in_content is None:
            continue
        held, made = step.in_content, step.out_content
        totals = years.setdefault((step.actor, step.year, step.type), _Elements())
        for e, kg in held.items():
            totals.held[e] = totals.held.get(e, 0.0) + kg
        for e, kg in made.items():
            totals.made[e] = totals.made.get(e, 0.0) + kg
        over, under = _judge(held, made, config)
        for elements, check, severity, words, bucket in (
            (over, Check.STEP_OVER_RECOVERY, Severity.HIGH, "more than went in", totals.over),
            (
                under,
                Check.STEP_UNDER_RECOVERY,
                Severity.MEDIUM,
                "below the plausible floor",
                totals.under,
            ),
        ):
            if not elements:
                continue
            for e in elements:
                bucket.setdefault(e, []).append(step)
            _add(
                found,
                check,
                severity,
                f"{_what(step)} recovered {_shares(elements, held, made)}: {words}",
                items=_step_items(step),
                actors=(step.actor,),
                events=(step.event_id,),
                amounts=_element_amounts(elements, held, made, config),
                now=now,
            )
    for (actor, year, kind), totals in sorted(years.items()):
        over, under = _judge(totals.held, totals.made, config)
        for elements, check, severity, words, bucket in (
            (over, Check.YEAR_OVER_RECOVERY, Severity.HIGH, "more than went in", totals.over),
            (
                under,
                Check.YEAR_UNDER_RECOVERY,
                Severity.MEDIUM,
                "below the plausible floor",
                totals.under,
            ),
        ):
            if not elements:
                continue
            steps = [s for e in elements for s in bucket.get(e, [])]
            _add(
                found,
                check,
                severity,
                f"{actor}'s {_GERUNDS[kind]} in {year} recovered "
                f"{_shares(elements, totals.held, totals.made)}: {words}",
                items=(i for s in steps for i in _step_items(s)),
                actors=(actor,),
                events=(s.event_id for s in steps),
                amounts=_element_amounts(elements, totals.held, totals.made, config),
                now=now,
                year=year,
            )
    return found


def flow_anomalies(state: ScanState, *, now: datetime, config: AnomalyConfig) -> list[Anomaly]:
    """:func:`mass_anomalies` and :func:`recovery_anomalies`.

    >>> from datetime import UTC, datetime
    >>> from trace.anomalies_model import DEFAULT_CONFIG
    >>> from trace.state import MemoryWorld
    >>> flow_anomalies(ScanState(MemoryWorld()), now=datetime(2026, 1, 1, tzinfo=UTC),
    ...                config=DEFAULT_CONFIG)
    []
    """
    return [
        *mass_anomalies(state, now=now, config=config),
        *recovery_anomalies(state, now=now, config=config),
    ]
