"""Lineage queries: a battery's parts, its lives under each code, its custodians, and its material.

Every function takes the :class:`~trace.graph.LifecycleGraph` first and only reads it
(queries and :meth:`~trace.graph.LifecycleGraph.apply` must not run at the same time).
Lists come in pages: ``limit`` rows (1 to :data:`MAX_LIMIT`) from ``cursor`` (``None``, or
a page's ``next_cursor``); each page walks the answer again as far as its own end. An id
not in the graph raises :class:`~trace.errors.UnknownItem`; a bad
``limit`` or ``cursor``, :class:`ValueError`.

:func:`downstream` and :func:`upstream` attribute mass through transformations in
proportion to mass: a step's outputs hold its inputs (and process reagents) in the shares
in which they went in. So ``attributed_kg`` of a lot downstream of a pack is the part of
that lot's mass that came from the pack, and ``attributed_kg`` of a pack upstream of a new
product is the part of that product's traced material that came from it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from schemas.events import EventType
from trace.errors import UnknownItem
from trace.graph import ITEM, STEP, LifecycleGraph, Node, Rel, item_node

# fmt: off
__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Custody", "Lineage", "LineageRole", "Page", "Part",
           "custody_chain", "downstream", "lives", "parts", "upstream"]
# fmt: on

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 10_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``next_cursor`` is ``None`` on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Part:
    """A module or cell in an item's tree of parts; ``depth`` 1 is a direct part."""

    code: str
    kind: str
    parent: str
    depth: int


@dataclass(frozen=True, slots=True)
class Custody:
    """Who held a battery, from ``since`` until ``until`` (``None``: still does).

    ``code`` is the code custody was recorded under: one of the battery's lives, or the
    parent it was assembled in. ``via`` is the event that gave it (an accept, a commission,
    a repurpose, the dismantling that freed a part).
    """

    code: str
    actor: str
    role: str
    region: str
    since: datetime
    until: datetime | None
    via: str


class LineageRole(StrEnum):
    """How a node in :func:`downstream` or :func:`upstream` relates to the queried item."""

    STEP = "step"  # a transformation the material went through
    LOT = "lot"  # a lot of material
    PART = "part"  # a module or cell freed by dismantling
    RECODED = "recoded"  # the battery under a later cascade-use code
    NEW_PRODUCT = "new_product"  # a new battery made with the material
    SOURCE = "source"  # a battery that went into dismantling or recycling
    EARLIER_LIFE = "earlier_life"  # a source under an earlier code


@dataclass(frozen=True, slots=True)
class Lineage:
    """One node of a material lineage.

    ``node`` is the item code, lot id or (for a step) event id; ``kind`` is ``"step"`` or
    the item's kind; ``type`` the step's event type or the lot's material; ``actor`` who did
    the step or produced the item; ``kg`` an item's recorded mass or what went into a step;
    ``attributed_kg`` the part of it that comes from (downstream) or went into (upstream)
    the queried item.
    """

    node: str
    kind: str
    role: LineageRole
    depth: int
    type: str | None
    actor: str | None
    time: datetime | None
    kg: float | None
    attributed_kg: float | None


def _page(rows: Iterable[T], limit: int, cursor: str | None) -> Page[T]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_LIMIT}, got {limit}")
    if cursor is not None and not (cursor.isascii() and cursor.isdigit()):
        raise ValueError(f"cursor {cursor!r} is not one this query returned")
    start = int(cursor or 0)
    chunk = list(itertools.islice(rows, start, start + limit + 1))
    return Page(tuple(chunk[:limit]), str(start + limit) if len(chunk) > limit else None)


def _require(g: LifecycleGraph, item: str) -> Node:
    node = item_node(item)
    if node not in g.nx:
        raise UnknownItem(f"{item} is not in the lifecycle graph")
    return node


_Adjacency = dict[Node, dict[int, dict[str, Any]]]
_Inputs = list[tuple[Node, float | None]]


def _edges(adjacency: _Adjacency, rel: Rel) -> Iterator[tuple[Node, dict[str, Any]]]:
    for other, keyed in adjacency.items():
        for attrs in keyed.values():
            if attrs["rel"] is rel:
                yield other, attrs


def _during(attrs: dict[str, Any], at: datetime | None) -> bool:
    if at is None:
        return "until" not in attrs
    return bool(attrs["since"] <= at and ("until" not in attrs or at < attrs["until"]))


def parts(
    g: LifecycleGraph,
    item: str,
    *,
    at: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Part]:
    """The modules and cells of ``item`` (now, or ``at`` a moment), depth first, by code.

    Raises
    ------
    UnknownItem
        ``item`` is not in the graph.

    Examples
    --------
    >>> g = _example()
    >>> [(p.code, p.parent, p.depth) for p in parts(g, "PACK-2").items]
    [('MOD-1', 'PACK-2', 1), ('CELL-1', 'MOD-1', 2)]
    >>> from datetime import UTC
    >>> [p.code for p in parts(g, "PACK-1", at=datetime(2026, 1, 3, tzinfo=UTC)).items]
    ['MOD-1', 'CELL-1']
    """
    root = _require(g, item)

    def walk(node: Node, depth: int) -> Iterator[Part]:
        children = sorted(c for c, a in _edges(g.nx._pred[node], Rel.PART_OF) if _during(a, at))
        for child in children:
            yield Part(child[1], str(g.nx.nodes[child].get("kind")), node[1], depth)
            yield from walk(child, depth + 1)

    return _page(walk(root, 1), limit, cursor)


def _lives(g: LifecycleGraph, node: Node) -> list[Node]:
    first = node
    while earlier := [o for o, _ in _edges(g.nx._pred[first], Rel.RECODED_TO)]:
        first = earlier[0]
    chain = [first]
    while later := [o for o, _ in _edges(g.nx._succ[chain[-1]], Rel.RECODED_TO)]:
        chain.append(later[0])
    return chain


def lives(
    g: LifecycleGraph, code: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[str]:
    """The codes of one physical battery, oldest first: its original and cascade re-codes.

    Examples
    --------
    >>> lives(_example(), "PACK-2").items
    ('PACK-1', 'PACK-2')
    """
    return _page((n[1] for n in _lives(g, _require(g, code))), limit, cursor)


def _held(g: LifecycleGraph, node: Node) -> list[Custody]:
    """Custody under ``node``'s own code, then through each parent while assembled in it."""
    out = []
    for actor, a in _edges(g.nx._pred[node], Rel.CUSTODY):
        role, region = g.nx.nodes[actor]["role"], g.nx.nodes[actor]["region"]
        until = a.get("until")
        out.append(Custody(node[1], actor[1], role, region, a["since"], until, a["via"]))
    for parent, a in _edges(g.nx._succ[node], Rel.PART_OF):
        start, end = a["since"], a.get("until")
        for c in _held(g, parent):
            if (c.until is not None and c.until <= start) or (end is not None and c.since >= end):
                continue
            since, via = (c.since, c.via) if c.since >= start else (start, a["via"])
            until = c.until if end is None or (c.until is not None and c.until < end) else end
            out.append(Custody(c.code, c.actor, c.role, c.region, since, until, via))
    return out


def custody_chain(
    g: LifecycleGraph, item: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Custody]:
    """Who held the battery, oldest first, across all its lives and through its parents.

    Examples
    --------
    >>> [(c.code, c.actor) for c in custody_chain(_example(), "MOD-1").items]
    [('MOD-1', 'maker'), ('PACK-1', 'maker'), ('PACK-1', 'operator'), ('PACK-2', 'operator')]
    """
    chain = [c for life in _lives(g, _require(g, item)) for c in _held(g, life)]
    chain.sort(key=lambda c: (c.since, c.until is None, c.until or c.since))
    return _page(chain, limit, cursor)


def _row(g: LifecycleGraph, node: Node, role: LineageRole, depth: int, kg: float | None, went_in: float | None = None) -> Lineage:  # fmt: skip
    """A lineage row; ``kg`` is the attributed mass, ``went_in`` a step's known input kg."""
    a = g.nx._node[node]
    if node[0] == STEP:
        return Lineage(node[1], STEP, role, depth, str(a["type"]), a["actor"], a["time"], went_in, kg)  # fmt: skip
    kind, material, producer, mass = str(a.get("kind")), a.get("material"), a.get("producer"), a.get("mass_kg")  # fmt: skip
    return Lineage(node[1], kind, role, depth, material, producer, None, mass, kg)


def _inputs(g: LifecycleGraph, step: Node) -> tuple[_Inputs, float | None, float | None]:
    """A step's inputs with their kg (every in-edge of a step is an input); the total that
    went in with reagents (``None`` unless every kg is known); the sum of the kg known."""
    ins = [(u, a.get("kg")) for u, keyed in g.nx._pred[step].items() for a in keyed.values()]
    known = [kg for _, kg in ins if kg is not None]
    went_in = sum(known) if known else None
    total = (went_in or 0.0) + g.nx._node[step].get("reagents_kg", 0.0)
    return ins, (total if len(known) == len(ins) and total > 0 else None), went_in


def _share_of(ins: _Inputs, total: float | None, weight: dict[Node, float]) -> float:
    """The share of a step's output that comes from the weighted inputs."""
    if total is None:
        return sum(weight.get(u, 0.0) for u, _ in ins) / len(ins) if ins else 0.0
    return sum((kg or 0.0) * weight.get(u, 0.0) for u, kg in ins) / total


def downstream(
    g: LifecycleGraph, item: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Lineage]:
    """What the item became: steps, later codes, freed parts, lots, and the new products.

    Parameters
    ----------
    g : LifecycleGraph
    item : str
        A battery code or lot id.
    limit, cursor
        Paging (see the module).

    Returns
    -------
    Page of Lineage
        In log order, each step followed by what it made. ``attributed_kg`` is the part of
        each node's mass (a step's: of what went in) that came from ``item``. The walk stops
        at new products. Only the rows up to the page are walked.

    Examples
    --------
    >>> [(r.node, r.role.value, r.attributed_kg) for r in downstream(_example(), "PACK-2").items]
    [('step-3', 'step', 300.0), ('LOT-1', 'lot', 90.0), ('step-4', 'step', 20.0), ('NEW-1', 'new_product', 20.0)]
    """
    return _page(_forward(g, _require(g, item)), limit, cursor)


def _forward(g: LifecycleGraph, root: Node) -> Iterator[Lineage]:
    # Steps are taken in log order, merging each reached item's consumers (kept in log order
    # in its adjacency) lazily: a page costs the rows up to its end. In log order every
    # reached input of a step comes before the step, so its share and depth are final.
    succ, nodes, tie = g.nx._succ, g.nx._node, itertools.count()
    share, depth, done = {root: 1.0}, {root: 0}, set()
    heap: list[tuple[int, int, Node, Iterator[Node]]] = []

    def queue(consumers: Iterator[Node]) -> None:
        for step in consumers:
            heapq.heappush(heap, (nodes[step]["seq"], next(tie), step, consumers))
            return

    queue(s for s in succ[root] if s[0] == STEP)  # an item's only edges to steps are inputs
    while heap:
        step, consumers = heapq.heappop(heap)[2:]
        queue(consumers)
        if step in done:
            continue
        done.add(step)
        ins, total, went_in = _inputs(g, step)
        into = sum((kg or 0.0) * share.get(u, 0.0) for u, kg in ins)  # kg of the item's flow
        s = _share_of(ins, total, share)
        d = 1 + min(depth[u] for u, _ in ins if u in depth)
        yield _row(g, step, LineageRole.STEP, d, into, went_in)
        kind = nodes[step]["type"]
        for out, keyed in succ[step].items():  # every out-edge of a step is an output
            if out in share:  # the queried item, or (never in a well-formed log) made twice
                continue
            role, share[out], depth[out] = _forward_role(g, kind, out), s, d + 1
            new, kg = role is LineageRole.NEW_PRODUCT, next(iter(keyed.values())).get("kg")
            yield _row(g, out, role, d + 1, into if new else (None if kg is None else kg * s))
            if not new:
                queue(c for c in succ[out] if c[0] == STEP)


def _forward_role(g: LifecycleGraph, step_type: str, node: Node) -> LineageRole:
    if g.nx._node[node].get("kind") == "lot":
        return LineageRole.LOT
    if step_type == EventType.COMMISSION:
        return LineageRole.NEW_PRODUCT
    return LineageRole.RECODED if step_type == EventType.REPURPOSE else LineageRole.PART


def upstream(
    g: LifecycleGraph, item: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Lineage]:
    """Where the item's traced material came from: lots, steps, parts and source batteries.

    Parameters
    ----------
    g : LifecycleGraph
    item : str
        A battery code (typically a new product made with material lots) or lot id.
    limit, cursor
        Paging (see the module).

    Returns
    -------
    Page of Lineage
        Newest first, each step followed by what went into it. For a new product,
        ``attributed_kg`` is the kg of its traced material that came through each node. The
        walk does not follow a source's own recycled content. Only the rows up to the page
        are walked.

    Examples
    --------
    >>> [(r.node, r.role.value, r.attributed_kg) for r in upstream(_example(), "NEW-1").items]
    [('step-4', 'step', 20.0), ('LOT-1', 'lot', 20.0), ('step-3', 'step', 20.0), ('PACK-2', 'source', 20.0), ('step-2', 'step', 20.0), ('PACK-1', 'earlier_life', 20.0)]
    """
    return _page(_backward(g, _require(g, item)), limit, cursor)


def _backward(g: LifecycleGraph, root: Node) -> Iterator[Lineage]:
    # Newest first, every consumer of a step's outputs comes before the step: its amount and
    # depth are final. Each item reached is the input of one step only (lots drawn on by
    # several new products are reached from one of them, the queried item).
    pred, nodes = g.nx._pred, g.nx._node
    amount: dict[Node, float] = {}
    depth: dict[Node, int] = {root: 0}
    roles: dict[Node, LineageRole | None] = {root: None}
    heap = [(-nodes[s]["seq"], s) for s in pred[root] if s[0] == STEP]  # steps that made it
    heapq.heapify(heap)
    while heap:
        step = heapq.heappop(heap)[1]
        if step in depth:
            continue
        ins, total, went_in = _inputs(g, step)
        made, got, outs = nodes[step]["type"], 0.0, g.nx._succ[step]
        for out, keyed in outs.items():
            if out == root:  # a new product's traced material is what its commission took
                whole = float(next(iter(keyed.values())).get("kg", nodes[root].get("mass_kg", 0.0)))
                got += (went_in or 0.0) if made == EventType.COMMISSION else whole
            else:
                got += amount.get(out, 0.0)
        depth[step] = d = 1 + min(depth[o] for o in outs if o in depth)
        yield _row(g, step, LineageRole.STEP, d, got, went_in)
        for u, kg in ins:
            if u in roles:
                continue
            amount[u], depth[u] = (
                got * ((kg or 0.0) / total if total is not None else 1 / len(ins)),
                d + 1,
            )
            producers = [(p, nodes[p]["type"]) for p in pred[u] if p[0] == STEP]
            roles[u] = role = _backward_role(g, made, u, [t for _, t in producers])
            yield _row(g, u, role, d + 1, amount[u])
            for earlier, kind in producers:
                if _follows(role, kind):
                    heapq.heappush(heap, (-nodes[earlier]["seq"], earlier))


def _backward_role(g: LifecycleGraph, step_type: str, node: Node, made_by: list[str]) -> LineageRole:  # fmt: skip
    if g.nx._node[node].get("kind") == "lot":
        return LineageRole.LOT
    if step_type == EventType.REPURPOSE:
        return LineageRole.EARLIER_LIFE
    return LineageRole.PART if EventType.DISMANTLE in made_by else LineageRole.SOURCE


def _follows(role: LineageRole | None, step_type: str) -> bool:
    """Which producing steps the upstream walk goes on to from a node in ``role``."""
    if role is None or role is LineageRole.LOT:
        return True  # a lot: whatever made it
    if role is LineageRole.PART:
        return step_type == EventType.DISMANTLE  # the battery it was freed from
    return step_type == EventType.REPURPOSE  # a source: its earlier lives, not its materials


def _example() -> LifecycleGraph:
    """A small hand-made graph for the examples: a pack's two lives, then its material."""
    from datetime import UTC

    g, t = LifecycleGraph(), [datetime(2026, 1, day, tzinfo=UTC) for day in range(1, 8)]
    for actor, role in (("maker", "battery_maker"), ("operator", "cascade_operator")):
        g.nx.add_node(("actor", actor), role=role, region="440000")
    # fmt: off
    for code, kind, kg in (("PACK-1", "pack", 300.0), ("PACK-2", "pack", 300.0), ("MOD-1", "module", 100.0),
                           ("CELL-1", "cell", 5.0), ("LOT-1", "lot", 90.0), ("NEW-1", "pack", 280.0)):
        g.nx.add_node((ITEM, code), kind=kind, producer="maker", mass_kg=kg)
    for u, v, rel, since, until, via in (
        (("actor", "maker"), "MOD-1", Rel.CUSTODY, t[0], t[1], "e1"),
        (("item", "CELL-1"), "MOD-1", Rel.PART_OF, t[0], None, "e1"),
        (("item", "MOD-1"), "PACK-1", Rel.PART_OF, t[1], t[3], "e2"),
        (("item", "MOD-1"), "PACK-2", Rel.PART_OF, t[3], None, "step-2"),
        (("actor", "maker"), "PACK-1", Rel.CUSTODY, t[0], t[2], "e1"),
        (("actor", "operator"), "PACK-1", Rel.CUSTODY, t[2], t[3], "e3"),
        (("actor", "operator"), "PACK-2", Rel.CUSTODY, t[3], None, "step-2"),
    ):
        g.nx.add_edge(u, (ITEM, v), rel=rel, since=since, via=via, **({} if until is None else {"until": until}))
    g.nx.add_edge((ITEM, "PACK-1"), (ITEM, "PACK-2"), rel=Rel.RECODED_TO, time=t[3], via="step-2")
    for seq, (step, kind, (into, kg_in), (out, kg_out)) in enumerate((
        ("step-2", "repurpose", ("PACK-1", 300.0), ("PACK-2", 300.0)),
        ("step-3", "recycle", ("PACK-2", 300.0), ("LOT-1", 90.0)),
        ("step-4", "commission", ("LOT-1", 20.0), ("NEW-1", 280.0)),
    )):
        g.nx.add_node((STEP, step), type=EventType(kind), time=t[4 + seq], actor="maker", seq=seq)
        g.nx.add_edge((ITEM, into), (STEP, step), rel=Rel.INPUT, kg=kg_in)
        g.nx.add_edge((STEP, step), (ITEM, out), rel=Rel.OUTPUT, kg=kg_out)
    # fmt: on
    return g
