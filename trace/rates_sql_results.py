"""The result queries of the SQL rates: numerators, denominators and values per rate family.

They read the ``o_*`` tables :func:`trace.rates_sql.flattening` makes, in the SQL SQLite,
PostgreSQL and DuckDB share (docs/metrics.md gives the definitions: China's EPR collection
form, EU 2023/1542 Art. 3(60), Art. 8 and Annex XII, the 14th FYP scrap totals). Values are
computed here too: NULL when the denominator is not positive, and NULL when a recovered to
input ratio is physically impossible.
"""

from __future__ import annotations

from trace.rates_sql import IMPOSSIBLE, Dialect, cols, kind_of, pos

__all__ = ["final_queries"]


def _ratio(num: str, den: str, *, cap: bool = False) -> str:
    """``num / den``, NULL when ``den`` is not positive (or, with ``cap``, when impossible)."""
    if cap:
        return f"CASE WHEN {den} > 0 AND {num} / {den} <= {IMPOSSIBLE} THEN {num} / {den} END"
    return f"CASE WHEN {den} > 0 THEN {num} / {den} END"


def _count_kg(d: Dialect, rows: str, match: str, names: tuple[str, str]) -> str:
    """Scalar subqueries: the count and the kg of ``rows`` matching ``match``."""
    n, kg = names
    return (
        f"(SELECT {d.num('COUNT(*)')} FROM {rows} WHERE {match}) AS {n}, "
        f"(SELECT COALESCE(SUM(kg), 0) FROM {rows} WHERE {match}) AS {kg}"
    )


def final_queries(d: Dialect, w: dict[str, str]) -> dict[str, str]:
    """The result queries, one per rate family; ``w`` holds the filter fragments.

    ``w`` keys: ``period`` (an expression of ``{day}`` giving the period label or NULL),
    ``periods`` and ``years`` (SELECTs of the labels and collection years), ``producers``,
    ``pack_producers``, ``makers`` (SELECTs of the grid's producers), and ``AND ...``
    fragments ``pf`` (producer facts), ``op`` (operators), ``content``, ``packs``, ``step``,
    ``lot``; ``national`` is empty or the national rows of the scrap totals.

    Examples
    --------
    >>> fragments = dict.fromkeys(("pf", "op", "content", "packs", "step", "lot", "national"), "")
    >>> fragments |= {"period": "substr({day}, 1, 4)", "periods": "SELECT period FROM o_periods",
    ...               "years": "SELECT y FROM o_years", "producers": "SELECT '*' AS producer"}
    >>> fragments |= {"pack_producers": fragments["producers"], "makers": fragments["producers"]}
    >>> sorted(final_queries(Dialect("sqlite"), fragments))
    ['cascade', 'collection', 'content', 'figures', 'operators', 'packs', 'recyclers', 'scrap']
    """
    per = w["period"].format
    pf = (
        f"SELECT producer, figure, {per(day='day')} AS period, "
        f"CAST(substr(day, 1, 4) AS INTEGER) AS y, code, kg, energy, kind FROM o_pf "
        f"WHERE 1 = 1 {w['pf']}"
    )
    grid = "SELECT pr.producer, pe.period FROM ({0}) pr CROSS JOIN ({1}) pe"
    figure_names = " UNION ALL ".join(
        f"SELECT '{f}' AS figure"
        for f in ("placed", "retired", "collected", "repurposed", "recycled")
    )
    placed = (
        "(SELECT COALESCE(SUM({col}), 0) FROM a WHERE a.producer = g.producer AND "
        "a.figure = 'placed' AND a.y BETWEEN g.y - {lo} AND g.y - {hi}) / 3 AS {name}"
    )
    collected = (
        "(SELECT COALESCE(SUM({col}), 0) FROM a WHERE a.producer = g.producer AND "
        "a.figure = 'collected' AND a.y = g.y) AS {name}"
    )
    kind_of_code = kind_of("x.code")
    op_rows = (
        "SELECT '{side}' AS side, x.operator, " + per(day="x.day") + " AS period, p.kg "
        "FROM {table} x JOIN o_phys p ON p.code = x.root WHERE "
        f"{kind_of_code} = :kind {w['op']}"
    )
    element_sums = cols("COALESCE(SUM(f.r_{e}), 0) AS r_{e}, COALESCE(SUM(f.h_{e}), 0) AS h_{e}")
    element_rates = cols("r_{e}, h_{e}, " + _ratio("r_{e}", "h_{e}", cap=True))
    content_rates = cols("r_{e}, h_{e}, " + _ratio("r_{e}", "h_{e}"))
    steps = "('dismantle', 'recycle', 'lot_split', 'lot_merge', 'lot_smelt')"
    reagents = d.num("E.b -> 'data' ->> 'reagents_kg'")
    return {
        "figures": (
            f"WITH f AS ({pf} AND kind = 'pack') SELECT g.producer, g.period, g.figure, "
            f"{d.num('COUNT(f.code)')}, COALESCE(SUM(f.kg), 0), COALESCE(SUM(f.energy), 0) "
            f"FROM (SELECT pr.producer, pe.period, fi.figure FROM ({w['pack_producers']}) pr "
            f"CROSS JOIN ({w['periods']}) pe CROSS JOIN ({figure_names}) fi) g "
            "LEFT JOIN f ON f.producer = g.producer AND f.period = g.period "
            "AND f.figure = g.figure GROUP BY g.producer, g.period, g.figure"
        ),
        "collection": (
            f"WITH f AS ({pf} AND kind = 'pack'), a AS (SELECT producer, figure, y, "
            f"{d.num('COUNT(*)')} AS n, SUM(kg) AS kg FROM f GROUP BY producer, figure, y), "
            f"g AS (SELECT pr.producer, ye.y FROM ({w['pack_producers']}) pr "
            f"CROSS JOIN ({w['years']}) ye), s AS (SELECT g.producer, g.y, "
            + collected.format(col="n", name="cn")
            + ", "
            + collected.format(col="kg", name="ckg")
            + ", "
            + placed.format(col="n", lo=3, hi=1, name="pn")
            + ", "
            + placed.format(col="kg", lo=3, hi=1, name="pkg")
            + ", "
            + placed.format(col="n", lo=2, hi=0, name="en")
            + ", "
            + placed.format(col="kg", lo=2, hi=0, name="ekg")
            + " FROM g) "
            "SELECT producer, y, cn, pn, "
            + _ratio("cn", "pn")
            + ", ckg, pkg, "
            + _ratio("ckg", "pkg")
            + ", cn, en, "
            + _ratio("cn", "en")
            + ", ckg, ekg, "
            + _ratio("ckg", "ekg")
            + " FROM s"
        ),
        "cascade": (
            f"WITH f AS ({pf} AND kind = :kind), "
            f"g AS ({grid.format(w['producers'], w['periods'])}), "
            "s AS (SELECT g.producer, g.period, "
            + _count_kg(
                d,
                "f",
                "f.producer = g.producer AND f.period = g.period AND f.figure = 'repurposed'",
                ("rn", "rkg"),
            )
            + ", "
            + _count_kg(
                d,
                "f",
                "f.producer = g.producer AND f.period = g.period AND f.figure = 'collected'",
                ("cn", "ckg"),
            )
            + " FROM g) SELECT producer, period, rn, cn, "
            + _ratio("rn", "cn")
            + ", rkg, ckg, "
            + _ratio("rkg", "ckg")
            + " FROM s"
        ),
        "operators": (
            "WITH r AS ("
            + op_rows.format(side="in", table="o_intake")
            + " UNION ALL "
            + op_rows.format(side="rep", table="o_rpop")
            + "), "
            "g AS (SELECT o.operator, pe.period FROM (SELECT operator FROM o_in_raw UNION "
            f"SELECT operator FROM o_rp_raw) o CROSS JOIN ({w['periods']}) pe), "
            "s AS (SELECT g.operator, g.period, "
            + _count_kg(
                d,
                "r",
                "r.operator = g.operator AND r.period = g.period AND r.side = 'rep'",
                ("rn", "rkg"),
            )
            + ", "
            + _count_kg(
                d,
                "r",
                "r.operator = g.operator AND r.period = g.period AND r.side = 'in'",
                ("cn", "ckg"),
            )
            + " FROM g) SELECT operator, period, rn, cn, "
            + _ratio("rn", "cn")
            + ", rkg, ckg, "
            + _ratio("rkg", "ckg")
            + " FROM s"
        ),
        "content": (
            "WITH b AS (SELECT t.pack, "
            + cols("SUM(t.kg * l.{e} / l.mass * COALESCE(c.pcs, 0)) AS {e}")
            + " FROM o_take t JOIN o_lot l ON l.lot = t.lot LEFT JOIN o_pcs c ON c.lot = t.lot "
            f"GROUP BY t.pack), f AS (SELECT o.producer, {per(day='p.c_day')} AS period, "
            + cols("COALESCE(b.{e}, 0) AS r_{e}, p.{e} AS h_{e}")
            + " FROM o_phys p JOIN o_own o ON o.code = p.code AND (o.producer = p.maker OR "
            "o.producer = '*') LEFT JOIN b ON b.pack = p.code WHERE p.kind = 'pack' AND "
            f"p.known = 1 {w['content']}), s AS (SELECT g.producer, g.period, {element_sums} "
            f"FROM ({grid.format(w['makers'], w['periods'])}) g LEFT JOIN f "
            "ON f.producer = g.producer AND f.period = g.period GROUP BY g.producer, g.period) "
            f"SELECT producer, period, {content_rates} FROM s"
        ),
        "packs": (
            f"WITH f AS (SELECT o.producer, {per(day='p.end_day')} AS period, "
            + cols("COALESCE(c.{e}, 0) AS r_{e}, p.{e} AS h_{e}")
            + " FROM o_phys p JOIN o_own o ON o.code = p.code LEFT JOIN o_credit c "
            "ON c.root = p.code WHERE p.kind = 'pack' AND p.end_seq IS NOT NULL "
            f"{w['packs']}), s AS (SELECT g.producer, g.period, {element_sums} "
            f"FROM ({grid.format(w['pack_producers'], w['periods'])}) g LEFT JOIN f "
            "ON f.producer = g.producer AND f.period = g.period GROUP BY g.producer, g.period) "
            f"SELECT producer, period, {element_rates} FROM s"
        ),
        "recyclers": (
            f"WITH st AS (SELECT E.seq, E.actor, {per(day='E.day')} AS period, "
            f"COALESCE({reagents}, 0) AS reagents FROM o_ev E WHERE E.type IN {steps} "
            f"AND E.role = 'recycler' {w['step']}), ia AS (SELECT v.seq, SUM(v.kg) AS kg, "
            + cols("SUM(v.{e}) AS {e}")
            + " FROM o_svec v LEFT JOIN o_lot l ON l.lot = v.lot WHERE v.root IS NOT NULL OR "
            "l.lot IS NULL OR NOT (l.actor = v.actor AND l.ctype <> 'lot_create') "
            "GROUP BY v.seq), oa AS (SELECT o.seq, SUM(o.mass) AS kg, "
            + cols("SUM(o.{e}) AS {e}")
            + " FROM o_lot o WHERE o.material <> 'black_mass' AND NOT EXISTS (SELECT 1 "
            "FROM o_sin u WHERE u.code = o.lot AND u.actor = o.actor) GROUP BY o.seq), "
            "s AS (SELECT st.actor, st.period, SUM(st.reagents) AS reagents, "
            "SUM(COALESCE(ia.kg, 0)) AS in_kg, SUM(COALESCE(oa.kg, 0)) AS out_kg, "
            + cols("SUM(COALESCE(oa.{e}, 0)) AS r_{e}, SUM(COALESCE(ia.{e}, 0)) AS h_{e}")
            + " FROM st LEFT JOIN ia ON ia.seq = st.seq LEFT JOIN oa ON oa.seq = st.seq "
            "WHERE st.period IS NOT NULL GROUP BY st.actor, st.period), "
            f"e AS (SELECT s.*, {pos('out_kg - reagents')} AS num FROM s) "
            "SELECT actor, period, num, in_kg, "
            + _ratio("num", "in_kg", cap=True)
            + f", {element_rates} FROM e"
        ),
        "scrap": (
            f"WITH l AS (SELECT {per(day='day')} AS period, region, mass, CASE "
            "WHEN material = 'steel_scrap' AND ctype IN ('dismantle', 'recycle', 'lot_create') "
            "THEN 'scrap_steel' WHEN material IN ('copper_scrap', 'aluminium_scrap', "
            "'lead_scrap') AND ctype IN ('dismantle', 'recycle', 'lot_create') THEN "
            "'scrap_nonferrous' WHEN ctype = 'lot_smelt' AND material = 'copper_scrap' THEN "
            "'recycled_copper' WHEN ctype = 'lot_smelt' AND material = 'aluminium_scrap' THEN "
            "'recycled_aluminium' WHEN ctype = 'lot_smelt' AND material IN ('lead_scrap', "
            f"'lead') THEN 'recycled_lead' END AS name FROM o_lot WHERE 1 = 1 {w['lot']}), "
            "k AS (SELECT period, region AS place, name, mass FROM l WHERE name IS NOT NULL "
            f"AND period IS NOT NULL{w['national']}) SELECT g.period, g.place, n.name, "
            "(SELECT COALESCE(SUM(k.mass), 0) FROM k WHERE k.period = g.period AND "
            "k.place = g.place AND k.name = n.name) FROM (SELECT DISTINCT period, place FROM k) "
            "g CROSS JOIN (SELECT 'scrap_steel' AS name UNION ALL SELECT 'scrap_nonferrous' "
            "UNION ALL SELECT 'recycled_copper' UNION ALL SELECT 'recycled_aluminium' "
            "UNION ALL SELECT 'recycled_lead') n"
        ),
    }
