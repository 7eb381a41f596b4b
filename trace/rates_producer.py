"""Producer rates: packs placed and their fates, collection, cascade use and recycled content.

* Collection rate, China's EPR form (NDRC 发改产业 2021 No. 1102, domain.md §5.1): collected
  in year *y* ÷ mean placed in *y-1..y-3*; the EU variant (Dir. 2006/66/EC Art. 3(17)) ÷ mean
  placed in *y-2..y*. By count and by mass.
* Cascade-use rate (domain.md §2.4, §5.1): repurposed ÷ collected in the period, per
  producer (per cascade operator: :mod:`trace.rates_cascade`).
* Recycled content (EU 2023/1542 Art. 8): element kg the consumed lots bring (kg taken times
  the lot's element share times its post-consumer share) ÷ element kg of the packs commissioned.

A producer is the battery maker or automaker that commissioned the pack and the automaker
that first installed it (automakers bear the EPR duty, domain.md §2.1); a national rate
(``producer`` ``None``) counts each physical pack once, placed at its commissioning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter, itemgetter
from typing import Final

from trace.evidence import Evidence, Rate, Total
from trace.rates_facts import RateFacts
from trace.rates_model import ELEMENTS, Phys, Vec, column_sums
from trace.rates_query import FIRST, NATIONAL, GroupKey, Listing, Query, attach_events, scope
from trace.rates_targets import targets_for

__all__ = [
    "CONTENT_ELEMENTS",
    "FIGURES",
    "ContentGroups",
    "Producers",
    "Sink",
    "cascade_use_rates",
    "collection_rates",
    "producer_figures",
    "producer_groups",
    "recycled_content",
]

FIGURES: Final = ("placed", "retired", "collected", "repurposed", "recycled")
"""What an EPR report counts for a producer's packs (docs/metrics.md)."""
CONTENT_ELEMENTS: Final = ("Co", "Li", "Ni", "Pb")
"""Elements of the recycled-content targets (EU 2023/1542 Art. 8)."""
_PRECEDING: Final = 3
_UNITS: Final = ("count", "kg", "kWh")

Key = tuple[str, str | None, object]  # figure, producer, calendar year or period label
Row = tuple[str, float, int, float]  # code, kg, event seq, kWh
Groups = dict[Key, list[Row]]
Sink = Callable[[Phys], None]
"""Given each battery :func:`producer_groups` walks, in code order."""
_CODE, _KG, _SEQ, _KWH = FIRST, itemgetter(1), itemgetter(2), itemgetter(3)
_PHYS_CODE = attrgetter("code")


def _commission_seq(phys: Phys) -> int:
    return phys.c_at.seq


class Producers:
    """The producers a rate grid covers: the makers and automakers of every battery walked.

    A :data:`Sink` of :func:`producer_groups`, so that the walk that groups the figures
    gathers them too. Filters of region and chemistry do not narrow the grid: a producer
    with nothing in them still gets its rows (zero totals, undefined rates).
    """

    __slots__ = ("automakers", "makers", "q")

    def __init__(self, q: Query) -> None:
        self.q = q
        self.makers: set[str] = set()
        self.automakers: set[str] = set()  # that first installed a pack

    @classmethod
    def walk(cls, facts: RateFacts, q: Query, kind: str = "pack") -> Producers:
        """The producers of every battery of ``kind``, for callers without a walk of their own."""
        found = cls(q)
        if q.producer is None:
            for phys in facts.ordered(kind):
                found.take(phys)
        return found

    def take(self, phys: Phys) -> None:
        self.makers.add(phys.maker)
        if phys.automaker is not None:
            self.automakers.add(phys.automaker)

    def grid(self, *, automakers: bool = True) -> list[str | None]:
        """The filter's producer, else every maker (and automaker) in name order, then national.

        Examples
        --------
        >>> from trace.rates_example import example_facts
        >>> facts = example_facts()
        >>> Producers.walk(facts, Query.build(facts, year=2025)).grid()
        ['am-01', 'bm-01', None]
        """
        if self.q.producer is not None:
            return [self.q.producer]
        found = self.makers | self.automakers if automakers else self.makers
        return [*sorted(found), NATIONAL]


def _walked(
    facts: RateFacts, q: Query, kind: str, groups: Groups | None, found: Producers | None
) -> tuple[Groups, list[str | None]]:
    """The figures' groups and the grid's producers (automakers answer for packs alone),
    walking the batteries once for what the caller does not have."""
    if groups is None:
        found = found or Producers(q)
        groups = producer_groups(facts, q, kind=kind, sinks=(found.take,))
    elif found is None:
        found = Producers.walk(facts, q, kind)
    return groups, found.grid(automakers=kind == "pack")


def producer_groups(
    facts: RateFacts, q: Query, *, kind: str = "pack", sinks: Sequence[Sink] = ()
) -> Groups:
    """Each figure's rows ``(code, kg, seq, kWh)`` by producer and calendar year.

    The one pass over the physical batteries that the figures, the collection rates and
    the cascade-use rates share; region and chemistry filters are applied, periods not.
    Placed on the market at the commissioned mass; afterwards as first collected.
    Each of ``sinks`` is given every battery of the kind too, in the same order, unfiltered
    (:class:`ContentGroups`, :class:`~trace.rates_recycling.RecoveryGroups`): at a million
    packs a walk of its own would read every battery again, out of cache.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> groups = producer_groups(facts, Query.build(facts))
    >>> groups["collected", None, 2025]
    [('001PB1A0000001E390000042', 398.0, 6, 60.0)]
    """
    out: Groups = defaultdict(list)
    region, chemistry = q.region, q.chemistry
    years: dict[int, int] = {}
    figures = ("retired", "collected", "repurposed", "recycled")
    for phys in facts.ordered(kind):  # so that every group is in item order
        for sink in sinks:
            sink(phys)
        if chemistry is not None and phys.chemistry != chemistry:
            continue
        code, kwh = phys.code, phys.energy
        auto = phys.automaker if phys.automaker != phys.maker else None
        owners = (phys.maker, NATIONAL) if auto is None else (phys.maker, auto, NATIONAL)
        for owner, at in ((phys.maker, phys.c_at), (auto, phys.i_at)):
            if at is None or (owner is None and at is not phys.c_at):
                continue
            if region is None or at.region == region:
                year = years.get(at.day) or years.setdefault(at.day, q.year_of(at.day))
                row = (code, phys.mass, at.seq, kwh)
                out["placed", owner, year].append(row)
                if at is phys.c_at:
                    out["placed", NATIONAL, year].append(row)
        kg = phys.kg
        for figure, at_ in zip(
            figures, (phys.retire, phys.collect, phys.repurpose, phys.end), strict=True
        ):
            if at_ is not None and (region is None or at_.region == region):
                year = years.get(at_.day) or years.setdefault(at_.day, q.year_of(at_.day))
                row = (code, kg, at_.seq, kwh)
                for owner in owners:
                    out[figure, owner, year].append(row)
    return out


class _Pages:
    """Each group's listing, made once and shared by every rate that shows the group."""

    def __init__(self, facts: RateFacts, q: Query, groups: Groups) -> None:
        self.facts, self.q, self.groups = facts, q, groups
        self._made: dict[Key, Listing[Row]] = {}
        self._sums: dict[Key, tuple[float, float, float]] = {}

    def listing(self, keys: Iterable[Key]) -> Listing[Row]:
        parts = []
        for key in keys:
            page = self._made.get(key)
            if page is None:
                rows = self.groups.get(key, [])
                # A recycling step may take several packs in; the events behind the other
                # figures (commission, install, retire, collect, repurpose) name one item.
                page = self._made[key] = Listing(
                    self.q, rows, item=_CODE, seq=_SEQ, ordered=True,
                    one_event_each=key[0] != "recycled",
                )  # fmt: skip
            parts.append(page)
        return Listing.merge(self.q, parts)

    def evidence(self, keys: Iterable[Key]) -> Evidence:
        return self.listing(keys).evidence(_KG)

    def sums(self, keys: Iterable[Key]) -> tuple[float, float, float]:
        count = kg = kwh = 0.0
        for key in keys:
            found = self._sums.get(key)
            if found is None:  # a year's placed packs are summed for six collection rates
                rows = self.groups.get(key, [])
                found = self._sums[key] = (
                    len(rows),
                    sum(map(_KG, rows), 0.0),
                    sum(map(_KWH, rows), 0.0),
                )
            count += found[0]
            kg += found[1]
            kwh += found[2]
        return count, kg, kwh


def _by_period(facts: RateFacts, q: Query, groups: Groups, kind: str) -> Groups:
    """The groups keyed by period label: renamed years, or a second pass for a date range."""
    if all(p.is_year for p in q.periods):
        labels = {p.start.year for p in q.periods}
        return {(f, o, str(y)): v for (f, o, y), v in groups.items() if y in labels}
    out: Groups = defaultdict(list)
    days = dict(_event_days(facts.ordered(kind)))
    for (figure, owner, _), rows in groups.items():
        for row in rows:
            label = q.label_of(days[row[2]])
            if label is not None:
                out[figure, owner, label].append(row)
    for rows in out.values():
        rows.sort(key=_CODE)  # a range may join two years' groups
    return out


def _event_days(batteries: Iterable[Phys]) -> Iterable[tuple[int, int]]:
    """``(seq, day)`` of every event a producer figure of ``batteries`` stands on."""
    for phys in batteries:
        for at in (phys.c_at, phys.i_at, phys.retire, phys.collect, phys.repurpose, phys.end):
            if at is not None:
                yield at.seq, at.day


def producer_figures(
    facts: RateFacts,
    q: Query,
    *,
    kind: str = "pack",
    groups: Groups | None = None,
    producers: Producers | None = None,
) -> list[Total]:
    """Packs placed, retired, collected, repurposed and recycled per producer and period.

    Each figure by count, kg and kWh (rated energy); see :data:`FIGURES`. ``groups`` are
    :func:`producer_groups` of the same query and ``producers`` what its walk gathered,
    when the caller has them.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> figures = producer_figures(facts, Query.build(facts, year=2025))
    >>> [(t.name, t.amount) for t in figures if t.scope["producer"] == "bm-01" and t.unit == "kg"]
    [('placed', 0.0), ('retired', 848.0), ('collected', 398.0), ('repurposed', 450.0), ('recycled', 398.0)]
    """
    groups, grid = _walked(facts, q, kind, groups, producers)
    pages = _Pages(facts, q, _by_period(facts, q, groups, kind))
    out: list[Total] = []
    for producer in grid:
        for period in q.periods:
            for figure in FIGURES:
                key = (figure, producer, period.label)
                ev = pages.evidence([key])
                for unit, amount in zip(_UNITS, pages.sums([key]), strict=True):
                    sc = scope(q, period.label, producer=producer)
                    out.append(Total(figure, sc, amount, unit, evidence=ev))  # type: ignore[arg-type]
    return attach_events(facts, out)


def collection_rates(
    facts: RateFacts,
    q: Query,
    *,
    groups: Groups | None = None,
    producers: Producers | None = None,
) -> list[Rate]:
    """China's collection rate and the EU variant, by count and by kg, per producer-year.

    ``groups`` and ``producers`` as for :func:`producer_figures`.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> rates = collection_rates(facts, Query.build(facts, year=2025))
    >>> [(r.name, r.numerator, round(r.denominator, 1)) for r in rates
    ...  if r.scope["producer"] == "bm-01" and r.unit == "kg"]
    [('collection_rate', 398.0, 283.3), ('collection_rate_eu', 398.0, 0.0)]
    """
    groups, grid = _walked(facts, q, "pack", groups, producers)
    pages = _Pages(facts, q, groups)
    out: list[Rate] = []
    for producer in grid:
        for year in q.years:
            period = q.period(str(year))
            got = [("collected", producer, year)]
            num, num_ev = pages.sums(got), pages.evidence(got)
            for name, years in (
                ("collection_rate", range(year - _PRECEDING, year)),
                ("collection_rate_eu", range(year - _PRECEDING + 1, year + 1)),
            ):
                placed = [("placed", producer, y) for y in years]
                reason = f"nothing placed on the market in {years[0]}-{years[-1]}"
                den, den_ev = pages.sums(placed), pages.evidence(placed)
                for i, unit in ((0, "count"), (1, "kg")):
                    mean = den[i] / _PRECEDING
                    value = num[i] / mean if mean > 0 else None
                    targets = (
                        targets_for(name, value, period) if name == "collection_rate_eu" else ()
                    )
                    out.append(
                        Rate.ratio(
                            name,
                            scope(q, str(year), producer=producer),
                            num[i],
                            mean,
                            unit=unit,  # type: ignore[arg-type]
                            undefined=reason,
                            targets=targets,
                            evidence=num_ev,
                            denominator_evidence=den_ev,
                        )
                    )
    return attach_events(facts, out)


def cascade_use_rates(
    facts: RateFacts,
    q: Query,
    *,
    kind: str = "pack",
    groups: Groups | None = None,
    producers: Producers | None = None,
) -> list[Rate]:
    """Repurposed ÷ collected per producer and period, by count and by kg, for one item kind.

    ``groups`` and ``producers`` as for :func:`producer_figures`, of the same ``kind``.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> [(r.unit, r.numerator, r.denominator) for r in cascade_use_rates(facts, Query.build(
    ...     facts, year=2025)) if r.scope["producer"] is None]
    [('count', 1.0, 1.0), ('kg', 450.0, 398.0)]
    """
    groups, grid = _walked(facts, q, kind, groups, producers)
    pages = _Pages(facts, q, _by_period(facts, q, groups, kind))
    out: list[Rate] = []
    for producer in grid:
        for period in q.periods:
            rep = [("repurposed", producer, period.label)]
            col = [("collected", producer, period.label)]
            num, den = pages.sums(rep), pages.sums(col)
            num_ev, den_ev = pages.evidence(rep), pages.evidence(col)
            for i, unit in ((0, "count"), (1, "kg")):
                out.append(
                    Rate.ratio(
                        "cascade_use_rate",
                        scope(q, period.label, producer=producer, kind=kind),
                        num[i],
                        den[i],
                        unit=unit,  # type: ignore[arg-type]
                        undefined=f"no {kind} collected in {period.label}",
                        evidence=num_ev,
                        denominator_evidence=den_ev,
                    )
                )
    return attach_events(facts, out)


class ContentGroups:
    """The packs recycled content counts, by maker (and nationally) and period of commissioning.

    :meth:`take` is given each pack in code order (a :data:`Sink` of
    :func:`producer_groups`), so that every group is in item order. Each group keeps its
    packs, their element kg and, of those built with lots, the packs and the kg the lots
    brought: summed from here, not by visiting the packs again. ``producers`` are gathered
    by the same walk.
    """

    __slots__ = ("built", "contents", "packs", "producers", "q", "recycled")

    def __init__(self, q: Query, producers: Producers) -> None:
        self.q, self.producers = q, producers
        self.packs: dict[GroupKey, list[Phys]] = defaultdict(list)
        self.contents: dict[GroupKey, list[Vec]] = defaultdict(list)
        self.built: dict[GroupKey, list[Phys]] = defaultdict(list)  # with recycled lots
        self.recycled: dict[GroupKey, list[Vec]] = defaultdict(list)

    def take(self, phys: Phys) -> None:
        """Count one pack, given after every pack of a lesser code."""
        content, c_at, q = phys.content, phys.c_at, self.q
        if content is None or not (
            q.keeps_chemistry(phys.chemistry) and q.keeps_region(c_at.region)
        ):
            return
        label = q.label_of(c_at.day)
        if label is None:
            return
        own, every = (phys.maker, label), (NATIONAL, label)
        self.packs[own].append(phys)
        self.packs[every].append(phys)
        self.contents[own].append(content)
        self.contents[every].append(content)
        if phys.recycled is not None:
            self.built[own].append(phys)
            self.built[every].append(phys)
            self.recycled[own].append(phys.recycled)
            self.recycled[every].append(phys.recycled)


def recycled_content(facts: RateFacts, q: Query, packs: ContentGroups | None = None) -> list[Rate]:
    """Per producer, period and element (Co, Li, Ni, Pb): recycled kg ÷ element kg of new packs.

    ``packs`` are the query's :class:`ContentGroups`, when a walk over the packs has
    gathered them already. Producers are the packs' makers: they commission new packs.

    Examples
    --------
    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> [(r.scope["element"], r.value) for r in recycled_content(facts, Query.build(
    ...     facts, year=2022, producer="bm-01"))]
    [('Co', 0.0), ('Li', 0.0), ('Ni', 0.0), ('Pb', None)]
    """
    if packs is None:
        packs = ContentGroups(q, Producers(q))
        for pack in facts.ordered("pack"):
            packs.producers.take(pack)
            packs.take(pack)
    makers = packs.producers.grid(automakers=False)
    columns = [ELEMENTS.index(element) for element in CONTENT_ELEMENTS]
    brought = _lots_brought(packs.built, columns, q.producer)
    out: list[Rate] = []
    for producer in makers:
        for period in q.periods:
            key = (producer, period.label)
            page = Listing(
                q, packs.packs.get(key, []), item=_PHYS_CODE, seq=_commission_seq,
                ordered=True, one_event_each=True,
            )  # fmt: skip
            held = column_sums(packs.contents.get(key, ()))
            got = column_sums(packs.recycled.get(key, ()))
            by_element = brought.get(key) or [{} for _ in columns]
            for element, i, lot_kg in zip(CONTENT_ELEMENTS, columns, by_element, strict=True):
                num = got[i]
                value = num / held[i] if held[i] > 0 else None
                lots = Listing(q, [(k, v[0], int(v[1])) for k, v in lot_kg.items()],
                               item=_CODE, seq=_SEQ)  # fmt: skip
                out.append(
                    Rate.ratio(
                        "recycled_content",
                        scope(q, period.label, producer=producer, element=element),
                        num,
                        held[i],
                        unit="kg",
                        undefined=f"no {element} in the packs commissioned in {period.label}",
                        targets=targets_for(
                            "recycled_content", value, q.period(period.label), element=element
                        ),
                        evidence=lots.evidence(_KG),
                        denominator_evidence=page.evidence(
                            lambda p, i=i: p.content[i] if p.content else 0.0  # type: ignore[misc]
                        ),
                    )
                )
    return attach_events(facts, out)


def _lots_brought(
    built: dict[GroupKey, list[Phys]], columns: list[int], producer: str | None
) -> dict[GroupKey, list[dict[str, list[float]]]]:
    """Per group (producer or national, period) and element: each lot's kg in the group's
    packs built with it and the first of them (in item order) that brought some, ``[kg, seq]``.

    Every pack is read once: without a ``producer`` filter, from the national group, which
    serves its maker's group too.
    """
    out: dict[GroupKey, list[dict[str, list[float]]]] = {}
    scanned = NATIONAL if producer is None else producer
    for (owner, label), packs in built.items():
        if owner != scanned:
            continue
        group = out[owner, label] = [{} for _ in columns]
        for p in packs:
            into = [group]
            if producer is None:
                own = out.get((p.maker, label))
                into.append(own or out.setdefault((p.maker, label), [{} for _ in columns]))
            seq = p.c_at.seq
            for lot, _, got in p.materials:
                for j, i in enumerate(columns):
                    kg = got[i]
                    if kg > 0:
                        for by_element in into:
                            row = by_element[j].get(lot) or by_element[j].setdefault(
                                lot, [0.0, seq]
                            )
                            row[0] += kg
    return out
