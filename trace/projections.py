"""Projection tables kept in step with the log, and rebuilt from it.

The engine writes a batch's new item and handover states, its events and the
new ``projection_state.seq`` in one transaction after the log committed the
batch. If the process dies in between, the next start replays the log from
``projection_state.seq``: the tables are a pure function of the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Float, Table, create_engine, delete, event, select
from sqlalchemy.exc import DBAPIError
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


# The columns each write fills, in the order of the row tuples built below.
_ACTOR_COLUMNS = ("id", "name", "role", "region", "registered_seq")
_ITEM_COLUMNS = (
    "id", "kind", "status", "eu_status", "custodian", "owner", "producer", "head", "last_time",
    "region", "mass_kg", "content_json", "chemistry", "energy_kwh", "material", "vin", "parent",
    "children_json", "original", "successor", "pending_handover", "disputed", "soh_pct", "grade",
    "sources_json", "updated_seq",
)  # fmt: skip
_HANDOVER_COLUMNS = (
    "id", "sender", "receiver", "items_json", "transfer_ownership", "status", "created",
    "disputed", "closed_by", "updated_seq",
)  # fmt: skip
_EVENT_COLUMNS = (
    "seq", "event_id", "type", "actor", "region", "event_time", "recorded_at",
    "idempotency_key", "late_working_days", "body_json",
)  # fmt: skip
_LINK_COLUMNS = ("seq", "item", "event_id", "prev")
_STATE_COLUMNS = ("id", "seq")


def _as_float(value: Any) -> Any:
    # An array holds one type: a float column's integers are sent as floats.
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class _TableWrite:
    """A batched insert or upsert of whole rows into one table, as SQL for one database.

    The statement is built once. On SQLite the rows go to the driver's ``executemany``;
    on PostgreSQL the whole batch is one ``INSERT ... SELECT FROM unnest(arrays)``, so the
    server plans and runs one statement per table and batch rather than one per row.
    Values pass through the column types' own bind processors, so the stored values are
    those SQLAlchemy would store.
    """

    sql: str
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column index, bind processor)
    arrays: bool

    @classmethod
    def build(
        cls,
        engine: Engine,
        table: Table,
        columns: Sequence[str],
        *,
        keys: Sequence[str] = (),
        newer: str | None = None,
        update: Sequence[str] | None = None,
    ) -> _TableWrite:
        """Insert ``columns``; on a conflict over ``keys`` update the rest, or only those of
        ``update`` (in both cases only if ``newer`` grows); without ``keys`` do nothing."""
        dialect = engine.dialect
        quote = dialect.identifier_preparer.quote
        name = dialect.identifier_preparer.format_table(table)
        arrays = dialect.name == "postgresql"
        if arrays:
            casts = ", ".join(f"%b::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns)
            source = f"SELECT * FROM unnest({casts})"
        else:
            source = f"VALUES ({', '.join('?' for _ in columns)})"
        sql = f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) {source} ON CONFLICT"
        if keys:
            updated = [c for c in columns if c not in keys and (update is None or c in update)]
            updates = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updated)
            sql += f" ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"
            if newer is not None:
                sql += f" WHERE {name}.{quote(newer)} < excluded.{quote(newer)}"
        else:
            sql += " DO NOTHING"
        processors = []
        for i, c in enumerate(columns):
            kind = table.c[c].type
            process = _as_float if arrays and isinstance(kind, Float) else None
            # The dialect's own variant of the type: SQLite's DATETIME writes its text form.
            process = process or kind.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((i, process))
        return cls(sql, tuple(processors), arrays)

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for i, process in self.processors:
            columns[i] = list(map(process, columns[i]))
        if self.arrays:
            # Straight to psycopg: inside the pipeline Projections.write opens, the
            # statement is sent without waiting for the one before it to finish.
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute(self.sql, tuple(list(column) for column in columns))
        else:
            conn.exec_driver_sql(self.sql, list(zip(*columns, strict=True)))


class _ItemUpserts:
    """Upserts of item rows that set, of the indexed columns, only those that changed.

    SQLite rewrites the index entry of every indexed column an UPDATE sets, even to the
    value it already holds. Setting all of an item's columns re-indexed all seven of its
    indexed ones: on a 100k-pack world, 400 such upserts dirtied 2,636 pages, against
    396 with the indexed columns left out, and item rows were most of what a batch wrote.
    So an item whose row before the batch is known takes a statement that sets its
    unindexed columns and the indexed ones that differ from that row; one statement is
    built per set of changed columns, on first use. A new item, or one written without
    its earlier state, takes the statement that sets every column. On PostgreSQL every
    row takes that one statement: an update there writes a new row version whatever it
    sets, and leaves the indexes alone by itself when no indexed value changed and the
    row's page has room (a heap-only tuple update).
    """

    def __init__(
        self, engine: Engine, table: Table, columns: Sequence[str], *, key: str, newer: str
    ) -> None:
        self._engine, self._table, self._columns = engine, table, columns
        self._key, self._newer = key, newer
        indexed = {c.name for index in table.indexes for c in index.columns} - {key}
        # Each indexed column holds the item field of its name (an enum by its value), so
        # a change shows on the states themselves, before any row is built.
        if unknown := indexed - set(ItemState.__dataclass_fields__):
            raise TypeError(f"indexed item columns that are no item field: {sorted(unknown)}")
        self._indexed = tuple((i, c) for i, c in enumerate(columns) if c in indexed)
        self._narrows = engine.dialect.name == "sqlite"
        self._every = self._build(None)
        self._by_change: dict[tuple[int, ...], _TableWrite] = {}

    def _build(self, changed: tuple[int, ...] | None) -> _TableWrite:
        update = None
        if changed is not None:
            skipped = {c for i, c in self._indexed if i not in changed}
            update = [c for c in self._columns if c not in skipped]
        return _TableWrite.build(
            self._engine,
            self._table,
            self._columns,
            keys=[self._key],
            newer=self._newer,
            update=update,
        )

    def run(
        self,
        conn: Connection,
        items: Iterable[tuple[ItemState, int]],
        before: Mapping[str, ItemState | None] | None,
    ) -> None:
        """Write each item state with the log position that made it, beside, where known,
        its state before the batch (see :meth:`Projections.write`)."""
        if not self._narrows or before is None:
            self._every.run(conn, [_item_values(item, seq) for item, seq in items])
            return
        groups: dict[tuple[int, ...] | None, list[tuple[Any, ...]]] = {}
        for item, seq in items:
            old = before.get(item.id)
            changed = None
            if old is not None:
                changed = tuple(i for i, c in self._indexed if getattr(item, c) != getattr(old, c))
            groups.setdefault(changed, []).append(_item_values(item, seq))
        for changed, group in groups.items():
            if changed is None:
                self._every.run(conn, group)
                continue
            if changed not in self._by_change:
                self._by_change[changed] = self._build(changed)
            self._by_change[changed].run(conn, group)


@contextmanager
def _pipeline(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, a libpq pipeline: a batch's statements go out back to back and their
    results are read at the end (errors surface there, before the commit)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    dbapi = conn.dialect.loaded_dbapi
    try:
        with driver.pipeline():
            yield
    except dbapi.Error as exc:  # the error SQLAlchemy would have raised for the statement
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc


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


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values)) if values else "[]"


def _item_values(item: ItemState, seq: int) -> tuple[Any, ...]:
    """An item's row, in the column order of ``trace_items``."""
    return (
        item.id,
        item.kind.value,
        item.status.value,
        item.eu_status.value,
        item.custodian,
        item.owner,
        item.producer,
        item.head,
        _utc(item.last_time),
        item.region,
        item.mass_kg,
        json.dumps(dict(item.content_kg), sort_keys=True) if item.content_kg else "{}",
        item.chemistry,
        item.energy_kwh,
        item.material,
        item.vin,
        item.parent,
        _json_list(item.children),
        item.original,
        item.successor,
        item.pending_handover,
        item.disputed,
        item.soh_pct,
        item.grade,
        _json_list(item.sources),
        seq,
    )


def item_row(item: ItemState, seq: int) -> dict[str, Any]:
    return dict(zip(_ITEM_COLUMNS, _item_values(item, seq), strict=True))


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


def _handover_values(h: HandoverState, seq: int) -> tuple[Any, ...]:
    """A handover's row, in the column order of ``trace_handovers``."""
    return (
        h.id,
        h.sender,
        h.receiver,
        _json_list(h.items),
        h.transfer_ownership,
        h.status.value,
        _utc(h.created),
        h.disputed,
        h.closed_by,
        seq,
    )


def handover_row(h: HandoverState, seq: int) -> dict[str, Any]:
    return dict(zip(_HANDOVER_COLUMNS, _handover_values(h, seq), strict=True))


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


@dataclass(frozen=True, slots=True)
class _Writes:
    """The statements of :meth:`Projections.write`.

    Several engines may project the same entries (each catches up on the others'
    appends): writes are idempotent, and a state only replaces an older one.
    """

    actors: _TableWrite
    items: _ItemUpserts
    handovers: _TableWrite
    events: _TableWrite
    links: _TableWrite
    state: _TableWrite

    @classmethod
    def build(cls, engine: Engine) -> _Writes:
        def write(name: str, columns: Sequence[str], **kw: Any) -> _TableWrite:
            return _TableWrite.build(engine, _table(name), columns, **kw)

        return cls(
            actors=write("trace_actors", _ACTOR_COLUMNS, keys=["id"]),
            items=_ItemUpserts(
                engine, _table("trace_items"), _ITEM_COLUMNS, key="id", newer="updated_seq"
            ),
            handovers=write("trace_handovers", _HANDOVER_COLUMNS, keys=["id"], newer="updated_seq"),
            events=write("trace_events", _EVENT_COLUMNS),
            links=write("trace_event_items", _LINK_COLUMNS),
            state=write("trace_projection_state", _STATE_COLUMNS, keys=["id"], newer="seq"),
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
                conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: the indexes stay in memory

        SQLModel.metadata.create_all(self.engine, tables=_TABLES)
        self._writes = _Writes.build(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection whose reads all see the tables as one commit left them.

        Several engines write these tables (each catches up on the others' appends). A
        start that read the items, then the position, in separate transactions could
        take another engine's position with items from before that engine's write, and
        never replay what it missed.
        """
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite opens no transaction for reads, so each SELECT would see the
                # latest commit; in WAL mode a read transaction keeps its first snapshot.
                conn.exec_driver_sql("BEGIN")
            else:
                conn.execution_options(isolation_level="REPEATABLE READ")
                conn.begin()  # one transaction (its snapshot from its first read) for every read
            yield conn

    @contextmanager
    def _connection(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as own:
                yield own

    def seq(self, conn: Connection | None = None) -> int:
        """How many log entries the tables reflect (as ``conn`` sees them, if given)."""
        with self._connection(conn) as c, Session(bind=c) as session:
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
        before: Mapping[str, ItemState | None] | None = None,
    ) -> None:
        """Write a batch's effects and advance ``projection_state.seq`` to ``seq``, atomically.

        ``items`` pairs each new item state with the log position of the event that made it.
        ``before`` holds, where known, each item's state before the batch (None: a new
        item); it must be what the tables hold, and lets an item's unchanged indexed
        columns be left alone.
        """
        actor_rows = {
            a.id: (a.id, a.name, a.role.value, a.region, registered) for a, registered in actors
        }
        event_rows = []
        link_rows = []
        for e in events:
            event_rows.append(
                (
                    e.seq,
                    e.event_id,
                    e.type,
                    e.actor,
                    e.region,
                    _utc(e.event_time),
                    _utc(e.recorded_at),
                    e.idempotency_key,
                    e.late_working_days,
                    # orjson: the JSON that json.dumps(sort_keys=True) writes, without
                    # its spaces, at a tenth of the cost; readers parse it as JSON.
                    orjson.dumps(e.body, option=orjson.OPT_SORT_KEYS).decode(),
                )
            )
            link_rows += [(e.seq, item, e.event_id, prev) for item, prev in e.prev.items()]
        w = self._writes
        with self.engine.begin() as conn, _pipeline(conn):
            w.actors.run(conn, list(actor_rows.values()))
            w.items.run(conn, items, before)
            w.handovers.run(conn, [_handover_values(h, changed_at) for h, changed_at in handovers])
            w.events.run(conn, event_rows)
            w.links.run(conn, link_rows)
            w.state.run(conn, [(1, seq)])

    def receipt_keys(self, conn: Connection | None = None) -> Iterator[tuple[int, str, str, str]]:
        """``(seq, event_id, actor, idempotency_key)`` of every event, streamed in log order."""
        columns = _table("trace_events").c
        query = select(
            columns.seq, columns.event_id, columns.actor, columns.idempotency_key
        ).order_by(columns.seq)
        with self._connection(conn) as c:
            result = c.execute(query, execution_options={"yield_per": 20_000})
            for r in result:
                yield int(r[0]), str(r[1]), str(r[2]), str(r[3])

    def receipt(self, seq: int) -> tuple[int, str, str, str, datetime, int | None] | None:
        """``(seq, event_id, actor, idempotency_key, recorded_at, late_working_days)`` of
        the event at ``seq``, or None if no event is projected there."""
        columns = _table("trace_events").c
        query = select(
            columns.seq,
            columns.event_id,
            columns.actor,
            columns.idempotency_key,
            columns.recorded_at,
            columns.late_working_days,
        ).where(columns.seq == seq)
        with self.engine.connect() as conn:
            r = conn.execute(query).first()
        return None if r is None else (int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5])

    def item_seqs(self, item: str) -> list[int]:
        """Log positions of every event that touched ``item``, oldest first."""
        columns = _table("trace_event_items").c
        query = select(columns.seq).where(columns.item == item).order_by(columns.seq)
        with self.engine.connect() as conn:
            return [int(row[0]) for row in conn.execute(query)]

    def load_actors(self, conn: Connection | None = None) -> dict[str, Actor]:
        """Every registered organisation, by id."""
        with self._connection(conn) as c, Session(bind=c) as session:
            rows = session.exec(select(ActorRow)).scalars()  # type: ignore[call-overload]
            return {
                a.id: Actor(id=a.id, name=a.name, role=Role(a.role), region=a.region) for a in rows
            }

    def load_world(self, conn: Connection | None = None) -> MemoryWorld:
        """Every actor, item and handover, in memory (the engine's working state); read
        through :meth:`reading` to have them as one commit left them."""
        world = MemoryWorld()
        with self._connection(conn) as c, Session(bind=c) as session:
            world.actors.update(self.load_actors(c))
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
