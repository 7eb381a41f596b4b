"""The rates as SQL over the projection tables: the text :mod:`trace.oracle` runs.

Written apart from the Python engine (:mod:`trace.rates`) from the same definitions
(docs/metrics.md), in the SQL that SQLite, PostgreSQL and DuckDB share: window functions,
recursive common table expressions and ``->``/``->>`` on the JSON event bodies. Only a few
expressions differ by dialect (:class:`Dialect`): the JSON type, array expansion, the China
Standard Time day of an event, the float type. The flattening step makes temporary tables
``o_*``; the result queries (:mod:`trace.rates_sql_results`) read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["ELEMENTS", "IMPOSSIBLE", "Dialect", "cols", "first", "flattening", "kind_of", "pos"]

ELEMENTS: Final = ("li", "ni", "co", "mn", "cu", "al", "pb")
_SYMBOLS: Final = ("Li", "Ni", "Co", "Mn", "Cu", "Al", "Pb")
_TYPES: Final = [
    "accept",
    "collect",
    "commission",
    "correction",
    "dismantle",
    "install",
    "lot_create",
    "lot_merge",
    "lot_smelt",
    "lot_split",
    "recycle",
    "repurpose",
    "retire",
]
IMPOSSIBLE: Final = "1.000000001"  # above this a recovered/input ratio is an anomaly
_INDEXES: Final[Mapping[str, tuple[str, ...]]] = {
    "o_ev": ("type",),
    "o_comm": ("code",),
    "o_fix": ("code",),
    "o_rep": ("code",),
    "o_root": ("code",),
    "o_item": ("code",),
    "o_col": ("root",),
    "o_inst": ("code",),
    "o_retall": ("code",),
    "o_ret": ("code",),
    "o_rp1": ("root",),
    "o_end": ("root",),
    "o_phys": ("code",),
    "o_own": ("code",),
    "o_lot": ("lot", "seq"),
    "o_take": ("lot", "pack"),
    "o_sin": ("code, actor", "seq"),
    "o_parts": ("seq",),
    "o_partsum": ("seq",),
    "o_sink": ("seq",),
    "o_svec": ("seq", "lot"),
    "o_stot": ("seq",),
    "o_edge": ("child",),
    "o_attr": ("lot",),
    "o_credit": ("root",),
    "o_pcs": ("lot",),
}
"""What each temporary table is looked up by."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The expressions that differ between SQLite, PostgreSQL and DuckDB.

    Examples
    --------
    >>> Dialect("postgresql").num("x"), Dialect("sqlite").json("body_json")
    ('CAST(x AS DOUBLE PRECISION)', 'body_json')
    >>> Dialect("duckdb").each("x", "items", text=True)
    ("json_each(E.b, '$.data.items') AS x", "(x.value ->> '$')")
    """

    name: str

    def json(self, column: str) -> str:
        return {"sqlite": column, "postgresql": f"CAST({column} AS jsonb)"}.get(
            self.name, f"CAST({column} AS JSON)"
        )

    def day(self, column: str) -> str:
        """The event's calendar day in China Standard Time (UTC+8), as ``YYYY-MM-DD``."""
        if self.name == "sqlite":
            return f"strftime('%Y-%m-%d', {column}, '+8 hours')"
        if self.name == "postgresql":
            return f"to_char(({column} AT TIME ZONE 'UTC') + INTERVAL '8 hours', 'YYYY-MM-DD')"
        return f"strftime(CAST({column} AS TIMESTAMP) + INTERVAL 8 HOUR, '%Y-%m-%d')"

    def indexes(self, table: str, columns: Sequence[str]) -> list[str]:
        """Indexes for a temporary table's look-ups, and fresh planner statistics.

        SQLite and PostgreSQL join through nested loops where an index allows; DuckDB
        hash-joins and needs none.
        """
        if self.name == "duckdb":
            return []
        made = [f"CREATE INDEX {table}_{c.replace(', ', '_')} ON {table} ({c})" for c in columns]
        return [*made, f"ANALYZE {table}"] if self.name == "postgresql" else made

    def num(self, expr: str) -> str:
        kind = {"sqlite": "REAL", "postgresql": "DOUBLE PRECISION"}.get(self.name, "DOUBLE")
        return f"CAST({expr} AS {kind})"

    def each(self, alias: str, field: str, *, text: bool = False) -> tuple[str, str]:
        """A FROM item expanding ``b.data.<field>`` and the expression of one element."""
        if self.name == "postgresql":
            fn = "jsonb_array_elements_text" if text else "jsonb_array_elements"
            return f"{fn}(E.b -> 'data' -> '{field}') AS {alias}(value)", f"{alias}.value"
        source = f"json_each(E.b, '$.data.{field}') AS {alias}"
        if text and self.name == "duckdb":
            return source, f"({alias}.value ->> '$')"
        return source, f"{alias}.value"


def first(partition: str, order: str) -> str:
    return f"ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {order}) AS rn"


def kind_of(code: str) -> str:
    """The item kind a GB/T 34014 code names by its 4th character."""
    return f"CASE substr({code}, 4, 1) WHEN 'P' THEN 'pack' WHEN 'M' THEN 'module' ELSE 'cell' END"


def pos(expr: str) -> str:
    return f"CASE WHEN ({expr}) > 0 THEN ({expr}) ELSE 0 END"


def cols(template: str, sep: str = ", ") -> str:
    """``template`` once per element, ``{e}`` the column name and ``{s}`` the symbol."""
    return sep.join(template.format(e=e, s=s) for e, s in zip(ELEMENTS, _SYMBOLS, strict=True))


def _lots(d: Dialect) -> str:
    """Every lot a transformation or lot_create made, with its element kg as created."""
    content = cols(d.num("L.lot -> 'content_kg' ->> '{s}'") + " AS {e}")
    mass = d.num("L.lot ->> 'mass_kg'")
    parts = []
    for kinds, field in (
        ("'dismantle', 'recycle', 'lot_smelt'", "outputs"),
        ("'lot_split'", "parts"),
    ):
        src, val = d.each("x", field)
        parts.append(
            f"SELECT E.seq, E.type, E.actor, E.region, E.day, {val} -> 'lot' AS lot "
            f"FROM o_ev E, {src} WHERE E.type IN ({kinds})"
        )
    parts.append(
        "SELECT E.seq, E.type, E.actor, E.region, E.day, E.b -> 'data' -> 'into' -> 'lot' "
        "FROM o_ev E WHERE E.type = 'lot_merge'"
    )
    parts.append(
        "SELECT E.seq, E.type, E.actor, E.region, E.day, E.b -> 'data' -> 'lot' "
        "FROM o_ev E WHERE E.type = 'lot_create'"
    )
    union = " UNION ALL ".join(parts)
    return (
        "CREATE TEMP TABLE o_lot AS SELECT L.seq, L.type AS ctype, L.actor, L.region, L.day, "
        "L.lot ->> 'id' AS lot, L.lot ->> 'material' AS material, "
        f"{mass} AS mass, {content} "
        f"FROM ({union}) L"
    )


def _step_inputs(d: Dialect) -> str:
    """Inputs of every transformation: code, declared (or remaining) kg, battery or lot."""
    rin, rval = d.each("x", "inputs")
    lin, lval = d.each("x", "lots", text=True)
    kg = d.num("E.b -> 'data' ->> 'mass_kg'")
    rkg = d.num(rval + " ->> 'mass_kg'")
    return (
        "CREATE TEMP TABLE o_sin AS "
        f"SELECT E.seq, E.type, E.actor, E.b -> 'data' ->> 'item' AS code, {kg} AS kg "
        "FROM o_ev E WHERE E.type = 'dismantle' UNION ALL "
        f"SELECT E.seq, E.type, E.actor, {rval} ->> 'item', {rkg} "
        f"FROM o_ev E, {rin} WHERE E.type IN ('recycle', 'lot_smelt') UNION ALL "
        "SELECT E.seq, E.type, E.actor, E.b -> 'data' ->> 'lot', NULL "
        "FROM o_ev E WHERE E.type = 'lot_split' UNION ALL "
        f"SELECT E.seq, E.type, E.actor, {lval}, NULL FROM o_ev E, {lin} "
        "WHERE E.type = 'lot_merge'"
    )


def _items(d: Dialect) -> list[str]:
    """Commissioned items with corrections applied, re-codes, and each battery's firsts."""
    comp, fix = "E.b -> 'data' -> 'composition'", "E.b -> 'data' -> 'fields' -> 'composition'"
    data_kg = d.num("E.b -> 'data' ->> 'mass_kg'")
    comp_kg, comp_kwh = d.num(comp + " ->> 'mass_kg'"), d.num(comp + " ->> 'energy_kwh'")
    fix_kg, fix_kwh = (
        d.num("E.b -> 'data' -> 'fields' ->> 'mass_kg'"),
        d.num(fix + " ->> 'energy_kwh'"),
    )
    comp_e = cols(d.num(comp + " -> 'content_kg' ->> '{s}'") + " AS {e}")
    fix_e = cols(d.num(fix + " -> 'content_kg' ->> '{s}'") + " AS {e}")
    rin, rval = d.each("x", "inputs")
    latest_mass = (
        "(SELECT f.code, f.corrects, f.mass_kg, "
        + first("f.code, f.corrects", "f.seq DESC")
        + " FROM o_fix f WHERE f.mass_kg IS NOT NULL)"
    )
    return [
        "CREATE TEMP TABLE o_comm AS SELECT E.seq, E.eid, E.actor AS maker, E.region, E.day, "
        f"E.b -> 'data' ->> 'item' AS code, {data_kg} AS mass_kg, {comp_kg} AS comp_kg, "
        f"{comp} ->> 'chemistry' AS chemistry, {comp_kwh} AS energy, {comp_e} "
        "FROM o_ev E WHERE E.type = 'commission'",
        "CREATE TEMP TABLE o_fix AS SELECT E.seq, E.b -> 'data' ->> 'item' AS code, "
        f"E.b -> 'data' ->> 'corrects' AS corrects, {fix_kg} AS mass_kg, "
        f"{fix} ->> 'chemistry' AS chemistry, {fix_kwh} AS energy, {fix_e} "
        "FROM o_ev E WHERE E.type = 'correction'",
        "CREATE TEMP TABLE o_rep AS SELECT E.seq, E.actor, E.region, E.day, "
        "E.b -> 'data' ->> 'item' AS code, E.b -> 'data' ->> 'new_code' AS new_code "
        "FROM o_ev E WHERE E.type = 'repurpose'",
        "CREATE TEMP TABLE o_root AS WITH RECURSIVE r(code, root) AS ("
        "SELECT code, code FROM o_comm UNION ALL "
        "SELECT p.new_code, r.root FROM o_rep p JOIN r ON p.code = r.code) "
        "SELECT code, root FROM r",
        # A mass correction fixes the event it names; a composition one, the battery.
        "CREATE TEMP TABLE o_item AS SELECT c.code, c.eid, c.maker, c.seq AS c_seq, "
        f"c.region AS c_region, c.day AS c_day, {kind_of('c.code')} AS kind, "
        "COALESCE(fm.mass_kg, c.mass_kg, c.comp_kg, 0) AS mass, "
        "CASE WHEN fc.root IS NOT NULL THEN fc.chemistry ELSE c.chemistry END AS chemistry, "
        "CASE WHEN fc.root IS NOT NULL THEN fc.energy ELSE COALESCE(c.energy, 0) END "
        "AS energy, CASE WHEN fc.root IS NOT NULL OR c.chemistry IS NOT NULL THEN 1 "
        "ELSE 0 END AS known, "
        + cols(
            "CASE WHEN fc.root IS NOT NULL THEN COALESCE(fc.{e}, 0) "
            "WHEN c.chemistry IS NOT NULL THEN COALESCE(c.{e}, 0) ELSE 0 END AS {e}"
        )
        + f" FROM o_comm c LEFT JOIN {latest_mass} fm ON fm.rn = 1 "
        "AND fm.corrects = c.eid AND fm.code = c.code "
        "LEFT JOIN (SELECT r.root, f.chemistry, f.energy, "
        + cols("f.{e}")
        + ", "
        + first("r.root", "f.seq DESC")
        + " FROM o_fix f JOIN o_root r ON r.code = f.code WHERE f.chemistry IS NOT NULL) fc "
        "ON fc.rn = 1 AND fc.root = c.code",
        "CREATE TEMP TABLE o_col AS SELECT * FROM (SELECT r.root, E.seq, E.eid, E.actor, "
        f"E.region, E.day, E.b -> 'data' ->> 'item' AS code, {data_kg} AS mass_kg, "
        + first("r.root", "E.seq")
        + " FROM o_ev E JOIN o_root r ON r.code = E.b -> 'data' ->> 'item' "
        "WHERE E.type = 'collect') x WHERE rn = 1",
        "CREATE TEMP TABLE o_inst AS SELECT * FROM (SELECT E.b -> 'data' ->> 'item' AS code, "
        "E.actor, E.seq, E.region, E.day, "
        + first("E.b -> 'data' ->> 'item'", "E.seq")
        + " FROM o_ev E WHERE E.type = 'install' AND E.role = 'automaker') x WHERE rn = 1",
        "CREATE TEMP TABLE o_retall AS SELECT E.b -> 'data' ->> 'item' AS code, E.seq, "
        "E.region, E.day FROM o_ev E WHERE E.type = 'retire'",
        "CREATE TEMP TABLE o_ret AS SELECT * FROM (SELECT code, seq, region, day, "
        + first("code", "seq")
        + " FROM o_retall) x WHERE rn = 1",
        "CREATE TEMP TABLE o_rp1 AS SELECT * FROM (SELECT r.root, p.seq, p.region, p.day, "
        + first("r.root", "p.seq")
        + " FROM o_rep p JOIN o_root r ON r.code = p.code) x WHERE rn = 1",
        "CREATE TEMP TABLE o_end AS SELECT * FROM (SELECT r.root, s.seq, s.region, s.day, "
        + first("r.root", "s.seq")
        + " FROM (SELECT E.seq, E.region, E.day, E.b -> 'data' ->> 'item' AS code FROM o_ev E "
        "WHERE E.type = 'dismantle' AND E.role = 'recycler' UNION ALL "
        f"SELECT E.seq, E.region, E.day, {rval} ->> 'item' FROM o_ev E, {rin} "
        "WHERE E.type = 'recycle' AND E.role = 'recycler') s "
        "JOIN o_root r ON r.code = s.code) x WHERE rn = 1",
        "CREATE TEMP TABLE o_phys AS SELECT i.*, COALESCE(cf.mass_kg, col.mass_kg, i.mass) "
        "AS kg, n.actor AS automaker, n.seq AS i_seq, n.region AS i_region, n.day AS i_day, "
        "col.seq AS col_seq, col.region AS col_region, col.day AS col_day, "
        "t.seq AS ret_seq, t.region AS ret_region, t.day AS ret_day, "
        "p.seq AS rep_seq, p.region AS rep_region, p.day AS rep_day, "
        "en.seq AS end_seq, en.region AS end_region, en.day AS end_day "
        "FROM o_item i LEFT JOIN o_inst n ON n.code = i.code "
        f"LEFT JOIN o_col col ON col.root = i.code LEFT JOIN {latest_mass} cf ON cf.rn = 1 "
        "AND cf.corrects = col.eid AND cf.code = col.code "
        "LEFT JOIN o_ret t ON t.code = i.code LEFT JOIN o_rp1 p ON p.root = i.code "
        "LEFT JOIN o_end en ON en.root = i.code",
        "CREATE TEMP TABLE o_own AS SELECT code, maker AS producer FROM o_phys UNION ALL "
        "SELECT code, automaker FROM o_phys WHERE automaker IS NOT NULL AND automaker <> maker "
        "UNION ALL SELECT code, '*' FROM o_phys",
    ]


def _producer_facts(d: Dialect) -> list[str]:
    """One row per (producer, figure, battery); cascade operators' intake and re-codes."""
    items_src, items_val = d.each("x", "items", text=True)
    figures = "".join(
        f" UNION ALL SELECT o.producer, '{fig}', p.{c}_seq, p.{c}_day, p.{c}_region, "
        "p.code, p.kg, p.energy, p.chemistry, p.kind FROM o_phys p "
        f"JOIN o_own o ON o.code = p.code WHERE p.{c}_seq IS NOT NULL"
        for fig, c in (("retired", "ret"), ("collected", "col"), ("repurposed", "rep"),
                       ("recycled", "end"))
    )  # fmt: skip
    firsts = [
        f"CREATE TEMP TABLE {name} AS SELECT * FROM (SELECT w.operator, w.seq, w.region, "
        "w.day, w.code, r.root, "
        + first("w.operator, r.root", "w.seq")
        + f" FROM {raw} w JOIN o_root r ON r.code = w.code) x WHERE rn = 1"
        for name, raw in (("o_intake", "o_in_raw"), ("o_rpop", "o_rp_raw"))
    ]
    return [
        "CREATE TEMP TABLE o_pf AS "
        "SELECT maker AS producer, 'placed' AS figure, c_seq AS seq, c_day AS day, "
        "c_region AS region, code, mass AS kg, energy, chemistry, kind FROM o_phys UNION ALL "
        "SELECT '*', 'placed', c_seq, c_day, c_region, code, mass, energy, chemistry, kind "
        "FROM o_phys UNION ALL "
        "SELECT automaker, 'placed', i_seq, i_day, i_region, code, mass, energy, chemistry, "
        "kind FROM o_phys WHERE automaker IS NOT NULL AND automaker <> maker" + figures,
        "CREATE TEMP TABLE o_in_raw AS "
        f"SELECT E.actor AS operator, E.seq, E.region, E.day, {items_val} AS code "
        f"FROM o_ev E, {items_src} WHERE E.type = 'accept' AND E.role = 'cascade_operator' "
        f"AND EXISTS (SELECT 1 FROM o_retall t WHERE t.code = {items_val} AND t.seq < E.seq) "
        "UNION ALL SELECT E.actor, E.seq, E.region, E.day, E.b -> 'data' ->> 'item' "
        "FROM o_ev E WHERE E.type = 'collect' AND E.role = 'cascade_operator'",
        "CREATE TEMP TABLE o_rp_raw AS SELECT actor AS operator, seq, region, day, code FROM o_rep",
        *firsts,
    ]


def _flows(d: Dialect) -> list[str]:
    """Lots, transformation inputs with element kg, post-consumer shares and credits."""
    parts_src, parts_val = d.each("x", "parts", text=True)
    mats_src, mats_val = d.each("x", "materials")
    take_kg = d.num(mats_val + " ->> 'mass_kg'")
    share = "CASE WHEN t.{e} > 0 THEN i.{e} / t.{e} ELSE 0 END"
    steps = "o_svec i JOIN o_stot t ON t.seq = i.seq JOIN o_lot o ON o.seq = i.seq"
    lot_steps = (
        "a JOIN o_svec i ON i.lot = a.lot JOIN o_stot t ON t.seq = i.seq "
        "JOIN o_lot o ON o.seq = i.seq"
    )
    return [
        _lots(d),
        f"CREATE TEMP TABLE o_take AS SELECT E.seq, E.b -> 'data' ->> 'item' AS pack, "
        f"{mats_val} ->> 'item' AS lot, {take_kg} AS kg "
        f"FROM o_ev E, {mats_src} WHERE E.type = 'commission'",
        _step_inputs(d),
        "CREATE TEMP TABLE o_parts AS SELECT p.seq, r.root FROM (SELECT E.seq, "
        f"{parts_val} AS code FROM o_ev E, {parts_src} WHERE E.type = 'dismantle') p "
        "JOIN o_root r ON r.code = p.code",
        "CREATE TEMP TABLE o_partsum AS SELECT s.seq, SUM(p.mass) AS mass, "
        + cols("SUM(p.{e}) AS {e}")
        + " FROM o_parts s JOIN o_phys p ON p.code = s.root GROUP BY s.seq",
        # A lot split or merged goes in whole: as created, less what commissions took before.
        "CREATE TEMP TABLE o_sink AS SELECT s.seq, s.type, s.actor, s.code, "
        f"COALESCE(s.kg, {pos('COALESCE(l.mass, 0) - COALESCE(tk.kg, 0)')}) AS kg "
        "FROM o_sin s LEFT JOIN o_lot l ON l.lot = s.code LEFT JOIN (SELECT u.seq, u.code, "
        "SUM(t.kg) AS kg FROM o_sin u JOIN o_take t ON t.lot = u.code AND t.seq < u.seq "
        "GROUP BY u.seq, u.code) tk ON tk.seq = s.seq AND tk.code = s.code",
        # Element kg of each input: a battery less its coded parts, a lot by its shares.
        "CREATE TEMP TABLE o_svec AS SELECT s.seq, s.type, s.actor, s.code, r.root, "
        "CASE WHEN r.root IS NULL THEN s.code END AS lot, s.kg AS w_kg, "
        f"CASE WHEN r.root IS NOT NULL THEN {pos('s.kg - COALESCE(ps.mass, 0)')} "
        "ELSE s.kg END AS kg, "
        + cols(
            "CASE WHEN r.root IS NOT NULL THEN "
            + pos("COALESCE(p.{e}, 0) - COALESCE(ps.{e}, 0)")
            + " WHEN l.lot IS NOT NULL THEN s.kg * l.{e} / l.mass ELSE 0 END AS {e}"
        )
        + " FROM o_sink s LEFT JOIN o_root r ON r.code = s.code "
        "LEFT JOIN o_phys p ON p.code = r.root LEFT JOIN o_partsum ps ON ps.seq = s.seq "
        "LEFT JOIN o_lot l ON l.lot = s.code",
        "CREATE TEMP TABLE o_stot AS SELECT seq, SUM(w_kg) AS w_kg, "
        + cols("SUM({e}) AS {e}")
        + " FROM o_svec GROUP BY seq",
        "CREATE TEMP TABLE o_edge AS SELECT o.lot AS child, i.code AS parent, "
        "CASE WHEN t.w_kg > 0 THEN i.w_kg / t.w_kg ELSE 0 END AS w, "
        "CASE WHEN i.root IS NOT NULL THEN 1 ELSE 0 END AS leaf FROM " + steps,
        "CREATE TEMP TABLE o_pcs AS WITH RECURSIVE p(lot, node, w, leaf) AS ("
        "SELECT child, parent, w, leaf FROM o_edge WHERE child IN (SELECT lot FROM o_take) "
        "UNION ALL SELECT p.lot, e.parent, p.w * e.w, e.leaf FROM p "
        "JOIN o_edge e ON e.child = p.node WHERE p.leaf = 0) "
        "SELECT lot, SUM(CASE WHEN leaf = 1 THEN w ELSE 0 END) AS pcs FROM p GROUP BY lot",
        "CREATE TEMP TABLE o_attr AS WITH RECURSIVE a(lot, root, "
        + cols("f_{e}")
        + ") AS (SELECT o.lot, i.root, "
        + cols(share)
        + f" FROM {steps} AND o.material = 'black_mass' WHERE i.root IS NOT NULL "
        "UNION ALL SELECT o.lot, a.root, "
        + cols("a.f_{e} * " + share)
        + f" FROM {lot_steps} AND o.material = 'black_mass') "
        "SELECT * FROM a",
        "CREATE TEMP TABLE o_credit AS SELECT root, "
        + cols("SUM({e}) AS {e}")
        + " FROM (SELECT i.root, "
        + cols("o.{e} * " + share + " AS {e}")
        + f" FROM {steps} AND o.material <> 'black_mass' WHERE i.root IS NOT NULL "
        "UNION ALL SELECT a.root, "
        + cols("o.{e} * " + share + " * a.f_{e}")
        + f" FROM o_attr {lot_steps} AND o.material <> 'black_mass') c "
        "GROUP BY root",
    ]


def flattening(d: Dialect) -> list[str]:
    """Statements that flatten the event bodies into ``o_*`` temporary tables.

    >>> statements = flattening(Dialect("sqlite"))
    >>> statements[0].split(" AS ")[0], len(statements)
    ('CREATE TEMP TABLE o_ev', 61)
    """
    types = ", ".join(f"'{t}'" for t in _TYPES)
    events = (
        "CREATE TEMP TABLE o_ev AS SELECT e.seq, e.event_id AS eid, e.type, e.actor, "
        f"COALESCE(a.role, '') AS role, e.region, {d.day('e.event_time')} AS day, "
        f"{d.json('e.body_json')} AS b FROM trace_events e "
        f"LEFT JOIN trace_actors a ON a.id = e.actor WHERE e.type IN ({types})"
    )
    out = []
    for statement in (events, *_items(d), *_producer_facts(d), *_flows(d)):
        out.append(statement)
        table = statement.split()[3]  # CREATE TEMP TABLE <name> AS ...
        out += d.indexes(table, _INDEXES.get(table, ()))
    return out
