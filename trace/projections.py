"""Projection tables kept in step with the log, and rebuilt from it.

The engine writes a batch's new item and handover states, its events and the
new ``projection_state.seq`` in one transaction after the log committed the
batch. If the process dies in between, the next start replays the log from
``projection_state.seq``: the tables are a pure function of the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, create_engine, delete, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from schemas.actors import Actor, Role
from schemas.tables import (
    ActorRow,
    HandoverRow,
    ItemRow,
    ProjectionStateRow,
)
from trace.state import (
    EuStatus,
    HandoverState,
    HandoverStatus,
    ItemKind,
    ItemState,
    MemoryWorld,
    Status,
)

__all__ = ["ProjectedEvent", "Projections", "sqlalchemy_url"]

_TABLES = [
    SQLModel.metadata.tables[name]
    for name in (
        "trace_actors",
        "trace_items",
        "trace_handovers",
        "trace_events",
        "trace_event_items",
        "trace_projection_state",
    )
]


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL for a suyuan database URL (psycopg 3 for PostgreSQL)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///") or "://" in url:
        return url
    return f"sqlite:///{url}"


@dataclass(frozen=True, slots=True)
class ProjectedEvent:
    """One accepted event as the projection tables record it."""

    seq: int
    event_id: str
    type: str
    actor: str
    region: str
    event_time: datetime
    recorded_at: datetime
    idempotency_key: str
    late_working_days: int | None
    body: dict[str, Any]
    prev: dict[str, str | None]


def _utc(moment: datetime) -> datetime:
    # Stored in UTC so that SQLite (which keeps no offsets) and PostgreSQL hold equal rows.
    return moment.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def item_row(item: ItemState, seq: int) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind.value,
        "status": item.status.value,
        "eu_status": item.eu_status.value,
        "custodian": item.custodian,
        "owner": item.owner,
        "producer": item.producer,
        "head": item.head,
        "last_time": _utc(item.last_time),
        "region": item.region,
        "mass_kg": item.mass_kg,
        "content_json": json.dumps(dict(item.content_kg), sort_keys=True),
        "chemistry": item.chemistry,
        "energy_kwh": item.energy_kwh,
        "material": item.material,
        "vin": item.vin,
        "parent": item.parent,
        "children_json": json.dumps(list(item.children)),
        "original": item.original,
        "successor": item.successor,
        "pending_handover": item.pending_handover,
        "disputed": item.disputed,
        "soh_pct": item.soh_pct,
        "grade": item.grade,
        "sources_json": json.dumps(list(item.sources)),
        "updated_seq": seq,
    }


def item_from_row(row: ItemRow) -> ItemState:
    return ItemState(
        id=row.id,
        kind=ItemKind(row.kind),
        status=Status(row.status),
        custodian=row.custodian,
        owner=row.owner,
        producer=row.producer,
        head=row.head,
        last_time=_aware(row.last_time),
        region=row.region,
        mass_kg=row.mass_kg,
        content_kg=json.loads(row.content_json),
        chemistry=row.chemistry,
        energy_kwh=row.energy_kwh,
        material=row.material,
        vin=row.vin,
        parent=row.parent,
        children=tuple(json.loads(row.children_json)),
        original=row.original,
        successor=row.successor,
        pending_handover=row.pending_handover,
        disputed=row.disputed,
        soh_pct=row.soh_pct,
        grade=row.grade,
        eu_status=EuStatus(row.eu_status),
        sources=tuple(json.loads(row.sources_json)),
    )


def handover_row(h: HandoverState, seq: int) -> dict[str, Any]:
    return {
        "id": h.id,
        "sender": h.sender,
        "receiver": h.receiver,
        "items_json": json.dumps(list(h.items)),
        "transfer_ownership": h.transfer_ownership,
        "status": h.status.value,
        "created": _utc(h.created),
        "disputed": h.disputed,
        "closed_by": h.closed_by,
        "updated_seq": seq,
    }


def handover_from_row(row: HandoverRow) -> HandoverState:
    return HandoverState(
        id=row.id,
        sender=row.sender,
        receiver=row.receiver,
        items=tuple(json.loads(row.items_json)),
        transfer_ownership=row.transfer_ownership,
        status=HandoverStatus(row.status),
        created=_aware(row.created),
        disputed=row.disputed,
        closed_by=row.closed_by,
    )


class Projections:
    """The projection tables in one database (the log's own, by default)."""

    def __init__(self, url: str) -> None:
        self.url = sqlalchemy_url(url)
        self.engine: Engine = create_engine(self.url)
        if self.engine.dialect.name == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _pragmas(conn: Any, _record: Any) -> None:
                conn.execute("PRAGMA busy_timeout = 60000")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")

        SQLModel.metadata.create_all(self.engine, tables=_TABLES)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: Any) -> Any:
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        return dialect.insert(table)

    def _upsert(self, table: Any, keys: Sequence[str], *, newer: str | None = None) -> Any:
        # Several engines may project the same entries (each catches up on the others'
        # appends): writes are idempotent, and a state only replaces an older one.
        stmt = self._insert(table)
        columns = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        where = None if newer is None else table.c[newer] < stmt.excluded[newer]
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=columns, where=where)

    def seq(self) -> int:
        """How many log entries the tables reflect."""
        with Session(self.engine) as session:
            row = session.get(ProjectionStateRow, 1)
            return 0 if row is None else row.seq

    def write(
        self,
        *,
        seq: int,
        items: Iterable[tuple[ItemState, int]] = (),
        handovers: Iterable[tuple[HandoverState, int]] = (),
        actors: Iterable[tuple[Actor, int]] = (),
        events: Iterable[ProjectedEvent] = (),
    ) -> None:
        """Write a batch's effects and advance ``projection_state.seq`` to ``seq``, atomically.

        ``items`` pairs each new item state with the log position of the event that made it.
        """
        item_rows = [item_row(i, changed_at) for i, changed_at in items]
        handover_rows = [handover_row(h, changed_at) for h, changed_at in handovers]
        actor_rows = [
            {
                "id": a.id,
                "name": a.name,
                "role": a.role.value,
                "region": a.region,
                "registered_seq": s,
            }
            for a, s in actors
        ]
        event_rows = []
        link_rows = []
        for e in events:
            event_rows.append(
                {
                    "seq": e.seq,
                    "event_id": e.event_id,
                    "type": e.type,
                    "actor": e.actor,
                    "region": e.region,
                    "event_time": _utc(e.event_time),
                    "recorded_at": _utc(e.recorded_at),
                    "idempotency_key": e.idempotency_key,
                    "late_working_days": e.late_working_days,
                    "body_json": json.dumps(e.body, sort_keys=True, ensure_ascii=False),
                }
            )
            link_rows += [
                {"seq": e.seq, "item": item, "event_id": e.event_id, "prev": prev}
                for item, prev in e.prev.items()
            ]
        with self.engine.begin() as conn:
            if actor_rows:
                conn.execute(self._upsert(_table("trace_actors"), ["id"]), actor_rows)
            if item_rows:
                conn.execute(
                    self._upsert(_table("trace_items"), ["id"], newer="updated_seq"), item_rows
                )
            if handover_rows:
                stmt = self._upsert(_table("trace_handovers"), ["id"], newer="updated_seq")
                conn.execute(stmt, handover_rows)
            if event_rows:
                stmt = self._insert(_table("trace_events")).on_conflict_do_nothing()
                conn.execute(stmt, event_rows)
            if link_rows:
                stmt = self._insert(_table("trace_event_items")).on_conflict_do_nothing()
                conn.execute(stmt, link_rows)
            state = [{"id": 1, "seq": seq}]
            stmt = self._upsert(_table("trace_projection_state"), ["id"], newer="seq")
            conn.execute(stmt, state)

    def receipts(self) -> list[tuple[int, str, str, str, datetime, int | None]]:
        """``(seq, event_id, actor, idempotency_key, recorded_at, late_working_days)`` of every event."""
        columns = _table("trace_events").c
        query = select(
            columns.seq,
            columns.event_id,
            columns.actor,
            columns.idempotency_key,
            columns.recorded_at,
            columns.late_working_days,
        )
        with self.engine.connect() as conn:
            return [
                (int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5])
                for r in conn.execute(query)
            ]

    def item_seqs(self, item: str) -> list[int]:
        """Log positions of every event that touched ``item``, oldest first."""
        columns = _table("trace_event_items").c
        query = select(columns.seq).where(columns.item == item).order_by(columns.seq)
        with self.engine.connect() as conn:
            return [int(row[0]) for row in conn.execute(query)]

    def load_world(self) -> MemoryWorld:
        """Every actor, item and handover, in memory (the engine's working state)."""
        world = MemoryWorld()
        with Session(self.engine) as session:
            for a in session.exec(select(ActorRow)).scalars():  # type: ignore[call-overload]
                world.actors[a.id] = Actor(id=a.id, name=a.name, role=Role(a.role), region=a.region)
            for i in session.exec(select(ItemRow)).scalars():  # type: ignore[call-overload]
                world.items[i.id] = item_from_row(i)
            for h in session.exec(select(HandoverRow)).scalars():  # type: ignore[call-overload]
                world.handovers[h.id] = handover_from_row(h)
        return world

    def clear(self) -> None:
        """Empty every projection table (before a rebuild from the log)."""
        with self.engine.begin() as conn:
            for table in reversed(_TABLES):
                conn.execute(delete(table))

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: for comparing a live projection with a rebuild."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as conn:
            for table in _TABLES:
                rows = conn.execute(select(table)).all()
                out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out
