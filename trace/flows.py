"""Flows for Sankey diagrams: packs, kWh and kg between lifecycle stages, or between actors.

Stage flows follow the moves the lifecycle graph records (:class:`~trace.graph.Move`). Each
event type moves items thus; stages only advance, so a diagram has no cycles:

=================== ==============================================================
commission          the item enters production (no flow); with material lots, each
                    traced lot's stage -> new_production, the kg taken
install             production -> use
retire              -> retirement (from production or use)
collect             -> collection
repurpose           the old code -> cascade_use; the new code starts there
dismantle           -> recycling; freed parts and output lots start there
recycle, lot_smelt  battery inputs -> recycling; when an input is at recycling, each
                    output lot recycling -> material_recovery, the kg made
lot_split, _merge   outputs take their inputs' latest stage (no flow)
disassemble         freed parts wait in collection (cascade operator) or production
lot_create          material from outside the traced flow: no stage, no flows
=================== ==============================================================

A battery in its second life stays in cascade_use when retired and collected again.
Battery flows count packs (items of kind pack), kWh and the item's recorded mass in kg;
material flows count kg only. Filters: ``region`` (a GB/T 2260 code; its province must be
the event's or the acting organisation's), ``start`` <= event time < ``end`` (a date is
midnight UTC) and ``producer`` (who made the item; for material taken into a new product,
that product's maker). kWh and kg are rounded to the Wh and the gram.

:func:`flows_sql` computes the same stage flows with SQL over the projection tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Final, Literal

from sqlalchemy import Engine, text

from schemas.actors import Role
from trace.graph import ACTOR, ITEM, LifecycleGraph, Stage
from trace.state import ItemKind

__all__ = ["MEASURES", "Flows", "Link", "actor_flows", "flows_sql", "stage_flows"]

MEASURES: Final = ("packs", "kwh", "kg")
_DECIMALS: Final = 3  # kWh to the Wh, kg to the gram
_PROVINCE_DIGITS: Final = 2  # GB/T 2260: the first two digits name the province

Moment = datetime | date


@dataclass(frozen=True, slots=True)
class Link:
    """A flow from one node of the diagram to another."""

    source: str
    target: str
    packs: int
    kwh: float
    kg: float


@dataclass(frozen=True, slots=True)
class Flows:
    """Nodes (in stage or role order) and the links between them.

    Examples
    --------
    >>> flows = Flows(["use", "retirement"], [Link("use", "retirement", 2, 120.0, 600.0)])
    >>> flows.to_json(measure="packs")
    '{"nodes": [{"name": "use"}, {"name": "retirement"}], "links": [{"source": 0, "target": 1, "value": 2, "packs": 2, "kwh": 120.0, "kg": 600.0}]}'
    """

    nodes: list[str]
    links: list[Link]

    def to_dict(self, *, measure: str = "kg") -> dict[str, Any]:
        """D3-sankey's shape (``nodes`` by name, ``links`` by node index, sized by ``value``).

        For Plotly, ``node.label`` is the names and ``link.source``/``target``/``value``
        are the links' fields as lists.
        """
        if measure not in MEASURES:
            raise ValueError(f"measure must be one of {', '.join(MEASURES)}, not {measure!r}")
        index = {name: i for i, name in enumerate(self.nodes)}
        links = [
            {
                "source": index[link.source],
                "target": index[link.target],
                "value": getattr(link, measure),
                "packs": link.packs,
                "kwh": link.kwh,
                "kg": link.kg,
            }
            for link in self.links
        ]
        return {"nodes": [{"name": name} for name in self.nodes], "links": links}

    def to_json(self, *, measure: str = "kg") -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(measure=measure), ensure_ascii=False)


_Totals = dict[tuple[str, str], list[float]]


def _flows(totals: _Totals, order: Callable[[str], Any]) -> Flows:
    links = [
        Link(str(s), str(t), int(v[0]), round(v[1], _DECIMALS), round(v[2], _DECIMALS))
        for (s, t), v in sorted(totals.items(), key=lambda kv: (order(kv[0][0]), order(kv[0][1])))
    ]
    names = sorted({n for link in links for n in (link.source, link.target)}, key=order)
    return Flows(names, links)


def _utc(moment: Moment | None) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        return datetime.combine(moment, time(), UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _province(region: str | None) -> str | None:
    return None if region is None else region[:_PROVINCE_DIGITS]


def _within(start: datetime | None, end: datetime | None) -> Callable[[datetime], bool]:
    return lambda moment: (start is None or moment >= start) and (end is None or moment < end)


def _add(total: list[float], attrs: dict[str, Any], kg: float | None) -> None:
    if kg is not None:  # material: kg only
        total[2] += kg
        return
    total[0] += attrs.get("kind") is ItemKind.PACK
    total[1] += attrs.get("energy_kwh", 0.0)
    total[2] += attrs.get("mass_kg", 0.0)


def stage_flows(
    g: LifecycleGraph,
    *,
    region: str | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    producer: str | None = None,
) -> Flows:
    """Packs, kWh and kg moved between lifecycle stages (see the module's table).

    Parameters
    ----------
    g : LifecycleGraph
    region : str, optional
        A GB/T 2260 code: moves whose event or acting organisation is in its province.
    start, end : datetime or date, optional
        Moves with ``start <= event time < end`` (naive times and dates are UTC).
    producer : str, optional
        Moves of items that organisation made.

    Returns
    -------
    Flows
        Empty when nothing matches.

    Examples
    --------
    >>> stage_flows(LifecycleGraph())
    Flows(nodes=[], links=[])
    """
    within, province = _within(_utc(start), _utc(end)), _province(region)
    nodes = g.nx.nodes
    totals: _Totals = {}
    for move in g.moves:
        if not within(move.time):
            continue
        places = (move.region, nodes[(ACTOR, move.actor)]["region"])
        if province is not None and all(_province(p) != province for p in places):
            continue
        attrs = nodes[(ITEM, move.item)]
        if producer is not None and attrs.get("producer") != producer:
            continue
        _add(totals.setdefault((move.source, move.target), [0, 0.0, 0.0]), attrs, move.kg)
    return _flows(totals, lambda name: Stage(name).order)


def actor_flows(
    g: LifecycleGraph,
    *,
    by: Literal["role", "actor"] = "role",
    region: str | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    producer: str | None = None,
) -> Flows:
    """Packs, kWh and kg handed over between organisations, by role or by organisation.

    Counted when the receiver accepts (the ``handover`` edges), in the kg handed over; a
    region matches the accept's region or either party's. Flows within one node (two
    collectors) are left out.

    Examples
    --------
    >>> actor_flows(LifecycleGraph(), by="actor", region="440000")
    Flows(nodes=[], links=[])
    """
    if by not in ("role", "actor"):
        raise ValueError(f"by must be 'role' or 'actor', not {by!r}")
    within, province = _within(_utc(start), _utc(end)), _province(region)
    nodes = g.nx.nodes
    totals: _Totals = {}
    for sender, receiver, edge in g.handovers:
        places = (edge["region"], nodes[sender]["region"], nodes[receiver]["region"])
        if not within(edge["time"]) or (
            province is not None and all(_province(p) != province for p in places)
        ):
            continue
        names = (
            (str(nodes[sender]["role"]), str(nodes[receiver]["role"]))
            if by == "role"
            else (sender[1], receiver[1])
        )
        if names[0] == names[1]:
            continue
        for item, kg in zip(edge["items"], edge["masses"], strict=True):
            attrs = nodes[(ITEM, item)]
            if producer is None or attrs.get("producer") == producer:
                total = totals.setdefault(names, [0, 0.0, 0.0])
                total[0] += attrs.get("kind") is ItemKind.PACK
                total[1] += attrs.get("energy_kwh", 0.0)
                total[2] += kg  # as handed over: a lot may have been drawn on since
    roles = list(Role)
    return _flows(totals, (lambda name: roles.index(Role(name))) if by == "role" else str)


# --- the same stage flows in SQL, over trace_events, trace_event_items and trace_items ---

_SQL: Final = """
WITH RECURSIVE ev AS (
  SELECT e.seq, e.type, e.region, e.event_time, e.body_json,
         a.region AS actor_region, a.role AS actor_role,
         CASE WHEN e.type IN ('dismantle', 'commission') THEN {item} END AS subject,
         CASE WHEN e.type = 'disassemble' THEN {parent} END AS parent
  FROM trace_events e JOIN trace_actors a ON a.id = e.actor
), marks AS (
  SELECT ev.seq, i.item,
    CASE WHEN ev.type = 'commission' AND i.prev IS NULL THEN 0
         WHEN ev.type = 'install' THEN 1
         WHEN ev.type = 'retire' THEN 2
         WHEN ev.type = 'collect' THEN 3
         WHEN ev.type = 'repurpose' THEN 4
         WHEN ev.type IN ('dismantle', 'recycle') THEN 5
         WHEN ev.type = 'disassemble' AND i.item <> ev.parent
           THEN CASE WHEN ev.actor_role = 'cascade_operator' THEN 3 ELSE 0 END
    END AS target,
    CASE WHEN ev.type IN ('install', 'retire', 'collect', 'recycle') THEN 1
         WHEN ev.type = 'repurpose' AND i.prev IS NOT NULL THEN 1
         WHEN ev.type = 'dismantle' AND i.item = ev.subject THEN 1
         ELSE 0
    END AS moves
  FROM ev JOIN trace_event_items i ON i.seq = ev.seq JOIN trace_items t ON t.id = i.item
  WHERE t.kind <> 'lot'
), staged AS (
  SELECT seq, item, target, moves, MAX(target) OVER (
    PARTITION BY item ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior
  FROM marks WHERE target IS NOT NULL
), lot_stage (item, stage) AS (
  SELECT o.item, CASE WHEN e.type = 'dismantle' THEN 5 ELSE 6 END
  FROM trace_event_items o JOIN trace_events e ON e.seq = o.seq
  WHERE o.prev IS NULL AND (e.type = 'dismantle' OR (e.type = 'recycle' AND EXISTS (
    SELECT 1 FROM trace_event_items b JOIN trace_items t ON t.id = b.item
    WHERE b.seq = o.seq AND b.prev IS NOT NULL AND t.kind <> 'lot')))
  UNION
  SELECT o.item, CASE WHEN e.type IN ('recycle', 'lot_smelt') THEN 6 ELSE s.stage END
  FROM lot_stage s
  JOIN trace_event_items i ON i.item = s.item AND i.prev IS NOT NULL
  JOIN trace_events e ON e.seq = i.seq
    AND e.type IN ('recycle', 'lot_smelt', 'lot_split', 'lot_merge')
  JOIN trace_event_items o ON o.seq = i.seq AND o.prev IS NULL
), lots AS (
  SELECT item, MAX(stage) AS stage FROM lot_stage GROUP BY item
), recovering AS (
  SELECT DISTINCT i.seq FROM trace_event_items i
  JOIN trace_events e ON e.seq = i.seq AND e.type IN ('recycle', 'lot_smelt')
  JOIN trace_items t ON t.id = i.item LEFT JOIN lots l ON l.item = i.item
  WHERE i.prev IS NOT NULL AND (t.kind <> 'lot' OR l.stage = 5)
), moves AS (
  SELECT seq, prior AS source, target, item AS subject, CAST(NULL AS FLOAT) AS kg
  FROM staged WHERE moves = 1 AND prior IS NOT NULL AND target > prior
  UNION ALL
  SELECT ev.seq, 5, 6, {out_id}, {out_kg}
  FROM recovering r JOIN ev ON ev.seq = r.seq {outputs}
  UNION ALL
  SELECT ev.seq, l.stage, 7, ev.subject, {taken_kg}
  FROM ev {materials} JOIN lots l ON l.item = {taken_id}
  WHERE ev.type = 'commission'
)
SELECT m.source, m.target,
  SUM(CASE WHEN m.kg IS NULL AND s.kind = 'pack' THEN 1 ELSE 0 END),
  SUM(CASE WHEN m.kg IS NULL THEN COALESCE(s.energy_kwh, 0) ELSE 0 END),
  SUM(COALESCE(m.kg, s.mass_kg, 0))
FROM moves m JOIN ev ON ev.seq = m.seq JOIN trace_items s ON s.id = m.subject
WHERE {filters}
GROUP BY m.source, m.target
"""

_SQLITE: Final = {
    "item": "json_extract(e.body_json, '$.data.item')",
    "parent": "json_extract(e.body_json, '$.data.parent')",
    "outputs": "CROSS JOIN json_each(ev.body_json, '$.data.outputs') AS x",
    "out_id": "json_extract(x.value, '$.lot.id')",
    "out_kg": "json_extract(x.value, '$.lot.mass_kg')",
    "materials": "CROSS JOIN json_each(ev.body_json, '$.data.materials') AS x",
    "taken_id": "json_extract(x.value, '$.item')",
    "taken_kg": "json_extract(x.value, '$.mass_kg')",
}
_POSTGRES: Final = {
    "item": "(CAST(e.body_json AS json) -> 'data' ->> 'item')",
    "parent": "(CAST(e.body_json AS json) -> 'data' ->> 'parent')",
    "outputs": "CROSS JOIN LATERAL json_array_elements("
    "CAST(ev.body_json AS json) -> 'data' -> 'outputs') AS x(value)",
    "out_id": "(x.value -> 'lot' ->> 'id')",
    "out_kg": "CAST(x.value -> 'lot' ->> 'mass_kg' AS DOUBLE PRECISION)",
    "materials": "CROSS JOIN LATERAL json_array_elements("
    "CAST(ev.body_json AS json) -> 'data' -> 'materials') AS x(value)",
    "taken_id": "(x.value ->> 'item')",
    "taken_kg": "CAST(x.value ->> 'mass_kg' AS DOUBLE PRECISION)",
}
_FILTERS: Final = {
    "region": "(substr(ev.region, 1, 2) = :region OR substr(ev.actor_region, 1, 2) = :region)",
    "start": "ev.event_time >= :start",
    "end": "ev.event_time < :end",
    "producer": "s.producer = :producer",
}


def flows_sql(
    engine: Engine,
    *,
    region: str | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    producer: str | None = None,
) -> Flows:
    """:func:`stage_flows` computed in SQL from the projection tables (SQLite or PostgreSQL).

    The stage of a battery before an event is the latest stage its earlier events reached
    (a window function); lot stages follow splits, merges and refining (a recursive query).

    Parameters
    ----------
    engine : Engine
        The projections' database (``Projections.engine``).
    region, start, end, producer
        As for :func:`stage_flows`.

    Examples
    --------
    >>> from trace.projections import Projections
    >>> flows_sql(Projections("sqlite:///:memory:").engine, region="440000")
    Flows(nodes=[], links=[])
    """
    start_at, end_at = _utc(start), _utc(end)
    params: dict[str, Any] = {
        "region": _province(region),
        # The tables hold naive UTC times.
        "start": None if start_at is None else start_at.replace(tzinfo=None),
        "end": None if end_at is None else end_at.replace(tzinfo=None),
        "producer": producer,
    }
    params = {k: v for k, v in params.items() if v is not None}
    dialect = _POSTGRES if engine.dialect.name == "postgresql" else _SQLITE
    where = " AND ".join(_FILTERS[k] for k in params) or "1 = 1"
    query = text(_SQL.format(filters=where, **dialect))
    with engine.connect() as conn:
        rows: Iterable[Any] = conn.execute(query, params).all()
    stages = list(Stage)
    totals: _Totals = {
        (stages[s], stages[t]): [float(p or 0), float(w or 0), float(k or 0)]
        for s, t, p, w, k in rows
    }
    return _flows(totals, lambda name: Stage(name).order)
