"""The rates suyuan reports, each with its evidence: the graph-engine side (docs/metrics.md).

Collection (China's EPR form, NDRC 发改产业 2021 No. 1102, and the EU variant of Dir.
2006/66/EC Art. 3(17)), cascade use (China 2024 draft conditions), recycling efficiency
and material recovery (EU 2023/1542 Art. 3(60), Annex XII; China 2024 norms), recycled
content (EU 2023/1542 Art. 8) and scrap totals (14th FYP industrial green development plan).

:func:`compute_rates` reads the accepted events once into :class:`~trace.rates_facts.RateFacts`
(or takes facts kept up to date by :meth:`~trace.rates_facts.RateFacts.follow`) and then
groups them: no rate rescans the log. :mod:`trace.oracle` computes the same rates in SQL,
independently, to check this module.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from trace.engine import Tracer
from trace.evidence import EVIDENCE_LIMIT, Period, Rate, Total
from trace.projections import Projections
from trace.rates_cascade import cascade_operator_rates
from trace.rates_facts import RateFacts, bulk, entries_held
from trace.rates_model import ELEMENTS
from trace.rates_producer import (
    ContentGroups,
    Producers,
    cascade_use_rates,
    collection_rates,
    producer_figures,
    producer_groups,
    recycled_content,
)
from trace.rates_query import Query
from trace.rates_recycling import (
    RecoveryGroups,
    pack_recovery,
    recovered_by_pack,
    recycler_rates,
    scrap_totals,
)

__all__ = [
    "RateReport",
    "Source",
    "bench_duckdb",
    "bench_rates",
    "compute_rates",
    "facts_of",
    "pack_recycled_content",
]

Source = Tracer | Projections | Engine | RateFacts
"""Where rates are computed from: a tracer, its projection tables, or facts already built."""


def facts_of(source: Source, *, tree_size: int | None = None) -> RateFacts:
    """The facts of ``source`` (read from its tables unless they are facts already).

    ``tree_size`` keeps the events of the log's first entries only: the rates as the log
    stood at a signed checkpoint of that size, which an auditor holding the checkpoint can
    recompute however the log has grown since. Facts already folded cannot be cut.

    >>> from trace.rates_example import example_facts
    >>> facts = example_facts()
    >>> facts_of(facts) is facts, facts_of(facts, tree_size=13) is facts
    (True, True)
    >>> facts_of(facts, tree_size=3)
    Traceback (most recent call last):
    ...
    ValueError: these facts stand at 13 log entries; read them from the projections to cut them at 3
    >>> facts_of(Projections("sqlite:///:memory:"), tree_size=3)
    Traceback (most recent call last):
    ...
    ValueError: the log holds 0 entries: no checkpoint of size 3 yet
    """
    if tree_size is not None and tree_size < 0:
        raise ValueError(f"a tree size counts log entries: {tree_size} is below 0")
    if isinstance(source, RateFacts):
        if tree_size is not None and tree_size != source.last_seq + 1:
            raise ValueError(
                f"these facts stand at {source.last_seq + 1} log entries; read them from "
                f"the projections to cut them at {tree_size}"
            )
        return source
    if isinstance(source, Tracer):
        source.catch_up()
        source = source.projections
    # Refused before the pass over the events, which a bad request should not cost.
    if tree_size is not None and (held := entries_held(source)) < tree_size:
        raise ValueError(f"the log holds {held} entries: no checkpoint of size {tree_size} yet")
    return RateFacts.from_projections(source, upto=tree_size)


@dataclass(frozen=True, slots=True)
class RateReport:
    """Every rate and total of one computation, with the query that produced them."""

    query: dict[str, Any]
    seq: int
    rates: tuple[Rate, ...]
    totals: tuple[Total, ...]

    def find(self, name: str, unit: str | None = None, **scope: Any) -> list[Rate]:
        """The rates named ``name`` (in ``unit``) whose scope has every given value."""
        return [
            r
            for r in self.rates
            if r.name == name
            and (unit is None or r.unit == unit)
            and all(r.scope.get(k) == v for k, v in scope.items())
        ]

    def rate(self, name: str, unit: str, **scope: Any) -> Rate:
        """The one rate that matches; unspecified scope keys must be ``None`` or absent.

        Raises
        ------
        KeyError
            No rate, or more than one, matches.
        """
        found = [
            r
            for r in self.find(name, unit)
            if all(r.scope.get(k) == scope.get(k) for k in {*r.scope, *scope} - {"period"})
            and ("period" not in scope or r.scope["period"] == scope["period"])
        ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} rates match {name} {unit} {scope}")
        return found[0]

    def total(self, name: str, unit: str, **scope: Any) -> Total:
        """The one total that matches (like :meth:`rate`)."""
        found = [
            t
            for t in self.totals
            if t.name == name
            and t.unit == unit
            and all(t.scope.get(k) == scope.get(k) for k in {*t.scope, *scope} - {"period"})
            and ("period" not in scope or t.scope["period"] == scope["period"])
        ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} totals match {name} {unit} {scope}")
        return found[0]

    def __iter__(self) -> Iterator[Rate | Total]:
        yield from self.totals
        yield from self.rates

    def to_json(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "seq": self.seq,
            "tree_size": self.seq + 1,  # the log entries the rates stand on
            "totals": [t.to_json() for t in self.totals],
            "rates": [r.to_json() for r in self.rates],
        }


def compute_rates(
    source: Source,
    *,
    year: int | None = None,
    period: Period | None = None,
    producer: str | None = None,
    region: str | None = None,
    chemistry: str | None = None,
    kind: str = "pack",
    evidence_limit: int = EVIDENCE_LIMIT,
    evidence_offset: int = 0,
    tree_size: int | None = None,
) -> RateReport:
    """Every rate and total for the periods and filters asked, each with its evidence.

    Parameters
    ----------
    source : Tracer, Projections, Engine or RateFacts
    year, period : int or Period, optional
        One calendar year (CST) or one date range; by default every year the events span.
        Collection rates need years; a date range leaves them out.
    producer, region, chemistry : str, optional
        Filters; one that does not apply to a rate's scope leaves that rate out.
    kind : str
        Item kind of the cascade-use rates (``pack``, ``module``, ``cell``).
    evidence_limit, evidence_offset : int
        Paging of every evidence list (counts stay complete).
    tree_size : int, optional
        The rates as the log stood when it held this many entries (a signed checkpoint's
        size); by default, every entry the source holds. See :func:`facts_of`.

    Examples
    --------
    >>> facts = RateFacts(role_of=lambda actor: "", resolve=lambda seqs: {})
    >>> pack = "001PB1A0000001E390000042"
    >>> facts.add(1, "e1", "commission", "bm-01", "440000", "2022-05-01T09:00:00+08:00",
    ...           {"item": pack, "mass_kg": 400.0})
    >>> facts.add(2, "e2", "retire", "col-01", "440000", "2025-05-01T09:00:00+08:00",
    ...           {"item": pack, "reason": "worn"})
    >>> facts.add(3, "e3", "collect", "col-01", "440000", "2025-06-01T09:00:00+08:00",
    ...           {"item": pack})
    >>> report = compute_rates(facts, year=2025)
    >>> rate = report.rate("collection_rate", "kg", producer="bm-01", period="2025")
    >>> rate.numerator, round(rate.denominator, 3), round(rate.value, 3), rate.evidence.items
    (400.0, 133.333, 3.0, ('001PB1A0000001E390000042',))
    >>> report.rate("collection_rate_eu", "count", period="2025").undefined_reason
    'nothing placed on the market in 2023-2025'
    """
    facts = facts_of(source, tree_size=tree_size)
    with bulk():
        return _compute(facts, year, period, producer, region, chemistry, kind, evidence_limit,
                        evidence_offset)  # fmt: skip


def _compute(
    facts: RateFacts,
    year: int | None,
    period: Period | None,
    producer: str | None,
    region: str | None,
    chemistry: str | None,
    kind: str,
    limit: int,
    offset: int,
) -> RateReport:
    q = Query.build(
        facts,
        year=year,
        period=period,
        producer=producer,
        region=region,
        chemistry=chemistry,
        limit=limit,
        offset=offset,
    )
    # One walk over the physical packs serves the figures, collection, cascade use,
    # recycled content and the recovery of packs.
    found = Producers(q)
    content = ContentGroups(q, found)
    recovery = RecoveryGroups(q, recovered_by_pack(facts), found)
    packs = producer_groups(facts, q, sinks=(found.take, content.take, recovery.take))
    totals: list[Total] = producer_figures(facts, q, groups=packs, producers=found)
    rates: list[Rate] = []
    if q.years and all(p.is_year for p in q.periods):
        rates += collection_rates(facts, q, groups=packs, producers=found)
    if kind == "pack":
        rates += cascade_use_rates(facts, q, groups=packs, producers=found)
    else:
        rates += cascade_use_rates(facts, q, kind=kind)
    rates += recycled_content(facts, q, content)
    rates += pack_recovery(facts, q, recovery)
    if q.producer is None:
        rates += cascade_operator_rates(facts, q, kind=kind)
        if q.chemistry is None:
            rates += recycler_rates(facts, q)
            totals += scrap_totals(facts, q)
    asked = {
        "periods": [p.label for p in q.periods],
        "producer": producer,
        "region": region,
        "chemistry": q.chemistry,
        "kind": kind,
    }
    return RateReport(asked, facts.last_seq, tuple(rates), tuple(totals))


def pack_recycled_content(source: Source, code: str) -> dict[str, float | None]:
    """The recycled share of each tracked element in one pack (``None`` where it holds none).

    EU 2023/1542 Art. 8 sets targets for Co, Li, Ni and Pb
    (:data:`~trace.rates_producer.CONTENT_ELEMENTS`); the others are for information.

    Examples
    --------
    >>> facts = RateFacts(role_of=lambda actor: "", resolve=lambda seqs: {})
    >>> facts.add(1, "e1", "lot_create", "rec-01", "430000", "2025-01-02T09:00:00+08:00",
    ...           {"lot": {"id": "LOT-NFCB6HGGNV6JT", "material": "cobalt_sulphate",
    ...                    "mass_kg": 10.0, "content_kg": {"Co": 2.0}}})
    >>> pack_recycled_content(facts, "001PB1A0000001E390000042")
    Traceback (most recent call last):
    ...
    KeyError: '001PB1A0000001E390000042 was never commissioned'
    """
    facts = facts_of(source)
    phys = facts.phys.get(facts.root(code))
    if phys is None:
        raise KeyError(f"{code} was never commissioned")
    out: dict[str, float | None] = {}
    for i, element in enumerate(ELEMENTS):
        held = phys.content[i] if phys.content is not None else 0.0
        got = phys.recycled[i] if phys.recycled is not None else 0.0
        out[element] = got / held if held > 0 else None
    return out


def bench_rates(
    source: Tracer | Projections,
    *,
    done: Callable[[str, float], None] | None = None,
    with_duckdb: bool = True,
) -> dict[str, float]:
    """Seconds to compute every rate: engine (facts, then rates; also in CPU seconds of this
    process, which other load on the machine moves less), SQL oracle, DuckDB oracle.

    For ``scripts/bench``: the same data, the engine's one pass plus group-bys against the
    SQL computation where the data is and against a DuckDB copy (unless ``with_duckdb`` is
    false: :func:`bench_duckdb` times it on its own). ``done(step, seconds)`` is told of
    each step as it ends, so a long run shows its figures before the last one.

    Examples
    --------
    >>> import os, tempfile
    >>> from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate
    >>> folder = tempfile.TemporaryDirectory()
    >>> tracer = open_simulation_tracer(os.path.join(folder.name, "sim.db"), clock=SimClock())
    >>> _ = simulate(tracer, SimConfig.small(total_packs=8, seed=7))
    >>> timings = bench_rates(tracer)
    >>> timings["packs"], timings["figures"] == timings["oracle_figures"] == timings["duckdb_figures"]
    (8.0, True)
    >>> tracer.close()
    >>> folder.cleanup()
    """
    from trace.oracle import sql_rates  # the oracle never imports the engine

    clock = time.perf_counter
    tell = done if done is not None else (lambda step, seconds: None)
    start, cpu = clock(), time.process_time()
    facts = facts_of(source)
    built = clock()
    report = compute_rates(facts)
    computed, cpu = clock(), time.process_time() - cpu
    tell("engine rates", computed - start)
    engine = (source.projections if isinstance(source, Tracer) else source).engine
    sql = sql_rates(engine)
    in_sql = clock()
    tell("SQL oracle", in_sql - computed)
    duck_s, duck_figures = bench_duckdb(engine, done=tell) if with_duckdb else (math.nan, math.nan)
    return {
        "packs": float(len(facts.phys)),
        "lots": float(len(facts.lots)),
        "figures": float(len(report.rates) + len(report.totals)),
        "oracle_figures": float(len(sql)),
        "duckdb_figures": duck_figures,
        "facts_s": built - start,
        "rates_s": computed - built,
        "engine_s": computed - start,
        "engine_cpu_s": cpu,
        "sql_s": in_sql - computed,
        "duckdb_s": duck_s,
    }


def bench_duckdb(
    engine: Engine, *, done: Callable[[str, float], None] | None = None
) -> tuple[float, float]:
    """Seconds the DuckDB oracle takes for every rate (copy included), and its figure count;
    both ``nan`` when it fails -- a failing peer does not take the engine's timings with it."""
    import duckdb

    from trace.oracle import duckdb_rates

    start = time.perf_counter()
    try:
        duck = duckdb_rates(engine)
    except duckdb.Error as error:
        warnings.warn(f"the DuckDB oracle failed: {error}", RuntimeWarning, stacklevel=2)
        return math.nan, math.nan
    seconds = time.perf_counter() - start
    if done is not None:
        done("DuckDB oracle", seconds)
    return seconds, float(len(duck))
