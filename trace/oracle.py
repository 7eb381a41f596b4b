"""The independent oracle: every rate of docs/metrics.md computed in SQL, to check the engine.

:mod:`trace.rates` folds events into Python facts; this module shares none of that code. It
runs the SQL of :mod:`trace.rates_sql` — ``->``/``->>`` on ``trace_events.body_json``,
window functions, recursive CTEs — where the data is (SQLite or PostgreSQL, through the
projection tables' engine) or on a DuckDB copy of the tables (:func:`duckdb_rates`, a
temporary DuckDB file with a bounded buffer pool). Each result is a :class:`Figure` keyed
like the engine's rates, so a test can compare them one by one (EU 2023/1542
Art. 3(60) and Annex XII, Art. 8; China's EPR form NDRC 发改产业 2021 No. 1102; the 14th FYP
scrap totals — the same definitions, written twice).
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import duckdb
from sqlalchemy import Engine, create_engine, text

from schemas.composition import parse_chemistry
from trace.projections import Projections, sqlalchemy_url
from trace.rates_sql import Dialect, flattening
from trace.rates_sql_results import final_queries

__all__ = ["Figure", "Key", "duckdb_rates", "key", "sql_rates"]

Key = tuple[str, str, tuple[tuple[str, Any], ...]]
"""``(name, unit, sorted scope items)``: how a rate or total is found on both sides."""
_SYMBOLS: Final = ("Li", "Ni", "Co", "Mn", "Cu", "Al", "Pb")
_CONTENT: Final = frozenset({"Co", "Li", "Ni", "Pb"})
_NATIONAL: Final = "*"
_KINDS: Final = ("pack", "module", "cell")
_KG_PER_T: Final = 1000.0
_PARAM: Final = re.compile(r"(?<![:\w]):([a-z_]+)")
_TEMP: Final = re.compile(r"CREATE TEMP TABLE (\w+)")
_TABLES: Final = {
    "trace_actors": ("id", "role"),
    "trace_events": ("seq", "event_id", "type", "actor", "region", "event_time", "body_json"),
}
_DUCK_TYPES: Final = {"seq": "BIGINT"}
# A quarter of the machine: the copy lives on disk, but its window and hash operators hold
# their working sets in memory -- over 400 MB at 100,000 packs, and the rates of a million
# packs need ten times that.
_DUCK_MEMORY: Final = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 4 >> 20}MB"
_CSV_LINE_DEFAULT: Final = 2_097_152  # DuckDB's read_csv max_line_size default, bytes


@dataclass(frozen=True, slots=True)
class Figure:
    """One rate (``denominator`` set) or total (``denominator`` ``None``) as SQL computed it."""

    name: str
    unit: str
    scope: Mapping[str, Any]
    numerator: float
    denominator: float | None
    value: float | None


def key(name: str, unit: str, scope: Mapping[str, Any]) -> Key:
    """The comparison key of a rate or total.

    >>> key("collection_rate", "kg", {"period": "2025", "producer": None})
    ('collection_rate', 'kg', (('period', '2025'), ('producer', None)))
    """
    return name, unit, tuple(sorted(scope.items()))


@dataclass(frozen=True, slots=True)
class _Ask:
    """The query: periods (``years`` or one ``between``) and the filters."""

    year: int | None
    between: tuple[date, date] | None
    producer: str | None
    region: str | None
    chemistry: str | None
    kind: str

    @property
    def label(self) -> str | None:
        if self.between is not None:
            return f"{self.between[0].isoformat()}..{self.between[1].isoformat()}"
        return None if self.year is None else str(self.year)

    def scope(self, period: str, **extra: Any) -> dict[str, Any]:
        return {
            "producer": None,
            "region": self.region,
            "chemistry": self.chemistry,
            "period": period,
            **extra,
        }


def _grid(ask: _Ask) -> list[str]:
    """Statements making ``o_years`` (collection years) and ``o_periods`` (their labels)."""
    year = "CAST(substr(day, 1, 4) AS INTEGER)"
    if ask.between is not None:
        return [
            "CREATE TEMP TABLE o_years AS SELECT y FROM (SELECT 0 AS y) z WHERE 1 = 0",
            f"CREATE TEMP TABLE o_periods AS SELECT '{ask.label}' AS period",
        ]
    if ask.year is not None:
        years = f"CREATE TEMP TABLE o_years AS SELECT {int(ask.year)} AS y"
    else:
        years = (
            f"CREATE TEMP TABLE o_years AS WITH RECURSIVE yr(y) AS (SELECT MIN({year}) "
            f"FROM o_ev UNION ALL SELECT y + 1 FROM yr WHERE y < (SELECT MAX({year}) "
            "FROM o_ev)) SELECT y FROM yr WHERE y IS NOT NULL"
        )
    return [
        years,
        "CREATE TEMP TABLE o_periods AS SELECT CAST(y AS VARCHAR) AS period FROM o_years",
    ]


def _fragments(ask: _Ask) -> dict[str, str]:
    def only(**columns: str) -> str:
        wanted = {"region": ask.region, "chemistry": ask.chemistry}
        return "".join(f" AND {col} = :{name}" for name, col in columns.items() if wanted[name])

    if ask.between is not None:
        start, end = (d.isoformat() for d in ask.between)
        period = f"CASE WHEN {{day}} BETWEEN '{start}' AND '{end}' THEN '{ask.label}' END"
    elif ask.year is not None:
        period = f"CASE WHEN substr({{day}}, 1, 4) = '{ask.year}' THEN '{ask.year}' END"
    else:
        period = "substr({day}, 1, 4)"

    def producers(kind: str, *, automakers: bool) -> str:
        if ask.producer is not None:
            return "SELECT CAST(:producer AS VARCHAR) AS producer"
        autos = (
            " UNION SELECT automaker FROM o_phys WHERE kind = 'pack' AND automaker IS NOT NULL"
            if automakers and kind == "pack"
            else ""
        )
        return (
            f"SELECT maker AS producer FROM o_phys WHERE kind = '{kind}'{autos} "
            f"UNION SELECT '{_NATIONAL}'"
        )

    national = (
        ""
        if ask.region
        else f" UNION ALL SELECT period, '{_NATIONAL}', name, mass FROM l "
        "WHERE name IS NOT NULL AND period IS NOT NULL"
    )
    return {
        "period": period,
        "periods": "SELECT period FROM o_periods",
        "years": "SELECT y FROM o_years",
        "producers": producers(ask.kind, automakers=True),
        "pack_producers": producers("pack", automakers=True),
        "makers": producers("pack", automakers=False),
        "pf": only(region="region", chemistry="chemistry"),
        "op": only(region="x.region", chemistry="p.chemistry"),
        "content": only(region="p.c_region", chemistry="p.chemistry"),
        "packs": only(region="p.end_region", chemistry="p.chemistry"),
        "step": only(region="E.region"),
        "lot": only(region="region"),
        "national": national,
    }


def _producer(value: Any) -> str | None:
    return None if value == _NATIONAL else str(value)


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _collect(ask: _Ask, results: Mapping[str, Sequence[Sequence[Any]]]) -> dict[Key, Figure]:
    out: dict[Key, Figure] = {}

    def put(name: str, unit: str, sc: dict[str, Any], num: Any, den: Any, value: Any) -> None:
        figure = Figure(name, unit, sc, float(num), _f(den), _f(value))
        out[key(name, unit, sc)] = figure

    for producer, period, figure, n, kg, kwh in results.get("figures", ()):
        sc = ask.scope(str(period), producer=_producer(producer))
        for unit, amount in (("count", n), ("kg", kg), ("kWh", kwh)):
            put(figure, unit, sc, amount, None, None)
    for row in results.get("collection", ()):
        sc = ask.scope(str(row[1]), producer=_producer(row[0]))
        for i, (name, unit) in enumerate(
            (
                ("collection_rate", "count"),
                ("collection_rate", "kg"),
                ("collection_rate_eu", "count"),
                ("collection_rate_eu", "kg"),
            )
        ):
            put(name, unit, sc, *row[2 + 3 * i : 5 + 3 * i])
    for row in results.get("cascade", ()):
        sc = ask.scope(str(row[1]), producer=_producer(row[0]), kind=ask.kind)
        put("cascade_use_rate", "count", sc, *row[2:5])
        put("cascade_use_rate", "kg", sc, *row[5:8])
    for row in results.get("operators", ()):
        sc = ask.scope(str(row[1]), actor=str(row[0]), kind=ask.kind)
        put("cascade_use_rate_operator", "count", sc, *row[2:5])
        put("cascade_use_rate_operator", "kg", sc, *row[5:8])
    for name, query, width in (
        ("recycled_content", "content", 3),
        ("material_recovery_of_packs", "packs", 3),
    ):
        for row in results.get(query, ()):
            for i, element in enumerate(_SYMBOLS):
                if name == "recycled_content" and element not in _CONTENT:
                    continue
                sc = ask.scope(str(row[1]), producer=_producer(row[0]), element=element)
                put(name, "kg", sc, *row[2 + width * i : 2 + width * (i + 1)])
    for row in results.get("recyclers", ()):
        sc = ask.scope(str(row[1]), actor=str(row[0]))
        put("recycling_efficiency", "kg", sc, *row[2:5])
        for i, element in enumerate(_SYMBOLS):
            put("material_recovery", "kg", {**sc, "element": element}, *row[5 + 3 * i : 8 + 3 * i])
    for period, place, name, kg in results.get("scrap", ()):
        sc = {**ask.scope(str(period)), "region": _producer(place)}
        put(str(name), "t", sc, float(kg) / _KG_PER_T, None, None)
    return out


def _wanted(ask: _Ask) -> list[str]:
    names = ["figures", "cascade", "content", "packs"]
    if ask.between is None:
        names.append("collection")
    if ask.producer is None:
        names.append("operators")
        if ask.chemistry is None:
            names += ["recyclers", "scrap"]
    return names


def _run(
    execute: Callable[[str, dict[str, Any]], list[Sequence[Any]]],
    dialect: Dialect,
    ask: _Ask,
) -> dict[Key, Figure]:
    params = {
        "producer": ask.producer,
        "region": ask.region,
        "chemistry": ask.chemistry,
        "kind": ask.kind,
    }
    statements = [*flattening(dialect), *_grid(ask)]
    temps = [m.group(1) for s in statements for m in _TEMP.finditer(s)]
    for name in reversed(temps):
        execute(f"DROP TABLE IF EXISTS {name}", {})
    try:
        for statement in statements:
            execute(statement, {})
        queries = final_queries(dialect, _fragments(ask))
        results = {}
        for name in _wanted(ask):
            sql = queries[name]
            used = {p: params[p] for p in set(_PARAM.findall(sql))}
            results[name] = execute(sql, used)
    finally:
        for name in reversed(temps):
            execute(f"DROP TABLE IF EXISTS {name}", {})
    return _collect(ask, results)


def _ask(
    year: int | None,
    between: tuple[date, date] | None,
    producer: str | None,
    region: str | None,
    chemistry: str | None,
    kind: str,
) -> _Ask:
    if year is not None and between is not None:
        raise ValueError("give a year or a date range, not both")
    if kind not in _KINDS:
        raise ValueError(f"kind is one of {', '.join(_KINDS)}, not {kind!r}")
    chem = None if chemistry is None else parse_chemistry(chemistry).value
    return _Ask(year, between, producer, region, chem, kind)


def _engine(source: Engine | Projections | str) -> Engine:
    if isinstance(source, Engine):
        return source
    if isinstance(source, Projections):
        return source.engine
    return create_engine(sqlalchemy_url(source))


def sql_rates(
    source: Engine | Projections | str,
    *,
    year: int | None = None,
    between: tuple[date, date] | None = None,
    producer: str | None = None,
    region: str | None = None,
    chemistry: str | None = None,
    kind: str = "pack",
) -> dict[Key, Figure]:
    """Every rate and total, computed by SQL in the database that holds the projections.

    The filters mean what they mean for :func:`trace.rates.compute_rates`; ``between`` is
    an inclusive date range (CST) instead of calendar years.

    Examples
    --------
    >>> import math, os, tempfile
    >>> from trace.rates import compute_rates
    >>> from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate
    >>> folder = tempfile.TemporaryDirectory()
    >>> tracer = open_simulation_tracer(os.path.join(folder.name, "sim.db"), clock=SimClock())
    >>> _ = simulate(tracer, SimConfig.small(total_packs=8, seed=7))
    >>> figures = sql_rates(tracer.projections, year=2026)
    >>> rate = compute_rates(tracer, year=2026).rate("collection_rate", "kg", period="2026")
    >>> figure = figures[key(rate.name, rate.unit, rate.scope)]
    >>> math.isclose(figure.numerator, rate.numerator), math.isclose(figure.value, rate.value)
    (True, True)
    >>> tracer.close()
    >>> folder.cleanup()
    """
    engine = _engine(source)
    dialect = Dialect("postgresql" if engine.dialect.name == "postgresql" else "sqlite")
    with engine.connect() as conn:

        def execute(sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
            result = conn.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []

        if dialect.name == "postgresql":
            # The estimates of unanalysed temporary tables trip the JIT compiler, which then
            # spends seconds compiling queries that run in milliseconds.
            conn.execute(text("SET LOCAL jit = off"))
        try:
            return _run(execute, dialect, _ask(year, between, producer, region, chemistry, kind))
        finally:
            conn.rollback()


def _utc_text(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(sep=" ")
    return str(value)


def _load(con: duckdb.DuckDBPyConnection, engine: Engine, folder: str) -> None:
    """Copy the tables the oracle reads into DuckDB, through CSV files."""
    for table, columns in _TABLES.items():
        path = os.path.join(folder, f"{table}.csv")
        longest = 0  # characters of the longest line written
        with engine.connect() as conn, open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(
                text(f"SELECT {', '.join(columns)} FROM {table}")
            )
            for row in rows:
                values = [
                    _utc_text(v) if c == "event_time" else v
                    for c, v in zip(columns, row, strict=True)
                ]
                longest = max(longest, writer.writerow(values))  # characters written
        types = ", ".join(f"'{c}': '{_DUCK_TYPES.get(c, 'VARCHAR')}'" for c in columns)
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv('{path}', header = true, "
            f"columns = {{{types}}}, quote = '\"', escape = '\"', "
            f"max_line_size = {_line_limit(longest)})"
        )


def _line_limit(longest: int) -> int:
    """The CSV reader's line limit for lines of at most ``longest`` characters (as written,
    quotes doubled): up to four bytes a character, never under DuckDB's default.

    The reader's buffers are sixteen lines of this each, per thread: a limit far above the
    data (100 MB once) made them 1.6 GB apiece, and the copy of a million packs ran out of
    memory before its first query.

    >>> _line_limit(30_000)
    2097152
    >>> _line_limit(1_000_000)
    4001024
    """
    return max(_CSV_LINE_DEFAULT, 4 * longest + 1024)


def duckdb_rates(
    source: Engine | Projections | str,
    *,
    year: int | None = None,
    between: tuple[date, date] | None = None,
    producer: str | None = None,
    region: str | None = None,
    chemistry: str | None = None,
    kind: str = "pack",
) -> dict[Key, Figure]:
    """The same SQL on a DuckDB copy of ``trace_events`` and ``trace_actors`` (a temporary file).

    Examples
    --------
    >>> import os, tempfile
    >>> from trace.simulate import SimClock, SimConfig, open_simulation_tracer, simulate
    >>> folder = tempfile.TemporaryDirectory()
    >>> tracer = open_simulation_tracer(os.path.join(folder.name, "sim.db"), clock=SimClock())
    >>> _ = simulate(tracer, SimConfig.small(total_packs=8, seed=7))
    >>> duck, sql = duckdb_rates(tracer.projections), sql_rates(tracer.projections)
    >>> set(duck) == set(sql)
    True
    >>> tracer.close()
    >>> folder.cleanup()
    """
    engine = _engine(source)
    ask = _ask(year, between, producer, region, chemistry, kind)
    with tempfile.TemporaryDirectory(prefix="suyuan-oracle-") as folder:
        # On disk, with a bounded buffer pool: the copy of every event body at a million
        # packs is several times the memory the engine's own world takes.
        con = duckdb.connect(os.path.join(folder, "oracle.duckdb"))
        try:
            con.execute(f"SET memory_limit = '{_DUCK_MEMORY}'")
            # Loading keeps every row in order unless told not to, and at a million packs
            # that order buffer alone outgrows the limit; the oracle's queries never rely on it.
            con.execute("SET preserve_insertion_order = false")
            _load(con, engine, folder)

            def execute(sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
                con.execute(_PARAM.sub(r"$\1", sql), params or None)
                return [tuple(r) for r in con.fetchall()] if con.description else []

            return _run(execute, Dialect("duckdb"), ask)
        finally:
            con.close()
