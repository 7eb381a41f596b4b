"""PostgreSQL log store, for deployments beyond one file.

Writers lock the single head row (``SELECT ... FOR UPDATE``) before reading it,
so concurrent appenders in any number of processes serialise and never fork.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import psycopg

from ledger.keys import KeyRecord
from ledger.merkle import EMPTY_ROOT, NodeId
from ledger.store import (
    APPEND_ONLY_TABLES,
    KEY_COLUMNS,
    AppendPlan,
    Head,
    LogStore,
    SQLLogStore,
    key_from_row,
)

__all__ = ["PostgresStore", "ledger_ddl"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ledger_entries (
        seq BIGINT PRIMARY KEY, leaf_key BIGINT NOT NULL, entry BYTEA NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ledger_entries_leaf_key ON ledger_entries (leaf_key)",
    """CREATE TABLE IF NOT EXISTS ledger_nodes (
        level SMALLINT NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL,
        PRIMARY KEY (level, idx))""",
    """CREATE TABLE IF NOT EXISTS ledger_head (
        id SMALLINT PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, root BYTEA NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_keys (
        key_id TEXT PRIMARY KEY, verifier_key TEXT NOT NULL, role TEXT NOT NULL,
        added_seq BIGINT NOT NULL, revoked_seq BIGINT, owner TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS ledger_checkpoints (
        size BIGINT PRIMARY KEY, note TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_cosignatures (
        size BIGINT NOT NULL, witness TEXT NOT NULL, note TEXT NOT NULL,
        PRIMARY KEY (size, witness))""",
    """CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$""",
]


def _triggers() -> list[str]:
    statements = []
    for table in APPEND_ONLY_TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
            f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""",
        ]
    return statements


def ledger_ddl() -> list[tuple[str, tuple[bytes, ...] | None]]:
    """Every statement that creates the log's tables and triggers (idempotent), with parameters."""
    head = "INSERT INTO ledger_head (id, size, root) VALUES (1, 0, %s) ON CONFLICT DO NOTHING"
    out: list[tuple[str, tuple[bytes, ...] | None]] = [("SELECT pg_advisory_xact_lock(6962)", None)]
    out += [(statement, None) for statement in _SCHEMA]
    out.append((head, (EMPTY_ROOT,)))
    out += [(statement, None) for statement in _triggers()]
    return out


class PostgresStore(SQLLogStore):
    """A log in a PostgreSQL database (the URL may set ``search_path`` via ``options``)."""

    placeholder = "%s"

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn = psycopg.connect(url, autocommit=True)

    def create(self) -> None:
        with self._lock, self._conn.transaction():
            # The advisory lock (first statement) serialises concurrent first starts:
            # CREATE ... IF NOT EXISTS is not race-free.
            for statement, params in ledger_ddl():
                self._conn.execute(statement, params)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def head(self) -> Head:
        with self._lock:
            row = self._conn.execute("SELECT size, root FROM ledger_head WHERE id = 1").fetchone()
        assert row is not None, "ledger_head is created with its row"
        return Head(int(row[0]), bytes(row[1]))

    def append(self, build: Callable[[Head, LogStore], AppendPlan]) -> AppendPlan:
        with self._lock, self._conn.transaction():
            conn = self._conn
            row = conn.execute(
                "SELECT size, root FROM ledger_head WHERE id = 1 FOR UPDATE"
            ).fetchone()
            assert row is not None, "ledger_head is created with its row"
            plan = build(Head(int(row[0]), bytes(row[1])), self)
            with conn.cursor() as cur:
                if plan.entries:
                    with cur.copy("COPY ledger_entries (seq, leaf_key, entry) FROM STDIN") as copy:
                        for r in plan.entries:
                            copy.write_row(r)
                if plan.nodes:
                    with cur.copy("COPY ledger_nodes (level, idx, hash) FROM STDIN") as copy:
                        for r in plan.nodes:
                            copy.write_row(r)
                if plan.new_keys:
                    cur.executemany(
                        f"INSERT INTO ledger_keys ({KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                        [
                            (
                                k.key_id,
                                k.verifier_key,
                                k.role.value,
                                k.added_seq,
                                k.revoked_seq,
                                k.owner,
                            )
                            for k in plan.new_keys
                        ],
                    )
                if plan.revoked:
                    cur.executemany(
                        "UPDATE ledger_keys SET revoked_seq = %s"
                        " WHERE key_id = %s AND revoked_seq IS NULL",
                        [(seq, key_id) for key_id, seq in plan.revoked],
                    )
                if plan.head is not None:
                    cur.execute(
                        "UPDATE ledger_head SET size = %s, root = %s WHERE id = 1",
                        (plan.head.size, plan.head.root),
                    )
        return plan

    def read_nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        if not ids:
            return {}
        levels = [level for level, _ in ids]
        idxs = [idx for _, idx in ids]
        with self._lock:
            rows = self._conn.execute(
                "SELECT n.level, n.idx, n.hash FROM ledger_nodes n"
                " JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx)"
                " ON n.level = w.level AND n.idx = w.idx",
                (levels, idxs),
            ).fetchall()
        return {(int(level), int(idx)): bytes(h) for level, idx, h in rows}

    def keys_by_id(self, key_ids: Sequence[str]) -> dict[str, KeyRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {KEY_COLUMNS} FROM ledger_keys WHERE key_id = ANY(%s)", (list(key_ids),)
            ).fetchall()
        return {r.key_id: r for r in map(key_from_row, rows)}

    def add_checkpoint(self, size: int, note: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO ledger_checkpoints (size, note) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (size, note),
            )

    def add_cosignature(self, size: int, witness: str, note: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO ledger_cosignatures (size, witness, note) VALUES (%s, %s, %s)"
                " ON CONFLICT (size, witness) DO UPDATE SET note = EXCLUDED.note",
                (size, witness, note),
            )
