"""Recycler rates, the recovery of a producer's packs, and scrap-metal totals.

* Recycling efficiency (EU 2023/1542 Art. 3(60), Annex XII Part B; domain.md §3.5) per
  recycler and period: mass of the output fractions of its steps (dismantle, recycle, lot
  split, merge, smelt), less declared process reagents, ÷ mass of the input fraction.
* Material recovery (Annex XII Part C, Delegated Reg. (EU) 2025/606; China 2024 norms) per
  recycler, period and element: element kg in those outputs ÷ element kg in those inputs.
* Recovery of a producer's packs: element kg of the outputs made from its packs (followed
  through black mass, allocated by element share where a step mixes inputs) ÷ element kg
  of its packs ended at a recycler in the period.
* Scrap totals (14th FYP industrial green development plan, 专栏4; domain.md §6.1): scrap
  steel and non-ferrous scrap lots made, recycled Cu, Al and Pb lots smelted, in tonnes.

The recycler is the system boundary. Its input fraction is the waste batteries its steps
take in and the lots they take in from outside (made by others, or created from outside
the traced flow); its output fractions are the lots its steps make that it does not
consume itself. Black mass is never an output fraction: it is preparation for recycling
(Reg. (EU) 493/2012 Art. 2), counted through its products.
A recovery or efficiency above 100 % is physically impossible: it is reported as undefined,
an anomaly, never as a rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product, repeat
from operator import add, attrgetter, itemgetter, mul
from typing import Final

from trace.evidence import Rate, Total
from trace.rates_facts import RateFacts
from trace.rates_model import ELEMENTS, ZERO, Phys, Step, Vec, column_sums
from trace.rates_producer import Producers
from trace.rates_query import FIRST, NATIONAL, GroupKey, Listing, Query, attach_events, scope
from trace.rates_targets import targets_for

__all__ = [
    "BLACK_MASS",
    "IMPOSSIBLE",
    "SCRAP_TOTALS",
    "RecoveryGroups",
    "pack_recovery",
    "recovered_by_pack",
    "recycler_rates",
    "scrap_totals",
]

BLACK_MASS: Final = "black_mass"
_ONES: Final = (1.0,) * len(ELEMENTS)
_MASKS: Final = {
    mask: tuple(1.0 if held else 0.0 for held in mask)
    for mask in product((False, True), repeat=len(ELEMENTS))
}  # which elements an input holds -> its share of each in the outputs
IMPOSSIBLE: Final = 1.0 + 1e-9
"""A ratio of recovered to input mass above this is an anomaly, not a rate."""
SCRAP_TOTALS: Final[Mapping[str, tuple[frozenset[str], frozenset[str]]]] = {
    # total -> (lot materials, event types that make them)
    "scrap_steel": (frozenset({"steel_scrap"}), frozenset({"dismantle", "recycle", "lot_create"})),
    "scrap_nonferrous": (
        frozenset({"copper_scrap", "aluminium_scrap", "lead_scrap"}),
        frozenset({"dismantle", "recycle", "lot_create"}),
    ),
    "recycled_copper": (frozenset({"copper_scrap"}), frozenset({"lot_smelt"})),
    "recycled_aluminium": (frozenset({"aluminium_scrap"}), frozenset({"lot_smelt"})),
    "recycled_lead": (frozenset({"lead_scrap", "lead"}), frozenset({"lot_smelt"})),
}
_KG_PER_T: Final = 1000.0
_PHYS_CODE = attrgetter("code")
_LOT_KG, _LOT_SEQ = itemgetter(1), itemgetter(2)
_LEAD_ACID: Final = "lead-acid"


def _battery(facts: RateFacts, step: Step, kg: float, root: str) -> tuple[float, Vec, str | None]:
    """Mass, element kg and chemistry of a battery input, less the coded parts taken out whole."""
    phys = facts.phys.get(root)
    if phys is None:
        return kg, ZERO, None
    vec = phys.content or ZERO
    if step.parts:
        parts = [p for p in (facts.phys.get(r) for r in step.parts) if p is not None]
        kg = max(kg - sum(p.mass for p in parts), 0.0)
        vec = tuple(
            max(v - sum(p.content[i] for p in parts if p.content is not None), 0.0)
            for i, v in enumerate(vec)
        )
    return kg, vec, phys.chemistry


def _ratio(name: str, sc: dict[str, object], num: float, den: float, **kw: object) -> Rate:
    rate = Rate.ratio(name, sc, num, den, **kw)  # type: ignore[arg-type]
    if rate.value is not None and rate.value > IMPOSSIBLE:
        reason = f"{rate.value:.2%} is above 100 %: physically impossible, an anomaly"
        return Rate(
            rate.name, rate.scope, num, den, None, reason, rate.unit, (), rate.evidence,
            rate.denominator_evidence,
        )  # fmt: skip
    return rate


Row = tuple[str, float, Vec, int]  # item, kg, element kg, event seq
_ITEM, _KG, _VEC, _SEQ = FIRST, itemgetter(1), itemgetter(2), itemgetter(3)


@dataclass
class _Acc:
    """One recycler-period: what went in and came out, summed, and the rows behind it."""

    in_kg: float = 0.0
    out_kg: float = 0.0
    reagents: float = 0.0
    in_vec: list[float] = field(default_factory=lambda: list(ZERO))
    out_vec: list[float] = field(default_factory=lambda: list(ZERO))
    inputs: list[Row] = field(default_factory=list)
    outputs: list[Row] = field(default_factory=list)
    chemistries: set[str | None] = field(default_factory=set)


def _recycler_accounts(facts: RateFacts, q: Query) -> dict[tuple[str, str], _Acc]:
    # A lot a recycler's own step consumes is its intermediate, not an output fraction.
    consumer = {code: step.at.actor for step in facts.steps for code, _, root in step.inputs
                if root is None}  # fmt: skip
    recyclers = {a for a in {s.at.actor for s in facts.steps} if facts.role_of(a) == "recycler"}
    accounts: dict[tuple[str, str], _Acc] = defaultdict(_Acc)
    lots, phys, region, label_of = facts.lots, facts.phys, q.region, q.label_of
    for step in facts.steps:
        at = step.at
        if at.actor not in recyclers or (region is not None and at.region != region):
            continue
        label = label_of(at.day)
        if label is None:
            continue
        acc = accounts[at.actor, label]
        acc.reagents += step.reagents
        for code, kg, root in step.inputs:
            if root is None:
                lot = lots.get(code)
                if lot is not None and lot.at.actor == at.actor and lot.ctype != "lot_create":
                    continue  # its own intermediate: counted when what it came from went in
                vec = ZERO if lot is None else tuple(map(mul, lot.share, repeat(kg)))
                acc.inputs.append((code, kg, vec, at.seq))
            elif step.parts or root not in phys:
                mass, vec, chemistry = _battery(facts, step, kg, root)
                acc.chemistries.add(chemistry)
                acc.inputs.append((code, mass, vec, at.seq))
            else:
                battery = phys[root]
                acc.chemistries.add(battery.chemistry)
                acc.inputs.append((code, kg, battery.content or ZERO, at.seq))
        for lot_id in step.outputs:
            made = lots[lot_id]
            if made.material != BLACK_MASS and consumer.get(lot_id) != at.actor:
                acc.outputs.append((lot_id, made.mass, made.content, at.seq))
    for acc in accounts.values():
        acc.in_kg, acc.out_kg = sum(map(_KG, acc.inputs), 0.0), sum(map(_KG, acc.outputs), 0.0)
        acc.in_vec, acc.out_vec = (
            column_sums(map(_VEC, acc.inputs)),
            column_sums(map(_VEC, acc.outputs)),
        )
    return accounts


def recycler_rates(facts: RateFacts, q: Query) -> list[Rate]:
    """Recycling efficiency and per-element recovery per recycler and period.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> rates = recycler_rates(facts, Query.build(facts, year=2025))
    >>> [(r.name, r.scope.get("element"), round(r.value, 4)) for r in rates
    ...  if r.value is not None and (r.value > 0 or r.name == "recycling_efficiency")]
    [('recycling_efficiency', None, 0.2985), ('material_recovery', 'Li', 0.9), ('material_recovery', 'Cu', 0.98)]
    """
    out: list[Rate] = []
    for (actor, label), acc in sorted(_recycler_accounts(facts, q).items()):
        period = q.period(label)
        sc = scope(q, label, actor=actor)
        category = _LEAD_ACID if acc.chemistries == {_LEAD_ACID} else "lithium"
        num = max(acc.out_kg - acc.reagents, 0.0)
        value = num / acc.in_kg if acc.in_kg > 0 else None
        made = Listing(q, acc.outputs, item=_ITEM, seq=_SEQ)
        took = Listing(q, _merged(acc.inputs), item=_ITEM, seq=_SEQ)
        out.append(
            _ratio(
                "recycling_efficiency", sc, num, acc.in_kg, unit="kg",
                undefined=f"no waste-battery input at {actor} in {label}",
                targets=targets_for("recycling_efficiency", value, period, category=category),
                evidence=made.evidence(_KG), denominator_evidence=took.evidence(_KG),
            )
        )  # fmt: skip
        for i, element in enumerate(ELEMENTS):
            got, held = acc.out_vec[i], acc.in_vec[i]
            value = got / held if held > 0 else None
            kg = itemgetter(i)
            out.append(
                _ratio(
                    "material_recovery", {**sc, "element": element}, got, held, unit="kg",
                    undefined=f"no {element} in the waste batteries {actor} took in, {label}",
                    targets=targets_for("material_recovery", value, period, element=element,
                                        category=category),
                    evidence=made.evidence(lambda r, kg=kg: kg(r[2])),  # type: ignore[misc]
                    denominator_evidence=took.evidence(lambda r, kg=kg: kg(r[2])),  # type: ignore[misc]
                )
            )  # fmt: skip
    return attach_events(facts, out)


def _merged(rows: list[Row]) -> list[Row]:
    """Input rows with one row per item (an item fed twice in a period is listed once)."""
    seen: dict[str, Row] = {}
    for row in rows:
        was = seen.get(row[0])
        seen[row[0]] = row if was is None else (
            row[0], was[1] + row[1], tuple(map(add, was[2], row[2])), min(was[3], row[3])
        )  # fmt: skip
    return list(seen.values()) if len(seen) != len(rows) else rows


def _end_seq(phys: Phys) -> int:
    return phys.end.seq if phys.end is not None else -1


def recovered_by_pack(facts: RateFacts) -> dict[str, list[float]]:
    """Element kg of recovered outputs per physical battery (its commissioned code).

    Steps are followed in log order; a battery input owns its share of each element, a
    black-mass lot passes on the shares of the batteries it came from, and every other
    output credits each owner with its element kg times the owner's share.

    Examples
    --------
    >>> from trace.rates_example import P1, example_facts
    >>> [round(kg, 3) for kg in recovered_by_pack(example_facts())[P1]]
    [5.4, 0.0, 0.0, 0.0, 19.6, 0.0, 0.0]
    """
    owners: dict[str, list[tuple[str, Vec]]] = {}  # black-mass lot -> (root, share per element)
    out: dict[str, list[float]] = {}
    lots, phys = facts.lots, facts.phys
    for step in facts.steps:
        ins: list[tuple[Vec, list[tuple[str, Vec]]]] = []
        for code, kg, root in step.inputs:
            if root is not None:
                battery = phys.get(root)
                vec = (
                    (battery.content or ZERO)
                    if battery is not None and not step.parts
                    else _battery(facts, step, kg, root)[1]
                )
                ins.append((vec, [(root, _ONES)]))
            else:
                # Every lot's elements count in the step's totals; only black mass has owners.
                lot = lots.get(code)
                vec = ZERO if lot is None else tuple(map(mul, lot.share, repeat(kg)))
                ins.append((vec, owners.get(code, [])))
        if len(ins) == 1:
            # One input (most steps): each element it holds is all the outputs'.
            vec, who = ins[0]
            if not who:
                continue
            mask = _MASKS[tuple(map(bool, vec))]  # element kg are never negative
            shares = [(root, mask if f is _ONES else tuple(map(mul, f, mask))) for root, f in who]
        else:
            if not any(who for _, who in ins):
                continue
            totals = [sum(vec[i] for vec, _ in ins) for i in range(len(ELEMENTS))]
            shares = [
                (root, tuple(f[i] * vec[i] / t if t > 0 else 0.0 for i, t in enumerate(totals)))
                for vec, who in ins
                for root, f in who
            ]
        for lot_id in step.outputs:
            made = lots[lot_id]
            if made.material == BLACK_MASS:
                owners[lot_id] = shares
                continue
            for root, share in shares:
                got = map(mul, made.content, share)
                acc = out.get(root)
                out[root] = list(got) if acc is None else list(map(add, acc, got))
    return out


class RecoveryGroups:
    """The packs ended at recyclers, by producer (and nationally) and period of their end.

    :meth:`take` is given each pack in code order (a sink of
    :func:`~trace.rates_producer.producer_groups`), so that every group is in item order.
    Each group keeps its packs and, taken while the pack is at hand, their element kg held
    and recovered (``credited``: :func:`recovered_by_pack`). ``producers`` are gathered by
    the same walk.
    """

    __slots__ = ("credited", "got", "held", "packs", "producers", "q")

    def __init__(self, q: Query, credited: dict[str, list[float]], producers: Producers) -> None:
        self.q, self.credited, self.producers = q, credited, producers
        self.packs: dict[GroupKey, list[Phys]] = defaultdict(list)
        self.held: dict[GroupKey, list[Vec]] = defaultdict(list)
        self.got: dict[GroupKey, list[Sequence[float]]] = defaultdict(list)

    def take(self, phys: Phys) -> None:
        """Count one pack, given after every pack of a lesser code."""
        at, q = phys.end, self.q
        if at is None or not (q.keeps_region(at.region) and q.keeps_chemistry(phys.chemistry)):
            return
        label = q.label_of(at.day)
        if label is None:
            return
        content, got = phys.content or ZERO, self.credited.get(phys.code, ZERO)
        maker, auto = phys.maker, phys.automaker
        owners = (maker, NATIONAL) if auto is None or auto == maker else (maker, auto, NATIONAL)
        for owner in owners:
            self.packs[owner, label].append(phys)
            self.held[owner, label].append(content)
            self.got[owner, label].append(got)


def pack_recovery(facts: RateFacts, q: Query, packs: RecoveryGroups | None = None) -> list[Rate]:
    """Per producer, period and element: recovered ÷ element kg of its packs ended at recyclers.

    ``packs`` are the query's :class:`RecoveryGroups`, when a walk over the packs has
    gathered them already.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> q = Query.build(facts, year=2025, producer="am-01")
    >>> [(r.scope["element"], round(r.value, 3)) for r in pack_recovery(facts, q)
    ...  if r.value is not None]
    [('Li', 0.9), ('Cu', 0.98), ('Al', 0.0)]
    """
    if packs is None:
        packs = RecoveryGroups(q, recovered_by_pack(facts), Producers(q))
        for pack in facts.ordered("pack"):
            packs.producers.take(pack)
            packs.take(pack)
    credited = packs.credited
    names = packs.producers.grid()
    out: list[Rate] = []
    for producer in names:
        for period in q.periods:
            key = (producer, period.label)
            page = Listing(q, packs.packs.get(key, []), item=_PHYS_CODE, seq=_end_seq, ordered=True)
            got = column_sums(packs.got.get(key, ()))
            held = column_sums(packs.held.get(key, ()))
            for i, element in enumerate(ELEMENTS):
                value = got[i] / held[i] if held[i] > 0 else None
                out.append(
                    _ratio(
                        "material_recovery_of_packs",
                        scope(q, period.label, producer=producer, element=element),
                        got[i], held[i], unit="kg",
                        undefined=f"no {element} in packs ended at recyclers in {period.label}",
                        targets=targets_for("material_recovery_of_packs", value, period,
                                            element=element, category="lithium"),
                        evidence=page.evidence(
                            lambda p, i=i: credited.get(p.code, ZERO)[i]),  # type: ignore[misc]
                        denominator_evidence=page.evidence(
                            lambda p, i=i: (p.content or ZERO)[i]),  # type: ignore[misc]
                    )
                )  # fmt: skip
    return attach_events(facts, out)


def scrap_totals(facts: RateFacts, q: Query) -> list[Total]:
    """Tonnes of scrap made and recycled metal smelted, per period, nationally and per province.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> [(t.name, round(t.amount, 4)) for t in scrap_totals(facts, Query.build(facts, year=2025))
    ...  if t.scope["region"] is None]
    [('scrap_steel', 0.07), ('scrap_nonferrous', 0.02), ('recycled_copper', 0.0194), ('recycled_aluminium', 0.0), ('recycled_lead', 0.0)]
    """
    groups: dict[tuple[str, str | None], dict[str, list[tuple[str, float, int]]]] = defaultdict(
        lambda: {name: [] for name in SCRAP_TOTALS}
    )
    names = {
        (material, maker): name
        for name, (materials, makers) in SCRAP_TOTALS.items()
        for material in materials
        for maker in makers
    }
    for lot_id, lot in facts.lots.items():
        name = names.get((lot.material, lot.ctype))
        if name is None or not q.keeps_region(lot.at.region):
            continue
        label = q.label_of(lot.at.day)
        if label is not None:
            row = (lot_id, lot.mass, lot.at.seq)
            groups[label, lot.at.region][name].append(row)
            if q.region is None:
                groups[label, None][name].append(row)
    out: list[Total] = []
    for (label, where), totals in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        for name, rows in totals.items():
            kg = sum(map(_LOT_KG, rows), 0.0)
            sc = {**scope(q, label), "region": where}
            targets = targets_for(name, kg / _KG_PER_T, q.period(label), category="national")
            ev = Listing(q, rows, item=_ITEM, seq=_LOT_SEQ).evidence(_LOT_KG)
            out.append(Total(name, sc, kg / _KG_PER_T, "t", targets, ev))
    return attach_events(facts, out)
