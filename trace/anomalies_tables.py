"""Projection tables against the in-memory state: the rows that disagree.

The engine keeps ``trace_items`` and ``trace_handovers`` a pure function of the log, and its
in-memory world too (:mod:`trace.projections`); an import or a hand-edited database can
break that. :func:`compare_tables` reads each table in one streaming query and reports every
row whose custody fields differ from the world, or that one side lacks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, Table, select
from sqlmodel import SQLModel

from trace.state import HandoverState, ItemState, MemoryWorld

__all__ = ["ABSENT", "TableMismatch", "compare_tables", "stream", "table"]

ABSENT: Final = "(no row)"
"""What :class:`TableMismatch` says of a row one side lacks."""
_BATCH: Final = 5000  # rows fetched at a time from a streaming query


@dataclass(frozen=True, slots=True)
class TableMismatch:
    """A projection row that disagrees with the in-memory state.

    ``differences`` are ``(field, in memory, in the table)``; a row missing on one side
    has the field ``row`` and :data:`ABSENT` (``"(no row)"``) on that side.
    """

    table: str
    key: str
    differences: tuple[tuple[str, str, str], ...]


def table(name: str) -> Table:
    """A projection table by name (``trace_events``, ``trace_items``, ...)."""
    return SQLModel.metadata.tables[name]


def stream(engine: Engine, query: Any) -> Iterable[Sequence[Any]]:
    """The rows of ``query``, fetched a batch at a time (never all at once)."""
    with engine.connect() as conn:
        yield from conn.execution_options(yield_per=_BATCH).execute(query)


def _text(value: object) -> str:
    return "null" if value is None else str(value)


def _item_fields(item: ItemState) -> tuple[str, ...]:
    return (
        item.status.value,
        item.custodian,
        item.owner,
        _text(item.parent),
        _text(item.pending_handover),
        item.head,
    )


def _handover_fields(h: HandoverState) -> tuple[str, ...]:
    return (
        h.sender,
        h.receiver,
        h.status.value,
        _text(h.closed_by),
        json.dumps(list(h.items)),
    )


_ITEM_COLUMNS: Final = ("status", "custodian", "owner", "parent", "pending_handover", "head")
_HANDOVER_COLUMNS: Final = ("sender", "receiver", "status", "closed_by", "items_json")


def compare_tables(
    engine: Engine, world: MemoryWorld, *, upto: int | None = None
) -> Iterable[TableMismatch]:
    """Rows of ``trace_items`` and ``trace_handovers`` that disagree with ``world``.

    With ``upto`` (the log position ``world`` reflects), rows written by a later event
    are left out: another engine on the database may have projected past ``world``.

    Compared: an item's status, custodian, owner, parent, pending handover and head; a
    handover's sender, receiver, status, closing event and items. One streaming query per
    table, and a second over the keys only when the world holds rows the table lacks.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> from trace.projections import Projections
    >>> from trace.state import ItemKind, Status
    >>> tables = Projections("sqlite://")  # empty, in memory
    >>> world = MemoryWorld()
    >>> world.items["P1"] = ItemState("P1", ItemKind.PACK, Status.IN_STOCK, "catl", "catl",
    ...                               "catl", "e-1", datetime(2026, 1, 1, tzinfo=UTC), "350000")
    >>> list(compare_tables(tables.engine, world))
    [TableMismatch(table='trace_items', key='P1', differences=(('row', 'present', '(no row)'),))]
    """
    sides: tuple[
        tuple[str, tuple[str, ...], Mapping[str, Any], Callable[[Any], tuple[str, ...]]], ...
    ] = (
        ("trace_items", _ITEM_COLUMNS, world.items, _item_fields),
        ("trace_handovers", _HANDOVER_COLUMNS, world.handovers, _handover_fields),
    )
    for name, columns, memory, fields in sides:
        rows = table(name)
        query = select(rows.c.id, *(rows.c[column] for column in columns))
        if upto is not None:
            query = query.where(rows.c.updated_seq < upto)
        matched = 0
        for row in stream(engine, query):
            key, stored = row[0], tuple(_text(v) for v in row[1:])
            state = memory.get(key)
            if state is None:
                yield TableMismatch(name, key, (("row", ABSENT, "present"),))
                continue
            matched += 1
            held = fields(state)
            if held != stored:
                differences = tuple(
                    (column, mine, theirs)
                    for column, mine, theirs in zip(columns, held, stored, strict=True)
                    if mine != theirs
                )
                yield TableMismatch(name, key, differences)
        if matched < len(memory):  # a second pass, over the keys only, finds which
            seen = {row[0] for row in stream(engine, select(rows.c.id))}
            for key in sorted(set(memory) - seen):
                yield TableMismatch(name, key, (("row", "present", ABSENT),))
