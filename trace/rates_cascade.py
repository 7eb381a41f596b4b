"""Cascade-use rate per cascade-use operator: what it re-coded ÷ the waste batteries it took in.

The China 2024 draft industry conditions (新能源汽车废旧动力电池综合利用行业规范条件, August
2024 draft; domain.md §2.4) ask a cascade-use enterprise to re-use at least 60 % of the mass
of waste batteries it actually collects, per enterprise-year. A battery is taken in when the
operator accepts it in a handover after its code was retired, or collects it; re-used when
the operator re-codes it (``repurpose``, GB/T 34014-2017 §4.2). Each physical battery counts
once per operator, at its first intake or re-code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from trace.evidence import Rate
from trace.rates_facts import RateFacts
from trace.rates_model import At, Phys, kind_of
from trace.rates_query import Listing, Query, attach_events, scope
from trace.rates_targets import targets_for

__all__ = ["cascade_operator_rates"]


def _firsts(
    facts: RateFacts, rows: Iterable[tuple[str, str, str, At]], q: Query, kind: str
) -> dict[tuple[str, object], list[tuple[Phys, str, At]]]:
    """First event per (operator, physical item), filtered, grouped by (operator, period)."""
    seen: set[tuple[str, str]] = set()
    out: dict[tuple[str, object], list[tuple[Phys, str, At]]] = defaultdict(list)
    for operator, root, code, at in rows:
        if (operator, root) in seen:
            continue
        seen.add((operator, root))
        phys = facts.phys.get(root)
        if phys is None or kind_of(code) != kind or not q.keeps_chemistry(phys.chemistry):
            continue
        label = q.label_of(at.day)
        if label is not None and q.keeps_region(at.region):
            out[operator, label].append((phys, code, at))
    return out


def cascade_operator_rates(facts: RateFacts, q: Query, *, kind: str = "pack") -> list[Rate]:
    """Per cascade operator and period: repurposed ÷ waste batteries taken in (count, kg).

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> (count, kg), = [cascade_operator_rates(facts, Query.build(facts, year=2025))]
    >>> kg.scope["actor"], kg.value, [t.status for t in kg.targets]
    ('cas-01', 1.0, ['pass'])
    """
    intake = _firsts(facts, facts.intake, q, kind)
    reps = _firsts(facts, facts.repurposes, q, kind)
    operators = sorted({op for op, *_ in facts.intake} | {op for op, *_ in facts.repurposes})
    out: list[Rate] = []
    for operator in operators:
        for period in q.periods:
            num_rows = reps.get((operator, period.label), [])
            den_rows = intake.get((operator, period.label), [])
            sides = [
                Listing(q, rows, item=lambda r: r[1], seq=lambda r: r[2].seq).evidence(
                    lambda r: r[0].kg
                )
                for rows in (num_rows, den_rows)
            ]
            for unit in ("count", "kg"):
                num = float(len(num_rows)) if unit == "count" else sum(p.kg for p, *_ in num_rows)
                den = float(len(den_rows)) if unit == "count" else sum(p.kg for p, *_ in den_rows)
                value = num / den if den > 0 else None
                targets = (
                    targets_for("cascade_use_rate_operator", value, q.period(period.label))
                    if unit == "kg"
                    else ()
                )
                out.append(
                    Rate.ratio(
                        "cascade_use_rate_operator",
                        scope(q, period.label, actor=operator, kind=kind),
                        num,
                        den,
                        unit=unit,
                        undefined=f"{operator} took in no waste {kind} in {period.label}",
                        targets=targets,
                        evidence=sides[0],
                        denominator_evidence=sides[1],
                    )
                )
    return attach_events(facts, out)
